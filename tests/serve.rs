//! The webhook over real sockets: TLS with a per-test CA, HTTP/1.1 and HTTP/2, reloads, shutdown.

mod common;

use std::time::Duration;

use common::*;
use http_body_util::BodyExt;
use hyper::body::{Bytes, Frame};
use hyper::{StatusCode, Version};
use rustls::pki_types::pem::PemObject;
use serde_json::Value;

const H1: &[&[u8]] = &[b"http/1.1"];
const H2: &[&[u8]] = &[b"h2"];
const BOTH: &[&[u8]] = &[b"h2", b"http/1.1"];
const UID: &str = "936b7fbd-aa7f-4c7b-9350-aaf4d8e29331";

fn create_review() -> Value {
    labeled(fixture("pod-create-review.json"))
}

#[tokio::test]
async fn enforce_patches_over_http1_and_http2() {
    let server = TestServer::start().await;
    let review = create_review();
    let expected = expected_pod(&review);
    for (alpn, version) in [
        (H1, Version::HTTP_11),
        (H2, Version::HTTP_2),
        (BOTH, Version::HTTP_2),
    ] {
        let mut client = server.connect(alpn).await;
        assert_eq!(client.is_h2(), version == Version::HTTP_2);
        // Several reviews on one connection: keep-alive (HTTP/1.1) and streams (HTTP/2).
        for _ in 0..3 {
            let reply = client.post("/mutate?timeout=10s", bytes(&review)).await;
            assert_eq!(reply.status, StatusCode::OK);
            assert_eq!(reply.version, version);
            let json = reply.json();
            assert_eq!(json["apiVersion"], "admission.k8s.io/v1");
            assert_eq!(json["kind"], "AdmissionReview");
            assert_eq!(json["response"]["uid"], UID);
            assert_eq!(json["response"]["allowed"], true);
            assert_eq!(json["response"]["patchType"], "JSONPatch");
            let mut pod = review["request"]["object"].clone();
            json_patch::patch(&mut pod, &patch_of(&json).expect("a patch")).expect("applies");
            assert_eq!(pod, expected);
        }
    }
    let metrics = server.metrics().await;
    assert!(
        metrics.contains(
            r#"pytune_admission_requests_total{mode="enforce",result="patched",dry_run="false"} 9"#
        ),
        "{metrics}"
    );
    assert!(metrics.contains(r#"pytune_changes_total{mode="enforce",feature="#));
    server.stop().await;
}

/// What audit mode should say about a review: the engine's warnings, then one line per change.
fn expected_audit_warnings(review: &Value) -> Vec<String> {
    let plan = pytune::core::engine::plan(
        &review["request"]["object"],
        &pytune::core::policy::Policy::embedded(),
        &pytune::core::engine::Context::default(),
    )
    .expect("plan");
    let mut warnings = plan.warning_texts();
    warnings.extend(pytune::webhook::review::audit_warnings(&plan.changes));
    assert!(
        warnings.len() > plan.warnings.len(),
        "the fixture should be changed"
    );
    warnings
}

#[tokio::test]
async fn audit_warns_without_a_patch() {
    let server = TestServer::start().await;
    for alpn in [H1, H2] {
        let mut client = server.connect(alpn).await;
        let reply = client.post("/audit", bytes(&create_review())).await;
        assert_eq!(reply.status, StatusCode::OK);
        let json = reply.json();
        assert_eq!(json["response"]["uid"], UID);
        assert_eq!(json["response"]["allowed"], true);
        assert!(json["response"].get("patch").is_none());
        assert!(json["response"].get("patchType").is_none());
        let warnings: Vec<String> =
            serde_json::from_value(json["response"]["warnings"].clone()).expect("warnings");
        assert_eq!(warnings, expected_audit_warnings(&create_review()));
        assert!(warnings.iter().any(|w| w.starts_with("pytune audit: c: ")));
        assert!(warnings.iter().all(|w| w.chars().count() <= 120));
    }
    let metrics = server.metrics().await;
    assert!(metrics.contains(
        r#"pytune_admission_requests_total{mode="audit",result="audited",dry_run="false"} 2"#
    ));
    server.stop().await;
}

#[tokio::test]
async fn dry_run_gets_the_same_answer() {
    let server = TestServer::start().await;
    let mut client = server.connect(BOTH).await;
    let dry = labeled(fixture("pod-dryrun-create-review.json"));
    assert_eq!(dry["request"]["dryRun"], true);
    let mut wet = dry.clone();
    wet["request"]["dryRun"] = false.into();
    let dry_reply = client.post("/mutate", bytes(&dry)).await;
    let wet_reply = client.post("/mutate", bytes(&wet)).await;
    assert_eq!(dry_reply.status, StatusCode::OK);
    assert_eq!(dry_reply.json(), wet_reply.json());
    assert!(patch_of(&dry_reply.json()).is_some());
    let metrics = server.metrics().await;
    assert!(metrics.contains(
        r#"pytune_admission_requests_total{mode="enforce",result="patched",dry_run="true"} 1"#
    ));
    assert!(metrics.contains(
        r#"pytune_admission_requests_total{mode="enforce",result="patched",dry_run="false"} 1"#
    ));
    server.stop().await;
}

#[tokio::test]
async fn generate_name_pods_are_patched_and_the_uid_echoed() {
    let server = TestServer::start().await;
    let review = labeled(fixture("pod-generatename-create-review.json"));
    let uid = review["request"]["uid"].clone();
    let mut client = server.connect(H1).await;
    let json = client.post("/mutate", bytes(&review)).await.json();
    assert_eq!(json["response"]["uid"], uid);
    let mut pod = review["request"]["object"].clone();
    json_patch::patch(&mut pod, &patch_of(&json).expect("patch")).expect("applies");
    assert_eq!(pod, expected_pod(&review));
    server.stop().await;
}

#[tokio::test]
async fn unlabeled_pods_and_other_kinds_are_allowed_unchanged() {
    let server = TestServer::start().await;
    let mut client = server.connect(BOTH).await;

    let unlabeled = fixture("pod-create-review.json");
    let json = client.post("/mutate", bytes(&unlabeled)).await.json();
    assert_eq!(json["response"]["uid"], UID);
    assert_eq!(json["response"]["allowed"], true);
    assert!(json["response"].get("patch").is_none());

    let mut deployment = create_review();
    deployment["request"]["kind"] =
        serde_json::json!({"group": "apps", "version": "v1", "kind": "Deployment"});
    deployment["request"]["uid"] = "other-kind".into();
    let json = client.post("/mutate", bytes(&deployment)).await.json();
    assert_eq!(json["response"]["uid"], "other-kind");
    assert_eq!(json["response"]["allowed"], true);
    assert!(json["response"].get("patch").is_none());

    let mut update = create_review();
    update["request"]["operation"] = "UPDATE".into();
    let json = client.post("/mutate", bytes(&update)).await.json();
    assert_eq!(json["response"]["allowed"], true);
    assert!(json["response"].get("patch").is_none());
    server.stop().await;
}

#[tokio::test]
async fn invalid_pods_are_allowed_with_a_warning() {
    let server = TestServer::start().await;
    let mut review = create_review();
    review["request"]["object"]["spec"]["containers"] = Value::from(7);
    let mut client = server.connect(H1).await;
    let reply = client.post("/mutate", bytes(&review)).await;
    assert_eq!(reply.status, StatusCode::OK);
    let json = reply.json();
    assert_eq!(json["response"]["uid"], UID);
    assert_eq!(json["response"]["allowed"], true);
    assert!(json["response"].get("patch").is_none());
    assert_eq!(
        json["response"]["warnings"].as_array().map(Vec::len),
        Some(1)
    );
    assert!(server.metrics().await.contains(
        r#"pytune_admission_requests_total{mode="enforce",result="error",dry_run="false"} 1"#
    ));
    server.stop().await;
}

#[tokio::test]
async fn malformed_requests_are_400() {
    let server = TestServer::start().await;
    for alpn in [H1, H2] {
        let mut client = server.connect(alpn).await;
        for (body, message) in [
            (b"{not json".to_vec(), "not JSON"),
            (
                br#"{"apiVersion":"admission.k8s.io/v1beta1","kind":"AdmissionReview","request":{"uid":"x"}}"#.to_vec(),
                "expected apiVersion admission.k8s.io/v1",
            ),
            (
                br#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.to_vec(),
                "no request",
            ),
        ] {
            let reply = client.post("/mutate", body).await;
            assert_eq!(reply.status, StatusCode::BAD_REQUEST);
            assert!(reply.text().contains(message), "{}", reply.text());
        }
    }
    server.stop().await;
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let server = TestServer::start_with(|options| options.max_body_bytes = 16 * 1024).await;
    let mut review = create_review();
    review["request"]["object"]["metadata"]["annotations"] =
        serde_json::json!({"big": "x".repeat(20 * 1024)});
    for alpn in [H1, H2] {
        // An HTTP/1.1 connection whose request body was refused may be closed by the server, so
        // each request gets its own connection.
        let mut client = server.connect(alpn).await;
        let reply = client.post("/mutate", bytes(&review)).await;
        assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(reply.text().contains("larger than 16384 bytes"));

        // Without a declared length (streamed), the limit holds too.
        let mut client = server.connect(alpn).await;
        let (mut sender, body) = http_body_util::channel::Channel::<
            Bytes,
            Box<dyn std::error::Error + Send + Sync>,
        >::new(4);
        let payload = Bytes::from(bytes(&review));
        tokio::spawn(async move {
            for chunk in payload.chunks(4096) {
                if sender
                    .send(Frame::data(Bytes::copy_from_slice(chunk)))
                    .await
                    .is_err()
                {
                    break;
                }
            }
        });
        let reply = client
            .request("/mutate", body.boxed())
            .await
            .expect("reply");
        assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);

        let mut client = server.connect(alpn).await;
        assert_eq!(
            client.post("/mutate", bytes(&create_review())).await.status,
            StatusCode::OK
        );
    }
    assert!(server.metrics().await.contains(
        r#"pytune_admission_requests_total{mode="enforce",result="too_large",dry_run="unknown"} 4"#
    ));
    server.stop().await;
}

/// Sends `body_len` bytes to `/mutate` as a plain HTTP/1.1 client does (Python's http.client, for
/// one): a declared length, no `Expect: 100-continue`, the whole body written before the answer is
/// read. Returns the status line, or what went wrong instead.
async fn plain_http1_post(server: &TestServer, body_len: usize) -> Result<String, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut tls = tls_connect(server.webhook, &server.connector(H1)).await;
    let head = format!(
        "POST /mutate HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\n\
         content-length: {body_len}\r\n\r\n"
    );
    let body = vec![b' '; body_len];
    let sent = tokio::time::timeout(Duration::from_secs(20), async {
        tls.write_all(head.as_bytes()).await?;
        tls.write_all(&body).await?;
        tls.flush().await
    })
    .await;
    match sent {
        Ok(Ok(())) => {}
        Ok(Err(err)) => return Err(format!("sending the body: {err}")),
        Err(_) => return Err("sending the body took over 20 s".to_string()),
    }
    let mut received = Vec::new();
    let mut buffer = [0u8; 4096];
    loop {
        if let Some(end) = received.windows(2).position(|w| w == b"\r\n") {
            return Ok(String::from_utf8_lossy(&received[..end]).into_owned());
        }
        match tokio::time::timeout(Duration::from_secs(20), tls.read(&mut buffer)).await {
            Ok(Ok(0)) => return Err(format!("closed after {} bytes", received.len())),
            Ok(Ok(n)) => received.extend_from_slice(&buffer[..n]),
            Ok(Err(err)) => return Err(format!("reading: {err} after {} bytes", received.len())),
            Err(_) => return Err("no answer within 20 s".to_string()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_bodies_get_their_413_not_a_reset() {
    let server = TestServer::start().await;
    for attempt in 0..20 {
        let status = plain_http1_post(&server, 8 * 1024 * 1024).await;
        assert_eq!(
            status.as_deref(),
            Ok("HTTP/1.1 413 Payload Too Large"),
            "attempt {attempt}"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn tls_12_and_no_alpn_are_served() {
    let server = TestServer::start().await;
    let connector = connector(
        &server.authority.cert_pem,
        &[],
        Some(&[&rustls::version::TLS12]),
    );
    let mut client = Client::connect(server.webhook, connector).await;
    assert_eq!(client.alpn, None);
    assert_eq!(client.tls_version, Some(rustls::ProtocolVersion::TLSv1_2));
    let reply = client.post("/mutate", bytes(&create_review())).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert_eq!(reply.version, Version::HTTP_11);
    let client = server.connect(BOTH).await;
    assert_eq!(client.alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(client.tls_version, Some(rustls::ProtocolVersion::TLSv1_3));
    server.stop().await;
}

#[tokio::test]
async fn rotated_certificates_are_served_to_new_connections() {
    let mut server = TestServer::start().await;
    let mut before = server.connect(H1).await;
    let first = before.peer_certificate.clone();

    let next = server.authority.issue(&["localhost"]).expect("leaf");
    server.secret.rotate(&next);
    let next_der = rustls::pki_types::CertificateDer::from_pem_slice(next.cert_pem.as_bytes())
        .expect("PEM")
        .as_ref()
        .to_vec();
    assert_ne!(first, next_der);
    let rotated = eventually(Duration::from_secs(5), async || {
        server.connect(BOTH).await.peer_certificate == next_der
    })
    .await;
    assert!(rotated, "new connections never saw the new certificate");
    // The connection opened before the rotation keeps working.
    assert_eq!(
        before.post("/mutate", bytes(&create_review())).await.status,
        StatusCode::OK
    );

    // A broken pair is rejected and the rotated one keeps serving.
    let broken = pytune::webhook::selfsigned::Pair {
        cert_pem: next.cert_pem.clone(),
        key_pem: server
            .authority
            .issue(&["localhost"])
            .expect("leaf")
            .key_pem,
    };
    server.secret.rotate(&broken);
    let failed = eventually(Duration::from_secs(5), async || {
        server
            .metrics()
            .await
            .contains(r#"pytune_reloads_total{kind="tls",result="error"} 1"#)
    })
    .await;
    assert!(failed, "{}", server.metrics().await);
    assert_eq!(server.connect(H2).await.peer_certificate, next_der);
    let metrics = server.metrics().await;
    assert!(metrics.contains(r#"pytune_reloads_total{kind="tls",result="success"} 1"#));
    assert!(metrics.contains("pytune_certificate_expiry_timestamp_seconds "));
    server.stop().await;
}

#[tokio::test]
async fn policy_reloads_apply_and_invalid_ones_are_ignored() {
    let dir = tempfile::tempdir().expect("temp dir");
    let policy = dir.path().join("policy.yaml");
    std::fs::write(&policy, "selector: { label: example.com/python }\n").expect("write");
    let path = policy.clone();
    let server = TestServer::start_with(move |options| options.policy = Some(path)).await;
    let mut client = server.connect(BOTH).await;
    let review = create_review();

    // The pytune.io/runtime label is not the selector of this policy.
    let json = client.post("/mutate", bytes(&review)).await.json();
    assert!(json["response"].get("patch").is_none());

    std::fs::write(&policy, "selector: { label: pytune.io/runtime }\n").expect("write");
    let applied = eventually(Duration::from_secs(5), async || {
        client.post("/mutate", bytes(&review)).await.json()["response"]
            .get("patch")
            .is_some()
    })
    .await;
    assert!(applied, "the new policy was not applied");

    std::fs::write(&policy, "selector: { label: '' }\n").expect("write");
    let rejected = eventually(Duration::from_secs(5), async || {
        server
            .metrics()
            .await
            .contains(r#"pytune_reloads_total{kind="policy",result="error"} 1"#)
    })
    .await;
    assert!(rejected);
    let json = client.post("/mutate", bytes(&review)).await.json();
    assert!(
        json["response"].get("patch").is_some(),
        "the running policy was replaced"
    );
    server.stop().await;
}

#[tokio::test]
async fn admin_port_reports_health_and_readiness() {
    let server =
        TestServer::start_with(|options| options.shutdown_delay = Duration::from_millis(600)).await;
    assert_eq!(server.admin_get("/livez").await.0, StatusCode::OK);
    assert_eq!(server.admin_get("/readyz").await.0, StatusCode::OK);
    let (status, metrics) = server.admin_get("/metrics").await;
    assert_eq!(status, StatusCode::OK);
    assert!(metrics.contains("pytune_certificate_expiry_timestamp_seconds "));
    assert!(metrics.ends_with("# EOF\n"));

    let admin = server.admin;
    let webhook = server.webhook;
    let connector = server.connector(H1);
    let stopping = tokio::spawn(server.stop());
    tokio::time::sleep(Duration::from_millis(200)).await;
    // Draining: not ready, but still answering during the shutdown delay.
    assert_eq!(
        admin_get(admin, "/readyz").await.0,
        StatusCode::SERVICE_UNAVAILABLE
    );
    let mut client = Client::connect(webhook, connector).await;
    assert_eq!(
        client.post("/mutate", bytes(&create_review())).await.status,
        StatusCode::OK
    );
    stopping.await.expect("stopped");
}

#[tokio::test]
async fn shutdown_finishes_requests_in_flight() {
    let mut server = TestServer::start().await;
    let review = bytes(&create_review());
    let (split_at, _) = review.split_at(review.len() / 2);
    let split_at = split_at.len();

    // Requests whose bodies are half sent when shutdown starts, over both protocols.
    let mut in_flight = Vec::new();
    let mut rest = Vec::new();
    for alpn in [H1, H2, H1, H2] {
        let mut client = server.connect(alpn).await;
        let (mut sender, body) = http_body_util::channel::Channel::<
            Bytes,
            Box<dyn std::error::Error + Send + Sync>,
        >::new(2);
        sender
            .send(Frame::data(Bytes::copy_from_slice(&review[..split_at])))
            .await
            .expect("first half");
        in_flight.push(tokio::spawn(async move {
            let reply = client.request("/mutate", body.boxed()).await;
            (reply, client)
        }));
        rest.push(sender);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;

    let serving = server.serving.take().expect("serving");
    let webhook = server.webhook;
    let stopping = tokio::spawn(serving.shutdown());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !stopping.is_finished(),
        "shutdown did not wait for requests in flight"
    );
    // No new connections once draining.
    assert!(
        tokio::net::TcpStream::connect(webhook).await.is_err() || {
            let connector = server.connector(H1);
            let name = rustls::pki_types::ServerName::try_from("localhost").expect("name");
            let tcp = tokio::net::TcpStream::connect(webhook).await;
            match tcp {
                Err(_) => true,
                Ok(tcp) => {
                    tokio::time::timeout(Duration::from_secs(2), connector.connect(name, tcp))
                        .await
                        .map(|handshake| handshake.is_err())
                        .unwrap_or(true)
                }
            }
        }
    );

    for mut sender in rest {
        sender
            .send(Frame::data(Bytes::copy_from_slice(&review[split_at..])))
            .await
            .expect("second half");
        drop(sender);
    }
    for task in in_flight {
        let (reply, _client) = task.await.expect("task");
        let reply = reply.expect("an answer, not a dropped connection");
        assert_eq!(reply.status, StatusCode::OK);
        assert_eq!(reply.json()["response"]["uid"], UID);
        assert!(patch_of(&reply.json()).is_some());
    }
    tokio::time::timeout(Duration::from_secs(5), stopping)
        .await
        .expect("shutdown completes")
        .expect("task")
        .expect("clean shutdown");
}

#[tokio::test]
async fn slow_bodies_hit_the_request_deadline() {
    let server = TestServer::start().await;
    let mut client = server.connect(H1).await;
    let (mut sender, body) =
        http_body_util::channel::Channel::<Bytes, Box<dyn std::error::Error + Send + Sync>>::new(2);
    sender
        .send(Frame::data(Bytes::from_static(b"{")))
        .await
        .expect("first byte");
    let started = std::time::Instant::now();
    // timeout=1s: the deadline is 750 ms.
    let reply = client
        .request("/mutate?timeout=1s", body.boxed())
        .await
        .expect("reply");
    assert_eq!(reply.status, StatusCode::REQUEST_TIMEOUT);
    assert!(started.elapsed() < Duration::from_secs(3));
    drop(sender);
    server.stop().await;
}

#[tokio::test]
async fn connections_that_send_nothing_are_closed() {
    let server = TestServer::start_with(|options| {
        options.limits.first_request_timeout = Duration::from_millis(300);
    })
    .await;
    let mut tls = tls_connect(server.webhook, &server.connector(H1)).await;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    tls.write_all(b"POST /mutate HTTP/1.1\r\nhost: localhost\r\n")
        .await
        .expect("partial head");
    let mut buffer = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(3), tls.read(&mut buffer)).await;
    match read {
        Ok(Ok(0)) | Ok(Err(_)) => {}
        Ok(Ok(n)) => panic!("expected the connection closed, read {n} bytes"),
        Err(_) => panic!("the connection stayed open"),
    }
    server.stop().await;
}

#[tokio::test]
async fn unknown_paths_and_methods_are_refused() {
    let server = TestServer::start().await;
    let mut client = server.connect(H1).await;
    assert_eq!(
        client
            .post("/validate", bytes(&create_review()))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_concurrent_connections_all_get_answers() {
    let server = TestServer::start().await;
    let review = Bytes::from(bytes(&create_review()));
    let mut tasks = Vec::new();
    for index in 0..40 {
        let alpn = if index % 2 == 0 { H1 } else { H2 };
        let connector = server.connector(alpn);
        let addr = server.webhook;
        let review = review.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = Client::connect(addr, connector).await;
            for _ in 0..10 {
                let reply = client.post("/mutate?timeout=10s", review.clone()).await;
                assert_eq!(reply.status, StatusCode::OK);
                assert_eq!(reply.json()["response"]["uid"], UID);
            }
        }));
    }
    for task in tasks {
        task.await.expect("every connection is answered");
    }
    let metrics = server.metrics().await;
    assert!(
        metrics.contains(
            r#"pytune_admission_requests_total{mode="enforce",result="patched",dry_run="false"} 400"#
        ),
        "{metrics}"
    );
    server.stop().await;
}
