//! The cluster's Kubernetes version, asked of the API server when pytune runs in a cluster and
//! `--kubernetes-version` is not given. It picks the preStop form; when unknown, the engine uses
//! the exec form, which works on every version.

use std::time::Duration;

use anyhow::{Context as _, Result};
use k8s_openapi::apimachinery::pkg::version::Info;

use crate::core::engine::KubeVersion;

/// How long discovery may take before serving starts without it.
pub const TIMEOUT: Duration = Duration::from_secs(5);

/// True when the process runs in a Pod with the API server's Service environment.
pub fn in_cluster() -> bool {
    std::env::var_os("KUBERNETES_SERVICE_HOST").is_some()
}

/// The version reported by `client`'s API server (`GET /version`).
pub async fn kubernetes_version(client: &kube::Client) -> Result<KubeVersion> {
    let info = tokio::time::timeout(TIMEOUT, client.apiserver_version())
        .await
        .context("the API server did not answer GET /version in time")?
        .context("GET /version failed")?;
    from_info(&info).with_context(|| {
        format!(
            "unreadable version major={:?} minor={:?} gitVersion={:?}",
            info.major, info.minor, info.git_version
        )
    })
}

/// The in-cluster version, using the Pod's service account.
pub async fn in_cluster_version() -> Result<KubeVersion> {
    let config = kube::Config::incluster().context("no in-cluster configuration")?;
    let client = kube::Client::try_from(config).context("cannot build a Kubernetes client")?;
    kubernetes_version(&client).await
}

/// `major`/`minor` (minor may carry a `+`, as some providers report), else `gitVersion`.
pub fn from_info(info: &Info) -> Option<KubeVersion> {
    KubeVersion::parse(&format!("{}.{}", info.major, info.minor))
        .or_else(|| KubeVersion::parse(&info.git_version))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(major: &str, minor: &str, git: &str) -> Info {
        Info {
            major: major.into(),
            minor: minor.into(),
            git_version: git.into(),
            ..Info::default()
        }
    }

    #[test]
    fn reads_major_minor_or_git_version() {
        assert_eq!(
            from_info(&info("1", "31", "v1.31.2")),
            Some(KubeVersion::new(1, 31))
        );
        assert_eq!(
            from_info(&info("1", "29+", "v1.29.4-eks-1")),
            Some(KubeVersion::new(1, 29))
        );
        assert_eq!(
            from_info(&info("", "", "v1.33.0")),
            Some(KubeVersion::new(1, 33))
        );
        assert_eq!(from_info(&info("", "", "")), None);
    }
}
