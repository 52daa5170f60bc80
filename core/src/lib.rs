//! "Sign in with OpenRouter" as a pure state machine: OAuth 2.0 authorization code with PKCE
//! (RFC 7636) for native apps (RFC 8252), against OpenRouter's `/auth` and
//! `/api/v1/auth/keys`.
//!
//! This crate does no IO. It opens no socket, reads no file, reads no clock, draws no random
//! number of its own, spawns no thread and prints nothing. Time comes in as a [`Time`] with
//! every input; randomness comes in as a caller-supplied CSPRNG (`rand_core`). The shells in
//! the `openrouter-auth` crate (a mio loopback server, reqwest, key stores, a CLI) drive it;
//! an embedder with another runtime can drive it directly with the loop below.
//!
//! # The driving loop
//!
//! Drain outputs, wait until the next deadline or event, feed one input; repeat until
//! [`Output::Finished`].
//!
//! ```no_run
//! use openrouter_auth_core::{Flow, FlowConfig, Input, Output, Time, HttpResponse};
//! # use rand_core::{CryptoRng, RngCore};
//! # fn os_csprng() -> impl CryptoRng + RngCore { rand_chacha_stub() }
//! # fn rand_chacha_stub() -> Stub { Stub }
//! # struct Stub; impl RngCore for Stub { fn next_u32(&mut self)->u32{0} fn next_u64(&mut self)->u64{0} fn fill_bytes(&mut self, _: &mut [u8]){} } impl CryptoRng for Stub {}
//! # fn now() -> Time { Time::ZERO }
//! # fn bind_loopback_listener() -> u16 { 0 }
//! # enum Event { Input(Input), Timeout }
//! # fn wait_for_event_until(_: Option<Time>) -> Event { Event::Timeout }
//! # fn print_and_open_browser(_: &url::Url) {}
//! # fn write_and_close(_: openrouter_auth_core::ConnectionId, _: Vec<u8>) {}
//! # fn start_http_request(_: openrouter_auth_core::ExchangeId, _: openrouter_auth_core::HttpRequest) {}
//! # fn start_storing(_: &openrouter_auth_core::ApiKey) {}
//! let mut flow = Flow::new(FlowConfig::default(), &mut os_csprng(), now());
//! let port = bind_loopback_listener(); // 127.0.0.1 and ::1, port 0
//! flow.handle_input(Input::ListenerBound { port }, now());
//! let outcome = loop {
//!     let mut finished = None;
//!     while let Some(output) = flow.poll_output() {
//!         match output {
//!             Output::OpenBrowser { url } | Output::PromptForCode { url } => print_and_open_browser(&url),
//!             Output::Respond { conn, response, head_only } => write_and_close(conn, response.encode(head_only)),
//!             Output::SendExchange { id, request, .. } => start_http_request(id, request),
//!             Output::StoreKey { key, .. } => start_storing(&key),
//!             Output::PasteRejected { reason } => eprintln!("{reason}"),
//!             Output::Finished(outcome) => finished = Some(outcome),
//!         }
//!     }
//!     if let Some(outcome) = finished {
//!         break outcome;
//!     }
//!     // Requests, closed connections, exchange answers, store results and cancels arrive
//!     // as events; otherwise wake at the flow's deadline.
//!     match wait_for_event_until(flow.poll_timeout()) {
//!         Event::Input(input) => flow.handle_input(input, now()),
//!         Event::Timeout => flow.handle_timeout(now()),
//!     }
//! };
//! # let _ = outcome;
//! ```
//!
//! # Modules
//!
//! - [`pkce`]: `code_verifier`, `code_challenge`, `code_challenge_method` (RFC 7636).
//! - [`authorize`]: the authorization URL, `key_label`, `callback_url`
//!   (<https://openrouter.ai/docs/use-cases/oauth-pkce>, step 1).
//! - [`callback`]: classifying request targets that reach the listener (RFC 8252 section 7.3).
//! - [`exchange`]: the code exchange codec (`POST /api/v1/auth/keys`, ibid., step 2).
//! - [`key_info`]: the key check codec (`GET /api/v1/key`,
//!   <https://openrouter.ai/docs/api/api-reference/api-keys/get-current-key>).
//! - [`page`]: every HTTP response the browser can get.
//! - [`flow`]: the state machine that ties them together.
//! - [`secret`]: the secret newtypes (redacted, zeroized).
//!
//! Determinism: with the same seeded RNG, the same inputs and the same times, two runs give
//! byte-identical URLs, requests and pages.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

pub mod authorize;
pub mod callback;
pub mod exchange;
pub mod flow;
#[cfg(feature = "fuzzing")]
pub mod fuzzing;
pub mod http;
pub mod key_info;
pub mod page;
pub mod pkce;
pub mod secret;
pub mod time;

pub use authorize::{
    authorization_url, base_url_is_secure, callback_url, CallbackHost, KeyLabel, KeyLabelError,
    DEFAULT_BASE_URL,
};
pub use callback::{parse_callback, CallbackError, CallbackTarget};
pub use exchange::{exchange_request, parse_exchange_response, ExchangeError, ExchangeSuccess};
pub use flow::{
    host_is_ours, BrowserRequest, ConnectionId, ExchangeId, Flow, FlowConfig, FlowError, Input,
    Outcome, Output, Party, Phase,
};
pub use http::{HttpMethod, HttpRequest, HttpResponse, USER_AGENT};
pub use key_info::{key_check_request, parse_key_info, KeyCheckError, KeyInfo};
pub use page::{BrowserResponse, Page};
pub use pkce::{CodeChallenge, CodeChallengeMethod, CodeVerifier, VerifierError};
pub use secret::{ApiKey, AuthorizationCode, FlowNonce};
pub use time::Time;

// The crates in this crate's public signatures, at the versions it was built with.
pub use rand_core;
pub use url;
pub use zeroize;

pub(crate) fn b64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}
