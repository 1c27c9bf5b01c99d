//! What runs in a container: the Python server, its relevant flags, and the evidence for each. Pure.
//!
//! Evidence comes, strongest first, from the container's `command` + `args` (through `sh -c`
//! wrappers, `python -m X`, and launchers such as `exec`, `tini`, `poetry run`), then from environment
//! variables that servers read (`GUNICORN_CMD_ARGS`, `UVICORN_*`, `UWSGI_*`), then from the image name.
//! When nothing identifies a server the detection says so; callers never guess server-specific values.

use k8s_openapi::api::core::v1::Container;
use serde::Serialize;

/// The Python server or worker a container runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Server {
    Gunicorn,
    Uvicorn,
    Hypercorn,
    Daphne,
    Granian,
    Uwsgi,
    CeleryWorker,
    CeleryBeat,
    Rq,
    Dramatiq,
    DjangoRunserver,
    FlaskRun,
    Unknown,
}

impl Server {
    pub fn name(self) -> &'static str {
        match self {
            Server::Gunicorn => "gunicorn",
            Server::Uvicorn => "uvicorn",
            Server::Hypercorn => "hypercorn",
            Server::Daphne => "daphne",
            Server::Granian => "granian",
            Server::Uwsgi => "uwsgi",
            Server::CeleryWorker => "celery worker",
            Server::CeleryBeat => "celery beat",
            Server::Rq => "rq worker",
            Server::Dramatiq => "dramatiq",
            Server::DjangoRunserver => "manage.py runserver",
            Server::FlaskRun => "flask run",
            Server::Unknown => "unknown",
        }
    }

    /// Servers that answer HTTP on a port.
    pub fn serves_http(self) -> bool {
        matches!(
            self,
            Server::Gunicorn
                | Server::Uvicorn
                | Server::Hypercorn
                | Server::Daphne
                | Server::Granian
                | Server::Uwsgi
                | Server::DjangoRunserver
                | Server::FlaskRun
        )
    }

    /// Background workers that pull jobs from a queue and serve no port.
    pub fn is_queue_worker(self) -> bool {
        matches!(
            self,
            Server::CeleryWorker | Server::CeleryBeat | Server::Rq | Server::Dramatiq
        )
    }

    /// Development servers that should not run in a Pod.
    pub fn is_dev_server(self) -> bool {
        matches!(self, Server::DjangoRunserver | Server::FlaskRun)
    }
}

/// gunicorn's worker class, which decides how many workers a CPU can carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WorkerClass {
    Sync,
    Gthread,
    /// gevent or eventlet: cooperative, many connections per worker.
    Async,
    /// uvicorn's ASGI worker class for gunicorn.
    Uvicorn,
    Other,
}

/// The C library the image uses; `MALLOC_ARENA_MAX` only means something to glibc.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Libc {
    Glibc,
    Musl,
}

/// Flags of the server command that pytune's rules read.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServerFlags {
    /// `--bind`/`-b` (gunicorn, hypercorn) given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bind: Option<String>,
    /// `--host` (uvicorn, granian, flask) given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// A port from `--port` or the bind address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub port: Option<i32>,
    /// `--workers`/`-w` (or `--processes`) given explicitly.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workers: Option<u32>,
    /// gunicorn `--graceful-timeout`, uvicorn `--timeout-graceful-shutdown`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub graceful_timeout: Option<u32>,
    /// celery `--concurrency`/`-c`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threads: Option<u32>,
    /// Celery: `--concurrency` given but not a count (`auto`, `0`: one per CPU).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub concurrency_follows_cpus: bool,
    /// Celery: `--autoscale MAX,MIN` lets the pool grow and shrink.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub autoscale: bool,
    /// Celery: `-P`/`--pool` (`prefork` when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pool: Option<String>,
    /// gunicorn: `-k`/`--worker-class` given (else the class is gunicorn's default, or what a
    /// catalog entry says an application's launcher passes).
    #[serde(skip)]
    pub worker_class_given: bool,
}

/// How the server was started, when through a shell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ShellWrapper {
    /// Whether the shell `exec`s the server, so SIGTERM reaches Python.
    pub exec: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Detection {
    pub server: Server,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worker_class: Option<WorkerClass>,
    /// Why pytune believes it, in words: `command: gunicorn`, `env: GUNICORN_CMD_ARGS`.
    pub evidence: Vec<String>,
    #[serde(skip_serializing_if = "is_default_flags")]
    pub flags: ServerFlags,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub shell: Option<ShellWrapper>,
    pub libc: Libc,
}

impl Detection {
    /// The command line named the server (evidence `command: gunicorn`).
    pub fn from_command(&self) -> bool {
        self.evidence.iter().any(|e| e.starts_with("command: "))
    }

    /// An environment variable counts among the evidence (`env: GUNICORN_CMD_ARGS`).
    pub fn from_env(&self) -> bool {
        self.evidence.iter().any(|e| e.starts_with("env: "))
    }
}

fn is_default_flags(flags: &ServerFlags) -> bool {
    flags == &ServerFlags::default()
}

/// Looks at a container's command, args, env and image for the server it runs.
pub fn detect(container: &Container) -> Detection {
    let mut detection = Detection {
        server: Server::Unknown,
        worker_class: None,
        evidence: Vec::new(),
        flags: ServerFlags::default(),
        shell: None,
        libc: Libc::Glibc,
    };
    let argv: Vec<String> = container
        .command
        .iter()
        .flatten()
        .chain(container.args.iter().flatten())
        .cloned()
        .collect();
    let env = |name: &str| -> Option<&str> {
        container
            .env
            .iter()
            .flatten()
            .find(|var| var.name == name)
            .and_then(|var| var.value.as_deref())
    };
    let env_names: Vec<&str> = container
        .env
        .iter()
        .flatten()
        .map(|var| var.name.as_str())
        .collect();

    if !argv.is_empty() {
        let (segments, shell) = command_segments(&argv);
        detection.shell = shell;
        for segment in segments.iter().rev() {
            if let Some(server) = identify(segment, &mut detection) {
                detection.server = server;
                break;
            }
        }
        if detection.server == Server::Unknown {
            // A script can be pages long: its start says what it is.
            let command = argv.join(" ");
            let shown: String = command.chars().take(100).collect();
            let more = if shown.len() < command.len() {
                "…"
            } else {
                ""
            };
            detection
                .evidence
                .push(format!("command {shown:?}{more} is not a known server"));
        }
    } else {
        detection
            .evidence
            .push("no command or args: the image's entrypoint runs".to_string());
    }

    // Environment variables servers read. They show the server only where the image's own
    // entrypoint runs: charts give every container of an image one env block, so a worker whose
    // command is a script of its own carries the web server's variables too.
    let image_default = argv.is_empty();
    if let Some(cmd_args) = env("GUNICORN_CMD_ARGS") {
        let words = shlex::split(cmd_args).unwrap_or_default();
        if detection.server == Server::Unknown && image_default {
            detection.server = Server::Gunicorn;
            detection
                .evidence
                .push("env: GUNICORN_CMD_ARGS".to_string());
        }
        if detection.server == Server::Gunicorn {
            gunicorn_flags(&words, &mut detection);
        }
    }
    if detection.server == Server::Unknown && image_default {
        if let Some(name) = env_names.iter().find(|name| name.starts_with("UVICORN_")) {
            detection.server = Server::Uvicorn;
            detection.evidence.push(format!("env: {name}"));
        } else if let Some(name) = env_names.iter().find(|name| name.starts_with("UWSGI_")) {
            detection.server = Server::Uwsgi;
            detection.evidence.push(format!("env: {name}"));
        }
    }
    if detection.server == Server::Uvicorn {
        if detection.flags.host.is_none() {
            detection.flags.host = env("UVICORN_HOST").map(str::to_string);
        }
        if detection.flags.graceful_timeout.is_none() {
            detection.flags.graceful_timeout =
                env("UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN").and_then(|v| v.trim().parse().ok());
        }
        if detection.flags.workers.is_none() {
            detection.flags.workers = env("UVICORN_WORKERS").and_then(|v| v.trim().parse().ok());
        }
        if detection.flags.port.is_none() {
            detection.flags.port = env("UVICORN_PORT").and_then(|v| v.trim().parse().ok());
        }
    }
    for framework in ["DJANGO_SETTINGS_MODULE", "FLASK_APP"] {
        if env_names.contains(&framework) {
            detection.evidence.push(format!("env: {framework}"));
        }
    }

    // The image reference.
    let image = container
        .image
        .as_deref()
        .unwrap_or("")
        .to_ascii_lowercase();
    let image_name = image.rsplit('/').next().unwrap_or("");
    if detection.server == Server::Unknown && image_name.contains("uvicorn-gunicorn") {
        detection.server = Server::Gunicorn;
        detection.worker_class = Some(WorkerClass::Uvicorn);
        detection.evidence.push(format!(
            "image: {image_name} runs gunicorn with uvicorn workers"
        ));
    }
    if image.contains("alpine") || image.contains("musl") {
        detection.libc = Libc::Musl;
        detection
            .evidence
            .push(format!("image: {image_name} is musl-based"));
    }
    if detection.server == Server::Gunicorn && detection.worker_class.is_none() {
        detection.worker_class = Some(if detection.flags.threads.is_some_and(|t| t > 1) {
            WorkerClass::Gthread
        } else {
            WorkerClass::Sync
        });
    }
    if detection.server == Server::Unknown && !detection.from_env() {
        detection.evidence.push("no server recognised".to_string());
    }
    detection
}

/// Every word the container starts: `command` then `args`, a shell's `-c` script split into the
/// words of its commands. What the catalog's `words` conditions look for.
pub fn launch_words(container: &Container) -> Vec<String> {
    let argv: Vec<String> = container
        .command
        .iter()
        .flatten()
        .chain(container.args.iter().flatten())
        .cloned()
        .collect();
    if argv.is_empty() {
        return argv;
    }
    let (segments, _) = command_segments(&argv);
    segments.into_iter().flatten().collect()
}

/// The simple commands the container runs: one for a plain argv; for `sh -c SCRIPT`, each command
/// of the script (split on newlines, `;`, `&&`, `||`, `|`).
fn command_segments(argv: &[String]) -> (Vec<Vec<String>>, Option<ShellWrapper>) {
    if let Some(start) = shell_start(argv) {
        let argv = &argv[start..];
        let script_at = argv
            .iter()
            .position(|arg| arg.starts_with('-') && !arg.starts_with("--") && arg.contains('c'));
        // `bash -c -- SCRIPT` (KubeRay's form): the script follows the `--`.
        let script_at = script_at.map(|i| {
            if argv.get(i + 1).is_some_and(|a| a == "--") {
                i + 1
            } else {
                i
            }
        });
        if let Some(script) = script_at.and_then(|i| argv.get(i + 1)) {
            let mut segments = Vec::new();
            for line in script.lines() {
                let words = shlex::split(line)
                    .unwrap_or_else(|| line.split_whitespace().map(str::to_string).collect());
                let mut current = Vec::new();
                for word in words {
                    let operator = matches!(word.as_str(), "&&" | "||" | ";" | "|" | "&");
                    if operator {
                        segments.push(std::mem::take(&mut current));
                    } else if let Some(stripped) = word.strip_suffix(';') {
                        current.push(stripped.to_string());
                        segments.push(std::mem::take(&mut current));
                    } else {
                        current.push(word);
                    }
                }
                segments.push(current);
            }
            segments.retain(|segment| !segment.is_empty());
            let exec = (basename(&argv[0]) == "bash" && bash_execs_last(script))
                || segments
                    .last()
                    .is_some_and(|segment| segment.first().map(String::as_str) == Some("exec"));
            return (segments, Some(ShellWrapper { exec }));
        }
    }
    (vec![argv.to_vec()], None)
}

/// Whether bash runs the last command of a `-c` script by exec'ing it (no fork), so the program
/// gets SIGTERM as if `exec` were written: bash 5.1 and later do for a last simple command, unless
/// a trap is set (bash 5.1 NEWS; checked on 5.2: `cd /app && gunicorn …` leaves gunicorn as the
/// shell's process). A last command in a pipeline, a compound command or the background, or
/// with a redirection, is forked; one holding a command substitution or braces is taken as forked
/// too, to be safe. Images with bash 5.0 or older (Debian 10, Ubuntu 20.04) fork it as well; a
/// wrong guess here only changes whether the grace period is lengthened.
fn bash_execs_last(script: &str) -> bool {
    if script.contains("trap ") {
        return false;
    }
    let Some(line) = script
        .lines()
        .map(str::trim)
        .rfind(|line| !line.is_empty() && !line.starts_with('#'))
    else {
        return false;
    };
    let line = line.replace("&&", ";").replace("||", ";");
    let last = line.rsplit(';').next().map(str::trim).unwrap_or("");
    let keyword = last.split_whitespace().next().is_none_or(|word| {
        matches!(
            word,
            "done"
                | "fi"
                | "esac"
                | "then"
                | "do"
                | "else"
                | "if"
                | "while"
                | "until"
                | "for"
                | "case"
                | "function"
                | "}"
                | ")"
                | "{"
                | "("
        )
    });
    !keyword && !last.contains(['|', '&', '(', ')', '`', '{', '}', '<', '>'])
}

/// Where a shell that runs a script starts: the first word, or after launchers and an image's
/// entrypoint script that hand on to it (`dumb-init -- /entrypoint bash -c "exec airflow …"`; an
/// entrypoint script ends in `exec "$@"` by Docker's convention).
fn shell_start(argv: &[String]) -> Option<usize> {
    for (i, word) in argv.iter().enumerate() {
        let base = basename(word);
        if matches!(base, "sh" | "bash" | "ash" | "dash" | "zsh") {
            return Some(i);
        }
        let hands_on = is_launcher(base)
            || base.starts_with('-')
            || (word.contains('=') && !word.contains('/'))
            || base.contains("entrypoint");
        if !hands_on {
            return None;
        }
    }
    None
}

fn basename(word: &str) -> &str {
    word.rsplit('/').next().unwrap_or(word)
}

/// Launchers that run the next word as the program.
fn is_launcher(word: &str) -> bool {
    matches!(
        word,
        "exec" | "tini" | "dumb-init" | "env" | "ddtrace-run" | "opentelemetry-instrument" | "nice"
    )
}

/// Two-word launchers: `poetry run X`, `newrelic-admin run-program X`.
fn runs_next_command(base: &str, next: Option<&str>) -> bool {
    match next {
        Some("run") => matches!(base, "poetry" | "pipenv" | "uv" | "pdm" | "hatch"),
        Some("run-program") => base == "newrelic-admin",
        _ => false,
    }
}

/// Strips launchers, `VAR=value` prefixes and the interpreter, returning the program and its args.
fn program_of(segment: &[String]) -> Option<(String, &[String])> {
    // Args alone under an image whose entrypoint is the interpreter (distroless): `-m gunicorn …`.
    if segment.first().map(String::as_str) == Some("-m") {
        let module = segment.get(1)?;
        return Some((module.clone(), &segment[2..]));
    }
    let mut i = 0;
    while i < segment.len() {
        let word = segment[i].as_str();
        let base = basename(word);
        if is_launcher(base) || word == "--" || (word.contains('=') && !word.starts_with('-')) {
            i += 1;
        } else if runs_next_command(base, segment.get(i + 1).map(String::as_str)) {
            i += 2;
        } else if base.starts_with("python") {
            // python [-u -O …] (-m module | script.py) args
            i += 1;
            while let Some(flag) = segment.get(i) {
                if flag == "-m" {
                    let module = segment.get(i + 1)?;
                    return Some((module.clone(), &segment[i + 2..]));
                }
                if flag.starts_with('-') {
                    i += 1;
                } else {
                    return Some((basename(flag).to_string(), &segment[i + 1..]));
                }
            }
            return None;
        } else {
            return Some((base.to_string(), &segment[i + 1..]));
        }
    }
    None
}

/// Identifies the server one simple command runs, reading its flags into `detection`.
fn identify(segment: &[String], detection: &mut Detection) -> Option<Server> {
    let (program, args) = program_of(segment)?;
    let program = program.trim_end_matches(".py").to_string();
    let sub = args
        .iter()
        .find(|arg| !arg.starts_with('-'))
        .map(String::as_str);
    let server = match program.as_str() {
        "gunicorn" => Server::Gunicorn,
        "uvicorn" => Server::Uvicorn,
        "hypercorn" => Server::Hypercorn,
        "daphne" => Server::Daphne,
        "granian" => Server::Granian,
        "uwsgi" => Server::Uwsgi,
        "celery" => {
            if args.iter().any(|arg| arg == "beat") {
                Server::CeleryBeat
            } else if args.iter().any(|arg| arg == "worker") {
                Server::CeleryWorker
            } else {
                return None;
            }
        }
        "rq" if sub == Some("worker") => Server::Rq,
        "rqworker" => Server::Rq,
        "dramatiq" => Server::Dramatiq,
        "manage" | "django-admin" if args.iter().any(|arg| arg == "runserver") => {
            Server::DjangoRunserver
        }
        "flask" if args.iter().any(|arg| arg == "run") => Server::FlaskRun,
        _ => return None,
    };
    detection
        .evidence
        .push(format!("command: {}", segment.join(" ")));
    match server {
        Server::Gunicorn => gunicorn_flags(args, detection),
        Server::Uvicorn
        | Server::Granian
        | Server::FlaskRun
        | Server::Daphne
        | Server::Hypercorn => generic_flags(args, detection),
        Server::Uwsgi => uwsgi_flags(args, detection),
        Server::DjangoRunserver => {
            // `runserver [addrport]`: the address is the first plain word after the subcommand.
            detection.flags.bind = args
                .iter()
                .skip_while(|arg| *arg != "runserver")
                .skip(1)
                .find(|arg| !arg.starts_with('-'))
                .cloned();
            detection.flags.port = detection.flags.bind.as_deref().and_then(port_of_bind);
        }
        Server::CeleryWorker => {
            let concurrency = flag_value(args, &["-c", "--concurrency"]);
            let flags = &mut detection.flags;
            flags.concurrency = concurrency
                .as_deref()
                .and_then(|v| v.parse().ok())
                .filter(|count| *count > 0);
            flags.concurrency_follows_cpus = concurrency.is_some() && flags.concurrency.is_none();
            flags.autoscale = flag_value(args, &["--autoscale"]).is_some();
            flags.pool = flag_value(args, &["-P", "--pool"]);
        }
        _ => {}
    }
    Some(server)
}

/// The value of the first of `names` in `args`: `--name value`, `--name=value`, or `-nVALUE`.
pub(crate) fn flag_value(args: &[String], names: &[&str]) -> Option<String> {
    for (i, arg) in args.iter().enumerate() {
        for name in names {
            let Some(rest) = arg.strip_prefix(name) else {
                continue;
            };
            if rest.is_empty() {
                return args.get(i + 1).cloned();
            }
            if let Some(value) = rest.strip_prefix('=') {
                return Some(value.to_string());
            }
            // `-w4`: a short flag glued to its value.
            if name.len() == 2 && !name.starts_with("--") && !arg.starts_with("--") {
                return Some(rest.to_string());
            }
        }
    }
    None
}

fn port_of_bind(bind: &str) -> Option<i32> {
    if bind.starts_with("unix:") || bind.starts_with("fd://") {
        return None;
    }
    bind.rsplit(':').next()?.parse().ok()
}

fn gunicorn_flags(args: &[String], detection: &mut Detection) {
    let flags = &mut detection.flags;
    if let Some(bind) = flag_value(args, &["-b", "--bind"]) {
        flags.port = flags.port.or_else(|| port_of_bind(&bind));
        flags.bind = Some(bind);
    }
    if let Some(workers) = flag_value(args, &["-w", "--workers"]).and_then(|v| v.parse().ok()) {
        flags.workers = Some(workers);
    }
    if let Some(timeout) = flag_value(args, &["--graceful-timeout"]).and_then(|v| v.parse().ok()) {
        flags.graceful_timeout = Some(timeout);
    }
    if let Some(threads) = flag_value(args, &["--threads"]).and_then(|v| v.parse().ok()) {
        flags.threads = Some(threads);
    }
    if let Some(class) = flag_value(args, &["-k", "--worker-class"]) {
        flags.worker_class_given = true;
        let class_lower = class.to_ascii_lowercase();
        detection.worker_class = Some(if class_lower.contains("uvicorn") {
            WorkerClass::Uvicorn
        } else if class_lower == "sync" {
            WorkerClass::Sync
        } else if class_lower == "gthread" {
            WorkerClass::Gthread
        } else if class_lower.contains("gevent") || class_lower.contains("eventlet") {
            WorkerClass::Async
        } else {
            WorkerClass::Other
        });
    }
}

fn generic_flags(args: &[String], detection: &mut Detection) {
    let flags = &mut detection.flags;
    if let Some(host) = flag_value(args, &["--host", "-h"]) {
        flags.host = Some(host);
    }
    if let Some(bind) = flag_value(args, &["-b", "--bind"]) {
        flags.port = flags.port.or_else(|| port_of_bind(&bind));
        flags.bind = Some(bind);
    }
    if let Some(port) = flag_value(args, &["--port", "-p"]).and_then(|v| v.parse().ok()) {
        flags.port = Some(port);
    }
    if let Some(workers) = flag_value(args, &["--workers", "-w"]).and_then(|v| v.parse().ok()) {
        flags.workers = Some(workers);
    }
    if let Some(timeout) =
        flag_value(args, &["--timeout-graceful-shutdown"]).and_then(|v| v.parse().ok())
    {
        flags.graceful_timeout = Some(timeout);
    }
}

fn uwsgi_flags(args: &[String], detection: &mut Detection) {
    let flags = &mut detection.flags;
    if let Some(socket) = flag_value(args, &["--http", "--http-socket"]) {
        flags.port = port_of_bind(&socket);
        flags.bind = Some(socket);
    }
    if let Some(workers) =
        flag_value(args, &["-p", "--processes", "--workers"]).and_then(|v| v.parse().ok())
    {
        flags.workers = Some(workers);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::EnvVar;

    fn container(command: &[&str], args: &[&str]) -> Container {
        Container {
            name: "app".into(),
            image: Some("python:3.13-slim".into()),
            command: (!command.is_empty()).then(|| command.iter().map(|s| s.to_string()).collect()),
            args: (!args.is_empty()).then(|| args.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        }
    }

    fn with_env(mut c: Container, vars: &[(&str, &str)]) -> Container {
        c.env = Some(
            vars.iter()
                .map(|(n, v)| EnvVar {
                    name: n.to_string(),
                    value: Some(v.to_string()),
                    ..Default::default()
                })
                .collect(),
        );
        c
    }

    #[test]
    fn gunicorn_with_flags() {
        let d = detect(&container(
            &["gunicorn"],
            &[
                "app.wsgi",
                "--bind=0.0.0.0:8000",
                "-k",
                "gevent",
                "--graceful-timeout",
                "20",
            ],
        ));
        assert_eq!(d.server, Server::Gunicorn);
        assert_eq!(d.worker_class, Some(WorkerClass::Async));
        assert_eq!(d.flags.port, Some(8000));
        assert_eq!(d.flags.graceful_timeout, Some(20));
        assert_eq!(d.shell, None);
    }

    #[test]
    fn gunicorn_uvicorn_worker_and_threads() {
        let d = detect(&container(
            &["gunicorn", "-k", "uvicorn.workers.UvicornWorker", "m:app"],
            &[],
        ));
        assert_eq!(d.worker_class, Some(WorkerClass::Uvicorn));
        let d = detect(&container(&["gunicorn", "--threads", "4", "m:app"], &[]));
        assert_eq!(d.worker_class, Some(WorkerClass::Gthread));
        let d = detect(&container(&["gunicorn", "m:app"], &[]));
        assert_eq!(d.worker_class, Some(WorkerClass::Sync));
    }

    #[test]
    fn shell_wrappers_with_and_without_exec() {
        let d = detect(&container(
            &["/bin/sh", "-c"],
            &["python manage.py migrate && exec gunicorn shop.wsgi -b :8000"],
        ));
        assert_eq!(d.server, Server::Gunicorn);
        assert_eq!(d.shell, Some(ShellWrapper { exec: true }));
        // bash 5.1+ execs the last simple command of its script.
        let d = detect(&container(
            &["bash", "-lc", "cd /app; uvicorn main:app --port 9000"],
            &[],
        ));
        assert_eq!(d.server, Server::Uvicorn);
        assert_eq!(d.shell, Some(ShellWrapper { exec: true }));
        // Not with a trap set, nor for a last command in a pipeline or in the background.
        for script in [
            "trap 'echo bye' TERM; uvicorn main:app",
            "uvicorn main:app | tee /tmp/log",
            "migrate && uvicorn main:app &",
        ] {
            let d = detect(&container(&["bash", "-c", script], &[]));
            assert_eq!(d.shell, Some(ShellWrapper { exec: false }), "{script}");
        }
        // sh (dash, busybox) forks it.
        let d = detect(&container(
            &["sh", "-c", "cd /app; uvicorn main:app --port 9000"],
            &[],
        ));
        assert_eq!(d.shell, Some(ShellWrapper { exec: false }));
        assert_eq!(d.flags.port, Some(9000));
        assert_eq!(d.flags.host, None);
        // bash execs a lone simple command itself; sh is not assumed to.
        let d = detect(&container(
            &["bash", "-c", "gunicorn shop.wsgi -b :8000"],
            &[],
        ));
        assert_eq!(d.shell, Some(ShellWrapper { exec: true }));
        let d = detect(&container(
            &["/bin/sh", "-c", "gunicorn shop.wsgi -b :8000"],
            &[],
        ));
        assert_eq!(d.shell, Some(ShellWrapper { exec: false }));
        // A variable in it is expanded first; a redirection makes bash fork.
        let d = detect(&container(
            &["bash", "-c", "gunicorn shop.wsgi -b :$PORT"],
            &[],
        ));
        assert_eq!(d.shell, Some(ShellWrapper { exec: true }), "an expansion");
        let d = detect(&container(
            &["bash", "-c", "gunicorn shop.wsgi > /tmp/log"],
            &[],
        ));
        assert_eq!(d.shell, Some(ShellWrapper { exec: false }), "a redirection");
    }

    #[test]
    fn python_dash_m_and_launchers() {
        assert_eq!(
            detect(&container(&["python", "-m", "uvicorn", "a:b"], &[])).server,
            Server::Uvicorn
        );
        assert_eq!(
            detect(&container(
                &["python3", "-u", "-m", "celery", "-A", "x", "worker"],
                &[]
            ))
            .server,
            Server::CeleryWorker
        );
        assert_eq!(
            detect(&container(
                &["tini", "--", "poetry", "run", "hypercorn", "a:b"],
                &[]
            ))
            .server,
            Server::Hypercorn
        );
        assert_eq!(
            detect(&container(&["ddtrace-run", "gunicorn", "a:b"], &[])).server,
            Server::Gunicorn
        );
    }

    #[test]
    fn workers_queues_and_dev_servers() {
        let celery = detect(&container(
            &["celery", "-A", "proj", "worker", "-c", "4"],
            &[],
        ));
        assert_eq!(celery.server, Server::CeleryWorker);
        assert_eq!(celery.flags.concurrency, Some(4));
        assert_eq!(
            detect(&container(&["celery", "-A", "proj", "beat"], &[])).server,
            Server::CeleryBeat
        );
        assert_eq!(
            detect(&container(&["rq", "worker", "high"], &[])).server,
            Server::Rq
        );
        assert_eq!(
            detect(&container(&["dramatiq", "tasks"], &[])).server,
            Server::Dramatiq
        );
        assert_eq!(
            detect(&container(
                &["python", "manage.py", "runserver", "0:8000"],
                &[]
            ))
            .server,
            Server::DjangoRunserver
        );
        assert_eq!(
            detect(&container(&["flask", "run", "--host", "0.0.0.0"], &[])).server,
            Server::FlaskRun
        );
        assert_eq!(
            detect(&container(
                &["daphne", "-b", "0.0.0.0", "-p", "8001", "a.asgi:app"],
                &[]
            ))
            .flags
            .port,
            Some(8001)
        );
        assert_eq!(
            detect(&container(
                &["granian", "--interface", "asgi", "a:app"],
                &[]
            ))
            .server,
            Server::Granian
        );
        assert_eq!(
            detect(&container(
                &["uwsgi", "--http", ":8080", "--processes", "4"],
                &[]
            ))
            .flags
            .workers,
            Some(4)
        );
    }

    #[test]
    fn server_variables_beside_a_command_of_its_own_show_no_server() {
        // A chart's shared env block on a Celery worker started by a script.
        let d = detect(&with_env(
            container(&["/start-worker"], &[]),
            &[
                ("GUNICORN_CMD_ARGS", "--workers 4"),
                ("UWSGI_PROCESSES", "2"),
            ],
        ));
        assert_eq!(d.server, Server::Unknown);
        // gunicorn itself still reads them.
        let d = detect(&with_env(
            container(&["gunicorn", "app:app"], &[]),
            &[("GUNICORN_CMD_ARGS", "--workers 4")],
        ));
        assert_eq!(d.server, Server::Gunicorn);
        assert_eq!(d.flags.workers, Some(4));
    }

    #[test]
    fn evidence_without_a_command() {
        let d = detect(&with_env(
            container(&[], &[]),
            &[("GUNICORN_CMD_ARGS", "--bind 0.0.0.0:9000 --workers 3")],
        ));
        assert_eq!(d.server, Server::Gunicorn);
        assert_eq!(d.flags.port, Some(9000));
        assert_eq!(d.flags.workers, Some(3));
        let d = detect(&with_env(
            container(&[], &[]),
            &[("UVICORN_TIMEOUT_GRACEFUL_SHUTDOWN", "15")],
        ));
        assert_eq!(d.server, Server::Uvicorn);
        assert_eq!(d.flags.graceful_timeout, Some(15));
        let d = detect(&with_env(
            container(&[], &[]),
            &[("DJANGO_SETTINGS_MODULE", "a.settings")],
        ));
        assert_eq!(d.server, Server::Unknown);
        assert!(
            d.evidence
                .iter()
                .any(|e| e.contains("DJANGO_SETTINGS_MODULE"))
        );
        let mut image = container(&[], &[]);
        image.image = Some("tiangolo/uvicorn-gunicorn-fastapi:python3.11-alpine".into());
        let d = detect(&image);
        assert_eq!(
            (d.server, d.worker_class, d.libc),
            (Server::Gunicorn, Some(WorkerClass::Uvicorn), Libc::Musl)
        );
    }

    #[test]
    fn unknown_commands_are_unknown() {
        let d = detect(&container(&["/entrypoint.sh"], &[]));
        assert_eq!(d.server, Server::Unknown);
        let d = detect(&container(&["sh", "-c", "echo 'unbalanced"], &[]));
        assert_eq!(d.server, Server::Unknown);
        let d = detect(&container(&["python"], &[]));
        assert_eq!(d.server, Server::Unknown);
    }
}
