//! What the Pod as received already holds at a JSON pointer, answered from the typed Pod.
//!
//! The patch builder must know whether a parent exists before adding below it, and how long an
//! array is before appending. Answering from the decoded Pod instead of a JSON tree lets the server
//! skip building the tree at all. Every member the engine adds is one the typed model knows (the
//! rules read it typed first), so for those paths a typed `None` means exactly "absent or null" in
//! the JSON. Paths not listed below fall back to the typed Pod serialized to JSON, which is slow
//! but gives the same answer.

use k8s_openapi::api::core::v1::{Container, Pod, ResourceRequirements};
use serde_json::Value;

/// Whether the member at unescaped `tokens` is present and not null.
pub fn present(pod: &Pod, tokens: &[&str]) -> bool {
    known(pod, tokens).unwrap_or_else(|| generic(pod, tokens).is_some_and(|value| !value.is_null()))
}

/// The length of the array at `tokens`, when there is one.
pub fn array_len(pod: &Pod, tokens: &[&str]) -> Option<usize> {
    match tokens {
        ["spec", "containers", index, "env"] => container(pod, index)
            .and_then(|container| container.env.as_ref())
            .map(Vec::len),
        _ => generic(pod, tokens)?.as_array().map(Vec::len),
    }
}

/// The fast answer for the paths the engine writes; `None` for any other path.
fn known(pod: &Pod, tokens: &[&str]) -> Option<bool> {
    let annotations = pod.metadata.annotations.as_ref();
    let spec = pod.spec.as_ref();
    Some(match tokens {
        // A Pod the policy selects has its labels, so it has metadata.
        [] | ["metadata"] => true,
        ["metadata", "annotations"] => annotations.is_some(),
        ["metadata", "annotations", key] => annotations.is_some_and(|map| map.contains_key(*key)),
        ["spec"] => spec.is_some(),
        ["spec", "terminationGracePeriodSeconds"] => {
            spec.is_some_and(|spec| spec.termination_grace_period_seconds.is_some())
        }
        ["spec", "containers"] => spec.is_some(),
        ["spec", "containers", index, rest @ ..] => {
            let Some(container) = container(pod, index) else {
                return Some(false);
            };
            in_container(container, rest)?
        }
        _ => return None,
    })
}

fn in_container(container: &Container, tokens: &[&str]) -> Option<bool> {
    let resources = container.resources.as_ref();
    Some(match tokens {
        [] => true,
        ["env"] => container.env.is_some(),
        ["lifecycle"] => container.lifecycle.is_some(),
        ["lifecycle", "preStop"] => container
            .lifecycle
            .as_ref()
            .is_some_and(|lifecycle| lifecycle.pre_stop.is_some()),
        ["startupProbe"] => container.startup_probe.is_some(),
        ["readinessProbe"] => container.readiness_probe.is_some(),
        ["livenessProbe"] => container.liveness_probe.is_some(),
        ["resources"] => resources.is_some(),
        ["resources", bound] => amounts(resources, bound)?.is_some(),
        ["resources", bound, key] => {
            amounts(resources, bound)?.is_some_and(|map| map.contains_key(*key))
        }
        _ => return None,
    })
}

type Amounts =
    std::collections::BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>;

/// `requests` or `limits` of `resources`; `None` for another member.
fn amounts<'r>(
    resources: Option<&'r ResourceRequirements>,
    bound: &str,
) -> Option<Option<&'r Amounts>> {
    match bound {
        "requests" => Some(resources.and_then(|r| r.requests.as_ref())),
        "limits" => Some(resources.and_then(|r| r.limits.as_ref())),
        _ => None,
    }
}

fn container<'p>(pod: &'p Pod, index: &str) -> Option<&'p Container> {
    let index: usize = index.parse().ok()?;
    pod.spec.as_ref()?.containers.get(index)
}

/// Any path: serialize the typed Pod and walk it.
fn generic(pod: &Pod, tokens: &[&str]) -> Option<Value> {
    let root = serde_json::to_value(pod).ok()?;
    let found = tokens.iter().try_fold(&root, |value, token| match value {
        Value::Object(map) => map.get(*token),
        Value::Array(items) => token.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => None,
    })?;
    Some(found.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(value: Value) -> Pod {
        serde_json::from_value(value).expect("a Pod")
    }

    /// The fast answers agree with walking the JSON, for every path the engine writes.
    #[test]
    fn known_paths_agree_with_the_json() {
        let json = json!({
            "metadata": {"name": "p", "annotations": {"a/b": "x"}},
            "spec": {
                "terminationGracePeriodSeconds": 10,
                "containers": [
                    {"name": "a", "env": [{"name": "X"}], "resources": {"requests": {"cpu": "1"}},
                     "lifecycle": {"postStart": {"exec": {"command": ["true"]}}},
                     "readinessProbe": {"tcpSocket": {"port": 80}}},
                    {"name": "b", "env": null, "resources": {}}
                ]
            }
        });
        let typed = pod(json.clone());
        let paths: &[&[&str]] = &[
            &["metadata", "annotations"],
            &["metadata", "annotations", "a/b"],
            &["metadata", "annotations", "c"],
            &["spec", "terminationGracePeriodSeconds"],
            &["spec", "containers", "0", "env"],
            &["spec", "containers", "1", "env"],
            &["spec", "containers", "2", "env"],
            &["spec", "containers", "0", "lifecycle"],
            &["spec", "containers", "0", "lifecycle", "preStop"],
            &["spec", "containers", "1", "lifecycle"],
            &["spec", "containers", "0", "readinessProbe"],
            &["spec", "containers", "0", "livenessProbe"],
            &["spec", "containers", "0", "startupProbe"],
            &["spec", "containers", "0", "resources"],
            &["spec", "containers", "0", "resources", "requests"],
            &["spec", "containers", "0", "resources", "requests", "cpu"],
            &["spec", "containers", "0", "resources", "requests", "memory"],
            &["spec", "containers", "0", "resources", "limits"],
            &["spec", "containers", "1", "resources"],
            &["spec", "containers", "1", "resources", "limits", "cpu"],
        ];
        for path in paths {
            let fast = known(&typed, path).expect("a known path");
            let walked = generic(&typed, path).is_some_and(|value| !value.is_null());
            assert_eq!(fast, walked, "{path:?}");
        }
        assert_eq!(
            array_len(&typed, &["spec", "containers", "0", "env"]),
            Some(1)
        );
        assert_eq!(array_len(&typed, &["spec", "containers", "1", "env"]), None);
    }

    #[test]
    fn other_paths_are_answered_from_the_serialized_pod() {
        let typed = pod(json!({"spec": {"containers": [{"name": "a", "workingDir": "/app"}]}}));
        assert!(present(&typed, &["spec", "containers", "0", "workingDir"]));
        assert!(!present(&typed, &["spec", "containers", "0", "tty"]));
        assert_eq!(array_len(&typed, &["spec", "containers"]), Some(1));
    }
}
