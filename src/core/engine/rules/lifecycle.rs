//! Graceful shutdown: a preStop pause so endpoints drop the Pod before the app sees SIGTERM, and a
//! termination grace period long enough for pause + drain.

use k8s_openapi::api::core::v1::Pod;

use crate::core::detect::Server;
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

pub fn plan_pre_stop(target: &Target, planner: &mut Planner) {
    if !shuts_down_gracefully(target) {
        return;
    }
    let has_pre_stop = target
        .container
        .lifecycle
        .as_ref()
        .is_some_and(|lifecycle| lifecycle.pre_stop.is_some());
    if has_pre_stop {
        return;
    }
    let seconds = planner.policy.lifecycle.pre_stop_sleep_seconds;
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
/// counts as the policy's pause.
fn pause_seconds(target: &Target, policy_pause: u32) -> i64 {
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
    match (detection.server, detection.flags.graceful_timeout) {
        (Server::Gunicorn, Some(timeout)) => {
            (i64::from(timeout), "gunicorn --graceful-timeout".into())
        }
        (Server::Gunicorn, None) => (30, "gunicorn's default graceful timeout".into()),
        (Server::Uvicorn, Some(timeout)) => {
            (i64::from(timeout), "uvicorn graceful shutdown".into())
        }
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
        .map(|target| {
            let pause = pause_seconds(target, policy.lifecycle.pre_stop_sleep_seconds);
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
