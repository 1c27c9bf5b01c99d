//! The workload a Pod belongs to, from its owner chain read through the API (ReplicaSet →
//! Deployment, Job → CronJob), never from name patterns.

use std::collections::HashMap;
use std::fmt;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use kube::api::Api;

use super::short;

/// A workload people manage: `Deployment/web`, `CronJob/report`, or a bare `Pod/x`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Workload {
    pub kind: String,
    pub name: String,
}

impl fmt::Display for Workload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.kind, self.name)
    }
}

/// The owner that controls a Pod (the first owner when none says it controls), as a workload.
pub fn controller(owners: &[OwnerReference]) -> Option<Workload> {
    let owner = owners
        .iter()
        .find(|o| o.controller == Some(true))
        .or_else(|| owners.first())?;
    Some(Workload {
        kind: owner.kind.clone(),
        name: owner.name.clone(),
    })
}

/// Whether a Pod whose controller is of this kind belongs to a workload further up the chain.
pub fn has_parent(kind: &str) -> bool {
    kind == "ReplicaSet" || kind == "Job"
}

/// What a lookup found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub workload: Workload,
    /// Set when the owner's own controller could not be read (the owner then stands for the
    /// workload); only the first time, as later lookups of the same owner are answered from the
    /// cache.
    pub error: Option<String>,
}

type Key = (String, String, String);

/// How long a failed lookup is remembered: long enough not to ask again for every Pod of a
/// scale-up, short enough that RBAC granted a moment later takes effect.
pub const FAILURE_TTL: Duration = Duration::from_secs(30);

/// A cached answer: when it was read, the owner's own controller, and whether the read failed.
type Cached = (Instant, Option<Workload>, bool);

/// Resolves Pod owners to the workload people manage, caching every lookup for `ttl`.
pub struct OwnerResolver {
    client: kube::Client,
    ttl: Duration,
    capacity: usize,
    cache: Mutex<HashMap<Key, Cached>>,
}

impl fmt::Debug for OwnerResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnerResolver")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl OwnerResolver {
    /// A resolver whose answers are reused for `ttl`, for at most `capacity` owners (past it the
    /// cache starts over).
    pub fn new(client: kube::Client, ttl: Duration, capacity: usize) -> OwnerResolver {
        OwnerResolver {
            client,
            ttl,
            capacity,
            cache: Mutex::new(HashMap::new()),
        }
    }

    /// The workload of a Pod in `namespace` whose controller is `owner`: the owner's own
    /// controller for a ReplicaSet (a Deployment) or a Job (a CronJob), else the owner.
    pub async fn workload(&self, namespace: &str, owner: Workload) -> Resolved {
        if !has_parent(&owner.kind) {
            return Resolved {
                workload: owner,
                error: None,
            };
        }
        let key = (
            namespace.to_string(),
            owner.kind.clone(),
            owner.name.clone(),
        );
        if let Some(parent) = self.cached(&key) {
            return Resolved {
                workload: parent.unwrap_or(owner),
                error: None,
            };
        }
        let (parent, error) = match self.parent(namespace, &owner).await {
            Ok(parent) => (parent, None),
            Err(err) => (
                None,
                Some(format!(
                    "cannot read {} {namespace}/{}: {}",
                    owner.kind,
                    owner.name,
                    short(&err)
                )),
            ),
        };
        self.remember(key, parent.clone(), error.is_some());
        Resolved {
            workload: parent.unwrap_or(owner),
            error,
        }
    }

    /// The controller of a ReplicaSet or a Job, when it has one.
    async fn parent(&self, namespace: &str, owner: &Workload) -> kube::Result<Option<Workload>> {
        let owners = if owner.kind == "ReplicaSet" {
            Api::<ReplicaSet>::namespaced(self.client.clone(), namespace)
                .get(&owner.name)
                .await?
                .metadata
                .owner_references
        } else {
            Api::<Job>::namespaced(self.client.clone(), namespace)
                .get(&owner.name)
                .await?
                .metadata
                .owner_references
        };
        Ok(owners.into_iter().flatten().find_map(|o| {
            (o.controller == Some(true)).then_some(Workload {
                kind: o.kind,
                name: o.name,
            })
        }))
    }

    fn cached(&self, key: &Key) -> Option<Option<Workload>> {
        let cache = self.cache.lock().ok()?;
        let (read_at, parent, failed) = cache.get(key)?;
        (read_at.elapsed() < self.ttl_of(*failed)).then(|| parent.clone())
    }

    fn ttl_of(&self, failed: bool) -> Duration {
        if failed {
            self.ttl.min(FAILURE_TTL)
        } else {
            self.ttl
        }
    }

    fn remember(&self, key: Key, parent: Option<Workload>, failed: bool) {
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= self.capacity {
                cache.retain(|_, (read_at, _, failed)| read_at.elapsed() < self.ttl_of(*failed));
                if cache.len() >= self.capacity {
                    cache.clear();
                }
            }
            cache.insert(key, (Instant::now(), parent, failed));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owner(kind: &str, name: &str, controller: Option<bool>) -> OwnerReference {
        OwnerReference {
            api_version: "apps/v1".into(),
            kind: kind.into(),
            name: name.into(),
            uid: "u".into(),
            controller,
            block_owner_deletion: None,
        }
    }

    #[test]
    fn the_controlling_owner_is_the_pods_workload_else_the_first() {
        let owners = [
            owner("ConfigMap", "x", None),
            owner("ReplicaSet", "web-5d4f", Some(true)),
        ];
        assert_eq!(
            controller(&owners).map(|w| w.to_string()).as_deref(),
            Some("ReplicaSet/web-5d4f")
        );
        assert_eq!(
            controller(&owners[..1]).map(|w| w.to_string()).as_deref(),
            Some("ConfigMap/x")
        );
        assert_eq!(controller(&[]), None);
        assert!(has_parent("ReplicaSet") && has_parent("Job"));
        assert!(!has_parent("StatefulSet") && !has_parent("DaemonSet"));
    }
}
