//! Inputs at the edges of size: a List as large as real clusters hold goes through whole, while
//! alias bombs and absurd nesting are refused by name, quickly, without losing their neighbours.

use serde_json::Value;

mod common;
use common::pytune_within;

/// A Pod as a Deployment's ReplicaSet would create it: about 2 KB of YAML, 200 nodes.
fn realistic_pod(i: usize) -> String {
    let mut env = String::new();
    for n in 0..12 {
        env.push_str(&format!(
            "      - name: SETTING_{n}\n        value: \"value-{n}-of-pod-{i}\"\n"
        ));
    }
    format!(
        r#"- apiVersion: v1
  kind: Pod
  metadata:
    name: shop-web-7d9c5b-{i:05}
    namespace: shop
    labels:
      app.kubernetes.io/name: shop-web
      app.kubernetes.io/instance: shop
      pod-template-hash: 7d9c5b
      pytune.io/runtime: python
    annotations:
      prometheus.io/scrape: "true"
      prometheus.io/port: "8000"
  spec:
    serviceAccountName: shop
    terminationGracePeriodSeconds: 30
    securityContext: {{runAsNonRoot: true, runAsUser: 1000, fsGroup: 1000}}
    containers:
    - name: web
      image: registry.example.com/shop/web:1.4.{i}
      command: ["gunicorn", "shop.wsgi:application", "--bind", "0.0.0.0:8000"]
      ports:
      - {{name: http, containerPort: 8000, protocol: TCP}}
      env:
{env}      - name: DATABASE_URL
        valueFrom: {{secretKeyRef: {{name: shop-db, key: url}}}}
      resources:
        requests: {{cpu: 500m, memory: 512Mi}}
        limits: {{memory: 512Mi}}
      readinessProbe:
        httpGet: {{path: /healthz, port: http}}
        periodSeconds: 10
      securityContext:
        allowPrivilegeEscalation: false
        capabilities: {{drop: [ALL]}}
      volumeMounts:
      - {{name: tmp, mountPath: /tmp}}
    tolerations:
    - {{key: dedicated, operator: Equal, value: web, effect: NoSchedule}}
    volumes:
    - {{name: tmp, emptyDir: {{}}}}
"#
    )
}

#[test]
fn a_list_of_two_thousand_pods_is_audited_whole() {
    let mut list = String::from("apiVersion: v1\nkind: List\nitems:\n");
    for i in 0..2000 {
        list.push_str(&realistic_pod(i));
    }
    assert!(list.len() > 3_500_000, "{} bytes", list.len());
    let output = pytune_within(&["audit", "-o", "json", "-"], &list, 300);
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    assert_eq!(
        report["errors"],
        serde_json::json!([]),
        "{:#}",
        report["errors"]
    );
    let workloads = report["workloads"].as_array().expect("workloads");
    assert_eq!(workloads.len(), 2000);
    assert_eq!(workloads[1999]["workload"], "Pod/shop-web-7d9c5b-01999");
    assert!(workloads.iter().all(|w| w["status"] == "would-change"));
}

/// Nine levels of nine aliases: 9^9 (387 million) strings once expanded.
fn billion_laughs() -> String {
    let mut text = String::from("a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for (prev, name) in "abcdefgh".chars().zip("bcdefghi".chars()) {
        let aliases = vec![format!("*{prev}"); 9].join(", ");
        text.push_str(&format!("{name}: &{name} [{aliases}]\n"));
    }
    text
}

#[test]
fn bombs_and_deep_nesting_are_refused_by_name_and_the_rest_processed() {
    let pod = std::fs::read_to_string("examples/bare-pod.yaml").expect("example");
    let deep_block = format!("{}x\n", "- ".repeat(100_000));
    let deep_flow = format!("{}{}\n", "[".repeat(100_000), "]".repeat(100_000));
    let input = [billion_laughs().as_str(), &deep_block, &deep_flow, &pod].join("---\n");
    let output = pytune_within(&["audit", "-o", "json", "-"], &input, 60);
    let report: Value = serde_json::from_slice(&output.stdout).expect("JSON report");
    let errors: Vec<&str> = report["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(errors.len(), 3, "{errors:#?}");
    assert!(
        errors[0].starts_with("- document 0: ") && errors[0].contains("alias"),
        "{errors:#?}"
    );
    for error in &errors[1..] {
        assert!(error.contains("nested more than"), "{errors:#?}");
    }
    let workloads = report["workloads"].as_array().expect("workloads");
    assert_eq!(workloads.len(), 1, "{workloads:#?}");
    assert_eq!(workloads[0]["workload"], "Pod/feed-consumer");
    assert_eq!(workloads[0]["document"], 3);
}
