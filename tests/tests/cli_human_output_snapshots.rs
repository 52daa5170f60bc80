//! What a person sees on stderr (human mode) for a success, a denial, a timeout and a server
//! error, pinned as insta snapshots. Ports, nonces, PKCE challenges, `state`, key hints and
//! temporary paths are redacted so the snapshots are stable.
#![cfg(unix)]

use std::path::Path;

use openrouter_auth_sim::emulator::{Emulator, Fault, Mode};
use openrouter_auth_tests::{emulator, exit, link_by_id, redactions, Browser, Cli, Finished};

/// Runs `login` in human mode with a file store; `browse` plays the browser.
fn human_login(
    emulator: &Emulator,
    extra: &[&str],
    browse: impl FnOnce(&Browser, url::Url),
) -> (Finished, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("c.json");
    let mut cli = Cli::login(
        emulator,
        tmp.path(),
        &format!("file:{}", store.display()),
        extra,
    );
    let auth = cli.authorization_url_human();
    browse(&Browser::new(), auth);
    (cli.finish(), tmp)
}

fn assert_stderr_snapshot(name: &str, tmp: &Path, f: &Finished) {
    let owned = redactions(tmp);
    let filters: Vec<(&str, &str)> = owned
        .iter()
        .map(|(re, with)| (re.as_str(), with.as_str()))
        .collect();
    insta::with_settings!({filters => filters}, {
        insta::assert_snapshot!(name, f.stderr);
    });
}

#[test]
fn success() {
    let emulator = emulator(Mode::Redirect);
    let (f, tmp) = human_login(&emulator, &[], |b, auth| {
        b.follow(&auth);
    });
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    assert_eq!(f.stdout, "");
    assert_stderr_snapshot("success", tmp.path(), &f);
}

#[test]
fn denied() {
    let emulator = emulator(Mode::Consent);
    let (f, tmp) = human_login(&emulator, &[], |b, auth| {
        let consent = b.get(&auth);
        b.follow(&link_by_id(&consent, "deny"));
    });
    assert_eq!(f.code, Some(exit::DENIED), "{f:#?}");
    assert_stderr_snapshot("denied", tmp.path(), &f);
}

#[test]
fn timeout() {
    let emulator = emulator(Mode::Redirect);
    let (f, tmp) = human_login(&emulator, &["--timeout", "1"], |_, _| {});
    assert_eq!(f.code, Some(exit::TIMED_OUT), "{f:#?}");
    assert_stderr_snapshot("timeout", tmp.path(), &f);
}

#[test]
fn server_error() {
    let emulator = emulator(Mode::Redirect);
    emulator.inject_fault(Fault::InternalError);
    let (f, tmp) = human_login(&emulator, &[], |b, auth| {
        b.follow(&auth);
    });
    assert_eq!(f.code, Some(exit::EXCHANGE_FAILED), "{f:#?}");
    assert_stderr_snapshot("server_error", tmp.path(), &f);
}
