//! The `openrouter-auth login` command tells scripts what happened through its exit code
//! (documented in `--help`), and tells people on stderr; a key that could not be stored is
//! printed once on stdout so it is not lost.

mod common;

use common::*;
use std::time::{Duration, Instant};

/// opencode's `auth.json` (under `dir/data`, the helpers' `XDG_DATA_HOME`) as a symbolic link
/// to a file holding `contents`; returns the link.
#[cfg(unix)]
fn symlinked_auth_json(dir: &std::path::Path, contents: &[u8]) -> std::path::PathBuf {
    let auth = dir.join("data/opencode/auth.json");
    std::fs::create_dir_all(auth.parent().unwrap()).unwrap();
    let target = dir.join("managed-auth.json");
    std::fs::write(&target, contents).unwrap();
    std::os::unix::fs::symlink(&target, &auth).unwrap();
    auth
}

#[test]
fn busy_port_exits_1_at_once_naming_the_port() {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let started = Instant::now();
    let cli = Cli::login(&stand_in, dir.path(), &["--port", &port], "warn", None);
    let exit = cli.wait_within(Duration::from_secs(5));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(exit.status.code(), Some(1), "{}", exit.stderr);
    assert!(exit.stderr.contains(&port), "{}", exit.stderr);
    assert!(exit.stderr.contains("already in use"), "{}", exit.stderr);
}

#[test]
fn signed_in_exits_0_and_says_where() {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let mut cli = Cli::login(&stand_in, dir.path(), &[], "warn", None);
    let visit = come_back(&cli.callback_url(), CODE);
    assert!(visit.page.body.contains("Signed in to OpenRouter"));
    let exit = cli.wait_within(PATIENCE);
    assert_eq!(exit.status.code(), Some(0), "{}", exit.stderr);
    let path = credentials(dir.path());
    assert!(
        exit.stderr.contains(&path.display().to_string()),
        "{}",
        exit.stderr
    );
    assert!(exit.stderr.contains("mode 0600"), "{}", exit.stderr);
    assert!(exit.stdout.is_empty(), "{}", exit.stdout);
    assert_mode_0600(&path);
}

#[test]
fn denied_exits_3() {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let mut cli = Cli::login(&stand_in, dir.path(), &[], "warn", None);
    let visit = come_back_with_error(&cli.callback_url(), &[("error", "access_denied")]);
    assert_eq!(visit.page.status, 200, "{:?}", visit.page);
    assert!(
        visit.page.body.contains("Access was denied"),
        "{}",
        visit.page.body
    );
    let exit = cli.wait_within(PATIENCE);
    assert_eq!(exit.status.code(), Some(3), "{}", exit.stderr);
    assert!(exit.stderr.contains("access was denied"), "{}", exit.stderr);
    assert!(stand_in.exchanges().is_empty());
}

#[cfg(unix)]
#[test]
fn symlinked_store_exits_1_before_signing_in() {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let auth = symlinked_auth_json(dir.path(), b"{}\n");
    let started = Instant::now();
    let cli = Cli::login(
        &stand_in,
        dir.path(),
        &["--store", "opencode"],
        "warn",
        None,
    );
    let exit = cli.wait_within(Duration::from_secs(5));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(exit.status.code(), Some(1), "{}", exit.stderr);
    assert!(exit.stderr.contains("symbolic link"), "{}", exit.stderr);
    assert!(
        exit.stderr.contains("nothing was signed in"),
        "{}",
        exit.stderr
    );
    assert!(
        !exit.stderr.contains("http://"),
        "no authorization URL: {}",
        exit.stderr
    );
    assert!(stand_in.exchanges().is_empty(), "no key may be minted");
    assert!(std::fs::symlink_metadata(&auth).unwrap().is_symlink());
    assert_eq!(std::fs::read(&auth).unwrap(), b"{}\n");
}

#[cfg(target_os = "linux")]
#[test]
fn unwritable_store_directory_exits_1_before_signing_in() {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    let Some(_guard) = Chattr::set(&locked, 'i') else {
        eprintln!("skipped: chattr +i is not available here");
        return;
    };
    let store = format!("file:{}", locked.join("credentials.json").display());
    let cli = Cli::login(&stand_in, dir.path(), &["--store", &store], "warn", None);
    let exit = cli.wait_within(Duration::from_secs(5));
    assert_eq!(exit.status.code(), Some(1), "{}", exit.stderr);
    assert!(
        exit.stderr.contains(&locked.display().to_string()),
        "{}",
        exit.stderr
    );
    assert!(
        exit.stderr.contains("nothing was signed in"),
        "{}",
        exit.stderr
    );
    assert!(stand_in.exchanges().is_empty(), "no key may be minted");
    assert_eq!(std::fs::read_dir(&locked).unwrap().count(), 0);
}

#[cfg(unix)]
#[test]
fn key_not_stored_exits_6_and_prints_the_key_once() {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let mut cli = Cli::login(
        &stand_in,
        dir.path(),
        &["--store", "opencode"],
        "warn",
        None,
    );
    let callback_url = cli.callback_url();
    // The store breaks while the browser is open: auth.json becomes a symbolic link, which
    // the store refuses to replace. (Broken from the start, it is refused before signing in.)
    let auth = symlinked_auth_json(dir.path(), b"{}\n");
    let visit = come_back(&callback_url, CODE);
    assert!(
        visit.page.body.contains("the key was not stored"),
        "{}",
        visit.page.body
    );
    let exit = cli.wait_within(PATIENCE);
    assert_eq!(exit.status.code(), Some(6), "{}", exit.stderr);
    assert_eq!(exit.stdout, format!("{KEY}\n"), "the key, alone, on stdout");
    assert!(!exit.stderr.contains(KEY), "{}", exit.stderr);
    assert!(exit.stderr.contains("auth.json"), "{}", exit.stderr);
    assert_eq!(std::fs::read(&auth).unwrap(), b"{}\n");
}

#[cfg(unix)]
#[test]
fn key_not_stored_with_json_puts_the_key_in_the_failed_event() {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let mut cli = Cli::login(
        &stand_in,
        dir.path(),
        &["--store", "opencode", "--json"],
        "warn",
        None,
    );
    let callback_url = cli.callback_url();
    symlinked_auth_json(dir.path(), b"{}");
    come_back(&callback_url, CODE);
    let exit = cli.wait_within(PATIENCE);
    assert_eq!(exit.status.code(), Some(6), "{}", exit.stderr);
    let events: Vec<serde_json::Value> = exit
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let failed = events.last().unwrap();
    assert_eq!(failed["event"], "failed", "{failed}");
    assert_eq!(failed["error"]["kind"], "key_not_stored", "{failed}");
    assert_eq!(failed["key"], KEY, "{failed}");
    assert_eq!(exit.stdout.matches(KEY).count(), 1, "{}", exit.stdout);
    assert!(!exit.stderr.contains(KEY), "{}", exit.stderr);
}

#[test]
fn stdout_store_prints_only_the_key() {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let mut cli = Cli::login(&stand_in, dir.path(), &["--store", "stdout"], "warn", None);
    let visit = come_back(&cli.callback_url(), CODE);
    assert!(visit.page.body.contains("Signed in to OpenRouter"));
    let exit = cli.wait_within(PATIENCE);
    assert_eq!(exit.status.code(), Some(0), "{}", exit.stderr);
    assert_eq!(exit.stdout, format!("{KEY}\n"));
    assert!(!exit.stderr.contains(KEY), "{}", exit.stderr);
    assert!(
        exit.stderr.contains("printed to standard output"),
        "{}",
        exit.stderr
    );
}

/// `--json` promises one JSON object per line on stdout and `--store stdout` the bare key:
/// together they would give a reader a line it cannot parse. Refused before any sign-in.
#[test]
fn json_with_the_stdout_store_is_a_usage_error_before_signing_in() {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_openrouter-auth"))
        .args(["login", "--no-browser", "--json", "--store", "stdout"])
        .args(["--base-url", stand_in.url.as_str()])
        .env("HOME", dir.path())
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stdout = String::from_utf8(out.stdout).unwrap();
    let lines: Vec<serde_json::Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert_eq!(lines[0]["event"], "failed");
    assert_eq!(lines[0]["error"]["kind"], "usage");
    assert!(stand_in.exchanges().is_empty(), "nothing may be signed in");
}

#[cfg(unix)]
#[test]
fn ctrl_c_while_waiting_exits_130_and_frees_the_port() {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let mut cli = Cli::login(&stand_in, dir.path(), &[], "warn", None);
    let callback_url = cli.callback_url();
    let status = std::process::Command::new("kill")
        .args(["-INT", &cli.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    let exit = cli.wait_within(Duration::from_secs(5));
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(exit.status.code(), Some(130), "{}", exit.stderr);
    assert!(exit.stderr.contains("cancelled"), "{}", exit.stderr);
    assert!(std::net::TcpStream::connect(addr_of(&callback_url)).is_err());
}

/// Each subcommand's `--help` lists the exit codes (what `login --help` shows is what a user
/// reads; the top-level help is not enough).
#[test]
fn every_subcommand_help_lists_the_exit_codes() {
    for sub in ["login", "status", "logout", "token"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_openrouter-auth"))
            .args([sub, "--help"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{sub}: {out:?}");
        let help = String::from_utf8(out.stdout).unwrap();
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
    let home = tempdir();
    let cli = |args: &[&str], env_url: Option<&str>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_openrouter-auth"));
        cmd.args(args)
            .env("HOME", home.path())
            .env("XDG_CONFIG_HOME", home.path().join(".config"))
            .env("XDG_DATA_HOME", home.path().join(".local/share"))
            .env_remove("OPENROUTER_AUTH_BASE_URL")
            .stdin(std::process::Stdio::null());
        if let Some(u) = env_url {
            cmd.env("OPENROUTER_AUTH_BASE_URL", u);
        }
        cmd.output().unwrap()
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
            let out = cli(args, None);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
            assert!(stderr.contains("https URL"), "{stderr}");
        }
        let out = cli(&["status"], Some(url));
        assert_eq!(out.status.code(), Some(2), "env {url}: {:?}", out);
    }
    // Loopback http (the emulator) and https are fine: nothing stored, exit 8.
    for url in [
        "http://127.0.0.1:9",
        "http://localhost:9",
        "http://[::1]:9",
        "https://openrouter.ai",
    ] {
        let out = cli(&["status", "--base-url", url], None);
        assert_eq!(out.status.code(), Some(8), "{url}: {out:?}");
    }
}
