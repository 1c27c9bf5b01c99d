//! `pytune explain`: every value pytune adds to a Pod, or added to it earlier, with its reason.
//!
//! The Pod keeps only a compact record of what pytune added (`pytune.io/injected`); the reasons
//! come from the same engine. For a Pod pytune already changed (`kubectl get pod -o yaml`), the
//! recorded fields are taken out and planned again, so each gets the reason the current policy
//! gives for it. Pure: manifests in, an [`Explanation`] per Pod or pod template out.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

use crate::cli::env_sources::EnvSources;
use crate::cli::manifests;
use crate::cli::mutate::Input;
use crate::core::engine::record::{self, POD};
use crate::core::engine::{self, Change, Context, Decision, Feature, Plan, TargetContainer};
use crate::core::policy::Policy;

/// One value and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Explained {
    /// The container, or `pod` for a Pod-level field.
    pub container: String,
    pub field: String,
    /// The value in a few words (`250m`, `HTTP GET /healthz :8000`); `null` when unknown.
    pub value: Option<String>,
    pub reason: String,
}

/// What pytune recorded on the Pod.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Earlier {
    /// The policy revision that made the changes, when recorded.
    pub policy_revision: Option<String>,
    /// False when the record gives counts instead of fields (it was over its size budget).
    pub complete: bool,
    pub values: Vec<Explained>,
}

/// Everything pytune can say about one Pod or pod template.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Explanation {
    pub source: String,
    pub document: usize,
    pub workload: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    #[serde(flatten)]
    pub decision: Decision,
    pub containers: Vec<TargetContainer>,
    /// What pytune would add now.
    pub would_add: Vec<Explained>,
    /// What pytune added before, per the Pod's record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub added_earlier: Option<Earlier>,
    pub notes: Vec<String>,
    pub warnings: Vec<String>,
}

/// Explains every Pod and pod template in `inputs`; documents that cannot be read are errors.
pub fn explain(
    inputs: &[Input],
    policy: &Policy,
    ctx: &Context,
) -> (Vec<Explanation>, Vec<String>) {
    let mut explanations = Vec::new();
    let mut errors = Vec::new();
    let documents: Vec<Vec<manifests::Document>> = inputs.iter().map(Input::documents).collect();
    let sources = EnvSources::of_documents(&documents);
    for (input, documents) in inputs.iter().zip(documents) {
        for document in documents {
            let where_ = format!("{} document {}", input.name, document.index);
            let value = match &document.parsed {
                Ok(Some(value)) => value,
                Ok(None) => continue,
                Err(err) => {
                    errors.push(format!("{where_}: {err}"));
                    continue;
                }
            };
            for site in manifests::pod_sites(value) {
                let Some(pod) = manifests::pod_at(value, &site) else {
                    continue;
                };
                let ctx = sources.site_context(ctx, &site);
                match explain_pod(&pod, policy, &ctx) {
                    Ok(parts) => explanations.push(Explanation {
                        source: input.name.clone(),
                        document: document.index,
                        workload: site.workload,
                        namespace: site.namespace,
                        ..parts
                    }),
                    Err(err) => errors.push(format!("{where_} ({}): {err}", site.workload)),
                }
            }
        }
    }
    (explanations, errors)
}

/// Explains one Pod (JSON as the API server or a manifest has it).
pub fn explain_pod(
    pod: &Value,
    policy: &Policy,
    ctx: &Context,
) -> Result<Explanation, engine::EngineError> {
    let plan = engine::plan(pod, policy, ctx)?;
    let added_earlier = earlier(pod, policy, ctx)?;
    Ok(Explanation {
        source: String::new(),
        document: 0,
        workload: String::new(),
        namespace: None,
        decision: plan.decision.clone(),
        containers: plan.containers.clone(),
        would_add: visible(&plan).map(explained).collect(),
        added_earlier,
        notes: plan.notes.iter().map(|note| note.line()).collect(),
        warnings: plan.warning_texts(),
    })
}

fn visible(plan: &Plan) -> impl Iterator<Item = &Change> {
    plan.changes.iter().filter(|c| c.feature != Feature::Record)
}

fn explained(change: &Change) -> Explained {
    Explained {
        container: change.container.clone().unwrap_or_else(|| POD.to_string()),
        field: change.field.clone(),
        value: Some(change.display_value()),
        reason: change.reason.clone(),
    }
}

/// The values the Pod's record names, each with the reason the engine gives for it when the Pod
/// lacks it.
fn earlier(
    pod: &Value,
    policy: &Policy,
    ctx: &Context,
) -> Result<Option<Earlier>, engine::EngineError> {
    let annotation = |key: &str| {
        pod.pointer("/metadata/annotations")
            .and_then(|values| values.get(key))
            .and_then(Value::as_str)
    };
    let Some(text) = annotation(engine::annotations::INJECTED) else {
        return Ok(None);
    };
    let recorded = record::parse(text);
    let before = engine::plan(&record::without_recorded(pod, &recorded), policy, ctx)?;
    let values = recorded
        .fields
        .iter()
        .map(|(owner, field)| {
            let planned = visible(&before).find(|change| {
                change.container.as_deref().unwrap_or(POD) == owner && change.field == *field
            });
            match planned {
                Some(change) => explained(change),
                None => Explained {
                    container: owner.clone(),
                    field: field.clone(),
                    value: None,
                    reason: "the current policy would not add it".to_string(),
                },
            }
        })
        .collect();
    Ok(Some(Earlier {
        policy_revision: annotation(engine::annotations::POLICY_REVISION).map(str::to_string),
        complete: recorded.complete,
        values,
    }))
}

/// The readable form: one block per Pod, each value with its reason on the line below.
pub fn render_text(explanations: &[Explanation]) -> String {
    let mut text = String::new();
    for explanation in explanations {
        let namespace = explanation
            .namespace
            .as_deref()
            .map(|ns| format!(" -n {ns}"))
            .unwrap_or_default();
        let _ = write!(
            text,
            "{} [{}] {}{namespace}",
            explanation.source, explanation.document, explanation.workload
        );
        match &explanation.decision {
            Decision::Selected => text.push('\n'),
            Decision::NotSelected(reason) => {
                let _ = writeln!(text, ": not selected ({reason})");
            }
            Decision::OptedOut(reason) => {
                let _ = writeln!(text, ": opted out ({reason})");
            }
        }
        for target in &explanation.containers {
            let _ = writeln!(
                text,
                "  container {}: {} profile ({}), server {}",
                target.name,
                target.profile,
                target.profile_reason,
                target.server_name()
            );
        }
        if !explanation.would_add.is_empty() {
            let _ = writeln!(text, "  would add:");
            write_values(&mut text, &explanation.would_add);
        }
        if let Some(earlier) = &explanation.added_earlier {
            let revision = earlier.policy_revision.as_deref().unwrap_or("unknown");
            let _ = writeln!(text, "  added earlier (policy revision {revision}):");
            write_values(&mut text, &earlier.values);
            if !earlier.complete {
                let _ = writeln!(
                    text,
                    "    (the record gives counts only for some values: it was over its size budget)"
                );
            }
        }
        if explanation.decision == Decision::Selected
            && explanation.would_add.is_empty()
            && explanation.added_earlier.is_none()
        {
            let _ = writeln!(text, "  nothing to add");
        }
        for note in &explanation.notes {
            let _ = writeln!(text, "  = {note}");
        }
        for warning in &explanation.warnings {
            let _ = writeln!(text, "  ! {warning}");
        }
    }
    text
}

fn write_values(text: &mut String, values: &[Explained]) {
    for value in values {
        let shown = value.value.as_deref().unwrap_or("?");
        let _ = writeln!(
            text,
            "    {} {} = {shown}\n        {}",
            value.container, value.field, value.reason
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn input(text: &str) -> Vec<Input> {
        vec![Input {
            name: "pod.yaml".to_string(),
            text: text.to_string(),
            ..Input::default()
        }]
    }

    const WEB: &str = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  labels: {pytune.io/runtime: python}\nspec:\n  containers:\n  - name: app\n    image: shop:1\n    command: [gunicorn, app.wsgi, -b, 0.0.0.0:8000]\n    ports: [{containerPort: 8000}]\n";

    #[test]
    fn a_new_pod_gets_each_value_with_its_reason() {
        let (explanations, errors) = explain(&input(WEB), &Policy::embedded(), &Context::default());
        assert!(errors.is_empty(), "{errors:?}");
        let [explanation] = explanations.as_slice() else {
            panic!("one Pod expected, got {}", explanations.len());
        };
        assert!(explanation.added_earlier.is_none());
        let cpu = explanation
            .would_add
            .iter()
            .find(|value| value.field == "resources.requests.cpu")
            .expect("a CPU request is added");
        assert_eq!(cpu.container, "app");
        assert_eq!(cpu.value.as_deref(), Some("250m"));
        assert!(cpu.reason.starts_with("no CPU request"), "{}", cpu.reason);
        assert!(
            explanation
                .would_add
                .iter()
                .all(|value| !value.field.starts_with("annotations.")),
            "the record is bookkeeping, not a value to explain"
        );
    }

    #[test]
    fn a_mutated_pod_gets_the_reasons_of_what_its_record_names() {
        let policy = Policy::embedded();
        let ctx = Context::default();
        let pod: Value = serde_saphyr::from_str(WEB).expect("YAML");
        let plan = engine::plan(&pod, &policy, &ctx).expect("plan");
        let mut mutated = pod.clone();
        json_patch::patch(&mut mutated, &plan.json_patch()).expect("patch applies");

        let explanation = explain_pod(&mutated, &policy, &ctx).expect("explains");
        assert!(explanation.would_add.is_empty(), "nothing left to add");
        let earlier = explanation.added_earlier.expect("a record");
        assert!(earlier.complete);
        assert_eq!(
            earlier.policy_revision.as_deref(),
            Some(policy.revision.as_str())
        );
        let expected: Vec<Explained> = plan
            .changes
            .iter()
            .filter(|c| c.feature != Feature::Record)
            .map(explained)
            .collect();
        let mut got = earlier.values.clone();
        let mut want = expected;
        let key = |value: &Explained| (value.container.clone(), value.field.clone());
        got.sort_by_key(key);
        want.sort_by_key(key);
        assert_eq!(got, want);
    }

    #[test]
    fn a_field_the_policy_no_longer_adds_says_so() {
        let pod: Value = serde_json::json!({
            "metadata": {"name": "p", "labels": {"pytune.io/runtime": "python"},
                         "annotations": {"pytune.io/injected": "app: env(LEGACY_SETTING)"}},
            "spec": {"containers": [{"name": "app", "env": [{"name": "LEGACY_SETTING", "value": "1"}],
                                     "resources": {"requests": {"cpu": "1", "memory": "1Gi"}}}]}
        });
        let explanation =
            explain_pod(&pod, &Policy::embedded(), &Context::default()).expect("explains");
        let earlier = explanation.added_earlier.clone().expect("a record");
        assert_eq!(
            earlier.values,
            vec![Explained {
                container: "app".to_string(),
                field: "env.LEGACY_SETTING".to_string(),
                value: None,
                reason: "the current policy would not add it".to_string(),
            }]
        );
        assert!(render_text(&[explanation]).contains("app env.LEGACY_SETTING = ?"));
    }
}
