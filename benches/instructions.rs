//! Runs `review::review` (and encodes the answer) a given number of times on each benchmark
//! body, for counting instructions under callgrind: deterministic, where wall-clock time on a
//! shared machine is not. `benches/instructions.sh` runs it and prints instructions per review.
//!
//!   instructions ITERATIONS [BODY] [scan]
//!
//! With `scan`, it only has serde_json scan the body, building nothing: the floor under any
//! decoder built on serde_json.

/// The allocator the `pytune` binary uses, so the counts are the server's.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod bodies;

use std::hint::black_box;

use pytune::core::engine::{Context, Mode};
use pytune::core::policy::Policy;
use pytune::webhook::review;

fn main() {
    let mut args = std::env::args().skip(1);
    // Without a count (as when `cargo test --all-targets` runs it), one pass checks it works.
    let iterations: usize = args.next().and_then(|n| n.parse().ok()).unwrap_or(1);
    let only = args.next();
    let scan_only = args.next().as_deref() == Some("scan");
    let policy = Policy::embedded();
    let ctx = Context::default();
    for (name, body) in bodies::all() {
        if only.as_deref().is_some_and(|only| only != name) {
            continue;
        }
        for _ in 0..iterations {
            if scan_only {
                serde_json::from_slice::<serde::de::IgnoredAny>(black_box(&body))
                    .expect("the benchmark bodies are JSON");
                continue;
            }
            let outcome = review::review(black_box(&body), &policy, &ctx, Mode::Enforce)
                .expect("the benchmark bodies are reviews");
            black_box(outcome.to_json().expect("the answer serializes"));
        }
    }
}
