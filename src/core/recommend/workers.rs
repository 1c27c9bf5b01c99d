//! The recommended values of one container with enough samples: requests from usage, a memory
//! limit that fits the workers, and the worker count and thread caps the engine sizes from them.
//! The engine itself sizes the workers (on a copy of the Pod carrying the recommended resources),
//! so a recommendation never disagrees with what the webhook would set.

use serde_json::{Map, Value};

use super::format::{group_digits, percent_of, round_up};
use super::{
    Aggregate, CPU_FLOOR_MILLIS, CPU_STEP_MILLIS, ContainerRecommendation, MIB, OOM_RAISE_PERCENT,
    Recommended, Settings, THROTTLE_NOTE_PERCENT, cpu_text, memory_text,
};
use crate::core::engine::{self, Change, Context, Feature, ProcessFacts, annotations, record};
use crate::core::policy::Policy;

/// Memory of one process: the peak shared by the workers and the base processes (a gunicorn
/// master), as the engine's memory cap counts them.
pub(super) fn per_process(aggregate: &Aggregate, facts: &ProcessFacts) -> Option<u64> {
    let (workers, _) = facts.workers.as_ref()?;
    let processes = u64::from(workers.saturating_add(facts.base_processes)).max(1);
    Some(aggregate.memory_peak?.div_ceil(processes))
}

/// Where the worker count comes from, saying so when pytune set it.
pub(super) fn source(pod: &Value, facts: &ProcessFacts, source: &str) -> String {
    let by_pytune = facts.knob.as_ref().is_some_and(|knob| {
        recorded(pod)
            .fields
            .iter()
            .any(|(owner, field)| *owner == facts.container && *field == format!("env.{knob}"))
    });
    if by_pytune {
        format!("{source}, set by pytune")
    } else {
        source.to_string()
    }
}

fn recorded(pod: &Value) -> record::Recorded {
    pod.pointer("/metadata/annotations")
        .and_then(|a| a.get(annotations::INJECTED))
        .and_then(Value::as_str)
        .map(record::parse)
        .unwrap_or_default()
}

pub(super) fn recommend(
    pod: &Value,
    facts: &ProcessFacts,
    aggregate: &Aggregate,
    policy: &Policy,
    ctx: &Context,
    settings: &Settings,
    out: &mut ContainerRecommendation,
) {
    let window = &settings.window;
    let samples = group_digits(aggregate.samples);
    let pods = out.pods.len();
    let cpu = aggregate.cpu_millis.map(|observed| {
        let value = round_up(observed, CPU_STEP_MILLIS).max(CPU_FLOOR_MILLIS);
        let of_pods = if pods > 1 {
            format!(", the highest of {pods} Pods")
        } else {
            String::new()
        };
        let floor = if value == CPU_FLOOR_MILLIS && observed < CPU_FLOOR_MILLIS {
            format!("; at least {}", cpu_text(CPU_FLOOR_MILLIS))
        } else {
            String::new()
        };
        push(
            out,
            "resources.requests.cpu",
            cpu_text(value),
            format!(
                "p{} CPU {} over {window}, {samples} samples{of_pods}{floor}; no CPU limit added",
                settings.cpu_percentile,
                cpu_text(observed)
            ),
        );
        value
    });
    if let Some(throttled) = aggregate.throttled_percent
        && throttled > THROTTLE_NOTE_PERCENT
    {
        out.notes.push(format!(
            "throttled in {throttled} % of CFS periods: the CPU limit capped usage, so the p{} \
             understates demand; raise or remove the CPU limit and measure again",
            settings.cpu_percentile
        ));
    }
    let margin = 100 + settings.memory_margin_percent;
    let Some(peak) = aggregate.memory_peak else {
        out.notes
            .push("no memory series: memory not recommended".to_string());
        sized_env(pod, facts, cpu, None, policy, ctx, out);
        return;
    };
    let request = round_up(percent_of(peak, margin), MIB);
    push(
        out,
        "resources.requests.memory",
        memory_text(request),
        format!(
            "peak {} over {window} + {} % margin",
            memory_text(peak),
            settings.memory_margin_percent
        ),
    );

    // First the worker count from CPU alone, then a limit that fits that many workers.
    let per_process = per_process(aggregate, facts);
    let first = engine_env(pod, facts, cpu, request, None, per_process, policy, ctx);
    let workers = count_in(&first, facts).or(facts.workers.as_ref().map(|(count, _)| *count));
    let mut limit = request;
    let mut reason = format!(
        "as the request: peak {} + {} %",
        memory_text(peak),
        settings.memory_margin_percent
    );
    if let (Some(per_process), Some(workers), Some((observed, _))) =
        (per_process, workers, facts.workers.as_ref())
    {
        let processes = u64::from(workers.saturating_add(facts.base_processes));
        let fits = round_up(
            percent_of(per_process.saturating_mul(processes), margin),
            MIB,
        );
        let besides = match facts.base_processes {
            0 => String::new(),
            base => format!(" + {base} master"),
        };
        let measured = format!(
            "peak {} with {observed} workers{besides} = {} per process",
            memory_text(peak),
            memory_text(per_process)
        );
        if fits > limit {
            limit = fits;
            reason = format!(
                "{measured}; {workers} workers{besides} × {} + {} % = {}",
                memory_text(per_process),
                settings.memory_margin_percent,
                memory_text(fits)
            );
        } else {
            reason = format!("{reason}; {measured}, so {workers} workers{besides} fit");
        }
    }
    if aggregate.oom_killed_pods > 0 {
        let old_limit = current_memory_limit(out);
        let cut = old_limit.unwrap_or(0).max(peak);
        let raised = round_up(percent_of(cut, OOM_RAISE_PERCENT), MIB);
        if raised > limit {
            limit = raised;
        }
        let at = match old_limit {
            Some(old) => format!("cut at the limit {}", memory_text(old)),
            None => "cut short".to_string(),
        };
        reason = format!(
            "OOMKilled in {} Pod(s) over {window}: the peak was {at}, so the need is unknown; \
             {} × {:.1} = {} (measure again after a week)",
            aggregate.oom_killed_pods,
            memory_text(cut),
            OOM_RAISE_PERCENT as f64 / 100.0,
            memory_text(limit)
        );
    }
    push(out, "resources.limits.memory", memory_text(limit), reason);
    sized_env(
        pod,
        facts,
        cpu,
        Some((request, limit, per_process)),
        policy,
        ctx,
        out,
    );
}

/// The engine's worker count and thread caps for the recommended resources.
fn sized_env(
    pod: &Value,
    facts: &ProcessFacts,
    cpu: Option<u64>,
    memory: Option<(u64, u64, Option<u64>)>,
    policy: &Policy,
    ctx: &Context,
    out: &mut ContainerRecommendation,
) {
    let changes = match memory {
        Some((request, limit, per_process)) => engine_env(
            pod,
            facts,
            cpu,
            request,
            Some(limit),
            per_process,
            policy,
            ctx,
        ),
        None => engine_env_cpu_only(pod, facts, cpu, policy, ctx),
    };
    let sets_count = count_in(&changes, facts).is_some();
    for change in changes {
        if let Some(value) = change.value.as_str() {
            out.recommended.push(Recommended {
                field: change.field.clone(),
                value: value.to_string(),
                reason: change.reason.clone(),
            });
        }
    }
    if !sets_count && let (Some(knob), Some((count, source))) = (&facts.knob, &facts.workers) {
        out.notes.push(format!(
            "{knob}: {count} workers ({source}) kept; pytune never replaces a count set in the Pod"
        ));
    }
}

fn push(out: &mut ContainerRecommendation, field: &str, value: String, reason: String) {
    out.recommended.push(Recommended {
        field: field.to_string(),
        value,
        reason,
    });
}

fn current_memory_limit(out: &ContainerRecommendation) -> Option<u64> {
    out.current
        .get("resources.limits.memory")
        .and_then(|text| crate::core::quantity::memory_bytes(text).ok())
}

fn count_in(changes: &[Change], facts: &ProcessFacts) -> Option<u32> {
    let knob = format!("env.{}", facts.knob.as_deref()?);
    changes
        .iter()
        .find(|c| c.field == knob)
        .and_then(|c| c.value.as_str())
        .and_then(|v| v.parse().ok())
}

fn engine_env_cpu_only(
    pod: &Value,
    facts: &ProcessFacts,
    cpu: Option<u64>,
    policy: &Policy,
    ctx: &Context,
) -> Vec<Change> {
    let resources = cpu.map(|cpu| vec![("requests", "cpu", cpu_text(cpu))]);
    run_engine(pod, facts, resources.unwrap_or_default(), None, policy, ctx)
}

#[allow(clippy::too_many_arguments)]
fn engine_env(
    pod: &Value,
    facts: &ProcessFacts,
    cpu: Option<u64>,
    request: u64,
    limit: Option<u64>,
    per_process: Option<u64>,
    policy: &Policy,
    ctx: &Context,
) -> Vec<Change> {
    let mut resources = vec![("requests", "memory", memory_text(request))];
    if let Some(cpu) = cpu {
        resources.push(("requests", "cpu", cpu_text(cpu)));
    }
    if let Some(limit) = limit {
        resources.push(("limits", "memory", memory_text(limit)));
    }
    run_engine(pod, facts, resources, per_process, policy, ctx)
}

/// Plans a copy of the Pod without pytune's earlier additions, with `resources` set on the
/// container (and no memory limit unless given), resources left alone by the engine, and the
/// observed memory per process as the worker budget; returns the sized variables it would add.
fn run_engine(
    pod: &Value,
    facts: &ProcessFacts,
    resources: Vec<(&str, &str, String)>,
    per_process: Option<u64>,
    policy: &Policy,
    ctx: &Context,
) -> Vec<Change> {
    let mut copy = record::without_recorded(pod, &recorded(pod));
    let Some(container) = copy
        .pointer_mut("/spec/containers")
        .and_then(Value::as_array_mut)
        .and_then(|cs| {
            cs.iter_mut()
                .find(|c| c["name"].as_str() == Some(facts.container.as_str()))
        })
        .and_then(Value::as_object_mut)
    else {
        return Vec::new();
    };
    let current = container
        .get("resources")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    let side = |name: &str| -> Map<String, Value> {
        current
            .get(name)
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default()
    };
    let mut requests = side("requests");
    let mut limits = side("limits");
    // The recommendation replaces the memory limit; without one, sizing is by CPU alone.
    limits.remove("memory");
    for (side, key, text) in resources {
        let map = if side == "requests" {
            &mut requests
        } else {
            &mut limits
        };
        map.insert(key.to_string(), Value::String(text));
    }
    let mut new = Map::new();
    new.insert("requests".into(), Value::Object(requests));
    new.insert("limits".into(), Value::Object(limits));
    container.insert("resources".into(), Value::Object(new));

    let Some(metadata) = copy.get_mut("metadata").and_then(Value::as_object_mut) else {
        return Vec::new();
    };
    let values = metadata
        .entry("annotations")
        .or_insert_with(|| Value::Object(Map::new()));
    if !values.is_object() {
        *values = Value::Object(Map::new());
    }
    if let Some(values) = values.as_object_mut() {
        let skip = match values.get(annotations::SKIP).and_then(Value::as_str) {
            Some(skip) if !skip.trim().is_empty() => format!("{skip},resources"),
            _ => "resources".to_string(),
        };
        values.insert(annotations::SKIP.into(), Value::String(skip));
        if let Some(per_process) = per_process {
            values.insert(
                annotations::MEMORY_PER_WORKER.into(),
                Value::String(memory_text(per_process)),
            );
        }
    }
    let Ok(plan) = engine::plan(&copy, policy, ctx) else {
        return Vec::new();
    };
    let sized = |field: &str| {
        let Some(name) = field.strip_prefix("env.") else {
            return false;
        };
        facts.knob.as_deref() == Some(name)
            || name == "PYTHON_CPU_COUNT"
            || policy.env.thread_caps.iter().any(|cap| cap == name)
    };
    plan.changes
        .into_iter()
        .filter(|c| {
            c.feature == Feature::Env
                && c.container.as_deref() == Some(facts.container.as_str())
                && sized(&c.field)
        })
        .collect()
}
