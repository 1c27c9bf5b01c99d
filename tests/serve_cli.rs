//! `pytune serve` as a process: --self-signed, JSON logs whole under concurrent reviews, SIGTERM
//! exits 0.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::*;
use hyper::StatusCode;
use serde_json::Value;

fn free_port() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr")
}

fn http_get(addr: SocketAddr, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(1)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    Some(text)
}

/// Kills the child if a test fails before it exits.
struct Guard(Child);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

const CONNECTIONS: usize = 8;
const REVIEWS_PER_CONNECTION: usize = 25;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_self_signed_logs_json_and_exits_cleanly_on_sigterm() {
    setup();
    let dir = tempfile::tempdir().expect("temp dir");
    let certs = dir.path().join("certs");
    let (webhook, admin) = (free_port(), free_port());
    let child = Command::new(env!("CARGO_BIN_EXE_pytune"))
        .args(["serve", "--log-format", "json", "--self-signed"])
        .arg(&certs)
        .args([
            "--listen",
            &webhook.to_string(),
            "--admin-listen",
            &admin.to_string(),
        ])
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pytune starts");
    let mut child = Guard(child);
    // Read the log while the server runs: a pipe nobody reads fills up (64 KiB on Linux), and the
    // server then blocks writing its review lines.
    let mut stderr = child.0.stderr.take().expect("stderr");
    let log_reader = std::thread::spawn(move || {
        let mut logs = String::new();
        stderr.read_to_string(&mut logs).expect("logs");
        logs
    });

    let mut stdout = BufReader::new(child.0.stdout.take().expect("stdout"));
    let mut ca_bundle = None;
    for _ in 0..5 {
        let mut line = String::new();
        if stdout.read_line(&mut line).expect("stdout") == 0 {
            break;
        }
        if let Some(bundle) = line.trim().strip_prefix("caBundle: ") {
            ca_bundle = Some(bundle.to_string());
            break;
        }
    }
    let ca_pem = std::fs::read_to_string(certs.join("ca.crt")).expect("ca.crt written");
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(ca_bundle.expect("caBundle printed"))
        .expect("base64");
    assert_eq!(decoded, ca_pem.as_bytes());
    assert!(certs.join("tls.crt").is_file() && certs.join("tls.key").is_file());

    let started = Instant::now();
    while !http_get(admin, "/readyz").is_some_and(|text| text.starts_with("HTTP/1.1 200")) {
        assert!(started.elapsed() < Duration::from_secs(10), "never ready");
        std::thread::sleep(Duration::from_millis(50));
    }

    // Reviews on several connections at once, so the server's threads log at the same time: every
    // line must still arrive whole (checked below).
    let review = bytes(&labeled(fixture("pod-create-review.json")));
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..CONNECTIONS {
        let mut client = Client::connect(webhook, connector(&ca_pem, &[b"http/1.1"], None)).await;
        let review = review.clone();
        senders.spawn(async move {
            for _ in 0..REVIEWS_PER_CONNECTION {
                let reply = client.post("/mutate?timeout=10s", review.clone()).await;
                assert_eq!(reply.status, StatusCode::OK);
                assert!(patch_of(&reply.json()).is_some());
            }
        });
    }
    while let Some(sent) = senders.join_next().await {
        sent.expect("reviews answered");
    }

    let status = Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = child.0.try_wait().expect("wait") {
            break exit;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "did not exit on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(exit.success(), "exit status {exit}");

    let logs = log_reader.join().expect("the log is read");
    let lines: Vec<Value> = logs
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|_| panic!("not a whole JSON line: {line}"))
        })
        .collect();
    let reviews: Vec<&Value> = lines
        .iter()
        .filter(|line| line["message"] == "review")
        .collect();
    assert_eq!(
        reviews.len(),
        CONNECTIONS * REVIEWS_PER_CONNECTION,
        "{logs}"
    );
    let review_line = reviews[0];
    assert_eq!(review_line["uid"], "936b7fbd-aa7f-4c7b-9350-aaf4d8e29331");
    assert_eq!(review_line["namespace"], "hooked");
    assert_eq!(review_line["pod"], "p1");
    assert_eq!(review_line["mode"], "enforce");
    assert_eq!(review_line["dry_run"], false);
    assert_eq!(review_line["result"], "patched");
    assert!(review_line["changes"].as_u64().is_some_and(|n| n > 0));
    assert!(review_line["latency_ms"].is_number());
    assert!(logs.contains("SIGTERM"), "{logs}");
}
