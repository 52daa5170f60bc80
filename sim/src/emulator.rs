//! A stateful emulator of OpenRouter's OAuth PKCE endpoints, served over real HTTP.
//!
//! The emulator runs a [`wiremock`] server on `127.0.0.1` with a single stateful responder that
//! behaves like OpenRouter (see `PROTOCOL.md`):
//!
//! - `GET /auth` validates its query (`callback_url`, `code_challenge`, `code_challenge_method`,
//!   `key_label`, `limit`: a positive number of US dollars, the key's credit limit) and, depending on the [`Mode`], redirects straight to the callback with a fresh
//!   `code`, or shows a consent page whose "Approve"/"Deny" links (`GET /auth/approve?request=ID`,
//!   `GET /auth/deny?request=ID`) redirect to the callback with `code` or with
//!   `error=access_denied`. Without `callback_url` (headless mode) the code is shown on a page in
//!   `<code id="code">…</code>`.
//! - `POST /api/v1/auth/keys` exchanges `{code, code_verifier, code_challenge_method}` for
//!   `{"key": "sk-or-v1-…", "user_id": "user_…"}`, with OpenRouter's error statuses and messages.
//! - `GET /api/v1/key` and `GET /api/v1/auth/key` describe a key given as `Authorization: Bearer`.
//! - `GET /keys/<hash>` is the key's page, like OpenRouter's settings page for one key: `<hash>`
//!   is the lowercase hex SHA-256 of the key (what the sign-in's success page links to). It shows
//!   the label, the key's first and last characters, its credit limit and whether it is active,
//!   with a "Revoke" form (`POST /keys/<hash>/revoke`, which revokes it like
//!   [`Emulator::revoke_key`] and shows the page again). An unknown hash gets a 404 page.
//!
//! Faults ([`Fault`]) can be injected on the exchange endpoint, and the emulator's clock can be
//! advanced ([`Emulator::advance_clock`]) to expire codes. Every method of [`Emulator`] is
//! synchronous, so it can be driven from plain `#[test]`s as well as from async code.
//!
//! # Exchange rules
//!
//! Checks run in this order: unknown code → 403 `Invalid code or code_verifier`; code already used
//! → 403 `Invalid code or code_verifier`; more than 10 minutes since issue → 403 `Authorization
//! code expired`; `code_challenge_method` (default `S256` when absent) differs from the one given
//! at `/auth` → 400 `Invalid code_challenge_method`; verifier does not match the challenge → 403
//! `Invalid code or code_verifier`. A request that reaches the verifier check burns the code,
//! whether the verifier matched or not. A code issued without `code_challenge` (allowed in
//! callback mode) skips the method and verifier checks.
//!
//! # Faults and the code
//!
//! Faults apply only to `POST /api/v1/auth/keys`. [`Fault::InternalError`],
//! [`Fault::BadGateway`], [`Fault::Unavailable`], [`Fault::RateLimited`] and [`Fault::Conflict`]
//! answer before the request is processed: the code is **not** consumed and no key is issued, so
//! a retry can succeed. [`Fault::Slow`], [`Fault::MalformedJson`], [`Fault::TruncatedBody`] and
//! [`Fault::OkWithoutKey`] process the exchange for real (the code is consumed and, on success,
//! the key is issued and listed by [`Emulator::issued_keys`]); `Slow` delays the answer, the other
//! three replace a successful answer's body by a broken one, like a response lost in transit. When
//! the real exchange fails (e.g. a reused code), its error response is sent unchanged.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use url::Url;
use wiremock::http::Method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

/// How long an authorization code stays valid after it was issued (emulator clock).
pub const CODE_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// The label a key gets when `/auth` was called without `key_label`.
pub const DEFAULT_KEY_LABEL: &str = "openrouter-auth";

/// The longest `key_label` (in characters) that `/auth` accepts.
pub const MAX_KEY_LABEL_CHARS: usize = 100;

/// The title of the consent page shown in [`Mode::Consent`].
pub const CONSENT_PAGE_TITLE: &str = "Authorize application — OpenRouter emulator";

/// How `GET /auth` answers a valid request that has a `callback_url`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Redirect (302) straight to `callback_url` with a new `code` appended, as if the user were
    /// already signed in and had approved the app.
    #[default]
    Redirect,
    /// Show a consent page with an "Approve" link (`/auth/approve?request=ID`) and a "Deny" link
    /// (`/auth/deny?request=ID`); each request id can be used once.
    Consent,
}

/// The PKCE `code_challenge_method`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChallengeMethod {
    /// `S256`: the challenge is BASE64URL-no-pad(SHA-256(verifier)).
    S256,
    /// `plain`: the challenge is the verifier itself.
    Plain,
}

impl ChallengeMethod {
    /// Parses the wire value (`S256` or `plain`, case-sensitive).
    pub fn parse(value: &str) -> Option<Self> {
        match value {
            "S256" => Some(Self::S256),
            "plain" => Some(Self::Plain),
            _ => None,
        }
    }

    /// The wire value: `S256` or `plain`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::S256 => "S256",
            Self::Plain => "plain",
        }
    }

    /// Whether `verifier` matches `challenge` under this method.
    pub fn verify(self, verifier: &str, challenge: &str) -> bool {
        match self {
            Self::S256 => URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge,
            Self::Plain => verifier == challenge,
        }
    }
}

/// A failure injected on `POST /api/v1/auth/keys`.
///
/// See the [module documentation](self) for which faults consume the code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// 500 `{"error": {"code": 500, "message": "Internal Server Error"}}`; code not consumed.
    InternalError,
    /// 502 with an HTML body (as a proxy would send); code not consumed.
    BadGateway,
    /// 503 `{"error": {"code": 503, "message": "Service Unavailable"}}`; code not consumed.
    Unavailable,
    /// 429 `{"error": {"code": 429, "message": "Rate limit exceeded"}}` with a `Retry-After`
    /// header; code not consumed.
    RateLimited {
        /// The value of the `Retry-After` header, in seconds.
        retry_after_secs: u64,
    },
    /// 409 `{"error": {"code": 409, "message": "Failed to create or update app"}}`; code not
    /// consumed.
    Conflict,
    /// The exchange is processed normally, but the answer is sent after this delay.
    Slow(Duration),
    /// The exchange is processed (key issued); a success answer's body is `{"key": ` (not JSON).
    MalformedJson,
    /// The exchange is processed (key issued); a success answer's body is cut short to its first
    /// 20 bytes, `{"key":"sk-or-v1-` plus two hex digits of the real key.
    TruncatedBody,
    /// The exchange is processed (key issued); a success answer's body is `{"user_id":"user_x"}`.
    OkWithoutKey,
}

/// A key the emulator issued through a successful exchange.
#[derive(Debug, Clone, PartialEq)]
pub struct IssuedKey {
    /// The API key, `sk-or-v1-` followed by 64 lowercase hex digits.
    pub key: String,
    /// The key's label (the `key_label` given at `/auth`, or [`DEFAULT_KEY_LABEL`]).
    pub label: String,
    /// The `user_id` returned with the key.
    pub user_id: String,
    /// The PKCE method the code was bound to, `None` if `/auth` had no `code_challenge`.
    pub code_challenge_method: Option<ChallengeMethod>,
    /// Whether the key was revoked ([`Emulator::revoke_key`], or the key page's form).
    pub revoked: bool,
    /// The credit limit in US dollars (the `limit` given at `/auth`), `None` for no limit;
    /// `GET /api/v1/key` reports it as `limit` and `limit_remaining`.
    pub limit: Option<f64>,
}

/// The query of one `GET /auth` request the emulator received (valid or not).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AuthorizeRequest {
    /// `callback_url`, if present.
    pub callback_url: Option<String>,
    /// `code_challenge`, if present.
    pub code_challenge: Option<String>,
    /// `code_challenge_method`, if present.
    pub code_challenge_method: Option<String>,
    /// `key_label`, if present.
    pub key_label: Option<String>,
    /// `state`, if present (OpenRouter does not document it; the emulator ignores it).
    pub state: Option<String>,
    /// Every query parameter, decoded, in order.
    pub params: Vec<(String, String)>,
}

impl AuthorizeRequest {
    fn from_url(url: &Url) -> Self {
        let params: Vec<(String, String)> = url
            .query_pairs()
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let get = |name: &str| {
            params
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        Self {
            callback_url: get("callback_url"),
            code_challenge: get("code_challenge"),
            code_challenge_method: get("code_challenge_method"),
            key_label: get("key_label"),
            state: get("state"),
            params,
        }
    }
}

/// Options for [`Emulator::start_with`] and [`Emulator::start_with_blocking`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EmulatorOptions {
    /// The port to listen on (on 127.0.0.1); 0 picks a free port.
    pub port: u16,
    /// The initial [`Mode`].
    pub mode: Mode,
}

/// A validated authorization request, waiting for a code (consent mode) or turned into one.
#[derive(Debug, Clone)]
struct Grant {
    callback: Option<Url>,
    challenge: Option<String>,
    method: ChallengeMethod,
    label: String,
    limit: Option<f64>,
}

#[derive(Debug)]
struct CodeRecord {
    grant: Grant,
    issued_at: Duration,
    used: bool,
}

struct State {
    mode: Mode,
    started: Instant,
    clock_offset: Duration,
    rng: ChaCha20Rng,
    codes: HashMap<String, CodeRecord>,
    pending: HashMap<String, Grant>,
    keys: Vec<IssuedKey>,
    persistent_fault: Option<Fault>,
    once_faults: VecDeque<Fault>,
    exchange_attempts: usize,
    authorize_requests: Vec<AuthorizeRequest>,
    reported_label: Option<String>,
}

impl State {
    fn new(mode: Mode) -> Self {
        Self {
            mode,
            started: Instant::now(),
            clock_offset: Duration::ZERO,
            rng: ChaCha20Rng::from_os_rng(),
            codes: HashMap::new(),
            pending: HashMap::new(),
            keys: Vec::new(),
            persistent_fault: None,
            once_faults: VecDeque::new(),
            exchange_attempts: 0,
            authorize_requests: Vec::new(),
            reported_label: None,
        }
    }

    /// Time on the emulator clock: real time since start plus every `advance_clock`.
    fn now(&self) -> Duration {
        self.started.elapsed() + self.clock_offset
    }

    fn random_hex(&mut self, bytes: usize) -> String {
        let mut buf = vec![0u8; bytes];
        self.rng.fill_bytes(&mut buf);
        buf.iter().map(|b| format!("{b:02x}")).collect()
    }

    fn issue_code(&mut self, grant: Grant) -> String {
        let code = self.random_hex(16);
        let issued_at = self.now();
        self.codes.insert(
            code.clone(),
            CodeRecord {
                grant,
                issued_at,
                used: false,
            },
        );
        code
    }
}

/// A running OpenRouter emulator. Dropping it shuts the server down.
pub struct Emulator {
    server: MockServer,
    base_url: Url,
    state: Arc<Mutex<State>>,
}

impl fmt::Debug for Emulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Emulator")
            .field("base_url", &self.base_url.as_str())
            .finish_non_exhaustive()
    }
}

impl Emulator {
    /// Starts an emulator on a free port of 127.0.0.1 in [`Mode::Redirect`].
    ///
    /// # Panics
    ///
    /// If no port can be bound on 127.0.0.1.
    pub async fn start() -> Emulator {
        Self::start_with(EmulatorOptions::default())
            .await
            .expect("bind 127.0.0.1:0 for the OpenRouter emulator")
    }

    /// Starts an emulator with the given options.
    ///
    /// # Errors
    ///
    /// If the port cannot be bound (e.g. it is taken).
    pub async fn start_with(options: EmulatorOptions) -> io::Result<Emulator> {
        let listener = TcpListener::bind(SocketAddr::from((Ipv4Addr::LOCALHOST, options.port)))?;
        let address = listener.local_addr()?;
        let server = MockServer::builder()
            .listener(listener)
            .disable_request_recording()
            .start()
            .await;
        let state = Arc::new(Mutex::new(State::new(options.mode)));
        Mock::given(wiremock::matchers::any())
            .respond_with(Router {
                state: Arc::clone(&state),
            })
            .mount(&server)
            .await;
        let base_url = Url::parse(&format!("http://{address}/")).map_err(io::Error::other)?;
        Ok(Emulator {
            server,
            base_url,
            state,
        })
    }

    /// Starts an emulator like [`Emulator::start`], from synchronous code.
    ///
    /// Works inside or outside a tokio runtime: the server always runs on its own thread.
    ///
    /// # Panics
    ///
    /// If no port can be bound on 127.0.0.1.
    pub fn start_blocking() -> Emulator {
        Self::start_with_blocking(EmulatorOptions::default())
            .expect("bind 127.0.0.1:0 for the OpenRouter emulator")
    }

    /// Starts an emulator like [`Emulator::start_with`], from synchronous code.
    ///
    /// # Errors
    ///
    /// If the port cannot be bound (e.g. it is taken).
    pub fn start_with_blocking(options: EmulatorOptions) -> io::Result<Emulator> {
        // wiremock serves from its own thread and runtime; the runtime built here is only needed
        // while starting. A separate thread keeps this usable inside an async context too.
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?
                .block_on(Self::start_with(options))
        })
        .join()
        .map_err(|_| io::Error::other("the emulator's start-up thread panicked"))?
    }

    /// The emulator's base URL, e.g. `http://127.0.0.1:41234/` (with a trailing slash, so
    /// `base_url().join("auth")` works).
    pub fn base_url(&self) -> Url {
        self.base_url.clone()
    }

    /// The socket address the emulator listens on.
    pub fn address(&self) -> SocketAddr {
        *self.server.address()
    }

    /// Changes how `GET /auth` answers from now on.
    pub fn set_mode(&self, mode: Mode) {
        self.lock().mode = mode;
    }

    /// Makes every following exchange fail with `fault` until [`Emulator::clear_faults`];
    /// replaces a previous persistent fault. Faults queued by [`Emulator::inject_fault_once`]
    /// fire first.
    pub fn inject_fault(&self, fault: Fault) {
        self.lock().persistent_fault = Some(fault);
    }

    /// Makes the next exchange request (only) fail with `fault`. Several calls queue up, one
    /// fault per request.
    pub fn inject_fault_once(&self, fault: Fault) {
        self.lock().once_faults.push_back(fault);
    }

    /// Removes the persistent fault and every queued one-shot fault.
    pub fn clear_faults(&self) {
        let mut state = self.lock();
        state.persistent_fault = None;
        state.once_faults.clear();
    }

    /// Moves the emulator clock forward (codes expire [`CODE_LIFETIME`] after issue).
    pub fn advance_clock(&self, by: Duration) {
        self.lock().clock_offset += by;
    }

    /// Every key issued so far, oldest first (revoked ones included, with `revoked: true`).
    pub fn issued_keys(&self) -> Vec<IssuedKey> {
        self.lock().keys.clone()
    }

    /// Revokes `key`: `GET /api/v1/key` answers 401 for it from now on. Returns whether the
    /// key was known (and not already revoked).
    pub fn revoke_key(&self, key: &str) -> bool {
        let mut state = self.lock();
        match state.keys.iter_mut().find(|k| k.key == key && !k.revoked) {
            Some(k) => {
                k.revoked = true;
                true
            }
            None => false,
        }
    }

    /// Makes every following `GET /api/v1/key` answer report `label` as the key's `label`
    /// instead of the one given at `/auth` (`None`: the key's own again): a label renamed on
    /// OpenRouter's key page, or a hostile stand-in, can be any text (escape sequences, C1
    /// controls, bidi overrides), which the client must show without acting on it.
    pub fn set_reported_label(&self, label: Option<&str>) {
        self.lock().reported_label = label.map(str::to_owned);
    }

    /// How many requests reached `POST /api/v1/auth/keys`, faulted or malformed ones included.
    pub fn exchange_attempts(&self) -> usize {
        self.lock().exchange_attempts
    }

    /// The query of every `GET /auth` request received so far, oldest first (rejected ones
    /// included).
    pub fn authorize_requests(&self) -> Vec<AuthorizeRequest> {
        self.lock().authorize_requests.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The single responder: routes by path and method and keeps all state in `State`.
struct Router {
    state: Arc<Mutex<State>>,
}

impl Respond for Router {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let mut state = lock(&self.state);
        let method = &request.method;
        match request.url.path() {
            "/auth" => match *method {
                Method::GET => authorize(&mut state, &request.url),
                _ => html_error(405, "Method Not Allowed"),
            },
            "/auth/approve" | "/auth/deny" => match *method {
                Method::GET => decide(&mut state, &request.url),
                _ => html_error(405, "Method Not Allowed"),
            },
            "/api/v1/auth/keys" => match *method {
                Method::POST => exchange_with_faults(&mut state, request),
                _ => json_error(405, "Method Not Allowed"),
            },
            "/api/v1/key" | "/api/v1/auth/key" => match *method {
                Method::GET => key_info(&state, request),
                _ => json_error(405, "Method Not Allowed"),
            },
            path if path.starts_with("/keys/") => {
                let rest = &path["/keys/".len()..];
                match (rest.strip_suffix("/revoke"), method) {
                    (None, &Method::GET) => key_page(&state, rest),
                    (Some(hash), &Method::POST) => revoke_on_key_page(&mut state, hash),
                    _ => html_error(405, "Method Not Allowed"),
                }
            }
            _ => json_error(404, "Not Found"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// GET /keys/<hash>: the key's page

/// The title of every key page: `API key · <label> — OpenRouter emulator`.
pub const KEY_PAGE_TITLE: &str = "API key";

/// Lowercase hex SHA-256 of `key`: the id in its page's URL.
pub fn key_hash(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn key_page(state: &State, hash: &str) -> ResponseTemplate {
    let Some(key) = state.keys.iter().find(|k| key_hash(&k.key) == hash) else {
        return html(
            404,
            page(
                "Key not found — OpenRouter emulator",
                "<h1>Key not found</h1><p id=\"error\">No API key of yours has this address.</p>",
            ),
        );
    };
    let shown = format!("{}…{}", &key.key[..12], &key.key[key.key.len() - 4..]);
    let limit = match key.limit {
        Some(usd) => format!("${usd:.2}"),
        None => "No limit".into(),
    };
    let (status, action) = if key.revoked {
        ("Revoked", String::new())
    } else {
        (
            "Active",
            format!(
                "<form method=\"post\" action=\"/keys/{hash}/revoke\">\
                 <button id=\"revoke\" type=\"submit\">Revoke</button></form>"
            ),
        )
    };
    html(
        200,
        page(
            &format!("{KEY_PAGE_TITLE} · {} — OpenRouter emulator", key.label),
            &format!(
                "<h1 id=\"label\">{}</h1><dl><dt>Key</dt><dd id=\"key\">{}</dd>\
                 <dt>Credit limit</dt><dd id=\"limit\">{}</dd>\
                 <dt>Status</dt><dd id=\"status\">{status}</dd></dl>{action}",
                escape(&key.label),
                escape(&shown),
                escape(&limit),
            ),
        ),
    )
}

fn revoke_on_key_page(state: &mut State, hash: &str) -> ResponseTemplate {
    if let Some(key) = state.keys.iter_mut().find(|k| key_hash(&k.key) == hash) {
        key.revoked = true;
    }
    key_page(state, hash)
}

// ---------------------------------------------------------------------------------------------
// GET /auth and the consent links

fn authorize(state: &mut State, url: &Url) -> ResponseTemplate {
    let seen = AuthorizeRequest::from_url(url);
    state.authorize_requests.push(seen.clone());

    let callback =
        match seen.callback_url.as_deref() {
            None => None,
            Some(raw) => match valid_callback(raw) {
                Some(callback) => Some(callback),
                None => return html_error(
                    400,
                    "Invalid callback_url: it must be an https URL, or an http URL on localhost \
                     or 127.0.0.1.",
                ),
            },
        };
    let method = match seen.code_challenge_method.as_deref() {
        None => ChallengeMethod::S256,
        Some(raw) => match ChallengeMethod::parse(raw) {
            Some(method) => method,
            None => {
                return html_error(
                    400,
                    "Invalid code_challenge_method: it must be S256 or plain.",
                )
            }
        },
    };
    let challenge = seen.code_challenge.clone().filter(|c| !c.is_empty());
    if callback.is_none() && challenge.is_none() {
        return html_error(
            400,
            "A code_challenge is required when no callback_url is given.",
        );
    }
    let label = match seen.key_label.as_deref() {
        None | Some("") => DEFAULT_KEY_LABEL.to_owned(),
        Some(label) if label.chars().count() > MAX_KEY_LABEL_CHARS => {
            return html_error(400, "Invalid key_label: at most 100 characters.")
        }
        Some(label) => label.to_owned(),
    };
    let limit = match url.query_pairs().find(|(k, _)| k == "limit") {
        None => None,
        Some((_, raw)) => match raw.trim().parse::<f64>() {
            Ok(usd) if usd.is_finite() && usd > 0.0 => Some(usd),
            _ => {
                return html_error(
                    400,
                    "Invalid limit: it must be a positive number of US dollars.",
                )
            }
        },
    };
    let grant = Grant {
        callback,
        challenge,
        method,
        label,
        limit,
    };
    match state.mode {
        Mode::Redirect => {
            let code = state.issue_code(grant.clone());
            deliver_code(&grant, &code)
        }
        Mode::Consent => {
            let id = state.random_hex(16);
            let page = consent_page(&grant, &id);
            state.pending.insert(id, grant);
            html(200, page)
        }
    }
}

/// `GET /auth/approve?request=ID` and `GET /auth/deny?request=ID`.
fn decide(state: &mut State, url: &Url) -> ResponseTemplate {
    let approve = url.path() == "/auth/approve";
    let id = url
        .query_pairs()
        .find(|(k, _)| k == "request")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default();
    let Some(grant) = state.pending.remove(&id) else {
        return html_error(400, "Unknown or already used authorization request.");
    };
    if approve {
        let code = state.issue_code(grant.clone());
        return deliver_code(&grant, &code);
    }
    match &grant.callback {
        Some(callback) => {
            let mut target = callback.clone();
            target
                .query_pairs_mut()
                .append_pair("error", "access_denied")
                .append_pair("error_description", "The user denied access");
            redirect(&target)
        }
        None => html(
            200,
            page(
                "Access denied — OpenRouter emulator",
                "<h1>Access denied</h1><p>You denied access. You can close this page.</p>",
            ),
        ),
    }
}

/// Redirects to the callback with `code`, or shows the code (headless mode).
fn deliver_code(grant: &Grant, code: &str) -> ResponseTemplate {
    match &grant.callback {
        Some(callback) => {
            let mut target = callback.clone();
            target.query_pairs_mut().append_pair("code", code);
            redirect(&target)
        }
        None => html(
            200,
            page(
                "Your authorization code — OpenRouter emulator",
                &format!(
                    "<h1>Your authorization code</h1>\
                     <p>Paste this code into the application that asked you to sign in:</p>\
                     <p><code id=\"code\">{}</code></p>\
                     <p>The code can be used once and expires in 10 minutes.</p>",
                    escape(code)
                ),
            ),
        ),
    }
}

fn valid_callback(raw: &str) -> Option<Url> {
    let url = Url::parse(raw).ok()?;
    let host = url.host_str()?;
    match url.scheme() {
        "https" => Some(url),
        "http" if host == "localhost" || host == "127.0.0.1" => Some(url),
        _ => None,
    }
}

fn consent_page(grant: &Grant, id: &str) -> String {
    let destination = match &grant.callback {
        Some(callback) => {
            let host = callback.host_str().unwrap_or_default();
            match callback.port() {
                Some(port) => format!("{host}:{port}"),
                None => host.to_owned(),
            }
        }
        None => "this device (the code will be shown on screen)".to_owned(),
    };
    page(
        CONSENT_PAGE_TITLE,
        &format!(
            "<h1>Authorize application</h1>\
             <p>An application at <strong id=\"callback-host\">{}</strong> wants to create an \
             API key named <strong id=\"key-label\">{}</strong>.</p>\
             <p><a id=\"approve\" href=\"/auth/approve?request={id}\">Approve</a> \
             <a id=\"deny\" href=\"/auth/deny?request={id}\">Deny</a></p>",
            escape(&destination),
            escape(&grant.label),
            id = escape(id),
        ),
    )
}

// ---------------------------------------------------------------------------------------------
// POST /api/v1/auth/keys

fn exchange_with_faults(state: &mut State, request: &Request) -> ResponseTemplate {
    state.exchange_attempts += 1;
    let fault = state
        .once_faults
        .pop_front()
        .or_else(|| state.persistent_fault.clone());
    match fault {
        None => exchange(state, request).1,
        Some(Fault::InternalError) => json_error(500, "Internal Server Error"),
        Some(Fault::BadGateway) => html(
            502,
            page(
                "502 Bad Gateway",
                "<h1>502 Bad Gateway</h1><p>The upstream server returned an invalid response.</p>",
            ),
        ),
        Some(Fault::Unavailable) => json_error(503, "Service Unavailable"),
        Some(Fault::RateLimited { retry_after_secs }) => json_error(429, "Rate limit exceeded")
            .insert_header("Retry-After", retry_after_secs.to_string().as_str()),
        Some(Fault::Conflict) => json_error(409, "Failed to create or update app"),
        Some(Fault::Slow(delay)) => exchange(state, request).1.set_delay(delay),
        Some(fault @ (Fault::MalformedJson | Fault::TruncatedBody | Fault::OkWithoutKey)) => {
            let (issued, response) = exchange(state, request);
            let Some(key) = issued else {
                return response;
            };
            let body = match fault {
                Fault::MalformedJson => "{\"key\": ".to_owned(),
                Fault::TruncatedBody => {
                    // `{"key":"sk-or-v1-` plus two hex digits: a prefix of the real body.
                    let full = json!({"key": key.key, "user_id": key.user_id}).to_string();
                    full[..r#"{"key":"sk-or-v1-ab"#.len()].to_owned()
                }
                _ => json!({"user_id": "user_x"}).to_string(),
            };
            ResponseTemplate::new(200).set_body_raw(body.into_bytes(), "application/json")
        }
    }
}

/// Processes an exchange for real; returns the issued key on success.
fn exchange(state: &mut State, request: &Request) -> (Option<IssuedKey>, ResponseTemplate) {
    let is_json = request
        .headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| mime.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return (
            None,
            json_error(400, "Content-Type must be application/json"),
        );
    }
    let Ok(Value::Object(body)) = serde_json::from_slice::<Value>(&request.body) else {
        return (None, json_error(400, "Invalid JSON body"));
    };
    // A field that is absent or null is `Ok(None)`; a non-string is an error message.
    let field = |name: &str| -> Result<Option<String>, String> {
        match body.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(_) => Err(format!("Invalid {name}: expected a string")),
        }
    };
    let (code, verifier, method) = match (
        field("code"),
        field("code_verifier"),
        field("code_challenge_method"),
    ) {
        (Ok(Some(code)), Ok(verifier), Ok(method)) => (code, verifier, method),
        (Ok(None), ..) => return (None, json_error(400, "Missing code")),
        (Err(message), ..) | (_, Err(message), _) | (.., Err(message)) => {
            return (None, json_error(400, &message))
        }
    };

    let now = state.now();
    let Some(record) = state.codes.get_mut(&code) else {
        return (None, json_error(403, "Invalid code or code_verifier"));
    };
    if record.used {
        return (None, json_error(403, "Invalid code or code_verifier"));
    }
    if now.saturating_sub(record.issued_at) > CODE_LIFETIME {
        return (None, json_error(403, "Authorization code expired"));
    }
    let bound_method = match &record.grant.challenge {
        None => None,
        Some(challenge) => {
            let requested = method.as_deref().unwrap_or("S256");
            if requested != record.grant.method.as_str() {
                return (None, json_error(400, "Invalid code_challenge_method"));
            }
            record.used = true;
            let verified = verifier
                .as_deref()
                .is_some_and(|v| record.grant.method.verify(v, challenge));
            if !verified {
                return (None, json_error(403, "Invalid code or code_verifier"));
            }
            Some(record.grant.method)
        }
    };
    record.used = true;
    let label = record.grant.label.clone();
    let limit = record.grant.limit;
    let key = IssuedKey {
        key: format!("sk-or-v1-{}", state.random_hex(32)),
        label,
        user_id: format!("user_{}", state.random_hex(12)),
        code_challenge_method: bound_method,
        revoked: false,
        limit,
    };
    state.keys.push(key.clone());
    let response =
        ResponseTemplate::new(200).set_body_json(json!({"key": key.key, "user_id": key.user_id}));
    (Some(key), response)
}

// ---------------------------------------------------------------------------------------------
// GET /api/v1/key

fn key_info(state: &State, request: &Request) -> ResponseTemplate {
    let bearer = request
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then(|| token.trim())
                .filter(|t| !t.is_empty())
        });
    let Some(token) = bearer else {
        return json_error(401, "No auth credentials found");
    };
    let Some(key) = state.keys.iter().find(|k| k.key == token && !k.revoked) else {
        return json_error(401, "User not found.");
    };
    ResponseTemplate::new(200).set_body_json(json!({
        "data": {
            "label": state.reported_label.as_deref().unwrap_or(&key.label),
            "limit": key.limit,
            // Nothing is spent on the emulator: all of the limit remains.
            "limit_remaining": key.limit,
            "usage": 0.0,
            "usage_daily": 0.0,
            "usage_weekly": 0.0,
            "usage_monthly": 0.0,
            "is_free_tier": true,
            "is_provisioning_key": false,
            "expires_at": null,
            "rate_limit": {"requests": 20, "interval": "10s"},
        }
    }))
}

// ---------------------------------------------------------------------------------------------
// Responses

fn json_error(status: u16, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({
        "error": {"code": status, "message": message}
    }))
}

fn redirect(target: &Url) -> ResponseTemplate {
    ResponseTemplate::new(302)
        .insert_header("Location", target.as_str())
        .insert_header("Cache-Control", "no-store")
}

fn html(status: u16, body: String) -> ResponseTemplate {
    ResponseTemplate::new(status)
        .set_body_raw(body.into_bytes(), "text/html; charset=utf-8")
        .insert_header("Cache-Control", "no-store")
}

fn html_error(status: u16, message: &str) -> ResponseTemplate {
    html(
        status,
        page(
            "Error — OpenRouter emulator",
            &format!(
                "<h1>Something went wrong</h1><p id=\"error\">{}</p>",
                escape(message)
            ),
        ),
    )
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>{}</title></head><body>{body}</body></html>\n",
        escape(title)
    )
}

/// HTML-escapes text for element content and double-quoted attributes.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s256_matches_rfc7636_appendix_b() {
        assert!(ChallengeMethod::S256.verify(
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        ));
        assert!(!ChallengeMethod::S256.verify("x", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"));
    }

    #[test]
    fn escape_escapes_markup() {
        assert_eq!(
            escape("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }
}
