//! The `pytune.io/` annotations a Pod may carry to steer pytune. Unknown values warn, never fail.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::Pod;

use super::{Feature, Warning, WorkloadProfile};

/// Annotation keys: users write these into manifests, so they never change.
pub mod annotations {
    pub const MODE: &str = "pytune.io/mode";
    pub const SKIP: &str = "pytune.io/skip";
    pub const CONTAINERS: &str = "pytune.io/containers";
    pub const PROFILE: &str = "pytune.io/profile";
    pub const PORT: &str = "pytune.io/port";
    pub const HEALTH_PATH: &str = "pytune.io/health-path";
    /// Pins `WEB_CONCURRENCY` to a number of workers.
    pub const WORKERS: &str = "pytune.io/workers";
    /// Memory budget of one worker process, for sizing and memory checks.
    pub const MEMORY_PER_WORKER: &str = "pytune.io/memory-per-worker";
    /// Written by pytune: the fields it added, one line per container (see `engine::record`).
    pub const INJECTED: &str = "pytune.io/injected";
    /// Written by pytune: the revision of the policy that made the changes.
    pub const POLICY_REVISION: &str = "pytune.io/policy-revision";
}

/// A port named by annotation: a number, or the name of a declared containerPort.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortRef {
    Number(i32),
    Name(String),
}

#[derive(Debug, Default)]
pub struct Directives {
    /// Why the Pod is opted out, when it is.
    pub opt_out: Option<String>,
    pub skip: BTreeSet<Feature>,
    pub containers: Option<Vec<String>>,
    pub profile: Option<WorkloadProfile>,
    pub port: Option<PortRef>,
    pub health_path: Option<String>,
    pub workers: Option<u32>,
    /// `(text, bytes)` of the memory-per-worker annotation.
    pub memory_per_worker: Option<(String, u64)>,
}

fn list(value: &str) -> impl Iterator<Item = &str> {
    value
        .split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
}

pub fn read(pod: &Pod, warnings: &mut Vec<Warning>) -> Directives {
    let mut directives = Directives::default();
    let Some(values) = pod.metadata.annotations.as_ref() else {
        return directives;
    };
    let get = |key: &str| values.get(key).map(String::as_str);

    if let Some(mode) = get(annotations::MODE) {
        match mode.trim().to_ascii_lowercase().as_str() {
            "on" | "enabled" | "true" => {}
            "off" | "disabled" | "false" => {
                directives.opt_out = Some(format!("annotation {}={mode}", annotations::MODE));
            }
            _ => {
                // An unreadable opt-out is still most likely an opt-out: doing nothing is the safe side.
                warnings.push(Warning::pod(format!(
                    "{}={mode:?} is not on or off; Pod left unchanged",
                    annotations::MODE
                )));
                directives.opt_out = Some(format!(
                    "annotation {} has unknown value {mode:?}",
                    annotations::MODE
                ));
            }
        }
    }

    if let Some(skip) = get(annotations::SKIP) {
        let mut unknown = Vec::new();
        for item in list(skip) {
            let item_lower = item.to_ascii_lowercase();
            if item_lower == "all" {
                directives.skip.extend(Feature::SKIPPABLE);
            } else if let Some(feature) = Feature::SKIPPABLE
                .into_iter()
                .find(|feature| feature.name() == item_lower)
            {
                directives.skip.insert(feature);
            } else {
                unknown.push(format!("{item:?}"));
            }
        }
        if !unknown.is_empty() {
            // An item that names no feature may mean any of them: skipping everything is the safe
            // side, as for an unreadable pytune.io/mode.
            directives.skip.extend(Feature::SKIPPABLE);
            warnings.push(Warning::pod(format!(
                "{} has unknown feature {} (known: resources, probes, lifecycle, env, all); \
                 every feature skipped for this Pod: fix the annotation",
                annotations::SKIP,
                unknown.join(", ")
            )));
        }
    }

    if let Some(names) = get(annotations::CONTAINERS) {
        directives.containers = Some(list(names).map(str::to_string).collect());
    }

    if let Some(profile) = get(annotations::PROFILE) {
        match WorkloadProfile::parse(profile) {
            Some(profile) => directives.profile = Some(profile),
            None => warnings.push(Warning::pod(format!(
                "{}={profile:?} unknown (web, worker, job); profile chosen by evidence",
                annotations::PROFILE
            ))),
        }
    }

    if let Some(port) = get(annotations::PORT) {
        let port = port.trim();
        match port.parse::<i32>() {
            Ok(number) if (1..=65535).contains(&number) => {
                directives.port = Some(PortRef::Number(number));
            }
            Ok(_) => warnings.push(Warning::pod(format!(
                "{}={port} is not a port (1-65535); ignored",
                annotations::PORT
            ))),
            Err(_) if is_port_name(port) => directives.port = Some(PortRef::Name(port.to_string())),
            Err(_) => warnings.push(Warning::pod(format!(
                "{}={port:?} is neither a port number nor a port name; ignored",
                annotations::PORT
            ))),
        }
    }

    if let Some(path) = get(annotations::HEALTH_PATH) {
        let path = path.trim();
        if path.starts_with('/') && !path.chars().any(char::is_whitespace) {
            directives.health_path = Some(path.to_string());
        } else {
            warnings.push(Warning::pod(format!(
                "{}={path:?} must be a path starting with /; TCP probes used",
                annotations::HEALTH_PATH
            )));
        }
    }
    if let Some(workers) = get(annotations::WORKERS) {
        match workers.trim().parse::<u32>() {
            Ok(count) if (1..=1024).contains(&count) => directives.workers = Some(count),
            _ => warnings.push(Warning::pod(format!(
                "{}={workers:?} is not a worker count (1-1024); sized from CPU instead",
                annotations::WORKERS
            ))),
        }
    }

    if let Some(memory) = get(annotations::MEMORY_PER_WORKER) {
        match crate::core::quantity::memory_bytes(memory) {
            Ok(bytes) if bytes > 0 => {
                directives.memory_per_worker = Some((memory.trim().to_string(), bytes));
            }
            _ => warnings.push(Warning::pod(format!(
                "{}={memory:?} is not a memory size like 200Mi; policy value used",
                annotations::MEMORY_PER_WORKER
            ))),
        }
    }
    directives
}

/// An IANA service name as Kubernetes accepts for a port name: 1-15 chars, a-z0-9 and '-',
/// at least one letter.
fn is_port_name(text: &str) -> bool {
    (1..=15).contains(&text.len())
        && text
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && text.chars().any(|c| c.is_ascii_lowercase())
        && !text.starts_with('-')
        && !text.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn pod_with(annotations: &[(&str, &str)]) -> Pod {
        Pod {
            metadata: ObjectMeta {
                annotations: Some(
                    annotations
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                ),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    #[test]
    fn off_opts_out_and_unknown_mode_opts_out_with_a_warning() {
        let mut warnings = Vec::new();
        assert!(
            read(&pod_with(&[(annotations::MODE, "off")]), &mut warnings)
                .opt_out
                .is_some()
        );
        assert!(warnings.is_empty());
        assert!(
            read(&pod_with(&[(annotations::MODE, "on")]), &mut warnings)
                .opt_out
                .is_none()
        );
        assert!(
            read(
                &pod_with(&[(annotations::MODE, "sometimes")]),
                &mut warnings
            )
            .opt_out
            .is_some()
        );
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn skip_reads_features() {
        let mut warnings = Vec::new();
        let directives = read(
            &pod_with(&[(annotations::SKIP, "probes, Env,")]),
            &mut warnings,
        );
        assert_eq!(
            directives.skip,
            BTreeSet::from([Feature::Probes, Feature::Env])
        );
        assert!(warnings.is_empty());
    }

    #[test]
    fn an_unreadable_skip_skips_every_feature_and_says_so() {
        for value in ["everything", "probes,bogus"] {
            let mut warnings = Vec::new();
            let directives = read(&pod_with(&[(annotations::SKIP, value)]), &mut warnings);
            assert_eq!(
                directives.skip,
                BTreeSet::from(Feature::SKIPPABLE),
                "{value}"
            );
            assert_eq!(warnings.len(), 1, "{value}");
            let message = &warnings[0].message;
            let unknown = value.rsplit(',').next().unwrap_or(value);
            assert!(message.contains(&format!("{unknown:?}")), "{message}");
            assert!(message.contains("every feature skipped"), "{message}");
        }
    }

    #[test]
    fn ports_by_number_or_name() {
        let mut warnings = Vec::new();
        assert_eq!(
            read(&pod_with(&[(annotations::PORT, "8000")]), &mut warnings).port,
            Some(PortRef::Number(8000))
        );
        assert_eq!(
            read(&pod_with(&[(annotations::PORT, "http")]), &mut warnings).port,
            Some(PortRef::Name("http".into()))
        );
        assert_eq!(
            read(&pod_with(&[(annotations::PORT, "70000")]), &mut warnings).port,
            None
        );
        assert_eq!(
            read(
                &pod_with(&[(annotations::PORT, "Not A Port")]),
                &mut warnings
            )
            .port,
            None
        );
        assert_eq!(warnings.len(), 2);
    }

    #[test]
    fn health_path_must_be_a_path() {
        let mut warnings = Vec::new();
        assert_eq!(
            read(
                &pod_with(&[(annotations::HEALTH_PATH, "/healthz")]),
                &mut warnings
            )
            .health_path
            .as_deref(),
            Some("/healthz")
        );
        assert_eq!(
            read(
                &pod_with(&[(annotations::HEALTH_PATH, "healthz")]),
                &mut warnings
            )
            .health_path,
            None
        );
        assert_eq!(warnings.len(), 1);
    }
}
