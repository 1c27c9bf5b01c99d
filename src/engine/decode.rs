//! Decoding the parts of a Pod the rules read. Skipping `managedFields`, volumes, tolerations,
//! status and the rest was most of the decoding time.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{Container, Pod, PodSpec, ResourceRequirements};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde::Deserialize;
use serde_json::Value;

use super::EngineError;

/// The parts of a Pod the rules read, as decoded from its JSON (text or tree). Decodes in one
/// pass wherever a Pod's JSON sits, such as inside an `AdmissionReview`.
#[derive(Deserialize)]
pub struct PodView {
    #[serde(default)]
    metadata: MetadataView,
    #[serde(default)]
    spec: Option<SpecView>,
}

impl PodView {
    /// The value of the label `key`.
    pub fn label(&self, key: &str) -> Option<&str> {
        let labels = self.metadata.labels.as_ref()?;
        labels.get(key).map(String::as_str)
    }

    /// The Pod's name, else its `generateName` prefix (the API server names it later).
    pub fn name(&self) -> Option<&str> {
        let metadata = &self.metadata;
        let name = metadata.name.as_deref().filter(|name| !name.is_empty());
        name.or(metadata.generate_name.as_deref())
            .filter(|name| !name.is_empty())
    }

    /// The Pod, as far as the rules read it.
    pub fn into_pod(self) -> Pod {
        pod(self.metadata, self.spec)
    }
}

/// The same parts, from a JSON tree (manifests read by the CLI).
pub(super) fn from_value(pod_json: &Value) -> Result<Pod, EngineError> {
    Ok(PodView::deserialize(pod_json)?.into_pod())
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SpecView {
    containers: Option<Vec<Container>>,
    termination_grace_period_seconds: Option<i64>,
    resources: Option<ResourceRequirements>,
    restart_policy: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MetadataView {
    name: Option<String>,
    generate_name: Option<String>,
    namespace: Option<String>,
    labels: Option<BTreeMap<String, String>>,
    annotations: Option<BTreeMap<String, String>>,
    owner_references: Option<Vec<OwnerReference>>,
}

fn pod(metadata: MetadataView, spec: Option<SpecView>) -> Pod {
    Pod {
        metadata: ObjectMeta {
            name: metadata.name,
            generate_name: metadata.generate_name,
            namespace: metadata.namespace,
            labels: metadata.labels,
            annotations: metadata.annotations,
            owner_references: metadata.owner_references,
            ..Default::default()
        },
        spec: spec.map(|spec| PodSpec {
            containers: spec.containers.unwrap_or_default(),
            termination_grace_period_seconds: spec.termination_grace_period_seconds,
            resources: spec.resources,
            restart_policy: spec.restart_policy,
            ..Default::default()
        }),
        status: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Text and tree decode to the same Pod.
    #[test]
    fn text_and_tree_agree() {
        let json = json!({
            "metadata": {"generateName": "web-", "labels": {"a": "b"}, "managedFields": [{"x": 1}]},
            "spec": {"containers": [{"name": "c", "env": [{"name": "X", "value": "1"}]}],
                     "volumes": [{"name": "v", "emptyDir": {}}], "restartPolicy": "Always"},
            "status": {"phase": "Pending"}
        });
        let text = serde_json::to_string(&json).expect("JSON");
        let view: PodView = serde_json::from_str(&text).expect("readable");
        assert_eq!(view.label("a"), Some("b"));
        assert_eq!(view.name(), Some("web-"));
        assert_eq!(view.into_pod(), from_value(&json).expect("a Pod"));
    }
}
