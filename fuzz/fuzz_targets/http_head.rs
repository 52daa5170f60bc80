//! Body: `openrouter_auth_sim::http_head::http_head` (also run over the seed corpus by `cargo test`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| openrouter_auth_sim::http_head::http_head(data));
