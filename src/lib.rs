//! pytune: production defaults for Python services on Kubernetes, as a mutating admission webhook.
//!
//! The [`engine`] is a pure function from Pod + [`policy::Policy`] + [`engine::Context`] to a
//! [`engine::Plan`]; everything else (the webhook server, the `mutate` and `audit` commands) is a
//! thin layer around it.

pub mod admin;
pub mod admission;
pub mod audit;
pub mod cluster;
pub mod configmaps;
pub mod detect;
pub mod discovery;
pub mod engine;
pub mod json_text;
pub mod logging;
pub mod manifests;
pub mod metrics;
pub mod mutate;
pub mod policy;
pub mod quantity;
pub mod reload;
pub mod selfsigned;
pub mod serve;
pub mod server;
pub mod tls;
