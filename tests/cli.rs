//! The `pytune` binary as users run it: `mutate` over the examples, stdin, broken input, policy.

use std::path::Path;
use std::process::Output;

mod common;
use common::pytune_within;

use serde_json::Value;

fn pytune(args: &[&str], stdin: Option<&str>) -> Output {
    pytune_within(args, stdin.unwrap_or(""), 120)
}

fn documents(yaml: &str) -> Vec<Value> {
    pytune::cli::manifests::split_documents(yaml)
        .into_iter()
        .filter_map(|doc| doc.parsed.expect("output is valid YAML"))
        .collect()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn mutate_examples_directory() {
    let output = pytune(&["mutate", "examples/"], None);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "stderr: {stderr}");

    // Every input document comes out, in order (files sorted by name).
    let mut input_docs = Vec::new();
    let mut names: Vec<_> =
        std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples"))
            .expect("examples/")
            .flatten()
            .map(|e| e.path())
            .collect();
    names.sort();
    for name in &names {
        let input = std::fs::read_to_string(name).expect("read example");
        input_docs.extend(documents(&input));
    }
    let output_docs = documents(&stdout);
    assert_eq!(output_docs.len(), input_docs.len());
    for (before, after) in input_docs.iter().zip(&output_docs) {
        assert_eq!(before["kind"], after["kind"]);
        assert_eq!(before["metadata"]["name"], after["metadata"]["name"]);
    }

    // The Service passes through byte for byte, comments and all.
    let django = std::fs::read_to_string("examples/django-gunicorn.yaml").expect("example");
    let service = &django[django
        .find("apiVersion: v1\nkind: Service")
        .expect("service")..];
    assert!(stdout.contains(service), "Service document changed");

    // Python workloads carry the record; the opted-out one is untouched.
    for doc in &output_docs {
        if doc["kind"] != "Deployment" {
            continue;
        }
        let template_annotations = &doc["spec"]["template"]["metadata"]["annotations"];
        match doc["metadata"]["name"].as_str() {
            Some("ml-inference") => {
                assert!(template_annotations.get("pytune.io/injected").is_none());
                assert_eq!(
                    doc,
                    &input_docs[output_docs.iter().position(|d| d == doc).expect("doc")]
                );
            }
            Some("shop-web") | Some("pricing-api") | Some("shop-worker") => {
                assert!(
                    template_annotations["pytune.io/injected"].is_string(),
                    "{doc}"
                );
            }
            _ => {}
        }
    }
    let web = output_docs
        .iter()
        .find(|d| d["kind"] == "Deployment" && d["metadata"]["name"] == "shop-web")
        .expect("shop-web");
    let containers = web["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    assert!(containers[0]["startupProbe"]["httpGet"]["path"] == "/healthz/");
    assert!(
        containers[1].get("env").is_none(),
        "sidecar was changed: {}",
        containers[1]
    );

    // The summary explains each change.
    assert!(stderr.contains("Deployment/shop-web"), "{stderr}");
    assert!(stderr.contains("+ web startupProbe"), "{stderr}");
    assert!(
        stderr.contains("skipped (annotation pytune.io/mode=off)"),
        "{stderr}"
    );
    assert!(stderr.contains("0 error(s)"), "{stderr}");
}

#[test]
fn mutate_is_idempotent_through_the_cli() {
    let first = pytune(&["mutate", "--quiet", "examples/"], None);
    assert!(first.status.success());
    let second = pytune(&["mutate", "-"], Some(&text(&first.stdout)));
    assert!(second.status.success());
    assert_eq!(
        documents(&text(&first.stdout)),
        documents(&text(&second.stdout))
    );
    assert!(
        text(&second.stderr).contains("pytune: 0 changed"),
        "{}",
        text(&second.stderr)
    );
}

#[test]
fn broken_document_is_named_and_the_rest_still_mutated() {
    let input = "apiVersion: v1\nkind: Pod\nmetadata: {name: a, labels: {pytune.io/runtime: python}}\nspec: {containers: [{name: app, image: python}]}\n---\nkind: [oops\n---\nkind: ConfigMap\nmetadata: {name: c}\n";
    let output = pytune(&["mutate", "-"], Some(input));
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("- document 1: not valid YAML"), "{stderr}");
    assert!(
        stdout.contains("kind: [oops\n"),
        "broken document lost: {stdout}"
    );
    assert!(stdout.contains("pytune.io/injected"), "{stdout}");
    assert!(
        stdout.ends_with("kind: ConfigMap\nmetadata: {name: c}\n"),
        "{stdout}"
    );
}

#[test]
fn kubernetes_version_picks_the_native_sleep() {
    let output = pytune(
        &[
            "mutate",
            "--quiet",
            "--kubernetes-version",
            "1.31",
            "examples/django-gunicorn.yaml",
        ],
        None,
    );
    assert!(output.status.success());
    let deployment = &documents(&text(&output.stdout))[0];
    let web = &deployment["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(web["name"], "web");
    assert_eq!(web["lifecycle"]["preStop"]["sleep"]["seconds"], 5);
}

#[test]
fn bad_policy_file_is_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("pytune-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let policy = dir.join("policy.yaml");
    std::fs::write(&policy, "probes:\n  startup: { periodSecnds: 5 }\n").expect("write policy");
    let output = pytune(
        &[
            "mutate",
            "--policy",
            policy.to_str().expect("utf-8 path"),
            "examples/",
        ],
        None,
    );
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr.contains("invalid policy file"), "{stderr}");
    assert!(stderr.contains("probes.startup"), "{stderr}");
    assert!(output.stdout.is_empty());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn missing_file_is_reported_and_others_processed() {
    let output = pytune(
        &[
            "mutate",
            "--quiet",
            "no-such.yaml",
            "examples/bare-pod.yaml",
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output.stderr).contains("cannot read no-such.yaml"));
    assert!(text(&output.stdout).contains("feed-consumer"));
}

#[test]
fn policy_command_prints_the_effective_policy() {
    let output = pytune(&["policy"], None);
    assert!(output.status.success());
    let stdout = text(&output.stdout);
    assert!(stdout.starts_with("# revision: "), "{stdout}");
    let policy: Value = serde_saphyr::from_str(&stdout).expect("policy YAML");
    assert_eq!(policy["selector"]["label"], "pytune.io/runtime");
}

#[test]
fn docs_apps_table_is_the_catalog() {
    let output = pytune(&["catalog", "--output", "markdown"], None);
    assert!(output.status.success());
    let table = text(&output.stdout);
    let doc = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/apps.md"))
        .expect("docs/apps.md");
    let section = doc
        .split("<!-- catalog-table:start -->\n")
        .nth(1)
        .and_then(|rest| rest.split("<!-- catalog-table:end -->").next())
        .expect("docs/apps.md has the catalog table markers");
    assert!(
        section == table,
        "docs/apps.md's table is stale: regenerate it with `pytune catalog -o markdown`"
    );
}

#[test]
fn explain_gives_the_reasons_of_what_mutate_added() {
    let mutated = pytune(
        &["mutate", "--quiet", "examples/django-gunicorn.yaml"],
        None,
    );
    assert!(mutated.status.success());
    let output = pytune(
        &["explain", "--output", "json", "-"],
        Some(&text(&mutated.stdout)),
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let report: Value = serde_json::from_str(&text(&output.stdout)).expect("JSON");
    let pod = &report["pods"][0];
    assert_eq!(pod["workload"], "Deployment/shop-web");
    assert_eq!(
        pod["wouldAdd"],
        serde_json::json!([]),
        "nothing left to add"
    );
    let earlier = pod["addedEarlier"]["values"]
        .as_array()
        .expect("recorded values");
    let concurrency = earlier
        .iter()
        .find(|value| value["field"] == "env.WEB_CONCURRENCY")
        .expect("WEB_CONCURRENCY was recorded");
    assert_eq!(concurrency["container"], "web");
    assert!(
        concurrency["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("gunicorn sync")),
        "{concurrency}"
    );
    assert_eq!(report["errors"], serde_json::json!([]));
}

/// A chart as `helm template` renders it: the workload with the Secret and ConfigMap its envFrom
/// names. Their keys are read (never their values), so the app's own knob can be set when no
/// source defines it, and is left alone when one does.
#[test]
fn envfrom_sources_in_the_input_are_read() {
    let deployment = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: mlflow}
spec:
  template:
    metadata: {labels: {pytune.io/runtime: python}}
    spec:
      containers:
        - name: mlflow
          image: burakince/mlflow:3.1.0
          command: [mlflow]
          args: [server, --host=0.0.0.0, --port=5000]
          envFrom:
            - configMapRef: {name: mlflow-env-configmap}
            - secretRef: {name: mlflow-env-secret}
"#;
    let config_map = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: mlflow-env-configmap}\ndata: {MLFLOW_DEFAULT_ARTIFACT_ROOT: ./mlruns}\n";
    let secret = |keys: &str| {
        format!(
            "apiVersion: v1\nkind: Secret\nmetadata: {{name: mlflow-env-secret}}\nstringData: {{{keys}}}\n"
        )
    };
    let knob_added = |input: &str| {
        let output = pytune(&["audit", "-o", "json", "-"], Some(input));
        let report: Value = serde_json::from_slice(&output.stdout).expect("audit JSON");
        let changes = report["workloads"][0]["changes"]
            .as_array()
            .expect("changes")
            .clone();
        changes.iter().any(|c| c["field"] == "env.MLFLOW_WORKERS")
    };

    let known = format!(
        "{deployment}---\n{config_map}---\n{}",
        secret("PGPASSWORD: x")
    );
    assert!(
        knob_added(&known),
        "every source is known and none sets MLFLOW_WORKERS"
    );

    let user_set = format!(
        "{deployment}---\n{config_map}---\n{}",
        secret("MLFLOW_WORKERS: '8'")
    );
    assert!(
        !knob_added(&user_set),
        "the Secret sets MLFLOW_WORKERS: never overridden"
    );

    // A Secret not in the input may set it. At admission pytune's count is a default: its value,
    // then an optional reference to the Secret's key, so the Secret's value wins where it has one;
    // the known ConfigMap needs no reference. That is what `audit` reports.
    let secret_missing = format!("{deployment}---\n{config_map}");
    let output = pytune(&["audit", "-o", "json", "-"], Some(&secret_missing));
    let report: Value = serde_json::from_slice(&output.stdout).expect("audit JSON");
    let knob: Vec<Value> = report["workloads"][0]["changes"]
        .as_array()
        .expect("changes")
        .iter()
        .filter(|c| c["field"] == "env.MLFLOW_WORKERS")
        .cloned()
        .collect();
    assert_eq!(knob.len(), 2, "{knob:?}");
    assert!(
        knob[0]["value"].is_string(),
        "pytune's value first: {knob:?}"
    );
    assert_eq!(
        knob[1]["value"],
        serde_json::json!({"secretKeyRef": {"name": "mlflow-env-secret", "key": "MLFLOW_WORKERS", "optional": true}}),
        "then the Secret's key, applied last by the kubelet"
    );
    // `mutate` writes manifests to apply, where one name twice in `env` is refused by
    // server-side apply: it leaves the count out and says the webhook sets it.
    let output = pytune(&["mutate", "-"], Some(&secret_missing));
    assert!(output.status.success(), "mutate: {output:?}");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(!text.contains("MLFLOW_WORKERS"), "{text}");
}

#[test]
fn a_document_on_the_separator_line_is_kept() {
    let input = "--- {\"apiVersion\":\"v1\",\"kind\":\"ConfigMap\",\"metadata\":{\"name\":\"cm\"}}\n\
                 --- {apiVersion: v1, kind: Pod, metadata: {name: p}, spec: {containers: [{name: app, image: python:3.12}]}}\n";
    let output = pytune(&["mutate", "-"], Some(input));
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "stderr: {stderr}");
    let docs = documents(&stdout);
    assert_eq!(docs.len(), 2, "stdout: {stdout}");
    assert_eq!(docs[0]["metadata"]["name"], "cm");
    assert_eq!(docs[1]["metadata"]["name"], "p");
    assert!(stderr.contains("Pod/p"), "stderr: {stderr}");
}

#[test]
fn directives_stay_with_their_document() {
    let input = "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: before}\n\
                 ---\n%YAML 1.2\n---\n\
                 apiVersion: v1\nkind: Pod\nmetadata: {name: p}\n\
                 spec: {containers: [{name: app, image: python:3.12}]}\n\
                 ...\n%YAML 1.2\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: after}\n";
    let output = pytune(&["mutate", "-"], Some(input));
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "stderr: {stderr}");
    let docs = documents(&stdout);
    let names: Vec<_> = docs.iter().map(|d| d["metadata"]["name"].clone()).collect();
    assert_eq!(names, ["before", "p", "after"], "stdout: {stdout}");
    // Each directive opens its document after a document end, as YAML requires, and the
    // untouched document keeps its directive.
    assert!(
        stdout.contains(
            "...\n%YAML 1.2\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: after}\n"
        ),
        "stdout: {stdout}"
    );
    assert!(!stdout.contains("---\n%YAML"), "stdout: {stdout}");
    assert_eq!(
        stdout.matches("%YAML 1.2\n---\n").count(),
        2,
        "stdout: {stdout}"
    );
}

#[test]
fn symlink_loops_are_read_once_and_reported() {
    let dir = tempfile::tempdir().expect("temp dir");
    let root = dir.path().join("manifests");
    std::fs::create_dir_all(root.join("sub")).expect("mkdir");
    std::fs::copy("examples/bare-pod.yaml", root.join("pod.yaml")).expect("copy");
    std::os::unix::fs::symlink(".", root.join("self")).expect("symlink");
    std::os::unix::fs::symlink("..", root.join("sub/up")).expect("symlink");
    let root_arg = root.to_str().expect("utf-8 temp path");
    let output = pytune_within(&["mutate", root_arg], "", 20);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert!(output.status.success(), "stderr: {stderr}");
    assert_eq!(documents(&stdout).len(), 1, "stderr: {stderr}");
    assert!(
        stderr.contains("skipped") && stderr.contains("self"),
        "{stderr}"
    );
    assert!(stderr.contains("up"), "{stderr}");
}

#[test]
fn non_utf8_documents_are_reported_and_the_others_kept() {
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("mixed.yaml");
    let mut bytes = b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: cm}\n---\n".to_vec();
    // Latin-1, not UTF-8.
    bytes.extend(
        b"apiVersion: v1\nkind: ConfigMap\nmetadata: {name: latin1}\ndata: {x: caf\xe9}\n---\n",
    );
    bytes.extend(std::fs::read("examples/bare-pod.yaml").expect("example"));
    std::fs::write(&file, &bytes).expect("write");
    let path = file.to_str().expect("utf-8 temp path");

    let output = pytune(&["mutate", path], None);
    let (stdout, stderr) = (text(&output.stdout), text(&output.stderr));
    assert_eq!(output.status.code(), Some(1), "stderr: {stderr}");
    let names: Vec<_> = documents(&stdout)
        .iter()
        .map(|d| d["metadata"]["name"].clone())
        .collect();
    assert_eq!(names, ["cm", "feed-consumer"], "stdout: {stdout}");
    assert!(
        stderr.contains("mixed.yaml document 1") && stderr.contains("UTF-8"),
        "{stderr}"
    );
    assert!(
        stderr.contains("1 changed") && stderr.contains("1 error(s)"),
        "{stderr}"
    );

    // audit: the errors list, the summary and the exit code agree, read errors included.
    let output = pytune(&["audit", "-o", "json", path, "no-such.yaml"], None);
    assert_eq!(output.status.code(), Some(1));
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    let errors = report["errors"].as_array().expect("errors");
    assert_eq!(errors.len(), 2, "{report:#}");
    assert_eq!(report["summary"]["errors"], 2, "{report:#}");
    assert_eq!(report["summary"]["workloads"], 1, "{report:#}");

    let output = pytune(&["audit", path, "no-such.yaml"], None);
    assert_eq!(output.status.code(), Some(1));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("2 error(s)"), "{stdout}");
    assert!(stdout.contains("Pod/feed-consumer"), "{stdout}");
}
