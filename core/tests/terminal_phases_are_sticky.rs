//! An ended flow (`Lingering`, then `Finished`) is sticky (STYLE.md, h11's sticky error
//! state): whatever arrives later changes neither the phase nor the outcome (only the linger
//! running out moves `Lingering` to `Finished`), sends no code, stores no key, and is
//! reported as ignored because the flow ended. Requests
//! on the flow's own path are told the sign-in has finished.
mod common;
use common::*;
use openrouter_auth_core::*;

/// Every kind of input a finished flow can still receive; `id` is the flow's last exchange id.
fn late_inputs(f: &Flow, id: Option<ExchangeId>) -> Vec<(&'static str, Input)> {
    let id = id.unwrap_or(ExchangeId(1));
    let url = format!("http://localhost:{PORT}{}", own(f, "?code=pasted-url-code"));
    vec![
        ("callback with a code", get(501, &own(f, "?code=new-code"))),
        (
            "callback with an error",
            get(502, &own(f, "?error=access_denied")),
        ),
        ("callback without parameters", get(503, &own(f, ""))),
        (
            "HEAD with a code",
            req(
                504,
                "HEAD",
                &own(f, "?code=c"),
                &format!("localhost:{PORT}"),
            ),
        ),
        ("favicon", get(505, "/favicon.ico")),
        (
            "pasted code",
            Input::Pasted("pasted-code".to_string().into()),
        ),
        ("pasted URL", Input::Pasted(url.into())),
        ("pasted junk", Input::Pasted("".to_string().into())),
        ("cancel", Input::Cancel),
        (
            "exchange response",
            Input::ExchangeResponse {
                id,
                response: ok_response(),
            },
        ),
        (
            "exchange failed, not sent",
            Input::ExchangeFailed {
                id,
                may_have_been_sent: false,
                reason: "r".into(),
            },
        ),
        (
            "exchange failed, maybe sent",
            Input::ExchangeFailed {
                id,
                may_have_been_sent: true,
                reason: "r".into(),
            },
        ),
        (
            "key stored",
            Input::KeyStored {
                location: "elsewhere".into(),
                report: (),
            },
        ),
        (
            "key not stored",
            Input::KeyNotStored {
                reason: write_failed("disk full"),
            },
        ),
        (
            "listener bound again",
            Input::ListenerBound {
                port: PORT + 1,
                ipv6: true,
            },
        ),
        (
            "connection closed",
            Input::ConnectionClosed(ConnectionId(1)),
        ),
    ]
}

/// Feeds every late input (and time passing) and checks nothing changes.
fn assert_sticky(mut f: Flow, id: Option<ExchangeId>, finished_already: bool, case: &str) {
    let phase = f.phase();
    assert!(f.is_terminal(), "{case}: {phase:?}");
    let end = ended(&f);
    let outcome = f.outcome().cloned().expect("terminal has an outcome");
    let sent = f.exchanges_sent();
    let mut finishes = usize::from(finished_already);
    for (at, (what, input)) in (10_000..).zip(late_inputs(&f, id)) {
        let conn = match &input {
            Input::Request(r) => Some(r.conn.0),
            _ => None,
        };
        let handled = f.handle_input(input, t(at));
        let outs = drain(&mut f);
        assert_eq!(f.phase(), phase, "{case} / {what}");
        assert_eq!(ended(&f), end, "{case} / {what}");
        assert_eq!(f.outcome(), Some(&outcome), "{case} / {what}");
        assert_eq!(sends(&outs), 0, "{case} / {what}: {outs:?}");
        assert_eq!(store_keys(&outs), 0, "{case} / {what}: {outs:?}");
        assert!(
            !outs.iter().any(|o| matches!(
                o,
                Output::PasteRejected { .. }
                    | Output::OpenBrowser { .. }
                    | Output::PromptForCode { .. }
            )),
            "{case} / {what}: {outs:?}"
        );
        finishes += outs
            .iter()
            .filter(|o| matches!(o, Output::Finished(_)))
            .count();
        if let Some(conn) = conn {
            assert_eq!(handled, Handled::Answered, "{case} / {what}");
            let r = response_for(&outs, conn);
            match what {
                "favicon" => assert_eq!(r.status, 404, "{case}"),
                _ => {
                    assert_eq!(r.status, 200, "{case} / {what}");
                    assert_eq!(title(&r), "This sign-in has finished", "{case} / {what}");
                }
            }
        } else {
            assert_eq!(handled, Handled::Ignored(Ignored::Ended), "{case} / {what}");
            assert!(
                !outs.iter().any(|o| matches!(o, Output::Respond { .. })),
                "{case} / {what}: {outs:?}"
            );
        }
    }
    let handled = f.handle_timeout(t(u64::MAX));
    let outs = drain(&mut f);
    finishes += outs
        .iter()
        .filter(|o| matches!(o, Output::Finished(_)))
        .count();
    if finished_already {
        assert_eq!(handled, Handled::Ignored(Ignored::Ended), "{case}");
    } else {
        assert_eq!(phase, Phase::Lingering, "{case}");
        assert_eq!(handled, Handled::Applied, "{case}: the linger ran out");
    }
    assert_eq!(f.phase(), Phase::Finished, "{case}");
    assert_eq!(ended(&f), end, "{case}");
    assert_eq!(f.outcome(), Some(&outcome), "{case}");
    assert_eq!(finishes, 1, "{case}: Finished exactly once");
    assert_eq!(f.exchanges_sent(), sent, "{case}");
    assert_eq!(f.poll_timeout(), None, "{case}");
}

fn stored(seed: u64, fetch_done: bool) -> (Flow, ExchangeId) {
    let (mut f, id) = exchanging_flow(seed, 1);
    let _ = f.handle_input(
        Input::ExchangeResponse {
            id,
            response: ok_response(),
        },
        t(1100),
    );
    let _ = f.handle_input(
        Input::KeyStored {
            location: "credentials file /tmp/c.json".into(),
            report: (),
        },
        t(1101),
    );
    let outs = drain(&mut f);
    if fetch_done {
        let done = response_for(&outs, 1)
            .header("location")
            .unwrap()
            .to_string();
        let _ = f.handle_input(get(2, &done), t(1102));
        assert!(finished(&drain(&mut f)).is_some());
    }
    (f, id)
}

#[test]
fn stored_is_sticky_after_finished() {
    let (f, id) = stored(1, true);
    assert_eq!(ended(&f), Some(End::Stored));
    assert_sticky(f, Some(id), true, "stored, finished");
}

#[test]
fn stored_is_sticky_while_lingering_for_the_done_page() {
    let (f, id) = stored(2, false);
    assert!(f.poll_timeout().is_some(), "lingering");
    assert_sticky(f, Some(id), false, "stored, lingering");
}

#[test]
fn key_not_stored_is_sticky() {
    let (mut f, id) = exchanging_flow(3, 1);
    let _ = f.handle_input(
        Input::ExchangeResponse {
            id,
            response: ok_response(),
        },
        t(1100),
    );
    let _ = f.handle_input(
        Input::KeyNotStored {
            reason: write_failed("disk full"),
        },
        t(1101),
    );
    drain(&mut f);
    assert!(matches!(f.outcome(), Some(Outcome::KeyNotStored { .. })));
    assert_sticky(f, Some(id), false, "key not stored");
}

/// A flow denied on its own path: the callback got its 303 to `/done`.
fn denied(seed: u64, fetch_done: bool) -> Flow {
    let mut f = bound_flow(seed, FlowConfig::default());
    drain(&mut f);
    let _ = f.handle_input(get(1, &own(&f, "?error=access_denied")), t(1));
    let outs = drain(&mut f);
    let r = response_for(&outs, 1);
    assert_eq!(r.status, 303);
    assert!(finished(&outs).is_none(), "lingering: {outs:?}");
    if fetch_done {
        let done = r.header("location").unwrap().to_string();
        let _ = f.handle_input(get(2, &done), t(2));
        let outs = drain(&mut f);
        assert_eq!(title(&response_for(&outs, 2)), "Sign-in cancelled");
        assert!(finished(&outs).is_some());
    }
    f
}

#[test]
fn denied_is_sticky_after_finished() {
    let f = denied(4, true);
    assert_sticky(f, None, true, "denied, finished");
}

#[test]
fn denied_is_sticky_while_lingering_for_the_done_page() {
    let f = denied(8, false);
    assert!(f.poll_timeout().is_some(), "lingering");
    assert_sticky(f, None, false, "denied, lingering");
}

#[test]
fn cancelled_is_sticky() {
    let (mut f, id) = exchanging_flow(5, 1);
    let _ = f.handle_input(Input::Cancel, t(1100));
    drain(&mut f);
    assert_sticky(f, Some(id), false, "cancelled during exchange");
}

#[test]
fn exchange_failure_is_sticky() {
    let (mut f, id) = exchanging_flow(6, 1);
    let _ = f.handle_input(
        Input::ExchangeResponse {
            id,
            response: error_response(403, "Invalid code or code_verifier"),
        },
        t(1100),
    );
    drain(&mut f);
    assert_sticky(f, Some(id), false, "invalid code");
}

#[test]
fn callback_timeout_is_sticky() {
    let mut f = bound_flow(7, FlowConfig::default());
    drain(&mut f);
    let _ = f.handle_timeout(t(600_000));
    drain(&mut f);
    assert_sticky(f, None, true, "callback timed out");
}
