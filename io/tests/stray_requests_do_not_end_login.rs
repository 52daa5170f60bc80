//! Anything that reaches the loopback listener and is not this flow's callback gets its own
//! small answer and leaves the login waiting: afterwards the real callback still signs in.
//! (PROTOCOL.md section 7: every request is hostile; only the flow's own path may end it.)

#[macro_use]
mod common;

use common::*;
use std::io::Write;
use std::net::SocketAddr;

/// Starts a login, runs `stray` against its listener, checks nothing was exchanged, then
/// completes the login as the browser and checks it signed in.
fn stray_then_sign_in(driver: Driver, stray: impl FnOnce(SocketAddr, &url::Url)) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let mut login = Running::start(driver, options(&stand_in, dir.path()));
    let callback_url = login.callback_url();
    let addr = addr_of(&callback_url);
    stray(addr, &callback_url);
    assert!(
        stand_in.exchanges().is_empty(),
        "a stray request caused an exchange"
    );
    assert!(login.still_running(), "a stray request ended the login");
    let visit = come_back(&callback_url, CODE);
    assert_signed_in(login.finish(), &visit, dir.path());
    assert_eq!(stand_in.exchanges().len(), 1);
}

/// The callback URL's nonce path segment.
fn nonce_of(callback_url: &url::Url) -> String {
    callback_url
        .path()
        .strip_prefix("/callback/")
        .unwrap()
        .to_owned()
}

fn favicon_is_not_found(driver: Driver) {
    stray_then_sign_in(driver, |addr, _| {
        let r = get(addr, "/favicon.ico");
        assert_eq!(r.status, 404, "{r:?}");
        assert_eq!(r.header("Connection"), Some("close"));
    });
}

fn wrong_nonce_is_not_found(driver: Driver) {
    stray_then_sign_in(driver, |addr, callback_url| {
        let nonce = nonce_of(callback_url);
        let mut other: Vec<char> = nonce.chars().collect();
        other[0] = if other[0] == 'A' { 'B' } else { 'A' };
        let other: String = other.into_iter().collect();
        let r = get(addr, &format!("/callback/{other}?code={CODE}"));
        assert_eq!(r.status, 404, "{r:?}");
        // A stale tab's /done page of another flow too.
        let r = get(addr, &format!("/callback/{other}/done"));
        assert_eq!(r.status, 404, "{r:?}");
    });
}

fn forged_denial_on_another_path_is_ignored(driver: Driver) {
    stray_then_sign_in(driver, |addr, callback_url| {
        let nonce = nonce_of(callback_url);
        for target in [
            "/?error=access_denied".to_string(),
            "/callback?error=access_denied".to_string(),
            "/callback/guess?error=access_denied".to_string(),
            format!("/callback/{nonce}x?error=access_denied"),
            format!("/other/{nonce}?error=access_denied"),
        ] {
            let r = get(addr, &target);
            assert_eq!(r.status, 404, "{target}: {r:?}");
            assert!(!r.body.contains("denied"), "{target}: {}", r.body);
        }
    });
}

fn head_gets_headers_only_and_uses_no_code(driver: Driver) {
    stray_then_sign_in(driver, |addr, callback_url| {
        let target = callback_target(callback_url, CODE);
        let req = format!(
            "HEAD {target} HTTP/1.1\r\nHost: localhost:{}\r\n\r\n",
            addr.port()
        );
        let r = raw(addr, req.as_bytes());
        assert_eq!(r.status, 200, "{r:?}");
        assert!(r.body.is_empty(), "HEAD got a body: {:?}", r.body);
        let len: usize = r.header("Content-Length").unwrap().parse().unwrap();
        assert!(len > 0, "HEAD says how long the GET body would be");
        assert_eq!(r.header("Cache-Control"), Some("no-store"));
        let r = raw(
            addr,
            format!(
                "HEAD /favicon.ico HTTP/1.1\r\nHost: localhost:{}\r\n\r\n",
                addr.port()
            )
            .as_bytes(),
        );
        assert_eq!(r.status, 404);
        assert!(r.body.is_empty());
    });
}

fn post_is_not_allowed(driver: Driver) {
    stray_then_sign_in(driver, |addr, callback_url| {
        let target = callback_target(callback_url, CODE);
        let body = "code=stolen&error=access_denied";
        let req = format!(
            "POST {target} HTTP/1.1\r\nHost: localhost:{}\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\r\n{body}",
            addr.port(),
            body.len()
        );
        let r = raw(addr, req.as_bytes());
        assert_eq!(r.status, 405, "{r:?}");
        assert_eq!(r.header("Allow"), Some("GET, HEAD"));
    });
}

fn oversized_head_is_refused(driver: Driver) {
    stray_then_sign_in(driver, |addr, callback_url| {
        let target = callback_target(callback_url, CODE);
        let mut req = format!(
            "GET {target} HTTP/1.1\r\nHost: localhost:{}\r\n",
            addr.port()
        );
        // Five 4 KiB cookies: over the 16 KiB limit in few headers, sent in one go.
        for i in 0..5 {
            req.push_str(&format!("Cookie: c{i}={}\r\n", "x".repeat(4096)));
        }
        req.push_str("\r\n");
        let r = raw(addr, req.as_bytes());
        assert_eq!(r.status, 431, "{r:?}");
        // Also a head that never ends: the answer comes without waiting for the end.
        let mut s = connect(addr);
        s.write_all(format!("GET / HTTP/1.1\r\nX-Pad: {}", "y".repeat(17_000)).as_bytes())
            .unwrap();
        let r = Response::parse(&read_to_close(&mut s).expect("an answer, not a reset"));
        assert_eq!(r.status, 431, "{r:?}");
    });
}

fn bad_host_is_misdirected(driver: Driver) {
    stray_then_sign_in(driver, |addr, callback_url| {
        let target = callback_target(callback_url, CODE);
        let port = addr.port();
        for host in [
            format!("Host: evil.example:{port}\r\n"),
            format!("Host: localhost:{}\r\n", port.wrapping_add(1)),
            format!("Host: localhost.evil.example:{port}\r\n"),
            format!("Host: localhost:{port}\r\nHost: evil.example\r\n"),
            String::new(),
        ] {
            let req = format!("GET {target} HTTP/1.1\r\n{host}\r\n");
            let r = raw(addr, req.as_bytes());
            assert_eq!(r.status, 421, "{host:?}: {r:?}");
        }
    });
}

both_drivers!(
    favicon_is_not_found,
    wrong_nonce_is_not_found,
    forged_denial_on_another_path_is_ignored,
    head_gets_headers_only_and_uses_no_code,
    post_is_not_allowed,
    oversized_head_is_refused,
    bad_host_is_misdirected,
);
