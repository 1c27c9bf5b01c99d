//! The engine: Pod + policy + context → a [`Plan`] of changes, each with its reason. No I/O.
//!
//! Every rule only *adds* what a container lacks; it never replaces a value the user set. The plan
//! renders to explicit RFC 6902 `add` operations against the Pod JSON as received, so fields the
//! typed Kubernetes model does not know are never touched.

mod decode;
mod directives;
mod launch;
mod listen;
mod patch;
mod plan;
pub mod record;
mod rules;
mod targets;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use k8s_openapi::api::core::v1::Pod;
use serde::Serialize;
use serde_json::Value;
use thiserror::Error;

pub use crate::core::policy::WorkloadProfile;
pub use decode::PodView;
pub use directives::annotations;
pub use launch::AppRef;
pub use patch::{Addition, PatchValue};
pub use plan::{
    Change, Decision, Feature, MAX_WARNING_CHARS, Note, Plan, TargetContainer, Warning, truncate,
};

use crate::core::learned::LearnedValues;
use crate::core::policy::Policy;
use patch::PatchBuilder;
use rules::{env, lifecycle, lint, probes, resources, sizing};

/// Enforce patches the Pod; audit only reports what would change. The plan is the same in both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    #[default]
    Enforce,
    Audit,
}

/// A Kubernetes server version, as far as pytune cares: major and minor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct KubeVersion {
    pub major: u32,
    pub minor: u32,
}

impl KubeVersion {
    pub const fn new(major: u32, minor: u32) -> KubeVersion {
        KubeVersion { major, minor }
    }

    /// Accepts `1.30`, `v1.30.2`, and the `30+` minors some providers report.
    pub fn parse(text: &str) -> Option<KubeVersion> {
        let text = text.trim().trim_start_matches(['v', 'V']);
        let mut parts = text.split('.');
        let major = parts.next()?.parse().ok()?;
        let minor: String = parts
            .next()?
            .chars()
            .take_while(char::is_ascii_digit)
            .collect();
        Some(KubeVersion::new(major, minor.parse().ok()?))
    }
}

impl fmt::Display for KubeVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

/// What the engine knows besides the Pod and the policy.
#[derive(Debug, Clone, Default)]
pub struct Context {
    /// The cluster's version, when known; picks the preStop form.
    pub kubernetes_version: Option<KubeVersion>,
    pub mode: Mode,
    /// Keys of ConfigMaps the Pod's `envFrom` may name, by ConfigMap name. A ConfigMap missing here
    /// is unknown: it may define any variable.
    pub config_map_keys: BTreeMap<String, BTreeSet<String>>,
    /// Keys (never values) of Secrets the Pod's `envFrom` may name, by Secret name; unknown when
    /// missing here, like ConfigMaps.
    pub secret_keys: BTreeMap<String, BTreeSet<String>>,
    /// The kind of workload whose pod template this is (`DaemonSet`, `CronJob`…), when planning a
    /// template from a manifest; a Pod from the API server says so in its owner references.
    pub workload_kind: Option<String>,
    /// Learned defaults of the Pod's workload, by container name (`core::learned`), already
    /// looked up for the Pod's workload and found fresh: the engine never reads a clock.
    pub learned: BTreeMap<String, LearnedValues>,
    /// The plan goes into a manifest that will be applied (`pytune mutate`), not into a Pod the
    /// API server admits: its `env` may not name a variable twice, which server-side apply and
    /// kubectl's three-way merge refuse, so no count goes in as a default a source overrides.
    pub manifest: bool,
}

#[derive(Debug, Error)]
pub enum EngineError {
    #[error("the object is not a valid Pod: {0}")]
    InvalidPod(#[from] serde_json::Error),
}

/// Plans the changes pytune makes to `pod` (JSON as the API server sends it).
pub fn plan(pod_json: &Value, policy: &Policy, ctx: &Context) -> Result<Plan, EngineError> {
    // Most Pods a cluster-wide webhook sees are not Python services: answer those from the raw
    // labels, without decoding the whole Pod.
    if let Some(decision) = not_selected(pod_json, policy) {
        return Ok(Plan::untouched(decision, Vec::new()));
    }
    let pod = decode::from_value(pod_json)?;
    Ok(plan_selected(&pod, policy, ctx))
}

/// Plans the changes pytune makes to a decoded Pod.
pub fn plan_pod(pod: &Pod, policy: &Policy, ctx: &Context) -> Plan {
    let label = pod
        .metadata
        .labels
        .as_ref()
        .and_then(|labels| labels.get(&policy.selector.label));
    match selection(label.map(String::as_str), policy) {
        Decision::Selected => plan_selected(pod, policy, ctx),
        decision => Plan::untouched(decision, Vec::new()),
    }
}

fn not_selected(pod_json: &Value, policy: &Policy) -> Option<Decision> {
    let decision = match pod_json
        .pointer("/metadata/labels")
        .and_then(|labels| labels.get(&policy.selector.label))
    {
        Some(Value::String(value)) => selection(Some(value), policy),
        // A non-string label value makes the Pod invalid; the typed decode reports it.
        Some(_) => return None,
        None => selection(None, policy),
    };
    (decision != Decision::Selected).then_some(decision)
}

/// Whether `policy` selects a Pod whose selector label has `value` (`None`: no such label).
pub fn selection(value: Option<&str>, policy: &Policy) -> Decision {
    let selector = &policy.selector;
    match value {
        Some(value) if value == selector.value => Decision::Selected,
        Some(value) => Decision::NotSelected(format!(
            "label {}={value} is not {}",
            selector.label, selector.value
        )),
        None => Decision::NotSelected(format!("no {} label", selector.label)),
    }
}

/// A target container with what the rules share about it.
pub(crate) struct Target<'p> {
    /// The container's index in `spec.containers`, as a pointer token.
    pub index_text: String,
    pub container: &'p k8s_openapi::api::core::v1::Container,
    /// The port the container serves, from its ports or the `pytune.io/port` annotation.
    pub port: Option<i32>,
    /// What the container's launch path does, from the catalog.
    pub launch: launch::Launch,
    pub info: TargetContainer,
}

impl Target<'_> {
    pub fn name(&self) -> &str {
        &self.container.name
    }

    /// The container's `env` entry of that name, whatever its source. Of several, the last: the
    /// kubelet applies them in order.
    pub fn env_entry(&self, name: &str) -> Option<&k8s_openapi::api::core::v1::EnvVar> {
        self.container
            .env
            .iter()
            .flatten()
            .rfind(|var| var.name == name)
    }

    /// The literal value of an `env` entry of this container.
    pub fn env_value(&self, name: &str) -> Option<&str> {
        self.env_entry(name).and_then(|var| var.value.as_deref())
    }

    /// An `env` entry that holds a positive integer (a worker or CPU count).
    pub fn env_count(&self, name: &str) -> Option<u32> {
        self.env_value(name)
            .and_then(|value| value.trim().parse::<u32>().ok())
            .filter(|count| *count >= 1)
    }

    /// The port something is known to serve on: the catalog or the server's command says this
    /// launch path serves, or the `pytune.io/port` annotation does. `Err`: why pytune cannot take
    /// it that anything answers there (probes and a drain would then do harm).
    pub fn serving_port(&self, directives: &directives::Directives) -> Result<i32, String> {
        let Some(port) = self.port else {
            return Err(format!(
                "no port known (declare a containerPort or set {})",
                annotations::PORT
            ));
        };
        let detection = &self.info.detection;
        if directives.port.is_some()
            || self.launch.serves() == Some(true)
            || detection.server.serves_http()
        {
            return Ok(port);
        }
        Err(format!(
            "nothing says port {port} is served (no server recognised; set {} to confirm it)",
            annotations::PORT
        ))
    }

    /// JSON pointer tokens of this container, followed by `rest`.
    pub fn tokens<'s>(&'s self, rest: &[&'s str]) -> Vec<&'s str> {
        let mut tokens = vec!["spec", "containers", self.index_text.as_str()];
        tokens.extend_from_slice(rest);
        tokens
    }
}

/// Accumulates the plan while the rules run.
pub(crate) struct Planner<'a> {
    pub policy: &'a Policy,
    pub ctx: &'a Context,
    pub builder: PatchBuilder<'a>,
    pub changes: Vec<Change>,
    pub notes: Vec<Note>,
    pub warnings: Vec<Warning>,
    /// `(container, catalog entry)` of each target that matched one, for the record.
    pub apps: Vec<(String, String)>,
}

impl Planner<'_> {
    pub fn change(
        &mut self,
        container: Option<&str>,
        feature: Feature,
        field: impl Into<String>,
        path: String,
        value: PatchValue,
        reason: impl Into<String>,
    ) {
        self.changes.push(Change {
            container: container.map(str::to_string),
            feature,
            field: field.into(),
            path,
            value,
            reason: reason.into(),
        });
    }

    pub fn note(&mut self, container: Option<&str>, feature: Feature, message: impl Into<String>) {
        self.notes.push(Note {
            container: container.map(str::to_string),
            feature,
            message: message.into(),
        });
    }

    pub fn warn(&mut self, warning: Warning) {
        if !self.warnings.contains(&warning) {
            self.warnings.push(warning);
        }
    }
}

fn plan_selected(pod: &Pod, policy: &Policy, ctx: &Context) -> Plan {
    let mut warnings = Vec::new();
    let directives = directives::read(pod, &mut warnings);
    if let Some(reason) = directives.opt_out {
        return Plan::untouched(Decision::OptedOut(reason), warnings);
    }

    let mut planner = Planner {
        policy,
        ctx,
        builder: PatchBuilder::new(pod),
        changes: Vec::new(),
        notes: Vec::new(),
        warnings,
        apps: Vec::new(),
    };
    let targets = targets::select(pod, &directives, &mut planner);
    planner.apps = targets
        .iter()
        .filter_map(|target| {
            let app = target.info.app.as_ref()?;
            Some((target.name().to_string(), app.entry.clone()))
        })
        .collect();
    let enabled = |feature: Feature| -> bool {
        let globally = match feature {
            Feature::Resources => policy.features.resources,
            Feature::Probes => policy.features.probes,
            Feature::Lifecycle => policy.features.lifecycle,
            Feature::Env => policy.features.env,
            Feature::Record => true,
        };
        globally && !directives.skip.contains(&feature)
    };

    for target in &targets {
        // What the container's envFrom may define, and how many processes it starts: read once,
        // used by resources, sizing and env alike.
        let sources = env::env_from(target, &planner);
        let fan_out = sizing::fan_out(target, &directives, (policy, ctx), &sources);
        let sizing_base = if enabled(Feature::Resources) {
            let per_process = sizing::memory_budget(target, policy, &directives);
            resources::plan(pod, target, &fan_out, per_process.as_ref(), &mut planner)
        } else {
            resources::current(pod, target, &mut planner)
        };
        let port_env = if enabled(Feature::Env) {
            env::gunicorn_port(target, &sources, &planner)
        } else {
            None
        };
        let listening = listen::listening(target, port_env.is_some());
        let workers = sizing::plan(target, &sizing_base, &directives, policy, &fan_out);
        if enabled(Feature::Probes) {
            probes::plan(target, &directives, &listening, &mut planner);
        }
        if enabled(Feature::Lifecycle) {
            lifecycle::plan_pre_stop(pod, target, &directives, &mut planner);
        }
        if enabled(Feature::Env) {
            env::plan(
                target,
                &sizing_base,
                &workers,
                port_env,
                &sources,
                &mut planner,
            );
        }
        lint::plan(
            target,
            &sizing_base,
            (&workers, &fan_out),
            &listening,
            &directives,
            &mut planner,
        );
    }
    if enabled(Feature::Lifecycle) {
        lifecycle::plan_grace_period(pod, &targets, &mut planner);
    }
    rules::record::plan(pod, &mut planner);

    Plan {
        decision: Decision::Selected,
        containers: targets.into_iter().map(|target| target.info).collect(),
        changes: planner.changes,
        notes: planner.notes,
        warnings: planner.warnings,
        patch: planner.builder.finish(),
    }
}

/// What the engine knows of one target container's processes, for reading usage against them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ProcessFacts {
    pub container: String,
    pub profile: WorkloadProfile,
    /// The count variable the launch path reads (`WEB_CONCURRENCY`, `CELERY_WORKER_CONCURRENCY`…).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub knob: Option<String>,
    /// Processes besides the workers (a gunicorn master).
    pub base_processes: u32,
    /// The worker count the container runs with as it is, and where that count comes from; `None`
    /// when it cannot be known from the Pod.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<(u32, String)>,
}

/// The process facts of each target container of a selected Pod (empty for any other Pod). Reads
/// the Pod as it is: the same fan-out and sizing the rules use, without planning changes.
pub fn process_facts(pod_json: &Value, policy: &Policy, ctx: &Context) -> Vec<ProcessFacts> {
    if not_selected(pod_json, policy).is_some() {
        return Vec::new();
    }
    let Ok(pod) = decode::from_value(pod_json) else {
        return Vec::new();
    };
    let mut warnings = Vec::new();
    let directives = directives::read(&pod, &mut warnings);
    if directives.opt_out.is_some() {
        return Vec::new();
    }
    let mut planner = Planner {
        policy,
        ctx,
        builder: PatchBuilder::new(&pod),
        changes: Vec::new(),
        notes: Vec::new(),
        warnings,
        apps: Vec::new(),
    };
    let targets = targets::select(&pod, &directives, &mut planner);
    targets
        .iter()
        .map(|target| {
            let sources = env::env_from(target, &planner);
            let fan_out = sizing::fan_out(target, &directives, (policy, ctx), &sources);
            let base = resources::current(&pod, target, &mut planner);
            let workers = match sizing::plan(target, &base, &directives, policy, &fan_out) {
                sizing::WorkerPlan::Given { count, source } => Some((count, source)),
                // Only an annotation pin is a count the container already runs with.
                sizing::WorkerPlan::Set { count, reason, .. } if directives.workers.is_some() => {
                    Some((count, reason))
                }
                _ => None,
            };
            ProcessFacts {
                container: target.name().to_string(),
                profile: target.info.profile,
                knob: target.launch.count_env().map(str::to_string),
                base_processes: target.launch.base_processes(),
                workers,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kube_versions_parse() {
        assert_eq!(KubeVersion::parse("1.30"), Some(KubeVersion::new(1, 30)));
        assert_eq!(KubeVersion::parse("v1.29.4"), Some(KubeVersion::new(1, 29)));
        assert_eq!(KubeVersion::parse("1.28+"), Some(KubeVersion::new(1, 28)));
        assert_eq!(KubeVersion::parse("one"), None);
        assert_eq!(KubeVersion::parse("1"), None);
    }
}
