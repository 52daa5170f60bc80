//! Network faults during the code exchange, and the flow's deadlines (PROTOCOL.md section 3:
//! a code is single-use; retry only what certainly never arrived).
mod common;
use common::*;
use openrouter_auth_core::flow::{FIRST_RETRY_DELAY, MAX_RETRY_DELAY};
use openrouter_auth_core::*;
use std::time::Duration;

fn not_sent(id: ExchangeId) -> Input {
    Input::ExchangeFailed {
        id,
        may_have_been_sent: false,
        reason: "connection refused".into(),
    }
}

fn maybe_sent(id: ExchangeId) -> Input {
    Input::ExchangeFailed {
        id,
        may_have_been_sent: true,
        reason: "connection reset".into(),
    }
}

#[test]
fn unsent_request_is_retried_after_250_then_500_ms_with_a_new_id() {
    let (mut f, id1) = exchanging_flow(1, 1);
    let _ = f.handle_input(not_sent(id1), t(1100));
    assert!(drain(&mut f).is_empty(), "backing off, nothing to do yet");
    assert_eq!(f.phase(), Phase::Exchanging);
    assert_eq!(f.poll_timeout(), Some(t(1350)));
    let _ = f.handle_timeout(t(1349));
    assert!(drain(&mut f).is_empty(), "not before the backoff");
    let _ = f.handle_timeout(t(1350));
    let outs = drain(&mut f);
    let ids = exchange_ids(&outs);
    assert_eq!(ids.len(), 1, "{outs:?}");
    let id2 = ids[0];
    assert_ne!(id2, id1);
    let Output::SendExchange { timeout, .. } = &outs[0] else {
        panic!("{outs:?}")
    };
    assert_eq!(
        *timeout,
        Duration::from_millis(31_000 - 1350),
        "what is left of the 30 s"
    );
    assert_eq!(exchange_body(&outs)["code"], "the-code", "the same code");

    let _ = f.handle_input(not_sent(id2), t(1400));
    assert_eq!(f.poll_timeout(), Some(t(1900)), "500 ms");
    let _ = f.handle_timeout(t(1900));
    let id3 = exchange_id(&drain(&mut f));
    assert!(id3 != id1 && id3 != id2);

    let _ = f.handle_input(
        Input::ExchangeResponse {
            id: id3,
            response: ok_response(),
        },
        t(2000),
    );
    assert_eq!(store_keys(&drain(&mut f)), 1);
    assert_eq!(f.phase(), Phase::Storing);
    assert_eq!(f.exchanges_sent(), 3);
}

#[test]
fn backoff_doubles_to_a_cap_and_never_passes_the_deadline() {
    let (mut f, mut id) = exchanging_flow(2, 1);
    let deadline = t(1000 + 30_000);
    let mut now = 1000;
    let mut delays = Vec::new();
    let mut ids = vec![id];
    loop {
        let _ = f.handle_input(not_sent(id), t(now));
        if ended(&f) == Some(End::Failed) {
            break;
        }
        let at = f.poll_timeout().unwrap();
        assert!(
            at < deadline,
            "a retry is scheduled only inside the deadline"
        );
        delays.push(at.as_millis() - now);
        now = at.as_millis();
        let _ = f.handle_timeout(at);
        id = exchange_id(&drain(&mut f));
        assert!(!ids.contains(&id), "fresh id every attempt");
        ids.push(id);
    }
    assert_eq!(
        delays,
        [250, 500, 1000, 2000, 4000, 4000, 4000, 4000, 4000, 4000],
        "FIRST_RETRY_DELAY={FIRST_RETRY_DELAY:?} MAX_RETRY_DELAY={MAX_RETRY_DELAY:?}"
    );
    // The 11th failure comes 27.75 s into the exchange: another 4 s would pass the
    // deadline, so the flow gives up at once.
    let outs = drain(&mut f);
    let Some(Outcome::Failed(err)) = f.outcome().cloned() else {
        panic!("{outs:?}")
    };
    assert_eq!(
        err,
        FlowError::Network(NetworkError::Unreachable {
            reason: "connection refused".into(),
            may_have_been_sent: false
        })
    );
    assert_eq!(err.kind(), "network");
    assert_eq!(response_for(&outs, 1).status, 303);
    assert_eq!(f.exchanges_sent() as usize, ids.len());
}

#[test]
fn maybe_sent_fails_at_once_and_the_code_is_never_sent_again() {
    let (mut f, id) = exchanging_flow(3, 1);
    let mut all = Vec::new();
    let _ = f.handle_input(maybe_sent(id), t(1100));
    all.extend(drain(&mut f));
    assert_eq!(ended(&f), Some(End::Failed));
    let Some(Outcome::Failed(err)) = f.outcome().cloned() else {
        panic!("{all:?}")
    };
    assert_eq!(
        err,
        FlowError::Network(NetworkError::Unreachable {
            reason: "connection reset".into(),
            may_have_been_sent: true
        })
    );
    // Nothing brings the code back: reloads, a pasted code, late answers, time.
    let _ = f.handle_input(get(2, &own(&f, "?code=the-code")), t(1200));
    let _ = f.handle_input(Input::Pasted("the-code".to_string().into()), t(1201));
    let _ = f.handle_input(not_sent(id), t(1202));
    let _ = f.handle_input(maybe_sent(id), t(1203));
    let _ = f.handle_timeout(t(1_000_000));
    all.extend(drain(&mut f));
    assert_eq!(sends(&all), 0, "{all:?}");
    assert_eq!(f.exchanges_sent(), 1);
    assert_eq!(title(&response_for(&all, 2)), "This sign-in has finished");
}

#[test]
fn answers_to_old_or_unknown_attempts_are_ignored() {
    let (mut f, id1) = exchanging_flow(4, 1);
    // During the backoff even the failed attempt's own id is stale.
    let _ = f.handle_input(not_sent(id1), t(1100));
    let _ = f.handle_input(
        Input::ExchangeResponse {
            id: id1,
            response: ok_response(),
        },
        t(1101),
    );
    let _ = f.handle_input(maybe_sent(id1), t(1102));
    assert!(drain(&mut f).is_empty());
    assert_eq!(f.phase(), Phase::Exchanging);
    let _ = f.handle_timeout(t(1350));
    let id2 = exchange_id(&drain(&mut f));
    for stale in [
        id1,
        ExchangeId(id2.0 + 1),
        ExchangeId(0),
        ExchangeId(u64::MAX),
    ] {
        let _ = f.handle_input(
            Input::ExchangeResponse {
                id: stale,
                response: ok_response(),
            },
            t(1400),
        );
        let _ = f.handle_input(
            Input::ExchangeResponse {
                id: stale,
                response: error_response(403, "Invalid code or code_verifier"),
            },
            t(1401),
        );
        let _ = f.handle_input(maybe_sent(stale), t(1402));
        let _ = f.handle_input(not_sent(stale), t(1403));
        let outs = drain(&mut f);
        assert!(outs.is_empty(), "{stale:?}: {outs:?}");
        assert_eq!(f.phase(), Phase::Exchanging, "{stale:?}");
        assert_eq!(
            f.poll_timeout(),
            Some(t(31_000)),
            "{stale:?}: no retry scheduled"
        );
    }
    let _ = f.handle_input(
        Input::ExchangeResponse {
            id: id2,
            response: ok_response(),
        },
        t(1500),
    );
    assert_eq!(f.phase(), Phase::Storing);
}

#[test]
fn a_second_answer_to_the_same_attempt_is_ignored() {
    let (mut f, id) = exchanging_flow(5, 1);
    let _ = f.handle_input(
        Input::ExchangeResponse {
            id,
            response: ok_response(),
        },
        t(1100),
    );
    assert_eq!(store_keys(&drain(&mut f)), 1);
    let _ = f.handle_input(
        Input::ExchangeResponse {
            id,
            response: ok_response(),
        },
        t(1101),
    );
    let _ = f.handle_input(maybe_sent(id), t(1102));
    assert!(drain(&mut f).is_empty(), "one StoreKey, no failure");
    assert_eq!(f.phase(), Phase::Storing);
}

#[test]
fn exchange_deadline_ends_the_flow_with_exchange_timed_out() {
    let (mut f, _id) = exchanging_flow(6, 1);
    assert_eq!(f.poll_timeout(), Some(t(31_000)));
    let _ = f.handle_timeout(t(30_999));
    assert!(drain(&mut f).is_empty());
    assert_eq!(f.phase(), Phase::Exchanging);
    let _ = f.handle_timeout(t(31_000));
    let outs = drain(&mut f);
    assert_eq!(ended(&f), Some(End::Failed));
    let done = response_for(&outs, 1);
    assert_eq!(done.status, 303);
    assert_eq!(
        f.outcome(),
        Some(&Outcome::Failed(FlowError::Network(
            NetworkError::ExchangeTimedOut {
                waited: Duration::from_secs(30),
                may_have_been_sent: true,
            }
        )))
    );
    assert_eq!(
        f.outcome().map(|o| match o {
            Outcome::Failed(e) => e.kind(),
            _ => "",
        }),
        Some("exchange_timed_out")
    );
    let _ = f.handle_input(get(2, done.header("location").unwrap()), t(31_001));
    let outs = drain(&mut f);
    let page = response_for(&outs, 2);
    assert_eq!(title(&page), "Sign-in failed");
    assert!(page.body.contains("OpenRouter did not answer within 30 s"));
    // The request was out: OpenRouter may have minted a key we never saw.
    assert!(page.body.contains("a key may have been created"));
    assert!(finished(&outs).is_some());
}

#[test]
fn exchange_deadline_also_cuts_a_pending_retry() {
    let (mut f, id) = exchanging_flow(7, 1);
    // Fail just before the end: the 250 ms retry would land after the deadline.
    let _ = f.handle_input(not_sent(id), t(30_800));
    assert_eq!(ended(&f), Some(End::Failed));
    assert_eq!(f.exchanges_sent(), 1);
    let (mut f, id) = exchanging_flow(7, 1);
    let _ = f.handle_input(not_sent(id), t(30_700));
    assert_eq!(f.poll_timeout(), Some(t(30_950)));
    // The shell slept past both the retry and the deadline: the deadline wins.
    let _ = f.handle_timeout(t(40_000));
    let outs = drain(&mut f);
    assert_eq!(sends(&outs), 0, "{outs:?}");
    assert!(
        matches!(
            f.outcome(),
            Some(Outcome::Failed(FlowError::Network(
                NetworkError::ExchangeTimedOut {
                    may_have_been_sent: false,
                    ..
                }
            )))
        ),
        "only a request that certainly was not sent was pending: no key can exist"
    );
}

#[test]
fn callback_deadline_ends_the_flow_with_callback_timed_out() {
    let mut f = Flow::new(FlowConfig::default(), &mut rng(8), t(500)).unwrap();
    assert_eq!(f.poll_timeout(), Some(t(600_500)), "from Flow::new");
    let _ = f.handle_input(
        Input::ListenerBound {
            port: PORT,
            ipv6: true,
        },
        t(2000),
    );
    drain(&mut f);
    assert_eq!(
        f.poll_timeout(),
        Some(t(600_500)),
        "binding does not extend it"
    );
    let _ = f.handle_timeout(t(600_499));
    assert!(drain(&mut f).is_empty());
    assert_eq!(f.phase(), Phase::AwaitingCallback);
    let _ = f.handle_timeout(t(600_500));
    let outs = drain(&mut f);
    let Some(Outcome::Failed(err)) = finished(&outs) else {
        panic!("{outs:?}")
    };
    assert_eq!(
        err,
        FlowError::User(UserError::CallbackTimedOut {
            waited: Duration::from_secs(600)
        })
    );
    assert_eq!(err.kind(), "timed_out");
    assert_eq!(f.poll_timeout(), None);
    // A late callback gets "already finished" and no exchange.
    let _ = f.handle_input(get(1, &own(&f, "?code=late")), t(600_600));
    let outs = drain(&mut f);
    assert_eq!(title(&response_for(&outs, 1)), "This sign-in has finished");
    assert_eq!(sends(&outs), 0);
    // The clean page says it expired.
    let _ = f.handle_input(get(2, &own(&f, "/done")), t(600_601));
    assert_eq!(title(&response_for(&drain(&mut f), 2)), "Sign-in expired");
}

#[test]
fn configured_timeouts_are_used() {
    let config = {
        let mut c = FlowConfig::default();
        c.callback_timeout = Duration::from_secs(5);
        c.exchange_timeout = Duration::from_secs(2);
        c
    };
    let mut f = bound_flow(9, config.clone());
    drain(&mut f);
    assert_eq!(f.poll_timeout(), Some(t(5000)));
    let _ = f.handle_input(get(1, &own(&f, "?code=c")), t(4000));
    let outs = drain(&mut f);
    let Output::SendExchange { timeout, .. } = &outs[0] else {
        panic!("{outs:?}")
    };
    assert_eq!(*timeout, Duration::from_secs(2));
    assert_eq!(
        f.poll_timeout(),
        Some(t(6000)),
        "the callback deadline no longer applies"
    );
    let _ = f.handle_timeout(t(6000));
    assert!(matches!(
        f.outcome(),
        Some(Outcome::Failed(FlowError::Network(NetworkError::ExchangeTimedOut { waited, .. }))) if *waited == Duration::from_secs(2)
    ));
}

#[test]
fn time_going_backwards_is_clamped() {
    let mut f = bound_flow(10, FlowConfig::default());
    drain(&mut f);
    let _ = f.handle_timeout(t(10_000));
    // The code arrives with a clock that jumped back: the exchange deadline counts from the
    // latest time seen, not from the earlier one.
    let _ = f.handle_input(get(1, &own(&f, "?code=c")), t(5));
    let outs = drain(&mut f);
    let Output::SendExchange { id, timeout, .. } = &outs[0] else {
        panic!("{outs:?}")
    };
    assert_eq!(*timeout, Duration::from_secs(30));
    assert_eq!(f.poll_timeout(), Some(t(40_000)));
    // A failure reported with an old time backs off from the latest time.
    let _ = f.handle_input(not_sent(*id), t(0));
    assert_eq!(f.poll_timeout(), Some(t(10_250)));
    // A timeout call with an old time fires nothing.
    let _ = f.handle_timeout(t(300));
    assert!(drain(&mut f).is_empty());
    assert_eq!(f.phase(), Phase::Exchanging);
    let _ = f.handle_timeout(t(10_250));
    assert_eq!(sends(&drain(&mut f)), 1);
    // Going back after the deadline passed does not revive the flow.
    let _ = f.handle_timeout(t(40_000));
    assert_eq!(ended(&f), Some(End::Failed));
    let _ = f.handle_timeout(t(1));
    assert_eq!(ended(&f), Some(End::Failed));
}
