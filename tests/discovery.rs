//! Version discovery against a stand-in API server over TLS.

mod common;

use axum::Json;
use axum::routing::get;
use axum_server::tls_rustls::RustlsConfig;
use pytune::engine::KubeVersion;
use pytune::selfsigned::Authority;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

#[tokio::test]
async fn reads_the_version_of_the_api_server() {
    common::setup();
    let authority = Authority::new("test cluster CA").expect("CA");
    let pair = authority.issue(&["127.0.0.1"]).expect("leaf");
    let config = RustlsConfig::from_pem(pair.cert_pem.into_bytes(), pair.key_pem.into_bytes())
        .await
        .expect("TLS config");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    let handle = axum_server::Handle::new();
    let app = axum::Router::new().route(
        "/version",
        get(|| async {
            Json(serde_json::json!({
                "major": "1", "minor": "31+", "gitVersion": "v1.31.4-gke.100",
                "gitCommit": "", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
                "goVersion": "go1.25", "compiler": "gc", "platform": "linux/amd64"
            }))
        }),
    );
    let server = axum_server::from_tcp_rustls(listener, config)
        .expect("server")
        .handle(handle.clone())
        .serve(app.into_make_service());
    let task = tokio::spawn(server);

    let mut config = kube::Config::new(format!("https://{addr}").parse().expect("URL"));
    let ca = CertificateDer::from_pem_slice(authority.cert_pem.as_bytes()).expect("CA PEM");
    config.root_cert = Some(vec![ca.as_ref().to_vec()]);
    let client = kube::Client::try_from(config).expect("client");
    let version = pytune::discovery::kubernetes_version(&client)
        .await
        .expect("version");
    assert_eq!(version, KubeVersion::new(1, 31));

    handle.shutdown();
    let _ = task.await;
}
