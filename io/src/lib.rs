//! Sign in with OpenRouter from a program on the user's machine: OAuth 2.0 authorization code
//! with PKCE (RFC 7636) for native apps (RFC 8252), ending with an OpenRouter API key stored
//! where the user's tools look for it.
//!
//! This crate is the IO shell around the pure state machine in `openrouter-auth-core`: a
//! loopback HTTP server on mio + httparse (127.0.0.1 and ::1, any free port, bounded in bytes,
//! headers, connections and time), the code exchange over any HTTP client (the [`Transport`]
//! and [`AsyncTransport`] traits; reqwest with rustls and the operating system's trust store by
//! default), the system browser, key stores, and the `openrouter-auth` command. It makes no
//! sign-in decision of its own.
//!
//! # Features
//!
//! - `reqwest` (default): the default HTTP client, and [`Transport`] / [`AsyncTransport`] for
//!   `reqwest::blocking::Client` / `reqwest::Client`. Without it, set
//!   [`LoginOptions::transport`] (or `async_transport`) to your own client.
//! - `tokio` (default): [`login_async`].
//! - `keyring` (default): the system keyring store.
//! - `cli` (default): the `openrouter-auth` command and the crates only it uses (clap,
//!   indicatif, ctrlc, tracing-subscriber, qrcode). An embedder turns the defaults off:
//!   `openrouter-auth = { version = "0.1", default-features = false, features = ["reqwest"] }`.
//!
//! ```no_run
//! use openrouter_auth::{login, CancelHandle, LoginEvent, LoginOptions};
//! let options = LoginOptions::default();
//! let mut show = |e: LoginEvent| {
//!     if let LoginEvent::AuthorizationUrl { url, .. } = e {
//!         eprintln!("Open {url} to sign in");
//!     }
//! };
//! match login(&options, &mut show, &CancelHandle::new()) {
//!     Ok(done) => eprintln!("signed in: {}, stored in {}", done.key.hint(), done.stored.description),
//!     Err(e) => eprintln!("sign-in failed: {e}"),
//! }
//! ```
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod browser;
pub mod detect;
#[doc(hidden)]
pub mod head;
pub mod key_check;
pub mod label;
pub mod login;
mod rng;
pub mod server;
pub mod store;
pub mod terminal;
pub mod transport;

pub use detect::{headless_reason, EnvSnapshot, HeadlessReason};
#[cfg(feature = "reqwest")]
pub use key_check::check_key;
pub use key_check::{check_key_async, check_key_with, KeyCheckFailure};
pub use label::default_key_label;
#[cfg(feature = "tokio")]
pub use login::login_async;
pub use login::{
    login, CancelHandle, LoginError, LoginEvent, LoginHandle, LoginObserver, LoginOptions,
    LoginOutcome,
};
pub use openrouter_auth_core as core;
pub use rng::{new_flow, os_rng};
pub use transport::{AsyncTransport, Transport, TransportError};
// The crates in this crate's public signatures, at the versions it was built with.
pub use rand_core;
pub use server::{BindError, IpFamily, LoopbackServer};
pub use store::{open_store, KeyMeta, KeyStore, StoreEnv, StoreError, StoreReport, StoreSpec};
pub use url;
pub use zeroize;
