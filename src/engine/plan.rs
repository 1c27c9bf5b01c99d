//! The plan: what the engine decided, each change with its reason, rendered to an RFC 6902 patch.

use std::collections::HashMap;

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation};
use k8s_openapi::api::core::v1::Pod;
use serde::Serialize;
use serde_json::Value;

use super::{WorkloadProfile, presence};
use crate::detect::Detection;

/// Kubernetes asks webhooks to keep each warning within 120 characters; longer ones may be truncated.
pub const MAX_WARNING_CHARS: usize = 120;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Feature {
    Resources,
    Probes,
    Lifecycle,
    Env,
    /// The annotations that record what pytune did.
    Record,
}

impl Feature {
    pub const SKIPPABLE: [Feature; 4] = [
        Feature::Resources,
        Feature::Probes,
        Feature::Lifecycle,
        Feature::Env,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Feature::Resources => "resources",
            Feature::Probes => "probes",
            Feature::Lifecycle => "lifecycle",
            Feature::Env => "env",
            Feature::Record => "record",
        }
    }
}

/// One value pytune adds, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// The container changed, or `None` for a Pod-level field.
    pub container: Option<String>,
    pub feature: Feature,
    /// The field in words people read: `resources.requests.cpu`, `env.PYTHONUNBUFFERED`.
    pub field: String,
    /// JSON pointer of the value in the mutated Pod.
    pub path: String,
    pub value: Value,
    pub reason: String,
}

/// A decision that changed nothing, kept so every outcome can be explained.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Note {
    pub container: Option<String>,
    pub feature: Feature,
    pub message: String,
}

impl Note {
    /// `container: message`, or `pod: message` for a Pod-level note.
    pub fn line(&self) -> String {
        format!(
            "{}: {}",
            self.container.as_deref().unwrap_or("pod"),
            self.message
        )
    }
}

/// Something the user should look at; never a rejection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Warning {
    pub container: Option<String>,
    pub message: String,
}

impl Warning {
    pub fn pod(message: impl Into<String>) -> Warning {
        Warning {
            container: None,
            message: message.into(),
        }
    }

    pub fn container(name: &str, message: impl Into<String>) -> Warning {
        Warning {
            container: Some(name.to_string()),
            message: message.into(),
        }
    }

    /// The text shown to users: prefixed with the container, at most [`MAX_WARNING_CHARS`].
    pub fn text(&self) -> String {
        let full = match &self.container {
            Some(name) => format!("pytune: container {name}: {}", self.message),
            None => format!("pytune: {}", self.message),
        };
        truncate(&full, MAX_WARNING_CHARS)
    }
}

/// Cuts `text` to at most `max` characters, marking the cut with an ellipsis.
pub fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

/// Whether the Pod is pytune's to change at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "decision", content = "reason", rename_all = "kebab-case")]
pub enum Decision {
    /// Selected: the changes below apply (there may be none).
    Selected,
    /// Not labeled as a Python service.
    NotSelected(String),
    /// Labeled, but opted out by annotation.
    OptedOut(String),
}

/// What pytune knows of one target container.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TargetContainer {
    pub name: String,
    pub profile: WorkloadProfile,
    pub profile_reason: String,
    pub detection: Detection,
}

#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    #[serde(flatten)]
    pub decision: Decision,
    pub containers: Vec<TargetContainer>,
    pub changes: Vec<Change>,
    pub notes: Vec<Note>,
    pub warnings: Vec<Warning>,
    #[serde(skip)]
    pub patch: Patch,
}

impl Plan {
    pub(crate) fn untouched(decision: Decision, warnings: Vec<Warning>) -> Plan {
        Plan {
            decision,
            containers: Vec::new(),
            changes: Vec::new(),
            notes: Vec::new(),
            warnings,
            patch: Patch(Vec::new()),
        }
    }

    /// True when the Pod would not change.
    pub fn is_empty(&self) -> bool {
        self.patch.0.is_empty()
    }

    /// Every warning as shown to users (each at most 120 characters).
    pub fn warning_texts(&self) -> Vec<String> {
        self.warnings.iter().map(Warning::text).collect()
    }

    /// The changes the user made visible as one short line each: `container field=value`.
    pub fn change_summaries(&self) -> Vec<String> {
        self.changes.iter().map(Change::summary).collect()
    }
}

impl Change {
    /// The value in a few words: `250m`, `sleep 5s`, `HTTP GET /healthz :8000`.
    pub fn display_value(&self) -> String {
        match &self.value {
            Value::String(text) => text.clone(),
            Value::Object(map) if map.contains_key("sleep") => {
                format!("sleep {}s", map["sleep"]["seconds"])
            }
            Value::Object(map) if map.contains_key("exec") => "exec pause".to_string(),
            Value::Object(map) if map.contains_key("httpGet") => format!(
                "HTTP GET {} :{}",
                map["httpGet"]["path"].as_str().unwrap_or("/"),
                map["httpGet"]["port"]
            ),
            Value::Object(map) if map.contains_key("tcpSocket") => {
                format!("TCP :{}", map["tcpSocket"]["port"])
            }
            other => other.to_string(),
        }
    }

    /// `web: resources.requests.cpu=250m` — short enough for an admission warning.
    pub fn summary(&self) -> String {
        let owner = self.container.as_deref().unwrap_or("pod");
        truncate(
            &format!("{owner}: {}={}", self.field, self.display_value()),
            90,
        )
    }
}

fn pointer_of(tokens: &[&str]) -> String {
    PointerBuf::from_tokens(tokens.iter().copied())
        .as_str()
        .to_string()
}

/// Builds explicit `add` operations against the Pod as received, creating missing parents, so the
/// patch never touches a field it did not mean to (including fields the typed model does not know).
pub(crate) struct PatchBuilder<'a> {
    original: &'a Pod,
    /// Pointers this patch creates; few per Pod, so a list beats hashing.
    created: Vec<String>,
    array_lengths: HashMap<String, usize>,
    ops: Vec<PatchOperation>,
}

impl<'a> PatchBuilder<'a> {
    pub fn new(original: &'a Pod) -> Self {
        PatchBuilder {
            original,
            created: Vec::new(),
            array_lengths: HashMap::new(),
            ops: Vec::new(),
        }
    }

    /// Whether the value at `tokens` (whose escaped pointer is `pointer`) is present and not null,
    /// in the original or created by this patch.
    fn exists(&self, tokens: &[&str], pointer: &str) -> bool {
        self.created.iter().any(|created| created == pointer)
            || presence::present(self.original, tokens)
    }

    fn add(&mut self, pointer: PointerBuf, value: Value) {
        self.created.push(pointer.as_str().to_string());
        self.ops.push(PatchOperation::Add(AddOperation {
            path: pointer,
            value,
        }));
    }

    /// Adds `value` at `tokens`. When parents are missing, one operation adds the outermost missing
    /// parent with the value nested inside it, and every level it creates is remembered.
    fn place(&mut self, tokens: &[&str], value: Value) -> String {
        let mut pointer = PointerBuf::new();
        let mut missing_from = None;
        for (depth, token) in tokens.iter().enumerate() {
            pointer.push_back(*token);
            if depth + 1 < tokens.len() && !self.exists(&tokens[..=depth], pointer.as_str()) {
                missing_from = Some(depth);
                break;
            }
        }
        let Some(depth) = missing_from else {
            let path = pointer.as_str().to_string();
            self.add(pointer, value);
            return path;
        };
        let mut nested = value;
        for token in tokens[depth + 1..].iter().rev() {
            let mut object = serde_json::Map::new();
            object.insert((*token).to_string(), nested);
            nested = Value::Object(object);
        }
        self.add(pointer.clone(), nested);
        for token in &tokens[depth + 1..] {
            pointer.push_back(*token);
            self.created.push(pointer.as_str().to_string());
        }
        pointer.as_str().to_string()
    }

    /// Sets the member at `tokens` (absent, or Kubernetes' default that pytune may replace);
    /// returns its pointer.
    pub fn set(&mut self, tokens: &[&str], value: Value) -> String {
        self.place(tokens, value)
    }

    /// Appends `value` to the array at `tokens`, creating the array when absent; returns the
    /// pointer of the new element.
    pub fn append(&mut self, tokens: &[&str], value: Value) -> String {
        let key = pointer_of(tokens);
        let length = match self.array_lengths.get(&key) {
            Some(length) => *length,
            None if self.exists(tokens, &key) => {
                presence::array_len(self.original, tokens).unwrap_or(0)
            }
            None => {
                self.place(tokens, Value::Array(vec![value]));
                self.array_lengths.insert(key.clone(), 1);
                return format!("{key}/0");
            }
        };
        let mut element = PointerBuf::from_tokens(tokens.iter().copied());
        element.push_back("-");
        self.ops.push(PatchOperation::Add(AddOperation {
            path: element,
            value,
        }));
        self.array_lengths.insert(key.clone(), length + 1);
        format!("{key}/{length}")
    }

    /// Appends every value of `values` to the array at `tokens` (see [`Self::append`]), working out
    /// where the array stands once; returns the pointer of each new element.
    pub fn append_all(&mut self, tokens: &[&str], values: Vec<Value>) -> Vec<String> {
        let mut values = values.into_iter();
        let Some(first) = values.next() else {
            return Vec::new();
        };
        let mut paths = vec![self.append(tokens, first)];
        let key = pointer_of(tokens);
        let mut element = PointerBuf::from_tokens(tokens.iter().copied());
        element.push_back("-");
        let mut length = self.array_lengths.get(&key).copied().unwrap_or(1);
        for value in values {
            self.ops.push(PatchOperation::Add(AddOperation {
                path: element.clone(),
                value,
            }));
            paths.push(format!("{key}/{length}"));
            length += 1;
        }
        self.array_lengths.insert(key, length);
        paths
    }

    pub fn finish(self) -> Patch {
        Patch(self.ops)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn typed(pod: Value) -> Pod {
        serde_json::from_value(pod).expect("a Pod")
    }

    #[test]
    fn set_creates_missing_parents_and_escapes_keys() {
        let pod =
            typed(json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]}}));
        let mut builder = PatchBuilder::new(&pod);
        let path = builder.set(
            &["metadata", "annotations", "pytune.io/injected"],
            json!("x"),
        );
        assert_eq!(path, "/metadata/annotations/pytune.io~1injected");
        builder.set(
            &["metadata", "annotations", "pytune.io/policy-revision"],
            json!("r"),
        );
        let patch = builder.finish();
        let ops = serde_json::to_value(&patch).unwrap();
        assert_eq!(
            ops,
            json!([
                {"op": "add", "path": "/metadata/annotations", "value": {"pytune.io/injected": "x"}},
                {"op": "add", "path": "/metadata/annotations/pytune.io~1policy-revision", "value": "r"},
            ])
        );
    }

    #[test]
    fn append_creates_then_extends_and_reports_indexes() {
        let pod = json!({"spec": {"containers": [{"name": "a", "env": null}, {"name": "b", "env": [{"name": "X"}]}]}});
        let typed_pod = typed(pod.clone());
        let mut builder = PatchBuilder::new(&typed_pod);
        assert_eq!(
            builder.append(&["spec", "containers", "0", "env"], json!({"name": "A"})),
            "/spec/containers/0/env/0"
        );
        assert_eq!(
            builder.append(&["spec", "containers", "0", "env"], json!({"name": "B"})),
            "/spec/containers/0/env/1"
        );
        assert_eq!(
            builder.append(&["spec", "containers", "1", "env"], json!({"name": "C"})),
            "/spec/containers/1/env/1"
        );
        let mut patched = pod.clone();
        json_patch::patch(&mut patched, &builder.finish()).unwrap();
        assert_eq!(
            patched["spec"]["containers"][0]["env"],
            json!([{"name": "A"}, {"name": "B"}])
        );
        assert_eq!(
            patched["spec"]["containers"][1]["env"],
            json!([{"name": "X"}, {"name": "C"}])
        );
    }

    #[test]
    fn warnings_are_cut_to_the_api_server_limit() {
        let warning = Warning::container("web", "x".repeat(300));
        let text = warning.text();
        assert_eq!(text.chars().count(), MAX_WARNING_CHARS);
        assert!(text.starts_with("pytune: container web: "));
        assert!(text.ends_with('…'));
    }
}
