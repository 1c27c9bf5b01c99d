//! Environment variables for Python: interpreter flags and values sized from the container's CPU.
//! A variable the container already defines — in `env`, or possibly through `envFrom` — is never
//! added, because an explicit `env` entry would silently override the user's value.

use std::collections::{BTreeSet, HashSet};

use serde_json::{Value, json};

use super::resources::SizingBase;
use super::{Feature, Planner, Target, Warning, WorkloadProfile, sizing};
use crate::quantity;

/// What the container's `envFrom` sources may define.
struct EnvFrom {
    known_keys: BTreeSet<String>,
    /// Sources whose keys pytune cannot know (Secrets, and ConfigMaps it was not given).
    unknown_sources: Vec<String>,
}

fn env_from(target: &Target, planner: &Planner) -> EnvFrom {
    let mut known_keys = BTreeSet::new();
    let mut unknown_sources = Vec::new();
    for source in target.container.env_from.iter().flatten() {
        let prefix = source.prefix.as_deref().unwrap_or("");
        if let Some(config_map) = &source.config_map_ref {
            match planner.ctx.config_map_keys.get(&config_map.name) {
                Some(keys) => known_keys.extend(keys.iter().map(|key| format!("{prefix}{key}"))),
                None => unknown_sources.push(format!("ConfigMap {}", config_map.name)),
            }
        }
        if let Some(secret) = &source.secret_ref {
            unknown_sources.push(format!("Secret {}", secret.name));
        }
    }
    EnvFrom {
        known_keys,
        unknown_sources,
    }
}

fn fixed_reason(name: &str) -> &'static str {
    match name {
        "PYTHONUNBUFFERED" => {
            "stdout/stderr unbuffered, so logs reach kubectl logs at once and survive a crash"
        }
        "PYTHONFAULTHANDLER" => "a segfault or hang dumps the Python traceback to stderr",
        "PYTHONDONTWRITEBYTECODE" => {
            "no .pyc writes into a read-only or throwaway container filesystem"
        }
        _ => "set by the policy (env.fixed)",
    }
}

pub fn plan(target: &Target, base: &SizingBase, planner: &mut Planner) {
    let defined: HashSet<&str> = target
        .container
        .env
        .iter()
        .flatten()
        .map(|var| var.name.as_str())
        .collect();
    let sources = env_from(target, planner);
    let name = target.name().to_string();
    let policy = planner.policy;

    // Fixed interpreter flags.
    let fixed_allowed =
        sources.unknown_sources.is_empty() || policy.env.fixed_when_env_from_unknown;
    let mut additions: Vec<(String, String, String)> = Vec::new();
    for (var, value) in &policy.env.fixed {
        if defined.contains(var.as_str()) {
            continue;
        }
        if sources.known_keys.contains(var) {
            planner.note(
                Some(&name),
                Feature::Env,
                format!("{var} not added: envFrom defines it"),
            );
        } else if !fixed_allowed {
            planner.note(
                Some(&name),
                Feature::Env,
                format!(
                    "{var} not added: envFrom {} may define it",
                    sources.unknown_sources.join(", ")
                ),
            );
        } else {
            additions.push((var.clone(), value.clone(), fixed_reason(var).to_string()));
        }
    }

    // Values computed from the CPU the container gets.
    let computed = computed(target, base, &defined, planner);
    let mut blocked_by_unknown = Vec::new();
    for (var, value, reason) in computed {
        if defined.contains(var.as_str()) {
            continue;
        }
        if sources.known_keys.contains(&var) {
            planner.note(
                Some(&name),
                Feature::Env,
                format!("{var} not added: envFrom defines it"),
            );
        } else if !sources.unknown_sources.is_empty() {
            blocked_by_unknown.push(var);
        } else {
            additions.push((var, value, reason));
        }
    }
    if !blocked_by_unknown.is_empty() {
        let sources = sources.unknown_sources.join(", ");
        planner.note(
            Some(&name),
            Feature::Env,
            format!(
                "{} not added: envFrom {sources} may define them",
                blocked_by_unknown.join(", ")
            ),
        );
        planner.warn(Warning::container(
            &name,
            format!(
                "envFrom {sources} unreadable; {} not set",
                blocked_by_unknown.join(", ")
            ),
        ));
    }

    for (var, value, reason) in additions {
        let entry = json!({ "name": var, "value": value });
        let path = planner.builder.append(&target.tokens(&["env"]), entry);
        planner.change(
            Some(&name),
            Feature::Env,
            format!("env.{var}"),
            path,
            Value::String(value),
            reason,
        );
    }
}

/// `(name, value, reason)` of the CPU-derived variables, in the order they are added.
fn computed(
    target: &Target,
    base: &SizingBase,
    defined: &HashSet<&str>,
    planner: &mut Planner,
) -> Vec<(String, String, String)> {
    let policy = planner.policy;
    let Some(millis) = base.cpu_millis else {
        planner.note(
            Some(target.name()),
            Feature::Env,
            "no CPU request or limit to size workers and threads from",
        );
        return Vec::new();
    };
    let cpus = quantity::whole_cpus(millis);
    let mut out = Vec::new();

    let planned_workers = match target.info.profile {
        WorkloadProfile::Web if policy.env.web_concurrency => sizing::web_workers(target, base),
        _ => None,
    };
    // The user's own WEB_CONCURRENCY, when it is a number, is what the server will run.
    let user_workers = target
        .container
        .env
        .iter()
        .flatten()
        .find(|var| var.name == "WEB_CONCURRENCY")
        .and_then(|var| var.value.as_deref())
        .and_then(|value| value.trim().parse::<u32>().ok())
        .filter(|count| *count >= 1);
    if let Some(workers) = &planned_workers
        && !defined.contains("WEB_CONCURRENCY")
    {
        out.push((
            "WEB_CONCURRENCY".to_string(),
            workers.count.to_string(),
            workers.reason.clone(),
        ));
    }
    if policy.env.python_cpu_count {
        out.push((
            "PYTHON_CPU_COUNT".to_string(),
            cpus.to_string(),
            format!(
                "CPython 3.13+ reports {cpus} CPU(s) ({}) instead of the node's cores",
                base.cpu_source
            ),
        ));
    }
    let workers = user_workers
        .or(planned_workers.map(|w| w.count))
        .unwrap_or(1);
    let threads = (cpus / workers).max(1);
    for var in &policy.env.thread_caps {
        out.push((
            var.clone(),
            threads.to_string(),
            format!(
                "native thread pools sized from the node's cores; {threads} = {cpus} CPU(s) / {workers} worker(s)"
            ),
        ));
    }
    out
}
