//! Regression, found by the `flow_inputs` fuzz target and then by the simulator's "echoing
//! proxy" network fault: an exchange answer that echoes our request (a debugging proxy or a
//! confused server answering 400 with the request body) carried the authorization code and
//! the `code_verifier` into `OpenRouterError::Unexpected`'s excerpt, and from there into the
//! error message, the browser's "Sign-in failed" page and the `Outcome` (PROTOCOL.md
//! section 7: they never reach logs or pages). The flow now scrubs both from error bodies.
use openrouter_auth_core::{
    BrowserRequest, ConnectionId, FlowConfig, HttpResponse, Input, Outcome, Output, Time,
};
use openrouter_auth_oracle::{flow_inputs, CheckedFlow};
use openrouter_auth_sim::simulator::plan::{Fate, FlowPlan, Plan, StoreFate, UserPlan};
use openrouter_auth_sim::simulator::{run_plan, Record};
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use zeroize::Zeroizing;

const CODE: &str = "c0de-c0de-c0de-c0de-c0de-c0de";

#[test]
fn exchange_errors_do_not_echo_the_code_or_verifier() {
    for status in [400, 409, 418] {
        let (mut f, _) = CheckedFlow::new(
            FlowConfig::default(),
            &mut ChaCha20Rng::seed_from_u64(9),
            Time::ZERO,
        )
        .unwrap();
        let challenge = f.flow().code_challenge().as_str().to_owned();
        f.note_code_issued(CODE, &challenge);
        let verifier = f.verifier().to_owned();
        f.handle_input(Input::ListenerBound { port: 53682 }, Time::ZERO)
            .unwrap();
        let own = format!("/callback/{}", f.flow().nonce().expose_secret());
        let request = |conn: u64, target: String| {
            Input::Request(BrowserRequest {
                conn: ConnectionId(conn),
                method: "GET".into(),
                target: Zeroizing::new(target.into_bytes()),
                host: Some(b"localhost:53682".to_vec()),
            })
        };
        let outs = f
            .handle_input(
                request(1, format!("{own}?code={CODE}")),
                Time::from_millis(10),
            )
            .unwrap();
        let (id, body) = outs
            .iter()
            .find_map(|o| match o {
                Output::SendExchange { id, request, .. } => Some((*id, request.body.to_vec())),
                _ => None,
            })
            .expect("the exchange");
        let mut echo =
            format!("{{\"error\":{{\"code\":{status},\"message\":\"bad request: ").into_bytes();
        echo.extend_from_slice(&body);
        echo.extend_from_slice(b"\"}}");
        let mut html = b"<html><pre>".to_vec();
        html.extend_from_slice(&body);
        for echoed in [echo, html] {
            let (mut g, _) = CheckedFlow::new(
                FlowConfig::default(),
                &mut ChaCha20Rng::seed_from_u64(9),
                Time::ZERO,
            )
            .unwrap();
            g.note_code_issued(CODE, &challenge);
            g.handle_input(Input::ListenerBound { port: 53682 }, Time::ZERO)
                .unwrap();
            g.handle_input(
                request(1, format!("{own}?code={CODE}")),
                Time::from_millis(10),
            )
            .unwrap();
            // The checker fails the step if the code or verifier reaches a page or output.
            g.handle_input(
                Input::ExchangeResponse {
                    id,
                    response: HttpResponse::new(status, echoed.clone()),
                },
                Time::from_millis(20),
            )
            .unwrap();
            let page = g
                .handle_input(request(2, format!("{own}/done")), Time::from_millis(30))
                .unwrap();
            let outcome = g.flow().outcome().expect("ended");
            let message = match outcome {
                Outcome::Failed(e) => e.to_string(),
                other => format!("{other:?}"),
            };
            for text in [message, format!("{outcome:?}"), format!("{page:?}")] {
                assert!(!text.contains(CODE), "the code leaked: {text}");
                assert!(!text.contains(&verifier), "the verifier leaked: {text}");
            }
        }
    }
}

#[test]
fn the_simulated_echoing_proxy_leaks_nothing() {
    let user = UserPlan {
        comes_back: true,
        think_ms: 5_000,
        approves: true,
        redirect_ms: 50,
        duplicate_callback: false,
        reloads: vec![],
        close_after_ms: None,
        follows_redirect: true,
        favicon: false,
        pastes_url_ms: None,
        approves_again_ms: None,
        paste_ms: 0,
        typo: false,
        junk_first: false,
    };
    let plan = Plan {
        flows: vec![FlowPlan {
            headless: false,
            callback_host: openrouter_auth_core::CallbackHost::Localhost,
            method: openrouter_auth_core::CodeChallengeMethod::S256,
            callback_timeout_s: 600,
            exchange_timeout_s: 30,
            port: 53682,
            gap_ms: 0,
            user,
            fates: vec![Fate::EchoingProxy { after: 80 }],
            store: StoreFate::Ok { ms: 10 },
            cancel_after_ms: None,
            stale_tabs: vec![],
            preconnects: 0,
        }],
        attacks: vec![],
        heal_at_ms: None,
        echo_state: true,
    };
    let r = run_plan(167, &plan, Record::Transcript);
    assert!(r.violation.is_none(), "{}", r.violation.unwrap());
    assert_eq!(r.outcomes, ["unexpected_response"]);
}

#[test]
fn the_fuzzers_crash_input_passes() {
    flow_inputs(include_bytes!(
        "../../fuzz/corpus/flow_inputs/regression-exchange-error-echoes-the-code"
    ));
}
