//! The report as a table, stable JSON, per-workload values, or kustomize patches.

use std::fmt::Write as _;

use anyhow::{Context as _, Result};
use serde_json::{Map, Value, json};

use super::Report;
use crate::core::recommend::{ContainerRecommendation, Status, WorkloadRecommendation};

pub fn json(report: &Report) -> Value {
    serde_json::to_value(report).unwrap_or(Value::Null)
}

fn status_name(status: Status) -> &'static str {
    match status {
        Status::Recommended => "recommended",
        Status::TooFewSamples => "too few samples",
        Status::NoData => "no data",
    }
}

pub fn text(report: &Report) -> String {
    let mut text = String::new();
    let (mut recommended, mut few, mut none) = (0, 0, 0);
    for workload in &report.workloads {
        let _ = writeln!(text, "{} -n {}", workload.workload, workload.namespace);
        for c in &workload.containers {
            match c.status {
                Status::Recommended => recommended += 1,
                Status::TooFewSamples => few += 1,
                Status::NoData => none += 1,
            }
            container_text(&mut text, c);
        }
    }
    let _ = writeln!(
        text,
        "{} workload(s) over {}: {recommended} container(s) recommended, {few} with too few samples, {none} without data; {} error(s)",
        report.workloads.len(),
        report.settings.window,
        report.errors.len()
    );
    text
}

fn container_text(text: &mut String, c: &ContainerRecommendation) {
    let _ = writeln!(
        text,
        "  {} ({}): {}, {} sample(s) from {} Pod(s)",
        c.container,
        c.profile,
        status_name(c.status),
        c.samples,
        c.pods.len()
    );
    let o = &c.observed;
    let mut seen = Vec::new();
    if let Some(cpu) = &o.cpu {
        seen.push(format!("CPU {cpu}"));
    }
    if let Some(peak) = &o.memory_peak {
        seen.push(format!("peak {peak}"));
    }
    if let Some(throttled) = o.throttled_percent {
        seen.push(format!("throttled {throttled} %"));
    }
    if o.oom_killed_pods > 0 {
        seen.push(format!("OOMKilled in {} Pod(s)", o.oom_killed_pods));
    }
    if let (Some(workers), Some(source)) = (o.workers, &o.workers_source) {
        seen.push(format!("{workers} workers ({source})"));
    }
    if let Some(per) = &o.memory_per_process {
        seen.push(format!("{per} per process"));
    }
    if !seen.is_empty() {
        let _ = writeln!(text, "    observed: {}", seen.join(", "));
    }
    for value in &c.recommended {
        let now = c.current.get(&value.field).map_or("-", String::as_str);
        let _ = writeln!(
            text,
            "    {} = {} (now {now})\n        {}",
            value.field, value.value, value.reason
        );
    }
    for note in &c.notes {
        let _ = writeln!(text, "    note: {note}");
    }
}

/// The resources and env of one recommended container, as a container patch.
fn container_values(c: &ContainerRecommendation) -> Map<String, Value> {
    let mut requests = Map::new();
    let mut limits = Map::new();
    let mut env = Map::new();
    for value in &c.recommended {
        let text = Value::String(value.value.clone());
        if let Some(key) = value.field.strip_prefix("resources.requests.") {
            requests.insert(key.to_string(), text);
        } else if let Some(key) = value.field.strip_prefix("resources.limits.") {
            limits.insert(key.to_string(), text);
        } else if let Some(name) = value.field.strip_prefix("env.") {
            env.insert(name.to_string(), text);
        }
    }
    let mut out = Map::new();
    out.insert("requests".into(), Value::Object(requests));
    if !limits.is_empty() {
        out.insert("limits".into(), Value::Object(limits));
    }
    if !env.is_empty() {
        out.insert("env".into(), Value::Object(env));
    }
    out
}

fn recommended(
    workload: &WorkloadRecommendation,
) -> impl Iterator<Item = &ContainerRecommendation> {
    workload
        .containers
        .iter()
        .filter(|c| c.status == Status::Recommended)
}

/// Per-workload values: namespace → workload → container → requests, limits and the variables
/// pytune sets from them, in YAML to review and commit.
pub fn policy(report: &Report) -> Result<String> {
    let mut namespaces = Map::new();
    for workload in &report.workloads {
        let containers: Map<String, Value> = recommended(workload)
            .map(|c| (c.container.clone(), Value::Object(container_values(c))))
            .collect();
        if containers.is_empty() {
            continue;
        }
        let entry = namespaces
            .entry(workload.namespace.clone())
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(workloads) = entry {
            workloads.insert(workload.workload.clone(), Value::Object(containers));
        }
    }
    let yaml = serde_saphyr::to_string(&json!({ "recommendations": namespaces }))
        .context("cannot render the values")?;
    Ok(format!(
        "# pytune recommend: usage over {}, p{} CPU, memory peak + {} %\n{yaml}",
        report.settings.window,
        report.settings.cpu_percentile,
        report.settings.memory_margin_percent
    ))
}

/// Where a workload kind keeps its Pod spec, and its API version.
fn template_path(kind: &str) -> Option<(&'static str, &'static [&'static str])> {
    const TEMPLATE: &[&str] = &["spec", "template", "spec"];
    match kind {
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" => Some(("apps/v1", TEMPLATE)),
        "Job" => Some(("batch/v1", TEMPLATE)),
        "CronJob" => Some((
            "batch/v1",
            &["spec", "jobTemplate", "spec", "template", "spec"],
        )),
        _ => None,
    }
}

/// Kustomize strategic-merge patches of each workload's container resources. The variables pytune
/// sizes are left to the webhook, which sets them from the new resources when the Pods are
/// created; the comment says which values that gives.
pub fn patch(report: &Report) -> Result<String> {
    let mut out = String::new();
    for workload in &report.workloads {
        let containers: Vec<&ContainerRecommendation> = recommended(workload).collect();
        if containers.is_empty() {
            continue;
        }
        let (kind, name) = workload
            .workload
            .split_once('/')
            .unwrap_or(("", workload.workload.as_str()));
        let Some((api_version, path)) = template_path(kind) else {
            let _ = writeln!(
                out,
                "# {} -n {}: a bare {kind} has no template to patch; change it where it is made\n---",
                workload.workload, workload.namespace
            );
            continue;
        };
        let mut comments = String::new();
        let patched: Vec<Value> = containers
            .iter()
            .map(|c| {
                let mut values = container_values(c);
                if let Some(Value::Object(env)) = values.remove("env") {
                    let sized: Vec<String> = env
                        .iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
                        .collect();
                    let _ = writeln!(
                        comments,
                        "# {}: pytune then sets {}",
                        c.container,
                        sized.join(" ")
                    );
                }
                json!({"name": c.container, "resources": values})
            })
            .collect();
        let mut spec = json!({ "containers": patched });
        for key in path.iter().rev() {
            spec = json!({ *key: spec });
        }
        let mut document = json!({
            "apiVersion": api_version,
            "kind": kind,
            "metadata": {"name": name, "namespace": workload.namespace},
        });
        if let (Value::Object(doc), Value::Object(spec)) = (&mut document, spec) {
            doc.extend(spec);
        }
        let yaml = serde_saphyr::to_string(&document).context("cannot render the patch")?;
        let _ = write!(
            out,
            "# {} -n {}: usage over {}\n{comments}{yaml}---\n",
            workload.workload, workload.namespace, report.settings.window
        );
    }
    Ok(out)
}
