//! Every sign-in decision is the library's (issue 14 item 3), so an app embedding `login`
//! behaves as `openrouter-auth login` does: what to do about a key already stored (refuse,
//! ask the caller, replace), headless sign-in from a snapshot of the environment (`BROWSER`
//! keeps the callback path), and the key check after storing, in the outcome.

#[macro_use]
mod common;

use common::*;
use openrouter_auth::{
    EnvSnapshot, ExistingKey, HeadlessReason, LoginError, LoginEvent, ReplacePolicy, StoreSpec,
};
use std::sync::{Arc, Mutex};

const OLD_KEY: &str = "sk-or-v1-0000000000000000000000000000000000000000000000000000000000000old";

/// `dir/credentials.json` holding [`OLD_KEY`]; returns its bytes.
fn with_old_key(dir: &std::path::Path) -> Vec<u8> {
    let bytes = format!("{{\n  \"openrouter\": {{\n    \"api_key\": \"{OLD_KEY}\"\n  }}\n}}\n");
    std::fs::write(credentials(dir), &bytes).unwrap();
    bytes.into_bytes()
}

fn stored(dir: &std::path::Path) -> String {
    let v: serde_json::Value =
        serde_json::from_slice(&std::fs::read(credentials(dir)).unwrap()).unwrap();
    v["openrouter"]["api_key"].as_str().unwrap().to_owned()
}

fn shown_url(login: &mut Running) -> bool {
    login
        .events()
        .iter()
        .any(|e| matches!(e, LoginEvent::AuthorizationUrl { .. }))
}

fn refuse_keeps_the_key_and_mints_nothing(driver: Driver) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let before = with_old_key(dir.path());
    let mut login = Running::start(
        driver,
        options(&stand_in, dir.path()).replace(ReplacePolicy::Refuse),
    );
    match login.finish() {
        Err(e @ LoginError::KeyExists { .. }) => {
            assert_eq!(e.kind(), "key_exists");
            let message = e.to_string();
            assert!(
                message.contains("already holds an OpenRouter key (sk-or-v1-000…0old)"),
                "{message}"
            );
            assert!(!message.contains("--"), "no CLI flag: {message}");
            let LoginError::KeyExists { existing, declined } = e else {
                unreachable!()
            };
            assert!(!declined);
            assert!(existing.store.contains("credentials.json"), "{existing:?}");
            assert!(existing.key_page.is_some());
        }
        other => panic!("expected KeyExists, got {other:?}"),
    }
    assert!(!shown_url(&mut login), "nothing was signed in");
    assert!(stand_in.exchanges().is_empty());
    assert_eq!(std::fs::read(credentials(dir.path())).unwrap(), before);
}

fn ask(answer: bool) -> (ReplacePolicy, Arc<Mutex<Vec<ExistingKey>>>) {
    let asked = Arc::new(Mutex::new(Vec::new()));
    let asked2 = asked.clone();
    let policy = ReplacePolicy::ask(move |existing: &ExistingKey| {
        asked2.lock().unwrap().push(existing.clone());
        answer
    });
    (policy, asked)
}

fn asking_no_keeps_the_key(driver: Driver) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let before = with_old_key(dir.path());
    let (policy, asked) = ask(false);
    let mut login = Running::start(driver, options(&stand_in, dir.path()).replace(policy));
    assert!(matches!(
        login.finish(),
        Err(LoginError::KeyExists { declined: true, .. })
    ));
    let asked = asked.lock().unwrap();
    assert_eq!(asked.len(), 1, "asked once: {asked:?}");
    assert_eq!(asked[0].found.as_deref(), Some("sk-or-v1-000…0old"));
    let page = asked[0].key_page.as_ref().unwrap();
    assert!(page.as_str().starts_with(stand_in.url.as_str()), "{page}");
    assert!(!shown_url(&mut login));
    assert_eq!(std::fs::read(credentials(dir.path())).unwrap(), before);
}

fn asking_yes_replaces_the_key(driver: Driver) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    with_old_key(dir.path());
    let (policy, asked) = ask(true);
    let mut login = Running::start(driver, options(&stand_in, dir.path()).replace(policy));
    let callback_url = login.callback_url();
    come_back(&callback_url, CODE);
    login.finish().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(asked.lock().unwrap().len(), 1);
    assert_eq!(stored(dir.path()), KEY);
    assert!(
        login
            .events()
            .iter()
            .any(|e| matches!(e, LoginEvent::ReplacingKey(k) if k.found.as_deref() == Some("sk-or-v1-000…0old"))),
        "{:?}",
        login.events()
    );
}

fn an_empty_store_asks_nothing(driver: Driver) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let (policy, asked) = ask(false);
    let mut login = Running::start(driver, options(&stand_in, dir.path()).replace(policy));
    let callback_url = login.callback_url();
    come_back(&callback_url, CODE);
    login.finish().unwrap_or_else(|e| panic!("{e}"));
    assert!(asked.lock().unwrap().is_empty());
}

fn ssh_chooses_headless_with_its_reason(driver: Driver) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let mut login = Running::start(
        driver,
        options(&stand_in, dir.path()).detect_headless(EnvSnapshot::with_vars(
            "linux",
            &[("SSH_CONNECTION", "203.0.113.7 50022 192.0.2.1 22")],
        )),
    );
    let headless = login.wait_for("the authorization URL", |e| match e {
        LoginEvent::AuthorizationUrl {
            headless,
            callback_url,
            ..
        } => Some((*headless, callback_url.clone())),
        _ => None,
    });
    assert_eq!(headless, (true, None), "headless: no callback_url");
    let events = login.events();
    assert!(
        events.contains(&LoginEvent::HeadlessChosen {
            reason: HeadlessReason::Ssh {
                variable: "SSH_CONNECTION"
            }
        }),
        "{events:?}"
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, LoginEvent::Listening { .. })),
        "no listener: {events:?}"
    );
    login.cancel.paste(CODE);
    let done = login.finish().unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(done.key.expose_secret(), KEY);
}

fn a_browser_helper_keeps_the_callback_over_ssh(driver: Driver) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let mut login = Running::start(
        driver,
        // VS Code Remote: an SSH session whose BROWSER forwards to the user's machine.
        options(&stand_in, dir.path()).detect_headless(EnvSnapshot::with_vars(
            "linux",
            &[
                ("SSH_CONNECTION", "203.0.113.7 50022 192.0.2.1 22"),
                ("BROWSER", "/home/u/.vscode-server/bin/helpers/browser.sh"),
            ],
        )),
    );
    let callback_url = login.callback_url();
    come_back(&callback_url, CODE);
    login.finish().unwrap_or_else(|e| panic!("{e}"));
    assert!(!login
        .events()
        .iter()
        .any(|e| matches!(e, LoginEvent::HeadlessChosen { .. })));
}

fn the_new_key_is_checked_after_storing(driver: Driver) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let mut login = Running::start(driver, options(&stand_in, dir.path()));
    let callback_url = login.callback_url();
    come_back(&callback_url, CODE);
    let done = login.finish().unwrap_or_else(|e| panic!("{e}"));
    let info = done
        .key_check
        .expect("checked by default")
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(info.label.as_deref(), Some(KEY_LABEL_SEEN));
    assert_eq!(info.usage, Some(0.25));

    let dir = tempdir();
    let mut login = Running::start(
        driver,
        options(&stand_in, dir.path())
            .check_key(false)
            .store(StoreSpec::File(Some(credentials(dir.path())))),
    );
    let callback_url = login.callback_url();
    come_back(&callback_url, CODE);
    assert!(login.finish().unwrap().key_check.is_none());
}

both_drivers!(
    refuse_keeps_the_key_and_mints_nothing,
    asking_no_keeps_the_key,
    asking_yes_replaces_the_key,
    an_empty_store_asks_nothing,
    ssh_chooses_headless_with_its_reason,
    a_browser_helper_keeps_the_callback_over_ssh,
    the_new_key_is_checked_after_storing,
);
