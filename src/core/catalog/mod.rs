//! The application catalog: what pytune knows about the programs containers run, as data.
//!
//! Entries come from the YAML files under `catalog/` (embedded) and from the policy's own `catalog`
//! list (matched first); `catalog/README.md` is the schema's reference. Each entry recognises a
//! launch path by evidence (image, command words, env markers) and states what it runs: Python or
//! not, the server, the profile, the port it serves, its concurrency knob, health endpoint and
//! shutdown semantics, each with its sources.

mod files;
mod matching;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::core::profile::WorkloadProfile;
use crate::core::quantity;

pub use matching::{AppMatch, Evidence, find, image_repository};

#[derive(Debug, Error, PartialEq)]
pub enum CatalogError {
    #[error("catalog file {file}: not valid YAML for the catalog schema: {message}")]
    Parse { file: String, message: String },
    #[error("catalog {place}: {message}")]
    Invalid { place: String, message: String },
}

fn invalid(place: impl Into<String>, message: impl Into<String>) -> CatalogError {
    CatalogError::Invalid {
        place: place.into(),
        message: message.into(),
    }
}

/// One file of the catalog: an application family.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Family {
    pub family: String,
    pub title: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
    pub entries: Vec<Entry>,
}

/// One launch path of an application: how to recognise it and what it runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Entry {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(rename = "match")]
    pub matchers: Vec<Matcher>,
    pub python: bool,
    /// The Python version the image ships (`"3.12"`), where the entry's image fixes it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub python_version: Option<String>,
    /// The C library of the image, where known: `MALLOC_ARENA_MAX` only means something to glibc.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub libc: Option<Libc>,
    /// An allocator the image preloads in its own `ENV` (`LD_PRELOAD` of mimalloc or jemalloc):
    /// glibc's malloc arenas are then not used, and `MALLOC_ARENA_MAX` means nothing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preloaded_allocator: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_class: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<WorkloadProfile>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<PortSpec>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<Concurrency>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_per_process: Option<String>,
    /// `false` where the application sizes its native thread pools itself (Ray sets
    /// `OMP_NUM_THREADS` per task): pytune then adds no thread caps.
    #[serde(default = "yes", skip_serializing_if = "Clone::clone")]
    pub thread_caps: bool,
    /// `true` where the image's launcher binds `port` on all addresses itself, whatever server
    /// words the Pod's args show (Baserow's entrypoint takes `gunicorn` as a subcommand and passes
    /// `-b 0.0.0.0:8000`): pytune then adds no `PORT` and takes the port as reachable.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub binds_itself: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shutdown: Option<Shutdown>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sources: Vec<String>,
}

fn yes() -> bool {
    true
}

/// Evidence that must all hold for an alternative to match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Matcher {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub words: Vec<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub no_command: bool,
}

impl Matcher {
    /// How specific the alternative is: one per condition, one per word.
    pub fn weight(&self) -> usize {
        usize::from(self.image.is_some())
            + self.words.len()
            + self.env.len()
            + usize::from(self.no_command)
    }
}

/// What runs in the container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ServerKind {
    Gunicorn,
    Uvicorn,
    Granian,
    Uwsgi,
    /// NGINX Unit running the app in its own Python processes (PostHog's newer images).
    NginxUnit,
    Daphne,
    Hypercorn,
    Waitress,
    Tornado,
    Aiohttp,
    Grpc,
    Werkzeug,
    CeleryWorker,
    CeleryBeat,
    RqWorker,
    Dramatiq,
    KafkaConsumer,
    Supervisord,
    Script,
    None,
}

impl ServerKind {
    /// Servers that answer on a port.
    pub fn serves(self) -> bool {
        matches!(
            self,
            ServerKind::Gunicorn
                | ServerKind::Uvicorn
                | ServerKind::Granian
                | ServerKind::Uwsgi
                | ServerKind::NginxUnit
                | ServerKind::Daphne
                | ServerKind::Hypercorn
                | ServerKind::Waitress
                | ServerKind::Tornado
                | ServerKind::Aiohttp
                | ServerKind::Grpc
                | ServerKind::Werkzeug
                | ServerKind::Supervisord
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Gunicorn => "gunicorn",
            ServerKind::Uvicorn => "uvicorn",
            ServerKind::Granian => "granian",
            ServerKind::Uwsgi => "uwsgi",
            ServerKind::NginxUnit => "nginx-unit",
            ServerKind::Daphne => "daphne",
            ServerKind::Hypercorn => "hypercorn",
            ServerKind::Waitress => "waitress",
            ServerKind::Tornado => "tornado",
            ServerKind::Aiohttp => "aiohttp",
            ServerKind::Grpc => "grpc",
            ServerKind::Werkzeug => "werkzeug",
            ServerKind::CeleryWorker => "celery-worker",
            ServerKind::CeleryBeat => "celery-beat",
            ServerKind::RqWorker => "rq-worker",
            ServerKind::Dramatiq => "dramatiq",
            ServerKind::KafkaConsumer => "kafka-consumer",
            ServerKind::Supervisord => "supervisord",
            ServerKind::Script => "script",
            ServerKind::None => "none",
        }
    }
}

/// The port a launch path serves: a number, or `declared` (the container's first declared port).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PortSpec {
    Number(i32),
    Declared(Declared),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Declared {
    Declared,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Concurrency {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub env: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flag: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<Counts>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<CountDefault>,
    #[serde(default)]
    pub web_concurrency: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub processes_per_worker: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_processes: Option<u32>,
    /// The fewest the project supports or recommends (authentik: "a value below 2 workers is
    /// not recommended"): pytune never sets the count below it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<u32>,
    /// The most the program runs with (Langflow refuses more than one worker without a Redis job
    /// queue): pytune never sets the count above it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<u32>,
    /// Variables by which the user sizes the program another way, which the count variable would
    /// override (PostHog's script turns WEB_CONCURRENCY into a `--concurrency` that beats a
    /// CELERY_WORKER_CONCURRENCY the chart sets): with any of them defined, pytune sets no count.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub unless_env: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Counts {
    Processes,
    Threads,
    Tasks,
}

/// A default count: a number, or `cpus` (the node's core count, unknown at admission).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum CountDefault {
    Number(u32),
    Cpus(Cpus),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Cpus {
    Cpus,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Health {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<PortSpec>,
    /// The `Host` header the probe sends, for apps that refuse other hosts (Django's
    /// `ALLOWED_HOSTS`): the kubelet sends the Pod's IP otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Shutdown {
    pub sigterm: Sigterm,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub drain_seconds: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub knob: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Libc {
    Glibc,
    Musl,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sigterm {
    Graceful,
    Unbounded,
    WaitsForTasks,
    Immediate,
    Reload,
    Ignored,
}

/// The catalog pytune matches against: the policy's entries first, then the embedded files.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Catalog {
    pub families: Vec<Family>,
}

static EMBEDDED: LazyLock<Result<Catalog, CatalogError>> = LazyLock::new(|| {
    let families = files::EMBEDDED
        .iter()
        .map(|(name, text)| parse_family(name, text))
        .collect::<Result<Vec<_>, _>>()?;
    let catalog = Catalog { families };
    catalog.validate()?;
    Ok(catalog)
});

impl Catalog {
    /// The catalog files built into pytune. A unit test checks they load; an empty catalog stands
    /// in should that ever fail, so pytune degrades to its generic rules instead of panicking.
    pub fn embedded() -> &'static Catalog {
        static EMPTY: Catalog = Catalog {
            families: Vec::new(),
        };
        EMBEDDED.as_ref().unwrap_or(&EMPTY)
    }

    /// Parses and checks the embedded catalog now (it is otherwise parsed on first use), saying why
    /// if it cannot load.
    pub fn load_embedded() -> Result<&'static Catalog, &'static CatalogError> {
        EMBEDDED.as_ref()
    }

    /// Every entry, in matching order.
    pub fn entries(&self) -> impl Iterator<Item = (&Family, &Entry)> {
        self.families
            .iter()
            .flat_map(|family| family.entries.iter().map(move |entry| (family, entry)))
    }

    /// Checks what the schema cannot: unique names, matchers with evidence, valid quantities.
    pub fn validate(&self) -> Result<(), CatalogError> {
        let mut names = BTreeSet::new();
        for family in &self.families {
            if family.entries.is_empty() {
                return Err(invalid(
                    format!("family {}", family.family),
                    "has no entries",
                ));
            }
            for entry in &family.entries {
                validate_entry(family, entry)?;
                if !names.insert(entry.name.as_str()) {
                    return Err(invalid(
                        format!("entry {}", entry.name),
                        "the name is used twice; names are unique across the catalog",
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The embedded catalog files, `(name, text)`, in matching order.
pub fn embedded_files() -> &'static [(&'static str, &'static str)] {
    files::EMBEDDED
}

/// Reads one catalog file.
pub fn parse_family(file: &str, text: &str) -> Result<Family, CatalogError> {
    serde_saphyr::from_str(text).map_err(|err| CatalogError::Parse {
        file: file.to_string(),
        message: err.to_string(),
    })
}

fn validate_entry(family: &Family, entry: &Entry) -> Result<(), CatalogError> {
    let place = format!("entry {}", entry.name);
    if entry.name.trim().is_empty() {
        return Err(invalid(
            format!("family {}", family.family),
            "an entry has an empty name",
        ));
    }
    if entry.matchers.is_empty() {
        return Err(invalid(place, "match: needs at least one alternative"));
    }
    for (i, matcher) in entry.matchers.iter().enumerate() {
        if matcher.weight() == 0 {
            return Err(invalid(
                format!("{place} match[{i}]"),
                "an alternative needs image, words, env or noCommand",
            ));
        }
        if matcher.no_command && matcher.image.is_none() && matcher.env.is_empty() {
            return Err(invalid(
                format!("{place} match[{i}]"),
                "noCommand alone matches every image's default; add an image or env condition",
            ));
        }
    }
    if let Some(memory) = &entry.memory_per_process {
        quantity::memory_bytes(memory).map_err(|err| invalid(&place, err.to_string()))?;
    }
    for port in [entry.port, entry.health.as_ref().and_then(|h| h.port)]
        .into_iter()
        .flatten()
    {
        if let PortSpec::Number(number) = port
            && !(1..=65535).contains(&number)
        {
            return Err(invalid(&place, format!("port {number} is not 1–65535")));
        }
    }
    if let Some(health) = &entry.health
        && !health.path.starts_with('/')
    {
        return Err(invalid(&place, "health.path must start with /"));
    }
    if let Some(host) = entry.health.as_ref().and_then(|h| h.host.as_deref()) {
        let valid = !host.is_empty()
            && host.len() <= 253
            && host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
        if !valid {
            return Err(invalid(
                &place,
                format!("health.host {host:?} is not a host name like localhost"),
            ));
        }
    }
    if let Some(version) = &entry.python_version {
        let valid = version.split_once('.').is_some_and(|(major, minor)| {
            major.parse::<u32>().is_ok() && minor.parse::<u32>().is_ok()
        });
        if !valid {
            return Err(invalid(
                &place,
                format!("pythonVersion {version:?} is not like \"3.12\""),
            ));
        }
    }
    if let Some(concurrency) = &entry.concurrency
        && let Some(minimum) = concurrency.minimum
    {
        if minimum == 0 {
            return Err(invalid(&place, "concurrency.minimum must be at least 1"));
        }
        if let Some(CountDefault::Number(default)) = concurrency.default
            && default < minimum
        {
            return Err(invalid(
                &place,
                format!("concurrency.default {default} is below concurrency.minimum {minimum}"),
            ));
        }
    }
    if entry.sources.is_empty() && family.sources.is_empty() {
        return Err(invalid(&place, "sources: say where the facts come from"));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
