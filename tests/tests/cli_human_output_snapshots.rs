//! What a person sees on stderr (human mode) for a success, a denial, a timeout and a server
//! error, pinned as insta snapshots. Ports, nonces, PKCE challenges, `state`, key hints and
//! temporary paths are redacted so the snapshots are stable.
#![cfg(unix)]

use std::path::Path;

use openrouter_auth_sim::emulator::{Emulator, Fault, Mode};
use openrouter_auth_tests::{
    emulator, exit, link_by_id, redactions, Browser, Cli, Finished, Stdin,
};

/// `login --no-browser` at 80 columns (the width off a terminal when `COLUMNS` is not set).
fn login_at_80(emulator: &Emulator, home: &Path, store: &str, extra: &[&str]) -> Cli {
    let base = emulator.base_url().to_string();
    let mut args = vec![
        "login",
        "--no-browser",
        "--base-url",
        &base,
        "--store",
        store,
    ];
    args.extend_from_slice(extra);
    at_80(home, &args)
}

/// `openrouter-auth args…` at 80 columns, stdin closed.
fn at_80(home: &Path, args: &[&str]) -> Cli {
    Cli::start(home, args, &[("COLUMNS", "80")], Stdin::Null)
}

/// Runs `login` in human mode with a file store; `browse` plays the browser.
fn human_login(
    emulator: &Emulator,
    extra: &[&str],
    browse: impl FnOnce(&Browser, url::Url),
) -> (Finished, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("c.json");
    let mut cli = login_at_80(
        emulator,
        tmp.path(),
        &format!("file:{}", store.display()),
        extra,
    );
    let auth = cli.authorization_url_human();
    browse(&Browser::new(), auth);
    (cli.finish(), tmp)
}

/// Issue 16: at 80 columns (the width when the output is not a terminal) no line of our prose
/// is longer than the line, so none breaks mid-word; only a URL, alone on its line and whole,
/// may be longer.
fn assert_fits_80_columns(text: &str) {
    for line in text.lines() {
        if line.chars().count() <= 80 {
            continue;
        }
        let word = line.trim_start();
        assert!(
            !word.contains(' ') && url::Url::parse(word).is_ok(),
            "a line of prose is wider than 80 columns:\n{line}\nin:\n{text}"
        );
    }
}

fn assert_stderr_snapshot(name: &str, tmp: &Path, f: &Finished) {
    assert_fits_80_columns(&f.stderr);
    assert_fits_80_columns(&f.stdout);
    let owned = redactions(tmp);
    let filters: Vec<(&str, &str)> = owned
        .iter()
        .map(|(re, with)| (re.as_str(), with.as_str()))
        .collect();
    insta::with_settings!({filters => filters}, {
        insta::assert_snapshot!(name, f.stderr);
    });
}

fn assert_stdout_snapshot(name: &str, tmp: &Path, f: &Finished) {
    assert_fits_80_columns(&f.stdout);
    let owned = redactions(tmp);
    let filters: Vec<(&str, &str)> = owned
        .iter()
        .map(|(re, with)| (re.as_str(), with.as_str()))
        .collect();
    insta::with_settings!({filters => filters}, {
        insta::assert_snapshot!(name, f.stdout);
    });
}

#[test]
fn success() {
    let emulator = emulator(Mode::Redirect);
    let (f, tmp) = human_login(&emulator, &[], |b, auth| {
        b.follow(&auth);
    });
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    assert_stderr_snapshot("success", tmp.path(), &f);
    // What the person asked for (the key and where it is) is on stdout (issue 16).
    assert_stdout_snapshot("success_stdout", tmp.path(), &f);
}

#[test]
fn denied() {
    let emulator = emulator(Mode::Consent);
    let (f, tmp) = human_login(&emulator, &[], |b, auth| {
        let consent = b.get(&auth);
        b.follow(&link_by_id(&consent, "deny"));
    });
    assert_eq!(f.code, Some(exit::DENIED), "{f:#?}");
    assert_stderr_snapshot("denied", tmp.path(), &f);
}

#[test]
fn timeout() {
    let emulator = emulator(Mode::Redirect);
    let (f, tmp) = human_login(&emulator, &["--timeout", "1"], |_, _| {});
    assert_eq!(f.code, Some(exit::TIMED_OUT), "{f:#?}");
    assert_stderr_snapshot("timeout", tmp.path(), &f);
}

#[test]
fn server_error() {
    let emulator = emulator(Mode::Redirect);
    emulator.inject_fault(Fault::InternalError);
    let (f, tmp) = human_login(&emulator, &[], |b, auth| {
        b.follow(&auth);
    });
    assert_eq!(f.code, Some(exit::EXCHANGE_FAILED), "{f:#?}");
    assert_stderr_snapshot("server_error", tmp.path(), &f);
}

/// A key already in the store and no terminal to ask on: refused, with the way out.
#[test]
fn key_exists() {
    let emulator = emulator(Mode::Redirect);
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("c.json");
    let spec = format!("file:{}", store.display());
    let mut first = Cli::login(&emulator, tmp.path(), &spec, &[]);
    Browser::new().follow(&first.authorization_url_human());
    assert_eq!(first.finish().code, Some(exit::OK));
    let f = login_at_80(&emulator, tmp.path(), &spec, &[]).finish();
    assert_eq!(f.code, Some(exit::ERROR), "{f:#?}");
    assert_stderr_snapshot("key_exists", tmp.path(), &f);
}

/// `status` of a valid key: the answer on stdout, wrapped at 80 columns.
#[test]
fn status_valid() {
    let emulator = emulator(Mode::Redirect);
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp
        .path()
        .join("a-rather-long-directory-name-for-the-store/c.json");
    std::fs::create_dir_all(store.parent().unwrap()).unwrap();
    let spec = format!("file:{}", store.display());
    let mut first = Cli::login(&emulator, tmp.path(), &spec, &[]);
    Browser::new().follow(&first.authorization_url_human());
    assert_eq!(first.finish().code, Some(exit::OK));
    let base = emulator.base_url().to_string();
    let f = at_80(
        tmp.path(),
        &["status", "--base-url", &base, "--store", &spec],
    )
    .finish();
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    assert_eq!(f.stderr, "", "status answers on stdout");
    assert_stdout_snapshot("status_valid", tmp.path(), &f);
}

/// `login -h` is short (one line per flag); the long text is in `--help`.
#[test]
fn login_short_help_is_one_line_per_flag() {
    let tmp = tempfile::tempdir().unwrap();
    let f = at_80(tmp.path(), &["login", "-h"]).finish();
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    assert_fits_80_columns(&f.stdout);
    let flags: Vec<&str> = f
        .stdout
        .lines()
        .filter(|l| l.trim_start().starts_with('-'))
        .collect();
    assert!(flags.len() >= 10, "{}", f.stdout);
    // Every line of the options list starts a flag: no continuation lines.
    let options: Vec<&str> = f
        .stdout
        .lines()
        .skip_while(|l| *l != "Options:")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .collect();
    assert_eq!(options, flags, "{}", f.stdout);
    insta::assert_snapshot!("login_short_help", f.stdout);
    let long = at_80(tmp.path(), &["login", "--help"]).finish();
    assert_fits_80_columns(&long.stdout);
    assert!(
        long.stdout.contains("keeps working until you revoke it"),
        "{}",
        long.stdout
    );
    assert!(long.stdout.contains("Exit codes:"), "{}", long.stdout);
}

/// Issue 16: a key file other users can read (mode 0644) is named, with the fix, in one
/// warning on stderr; the answer stays on stdout.
#[test]
fn status_warns_of_a_key_file_others_can_read() {
    use std::os::unix::fs::PermissionsExt;
    let emulator = emulator(Mode::Redirect);
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("c.json");
    let spec = format!("file:{}", store.display());
    let mut first = Cli::login(&emulator, tmp.path(), &spec, &[]);
    Browser::new().follow(&first.authorization_url_human());
    assert_eq!(first.finish().code, Some(exit::OK));
    let base = emulator.base_url().to_string();
    let status = || {
        at_80(
            tmp.path(),
            &["status", "--base-url", &base, "--store", &spec],
        )
        .finish()
    };
    let f = status();
    assert_eq!(f.stderr, "", "a private file (0600) gets no warning");
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o644)).unwrap();
    let f = status();
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    assert!(f.stdout.contains("is valid."), "{}", f.stdout);
    assert_stderr_snapshot("status_readable_by_others", tmp.path(), &f);
    // `token` says it too, on stderr (stdout is the key alone).
    let f = at_80(tmp.path(), &["token", "--store", &spec]).finish();
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    assert_eq!(f.stdout.lines().count(), 1);
    assert!(
        f.stderr
            .contains(&format!("`chmod 600 {}`", store.display())),
        "{}",
        f.stderr
    );
    // The fix works: after it, no warning.
    std::fs::set_permissions(&store, std::fs::Permissions::from_mode(0o600)).unwrap();
    assert_eq!(status().stderr, "");
}

/// Issue 16: `status` says in one line that it did not look in the keyring, and why.
#[cfg(target_os = "linux")]
#[test]
fn status_says_it_skipped_the_keyring() {
    let tmp = tempfile::tempdir().unwrap();
    let f = at_80(
        tmp.path(),
        &["status", "--base-url", "https://openrouter.ai"],
    )
    .finish();
    assert_eq!(f.code, Some(8), "{f:#?}");
    assert_stdout_snapshot("status_skipped_the_keyring", tmp.path(), &f);
}
