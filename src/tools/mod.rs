//! Operator tooling shipped in the `baton` binary.

pub mod e2e;
pub mod loadgen;
