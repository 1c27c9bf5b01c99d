//! `pytune mutate`: the engine over manifests. Pure over text in, text out; the CLI does the I/O.

use std::fmt::Write as _;

use crate::cli::env_sources::EnvSources;
use crate::cli::manifests::{self, Document};
use crate::core::engine::{self, Context, Decision, PatchValue, Plan};
use crate::core::policy::Policy;

/// One input stream: a file's text or stdin's.
#[derive(Debug, Clone, Default)]
pub struct Input {
    pub name: String,
    pub text: String,
    /// 1-based lines that were not valid UTF-8 (in `text` their bad bytes read U+FFFD).
    pub not_utf8_lines: Vec<usize>,
}

impl Input {
    /// The input's documents; one with a line that was not UTF-8 is an error, not its text.
    pub fn documents(&self) -> Vec<Document> {
        let mut documents = manifests::split_documents(&self.text);
        for document in &mut documents {
            let lines = document.lines();
            if let Some(&line) = self.not_utf8_lines.iter().find(|l| lines.contains(l)) {
                document.parsed = Err(manifests::ManifestError::NotUtf8(line));
            }
        }
        documents
    }
}

/// What the engine decided for one Pod or pod template.
#[derive(Debug)]
pub struct WorkloadResult {
    pub source: String,
    pub document: usize,
    pub workload: String,
    pub namespace: Option<String>,
    pub plan: Plan,
}

/// One input document, before and after.
#[derive(Debug)]
pub struct DocumentOutput {
    pub source: String,
    pub index: usize,
    pub original: String,
    /// The text to print: re-rendered when changed, else the original.
    pub output: String,
}

impl DocumentOutput {
    pub fn changed(&self) -> bool {
        self.output != self.original
    }
}

#[derive(Debug, Default)]
pub struct MutateOutput {
    /// The multi-document YAML to print: every input document in order, changed or as it was.
    pub yaml: String,
    pub documents: Vec<DocumentOutput>,
    pub results: Vec<WorkloadResult>,
    /// Problems that left a document unchanged: `file document N: what is wrong`.
    pub errors: Vec<String>,
}

pub fn mutate(inputs: &[Input], policy: &Policy, ctx: &Context) -> MutateOutput {
    let mut output = MutateOutput::default();
    let documents: Vec<Vec<Document>> = inputs.iter().map(Input::documents).collect();
    let sources = EnvSources::of_documents(&documents);
    for (input, documents) in inputs.iter().zip(documents) {
        for document in documents {
            if let Err(err @ manifests::ManifestError::NotUtf8(_)) = &document.parsed {
                // Its text is not what the file holds: leave it out rather than alter it.
                output.errors.push(format!(
                    "{} document {}: {err}; left out of the output",
                    input.name, document.index
                ));
                continue;
            }
            let ctx = (ctx, &sources);
            let mut text = mutate_document(&input.name, &document, policy, ctx, &mut output);
            if !text.ends_with('\n') {
                text.push('\n');
            }
            if manifests::split_directives(&text).is_some() {
                // Directives open a document only at the start or after a document end.
                if !output.yaml.is_empty() && !output.yaml.ends_with("...\n") {
                    output.yaml.push_str("...\n");
                }
            } else {
                output.yaml.push_str(manifests::document_start(&text));
            }
            output.yaml.push_str(&text);
            let mut original = document.text.clone();
            if !original.ends_with('\n') {
                original.push('\n');
            }
            output.documents.push(DocumentOutput {
                source: input.name.clone(),
                index: document.index,
                original,
                output: text,
            });
        }
    }
    output
}

/// Returns the document's text: re-rendered when something changed, the original otherwise.
fn mutate_document(
    source: &str,
    document: &Document,
    policy: &Policy,
    (ctx, sources): (&Context, &EnvSources),
    output: &mut MutateOutput,
) -> String {
    let where_ = format!("{source} document {}", document.index);
    let mut value = match &document.parsed {
        Ok(Some(value)) => value.clone(),
        Ok(None) => return document.text.clone(),
        Err(err) => {
            output
                .errors
                .push(format!("{where_}: {err}; passed through unchanged"));
            return document.text.clone();
        }
    };
    let mut changed = false;
    for site in manifests::pod_sites(&value) {
        let Some(mut pod) = manifests::pod_at(&value, &site) else {
            continue;
        };
        let ctx = sources.site_context(ctx, &site);
        let plan = match engine::plan(&pod, policy, &ctx) {
            Ok(plan) => plan,
            Err(err) => {
                output.errors.push(format!(
                    "{where_} ({}): {err}; left unchanged",
                    site.workload
                ));
                continue;
            }
        };
        if !plan.is_empty() {
            match json_patch::patch(&mut pod, &plan.json_patch()) {
                Ok(()) => {
                    manifests::put_pod(&mut value, &site, pod);
                    changed = true;
                }
                Err(err) => output.errors.push(format!(
                    "{where_} ({}): internal error applying the plan: {err}; left unchanged",
                    site.workload
                )),
            }
        }
        output.results.push(WorkloadResult {
            source: source.to_string(),
            document: document.index,
            workload: site.workload,
            namespace: site.namespace,
            plan,
        });
    }
    if !changed {
        return document.text.clone();
    }
    match manifests::to_yaml(&value) {
        // Comments above the document (a file header, helm's `# Source:`) survive re-rendering.
        Ok(text) => match manifests::split_directives(&document.text) {
            Some((directives, body)) => {
                format!("{directives}---\n{}{text}", leading_comments(body))
            }
            None => format!("{}{text}", leading_comments(&document.text)),
        },
        Err(err) => {
            output
                .errors
                .push(format!("{where_}: {err}; passed through unchanged"));
            document.text.clone()
        }
    }
}

fn leading_comments(text: &str) -> String {
    text.split_inclusive('\n')
        .take_while(|line| line.trim().is_empty() || line.trim_start().starts_with('#'))
        .filter(|line| !line.trim().is_empty())
        .collect()
}

/// The human summary printed on stderr: what changed in each workload and why.
pub fn summary(output: &MutateOutput) -> String {
    let mut text = String::new();
    let (mut changed, mut unchanged, mut skipped) = (0, 0, 0);
    for result in &output.results {
        let heading = format!(
            "{} [{}] {}",
            result.source, result.document, result.workload
        );
        match &result.plan.decision {
            Decision::Selected if result.plan.is_empty() => {
                unchanged += 1;
                let _ = writeln!(text, "{heading}: nothing to add");
            }
            Decision::Selected => {
                changed += 1;
                let _ = writeln!(text, "{heading}: {} change(s)", result.plan.changes.len());
                for target in &result.plan.containers {
                    let _ = writeln!(
                        text,
                        "  container {}: profile {} ({})",
                        target.name, target.profile, target.profile_reason
                    );
                }
                for note in &result.plan.notes {
                    let _ = writeln!(text, "  = {}", note.line());
                }
                for change in &result.plan.changes {
                    if change.feature == engine::Feature::Record {
                        continue;
                    }
                    let _ = writeln!(
                        text,
                        "  + {} {} = {}\n      {}",
                        change.container.as_deref().unwrap_or("pod"),
                        change.field,
                        short_value(&change.value),
                        change.reason
                    );
                }
            }
            Decision::NotSelected(reason) | Decision::OptedOut(reason) => {
                skipped += 1;
                let _ = writeln!(text, "{heading}: skipped ({reason})");
            }
        }
        for warning in result.plan.warning_texts() {
            let _ = writeln!(text, "  ! {warning}");
        }
    }
    for error in &output.errors {
        let _ = writeln!(text, "error: {error}");
    }
    let _ = writeln!(
        text,
        "pytune: {changed} changed, {unchanged} already complete, {skipped} skipped, {} error(s)",
        output.errors.len()
    );
    text
}

fn short_value(value: &PatchValue) -> String {
    match value {
        PatchValue::String(text) => text.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broken_documents_pass_through_and_are_reported() {
        let text = "kind: ConfigMap\nmetadata: {name: a}\n---\nkind: [broken\n---\n# note\n";
        let output = mutate(
            &[Input {
                name: "in.yaml".into(),
                text: text.into(),
                ..Input::default()
            }],
            &Policy::embedded(),
            &Context::default(),
        );
        assert_eq!(
            output.yaml,
            "---\nkind: ConfigMap\nmetadata: {name: a}\n---\nkind: [broken\n---\n# note\n"
        );
        assert_eq!(output.errors.len(), 1);
        assert!(output.errors[0].starts_with("in.yaml document 1: not valid YAML"));
    }
}
