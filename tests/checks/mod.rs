//! The invariants pytune keeps on any input, as functions that say what broke. One copy serves
//! the property tests (`tests/properties.rs`, `tests/admission_props.rs`), the golden tests, the
//! fuzz targets (`fuzz/fuzz_targets/`, which include this directory by path) and their smoke test
//! on stable (`tests/fuzz_smoke.rs`).
//!
//! [`TARGETS`] names one check per fuzz target, each taking the fuzzer's bytes:
//!
//! - `review`: an `AdmissionReview` body, answered in both modes;
//! - `pod`: a Pod generated from the bytes ([`generate`]), planned and answered;
//! - `manifests`: a multi-document YAML input, mutated twice by `pytune mutate`'s core;
//! - `quantity`: a resource quantity, read as CPU and as memory;
//! - `policy`: a policy file, loaded and, when valid, used to plan a few Pods.
#![allow(dead_code)]

pub mod generate;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use k8s_openapi::api::core::v1::Pod;
use serde_json::{Value, json};

use pytune::cli::inputs;
use pytune::cli::manifests::{self, ManifestError};
use pytune::cli::mutate;
use pytune::core::catalog::Catalog;
use pytune::core::engine::{self, Context, KubeVersion, MAX_WARNING_CHARS, Mode, annotations};
use pytune::core::policy::{Policy, WorkloadProfile};
use pytune::core::quantity;
use pytune::webhook::review::{self, Verdict};

/// What a check returns: `Err` says which invariant broke, and how.
pub type Checked = Result<(), String>;

/// A fuzz target's check of the fuzzer's bytes.
pub type Check = fn(&[u8]) -> Checked;

/// The fuzz targets by name, each with its check (`fuzz/seeds/<name>/`, `fuzz/regressions/<name>/`).
pub const TARGETS: &[(&str, Check)] = &[
    ("review", review_bytes),
    ("pod", pod_bytes),
    ("manifests", manifest_bytes),
    ("quantity", quantity_bytes),
    ("policy", policy_bytes),
];

/// The embedded policy, loaded once.
pub static POLICY: LazyLock<Policy> = LazyLock::new(Policy::embedded);

/// A context that knows one ConfigMap (`known`, defining `WEB_CONCURRENCY`) and, when given, the
/// cluster's version.
pub fn context(version: Option<(u32, u32)>) -> Context {
    let mut ctx = Context {
        kubernetes_version: version.map(|(major, minor)| KubeVersion::new(major, minor)),
        ..Context::default()
    };
    ctx.config_map_keys
        .insert("known".into(), ["WEB_CONCURRENCY".to_string()].into());
    ctx
}

/// Fails with `message` unless `condition` holds.
fn ensure(condition: bool, message: impl FnOnce() -> String) -> Checked {
    if condition { Ok(()) } else { Err(message()) }
}

// ---------------------------------------------------------------------------------------------
// The Pod, before and after.

/// Every leaf of `value` with its JSON pointer; empty objects and arrays are leaves.
pub fn leaves(value: &Value, pointer: String, out: &mut Vec<(String, Value)>) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                let token = key.replace('~', "~0").replace('/', "~1");
                leaves(child, format!("{pointer}/{token}"), out);
            }
        }
        Value::Array(items) if !items.is_empty() => {
            for (i, child) in items.iter().enumerate() {
                leaves(child, format!("{pointer}/{i}"), out);
            }
        }
        other => out.push((pointer, other.clone())),
    }
}

/// The values the engine rewrites by design, none of them set by a user.
pub fn may_replace(path: &str, old: &Value) -> bool {
    let record = |key: &str| {
        let token = key.replace('~', "~0").replace('/', "~1");
        format!("/metadata/annotations/{token}")
    };
    // Kubernetes reads `null` as unset, as does the engine's typed view of the Pod.
    old.is_null()
        // pytune's own record: a later run under a newer policy extends it.
        || path == record(annotations::INJECTED)
        || path == record(annotations::POLICY_REVISION)
        // The API server's default grace period, which the engine cannot tell from an explicit 30.
        || (path == "/spec/terminationGracePeriodSeconds" && old == &json!(30))
}

/// No value the user set changed (but for [`may_replace`]).
pub fn user_values_kept(original: &Value, mutated: &Value) -> Checked {
    let mut original_leaves = Vec::new();
    leaves(original, String::new(), &mut original_leaves);
    for (pointer, value) in original_leaves {
        if may_replace(&pointer, &value) {
            continue;
        }
        let now = mutated.pointer(&pointer);
        let kept = now == Some(&value) || (value.is_object() || value.is_array()) && now.is_some();
        ensure(kept, || {
            format!("{pointer} changed from {value} to {now:?}")
        })?;
    }
    Ok(())
}

/// The contents of the ConfigMap or Secret (`kind`, `name`) a container reads; `None`: missing.
type Sources<'a> = &'a dyn Fn(&str, &str) -> Option<BTreeMap<String, String>>;

/// The environment the kubelet gives a container (`makeEnvironmentVariables`): its `envFrom`
/// sources in order, each key under the source's prefix, a later source winning; then its `env`
/// entries in order, a later entry winning, where an optional reference to a missing key is
/// skipped and leaves the earlier value. `$(VAR)` expansion is left out: it reads only earlier
/// entries, and pytune only appends.
pub fn kubelet_env(container: &Value, sources: Sources) -> BTreeMap<String, String> {
    let mut env = BTreeMap::new();
    for source in container["envFrom"].as_array().into_iter().flatten() {
        let prefix = source["prefix"].as_str().unwrap_or("");
        let found = match (
            source["configMapRef"]["name"].as_str(),
            source["secretRef"]["name"].as_str(),
        ) {
            (Some(name), _) => sources("ConfigMap", name),
            (_, Some(name)) => sources("Secret", name),
            _ => None,
        };
        for (key, value) in found.into_iter().flatten() {
            env.insert(format!("{prefix}{key}"), value);
        }
    }
    for entry in container["env"].as_array().into_iter().flatten() {
        let Some(name) = entry["name"].as_str() else {
            continue;
        };
        let from = &entry["valueFrom"];
        let value = if from.is_object() {
            let reference = [("ConfigMap", "configMapKeyRef"), ("Secret", "secretKeyRef")]
                .into_iter()
                .find(|(_, field)| from[*field].is_object());
            match reference {
                Some((kind, field)) => {
                    let key_ref = &from[field];
                    let value = sources(kind, key_ref["name"].as_str().unwrap_or(""))
                        .and_then(|data| data.get(key_ref["key"].as_str()?).cloned());
                    // Missing and optional: skipped; missing and required: the container does
                    // not start, before and after alike.
                    let Some(value) = value else { continue };
                    value
                }
                None => format!("<{from}>"),
            }
        } else {
            entry["value"].as_str().unwrap_or("").to_string()
        };
        env.insert(name.to_string(), value);
    }
    env
}

/// Every value the kubelet would give each container of `original` it still gives in `mutated`,
/// whatever the sources pytune could not read hold: nothing, or every variable the mutated
/// container names. Sources pytune was given keys of (`ctx`) hold those keys. `exempt` names
/// the variables the policy adds over an unknown source (the fixed flags, by default).
pub fn environment_kept(
    original: &Value,
    mutated: &Value,
    ctx: &Context,
    exempt: &dyn Fn(&str) -> bool,
) -> Checked {
    for (before, after) in containers(original).zip(containers(mutated)) {
        let names: Vec<String> = after["env"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["name"].as_str().map(str::to_string))
            .collect();
        for unknown_hold_all in [false, true] {
            let sources = |kind: &str, name: &str| -> Option<BTreeMap<String, String>> {
                let known = match kind {
                    "ConfigMap" => ctx.config_map_keys.get(name),
                    _ => ctx.secret_keys.get(name),
                };
                let keys: Vec<String> = match known {
                    Some(keys) => keys.iter().cloned().collect(),
                    None if unknown_hold_all => {
                        // Under any prefix the source may have: a key for every name.
                        let mut keys = names.clone();
                        for prefix in ["APP_", "WEB_", "PYTHON"] {
                            keys.extend(
                                names
                                    .iter()
                                    .filter_map(|n| n.strip_prefix(prefix).map(str::to_string)),
                            );
                        }
                        keys
                    }
                    None => Vec::new(),
                };
                let origin = if known.is_some() { "known" } else { "unknown" };
                Some(
                    keys.into_iter()
                        .map(|key| {
                            let value = format!("{origin} {kind} {name}: {key}");
                            (key, value)
                        })
                        .collect(),
                )
            };
            let was = kubelet_env(before, &sources);
            let now = kubelet_env(after, &sources);
            for (name, value) in &was {
                if value.starts_with("unknown ") && exempt(name) {
                    continue;
                }
                ensure(now.get(name) == Some(value), || {
                    format!(
                        "{}: the kubelet gives {name}={:?}, not the user's {value:?}",
                        before["name"],
                        now.get(name)
                    )
                })?;
            }
        }
    }
    Ok(())
}

/// The containers of a Pod (none where `spec.containers` is not a list).
fn containers(pod: &Value) -> impl Iterator<Item = &Value> {
    pod["spec"]["containers"].as_array().into_iter().flatten()
}

/// In every container, a CPU or memory request no greater than its limit (where both parse).
pub fn requests_within_limits(pod: &Value) -> Checked {
    for c in containers(pod) {
        for (key, parse) in [
            ("cpu", quantity::cpu_millis as fn(&str) -> _),
            ("memory", quantity::memory_bytes),
        ] {
            let request = c["resources"]["requests"][key]
                .as_str()
                .and_then(|t| parse(t).ok());
            let limit = c["resources"]["limits"][key]
                .as_str()
                .and_then(|t| parse(t).ok());
            if let (Some(request), Some(limit)) = (request, limit)
                && request > limit
            {
                return Err(format!(
                    "{} {key}: request {request} > limit {limit}",
                    c["name"]
                ));
            }
        }
    }
    Ok(())
}

/// Applies `patch` to `original` and checks the result: the patch applies, no user value
/// changes, requests stay within limits (unless the user's own pair was already invalid), and a
/// Pod stays a Pod.
pub fn mutation(original: &Value, patch: &json_patch::Patch) -> Result<Value, String> {
    let mut mutated = original.clone();
    json_patch::patch(&mut mutated, patch)
        .map_err(|err| format!("the patch does not apply: {err}"))?;
    user_values_kept(original, &mutated)?;
    if requests_within_limits(original).is_ok() {
        requests_within_limits(&mutated)?;
    }
    if serde_json::from_value::<Pod>(original.clone()).is_ok() {
        serde_json::from_value::<Pod>(mutated.clone())
            .map_err(|err| format!("the mutated Pod no longer decodes: {err}"))?;
    }
    Ok(mutated)
}

// ---------------------------------------------------------------------------------------------
// The engine.

/// The engine's invariants on one Pod: both decoding paths plan the same; [`mutation`]; nothing
/// changes but what the plan lists; a second run adds nothing; warnings stay short; sized values
/// are integers ≥ 1; thread caps keep workers × threads within the CPUs; what pytune adds fits
/// what it knows of each container; Pods the policy does not select are never touched.
///
/// `Ok(None)` when the engine does not read `pod` as a Pod (it says so; nothing to check).
pub fn engine_invariants(
    pod: &Value,
    policy: &Policy,
    ctx: &Context,
) -> Result<Option<Value>, String> {
    let Ok(plan) = engine::plan(pod, policy, ctx) else {
        return Ok(None);
    };

    // The server's path (the Pod's JSON text, decoded without a JSON tree) plans the same.
    let text = serde_json::to_string(pod).map_err(|err| err.to_string())?;
    if let Ok(view) = serde_json::from_str::<engine::PodView>(&text) {
        let from_text = engine::plan_pod(&view.into_pod(), policy, ctx);
        ensure(from_text.patch == plan.patch, || {
            "the text path patches differently".into()
        })?;
        ensure(from_text.changes == plan.changes, || {
            "the text path plans other changes".into()
        })?;
        ensure(from_text.warnings == plan.warnings, || {
            "the text path warns differently".into()
        })?;
    }

    let mutated = mutation(pod, &plan.json_patch())?;

    // Nothing but what the plan lists changed: every new leaf sits under a change's path.
    let mut new_leaves = Vec::new();
    leaves(&mutated, String::new(), &mut new_leaves);
    for (pointer, _) in new_leaves {
        if pod.pointer(&pointer).is_some() {
            continue;
        }
        let covered = plan
            .changes
            .iter()
            .any(|c| pointer == c.path || pointer.starts_with(&format!("{}/", c.path)));
        ensure(covered, || {
            format!("{pointer} added but no change explains it")
        })?;
    }

    // The environment each container runs with keeps every value its user set, in `env` or in an
    // envFrom source, read or not; only the fixed flags may be added over a source pytune cannot
    // read, as `env.fixedWhenEnvFromUnknown` says.
    let fixed_over_unknown = |name: &str| {
        policy.env.fixed_when_env_from_unknown
            && (policy.env.fixed.contains_key(name) || name == "MALLOC_ARENA_MAX")
    };
    environment_kept(pod, &mutated, ctx, &fixed_over_unknown)?;
    // A manifest to apply never names a variable twice in one container's env where the user's
    // did not (server-side apply refuses it).
    if ctx.manifest {
        let twice = |container: &Value| -> usize {
            let names: Vec<&str> = container["env"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["name"].as_str())
                .collect();
            let unique: std::collections::BTreeSet<&str> = names.iter().copied().collect();
            names.len() - unique.len()
        };
        for (before, after) in containers(pod).zip(containers(&mutated)) {
            ensure(twice(after) == twice(before), || {
                format!("{}: a name twice in a manifest's env", after["name"])
            })?;
        }
    }

    // Idempotent.
    let again = engine::plan(&mutated, policy, ctx)
        .map_err(|err| format!("the mutated Pod is not a Pod to the engine: {err}"))?;
    ensure(again.is_empty(), || {
        format!("a second run adds {:?}", again.change_summaries())
    })?;

    for warning in plan.warning_texts() {
        ensure(warning.chars().count() <= MAX_WARNING_CHARS, || {
            format!("long warning: {warning}")
        })?;
    }

    // Sized values are integers ≥ 1 (a reference that may replace one is no value of pytune's).
    let sized = [
        "WEB_CONCURRENCY",
        "PYTHON_CPU_COUNT",
        "OMP_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "MKL_NUM_THREADS",
    ];
    for change in &plan.changes {
        if sized
            .iter()
            .any(|name| change.field == format!("env.{name}"))
        {
            if change.value.get("configMapKeyRef").is_some()
                || change.value.get("secretKeyRef").is_some()
            {
                continue;
            }
            let value: u32 = change
                .value
                .as_str()
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            ensure(value >= 1, || {
                format!("{} = {}", change.field, change.value)
            })?;
        }
    }

    // Thread caps pytune sets keep workers × threads within the CPUs (threads are at least 1).
    // The workers are what the mutated container runs with, as the engine reads its launch path
    // (WEB_CONCURRENCY, CELERY_WORKER_CONCURRENCY, a --workers flag…).
    let facts = engine::process_facts(&mutated, policy, ctx);
    for container in containers(&mutated) {
        let name = container["name"].as_str().unwrap_or_default();
        let capped_by_pytune = plan
            .changes
            .iter()
            .any(|c| c.container.as_deref() == Some(name) && c.field == "env.OMP_NUM_THREADS");
        let env_value = |name: &str| -> Option<u64> {
            container["env"]
                .as_array()?
                .iter()
                .find(|v| v["name"] == name)?["value"]
                .as_str()?
                .parse()
                .ok()
        };
        // A PYTHON_CPU_COUNT below 1 is no count (CPython refuses it; pytune warns and sizes from
        // the container's CPUs instead).
        let workers = facts
            .iter()
            .find(|f| f.container == name)
            .and_then(|f| f.workers.as_ref())
            .map(|(count, _)| u64::from(*count));
        if let (true, Some(cpus), Some(workers), Some(threads)) = (
            capped_by_pytune,
            env_value("PYTHON_CPU_COUNT").filter(|cpus| *cpus >= 1),
            workers,
            env_value("OMP_NUM_THREADS"),
        ) {
            ensure(threads == 1 || workers * threads <= cpus, || {
                format!("{name}: {workers} × {threads} > {cpus}")
            })?;
        }
    }

    // Do no harm: what pytune adds fits what it knows of each container.
    for target in &plan.containers {
        let name = target.name.as_str();
        let added = |field: &str| {
            plan.changes
                .iter()
                .any(|c| c.container.as_deref() == Some(name) && c.field == field)
        };
        let added_env = plan
            .changes
            .iter()
            .any(|c| c.container.as_deref() == Some(name) && c.field.starts_with("env."));
        // A memory limit only where the container's process count is known.
        if target.app.is_none() {
            ensure(!added("resources.limits.memory"), || {
                format!("{name}: memory limit on an unknown fan-out")
            })?;
        }
        // Probes and a drain only on containers known to serve, never on workers, jobs or helpers.
        let probed = added("startupProbe") || added("readinessProbe") || added("livenessProbe");
        if probed || added("lifecycle.preStop") {
            ensure(target.profile == WorkloadProfile::Web, || {
                format!("{name}: probed or drained as {}", target.profile)
            })?;
            let serves = target.app.is_some()
                || target.detection.server.serves_http()
                || pod["metadata"]["annotations"][annotations::PORT].is_string();
            ensure(serves, || {
                format!("{name}: probed or drained, but nothing is known to serve")
            })?;
        }
        // Python settings only on Python.
        if target.profile == WorkloadProfile::Helper {
            ensure(!added_env, || {
                format!("{name}: Python variables on a helper")
            })?;
            ensure(!probed, || format!("{name}: probes on a helper"))?;
        }
        // A count variable only where the launch path reads it.
        if added("env.WEB_CONCURRENCY") {
            let entry = target.app.as_ref().and_then(|app| {
                let embedded = Catalog::embedded().entries().map(|(_, entry)| entry);
                policy
                    .catalog
                    .iter()
                    .chain(embedded)
                    .find(|entry| entry.name == app.entry)
            });
            let reads = entry.is_some_and(|entry| {
                entry
                    .concurrency
                    .as_ref()
                    .is_some_and(|c| c.web_concurrency)
            });
            ensure(reads, || {
                format!("{name}: WEB_CONCURRENCY for {:?}", target.app)
            })?;
        }
    }

    // Pods the policy does not select, or that opt out, are never touched.
    let selected =
        pod["metadata"]["labels"][&policy.selector.label] == policy.selector.value.as_str();
    let mode = pod["metadata"]["annotations"][annotations::MODE].as_str();
    let on = mode.is_none_or(|mode| {
        matches!(
            mode.trim().to_ascii_lowercase().as_str(),
            "on" | "enabled" | "true"
        )
    });
    if !selected || !on {
        ensure(plan.is_empty(), || {
            "a Pod not selected or opted out was changed".into()
        })?;
    }
    Ok(Some(mutated))
}

// ---------------------------------------------------------------------------------------------
// The webhook's answer.

/// The request's uid, when `body` is a JSON `admission.k8s.io/v1` review with a non-empty one:
/// then pytune must answer it, with that uid.
fn request_uid(body: &Value) -> Option<&str> {
    let typed = body["apiVersion"] == review::API_VERSION && body["kind"] == review::KIND;
    let uid = body
        .get("request")
        .filter(|r| r.is_object())?
        .get("uid")?
        .as_str()?;
    (typed && !uid.is_empty()).then_some(uid)
}

/// Answers `body` in both modes. Every answer allows the Pod and carries the request's uid; a
/// body with a uid is always answered; warnings stay short; only enforce mode patches; the engine
/// never panics; a patch passes [`mutation`] on the request's object, and answering the mutated
/// Pod again patches nothing. Returns the patched object, if enforce mode patched.
pub fn answer(body: &[u8], policy: &Policy, ctx: &Context) -> Result<Option<Value>, String> {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    let uid = parsed.as_ref().and_then(request_uid);
    let mut patched = None;
    for mode in [Mode::Enforce, Mode::Audit] {
        let outcome = match review::review(body, policy, ctx, mode) {
            Ok(outcome) => outcome,
            Err(err) => {
                ensure(uid.is_none(), || {
                    format!("a review with uid {uid:?} was rejected: {err}")
                })?;
                continue;
            }
        };
        let response = &outcome.response;
        ensure(response.allowed, || "a Pod was not allowed".into())?;
        if let Some(uid) = uid {
            ensure(response.uid == uid, || {
                format!("answered uid {:?}, asked {uid:?}", response.uid)
            })?;
        }
        let detail = outcome.record.detail.as_deref().unwrap_or_default();
        ensure(!detail.contains("panicked"), || detail.to_string())?;
        let json = outcome
            .to_json()
            .map_err(|err| format!("the answer does not serialize: {err}"))?;
        let json: Value = serde_json::from_slice(&json)
            .map_err(|err| format!("the answer is not JSON: {err}"))?;
        ensure(json["response"]["allowed"] == true, || {
            "the answer does not allow".into()
        })?;
        ensure(json["response"]["uid"] == response.uid.as_str(), || {
            "the answer lost the uid".into()
        })?;
        for warning in response.warnings.iter().flatten() {
            ensure(warning.chars().count() <= MAX_WARNING_CHARS, || {
                format!("long warning: {warning}")
            })?;
        }
        let Some(bytes) = response.patch_bytes() else {
            continue;
        };
        ensure(
            mode == Mode::Enforce && outcome.record.verdict == Verdict::Patched,
            || {
                format!(
                    "a patch in {mode:?} mode with verdict {:?}",
                    outcome.record.verdict
                )
            },
        )?;
        let patch: json_patch::Patch = serde_json::from_slice(bytes)
            .map_err(|err| format!("the patch is not JSON Patch: {err}"))?;
        let mut body = parsed
            .clone()
            .ok_or_else(|| "a patch for a body that is not JSON".to_string())?;
        let object = &mut body["request"]["object"];
        let mutated = mutation(object, &patch)?;
        *object = mutated.clone();
        let again = serde_json::to_vec(&body).map_err(|err| err.to_string())?;
        let second = review::review(&again, policy, ctx, Mode::Enforce)
            .map_err(|err| format!("the mutated review is rejected: {err}"))?;
        ensure(second.response.patch.is_none(), || {
            format!("a second review patches again ({})", second.record.added)
        })?;
        patched = Some(mutated);
    }
    Ok(patched)
}

/// A review around `pod`, as the API server sends a Pod CREATE.
pub fn review_of(pod: &Value) -> Vec<u8> {
    let review = json!({
        "apiVersion": review::API_VERSION,
        "kind": review::KIND,
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": "n",
            "operation": "CREATE",
            "userInfo": {"username": "admin"},
            "object": pod,
            "dryRun": false,
        }
    });
    serde_json::to_vec(&review).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// The fuzz targets' checks.

/// `review`: any bytes as a review body.
pub fn review_bytes(bytes: &[u8]) -> Checked {
    answer(bytes, &POLICY, &context(Some((1, 33)))).map(drop)
}

/// `pod`: a generated Pod, planned by the engine and answered as a review; both agree.
pub fn pod_bytes(bytes: &[u8]) -> Checked {
    let Some(pod) = generate::pod(bytes) else {
        return Ok(());
    };
    let version = match bytes.last().map(|b| b % 4) {
        Some(0) => None,
        Some(1) => Some((1, 28)),
        Some(2) => Some((1, 30)),
        _ => Some((1, 36)),
    };
    // The same byte says whether the plan is for a manifest to apply (`pytune mutate`).
    let ctx = Context {
        manifest: bytes.last().is_some_and(|b| b & 4 != 0),
        ..context(version)
    };
    let planned = engine_invariants(&pod, &POLICY, &ctx)?;
    let answered = answer(&review_of(&pod), &POLICY, &ctx)?;
    let changed = planned.as_ref().filter(|mutated| **mutated != pod);
    ensure(changed == answered.as_ref(), || {
        format!("the engine makes {changed:?}, the review {answered:?}")
    })
}

/// `manifests`: any bytes as a `pytune mutate` input. Every document is in the output or
/// reported; untouched ones are byte for byte as they were; a document that cannot be read is
/// reported by its index; the output splits back into the same documents; and a second run over
/// the output changes nothing.
pub fn manifest_bytes(bytes: &[u8]) -> Checked {
    let input = inputs::decode("in.yaml".to_string(), bytes.to_vec());
    let documents = input.documents();
    // As `pytune mutate` plans: for manifests to apply.
    let ctx = Context {
        manifest: true,
        ..context(None)
    };
    let output = mutate::mutate(std::slice::from_ref(&input), &POLICY, &ctx);

    let left_out = documents
        .iter()
        .filter(|d| matches!(d.parsed, Err(ManifestError::NotUtf8(_))))
        .count();
    ensure(output.documents.len() + left_out == documents.len(), || {
        format!(
            "{} documents in, {} out and {left_out} left out",
            documents.len(),
            output.documents.len()
        )
    })?;
    for document in &documents {
        if document.parsed.is_err() {
            let prefix = format!("in.yaml document {}", document.index);
            ensure(output.errors.iter().any(|e| e.starts_with(&prefix)), || {
                format!(
                    "document {} cannot be read but is not reported",
                    document.index
                )
            })?;
        }
    }
    for out in &output.documents {
        let original = documents.iter().find(|d| d.index == out.index);
        let text = original.map(|d| d.text.clone()).unwrap_or_default();
        let with_newline = if text.ends_with('\n') {
            text.clone()
        } else {
            format!("{text}\n")
        };
        ensure(out.original == with_newline, || {
            format!("document {} original altered", out.index)
        })?;
        if !out.changed() {
            continue;
        }
        let reread = manifests::split_documents(&out.output);
        let parsed = reread.first().map(|d| &d.parsed);
        ensure(
            reread.len() == 1 && matches!(parsed, Some(Ok(Some(_)))),
            || {
                format!(
                    "document {} re-rendered unreadably: {:?}",
                    out.index, out.output
                )
            },
        )?;
    }

    // Round trip: the output splits into the documents written, untouched ones byte-identical.
    let again = inputs::decode("in.yaml".to_string(), output.yaml.clone().into_bytes());
    let split = again.documents();
    ensure(split.len() == output.documents.len(), || {
        format!(
            "the output holds {} documents, {} were written: {:?}",
            split.len(),
            output.documents.len(),
            output.yaml
        )
    })?;
    for (read, written) in split.iter().zip(&output.documents) {
        let text = if read.text.ends_with('\n') {
            read.text.clone()
        } else {
            format!("{}\n", read.text)
        };
        // A document before one with directives gains the `...` line that ends it.
        let same = text == written.output || text == format!("{}...\n", written.output);
        ensure(same, || {
            format!(
                "document {} reads back as {:?}, written {:?}",
                written.index, read.text, written.output
            )
        })?;
    }

    // A second run changes nothing.
    let second = mutate::mutate(std::slice::from_ref(&again), &POLICY, &ctx);
    for document in &second.documents {
        ensure(!document.changed(), || {
            format!(
                "a second run changes document {}: {:?} to {:?}",
                document.index, document.original, document.output
            )
        })?;
    }
    ensure(second.yaml == output.yaml, || {
        format!(
            "a second run writes {:?} for {:?}",
            second.yaml, output.yaml
        )
    })
}

/// `quantity`: any text as a CPU and a memory quantity. Both readings agree with each other
/// (the memory value is the CPU value in whole units, rounded up), whitespace around the text and a
/// leading `+` change nothing, and sizes written back read the same.
pub fn quantity_bytes(bytes: &[u8]) -> Checked {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Ok(());
    };
    let cpu = quantity::cpu_millis(text).ok();
    let memory = quantity::memory_bytes(text).ok();
    match (cpu, memory) {
        (Some(millis), Some(bytes)) => ensure(millis.div_ceil(1000) == bytes, || {
            format!("{text:?}: {millis} millicores but {bytes} bytes")
        })?,
        (Some(millis), None) => return Err(format!("{text:?}: {millis} millicores but no bytes")),
        (None, Some(bytes)) => ensure(bytes > u64::MAX / 1000, || {
            format!("{text:?}: {bytes} bytes but no millicores")
        })?,
        (None, None) => {}
    }
    let padded = format!(" \t{text}\n ");
    ensure(quantity::cpu_millis(&padded).ok() == cpu, || {
        format!("{text:?}: padding changes the CPU")
    })?;
    ensure(quantity::memory_bytes(&padded).ok() == memory, || {
        format!("{text:?}: padding changes the memory")
    })?;
    let trimmed = text.trim();
    if trimmed.starts_with(|c: char| c.is_ascii_digit() || c == '.') {
        let plus = format!("+{trimmed}");
        ensure(quantity::cpu_millis(&plus).ok() == cpu, || {
            format!("{text:?}: + changes the CPU")
        })?;
        ensure(quantity::memory_bytes(&plus).ok() == memory, || {
            format!("{text:?}: + changes the memory")
        })?;
    }
    if let Some(bytes) = memory {
        let written = quantity::format_bytes(bytes);
        ensure(quantity::memory_bytes(&written) == Ok(bytes), || {
            format!("{bytes} bytes written as {written:?} read back differently")
        })?;
    }
    if let Some(millis) = cpu {
        let cpus = quantity::whole_cpus(millis);
        let expected = u32::try_from(millis.div_ceil(1000))
            .unwrap_or(u32::MAX)
            .max(1);
        ensure(cpus == expected, || {
            format!("{millis} millicores are {cpus} CPUs")
        })?;
    }
    Ok(())
}

/// Pods the `policy` check plans under each policy it loads: a gunicorn web server, a Celery
/// worker and a uvicorn server beside a sidecar, with and without resources.
const POLICY_PODS: &[&str] = &[
    r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"web","labels":{"pytune.io/runtime":"python"}},
        "spec":{"containers":[{"name":"app","image":"python:3.13","command":["gunicorn","app:app","-b","0.0.0.0:8000"],
        "ports":[{"containerPort":8000}]}]}}"#,
    r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"worker","labels":{"pytune.io/runtime":"python"}},
        "spec":{"containers":[{"name":"worker","image":"python:3.12","command":["celery","-A","app","worker"],
        "resources":{"limits":{"cpu":"2","memory":"1Gi"}}}]}}"#,
    r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"api","labels":{"pytune.io/runtime":"python"},
        "ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"api-1","uid":"1","controller":true}]},
        "spec":{"containers":[{"name":"api","image":"python:3.13","command":["uvicorn","app:app","--host","0.0.0.0","--port","8080"],
        "ports":[{"containerPort":8080}],"resources":{"requests":{"cpu":"100m","memory":"128Mi"}}},
        {"name":"istio-proxy","image":"istio/proxyv2"}]}}"#,
];

/// `policy`: any text as a policy file. Loading never panics; a policy that loads keeps the
/// engine's invariants on a few Pods and answers them as the webhook would.
pub fn policy_bytes(bytes: &[u8]) -> Checked {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Ok(());
    };
    let Ok(policy) = Policy::from_yaml(text) else {
        return Ok(());
    };
    ensure(!policy.revision.is_empty(), || {
        "a policy without a revision".into()
    })?;
    let ctx = context(Some((1, 29)));
    for pod in POLICY_PODS {
        let mut pod: Value = serde_json::from_str(pod).map_err(|err| err.to_string())?;
        // The sample Pods carry the default label; relabel them for the policy's selector.
        let mut labels = serde_json::Map::new();
        labels.insert(policy.selector.label.clone(), json!(policy.selector.value));
        pod["metadata"]["labels"] = Value::Object(labels);
        engine_invariants(&pod, &policy, &ctx)?;
        answer(&review_of(&pod), &policy, &ctx)?;
    }
    Ok(())
}
