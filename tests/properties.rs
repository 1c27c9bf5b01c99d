//! Invariants of the engine over generated Pods: the patch applies to the JSON as received and only
//! adds; no user value changes; requests never exceed limits; a second run adds nothing; the result
//! is still a Pod; warnings stay short; sized values are integers ≥ 1.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Pod;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use pytune::core::catalog::Catalog;
use pytune::core::engine::{self, Context, KubeVersion, MAX_WARNING_CHARS};
use pytune::core::learned::LearnedValues;
use pytune::core::policy::{Policy, WorkloadProfile};
use pytune::core::quantity;

fn cpu() -> impl Strategy<Value = Option<&'static str>> {
    prop::option::of(prop::sample::select(vec![
        "100m", "250m", "500m", "1", "1500m", "2", "4", "0.5", "weird",
    ]))
}

fn memory() -> impl Strategy<Value = Option<&'static str>> {
    prop::option::of(prop::sample::select(vec![
        "64Mi", "256Mi", "512Mi", "1Gi", "3Gi", "1e9", "bad",
    ]))
}

fn resources() -> impl Strategy<Value = Option<Value>> {
    prop::option::of(
        (cpu(), memory(), cpu(), memory()).prop_map(|(rc, rm, lc, lm)| {
            let mut requests = Map::new();
            let mut limits = Map::new();
            if let Some(v) = rc {
                requests.insert("cpu".into(), json!(v));
            }
            if let Some(v) = rm {
                requests.insert("memory".into(), json!(v));
            }
            if let Some(v) = lc {
                limits.insert("cpu".into(), json!(v));
            }
            if let Some(v) = lm {
                limits.insert("memory".into(), json!(v));
            }
            let mut resources = Map::new();
            if !requests.is_empty() {
                resources.insert("requests".into(), Value::Object(requests));
            }
            if !limits.is_empty() {
                resources.insert("limits".into(), Value::Object(limits));
            }
            Value::Object(resources)
        }),
    )
}

fn env() -> impl Strategy<Value = Option<Value>> {
    let names = prop::sample::subsequence(
        vec![
            "PYTHONUNBUFFERED",
            "WEB_CONCURRENCY",
            "OMP_NUM_THREADS",
            "DATABASE_URL",
            "PYTHON_CPU_COUNT",
        ],
        0..4,
    );
    prop::option::of(
        (names, prop::sample::select(vec!["0", "1", "4", "abc", ""])).prop_map(|(names, value)| {
            Value::Array(
                names
                    .into_iter()
                    .map(|name| json!({"name": name, "value": value}))
                    .collect(),
            )
        }),
    )
}

fn command() -> impl Strategy<Value = Option<Value>> {
    prop::option::of(prop::sample::select(vec![
        json!(["gunicorn", "app:app", "--bind", "0.0.0.0:8000"]),
        json!(["gunicorn", "app:app"]),
        json!([
            "gunicorn",
            "-k",
            "uvicorn_worker.UvicornWorker",
            "-b",
            "127.0.0.1:8000",
            "app:app"
        ]),
        json!([
            "gunicorn",
            "-w",
            "9",
            "--graceful-timeout",
            "90",
            "-b",
            ":8000",
            "app:app"
        ]),
        json!(["uvicorn", "app:app", "--host", "0.0.0.0", "--port", "8000"]),
        json!(["uvicorn", "app:app"]),
        json!([
            "sh",
            "-c",
            "python manage.py migrate && exec gunicorn app.wsgi"
        ]),
        json!(["bash", "-lc", "celery -A app worker"]),
        json!(["celery", "-A", "app", "beat"]),
        json!(["python", "-m", "hypercorn", "app:app"]),
        json!(["/entrypoint.sh"]),
        json!(["sh", "-c", "echo 'unterminated"]),
        json!(["celery", "-A", "app", "worker", "-c", "3"]),
        json!(["rq", "worker", "default"]),
        json!(["dramatiq", "app.tasks"]),
        json!(["uwsgi", "--http", ":8000", "--module", "app.wsgi"]),
        json!(["nginx", "-g", "daemon off;"]),
        json!(["python", "worker.py"]),
    ]))
}

fn image() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec![
        "python:3.13",
        "python:3.12-alpine",
        "docker.io/library/nginx:1.27",
        "example.com/team/app@sha256:0123",
    ])
}

fn container() -> impl Strategy<Value = Value> {
    (
        command(),
        prop::sample::select(vec![
            "app",
            "web",
            "worker",
            "istio-proxy",
            "linkerd-proxy",
            "api",
        ]),
        prop::option::of(prop::sample::select(vec![8000, 8080, 9000])),
        resources(),
        env(),
        any::<(bool, bool, bool, bool, bool)>(),
        0..3usize,
        image(),
    )
        .prop_map(
            |(
                command,
                name,
                port,
                resources,
                env,
                (readiness, pre_stop, env_from, secret, unknown),
                secret_kind,
                image,
            )| {
                let mut c = Map::new();
                c.insert("name".into(), json!(name));
                c.insert("image".into(), json!(image));
                if let Some(command) = command {
                    c.insert("command".into(), command);
                }
                if let Some(port) = port {
                    c.insert(
                        "ports".into(),
                        json!([{"containerPort": port, "name": "http"}]),
                    );
                }
                if let Some(resources) = resources {
                    c.insert("resources".into(), resources);
                }
                if let Some(env) = env {
                    c.insert("env".into(), env);
                }
                if readiness {
                    c.insert(
                        "readinessProbe".into(),
                        json!({"httpGet": {"path": "/r", "port": 1234}}),
                    );
                }
                if pre_stop {
                    c.insert(
                        "lifecycle".into(),
                        json!({"preStop": {"sleep": {"seconds": 3}}}),
                    );
                }
                if env_from {
                    let source = if secret {
                        // A Secret whose keys pytune was given, or one it knows nothing of.
                        let name = ["s", "known-secret", "s"][secret_kind];
                        json!({"secretRef": {"name": name}})
                    } else {
                        json!({"configMapRef": {"name": "known"}})
                    };
                    c.insert("envFrom".into(), json!([source]));
                }
                if unknown {
                    c.insert("futureField".into(), json!({"keep": [1, 2]}));
                }
                Value::Object(c)
            },
        )
}

fn pod() -> impl Strategy<Value = Value> {
    (
        prop::collection::vec(container(), 1..4),
        any::<(bool, bool, bool)>(),
        prop::option::of(prop::sample::select(vec!["Always", "Never", "OnFailure"])),
        prop::option::of(prop::sample::select(vec![0i64, 10, 30, 45, 300])),
        prop::option::of(prop::sample::select(vec![
            "off",
            "on",
            "x",
            "probes",
            "env,lifecycle",
            "resources",
        ])),
        prop::option::of(prop::sample::select(vec![
            "web", "worker", "job", "nonsense",
        ])),
    )
        .prop_map(
            |(
                mut containers,
                (labeled, annotated, pod_resources),
                restart,
                grace,
                skip,
                profile,
            )| {
                // Container names are unique in a valid Pod.
                let mut seen = std::collections::HashSet::new();
                containers
                    .retain(|c| seen.insert(c["name"].as_str().unwrap_or_default().to_string()));
                let mut metadata = json!({"name": "p", "namespace": "n"});
                if labeled {
                    metadata["labels"] = json!({"pytune.io/runtime": "python", "app": "p"});
                }
                if annotated {
                    let mut annotations = Map::new();
                    match skip {
                        Some(mode @ ("off" | "on" | "x")) => {
                            annotations.insert("pytune.io/mode".into(), json!(mode));
                        }
                        Some(skip) => {
                            annotations.insert("pytune.io/skip".into(), json!(skip));
                        }
                        None => {}
                    }
                    if let Some(profile) = profile {
                        annotations.insert("pytune.io/profile".into(), json!(profile));
                    }
                    annotations.insert("other.io/keep".into(), json!("yes"));
                    metadata["annotations"] = Value::Object(annotations);
                }
                let mut spec = json!({"containers": containers, "futurePodField": {"a": 1}});
                if let Some(restart) = restart {
                    spec["restartPolicy"] = json!(restart);
                }
                if let Some(grace) = grace {
                    spec["terminationGracePeriodSeconds"] = json!(grace);
                }
                if pod_resources {
                    spec["resources"] = json!({"limits": {"cpu": "2", "memory": "2Gi"}});
                }
                json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec})
            },
        )
}

/// Learned values of some containers, unrelated to their usage: a learned request may exceed the
/// learned limit, the profile's limit or the user's, which the invariants must still hold against.
fn learned() -> impl Strategy<Value = BTreeMap<String, LearnedValues>> {
    let values = (
        prop::option::of(prop::sample::select(vec!["5m", "180m", "2", "4"])),
        prop::option::of(prop::sample::select(vec!["64Mi", "300Mi", "3Gi"])),
        prop::option::of(prop::sample::select(vec!["100Mi", "600Mi", "2Gi"])),
    )
        .prop_map(|(cpu, memory, limit)| LearnedValues {
            cpu_request: cpu.map(str::to_string),
            memory_request: memory.map(str::to_string),
            memory_limit: limit.map(str::to_string),
            provenance: "learned from usage: test (7d window, generated 2026-11-20)".to_string(),
        });
    prop::collection::btree_map(
        prop::sample::select(vec!["app", "web", "worker", "api"]).prop_map(str::to_string),
        values,
        0..3,
    )
}

fn contexts() -> impl Strategy<Value = Context> {
    (
        prop::option::of(prop::sample::select(vec![(1u32, 28u32), (1, 30), (1, 36)])),
        learned(),
    )
        .prop_map(|(version, learned)| {
            let mut ctx = Context {
                kubernetes_version: version.map(|(major, minor)| KubeVersion::new(major, minor)),
                learned,
                ..Context::default()
            };
            ctx.config_map_keys
                .insert("known".into(), ["WEB_CONCURRENCY".to_string()].into());
            ctx.secret_keys.insert(
                "known-secret".into(),
                ["WEB_CONCURRENCY".to_string()].into(),
            );
            ctx
        })
}

/// Every leaf of `original`, with its pointer.
fn leaves(value: &Value, pointer: String, out: &mut Vec<(String, Value)>) {
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

fn check_requests_within_limits(pod: &Value) -> Result<(), String> {
    for c in pod["spec"]["containers"].as_array().into_iter().flatten() {
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

/// Whether the user's own pair was already invalid (pytune cannot be blamed for it).
fn user_pair_invalid(pod: &Value) -> bool {
    check_requests_within_limits(pod).is_err()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn engine_invariants(pod in pod(), ctx in contexts()) {
        let policy = Policy::embedded();
        let plan = engine::plan(&pod, &policy, &ctx).expect("generated Pods are valid");

        // The server's path (the Pod's JSON text, decoded without a JSON tree) plans the same.
        let text = serde_json::to_string(&pod).expect("JSON");
        let decoded = serde_json::from_str::<engine::PodView>(&text).expect("generated Pods decode").into_pod();
        let from_text = engine::plan_pod(&decoded, &policy, &ctx);
        prop_assert_eq!(&from_text.patch, &plan.patch);
        prop_assert_eq!(&from_text.changes, &plan.changes);
        prop_assert_eq!(&from_text.warnings, &plan.warnings);

        // The patch applies to the JSON as received.
        let mut mutated = pod.clone();
        json_patch::patch(&mut mutated, &plan.json_patch()).map_err(|err| TestCaseError::fail(err.to_string()))?;

        // No value the user set changes; the only exception is the grace period of 30, which the
        // API server writes when the user wrote none.
        let mut original_leaves = Vec::new();
        leaves(&pod, String::new(), &mut original_leaves);
        for (pointer, value) in original_leaves {
            if pointer == "/spec/terminationGracePeriodSeconds" && value == json!(30) {
                continue;
            }
            let now = mutated.pointer(&pointer);
            let kept = now == Some(&value) || (value.is_object() || value.is_array()) && now.is_some();
            prop_assert!(kept, "{pointer} changed from {value} to {now:?}");
        }

        // Nothing but what the plan lists changed: every new leaf sits under a change's path.
        let mut new_leaves = Vec::new();
        leaves(&mutated, String::new(), &mut new_leaves);
        for (pointer, _) in new_leaves {
            if pod.pointer(&pointer).is_some() { continue; }
            let covered = plan.changes.iter().any(|c| pointer == c.path || pointer.starts_with(&format!("{}/", c.path)));
            prop_assert!(covered, "{pointer} added but no change explains it");
        }

        if !user_pair_invalid(&pod) {
            check_requests_within_limits(&mutated).map_err(TestCaseError::fail)?;
        }

        // Still a Pod.
        serde_json::from_value::<Pod>(mutated.clone()).map_err(|err| TestCaseError::fail(err.to_string()))?;

        // Idempotent.
        let again = engine::plan(&mutated, &policy, &ctx).expect("mutated Pod is valid");
        prop_assert!(again.is_empty(), "second run adds {:?}", again.change_summaries());

        for warning in plan.warning_texts() {
            prop_assert!(warning.chars().count() <= MAX_WARNING_CHARS, "long warning: {warning}");
        }

        // Sized values are integers ≥ 1.
        for change in &plan.changes {
            let sized = ["WEB_CONCURRENCY", "PYTHON_CPU_COUNT", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"];
            if sized.iter().any(|name| change.field == format!("env.{name}")) {
                let value: u32 = change.value.as_str().and_then(|v| v.parse().ok()).unwrap_or(0);
                prop_assert!(value >= 1, "{} = {}", change.field, change.value);
            }
        }

        // Thread caps pytune sets keep workers × threads within the CPUs (threads are at least 1).
        for container in mutated["spec"]["containers"].as_array().into_iter().flatten() {
            let name = container["name"].as_str().unwrap_or_default();
            let capped_by_pytune = plan.changes.iter().any(|c| {
                c.container.as_deref() == Some(name) && c.field == "env.OMP_NUM_THREADS"
            });
            let env_value = |name: &str| -> Option<u32> {
                container["env"].as_array()?.iter().find(|v| v["name"] == name)?["value"].as_str()?.parse().ok()
            };
            if let (true, Some(cpus), Some(workers), Some(threads)) = (
                capped_by_pytune,
                env_value("PYTHON_CPU_COUNT"),
                env_value("WEB_CONCURRENCY"),
                env_value("OMP_NUM_THREADS"),
            ) {
                prop_assert!(threads == 1 || workers * threads <= cpus, "{workers} × {threads} > {cpus}");
            }
        }

        // Do no harm: what pytune adds fits what it knows of each container.
        for target in &plan.containers {
            let name = target.name.as_str();
            // Never a variable that an envFrom source defines: an env entry would override it.
            let container = pod["spec"]["containers"].as_array().into_iter().flatten().find(|c| c["name"] == name);
            let sources = container.and_then(|c| c["envFrom"].as_array()).into_iter().flatten();
            for source in sources {
                let keys = match (source["configMapRef"]["name"].as_str(), source["secretRef"]["name"].as_str()) {
                    (Some(config_map), _) => ctx.config_map_keys.get(config_map),
                    (_, Some(secret)) => ctx.secret_keys.get(secret),
                    _ => None,
                };
                for key in keys.into_iter().flatten() {
                    let overridden = plan.changes.iter().any(|c| {
                        c.container.as_deref() == Some(name) && c.field == format!("env.{key}")
                    });
                    prop_assert!(!overridden, "{name}: env.{key} overrides its envFrom source");
                }
            }
            let added = |field: &str| {
                plan.changes.iter().any(|c| c.container.as_deref() == Some(name) && c.field == field)
            };
            let added_env = plan.changes.iter().any(|c| {
                c.container.as_deref() == Some(name) && c.field.starts_with("env.")
            });
            // A memory limit only where the container's process count is known.
            if target.app.is_none() {
                prop_assert!(!added("resources.limits.memory"), "{name}: memory limit on an unknown fan-out");
            }
            // Probes and a drain only on containers known to serve, never on workers, jobs or helpers.
            let probed = added("startupProbe") || added("readinessProbe") || added("livenessProbe");
            if probed || added("lifecycle.preStop") {
                prop_assert_eq!(target.profile, WorkloadProfile::Web, "{} probed or drained", name);
                let serves = target.app.is_some() || target.detection.server.serves_http()
                    || pod["metadata"]["annotations"]["pytune.io/port"].is_string();
                prop_assert!(serves, "{name}: probed or drained, but nothing is known to serve");
            }
            // Python settings only on Python.
            if target.profile == WorkloadProfile::Helper {
                prop_assert!(!added_env, "{name}: Python variables on a helper");
                prop_assert!(!probed, "{name}: probes on a helper");
            }
            // A count variable only where the launch path reads it.
            if added("env.WEB_CONCURRENCY") {
                let entry = target.app.as_ref().and_then(|app| {
                    Catalog::embedded().entries().find(|(_, entry)| entry.name == app.entry)
                });
                let reads = entry.is_some_and(|(_, entry)| {
                    entry.concurrency.as_ref().is_some_and(|c| c.web_concurrency)
                });
                prop_assert!(reads, "{name}: WEB_CONCURRENCY for {:?}", target.app);
            }
        }

        // Unlabeled or opted-out Pods are never touched.
        let labeled = pod["metadata"]["labels"]["pytune.io/runtime"] == "python";
        let mode = pod["metadata"]["annotations"]["pytune.io/mode"].as_str();
        if !labeled || matches!(mode, Some("off") | Some("x")) {
            prop_assert!(plan.is_empty());
        }
    }
}
