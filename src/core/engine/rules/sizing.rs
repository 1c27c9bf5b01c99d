//! How many worker processes a web container should run: a formula per server from the CPU the
//! container gets, capped by its memory limit, or pinned by annotation.

use super::env::{EnvFrom, SourceKey};
use super::resources::SizingBase;
use crate::core::catalog::{CountDefault, Counts, ServerKind};
use crate::core::detect::{Server, WorkerClass};
use crate::core::engine::directives::{Directives, annotations};
use crate::core::engine::launch::Launch;
use crate::core::engine::{Context, Target};
use crate::core::policy::{Formula, Policy};
use crate::core::quantity;

/// What pytune decides about the process count of one container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WorkerPlan {
    /// Add the launch path's count variable (`knob`, e.g. `WEB_CONCURRENCY`) with this count.
    Set {
        knob: String,
        count: u32,
        reason: String,
        /// Keys of `envFrom` sources pytune cannot read that would define `knob`: the count is
        /// added as a default their value overrides (see `FanOut::Defaulted`).
        yields_to: Vec<SourceKey>,
    },
    /// The process count is already decided elsewhere (a flag, the user's variable, the app's
    /// fixed default); use it for thread caps and memory checks.
    Given { count: u32, source: String },
    /// Nothing to size from, or nothing pytune can set; the text says which.
    NotSized(String),
}

/// How many processes the container will start, as far as pytune can know before it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FanOut {
    /// This many processes, all told.
    Known { processes: u32, source: String },
    /// pytune sets the count itself and fits it to the memory limit.
    Owned { knob: String },
    /// pytune sets the count as a default, but `envFrom` sources it cannot read may define the
    /// variable, and their value wins: how many processes start is not known.
    Defaulted {
        knob: String,
        keys: Vec<SourceKey>,
        why: String,
    },
    /// Cannot be known (no server recognised, or a count that follows the node's cores).
    Unknown(String),
}

/// The process count a container will run: what the user or the app fixed, what pytune will set,
/// or unknown. Decides whether a memory limit can be added safely.
pub fn fan_out(
    target: &Target,
    directives: &Directives,
    (policy, ctx): (&Policy, &Context),
    sources: &EnvFrom,
) -> FanOut {
    let launch = &target.launch;
    let base = launch.base_processes();
    let known = |count: u32, source: String| FanOut::Known {
        processes: count.saturating_add(base),
        source,
    };
    if launch.entry.is_none() {
        return FanOut::Unknown(
            "no server or application recognised, so its process count is unknown".to_string(),
        );
    }
    if let Some(fan_out) = celery_pool(target) {
        return fan_out;
    }
    if let Some(count) = given(target) {
        return known(count.0, count.1);
    }
    // A server known only from its variables, under the image's own command: that command may
    // read a configuration file (a uWSGI ini, a gunicorn.conf.py) whose count beats the variable.
    let detection = &target.info.detection;
    if launch.generic && detection.from_env() && !detection.from_command() {
        return FanOut::Unknown(format!(
            "{} is known only from its environment variables, and the image's own configuration \
             may set its process count",
            detection.server.name()
        ));
    }
    if let Some(knob) = launch.count_env()
        && policy.env.web_concurrency
        && counts_processes(launch)
    {
        // Set from a Secret or ConfigMap key, or to something other than a count.
        if let Some(entry) = target.env_entry(knob) {
            let from = match &entry.value_from {
                Some(_) => "from a reference".to_string(),
                None => format!("to {:?}", entry.value.as_deref().unwrap_or("")),
            };
            return FanOut::Unknown(format!("{knob} is set {from}, not a count pytune can read"));
        }
        // The user sized the program another way, which the variable would override.
        let unless_env = launch.concurrency().into_iter().flat_map(|c| &c.unless_env);
        for var in unless_env {
            if target.env_entry(var).is_some() || sources.known_keys.contains(var) {
                return FanOut::Unknown(format!("{var} is set, and {knob} would override it"));
            }
            if sources.may_define(var) {
                return FanOut::Unknown(format!(
                    "{var} may come from envFrom {}, and {knob} would override it",
                    sources.names_defining([var.as_str()])
                ));
            }
        }
        // pytune would not add the variable, and the source sets, or may set, any count.
        if sources.known_keys.contains(knob) {
            return FanOut::Unknown(format!(
                "{knob} comes from an envFrom source, whose value pytune does not read",
            ));
        }
        let keys = sources.keys_defining(knob);
        if !keys.is_empty() {
            let why = format!(
                "{knob} may come from envFrom {}, which pytune cannot read",
                sources.names_defining([knob])
            );
            if !policy.env.count_when_env_from_unknown {
                return FanOut::Unknown(why);
            }
            if ctx.manifest {
                return FanOut::Unknown(format!(
                    "{why} (the webhook sets it on the Pod as a default the source overrides)"
                ));
            }
            return FanOut::Defaulted {
                knob: knob.to_string(),
                keys,
                why,
            };
        }
        if let Some(count) = directives.workers {
            return known(count, format!("annotation {}", annotations::WORKERS));
        }
        return FanOut::Owned {
            knob: knob.to_string(),
        };
    }
    match (launch.name(), launch.default_count()) {
        (None, _) => FanOut::Unknown(
            "no server or application recognised, so its process count is unknown".to_string(),
        ),
        // Threads or tasks share one process.
        (Some(name), Some(CountDefault::Number(_))) if !counts_processes(launch) => known(
            1,
            format!("{name} runs its threads or tasks in one process"),
        ),
        (Some(name), Some(CountDefault::Number(count))) => {
            known(count, format!("{name}'s default of {count}"))
        }
        (Some(name), Some(CountDefault::Cpus(_))) => FanOut::Unknown(format!(
            "{name} starts one process per node core by default, which a Pod cannot know"
        )),
        (Some(name), None) => {
            FanOut::Unknown(format!("the catalog gives no process count for {name}"))
        }
    }
}

/// What Celery's own flags say of its pool, when they decide it: a growing pool or one per CPU is
/// unknown; a gevent, eventlet, threads or solo pool runs in one process whatever its concurrency.
fn celery_pool(target: &Target) -> Option<FanOut> {
    let detection = &target.info.detection;
    if detection.server != Server::CeleryWorker {
        return None;
    }
    let flags = &detection.flags;
    if flags.autoscale {
        return Some(FanOut::Unknown(
            "celery --autoscale lets the pool grow to its maximum".to_string(),
        ));
    }
    if let Some(pool) = flags.pool.as_deref().filter(|pool| *pool != "prefork") {
        return Some(FanOut::Known {
            processes: 1 + target.launch.base_processes(),
            source: format!("celery's {pool} pool runs in one process"),
        });
    }
    if flags.concurrency_follows_cpus {
        return Some(FanOut::Unknown(
            "celery --concurrency auto or 0 starts one process per CPU it sees".to_string(),
        ));
    }
    None
}

fn counts_processes(launch: &Launch) -> bool {
    launch
        .concurrency()
        .is_none_or(|c| c.counts.is_none_or(|counts| counts == Counts::Processes))
}

/// A count the user fixed: a server flag, or the launch path's count variable.
fn given(target: &Target) -> Option<(u32, String)> {
    let detection = &target.info.detection;
    if let Some(count) = detection.flags.workers {
        return Some((
            count,
            format!("{} --workers {count}", detection.server.name()),
        ));
    }
    if let Some(count) = detection.flags.concurrency {
        return Some((
            count,
            format!("{} --concurrency {count}", detection.server.name()),
        ));
    }
    // The application's own count flag (`odoo --workers 4`), as the catalog names it.
    if let Some(flag) = target.launch.concurrency().and_then(|c| c.flag.as_deref()) {
        let words = crate::core::detect::launch_words(target.container);
        if let Some(value) = crate::core::detect::flag_value(&words, &[flag])
            && let Ok(count) = value.trim().parse::<u32>()
            && count > 0
        {
            return Some((count, format!("{flag} {count}")));
        }
    }
    // Without a catalog entry, a WEB_CONCURRENCY the user set is the best guess of the count.
    let knob = target.launch.count_env().unwrap_or("WEB_CONCURRENCY");
    let count = target.env_count(knob)?;
    Some((count, format!("{knob}={count}")))
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
    fan_out: &FanOut,
) -> WorkerPlan {
    if let Some((count, source)) = given(target) {
        return WorkerPlan::Given { count, source };
    }
    let (knob, yields_to) = match fan_out.clone() {
        FanOut::Owned { knob } => (knob, Vec::new()),
        FanOut::Defaulted { knob, keys, .. } => (knob, keys),
        FanOut::Known { processes, source } if directives.workers.is_none() => {
            let count = processes
                .saturating_sub(target.launch.base_processes())
                .max(1);
            return WorkerPlan::Given { count, source };
        }
        FanOut::Known { .. } => match target.launch.count_env() {
            Some(knob) => (knob.to_string(), Vec::new()),
            None => {
                return WorkerPlan::NotSized(format!(
                    "{} reads no count variable: annotation {} is not applied",
                    target.launch.name().unwrap_or("this server"),
                    annotations::WORKERS
                ));
            }
        },
        FanOut::Unknown(why) => {
            let what = match target.launch.concurrency().and_then(|c| c.flag.as_deref()) {
                Some(flag) => format!("; set its {flag}"),
                None => String::new(),
            };
            return WorkerPlan::NotSized(format!("{why}{what}"));
        }
    };
    if let Some(count) = directives.workers {
        return WorkerPlan::Set {
            knob,
            count,
            reason: format!("pinned by annotation {}", annotations::WORKERS),
            yields_to,
        };
    }
    let Some(millis) = base.cpu_millis else {
        return WorkerPlan::NotSized("no CPU request or limit to size workers from".to_string());
    };
    let cpus = quantity::whole_cpus(millis);
    // gunicorn's and uvicorn's workers are sized alike whichever variable carries the count (an
    // application's own, like REDASH_WEB_WORKERS, feeds gunicorn's -w).
    let (server, class) = formula_server(target);
    let (formula, kind) =
        if knob == "WEB_CONCURRENCY" || matches!(server, Server::Gunicorn | Server::Uvicorn) {
            let (formula, server_kind) = formula(policy, server, class);
            let kind = match target.launch.name() {
                Some(name) if knob != "WEB_CONCURRENCY" => format!("{name} ({server_kind})"),
                _ => server_kind.to_string(),
            };
            (formula, kind)
        } else {
            let one_per_cpu = Formula {
                per_cpu: 1,
                plus: 0,
            };
            (
                one_per_cpu,
                target.launch.name().unwrap_or("processes").to_string(),
            )
        };
    let by_cpu = formula.workers(cpus);
    let mut reason = format!(
        "{kind}: {}×{cpus}+{} = {by_cpu} ({})",
        formula.per_cpu, formula.plus, base.cpu_source
    );
    let mut count = by_cpu;
    // How many workers the memory limit holds besides the processes that run whatever the count.
    let held = base.memory_limit_bytes.map(|limit| {
        let (per_worker_text, per_worker) = memory_per_process(target, policy, directives);
        let whole = u32::try_from(limit / per_worker.max(1)).unwrap_or(u32::MAX);
        let fits = whole.saturating_sub(target.launch.base_processes()).max(1);
        (limit, per_worker_text, fits)
    });
    if let Some((limit, per_worker_text, fits)) = &held
        && *fits < by_cpu
    {
        count = *fits;
        let besides = match target.launch.base_processes() {
            0 => String::new(),
            base => format!(" less {base} master process(es)"),
        };
        reason.push_str(&format!(
            ", capped to {fits} by memory {} ÷ {per_worker_text}{besides}",
            quantity::format_bytes(*limit)
        ));
    }
    let minimum = target.launch.minimum_count();
    if count < minimum {
        let name = target.launch.name().unwrap_or("the application");
        if let Some((limit, per_worker_text, fits)) = &held
            && *fits < minimum
        {
            return WorkerPlan::NotSized(format!(
                "the memory limit {} holds fewer than the {minimum} workers {name} needs at \
                 {per_worker_text} each",
                quantity::format_bytes(*limit)
            ));
        }
        count = minimum;
        reason.push_str(&format!(
            ", raised to {minimum}: the fewest {name} is meant to run (catalog minimum)"
        ));
    }
    if let Some(maximum) = target.launch.maximum_count()
        && count > maximum
    {
        count = maximum;
        let name = target.launch.name().unwrap_or("the application");
        reason.push_str(&format!(
            ", capped to {maximum}: the most {name} runs with (catalog maximum)"
        ));
    }
    WorkerPlan::Set {
        knob,
        count,
        reason,
        yields_to,
    }
}

/// The server and worker class the formula is chosen by: what the command shows, else what the
/// catalog entry states (an image whose entrypoint runs gunicorn). A worker class the entry states
/// stands where the command gives none: an application launcher (Baserow's `gunicorn`
/// subcommand) passes its own `-k`.
fn formula_server(target: &Target) -> (Server, Option<WorkerClass>) {
    let detection = &target.info.detection;
    let entry = target.launch.entry.as_ref();
    let entry_class = entry
        .and_then(|e| e.worker_class.as_deref())
        .map(|class| match class {
            "sync" => WorkerClass::Sync,
            "gthread" => WorkerClass::Gthread,
            "gevent" | "eventlet" => WorkerClass::Async,
            "uvicorn" => WorkerClass::Uvicorn,
            _ => WorkerClass::Other,
        });
    if detection.server != Server::Unknown {
        let class = match entry_class {
            Some(class)
                if detection.server == Server::Gunicorn && !detection.flags.worker_class_given =>
            {
                Some(class)
            }
            _ => detection.worker_class,
        };
        return (detection.server, class);
    }
    let Some(entry) = entry else {
        return (Server::Unknown, None);
    };
    let server = match entry.server {
        Some(ServerKind::Gunicorn) => Server::Gunicorn,
        Some(ServerKind::Uvicorn) => Server::Uvicorn,
        _ => Server::Unknown,
    };
    let class = match entry_class {
        Some(class) => Some(class),
        None if server == Server::Gunicorn => Some(WorkerClass::Sync),
        None => None,
    };
    (server, class)
}

/// The memory budget of one process: the annotation, else the catalog entry, else the policy.
pub fn memory_per_process(
    target: &Target,
    policy: &Policy,
    directives: &Directives,
) -> (String, u64) {
    memory_budget(target, policy, directives)
        .unwrap_or_else(|| memory_per_worker(policy, directives))
}

/// The memory of one process when pytune knows it: the annotation, the catalog entry, or — for the
/// operator's own services under a generic server — the policy. A catalogued application whose
/// footprint the catalog does not state has none: the policy's figure says nothing about it.
pub fn memory_budget(
    target: &Target,
    policy: &Policy,
    directives: &Directives,
) -> Option<(String, u64)> {
    if directives.memory_per_worker.is_some() {
        return Some(memory_per_worker(policy, directives));
    }
    if let Some(per_process) = target.launch.memory_per_process() {
        return Some(per_process);
    }
    (target.launch.entry.is_none() || target.launch.generic)
        .then(|| memory_per_worker(policy, directives))
}
