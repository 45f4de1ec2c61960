//! Operator tooling shipped in the `baton` binary.

pub mod e2e;
pub mod history_bench;
pub mod http1;
pub mod loadgen;
