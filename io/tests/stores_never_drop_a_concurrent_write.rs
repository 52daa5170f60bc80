//! Writing a store never loses someone else's write (issue 12, rule 3).
//!
//! A real second program rewrites the same file in a loop, the way opencode adds a provider
//! to `auth.json` or a shell script appends to a `.env` file: read, add its own entry, write a
//! temporary file, rename it over the target, taking no lock. Meanwhile two of our writers
//! store keys into the same file, over and over. Every entry the other program wrote must be
//! in the file at the end: the count of lost entries is printed and must be 0.

use std::path::Path;
use std::process::{Child, Command, Stdio};

use openrouter_auth::core::ApiKey;
use openrouter_auth::{DotenvStore, KeyMeta, KeyStore, OpencodeStore};

/// Store operations per writer thread; two threads run at once.
const RUNS_PER_WRITER: usize = 150;

/// opencode's way: read auth.json, add `writer-N`, write a temp file, rename it over.
const JSON_WRITER: &str = r#"
import json, os, sys, time
path, stop = sys.argv[1], sys.argv[2]
n = 0
while not os.path.exists(stop):
    with open(path) as f:
        doc = json.load(f)
    doc["writer-%d" % n] = {"type": "api", "key": "w-%d" % n}
    tmp = path + ".writer.tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, indent=2)
    os.replace(tmp, path)
    n += 1
    time.sleep(0.02)
print(n)
"#;

/// A shell script's way: copy the file, append `WRITER_N=N`, rename the copy over. A copy that
/// fails is tried again: GNU cp refuses ("skipping file …, as it was replaced while being
/// copied") when any writer renames a new file over the source between cp's stat and its
/// open, and a script that then appended to nothing would drop its own file's lines itself.
const ENV_WRITER: &str = r#"
path=$1 stop=$2 n=0
while [ ! -e "$stop" ]; do
  cp "$path" "$path.writer.tmp" || { rm -f "$path.writer.tmp"; continue; }
  echo "WRITER_$n=$n" >> "$path.writer.tmp"
  mv -f "$path.writer.tmp" "$path"
  n=$((n+1))
  sleep 0.02
done
echo $n
"#;

/// The races run one at a time, so they do not slow each other down.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn spawn(program: &str, args: &[&str]) -> Child {
    Command::new(program)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("run {program}: {e}"))
}

/// Runs the other program against `path` while two threads store keys with `open`, then
/// returns (entries the other program wrote, entries of them missing at the end).
fn race(
    path: &Path,
    other: Child,
    stop: &Path,
    open: impl Fn() -> Box<dyn KeyStore> + Sync,
    present: impl Fn(&[u8], usize) -> bool,
) -> (usize, usize) {
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    /// Stops the other program even if a store panics.
    struct Stop<'a>(&'a Path);
    impl Drop for Stop<'_> {
        fn drop(&mut self) {
            let _ = std::fs::write(self.0, b"");
        }
    }
    let stop_guard = Stop(stop);
    // Let the other program start writing before we do.
    std::thread::sleep(std::time::Duration::from_millis(100));
    std::thread::scope(|s| {
        for t in 0..2 {
            let open = &open;
            s.spawn(move || {
                for i in 0..RUNS_PER_WRITER {
                    let key = format!("sk-or-v1-{t}{i:062}");
                    open()
                        .store(&ApiKey::new(key.as_str()), &KeyMeta::default())
                        .unwrap_or_else(|e| panic!("store {t}/{i}: {e}"));
                }
            });
        }
    });
    drop(stop_guard);
    let out = other.wait_with_output().unwrap();
    assert!(out.status.success(), "the other writer failed");
    let written: usize = String::from_utf8(out.stdout)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let file = std::fs::read(path).unwrap();
    let lost = (0..written).filter(|&n| !present(&file, n)).count();
    (written, lost)
}

#[test]
fn a_program_rewriting_auth_json_loses_no_provider_while_we_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.json");
    std::fs::write(&path, r#"{"anthropic": {"type": "api", "key": "sk-ant"}}"#).unwrap();
    let stop = dir.path().join("stop");
    let other = spawn(
        "python3",
        &[
            "-c",
            JSON_WRITER,
            path.to_str().unwrap(),
            stop.to_str().unwrap(),
        ],
    );
    let (written, lost) = race(
        &path,
        other,
        &stop,
        || Box::new(OpencodeStore::new(&path)),
        |file, n| {
            let v: serde_json::Value = serde_json::from_slice(file).unwrap();
            v.get(format!("writer-{n}")).is_some()
        },
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    assert!(v.get("anthropic").is_some(), "the first provider survives");
    println!(
        "auth.json: {} store runs by 2 writers, {written} entries by the other program, {lost} lost",
        2 * RUNS_PER_WRITER
    );
    assert!(written > 0, "the other program never wrote");
    assert_eq!(lost, 0, "entries another program wrote were dropped");
}

#[test]
fn a_script_rewriting_an_env_file_loses_no_line_while_we_store() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".env");
    std::fs::write(&path, "FIRST=1\n").unwrap();
    let stop = dir.path().join("stop");
    let other = spawn(
        "sh",
        &[
            "-c",
            ENV_WRITER,
            "writer",
            path.to_str().unwrap(),
            stop.to_str().unwrap(),
        ],
    );
    let (written, lost) = race(
        &path,
        other,
        &stop,
        || Box::new(DotenvStore::new(&path)),
        |file, n| {
            let line = format!("\nWRITER_{n}={n}\n");
            file.windows(line.len()).any(|w| w == line.as_bytes())
        },
    );
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.starts_with("FIRST=1\n"), "{text}");
    println!(
        ".env: {} store runs by 2 writers, {written} lines by the other script, {lost} lost",
        2 * RUNS_PER_WRITER
    );
    assert!(written > 0, "the other script never wrote");
    assert_eq!(lost, 0, "lines another program wrote were dropped");
}

/// Two sign-ins that both began with an empty store reach the store step together, 200 times:
/// exactly one key is stored, the other sign-in is told that a key appeared, and none is
/// replaced silently.
#[test]
fn of_two_concurrent_stores_that_saw_no_key_one_is_refused() {
    use openrouter_auth::{Replace, SeenKey, StoreError};
    const RUNS: usize = 200;
    let dir = tempfile::tempdir().unwrap();
    let mut silently_replaced = 0;
    for run in 0..RUNS {
        let path = dir.path().join(format!("auth-{run}.json"));
        let barrier = std::sync::Barrier::new(2);
        let results: Vec<Result<(), StoreError>> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..2)
                .map(|t| {
                    let (path, barrier) = (&path, &barrier);
                    s.spawn(move || {
                        let key = format!("sk-or-v1-{t}{run:062}");
                        barrier.wait();
                        OpencodeStore::new(path)
                            .store_replacing(
                                &ApiKey::new(key.as_str()),
                                &KeyMeta::default(),
                                &Replace::Seen(SeenKey::default()),
                            )
                            .map(drop)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let stored = results.iter().filter(|r| r.is_ok()).count();
        let refused = results
            .iter()
            .filter(|r| matches!(r, Err(StoreError::KeyAppeared { .. })))
            .count();
        assert_eq!(stored + refused, 2, "run {run}: {results:?}");
        if stored == 2 {
            silently_replaced += 1;
        }
    }
    println!("{RUNS} runs of two concurrent stores: {silently_replaced} keys replaced silently");
    assert_eq!(silently_replaced, 0);
}
