//! Issue 12, rule 4: nothing from OpenRouter or a file reaches the terminal raw. A key label
//! that OpenRouter reports (renamed on its key page, or from a hostile stand-in) holding escape
//! sequences that set the window title and clear the screen, a C1 CSI and a bidi override, and
//! a store path holding an escape sequence, are shown escaped in text mode: the output holds no
//! control character but its own line breaks. `--json` keeps the exact value, JSON-escaped.
#![cfg(unix)]

use openrouter_auth_sim::emulator::{Emulator, Mode};
use openrouter_auth_tests::{emulator, exit, stored_key, Browser, Cli, Finished};
use std::path::Path;

/// OSC 0 (window title) ended by BEL, CSI 2 J (clear screen), C1 CSI, RIGHT-TO-LEFT OVERRIDE.
const HOSTILE: &str = "\x1b]0;pwned\x07\x1b[2J\u{9b}31m\u{202e}evil";
/// How the text output shows it.
const SHOWN: &str = r"\u{1b}]0;pwned\u{7}\u{1b}[2J\u{9b}31m\u{202e}evil";

/// Every character a terminal may act on instead of showing it, except `\n`: C0 (ESC, BEL,
/// CR, …), DEL, C1, and the bidi embeddings, overrides and isolates.
fn raw_controls(text: &str) -> Vec<char> {
    text.chars()
        .filter(|&c| {
            (c.is_control() && c != '\n')
                || ('\u{202a}'..='\u{202e}').contains(&c)
                || ('\u{2066}'..='\u{2069}').contains(&c)
        })
        .collect()
}

fn assert_nothing_raw(f: &Finished) {
    for (name, text) in [("stdout", &f.stdout), ("stderr", &f.stderr)] {
        let raw = raw_controls(text);
        assert!(
            raw.is_empty(),
            "{name} holds raw control characters {raw:?}:\n{text:?}"
        );
    }
}

fn login(emulator: &Emulator, home: &Path, store: &str, json: bool) -> Finished {
    let mut run = Cli::login(emulator, home, store, if json { &["--json"] } else { &[] });
    let url = if json {
        run.authorization_url_json().0
    } else {
        run.authorization_url_human()
    };
    Browser::new().follow(&url);
    let f = run.finish();
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    f
}

fn status(emulator: &Emulator, home: &Path, store: &str, json: bool) -> Finished {
    let base = emulator.base_url().to_string();
    let mut args = vec!["status", "--base-url", &base, "--store", store];
    if json {
        args.push("--json");
    }
    let f = Cli::spawn(home, args).finish();
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    f
}

#[test]
fn a_hostile_key_label_is_shown_escaped_after_login_and_in_status() {
    let emulator = emulator(Mode::Redirect);
    emulator.set_reported_label(Some(HOSTILE));
    let home = tempfile::tempdir().unwrap();
    let spec = format!("file:{}", home.path().join("c.json").display());

    let f = login(&emulator, home.path(), &spec, false);
    assert_nothing_raw(&f);
    let line = format!("  label:     {SHOWN}\n");
    // The key info is a result: on stdout (issue 16).
    assert!(f.stdout.contains(&line), "no {line:?} in:\n{}", f.stdout);

    let f = status(&emulator, home.path(), &spec, false);
    assert_nothing_raw(&f);
    // The key info is a result: on stdout (issue 16).
    assert!(f.stdout.contains(&line), "no {line:?} in:\n{}", f.stdout);
}

#[test]
fn json_output_keeps_the_exact_label_and_holds_no_raw_control() {
    let emulator = emulator(Mode::Redirect);
    emulator.set_reported_label(Some(HOSTILE));
    let home = tempfile::tempdir().unwrap();
    let spec = format!("file:{}", home.path().join("c.json").display());

    let f = login(&emulator, home.path(), &spec, true);
    assert_nothing_raw(&f);
    let done = f.event("signed_in");
    assert_eq!(done["key_check"]["label"], HOSTILE, "{done}");

    let f = status(&emulator, home.path(), &spec, true);
    assert_nothing_raw(&f);
    assert_eq!(f.event("status")["label"], HOSTILE, "{}", f.stdout);
}

#[test]
fn a_store_path_with_an_escape_sequence_is_shown_escaped() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let dir = home.path().join("keys\x1b]0;pwned\x07");
    std::fs::create_dir(&dir).unwrap();
    let store = dir.join("c.json");
    let spec = format!("file:{}", store.display());

    let f = login(&emulator, home.path(), &spec, false);
    assert_nothing_raw(&f);
    assert!(
        f.stdout.contains(r"keys\u{1b}]0;pwned\u{7}"),
        "the path is shown, escaped:\n{}",
        f.stdout
    );
    assert!(stored_key(&store).starts_with("sk-or-v1-"));

    let f = status(&emulator, home.path(), &spec, true);
    assert_nothing_raw(&f);
    assert!(
        f.event("status")["store"]
            .as_str()
            .is_some_and(|s| s.contains("keys\x1b]0;pwned\x07")),
        "--json names the exact path:\n{}",
        f.stdout
    );
}
