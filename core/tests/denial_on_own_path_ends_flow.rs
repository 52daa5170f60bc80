//! `error=` on the flow's own nonce path (RFC 6749 section 4.1.2.1) ends the flow: the user
//! pressed Deny, or OpenRouter failed. The browser gets the Denied page at once, and the
//! program learns `Failed(Denied)`. (Forged errors on other paths: see
//! `stray_requests_do_not_end_flow.rs`.)
mod common;
use common::*;
use openrouter_auth_core::*;

#[test]
fn access_denied_on_our_path_fails_with_denied_and_shows_the_denied_page() {
    let mut f = bound_flow(1, FlowConfig::default());
    drain(&mut f);
    f.handle_input(get(1, &own(&f, "?error=access_denied")), t(10));
    let outs = drain(&mut f);
    assert_eq!(f.phase(), Phase::Failed);
    let page = response_for(&outs, 1);
    assert_eq!(page.status, 200);
    assert_eq!(title(&page), "Sign-in cancelled");
    assert!(page
        .body
        .contains("Access was denied, so no key was created."));
    let Some(Outcome::Failed(err)) = finished(&outs) else {
        panic!("{outs:?}")
    };
    assert!(
        matches!(&err, FlowError::Denied(cb) if cb.error == "access_denied"),
        "{err:?}"
    );
    assert_eq!(err.kind(), "denied");
    assert_eq!(err.party(), Party::User);
    assert_eq!(sends(&outs), 0);
    assert_eq!(f.exchanges_sent(), 0);
    // The page is written before the flow says it is finished: a shell that stops serving
    // on `Finished` must still have sent it.
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
    f.handle_input(
        get(
            1,
            &own(
                &f,
                "?error=server_error&error_description=%3Cb%3Eboom%3C%2Fb%3E+try+later",
            ),
        ),
        t(10),
    );
    let outs = drain(&mut f);
    let page = response_for(&outs, 1);
    assert!(page
        .body
        .contains("OpenRouter reported <code>server_error</code>."));
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
    f.handle_input(get(1, &own(&f, "?error=access_denied")), t(10));
    drain(&mut f);
    f.handle_input(get(2, &own(&f, "?error=access_denied")), t(11));
    let outs = drain(&mut f);
    assert_eq!(title(&response_for(&outs, 2)), "This sign-in has finished");
    assert!(finished(&outs).is_none(), "Finished only once");
}

#[test]
fn denial_while_the_exchange_runs_is_held_and_does_not_end_the_flow() {
    let (mut f, id) = exchanging_flow(4, 1);
    f.handle_input(get(2, &own(&f, "?error=access_denied")), t(1001));
    assert!(drain(&mut f).is_empty(), "held");
    assert_eq!(f.phase(), Phase::Exchanging);
    f.handle_input(
        Input::ExchangeResponse {
            id,
            response: ok_response(),
        },
        t(1002),
    );
    f.handle_input(
        Input::KeyStored {
            location: "x".into(),
        },
        t(1003),
    );
    let outs = drain(&mut f);
    assert_eq!(f.phase(), Phase::Stored);
    assert_eq!(response_for(&outs, 1).status, 303);
    assert_eq!(response_for(&outs, 2).status, 303);
}
