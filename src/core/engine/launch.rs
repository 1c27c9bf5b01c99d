//! What a target container's launch path does: the catalog entry it matched (or the generic
//! entry of the server its command shows), read into the facts the rules act on. Without an
//! entry, every fact is unknown and the rules keep to what is safe without it.

use k8s_openapi::api::core::v1::Container;
use serde::Serialize;

use crate::core::catalog::{
    self, AppMatch, Catalog, Concurrency, CountDefault, Entry, PortSpec, ServerKind, Sigterm,
};
use crate::core::detect::{Detection, Server};
use crate::core::policy::Policy;
use crate::core::quantity;

/// The catalog entry a container matched, as plans and reports show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AppRef {
    /// The entry's name: `airflow-api-server`, `gunicorn`, `nginx`.
    pub entry: String,
    /// What the entry says runs there, when it says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerKind>,
    /// The evidence that matched, in words.
    pub evidence: Vec<String>,
}

#[derive(Debug, Clone, Default)]
pub struct Launch {
    pub entry: Option<Entry>,
    /// A generic server entry (the operator's own app under gunicorn, Celery…), not a catalogued
    /// application: the policy's per-process memory describes it.
    pub generic: bool,
}

/// The family of the generic server entries (`catalog/servers.yaml`).
const GENERIC_FAMILY: &str = "servers";

/// The generic catalog entry of a server the command shows (used when the words themselves did
/// not match an entry, e.g. gunicorn recognised from `GUNICORN_CMD_ARGS`).
fn generic_entry(server: Server) -> Option<&'static str> {
    Some(match server {
        Server::Gunicorn => "gunicorn",
        Server::Uvicorn => "uvicorn",
        Server::Hypercorn => "hypercorn",
        Server::Daphne => "daphne",
        Server::Granian => "granian",
        Server::Uwsgi => "uwsgi",
        Server::CeleryWorker => "celery-worker",
        Server::CeleryBeat => "celery-beat",
        Server::Rq => "rq-worker",
        Server::Dramatiq => "dramatiq",
        Server::DjangoRunserver => "django-runserver",
        Server::FlaskRun => "flask-run",
        Server::Unknown => return None,
    })
}

impl Launch {
    /// Matches `container` against the policy's entries and the embedded catalog. A generic server
    /// entry gives way to the server the command-line parser found in the command that runs last.
    pub fn of(
        container: &Container,
        detection: &Detection,
        policy: &Policy,
    ) -> (Launch, Option<AppRef>) {
        let catalog = Catalog::embedded();
        let found = catalog::find(container, &policy.catalog, catalog);
        let detected = generic_entry(detection.server);
        let generic = |found: &AppMatch| found.family == GENERIC_FAMILY;
        let chosen = match (found, detected) {
            (Some(found), Some(name)) if generic(&found) && found.entry.name != name => {
                by_name(catalog, name, "the server the command runs")
            }
            (Some(found), _) => Some(found),
            (None, Some(name)) => by_name(catalog, name, "the server its command or env shows"),
            (None, None) => None,
        };
        match chosen {
            Some(found) => {
                let generic = found.family == GENERIC_FAMILY;
                let app = AppRef {
                    entry: found.entry.name.clone(),
                    server: found.entry.server,
                    evidence: found.evidence.0.clone(),
                };
                (
                    Launch {
                        entry: Some(found.entry),
                        generic,
                    },
                    Some(app),
                )
            }
            None => (Launch::default(), None),
        }
    }

    pub fn name(&self) -> Option<&str> {
        self.entry.as_ref().map(|entry| entry.name.as_str())
    }

    /// `Some(false)` for a container known not to run Python.
    pub fn python(&self) -> Option<bool> {
        self.entry.as_ref().map(|entry| entry.python)
    }

    /// Whether the launch path serves a port: its server does, or the entry names a port.
    pub fn serves(&self) -> Option<bool> {
        let entry = self.entry.as_ref()?;
        Some(entry.port.is_some() || entry.server.is_some_and(ServerKind::serves))
    }

    /// The port the entry says the launch path serves; `declared` resolves to `declared`.
    pub fn port(&self, declared: Option<i32>) -> Option<i32> {
        match self.entry.as_ref()?.port? {
            PortSpec::Number(port) => Some(port),
            PortSpec::Declared(_) => declared,
        }
    }

    /// A port the entry names (`None`: the serving port), resolved against the serving port.
    pub fn port_of(&self, spec: Option<PortSpec>, serving: i32) -> i32 {
        match spec {
            Some(PortSpec::Number(port)) => port,
            Some(PortSpec::Declared(_)) | None => serving,
        }
    }

    pub fn health(&self) -> Option<&catalog::Health> {
        self.entry.as_ref()?.health.as_ref()
    }

    pub fn concurrency(&self) -> Option<&Concurrency> {
        self.entry.as_ref()?.concurrency.as_ref()
    }

    /// The environment variable that sets this launch path's process count, when there is one.
    pub fn count_env(&self) -> Option<&str> {
        let concurrency = self.concurrency()?;
        if concurrency.web_concurrency {
            return Some("WEB_CONCURRENCY");
        }
        concurrency.env.as_deref()
    }

    pub fn default_count(&self) -> Option<CountDefault> {
        self.concurrency()?.default
    }

    /// Processes that run besides the counted ones (a master, an arbiter).
    pub fn base_processes(&self) -> u32 {
        self.concurrency()
            .and_then(|c| c.base_processes)
            .unwrap_or(0)
    }

    /// The fewest workers the launch path should run: the entry's `minimum`, else 1.
    pub fn minimum_count(&self) -> u32 {
        self.concurrency()
            .and_then(|c| c.minimum)
            .unwrap_or(1)
            .max(1)
    }

    /// The most the catalog lets pytune set, if it says.
    pub fn maximum_count(&self) -> Option<u32> {
        self.concurrency()
            .and_then(|c| c.maximum)
            .map(|max| max.max(1))
    }

    /// Resident memory of one process, when the entry states one: `(text, bytes)`.
    pub fn memory_per_process(&self) -> Option<(String, u64)> {
        let text = self.entry.as_ref()?.memory_per_process.as_ref()?;
        let bytes = quantity::memory_bytes(text).ok()?;
        Some((text.clone(), bytes))
    }

    /// The launcher binds the port on all addresses itself (catalog `bindsItself`).
    pub fn binds_itself(&self) -> bool {
        self.entry.as_ref().is_some_and(|entry| entry.binds_itself)
    }

    /// The Python version the entry states, as `(major, minor)`.
    pub fn python_version(&self) -> Option<(u32, u32)> {
        let text = self.entry.as_ref()?.python_version.as_deref()?;
        let (major, minor) = text.split_once('.')?;
        Some((major.parse().ok()?, minor.parse().ok()?))
    }

    pub fn sigterm(&self) -> Option<Sigterm> {
        Some(self.entry.as_ref()?.shutdown.as_ref()?.sigterm)
    }

    pub fn drain_seconds(&self) -> Option<u32> {
        self.entry.as_ref()?.shutdown.as_ref()?.drain_seconds
    }
}

fn by_name(catalog: &Catalog, name: &str, why: &str) -> Option<AppMatch> {
    catalog
        .entries()
        .find(|(_, entry)| entry.name == name)
        .map(|(family, entry)| AppMatch {
            entry: entry.clone(),
            family: family.family.clone(),
            evidence: catalog::Evidence(vec![why.to_string()]),
        })
}
