//! Any bytes as a `pytune mutate` input: every document kept or reported, untouched ones byte for byte, a second run changes nothing.
#![no_main]

#[path = "../../tests/checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(broken) = checks::manifest_bytes(data) {
        panic!("{broken}");
    }
});
