//! Learned defaults at admission (opt-in, `--learned-defaults NAMESPACE/NAME`): the ConfigMap
//! `pytune recommend --write-configmap` writes, kept in memory by a watch, and the values of a new
//! Pod's workload looked up from it. A review never waits on the ConfigMap: it reads the copy the
//! watch keeps. The one API call a review may make, a Pod's ReplicaSet or Job (to find its
//! Deployment or CronJob), is cached and bounded by the review's lookup time.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use futures::StreamExt as _;
use k8s_openapi::api::core::v1::ConfigMap;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::Api;
use kube::runtime::WatchStreamExt as _;
use kube::runtime::watcher::{self, Event};
use tokio::task::JoinHandle;

use crate::cluster::owners::{self, OwnerResolver};
use crate::core::learned::{CONFIGMAP_KEY, LearnedDocument, LearnedValues};
use crate::webhook::metrics::{Metrics, ReloadKind};

/// How long the workload above a ReplicaSet or a Job is remembered: a ReplicaSet keeps its
/// Deployment for life, and a scale-up creates many Pods of one ReplicaSet within seconds.
pub const OWNER_CACHE_TTL: Duration = Duration::from_secs(600);
/// At most this many ReplicaSets and Jobs are remembered; past it the cache starts over.
pub const OWNER_CACHE_CAPACITY: usize = 4096;

/// The ConfigMap holding the learned defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LearnedSource {
    pub namespace: String,
    pub name: String,
}

impl FromStr for LearnedSource {
    type Err = String;

    fn from_str(text: &str) -> Result<LearnedSource, String> {
        match text.split_once('/') {
            Some((namespace, name))
                if !namespace.is_empty() && !name.is_empty() && !name.contains('/') =>
            {
                Ok(LearnedSource {
                    namespace: namespace.to_string(),
                    name: name.to_string(),
                })
            }
            _ => Err(format!(
                "{text:?} is not NAMESPACE/NAME of a ConfigMap, like pytune-system/pytune-learned"
            )),
        }
    }
}

impl fmt::Display for LearnedSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// The learned defaults the webhook serves from: the last valid document of the ConfigMap.
pub struct LearnedDefaults {
    source: LearnedSource,
    client: kube::Client,
    document: ArcSwapOption<LearnedDocument>,
    owners: OwnerResolver,
}

impl fmt::Debug for LearnedDefaults {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LearnedDefaults")
            .field("source", &self.source)
            .field("loaded", &self.document.load().is_some())
            .finish_non_exhaustive()
    }
}

/// What the ConfigMap held when it was last seen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Loaded {
    /// A valid document with this many workloads.
    Document(usize),
    /// No ConfigMap, or one without the key: nothing learned yet.
    Nothing,
    /// An invalid document; the previous one, if any, is kept.
    Invalid(String),
}

impl LearnedDefaults {
    pub fn new(client: kube::Client, source: LearnedSource) -> Arc<LearnedDefaults> {
        Arc::new(LearnedDefaults {
            source,
            owners: OwnerResolver::new(client.clone(), OWNER_CACHE_TTL, OWNER_CACHE_CAPACITY),
            client,
            document: ArcSwapOption::empty(),
        })
    }

    pub fn source(&self) -> &LearnedSource {
        &self.source
    }

    /// The document the webhook serves from, if any.
    pub fn document(&self) -> Option<Arc<LearnedDocument>> {
        self.document.load_full()
    }

    /// Takes what the ConfigMap holds now (`None`: it does not exist); see [`load`].
    pub fn load(&self, config_map: Option<&ConfigMap>) -> Loaded {
        load(&self.document, config_map)
    }

    /// Watches the ConfigMap until aborted, reconnecting with backoff when the API server is
    /// unreachable or the watch breaks.
    pub fn spawn_watch(self: &Arc<Self>, metrics: Arc<Metrics>) -> JoinHandle<()> {
        let this = self.clone();
        tokio::spawn(async move { this.watch(metrics).await })
    }

    async fn watch(&self, metrics: Arc<Metrics>) {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), &self.source.namespace);
        // Only the one ConfigMap: RBAC can then allow list and watch on exactly that name.
        let config =
            watcher::Config::default().fields(&format!("metadata.name={}", self.source.name));
        let mut events = watcher::watcher(api, config).default_backoff().boxed();
        let mut listed = false;
        let mut failing = false;
        while let Some(event) = events.next().await {
            let loaded = match event {
                Ok(Event::Init) => {
                    listed = false;
                    continue;
                }
                Ok(Event::InitApply(config_map)) | Ok(Event::Apply(config_map)) => {
                    listed = true;
                    self.load(Some(&config_map))
                }
                Ok(Event::InitDone) if listed => continue,
                Ok(Event::InitDone) | Ok(Event::Delete(_)) => self.load(None),
                Err(err) => {
                    // Logged once per outage; the backoff retries.
                    if !failing {
                        tracing::warn!(configmap = %self.source, error = %err, "cannot watch the learned defaults; serving from the last values read");
                    }
                    failing = true;
                    metrics.reload(ReloadKind::Learned, false);
                    continue;
                }
            };
            failing = false;
            self.report(&loaded, &metrics);
        }
    }

    fn report(&self, loaded: &Loaded, metrics: &Metrics) {
        let document = self.document();
        metrics.set_learned(
            document.as_ref().map_or(0, |d| d.workloads.len()),
            document
                .as_ref()
                .and_then(|d| crate::core::learned::parse_rfc3339(&d.generated_at)),
        );
        match loaded {
            Loaded::Document(workloads) => {
                metrics.reload(ReloadKind::Learned, true);
                tracing::info!(configmap = %self.source, workloads, generated_at = document.as_ref().map(|d| d.generated_at.as_str()), "learned defaults loaded");
            }
            Loaded::Nothing => {
                metrics.reload(ReloadKind::Learned, true);
                tracing::info!(configmap = %self.source, "no learned defaults yet: the ConfigMap or its {CONFIGMAP_KEY} key is missing; profile defaults apply");
            }
            Loaded::Invalid(error) => {
                metrics.reload(ReloadKind::Learned, false);
                tracing::error!(configmap = %self.source, error, kept_previous = document.is_some(), "invalid learned defaults ignored");
            }
        }
    }

    /// The learned values, by container name, of a new Pod in `namespace` owned by `owners`,
    /// when the document is fresh (`max_age_seconds`) and has the Pod's workload. The owner
    /// lookup gets `within`; past it, or when it fails, the Pod gets no learned values.
    pub async fn for_pod(
        &self,
        namespace: &str,
        owners: &[OwnerReference],
        containers: &[&str],
        max_age_seconds: u64,
        within: Duration,
    ) -> BTreeMap<String, LearnedValues> {
        let Some(document) = self.document() else {
            return BTreeMap::new();
        };
        let now = unix_now();
        if !document.is_fresh(now, max_age_seconds) || !document.has_namespace(namespace) {
            return BTreeMap::new();
        }
        // Bare Pods have no later Pods to learn for.
        let Some(owner) = owners::controller(owners) else {
            return BTreeMap::new();
        };
        let workload =
            match tokio::time::timeout(within, self.owners.workload(namespace, owner)).await {
                Ok(resolved) => {
                    if let Some(error) = &resolved.error {
                        tracing::warn!(
                            namespace,
                            error,
                            "cannot resolve the Pod's workload; no learned defaults for it"
                        );
                        return BTreeMap::new();
                    }
                    resolved.workload
                }
                Err(_) => {
                    tracing::warn!(
                        namespace,
                        "the Pod's workload was not resolved in time; no learned defaults for it"
                    );
                    return BTreeMap::new();
                }
            };
        containers
            .iter()
            .filter_map(|container| {
                document
                    .learned_for(
                        namespace,
                        &workload.kind,
                        &workload.name,
                        container,
                        now,
                        max_age_seconds,
                    )
                    .map(|values| (container.to_string(), values))
            })
            .collect()
    }
}

/// Stores what `config_map` holds in `current`. An invalid document never replaces a valid one:
/// its writer is broken, and the last good values are still bounded by the policy's
/// `learned.maxAge`.
fn load(current: &ArcSwapOption<LearnedDocument>, config_map: Option<&ConfigMap>) -> Loaded {
    let text = config_map
        .and_then(|cm| cm.data.as_ref())
        .and_then(|data| data.get(CONFIGMAP_KEY));
    let Some(text) = text else {
        current.store(None);
        return Loaded::Nothing;
    };
    match LearnedDocument::parse(text) {
        Ok(document) => {
            let workloads = document.workloads.len();
            current.store(Some(Arc::new(document)));
            Loaded::Document(workloads)
        }
        Err(err) => Loaded::Invalid(err.to_string()),
    }
}

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config_map(data: Option<&str>) -> ConfigMap {
        ConfigMap {
            data: data.map(|text| [(CONFIGMAP_KEY.to_string(), text.to_string())].into()),
            ..ConfigMap::default()
        }
    }

    const DOCUMENT: &str = r#"{"version":1,"window":"7d","generatedAt":"2026-11-20T08:00:00Z","workloads":[
        {"namespace":"shop","kind":"Deployment","name":"web","containers":[
            {"name":"app","values":{"resources.requests.cpu":"180m"},"reason":"p95 CPU 150m"}]}]}"#;

    #[test]
    fn a_valid_document_replaces_the_last_an_invalid_one_never_does() {
        let current = ArcSwapOption::empty();
        assert_eq!(
            load(&current, Some(&config_map(Some(DOCUMENT)))),
            Loaded::Document(1)
        );
        let loaded = current.load_full().expect("stored");
        assert!(loaded.has_namespace("shop"));

        let broken = DOCUMENT.replace("180m", "fast");
        let Loaded::Invalid(error) = load(&current, Some(&config_map(Some(&broken)))) else {
            panic!("an invalid document is reported");
        };
        assert!(error.contains("\"fast\""), "{error}");
        assert_eq!(
            current.load_full(),
            Some(loaded),
            "the last valid document stays"
        );

        let newer = DOCUMENT.replace(
            "\"containers\":[",
            "\"containers\":[{\"name\":\"side\",\"values\":{},\"reason\":\"\"},",
        );
        assert_eq!(
            load(&current, Some(&config_map(Some(&newer)))),
            Loaded::Document(1)
        );
        assert_eq!(
            current.load_full().expect("stored").workloads[0]
                .containers
                .len(),
            2
        );
    }

    #[test]
    fn a_missing_config_map_or_key_means_nothing_learned() {
        let current = ArcSwapOption::empty();
        assert_eq!(
            load(&current, Some(&config_map(Some(DOCUMENT)))),
            Loaded::Document(1)
        );
        assert_eq!(load(&current, Some(&config_map(None))), Loaded::Nothing);
        assert!(current.load_full().is_none());
        load(&current, Some(&config_map(Some(DOCUMENT))));
        assert_eq!(load(&current, None), Loaded::Nothing, "deleted");
        assert!(current.load_full().is_none());
    }

    #[test]
    fn the_source_is_namespace_slash_name() {
        let source: LearnedSource = "pytune-system/pytune-learned".parse().unwrap();
        assert_eq!(source.namespace, "pytune-system");
        assert_eq!(source.name, "pytune-learned");
        assert_eq!(source.to_string(), "pytune-system/pytune-learned");
        for bad in ["pytune-learned", "/x", "ns/", "a/b/c", ""] {
            let err = bad.parse::<LearnedSource>().unwrap_err();
            assert!(err.contains("NAMESPACE/NAME"), "{bad}: {err}");
        }
    }
}
