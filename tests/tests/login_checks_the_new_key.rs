//! Issue 6, point 6: after storing the new key, `login` checks it with `GET /api/v1/key` and
//! prints its label, limit, usage, whether the account is on the free tier, and the key's page
//! (`/keys/<lowercase hex SHA-256 of the key>`) where it can be revoked. A failed check after
//! a successful store is a warning, not a failure.
#![cfg(unix)]

mod support;

use openrouter_auth_sim::emulator::Mode;
use openrouter_auth_tests::{emulator, exit, stored_key, Browser};
use support::*;

#[test]
fn login_prints_what_openrouter_says_about_the_new_key() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let store = home.path().join("c.json");
    let spec = format!("file:{}", store.display());
    let mut run = Run::login(
        &emulator.base_url(),
        home.path(),
        &spec,
        &["--no-browser", "--key-label", "laptop"],
        &[],
        Stdin::Null,
    );
    Browser::new().follow(&run.authorization_url());
    let f = run.finish();
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    let key = stored_key(&store);
    let page = key_page(&emulator.base_url(), &key);
    assert_key_page_shape(&page, &emulator.base_url());
    for line in [
        "  label:     laptop".to_string(),
        "  usage:     $0.00".to_string(),
        "  limit:     none".to_string(),
        "  free tier: yes".to_string(),
        format!("  key page:  {page}"),
    ] {
        // The key info is a result the person asked for: on stdout (issue 16).
        assert!(
            f.stdout.contains(&line),
            "missing {line:?} in:\n{}",
            f.stdout
        );
    }
    assert!(f.stdout.contains("revoke"), "{}", f.stdout);
    assert!(!f.stderr.contains(&key), "the key itself is never printed");
    assert!(!f.stdout.contains(&key), "the key itself is never printed");
}

#[test]
fn json_signed_in_event_carries_the_key_check() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let mut run = Run::login(
        &emulator.base_url(),
        home.path(),
        "file",
        &["--no-browser", "--json", "--key-label", "laptop"],
        &[],
        Stdin::Null,
    );
    let ev = run.authorization_event();
    Browser::new().follow(&url::Url::parse(ev["url"].as_str().unwrap()).unwrap());
    let f = run.finish();
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    let done = f.event("signed_in");
    let key = emulator.issued_keys()[0].key.clone();
    assert_eq!(done["key_page"], key_page(&emulator.base_url(), &key));
    assert_eq!(done["key_label"], "laptop");
    let check = &done["key_check"];
    assert_eq!(check["label"], "laptop", "{done}");
    assert_eq!(check["usage"], 0.0);
    assert!(check["limit"].is_null());
    assert_eq!(check["is_free_tier"], true);
    assert!(done.get("warning").is_none(), "{done}");
}

#[test]
fn a_failed_check_after_storing_is_only_a_warning() {
    // This OpenRouter mints keys but fails every key check with a 500.
    let fake = FakeOpenRouter::start(500);
    let home = tempfile::tempdir().unwrap();
    let store = home.path().join("c.json");
    let spec = format!("file:{}", store.display());
    let mut run = Run::login(
        &fake.url,
        home.path(),
        &spec,
        &["--headless"],
        &[],
        Stdin::Pipe,
    );
    run.authorization_url();
    run.type_line("any-code-the-fake-accepts");
    let f = run.finish();
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    assert_eq!(stored_key(&store), FAKE_KEY);
    assert!(f.stdout.contains("Signed in."), "{}", f.stdout);
    assert!(
        f.stderr
            .contains("warning: the key is stored, but checking it with OpenRouter failed"),
        "{}",
        f.stderr
    );
    assert!(f.stderr.contains("(500)"), "{}", f.stderr);
    assert!(
        f.stderr.contains(&key_page(&fake.url, FAKE_KEY)),
        "the key page is still shown:\n{}",
        f.stderr
    );
}

#[test]
fn a_failed_check_is_a_warning_in_json_too() {
    let fake = FakeOpenRouter::start(503);
    let home = tempfile::tempdir().unwrap();
    let mut run = Run::login(
        &fake.url,
        home.path(),
        "file",
        &["--headless", "--json"],
        &[],
        Stdin::Pipe,
    );
    run.authorization_event();
    run.type_line("code");
    let f = run.finish();
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    let done = f.event("signed_in");
    assert_eq!(done["warning"]["kind"], "server_error", "{done}");
    assert!(done.get("key_check").is_none());
}
