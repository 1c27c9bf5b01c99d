//! The catalog files built into pytune, in matching order: applications (by name), then the
//! generic servers, then the non-Python helpers. A test checks every file under `catalog/` is here.

pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "airflow.yaml",
        include_str!("../../../catalog/airflow.yaml"),
    ),
    (
        "argilla.yaml",
        include_str!("../../../catalog/argilla.yaml"),
    ),
    (
        "authentik.yaml",
        include_str!("../../../catalog/authentik.yaml"),
    ),
    ("ckan.yaml", include_str!("../../../catalog/ckan.yaml")),
    (
        "dagster.yaml",
        include_str!("../../../catalog/dagster.yaml"),
    ),
    ("flower.yaml", include_str!("../../../catalog/flower.yaml")),
    ("gradio.yaml", include_str!("../../../catalog/gradio.yaml")),
    (
        "graphite.yaml",
        include_str!("../../../catalog/graphite.yaml"),
    ),
    (
        "home-assistant.yaml",
        include_str!("../../../catalog/home-assistant.yaml"),
    ),
    (
        "kiwitcms.yaml",
        include_str!("../../../catalog/kiwitcms.yaml"),
    ),
    (
        "litellm.yaml",
        include_str!("../../../catalog/litellm.yaml"),
    ),
    ("locust.yaml", include_str!("../../../catalog/locust.yaml")),
    (
        "mailman.yaml",
        include_str!("../../../catalog/mailman.yaml"),
    ),
    (
        "microservices-demo.yaml",
        include_str!("../../../catalog/microservices-demo.yaml"),
    ),
    ("odoo.yaml", include_str!("../../../catalog/odoo.yaml")),
    (
        "open-webui.yaml",
        include_str!("../../../catalog/open-webui.yaml"),
    ),
    ("plone.yaml", include_str!("../../../catalog/plone.yaml")),
    (
        "posthog.yaml",
        include_str!("../../../catalog/posthog.yaml"),
    ),
    (
        "prefect.yaml",
        include_str!("../../../catalog/prefect.yaml"),
    ),
    ("pretix.yaml", include_str!("../../../catalog/pretix.yaml")),
    ("ray.yaml", include_str!("../../../catalog/ray.yaml")),
    ("redash.yaml", include_str!("../../../catalog/redash.yaml")),
    ("saleor.yaml", include_str!("../../../catalog/saleor.yaml")),
    ("sentry.yaml", include_str!("../../../catalog/sentry.yaml")),
    (
        "streamlit.yaml",
        include_str!("../../../catalog/streamlit.yaml"),
    ),
    (
        "superset.yaml",
        include_str!("../../../catalog/superset.yaml"),
    ),
    ("vllm.yaml", include_str!("../../../catalog/vllm.yaml")),
    (
        "wagtail.yaml",
        include_str!("../../../catalog/wagtail.yaml"),
    ),
    (
        "servers.yaml",
        include_str!("../../../catalog/servers.yaml"),
    ),
    (
        "helpers.yaml",
        include_str!("../../../catalog/helpers.yaml"),
    ),
];
