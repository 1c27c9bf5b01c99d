//! Golden tests of `pytune audit` in every format, through the binary, over the examples and a
//! tricky stream (a `List`, a broken document in the middle, a CronJob, helm's `# Source:` comments).
//! `PYTUNE_BLESS=1 cargo test --test audit` rewrites the expected files; review the diff.

use std::path::Path;
use std::process::Command;

fn run(args: &[&str]) -> (String, String, Option<i32>) {
    let output = Command::new(env!("CARGO_BIN_EXE_pytune"))
        .arg("audit")
        .args(["--kubernetes-version", "1.33"])
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("PYTUNE_POLICY")
        .output()
        .expect("pytune runs");
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        output.status.code(),
    )
}

fn golden(name: &str, actual: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/audit")
        .join(name);
    if std::env::var_os("PYTUNE_BLESS").is_some() {
        std::fs::write(&path, actual).expect("write golden file");
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|_| panic!("{} missing: run with PYTUNE_BLESS=1", path.display()));
    assert!(
        expected == actual,
        "{name} differs; actual:\n{actual}\n(rerun with PYTUNE_BLESS=1 to accept)"
    );
}

#[test]
fn examples_text() {
    let (stdout, _, code) = run(&["examples/"]);
    assert_eq!(code, Some(0));
    golden("examples.txt", &stdout);
}

#[test]
fn examples_json_has_the_documented_schema() {
    let (stdout, _, code) = run(&["--output", "json", "examples/"]);
    assert_eq!(code, Some(0));
    let report: serde_json::Value = serde_json::from_str(&stdout).expect("JSON report");
    assert_eq!(report["schemaVersion"], 1);
    let workloads = report["workloads"].as_array().expect("workloads");
    assert!(workloads.iter().all(|w| w["source"].is_string()
        && w["document"].is_u64()
        && w["workload"].is_string()
        && w["status"].is_string()
        && w["changes"].is_array()
        && w["warnings"].is_array()));
    let web = workloads
        .iter()
        .find(|w| w["workload"] == "Deployment/shop-web")
        .expect("shop-web");
    assert_eq!(web["status"], "would-change");
    assert_eq!(web["namespace"], "shop");
    assert_eq!(web["containers"][0]["detection"]["server"], "gunicorn");
    let concurrency = web["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .find(|c| c["field"] == "env.WEB_CONCURRENCY")
        .expect("WEB_CONCURRENCY");
    // 2×1+1 = 3 by CPU, capped to 2 by memory: 512Mi holds the arbiter and two 160Mi workers.
    assert_eq!(concurrency["value"], "2");
    assert!(
        concurrency["reason"]
            .as_str()
            .expect("reason")
            .contains("2×1+1")
    );
    assert_eq!(report["summary"]["errors"], 0);
    golden("examples.json", &stdout);
}

#[test]
fn examples_diff() {
    let (stdout, _, code) = run(&["--diff", "examples/"]);
    assert_eq!(code, Some(0));
    assert!(stdout.contains("+++ b/examples/django-gunicorn.yaml [0]"));
    assert!(
        !stdout.contains("opted-out.yaml"),
        "an unchanged manifest shows in the diff"
    );
    golden("examples.diff", &stdout);
}

#[test]
fn exit_codes() {
    assert_eq!(run(&["--exit-code", "examples/"]).2, Some(3));
    assert_eq!(run(&["--exit-code", "examples/opted-out.yaml"]).2, Some(0));
    assert_eq!(run(&["examples/opted-out.yaml", "missing.yaml"]).2, Some(1));
}

#[test]
fn tricky_stream_in_every_format() {
    let input = "tests/audit/tricky/input.yaml";
    let (text, _, code) = run(&[input]);
    assert_eq!(code, Some(1), "a broken document is an error");
    assert!(text.contains("document 1: not valid YAML"), "{text}");
    assert!(
        text.contains("StatefulSet/indexer"),
        "the List item before the error is reported"
    );
    assert!(
        text.contains("CronJob/cleanup"),
        "the document after the error is reported"
    );
    golden("tricky/expected.txt", &text);

    let (json, _, code) = run(&["--output", "json", "--exit-code", input]);
    assert_eq!(code, Some(1), "errors outrank would-change");
    let report: serde_json::Value = serde_json::from_str(&json).expect("JSON report");
    assert_eq!(report["summary"]["errors"], 1);
    golden("tricky/expected.json", &json);

    let (diff, stderr, _) = run(&["--diff", input]);
    assert!(stderr.contains("document 1: not valid YAML"), "{stderr}");
    assert!(
        diff.contains("# Source: shop/templates/cleanup.yaml"),
        "comments kept: {diff}"
    );
    golden("tricky/expected.diff", &diff);
}
