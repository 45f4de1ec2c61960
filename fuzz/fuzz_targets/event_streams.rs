#![no_main]
// The body is baton::edge::fuzz::event_streams, which a unit test also runs over fuzz/seeds/event_streams.
libfuzzer_sys::fuzz_target!(|data: &[u8]| baton::edge::fuzz::event_streams(data));
