//! Model-based property test: proptest-state-machine drives a `Flow` (through the core's
//! invariant checker, `CheckedFlow`) and a small reference model with the same random
//! transitions, and after every transition compares phase, outcome, exchanges sent, the
//! next deadline and whether the flow finished.
//!
//! The transitions include `Tick { millis }` (deadlines that fall due on the way fire on
//! time, as a shell would fire them); the flow's RNG seed is part of the drawn initial state,
//! so shrinking shrinks it too. Failing cases are kept in
//! `sim/proptest-regressions/simulator_model.txt` (committed).
//!
//! The reference model is written from PROTOCOL.md and the flow's documented rules, not from
//! the flow's code: one code per flow, retries only after `may_have_been_sent: false` with
//! backoff 250 ms doubling to 4 s inside the exchange deadline, requests on the flow's own
//! path held while exchanging (at most 16), a 303 to `/done` for each held request at the
//! end (an `error=` callback that ends the flow included), then a 5 s linger for those
//! `/done` fetches.
use openrouter_auth_core::flow::{
    DONE_LINGER, FIRST_RETRY_DELAY, MAX_HELD_CONNECTIONS, MAX_RETRY_DELAY,
};
use openrouter_auth_core::{
    BrowserRequest, ConnectionId, ExchangeId, FlowConfig, Handled, HttpResponse, Ignored, Input,
    Outcome, Output, StoreFailure, Time,
};
use openrouter_auth_oracle::CheckedFlow;
use proptest::prelude::*;
use proptest::test_runner::{Config, FileFailurePersistence};
use proptest_state_machine::{prop_state_machine, ReferenceStateMachine, StateMachineTest};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use std::time::Duration;
use zeroize::Zeroizing;

const PORT: u16 = 53682;

/// What the network and OpenRouter do with the exchange in flight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Net {
    /// Delivered and answered (200 with a key for our code, 403 for another).
    Ok,
    /// Certainly never sent.
    LostBeforeSending,
    /// Processed, answer lost.
    LostAfterSending,
    /// 502 from a proxy.
    BadGateway,
    /// 429.
    RateLimited,
    /// Processed, the body arrives as garbage.
    Garbage,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Transition {
    /// The browser's callback on the flow's own path with the code OpenRouter issued.
    OwnCode,
    /// `error=access_denied` on the own path.
    OwnError,
    /// A code issued for another flow's challenge, on the own path (a leaked nonce).
    ForeignCode,
    /// A request that is not the flow's business (`which` picks).
    Stray(u8),
    /// `HEAD` on the own path with the code.
    HeadOwnCode,
    /// `GET /callback/<nonce>/done`.
    FetchDone,
    /// The oldest held connection closes.
    CloseHeld,
    /// The network answers the exchange in flight.
    Answer(Net),
    /// An answer for an exchange that is not in flight (stale, duplicated, made up).
    StaleAnswer(Net),
    /// The key store answers.
    Store(bool),
    /// The user pastes the code.
    PasteCode,
    /// The user pastes something that is not a code.
    PasteJunk,
    /// Ctrl-C.
    Cancel,
    /// Time passes.
    Tick { millis: u64 },
}

/// The model's phases: the flow's own, with the ended ones named by result (the flow's
/// `Lingering` and `Finished` follow from `finished`; see [`Model::flow_phase`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    #[allow(dead_code)] // the model's flows start bound (or headless), past Init
    Init,
    AwaitingCallback,
    Exchanging,
    Storing,
    Stored,
    Failed,
}

#[derive(Debug, Clone)]
struct Model {
    seed: u64,
    headless: bool,
    callback_timeout: u64,
    exchange_timeout: u64,
    now: u64,
    phase: Phase,
    outcome: Option<&'static str>,
    callback_deadline: u64,
    exchange_deadline: u64,
    retry_at: Option<u64>,
    attempt: u32,
    in_flight: bool,
    our_code: bool,
    exchanges: u32,
    held: u32,
    awaiting_done: u32,
    linger_until: Option<u64>,
    finished: bool,
}

impl Model {
    fn new(seed: u64, headless: bool, callback_timeout: u64, exchange_timeout: u64) -> Model {
        Model {
            seed,
            headless,
            callback_timeout,
            exchange_timeout,
            now: 0,
            phase: Phase::AwaitingCallback,
            outcome: None,
            callback_deadline: callback_timeout,
            exchange_deadline: 0,
            retry_at: None,
            attempt: 0,
            in_flight: false,
            our_code: false,
            exchanges: 0,
            held: 0,
            awaiting_done: 0,
            linger_until: None,
            finished: false,
        }
    }

    fn terminal(&self) -> bool {
        matches!(self.phase, Phase::Stored | Phase::Failed)
    }

    /// The phase the flow must report.
    fn flow_phase(&self) -> openrouter_auth_core::Phase {
        use openrouter_auth_core::Phase as P;
        match self.phase {
            Phase::Init => P::Init,
            Phase::AwaitingCallback => P::AwaitingCallback,
            Phase::Exchanging => P::Exchanging,
            Phase::Storing => P::Storing,
            Phase::Stored | Phase::Failed if self.finished => P::Finished,
            Phase::Stored | Phase::Failed => P::Lingering,
        }
    }

    fn end(&mut self, phase: Phase, outcome: &'static str) {
        self.phase = phase;
        self.outcome = Some(outcome);
        self.in_flight = false;
        self.retry_at = None;
        self.awaiting_done += self.held;
        self.held = 0;
        if self.awaiting_done > 0 {
            self.linger_until = Some(self.now + DONE_LINGER.as_millis() as u64);
        } else {
            self.finished = true;
        }
    }

    fn start_exchange(&mut self, ours: bool) {
        self.phase = Phase::Exchanging;
        self.exchange_deadline = self.now + self.exchange_timeout;
        self.attempt = 1;
        self.exchanges += 1;
        self.in_flight = true;
        self.our_code = ours;
    }

    fn hold(&mut self) {
        if (self.held as usize) < MAX_HELD_CONNECTIONS {
            self.held += 1;
        }
    }

    fn callback(&mut self, ours: bool) {
        match self.phase {
            Phase::Init | Phase::AwaitingCallback => {
                self.held += 1;
                self.start_exchange(ours);
            }
            Phase::Exchanging | Phase::Storing => self.hold(),
            Phase::Stored | Phase::Failed => {}
        }
    }

    /// The deadline the flow must ask for.
    fn next_timeout(&self) -> Option<u64> {
        if self.finished {
            return None;
        }
        match self.phase {
            Phase::Init | Phase::AwaitingCallback => Some(self.callback_deadline),
            Phase::Exchanging => Some(
                self.retry_at
                    .map_or(self.exchange_deadline, |r| r.min(self.exchange_deadline)),
            ),
            Phase::Storing => None,
            Phase::Stored | Phase::Failed => self.linger_until,
        }
    }

    fn tick(&mut self, millis: u64) {
        let target = self.now + millis;
        while let Some(t) = self.next_timeout().filter(|t| *t <= target) {
            self.now = self.now.max(t);
            match self.phase {
                Phase::Init | Phase::AwaitingCallback => self.end(Phase::Failed, "timed_out"),
                Phase::Exchanging => {
                    if self.now >= self.exchange_deadline {
                        self.end(Phase::Failed, "exchange_timed_out");
                    } else {
                        self.retry_at = None;
                        self.attempt += 1;
                        self.exchanges += 1;
                        self.in_flight = true;
                    }
                }
                Phase::Storing => unreachable!("no timeout while storing"),
                Phase::Stored | Phase::Failed => {
                    self.linger_until = None;
                    self.finished = true;
                }
            }
        }
        self.now = target;
    }

    fn answer(&mut self, net: Net) {
        if !self.in_flight {
            return;
        }
        self.in_flight = false;
        match net {
            Net::Ok if self.our_code => self.phase = Phase::Storing,
            Net::Ok => self.end(Phase::Failed, "invalid_code"),
            Net::LostBeforeSending => {
                let factor = 1u32 << (self.attempt - 1).min(5);
                let delay = (FIRST_RETRY_DELAY * factor)
                    .min(MAX_RETRY_DELAY)
                    .as_millis() as u64;
                if self.now + delay < self.exchange_deadline {
                    self.retry_at = Some(self.now + delay);
                } else {
                    self.end(Phase::Failed, "network");
                }
            }
            Net::LostAfterSending => self.end(Phase::Failed, "network"),
            Net::BadGateway => self.end(Phase::Failed, "server_error"),
            Net::RateLimited => self.end(Phase::Failed, "rate_limited"),
            Net::Garbage if self.our_code => self.end(Phase::Failed, "missing_key"),
            Net::Garbage => self.end(Phase::Failed, "invalid_code"),
        }
    }
}

struct FlowModel;

impl ReferenceStateMachine for FlowModel {
    type State = Model;
    type Transition = Transition;

    fn init_state() -> BoxedStrategy<Model> {
        (
            any::<u64>(),
            prop::bool::weighted(0.2),
            prop::sample::select(vec![5_000u64, 60_000, 600_000]),
            prop::sample::select(vec![1_000u64, 5_000, 30_000]),
        )
            .prop_map(|(seed, headless, cb, ex)| Model::new(seed, headless, cb, ex))
            .boxed()
    }

    fn transitions(state: &Model) -> BoxedStrategy<Transition> {
        let net = prop_oneof![
            3 => Just(Net::Ok),
            2 => Just(Net::LostBeforeSending),
            1 => Just(Net::LostAfterSending),
            1 => Just(Net::BadGateway),
            1 => Just(Net::RateLimited),
            1 => Just(Net::Garbage),
        ];
        let tick = prop_oneof![
            4 => 0u64..1_000,
            2 => 0u64..10_000,
            1 => 0u64..700_000,
        ]
        .prop_map(|millis| Transition::Tick { millis });
        let answer_weight = if state.in_flight { 8 } else { 1 };
        let store_weight = if state.phase == Phase::Storing { 8 } else { 1 };
        let browser_weight = if state.headless { 1 } else { 4 };
        prop_oneof![
            browser_weight => Just(Transition::OwnCode),
            1 => Just(Transition::OwnError),
            1 => Just(Transition::ForeignCode),
            2 => any::<u8>().prop_map(Transition::Stray),
            1 => Just(Transition::HeadOwnCode),
            2 => Just(Transition::FetchDone),
            1 => Just(Transition::CloseHeld),
            answer_weight => net.clone().prop_map(Transition::Answer),
            1 => net.prop_map(Transition::StaleAnswer),
            store_weight => any::<bool>().prop_map(Transition::Store),
            2 => Just(Transition::PasteCode),
            1 => Just(Transition::PasteJunk),
            1 => Just(Transition::Cancel),
            4 => tick,
        ]
        .boxed()
    }

    fn apply(mut s: Model, t: &Transition) -> Model {
        match *t {
            Transition::OwnCode => s.callback(true),
            Transition::ForeignCode => s.callback(false),
            Transition::OwnError => match s.phase {
                // Held like a code, so the end answers it with a 303 to `/done` and lingers.
                Phase::Init | Phase::AwaitingCallback => {
                    s.held += 1;
                    s.end(Phase::Failed, "denied");
                }
                Phase::Exchanging | Phase::Storing => s.hold(),
                Phase::Stored | Phase::Failed => {}
            },
            Transition::Stray(_)
            | Transition::HeadOwnCode
            | Transition::PasteJunk
            | Transition::StaleAnswer(_) => {}
            Transition::FetchDone => {
                if s.terminal() && s.awaiting_done > 0 {
                    s.awaiting_done -= 1;
                    if s.awaiting_done == 0 && s.linger_until.is_some() {
                        s.linger_until = None;
                        s.finished = true;
                    }
                }
            }
            Transition::CloseHeld => {
                if !s.terminal() && s.held > 0 {
                    s.held -= 1;
                }
            }
            Transition::Answer(net) => s.answer(net),
            Transition::Store(ok) => {
                if s.phase == Phase::Storing {
                    if ok {
                        s.end(Phase::Stored, "stored");
                    } else {
                        s.end(Phase::Failed, "key_not_stored");
                    }
                }
            }
            Transition::PasteCode => {
                if matches!(s.phase, Phase::Init | Phase::AwaitingCallback) {
                    s.start_exchange(true);
                }
            }
            Transition::Cancel => {
                if matches!(
                    s.phase,
                    Phase::Init | Phase::AwaitingCallback | Phase::Exchanging
                ) {
                    s.end(Phase::Failed, "cancelled");
                }
            }
            Transition::Tick { millis } => s.tick(millis),
        }
        s
    }
}

struct Sut {
    cf: CheckedFlow,
    now: u64,
    good: String,
    foreign: String,
    used: bool,
    next_conn: u64,
    /// Own-path GETs with no response yet, oldest first.
    pending: Vec<ConnectionId>,
    key_counter: u64,
}

impl Sut {
    fn step(&mut self, r: Result<Vec<Output>, openrouter_auth_oracle::Violation>) {
        let outs = r.unwrap_or_else(|v| panic!("{v}"));
        for o in &outs {
            if let Output::Respond { conn, .. } = o {
                self.pending.retain(|c| c != conn);
            }
        }
    }

    fn input(&mut self, input: Input) {
        let r = self.cf.handle_input(input, Time::from_millis(self.now));
        self.step(r);
    }

    fn request(&mut self, method: &str, target: String, host: &str, own: bool) {
        let conn = ConnectionId(self.next_conn);
        self.next_conn += 1;
        if own && method == "GET" {
            self.pending.push(conn);
        }
        self.input(Input::Request(BrowserRequest {
            conn,
            method: method.into(),
            target: Zeroizing::new(target.into_bytes()),
            host: Some(host.as_bytes().to_vec()),
        }));
    }
}

fn outcome_kind(o: Option<&Outcome>) -> Option<&'static str> {
    o.map(|o| match o {
        Outcome::Stored { .. } => "stored",
        Outcome::KeyNotStored { .. } => "key_not_stored",
        Outcome::Failed(e) => e.kind(),
        other => panic!("an outcome this model does not know: {other:?}"),
    })
}

struct FlowMatchesModel;

impl StateMachineTest for FlowMatchesModel {
    type SystemUnderTest = Sut;
    type Reference = FlowModel;

    fn init_test(m: &Model) -> Sut {
        let config = {
            let mut c = FlowConfig::default();
            c.headless = m.headless;
            c.callback_timeout = Duration::from_millis(m.callback_timeout);
            c.exchange_timeout = Duration::from_millis(m.exchange_timeout);
            c
        };
        let mut rng = ChaCha20Rng::seed_from_u64(m.seed);
        let (mut cf, _) =
            CheckedFlow::new(config, &mut rng, Time::ZERO).unwrap_or_else(|v| panic!("{v}"));
        let challenge = cf.flow().code_challenge().as_str().to_owned();
        let good = format!("good-code-{}", m.seed);
        let foreign = format!("foreign-code-{}", m.seed);
        cf.note_code_issued(&good, &challenge);
        cf.note_code_issued(&foreign, "another-flows-challenge");
        let mut sut = Sut {
            cf,
            now: 0,
            good,
            foreign,
            used: false,
            next_conn: 1,
            pending: Vec::new(),
            key_counter: 0,
        };
        if !m.headless {
            sut.input(Input::ListenerBound {
                port: PORT,
                ipv6: true,
            });
        }
        sut
    }

    fn apply(mut sut: Sut, m: &Model, t: Transition) -> Sut {
        let nonce = sut.cf.flow().nonce().expose_secret().to_owned();
        let own = format!("/callback/{nonce}");
        let host = format!("localhost:{PORT}");
        match t {
            Transition::OwnCode => {
                let target = format!("{own}?code={}", sut.good);
                sut.request("GET", target, &host, true)
            }
            Transition::ForeignCode => {
                let target = format!("{own}?code={}", sut.foreign);
                sut.request("GET", target, &host, true)
            }
            Transition::OwnError => {
                sut.request("GET", format!("{own}?error=access_denied"), &host, true)
            }
            Transition::HeadOwnCode => {
                let target = format!("{own}?code={}", sut.good);
                sut.request("HEAD", target, &host, false)
            }
            Transition::Stray(which) => {
                let (method, target, h) = match which % 6 {
                    0 => ("GET", "/favicon.ico".to_string(), host.clone()),
                    1 => (
                        "GET",
                        format!("/callback/guess?code={}", sut.good),
                        host.clone(),
                    ),
                    2 => (
                        "GET",
                        "/callback/guess?error=access_denied".to_string(),
                        host.clone(),
                    ),
                    3 => ("POST", format!("{own}?code={}", sut.good), host.clone()),
                    4 => (
                        "GET",
                        format!("{own}?code={}", sut.good),
                        "evil.example".to_string(),
                    ),
                    _ => ("GET", format!("{own}?code=x&state=not-ours"), host.clone()),
                };
                sut.request(method, target, &h, false)
            }
            Transition::FetchDone => sut.request("GET", format!("{own}/done"), &host, false),
            Transition::CloseHeld => {
                if let Some(conn) = sut.pending.first().copied() {
                    sut.pending.remove(0);
                    sut.input(Input::ConnectionClosed(conn));
                }
            }
            Transition::Answer(net) => {
                if let Some((id, code)) = sut.cf.in_flight() {
                    let ours = code == sut.good && !sut.used;
                    let status_403 = || {
                        HttpResponse::new(
                            403,
                            r#"{"error":{"code":403,"message":"Invalid code or code_verifier"}}"#,
                        )
                    };
                    let input = match net {
                        Net::Ok if ours => {
                            sut.used = true;
                            sut.key_counter += 1;
                            let key = format!("sk-or-v1-{:064x}", sut.key_counter);
                            Input::ExchangeResponse {
                                id,
                                response: HttpResponse::new(
                                    200,
                                    format!(r#"{{"key":"{key}","user_id":null}}"#),
                                ),
                            }
                        }
                        Net::Ok => Input::ExchangeResponse {
                            id,
                            response: status_403(),
                        },
                        Net::LostBeforeSending => Input::ExchangeFailed {
                            id,
                            may_have_been_sent: false,
                            reason: "connection refused".into(),
                        },
                        Net::LostAfterSending => {
                            sut.used |= ours;
                            Input::ExchangeFailed {
                                id,
                                may_have_been_sent: true,
                                reason: "connection reset".into(),
                            }
                        }
                        Net::BadGateway => Input::ExchangeResponse {
                            id,
                            response: HttpResponse::new(502, "<html>Bad Gateway</html>"),
                        },
                        Net::RateLimited => Input::ExchangeResponse {
                            id,
                            response: HttpResponse::new(429, "").with_header("Retry-After", "30"),
                        },
                        Net::Garbage if ours => {
                            sut.used = true;
                            Input::ExchangeResponse {
                                id,
                                response: HttpResponse::new(200, "<html>oops</html>"),
                            }
                        }
                        Net::Garbage => Input::ExchangeResponse {
                            id,
                            response: status_403(),
                        },
                    };
                    sut.input(input);
                }
            }
            Transition::StaleAnswer(net) => {
                // The previous exchange's id if there was one, else one never used.
                let id = match sut.cf.in_flight() {
                    Some((cur, _)) if cur.0 > 1 => ExchangeId(cur.0 - 1),
                    _ => ExchangeId(1_000 + sut.cf.flow().exchanges_sent() as u64),
                };
                let input = match net {
                    Net::LostBeforeSending | Net::LostAfterSending => Input::ExchangeFailed {
                        id,
                        may_have_been_sent: net == Net::LostAfterSending,
                        reason: "stale".into(),
                    },
                    Net::BadGateway => Input::ExchangeResponse {
                        id,
                        response: HttpResponse::new(502, ""),
                    },
                    _ => Input::ExchangeResponse {
                        id,
                        response: HttpResponse::new(
                            200,
                            format!(r#"{{"key":"sk-or-v1-{:064x}"}}"#, 0xdead_u64),
                        ),
                    },
                };
                sut.input(input);
                let handled = sut.cf.last_handled();
                assert!(
                    matches!(
                        handled,
                        Some(Handled::Ignored(Ignored::StaleExchange | Ignored::Ended))
                    ),
                    "a stale answer was reported {handled:?}"
                );
            }
            Transition::Store(ok) => {
                let input = if ok {
                    Input::KeyStored {
                        location: "model test".into(),
                        report: (),
                    }
                } else {
                    Input::KeyNotStored {
                        reason: StoreFailure::WriteFailed {
                            message: "model test".into(),
                        },
                    }
                };
                sut.input(input)
            }
            Transition::PasteCode => {
                let text = format!(" {}\n", sut.good);
                sut.input(Input::Pasted(Zeroizing::new(text)))
            }
            Transition::PasteJunk => sut.input(Input::Pasted(Zeroizing::new("not a code".into()))),
            Transition::Cancel => sut.input(Input::Cancel),
            Transition::Tick { millis } => {
                let target = sut.now + millis;
                while let Some(t) = sut.cf.flow().poll_timeout().map(Time::as_millis) {
                    if t > target {
                        break;
                    }
                    sut.now = sut.now.max(t);
                    let r = sut.cf.handle_timeout(Time::from_millis(sut.now));
                    sut.step(r);
                }
                sut.now = target;
            }
        }
        let f = sut.cf.flow();
        assert_eq!(f.phase(), m.flow_phase(), "phase after {t:?}");
        assert_eq!(outcome_kind(f.outcome()), m.outcome, "outcome after {t:?}");
        assert_eq!(
            f.exchanges_sent(),
            m.exchanges,
            "exchanges sent after {t:?}"
        );
        assert_eq!(
            f.poll_timeout().map(Time::as_millis),
            m.next_timeout(),
            "next deadline after {t:?}"
        );
        assert_eq!(sut.cf.is_finished(), m.finished, "finished after {t:?}");
        if !m.finished && !matches!(m.phase, Phase::Stored | Phase::Failed) {
            assert_eq!(
                sut.pending.len() as u32,
                m.held,
                "held connections after {t:?}"
            );
        }
        sut
    }

    fn teardown(sut: Sut, _m: Model) {
        sut.cf.check_end().unwrap_or_else(|v| panic!("{v}"));
    }
}

prop_state_machine! {
    #![proptest_config(Config {
        cases: 1024,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(
            "proptest-regressions/simulator_model.txt",
        ))),
        .. Config::default()
    })]
    #[test]
    fn flow_follows_the_reference_model(sequential 1..80 => FlowMatchesModel);
}
