//! An embedder's display name reaches what the user sees: the browser's result page sends
//! them back to the app by name, and the key is labelled after the app in their key list.

#[macro_use]
mod common;

use common::*;
use openrouter_auth::core::AppName;

fn pages_and_key_label_name_the_app(driver: Driver) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let mut login = Running::start(
        driver,
        options(&stand_in, dir.path()).app_name(AppName::new("Acme & Co Agent").unwrap()),
    );
    let auth_url = login.authorization_url();
    let label = auth_url
        .query_pairs()
        .find(|(n, _)| n == "key_label")
        .map(|(_, v)| v.into_owned())
        .expect("a key_label");
    assert!(label.starts_with("Acme & Co Agent"), "{label}");
    let visit = come_back(&login.callback_url(), "the-code");
    let page = &visit.page.body;
    assert!(page.contains("return to Acme &amp; Co Agent"), "{page}");
    assert!(!page.contains("terminal"), "{page}");
    assert_signed_in(login.finish(), &visit, dir.path());
}

both_drivers!(pages_and_key_label_name_the_app);
