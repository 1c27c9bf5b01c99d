//! Pods generated from arbitrary bytes (the `arbitrary` crate): containers running gunicorn,
//! uvicorn, Celery and others, env, resources with valid and invalid quantities, probes, ports,
//! lifecycle hooks, `pytune.io/*` annotations, the selector label, and fields Kubernetes does not
//! know. Values come mostly from pools of realistic ones, sometimes free text, so most Pods are
//! ones the engine plans for and the rest probe its edges.

use arbitrary::{Arbitrary, Unstructured};
use serde_json::{Map, Value, json};

/// A value from `pool`, or (now and then) a free string.
#[derive(Arbitrary, Debug)]
pub enum Text {
    Pick(u8),
    Free(String),
}

impl Text {
    fn get(&self, pool: &[&str]) -> String {
        match self {
            Text::Pick(i) => pool[usize::from(*i) % pool.len()].to_string(),
            Text::Free(text) => text.clone(),
        }
    }
}

fn pick<T>(pool: &[T], i: u8) -> &T {
    &pool[usize::from(i) % pool.len()]
}

const CPU: &[&str] = &[
    "100m",
    "250m",
    "500m",
    "1",
    "1500m",
    "2",
    "4",
    "0.5",
    "64",
    "1000000n",
    "100u",
    "1e3",
    "1E-2",
    "+1",
    ".5",
    "5.",
    "0",
    "0m",
    "weird",
    "",
    "-1",
    "1Ki",
    "9223372036854775807",
    "1e400",
    " 2 ",
];
const MEMORY: &[&str] = &[
    "64Mi",
    "256Mi",
    "512Mi",
    "1Gi",
    "3Gi",
    "1e9",
    "bad",
    "0",
    "1",
    "128M",
    "1.5Gi",
    "16Ei",
    "8Ei",
    "1E",
    "19E",
    "100m",
    "",
    "1e-3",
    "0.1Ki",
    "123456789012345678901234567890",
];

/// A quantity: one from the pools, or built from parts (digits, fraction, suffix).
#[derive(Arbitrary, Debug)]
pub enum Quantity {
    Cpu(u8),
    Memory(u8),
    Parts {
        int: u64,
        frac: Option<u16>,
        suffix: u8,
    },
    Free(String),
}

const SUFFIXES: &[&str] = &[
    "", "n", "u", "m", "k", "M", "G", "T", "P", "E", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei", "e3",
    "e-3", "E18", "e19", "x",
];

impl Quantity {
    fn text(&self) -> String {
        match self {
            Quantity::Cpu(i) => pick(CPU, *i).to_string(),
            Quantity::Memory(i) => pick(MEMORY, *i).to_string(),
            Quantity::Parts { int, frac, suffix } => {
                let frac = frac.map(|f| format!(".{f}")).unwrap_or_default();
                format!("{int}{frac}{}", pick(SUFFIXES, *suffix))
            }
            Quantity::Free(text) => text.clone(),
        }
    }
}

#[derive(Arbitrary, Debug)]
pub struct Resources {
    request_cpu: Option<Quantity>,
    request_memory: Option<Quantity>,
    limit_cpu: Option<Quantity>,
    limit_memory: Option<Quantity>,
    /// Another resource (GPUs, ephemeral storage) beside CPU and memory.
    extra: Option<(u8, Quantity)>,
}

impl Resources {
    fn value(&self) -> Value {
        let mut requests = Map::new();
        let mut limits = Map::new();
        let put = |map: &mut Map<String, Value>, key: &str, q: &Option<Quantity>| {
            if let Some(q) = q {
                map.insert(key.into(), json!(q.text()));
            }
        };
        put(&mut requests, "cpu", &self.request_cpu);
        put(&mut requests, "memory", &self.request_memory);
        put(&mut limits, "cpu", &self.limit_cpu);
        put(&mut limits, "memory", &self.limit_memory);
        if let Some((key, q)) = &self.extra {
            let key = pick(
                &["nvidia.com/gpu", "ephemeral-storage", "hugepages-2Mi"],
                *key,
            );
            limits.insert(key.to_string(), json!(q.text()));
        }
        let mut resources = Map::new();
        if !requests.is_empty() {
            resources.insert("requests".into(), Value::Object(requests));
        }
        if !limits.is_empty() {
            resources.insert("limits".into(), Value::Object(limits));
        }
        Value::Object(resources)
    }
}

const PROGRAMS: &[&str] = &[
    "gunicorn",
    "uvicorn",
    "celery",
    "python",
    "python3",
    "hypercorn",
    "granian",
    "daphne",
    "uwsgi",
    "rq",
    "dramatiq",
    "huey_consumer",
    "flask",
    "fastapi",
    "nginx",
    "/entrypoint.sh",
    "sh",
    "bash",
    "/usr/local/bin/gunicorn",
    "ddtrace-run",
    "opentelemetry-instrument",
    "newrelic-admin",
    "airflow",
    "streamlit",
    "",
];
const ARGS: &[&str] = &[
    "app:app",
    "app.main:app",
    "project.wsgi",
    "project.asgi:application",
    "-A",
    "app",
    "worker",
    "beat",
    "flower",
    "-c",
    "3",
    "--concurrency",
    "--bind",
    "-b",
    "0.0.0.0:8000",
    ":8000",
    "127.0.0.1:8000",
    "unix:/tmp/s.sock",
    "--host",
    "0.0.0.0",
    "--port",
    "8000",
    "8080",
    "--workers",
    "-w",
    "4",
    "0",
    "-1",
    "999999999999",
    "--threads",
    "-k",
    "uvicorn.workers.UvicornWorker",
    "uvicorn_worker.UvicornWorker",
    "gevent",
    "gthread",
    "eventlet",
    "--timeout",
    "--graceful-timeout",
    "90",
    "--timeout-graceful-shutdown",
    "--preload",
    "--factory",
    "-m",
    "manage.py",
    "runserver",
    "migrate",
    "--http",
    "--module",
    "--processes",
    "python manage.py migrate && exec gunicorn app.wsgi",
    "exec uvicorn app:app --port $PORT",
    "celery -A app worker -c 2",
    "echo 'unterminated",
    "--config",
    "gunicorn.conf.py",
    "--log-level=debug",
    "--workers=3",
    "--bind=0.0.0.0:$(PORT)",
    "$(WEB_CONCURRENCY)",
    "api-server",
    "scheduler",
    "run",
];

#[derive(Arbitrary, Debug)]
pub struct Launch {
    program: Text,
    args: Vec<Text>,
    /// Whether the arguments go to `args` (with the program in `command`) or all to `command`.
    split: bool,
    /// Only `args`, the image's entrypoint running them.
    args_only: bool,
}

impl Launch {
    fn put(&self, container: &mut Map<String, Value>) {
        let program = self.program.get(PROGRAMS);
        let args: Vec<String> = self.args.iter().take(12).map(|a| a.get(ARGS)).collect();
        if self.args_only {
            let mut all = vec![program];
            all.extend(args);
            container.insert("args".into(), json!(all));
        } else if self.split {
            container.insert("command".into(), json!([program]));
            container.insert("args".into(), json!(args));
        } else {
            let mut all = vec![program];
            all.extend(args);
            container.insert("command".into(), json!(all));
        }
    }
}

const ENV_NAMES: &[&str] = &[
    "PYTHONUNBUFFERED",
    "PYTHONDONTWRITEBYTECODE",
    "PYTHONFAULTHANDLER",
    "WEB_CONCURRENCY",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
    "PYTHON_CPU_COUNT",
    "MALLOC_ARENA_MAX",
    "GUNICORN_CMD_ARGS",
    "PORT",
    "UVICORN_PORT",
    "UVICORN_WORKERS",
    "UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN",
    "CELERY_WORKER_CONCURRENCY",
    "DATABASE_URL",
    "DJANGO_SETTINGS_MODULE",
    "",
];
const ENV_VALUES: &[&str] = &[
    "0",
    "1",
    "2",
    "4",
    "abc",
    "",
    "-3",
    "4294967296",
    "--workers 3 --bind :8000",
    "--threads=4",
    "8000",
    "true",
    " 7 ",
];

#[derive(Arbitrary, Debug)]
pub enum EnvSource {
    Value(Text),
    NoValue,
    FieldRef,
    ResourceFieldRef(u8),
    ConfigMapKey(u8),
    SecretKey,
}

#[derive(Arbitrary, Debug)]
pub struct Env {
    name: Text,
    source: EnvSource,
}

impl Env {
    fn value(&self) -> Value {
        let name = self.name.get(ENV_NAMES);
        match &self.source {
            EnvSource::Value(value) => json!({"name": name, "value": value.get(ENV_VALUES)}),
            EnvSource::NoValue => json!({ "name": name }),
            EnvSource::FieldRef => {
                json!({"name": name, "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}})
            }
            EnvSource::ResourceFieldRef(i) => {
                let resource = pick(&["limits.cpu", "requests.memory", "limits.memory"], *i);
                json!({"name": name, "valueFrom": {"resourceFieldRef": {"resource": resource}}})
            }
            EnvSource::ConfigMapKey(i) => json!({"name": name, "valueFrom":
                {"configMapKeyRef": {"name": pick(&["known", "other"], *i), "key": "k"}}}),
            EnvSource::SecretKey => {
                json!({"name": name, "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}})
            }
        }
    }
}

#[derive(Arbitrary, Debug)]
pub enum PortRef {
    Number(u8),
    Name(u8),
}

const PORTS: &[i64] = &[8000, 8080, 9000, 80, 1, 65535, 0, -1, 65536, 5555];
const PORT_NAMES: &[&str] = &["http", "metrics", "web", "", "h2c", "not a name"];

impl PortRef {
    fn value(&self) -> Value {
        match self {
            PortRef::Number(i) => json!(pick(PORTS, *i)),
            PortRef::Name(i) => json!(pick(PORT_NAMES, *i)),
        }
    }
}

#[derive(Arbitrary, Debug)]
pub enum Handler {
    HttpGet { path: Text, port: PortRef },
    TcpSocket(PortRef),
    Exec(Text),
    Grpc(u8),
    Sleep(i8),
    Empty,
}

impl Handler {
    fn value(&self) -> Value {
        match self {
            Handler::HttpGet { path, port } => {
                json!({"httpGet": {"path": path.get(&["/", "/healthz", "/ready", "", "x"]), "port": port.value()}})
            }
            Handler::TcpSocket(port) => json!({"tcpSocket": {"port": port.value()}}),
            Handler::Exec(command) => {
                json!({"exec": {"command": ["sh", "-c", command.get(&["true", "sleep 5", ""])]}})
            }
            Handler::Grpc(i) => json!({"grpc": {"port": pick(PORTS, *i)}}),
            Handler::Sleep(seconds) => json!({"sleep": {"seconds": seconds}}),
            Handler::Empty => json!({}),
        }
    }
}

#[derive(Arbitrary, Debug)]
pub struct Probe {
    handler: Handler,
    period: Option<i8>,
    timeout: Option<i8>,
    failure: Option<i8>,
    initial_delay: Option<i16>,
}

impl Probe {
    fn value(&self) -> Value {
        let mut probe = match self.handler.value() {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        for (key, value) in [
            ("periodSeconds", self.period.map(i64::from)),
            ("timeoutSeconds", self.timeout.map(i64::from)),
            ("failureThreshold", self.failure.map(i64::from)),
            ("initialDelaySeconds", self.initial_delay.map(i64::from)),
        ] {
            if let Some(value) = value {
                probe.insert(key.into(), json!(value));
            }
        }
        Value::Object(probe)
    }
}

/// A field Kubernetes does not know, with a small JSON value.
#[derive(Arbitrary, Debug)]
pub struct Unknown {
    key: Text,
    value: Leaf,
}

#[derive(Arbitrary, Debug)]
pub enum Leaf {
    Null,
    Bool(bool),
    Int(i64),
    /// Eighths: exact in binary, so JSON text reads back the same number.
    Float(i16),
    Str(String),
    List(Vec<i8>),
    Object(Vec<(String, i8)>),
}

impl Leaf {
    fn value(&self) -> Value {
        match self {
            Leaf::Null => Value::Null,
            Leaf::Bool(b) => json!(b),
            Leaf::Int(i) => json!(i),
            Leaf::Float(eighths) => json!(f64::from(*eighths) / 8.0),
            Leaf::Str(s) => json!(s),
            Leaf::List(items) => json!(items),
            Leaf::Object(members) => Value::Object(
                members
                    .iter()
                    .take(4)
                    .map(|(k, v)| (k.clone(), json!(v)))
                    .collect(),
            ),
        }
    }
}

impl Unknown {
    fn put(&self, map: &mut Map<String, Value>) {
        // Free names get a prefix, so they never replace a field the generator set or one
        // Kubernetes knows.
        let key = match &self.key {
            Text::Free(name) => format!("x-{name}"),
            pick => pick.get(&["futureField", "xExtension", "zz", "~odd/key"]),
        };
        if !map.contains_key(&key) {
            map.insert(key, self.value.value());
        }
    }
}

const IMAGES: &[&str] = &[
    "python:3.13",
    "python:3.12-alpine",
    "python:3.11-slim",
    "docker.io/library/nginx:1.27",
    "example.com/team/app@sha256:0123",
    "apache/airflow:3.1.5",
    "bitnami/python:3.12",
    "ghcr.io/astral-sh/uv:python3.12-bookworm",
    "",
];
const NAMES: &[&str] = &[
    "app",
    "web",
    "worker",
    "api",
    "istio-proxy",
    "linkerd-proxy",
    "cloud-sql-proxy",
    "scheduler",
    "celery",
];

#[derive(Arbitrary, Debug)]
pub struct Container {
    name: Text,
    image: Option<u8>,
    launch: Option<Launch>,
    ports: Vec<(u8, Option<u8>)>,
    resources: Option<Resources>,
    env: Option<Vec<Env>>,
    env_from: Option<Vec<(bool, u8)>>,
    readiness: Option<Probe>,
    liveness: Option<Probe>,
    startup: Option<Probe>,
    pre_stop: Option<Handler>,
    unknown: Option<Unknown>,
}

impl Container {
    fn value(&self) -> Value {
        let mut c = Map::new();
        c.insert("name".into(), json!(self.name.get(NAMES)));
        if let Some(image) = self.image {
            c.insert("image".into(), json!(pick(IMAGES, image)));
        }
        if let Some(launch) = &self.launch {
            launch.put(&mut c);
        }
        if !self.ports.is_empty() {
            let ports: Vec<Value> = self
                .ports
                .iter()
                .take(3)
                .map(|(number, name)| {
                    let mut port = json!({"containerPort": pick(PORTS, *number)});
                    if let Some(name) = name {
                        port["name"] = json!(pick(PORT_NAMES, *name));
                    }
                    port
                })
                .collect();
            c.insert("ports".into(), json!(ports));
        }
        if let Some(resources) = &self.resources {
            c.insert("resources".into(), resources.value());
        }
        if let Some(env) = &self.env {
            let env: Vec<Value> = env.iter().take(8).map(Env::value).collect();
            c.insert("env".into(), json!(env));
        }
        if let Some(sources) = &self.env_from {
            let sources: Vec<Value> = sources
                .iter()
                .take(3)
                .map(|(secret, byte)| {
                    let name = pick(&["known", "other", ""], *byte);
                    // The same byte picks a prefix, which may or may not begin what pytune adds.
                    let prefix = pick(&["", "", "APP_", "WEB_"], *byte / 3);
                    let mut source = if *secret {
                        json!({"secretRef": {"name": name}})
                    } else {
                        json!({"configMapRef": {"name": name}})
                    };
                    if !prefix.is_empty() {
                        source["prefix"] = json!(prefix);
                    }
                    source
                })
                .collect();
            c.insert("envFrom".into(), json!(sources));
        }
        for (key, probe) in [
            ("readinessProbe", &self.readiness),
            ("livenessProbe", &self.liveness),
            ("startupProbe", &self.startup),
        ] {
            if let Some(probe) = probe {
                c.insert(key.into(), probe.value());
            }
        }
        if let Some(handler) = &self.pre_stop {
            c.insert("lifecycle".into(), json!({"preStop": handler.value()}));
        }
        if let Some(unknown) = &self.unknown {
            unknown.put(&mut c);
        }
        Value::Object(c)
    }
}

const ANNOTATION_KEYS: &[&str] = &[
    "pytune.io/mode",
    "pytune.io/skip",
    "pytune.io/containers",
    "pytune.io/profile",
    "pytune.io/port",
    "pytune.io/health-path",
    "pytune.io/workers",
    "pytune.io/memory-per-worker",
    "pytune.io/injected",
    "pytune.io/policy-revision",
    "pytune.io/unknown",
    "other.io/keep",
];
const ANNOTATION_VALUES: &[&str] = &[
    "off",
    "on",
    "x",
    "probes",
    "env,lifecycle",
    "resources",
    "all",
    "web",
    "worker",
    "job",
    "daemon",
    "helper",
    "nonsense",
    "app",
    "app,web",
    "8000",
    "http",
    "0",
    "70000",
    "/healthz",
    "healthz",
    "3",
    "256Mi",
    "bad",
    "",
    "web: resources.requests(cpu)",
];

#[derive(Arbitrary, Debug)]
pub enum Selector {
    Python,
    Other(Text),
    Absent,
}

#[derive(Arbitrary, Debug)]
pub struct Pod {
    /// `None`: the selector label (most Pods here are Python services).
    selector: Option<Selector>,
    annotations: Vec<(Text, Text)>,
    containers: Vec<Container>,
    init_containers: Option<Vec<Container>>,
    grace: Option<u8>,
    restart_policy: Option<u8>,
    pod_resources: Option<Resources>,
    owner: Option<u8>,
    generate_name: bool,
    unknown_spec: Option<Unknown>,
    unknown_top: Option<Unknown>,
}

const GRACE: &[i64] = &[0, 10, 30, 45, 300, -1, 1, 3600, i64::MAX];
const OWNERS: &[&str] = &[
    "ReplicaSet",
    "DaemonSet",
    "Job",
    "StatefulSet",
    "Node",
    "CronJob",
];

impl Pod {
    /// The Pod's JSON, as the API server would send it in a review.
    pub fn value(&self) -> Value {
        let mut metadata = Map::new();
        if self.generate_name {
            metadata.insert("generateName".into(), json!("p-"));
        } else {
            metadata.insert("name".into(), json!("p"));
        }
        metadata.insert("namespace".into(), json!("n"));
        match self.selector.as_ref().unwrap_or(&Selector::Python) {
            Selector::Python => {
                metadata.insert(
                    "labels".into(),
                    json!({"pytune.io/runtime": "python", "app": "p"}),
                );
            }
            Selector::Other(value) => {
                let value = value.get(&["node", "", "Python"]);
                metadata.insert("labels".into(), json!({ "pytune.io/runtime": value }));
            }
            Selector::Absent => {}
        }
        if !self.annotations.is_empty() {
            let annotations: Map<String, Value> = self
                .annotations
                .iter()
                .take(6)
                .map(|(key, value)| {
                    (
                        key.get(ANNOTATION_KEYS),
                        json!(value.get(ANNOTATION_VALUES)),
                    )
                })
                .collect();
            metadata.insert("annotations".into(), Value::Object(annotations));
        }
        if let Some(owner) = self.owner {
            metadata.insert(
                "ownerReferences".into(),
                json!([{"apiVersion": "apps/v1", "kind": pick(OWNERS, owner), "name": "o",
                        "uid": "0", "controller": true}]),
            );
        }
        // Container names are unique in a valid Pod.
        let mut seen = std::collections::HashSet::new();
        let containers: Vec<Value> = self
            .containers
            .iter()
            .take(4)
            .map(Container::value)
            .filter(|c| seen.insert(c["name"].as_str().unwrap_or_default().to_string()))
            .collect();
        let mut spec = Map::new();
        spec.insert("containers".into(), json!(containers));
        if let Some(init) = &self.init_containers {
            let init: Vec<Value> = init
                .iter()
                .take(2)
                .map(Container::value)
                .filter(|c| seen.insert(c["name"].as_str().unwrap_or_default().to_string()))
                .collect();
            spec.insert("initContainers".into(), json!(init));
        }
        if let Some(grace) = self.grace {
            spec.insert(
                "terminationGracePeriodSeconds".into(),
                json!(pick(GRACE, grace)),
            );
        }
        if let Some(restart) = self.restart_policy {
            spec.insert(
                "restartPolicy".into(),
                json!(pick(
                    &["Always", "Never", "OnFailure", "Sometimes"],
                    restart
                )),
            );
        }
        if let Some(resources) = &self.pod_resources {
            spec.insert("resources".into(), resources.value());
        }
        if let Some(unknown) = &self.unknown_spec {
            unknown.put(&mut spec);
        }
        let mut pod = Map::new();
        pod.insert("apiVersion".into(), json!("v1"));
        pod.insert("kind".into(), json!("Pod"));
        pod.insert("metadata".into(), Value::Object(metadata));
        pod.insert("spec".into(), Value::Object(spec));
        if let Some(unknown) = &self.unknown_top {
            unknown.put(&mut pod);
        }
        Value::Object(pod)
    }
}

/// The Pod the bytes describe; `None` when they run out before it is complete.
pub fn pod(bytes: &[u8]) -> Option<Value> {
    let mut input = Unstructured::new(bytes);
    Pod::arbitrary(&mut input).ok().map(|pod| pod.value())
}
