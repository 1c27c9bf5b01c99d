//! Records on the Pod what pytune added (compactly, see [`crate::core::engine::record`]) and under which
//! policy revision, never pushing the Pod's annotations past what the API server accepts.

use k8s_openapi::api::core::v1::Pod;

use crate::core::engine::directives::annotations;
use crate::core::engine::record::{self, Detail, TOTAL_ANNOTATIONS_LIMIT};
use crate::core::engine::{Feature, PatchValue, Planner, Warning};

/// The bracket after each container's name in the record: the catalog entry it matched, and
/// `learned:DATE` when a value came from its workload's learned defaults (only the webhook knows
/// those, so `pytune explain` could not tell otherwise).
fn labels(planner: &Planner) -> Vec<(String, String)> {
    let learned = |container: &str| {
        let values = planner.ctx.learned.get(container)?;
        planner
            .changes
            .iter()
            .any(|c| {
                c.container.as_deref() == Some(container) && c.reason.contains(&values.provenance)
            })
            .then(|| format!("learned:{}", values.generated))
    };
    let mut labels: Vec<(String, String)> = planner
        .apps
        .iter()
        .map(|(container, entry)| match learned(container) {
            Some(learned) => (container.clone(), format!("{entry},{learned}")),
            None => (container.clone(), entry.clone()),
        })
        .collect();
    for container in planner.ctx.learned.keys() {
        if !labels.iter().any(|(name, _)| name == container)
            && let Some(learned) = learned(container)
        {
            labels.push((container.clone(), learned));
        }
    }
    labels
}

pub fn plan(pod: &Pod, planner: &mut Planner) {
    if planner.changes.is_empty() {
        return;
    }
    let existing = pod.metadata.annotations.as_ref();
    let earlier = existing
        .and_then(|values| values.get(annotations::INJECTED))
        .map(String::as_str);
    // What the other annotations already take: the API server counts keys and values.
    let others: usize = existing
        .into_iter()
        .flatten()
        .filter(|(key, _)| *key != annotations::INJECTED && *key != annotations::POLICY_REVISION)
        .map(|(key, value)| key.len() + value.len())
        .sum();
    let revision = planner.policy.revision.as_str();
    let revision_size = annotations::POLICY_REVISION.len() + revision.len();
    let room = TOTAL_ANNOTATIONS_LIMIT.saturating_sub(others);

    let labels = labels(planner);
    let full = record::compose(earlier, &planner.changes, &labels);
    let injected = [
        full,
        record::render(&planner.changes, Detail::Totals, &labels),
    ]
    .into_iter()
    .find(|text| annotations::INJECTED.len() + text.len() + revision_size <= room);
    let count = planner.changes.len();
    match injected {
        Some(text) => {
            let value = PatchValue::String(text);
            let path = planner.builder.set(
                &["metadata", "annotations", annotations::INJECTED],
                value.clone(),
            );
            planner.change(
                None,
                Feature::Record,
                format!("annotations.{}", annotations::INJECTED),
                path,
                value,
                format!("names the {count} values added (pytune explain gives the reasons)"),
            );
        }
        None if revision_size > room => {
            planner.warn(Warning::pod(
                "annotations near the API server's 256 KiB limit: nothing recorded on the Pod",
            ));
            return;
        }
        None => planner.warn(Warning::pod(
            "annotations near the API server's 256 KiB limit: only the policy revision recorded",
        )),
    }
    let value = PatchValue::from(revision);
    let path = planner.builder.set(
        &["metadata", "annotations", annotations::POLICY_REVISION],
        value.clone(),
    );
    planner.change(
        None,
        Feature::Record,
        format!("annotations.{}", annotations::POLICY_REVISION),
        path,
        value,
        "the policy revision that made these changes",
    );
}
