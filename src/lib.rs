//! baton: a durable server-side companion to Twilio Flex. It ingests TaskRouter, Conversations
//! and Event Streams callbacks into a Postgres inbox, keeps the state of every task, transfer
//! chain and park, and finishes what transfers leave behind through Twilio's REST APIs.
//!
//! Layers, each importing only those below it: [`app`] (configuration, startup, workers, CLI)
//! → [`edge`] (HTTP: routes, authentication, errors to statuses) → [`ingest`] (signatures,
//! parsing, inbox rows) and [`services`] (the rules of each API action) → [`store`] (all SQL) /
//! [`twilio`] (the REST client) / [`domain`] (pure state machines and decisions). The load and
//! benchmark tools are the `baton-load` crate (`crates/baton-load`).

pub mod app;
pub mod domain;
pub mod edge;
pub mod ingest;
pub mod services;
pub mod store;
pub mod twilio;
