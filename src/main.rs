use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Parser;

use pytune::audit;
use pytune::cluster;
use pytune::engine::Context;
use pytune::mutate::{self, Input};
use pytune::policy::Policy;
use pytune::serve::{self, ServeOptions, TlsSource};

mod cli;

// The webhook allocates many small strings and maps per review; mimalloc serves those faster
// than glibc's malloc and returns memory more promptly.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let result = match cli.command {
        cli::Command::Mutate(args) => run_mutate(args),
        cli::Command::Policy(args) => run_policy(args),
        cli::Command::Audit(args) => run_audit(args),
        cli::Command::Serve(args) => run_serve(args),
    };
    match result {
        Ok(code) => code,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// Writes to stdout; a reader that went away (`| head`) is not an error.
fn write_stdout(text: &str) -> Result<()> {
    match std::io::stdout().write_all(text.as_bytes()) {
        Err(err) if err.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        other => other.context("cannot write to stdout"),
    }
}

fn load_policy(path: Option<&Path>) -> Result<Policy> {
    let Some(path) = path else {
        return Ok(Policy::embedded());
    };
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read policy file {}", path.display()))?;
    Policy::from_yaml(&text).with_context(|| format!("invalid policy file {}", path.display()))
}

fn run_serve(args: cli::ServeArgs) -> Result<ExitCode> {
    init_logging(args.log_format);
    let tls = match (args.self_signed, args.tls_cert, args.tls_key) {
        (Some(dir), _, _) => TlsSource::SelfSigned(dir),
        (None, Some(cert), Some(key)) => TlsSource::Files { cert, key },
        _ => anyhow::bail!("give --tls-cert and --tls-key, or --self-signed DIR"),
    };
    let mut options = ServeOptions::new(tls);
    options.listen = args.listen;
    options.admin_listen = args.admin_listen;
    options.policy = args.policy;
    options.kubernetes_version = args.kubernetes_version;
    options.discover_kubernetes_version = args.discover_kubernetes_version;
    options.resolve_config_maps = args.resolve_config_maps;
    options.max_body_bytes = args.max_body_bytes;
    options.reload_interval = args.reload_interval;
    options.limits.idle_timeout = args.idle_timeout;
    options.shutdown_grace = args.shutdown_grace;
    options.shutdown_delay = args.shutdown_delay;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(serve::run(options))?;
    Ok(ExitCode::SUCCESS)
}

fn init_logging(format: cli::LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()));
    match format {
        cli::LogFormat::Json => builder.json().flatten_event(true).init(),
        cli::LogFormat::Text => builder.init(),
    }
}

fn run_policy(args: cli::PolicyArgs) -> Result<ExitCode> {
    let policy = load_policy(args.policy.as_deref())?;
    let yaml = serde_saphyr::to_string(&policy).context("cannot render the policy")?;
    write_stdout(&format!("# revision: {}\n{yaml}", policy.revision))?;
    Ok(ExitCode::SUCCESS)
}

fn run_mutate(args: cli::MutateArgs) -> Result<ExitCode> {
    let policy = load_policy(args.policy.as_deref())?;
    let ctx = Context {
        kubernetes_version: args.kubernetes_version,
        ..Context::default()
    };
    let (inputs, mut read_errors) = read_inputs(&args.paths);
    let output = mutate::mutate(&inputs, &policy, &ctx);
    write_stdout(&output.yaml)?;
    if !args.quiet {
        eprint!("{}", mutate::summary(&output));
    }
    for error in &read_errors {
        eprintln!("error: {error}");
    }
    read_errors.extend(output.errors);
    Ok(if read_errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn run_audit(args: cli::AuditArgs) -> Result<ExitCode> {
    if args.cluster {
        return run_cluster_audit(args);
    }
    let policy = load_policy(args.policy.as_deref())?;
    let ctx = Context {
        kubernetes_version: args.kubernetes_version,
        ..Context::default()
    };
    let (inputs, read_errors) = read_inputs(&args.paths);
    let output = mutate::mutate(&inputs, &policy, &ctx);
    let report = if args.diff {
        audit::render_diff(&output)
    } else {
        match args.output {
            cli::AuditFormat::Text => audit::render_text(&output),
            cli::AuditFormat::Json => {
                let mut json = audit::render_json(&output);
                if let Some(errors) = json.get_mut("errors").and_then(|e| e.as_array_mut()) {
                    errors.extend(read_errors.iter().cloned().map(Into::into));
                }
                format!("{json:#}\n")
            }
        }
    };
    write_stdout(&report)?;
    for error in &read_errors {
        eprintln!("error: {error}");
    }
    if args.diff {
        for error in &output.errors {
            eprintln!("error: {error}");
        }
    }
    Ok(ExitCode::from(audit::exit_code(
        &output,
        read_errors.len(),
        args.exit_code,
    )))
}

async fn kube_client(
    kubeconfig: Option<&Path>,
    context: Option<String>,
) -> Result<(kube::Client, String)> {
    use kube::config::{KubeConfigOptions, Kubeconfig};
    let options = KubeConfigOptions {
        context,
        ..KubeConfigOptions::default()
    };
    let config = match kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path)
                .with_context(|| format!("cannot read kubeconfig {}", path.display()))?;
            kube::Config::from_custom_kubeconfig(file, &options)
                .await
                .context("invalid kubeconfig")?
        }
        None if options.context.is_some() => kube::Config::from_kubeconfig(&options)
            .await
            .context("cannot load the kubeconfig context")?,
        None => kube::Config::infer()
            .await
            .context("no kubeconfig and not in a cluster (give --kubeconfig or set KUBECONFIG)")?,
    };
    let namespace = config.default_namespace.clone();
    let client = kube::Client::try_from(config).context("cannot build a Kubernetes client")?;
    Ok((client, namespace))
}

fn run_cluster_audit(args: cli::AuditArgs) -> Result<ExitCode> {
    pytune::tls::install_provider();
    let policy = load_policy(args.policy.as_deref())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(async {
        let (client, default_namespace) =
            kube_client(args.kubeconfig.as_deref(), args.context.clone()).await?;
        let kubernetes_version = match args.kubernetes_version {
            Some(version) => Some(version),
            None => pytune::discovery::kubernetes_version(&client).await.ok(),
        };
        let ctx = Context {
            kubernetes_version,
            ..Context::default()
        };
        let namespaces = if args.all_namespaces {
            Vec::new()
        } else if args.namespace.is_empty() {
            vec![default_namespace]
        } else {
            args.namespace.clone()
        };
        let options = cluster::ScanOptions {
            namespaces,
            scope: match args.scope {
                cli::ClusterScope::Namespaces => cluster::Scope::Namespaces,
                cli::ClusterScope::Cluster => cluster::Scope::Cluster,
            },
            own_namespace: args.pytune_namespace.clone(),
            page_size: args.page_size,
        };
        anyhow::Ok(cluster::scan(client, &options, &policy, &ctx, |line| eprintln!("{line}")).await)
    })?;
    let text = match args.output {
        cli::AuditFormat::Text => cluster::render_text(&report),
        cli::AuditFormat::Json => format!("{:#}\n", cluster::render_json(&report)),
    };
    write_stdout(&text)?;
    Ok(ExitCode::from(if !report.errors.is_empty() {
        audit::EXIT_ERROR
    } else if args.exit_code && report.needs_action() {
        audit::EXIT_WOULD_CHANGE
    } else {
        audit::EXIT_CLEAN
    }))
}

/// Reads every input; an unreadable one is reported and the others still processed.
fn read_inputs(paths: &[PathBuf]) -> (Vec<Input>, Vec<String>) {
    let mut inputs = Vec::new();
    let mut errors = Vec::new();
    for path in paths {
        if path.as_os_str() == "-" {
            let mut text = String::new();
            match std::io::stdin().read_to_string(&mut text) {
                Ok(_) => inputs.push(Input {
                    name: "-".into(),
                    text,
                }),
                Err(err) => errors.push(format!("cannot read stdin: {err}")),
            }
            continue;
        }
        let files = if path.is_dir() {
            manifest_files(path, &mut errors)
        } else {
            vec![path.clone()]
        };
        for file in files {
            match std::fs::read_to_string(&file) {
                Ok(text) => inputs.push(Input {
                    name: file.display().to_string(),
                    text,
                }),
                Err(err) => errors.push(format!("cannot read {}: {err}", file.display())),
            }
        }
    }
    (inputs, errors)
}

/// Every manifest file below `dir`, sorted so output order is stable.
fn manifest_files(dir: &Path, errors: &mut Vec<String>) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(err) => {
                errors.push(format!("cannot read directory {}: {err}", dir.display()));
                continue;
            }
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path
                .extension()
                .and_then(|ext| ext.to_str())
                .is_some_and(|ext| matches!(ext, "yaml" | "yml" | "json"))
            {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}
