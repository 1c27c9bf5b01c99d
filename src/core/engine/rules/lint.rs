//! Warnings about how a Python server is run: never a rejection, each under 120 characters.

use super::resources::SizingBase;
use super::sizing::{self, FanOut, WorkerPlan};
use crate::core::detect::Server;
use crate::core::engine::directives::Directives;
use crate::core::engine::listen::Listening;
use crate::core::engine::{Planner, Target, Warning, WorkloadProfile};
use crate::core::quantity;

pub fn plan(
    target: &Target,
    base: &SizingBase,
    (workers, fan_out): (&WorkerPlan, &FanOut),
    listening: &Listening,
    directives: &Directives,
    planner: &mut Planner,
) {
    let name = target.name();
    // Every warning here is about a Python server; a non-Python helper gets none.
    if target.info.profile == WorkloadProfile::Helper {
        return;
    }
    let detection = &target.info.detection;
    let server = detection.server;
    let mut warn = |message: String| planner.warn(Warning::container(name, message));

    if let Some(shell) = detection.shell
        && !shell.exec
    {
        warn("shell runs the server without exec: SIGTERM stops the shell, not Python".to_string());
    }
    if let Listening::LoopbackOnly(why) = listening {
        warn(format!("{why}: unreachable from probes and Services"));
    }
    let uvicorn_bounded = planner.changes.iter().any(|c| {
        c.container.as_deref() == Some(name) && c.field == "env.UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN"
    });
    let mut warn = |message: String| planner.warn(Warning::container(name, message));
    if server == Server::Uvicorn && detection.flags.graceful_timeout.is_none() && !uvicorn_bounded {
        warn(
            "uvicorn has no --timeout-graceful-shutdown: its drain is unbounded until SIGKILL"
                .to_string(),
        );
    }
    let sized = matches!(workers, WorkerPlan::Set { .. } | WorkerPlan::Given { .. });
    // Only the prefork pool forks; --autoscale says its own maximum.
    let prefork = detection
        .flags
        .pool
        .as_deref()
        .is_none_or(|pool| pool == "prefork");
    if server == Server::CeleryWorker
        && detection.flags.concurrency.is_none()
        && !detection.flags.autoscale
        && prefork
        && !sized
    {
        warn("celery worker without --concurrency forks one process per node core".to_string());
    }
    if server.is_dev_server() {
        warn(format!(
            "{} is a development server; run gunicorn or uvicorn in Pods",
            server.name()
        ));
    }
    let bad_concurrency = target
        .env_value("WEB_CONCURRENCY")
        .filter(|_| target.env_count("WEB_CONCURRENCY").is_none());
    if let Some(value) = bad_concurrency {
        warn(format!(
            "WEB_CONCURRENCY={value:?} is not a positive integer; gunicorn fails to start"
        ));
    }
    let bad_cpu_count = target.env_value("PYTHON_CPU_COUNT").filter(|value| {
        value.trim() != "default" && target.env_count("PYTHON_CPU_COUNT").is_none()
    });
    if let Some(value) = bad_cpu_count {
        warn(format!(
            "PYTHON_CPU_COUNT={value:?} is not a positive integer or default; CPython 3.13+ fails to start"
        ));
    }
    // Workers chosen by hand (flag, variable, annotation) may not fit the memory limit.
    let chosen_by_hand = match workers {
        WorkerPlan::Given { count, .. } => Some(*count),
        WorkerPlan::Set { count, .. } if directives.workers.is_some() => Some(*count),
        _ => None,
    };
    if let (Some(count), Some(limit)) = (chosen_by_hand, base.memory_limit_bytes) {
        let (per_worker_text, per_worker) =
            sizing::memory_per_process(target, planner.policy, directives);
        // What runs besides the workers (a master, an arbiter) takes memory too, and a pool of
        // greenlets or threads is one process whatever its count.
        let base = target.launch.base_processes();
        let processes = match fan_out {
            FanOut::Known { processes, .. } => *processes,
            _ => count.saturating_add(base),
        };
        if u64::from(processes).saturating_mul(per_worker) > limit {
            let what = if processes == count {
                format!("{count} workers")
            } else {
                format!("{processes} processes ({count} workers)")
            };
            planner.warn(Warning::container(
                name,
                format!(
                    "{what} × {per_worker_text} exceeds the memory limit {}; expect OOM kills",
                    quantity::format_bytes(limit)
                ),
            ));
        }
    }
}
