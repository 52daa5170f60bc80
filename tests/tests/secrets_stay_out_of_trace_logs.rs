//! The `openrouter-auth` command at its most verbose (`RUST_LOG=trace`, every dependency's
//! logs included) signs in without writing the authorization code, the PKCE verifier or the
//! API key to its terminal output.
//!
//! The emulator records the `code_challenge` but never sees the verifier until the exchange,
//! so a leaked verifier is found the other way round: every 43-character run of
//! `A-Z a-z 0-9 - . _ ~` in the output (the verifier's length and alphabet, RFC 7636 section
//! 4.1) is hashed, and none may be the challenge's preimage.

use std::time::Duration;

use openrouter_auth_sim::emulator::{ChallengeMethod, Emulator, Mode};
use openrouter_auth_tests::{emulator, query_param, Browser, Cli, Finished, Stdin};

/// The length of the verifiers the library makes (32 random octets, base64url, no padding).
const VERIFIER_LEN: usize = 43;

/// Output of one CLI run that went through the browser, and the secrets of that run.
struct Run {
    finished: Finished,
    code: String,
    code_challenge: String,
    key: Option<String>,
    stored: String,
}

/// `login --no-browser extra…` with `RUST_LOG=rust_log`; the browser follows the
/// authorization URL (after `before_callback` ran) and must end on a page saying
/// `final_page`.
fn run_cli(
    emulator: &Emulator,
    extra: &[&str],
    rust_log: &str,
    before_callback: impl FnOnce(),
    final_page: &str,
) -> Run {
    let home = tempfile::tempdir().unwrap();
    let store = home.path().join("credentials.json");
    let base = emulator.base_url().to_string();
    let store_arg = format!("file:{}", store.display());
    let mut args = vec![
        "login",
        "--no-browser",
        "--base-url",
        &base,
        "--store",
        &store_arg,
    ];
    args.extend_from_slice(extra);
    let mut cli = Cli::start(home.path(), &args, &[("RUST_LOG", rust_log)], Stdin::Null);
    let auth = if extra.contains(&"--json") {
        cli.authorization_url_json().0
    } else {
        cli.authorization_url_human()
    };
    let browser = Browser::new();
    let authorize = browser.get(&auth);
    assert_eq!(authorize.status, 302, "{authorize:?}");
    let callback = authorize.location.expect("a redirect to the callback");
    let code = query_param(&callback, "code").expect("the callback carries a code");
    before_callback();
    let pages = browser.follow(&callback);
    let last = pages.last().unwrap();
    assert!(last.body.contains(final_page), "{}", last.body);
    let finished = cli.finish();
    assert_eq!(emulator.exchange_attempts(), 1, "{}", finished.stderr);
    let code_challenge = emulator.authorize_requests()[0]
        .code_challenge
        .clone()
        .expect("a code_challenge");
    Run {
        finished,
        code,
        code_challenge,
        key: emulator.issued_keys().first().map(|k| k.key.clone()),
        stored: std::fs::read_to_string(&store).unwrap_or_default(),
    }
}

/// Where in `text` the verifier of `code_challenge` appears, if it does.
fn verifier_in(text: &str, code_challenge: &str) -> Option<String> {
    let unreserved = |b: u8| b.is_ascii_alphanumeric() || b"-._~".contains(&b);
    text.as_bytes()
        .split(|&b| !unreserved(b))
        .filter(|run| run.len() >= VERIFIER_LEN)
        .flat_map(|run| run.windows(VERIFIER_LEN))
        .map(|w| String::from_utf8_lossy(w).into_owned())
        .find(|w| ChallengeMethod::S256.verify(w, code_challenge))
}

fn assert_no_secrets(run: &Run, what: &str) {
    let f = &run.finished;
    let mut secrets = vec![("authorization code", run.code.clone())];
    if let Some(key) = &run.key {
        secrets.push(("API key", key.clone()));
        // The key's random part alone, in case something reformats the prefix.
        secrets.push(("API key body", key["sk-or-v1-".len()..].to_owned()));
    }
    for (name, secret) in &secrets {
        assert!(
            !f.stderr.contains(secret.as_str()),
            "{what}: stderr contains the {name}:\n{}",
            f.stderr
        );
        assert!(
            !f.stdout.contains(secret.as_str()),
            "{what}: stdout contains the {name}:\n{}",
            f.stdout
        );
    }
    for (stream, text) in [("stderr", &f.stderr), ("stdout", &f.stdout)] {
        assert_eq!(
            verifier_in(text, &run.code_challenge),
            None,
            "{what}: {stream} contains the code_verifier:\n{text}"
        );
    }
}

#[test]
fn trace_logs_hold_no_code_verifier_or_key() {
    let emulator = emulator(Mode::Redirect);
    let run = run_cli(&emulator, &[], "trace", || {}, "Signed in to OpenRouter");
    let f = &run.finished;
    assert!(f.status.success(), "{:?}\n{}", f.status, f.stderr);
    assert!(
        f.stdout.contains("Signed in."),
        "the user is told: {}",
        f.stdout
    );
    // Proof that tracing was really on: the listener's own debug line is there.
    assert!(
        f.stderr.contains("loopback listener bound"),
        "RUST_LOG=trace produced no logs:\n{}",
        f.stderr
    );
    let key = run.key.as_deref().expect("a key was issued");
    assert!(run.stored.contains(key), "stored: {}", run.stored);
    assert_no_secrets(&run, "RUST_LOG=trace");
}

#[test]
fn trace_logs_of_a_refused_exchange_hold_no_code_or_verifier() {
    let emulator = emulator(Mode::Redirect);
    // The code expires before the browser brings it back: the exchange is refused (403).
    let run = run_cli(
        &emulator,
        &[],
        "trace",
        || emulator.advance_clock(Duration::from_secs(11 * 60)),
        "Sign-in expired",
    );
    let f = &run.finished;
    assert_eq!(f.code, Some(5), "{}", f.stderr);
    assert!(f.stderr.contains("error:"), "{}", f.stderr);
    assert_eq!(run.key, None, "a refused exchange issues no key");
    assert_no_secrets(&run, "RUST_LOG=trace, exchange refused");
}

#[test]
fn json_output_holds_no_code_verifier_or_key() {
    let emulator = emulator(Mode::Redirect);
    let run = run_cli(
        &emulator,
        &["--json"],
        "trace",
        || {},
        "Signed in to OpenRouter",
    );
    let f = &run.finished;
    assert!(f.status.success(), "{:?}\n{}", f.status, f.stderr);
    assert!(f.stdout.contains("\"signed_in\""), "{}", f.stdout);
    let key = run.key.as_deref().expect("a key was issued");
    assert!(run.stored.contains(key), "stored: {}", run.stored);
    assert_no_secrets(&run, "--json with RUST_LOG=trace");
}

/// The check above finds a verifier wherever it sits in the output: in a log field, quoted in
/// JSON, or run together with other text; and finds nothing where the verifier is absent.
#[test]
fn the_verifier_check_finds_a_verifier_in_any_text() {
    use openrouter_auth_core::{CodeChallengeMethod, CodeVerifier};
    let verifier = CodeVerifier::from_entropy(&[7; 32]);
    let v = verifier.expose_secret();
    assert_eq!(v.len(), VERIFIER_LEN);
    let challenge = verifier.challenge(CodeChallengeMethod::S256);
    for text in [
        format!("TRACE body code_verifier={v}&code=x"),
        format!("{{\"code_verifier\":\"{v}\"}}"),
        format!("prefix-{v}~suffix.more"),
    ] {
        assert_eq!(
            verifier_in(&text, challenge.as_str()).as_deref(),
            Some(v),
            "{text}"
        );
    }
    let other = CodeVerifier::from_entropy(&[8; 32]);
    let text = format!("code_verifier={}", other.expose_secret());
    assert_eq!(verifier_in(&text, challenge.as_str()), None);
}
