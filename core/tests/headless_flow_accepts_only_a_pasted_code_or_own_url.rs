//! Headless mode (PROTOCOL.md section 5): no `callback_url`, the user pastes the code that
//! OpenRouter shows, or (in either mode) the redirect URL from a browser elsewhere. Only a
//! code or a URL with this flow's nonce starts the exchange; anything else is rejected with
//! a reason and the flow keeps waiting.
mod common;
use common::*;
use openrouter_auth_core::*;

fn headless(seed: u64) -> (Flow, url::Url) {
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
    let outs = drain(&mut f);
    let [Output::PromptForCode { url }] = outs.as_slice() else {
        panic!("{outs:?}")
    };
    (f, url.clone())
}

fn paste(f: &mut Flow, text: &str, at: u64) -> Vec<Output> {
    let _ = f.handle_input(Input::Pasted(text.to_string().into()), t(at));
    drain(f)
}

#[test]
fn prompt_url_has_a_challenge_and_no_callback() {
    let (f, url) = headless(1);
    assert_eq!(f.phase(), Phase::AwaitingCallback);
    assert_eq!(Some(&url), f.authorization_url());
    assert_eq!(f.callback_url(), None);
    let q: Vec<(String, String)> = url.query_pairs().into_owned().collect();
    assert!(q.iter().all(|(k, _)| k != "callback_url"), "{url}");
    assert!(
        q.iter()
            .any(|(k, v)| k == "code_challenge" && v == f.code_challenge().as_str()),
        "{url}"
    );
    assert!(
        q.iter()
            .any(|(k, v)| k == "code_challenge_method" && v == "S256"),
        "{url}"
    );
    assert_eq!(f.poll_timeout(), Some(t(600_000)));
}

#[test]
fn a_bare_pasted_code_starts_the_exchange_and_signs_in() {
    let (mut f, _) = headless(2);
    let outs = paste(&mut f, "  pasted-code-123\n", 10);
    assert_eq!(f.phase(), Phase::Exchanging);
    assert_eq!(sends(&outs), 1);
    assert_eq!(exchange_body(&outs)["code"], "pasted-code-123", "trimmed");
    let verifier = exchange_body(&outs)["code_verifier"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        CodeVerifier::parse(&verifier)
            .unwrap()
            .challenge(CodeChallengeMethod::S256),
        *f.code_challenge(),
        "the verifier matches the challenge in the prompt URL"
    );
    let id = exchange_id(&outs);
    let _ = f.handle_input(
        Input::ExchangeResponse {
            id,
            response: ok_response(),
        },
        t(11),
    );
    assert_eq!(store_keys(&drain(&mut f)), 1);
    let _ = f.handle_input(
        Input::KeyStored {
            location: "x".into(),
            report: (),
        },
        t(12),
    );
    let outs = drain(&mut f);
    assert!(
        matches!(finished(&outs), Some(Outcome::Stored { .. })),
        "no browser to linger for: {outs:?}"
    );
}

#[test]
fn a_second_paste_during_the_exchange_sends_nothing() {
    let (mut f, _) = headless(3);
    paste(&mut f, "first", 10);
    let outs = paste(&mut f, "second", 11);
    assert_eq!(sends(&outs), 0, "{outs:?}");
    assert_eq!(f.exchanges_sent(), 1);
    assert_eq!(f.phase(), Phase::Exchanging);
}

#[test]
fn a_pasted_redirect_url_with_our_nonce_works() {
    // Headless, and in loopback mode (the browser ran on another machine).
    for headless_mode in [true, false] {
        let mut f = if headless_mode {
            headless(4).0
        } else {
            let mut f = bound_flow(4, FlowConfig::default());
            drain(&mut f);
            f
        };
        let url = format!(
            "http://localhost:{PORT}{}",
            own(&f, "?code=url-code%2F1&state=") + f.nonce().expose_secret()
        );
        let outs = paste(&mut f, &url, 10);
        assert_eq!(f.phase(), Phase::Exchanging, "{headless_mode}: {outs:?}");
        assert_eq!(exchange_body(&outs)["code"], "url-code/1");
    }
}

#[test]
fn a_pasted_error_url_with_our_nonce_is_a_denial() {
    let (mut f, _) = headless(5);
    let url = format!("http://localhost:{PORT}{}", own(&f, "?error=access_denied"));
    let outs = paste(&mut f, &url, 10);
    assert!(matches!(
        finished(&outs),
        Some(Outcome::Failed(FlowError::User(UserError::Denied(_))))
    ));
}

#[test]
fn a_pasted_url_with_another_nonce_is_rejected_and_the_flow_keeps_waiting() {
    let (mut f, _) = headless(6);
    for url in [
        format!("http://localhost:{PORT}/callback/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA?code=c"),
        format!(
            "http://localhost:{PORT}/callback/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA?error=access_denied"
        ),
        "https://evil.example/?code=c".to_string(),
    ] {
        let outs = paste(&mut f, &url, 10);
        let [Output::PasteRejected { reason }] = outs.as_slice() else {
            panic!("{url}: {outs:?}")
        };
        assert_eq!(reason, "that URL belongs to another sign-in");
        assert_eq!(f.phase(), Phase::AwaitingCallback);
    }
    let outs = paste(&mut f, "good-code", 11);
    assert_eq!(sends(&outs), 1);
}

#[test]
fn pasted_junk_is_rejected_and_the_flow_keeps_waiting() {
    let (mut f, _) = headless(7);
    let nonce = f.nonce().expose_secret().to_string();
    for junk in [
        String::new(),
        "   ".into(),
        "\n\t".into(),
        "two words".into(),
        "tab\there".into(),
        "bell\u{7}".into(),
        "a".repeat(2049),
        "http://".into(),
        "http://[::1".into(),
        format!("http://localhost:{PORT}/callback/{nonce}"),
        format!("http://localhost:{PORT}/callback/{nonce}/done"),
        format!("http://localhost:{PORT}/callback/{nonce}?code="),
        format!("http://localhost:{PORT}/callback/{nonce}?state=wrong&code=c"),
    ] {
        let outs = paste(&mut f, &junk, 10);
        assert!(
            matches!(outs.as_slice(), [Output::PasteRejected { .. }]),
            "{junk:?}: {outs:?}"
        );
        assert_eq!(f.phase(), Phase::AwaitingCallback, "{junk:?}");
        assert_eq!(f.exchanges_sent(), 0, "{junk:?}");
    }
    assert_eq!(sends(&paste(&mut f, "a".repeat(2048).as_str(), 11)), 1);
}
