//! Shared helpers of the server tests: a CA per test, a Kubernetes-style Secret directory, the
//! server started on free loopback ports, and an HTTPS client that verifies the CA and reports the
//! protocol it negotiated.
#![allow(dead_code)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Request, StatusCode, Version};
use hyper_util::rt::{TokioExecutor, TokioIo};
use pytune::webhook::selfsigned::{Authority, Pair};
use pytune::webhook::serve::{ServeOptions, Serving, TlsSource};
use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject};
use serde_json::Value;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

pub type Body = BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

pub fn setup() {
    pytune::webhook::tls::install_provider();
}

/// A Secret volume as the kubelet lays it out: files are symlinks through `..data`, which points
/// at a timestamped directory and is swapped atomically on rotation.
pub struct SecretDir {
    pub dir: tempfile::TempDir,
    generation: usize,
}

impl SecretDir {
    pub fn new(pair: &Pair) -> SecretDir {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut secret = SecretDir { dir, generation: 0 };
        secret.write_generation(pair);
        for name in ["tls.crt", "tls.key"] {
            std::os::unix::fs::symlink(
                Path::new("..data").join(name),
                secret.dir.path().join(name),
            )
            .expect("file symlink");
        }
        secret
    }

    pub fn cert_path(&self) -> PathBuf {
        self.dir.path().join("tls.crt")
    }

    pub fn key_path(&self) -> PathBuf {
        self.dir.path().join("tls.key")
    }

    /// Writes a new generation directory and swaps `..data` to it, as the kubelet does.
    pub fn rotate(&mut self, pair: &Pair) {
        let old = self.generation_dir();
        self.write_generation(pair);
        let _ = std::fs::remove_dir_all(old);
    }

    fn generation_dir(&self) -> PathBuf {
        self.dir
            .path()
            .join(format!("..2026_11_23_{:02}", self.generation))
    }

    fn write_generation(&mut self, pair: &Pair) {
        self.generation += 1;
        let target = self.generation_dir();
        std::fs::create_dir(&target).expect("generation dir");
        std::fs::write(target.join("tls.crt"), &pair.cert_pem).expect("cert");
        std::fs::write(target.join("tls.key"), &pair.key_pem).expect("key");
        let name = target.file_name().expect("name").to_owned();
        let tmp = self.dir.path().join("..data_tmp");
        std::os::unix::fs::symlink(&name, &tmp).expect("data symlink");
        std::fs::rename(&tmp, self.dir.path().join("..data")).expect("atomic swap");
    }
}

/// A server under test with its CA and Secret directory.
pub struct TestServer {
    pub authority: Authority,
    pub secret: SecretDir,
    pub serving: Option<Serving>,
    pub webhook: SocketAddr,
    pub admin: SocketAddr,
}

impl TestServer {
    pub async fn start() -> TestServer {
        TestServer::start_with(|_| {}).await
    }

    pub async fn start_with(configure: impl FnOnce(&mut ServeOptions)) -> TestServer {
        setup();
        let authority = Authority::new("pytune test CA").expect("CA");
        let pair = authority.issue(&["localhost", "127.0.0.1"]).expect("leaf");
        let secret = SecretDir::new(&pair);
        let mut options = ServeOptions::new(TlsSource::Files {
            cert: secret.cert_path(),
            key: secret.key_path(),
        });
        options.listen = "127.0.0.1:0".parse().expect("addr");
        options.admin_listen = "127.0.0.1:0".parse().expect("addr");
        options.reload_interval = Duration::from_millis(100);
        options.shutdown_grace = Duration::from_secs(10);
        configure(&mut options);
        let serving = pytune::webhook::serve::start(options).expect("server starts");
        TestServer {
            webhook: serving.webhook_addr(),
            admin: serving.admin_addr(),
            authority,
            secret,
            serving: Some(serving),
        }
    }

    pub fn connector(&self, alpn: &[&[u8]]) -> TlsConnector {
        connector(&self.authority.cert_pem, alpn, None)
    }

    /// A new connection offering `alpn` (e.g. `[b"h2"]`, `[b"http/1.1"]`, or both).
    pub async fn connect(&self, alpn: &[&[u8]]) -> Client {
        Client::connect(self.webhook, self.connector(alpn)).await
    }

    pub async fn admin_get(&self, path: &str) -> (StatusCode, String) {
        admin_get(self.admin, path).await
    }

    pub async fn metrics(&self) -> String {
        self.admin_get("/metrics").await.1
    }

    pub async fn stop(mut self) {
        if let Some(serving) = self.serving.take() {
            serving.shutdown().await.expect("clean shutdown");
        }
    }
}

pub fn connector(
    ca_pem: &str,
    alpn: &[&[u8]],
    versions: Option<&[&'static rustls::SupportedProtocolVersion]>,
) -> TlsConnector {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("CA PEM")).expect("CA cert");
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ));
    let builder = match versions {
        Some(versions) => builder.with_protocol_versions(versions),
        None => builder.with_safe_default_protocol_versions(),
    }
    .expect("versions");
    let mut config = builder.with_root_certificates(roots).with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsConnector::from(Arc::new(config))
}

pub async fn tls_connect(addr: SocketAddr, connector: &TlsConnector) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(addr).await.expect("TCP connect");
    // As the API server does; otherwise Nagle delays HTTP/2 DATA frames behind HEADERS.
    tcp.set_nodelay(true).expect("TCP_NODELAY");
    let name = ServerName::try_from("localhost").expect("name");
    connector.connect(name, tcp).await.expect("TLS handshake")
}

enum Sender {
    H1(hyper::client::conn::http1::SendRequest<Body>),
    H2(hyper::client::conn::http2::SendRequest<Body>),
}

/// One HTTPS connection.
pub struct Client {
    sender: Sender,
    pub alpn: Option<Vec<u8>>,
    pub peer_certificate: Vec<u8>,
    pub tls_version: Option<rustls::ProtocolVersion>,
}

/// A response, its body read.
pub struct Reply {
    pub status: StatusCode,
    pub version: Version,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|err| {
            panic!("not JSON ({err}): {}", String::from_utf8_lossy(&self.body))
        })
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

impl Client {
    pub async fn connect(addr: SocketAddr, connector: TlsConnector) -> Client {
        let tls = tls_connect(addr, &connector).await;
        let (_, session) = tls.get_ref();
        let alpn = session.alpn_protocol().map(<[u8]>::to_vec);
        let tls_version = session.protocol_version();
        let peer_certificate = session
            .peer_certificates()
            .and_then(|certs| certs.first())
            .map(|cert| cert.as_ref().to_vec())
            .expect("a server certificate");
        let io = TokioIo::new(tls);
        let sender = if alpn.as_deref() == Some(b"h2") {
            let (sender, connection) =
                hyper::client::conn::http2::handshake(TokioExecutor::new(), io)
                    .await
                    .expect("h2 handshake");
            tokio::spawn(connection);
            Sender::H2(sender)
        } else {
            let (sender, connection) = hyper::client::conn::http1::handshake(io)
                .await
                .expect("h1 handshake");
            tokio::spawn(connection);
            Sender::H1(sender)
        };
        Client {
            sender,
            alpn,
            peer_certificate,
            tls_version,
        }
    }

    pub fn is_h2(&self) -> bool {
        matches!(self.sender, Sender::H2(_))
    }

    pub async fn post(&mut self, path: &str, body: impl Into<Bytes>) -> Reply {
        let body = Full::new(body.into())
            .map_err(|never: Infallible| match never {})
            .boxed();
        self.request(path, body).await.expect("request succeeds")
    }

    pub async fn request(&mut self, path: &str, body: Body) -> Result<Reply, hyper::Error> {
        let version = if self.is_h2() {
            Version::HTTP_2
        } else {
            Version::HTTP_11
        };
        let uri = if self.is_h2() {
            format!("https://localhost{path}")
        } else {
            path.to_string()
        };
        let request = Request::post(uri)
            .version(version)
            .header("host", "localhost")
            .header("content-type", "application/json")
            .header("user-agent", "kube-apiserver-admission")
            .body(body)
            .expect("request");
        let response = match &mut self.sender {
            Sender::H1(sender) => {
                sender.ready().await?;
                sender.send_request(request).await?
            }
            Sender::H2(sender) => {
                sender.ready().await?;
                sender.send_request(request).await?
            }
        };
        let status = response.status();
        let version = response.version();
        let body = response.into_body().collect().await?.to_bytes();
        Ok(Reply {
            status,
            version,
            body,
        })
    }
}

pub async fn admin_get(addr: SocketAddr, path: &str) -> (StatusCode, String) {
    let tcp = TcpStream::connect(addr).await.expect("admin connect");
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
        .await
        .expect("admin handshake");
    tokio::spawn(connection);
    let request = Request::get(path)
        .header("host", "localhost")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let response = sender.send_request(request).await.expect("admin response");
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .expect("admin body")
        .to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

pub fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/apiserver-v1.36")
        .join(name);
    serde_json::from_slice(&std::fs::read(&path).expect("fixture")).expect("fixture JSON")
}

/// The review with the object labeled as a Python service.
pub fn labeled(mut review: Value) -> Value {
    review["request"]["object"]["metadata"]["labels"]["pytune.io/runtime"] = "python".into();
    review
}

pub fn bytes(review: &Value) -> Vec<u8> {
    serde_json::to_vec(review).expect("JSON")
}

/// The patch of a response, a base64 string as the API server documents it.
pub fn patch_of(response: &Value) -> Option<json_patch::Patch> {
    use base64::Engine as _;
    let patch = response["response"].get("patch")?;
    let text = patch.as_str().expect("the patch is a base64 string");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .expect("base64");
    Some(serde_json::from_slice(&bytes).expect("JSON patch"))
}

/// The Pod the engine would produce from the review's object with the embedded policy.
pub fn expected_pod(review: &Value) -> Value {
    let object = review["request"]["object"].clone();
    let plan = pytune::core::engine::plan(
        &object,
        &pytune::core::policy::Policy::embedded(),
        &pytune::core::engine::Context::default(),
    )
    .expect("plan");
    assert!(!plan.is_empty(), "the fixture should be changed");
    let mut pod = object;
    json_patch::patch(&mut pod, &plan.json_patch()).expect("engine patch applies");
    pod
}

/// Polls `check` until it holds or `within` passes.
pub async fn eventually(within: Duration, mut check: impl AsyncFnMut() -> bool) -> bool {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A stand-in API server over TLS (certificate for 127.0.0.1 from `authority`) serving `app`.
pub async fn fake_api_server(
    authority: &Authority,
    app: axum::Router,
) -> (SocketAddr, axum_server::Handle<SocketAddr>) {
    setup();
    let pair = authority.issue(&["127.0.0.1"]).expect("leaf");
    let config = axum_server::tls_rustls::RustlsConfig::from_pem(
        pair.cert_pem.into_bytes(),
        pair.key_pem.into_bytes(),
    )
    .await
    .expect("TLS config");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let handle = axum_server::Handle::new();
    let server = axum_server::from_tcp_rustls(listener, config)
        .expect("server")
        .handle(handle.clone())
        .serve(app.into_make_service());
    tokio::spawn(server);
    (addr, handle)
}

/// A kube client for the stand-in API server at `addr`, trusting `authority`.
pub fn kube_client(addr: SocketAddr, authority: &Authority) -> kube::Client {
    let mut config = kube::Config::new(format!("https://{addr}").parse().expect("URL"));
    let ca = CertificateDer::from_pem_slice(authority.cert_pem.as_bytes()).expect("CA PEM");
    config.root_cert = Some(vec![ca.as_ref().to_vec()]);
    kube::Client::try_from(config).expect("client")
}

/// Runs the pytune binary over `args` with `stdin`, from the repository root and without the
/// environment's policy or version, and fails the test if it takes longer than `seconds`.
pub fn pytune_within(args: &[&str], stdin: &str, seconds: u64) -> std::process::Output {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_pytune"))
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .env_remove("PYTUNE_POLICY")
        .env_remove("PYTUNE_KUBERNETES_VERSION")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pytune runs");
    let mut input = child.stdin.take().expect("stdin");
    let text = stdin.to_string();
    // Separate writer and readers: a pipe holds only 64 KiB, and pytune reads all of stdin
    // before it writes.
    let writer = std::thread::spawn(move || input.write_all(text.as_bytes()));
    let stdout = child.stdout.take().expect("stdout");
    let stderr = child.stderr.take().expect("stderr");
    let out = std::thread::spawn(move || std::io::read_to_string(stdout));
    let err = std::thread::spawn(move || std::io::read_to_string(stderr));
    let deadline = std::time::Instant::now() + Duration::from_secs(seconds);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("pytune {args:?} still running after {seconds}s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    // A program that exits without reading all of stdin closes the pipe: not a failure here.
    let _ = writer.join().expect("writer");
    std::process::Output {
        status,
        stdout: out
            .join()
            .expect("reader")
            .expect("read stdout")
            .into_bytes(),
        stderr: err
            .join()
            .expect("reader")
            .expect("read stderr")
            .into_bytes(),
    }
}
