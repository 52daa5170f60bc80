//! `openrouter-auth login` and the ports it may not have (issue 12, rule 1; RFC 8252 section
//! 8.3): a fixed port another program holds on `[::1]` ends the command at once, naming the
//! port, the family and the way out; a machine without IPv6 loopback signs in on 127.0.0.1 and
//! advertises `127.0.0.1`, never `localhost`. (The library's side:
//! io/tests/squatted_port_is_not_ours.rs.)

use std::net::{Ipv6Addr, TcpListener};
use std::time::Duration;

use openrouter_auth_sim::emulator::Mode;
use openrouter_auth_tests::{emulator, exit, Cli};

/// A listener on `[::1]` (any free port), or `None` (and a note) where ::1 is missing.
fn ipv6_squatter() -> Option<TcpListener> {
    match TcpListener::bind((Ipv6Addr::LOCALHOST, 0)) {
        Ok(l) => Some(l),
        Err(e) => {
            eprintln!("skipped: no IPv6 loopback on this machine ({e})");
            None
        }
    }
}

/// `login --port P` with P squatted on ::1 ends at once with exit 1, naming the port and
/// where it is taken; the command adds how to choose another.
#[test]
fn the_command_names_a_port_squatted_on_ipv6_and_the_way_out() {
    let Some(squatter) = ipv6_squatter() else {
        return;
    };
    let port = squatter.local_addr().unwrap().port().to_string();
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let store = format!("file:{}", home.path().join("credentials.json").display());
    let mut cli = Cli::login(&emulator, home.path(), &store, &["--port", &port]);
    let f = cli.finish_within(Duration::from_secs(10));
    assert_eq!(f.code, Some(exit::ERROR), "{}", f.stderr);
    assert!(
        f.stderr
            .contains(&format!("port {port} on [::1] is already in use")),
        "{}",
        f.stderr
    );
    assert!(f.stderr.contains("--port"), "{}", f.stderr);
    assert!(!f.stderr.contains("headless"), "{}", f.stderr);
    assert_eq!(emulator.exchange_attempts(), 0);
    assert!(emulator.issued_keys().is_empty());
}

/// On a machine without IPv6 loopback (here: a network namespace whose `lo` has IPv6
/// disabled, as in many containers) the command still signs in on 127.0.0.1, and the
/// `callback_url` it advertises names `127.0.0.1`: `localhost` could resolve to ::1, where
/// the port is not ours. Needs `unshare -rn` and `ip` (Linux); skips where they are missing.
#[cfg(target_os = "linux")]
#[test]
fn without_ipv6_the_command_advertises_127_0_0_1() {
    use openrouter_auth_tests::{cli_binary, command, Stream};
    use std::process::{Command, Stdio};
    const SETUP: &str =
        "ip link set lo up && echo 1 > /proc/sys/net/ipv6/conf/lo/disable_ipv6 || exit 97";
    let probe = Command::new("unshare")
        .args(["-rn", "sh", "-c", SETUP])
        .stderr(Stdio::null())
        .status();
    if !probe.is_ok_and(|s| s.success()) {
        eprintln!("skipped: cannot make a network namespace without IPv6 (unshare -rn, ip)");
        return;
    }
    let home = tempfile::tempdir().unwrap();
    let template = command(home.path());
    let mut cmd = Command::new("unshare");
    cmd.args(["-rn", "sh", "-c", &format!("{SETUP}; exec \"$0\" \"$@\"")])
        .arg(cli_binary())
        .args([
            "login",
            "--no-browser",
            "--json",
            "--callback-host",
            "localhost",
        ])
        .args(["--base-url", "http://127.0.0.1:9"])
        .arg("--store")
        .arg(format!(
            "file:{}",
            home.path().join("credentials.json").display()
        ))
        .stdin(Stdio::piped());
    for (k, v) in template.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.env("RUST_LOG", "warn");
    let mut cli = Cli::capture(cmd);
    let first = cli.wait_line(Stream::Stdout, |l| {
        serde_json::from_str::<serde_json::Value>(l)
            .is_ok_and(|e| e["event"] == "authorization_url" || e["event"] == "failed")
    });
    drop(cli);
    let event: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(event["event"], "authorization_url", "{first}");
    assert_eq!(event["headless"], false, "{first}");
    let callback_url = url::Url::parse(event["callback_url"].as_str().unwrap()).unwrap();
    assert_eq!(callback_url.host_str(), Some("127.0.0.1"), "{first}");
}
