//! Any text as a policy file: loading never panics, and a policy that loads keeps the engine's invariants.
#![no_main]

#[path = "../../tests/checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(broken) = checks::policy_bytes(data) {
        panic!("{broken}");
    }
});
