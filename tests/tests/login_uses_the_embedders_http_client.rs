//! Issue 14, point 4: an embedder passes its own HTTP client (its own `User-Agent`, its own
//! routing) through `LoginOptions::transport` / `async_transport`, and the login's code
//! exchange goes through it and nothing else.
//!
//! The login's `base_url` is `https://openrouter.invalid/`, a name that never resolves: only a
//! client that routes the request to the emulator itself can finish the sign-in. The test's
//! transports do that, set their own `User-Agent`, and count what they sent: the code exchange
//! and the key check after storing.

use openrouter_auth::core::{HttpRequest, HttpResponse};
use openrouter_auth::SendFuture;
use openrouter_auth::{
    AsyncTransport, CancelHandle, LoginEvent, LoginOptions, StoreEnv, StoreSpec, Transport,
    TransportError,
};
use openrouter_auth_sim::emulator::Emulator;
use openrouter_auth_tests::{stored_key, Browser};
use std::path::Path;
use std::sync::{mpsc, Arc, Mutex};
use std::time::Duration;
use url::Url;

const APP_AGENT: &str = "acme-editor/7.1 (embedding openrouter-auth)";

/// What the embedder's client sent: (method, path, User-Agent).
type Log = Arc<Mutex<Vec<(String, String, String)>>>;

/// `url` with the emulator's scheme, host and port.
fn to_emulator(url: &Url, emulator: &Url) -> Url {
    let mut u = url.clone();
    u.set_scheme(emulator.scheme()).unwrap();
    u.set_host(emulator.host_str()).unwrap();
    u.set_port(emulator.port()).unwrap();
    u
}

/// The request as the embedder's client sends it: to the emulator, with its own User-Agent.
fn rewrite(req: &HttpRequest, emulator: &Url, log: &Log) -> (Url, Vec<(String, String)>) {
    let url = to_emulator(&req.url, emulator);
    let mut headers: Vec<(String, String)> = req
        .headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("user-agent"))
        .map(|(n, v)| (n.clone(), v.as_str().to_owned()))
        .collect();
    headers.push(("User-Agent".into(), APP_AGENT.into()));
    log.lock().unwrap().push((
        req.method.as_str().to_owned(),
        req.url.path().to_owned(),
        APP_AGENT.to_owned(),
    ));
    (url, headers)
}

#[derive(Debug)]
struct BlockingApp {
    client: reqwest::blocking::Client,
    emulator: Url,
    log: Log,
}

impl Transport for BlockingApp {
    fn send(&self, req: &HttpRequest, timeout: Duration) -> Result<HttpResponse, TransportError> {
        let (url, headers) = rewrite(req, &self.emulator, &self.log);
        let mut b = self
            .client
            .request(req.method.as_str().parse().unwrap(), url)
            .timeout(timeout)
            .body(req.body.to_vec());
        for (n, v) in headers {
            b = b.header(n, v);
        }
        let resp = b
            .send()
            .map_err(|e| TransportError::maybe_sent(e.to_string()))?;
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .map_err(|e| TransportError::maybe_sent(e.to_string()))?;
        Ok(HttpResponse::new(status, body.to_vec()))
    }
}

#[derive(Debug)]
struct AsyncApp {
    client: reqwest::Client,
    emulator: Url,
    log: Log,
}

impl AsyncTransport for AsyncApp {
    fn send<'a>(&'a self, req: &'a HttpRequest, timeout: Duration) -> SendFuture<'a> {
        Box::pin(async move {
            let (url, headers) = rewrite(req, &self.emulator, &self.log);
            let mut b = self
                .client
                .request(req.method.as_str().parse().unwrap(), url)
                .timeout(timeout)
                .body(req.body.to_vec());
            for (n, v) in headers {
                b = b.header(n, v);
            }
            let resp = b
                .send()
                .await
                .map_err(|e| TransportError::maybe_sent(e.to_string()))?;
            let status = resp.status().as_u16();
            let body = resp
                .bytes()
                .await
                .map_err(|e| TransportError::maybe_sent(e.to_string()))?;
            Ok(HttpResponse::new(status, body.to_vec()))
        })
    }
}

fn options(dir: &Path) -> LoginOptions {
    LoginOptions::default()
        .base_url("https://openrouter.invalid/".parse().unwrap())
        .open_browser(false)
        .store(StoreSpec::File(Some(dir.join("credentials.json"))))
        .store_env(
            StoreEnv::default()
                .home(dir.to_path_buf())
                .xdg_data_home(dir.join("xdg"))
                .config_dir(dir.join("config")),
        )
        .timeout(Duration::from_secs(60))
}

/// Plays the browser: waits for the authorization URL, sends it to the emulator (the login
/// names `openrouter.invalid`), follows the redirects back to the login's callback.
fn browse(events: mpsc::Receiver<LoginEvent>, emulator: Url) {
    let url = loop {
        match events.recv_timeout(Duration::from_secs(30)).unwrap() {
            LoginEvent::AuthorizationUrl { url, .. } => break url,
            _ => continue,
        }
    };
    assert_eq!(url.host_str(), Some("openrouter.invalid"));
    let pages = Browser::new().follow(&to_emulator(&url, &emulator));
    assert!(
        pages.iter().any(|p| p.body.contains("Signed in")),
        "{pages:#?}"
    );
}

fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .unwrap()
}

#[test]
fn login_sends_the_code_exchange_through_the_embedders_blocking_client() {
    let emulator = Emulator::start_blocking();
    let dir = tempfile::tempdir().unwrap();
    let log = Log::default();
    let mut opts = options(dir.path());
    opts.transport = Some(Arc::new(BlockingApp {
        client: client(),
        emulator: emulator.base_url(),
        log: log.clone(),
    }));
    let (tx, rx) = mpsc::channel();
    let base = emulator.base_url();
    let browser = std::thread::spawn(move || browse(rx, base));
    let mut observer = move |e: LoginEvent| {
        let _ = tx.send(e);
    };
    let done = openrouter_auth::login(&opts, &mut observer, &CancelHandle::new())
        .unwrap_or_else(|e| panic!("login failed: {e}"));
    browser.join().unwrap();
    let issued = emulator.issued_keys();
    assert_eq!(issued.len(), 1);
    assert_eq!(done.key.expose_secret(), issued[0].key);
    assert_eq!(
        stored_key(&dir.path().join("credentials.json")),
        issued[0].key
    );
    // The reachability probe beside the URL (`GET /api/v1/key` without credentials, whenever
    // it lands), the code exchange, then the key check after storing: all through the app's
    // client.
    let mut seen = log.lock().unwrap().clone();
    seen.sort();
    let request =
        |method: &str, path: &str| (method.to_owned(), path.to_owned(), APP_AGENT.to_owned());
    assert_eq!(
        seen,
        [
            request("GET", "/api/v1/key"),
            request("GET", "/api/v1/key"),
            request("POST", "/api/v1/auth/keys"),
        ]
    );
    assert!(
        matches!(done.key_check, Some(Ok(_))),
        "{:?}",
        done.key_check
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_async_sends_the_code_exchange_through_the_embedders_async_client() {
    let emulator = Emulator::start_blocking();
    let dir = tempfile::tempdir().unwrap();
    let log = Log::default();
    let mut opts = options(dir.path());
    opts.async_transport = Some(Arc::new(AsyncApp {
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .unwrap(),
        emulator: emulator.base_url(),
        log: log.clone(),
    }));
    let (tx, rx) = mpsc::channel();
    let base = emulator.base_url();
    let browser = std::thread::spawn(move || browse(rx, base));
    let observer = Box::new(move |e: LoginEvent| {
        let _ = tx.send(e);
    });
    let done = openrouter_auth::login_async(opts, observer, CancelHandle::new())
        .await
        .unwrap_or_else(|e| panic!("login_async failed: {e}"));
    tokio::task::spawn_blocking(move || browser.join().unwrap())
        .await
        .unwrap();
    let issued = emulator.issued_keys();
    assert_eq!(done.key.expose_secret(), issued[0].key);
    // The probe, the exchange and the key check (the probe may land before or after the
    // exchange).
    let mut paths: Vec<String> = log.lock().unwrap().iter().map(|r| r.1.clone()).collect();
    paths.sort();
    assert_eq!(paths, ["/api/v1/auth/keys", "/api/v1/key", "/api/v1/key"]);
    assert!(
        matches!(done.key_check, Some(Ok(_))),
        "{:?}",
        done.key_check
    );
}

#[test]
fn without_it_the_same_login_cannot_reach_openrouter_invalid() {
    // The control: the default client is used, and `openrouter.invalid` does not resolve.
    let emulator = Emulator::start_blocking();
    let dir = tempfile::tempdir().unwrap();
    let opts = options(dir.path());
    let (tx, rx) = mpsc::channel();
    let base = emulator.base_url();
    let browser = std::thread::spawn(move || {
        let url = loop {
            if let LoginEvent::AuthorizationUrl { url, .. } =
                rx.recv_timeout(Duration::from_secs(30)).unwrap()
            {
                break url;
            }
        };
        Browser::new().follow(&to_emulator(&url, &base));
    });
    let mut observer = move |e: LoginEvent| {
        let _ = tx.send(e);
    };
    let err = openrouter_auth::login(&opts, &mut observer, &CancelHandle::new()).unwrap_err();
    browser.join().unwrap();
    assert!(
        err.to_string().contains("connect") || err.to_string().contains("dns"),
        "{err}"
    );
    assert!(emulator.issued_keys().is_empty());
}
