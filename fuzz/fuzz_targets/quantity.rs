//! Any text as a CPU and a memory quantity: both readings agree, never a panic.
#![no_main]

#[path = "../../tests/checks/mod.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    if let Err(broken) = checks::quantity_bytes(data) {
        panic!("{broken}");
    }
});
