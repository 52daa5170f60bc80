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
//!   `openrouter-auth = { version = "0.1", default-features = false, features = ["reqwest"] }`
//!   (add `"tokio"` for [`login_async`]).
//!
//! ```no_run
//! use openrouter_auth::{login, CancelHandle, LoginEvent, LoginOptions, StoreEnv};
//! // The library reads no environment unless given it: here, where the user's home is.
//! let options = LoginOptions::default().store_env(StoreEnv::from_process());
//! let mut show = |e: LoginEvent| {
//!     if let LoginEvent::AuthorizationUrl { url, .. } = e {
//!         eprintln!("Open {url} to sign in");
//!     }
//! };
//! match login(&options, &mut show, &CancelHandle::new()) {
//!     Ok(done) => eprintln!("signed in: {}, stored in {}", done.key.hint(), done.stored[0].description),
//!     Err(e) => eprintln!("sign-in failed: {e}"),
//! }
//! ```
//!
//! # Examples
//!
//! Each one signs in against OpenRouter, or against the emulator when
//! `OPENROUTER_AUTH_BASE_URL` says so; the tests run them (io/tests/examples_*).
//!
//! The blocking one-liner, keeping the key in this tool's credentials file
//! (`examples/blocking_sign_in.rs`):
//!
#![cfg_attr(
    feature = "reqwest",
    doc = concat!("```no_run\n", include_str!("../examples/blocking_sign_in.rs"), "```")
)]
//!
//! A tokio app that keeps the key in its own store and sends every request through its own
//! `reqwest::Client` (`examples/tokio_app.rs`):
//!
#![cfg_attr(
    all(feature = "reqwest", feature = "tokio"),
    doc = concat!("```no_run\n", include_str!("../examples/tokio_app.rs"), "```")
)]
#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// The modules are private: every public item has one path, at the crate root.
mod browser;
mod detect;
#[doc(hidden)] // the loopback server's request-head parser, for the sim crate's fuzz bodies
pub mod head;
mod key_check;
mod label;
mod login;
mod rng;
mod server;
mod store;
#[doc(hidden)] // terminal-safe text, for the `openrouter-auth` command (a separate crate)
pub mod terminal;
mod transport;

pub use detect::{headless_reason, EnvSnapshot, HeadlessReason, CONTAINER_MARKERS};
#[cfg(feature = "reqwest")]
pub use key_check::check_key;
pub use key_check::{check_key_async, check_key_with, KeyCheckFailure, KEY_CHECK_TIMEOUT};
pub use label::{default_key_label, key_label_for};
#[cfg(feature = "tokio")]
pub use login::login_async;
pub use login::{
    login, store_existing_key, AskReplace, CancelHandle, ExistingKey, KeyDestination, LoginError,
    LoginEvent, LoginHandle, LoginObserver, LoginOptions, LoginOutcome, ReplacePolicy,
    SharedKeyStore, StoreAttempt,
};
pub use openrouter_auth_core as core;
pub use rng::{new_flow, os_rng};
pub use server::{
    BindError, IpFamily, LoopbackServer, MAX_CONNECTIONS, MAX_HEADERS, MAX_HEAD_BYTES,
    MAX_PORT_TRIES, READ_DEADLINE, WRITE_DEADLINE,
};
pub use store::{
    check_replaceable, keyring_name, open_store, readable_by_others, CredentialsFileStore,
    CrushStore, DotenvStore, GooseStore, KeyMeta, KeyStore, KeyringStore, LlmStore, OpencodeStore,
    ReadableByOthers, Replace, SeenKey, StdoutStore, StoreEnv, StoreError, StoreReport, StoreSpec,
    CRUSH_GLOBAL_DATA_VAR, DOTENV_VAR, GOOSE_DISABLE_KEYRING_VAR, GOOSE_KEYRING_ACCOUNT,
    GOOSE_KEYRING_SERVICE, GOOSE_KEY_NAME, GOOSE_PATH_ROOT_VAR, KEYRING_ACCOUNT, KEYRING_SERVICE,
    KEYRING_SERVICE_VAR, KEYRING_SUPPORTED, LLM_KEY_NAME, LLM_USER_PATH_VAR, STORE_SPEC_FORMS,
};
#[cfg(feature = "reqwest")]
pub use transport::{async_client, async_client_builder, blocking_client, blocking_client_builder};
pub use transport::{
    AsyncTransport, SendFuture, Transport, TransportError, CONNECT_TIMEOUT, MAX_BODY_BYTES,
};
// The crates in this crate's public signatures, at the versions it was built with.
pub use rand_core;
pub use url;
pub use zeroize;

// The READMEs' Rust snippets are compiled as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct IoReadme;
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct WorkspaceReadme;
