//! A stray request costs the loopback server's decision path no allocation (issue 17).
//!
//! The decision path is what the server and the flow do with a request head before an
//! answer is rendered: the server's head parse (`openrouter_auth::head::parse_head`, the
//! same function the server runs) and the flow's `classify_request` (the `Host` guard, the
//! method, the callback target), the function `Flow::on_request` decides with. A counting
//! global allocator wraps the system one; this binary holds a single test, so nothing else
//! allocates while it counts.
//!
//! Not pinned here: the answer (`stray_answers_allocate_one_buffer.rs` pins that it costs
//! the one output buffer), the owned `BrowserRequest` of `Input::Request` (the server no
//! longer builds it: it hands the flow the borrowed head), heads the server rejects itself,
//! and callbacks that carry a code or an `error=` (their values are copied out, the code
//! into a zeroizing buffer).

use openrouter_auth::head::{parse_head, ParsedHead};
use openrouter_auth_core::{classify_request, CallbackTarget, FlowNonce, RequestClass};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const PORT: u16 = 53122;

use openrouter_auth_bench::corpus::browser_head as head;

#[test]
fn stray_requests_allocate_nothing_before_the_answer() {
    use rand_chacha::rand_core::SeedableRng;
    let nonce = FlowNonce::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(17));
    let own = format!("/callback/{}", nonce.expose_secret());
    let host = format!("127.0.0.1:{PORT}");
    let strays: Vec<(&str, Vec<u8>)> = vec![
        ("favicon", head("GET", "/favicon.ico", &host)),
        ("root", head("GET", "/", &host)),
        (
            "junk target",
            head(
                "GET",
                "/wp-login.php?redirect_to=%2Fadmin&x=%zz&é=1#frag",
                &host,
            ),
        ),
        (
            "guessed nonce",
            head("GET", "/callback/AAAAAAAAAAAAAAAAAAAA?code=stolen", &host),
        ),
        ("HEAD guess", head("HEAD", "/callback/x/done", &host)),
        (
            "foreign state",
            head("GET", &format!("{own}?state=someone-else&code=abc"), &host),
        ),
        (
            "escaped foreign state",
            head("GET", &format!("{own}?state=%41%42c&code=abc"), &host),
        ),
        ("no parameters", head("GET", &own, &host)),
        ("bad escape", head("GET", &format!("{own}?code=a%2"), &host)),
        (
            "non-UTF-8 escape",
            head("GET", &format!("{own}?code=%C3%28"), &host),
        ),
        ("DNS rebinding", head("GET", &own, "evil.example:53122")),
        ("wrong port", head("GET", "/favicon.ico", "localhost:1")),
        ("CORS preflight", head("OPTIONS", &own, &host)),
        ("POST", head("POST", "/callback/x", &host)),
    ];
    for (name, bytes) in &strays {
        let region = Region::new(GLOBAL);
        let class = match parse_head(bytes) {
            ParsedHead::Request(h) => classify_request(&h, &nonce, Some(PORT)),
            other => panic!("{name}: the server did not parse it: {other:?}"),
        };
        let stats = region.change();
        assert!(
            !matches!(
                class,
                RequestClass::Target {
                    target: CallbackTarget::Code(_) | CallbackTarget::Error(_),
                    ..
                }
            ),
            "{name}: taken for a callback: {class:?}"
        );
        assert_eq!(
            (stats.allocations, stats.reallocations),
            (0, 0),
            "{name}: the decision ({class:?}) allocated"
        );
    }
    // The counter counts: the owned request the server hands the flow does allocate.
    let region = Region::new(GLOBAL);
    let ParsedHead::Request(h) = parse_head(&strays[0].1) else {
        unreachable!()
    };
    let owned = h.to_request(openrouter_auth_core::ConnectionId(1));
    assert!(region.change().allocations >= 2);
    drop(owned);
}
