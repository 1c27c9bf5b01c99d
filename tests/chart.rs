//! The Helm chart (charts/pytune) and certs/make-certs: helm lint and helm template over every
//! documented values combination, assertions on the rendered objects, offline schema validation
//! with kubernetes-validate, the values schema's messages, and the certificates against `pytune serve`.
//!
//! Needs helm and kubernetes-validate: `scripts/install-helm` puts them in target/tools/bin, and
//! `scripts/test` passes them as PYTUNE_HELM and PYTUNE_KUBERNETES_VALIDATE. The dashboard's queries
//! and the alert rules are checked with promtool (`PYTUNE_PROMTOOL`, else `PATH`; Debian's
//! `prometheus` package, which `.ci/run` installs): without it those tests fail when `CI=true` and
//! are skipped with a notice otherwise.
// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

const RELEASE: &str = "pytune";
const NAMESPACE: &str = "pytune-system";
const KUBE_VERSION: &str = "1.33.0";

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn chart() -> PathBuf {
    root().join("charts/pytune")
}

/// A tool from its environment variable, else from target/tools/bin; a clear failure when absent.
fn tool(var: &str, name: &str) -> PathBuf {
    let path = match std::env::var_os(var) {
        Some(path) => PathBuf::from(path),
        None => root().join("target/tools/bin").join(name),
    };
    assert!(
        path.is_file(),
        "{name} not found at {} — run scripts/install-helm (or ./scripts/test, which does), \
         or set {var} to a {name} binary",
        path.display()
    );
    path
}

fn helm() -> PathBuf {
    tool("PYTUNE_HELM", "helm")
}

/// Runs `command`, asserts it succeeded (showing its output otherwise), and returns its stdout.
fn run_ok(command: &mut Command, what: &str) -> String {
    let output = command
        .output()
        .unwrap_or_else(|err| panic!("{what} does not run: {err}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{what} failed:\n{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn helm_template(args: &[&str]) -> Result<String, String> {
    let output = Command::new(helm())
        .args(["template", RELEASE])
        .arg(chart())
        .args(["--namespace", NAMESPACE, "--kube-version", KUBE_VERSION])
        .args(args)
        .output()
        .expect("helm runs");
    if output.status.success() {
        Ok(String::from_utf8(output.stdout).expect("helm prints UTF-8"))
    } else {
        Err(String::from_utf8_lossy(&output.stderr).into_owned())
    }
}

fn parse(text: &str) -> Vec<Value> {
    let docs: Vec<Value> = serde_saphyr::from_multiple(text).expect("helm output is YAML");
    docs.into_iter().filter(|doc| !doc.is_null()).collect()
}

/// `--set`-style arguments → rendered objects.
fn render(sets: &[&str]) -> Vec<Value> {
    let mut args = Vec::new();
    for set in sets {
        args.push("--set");
        args.push(set);
    }
    let text = helm_template(&args).unwrap_or_else(|err| panic!("helm template {sets:?}: {err}"));
    parse(&text)
}

fn find<'a>(docs: &'a [Value], kind: &str) -> &'a Value {
    let found: Vec<&Value> = docs.iter().filter(|doc| doc["kind"] == kind).collect();
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {kind}, got {}",
        found.len()
    );
    found[0]
}

/// A JSON array of strings (a container's args) as `&str`s.
fn strings(array: &Value) -> Vec<&str> {
    array
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap())
        .collect()
}

fn kinds(docs: &[Value]) -> Vec<String> {
    let mut kinds: Vec<String> = docs
        .iter()
        .map(|doc| doc["kind"].as_str().unwrap().to_string())
        .collect();
    kinds.sort();
    kinds
}

fn webhooks(docs: &[Value]) -> Vec<Value> {
    find(docs, "MutatingWebhookConfiguration")["webhooks"]
        .as_array()
        .unwrap()
        .clone()
}

fn expressions(webhook: &Value) -> Vec<Value> {
    let selector = &webhook["namespaceSelector"];
    assert!(selector.get("matchLabels").is_none());
    selector["matchExpressions"].as_array().unwrap().clone()
}

fn expr(key: &str, operator: &str, values: &[&str]) -> Value {
    json!({"key": key, "operator": operator, "values": values})
}

fn system_exclusion() -> Value {
    expr(
        "kubernetes.io/metadata.name",
        "NotIn",
        &["kube-system", "kube-public", "kube-node-lease", NAMESPACE],
    )
}

/// Every documented values combination, as `--set` lists.
fn combinations() -> Vec<Vec<String>> {
    let mut combos = Vec::new();
    for scope in ["namespaces", "cluster"] {
        for certs in [
            vec!["certificates.mode=selfSigned".to_string()],
            vec!["certificates.mode=certManager".to_string()],
            vec![
                "certificates.mode=existingSecret".to_string(),
                "certificates.existingSecret=pytune-serving".to_string(),
                "certificates.caBundle=Q0E=".to_string(),
            ],
        ] {
            for audit in [true, false] {
                let mut set = vec![format!("scope={scope}"), format!("webhook.audit={audit}")];
                set.extend(certs.iter().cloned());
                combos.push(set);
            }
        }
    }
    combos.push(vec!["serviceMonitor.enabled=true".into()]);
    combos.push(vec![
        "grafanaDashboard.enabled=true".into(),
        "prometheusRule.enabled=true".into(),
    ]);
    combos.push(vec![
        "policy.profiles.web.resources.requests.cpu=500m".into(),
        "policy.sidecars={istio-proxy}".into(),
    ]);
    combos.push(vec![
        "certificates.certManager.issuerRef.name=corp-ca".into(),
    ]);
    combos.push(learned_and_recommend(&[]));
    combos.push(learned_and_recommend(&[
        "recommend.namespaces={shop,api}",
        "recommend.prometheus.bearerTokenSecret.name=prometheus-token",
        "recommend.prometheus.caConfigMap.name=prometheus-ca",
    ]));
    combos
}

/// Learned defaults and the recommend CronJob on, with `extra` values.
fn learned_and_recommend(extra: &[&str]) -> Vec<String> {
    let mut set: Vec<String> = vec![
        "learnedDefaults.enabled=true".into(),
        "recommend.enabled=true".into(),
        "recommend.prometheus.url=http://prometheus-operated.monitoring:9090".into(),
    ];
    set.extend(extra.iter().map(|s| s.to_string()));
    set
}

fn sets(combo: &[String]) -> Vec<&str> {
    combo.iter().map(String::as_str).collect()
}

#[test]
fn chart_policy_is_a_copy_of_the_default_policy() {
    let chart_copy = std::fs::read(chart().join("files/default-policy.yaml")).unwrap();
    let default = std::fs::read(root().join("policy/default.yaml")).unwrap();
    assert!(
        chart_copy == default,
        "charts/pytune/files/default-policy.yaml differs from policy/default.yaml: \
         cp policy/default.yaml charts/pytune/files/default-policy.yaml"
    );
}

#[test]
fn helm_lint_passes_for_every_documented_combination() {
    for combo in combinations() {
        let mut cmd = Command::new(helm());
        cmd.args([
            "lint",
            "--strict",
            "--namespace",
            NAMESPACE,
            "--kube-version",
            KUBE_VERSION,
        ]);
        cmd.arg(chart());
        for set in &combo {
            cmd.args(["--set", set]);
        }
        let output = cmd.output().expect("helm runs");
        assert!(
            output.status.success(),
            "helm lint {combo:?}:\n{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
}

#[test]
fn webhook_defaults_are_safe() {
    let docs = render(&[]);
    let hooks = webhooks(&docs);
    assert_eq!(hooks.len(), 2);
    for hook in &hooks {
        assert_eq!(hook["admissionReviewVersions"], json!(["v1"]));
        assert_eq!(hook["sideEffects"], "None");
        assert_eq!(hook["failurePolicy"], "Ignore");
        assert_eq!(hook["timeoutSeconds"], 5);
        assert_eq!(hook["reinvocationPolicy"], "IfNeeded");
        assert_eq!(
            hook["rules"],
            json!([{"operations": ["CREATE"], "apiGroups": [""], "apiVersions": ["v1"],
                    "resources": ["pods"], "scope": "Namespaced"}])
        );
        assert_eq!(
            hook["objectSelector"],
            json!({"matchLabels": {"pytune.io/runtime": "python"}})
        );
        let service = &hook["clientConfig"]["service"];
        assert_eq!(service["name"], RELEASE);
        assert_eq!(service["namespace"], NAMESPACE);
        assert_eq!(service["port"], 443);
    }
    assert_eq!(hooks[0]["name"], "mutate.pytune.io");
    assert_eq!(hooks[0]["clientConfig"]["service"]["path"], "/mutate");
    assert_eq!(hooks[1]["name"], "audit.pytune.io");
    assert_eq!(hooks[1]["clientConfig"]["service"]["path"], "/audit");

    let tuned = render(&["webhook.failurePolicy=Fail", "webhook.timeoutSeconds=3"]);
    for hook in webhooks(&tuned) {
        assert_eq!(hook["failurePolicy"], "Fail");
        assert_eq!(hook["timeoutSeconds"], 3);
    }
}

#[test]
fn namespaces_scope_selects_only_opted_in_namespaces() {
    let hooks = webhooks(&render(&["scope=namespaces"]));
    let mutate = expressions(&hooks[0]);
    assert!(mutate.contains(&system_exclusion()));
    assert!(mutate.contains(&expr("pytune.io/enabled", "In", &["true"])));
    assert!(mutate.contains(&expr("pytune.io/enabled", "NotIn", &["false"])));
    assert!(
        mutate.contains(&expr("pytune.io/mode", "NotIn", &["audit"])),
        "audit namespaces excluded"
    );
    assert_eq!(mutate.len(), 4);

    let audit = expressions(&hooks[1]);
    assert_eq!(
        audit,
        vec![
            system_exclusion(),
            expr("pytune.io/enabled", "NotIn", &["false"]),
            expr("pytune.io/mode", "In", &["audit"]),
        ]
    );
}

#[test]
fn cluster_scope_selects_every_namespace_but_system_and_opted_out_ones() {
    let hooks = webhooks(&render(&[
        "scope=cluster",
        "webhook.excludeNamespaces={ci,sandbox}",
    ]));
    let exclusion = expr(
        "kubernetes.io/metadata.name",
        "NotIn",
        &[
            "kube-system",
            "kube-public",
            "kube-node-lease",
            NAMESPACE,
            "ci",
            "sandbox",
        ],
    );
    assert_eq!(
        expressions(&hooks[0]),
        vec![
            exclusion.clone(),
            expr("pytune.io/enabled", "NotIn", &["false"]),
            expr("pytune.io/mode", "NotIn", &["audit"]),
        ]
    );
    assert_eq!(
        expressions(&hooks[1]),
        vec![
            exclusion,
            expr("pytune.io/enabled", "NotIn", &["false"]),
            expr("pytune.io/mode", "In", &["audit"]),
        ]
    );
}

#[test]
fn without_the_audit_entry_only_mutate_remains() {
    for scope in ["namespaces", "cluster"] {
        let hooks = webhooks(&render(&[&format!("scope={scope}"), "webhook.audit=false"]));
        assert_eq!(hooks.len(), 1);
        assert_eq!(hooks[0]["clientConfig"]["service"]["path"], "/mutate");
        let exprs = expressions(&hooks[0]);
        assert!(
            !exprs.iter().any(|e| e["key"] == "pytune.io/mode"),
            "{scope}: {exprs:?}"
        );
    }
}

#[test]
fn selector_value_reaches_the_webhook_and_the_policy() {
    let docs = render(&["selector.label=example.com/lang", "selector.value=py"]);
    for hook in webhooks(&docs) {
        assert_eq!(
            hook["objectSelector"],
            json!({"matchLabels": {"example.com/lang": "py"}})
        );
    }
    let policy = policy_of(&docs);
    assert_eq!(
        policy["selector"],
        json!({"label": "example.com/lang", "value": "py"})
    );
}

fn secret_volume(docs: &[Value]) -> String {
    let volumes = &find(docs, "Deployment")["spec"]["template"]["spec"]["volumes"];
    let tls = volumes
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "tls")
        .unwrap();
    tls["secret"]["secretName"].as_str().unwrap().to_string()
}

fn decode(b64: &Value) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(b64.as_str().unwrap())
        .unwrap()
}

#[test]
fn self_signed_mode_makes_a_ca_the_webhook_trusts() {
    let docs = render(&["certificates.mode=selfSigned"]);
    let secret = find(&docs, "Secret");
    assert_eq!(secret["type"], "kubernetes.io/tls");
    assert_eq!(secret["metadata"]["name"], secret_volume(&docs));
    let ca = &secret["data"]["ca.crt"];
    for hook in webhooks(&docs) {
        assert_eq!(&hook["clientConfig"]["caBundle"], ca);
    }
    let mwc = find(&docs, "MutatingWebhookConfiguration");
    assert!(mwc["metadata"].get("annotations").is_none());
    assert!(!kinds(&docs).contains(&"Certificate".to_string()));

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ca.crt"), decode(ca)).unwrap();
    std::fs::write(
        dir.path().join("tls.crt"),
        decode(&secret["data"]["tls.crt"]),
    )
    .unwrap();
    std::fs::write(
        dir.path().join("tls.key"),
        decode(&secret["data"]["tls.key"]),
    )
    .unwrap();
    openssl_verify(dir.path());
    let sans = subject_alt_names(&dir.path().join("tls.crt"));
    for name in ["pytune", "pytune.pytune-system", "pytune.pytune-system.svc"] {
        assert!(
            sans.contains(&format!("DNS:{name},")),
            "{name} not in {sans}"
        );
    }
    // The Deployment's own arguments start pytune with this pair and the rendered policy (the
    // mounted paths and listen addresses mapped to this machine), and a client that trusts only the
    // CA accepts it for the Service's name.
    std::fs::write(dir.path().join("policy.yaml"), policy_text(&docs)).unwrap();
    let container = &find(&docs, "Deployment")["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<String> = container["args"]
        .as_array()
        .unwrap()
        .iter()
        .map(|arg| {
            let arg = arg.as_str().unwrap();
            match arg.split_once('=') {
                Some(("--listen", _)) => "--listen=127.0.0.1:{port}".to_string(),
                Some(("--admin-listen", _)) => "--admin-listen=127.0.0.1:{admin}".to_string(),
                _ => arg
                    .replace("/etc/pytune/tls", dir.path().to_str().unwrap())
                    .replace("/etc/pytune/policy", dir.path().to_str().unwrap()),
            }
        })
        .collect();
    serve_and_handshake(dir.path(), Some("pytune.pytune-system.svc"), &args);
}

#[test]
fn cert_manager_mode_issues_a_certificate_and_injects_the_ca() {
    let docs = render(&["certificates.mode=certManager"]);
    let mwc = find(&docs, "MutatingWebhookConfiguration");
    assert_eq!(
        mwc["metadata"]["annotations"]["cert-manager.io/inject-ca-from"],
        format!("{NAMESPACE}/{RELEASE}")
    );
    for hook in webhooks(&docs) {
        assert!(hook["clientConfig"].get("caBundle").is_none());
    }
    let certificate = find(&docs, "Certificate");
    assert_eq!(certificate["metadata"]["name"], RELEASE);
    assert_eq!(certificate["metadata"]["namespace"], NAMESPACE);
    assert_eq!(certificate["spec"]["secretName"], secret_volume(&docs));
    assert!(
        certificate["spec"]["dnsNames"]
            .as_array()
            .unwrap()
            .contains(&json!("pytune.pytune-system.svc"))
    );
    let issuer = find(&docs, "Issuer");
    assert_eq!(
        certificate["spec"]["issuerRef"]["name"],
        issuer["metadata"]["name"]
    );
    assert!(
        !kinds(&docs).contains(&"Secret".to_string()),
        "cert-manager writes the Secret"
    );

    let docs = render(&[
        "certificates.mode=certManager",
        "certificates.certManager.issuerRef.name=corp-ca",
        "certificates.certManager.issuerRef.kind=ClusterIssuer",
    ]);
    assert!(!kinds(&docs).contains(&"Issuer".to_string()));
    let issuer_ref = &find(&docs, "Certificate")["spec"]["issuerRef"];
    assert_eq!(
        issuer_ref,
        &json!({"name": "corp-ca", "kind": "ClusterIssuer", "group": "cert-manager.io"})
    );
}

#[test]
fn existing_secret_mode_uses_the_secret_and_the_ca_bundle() {
    let docs = render(&[
        "certificates.mode=existingSecret",
        "certificates.existingSecret=my-serving",
        "certificates.caBundle=Q0FCVU5ETEU=",
    ]);
    assert_eq!(secret_volume(&docs), "my-serving");
    assert!(!kinds(&docs).contains(&"Secret".to_string()));
    assert!(!kinds(&docs).contains(&"Certificate".to_string()));
    for hook in webhooks(&docs) {
        assert_eq!(hook["clientConfig"]["caBundle"], "Q0FCVU5ETEU=");
    }
}

#[test]
fn deployment_is_hardened_and_probed_on_the_admin_port() {
    let docs = render(&[]);
    let deployment = find(&docs, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 2);
    let pod = &deployment["spec"]["template"]["spec"];
    // The token is mounted for the ConfigMap lookups only (rbac_is_only_get_on_config_maps).
    assert_eq!(pod["automountServiceAccountToken"], true);
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(
        pod["securityContext"]["seccompProfile"]["type"],
        "RuntimeDefault"
    );
    let spread = &pod["topologySpreadConstraints"][0];
    assert_eq!(spread["topologyKey"], "kubernetes.io/hostname");
    assert_eq!(
        spread["labelSelector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"]
    );

    let containers = pod["containers"].as_array().unwrap();
    assert_eq!(containers.len(), 1);
    let c = &containers[0];
    let sc = &c["securityContext"];
    assert_eq!(sc["allowPrivilegeEscalation"], false);
    assert_eq!(sc["readOnlyRootFilesystem"], true);
    assert_eq!(sc["runAsNonRoot"], true);
    assert_eq!(sc["capabilities"]["drop"], json!(["ALL"]));
    assert_eq!(sc["seccompProfile"]["type"], "RuntimeDefault");
    assert_eq!(
        c["livenessProbe"]["httpGet"],
        json!({"path": "/livez", "port": "admin"})
    );
    assert_eq!(
        c["readinessProbe"]["httpGet"],
        json!({"path": "/readyz", "port": "admin"})
    );
    assert!(c["resources"]["requests"]["cpu"].is_string());
    assert!(c["resources"]["limits"]["memory"].is_string());
    let ports: Vec<(String, i64)> = c["ports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["name"].as_str().unwrap().into(),
                p["containerPort"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(ports, vec![("https".into(), 8443), ("admin".into(), 8080)]);

    let args = strings(&c["args"]);
    for expected in [
        "serve",
        "--listen=0.0.0.0:8443",
        "--admin-listen=0.0.0.0:8080",
        "--tls-cert=/etc/pytune/tls/tls.crt",
        "--tls-key=/etc/pytune/tls/tls.key",
        "--policy=/etc/pytune/policy/policy.yaml",
        "--kubernetes-version=1.33",
    ] {
        assert!(args.contains(&expected), "{expected} not in {args:?}");
    }
    let mounts = c["volumeMounts"].as_array().unwrap();
    assert!(
        mounts.contains(&json!({"name": "tls", "mountPath": "/etc/pytune/tls", "readOnly": true}))
    );
    assert!(
        mounts.contains(
            &json!({"name": "policy", "mountPath": "/etc/pytune/policy", "readOnly": true})
        )
    );
    let policy_volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "policy")
        .unwrap();
    assert_eq!(
        policy_volume["configMap"]["name"],
        find(&docs, "ConfigMap")["metadata"]["name"]
    );

    let service = find(&docs, "Service");
    let https = &service["spec"]["ports"][0];
    assert_eq!(
        (https["port"].as_i64(), https["targetPort"].as_str()),
        (Some(443), Some("https"))
    );
    assert_eq!(
        service["spec"]["selector"],
        deployment["spec"]["selector"]["matchLabels"]
    );

    let pdb = find(&docs, "PodDisruptionBudget");
    assert_eq!(pdb["spec"]["maxUnavailable"], 1);
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"],
        deployment["spec"]["selector"]["matchLabels"]
    );

    let pinned = render(&["kubernetesVersion=1.29", "replicaCount=3"]);
    let deployment = find(&pinned, "Deployment");
    assert_eq!(deployment["spec"]["replicas"], 3);
    let args = &deployment["spec"]["template"]["spec"]["containers"][0]["args"];
    assert!(
        args.as_array()
            .unwrap()
            .contains(&json!("--kubernetes-version=1.29"))
    );
}

#[test]
fn rbac_is_only_get_on_env_from_sources() {
    // The server's API calls are `get` on the ConfigMaps Pods name in envFrom (on by default) and,
    // opted in, on the Secrets they name; without them the chart grants nothing and mounts no token.
    for combo in combinations() {
        if combo.iter().any(|set| set.starts_with("learnedDefaults.")) {
            continue; // their own test below
        }
        let docs = render(&sets(&combo));
        for kind in ["Role", "RoleBinding"] {
            assert!(
                !kinds(&docs).contains(&kind.to_string()),
                "{combo:?} renders a {kind}"
            );
        }
        let role = find(&docs, "ClusterRole");
        assert_eq!(
            role["rules"],
            serde_json::json!([{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get"]}]),
            "{combo:?}"
        );
        let binding = find(&docs, "ClusterRoleBinding");
        let account = find(&docs, "ServiceAccount");
        assert_eq!(binding["roleRef"]["name"], role["metadata"]["name"]);
        assert_eq!(binding["subjects"][0]["name"], account["metadata"]["name"]);
        assert_eq!(account["automountServiceAccountToken"], true);
        let pod = &find(&docs, "Deployment")["spec"]["template"]["spec"];
        assert_eq!(pod["serviceAccountName"], account["metadata"]["name"]);
        assert_eq!(pod["automountServiceAccountToken"], true);
        let args = pod["containers"][0]["args"].as_array().expect("args");
        assert!(
            args.iter().any(|a| a == "--resolve-config-maps=true"),
            "{args:?}"
        );
    }

    // Secrets only with resolveSecrets: a role of their own, so the grant is plain to see.
    let docs = render(&["resolveConfigMaps=false", "resolveSecrets=true"]);
    let role = find(&docs, "ClusterRole");
    assert_eq!(
        role["rules"],
        serde_json::json!([{"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}])
    );
    assert_eq!(
        find(&docs, "ClusterRoleBinding")["roleRef"]["name"],
        role["metadata"]["name"]
    );
    let pod = &find(&docs, "Deployment")["spec"]["template"]["spec"];
    assert_eq!(pod["automountServiceAccountToken"], true);
    let args = pod["containers"][0]["args"].as_array().expect("args");
    assert!(
        args.iter().any(|a| a == "--resolve-secrets=true"),
        "{args:?}"
    );
    let both = render(&["resolveSecrets=true"]);
    assert_eq!(
        kinds(&both).iter().filter(|k| *k == "ClusterRole").count(),
        2
    );

    let docs = render(&["resolveConfigMaps=false"]);
    for kind in ["Role", "ClusterRole", "RoleBinding", "ClusterRoleBinding"] {
        assert!(
            !kinds(&docs).contains(&kind.to_string()),
            "renders a {kind}"
        );
    }
    assert_eq!(
        find(&docs, "ServiceAccount")["automountServiceAccountToken"],
        false
    );
    let pod = &find(&docs, "Deployment")["spec"]["template"]["spec"];
    assert_eq!(pod["automountServiceAccountToken"], false);
    let args = pod["containers"][0]["args"].as_array().expect("args");
    assert!(
        args.iter().any(|a| a == "--resolve-config-maps=false"),
        "{args:?}"
    );
    assert!(
        args.iter().any(|a| a == "--resolve-secrets=false"),
        "{args:?}"
    );
}

/// The documents of `kind` named `name`.
fn named<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {:?}", kinds(docs)))
}

#[test]
fn learned_defaults_and_the_recommend_cron_job_are_opt_in_and_reach_only_their_config_map() {
    // Off by default: no ConfigMap, no flag, no extra grants.
    let docs = render(&[]);
    assert!(!kinds(&docs).contains(&"CronJob".to_string()));
    assert!(
        !docs
            .iter()
            .any(|d| d["metadata"]["name"] == "pytune-learned")
    );
    let args =
        find(&docs, "Deployment")["spec"]["template"]["spec"]["containers"][0]["args"].to_string();
    assert!(!args.contains("--learned-defaults"), "{args}");

    let combo = learned_and_recommend(&["resolveConfigMaps=false"]);
    let docs = render(&sets(&combo));
    // The ConfigMap is created empty: the CronJob fills learned.json and Helm leaves it alone.
    let config_map = named(&docs, "ConfigMap", "pytune-learned");
    assert_eq!(config_map["metadata"]["namespace"], NAMESPACE);
    assert!(config_map.get("data").is_none(), "{config_map}");
    assert_eq!(
        config_map["metadata"]["labels"]["pytune.io/learned-defaults"],
        "true"
    );

    // The webhook: watches that ConfigMap by name, reads ReplicaSets and Jobs, and needs a token
    // even without resolveConfigMaps.
    let pod = &find(&docs, "Deployment")["spec"]["template"]["spec"];
    assert_eq!(pod["automountServiceAccountToken"], true);
    let args = pod["containers"][0]["args"].as_array().unwrap();
    assert!(
        args.iter()
            .any(|a| a == "--learned-defaults=pytune-system/pytune-learned"),
        "{args:?}"
    );
    let reader = named(&docs, "Role", "pytune-learned-reader");
    assert_eq!(
        reader["rules"],
        json!([{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["pytune-learned"], "verbs": ["get", "list", "watch"]}])
    );
    assert_eq!(
        named(&docs, "ClusterRole", "pytune-owner-reader")["rules"],
        json!([
            {"apiGroups": ["apps"], "resources": ["replicasets"], "verbs": ["get"]},
            {"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["get"]}
        ])
    );
    let account = named(&docs, "ServiceAccount", "pytune")["metadata"]["name"].clone();
    for (kind, name) in [
        ("RoleBinding", "pytune-learned-reader"),
        ("ClusterRoleBinding", "pytune-owner-reader"),
    ] {
        let binding = named(&docs, kind, name);
        assert_eq!(binding["roleRef"]["name"], name);
        assert_eq!(binding["subjects"][0]["name"], account);
    }

    // The CronJob: its own account, writing only that ConfigMap, reading Pods and their owners.
    let writer = named(&docs, "Role", "pytune-recommend-writer");
    assert_eq!(
        writer["rules"],
        json!([{"apiGroups": [""], "resources": ["configmaps"], "resourceNames": ["pytune-learned"], "verbs": ["get", "patch"]}])
    );
    let reader = named(&docs, "ClusterRole", "pytune-recommend-reader");
    assert_eq!(
        reader["rules"][0],
        json!({"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]})
    );
    let binding = named(&docs, "ClusterRoleBinding", "pytune-recommend-reader");
    assert_eq!(binding["subjects"][0]["name"], "pytune-recommend");
    assert_eq!(
        named(&docs, "RoleBinding", "pytune-recommend-writer")["subjects"][0]["name"],
        "pytune-recommend"
    );
    let cron = find(&docs, "CronJob");
    assert_eq!(cron["spec"]["concurrencyPolicy"], "Forbid");
    let job = &cron["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    assert_eq!(job["serviceAccountName"], "pytune-recommend");
    let args = strings(&job["containers"][0]["args"]);
    for expected in [
        "recommend",
        "--prometheus=http://prometheus-operated.monitoring:9090",
        "--window=7d",
        "--write-configmap=pytune-learned",
        "--configmap-namespace=pytune-system",
        "--all-namespaces",
        "--policy=/etc/pytune/policy/policy.yaml",
    ] {
        assert!(args.contains(&expected), "{expected} missing from {args:?}");
    }
    // The flags parse as `pytune recommend` reads them.
    let output = Command::new(env!("CARGO_BIN_EXE_pytune"))
        .args(&args)
        .arg("--help")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );

    // Named namespaces: a RoleBinding in each instead of the cluster-wide binding, and the
    // Prometheus token and CA mounted where the flags point.
    let combo = learned_and_recommend(&[
        "recommend.namespaces={shop,api}",
        "recommend.prometheus.bearerTokenSecret.name=prometheus-token",
        "recommend.prometheus.caConfigMap.name=prometheus-ca",
    ]);
    let docs = render(&sets(&combo));
    assert!(
        !docs.iter().any(|d| d["kind"] == "ClusterRoleBinding"
            && d["metadata"]["name"] == "pytune-recommend-reader")
    );
    let bindings: Vec<&Value> = docs
        .iter()
        .filter(|d| {
            d["kind"] == "RoleBinding" && d["metadata"]["name"] == "pytune-recommend-reader"
        })
        .map(|d| &d["metadata"]["namespace"])
        .collect();
    assert_eq!(bindings, [&json!("shop"), &json!("api")]);
    let job = &find(&docs, "CronJob")["spec"]["jobTemplate"]["spec"]["template"]["spec"];
    let args = job["containers"][0]["args"].to_string();
    for expected in [
        "--namespace=shop",
        "--namespace=api",
        "--prometheus-token-file=/etc/pytune/prometheus-token/token",
        "--prometheus-ca=/etc/pytune/prometheus-ca/ca.crt",
    ] {
        assert!(args.contains(expected), "{expected} missing from {args}");
    }
    assert!(!args.contains("--all-namespaces"), "{args}");
    let volumes = job["volumes"].to_string();
    assert!(
        volumes.contains("\"secretName\":\"prometheus-token\"")
            && volumes.contains("\"name\":\"prometheus-ca\""),
        "{volumes}"
    );

    // Without a Prometheus URL the install fails and says what to set.
    let err = helm_template(&["--set", "recommend.enabled=true"]).unwrap_err();
    assert!(
        err.contains("recommend.prometheus.url is required"),
        "{err}"
    );
}

#[test]
fn service_monitor_is_optional() {
    assert!(!kinds(&render(&[])).contains(&"ServiceMonitor".to_string()));
    let docs = render(&["serviceMonitor.enabled=true"]);
    let monitor = find(&docs, "ServiceMonitor");
    let endpoint = &monitor["spec"]["endpoints"][0];
    assert_eq!(endpoint["port"], "metrics");
    assert_eq!(endpoint["path"], "/metrics");
    let service = find(&docs, "Service");
    let metrics = service["spec"]["ports"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "metrics");
    assert_eq!(metrics.unwrap()["targetPort"], "admin");
    assert_eq!(
        monitor["spec"]["selector"]["matchLabels"],
        service["spec"]["selector"]
    );
}

fn policy_text(docs: &[Value]) -> String {
    find(docs, "ConfigMap")["data"]["policy.yaml"]
        .as_str()
        .unwrap()
        .to_string()
}

fn policy_of(docs: &[Value]) -> Value {
    serde_saphyr::from_str(&policy_text(docs)).unwrap()
}

/// Runs `pytune policy --policy FILE` over a rendered policy: the server accepts it.
fn pytune_policy(text: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.yaml");
    std::fs::write(&file, text).unwrap();
    run_ok(
        Command::new(env!("CARGO_BIN_EXE_pytune"))
            .args(["policy", "--policy"])
            .arg(&file),
        &format!("pytune policy over the rendered policy\n{text}\n"),
    )
}

#[test]
fn policy_config_map_is_the_default_policy_unless_overridden() {
    let text = policy_text(&render(&[]));
    let default = std::fs::read_to_string(root().join("policy/default.yaml")).unwrap();
    assert_eq!(text.trim_end(), default.trim_end());
    pytune_policy(&text);
}

#[test]
fn policy_values_are_merged_over_the_default_policy() {
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("values.yaml");
    std::fs::write(
        &values,
        "policy:\n  profiles:\n    web:\n      resources:\n        requests: { cpu: 500m }\n\
         \x20 sidecars: [istio-proxy, my-agent]\n  env:\n    fixed:\n      PYTHONUNBUFFERED: \"1\"\n\
         \x20   mallocArenaMax: null\n",
    )
    .unwrap();
    let docs = parse(&helm_template(&["-f", values.to_str().unwrap()]).unwrap());
    let policy = policy_of(&docs);
    let default: Value = serde_saphyr::from_str(
        &std::fs::read_to_string(root().join("policy/default.yaml")).unwrap(),
    )
    .unwrap();
    // Overridden: the knob; kept: its siblings and everything else; lists replace.
    assert_eq!(
        policy["profiles"]["web"]["resources"]["requests"]["cpu"],
        "500m"
    );
    assert_eq!(
        policy["profiles"]["web"]["resources"]["requests"]["memory"],
        default["profiles"]["web"]["resources"]["requests"]["memory"]
    );
    assert_eq!(policy["profiles"]["job"], default["profiles"]["job"]);
    assert_eq!(policy["sidecars"], json!(["istio-proxy", "my-agent"]));
    assert_eq!(policy["probes"], default["probes"]);
    assert_eq!(policy["sizing"], default["sizing"]);
    assert_eq!(policy["env"]["fixed"]["PYTHONUNBUFFERED"], "1");
    // null switches a knob off (here MALLOC_ARENA_MAX), as in a policy file.
    assert!(policy["env"]["mallocArenaMax"].is_null());
    assert!(
        policy["env"]
            .as_object()
            .unwrap()
            .contains_key("mallocArenaMax")
    );
    assert_eq!(
        policy["env"]["webConcurrency"],
        default["env"]["webConcurrency"]
    );
    assert_eq!(policy["selector"], default["selector"]);
    // And pytune itself reads it as that.
    let effective = pytune_policy(&policy_text(&docs));
    assert!(effective.contains("500m"), "{effective}");
    assert!(effective.contains("my-agent"), "{effective}");
}

#[test]
fn bad_values_fail_with_the_schema_message() {
    let cases: &[(&[&str], &str)] = &[
        (&["--set", "scope=everywhere"], "/scope"),
        (&["--set", "certificates.mode=vault"], "/certificates/mode"),
        (
            &["--set", "certificates.mode=existingSecret"],
            "/certificates/existingSecret",
        ),
        (
            &["--set", "webhook.timeoutSeconds=60"],
            "/webhook/timeoutSeconds",
        ),
        (
            &["--set", "webhook.failurePolicy=Maybe"],
            "/webhook/failurePolicy",
        ),
        (&["--set", "replicaCount=0"], "/replicaCount"),
        (&["--set", "policy.profile.web.cpu=1"], "/policy"),
        (&["--set", "scopes=cluster"], "scopes"),
        (
            &["--set", "recommend.prometheus.url=prometheus:9090"],
            "/recommend/prometheus/url",
        ),
        (&["--set", "recommend.window=week"], "/recommend/window"),
    ];
    for (args, field) in cases {
        let err = helm_template(args).expect_err(&format!("{args:?} must fail"));
        assert!(
            err.contains("values don't meet the specifications of the schema")
                && err.contains(field),
            "{args:?}: {err}"
        );
    }
    let err = helm_template(&["--set", "scope=everywhere"]).unwrap_err();
    assert!(
        err.contains("value must be one of 'namespaces', 'cluster'"),
        "{err}"
    );
}

#[test]
fn rendered_objects_pass_kubernetes_schema_validation() {
    let validate = tool("PYTUNE_KUBERNETES_VALIDATE", "kubernetes-validate");
    // CRD kinds have no schema in kubernetes-validate: checked by the assertions above instead.
    let crds = ["Certificate", "Issuer", "ServiceMonitor", "PrometheusRule"];
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (i, combo) in combinations().iter().enumerate() {
        for (j, doc) in render(&sets(combo)).iter().enumerate() {
            if crds.contains(&doc["kind"].as_str().unwrap()) {
                continue;
            }
            let file = dir.path().join(format!(
                "{i:02}-{j:02}-{}.json",
                doc["kind"].as_str().unwrap()
            ));
            std::fs::write(&file, serde_json::to_vec_pretty(doc).unwrap()).unwrap();
            files.push(file);
        }
    }
    let output = Command::new(validate)
        .args(["--strict", "--quiet", "-k", KUBE_VERSION])
        .args(&files)
        .output()
        .expect("kubernetes-validate runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && !stdout.contains("ERROR") && !stderr.contains("ERROR"),
        "kubernetes-validate --strict -k {KUBE_VERSION} failed:\n{stdout}{stderr}"
    );
}

fn openssl_verify(dir: &Path) {
    run_ok(
        Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(dir.join("ca.crt"))
            .arg(dir.join("tls.crt")),
        "openssl verify",
    );
}

/// "DNS:a, DNS:b, IP Address:127.0.0.1," — each entry followed by a comma.
fn subject_alt_names(cert: &Path) -> String {
    let text = run_ok(
        Command::new("openssl")
            .args(["x509", "-noout", "-ext", "subjectAltName", "-in"])
            .arg(cert),
        "openssl x509",
    );
    let line = text.lines().nth(1).unwrap_or_default().trim().to_string();
    format!("{line},")
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn ready(admin: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", admin)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    let request = "GET /readyz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut response = String::new();
    let _ = stream.read_to_string(&mut response);
    response.starts_with("HTTP/1.1 200")
}

/// `pytune serve` arguments for DIR's tls.crt/tls.key; `{port}` and `{admin}` stand for the ports.
fn plain_serve_args(dir: &Path) -> Vec<String> {
    vec![
        "serve".into(),
        "--listen=127.0.0.1:{port}".into(),
        "--admin-listen=127.0.0.1:{admin}".into(),
        format!("--tls-cert={}", dir.join("tls.crt").display()),
        format!("--tls-key={}", dir.join("tls.key").display()),
    ]
}

/// Starts `pytune serve` with `args` and checks a TLS handshake that trusts only DIR's ca.crt, for
/// `hostname` (or for the IP 127.0.0.1).
fn serve_and_handshake(dir: &Path, hostname: Option<&str>, args: &[String]) {
    let (port, admin) = (free_port(), free_port());
    let args: Vec<String> = args
        .iter()
        .map(|a| {
            a.replace("{port}", &port.to_string())
                .replace("{admin}", &admin.to_string())
        })
        .collect();
    let mut server = Server(
        Command::new(env!("CARGO_BIN_EXE_pytune"))
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("pytune serve starts"),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while !ready(admin) {
        if let Ok(Some(status)) = server.0.try_wait() {
            let mut err = String::new();
            server
                .0
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("pytune serve {args:?} exited ({status}):\n{err}");
        }
        assert!(
            Instant::now() < deadline,
            "pytune serve not ready within 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let mut client = Command::new("openssl");
    client
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            "-verify_return_error",
            "-CAfile",
        ])
        .arg(dir.join("ca.crt"));
    match hostname {
        Some(name) => client.args(["-servername", name, "-verify_hostname", name]),
        None => client.args(["-verify_ip", "127.0.0.1"]),
    };
    let output = client.stdin(Stdio::null()).output().expect("openssl runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && stdout.contains("Verify return code: 0 (ok)"),
        "TLS handshake with pytune serve failed:\n{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn make_certs_script_makes_a_serving_certificate_pytune_serves() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("certs");
    // stdout is the caBundle: ca.crt in base64 on one line.
    let bundle = run_ok(
        Command::new(root().join("certs/make-certs"))
            .args(["-s", "pytune", "-n", "team-a", "-d", "30"])
            .arg(&out),
        "certs/make-certs",
    );
    assert_eq!(bundle.trim().lines().count(), 1);
    assert_eq!(
        decode(&json!(bundle.trim())),
        std::fs::read(out.join("ca.crt")).unwrap()
    );
    assert_eq!(
        std::fs::read_to_string(out.join("ca.bundle")).unwrap(),
        bundle.trim()
    );

    openssl_verify(&out);
    let sans = subject_alt_names(&out.join("tls.crt"));
    for name in [
        "DNS:pytune,",
        "DNS:pytune.team-a,",
        "DNS:pytune.team-a.svc,",
        "DNS:pytune.team-a.svc.cluster.local,",
        "DNS:localhost,",
        "IP Address:127.0.0.1,",
    ] {
        assert!(sans.contains(name), "{name} not in {sans}");
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for key in ["ca.key", "tls.key"] {
            let mode = std::fs::metadata(out.join(key))
                .unwrap()
                .permissions()
                .mode()
                & 0o777;
            assert_eq!(mode, 0o600, "{key}");
        }
    }

    serve_and_handshake(&out, None, &plain_serve_args(&out));
    serve_and_handshake(&out, Some("pytune.team-a.svc"), &plain_serve_args(&out));

    // It never overwrites a key, and says why.
    let again = Command::new(root().join("certs/make-certs"))
        .arg(&out)
        .output()
        .unwrap();
    assert!(!again.status.success());
    assert!(String::from_utf8_lossy(&again.stderr).contains("exists"));
    // Bad names are refused before anything is written.
    let bad = Command::new(root().join("certs/make-certs"))
        .args(["-s", "Not_A_Name"])
        .arg(dir.path().join("other"))
        .output()
        .unwrap();
    assert!(!bad.status.success());
    assert!(!dir.path().join("other").exists());
}

const SCRIPTS: [&str; 10] = [
    "certs/make-certs",
    "scripts/install-helm",
    "scripts/python-env",
    "scripts/test",
    ".ci/run",
    "tests/e2e/run.sh",
    "benches/instructions.sh",
    "benches/load.sh",
    "benches/server-instructions.sh",
    "benches/server-setup.sh",
];

#[test]
fn e2e_suite_says_it_is_skipped_without_a_cluster() {
    let stdout = run_ok(
        Command::new(root().join("tests/e2e/run.sh")).env_remove("KUBECONFIG"),
        "tests/e2e/run.sh",
    );
    assert!(
        stdout.contains("e2e: skipped") && stdout.contains("KUBECONFIG"),
        "{stdout}"
    );
}

#[test]
fn shell_scripts_parse_and_pass_shellcheck_when_installed() {
    for script in SCRIPTS {
        let status = Command::new("bash")
            .arg("-n")
            .arg(root().join(script))
            .status()
            .unwrap();
        assert!(status.success(), "bash -n {script}");
    }
    match Command::new("shellcheck").arg("--version").output() {
        Ok(output) if output.status.success() => {
            let output = Command::new("shellcheck")
                .args(SCRIPTS)
                .current_dir(root())
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "shellcheck:\n{}",
                String::from_utf8_lossy(&output.stdout)
            );
        }
        _ => eprintln!("shellcheck is not installed: only bash -n was checked"),
    }
}

/// A label selector's `matchExpressions` (and `matchLabels`) evaluated as the API server does.
fn selects(selector: &Value, labels: &serde_json::Map<String, Value>) -> bool {
    let labels_match = selector
        .get("matchLabels")
        .and_then(Value::as_object)
        .is_none_or(|wanted| wanted.iter().all(|(k, v)| labels.get(k) == Some(v)));
    let empty = Vec::new();
    let exprs = selector
        .get("matchExpressions")
        .and_then(Value::as_array)
        .unwrap_or(&empty);
    labels_match
        && exprs.iter().all(|e| {
            let value = labels.get(e["key"].as_str().unwrap());
            let values = e.get("values").and_then(Value::as_array).unwrap_or(&empty);
            match e["operator"].as_str().unwrap() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                other => panic!("unknown operator {other}"),
            }
        })
}

/// Which webhook paths a Python Pod in a namespace with these labels is sent to.
fn routes(hooks: &[Value], name: &str, labels: &[(&str, &str)]) -> Vec<String> {
    let mut map = serde_json::Map::new();
    map.insert("kubernetes.io/metadata.name".into(), json!(name));
    for (k, v) in labels {
        map.insert((*k).into(), json!(v));
    }
    let pod_labels = json!({"pytune.io/runtime": "python"})
        .as_object()
        .unwrap()
        .clone();
    hooks
        .iter()
        .filter(|hook| selects(&hook["namespaceSelector"], &map))
        .filter(|hook| selects(&hook["objectSelector"], &pod_labels))
        .map(|hook| {
            hook["clientConfig"]["service"]["path"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

#[test]
fn each_namespace_reaches_at_most_one_path() {
    let namespaces: &[(&str, &[(&str, &str)])] = &[
        ("kube-system", &[("pytune.io/enabled", "true")]),
        ("kube-public", &[]),
        ("kube-node-lease", &[]),
        (NAMESPACE, &[("pytune.io/enabled", "true")]),
        ("plain", &[]),
        ("opted-in", &[("pytune.io/enabled", "true")]),
        ("opted-out", &[("pytune.io/enabled", "false")]),
        ("audit", &[("pytune.io/mode", "audit")]),
        (
            "audit-and-in",
            &[("pytune.io/mode", "audit"), ("pytune.io/enabled", "true")],
        ),
        (
            "audit-but-out",
            &[("pytune.io/mode", "audit"), ("pytune.io/enabled", "false")],
        ),
        (
            "mode-other",
            &[("pytune.io/mode", "enforce"), ("pytune.io/enabled", "true")],
        ),
    ];
    let expected_namespaces = [
        vec![],
        vec![],
        vec![],
        vec![],
        vec![],
        vec!["/mutate"],
        vec![],
        vec!["/audit"],
        vec!["/audit"],
        vec![],
        vec!["/mutate"],
    ];
    let expected_cluster = [
        vec![],
        vec![],
        vec![],
        vec![],
        vec!["/mutate"],
        vec!["/mutate"],
        vec![],
        vec!["/audit"],
        vec!["/audit"],
        vec![],
        vec!["/mutate"],
    ];
    for (scope, expected) in [
        ("namespaces", expected_namespaces),
        ("cluster", expected_cluster),
    ] {
        let hooks = webhooks(&render(&[&format!("scope={scope}")]));
        for ((name, labels), want) in namespaces.iter().zip(expected.iter()) {
            assert_eq!(
                &routes(&hooks, name, labels),
                want,
                "scope {scope}, namespace {name} {labels:?}"
            );
        }
        // Without the audit entry, audit namespaces are handled like any other.
        let hooks = webhooks(&render(&[&format!("scope={scope}"), "webhook.audit=false"]));
        let want: Vec<String> = if scope == "cluster" {
            vec!["/mutate".into()]
        } else {
            vec![]
        };
        assert_eq!(
            routes(&hooks, "audit", &[("pytune.io/mode", "audit")]),
            want,
            "{scope}"
        );
    }
}

#[test]
fn notes_tell_how_to_opt_in_and_see_what_pytune_did() {
    for (scope, opt) in [
        ("namespaces", "pytune.io/enabled=true"),
        ("cluster", "pytune.io/enabled=false"),
    ] {
        let stdout = run_ok(
            Command::new(helm())
                .args(["install", RELEASE])
                .arg(chart())
                .args(["--dry-run=client", "--namespace", NAMESPACE])
                .args(["--set", &format!("scope={scope}")]),
            "helm install --dry-run",
        );
        let notes = &stdout[stdout.find("NOTES:").expect("NOTES rendered")..];
        for needle in [
            opt,
            "pytune.io/mode=audit",
            "pytune.io/injected",
            "/metrics",
            "--dry-run=server",
        ] {
            assert!(
                notes.contains(needle),
                "{scope}: {needle} missing from\n{notes}"
            );
        }
    }
}

#[test]
fn notes_say_where_learned_defaults_live_and_how_to_refresh_them() {
    let mut args = vec![
        "install".to_string(),
        RELEASE.to_string(),
        chart().display().to_string(),
        "--dry-run=client".to_string(),
        "--namespace".to_string(),
        NAMESPACE.to_string(),
    ];
    for set in learned_and_recommend(&[]) {
        args.extend(["--set".to_string(), set]);
    }
    let stdout = run_ok(Command::new(helm()).args(&args), "helm install --dry-run");
    let notes = &stdout[stdout.find("NOTES:").expect("NOTES rendered")..];
    for needle in [
        "ConfigMap pytune-system/pytune-learned",
        "create job --from=cronjob/pytune-recommend",
        "get configmap pytune-learned -o jsonpath='{.data.learned\\.json}'",
    ] {
        assert!(notes.contains(needle), "{needle} missing from\n{notes}");
    }
    let plain = run_ok(
        Command::new(helm())
            .args(["install", RELEASE])
            .arg(chart())
            .args(["--dry-run=client", "--namespace", NAMESPACE]),
        "helm install --dry-run",
    );
    let notes = &plain[plain.find("NOTES:").expect("NOTES rendered")..];
    assert!(
        !notes.contains("Learned defaults"),
        "off by default:\n{notes}"
    );
}

// Dashboards and alert rules (grafanaDashboard, prometheusRule).

/// The metrics the dashboard and the alert rules may read: pytune's own (docs/operations.md,
/// "Metrics"), cAdvisor's and kube-state-metrics' that `pytune recommend` reads (docs/recommend.md),
/// kube-state-metrics' Pod labels and owners, the API server's admission webhook counters
/// (k8s.io/apiserver pkg/admission/metrics) and Prometheus's `up`.
const KNOWN_METRICS: [&str; 20] = [
    "pytune_admission_requests_total",
    "pytune_admission_duration_seconds_bucket",
    "pytune_changes_total",
    "pytune_reloads_total",
    "pytune_task_failures_total",
    "pytune_certificate_expiry_timestamp_seconds",
    "pytune_learned_generated_timestamp_seconds",
    "container_cpu_usage_seconds_total",
    "container_memory_working_set_bytes",
    "container_cpu_cfs_periods_total",
    "container_cpu_cfs_throttled_periods_total",
    "kube_pod_container_resource_requests",
    "kube_pod_container_resource_limits",
    "kube_pod_container_status_last_terminated_reason",
    "kube_pod_labels",
    "kube_pod_owner",
    "kube_replicaset_owner",
    "apiserver_admission_webhook_fail_open_count",
    "apiserver_admission_webhook_rejection_count",
    "up",
];

/// Index of the character closing the one at `open` (`{`, `[` or `(`), skipping string literals.
fn skip_group(chars: &[char], open: usize) -> usize {
    let close = match chars[open] {
        '{' => '}',
        '[' => ']',
        _ => ')',
    };
    let mut i = open + 1;
    while i < chars.len() && chars[i] != close {
        if matches!(chars[i], '"' | '\'' | '`') {
            i = skip_string(chars, i);
        }
        i += 1;
    }
    i
}

/// Index of the quote closing the string literal that starts at `start`.
fn skip_string(chars: &[char], start: usize) -> usize {
    let quote = chars[start];
    let mut i = start + 1;
    while i < chars.len() && chars[i] != quote {
        if chars[i] == '\\' && quote != '`' {
            i += 1;
        }
        i += 1;
    }
    i
}

/// The metric names a PromQL expression reads: identifiers outside string literals, label
/// matchers, ranges and label lists that are neither functions, aggregations nor keywords.
fn promql_metric_names(expr: &str) -> Vec<String> {
    const LABEL_LISTS: [&str; 6] = [
        "by",
        "without",
        "on",
        "ignoring",
        "group_left",
        "group_right",
    ];
    const KEYWORDS: [&str; 21] = [
        "and",
        "or",
        "unless",
        "bool",
        "offset",
        "inf",
        "nan",
        "sum",
        "min",
        "max",
        "avg",
        "group",
        "stddev",
        "stdvar",
        "count",
        "count_values",
        "bottomk",
        "topk",
        "quantile",
        "limitk",
        "limit_ratio",
    ];
    let chars: Vec<char> = expr.chars().collect();
    let next_non_space = |mut i: usize| {
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        i
    };
    let mut names = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if matches!(c, '"' | '\'' | '`') {
            i = skip_string(&chars, i) + 1;
        } else if c == '{' || c == '[' {
            i = skip_group(&chars, i) + 1;
        } else if c == '$' || c.is_ascii_digit() {
            // A Grafana variable or a number.
            i += 1;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_.".contains(chars[i])) {
                i += 1;
            }
        } else if c.is_ascii_alphabetic() || c == '_' || c == ':' {
            let start = i;
            while i < chars.len() && (chars[i].is_ascii_alphanumeric() || "_:".contains(chars[i])) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let after = next_non_space(i);
            if LABEL_LISTS.contains(&word.as_str()) {
                if chars.get(after) == Some(&'(') {
                    i = skip_group(&chars, after) + 1;
                }
            } else if !(KEYWORDS.contains(&word.as_str()) || chars.get(after) == Some(&'(')) {
                names.push(word);
            }
        } else {
            i += 1;
        }
    }
    names
}

#[test]
fn promql_metric_names_skips_functions_labels_and_strings() {
    let expr = r#"sum by (pod, container) (rate(container_cpu_usage_seconds_total{pod=~"$pod", a="x{2}"}[$__rate_interval])) / on (pod) group_left() max by (pod) (kube_pod_labels) * 1e3 or vector(0) > bool 0.5 unless label_replace(up, "w", "$1", "pod", "(.*)")"#;
    assert_eq!(
        promql_metric_names(expr),
        vec!["container_cpu_usage_seconds_total", "kube_pod_labels", "up"]
    );
}

/// The PromQL in a dashboard: every panel target's `expr` and the query inside each query
/// variable (`label_values(SELECTOR, label)`, `query_result(EXPR)`), with where it is.
fn dashboard_queries(dashboard: &Value) -> Vec<(String, String)> {
    let mut queries = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        for target in panel["targets"].as_array().into_iter().flatten() {
            queries.push((
                format!("panel {}", panel["title"]),
                target["expr"].as_str().unwrap().to_string(),
            ));
        }
    }
    for var in dashboard["templating"]["list"].as_array().unwrap() {
        if var["type"] != "query" {
            continue;
        }
        let query = var["query"]["query"].as_str().unwrap();
        let inner = if let Some(rest) = query.strip_prefix("label_values(") {
            rest.strip_suffix(')').unwrap().rsplit_once(',').unwrap().0
        } else {
            query
                .strip_prefix("query_result(")
                .and_then(|rest| rest.strip_suffix(')'))
                .unwrap_or_else(|| panic!("variable query {query}"))
        };
        queries.push((
            format!("variable {}", var["name"].as_str().unwrap()),
            inner.to_string(),
        ));
    }
    queries
}

/// Grafana's variables replaced with values Prometheus accepts.
fn substitute_variables(expr: &str) -> String {
    expr.replace("$__rate_interval", "5m")
        .replace("$window", "7d")
        .replace("$namespace", "shop")
        .replace("$workload", "web")
        .replace("$pod", "web-.*")
        .replace("$job", "pytune")
}

fn find_all<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|doc| doc["kind"] == kind).collect()
}

fn dashboard_config_maps(docs: &[Value]) -> Vec<&Value> {
    find_all(docs, "ConfigMap")
        .into_iter()
        .filter(|cm| cm["data"].get("pytune.json").is_some())
        .collect()
}

fn dashboard_of(docs: &[Value]) -> Value {
    let maps = dashboard_config_maps(docs);
    assert_eq!(maps.len(), 1, "one dashboard ConfigMap");
    serde_json::from_str(maps[0]["data"]["pytune.json"].as_str().unwrap())
        .expect("the dashboard is JSON")
}

#[test]
fn dashboard_and_alert_rules_are_off_by_default() {
    let docs = render(&[]);
    assert!(dashboard_config_maps(&docs).is_empty());
    assert!(!kinds(&docs).contains(&"PrometheusRule".to_string()));
    assert_eq!(find_all(&docs, "ConfigMap").len(), 1, "the policy only");
}

#[test]
fn grafana_dashboard_config_map_carries_the_sidecar_label() {
    let docs = render(&["grafanaDashboard.enabled=true"]);
    let maps = dashboard_config_maps(&docs);
    assert_eq!(maps.len(), 1);
    let meta = &maps[0]["metadata"];
    assert_eq!(meta["name"], format!("{RELEASE}-dashboard"));
    assert_eq!(meta["namespace"], NAMESPACE);
    assert_eq!(meta["labels"]["grafana_dashboard"], "1");
    assert!(meta.get("annotations").is_none());
    // The policy ConfigMap is still the one the Deployment mounts.
    assert_eq!(find_all(&docs, "ConfigMap").len(), 2);

    let dashboard = dashboard_of(&docs);
    assert_eq!(dashboard["uid"], "pytune");
    assert!(dashboard["schemaVersion"].as_i64().unwrap() >= 39);
    let vars: Vec<&str> = dashboard["templating"]["list"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    for var in [
        "datasource",
        "job",
        "namespace",
        "workload",
        "pod",
        "window",
    ] {
        assert!(vars.contains(&var), "variable {var} missing from {vars:?}");
    }
    let datasource = &dashboard["templating"]["list"][0];
    assert_eq!(
        (&datasource["type"], &datasource["query"]),
        (&json!("datasource"), &json!("prometheus"))
    );

    // Every panel has a unique id, reads from the variable's data source and queries only
    // metrics pytune or the documented exporters publish.
    let mut ids = Vec::new();
    for panel in dashboard["panels"].as_array().unwrap() {
        ids.push(panel["id"].as_i64().unwrap());
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{panel}");
        assert!(
            panel["description"].as_str().is_some_and(|d| !d.is_empty()),
            "panel {} has no description",
            panel["title"]
        );
        assert!(!panel["targets"].as_array().unwrap().is_empty());
    }
    let count = ids.len();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), count, "panel ids are unique");
    let mut seen = std::collections::BTreeSet::new();
    for (place, expr) in dashboard_queries(&dashboard) {
        let names = promql_metric_names(&expr);
        assert!(!names.is_empty(), "{place}: no metric in {expr}");
        for name in names {
            assert!(
                KNOWN_METRICS.contains(&name.as_str()),
                "{place} reads {name}, which neither pytune nor the documented exporters publish: {expr}"
            );
            seen.insert(name);
        }
    }
    for needed in [
        "pytune_admission_requests_total",
        "pytune_admission_duration_seconds_bucket",
        "pytune_changes_total",
        "pytune_reloads_total",
        "pytune_task_failures_total",
        "pytune_certificate_expiry_timestamp_seconds",
        "container_cpu_usage_seconds_total",
        "container_memory_working_set_bytes",
        "container_cpu_cfs_throttled_periods_total",
        "kube_pod_container_resource_requests",
        "kube_pod_container_resource_limits",
        "kube_pod_container_status_last_terminated_reason",
        "apiserver_admission_webhook_fail_open_count",
    ] {
        assert!(seen.contains(needed), "no panel shows {needed}");
    }

    // Python Pods are those with the selector label, as kube-state-metrics names it.
    let text = maps[0]["data"]["pytune.json"].as_str().unwrap();
    assert!(text.contains(r#"kube_pod_labels{label_pytune_io_runtime=\"python\"}"#));
    let docs = render(&[
        "grafanaDashboard.enabled=true",
        "selector.label=example.com/lang",
        "selector.value=py",
        "grafanaDashboard.label=dashboards",
        "grafanaDashboard.labelValue=pytune",
        "grafanaDashboard.namespace=monitoring",
        "grafanaDashboard.annotations.grafana_folder=Platform",
    ]);
    let map = dashboard_config_maps(&docs)[0];
    assert_eq!(map["metadata"]["namespace"], "monitoring");
    assert_eq!(map["metadata"]["labels"]["dashboards"], "pytune");
    assert!(map["metadata"]["labels"].get("grafana_dashboard").is_none());
    assert_eq!(
        map["metadata"]["annotations"],
        json!({"grafana_folder": "Platform"})
    );
    let text = map["data"]["pytune.json"].as_str().unwrap();
    assert!(!text.contains("label_pytune_io_runtime"), "{text}");
    assert!(text.contains(r#"label_example_com_lang=\"py\""#));
    dashboard_of(&docs);
}

/// promtool: from `PYTUNE_PROMTOOL`, else `PATH`. `None` (skip, with a notice) outside CI; with
/// `CI=true` its absence fails the test, as in tests/recommend.rs.
fn promtool(test: &str) -> Option<PathBuf> {
    let found = match std::env::var_os("PYTUNE_PROMTOOL") {
        Some(path) => Some(PathBuf::from(path)).filter(|p| p.is_file()),
        None => std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|dir| dir.join("promtool"))
                .find(|p| p.is_file())
        }),
    };
    match found {
        Some(path) => Some(path),
        None if std::env::var("CI").as_deref() == Ok("true") => panic!(
            "promtool is needed (apt-get install prometheus, as .ci/run does), \
             or set PYTUNE_PROMTOOL to it"
        ),
        None => {
            println!(
                "{test}: skipped — promtool not found (apt-get install prometheus, \
                 or set PYTUNE_PROMTOOL)"
            );
            None
        }
    }
}

#[test]
fn dashboard_queries_are_promql_and_find_python_workloads() {
    let Some(promtool) = promtool("dashboard_queries_are_promql_and_find_python_workloads") else {
        return;
    };
    let dashboard = dashboard_of(&render(&["grafanaDashboard.enabled=true"]));
    let queries = dashboard_queries(&dashboard);
    // Each query as a recording rule: `promtool check rules` parses them (JSON is YAML).
    let rules: Vec<Value> = queries
        .iter()
        .enumerate()
        .map(|(i, (_, expr))| json!({"record": format!("dashboard:query_{i}"), "expr": substitute_variables(expr)}))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("dashboard-queries.yaml");
    std::fs::write(
        &file,
        serde_json::to_vec_pretty(&json!({"groups": [{"name": "dashboard", "rules": rules}]}))
            .unwrap(),
    )
    .unwrap();
    run_ok(
        Command::new(&promtool).arg("check").arg("rules").arg(&file),
        &format!("promtool check rules over the dashboard's queries {queries:#?}"),
    );

    // The workload and pod variables over kube-state-metrics series: a Deployment's Pods from two
    // ReplicaSets are one workload, a StatefulSet's and a bare Pod's are theirs; Pods without the
    // selector label are left out.
    let var = |name: &str| {
        let (_, expr) = queries
            .iter()
            .find(|(place, _)| place == &format!("variable {name}"))
            .unwrap();
        substitute_variables(expr)
    };
    let mut series = Vec::new();
    let owner = |pod: &str, kind: &str, name: &str| {
        format!(
            r#"kube_pod_owner{{namespace="shop",pod="{pod}",owner_kind="{kind}",owner_name="{name}",owner_is_controller="true"}}"#
        )
    };
    let rs_owner = |rs: &str, name: &str| {
        format!(
            r#"kube_replicaset_owner{{namespace="shop",replicaset="{rs}",owner_kind="Deployment",owner_name="{name}",owner_is_controller="true"}}"#
        )
    };
    series.push(owner("web-1-a", "ReplicaSet", "web-1"));
    series.push(owner("web-2-b", "ReplicaSet", "web-2"));
    series.push(rs_owner("web-1", "web"));
    series.push(rs_owner("web-2", "web"));
    series.push(owner("db-0", "StatefulSet", "db"));
    series.push(owner("bare", "<none>", "<none>"));
    series.push(owner("go-1-a", "ReplicaSet", "go-1"));
    series.push(rs_owner("go-1", "go"));
    for pod in ["web-1-a", "web-2-b", "db-0", "bare"] {
        series.push(format!(
            r#"kube_pod_labels{{namespace="shop",pod="{pod}",label_pytune_io_runtime="python"}}"#
        ));
    }
    series.push(r#"kube_pod_labels{namespace="shop",pod="go-1-a"}"#.to_string());
    let test = json!({
        "rule_files": [],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": series.iter().map(|s| json!({"series": s, "values": "1x5"})).collect::<Vec<_>>(),
            "promql_expr_test": [
                {"expr": var("workload"), "eval_time": "2m", "exp_samples": [
                    {"labels": r#"{workload="web"}"#, "value": 1},
                    {"labels": r#"{workload="db"}"#, "value": 1},
                    {"labels": r#"{workload="bare"}"#, "value": 1},
                ]},
                {"expr": var("pod"), "eval_time": "2m", "exp_samples": [
                    {"labels": r#"{pod="web-1-a"}"#, "value": 1},
                    {"labels": r#"{pod="web-2-b"}"#, "value": 1},
                ]},
            ],
        }],
    });
    let file = dir.path().join("variables.test.yaml");
    std::fs::write(&file, serde_json::to_vec_pretty(&test).unwrap()).unwrap();
    run_ok(
        Command::new(&promtool).arg("test").arg("rules").arg(&file),
        "promtool test rules over the dashboard's workload and pod variables",
    );
}

/// GitHub's anchors of the headings of a Markdown file.
fn heading_anchors(markdown: &str) -> Vec<String> {
    markdown
        .lines()
        .filter_map(|line| line.strip_prefix('#'))
        .map(|heading| {
            heading
                .trim_start_matches('#')
                .trim()
                .to_lowercase()
                .chars()
                .filter_map(|c| match c {
                    ' ' => Some('-'),
                    c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
                    _ => None,
                })
                .collect()
        })
        .collect()
}

#[test]
fn prometheus_rule_alerts_are_documented_and_configurable() {
    let docs = render(&["prometheusRule.enabled=true"]);
    let rule = find(&docs, "PrometheusRule");
    assert_eq!(rule["apiVersion"], "monitoring.coreos.com/v1");
    assert_eq!(rule["metadata"]["namespace"], NAMESPACE);
    let rules = rule["spec"]["groups"][0]["rules"].as_array().unwrap();
    let mut alerts: Vec<&str> = rules.iter().map(|r| r["alert"].as_str().unwrap()).collect();
    alerts.dedup();
    assert_eq!(
        alerts,
        [
            "PytuneWebhookErrors",
            "PytuneWebhookDown",
            "PytuneWebhookFailingOpen",
            "PytuneWebhookCallsRejected",
            "PytuneCertificateExpiring",
            "PytuneReloadFailing",
            "PytuneTaskFailed",
            "PytuneLearnedDefaultsStale",
            "PytuneHighLatency",
        ]
    );
    let operations = std::fs::read_to_string(root().join("docs/operations.md")).unwrap();
    let anchors = heading_anchors(&operations);
    for r in rules {
        let expr = r["expr"].as_str().unwrap();
        for name in promql_metric_names(expr) {
            assert!(
                KNOWN_METRICS.contains(&name.as_str()),
                "{} reads {name}",
                r["alert"]
            );
        }
        assert!(
            ["warning", "critical"].contains(&r["labels"]["severity"].as_str().unwrap()),
            "{r}"
        );
        for key in ["summary", "description", "runbook_url"] {
            assert!(
                r["annotations"][key]
                    .as_str()
                    .is_some_and(|s| !s.is_empty()),
                "{}: no {key}",
                r["alert"]
            );
        }
        let url = r["annotations"]["runbook_url"].as_str().unwrap();
        let (base, anchor) = url.split_once('#').unwrap();
        assert_eq!(base, "docs/operations.md");
        assert!(
            anchors.iter().any(|a| a == anchor),
            "{url}: no such section in docs/operations.md"
        );
        // This release's metrics only (the API server's carry the webhooks' names instead).
        assert!(
            expr.contains(r#"job="pytune",namespace="pytune-system""#)
                || expr.contains(r#"name=~"mutate\\.pytune\\.io|audit\\.pytune\\.io""#),
            "{expr}"
        );
    }

    // Thresholds are numbers: `--set` would pass 0.2 as a string, so a values file sets them.
    let dir = tempfile::tempdir().unwrap();
    let values = dir.path().join("values.yaml");
    std::fs::write(
        &values,
        "prometheusRule:\n  enabled: true\n  labels: { release: prometheus }\n\
         \x20 additionalLabels: { team: platform }\n  errorRateThreshold: 0.2\n\
         \x20 certificateWarningDays: 30\n  highLatencySeconds: 1\n\
         \x20 metricSelector: service=\"pytune\"\n\
         \x20 runbookBaseUrl: https://docs.example.com/pytune/operations\n\
         webhook:\n  failurePolicy: Fail\n",
    )
    .unwrap();
    let docs = parse(&helm_template(&["-f", values.to_str().unwrap()]).unwrap());
    let rule = find(&docs, "PrometheusRule");
    assert_eq!(rule["metadata"]["labels"]["release"], "prometheus");
    let rules = rule["spec"]["groups"][0]["rules"].as_array().unwrap();
    let by_name = |name: &str| rules.iter().find(|r| r["alert"] == name).unwrap();
    assert!(
        by_name("PytuneWebhookErrors")["expr"]
            .as_str()
            .unwrap()
            .contains("> 0.2")
    );
    assert!(
        by_name("PytuneCertificateExpiring")["expr"]
            .as_str()
            .unwrap()
            .contains("< 30")
    );
    assert!(
        by_name("PytuneHighLatency")["expr"]
            .as_str()
            .unwrap()
            .contains("> 1")
    );
    assert!(
        by_name("PytuneWebhookDown")["expr"]
            .as_str()
            .unwrap()
            .contains(r#"up{service="pytune"}"#)
    );
    assert_eq!(
        by_name("PytuneWebhookDown")["labels"]["severity"],
        "critical",
        "with failurePolicy Fail no Pod is created while pytune is down"
    );
    for r in rules {
        assert_eq!(r["labels"]["team"], "platform");
        assert!(
            r["annotations"]["runbook_url"]
                .as_str()
                .unwrap()
                .starts_with("https://docs.example.com/pytune/operations#pytune")
        );
    }

    // Thresholds outside what the metrics can show are refused.
    for (set, field) in [
        (
            "prometheusRule.highLatencySeconds=5",
            "/prometheusRule/highLatencySeconds",
        ),
        (
            "prometheusRule.errorRateThreshold=0",
            "/prometheusRule/errorRateThreshold",
        ),
        ("grafanaDashboard.label=", "/grafanaDashboard/label"),
    ] {
        let err = helm_template(&["--set", set]).expect_err(set);
        assert!(err.contains(field), "{set}: {err}");
    }
}

#[test]
fn prometheus_rule_passes_promtool_check_and_unit_tests() {
    let Some(promtool) = promtool("prometheus_rule_passes_promtool_check_and_unit_tests") else {
        return;
    };
    let docs = render(&["prometheusRule.enabled=true"]);
    let spec = &find(&docs, "PrometheusRule")["spec"];
    let dir = tempfile::tempdir().unwrap();
    // The spec of a PrometheusRule is a Prometheus rules file (JSON is YAML).
    std::fs::write(
        dir.path().join("rules.yaml"),
        serde_json::to_vec_pretty(spec).unwrap(),
    )
    .unwrap();
    run_ok(
        Command::new(&promtool)
            .args(["check", "rules", "rules.yaml"])
            .current_dir(dir.path()),
        "promtool check rules over the PrometheusRule's spec",
    );
    // Input series → expected alerts: review errors, certificate expiry, failing open, a stopped
    // task, pytune down (tests/fixtures/alerts/pytune-rules.test.yaml).
    std::fs::copy(
        root().join("tests/fixtures/alerts/pytune-rules.test.yaml"),
        dir.path().join("pytune-rules.test.yaml"),
    )
    .unwrap();
    run_ok(
        Command::new(&promtool)
            .args(["test", "rules", "pytune-rules.test.yaml"])
            .current_dir(dir.path()),
        "promtool test rules tests/fixtures/alerts/pytune-rules.test.yaml",
    );
}
