//! `openrouter-auth login` as a process: every way a sign-in can fail ends with its documented
//! exit code (io/src/main.rs `EXIT_CODES`), a message that says what happened, the right page in
//! the browser, and no key stored.
//!
//! 3 denied in the browser · 4 timed out · 5 the exchange failed (expired code, reused code,
//! 500, 429, 409, a malformed answer) · 130 Ctrl-C.
#![cfg(unix)]

use std::path::PathBuf;
use std::time::{Duration, Instant};

use openrouter_auth_sim::emulator::{Emulator, Fault, Mode, CONSENT_PAGE_TITLE};
use openrouter_auth_tests::{
    emulator, exit, link_by_id, port_is_free, query_param, stored_key, Browser, Cli, Finished,
};
use tempfile::TempDir;

/// A `login --json` process against `emulator`, with its own home and store path.
struct Login {
    tmp: TempDir,
    store: PathBuf,
    cli: Cli,
}

fn login(emulator: &Emulator, extra: &[&str]) -> Login {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("c.json");
    let mut args = vec!["--json"];
    args.extend_from_slice(extra);
    let cli = Cli::login(
        emulator,
        tmp.path(),
        &format!("file:{}", store.display()),
        &args,
    );
    Login { tmp, store, cli }
}

/// Asserts the exit code, the JSON `failed` event's kind, and that its message mentions
/// `needle`; and that nothing was stored.
fn assert_failed(f: &Finished, store: &std::path::Path, code: i32, kind: &str, needle: &str) {
    assert_eq!(f.code, Some(code), "{f:#?}");
    let ev = f.event("failed");
    assert_eq!(ev["error"]["kind"], kind, "{ev}");
    let message = ev["error"]["message"].as_str().expect("a message");
    assert!(
        message.to_lowercase().contains(&needle.to_lowercase()),
        "the message should mention {needle:?}: {message:?}"
    );
    assert!(ev.get("key").is_none(), "no key to hand over: {ev}");
    assert!(!store.exists(), "nothing may be stored after {kind}");
}

#[test]
fn deny_on_the_consent_page_exits_3() {
    let emulator = emulator(Mode::Consent);
    let mut run = login(&emulator, &[]);
    let (auth, callback) = run.cli.authorization_url_json();

    let browser = Browser::new();
    let consent = browser.get(&auth);
    assert_eq!(consent.status, 200);
    assert!(
        consent.body.contains(CONSENT_PAGE_TITLE),
        "{}",
        consent.body
    );
    let pages = browser.follow(&link_by_id(&consent, "deny"));
    // Like a code, the error on the callback is answered with a 303 to the clean /done URL,
    // so `error` and `error_description` leave the address bar; /done shows the denial.
    let statuses: Vec<u16> = pages.iter().map(|p| p.status).collect();
    assert_eq!(statuses, [302, 303, 200], "{pages:#?}");
    assert_eq!(pages[1].url.path(), callback.path());
    assert_eq!(
        query_param(&pages[1].url, "error").as_deref(),
        Some("access_denied")
    );
    let done = &pages[2];
    assert_eq!(done.url.path(), format!("{}/done", callback.path()));
    assert_eq!(
        done.url.query(),
        None,
        "the error stays out of the final URL"
    );
    assert_eq!(done.heading(), "Sign-in cancelled");
    assert!(done.body.contains("Access was denied"), "{}", done.body);
    assert!(
        done.body.contains("The user denied access"),
        "OpenRouter's error_description is shown: {}",
        done.body
    );

    let f = run.cli.finish();
    assert_failed(&f, &run.store, exit::DENIED, "denied", "access was denied");
    assert!(emulator.issued_keys().is_empty());
    assert_eq!(
        emulator.exchange_attempts(),
        0,
        "a denial exchanges nothing"
    );
}

#[test]
fn no_browser_within_timeout_exits_4() {
    let emulator = emulator(Mode::Redirect);
    let started = Instant::now();
    let mut run = login(&emulator, &["--timeout", "1"]);
    let (_, callback) = run.cli.authorization_url_json();
    let f = run.cli.finish();
    assert_failed(
        &f,
        &run.store,
        exit::TIMED_OUT,
        "timed_out",
        "timed out after 1 s",
    );
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "a 1 s timeout took {:?}",
        started.elapsed()
    );
    let port = callback.port().expect("the callback names its port");
    assert!(port_is_free(port), "port {port} is freed after the timeout");
    assert!(emulator.authorize_requests().is_empty());
}

#[test]
fn code_used_after_ten_minutes_exits_5_expired() {
    let emulator = emulator(Mode::Redirect);
    let mut run = login(&emulator, &[]);
    let (auth, _) = run.cli.authorization_url_json();

    let browser = Browser::new();
    let authorize = browser.get(&auth);
    assert_eq!(authorize.status, 302);
    let callback_with_code = authorize.location.expect("a redirect to the callback");
    emulator.advance_clock(Duration::from_secs(11 * 60));
    let pages = browser.follow(&callback_with_code);
    assert_eq!(
        pages.last().unwrap().heading(),
        "Sign-in failed",
        "{pages:#?}"
    );
    assert!(pages.last().unwrap().body.contains("expired"));

    let f = run.cli.finish();
    assert_failed(
        &f,
        &run.store,
        exit::EXCHANGE_FAILED,
        "code_expired",
        "expired",
    );
    assert!(emulator.issued_keys().is_empty());
}

#[test]
fn code_already_exchanged_exits_5_invalid_code() {
    let emulator = emulator(Mode::Redirect);
    let browser = Browser::new();

    // First login: complete, and remember its code.
    let mut first = login(&emulator, &[]);
    let (auth, _) = first.cli.authorization_url_json();
    let pages = browser.follow(&auth);
    assert_eq!(pages.last().unwrap().heading(), "Signed in to OpenRouter");
    let used_code = query_param(&pages[1].url, "code").expect("the callback carried a code");
    let f = first.cli.finish();
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    let issued = emulator.issued_keys();
    assert_eq!(issued.len(), 1);

    // Second login: its own callback path, with the first login's (spent) code.
    let mut second = login(&emulator, &[]);
    let (_, callback) = second.cli.authorization_url_json();
    let mut replay = callback.clone();
    replay.query_pairs_mut().append_pair("code", &used_code);
    let pages = browser.follow(&replay);
    assert_eq!(
        pages.last().unwrap().heading(),
        "Sign-in failed",
        "{pages:#?}"
    );

    let f = second.cli.finish();
    assert_failed(
        &f,
        &second.store,
        exit::EXCHANGE_FAILED,
        "invalid_code",
        "invalid code",
    );
    assert_eq!(emulator.issued_keys(), issued, "no second key");
    assert_eq!(
        stored_key(&first.store),
        issued[0].key,
        "the first key is untouched"
    );
}

/// Runs a login whose exchange meets `fault` and returns how it ended.
fn login_with_fault(emulator: &Emulator, fault: Fault) -> (Finished, PathBuf, TempDir) {
    emulator.inject_fault(fault);
    let mut run = login(emulator, &[]);
    let (auth, _) = run.cli.authorization_url_json();
    let pages = Browser::new().follow(&auth);
    let statuses: Vec<u16> = pages.iter().map(|p| p.status).collect();
    assert_eq!(statuses, [302, 303, 200], "{pages:#?}");
    assert_eq!(pages[2].heading(), "Sign-in failed", "{}", pages[2].body);
    (run.cli.finish(), run.store, run.tmp)
}

#[test]
fn server_error_exits_5_without_retrying() {
    let emulator = emulator(Mode::Redirect);
    let (f, store, _tmp) = login_with_fault(&emulator, Fault::InternalError);
    assert_failed(
        &f,
        &store,
        exit::EXCHANGE_FAILED,
        "server_error",
        "server error (500)",
    );
    assert_eq!(
        emulator.exchange_attempts(),
        1,
        "a request that reached OpenRouter is not retried"
    );
    assert!(emulator.issued_keys().is_empty());
}

#[test]
fn rate_limited_exits_5_and_says_how_long_to_wait() {
    let emulator = emulator(Mode::Redirect);
    let (f, store, _tmp) = login_with_fault(
        &emulator,
        Fault::RateLimited {
            retry_after_secs: 7,
        },
    );
    assert_failed(&f, &store, exit::EXCHANGE_FAILED, "rate_limited", "7 s");
    assert!(f.event("failed")["error"]["message"]
        .as_str()
        .unwrap()
        .contains("429"));
    assert!(emulator.issued_keys().is_empty());
}

#[test]
fn conflict_exits_5() {
    let emulator = emulator(Mode::Redirect);
    let (f, store, _tmp) = login_with_fault(&emulator, Fault::Conflict);
    assert_failed(&f, &store, exit::EXCHANGE_FAILED, "conflict", "409");
    assert!(emulator.issued_keys().is_empty());
}

#[test]
fn malformed_answer_exits_5_and_warns_a_key_may_exist() {
    let emulator = emulator(Mode::Redirect);
    let (f, store, _tmp) = login_with_fault(&emulator, Fault::MalformedJson);
    assert_failed(
        &f,
        &store,
        exit::EXCHANGE_FAILED,
        "missing_key",
        "a key may have been created",
    );
    // The emulator did create one: the warning is true.
    assert_eq!(emulator.issued_keys().len(), 1);
    assert!(!f.stdout.contains(&emulator.issued_keys()[0].key));
}

#[test]
fn ctrl_c_while_waiting_exits_130_and_frees_the_port() {
    let emulator = emulator(Mode::Redirect);
    let mut run = login(&emulator, &[]);
    let (_, callback) = run.cli.authorization_url_json();
    let port = callback.port().expect("the callback names its port");
    assert!(
        !port_is_free(port),
        "the CLI listens on {port} while waiting"
    );

    run.cli.interrupt();
    let f = run.cli.finish_within(Duration::from_secs(20));
    assert_failed(&f, &run.store, exit::CANCELLED, "cancelled", "cancelled");
    assert!(port_is_free(port), "port {port} is freed after Ctrl-C");
    assert!(emulator.authorize_requests().is_empty());
}

/// Issue 12 rule 2: Ctrl-C while the exchange request is out (OpenRouter slow to answer)
/// exits 130 and says a key may have been created, with the link to the key list, in the
/// JSON event (with `may_have_been_sent: true`) and in text.
#[test]
fn ctrl_c_during_the_exchange_warns_a_key_may_exist() {
    for json in [true, false] {
        let emulator = emulator(Mode::Redirect);
        emulator.inject_fault(Fault::Slow(Duration::from_secs(15)));
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path().join("c.json");
        let mut args = Vec::new();
        if json {
            args.push("--json");
        }
        let mut cli = Cli::login(
            &emulator,
            tmp.path(),
            &format!("file:{}", store.display()),
            &args,
        );
        let auth = if json {
            cli.authorization_url_json().0
        } else {
            cli.authorization_url_human()
        };
        // The browser's tab is held while the exchange runs.
        let tab = std::thread::spawn(move || Browser::new().follow(&auth));
        let started = Instant::now();
        while emulator.exchange_attempts() == 0 {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "no exchange arrived"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        cli.interrupt();
        let f = cli.finish_within(Duration::from_secs(20));
        assert_eq!(f.code, Some(exit::CANCELLED), "{f:#?}");
        let message = if json {
            let ev = f.event("failed");
            assert_eq!(ev["error"]["kind"], "cancelled", "{ev}");
            assert_eq!(ev["error"]["may_have_been_sent"], true, "{ev}");
            ev["error"]["message"]
                .as_str()
                .expect("a message")
                .to_owned()
        } else {
            f.stderr.clone()
        };
        assert!(
            message.contains("a key may have been created")
                && message.contains("https://openrouter.ai/keys"),
            "json={json}: {message}"
        );
        assert!(!store.exists(), "nothing stored after a cancel");
        let pages = tab.join().unwrap();
        assert_eq!(
            pages.last().map(|p| p.heading().to_owned()),
            Some("Sign-in cancelled".to_owned())
        );
    }
}
