//! A port is ours on both loopback families, or it is not ours (issue 12, rule 1; RFC 8252
//! section 8.3). Another program listening on `[::1]:P` or `127.0.0.1:P` makes `P` busy: a
//! browser that resolves `localhost` to the other family would hand it the authorization
//! code. A fixed port then fails at once, naming the port, the family and how to find the
//! holder; any free port (port 0) moves on to a port it holds on both. Only a machine
//! without IPv6 runs on 127.0.0.1 alone, and then advertises `127.0.0.1`, never `localhost`.
//!
//! Real sockets: the squatters are plain listeners in this process, the kind any local
//! program can open. Tests that need ::1 skip, saying so, where it is missing.

mod common;

use common::*;
use openrouter_auth::{BindError, IpFamily, LoginError, LoginOptions, LoopbackServer};
use std::collections::HashSet;
use std::net::{Ipv6Addr, SocketAddr, TcpListener};
use std::time::Duration;

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

fn port_of(l: &TcpListener) -> u16 {
    l.local_addr().unwrap().port()
}

#[test]
fn a_fixed_port_squatted_on_ipv6_is_busy_and_named() {
    let Some(squatter) = ipv6_squatter() else {
        return;
    };
    let port = port_of(&squatter);
    let err = LoopbackServer::bind(port)
        .err()
        .expect("a port another program holds on ::1 is not ours");
    assert!(
        matches!(err, BindError::PortInUse { port: p, family: IpFamily::V6 } if p == port),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&format!("port {port} on [::1] is already in use")),
        "{message}"
    );
    #[cfg(target_os = "linux")]
    assert!(
        message.contains(&format!("ss -ltnp 'sport = :{port}'")),
        "{message}"
    );
    assert!(!message.contains("--port"), "a library error: {message}");
    // Nothing is kept on 127.0.0.1 either.
    drop(TcpListener::bind(("127.0.0.1", port)).expect("127.0.0.1 let go"));
}

#[test]
fn a_fixed_port_squatted_on_ipv4_is_busy_and_named() {
    let squatter = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = port_of(&squatter);
    let err = LoopbackServer::bind(port)
        .err()
        .expect("a port another program holds on 127.0.0.1 is not ours");
    assert!(
        matches!(err, BindError::PortInUse { port: p, family: IpFamily::V4 } if p == port),
        "{err:?}"
    );
    assert!(
        err.to_string()
            .contains(&format!("port {port} on 127.0.0.1 is already in use")),
        "{err}"
    );
}

/// With thousands of `[::1]` ports squatted, every free port `bind(0)` ends up with is ours
/// on both families. (Binding 127.0.0.1 alone, 128 binds would land on a squatted port with
/// a chance of 1 - (1 - 4096/28232)^128, above 0.999999.)
#[test]
fn any_free_port_is_ours_on_both_families_among_squatters() {
    let Some(first) = ipv6_squatter() else {
        return;
    };
    let mut squatters = vec![first];
    for _ in 1..4096 {
        match TcpListener::bind((Ipv6Addr::LOCALHOST, 0)) {
            Ok(l) => squatters.push(l),
            Err(e) => {
                // Out of descriptors, probably: leave room for the 128 servers (4 each).
                eprintln!("stopped squatting at {} ports: {e}", squatters.len());
                squatters.truncate(squatters.len().saturating_sub(1024).max(1));
                break;
            }
        }
    }
    let squatted: HashSet<u16> = squatters.iter().map(port_of).collect();
    let mut ours = Vec::new();
    for _ in 0..128 {
        let server = LoopbackServer::bind(0).expect("a free port");
        let port = server.port();
        assert!(
            !squatted.contains(&port),
            "port {port} is shared with a squatter on ::1"
        );
        // Holding `[::1]:port` ourselves means no one else listens there.
        assert!(server.has_ipv6(), "port {port}: ::1 not held");
        ours.push(server);
    }
}

/// A whole sign-in among `[::1]` squatters, with the browser coming back over ::1 (as one
/// that resolves `localhost` to ::1 first does): it reaches our listener and signs in.
#[test]
fn a_browser_that_tries_ipv6_first_signs_in_with_us() {
    let Some(first) = ipv6_squatter() else {
        return;
    };
    let mut squatters = vec![first];
    squatters.extend((1..1024).filter_map(|_| TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).ok()));
    let stand_in = StandIn::new();
    let dir = tempdir();
    let mut login = Running::start(Driver::Blocking, options(&stand_in, dir.path()));
    let callback_url = login.callback_url();
    assert_eq!(callback_url.host_str(), Some("localhost"));
    let port = callback_url.port().unwrap();
    assert!(squatters.iter().all(|s| port_of(s) != port));
    // Both families answer, as our server does: a 404 for a path that is not the callback.
    for addr in [
        SocketAddr::from(([127, 0, 0, 1], port)),
        SocketAddr::from((Ipv6Addr::LOCALHOST, port)),
    ] {
        assert_eq!(get(addr, "/favicon.ico").status, 404, "{addr}");
    }
    let visit = come_back_at(
        SocketAddr::from((Ipv6Addr::LOCALHOST, port)),
        &callback_url,
        CODE,
    );
    assert_signed_in(login.finish(), &visit, dir.path());
}

/// `login --port P` with P squatted on ::1 ends at once with exit 1, naming the port and
/// where it is taken; the command adds how to choose another.
#[test]
fn the_command_names_a_port_squatted_on_ipv6_and_the_way_out() {
    let Some(squatter) = ipv6_squatter() else {
        return;
    };
    let port = port_of(&squatter).to_string();
    let stand_in = StandIn::new();
    let dir = tempdir();
    let cli = Cli::login(&stand_in, dir.path(), &["--port", &port], "warn", None);
    let exit = cli.wait_within(Duration::from_secs(10));
    assert_eq!(exit.status.code(), Some(1), "{}", exit.stderr);
    assert!(
        exit.stderr
            .contains(&format!("port {port} on [::1] is already in use")),
        "{}",
        exit.stderr
    );
    assert!(exit.stderr.contains("--port"), "{}", exit.stderr);
    assert!(!exit.stderr.contains("headless"), "{}", exit.stderr);
    assert!(stand_in.exchanges().is_empty());
}

/// The same through the library: `login` returns the typed error before anything is shown.
#[test]
fn login_on_a_port_squatted_on_ipv6_is_port_in_use() {
    let Some(squatter) = ipv6_squatter() else {
        return;
    };
    let port = port_of(&squatter);
    let stand_in = StandIn::new();
    let dir = tempdir();
    let mut login = Running::start(
        Driver::Blocking,
        LoginOptions {
            port,
            ..options(&stand_in, dir.path())
        },
    );
    let err = login.finish().expect_err("the port is taken on ::1");
    assert!(
        matches!(
            err,
            LoginError::Bind(BindError::PortInUse { port: p, family: IpFamily::V6 }) if p == port
        ),
        "{err:?}"
    );
    assert_eq!(err.kind(), "port_in_use");
    assert!(login.events().is_empty(), "{:?}", login.events());
}

/// On a machine without IPv6 loopback (here: a network namespace whose `lo` has IPv6
/// disabled, as in many containers) the command still signs in on 127.0.0.1, and the
/// `callback_url` it advertises names `127.0.0.1`: `localhost` could resolve to ::1, where
/// the port is not ours. Needs `unshare -rn` and `ip` (Linux); skips where they are missing.
#[cfg(target_os = "linux")]
#[test]
fn without_ipv6_the_command_advertises_127_0_0_1() {
    use std::io::BufRead;
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
    let dir = tempdir();
    let mut child = Command::new("unshare")
        .args(["-rn", "sh", "-c", &format!("{SETUP}; exec \"$0\" \"$@\"")])
        .arg(env!("CARGO_BIN_EXE_openrouter-auth"))
        .args([
            "login",
            "--no-browser",
            "--json",
            "--callback-host",
            "localhost",
        ])
        .args(["--base-url", "http://127.0.0.1:9"])
        .arg("--store")
        .arg(format!("file:{}", credentials(dir.path()).display()))
        .env("HOME", dir.path())
        .env("XDG_CONFIG_HOME", dir.path().join("config"))
        .env("XDG_DATA_HOME", dir.path().join("data"))
        .env("RUST_LOG", "warn")
        .env_remove("OPENROUTER_AUTH_BASE_URL")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run openrouter-auth in a namespace");
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    for line in stdout.lines() {
        let line = line.unwrap();
        let event: serde_json::Value = serde_json::from_str(&line).unwrap();
        first = line;
        if event["event"] == "authorization_url" || event["event"] == "failed" {
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let event: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(event["event"], "authorization_url", "{first}");
    assert_eq!(event["headless"], false, "{first}");
    let callback_url = url::Url::parse(event["callback_url"].as_str().unwrap()).unwrap();
    assert_eq!(callback_url.host_str(), Some("127.0.0.1"), "{first}");
}
