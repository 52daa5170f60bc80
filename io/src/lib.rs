//! Sign in with OpenRouter: the IO shell around `openrouter-auth-core`.
#![forbid(unsafe_code)]
