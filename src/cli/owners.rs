//! The workload of a listed Pod, as the cluster audit and `recommend` name it (`Deployment/web`,
//! or `Pod/name` for a Pod no one owns).

use std::time::Duration;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;
use serde_json::Value;

use crate::cluster::owners::{self, OwnerResolver};

/// A CLI run is short: its answers need not expire, and a cluster has fewer owners than this.
pub(crate) fn resolver(client: kube::Client) -> OwnerResolver {
    OwnerResolver::new(client, Duration::MAX, 1 << 20)
}

/// `Kind/name` of the Pod's workload; a failed lookup goes to `errors` once per owner, and the
/// owner then stands for the workload.
pub(crate) async fn pod_workload(
    resolver: &OwnerResolver,
    namespace: &str,
    pod: &Value,
    errors: &mut Vec<String>,
) -> String {
    let references: Vec<OwnerReference> = pod
        .pointer("/metadata/ownerReferences")
        .and_then(|owners| serde_json::from_value(owners.clone()).ok())
        .unwrap_or_default();
    let Some(owner) = owners::controller(&references) else {
        let name = pod
            .pointer("/metadata/name")
            .and_then(Value::as_str)
            .unwrap_or("(unnamed)");
        return format!("Pod/{name}");
    };
    let resolved = resolver.workload(namespace, owner).await;
    errors.extend(resolved.error);
    resolved.workload.to_string()
}
