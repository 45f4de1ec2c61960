//! HTTP-level and database-level tests against a real Postgres (one fresh database per test).

mod backfill;
mod beside;
mod cli;
mod console;
mod contract;
mod demo;
mod flex;
mod helpers;
mod history;
mod hostile;
mod ingest;
mod insights;
mod interleavings;
mod openapi;
mod orphans;
mod outbox;
mod parks;
mod processor;
mod shutdown;
mod transfers;
mod workflow;
