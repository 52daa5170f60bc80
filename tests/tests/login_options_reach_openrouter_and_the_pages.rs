//! An embedder's options reach what people see, end to end against the emulator: the app's
//! name on the result page and in the key's label, a spending limit on the key, and a link
//! from the result page to the key's own page, where it can be revoked.

use openrouter_auth::core::AppName;
use openrouter_auth::{CancelHandle, LoginEvent, LoginOptions, StoreEnv, StoreSpec};
use openrouter_auth_sim::emulator::{key_hash, Emulator, KEY_PAGE_TITLE};
use openrouter_auth_tests::Browser;
use std::sync::mpsc;
use std::time::Duration;

#[test]
fn app_name_limit_and_key_page_link_reach_openrouter_and_the_page() {
    let emulator = Emulator::start_blocking();
    let dir = tempfile::tempdir().unwrap();
    let opts = LoginOptions::default()
        .base_url(emulator.base_url())
        .open_browser(false)
        .app_name(AppName::new("Acme Editor").unwrap())
        .limit(2.5)
        .store(StoreSpec::File(Some(dir.path().join("credentials.json"))))
        .store_env(
            StoreEnv::default()
                .home(dir.path())
                .xdg_data_home(dir.path().join("xdg"))
                .config_dir(dir.path().join("config")),
        )
        .timeout(Duration::from_secs(60));
    let (tx, rx) = mpsc::channel();
    let browser = std::thread::spawn(move || {
        let url = loop {
            match rx.recv_timeout(Duration::from_secs(30)).unwrap() {
                LoginEvent::AuthorizationUrl { url, .. } => break url,
                _ => continue,
            }
        };
        Browser::new().follow(&url)
    });
    let mut observer = move |e: LoginEvent| {
        let _ = tx.send(e);
    };
    let done = openrouter_auth::login(&opts, &mut observer, &CancelHandle::new())
        .unwrap_or_else(|e| panic!("login failed: {e}"));
    let pages = browser.join().unwrap();

    let issued = emulator.issued_keys();
    assert_eq!(issued.len(), 1);
    assert_eq!(done.key.expose_secret(), issued[0].key);
    assert_eq!(
        issued[0].limit,
        Some(2.5),
        "the spending limit reached OpenRouter"
    );
    assert!(
        issued[0].label.starts_with("Acme Editor on "),
        "the default key label names the app: {}",
        issued[0].label
    );

    let last = pages.last().unwrap();
    assert_eq!(last.heading(), "Signed in to OpenRouter");
    assert!(
        last.body.contains("return to Acme Editor."),
        "{}",
        last.body
    );
    assert!(last.body.contains(&issued[0].label), "{}", last.body);
    // The link on the page leads to the key's page, which shows the key and its limit.
    let key_page = emulator
        .base_url()
        .join(&format!("keys/{}", key_hash(&issued[0].key)))
        .unwrap();
    assert!(
        last.body.contains(&format!("href=\"{key_page}\"")),
        "{}",
        last.body
    );
    let shown = Browser::new().get(&key_page);
    assert_eq!(shown.status, 200);
    assert!(shown.body.contains(KEY_PAGE_TITLE), "{}", shown.body);
    assert!(shown.body.contains("$2.50"), "{}", shown.body);
}
