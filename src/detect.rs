//! What runs in a container: the Python server, and the evidence for it. Pure.

use k8s_openapi::api::core::v1::Container;
use serde::Serialize;

/// The Python server a container runs, when there is evidence for one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Server {
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Detection {
    pub server: Server,
    /// Why pytune believes it, in words: `command: gunicorn`, `env: DJANGO_SETTINGS_MODULE`.
    pub evidence: Vec<String>,
}

/// Looks at a container's command, args, env and image for the server it runs.
pub fn detect(_container: &Container) -> Detection {
    Detection {
        server: Server::Unknown,
        evidence: vec!["no server recognised".to_string()],
    }
}
