//! One simulated run: a virtual clock, an event queue, the actors and the flows.
//!
//! Every input reaches a flow through the oracle's [`CheckedFlow`], which checks the flow's own
//! rules after every step; the world adds the rules only it can see (whose code, whose key,
//! what the server saw, liveness, and that a clean sign-in succeeds).
//!
//! This file is the scheduler: the world's state, the event queue and the main loop, which
//! hands each event to its actor and each flow output to whoever acts on it. Each actor is a
//! room of its own, one `impl World` block per file:
//!
//! - [`browser`]: the user and their browser (sign-in start, OpenRouter's page, callbacks,
//!   stale tabs, pastes, reactions to pages);
//! - [`attacker`]: forged callbacks and junk on the loopback port;
//! - [`network`]: requests reaching the listener, the code exchange in transit;
//! - [`openrouter`]: OpenRouter's server answering the code exchange;
//! - [`store`]: the key store answering `StoreKey`;
//! - [`rules`]: the world's own rules and the end-of-run checks;
//! - [`transcript`]: the recorded, redacted lines and their digest.
//!
//! Every random draw happens in the same order as when this was one file, so a seed replays
//! the same transcript.

use super::model::OpenRouter;
use super::plan::{AttackKind, Fate, FlowPlan, Plan, StoreFate};
use super::rng::SimRng;
use super::{FlowTape, Harvest, RunReport, SimViolation, TapeStep};
use openrouter_auth_core::flow::DONE_LINGER;
use openrouter_auth_core::{
    BrowserRequest, CallbackHost, CodeChallengeMethod, CodeVerifier, ConnectionId, ExchangeId,
    FlowConfig, HttpResponse, Input, Outcome, Output, Phase, StoreFailure, Time,
};
use openrouter_auth_oracle::{
    encode_response, CheckedFlow, FuzzBody, FuzzConfig, FuzzHost, FuzzMethod, FuzzOp, FuzzPaste,
    FuzzTarget, Violation,
};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::time::Duration;
use url::Url;
use zeroize::Zeroizing;

mod attacker;
mod browser;
mod network;
mod openrouter;
mod rules;
mod store;
mod transcript;

use transcript::{lossy, title_of};

/// A run stops at this virtual time whatever is left (liveness then judges it).
const HARD_END_MS: u64 = 6 * 3600 * 1000;
/// At most this many steps per run.
const MAX_STEPS: u64 = 200_000;
/// The slowest a key store that is not hung answers (`StoreFate::Ok` slow case).
const STORE_SLOW_MAX_MS: u64 = 20_000;
/// How fast everything answers once healed.
const HEALED_MAX_MS: u64 = 300;
/// `FlowConfig::default()`, made once: each flow starts from a clone (the default parses
/// its base URL).
static DEFAULT_CONFIG: std::sync::LazyLock<FlowConfig> =
    std::sync::LazyLock::new(FlowConfig::default);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    Browser(usize),
    StaleTab,
    Attacker,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Callback,
    Reload,
    Done,
    Favicon,
    Stale,
    Attack,
}

/// What a request or paste means for the "a clean sign-in succeeds" rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Carries {
    Nothing,
    Code,
    Error,
}

#[derive(Debug, Clone)]
struct Req {
    who: Who,
    kind: Kind,
    port: u16,
    method: String,
    target: Vec<u8>,
    host: Option<Vec<u8>>,
    close_after: Option<u64>,
    carries: Carries,
    fuzz_target: Option<FuzzTarget>,
    fuzz_host: FuzzHost,
}

#[derive(Debug, Clone, Copy)]
struct ConnInfo {
    flow: usize,
    who: Who,
    kind: Kind,
    answered: bool,
}

#[derive(Debug)]
enum Then {
    Answer { down: u64, fate: Fate },
    Reset { after: u64 },
    Nothing,
}

#[derive(Debug)]
enum Ev {
    StartFlow(usize),
    /// The user at OpenRouter's page; `true` the second time (another tab).
    Authorize(usize, bool),
    Request(Box<Req>),
    Close(u64),
    Preconnect(u16),
    Paste {
        flow: usize,
        text: String,
        carries: Carries,
        fuzz: FuzzPaste,
    },
    Cancel(usize),
    AtServer {
        flow: usize,
        id: ExchangeId,
        body: Zeroizing<Vec<u8>>,
        deadline: u64,
        then: Then,
    },
    ToFlow(usize, Box<Input>),
    Attack(usize),
}

/// An event in the queue: the earliest `(time, sequence number)` comes out first (the
/// sequence numbers are unique, so the order is total and the same on every replay).
#[derive(Debug)]
struct Queued {
    key: std::cmp::Reverse<(u64, u64)>,
    ev: Ev,
}

impl PartialEq for Queued {
    fn eq(&self, other: &Self) -> bool {
        self.key == other.key
    }
}

impl Eq for Queued {}

impl PartialOrd for Queued {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Queued {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key.cmp(&other.key)
    }
}

struct FlowState {
    cf: CheckedFlow,
    plan: FlowPlan,
    started_at: u64,
    callback_deadline: u64,
    port: u16,
    nonce: String,
    challenge: String,
    terminal_at: Option<u64>,
    finished_at: Option<u64>,
    codes: Vec<String>,
    first_delivery: Option<(Carries, bool, u64)>,
    server_seen: BTreeMap<String, u32>,
    redirect: Option<Url>,
    conn_order: Vec<u64>,
    ops: Vec<FuzzOp>,
    last_op_ms: u64,
    in_flight_id: Option<ExchangeId>,
}

struct Recorder {
    lines: Vec<String>,
    redactions: Vec<(String, String)>,
    hash: Sha256,
    harvest: Harvest,
}

pub(super) struct World<'p> {
    seed: u64,
    plan: &'p Plan,
    rng: SimRng,
    now: u64,
    queue: std::collections::BinaryHeap<Queued>,
    seq: u64,
    model: OpenRouter,
    flows: Vec<FlowState>,
    /// Indexed by connection id (ids count up from 1; a preconnect's id has no entry).
    conns: Vec<Option<ConnInfo>>,
    next_conn: u64,
    steps: u64,
    rec: Option<Recorder>,
    /// With [`World::taped`]: each flow's construction and every step it took, for replaying
    /// into a bare `Flow` (the P5 peer).
    tapes: Option<Vec<FlowTape>>,
    /// The outputs of the step being handled, one buffer reused for the run.
    outs: Vec<Output>,
    attacker_codes: usize,
}

impl<'p> World<'p> {
    pub(super) fn new(seed: u64, plan: &'p Plan, rng: SimRng, record: bool) -> Self {
        World {
            seed,
            plan,
            rng,
            now: 0,
            // The attacks are all queued at the start.
            queue: std::collections::BinaryHeap::with_capacity(plan.attacks.len() + 16),
            seq: 0,
            model: OpenRouter::new(plan.echo_state),
            flows: Vec::with_capacity(plan.flows.len()),
            conns: Vec::new(),
            next_conn: 1,
            steps: 0,
            rec: record.then(|| Recorder {
                lines: Vec::new(),
                redactions: Vec::new(),
                hash: Sha256::new(),
                harvest: Harvest::default(),
            }),
            tapes: None,
            outs: Vec::new(),
            attacker_codes: 0,
        }
    }

    /// Records each flow's tape while running (see [`FlowTape`]).
    pub(super) fn taped(mut self) -> Self {
        self.tapes = Some(Vec::new());
        self
    }

    /// The recorded tapes (empty unless [`World::taped`]).
    pub(super) fn take_tapes(&mut self) -> Vec<FlowTape> {
        self.tapes.take().unwrap_or_default()
    }

    fn at(&mut self, t: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Queued {
            key: std::cmp::Reverse((t, self.seq)),
            ev,
        });
    }

    fn conn(&self, conn: u64) -> Option<&ConnInfo> {
        self.conns.get(usize::try_from(conn).ok()?)?.as_ref()
    }

    fn conn_mut(&mut self, conn: u64) -> Option<&mut ConnInfo> {
        self.conns.get_mut(usize::try_from(conn).ok()?)?.as_mut()
    }

    fn healed(&self, t: u64) -> bool {
        self.plan.heal_at_ms.is_some_and(|h| t >= h)
    }

    fn live_flow(&self, port: u16) -> Option<usize> {
        self.flows
            .iter()
            .rposition(|f| f.port == port && f.finished_at.is_none() && !f.plan.headless)
    }

    fn current_flow(&self) -> Option<usize> {
        self.flows
            .iter()
            .rposition(|f| f.finished_at.is_none() && !f.plan.headless)
    }

    pub(super) fn run(mut self) -> RunReport {
        self.play()
    }

    /// [`World::run`], keeping the world (for its tapes).
    pub(super) fn play(&mut self) -> RunReport {
        if !self.plan.flows.is_empty() {
            let gap = self.plan.flows[0].gap_ms;
            self.at(gap, Ev::StartFlow(0));
        }
        for (i, a) in self.plan.attacks.iter().enumerate() {
            self.seq += 1;
            self.queue.push(Queued {
                key: std::cmp::Reverse((a.at_ms, self.seq)),
                ev: Ev::Attack(i),
            });
        }
        let violation = self.main_loop().err().or_else(|| self.end_checks().err());
        if let Some(v) = &violation {
            self.log("!!", || v.to_string());
        }
        let outcomes = self
            .flows
            .iter()
            .map(|f| super::flow_end(f.cf.flow()))
            .collect();
        let (transcript, digest, harvest) = match self.rec.take() {
            Some(mut r) => {
                for f in &self.flows {
                    if !f.ops.is_empty() {
                        let cfg = fuzz_config(&f.plan);
                        r.harvest
                            .flow_inputs
                            .push(openrouter_auth_oracle::encode_ops(cfg, &f.ops));
                    }
                }
                let keys: Vec<String> = self.model.keys().map(str::to_owned).collect();
                for (n, k) in keys.iter().enumerate() {
                    for variant in [0, (self.seed as usize + n) as u8] {
                        let resp = self.model.key_info(k, variant, &mut self.rng);
                        r.harvest.key_info.push(encode_response(
                            resp.status,
                            resp.header("retry-after").map(str::as_bytes),
                            &resp.body,
                        ));
                    }
                }
                let d = r.hash.finalize();
                let hex: String = d.iter().map(|b| format!("{b:02x}")).collect();
                (r.lines, Some(hex), Some(r.harvest))
            }
            None => (Vec::new(), None, None),
        };
        RunReport {
            seed: self.seed,
            flows: self.flows.len(),
            outcomes,
            steps: self.steps,
            end_ms: self.now,
            violation,
            transcript,
            digest,
            harvest,
        }
    }

    fn main_loop(&mut self) -> Result<(), SimViolation> {
        loop {
            let next_ev = self.queue.peek().map(|q| q.key.0 .0);
            let next_timer = self
                .flows
                .iter()
                .enumerate()
                .filter_map(|(i, f)| f.cf.flow().poll_timeout().map(|t| (t.as_millis(), i)))
                .min();
            let timer_first = match (next_timer, next_ev) {
                (None, None) => return Ok(()),
                (Some((t, _)), Some(e)) => t <= e,
                (Some(_), None) => true,
                (None, Some(_)) => false,
            };
            self.steps += 1;
            if self.steps > MAX_STEPS {
                return Err(self.fail(
                    None,
                    Violation {
                        invariant: "liveness",
                        detail: format!("more than {MAX_STEPS} steps"),
                    },
                ));
            }
            if timer_first {
                let (t, i) = next_timer.expect("timer");
                if t > HARD_END_MS {
                    return Ok(());
                }
                self.now = self.now.max(t);
                self.log("->", || format!("flow#{i} timeout"));
                if let Some(t) = &mut self.tapes {
                    t[i].steps
                        .push(TapeStep::Timeout(Time::from_millis(self.now)));
                }
                let mut outs = std::mem::take(&mut self.outs);
                let r = self.flows[i]
                    .cf
                    .handle_timeout_into(Time::from_millis(self.now), &mut outs);
                r.map_err(|v| self.fail(Some(i), v))?;
                self.after_step(i, outs)?;
            } else {
                let Queued {
                    key: std::cmp::Reverse((t, _)),
                    ev,
                } = self.queue.pop().expect("event");
                if t > HARD_END_MS {
                    return Ok(());
                }
                self.now = self.now.max(t);
                self.event(ev)?;
            }
        }
    }

    fn feed(&mut self, i: usize, input: Input, op: Option<FuzzOp>) -> Result<(), SimViolation> {
        if self.rec.is_some() {
            if let Some(op) = op {
                let f = &mut self.flows[i];
                let dt = self.now.saturating_sub(f.last_op_ms);
                if dt > 0 {
                    f.ops.push(FuzzOp::Tick {
                        millis: dt.min(u64::from(u32::MAX)) as u32,
                    });
                }
                f.last_op_ms = self.now;
                f.ops.push(op);
            }
        }
        if let Some(t) = &mut self.tapes {
            t[i].steps
                .push(TapeStep::Input(input.clone(), Time::from_millis(self.now)));
        }
        let mut outs = std::mem::take(&mut self.outs);
        let r = self.flows[i]
            .cf
            .handle_input_into(input, Time::from_millis(self.now), &mut outs);
        r.map_err(|v| self.fail(Some(i), v))?;
        self.after_step(i, outs)
    }

    /// Hands each output to whoever acts on it; `outs` goes back to [`World::outs`] for the
    /// next step (an output that feeds another step meanwhile gets a buffer of its own).
    fn after_step(&mut self, i: usize, mut outs: Vec<Output>) -> Result<(), SimViolation> {
        for out in outs.drain(..) {
            self.output(i, out)?;
        }
        self.outs = outs;
        let f = &mut self.flows[i];
        if f.terminal_at.is_none() && f.cf.flow().is_terminal() {
            f.terminal_at = Some(self.now);
        }
        Ok(())
    }

    fn event(&mut self, ev: Ev) -> Result<(), SimViolation> {
        match ev {
            Ev::StartFlow(i) => self.start_flow(i),
            Ev::Authorize(i, again) => self.authorize(i, again),
            Ev::Request(req) => self.request(*req),
            Ev::Close(conn) => {
                let Some(info) = self.conn(conn).copied() else {
                    return Ok(());
                };
                if info.answered || self.flows[info.flow].finished_at.is_some() {
                    return Ok(());
                }
                self.log("->", || format!("ConnectionClosed conn={conn}"));
                let nth = self.flows[info.flow]
                    .conn_order
                    .iter()
                    .position(|c| *c == conn)
                    .unwrap_or(0);
                self.feed(
                    info.flow,
                    Input::ConnectionClosed(ConnectionId(conn)),
                    Some(FuzzOp::Close {
                        nth: (nth % 256) as u8,
                    }),
                )
            }
            Ev::Preconnect(port) => {
                let conn = self.next_conn;
                self.next_conn += 1;
                match self.live_flow(port) {
                    Some(i) => {
                        self.log("->", || {
                            format!("ConnectionClosed conn={conn} (a preconnect that sent nothing)")
                        });
                        self.feed(i, Input::ConnectionClosed(ConnectionId(conn)), None)
                    }
                    None => Ok(()),
                }
            }
            Ev::Paste {
                flow,
                text,
                carries,
                fuzz,
            } => {
                // After the end too: terminal phases must shrug it off.
                self.note_delivery(flow, carries, Some(&text));
                self.log("->", || format!("Pasted {:?}", text));
                self.feed(
                    flow,
                    Input::Pasted(Zeroizing::new(text)),
                    Some(FuzzOp::Paste(fuzz)),
                )
            }
            Ev::Cancel(i) => {
                // After the end too: terminal phases must shrug it off.
                self.log("->", || "Cancel (Ctrl-C)".into());
                self.feed(i, Input::Cancel, Some(FuzzOp::Cancel))
            }
            Ev::AtServer {
                flow,
                id,
                body,
                deadline,
                then,
            } => self.at_server(flow, id, &body, deadline, then),
            Ev::ToFlow(i, input) => self.deliver(i, *input),
            Ev::Attack(a) => self.attack(a),
        }
    }

    fn deliver(&mut self, i: usize, input: Input) -> Result<(), SimViolation> {
        let op = match &input {
            Input::ExchangeResponse { id, response } => {
                self.log("->", || {
                    format!(
                        "ExchangeResponse id={} {} {}",
                        id.0,
                        response.status,
                        lossy(&response.body)
                    )
                });
                if let Some(r) = &mut self.rec {
                    r.harvest.exchange_response.push(encode_response(
                        response.status,
                        response.header("retry-after").map(str::as_bytes),
                        &response.body,
                    ));
                }
                let f = &self.flows[i];
                // The fuzz op is only kept when recording (see `feed`).
                if self.rec.is_some() && f.in_flight_id == Some(*id) {
                    let body = if response.status == 200
                        && openrouter_auth_core::parse_exchange_response(response).is_ok()
                    {
                        FuzzBody::Key
                    } else {
                        FuzzBody::Raw(response.body.to_vec())
                    };
                    Some(FuzzOp::Answer {
                        status: response.status,
                        body,
                        retry_after: response.header("retry-after").and_then(|v| v.parse().ok()),
                    })
                } else {
                    None
                }
            }
            Input::ExchangeFailed {
                id,
                may_have_been_sent,
                reason,
            } => {
                self.log("->", || {
                    format!(
                        "ExchangeFailed id={} may_have_been_sent={may_have_been_sent} ({reason})",
                        id.0
                    )
                });
                (self.flows[i].in_flight_id == Some(*id)).then_some(FuzzOp::Fail {
                    may_have_been_sent: *may_have_been_sent,
                })
            }
            Input::KeyStored { location, .. } => {
                self.log("->", || format!("KeyStored ({location})"));
                Some(FuzzOp::Store { ok: true })
            }
            Input::KeyNotStored { reason } => {
                self.log("->", || format!("KeyNotStored ({reason})"));
                Some(FuzzOp::Store { ok: false })
            }
            other => {
                self.log("->", || format!("{other:?}"));
                None
            }
        };
        if matches!(
            input,
            Input::ExchangeResponse { .. } | Input::ExchangeFailed { .. }
        ) {
            let id = match &input {
                Input::ExchangeResponse { id, .. } | Input::ExchangeFailed { id, .. } => *id,
                _ => unreachable!(),
            };
            if self.flows[i].in_flight_id == Some(id) {
                self.flows[i].in_flight_id = None;
            }
        }
        self.feed(i, input, op)
    }

    fn output(&mut self, i: usize, out: Output) -> Result<(), SimViolation> {
        match out {
            Output::OpenBrowser { url } => {
                self.log("<-", || format!("OpenBrowser {url}"));
                let user = &self.flows[i].plan.user;
                let (comes_back, think_ms) = (user.comes_back, user.think_ms);
                if comes_back {
                    self.at(self.now + think_ms, Ev::Authorize(i, false));
                } else {
                    self.log("..", || format!("user#{i} never comes back"));
                }
            }
            Output::PromptForCode { url } => {
                self.log("<-", || format!("PromptForCode {url}"));
                let user = &self.flows[i].plan.user;
                let (comes_back, think_ms) = (user.comes_back, user.think_ms);
                if comes_back {
                    self.at(self.now + think_ms, Ev::Authorize(i, false));
                } else {
                    self.log("..", || format!("user#{i} never comes back"));
                }
            }
            Output::Respond { conn, response, .. } => {
                let info = self.conn_mut(conn.0).map(|c| {
                    c.answered = true;
                    *c
                });
                self.log("<-", || {
                    let what = match response.header("location") {
                        Some(l) => format!("-> {l}"),
                        None => format!("\"{}\"", title_of(&response.body)),
                    };
                    format!("Respond conn={} {} {what}", conn.0, response.status)
                });
                if let Some(info) = info {
                    self.browser_reacts(info, &response)?;
                }
            }
            Output::SendExchange {
                id,
                attempt,
                request,
                timeout,
            } => self.send_exchange(i, id, attempt, &request.body, timeout)?,
            Output::StoreKey { key, .. } => self.store_key(i, key.expose_secret())?,
            Output::PasteRejected { reason } => {
                self.log("<-", || format!("PasteRejected ({reason})"));
            }
            Output::Finished(outcome) => {
                self.log("<-", || match &outcome {
                    Outcome::Stored { key, location, .. } => {
                        format!("Finished: stored {} in {location}", key.expose_secret())
                    }
                    Outcome::KeyNotStored { key, reason, .. } => {
                        format!(
                            "Finished: key {} not stored ({reason})",
                            key.expose_secret()
                        )
                    }
                    Outcome::Failed(e) => format!("Finished: failed, {} ({e})", e.kind()),
                    other => format!("Finished: {other:?}"),
                });
                self.flows[i].finished_at = Some(self.now);
                if i + 1 < self.plan.flows.len() && self.flows.len() == i + 1 {
                    let gap = self.plan.flows[i + 1].gap_ms;
                    self.at(self.now + gap, Ev::StartFlow(i + 1));
                }
            }
            other => self.log("<-", || format!("{other:?}")),
        }
        Ok(())
    }
}

fn fuzz_config(p: &FlowPlan) -> FuzzConfig {
    let nearest = |v: u64, choices: [u64; 4]| {
        choices
            .iter()
            .enumerate()
            .min_by_key(|(_, c)| c.abs_diff(v))
            .map_or(0, |(i, _)| i as u8)
    };
    FuzzConfig {
        headless: p.headless,
        ipv4_host: p.callback_host == CallbackHost::Ipv4Loopback,
        plain: p.method == CodeChallengeMethod::Plain,
        callback_timeout: nearest(p.callback_timeout_s, [600, 60, 5, 0]),
        exchange_timeout: nearest(p.exchange_timeout_s, [30, 5, 1, 0]),
    }
}
