//! Transfer chains: the tasks that served one customer conversation, root → hop → hop.
//!
//! A chain is a *function of the facts*: [`derive_chains`] takes the tasks of a connected
//! component (with their reservations) and returns the chain, and [`decide`] the actions it
//! calls for. Neither looks at the order events arrived in, so duplicated, late and reordered
//! deliveries converge to the same chain (property-tested), and a decision made twice is the
//! same decision (its idempotency key is a function of the chain).
//!
//! [`model`]: what a chain is made of; [`derive`]: the chain of a set of tasks; [`decide`]:
//! what a chain calls for, and the Twilio call of each.

pub mod decide;
pub mod derive;
pub mod model;
#[cfg(test)]
mod tests;

pub use decide::{decide, is_rescue, Action, CompleteOn, Once};
pub use derive::derive_chains;
pub use model::{links, Chain, ChainTask, Hop, HopOutcome, ReservationNode, TaskNode};
