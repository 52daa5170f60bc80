//! The fuzz targets' bodies over the committed seed corpus (`fuzz/corpus/<target>/`), and
//! under proptest on random bytes: the same functions cargo-fuzz runs (see `fuzz/README.md`).
//!
//! `OPENROUTER_AUTH_WRITE_CORPUS=1 cargo test -p openrouter-auth-sim --test fuzz_corpus`
//! regenerates the seed corpus from simulator transcripts (`seed-*` files). `regression-*`
//! files are inputs that once crashed a target, kept by hand. Anything else in those folders
//! is what a fuzzer grew, and is git-ignored; set `OPENROUTER_AUTH_CORPUS_COMMITTED_ONLY=1` to
//! run the committed files only.
use openrouter_auth_oracle as core_fuzz;
use openrouter_auth_sim::simulator::corpus::{file_name, seed_corpus, TARGETS};
use proptest::prelude::*;
use std::path::PathBuf;

fn body(target: &str) -> fn(&[u8]) {
    match target {
        "http_head" => openrouter_auth_sim::http_head::http_head,
        "callback_target" => core_fuzz::callback_target,
        "exchange_response" => core_fuzz::exchange_response,
        "key_info" => core_fuzz::key_info,
        "flow_inputs" => core_fuzz::flow_inputs,
        other => panic!("no fuzz target {other}"),
    }
}

fn corpus_dir(target: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target)
}

#[test]
fn every_corpus_file_passes_its_fuzz_target() {
    if std::env::var_os("OPENROUTER_AUTH_WRITE_CORPUS").is_some() {
        for (target, inputs) in seed_corpus(0..400, 40) {
            let dir = corpus_dir(target);
            std::fs::create_dir_all(&dir).unwrap();
            for e in std::fs::read_dir(&dir).unwrap() {
                let p = e.unwrap().path();
                if p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("seed-")
                {
                    std::fs::remove_file(p).unwrap();
                }
            }
            for data in &inputs {
                std::fs::write(dir.join(file_name(data)), data).unwrap();
            }
            println!("{target}: wrote {} seed files", inputs.len());
        }
    }
    for target in TARGETS {
        let dir = corpus_dir(target);
        let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        let seeds = files
            .iter()
            .filter(|p| {
                p.file_name()
                    .unwrap()
                    .to_string_lossy()
                    .starts_with("seed-")
            })
            .count();
        if std::env::var_os("OPENROUTER_AUTH_CORPUS_COMMITTED_ONLY").is_some() {
            files.retain(|p| {
                let n = p.file_name().unwrap().to_string_lossy().into_owned();
                n.starts_with("seed-") || n.starts_with("regression-")
            });
        }
        assert!(seeds >= 5, "{target}: only {seeds} committed seed files");
        let run = body(target);
        for f in &files {
            // A fuzzer running on the same folder may replace files under our feet.
            let Ok(data) = std::fs::read(f) else { continue };
            if let Err(e) = std::panic::catch_unwind(|| run(&data)) {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                panic!(
                    "{target} fails on {}: {msg}\n  reproduce: cd fuzz && cargo +nightly fuzz run {target} {}",
                    f.display(),
                    f.display()
                );
            }
        }
        println!("{target}: {} corpus files pass", files.len());
    }
}

/// Random variations of corpus files: a byte flipped, a tail cut, a chunk duplicated.
fn mutated(target: &'static str) -> impl Strategy<Value = Vec<u8>> {
    let mut files: Vec<Vec<u8>> = std::fs::read_dir(corpus_dir(target))
        .map(|d| {
            d.filter_map(|e| std::fs::read(e.ok()?.path()).ok())
                .collect()
        })
        .unwrap_or_default();
    files.sort();
    if files.is_empty() {
        files.push(Vec::new());
    }
    (
        prop::sample::select(files),
        any::<usize>(),
        any::<u8>(),
        0u8..4,
    )
        .prop_map(|(mut f, at, byte, how)| {
            if f.is_empty() {
                f.push(byte);
                return f;
            }
            let i = at % f.len();
            match how {
                0 => f[i] ^= byte | 1,
                1 => f.truncate(i),
                2 => {
                    let chunk = f[i..].to_vec();
                    f.splice(i..i, chunk);
                }
                _ => f.insert(i, byte),
            }
            f
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, failure_persistence: None, .. ProptestConfig::default() })]

    #[test]
    fn bodies_take_random_bytes(data in prop::collection::vec(any::<u8>(), 0..600)) {
        for target in TARGETS {
            body(target)(&data);
        }
    }

    #[test]
    fn flow_inputs_takes_mutated_corpus(data in mutated("flow_inputs")) {
        core_fuzz::flow_inputs(&data);
    }

    #[test]
    fn http_head_takes_mutated_corpus(data in mutated("http_head")) {
        openrouter_auth_sim::http_head::http_head(&data);
    }

    #[test]
    fn exchange_response_takes_mutated_corpus(data in mutated("exchange_response")) {
        core_fuzz::exchange_response(&data);
    }
}
