//! Golden cases of the engine, one test per directory under `tests/golden/`, named after it.
//!
//! A case is a directory holding:
//!
//! - `pod.yaml`: the Pod as the API server would send it;
//! - `policy.yaml` (optional): a policy overlay, else the embedded policy;
//! - `context.yaml` (optional): `kubernetesVersion: "1.33"`, `configMaps: {name: [keys]}`, and
//!   `learned: {now, namespace, workload: Kind/name, document}` (learned defaults, looked up at `now`);
//! - `expected.yaml`: what pytune makes of it, in this order: the `decision`; the target
//!   `containers` (name: profile (why); the server detected and its evidence); the `changes`, one
//!   line each, `<container or pod> <field> = <value>: <reason>` (long values cut, never the
//!   reason); the `notes` and `warnings` users see, when there are any; the `patch` size
//!   (`<N> operations, <B> bytes` of compact JSON); and the mutated `pod` in full.
//!
//! Every case also checks that the patch applies to the Pod; that it only adds paths the Pod lacked
//! (but for the few values the engine rewrites by design, see `checks::may_replace`); that the mutated Pod
//! still decodes as a Kubernetes `Pod`; that a second run on it adds nothing; and that every warning
//! fits the API server's limit.
//!
//! To add a case, make a directory with its `pod.yaml` (and `policy.yaml`, `context.yaml` if it
//! needs them), then write its `expected.yaml` with `PYTUNE_BLESS=1 cargo test --test golden`. The
//! same command rewrites every expected file after a deliberate change (a name after it, only the
//! matching cases); review the diff before committing.
//!
//! `cargo test --test golden server-uvicorn` runs the cases whose name contains `server-uvicorn`,
//! `-- --exact server-uvicorn` that one only; `cargo nextest run --test golden` runs each as its own
//! test too. On a mismatch the failure shows a short diff and writes the whole result to
//! `actual.yaml.new` beside the case (git-ignored).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use k8s_openapi::api::core::v1::Pod;
use libtest_mimic::{Arguments, Failed, Trial};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use pytune::core::detect::Libc;
use pytune::core::engine::{
    self, Change, Context, Decision, KubeVersion, Note, Plan, TargetContainer,
};
use pytune::core::learned::{self, LearnedDocument, LearnedValues};
use pytune::core::policy::Policy;

mod checks;

/// A displayed value longer than this (or spanning lines) is cut; the Pod shows it whole.
const MAX_VALUE_CHARS: usize = 60;
/// Lines of diff shown in a failure; `actual.yaml.new` holds the rest.
const MAX_DIFF_LINES: usize = 60;

fn main() {
    let args = Arguments::from_args();
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let cases = case_dirs(&root);
    assert!(
        cases.len() >= 15,
        "golden cases missing under {}: found {}",
        root.display(),
        cases.len()
    );
    let trials = cases
        .into_iter()
        .map(|dir| {
            let name = dir
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            Trial::test(name, move || run_case(&dir).map_err(Failed::from))
        })
        .collect();
    libtest_mimic::run(&args, trials).exit();
}

/// Every directory under `root` is a case (one without `pod.yaml` fails rather than vanish).
fn case_dirs(root: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(root)
        .unwrap_or_else(|err| panic!("{}: {err}", root.display()))
        .flatten()
        .map(|entry| entry.path())
        .filter(|path| path.is_dir())
        .collect();
    dirs.sort();
    dirs
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct ContextFile {
    kubernetes_version: Option<String>,
    #[serde(default)]
    config_maps: BTreeMap<String, BTreeSet<String>>,
    #[serde(default)]
    secrets: BTreeMap<String, BTreeSet<String>>,
    learned: Option<LearnedCase>,
}

/// Learned defaults as the webhook would find them: the stored document, the Pod's workload, and
/// the time of the review (fixed, so the case is deterministic).
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LearnedCase {
    now: String,
    namespace: String,
    /// `Deployment/web`.
    workload: String,
    document: Value,
}

fn read_yaml(path: &Path) -> Result<Option<Value>, String> {
    match std::fs::read_to_string(path) {
        Ok(text) => serde_saphyr::from_str(&text)
            .map(Some)
            .map_err(|err| format!("{}: {err}", path.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(err) => Err(format!("{}: {err}", path.display())),
    }
}

fn load_context(dir: &Path, policy: &Policy) -> Result<Context, String> {
    let context: ContextFile = match read_yaml(&dir.join("context.yaml"))? {
        Some(value) => {
            serde_json::from_value(value).map_err(|err| format!("context.yaml: {err}"))?
        }
        None => ContextFile::default(),
    };
    let kubernetes_version = match context.kubernetes_version.as_deref() {
        Some(text) => Some(
            KubeVersion::parse(text)
                .ok_or_else(|| format!("context.yaml: kubernetesVersion {text:?}"))?,
        ),
        None => None,
    };
    let learned = match &context.learned {
        Some(case) => learned_values(case, policy)?,
        None => BTreeMap::new(),
    };
    Ok(Context {
        kubernetes_version,
        config_map_keys: context.config_maps,
        secret_keys: context.secrets,
        learned,
        ..Context::default()
    })
}

/// Each container's fresh learned values, looked up as the webhook will.
fn learned_values(
    case: &LearnedCase,
    policy: &Policy,
) -> Result<BTreeMap<String, LearnedValues>, String> {
    let document = LearnedDocument::parse(&case.document.to_string())
        .map_err(|err| format!("context.yaml: {err}"))?;
    let now = learned::parse_rfc3339(&case.now)
        .ok_or_else(|| format!("context.yaml: learned.now {:?}", case.now))?;
    let (kind, name) = case
        .workload
        .split_once('/')
        .ok_or_else(|| format!("context.yaml: learned.workload {:?}", case.workload))?;
    let containers = document
        .workloads
        .iter()
        .flat_map(|w| w.containers.iter().map(|c| c.name.clone()));
    Ok(containers
        .filter_map(|container| {
            let max_age = policy.learned.max_age_seconds();
            document
                .learned_for(&case.namespace, kind, name, &container, now, max_age)
                .map(|values| (container, values))
        })
        .collect())
}

fn run_case(dir: &Path) -> Result<(), String> {
    let pod = read_yaml(&dir.join("pod.yaml"))?.ok_or("pod.yaml missing")?;
    let policy = match std::fs::read_to_string(dir.join("policy.yaml")) {
        Ok(text) => Policy::from_yaml(&text).map_err(|err| format!("policy.yaml: {err}"))?,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Policy::embedded(),
        Err(err) => return Err(format!("policy.yaml: {err}")),
    };
    let ctx = load_context(dir, &policy)?;

    let plan = engine::plan(&pod, &policy, &ctx).map_err(|err| err.to_string())?;
    let patch = plan.json_patch();
    let patch_json = serde_json::to_value(&patch).expect("patch serializes");
    only_adds_absent_paths(&pod, &patch_json)?;
    let mut mutated = pod.clone();
    json_patch::patch(&mut mutated, &patch).map_err(|err| format!("patch fails: {err}"))?;
    serde_path_to_error::deserialize::<_, Pod>(&mutated)
        .map_err(|err| format!("mutated Pod does not decode as a Pod: {err}"))?;

    // The engine on its own output adds nothing.
    let again = engine::plan(&mutated, &policy, &ctx).map_err(|err| err.to_string())?;
    if !again.is_empty() {
        return Err(format!(
            "second run is not a no-op: {:?}",
            again.change_summaries()
        ));
    }
    for warning in plan.warning_texts() {
        if warning.chars().count() > engine::MAX_WARNING_CHARS {
            return Err(format!(
                "warning longer than {} characters: {warning}",
                engine::MAX_WARNING_CHARS
            ));
        }
    }

    let actual = render(&plan, &patch_json, &mutated);
    compare(dir, &actual)
}

/// The patch changes nothing the Pod had: every operation is an `add` to a path absent from it.
fn only_adds_absent_paths(pod: &Value, patch: &Value) -> Result<(), String> {
    for operation in patch.as_array().into_iter().flatten() {
        let op = operation["op"].as_str().unwrap_or_default();
        let path = operation["path"].as_str().unwrap_or_default();
        if op != "add" {
            return Err(format!(
                "patch has a {op} operation at {path}: only add is allowed"
            ));
        }
        if let Some(old) = pod.pointer(path)
            && !checks::may_replace(path, old)
        {
            return Err(format!(
                "patch adds {path}, which the Pod already has: {old}"
            ));
        }
    }
    Ok(())
}

/// The expected file's text: the plan in lines people read, the patch size, the mutated Pod.
fn render(plan: &Plan, patch: &Value, mutated: &Value) -> String {
    let mut head = Map::new();
    head.insert("decision".into(), json!(decision_line(&plan.decision)));
    let containers: Vec<String> = plan.containers.iter().map(container_line).collect();
    head.insert("containers".into(), json!(containers));
    let changes: Vec<String> = plan.changes.iter().map(change_line).collect();
    head.insert("changes".into(), json!(changes));
    if !plan.notes.is_empty() {
        let notes: Vec<String> = plan.notes.iter().map(Note::line).collect();
        head.insert("notes".into(), json!(notes));
    }
    let warnings = plan.warning_texts();
    if !warnings.is_empty() {
        head.insert("warnings".into(), json!(warnings));
    }
    let operations = patch.as_array().map_or(0, Vec::len);
    let bytes = serde_json::to_string(patch)
        .expect("patch serializes")
        .len();
    let plural = if operations == 1 { "" } else { "s" };
    head.insert(
        "patch".into(),
        json!(format!("{operations} operation{plural}, {bytes} bytes")),
    );

    // One line per entry: no folding of long lines in the plan part.
    let lines = serde_saphyr::ser_options! { prefer_block_scalars: false };
    let mut text = serde_saphyr::to_string_with_options(&head, lines).expect("render yaml");
    // The Pod as Kubernetes YAML usually reads, long annotations as block scalars.
    text.push_str(&serde_saphyr::to_string(&json!({ "pod": mutated })).expect("render yaml"));
    text
}

fn decision_line(decision: &Decision) -> String {
    match decision {
        Decision::Selected => "selected".to_string(),
        Decision::NotSelected(reason) => format!("not-selected: {reason}"),
        Decision::OptedOut(reason) => format!("opted-out: {reason}"),
    }
}

/// `app: web (runs uvicorn); server uvicorn, evidence: command: python -m uvicorn …`
fn container_line(target: &TargetContainer) -> String {
    let detection = &target.detection;
    let detected = detection.server.name();
    // The command alone may not show the server an application's launcher starts.
    let server = match target.catalog_server() {
        Some(server) => format!("{} (catalog)", server.name()),
        None => detected.to_string(),
    };
    let mut line = format!(
        "{}: {} ({}); server {server}",
        target.name, target.profile, target.profile_reason,
    );
    let mut traits = Vec::new();
    if let Some(class) = detection.worker_class {
        let class = serde_json::to_value(class).expect("worker class serializes");
        traits.push(format!("{} workers", class.as_str().unwrap_or_default()));
    }
    if let Some(shell) = detection.shell {
        let exec = if shell.exec { "with" } else { "without" };
        traits.push(format!("shell {exec} exec"));
    }
    if detection.libc == Libc::Musl {
        traits.push("musl".to_string());
    }
    if !traits.is_empty() {
        let _ = write!(line, " ({})", traits.join(", "));
    }
    if detection.evidence.is_empty() {
        line.push_str(", no evidence");
    } else {
        let _ = write!(line, ", evidence: {}", detection.evidence.join("; "));
    }
    line
}

/// `app env.PYTHONUNBUFFERED = 1: stdout/stderr unbuffered, …`
fn change_line(change: &Change) -> String {
    format!(
        "{} {} = {}: {}",
        change.container.as_deref().unwrap_or("pod"),
        change.field,
        short_value(&change.display_value()),
        change.reason
    )
}

/// The first line of `value`, cut to [`MAX_VALUE_CHARS`]; a cut is marked with an ellipsis.
fn short_value(value: &str) -> String {
    let first = value.lines().next().unwrap_or_default();
    if first.len() == value.len() {
        engine::truncate(first, MAX_VALUE_CHARS)
    } else {
        let mut cut = engine::truncate(first, MAX_VALUE_CHARS - 1);
        if !cut.ends_with('…') {
            cut.push('…');
        }
        cut
    }
}

fn compare(dir: &Path, actual: &str) -> Result<(), String> {
    let expected_path = dir.join("expected.yaml");
    let scratch = dir.join("actual.yaml.new");
    if std::env::var_os("PYTUNE_BLESS").is_some() {
        std::fs::write(&expected_path, actual).map_err(|err| format!("expected.yaml: {err}"))?;
        let _ = std::fs::remove_file(&scratch);
        return Ok(());
    }
    let expected = match std::fs::read_to_string(&expected_path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            let _ = std::fs::write(&scratch, actual);
            return Err(format!(
                "expected.yaml missing; the result is in {}: review it, then bless with \
                 PYTUNE_BLESS=1 cargo test --test golden",
                scratch.display()
            ));
        }
        Err(err) => return Err(format!("expected.yaml: {err}")),
    };
    if expected == actual {
        let _ = std::fs::remove_file(&scratch);
        return Ok(());
    }
    let _ = std::fs::write(&scratch, actual);
    let diff = similar::TextDiff::from_lines(expected.as_str(), actual)
        .unified_diff()
        .context_radius(2)
        .header("expected.yaml", "actual.yaml.new")
        .to_string();
    let mut lines: Vec<&str> = diff.lines().collect();
    let hidden = lines.len().saturating_sub(MAX_DIFF_LINES);
    lines.truncate(MAX_DIFF_LINES);
    let mut message = format!(
        "result differs from expected.yaml (whole result in {}; if the change is meant, bless \
         with PYTUNE_BLESS=1 cargo test --test golden):\n{}",
        scratch.display(),
        lines.join("\n")
    );
    if hidden > 0 {
        let _ = write!(message, "\n… {hidden} more diff lines");
    }
    Err(message)
}
