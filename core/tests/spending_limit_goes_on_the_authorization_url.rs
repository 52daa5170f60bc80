//! A spending limit (US dollars) reaches OpenRouter as the authorization URL's `limit`, in
//! both modes; a limit that is not a positive finite number is refused before anything
//! starts.
mod common;
use common::*;
use openrouter_auth_core::*;

fn with_limit(limit: Option<f64>, headless: bool) -> FlowConfig {
    let mut c = FlowConfig::default();
    c.limit = limit;
    c.headless = headless;
    c
}

fn limit_param(url: &url::Url) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == "limit")
        .map(|(_, v)| v.into_owned())
}

#[test]
fn the_limit_is_sent_as_openrouters_limit_parameter() {
    let f = bound_flow(1, with_limit(Some(2.5), false));
    assert_eq!(
        limit_param(f.authorization_url().unwrap()).as_deref(),
        Some("2.5")
    );

    let f: Flow = Flow::new(with_limit(Some(5.0), true), &mut rng(1), t(0)).unwrap();
    assert_eq!(
        limit_param(f.authorization_url().unwrap()).as_deref(),
        Some("5")
    );

    let f = bound_flow(1, with_limit(None, false));
    assert_eq!(limit_param(f.authorization_url().unwrap()), None);
}

#[test]
fn a_limit_that_is_not_a_positive_number_is_refused() {
    for bad in [0.0, -1.0, f64::NAN, f64::INFINITY, -0.0] {
        let err =
            Flow::<()>::new(with_limit(Some(bad), false), &mut rng(1), t(0)).expect_err("refused");
        assert!(
            matches!(err, ConfigError::InvalidLimit { .. }),
            "{bad}: {err:?}"
        );
        let message = err.to_string();
        assert!(
            message.contains("positive number of US dollars"),
            "{message}"
        );
        assert!(
            !message.contains("--"),
            "no CLI flag in a library error: {message}"
        );
    }
}
