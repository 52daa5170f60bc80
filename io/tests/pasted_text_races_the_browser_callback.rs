//! The library side of issue 6, points 1, 2 and 4: [`CancelHandle::paste`] feeds what the user
//! typed to a running login. In loopback mode a pasted code or redirect URL races the browser's
//! callback with the same verifier, and the first valid one wins; a URL with another nonce is
//! refused and the login keeps waiting. Headless logins open no listener at all, and end at
//! once when the paste source closes. Both drivers behave alike.

#[macro_use]
mod common;

use common::*;
use openrouter_auth::core::{FlowError, UserError};
use openrouter_auth::{CancelHandle, LoginError, LoginEvent, LoginOptions};
use std::time::{Duration, Instant};

fn headless(stand_in: &StandIn, dir: &std::path::Path) -> LoginOptions {
    options(stand_in, dir).headless(true)
}

fn rejected(e: &LoginEvent) -> Option<String> {
    match e {
        LoginEvent::PasteRejected { reason } => Some(reason.clone()),
        _ => None,
    }
}

fn a_pasted_code_wins_over_the_browser(driver: Driver) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let mut login = Running::start(driver, options(&stand_in, dir.path()));
    let callback = login.callback_url();
    login.cancel.paste(&format!("  {CODE}\n"));
    let done = login.finish().expect("signed in");
    assert_eq!(done.key.expose_secret(), KEY);
    let seen = stand_in.exchanges();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].code, CODE);
    // The browser path ended with the login: its late callback finds nobody listening.
    assert!(std::net::TcpStream::connect(addr_of(&callback)).is_err());
}

fn a_pasted_redirect_url_signs_in(driver: Driver) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let mut login = Running::start(driver, options(&stand_in, dir.path()));
    let mut landed = login.callback_url();
    landed.query_pairs_mut().append_pair("code", CODE);
    login.cancel.paste(landed.as_str());
    login.finish().expect("signed in");
    assert_eq!(stand_in.exchanges()[0].code, CODE);
}

fn a_url_with_another_nonce_is_refused_and_the_browser_still_wins(driver: Driver) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let mut login = Running::start(driver, options(&stand_in, dir.path()));
    let callback = login.callback_url();
    let mut forged = callback.clone();
    forged.set_path("/callback/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    forged.query_pairs_mut().append_pair("code", CODE);
    login.cancel.paste(forged.as_str());
    let reason = login.wait_for("a refused paste", rejected);
    assert!(reason.contains("another sign-in"), "{reason}");
    assert!(login.still_running());
    assert!(stand_in.exchanges().is_empty());
    let visit = come_back(&callback, CODE);
    assert_signed_in(login.finish(), &visit, dir.path());
}

fn headless_opens_no_listener_and_takes_a_pasted_code(driver: Driver) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let mut login = Running::start(driver, headless(&stand_in, dir.path()));
    let (url, callback) = login.wait_for("the authorization URL", |e| match e {
        LoginEvent::AuthorizationUrl {
            url,
            callback_url,
            headless: true,
        } => Some((url.clone(), callback_url.clone())),
        _ => None,
    });
    assert_eq!(callback, None);
    assert!(
        !url.query_pairs().any(|(k, _)| k == "callback_url"),
        "{url}"
    );
    assert!(
        url.query_pairs().any(|(k, _)| k == "code_challenge"),
        "{url}"
    );
    login.cancel.paste(CODE);
    let done = login.finish().expect("signed in");
    assert_eq!(done.key.expose_secret(), KEY);
    assert!(
        !login
            .events()
            .iter()
            .any(|e| matches!(e, LoginEvent::Listening { .. })),
        "headless mode opens no listener"
    );
}

fn text_pasted_before_the_login_starts_is_kept(driver: Driver) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let handle = CancelHandle::new();
    handle.paste(CODE);
    let mut login = Running::start_with_handle(driver, headless(&stand_in, dir.path()), handle);
    login.finish().expect("signed in");
    assert_eq!(stand_in.exchanges()[0].code, CODE);
}

fn headless_ends_at_once_when_pastes_close(driver: Driver) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let mut login = Running::start(driver, headless(&stand_in, dir.path()));
    login.wait_for("the authorization URL", |e| {
        matches!(e, LoginEvent::AuthorizationUrl { .. }).then_some(())
    });
    login.cancel.paste("not a code");
    login.wait_for("a refused paste", rejected);
    let started = Instant::now();
    login.cancel.close_pastes();
    let err = login
        .finish_within(Duration::from_secs(2))
        .expect_err("nothing left to wait for");
    assert!(started.elapsed() < Duration::from_secs(1));
    assert!(
        matches!(
            err,
            LoginError::Flow(FlowError::User(UserError::PastesClosed))
        ),
        "{err:?}"
    );
    assert_eq!(err.kind(), "no_code_source");
    assert!(stand_in.exchanges().is_empty());
}

fn a_code_then_end_of_input_still_signs_in(driver: Driver) {
    // `echo CODE | app`: the code and the end of input arrive together.
    let stand_in = StandIn::new();
    let dir = tempdir();
    let handle = CancelHandle::new();
    handle.paste(CODE);
    handle.close_pastes();
    let mut login = Running::start_with_handle(driver, headless(&stand_in, dir.path()), handle);
    login.finish().expect("signed in");
}

fn closed_pastes_do_not_end_a_loopback_login(driver: Driver) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let mut login = Running::start(driver, options(&stand_in, dir.path()));
    let callback = login.callback_url();
    login.cancel.close_pastes();
    std::thread::sleep(Duration::from_millis(100));
    assert!(login.still_running());
    let visit = come_back(&callback, CODE);
    assert_signed_in(login.finish(), &visit, dir.path());
}

fn cancel_still_wins_over_closed_pastes(driver: Driver) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let handle = CancelHandle::new();
    handle.cancel();
    handle.close_pastes();
    let mut login = Running::start_with_handle(driver, headless(&stand_in, dir.path()), handle);
    let err = login.finish().expect_err("cancelled");
    assert_eq!(err.kind(), "cancelled", "{err:?}");
}

both_drivers!(
    a_pasted_code_wins_over_the_browser,
    a_pasted_redirect_url_signs_in,
    a_url_with_another_nonce_is_refused_and_the_browser_still_wins,
    headless_opens_no_listener_and_takes_a_pasted_code,
    text_pasted_before_the_login_starts_is_kept,
    headless_ends_at_once_when_pastes_close,
    a_code_then_end_of_input_still_signs_in,
    closed_pastes_do_not_end_a_loopback_login,
    cancel_still_wins_over_closed_pastes,
);
