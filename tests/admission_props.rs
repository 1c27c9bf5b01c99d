//! Whatever the body, `review::review` answers or rejects; it never panics, and every answer
//! allows the Pod and carries the request's uid. The checks are `tests/checks/`'s `answer`, shared
//! with the fuzz targets.

use proptest::prelude::*;
use pytune::core::engine::{Context, Mode};
use pytune::webhook::review;
use serde_json::Value;

mod checks;

fn fixture() -> Value {
    let text = include_str!("fixtures/apiserver-v1.36/pod-create-review.json");
    let mut review: Value = serde_json::from_str(text).expect("fixture");
    review["request"]["object"]["metadata"]["labels"]["pytune.io/runtime"] = "python".into();
    review
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "[a-z0-9/._-]{0,12}".prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map("[a-zA-Z]{1,10}", inner, 0..4)
                .prop_map(|map| Value::Object(map.into_iter().collect())),
        ]
    })
}

/// JSON pointers into the fixture that an odd value may replace.
const PLACES: &[&str] = &[
    "/request/object",
    "/request/object/metadata",
    "/request/object/metadata/labels",
    "/request/object/metadata/annotations",
    "/request/object/spec",
    "/request/object/spec/containers",
    "/request/object/spec/containers/0",
    "/request/object/spec/containers/0/resources",
    "/request/object/spec/containers/0/env",
    "/request/object/spec/containers/0/ports",
    "/request/object/spec/terminationGracePeriodSeconds",
    "/request/kind",
    "/request/operation",
    "/request/dryRun",
    "/request/namespace",
    "/request/userInfo",
    "/request/options",
];

/// Answers `body` with the embedded policy; the invariants are `checks::answer`'s.
fn check(body: &[u8], expected_uid: Option<&str>) {
    let policy = &*checks::POLICY;
    if let Err(broken) = checks::answer(body, policy, &Context::default()) {
        panic!("{broken}");
    }
    if let Some(uid) = expected_uid {
        let outcome = review::review(body, policy, &Context::default(), Mode::Enforce)
            .expect("a review with a uid is answered");
        assert_eq!(outcome.response.uid, uid);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn arbitrary_bytes_never_panic(body in prop::collection::vec(any::<u8>(), 0..256)) {
        check(&body, None);
    }

    #[test]
    fn odd_values_anywhere_are_answered_with_the_uid(
        place in prop::sample::select(PLACES),
        value in json_value(),
    ) {
        let mut review = fixture();
        if let Some(slot) = review.pointer_mut(place) {
            *slot = value;
        }
        let body = serde_json::to_vec(&review).expect("JSON");
        check(&body, Some("936b7fbd-aa7f-4c7b-9350-aaf4d8e29331"));
    }

    #[test]
    fn patches_apply_to_the_object_they_were_made_for(
        name in "[a-z]{1,8}",
        port in 1i32..65535,
        cpu in prop::option::of("[1-9][0-9]{0,3}m"),
    ) {
        let mut review = fixture();
        review["request"]["object"]["spec"]["containers"][0]["name"] = name.into();
        review["request"]["object"]["spec"]["containers"][0]["ports"] =
            serde_json::json!([{"containerPort": port}]);
        if let Some(cpu) = cpu {
            review["request"]["object"]["spec"]["containers"][0]["resources"] =
                serde_json::json!({"requests": {"cpu": cpu}});
        }
        let body = serde_json::to_vec(&review).expect("JSON");
        let outcome = review::review(&body, &checks::POLICY, &Context::default(), Mode::Enforce)
            .expect("answered");
        let patch: json_patch::Patch =
            serde_json::from_slice(outcome.response.patch_bytes().unwrap_or(b"[]")).expect("patch");
        let mut object = review["request"]["object"].clone();
        json_patch::patch(&mut object, &patch).expect("the patch applies");
    }
}
