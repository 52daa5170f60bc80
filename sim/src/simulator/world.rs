//! One simulated run: a virtual clock, an event queue, the actors and the flows.
//!
//! Every input reaches a flow through the core's [`CheckedFlow`], which checks the flow's own
//! rules after every step; the world adds the rules only it can see (whose code, whose key,
//! what the server saw, liveness, and that a clean sign-in succeeds).

use super::model::OpenRouter;
use super::plan::{AttackKind, Fate, FlowPlan, Plan, StoreFate};
use super::rng::SimRng;
use super::{Harvest, RunReport, SimViolation};
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

/// A run stops at this virtual time whatever is left (liveness then judges it).
const HARD_END_MS: u64 = 6 * 3600 * 1000;
/// At most this many steps per run.
const MAX_STEPS: u64 = 200_000;
/// The slowest a key store that is not hung answers (`StoreFate::Ok` slow case).
const STORE_SLOW_MAX_MS: u64 = 20_000;
/// How fast everything answers once healed.
const HEALED_MAX_MS: u64 = 300;

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
    queue: BTreeMap<(u64, u64), Ev>,
    seq: u64,
    model: OpenRouter,
    flows: Vec<FlowState>,
    conns: BTreeMap<u64, ConnInfo>,
    next_conn: u64,
    steps: u64,
    rec: Option<Recorder>,
    attacker_codes: usize,
}

fn fmt_ms(ms: u64) -> String {
    format!("{:>7}.{:03}", ms / 1000, ms % 1000)
}

fn title_of(body: &str) -> &str {
    body.split_once("<h1>")
        .and_then(|(_, rest)| rest.split_once("</h1>"))
        .map_or("", |(t, _)| t)
}

fn lossy(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(120)]).into_owned();
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if b.len() > 120 {
        format!("{s}…({} bytes)", b.len())
    } else {
        s
    }
}

impl<'p> World<'p> {
    pub(super) fn new(seed: u64, plan: &'p Plan, rng: SimRng, record: bool) -> Self {
        World {
            seed,
            plan,
            rng,
            now: 0,
            queue: BTreeMap::new(),
            seq: 0,
            model: OpenRouter::new(plan.echo_state),
            flows: Vec::new(),
            conns: BTreeMap::new(),
            next_conn: 1,
            steps: 0,
            rec: record.then(|| Recorder {
                lines: Vec::new(),
                redactions: Vec::new(),
                hash: Sha256::new(),
                harvest: Harvest::default(),
            }),
            attacker_codes: 0,
        }
    }

    fn at(&mut self, t: u64, ev: Ev) {
        self.seq += 1;
        self.queue.insert((t, self.seq), ev);
    }

    fn redact(&mut self, secret: &str, label: String) {
        if let Some(r) = &mut self.rec {
            if !secret.is_empty() && !r.redactions.iter().any(|(s, _)| s == secret) {
                r.redactions.push((secret.to_owned(), label));
            }
        }
    }

    fn log(&mut self, dir: &str, f: impl FnOnce() -> String) {
        if let Some(r) = &mut self.rec {
            let raw = format!("{}  {dir} {}", fmt_ms(self.now), f());
            r.hash.update(raw.as_bytes());
            r.hash.update(b"\n");
            let mut line = raw;
            for (s, l) in &r.redactions {
                if line.contains(s.as_str()) {
                    line = line.replace(s.as_str(), l);
                }
            }
            r.lines.push(line);
        }
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

    fn fail(&self, flow: Option<usize>, v: Violation) -> SimViolation {
        SimViolation {
            seed: self.seed,
            invariant: v.invariant,
            detail: v.detail,
            time_ms: self.now,
            flow,
        }
    }

    fn broken(&self, flow: usize, invariant: &'static str, detail: String) -> SimViolation {
        self.fail(Some(flow), Violation { invariant, detail })
    }

    // ----- the loop -----

    pub(super) fn run(mut self) -> RunReport {
        if !self.plan.flows.is_empty() {
            let gap = self.plan.flows[0].gap_ms;
            self.at(gap, Ev::StartFlow(0));
        }
        for (i, a) in self.plan.attacks.iter().enumerate() {
            self.seq += 1;
            self.queue.insert((a.at_ms, self.seq), Ev::Attack(i));
        }
        let violation = self.main_loop().err().or_else(|| self.end_checks().err());
        if let Some(v) = &violation {
            self.log("!!", || v.to_string());
        }
        let outcomes = self
            .flows
            .iter()
            .map(|f| match f.cf.flow().outcome() {
                None => format!("{:?}", f.cf.flow().phase()).to_lowercase(),
                Some(Outcome::Stored { .. }) => "stored".into(),
                Some(Outcome::KeyNotStored { .. }) => "key_not_stored".into(),
                Some(Outcome::Failed(e)) => e.kind().into(),
            })
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
            let next_ev = self.queue.first_key_value().map(|(k, _)| k.0);
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
                let outs = self.flows[i]
                    .cf
                    .handle_timeout(Time::from_millis(self.now))
                    .map_err(|v| self.fail(Some(i), v))?;
                self.after_step(i, outs)?;
            } else {
                let ((t, _), ev) = self.queue.pop_first().expect("event");
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
        let outs = self.flows[i]
            .cf
            .handle_input(input, Time::from_millis(self.now))
            .map_err(|v| self.fail(Some(i), v))?;
        self.after_step(i, outs)
    }

    fn after_step(&mut self, i: usize, outs: Vec<Output>) -> Result<(), SimViolation> {
        for out in outs {
            self.output(i, out)?;
        }
        let f = &mut self.flows[i];
        if f.terminal_at.is_none() && f.cf.flow().is_terminal() {
            f.terminal_at = Some(self.now);
        }
        Ok(())
    }

    // ----- events -----

    fn event(&mut self, ev: Ev) -> Result<(), SimViolation> {
        match ev {
            Ev::StartFlow(i) => self.start_flow(i),
            Ev::Authorize(i, again) => self.authorize(i, again),
            Ev::Request(req) => self.request(*req),
            Ev::Close(conn) => {
                let Some(info) = self.conns.get(&conn).copied() else {
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
                if f.in_flight_id == Some(*id) {
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

    fn start_flow(&mut self, i: usize) -> Result<(), SimViolation> {
        let plan = self.plan.flows[i].clone();
        let config = FlowConfig {
            headless: plan.headless,
            callback_host: plan.callback_host,
            code_challenge_method: plan.method,
            callback_timeout: Duration::from_secs(plan.callback_timeout_s),
            exchange_timeout: Duration::from_secs(plan.exchange_timeout_s),
            ..FlowConfig::default()
        };
        let mut flow_rng = ChaCha20Rng::seed_from_u64(self.rng.fork());
        let now = Time::from_millis(self.now);
        let (cf, outs) =
            CheckedFlow::new(config, &mut flow_rng, now).map_err(|v| self.fail(Some(i), v))?;
        let nonce = cf.flow().nonce().expose_secret().to_owned();
        let challenge = cf.flow().code_challenge().as_str().to_owned();
        let verifier = cf.verifier().to_owned();
        self.redact(&verifier, format!("<verifier#{i}>"));
        self.redact(&nonce, format!("<nonce#{i}>"));
        self.redact(&challenge, format!("<challenge#{i}>"));
        self.flows.push(FlowState {
            cf,
            callback_deadline: self.now + plan.callback_timeout_s * 1000,
            port: plan.port,
            started_at: self.now,
            plan,
            nonce,
            challenge,
            terminal_at: None,
            finished_at: None,
            codes: Vec::new(),
            first_delivery: None,
            server_seen: BTreeMap::new(),
            redirect: None,
            conn_order: Vec::new(),
            ops: Vec::new(),
            last_op_ms: self.now,
            in_flight_id: None,
        });
        let p = self.flows[i].plan.clone();
        self.log("..", || {
            format!(
            "flow#{i} starts: {}, port {}, {}, {}, callback timeout {} s, exchange timeout {} s",
            if p.headless { "headless" } else { "loopback" },
            p.port,
            p.callback_host.as_str(),
            p.method.as_str(),
            p.callback_timeout_s,
            p.exchange_timeout_s
        )
        });
        let (cancel, stale) = (p.cancel_after_ms, p.stale_tabs);
        if let Some(c) = cancel {
            self.at(self.now + c, Ev::Cancel(i));
        }
        for s in stale {
            self.stale_tab(i, self.now + s);
        }
        self.after_step(i, outs)?;
        if !self.flows[i].plan.headless {
            let port = self.flows[i].port;
            self.log("->", || format!("ListenerBound port={port}"));
            self.feed(
                i,
                Input::ListenerBound { port, ipv6: true },
                Some(FuzzOp::Bind),
            )?;
        }
        Ok(())
    }

    /// A stale tab re-sends an older flow's callback URL (a real one from an earlier flow of
    /// this run, or one made up for a flow before the run).
    fn stale_tab(&mut self, i: usize, t: u64) {
        let port = self.flows[i].port;
        let host = format!("localhost:{port}");
        let target = match (0..i).rev().find_map(|j| self.flows[j].redirect.clone()) {
            Some(url) => {
                let mut t = url.path().to_owned();
                if let Some(q) = url.query() {
                    t.push('?');
                    t.push_str(q);
                }
                t
            }
            None => format!(
                "/callback/{}?code={}",
                self.rng.token(32),
                self.rng.token(32)
            ),
        };
        self.at(
            t,
            Ev::Request(Box::new(Req {
                who: Who::StaleTab,
                kind: Kind::Stale,
                port,
                method: "GET".into(),
                target: target.clone().into_bytes(),
                host: Some(host.into_bytes()),
                close_after: None,
                carries: Carries::Nothing,
                fuzz_target: Some(FuzzTarget::Raw(target.into_bytes())),
                fuzz_host: FuzzHost::Ours,
            })),
        );
    }

    fn authorize(&mut self, i: usize, again: bool) -> Result<(), SimViolation> {
        if self.flows[i].finished_at.is_some() && !self.flows[i].plan.headless {
            self.log("..", || {
                format!("browser#{i} comes back too late: nothing listens")
            });
            return Ok(());
        }
        let Some(url) = self.flows[i].cf.flow().authorization_url().cloned() else {
            return Err(self.broken(i, "authorization-url-accepted", "no URL".into()));
        };
        let auth = match self.model.check_authorize(&url) {
            Ok(a) => a,
            Err(e) => return Err(self.broken(i, "authorization-url-accepted", e)),
        };
        let f = &self.flows[i];
        if auth.challenge != f.challenge || auth.method != f.plan.method {
            return Err(self.broken(
                i,
                "authorization-url-accepted",
                "the URL's code_challenge is not the flow's".into(),
            ));
        }
        let user = f.plan.user.clone();
        let headless = f.plan.headless;
        if headless != auth.callback_url.is_none() {
            return Err(self.broken(
                i,
                "authorization-url-accepted",
                "callback_url present exactly when not headless".into(),
            ));
        }
        if let Some(cb) = &auth.callback_url {
            let want = format!("/callback/{}", f.nonce);
            if cb.port() != Some(f.port)
                || cb.path() != want
                || auth.state.as_deref() != Some(&f.nonce)
            {
                return Err(self.broken(
                    i,
                    "authorization-url-accepted",
                    "callback_url must carry the flow's port and nonce, state the nonce".into(),
                ));
            }
        }
        if !user.approves {
            self.log("..", || format!("user#{i} denies at OpenRouter"));
            if headless {
                // Nothing comes back in headless mode; the user gives up with Ctrl-C.
                self.at(self.now + 5_000, Ev::Cancel(i));
                return Ok(());
            }
            let url = self
                .model
                .redirect(&auth, Err("access_denied"))
                .expect("loopback");
            return self.browser_callback(i, url, Carries::Error);
        }
        let code = self.model.issue_code(&auth, self.now, &mut self.rng);
        let n = self.flows[i].codes.len();
        self.redact(&code, format!("<code#{i}.{n}>"));
        self.flows[i].codes.push(code.clone());
        self.log("..", || {
            format!("user#{i} approves at OpenRouter: code {code} issued")
        });
        let challenge = self.flows[i].challenge.clone();
        self.flows[i].cf.note_code_issued(&code, &challenge);
        if headless {
            let idx = (n % 256) as u8;
            let mut at = self.now + user.paste_ms;
            if user.junk_first {
                self.at(
                    at,
                    Ev::Paste {
                        flow: i,
                        text: "the code is on the other screen".into(),
                        carries: Carries::Nothing,
                        fuzz: FuzzPaste::Raw(b"the code is on the other screen".to_vec()),
                    },
                );
                at += 3_000;
            }
            let (text, carries, fuzz) = if user.typo {
                let t = code[..code.len() - 1].to_owned();
                (t.clone(), Carries::Code, FuzzPaste::Raw(t.into_bytes()))
            } else {
                (
                    format!("  {code}\n"),
                    Carries::Code,
                    FuzzPaste::BareCode(idx),
                )
            };
            self.at(
                at,
                Ev::Paste {
                    flow: i,
                    text,
                    carries,
                    fuzz,
                },
            );
            return Ok(());
        }
        let url = self.model.redirect(&auth, Ok(&code)).expect("loopback");
        if !again {
            if let Some(d) = user.approves_again_ms {
                self.at(self.now + user.redirect_ms + d, Ev::Authorize(i, true));
            }
        }
        self.browser_callback(i, url, Carries::Code)
    }

    /// The browser is sent back to the listener with `url`.
    fn browser_callback(
        &mut self,
        i: usize,
        url: Url,
        carries: Carries,
    ) -> Result<(), SimViolation> {
        let user = self.flows[i].plan.user.clone();
        let port = self.flows[i].port;
        let host = format!("{}:{port}", self.flows[i].plan.callback_host.as_str());
        let fuzz_host = match self.flows[i].plan.callback_host {
            CallbackHost::Localhost => FuzzHost::Ours,
            CallbackHost::Ipv4Loopback => FuzzHost::Ipv4,
        };
        let mut target = url.path().to_owned();
        if let Some(q) = url.query() {
            target.push('?');
            target.push_str(q);
        }
        self.flows[i].redirect = Some(url.clone());
        let n = self.flows[i].codes.len().saturating_sub(1);
        let fuzz_target = match carries {
            Carries::Code if self.plan.echo_state => FuzzTarget::OwnCodeWithState((n % 256) as u8),
            Carries::Code => FuzzTarget::OwnCode((n % 256) as u8),
            _ => FuzzTarget::OwnError(true),
        };
        let t = self.now + user.redirect_ms;
        for k in 0..self.flows[i].plan.preconnects {
            self.at(t.saturating_sub(1 + u64::from(k)), Ev::Preconnect(port));
        }
        let req = |kind: Kind, method: &str, close_after: Option<u64>, carries: Carries| Req {
            who: Who::Browser(i),
            kind,
            port,
            method: method.into(),
            target: target.clone().into_bytes(),
            host: Some(host.clone().into_bytes()),
            close_after,
            carries,
            fuzz_target: Some(fuzz_target.clone()),
            fuzz_host: fuzz_host.clone(),
        };
        self.at(
            t,
            Ev::Request(Box::new(req(
                Kind::Callback,
                "GET",
                user.close_after_ms,
                carries,
            ))),
        );
        if user.duplicate_callback {
            self.at(
                t + 1,
                Ev::Request(Box::new(req(Kind::Callback, "GET", None, carries))),
            );
        }
        for (after, head) in &user.reloads {
            let m = if *head { "HEAD" } else { "GET" };
            self.at(
                t + after,
                Ev::Request(Box::new(req(Kind::Reload, m, None, carries))),
            );
        }
        if let Some(after) = user.pastes_url_ms {
            let code = url
                .query_pairs()
                .find(|(k, _)| k == "code")
                .map(|(_, v)| v.into_owned());
            let (text, fuzz) = match (carries, code) {
                // Sometimes only the code, copied out of the address bar.
                (Carries::Code, Some(code)) if self.rng.chance(30) => {
                    (code, FuzzPaste::BareCode((n % 256) as u8))
                }
                (Carries::Code, _) => (url.to_string(), FuzzPaste::OwnUrl((n % 256) as u8)),
                _ => (
                    url.to_string(),
                    FuzzPaste::Raw(url.to_string().into_bytes()),
                ),
            };
            self.at(
                t + after,
                Ev::Paste {
                    flow: i,
                    text,
                    carries,
                    fuzz,
                },
            );
        }
        Ok(())
    }

    fn note_delivery(&mut self, i: usize, carries: Carries, paste: Option<&str>) {
        if carries == Carries::Nothing || self.flows[i].first_delivery.is_some() {
            return;
        }
        let f = &self.flows[i];
        let code_ok = match paste {
            Some(text) => {
                let text = text.trim();
                let code = Url::parse(text)
                    .ok()
                    .and_then(|u| {
                        u.query_pairs()
                            .find(|(k, _)| k == "code")
                            .map(|(_, v)| v.into_owned())
                    })
                    .unwrap_or_else(|| text.to_owned());
                self.model.code_is_good(&code, &f.challenge, self.now)
            }
            None => f
                .codes
                .last()
                .is_some_and(|c| self.model.code_is_good(c, &f.challenge, self.now)),
        };
        let in_time =
            self.now < f.callback_deadline && f.cf.flow().phase() == Phase::AwaitingCallback;
        self.flows[i].first_delivery = Some((carries, code_ok && in_time, self.now));
    }

    fn request(&mut self, req: Req) -> Result<(), SimViolation> {
        let Some(i) = self.live_flow(req.port) else {
            self.log("..", || {
                format!(
                    "{} {} refused: nothing listens on port {}",
                    req.method,
                    lossy(&req.target),
                    req.port
                )
            });
            return Ok(());
        };
        let conn = self.next_conn;
        self.next_conn += 1;
        self.conns.insert(
            conn,
            ConnInfo {
                flow: i,
                who: req.who,
                kind: req.kind,
                answered: false,
            },
        );
        self.flows[i].conn_order.push(conn);
        if req.who == Who::Browser(i) && req.method == "GET" {
            self.note_delivery(i, req.carries, None);
        }
        if let Some(after) = req.close_after {
            self.at(self.now + after, Ev::Close(conn));
        }
        self.log("->", || {
            let who = match req.who {
                Who::Browser(b) => format!("browser#{b}"),
                Who::StaleTab => "stale tab".into(),
                Who::Attacker => "attacker".into(),
            };
            format!(
                "{} {} host={} conn={conn} ({who})",
                req.method,
                lossy(&req.target),
                req.host.as_deref().map_or("-".into(), lossy)
            )
        });
        if let Some(r) = &mut self.rec {
            let f = &self.flows[i];
            let mut head = format!("{} ", req.method).into_bytes();
            head.extend_from_slice(&req.target);
            head.extend_from_slice(b" HTTP/1.1\r\n");
            if let Some(h) = &req.host {
                head.extend_from_slice(b"Host: ");
                head.extend_from_slice(h);
                head.extend_from_slice(b"\r\n");
            }
            if matches!(req.who, Who::Browser(_)) {
                head.extend_from_slice(b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) sim\r\nAccept: text/html,application/xhtml+xml\r\nAccept-Language: en\r\nSec-Fetch-Mode: navigate\r\n");
            }
            head.extend_from_slice(b"\r\n");
            r.harvest.http_head.push(head);
            let fixed = openrouter_auth_oracle::fixed_nonce();
            let t = String::from_utf8_lossy(&req.target)
                .replace(&f.nonce, fixed.expose_secret())
                .into_bytes();
            r.harvest.callback_target.push(t);
        }
        let method = match req.method.as_str() {
            "GET" => Some(FuzzMethod::Get),
            "HEAD" => Some(FuzzMethod::Head),
            "POST" => Some(FuzzMethod::Post),
            "OPTIONS" => Some(FuzzMethod::Options),
            _ => None,
        };
        let op = match (method, req.fuzz_target) {
            (Some(method), Some(target)) => Some(FuzzOp::Request {
                method,
                host: req.fuzz_host,
                target,
            }),
            _ => None,
        };
        self.feed(
            i,
            Input::Request(BrowserRequest {
                conn: ConnectionId(conn),
                method: req.method,
                target: Zeroizing::new(req.target),
                host: req.host,
            }),
            op,
        )
    }

    // ----- outputs -----

    fn output(&mut self, i: usize, out: Output) -> Result<(), SimViolation> {
        match out {
            Output::OpenBrowser { url } => {
                self.log("<-", || format!("OpenBrowser {url}"));
                let user = self.flows[i].plan.user.clone();
                if user.comes_back {
                    self.at(self.now + user.think_ms, Ev::Authorize(i, false));
                } else {
                    self.log("..", || format!("user#{i} never comes back"));
                }
            }
            Output::PromptForCode { url } => {
                self.log("<-", || format!("PromptForCode {url}"));
                let user = self.flows[i].plan.user.clone();
                if user.comes_back {
                    self.at(self.now + user.think_ms, Ev::Authorize(i, false));
                } else {
                    self.log("..", || format!("user#{i} never comes back"));
                }
            }
            Output::Respond { conn, response, .. } => {
                let info = self.conns.get_mut(&conn.0).map(|c| {
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
                });
                self.flows[i].finished_at = Some(self.now);
                if i + 1 < self.plan.flows.len() && self.flows.len() == i + 1 {
                    let gap = self.plan.flows[i + 1].gap_ms;
                    self.at(self.now + gap, Ev::StartFlow(i + 1));
                }
            }
        }
        Ok(())
    }

    fn browser_reacts(
        &mut self,
        info: ConnInfo,
        response: &openrouter_auth_core::BrowserResponse,
    ) -> Result<(), SimViolation> {
        let Who::Browser(b) = info.who else {
            return Ok(());
        };
        if b != info.flow {
            return Ok(()); // an old tab that reached a newer flow: it shows the 404
        }
        let user = self.flows[b].plan.user.clone();
        let port = self.flows[b].port;
        let host = format!("{}:{port}", self.flows[b].plan.callback_host.as_str());
        let fuzz_host = match self.flows[b].plan.callback_host {
            CallbackHost::Localhost => FuzzHost::Ours,
            CallbackHost::Ipv4Loopback => FuzzHost::Ipv4,
        };
        if response.status == 303 && matches!(info.kind, Kind::Callback | Kind::Reload) {
            if user.follows_redirect {
                let location = response.header("location").unwrap_or("/").to_owned();
                let delay = self.rng.range(2, 150);
                let done = format!("/callback/{}/done", self.flows[b].nonce);
                let fuzz_target = if location == done {
                    FuzzTarget::OwnDone
                } else {
                    FuzzTarget::Raw(location.clone().into_bytes())
                };
                self.at(
                    self.now + delay,
                    Ev::Request(Box::new(Req {
                        who: Who::Browser(b),
                        kind: Kind::Done,
                        port,
                        method: "GET".into(),
                        target: location.into_bytes(),
                        host: Some(host.into_bytes()),
                        close_after: None,
                        carries: Carries::Nothing,
                        fuzz_target: Some(fuzz_target),
                        fuzz_host,
                    })),
                );
            }
        } else if response.status == 200 && user.favicon && info.kind != Kind::Favicon {
            let delay = self.rng.range(1, 60);
            self.at(
                self.now + delay,
                Ev::Request(Box::new(Req {
                    who: Who::Browser(b),
                    kind: Kind::Favicon,
                    port,
                    method: "GET".into(),
                    target: b"/favicon.ico".to_vec(),
                    host: Some(host.into_bytes()),
                    close_after: None,
                    carries: Carries::Nothing,
                    fuzz_target: Some(FuzzTarget::Favicon),
                    fuzz_host,
                })),
            );
        }
        Ok(())
    }

    // ----- the network and OpenRouter -----

    fn send_exchange(
        &mut self,
        i: usize,
        id: ExchangeId,
        attempt: u32,
        body: &[u8],
        timeout: Duration,
    ) -> Result<(), SimViolation> {
        // The core numbers its attempts from 1; the plan's fates are indexed from 0.
        let attempt = attempt.saturating_sub(1) as usize;
        let f = &mut self.flows[i];
        f.in_flight_id = Some(id);
        let t = self.now;
        let deadline = t + timeout.as_millis() as u64;
        let fate = if self.healed(t) {
            Fate::Ok {
                up: self.rng.range(5, HEALED_MAX_MS / 2),
                down: self.rng.range(5, HEALED_MAX_MS / 2),
            }
        } else {
            match self.flows[i].plan.fates.get(attempt).copied() {
                Some(fate) => fate,
                None => Fate::Ok {
                    up: self.rng.skewed(10, 800),
                    down: self.rng.skewed(10, 800),
                },
            }
        };
        let code = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.get("code").and_then(|c| c.as_str()).map(str::to_owned))
            .unwrap_or_default();
        self.log("<-", || {
            format!(
                "SendExchange id={} code={code} timeout={} ms (attempt {}, network: {fate:?})",
                id.0,
                timeout.as_millis(),
                attempt + 1
            )
        });
        let body = Zeroizing::new(body.to_vec());
        let timed_out = Input::ExchangeFailed {
            id,
            may_have_been_sent: true,
            reason: "operation timed out".into(),
        };
        let server = |w: &mut Self, up: u64, then: Then| {
            if t + up < deadline {
                w.at(
                    t + up,
                    Ev::AtServer {
                        flow: i,
                        id,
                        body: body.clone(),
                        deadline,
                        then,
                    },
                );
            } else {
                w.at(deadline, Ev::ToFlow(i, Box::new(timed_out.clone())));
            }
        };
        let answer = |status: u16, body: &str| Input::ExchangeResponse {
            id,
            response: HttpResponse::new(status, body.to_owned()),
        };
        match fate {
            Fate::Ok { up, down }
            | Fate::Slow { up, down }
            | Fate::ServerError { up, down }
            | Fate::Garbage { up, down, .. }
            | Fate::Truncated { up, down }
            | Fate::Duplicate { up, down }
            | Fate::Echo { up, down } => server(self, up, Then::Answer { down, fate }),
            Fate::LostAfterSending { up, after } => server(self, up, Then::Reset { after }),
            Fate::BlackHole { reaches, up } => {
                if reaches {
                    server(self, up, Then::Nothing);
                }
            }
            Fate::LostBeforeSending { after } => {
                let input = Input::ExchangeFailed {
                    id,
                    may_have_been_sent: false,
                    reason: "connection refused".into(),
                };
                self.at(t + after.min(deadline - t), Ev::ToFlow(i, Box::new(input)));
            }
            Fate::ProxyError { status, after } => {
                let input = answer(status, "<html><body><h1>502 Bad Gateway</h1></body></html>");
                self.proxy(i, t + after, deadline, input, timed_out);
            }
            Fate::RateLimited { retry_after, after } => {
                let mut response = HttpResponse::new(
                    429,
                    r#"{"error":{"code":429,"message":"Rate limit exceeded"}}"#,
                );
                if let Some(s) = retry_after {
                    response = response.with_header("Retry-After", s.to_string());
                }
                let input = Input::ExchangeResponse { id, response };
                self.proxy(i, t + after, deadline, input, timed_out);
            }
            Fate::EchoingProxy { after } => {
                let mut text =
                    b"<html><pre>400 Bad Request\nPOST /api/v1/auth/keys HTTP/1.1\n\n".to_vec();
                text.extend_from_slice(&body);
                text.extend_from_slice(b"</pre></html>");
                let input = Input::ExchangeResponse {
                    id,
                    response: HttpResponse::new(400, text),
                };
                self.proxy(i, t + after, deadline, input, timed_out);
            }
            Fate::Conflict { after } => {
                let input = answer(
                    409,
                    r#"{"error":{"code":409,"message":"Failed to create or update app"}}"#,
                );
                self.proxy(i, t + after, deadline, input, timed_out);
            }
        }
        Ok(())
    }

    fn proxy(&mut self, i: usize, at: u64, deadline: u64, input: Input, timed_out: Input) {
        if at < deadline {
            self.at(at, Ev::ToFlow(i, Box::new(input)));
        } else {
            self.at(deadline, Ev::ToFlow(i, Box::new(timed_out)));
        }
    }

    fn at_server(
        &mut self,
        i: usize,
        id: ExchangeId,
        body: &[u8],
        deadline: u64,
        then: Then,
    ) -> Result<(), SimViolation> {
        let (mut resp, code) = self.model.exchange(body, self.now, &mut self.rng);
        let seen = {
            let s = self.flows[i].server_seen.entry(code.clone()).or_insert(0);
            *s += 1;
            *s
        };
        if seen > 1 {
            return Err(self.broken(
                i,
                "server-sees-code-once",
                format!("OpenRouter received this flow's code {seen} times"),
            ));
        }
        if resp.status == 200 {
            let key = serde_json::from_slice::<serde_json::Value>(&resp.body)
                .ok()
                .and_then(|v| v.get("key").and_then(|k| k.as_str()).map(str::to_owned))
                .unwrap_or_default();
            let n = self.model.keys().count();
            self.redact(&key, format!("<key#{n}>"));
        }
        self.log("..", || {
            format!(
                "OpenRouter: exchange id={} code={code} -> {} {}",
                id.0,
                resp.status,
                lossy(&resp.body)
            )
        });
        let t = self.now;
        let timed_out = Input::ExchangeFailed {
            id,
            may_have_been_sent: true,
            reason: "operation timed out".into(),
        };
        match then {
            Then::Nothing => {}
            Then::Reset { after } => {
                let input = Input::ExchangeFailed {
                    id,
                    may_have_been_sent: true,
                    reason: "connection reset by peer".into(),
                };
                self.proxy(i, t + after, deadline, input, timed_out);
            }
            Then::Answer { down, fate } => {
                match fate {
                    Fate::ServerError { .. } => {
                        resp = HttpResponse::new(500, "Internal Server Error");
                    }
                    Fate::Garbage { which, .. } if resp.status == 200 => {
                        let body: Vec<u8> = match which {
                            0 => b"<html><body>Service temporarily unavailable</body></html>"
                                .to_vec(),
                            1 => self.rng.bytes(40),
                            2 => br#"{"data":{"user_id":"user_1"}}"#.to_vec(),
                            _ => br#"{"key":12345,"user_id":null}"#.to_vec(),
                        };
                        resp = HttpResponse::new(200, body);
                    }
                    Fate::Truncated { .. } if resp.status == 200 => {
                        let n = resp.body.len();
                        let cut = self.rng.range(0, n as u64 - 1) as usize;
                        resp = HttpResponse::new(200, resp.body[..cut].to_vec());
                    }
                    _ => {}
                }
                let at = t + down;
                let input = Input::ExchangeResponse { id, response: resp };
                if matches!(fate, Fate::Echo { .. }) && at < deadline {
                    let echo = Input::ExchangeResponse {
                        id: ExchangeId(id.0 + 1000),
                        response: HttpResponse::new(200, "{}"),
                    };
                    self.at(at.saturating_sub(1), Ev::ToFlow(i, Box::new(echo)));
                }
                if matches!(fate, Fate::Duplicate { .. }) && at < deadline {
                    self.at(at + 1, Ev::ToFlow(i, Box::new(input.clone())));
                }
                self.proxy(i, at, deadline, input, timed_out);
            }
        }
        Ok(())
    }

    fn store_key(&mut self, i: usize, key: &str) -> Result<(), SimViolation> {
        self.log("<-", || format!("StoreKey {key}"));
        let f = &self.flows[i];
        let Some(rec) = self.model.key(key) else {
            return Err(self.broken(
                i,
                "stored-needs-own-callback-code",
                "StoreKey with a key OpenRouter never issued".into(),
            ));
        };
        if rec.challenge != f.challenge || !f.cf.own_codes().any(|c| c == rec.code) {
            return Err(self.broken(
                i,
                "stored-needs-own-callback-code",
                "StoreKey with a key issued for another flow's code".into(),
            ));
        }
        let t = self.now;
        let ok = Input::KeyStored {
            location: "the sim's key store".into(),
            report: (),
        };
        if self.healed(t) {
            let d = self.rng.range(1, HEALED_MAX_MS);
            self.at(t + d, Ev::ToFlow(i, Box::new(ok)));
            return Ok(());
        }
        match f.plan.store {
            StoreFate::Ok { ms } => self.at(t + ms, Ev::ToFlow(i, Box::new(ok))),
            StoreFate::Fails { ms } => {
                let input = Input::KeyNotStored {
                    reason: StoreFailure::WriteFailed {
                        message: "the disk is full".into(),
                    },
                };
                self.at(t + ms, Ev::ToFlow(i, Box::new(input)));
            }
            StoreFate::Hangs => {
                if let Some(h) = self.plan.heal_at_ms {
                    let d = self.rng.range(1, HEALED_MAX_MS);
                    self.at(h.max(t) + d, Ev::ToFlow(i, Box::new(ok)));
                }
            }
        }
        Ok(())
    }

    // ----- the attacker -----

    fn attack(&mut self, a: usize) -> Result<(), SimViolation> {
        let Some(i) = self.current_flow() else {
            return Ok(());
        };
        let port = self.flows[i].port;
        let nonce = self.flows[i].nonce.clone();
        let ours = format!("localhost:{port}").into_bytes();
        let kind = self.plan.attacks[a].kind;
        let mut reqs: Vec<AttackReq> = Vec::new();
        let guess = |w: &mut Self| {
            format!("/callback/{}?code={}", w.rng.token(32), w.rng.token(32)).into_bytes()
        };
        match kind {
            AttackKind::GuessedNonceCode => {
                let t = guess(self);
                reqs.push((
                    "GET".into(),
                    t.clone(),
                    Some(ours),
                    Some(FuzzTarget::Raw(t)),
                    FuzzHost::Ours,
                ));
            }
            AttackKind::GuessedNonceError => {
                let t =
                    format!("/callback/{}?error=access_denied", self.rng.token(32)).into_bytes();
                reqs.push((
                    "GET".into(),
                    t.clone(),
                    Some(ours),
                    Some(FuzzTarget::Raw(t)),
                    FuzzHost::Ours,
                ));
            }
            AttackKind::Junk(which) => {
                let t = junk_target(which, &mut self.rng);
                reqs.push((
                    "GET".into(),
                    t.clone(),
                    Some(ours),
                    Some(FuzzTarget::Raw(t)),
                    FuzzHost::Ours,
                ));
            }
            AttackKind::RandomBytes => {
                let n = self.rng.range(0, 64) as usize;
                let t = self.rng.bytes(n);
                reqs.push((
                    "GET".into(),
                    t.clone(),
                    Some(ours),
                    Some(FuzzTarget::Raw(t)),
                    FuzzHost::Ours,
                ));
            }
            AttackKind::LongTarget => {
                let t = format!(
                    "/callback/{}?code={}",
                    nonce_like(&mut self.rng),
                    "A".repeat(9000)
                )
                .into_bytes();
                reqs.push((
                    "GET".into(),
                    t.clone(),
                    Some(ours),
                    Some(FuzzTarget::Raw(t)),
                    FuzzHost::Ours,
                ));
            }
            AttackKind::BadHost(which) => {
                let hosts: [Option<String>; 9] = [
                    Some(format!("evil.example:{port}")),
                    Some(format!("localhost:{}", port.wrapping_add(1))),
                    None,
                    Some("localhost".into()),
                    Some(format!("[::1]evil:{port}")),
                    Some(format!("localhost:+{port}")),
                    Some(format!("127.0.0.1.evil.example:{port}")),
                    Some(format!("localhost:{port}, evil.example")),
                    Some(format!("0.0.0.0:{port}")),
                ];
                let h = hosts[usize::from(which) % hosts.len()].clone();
                let leaked = self.plan.leaks_nonce();
                let t = if leaked {
                    format!("/callback/{nonce}?error=access_denied").into_bytes()
                } else {
                    guess(self)
                };
                let ft = if leaked {
                    FuzzTarget::OwnError(false)
                } else {
                    FuzzTarget::Raw(t.clone())
                };
                let fh = match &h {
                    None => FuzzHost::Missing,
                    Some(h) => FuzzHost::Raw(h.clone().into_bytes()),
                };
                reqs.push(("GET".into(), t, h.map(String::into_bytes), Some(ft), fh));
            }
            AttackKind::WrongMethod(which) => {
                let m =
                    ["POST", "OPTIONS", "PUT", "DELETE", "get", "CONNECT"][usize::from(which) % 6];
                let leaked = self.plan.leaks_nonce();
                let t = if leaked {
                    format!("/callback/{nonce}?error=access_denied").into_bytes()
                } else {
                    guess(self)
                };
                reqs.push((
                    m.into(),
                    t.clone(),
                    Some(ours),
                    Some(FuzzTarget::Raw(t)),
                    FuzzHost::Ours,
                ));
            }
            AttackKind::Flood { count } => {
                for k in 0..count {
                    let t = match k % 4 {
                        0 => guess(self),
                        1 => b"/favicon.ico".to_vec(),
                        2 => {
                            let w = self.rng.below(256) as u8;
                            junk_target(w, &mut self.rng)
                        }
                        _ => format!("/callback/{}?error=access_denied", self.rng.token(32))
                            .into_bytes(),
                    };
                    reqs.push((
                        "GET".into(),
                        t.clone(),
                        Some(ours.clone()),
                        Some(FuzzTarget::Raw(t)),
                        FuzzHost::Ours,
                    ));
                }
            }
            AttackKind::LeakedNonceCode => {
                // The attacker signs in with its own verifier and injects its code.
                let verifier =
                    CodeVerifier::generate(&mut ChaCha20Rng::seed_from_u64(self.rng.fork()));
                let challenge = verifier.challenge(CodeChallengeMethod::S256);
                let url = openrouter_auth_core::authorization_url(
                    &Url::parse(openrouter_auth_core::DEFAULT_BASE_URL).expect("url"),
                    None,
                    &challenge,
                    CodeChallengeMethod::S256,
                    None,
                    None,
                );
                let auth = self
                    .model
                    .check_authorize(&url)
                    .expect("attacker's own URL");
                let code = self.model.issue_code(&auth, self.now, &mut self.rng);
                self.attacker_codes += 1;
                self.redact(&code, format!("<attacker-code#{}>", self.attacker_codes));
                self.flows[i].cf.note_code_issued(&code, challenge.as_str());
                let t = format!("/callback/{nonce}?code={code}").into_bytes();
                reqs.push((
                    "GET".into(),
                    t,
                    Some(ours),
                    Some(FuzzTarget::ForeignCode(0)),
                    FuzzHost::Ours,
                ));
                self.note_delivery(i, Carries::Code, Some("attacker"));
            }
            AttackKind::LeakedNonceError => {
                let t = format!("/callback/{nonce}?error=access_denied").into_bytes();
                reqs.push((
                    "GET".into(),
                    t,
                    Some(ours),
                    Some(FuzzTarget::OwnError(false)),
                    FuzzHost::Ours,
                ));
                self.note_delivery(i, Carries::Error, None);
            }
            AttackKind::LeakedNonceDone => {
                let t = format!("/callback/{nonce}/done").into_bytes();
                reqs.push((
                    "GET".into(),
                    t,
                    Some(ours),
                    Some(FuzzTarget::OwnDone),
                    FuzzHost::Ours,
                ));
            }
        }
        for (method, target, host, fuzz_target, fuzz_host) in reqs {
            let close_after = if matches!(kind, AttackKind::Flood { .. }) && self.rng.chance(30) {
                Some(self.rng.range(0, 5))
            } else {
                None
            };
            self.request(Req {
                who: Who::Attacker,
                kind: Kind::Attack,
                port,
                method,
                target,
                host,
                close_after,
                carries: Carries::Nothing,
                fuzz_target,
                fuzz_host,
            })?;
        }
        Ok(())
    }

    // ----- end of run -----

    fn end_checks(&mut self) -> Result<(), SimViolation> {
        for (i, f) in self.flows.iter().enumerate() {
            f.cf.check_end().map_err(|v| self.fail(Some(i), v))?;
        }
        let Some(heal) = self.plan.heal_at_ms else {
            return Ok(());
        };
        if self.flows.len() < self.plan.flows.len() {
            let n = self.flows.len();
            return Err(self.fail(
                Some(n.saturating_sub(1)),
                Violation {
                    invariant: "liveness",
                    detail: format!(
                        "only {n} of {} flows started: flow#{} never finished",
                        self.plan.flows.len(),
                        n.saturating_sub(1)
                    ),
                },
            ));
        }
        for (i, f) in self.flows.iter().enumerate() {
            let p = &f.plan;
            let bound = (f.started_at + (p.callback_timeout_s + p.exchange_timeout_s) * 1000)
                .max(heal)
                + STORE_SLOW_MAX_MS
                + HEALED_MAX_MS;
            let linger = DONE_LINGER.as_millis() as u64;
            match (f.terminal_at, f.finished_at) {
                (Some(t), Some(d)) if t <= bound && d <= bound + linger => {}
                (t, d) => {
                    return Err(self.broken(
                        i,
                        "liveness",
                        format!(
                            "with faults healed at {heal} ms the flow must end by {bound} ms and finish by {} ms; it ended at {t:?} and finished at {d:?} (phase {:?})",
                            bound + linger,
                            f.cf.flow().phase()
                        ),
                    ))
                }
            }
            // A clean sign-in succeeds: no fault ever, nobody else knows the nonce, no Ctrl-C,
            // and the first code or error that reached the flow was a good code, in time.
            let clean = heal == 0
                && !self.plan.leaks_nonce()
                && p.cancel_after_ms
                    .is_none_or(|c| f.terminal_at.is_some_and(|t| t < f.started_at + c));
            if clean {
                if let Some((Carries::Code, true, _)) = f.first_delivery {
                    if !matches!(f.cf.flow().outcome(), Some(Outcome::Stored { .. })) {
                        return Err(self.broken(
                            i,
                            "clean-run-signs-in",
                            format!(
                                "a good code arrived in time on a fault-free run, yet the flow ended {:?}",
                                f.cf.flow().outcome().map(|o| match o {
                                    Outcome::Failed(e) => e.kind(),
                                    Outcome::KeyNotStored { .. } => "key_not_stored",
                                    Outcome::Stored { .. } => "stored",
                                })
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}

/// An attacker's request: method, target, `Host`, and its fuzz-op form.
type AttackReq = (
    String,
    Vec<u8>,
    Option<Vec<u8>>,
    Option<FuzzTarget>,
    FuzzHost,
);

fn nonce_like(rng: &mut SimRng) -> String {
    rng.token(32)
}

fn junk_target(which: u8, rng: &mut SimRng) -> Vec<u8> {
    let n = rng.token(32);
    let t: String = match which % 24 {
        0 => "/".into(),
        1 => String::new(),
        2 => "*".into(),
        3 => "/callback/".into(),
        4 => "/callback".into(),
        5 => "/callback//done".into(),
        6 => "/callback/%00".into(),
        7 => format!("/callback/{n}/../{n}?code=x"),
        8 => "/callback/?code=x".into(),
        9 => format!("//callback/{n}?code=x"),
        10 => "/robots.txt".into(),
        11 => format!("http://evil.example/callback/{n}?code=x"),
        12 => format!("/callback/{n}?code=%"),
        13 => format!("/callback/{n}?code=%zz&state=%ff"),
        14 => "/?code=x&state=y".into(),
        15 => format!("/callback/{n}#code=x"),
        16 => "/done".into(),
        17 => format!("/callback/{n}/done"),
        18 => "/.well-known/security.txt".into(),
        19 => format!("/callback/{n}?code=a&code=b"),
        20 => format!(
            "/callback/{n}?error=%3Cscript%3Ealert(1)%3C/script%3E&error_description=%E2%80%AE"
        ),
        21 => format!("/callback/{}?code=x", "A".repeat(300)),
        22 => "/favicon.ico?x=1".into(),
        _ => format!("/CALLBACK/{n}?code=x"),
    };
    t.into_bytes()
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
