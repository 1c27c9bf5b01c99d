//! Records what pytune added, and under which policy, in the Pod's annotations.

use k8s_openapi::api::core::v1::Pod;

use crate::core::engine::directives::annotations;
use crate::core::engine::{Feature, PatchValue, Planner};

pub fn plan(pod: &Pod, planner: &mut Planner) {
    if planner.changes.is_empty() {
        return;
    }
    let existing = pod
        .metadata
        .annotations
        .as_ref()
        .and_then(|values| values.get(annotations::INJECTED))
        .filter(|text| !text.trim().is_empty());
    // One line per value, with its reason, appended to what earlier runs recorded.
    let mut text =
        String::with_capacity(existing.map_or(0, String::len) + 128 * planner.changes.len());
    if let Some(existing) = existing {
        text.push_str(existing.trim_end());
    }
    for change in &planner.changes {
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(change.container.as_deref().unwrap_or("pod"));
        text.push(' ');
        text.push_str(&change.field);
        text.push_str(": ");
        text.push_str(&change.reason);
    }
    let injected = PatchValue::String(text);
    let revision = PatchValue::from(planner.policy.revision.as_str());
    let count = planner.changes.len();

    let path = planner.builder.set(
        &["metadata", "annotations", annotations::INJECTED],
        injected.clone(),
    );
    planner.change(
        None,
        Feature::Record,
        format!("annotations.{}", annotations::INJECTED),
        path,
        injected,
        format!("records the {count} values added, one line each with its reason"),
    );
    let path = planner.builder.set(
        &["metadata", "annotations", annotations::POLICY_REVISION],
        revision.clone(),
    );
    planner.change(
        None,
        Feature::Record,
        format!("annotations.{}", annotations::POLICY_REVISION),
        path,
        revision,
        "the policy revision that made these changes",
    );
}
