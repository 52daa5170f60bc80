//! Sign in with OpenRouter from a program on the user's machine: OAuth 2.0 authorization code
//! with PKCE (RFC 7636) for native apps (RFC 8252), ending with an OpenRouter API key stored
//! where the user's tools look for it.
//!
//! This crate is the IO shell around the pure state machine in `openrouter-auth-core`: a
//! loopback HTTP server on mio + httparse (127.0.0.1 and ::1, any free port, bounded in bytes,
//! headers, connections and time), the code exchange over reqwest (rustls), the system
//! browser, key stores, and the `openrouter-auth` command. It makes no sign-in decision of its
//! own.
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

pub mod browser;
pub mod detect;
#[doc(hidden)]
pub mod head;
pub mod key_check;
pub mod label;
pub mod login;
pub mod server;
pub mod store;
pub mod transport;

pub use detect::{headless_reason, EnvSnapshot, HeadlessReason};
pub use key_check::{check_key, KeyCheckFailure};
pub use label::default_key_label;
#[cfg(feature = "tokio")]
pub use login::login_async;
pub use login::{
    login, CancelHandle, LoginError, LoginEvent, LoginHandle, LoginObserver, LoginOptions,
    LoginOutcome,
};
pub use openrouter_auth_core as core;
pub use server::{BindError, LoopbackServer};
pub use store::{open_store, KeyMeta, KeyStore, StoreEnv, StoreError, StoreReport, StoreSpec};
