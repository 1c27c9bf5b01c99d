//! Learned defaults: the requests and memory limit `pytune recommend` derived from a workload's
//! usage, stored as one JSON document (the `learned.json` key of a ConfigMap) so that the next Pod
//! of that workload can start from them instead of the profile defaults. docs/recommend.md
//! describes the format; this module builds, bounds, parses and looks it up, without I/O.

mod build;
mod timestamp;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::core::quantity;
pub use build::{Bounded, MAX_DOCUMENT_BYTES, from_recommendations};
pub use timestamp::{duration_seconds, format_rfc3339, parse_age, parse_rfc3339};

/// The ConfigMap key holding the document.
pub const CONFIGMAP_KEY: &str = "learned.json";
/// The layout of the document; a reader refuses any other.
pub const VERSION: u32 = 1;
/// The fields a learned value may set: resources only. Worker counts and thread caps follow from
/// them, and the engine sizes those itself from what the container then gets.
pub const FIELDS: [&str; 3] = [
    "resources.requests.cpu",
    "resources.requests.memory",
    "resources.limits.memory",
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LearnedDocument {
    pub version: u32,
    /// The usage window the values come from (`7d`).
    pub window: String,
    /// When they were computed, RFC 3339.
    pub generated_at: String,
    pub workloads: Vec<LearnedWorkload>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LearnedWorkload {
    pub namespace: String,
    /// The owner the Pods come from: `Deployment`, `StatefulSet`, `CronJob`…
    pub kind: String,
    pub name: String,
    pub containers: Vec<LearnedContainer>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LearnedContainer {
    pub name: String,
    /// Field (one of `FIELDS`) → quantity.
    pub values: std::collections::BTreeMap<String, String>,
    /// Why, in numbers (the usage the values cover).
    pub reason: String,
}

/// One container's learned values, ready for the engine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LearnedValues {
    pub cpu_request: Option<String>,
    pub memory_request: Option<String>,
    pub memory_limit: Option<String>,
    /// `learned from usage: <reason> (<window> window, generated <date>)`, the reason each change
    /// made from these values carries.
    pub provenance: String,
    /// The day the values were computed (`2026-11-20`), for the record on the Pod.
    pub generated: String,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum LearnedError {
    #[error("learned.json is not a learned-defaults document: {0}")]
    Json(String),
    #[error(
        "learned.json has version {0}; this pytune reads version {VERSION}: write it again with this pytune's `recommend --write-configmap`"
    )]
    Version(u32),
    #[error("learned.json generatedAt {0:?} is not an RFC 3339 time like 2026-11-20T08:00:00Z")]
    GeneratedAt(String),
    #[error(
        "learned.json workload {workload} container {container:?}: field {field:?} is not one pytune learns (resources.requests.cpu, resources.requests.memory, resources.limits.memory)"
    )]
    Field {
        workload: String,
        container: String,
        field: String,
    },
    #[error(
        "learned.json workload {workload} container {container:?}: {field} {value:?}: {message}"
    )]
    Quantity {
        workload: String,
        container: String,
        field: String,
        value: String,
        message: String,
    },
}

impl LearnedDocument {
    /// Parses and validates a document: its version, its time, every field and quantity. A
    /// document with any invalid value is refused whole: its writer is broken, and half of it
    /// would be guesswork.
    pub fn parse(text: &str) -> Result<LearnedDocument, LearnedError> {
        let document: LearnedDocument =
            serde_json::from_str(text).map_err(|err| LearnedError::Json(err.to_string()))?;
        if document.version != VERSION {
            return Err(LearnedError::Version(document.version));
        }
        if parse_rfc3339(&document.generated_at).is_none() {
            return Err(LearnedError::GeneratedAt(document.generated_at));
        }
        for workload in &document.workloads {
            for container in &workload.containers {
                for (field, value) in &container.values {
                    validate(workload, container, field, value)?;
                }
            }
        }
        Ok(document)
    }

    /// Whether the document is no older than `max_age_seconds` at `now` (Unix seconds). One from
    /// the future (clock skew) counts as fresh.
    pub fn is_fresh(&self, now: i64, max_age_seconds: u64) -> bool {
        parse_rfc3339(&self.generated_at).is_some_and(|generated| {
            u64::try_from(now.saturating_sub(generated)).map_or(true, |age| age <= max_age_seconds)
        })
    }

    /// Whether any workload of `namespace` has learned values: without one, a Pod there needs no
    /// owner lookup.
    pub fn has_namespace(&self, namespace: &str) -> bool {
        self.workloads.iter().any(|w| w.namespace == namespace)
    }

    /// The learned values of one container of one workload, when the document has them and is
    /// no older than `max_age_seconds` at `now` (Unix seconds). A stale document yields nothing:
    /// the workload may have changed since, and the profile defaults are the safer start.
    pub fn learned_for(
        &self,
        namespace: &str,
        kind: &str,
        name: &str,
        container: &str,
        now: i64,
        max_age_seconds: u64,
    ) -> Option<LearnedValues> {
        if !self.is_fresh(now, max_age_seconds) {
            return None;
        }
        let entry = self
            .workloads
            .iter()
            .find(|w| w.namespace == namespace && w.kind == kind && w.name == name)?
            .containers
            .iter()
            .find(|c| c.name == container)?;
        let get = |field: &str| entry.values.get(field).cloned();
        let date = self.generated_at.get(..10).unwrap_or(&self.generated_at);
        Some(LearnedValues {
            cpu_request: get(FIELDS[0]),
            memory_request: get(FIELDS[1]),
            memory_limit: get(FIELDS[2]),
            provenance: format!(
                "learned from usage: {} ({} window, generated {date})",
                entry.reason, self.window
            ),
            generated: date.to_string(),
        })
    }
}

fn validate(
    workload: &LearnedWorkload,
    container: &LearnedContainer,
    field: &str,
    value: &str,
) -> Result<(), LearnedError> {
    let parsed = match field {
        "resources.requests.cpu" => quantity::cpu_millis(value),
        "resources.requests.memory" | "resources.limits.memory" => quantity::memory_bytes(value),
        _ => {
            return Err(LearnedError::Field {
                workload: format!("{}/{}/{}", workload.namespace, workload.kind, workload.name),
                container: container.name.clone(),
                field: field.to_string(),
            });
        }
    };
    let message = match parsed {
        Ok(0) => "must be above zero".to_string(),
        Ok(_) => return Ok(()),
        Err(err) => err.to_string(),
    };
    Err(LearnedError::Quantity {
        workload: format!("{}/{}/{}", workload.namespace, workload.kind, workload.name),
        container: container.name.clone(),
        field: field.to_string(),
        value: value.to_string(),
        message,
    })
}

#[cfg(test)]
mod tests;
