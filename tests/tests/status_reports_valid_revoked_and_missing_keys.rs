//! Issue 6, point 8: `status [--store KIND] [--json]` finds the stored key, checks it with
//! OpenRouter and prints its label, usage, limit, free tier and page; the exit code tells a
//! valid key (0), a key OpenRouter refuses (7, e.g. revoked) and no key (8) apart.
#![cfg(unix)]

mod support;

use openrouter_auth_sim::emulator::Mode;
use openrouter_auth_tests::emulator;
use support::*;

#[test]
fn a_valid_key_is_described() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let key = sign_in(&emulator, home.path(), "file");
    let base = emulator.base_url().to_string();
    let f = run(home.path(), &["status", "--base-url", &base]);
    assert_eq!(f.code, Some(0), "{f:#?}");
    let page = key_page(&emulator.base_url(), &key);
    assert!(f.stderr.contains("is valid."), "{}", f.stderr);
    assert!(f.stderr.contains("credentials file"), "{}", f.stderr);
    for line in [
        "  label:     openrouter-auth on ",
        "  usage:     $0.00",
        "  limit:     none",
        "  free tier: yes",
        &format!("  key page:  {page}"),
    ] {
        assert!(
            f.stderr.contains(line),
            "missing {line:?} in:\n{}",
            f.stderr
        );
    }
    assert!(!f.stderr.contains(&key));
}

#[test]
fn json_status_of_a_valid_key() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let key = sign_in(&emulator, home.path(), "opencode");
    let base = emulator.base_url().to_string();
    let f = run(
        home.path(),
        &[
            "status",
            "--store",
            "opencode",
            "--json",
            "--base-url",
            &base,
        ],
    );
    assert_eq!(f.code, Some(0), "{f:#?}");
    let ev = f.event("status");
    assert_eq!(ev["state"], "valid", "{ev}");
    assert_eq!(ev["spec"], "opencode");
    assert_eq!(ev["is_free_tier"], true);
    assert_eq!(ev["usage"], 0.0);
    assert!(ev["limit"].is_null());
    assert!(ev["label"]
        .as_str()
        .unwrap()
        .starts_with("openrouter-auth on "));
    assert_eq!(ev["key_page"], key_page(&emulator.base_url(), &key));
    assert_key_page_shape(ev["key_page"].as_str().unwrap(), &emulator.base_url());
    assert_eq!(ev["found"].as_array().unwrap().len(), 1);
    assert!(!f.stdout.contains(&key));
}

#[test]
fn a_revoked_key_exits_7() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let key = sign_in(&emulator, home.path(), "aider");
    assert!(emulator.revoke_key(&key));
    let base = emulator.base_url().to_string();
    let f = run(home.path(), &["status", "--base-url", &base]);
    assert_eq!(f.code, Some(7), "{f:#?}");
    assert!(f.stderr.contains("is NOT valid"), "{}", f.stderr);
    assert!(f.stderr.contains("(401)"), "{}", f.stderr);
    assert!(f.stderr.contains("aider key file"), "{}", f.stderr);
    // The way out names the store the key is in: a bare `login --force` would sign in to the
    // default credentials file and leave aider with the revoked key.
    assert!(
        f.stderr
            .contains("`openrouter-auth login --force --store aider`"),
        "{}",
        f.stderr
    );
    assert!(
        f.stderr.contains("`openrouter-auth logout --store aider`"),
        "{}",
        f.stderr
    );

    let f = run(home.path(), &["status", "--json", "--base-url", &base]);
    assert_eq!(f.code, Some(7));
    let ev = f.event("status");
    assert_eq!(ev["state"], "invalid", "{ev}");
    assert_eq!(ev["spec"], "aider");
}

#[test]
fn a_revoked_key_in_a_store_that_refuses_writes_is_not_sent_to_login() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let key = sign_in(&emulator, home.path(), "opencode");
    assert!(emulator.revoke_key(&key));
    // A dotfiles manager makes auth.json a symbolic link: readable, but never replaced.
    let auth = home.path().join(".local/share/opencode/auth.json");
    let managed = home.path().join("managed-auth.json");
    std::fs::rename(&auth, &managed).unwrap();
    std::os::unix::fs::symlink(&managed, &auth).unwrap();
    let base = emulator.base_url().to_string();
    let f = run(
        home.path(),
        &["status", "--store", "opencode", "--base-url", &base],
    );
    assert_eq!(f.code, Some(7), "{f:#?}");
    assert!(
        f.stderr
            .contains("will neither replace nor remove it there"),
        "{}",
        f.stderr
    );
    assert!(f.stderr.contains("symbolic link"), "{}", f.stderr);
    assert!(!f.stderr.contains("login --force"), "{}", f.stderr);
    assert!(!f.stderr.contains("openrouter-auth logout"), "{}", f.stderr);
}

#[test]
fn no_key_anywhere_exits_8() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let base = emulator.base_url().to_string();
    let f = run(home.path(), &["status", "--base-url", &base]);
    assert_eq!(f.code, Some(8), "{f:#?}");
    assert!(f.stderr.contains("No OpenRouter key found"), "{}", f.stderr);
    for place in ["credentials file", "opencode auth file", "aider key file"] {
        assert!(f.stderr.contains(place), "{}", f.stderr);
    }
    let f = run(home.path(), &["status", "--json", "--base-url", &base]);
    assert_eq!(f.code, Some(8));
    assert_eq!(f.event("status")["state"], "missing");

    let f = run(
        home.path(),
        &["status", "--store", "opencode", "--base-url", &base],
    );
    assert_eq!(f.code, Some(8), "{f:#?}");
    assert!(
        f.stderr.contains("No OpenRouter key in opencode auth file"),
        "{}",
        f.stderr
    );
    assert!(
        f.stderr
            .contains("Run `openrouter-auth login --store opencode`."),
        "{}",
        f.stderr
    );
}

#[test]
fn the_first_store_found_decides_and_json_lists_all() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    // A valid key in opencode, a revoked one in the credentials file (looked at first).
    let good = sign_in(&emulator, home.path(), "opencode");
    let bad = sign_in(&emulator, home.path(), "file");
    emulator.revoke_key(&bad);
    let base = emulator.base_url().to_string();
    let f = run(home.path(), &["status", "--json", "--base-url", &base]);
    assert_eq!(f.code, Some(7), "{f:#?}");
    let ev = f.event("status");
    assert_eq!(ev["spec"], "file");
    let found = ev["found"].as_array().unwrap();
    assert_eq!(found.len(), 2, "{ev}");
    assert_eq!(found[0]["state"], "invalid");
    assert_eq!(found[1]["spec"], "opencode");
    assert_eq!(found[1]["state"], "valid");
    assert_eq!(found[1]["key_page"], key_page(&emulator.base_url(), &good));
}

#[test]
fn an_unreachable_openrouter_is_exit_1_not_invalid() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    sign_in(&emulator, home.path(), "file");
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let base = format!("http://127.0.0.1:{port}");
    let f = run(home.path(), &["status", "--base-url", &base]);
    assert_eq!(f.code, Some(1), "{f:#?}");
    assert!(
        f.stderr
            .contains("could not reach OpenRouter to check the key"),
        "{}",
        f.stderr
    );
}

/// A store that cannot be read (here a credentials file that is not JSON) may hold the key,
/// and `login` refuses to write there: `status` must not answer "no key, run login" (exit 8)
/// but "unreadable store" (exit 1), in text and in JSON.
#[test]
fn an_unreadable_store_and_no_key_is_exit_1_not_missing() {
    let home = tempfile::tempdir().unwrap();
    let creds = home.path().join(".config/openrouter-auth/credentials.json");
    std::fs::create_dir_all(creds.parent().unwrap()).unwrap();
    std::fs::write(&creds, b"{not json").unwrap();
    let f = run(home.path(), &["status", "--base-url", "http://127.0.0.1:9"]);
    assert_eq!(f.code, Some(1), "{f:#?}");
    assert!(f.stderr.contains("could not be read"), "{}", f.stderr);
    assert!(
        !f.stderr.contains("Run `openrouter-auth login`"),
        "{}",
        f.stderr
    );
    let f = run(
        home.path(),
        &["status", "--json", "--base-url", "http://127.0.0.1:9"],
    );
    assert_eq!(f.code, Some(1), "{f:#?}");
    let ev = f.event("status");
    assert_eq!(ev["state"], "error", "{ev}");
    assert!(
        ev["unreadable"][0]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{ev}"
    );
    assert_eq!(
        std::fs::read(&creds).unwrap(),
        b"{not json",
        "left untouched"
    );
}
