//! Codes, verifiers and keys never reach `Debug` output (PROTOCOL.md section 7): not in any
//! output, input, outcome or the flow itself, for whole flows. The serialised flow, by
//! contrast, holds them (documented), and round-trips at every stage.
mod common;
use common::*;
use openrouter_auth_core::*;

const CODE: &str = "c0de-SECRET-4f9a2e7b";

/// Runs a whole flow, formatting every input, output and the flow with `{:?}` as it goes.
/// Returns the transcript and the verifier taken from the exchange body.
fn transcript(store_ok: bool, pasted: bool) -> (String, String) {
    let mut log = String::new();
    let config = {
        let mut c = FlowConfig::default();
        c.headless = pasted;
        c
    };
    let mut f = Flow::new(config, &mut rng(11), t(0)).unwrap();
    let base = own(&f, "");
    let feed = |f: &mut Flow, input: Input, at: u64, log: &mut String| {
        log.push_str(&format!("{input:?}\n"));
        let _ = f.handle_input(input, t(at));
        let outs = drain(f);
        for o in &outs {
            log.push_str(&format!("{o:?}\n"));
        }
        log.push_str(&format!("{f:?}\n"));
        outs
    };
    for o in drain(&mut f) {
        log.push_str(&format!("{o:?}\n"));
    }
    let outs = if pasted {
        feed(
            &mut f,
            Input::Pasted(format!("  {CODE}\n").into()),
            1,
            &mut log,
        )
    } else {
        feed(
            &mut f,
            Input::ListenerBound {
                port: PORT,
                ipv6: true,
            },
            0,
            &mut log,
        );
        feed(&mut f, get(1, "/favicon.ico"), 1, &mut log);
        feed(
            &mut f,
            get(2, &format!("{base}?code={CODE}&state=nope")),
            1,
            &mut log,
        );
        feed(&mut f, get(3, &format!("{base}?code={CODE}")), 2, &mut log)
    };
    let body = exchange_body(&outs);
    assert_eq!(body["code"], CODE);
    let verifier = body["code_verifier"].as_str().unwrap().to_string();
    let id1 = exchange_id(&outs);
    feed(
        &mut f,
        Input::ExchangeFailed {
            id: id1,
            may_have_been_sent: false,
            reason: "connection refused".into(),
        },
        3,
        &mut log,
    );
    let _ = f.handle_timeout(t(1000));
    let outs = drain(&mut f);
    for o in &outs {
        log.push_str(&format!("{o:?}\n"));
    }
    let id2 = exchange_id(&outs);
    if !pasted {
        feed(
            &mut f,
            get(4, &format!("{base}?code={CODE}")),
            1001,
            &mut log,
        );
    }
    feed(
        &mut f,
        Input::ExchangeResponse {
            id: id2,
            response: ok_response(),
        },
        1002,
        &mut log,
    );
    let result = if store_ok {
        Input::KeyStored {
            location: "credentials file /tmp/c.json".into(),
            report: (),
        }
    } else {
        Input::KeyNotStored {
            reason: write_failed("disk full"),
        }
    };
    let outs = feed(&mut f, result, 1003, &mut log);
    if !pasted {
        let done = response_for(&outs, 3)
            .header("location")
            .unwrap()
            .to_string();
        feed(&mut f, get(5, &done), 1004, &mut log);
        feed(&mut f, get(6, &done), 1005, &mut log);
    }
    let _ = f.handle_timeout(t(100_000));
    for o in drain(&mut f) {
        log.push_str(&format!("{o:?}\n"));
    }
    let outcome = f.outcome().expect("terminal");
    assert_eq!(outcome.key().unwrap().expose_secret(), KEY);
    log.push_str(&format!("{outcome:?}\n{f:?}\n"));
    (log, verifier)
}

fn assert_clean(log: &str, verifier: &str, case: &str) {
    // The transcript is not empty and did go through the exchange and the store.
    assert!(log.contains("SendExchange"), "{case}");
    assert!(log.contains("StoreKey"), "{case}");
    assert!(log.contains("Finished"), "{case}");
    for (name, secret) in [("code", CODE), ("verifier", verifier), ("key", KEY)] {
        assert!(
            !log.contains(secret),
            "{case}: the {name} leaked into Debug output:\n{log}"
        );
    }
    assert!(!log.contains("sk-or-"), "{case}: no key prefix either");
}

#[test]
fn loopback_flow_debug_output_holds_no_secret() {
    let (log, v) = transcript(true, false);
    assert_clean(&log, &v, "loopback, stored");
    let (log, v) = transcript(false, false);
    assert_clean(&log, &v, "loopback, not stored");
}

#[test]
fn headless_flow_debug_output_holds_no_secret() {
    let (log, v) = transcript(true, true);
    assert_clean(&log, &v, "headless, stored");
}

#[test]
fn a_pasted_url_is_redacted_in_debug() {
    let input: Input =
        Input::Pasted(format!("http://localhost:{PORT}/callback/n?code={CODE}").into());
    let dbg = format!("{input:?}");
    assert!(!dbg.contains(CODE), "{dbg}");
    assert!(dbg.contains("Pasted"), "{dbg}");
}

#[test]
fn serialised_flow_holds_secrets_as_documented() {
    let src = include_str!("../src/flow.rs");
    assert!(
        src.contains("**the serialised form holds\n/// secrets**"),
        "Flow's doc must warn that its serialised form holds secrets"
    );
    let (mut f, id) = exchanging_flow(12, 1);
    let json = serde_json::to_string(&f).unwrap();
    let outs = {
        let _ = f.handle_input(
            Input::ExchangeFailed {
                id,
                may_have_been_sent: false,
                reason: "r".into(),
            },
            t(1001),
        );
        let _ = f.handle_timeout(t(2000));
        drain(&mut f)
    };
    let verifier = exchange_body(&outs)["code_verifier"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(json.contains(&verifier), "the verifier is in the JSON");
    assert!(
        json.contains("the-code"),
        "the code in flight is in the JSON"
    );
}

/// Serialises and deserialises, checking what the user would see is unchanged.
fn round_trip(f: &Flow) -> Flow {
    let json = serde_json::to_string(f).unwrap();
    let g: Flow = serde_json::from_str(&json).unwrap();
    assert_eq!(g.phase(), f.phase());
    assert_eq!(g.poll_timeout(), f.poll_timeout());
    assert_eq!(g.authorization_url(), f.authorization_url());
    assert_eq!(g.callback_url(), f.callback_url());
    assert_eq!(g.nonce(), f.nonce());
    assert_eq!(g.code_challenge(), f.code_challenge());
    assert_eq!(g.outcome(), f.outcome());
    assert_eq!(g.exchanges_sent(), f.exchanges_sent());
    assert_eq!(g.config(), f.config());
    assert_eq!(serde_json::to_string(&g).unwrap(), json, "stable");
    g
}

#[test]
fn round_trip_after_listener_bound_then_sign_in() {
    let mut f = Flow::new(FlowConfig::default(), &mut rng(13), t(0)).unwrap();
    let f0 = round_trip(&f);
    assert_eq!(f0.phase(), Phase::Init);
    let _ = f.handle_input(
        Input::ListenerBound {
            port: PORT,
            ipv6: true,
        },
        t(1),
    );
    // Undrained outputs survive the trip too.
    let mut g = round_trip(&f);
    let outs = drain(&mut g);
    assert!(
        matches!(outs.as_slice(), [Output::OpenBrowser { url }] if Some(url) == f.authorization_url()),
        "{outs:?}"
    );
    drain(&mut f);
    let mut g = round_trip(&f);
    // Both copies produce the same exchange request: same verifier, same code.
    let _ = g.handle_input(get(1, &own(&g, "?code=c")), t(2));
    let _ = f.handle_input(get(1, &own(&f, "?code=c")), t(2));
    let (go, fo) = (drain(&mut g), drain(&mut f));
    assert_eq!(exchange_body(&go), exchange_body(&fo));
    complete_via_callback(&mut bound_copy(&f0), 10, 10);
}

fn bound_copy(f: &Flow) -> Flow {
    let mut g = round_trip(f);
    let _ = g.handle_input(
        Input::ListenerBound {
            port: PORT,
            ipv6: true,
        },
        t(1),
    );
    drain(&mut g);
    g
}

#[test]
fn round_trip_mid_flow_at_every_stage() {
    // Backing off before a retry.
    let (mut f, id) = exchanging_flow(14, 1);
    let _ = f.handle_input(
        Input::ExchangeFailed {
            id,
            may_have_been_sent: false,
            reason: "r".into(),
        },
        t(1001),
    );
    let mut g = round_trip(&f);
    assert_eq!(g.poll_timeout(), Some(t(1251)));
    let _ = g.handle_timeout(t(1251));
    let id2 = exchange_id(&drain(&mut g));
    assert_ne!(id2, id);
    // Storing, with the held tab.
    let _ = g.handle_input(
        Input::ExchangeResponse {
            id: id2,
            response: ok_response(),
        },
        t(1300),
    );
    drain(&mut g);
    let mut h = round_trip(&g);
    assert_eq!(h.phase(), Phase::Storing);
    let _ = h.handle_input(
        Input::KeyStored {
            location: "x".into(),
            report: (),
        },
        t(1301),
    );
    let outs = drain(&mut h);
    assert_eq!(response_for(&outs, 1).status, 303, "held tab survived");
    // Lingering for /done.
    let mut k = round_trip(&h);
    let _ = k.handle_input(get(2, &own(&k, "/done")), t(1302));
    let outs = drain(&mut k);
    assert_eq!(title(&response_for(&outs, 2)), "Signed in to OpenRouter");
    assert!(matches!(
        finished(&outs),
        Some(Outcome::Stored { key, .. }) if key.expose_secret() == KEY
    ));
    // Finished.
    let done = round_trip(&k);
    assert_eq!(done.poll_timeout(), None);
}
