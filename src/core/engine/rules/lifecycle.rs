//! Graceful shutdown: a preStop pause so endpoints drop the Pod before the app sees SIGTERM, and a
//! termination grace period long enough for pause + drain.

use k8s_openapi::api::core::v1::Pod;

use crate::core::catalog::Sigterm;
use crate::core::detect::Server;
use crate::core::engine::directives::Directives;
use crate::core::engine::{
    Feature, KubeVersion, PatchValue, Planner, Target, Warning, WorkloadProfile,
};
use crate::core::policy::Policy;

/// The first version where the native `sleep` preStop action is on by default (beta in 1.30).
pub const NATIVE_SLEEP_SINCE: KubeVersion = KubeVersion::new(1, 30);

/// Kubernetes' grace period when a Pod names none; indistinguishable from a user's explicit 30.
const DEFAULT_GRACE_SECONDS: i64 = 30;

fn shuts_down_gracefully(target: &Target) -> bool {
    matches!(
        target.info.profile,
        WorkloadProfile::Web | WorkloadProfile::Worker
    )
}

fn has_pre_stop(target: &Target) -> bool {
    target
        .container
        .lifecycle
        .as_ref()
        .is_some_and(|lifecycle| lifecycle.pre_stop.is_some())
}

/// Why SIGTERM cannot reach the program, when the evidence says so: a longer grace would then
/// only delay the SIGKILL.
fn sigterm_lost(target: &Target) -> Option<String> {
    if let Some(shell) = target.info.detection.shell
        && !shell.exec
    {
        return Some("its shell does not exec the program, so SIGTERM stops the shell only".into());
    }
    match target.launch.sigterm() {
        Some(Sigterm::Ignored) => Some("nothing in it handles SIGTERM (catalog)".to_string()),
        Some(Sigterm::Reload) if !dies_on_term(target) => Some(
            "uWSGI reloads on SIGTERM instead of stopping; set die-on-term (UWSGI_DIE_ON_TERM=true)"
                .to_string(),
        ),
        _ => None,
    }
}

/// Whether uWSGI was told to stop on SIGTERM, by flag or variable.
fn dies_on_term(target: &Target) -> bool {
    let flag = crate::core::detect::launch_words(target.container)
        .iter()
        .any(|word| word == "--die-on-term");
    flag || target
        .env_value("UWSGI_DIE_ON_TERM")
        .is_some_and(|value| matches!(value.trim(), "1" | "true" | "yes" | "on"))
}

/// A preStop pause, only for containers that serve traffic: it lets endpoints drop the Pod before
/// the server stops accepting. Never inside a grace period the user set too short for it.
pub fn plan_pre_stop(pod: &Pod, target: &Target, directives: &Directives, planner: &mut Planner) {
    if target.info.profile != WorkloadProfile::Web || has_pre_stop(target) {
        return;
    }
    if let Err(why) = target.serving_port(directives) {
        planner.note(
            Some(target.name()),
            Feature::Lifecycle,
            format!("no preStop: {why}"),
        );
        return;
    }
    let seconds = planner.policy.lifecycle.pre_stop_sleep_seconds;
    let grace = pod
        .spec
        .as_ref()
        .and_then(|spec| spec.termination_grace_period_seconds);
    let (drain, _) = drain_seconds(target, planner.policy);
    let margin = i64::from(planner.policy.lifecycle.margin_seconds);
    if let Some(grace) = grace
        && grace != DEFAULT_GRACE_SECONDS
        && grace < i64::from(seconds) + drain + margin
    {
        planner.note(
            Some(target.name()),
            Feature::Lifecycle,
            format!(
                "no preStop: a {seconds}s pause would take from the {grace}s grace period set for the drain"
            ),
        );
        return;
    }
    let version = planner.ctx.kubernetes_version;
    let (handler, how) = match version {
        Some(version) if version >= NATIVE_SLEEP_SINCE => (
            PatchValue::object([("sleep", PatchValue::object([("seconds", seconds.into())]))]),
            format!("native sleep action (Kubernetes {version})"),
        ),
        _ => {
            let command: Vec<String> = planner
                .policy
                .lifecycle
                .exec_fallback
                .iter()
                .map(|part| part.replace("{seconds}", &seconds.to_string()))
                .collect();
            let why = match version {
                Some(version) => format!("Kubernetes {version} has no native sleep"),
                None => {
                    "cluster version unknown, so the exec form that works everywhere".to_string()
                }
            };
            (
                PatchValue::object([("exec", PatchValue::object([("command", command.into())]))]),
                format!("exec pause ({why})"),
            )
        }
    };
    let path = planner
        .builder
        .set(&target.tokens(&["lifecycle", "preStop"]), handler.clone());
    planner.change(
        Some(target.name()),
        Feature::Lifecycle,
        "lifecycle.preStop",
        path,
        handler,
        format!("no preStop: a {seconds}s pause lets endpoints drop the Pod before SIGTERM; {how}"),
    );
}

/// Seconds the preStop hook of a container pauses: a native sleep says so; anything else (or ours)
/// counts as the policy's pause; none without a hook.
fn pause_seconds(target: &Target, policy_pause: u32, planner: &Planner) -> i64 {
    let added = planner
        .changes
        .iter()
        .any(|c| c.container.as_deref() == Some(target.name()) && c.field == "lifecycle.preStop");
    if !added && !has_pre_stop(target) {
        return 0;
    }
    target
        .container
        .lifecycle
        .as_ref()
        .and_then(|lifecycle| lifecycle.pre_stop.as_ref())
        .and_then(|pre_stop| pre_stop.sleep.as_ref())
        .map_or(i64::from(policy_pause), |sleep| sleep.seconds.max(0))
}

/// Seconds the server needs after SIGTERM, and where that number comes from.
fn drain_seconds(target: &Target, policy: &Policy) -> (i64, String) {
    let detection = &target.info.detection;
    let profile_drain = policy
        .profile(target.info.profile)
        .drain_seconds
        .unwrap_or(0);
    if target.launch.sigterm() == Some(Sigterm::Immediate) {
        return (
            0,
            format!("{} exits on SIGTERM", target.launch.name().unwrap_or("it")),
        );
    }
    if target.launch.sigterm() == Some(Sigterm::WaitsForTasks)
        && let Some(seconds) = policy.lifecycle.task_drain_seconds
    {
        return (
            i64::from(seconds),
            "running tasks, policy taskDrainSeconds".into(),
        );
    }
    match (detection.server, detection.flags.graceful_timeout) {
        (Server::Gunicorn, Some(timeout)) => {
            (i64::from(timeout), "gunicorn --graceful-timeout".into())
        }
        (Server::Gunicorn, None) => (30, "gunicorn's default graceful timeout".into()),
        (Server::Uvicorn, Some(timeout)) => {
            (i64::from(timeout), "uvicorn graceful shutdown".into())
        }
        _ if target.launch.drain_seconds().is_some() => (
            i64::from(target.launch.drain_seconds().unwrap_or(profile_drain)),
            format!(
                "{} drain, catalog",
                target.launch.name().unwrap_or("the app")
            ),
        ),
        (server, _) if server != Server::Unknown => (
            i64::from(profile_drain),
            format!("{} drain, policy", server.name()),
        ),
        _ => (i64::from(profile_drain), "policy".into()),
    }
}

pub fn plan_grace_period(pod: &Pod, targets: &[Target], planner: &mut Planner) {
    let policy = planner.policy;
    let margin = i64::from(policy.lifecycle.margin_seconds);
    let needed = targets
        .iter()
        .filter(|target| shuts_down_gracefully(target))
        // Without a pause or a known server there is no drain to make room for.
        .filter(|target| {
            target.launch.entry.is_some()
                || pause_seconds(target, policy.lifecycle.pre_stop_sleep_seconds, planner) > 0
        })
        .collect::<Vec<_>>()
        .into_iter()
        .filter(|target| {
            let waits = target.launch.sigterm() == Some(Sigterm::WaitsForTasks);
            if waits && policy.lifecycle.task_drain_seconds.is_none() {
                planner.warn(Warning::container(
                    target.name(),
                    "running tasks outliving the grace period are killed (policy taskDrainSeconds)",
                ));
                return false;
            }
            true
        })
        .collect::<Vec<_>>()
        .into_iter()
        .filter(|target| match sigterm_lost(target) {
            Some(why) => {
                planner.note(
                    Some(target.name()),
                    Feature::Lifecycle,
                    format!("grace period not lengthened for it: {why}"),
                );
                false
            }
            None => true,
        })
        .collect::<Vec<_>>()
        .into_iter()
        .map(|target| {
            let pause = pause_seconds(target, policy.lifecycle.pre_stop_sleep_seconds, planner);
            let (drain, source) = drain_seconds(target, policy);
            let name = target.name().to_string();
            (pause + drain + margin, pause, drain, source, name)
        })
        .max_by_key(|(total, ..)| *total);
    let Some((required, pause, drain, source, container)) = needed else {
        return;
    };
    let current = pod
        .spec
        .as_ref()
        .and_then(|spec| spec.termination_grace_period_seconds);
    let effective = current.unwrap_or(DEFAULT_GRACE_SECONDS);
    if effective >= required {
        return;
    }
    let breakdown = format!("{pause}s pause + {drain}s drain ({source}) + {margin}s margin");
    if effective == DEFAULT_GRACE_SECONDS {
        let path = planner.builder.set(
            &["spec", "terminationGracePeriodSeconds"],
            PatchValue::from(required),
        );
        planner.change(
            None,
            Feature::Lifecycle,
            "terminationGracePeriodSeconds",
            path,
            PatchValue::from(required),
            format!(
                "the default 30s is shorter than {breakdown} for container {container}; SIGKILL would cut the drain"
            ),
        );
    } else {
        planner.warn(Warning::pod(format!(
            "terminationGracePeriodSeconds {effective} < {required} ({breakdown}); left as set"
        )));
    }
}
