//! The catalog files built into pytune, in matching order: applications (by name), then the
//! generic servers, then the non-Python helpers. A test checks every file under `catalog/` is here.

pub const EMBEDDED: &[(&str, &str)] = &[
    (
        "servers.yaml",
        include_str!("../../../catalog/servers.yaml"),
    ),
    (
        "helpers.yaml",
        include_str!("../../../catalog/helpers.yaml"),
    ),
];
