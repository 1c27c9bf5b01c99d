//! Environment variables for Python: interpreter flags and values sized from the container's CPU.
//! A variable the container already defines — in `env`, or possibly through `envFrom` — is never
//! added plainly, because an explicit `env` entry would silently override the user's value. The
//! count a source pytune cannot read may define goes in as a default: pytune's value, then an
//! optional reference to the source's key, which the kubelet applies last when the key exists.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::EnvVar;

use super::resources::SizingBase;
use super::sizing::WorkerPlan;
use crate::core::catalog::ServerKind;
use crate::core::detect::{Libc, Server};
use crate::core::engine::{Feature, PatchValue, Planner, Target, Warning, WorkloadProfile};
use crate::core::quantity;

/// What the container's `envFrom` sources may define.
pub(crate) struct EnvFrom {
    pub known_keys: BTreeSet<String>,
    /// Sources whose keys pytune was not given (neither in the input nor looked up), in the
    /// container's order.
    pub unknown_sources: Vec<UnknownSource>,
}

/// An `envFrom` source whose keys pytune does not know.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownSource {
    pub kind: SourceKind,
    pub name: String,
    pub prefix: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    ConfigMap,
    Secret,
}

impl UnknownSource {
    /// Whether a key of this source can become `var`: its prefix begins the name, and a key is
    /// left after it.
    fn may_define(&self, var: &str) -> bool {
        var.len() > self.prefix.len() && var.starts_with(&self.prefix)
    }
}

impl std::fmt::Display for UnknownSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            SourceKind::ConfigMap => "ConfigMap",
            SourceKind::Secret => "Secret",
        };
        write!(f, "{kind} {}", self.name)
    }
}

/// The key of an unknown source that would define a variable: an optional reference to it in
/// `env`, placed after pytune's value, lets the source's value win when it has one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceKey {
    pub source: UnknownSource,
    pub key: String,
}

impl SourceKey {
    /// `{"secretKeyRef": {"name": …, "key": …, "optional": true}}`: optional, so the kubelet
    /// skips it when the key (or the source) is missing, and the value before it stands.
    fn value_from(&self) -> PatchValue {
        let reference = match self.source.kind {
            SourceKind::ConfigMap => "configMapKeyRef",
            SourceKind::Secret => "secretKeyRef",
        };
        let key_ref = PatchValue::object([
            ("name", self.source.name.as_str().into()),
            ("key", self.key.as_str().into()),
            ("optional", PatchValue::Bool(true)),
        ]);
        PatchValue::object([(reference, key_ref)])
    }
}

impl EnvFrom {
    /// The unknown sources that may define any of `vars`.
    fn defining<'s, 'v>(
        &'s self,
        vars: impl IntoIterator<Item = &'v str> + Clone + 's,
    ) -> impl Iterator<Item = &'s UnknownSource> {
        self.unknown_sources
            .iter()
            .filter(move |source| vars.clone().into_iter().any(|var| source.may_define(var)))
    }

    /// Whether an unknown source may define `var`.
    pub fn may_define(&self, var: &str) -> bool {
        self.defining([var]).next().is_some()
    }

    /// The unknown sources that may define any of `vars`, for messages: `Secret app-env,
    /// ConfigMap app-config`.
    pub fn names_defining<'v>(&self, vars: impl IntoIterator<Item = &'v str> + Clone) -> String {
        let names: Vec<String> = self.defining(vars).map(ToString::to_string).collect();
        names.join(", ")
    }

    /// The keys of unknown sources that would define `var` (a source's prefix must begin it), in
    /// the order the kubelet applies them.
    pub fn keys_defining(&self, var: &str) -> Vec<SourceKey> {
        self.defining([var])
            .map(|source| SourceKey {
                source: source.clone(),
                key: var[source.prefix.len()..].to_string(),
            })
            .collect()
    }
}

pub(crate) fn env_from(target: &Target, planner: &Planner) -> EnvFrom {
    let mut known_keys = BTreeSet::new();
    let mut unknown_sources = Vec::new();
    for source in target.container.env_from.iter().flatten() {
        let prefix = source.prefix.as_deref().unwrap_or("");
        let unknown = |kind, name: &str| UnknownSource {
            kind,
            name: name.to_string(),
            prefix: prefix.to_string(),
        };
        if let Some(config_map) = &source.config_map_ref {
            match planner.ctx.config_map_keys.get(&config_map.name) {
                Some(keys) => known_keys.extend(keys.iter().map(|key| format!("{prefix}{key}"))),
                None => unknown_sources.push(unknown(SourceKind::ConfigMap, &config_map.name)),
            }
        }
        if let Some(secret) = &source.secret_ref {
            match planner.ctx.secret_keys.get(&secret.name) {
                Some(keys) => known_keys.extend(keys.iter().map(|key| format!("{prefix}{key}"))),
                None => unknown_sources.push(unknown(SourceKind::Secret, &secret.name)),
            }
        }
    }
    EnvFrom {
        known_keys,
        unknown_sources,
    }
}

/// A variable to add, and the source keys whose value, where they define it, wins over it.
struct Addition {
    name: String,
    value: String,
    reason: String,
    yields_to: Vec<SourceKey>,
}

impl Addition {
    fn new(name: &str, value: impl Into<String>, reason: impl Into<String>) -> Addition {
        Addition {
            name: name.to_string(),
            value: value.into(),
            reason: reason.into(),
            yields_to: Vec::new(),
        }
    }
}

fn fixed_reason(name: &str) -> &'static str {
    match name {
        "PYTHONUNBUFFERED" => {
            "stdout/stderr unbuffered, so logs reach kubectl logs at once and survive a crash"
        }
        "PYTHONFAULTHANDLER" => {
            "a fatal crash (segfault, abort) dumps the Python traceback to stderr"
        }
        "PYTHONDONTWRITEBYTECODE" => {
            "no .pyc writes into a read-only or throwaway container filesystem"
        }
        _ => "set by the policy (env.fixed)",
    }
}

/// The port `PORT` should carry for a gunicorn that has no `--bind`, when pytune may add it.
pub fn gunicorn_port(target: &Target, sources: &EnvFrom, planner: &Planner) -> Option<i32> {
    let detection = &target.info.detection;
    if detection.server != Server::Gunicorn
        || detection.flags.bind.is_some()
        || !planner.policy.env.gunicorn_port
    {
        return None;
    }
    let binds_itself = target.launch.binds_itself();
    let defined = target.env_entry("PORT").is_some();
    if binds_itself || defined || sources.known_keys.contains("PORT") || sources.may_define("PORT")
    {
        return None;
    }
    target.port
}

pub fn plan(
    target: &Target,
    base: &SizingBase,
    workers: &WorkerPlan,
    port_env: Option<i32>,
    sources: &EnvFrom,
    planner: &mut Planner,
) {
    let name = target.name().to_string();
    if target.info.profile == WorkloadProfile::Helper {
        planner.note(
            Some(&name),
            Feature::Env,
            "no Python variables: not a Python program",
        );
        return;
    }
    let defined = Defined(target.container.env.as_deref().unwrap_or_default());
    let policy = planner.policy;

    // Fixed interpreter flags.
    let fixed_allowed =
        |var: &str| policy.env.fixed_when_env_from_unknown || !sources.may_define(var);
    let mut additions: Vec<Addition> = Vec::new();
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
        } else if !fixed_allowed(var) {
            planner.note(
                Some(&name),
                Feature::Env,
                format!(
                    "{var} not added: envFrom {} may define it",
                    sources.names_defining([var.as_str()])
                ),
            );
        } else {
            additions.push(Addition::new(var, value, fixed_reason(var)));
        }
    }
    if let Some(arenas) = &policy.env.malloc_arena_max {
        let var = "MALLOC_ARENA_MAX";
        let jemalloc = target
            .env_value("LD_PRELOAD")
            .is_some_and(|preload| preload.contains("jemalloc"));
        let preloaded = target
            .launch
            .entry
            .as_ref()
            .and_then(|entry| entry.preloaded_allocator.as_deref());
        let musl = match target.launch.entry.as_ref().and_then(|entry| entry.libc) {
            Some(libc) => libc == crate::core::catalog::Libc::Musl,
            None => target.info.detection.libc == Libc::Musl,
        };
        if musl {
            planner.note(
                Some(&name),
                Feature::Env,
                format!("{var} not added: musl image, glibc-only setting"),
            );
        } else if jemalloc {
            planner.note(
                Some(&name),
                Feature::Env,
                format!("{var} not added: jemalloc is preloaded, glibc's arenas are not used"),
            );
        } else if let Some(allocator) = preloaded {
            planner.note(
                Some(&name),
                Feature::Env,
                format!(
                    "{var} not added: the image preloads {allocator}, glibc's arenas are not used"
                ),
            );
        } else if !defined.contains(var) && !sources.known_keys.contains(var) && fixed_allowed(var)
        {
            additions.push(Addition::new(
                var,
                arenas,
                format!("glibc makes up to 8 malloc arenas per core; {arenas} bounds memory growth of threaded Python"),
            ));
        }
    }

    // Values computed from the CPU the container gets.
    let mut computed = computed(target, base, workers, &defined, planner);
    if let Some(port) = port_env {
        computed.push((
            "PORT".to_string(),
            port.to_string(),
            format!("gunicorn has no --bind: with PORT it binds 0.0.0.0:{port} instead of 127.0.0.1:8000"),
        ));
    }
    let detection = &target.info.detection;
    // Only the uvicorn command reads UVICORN_* variables (apps that embed uvicorn do not).
    let uvicorn_command = detection.server == Server::Uvicorn && detection.from_command();
    if uvicorn_command
        && detection.flags.graceful_timeout.is_none()
        && policy.env.uvicorn_graceful_shutdown
        && let Some(drain) = policy.profile(target.info.profile).drain_seconds
    {
        computed.push((
            "UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN".to_string(),
            drain.to_string(),
            format!(
                "uvicorn waits for open connections without limit; {drain}s fits the grace period"
            ),
        ));
    }
    // The count pytune sizes as a default that sources it cannot read override.
    let count_default = match workers {
        WorkerPlan::Set {
            knob, yields_to, ..
        } if !yields_to.is_empty() => Some((knob, yields_to)),
        _ => None,
    };
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
        } else if !sources.may_define(&var) {
            additions.push(Addition::new(&var, value, reason));
        } else if let Some((_, keys)) = count_default.filter(|(knob, _)| **knob == var) {
            let reason = format!(
                "{reason}; a default, which a value in {} overrides",
                sources.names_defining([var.as_str()])
            );
            let mut addition = Addition::new(&var, value, reason);
            addition.yields_to = keys.clone();
            additions.push(addition);
        } else {
            blocked_by_unknown.push(var);
        }
    }
    if !blocked_by_unknown.is_empty() {
        let blocked = blocked_by_unknown.iter().map(String::as_str);
        let (names, sources_count) = (
            sources.names_defining(blocked.clone()),
            sources.defining(blocked).count(),
        );
        planner.note(
            Some(&name),
            Feature::Env,
            format!(
                "{} not added: envFrom {names} may define them",
                blocked_by_unknown.join(", ")
            ),
        );
        let unset = match blocked_by_unknown.as_slice() {
            [only] => only.clone(),
            [first, rest @ ..] => format!("{first} and {} more", rest.len()),
            [] => String::new(),
        };
        planner.warn(Warning::container(
            &name,
            format!("{sources_count} envFrom source(s) unreadable, so {unset} not set (may be defined there)"),
        ));
    }

    if additions.is_empty() {
        return;
    }
    // Each entry takes the name and value; each change keeps a copy of the value. A default that a
    // source overrides is followed by its optional references, which the kubelet applies after it.
    let mut entries = Vec::with_capacity(additions.len());
    let mut changes = Vec::with_capacity(additions.len());
    for addition in additions {
        let field = ["env.", addition.name.as_str()].concat();
        changes.push((
            field.clone(),
            PatchValue::String(addition.value.clone()),
            addition.reason,
        ));
        entries.push(PatchValue::object([
            ("name", addition.name.as_str().into()),
            ("value", addition.value.into()),
        ]));
        for key in &addition.yields_to {
            let value_from = key.value_from();
            changes.push((
                field.clone(),
                value_from.clone(),
                format!(
                    "where {} has {}, its value wins over pytune's default",
                    key.source, key.key
                ),
            ));
            entries.push(PatchValue::object([
                ("name", addition.name.as_str().into()),
                ("valueFrom", value_from),
            ]));
        }
    }
    let paths = planner
        .builder
        .append_all(&target.tokens(&["env"]), entries);
    for ((field, value, reason), path) in changes.into_iter().zip(paths) {
        planner.change(Some(&name), Feature::Env, field, path, value, reason);
    }
}

/// The Python version an image reference shows: `python:3.13-slim`, `…/python3.12:tag`,
/// `app:1.2-py3.11`. Application images mostly do not.
pub(crate) fn python_version_of_image(image: &str) -> Option<(u32, u32)> {
    let image = image.to_ascii_lowercase();
    let repository = crate::core::catalog::image_repository(&image);
    let last = repository.rsplit('/').next().unwrap_or("");
    let tag = image
        .split('@')
        .next()
        .and_then(|reference| reference.rsplit_once(':'))
        .map(|(_, tag)| tag)
        .filter(|tag| !tag.contains('/'))
        .unwrap_or("");
    let numbers = |text: &str| -> Option<(u32, u32)> {
        let mut parts = text.split(['.', '-', '_']);
        let major = parts.next()?.parse().ok()?;
        let minor = parts
            .next()?
            .chars()
            .take_while(char::is_ascii_digit)
            .collect::<String>()
            .parse()
            .ok()?;
        (major == 3).then_some((major, minor))
    };
    if last == "python" || last == "pypy" {
        return numbers(tag);
    }
    if let Some(rest) = last.strip_prefix("python") {
        return numbers(rest);
    }
    // A tag naming the interpreter: `-python3.12`, `-py3.13`, `py311`.
    ["python", "py"].iter().find_map(|marker| {
        let rest = tag.split(marker).nth(1)?;
        if rest.starts_with("3.") {
            return numbers(rest);
        }
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let minor = digits.strip_prefix('3')?;
        numbers(&format!("3.{minor}"))
    })
}

/// The names the container's `env` already defines. A scan: lists are short, and building a set
/// cost more than the few lookups made in it.
struct Defined<'a>(&'a [EnvVar]);

impl Defined<'_> {
    fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|var| var.name == name)
    }
}

/// `(name, value, reason)` of the CPU-derived variables, in the order they are added.
fn computed(
    target: &Target,
    base: &SizingBase,
    workers: &WorkerPlan,
    defined: &Defined,
    planner: &mut Planner,
) -> Vec<(String, String, String)> {
    let policy = planner.policy;
    let server = target.info.detection.server;
    let mut out = Vec::new();

    let version = target
        .launch
        .python_version()
        .or_else(|| python_version_of_image(target.container.image.as_deref().unwrap_or("")));
    let reads_cpu_count = matches!(version, Some((3, minor)) if minor >= 13);
    let sized_cpus = base.cpu_millis.map(quantity::whole_cpus);
    // What Python and its pools see: a PYTHON_CPU_COUNT the user set, else the CPUs sized from.
    let seen_cpus = sized_cpus.map(|cpus| target.env_count("PYTHON_CPU_COUNT").unwrap_or(cpus));
    if policy.env.web_concurrency {
        match workers {
            WorkerPlan::Set {
                knob,
                count,
                reason,
                ..
            } if !defined.contains(knob) => {
                out.push((knob.clone(), count.to_string(), reason.clone()));
            }
            WorkerPlan::NotSized(why) => {
                // Celery's default pool is billiard's cpu_count(), i.e. os.cpu_count(), which
                // CPython 3.13+ takes from PYTHON_CPU_COUNT.
                let celery = server == Server::CeleryWorker
                    || target.launch.entry.as_ref().and_then(|e| e.server)
                        == Some(ServerKind::CeleryWorker);
                let bounded = match (celery, seen_cpus) {
                    (true, Some(cpus))
                        if reads_cpu_count
                            && policy.env.python_cpu_count
                            && target.info.detection.flags.concurrency.is_none()
                            && !target.info.detection.flags.autoscale =>
                    {
                        format!(
                            "; here PYTHON_CPU_COUNT={cpus} (read by Python 3.13+) bounds that default to {cpus}"
                        )
                    }
                    _ => String::new(),
                };
                planner.note(
                    Some(target.name()),
                    Feature::Env,
                    format!("no worker count set: {why}{bounded}"),
                )
            }
            _ => {}
        }
    }
    let (Some(cpus), Some(seen_cpus)) = (sized_cpus, seen_cpus) else {
        planner.note(
            Some(target.name()),
            Feature::Env,
            "no CPU request or limit to size threads from",
        );
        return out;
    };
    match version {
        _ if !policy.env.python_cpu_count => {}
        _ if reads_cpu_count => out.push((
            "PYTHON_CPU_COUNT".to_string(),
            cpus.to_string(),
            format!(
                "CPython 3.13+ reports {cpus} CPU(s) ({}) instead of the node's cores",
                base.cpu_source
            ),
        )),
        Some((major, minor)) => planner.note(
            Some(target.name()),
            Feature::Env,
            format!("PYTHON_CPU_COUNT not added: Python {major}.{minor} does not read it (3.13+)"),
        ),
        None => planner.note(
            Some(target.name()),
            Feature::Env,
            "PYTHON_CPU_COUNT not added: the image does not show a Python version (read from 3.13)",
        ),
    }
    if server == Server::CeleryBeat {
        planner.note(
            Some(target.name()),
            Feature::Env,
            "celery beat only schedules: no thread sizing",
        );
        return out;
    }
    let cpus = seen_cpus;
    let (processes, what) = match (workers, server) {
        (WorkerPlan::Given { count, .. }, _) => (*count, "worker(s)"),
        (WorkerPlan::Set { count, .. }, _) => (*count, "worker(s)"),
        // Celery's default pool is one child per CPU Python reports.
        (_, Server::CeleryWorker) => (
            target.info.detection.flags.concurrency.unwrap_or(cpus),
            "celery process(es)",
        ),
        _ => (1, "process"),
    };
    let threads = (cpus / processes.max(1)).max(1);
    let reason = format!(
        "native pools size from the node's cores; {cpus} CPU(s) / {processes} {what} = {threads}"
    );
    let threads = threads.to_string();
    if target
        .launch
        .entry
        .as_ref()
        .is_some_and(|entry| !entry.thread_caps)
    {
        planner.note(
            Some(target.name()),
            Feature::Env,
            "no thread caps: the application sizes its thread pools itself (catalog)",
        );
        return out;
    }
    for var in &policy.env.thread_caps {
        out.push((var.clone(), threads.clone(), reason.clone()));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::python_version_of_image;

    #[test]
    fn python_versions_read_from_image_references() {
        for (image, version) in [
            ("python:3.13-slim", Some((3, 13))),
            ("docker.io/library/python:3.12.4-alpine3.20", Some((3, 12))),
            ("registry.example.com/base/python3.11:2024", Some((3, 11))),
            ("ghcr.io/team/app:1.4-py3.13", Some((3, 13))),
            ("python:latest", None),
            ("apache/airflow:3.0.2", None),
            ("apache/airflow:3.0.2-python3.12", Some((3, 12))),
            ("team/app:py311", Some((3, 11))),
            ("localhost:5000/python", None),
            ("", None),
        ] {
            assert_eq!(python_version_of_image(image), version, "{image}");
        }
    }
}
