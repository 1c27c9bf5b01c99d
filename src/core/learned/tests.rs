use std::collections::BTreeMap;

use super::*;
use crate::core::profile::WorkloadProfile;
use crate::core::recommend::{
    ContainerRecommendation, Observed, Recommended, Status, WorkloadRecommendation,
};

const DAY: u64 = 86_400;

fn container(name: &str, status: Status, fields: &[(&str, &str)]) -> ContainerRecommendation {
    ContainerRecommendation {
        container: name.to_string(),
        profile: WorkloadProfile::Web,
        status,
        samples: 2016,
        pods: Vec::new(),
        observed: Observed::default(),
        current: BTreeMap::new(),
        recommended: fields
            .iter()
            .map(|(field, value)| Recommended {
                field: field.to_string(),
                value: value.to_string(),
                reason: format!("from usage {value}"),
            })
            .collect(),
        notes: Vec::new(),
    }
}

fn workload(
    ns: &str,
    workload: &str,
    containers: Vec<ContainerRecommendation>,
) -> WorkloadRecommendation {
    WorkloadRecommendation {
        namespace: ns.to_string(),
        workload: workload.to_string(),
        containers,
    }
}

fn sample() -> LearnedDocument {
    from_recommendations(
        &[
            workload(
                "shop",
                "Deployment/web",
                vec![
                    container(
                        "app",
                        Status::Recommended,
                        &[
                            ("resources.requests.cpu", "180m"),
                            ("resources.requests.memory", "300Mi"),
                            ("resources.limits.memory", "600Mi"),
                            ("env.WEB_CONCURRENCY", "3"),
                        ],
                    ),
                    container("thin", Status::TooFewSamples, &[]),
                ],
            ),
            workload(
                "shop",
                "Pod/debug",
                vec![container(
                    "app",
                    Status::Recommended,
                    &[("resources.requests.cpu", "10m")],
                )],
            ),
            workload(
                "shop",
                "CronJob/nightly",
                vec![container("app", Status::NoData, &[])],
            ),
        ],
        "7d",
        "2026-11-20T08:00:00Z".to_string(),
    )
}

#[test]
fn only_recommended_resource_values_of_workloads_are_kept() {
    let document = sample();
    assert_eq!(document.workloads.len(), 1, "{document:?}");
    let web = &document.workloads[0];
    assert_eq!(
        (web.kind.as_str(), web.name.as_str()),
        ("Deployment", "web")
    );
    assert_eq!(web.containers.len(), 1);
    let values = &web.containers[0].values;
    assert_eq!(values.len(), 3, "no env values: {values:?}");
    assert_eq!(values["resources.requests.cpu"], "180m");
    assert!(
        web.containers[0]
            .reason
            .contains("requests.cpu from usage 180m")
    );
}

#[test]
fn the_document_parses_back_and_looks_up_fresh_values_only() {
    let document = sample();
    let json = document.to_json_bounded(MAX_DOCUMENT_BYTES).json;
    let parsed = LearnedDocument::parse(&json).unwrap();
    assert_eq!(parsed, document);
    let generated = parse_rfc3339("2026-11-20T08:00:00Z").unwrap();
    let day = i64::try_from(DAY).unwrap();
    let found = parsed
        .learned_for(
            "shop",
            "Deployment",
            "web",
            "app",
            generated + day,
            14 * DAY,
        )
        .unwrap();
    assert_eq!(found.cpu_request.as_deref(), Some("180m"));
    assert_eq!(found.memory_request.as_deref(), Some("300Mi"));
    assert_eq!(found.memory_limit.as_deref(), Some("600Mi"));
    assert!(
        found.provenance.starts_with("learned from usage: ")
            && found
                .provenance
                .ends_with("(7d window, generated 2026-11-20)"),
        "{}",
        found.provenance
    );
    assert!(parsed.is_fresh(generated + 14 * day, 14 * DAY));
    assert!(parsed.is_fresh(generated - day, 14 * DAY), "clock skew");
    assert!(parsed.has_namespace("shop") && !parsed.has_namespace("other"));
    let stale = generated + 15 * day;
    assert!(!parsed.is_fresh(stale, 14 * DAY));
    assert_eq!(
        parsed.learned_for("shop", "Deployment", "web", "app", stale, 14 * DAY),
        None
    );
    for (ns, kind, name, c) in [
        ("other", "Deployment", "web", "app"),
        ("shop", "StatefulSet", "web", "app"),
        ("shop", "Deployment", "web", "sidecar"),
    ] {
        assert_eq!(
            parsed.learned_for(ns, kind, name, c, generated, 14 * DAY),
            None
        );
    }
}

#[test]
fn invalid_documents_are_refused_with_what_to_fix() {
    let valid = sample().to_json_bounded(MAX_DOCUMENT_BYTES).json;
    let cases = [
        ("not json", "not a learned-defaults document"),
        (
            &valid.replace("\"version\":1", "\"version\":2"),
            "version 2",
        ),
        (
            &valid.replace("2026-11-20T08:00:00Z", "yesterday"),
            "RFC 3339",
        ),
        (
            &valid.replace("180m", "lots"),
            "resources.requests.cpu \"lots\"",
        ),
        (&valid.replace("300Mi", "0"), "must be above zero"),
        (
            &valid.replace("resources.limits.memory", "resources.limits.cpu"),
            "not one pytune learns",
        ),
    ];
    for (text, expected) in cases {
        let err = LearnedDocument::parse(text).unwrap_err().to_string();
        assert!(err.contains(expected), "{err}");
    }
}

#[test]
fn serialization_stays_within_the_bound_and_counts_what_it_drops() {
    let recommendations: Vec<_> = (0..200)
        .map(|i| {
            workload(
                "ns",
                &format!("Deployment/app-{i:03}"),
                vec![container(
                    "app",
                    Status::Recommended,
                    &[("resources.requests.cpu", "100m")],
                )],
            )
        })
        .collect();
    let document = from_recommendations(&recommendations, "7d", "2026-11-20T08:00:00Z".into());
    let whole = document.to_json_bounded(usize::MAX);
    assert_eq!(whole.dropped, 0);
    let bound = whole.json.len() / 2;
    let half = document.to_json_bounded(bound);
    assert!(half.json.len() <= bound, "{} > {bound}", half.json.len());
    assert!(half.dropped > 0 && half.dropped < 200);
    let parsed = LearnedDocument::parse(&half.json).unwrap();
    assert_eq!(parsed.workloads.len() + half.dropped, 200);
    // The first workloads are kept, the last dropped.
    assert_eq!(parsed.workloads[0].name, "app-000");
    let tiny = document.to_json_bounded(10);
    assert_eq!(tiny.dropped, 200);
}

mod never_panics {
    use proptest::prelude::*;

    use super::*;

    const VALID: &str = r#"{"version":1,"window":"7d","generatedAt":"2026-11-20T08:00:00Z","workloads":[{"namespace":"shop","kind":"Deployment","name":"web","containers":[{"name":"app","values":{"resources.requests.cpu":"180m","resources.limits.memory":"600Mi"},"reason":"r"}]}]}"#;

    proptest! {
        // The webhook's watch parses whatever the ConfigMap holds: bad text is an error, never a
        // panic (which would stop the watch and make the server not ready).
        #[test]
        fn any_text_parses_or_is_refused(text in ".{0,400}") {
            let _ = LearnedDocument::parse(&text);
        }

        #[test]
        fn edited_documents_parse_or_are_refused(
            at in 0..VALID.len(),
            cut in 0usize..8,
            insert in "[-0-9a-zA-Z.:\"{},\\[\\]eE+ ]{0,6}",
        ) {
            let mut text = VALID.to_string();
            let end = (at + cut).min(text.len());
            if text.is_char_boundary(at) && text.is_char_boundary(end) {
                text.replace_range(at..end, &insert);
            }
            if let Ok(document) = LearnedDocument::parse(&text) {
                // What parses is usable: every lookup answers without panicking.
                for workload in &document.workloads {
                    for container in &workload.containers {
                        let _ = document.learned_for(
                            &workload.namespace,
                            &workload.kind,
                            &workload.name,
                            &container.name,
                            i64::MAX,
                            u64::MAX,
                        );
                    }
                }
            }
        }
    }
}
