//! Issue 6, points 1, 3 and 4: `login --headless` shows an authorization URL without
//! `callback_url` (with a `code_challenge`), reads the code OpenRouter shows from standard
//! input and exchanges it; SSH sessions and machines without a display choose headless by
//! themselves (saying why in one line) unless a flag decides; a headless login whose stdin is
//! closed ends at once instead of waiting for the timeout.
#![cfg(unix)]

mod support;

use std::time::{Duration, Instant};

use openrouter_auth_sim::emulator::Mode;
use openrouter_auth_tests::{emulator, exit, query_param, stored_key, Browser, Stream};
use support::*;

/// `login --headless` against `emulator`, the key going to `home/c.json`, stdin a pipe the
/// test types into. Returns the running command and that store's path.
fn headless_login(
    emulator: &openrouter_auth_sim::emulator::Emulator,
    home: &std::path::Path,
) -> (Run, std::path::PathBuf) {
    let store = home.join("c.json");
    let spec = format!("file:{}", store.display());
    let run = Run::login(
        &emulator.base_url(),
        home,
        &spec,
        &["--headless"],
        &[],
        Stdin::Pipe,
    );
    (run, store)
}

#[test]
fn headless_login_reads_the_code_from_stdin() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let (mut run, store) = headless_login(&emulator, home.path());
    let auth = run.authorization_url();
    assert_eq!(query_param(&auth, "callback_url"), None, "{auth}");
    assert!(query_param(&auth, "code_challenge").is_some_and(|c| c.len() == 43));
    assert_eq!(
        query_param(&auth, "code_challenge_method").as_deref(),
        Some("S256")
    );
    run.wait_line(Stream::Stderr, |l| l.contains("Paste it here"));

    // The user opens the URL on a phone and types the code shown there.
    let code = code_shown_for(&auth);
    run.type_line(&code);
    let f = run.finish();
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    let issued = emulator.issued_keys();
    assert_eq!(issued.len(), 1);
    assert_eq!(stored_key(&store), issued[0].key);
    assert!(
        f.stdout.starts_with("Signed in. Key sk-or-v1-"),
        "{}",
        f.stdout
    );
    // No listener in headless mode, so no "waiting for the browser" either.
    assert!(
        !f.stderr.contains("Waiting for the browser"),
        "{}",
        f.stderr
    );
    // Not a terminal: no QR code; stdout holds only the result.
    assert!(!f.stdout.contains('█') && !f.stderr.contains('█'), "{f:#?}");
    let seen = emulator.authorize_requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].callback_url, None);
}

#[test]
fn headless_json_events_say_headless_and_carry_no_callback() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let mut run = Run::login(
        &emulator.base_url(),
        home.path(),
        "opencode",
        &["--headless", "--json"],
        &[],
        Stdin::Pipe,
    );
    let ev = run.authorization_event();
    assert_eq!(ev["headless"], true, "{ev}");
    assert!(ev["callback_url"].is_null(), "{ev}");
    let auth = url::Url::parse(ev["url"].as_str().unwrap()).unwrap();
    run.type_line(&code_shown_for(&auth));
    let f = run.finish();
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    let done = f.event("signed_in");
    assert_eq!(done["store"], "opencode");
    assert_eq!(f.stderr, "", "JSON mode prints nothing for humans");
}

#[test]
fn a_pasted_code_with_surrounding_blanks_and_blank_lines_is_accepted() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let mut run = Run::login(
        &emulator.base_url(),
        home.path(),
        "aider",
        &["--headless"],
        &[],
        Stdin::Pipe,
    );
    let auth = run.authorization_url();
    let code = code_shown_for(&auth);
    run.type_line("");
    run.type_line(&format!("  {code}\t"));
    let f = run.finish();
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    assert!(!f.stderr.contains("Not accepted"), "{}", f.stderr);
}

#[test]
fn headless_with_closed_stdin_ends_at_once() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let run = Run::login(
        &emulator.base_url(),
        home.path(),
        "file",
        &["--headless", "--json"],
        &[],
        Stdin::Null,
    );
    let f = run.finish_within(Duration::from_secs(20));
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(f.code, Some(1), "{f:#?}");
    let failed = f.event("failed");
    assert_eq!(failed["error"]["kind"], "no_code_source", "{failed}");
    assert!(emulator.issued_keys().is_empty());
}

#[test]
fn ssh_session_picks_headless_and_says_why() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let store = home.path().join("c.json");
    let spec = format!("file:{}", store.display());
    // A display is set, so only SSH can be the reason.
    let mut run = Run::login(
        &emulator.base_url(),
        home.path(),
        &spec,
        &[],
        // No BROWSER (the harness sets one, which keeps the callback path).
        &[
            ("SSH_CONNECTION", "203.0.113.7 50022 192.0.2.1 22"),
            ("DISPLAY", ":0"),
            ("BROWSER", ""),
        ],
        Stdin::Pipe,
    );
    let why = run.wait_line(Stream::Stderr, |l| l.contains("headless"));
    assert_eq!(
        why,
        "SSH session detected (SSH_CONNECTION is set): using headless sign-in; --no-headless to wait for a browser callback instead."
    );
    let auth = run.authorization_url();
    assert_eq!(query_param(&auth, "callback_url"), None, "{auth}");
    run.type_line(&code_shown_for(&auth));
    let f = run.finish();
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    assert_eq!(stored_key(&store), emulator.issued_keys()[0].key);
}

#[test]
fn ssh_tty_alone_is_enough() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let mut run = Run::login(
        &emulator.base_url(),
        home.path(),
        "file",
        &["--json"],
        &[
            ("SSH_TTY", "/dev/pts/3"),
            ("DISPLAY", ":0"),
            ("BROWSER", ""),
        ],
        Stdin::Pipe,
    );
    let ev = run.authorization_event();
    assert_eq!(ev["headless"], true, "{ev}");
    assert_eq!(
        ev["headless_reason"],
        "SSH session detected (SSH_TTY is set)"
    );
}

/// VS Code Remote over SSH and Codespaces set `BROWSER` to a helper that opens the URL on
/// the user's machine and forwards the port: the callback path is kept.
#[test]
fn a_browser_helper_keeps_the_callback_over_ssh() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    // The harness's BROWSER=true stands for the helper; the test plays the browser.
    let mut run = Run::login(
        &emulator.base_url(),
        home.path(),
        "file",
        &[],
        &[("SSH_CONNECTION", "203.0.113.7 50022 192.0.2.1 22")],
        Stdin::Null,
    );
    let auth = run.authorization_url();
    assert!(query_param(&auth, "callback_url").is_some(), "{auth}");
    Browser::new().follow(&auth);
    let f = run.finish();
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    assert!(!f.stderr.contains("headless"), "{}", f.stderr);
}

#[test]
fn no_headless_overrides_ssh_detection() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    // BROWSER=true (set for every run) makes "opening the browser" a no-op; the test plays
    // the browser itself.
    let mut run = Run::login(
        &emulator.base_url(),
        home.path(),
        "file",
        &["--no-headless"],
        &[("SSH_CONNECTION", "203.0.113.7 50022 192.0.2.1 22")],
        Stdin::Null,
    );
    let auth = run.authorization_url();
    assert!(query_param(&auth, "callback_url").is_some(), "{auth}");
    Browser::new().follow(&auth);
    let f = run.finish();
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    assert!(!f.stderr.contains("SSH session detected"), "{}", f.stderr);
}

#[test]
fn no_browser_turns_detection_off() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let mut run = Run::login(
        &emulator.base_url(),
        home.path(),
        "file",
        &["--no-browser"],
        &[("SSH_CONNECTION", "203.0.113.7 50022 192.0.2.1 22")],
        Stdin::Null,
    );
    let auth = run.authorization_url();
    assert!(query_param(&auth, "callback_url").is_some(), "{auth}");
    Browser::new().follow(&auth);
    let f = run.finish();
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    assert!(!f.stderr.contains("headless"), "{}", f.stderr);
}

#[cfg(target_os = "linux")]
#[test]
fn linux_without_a_display_picks_headless() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    // No SSH, DISPLAY, WAYLAND_DISPLAY or BROWSER in the child's environment.
    let mut run = Run::login(
        &emulator.base_url(),
        home.path(),
        "file",
        &[],
        &[("BROWSER", "")],
        Stdin::Pipe,
    );
    let why = run.wait_line(Stream::Stderr, |l| l.contains("using headless sign-in"));
    // A container marker on the test machine would be named first.
    assert!(
        why.starts_with("no graphical display (neither DISPLAY nor WAYLAND_DISPLAY is set)")
            || why.starts_with("container detected"),
        "{why}"
    );
    let auth = run.authorization_url();
    assert_eq!(query_param(&auth, "callback_url"), None);
    run.type_line(&code_shown_for(&auth));
    assert_eq!(run.finish().code, Some(exit::OK));
}

#[cfg(target_os = "linux")]
#[test]
fn a_display_keeps_the_browser_flow() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    if std::path::Path::new("/.dockerenv").exists()
        || std::path::Path::new("/run/.containerenv").exists()
    {
        eprintln!("skipped: this test machine is a container, which picks headless");
        return;
    }
    let mut run = Run::login(
        &emulator.base_url(),
        home.path(),
        "file",
        &[],
        &[("DISPLAY", ":0")],
        Stdin::Null,
    );
    let auth = run.authorization_url();
    assert!(query_param(&auth, "callback_url").is_some(), "{auth}");
    Browser::new().follow(&auth);
    assert_eq!(run.finish().code, Some(exit::OK));
}

/// On a terminal whose size is not known (script(1) on a pipe gives its terminal no size) no
/// QR code is drawn: it might not fit. `what_the_terminal_shows` covers the code.
#[test]
fn on_a_terminal_headless_reads_the_typed_code() {
    let Some(script) = script_program() else {
        eprintln!("skipped: script(1) from util-linux is not installed");
        return;
    };
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let store = home.path().join("c.json");
    let spec = format!("file:{}", store.display());
    let base = emulator.base_url().to_string();
    let mut run = start_on_tty(
        &script,
        home.path(),
        &["login", "--headless", "--base-url", &base, "--store", &spec],
    );
    let line = run.wait_line(Stream::Stdout, |l| l.contains("/auth?"));
    let auth = url::Url::parse(line.trim()).unwrap();
    run.wait_line(Stream::Stdout, |l| l.contains("Paste it here"));
    run.type_line(&code_shown_for(&auth));
    let f = run.finish();
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    assert_eq!(stored_key(&store), emulator.issued_keys()[0].key);
    assert!(!f.stdout.contains('█'), "{}", f.stdout);
}

/// Ctrl-D at the prompt, in a terminal: the message says the input ended and how to start
/// again, not "run the sign-in in a terminal" to someone who is in one (issue 16).
#[test]
fn ctrl_d_at_the_prompt_on_a_terminal_is_told_as_such() {
    let Some(script) = script_program() else {
        eprintln!("skipped: script(1) from util-linux is not installed");
        return;
    };
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let spec = format!("file:{}", home.path().join("c.json").display());
    let base = emulator.base_url().to_string();
    let mut run = start_on_tty(
        &script,
        home.path(),
        &["login", "--headless", "--base-url", &base, "--store", &spec],
    );
    run.wait_line(Stream::Stdout, |l| l.contains("Paste it here"));
    run.type_line("\u{4}");
    let f = run.finish();
    assert_eq!(f.code, Some(exit::ERROR), "{f:#?}");
    assert!(f.stdout.contains("Ctrl-D"), "{}", f.stdout);
    assert!(f.stdout.contains("again"), "{}", f.stdout);
    assert!(!f.stdout.contains("in a terminal"), "{}", f.stdout);
}

/// Issue 16: one typo does not end a headless sign-in. A mistyped code is refused by
/// OpenRouter (403), the user is told so and pastes the right code, which signs in; the same
/// code_verifier serves both, and only one key is created.
#[test]
fn a_mistyped_code_can_be_pasted_again() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let (mut run, store) = headless_login(&emulator, home.path());
    let auth = run.authorization_url();
    run.wait_line(Stream::Stderr, |l| l.contains("Paste it here"));
    let code = code_shown_for(&auth);
    // One character wrong.
    let typo = format!("{}x", &code[..code.len() - 1]);
    run.type_line(&typo);
    run.wait_line(Stream::Stderr, |l| {
        l.contains("did not accept that code") && l.contains("2 tries left")
    });
    run.type_line(&code);
    let f = run.finish();
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    let issued = emulator.issued_keys();
    assert_eq!(issued.len(), 1, "one key");
    assert_eq!(stored_key(&store), issued[0].key);
    assert_eq!(emulator.exchange_attempts(), 2, "the typo, then the code");
}

/// Issue 15, item 6: a headless sign-in without --limit suggests it in one line; with
/// --limit it does not.
#[test]
fn headless_suggests_a_limit_once() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let spec = format!("file:{}", home.path().join("c.json").display());
    let base = emulator.base_url().to_string();
    for (extra, suggested) in [(&[][..], true), (&["--limit", "3"][..], false)] {
        let mut args = vec!["login", "--headless", "--base-url", &base, "--store", &spec];
        args.extend_from_slice(extra);
        let f = Run::start(home.path(), &args, &[], Stdin::Null).finish();
        let tips: Vec<&str> = f
            .stderr
            .lines()
            .filter(|l| l.contains("--limit USD"))
            .collect();
        assert_eq!(
            tips.len(),
            usize::from(suggested),
            "{extra:?}: {}",
            f.stderr
        );
    }
}
