//! Issue 6, point 7: when the target store already holds an OpenRouter key, `login` asks
//! before minting another (on a terminal) or needs `--force` (without one), so keys do not
//! pile up unseen. The terminal cases run the CLI on a pseudo-terminal through `script(1)`.
#![cfg(unix)]

mod support;

use std::path::Path;

use openrouter_auth_sim::emulator::Mode;
use openrouter_auth_tests::{emulator, exit, stored_key, Browser, Stream};
use support::*;

fn with_old_key(home: &Path) -> (std::path::PathBuf, String) {
    let store = home.join("c.json");
    std::fs::write(
        &store,
        format!("{{\n  \"openrouter\": {{\n    \"api_key\": \"{FAKE_KEY}\"\n  }}\n}}\n"),
    )
    .unwrap();
    let spec = format!("file:{}", store.display());
    (store, spec)
}

#[test]
fn without_a_terminal_an_existing_key_needs_force() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let (store, spec) = with_old_key(home.path());
    let before = std::fs::read(&store).unwrap();
    let run = Run::login(
        &emulator.base_url(),
        home.path(),
        &spec,
        &["--no-browser"],
        &[],
        Stdin::Null,
    );
    let f = run.finish();
    assert_eq!(f.code, Some(1), "{f:#?}");
    assert!(
        f.stderr.contains("already holds an OpenRouter key"),
        "{}",
        f.stderr
    );
    assert!(f.stderr.contains("--force"), "{}", f.stderr);
    // The logout it suggests reaches this store, not the default one.
    assert!(
        f.stderr
            .contains(&format!("`openrouter-auth logout --store {spec}` first")),
        "{}",
        f.stderr
    );
    assert!(
        f.stderr.contains(&key_page(&emulator.base_url(), FAKE_KEY)),
        "names the old key's page:\n{}",
        f.stderr
    );
    assert!(
        emulator.authorize_requests().is_empty(),
        "nothing was minted"
    );
    assert_eq!(std::fs::read(&store).unwrap(), before, "store untouched");
}

/// With several `--store`s, the logout the hint suggests names the store that holds the key,
/// not the first one asked for.
#[test]
fn the_hint_names_the_store_that_holds_the_key() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let (_, spec) = with_old_key(home.path());
    let empty = format!("file:{}", home.path().join("empty.json").display());
    let run = Run::login(
        &emulator.base_url(),
        home.path(),
        &empty,
        &["--store", &spec, "--no-browser"],
        &[],
        Stdin::Null,
    );
    let f = run.finish();
    assert_eq!(f.code, Some(1), "{f:#?}");
    assert!(
        f.stderr
            .contains(&format!("`openrouter-auth logout --store {spec}` first")),
        "{}",
        f.stderr
    );
    assert!(!f.stderr.contains("empty.json"), "{}", f.stderr);
}

#[test]
fn without_a_terminal_json_mode_reports_key_exists() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let (_, spec) = with_old_key(home.path());
    let f = Run::login(
        &emulator.base_url(),
        home.path(),
        &spec,
        &["--no-browser", "--json"],
        &[],
        Stdin::Null,
    )
    .finish();
    assert_eq!(f.code, Some(1), "{f:#?}");
    assert_eq!(f.event("failed")["error"]["kind"], "key_exists");
}

#[test]
fn force_replaces_the_key() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let (store, spec) = with_old_key(home.path());
    let mut run = Run::login(
        &emulator.base_url(),
        home.path(),
        &spec,
        &["--no-browser", "--force"],
        &[],
        Stdin::Null,
    );
    Browser::new().follow(&run.authorization_url());
    let f = run.finish();
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    assert_eq!(stored_key(&store), emulator.issued_keys()[0].key);
    // Told once the new key is stored, not before anything was replaced (issue 16).
    assert!(!f.stderr.contains("Replacing"), "{}", f.stderr);
    let said = f
        .stderr
        .find("Replaced the OpenRouter key")
        .expect("the replacement is told");
    assert!(f.stderr[said..].contains("revoke it at:"), "{}", f.stderr);
    assert!(f.stdout.contains("Signed in."), "{}", f.stdout);
}

#[test]
fn an_empty_store_needs_no_question() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let mut run = Run::login(
        &emulator.base_url(),
        home.path(),
        "file",
        &["--no-browser"],
        &[],
        Stdin::Null,
    );
    Browser::new().follow(&run.authorization_url());
    assert_eq!(run.finish().code, Some(exit::OK));
}

/// What a terminal run left behind: how it ended, the store, its bytes before, the emulator,
/// and the home directory (kept alive until the test ends).
type TtyRun = (
    openrouter_auth_tests::Finished,
    std::path::PathBuf,
    Vec<u8>,
    openrouter_auth_sim::emulator::Emulator,
    tempfile::TempDir,
);

fn tty_login(answer: &str) -> Option<TtyRun> {
    let Some(script) = script_program() else {
        eprintln!("skipped: script(1) from util-linux is not installed");
        return None;
    };
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let (store, spec) = with_old_key(home.path());
    let before = std::fs::read(&store).unwrap();
    let base = emulator.base_url().to_string();
    let mut run = start_on_tty(
        &script,
        home.path(),
        &[
            "login",
            "--no-browser",
            "--base-url",
            &base,
            "--store",
            &spec,
        ],
    );
    // On a terminal everything arrives on script's stdout.
    run.wait_line(Stream::Stdout, |l| {
        l.contains("already holds an OpenRouter key")
    });
    // The question itself ends without a newline; the terminal keeps what is typed until
    // the program reads it.
    run.wait_line(Stream::Stdout, |l| {
        l.contains("keeps working until you revoke it")
    });
    run.type_line(answer);
    if answer == "y" {
        let line = run.wait_line(Stream::Stdout, |l| {
            l.trim_start().starts_with("http") && l.contains("/auth?")
        });
        let auth = url::Url::parse(line.trim()).unwrap();
        // Loopback mode on a terminal offers pasting as well.
        run.wait_line(Stream::Stdout, |l| {
            l.contains("Or paste the code or the address your browser ended on here:")
        });
        Browser::new().follow(&auth);
    }
    let f = run.finish();
    Some((f, store, before, emulator, home))
}

#[test]
fn on_a_terminal_yes_signs_in_and_replaces_the_key() {
    let Some((f, store, _, emulator, _home)) = tty_login("y") else {
        return;
    };
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    assert_eq!(stored_key(&store), emulator.issued_keys()[0].key);
}

#[test]
fn on_a_terminal_no_keeps_the_key_and_mints_nothing() {
    let Some((f, store, before, emulator, _home)) = tty_login("n") else {
        return;
    };
    assert_eq!(f.code, Some(1), "{f:#?}");
    assert!(
        f.stdout.contains("Sign in and replace it here? [y/N]"),
        "{}",
        f.stdout
    );
    assert!(f.stdout.contains("Kept the existing key"), "{}", f.stdout);
    assert!(emulator.authorize_requests().is_empty());
    assert_eq!(std::fs::read(&store).unwrap(), before);
}

#[test]
fn an_unreadable_store_is_refused_before_anything_is_minted() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let store = home.path().join("c.json");
    std::fs::write(&store, b"not json\n").unwrap();
    let spec = format!("file:{}", store.display());
    let f = Run::login(
        &emulator.base_url(),
        home.path(),
        &spec,
        &["--no-browser", "--force"],
        &[],
        Stdin::Null,
    )
    .finish();
    assert_eq!(f.code, Some(1), "{f:#?}");
    assert!(f.stderr.contains("is not valid JSON"), "{}", f.stderr);
    assert!(f.stderr.contains("nothing was signed in"), "{}", f.stderr);
    assert!(emulator.authorize_requests().is_empty());
    assert_eq!(std::fs::read(&store).unwrap(), b"not json\n");
}

/// An opencode `auth.json` whose `openrouter` entry this tool cannot read, beside another
/// provider; returns the file and its bytes.
fn with_unreadable_opencode_entry(home: &Path) -> (std::path::PathBuf, Vec<u8>) {
    let auth = home.join(".local/share/opencode/auth.json");
    std::fs::create_dir_all(auth.parent().unwrap()).unwrap();
    let bytes =
        b"{\n  \"anthropic\": {\n    \"type\": \"api\",\n    \"key\": \"sk-ant-x\"\n  },\n  \"openrouter\": \"oops\"\n}"
            .to_vec();
    std::fs::write(&auth, &bytes).unwrap();
    (auth, bytes)
}

#[test]
fn an_unreadable_entry_is_replaced_only_with_force() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let (auth, before) = with_unreadable_opencode_entry(home.path());
    let f = Run::login(
        &emulator.base_url(),
        home.path(),
        "opencode",
        &["--no-browser"],
        &[],
        Stdin::Null,
    )
    .finish();
    assert_eq!(f.code, Some(1), "{f:#?}");
    assert!(f.stderr.contains("--force"), "{}", f.stderr);
    assert!(f.stderr.contains("nothing was signed in"), "{}", f.stderr);
    assert!(!f.stderr.contains("sk-ant-x"), "{}", f.stderr);
    assert!(
        emulator.authorize_requests().is_empty(),
        "nothing was minted"
    );
    assert_eq!(std::fs::read(&auth).unwrap(), before, "store untouched");

    let mut run = Run::login(
        &emulator.base_url(),
        home.path(),
        "opencode",
        &["--no-browser", "--force"],
        &[],
        Stdin::Null,
    );
    Browser::new().follow(&run.authorization_url());
    let f = run.finish();
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    // Told after the new key replaced the entry, not before.
    assert!(
        f.stderr
            .contains("Replaced the OpenRouter entry this tool could not read"),
        "{}",
        f.stderr
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&auth).unwrap()).unwrap();
    assert_eq!(
        v["openrouter"]["key"],
        emulator.issued_keys()[0].key.as_str()
    );
    assert_eq!(
        v["anthropic"]["key"], "sk-ant-x",
        "the other provider is kept"
    );
}
