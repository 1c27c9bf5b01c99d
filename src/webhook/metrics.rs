//! Prometheus metrics of the webhook, rendered in the text format on the admin port.

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::core::engine::Mode;
use crate::webhook::review::Record;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    mode: &'static str,
    result: &'static str,
    dry_run: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ModeLabels {
    mode: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChangeLabels {
    mode: &'static str,
    feature: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TaskLabels {
    task: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReloadLabels {
    kind: &'static str,
    result: &'static str,
}

/// What was reloaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReloadKind {
    Tls,
    Policy,
    /// The learned-defaults ConfigMap, read by its watch.
    Learned,
}

impl ReloadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReloadKind::Tls => "tls",
            ReloadKind::Policy => "policy",
            ReloadKind::Learned => "learned",
        }
    }
}

pub fn mode_name(mode: Mode) -> &'static str {
    match mode {
        Mode::Enforce => "enforce",
        Mode::Audit => "audit",
    }
}

fn latency_histogram() -> Histogram {
    // 100 µs … ~3.3 s: the engine takes well under a millisecond, the API server waits seconds.
    Histogram::new(prometheus_client::metrics::histogram::exponential_buckets(
        0.0001, 2.0, 16,
    ))
}

/// Every metric pytune exports.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    latency: Family<ModeLabels, Histogram, fn() -> Histogram>,
    changes: Family<ChangeLabels, Counter>,
    reloads: Family<ReloadLabels, Counter>,
    task_failures: Family<TaskLabels, Counter>,
    certificate_expiry: Gauge,
    learned_workloads: Gauge,
    learned_generated: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("pytune");
        let requests = Family::<RequestLabels, Counter>::default();
        registry.register(
            "admission_requests",
            "Admission reviews answered, by mode, result and dry run",
            requests.clone(),
        );
        let latency = Family::<ModeLabels, Histogram, fn() -> Histogram>::new_with_constructor(
            latency_histogram,
        );
        registry.register(
            "admission_duration_seconds",
            "Time from the start of a review to its answer",
            latency.clone(),
        );
        let changes = Family::<ChangeLabels, Counter>::default();
        registry.register(
            "changes",
            "Changes planned, by mode and feature (applied in enforce mode, reported in audit mode)",
            changes.clone(),
        );
        let reloads = Family::<ReloadLabels, Counter>::default();
        registry.register(
            "reloads",
            "Reloads of the TLS certificate and the policy, by kind and result",
            reloads.clone(),
        );
        let task_failures = Family::<TaskLabels, Counter>::default();
        registry.register(
            "task_failures",
            "Background tasks of the server that stopped while it served (the server then reports not ready)",
            task_failures.clone(),
        );
        let certificate_expiry = Gauge::default();
        registry.register(
            "certificate_expiry_timestamp_seconds",
            "When the serving certificate expires, in seconds since the Unix epoch",
            certificate_expiry.clone(),
        );
        let learned_workloads = Gauge::default();
        registry.register(
            "learned_workloads",
            "Workloads in the learned-defaults document the webhook serves from (0 without one)",
            learned_workloads.clone(),
        );
        let learned_generated = Gauge::default();
        registry.register(
            "learned_generated_timestamp_seconds",
            "When the learned-defaults document was computed, in seconds since the Unix epoch (0 without one)",
            learned_generated.clone(),
        );
        Metrics {
            registry,
            requests,
            latency,
            changes,
            reloads,
            task_failures,
            certificate_expiry,
            learned_workloads,
            learned_generated,
        }
    }

    /// Counts one answered review.
    pub fn review(&self, record: &Record, elapsed: Duration) {
        let mode = mode_name(record.mode);
        self.requests
            .get_or_create(&RequestLabels {
                mode,
                result: record.verdict.as_str(),
                dry_run: if record.dry_run { "true" } else { "false" },
            })
            .inc();
        self.latency
            .get_or_create(&ModeLabels { mode })
            .observe(elapsed.as_secs_f64());
        for (feature, count) in &record.changes {
            self.changes
                .get_or_create(&ChangeLabels {
                    mode,
                    feature: feature.name(),
                })
                .inc_by(*count as u64);
        }
    }

    /// Counts a request that was not a review (`result` is e.g. `bad_request`, `too_large`).
    pub fn rejected(&self, mode: Mode, result: &'static str) {
        self.requests
            .get_or_create(&RequestLabels {
                mode: mode_name(mode),
                result,
                dry_run: "unknown",
            })
            .inc();
    }

    pub fn reload(&self, kind: ReloadKind, ok: bool) {
        self.reloads
            .get_or_create(&ReloadLabels {
                kind: kind.as_str(),
                result: if ok { "success" } else { "error" },
            })
            .inc();
    }

    pub fn task_failed(&self, task: &'static str) {
        self.task_failures.get_or_create(&TaskLabels { task }).inc();
    }

    pub fn set_certificate_expiry(&self, unix_seconds: i64) {
        self.certificate_expiry.set(unix_seconds);
    }

    /// The learned-defaults document served from: its workload count and when it was computed.
    pub fn set_learned(&self, workloads: usize, generated_at: Option<i64>) {
        self.learned_workloads
            .set(i64::try_from(workloads).unwrap_or(i64::MAX));
        self.learned_generated.set(generated_at.unwrap_or(0));
    }

    /// The metrics in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::engine::Feature;
    use crate::webhook::review::Verdict;

    #[test]
    fn renders_reviews_reloads_and_expiry() {
        let metrics = Metrics::new();
        let record = Record {
            uid: "u".into(),
            namespace: None,
            pod: None,
            mode: Mode::Audit,
            dry_run: true,
            verdict: Verdict::Audited,
            detail: None,
            changes: [(Feature::Env, 3)].into_iter().collect(),
            added: "web: env(A,B,C)".into(),
            warnings: 3,
        };
        metrics.review(&record, Duration::from_millis(2));
        metrics.rejected(Mode::Enforce, "too_large");
        metrics.reload(ReloadKind::Policy, false);
        metrics.set_certificate_expiry(1_900_000_000);
        metrics.set_learned(12, Some(1_790_000_000));
        let text = metrics.render();
        for expected in [
            r#"pytune_admission_requests_total{mode="audit",result="audited",dry_run="true"} 1"#,
            r#"pytune_admission_requests_total{mode="enforce",result="too_large",dry_run="unknown"} 1"#,
            r#"pytune_changes_total{mode="audit",feature="env"} 3"#,
            r#"pytune_reloads_total{kind="policy",result="error"} 1"#,
            "pytune_certificate_expiry_timestamp_seconds 1900000000",
            "pytune_learned_workloads 12",
            "pytune_learned_generated_timestamp_seconds 1790000000",
            r#"pytune_admission_duration_seconds_count{mode="audit"} 1"#,
        ] {
            assert!(text.contains(expected), "missing {expected} in\n{text}");
        }
    }
}
