//! What pytune sends back for each benchmark body: the patch's operations and JSON bytes, the
//! `pytune.io/injected` record it writes, and the whole answer body. Every byte of the patch is
//! decoded, applied and validated by the API server, and the record is stored with the Pod and sent
//! on every read, so these sizes are part of what a review costs the cluster. Deterministic: the
//! embedded policy, no cluster version, the fixtures as they are.
//!
//!   cargo bench --bench answer_size

mod bodies;

use pytune::core::engine::record::RECORD_BUDGET;
use pytune::core::engine::{Context, Mode, annotations};
use pytune::core::policy::Policy;
use pytune::webhook::review;
use serde_json::Value;

/// Sizes of one answer.
struct Sizes {
    request: usize,
    operations: usize,
    patch: usize,
    record: usize,
    answer: usize,
}

fn sizes(body: &[u8], policy: &Policy, ctx: &Context) -> Sizes {
    let outcome =
        review::review(body, policy, ctx, Mode::Enforce).expect("the benchmark bodies are reviews");
    let answer = outcome.to_json().expect("the answer serializes").len();
    let Some(patch) = outcome.response.patch_bytes() else {
        return Sizes {
            request: body.len(),
            operations: 0,
            patch: 0,
            record: 0,
            answer,
        };
    };
    let operations: json_patch::Patch = serde_json::from_slice(patch).expect("a JSON Patch");
    // The record as it ends up on the Pod, wherever in the patch it was written.
    let review: Value = serde_json::from_slice(body).expect("JSON");
    let mut pod = review["request"]["object"].clone();
    json_patch::patch(&mut pod, &operations).expect("the patch applies");
    let record = pod["metadata"]["annotations"][annotations::INJECTED]
        .as_str()
        .map_or(0, str::len);
    Sizes {
        request: body.len(),
        operations: operations.len(),
        patch: patch.len(),
        record,
        answer,
    }
}

fn main() {
    let policy = Policy::embedded();
    let ctx = Context::default();
    println!(
        "| body | request bytes | patch operations | patch bytes | record bytes | answer bytes |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for (name, body) in bodies::all() {
        let sizes = sizes(&body, &policy, &ctx);
        assert!(
            sizes.record <= RECORD_BUDGET,
            "{name}: the record is over its budget"
        );
        println!(
            "| `{name}` | {} | {} | {} | {} | {} |",
            sizes.request, sizes.operations, sizes.patch, sizes.record, sizes.answer
        );
    }
}
