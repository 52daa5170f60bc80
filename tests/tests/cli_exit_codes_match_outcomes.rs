//! `openrouter-auth` as a process tells scripts what happened through its exit code
//! (io/src/main.rs `EXIT_CODES`, listed in every subcommand's `--help`) and tells people on
//! stderr (or in the JSON `failed` event); the browser gets the right page; a failed sign-in
//! stores nothing, and a key that could not be stored is printed once so it is not lost.
//!
//! 0 signed in · 1 busy port, unusable store · 2 usage (`--json` with `--store stdout`, a base
//! URL without TLS off loopback) · 3 denied in the browser · 4 timed out · 5 the exchange
//! failed (expired code, reused code, 500, 429, 409, a malformed answer) · 6 signed in but the
//! key was not stored · 130 Ctrl-C.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use openrouter_auth_sim::emulator::{Emulator, Fault, Mode, CONSENT_PAGE_TITLE};
use openrouter_auth_tests::{
    emulator, exit, link_by_id, port_is_free, query_param, stored_key, Browser, Cli, Finished,
    Stdin,
};
use tempfile::TempDir;

/// A `login --json` process against `emulator`, with its own home and store path.
struct Login {
    tmp: TempDir,
    store: PathBuf,
    cli: Cli,
}

fn login(emulator: &Emulator, extra: &[&str]) -> Login {
    login_as(emulator, true, extra)
}

/// A `login` process against `emulator` (with `--json` if `json`), with its own home and
/// store path.
fn login_as(emulator: &Emulator, json: bool, extra: &[&str]) -> Login {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("c.json");
    let mut args = Vec::new();
    if json {
        args.push("--json");
    }
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
    assert!(done.body.contains("You declined access"), "{}", done.body);
    assert!(
        !done.body.contains("The user denied access"),
        "OpenRouter's description of a denial only repeats it: {}",
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
        "Sign-in expired",
        "{pages:#?}"
    );
    assert!(pages.last().unwrap().body.contains("Start a new sign-in"));

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

/// Ctrl-C while waiting for the browser: exit 130 at once, "cancelled" on stderr (human mode)
/// or in the `failed` event (`--json`), the port freed, nothing stored.
#[cfg(unix)]
#[test]
fn ctrl_c_while_waiting_exits_130_and_frees_the_port() {
    for json in [true, false] {
        let emulator = emulator(Mode::Redirect);
        let mut run = login_as(&emulator, json, &[]);
        let callback = if json {
            run.cli.authorization_url_json().1
        } else {
            callback_of(&run.cli.authorization_url_human())
        };
        let port = callback.port().expect("the callback names its port");
        assert!(
            !port_is_free(port),
            "the CLI listens on {port} while waiting"
        );

        run.cli.interrupt();
        let started = Instant::now();
        let f = run.cli.finish_within(Duration::from_secs(20));
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "json={json}: {:?}",
            started.elapsed()
        );
        if json {
            assert_failed(&f, &run.store, exit::CANCELLED, "cancelled", "cancelled");
        } else {
            assert_eq!(f.code, Some(exit::CANCELLED), "{f:#?}");
            assert!(f.stderr.contains("cancelled"), "{}", f.stderr);
            assert!(!run.store.exists(), "nothing stored after a cancel");
        }
        assert!(port_is_free(port), "port {port} is freed after Ctrl-C");
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "nothing answers on {port} after Ctrl-C"
        );
        assert!(emulator.authorize_requests().is_empty());
    }
}

/// Issue 12 rule 2: Ctrl-C while the exchange request is out (OpenRouter slow to answer)
/// exits 130 and says a key may have been created, with the link to the key list, in the
/// JSON event (with `may_have_been_sent: true`) and in text.
#[cfg(unix)]
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

/// The `callback_url` carried by a (human-mode) authorization URL.
fn callback_of(auth: &url::Url) -> url::Url {
    url::Url::parse(&query_param(auth, "callback_url").expect("a callback_url parameter"))
        .expect("a callback URL")
}

/// opencode's `auth.json` (under the test home's `XDG_DATA_HOME`) as a symbolic link to a file
/// holding `contents`; returns the link.
#[cfg(unix)]
fn symlinked_auth_json(home: &std::path::Path, contents: &[u8]) -> PathBuf {
    let auth = home.join(".local/share/opencode/auth.json");
    std::fs::create_dir_all(auth.parent().unwrap()).unwrap();
    let target = home.join("managed-auth.json");
    std::fs::write(&target, contents).unwrap();
    std::os::unix::fs::symlink(&target, &auth).unwrap();
    auth
}

/// Asserts the emulator was never asked to sign anyone in: no authorization, no exchange, no
/// key.
fn assert_nothing_signed_in(emulator: &Emulator) {
    assert!(emulator.authorize_requests().is_empty());
    assert_eq!(emulator.exchange_attempts(), 0, "no key may be minted");
    assert!(emulator.issued_keys().is_empty(), "no key may be minted");
}

#[test]
fn busy_port_exits_1_at_once_naming_the_port() {
    let emulator = emulator(Mode::Redirect);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let mut run = login_as(&emulator, false, &["--port", &port]);
    // "At once": before any authorization URL is shown, not after a wait for the browser
    // (no timing asserted: a loaded machine may take seconds to start the binary).
    let f = run.cli.finish_within(Duration::from_secs(60));
    assert!(
        !f.stderr.contains("/auth?") && !f.stdout.contains("/auth?"),
        "{f:#?}"
    );
    assert_eq!(f.code, Some(exit::ERROR), "{}", f.stderr);
    assert!(f.stderr.contains(&port), "{}", f.stderr);
    assert!(f.stderr.contains("already in use"), "{}", f.stderr);
    assert_nothing_signed_in(&emulator);
}

#[test]
fn signed_in_exits_0_and_says_where() {
    let emulator = emulator(Mode::Redirect);
    let mut run = login_as(&emulator, false, &[]);
    let pages = Browser::new().follow(&run.cli.authorization_url_human());
    let last = pages.last().unwrap();
    assert!(
        last.body.contains("Signed in to OpenRouter"),
        "{}",
        last.body
    );
    let f = run.cli.finish();
    assert_eq!(f.code, Some(exit::OK), "{}", f.stderr);
    // Where the key went is the result: on stdout (issue 16).
    assert!(
        f.stdout.contains(&run.store.display().to_string()),
        "{}",
        f.stdout
    );
    assert!(f.stdout.contains("mode 0600"), "{}", f.stdout);
    assert!(
        !f.stdout.contains(&emulator.issued_keys()[0].key),
        "{}",
        f.stdout
    );
    #[cfg(unix)]
    assert_eq!(openrouter_auth_tests::file_mode(&run.store), 0o600);
    assert_eq!(stored_key(&run.store), emulator.issued_keys()[0].key);
}

/// The browser comes back with `error=access_denied` (RFC 6749 section 4.1.2.1): a 303 to the
/// clean `/done` URL, a page saying so, exit 3 with the reason on stderr, no exchange.
#[test]
fn denied_exits_3_and_says_so_on_stderr() {
    let emulator = emulator(Mode::Redirect);
    let mut run = login_as(&emulator, false, &[]);
    let callback = callback_of(&run.cli.authorization_url_human());
    let mut denied = callback.clone();
    denied
        .query_pairs_mut()
        .append_pair("error", "access_denied");
    let pages = Browser::new().follow(&denied);
    let statuses: Vec<u16> = pages.iter().map(|p| p.status).collect();
    assert_eq!(statuses, [303, 200], "{pages:#?}");
    assert_eq!(
        pages[0].location.as_ref().map(|l| l.path().to_owned()),
        Some(format!("{}/done", callback.path()))
    );
    assert_eq!(
        pages[1].url.query(),
        None,
        "nothing of the error in the URL"
    );
    assert!(
        pages[1].body.contains("You declined access"),
        "{}",
        pages[1].body
    );
    let f = run.cli.finish();
    assert_eq!(f.code, Some(exit::DENIED), "{}", f.stderr);
    assert!(f.stderr.contains("access was denied"), "{}", f.stderr);
    assert_eq!(emulator.exchange_attempts(), 0);
    assert!(!run.store.exists());
}

#[cfg(unix)]
#[test]
fn symlinked_store_exits_1_before_signing_in() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let auth = symlinked_auth_json(home.path(), b"{}\n");
    let started = Instant::now();
    let mut cli = Cli::login(&emulator, home.path(), "opencode", &[]);
    let f = cli.finish_within(Duration::from_secs(5));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(f.code, Some(exit::ERROR), "{}", f.stderr);
    assert!(f.stderr.contains("symbolic link"), "{}", f.stderr);
    assert!(f.stderr.contains("nothing was signed in"), "{}", f.stderr);
    assert!(
        !f.stderr.contains("http://"),
        "no authorization URL: {}",
        f.stderr
    );
    assert_nothing_signed_in(&emulator);
    assert!(std::fs::symlink_metadata(&auth).unwrap().is_symlink());
    assert_eq!(std::fs::read(&auth).unwrap(), b"{}\n");
}

#[cfg(target_os = "linux")]
#[test]
fn unwritable_store_directory_exits_1_before_signing_in() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let locked = home.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    let Some(_guard) = openrouter_auth_tests::Chattr::set(&locked, 'i') else {
        eprintln!("skipped: chattr +i is not available here");
        return;
    };
    let store = format!("file:{}", locked.join("credentials.json").display());
    let mut cli = Cli::login(&emulator, home.path(), &store, &[]);
    let f = cli.finish_within(Duration::from_secs(5));
    assert_eq!(f.code, Some(exit::ERROR), "{}", f.stderr);
    assert!(
        f.stderr.contains(&locked.display().to_string()),
        "{}",
        f.stderr
    );
    assert!(f.stderr.contains("nothing was signed in"), "{}", f.stderr);
    assert_nothing_signed_in(&emulator);
    assert_eq!(std::fs::read_dir(&locked).unwrap().count(), 0);
}

#[cfg(unix)]
#[test]
fn key_not_stored_exits_6_and_prints_the_key_once() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let mut cli = Cli::login(&emulator, home.path(), "opencode", &[]);
    let auth_url = cli.authorization_url_human();
    // The store breaks while the browser is open: auth.json becomes a symbolic link, which
    // the store refuses to replace. (Broken from the start, it is refused before signing in.)
    let auth = symlinked_auth_json(home.path(), b"{}\n");
    let pages = Browser::new().follow(&auth_url);
    let last = pages.last().unwrap();
    assert!(
        last.body.contains("the key was not stored"),
        "{}",
        last.body
    );
    let f = cli.finish();
    assert_eq!(f.code, Some(exit::KEY_NOT_STORED), "{}", f.stderr);
    let key = emulator.issued_keys()[0].key.clone();
    assert_eq!(f.stdout, format!("{key}\n"), "the key, alone, on stdout");
    assert!(!f.stderr.contains(&key), "{}", f.stderr);
    assert!(f.stderr.contains("auth.json"), "{}", f.stderr);
    assert_eq!(std::fs::read(&auth).unwrap(), b"{}\n");
}

#[cfg(unix)]
#[test]
fn key_not_stored_with_json_puts_the_key_in_the_failed_event() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let mut cli = Cli::login(&emulator, home.path(), "opencode", &["--json"]);
    let (auth_url, _) = cli.authorization_url_json();
    symlinked_auth_json(home.path(), b"{}");
    Browser::new().follow(&auth_url);
    let f = cli.finish();
    assert_eq!(f.code, Some(exit::KEY_NOT_STORED), "{}", f.stderr);
    let key = emulator.issued_keys()[0].key.clone();
    let events = f.json_events();
    let failed = events.last().unwrap();
    assert_eq!(failed["event"], "failed", "{failed}");
    assert_eq!(failed["error"]["kind"], "key_not_stored", "{failed}");
    assert_eq!(failed["key"], key.as_str(), "{failed}");
    assert_eq!(f.stdout.matches(&key).count(), 1, "{}", f.stdout);
    assert!(!f.stderr.contains(&key), "{}", f.stderr);
}

#[test]
fn stdout_store_prints_only_the_key() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let mut cli = Cli::login(&emulator, home.path(), "stdout", &[]);
    let pages = Browser::new().follow(&cli.authorization_url_human());
    let last = pages.last().unwrap();
    assert!(
        last.body.contains("Signed in to OpenRouter"),
        "{}",
        last.body
    );
    let f = cli.finish();
    assert_eq!(f.code, Some(exit::OK), "{}", f.stderr);
    let key = emulator.issued_keys()[0].key.clone();
    assert_eq!(f.stdout, format!("{key}\n"));
    assert!(!f.stderr.contains(&key), "{}", f.stderr);
    assert!(
        f.stderr.contains("printed to standard output"),
        "{}",
        f.stderr
    );
}

/// `--json` promises one JSON object per line on stdout and `--store stdout` the bare key:
/// together they would give a reader a line it cannot parse. Refused before any sign-in.
#[test]
fn json_with_the_stdout_store_is_a_usage_error_before_signing_in() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let f = Cli::login(&emulator, home.path(), "stdout", &["--json"]).finish();
    assert_eq!(f.code, Some(2), "{f:?}");
    let lines = f.json_events();
    assert_eq!(lines.len(), 1, "{}", f.stdout);
    assert_eq!(lines[0]["event"], "failed");
    assert_eq!(lines[0]["error"]["kind"], "usage");
    assert_nothing_signed_in(&emulator);
}

/// Each subcommand's `--help` lists the exit codes (what `login --help` shows is what a user
/// reads; the top-level help is not enough).
#[test]
fn every_subcommand_help_lists_the_exit_codes() {
    let home = tempfile::tempdir().unwrap();
    for sub in ["login", "status", "logout", "token"] {
        let f = Cli::spawn(home.path(), [sub, "--help"]).finish();
        assert_eq!(f.code, Some(exit::OK), "{sub}: {f:?}");
        let help = f.stdout;
        for line in [
            "Exit codes:",
            "  6    signed in but the key could not be stored",
            "  8    no key stored (status, token)",
            "  130  cancelled (Ctrl-C)",
        ] {
            assert!(help.contains(line), "{sub} --help lacks {line:?}:\n{help}");
        }
    }
}

/// `--base-url` (or `OPENROUTER_AUTH_BASE_URL`) must be https, or plain http on loopback (an
/// emulator): otherwise `status` would send the stored key, and `login` the code verifier, in
/// clear text. Refused as a usage error before anything is read or sent.
#[test]
fn a_base_url_without_tls_off_loopback_is_a_usage_error() {
    let home = tempfile::tempdir().unwrap();
    let cli = |args: &[&str], env_url: Option<&str>| {
        let env: Vec<(&str, &str)> = env_url
            .map(|u| ("OPENROUTER_AUTH_BASE_URL", u))
            .into_iter()
            .collect();
        Cli::start(home.path(), args, &env, Stdin::Null).finish()
    };
    for url in [
        "http://example.com",
        "ftp://127.0.0.1",
        "http://10.0.0.1:8080",
    ] {
        for args in [
            &["status", "--base-url", url][..],
            &["login", "--headless", "--base-url", url][..],
        ] {
            let f = cli(args, None);
            assert_eq!(f.code, Some(2), "{args:?}: {}", f.stderr);
            assert!(f.stderr.contains("https URL"), "{}", f.stderr);
        }
        let f = cli(&["status"], Some(url));
        assert_eq!(f.code, Some(2), "env {url}: {f:?}");
    }
    // Loopback http (the emulator) and https are fine: nothing stored, exit 8.
    for url in [
        "http://127.0.0.1:9",
        "http://localhost:9",
        "http://[::1]:9",
        "https://openrouter.ai",
    ] {
        let f = cli(&["status", "--base-url", url], None);
        assert_eq!(f.code, Some(8), "{url}: {f:?}");
    }
}

/// A system trust store without one usable certificate: no request could reach OpenRouter
/// over HTTPS. The command says so at once (the HTTP client is built once the URL is out, and
/// its failure ends the login) instead of waiting for a browser whose code could never be
/// exchanged; it exits 1 and stores nothing. (A plain-http loopback base URL, the emulator,
/// needs no trust store: nothing listens at this one, and nothing is sent to it.)
#[test]
fn an_unusable_trust_store_ends_the_login_at_once_with_exit_1() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("c.json");
    // A PEM block whose bytes are no certificate (a DER `SEQUENCE { INTEGER 0 }`).
    let certs = tmp.path().join("broken.pem");
    std::fs::write(
        &certs,
        "-----BEGIN CERTIFICATE-----\nMAMCAQA=\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    let no_certs = tmp.path().join("certs");
    std::fs::create_dir(&no_certs).unwrap();
    let base = "https://localhost:9/";
    let spec = format!("file:{}", store.display());
    let cli = Cli::start(
        tmp.path(),
        &[
            "login",
            "--json",
            "--no-browser",
            "--base-url",
            base,
            "--store",
            &spec,
        ],
        &[
            ("SSL_CERT_FILE", certs.to_str().unwrap()),
            ("SSL_CERT_DIR", no_certs.to_str().unwrap()),
        ],
        Stdin::Null,
    );
    let f = cli.finish();
    assert_failed(
        &f,
        &store,
        exit::ERROR,
        "http_client",
        "could not set up HTTPS",
    );
}
