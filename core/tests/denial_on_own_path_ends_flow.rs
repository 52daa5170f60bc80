//! `error=` on the flow's own nonce path (RFC 6749 section 4.1.2.1) ends the flow: the user
//! pressed Deny, or OpenRouter failed. Like a code, the callback is answered with a 303 to the
//! clean `/callback/<nonce>/done` URL, so `error` and `error_description` leave the address
//! bar; `/done` shows the Denied page, and the program learns `Failed(Denied)` once that page
//! has gone out (or the linger ran out). (Forged errors on other paths: see
//! `stray_requests_do_not_end_flow.rs`.)
mod common;
use common::*;
use openrouter_auth_core::flow::DONE_LINGER;
use openrouter_auth_core::*;

/// When the linger that starts with the denial at 10 ms ends, in ms.
fn linger_end() -> u64 {
    10 + DONE_LINGER.as_millis() as u64
}

/// Sends `query` on the flow's own path on conn 1 at 10 ms and checks the answer is a 303
/// to `/done` with nothing finished yet; returns the `/done` path.
fn deny(f: &mut Flow, query: &str) -> String {
    let _ = f.handle_input(get(1, &own(f, query)), t(10));
    let outs = drain(f);
    assert_eq!(ended(f), Some(End::Failed));
    let r = response_for(&outs, 1);
    assert_eq!(r.status, 303, "{outs:?}");
    assert!(r.body.is_empty());
    let done = r.header("location").expect("Location").to_string();
    assert_eq!(done, own(f, "/done"));
    assert!(
        !done.contains('?') && !done.contains("error"),
        "a clean URL: {done}"
    );
    assert!(finished(&outs).is_none(), "lingers for /done: {outs:?}");
    assert_eq!(sends(&outs), 0);
    assert_eq!(f.poll_timeout(), Some(t(linger_end())));
    done
}

#[test]
fn denial_redirects_to_done_so_the_error_leaves_the_address_bar() {
    let mut f = bound_flow(5, FlowConfig::default());
    drain(&mut f);
    let done = deny(
        &mut f,
        "?error=access_denied&error_description=The+user+denied+access",
    );

    // Time passing inside the linger ends nothing.
    let _ = f.handle_timeout(t(linger_end() - 1));
    assert!(drain(&mut f).is_empty());
    assert_eq!(ended(&f), Some(End::Failed));
    assert!(matches!(
        f.outcome(),
        Some(Outcome::Failed(FlowError::User(UserError::Denied(_))))
    ));

    let _ = f.handle_input(get(2, &done), t(20));
    let outs = drain(&mut f);
    let page = response_for(&outs, 2);
    assert_eq!(page.status, 200);
    assert_eq!(title(&page), "Sign-in cancelled");
    assert!(page
        .body
        .contains("You declined access on OpenRouter, so no API key was created."));
    // Said once: OpenRouter's own "The user denied access" would repeat it.
    assert!(!page.body.contains("The user denied access"));
    // The page goes out before the flow says it is finished: a shell that stops serving on
    // `Finished` must still have sent it.
    assert!(
        matches!(
            outs.as_slice(),
            [Output::Respond { .. }, Output::Finished(_)]
        ),
        "the Denied page, then Finished: {outs:?}"
    );
    let Some(Outcome::Failed(FlowError::User(UserError::Denied(cb)))) = finished(&outs) else {
        panic!("{outs:?}")
    };
    assert_eq!(cb.error, "access_denied");
    assert_eq!(
        cb.error_description.as_deref(),
        Some("The user denied access")
    );
    assert_eq!(f.poll_timeout(), None);
    assert_eq!(f.exchanges_sent(), 0);
}

#[test]
fn denial_finishes_when_the_linger_expires_without_a_done_fetch() {
    let mut f = bound_flow(6, FlowConfig::default());
    drain(&mut f);
    deny(&mut f, "?error=access_denied");
    let _ = f.handle_timeout(t(linger_end()));
    let outs = drain(&mut f);
    assert!(
        matches!(outs.as_slice(), [Output::Finished(_)]),
        "only Finished: {outs:?}"
    );
    let Some(Outcome::Failed(err)) = finished(&outs) else {
        panic!("{outs:?}")
    };
    assert_eq!(err.kind(), "denied");
    assert_eq!(f.poll_timeout(), None);

    // A late `/done` still shows the result, and finishes nothing twice.
    let _ = f.handle_input(get(2, &own(&f, "/done")), t(10_000));
    let outs = drain(&mut f);
    assert_eq!(title(&response_for(&outs, 2)), "Sign-in cancelled");
    assert!(finished(&outs).is_none(), "Finished only once: {outs:?}");
}

#[test]
fn access_denied_on_our_path_fails_with_denied_and_shows_the_denied_page() {
    let mut f = bound_flow(1, FlowConfig::default());
    drain(&mut f);
    let done = deny(&mut f, "?error=access_denied");
    let _ = f.handle_input(get(2, &done), t(11));
    let outs = drain(&mut f);
    assert_eq!(ended(&f), Some(End::Failed));
    let page = response_for(&outs, 2);
    assert_eq!(page.status, 200);
    assert_eq!(title(&page), "Sign-in cancelled");
    assert!(page
        .body
        .contains("You declined access on OpenRouter, so no API key was created."));
    let Some(Outcome::Failed(err)) = finished(&outs) else {
        panic!("{outs:?}")
    };
    assert!(
        matches!(&err, FlowError::User(UserError::Denied(cb)) if cb.error == "access_denied"),
        "{err:?}"
    );
    assert_eq!(err.kind(), "denied");
    assert_eq!(err.party(), Party::User);
    assert_eq!(sends(&outs), 0);
    assert_eq!(f.exchanges_sent(), 0);
    assert!(
        matches!(outs.last(), Some(Output::Finished(_))),
        "Finished comes last: {outs:?}"
    );
    assert_eq!(f.poll_timeout(), None);
}

#[test]
fn server_error_with_a_description_is_reported_escaped() {
    let mut f = bound_flow(2, FlowConfig::default());
    drain(&mut f);
    let done = deny(
        &mut f,
        "?error=server_error&error_description=%3Cb%3Eboom%3C%2Fb%3E+try+later",
    );
    let _ = f.handle_input(get(2, &done), t(11));
    let outs = drain(&mut f);
    let page = response_for(&outs, 2);
    assert!(page
        .body
        .contains("OpenRouter stopped the sign-in (<code>server_error</code>)"));
    assert!(page.body.contains("&lt;b&gt;boom&lt;/b&gt; try later"));
    assert!(!page.body.contains("<b>boom"));
    let Some(Outcome::Failed(err)) = finished(&outs) else {
        panic!("{outs:?}")
    };
    assert_eq!(err.kind(), "denied");
    assert_eq!(err.party(), Party::OpenRouter);
    assert_eq!(
        err.to_string(),
        "OpenRouter reported `server_error`: <b>boom</b> try later"
    );
}

#[test]
fn a_later_visit_to_the_denied_link_says_already_finished() {
    let mut f = bound_flow(3, FlowConfig::default());
    drain(&mut f);
    deny(&mut f, "?error=access_denied");
    let _ = f.handle_input(get(2, &own(&f, "?error=access_denied")), t(11));
    let outs = drain(&mut f);
    assert_eq!(title(&response_for(&outs, 2)), "This sign-in has finished");
    assert!(finished(&outs).is_none(), "still lingering for /done");
    let _ = f.handle_input(get(3, &own(&f, "/done")), t(12));
    let outs = drain(&mut f);
    assert_eq!(title(&response_for(&outs, 3)), "Sign-in cancelled");
    assert!(finished(&outs).is_some(), "{outs:?}");
    let _ = f.handle_input(get(4, &own(&f, "?error=access_denied")), t(13));
    let outs = drain(&mut f);
    assert_eq!(title(&response_for(&outs, 4)), "This sign-in has finished");
    assert!(finished(&outs).is_none(), "Finished only once");
}

#[test]
fn denial_while_the_exchange_runs_is_held_and_does_not_end_the_flow() {
    let (mut f, id) = exchanging_flow(4, 1);
    let _ = f.handle_input(get(2, &own(&f, "?error=access_denied")), t(1001));
    assert!(drain(&mut f).is_empty(), "held");
    assert_eq!(f.phase(), Phase::Exchanging);
    let _ = f.handle_input(
        Input::ExchangeResponse {
            id,
            response: ok_response(),
        },
        t(1002),
    );
    let _ = f.handle_input(
        Input::KeyStored {
            location: "x".into(),
            report: (),
        },
        t(1003),
    );
    let outs = drain(&mut f);
    assert_eq!(ended(&f), Some(End::Stored));
    assert_eq!(response_for(&outs, 1).status, 303);
    assert_eq!(response_for(&outs, 2).status, 303);
}
