//! `pytune audit` over manifests: what pytune would change in each workload and why, as a table,
//! as JSON for CI and dashboards, or as a unified diff. Pure: renders a [`MutateOutput`].

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;
use similar::TextDiff;

use crate::cli::mutate::{MutateOutput, WorkloadResult};
use crate::core::engine::{Change, Decision, Feature, Note, Plan, TargetContainer};

/// Version of the JSON report's schema; bumped only on incompatible changes.
pub const JSON_SCHEMA_VERSION: u32 = 1;

/// `--exit-code`: nothing would change.
pub const EXIT_CLEAN: u8 = 0;
/// `--exit-code`: something would change.
pub const EXIT_WOULD_CHANGE: u8 = 3;
/// Errors (bad YAML, unreadable files), whatever else happened.
pub const EXIT_ERROR: u8 = 1;

/// The exit code of an audit: errors first, then whether anything would change.
pub fn exit_code(output: &MutateOutput, with_change_code: bool) -> u8 {
    if !output.errors.is_empty() {
        EXIT_ERROR
    } else if with_change_code && output.results.iter().any(|r| !r.plan.is_empty()) {
        EXIT_WOULD_CHANGE
    } else {
        EXIT_CLEAN
    }
}

fn status(plan: &Plan) -> (&'static str, Option<&str>) {
    match &plan.decision {
        Decision::Selected if plan.is_empty() => ("complete", None),
        Decision::Selected => ("would-change", None),
        Decision::NotSelected(reason) => ("not-selected", Some(reason)),
        Decision::OptedOut(reason) => ("opted-out", Some(reason)),
    }
}

fn visible(changes: &[Change]) -> impl Iterator<Item = &Change> {
    changes.iter().filter(|c| c.feature != Feature::Record)
}

/// The readable report: one block per workload, a row per change.
pub fn render_text(output: &MutateOutput) -> String {
    let mut text = String::new();
    for result in &output.results {
        let (state, reason) = status(&result.plan);
        let namespace = result
            .namespace
            .as_deref()
            .map(|ns| format!(" -n {ns}"))
            .unwrap_or_default();
        let _ = write!(
            text,
            "{} [{}] {}{namespace}: {state}",
            result.source, result.document, result.workload
        );
        match reason {
            Some(reason) => {
                let _ = writeln!(text, " ({reason})");
            }
            None => text.push('\n'),
        }
        for target in &result.plan.containers {
            let app = match &target.app {
                Some(app) => format!("catalog {} ({})", app.entry, app.evidence.join(", ")),
                None => "not recognised".to_string(),
            };
            let _ = writeln!(
                text,
                "  container {}: {} profile ({}), {app}",
                target.name, target.profile, target.profile_reason,
            );
        }
        let rows: Vec<[String; 4]> = visible(&result.plan.changes)
            .map(|c| {
                [
                    c.container.clone().unwrap_or_else(|| "pod".into()),
                    c.field.clone(),
                    c.display_value(),
                    c.reason.clone(),
                ]
            })
            .collect();
        if !rows.is_empty() {
            let width = |i: usize, title: &str| {
                rows.iter()
                    .map(|row| row[i].chars().count())
                    .chain([title.len()])
                    .max()
                    .unwrap_or(0)
            };
            let (w0, w1, w2) = (width(0, "CONTAINER"), width(1, "FIELD"), width(2, "VALUE"));
            let _ = writeln!(
                text,
                "  {:w0$}  {:w1$}  {:w2$}  WHY",
                "CONTAINER", "FIELD", "VALUE"
            );
            for [container, field, value, reason] in &rows {
                let _ = writeln!(
                    text,
                    "  {container:w0$}  {field:w1$}  {value:w2$}  {reason}"
                );
            }
        }
        for note in &result.plan.notes {
            let _ = writeln!(text, "  = {}", note.line());
        }
        for warning in result.plan.warning_texts() {
            let _ = writeln!(text, "  ! {warning}");
        }
    }
    for error in &output.errors {
        let _ = writeln!(text, "error: {error}");
    }
    let would_change = output.results.iter().filter(|r| !r.plan.is_empty()).count();
    let _ = writeln!(
        text,
        "{} workload(s): {would_change} would change, {} change(s) in all, {} error(s)",
        output.results.len(),
        output
            .results
            .iter()
            .map(|r| visible(&r.plan.changes).count())
            .sum::<usize>(),
        output.errors.len()
    );
    let recognition = Recognition::of(output);
    let _ = writeln!(
        text,
        "{} container(s): {} recognised by the catalog, {} not",
        recognition.containers,
        recognition.recognised,
        recognition.containers - recognition.recognised
    );
    text
}

/// How many target containers matched a catalog entry.
#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct Recognition {
    containers: usize,
    recognised: usize,
}

impl Recognition {
    fn of(output: &MutateOutput) -> Recognition {
        let containers = output.results.iter().flat_map(|r| &r.plan.containers);
        let mut recognition = Recognition::default();
        for container in containers {
            recognition.containers += 1;
            recognition.recognised += usize::from(container.app.is_some());
        }
        recognition
    }
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonReport<'a> {
    schema_version: u32,
    workloads: Vec<JsonWorkload<'a>>,
    errors: &'a [String],
    summary: JsonSummary,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonWorkload<'a> {
    source: &'a str,
    document: usize,
    workload: &'a str,
    namespace: Option<&'a str>,
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'a str>,
    containers: &'a [TargetContainer],
    changes: Vec<&'a Change>,
    notes: &'a [Note],
    warnings: Vec<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct JsonSummary {
    workloads: usize,
    containers: usize,
    recognised: usize,
    would_change: usize,
    changes: usize,
    warnings: usize,
    errors: usize,
}

/// The JSON report (schema in docs/audit.md).
pub fn render_json(output: &MutateOutput) -> Value {
    let workloads: Vec<JsonWorkload> = output.results.iter().map(json_workload).collect();
    let recognition = Recognition::of(output);
    let summary = JsonSummary {
        workloads: workloads.len(),
        containers: recognition.containers,
        recognised: recognition.recognised,
        would_change: output.results.iter().filter(|r| !r.plan.is_empty()).count(),
        changes: workloads.iter().map(|w| w.changes.len()).sum(),
        warnings: workloads.iter().map(|w| w.warnings.len()).sum(),
        errors: output.errors.len(),
    };
    let report = JsonReport {
        schema_version: JSON_SCHEMA_VERSION,
        workloads,
        errors: &output.errors,
        summary,
    };
    serde_json::to_value(&report).unwrap_or(Value::Null)
}

fn json_workload(result: &WorkloadResult) -> JsonWorkload<'_> {
    let (status, reason) = status(&result.plan);
    JsonWorkload {
        source: &result.source,
        document: result.document,
        workload: &result.workload,
        namespace: result.namespace.as_deref(),
        status,
        reason,
        containers: &result.plan.containers,
        changes: visible(&result.plan.changes).collect(),
        notes: &result.plan.notes,
        warnings: result.plan.warning_texts(),
    }
}

/// A unified diff of every document that would change.
pub fn render_diff(output: &MutateOutput) -> String {
    let mut text = String::new();
    for document in output.documents.iter().filter(|d| d.changed()) {
        let label = format!("{} [{}]", document.source, document.index);
        let diff = TextDiff::from_lines(&document.original, &document.output);
        let _ = write!(
            text,
            "{}",
            diff.unified_diff()
                .context_radius(3)
                .header(&format!("a/{label}"), &format!("b/{label}"))
        );
    }
    text
}
