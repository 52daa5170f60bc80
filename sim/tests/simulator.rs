//! The deterministic simulator over its seeds.
//!
//! - plain `cargo test`: the fixed seed set [`FIXED_SEEDS`];
//! - `OPENROUTER_AUTH_SIM_SEED=N`: replays seed `N` and prints its transcript;
//! - `OPENROUTER_AUTH_SIM_RUNS=M`: sweeps `M` seeds, from `OPENROUTER_AUTH_SIM_SEED` or from a
//!   random start it prints (use `--release`, or the `sim-sweep` binary, for big sweeps).
//!
//! Every failure prints the command that replays it.
use openrouter_auth_sim::simulator::{
    flow_end, plan_for, replay_command, run_seed, run_seed_taped, sweep, Record, RunReport,
    RUNS_ENV, SEED_ENV,
};
use std::collections::BTreeMap;
use std::ops::Range;

/// The seeds plain `cargo test` runs.
const FIXED_SEEDS: Range<u64> = 0..2000;

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {v:?}")),
    )
}

fn print_run(r: &RunReport) {
    println!("plan: {:#?}", plan_for(r.seed));
    for line in &r.transcript {
        println!("{line}");
    }
    println!(
        "seed {}: {} flow(s), outcomes {:?}, {} steps, {} ms virtual, digest {}",
        r.seed,
        r.flows,
        r.outcomes,
        r.steps,
        r.end_ms,
        r.digest.as_deref().unwrap_or("-")
    );
}

fn explain_and_fail(seed: u64, failures: usize) -> ! {
    let r = run_seed(seed, Record::Transcript);
    let tail = r.transcript.len().saturating_sub(80);
    for line in &r.transcript[tail..] {
        eprintln!("{line}");
    }
    let v = r.violation.expect("the failure replays");
    panic!("{failures} seed(s) broke a rule; the first:\n{v}");
}

#[test]
fn simulated_runs_keep_every_invariant() {
    match (env_u64(SEED_ENV), env_u64(RUNS_ENV)) {
        (Some(seed), None) => {
            let r = run_seed(seed, Record::Transcript);
            print_run(&r);
            if let Some(v) = r.violation {
                panic!("{v}");
            }
        }
        (start, Some(runs)) => {
            let start = start.unwrap_or_else(|| {
                use rand_core::{OsRng, TryRngCore};
                OsRng.try_next_u64().expect("OS RNG") >> 16
            });
            println!("sweeping seeds {start}..{}", start + runs);
            let s = sweep(start..start + runs, 20);
            println!(
                "{} runs, {} flows, {} steps in {:.1} s: {:.0} flows/s; outcomes {:?}",
                s.runs,
                s.flows,
                s.steps,
                s.elapsed.as_secs_f64(),
                s.flows_per_second(),
                s.outcomes
            );
            for v in &s.failures {
                eprintln!("{v}");
            }
            if let Some(v) = s.failures.first() {
                explain_and_fail(v.seed, s.failures.len());
            }
        }
        (None, None) => {
            let s = sweep(FIXED_SEEDS, 20);
            println!(
                "{} runs, {} flows in {:.1} s; outcomes {:?}",
                s.runs,
                s.flows,
                s.elapsed.as_secs_f64(),
                s.outcomes
            );
            for v in &s.failures {
                eprintln!("{v}");
            }
            if let Some(v) = s.failures.first() {
                explain_and_fail(v.seed, s.failures.len());
            }
        }
    }
}

#[test]
fn one_seed_twice_gives_the_same_transcript() {
    for seed in [3, 42, 1_000_003] {
        let a = run_seed(seed, Record::Transcript);
        let b = run_seed(seed, Record::Transcript);
        assert!(a.digest.is_some());
        assert_eq!(
            a.digest,
            b.digest,
            "seed {seed} is not deterministic; replay: {}",
            replay_command(seed)
        );
        assert_eq!(a.transcript, b.transcript);
        assert_eq!((a.steps, a.end_ms), (b.steps, b.end_ms));
        let quiet = run_seed(seed, Record::Nothing);
        assert_eq!(
            (quiet.steps, quiet.end_ms, quiet.outcomes),
            (a.steps, a.end_ms, a.outcomes)
        );
    }
}

/// The bench's peer (a bare `Flow` fed each flow's recorded inputs) does the checked run's
/// flow work: every flow ends the same way, in the same number of steps, and recording the
/// tapes changes nothing in the run.
#[test]
fn taped_flows_replay_to_the_same_end_in_a_bare_flow() {
    let mut ends: BTreeMap<String, u64> = BTreeMap::new();
    for seed in 0..300 {
        let (taped, tapes) = run_seed_taped(seed);
        let quiet = run_seed(seed, Record::Nothing);
        assert_eq!(
            (taped.steps, taped.end_ms, &taped.outcomes),
            (quiet.steps, quiet.end_ms, &quiet.outcomes),
            "seed {seed}: recording tapes changed the run"
        );
        assert_eq!(tapes.len(), taped.flows, "seed {seed}: one tape per flow");
        for (n, tape) in tapes.into_iter().enumerate() {
            let flow = tape.replay().expect("the flow takes its configuration");
            let end = flow_end(&flow);
            assert_eq!(
                end,
                taped.outcomes[n],
                "seed {seed} flow#{n}: the bare replay ended differently; replay: {}",
                replay_command(seed)
            );
            *ends.entry(end).or_default() += 1;
        }
    }
    // Not only flows that never got an input: the replay reaches real endings.
    for want in ["stored", "denied", "invalid_code", "timed_out"] {
        assert!(
            ends.contains_key(want),
            "no replayed flow ended {want}: {ends:?}"
        );
    }
}

#[test]
fn fixed_seeds_reach_every_kind_of_ending() {
    let s = sweep(0..300, 1);
    let mut kinds: BTreeMap<&str, u64> = BTreeMap::new();
    for (k, v) in &s.outcomes {
        *kinds.entry(k.as_str()).or_default() += v;
    }
    for want in [
        "stored",
        "key_not_stored",
        "timed_out",
        "denied",
        "cancelled",
        "network",
        "exchange_timed_out",
        "server_error",
        "rate_limited",
        "missing_key",
        "invalid_code",
    ] {
        assert!(kinds.contains_key(want), "no run ended {want}: {kinds:?}");
    }
}
