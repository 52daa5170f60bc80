//! `Input::Cancel` ends a flow that waits for the listener, the browser or OpenRouter with
//! `Cancelled`; once the key exists (Storing) it is ignored until the store result, so the
//! key is never lost.
mod common;
use common::*;
use openrouter_auth_core::*;

fn assert_cancelled(outs: &[Output], f: &Flow) {
    assert_eq!(ended(f), Some(End::Failed));
    assert!(
        matches!(
            f.outcome(),
            Some(Outcome::Failed(FlowError::User(
                UserError::Cancelled { .. }
            )))
        ),
        "{:?}",
        f.outcome()
    );
    assert_eq!(
        f.outcome().map(|o| match o {
            Outcome::Failed(e) => (e.kind(), e.party()),
            _ => unreachable!(),
        }),
        Some(("cancelled", Party::User))
    );
    assert_eq!(sends(outs), 0);
    assert_eq!(store_keys(outs), 0);
}

#[test]
fn cancel_in_init() {
    let mut f = Flow::new(FlowConfig::default(), &mut rng(1), t(0)).unwrap();
    let _ = f.handle_input(Input::Cancel, t(1));
    let outs = drain(&mut f);
    assert_cancelled(&outs, &f);
    assert_eq!(
        finished(&outs),
        Some(Outcome::Failed(FlowError::User(UserError::Cancelled {
            may_have_been_sent: false
        })))
    );
    // Binding afterwards opens no browser.
    let _ = f.handle_input(
        Input::ListenerBound {
            port: PORT,
            ipv6: true,
        },
        t(2),
    );
    assert!(drain(&mut f).is_empty());
    assert_eq!(f.authorization_url(), None);
}

#[test]
fn cancel_while_awaiting_the_callback() {
    let mut f = bound_flow(2, FlowConfig::default());
    drain(&mut f);
    let _ = f.handle_input(Input::Cancel, t(1));
    let outs = drain(&mut f);
    assert_cancelled(&outs, &f);
    assert_eq!(
        finished(&outs),
        Some(Outcome::Failed(FlowError::User(UserError::Cancelled {
            may_have_been_sent: false
        })))
    );
    // The browser arriving late is told, and no code is exchanged.
    let _ = f.handle_input(get(1, &own(&f, "?code=c")), t(2));
    let outs = drain(&mut f);
    assert_eq!(title(&response_for(&outs, 1)), "This sign-in has finished");
    assert_eq!(sends(&outs), 0);
}

#[test]
fn cancel_while_headless_awaits_a_paste() {
    let mut f = Flow::new(
        {
            let mut c = FlowConfig::default();
            c.headless = true;
            c
        },
        &mut rng(3),
        t(0),
    )
    .unwrap();
    drain(&mut f);
    let _ = f.handle_input(Input::Cancel, t(1));
    let outs = drain(&mut f);
    assert_cancelled(&outs, &f);
    assert_eq!(
        f.handle_input(Input::Pasted("code".to_string().into()), t(2)),
        Handled::Ignored(Ignored::Ended)
    );
    assert!(drain(&mut f).is_empty());
}

#[test]
fn cancel_during_the_exchange_answers_the_tab_and_ignores_the_late_key() {
    let (mut f, id) = exchanging_flow(4, 1);
    let _ = f.handle_input(Input::Cancel, t(1100));
    let outs = drain(&mut f);
    assert_cancelled(&outs, &f);
    let r = response_for(&outs, 1);
    assert_eq!(r.status, 303);
    assert_eq!(
        f.handle_input(
            Input::ExchangeResponse {
                id,
                response: ok_response(),
            },
            t(1101),
        ),
        Handled::Ignored(Ignored::Ended)
    );
    assert!(drain(&mut f).is_empty(), "late key is not stored");
    let _ = f.handle_input(get(2, r.header("location").unwrap()), t(1102));
    let outs = drain(&mut f);
    assert_eq!(title(&response_for(&outs, 2)), "Sign-in cancelled");
    assert!(response_for(&outs, 2)
        .body
        .contains("openrouter-auth stopped waiting for this sign-in."));
    // The request was out: OpenRouter may have created a key, and the error says so.
    let Some(Outcome::Failed(e)) = finished(&outs) else {
        panic!("{outs:?}")
    };
    assert_eq!(
        e,
        FlowError::User(UserError::Cancelled {
            may_have_been_sent: true
        })
    );
    assert!(e.may_have_been_sent());
    assert!(
        e.to_string().contains("a key may have been created")
            && e.to_string().contains("https://openrouter.ai/keys"),
        "{e}"
    );
}

#[test]
fn cancel_during_the_retry_backoff() {
    let (mut f, id) = exchanging_flow(5, 1);
    let _ = f.handle_input(
        Input::ExchangeFailed {
            id,
            may_have_been_sent: false,
            reason: "refused".into(),
        },
        t(1100),
    );
    assert_eq!(f.handle_input(Input::Cancel, t(1101)), Handled::Applied);
    let outs = drain(&mut f);
    assert_cancelled(&outs, &f);
    // Only backing off: the last attempt certainly never left, so no key can exist.
    assert_eq!(
        f.outcome(),
        Some(&Outcome::Failed(FlowError::User(UserError::Cancelled {
            may_have_been_sent: false
        })))
    );
    assert!(!f
        .outcome()
        .map(|o| match o {
            Outcome::Failed(e) => e.to_string(),
            _ => unreachable!(),
        })
        .unwrap()
        .contains("may have been created"));
    // The retry's time passes: still lingering for the tab's `/done`, nothing is due.
    assert_eq!(f.handle_timeout(t(2000)), Handled::Ignored(Ignored::NotDue));
    assert_eq!(sends(&drain(&mut f)), 0, "no retry after cancel");
    assert_eq!(f.exchanges_sent(), 1);
}

fn storing(seed: u64) -> Flow {
    let (mut f, id) = exchanging_flow(seed, 1);
    let _ = f.handle_input(
        Input::ExchangeResponse {
            id,
            response: ok_response(),
        },
        t(1100),
    );
    assert_eq!(store_keys(&drain(&mut f)), 1);
    f
}

#[test]
fn cancel_while_storing_is_ignored_until_stored() {
    let mut f = storing(6);
    for at in [1101, 1102] {
        assert_eq!(
            f.handle_input(Input::Cancel, t(at)),
            Handled::Ignored(Ignored::KeyBeingStored)
        );
    }
    assert!(
        drain(&mut f).is_empty(),
        "the tab is still held, nothing ends"
    );
    assert_eq!(f.phase(), Phase::Storing);
    assert_eq!(f.outcome(), None);
    let _ = f.handle_input(
        Input::KeyStored {
            location: "credentials file /tmp/c.json".into(),
            report: (),
        },
        t(1103),
    );
    let outs = drain(&mut f);
    assert_eq!(ended(&f), Some(End::Stored));
    assert_eq!(response_for(&outs, 1).status, 303);
    assert!(matches!(f.outcome(), Some(Outcome::Stored { key, .. }) if key.expose_secret() == KEY));
}

#[test]
fn cancel_while_storing_then_store_failure_still_hands_out_the_key() {
    let mut f = storing(7);
    let _ = f.handle_input(Input::Cancel, t(1101));
    assert_eq!(f.phase(), Phase::Storing);
    let _ = f.handle_input(
        Input::KeyNotStored {
            reason: write_failed("read-only file system"),
        },
        t(1102),
    );
    assert!(matches!(
        f.outcome(),
        Some(Outcome::KeyNotStored { key, reason, .. })
            if key.expose_secret() == KEY && reason.message() == "read-only file system"
    ));
}
