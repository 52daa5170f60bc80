//! A whole sign-in through the state machine, step by step, as a browser and a shell would.
mod common;
use common::*;
use openrouter_auth_core::*;

#[test]
fn full_sign_in_answers_truthfully_and_redirects_to_a_clean_url() {
    let mut f = Flow::new(FlowConfig::default(), &mut rng(1), t(0)).unwrap();
    assert_eq!(f.phase(), Phase::Init);
    assert!(drain(&mut f).is_empty());
    let _ = f.handle_input(
        Input::ListenerBound {
            port: PORT,
            ipv6: true,
        },
        t(5),
    );
    let outs = drain(&mut f);
    let Output::OpenBrowser { url } = &outs[0] else {
        panic!("{outs:?}")
    };
    assert_eq!(Some(url), f.authorization_url());
    assert_eq!(f.phase(), Phase::AwaitingCallback);

    // The browser's favicon request and a preconnect change nothing.
    let _ = f.handle_input(get(1, "/favicon.ico"), t(10));
    assert_eq!(response_for(&drain(&mut f), 1).status, 404);

    // The real callback: held until the result is known.
    let _ = f.handle_input(get(2, &own(&f, "?code=the-code")), t(20));
    let outs = drain(&mut f);
    assert_eq!(f.phase(), Phase::Exchanging);
    assert!(
        outs.iter().all(|o| !matches!(o, Output::Respond { .. })),
        "no answer before the exchange: {outs:?}"
    );
    let Output::SendExchange {
        id,
        attempt,
        request,
        timeout,
    } = &outs[0]
    else {
        panic!("{outs:?}")
    };
    assert_eq!(*attempt, 1);
    assert_eq!(*timeout, std::time::Duration::from_secs(30));
    let body: serde_json::Value = serde_json::from_slice(&request.body).unwrap();
    assert_eq!(body["code"], "the-code");
    assert_eq!(body["code_challenge_method"], "S256");
    let verifier = body["code_verifier"].as_str().unwrap();
    assert_eq!(
        CodeVerifier::parse(verifier)
            .unwrap()
            .challenge(CodeChallengeMethod::S256),
        *f.code_challenge()
    );

    let _ = f.handle_input(
        Input::ExchangeResponse {
            id: *id,
            response: ok_response(),
        },
        t(300),
    );
    let outs = drain(&mut f);
    assert_eq!(f.phase(), Phase::Storing);
    let Output::StoreKey { key, user_id } = &outs[0] else {
        panic!("{outs:?}")
    };
    assert_eq!(key.expose_secret(), KEY);
    assert_eq!(user_id.as_deref(), Some("user_1"));
    assert!(
        outs.iter().all(|o| !matches!(o, Output::Respond { .. })),
        "no page before storing: {outs:?}"
    );

    let _ = f.handle_input(
        Input::KeyStored {
            location: "credentials file /tmp/c.json".into(),
            report: (),
        },
        t(310),
    );
    let outs = drain(&mut f);
    assert_eq!(ended(&f), Some(End::Stored));
    let r = response_for(&outs, 2);
    assert_eq!(r.status, 303);
    let done = r.header("location").unwrap().to_string();
    assert_eq!(done, own(&f, "/done"));
    assert!(finished(&outs).is_none(), "lingers for /done");

    let _ = f.handle_input(get(3, &done), t(320));
    let outs = drain(&mut f);
    let page = response_for(&outs, 3);
    assert_eq!(page.status, 200);
    assert!(page.body.contains("Signed in to OpenRouter"));
    assert!(
        page.body.contains("/<wbr>tmp/<wbr>c.json"),
        "where the key went"
    );
    assert!(!page.body.contains(KEY));
    match finished(&outs) {
        Some(Outcome::Stored { key, location, .. }) => {
            assert_eq!(key.expose_secret(), KEY);
            assert_eq!(location, "credentials file /tmp/c.json");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(f.poll_timeout(), None);
    assert_eq!(f.exchanges_sent(), 1);
}

#[test]
fn done_page_not_fetched_finishes_after_linger() {
    let mut f = bound_flow(2, FlowConfig::default());
    drain(&mut f);
    let _ = f.handle_input(get(1, &own(&f, "?code=c")), t(1));
    let id = exchange_id(&drain(&mut f));
    let _ = f.handle_input(
        Input::ExchangeResponse {
            id,
            response: ok_response(),
        },
        t(2),
    );
    let _ = f.handle_input(
        Input::KeyStored {
            location: "x".into(),
            report: (),
        },
        t(3),
    );
    drain(&mut f);
    let linger = f.poll_timeout().unwrap();
    assert_eq!(linger, t(3).saturating_add(flow::DONE_LINGER));
    let _ = f.handle_timeout(t(4));
    assert!(finished(&drain(&mut f)).is_none());
    let _ = f.handle_timeout(linger);
    assert!(matches!(
        finished(&drain(&mut f)),
        Some(Outcome::Stored { .. })
    ));
}

#[test]
fn browser_gone_before_result_finishes_at_once() {
    let mut f = bound_flow(3, FlowConfig::default());
    drain(&mut f);
    let _ = f.handle_input(get(1, &own(&f, "?code=c")), t(1));
    let id = exchange_id(&drain(&mut f));
    let _ = f.handle_input(Input::ConnectionClosed(ConnectionId(1)), t(2));
    let _ = f.handle_input(
        Input::ExchangeResponse {
            id,
            response: ok_response(),
        },
        t(3),
    );
    let _ = f.handle_input(
        Input::KeyStored {
            location: "x".into(),
            report: (),
        },
        t(4),
    );
    let outs = drain(&mut f);
    assert!(outs.iter().all(|o| !matches!(o, Output::Respond { .. })));
    assert!(matches!(finished(&outs), Some(Outcome::Stored { .. })));
}

#[test]
fn a_reload_during_the_exchange_is_held_and_gets_the_same_answer() {
    let mut f = bound_flow(4, FlowConfig::default());
    drain(&mut f);
    let _ = f.handle_input(get(1, &own(&f, "?code=c")), t(1));
    let id = exchange_id(&drain(&mut f));
    let _ = f.handle_input(get(2, &own(&f, "?code=c")), t(2));
    let outs = drain(&mut f);
    assert!(outs.is_empty(), "reload held, no second exchange: {outs:?}");
    let _ = f.handle_input(
        Input::ExchangeResponse {
            id,
            response: ok_response(),
        },
        t(3),
    );
    let _ = f.handle_input(
        Input::KeyStored {
            location: "x".into(),
            report: (),
        },
        t(4),
    );
    let outs = drain(&mut f);
    assert_eq!(response_for(&outs, 1).status, 303);
    assert_eq!(response_for(&outs, 2).status, 303);
    assert_eq!(f.exchanges_sent(), 1);
}

#[test]
fn store_failure_still_hands_out_the_key() {
    let mut f = bound_flow(5, FlowConfig::default());
    drain(&mut f);
    let _ = f.handle_input(get(1, &own(&f, "?code=c")), t(1));
    let id = exchange_id(&drain(&mut f));
    let _ = f.handle_input(
        Input::ExchangeResponse {
            id,
            response: ok_response(),
        },
        t(2),
    );
    let _ = f.handle_input(Input::Cancel, t(3)); // ignored while storing: the key must not be lost
    assert_eq!(f.phase(), Phase::Storing);
    let _ = f.handle_input(
        Input::KeyNotStored {
            reason: write_failed("disk full"),
        },
        t(4),
    );
    assert_eq!(ended(&f), Some(End::Failed));
    let outs = drain(&mut f);
    let done = response_for(&outs, 1)
        .header("location")
        .unwrap()
        .to_string();
    let _ = f.handle_input(get(2, &done), t(5));
    let outs = drain(&mut f);
    let page = response_for(&outs, 2);
    assert!(page.body.contains("not stored"));
    assert!(!page.body.contains(KEY));
    // The key exists on OpenRouter: the page links its page, where it can be revoked.
    let key_page = openrouter_auth_core::ApiKey::new(KEY)
        .key_page_url(&f.config().base_url)
        .to_string();
    assert!(page.body.contains(&key_page), "{}", page.body);
    assert!(
        page.body.contains("See or revoke this key"),
        "{}",
        page.body
    );
    match finished(&outs) {
        Some(Outcome::KeyNotStored { key, reason, .. }) => {
            assert_eq!(key.expose_secret(), KEY);
            assert_eq!(reason, write_failed("disk full"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn same_seed_gives_identical_urls_and_pages() {
    let run = |seed| {
        let mut f = bound_flow(seed, FlowConfig::default());
        let mut outs = format!("{:?}", drain(&mut f));
        let _ = f.handle_input(get(1, "/nope"), t(1));
        let _ = f.handle_input(get(2, &own(&f, "?error=access_denied")), t(2));
        outs.push_str(&format!("{:?}", drain(&mut f)));
        (f.authorization_url().unwrap().to_string(), outs)
    };
    assert_eq!(run(9), run(9));
    assert_ne!(run(9).0, run(10).0);
}

#[test]
fn authorization_url_snapshot() {
    let f = bound_flow(42, {
        let mut c = FlowConfig::default();
        c.key_label = Some(KeyLabel::new("ana's laptop & co · 2026-11-30").unwrap());
        c
    });
    insta::assert_snapshot!(
        "authorization_url_loopback",
        f.authorization_url().unwrap().as_str()
    );
    let f = bound_flow(42, {
        let mut c = FlowConfig::default();
        c.callback_host = CallbackHost::Ipv4Loopback;
        c
    });
    insta::assert_snapshot!(
        "authorization_url_127",
        f.authorization_url().unwrap().as_str()
    );
    let f: Flow = Flow::new(
        {
            let mut c = FlowConfig::default();
            c.headless = true;
            c
        },
        &mut rng(42),
        t(0),
    )
    .unwrap();
    insta::assert_snapshot!(
        "authorization_url_headless",
        f.authorization_url().unwrap().as_str()
    );
    let url = f.authorization_url().unwrap();
    assert!(url.query_pairs().all(|(k, _)| k != "callback_url"));
    assert!(url.query_pairs().any(|(k, _)| k == "code_challenge"));
}

#[test]
fn serialised_flow_resumes_where_it_stopped() {
    let mut f = bound_flow(6, FlowConfig::default());
    drain(&mut f);
    let _ = f.handle_input(get(1, &own(&f, "?code=c")), t(1));
    let id = exchange_id(&drain(&mut f));
    let json = serde_json::to_string(&f).unwrap();
    let mut g: Flow = serde_json::from_str(&json).unwrap();
    assert_eq!(g.phase(), Phase::Exchanging);
    let _ = g.handle_input(
        Input::ExchangeResponse {
            id,
            response: ok_response(),
        },
        t(2),
    );
    assert!(matches!(drain(&mut g)[0], Output::StoreKey { .. }));
}
