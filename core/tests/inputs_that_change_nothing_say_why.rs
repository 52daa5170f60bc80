//! Every `handle_*` says what it did (STYLE.md: "say so when an input does not fit"): an
//! input or timeout that changes nothing is reported `Ignored` with the reason, and changes
//! nothing indeed. Also the inputs a shell used to decide on its own: pastes closing, an
//! insecure base URL, the attempt number.
mod common;
use common::*;
use openrouter_auth_core::*;

fn headless(seed: u64) -> Flow {
    let mut f = Flow::new(
        {
            let mut c = FlowConfig::default();
            c.headless = true;
            c
        },
        &mut rng(seed),
        t(0),
    )
    .unwrap();
    drain(&mut f);
    f
}

#[test]
fn a_stale_exchange_answer_is_ignored_as_stale() {
    let (mut f, first) = exchanging_flow(1, 1);
    assert_eq!(
        f.handle_input(
            Input::ExchangeFailed {
                id: first,
                may_have_been_sent: false,
                reason: "refused".into(),
            },
            t(1100),
        ),
        Handled::Applied,
        "a retry is scheduled"
    );
    // While backing off, even the current id is not out.
    let late = Input::ExchangeResponse {
        id: first,
        response: ok_response(),
    };
    assert_eq!(
        f.handle_input(late.clone(), t(1101)),
        Handled::Ignored(Ignored::StaleExchange)
    );
    assert_eq!(f.handle_timeout(t(1200)), Handled::Ignored(Ignored::NotDue));
    assert_eq!(f.handle_timeout(t(1350)), Handled::Applied, "the retry");
    let outs = drain(&mut f);
    assert!(matches!(
        outs.as_slice(),
        [Output::SendExchange { attempt: 2, .. }]
    ));
    assert_eq!(
        f.handle_input(late, t(1351)),
        Handled::Ignored(Ignored::StaleExchange)
    );
    assert!(drain(&mut f).is_empty());
    assert_eq!(f.phase(), Phase::Exchanging);
}

#[test]
fn a_second_paste_while_exchanging_is_ignored() {
    let mut f = headless(2);
    assert_eq!(
        f.handle_input(Input::Pasted("first-code".to_string().into()), t(1)),
        Handled::Applied
    );
    assert_eq!(exchange_body(&drain(&mut f))["code"], "first-code");
    assert_eq!(
        f.handle_input(Input::Pasted("second-code".to_string().into()), t(2)),
        Handled::Ignored(Ignored::CodeAlreadyReceived)
    );
    assert!(drain(&mut f).is_empty());
    assert_eq!(f.exchanges_sent(), 1);
}

#[test]
fn a_rejected_paste_says_so() {
    let mut f = headless(3);
    assert_eq!(
        f.handle_input(Input::Pasted("two words".to_string().into()), t(1)),
        Handled::PasteRejected
    );
    assert!(matches!(
        drain(&mut f).as_slice(),
        [Output::PasteRejected { .. }]
    ));
}

#[test]
fn a_store_result_when_not_storing_is_ignored() {
    let (mut f, _) = exchanging_flow(4, 1);
    assert_eq!(
        f.handle_input(
            Input::KeyStored {
                location: "somewhere".into(),
                report: (),
            },
            t(1100),
        ),
        Handled::Ignored(Ignored::NotStoring)
    );
    assert_eq!(
        f.handle_input(
            Input::KeyNotStored {
                reason: write_failed("disk full"),
            },
            t(1101),
        ),
        Handled::Ignored(Ignored::NotStoring)
    );
    assert!(drain(&mut f).is_empty());
    assert_eq!(f.phase(), Phase::Exchanging);
}

#[test]
fn binding_twice_and_closing_an_unknown_connection_are_ignored() {
    let mut f = bound_flow(5, FlowConfig::default());
    drain(&mut f);
    assert_eq!(
        f.handle_input(
            Input::ListenerBound {
                port: PORT + 1,
                ipv6: true
            },
            t(1)
        ),
        Handled::Ignored(Ignored::AlreadyBound)
    );
    assert_eq!(
        f.handle_input(Input::ConnectionClosed(ConnectionId(9)), t(2)),
        Handled::Ignored(Ignored::ConnectionNotHeld)
    );
    assert_eq!(f.handle_timeout(t(3)), Handled::Ignored(Ignored::NotDue));
    assert!(drain(&mut f).is_empty());
    assert_eq!(f.phase(), Phase::AwaitingCallback);
    assert_eq!(
        f.handle_input(get(1, "/favicon.ico"), t(4)),
        Handled::Answered
    );
}

#[test]
fn pastes_closing_ends_a_waiting_headless_flow_and_nothing_else() {
    let mut f = headless(6);
    assert_eq!(f.handle_input(Input::PastesClosed, t(1)), Handled::Applied);
    let outs = drain(&mut f);
    let Some(Outcome::Failed(e)) = finished(&outs) else {
        panic!("{outs:?}")
    };
    assert_eq!(e, FlowError::User(UserError::PastesClosed));
    assert_eq!(e.kind(), "no_code_source");
    // Loopback: the browser can still come back.
    let mut g = bound_flow(7, FlowConfig::default());
    drain(&mut g);
    assert_eq!(
        g.handle_input(Input::PastesClosed, t(1)),
        Handled::Ignored(Ignored::BrowserCanStillCome)
    );
    assert_eq!(g.phase(), Phase::AwaitingCallback);
    // Headless with a code already in: the exchange goes on.
    let mut h = headless(8);
    let _ = h.handle_input(Input::Pasted("a-code".to_string().into()), t(1));
    drain(&mut h);
    assert_eq!(
        h.handle_input(Input::PastesClosed, t(2)),
        Handled::Ignored(Ignored::CodeAlreadyReceived)
    );
    assert_eq!(h.phase(), Phase::Exchanging);
}

#[test]
fn an_insecure_base_url_is_refused_by_the_core() {
    for base in [
        "http://openrouter.ai",
        "http://192.168.1.20:8080",
        "ftp://localhost",
    ] {
        let base_url = url::Url::parse(base).unwrap();
        let r: Result<Flow, _> = Flow::new(
            {
                let mut c = FlowConfig::default();
                c.base_url = base_url.clone();
                c
            },
            &mut rng(9),
            t(0),
        );
        assert_eq!(r.unwrap_err(), ConfigError::InsecureBaseUrl { base_url });
    }
    for base in [
        "https://openrouter.ai",
        "http://localhost:8080",
        "http://[::1]:9",
    ] {
        let r: Result<Flow, _> = Flow::new(
            {
                let mut c = FlowConfig::default();
                c.base_url = url::Url::parse(base).unwrap();
                c
            },
            &mut rng(9),
            t(0),
        );
        assert!(r.is_ok(), "{base}");
    }
}

#[test]
fn the_store_report_comes_back_in_the_outcome() {
    let mut f: Flow<(u32, &'static str)> =
        Flow::new(FlowConfig::default(), &mut rng(10), t(0)).unwrap();
    let _ = f.handle_input(
        Input::ListenerBound {
            port: PORT,
            ipv6: true,
        },
        t(0),
    );
    let _ = f.handle_input(Input::Pasted("a-code".to_string().into()), t(1));
    let id = std::iter::from_fn(|| f.poll_output())
        .find_map(|o| match o {
            Output::SendExchange { id, .. } => Some(id),
            _ => None,
        })
        .unwrap();
    let _ = f.handle_input(
        Input::ExchangeResponse {
            id,
            response: ok_response(),
        },
        t(2),
    );
    assert_eq!(
        f.handle_input(
            Input::KeyStored {
                location: "file /tmp/k".into(),
                report: (0o600, "/tmp/k"),
            },
            t(3),
        ),
        Handled::Applied
    );
    assert!(matches!(
        f.outcome(),
        Some(Outcome::Stored { report: (0o600, "/tmp/k"), location, .. }) if location == "file /tmp/k"
    ));
}
