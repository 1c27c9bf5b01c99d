//! The values pytune adds to a Pod. They are few and small, and they are built for every review:
//! as `serde_json::Value`s, each object was an ordered map hashing its keys (the CLI needs
//! serde_json's `preserve_order`), which made building them most of the engine's cost. These keep
//! members in a list, in the order they were added, and serialize to the same JSON.

use std::borrow::Cow;
use std::fmt;

use serde::ser::{Serialize, SerializeMap, SerializeSeq, Serializer};
use serde_json::Value;

/// A JSON value pytune adds: only the kinds the rules produce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatchValue {
    String(String),
    Integer(i64),
    Bool(bool),
    Array(Vec<PatchValue>),
    /// Members in the order they were added; keys are unique.
    Object(Vec<(Cow<'static, str>, PatchValue)>),
}

impl PatchValue {
    /// An object of these members, in this order.
    pub fn object<const N: usize>(members: [(&'static str, PatchValue); N]) -> PatchValue {
        PatchValue::Object(
            members
                .into_iter()
                .map(|(key, value)| (Cow::Borrowed(key), value))
                .collect(),
        )
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            PatchValue::String(text) => Some(text),
            _ => None,
        }
    }

    /// The member `key` of an object.
    pub fn get(&self, key: &str) -> Option<&PatchValue> {
        match self {
            PatchValue::Object(members) => members
                .iter()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value),
            _ => None,
        }
    }

    /// The member named by a JSON pointer token (unescaped): an object's key or an array's index.
    pub(super) fn child_mut(&mut self, token: &str) -> Option<&mut PatchValue> {
        match self {
            PatchValue::Object(members) => members
                .iter_mut()
                .find(|(name, _)| name == token)
                .map(|(_, value)| value),
            PatchValue::Array(items) => token.parse::<usize>().ok().and_then(|i| items.get_mut(i)),
            _ => None,
        }
    }

    /// Sets member `key` of an object, replacing a member of that name; ignored on other kinds.
    pub(super) fn insert(&mut self, key: Cow<'static, str>, value: PatchValue) {
        let PatchValue::Object(members) = self else {
            return;
        };
        match members.iter_mut().find(|(name, _)| *name == key) {
            Some((_, existing)) => *existing = value,
            None => members.push((key, value)),
        }
    }

    /// The same value as a `serde_json::Value`, for callers that work on JSON trees.
    pub fn to_json(&self) -> Value {
        match self {
            PatchValue::String(text) => Value::String(text.clone()),
            PatchValue::Integer(number) => Value::from(*number),
            PatchValue::Bool(flag) => Value::Bool(*flag),
            PatchValue::Array(items) => Value::Array(items.iter().map(Self::to_json).collect()),
            PatchValue::Object(members) => Value::Object(
                members
                    .iter()
                    .map(|(key, value)| (key.to_string(), value.to_json()))
                    .collect(),
            ),
        }
    }
}

impl From<String> for PatchValue {
    fn from(text: String) -> Self {
        PatchValue::String(text)
    }
}

impl From<&str> for PatchValue {
    fn from(text: &str) -> Self {
        PatchValue::String(text.to_string())
    }
}

impl From<i64> for PatchValue {
    fn from(number: i64) -> Self {
        PatchValue::Integer(number)
    }
}

impl From<i32> for PatchValue {
    fn from(number: i32) -> Self {
        PatchValue::Integer(number.into())
    }
}

impl From<u32> for PatchValue {
    fn from(number: u32) -> Self {
        PatchValue::Integer(number.into())
    }
}

impl From<Vec<String>> for PatchValue {
    fn from(texts: Vec<String>) -> Self {
        PatchValue::Array(texts.into_iter().map(PatchValue::String).collect())
    }
}

impl Serialize for PatchValue {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            PatchValue::String(text) => serializer.serialize_str(text),
            PatchValue::Integer(number) => serializer.serialize_i64(*number),
            PatchValue::Bool(flag) => serializer.serialize_bool(*flag),
            PatchValue::Array(items) => {
                let mut seq = serializer.serialize_seq(Some(items.len()))?;
                for item in items {
                    seq.serialize_element(item)?;
                }
                seq.end()
            }
            PatchValue::Object(members) => {
                let mut map = serializer.serialize_map(Some(members.len()))?;
                for (key, value) in members {
                    map.serialize_entry(key.as_ref(), value)?;
                }
                map.end()
            }
        }
    }
}

/// Compact JSON, as `serde_json::Value` displays.
impl fmt::Display for PatchValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Serializing fails only for maps with non-string keys or a failing `Serialize`; neither here.
        let json = serde_json::to_string(self).map_err(|_| fmt::Error)?;
        f.write_str(&json)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn values() -> impl Strategy<Value = PatchValue> {
        let leaf = prop_oneof![
            any::<String>().prop_map(PatchValue::String),
            any::<i64>().prop_map(PatchValue::Integer),
            any::<bool>().prop_map(PatchValue::Bool),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(PatchValue::Array),
                prop::collection::btree_map("[a-zA-Z/~\"]{0,6}", inner, 0..4).prop_map(|members| {
                    PatchValue::Object(
                        members
                            .into_iter()
                            .map(|(key, value)| (Cow::Owned(key), value))
                            .collect(),
                    )
                }),
            ]
        })
    }

    proptest! {
        /// Serialized and displayed, it is the JSON serde_json writes for the equivalent
        /// `serde_json::Value`, members in the order they were added.
        #[test]
        fn serializes_as_the_equivalent_json_value(value in values()) {
            let tree = value.to_json();
            let expected = serde_json::to_string(&tree).expect("JSON");
            prop_assert_eq!(serde_json::to_string(&value).expect("JSON"), expected.clone());
            prop_assert_eq!(serde_json::to_value(&value).expect("JSON"), tree);
            prop_assert_eq!(value.to_string(), expected);
        }
    }

    #[test]
    fn objects_keep_their_order_and_replace_by_key() {
        let mut probe = PatchValue::object([
            ("tcpSocket", PatchValue::object([("port", 8000.into())])),
            ("periodSeconds", 10.into()),
        ]);
        probe.insert(Cow::Borrowed("periodSeconds"), 5.into());
        probe.insert(Cow::Borrowed("failureThreshold"), 3.into());
        assert_eq!(
            probe.to_json(),
            json!({"tcpSocket": {"port": 8000}, "periodSeconds": 5, "failureThreshold": 3})
        );
        let keys: Vec<&str> = match &probe {
            PatchValue::Object(members) => members.iter().map(|(key, _)| key.as_ref()).collect(),
            _ => Vec::new(),
        };
        assert_eq!(keys, ["tcpSocket", "periodSeconds", "failureThreshold"]);
        assert_eq!(
            probe.get("tcpSocket").and_then(|h| h.get("port")),
            Some(&8000.into())
        );
        let mut list = PatchValue::from(vec!["a".to_string(), "b".to_string()]);
        assert_eq!(list.child_mut("1"), Some(&mut "b".into()));
        assert_eq!(list.child_mut("2"), None);
    }
}
