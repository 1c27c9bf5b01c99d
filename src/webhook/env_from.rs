//! Looks up the keys of the ConfigMaps and Secrets a Pod's `envFrom` names, so the engine knows
//! which variables they define instead of assuming they may define anything.
//!
//! Each kind is opt-in: `--resolve-config-maps` needs `get` on ConfigMaps and
//! `--resolve-secrets` `get` on Secrets, in every namespace pytune serves, and each adds API calls
//! per Pod that uses `envFrom`. Of a Secret only the key names are kept; its values are dropped as
//! soon as it is read. A source that is missing, forbidden or slow stays unknown, which is what the
//! engine assumes without a lookup.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, Secret};
use kube::Api;

/// Longest time spent on lookups for one review.
pub const MAX_LOOKUP_TIME: Duration = Duration::from_secs(2);
/// How long the keys of a source that was read are reused: a Deployment scaling up creates many
/// Pods naming the same sources within seconds.
pub const CACHE_TTL: Duration = Duration::from_secs(30);
/// At most this many sources are remembered; past it the cache starts over.
pub const CACHE_CAPACITY: usize = 4096;

/// The kinds of `envFrom` source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceKind {
    ConfigMap,
    Secret,
}

impl fmt::Display for SourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SourceKind::ConfigMap => "ConfigMap",
            SourceKind::Secret => "Secret",
        })
    }
}

/// Names of `envFrom` sources, or their keys by name, per kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ByKind<T> {
    pub config_maps: T,
    pub secrets: T,
}

impl<T> ByKind<T> {
    fn get_mut(&mut self, kind: SourceKind) -> &mut T {
        match kind {
            SourceKind::ConfigMap => &mut self.config_maps,
            SourceKind::Secret => &mut self.secrets,
        }
    }
}

pub type SourceNames = ByKind<BTreeSet<String>>;
pub type SourceKeys = ByKind<BTreeMap<String, BTreeSet<String>>>;

type Cache = HashMap<(SourceKind, String, String), (Instant, BTreeSet<String>)>;

#[derive(Clone)]
pub struct EnvFromResolver {
    client: kube::Client,
    /// The kinds looked up; the others stay unknown.
    kinds: ByKind<bool>,
    cache: Arc<Mutex<Cache>>,
}

impl fmt::Debug for EnvFromResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvFromResolver")
            .field("config_maps", &self.kinds.config_maps)
            .field("secrets", &self.kinds.secrets)
            .finish_non_exhaustive()
    }
}

impl EnvFromResolver {
    pub fn new(client: kube::Client, config_maps: bool, secrets: bool) -> EnvFromResolver {
        EnvFromResolver {
            client,
            kinds: ByKind {
                config_maps,
                secrets,
            },
            cache: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The keys of each source in `names` of a kind this resolver looks up that could be read
    /// within `within`; the others are left out, i.e. unknown.
    pub async fn keys(&self, namespace: &str, names: &SourceNames, within: Duration) -> SourceKeys {
        let deadline = tokio::time::Instant::now() + within;
        let mut keys = SourceKeys::default();
        let wanted = [
            (
                SourceKind::ConfigMap,
                self.kinds.config_maps,
                &names.config_maps,
            ),
            (SourceKind::Secret, self.kinds.secrets, &names.secrets),
        ];
        for (kind, enabled, names) in wanted {
            if !enabled {
                continue;
            }
            for name in names {
                let key = (kind, namespace.to_string(), name.clone());
                if let Some(found) = self.cached(&key) {
                    keys.get_mut(kind).insert(name.clone(), found);
                    continue;
                }
                match tokio::time::timeout_at(deadline, self.fetch(kind, namespace, name)).await {
                    Ok(Ok(Some(found))) => {
                        self.remember(key, found.clone());
                        keys.get_mut(kind).insert(name.clone(), found);
                    }
                    Ok(Ok(None)) => {
                        tracing::debug!(namespace, %kind, name = %name, "envFrom source not found; left unknown");
                    }
                    Ok(Err(err)) => {
                        tracing::warn!(namespace, %kind, name = %name, error = %err, "cannot read envFrom source; left unknown");
                    }
                    Err(_) => {
                        tracing::warn!(namespace, %kind, name = %name, "envFrom lookups timed out; left unknown");
                        return keys;
                    }
                }
            }
        }
        keys
    }

    /// The key names of one source, `None` when it does not exist.
    async fn fetch(
        &self,
        kind: SourceKind,
        namespace: &str,
        name: &str,
    ) -> kube::Result<Option<BTreeSet<String>>> {
        Ok(match kind {
            SourceKind::ConfigMap => {
                let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
                api.get_opt(name).await?.map(|config_map| {
                    let data = config_map.data.into_iter().flat_map(|d| d.into_keys());
                    let binary = config_map
                        .binary_data
                        .into_iter()
                        .flat_map(|d| d.into_keys());
                    data.chain(binary).collect()
                })
            }
            SourceKind::Secret => {
                let api: Api<Secret> = Api::namespaced(self.client.clone(), namespace);
                api.get_opt(name).await?.map(|secret| {
                    let data = secret.data.into_iter().flat_map(|d| d.into_keys());
                    let string = secret.string_data.into_iter().flat_map(|d| d.into_keys());
                    data.chain(string).collect()
                })
            }
        })
    }

    fn cached(&self, key: &(SourceKind, String, String)) -> Option<BTreeSet<String>> {
        let cache = self.cache.lock().ok()?;
        let (read_at, keys) = cache.get(key)?;
        (read_at.elapsed() < CACHE_TTL).then(|| keys.clone())
    }

    fn remember(&self, key: (SourceKind, String, String), keys: BTreeSet<String>) {
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_CAPACITY {
                cache.retain(|_, (read_at, _)| read_at.elapsed() < CACHE_TTL);
                if cache.len() >= CACHE_CAPACITY {
                    cache.clear();
                }
            }
            cache.insert(key, (Instant::now(), keys));
        }
    }
}
