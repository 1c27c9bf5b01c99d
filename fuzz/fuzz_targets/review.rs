//! Any bytes as an AdmissionReview body: answered or rejected, never a panic; see tests/checks/mod.rs.
#![no_main]

#[path = "../../tests/checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(broken) = checks::review_bytes(data) {
        panic!("{broken}");
    }
});
