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
//! Drain outputs, wait until the next deadline or event, feed what happened; repeat until
//! [`Output::Finished`]. The loop below keeps the shell's duties; each is spelled out in
//! [The shell's duties](#the-shells-duties).
//!
//! ```no_run
//! use openrouter_auth_core::{Flow, FlowConfig, Handled, Input, Output, Time, HttpResponse};
//! # use rand_core::{CryptoRng, RngCore};
//! # fn os_csprng() -> impl CryptoRng + RngCore { rand_chacha_stub() }
//! # fn rand_chacha_stub() -> Stub { Stub }
//! # struct Stub; impl RngCore for Stub { fn next_u32(&mut self)->u32{0} fn next_u64(&mut self)->u64{0} fn fill_bytes(&mut self, _: &mut [u8]){} } impl CryptoRng for Stub {}
//! # fn now() -> Time { Time::ZERO }
//! # fn bind_loopback_listener() -> (u16, bool) { (0, true) }
//! # fn wait_for_events_until(_: Option<Time>) -> Vec<Input> { Vec::new() }
//! # fn print_and_open_browser(_: &url::Url) {}
//! # fn write_and_close(_: openrouter_auth_core::ConnectionId, _: Vec<u8>) {}
//! # fn flush_pending_writes() {}
//! # fn start_http_request(_: openrouter_auth_core::ExchangeId, _: openrouter_auth_core::HttpRequest) {}
//! # fn start_storing(_: &openrouter_auth_core::ApiKey) {}
//! # fn log(_: Handled) {}
//! # fn main() -> Result<(), openrouter_auth_core::ConfigError> {
//! // Refuses a base URL that would carry secrets unencrypted.
//! let mut flow: Flow = Flow::new(FlowConfig::default(), &mut os_csprng(), now())?;
//! // 127.0.0.1 and ::1 on one free port; `ipv6` false only where IPv6 is not available.
//! let (port, ipv6) = bind_loopback_listener();
//! log(flow.handle_input(Input::ListenerBound { port, ipv6 }, now()));
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
//!             _ => {} // `Output` is `#[non_exhaustive]`: a later version may add outputs
//!         }
//!     }
//!     if let Some(outcome) = finished {
//!         break outcome;
//!     }
//!     // Requests, closed connections, exchange answers, store results, pastes and cancels
//!     // arrive as inputs; otherwise wake at the flow's deadline.
//!     for input in wait_for_events_until(flow.poll_timeout()) {
//!         log(flow.handle_input(input, now()));
//!     }
//!     if flow.poll_timeout().is_some_and(|t| t <= now()) {
//!         log(flow.handle_timeout(now()));
//!     }
//! };
//! flush_pending_writes(); // the last `/done` page
//! # let _ = outcome;
//! # Ok(())
//! # }
//! ```
//!
//! # The shell's duties
//!
//! The core decides; the shell does what it says and must keep these rules, which the core
//! cannot check:
//!
//! 1. **Treat every connection as hostile** (RFC 8252 section 8.3: any local process and any
//!    web page the user opens can reach the listener). Listen on loopback only (127.0.0.1
//!    and ::1, one port), never on all interfaces. Read at most **16 KiB** of request head
//!    and at most **64 header fields**, and give each connection **10 seconds** to send its
//!    head; answer a longer head with [`Page::HeadTooLarge`], a slow one with
//!    [`Page::RequestTimeout`], and more connections than you serve with [`Page::Busy`],
//!    without feeding them to the flow. Pass the `Host` header in
//!    [`BrowserRequest::host`] (or [`RequestHead::host`], for [`Flow::handle_request`]:
//!    the head borrowed from your read buffer, no copy) only when there was **exactly one**
//!    (`None` otherwise: the flow then answers 421). Serve connections concurrently: an idle preconnect must never
//!    hold up the real callback. One request per connection, then close.
//! 2. **Fire deadlines even while inputs keep arriving.** Once [`Flow::poll_timeout`] has
//!    passed, call [`Flow::handle_timeout`] (after feeding the inputs you have): inputs never
//!    fire a deadline, so a flow fed a steady stream of stray requests would otherwise never
//!    time out. `poll_timeout` is `None` while the key is being stored (the store result
//!    ends that phase; the flow sets no deadline on it) and after [`Output::Finished`].
//! 3. **Carry out every output, in order**, and answer each [`Output::SendExchange`] and
//!    [`Output::StoreKey`] with exactly one input carrying its result.
//! 4. **Say honestly whether a failed exchange may have been sent.** In
//!    [`Input::ExchangeFailed`], `may_have_been_sent` is `false` only when the request
//!    certainly never left this machine: the name did not resolve, the connection was
//!    refused, the TLS handshake failed, or the request could not be built. A timeout, a
//!    connection closed while waiting, or an answer cut off is `true`. Only an unsent code is
//!    sent again: an authorization code is single use, so a retry after a request that may
//!    have arrived can only fail and may orphan a key that was created (RFC 6749 section
//!    4.1.2; OpenRouter's guide, step 2).
//! 5. **Flush the last responses before exiting.** `Finished` comes in the same batch as the
//!    last result page on `/done`, queued just before it: carry out the whole batch and let
//!    pending writes reach the browser (within a short grace period) before closing the
//!    listener, or the user's tab shows a connection error instead of the result.
//! 6. **Keep secrets secret.** The `code_verifier`, the authorization code (in request targets
//!    and pastes) and the API key are zeroized on drop and redacted in `Debug`; do not log
//!    [`HttpRequest`] bodies or request targets, and show the key only where the user asked
//!    for it.
//!
//! # Modules
//!
//! - [`app`]: the embedding app's display name and `User-Agent` product.
//! - [`pkce`]: `code_verifier`, `code_challenge`, `code_challenge_method` (RFC 7636).
//! - [`authorize`]: the authorization URL, `key_label`, `callback_url`
//!   (<https://openrouter.ai/docs/use-cases/oauth-pkce>, step 1).
//! - [`callback`]: classifying request targets that reach the listener (RFC 8252 section 7.3).
//! - [`exchange`]: the code exchange codec (`POST /api/v1/auth/keys`, ibid., step 2).
//! - [`key_info`]: the key check codec (`GET /api/v1/key`,
//!   <https://openrouter.ai/docs/api/api-reference/api-keys/get-current-key>).
//! - [`page`]: every HTTP response the browser can get.
//! - [`flow`]: the state machine that ties them together.
//! - [`error`]: why a flow failed, sorted by who must act.
//! - [`secret`]: the secret newtypes (redacted, zeroized).
//!
//! Determinism: with the same seeded RNG, the same inputs and the same times, two runs give
//! byte-identical URLs, requests and pages.
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]
#![deny(clippy::disallowed_methods, clippy::disallowed_types)]

pub mod app;
pub mod authorize;
pub mod callback;
pub mod error;
pub mod exchange;
pub mod flow;
pub mod http;
pub mod key_info;
pub mod page;
pub mod pkce;
pub mod secret;
pub mod time;

pub use app::{AppName, AppNameError, ProductToken};
pub use authorize::{
    authorization_url, base_url_is_secure, callback_url, CallbackHost, KeyLabel, KeyLabelError,
    DEFAULT_BASE_URL,
};
pub use callback::{
    classify_request, parse_callback, CallbackError, CallbackTarget, RequestClass, RequestHead,
};
pub use error::{FlowError, NetworkError, OpenRouterError, Party, ProgramError, UserError};
pub use exchange::{exchange_request, parse_exchange_response, ExchangeSuccess};
pub use flow::{
    host_is_ours, BrowserRequest, ConfigError, ConnectionId, ExchangeId, Flow, FlowConfig, Handled,
    Ignored, Input, Outcome, Output, Phase, StoreFailure,
};
pub use http::{user_agent, HttpMethod, HttpRequest, HttpResponse, USER_AGENT};
pub use key_info::{
    key_check_request, parse_key_info, reachability_request, KeyCheckError, KeyInfo,
};
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
    if a.len() != b.len() {
        return false;
    }
    // Every byte is looked at whatever the others hold (no early exit, and the loop
    // vectorises); `subtle` keeps the compiler from turning the one test at the end into a
    // branch on the data. `subtle`'s own slice comparison hides every byte from the
    // optimiser instead, about ten times slower on a 43-byte nonce.
    let diff = a.iter().zip(b).fold(0u8, |d, (x, y)| d | (x ^ y));
    bool::from(diff.ct_eq(&0))
}
