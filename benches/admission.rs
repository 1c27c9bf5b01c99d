//! Review latency: the admission layer alone over the API-server fixtures, and whole requests over
//! a warm TLS connection (HTTP/1.1 keep-alive, as the API server sends them, and HTTP/2). For
//! reference, the time serde_json takes only to scan each body, building nothing: the floor under
//! any decoder built on it.

mod bodies;
#[path = "../tests/common/mod.rs"]
mod common;

/// The allocator the `pytune` binary uses, so the figures are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use pytune::core::engine::{Context, Mode};
use pytune::core::policy::Policy;
use pytune::webhook::review;

fn admission_layer(c: &mut Criterion) {
    let policy = Policy::embedded();
    let ctx = Context::default();
    let mut group = c.benchmark_group("admission");
    for (name, body) in bodies::all() {
        group.bench_function(name, |b| {
            b.iter(|| {
                let outcome = review::review(black_box(&body), &policy, &ctx, Mode::Enforce)
                    .expect("answered");
                black_box(outcome.to_json().expect("the answer serializes"))
            })
        });
    }
    group.finish();
}

fn json_scan(c: &mut Criterion) {
    let mut group = c.benchmark_group("json-scan");
    for (name, body) in bodies::all() {
        group.bench_function(name, |b| {
            b.iter(|| {
                serde_json::from_slice::<serde::de::IgnoredAny>(black_box(&body)).expect("JSON")
            })
        });
    }
    group.finish();
}

fn over_tls(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let server = runtime.block_on(common::TestServer::start());
    let body = hyper::body::Bytes::from(common::bytes(&bodies::labeled(bodies::fixture(
        "pod-create-review.json",
    ))));
    let mut group = c.benchmark_group("https");
    for (label, alpn) in [
        ("http1.1-keepalive", &[&b"http/1.1"[..]]),
        ("h2", &[&b"h2"[..]]),
    ] {
        let mut client = runtime.block_on(server.connect(alpn));
        group.bench_function(format!("mutate/{label}"), |b| {
            b.iter(|| {
                let reply = runtime.block_on(client.post("/mutate?timeout=10s", body.clone()));
                assert_eq!(reply.status, hyper::StatusCode::OK);
                black_box(reply.body)
            })
        });
    }
    group.bench_function("mutate/new-connection", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let mut client = server.connect(&[b"http/1.1"]).await;
                black_box(client.post("/mutate?timeout=10s", body.clone()).await.body)
            })
        })
    });
    group.finish();
    runtime.block_on(server.stop());
}

criterion_group!(benches, admission_layer, json_scan, over_tls);
criterion_main!(benches);
