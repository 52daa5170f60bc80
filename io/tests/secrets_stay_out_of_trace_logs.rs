//! The `openrouter-auth` command at its most verbose (`RUST_LOG=trace`, every dependency's
//! logs included) signs in without writing the authorization code, the PKCE verifier or the
//! API key to its terminal output.

mod common;

use common::*;

/// Output of one CLI run that signed in through the test browser.
struct Run {
    status: std::process::ExitStatus,
    stdout: String,
    stderr: String,
    exchange: Exchange,
    stored: String,
}

fn sign_in_with_cli(extra_args: &[&str], rust_log: &str) -> Run {
    run_cli(
        StandIn::new(),
        extra_args,
        rust_log,
        "Signed in to OpenRouter",
    )
}

fn run_cli(stand_in: StandIn, extra_args: &[&str], rust_log: &str, final_page: &str) -> Run {
    let dir = tempdir();
    let mut cli = Cli::login(&stand_in, dir.path(), extra_args, rust_log, None);
    let callback_url = cli.callback_url();
    let visit = come_back(&callback_url, CODE);
    assert!(visit.page.body.contains(final_page), "{}", visit.page.body);
    let exit = cli.wait_within(PATIENCE);
    let exchanges = stand_in.exchanges();
    assert_eq!(exchanges.len(), 1, "{}", exit.stderr);
    Run {
        status: exit.status,
        stdout: exit.stdout,
        stderr: exit.stderr,
        exchange: exchanges[0].clone(),
        stored: std::fs::read_to_string(credentials(dir.path())).unwrap_or_default(),
    }
}

fn assert_no_secrets(run: &Run, what: &str) {
    assert_eq!(run.exchange.code, CODE);
    let verifier = &run.exchange.code_verifier;
    // The code as it travelled in the callback URL too (it is URL-safe, so the same text).
    for (name, secret) in [
        ("authorization code", CODE),
        ("code_verifier", verifier.as_str()),
        ("API key", KEY),
        // The key's random part alone, in case something reformats the prefix.
        ("API key body", &KEY["sk-or-v1-".len()..]),
    ] {
        assert!(
            !run.stderr.contains(secret),
            "{what}: stderr contains the {name}:\n{}",
            run.stderr
        );
        assert!(
            !run.stdout.contains(secret),
            "{what}: stdout contains the {name}:\n{}",
            run.stdout
        );
    }
}

#[test]
fn trace_logs_hold_no_code_verifier_or_key() {
    let run = sign_in_with_cli(&[], "trace");
    assert!(run.status.success(), "{:?}\n{}", run.status, run.stderr);
    assert!(
        run.stderr.contains("Signed in."),
        "the user is told: {}",
        run.stderr
    );
    // Proof that tracing was really on: the listener's own debug line is there.
    assert!(
        run.stderr.contains("loopback listener bound"),
        "RUST_LOG=trace produced no logs:\n{}",
        run.stderr
    );
    assert!(run.stored.contains(KEY), "stored: {}", run.stored);
    assert_no_secrets(&run, "RUST_LOG=trace");
}

#[test]
fn trace_logs_of_a_refused_exchange_hold_no_code_or_verifier() {
    let stand_in = StandIn::answering(
        403,
        serde_json::json!({"error": {"code": 403, "message": "Invalid code or code_verifier"}}),
    );
    let run = run_cli(stand_in, &[], "trace", "Sign-in failed");
    assert_eq!(run.status.code(), Some(5), "{}", run.stderr);
    assert!(run.stderr.contains("error:"), "{}", run.stderr);
    assert_no_secrets(&run, "RUST_LOG=trace, exchange refused");
}

#[test]
fn json_output_holds_no_code_verifier_or_key() {
    let run = sign_in_with_cli(&["--json"], "trace");
    assert!(run.status.success(), "{:?}\n{}", run.status, run.stderr);
    assert!(run.stdout.contains("\"signed_in\""), "{}", run.stdout);
    assert!(run.stored.contains(KEY), "stored: {}", run.stored);
    assert_no_secrets(&run, "--json with RUST_LOG=trace");
}
