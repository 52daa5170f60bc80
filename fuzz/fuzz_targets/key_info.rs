//! Body: `openrouter_auth_oracle::key_info` (also run over the seed corpus by `cargo test`).
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| openrouter_auth_oracle::key_info(data));
