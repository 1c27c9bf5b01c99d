//! Pages through the Pods a label selector picks, in some namespaces or all, as the API lists
//! them: a page at a time, so a cluster of any size is read in bounded memory.

use std::collections::VecDeque;

use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, ApiResource, DynamicObject, ListParams};
use serde_json::Value;

use super::short;

/// One listed Pod: its namespace and the object as JSON (with `apiVersion` and `kind`, as the
/// engine reads manifests), every field the API sent kept.
#[derive(Debug, Clone)]
pub struct ListedPod {
    pub namespace: String,
    pub object: Value,
}

/// The Pods labeled `selector`, `page_size` per request, namespace after namespace.
pub struct PodPages {
    client: kube::Client,
    selector: String,
    page_size: u32,
    /// The namespaces still to read; `None` stands for all of them.
    targets: VecDeque<Option<String>>,
    /// The continue token of the namespace being read.
    token: Option<String>,
}

impl PodPages {
    /// Pods in `namespaces`, or in every namespace when it is empty.
    pub fn new(
        client: kube::Client,
        namespaces: &[String],
        selector: String,
        page_size: u32,
    ) -> PodPages {
        let targets = if namespaces.is_empty() {
            VecDeque::from([None])
        } else {
            namespaces.iter().cloned().map(Some).collect()
        };
        PodPages {
            client,
            selector,
            page_size,
            targets,
            token: None,
        }
    }

    /// The next page; `Err` says which list failed (the namespace is then skipped, the others
    /// are still read); `None` once every namespace is read.
    pub async fn next(&mut self) -> Option<Result<Vec<ListedPod>, String>> {
        let target = self.targets.front()?.clone();
        let resource = ApiResource::erase::<Pod>(&());
        let api: Api<DynamicObject> = match &target {
            Some(namespace) => Api::namespaced_with(self.client.clone(), namespace, &resource),
            None => Api::all_with(self.client.clone(), &resource),
        };
        let mut params = ListParams::default()
            .labels(&self.selector)
            .limit(self.page_size);
        if let Some(token) = &self.token {
            params = params.continue_token(token);
        }
        let page = match api.list(&params).await {
            Ok(page) => page,
            Err(err) => {
                self.done_with_target();
                let place =
                    target.map_or("all namespaces".to_string(), |ns| format!("namespace {ns}"));
                return Some(Err(format!("cannot list Pods in {place}: {}", short(&err))));
            }
        };
        self.token = page.metadata.continue_.filter(|token| !token.is_empty());
        if self.token.is_none() {
            self.done_with_target();
        }
        let pods = page
            .items
            .into_iter()
            .map(|item| {
                let namespace = item.metadata.namespace.clone().unwrap_or_default();
                let mut object = serde_json::to_value(&item).unwrap_or(Value::Null);
                if let Value::Object(map) = &mut object {
                    map.insert("apiVersion".into(), Value::from("v1"));
                    map.insert("kind".into(), Value::from("Pod"));
                }
                ListedPod { namespace, object }
            })
            .collect();
        Some(Ok(pods))
    }

    fn done_with_target(&mut self) {
        self.targets.pop_front();
        self.token = None;
    }
}
