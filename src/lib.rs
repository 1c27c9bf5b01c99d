//! pytune: production defaults for Python services on Kubernetes, as a mutating admission webhook.
//!
//! Three layers, one way: [`core`] is a pure function from Pod + [`core::policy::Policy`] +
//! [`core::engine::Context`] to a [`core::engine::Plan`]; [`webhook`] serves it over HTTPS to the
//! API server; [`cli`] runs it over manifests and live clusters. [`cluster`] holds the reads from
//! the Kubernetes API that both outer layers share.

pub mod cli;
pub mod cluster;
pub mod core;
pub mod webhook;
