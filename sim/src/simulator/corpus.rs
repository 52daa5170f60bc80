//! The fuzz targets' seed corpus, made from simulator transcripts.
//!
//! [`seed_corpus`] runs a range of seeds with recording on, collects what each run fed to
//! the code under test (request heads and targets, exchange answers, key-check answers, each
//! flow's inputs as `openrouter_auth_oracle::encode_ops`), and keeps a small, varied, deterministic
//! selection per target. `cargo test -p openrouter-auth-sim --test fuzz_corpus` writes it to
//! `fuzz/corpus/<target>/seed-<hash>` when `OPENROUTER_AUTH_WRITE_CORPUS=1`.

use super::{run_seed, Harvest, Record};
use openrouter_auth_oracle::decode_ops;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet};

/// The fuzz targets, as named in `fuzz/Cargo.toml`.
pub const TARGETS: [&str; 5] = [
    "http_head",
    "callback_target",
    "exchange_response",
    "key_info",
    "flow_inputs",
];

/// The name a corpus file gets: `seed-` and 16 hex digits of its SHA-256.
pub fn file_name(data: &[u8]) -> String {
    let d = Sha256::digest(data);
    let hex: String = d[..8].iter().map(|b| format!("{b:02x}")).collect();
    format!("seed-{hex}")
}

fn shape(target: &str, data: &[u8]) -> String {
    match target {
        "flow_inputs" => {
            let (config, ops) = decode_ops(data);
            let mut s = format!("{config:?}");
            for op in ops {
                let d = format!("{op:?}");
                let name = d.split(['(', ' ', '{']).next().unwrap_or("").to_owned();
                if name != "Tick" && !s.ends_with(&name) {
                    s.push(' ');
                    s.push_str(&name);
                }
            }
            s
        }
        "exchange_response" | "key_info" => {
            let status = data
                .get(..2)
                .map_or(0, |s| u16::from_be_bytes([s[0], s[1]]));
            let head: String = data.iter().skip(3).take(12).map(|b| *b as char).collect();
            format!("{status} {head} {}", data.len() / 64)
        }
        _ => {
            let head: String = data
                .iter()
                .take(14)
                .map(|b| {
                    if b.is_ascii_alphanumeric() {
                        'a'
                    } else {
                        *b as char
                    }
                })
                .collect();
            format!("{head} {}", data.len().checked_ilog2().unwrap_or(0))
        }
    }
}

/// Runs `seeds` with recording and picks at most `per_target` inputs per fuzz target, one
/// per "shape" (a coarse summary of the input), in seed order. Deterministic.
pub fn seed_corpus(
    seeds: impl IntoIterator<Item = u64>,
    per_target: usize,
) -> BTreeMap<&'static str, Vec<Vec<u8>>> {
    let mut out: BTreeMap<&'static str, Vec<Vec<u8>>> = BTreeMap::new();
    let mut shapes: BTreeMap<&'static str, BTreeSet<String>> = BTreeMap::new();
    let mut seen: BTreeSet<Vec<u8>> = BTreeSet::new();
    for seed in seeds {
        let r = run_seed(seed, Record::Transcript);
        let Some(h) = r.harvest else { continue };
        let Harvest {
            http_head,
            callback_target,
            exchange_response,
            key_info,
            flow_inputs,
        } = h;
        for (target, inputs) in [
            ("http_head", http_head),
            ("callback_target", callback_target),
            ("exchange_response", exchange_response),
            ("key_info", key_info),
            ("flow_inputs", flow_inputs),
        ] {
            let list = out.entry(target).or_default();
            for data in inputs {
                if list.len() >= per_target || data.len() > 64 * 1024 {
                    break;
                }
                if !seen.insert(data.clone()) {
                    continue;
                }
                if shapes
                    .entry(target)
                    .or_default()
                    .insert(shape(target, &data))
                {
                    list.push(data);
                }
            }
        }
    }
    out
}
