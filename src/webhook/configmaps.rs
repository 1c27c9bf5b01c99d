//! Looks up the keys of the ConfigMaps a Pod's `envFrom` names, so the engine knows which
//! variables they define instead of assuming they may define anything.
//!
//! Opt-in (`--resolve-config-maps`): it needs `get` on ConfigMaps in every namespace pytune serves,
//! and it adds an API call per Pod that uses `envFrom`. A ConfigMap that is missing, forbidden or
//! slow stays unknown, which is what the engine assumes without this lookup.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::ConfigMap;
use kube::Api;

/// Longest time spent on lookups for one review.
pub const MAX_LOOKUP_TIME: Duration = Duration::from_secs(2);
/// How long the keys of a ConfigMap that was read are reused: a Deployment scaling up creates many
/// Pods naming the same ConfigMaps within seconds.
pub const CACHE_TTL: Duration = Duration::from_secs(30);
/// At most this many ConfigMaps are remembered; past it the cache starts over.
pub const CACHE_CAPACITY: usize = 4096;

type Cache = HashMap<(String, String), (Instant, BTreeSet<String>)>;

#[derive(Clone)]
pub struct ConfigMapResolver {
    client: kube::Client,
    cache: Arc<Mutex<Cache>>,
}

impl fmt::Debug for ConfigMapResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfigMapResolver").finish_non_exhaustive()
    }
}

impl ConfigMapResolver {
    pub fn new(client: kube::Client) -> ConfigMapResolver {
        ConfigMapResolver {
            client,
            cache: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// The keys (`data` and `binaryData`) of each ConfigMap in `names` that could be read within
    /// `within`; the others are left out, i.e. unknown.
    pub async fn keys(
        &self,
        namespace: &str,
        names: &BTreeSet<String>,
        within: Duration,
    ) -> BTreeMap<String, BTreeSet<String>> {
        let api: Api<ConfigMap> = Api::namespaced(self.client.clone(), namespace);
        let deadline = tokio::time::Instant::now() + within;
        let mut keys = BTreeMap::new();
        for name in names {
            let key = (namespace.to_string(), name.clone());
            if let Some(found) = self.cached(&key) {
                keys.insert(name.clone(), found);
                continue;
            }
            match tokio::time::timeout_at(deadline, api.get_opt(name)).await {
                Ok(Ok(Some(config_map))) => {
                    let mut found: BTreeSet<String> = BTreeSet::new();
                    found.extend(
                        config_map
                            .data
                            .into_iter()
                            .flat_map(|data| data.into_keys()),
                    );
                    found.extend(
                        config_map
                            .binary_data
                            .into_iter()
                            .flat_map(|data| data.into_keys()),
                    );
                    self.remember(key, found.clone());
                    keys.insert(name.clone(), found);
                }
                Ok(Ok(None)) => {
                    tracing::debug!(namespace, config_map = %name, "envFrom ConfigMap not found; left unknown");
                }
                Ok(Err(err)) => {
                    tracing::warn!(namespace, config_map = %name, error = %err, "cannot read envFrom ConfigMap; left unknown");
                }
                Err(_) => {
                    tracing::warn!(namespace, config_map = %name, "envFrom ConfigMap lookups timed out; left unknown");
                    break;
                }
            }
        }
        keys
    }

    fn cached(&self, key: &(String, String)) -> Option<BTreeSet<String>> {
        let cache = self.cache.lock().ok()?;
        let (read_at, keys) = cache.get(key)?;
        (read_at.elapsed() < CACHE_TTL).then(|| keys.clone())
    }

    fn remember(&self, key: (String, String), keys: BTreeSet<String>) {
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
