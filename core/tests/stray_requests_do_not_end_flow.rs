//! Anything that reaches the loopback listener and is not the real callback gets exactly one
//! small answer and leaves the flow as it was (PROTOCOL.md sections 2 and 7): favicon, other
//! paths, other nonces, forged `error=` callbacks, HEAD, POST, DNS rebinding, bad `state`,
//! malformed and oversize targets. Afterwards the real callback still signs the user in.
mod common;
use common::*;
use openrouter_auth_core::*;
use proptest::strategy::Strategy as _;

struct Stray {
    what: &'static str,
    method: &'static str,
    target: String,
    host: Option<String>,
    status: u16,
    head_only: bool,
}

fn strays(f: &Flow) -> Vec<Stray> {
    let ok_host = Some(format!("localhost:{PORT}"));
    let s = |what, method, target: String, host: Option<String>, status, head_only| Stray {
        what,
        method,
        target,
        host,
        status,
        head_only,
    };
    vec![
        s(
            "favicon",
            "GET",
            "/favicon.ico".into(),
            ok_host.clone(),
            404,
            false,
        ),
        s("root", "GET", "/".into(), ok_host.clone(), 404, false),
        s(
            "wrong nonce with a code",
            "GET",
            "/callback/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA?code=forged".into(),
            ok_host.clone(),
            404,
            false,
        ),
        s(
            "error on a wrong path",
            "GET",
            "/?error=access_denied".into(),
            ok_host.clone(),
            404,
            false,
        ),
        s(
            "error on a wrong nonce",
            "GET",
            "/callback/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA?error=access_denied".into(),
            ok_host.clone(),
            404,
            false,
        ),
        s(
            "error on an empty nonce",
            "GET",
            "/callback/?error=access_denied".into(),
            ok_host.clone(),
            404,
            false,
        ),
        s(
            "our nonce as a prefix only",
            "GET",
            own(f, "x?code=forged"),
            ok_host.clone(),
            404,
            false,
        ),
        s(
            "HEAD with a code",
            "HEAD",
            own(f, "?code=c"),
            ok_host.clone(),
            200,
            true,
        ),
        s(
            "HEAD with an error",
            "HEAD",
            own(f, "?error=access_denied"),
            ok_host.clone(),
            200,
            true,
        ),
        s(
            "POST with a code",
            "POST",
            own(f, "?code=c"),
            ok_host.clone(),
            405,
            false,
        ),
        s(
            "PUT with an error",
            "PUT",
            own(f, "?error=access_denied"),
            ok_host.clone(),
            405,
            false,
        ),
        s(
            "foreign host",
            "GET",
            own(f, "?code=c"),
            Some(format!("evil.example:{PORT}")),
            421,
            false,
        ),
        s(
            "localhost on another port",
            "GET",
            own(f, "?code=c"),
            Some(format!("localhost:{}", PORT + 1)),
            421,
            false,
        ),
        s(
            "loopback-looking foreign host",
            "GET",
            own(f, "?code=c"),
            Some(format!("localhost.evil.example:{PORT}")),
            421,
            false,
        ),
        s(
            "junk after [::1]",
            "GET",
            own(f, "?code=c"),
            Some("[::1]evil.example".into()),
            421,
            false,
        ),
        s("missing host", "GET", own(f, "?code=c"), None, 421, false),
        s(
            "foreign host on HEAD",
            "HEAD",
            own(f, "?code=c"),
            Some(format!("evil.example:{PORT}")),
            421,
            true,
        ),
        s(
            "state mismatch",
            "GET",
            own(f, "?state=someone-else&code=c"),
            ok_host.clone(),
            400,
            false,
        ),
        s(
            "state mismatch on an error",
            "GET",
            own(f, "?state=someone-else&error=access_denied"),
            ok_host.clone(),
            400,
            false,
        ),
        s(
            "bad percent-encoding",
            "GET",
            own(f, "?code=%zz"),
            ok_host.clone(),
            400,
            false,
        ),
        s(
            "not UTF-8",
            "GET",
            own(f, "?code=%ff%fe"),
            ok_host.clone(),
            400,
            false,
        ),
        s(
            "code twice",
            "GET",
            own(f, "?code=a&code=b"),
            ok_host.clone(),
            400,
            false,
        ),
        s(
            "empty code",
            "GET",
            own(f, "?code="),
            ok_host.clone(),
            400,
            false,
        ),
        s(
            "control character in code",
            "GET",
            own(f, "?code=a%0Ab"),
            ok_host.clone(),
            400,
            false,
        ),
        s(
            "no parameters",
            "GET",
            own(f, ""),
            ok_host.clone(),
            400,
            false,
        ),
        s(
            "oversize target",
            "GET",
            own(f, &format!("?code={}", "a".repeat(9000))),
            ok_host.clone(),
            400,
            false,
        ),
    ]
}

fn send(f: &mut Flow, conn: u64, s: &Stray, at: u64) -> Vec<Output> {
    let _ = f.handle_input(
        Input::Request(BrowserRequest {
            conn: ConnectionId(conn),
            method: s.method.into(),
            target: zeroize::Zeroizing::new(s.target.as_bytes().to_vec()),
            host: s.host.as_ref().map(|h| h.as_bytes().to_vec()),
        }),
        t(at),
    );
    drain(f)
}

/// Checks the single answer and that nothing else happened.
fn assert_only_answer(s: &Stray, outs: &[Output], conn: u64) -> BrowserResponse {
    assert_eq!(outs.len(), 1, "{}: exactly one output: {outs:?}", s.what);
    let Output::Respond {
        conn: c,
        response,
        head_only,
    } = &outs[0]
    else {
        panic!("{}: {outs:?}", s.what)
    };
    assert_eq!(c.0, conn, "{}", s.what);
    assert_eq!(response.status, s.status, "{}: {response:?}", s.what);
    assert_eq!(*head_only, s.head_only, "{}", s.what);
    response.clone()
}

#[test]
fn each_stray_request_gets_one_answer_and_the_flow_still_completes() {
    let n = strays(&bound_flow(0, FlowConfig::default())).len();
    for i in 0..n {
        let mut f = bound_flow(100 + i as u64, FlowConfig::default());
        drain(&mut f);
        let s = &strays(&f)[i];
        let outs = send(&mut f, 1, s, 10);
        let r = assert_only_answer(s, &outs, 1);
        if s.status == 405 {
            assert_eq!(r.header("allow"), Some("GET, HEAD"), "{}", s.what);
        }
        if s.method == "HEAD" && s.status == 200 {
            assert_eq!(title(&r), "Signing in…", "{}", s.what);
        }
        assert_eq!(f.phase(), Phase::AwaitingCallback, "{}", s.what);
        assert_eq!(f.exchanges_sent(), 0, "{}: no exchange", s.what);
        assert!(f.outcome().is_none(), "{}", s.what);
        assert_eq!(f.poll_timeout(), Some(t(600_000)), "{}", s.what);
        complete_via_callback(&mut f, 2, 20);
        assert_eq!(f.exchanges_sent(), 1, "{}", s.what);
    }
}

#[test]
fn all_strays_in_a_row_then_the_real_callback() {
    let mut f = bound_flow(7, FlowConfig::default());
    drain(&mut f);
    let list = strays(&f);
    for (i, s) in list.iter().enumerate() {
        let outs = send(&mut f, i as u64 + 1, s, 10 + i as u64);
        assert_only_answer(s, &outs, i as u64 + 1);
    }
    assert_eq!(f.phase(), Phase::AwaitingCallback);
    complete_via_callback(&mut f, 1000, 1000);
    assert_eq!(f.exchanges_sent(), 1);
}

#[test]
fn strays_during_the_exchange_neither_answer_the_held_tab_nor_resend() {
    let (mut f, id) = exchanging_flow(8, 1);
    let list = strays(&f);
    for (i, s) in list.iter().enumerate() {
        let conn = 100 + i as u64;
        let outs = send(&mut f, conn, s, 1001 + i as u64);
        assert_only_answer(s, &outs, conn);
        assert_eq!(f.phase(), Phase::Exchanging, "{}", s.what);
    }
    assert_eq!(f.exchanges_sent(), 1);
    // The held tab is still waiting, and gets its redirect once the key is stored.
    let _ = f.handle_input(
        Input::ExchangeResponse {
            id,
            response: ok_response(),
        },
        t(2000),
    );
    let _ = f.handle_input(
        Input::KeyStored {
            location: "x".into(),
            report: (),
        },
        t(2001),
    );
    let outs = drain(&mut f);
    assert_eq!(response_for(&outs, 1).status, 303);
    assert_eq!(ended(&f), Some(End::Stored));
}

#[test]
fn every_loopback_spelling_of_our_host_is_accepted() {
    for host in [
        format!("localhost:{PORT}"),
        format!("LOCALHOST:{PORT}"),
        format!("LocalHost:{PORT}"),
        format!("127.0.0.1:{PORT}"),
        format!("[::1]:{PORT}"),
    ] {
        let mut f = bound_flow(9, FlowConfig::default());
        drain(&mut f);
        let _ = f.handle_input(req(1, "GET", &own(&f, "?code=c"), &host), t(1));
        let outs = drain(&mut f);
        assert_eq!(f.phase(), Phase::Exchanging, "{host}: {outs:?}");
        assert_eq!(sends(&outs), 1, "{host}");
        assert!(
            outs.iter().all(|o| !matches!(o, Output::Respond { .. })),
            "{host}: held, not answered: {outs:?}"
        );
    }
}

#[test]
fn host_guard_table() {
    let p = Some(PORT);
    let ok = |h: &str, port| host_is_ours(Some(h.as_bytes()), port);
    assert!(ok(&format!("localhost:{PORT}"), p));
    assert!(ok(&format!("[::1]:{PORT}"), p));
    assert!(ok("localhost", Some(80)));
    assert!(ok("[::1]", Some(80)));
    assert!(!ok("localhost", p), "a missing port means 80");
    assert!(!ok(&format!("evil.example:{PORT}"), p));
    assert!(!ok(&format!("localhost:{}", PORT + 1), p));
    assert!(!ok("localhost:", p));
    assert!(!ok(&format!("localhost:{PORT}:{PORT}"), p));
    assert!(!ok(&format!("127.0.0.2:{PORT}"), p));
    assert!(!ok(&format!("[::2]:{PORT}"), p));
    // Only digits make a port; junk after `[::1]` is not a port.
    assert!(!ok(&format!("localhost:+{PORT}"), p));
    assert!(!ok("[::1]evil.example", Some(80)));
    assert!(!ok("[::1]evil.example", None));
    assert!(
        !ok("localhost:65616", Some(80)),
        "65616 is 80 + 65536: no port"
    );
    // White space around the value is ignored, as `str::trim` ignores it, Unicode included.
    assert!(ok(&format!(" \t localhost:{PORT}\x0b"), p));
    assert!(ok(&format!("\u{a0}127.0.0.1:{PORT}\u{3000}"), p));
    assert!(!ok(&format!("local\u{a0}host:{PORT}"), p));
    assert!(!ok(&format!("localhost:{PORT}\u{a0}1"), p));
    assert!(!host_is_ours(None, p));
    assert!(!host_is_ours(Some(&[0xff, b':', b'1']), None));
}

/// The guard as RFC 8252 section 8.3 and the table above state it, written plainly: trim,
/// split the port off at the last `:` (after `[::1]` for the IPv6 name), compare the name,
/// then the port. `host_is_ours` splits at the name's known length instead; both must agree.
fn host_guard_reference(host: &[u8], port: Option<u16>) -> bool {
    let Ok(host) = std::str::from_utf8(host) else {
        return false;
    };
    let host = host.trim();
    let (name, given) = match host.strip_prefix("[::1]") {
        Some("") => ("[::1]", None),
        Some(rest) => match rest.strip_prefix(':') {
            Some(p) => ("[::1]", Some(p)),
            None => return false,
        },
        None => match host.rsplit_once(':') {
            Some((n, p)) => (n, Some(p)),
            None => (host, None),
        },
    };
    if !(name.eq_ignore_ascii_case("localhost") || name == "127.0.0.1" || name == "[::1]") {
        return false;
    }
    let given = match given {
        None => None,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            match p.trim_start_matches('0') {
                "" => Some(0),
                digits => match digits.parse::<u16>() {
                    Ok(n) => Some(n),
                    Err(_) => return false,
                },
            }
        }
        Some(_) => return false,
    };
    match (port, given) {
        (None, _) => true,
        (Some(ours), Some(g)) => ours == g,
        (Some(ours), None) => ours == 80,
    }
}

proptest::proptest! {
    #[test]
    fn host_guard_agrees_with_the_plain_reference(
        lead in proptest::sample::select(vec!["", " ", "\t", "\u{a0}", "\x0b"]),
        name in proptest::sample::select(vec![
            "localhost", "LocalHost", "127.0.0.1", "[::1]", "[::2]", "[::1", "local",
            "localhostx", "127.0.0.10", "evil.example", "", "[", "localhost:", ":",
        ]),
        sep in proptest::sample::select(vec!["", ":", "::", ":+", ":0", "]:", "x"]),
        digits in proptest::prop_oneof![
            proptest::sample::select(vec![
                "80", "080", "53122", "0053122", "53123", "65535", "65536", "0", "",
            ]).prop_map(str::to_owned),
            "[0-9]{0,7}",
        ],
        tail in proptest::sample::select(vec!["", " ", "\r", "\u{3000}", "a", ":1", "\u{e9}"]),
        port in proptest::option::of(proptest::sample::select(vec![PORT, 80, 0, 1, 65535])),
    ) {
        let host = format!("{lead}{name}{sep}{digits}{tail}");
        let ours = host_is_ours(Some(host.as_bytes()), port);
        proptest::prop_assert_eq!(ours, host_guard_reference(host.as_bytes(), port), "{:?} {:?}", host, port);
    }

    #[test]
    fn host_guard_agrees_with_the_plain_reference_on_any_bytes(
        host in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..24),
        port in proptest::option::of(proptest::prelude::any::<u16>()),
    ) {
        proptest::prop_assert_eq!(host_is_ours(Some(&host), port), host_guard_reference(&host, port));
    }
}

#[test]
fn reloads_during_the_exchange_are_held_up_to_a_bound_then_told_to_wait() {
    use openrouter_auth_core::flow::MAX_HELD_CONNECTIONS;
    let (mut f, id) = exchanging_flow(10, 1);
    let extra = 4;
    for conn in 2..=(MAX_HELD_CONNECTIONS as u64 + extra) {
        let _ = f.handle_input(get(conn, &own(&f, "?code=the-code")), t(1000 + conn));
    }
    let outs = drain(&mut f);
    // The first tab plus 15 reloads are held; the rest get "in progress" at once.
    assert_eq!(outs.len(), extra as usize, "{outs:?}");
    for conn in (MAX_HELD_CONNECTIONS as u64 + 1)..=(MAX_HELD_CONNECTIONS as u64 + extra) {
        assert_eq!(title(&response_for(&outs, conn)), "Signing in…");
    }
    assert_eq!(sends(&outs), 0);
    let _ = f.handle_input(
        Input::ExchangeResponse {
            id,
            response: ok_response(),
        },
        t(2000),
    );
    let _ = f.handle_input(
        Input::KeyStored {
            location: "x".into(),
            report: (),
        },
        t(2001),
    );
    let outs = drain(&mut f);
    for conn in 1..=MAX_HELD_CONNECTIONS as u64 {
        assert_eq!(response_for(&outs, conn).status, 303);
    }
    assert_eq!(f.exchanges_sent(), 1);
}
