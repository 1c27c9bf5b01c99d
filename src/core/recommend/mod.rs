//! Recommendations from observed usage: per-container aggregates of a workload's Pods (CPU
//! percentile, memory peak, throttling, OOM kills) + the Pod + policy → requests, a memory limit,
//! and the worker count and thread caps the engine derives from them, each with its reason in
//! numbers. No I/O: the CLI reads the usage from Prometheus and the Pods from the API.
//! docs/recommend.md gives every formula and its source.

mod format;
mod workers;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

use crate::core::engine::{self, Context, WorkloadProfile};
use crate::core::policy::Policy;
pub use format::{cpu_text, group_digits, memory_text};

/// CPU requests below this are noise in the scheduler's accounting (VPA's floor is 25m).
pub const CPU_FLOOR_MILLIS: u64 = 10;
/// CPU requests are rounded up to this step, so small changes in usage do not churn them.
pub const CPU_STEP_MILLIS: u64 = 5;
/// Memory is rounded up to whole MiB.
pub const MIB: u64 = 1024 * 1024;
/// After an OOM kill the true peak is unknown (it was cut at the old limit): raise by this
/// factor, in percent, and measure again.
pub const OOM_RAISE_PERCENT: u64 = 150;
/// Throttled in more than this share of CFS periods (percent), the CPU percentile understates
/// what the container wanted.
pub const THROTTLE_NOTE_PERCENT: f64 = 5.0;

/// How recommendations are made.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Settings {
    /// The window the usage covers, as given (`7d`).
    pub window: String,
    /// The CPU percentile, 0–100 (95).
    pub cpu_percentile: u32,
    /// Fewer CPU samples than this over the window (all Pods of the workload together): no
    /// recommendation, only the count.
    pub min_samples: u64,
    /// Margin over the memory peak, percent (15, as VPA's safety margin).
    pub memory_margin_percent: u64,
}

/// Usage of one container of one Pod over the window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PodUsage {
    pub pod: String,
    /// The CPU percentile of the container's usage rate, in cores.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu_cores: Option<f64>,
    /// Points of the CPU rate over the window, one per step.
    pub samples: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_peak_bytes: Option<f64>,
    /// CFS periods over the window, and those in which the container was throttled.
    pub periods: f64,
    pub throttled_periods: f64,
    /// Whether kube-state-metrics saw the container's last termination as OOMKilled.
    pub oom_killed: bool,
}

/// One workload: a Pod of it (its spec is what pytune reads) and each container's usage by Pod.
#[derive(Debug, Clone)]
pub struct WorkloadUsage {
    pub namespace: String,
    /// `Deployment/web`, `CronJob/nightly`, `Pod/name` for a bare Pod.
    pub workload: String,
    pub pod: Value,
    /// `(container, usage of each Pod)`.
    pub usage: Vec<(String, Vec<PodUsage>)>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Recommended,
    /// Fewer samples than `Settings::min_samples`: reported, never guessed.
    TooFewSamples,
    /// No usage series for the container at all.
    NoData,
}

/// A recommended value and its reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Recommended {
    /// `resources.requests.cpu`, `resources.limits.memory`, `env.WEB_CONCURRENCY`.
    pub field: String,
    pub value: String,
    pub reason: String,
}

/// What the usage shows, in the units people read.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Observed {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cpu: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_peak: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttled_percent: Option<f64>,
    pub oom_killed_pods: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers_source: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory_per_process: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContainerRecommendation {
    pub container: String,
    pub profile: WorkloadProfile,
    pub status: Status,
    /// CPU samples of all Pods together.
    pub samples: u64,
    /// Each Pod's samples, by Pod name.
    pub pods: Vec<PodSamples>,
    pub observed: Observed,
    /// The values the container has now, of the fields recommended or of its resources:
    /// `resources.requests.cpu` → `250m`, `env.WEB_CONCURRENCY` → `3`.
    pub current: BTreeMap<String, String>,
    pub recommended: Vec<Recommended>,
    pub notes: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct PodSamples {
    pub pod: String,
    pub samples: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadRecommendation {
    pub namespace: String,
    pub workload: String,
    pub containers: Vec<ContainerRecommendation>,
}

/// Recommends for each container pytune targets in the workload's Pod (sidecars and init
/// containers are not pytune's to size).
pub fn recommend(
    workload: &WorkloadUsage,
    policy: &Policy,
    ctx: &Context,
    settings: &Settings,
) -> WorkloadRecommendation {
    let containers = engine::process_facts(&workload.pod, policy, ctx)
        .into_iter()
        .map(|facts| {
            let usage = workload
                .usage
                .iter()
                .find(|(name, _)| *name == facts.container)
                .map_or(&[][..], |(_, pods)| pods.as_slice());
            container(&workload.pod, &facts, usage, policy, ctx, settings)
        })
        .collect();
    WorkloadRecommendation {
        namespace: workload.namespace.clone(),
        workload: workload.workload.clone(),
        containers,
    }
}

fn container(
    pod: &Value,
    facts: &engine::ProcessFacts,
    usage: &[PodUsage],
    policy: &Policy,
    ctx: &Context,
    settings: &Settings,
) -> ContainerRecommendation {
    let mut pods: Vec<PodSamples> = usage
        .iter()
        .map(|u| PodSamples {
            pod: u.pod.clone(),
            samples: u.samples,
        })
        .collect();
    pods.sort();
    let samples = usage.iter().map(|u| u.samples).sum();
    let mut out = ContainerRecommendation {
        container: facts.container.clone(),
        profile: facts.profile,
        status: Status::NoData,
        samples,
        pods,
        observed: Observed::default(),
        current: current_resources(pod, &facts.container),
        recommended: Vec::new(),
        notes: Vec::new(),
    };
    let aggregate = Aggregate::of(usage);
    out.observed = observed(&aggregate, facts, pod);
    if usage.is_empty() || aggregate.cpu_millis.is_none() && aggregate.memory_peak.is_none() {
        out.notes
            .push("no usage series for this container in the window".to_string());
        return out;
    }
    if samples < settings.min_samples {
        out.status = Status::TooFewSamples;
        out.notes.push(format!(
            "{} sample(s) over {}, fewer than the {} needed (--min-samples): not enough to recommend",
            group_digits(samples),
            settings.window,
            group_digits(settings.min_samples)
        ));
        return out;
    }
    out.status = Status::Recommended;
    workers::recommend(pod, facts, &aggregate, policy, ctx, settings, &mut out);
    for field in out.recommended.iter().map(|v| v.field.as_str()) {
        if let Some(name) = field.strip_prefix("env.")
            && let Some(value) = env_value(pod, &facts.container, name)
        {
            out.current.insert(field.to_string(), value);
        }
    }
    out
}

fn container_json<'p>(pod: &'p Value, container: &str) -> Option<&'p Value> {
    pod.pointer("/spec/containers")
        .and_then(Value::as_array)
        .and_then(|cs| cs.iter().find(|c| c["name"].as_str() == Some(container)))
}

/// The literal value of a container's `env` entry.
fn env_value(pod: &Value, container: &str, name: &str) -> Option<String> {
    container_json(pod, container)?
        .get("env")?
        .as_array()?
        .iter()
        // The kubelet applies entries in order: the last of a name is the one that counts.
        .rfind(|e| e["name"].as_str() == Some(name))?
        .get("value")?
        .as_str()
        .map(str::to_string)
}

/// The usage of all Pods of a workload's container, combined.
#[derive(Debug, Clone, Default)]
pub(crate) struct Aggregate {
    /// The highest of the Pods' CPU percentiles, in millicores (rounded up).
    pub cpu_millis: Option<u64>,
    pub samples: u64,
    pub memory_peak: Option<u64>,
    pub throttled_percent: Option<f64>,
    pub oom_killed_pods: usize,
}

impl Aggregate {
    fn of(usage: &[PodUsage]) -> Aggregate {
        // Prometheus may answer NaN or ±Inf (e.g. a rate over a reset); those say nothing.
        let finite = |v: Option<f64>| v.filter(|v| v.is_finite() && *v >= 0.0);
        let cpu_millis = usage
            .iter()
            .filter_map(|u| finite(u.cpu_cores))
            .map(|cores| to_u64((cores * 1000.0).ceil()))
            .max();
        let memory_peak = usage
            .iter()
            .filter_map(|u| finite(u.memory_peak_bytes))
            .map(|bytes| to_u64(bytes.ceil()))
            .max();
        let periods: f64 = usage.iter().filter_map(|u| finite(Some(u.periods))).sum();
        let throttled: f64 = usage
            .iter()
            .filter_map(|u| finite(Some(u.throttled_periods)))
            .sum();
        let throttled_percent =
            (periods > 0.0).then(|| ((throttled / periods).min(1.0) * 1000.0).round() / 10.0);
        Aggregate {
            cpu_millis,
            samples: usage.iter().map(|u| u.samples).sum(),
            memory_peak,
            throttled_percent,
            oom_killed_pods: usage.iter().filter(|u| u.oom_killed).count(),
        }
    }
}

/// A non-negative finite float as an integer, saturating.
fn to_u64(value: f64) -> u64 {
    if value.is_finite() && value > 0.0 {
        // `as` saturates at u64::MAX for larger values.
        value as u64
    } else {
        0
    }
}

fn observed(aggregate: &Aggregate, facts: &engine::ProcessFacts, pod: &Value) -> Observed {
    let workers = facts.workers.as_ref();
    Observed {
        cpu: aggregate.cpu_millis.map(cpu_text),
        memory_peak: aggregate.memory_peak.map(memory_text),
        throttled_percent: aggregate.throttled_percent,
        oom_killed_pods: aggregate.oom_killed_pods,
        workers: workers.map(|(count, _)| *count),
        workers_source: workers.map(|(_, source)| workers::source(pod, facts, source)),
        memory_per_process: workers::per_process(aggregate, facts).map(memory_text),
    }
}

/// The container's requests and limits as the Pod has them.
fn current_resources(pod: &Value, container: &str) -> BTreeMap<String, String> {
    let Some(resources) = container_json(pod, container).and_then(|c| c.get("resources")) else {
        return BTreeMap::new();
    };
    let mut out = BTreeMap::new();
    for side in ["requests", "limits"] {
        for key in ["cpu", "memory"] {
            if let Some(text) = resources.get(side).and_then(|v| v.get(key)) {
                let text = match text {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                };
                out.insert(format!("resources.{side}.{key}"), text);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests;
