//! Ways a login ends without a callback: a fixed port that is taken is a clear error at once
//! (never a hang); cancelling, or dropping the `login_async` future, ends the login quickly
//! and frees the port; waiting longer than the timeout ends it with a timeout.

#[macro_use]
mod common;

use common::*;
use openrouter_auth::core::{FlowError, UserError};
use openrouter_auth::{BindError, LoginError};
use std::time::{Duration, Instant};

/// "At once": before any authorization URL is shown (no timing asserted: speed is for the
/// benchmarks).
fn busy_fixed_port_fails_before_any_url(driver: Driver) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let mut login = Running::start(driver, options(&stand_in, dir.path()).port(port));
    let err = login.finish().expect_err("the port is taken");
    let events = login.events();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, openrouter_auth::LoginEvent::AuthorizationUrl { .. })),
        "{events:?}"
    );
    assert!(
        matches!(err, LoginError::Bind(BindError::PortInUse { port: p, .. }) if p == port),
        "{err:?}"
    );
    assert_eq!(err.kind(), "port_in_use");
    let message = err.to_string();
    assert!(message.contains(&port.to_string()), "{message}");
    assert!(message.contains("127.0.0.1"), "{message}");
    // A library error: the CLI adds its own hint about `--port`.
    assert!(!message.contains("--port"), "{message}");
    assert!(stand_in.exchanges().is_empty());
    assert!(!credentials(dir.path()).exists());
}

/// An embedder's `base_url` that is plain http off loopback would carry the code verifier
/// and the key in clear: refused before any port is opened or anything is sent.
fn insecure_base_url_is_refused_before_anything_starts(driver: Driver) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    for base in [
        "http://openrouter.ai",
        "http://192.168.1.20:8080",
        "ftp://localhost",
    ] {
        let mut login = Running::start(
            driver,
            options(&stand_in, dir.path()).base_url(url::Url::parse(base).unwrap()),
        );
        let err = login
            .finish_within(Duration::from_secs(1))
            .expect_err("an insecure base URL");
        assert!(
            matches!(err, LoginError::InsecureBaseUrl { .. }),
            "{base}: {err:?}"
        );
        assert_eq!(err.kind(), "insecure_base_url");
        assert!(err.to_string().contains("https"), "{err}");
    }
    assert!(stand_in.exchanges().is_empty());
    assert!(!credentials(dir.path()).exists());
}

fn fixed_free_port_is_used(driver: Driver) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut login = Running::start(driver, options(&stand_in, dir.path()).port(port));
    let callback_url = login.callback_url();
    assert_eq!(callback_url.port(), Some(port));
    let visit = come_back(&callback_url, CODE);
    assert_signed_in(login.finish(), &visit, dir.path());
}

fn cancel_while_waiting_ends_login_and_frees_the_port(driver: Driver) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let mut login = Running::start(driver, options(&stand_in, dir.path()));
    let callback_url = login.callback_url();
    let port = callback_url.port().unwrap();
    // A stray request first, so the listener has served someone.
    assert_eq!(get(addr_of(&callback_url), "/favicon.ico").status, 404);
    let started = Instant::now();
    login.cancel.cancel();
    let err = login
        .finish_within(Duration::from_secs(2))
        .expect_err("cancelled");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "cancel took {:?}",
        started.elapsed()
    );
    assert!(
        matches!(
            err,
            LoginError::Flow(FlowError::User(UserError::Cancelled { .. }))
        ),
        "{err:?}"
    );
    assert_eq!(err.kind(), "cancelled");
    assert!(stand_in.exchanges().is_empty());
    assert!(!credentials(dir.path()).exists());
    // The port is free again: a new login can listen on it.
    let mut again = Running::start(driver, options(&stand_in, dir.path()).port(port));
    let callback_url = again.callback_url();
    assert_eq!(callback_url.port(), Some(port));
    let visit = come_back(&callback_url, CODE);
    assert_signed_in(again.finish(), &visit, dir.path());
}

fn cancel_before_start_ends_at_once(driver: Driver) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    // Cancel through a handle that is already cancelled when the login starts.
    let mut login = Running::start_cancelled(driver, options(&stand_in, dir.path()));
    let err = login
        .finish_within(Duration::from_secs(2))
        .expect_err("cancelled");
    assert!(
        matches!(
            err,
            LoginError::Flow(FlowError::User(UserError::Cancelled { .. }))
        ),
        "{err:?}"
    );
}

fn waiting_past_the_timeout_times_out(driver: Driver) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let started = Instant::now();
    let mut login = Running::start(
        driver,
        options(&stand_in, dir.path()).timeout(Duration::from_secs(1)),
    );
    let callback_url = login.callback_url();
    let err = login
        .finish_within(Duration::from_secs(3))
        .expect_err("timed out");
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_secs(1) && waited < Duration::from_secs(2),
        "{waited:?}"
    );
    assert!(
        matches!(
            err,
            LoginError::Flow(FlowError::User(UserError::CallbackTimedOut { .. }))
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("start the sign-in again"), "{err}");
    // The listener is gone with the login: a late browser is refused, not left hanging.
    assert!(std::net::TcpStream::connect(addr_of(&callback_url)).is_err());
}

/// Dropping the `login_async` future (a UI closing, a `select!` losing) cancels the login and
/// closes its listener.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_login_async_cancels_it() {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let (tx, rx) = std::sync::mpsc::channel();
    let observer = move |e: openrouter_auth::LoginEvent| {
        if let openrouter_auth::LoginEvent::AuthorizationUrl { callback_url, .. } = e {
            let _ = tx.send(callback_url);
        }
    };
    let cancel = openrouter_auth::CancelHandle::new();
    let task = tokio::spawn(openrouter_auth::login_async(
        options(&stand_in, dir.path()),
        Box::new(observer),
        cancel.clone(),
    ));
    let callback_url = tokio::task::spawn_blocking(move || rx.recv_timeout(PATIENCE))
        .await
        .unwrap()
        .expect("an authorization URL")
        .expect("a callback URL");
    let addr = addr_of(&callback_url);
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    assert!(
        cancel.is_cancelled(),
        "dropping the future cancels the handle"
    );
    let started = Instant::now();
    while std::net::TcpStream::connect(addr).is_ok() {
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "the listener outlived the dropped login"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(stand_in.exchanges().is_empty());
}

/// Issue 12 rule 2: a cancel while the exchange request is out (OpenRouter slow to answer)
/// says a key may have been created, with the link to the key list, and says so in the
/// error's fields too.
fn cancel_during_the_exchange_says_a_key_may_exist(driver: Driver) {
    let stand_in = StandIn::answering_after(
        Duration::from_secs(20),
        200,
        serde_json::json!({"key": KEY, "user_id": "user_1"}),
    );
    let dir = tempdir();
    let mut login = Running::start(driver, options(&stand_in, dir.path()));
    let callback_url = login.callback_url();
    // The browser comes back; its tab is held while the exchange runs.
    let tab = {
        let callback_url = callback_url.clone();
        std::thread::spawn(move || come_back(&callback_url, "slow-exchange-code"))
    };
    login.wait_for("the exchange", |e| {
        matches!(e, openrouter_auth::LoginEvent::Exchanging { .. }).then_some(())
    });
    let started = Instant::now();
    while stand_in.exchanges().is_empty() {
        assert!(started.elapsed() < PATIENCE, "the exchange never arrived");
        std::thread::sleep(Duration::from_millis(5));
    }
    login.cancel.cancel();
    let err = login
        .finish_within(Duration::from_secs(5))
        .expect_err("cancelled");
    assert!(
        matches!(
            err,
            LoginError::Flow(FlowError::User(UserError::Cancelled {
                may_have_been_sent: true
            }))
        ),
        "{err:?}"
    );
    assert_eq!(err.kind(), "cancelled");
    let message = err.to_string();
    assert!(
        message.contains("a key may have been created")
            && message.contains("https://openrouter.ai/keys"),
        "{message}"
    );
    // The held tab is sent to `/done`, which says the sign-in was cancelled.
    let visit = tab.join().unwrap();
    assert!(
        visit.page.body.contains("Sign-in cancelled"),
        "{}",
        visit.page.body
    );
    assert!(!credentials(dir.path()).exists());
}

both_drivers!(
    waiting_past_the_timeout_times_out,
    busy_fixed_port_fails_before_any_url,
    insecure_base_url_is_refused_before_anything_starts,
    fixed_free_port_is_used,
    cancel_while_waiting_ends_login_and_frees_the_port,
    cancel_before_start_ends_at_once,
    cancel_during_the_exchange_says_a_key_may_exist,
);
