//! Operator tooling shipped in the `baton` binary.

pub mod loadgen;
