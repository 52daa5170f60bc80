//! End-to-end test helpers for openrouter-auth (see `tests/`).
#![forbid(unsafe_code)]
