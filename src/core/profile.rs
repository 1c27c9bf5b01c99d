//! The kind of workload a container is, which picks its defaults in the policy. Its own module so
//! the policy and the catalog can both name it without importing each other.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The kind of workload a container is, which picks its defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum WorkloadProfile {
    /// Serves a port: probes, graceful shutdown, worker sizing.
    Web,
    /// Long-running without a port: graceful shutdown, no probes.
    Worker,
    /// Runs to completion: resources and env only.
    Job,
    /// Not Python (a proxy, an agent, a shell) in a Python Pod: small requests, nothing else.
    Helper,
    /// Runs on every node (a DaemonSet): small requests, since they are reserved once per node.
    Daemon,
}

impl WorkloadProfile {
    pub fn parse(text: &str) -> Option<WorkloadProfile> {
        match text.trim().to_ascii_lowercase().as_str() {
            "web" => Some(WorkloadProfile::Web),
            "worker" => Some(WorkloadProfile::Worker),
            "job" => Some(WorkloadProfile::Job),
            "helper" => Some(WorkloadProfile::Helper),
            "daemon" => Some(WorkloadProfile::Daemon),
            _ => None,
        }
    }
}

impl fmt::Display for WorkloadProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            WorkloadProfile::Web => "web",
            WorkloadProfile::Worker => "worker",
            WorkloadProfile::Job => "job",
            WorkloadProfile::Helper => "helper",
            WorkloadProfile::Daemon => "daemon",
        })
    }
}
