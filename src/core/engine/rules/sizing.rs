//! How many worker processes a web container should run: a formula per server from the CPU the
//! container gets, capped by its memory limit, or pinned by annotation.

use super::resources::SizingBase;
use crate::core::detect::{Server, WorkerClass};
use crate::core::engine::Target;
use crate::core::engine::directives::{Directives, annotations};
use crate::core::policy::{Formula, Policy};
use crate::core::quantity;

/// What pytune decides about `WEB_CONCURRENCY` for one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerPlan {
    /// Add `WEB_CONCURRENCY` with this count.
    Set { count: u32, reason: String },
    /// The process count is already decided elsewhere (a flag, the user's variable); use it for
    /// thread caps and memory checks.
    Given { count: u32, source: String },
    /// Nothing to size from, or the server does not read `WEB_CONCURRENCY`; the text says which.
    NotSized(String),
}

/// The formula for a server, with its name for the reason.
fn formula(policy: &Policy, server: Server, class: Option<WorkerClass>) -> (Formula, &'static str) {
    let formulas = &policy.sizing.formulas;
    match (server, class) {
        (Server::Gunicorn, Some(WorkerClass::Uvicorn)) => {
            (formulas.asgi, "gunicorn with uvicorn workers")
        }
        (Server::Gunicorn, Some(WorkerClass::Async)) => {
            (formulas.gunicorn_async, "gunicorn gevent/eventlet")
        }
        (Server::Gunicorn, Some(WorkerClass::Gthread)) => {
            (formulas.gunicorn_threaded, "gunicorn gthread")
        }
        (Server::Gunicorn, _) => (formulas.gunicorn_sync, "gunicorn sync"),
        (Server::Uvicorn, _) => (formulas.asgi, "uvicorn"),
        _ => (formulas.unknown, "no server evidence"),
    }
}

/// The memory budget of one worker: the annotation, else the policy.
pub fn memory_per_worker(policy: &Policy, directives: &Directives) -> (String, u64) {
    directives.memory_per_worker.clone().unwrap_or_else(|| {
        let text = policy.sizing.memory_per_worker.clone();
        let bytes = quantity::memory_bytes(&text).unwrap_or(1);
        (text, bytes)
    })
}

pub fn plan(
    target: &Target,
    base: &SizingBase,
    directives: &Directives,
    policy: &Policy,
) -> WorkerPlan {
    let detection = &target.info.detection;
    let server = detection.server;
    if let Some(count) = detection.flags.workers {
        return WorkerPlan::Given {
            count,
            source: format!("{} --workers {count}", server.name()),
        };
    }
    if let Some(count) = target.env_count("WEB_CONCURRENCY") {
        return WorkerPlan::Given {
            count,
            source: format!("WEB_CONCURRENCY={count}"),
        };
    }
    if !matches!(server, Server::Gunicorn | Server::Uvicorn | Server::Unknown) {
        return WorkerPlan::NotSized(format!(
            "{} does not read WEB_CONCURRENCY; set its own worker flag",
            server.name()
        ));
    }
    if let Some(count) = directives.workers {
        return WorkerPlan::Set {
            count,
            reason: format!("pinned by annotation {}", annotations::WORKERS),
        };
    }
    let Some(millis) = base.cpu_millis else {
        return WorkerPlan::NotSized("no CPU request or limit to size workers from".to_string());
    };
    let cpus = quantity::whole_cpus(millis);
    let (formula, kind) = formula(policy, server, detection.worker_class);
    let by_cpu = formula.workers(cpus);
    let mut reason = format!(
        "{kind}: {}×{cpus}+{} = {by_cpu} ({})",
        formula.per_cpu, formula.plus, base.cpu_source
    );
    let mut count = by_cpu;
    if let Some(limit) = base.memory_limit_bytes {
        let (per_worker_text, per_worker) = memory_per_worker(policy, directives);
        let fits = u32::try_from(limit / per_worker.max(1))
            .unwrap_or(u32::MAX)
            .max(1);
        if fits < by_cpu {
            count = fits;
            reason.push_str(&format!(
                ", capped to {fits} by memory {} ÷ {per_worker_text}",
                quantity::format_bytes(limit)
            ));
        }
    }
    WorkerPlan::Set { count, reason }
}
