//! CPU and memory requests and limits: fill only what is absent, and never produce requests above
//! limits.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

use super::sizing::FanOut;
use crate::core::engine::directives::annotations;
use crate::core::engine::{Feature, PatchValue, Planner, Target, Warning};
use crate::core::learned::LearnedValues;
use crate::core::quantity;

/// What the container gets once the plan applies: the inputs of worker and thread sizing.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SizingBase {
    /// CPU the container may use, in millicores: its limit if set, else its request.
    pub cpu_millis: Option<u64>,
    /// Where `cpu_millis` comes from, in words.
    pub cpu_source: String,
    pub memory_limit_bytes: Option<u64>,
}

#[derive(Clone, Copy)]
enum Dimension {
    Cpu,
    Memory,
}

impl Dimension {
    fn key(self) -> &'static str {
        match self {
            Dimension::Cpu => "cpu",
            Dimension::Memory => "memory",
        }
    }

    fn parse(self, text: &str) -> Result<u64, quantity::QuantityError> {
        match self {
            Dimension::Cpu => quantity::cpu_millis(text),
            Dimension::Memory => quantity::memory_bytes(text),
        }
    }
}

/// One side (request or limit) of one dimension: the text and its parsed value.
#[derive(Clone)]
struct Amount {
    text: String,
    value: u64,
}

/// Reads one user value; an unparsable one is reported and makes the dimension the user's alone.
fn read(
    values: Option<&BTreeMap<String, Quantity>>,
    dimension: Dimension,
    side: &str,
    target: &Target,
    planner: &mut Planner,
) -> Result<Option<Amount>, ()> {
    let Some(Quantity(text)) = values.and_then(|values| values.get(dimension.key())) else {
        return Ok(None);
    };
    match dimension.parse(text) {
        Ok(value) => Ok(Some(Amount {
            text: text.clone(),
            value,
        })),
        Err(err) => {
            planner.warn(Warning::container(
                target.name(),
                format!("{side}.{}: {err}", dimension.key()),
            ));
            Err(())
        }
    }
}

/// Each side's read result, per dimension.
type UserAmounts = (Result<Option<Amount>, ()>, Result<Option<Amount>, ()>);

/// The container's own request and limit of CPU and memory; unreadable ones are reported.
fn user_amounts(target: &Target, planner: &mut Planner) -> [(Dimension, UserAmounts); 2] {
    let resources = target.container.resources.as_ref();
    let requests = resources.and_then(|r| r.requests.as_ref());
    let limits = resources.and_then(|r| r.limits.as_ref());
    [Dimension::Cpu, Dimension::Memory].map(|dimension| {
        let request = read(requests, dimension, "requests", target, planner);
        let limit = read(limits, dimension, "limits", target, planner);
        (dimension, (request, limit))
    })
}

/// Plans the missing requests and limits of one container and returns what it will then get.
/// A memory limit is added only where the processes the container starts are known to fit it
/// (`fan_out`, each taking `per_process`): raised to cover them when they are known, left out
/// when they cannot be known.
pub fn plan(
    pod: &Pod,
    target: &Target,
    fan_out: &FanOut,
    per_process: Option<&(String, u64)>,
    planner: &mut Planner,
) -> SizingBase {
    if let Some(base) = pod_level(pod) {
        planner.note(
            Some(target.name()),
            Feature::Resources,
            "Pod-level spec.resources set: containers share that budget, none added per container",
        );
        return base;
    }
    let policy = planner.policy;
    let profile = policy.profile(target.info.profile);
    let learned = planner.ctx.learned.get(target.name());
    let mut effective = [(None, None), (None, None)];

    for (slot, (dimension, user)) in effective.iter_mut().zip(user_amounts(target, planner)) {
        let key = dimension.key();
        let (Ok(user_request), Ok(user_limit)) = user else {
            continue;
        };
        let (default_request, default_limit) = match dimension {
            Dimension::Cpu => (
                &profile.resources.requests.cpu,
                &profile.resources.limits.cpu,
            ),
            Dimension::Memory => (
                &profile.resources.requests.memory,
                &profile.resources.limits.memory,
            ),
        };
        let profile_name = target.info.profile;
        // Learned values stand in for the profile's, where the profile has one: learning never
        // adds a kind of value the policy leaves out.
        let (default_request, request_source) = match (
            default_request,
            learned.and_then(|l| l.request(dimension)),
            learned,
        ) {
            (Some(_), Some(text), Some(learned)) => (Some(text), learned.provenance.clone()),
            (default, _, _) => (default.clone(), format!("{profile_name} profile default")),
        };
        let learned_limit = learned.and_then(|l| l.limit(dimension));

        let mut request = user_request.clone();
        if user_request.is_none()
            && let Some(text) = &default_request
        {
            if user_limit.is_some() {
                planner.note(
                    Some(target.name()),
                    Feature::Resources,
                    format!("requests.{key} left unset: Kubernetes sets it equal to the limit"),
                );
            } else if let Ok(value) = dimension.parse(text) {
                let path = planner.builder.set(
                    &target.tokens(&["resources", "requests", key]),
                    PatchValue::String(text.clone()),
                );
                let why = match dimension {
                    Dimension::Cpu => {
                        "no CPU request: the scheduler would count the container as using none"
                    }
                    Dimension::Memory => {
                        "no memory request: the scheduler could overpack the node and evict it"
                    }
                };
                planner.change(
                    Some(target.name()),
                    Feature::Resources,
                    ["resources.requests.", key].concat(),
                    path,
                    PatchValue::String(text.clone()),
                    format!("{why} ({request_source})"),
                );
                request = Some(Amount {
                    text: text.clone(),
                    value,
                });
            }
        }

        let mut limit = user_limit.clone();
        let (mut default_limit, limit_learned) = match (default_limit, learned_limit, learned) {
            (Some(_), Some(text), Some(learned)) => (Some(text), Some(&learned.provenance)),
            (default, _, _) => (default.clone(), None),
        };
        let limit_source = match limit_learned {
            Some(provenance) => provenance.clone(),
            None => format!("{profile_name} profile default"),
        };
        if user_limit.is_none()
            && default_limit.is_some()
            && let Dimension::Memory = dimension
        {
            match (fan_out, per_process) {
                (FanOut::Unknown(why) | FanOut::Defaulted { why, .. }, _) => {
                    planner.note(
                        Some(target.name()),
                        Feature::Resources,
                        format!("no memory limit: {why}"),
                    );
                    default_limit = None;
                }
                (_, None) => {
                    planner.note(
                        Some(target.name()),
                        Feature::Resources,
                        format!(
                            "no memory limit: the catalog gives no memory per process for {}; set {} to get one",
                            target.launch.name().unwrap_or("this application"),
                            annotations::MEMORY_PER_WORKER
                        ),
                    );
                    default_limit = None;
                }
                (fan_out, Some(per_process)) => {
                    let (processes, why) = match fan_out {
                        FanOut::Known { processes, source } => (
                            *processes,
                            format!(
                                "covers {processes} processes ({source}) × {}",
                                per_process.0
                            ),
                        ),
                        // pytune sets the count and fits it below; the limit must hold the fewest
                        // workers the app runs with and the processes that run besides them.
                        _ => {
                            let base = target.launch.base_processes();
                            let fewest = target.launch.minimum_count();
                            let workers = match fewest {
                                1 => "one worker".to_string(),
                                n => format!("{n} workers (its minimum)"),
                            };
                            (
                                fewest.saturating_add(base),
                                format!(
                                    "covers {workers} and {base} more process(es) × {}",
                                    per_process.0
                                ),
                            )
                        }
                    };
                    if let Some(raised) = raise_limit(
                        processes,
                        per_process,
                        &default_limit,
                        &request,
                        why,
                        target,
                        planner,
                    ) {
                        limit = Some(raised);
                        default_limit = None;
                    }
                }
            }
        }
        if user_limit.is_none()
            && let Some(text) = &default_limit
            && let Ok(value) = dimension.parse(text)
        {
            let (chosen, reason) = match &request {
                Some(request) if request.value > value => (
                    request.clone(),
                    match limit_learned {
                        Some(_) => format!(
                            "the learned limit {text} is below the request, so the limit equals the request"
                        ),
                        None => format!(
                            "the {profile_name} default {text} is below the request, so the limit equals the request"
                        ),
                    },
                ),
                _ => (
                    Amount {
                        text: text.clone(),
                        value,
                    },
                    match dimension {
                        Dimension::Memory => format!(
                            "no memory limit: one leaking worker could exhaust the node ({limit_source})"
                        ),
                        Dimension::Cpu => {
                            format!("the policy sets CPU limits for the {profile_name} profile")
                        }
                    },
                ),
            };
            let path = planner.builder.set(
                &target.tokens(&["resources", "limits", key]),
                PatchValue::String(chosen.text.clone()),
            );
            planner.change(
                Some(target.name()),
                Feature::Resources,
                ["resources.limits.", key].concat(),
                path,
                PatchValue::String(chosen.text.clone()),
                reason,
            );
            limit = Some(chosen);
        }
        *slot = (request, limit);
    }
    sizing_base(&effective)
}

impl LearnedValues {
    fn request(&self, dimension: Dimension) -> Option<String> {
        let text = match dimension {
            Dimension::Cpu => &self.cpu_request,
            Dimension::Memory => &self.memory_request,
        };
        usable(dimension, text)
    }

    /// Only memory limits are learned: CPU limits throttle Python services (docs/policy.md).
    fn limit(&self, dimension: Dimension) -> Option<String> {
        match dimension {
            Dimension::Cpu => None,
            Dimension::Memory => usable(dimension, &self.memory_limit),
        }
    }
}

/// A learned value the engine can use; one that does not parse (a Context built by hand) is
/// ignored rather than trusted.
fn usable(dimension: Dimension, text: &Option<String>) -> Option<String> {
    text.as_ref()
        .filter(|text| dimension.parse(text).is_ok_and(|value| value > 0))
        .cloned()
}

/// Adds a memory limit of `processes` × `per_process` when that is above the profile's default
/// limit (and not below the request, which then decides the limit); returns it when added.
fn raise_limit(
    processes: u32,
    per_process: &(String, u64),
    default_limit: &Option<String>,
    request: &Option<Amount>,
    reason: String,
    target: &Target,
    planner: &mut Planner,
) -> Option<Amount> {
    let needed = u64::from(processes).saturating_mul(per_process.1);
    let default = default_limit
        .as_deref()
        .and_then(|text| quantity::memory_bytes(text).ok())
        .unwrap_or(0);
    if needed <= default || request.as_ref().is_some_and(|r| r.value > needed) {
        return None;
    }
    let text = quantity::format_bytes(needed);
    let path = planner.builder.set(
        &target.tokens(&["resources", "limits", "memory"]),
        PatchValue::String(text.clone()),
    );
    planner.change(
        Some(target.name()),
        Feature::Resources,
        "resources.limits.memory",
        path,
        PatchValue::String(text.clone()),
        reason,
    );
    Some(Amount {
        text,
        value: needed,
    })
}

/// What the container gets as it stands, when the resources feature is skipped.
pub fn current(pod: &Pod, target: &Target, planner: &mut Planner) -> SizingBase {
    if let Some(base) = pod_level(pod) {
        return base;
    }
    let effective = user_amounts(target, planner)
        .map(|(_, (request, limit))| (request.unwrap_or(None), limit.unwrap_or(None)));
    sizing_base(&effective)
}

fn sizing_base(effective: &[(Option<Amount>, Option<Amount>); 2]) -> SizingBase {
    let [(cpu_request, cpu_limit), (_, memory_limit)] = effective;
    let (cpu_millis, cpu_source) = match (cpu_limit, cpu_request) {
        (Some(limit), _) => (Some(limit.value), format!("CPU limit {}", limit.text)),
        (None, Some(request)) => (Some(request.value), format!("CPU request {}", request.text)),
        (None, None) => (None, "no CPU request or limit".to_string()),
    };
    SizingBase {
        cpu_millis,
        cpu_source,
        memory_limit_bytes: memory_limit.as_ref().map(|limit| limit.value),
    }
}

/// Pod-level resources (`spec.resources`), when the Pod sets them.
fn pod_level(pod: &Pod) -> Option<SizingBase> {
    let resources = pod.spec.as_ref()?.resources.as_ref()?;
    let empty = resources.limits.as_ref().is_none_or(BTreeMap::is_empty)
        && resources.requests.as_ref().is_none_or(BTreeMap::is_empty);
    if empty {
        return None;
    }
    let get = |values: Option<&BTreeMap<String, Quantity>>, key: &str| {
        values.and_then(|v| v.get(key)).map(|q| q.0.clone())
    };
    let cpu_limit = get(resources.limits.as_ref(), "cpu");
    let cpu_request = get(resources.requests.as_ref(), "cpu");
    let memory_limit = get(resources.limits.as_ref(), "memory");
    let (cpu_millis, cpu_source) = match (&cpu_limit, &cpu_request) {
        (Some(text), _) => (
            quantity::cpu_millis(text).ok(),
            format!("Pod CPU limit {text}"),
        ),
        (None, Some(text)) => (
            quantity::cpu_millis(text).ok(),
            format!("Pod CPU request {text}"),
        ),
        (None, None) => (None, "no CPU request or limit".to_string()),
    };
    Some(SizingBase {
        cpu_millis,
        cpu_source,
        memory_limit_bytes: memory_limit.and_then(|text| quantity::memory_bytes(&text).ok()),
    })
}
