//! pytune's env and probes against real Python servers: gunicorn (sync workers), gunicorn with
//! uvicorn's worker class, uvicorn, and a Celery worker (prefork pool).
//!
//! Each test plans a fixture Pod (`tests/fixtures/python-servers/`) with the engine, applies the
//! patch, and runs the server the Pod runs with exactly the mutated container's env (plus `PATH` to
//! the virtual environment), on 127.0.0.1 at the port the probes target. It then checks, against the numbers in the engine's
//! output (never numbers of its own):
//!
//! 1. the server runs `WEB_CONCURRENCY` worker processes;
//! 2. every probe's port accepts connections, every HTTP probe and `GET /` answer 200;
//! 3. after SIGTERM, with a request in flight, the server finishes that request and exits within
//!    the Pod's grace period minus the preStop pause;
//! 4. what the app prints reaches the pipe while the server runs (`PYTHONUNBUFFERED`).
//!
//! The Celery worker serves nothing and gets no probes; its tests check that it forks
//! `CELERY_WORKER_CONCURRENCY` pool children (or its own `--concurrency`, where pytune adds no
//! variable), and that after SIGTERM it finishes the task it is running and exits within the grace
//! period (warm shutdown).
//!
//! The servers come from the virtual environment `scripts/python-env` creates, at
//! `$PYTUNE_PYTHON_VENV` (default `target/python-venv`). Without it these tests fail and say so.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use pytune::core::engine::{self, Context, KubeVersion};
use pytune::core::policy::Policy;
use pytune::core::quantity;
use serde_json::Value;

/// How long a server may take to accept connections and boot all its workers.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);
/// How long a printed line may take to reach the pipe when output is unbuffered.
const LINE_TIMEOUT: Duration = Duration::from_secs(5);
/// Connect, read and write timeout of one HTTP request.
const IO_TIMEOUT: Duration = Duration::from_secs(10);
/// How long workers may outlive their master before that counts as a leak.
const REAP_TIMEOUT: Duration = Duration::from_secs(3);
/// How long the control check listens for a line that a buffered `print` should hold back.
const BUFFERED_QUIET: Duration = Duration::from_millis(1500);
/// How long a server left running at the end of a test gets to stop on SIGTERM before SIGKILL.
const STOP_TIMEOUT: Duration = Duration::from_secs(3);
const POLL: Duration = Duration::from_millis(25);

/// Kubernetes' grace period when a Pod names none.
const KUBERNETES_DEFAULT_GRACE_SECONDS: i64 = 30;
/// What an exec preStop handler is taken to pause, when the Pod gets one instead of a native sleep.
const EXEC_PRE_STOP_SECONDS: i64 = 5;

/// The line every app writes (without flushing) when a worker imports it.
const LOADED: &str = "pytune-test app loaded pid=";
/// The line every app writes when a `/slow` request (the Celery app: its `slow` task) starts.
const SLOW_START: &str = "pytune-test slow start pid=";
/// The line the Celery app writes when its `slow` task ends.
const SLOW_DONE: &str = "pytune-test slow done pid=";
/// The line the Celery app writes in each pool child as it starts.
const CELERY_CHILD: &str = "pytune-test celery child pid=";
/// The line the Celery app writes in the worker's main process once the worker is ready.
const CELERY_READY: &str = "pytune-test worker ready pid=";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn apps_dir() -> PathBuf {
    repo().join("tests/python")
}

/// The virtual environment with gunicorn, uvicorn, uvicorn-worker and Celery.
struct Venv {
    bin: PathBuf,
}

impl Venv {
    /// The venv at `$PYTUNE_PYTHON_VENV` (relative to the repository) or `target/python-venv`;
    /// panics with how to create it when it is missing or incomplete.
    fn require() -> Venv {
        let dir = match std::env::var_os("PYTUNE_PYTHON_VENV") {
            Some(dir) if !dir.is_empty() => repo().join(dir),
            _ => repo().join("target/python-venv"),
        };
        let bin = dir.join("bin");
        let missing: Vec<&str> = ["python", "gunicorn", "uvicorn", "celery"]
            .into_iter()
            .filter(|name| !bin.join(name).is_file())
            .collect();
        let imports = missing.is_empty()
            && Command::new(bin.join("python"))
                .args(["-c", "import gunicorn, uvicorn, uvicorn_worker, celery"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success());
        assert!(
            imports,
            "no usable Python virtual environment at {} (missing: {}).\n\
             These tests run real gunicorn, uvicorn and Celery processes. Create the environment with\n\
             \n    scripts/python-env\n\n\
             (it installs the pinned tests/python/requirements.txt; set PYTUNE_PYTHON_VENV to use \
             another directory, the same for both).",
            dir.display(),
            if missing.is_empty() {
                "gunicorn, uvicorn, uvicorn_worker or celery do not import".to_string()
            } else {
                format!("bin/{}", missing.join(", bin/"))
            }
        );
        Venv { bin }
    }

    /// `PATH` for a server: the venv first, then the system's usual directories.
    fn path(&self) -> String {
        format!("{}:/usr/local/bin:/usr/bin:/bin", self.bin.display())
    }
}

/// A port on 127.0.0.1 that nothing listens on right now.
fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("bind an ephemeral port on 127.0.0.1")
        .port()
}

/// A scenario Pod from `tests/fixtures/python-servers/`, with `${PORT}` (if `port` is given; the
/// fixture must then have one) set to `port`.
fn fixture_pod(file: &str, port: Option<u16>) -> Value {
    let path = repo().join("tests/fixtures/python-servers").join(file);
    let mut text =
        std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    if let Some(port) = port {
        assert!(
            text.contains("${PORT}"),
            "{}: no ${{PORT}} to set",
            path.display()
        );
        text = text.replace("${PORT}", &port.to_string());
    }
    serde_saphyr::from_str(&text).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

/// A scenario Pod from `tests/fixtures/python-servers/`, serving on `port` (its `${PORT}`).
fn server_pod(file: &str, port: u16) -> Value {
    fixture_pod(file, Some(port))
}

fn gunicorn_sync_pod(port: u16) -> Value {
    server_pod("gunicorn-sync.yaml", port)
}

fn gunicorn_uvicorn_worker_pod(port: u16) -> Value {
    server_pod("gunicorn-uvicorn-worker.yaml", port)
}

fn uvicorn_pod(port: u16) -> Value {
    server_pod("uvicorn.yaml", port)
}

/// The Celery worker Pod: prefork pool, in-memory broker, a CPU request of 2, no concurrency set.
fn celery_worker_pod() -> Value {
    fixture_pod("celery-worker.yaml", None)
}

/// Sets the CPU request of a fixture Pod's container.
fn set_cpu_request(pod: &mut Value, cpu: &str) {
    pod["spec"]["containers"][0]["resources"]["requests"]["cpu"] = Value::from(cpu);
}

/// Appends `extra` to the args of a fixture Pod's container.
fn append_args(pod: &mut Value, extra: &[&str]) {
    pod["spec"]["containers"][0]["args"]
        .as_array_mut()
        .expect("the fixture's container has args")
        .extend(extra.iter().map(|arg| Value::from(*arg)));
}

/// A check a probe of the mutated Pod makes.
#[derive(Debug, Clone, PartialEq)]
enum ProbeCheck {
    Tcp(u16),
    Http(u16, String),
}

impl ProbeCheck {
    fn port(&self) -> u16 {
        match self {
            ProbeCheck::Tcp(port) | ProbeCheck::Http(port, _) => *port,
        }
    }
}

/// What the engine's output says about the one container of a fixture Pod.
#[derive(Debug)]
struct Planned {
    /// The container's env after the patch, in order.
    env: Vec<(String, String)>,
    /// The container's command and args after the patch.
    argv: Vec<String>,
    /// `(probe field, check)` of every probe after the patch.
    probes: Vec<(String, ProbeCheck)>,
    /// The port the startup and readiness probes target, if the Pod has such probes.
    probe_port: Option<u16>,
    /// `terminationGracePeriodSeconds` after the patch, or Kubernetes' default.
    grace_seconds: i64,
    /// What the preStop handler pauses before SIGTERM.
    pause_seconds: i64,
    /// The container's memory limit after the patch, in bytes.
    memory_limit: Option<u64>,
}

impl Planned {
    fn env(&self, name: &str) -> Option<&str> {
        self.env
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// `WEB_CONCURRENCY` as the number of workers a server runs.
    fn web_concurrency(&self) -> usize {
        let text = self
            .env("WEB_CONCURRENCY")
            .unwrap_or_else(|| panic!("the engine set no WEB_CONCURRENCY; env: {:?}", self.env));
        let workers: usize = text
            .parse()
            .unwrap_or_else(|_| panic!("WEB_CONCURRENCY {text:?} is not a whole number"));
        assert!(
            workers > 1,
            "the fixture should get more than one worker (WEB_CONCURRENCY={workers}); \
             give it more CPU so the worker count is actually tested"
        );
        workers
    }

    /// How long the app has from SIGTERM to exit: the grace period minus the preStop pause.
    fn shutdown_budget(&self) -> Duration {
        let seconds = self.grace_seconds - self.pause_seconds;
        assert!(
            seconds > 0,
            "grace period {}s leaves nothing after the {}s preStop pause",
            self.grace_seconds,
            self.pause_seconds
        );
        Duration::from_secs(seconds.unsigned_abs())
    }
}

/// Plans `pod` with the embedded policy on Kubernetes 1.33 and reads the mutated container.
fn plan(pod: &Value) -> Planned {
    let ctx = Context {
        kubernetes_version: Some(KubeVersion::new(1, 33)),
        ..Default::default()
    };
    let plan = engine::plan(pod, &Policy::embedded(), &ctx).expect("the fixture is a valid Pod");
    let mut mutated = pod.clone();
    json_patch::patch(&mut mutated, &plan.json_patch())
        .expect("the plan's patch applies to its Pod");
    let container = &mutated["spec"]["containers"][0];

    let env = container["env"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|var| {
            let name = var["name"].as_str().expect("env entries have a name");
            assert!(
                var.get("valueFrom").is_none(),
                "env {name} uses valueFrom, which a local run cannot reproduce"
            );
            let value = var["value"].as_str().unwrap_or_default();
            (name.to_string(), value.to_string())
        })
        .collect();

    let argv = ["command", "args"]
        .iter()
        .flat_map(|field| container[*field].as_array().cloned().unwrap_or_default())
        .map(|part| {
            part.as_str()
                .expect("command and args are strings")
                .to_string()
        })
        .collect();

    let mut probes = Vec::new();
    for field in ["startupProbe", "readinessProbe", "livenessProbe"] {
        let probe = &container[field];
        if probe.is_null() {
            continue;
        }
        let check = if let Some(tcp) = probe.get("tcpSocket") {
            ProbeCheck::Tcp(probe_port(container, &tcp["port"]))
        } else if let Some(http) = probe.get("httpGet") {
            let path = http["path"].as_str().unwrap_or("/").to_string();
            ProbeCheck::Http(probe_port(container, &http["port"]), path)
        } else {
            panic!("{field} is neither tcpSocket nor httpGet: {probe}");
        };
        probes.push((field.to_string(), check));
    }
    let traffic_ports: BTreeSet<u16> = probes
        .iter()
        .filter(|(field, _)| field != "livenessProbe")
        .map(|(_, check)| check.port())
        .collect();
    assert!(
        traffic_ports.len() <= 1,
        "expected the startup and readiness probes on one port; probes: {probes:?}"
    );
    let probe_port = traffic_ports.into_iter().next();

    let grace_seconds = mutated["spec"]["terminationGracePeriodSeconds"]
        .as_i64()
        .unwrap_or(KUBERNETES_DEFAULT_GRACE_SECONDS);
    let pre_stop = &container["lifecycle"]["preStop"];
    let pause_seconds = if let Some(seconds) = pre_stop["sleep"]["seconds"].as_i64() {
        seconds
    } else if pre_stop.get("exec").is_some() {
        EXEC_PRE_STOP_SECONDS
    } else {
        0
    };

    let memory_limit = container["resources"]["limits"]["memory"]
        .as_str()
        .map(|text| quantity::memory_bytes(text).expect("a valid memory limit"));

    Planned {
        env,
        argv,
        probes,
        probe_port,
        grace_seconds,
        pause_seconds,
        memory_limit,
    }
}

/// A probe's `port`, a number or the name of one of the container's ports.
fn probe_port(container: &Value, port: &Value) -> u16 {
    let number = match port {
        Value::Number(number) => number.as_u64(),
        Value::String(name) => container["ports"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|declared| declared["name"].as_str() == Some(name))
            .and_then(|declared| declared["containerPort"].as_u64()),
        _ => None,
    };
    number
        .and_then(|number| u16::try_from(number).ok())
        .unwrap_or_else(|| panic!("probe port {port} names no port of the container"))
}

/// One line a server wrote.
struct Line {
    stdout: bool,
    text: String,
}

/// A server process in its own process group. Dropping it kills the whole group (master, workers,
/// multiprocessing helpers), so nothing outlives a test, even one that fails.
struct Server {
    name: String,
    child: Child,
    pid: u32,
    output: Arc<Mutex<Vec<Line>>>,
    exit: Option<ExitStatus>,
}

impl Server {
    /// Starts `argv` with exactly `env` plus `PATH`, in the apps' directory.
    fn start(name: &str, venv: &Venv, argv: &[String], env: &[(String, String)]) -> Server {
        let (program, args) = argv.split_first().expect("a command to run");
        let in_venv = venv.bin.join(program);
        let program = if in_venv.is_file() {
            in_venv
        } else {
            PathBuf::from(program)
        };
        let mut command = Command::new(&program);
        command
            .args(args)
            .env_clear()
            .envs(env.iter().map(|(key, value)| (key, value)))
            .env("PATH", venv.path())
            .current_dir(apps_dir())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = command
            .spawn()
            .unwrap_or_else(|err| panic!("{name}: cannot start {}: {err}", program.display()));
        let output = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("piped stdout");
        let stderr = child.stderr.take().expect("piped stderr");
        collect(stdout, true, Arc::clone(&output));
        collect(stderr, false, Arc::clone(&output));
        Server {
            name: name.to_string(),
            pid: child.id(),
            child,
            output,
            exit: None,
        }
    }

    /// Whether the master process still runs (reaping it once it has exited).
    fn running(&mut self) -> bool {
        if self.exit.is_none() {
            self.exit = self.child.try_wait().ok().flatten();
        }
        self.exit.is_none()
    }

    /// Lines of stdout so far.
    fn stdout_lines(&self) -> Vec<String> {
        let output = self
            .output
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        output
            .iter()
            .filter(|line| line.stdout)
            .map(|line| line.text.clone())
            .collect()
    }

    /// Pids from the stdout lines that start with `prefix` followed by a pid.
    fn pids_after(&self, prefix: &str) -> BTreeSet<u32> {
        self.stdout_lines()
            .iter()
            .filter_map(|line| line.strip_prefix(prefix))
            .filter_map(|rest| rest.split_whitespace().next()?.parse().ok())
            .collect()
    }

    /// Polls `check` until it yields a value, failing when `timeout` passes or the server exits.
    fn wait_for<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        mut check: impl FnMut(&mut Server) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(value) = check(self) {
                return value;
            }
            if !self.running() {
                self.fail(&format!(
                    "exited ({:?}) while waiting for {what}",
                    self.exit
                ));
            }
            if Instant::now() >= deadline {
                self.fail(&format!("no {what} within {timeout:?}"));
            }
            thread::sleep(POLL);
        }
    }

    /// Panics with `message` and everything the server wrote.
    fn fail(&self, message: &str) -> ! {
        // Give the readers a moment to collect what is still in the pipes.
        thread::sleep(Duration::from_millis(200));
        let output = self
            .output
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        let text: Vec<String> = output
            .iter()
            .map(|line| {
                format!(
                    "{} {}",
                    if line.stdout { "out|" } else { "err|" },
                    line.text
                )
            })
            .collect();
        panic!(
            "{}: {message}\n--- server output\n{}",
            self.name,
            text.join("\n")
        );
    }

    /// Sends `signal` (a name such as TERM) to the master process only, as the kubelet does to a
    /// container's main process.
    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args(["-s", signal, &self.pid.to_string()])
            .status();
        if !status.is_ok_and(|status| status.success()) {
            self.fail(&format!("could not send SIG{signal} to {}", self.pid));
        }
    }
}

/// Sends `signal` to every process in the process group `group`, quietly.
fn signal_group(group: u32, signal: &str) {
    let _ = Command::new("kill")
        .args(["-s", signal, "--", &format!("-{group}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

impl Drop for Server {
    fn drop(&mut self) {
        // A master still running gets SIGTERM first, so it reaps its workers itself; then SIGKILL
        // for whatever is left of the group.
        if self.running() {
            signal_group(self.pid, "TERM");
            let deadline = Instant::now() + STOP_TIMEOUT;
            while self.running() && Instant::now() < deadline {
                thread::sleep(POLL);
            }
        }
        signal_group(self.pid, "KILL");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `pipe` line by line into `output` until it closes.
fn collect(pipe: impl Read + Send + 'static, stdout: bool, output: Arc<Mutex<Vec<Line>>>) {
    thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(text) = line else { break };
            output
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .push(Line { stdout, text });
        }
    });
}

/// A process as `/proc` shows it.
struct Proc {
    pid: u32,
    ppid: u32,
    state: char,
}

fn read_proc(pid: u32) -> Option<Proc> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`; comm may hold spaces and parentheses, so split after the last ')'.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?.chars().next()?;
    let ppid = fields.next()?.parse().ok()?;
    Some(Proc { pid, ppid, state })
}

/// Live (not zombie) children of `parent`.
fn children(parent: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse().ok())
        .filter_map(read_proc)
        .filter(|proc| proc.ppid == parent && proc.state != 'Z')
        .map(|proc| proc.pid)
        .collect()
}

fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|bytes| String::from_utf8_lossy(&bytes).replace('\0', " "))
        .unwrap_or_default()
}

/// The worker processes of a server's master: its children, less the resource tracker that
/// multiprocessing's spawn start method adds beside uvicorn's workers.
fn workers(master: u32) -> BTreeSet<u32> {
    children(master)
        .into_iter()
        .filter(|pid| !cmdline(*pid).contains("multiprocessing.resource_tracker"))
        .collect()
}

/// Resident memory of `pid` in bytes, from `/proc/<pid>/status`.
fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
            line.split_whitespace().nth(1)?.parse::<u64>().ok()
        })
        .map_or(0, |kib| kib * 1024)
}

fn alive(pid: u32) -> bool {
    read_proc(pid).is_some_and(|proc| proc.state != 'Z')
}

/// `GET path` over HTTP/1.0 on 127.0.0.1; the status code and body.
fn http_get(port: u16, path: &str) -> Result<(u16, String), String> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut stream = TcpStream::connect_timeout(&addr, IO_TIMEOUT)
        .map_err(|err| format!("connect to {addr}: {err}"))?;
    stream
        .set_read_timeout(Some(IO_TIMEOUT))
        .and_then(|()| stream.set_write_timeout(Some(IO_TIMEOUT)))
        .map_err(|err| format!("socket timeouts: {err}"))?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\nConnection: close\r\n\r\n"
    )
    .map_err(|err| format!("send GET {path}: {err}"))?;
    let mut bytes = Vec::new();
    stream
        .read_to_end(&mut bytes)
        .map_err(|err| format!("read the answer to GET {path}: {err}"))?;
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no HTTP status in the answer to GET {path}: {text:?}"))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    Ok((status, body))
}

fn tcp_accepts(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
}

/// The Pod's own command, bound to 127.0.0.1 instead of every interface.
fn local_argv(planned: &Planned) -> Vec<String> {
    planned
        .argv
        .iter()
        .map(|part| part.replace("0.0.0.0", "127.0.0.1"))
        .collect()
}

/// Checks that the server's master and all its children together stay inside the container's
/// memory limit (RSS counts shared pages in every process, so the sum overstates what the cgroup
/// is charged); the number of processes and their resident bytes.
fn check_memory(server: &Server, planned: &Planned) -> (usize, u64) {
    let processes: Vec<u32> = std::iter::once(server.pid)
        .chain(children(server.pid))
        .collect();
    let rss: u64 = processes.iter().map(|pid| rss_bytes(*pid)).sum();
    if let Some(limit) = planned.memory_limit
        && rss >= limit
    {
        server.fail(&format!(
            "{} processes use {} resident, over the memory limit {}",
            processes.len(),
            quantity::format_bytes(rss),
            quantity::format_bytes(limit)
        ));
    }
    (processes.len(), rss)
}

/// Fails unless every one of `workers` is gone shortly after their master exited.
fn check_reaped(server: &Server, workers: &BTreeSet<u32>) {
    let reap_deadline = Instant::now() + REAP_TIMEOUT;
    while workers.iter().any(|pid| alive(*pid)) && Instant::now() < reap_deadline {
        thread::sleep(POLL);
    }
    let left: Vec<u32> = workers.iter().copied().filter(|pid| alive(*pid)).collect();
    if !left.is_empty() {
        server.fail(&format!("workers {left:?} outlived their master"));
    }
}

/// Plans `pod`, runs its server with the planned env and checks workers, probes, shutdown and
/// unbuffered output against the plan.
fn exercise(name: &str, pod: impl Fn(u16) -> Value, extra_args: &[&str]) {
    let venv = Venv::require();
    let port = free_port();
    let planned = plan(&pod(port));
    let expected_workers = planned.web_concurrency();
    let budget = planned.shutdown_budget();
    assert!(
        planned
            .argv
            .iter()
            .any(|part| part.contains(&port.to_string())),
        "{name}: the fixture serves port {port}: {:?}",
        planned.argv
    );
    assert_eq!(
        planned.probe_port,
        Some(port),
        "{name}: no startup or readiness probe on the port the server binds; probes: {:?}",
        planned.probes
    );

    let mut argv = local_argv(&planned);
    argv.extend(extra_args.iter().map(|arg| (*arg).to_string()));
    let mut server = Server::start(name, &venv, &argv, &planned.env);
    let started = Instant::now();

    // (2) The port the probes target accepts connections.
    server.wait_for(
        &format!("TCP listener on probe port {port}"),
        STARTUP_TIMEOUT,
        |_| tcp_accepts(port).then_some(()),
    );

    // (1) WEB_CONCURRENCY worker processes, each of which imported the app.
    let master = server.pid;
    server.wait_for(
        &format!("{expected_workers} booted workers (WEB_CONCURRENCY)"),
        STARTUP_TIMEOUT.saturating_sub(started.elapsed()),
        |server| {
            let booted = server.pids_after(LOADED).len() >= expected_workers;
            (booted && workers(master).len() >= expected_workers).then_some(())
        },
    );
    // Let a server that would overshoot show it.
    thread::sleep(Duration::from_millis(500));
    let worker_pids = workers(master);
    let loaded_pids = server.pids_after(LOADED);
    if worker_pids.len() != expected_workers {
        server.fail(&format!(
            "{} worker processes {worker_pids:?}, but WEB_CONCURRENCY={expected_workers}",
            worker_pids.len()
        ));
    }
    if loaded_pids != worker_pids {
        server.fail(&format!(
            "the app was imported by {loaded_pids:?}, not by exactly the workers {worker_pids:?}"
        ));
    }

    let (processes, rss) = check_memory(&server, &planned);

    // (2) Every probe passes, and the app answers.
    for (field, check) in &planned.probes {
        let passed = match check {
            ProbeCheck::Tcp(port) => tcp_accepts(*port),
            ProbeCheck::Http(port, path) => {
                http_get(*port, path).is_ok_and(|(status, _)| status == 200)
            }
        };
        if !passed {
            server.fail(&format!("{field} ({check:?}) fails"));
        }
    }
    match http_get(port, "/") {
        Ok((200, body)) if body.starts_with("ok /") => {}
        other => server.fail(&format!("GET / answered {other:?}")),
    }

    // (4) A line the app prints while handling a request reaches the pipe while the server runs.
    server.wait_for(
        "the request's log line on stdout while the server runs",
        LINE_TIMEOUT,
        |server| {
            server
                .stdout_lines()
                .iter()
                .any(|line| line.starts_with("pytune-test request path=/ "))
                .then_some(())
        },
    );

    // (3) SIGTERM with a request in flight: the request completes, and the server exits within the
    // grace period less the preStop pause.
    let in_flight = thread::spawn(move || http_get(port, "/slow"));
    server.wait_for("the /slow request to start", LINE_TIMEOUT, |server| {
        (!server.pids_after(SLOW_START).is_empty()).then_some(())
    });
    let sigterm = Instant::now();
    server.signal("TERM");
    while server.running() && sigterm.elapsed() < budget {
        thread::sleep(POLL);
    }
    let shutdown = sigterm.elapsed();
    if server.running() {
        server.fail(&format!(
            "still running {shutdown:?} after SIGTERM; the Pod allows {budget:?} \
             (terminationGracePeriodSeconds {} - preStop pause {}s)",
            planned.grace_seconds, planned.pause_seconds
        ));
    }
    match in_flight.join() {
        Ok(Ok((200, _))) => {}
        other => server.fail(&format!(
            "the request in flight at SIGTERM was not completed: {other:?}"
        )),
    }
    check_reaped(&server, &worker_pids);
    eprintln!(
        "{name}: {expected_workers} workers, {processes} processes with {} MiB resident (limit {}); \
         exited {shutdown:.2?} after SIGTERM (allowed {budget:?}: grace {}s - pause {}s)",
        rss / (1024 * 1024),
        planned
            .memory_limit
            .map_or("none".to_string(), quantity::format_bytes),
        planned.grace_seconds,
        planned.pause_seconds
    );
}

/// gunicorn 25+ opens a control socket under `$HOME/.gunicorn` by default; tests running side by
/// side would share it, so each test's gunicorn runs without one.
const GUNICORN_TEST_ARGS: &[&str] = &["--no-control-socket"];

#[test]
fn gunicorn_sync_workers_follow_the_planned_env() {
    exercise("gunicorn (sync)", gunicorn_sync_pod, GUNICORN_TEST_ARGS);
}

#[test]
fn gunicorn_with_uvicorn_workers_follows_the_planned_env() {
    exercise(
        "gunicorn (uvicorn worker)",
        gunicorn_uvicorn_worker_pod,
        GUNICORN_TEST_ARGS,
    );
}

#[test]
fn uvicorn_follows_the_planned_env() {
    exercise("uvicorn", uvicorn_pod, &[]);
}

/// The control for (4): the same `print` to a pipe is held back without `PYTHONUNBUFFERED` and
/// arrives at once with the planned env.
#[test]
fn print_reaches_a_pipe_at_once_only_when_unbuffered() {
    let venv = Venv::require();
    let planned = plan(&gunicorn_sync_pod(free_port()));
    assert_eq!(
        planned.env("PYTHONUNBUFFERED"),
        Some("1"),
        "the engine sets PYTHONUNBUFFERED=1"
    );
    let script = vec!["python".to_string(), "print_then_wait.py".to_string()];
    let printed = |server: &Server| {
        server
            .stdout_lines()
            .iter()
            .any(|line| line == "pytune-test control line")
    };

    let buffered_env: Vec<(String, String)> = planned
        .env
        .iter()
        .filter(|(key, _)| key != "PYTHONUNBUFFERED")
        .cloned()
        .collect();
    let mut buffered = Server::start(
        "python without PYTHONUNBUFFERED",
        &venv,
        &script,
        &buffered_env,
    );
    let quiet_until = Instant::now() + BUFFERED_QUIET;
    while Instant::now() < quiet_until {
        if printed(&buffered) {
            buffered.fail("the line arrived although stdout is a pipe and output is buffered");
        }
        thread::sleep(POLL);
    }
    if !buffered.running() {
        buffered.fail("exited before the check was done");
    }
    drop(buffered);

    let mut unbuffered = Server::start("python with the planned env", &venv, &script, &planned.env);
    unbuffered.wait_for("the printed line", LINE_TIMEOUT, |server| {
        printed(server).then_some(())
    });
}

/// `PYTHON_CPU_COUNT` is what `os.cpu_count()` reports on CPython 3.13 and later; older
/// interpreters ignore it, and must at least run with the planned env.
#[test]
fn python_cpu_count_is_what_python_reports_from_3_13() {
    let venv = Venv::require();
    let planned = plan(&gunicorn_sync_pod(free_port()));
    let planned_count = planned
        .env("PYTHON_CPU_COUNT")
        .expect("the engine sets PYTHON_CPU_COUNT")
        .to_string();
    let output = Command::new(venv.bin.join("python"))
        .args([
            "-c",
            "import os, sys; print('%d.%d' % sys.version_info[:2], os.cpu_count())",
        ])
        .env_clear()
        .envs(planned.env.iter().map(|(key, value)| (key, value)))
        .env("PATH", venv.path())
        .current_dir(apps_dir())
        .output()
        .expect("run the venv's python");
    assert!(
        output.status.success(),
        "python rejects the planned env: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let (version, count) = text
        .trim()
        .split_once(' ')
        .unwrap_or_else(|| panic!("unexpected output {text:?}"));
    let (major, minor) = version
        .split_once('.')
        .and_then(|(major, minor)| Some((major.parse::<u32>().ok()?, minor.parse::<u32>().ok()?)))
        .unwrap_or_else(|| panic!("unexpected version {version:?}"));
    if (major, minor) >= (3, 13) {
        assert_eq!(
            count, planned_count,
            "Python {version} reports os.cpu_count()={count}, PYTHON_CPU_COUNT={planned_count}"
        );
    } else {
        eprintln!(
            "Python {version} ignores PYTHON_CPU_COUNT={planned_count} (os.cpu_count()={count}); \
             build the venv with PYTUNE_PYTHON=python3.13 to check it"
        );
    }
}

/// The pool children a Celery worker should fork: the `--concurrency`/`-c` of the Pod's command,
/// where pytune must add no `CELERY_WORKER_CONCURRENCY` (the flag would override it), or else the
/// `CELERY_WORKER_CONCURRENCY` pytune planned.
fn celery_concurrency(planned: &Planned) -> usize {
    let argv = &planned.argv;
    let flag = argv.iter().enumerate().find_map(|(at, arg)| {
        if arg == "--concurrency" || arg == "-c" {
            argv.get(at + 1).cloned()
        } else {
            arg.strip_prefix("--concurrency=").map(str::to_string)
        }
    });
    let text = match (flag, planned.env("CELERY_WORKER_CONCURRENCY")) {
        (Some(flag), None) => flag,
        (None, Some(env)) => env.to_string(),
        (Some(flag), Some(env)) => panic!(
            "the command sets --concurrency {flag}, yet the engine added \
             CELERY_WORKER_CONCURRENCY={env}"
        ),
        (None, None) => panic!(
            "no --concurrency, and the engine set no CELERY_WORKER_CONCURRENCY; env: {:?}",
            planned.env
        ),
    };
    text.parse()
        .unwrap_or_else(|_| panic!("concurrency {text:?} is not a whole number"))
}

/// The pool children the worker forks when nothing sets a count: one per CPU the machine reports
/// (`billiard.cpu_count()`), asked with none of the planned env.
fn celery_default_concurrency(venv: &Venv) -> usize {
    let output = Command::new(venv.bin.join("python"))
        .args(["-c", "import billiard; print(billiard.cpu_count())"])
        .env_clear()
        .env("PATH", venv.path())
        .output()
        .expect("run the venv's python");
    let text = String::from_utf8_lossy(&output.stdout);
    text.trim()
        .parse()
        .unwrap_or_else(|_| panic!("billiard.cpu_count() printed {text:?}"))
}

/// Plans a Celery worker Pod, runs the worker with the planned env and checks against the plan:
/// its pool children, the memory limit, and a warm shutdown within the grace period (SIGTERM while
/// a task runs: the task completes and the worker exits in time). The number of pool children.
fn exercise_celery(name: &str, pod: &Value) -> usize {
    let venv = Venv::require();
    let planned = plan(pod);
    let expected = celery_concurrency(&planned);
    let budget = planned.shutdown_budget();
    let machine_default = celery_default_concurrency(&venv);

    let mut worker = Server::start(name, &venv, &planned.argv, &planned.env);
    let started = Instant::now();
    let master = worker.pid;
    worker.wait_for("the worker to be ready", STARTUP_TIMEOUT, |worker| {
        worker
            .pids_after(CELERY_READY)
            .contains(&master)
            .then_some(())
    });

    // The worker's children are its pool: as many as planned, each of which started as one.
    worker.wait_for(
        &format!("{expected} pool children"),
        STARTUP_TIMEOUT.saturating_sub(started.elapsed()),
        |worker| {
            let announced = worker.pids_after(CELERY_CHILD).len() >= expected;
            (announced && children(master).len() >= expected).then_some(())
        },
    );
    // Let a worker that would overshoot show it.
    thread::sleep(Duration::from_millis(500));
    let pool: BTreeSet<u32> = children(master).into_iter().collect();
    let announced = worker.pids_after(CELERY_CHILD);
    if pool.len() != expected {
        worker.fail(&format!(
            "{} pool children {pool:?}, but the plan makes {expected} (the machine's default \
             would be {machine_default})",
            pool.len()
        ));
    }
    if announced != pool {
        worker.fail(&format!(
            "the pool children that started {announced:?} are not exactly the worker's children \
             {pool:?}"
        ));
    }
    let (processes, rss) = check_memory(&worker, &planned);

    // SIGTERM while the app's slow task runs: a warm shutdown finishes it, within the grace period
    // less the preStop pause.
    worker.wait_for("the slow task to start", LINE_TIMEOUT, |worker| {
        (!worker.pids_after(SLOW_START).is_empty()).then_some(())
    });
    if !worker.pids_after(SLOW_DONE).is_empty() {
        worker.fail("the slow task ended before SIGTERM, so no task was in flight");
    }
    let sigterm = Instant::now();
    worker.signal("TERM");
    while worker.running() && sigterm.elapsed() < budget {
        thread::sleep(POLL);
    }
    let shutdown = sigterm.elapsed();
    if worker.running() {
        worker.fail(&format!(
            "still running {shutdown:?} after SIGTERM; the Pod allows {budget:?} \
             (terminationGracePeriodSeconds {} - preStop pause {}s)",
            planned.grace_seconds, planned.pause_seconds
        ));
    }
    if !worker.exit.is_some_and(|status| status.success()) {
        worker.fail(&format!("exited with {:?} after SIGTERM", worker.exit));
    }
    let line_deadline = Instant::now() + LINE_TIMEOUT;
    while worker.pids_after(SLOW_DONE).is_empty() && Instant::now() < line_deadline {
        thread::sleep(POLL);
    }
    if worker.pids_after(SLOW_DONE).is_empty() {
        worker.fail("exited without finishing the task that was running at SIGTERM");
    }
    check_reaped(&worker, &pool);
    eprintln!(
        "{name}: {expected} pool children (the machine's default {machine_default}), {processes} \
         processes with {} MiB resident (limit {}); exited {shutdown:.2?} after SIGTERM with the \
         task done (allowed {budget:?}: grace {}s - pause {}s); {:.2?} in all",
        rss / (1024 * 1024),
        planned
            .memory_limit
            .map_or("none".to_string(), quantity::format_bytes),
        planned.grace_seconds,
        planned.pause_seconds,
        started.elapsed()
    );
    expected
}

// The three Celery cases fork 2, 1 and 3 pool children. Without a count the worker forks one per
// CPU of the machine (`billiard.cpu_count()`), a single number, so on any machine at least two of
// them fork a number the worker would not have picked by itself (on a 2-CPU machine: 1 and 3).

#[test]
fn celery_worker_forks_the_planned_concurrency() {
    let children = exercise_celery("celery worker (2 CPUs)", &celery_worker_pod());
    assert_eq!(
        children, 2,
        "a CPU request of 2 plans CELERY_WORKER_CONCURRENCY=2"
    );
}

#[test]
fn celery_worker_on_one_cpu_forks_one_child() {
    let mut pod = celery_worker_pod();
    set_cpu_request(&mut pod, "1");
    let children = exercise_celery("celery worker (1 CPU)", &pod);
    assert_eq!(
        children, 1,
        "a CPU request of 1 plans CELERY_WORKER_CONCURRENCY=1"
    );
}

/// With `--concurrency` in the command pytune adds no `CELERY_WORKER_CONCURRENCY`
/// (`celery_concurrency` fails otherwise), and the worker forks what the flag says.
#[test]
fn celery_worker_keeps_its_concurrency_flag() {
    let mut pod = celery_worker_pod();
    append_args(&mut pod, &["--concurrency", "3"]);
    let children = exercise_celery("celery worker (--concurrency 3)", &pod);
    assert_eq!(children, 3, "the command's --concurrency 3");
}
