//! baton: a durable server-side companion to Twilio Flex. It ingests TaskRouter, Conversations
//! and Event Streams callbacks into a Postgres inbox, keeps the state of every task, transfer
//! chain and park, and finishes what transfers leave behind through Twilio's REST APIs.
//!
//! Layers (one module each): [`edge`] (HTTP, signatures, parsing) → [`domain`] (pure state
//! machines) → [`store`] (Postgres) ; [`app`] wires them. The load and benchmark tools are the
//! `baton-load` crate (`crates/baton-load`).

pub mod app;
pub mod domain;
pub mod edge;
pub mod store;
pub mod twilio;
