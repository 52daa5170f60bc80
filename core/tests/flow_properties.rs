//! Property test: proptest drives the flow with random input sequences (and draws the RNG seed,
//! so shrinking shrinks it too), and a small reference model predicts every output of every
//! step. The flow runs inside the proving ground's oracle (`openrouter_auth_oracle::CheckedFlow`,
//! the same rules the fuzzers and the simulator check), which checks the safety rules after
//! every step: never `Stored` unless an own-nonce callback or paste carrying an issued code was
//! accepted first; never two exchanges in flight, ids fresh; no resend once a code may have
//! reached OpenRouter; terminal phases sticky (phase and outcome); at most one response per
//! request and only to requests, every open request answered when `Finished` comes;
//! `Finished` at most once, carrying the flow's outcome. On top of the model and the oracle:
//!
//! - one `SendExchange` per accepted code, plus one per retry after `may_have_been_sent:
//!   false`, each carrying the accepted code and the rest of the exchange deadline;
//! - no response on a connection that closed; `Finished` last in its batch;
//! - liveness: a shell that answers the store, cancels and lets time pass reaches `Finished`
//!   with every request answered (held ones when the flow ends), unless its connection closed.
//!
//! A failing case prints its seed and steps; proptest keeps regressions in
//! `core/proptest-regressions/flow_properties.txt`.
mod common;
use common::*;
use openrouter_auth_core::flow::{
    DONE_LINGER, FIRST_RETRY_DELAY, MAX_HELD_CONNECTIONS, MAX_PASTED_CODES, MAX_RETRY_DELAY,
};
use openrouter_auth_core::*;
use openrouter_auth_oracle::CheckedFlow;
use proptest::prelude::*;
use proptest::test_runner::FileFailurePersistence;

const BROWSER_CODE: &str = "browser-code";
const PASTED_CODE: &str = "pasted-code";
const URL_CODE: &str = "url-code";
const CALLBACK_TIMEOUT: u64 = 600_000;
const EXCHANGE_TIMEOUT: u64 = 30_000;

#[derive(Debug, Clone, Copy)]
enum IdPick {
    Latest,
    Stale(u64),
}

#[derive(Debug, Clone)]
enum Step {
    OwnCode,
    OwnError,
    WrongNonceCode,
    WrongNonceError,
    Favicon,
    HeadOwn,
    PostOwn,
    BadHost(u8),
    FetchDone,
    Close(usize),
    ExchangeOk(IdPick),
    ExchangeStatus(usize, IdPick),
    FailedSent(IdPick),
    FailedNotSent(IdPick),
    KeyStored,
    KeyNotStored,
    PastedJunk(u8),
    PastedOwnUrl,
    PastedBareCode,
    Cancel,
    Tick(u64),
}

/// (status, body, kind) of error answers from OpenRouter.
const ERRORS: [(u16, &str, &str); 9] = [
    (
        400,
        r#"{"error":{"code":400,"message":"Invalid code_challenge_method"}}"#,
        "invalid_code_challenge_method",
    ),
    (
        403,
        r#"{"error":{"code":403,"message":"Invalid code or code_verifier"}}"#,
        "invalid_code",
    ),
    (
        403,
        r#"{"error":{"code":403,"message":"Authorization code expired"}}"#,
        "code_expired",
    ),
    (405, "", "method_not_allowed"),
    (409, "", "conflict"),
    (429, "", "rate_limited"),
    (502, "<html>", "server_error"),
    (200, r#"{"user_id":"u"}"#, "missing_key"),
    (418, "teapot", "unexpected_response"),
];

fn id_pick() -> impl Strategy<Value = IdPick> {
    prop_oneof![3 => Just(IdPick::Latest), 1 => (0u64..6).prop_map(IdPick::Stale)]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => Just(Step::OwnCode),
        2 => Just(Step::OwnError),
        2 => Just(Step::WrongNonceCode),
        2 => Just(Step::WrongNonceError),
        1 => Just(Step::Favicon),
        2 => Just(Step::HeadOwn),
        1 => Just(Step::PostOwn),
        1 => (0u8..3).prop_map(Step::BadHost),
        3 => Just(Step::FetchDone),
        2 => any::<usize>().prop_map(Step::Close),
        4 => id_pick().prop_map(Step::ExchangeOk),
        2 => (0..ERRORS.len(), id_pick()).prop_map(|(e, i)| Step::ExchangeStatus(e, i)),
        2 => id_pick().prop_map(Step::FailedSent),
        5 => id_pick().prop_map(Step::FailedNotSent),
        3 => Just(Step::KeyStored),
        1 => Just(Step::KeyNotStored),
        1 => (0u8..4).prop_map(Step::PastedJunk),
        1 => Just(Step::PastedOwnUrl),
        1 => Just(Step::PastedBareCode),
        1 => Just(Step::Cancel),
        5 => prop_oneof![0u64..1_000, 0u64..10_000, 0u64..700_000].prop_map(Step::Tick),
    ]
}

/// What a user (or shell) can observe of one output.
#[derive(Debug, Clone, PartialEq)]
enum Ev {
    Respond {
        conn: u64,
        status: u16,
        head_only: bool,
        title: String,
    },
    Send,
    StoreKey,
    PasteRejected,
    Finished(String),
}

fn outcome_kind(o: &Outcome) -> String {
    match o {
        Outcome::Stored { .. } => "stored".into(),
        Outcome::KeyNotStored { .. } => "key_not_stored".into(),
        Outcome::Failed(e) => e.kind().into(),
        other => panic!("an outcome this test does not know: {other:?}"),
    }
}

fn observe(o: &Output) -> Ev {
    match o {
        Output::Respond {
            conn,
            response,
            head_only,
        } => Ev::Respond {
            conn: conn.0,
            status: response.status,
            head_only: *head_only,
            title: title(response).to_string(),
        },
        Output::SendExchange { .. } => Ev::Send,
        Output::StoreKey { .. } => Ev::StoreKey,
        Output::PasteRejected { .. } => Ev::PasteRejected,
        Output::Finished(o) => Ev::Finished(outcome_kind(o)),
        other => panic!("unexpected mid-flow output {other:?}"),
    }
}

const IN_PROGRESS: &str = "Signing in…";
const ALREADY: &str = "This sign-in has finished";

/// The reference model: what the flow should do, written as plainly as possible.
#[derive(Debug)]
struct Model {
    phase: Phase,
    now: u64,
    code: Option<&'static str>,
    latest_id: Option<ExchangeId>,
    attempt: u32,
    ex_deadline: u64,
    retry_at: Option<u64>,
    held: Vec<u64>,
    awaiting_done: u32,
    linger_until: Option<u64>,
    outcome: Option<(String, &'static str)>,
    finished: bool,
    headless: bool,
    /// The code in flight was pasted.
    pasted: bool,
    /// Pasted codes OpenRouter refused (403 invalid code): never sent again.
    refused: Vec<&'static str>,
}

impl Model {
    fn waiting(&self) -> bool {
        matches!(self.phase, Phase::Init | Phase::AwaitingCallback)
    }

    fn terminal(&self) -> bool {
        matches!(self.phase, Phase::Lingering | Phase::Finished)
    }

    fn finish(&mut self, evs: &mut Vec<Ev>) {
        if !self.finished {
            self.finished = true;
            self.phase = Phase::Finished;
            self.linger_until = None;
            evs.push(Ev::Finished(self.outcome.clone().unwrap().0));
        }
    }

    fn terminate(&mut self, kind: &str, page: &'static str, evs: &mut Vec<Ev>) {
        self.phase = Phase::Lingering;
        self.outcome = Some((kind.into(), page));
        for conn in std::mem::take(&mut self.held) {
            evs.push(Ev::Respond {
                conn,
                status: 303,
                head_only: false,
                title: String::new(),
            });
            self.awaiting_done += 1;
        }
        if self.awaiting_done > 0 {
            self.linger_until = Some(self.now + DONE_LINGER.as_millis() as u64);
        } else {
            self.finish(evs);
        }
    }

    fn fail(&mut self, kind: &str, evs: &mut Vec<Ev>) {
        let page = match kind {
            "denied" | "cancelled" => "Sign-in cancelled",
            "timed_out" | "code_expired" => "Sign-in expired",
            "key_not_stored" => "Signed in, but the key was not stored",
            _ => "Sign-in failed",
        };
        self.terminate(kind, page, evs);
    }

    fn start_exchange(&mut self, code: &'static str, evs: &mut Vec<Ev>) {
        self.phase = Phase::Exchanging;
        self.pasted = false;
        self.code = Some(code);
        self.attempt = 0;
        self.ex_deadline = self.now + EXCHANGE_TIMEOUT;
        self.retry_at = None;
        self.send(evs);
    }

    fn send(&mut self, evs: &mut Vec<Ev>) {
        self.attempt += 1;
        evs.push(Ev::Send);
    }

    fn respond(conn: u64, status: u16, head_only: bool, title: &str) -> Ev {
        Ev::Respond {
            conn,
            status,
            head_only,
            title: title.into(),
        }
    }

    fn hold(&mut self, conn: u64, evs: &mut Vec<Ev>) {
        if self.held.len() < MAX_HELD_CONNECTIONS {
            self.held.push(conn);
        } else {
            evs.push(Self::respond(conn, 200, false, IN_PROGRESS));
        }
    }

    fn live(&self, id: ExchangeId) -> bool {
        self.phase == Phase::Exchanging && self.latest_id == Some(id) && self.retry_at.is_none()
    }

    fn poll_timeout(&self) -> Option<Time> {
        if self.finished {
            return None;
        }
        let ms = match self.phase {
            Phase::Init | Phase::AwaitingCallback => Some(CALLBACK_TIMEOUT),
            Phase::Exchanging => Some(
                self.retry_at
                    .map_or(self.ex_deadline, |r| r.min(self.ex_deadline)),
            ),
            Phase::Storing | Phase::Finished => None,
            Phase::Lingering => self.linger_until,
            other => panic!("a phase this model does not know: {other:?}"),
        };
        ms.map(Time::from_millis)
    }

    /// The expected outputs of a request step on `conn`.
    fn on_request(&mut self, step: &Step, conn: u64, evs: &mut Vec<Ev>) {
        let r = Self::respond;
        match step {
            Step::OwnCode => {
                if self.waiting() {
                    self.held.push(conn);
                    self.start_exchange(BROWSER_CODE, evs);
                } else if self.terminal() {
                    evs.push(r(conn, 200, false, ALREADY));
                } else {
                    self.hold(conn, evs);
                }
            }
            Step::OwnError => {
                if self.waiting() {
                    // Like a code: a 303 to `/done` when the flow ends, which is now.
                    self.held.push(conn);
                    self.fail("denied", evs);
                } else if self.terminal() {
                    evs.push(r(conn, 200, false, ALREADY));
                } else {
                    self.hold(conn, evs);
                }
            }
            Step::WrongNonceCode | Step::WrongNonceError | Step::Favicon => {
                evs.push(r(conn, 404, false, "Page not found"))
            }
            Step::HeadOwn => evs.push(r(
                conn,
                200,
                true,
                if self.terminal() {
                    ALREADY
                } else {
                    IN_PROGRESS
                },
            )),
            Step::PostOwn => evs.push(r(conn, 405, false, "Method not allowed")),
            Step::BadHost(_) => evs.push(r(conn, 421, false, "Wrong address")),
            Step::FetchDone => {
                let page = self.outcome.as_ref().map_or(IN_PROGRESS, |o| o.1);
                evs.push(r(conn, 200, false, page));
                if self.terminal() && self.awaiting_done > 0 {
                    self.awaiting_done -= 1;
                    if self.awaiting_done == 0 && self.linger_until.is_some() {
                        self.finish(evs);
                    }
                }
            }
            _ => unreachable!(),
        }
    }
}

fn pick(m: &Model, p: IdPick) -> ExchangeId {
    match p {
        IdPick::Latest => m.latest_id.unwrap_or(ExchangeId(0)),
        IdPick::Stale(k) => ExchangeId(k),
    }
}

fn request_input(f: &Flow, step: &Step, conn: u64) -> Option<Input> {
    let ok_host = format!("localhost:{PORT}");
    let other = "/callback/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    Some(match step {
        Step::OwnCode => get(conn, &own(f, &format!("?code={BROWSER_CODE}"))),
        Step::OwnError => get(conn, &own(f, "?error=access_denied")),
        Step::WrongNonceCode => get(conn, &format!("{other}?code=forged")),
        Step::WrongNonceError => get(conn, &format!("{other}?error=access_denied")),
        Step::Favicon => get(conn, "/favicon.ico"),
        Step::HeadOwn => req(conn, "HEAD", &own(f, "?code=head-code"), &ok_host),
        Step::PostOwn => req(conn, "POST", &own(f, "?code=post-code"), &ok_host),
        Step::BadHost(k) => {
            let target = own(f, "?code=rebound-code");
            match k {
                0 => req(conn, "GET", &target, &format!("evil.example:{PORT}")),
                1 => req(
                    conn,
                    "GET",
                    &target,
                    &format!("localhost.evil.example:{PORT}"),
                ),
                _ => Input::Request(BrowserRequest {
                    conn: ConnectionId(conn),
                    method: "GET".into(),
                    target: zeroize::Zeroizing::new(target.into_bytes()),
                    host: None,
                }),
            }
        }
        Step::FetchDone => get(conn, &own(f, "/done")),
        _ => return None,
    })
}

#[derive(Default, Debug)]
struct Tally {
    closed: Vec<u64>,
    /// An own-nonce code was accepted (the flow left waiting on a code-carrying step).
    accepted_code: bool,
    sends: u32,
    retries_due: u32,
    finishes: u32,
}

struct Run {
    /// The flow under test, inside the oracle.
    f: CheckedFlow,
    m: Model,
    tally: Tally,
    next_conn: u64,
    log: Vec<String>,
}

impl Run {
    fn new(seed: u64, headless: bool) -> Run {
        let config = {
            let mut c = FlowConfig::default();
            c.headless = headless;
            c
        };
        let (mut f, mut outs) =
            CheckedFlow::new(config, &mut rng(seed), t(0)).unwrap_or_else(|v| panic!("{v}"));
        if !headless {
            let bound = f.handle_input(
                Input::ListenerBound {
                    port: PORT,
                    ipv6: true,
                },
                t(0),
            );
            outs.extend(bound.unwrap_or_else(|v| panic!("{v}")));
        }
        // The model's OpenRouter issues every code it answers with a key for this flow.
        let challenge = f.flow().code_challenge().as_str().to_owned();
        for code in [BROWSER_CODE, PASTED_CODE, URL_CODE] {
            f.note_code_issued(code, &challenge);
        }
        assert!(matches!(
            outs.as_slice(),
            [Output::OpenBrowser { .. }] | [Output::PromptForCode { .. }]
        ));
        let m = Model {
            phase: Phase::AwaitingCallback,
            now: 0,
            code: None,
            latest_id: None,
            attempt: 0,
            ex_deadline: 0,
            retry_at: None,
            held: Vec::new(),
            awaiting_done: 0,
            linger_until: None,
            outcome: None,
            finished: false,
            headless,
            pasted: false,
            refused: Vec::new(),
        };
        Run {
            f,
            m,
            tally: Tally::default(),
            next_conn: 1,
            log: Vec::new(),
        }
    }

    fn step(&mut self, step: &Step) {
        let phase_before = self.f.flow().phase();
        let mut expected = Vec::new();
        let mut code_step = false;
        let mut retry_step = false;
        let outs = if let Step::Tick(ms) = step {
            let m = &mut self.m;
            m.now += ms;
            let now = m.now;
            if m.waiting() {
                if now >= CALLBACK_TIMEOUT {
                    m.fail("timed_out", &mut expected);
                }
            } else if m.phase == Phase::Exchanging {
                if now >= m.ex_deadline {
                    m.fail("exchange_timed_out", &mut expected);
                } else if m.retry_at.is_some_and(|r| now >= r) {
                    m.retry_at = None;
                    m.send(&mut expected);
                    retry_step = true;
                }
            } else if m.terminal() && m.linger_until.is_some_and(|l| now >= l) {
                m.finish(&mut expected);
            }
            self.log.push(format!("{step:?} -> now {now}"));
            self.f.handle_timeout(t(now))
        } else {
            self.m.now += 1;
            let now = t(self.m.now);
            let input = if let Some(input) = request_input(self.f.flow(), step, self.next_conn) {
                let conn = self.next_conn;
                self.next_conn += 1;
                code_step = matches!(step, Step::OwnCode);
                self.m.on_request(step, conn, &mut expected);
                input
            } else {
                let m = &mut self.m;
                match *step {
                    Step::Close(i) => {
                        let conn = if m.held.is_empty() {
                            1_000_000 + i as u64 % 8
                        } else {
                            m.held[i % m.held.len()]
                        };
                        m.held.retain(|c| *c != conn);
                        self.tally.closed.push(conn);
                        Input::ConnectionClosed(ConnectionId(conn))
                    }
                    Step::ExchangeOk(p) => {
                        let id = pick(m, p);
                        if m.live(id) {
                            m.phase = Phase::Storing;
                            expected.push(Ev::StoreKey);
                        }
                        Input::ExchangeResponse {
                            id,
                            response: ok_response(),
                        }
                    }
                    Step::ExchangeStatus(e, p) => {
                        let id = pick(m, p);
                        let (status, body, kind) = ERRORS[e];
                        if m.live(id) {
                            // Headless: a refused pasted code was never accepted; the user
                            // may paste again, MAX_PASTED_CODES pasted codes in all.
                            let tried = m.refused.len() as u32 + 1;
                            if kind == "invalid_code"
                                && m.headless
                                && m.pasted
                                && m.held.is_empty()
                                && tried < MAX_PASTED_CODES
                            {
                                m.refused.push(m.code.unwrap());
                                m.phase = Phase::AwaitingCallback;
                                m.code = None;
                                m.pasted = false;
                                expected.push(Ev::PasteRejected);
                            } else {
                                m.fail(kind, &mut expected);
                            }
                        }
                        Input::ExchangeResponse {
                            id,
                            response: HttpResponse::new(status, body),
                        }
                    }
                    Step::FailedSent(p) => {
                        let id = pick(m, p);
                        if m.live(id) {
                            m.fail("network", &mut expected);
                        }
                        Input::ExchangeFailed {
                            id,
                            may_have_been_sent: true,
                            reason: "reset".into(),
                        }
                    }
                    Step::FailedNotSent(p) => {
                        let id = pick(m, p);
                        if m.live(id) {
                            let factor = 1u32 << (m.attempt - 1).min(5);
                            let delay = (FIRST_RETRY_DELAY * factor).min(MAX_RETRY_DELAY);
                            let at = m.now + delay.as_millis() as u64;
                            if at < m.ex_deadline {
                                m.retry_at = Some(at);
                                self.tally.retries_due += 1;
                            } else {
                                m.fail("network", &mut expected);
                            }
                        }
                        Input::ExchangeFailed {
                            id,
                            may_have_been_sent: false,
                            reason: "refused".into(),
                        }
                    }
                    Step::KeyStored | Step::KeyNotStored => {
                        if m.phase == Phase::Storing {
                            if matches!(step, Step::KeyStored) {
                                m.terminate("stored", "Signed in to OpenRouter", &mut expected);
                            } else {
                                m.fail("key_not_stored", &mut expected);
                            }
                        }
                        if matches!(step, Step::KeyStored) {
                            Input::KeyStored {
                                location: "file".into(),
                                report: (),
                            }
                        } else {
                            Input::KeyNotStored {
                                reason: write_failed("disk full"),
                            }
                        }
                    }
                    Step::PastedJunk(k) => {
                        if m.waiting() {
                            expected.push(Ev::PasteRejected);
                        }
                        let text = match k {
                            0 => String::new(),
                            1 => "  \t ".into(),
                            2 => "two words".into(),
                            _ => format!(
                                "http://localhost:{PORT}/callback/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA?code=x"
                            ),
                        };
                        Input::Pasted(text.into())
                    }
                    Step::PastedOwnUrl | Step::PastedBareCode => {
                        code_step = true;
                        let (code, text) = if matches!(step, Step::PastedOwnUrl) {
                            (
                                URL_CODE,
                                format!(
                                    "http://localhost:{PORT}{}",
                                    own(self.f.flow(), &format!("?code={URL_CODE}"))
                                ),
                            )
                        } else {
                            (PASTED_CODE, format!(" {PASTED_CODE}\n"))
                        };
                        if m.waiting() {
                            if m.refused.contains(&code) {
                                expected.push(Ev::PasteRejected);
                            } else {
                                m.start_exchange(code, &mut expected);
                                m.pasted = true;
                            }
                        }
                        Input::Pasted(text.into())
                    }
                    Step::Cancel => {
                        if m.waiting() || m.phase == Phase::Exchanging {
                            m.fail("cancelled", &mut expected);
                        }
                        Input::Cancel
                    }
                    _ => unreachable!("{step:?}"),
                }
            };
            self.log.push(format!("{step:?} at {}", self.m.now));
            self.f.handle_input(input, now)
        };
        // The oracle's rules: the first broken one, with the steps that led to it.
        let outs = outs.unwrap_or_else(|v| panic!("{v}\nafter {:#?}", self.log));
        let got: Vec<Ev> = outs.iter().map(observe).collect();
        let handled = self
            .f
            .last_handled()
            .expect("the oracle records what each step did");
        let Run {
            f, m, tally, log, ..
        } = self;
        let f = f.flow();
        let ctx = || format!("after {log:#?}\nexpected {expected:#?}\ngot {outs:#?}");
        assert_eq!(got, expected, "{}", ctx());
        Self::check(
            f,
            m,
            tally,
            &outs,
            phase_before,
            handled,
            code_step,
            retry_step,
            &ctx,
        );
    }

    #[allow(clippy::too_many_arguments)]
    fn check(
        f: &Flow,
        model: &mut Model,
        tally: &mut Tally,
        outs: &[Output],
        phase_before: Phase,
        handled: Handled,
        code_step: bool,
        retry_step: bool,
        ctx: &dyn Fn() -> String,
    ) {
        let m = model;
        assert_eq!(f.phase(), m.phase, "{}", ctx());
        assert_eq!(f.poll_timeout(), m.poll_timeout(), "{}", ctx());
        // What the flow says it did matches what it did.
        match handled {
            Handled::Ignored(why) => {
                assert!(outs.is_empty(), "ignored ({why:?}) but output: {}", ctx());
                assert_eq!(f.phase(), phase_before, "ignored ({why:?}): {}", ctx());
            }
            Handled::Answered => assert!(
                matches!(outs, [Output::Respond { .. }]) && f.phase() == phase_before,
                "answered: {}",
                ctx()
            ),
            Handled::PasteRejected => assert!(
                matches!(outs, [Output::PasteRejected { .. }]) && f.phase() == phase_before,
                "paste rejected: {}",
                ctx()
            ),
            Handled::Applied => {}
            other => panic!("{other:?}"),
        }
        if matches!(phase_before, Phase::Lingering | Phase::Finished) && outs.is_empty() {
            // After the end, anything that is not a browser request (or a due linger) is
            // ignored as such.
            assert!(
                matches!(handled, Handled::Ignored(Ignored::Ended | Ignored::NotDue)),
                "{handled:?} after the end: {}",
                ctx()
            );
        }

        if phase_before == Phase::Exchanging && f.phase() == Phase::AwaitingCallback {
            // A headless flow whose pasted code OpenRouter refused: another may be accepted.
            tally.accepted_code = false;
        }
        let entered_exchange = matches!(phase_before, Phase::Init | Phase::AwaitingCallback)
            && f.phase() != phase_before
            && !f.is_terminal();
        if entered_exchange {
            assert!(code_step, "only a code may start the exchange: {}", ctx());
            assert!(!tally.accepted_code, "{}", ctx());
            tally.accepted_code = true;
        }
        for o in outs {
            match o {
                Output::SendExchange {
                    id,
                    attempt,
                    request,
                    timeout,
                } => {
                    assert_eq!(*attempt, m.attempt, "attempt number: {}", ctx());
                    assert!(
                        entered_exchange || (retry_step && tally.retries_due > 0),
                        "a SendExchange needs a newly accepted code or a due retry: {}",
                        ctx()
                    );
                    if retry_step {
                        tally.retries_due -= 1;
                    }
                    // Two in flight, a reused id, a resend after a maybe-sent failure: the
                    // oracle's `one-exchange-in-flight` and `no-resend-after-maybe-sent`.
                    tally.sends += 1;
                    m.latest_id = Some(*id);
                    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
                    assert_eq!(body["code"], m.code.unwrap(), "{}", ctx());
                    assert_eq!(
                        timeout.as_millis() as u64,
                        m.ex_deadline - m.now,
                        "{}",
                        ctx()
                    );
                }
                Output::StoreKey { key, .. } => assert_eq!(key.expose_secret(), KEY),
                Output::Respond { conn, response, .. } => {
                    // A second response, or one to no request: the oracle's
                    // `one-response-per-request`.
                    assert!(
                        !tally.closed.contains(&conn.0),
                        "answer after close: {}",
                        ctx()
                    );
                    if response.status == 405 {
                        assert_eq!(response.header("allow"), Some("GET, HEAD"));
                    }
                }
                // Twice, with another outcome than the flow's, or before every open request
                // was answered: the oracle's `finished-once-and-last` and
                // `one-response-per-request`.
                Output::Finished(_) => tally.finishes += 1,
                _ => {}
            }
        }
        if let Some(i) = outs.iter().position(|o| matches!(o, Output::Finished(_))) {
            assert_eq!(i, outs.len() - 1, "Finished must come last: {}", ctx());
        }
        assert_eq!(tally.sends, f.exchanges_sent(), "{}", ctx());
        // Stored without an accepted code, a terminal phase or outcome that changed: the
        // oracle's `stored-needs-own-callback-code` and `terminal-is-sticky`.
    }

    /// Liveness: whatever state the run ended in, a shell that answers the store, cancels
    /// what waits and lets time pass reaches `Finished`, with every request answered.
    fn wind_down(&mut self) {
        if self.m.phase == Phase::Storing {
            self.step(&Step::KeyStored);
        }
        if !self.m.terminal() {
            self.step(&Step::Cancel);
        }
        self.step(&Step::Tick(DONE_LINGER.as_millis() as u64));
        assert_eq!(self.tally.finishes, 1, "{:#?}", self.log);
        assert_eq!(self.f.flow().poll_timeout(), None);
        // Every request answered once, unless its connection closed: the oracle's
        // `one-response-per-request` at the end of a run.
        self.f
            .check_end()
            .unwrap_or_else(|v| panic!("{v}\nafter {:#?}", self.log));
    }
}

proptest! {
    #![proptest_config(ProptestConfig {
        // 2000 by default; `PROPTEST_CASES=N` for a longer sweep.
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(2000),
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/flow_properties.txt",
        ))),
        ..ProptestConfig::default()
    })]

    #[test]
    fn random_inputs_keep_every_safety_rule(
        seed in any::<u64>(),
        headless in prop::bool::weighted(0.25),
        steps in prop::collection::vec(step(), 0..80),
    ) {
        let mut run = Run::new(seed, headless);
        for s in &steps {
            run.step(s);
        }
        run.wind_down();
    }
}
