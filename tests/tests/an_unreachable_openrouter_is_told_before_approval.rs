//! Issue 16: with an unreachable OpenRouter, `login` says so while the URL is on screen,
//! before anyone approves, naming the address and why; in `--json` as its own event.
#![cfg(unix)]

use openrouter_auth_tests::{Cli, Stdin, Stream};

/// `login` (with `extra` flags) against a base URL where nothing listens: a port that was
/// just free. Returns the running command and that base URL.
fn login_against_nothing(home: &std::path::Path, extra: &[&str]) -> (Cli, String) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://127.0.0.1:{}", l.local_addr().unwrap().port());
    drop(l);
    let spec = format!("file:{}", home.join("c.json").display());
    let mut args = vec![
        "login",
        "--no-browser",
        "--base-url",
        &base,
        "--store",
        &spec,
    ];
    args.extend_from_slice(extra);
    let run = Cli::start(home, &args, &[], Stdin::Null);
    (run, base)
}

#[test]
fn login_warns_about_an_unreachable_openrouter_while_the_url_is_shown() {
    let home = tempfile::tempdir().unwrap();
    let (mut run, base) = login_against_nothing(home.path(), &[]);
    run.authorization_url_human();
    // Nobody approves: the warning comes anyway, with the address and the reason.
    let line = run.wait_line(Stream::Stderr, |l| l.contains("cannot be reached"));
    assert!(line.contains(&base), "{line}");
    assert!(
        line.contains("was refused"),
        "says why, in plain words: {line}"
    );
    assert!(line.contains("connect"), "says why: {line}");
    run.interrupt();
    let _ = run.finish();
}

#[test]
fn json_carries_the_unreachable_event() {
    let home = tempfile::tempdir().unwrap();
    let (mut run, base) = login_against_nothing(home.path(), &["--json"]);
    let line = run.wait_line(Stream::Stdout, |l| l.contains("openrouter_unreachable"));
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(event["schema"], 1, "{event}");
    assert_eq!(
        event["base_url"].as_str().unwrap().trim_end_matches('/'),
        base
    );
    assert!(
        event["reason"].as_str().unwrap().contains("connect"),
        "{event}"
    );
    run.interrupt();
    let _ = run.finish();
}
