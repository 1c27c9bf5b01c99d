//! The pure core: Pod + policy + context → a plan of changes, each with its reason → JSON Patch.
//!
//! Nothing here does I/O: no network, no files, no async runtime. The webhook and the CLI feed it
//! Pods and policies they read, and render what it returns.

pub mod catalog;
pub mod detect;
pub mod engine;
pub mod learned;
pub mod policy;
pub mod profile;
pub mod quantity;
pub mod recommend;
