//! A key the user already has (issue 15 item 3, library side) is checked with OpenRouter
//! (`GET /api/v1/key`) and refused, with the reason, when it does not check out; one that does
//! is stored like a new one: every destination, the same replace policy.

mod common;

use common::*;
use openrouter_auth::core::ApiKey;
use openrouter_auth::{store_existing_key, LoginError, LoginEvent, ReplacePolicy, StoreSpec};

/// A key the stand-in does not know: its check answers 401.
const UNKNOWN_KEY: &str =
    "sk-or-v1-1111111111111111111111111111111111111111111111111111111111111111";

fn stored(path: &std::path::Path) -> Option<String> {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(path).ok()?).unwrap();
    v["openrouter"]["api_key"].as_str().map(str::to_owned)
}

#[test]
fn a_valid_key_goes_to_every_store() {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let other = dir.path().join("other.json");
    let options = options(&stand_in, dir.path()).also_store(StoreSpec::File(Some(other.clone())));
    let mut events = Vec::new();
    let done = store_existing_key(&options, ApiKey::new(KEY), &mut |e: LoginEvent| {
        events.push(e)
    })
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stored(&credentials(dir.path())).as_deref(), Some(KEY));
    assert_eq!(stored(&other).as_deref(), Some(KEY));
    assert_eq!(done.stored.len(), 2);
    let info = done.key_check.unwrap().unwrap();
    assert_eq!(info.label.as_deref(), Some(KEY_LABEL_SEEN));
    assert!(stand_in.exchanges().is_empty(), "no sign-in, no exchange");
    assert!(events.is_empty(), "{events:?}");
}

#[test]
fn a_key_that_does_not_check_out_is_refused_and_nothing_is_written() {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let options = options(&stand_in, dir.path());
    match store_existing_key(&options, ApiKey::new(UNKNOWN_KEY), &mut |_: LoginEvent| {}) {
        Err(e @ LoginError::KeyCheckFailed(_)) => {
            assert_eq!(e.kind(), "key_not_valid");
            let message = e.to_string();
            assert!(message.starts_with("the key was not stored: "), "{message}");
            assert!(!message.contains(UNKNOWN_KEY), "{message}");
        }
        other => panic!("expected KeyCheckFailed, got {other:?}"),
    }
    assert!(std::fs::read_dir(dir.path()).unwrap().next().is_none());
}

#[test]
fn the_replace_policy_applies_but_not_to_the_same_key() {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let old = "sk-or-v1-0000000000000000000000000000000000000000000000000000000000000old";
    let path = credentials(dir.path());
    let holding = |key: &str| {
        std::fs::write(
            &path,
            format!("{{\"openrouter\": {{\"api_key\": \"{key}\"}}}}\n"),
        )
        .unwrap()
    };
    holding(old);
    let options = options(&stand_in, dir.path()).replace(ReplacePolicy::Refuse);
    assert!(matches!(
        store_existing_key(&options, ApiKey::new(KEY), &mut |_: LoginEvent| {}),
        Err(LoginError::KeyExists { .. })
    ));
    assert_eq!(stored(&path).as_deref(), Some(old), "kept");
    // Storing the key a store already holds replaces nothing, so even Refuse goes through.
    holding(KEY);
    store_existing_key(&options, ApiKey::new(KEY), &mut |_: LoginEvent| {})
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stored(&path).as_deref(), Some(KEY));
}
