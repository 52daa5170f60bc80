//! Regression, found by the `key_info` fuzz target once the simulator's OpenRouter model
//! produced a realistic seed: a key check answered by a proxy (or a debugging server) that
//! echoes our request carried `Authorization: Bearer <key>` into
//! `KeyCheckError::Unexpected`'s excerpt, so the key ended up in the error message the CLI
//! prints and logs (PROTOCOL.md section 7: keys never reach logs). The exchange's errors were
//! already redacted; the key check's were not.
use openrouter_auth_core::{parse_key_info, HttpResponse, KeyCheckError};
use openrouter_auth_oracle::{contains_key_like, encode_response, key_info};

const KEY: &str = "sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

#[test]
fn key_check_errors_do_not_echo_the_key() {
    let html = format!(
        "<html><pre>400 Bad Request\nGET /api/v1/key HTTP/1.1\nAuthorization: Bearer {KEY}\n</pre></html>"
    );
    let json = format!(r#"{{"error":{{"code":400,"message":"bad header: Bearer {KEY}"}}}}"#);
    let cut = format!("{}Bearer {KEY}", "x".repeat(180));
    for (status, body) in [(400, html), (400, json), (418, cut)] {
        let e = parse_key_info(&HttpResponse::new(status, body.clone())).unwrap_err();
        assert!(matches!(e, KeyCheckError::Unexpected { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(!msg.contains(&KEY[..16]), "the key leaked: {msg}");
        assert!(
            !contains_key_like(&msg),
            "a key-shaped string leaked: {msg}"
        );
        // The fuzz target's body holds the same rule.
        key_info(&encode_response(status, None, body.as_bytes()));
    }
}
