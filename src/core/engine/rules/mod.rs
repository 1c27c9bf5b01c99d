//! The rules: each adds what a target container lacks in one area, with its reason.

pub mod env;
pub mod lifecycle;
pub mod lint;
pub mod probes;
pub mod record;
pub mod resources;
pub mod sizing;
