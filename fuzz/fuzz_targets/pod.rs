//! A Pod generated from the bytes, planned by the engine and answered as a review, keeping the engine's invariants.
#![no_main]

#[path = "../../tests/checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(broken) = checks::pod_bytes(data) {
        panic!("{broken}");
    }
});
