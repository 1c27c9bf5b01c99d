//! Multi-document YAML manifests: split into documents, find the Pods and pod templates of workload
//! kinds, and write mutated documents back. Pure: callers read and write the files.

use serde_json::{Map, Value};
use serde_saphyr::{DefaultMessageFormatter, MessageFormatter};
use thiserror::Error;

mod limits;

pub use limits::{MAX_ALIAS_EVENTS, MAX_DEPTH};

/// One YAML document of an input, with its original text so untouched documents pass through
/// byte for byte.
#[derive(Debug, Clone)]
pub struct Document {
    /// 0-based position of the document in its input.
    pub index: usize,
    /// 1-based line of the input where `text` starts.
    pub line: usize,
    pub text: String,
    /// The parsed document; `None` for a document holding only comments.
    pub parsed: Result<Option<Value>, ManifestError>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ManifestError {
    #[error("not valid YAML: {0}")]
    Yaml(String),
    #[error(
        "nested more than {MAX_DEPTH} levels deep (line {line}); no Kubernetes object nests \
         so deep: check how the file was generated"
    )]
    TooDeep { line: u64 },
    #[error(
        "refused as an alias bomb: its aliases (*name) expand past {MAX_ALIAS_EVENTS} nodes \
         (line {line}); write the repeated values out or alias fewer of them"
    )]
    AliasBomb { line: u64 },
    #[error("cannot write YAML: {0}")]
    Render(String),
    #[error("not valid UTF-8 (line {0}); save the file as UTF-8")]
    NotUtf8(usize),
}

/// Splits a multi-document YAML stream on `---` lines. Whitespace-only documents are dropped;
/// comment-only documents are kept (with `parsed: Ok(None)`). A document may start on its `---`
/// line (`--- {kind: Pod, ...}`, as PyYAML writes with `explicit_start`): what follows the marker
/// is the document's first line.
pub fn split_documents(text: &str) -> Vec<Document> {
    // Each chunk with the 1-based line it starts on, and the columns of that line before it (the
    // `--- ` of a document that starts on its marker line).
    let mut chunks: Vec<(usize, usize, String)> = vec![(1, 0, String::new())];
    for (number, line) in (1..).zip(text.split_inclusive('\n')) {
        let Some((_, _, current)) = chunks.last_mut() else {
            continue;
        };
        if let Some(rest) = separator_rest(line) {
            if only_directives(current) {
                // `%YAML 1.2` / `%TAG ...` then `---`: the directives belong to this document.
                current.push_str(line);
            } else if rest.is_empty() {
                chunks.push((number + 1, 0, String::new()));
            } else {
                chunks.push((number, line.len() - rest.len(), rest.to_string()));
            }
        } else if is_document_end(line) {
            // `...` ends the document; directives for the next one may follow.
            current.push_str(line);
            chunks.push((number + 1, 0, String::new()));
        } else {
            current.push_str(line);
        }
    }
    chunks
        .into_iter()
        .filter(|(_, _, chunk)| !chunk.trim().is_empty())
        .enumerate()
        .map(|(index, (line, shift, text))| {
            let parsed = parse_document(&text, line, shift);
            Document {
                index,
                line,
                text,
                parsed,
            }
        })
        .collect()
}

impl Document {
    /// The 1-based lines of the input the document's text spans.
    pub fn lines(&self) -> std::ops::Range<usize> {
        self.line..self.line + self.text.split_inclusive('\n').count()
    }
}

fn is_directive(line: &str) -> bool {
    line.starts_with('%')
}

fn is_blank_or_comment(line: &str) -> bool {
    let line = line.trim();
    line.is_empty() || line.starts_with('#')
}

/// True for text of directives (with comments among them) and nothing else, yet.
fn only_directives(text: &str) -> bool {
    let mut lines = text.split_inclusive('\n');
    lines.clone().any(is_directive)
        && lines.all(|line| is_directive(line) || is_blank_or_comment(line))
}

fn is_document_end(line: &str) -> bool {
    line.strip_prefix("...")
        .is_some_and(|rest| rest.trim().is_empty() || rest.starts_with([' ', '\t']))
}

/// For a `---` line, what follows the marker (empty, or the start of a document on that line,
/// with its line end); `None` for any other line.
fn separator_rest(line: &str) -> Option<&str> {
    let rest = line.strip_prefix("---")?;
    if rest.trim().is_empty() {
        return Some("");
    }
    rest.starts_with([' ', '\t'])
        .then(|| rest.trim_start_matches([' ', '\t']))
}

/// The marker to write before a document's text in a multi-document stream: `---` on a line of its
/// own, or `--- ` when the text's first line is itself a `---` line (a document that started on
/// its marker line with another `---`), so the text stays the document's and reads back the same.
pub fn document_start(text: &str) -> &'static str {
    let first = text.split_inclusive('\n').next().unwrap_or_default();
    if separator_rest(first).is_some() {
        "--- "
    } else {
        "---\n"
    }
}

/// Parses one document whose text starts on the input's line `line`, after `shift` columns.
fn parse_document(text: &str, line: usize, shift: usize) -> Result<Option<Value>, ManifestError> {
    let value: Value = serde_saphyr::from_str_with_options(text, limits::options(text.len()))
        .map_err(|err| document_error(&err, line, shift))?;
    Ok((!value.is_null()).then_some(value))
}

/// The parse error, placed in the input rather than in the document.
fn document_error(err: &serde_saphyr::Error, line: usize, shift: usize) -> ManifestError {
    let at = err.location().map(|at| {
        let column = if at.line() == 1 {
            at.column() + shift as u64
        } else {
            at.column()
        };
        (at.line() + line as u64 - 1, column)
    });
    let line = at.map_or(line as u64, |(line, _)| line);
    match limits::refusal(err) {
        Some(limits::Refusal::TooDeep) => return ManifestError::TooDeep { line },
        Some(limits::Refusal::AliasExpansion) => return ManifestError::AliasBomb { line },
        None => {}
    }
    // The message alone: the default rendering places it in the document and adds a snippet.
    let mut original = err;
    while let serde_saphyr::Error::AliasError { error, .. }
    | serde_saphyr::Error::WithSnippet { error, .. } = original
    {
        original = error;
    }
    let message = DefaultMessageFormatter.format_message(original);
    let message: String = first_line(&message)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    ManifestError::Yaml(match at {
        Some((line, column)) => format!("line {line} column {column}: {message}"),
        None => message,
    })
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or(text).trim();
    line.strip_prefix("error: ").unwrap_or(line).to_string()
}

/// A document's directives (`%YAML`, `%TAG`, with any comments among them) and what follows
/// its `---` line; `None` for a document without directives.
pub fn split_directives(text: &str) -> Option<(&str, &str)> {
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if let Some(rest) = separator_rest(line) {
            let head = text.get(..offset)?;
            // `rest` ends `line`: the document starts there, on the marker line or after it.
            let body = text.get(offset + line.len() - rest.len()..)?;
            return only_directives(head).then_some((head, body));
        }
        if !(is_directive(line) || is_blank_or_comment(line)) {
            return None;
        }
        offset += line.len();
    }
    None
}

/// Renders a document as YAML (without a leading `---`).
pub fn to_yaml(value: &Value) -> Result<String, ManifestError> {
    serde_saphyr::to_string(value).map_err(|err| ManifestError::Render(err.to_string()))
}

/// Where a Pod lives inside a document: the document itself, or a workload's pod template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodSite {
    /// JSON pointer of the Pod (empty) or of the pod template (`/spec/template`).
    pub pointer: String,
    /// `Deployment/web`, or `Pod/api` — how people name the workload.
    pub workload: String,
    pub namespace: Option<String>,
    /// True for a template, false for a Pod object.
    pub template: bool,
}

/// Where the pod template of each workload kind is.
pub fn template_pointer(kind: &str) -> Option<&'static str> {
    match kind {
        "Deployment"
        | "StatefulSet"
        | "DaemonSet"
        | "ReplicaSet"
        | "ReplicationController"
        | "Job" => Some("/spec/template"),
        "CronJob" => Some("/spec/jobTemplate/spec/template"),
        _ => None,
    }
}

/// Every Pod and pod template in a document, `List` items included.
pub fn pod_sites(document: &Value) -> Vec<PodSite> {
    let mut sites = Vec::new();
    collect_sites(document, "", &mut sites);
    sites
}

fn collect_sites(object: &Value, base: &str, sites: &mut Vec<PodSite>) {
    let kind = object.get("kind").and_then(Value::as_str).unwrap_or("");
    let metadata = object.get("metadata");
    let name = metadata
        .and_then(|m| m.get("name").or_else(|| m.get("generateName")))
        .and_then(Value::as_str)
        .unwrap_or("(unnamed)");
    let namespace = metadata
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
        .map(str::to_string);
    if kind == "List" || kind.ends_with("List") {
        if let Some(items) = object.get("items").and_then(Value::as_array) {
            for (i, item) in items.iter().enumerate() {
                collect_sites(item, &format!("{base}/items/{i}"), sites);
            }
        }
        return;
    }
    let workload = format!("{kind}/{name}");
    if kind == "Pod" && object.get("spec").is_some_and(Value::is_object) {
        sites.push(PodSite {
            pointer: base.to_string(),
            workload,
            namespace,
            template: false,
        });
    } else if let Some(pointer) = template_pointer(kind)
        && object.pointer(pointer).is_some_and(Value::is_object)
    {
        sites.push(PodSite {
            pointer: format!("{base}{pointer}"),
            workload,
            namespace,
            template: true,
        });
    }
}

/// The Pod the engine sees for a site: the Pod itself, or a Pod built from the template.
pub fn pod_at(document: &Value, site: &PodSite) -> Option<Value> {
    let found = document.pointer(&site.pointer)?;
    if !site.template {
        return Some(found.clone());
    }
    let mut pod = Map::new();
    pod.insert("apiVersion".into(), Value::from("v1"));
    pod.insert("kind".into(), Value::from("Pod"));
    pod.insert(
        "metadata".into(),
        found
            .get("metadata")
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new())),
    );
    pod.insert(
        "spec".into(),
        found
            .get("spec")
            .cloned()
            .unwrap_or_else(|| Value::Object(Map::new())),
    );
    Some(Value::Object(pod))
}

/// Puts a (mutated) Pod back where [`pod_at`] took it from.
pub fn put_pod(document: &mut Value, site: &PodSite, pod: Value) {
    let Some(slot) = document.pointer_mut(&site.pointer) else {
        return;
    };
    if !site.template {
        *slot = pod;
        return;
    }
    if let (Value::Object(template), Value::Object(mut pod)) = (slot, pod) {
        for key in ["metadata", "spec"] {
            if let Some(value) = pod.remove(key) {
                template.insert(key.to_string(), value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn splits_on_separators_and_keeps_comment_documents() {
        let docs = split_documents("---\na: 1\n---\n# just a comment\n--- \nb: [1\n---\n\n");
        assert_eq!(docs.len(), 3);
        assert_eq!(docs[0].parsed, Ok(Some(json!({"a": 1}))));
        assert_eq!(docs[1].parsed, Ok(None));
        assert!(matches!(docs[2].parsed, Err(ManifestError::Yaml(_))));
        assert_eq!(docs[2].index, 2);
    }

    #[test]
    fn errors_give_the_line_of_the_file() {
        let text = "a: 1\nb: 2\n---\nc: 3\nd: [1\n--- {e: [}\n";
        let docs = split_documents(text);
        let messages: Vec<String> = docs
            .iter()
            .filter_map(|doc| doc.parsed.clone().err())
            .map(|err| err.to_string())
            .collect();
        assert_eq!(
            messages,
            [
                "not valid YAML: line 5 column 4: unclosed bracket '['",
                // Columns count from the start of the line, `--- ` included.
                "not valid YAML: line 6 column 9: mismatched bracket '[' closed by '}'",
            ]
        );
    }

    #[test]
    fn a_document_may_start_on_the_separator_line() {
        // PyYAML's `explicit_start=True, default_flow_style=True` output.
        let text = "--- {apiVersion: v1, kind: ConfigMap, metadata: {name: a}}\n\
                    --- {apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: [{image: python,\n\
                    \x20     name: app}]}}\n\
                    --- # a comment\n\
                    ---\tb: 2\n";
        let docs = split_documents(text);
        assert_eq!(docs.len(), 4);
        assert_eq!(
            docs[0].parsed,
            Ok(Some(
                json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "a"}})
            ))
        );
        assert_eq!(
            docs[1].parsed,
            Ok(Some(
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                "spec": {"containers": [{"image": "python", "name": "app"}]}})
            ))
        );
        assert_eq!(docs[2].parsed, Ok(None));
        assert_eq!(docs[3].parsed, Ok(Some(json!({"b": 2}))));
        assert_eq!(docs[1].lines(), 2..4);
        assert_eq!(docs[3].lines(), 5..6);
    }

    #[test]
    fn a_document_starting_with_a_marker_is_written_on_its_marker_line() {
        let docs = split_documents("a: 1\n--- ---\nkind: [broken\n");
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[1].text, "---\nkind: [broken\n");
        let written = format!("{}{}", document_start(&docs[1].text), docs[1].text);
        assert_eq!(written, "--- ---\nkind: [broken\n");
        let reread = split_documents(&written);
        assert_eq!(reread.len(), 1);
        assert_eq!(reread[0].text, docs[1].text);
        assert_eq!(document_start("a: 1\n"), "---\n");
        assert_eq!(document_start("...\n"), "---\n");
    }

    #[test]
    fn directives_stay_with_their_document() {
        let text = "%YAML 1.2\n---\na: 1\n---\nb: 2\n...\n# tags\n%TAG !e! tag:example.com,2000:\n%YAML 1.2\n--- {c: 3}\n";
        let docs = split_documents(text);
        assert_eq!(docs.len(), 3, "{docs:#?}");
        assert_eq!(docs[0].text, "%YAML 1.2\n---\na: 1\n");
        assert_eq!(docs[0].parsed, Ok(Some(json!({"a": 1}))));
        assert_eq!(docs[1].parsed, Ok(Some(json!({"b": 2}))));
        assert_eq!(
            docs[2].text,
            "# tags\n%TAG !e! tag:example.com,2000:\n%YAML 1.2\n--- {c: 3}\n"
        );
        assert_eq!(docs[2].parsed, Ok(Some(json!({"c": 3}))));
        assert_eq!(
            split_directives(&docs[2].text),
            Some((
                "# tags\n%TAG !e! tag:example.com,2000:\n%YAML 1.2\n",
                "{c: 3}\n"
            ))
        );
        assert_eq!(split_directives(&docs[1].text), None);
    }

    #[test]
    fn finds_pods_templates_and_list_items() {
        let list = json!({"kind": "List", "items": [
            {"kind": "Pod", "metadata": {"name": "p"}, "spec": {"containers": []}},
            {"kind": "CronJob", "metadata": {"name": "c", "namespace": "n"},
             "spec": {"jobTemplate": {"spec": {"template": {"spec": {"containers": []}}}}}},
            {"kind": "ConfigMap", "metadata": {"name": "x"}},
        ]});
        let sites = pod_sites(&list);
        assert_eq!(sites.len(), 2);
        assert_eq!(sites[0].pointer, "/items/0");
        assert_eq!(sites[1].pointer, "/items/1/spec/jobTemplate/spec/template");
        assert_eq!(sites[1].workload, "CronJob/c");
        assert_eq!(sites[1].namespace.as_deref(), Some("n"));
    }

    #[test]
    fn template_round_trip() {
        let mut deployment = json!({"kind": "Deployment", "metadata": {"name": "d"},
            "spec": {"template": {"metadata": {"labels": {"a": "b"}}, "spec": {"containers": []}}}});
        let site = &pod_sites(&deployment)[0];
        let mut pod = pod_at(&deployment, site).unwrap();
        assert_eq!(pod["kind"], "Pod");
        pod["spec"]["terminationGracePeriodSeconds"] = json!(40);
        put_pod(&mut deployment, site, pod);
        assert_eq!(
            deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"],
            40
        );
        assert!(deployment["spec"]["template"].get("kind").is_none());
    }
}
