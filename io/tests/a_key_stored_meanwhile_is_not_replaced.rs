//! A sign-in that finds, when it stores its key, another OpenRouter key that appeared after it
//! began (a second `openrouter-auth login` that finished first) does not replace it silently:
//! without `--force` it ends with exit 6, hands its own key over and says what it found
//! (issue 12, rule 3). The same with two `openrouter-auth login` processes:
//! tests/tests/login_keeps_a_key_stored_meanwhile.rs.

#[macro_use]
mod common;

use common::*;
use openrouter_auth::{LoginError, ReplacePolicy};

const OTHER_KEY: &str = "sk-or-v1-0000000000000000000000000000000000000000000000000000000000000abc";

fn other_stand_in() -> StandIn {
    StandIn::answering(
        200,
        serde_json::json!({"key": OTHER_KEY, "user_id": "user_2"}),
    )
}

fn stored(dir: &std::path::Path) -> String {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(credentials(dir)).unwrap()).unwrap();
    v["openrouter"]["api_key"].as_str().unwrap().to_owned()
}

fn two_logins_that_began_on_an_empty_store(driver: Driver) {
    let (first_stand_in, second_stand_in) = (StandIn::new(), other_stand_in());
    let dir = tempdir();
    let mut first = Running::start(driver, options(&first_stand_in, dir.path()));
    let mut second = Running::start(driver, options(&second_stand_in, dir.path()));
    let (first_cb, second_cb) = (first.callback_url(), second.callback_url());
    come_back(&second_cb, CODE);
    second.finish().unwrap_or_else(|e| panic!("{e}"));
    let page = come_back(&first_cb, CODE).page;
    match first.finish() {
        Err(LoginError::KeyNotStored { key, reason, .. }) => {
            assert_eq!(key.expose_secret(), KEY, "its own key is handed out");
            assert!(
                reason.contains("now holds another OpenRouter key"),
                "{reason}"
            );
            assert!(
                reason.contains("sk-or-v1-000"),
                "names the key found: {reason}"
            );
            assert!(
                !reason.contains(OTHER_KEY) && !reason.contains(KEY),
                "{reason}"
            );
        }
        other => panic!("expected KeyNotStored, got {other:?}"),
    }
    assert!(
        page.body.contains("the key was not stored"),
        "the browser must not claim success: {}",
        page.body
    );
    assert_eq!(
        stored(dir.path()),
        OTHER_KEY,
        "the key stored first is kept"
    );
}

fn with_force_the_key_that_appeared_is_replaced(driver: Driver) {
    let (first_stand_in, second_stand_in) = (StandIn::new(), other_stand_in());
    let dir = tempdir();
    let mut first = Running::start(
        driver,
        options(&first_stand_in, dir.path()).replace(ReplacePolicy::Force),
    );
    let mut second = Running::start(driver, options(&second_stand_in, dir.path()));
    let (first_cb, second_cb) = (first.callback_url(), second.callback_url());
    come_back(&second_cb, CODE);
    second.finish().unwrap_or_else(|e| panic!("{e}"));
    come_back(&first_cb, CODE);
    first.finish().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(stored(dir.path()), KEY);
}

both_drivers!(
    two_logins_that_began_on_an_empty_store,
    with_force_the_key_that_appeared_is_replaced,
);
