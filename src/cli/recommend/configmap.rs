//! `pytune recommend --write-configmap NAME`: the recommendations stored as learned defaults
//! (`core::learned`) in a ConfigMap, by server-side apply.

use anyhow::{Context as _, Result};
use k8s_openapi::api::core::v1::ConfigMap;
use kube::api::{Api, Patch, PatchParams};
use serde_json::json;

use super::Report;
use crate::cluster::short;
use crate::core::learned::{self, CONFIGMAP_KEY, MAX_DOCUMENT_BYTES};

/// The field manager of the apply: the fields pytune owns in the ConfigMap.
pub const FIELD_MANAGER: &str = "pytune";

/// What was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Written {
    pub workloads: usize,
    /// Workloads left out to keep the ConfigMap within its size limit.
    pub dropped: usize,
}

/// The time the values come from: the end of the window (`--at`, RFC 3339 or Unix seconds), else
/// `now` (Unix seconds), as RFC 3339.
pub fn generated_at(at: Option<&str>, now: i64) -> Result<String> {
    let seconds = match at {
        None => now,
        Some(text) => text
            .parse::<i64>()
            .ok()
            .or_else(|| learned::parse_rfc3339(text))
            .with_context(|| {
                format!("--at {text:?} is neither RFC 3339 (2026-01-08T00:00:00Z) nor Unix seconds")
            })?,
    };
    learned::format_rfc3339(seconds)
        .with_context(|| format!("--at {seconds} is outside the years a timestamp can name"))
}

/// Applies the ConfigMap `namespace/name` holding the report's recommendations.
pub async fn write(
    client: kube::Client,
    namespace: &str,
    name: &str,
    report: &Report,
    generated_at: String,
) -> Result<Written> {
    let document =
        learned::from_recommendations(&report.workloads, &report.settings.window, generated_at);
    let bounded = document.to_json_bounded(MAX_DOCUMENT_BYTES);
    let configmap = json!({
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": name,
            "namespace": namespace,
            // Not app.kubernetes.io/managed-by: the chart creates this ConfigMap with Helm's
            // value there, and a forced apply would take it over and break `helm upgrade`.
            "labels": {"pytune.io/learned-defaults": "true"},
        },
        "data": {CONFIGMAP_KEY: bounded.json},
    });
    // Forced: the document is pytune's alone, and a hand edit (kubectl edit takes the fields
    // over) must not stop the next run from replacing it.
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let api: Api<ConfigMap> = Api::namespaced(client, namespace);
    api.patch(name, &params, &Patch::Apply(&configmap))
        .await
        .map_err(|err| {
            anyhow::anyhow!(
                "cannot write ConfigMap {namespace}/{name}: {} (pytune needs get and patch on configmaps in {namespace}; --configmap-namespace picks another namespace)",
                short(&err)
            )
        })?;
    Ok(Written {
        workloads: document.workloads.len() - bounded.dropped,
        dropped: bounded.dropped,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_is_the_end_of_the_window() {
        assert_eq!(
            generated_at(Some("1767830400"), 0).unwrap(),
            "2026-01-08T00:00:00Z"
        );
        assert_eq!(
            generated_at(Some("2026-01-08T01:00:00+01:00"), 0).unwrap(),
            "2026-01-08T00:00:00Z"
        );
        assert_eq!(
            generated_at(None, 1_767_830_400).unwrap(),
            "2026-01-08T00:00:00Z"
        );
        let err = generated_at(Some("yesterday"), 0).unwrap_err().to_string();
        assert!(err.contains("RFC 3339"), "{err}");
    }
}
