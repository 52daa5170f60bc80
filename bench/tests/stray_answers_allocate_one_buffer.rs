//! A flow answers a stray request with one allocation: the buffer of the encoded bytes
//! (issue 17).
//!
//! The path is the loopback server's: its head parse (`openrouter_auth::head::parse_head`),
//! the flow's decision and answer on the borrowed head (`Flow::handle_request`, which the
//! server calls), `poll_output`, `BrowserResponse::encode`, and dropping it all. The flow
//! renders each page once, on first use, and shares it after that (the reason phrase and
//! the headers are static, the body an `Arc<str>`), so after one warm-up request of each
//! kind, every repeat costs exactly the one `Vec<u8>` that `encode` returns at its exact
//! size: no other allocation and no reallocation. The same holds for a shell that builds
//! the owned `BrowserRequest` and passes `Input::Request` (that request's own copies are
//! made outside the count), and for the result page of a finished flow: its `/done` page
//! is rendered once, not again for each reload.
//!
//! Before this change each answer rendered its page again: about 25 allocations (the HTML
//! body, owned header names and values, the reason, the formatted head; `BENCHMARKS.md`,
//! issue 17, counts them under callgrind).
//!
//! A counting global allocator wraps the system one; this binary holds a single test, so
//! nothing else allocates while it counts. Not pinned here: the server's own answers (503,
//! 408, 431, its 400s), which it renders once per process and writes from the same bytes
//! without the flow.

use openrouter_auth::head::{parse_head, ParsedHead};
use openrouter_auth_core::{
    AppName, BrowserRequest, ConnectionId, Flow, FlowConfig, Handled, HttpResponse, Input, Output,
    Phase, Time,
};
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use std::alloc::System;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const PORT: u16 = 53122;

use openrouter_auth_bench::corpus::browser_head as head;

/// What one answer cost, and what it was.
struct Answer {
    status: u16,
    bytes: usize,
    allocations: usize,
    reallocations: usize,
}

/// Feeds `bytes` to `flow` as the server does and encodes the one answer, counting.
fn answer_borrowed(flow: &mut Flow, conn: u64, bytes: &[u8], now: Time) -> Answer {
    let region = Region::new(GLOBAL);
    let handled = match parse_head(bytes) {
        ParsedHead::Request(h) => flow.handle_request(ConnectionId(conn), &h, now),
        other => panic!("the server did not parse it: {other:?}"),
    };
    finish_answer(flow, region, handled)
}

/// The same through `Input::Request`, with the owned request built before counting.
fn answer_owned(flow: &mut Flow, conn: u64, bytes: &[u8], now: Time) -> Answer {
    let ParsedHead::Request(h) = parse_head(bytes) else {
        panic!("the server did not parse it")
    };
    let request: BrowserRequest = h.to_request(ConnectionId(conn));
    let region = Region::new(GLOBAL);
    let handled = flow.handle_input(Input::Request(request), now);
    finish_answer(flow, region, handled)
}

fn finish_answer(flow: &mut Flow, region: Region<'_, System>, handled: Handled) -> Answer {
    let mut answer = None;
    while let Some(out) = flow.poll_output() {
        match out {
            Output::Respond {
                response,
                head_only,
                ..
            } => {
                assert!(answer.is_none(), "two answers");
                let encoded = response.encode(head_only);
                answer = Some((response.status, encoded.len()));
            }
            // The last `/done` page of a lingering flow comes with the end of the flow.
            Output::Finished(_) => {}
            other => panic!("not an answer: {other:?}"),
        }
    }
    let stats = region.change();
    let (status, bytes) = answer.unwrap_or_else(|| panic!("no answer ({handled:?})"));
    Answer {
        status,
        bytes,
        allocations: stats.allocations,
        reallocations: stats.reallocations,
    }
}

#[test]
fn a_repeated_stray_answer_allocates_only_its_output_buffer() {
    use rand_chacha::rand_core::SeedableRng;
    let mut config = FlowConfig::default();
    config.app_name = AppName::new("Acme Agent").unwrap();
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(17);
    let mut flow: Flow = Flow::new(config, &mut rng, Time::ZERO).unwrap();
    let _ = flow.handle_input(
        Input::ListenerBound {
            port: PORT,
            ipv6: true,
        },
        Time::ZERO,
    );
    while flow.poll_output().is_some() {}
    let own = format!("/callback/{}", flow.nonce().expose_secret());
    let host = format!("localhost:{PORT}");
    let strays: Vec<(&str, u16, Vec<u8>)> = vec![
        ("favicon", 404, head("GET", "/favicon.ico", &host)),
        ("root", 404, head("GET", "/", &host)),
        (
            "junk target",
            404,
            head(
                "GET",
                "/wp-login.php?redirect_to=%2Fadmin&x=%zz#frag",
                &host,
            ),
        ),
        (
            "guessed nonce",
            404,
            head("GET", "/callback/AAAAAAAAAAAAAAAAAAAA?code=stolen", &host),
        ),
        ("HEAD favicon", 404, head("HEAD", "/favicon.ico", &host)),
        ("HEAD of own path", 400, head("HEAD", &own, &host)),
        ("no parameters", 400, head("GET", &own, &host)),
        (
            "foreign state",
            400,
            head("GET", &format!("{own}?state=someone-else&code=abc"), &host),
        ),
        (
            "bad escape",
            400,
            head("GET", &format!("{own}?code=a%2"), &host),
        ),
        (
            "non-UTF-8 escape",
            400,
            head("GET", &format!("{own}?code=%C3%28"), &host),
        ),
        (
            "duplicate code",
            400,
            head("GET", &format!("{own}?code=a&code=b"), &host),
        ),
        (
            "/done while waiting",
            200,
            head("GET", &format!("{own}/done"), &host),
        ),
        (
            "DNS rebinding",
            421,
            head("GET", &own, "evil.example:53122"),
        ),
        (
            "wrong port",
            421,
            head("GET", "/favicon.ico", "localhost:1"),
        ),
        ("CORS preflight", 405, head("OPTIONS", &own, &host)),
        ("POST", 405, head("POST", "/callback/x", &host)),
    ];
    let mut conn = 1;
    for (name, status, bytes) in &strays {
        // The first of its kind renders the page.
        let first = answer_borrowed(&mut flow, conn, bytes, Time::from_millis(conn));
        conn += 1;
        assert_eq!(first.status, *status, "{name}");
        for (how, answer) in [
            (
                "borrowed head",
                answer_borrowed(&mut flow, conn, bytes, Time::from_millis(conn)),
            ),
            (
                "Input::Request",
                answer_owned(&mut flow, conn + 1, bytes, Time::from_millis(conn)),
            ),
        ] {
            assert_eq!(
                (answer.status, answer.bytes),
                (first.status, first.bytes),
                "{name}, {how}: another answer the second time"
            );
            assert_eq!(
                (answer.allocations, answer.reallocations),
                (1, 0),
                "{name}, {how}: more than the one output buffer"
            );
        }
        conn += 2;
        assert_eq!(flow.phase(), Phase::AwaitingCallback, "{name}");
    }

    // A finished flow's result page is rendered once, not for each visit to `/done`.
    let code = head("GET", &format!("{own}?code=the-code"), &host);
    let ParsedHead::Request(h) = parse_head(&code) else {
        unreachable!()
    };
    let _ = flow.handle_request(ConnectionId(1000), &h, Time::from_millis(500));
    let id = std::iter::from_fn(|| flow.poll_output())
        .find_map(|o| match o {
            Output::SendExchange { id, .. } => Some(id),
            _ => None,
        })
        .expect("the code is exchanged");
    let key = "sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    let _ = flow.handle_input(
        Input::ExchangeResponse {
            id,
            response: HttpResponse::new(200, format!(r#"{{"key":"{key}","user_id":"user_1"}}"#)),
        },
        Time::from_millis(600),
    );
    let _ = flow.handle_input(
        Input::KeyStored {
            location: "credentials file /home/ana/.config/openrouter-auth/credentials.json".into(),
            report: (),
        },
        Time::from_millis(700),
    );
    while flow.poll_output().is_some() {}
    let done = head("GET", &format!("{own}/done"), &host);
    let first = answer_borrowed(&mut flow, 1001, &done, Time::from_millis(800));
    assert_eq!(flow.phase(), Phase::Finished);
    assert_eq!(first.status, 200);
    for conn in 1002..1005 {
        let again = answer_borrowed(&mut flow, conn, &done, Time::from_millis(900));
        assert_eq!((again.status, again.bytes), (200, first.bytes));
        assert_eq!(
            (again.allocations, again.reallocations),
            (1, 0),
            "a reload of the result page rendered it again"
        );
    }

    // The counter counts: the first answer of a kind renders its page.
    let fresh = answer_borrowed(
        &mut flow,
        2000,
        &head("GET", &own, &host),
        Time::from_millis(1000),
    );
    assert_eq!(fresh.status, 200, "already finished");
    assert!(fresh.allocations > 1, "{}", fresh.allocations);
}
