//! Issue 14, item 8: the library's examples (`io/examples/`) sign in against the OpenRouter
//! emulator, each run as the program an embedder would ship, with this test as the browser;
//! what they print and what they leave behind is checked.
#![cfg(unix)]

use openrouter_auth::core::ApiKey;
use openrouter_auth_sim::emulator::{Emulator, Mode};
use openrouter_auth_tests::{emulator, example_binary, Browser};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};

/// Runs example `name` against `emulator` with `home` as its home, approves the sign-in at
/// the URL it prints (first line), and returns everything it printed on stdout.
fn run_example(name: &str, emulator: &Emulator, home: &Path) -> String {
    let mut child = Command::new(example_binary(name))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("OPENROUTER_AUTH_BASE_URL", emulator.base_url().as_str())
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        // Launching "the browser" is a no-op; this test is the browser.
        .env("BROWSER", "true")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a line").unwrap();
    let url = first
        .split_whitespace()
        .find(|w| w.starts_with("http"))
        .unwrap_or_else(|| panic!("no URL in {first:?}"));
    let url = url::Url::parse(url).unwrap();
    assert!(
        url.as_str().starts_with(emulator.base_url().as_str()),
        "{url}"
    );
    let pages = Browser::new().follow(&url);
    let last = pages.last().unwrap();
    assert!(last.body.contains("Signed in"), "{}", last.body);
    let mut out = first + "\n";
    for line in lines {
        out.push_str(&line.unwrap());
        out.push('\n');
    }
    let status = child.wait().unwrap();
    assert!(status.success(), "{name} failed: {status}\n{out}");
    out
}

/// The one key the emulator minted.
fn the_key(emulator: &Emulator) -> String {
    let issued = emulator.issued_keys();
    assert_eq!(issued.len(), 1, "one key: {issued:?}");
    issued[0].key.clone()
}

#[test]
fn the_blocking_one_liner_stores_the_key_in_the_credentials_file() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let out = run_example("blocking_sign_in", &emulator, home.path());
    let key = the_key(&emulator);
    let file = home.path().join(".config/openrouter-auth/credentials.json");
    assert!(
        out.contains(&format!(
            "Signed in: key {} stored in credentials file {}",
            ApiKey::new(key.clone()).hint(),
            file.display()
        )),
        "{out}"
    );
    let stored: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert_eq!(stored["openrouter"]["api_key"], key.as_str());
    assert!(
        !out.contains(&key),
        "the key itself is never printed: {out}"
    );
}

#[test]
fn the_tokio_app_keeps_the_key_in_its_own_store_under_its_own_name() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let out = run_example("tokio_app", &emulator, home.path());
    let key = the_key(&emulator);
    assert!(out.starts_with("Acme Agent: open "), "{out}");
    assert!(
        out.contains(&format!(
            "Acme Agent: signed in; key {} kept in Acme Agent's keychain entry for {} (read back)",
            ApiKey::new(key.clone()).hint(),
            emulator.base_url()
        )),
        "{out}"
    );
    // The app's name labels the key at OpenRouter, and the key check (through the app's own
    // client) reads that label back.
    let label = &emulator.issued_keys()[0].label;
    assert!(label.starts_with("Acme Agent"), "{label}");
    assert!(
        out.contains(&format!("OpenRouter knows the key as Some({label:?})")),
        "{out}"
    );
    assert!(
        !out.contains(&key),
        "the key itself is never printed: {out}"
    );
    assert!(
        std::fs::read_dir(home.path()).unwrap().next().is_none(),
        "nothing written under the home directory"
    );
}

#[test]
fn the_core_alone_signs_in_with_nothing_but_std() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let out = run_example("core_with_std", &emulator, home.path());
    let key = the_key(&emulator);
    assert!(
        out.contains(&format!(
            "Signed in: key {} kept in this example's memory",
            ApiKey::new(key.clone()).hint()
        )),
        "{out}"
    );
    assert!(
        !out.contains(&key),
        "the key itself is never printed: {out}"
    );
    assert!(std::fs::read_dir(home.path()).unwrap().next().is_none());
}
