//! The domain: typed events and the state machines built from them. Pure: no I/O, no actix,
//! no sqlx, so every rule is unit- and property-testable.

pub mod chain;
pub mod csv;
pub mod event;
pub mod facts;
pub mod guard;
pub mod history;
pub mod insights;
pub mod invites;
pub mod orphan;
pub mod outbound;
pub mod paging;
pub mod park;
pub mod paths;
pub mod planned;
pub mod retry;
pub mod sid;
pub mod transfer;
pub mod workflow;
