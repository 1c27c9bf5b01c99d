//! Command-line interface: subcommands and flags, each flag with an environment twin.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "pytune",
    version,
    about = "Production defaults for Python services on Kubernetes"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Print manifests with pytune's defaults applied, and on stderr what changed and why.
    Mutate(MutateArgs),
    /// Report what pytune would change in manifests, and why, without changing them.
    Audit(AuditArgs),
    /// Print the effective policy (the embedded default merged with --policy) and its revision.
    Policy(PolicyArgs),
}

#[derive(Debug, clap::Args)]
pub struct PolicyArgs {
    /// Policy file merged over the embedded default.
    #[arg(long, env = "PYTUNE_POLICY")]
    pub policy: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct MutateArgs {
    /// Files, directories (every .yaml/.yml/.json below them) or - for stdin.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Policy file merged over the embedded default.
    #[arg(long, env = "PYTUNE_POLICY")]
    pub policy: Option<PathBuf>,
    /// Kubernetes version of the target cluster (e.g. 1.31); picks the preStop form. Unknown: the
    /// exec form, which works on every version.
    #[arg(long, env = "PYTUNE_KUBERNETES_VERSION", value_parser = parse_version)]
    pub kubernetes_version: Option<pytune::engine::KubeVersion>,
    /// Do not print the summary on stderr.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum AuditFormat {
    /// A readable table grouped by workload.
    Text,
    /// The stable JSON report (docs/audit.md).
    Json,
}

#[derive(Debug, clap::Args)]
pub struct AuditArgs {
    /// Files, directories (every .yaml/.yml/.json below them) or - for stdin.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// Policy file merged over the embedded default.
    #[arg(long, env = "PYTUNE_POLICY")]
    pub policy: Option<PathBuf>,
    /// Kubernetes version of the target cluster (e.g. 1.31); picks the preStop form.
    #[arg(long, env = "PYTUNE_KUBERNETES_VERSION", value_parser = parse_version)]
    pub kubernetes_version: Option<pytune::engine::KubeVersion>,
    #[arg(long, short, value_enum, default_value_t = AuditFormat::Text)]
    pub output: AuditFormat,
    /// Print a unified diff of each manifest before and after instead of the report.
    #[arg(long, conflicts_with = "output")]
    pub diff: bool,
    /// Exit 3 when something would change (0 when nothing would, 1 on errors).
    #[arg(long)]
    pub exit_code: bool,
}

fn parse_version(text: &str) -> Result<pytune::engine::KubeVersion, String> {
    pytune::engine::KubeVersion::parse(text)
        .ok_or_else(|| format!("{text:?} is not a Kubernetes version like 1.31"))
}
