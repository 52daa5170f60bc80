//! A real headless Chromium signs in through the `openrouter-auth` process: it loads the
//! emulator's consent page, clicks Approve (or Deny), follows the 302 to our loopback callback
//! and the 303 to `/done` (after a code and after a denial alike), and shows the final page.
//! Driven over the DevTools protocol; one more test uses plain `--dump-dom`.
//!
//! Skipped (with a `skipped: chromium not installed` line) when there is no
//! `/usr/bin/chromium` (or `$CHROMIUM`), unless `OPENROUTER_AUTH_REQUIRE_CHROMIUM=1`.
#![cfg(unix)]

use std::path::PathBuf;

use openrouter_auth_sim::emulator::{Emulator, Mode, CONSENT_PAGE_TITLE};
use openrouter_auth_tests::chromium::{self, Chromium};
use openrouter_auth_tests::{emulator, exit, file_mode, link_by_id, stored_key, Browser, Cli};
use url::Url;

/// A `login --json` process in Consent mode, with its store path.
fn start(emulator: &Emulator, tmp: &tempfile::TempDir) -> (Cli, PathBuf, Url, Url) {
    let store = tmp.path().join("c.json");
    let mut cli = Cli::login(
        emulator,
        tmp.path(),
        &format!("file:{}", store.display()),
        &["--json"],
    );
    let (auth, callback) = cli.authorization_url_json();
    (cli, store, auth, callback)
}

/// Loads the authorization URL in Chromium, clicks the consent page's link `#{button}`, and
/// waits until the page's title starts with `title`; returns the page's URL, title and text.
fn click_through(
    bin: &std::path::Path,
    auth: &Url,
    button: &str,
    title: &str,
) -> (Url, String, String) {
    let browser = Chromium::launch(bin);
    let mut tab = browser.first_tab();
    tab.navigate(auth);
    tab.wait_for(
        "the consent page",
        &format!(
            "document.readyState === 'complete' && document.getElementById('{button}') !== null"
        ),
    );
    assert_eq!(tab.title(), CONSENT_PAGE_TITLE);
    tab.eval(&format!(
        "document.getElementById('{button}').click(); true"
    ))
    .expect("click the link");
    tab.wait_for(
        &format!("a page titled {title:?}"),
        &format!(
            "location.port !== '{emulator_port}' && document.readyState === 'complete' \
             && document.title.startsWith('{title}')",
            emulator_port = auth.port().expect("the emulator has a port"),
        ),
    );
    let at = Url::parse(&tab.location()).expect("a page URL");
    (at, tab.title(), tab.text())
}

#[test]
fn chromium_approves_and_the_key_is_stored() {
    let Some(bin) = chromium::require("chromium_approves_and_the_key_is_stored") else {
        return;
    };
    let _one_at_a_time = chromium::exclusive();
    let emulator = emulator(Mode::Consent);
    let tmp = tempfile::tempdir().unwrap();
    let (cli, store, auth, callback) = start(&emulator, &tmp);

    let (done, title, text) = click_through(&bin, &auth, "approve", "Signed in to OpenRouter");
    assert_eq!(done.host_str(), Some("localhost"));
    assert_eq!(done.port(), callback.port());
    assert_eq!(done.path(), format!("{}/done", callback.path()));
    assert_eq!(
        done.query(),
        None,
        "the code is not left in the address bar"
    );
    assert!(title.starts_with("Signed in to OpenRouter"), "{title}");
    assert!(text.contains("Signed in to OpenRouter"), "{text}");

    let f = cli.finish();
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    let issued = emulator.issued_keys();
    assert_eq!(issued.len(), 1);
    assert_eq!(stored_key(&store), issued[0].key);
    assert_eq!(file_mode(&store), 0o600);
    assert!(text.contains(&store.display().to_string()), "{text}");
}

#[test]
fn chromium_denies_and_the_cli_exits_3() {
    let Some(bin) = chromium::require("chromium_denies_and_the_cli_exits_3") else {
        return;
    };
    let _one_at_a_time = chromium::exclusive();
    let emulator = emulator(Mode::Consent);
    let tmp = tempfile::tempdir().unwrap();
    let (cli, store, auth, callback) = start(&emulator, &tmp);

    let (done, title, text) = click_through(&bin, &auth, "deny", "Sign-in cancelled");
    // Like a code, the error is answered with a 303 to the clean /done URL: Chromium ends
    // there, with nothing of the error left in the address bar.
    assert_eq!(done.host_str(), Some("localhost"));
    assert_eq!(done.port(), callback.port());
    assert_eq!(done.path(), format!("{}/done", callback.path()));
    assert_eq!(
        done.query(),
        None,
        "the error is not left in the address bar"
    );
    assert!(title.starts_with("Sign-in cancelled"), "{title}");
    assert!(text.contains("Sign-in cancelled"), "{text}");
    // Said once, to the person who declined: not OpenRouter's "The user denied access" too.
    assert!(text.contains("You declined access"), "{text}");
    assert!(!text.contains("The user denied access"), "{text}");
    assert!(text.contains("start a new sign-in"), "{text}");

    let f = cli.finish();
    assert_eq!(f.code, Some(exit::DENIED), "{f:#?}");
    assert_eq!(f.event("failed")["error"]["kind"], "denied");
    assert!(emulator.issued_keys().is_empty());
    assert!(!store.exists());
}

#[test]
fn chromium_dump_dom_follows_approve_to_the_signed_in_page() {
    let Some(bin) = chromium::require("chromium_dump_dom_follows_approve_to_the_signed_in_page")
    else {
        return;
    };
    let _one_at_a_time = chromium::exclusive();
    let emulator = emulator(Mode::Consent);
    let tmp = tempfile::tempdir().unwrap();
    let (cli, store, auth, _) = start(&emulator, &tmp);

    // The request id is minted when /auth is loaded: load it here, then let Chromium take
    // the Approve link through the 302 to our callback and the 303 to /done.
    let consent = Browser::new().get(&auth);
    let approve = link_by_id(&consent, "approve");
    let out = chromium::dump_dom(&bin, &approve);
    assert!(
        out.stdout.contains("Signed in to OpenRouter"),
        "final DOM:\n{}\nchromium stderr:\n{}",
        out.stdout,
        out.stderr
    );

    let f = cli.finish();
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    let issued = emulator.issued_keys();
    assert_eq!(issued.len(), 1);
    assert_eq!(stored_key(&store), issued[0].key);
    assert_eq!(file_mode(&store), 0o600);
}
