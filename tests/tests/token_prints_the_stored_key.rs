//! Issue 15, point 1: `openrouter-auth token [--store KIND]` prints the stored key alone on
//! stdout (with a newline, for `$(…)`), found in the order `status` uses; without a key it
//! prints nothing there, one line on stderr, and exits 8; an unreadable store exits 1, and
//! stdout stays empty whatever happens.
#![cfg(unix)]

mod support;

use openrouter_auth_sim::emulator::Mode;
use openrouter_auth_tests::emulator;
use support::*;

#[test]
fn after_a_login_token_prints_exactly_the_key() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let key = sign_in(&emulator, home.path(), "file");
    let f = run(home.path(), &["token"]);
    assert_eq!(f.code, Some(0), "{f:#?}");
    assert_eq!(f.stdout, format!("{key}\n"));
    assert!(!f.stderr.contains(&key), "{}", f.stderr);
}

#[test]
fn signed_out_token_prints_nothing_and_exits_8() {
    let home = tempfile::tempdir().unwrap();
    let f = run(home.path(), &["token"]);
    assert_eq!(f.code, Some(8), "{f:#?}");
    assert_eq!(f.stdout, "");
    assert_eq!(f.stderr.trim_end().lines().count(), 1, "{}", f.stderr);
    assert!(f.stderr.contains("No OpenRouter key found"), "{}", f.stderr);

    let f = run(home.path(), &["token", "--store", "opencode"]);
    assert_eq!(f.code, Some(8), "{f:#?}");
    assert_eq!(f.stdout, "");
    assert_eq!(f.stderr.trim_end().lines().count(), 1, "{}", f.stderr);
    assert!(f.stderr.contains("opencode"), "{}", f.stderr);
}

#[test]
fn store_picks_the_store_and_the_default_order_is_status_order() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let in_aider = sign_in(&emulator, home.path(), "aider");
    let in_opencode = sign_in(&emulator, home.path(), "opencode");
    assert_ne!(in_aider, in_opencode);
    // status's order: file, opencode, aider, …: opencode comes first.
    let f = run(home.path(), &["token"]);
    assert_eq!(f.code, Some(0), "{f:#?}");
    assert_eq!(f.stdout, format!("{in_opencode}\n"));
    let f = run(home.path(), &["token", "--store", "aider"]);
    assert_eq!(f.code, Some(0), "{f:#?}");
    assert_eq!(f.stdout, format!("{in_aider}\n"));
    // A store that holds nothing, although others do.
    let f = run(home.path(), &["token", "--store", "file"]);
    assert_eq!(f.code, Some(8), "{f:#?}");
    assert_eq!(f.stdout, "");
}

#[test]
fn an_unreadable_store_exits_1_with_empty_stdout() {
    let home = tempfile::tempdir().unwrap();
    let auth = home.path().join(".local/share/opencode/auth.json");
    std::fs::create_dir_all(auth.parent().unwrap()).unwrap();
    std::fs::write(&auth, "{ not json").unwrap();
    for args in [&["token"][..], &["token", "--store", "opencode"][..]] {
        let f = run(home.path(), args);
        assert_eq!(f.code, Some(1), "{args:?}: {f:#?}");
        assert_eq!(f.stdout, "", "{args:?}");
        assert!(f.stderr.contains("not valid JSON"), "{}", f.stderr);
    }
    // `--store stdout` keeps nothing: a usage error, still nothing on stdout.
    let f = run(home.path(), &["token", "--store", "stdout"]);
    assert_eq!(f.code, Some(2), "{f:#?}");
    assert_eq!(f.stdout, "");
}
