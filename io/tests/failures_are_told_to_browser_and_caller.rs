//! When the sign-in fails (OpenRouter refuses the code, does not answer, cannot be reached,
//! or the user denies access) the browser's last page says so, the caller gets the matching
//! error, nothing is stored, and the single-use code was sent at most once.

#[macro_use]
mod common;

use common::*;
use openrouter_auth::core::flow::DONE_LINGER;
use openrouter_auth::core::{FlowError, NetworkError, OpenRouterError, UserError};
use openrouter_auth::LoginError;
use std::time::{Duration, Instant};

fn server_error_fails_the_sign_in(driver: Driver) {
    let stand_in = StandIn::answering(
        500,
        serde_json::json!({"error": {"code": 500, "message": "Internal Server Error"}}),
    );
    let dir = tempdir();
    let mut login = Running::start(driver, options(&stand_in, dir.path()));
    let callback_url = login.callback_url();
    let visit = come_back(&callback_url, CODE);
    let err = login.finish().expect_err("the exchange failed");
    assert!(
        matches!(
            err,
            LoginError::Flow(FlowError::OpenRouter(OpenRouterError::Server { .. }))
        ),
        "{err:?}"
    );
    assert_eq!(visit.page.status, 200);
    assert!(
        visit.page.body.contains("Sign-in failed"),
        "{}",
        visit.page.body
    );
    assert!(!visit.page.body.contains("Signed in to OpenRouter"));
    assert_eq!(stand_in.exchanges().len(), 1, "a 500 is never retried");
    assert!(!credentials(dir.path()).exists());
}

fn used_code_fails_the_sign_in(driver: Driver) {
    let stand_in = StandIn::answering(
        403,
        serde_json::json!({"error": {"code": 403, "message": "Invalid code or code_verifier"}}),
    );
    let dir = tempdir();
    let mut login = Running::start(driver, options(&stand_in, dir.path()));
    let callback_url = login.callback_url();
    let visit = come_back(&callback_url, CODE);
    let err = login.finish().expect_err("the exchange failed");
    assert!(
        matches!(
            err,
            LoginError::Flow(FlowError::User(UserError::InvalidCode))
        ),
        "{err:?}"
    );
    assert!(
        visit.page.body.contains("Sign-in failed"),
        "{}",
        visit.page.body
    );
    assert_eq!(stand_in.exchanges().len(), 1);
    // Once login returned the listener is gone: a reload is refused at once, never a hang,
    // and the used code is not sent again.
    assert!(std::net::TcpStream::connect(addr_of(&callback_url)).is_err());
    assert_eq!(stand_in.exchanges().len(), 1);
}

fn denial_on_own_path_ends_the_sign_in(driver: Driver) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let mut login = Running::start(driver, options(&stand_in, dir.path()));
    let callback_url = login.callback_url();
    let started = Instant::now();
    // A 303 to the clean `/done` URL, so the error leaves the address bar; `/done` shows it.
    let visit = come_back_with_error(
        &callback_url,
        &[
            ("error", "access_denied"),
            ("error_description", "The user said <no>"),
        ],
    );
    let err = login.finish().expect_err("denied");
    assert!(
        started.elapsed() < DONE_LINGER,
        "fetching /done ends the sign-in without waiting out the linger: {:?}",
        started.elapsed()
    );
    assert!(
        matches!(err, LoginError::Flow(FlowError::User(UserError::Denied(ref e))) if e.error == "access_denied"),
        "{err:?}"
    );
    assert_eq!(err.kind(), "denied");
    let page = &visit.page;
    assert_eq!(page.status, 200, "{page:?}");
    assert!(page.body.contains("You declined access"), "{}", page.body);
    assert!(
        page.body.contains("The user said &lt;no&gt;"),
        "reflected text is escaped: {}",
        page.body
    );
    assert!(stand_in.exchanges().is_empty());
    assert!(!credentials(dir.path()).exists());
}

fn silent_openrouter_times_the_exchange_out(driver: Driver) {
    let stand_in = StandIn::answering_after(
        Duration::from_secs(5),
        200,
        serde_json::json!({"key": KEY, "user_id": "user_1"}),
    );
    let dir = tempdir();
    let mut login = Running::start(
        driver,
        options(&stand_in, dir.path()).exchange_timeout(Duration::from_secs(1)),
    );
    let callback_url = login.callback_url();
    let started = Instant::now();
    let visit = come_back(&callback_url, CODE);
    let err = login.finish().expect_err("timed out");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the exchange timeout is 1 s, the login took {:?}",
        started.elapsed()
    );
    assert!(
        matches!(
            err,
            LoginError::Flow(FlowError::Network(NetworkError::ExchangeTimedOut { .. }))
        ),
        "{err:?}"
    );
    assert!(
        visit.page.body.contains("Sign-in failed"),
        "{}",
        visit.page.body
    );
    assert_eq!(
        stand_in.exchanges().len(),
        1,
        "a sent code is never re-sent"
    );
    assert!(!credentials(dir.path()).exists());
}

fn unreachable_openrouter_is_a_network_error(driver: Driver) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    // Nothing listens here: every attempt is refused, certainly unsent, so retried until the
    // exchange deadline.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut login = Running::start(
        driver,
        options(&stand_in, dir.path())
            .base_url(format!("http://127.0.0.1:{closed}").parse().unwrap())
            .exchange_timeout(Duration::from_secs(1)),
    );
    let callback_url = login.callback_url();
    let started = Instant::now();
    let visit = come_back(&callback_url, CODE);
    let err = login.finish().expect_err("unreachable");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    match &err {
        LoginError::Flow(FlowError::Network(NetworkError::Unreachable {
            may_have_been_sent,
            ..
        })) => assert!(!may_have_been_sent, "{err}"),
        other => panic!("expected a network error, got {other:?}"),
    }
    assert!(
        err.to_string().contains("could not reach OpenRouter"),
        "{err}"
    );
    assert!(
        !err.to_string().contains(CODE),
        "the error names no secret: {err}"
    );
    let attempts = login
        .events()
        .iter()
        .filter(|e| matches!(e, openrouter_auth::LoginEvent::Exchanging { .. }))
        .count();
    assert!(attempts >= 2, "a refused connection is retried: {attempts}");
    assert!(
        visit.page.body.contains("Sign-in failed"),
        "{}",
        visit.page.body
    );
}

both_drivers!(
    server_error_fails_the_sign_in,
    used_code_fails_the_sign_in,
    denial_on_own_path_ends_the_sign_in,
    silent_openrouter_times_the_exchange_out,
    unreachable_openrouter_is_a_network_error,
);
