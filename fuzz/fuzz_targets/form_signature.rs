#![no_main]
// The body is baton::edge::fuzz::form_signature, which a unit test also runs over fuzz/seeds/form_signature.
libfuzzer_sys::fuzz_target!(|data: &[u8]| baton::edge::fuzz::form_signature(data));
