//! The workload a Pod belongs to, from its owner chain read through the API (ReplicaSet →
//! Deployment, Job → CronJob), never from name patterns.

use std::collections::HashMap;

use k8s_openapi::api::apps::v1::ReplicaSet;
use k8s_openapi::api::batch::v1::Job;
use kube::api::Api;
use serde_json::Value;

/// Resolves Pod owners to the workload people manage, caching every lookup.
pub(crate) struct Owners {
    client: kube::Client,
    cache: HashMap<(String, String, String), Option<String>>,
}

impl Owners {
    pub(crate) fn new(client: kube::Client) -> Owners {
        Owners {
            client,
            cache: HashMap::new(),
        }
    }

    pub(crate) async fn workload(
        &mut self,
        namespace: &str,
        pod: &Value,
        errors: &mut Vec<String>,
    ) -> String {
        let name = pod
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("(unnamed)");
        let owner = pod
            .pointer("/metadata/ownerReferences")
            .and_then(Value::as_array)
            .and_then(|owners| {
                owners
                    .iter()
                    .find(|o| o["controller"] == true)
                    .or_else(|| owners.first())
            });
        let Some(owner) = owner else {
            return format!("Pod/{name}");
        };
        let kind = owner["kind"].as_str().unwrap_or("Unknown").to_string();
        let owner_name = owner["name"].as_str().unwrap_or("").to_string();
        if kind != "ReplicaSet" && kind != "Job" {
            return format!("{kind}/{owner_name}");
        }
        let key = (namespace.to_string(), kind.clone(), owner_name.clone());
        if !self.cache.contains_key(&key) {
            let parent = self.parent(namespace, &kind, &owner_name, errors).await;
            self.cache.insert(key.clone(), parent);
        }
        match self.cache.get(&key).cloned().flatten() {
            Some(parent) => parent,
            None => format!("{kind}/{owner_name}"),
        }
    }

    /// The controller of a ReplicaSet (a Deployment) or a Job (a CronJob), when it has one.
    async fn parent(
        &self,
        namespace: &str,
        kind: &str,
        name: &str,
        errors: &mut Vec<String>,
    ) -> Option<String> {
        let owners = if kind == "ReplicaSet" {
            Api::<ReplicaSet>::namespaced(self.client.clone(), namespace)
                .get(name)
                .await
                .map(|rs| rs.metadata.owner_references)
        } else {
            Api::<Job>::namespaced(self.client.clone(), namespace)
                .get(name)
                .await
                .map(|job| job.metadata.owner_references)
        };
        match owners {
            Ok(owners) => owners
                .into_iter()
                .flatten()
                .find(|o| o.controller == Some(true))
                .map(|o| format!("{}/{}", o.kind, o.name)),
            Err(err) => {
                errors.push(format!(
                    "cannot read {kind} {namespace}/{name}: {}",
                    short(&err)
                ));
                None
            }
        }
    }
}

pub(crate) fn short(err: &kube::Error) -> String {
    match err {
        kube::Error::Api(status) => format!("{} ({})", status.message, status.code),
        other => other.to_string(),
    }
}
