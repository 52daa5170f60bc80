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
    assert!(f.stdout.contains("is valid."), "{}", f.stdout);
    assert!(f.stdout.contains("credentials file"), "{}", f.stdout);
    for line in [
        "  label:     openrouter-auth on ",
        "  usage:     $0.00",
        "  limit:     none",
        "  free tier: yes",
        &format!("  key page:  {page}"),
    ] {
        assert!(
            f.stdout.contains(line),
            "missing {line:?} in:\n{}",
            f.stdout
        );
    }
    assert!(!f.stdout.contains(&key));
    assert!(!f.stderr.contains(&key));
    // The answer is on stdout, so `status | less` shows it (issue 16).
    assert!(!f.stderr.contains("is valid."), "{}", f.stderr);
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
    assert!(f.stdout.contains("is NOT valid"), "{}", f.stdout);
    assert!(f.stdout.contains("(401)"), "{}", f.stdout);
    assert!(f.stdout.contains("aider key file"), "{}", f.stdout);
    // The way out names the store the key is in: a bare `login --force` would sign in to the
    // default credentials file and leave aider with the revoked key.
    assert!(
        f.stdout
            .contains("`openrouter-auth login --force --store aider`"),
        "{}",
        f.stdout
    );
    assert!(
        f.stdout.contains("`openrouter-auth logout --store aider`"),
        "{}",
        f.stdout
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
        f.stdout
            .contains("will neither replace nor remove it there"),
        "{}",
        f.stdout
    );
    assert!(f.stdout.contains("symbolic link"), "{}", f.stdout);
    assert!(!f.stdout.contains("login --force"), "{}", f.stdout);
    assert!(!f.stdout.contains("openrouter-auth logout"), "{}", f.stdout);
}

#[test]
fn no_key_anywhere_exits_8() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let base = emulator.base_url().to_string();
    let f = run(home.path(), &["status", "--base-url", &base]);
    assert_eq!(f.code, Some(8), "{f:#?}");
    assert!(f.stdout.contains("No OpenRouter key found"), "{}", f.stdout);
    for place in ["credentials file", "opencode auth file", "aider key file"] {
        assert!(f.stdout.contains(place), "{}", f.stdout);
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
        f.stdout.contains("No OpenRouter key in opencode auth file"),
        "{}",
        f.stdout
    );
    assert!(
        f.stdout
            .contains("Run `openrouter-auth login --store opencode`."),
        "{}",
        f.stdout
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
        f.stdout
            .contains("could not reach OpenRouter to check the key"),
        "{}",
        f.stdout
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

/// Issue 15, item 4: `OPENROUTER_API_KEY` is what tools use first, so `status` checks it first
/// and says when it shadows a different stored key.
#[test]
fn the_environments_key_is_checked_first_and_shadows_a_stored_one() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let stored = sign_in(&emulator, home.path(), "file");
    let in_env = sign_in(&emulator, home.path(), "aider");
    assert_ne!(stored, in_env);
    let base = emulator.base_url().to_string();
    let status = |env_key: &str, json: bool| {
        let mut args = vec!["status", "--base-url", base.as_str()];
        if json {
            args.push("--json");
        }
        Run::start(
            home.path(),
            &args,
            &[("OPENROUTER_API_KEY", env_key)],
            openrouter_auth_tests::Stdin::Null,
        )
        .finish()
    };
    let f = status(&in_env, false);
    assert_eq!(f.code, Some(0), "{f:#?}");
    let first = f.stdout.lines().next().unwrap();
    assert!(
        first.contains("the environment variable OPENROUTER_API_KEY is valid"),
        "{}",
        f.stdout
    );
    assert!(
        f.stdout
            .contains("OPENROUTER_API_KEY is set to another key than the one in credentials file"),
        "{}",
        f.stdout
    );
    assert!(!f.stdout.contains(&in_env) && !f.stderr.contains(&in_env));
    let ev = status(&in_env, true).event("status");
    assert_eq!(ev["spec"], "env", "{ev}");
    assert_eq!(ev["state"], "valid", "{ev}");
    assert_eq!(ev["found"][0]["spec"], "env", "{ev}");
    let shadows = ev["shadows"].as_array().expect("shadows listed");
    assert!(
        shadows
            .iter()
            .any(|s| s["store"].as_str().unwrap().starts_with("credentials file")),
        "{ev}"
    );
    // Every field of the key check is in the JSON line.
    for field in [
        "usage_daily",
        "usage_weekly",
        "usage_monthly",
        "expires_at",
        "limit_remaining",
    ] {
        assert!(ev.get(field).is_some(), "no {field} in {ev}");
    }

    // A key the environment holds that OpenRouter refuses decides, although the stored ones
    // are valid: the tools would use it.
    assert!(emulator.revoke_key(&in_env));
    let f = status(&in_env, false);
    assert_eq!(f.code, Some(7), "{f:#?}");
    assert!(f.stdout.contains("is NOT valid"), "{}", f.stdout);
    assert!(f.stdout.contains("unset it"), "{}", f.stdout);
}

/// Issue 15, item 7: every `--json` line names the version of its shape.
#[test]
fn every_json_line_has_a_schema_version() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let base = emulator.base_url().to_string();
    let mut login = Run::login(
        &emulator.base_url(),
        home.path(),
        "file",
        &["--no-browser", "--json"],
        &[],
        openrouter_auth_tests::Stdin::Null,
    );
    let (auth, _) = login.authorization_url_json();
    openrouter_auth_tests::Browser::new().follow(&auth);
    let mut lines = login.finish().json_events();
    for args in [
        &["status", "--json", "--base-url", &base][..],
        &["logout", "--json", "--base-url", &base][..],
        &["status", "--json", "--base-url", &base][..],
    ] {
        lines.extend(run(home.path(), args).json_events());
    }
    let events: Vec<&str> = lines.iter().map(|l| l["event"].as_str().unwrap()).collect();
    assert_eq!(
        events,
        [
            "authorization_url",
            "signed_in",
            "status",
            "logged_out",
            "status"
        ]
    );
    for line in &lines {
        assert_eq!(line["schema"], 1, "{line}");
    }
}

/// Issue 15, item 6: `login --limit USD` asks OpenRouter for a key with that credit limit, and
/// `status` shows the limit and what is left of it.
#[test]
fn a_limit_set_at_login_shows_in_status() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let mut r = Run::login(
        &emulator.base_url(),
        home.path(),
        "file",
        &["--no-browser", "--limit", "2.50"],
        &[],
        openrouter_auth_tests::Stdin::Null,
    );
    let url = r.authorization_url();
    assert_eq!(
        openrouter_auth_tests::query_param(&url, "limit").as_deref(),
        Some("2.5"),
        "{url}"
    );
    openrouter_auth_tests::Browser::new().follow(&url);
    let f = r.finish();
    assert_eq!(f.code, Some(0), "{f:#?}");
    assert!(
        f.stdout.contains("  limit:     $2.50 ($2.50 left)"),
        "{}",
        f.stdout
    );
    let base = emulator.base_url().to_string();
    let f = run(home.path(), &["status", "--base-url", &base]);
    assert_eq!(f.code, Some(0), "{f:#?}");
    assert!(
        f.stdout.contains("  limit:     $2.50 ($2.50 left)"),
        "{}",
        f.stdout
    );
    let f = run(home.path(), &["status", "--json", "--base-url", &base]);
    let ev = f.event("status");
    assert_eq!(ev["limit"], 2.5, "{ev}");
    assert_eq!(ev["limit_remaining"], 2.5, "{ev}");
}

/// Issue 16: `--json` carries the warning about a key file others can read, with its fix.
#[test]
fn json_status_names_a_key_file_others_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    sign_in(&emulator, home.path(), "file");
    let base = emulator.base_url().to_string();
    let file = home.path().join(".config/openrouter-auth/credentials.json");
    let f = run(home.path(), &["status", "--json", "--base-url", &base]);
    assert!(f.event("status")["readable_by_others"].is_null(), "{f:#?}");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let f = run(home.path(), &["status", "--json", "--base-url", &base]);
    assert_eq!(f.code, Some(0), "{f:#?}");
    let ev = f.event("status");
    let r = &ev["readable_by_others"];
    assert_eq!(r["path"], file.display().to_string(), "{ev}");
    assert_eq!(r["mode"], "0644", "{ev}");
    assert_eq!(r["fix"], format!("chmod 600 {}", file.display()), "{ev}");
    assert_eq!(ev["found"][0]["readable_by_others"], *r);
    assert_eq!(f.stderr, "", "--json says it in the JSON only");
}
