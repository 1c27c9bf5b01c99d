//! Version discovery against a stand-in API server over TLS.

mod common;

use axum::Json;
use axum::routing::get;
use pytune::core::engine::KubeVersion;
use pytune::webhook::selfsigned::Authority;

#[tokio::test]
async fn reads_the_version_of_the_api_server() {
    let authority = Authority::new("test cluster CA").expect("CA");
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
    let (addr, handle) = common::fake_api_server(&authority, app).await;
    let client = common::kube_client(addr, &authority);
    let version = pytune::webhook::discovery::kubernetes_version(&client)
        .await
        .expect("version");
    assert_eq!(version, KubeVersion::new(1, 31));
    handle.shutdown();
}
