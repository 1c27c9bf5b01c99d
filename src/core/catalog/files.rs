//! The catalog files built into pytune, in matching order: applications (by name), then the
//! generic servers, then the non-Python helpers. A test checks every file under `catalog/` is here.

pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "argilla.yaml",
        include_str!("../../../catalog/argilla.yaml"),
    ),
    (
        "authentik.yaml",
        include_str!("../../../catalog/authentik.yaml"),
    ),
    ("ckan.yaml", include_str!("../../../catalog/ckan.yaml")),
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
    ("pretix.yaml", include_str!("../../../catalog/pretix.yaml")),
    ("ray.yaml", include_str!("../../../catalog/ray.yaml")),
    ("saleor.yaml", include_str!("../../../catalog/saleor.yaml")),
    (
        "streamlit.yaml",
        include_str!("../../../catalog/streamlit.yaml"),
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
