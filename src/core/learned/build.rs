//! The document from `pytune recommend`'s results, and its size bound.

use std::collections::BTreeMap;

use super::{FIELDS, LearnedContainer, LearnedDocument, LearnedWorkload, VERSION};
use crate::core::recommend::{Status, WorkloadRecommendation};

/// A ConfigMap holds at most 1 MiB in all; this leaves room for its metadata and the key.
pub const MAX_DOCUMENT_BYTES: usize = 900 * 1024;

/// The document with the resource values of every container that got a recommendation. Bare Pods
/// are left out: no later Pod of theirs would read them.
pub fn from_recommendations(
    recommendations: &[WorkloadRecommendation],
    window: &str,
    generated_at: String,
) -> LearnedDocument {
    let workloads = recommendations
        .iter()
        .filter_map(|rec| {
            let (kind, name) = rec.workload.split_once('/')?;
            if kind == "Pod" || kind.is_empty() || name.is_empty() {
                return None;
            }
            let containers: Vec<LearnedContainer> = rec
                .containers
                .iter()
                .filter(|c| c.status == Status::Recommended)
                .filter_map(|c| {
                    let resources: Vec<_> = c
                        .recommended
                        .iter()
                        .filter(|r| FIELDS.contains(&r.field.as_str()))
                        .collect();
                    if resources.is_empty() {
                        return None;
                    }
                    let values: BTreeMap<String, String> = resources
                        .iter()
                        .map(|r| (r.field.clone(), r.value.clone()))
                        .collect();
                    let reason = resources
                        .iter()
                        .map(|r| format!("{} {}", short(&r.field), r.reason))
                        .collect::<Vec<_>>()
                        .join("; ");
                    Some(LearnedContainer {
                        name: c.container.clone(),
                        values,
                        reason,
                    })
                })
                .collect();
            (!containers.is_empty()).then(|| LearnedWorkload {
                namespace: rec.namespace.clone(),
                kind: kind.to_string(),
                name: name.to_string(),
                containers,
            })
        })
        .collect();
    LearnedDocument {
        version: VERSION,
        window: window.to_string(),
        generated_at,
        workloads,
    }
}

/// `resources.requests.cpu` → `requests.cpu`, as the reasons name fields.
fn short(field: &str) -> &str {
    field.strip_prefix("resources.").unwrap_or(field)
}

/// A document serialized within a size bound.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bounded {
    /// Compact JSON, at most the bound in bytes.
    pub json: String,
    /// Workloads left out to stay within the bound (the last ones of the document).
    pub dropped: usize,
}

impl LearnedDocument {
    /// Serializes the document in at most `max_bytes`, leaving out its last workloads when it
    /// would not fit (a ConfigMap over 1 MiB is refused whole, which would lose every workload).
    pub fn to_json_bounded(&self, max_bytes: usize) -> Bounded {
        let envelope = LearnedDocument {
            workloads: Vec::new(),
            ..self.clone()
        };
        // `{…,"workloads":[]}`: each kept workload adds its own JSON and a comma between.
        let mut size = to_json(&envelope).len();
        let mut kept = 0;
        for (i, workload) in self.workloads.iter().enumerate() {
            let added = to_json(workload).len() + usize::from(i > 0);
            if size + added > max_bytes {
                break;
            }
            size += added;
            kept += 1;
        }
        let document = LearnedDocument {
            workloads: self.workloads[..kept].to_vec(),
            ..envelope
        };
        Bounded {
            json: to_json(&document),
            dropped: self.workloads.len() - kept,
        }
    }
}

fn to_json<T: serde::Serialize>(value: &T) -> String {
    // Plain structs of strings and maps with string keys always serialize.
    serde_json::to_string(value).unwrap_or_default()
}
