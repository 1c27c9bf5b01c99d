//! The engine on the Pods the API server really sends: a defaulted Pod CREATE (shared fixture) and a
//! large Pod (four containers, long env). Target: well under 20 µs per review on 2 cores, including
//! JSON decode of the review and encode of the patch (the full path is in the server's benchmark).

/// The allocator the `pytune` binary uses, so the figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod bodies;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::Value;

use pytune::core::engine::{self, Context, KubeVersion};
use pytune::core::policy::Policy;

fn fixture_pod() -> Value {
    bodies::object(&bodies::web_service(bodies::fixture(
        "pod-create-review.json",
    )))
}

fn large_pod() -> Value {
    bodies::object(&bodies::large(bodies::fixture("pod-create-review.json")))
}

fn bench(c: &mut Criterion) {
    let policy = Policy::embedded();
    let ctx = Context {
        kubernetes_version: Some(KubeVersion::new(1, 36)),
        ..Context::default()
    };
    for (name, pod) in [("fixture pod", fixture_pod()), ("large pod", large_pod())] {
        let text = serde_json::to_vec(&pod).expect("encode");
        c.bench_function(&format!("plan {name}"), |b| {
            b.iter(|| engine::plan(&pod, &policy, &ctx).expect("plan"))
        });
        c.bench_function(&format!("decode + plan + encode {name}"), |b| {
            b.iter(|| {
                let pod: Value = serde_json::from_slice(&text).expect("decode");
                let plan = engine::plan(&pod, &policy, &ctx).expect("plan");
                serde_json::to_vec(&plan.json_patch()).expect("encode")
            })
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches, parts);

fn bench_parts(c: &mut Criterion) {
    let pod = fixture_pod();
    c.bench_function("typed decode fixture pod", |b| {
        b.iter(|| {
            <k8s_openapi::api::core::v1::Pod as serde::Deserialize>::deserialize(&pod).expect("pod")
        })
    });
}

criterion_group!(parts, bench_parts);
