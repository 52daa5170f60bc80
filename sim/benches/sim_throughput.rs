//! Simulator throughput: whole simulated sign-ins per second of wall time, every invariant
//! checked after every step, nothing recorded (as in a sweep), then with transcripts on.
//!
//! `cargo bench -p openrouter-auth-sim --bench sim_throughput` prints `flows/s`.
//! `OPENROUTER_AUTH_SIM_BENCH_RUNS` sets the number of seeds (default 20000).
use openrouter_auth_sim::simulator::{run_seed, sweep, Record};
use std::time::Instant;

fn main() {
    let runs: u64 = std::env::var("OPENROUTER_AUTH_SIM_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let start = 1_000_000;
    let _warm = sweep(start..start + runs / 20, usize::MAX);
    let s = sweep(start..start + runs, usize::MAX);
    println!(
        "sim_throughput/checked: {} runs, {} flows, {} steps in {:.2} s: {:.0} flows/s, {:.0} steps/s, {} violations",
        s.runs,
        s.flows,
        s.steps,
        s.elapsed.as_secs_f64(),
        s.flows_per_second(),
        s.steps as f64 / s.elapsed.as_secs_f64(),
        s.failures.len()
    );
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
    if !s.failures.is_empty() {
        eprintln!("{}", s.failures[0]);
        std::process::exit(1);
    }
}
