//! All RFC 6902 emission: explicit `add` operations against the Pod as received.

use std::borrow::Cow;

use json_patch::jsonptr::PointerBuf;
use json_patch::{AddOperation, Patch, PatchOperation};
use k8s_openapi::api::core::v1::Pod;
use serde::Serialize;

mod presence;
mod value;

pub use value::PatchValue;

/// One operation of the patch: an RFC 6902 `add`, the only operation pytune makes. Serializes as
/// `{"op":"add","path":…,"value":…}`, as `json_patch` writes the same operation.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename = "add")]
pub struct Addition {
    pub path: PointerBuf,
    pub value: PatchValue,
}

/// `additions` as `json_patch` operations.
pub(crate) fn json_patch(additions: &[Addition]) -> Patch {
    Patch(
        additions
            .iter()
            .map(|addition| {
                PatchOperation::Add(AddOperation {
                    path: addition.path.clone(),
                    value: addition.value.to_json(),
                })
            })
            .collect(),
    )
}

/// The escaped JSON pointer of unescaped `tokens`.
fn pointer_of(tokens: &[&str]) -> String {
    let mut pointer = String::with_capacity(64);
    for token in tokens {
        push_token(&mut pointer, token);
    }
    pointer
}

/// Appends `/token` to a JSON pointer, escaped as RFC 6901 asks. Cheaper than building a
/// `PointerBuf` token by token, which was much of the engine's time.
fn push_token(pointer: &mut String, token: &str) {
    pointer.push('/');
    if token.bytes().any(|byte| byte == b'~' || byte == b'/') {
        for c in token.chars() {
            match c {
                '~' => pointer.push_str("~0"),
                '/' => pointer.push_str("~1"),
                c => pointer.push(c),
            }
        }
    } else {
        pointer.push_str(token);
    }
}

/// A pointer token without its RFC 6901 escapes.
fn unescape(token: &str) -> Cow<'_, str> {
    if token.contains('~') {
        token.replace("~1", "/").replace("~0", "~").into()
    } else {
        token.into()
    }
}

/// `pointer` as an operation's path. It is escaped by [`push_token`], so it always parses; the
/// fallback only keeps this free of panics.
fn path_of(pointer: &str, tokens: &[&str]) -> PointerBuf {
    PointerBuf::parse(pointer).unwrap_or_else(|_| PointerBuf::from_tokens(tokens.iter().copied()))
}

/// The pointer of element `index` of the array at `array`.
fn element_of(array: &str, index: usize) -> String {
    let mut pointer = String::with_capacity(array.len() + 4);
    pointer.push_str(array);
    pointer.push('/');
    push_number(&mut pointer, index);
    pointer
}

fn push_number(text: &mut String, number: usize) {
    if number >= 10 {
        push_number(text, number / 10);
    }
    text.push(char::from(b'0' + (number % 10) as u8));
}

/// Builds explicit `add` operations against the Pod as received, creating missing parents, so the
/// patch never touches a field it did not mean to (including fields the typed model does not know).
/// A value whose parent this patch creates goes inside the operation that creates the parent, so
/// the patch has one operation per member of the Pod as received.
pub(crate) struct PatchBuilder<'a> {
    original: &'a Pod,
    /// Members this patch creates; few per Pod, so a list beats hashing.
    created: Vec<Created>,
    /// Lengths of arrays of the original this patch appends to, by pointer.
    array_lengths: Vec<(String, usize)>,
    ops: Vec<Addition>,
}

/// A member this patch creates: its pointer, and the operation adding it.
struct Created {
    pointer: String,
    op: usize,
    /// Where the operation's path ends in `pointer`; the rest leads to the member in its value.
    op_path_len: usize,
}

impl<'a> PatchBuilder<'a> {
    pub fn new(original: &'a Pod) -> Self {
        PatchBuilder {
            original,
            created: Vec::new(),
            array_lengths: Vec::new(),
            ops: Vec::new(),
        }
    }

    fn created_index(&self, pointer: &str) -> Option<usize> {
        self.created
            .iter()
            .position(|created| created.pointer == pointer)
    }

    /// The value of a member this patch creates, inside its operation.
    fn created_value(&mut self, index: usize) -> Option<&mut PatchValue> {
        let created = self.created.get(index)?;
        let within = created.pointer.get(created.op_path_len..)?;
        let addition = self.ops.get_mut(created.op)?;
        within
            .split('/')
            .skip(1)
            .try_fold(&mut addition.value, |value, token| {
                value.child_mut(&unescape(token))
            })
    }

    /// Adds `value` at `tokens` and returns its pointer. When parents are missing, the outermost
    /// missing one is added with the value nested inside it; when the nearest existing parent is
    /// one this patch creates, the value joins the operation that creates it.
    fn place(&mut self, tokens: &[&str], value: PatchValue) -> String {
        let Some(last) = tokens.len().checked_sub(1) else {
            return String::new();
        };
        // The first token whose member is missing: a parent, else the member itself.
        let mut pointer = String::with_capacity(64);
        let mut anchor = None;
        let mut first_missing = last;
        for depth in 0..last {
            push_token(&mut pointer, tokens[depth]);
            match self.created_index(&pointer) {
                Some(index) => anchor = Some(index),
                None if presence::present(self.original, &tokens[..=depth]) => anchor = None,
                None => {
                    first_missing = depth;
                    break;
                }
            }
        }
        if first_missing == last {
            push_token(&mut pointer, tokens[last]);
        }
        let mut nested = value;
        for token in tokens[first_missing + 1..].iter().rev() {
            nested = PatchValue::Object(vec![(Cow::Owned((*token).to_string()), nested)]);
        }
        let key = tokens[first_missing];
        // Inside the operation that creates the parent, when there is one; else its own operation.
        let (op, op_path_len) = match anchor.map(|index| (index, self.created_value(index))) {
            Some((index, Some(parent @ PatchValue::Object(_)))) => {
                parent.insert(Cow::Owned(key.to_string()), nested);
                let created = &self.created[index];
                (created.op, created.op_path_len)
            }
            _ => {
                self.ops.push(Addition {
                    path: path_of(&pointer, &tokens[..=first_missing]),
                    value: nested,
                });
                (self.ops.len() - 1, pointer.len())
            }
        };
        // Remember every level created, down to the member.
        self.created.push(Created {
            pointer: pointer.clone(),
            op,
            op_path_len,
        });
        for token in &tokens[first_missing + 1..] {
            push_token(&mut pointer, token);
            self.created.push(Created {
                pointer: pointer.clone(),
                op,
                op_path_len,
            });
        }
        pointer
    }

    /// Sets the member at `tokens` (absent, or Kubernetes' default that pytune may replace);
    /// returns its pointer.
    pub fn set(&mut self, tokens: &[&str], value: PatchValue) -> String {
        self.place(tokens, value)
    }

    /// Appends every value of `values` to the array at `tokens`, creating the array when absent;
    /// returns the pointer of each new element.
    pub fn append_all(&mut self, tokens: &[&str], values: Vec<PatchValue>) -> Vec<String> {
        let key = pointer_of(tokens);
        let mut values = values.into_iter();
        let mut paths = Vec::with_capacity(values.len());
        let Some(first) = values.next() else {
            return paths;
        };
        paths.push(self.append_at(tokens, &key, first));
        // An array this patch created takes the rest inside the same operation, found once.
        if let Some(index) = self.created_index(&key)
            && let Some(PatchValue::Array(items)) = self.created_value(index)
        {
            for value in values {
                items.push(value);
                paths.push(element_of(&key, items.len() - 1));
            }
            return paths;
        }
        for value in values {
            paths.push(self.append_at(tokens, &key, value));
        }
        paths
    }

    /// Appends one value to the array at `tokens`, whose pointer is `key`.
    fn append_at(&mut self, tokens: &[&str], key: &str, value: PatchValue) -> String {
        if let Some(index) = self.created_index(key)
            && let Some(PatchValue::Array(items)) = self.created_value(index)
        {
            items.push(value);
            return element_of(key, items.len() - 1);
        }
        if !presence::present(self.original, tokens) {
            self.place(tokens, PatchValue::Array(vec![value]));
            return element_of(key, 0);
        }
        let length = match self
            .array_lengths
            .iter_mut()
            .find(|(array, _)| array == key)
        {
            Some((_, length)) => length,
            None => {
                let length = presence::array_len(self.original, tokens).unwrap_or(0);
                self.array_lengths.push((key.to_string(), length));
                let last = self.array_lengths.len() - 1;
                &mut self.array_lengths[last].1
            }
        };
        let index = *length;
        *length += 1;
        let end = [key, "/-"].concat();
        let path = PointerBuf::parse(end).unwrap_or_else(|_| {
            let mut path = PointerBuf::from_tokens(tokens.iter().copied());
            path.push_back("-");
            path
        });
        self.ops.push(Addition { path, value });
        element_of(key, index)
    }

    pub fn finish(self) -> Vec<Addition> {
        self.ops
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn typed(pod: Value) -> Pod {
        serde_json::from_value(pod).expect("a Pod")
    }

    #[test]
    fn set_creates_missing_parents_once_and_escapes_keys() {
        let pod =
            typed(json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "a"}]}}));
        let mut builder = PatchBuilder::new(&pod);
        let path = builder.set(
            &["metadata", "annotations", "pytune.io/injected"],
            "x".into(),
        );
        assert_eq!(path, "/metadata/annotations/pytune.io~1injected");
        builder.set(
            &["metadata", "annotations", "pytune.io/policy-revision"],
            "r".into(),
        );
        let patch = json_patch(&builder.finish());
        let ops = serde_json::to_value(&patch).unwrap();
        assert_eq!(
            ops,
            json!([
                {"op": "add", "path": "/metadata/annotations",
                 "value": {"pytune.io/injected": "x", "pytune.io/policy-revision": "r"}},
            ])
        );
    }

    #[test]
    fn values_below_a_created_parent_join_its_operation() {
        let pod = json!({"spec": {"containers": [{"name": "a", "resources": {}}]}});
        let typed_pod = typed(pod.clone());
        let mut builder = PatchBuilder::new(&typed_pod);
        let base = ["spec", "containers", "0"];
        let at = |rest: &[&'static str]| [&base[..], rest].concat();
        builder.set(&at(&["resources", "requests", "cpu"]), "1".into());
        let sleep = PatchValue::object([("seconds", 5.into())]);
        builder.set(
            &at(&["lifecycle", "preStop"]),
            PatchValue::object([("sleep", sleep)]),
        );
        let path = builder.set(&at(&["resources", "requests", "memory"]), "1Gi".into());
        assert_eq!(path, "/spec/containers/0/resources/requests/memory");
        builder.set(&at(&["resources", "limits", "memory"]), "2Gi".into());
        let patch = json_patch(&builder.finish());
        assert_eq!(
            serde_json::to_value(&patch).unwrap(),
            json!([
                {"op": "add", "path": "/spec/containers/0/resources/requests",
                 "value": {"cpu": "1", "memory": "1Gi"}},
                {"op": "add", "path": "/spec/containers/0/lifecycle",
                 "value": {"preStop": {"sleep": {"seconds": 5}}}},
                {"op": "add", "path": "/spec/containers/0/resources/limits",
                 "value": {"memory": "2Gi"}},
            ])
        );
        let mut patched = pod;
        json_patch::patch(&mut patched, &patch).unwrap();
        assert_eq!(
            patched["spec"]["containers"][0]["resources"],
            json!({"requests": {"cpu": "1", "memory": "1Gi"}, "limits": {"memory": "2Gi"}})
        );
    }

    #[test]
    fn append_creates_then_extends_and_reports_indexes() {
        let pod = json!({"spec": {"containers": [{"name": "a", "env": null}, {"name": "b", "env": [{"name": "X"}]}]}});
        let typed_pod = typed(pod.clone());
        let mut builder = PatchBuilder::new(&typed_pod);
        let first = ["spec", "containers", "0", "env"];
        let second = ["spec", "containers", "1", "env"];
        let named = |name: &str| PatchValue::object([("name", name.into())]);
        assert_eq!(
            builder.append_all(&first, vec![named("A")]),
            ["/spec/containers/0/env/0"]
        );
        assert_eq!(
            builder.append_all(&first, vec![named("B")]),
            ["/spec/containers/0/env/1"]
        );
        assert_eq!(
            builder.append_all(&second, vec![named("C"), named("D")]),
            ["/spec/containers/1/env/1", "/spec/containers/1/env/2"]
        );
        let patch = json_patch(&builder.finish());
        // The created array is one operation; the existing one is appended to.
        let paths: Vec<String> = patch.0.iter().map(|op| op.path().to_string()).collect();
        assert_eq!(
            paths,
            [
                "/spec/containers/0/env",
                "/spec/containers/1/env/-",
                "/spec/containers/1/env/-"
            ]
        );
        let mut patched = pod.clone();
        json_patch::patch(&mut patched, &patch).unwrap();
        assert_eq!(
            patched["spec"]["containers"][0]["env"],
            json!([{"name": "A"}, {"name": "B"}])
        );
        assert_eq!(
            patched["spec"]["containers"][1]["env"],
            json!([{"name": "X"}, {"name": "C"}, {"name": "D"}])
        );
    }

    #[test]
    fn additions_serialize_as_json_patch_serializes_them() {
        let add = |path: &str, value: PatchValue| Addition {
            path: PointerBuf::parse(path).expect("a pointer"),
            value,
        };
        let env = |name: &str, value: &str| {
            PatchValue::object([("name", name.into()), ("value", value.into())])
        };
        let additions = vec![
            add(
                "/metadata/annotations/a~1b",
                "line one\nline \"two\" \\ tab\t\u{1}".into(),
            ),
            add(
                "/spec/containers/0/env",
                PatchValue::Array(vec![env("X", "1"), env("Y", "ü—€")]),
            ),
            add("/spec/terminationGracePeriodSeconds", 40.into()),
            add(
                "/x",
                PatchValue::object([("a", (-3).into()), ("b", PatchValue::Array(Vec::new()))]),
            ),
        ];
        assert_eq!(
            serde_json::to_string(&additions).expect("serializes"),
            serde_json::to_string(&json_patch(&additions)).expect("serializes")
        );
    }

    #[test]
    fn pointers_escape_tokens_and_number_elements() {
        assert_eq!(
            pointer_of(&["metadata", "annotations", "a/b~c"]),
            "/metadata/annotations/a~1b~0c"
        );
        assert_eq!(path_of(&pointer_of(&["x", "a/b"]), &[]).as_str(), "/x/a~1b");
        for index in [0, 7, 10, 123, 4096] {
            assert_eq!(element_of("/env", index), format!("/env/{index}"));
        }
    }
}
