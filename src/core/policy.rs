//! The policy: every knob pytune has, its embedded default, and loading with field-path errors.
//!
//! A user's policy file is merged over the embedded default, so it names only what it changes.
//! Loading validates every value; an invalid policy is an error that names the field and says what
//! is allowed, and never silently falls back to something else.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

use crate::core::catalog;
use crate::core::learned;
pub use crate::core::profile::WorkloadProfile;
use crate::core::quantity;

/// The default policy, as shipped (the Helm chart renders the same file).
pub const DEFAULT_POLICY_YAML: &str = include_str!("../../policy/default.yaml");

#[derive(Debug, Error)]
pub enum PolicyError {
    #[error("policy is not valid YAML: {0}")]
    Yaml(String),
    #[error("policy must be a YAML mapping at the top level")]
    NotAMapping,
    #[error("policy field `{path}`: {message}")]
    Field { path: String, message: String },
}

fn field(path: impl Into<String>, message: impl Into<String>) -> PolicyError {
    PolicyError::Field {
        path: path.into(),
        message: message.into(),
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Policy {
    pub selector: Selector,
    pub sidecars: Vec<String>,
    pub features: Features,
    pub profiles: Profiles,
    pub probes: ProbeDefaults,
    pub sizing: Sizing,
    pub lifecycle: LifecycleDefaults,
    pub env: EnvDefaults,
    pub learned: LearnedDefaults,
    /// The policy's own catalog entries (`catalog/README.md`), matched before the embedded ones.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub catalog: Vec<catalog::Entry>,
    /// Set when loading: a short hash of the effective policy, recorded on every mutated Pod.
    #[serde(skip)]
    pub revision: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Selector {
    pub label: String,
    pub value: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Features {
    pub resources: bool,
    pub probes: bool,
    pub lifecycle: bool,
    pub env: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Profiles {
    pub web: Profile,
    pub worker: Profile,
    pub job: Profile,
    pub helper: Profile,
    pub daemon: Profile,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Profile {
    pub resources: ResourceDefaults,
    /// Seconds the app needs after SIGTERM to finish in-flight work (jobs have none).
    #[serde(default)]
    pub drain_seconds: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceDefaults {
    pub requests: ResourceValues,
    #[serde(default)]
    pub limits: ResourceValues,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ResourceValues {
    #[serde(default)]
    pub cpu: Option<String>,
    #[serde(default)]
    pub memory: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProbeDefaults {
    pub startup: ProbeTiming,
    pub readiness: ProbeTiming,
    pub liveness: ProbeTiming,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProbeTiming {
    pub period_seconds: i32,
    pub timeout_seconds: i32,
    pub failure_threshold: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Sizing {
    pub formulas: Formulas,
    /// Memory one worker process is budgeted, as a quantity (`160Mi`).
    pub memory_per_worker: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Formulas {
    pub gunicorn_sync: Formula,
    pub gunicorn_threaded: Formula,
    pub gunicorn_async: Formula,
    pub asgi: Formula,
    pub unknown: Formula,
}

/// `perCpu × CPUs + plus` worker processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Formula {
    pub per_cpu: u32,
    pub plus: u32,
}

impl Formula {
    pub fn workers(self, cpus: u32) -> u32 {
        self.per_cpu
            .saturating_mul(cpus)
            .saturating_add(self.plus)
            .max(1)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LifecycleDefaults {
    pub pre_stop_sleep_seconds: u32,
    pub exec_fallback: Vec<String>,
    pub margin_seconds: u32,
    /// How long a task queue worker (Celery, RQ, Dramatiq) may take to finish its running tasks
    /// after SIGTERM; `None`: pytune does not lengthen their grace period and says so.
    #[serde(default)]
    pub task_drain_seconds: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct EnvDefaults {
    pub fixed: BTreeMap<String, String>,
    pub web_concurrency: bool,
    pub python_cpu_count: bool,
    pub thread_caps: Vec<String>,
    #[serde(default)]
    pub malloc_arena_max: Option<String>,
    pub gunicorn_port: bool,
    pub uvicorn_graceful_shutdown: bool,
    pub fixed_when_env_from_unknown: bool,
    pub count_when_env_from_unknown: bool,
}

/// How learned defaults (`pytune recommend --write-configmap`, docs/recommend.md) are used.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LearnedDefaults {
    /// Learned values older than this (`14d`, `36h`) are ignored: the workload may have changed
    /// since, and the profile defaults apply again.
    pub max_age: String,
}

impl LearnedDefaults {
    /// `max_age` in seconds (validated when the policy loads).
    pub fn max_age_seconds(&self) -> u64 {
        learned::parse_age(&self.max_age).unwrap_or(0)
    }
}

impl Policy {
    /// The embedded default policy.
    pub fn embedded() -> Policy {
        // The embedded file is checked by a unit test; failing here would be a build defect.
        Policy::from_yaml("").expect("the embedded default policy is valid")
    }

    /// Loads a policy file's text merged over the embedded default. Empty text yields the default.
    pub fn from_yaml(text: &str) -> Result<Policy, PolicyError> {
        let mut merged = parse_yaml(DEFAULT_POLICY_YAML)?;
        if !text.trim().is_empty() {
            let overlay = parse_yaml(text)?;
            if !overlay.is_object() {
                return Err(PolicyError::NotAMapping);
            }
            merge(&mut merged, overlay);
        }
        let mut policy: Policy = serde_path_to_error::deserialize(&merged).map_err(|err| {
            let path = err.path().to_string();
            field(path, err.into_inner().to_string())
        })?;
        policy.validate()?;
        policy.revision = revision_of(&merged);
        Ok(policy)
    }

    /// The defaults of one profile.
    pub fn profile(&self, profile: WorkloadProfile) -> &Profile {
        use WorkloadProfile::*;
        match profile {
            Web => &self.profiles.web,
            Worker => &self.profiles.worker,
            Job => &self.profiles.job,
            Helper => &self.profiles.helper,
            Daemon => &self.profiles.daemon,
        }
    }

    fn validate(&self) -> Result<(), PolicyError> {
        if self.selector.label.trim().is_empty() {
            return Err(field(
                "selector.label",
                "must name a label key, e.g. pytune.io/runtime",
            ));
        }
        for (name, profile) in [
            ("web", &self.profiles.web),
            ("worker", &self.profiles.worker),
            ("job", &self.profiles.job),
            ("helper", &self.profiles.helper),
            ("daemon", &self.profiles.daemon),
        ] {
            validate_resources(&format!("profiles.{name}.resources"), &profile.resources)?;
        }
        for (name, timing) in [
            ("startup", &self.probes.startup),
            ("readiness", &self.probes.readiness),
            ("liveness", &self.probes.liveness),
        ] {
            for (key, value) in [
                ("periodSeconds", timing.period_seconds),
                ("timeoutSeconds", timing.timeout_seconds),
                ("failureThreshold", timing.failure_threshold),
            ] {
                if value < 1 {
                    return Err(field(
                        format!("probes.{name}.{key}"),
                        format!("must be at least 1 (Kubernetes rejects {value})"),
                    ));
                }
            }
        }
        if self.lifecycle.pre_stop_sleep_seconds == 0 || self.lifecycle.pre_stop_sleep_seconds > 120
        {
            return Err(field(
                "lifecycle.preStopSleepSeconds",
                "must be between 1 and 120 seconds",
            ));
        }
        if self.lifecycle.exec_fallback.is_empty() {
            return Err(field(
                "lifecycle.execFallback",
                "must be a command, e.g. [\"python3\", \"-c\", \"import time; time.sleep({seconds})\"]",
            ));
        }
        for (key, value) in &self.env.fixed {
            validate_env_name(&format!("env.fixed.{key}"), key)?;
            if value.is_empty() {
                return Err(field(format!("env.fixed.{key}"), "must not be empty"));
            }
        }
        quantity::memory_bytes(&self.sizing.memory_per_worker)
            .ok()
            .filter(|bytes| *bytes > 0)
            .ok_or_else(|| {
                field(
                    "sizing.memoryPerWorker",
                    format!(
                        "{:?} is not a memory quantity above zero (e.g. 160Mi)",
                        self.sizing.memory_per_worker
                    ),
                )
            })?;
        for (name, formula) in [
            ("gunicornSync", self.sizing.formulas.gunicorn_sync),
            ("gunicornThreaded", self.sizing.formulas.gunicorn_threaded),
            ("gunicornAsync", self.sizing.formulas.gunicorn_async),
            ("asgi", self.sizing.formulas.asgi),
            ("unknown", self.sizing.formulas.unknown),
        ] {
            if formula.per_cpu == 0 && formula.plus == 0 {
                return Err(field(
                    format!("sizing.formulas.{name}"),
                    "perCpu and plus cannot both be 0 (a server needs at least one worker)",
                ));
            }
        }
        if let Some(value) = &self.env.malloc_arena_max
            && value.parse::<u32>().map_or(true, |n| n == 0)
        {
            return Err(field(
                "env.mallocArenaMax",
                "must be a positive integer such as \"2\", or null",
            ));
        }
        for (i, name) in self.env.thread_caps.iter().enumerate() {
            validate_env_name(&format!("env.threadCaps[{i}]"), name)?;
        }
        if learned::parse_age(&self.learned.max_age).is_none() {
            return Err(field(
                "learned.maxAge",
                format!(
                    "{:?} is not an age above zero like 14d, 36h or 2w (units s, m, h, d, w)",
                    self.learned.max_age
                ),
            ));
        }
        if !self.catalog.is_empty() {
            let own = catalog::Catalog {
                families: vec![catalog::Family {
                    family: "policy".to_string(),
                    title: "the policy's own entries".to_string(),
                    sources: Vec::new(),
                    entries: self.catalog.clone(),
                }],
            };
            own.validate()
                .map_err(|err| field("catalog", err.to_string()))?;
        }
        Ok(())
    }
}

fn validate_env_name(path: &str, name: &str) -> Result<(), PolicyError> {
    let valid = !name.is_empty()
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(field(
            path,
            format!("{name:?} is not an environment variable name (letters, digits, _)"),
        ))
    }
}

fn validate_resources(path: &str, resources: &ResourceDefaults) -> Result<(), PolicyError> {
    let cpu = |side: &str, value: &Option<String>| -> Result<Option<u64>, PolicyError> {
        value
            .as_deref()
            .map(quantity::cpu_millis)
            .transpose()
            .map_err(|err| field(format!("{path}.{side}.cpu"), err.to_string()))
    };
    let memory = |side: &str, value: &Option<String>| -> Result<Option<u64>, PolicyError> {
        value
            .as_deref()
            .map(quantity::memory_bytes)
            .transpose()
            .map_err(|err| field(format!("{path}.{side}.memory"), err.to_string()))
    };
    let request_cpu = cpu("requests", &resources.requests.cpu)?;
    let limit_cpu = cpu("limits", &resources.limits.cpu)?;
    let request_memory = memory("requests", &resources.requests.memory)?;
    let limit_memory = memory("limits", &resources.limits.memory)?;
    if let (Some(request), Some(limit)) = (request_cpu, limit_cpu)
        && request > limit
    {
        return Err(field(
            format!("{path}.requests.cpu"),
            "must not exceed limits.cpu (Kubernetes rejects requests above limits)",
        ));
    }
    if let (Some(request), Some(limit)) = (request_memory, limit_memory)
        && request > limit
    {
        return Err(field(
            format!("{path}.requests.memory"),
            "must not exceed limits.memory (Kubernetes rejects requests above limits)",
        ));
    }
    Ok(())
}

fn parse_yaml(text: &str) -> Result<Value, PolicyError> {
    let value: Value =
        serde_saphyr::from_str(text).map_err(|err| PolicyError::Yaml(err.to_string()))?;
    Ok(value)
}

/// Deep-merges `overlay` into `base`: mappings merge key by key, anything else replaces.
fn merge(base: &mut Value, overlay: Value) {
    match (base, overlay) {
        (Value::Object(base), Value::Object(overlay)) => {
            for (key, value) in overlay {
                match base.get_mut(&key) {
                    Some(slot) if slot.is_object() && value.is_object() => merge(slot, value),
                    _ => {
                        base.insert(key, value);
                    }
                }
            }
        }
        (base, overlay) => *base = overlay,
    }
}

/// FNV-1a over the canonical JSON of the effective policy: any change of any knob changes it.
/// A short hash of the effective policy and of the embedded catalog, which decides as much: a new
/// catalog marks Pods mutated under the old one stale, as a new policy does.
fn revision_of(policy: &Value) -> String {
    let canonical = canonical_json(policy);
    let catalog = catalog::embedded_files()
        .iter()
        .flat_map(|(name, text)| [name.as_bytes(), text.as_bytes()]);
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in std::iter::once(canonical.as_bytes())
        .chain(catalog)
        .flatten()
    {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    format!("{:010x}", hash >> 24)
}

/// JSON with object keys sorted, so the revision does not depend on the order keys were written in.
fn canonical_json(value: &Value) -> String {
    match value {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            let members: Vec<String> = keys
                .into_iter()
                .map(|key| {
                    format!(
                        "{}:{}",
                        Value::String(key.clone()),
                        canonical_json(&map[key])
                    )
                })
                .collect();
            format!("{{{}}}", members.join(","))
        }
        Value::Array(items) => {
            let items: Vec<String> = items.iter().map(canonical_json).collect();
            format!("[{}]", items.join(","))
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embedded_default_is_valid() {
        let policy = Policy::from_yaml("").expect("default policy loads");
        assert_eq!(policy.selector.label, "pytune.io/runtime");
        assert_eq!(policy.revision.len(), 10);
        assert!(policy.profiles.web.resources.limits.cpu.is_none());
    }

    #[test]
    fn overlay_changes_only_what_it_names() {
        let policy =
            Policy::from_yaml("profiles:\n  web:\n    resources:\n      requests: { cpu: 500m }\n")
                .expect("overlay loads");
        assert_eq!(
            policy.profiles.web.resources.requests.cpu.as_deref(),
            Some("500m")
        );
        assert_eq!(
            policy.profiles.web.resources.requests.memory.as_deref(),
            Some("256Mi")
        );
        assert_ne!(policy.revision, Policy::embedded().revision);
    }

    #[test]
    fn key_order_does_not_change_the_revision() {
        let a = Policy::from_yaml("probes: { startup: { periodSeconds: 2, failureThreshold: 9 } }")
            .unwrap();
        let b = Policy::from_yaml("probes: { startup: { failureThreshold: 9, periodSeconds: 2 } }")
            .unwrap();
        assert_eq!(a.revision, b.revision);
    }

    #[test]
    fn learned_max_age_is_an_age() {
        assert_eq!(Policy::embedded().learned.max_age_seconds(), 14 * 86_400);
        let policy = Policy::from_yaml("learned: { maxAge: 36h }").unwrap();
        assert_eq!(policy.learned.max_age_seconds(), 36 * 3600);
        for bad in ["0d", "two weeks", "14"] {
            let err = Policy::from_yaml(&format!("learned: {{ maxAge: {bad:?} }}"))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("learned.maxAge") && err.contains("14d"),
                "{err}"
            );
        }
    }

    #[test]
    fn unknown_field_is_named() {
        let err = Policy::from_yaml("probes:\n  startup:\n    periodSecs: 5\n").unwrap_err();
        let text = err.to_string();
        assert!(text.contains("probes.startup"), "{text}");
        assert!(text.contains("periodSecs"), "{text}");
    }

    #[test]
    fn bad_quantity_names_the_field_and_the_fix() {
        let err =
            Policy::from_yaml("profiles: { job: { resources: { requests: { memory: lots } } } }")
                .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("profiles.job.resources.requests.memory"),
            "{text}"
        );
        assert!(text.contains("256Mi"), "{text}");
    }

    #[test]
    fn request_above_limit_is_rejected() {
        let err =
            Policy::from_yaml("profiles: { web: { resources: { requests: { memory: 2Gi } } } }")
                .unwrap_err();
        assert!(
            err.to_string().contains("must not exceed limits.memory"),
            "{err}"
        );
    }

    #[test]
    fn wrong_type_is_named() {
        let err = Policy::from_yaml("features: { env: maybe }").unwrap_err();
        assert!(err.to_string().contains("features.env"), "{err}");
    }

    #[test]
    fn probe_timing_must_be_positive() {
        let err = Policy::from_yaml("probes: { liveness: { periodSeconds: 0 } }").unwrap_err();
        assert!(
            err.to_string().contains("probes.liveness.periodSeconds"),
            "{err}"
        );
    }

    #[test]
    fn invalid_yaml_and_non_mapping_are_errors() {
        assert!(matches!(
            Policy::from_yaml("a: [1"),
            Err(PolicyError::Yaml(_))
        ));
        assert!(matches!(
            Policy::from_yaml("- 1\n- 2\n"),
            Err(PolicyError::NotAMapping)
        ));
    }

    #[test]
    fn sizing_is_validated() {
        let err = Policy::from_yaml("sizing: { memoryPerWorker: 0 }").unwrap_err();
        assert!(err.to_string().contains("sizing.memoryPerWorker"), "{err}");
        let err = Policy::from_yaml("sizing: { formulas: { asgi: { perCpu: 0, plus: 0 } } }")
            .unwrap_err();
        assert!(err.to_string().contains("sizing.formulas.asgi"), "{err}");
        let err = Policy::from_yaml("env: { mallocArenaMax: \"many\" }").unwrap_err();
        assert!(err.to_string().contains("env.mallocArenaMax"), "{err}");
        assert!(
            Policy::from_yaml("env: { mallocArenaMax: null }")
                .unwrap()
                .env
                .malloc_arena_max
                .is_none()
        );
    }

    #[test]
    fn bad_env_name_is_rejected() {
        let err = Policy::from_yaml("env: { threadCaps: [\"OMP-THREADS\"] }").unwrap_err();
        assert!(err.to_string().contains("env.threadCaps[0]"), "{err}");
    }
}
