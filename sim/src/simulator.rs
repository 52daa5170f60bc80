//! A deterministic simulator of whole sign-ins: no sockets, a virtual clock, every choice
//! drawn from one seed (`rand_chacha`). The same seed replays the same run, byte for byte.
//!
//! It drives the sans-IO core (`openrouter_auth_core::Flow`) directly, through the core's
//! invariant checker ([`CheckedFlow`](openrouter_auth_oracle::CheckedFlow)), with
//! these actors, each drawn from the seed ([`plan::Plan::draw`]):
//!
//! - **the user's browser**: thinks (seconds to a quarter of an hour), approves or denies,
//!   preconnects, sends the callback (sometimes twice), reloads (GET or HEAD), follows the
//!   303 to `/done`, fetches `/favicon.ico`, closes the tab, carries stale tabs with an older
//!   flow's URL, pastes the redirect URL into the terminal, or never comes back; in headless
//!   mode it pastes the code (late, with a typo, after some junk);
//! - **a local attacker**: forged callbacks with guessed nonces, `error=access_denied`, junk
//!   and over-long targets, random bytes, bad `Host` headers, wrong methods, floods of up to
//!   200 requests; in a few runs it knows the nonce and injects its own code, a denial or a
//!   `/done`;
//! - **the network on the exchange**: lost before sending, lost after sending, 502/503/504
//!   from a proxy, 500 after processing, 429 (with or without `Retry-After`), 409, slow
//!   (past the timeout), garbage and truncated bodies, a black hole, duplicated and stray
//!   answers;
//! - **OpenRouter** ([`model::OpenRouter`]): validates the authorization URL, issues
//!   single-use codes bound to the challenge, expires them after 10 minutes, checks the
//!   verifier;
//! - **the key store**: stores, fails, is slow, or hangs until the faults heal.
//!
//! Faults heal at a drawn time (or never, or never happen). After every step the rules of
//! [`CheckedFlow`](openrouter_auth_oracle::CheckedFlow) are checked, and the world adds
//! its own: `stored-needs-own-callback-code` (the stored key is one OpenRouter issued for a
//! code bound to this flow's challenge, delivered on its own path), `server-sees-code-once`,
//! `authorization-url-accepted` (OpenRouter's model accepts every authorization URL, which
//! carries the flow's port, nonce and challenge), `liveness` (with faults healed every flow
//! ends before its deadline: callback timeout + exchange timeout + the slowest store, or the
//! healing time plus that) and `clean-run-signs-in` (on a fault-free run where the first
//! thing to reach the flow is a good code, in time, the flow ends `Stored`).
//!
//! # Seeds
//!
//! - `cargo test -p openrouter-auth-sim --test simulator` runs a fixed seed set;
//! - `OPENROUTER_AUTH_SIM_SEED=N` replays seed `N` and prints its transcript;
//! - `OPENROUTER_AUTH_SIM_RUNS=M` sweeps `M` seeds (from `OPENROUTER_AUTH_SIM_SEED`, or a
//!   random start it prints); `cargo run --release -p openrouter-auth-sim --bin sim-sweep`
//!   does the same in parallel;
//! - every failure prints the exact command that replays it ([`replay_command`]).
//!
//! ```
//! use openrouter_auth_sim::simulator::{run_seed, Record};
//! let report = run_seed(7, Record::Transcript);
//! assert!(report.violation.is_none(), "{}", report.violation.unwrap());
//! assert_eq!(report.digest, run_seed(7, Record::Transcript).digest);
//! ```

pub mod corpus;
pub mod model;
pub mod plan;
pub mod rng;
mod world;

use plan::Plan;
use rng::SimRng;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Replays one seed (or starts a sweep there).
pub const SEED_ENV: &str = "OPENROUTER_AUTH_SIM_SEED";
/// Sweeps this many seeds.
pub const RUNS_ENV: &str = "OPENROUTER_AUTH_SIM_RUNS";

/// The command that replays `seed` and prints its transcript.
pub fn replay_command(seed: u64) -> String {
    format!(
        "{SEED_ENV}={seed} cargo test -p openrouter-auth-sim --test simulator simulated_runs_keep_every_invariant -- --nocapture"
    )
}

/// A broken rule, with where and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimViolation {
    /// The run's seed.
    pub seed: u64,
    /// The rule's name (see the module doc and `CheckedFlow`).
    pub invariant: &'static str,
    /// What happened.
    pub detail: String,
    /// Virtual time, ms.
    pub time_ms: u64,
    /// Which flow of the run, if one.
    pub flow: Option<usize>,
}

impl std::fmt::Display for SimViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "seed {}: invariant `{}` broken at {} ms{}: {}\n  replay: {}",
            self.seed,
            self.invariant,
            self.time_ms,
            self.flow
                .map(|i| format!(" in flow#{i}"))
                .unwrap_or_default(),
            self.detail,
            replay_command(self.seed)
        )
    }
}

impl std::error::Error for SimViolation {}

/// Inputs for the fuzz targets' seed corpus, collected from a recorded run.
#[derive(Debug, Clone, Default)]
pub struct Harvest {
    /// Request heads as the browser and the attacker sent them.
    pub http_head: Vec<Vec<u8>>,
    /// Request targets, the flow's nonce replaced by the fuzz target's fixed one.
    pub callback_target: Vec<Vec<u8>>,
    /// Exchange answers (`openrouter_auth_oracle::encode_response` form).
    pub exchange_response: Vec<Vec<u8>>,
    /// Key-check answers for the keys OpenRouter issued.
    pub key_info: Vec<Vec<u8>>,
    /// Each flow's inputs as `openrouter_auth_oracle::encode_ops`.
    pub flow_inputs: Vec<Vec<u8>>,
}

/// What a run records besides its verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Record {
    /// Nothing: the fastest (sweeps, benchmarks).
    Nothing,
    /// The redacted transcript, its digest, and the fuzz corpus harvest.
    Transcript,
}

/// The result of one run.
#[derive(Debug, Clone)]
pub struct RunReport {
    /// The seed.
    pub seed: u64,
    /// How many flows started.
    pub flows: usize,
    /// Each flow's end: `stored`, `key_not_stored`, a `FlowError::kind`, or the phase it
    /// was left in.
    pub outcomes: Vec<String>,
    /// Steps (inputs and timeouts) taken.
    pub steps: u64,
    /// Virtual time at the end, ms.
    pub end_ms: u64,
    /// The first broken rule, if any.
    pub violation: Option<SimViolation>,
    /// With [`Record::Transcript`]: one line per event, `virtual time, direction, event`,
    /// secrets replaced by `<nonce#0>`, `<code#0.0>`, `<key#1>`…; direction `->` into a
    /// flow, `<-` out of it, `..` the world, `!!` a broken rule.
    pub transcript: Vec<String>,
    /// With [`Record::Transcript`]: SHA-256 of the unredacted transcript.
    pub digest: Option<String>,
    /// With [`Record::Transcript`]: the fuzz corpus inputs this run produced.
    pub harvest: Option<Harvest>,
}

/// The plan seed `seed` draws.
pub fn plan_for(seed: u64) -> Plan {
    Plan::draw(&mut SimRng::new(seed))
}

/// Runs seed `seed`: draws its plan, then plays it.
pub fn run_seed(seed: u64, record: Record) -> RunReport {
    let mut rng = SimRng::new(seed);
    let plan = Plan::draw(&mut rng);
    world::World::new(seed, &plan, rng, record == Record::Transcript).run()
}

/// One flow of a run as the flow itself saw it: how it was made and every step it took, in
/// order. [`FlowTape::replay`] plays it into a bare [`Flow`](openrouter_auth_core::Flow), with no
/// world and no checker: the peer of the checked sweep in the `sim_throughput` bench.
#[derive(Debug, Clone)]
pub struct FlowTape {
    /// The flow's configuration.
    pub config: openrouter_auth_core::FlowConfig,
    /// The seed of the flow's `ChaCha20Rng` (so the bare flow draws the same verifier and
    /// nonce, and the recorded callbacks still match it).
    pub rng_seed: u64,
    /// When it was made.
    pub start: openrouter_auth_core::Time,
    /// Every input and timeout, with the virtual time it came at.
    pub steps: Vec<TapeStep>,
}

/// One step of a [`FlowTape`].
#[derive(Debug, Clone)]
pub enum TapeStep {
    /// `Flow::handle_input(input, now)`.
    Input(openrouter_auth_core::Input, openrouter_auth_core::Time),
    /// `Flow::handle_timeout(now)`.
    Timeout(openrouter_auth_core::Time),
}

impl FlowTape {
    /// Replays the tape into a fresh bare flow, dropping every output as it comes; returns
    /// the flow at the end (`None` if it refused its configuration).
    pub fn replay(self) -> Option<openrouter_auth_core::Flow> {
        use rand_chacha::rand_core::SeedableRng;
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(self.rng_seed);
        let mut flow = openrouter_auth_core::Flow::new(self.config, &mut rng, self.start).ok()?;
        while flow.poll_output().is_some() {}
        for step in self.steps {
            match step {
                TapeStep::Input(input, now) => {
                    let _ = flow.handle_input(input, now);
                }
                TapeStep::Timeout(now) => {
                    let _ = flow.handle_timeout(now);
                }
            }
            while flow.poll_output().is_some() {}
        }
        Some(flow)
    }
}

/// How a flow ended, in the words of [`RunReport::outcomes`]: `stored`, `key_not_stored`,
/// a `FlowError::kind`, or the phase it was left in.
pub fn flow_end(flow: &openrouter_auth_core::Flow) -> String {
    use openrouter_auth_core::Outcome;
    match flow.outcome() {
        None => format!("{:?}", flow.phase()).to_lowercase(),
        Some(Outcome::Stored { .. }) => "stored".into(),
        Some(Outcome::KeyNotStored { .. }) => "key_not_stored".into(),
        Some(Outcome::Failed(e)) => e.kind().into(),
        Some(_) => "other".into(),
    }
}

/// [`run_seed`] without recording, also returning each flow's [`FlowTape`] (in the order the
/// flows started).
pub fn run_seed_taped(seed: u64) -> (RunReport, Vec<FlowTape>) {
    let mut rng = SimRng::new(seed);
    let plan = Plan::draw(&mut rng);
    let mut world = world::World::new(seed, &plan, rng, false).taped();
    let report = world.play();
    (report, world.take_tapes())
}

/// Plays a hand-written `plan`; the secrets and junk bytes come from `seed`.
pub fn run_plan(seed: u64, plan: &Plan, record: Record) -> RunReport {
    world::World::new(seed, plan, SimRng::new(seed), record == Record::Transcript).run()
}

/// What a sweep found.
#[derive(Debug, Clone, Default)]
pub struct SweepSummary {
    /// Seeds run.
    pub runs: u64,
    /// Flows simulated.
    pub flows: u64,
    /// Steps taken.
    pub steps: u64,
    /// Wall time.
    pub elapsed: Duration,
    /// Broken rules (first per seed).
    pub failures: Vec<SimViolation>,
    /// How many flows ended each way.
    pub outcomes: BTreeMap<String, u64>,
}

impl SweepSummary {
    /// Simulated flows per second of wall time.
    pub fn flows_per_second(&self) -> f64 {
        self.flows as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Adds another summary (e.g. from another thread).
    pub fn merge(&mut self, other: SweepSummary) {
        self.runs += other.runs;
        self.flows += other.flows;
        self.steps += other.steps;
        self.elapsed = self.elapsed.max(other.elapsed);
        self.failures.extend(other.failures);
        for (k, v) in other.outcomes {
            *self.outcomes.entry(k).or_default() += v;
        }
    }
}

/// Runs every seed in `seeds` without recording; stops after `max_failures` failures.
pub fn sweep(seeds: impl IntoIterator<Item = u64>, max_failures: usize) -> SweepSummary {
    let start = Instant::now();
    let mut s = SweepSummary::default();
    for seed in seeds {
        let r = run_seed(seed, Record::Nothing);
        s.runs += 1;
        s.flows += r.flows as u64;
        s.steps += r.steps;
        for o in r.outcomes {
            *s.outcomes.entry(o).or_default() += 1;
        }
        if let Some(v) = r.violation {
            s.failures.push(v);
            if s.failures.len() >= max_failures {
                break;
            }
        }
    }
    s.elapsed = start.elapsed();
    s
}
