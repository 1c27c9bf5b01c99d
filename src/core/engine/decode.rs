//! Decoding the parts of a Pod the rules read. Skipping `managedFields`, volumes, tolerations,
//! status and the rest was most of the decoding time; within containers, only the fields the rules
//! read are decoded, and `env` entries (often dozens per container) go through a small view first.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EnvFromSource, EnvVar, EnvVarSource, Lifecycle, Pod, PodSpec, Probe,
    ResourceRequirements,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde::{Deserialize, Deserializer};
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
    containers: Option<Vec<ContainerView>>,
    termination_grace_period_seconds: Option<i64>,
    resources: Option<ResourceRequirements>,
    restart_policy: Option<String>,
}

/// The container fields the rules read (detection, sizing, probes, lifecycle, env). The rules
/// only add below these fields too, so the patch builder's presence checks see all they need.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContainerView {
    name: String,
    image: Option<String>,
    command: Option<Vec<String>>,
    args: Option<Vec<String>>,
    #[serde(default, deserialize_with = "env_list")]
    env: Option<Vec<EnvVar>>,
    env_from: Option<Vec<EnvFromSource>>,
    ports: Option<Vec<ContainerPort>>,
    resources: Option<ResourceRequirements>,
    lifecycle: Option<Lifecycle>,
    liveness_probe: Option<Probe>,
    readiness_probe: Option<Probe>,
    startup_probe: Option<Probe>,
}

impl ContainerView {
    fn into_container(self) -> Container {
        Container {
            name: self.name,
            image: self.image,
            command: self.command,
            args: self.args,
            env: self.env,
            env_from: self.env_from,
            ports: self.ports,
            resources: self.resources,
            lifecycle: self.lifecycle,
            liveness_probe: self.liveness_probe,
            readiness_probe: self.readiness_probe,
            startup_probe: self.startup_probe,
            ..Default::default()
        }
    }
}

/// An `env` entry with its rarely present source boxed: a list of `EnvVar` grown one entry at
/// a time moved several hundred bytes per entry, most of it the empty source.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct EnvVarView {
    name: String,
    value: Option<String>,
    value_from: Option<Box<EnvVarSource>>,
}

fn env_list<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Vec<EnvVar>>, D::Error> {
    let views = Option::<Vec<EnvVarView>>::deserialize(deserializer)?;
    Ok(views.map(|views| {
        views
            .into_iter()
            .map(|view| EnvVar {
                name: view.name,
                value: view.value,
                value_from: view.value_from.map(|source| *source),
            })
            .collect()
    }))
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
            containers: spec
                .containers
                .unwrap_or_default()
                .into_iter()
                .map(ContainerView::into_container)
                .collect(),
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

    /// The fields the rules read decode as k8s-openapi decodes them, whatever the `env` entries
    /// hold; the fields they do not read are left out.
    #[test]
    fn containers_keep_what_the_rules_read() {
        let container = json!({
            "name": "web", "image": "app:1", "command": ["gunicorn"], "args": ["-b", ":8000"],
            "env": [
                {"name": "A", "value": "1"},
                {"name": "B", "value": null},
                {"name": "C", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}},
                {"name": "D", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}, "extra": 1}
            ],
            "envFrom": [{"configMapRef": {"name": "cm"}}],
            "ports": [{"containerPort": 8000}],
            "resources": {"requests": {"cpu": "250m"}},
            "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
            "readinessProbe": {"tcpSocket": {"port": 8000}},
            "volumeMounts": [{"name": "v", "mountPath": "/v"}],
            "securityContext": {"runAsNonRoot": true}
        });
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [container.clone()]}});
        let decoded = from_value(&pod).expect("a Pod");
        let ours = &decoded.spec.expect("a spec").containers[0];
        let mut full: Container = serde_json::from_value(container).expect("a Container");
        full.volume_mounts = None;
        full.security_context = None;
        assert_eq!(ours, &full);
        assert_eq!(ours.env.as_ref().map(Vec::len), Some(4));
    }

    #[test]
    fn an_env_entry_without_a_name_is_an_error() {
        let pod = json!({"spec": {"containers": [{"name": "c", "env": [{"value": "1"}]}]}});
        let error = from_value(&pod).expect_err("unreadable");
        assert!(error.to_string().contains("name"), "{error}");
    }
}
