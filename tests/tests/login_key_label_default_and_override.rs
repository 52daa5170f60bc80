//! Issue 6, point 5: the new key's `key_label` defaults to something the user recognises in
//! their key list — `openrouter-auth on <hostname> <YYYY-MM-DD>`, at most 100 characters — and
//! `--key-label` overrides it. Both reach OpenRouter (the emulator records `/auth`'s query and
//! names the key after it).
#![cfg(unix)]

mod support;

use openrouter_auth_sim::emulator::Mode;
use openrouter_auth_tests::{emulator, exit, Browser};
use support::*;

fn sign_in_with(extra: &[&str]) -> (openrouter_auth_sim::emulator::Emulator, String) {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let mut args = vec!["--no-browser"];
    args.extend_from_slice(extra);
    let mut run = Run::login(
        &emulator.base_url(),
        home.path(),
        "file",
        &args,
        &[],
        Stdin::Null,
    );
    let auth = run.authorization_url();
    Browser::new().follow(&auth);
    let f = run.finish();
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    let label = last_key_label(&emulator).expect("a key_label was sent");
    (emulator, label)
}

/// `hostname` without a domain, as the program computes it, if the command exists.
fn short_hostname() -> Option<String> {
    let out = std::process::Command::new("hostname").output().ok()?;
    let name = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    Some(name.split('.').next().unwrap_or_default().to_owned()).filter(|n| !n.is_empty())
}

/// Today's UTC date (the child runs with TZ=UTC).
fn utc_date() -> Option<String> {
    let out = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d"])
        .output()
        .ok()?;
    Some(String::from_utf8(out.stdout).ok()?.trim().to_owned())
}

#[test]
fn the_default_label_names_the_program_the_host_and_the_date() {
    let before = utc_date();
    let (emulator, label) = sign_in_with(&[]);
    let after = utc_date();
    assert!(label.starts_with("openrouter-auth on "), "{label}");
    assert!(label.chars().count() <= 100, "{label}");
    let date = label.rsplit(' ').next().unwrap();
    assert!(
        date.len() == 10
            && date.char_indices().all(|(i, c)| if i == 4 || i == 7 {
                c == '-'
            } else {
                c.is_ascii_digit()
            }),
        "{label}"
    );
    if let (Some(before), Some(after)) = (before, after) {
        // The date of the run (either side of midnight, if the run straddled it).
        assert!(
            date == before || date == after,
            "{label} vs {before}/{after}"
        );
    }
    if let Some(host) = short_hostname() {
        if host.chars().count() < 60 {
            assert_eq!(
                label,
                format!("openrouter-auth on {host} {date}"),
                "the label names this machine"
            );
        }
    }
    // The key OpenRouter minted carries it.
    assert_eq!(emulator.issued_keys()[0].label, label);
}

#[test]
fn key_label_overrides_the_default() {
    let (emulator, label) = sign_in_with(&["--key-label", "CI runner #4 (nightly)"]);
    assert_eq!(label, "CI runner #4 (nightly)");
    assert_eq!(emulator.issued_keys()[0].label, "CI runner #4 (nightly)");
}

#[test]
fn a_label_over_100_characters_is_a_usage_error() {
    let home = tempfile::tempdir().unwrap();
    let long = "x".repeat(101);
    let f = run(
        home.path(),
        &["login", "--no-browser", "--key-label", &long],
    );
    assert_eq!(f.code, Some(2), "{f:#?}");
    assert!(f.stderr.contains("100"), "{}", f.stderr);
}

#[test]
fn the_label_is_shown_after_signing_in() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let mut run = Run::login(
        &emulator.base_url(),
        home.path(),
        "file",
        &["--no-browser", "--key-label", "my laptop"],
        &[],
        Stdin::Null,
    );
    Browser::new().follow(&run.authorization_url());
    let f = run.finish();
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    assert!(
        f.stdout.contains("  label:     my laptop\n"),
        "{}",
        f.stdout
    );
}
