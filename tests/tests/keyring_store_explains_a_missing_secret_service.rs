//! Issue 6, point 10: `--store keyring` uses the system keychain; on a Linux machine without a
//! Secret Service (no D-Bus session: servers, containers, CI) every command fails with one
//! line that says so and points to `--store file`, before anything is minted.
#![cfg(target_os = "linux")]

mod support;

use openrouter_auth_sim::emulator::Mode;
use openrouter_auth_tests::emulator;
use support::*;

/// The one line, checked the same way everywhere.
fn assert_one_line_explanation(stderr: &str) {
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("error: no secret service is running on this machine ("),
        "{stderr}"
    );
    assert!(lines[0].ends_with("; use --store file"), "{stderr}");
}

#[test]
fn login_into_the_keyring_without_a_secret_service_explains_and_mints_nothing() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    // Every run has no DBUS_SESSION_BUS_ADDRESS and XDG_RUNTIME_DIR inside `home`: no bus.
    let f = Run::login(
        &emulator.base_url(),
        home.path(),
        "keyring",
        &["--no-browser"],
        &[],
        Stdin::Null,
    )
    .finish();
    assert_eq!(f.code, Some(1), "{f:#?}");
    assert_one_line_explanation(&f.stderr);
    assert!(emulator.authorize_requests().is_empty());
}

#[test]
fn status_and_logout_on_the_keyring_explain_too() {
    let home = tempfile::tempdir().unwrap();
    let f = run(home.path(), &["status", "--store", "keyring"]);
    assert_eq!(f.code, Some(1), "{f:#?}");
    assert_one_line_explanation(&f.stderr);
    let f = run(home.path(), &["logout", "--store", "keyring"]);
    assert_eq!(f.code, Some(1), "{f:#?}");
    assert_one_line_explanation(&f.stderr);
}

#[test]
fn searching_all_stores_skips_a_missing_keyring_quietly() {
    let home = tempfile::tempdir().unwrap();
    let f = run(
        home.path(),
        &["status", "--base-url", "https://openrouter.ai"],
    );
    assert_eq!(f.code, Some(8), "{f:#?}");
    assert!(!f.stderr.contains("secret service"), "{}", f.stderr);
    let f = run(home.path(), &["logout", "--all"]);
    assert_eq!(f.code, Some(0), "{f:#?}");
    assert!(!f.stderr.contains("secret service"), "{}", f.stderr);
}
