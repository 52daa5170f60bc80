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

/// Issue 16: `status` says, in one line, that it did not look in the keyring and why; it is
/// not an error (no key anywhere is still exit 8), and `--json` has it as `skipped`.
#[test]
fn searching_all_stores_says_it_did_not_look_in_the_keyring() {
    let home = tempfile::tempdir().unwrap();
    let f = run(
        home.path(),
        &["status", "--base-url", "https://openrouter.ai"],
    );
    assert_eq!(f.code, Some(8), "{f:#?}");
    assert_eq!(f.stderr, "", "not an error");
    let said: Vec<&str> = f
        .stdout
        .lines()
        .filter(|l| l.contains("Did not look"))
        .collect();
    assert_eq!(said.len(), 1, "{}", f.stdout);
    assert!(
        said[0].starts_with(
            "Did not look in the Secret Service keyring: no secret service is running on this machine ("
        ),
        "{}",
        f.stdout
    );
    let f = run(
        home.path(),
        &["status", "--json", "--base-url", "https://openrouter.ai"],
    );
    assert_eq!(f.code, Some(8), "{f:#?}");
    let skipped = &f.event("status")["skipped"];
    assert_eq!(skipped[0]["store"], "Secret Service keyring", "{skipped}");
    assert!(
        skipped[0]["reason"]
            .as_str()
            .unwrap()
            .starts_with("no secret service is running on this machine ("),
        "{skipped}"
    );
    // Naming a store looks nowhere else: nothing skipped to tell.
    let f = run(
        home.path(),
        &[
            "status",
            "--store",
            "file",
            "--base-url",
            "https://openrouter.ai",
        ],
    );
    assert_eq!(f.code, Some(8), "{f:#?}");
    assert!(!f.stdout.contains("Did not look"), "{}", f.stdout);
    let f = run(home.path(), &["logout", "--all"]);
    assert_eq!(f.code, Some(0), "{f:#?}");
    assert!(!f.stderr.contains("secret service"), "{}", f.stderr);
}
