//! The happy path over real sockets: the browser comes back to the printed callback URL with a
//! code, the code is exchanged once (with the verifier that matches the challenge in the
//! authorization URL), the key lands in the store with mode 0600, and the browser ends on a
//! clean "Signed in" page. On 127.0.0.1 and on [::1], with both drivers.

#[macro_use]
mod common;

use common::*;
use openrouter_auth::core::{CodeChallengeMethod, CodeVerifier};
use openrouter_auth::LoginEvent;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

fn signs_in_end_to_end(driver: Driver) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let started = Instant::now();
    let mut login = Running::start(driver, options(&stand_in, dir.path()));
    let auth_url = login.authorization_url();
    let callback_url = login.callback_url();

    // What the user is told to open carries exactly this callback URL, on localhost.
    assert_eq!(callback_url.host_str(), Some("localhost"));
    assert!(
        callback_url.path().starts_with("/callback/"),
        "{callback_url}"
    );
    let param = |name: &str| {
        auth_url
            .query_pairs()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.into_owned())
    };
    assert_eq!(
        param("callback_url").as_deref(),
        Some(callback_url.as_str())
    );
    assert_eq!(param("code_challenge_method").as_deref(), Some("S256"));
    let challenge = param("code_challenge").expect("a code_challenge");

    let visit = come_back(&callback_url, CODE);
    let done = assert_signed_in(login.finish(), &visit, dir.path());
    assert!(started.elapsed() < PATIENCE);
    assert_eq!(
        done.stored[0].mode,
        if cfg!(unix) { Some(0o600) } else { None }
    );

    // One exchange, with our code and the verifier behind the published challenge.
    let exchanges = stand_in.exchanges();
    assert_eq!(exchanges.len(), 1, "{exchanges:?}");
    let ex = &exchanges[0];
    assert_eq!(ex.code, CODE);
    assert_eq!(ex.code_challenge_method, "S256");
    let verifier = CodeVerifier::parse(&ex.code_verifier).expect("a valid verifier");
    assert_eq!(
        verifier.challenge(CodeChallengeMethod::S256).as_str(),
        challenge
    );

    // The pages a browser keeps are private and carry nothing secret.
    for r in [&visit.redirect, &visit.page] {
        assert_eq!(r.header("Cache-Control"), Some("no-store"), "{r:?}");
        assert_eq!(r.header("Referrer-Policy"), Some("no-referrer"));
        assert_eq!(r.header("X-Content-Type-Options"), Some("nosniff"));
        assert!(r
            .header("Content-Security-Policy")
            .is_some_and(|c| c.contains("default-src 'none'")));
        assert!(!r.body.contains(KEY) && !r.body.contains(CODE));
    }

    let events = login.events();
    assert!(
        matches!(events.first(), Some(LoginEvent::Listening { port, .. }) if Some(*port) == callback_url.port()),
        "{events:?}"
    );
    assert!(events.contains(&LoginEvent::Exchanging { attempt: 1 }));
    assert!(events.contains(&LoginEvent::Storing));
    assert!(!events.contains(&LoginEvent::BrowserOpened));
}

fn signs_in_over_ipv6(driver: Driver) {
    let ipv6_usable = std::net::TcpListener::bind("[::1]:0").is_ok();
    let stand_in = StandIn::new();
    let dir = tempdir();
    let mut login = Running::start(driver, options(&stand_in, dir.path()));
    let callback_url = login.callback_url();
    let port = callback_url.port().unwrap();
    let ipv6 = login.events().iter().find_map(|e| match e {
        LoginEvent::Listening { ipv6, .. } => Some(*ipv6),
        _ => None,
    });
    if !ipv6_usable {
        eprintln!("skipped: ::1 cannot be bound on this machine");
        login.cancel.cancel();
        let _ = login.finish();
        return;
    }
    assert_eq!(
        ipv6,
        Some(true),
        "::1 is bindable here, so it must be served"
    );
    let v6: SocketAddr = format!("[::1]:{port}").parse().unwrap();
    // A browser that resolved localhost to ::1 may also say so in Host.
    let probe = raw(
        v6,
        format!("GET /favicon.ico HTTP/1.1\r\nHost: [::1]:{port}\r\n\r\n").as_bytes(),
    );
    assert_eq!(probe.status, 404);
    let visit = come_back_at(v6, &callback_url, CODE);
    assert_signed_in(login.finish(), &visit, dir.path());
}

/// A reload (or a second tab) while the code is being exchanged: one exchange, and both tabs
/// end on the same truthful page.
fn second_tab_during_the_exchange_shares_the_result(driver: Driver) {
    let stand_in = StandIn::answering_after(
        Duration::from_millis(300),
        200,
        serde_json::json!({"key": KEY, "user_id": "user_1"}),
    );
    let dir = tempdir();
    let mut login = Running::start(driver, options(&stand_in, dir.path()));
    let callback_url = login.callback_url();
    let first = {
        let callback_url = callback_url.clone();
        std::thread::spawn(move || come_back(&callback_url, CODE))
    };
    // The second request arrives while the first one's exchange is in flight.
    let deadline = Instant::now() + PATIENCE;
    while stand_in.exchanges().is_empty() {
        assert!(Instant::now() < deadline, "no exchange started");
        std::thread::sleep(Duration::from_millis(5));
    }
    let second = come_back(&callback_url, CODE);
    let first = first.join().unwrap();
    assert_signed_in(login.finish(), &first, dir.path());
    assert!(
        second.page.body.contains("Signed in to OpenRouter"),
        "{}",
        second.page.body
    );
    assert_eq!(
        stand_in.exchanges().len(),
        1,
        "one flow, one code, one exchange"
    );
}

/// Browsers send every `localhost` cookie to every port: a developer's machine with a few
/// local web apps can put 10+ KiB of cookies on the callback. It must still sign in.
fn callback_with_12_kib_of_localhost_cookies_signs_in(driver: Driver) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let mut login = Running::start(driver, options(&stand_in, dir.path()));
    let callback_url = login.callback_url();
    let addr = addr_of(&callback_url);
    let mut head = format!(
        "GET {} HTTP/1.1\r\nHost: localhost:{}\r\nUser-Agent: test-browser\r\n",
        callback_target(&callback_url, CODE),
        addr.port()
    );
    for app in ["grafana_session", "jupyter-token", "_oauth2_proxy"] {
        head.push_str(&format!("Cookie: {app}={}\r\n", "c".repeat(4200)));
    }
    head.push_str("\r\n");
    assert!(head.len() > 12 * 1024, "{}", head.len());
    let redirect = raw(addr, head.as_bytes());
    assert_eq!(redirect.status, 303, "{redirect:?}");
    let page = get(addr, redirect.header("Location").expect("a Location"));
    assert_signed_in(login.finish(), &Visit { redirect, page }, dir.path());
}

both_drivers!(
    callback_with_12_kib_of_localhost_cookies_signs_in,
    signs_in_end_to_end,
    signs_in_over_ipv6,
    second_tab_during_the_exchange_shares_the_result,
);
