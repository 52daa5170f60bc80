//! The sign-in flow: one state machine, every transition in one table ([`Flow`]'s `step`).
//!
//! ```text
//!                ListenerBound
//!   Init ───────────────────────▶ AwaitingCallback ───────────────────────▶ Exchanging ◀──┐
//!    │  (headless flows start in      │   a code on /callback/<nonce>,        │  │  │      │ retry due
//!    │   AwaitingCallback and         │   or a pasted redirect URL or code    │  │  └──────┘ (after a
//!    │   prompt for a code)           │                                       │  │   failure not sent)
//!    │                                │ error= on our path, timeout, cancel,  │  │ 200 + key
//!    │ cancel, timeout                │ pastes closed (headless)              │  ▼
//!    │                                │                 exchange error,       │ Storing
//!    │                                │                 timeout, cancel       │  │ KeyStored,
//!    │                                ▼                                       │  │ KeyNotStored
//!    └─────────────────────▶ Lingering { outcome } ◀──────────────────────────┘◀─┘
//!                                     │ each tab sent to /done fetched it, or DONE_LINGER
//!                                     │ passed (at once when no tab was held)
//!                                     ▼
//!                            Finished { outcome }
//! ```
//!
//! In headless mode a pasted code that OpenRouter refuses with 403 `Invalid code or
//! code_verifier` was never accepted (no key exists): the flow goes back to
//! `AwaitingCallback` with an [`Output::PasteRejected`] saying so, and the user may paste the
//! right code, exchanged with the same `code_verifier`, up to [`MAX_PASTED_CODES`] pasted
//! codes in all; a code already refused is not sent again. Any other exchange error, and the
//! last refusal, end the flow.
//!
//! `Lingering` and `Finished` are the ended phases ([`Phase::Lingering`],
//! [`Phase::Finished`]); [`Flow::outcome`] says how the flow ended. They are sticky: later
//! inputs change neither the phase nor the outcome (stray requests still get their small
//! answers; a `/done` fetch may end the linger), and [`Flow::handle_input`] reports them as
//! [`Handled::Ignored`] with [`Ignored::Ended`].
//!
//! A browser request on the flow's own path that carries a code is held (in `Exchanging`
//! and `Storing`, at most [`MAX_HELD_CONNECTIONS`]) until the result is known. One that
//! carries `error=` ends a waiting flow with [`FlowError::denied`] at once (during the
//! exchange it is held like a code). Either way, when the flow ends, each held request is
//! answered with a 303 See Other to the clean `/callback/<nonce>/done`, so neither the code
//! nor the error and its description stay in the address bar; `/done` shows the result page
//! (signed in, denied, failed, …). The flow then lingers up to [`DONE_LINGER`] for those
//! `/done` fetches, and emits [`Output::Finished`] with the [`Outcome`] once a `/done` page
//! has gone out for each redirect, or the linger ran out; with no request held (a paste, a
//! timeout or a cancel while waiting) it emits it at once. The last `/done` page and
//! `Finished` come out in the same batch: the shell must let that page reach the browser
//! before it exits.

use crate::app::{AppName, ProductToken};
use crate::authorize::{authorization_url, callback_url, CallbackHost, KeyLabel, DEFAULT_BASE_URL};
use crate::callback::{
    classify_request, parse_callback, CallbackTarget, Malformed, NotOurs, RequestClass,
    RequestHead, MAX_CODE_BYTES,
};
use crate::error::{FlowError, NetworkError, UserError};
use crate::exchange::{exchange_request, parse_exchange_response, ExchangeSuccess};
use crate::http::{HttpRequest, HttpResponse};
use crate::page::{BrowserResponse, Page};
use crate::pkce::{CodeChallenge, CodeChallengeMethod, CodeVerifier};
use crate::secret::{ApiKey, AuthorizationCode, FlowNonce};
use crate::time::Time;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::time::Duration;
use zeroize::Zeroizing;

/// How long the flow keeps serving after it ended, so the browser can load `/done`.
pub const DONE_LINGER: Duration = Duration::from_secs(5);

/// At most this many browser connections on our callback path are held open while the
/// exchange runs; more get an immediate "in progress" page.
pub const MAX_HELD_CONNECTIONS: usize = 16;

/// The first retry delay after an exchange that certainly never left this machine; doubled
/// on each retry, capped at [`MAX_RETRY_DELAY`].
pub const FIRST_RETRY_DELAY: Duration = Duration::from_millis(250);

/// The cap on the retry delay.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(4);

/// How many pasted codes a headless flow exchanges before a rejected one ends it: a code
/// OpenRouter refused with 403 `Invalid code or code_verifier` was never accepted, so the
/// user may paste the right one (with the same `code_verifier`) up to this many times in all.
pub const MAX_PASTED_CODES: u32 = 3;

/// What a user is told about a text that is not an authorization code.
const NOT_A_CODE: &str = "that is not an authorization code: a code is one word with no spaces \
(letters, digits, - or _), shown by OpenRouter after you approve; paste just the code, or the \
whole address it is in";

/// How a flow is set up. `Default` gives OpenRouter production, `localhost`, S256, no label,
/// 10 minutes to wait for the browser and 30 seconds for the exchange, the app name
/// `openrouter-auth` and no app product in the `User-Agent`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct FlowConfig {
    /// Where `/auth` and `/api/v1/auth/keys` live. Default `https://openrouter.ai`.
    pub base_url: url::Url,
    /// The host name in the `callback_url`. Default `localhost`; `127.0.0.1` is used anyway
    /// when the listener has no ::1 ([`Input::ListenerBound`] `ipv6: false`).
    pub callback_host: CallbackHost,
    /// The `key_label`; `None` lets OpenRouter pick (the app's name).
    pub key_label: Option<KeyLabel>,
    /// `S256` unless the caller explicitly opts into `plain`.
    pub code_challenge_method: CodeChallengeMethod,
    /// How long to wait for the callback (or a pasted code), from [`Flow::new`]. Default 600 s.
    pub callback_timeout: Duration,
    /// How long the code exchange may take, retries included. Default 30 s.
    pub exchange_timeout: Duration,
    /// Headless mode (OpenRouter's OAuth PKCE guide without a `callback_url`): no `callback_url`, no listener; the user pastes
    /// the code OpenRouter shows.
    pub headless: bool,
    /// The embedding app's display name, shown on every browser page ("you can return to
    /// `<app>`"). Default `openrouter-auth`.
    #[serde(default)]
    pub app_name: AppName,
    /// The app's own product in the `User-Agent` of the code exchange:
    /// `<product> openrouter-auth/<version>` ([`crate::user_agent`]). `None` (default): just
    /// `openrouter-auth/<version>`.
    #[serde(default)]
    pub product_token: Option<ProductToken>,
    /// A credit limit for the key OpenRouter creates, in US dollars (e.g. `5.0`), sent as the
    /// authorization URL's `limit` parameter (set the same way by OpenRouter's own SDK helper
    /// that builds this URL; see <https://openrouter.ai/docs/use-cases/oauth-pkce>). Worth
    /// setting for a headless sign-in on a shared or remote machine. Must be positive and
    /// finite ([`ConfigError::InvalidLimit`]). `None` (default): no limit.
    #[serde(default)]
    pub limit: Option<f64>,
}

impl Default for FlowConfig {
    fn default() -> Self {
        Self {
            base_url: url::Url::parse(DEFAULT_BASE_URL).expect("constant URL"),
            callback_host: CallbackHost::Localhost,
            key_label: None,
            code_challenge_method: CodeChallengeMethod::S256,
            callback_timeout: Duration::from_secs(600),
            exchange_timeout: Duration::from_secs(30),
            headless: false,
            app_name: AppName::default(),
            product_token: None,
            limit: None,
        }
    }
}

/// Identifies one browser connection; chosen by the shell, echoed back by the flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ConnectionId(pub u64);

/// Identifies one exchange attempt, so a stale answer is ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ExchangeId(pub u64);

/// A request head that reached the loopback listener, as the shell parsed it.
///
/// Deliberately exhaustive: the shell builds it with a struct expression; a new field would
/// be a breaking change.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowserRequest {
    /// The connection it came on.
    pub conn: ConnectionId,
    /// The method token, e.g. `GET`.
    pub method: String,
    /// The raw request target (path and query), e.g. `/callback/…?code=…`. May hold the code.
    pub target: Zeroizing<Vec<u8>>,
    /// The raw `Host` header value, if there was exactly one.
    pub host: Option<Vec<u8>>,
}

impl std::fmt::Debug for BrowserRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BrowserRequest")
            .field("conn", &self.conn)
            .field("method", &self.method)
            .field(
                "target",
                &format_args!("[{} bytes redacted]", self.target.len()),
            )
            .field(
                "host",
                &self.host.as_ref().map(|h| String::from_utf8_lossy(h)),
            )
            .finish()
    }
}

/// Why storing the key failed, as the shell reports it with [`Input::KeyNotStored`]. The
/// key is still handed out in [`Outcome::KeyNotStored`]; `message` says why in words (no
/// secrets) and is what [`Display`](std::fmt::Display) prints.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum StoreFailure {
    /// The store would not take the key as things stand and wrote nothing: its file is not
    /// in a form it can edit safely (unparseable, a symbolic link, not a regular file), the
    /// key cannot be written in its format, or it already holds a key it must not replace.
    #[error("{message}")]
    Refused {
        /// Why, in words.
        message: String,
    },
    /// There is nothing to store into: no keychain service, no home or configuration
    /// directory.
    #[error("{message}")]
    Unavailable {
        /// Why, in words.
        message: String,
    },
    /// Writing failed: an operating-system error (permissions, a full disk, a temporary file
    /// left behind), a keychain error, or a closed output.
    #[error("{message}")]
    WriteFailed {
        /// Why, in words.
        message: String,
    },
}

impl StoreFailure {
    /// The message, as displayed.
    pub fn message(&self) -> &str {
        match self {
            StoreFailure::Refused { message }
            | StoreFailure::Unavailable { message }
            | StoreFailure::WriteFailed { message } => message,
        }
    }
}

/// Everything that can happen to a flow. Pass with [`Flow::handle_input`].
///
/// `R` is whatever the shell wants back from a successful store (see [`Input::KeyStored`]);
/// the flow never looks inside it. It defaults to `()`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Input<R = ()> {
    /// The loopback listener is bound on `port` (on 127.0.0.1, and ::1 if available).
    ListenerBound {
        /// The port, e.g. 53122.
        port: u16,
        /// Whether `[::1]` is served on `port` too. `false` (IPv6 is not available on this
        /// machine) makes the `callback_url` name `127.0.0.1` whatever
        /// [`FlowConfig::callback_host`] says: a browser may resolve `localhost` to ::1, where
        /// any other program could listen on that port (RFC 8252 section 8.3).
        ipv6: bool,
    },
    /// A request head arrived.
    Request(BrowserRequest),
    /// A connection closed (the browser went away, or the shell dropped it).
    ConnectionClosed(ConnectionId),
    /// OpenRouter answered exchange `id`.
    ExchangeResponse {
        /// From [`Output::SendExchange`].
        id: ExchangeId,
        /// Status, headers, body.
        response: HttpResponse,
    },
    /// Exchange `id` failed without an answer.
    ExchangeFailed {
        /// From [`Output::SendExchange`].
        id: ExchangeId,
        /// `false` only if the request certainly never left this machine (DNS failure,
        /// connection refused, TLS handshake failed): only then may the code be sent again.
        /// A timeout or a connection lost while waiting is `true`. See the crate docs, "The
        /// shell's duties", rule 4.
        may_have_been_sent: bool,
        /// Short description for the user (no secrets).
        reason: String,
    },
    /// The key from [`Output::StoreKey`] was stored.
    KeyStored {
        /// Where, in words, for the result page and [`Outcome::Stored`], e.g.
        /// `credentials file /home/ana/.config/openrouter-auth/credentials.json`.
        location: String,
        /// The shell's own record of the store (a path, file mode, …), handed back untouched
        /// in [`Outcome::Stored`], so the shell needs no side channel to report it.
        report: R,
    },
    /// Storing the key failed; the key is still handed out in the [`Outcome`].
    KeyNotStored {
        /// Why.
        reason: StoreFailure,
    },
    /// The user pasted something: a redirect URL (`http://localhost:PORT/callback/<nonce>?code=…`)
    /// or a bare authorization code (the headless mode of
    /// <https://openrouter.ai/docs/use-cases/oauth-pkce>).
    Pasted(Zeroizing<String>),
    /// The source of pasted text closed (standard input reached its end): nothing more will
    /// be pasted. A headless flow still waiting for a code then ends with
    /// [`UserError::PastesClosed`]; a loopback flow keeps waiting for the browser.
    PastesClosed,
    /// Stop waiting. See [`Flow::handle_input`] for what happens in each phase.
    Cancel,
}

/// What the shell must do next. Pull with [`Flow::poll_output`] until `None`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Output<R = ()> {
    /// Print `url`, then open it in the system browser (RFC 8252 section 4).
    OpenBrowser {
        /// The authorization URL.
        url: url::Url,
    },
    /// Headless mode: print `url` for the user to open on any device and read a pasted code.
    PromptForCode {
        /// The authorization URL without `callback_url`.
        url: url::Url,
    },
    /// Write `response` on connection `conn`, then close it.
    Respond {
        /// The connection.
        conn: ConnectionId,
        /// The response; encode with `head_only` when the request was `HEAD`.
        response: BrowserResponse,
        /// The request was `HEAD`: send the head only.
        head_only: bool,
    },
    /// Send `request` to OpenRouter and answer with [`Input::ExchangeResponse`] or
    /// [`Input::ExchangeFailed`] carrying `id`. Give up after `timeout`.
    SendExchange {
        /// Echo this back.
        id: ExchangeId,
        /// Which attempt this is, from 1 (a retry after a failure that certainly was not
        /// sent is attempt 2, …).
        attempt: u32,
        /// The `POST /api/v1/auth/keys` request (holds secrets).
        request: HttpRequest,
        /// Time left for this attempt.
        timeout: Duration,
    },
    /// Store `key`, then answer with [`Input::KeyStored`] or [`Input::KeyNotStored`].
    StoreKey {
        /// The new key.
        key: ApiKey,
        /// OpenRouter's user id, if sent.
        user_id: Option<String>,
    },
    /// A pasted text was not accepted; the flow keeps waiting. Tell the user `reason`.
    PasteRejected {
        /// Why, in words.
        reason: String,
    },
    /// The flow is over and needs nothing more: report `outcome`.
    ///
    /// It can come in the same batch as the last [`Output::Respond`] (the result page on
    /// `/done`), which may be queued just before it: carry out every output of the batch and
    /// let pending responses reach the browser (flush them, within a grace period) before
    /// closing the listener and exiting.
    Finished(Outcome<R>),
}

/// The phase, for display and assertions. See the module doc for the diagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Phase {
    /// Waiting for [`Input::ListenerBound`].
    Init,
    /// Waiting for the browser (or a pasted code).
    AwaitingCallback,
    /// Exchanging the code for a key (including retry backoff).
    Exchanging,
    /// Waiting for the shell to store the key.
    Storing,
    /// Ended ([`Flow::outcome`] says how), still serving: browser tabs were sent a 303 to
    /// `/done` and the flow waits up to [`DONE_LINGER`] for each to fetch its result page.
    Lingering,
    /// Ended and [`Output::Finished`] emitted: the flow needs nothing more.
    Finished,
}

/// What [`Flow::handle_input`] or [`Flow::handle_timeout`] did with what it was given.
#[must_use = "an input the flow ignored may point at a bug in the shell: log it"]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Handled {
    /// The flow moved on: its phase changed, or it started, scheduled, held or released
    /// something (an exchange attempt, a retry, a browser connection, a `/done` fetch it
    /// was waiting for). Outputs may follow.
    Applied,
    /// A browser request got its answer (one [`Output::Respond`]) and nothing else changed:
    /// a stray or repeated request, a `HEAD`, a `/done` fetch nobody waited for, an "in
    /// progress" or "already finished" page.
    Answered,
    /// A pasted text was refused (one [`Output::PasteRejected`]); the flow keeps waiting.
    PasteRejected,
    /// Nothing changed and nothing was output.
    Ignored(Ignored),
}

/// Why an input or timeout changed nothing ([`Handled::Ignored`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Ignored {
    /// The flow has ended (phase [`Phase::Lingering`] or [`Phase::Finished`]): a late
    /// cancel, paste, store result, exchange answer, bind, closed connection, or a timeout
    /// after [`Output::Finished`].
    Ended,
    /// An exchange answer (or failure) for an exchange that is not the one out now: an
    /// earlier attempt, an id never sent, or one that arrives while the flow is backing off
    /// or not exchanging at all.
    StaleExchange,
    /// [`Input::ListenerBound`] after the listener was already bound (or in headless mode).
    AlreadyBound,
    /// A paste, or the paste source closing, after the flow already has a code (it is
    /// exchanging or storing). A headless flow notes that pastes closed: should OpenRouter
    /// refuse the pasted code, no other can come, and the flow ends.
    CodeAlreadyReceived,
    /// [`Input::PastesClosed`] in loopback mode: the browser can still come back.
    BrowserCanStillCome,
    /// A store result while the flow is not storing.
    NotStoring,
    /// [`Input::Cancel`] while storing: the key exists and is not given up; the store
    /// result ends the flow.
    KeyBeingStored,
    /// [`Input::ConnectionClosed`] for a connection the flow does not hold.
    ConnectionNotHeld,
    /// [`Flow::handle_timeout`] before any deadline is due (or while storing, which has no
    /// deadline).
    NotDue,
}

/// Why [`Flow::new`] refused a configuration.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// `base_url` is neither https nor http on a loopback host
    /// ([`crate::base_url_is_secure`]): the `code_verifier`, the authorization code and the
    /// API key would travel unencrypted (RFC 9700 section 2.6).
    #[error("refusing to sign in through {base_url}: it must be https (plain http only on localhost, 127.0.0.1 or [::1], for an emulator), or the code verifier and the API key would travel unencrypted")]
    InsecureBaseUrl {
        /// The refused base URL.
        base_url: url::Url,
    },
    /// [`FlowConfig::limit`] is zero, negative, infinite or not a number.
    #[error("the spending limit must be a positive number of US dollars, such as 5 or 2.50 (got {limit})")]
    InvalidLimit {
        /// The refused limit.
        limit: f64,
    },
}

/// How a flow ended. `R` is the shell's store report from [`Input::KeyStored`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Outcome<R = ()> {
    /// Signed in: the key was obtained and stored.
    Stored {
        /// The key.
        key: ApiKey,
        /// OpenRouter's user id, if sent.
        user_id: Option<String>,
        /// Where it was stored, in words.
        location: String,
        /// The shell's store report, as passed in [`Input::KeyStored`].
        report: R,
    },
    /// The key was obtained but storing it failed. Never lose it: show it to the user.
    KeyNotStored {
        /// The key.
        key: ApiKey,
        /// OpenRouter's user id, if sent.
        user_id: Option<String>,
        /// Why storing failed.
        reason: StoreFailure,
    },
    /// No key.
    Failed(FlowError),
}

impl<R> Outcome<R> {
    /// The key, if one was obtained (stored or not).
    pub fn key(&self) -> Option<&ApiKey> {
        match self {
            Outcome::Stored { key, .. } | Outcome::KeyNotStored { key, .. } => Some(key),
            Outcome::Failed(_) => None,
        }
    }
}

/// The phases with what each holds. Every transition is in [`Flow::step`].
#[derive(Clone, Serialize, Deserialize)]
enum State<R> {
    Init,
    AwaitingCallback,
    Exchanging {
        code: AuthorizationCode,
        id: ExchangeId,
        attempt: u32,
        deadline: Time,
        /// `Some` while backing off after a failure that certainly was not sent.
        retry_at: Option<Time>,
        /// Browser connections on our path waiting for the result (at most
        /// [`MAX_HELD_CONNECTIONS`]).
        held: Vec<ConnectionId>,
        /// The code was pasted (not brought by the browser).
        #[serde(default)]
        pasted: bool,
    },
    Storing {
        success: ExchangeSuccess,
        held: Vec<ConnectionId>,
    },
    Lingering {
        outcome: Outcome<R>,
        /// Tabs sent a 303 to `/done` that have not fetched it yet (at least 1).
        awaiting_done: u32,
        until: Time,
    },
    Finished {
        outcome: Outcome<R>,
    },
}

/// What the flow is fed: an input, a request head borrowed from the shell's buffer, or time
/// passing.
enum Event<'a, R> {
    Input(Input<R>),
    Request(ConnectionId, &'a RequestHead<'a>),
    Timeout,
}

/// The answers the flow gives again and again, each rendered at most once per flow (on
/// first use) and then shared by every response made from it: the fixed pages, and the
/// result page once the flow has ended (its outcome never changes then).
#[derive(Clone, Copy)]
enum Answer {
    NotFound,
    MethodNotAllowed,
    Misdirected,
    AlreadyFinished,
    InProgress,
    /// Our path without a code or an `error=`.
    NoCode,
    /// Our path with another flow's `state`.
    ForeignState,
    Malformed(Malformed),
    /// The result page, at `/done` once the flow has ended.
    Result,
}

/// Cache slots before the [`Answer::Malformed`] ones.
const FIXED_ANSWERS: usize = 8;

impl Answer {
    /// Its cache slot; `None` for a [`Malformed`] the cache has no slot for.
    fn slot(self) -> Option<usize> {
        Some(match self {
            Answer::NotFound => 0,
            Answer::MethodNotAllowed => 1,
            Answer::Misdirected => 2,
            Answer::AlreadyFinished => 3,
            Answer::InProgress => 4,
            Answer::NoCode => 5,
            Answer::ForeignState => 6,
            Answer::Result => 7,
            Answer::Malformed(m) => FIXED_ANSWERS + m.index()?,
        })
    }
}

/// The rendered [`Answer`]s, by [`Answer::slot`]. Each borrows its head from static tables
/// and shares its body, so a clone allocates nothing.
#[derive(Default)]
struct RenderedPages([Option<BrowserResponse>; FIXED_ANSWERS + Malformed::COUNT]);

/// One sign-in. A sans-IO state machine: it never touches sockets, files, clocks or the OS
/// RNG.
///
/// Call order (the loop in the crate doc):
/// 1. [`Flow::new`], then (loopback mode) bind a listener and pass [`Input::ListenerBound`];
/// 2. drain [`Flow::poll_output`] until `None` and carry out each [`Output`];
/// 3. wait until [`Flow::poll_timeout`] or the next event, then pass it with
///    [`Flow::handle_input`] or [`Flow::handle_timeout`]. When the deadline has passed, call
///    [`Flow::handle_timeout`] even if inputs keep arriving (after feeding them): inputs
///    never fire a deadline, so a flow fed a steady stream of stray requests would otherwise
///    never time out;
/// 4. repeat until [`Output::Finished`], then flush the responses still being written
///    (the last `/done` page comes in the same batch) before exiting.
///
/// `R` is the shell's report of a successful store (see [`Input::KeyStored`]); `()` unless
/// the shell wants one back in [`Outcome::Stored`].
///
/// Serialisable with serde so a service can park a pending flow; **the serialised form holds
/// secrets** (the `code_verifier`, nonce, and any code or key in flight): store it like a
/// password.
#[derive(Serialize, Deserialize)]
pub struct Flow<R = ()> {
    config: FlowConfig,
    verifier: CodeVerifier,
    challenge: CodeChallenge,
    nonce: FlowNonce,
    state: State<R>,
    now: Time,
    callback_deadline: Time,
    port: Option<u16>,
    callback_url: Option<url::Url>,
    authorization_url: Option<url::Url>,
    next_exchange_id: u64,
    exchanges_sent: u32,
    /// Pasted codes OpenRouter refused (403 invalid code), as SHA-256 digests: never sent
    /// again, and counted against [`MAX_PASTED_CODES`].
    #[serde(default)]
    refused_pastes: Vec<[u8; 32]>,
    /// [`Input::PastesClosed`] came: no other code can be pasted.
    #[serde(default)]
    pastes_closed: bool,
    outputs: VecDeque<Output<R>>,
    /// Pages rendered so far, made again on demand after a round trip through serde.
    #[serde(skip)]
    pages: RenderedPages,
}

impl<R> std::fmt::Debug for Flow<R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flow")
            .field("phase", &self.phase())
            .field("now", &self.now)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl<R: Clone> Flow<R> {
    /// Starts a flow at `now`: draws the `code_verifier` and the nonce from `rng` (a CSPRNG:
    /// the OS RNG in production, a seeded ChaCha in simulations).
    ///
    /// Headless flows start in [`Phase::AwaitingCallback`] and emit [`Output::PromptForCode`];
    /// loopback flows wait in [`Phase::Init`] for [`Input::ListenerBound`].
    ///
    /// # Errors
    ///
    /// [`ConfigError::InsecureBaseUrl`] when `config.base_url` is neither https nor http on a
    /// loopback host ([`crate::base_url_is_secure`]); [`ConfigError::InvalidLimit`] when
    /// `config.limit` is not a positive finite number. Nothing was drawn from `rng` then.
    pub fn new<G: rand_core::CryptoRng + rand_core::RngCore + ?Sized>(
        config: FlowConfig,
        rng: &mut G,
        now: Time,
    ) -> Result<Flow<R>, ConfigError> {
        if !crate::authorize::base_url_is_secure(&config.base_url) {
            return Err(ConfigError::InsecureBaseUrl {
                base_url: config.base_url,
            });
        }
        if let Some(limit) = config.limit {
            if !(limit.is_finite() && limit > 0.0) {
                return Err(ConfigError::InvalidLimit { limit });
            }
        }
        let verifier = CodeVerifier::generate(rng);
        let nonce = FlowNonce::generate(rng);
        let challenge = verifier.challenge(config.code_challenge_method);
        let mut flow = Flow {
            callback_deadline: now.saturating_add(config.callback_timeout),
            config,
            verifier,
            challenge,
            nonce,
            state: State::Init,
            now,
            port: None,
            callback_url: None,
            authorization_url: None,
            next_exchange_id: 0,
            exchanges_sent: 0,
            refused_pastes: Vec::new(),
            pastes_closed: false,
            outputs: VecDeque::new(),
            pages: RenderedPages::default(),
        };
        if flow.config.headless {
            let url = authorization_url(
                &flow.config.base_url,
                None,
                &flow.challenge,
                flow.config.code_challenge_method,
                flow.config.key_label.as_ref(),
                None,
            );
            let url = flow.with_limit(url);
            flow.authorization_url = Some(url.clone());
            flow.state = State::AwaitingCallback;
            flow.outputs.push_back(Output::PromptForCode { url });
        }
        Ok(flow)
    }
}

impl<R> Flow<R> {
    // ----- getters -----

    /// The current phase.
    pub fn phase(&self) -> Phase {
        match self.state {
            State::Init => Phase::Init,
            State::AwaitingCallback => Phase::AwaitingCallback,
            State::Exchanging { .. } => Phase::Exchanging,
            State::Storing { .. } => Phase::Storing,
            State::Lingering { .. } => Phase::Lingering,
            State::Finished { .. } => Phase::Finished,
        }
    }

    /// Whether the flow has ended (phase `Lingering` or `Finished`): [`Flow::outcome`] is
    /// known and no later input changes it.
    pub fn is_terminal(&self) -> bool {
        matches!(self.phase(), Phase::Lingering | Phase::Finished)
    }

    /// The authorization URL, once known (after `ListenerBound`, or at once when headless).
    pub fn authorization_url(&self) -> Option<&url::Url> {
        self.authorization_url.as_ref()
    }

    /// The `callback_url`, once the port is known. Contains the nonce: a capability.
    pub fn callback_url(&self) -> Option<&url::Url> {
        self.callback_url.as_ref()
    }

    /// The configuration.
    pub fn config(&self) -> &FlowConfig {
        &self.config
    }

    /// The outcome, once terminal.
    pub fn outcome(&self) -> Option<&Outcome<R>> {
        match &self.state {
            State::Lingering { outcome, .. } | State::Finished { outcome } => Some(outcome),
            _ => None,
        }
    }

    /// How many exchange requests were emitted so far (retries included).
    pub fn exchanges_sent(&self) -> u32 {
        self.exchanges_sent
    }

    /// The nonce (for tests and simulators that play the browser).
    pub fn nonce(&self) -> &FlowNonce {
        &self.nonce
    }

    /// The `code_challenge` sent in the authorization URL.
    pub fn code_challenge(&self) -> &CodeChallenge {
        &self.challenge
    }

    // ----- poll -----

    /// The next thing to do, or `None` when there is nothing until the next input or timeout.
    pub fn poll_output(&mut self) -> Option<Output<R>> {
        self.outputs.pop_front()
    }

    /// When [`Flow::handle_timeout`] must be called next (at or after this time), or `None`
    /// when no deadline is set: while storing (the shell's store result ends that phase; the
    /// flow sets no deadline on it) and once finished.
    pub fn poll_timeout(&self) -> Option<Time> {
        match &self.state {
            State::Init | State::AwaitingCallback => Some(self.callback_deadline),
            State::Exchanging {
                deadline, retry_at, ..
            } => Some(retry_at.map_or(*deadline, |r| r.min(*deadline))),
            State::Storing { .. } | State::Finished { .. } => None,
            State::Lingering { until, .. } => Some(*until),
        }
    }
}

impl<R: Clone> Flow<R> {
    // ----- handle -----

    /// Time passed: fires whatever deadline is due at `now` (see [`Flow::poll_timeout`]).
    /// Returns [`Handled::Ignored`] with [`Ignored::NotDue`] when none is.
    pub fn handle_timeout(&mut self, now: Time) -> Handled {
        self.advance(now);
        self.step(Event::Timeout)
    }

    /// Feeds one input at `now`, and says what it did.
    ///
    /// [`Input::Cancel`] ends a waiting or exchanging flow with a cancel error (while an
    /// exchange request is out, one that says a key may have been created; an exchange
    /// answer that arrives later is ignored); while storing it is ignored so the key is not
    /// lost; once ended it changes nothing.
    pub fn handle_input(&mut self, input: Input<R>, now: Time) -> Handled {
        self.advance(now);
        self.step(Event::Input(input))
    }

    /// A request head arrived on connection `conn`, borrowed from the shell's read buffer:
    /// the same as [`Input::Request`] with the owned [`BrowserRequest`], without the copy.
    /// The flow copies out only what it keeps (a code, an `error=`); answering any other
    /// request costs it no allocation (beyond what the [`VecDeque`] of outputs may grow
    /// by), and [`BrowserResponse::encode`] then allocates the one buffer for the bytes.
    pub fn handle_request(
        &mut self,
        conn: ConnectionId,
        head: &RequestHead<'_>,
        now: Time,
    ) -> Handled {
        self.advance(now);
        self.step(Event::Request(conn, head))
    }

    fn advance(&mut self, now: Time) {
        // Time never goes back.
        self.now = self.now.max(now);
    }

    /// The transition table: every (phase, event) pair and what it does.
    fn step(&mut self, event: Event<'_, R>) -> Handled {
        use Phase as P;
        let phase = self.phase();
        let input = match event {
            Event::Timeout => {
                let now = self.now;
                return match phase {
                    P::Init | P::AwaitingCallback if now >= self.callback_deadline => {
                        let waited = self.config.callback_timeout;
                        self.end(UserError::CallbackTimedOut { waited }.into())
                    }
                    P::Exchanging => self.exchange_timeout(),
                    P::Lingering => match self.state {
                        State::Lingering { until, .. } if now >= until => self.finish(),
                        _ => Handled::Ignored(Ignored::NotDue),
                    },
                    P::Finished => Handled::Ignored(Ignored::Ended),
                    P::Init | P::AwaitingCallback | P::Storing => Handled::Ignored(Ignored::NotDue),
                };
            }
            // Browser requests get an answer in every phase; what they do depends on it.
            Event::Request(conn, head) => return self.on_request(conn, head),
            Event::Input(input) => input,
        };
        match (phase, input) {
            // Browser requests get an answer in every phase; what they do depends on it.
            (_, Input::Request(req)) => self.on_request(req.conn, &req.head()),
            (P::Lingering | P::Finished, _) => Handled::Ignored(Ignored::Ended),

            (P::Init, Input::ListenerBound { port, ipv6 }) => self.on_listener_bound(port, ipv6),
            (_, Input::ListenerBound { .. }) => Handled::Ignored(Ignored::AlreadyBound),

            (P::Exchanging | P::Storing, Input::ConnectionClosed(conn)) => self.release(conn),
            (_, Input::ConnectionClosed(_)) => Handled::Ignored(Ignored::ConnectionNotHeld),

            (P::Exchanging, Input::ExchangeResponse { id, response }) if self.is_current(id) => {
                self.on_exchange_response(&response)
            }
            (
                P::Exchanging,
                Input::ExchangeFailed {
                    id,
                    may_have_been_sent,
                    reason,
                },
            ) if self.is_current(id) => self.on_exchange_failed(may_have_been_sent, &reason),
            (_, Input::ExchangeResponse { .. } | Input::ExchangeFailed { .. }) => {
                Handled::Ignored(Ignored::StaleExchange)
            }

            (P::Storing, Input::KeyStored { location, report }) => {
                self.on_store_result(Ok((location, report)))
            }
            (P::Storing, Input::KeyNotStored { reason }) => self.on_store_result(Err(reason)),
            (_, Input::KeyStored { .. } | Input::KeyNotStored { .. }) => {
                Handled::Ignored(Ignored::NotStoring)
            }

            (P::Init | P::AwaitingCallback, Input::Pasted(text)) => self.on_pasted(&text),
            (_, Input::Pasted(_)) => Handled::Ignored(Ignored::CodeAlreadyReceived),

            (_, Input::PastesClosed) if !self.config.headless => {
                Handled::Ignored(Ignored::BrowserCanStillCome)
            }
            (P::Init | P::AwaitingCallback, Input::PastesClosed) => {
                self.end(UserError::PastesClosed.into())
            }
            (_, Input::PastesClosed) => {
                // Nothing changes now, but a refused pasted code can no longer be retried.
                self.pastes_closed = true;
                Handled::Ignored(Ignored::CodeAlreadyReceived)
            }

            (P::Init | P::AwaitingCallback, Input::Cancel) => self.end(
                UserError::Cancelled {
                    may_have_been_sent: false,
                }
                .into(),
            ),
            (P::Exchanging, Input::Cancel) => {
                // A request is out unless the flow is backing off before a retry (the last
                // attempt then certainly never left this machine).
                let out = matches!(self.state, State::Exchanging { retry_at: None, .. });
                self.end(
                    UserError::Cancelled {
                        may_have_been_sent: out,
                    }
                    .into(),
                )
            }
            (P::Storing, Input::Cancel) => Handled::Ignored(Ignored::KeyBeingStored),
        }
    }

    fn exchange_timeout(&mut self) -> Handled {
        let now = self.now;
        let State::Exchanging {
            deadline, retry_at, ..
        } = &mut self.state
        else {
            unreachable!("called while exchanging");
        };
        if now >= *deadline {
            let waited = self.config.exchange_timeout;
            let may_have_been_sent = retry_at.is_none();
            self.end(FlowError::Network(NetworkError::ExchangeTimedOut {
                waited,
                may_have_been_sent,
            }))
        } else if retry_at.is_some_and(|r| now >= r) {
            *retry_at = None;
            self.send_exchange();
            Handled::Applied
        } else {
            Handled::Ignored(Ignored::NotDue)
        }
    }

    fn on_listener_bound(&mut self, port: u16, ipv6: bool) -> Handled {
        // Without ::1, `localhost` may lead the browser to a port that is not ours.
        let host = if ipv6 {
            self.config.callback_host
        } else {
            CallbackHost::Ipv4Loopback
        };
        let cb = callback_url(host, port, &self.nonce);
        let url = authorization_url(
            &self.config.base_url,
            Some(&cb),
            &self.challenge,
            self.config.code_challenge_method,
            self.config.key_label.as_ref(),
            Some(self.nonce.expose_secret()),
        );
        let url = self.with_limit(url);
        self.port = Some(port);
        self.callback_url = Some(cb);
        self.authorization_url = Some(url.clone());
        self.state = State::AwaitingCallback;
        self.outputs.push_back(Output::OpenBrowser { url });
        Handled::Applied
    }

    /// `url` with OpenRouter's `limit` parameter (US dollars) when the config sets one.
    fn with_limit(&self, mut url: url::Url) -> url::Url {
        if let Some(limit) = self.config.limit {
            url.query_pairs_mut()
                .append_pair("limit", &limit.to_string());
        }
        url
    }

    /// Answers `conn` with `page`, rendered for this answer alone (the 303 to `/done`).
    fn respond(&mut self, conn: ConnectionId, page: Page, head_only: bool) -> Handled {
        let response = page.render_for(&self.config.app_name);
        self.send(conn, response, head_only)
    }

    /// Answers `conn` with `answer`, rendered on first use and shared after that: a
    /// response made from the cache borrows its head and shares its body, so it costs no
    /// allocation.
    fn answer(&mut self, conn: ConnectionId, answer: Answer, head_only: bool) -> Handled {
        let slot = answer.slot();
        if let Some(response) = slot.and_then(|i| self.pages.0[i].clone()) {
            return self.send(conn, response, head_only);
        }
        let page = match answer {
            Answer::NotFound => Page::NotFound,
            Answer::MethodNotAllowed => Page::MethodNotAllowed,
            Answer::Misdirected => Page::MisdirectedRequest,
            Answer::AlreadyFinished => Page::AlreadyFinished,
            Answer::InProgress => Page::InProgress,
            Answer::NoCode => Page::BadRequest {
                reason: "This sign-in link has no authorization code.".into(),
            },
            Answer::ForeignState => Page::BadRequest {
                reason: "The state parameter does not belong to this sign-in.".into(),
            },
            Answer::Malformed(m) => Page::BadRequest {
                reason: format!("Unusable sign-in link: {m}."),
            },
            Answer::Result => match self.result_page() {
                Some(page) => page,
                None => return self.answer(conn, Answer::InProgress, head_only),
            },
        };
        let response = page.render_for(&self.config.app_name);
        if let Some(i) = slot {
            self.pages.0[i] = Some(response.clone());
        }
        self.send(conn, response, head_only)
    }

    fn send(&mut self, conn: ConnectionId, response: BrowserResponse, head_only: bool) -> Handled {
        self.outputs.push_back(Output::Respond {
            conn,
            response,
            head_only,
        });
        Handled::Answered
    }

    fn on_request(&mut self, conn: ConnectionId, head: &RequestHead<'_>) -> Handled {
        let (head_only, target) = match classify_request(head, &self.nonce, self.port) {
            RequestClass::Misdirected { head_only } => {
                return self.answer(conn, Answer::Misdirected, head_only)
            }
            RequestClass::MethodNotAllowed => {
                return self.answer(conn, Answer::MethodNotAllowed, false)
            }
            RequestClass::Target { head_only, target } => (head_only, target),
        };
        match target {
            CallbackTarget::NotOurs(NotOurs::WrongPath | NotOurs::WrongNonce) => {
                self.answer(conn, Answer::NotFound, head_only)
            }
            CallbackTarget::NotOurs(NotOurs::NoParameters) => {
                let answer = self.for_own_path(Answer::NoCode);
                self.answer(conn, answer, head_only)
            }
            CallbackTarget::NotOurs(NotOurs::StateMismatch) => {
                self.answer(conn, Answer::ForeignState, head_only)
            }
            CallbackTarget::Malformed(m) => self.answer(conn, Answer::Malformed(m), head_only),
            CallbackTarget::Done => {
                let answer = if self.is_terminal() {
                    Answer::Result
                } else {
                    Answer::InProgress
                };
                let answered = self.answer(conn, answer, head_only);
                match &mut self.state {
                    State::Lingering { awaiting_done, .. } if !head_only => {
                        *awaiting_done -= 1;
                        if *awaiting_done == 0 {
                            self.finish()
                        } else {
                            Handled::Applied
                        }
                    }
                    _ => answered,
                }
            }
            CallbackTarget::Code(_) | CallbackTarget::Error(_) if head_only => {
                // HEAD must not have side effects (RFC 9110 section 9.2.1).
                let answer = self.for_own_path(Answer::InProgress);
                self.answer(conn, answer, true)
            }
            CallbackTarget::Code(code) => match self.state {
                State::Init | State::AwaitingCallback => self.start_exchange(code, vec![conn]),
                State::Exchanging { .. } | State::Storing { .. } => self.hold(conn),
                State::Lingering { .. } | State::Finished { .. } => {
                    self.answer(conn, Answer::AlreadyFinished, false)
                }
            },
            CallbackTarget::Error(err) => match self.state {
                State::Init | State::AwaitingCallback => {
                    // Like a code: the browser gets a 303 to `/done`, so the error and its
                    // description leave the address bar, and the flow lingers until the
                    // Denied page there has gone out.
                    self.terminate(Outcome::Failed(FlowError::denied(err)), vec![conn])
                }
                State::Exchanging { .. } | State::Storing { .. } => self.hold(conn),
                State::Lingering { .. } | State::Finished { .. } => {
                    self.answer(conn, Answer::AlreadyFinished, false)
                }
            },
        }
    }

    /// A non-result answer on our own path, or "already finished" once terminal.
    fn for_own_path(&self, waiting: Answer) -> Answer {
        if self.is_terminal() {
            Answer::AlreadyFinished
        } else {
            waiting
        }
    }

    fn held_mut(&mut self) -> Option<&mut Vec<ConnectionId>> {
        match &mut self.state {
            State::Exchanging { held, .. } | State::Storing { held, .. } => Some(held),
            _ => None,
        }
    }

    /// Holds `conn` until the result is known, or tells it "in progress" when
    /// [`MAX_HELD_CONNECTIONS`] are held already.
    fn hold(&mut self, conn: ConnectionId) -> Handled {
        match self.held_mut() {
            Some(held) if held.len() < MAX_HELD_CONNECTIONS => {
                held.push(conn);
                Handled::Applied
            }
            _ => self.answer(conn, Answer::InProgress, false),
        }
    }

    fn release(&mut self, conn: ConnectionId) -> Handled {
        let Some(held) = self.held_mut() else {
            return Handled::Ignored(Ignored::ConnectionNotHeld);
        };
        let before = held.len();
        held.retain(|c| *c != conn);
        if held.len() < before {
            Handled::Applied
        } else {
            Handled::Ignored(Ignored::ConnectionNotHeld)
        }
    }

    fn on_pasted(&mut self, text: &str) -> Handled {
        let text = text.trim();
        let reject = |flow: &mut Flow<R>, reason: &str| {
            flow.outputs.push_back(Output::PasteRejected {
                reason: reason.into(),
            });
            Handled::PasteRejected
        };
        if text.starts_with("http://") || text.starts_with("https://") {
            let Ok(url) = url::Url::parse(text) else {
                return reject(self, "that is not a valid URL");
            };
            let mut target = url.path().to_owned();
            if let Some(q) = url.query() {
                target.push('?');
                target.push_str(q);
            }
            let target = Zeroizing::new(target);
            match parse_callback(target.as_bytes(), &self.nonce) {
                CallbackTarget::Code(code) => self.start_pasted_exchange(code),
                CallbackTarget::Error(err) => self.end(FlowError::denied(err)),
                CallbackTarget::NotOurs(NotOurs::WrongNonce | NotOurs::WrongPath) => {
                    reject(self, "that URL belongs to another sign-in")
                }
                CallbackTarget::NotOurs(NotOurs::StateMismatch) => {
                    reject(self, "that URL's state belongs to another sign-in")
                }
                CallbackTarget::NotOurs(NotOurs::NoParameters) | CallbackTarget::Done => {
                    reject(self, "that URL has no authorization code")
                }
                CallbackTarget::Malformed(m) => reject(self, &format!("that URL is unusable: {m}")),
            }
        } else if text.is_empty() {
            reject(self, "nothing was pasted")
        } else if text.len() > MAX_CODE_BYTES {
            reject(
                self,
                &format!(
                    "that is too long for an authorization code (over {MAX_CODE_BYTES} bytes); paste just the code OpenRouter shows after you approve"
                ),
            )
        } else if text.chars().any(|c| c.is_control() || c.is_whitespace()) {
            reject(self, NOT_A_CODE)
        } else {
            self.start_pasted_exchange(AuthorizationCode::new(text))
        }
    }

    fn digest(code: &AuthorizationCode) -> [u8; 32] {
        use sha2::{Digest, Sha256};
        Sha256::digest(code.expose_secret().as_bytes()).into()
    }

    /// Exchanges a pasted code, unless OpenRouter already refused that very code.
    fn start_pasted_exchange(&mut self, code: AuthorizationCode) -> Handled {
        let digest = Self::digest(&code);
        if self.refused_pastes.iter().any(|d| crate::ct_eq(d, &digest)) {
            self.outputs.push_back(Output::PasteRejected {
                reason: "OpenRouter already refused that code: copy the code it shows again, \
                         or open the sign-in address again for a new one"
                    .into(),
            });
            return Handled::PasteRejected;
        }
        self.start_exchange_from(code, Vec::new(), true)
    }

    fn start_exchange(&mut self, code: AuthorizationCode, held: Vec<ConnectionId>) -> Handled {
        self.start_exchange_from(code, held, false)
    }

    fn start_exchange_from(
        &mut self,
        code: AuthorizationCode,
        held: Vec<ConnectionId>,
        pasted: bool,
    ) -> Handled {
        self.state = State::Exchanging {
            code,
            id: ExchangeId(0),
            attempt: 0,
            deadline: self.now.saturating_add(self.config.exchange_timeout),
            retry_at: None,
            held,
            pasted,
        };
        self.send_exchange();
        Handled::Applied
    }

    fn send_exchange(&mut self) {
        let State::Exchanging {
            code,
            id,
            attempt,
            deadline,
            ..
        } = &mut self.state
        else {
            return;
        };
        self.next_exchange_id += 1;
        *id = ExchangeId(self.next_exchange_id);
        *attempt += 1;
        let request = exchange_request(
            &self.config.base_url,
            code,
            &self.verifier,
            self.config.code_challenge_method,
        )
        .with_user_agent(self.config.product_token.as_ref());
        let out = Output::SendExchange {
            id: *id,
            attempt: *attempt,
            request,
            timeout: self.now.until(*deadline),
        };
        self.exchanges_sent += 1;
        self.outputs.push_back(out);
    }

    /// Whether `id` is the exchange request out now (not backing off).
    fn is_current(&self, id: ExchangeId) -> bool {
        matches!(&self.state, State::Exchanging { id: cur, retry_at: None, .. } if *cur == id)
    }

    fn on_exchange_response(&mut self, response: &HttpResponse) -> Handled {
        let scrubbed;
        let response = if matches!(response.status, 200 | 201) {
            response
        } else {
            // An error body may echo our request (a debugging proxy, a confused server): keep
            // the code and the verifier out of the excerpt that reaches messages and pages.
            scrubbed = self.without_secrets(response);
            &scrubbed
        };
        match parse_exchange_response(response) {
            Err(FlowError::User(UserError::InvalidCode)) if self.may_paste_again() => {
                // OpenRouter never accepted this code: no key exists, and the verifier is
                // still good for the right code. Wait for another paste.
                let State::Exchanging { code, .. } = &self.state else {
                    unreachable!("checked by may_paste_again");
                };
                let digest = Self::digest(code);
                self.refused_pastes.push(digest);
                self.state = State::AwaitingCallback;
                let left = MAX_PASTED_CODES - self.tried_pastes();
                self.outputs.push_back(Output::PasteRejected {
                    reason: format!(
                        "OpenRouter did not accept that code (403: invalid code or \
                         code_verifier): it may be mistyped or from another sign-in. Paste the \
                         code again ({left} {} left)",
                        if left == 1 { "try" } else { "tries" }
                    ),
                });
                Handled::Applied
            }
            Ok(success) => {
                self.outputs.push_back(Output::StoreKey {
                    key: success.key.clone(),
                    user_id: success.user_id.clone(),
                });
                let held = self.held_mut().map(std::mem::take).unwrap_or_default();
                self.state = State::Storing { success, held };
                Handled::Applied
            }
            Err(e) => self.end(e),
        }
    }

    /// Pasted codes exchanged so far: those refused plus the one in flight, if pasted.
    fn tried_pastes(&self) -> u32 {
        let in_flight = matches!(self.state, State::Exchanging { pasted: true, .. });
        u32::try_from(self.refused_pastes.len())
            .unwrap_or(u32::MAX)
            .saturating_add(u32::from(in_flight))
    }

    /// Whether a refusal of the code in flight sends the flow back to waiting for a paste:
    /// headless, the code was pasted, no browser tab waits on the result, and fewer than
    /// [`MAX_PASTED_CODES`] pasted codes were tried.
    fn may_paste_again(&self) -> bool {
        self.config.headless
            && !self.pastes_closed
            && matches!(&self.state, State::Exchanging { pasted: true, held, .. } if held.is_empty())
            && self.tried_pastes() < MAX_PASTED_CODES
    }

    /// `response` with every occurrence of the code in flight and of the verifier replaced
    /// by `[redacted]` (they never reach logs or pages).
    fn without_secrets(&self, response: &HttpResponse) -> HttpResponse {
        let mut body = Zeroizing::new(response.body.to_vec());
        let code = match &self.state {
            State::Exchanging { code, .. } => code.expose_secret(),
            _ => "",
        };
        for secret in [code, self.verifier.expose_secret()] {
            let secret = secret.as_bytes();
            if secret.len() < 8 {
                continue; // too short to be a secret worth garbling the message for
            }
            let mut out = Zeroizing::new(Vec::with_capacity(body.len()));
            let mut rest = &body[..];
            while let Some(i) = rest.windows(secret.len()).position(|w| w == secret) {
                out.extend_from_slice(&rest[..i]);
                out.extend_from_slice(b"[redacted]");
                rest = &rest[i + secret.len()..];
            }
            out.extend_from_slice(rest);
            body = out;
        }
        HttpResponse {
            status: response.status,
            headers: response.headers.clone(),
            body,
        }
    }

    fn on_exchange_failed(&mut self, may_have_been_sent: bool, reason: &str) -> Handled {
        let now = self.now;
        let State::Exchanging {
            attempt,
            deadline,
            retry_at,
            ..
        } = &mut self.state
        else {
            unreachable!("called while exchanging");
        };
        if !may_have_been_sent {
            // Certainly never reached OpenRouter: the code is still unused. Back off and retry
            // inside the deadline.
            let factor = 1u32 << (*attempt - 1).min(5);
            let delay = (FIRST_RETRY_DELAY * factor).min(MAX_RETRY_DELAY);
            let at = now.saturating_add(delay);
            if at < *deadline {
                *retry_at = Some(at);
                return Handled::Applied;
            }
        }
        self.end(FlowError::Network(NetworkError::Unreachable {
            reason: crate::exchange::sanitise(reason.as_bytes()),
            may_have_been_sent,
        }))
    }

    fn on_store_result(&mut self, result: Result<(String, R), StoreFailure>) -> Handled {
        let State::Storing { success, held } = &mut self.state else {
            unreachable!("called while storing");
        };
        let held = std::mem::take(held);
        let ExchangeSuccess { key, user_id } = success.clone();
        let outcome = match result {
            Ok((location, report)) => Outcome::Stored {
                key,
                user_id,
                location,
                report,
            },
            Err(reason) => Outcome::KeyNotStored {
                key,
                user_id,
                reason,
            },
        };
        self.terminate(outcome, held)
    }

    /// Ends the flow with `error`, answering the connections it holds.
    fn end(&mut self, error: FlowError) -> Handled {
        let held = self.held_mut().map(std::mem::take).unwrap_or_default();
        self.terminate(Outcome::Failed(error), held)
    }

    /// Ends the flow: answers every held connection with a 303 to `/done`, then lingers for
    /// the browser to fetch it, or finishes at once when none was held.
    fn terminate(&mut self, outcome: Outcome<R>, held: Vec<ConnectionId>) -> Handled {
        let location = format!(
            "{}{}{}",
            crate::callback::CALLBACK_PREFIX,
            self.nonce.expose_secret(),
            crate::callback::DONE_SUFFIX
        );
        let awaiting_done = u32::try_from(held.len()).unwrap_or(u32::MAX);
        for conn in held {
            let _ = self.respond(
                conn,
                Page::SeeOther {
                    location: location.clone(),
                },
                false,
            );
        }
        self.state = State::Lingering {
            outcome,
            awaiting_done,
            until: self.now.saturating_add(DONE_LINGER),
        };
        if awaiting_done == 0 {
            return self.finish();
        }
        Handled::Applied
    }

    /// Lingering → Finished: emits [`Output::Finished`].
    fn finish(&mut self) -> Handled {
        let state = std::mem::replace(&mut self.state, State::Init);
        let State::Lingering { outcome, .. } = state else {
            unreachable!("finish only from Lingering");
        };
        self.outputs.push_back(Output::Finished(outcome.clone()));
        self.state = State::Finished { outcome };
        Handled::Applied
    }

    /// The page for the flow's result, once terminal.
    fn result_page(&self) -> Option<Page> {
        let label = || {
            self.config
                .key_label
                .as_ref()
                .map(|l| l.as_str().to_owned())
        };
        Some(match self.outcome()? {
            Outcome::Stored { location, key, .. } => Page::SignedIn {
                location: location.clone(),
                key_label: label(),
                key_page: Some(key.key_page_url(&self.config.base_url).to_string()),
            },
            Outcome::KeyNotStored { key, .. } => Page::KeyNotStored {
                key_label: label(),
                key_page: Some(key.key_page_url(&self.config.base_url).to_string()),
            },
            Outcome::Failed(e) if e.callback_error().is_some() => {
                let e = e.callback_error().expect("checked");
                Page::Denied {
                    error: e.error.clone(),
                    description: e.error_description.clone(),
                }
            }
            Outcome::Failed(FlowError::User(UserError::Cancelled { .. })) => Page::Cancelled,
            Outcome::Failed(FlowError::User(
                UserError::CallbackTimedOut { .. } | UserError::CodeExpired,
            )) => Page::Expired,
            Outcome::Failed(e) => Page::Failed {
                reason: e.to_string(),
            },
        })
    }
}

/// The DNS-rebinding guard (RFC 8252 section 8.3): the `Host` header
/// must be `localhost`, `127.0.0.1` or `[::1]` with our port (the port may be left out only
/// when it is 80). Before the port is known, any loopback host name passes.
pub fn host_is_ours(host: Option<&[u8]>, port: Option<u16>) -> bool {
    let Some(host) = host else { return false };
    // Surrounding white space is ignored (as `str::trim` would); bytes that are not UTF-8
    // never match. An ASCII value, the usual one, needs no UTF-8 check.
    let host = if host.is_ascii() {
        trim_white_space(host)
    } else {
        match std::str::from_utf8(host) {
            Ok(h) => h.trim().as_bytes(),
            Err(_) => return false,
        }
    };
    // Each allowed name has a known length: split there, and what follows must be nothing or
    // `:` and a port. No search for the last `:`.
    const V6: &[u8] = b"[::1]";
    const V4: &[u8] = b"127.0.0.1";
    const NAME: &[u8] = b"localhost";
    const _: () = assert!(V4.len() == NAME.len());
    let v6 = host.first() == Some(&b'[');
    let Some((name, rest)) = host.split_at_checked(if v6 { V6.len() } else { NAME.len() }) else {
        return false;
    };
    let name_ok = if v6 {
        name == V6
    } else {
        // The exact spelling first: it is the usual one, and the case-blind comparison costs
        // about 25 instructions more a request (callgrind, P1 corpus).
        name == NAME || name == V4 || name.eq_ignore_ascii_case(NAME)
    };
    if !name_ok {
        return false;
    }
    let given: Option<u16> = match rest {
        [] => None,
        // A port is one or more digits (RFC 3986 section 3.2.3), and fits in 16 bits.
        [b':', digits @ ..] => match port_number(digits) {
            Some(p) => Some(p),
            None => return false,
        },
        _ => return false, // `[::1]evil`, `localhost.evil`: not a port
    };
    match (port, given) {
        (None, _) => true,
        (Some(ours), Some(g)) => ours == g,
        (Some(ours), None) => ours == 80,
    }
}

/// `bytes` without the ASCII white space `str::trim` removes at either end.
fn trim_white_space(mut bytes: &[u8]) -> &[u8] {
    let white = |b: &u8| matches!(b, b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | b' ');
    while let [first, rest @ ..] = bytes {
        if !white(first) {
            break;
        }
        bytes = rest;
    }
    while let [rest @ .., last] = bytes {
        if !white(last) {
            break;
        }
        bytes = rest;
    }
    bytes
}

/// A port written as one or more ASCII digits (leading zeros allowed), if it fits in 16 bits.
fn port_number(digits: &[u8]) -> Option<u16> {
    if digits.is_empty() {
        return None;
    }
    digits.iter().try_fold(0u16, |n, &d| {
        if !d.is_ascii_digit() {
            return None;
        }
        n.checked_mul(10)?.checked_add(u16::from(d - b'0'))
    })
}
