//! The plan: what the engine decided, each change with its reason, rendered to an RFC 6902 patch.

use json_patch::Patch;
use serde::Serialize;

use super::launch::AppRef;
use super::patch::{Addition, json_patch};
use super::{PatchValue, WorkloadProfile};
use crate::core::catalog::ServerKind;
use crate::core::detect::{Detection, Server};

/// Kubernetes asks webhooks to keep each warning within 120 characters; longer ones may be truncated.
pub const MAX_WARNING_CHARS: usize = 120;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Feature {
    Resources,
    Probes,
    Lifecycle,
    Env,
    /// The annotations that record what pytune did.
    Record,
}

impl Feature {
    pub const SKIPPABLE: [Feature; 4] = [
        Feature::Resources,
        Feature::Probes,
        Feature::Lifecycle,
        Feature::Env,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Feature::Resources => "resources",
            Feature::Probes => "probes",
            Feature::Lifecycle => "lifecycle",
            Feature::Env => "env",
            Feature::Record => "record",
        }
    }
}

/// One value pytune adds, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// The container changed, or `None` for a Pod-level field.
    pub container: Option<String>,
    pub feature: Feature,
    /// The field in words people read: `resources.requests.cpu`, `env.PYTHONUNBUFFERED`.
    pub field: String,
    /// JSON pointer of the value in the mutated Pod.
    pub path: String,
    pub value: PatchValue,
    pub reason: String,
}

/// A decision that changed nothing, kept so every outcome can be explained.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Note {
    pub container: Option<String>,
    pub feature: Feature,
    pub message: String,
}

impl Note {
    /// `container: message`, or `pod: message` for a Pod-level note.
    pub fn line(&self) -> String {
        format!(
            "{}: {}",
            self.container.as_deref().unwrap_or("pod"),
            self.message
        )
    }
}

/// Something the user should look at; never a rejection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub container: Option<String>,
    pub message: String,
}

impl Warning {
    pub fn pod(message: impl Into<String>) -> Warning {
        Warning {
            container: None,
            message: message.into(),
        }
    }

    pub fn container(name: &str, message: impl Into<String>) -> Warning {
        Warning {
            container: Some(name.to_string()),
            message: message.into(),
        }
    }

    /// The text shown to users: prefixed with the container, at most [`MAX_WARNING_CHARS`].
    pub fn text(&self) -> String {
        let full = match &self.container {
            Some(name) => format!("pytune: container {name}: {}", self.message),
            None => format!("pytune: {}", self.message),
        };
        truncate(&full, MAX_WARNING_CHARS)
    }
}

/// Cuts `text` to at most `max` characters, marking the cut with an ellipsis.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Whether the Pod is pytune's to change at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", content = "reason", rename_all = "kebab-case")]
pub enum Decision {
    /// Selected: the changes below apply (there may be none).
    Selected,
    /// Not labeled as a Python service.
    NotSelected(String),
    /// Labeled, but opted out by annotation.
    OptedOut(String),
}

/// What pytune knows of one target container.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetContainer {
    pub name: String,
    pub profile: WorkloadProfile,
    pub profile_reason: String,
    /// The catalog entry the container matched, and on what evidence.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app: Option<AppRef>,
    pub detection: Detection,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    #[serde(flatten)]
    pub decision: Decision,
    pub containers: Vec<TargetContainer>,
    pub changes: Vec<Change>,
    pub notes: Vec<Note>,
    pub warnings: Vec<Warning>,
    /// The patch: see [`Plan::json_patch`] for it as `json_patch` operations.
    #[serde(skip)]
    pub patch: Vec<Addition>,
}

impl TargetContainer {
    /// The server the catalog entry says runs, where the command alone shows none (an
    /// application's launcher may start a server its command does not name).
    pub fn catalog_server(&self) -> Option<ServerKind> {
        let server = self.app.as_ref()?.server?;
        (self.detection.server == Server::Unknown).then_some(server)
    }

    /// The server the container runs: what its command shows, else what its catalog entry says.
    pub fn server_name(&self) -> &'static str {
        self.catalog_server()
            .map_or(self.detection.server.name(), ServerKind::name)
    }
}

impl Plan {
    pub(crate) fn untouched(decision: Decision, warnings: Vec<Warning>) -> Plan {
        Plan {
            decision,
            containers: Vec::new(),
            changes: Vec::new(),
            notes: Vec::new(),
            warnings,
            patch: Vec::new(),
        }
    }

    /// True when the Pod would not change.
    pub fn is_empty(&self) -> bool {
        self.patch.is_empty()
    }

    /// The patch as `json_patch` operations, to apply to a JSON tree or serialize with serde.
    pub fn json_patch(&self) -> Patch {
        json_patch(&self.patch)
    }

    /// Every warning as shown to users (each at most 120 characters).
    pub fn warning_texts(&self) -> Vec<String> {
        self.warnings.iter().map(Warning::text).collect()
    }

    /// The changes the user made visible as one short line each: `container field=value`.
    pub fn change_summaries(&self) -> Vec<String> {
        self.changes.iter().map(Change::summary).collect()
    }
}

impl Change {
    /// The value in a few words: `250m`, `sleep 5s`, `HTTP GET /healthz :8000`.
    pub fn display_value(&self) -> String {
        let value = &self.value;
        let member = |outer: &str, inner: &str| {
            value
                .get(outer)
                .and_then(|handler| handler.get(inner))
                .map_or_else(|| "null".to_string(), PatchValue::to_string)
        };
        if let Some(text) = value.as_str() {
            text.to_string()
        } else if value.get("sleep").is_some() {
            format!("sleep {}s", member("sleep", "seconds"))
        } else if value.get("exec").is_some() {
            "exec pause".to_string()
        } else if let Some(handler) = value.get("httpGet") {
            format!(
                "HTTP GET {} :{}",
                handler
                    .get("path")
                    .and_then(PatchValue::as_str)
                    .unwrap_or("/"),
                member("httpGet", "port")
            )
        } else if value.get("tcpSocket").is_some() {
            format!("TCP :{}", member("tcpSocket", "port"))
        } else {
            value.to_string()
        }
    }

    /// `web: resources.requests.cpu=250m` — short enough for an admission warning.
    pub fn summary(&self) -> String {
        let owner = self.container.as_deref().unwrap_or("pod");
        truncate(
            &format!("{owner}: {}={}", self.field, self.display_value()),
            90,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn warnings_are_cut_to_the_api_server_limit() {
        let warning = Warning::container("web", "x".repeat(300));
        let text = warning.text();
        assert_eq!(text.chars().count(), MAX_WARNING_CHARS);
        assert!(text.starts_with("pytune: container web: "));
        assert!(text.ends_with('…'));
    }
}
