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

/// Forwards to the default client and notes each request's method, path and `User-Agent`.
#[derive(Debug)]
struct Recording {
    inner: reqwest::blocking::Client,
    seen: std::sync::Mutex<Vec<(String, String, String)>>,
}

impl openrouter_auth::Transport for Recording {
    fn send(
        &self,
        req: &openrouter_auth::core::HttpRequest,
        timeout: std::time::Duration,
    ) -> Result<openrouter_auth::core::HttpResponse, openrouter_auth::TransportError> {
        self.seen.lock().unwrap().push((
            req.method.as_str().to_owned(),
            req.url.path().to_owned(),
            req.header("user-agent").unwrap_or("").to_owned(),
        ));
        self.inner.send(req, timeout)
    }
}

/// Every request the login sends (the reachability probe, the code exchange, the key check)
/// leads its `User-Agent` with the app's product token.
fn every_request_carries_the_apps_product_token(driver: Driver) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    // A blocking client is made and dropped off the tokio driver's runtime threads.
    let url = stand_in.url.clone();
    let recording = std::thread::spawn(move || {
        std::sync::Arc::new(Recording {
            inner: openrouter_auth::blocking_client(&url).unwrap(),
            seen: Default::default(),
        })
    })
    .join()
    .unwrap();
    let token = openrouter_auth::core::ProductToken::new("acme-agent/1.4.2").unwrap();
    let mut login = Running::start(
        driver,
        options(&stand_in, dir.path())
            .app_name(AppName::new("Acme Agent").unwrap())
            .product_token(token)
            .transport(recording.clone()),
    );
    // The probe went out beside the URL: wait until it is seen before signing in.
    let started = std::time::Instant::now();
    while recording.seen.lock().unwrap().is_empty() {
        assert!(started.elapsed() < PATIENCE, "no reachability probe");
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let visit = come_back(&login.callback_url(), "the-code");
    assert_signed_in(login.finish(), &visit, dir.path());
    let seen = recording.seen.lock().unwrap().clone();
    std::thread::spawn(move || drop(recording)).join().unwrap();
    let paths: Vec<_> = seen.iter().map(|(m, p, _)| format!("{m} {p}")).collect();
    assert_eq!(
        paths,
        [
            "GET /api/v1/key",
            "POST /api/v1/auth/keys",
            "GET /api/v1/key"
        ],
        "probe, exchange, key check"
    );
    for (method, path, ua) in &seen {
        assert!(
            ua.starts_with("acme-agent/1.4.2 openrouter-auth/"),
            "{method} {path}: {ua:?}"
        );
    }
}

both_drivers!(every_request_carries_the_apps_product_token);
