//! Every documented answer of `POST /api/v1/auth/keys` that is not a key (PROTOCOL.md
//! section 3) ends the flow as `Failed` with its own `FlowError::kind()`, without a retry, and
//! the browser's clean page shows the same message. Then one snapshot of every user-facing
//! message, so wording changes are reviewed.
mod common;
use common::*;
use openrouter_auth_core::callback::Malformed;
use openrouter_auth_core::*;
use std::time::Duration;

fn documented_failures() -> Vec<(&'static str, HttpResponse, &'static str, Party)> {
    vec![
        (
            "400 method",
            error_response(400, "Invalid code_challenge_method"),
            "invalid_code_challenge_method",
            Party::Program,
        ),
        (
            "403 invalid",
            error_response(403, "Invalid code or code_verifier"),
            "invalid_code",
            Party::User,
        ),
        (
            "403 expired",
            error_response(403, "Authorization code expired"),
            "code_expired",
            Party::User,
        ),
        (
            "405",
            error_response(405, "Method Not Allowed"),
            "method_not_allowed",
            Party::Program,
        ),
        (
            "409",
            error_response(409, "Failed to create or update app"),
            "conflict",
            Party::OpenRouter,
        ),
        (
            "429 with Retry-After",
            error_response(429, "Too many requests").with_header("Retry-After", "17"),
            "rate_limited",
            Party::OpenRouter,
        ),
        (
            "500",
            HttpResponse::new(500, "Internal Server Error"),
            "server_error",
            Party::OpenRouter,
        ),
        (
            "502 html",
            HttpResponse::new(502, "<html>Bad gateway</html>"),
            "server_error",
            Party::OpenRouter,
        ),
        (
            "503",
            HttpResponse::new(503, ""),
            "server_error",
            Party::OpenRouter,
        ),
        (
            "200 without key",
            HttpResponse::new(200, r#"{"user_id":"user_1"}"#),
            "missing_key",
            Party::OpenRouter,
        ),
        (
            "200 key null",
            HttpResponse::new(200, r#"{"key":null}"#),
            "missing_key",
            Party::OpenRouter,
        ),
        (
            "200 malformed JSON",
            HttpResponse::new(200, r#"{"key":"sk-or-v1-01"#),
            "missing_key",
            Party::OpenRouter,
        ),
        (
            "200 not JSON",
            HttpResponse::new(200, "<html>"),
            "missing_key",
            Party::OpenRouter,
        ),
        (
            "418",
            HttpResponse::new(418, "teapot"),
            "unexpected_response",
            Party::OpenRouter,
        ),
    ]
}

#[test]
fn each_documented_failure_ends_failed_with_its_kind() {
    for (i, (what, response, kind, party)) in documented_failures().into_iter().enumerate() {
        let (mut f, id) = exchanging_flow(i as u64, 1);
        let parsed = parse_exchange_response(&response).err();
        let _ = f.handle_input(Input::ExchangeResponse { id, response }, t(1100));
        let outs = drain(&mut f);
        assert_eq!(ended(&f), Some(End::Failed), "{what}");
        assert_eq!(sends(&outs), 0, "{what}: no retry");
        assert_eq!(store_keys(&outs), 0, "{what}");
        let Some(Outcome::Failed(err)) = f.outcome().cloned() else {
            panic!("{what}: {:?}", f.outcome())
        };
        assert_eq!(
            Some(&err),
            parsed.as_ref(),
            "{what}: the parser's classification"
        );
        assert_eq!(err.kind(), kind, "{what}: {err}");
        assert_eq!(err.party(), party, "{what}");
        if what.starts_with("429") {
            assert_eq!(
                err,
                FlowError::OpenRouter(OpenRouterError::RateLimited {
                    retry_after: Some(Duration::from_secs(17))
                })
            );
            assert!(err.to_string().contains("for 17 s"), "{err}");
        }
        // The waiting tab is sent to the clean page, which shows the same message.
        let r = response_for(&outs, 1);
        assert_eq!(r.status, 303, "{what}");
        let _ = f.handle_input(get(2, r.header("location").unwrap()), t(1101));
        let outs = drain(&mut f);
        let page = response_for(&outs, 2);
        if err == FlowError::User(UserError::CodeExpired) {
            // Said as the page for a sign-in that took too long, with how to start again.
            assert_eq!(title(&page), "Sign-in expired", "{what}");
        } else {
            assert_eq!(title(&page), "Sign-in failed", "{what}");
            // The message as a sentence: a capital first letter (and a full stop).
            let message = err.to_string();
            let mut chars = message.chars();
            let first = chars.next().unwrap().to_uppercase().collect::<String>();
            let escaped = (first + chars.as_str())
                .replace('&', "&amp;")
                .replace('<', "&lt;")
                .replace('>', "&gt;")
                .replace('"', "&quot;")
                .replace('\'', "&#39;");
            assert!(page.body.contains(&escaped), "{what}: {}", page.body);
        }
        assert_eq!(finished(&outs), Some(Outcome::Failed(err)), "{what}");
        assert_eq!(f.exchanges_sent(), 1, "{what}");
    }
}

fn cb_error(error: &str, description: Option<&str>) -> CallbackError {
    CallbackError {
        error: error.into(),
        error_description: description.map(Into::into),
        error_uri: None,
    }
}

/// Every error the exchange parser returns, with and without its optional details.
fn exchange_errors() -> Vec<FlowError> {
    use OpenRouterError::*;
    vec![
        ProgramError::InvalidCodeChallengeMethod.into(),
        UserError::InvalidCode.into(),
        UserError::CodeExpired.into(),
        ProgramError::MethodNotAllowed.into(),
        Conflict {
            message: Some("Failed to create or update app".into()),
        }
        .into(),
        Conflict { message: None }.into(),
        RateLimited {
            retry_after: Some(Duration::from_secs(17)),
        }
        .into(),
        RateLimited { retry_after: None }.into(),
        Server { status: 502 }.into(),
        MissingKey {
            reason: "no `key` in the answer".into(),
        }
        .into(),
        Unexpected {
            status: 418,
            excerpt: Some("I'm a teapot".into()),
        }
        .into(),
        Unexpected {
            status: 400,
            excerpt: None,
        }
        .into(),
    ]
}

/// Every `FlowError`. The enums are `#[non_exhaustive]`, so no `match` here can insist on a
/// new variant; instead every kind in [`FlowError::KINDS`] (which the core's own test keeps
/// complete) must be listed.
fn flow_errors() -> Vec<FlowError> {
    let mut all: Vec<FlowError> = vec![
        FlowError::denied(cb_error("access_denied", None)),
        FlowError::denied(cb_error("access_denied", Some("The user denied access"))),
        FlowError::denied(cb_error("server_error", Some("try\nlater"))),
        UserError::CallbackTimedOut {
            waited: Duration::from_secs(600),
        }
        .into(),
        UserError::Cancelled {
            may_have_been_sent: false,
        }
        .into(),
        UserError::Cancelled {
            may_have_been_sent: true,
        }
        .into(),
        UserError::PastesClosed.into(),
        NetworkError::ExchangeTimedOut {
            waited: Duration::from_secs(30),
            may_have_been_sent: false,
        }
        .into(),
        NetworkError::ExchangeTimedOut {
            waited: Duration::from_secs(30),
            may_have_been_sent: true,
        }
        .into(),
        NetworkError::Unreachable {
            reason: "dns error: no such host".into(),
            may_have_been_sent: false,
        }
        .into(),
        NetworkError::Unreachable {
            reason: "connection reset".into(),
            may_have_been_sent: true,
        }
        .into(),
    ];
    all.extend(exchange_errors());
    for kind in FlowError::KINDS {
        assert!(
            all.iter().any(|e| e.kind() == *kind),
            "list a FlowError of kind {kind} here"
        );
    }
    all
}

fn key_check_errors() -> Vec<KeyCheckError> {
    use KeyCheckError::*;
    let all = vec![
        KeyNotValid,
        RateLimited,
        Server { status: 503 },
        BadBody,
        Unexpected {
            status: 418,
            excerpt: Some("teapot".into()),
        },
        Unexpected {
            status: 404,
            excerpt: None,
        },
    ];
    for e in &all {
        match e {
            KeyNotValid | RateLimited | Server { .. } | BadBody | Unexpected { .. } => {}
            other => panic!("a new variant: add it to this list: {other:?}"),
        }
    }
    all
}

fn verifier_errors() -> Vec<VerifierError> {
    let all = vec![VerifierError::Length(42), VerifierError::Character(10)];
    for e in &all {
        match e {
            VerifierError::Length(_) | VerifierError::Character(_) => {}
            other => panic!("a new variant: add it to this list: {other:?}"),
        }
    }
    all
}

fn key_label_errors() -> Vec<KeyLabelError> {
    let all = vec![
        KeyLabelError::Empty,
        KeyLabelError::TooLong(101),
        KeyLabelError::ControlCharacter,
    ];
    for e in &all {
        match e {
            KeyLabelError::Empty | KeyLabelError::TooLong(_) | KeyLabelError::ControlCharacter => {}
            other => panic!("a new variant: add it to this list: {other:?}"),
        }
    }
    all
}

fn malformed() -> Vec<Malformed> {
    let all = vec![
        Malformed::TooLong,
        Malformed::BadPercentEncoding,
        Malformed::NotUtf8,
        Malformed::DuplicateParameter("code"),
        Malformed::BadCode,
    ];
    for e in &all {
        match e {
            Malformed::TooLong
            | Malformed::BadPercentEncoding
            | Malformed::NotUtf8
            | Malformed::DuplicateParameter(_)
            | Malformed::BadCode => {}
            other => panic!("a new variant: add it to this list: {other:?}"),
        }
    }
    all
}

/// What the user reads when a paste is rejected, driven through a real flow.
fn paste_rejections() -> Vec<(String, String)> {
    let mut f = Flow::new(
        {
            let mut c = FlowConfig::default();
            c.headless = true;
            c
        },
        &mut rng(1),
        t(0),
    )
    .unwrap();
    drain(&mut f);
    let nonce = f.nonce().expose_secret().to_string();
    let cases = [
        ("empty".to_string(), String::new()),
        ("spaces only".into(), "   ".into()),
        ("two words".into(), "abc def".into()),
        ("too long".into(), "a".repeat(3000)),
        ("bad URL".into(), "http://[oops".into()),
        (
            "other sign-in's URL".into(),
            format!("http://localhost:{PORT}/callback/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA?code=c"),
        ),
        (
            "state mismatch".into(),
            format!("http://localhost:{PORT}/callback/{nonce}?state=x&code=c"),
        ),
        (
            "no code".into(),
            format!("http://localhost:{PORT}/callback/{nonce}"),
        ),
        (
            "malformed".into(),
            format!("http://localhost:{PORT}/callback/{nonce}?code=%ff"),
        ),
    ];
    cases
        .into_iter()
        .map(|(what, text)| {
            let _ = f.handle_input(Input::Pasted(text.into()), t(1));
            let outs = drain(&mut f);
            assert_eq!(f.phase(), Phase::AwaitingCallback, "{what}");
            let [Output::PasteRejected { reason }] = outs.as_slice() else {
                panic!("{what}: {outs:?}")
            };
            (what, reason.clone())
        })
        .collect()
}

#[test]
fn user_facing_messages() {
    let mut s = String::new();
    let mut section = |name: &str, lines: Vec<String>| {
        s.push_str(&format!("## {name}\n"));
        for l in lines {
            assert!(!l.is_empty());
            s.push_str(&format!("- {l}\n"));
        }
        s.push('\n');
    };
    section(
        "FlowError (kind, party: message)",
        flow_errors()
            .iter()
            .map(|e| format!("{} ({:?}): {e}", e.kind(), e.party()))
            .collect(),
    );
    section(
        "Exchange answers (parse_exchange_response)",
        exchange_errors().iter().map(|e| e.to_string()).collect(),
    );
    section(
        "KeyCheckError",
        key_check_errors().iter().map(|e| e.to_string()).collect(),
    );
    section(
        "VerifierError",
        verifier_errors().iter().map(|e| e.to_string()).collect(),
    );
    section(
        "KeyLabelError",
        key_label_errors().iter().map(|e| e.to_string()).collect(),
    );
    section(
        "Malformed callback (shown as `Unusable sign-in link: …`)",
        malformed().iter().map(|e| e.to_string()).collect(),
    );
    section(
        "PasteRejected",
        paste_rejections()
            .into_iter()
            .map(|(what, reason)| format!("{what}: {reason}"))
            .collect(),
    );
    insta::assert_snapshot!("user_facing_messages", s);
}
