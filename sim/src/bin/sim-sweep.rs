//! Sweeps simulator seeds in parallel and reports violations with their replay commands.
//!
//! ```text
//! cargo run --release -p openrouter-auth-sim --bin sim-sweep -- --start 0 --runs 100000 --jobs 2
//! ```
//!
//! Exits 1 if any seed broke a rule.
use clap::Parser;
use openrouter_auth_sim::simulator::{run_seed, sweep, Record, SweepSummary};
use std::time::Instant;

#[derive(Parser)]
#[command(about = "Sweep simulator seeds start..start+runs")]
struct Args {
    /// First seed.
    #[arg(long, default_value_t = 0)]
    start: u64,
    /// How many seeds.
    #[arg(long, default_value_t = 100_000)]
    runs: u64,
    /// Worker threads.
    #[arg(long, default_value_t = 1)]
    jobs: u64,
    /// Print the transcript tail of the first failure.
    #[arg(long)]
    explain: bool,
    /// Instead of sweeping, list the first seeds (up to 10) where a flow ended this way
    /// (e.g. `stored`, `invalid_code`), single-threaded.
    #[arg(long)]
    find: Option<String>,
}

fn main() {
    let args = Args::parse();
    if let Some(want) = &args.find {
        let mut found = 0;
        for seed in args.start..args.start + args.runs {
            let r = run_seed(seed, Record::Nothing);
            if r.outcomes.iter().any(|o| o == want) {
                println!("seed {seed}: {:?}", r.outcomes);
                found += 1;
                if found == 10 {
                    break;
                }
            }
        }
        return;
    }
    let jobs = args.jobs.max(1);
    let t0 = Instant::now();
    let chunk = 1_000u64;
    let next = std::sync::atomic::AtomicU64::new(0);
    let end = args.runs;
    let total = std::sync::Mutex::new(SweepSummary::default());
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                let from = next.fetch_add(chunk, std::sync::atomic::Ordering::Relaxed);
                if from >= end {
                    break;
                }
                let to = (from + chunk).min(end);
                let part = sweep(args.start + from..args.start + to, 20);
                let mut t = total.lock().expect("lock");
                t.merge(part);
                if t.runs % 10_000 < chunk {
                    eprintln!(
                        "  {} runs, {} failures, {:.0} s",
                        t.runs,
                        t.failures.len(),
                        t0.elapsed().as_secs_f64()
                    );
                }
            });
        }
    });
    let mut total = total.into_inner().expect("lock");
    total.elapsed = t0.elapsed();
    total.failures.sort_by_key(|v| v.seed);
    println!(
        "seeds {}..{}: {} runs, {} flows, {} steps, {} violations in {:.1} s wall ({} jobs): {:.0} flows/s",
        args.start,
        args.start + args.runs,
        total.runs,
        total.flows,
        total.steps,
        total.failures.len(),
        total.elapsed.as_secs_f64(),
        jobs,
        total.flows_per_second()
    );
    println!("outcomes: {:?}", total.outcomes);
    for v in &total.failures {
        println!("{v}");
    }
    if let Some(v) = total.failures.first() {
        if args.explain {
            let r = run_seed(v.seed, Record::Transcript);
            for line in &r.transcript[r.transcript.len().saturating_sub(60)..] {
                println!("{line}");
            }
        }
        std::process::exit(1);
    }
}
