//! The flow's invariant oracle, its op codec and the fuzz target bodies of the core's parsers:
//! test code of the proving ground, never compiled into the published crates.
//!
//! The `fuzz/` cargo-fuzz workspace calls these functions from one-line `fuzz_target!`s, and
//! `cargo test` runs them over the committed seed corpus (`fuzz/corpus/<target>/`, in
//! `sim/tests/fuzz_corpus.rs`), so the bodies are compiled and exercised by every normal build
//! of the workspace.
//!
//! - [`callback_target`]: [`parse_callback`] on raw request-target bytes.
//! - [`exchange_response`]: [`parse_exchange_response`] on a status, a `Retry-After` and a body.
//! - [`key_info`]: [`parse_key_info`] on a status and a body.
//! - [`flow_inputs`]: a byte-coded sequence of [`FuzzOp`]s (inputs and time steps) driven
//!   through a [`CheckedFlow`], which checks the flow's invariants after every step.
//!
//! [`CheckedFlow`] is also what the simulator (`openrouter-auth-sim`), the `http_head` fuzz
//! body and the core's property tests drive, so all of them check the same rules. Each body
//! panics (and so crashes the fuzzer) on the first broken rule, with the rule's name in the
//! message.
//!
//! Nothing here is meant for production: [`FuzzRng`] is a deterministic, *non*-cryptographic
//! generator that only claims `CryptoRng` so it can stand in for the OS RNG in tests.
#![forbid(unsafe_code)]

use memchr::memmem::Finder;
use openrouter_auth_core::callback::{
    parse_callback, CallbackTarget, NotOurs, MAX_CODE_BYTES, MAX_TARGET_BYTES,
};
use openrouter_auth_core::exchange::parse_exchange_response;
use openrouter_auth_core::flow::{
    BrowserRequest, ConnectionId, ExchangeId, Flow, FlowConfig, Handled, Ignored, Input, Outcome,
    Output, Phase, MAX_PASTED_CODES,
};
use openrouter_auth_core::http::HttpResponse;
use openrouter_auth_core::key_info::{parse_key_info, KeyCheckError};
use openrouter_auth_core::pkce::{CodeChallengeMethod, CodeVerifier};
use openrouter_auth_core::secret::FlowNonce;
use openrouter_auth_core::time::Time;
use openrouter_auth_core::CallbackHost;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::time::Duration;
use zeroize::Zeroizing;

// ---------------------------------------------------------------------------------------------
// A deterministic RNG
// ---------------------------------------------------------------------------------------------

/// SplitMix64: a tiny deterministic generator for fuzz harnesses. **Not** a CSPRNG; it claims
/// [`rand_core::CryptoRng`] only so [`Flow::new`] accepts it in tests.
#[derive(Debug, Clone)]
pub struct FuzzRng(u64);

impl FuzzRng {
    /// A generator whose whole output is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        FuzzRng(seed)
    }
}

impl rand_core::RngCore for FuzzRng {
    fn next_u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn fill_bytes(&mut self, dst: &mut [u8]) {
        for chunk in dst.chunks_mut(8) {
            let v = self.next_u64().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

impl rand_core::CryptoRng for FuzzRng {}

/// The nonce [`callback_target`] parses against: the one a flow drawn from `FuzzRng::new(0)`
/// would get, so corpus files can carry it.
pub fn fixed_nonce() -> FlowNonce {
    FlowNonce::generate(&mut FuzzRng::new(0))
}

// ---------------------------------------------------------------------------------------------
// The checker
// ---------------------------------------------------------------------------------------------

/// A broken invariant: its stable name and what happened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Violation {
    /// The rule, e.g. `one-exchange-in-flight`. See [`CheckedFlow`] for the list.
    pub invariant: &'static str,
    /// What happened, without secrets.
    pub detail: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "invariant `{}` broken: {}", self.invariant, self.detail)
    }
}

impl std::error::Error for Violation {}

fn violation(invariant: &'static str, detail: impl Into<String>) -> Result<(), Violation> {
    Err(Violation {
        invariant,
        detail: detail.into(),
    })
}

#[derive(Debug, Clone, Copy, Default)]
struct RequestState {
    responses: u32,
    closed: bool,
}

/// Each request's state by connection, in connection order: a sorted `Vec` (drivers number
/// connections upwards, so an insert is a push), iterated like the `BTreeMap` it replaces.
#[derive(Debug, Default)]
struct Requests(Vec<(ConnectionId, RequestState)>);

impl Requests {
    fn get(&self, conn: &ConnectionId) -> Option<&RequestState> {
        let i = self.0.binary_search_by_key(conn, |(c, _)| *c).ok()?;
        Some(&self.0[i].1)
    }

    fn get_mut(&mut self, conn: &ConnectionId) -> Option<&mut RequestState> {
        let i = self.0.binary_search_by_key(conn, |(c, _)| *c).ok()?;
        Some(&mut self.0[i].1)
    }

    fn insert(&mut self, conn: ConnectionId, st: RequestState) {
        if self.0.last().is_none_or(|(c, _)| *c < conn) {
            self.0.push((conn, st));
            return;
        }
        match self.0.binary_search_by_key(&conn, |(c, _)| *c) {
            Ok(i) => self.0[i].1 = st,
            Err(i) => self.0.insert(i, (conn, st)),
        }
    }

    fn iter(&self) -> impl Iterator<Item = (&ConnectionId, &RequestState)> {
        self.0.iter().map(|(c, st)| (c, st))
    }
}

/// A [`Flow`] plus the rules it must keep, checked after every step.
///
/// Drive it like a flow ([`CheckedFlow::handle_input`], [`CheckedFlow::handle_timeout`]); each
/// call drains and returns the outputs, or the first broken rule:
///
/// - `stored-needs-own-callback-code`: no `StoreKey` (so no `Stored`) unless the exchange that
///   produced the key carried a code that reached the flow on its own nonce path (a GET
///   callback or a pasted URL/code) and that OpenRouter issued for this flow's
///   `code_challenge` (the driver says which codes it issued: [`CheckedFlow::note_code_issued`]);
///   `Stored` holds the key `StoreKey` carried.
/// - `exchange-carries-own-code`: every `SendExchange` carries such a code, this flow's
///   verifier and its configured `code_challenge_method`.
/// - `one-exchange-in-flight`: no `SendExchange` while another has had no answer; ids are fresh.
/// - `stale-answers-ignored`: an answer (or failure) for an exchange that is not in flight
///   (stale, duplicated, unsolicited) changes nothing and produces nothing.
/// - `one-code-per-flow`: every exchange of a flow carries the same code (one flow, one code,
///   one exchange: PROTOCOL.md section 7), however many valid codes reach it. The one
///   exception: in headless mode, after OpenRouter refused a *pasted* code with 403 `Invalid
///   code or code_verifier` (so it was never accepted and no key exists), the flow may
///   exchange another pasted code, up to [`MAX_PASTED_CODES`] codes in all.
/// - `no-resend-after-maybe-sent`: a code is never sent again once an exchange carrying it got
///   any answer or failed with `may_have_been_sent: true`.
/// - `verifier-only-in-exchange-body`: the `code_verifier` appears in no output (URL, page,
///   message, `Debug` or serde form) but the exchange body (the `plain` method's challenge in
///   the authorization URL excepted), nor in the flow's `Debug`
///   (searched on a sample of steps, see [`DEBUG_CHECK_EVERY`], and at the end).
/// - `secrets-stay-out-of-pages`: no browser response holds the key or an issued code,
///   except a code that OpenRouter's own answer text quoted while the exchange carried a
///   different one (the flow hides what it sent, the code and the verifier, in OpenRouter's
///   error text; it cannot know another string is a code).
/// - `terminal-is-sticky`: once `Stored` or `Failed`, phase and outcome never change; phases
///   only move forward, except from `Exchanging` back to `AwaitingCallback` in headless mode
///   when OpenRouter refused a pasted code as invalid (see `one-code-per-flow`).
/// - `one-response-per-request`: every request gets at most one response, only requests get
///   responses, and when `Finished` comes every request whose connection is still open has
///   had its response.
/// - `finished-once-and-last`: `Finished` at most once, carrying the flow's outcome; nothing
///   but browser responses after it; no timeout afterwards.
/// - `timer-makes-progress`: after a due timeout fired, the next one is later (no busy loop).
/// - `pages-tell-the-truth`: "Signed in" only once the phase is `Stored`.
/// - `store-key-once`: at most one `StoreKey`.
/// - `key-never-lost`: once OpenRouter's key reached the flow (`StoreKey`), the outcome
///   carries it (`Stored` or `KeyNotStored`), whatever else happens.
#[derive(Debug)]
pub struct CheckedFlow {
    flow: Flow,
    verifier: Zeroizing<String>,
    challenge: String,
    nonce: Zeroizing<String>,
    method: CodeChallengeMethod,
    own_codes: BTreeSet<String>,
    own_error_delivered: bool,
    issued: BTreeMap<String, String>,
    /// Issued codes that an exchange answer quoted while that exchange carried another code.
    quoted_by_openrouter: BTreeSet<String>,
    requests: Requests,
    in_flight: Option<(ExchangeId, String)>,
    used_ids: BTreeSet<u64>,
    maybe_reached: BTreeSet<String>,
    last_answered_code: Option<String>,
    exchanged_code: Option<String>,
    /// Codes OpenRouter refused with 403 `Invalid code or code_verifier`.
    refused_codes: BTreeSet<String>,
    /// How many different codes the flow exchanged.
    codes_exchanged: u32,
    store_key: Option<Zeroizing<String>>,
    /// The secrets to look for in every output, each searched with a prebuilt searcher.
    needles: Needles,
    /// Reused for the flow's `Debug` form after every step.
    debug_buf: String,
    /// Response parts already searched that hold none of the current secrets.
    clean: CleanParts,
    /// Reused for the `Debug` and serde forms of the outputs `check_secrets` formats.
    out_buf: String,
    /// Reused for the serde form of those outputs.
    json_buf: Vec<u8>,
    terminal: Option<Option<Outcome>>,
    last_phase: Phase,
    last_handled: Option<Handled>,
    finished: bool,
    steps: u64,
}

/// The flow's `Debug` form is searched for the verifier on one step in this many (and always
/// on the first, the one that finishes the flow, and in [`CheckedFlow::check_end`]).
pub const DEBUG_CHECK_EVERY: u64 = 8;

fn check_debug_form(needles: &Needles, debug: &str) -> Result<(), Violation> {
    if needles.verifier.find(debug.as_bytes()).is_some() {
        violation("verifier-only-in-exchange-body", "the flow's Debug output")?;
    }
    Ok(())
}

/// Prebuilt substring searchers for the secrets `check_secrets` hunts: building a searcher
/// costs more than running it over a page, and every step renders pages.
struct Needles {
    verifier: Finder<'static>,
    key: Option<Finder<'static>>,
    /// Every non-empty code OpenRouter issued, with its searcher.
    codes: Vec<(String, Finder<'static>)>,
}

impl std::fmt::Debug for Needles {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Needles")
            .field("key", &self.key.is_some())
            .field("codes", &self.codes.len())
            .finish_non_exhaustive()
    }
}

/// Browser-response parts already searched and found to hold none of the secrets in
/// [`Needles`], forgotten whenever a secret is added. A body is kept by its `Arc` (so its
/// address cannot be reused for another text while it is here), static headers by address.
/// Also the bodies known not to hold the signed-in heading (kept across new secrets).
#[derive(Debug, Default)]
struct CleanParts {
    bodies: Vec<std::sync::Arc<str>>,
    headers: Vec<(usize, usize)>,
    without_heading: Vec<std::sync::Arc<str>>,
}

impl CleanParts {
    /// At most this many of each are kept (a flow renders a handful of pages).
    const MAX: usize = 16;

    fn forget(&mut self) {
        self.bodies.clear();
        self.headers.clear();
    }

    fn has_body(&self, body: &std::sync::Arc<str>) -> bool {
        self.bodies.iter().any(|b| std::sync::Arc::ptr_eq(b, body))
    }

    fn add_body(&mut self, body: &std::sync::Arc<str>) {
        if self.bodies.len() < Self::MAX {
            self.bodies.push(body.clone());
        }
    }

    fn lacks_heading(&self, body: &std::sync::Arc<str>) -> bool {
        self.without_heading
            .iter()
            .any(|b| std::sync::Arc::ptr_eq(b, body))
    }

    fn add_lacks_heading(&mut self, body: &std::sync::Arc<str>) {
        if self.without_heading.len() < Self::MAX {
            self.without_heading.push(body.clone());
        }
    }

    fn key(headers: &'static [openrouter_auth_core::page::Header]) -> (usize, usize) {
        (headers.as_ptr() as usize, headers.len())
    }

    fn has_headers(&self, headers: &'static [openrouter_auth_core::page::Header]) -> bool {
        self.headers.contains(&Self::key(headers))
    }

    fn add_headers(&mut self, headers: &'static [openrouter_auth_core::page::Header]) {
        if self.headers.len() < Self::MAX {
            self.headers.push(Self::key(headers));
        }
    }
}

/// The heading only the signed-in page has (`pages-tell-the-truth`), searched in every page.
static SIGNED_IN_HEADING: std::sync::LazyLock<Finder<'static>> =
    std::sync::LazyLock::new(|| Finder::new("<h1>Signed in to OpenRouter</h1>"));

fn finder(needle: &str) -> Finder<'static> {
    Finder::new(needle.as_bytes()).into_owned()
}

fn phase_rank(p: Phase) -> u8 {
    match p {
        Phase::Init => 0,
        Phase::AwaitingCallback => 1,
        Phase::Exchanging => 2,
        Phase::Storing => 3,
        Phase::Lingering => 4,
        Phase::Finished => 5,
        p => unreachable!("the oracle has no rule for phase {p:?}"),
    }
}

impl CheckedFlow {
    /// Starts a flow like [`Flow::new`] and learns its verifier by drawing it from a clone of
    /// `rng` first (the flow draws the verifier before anything else). Returns the flow and
    /// its first outputs (headless: `PromptForCode`). Errors: a [`Violation`] if the learnt
    /// verifier does not give the flow's challenge, or the first outputs break a rule.
    pub fn new<R>(
        config: FlowConfig,
        rng: &mut R,
        now: Time,
    ) -> Result<(CheckedFlow, Vec<Output>), Violation>
    where
        R: rand_core::CryptoRng + rand_core::RngCore + Clone,
    {
        let verifier = CodeVerifier::generate(&mut rng.clone());
        let method = config.code_challenge_method;
        let flow = Flow::new(config, rng, now).map_err(|e| Violation {
            invariant: "checker-setup",
            detail: format!("the flow refused its configuration: {e}"),
        })?;
        let challenge = flow.code_challenge().as_str().to_owned();
        if verifier.challenge(method).as_str() != challenge {
            return Err(Violation {
                invariant: "checker-setup",
                detail: "the verifier drawn from a clone of the RNG does not give the flow's \
                         challenge: Flow::new changed the order of its draws"
                    .into(),
            });
        }
        let mut checked = CheckedFlow {
            needles: Needles {
                verifier: finder(verifier.expose_secret()),
                key: None,
                codes: Vec::new(),
            },
            debug_buf: String::new(),
            clean: CleanParts::default(),
            out_buf: String::new(),
            json_buf: Vec::new(),
            verifier: Zeroizing::new(verifier.expose_secret().to_owned()),
            nonce: Zeroizing::new(flow.nonce().expose_secret().to_owned()),
            challenge,
            method,
            flow,
            own_codes: BTreeSet::new(),
            own_error_delivered: false,
            issued: BTreeMap::new(),
            quoted_by_openrouter: BTreeSet::new(),
            requests: Requests::default(),
            in_flight: None,
            used_ids: BTreeSet::new(),
            maybe_reached: BTreeSet::new(),
            last_answered_code: None,
            exchanged_code: None,
            refused_codes: BTreeSet::new(),
            codes_exchanged: 0,
            store_key: None,
            terminal: None,
            last_phase: Phase::Init,
            last_handled: None,
            finished: false,
            steps: 0,
        };
        let mut outs = Vec::new();
        checked.drain_and_check(&mut outs)?;
        Ok((checked, outs))
    }

    /// The flow (read only: drive it through the checker).
    pub fn flow(&self) -> &Flow {
        &self.flow
    }

    /// The flow's verifier, as learnt at start (for drivers that play OpenRouter).
    pub fn verifier(&self) -> &str {
        &self.verifier
    }

    /// The exchange in flight and its code, if any.
    pub fn in_flight(&self) -> Option<(ExchangeId, &str)> {
        self.in_flight.as_ref().map(|(id, c)| (*id, c.as_str()))
    }

    /// Whether `Finished` was emitted.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    /// Whether an `error=` callback on the flow's own path (or a pasted own URL with
    /// `error=`) reached the flow.
    pub fn own_error_delivered(&self) -> bool {
        self.own_error_delivered
    }

    /// The codes that reached the flow on its own nonce path or by paste.
    pub fn own_codes(&self) -> impl Iterator<Item = &str> {
        self.own_codes.iter().map(|c| c.as_str())
    }

    /// What the flow said it did with the last input or timeout.
    pub fn last_handled(&self) -> Option<Handled> {
        self.last_handled
    }

    /// How many steps (inputs and timeouts) were checked.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The driver (playing OpenRouter) issued `code` for `challenge`.
    pub fn note_code_issued(&mut self, code: &str, challenge: &str) {
        if !code.is_empty() && !self.issued.contains_key(code) {
            self.needles.codes.push((code.to_owned(), finder(code)));
            self.clean.forget();
        }
        self.issued.insert(code.to_owned(), challenge.to_owned());
    }

    /// Feeds one input, drains the outputs and checks every rule.
    pub fn handle_input(&mut self, input: Input, now: Time) -> Result<Vec<Output>, Violation> {
        let mut outs = Vec::new();
        self.handle_input_into(input, now, &mut outs)?;
        Ok(outs)
    }

    /// [`CheckedFlow::handle_input`] into a buffer the caller reuses: `outs` is cleared, then
    /// holds the outputs.
    pub fn handle_input_into(
        &mut self,
        input: Input,
        now: Time,
        outs: &mut Vec<Output>,
    ) -> Result<(), Violation> {
        let stale = match &input {
            Input::ExchangeResponse { id, .. } | Input::ExchangeFailed { id, .. } => {
                self.in_flight.as_ref().map(|(cur, _)| *cur) != Some(*id)
            }
            _ => false,
        };
        let before = (
            self.flow.phase(),
            self.flow.poll_timeout(),
            self.flow.exchanges_sent(),
        );
        self.before(&input)?;
        let handled = self.flow.handle_input(input, now);
        self.last_handled = Some(handled);
        self.drain_and_check(outs)?;
        let after = (
            self.flow.phase(),
            self.flow.poll_timeout(),
            self.flow.exchanges_sent(),
        );
        if stale && (!outs.is_empty() || before != after) {
            violation(
                "stale-answers-ignored",
                format!(
                    "an answer for an exchange not in flight changed the flow: {before:?} became {after:?} with {} outputs",
                    outs.len()
                ),
            )?;
        }
        if stale
            && !matches!(
                handled,
                Handled::Ignored(Ignored::StaleExchange | Ignored::Ended)
            )
        {
            violation(
                "stale-answers-ignored",
                format!("an answer for an exchange not in flight was reported {handled:?}"),
            )?;
        }
        if matches!(handled, Handled::Ignored(_)) && (!outs.is_empty() || before != after) {
            violation(
                "ignored-changes-nothing",
                format!(
                    "{handled:?}, but {before:?} became {after:?} with {} outputs",
                    outs.len()
                ),
            )?;
        }
        Ok(())
    }

    /// Fires the flow's timeout at `now`, drains the outputs and checks every rule.
    pub fn handle_timeout(&mut self, now: Time) -> Result<Vec<Output>, Violation> {
        let mut outs = Vec::new();
        self.handle_timeout_into(now, &mut outs)?;
        Ok(outs)
    }

    /// [`CheckedFlow::handle_timeout`] into a buffer the caller reuses: `outs` is cleared,
    /// then holds the outputs.
    pub fn handle_timeout_into(
        &mut self,
        now: Time,
        outs: &mut Vec<Output>,
    ) -> Result<(), Violation> {
        let due = self.flow.poll_timeout().filter(|t| *t <= now);
        let handled = self.flow.handle_timeout(now);
        self.last_handled = Some(handled);
        self.drain_and_check(outs)?;
        if due.is_some() == matches!(handled, Handled::Ignored(_)) {
            violation(
                "timer-makes-progress",
                format!(
                    "a timeout at {} ms with {} due was reported {handled:?}",
                    now.as_millis(),
                    due.map_or("nothing".to_string(), |t| format!("{} ms", t.as_millis()))
                ),
            )?;
        }
        if let (Some(_), Some(next)) = (due, self.flow.poll_timeout()) {
            if next <= now {
                violation(
                    "timer-makes-progress",
                    format!(
                        "after the timeout due at or before {} ms fired at {} ms the next one is still at {} ms (phase {:?})",
                        due.map_or(0, |t| t.as_millis()),
                        now.as_millis(),
                        next.as_millis(),
                        self.flow.phase()
                    ),
                )?;
            }
        }
        Ok(())
    }

    /// The rules that hold only at the end of a run: if `Finished` was emitted, every request
    /// whose connection stayed open had exactly one response.
    pub fn check_end(&self) -> Result<(), Violation> {
        if self.finished {
            self.all_open_requests_answered()?;
        }
        // As long as the sampled forms were, so it is written without growing.
        let mut debug = String::with_capacity(self.debug_buf.capacity());
        write!(debug, "{:?}", self.flow).expect("formatting into a String");
        check_debug_form(&self.needles, &debug)
    }

    fn all_open_requests_answered(&self) -> Result<(), Violation> {
        for (conn, st) in self.requests.iter() {
            if !st.closed && st.responses == 0 {
                violation(
                    "one-response-per-request",
                    format!(
                        "the flow finished but request on connection {} got no response",
                        conn.0
                    ),
                )?;
            }
        }
        Ok(())
    }

    fn note_own_target(&mut self, target: &[u8], method: &str) {
        // An own target starts with the prefix and the nonce: most targets (junk, guessed
        // nonces, long ones) are ruled out here without scanning them for `#` and `?`.
        let prefix = openrouter_auth_core::callback::CALLBACK_PREFIX.as_bytes();
        let could_be_own = method == "GET"
            && target
                .strip_prefix(prefix)
                .is_some_and(|rest| rest.starts_with(self.nonce.as_bytes()));
        if !could_be_own {
            return;
        }
        let target = match target.iter().position(|&b| b == b'#') {
            Some(i) => &target[..i],
            None => target,
        };
        let (path, query) = match target.iter().position(|&b| b == b'?') {
            Some(i) => (&target[..i], &target[i + 1..]),
            None => (target, &[][..]),
        };
        let own = path
            .strip_prefix(openrouter_auth_core::callback::CALLBACK_PREFIX.as_bytes())
            .is_some_and(|rest| rest == self.nonce.as_bytes());
        if !own || method != "GET" {
            return;
        }
        for (k, v) in url::form_urlencoded::parse(query) {
            match &*k {
                "code" => {
                    self.own_codes.insert(v.into_owned());
                }
                "error" => self.own_error_delivered = true,
                _ => {}
            }
        }
    }

    fn before(&mut self, input: &Input) -> Result<(), Violation> {
        match input {
            Input::Request(BrowserRequest {
                conn,
                method,
                target,
                ..
            }) => {
                if let Some(st) = self.requests.get(conn) {
                    if !st.closed && st.responses == 0 {
                        return violation(
                            "checker-setup",
                            format!("connection id {} reused while open", conn.0),
                        );
                    }
                }
                self.requests.insert(*conn, RequestState::default());
                self.note_own_target(target, method);
            }
            Input::ConnectionClosed(conn) => {
                if let Some(st) = self.requests.get_mut(conn) {
                    st.closed = true;
                }
            }
            Input::ExchangeResponse { id, response } => {
                if let Some((cur, code)) = self.in_flight.take() {
                    if cur == *id {
                        let body = String::from_utf8_lossy(&response.body);
                        for c in self.issued.keys() {
                            if *c != code && !c.is_empty() && body.contains(c.as_str()) {
                                self.quoted_by_openrouter.insert(c.clone());
                            }
                        }
                        self.maybe_reached.insert(code.clone());
                        if parse_exchange_response(response)
                            == Err(openrouter_auth_core::FlowError::User(
                                openrouter_auth_core::UserError::InvalidCode,
                            ))
                        {
                            self.refused_codes.insert(code.clone());
                        }
                        self.last_answered_code = Some(code);
                    } else {
                        self.in_flight = Some((cur, code));
                    }
                }
            }
            Input::ExchangeFailed {
                id,
                may_have_been_sent,
                ..
            } => {
                if let Some((cur, code)) = self.in_flight.take() {
                    if cur == *id {
                        if *may_have_been_sent {
                            self.maybe_reached.insert(code);
                        }
                    } else {
                        self.in_flight = Some((cur, code));
                    }
                }
            }
            Input::Pasted(text) => {
                let text = text.trim();
                if text.starts_with("http://") || text.starts_with("https://") {
                    if let Ok(url) = url::Url::parse(text) {
                        let mut target = url.path().to_owned();
                        if let Some(q) = url.query() {
                            target.push('?');
                            target.push_str(q);
                        }
                        self.note_own_target(target.as_bytes(), "GET");
                    }
                } else if !text.is_empty() {
                    self.own_codes.insert(text.to_owned());
                }
            }
            Input::ListenerBound { .. }
            | Input::KeyStored { .. }
            | Input::KeyNotStored { .. }
            | Input::PastesClosed
            | Input::Cancel => {}
            other => unreachable!("the oracle has no rule for the input {}", input_kind(other)),
        }
        Ok(())
    }

    fn drain_and_check(&mut self, outs: &mut Vec<Output>) -> Result<(), Violation> {
        self.steps += 1;
        outs.clear();
        outs.extend(std::iter::from_fn(|| self.flow.poll_output()));
        let finished_before = self.finished;
        let mut finished_at: Option<usize> = None;
        for (i, out) in outs.iter().enumerate() {
            if (finished_before || finished_at.is_some()) && !matches!(out, Output::Respond { .. })
            {
                violation(
                    "finished-once-and-last",
                    format!("{} after Finished", output_name(out)),
                )?;
            }
            self.check_secrets(out)?;
            match out {
                Output::SendExchange { id, request, .. } => self.on_send_exchange(*id, request)?,
                Output::StoreKey { key, .. } => {
                    if self.store_key.is_some() {
                        violation("store-key-once", "a second StoreKey")?;
                    }
                    let code = self.last_answered_code.clone().unwrap_or_default();
                    if !self.own_codes.contains(&code) {
                        violation(
                            "stored-needs-own-callback-code",
                            "StoreKey after an exchange whose code never reached the flow on its own path",
                        )?;
                    }
                    match self.issued.get(&code) {
                        Some(ch) if *ch == self.challenge => {}
                        Some(_) => violation(
                            "stored-needs-own-callback-code",
                            "StoreKey for a code OpenRouter issued for another code_challenge",
                        )?,
                        None => violation(
                            "stored-needs-own-callback-code",
                            "StoreKey for a code OpenRouter never issued",
                        )?,
                    }
                    self.store_key = Some(Zeroizing::new(key.expose_secret().to_owned()));
                    self.needles.key = Some(finder(key.expose_secret()));
                    self.clean.forget();
                }
                Output::Respond { conn, response, .. } => {
                    match self.requests.get_mut(conn) {
                        None => violation(
                            "one-response-per-request",
                            format!("a response on connection {} that sent no request", conn.0),
                        )?,
                        Some(st) => {
                            st.responses += 1;
                            if st.responses > 1 {
                                violation(
                                    "one-response-per-request",
                                    format!("{} responses on connection {}", st.responses, conn.0),
                                )?;
                            }
                        }
                    }
                    if !matches!(self.flow.outcome(), Some(Outcome::Stored { .. }))
                        && !self.clean.lacks_heading(&response.body)
                    {
                        if SIGNED_IN_HEADING.find(response.body.as_bytes()).is_some() {
                            violation(
                                "pages-tell-the-truth",
                                format!("a signed-in page in phase {:?}", self.flow.phase()),
                            )?;
                        }
                        self.clean.add_lacks_heading(&response.body);
                    }
                }
                Output::Finished(outcome) => {
                    if finished_before || finished_at.is_some() {
                        violation("finished-once-and-last", "a second Finished")?;
                    }
                    if Some(outcome) != self.flow.outcome() {
                        violation(
                            "finished-once-and-last",
                            "Finished carries another outcome than the flow's",
                        )?;
                    }
                    finished_at = Some(i);
                }
                Output::OpenBrowser { .. }
                | Output::PromptForCode { .. }
                | Output::PasteRejected { .. } => {}
                other => unreachable!("the oracle has no rule for {}", output_name(other)),
            }
        }
        if finished_at.is_some() {
            self.finished = true;
            self.all_open_requests_answered()?;
        }
        if self.finished && self.flow.poll_timeout().is_some() {
            violation(
                "finished-once-and-last",
                "a timeout is still asked for after Finished",
            )?;
        }
        self.check_phase()?;
        // The flow's `Debug` form costs more than the step itself: it is searched on the
        // first step, every `DEBUG_CHECK_EVERY`th, when the flow finishes, and at the end
        // (`check_end`).
        if self.steps % DEBUG_CHECK_EVERY == 1 || finished_at.is_some() {
            self.debug_buf.clear();
            write!(self.debug_buf, "{:?}", self.flow).expect("formatting into a String");
            check_debug_form(&self.needles, &self.debug_buf)?;
        }
        Ok(())
    }

    fn check_phase(&mut self) -> Result<(), Violation> {
        let phase = self.flow.phase();
        // Borrowed: cloned only once, when the flow becomes terminal.
        let outcome = self.flow.outcome();
        // The one way back: a headless flow whose pasted code OpenRouter refused as invalid
        // waits for another paste (`one-code-per-flow` bounds how often).
        let refused_paste = self.flow.config().headless
            && self.last_phase == Phase::Exchanging
            && phase == Phase::AwaitingCallback
            && self
                .last_answered_code
                .as_ref()
                .is_some_and(|c| self.refused_codes.contains(c));
        if phase_rank(phase) < phase_rank(self.last_phase) && !refused_paste {
            return violation(
                "terminal-is-sticky",
                format!(
                    "the phase went back from {:?} to {phase:?}",
                    self.last_phase
                ),
            );
        }
        self.last_phase = phase;
        if (phase == Phase::Finished) != self.finished {
            return violation(
                "finished-once-and-last",
                format!("phase {phase:?}, Finished emitted: {}", self.finished),
            );
        }
        if let Some(o) = &self.terminal {
            if o.as_ref() != outcome {
                return violation("terminal-is-sticky", format!("{o:?} became {outcome:?}"));
            }
            return Ok(());
        }
        if self.flow.is_terminal() {
            if outcome.is_none() {
                return violation(
                    "terminal-is-sticky",
                    format!("{phase:?} without an outcome"),
                );
            }
            if let Some(k) = &self.store_key {
                if outcome.and_then(Outcome::key).map(|x| x.expose_secret()) != Some(k.as_str()) {
                    return violation(
                        "key-never-lost",
                        format!("the flow ended {phase:?} without the key OpenRouter gave it"),
                    );
                }
            }
            if matches!(outcome, Some(Outcome::Stored { .. })) {
                match (outcome, &self.store_key) {
                    (Some(Outcome::Stored { key, .. }), Some(k))
                        if key.expose_secret() == k.as_str() => {}
                    _ => {
                        return violation(
                            "stored-needs-own-callback-code",
                            "Stored without the key StoreKey carried",
                        )
                    }
                }
            }
            self.terminal = Some(outcome.cloned());
        }
        Ok(())
    }

    fn on_send_exchange(
        &mut self,
        id: ExchangeId,
        request: &openrouter_auth_core::http::HttpRequest,
    ) -> Result<(), Violation> {
        if let Some((cur, _)) = &self.in_flight {
            violation(
                "one-exchange-in-flight",
                format!(
                    "exchange {} sent while exchange {} had no answer",
                    id.0, cur.0
                ),
            )?;
        }
        if !self.used_ids.insert(id.0) {
            violation(
                "one-exchange-in-flight",
                format!("exchange id {} used twice", id.0),
            )?;
        }
        if request.url.as_str().contains(self.verifier.as_str())
            || request.headers.iter().any(|(n, v)| {
                n.contains(self.verifier.as_str()) || v.contains(self.verifier.as_str())
            })
        {
            violation(
                "verifier-only-in-exchange-body",
                "the verifier is in the exchange URL or headers",
            )?;
        }
        let Some([code, verifier, method]) = exchange_fields(&request.body) else {
            return violation("exchange-carries-own-code", "the exchange body is not JSON");
        };
        let code = code.unwrap_or_default();
        if verifier.as_deref() != Some(self.verifier.as_str()) {
            violation(
                "exchange-carries-own-code",
                "the exchange does not carry this flow's verifier",
            )?;
        }
        if method.as_deref() != Some(self.method.as_str()) {
            violation(
                "exchange-carries-own-code",
                "the exchange carries another code_challenge_method",
            )?;
        }
        if !self.own_codes.contains(&code) {
            violation(
                "exchange-carries-own-code",
                "the exchange carries a code that never reached the flow on its own path",
            )?;
        }
        if self.maybe_reached.contains(&code) {
            violation(
                "no-resend-after-maybe-sent",
                format!(
                    "exchange {} resends a code an earlier exchange may have delivered",
                    id.0
                ),
            )?;
        }
        match &self.exchanged_code {
            Some(first) if *first != code && !self.refused_codes.contains(first) => violation(
                "one-code-per-flow",
                format!(
                    "exchange {} carries another code than the flow's first exchange",
                    id.0
                ),
            )?,
            Some(first) if *first != code => {
                // The previous code was refused as invalid: a new pasted code may follow.
                self.codes_exchanged += 1;
                if !self.flow.config().headless || self.codes_exchanged > MAX_PASTED_CODES {
                    violation(
                        "one-code-per-flow",
                        format!(
                            "exchange {} is code number {} of a flow (headless: {})",
                            id.0,
                            self.codes_exchanged,
                            self.flow.config().headless
                        ),
                    )?;
                }
                self.exchanged_code = Some(code.clone());
            }
            Some(_) => {}
            None => {
                self.exchanged_code = Some(code.clone());
                self.codes_exchanged = 1;
            }
        }
        self.in_flight = Some((id, code));
        Ok(())
    }

    fn check_secrets(&mut self, out: &Output) -> Result<(), Violation> {
        let needles = &self.needles;
        let leaks = |s: &str| needles.verifier.find(s.as_bytes()).is_some();
        match out {
            Output::SendExchange { .. } => return Ok(()), // checked in on_send_exchange
            Output::OpenBrowser { url } | Output::PromptForCode { url } => {
                let mut u = url.clone();
                if self.method == CodeChallengeMethod::Plain {
                    // `plain`: the challenge *is* the verifier, by the caller's explicit choice.
                    let kept: Vec<(String, String)> = url
                        .query_pairs()
                        .filter(|(k, _)| k != "code_challenge")
                        .map(|(k, v)| (k.into_owned(), v.into_owned()))
                        .collect();
                    u.query_pairs_mut().clear().extend_pairs(kept);
                }
                if leaks(u.as_str()) {
                    violation("verifier-only-in-exchange-body", "the authorization URL")?;
                }
                if self.method == CodeChallengeMethod::Plain {
                    return Ok(());
                }
            }
            Output::Respond { response, .. } => {
                // Body, reason, then header names and values one by one (no secret holds the
                // `: ` or line break that joins them on the wire). `Ok(true)`: no secret in
                // `s` at all, not even a code OpenRouter quoted.
                let quoted = &self.quoted_by_openrouter;
                let search = |s: &str| -> Result<bool, Violation> {
                    let s = s.as_bytes();
                    if needles.verifier.find(s).is_some() {
                        violation("verifier-only-in-exchange-body", "a browser response")?;
                    }
                    if let Some(k) = &needles.key {
                        if k.find(s).is_some() {
                            violation(
                                "secrets-stay-out-of-pages",
                                "the key in a browser response",
                            )?;
                        }
                    }
                    let mut clean = true;
                    for (c, f) in &needles.codes {
                        if f.find(s).is_some() {
                            clean = false;
                            if !quoted.contains(c) {
                                violation(
                                    "secrets-stay-out-of-pages",
                                    "an authorization code in a browser response",
                                )?;
                            }
                        }
                    }
                    Ok(clean)
                };
                // The flow hands out the same rendered page (one shared body) and the same
                // static headers again and again: a part already found clean for the current
                // secrets is clean again, and is not searched a second time.
                if !self.clean.has_body(&response.body) && search(&response.body)? {
                    self.clean.add_body(&response.body);
                }
                search(&response.reason)?;
                let static_headers = match &response.headers {
                    std::borrow::Cow::Borrowed(h) => Some(*h),
                    std::borrow::Cow::Owned(_) => None,
                };
                if !static_headers.is_some_and(|h| self.clean.has_headers(h)) {
                    let mut clean = true;
                    for (n, v) in response.headers.iter() {
                        clean &= search(n)?;
                        clean &= search(v)?;
                    }
                    if let (true, Some(h)) = (clean, static_headers) {
                        self.clean.add_headers(h);
                    }
                }
                return Ok(()); // its Debug and serde forms hold nothing more
            }
            _ => {}
        }
        self.out_buf.clear();
        write!(self.out_buf, "{out:?}").expect("formatting into a String");
        if leaks(&self.out_buf) {
            violation(
                "verifier-only-in-exchange-body",
                format!("the Debug form of {}", output_name(out)),
            )?;
        }
        self.json_buf.clear();
        if serde_json::to_writer(&mut self.json_buf, out).is_ok()
            && needles.verifier.find(&self.json_buf).is_some()
        {
            violation(
                "verifier-only-in-exchange-body",
                format!("the serialised form of {}", output_name(out)),
            )?;
        }
        Ok(())
    }
}

/// The code exchange body's (`POST /api/v1/auth/keys`, PROTOCOL.md) `code`, `code_verifier`
/// and `code_challenge_method`, in that order, each `None` when missing or not a string;
/// `None` if the body is not JSON. The usual body (an object of strings, each key once) is
/// read without building a `serde_json::Value`; anything else goes through one, so both ways
/// give the same answer. Shared by the checker and the simulator's OpenRouter model.
pub fn exchange_fields(body: &[u8]) -> Option<[Option<String>; 3]> {
    #[derive(serde::Deserialize)]
    struct Strings<'a> {
        #[serde(borrow, default)]
        code: Option<std::borrow::Cow<'a, str>>,
        #[serde(borrow, default)]
        code_verifier: Option<std::borrow::Cow<'a, str>>,
        #[serde(borrow, default)]
        code_challenge_method: Option<std::borrow::Cow<'a, str>>,
    }
    let object = body.trim_ascii_start().first() == Some(&b'{');
    if let Some(b) = object
        .then(|| serde_json::from_slice::<Strings<'_>>(body).ok())
        .flatten()
    {
        let own = |f: Option<std::borrow::Cow<'_, str>>| f.map(std::borrow::Cow::into_owned);
        return Some([
            own(b.code),
            own(b.code_verifier),
            own(b.code_challenge_method),
        ]);
    }
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    let field = |name: &str| v.get(name).and_then(|v| v.as_str()).map(str::to_owned);
    Some([
        field("code"),
        field("code_verifier"),
        field("code_challenge_method"),
    ])
}

fn output_name(out: &Output) -> &'static str {
    match out {
        Output::OpenBrowser { .. } => "OpenBrowser",
        Output::PromptForCode { .. } => "PromptForCode",
        Output::Respond { .. } => "Respond",
        Output::SendExchange { .. } => "SendExchange",
        Output::StoreKey { .. } => "StoreKey",
        Output::PasteRejected { .. } => "PasteRejected",
        Output::Finished(_) => "Finished",
        _ => "an output the oracle does not know",
    }
}

/// An input's variant name (never its content).
fn input_kind(input: &Input) -> &'static str {
    match input {
        Input::ListenerBound { .. } => "ListenerBound",
        Input::Request(_) => "Request",
        Input::ConnectionClosed(_) => "ConnectionClosed",
        Input::ExchangeResponse { .. } => "ExchangeResponse",
        Input::ExchangeFailed { .. } => "ExchangeFailed",
        Input::KeyStored { .. } => "KeyStored",
        Input::KeyNotStored { .. } => "KeyNotStored",
        Input::Pasted(_) => "Pasted",
        Input::PastesClosed => "PastesClosed",
        Input::Cancel => "Cancel",
        _ => "an input the oracle does not know",
    }
}

// ---------------------------------------------------------------------------------------------
// Parser bodies
// ---------------------------------------------------------------------------------------------

/// Whether `s` holds something shaped like an API key: `sk-or-` and 8 more key characters.
pub fn contains_key_like(s: &str) -> bool {
    let b = s.as_bytes();
    let mut from = 0;
    while let Some(i) = s[from..].find("sk-or-") {
        let start = from + i + "sk-or-".len();
        let run = b[start..]
            .iter()
            .take_while(|c| c.is_ascii_alphanumeric() || **c == b'-' || **c == b'_')
            .count();
        if run >= 8 {
            return true;
        }
        from = start;
    }
    false
}

/// Body of the `callback_target` fuzz target: classifies `data` as a request target for the
/// flow whose nonce is [`fixed_nonce`], and checks the answer against an independent
/// reading of the target. Panics on a broken rule.
pub fn callback_target(data: &[u8]) {
    let nonce = fixed_nonce();
    let got = parse_callback(data, &nonce);
    assert_eq!(
        got,
        parse_callback(data, &nonce),
        "parse_callback is not deterministic"
    );
    if data.len() > MAX_TARGET_BYTES {
        assert_eq!(
            got,
            CallbackTarget::Malformed(openrouter_auth_core::callback::Malformed::TooLong)
        );
        return;
    }
    let cut = match data.iter().position(|&b| b == b'#') {
        Some(i) => &data[..i],
        None => data,
    };
    let (path, query) = match cut.iter().position(|&b| b == b'?') {
        Some(i) => (&cut[..i], &cut[i + 1..]),
        None => (cut, &[][..]),
    };
    let own = format!("/callback/{}", nonce.expose_secret());
    let own_done = format!("{own}/done");
    match &got {
        CallbackTarget::Code(code) => {
            assert_eq!(path, own.as_bytes(), "a code accepted off our path");
            let c = code.expose_secret();
            assert!(!c.is_empty() && c.len() <= MAX_CODE_BYTES && !c.chars().any(char::is_control));
            let oracle: Vec<String> = url::form_urlencoded::parse(query)
                .filter(|(k, _)| k == "code")
                .map(|(_, v)| v.into_owned())
                .collect();
            assert_eq!(
                oracle.len(),
                1,
                "a code accepted with {} `code`s",
                oracle.len()
            );
            assert_eq!(
                oracle[0], c,
                "the code differs from an independent decoding"
            );
            let states: Vec<String> = url::form_urlencoded::parse(query)
                .filter(|(k, _)| k == "state")
                .map(|(_, v)| v.into_owned())
                .collect();
            assert!(
                states.is_empty() || states == [nonce.expose_secret()],
                "a code accepted with a foreign state"
            );
            let errors = url::form_urlencoded::parse(query)
                .filter(|(k, _)| k == "error")
                .count();
            assert_eq!(errors, 0, "a code accepted alongside an error");
        }
        CallbackTarget::Error(e) => {
            assert_eq!(path, own.as_bytes(), "an error accepted off our path");
            let oracle: Vec<String> = url::form_urlencoded::parse(query)
                .filter(|(k, _)| k == "error")
                .map(|(_, v)| v.into_owned())
                .collect();
            assert_eq!(oracle, std::slice::from_ref(&e.error));
        }
        CallbackTarget::Done => assert_eq!(path, own_done.as_bytes()),
        CallbackTarget::NotOurs(NotOurs::WrongPath) => {
            assert!(!path.starts_with(b"/callback/"))
        }
        CallbackTarget::NotOurs(NotOurs::WrongNonce) => {
            assert!(path != own.as_bytes() && path != own_done.as_bytes())
        }
        CallbackTarget::NotOurs(_) | CallbackTarget::Malformed(_) | _ => {
            assert_eq!(path, own.as_bytes())
        }
    }
}

/// Builds the response the `exchange_response` and `key_info` bodies parse: two bytes of
/// status (big endian), one length byte and that many bytes of `Retry-After`, then the body.
pub fn encode_response(status: u16, retry_after: Option<&[u8]>, body: &[u8]) -> Vec<u8> {
    let mut out = status.to_be_bytes().to_vec();
    let ra = retry_after.unwrap_or_default();
    let ra = &ra[..ra.len().min(255)];
    out.push(ra.len() as u8);
    out.extend_from_slice(ra);
    out.extend_from_slice(body);
    out
}

fn decode_response(data: &[u8]) -> Option<HttpResponse> {
    let (status, rest) = data.split_first_chunk::<2>()?;
    let (&ra_len, rest) = rest.split_first()?;
    let ra_len = usize::from(ra_len).min(rest.len());
    let (ra, body) = rest.split_at(ra_len);
    let mut resp = HttpResponse::new(u16::from_be_bytes(*status), body.to_vec());
    if !ra.is_empty() {
        resp = resp.with_header("Retry-After", String::from_utf8_lossy(ra).into_owned());
    }
    Some(resp)
}

fn check_message(m: &str) {
    assert!(!contains_key_like(m), "a key-shaped secret in a message");
    assert!(
        !m.chars().any(|c| c.is_control()),
        "a control character in a message"
    );
    assert!(m.len() <= 2048, "a message of {} bytes", m.len());
}

/// Body of the `exchange_response` fuzz target (input: see [`encode_response`]): every answer
/// maps to the key or to the error its status documents, and no message carries a key-shaped
/// string. Panics on a broken rule.
pub fn exchange_response(data: &[u8]) {
    let Some(resp) = decode_response(data) else {
        return;
    };
    match parse_exchange_response(&resp) {
        Ok(ok) => {
            assert!(
                matches!(resp.status, 200 | 201),
                "a key from status {}",
                resp.status
            );
            let k = ok.key.expose_secret();
            assert!(k.starts_with("sk-or-") && (14..=262).contains(&k.len()));
            if let Some(u) = &ok.user_id {
                // OpenRouter's own id: printable and bounded (it is shown), nothing more.
                assert!(
                    !u.chars().any(char::is_control),
                    "a control character in user_id"
                );
                assert!(u.len() <= 1024, "a user_id of {} bytes", u.len());
            }
        }
        Err(e) => {
            let want_ok = matches!(resp.status, 200 | 201);
            use openrouter_auth_core::error::{
                OpenRouterError as O, ProgramError as P, UserError as U,
            };
            use openrouter_auth_core::FlowError as F;
            match (&e, resp.status) {
                (F::OpenRouter(O::MissingKey { .. }), _) => assert!(want_ok),
                (F::OpenRouter(O::Server { status }), s) => {
                    assert_eq!(*status, s);
                    assert!((500..=599).contains(&s))
                }
                (F::OpenRouter(O::RateLimited { .. }), s) => assert_eq!(s, 429),
                (F::Program(P::MethodNotAllowed), s) => assert_eq!(s, 405),
                (F::OpenRouter(O::Conflict { .. }), s) => assert_eq!(s, 409),
                (F::User(U::InvalidCode | U::CodeExpired), s) => {
                    assert!(s == 401 || s == 403)
                }
                (F::Program(P::InvalidCodeChallengeMethod), s) => assert_eq!(s, 400),
                (F::OpenRouter(O::Unexpected { status, .. }), s) => {
                    assert_eq!(*status, s);
                    assert!(!want_ok && !(500..=599).contains(&s));
                }
                (other, _) => panic!("the exchange parser never returns {other:?}"),
            }
            check_message(&e.to_string());
        }
    }
}

/// Body of the `key_info` fuzz target (input: see [`encode_response`]; `Retry-After` is
/// ignored): only a 200 gives a [`openrouter_auth_core::KeyInfo`], errors follow the status, and no message
/// carries a key-shaped string. Panics on a broken rule.
pub fn key_info(data: &[u8]) {
    let Some(resp) = decode_response(data) else {
        return;
    };
    match parse_key_info(&resp) {
        Ok(info) => {
            assert_eq!(resp.status, 200);
            let _ = serde_json::to_string(&info).expect("KeyInfo serialises");
        }
        Err(e) => {
            match (&e, resp.status) {
                (KeyCheckError::BadBody, s) => assert_eq!(s, 200),
                (KeyCheckError::KeyNotValid, s) => assert_eq!(s, 401),
                (KeyCheckError::RateLimited, s) => assert_eq!(s, 429),
                (KeyCheckError::Server { status }, s) => {
                    assert_eq!(*status, s);
                    assert!((500..=599).contains(&s))
                }
                (KeyCheckError::Unexpected { status, .. }, s) => {
                    assert_eq!(*status, s);
                    assert!(!matches!(s, 200 | 401 | 429 | 500..=599));
                }
                (e, s) => panic!("the oracle has no rule for {e:?} on {s}"),
            }
            check_message(&e.to_string());
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The structured flow target
// ---------------------------------------------------------------------------------------------

/// The port [`flow_inputs`] binds its flow to.
pub const FUZZ_PORT: u16 = 53682;

/// Codes the harness's OpenRouter issued for the flow's challenge ([`FuzzTarget::OwnCode`]).
pub const OWN_CODES: usize = 4;

/// Most ops one [`flow_inputs`] run executes.
pub const MAX_OPS: usize = 2048;

/// One step of a [`flow_inputs`] run. See [`encode_ops`] for the byte form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FuzzOp {
    /// `ListenerBound` on [`FUZZ_PORT`].
    Bind,
    /// A request on a new connection.
    Request {
        /// The method.
        method: FuzzMethod,
        /// The `Host` header.
        host: FuzzHost,
        /// The request target.
        target: FuzzTarget,
    },
    /// The `nth` request's connection closes (modulo the number of requests so far).
    Close {
        /// Which request.
        nth: u8,
    },
    /// OpenRouter answers the exchange in flight (an unsolicited id when none is). The
    /// harness's OpenRouter is honest: a 2xx for a code it did not issue for this flow's
    /// challenge, or one already used, becomes a 403.
    Answer {
        /// The status.
        status: u16,
        /// The body.
        body: FuzzBody,
        /// A `Retry-After` header (seconds), if any.
        retry_after: Option<u16>,
    },
    /// The exchange in flight fails without an answer (nothing happens when none is).
    Fail {
        /// `may_have_been_sent`.
        may_have_been_sent: bool,
    },
    /// The key store answers.
    Store {
        /// `KeyStored` (else `KeyNotStored`).
        ok: bool,
    },
    /// The user pastes something.
    Paste(FuzzPaste),
    /// `Cancel`.
    Cancel,
    /// Time passes; deadlines that fall due on the way fire on time.
    Tick {
        /// How long.
        millis: u32,
    },
    /// A late shell: `handle_timeout` now, whatever is due.
    Fire,
}

/// The method of a [`FuzzOp::Request`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FuzzMethod {
    /// `GET`
    Get,
    /// `HEAD`
    Head,
    /// `POST`
    Post,
    /// `OPTIONS`
    Options,
}

/// The `Host` of a [`FuzzOp::Request`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FuzzHost {
    /// `localhost:PORT`
    Ours,
    /// `127.0.0.1:PORT`
    Ipv4,
    /// `[::1]:PORT`
    Ipv6,
    /// `localhost` (no port)
    NoPort,
    /// `localhost:PORT+1`
    WrongPort,
    /// `evil.example:PORT` (DNS rebinding)
    Evil,
    /// No `Host` (or several).
    Missing,
    /// Raw bytes.
    Raw(Vec<u8>),
}

/// The target of a [`FuzzOp::Request`]; "own" means the flow's `/callback/<nonce>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FuzzTarget {
    /// Own path, `?code=` one of the codes issued for this flow.
    OwnCode(u8),
    /// Own path, `?code=…&state=<nonce>`.
    OwnCodeWithState(u8),
    /// Own path, a code issued for another flow's challenge.
    ForeignCode(u8),
    /// Own path, `?error=access_denied` (with a description if `true`).
    OwnError(bool),
    /// `/callback/<nonce>/done`.
    OwnDone,
    /// Own path, no query.
    OwnBare,
    /// Own path, a code with a `state` that is not ours.
    OwnStateMismatch,
    /// `/callback/<another nonce>?code=…`.
    OtherNonce,
    /// `/favicon.ico`.
    Favicon,
    /// Own path, then `?` and these raw bytes.
    OwnQuery(Vec<u8>),
    /// Raw target bytes.
    Raw(Vec<u8>),
}

/// The body of a [`FuzzOp::Answer`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FuzzBody {
    /// `{"key": <a fresh key>, "user_id": "user_fuzz"}`.
    Key,
    /// Empty.
    Empty,
    /// `{"error": {"code": status, "message": …}}` with one of OpenRouter's messages.
    ErrorMessage(u8),
    /// Raw bytes.
    Raw(Vec<u8>),
}

/// What a [`FuzzOp::Paste`] pastes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FuzzPaste {
    /// The own redirect URL with one of this flow's codes.
    OwnUrl(u8),
    /// One of this flow's codes, padded with white space.
    BareCode(u8),
    /// A code issued for another flow.
    ForeignCode(u8),
    /// Raw text (lossy UTF-8).
    Raw(Vec<u8>),
}

const ERROR_MESSAGES: [&str; 5] = [
    "Invalid code or code_verifier",
    "Authorization code expired",
    "Invalid code_challenge_method",
    "Failed to create or update app",
    "Method Not Allowed",
];

/// The configuration byte that starts a [`flow_inputs`] input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FuzzConfig {
    /// Headless mode.
    pub headless: bool,
    /// `127.0.0.1` instead of `localhost` in the `callback_url`.
    pub ipv4_host: bool,
    /// The `plain` method.
    pub plain: bool,
    /// Callback timeout: 0 → 600 s, 1 → 60 s, 2 → 5 s, 3 → none at all (0 s).
    pub callback_timeout: u8,
    /// Exchange timeout: 0 → 30 s, 1 → 5 s, 2 → 1 s, 3 → none at all (0 s).
    pub exchange_timeout: u8,
}

impl FuzzConfig {
    fn to_byte(self) -> u8 {
        u8::from(self.headless)
            | u8::from(self.ipv4_host) << 1
            | u8::from(self.plain) << 2
            | (self.callback_timeout & 3) << 3
            | (self.exchange_timeout & 3) << 5
    }

    fn from_byte(b: u8) -> Self {
        FuzzConfig {
            headless: b & 1 != 0,
            ipv4_host: b & 2 != 0,
            plain: b & 4 != 0,
            callback_timeout: (b >> 3) & 3,
            exchange_timeout: (b >> 5) & 3,
        }
    }

    /// The [`FlowConfig`] this byte stands for.
    pub fn flow_config(self) -> FlowConfig {
        let mut config = FlowConfig::default();
        config.headless = self.headless;
        config.callback_host = if self.ipv4_host {
            CallbackHost::Ipv4Loopback
        } else {
            CallbackHost::Localhost
        };
        config.code_challenge_method = if self.plain {
            CodeChallengeMethod::Plain
        } else {
            CodeChallengeMethod::S256
        };
        config.callback_timeout =
            Duration::from_secs([600, 60, 5, 0][usize::from(self.callback_timeout & 3)]);
        config.exchange_timeout =
            Duration::from_secs([30, 5, 1, 0][usize::from(self.exchange_timeout & 3)]);
        config
    }
}

struct Reader<'a>(&'a [u8]);

impl Reader<'_> {
    fn u8(&mut self) -> Option<u8> {
        let (&b, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(b)
    }
    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_be_bytes([self.u8()?, self.u8()?]))
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_be_bytes([
            self.u8()?,
            self.u8()?,
            self.u8()?,
            self.u8()?,
        ]))
    }
    fn bytes(&mut self) -> Option<Vec<u8>> {
        let n = usize::from(self.u16()?).min(self.0.len());
        let (b, rest) = self.0.split_at(n);
        self.0 = rest;
        Some(b.to_vec())
    }
}

fn put_bytes(out: &mut Vec<u8>, b: &[u8]) {
    let b = &b[..b.len().min(usize::from(u16::MAX))];
    out.extend_from_slice(&(b.len() as u16).to_be_bytes());
    out.extend_from_slice(b);
}

/// The byte form of a [`flow_inputs`] input: the [`FuzzConfig`] byte, then each op as a tag
/// byte and its arguments (big-endian integers, byte strings as a `u16` length and bytes).
pub fn encode_ops(config: FuzzConfig, ops: &[FuzzOp]) -> Vec<u8> {
    let mut out = vec![config.to_byte()];
    for op in ops {
        match op {
            FuzzOp::Bind => out.push(0),
            FuzzOp::Request {
                method,
                host,
                target,
            } => {
                out.push(1);
                out.push(*method as u8);
                match host {
                    FuzzHost::Ours => out.push(0),
                    FuzzHost::Ipv4 => out.push(1),
                    FuzzHost::Ipv6 => out.push(2),
                    FuzzHost::NoPort => out.push(3),
                    FuzzHost::WrongPort => out.push(4),
                    FuzzHost::Evil => out.push(5),
                    FuzzHost::Missing => out.push(6),
                    FuzzHost::Raw(b) => {
                        out.push(7);
                        put_bytes(&mut out, b);
                    }
                }
                match target {
                    FuzzTarget::OwnCode(i) => out.extend_from_slice(&[0, *i]),
                    FuzzTarget::OwnCodeWithState(i) => out.extend_from_slice(&[1, *i]),
                    FuzzTarget::ForeignCode(i) => out.extend_from_slice(&[2, *i]),
                    FuzzTarget::OwnError(d) => out.extend_from_slice(&[3, u8::from(*d)]),
                    FuzzTarget::OwnDone => out.push(4),
                    FuzzTarget::OwnBare => out.push(5),
                    FuzzTarget::OwnStateMismatch => out.push(6),
                    FuzzTarget::OtherNonce => out.push(7),
                    FuzzTarget::Favicon => out.push(8),
                    FuzzTarget::OwnQuery(b) => {
                        out.push(9);
                        put_bytes(&mut out, b);
                    }
                    FuzzTarget::Raw(b) => {
                        out.push(10);
                        put_bytes(&mut out, b);
                    }
                }
            }
            FuzzOp::Close { nth } => out.extend_from_slice(&[2, *nth]),
            FuzzOp::Answer {
                status,
                body,
                retry_after,
            } => {
                out.push(3);
                out.extend_from_slice(&status.to_be_bytes());
                match retry_after {
                    None => out.push(0),
                    Some(s) => {
                        out.push(1);
                        out.extend_from_slice(&s.to_be_bytes());
                    }
                }
                match body {
                    FuzzBody::Key => out.push(0),
                    FuzzBody::Empty => out.push(1),
                    FuzzBody::ErrorMessage(i) => out.extend_from_slice(&[2, *i]),
                    FuzzBody::Raw(b) => {
                        out.push(3);
                        put_bytes(&mut out, b);
                    }
                }
            }
            FuzzOp::Fail { may_have_been_sent } => {
                out.extend_from_slice(&[4, u8::from(*may_have_been_sent)])
            }
            FuzzOp::Store { ok } => out.extend_from_slice(&[5, u8::from(*ok)]),
            FuzzOp::Paste(p) => {
                out.push(6);
                match p {
                    FuzzPaste::OwnUrl(i) => out.extend_from_slice(&[0, *i]),
                    FuzzPaste::BareCode(i) => out.extend_from_slice(&[1, *i]),
                    FuzzPaste::ForeignCode(i) => out.extend_from_slice(&[2, *i]),
                    FuzzPaste::Raw(b) => {
                        out.push(3);
                        put_bytes(&mut out, b);
                    }
                }
            }
            FuzzOp::Cancel => out.push(7),
            FuzzOp::Tick { millis } => {
                out.push(8);
                out.extend_from_slice(&millis.to_be_bytes());
            }
            FuzzOp::Fire => out.push(9),
        }
    }
    out
}

/// Reads what [`encode_ops`] writes; any byte string decodes (tags are taken modulo their
/// count, a short tail ends the list). At most [`MAX_OPS`] ops.
pub fn decode_ops(data: &[u8]) -> (FuzzConfig, Vec<FuzzOp>) {
    let mut r = Reader(data);
    let config = FuzzConfig::from_byte(r.u8().unwrap_or(0));
    let mut ops = Vec::new();
    while ops.len() < MAX_OPS {
        match decode_op(&mut r) {
            Some(op) => ops.push(op),
            None => break,
        }
    }
    (config, ops)
}

fn decode_op(r: &mut Reader<'_>) -> Option<FuzzOp> {
    Some(match r.u8()? % 10 {
        0 => FuzzOp::Bind,
        1 => {
            let method = match r.u8()? % 4 {
                0 => FuzzMethod::Get,
                1 => FuzzMethod::Head,
                2 => FuzzMethod::Post,
                _ => FuzzMethod::Options,
            };
            let host = match r.u8()? % 8 {
                0 => FuzzHost::Ours,
                1 => FuzzHost::Ipv4,
                2 => FuzzHost::Ipv6,
                3 => FuzzHost::NoPort,
                4 => FuzzHost::WrongPort,
                5 => FuzzHost::Evil,
                6 => FuzzHost::Missing,
                _ => FuzzHost::Raw(r.bytes()?),
            };
            let target = match r.u8()? % 11 {
                0 => FuzzTarget::OwnCode(r.u8()?),
                1 => FuzzTarget::OwnCodeWithState(r.u8()?),
                2 => FuzzTarget::ForeignCode(r.u8()?),
                3 => FuzzTarget::OwnError(r.u8()? & 1 == 1),
                4 => FuzzTarget::OwnDone,
                5 => FuzzTarget::OwnBare,
                6 => FuzzTarget::OwnStateMismatch,
                7 => FuzzTarget::OtherNonce,
                8 => FuzzTarget::Favicon,
                9 => FuzzTarget::OwnQuery(r.bytes()?),
                _ => FuzzTarget::Raw(r.bytes()?),
            };
            FuzzOp::Request {
                method,
                host,
                target,
            }
        }
        2 => FuzzOp::Close { nth: r.u8()? },
        3 => {
            let status = r.u16()?;
            let retry_after = match r.u8()? & 1 {
                0 => None,
                _ => Some(r.u16()?),
            };
            let body = match r.u8()? % 4 {
                0 => FuzzBody::Key,
                1 => FuzzBody::Empty,
                2 => FuzzBody::ErrorMessage(r.u8()?),
                _ => FuzzBody::Raw(r.bytes()?),
            };
            FuzzOp::Answer {
                status,
                body,
                retry_after,
            }
        }
        4 => FuzzOp::Fail {
            may_have_been_sent: r.u8()? & 1 == 1,
        },
        5 => FuzzOp::Store {
            ok: r.u8()? & 1 == 1,
        },
        6 => FuzzOp::Paste(match r.u8()? % 4 {
            0 => FuzzPaste::OwnUrl(r.u8()?),
            1 => FuzzPaste::BareCode(r.u8()?),
            2 => FuzzPaste::ForeignCode(r.u8()?),
            _ => FuzzPaste::Raw(r.bytes()?),
        }),
        7 => FuzzOp::Cancel,
        8 => FuzzOp::Tick { millis: r.u32()? },
        _ => FuzzOp::Fire,
    })
}

/// Base64url without padding (RFC 4648 section 5), as the core writes its tokens.
fn b64url(bytes: &[u8]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn random_token(rng: &mut FuzzRng, prefix: &str) -> String {
    use rand_core::RngCore;
    let mut b = [0u8; 18];
    rng.fill_bytes(&mut b);
    format!("{prefix}{}", b64url(&b))
}

/// Runs `ops` against a fresh [`CheckedFlow`] configured by `config`, playing the browser,
/// an attacker, the network, an honest OpenRouter and the key store as the ops say. Errors:
/// the first broken rule.
pub fn run_ops(config: FuzzConfig, ops: &[FuzzOp]) -> Result<(), Violation> {
    let mut rng = FuzzRng::new(0);
    let (mut cf, _) = CheckedFlow::new(config.flow_config(), &mut rng, Time::ZERO)?;
    let mut world = FuzzRng::new(1);
    let own: Vec<String> = (0..OWN_CODES)
        .map(|_| random_token(&mut world, "c-"))
        .collect();
    let foreign: Vec<String> = (0..2).map(|_| random_token(&mut world, "f-")).collect();
    let other_nonce = random_token(&mut world, "");
    let challenge = cf.flow().code_challenge().as_str().to_owned();
    for c in &own {
        cf.note_code_issued(c, &challenge);
    }
    for c in &foreign {
        cf.note_code_issued(c, "another-flows-challenge");
    }
    let nonce = cf.flow().nonce().expose_secret().to_owned();
    let own_path = format!("/callback/{nonce}");
    let mut used: BTreeSet<String> = BTreeSet::new();
    let mut now = Time::ZERO;
    let mut conns: Vec<ConnectionId> = Vec::new();
    let mut last_id = 0u64;
    let port = FUZZ_PORT;
    for op in ops {
        match op {
            FuzzOp::Bind => {
                cf.handle_input(Input::ListenerBound { port, ipv6: true }, now)?;
            }
            FuzzOp::Request {
                method,
                host,
                target,
            } => {
                let pick = |i: &u8, list: &[String]| list[usize::from(*i) % list.len()].clone();
                let target: Vec<u8> = match target {
                    FuzzTarget::OwnCode(i) => format!("{own_path}?code={}", pick(i, &own)).into(),
                    FuzzTarget::OwnCodeWithState(i) => {
                        format!("{own_path}?code={}&state={nonce}", pick(i, &own)).into()
                    }
                    FuzzTarget::ForeignCode(i) => {
                        format!("{own_path}?code={}", pick(i, &foreign)).into()
                    }
                    FuzzTarget::OwnError(false) => format!("{own_path}?error=access_denied").into(),
                    FuzzTarget::OwnError(true) => format!(
                        "{own_path}?error=access_denied&error_description=The+user+said+%3Cno%3E"
                    )
                    .into(),
                    FuzzTarget::OwnDone => format!("{own_path}/done").into(),
                    FuzzTarget::OwnBare => own_path.clone().into(),
                    FuzzTarget::OwnStateMismatch => {
                        format!("{own_path}?code={}&state=nope", own[0]).into()
                    }
                    FuzzTarget::OtherNonce => {
                        format!("/callback/{other_nonce}?code={}", own[0]).into()
                    }
                    FuzzTarget::Favicon => b"/favicon.ico".to_vec(),
                    FuzzTarget::OwnQuery(q) => {
                        let mut t = format!("{own_path}?").into_bytes();
                        t.extend_from_slice(q);
                        t
                    }
                    FuzzTarget::Raw(b) => b.clone(),
                };
                let host: Option<Vec<u8>> = match host {
                    FuzzHost::Ours => Some(format!("localhost:{port}").into()),
                    FuzzHost::Ipv4 => Some(format!("127.0.0.1:{port}").into()),
                    FuzzHost::Ipv6 => Some(format!("[::1]:{port}").into()),
                    FuzzHost::NoPort => Some(b"localhost".to_vec()),
                    FuzzHost::WrongPort => Some(format!("localhost:{}", port + 1).into()),
                    FuzzHost::Evil => Some(format!("evil.example:{port}").into()),
                    FuzzHost::Missing => None,
                    FuzzHost::Raw(b) => Some(b.clone()),
                };
                let method = match method {
                    FuzzMethod::Get => "GET",
                    FuzzMethod::Head => "HEAD",
                    FuzzMethod::Post => "POST",
                    FuzzMethod::Options => "OPTIONS",
                };
                let conn = ConnectionId(conns.len() as u64 + 1);
                conns.push(conn);
                cf.handle_input(
                    Input::Request(BrowserRequest {
                        conn,
                        method: method.into(),
                        target: Zeroizing::new(target),
                        host,
                    }),
                    now,
                )?;
            }
            FuzzOp::Close { nth } => {
                if !conns.is_empty() {
                    let c = conns[usize::from(*nth) % conns.len()];
                    cf.handle_input(Input::ConnectionClosed(c), now)?;
                }
            }
            FuzzOp::Answer {
                status,
                body,
                retry_after,
            } => {
                let (id, status, mut body) = match cf.in_flight() {
                    Some((id, code)) => {
                        last_id = last_id.max(id.0);
                        let valid = own.iter().any(|c| c == code) && !used.contains(code);
                        let code = code.to_owned();
                        let mut status = *status;
                        let mut body = body.clone();
                        if (200..300).contains(&status) {
                            if valid {
                                used.insert(code);
                            } else {
                                status = 403;
                                body = FuzzBody::ErrorMessage(0);
                            }
                        } else if valid && status != 429 && !(500..600).contains(&status) {
                            used.insert(code);
                        }
                        (id, status, body)
                    }
                    None => (ExchangeId(last_id + 1000), *status, body.clone()),
                };
                let bytes: Vec<u8> = match &mut body {
                    FuzzBody::Key => {
                        use rand_core::RngCore;
                        let mut k = [0u8; 32];
                        world.fill_bytes(&mut k);
                        let hex: String = k.iter().map(|b| format!("{b:02x}")).collect();
                        format!(r#"{{"key":"sk-or-v1-{hex}","user_id":"user_fuzz"}}"#).into()
                    }
                    FuzzBody::Empty => Vec::new(),
                    FuzzBody::ErrorMessage(i) => serde_json::json!({"error": {"code": status, "message": ERROR_MESSAGES[usize::from(*i) % ERROR_MESSAGES.len()]}}).to_string().into(),
                    FuzzBody::Raw(b) => std::mem::take(b),
                };
                let mut response = HttpResponse::new(status, bytes);
                if let Some(s) = retry_after {
                    response = response.with_header("Retry-After", s.to_string());
                }
                cf.handle_input(Input::ExchangeResponse { id, response }, now)?;
            }
            FuzzOp::Fail { may_have_been_sent } => {
                if let Some((id, code)) = cf.in_flight() {
                    if *may_have_been_sent && own.iter().any(|c| c == code) {
                        used.insert(code.to_owned());
                    }
                    cf.handle_input(
                        Input::ExchangeFailed {
                            id,
                            may_have_been_sent: *may_have_been_sent,
                            reason: "fuzzed failure".into(),
                        },
                        now,
                    )?;
                }
            }
            FuzzOp::Store { ok } => {
                let input = if *ok {
                    Input::KeyStored {
                        location: "the fuzz store".into(),
                        report: (),
                    }
                } else {
                    Input::KeyNotStored {
                        reason: openrouter_auth_core::StoreFailure::WriteFailed {
                            message: "the fuzz store failed".into(),
                        },
                    }
                };
                cf.handle_input(input, now)?;
            }
            FuzzOp::Paste(p) => {
                let pick = |i: &u8, list: &[String]| list[usize::from(*i) % list.len()].clone();
                let text = match p {
                    FuzzPaste::OwnUrl(i) => {
                        format!("http://localhost:{port}{own_path}?code={}", pick(i, &own))
                    }
                    FuzzPaste::BareCode(i) => format!("  {}\n", pick(i, &own)),
                    FuzzPaste::ForeignCode(i) => pick(i, &foreign),
                    FuzzPaste::Raw(b) => String::from_utf8_lossy(b).into_owned(),
                };
                cf.handle_input(Input::Pasted(Zeroizing::new(text)), now)?;
            }
            FuzzOp::Cancel => {
                cf.handle_input(Input::Cancel, now)?;
            }
            FuzzOp::Tick { millis } => {
                let target = Time::from_millis(now.as_millis().saturating_add(u64::from(*millis)));
                for _ in 0..64 {
                    match cf.flow().poll_timeout() {
                        Some(t) if t <= target => {
                            now = now.max(t);
                            cf.handle_timeout(now)?;
                        }
                        _ => break,
                    }
                }
                now = target;
            }
            FuzzOp::Fire => {
                cf.handle_timeout(now)?;
            }
        }
    }
    cf.check_end()
}

/// Body of the `flow_inputs` fuzz target: decodes `data` ([`decode_ops`]) and runs it
/// ([`run_ops`]). Panics with the broken rule.
pub fn flow_inputs(data: &[u8]) {
    let (config, ops) = decode_ops(data);
    if let Err(v) = run_ops(config, &ops) {
        panic!("{v}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ops_round_trip() {
        let ops = vec![
            FuzzOp::Bind,
            FuzzOp::Request {
                method: FuzzMethod::Get,
                host: FuzzHost::Raw(b"x".to_vec()),
                target: FuzzTarget::OwnQuery(b"code=1".to_vec()),
            },
            FuzzOp::Answer {
                status: 200,
                body: FuzzBody::Key,
                retry_after: Some(3),
            },
            FuzzOp::Paste(FuzzPaste::Raw(b"abc".to_vec())),
            FuzzOp::Tick { millis: 70_000 },
            FuzzOp::Store { ok: true },
            FuzzOp::Fire,
        ];
        let cfg = FuzzConfig {
            headless: false,
            ipv4_host: true,
            plain: false,
            callback_timeout: 2,
            exchange_timeout: 1,
        };
        assert_eq!(decode_ops(&encode_ops(cfg, &ops)), (cfg, ops));
    }

    #[test]
    fn happy_path_runs_clean() {
        let ops = vec![
            FuzzOp::Bind,
            FuzzOp::Request {
                method: FuzzMethod::Get,
                host: FuzzHost::Ours,
                target: FuzzTarget::OwnCode(0),
            },
            FuzzOp::Answer {
                status: 200,
                body: FuzzBody::Key,
                retry_after: None,
            },
            FuzzOp::Store { ok: true },
            FuzzOp::Tick { millis: 10_000 },
        ];
        run_ops(FuzzConfig::default(), &ops).unwrap();
    }

    #[test]
    fn bodies_take_anything() {
        for data in [&b""[..], b"\x00", b"\xff\xff\xff", b"/callback/x?code=1"] {
            callback_target(data);
            exchange_response(data);
            key_info(data);
            flow_inputs(data);
        }
    }

    /// The checker itself must catch a secret wherever it sits in a browser response: the
    /// body, the reason phrase, a header value. A code OpenRouter quoted for another exchange
    /// is the one exemption.
    #[test]
    fn checker_finds_secrets_in_every_part_of_a_response() {
        use openrouter_auth_core::page::{BrowserResponse, Page};
        use rand_chacha::rand_core::SeedableRng;
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let (mut cf, _) =
            CheckedFlow::new(FlowConfig::default(), &mut rng, Time::from_millis(0)).unwrap();
        let code = "issued-code-0123456789";
        cf.note_code_issued(code, "some-challenge");
        let verifier = cf.verifier().to_owned();
        let respond = |response: BrowserResponse| Output::Respond {
            conn: ConnectionId(1),
            response,
            head_only: false,
        };
        let clean = Page::NotFound.render();
        assert!(cf.check_secrets(&respond(clean.clone())).is_ok());
        for secret in [verifier.as_str(), code] {
            let mut body = clean.clone();
            body.body = format!("{}{secret}", body.body).into();
            let mut reason = clean.clone();
            reason.reason = format!("x{secret}x").into();
            let mut header = clean.clone();
            header
                .headers
                .to_mut()
                .push(("X-Leak".into(), format!("a {secret}").into()));
            for (part, r) in [("body", body), ("reason", reason), ("header", header)] {
                let v = cf.check_secrets(&respond(r)).expect_err(part);
                assert!(
                    matches!(
                        v.invariant,
                        "verifier-only-in-exchange-body" | "secrets-stay-out-of-pages"
                    ),
                    "{part}: {}",
                    v.invariant
                );
            }
        }
        cf.quoted_by_openrouter.insert(code.to_owned());
        let mut quoted = clean;
        quoted.body = format!("{}{code}", quoted.body).into();
        assert!(cf.check_secrets(&respond(quoted)).is_ok());
    }

    /// The checker skips a page body or static header set it already found clean only while
    /// the secrets stay the same: a code issued afterwards is still found in the very same
    /// page (the flow hands out one shared body) and the same static headers.
    #[test]
    fn checker_searches_a_clean_page_again_after_a_new_code() {
        use openrouter_auth_core::page::Page;
        use rand_chacha::rand_core::SeedableRng;
        let page = Page::NotFound.render();
        assert!(matches!(page.headers, std::borrow::Cow::Borrowed(_)));
        let respond = || Output::Respond {
            conn: ConnectionId(1),
            response: page.clone(),
            head_only: false,
        };
        let in_body = page.body[..12].to_owned();
        let in_header = page.headers[0].1.to_string();
        for secret in [in_body, in_header] {
            let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
            let (mut cf, _) =
                CheckedFlow::new(FlowConfig::default(), &mut rng, Time::from_millis(0)).unwrap();
            assert!(cf.check_secrets(&respond()).is_ok());
            assert!(cf.check_secrets(&respond()).is_ok());
            cf.note_code_issued(&secret, "some-challenge");
            let v = cf.check_secrets(&respond()).expect_err(&secret);
            assert_eq!(v.invariant, "secrets-stay-out-of-pages", "{secret}");
        }
    }

    #[test]
    fn key_like_detection() {
        assert!(contains_key_like("x sk-or-v1-abcdef12 y"));
        assert!(!contains_key_like("sk-or-[redacted] sk-or-v1"));
    }
}
