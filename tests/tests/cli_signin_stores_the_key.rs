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
        done.body.contains(&store.display().to_string()),
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
    assert_eq!(
        f.stdout, "",
        "human mode with a file store prints nothing on stdout"
    );
}
