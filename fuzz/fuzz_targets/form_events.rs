#![no_main]
// The body is baton::edge::fuzz::form_events, which a unit test also runs over fuzz/seeds/form_events.
libfuzzer_sys::fuzz_target!(|data: &[u8]| baton::edge::fuzz::form_events(data));
