//! The running policy, and the loop that re-reads the policy and certificate files.
//!
//! Files are re-read by path at each tick, which follows Kubernetes' `..data` symlink swap as
//! well as in-place edits. A file that does not parse never replaces what is running.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, Result};
use arc_swap::ArcSwap;

use crate::core::policy::Policy;
use crate::webhook::metrics::{Metrics, ReloadKind};
use crate::webhook::tls::{CertStore, Reloaded};
use crate::webhook::unreadable::ReadFailure;

/// The policy in use: the embedded default, or a file re-read on change.
pub struct PolicyStore {
    path: Option<PathBuf>,
    current: ArcSwap<Policy>,
    last_seen: Mutex<Vec<u8>>,
    read_failure: ReadFailure,
}

impl PolicyStore {
    /// The embedded default; never reloaded.
    pub fn embedded() -> PolicyStore {
        PolicyStore {
            path: None,
            current: ArcSwap::from_pointee(Policy::embedded()),
            last_seen: Mutex::new(Vec::new()),
            read_failure: ReadFailure::default(),
        }
    }

    /// Loads `path`; fails when it cannot be read or is invalid.
    pub fn load(path: &Path) -> Result<PolicyStore> {
        let bytes = std::fs::read(path)
            .with_context(|| format!("cannot read policy file {}", path.display()))?;
        let policy =
            parse(&bytes).with_context(|| format!("invalid policy file {}", path.display()))?;
        Ok(PolicyStore {
            path: Some(path.to_path_buf()),
            current: ArcSwap::from_pointee(policy),
            last_seen: Mutex::new(bytes),
            read_failure: ReadFailure::default(),
        })
    }

    pub fn current(&self) -> Arc<Policy> {
        self.current.load_full()
    }

    /// Re-reads the file and says what changed. An invalid file leaves the running policy in
    /// place; the same invalid contents, like the same read error, are reported once.
    pub fn reload(&self) -> Result<Reloaded> {
        let Some(path) = &self.path else {
            return Ok(Reloaded::Unchanged);
        };
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(err) => {
                let err = anyhow::Error::new(err)
                    .context(format!("cannot read policy file {}", path.display()));
                return if self.read_failure.failed(&format!("{err:#}")) {
                    Err(err)
                } else {
                    Ok(Reloaded::Unchanged)
                };
            }
        };
        let restored = self.read_failure.succeeded();
        {
            let mut last = self.last_seen.lock().unwrap_or_else(|p| p.into_inner());
            if *last == bytes {
                return Ok(if restored {
                    Reloaded::Restored
                } else {
                    Reloaded::Unchanged
                });
            }
            last.clone_from(&bytes);
        }
        let policy =
            parse(&bytes).with_context(|| format!("invalid policy file {}", path.display()))?;
        self.current.store(Arc::new(policy));
        Ok(Reloaded::Replaced)
    }
}

fn parse(bytes: &[u8]) -> Result<Policy> {
    let text = std::str::from_utf8(bytes).context("the policy is not UTF-8")?;
    Ok(Policy::from_yaml(text)?)
}

/// Checks both files once, logging and counting what happened.
pub fn reload_once(tls: &CertStore, policy: &PolicyStore, metrics: &Metrics) {
    match tls.reload() {
        Ok(Reloaded::Unchanged) => {}
        Ok(Reloaded::Restored) => {
            tracing::info!(kind = "tls", "certificate files readable again, unchanged");
        }
        Ok(Reloaded::Replaced) => {
            metrics.reload(ReloadKind::Tls, true);
            if let Some(expiry) = tls.expiry() {
                metrics.set_certificate_expiry(expiry);
            }
            tracing::info!(
                kind = "tls",
                expiry = tls.expiry(),
                "serving certificate reloaded"
            );
        }
        Err(err) => {
            metrics.reload(ReloadKind::Tls, false);
            tracing::error!(kind = "tls", error = %err, "certificate reload failed; keeping the current one");
        }
    }
    match policy.reload() {
        Ok(Reloaded::Unchanged) => {}
        Ok(Reloaded::Restored) => {
            tracing::info!(kind = "policy", "policy file readable again, unchanged");
        }
        Ok(Reloaded::Replaced) => {
            metrics.reload(ReloadKind::Policy, true);
            tracing::info!(kind = "policy", revision = %policy.current().revision, "policy reloaded");
        }
        Err(err) => {
            metrics.reload(ReloadKind::Policy, false);
            tracing::error!(
                kind = "policy",
                error = format!("{err:#}"),
                "policy reload failed; keeping the current one"
            );
        }
    }
}

/// Re-checks the files every `interval` until the task is aborted.
pub fn spawn(
    tls: Arc<CertStore>,
    policy: Arc<PolicyStore>,
    metrics: Arc<Metrics>,
    interval: Duration,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            let (tls, policy, metrics) = (tls.clone(), policy.clone(), metrics.clone());
            // File reads and PEM/YAML parsing are blocking work.
            let checked =
                tokio::task::spawn_blocking(move || reload_once(&tls, &policy, &metrics)).await;
            if let Err(err) = checked {
                tracing::error!(error = %err, "reload check failed");
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_invalid_policy_never_replaces_the_running_one() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("policy.yaml");
        std::fs::write(&path, "selector: { label: example.com/python }\n").expect("write");
        let store = PolicyStore::load(&path).expect("valid policy");
        assert_eq!(store.current().selector.label, "example.com/python");
        assert_eq!(store.reload().ok(), Some(Reloaded::Unchanged));

        std::fs::write(&path, "selector: { label: '' }\n").expect("write");
        assert!(store.reload().is_err());
        assert_eq!(store.current().selector.label, "example.com/python");
        assert_eq!(
            store.reload().ok(),
            Some(Reloaded::Unchanged),
            "same bad contents are not parsed again"
        );

        std::fs::write(&path, "selector: { label: example.org/py }\n").expect("write");
        assert_eq!(store.reload().ok(), Some(Reloaded::Replaced));
        assert_eq!(store.current().selector.label, "example.org/py");
    }

    /// How many reloads of `kind` failed, by the metrics.
    fn failures(metrics: &Metrics, kind: &str) -> usize {
        let line = format!("pytune_reloads_total{{kind=\"{kind}\",result=\"error\"}} ");
        metrics
            .render()
            .lines()
            .find_map(|l| l.strip_prefix(line.as_str()))
            .and_then(|count| count.parse().ok())
            .unwrap_or(0)
    }

    #[test]
    fn missing_files_are_reported_once_until_they_come_back() {
        crate::webhook::tls::install_provider();
        let dir = tempfile::tempdir().expect("temp dir");
        let authority = crate::webhook::selfsigned::Authority::new("test CA").expect("CA");
        let leaf = authority.issue(&["localhost"]).expect("leaf");
        let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
        std::fs::write(&cert, &leaf.cert_pem).expect("write");
        std::fs::write(&key, &leaf.key_pem).expect("write");
        let policy_path = dir.path().join("policy.yaml");
        std::fs::write(&policy_path, "selector: { label: example.com/python }\n").expect("write");
        let tls = CertStore::load(&cert, &key).expect("pair");
        let policy = PolicyStore::load(&policy_path).expect("policy");
        let metrics = Metrics::new();

        std::fs::remove_file(&policy_path).expect("remove");
        std::fs::remove_file(&key).expect("remove");
        for _ in 0..3 {
            reload_once(&tls, &policy, &metrics);
        }
        assert_eq!(failures(&metrics, "policy"), 1);
        assert_eq!(failures(&metrics, "tls"), 1);
        assert_eq!(policy.reload().ok(), Some(Reloaded::Unchanged));

        // Back as they were: said once, then quiet; gone again: reported again.
        std::fs::write(&policy_path, "selector: { label: example.com/python }\n").expect("write");
        std::fs::write(&key, &leaf.key_pem).expect("write");
        assert_eq!(policy.reload().ok(), Some(Reloaded::Restored));
        assert_eq!(tls.reload().ok(), Some(Reloaded::Restored));
        assert_eq!(policy.reload().ok(), Some(Reloaded::Unchanged));
        std::fs::remove_file(&policy_path).expect("remove");
        reload_once(&tls, &policy, &metrics);
        assert_eq!(failures(&metrics, "policy"), 2);
        assert_eq!(failures(&metrics, "tls"), 1);
    }
}
