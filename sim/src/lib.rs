//! OpenRouter emulator, deterministic simulator and demo for openrouter-auth.
#![forbid(unsafe_code)]

pub mod emulator;
pub mod http_head;
pub mod simulator;
