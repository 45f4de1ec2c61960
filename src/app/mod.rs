//! Configuration, startup and shutdown, telemetry, and the wiring of edge, store and domain.

pub mod backfill;
pub mod backfill_command;
pub mod cli;
pub mod configuration;
pub mod confirm;
pub mod dispatcher;
pub mod history_command;
pub mod insights_backfill;
pub mod orphans;
pub mod processor;
pub mod reconcile;
pub mod retention;
pub mod startup;
pub mod table;
pub mod telemetry;
pub mod workflow_command;
