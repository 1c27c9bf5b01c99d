//! The webhook shell: HTTPS, review decoding and answers, certificates, reloads, the admin port,
//! metrics and the cluster facts the engine is given. The decisions are the core's.

pub mod admin;
pub mod body;
pub mod discovery;
pub mod env_from;
pub mod http;
pub mod learned;
pub mod logging;
pub mod lookups;
pub mod metrics;
pub mod reload;
pub mod review;
pub mod selfsigned;
pub mod serve;
pub mod tasks;
pub mod tls;
pub mod unreadable;
