use serde_json::json;

use super::*;

const MI: f64 = 1024.0 * 1024.0;

fn settings() -> Settings {
    Settings {
        window: "7d".into(),
        cpu_percentile: 95,
        min_samples: 288,
        memory_margin_percent: 15,
    }
}

/// A gunicorn Pod pytune mutated: WEB_CONCURRENCY=3 and its record.
fn gunicorn_pod() -> Value {
    json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "web-1", "namespace": "shop",
            "labels": {"pytune.io/runtime": "python"},
            "annotations": {"pytune.io/injected": "web: env(WEB_CONCURRENCY)"}},
        "spec": {"containers": [{"name": "web", "image": "python:3.12",
            "command": ["gunicorn", "app:app", "-b", "0.0.0.0:8000"],
            "ports": [{"containerPort": 8000}],
            "env": [{"name": "WEB_CONCURRENCY", "value": "3"}],
            "resources": {"requests": {"cpu": "500m", "memory": "256Mi"}, "limits": {"memory": "512Mi"}}}]}})
}

fn usage(pod: &str, cores: f64, peak_mi: f64, samples: u64) -> PodUsage {
    PodUsage {
        pod: pod.into(),
        cpu_cores: Some(cores),
        samples,
        memory_peak_bytes: Some(peak_mi * MI),
        ..PodUsage::default()
    }
}

fn run(pod: Value, pods: Vec<PodUsage>) -> ContainerRecommendation {
    let workload = WorkloadUsage {
        namespace: "shop".into(),
        workload: "Deployment/web".into(),
        pod,
        usage: vec![("web".into(), pods)],
    };
    let mut rec = recommend(
        &workload,
        &Policy::embedded(),
        &Context::default(),
        &settings(),
    );
    assert_eq!(rec.containers.len(), 1);
    rec.containers.remove(0)
}

fn value<'r>(rec: &'r ContainerRecommendation, field: &str) -> &'r Recommended {
    rec.recommended
        .iter()
        .find(|v| v.field == field)
        .unwrap_or_else(|| panic!("{field} missing from {:#?}", rec.recommended))
}

#[test]
fn web_workers_are_sized_from_the_recommended_cpu() {
    let rec = run(
        gunicorn_pod(),
        vec![
            usage("web-1", 0.1791, 410.0, 1008),
            usage("web-2", 0.15, 380.0, 1008),
        ],
    );
    assert_eq!(rec.status, Status::Recommended);
    let cpu = value(&rec, "resources.requests.cpu");
    assert_eq!(cpu.value, "180m");
    assert!(
        cpu.reason.contains("p95 CPU 180m over 7d, 2,016 samples"),
        "{}",
        cpu.reason
    );
    assert_eq!(value(&rec, "resources.requests.memory").value, "472Mi");
    let limit = value(&rec, "resources.limits.memory");
    assert_eq!(limit.value, "472Mi");
    assert!(
        limit
            .reason
            .contains("peak 410Mi with 3 workers + 1 master = 103Mi per process"),
        "{}",
        limit.reason
    );
    // 180m is one CPU for the formula: gunicorn sync 2×1+1.
    let workers = value(&rec, "env.WEB_CONCURRENCY");
    assert_eq!(workers.value, "3");
    assert!(
        workers.reason.contains("CPU request 180m"),
        "{}",
        workers.reason
    );
    assert_eq!(rec.observed.workers, Some(3));
    assert_eq!(
        rec.observed.workers_source.as_deref(),
        Some("WEB_CONCURRENCY=3, set by pytune")
    );
    assert!(
        rec.recommended
            .iter()
            .any(|v| v.field == "env.OMP_NUM_THREADS")
    );
}

#[test]
fn more_cpu_means_more_workers_and_a_limit_that_fits_them() {
    let rec = run(gunicorn_pod(), vec![usage("web-1", 1.6, 410.0, 2016)]);
    assert_eq!(value(&rec, "resources.requests.cpu").value, "1600m");
    // Two CPUs: 2×2+1 = 5 workers + 1 master at 102.5Mi each, + 15 %.
    assert_eq!(value(&rec, "env.WEB_CONCURRENCY").value, "5");
    assert_eq!(value(&rec, "resources.limits.memory").value, "708Mi");
}

#[test]
fn an_oom_kill_raises_the_limit_past_the_old_one() {
    let mut killed = usage("web-1", 0.2, 512.0, 2016);
    killed.oom_killed = true;
    let rec = run(gunicorn_pod(), vec![killed]);
    let limit = value(&rec, "resources.limits.memory");
    assert_eq!(limit.value, "768Mi");
    assert!(
        limit.reason.contains("OOMKilled in 1 Pod(s)"),
        "{}",
        limit.reason
    );
    assert!(
        limit.reason.contains("cut at the limit 512Mi"),
        "{}",
        limit.reason
    );
}

#[test]
fn too_few_samples_are_reported_not_guessed() {
    let rec = run(gunicorn_pod(), vec![usage("web-1", 0.2, 100.0, 24)]);
    assert_eq!(rec.status, Status::TooFewSamples);
    assert!(rec.recommended.is_empty());
    assert!(
        rec.notes[0].contains("24 sample(s) over 7d, fewer than the 288"),
        "{:?}",
        rec.notes
    );
}

#[test]
fn idle_containers_get_the_cpu_floor_and_bad_numbers_are_ignored() {
    let mut nan = usage("web-2", f64::NAN, f64::INFINITY, 2016);
    nan.memory_peak_bytes = Some(-1.0);
    let rec = run(
        gunicorn_pod(),
        vec![usage("web-1", 0.0004, 90.0, 2016), nan],
    );
    assert_eq!(value(&rec, "resources.requests.cpu").value, "10m");
    assert_eq!(value(&rec, "resources.requests.memory").value, "104Mi");
}

#[test]
fn no_series_is_no_data() {
    let rec = run(gunicorn_pod(), Vec::new());
    assert_eq!(rec.status, Status::NoData);
    assert!(rec.recommended.is_empty());
}

mod properties {
    use proptest::prelude::*;

    use super::*;
    use crate::core::quantity;

    fn pod_usage() -> impl Strategy<Value = PodUsage> {
        (
            prop_oneof![
                Just(None),
                (0.0f64..64.0).prop_map(Some),
                Just(Some(f64::NAN))
            ],
            0u64..5000,
            prop_oneof![Just(None), (0.0f64..64e9).prop_map(Some), Just(Some(-1.0))],
            0.0f64..1e6,
            0.0f64..1e6,
            any::<bool>(),
        )
            .prop_map(|(cpu, samples, memory, periods, throttled, oom)| PodUsage {
                pod: "p".into(),
                cpu_cores: cpu,
                samples,
                memory_peak_bytes: memory,
                periods,
                throttled_periods: throttled,
                oom_killed: oom,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// Every recommended resource is a valid quantity, requests ≤ limits, the CPU floor holds,
        /// and sized variables are integers ≥ 1.
        #[test]
        fn recommendations_are_valid_quantities(
            pods in proptest::collection::vec(pod_usage(), 0..4),
            margin in 0u64..100,
        ) {
            let mut settings = settings();
            settings.memory_margin_percent = margin;
            let workload = WorkloadUsage {
                namespace: "shop".into(),
                workload: "Deployment/web".into(),
                pod: gunicorn_pod(),
                usage: vec![("web".into(), pods)],
            };
            let rec = recommend(&workload, &Policy::embedded(), &Context::default(), &settings);
            for c in &rec.containers {
                let get = |field: &str| c.recommended.iter().find(|v| v.field == field).map(|v| v.value.clone());
                if let Some(cpu) = get("resources.requests.cpu") {
                    let millis = quantity::cpu_millis(&cpu).expect("CPU quantity");
                    prop_assert!(millis >= CPU_FLOOR_MILLIS);
                }
                let request = get("resources.requests.memory").map(|m| quantity::memory_bytes(&m).expect("memory quantity"));
                let limit = get("resources.limits.memory").map(|m| quantity::memory_bytes(&m).expect("memory quantity"));
                if let (Some(request), Some(limit)) = (request, limit) {
                    prop_assert!(request <= limit, "{request} > {limit}");
                }
                prop_assert_eq!(request.is_some(), limit.is_some());
                for v in c.recommended.iter().filter(|v| v.field.starts_with("env.")) {
                    let count: u32 = v.value.parse().expect("integer");
                    prop_assert!(count >= 1);
                }
                if c.status != Status::Recommended {
                    prop_assert!(c.recommended.is_empty());
                }
            }
        }
    }
}
