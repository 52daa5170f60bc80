//! P1: request-head parse + callback validation, ours against raw `httparse::Request::parse`
//! on the same bytes (the corpus in `openrouter_auth_bench::corpus`).
//!
//! Criterion measures both over the whole corpus (and over its callback and stray halves);
//! at the end this prints `RESULT P1 | …` with the throughput ratio ours/peer read back from
//! criterion's estimates. Target: ours ≥ 0.8× the peer.
#![forbid(unsafe_code)]

use criterion::{BenchmarkId, Criterion, Throughput};
use openrouter_auth_bench::corpus::{Class, Corpus, Request};
use openrouter_auth_bench::p1;
use std::hint::black_box;
use std::path::PathBuf;

const GROUPS: [(&str, Option<Class>); 3] = [
    ("p1_corpus", None),
    ("p1_callbacks", Some(Class::Callback)),
    ("p1_strays", Some(Class::Stray)),
];

fn bench(c: &mut Criterion) {
    let corpus = Corpus::new(53122);
    for (group, class) in GROUPS {
        let reqs: Vec<&Request> = corpus
            .requests
            .iter()
            .filter(|r| class.is_none_or(|k| r.class == k))
            .collect();
        let mut g = c.benchmark_group(group);
        g.throughput(Throughput::Elements(reqs.len() as u64));
        g.bench_function(BenchmarkId::from_parameter("ours"), |b| {
            b.iter(|| {
                for r in &reqs {
                    black_box(p1::ours(
                        black_box(&r.bytes),
                        black_box(&corpus.nonce),
                        corpus.port,
                    ));
                }
            })
        });
        g.bench_function(BenchmarkId::from_parameter("peer"), |b| {
            b.iter(|| {
                for r in &reqs {
                    black_box(p1::peer(black_box(&r.bytes)));
                }
            })
        });
        g.finish();
    }
}

fn benches() {
    let mut c = Criterion::default().configure_from_args();
    bench(&mut c);
}

fn criterion_home() -> PathBuf {
    if let Some(h) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(h);
    }
    if let Some(t) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(t).join("criterion");
    }
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/criterion")
}

/// Mean time per iteration (ns) of `group/id` from criterion's `estimates.json`.
fn mean_ns(group: &str, id: &str) -> Option<f64> {
    let p = criterion_home()
        .join(group)
        .join(id)
        .join("new/estimates.json");
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(p).ok()?).ok()?;
    v["mean"]["point_estimate"].as_f64()
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    let args: Vec<String> = std::env::args().collect();
    if args
        .iter()
        .any(|a| a == "--test" || a == "--list" || a.starts_with("--profile-time"))
    {
        return;
    }
    let corpus = Corpus::new(53122);
    for (group, class) in GROUPS {
        let n = corpus
            .requests
            .iter()
            .filter(|r| class.is_none_or(|k| r.class == k))
            .count() as f64;
        match (mean_ns(group, "ours"), mean_ns(group, "peer")) {
            (Some(ours), Some(peer)) => {
                let ratio = peer / ours;
                let line = format!(
                    "ours {:.0} ns/req, httparse {:.0} ns/req",
                    ours / n,
                    peer / n
                );
                if group == "p1_corpus" {
                    println!(
                        "{}",
                        openrouter_auth_bench::result_line(
                            "P1",
                            &format!(
                                "head parse + callback validation, {n} realistic requests: {line}"
                            ),
                            &format!("{ratio:.2}x httparse throughput"),
                            ">= 0.80x",
                            ratio >= 0.8,
                        )
                    );
                } else {
                    println!("P1 detail {group}: {line}, ratio {ratio:.2}x");
                }
            }
            _ => println!(
                "P1: no criterion estimates under {} (run with --test?)",
                criterion_home().display()
            ),
        }
    }
}
