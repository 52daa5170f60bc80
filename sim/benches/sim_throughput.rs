//! Simulator throughput: whole simulated sign-ins per second of wall time, every invariant
//! checked after every step, nothing recorded (as in a sweep); then its peer, the same seeds'
//! flows replayed into a bare `Flow` with no world and no checks; then with transcripts on.
//!
//! `cargo bench -p openrouter-auth-sim --bench sim_throughput` prints `flows/s` for each, and
//! one `P5 summary:` line with the checked and bare rates and their ratio (what
//! `bench/run-all.sh` reports). `OPENROUTER_AUTH_SIM_BENCH_RUNS` sets the number of seeds
//! (default 20000).
//!
//! The peer: a first, untimed pass runs every seed with [`run_seed_taped`], which records each
//! flow's configuration, its RNG seed and every input and timeout it got, with their virtual
//! times (this pass is also the warm-up). The checked sweep then runs the same seeds as a sweep
//! does, and the bare pass replays every tape ([`FlowTape::replay`]: `Flow::new` from the same
//! RNG state, then `handle_input`/`handle_timeout` and draining the outputs, nothing else).
//! Every bare flow must end as its checked twin did, or the bench fails: the two passes do the
//! same flow work, and the difference is the world and the checker.
use openrouter_auth_sim::simulator::{flow_end, run_seed, run_seed_taped, sweep, Record};
use std::time::Instant;

fn main() {
    let runs: u64 = std::env::var("OPENROUTER_AUTH_SIM_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let start = 1_000_000;

    // Untimed: the tapes (and the warm-up).
    let mut tapes = Vec::new();
    let mut expected = Vec::new();
    for seed in start..start + runs {
        let (report, t) = run_seed_taped(seed);
        if t.len() == report.outcomes.len() {
            expected.extend(report.outcomes);
            tapes.extend(t);
        }
    }
    let bare_steps: u64 = tapes.iter().map(|t| t.steps.len() as u64).sum();

    let s = sweep(start..start + runs, usize::MAX);
    let checked = s.flows_per_second();
    println!(
        "sim_throughput/checked: {} runs, {} flows, {} steps in {:.2} s: {:.0} flows/s, {:.0} steps/s, {} violations",
        s.runs,
        s.flows,
        s.steps,
        s.elapsed.as_secs_f64(),
        checked,
        s.steps as f64 / s.elapsed.as_secs_f64(),
        s.failures.len()
    );

    let n_bare = tapes.len();
    let t = Instant::now();
    let ends: Vec<String> = tapes
        .into_iter()
        .map(|tape| {
            tape.replay()
                .map_or_else(|| "refused".into(), |f| flow_end(&f))
        })
        .collect();
    let bare_secs = t.elapsed().as_secs_f64().max(1e-9);
    let bare = n_bare as f64 / bare_secs;
    println!(
        "sim_throughput/bare: {n_bare} flows, {bare_steps} inputs and timeouts in {bare_secs:.2} s: {bare:.0} flows/s (the same seeds' inputs into a bare Flow: no world, no checks)"
    );
    let differ = ends.iter().zip(&expected).filter(|(a, b)| a != b).count();

    let n = (runs / 10).max(1);
    let t = Instant::now();
    let mut flows = 0u64;
    for seed in start..start + n {
        flows += run_seed(seed, Record::Transcript).flows as u64;
    }
    let secs = t.elapsed().as_secs_f64();
    println!(
        "sim_throughput/recorded: {n} runs, {flows} flows in {secs:.2} s: {:.0} flows/s",
        flows as f64 / secs
    );
    println!(
        "P5 summary: checked {checked:.0} flows/s, bare {bare:.0} flows/s, ratio {:.2} (checked / bare)",
        checked / bare
    );
    if differ > 0 || ends.len() != expected.len() {
        eprintln!(
            "the bare replay is not the checked run's twin: {differ} of {} flows ended differently",
            expected.len()
        );
        std::process::exit(1);
    }
    if !s.failures.is_empty() {
        eprintln!("{}", s.failures[0]);
        std::process::exit(1);
    }
}
