//! Issue 16, "Errors blame the wrong thing": each message names what is wrong where the user
//! put it (a flag or an environment variable), says it once, and says what to do.
#![cfg(unix)]

use openrouter_auth_tests::{Cli, Stdin};

fn run(args: &[&str], env: &[(&str, &str)]) -> openrouter_auth_tests::Finished {
    let home = tempfile::tempdir().unwrap();
    Cli::start(home.path(), args, env, Stdin::Null).finish()
}

#[test]
fn an_unusable_base_url_in_the_environment_is_blamed_on_the_variable() {
    let f = run(
        &["status"],
        &[("OPENROUTER_AUTH_BASE_URL", "http://example.com")],
    );
    assert_eq!(f.code, Some(2), "{f:#?}");
    assert!(
        f.stderr
            .contains("OPENROUTER_AUTH_BASE_URL is set to 'http://example.com'"),
        "{}",
        f.stderr
    );
    assert!(!f.stderr.contains("--base-url <URL>"), "{}", f.stderr);
    assert!(f.stderr.contains("https URL"), "{}", f.stderr);
    assert!(f.stderr.contains("unset it"), "{}", f.stderr);
    // The flag wins over the variable, as before.
    let f = run(
        &["status", "--base-url", "http://127.0.0.1:9"],
        &[("OPENROUTER_AUTH_BASE_URL", "http://example.com")],
    );
    assert_eq!(f.code, Some(8), "{f:#?}");
}

#[test]
fn a_base_url_without_a_scheme_says_how_to_write_it() {
    let f = run(&["status", "--base-url", "example.com"], &[]);
    assert_eq!(f.code, Some(2), "{f:#?}");
    assert!(
        !f.stderr.contains("relative URL without a base"),
        "{}",
        f.stderr
    );
    assert!(f.stderr.contains("not a full URL"), "{}", f.stderr);
    assert!(f.stderr.contains("https://example.com"), "{}", f.stderr);
}

#[test]
fn a_timeout_of_zero_is_refused() {
    let f = run(&["login", "--headless", "--timeout", "0"], &[]);
    assert_eq!(f.code, Some(2), "{f:#?}");
    assert!(f.stderr.contains("--timeout"), "{}", f.stderr);
    assert!(!f.stderr.contains("Open this URL"), "{}", f.stderr);
}

/// Issue 15, item 6: `--limit` takes a positive, finite amount of US dollars; anything else is
/// a usage error that says what to write, before anything is signed in.
#[test]
fn a_limit_that_is_not_a_positive_amount_is_refused() {
    for (limit, says) in [
        ("0", "more than 0"),
        ("-5", "more than 0"),
        ("five", "not an amount of US dollars"),
        ("inf", "not a finite amount"),
        ("NaN", "not a finite amount"),
    ] {
        let f = run(&["login", "--headless", "--limit", limit], &[]);
        assert_eq!(f.code, Some(2), "{limit}: {f:#?}");
        assert!(f.stderr.contains(says), "{limit}: {}", f.stderr);
        assert!(!f.stderr.contains("Open this URL"), "{}", f.stderr);
    }
}

/// Usage errors read like every other message: wrapped at 80 columns (never inside a word),
/// the bad value named once, what to write instead.
#[test]
fn usage_errors_are_wrapped_and_say_what_to_write() {
    let cases: [&[&str]; 5] = [
        &["login", "--store", "bogus"],
        &["status", "--store", "env-file:"],
        &["login", "--timeout", "0"],
        &["login", "--timeout", "ten"],
        &["login", "--base-url", "ftp://x"],
    ];
    let mut shown = String::new();
    for args in cases {
        let f = run(args, &[("COLUMNS", "80")]);
        assert_eq!(f.code, Some(2), "{args:?}: {f:#?}");
        assert!(f.stdout.is_empty(), "{args:?}: {}", f.stdout);
        for line in f.stderr.lines() {
            assert!(line.chars().count() <= 80, "{args:?}: {line:?}");
        }
        let value = args[2];
        assert_eq!(
            f.stderr.matches(&format!("'{value}'")).count()
                + f.stderr.matches(&format!("`{value}`")).count(),
            1,
            "{args:?}: the value named once:\n{}",
            f.stderr
        );
        shown.push_str(&format!(
            "$ openrouter-auth {}\n{}\n",
            args.join(" "),
            f.stderr
        ));
    }
    insta::assert_snapshot!("usage_errors", shown);
}
