//! Invariants of the engine over generated Pods: the patch applies to the JSON as received and only
//! adds; no user value changes; requests never exceed limits; a second run adds nothing; the result
//! is still a Pod; warnings stay short; sized values are integers ≥ 1. The checks themselves are in
//! `tests/checks/` (`engine_invariants`), shared with the fuzz targets.

use std::collections::BTreeMap;

use proptest::prelude::*;
use serde_json::{Map, Value, json};

use pytune::core::engine::{Context, KubeVersion};
use pytune::core::learned::LearnedValues;

mod checks;

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

/// `envFrom` sources: ConfigMaps and Secrets whose keys pytune was given (`contexts`) or not,
/// some under a prefix that may or may not begin the variables pytune adds.
fn env_from() -> impl Strategy<Value = Option<Value>> {
    let source = (
        prop::sample::select(vec![
            json!({"configMapRef": {"name": "known"}}),
            json!({"configMapRef": {"name": "unknown-cm"}}),
            json!({"secretRef": {"name": "known-secret"}}),
            json!({"secretRef": {"name": "s"}}),
        ]),
        prop::sample::select(vec!["", "", "APP_", "WEB_"]),
    )
        .prop_map(|(mut source, prefix)| {
            if !prefix.is_empty() {
                source["prefix"] = json!(prefix);
            }
            source
        });
    prop::option::of(prop::collection::vec(source, 1..3).prop_map(Value::Array))
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
        "apache/superset:3.1.2",
        "burakince/mlflow:3.1.0",
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
        any::<(bool, bool, bool)>(),
        env_from(),
        image(),
    )
        .prop_map(
            |(
                command,
                name,
                port,
                resources,
                env,
                (readiness, pre_stop, unknown),
                env_from,
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
                if let Some(env_from) = env_from {
                    c.insert("envFrom".into(), env_from);
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
            generated: "2026-11-20".to_string(),
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
        any::<bool>(),
    )
        .prop_map(|(version, learned, manifest)| {
            let mut ctx = Context {
                kubernetes_version: version.map(|(major, minor)| KubeVersion::new(major, minor)),
                learned,
                manifest,
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

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn engine_invariants(pod in pod(), ctx in contexts()) {
        let policy = &*checks::POLICY;
        let mutated = checks::engine_invariants(&pod, policy, &ctx).map_err(TestCaseError::fail)?;
        prop_assert!(mutated.is_some(), "generated Pods are valid");
    }
}
