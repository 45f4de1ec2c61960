//! Fault tests: the faults a production deployment meets, injected deterministically
//! — `kill -9` of the real `baton serve` binary mid-load, Postgres cut under load (a TCP proxy
//! that resets its connections), a degraded Twilio (the stand-in's fault injection), and several
//! processes on one database with one killed. Each test asserts the invariants: every event
//! acknowledged with a 2xx is stored and processed exactly once, every outbound effect happens
//! exactly once at Twilio.

#[allow(dead_code)]
#[path = "../api/helpers.rs"]
mod helpers;

mod checks;
mod load;
mod proxy;
mod serve;

mod crash;
mod database;
mod processes;
