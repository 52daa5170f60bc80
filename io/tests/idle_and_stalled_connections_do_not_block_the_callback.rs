//! Connections that send nothing (browser preconnects) or half a request (a slowloris) hold
//! no one up: each has its own read deadline, and the real callback is served while they are
//! still open. The same for the `openrouter-auth` process under a descriptor limit:
//! tests/tests/callback_gets_past_more_idle_connections_than_descriptors.rs.

#[macro_use]
mod common;

use common::*;
use std::io::{Read, Write};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// 300 idle sockets on both ends, times two drivers, is a lot of descriptors for one test
/// process: run these one at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn three_hundred_idle_connections(driver: Driver) {
    let _serial = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let stand_in = StandIn::new();
    let dir = tempdir();
    let mut login = Running::start(driver, options(&stand_in, dir.path()));
    let callback_url = login.callback_url();
    let addr = addr_of(&callback_url);
    let started = Instant::now();
    let idle: Vec<_> = (0..300).map(|_| connect(addr)).collect();
    let visit = come_back(&callback_url, CODE);
    assert_signed_in(login.finish(), &visit, dir.path());
    // On loopback all of this takes milliseconds. A connection attempt the kernel dropped
    // (its accept queue overflowed) is retried only after 1 s, then 3 s: the browser's
    // callback can be one of them.
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "300 idle connections and the callback took {:?}",
        started.elapsed()
    );
    // The idle connections got nothing: no answer was invented for them.
    for mut s in idle {
        s.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 64];
        match s.read(&mut buf) {
            Ok(0) | Err(_) => {}
            Ok(n) => panic!(
                "an idle connection got {:?}",
                String::from_utf8_lossy(&buf[..n])
            ),
        }
    }
}

fn half_request_that_stalls(driver: Driver) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let mut login = Running::start(driver, options(&stand_in, dir.path()));
    let callback_url = login.callback_url();
    let addr = addr_of(&callback_url);
    let mut stalled = connect(addr);
    // Our own callback path, the code included, but the head never ends.
    let half = format!(
        "GET {} HTTP/1.1\r\nHost: local",
        callback_target(&callback_url, "never-finished")
    );
    stalled.write_all(half.as_bytes()).unwrap();
    let started = Instant::now();
    let visit = come_back(&callback_url, CODE);
    assert_signed_in(login.finish(), &visit, dir.path());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the callback waited for the stalled connection ({:?})",
        started.elapsed()
    );
    let exchanges = stand_in.exchanges();
    assert_eq!(exchanges.len(), 1);
    assert_eq!(exchanges[0].code, CODE);
    // The stalled connection is not answered as if it were a request; at the latest when
    // login returns it is closed.
    stalled
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut rest = Vec::new();
    match stalled.read_to_end(&mut rest) {
        Ok(_) => assert!(
            rest.is_empty() || rest.starts_with(b"HTTP/1.1 408"),
            "{:?}",
            String::from_utf8_lossy(&rest)
        ),
        Err(e) => assert!(
            e.kind() == std::io::ErrorKind::ConnectionReset,
            "the stalled connection was left open after login returned: {e}"
        ),
    }
}

both_drivers!(three_hundred_idle_connections, half_request_that_stalls);
