//! The sign-in flow: one state machine, every transition in this file.
//!
//! ```text
//!            ListenerBound                  callback on /callback/<nonce>?code=…
//!   Init ──────────────────▶ AwaitingCallback ───────────────────────────────▶ Exchanging
//!    │   (headless: starts here,   │    (or a pasted redirect URL / code)        │  │
//!    │    prompts for a code)      │                                             │  │ 200 + key
//!    │                             │ error= on our path, timeout, cancel         │  ▼
//!    └──── cancel ────────────────▶├─────────────────────────────────▶ Failed ◀──┘ Storing
//!                                  │                                   ▲  exchange   │
//!                                  │                                   │  error,     │ KeyStored
//!                                  │                                   │  timeout    ▼
//!                                  │                     KeyNotStored ─┘           Stored
//! ```
//!
//! `Stored` and `Failed` are terminal and sticky: later inputs change nothing (stray
//! requests still get their small answers).
//!
//! A browser request on the flow's own path that carries a code is held until the result is
//! known. One that carries `error=` ends a waiting flow with [`FlowError::denied`] at once
//! (during the exchange it is held like a code). Either way, when the flow ends, each held
//! request is answered with a 303 See Other to the clean `/callback/<nonce>/done`, so
//! neither the code nor the error and its description stay in the address bar; `/done` shows
//! the result page (signed in, denied, failed, …). The flow then lingers up to
//! [`DONE_LINGER`] for those `/done` fetches, and emits [`Output::Finished`] with the
//! [`Outcome`] once a `/done` page has gone out for each redirect, or the linger ran out;
//! with no request held (a paste, a timeout or a cancel while waiting) it emits it at once.

use crate::authorize::{authorization_url, callback_url, CallbackHost, KeyLabel, DEFAULT_BASE_URL};
use crate::callback::{parse_callback, CallbackTarget, Malformed, NotOurs, MAX_CODE_BYTES};
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

/// How a flow is set up. `Default` gives OpenRouter production, `localhost`, S256, no label,
/// 10 minutes to wait for the browser and 30 seconds for the exchange.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    /// Headless mode (PROTOCOL.md section 5): no `callback_url`, no listener; the user pastes
    /// the code OpenRouter shows.
    pub headless: bool,
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

/// Everything that can happen to a flow. Pass with [`Flow::handle_input`].
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Input {
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
        /// connection refused): only then may the code be sent again.
        may_have_been_sent: bool,
        /// Short description for the user (no secrets).
        reason: String,
    },
    /// The key from [`Output::StoreKey`] was stored. `location` says where, in words.
    KeyStored {
        /// e.g. `credentials file /home/ana/.config/openrouter-auth/credentials.json`.
        location: String,
    },
    /// Storing the key failed; the key is still handed out in the [`Outcome`].
    KeyNotStored {
        /// Why, in words (no secrets).
        reason: String,
    },
    /// The user pasted something: a redirect URL (`http://localhost:PORT/callback/<nonce>?code=…`)
    /// or a bare authorization code (PROTOCOL.md section 5).
    Pasted(Zeroizing<String>),
    /// Stop waiting. See [`Flow::handle_input`] for what happens in each phase.
    Cancel,
}

/// What the shell must do next. Pull with [`Flow::poll_output`] until `None`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Output {
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
    /// The flow is over and needs nothing more: stop serving and report `outcome`.
    Finished(Outcome),
}

/// The phase, for display and assertions. See the module doc for the diagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// Waiting for [`Input::ListenerBound`].
    Init,
    /// Waiting for the browser (or a pasted code).
    AwaitingCallback,
    /// Exchanging the code for a key (including retry backoff).
    Exchanging,
    /// Waiting for the shell to store the key.
    Storing,
    /// Terminal: the key was stored.
    Stored,
    /// Terminal: no key, or a key that could not be stored (see [`Outcome`]).
    Failed,
}

/// How a flow ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    /// Signed in: the key was obtained and stored.
    Stored {
        /// The key.
        key: ApiKey,
        /// OpenRouter's user id, if sent.
        user_id: Option<String>,
        /// Where it was stored, in words.
        location: String,
    },
    /// The key was obtained but storing it failed. Never lose it: show it to the user.
    KeyNotStored {
        /// The key.
        key: ApiKey,
        /// OpenRouter's user id, if sent.
        user_id: Option<String>,
        /// Why storing failed.
        reason: String,
    },
    /// No key.
    Failed(FlowError),
}

impl Outcome {
    /// The key, if one was obtained (stored or not).
    pub fn key(&self) -> Option<&ApiKey> {
        match self {
            Outcome::Stored { key, .. } | Outcome::KeyNotStored { key, .. } => Some(key),
            Outcome::Failed(_) => None,
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
enum State {
    Init,
    AwaitingCallback,
    Exchanging {
        code: AuthorizationCode,
        id: ExchangeId,
        attempt: u32,
        deadline: Time,
        /// `Some` while backing off after a failure that certainly was not sent.
        retry_at: Option<Time>,
    },
    Storing {
        success: ExchangeSuccess,
    },
    Stored,
    Failed,
}

/// One sign-in. A sans-IO state machine: it never touches sockets, files, clocks or the OS
/// RNG.
///
/// Call order (the loop in the crate doc):
/// 1. [`Flow::new`], then (loopback mode) bind a listener and pass [`Input::ListenerBound`];
/// 2. drain [`Flow::poll_output`] until `None` and carry out each [`Output`];
/// 3. wait until [`Flow::poll_timeout`] or the next event, then pass it with
///    [`Flow::handle_input`] or [`Flow::handle_timeout`];
/// 4. repeat until [`Output::Finished`].
///
/// Serialisable with serde so a service can park a pending flow; **the serialised form holds
/// secrets** (the `code_verifier`, nonce, and any code or key in flight): store it like a
/// password.
#[derive(Serialize, Deserialize)]
pub struct Flow {
    config: FlowConfig,
    verifier: CodeVerifier,
    challenge: CodeChallenge,
    nonce: FlowNonce,
    state: State,
    now: Time,
    callback_deadline: Time,
    port: Option<u16>,
    callback_url: Option<url::Url>,
    authorization_url: Option<url::Url>,
    next_exchange_id: u64,
    exchanges_sent: u32,
    held: Vec<ConnectionId>,
    awaiting_done: u32,
    linger_until: Option<Time>,
    outcome: Option<Outcome>,
    finished: bool,
    outputs: VecDeque<Output>,
}

impl std::fmt::Debug for Flow {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Flow")
            .field("phase", &self.phase())
            .field("now", &self.now)
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Flow {
    /// Starts a flow at `now`: draws the `code_verifier` and the nonce from `rng` (a CSPRNG:
    /// the OS RNG in production, a seeded ChaCha in simulations).
    ///
    /// Headless flows start in [`Phase::AwaitingCallback`] and emit [`Output::PromptForCode`];
    /// loopback flows wait in [`Phase::Init`] for [`Input::ListenerBound`].
    pub fn new<R: rand_core::CryptoRng + rand_core::RngCore + ?Sized>(
        config: FlowConfig,
        rng: &mut R,
        now: Time,
    ) -> Flow {
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
            held: Vec::new(),
            awaiting_done: 0,
            linger_until: None,
            outcome: None,
            finished: false,
            outputs: VecDeque::new(),
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
            flow.authorization_url = Some(url.clone());
            flow.state = State::AwaitingCallback;
            flow.outputs.push_back(Output::PromptForCode { url });
        }
        flow
    }

    // ----- getters -----

    /// The current phase.
    pub fn phase(&self) -> Phase {
        match self.state {
            State::Init => Phase::Init,
            State::AwaitingCallback => Phase::AwaitingCallback,
            State::Exchanging { .. } => Phase::Exchanging,
            State::Storing { .. } => Phase::Storing,
            State::Stored => Phase::Stored,
            State::Failed => Phase::Failed,
        }
    }

    /// Whether the phase is `Stored` or `Failed`.
    pub fn is_terminal(&self) -> bool {
        matches!(self.phase(), Phase::Stored | Phase::Failed)
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
    pub fn outcome(&self) -> Option<&Outcome> {
        self.outcome.as_ref()
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
    pub fn poll_output(&mut self) -> Option<Output> {
        self.outputs.pop_front()
    }

    /// When [`Flow::handle_timeout`] must be called next, or `None` once finished.
    pub fn poll_timeout(&self) -> Option<Time> {
        if self.finished {
            return None;
        }
        match &self.state {
            State::Init | State::AwaitingCallback => Some(self.callback_deadline),
            State::Exchanging {
                deadline, retry_at, ..
            } => Some(retry_at.map_or(*deadline, |r| r.min(*deadline))),
            State::Storing { .. } => None,
            State::Stored | State::Failed => self.linger_until,
        }
    }

    // ----- handle -----

    /// Time passed: fires whatever deadline is due at `now`.
    pub fn handle_timeout(&mut self, now: Time) {
        self.advance(now);
        let now = self.now;
        match &mut self.state {
            State::Init | State::AwaitingCallback => {
                if now >= self.callback_deadline {
                    let waited = self.config.callback_timeout;
                    self.fail(UserError::CallbackTimedOut { waited }.into());
                }
            }
            State::Exchanging {
                deadline, retry_at, ..
            } => {
                if now >= *deadline {
                    let waited = self.config.exchange_timeout;
                    let may_have_been_sent = retry_at.is_none();
                    self.fail(FlowError::Network(NetworkError::ExchangeTimedOut {
                        waited,
                        may_have_been_sent,
                    }));
                } else if retry_at.is_some_and(|r| now >= r) {
                    *retry_at = None;
                    self.send_exchange();
                }
            }
            State::Storing { .. } => {}
            State::Stored | State::Failed => {
                if self.linger_until.is_some_and(|t| now >= t) {
                    self.finish();
                }
            }
        }
    }

    /// Feeds one input at `now`.
    ///
    /// [`Input::Cancel`] ends a waiting or exchanging flow with [`UserError::Cancelled`] (an
    /// exchange answer that arrives later is ignored); while storing it is ignored so the key
    /// is not lost; in a terminal phase it changes nothing.
    pub fn handle_input(&mut self, input: Input, now: Time) {
        self.advance(now);
        match input {
            Input::ListenerBound { port, ipv6 } => self.on_listener_bound(port, ipv6),
            Input::Request(req) => self.on_request(req),
            Input::ConnectionClosed(conn) => self.held.retain(|c| *c != conn),
            Input::ExchangeResponse { id, response } => self.on_exchange_response(id, &response),
            Input::ExchangeFailed {
                id,
                may_have_been_sent,
                reason,
            } => self.on_exchange_failed(id, may_have_been_sent, reason),
            Input::KeyStored { location } => self.on_store_result(Ok(location)),
            Input::KeyNotStored { reason } => self.on_store_result(Err(reason)),
            Input::Pasted(text) => self.on_pasted(&text),
            Input::Cancel => match self.state {
                State::Init | State::AwaitingCallback | State::Exchanging { .. } => self.fail(
                    UserError::Cancelled {
                        may_have_been_sent: false,
                    }
                    .into(),
                ),
                State::Storing { .. } | State::Stored | State::Failed => {}
            },
        }
    }

    fn advance(&mut self, now: Time) {
        // Time never goes back.
        self.now = self.now.max(now);
    }

    fn on_listener_bound(&mut self, port: u16, ipv6: bool) {
        if !matches!(self.state, State::Init) {
            return;
        }
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
        self.port = Some(port);
        self.callback_url = Some(cb);
        self.authorization_url = Some(url.clone());
        self.state = State::AwaitingCallback;
        self.outputs.push_back(Output::OpenBrowser { url });
    }

    fn respond(&mut self, conn: ConnectionId, page: Page, head_only: bool) {
        self.outputs.push_back(Output::Respond {
            conn,
            response: page.render(),
            head_only,
        });
    }

    fn on_request(&mut self, req: BrowserRequest) {
        let conn = req.conn;
        let head_only = req.method == "HEAD";
        if !host_is_ours(req.host.as_deref(), self.port) {
            return self.respond(conn, Page::MisdirectedRequest, head_only);
        }
        if req.method != "GET" && !head_only {
            return self.respond(conn, Page::MethodNotAllowed, false);
        }
        let target = parse_callback(&req.target, &self.nonce);
        match target {
            CallbackTarget::NotOurs(NotOurs::WrongPath | NotOurs::WrongNonce) => {
                self.respond(conn, Page::NotFound, head_only)
            }
            CallbackTarget::NotOurs(NotOurs::NoParameters) => {
                let page = self.page_for_own_path(Page::BadRequest {
                    reason: "This sign-in link has no authorization code.".into(),
                });
                self.respond(conn, page, head_only)
            }
            CallbackTarget::NotOurs(NotOurs::StateMismatch) => self.respond(
                conn,
                Page::BadRequest {
                    reason: "The state parameter does not belong to this sign-in.".into(),
                },
                head_only,
            ),
            CallbackTarget::Malformed(m) => self.respond(
                conn,
                Page::BadRequest {
                    reason: format!("Unusable sign-in link: {m}."),
                },
                head_only,
            ),
            CallbackTarget::Done => {
                let page = self.result_page().unwrap_or(Page::InProgress);
                if self.is_terminal() && !head_only && self.awaiting_done > 0 {
                    self.awaiting_done -= 1;
                    self.respond(conn, page, head_only);
                    if self.awaiting_done == 0 && self.linger_until.is_some() {
                        self.finish();
                    }
                } else {
                    self.respond(conn, page, head_only);
                }
            }
            CallbackTarget::Code(code) => {
                if head_only {
                    // HEAD must not have side effects (RFC 9110 section 9.2.1).
                    let page = self.page_for_own_path(Page::InProgress);
                    return self.respond(conn, page, true);
                }
                match self.state {
                    State::Init | State::AwaitingCallback => {
                        self.held.push(conn);
                        self.start_exchange(code);
                    }
                    State::Exchanging { .. } | State::Storing { .. } => self.hold(conn),
                    State::Stored | State::Failed => {
                        self.respond(conn, Page::AlreadyFinished, false)
                    }
                }
            }
            CallbackTarget::Error(err) => {
                if head_only {
                    let page = self.page_for_own_path(Page::InProgress);
                    return self.respond(conn, page, true);
                }
                match self.state {
                    State::Init | State::AwaitingCallback => {
                        // Like a code: the browser gets a 303 to `/done`, so the error and
                        // its description leave the address bar, and the flow lingers until
                        // the Denied page there has gone out.
                        self.held.push(conn);
                        self.fail(FlowError::denied(err));
                    }
                    State::Exchanging { .. } | State::Storing { .. } => self.hold(conn),
                    State::Stored | State::Failed => {
                        self.respond(conn, Page::AlreadyFinished, false)
                    }
                }
            }
        }
    }

    /// A non-result answer on our own path, or "already finished" once terminal.
    fn page_for_own_path(&self, waiting: Page) -> Page {
        if self.is_terminal() {
            Page::AlreadyFinished
        } else {
            waiting
        }
    }

    fn hold(&mut self, conn: ConnectionId) {
        if self.held.len() < MAX_HELD_CONNECTIONS {
            self.held.push(conn);
        } else {
            self.respond(conn, Page::InProgress, false);
        }
    }

    fn on_pasted(&mut self, text: &str) {
        if !matches!(self.state, State::Init | State::AwaitingCallback) {
            return;
        }
        let text = text.trim();
        let reject = |flow: &mut Flow, reason: &str| {
            flow.outputs.push_back(Output::PasteRejected {
                reason: reason.into(),
            })
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
                CallbackTarget::Code(code) => self.start_exchange(code),
                CallbackTarget::Error(err) => self.fail(FlowError::denied(err)),
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
        } else if text.len() > MAX_CODE_BYTES
            || text.chars().any(|c| c.is_control() || c.is_whitespace())
        {
            reject(
                self,
                &format!("that is not an authorization code: {}", Malformed::BadCode),
            )
        } else {
            self.start_exchange(AuthorizationCode::new(text))
        }
    }

    fn start_exchange(&mut self, code: AuthorizationCode) {
        self.state = State::Exchanging {
            code,
            id: ExchangeId(0),
            attempt: 0,
            deadline: self.now.saturating_add(self.config.exchange_timeout),
            retry_at: None,
        };
        self.send_exchange();
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
        );
        let out = Output::SendExchange {
            id: *id,
            request,
            timeout: self.now.until(*deadline),
        };
        self.exchanges_sent += 1;
        self.outputs.push_back(out);
    }

    fn current_exchange(&self, id: ExchangeId) -> bool {
        matches!(&self.state, State::Exchanging { id: cur, retry_at: None, .. } if *cur == id)
    }

    fn on_exchange_response(&mut self, id: ExchangeId, response: &HttpResponse) {
        if !self.current_exchange(id) {
            return; // stale or unsolicited: ignored
        }
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
            Ok(success) => {
                self.outputs.push_back(Output::StoreKey {
                    key: success.key.clone(),
                    user_id: success.user_id.clone(),
                });
                self.state = State::Storing { success };
            }
            Err(e) => self.fail(e),
        }
    }

    /// `response` with every occurrence of the code in flight and of the verifier replaced
    /// by `[redacted]` (PROTOCOL.md section 7: they never reach logs or pages).
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

    fn on_exchange_failed(&mut self, id: ExchangeId, may_have_been_sent: bool, reason: String) {
        if !self.current_exchange(id) {
            return;
        }
        let now = self.now;
        let State::Exchanging {
            attempt,
            deadline,
            retry_at,
            ..
        } = &mut self.state
        else {
            return;
        };
        if !may_have_been_sent {
            // Certainly never reached OpenRouter: the code is still unused. Back off and retry
            // inside the deadline.
            let factor = 1u32 << (*attempt - 1).min(5);
            let delay = (FIRST_RETRY_DELAY * factor).min(MAX_RETRY_DELAY);
            let at = now.saturating_add(delay);
            if at < *deadline {
                *retry_at = Some(at);
                return;
            }
        }
        self.fail(FlowError::Network(NetworkError::Unreachable {
            reason: crate::exchange::sanitise(reason.as_bytes()),
            may_have_been_sent,
        }));
    }

    fn on_store_result(&mut self, result: Result<String, String>) {
        let State::Storing { success } = &self.state else {
            return;
        };
        let ExchangeSuccess { key, user_id } = success.clone();
        let outcome = match result {
            Ok(location) => Outcome::Stored {
                key,
                user_id,
                location,
            },
            Err(reason) => Outcome::KeyNotStored {
                key,
                user_id,
                reason,
            },
        };
        self.state = if matches!(outcome, Outcome::Stored { .. }) {
            State::Stored
        } else {
            State::Failed
        };
        self.terminate(outcome);
    }

    fn fail(&mut self, error: FlowError) {
        self.state = State::Failed;
        self.terminate(Outcome::Failed(error));
    }

    /// Enters a terminal phase: answers every held connection with a 303 to `/done`, then
    /// lingers for the browser to fetch it, or finishes at once.
    fn terminate(&mut self, outcome: Outcome) {
        self.outcome = Some(outcome);
        let location = format!(
            "{}{}{}",
            crate::callback::CALLBACK_PREFIX,
            self.nonce.expose_secret(),
            crate::callback::DONE_SUFFIX
        );
        for conn in std::mem::take(&mut self.held) {
            self.respond(
                conn,
                Page::SeeOther {
                    location: location.clone(),
                },
                false,
            );
            self.awaiting_done += 1;
        }
        if self.awaiting_done > 0 {
            self.linger_until = Some(self.now.saturating_add(DONE_LINGER));
        } else {
            self.finish();
        }
    }

    fn finish(&mut self) {
        if self.finished {
            return;
        }
        self.finished = true;
        self.linger_until = None;
        let outcome = self.outcome.clone().expect("finish only after terminate");
        self.outputs.push_back(Output::Finished(outcome));
    }

    /// The page for the flow's result, once terminal.
    fn result_page(&self) -> Option<Page> {
        Some(match self.outcome.as_ref()? {
            Outcome::Stored { location, .. } => Page::SignedIn {
                location: location.clone(),
            },
            Outcome::KeyNotStored { .. } => Page::KeyNotStored,
            Outcome::Failed(e) if e.callback_error().is_some() => {
                let e = e.callback_error().expect("checked");
                Page::Denied {
                    error: e.error.clone(),
                    description: e.error_description.clone(),
                }
            }
            Outcome::Failed(FlowError::User(UserError::Cancelled { .. })) => Page::Cancelled,
            Outcome::Failed(FlowError::User(UserError::CallbackTimedOut { .. })) => Page::Expired,
            Outcome::Failed(e) => Page::Failed {
                reason: e.to_string(),
            },
        })
    }
}

/// The DNS-rebinding guard (RFC 8252 section 8.3; PROTOCOL.md section 7): the `Host` header
/// must be `localhost`, `127.0.0.1` or `[::1]` with our port (the port may be left out only
/// when it is 80). Before the port is known, any loopback host name passes.
pub fn host_is_ours(host: Option<&[u8]>, port: Option<u16>) -> bool {
    let Some(host) = host else { return false };
    let Ok(host) = std::str::from_utf8(host) else {
        return false;
    };
    let host = host.trim();
    let (name, host_port) = if let Some(rest) = host.strip_prefix("[::1]") {
        if !rest.is_empty() && !rest.starts_with(':') {
            return false; // `[::1]evil`: not a port
        }
        ("[::1]", rest.strip_prefix(':'))
    } else {
        match host.rsplit_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (host, None),
        }
    };
    let name_ok = name.eq_ignore_ascii_case("localhost") || name == "127.0.0.1" || name == "[::1]";
    if !name_ok {
        return false;
    }
    let given: Option<u16> = match host_port {
        // A port is digits only (RFC 3986 section 3.2.3); `parse` would also take `+`.
        Some(p) if !p.bytes().all(|b| b.is_ascii_digit()) => return false,
        Some(p) => match p.parse() {
            Ok(p) => Some(p),
            Err(_) => return false,
        },
        None => None,
    };
    match (port, given) {
        (None, _) => true,
        (Some(ours), Some(g)) => ours == g,
        (Some(ours), None) => ours == 80,
    }
}
