#![no_main]
// The body is baton::edge::fuzz::task_attributes, which a unit test also runs over fuzz/seeds/task_attributes.
libfuzzer_sys::fuzz_target!(|data: &[u8]| baton::edge::fuzz::task_attributes(data));
