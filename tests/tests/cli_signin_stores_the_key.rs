//! `openrouter-auth login` as a process against the emulator, with a scripted browser: a
//! successful sign-in stores exactly the key the emulator issued (mode 0600), `--store stdout`
//! prints exactly the key, and a key that cannot be stored is printed once and exits 6.
#![cfg(unix)]

use std::path::{Path, PathBuf};

use openrouter_auth_sim::emulator::Mode;
use openrouter_auth_tests::{
    emulator, exit, file_mode, query_param, stored_key, Browser, Cli, Stream,
};

#[test]
fn login_stores_the_issued_key_with_mode_0600() {
    let emulator = emulator(Mode::Redirect);
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("c.json");
    let spec = format!("file:{}", store.display());
    let mut cli = Cli::login(&emulator, tmp.path(), &spec, &["--json"]);

    let (auth, callback) = cli.authorization_url_json();
    assert_eq!(auth.origin(), emulator.base_url().origin());
    assert_eq!(auth.path(), "/auth");
    assert_eq!(
        query_param(&auth, "callback_url").as_deref(),
        Some(callback.as_str())
    );
    assert_eq!(
        query_param(&auth, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert_eq!(callback.scheme(), "http");
    assert_eq!(callback.host_str(), Some("localhost"));
    assert!(callback.path().starts_with("/callback/"), "{callback}");

    // The browser: authorize (302) → our callback (303) → /done (200).
    let pages = Browser::new().follow(&auth);
    let statuses: Vec<u16> = pages.iter().map(|p| p.status).collect();
    assert_eq!(statuses, [302, 303, 200], "{pages:#?}");
    assert_eq!(pages[1].url.path(), callback.path());
    let code = query_param(&pages[1].url, "code").expect("the callback carries a code");
    let done = &pages[2];
    assert_eq!(done.url.path(), format!("{}/done", callback.path()));
    assert_eq!(
        done.url.query(),
        None,
        "the code stays out of the final URL"
    );
    assert_eq!(done.heading(), "Signed in to OpenRouter");

    let f = cli.finish();
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    let issued = emulator.issued_keys();
    assert_eq!(issued.len(), 1, "one flow, one key");
    let key = &issued[0].key;
    assert_eq!(&stored_key(&store), key);
    assert_eq!(file_mode(&store), 0o600);
    assert!(
        issued[0].label.starts_with("openrouter-auth"),
        "the default key label names the program: {:?}",
        issued[0].label
    );
    assert!(
        done.body
            .replace("<wbr>", "")
            .contains(&store.display().to_string()),
        "the page says where the key went"
    );

    let ev = f.event("signed_in");
    assert_eq!(ev["location"], store.display().to_string());
    assert_eq!(ev["store"], spec);
    assert_eq!(ev["user_id"], issued[0].user_id);
    assert!(ev.get("key").is_none(), "a stored key is not printed: {ev}");
    for (name, text) in [("stdout", &f.stdout), ("stderr", &f.stderr)] {
        assert!(!text.contains(key.as_str()), "the key leaked to {name}");
        assert!(!text.contains(&code), "the code leaked to {name}");
    }
}

#[test]
fn store_stdout_prints_exactly_the_key_and_a_newline() {
    let emulator = emulator(Mode::Redirect);
    let tmp = tempfile::tempdir().unwrap();
    let mut cli = Cli::login(
        &emulator,
        tmp.path(),
        "stdout",
        &["--key-label", "e2e test key"],
    );

    let auth = cli.authorization_url_human();
    let pages = Browser::new().follow(&auth);
    assert_eq!(
        pages.last().unwrap().heading(),
        "Signed in to OpenRouter",
        "{pages:#?}"
    );

    let f = cli.finish();
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    let issued = emulator.issued_keys();
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].label, "e2e test key");
    assert_eq!(f.stdout, format!("{}\n", issued[0].key));
    assert!(!f.stderr.contains(&issued[0].key), "{}", f.stderr);
    assert!(f.stderr.contains("Signed in."), "{}", f.stderr);
}

/// A store path that is fine when the login starts (so the store's pre-flight check passes)
/// and that [`break_store`] makes unwritable while the login waits for the browser.
fn store_in_dir(tmp: &Path) -> PathBuf {
    let dir = tmp.join("store-dir");
    std::fs::create_dir(&dir).unwrap();
    dir.join("c.json")
}

/// Replaces the store's directory by a regular file: no file can be written there any more
/// (permissions would not do: the tests may run as root).
fn break_store(store: &Path) {
    let dir = store.parent().unwrap();
    std::fs::remove_dir(dir).unwrap();
    std::fs::write(dir, "a file, not a directory\n").unwrap();
}

#[test]
fn key_that_cannot_be_stored_is_printed_once_and_exits_6() {
    let emulator = emulator(Mode::Redirect);
    let tmp = tempfile::tempdir().unwrap();
    let store = store_in_dir(tmp.path());
    let spec = format!("file:{}", store.display());
    let mut cli = Cli::login(&emulator, tmp.path(), &spec, &[]);

    let auth = cli.authorization_url_human();
    break_store(&store);
    let pages = Browser::new().follow(&auth);
    let last = pages.last().unwrap();
    assert_eq!(last.heading(), "Signed in, but the key was not stored");

    let f = cli.finish();
    assert_eq!(f.code, Some(exit::KEY_NOT_STORED), "{f:#?}");
    let issued = emulator.issued_keys();
    assert_eq!(issued.len(), 1);
    let key = &issued[0].key;
    // Human mode: stdout is the key and nothing else; stderr says why and that it is unsaved.
    assert_eq!(f.stdout, format!("{key}\n"));
    assert!(!f.stderr.contains(key.as_str()), "{}", f.stderr);
    assert!(
        f.stderr
            .contains("signed in, but the key could not be stored"),
        "{}",
        f.stderr
    );
    assert!(f.stderr.contains("keep it now"), "{}", f.stderr);
    // No internal temporary file name, no cause told twice (issue 16).
    assert!(!f.stderr.contains(".c.json."), "{}", f.stderr);
    assert!(!f.stderr.contains("os error"), "{}", f.stderr);
    assert!(!store.exists());
    assert!(
        !last.body.contains(key.as_str()),
        "the key is never on the page"
    );
}

#[test]
fn key_that_cannot_be_stored_is_in_the_json_failure_event_once() {
    let emulator = emulator(Mode::Redirect);
    let tmp = tempfile::tempdir().unwrap();
    let store = store_in_dir(tmp.path());
    let spec = format!("file:{}", store.display());
    let mut cli = Cli::login(&emulator, tmp.path(), &spec, &["--json"]);

    let (auth, _) = cli.authorization_url_json();
    break_store(&store);
    Browser::new().follow(&auth);

    let f = cli.finish();
    assert_eq!(f.code, Some(exit::KEY_NOT_STORED), "{f:#?}");
    let issued = emulator.issued_keys();
    assert_eq!(issued.len(), 1);
    let key = &issued[0].key;
    let ev = f.event("failed");
    assert_eq!(ev["error"]["kind"], "key_not_stored", "{ev}");
    assert_eq!(ev["key"], key.as_str());
    assert_eq!(f.stdout.matches(key.as_str()).count(), 1, "{}", f.stdout);
    assert!(!f.stderr.contains(key.as_str()), "{}", f.stderr);
}

#[test]
fn human_mode_prints_the_url_before_waiting() {
    let emulator = emulator(Mode::Redirect);
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("c.json");
    let mut cli = Cli::login(
        &emulator,
        tmp.path(),
        &format!("file:{}", store.display()),
        &[],
    );
    let auth = cli.authorization_url_human();
    cli.wait_line(Stream::Stderr, |l| l.starts_with("Waiting for the browser"));
    Browser::new().follow(&auth);
    let f = cli.finish();
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    // Human mode with a file store: the result alone on stdout, never the key itself.
    assert!(
        f.stdout.starts_with("Signed in. Key sk-or-v1-"),
        "{}",
        f.stdout
    );
    assert!(
        !f.stdout.contains(&emulator.issued_keys()[0].key),
        "{}",
        f.stdout
    );
    assert!(!f.stderr.contains("Signed in."), "{}", f.stderr);
}

/// Issue 15, item 2: `--store` repeated: one sign-in, one key, written to every store named,
/// each reported.
#[test]
fn one_sign_in_writes_one_key_to_every_store_named() {
    let emulator = emulator(Mode::Redirect);
    let tmp = tempfile::tempdir().unwrap();
    let a = tmp.path().join("a.json");
    let b = tmp.path().join("b.json");
    let mut cli = Cli::login(
        &emulator,
        tmp.path(),
        &format!("file:{}", a.display()),
        &[
            "--store",
            &format!("file:{}", b.display()),
            "--store",
            "aider",
        ],
    );
    Browser::new().follow(&cli.authorization_url_human());
    let f = cli.finish();
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    let issued = emulator.issued_keys();
    assert_eq!(issued.len(), 1, "one key for all the stores");
    assert_eq!(stored_key(&a), issued[0].key);
    assert_eq!(stored_key(&b), issued[0].key);
    let aider = std::fs::read_to_string(tmp.path().join(".aider/oauth-keys.env")).unwrap();
    assert!(aider.contains(&issued[0].key), "{aider}");
    for place in [
        a.display().to_string(),
        b.display().to_string(),
        "aider".into(),
    ] {
        assert!(
            f.stdout.contains(&place),
            "{place} not reported:\n{}",
            f.stdout
        );
    }
}

/// Issue 15, item 3: `login --with-key` stores a key the user already has, read from stdin:
/// checked with OpenRouter first, no new key minted; a key OpenRouter refuses is not stored.
#[test]
fn with_key_stores_a_key_from_stdin_after_checking_it() {
    let emulator = emulator(Mode::Redirect);
    let tmp = tempfile::tempdir().unwrap();
    let key = Cli::signed_in_key(&emulator, tmp.path());

    let base = emulator.base_url().to_string();
    let with_key = |store: &std::path::Path, typed: Option<&str>| {
        let spec = format!("file:{}", store.display());
        let args = ["login", "--with-key", "--base-url", &base, "--store", &spec];
        let mut cli = Cli::start(tmp.path(), &args, &[], openrouter_auth_tests::Stdin::Pipe);
        if let Some(typed) = typed {
            cli.type_line(typed);
        }
        cli.close_stdin();
        cli.finish()
    };
    let second = tmp.path().join("second.json");
    let f = with_key(&second, Some(&key));
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    assert_eq!(stored_key(&second), key);
    assert_eq!(emulator.issued_keys().len(), 1, "no new key minted");
    assert!(
        f.stdout
            .starts_with("Checked with OpenRouter. Key sk-or-v1-"),
        "{}",
        f.stdout
    );
    assert!(
        !f.stdout.contains(&key) && !f.stderr.contains(&key),
        "{f:#?}"
    );

    let refused = tmp.path().join("refused.json");
    let f = with_key(&refused, Some("sk-or-v1-not-a-key-openrouter-knows"));
    assert_eq!(f.code, Some(7), "{f:#?}");
    assert!(!refused.exists(), "a refused key is not stored");
    assert!(f.stderr.contains("error:"), "{}", f.stderr);

    let f = with_key(&refused, None);
    assert_eq!(f.code, Some(2), "{f:#?}");
    assert!(f.stderr.contains("standard input"), "{}", f.stderr);
}
