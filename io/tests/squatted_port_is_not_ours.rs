//! A port is ours on both loopback families, or it is not ours (issue 12, rule 1; RFC 8252
//! section 8.3). Another program listening on `[::1]:P` or `127.0.0.1:P` makes `P` busy: a
//! browser that resolves `localhost` to the other family would hand it the authorization
//! code. A fixed port then fails at once, naming the port, the family and how to find the
//! holder; any free port (port 0) moves on to a port it holds on both. Only a machine
//! without IPv6 runs on 127.0.0.1 alone, and then advertises `127.0.0.1`, never `localhost`.
//!
//! Real sockets: the squatters are plain listeners in this process, the kind any local
//! program can open. Tests that need ::1 skip, saying so, where it is missing. The command's
//! side: tests/tests/squatted_port_is_not_ours_for_the_command.rs.

mod common;

use common::*;
use openrouter_auth::{BindError, IpFamily, LoginError, LoopbackServer};
use std::collections::HashSet;
use std::net::{Ipv6Addr, SocketAddr, TcpListener};

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

/// `login` with a port squatted on ::1 returns the typed error before anything is shown (the
/// command's side: tests/tests/squatted_port_is_not_ours_for_the_command.rs).
#[test]
fn login_on_a_port_squatted_on_ipv6_is_port_in_use() {
    let Some(squatter) = ipv6_squatter() else {
        return;
    };
    let port = port_of(&squatter);
    let stand_in = StandIn::new();
    let dir = tempdir();
    let mut login = Running::start(Driver::Blocking, options(&stand_in, dir.path()).port(port));
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
