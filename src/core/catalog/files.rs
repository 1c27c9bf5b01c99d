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
    (
        "baserow.yaml",
        include_str!("../../../catalog/baserow.yaml"),
    ),
    (
        "binderhub.yaml",
        include_str!("../../../catalog/binderhub.yaml"),
    ),
    (
        "changedetection-io.yaml",
        include_str!("../../../catalog/changedetection-io.yaml"),
    ),
    ("ckan.yaml", include_str!("../../../catalog/ckan.yaml")),
    (
        "dagster.yaml",
        include_str!("../../../catalog/dagster.yaml"),
    ),
    ("dask.yaml", include_str!("../../../catalog/dask.yaml")),
    ("dify.yaml", include_str!("../../../catalog/dify.yaml")),
    (
        "enterprise-gateway.yaml",
        include_str!("../../../catalog/enterprise-gateway.yaml"),
    ),
    ("feast.yaml", include_str!("../../../catalog/feast.yaml")),
    ("flower.yaml", include_str!("../../../catalog/flower.yaml")),
    ("frappe.yaml", include_str!("../../../catalog/frappe.yaml")),
    ("gradio.yaml", include_str!("../../../catalog/gradio.yaml")),
    (
        "grafana-oncall.yaml",
        include_str!("../../../catalog/grafana-oncall.yaml"),
    ),
    (
        "graphite.yaml",
        include_str!("../../../catalog/graphite.yaml"),
    ),
    (
        "healthchecks.yaml",
        include_str!("../../../catalog/healthchecks.yaml"),
    ),
    (
        "home-assistant.yaml",
        include_str!("../../../catalog/home-assistant.yaml"),
    ),
    ("immich.yaml", include_str!("../../../catalog/immich.yaml")),
    (
        "jupyterhub.yaml",
        include_str!("../../../catalog/jupyterhub.yaml"),
    ),
    (
        "kiwitcms.yaml",
        include_str!("../../../catalog/kiwitcms.yaml"),
    ),
    (
        "label-studio.yaml",
        include_str!("../../../catalog/label-studio.yaml"),
    ),
    (
        "langflow.yaml",
        include_str!("../../../catalog/langflow.yaml"),
    ),
    (
        "litellm.yaml",
        include_str!("../../../catalog/litellm.yaml"),
    ),
    ("locust.yaml", include_str!("../../../catalog/locust.yaml")),
    ("mage.yaml", include_str!("../../../catalog/mage.yaml")),
    (
        "mailman.yaml",
        include_str!("../../../catalog/mailman.yaml"),
    ),
    ("mailu.yaml", include_str!("../../../catalog/mailu.yaml")),
    (
        "mayan-edms.yaml",
        include_str!("../../../catalog/mayan-edms.yaml"),
    ),
    ("mealie.yaml", include_str!("../../../catalog/mealie.yaml")),
    (
        "microservices-demo.yaml",
        include_str!("../../../catalog/microservices-demo.yaml"),
    ),
    ("mlflow.yaml", include_str!("../../../catalog/mlflow.yaml")),
    (
        "nautobot.yaml",
        include_str!("../../../catalog/nautobot.yaml"),
    ),
    ("netbox.yaml", include_str!("../../../catalog/netbox.yaml")),
    ("odoo.yaml", include_str!("../../../catalog/odoo.yaml")),
    (
        "open-webui.yaml",
        include_str!("../../../catalog/open-webui.yaml"),
    ),
    (
        "paperless-ngx.yaml",
        include_str!("../../../catalog/paperless-ngx.yaml"),
    ),
    (
        "pgadmin.yaml",
        include_str!("../../../catalog/pgadmin.yaml"),
    ),
    ("plane.yaml", include_str!("../../../catalog/plane.yaml")),
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
    (
        "pypiserver.yaml",
        include_str!("../../../catalog/pypiserver.yaml"),
    ),
    ("rasa.yaml", include_str!("../../../catalog/rasa.yaml")),
    ("ray.yaml", include_str!("../../../catalog/ray.yaml")),
    ("redash.yaml", include_str!("../../../catalog/redash.yaml")),
    ("saleor.yaml", include_str!("../../../catalog/saleor.yaml")),
    (
        "searxng.yaml",
        include_str!("../../../catalog/searxng.yaml"),
    ),
    ("sentry.yaml", include_str!("../../../catalog/sentry.yaml")),
    (
        "streamlit.yaml",
        include_str!("../../../catalog/streamlit.yaml"),
    ),
    (
        "superset.yaml",
        include_str!("../../../catalog/superset.yaml"),
    ),
    ("taiga.yaml", include_str!("../../../catalog/taiga.yaml")),
    (
        "tandoor.yaml",
        include_str!("../../../catalog/tandoor.yaml"),
    ),
    ("vllm.yaml", include_str!("../../../catalog/vllm.yaml")),
    (
        "wagtail.yaml",
        include_str!("../../../catalog/wagtail.yaml"),
    ),
    (
        "weblate.yaml",
        include_str!("../../../catalog/weblate.yaml"),
    ),
    ("wger.yaml", include_str!("../../../catalog/wger.yaml")),
    ("zenml.yaml", include_str!("../../../catalog/zenml.yaml")),
    ("zulip.yaml", include_str!("../../../catalog/zulip.yaml")),
    (
        "servers.yaml",
        include_str!("../../../catalog/servers.yaml"),
    ),
    (
        "helpers.yaml",
        include_str!("../../../catalog/helpers.yaml"),
    ),
];
