//! The rules of each API action, below the HTTP edge: transfers and parks. The `/api/v1`
//! handlers, the processor and the timers call them; they reach Postgres through `store`,
//! Twilio through `twilio`, and decide with `domain`.

pub mod parks;
pub mod transfers;
