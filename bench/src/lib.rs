//! Side-by-side benchmarks of `openrouter-auth` against peers (issue 7; see `BENCHMARKS.md`).
//!
//! This crate measures; it is never shipped and never decides anything about a sign-in. Each
//! benchmark runs our code and a peer on the same input in the same run and reports the
//! ratio, because absolute numbers on a shared machine are noise.
//!
//! - [`corpus`]: the realistic request heads (Chrome, Firefox, Safari, curl, favicon, junk).
//! - [`p1`]: the two functions P1 compares (our head parse + callback validation, and raw
//!   `httparse`).
//! - [`client`]: a tiny blocking HTTP/1.1 client for the harnesses.
//! - [`load`]: the flood engine (closed-loop request churn and idle connection holders).
//! - [`procs`]: child processes, `/proc` readings (peak RSS, CPU time) and the emulator.
//! - [`stats`]: medians and percentiles.
//!
//! The one command is `bench/run-all.sh` (`--quick` for a few-second smoke run).
//!
//! ```no_run
//! use openrouter_auth_bench::{corpus, p1};
//! let c = corpus::Corpus::new(53122);
//! for req in &c.requests {
//!     let _ours = p1::ours(&req.bytes, &c.nonce, c.port);
//!     let _peer = p1::peer(&req.bytes);
//! }
//! ```
#![forbid(unsafe_code)]

pub mod client;
pub mod corpus;
pub mod load;
pub mod p1;
pub mod procs;
pub mod stats;

/// One result line for the run-all summary: `RESULT <id> | <what> | <ratio> | <target> | <met>`.
pub fn result_line(id: &str, what: &str, ratio: &str, target: &str, met: bool) -> String {
    format!(
        "RESULT {id} | {what} | {ratio} | {target} | {}",
        if met { "met" } else { "MISSED" }
    )
}

/// Whether `--quick` (or `BENCH_QUICK=1`) asks for the few-second smoke run.
pub fn quick_mode(args: &[String]) -> bool {
    args.iter().any(|a| a == "--quick")
        || std::env::var("BENCH_QUICK").is_ok_and(|v| !v.is_empty() && v != "0")
}
