//! Issue 16: a dead OpenRouter is reported while the user is still on the consent page, not
//! after they approved. A probe beside the URL finds that nothing answers at the base URL and
//! says why; a reachable OpenRouter gets no such warning.

#[macro_use]
mod common;

use common::*;
use openrouter_auth::LoginEvent;
use std::time::Duration;

/// A base URL where nothing listens: a port that was just free.
fn dead_base_url() -> url::Url {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    drop(l);
    url::Url::parse(&format!("http://127.0.0.1:{port}")).unwrap()
}

fn unreachable_openrouter_is_reported_before_any_callback(driver: Driver) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let dead = dead_base_url();
    let mut login = Running::start(
        driver,
        options(&stand_in, dir.path()).base_url(dead.clone()),
    );
    login.authorization_url();
    // No browser came back, nothing was approved: the warning comes anyway.
    let (base_url, reason) = login.wait_for("the unreachable warning", |e| match e {
        LoginEvent::OpenRouterUnreachable { base_url, reason } => {
            Some((base_url.clone(), reason.clone()))
        }
        _ => None,
    });
    assert_eq!(base_url, dead);
    assert!(reason.contains("connect"), "says why: {reason}");
    login.cancel.cancel();
    let _ = login.finish_within(Duration::from_secs(30));
}

fn reachable_openrouter_gets_no_warning(driver: Driver) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let mut login = Running::start(driver, options(&stand_in, dir.path()));
    login.authorization_url();
    let visit = come_back(&login.callback_url(), "the-code");
    assert_signed_in(login.finish(), &visit, dir.path());
    let events = login.events();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, LoginEvent::OpenRouterUnreachable { .. })),
        "{events:?}"
    );
}

both_drivers!(unreachable_openrouter_is_reported_before_any_callback);
both_drivers!(reachable_openrouter_gets_no_warning);
