//! The fuzz targets' smoke test, on stable: every seed (`fuzz/seeds/<target>/`) and every input
//! a fuzzer ever failed on (`fuzz/regressions/<target>/`) goes through the same check as its
//! target (`tests/checks/`), and a short property test feeds each check random bytes and seeds
//! with random edits. The long runs use `cargo +nightly fuzz run <target>` (docs/reliability.md).

use std::path::{Path, PathBuf};

use proptest::prelude::*;

mod checks;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The files of `fuzz/<kind>/<target>/`, sorted.
fn inputs(kind: &str, target: &str) -> Vec<PathBuf> {
    let dir = fuzz_dir().join(kind).join(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| entries.flatten().map(|entry| entry.path()).collect())
        .unwrap_or_default();
    files.retain(|path| path.is_file());
    files.sort();
    files
}

fn check(target: &str) -> checks::Check {
    checks::TARGETS
        .iter()
        .find(|(name, _)| *name == target)
        .map(|(_, check)| *check)
        .unwrap_or_else(|| panic!("no fuzz target {target}"))
}

/// Replays `fuzz/<kind>/<target>/*`; returns how many inputs there were.
fn replay(kind: &str, target: &str) -> usize {
    let files = inputs(kind, target);
    for file in &files {
        let bytes = std::fs::read(file).unwrap_or_else(|err| panic!("{}: {err}", file.display()));
        if let Err(broken) = check(target)(&bytes) {
            panic!("{}: {broken}", file.display());
        }
    }
    files.len()
}

#[test]
fn every_target_has_a_check_and_seeds() {
    let mut dirs: Vec<String> = std::fs::read_dir(fuzz_dir().join("fuzz_targets"))
        .expect("fuzz/fuzz_targets")
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().to_string_lossy().into_owned();
            name.strip_suffix(".rs").map(str::to_string)
        })
        .collect();
    dirs.sort();
    let mut names: Vec<String> = checks::TARGETS
        .iter()
        .map(|(name, _)| name.to_string())
        .collect();
    names.sort();
    assert_eq!(
        dirs, names,
        "fuzz/fuzz_targets/*.rs and checks::TARGETS differ"
    );
    for (name, _) in checks::TARGETS {
        assert!(
            !inputs("seeds", name).is_empty(),
            "no seeds in fuzz/seeds/{name}"
        );
    }
}

#[test]
fn review_seeds_and_regressions() {
    replay("seeds", "review");
    replay("regressions", "review");
}

#[test]
fn pod_seeds_and_regressions() {
    replay("seeds", "pod");
    replay("regressions", "pod");
}

#[test]
fn manifests_seeds_and_regressions() {
    replay("seeds", "manifests");
    replay("regressions", "manifests");
}

#[test]
fn quantity_seeds_and_regressions() {
    replay("seeds", "quantity");
    replay("regressions", "quantity");
}

#[test]
fn policy_seeds_and_regressions() {
    replay("seeds", "policy");
    replay("regressions", "policy");
}

/// A seed of `target` (picked by `which`) with random edits: bytes replaced, inserted, removed.
fn edited(target: &str, which: usize, edits: &[(usize, u8, u8)]) -> Vec<u8> {
    let seeds = inputs("seeds", target);
    let mut bytes = seeds
        .get(which % seeds.len().max(1))
        .and_then(|path| std::fs::read(path).ok())
        .unwrap_or_default();
    for &(at, op, byte) in edits {
        let at = if bytes.is_empty() {
            0
        } else {
            at % bytes.len()
        };
        match op % 3 {
            0 if at < bytes.len() => bytes[at] = byte,
            1 => bytes.insert(at, byte),
            _ if at < bytes.len() => {
                bytes.remove(at);
            }
            _ => bytes.push(byte),
        }
    }
    bytes
}

fn edits() -> impl Strategy<Value = Vec<(usize, u8, u8)>> {
    prop::collection::vec(any::<(usize, u8, u8)>(), 0..6)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn random_bytes(target in 0..checks::TARGETS.len(), bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let (name, check) = checks::TARGETS[target];
        check(&bytes).map_err(|broken| TestCaseError::fail(format!("{name}: {broken}")))?;
    }

    #[test]
    fn edited_seeds(target in 0..checks::TARGETS.len(), which in any::<usize>(), edits in edits()) {
        let (name, check) = checks::TARGETS[target];
        let bytes = edited(name, which, &edits);
        check(&bytes).map_err(|broken| TestCaseError::fail(format!("{name}: {broken}")))?;
    }
}
