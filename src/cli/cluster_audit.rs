//! `pytune audit --cluster`: the Kubernetes client from a kubeconfig or the Pod's account, and the
//! scan.

use std::path::Path;
use std::process::ExitCode;

use super::{args, audit, cluster, load_policy, write_stdout};
use crate::core::engine::Context;
use anyhow::{Context as _, Result};

pub(super) async fn kube_client(
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

/// The namespaces a cluster command reads: every one (empty) with `-A`, else those given with
/// `-n`, else the kubeconfig context's.
pub fn namespaces(all: bool, given: &[String], default_namespace: String) -> Vec<String> {
    if all {
        Vec::new()
    } else if given.is_empty() {
        vec![default_namespace]
    } else {
        given.to_vec()
    }
}

pub fn run_cluster_audit(args: args::AuditArgs) -> Result<ExitCode> {
    crate::webhook::tls::install_provider();
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
            None => crate::webhook::discovery::kubernetes_version(&client)
                .await
                .ok(),
        };
        let ctx = Context {
            kubernetes_version,
            ..Context::default()
        };
        let namespaces = namespaces(args.all_namespaces, &args.namespace, default_namespace);
        let options = cluster::ScanOptions {
            namespaces,
            scope: match args.scope {
                args::ClusterScope::Namespaces => cluster::Scope::Namespaces,
                args::ClusterScope::Cluster => cluster::Scope::Cluster,
            },
            own_namespace: args.pytune_namespace.clone(),
            page_size: args.page_size,
        };
        anyhow::Ok(cluster::scan(client, &options, &policy, &ctx, |line| eprintln!("{line}")).await)
    })?;
    let text = match args.output {
        args::AuditFormat::Text => cluster::render_text(&report),
        args::AuditFormat::Json => format!("{:#}\n", cluster::render_json(&report)),
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
