//! The command line: `pytune mutate`, `audit`, `explain`, `policy` and `serve`, each a thin
//! layer over the core (and, for `serve`, the webhook).

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context as _, Result};
use clap::Parser;

use crate::core::engine::Context;
use crate::core::policy::Policy;
use crate::webhook::serve::{self, ServeOptions, TlsSource};

pub mod args;
pub mod audit;
pub mod catalog;
pub mod cluster;
mod cluster_audit;
pub mod env_sources;
pub mod explain;
pub mod inputs;
pub mod manifests;
pub mod mutate;
mod owners;
pub mod recommend;

/// Parses the command line, runs the command, and reports any error on stderr.
pub fn main() -> ExitCode {
    let cli = args::Cli::parse();
    // Every command plans with the embedded catalog: one that cannot load would silently
    // recognise nothing, so say so and stop, as `serve` does at start-up.
    if let Err(err) = crate::core::catalog::Catalog::load_embedded() {
        eprintln!("error: the application catalog built into pytune cannot load: {err}");
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        args::Command::Mutate(args) => run_mutate(args),
        args::Command::Policy(args) => run_policy(args),
        args::Command::Audit(args) => run_audit(args),
        args::Command::Explain(args) => run_explain(args),
        args::Command::Catalog(args) => run_catalog(args),
        args::Command::Serve(args) => run_serve(args),
        args::Command::Recommend(args) => recommend::run(args),
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

fn run_serve(args: args::ServeArgs) -> Result<ExitCode> {
    crate::webhook::logging::init(args.log_format);
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
    options.resolve_secrets = args.resolve_secrets;
    options.learned_defaults = args.learned_defaults;
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

fn run_policy(args: args::PolicyArgs) -> Result<ExitCode> {
    let policy = load_policy(args.policy.as_deref())?;
    let yaml = serde_saphyr::to_string(&policy).context("cannot render the policy")?;
    write_stdout(&format!("# revision: {}\n{yaml}", policy.revision))?;
    Ok(ExitCode::SUCCESS)
}

/// What the manifest commands share: the context from the cluster version flag, and the inputs
/// read, with skipped paths reported on stderr.
fn manifests_in(
    paths: &[std::path::PathBuf],
    kubernetes_version: Option<crate::core::engine::KubeVersion>,
) -> (Context, inputs::ReadInputs) {
    let ctx = Context {
        kubernetes_version,
        ..Context::default()
    };
    let read = inputs::read_inputs(paths);
    read.report_skipped();
    (ctx, read)
}

fn run_mutate(args: args::MutateArgs) -> Result<ExitCode> {
    let policy = load_policy(args.policy.as_deref())?;
    let (mut ctx, read) = manifests_in(&args.paths, args.kubernetes_version);
    // Its output is applied; `audit` reports what the webhook does to the Pods.
    ctx.manifest = true;
    let mut output = mutate::mutate(&read.inputs, &policy, &ctx);
    // Inputs that could not be read count as errors like any other, in the summary too.
    output.errors.splice(0..0, read.errors);
    write_stdout(&output.yaml)?;
    if args.quiet {
        for error in &output.errors {
            eprintln!("error: {error}");
        }
    } else {
        eprint!("{}", mutate::summary(&output));
    }
    Ok(if output.errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn run_audit(args: args::AuditArgs) -> Result<ExitCode> {
    if args.cluster {
        return cluster_audit::run_cluster_audit(args);
    }
    let policy = load_policy(args.policy.as_deref())?;
    let (ctx, read) = manifests_in(&args.paths, args.kubernetes_version);
    let mut output = mutate::mutate(&read.inputs, &policy, &ctx);
    let read_errors = read.errors;
    // Inputs that could not be read count as errors like any other: in the report's list, its
    // summary and the exit code alike.
    output.errors.splice(0..0, read_errors.iter().cloned());
    let report = if args.diff {
        audit::render_diff(&output)
    } else {
        match args.output {
            args::AuditFormat::Text => audit::render_text(&output),
            args::AuditFormat::Json => format!("{:#}\n", audit::render_json(&output)),
        }
    };
    write_stdout(&report)?;
    // The diff has no room for errors; the other reports list them, and stderr names the
    // unreadable inputs too.
    let on_stderr = if args.diff {
        &output.errors
    } else {
        &read_errors
    };
    for error in on_stderr {
        eprintln!("error: {error}");
    }
    Ok(ExitCode::from(audit::exit_code(&output, args.exit_code)))
}

fn run_explain(args: args::ExplainArgs) -> Result<ExitCode> {
    let policy = load_policy(args.policy.as_deref())?;
    let (ctx, read) = manifests_in(&args.paths, args.kubernetes_version);
    let mut errors = read.errors;
    let (explanations, explain_errors) = explain::explain(&read.inputs, &policy, &ctx);
    errors.extend(explain_errors);
    let report = match args.output {
        args::AuditFormat::Text => explain::render_text(&explanations),
        args::AuditFormat::Json => {
            let json = serde_json::json!({ "pods": explanations, "errors": errors });
            format!("{json:#}\n")
        }
    };
    write_stdout(&report)?;
    for error in &errors {
        eprintln!("error: {error}");
    }
    Ok(if errors.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

fn run_catalog(args: args::CatalogArgs) -> Result<ExitCode> {
    let policy = load_policy(args.policy.as_deref())?;
    let embedded = crate::core::catalog::Catalog::embedded();
    let listed = catalog::list(&policy, embedded, args.name.as_deref());
    if let Some(name) = &args.name
        && listed.is_empty()
    {
        anyhow::bail!("no catalog entry is named {name:?}; `pytune catalog` lists them");
    }
    let text = match args.output {
        args::CatalogFormat::Table => catalog::render_table(&listed),
        args::CatalogFormat::Markdown => catalog::render_markdown(&listed),
        args::CatalogFormat::Yaml => {
            serde_saphyr::to_string(&listed).context("cannot render the catalog")?
        }
        args::CatalogFormat::Json => {
            let json =
                serde_json::to_string_pretty(&listed).context("cannot render the catalog")?;
            format!("{json}\n")
        }
    };
    write_stdout(&text)?;
    Ok(ExitCode::SUCCESS)
}
