//! Golden fixtures for the engine: each directory under `tests/golden/` holds an input Pod
//! (`pod.yaml`), optionally a policy overlay (`policy.yaml`) and a context (`context.yaml`), and the
//! expected result (`expected.yaml`: the plan, the patch and the mutated Pod).
//!
//! `PYTUNE_BLESS=1 cargo test --test golden` rewrites the expected files; review the diff.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::{Value, json};

use pytune::core::engine::{self, Context, KubeVersion};
use pytune::core::policy::Policy;

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ContextFile {
    kubernetes_version: Option<String>,
    #[serde(default)]
    config_maps: BTreeMap<String, BTreeSet<String>>,
}

fn read_yaml(path: &Path) -> Option<Value> {
    let text = std::fs::read_to_string(path).ok()?;
    Some(serde_saphyr::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", path.display())))
}

fn case_dirs() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(&root)
        .expect("tests/golden exists")
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.join("pod.yaml").is_file())
        .collect();
    dirs.sort();
    dirs
}

fn run_case(dir: &Path) -> Result<(), String> {
    let pod = read_yaml(&dir.join("pod.yaml")).expect("pod.yaml");
    let policy = match std::fs::read_to_string(dir.join("policy.yaml")) {
        Ok(text) => Policy::from_yaml(&text).map_err(|err| format!("policy.yaml: {err}"))?,
        Err(_) => Policy::embedded(),
    };
    let context: ContextFile = read_yaml(&dir.join("context.yaml"))
        .map(|value| serde_json::from_value(value).expect("context.yaml fields"))
        .unwrap_or_default();
    let ctx = Context {
        kubernetes_version: context
            .kubernetes_version
            .as_deref()
            .map(|text| KubeVersion::parse(text).expect("context kubernetesVersion")),
        config_map_keys: context.config_maps,
        ..Context::default()
    };

    let plan = engine::plan(&pod, &policy, &ctx).map_err(|err| err.to_string())?;
    let mut mutated = pod.clone();
    json_patch::patch(&mut mutated, &plan.json_patch())
        .map_err(|err| format!("patch fails: {err}"))?;

    // Every golden case is also an idempotence check: the engine on its own output adds nothing.
    let again = engine::plan(&mutated, &policy, &ctx).map_err(|err| err.to_string())?;
    if !again.is_empty() {
        return Err(format!(
            "second run is not a no-op: {:?}",
            again.change_summaries()
        ));
    }
    for warning in plan.warning_texts() {
        if warning.chars().count() > engine::MAX_WARNING_CHARS {
            return Err(format!("warning longer than 120 characters: {warning}"));
        }
    }

    let mut plan_json = serde_json::to_value(&plan).expect("plan serializes");
    // The record annotation is long and repeats the reasons; the patch and pod below show it.
    if let Some(changes) = plan_json.get_mut("changes").and_then(Value::as_array_mut) {
        changes.retain(|change| change["feature"] != "record");
    }
    let actual = json!({
        "plan": plan_json,
        "warnings": plan.warning_texts(),
        "patch": serde_json::to_value(plan.json_patch()).expect("patch serializes"),
        "pod": mutated,
    });
    let actual_yaml = serde_saphyr::to_string(&actual).expect("render yaml");
    let expected_path = dir.join("expected.yaml");
    if std::env::var_os("PYTUNE_BLESS").is_some() {
        std::fs::write(&expected_path, &actual_yaml).expect("write expected.yaml");
        return Ok(());
    }
    let expected = read_yaml(&expected_path).ok_or_else(|| {
        "expected.yaml missing: run with PYTUNE_BLESS=1 and review it".to_string()
    })?;
    if expected != actual {
        let scratch = dir.join("actual.yaml.new");
        let _ = std::fs::write(&scratch, &actual_yaml);
        return Err(format!(
            "result differs from expected.yaml (actual written to {})",
            scratch.display()
        ));
    }
    Ok(())
}

#[test]
fn golden_cases() {
    let dirs = case_dirs();
    assert!(
        dirs.len() >= 15,
        "golden cases missing: found {}",
        dirs.len()
    );
    let failures: Vec<String> = dirs
        .iter()
        .filter_map(|dir| {
            run_case(dir).err().map(|err| {
                format!(
                    "{}: {err}",
                    dir.file_name().unwrap_or_default().to_string_lossy()
                )
            })
        })
        .collect();
    assert!(
        failures.is_empty(),
        "golden failures:\n{}",
        failures.join("\n")
    );
}
