use k8s_openapi::api::core::v1::{Container, EnvVar};

use super::*;

fn container(image: &str, command: &[&str], args: &[&str]) -> Container {
    let words = |list: &[&str]| {
        (!list.is_empty()).then(|| list.iter().map(|word| word.to_string()).collect())
    };
    Container {
        name: "app".to_string(),
        image: Some(image.to_string()),
        command: words(command),
        args: words(args),
        ..Container::default()
    }
}

fn matched(container: &Container) -> Option<String> {
    find(container, &[], Catalog::embedded()).map(|m| m.entry.name)
}

#[test]
fn the_embedded_catalog_loads_and_validates() {
    let catalog = EMBEDDED.as_ref().expect("the embedded catalog is valid");
    assert!(catalog.entries().count() >= 20);
}

#[test]
fn every_file_under_catalog_is_embedded() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("catalog");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .expect("catalog/ exists")
        .flatten()
        .map(|entry| entry.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".yaml"))
        .collect();
    on_disk.sort();
    let mut embedded: Vec<String> = files::EMBEDDED
        .iter()
        .map(|(name, _)| name.to_string())
        .collect();
    embedded.sort();
    assert_eq!(
        on_disk, embedded,
        "list new catalog files in src/core/catalog/files.rs"
    );
}

#[test]
fn image_repositories_drop_registry_tag_and_digest() {
    for (image, repository) in [
        ("apache/airflow:3.0.2", "apache/airflow"),
        ("docker.io/apache/airflow:3.0.2", "apache/airflow"),
        (
            "registry.example.com:5000/apache/airflow@sha256:abc",
            "apache/airflow",
        ),
        ("localhost/team/app:1", "team/app"),
        ("python:3.13-slim", "python"),
        ("docker.io/library/nginx:1.27", "nginx"),
        (
            "ghcr.io/open-webui/open-webui:main",
            "open-webui/open-webui",
        ),
        ("Quay.io/JupyterHub/k8s-hub:4.0", "jupyterhub/k8s-hub"),
        ("", ""),
    ] {
        assert_eq!(image_repository(image), repository, "{image}");
    }
}

#[test]
fn servers_are_recognised_through_launchers_and_shells() {
    for (command, args, entry) in [
        (&["gunicorn", "app:app"][..], &[][..], "gunicorn"),
        (&["python", "-m", "gunicorn"], &["app:app"], "gunicorn"),
        (&[], &["-m", "gunicorn", "app:app"], "gunicorn"),
        (&["/usr/local/bin/uvicorn"], &["main:app"], "uvicorn"),
        (
            &["sh", "-c", "migrate && exec celery -A proj worker -l info"],
            &[],
            "celery-worker",
        ),
        (
            &["tini", "--", "celery", "-A", "proj", "beat"],
            &[],
            "celery-beat",
        ),
        (&["poetry", "run", "rq", "worker"], &[], "rq-worker"),
        (
            &["python", "manage.py", "runserver", "0.0.0.0:8000"],
            &[],
            "django-runserver",
        ),
        (&["python", "manage.py", "migrate"], &[], "django-manage"),
        (&["nginx", "-g", "daemon off;"], &[], "nginx"),
    ] {
        let found = matched(&container("example/app:1", command, args));
        assert_eq!(found.as_deref(), Some(entry), "{command:?} {args:?}");
    }
    assert_eq!(
        matched(&container("example/app:1", &["python", "app.py"], &[])),
        None
    );
}

#[test]
fn more_conditions_win_and_the_policy_comes_first() {
    let own: Vec<Entry> = serde_saphyr::from_str(
        "- name: shop-api\n  match: [{image: team/shop, words: [gunicorn]}]\n  python: true\n  \
         server: gunicorn\n  profile: web\n  port: 9000\n  sources: [our Dockerfile]\n\
         - name: shop-any\n  match: [{image: team/shop}]\n  python: true\n  sources: [ours]\n",
    )
    .expect("entries");
    let catalog = Catalog::embedded();
    let shop = container("registry.local/team/shop:7", &["gunicorn", "shop:app"], &[]);
    let found = find(&shop, &own, catalog).expect("a match");
    assert_eq!(found.entry.name, "shop-api");
    assert_eq!(
        found.evidence.to_string(),
        "image team/shop, command gunicorn"
    );
    let other = container("team/other:1", &["gunicorn", "x:app"], &[]);
    assert_eq!(
        find(&other, &own, catalog).map(|m| m.entry.name).as_deref(),
        Some("gunicorn")
    );
}

#[test]
fn env_markers_and_the_image_default_command_match() {
    let entries: Vec<Entry> = serde_saphyr::from_str(
        "- name: tool-web\n  match: [{image: acme/tool, noCommand: true}]\n  python: true\n  sources: [s]\n\
         - name: tool-worker\n  match: [{image: acme/tool, noCommand: true, env: {ROLE: worker}}]\n  python: true\n  sources: [s]\n",
    )
    .expect("entries");
    let empty = Catalog::default();
    let mut web = container("acme/tool:1", &[], &[]);
    assert_eq!(
        find(&web, &entries, &empty)
            .map(|m| m.entry.name)
            .as_deref(),
        Some("tool-web")
    );
    web.env = Some(vec![EnvVar {
        name: "ROLE".into(),
        value: Some("worker".into()),
        value_from: None,
    }]);
    assert_eq!(
        find(&web, &entries, &empty)
            .map(|m| m.entry.name)
            .as_deref(),
        Some("tool-worker")
    );
    let started = container("acme/tool:1", &["tool", "serve"], &[]);
    assert_eq!(find(&started, &entries, &empty), None);
}

#[test]
fn invalid_entries_are_refused_with_the_place_named() {
    let family = |entries: &str| {
        parse_family(
            "t.yaml",
            &format!("family: t\ntitle: T\nentries:\n{entries}"),
        )
        .map(|family| Catalog {
            families: vec![family],
        })
        .and_then(|catalog| catalog.validate())
    };
    let err = family("  - name: a\n    match: [{}]\n    python: true\n    sources: [s]\n")
        .expect_err("an empty alternative");
    assert!(err.to_string().contains("entry a match[0]"), "{err}");
    let err = family("  - name: a\n    match: [{words: [x]}]\n    python: true\n")
        .expect_err("no sources");
    assert!(err.to_string().contains("sources"), "{err}");
    let err = family("  - name: a\n    match: [{words: [x]}]\n    python: true\n    sources: [s]\n    colour: red\n")
        .expect_err("an unknown field");
    assert!(err.to_string().contains("colour"), "{err}");
    let err = family(
        "  - name: a\n    match: [{words: [x]}]\n    python: true\n    sources: [s]\n\
         \x20 - name: a\n    match: [{words: [y]}]\n    python: true\n    sources: [s]\n",
    )
    .expect_err("a name twice");
    assert!(err.to_string().contains("used twice"), "{err}");
    let err = family("  - name: a\n    match: [{words: [x]}]\n    python: true\n    sources: [s]\n    health: {path: /h, host: \"local host\"}\n")
        .expect_err("a host with a space");
    assert!(err.to_string().contains("health.host"), "{err}");
    family("  - name: a\n    match: [{words: [x]}]\n    python: true\n    sources: [s]\n    health: {path: /h, host: localhost}\n")
        .expect("a host name");
}

#[test]
fn a_pattern_with_a_registry_matches_the_image_anywhere() {
    let own: Vec<Entry> = serde_saphyr::from_str(
        "- name: shop\n  match: [{image: registry.example.com/shop/api:1}]\n  python: true\n  \
         sources: [ours]\n",
    )
    .expect("entries");
    let mirrored = container("mirror.local:5000/shop/api:7", &[], &[]);
    let found = find(&mirrored, &own, &Catalog::default()).expect("a match");
    assert_eq!(found.entry.name, "shop");
    assert_eq!(found.family, "policy");
}

#[test]
fn a_policy_entry_replaces_the_embedded_one_of_its_name() {
    let own: Vec<Entry> = serde_saphyr::from_str(
        "- name: nginx\n  match: [{image: team/nginx-python}]\n  python: true\n  sources: [ours]\n",
    )
    .expect("entries");
    let plain = container("nginx:1.27", &["nginx", "-g", "daemon off;"], &[]);
    assert_eq!(find(&plain, &own, Catalog::embedded()), None);
    let ours = find(
        &container("team/nginx-python:1", &[], &[]),
        &own,
        Catalog::embedded(),
    );
    assert_eq!(ours.map(|m| m.family).as_deref(), Some("policy"));
}
