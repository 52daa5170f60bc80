//! Shared pieces of the real-socket tests of the library: a wiremock stand-in for OpenRouter's
//! exchange endpoint, a raw-socket "browser", and a way to run `login` with either driver.
//! (The `openrouter-auth` command as a process is tested in tests/, on the harness in
//! tests/src/lib.rs.)
#![allow(dead_code, unused_macros)] // each test file uses a different part of this module

use openrouter_auth::{
    CancelHandle, LoginError, LoginEvent, LoginOptions, LoginOutcome, StoreEnv, StoreSpec,
};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The key the stand-in hands out: `sk-or-v1-` and 64 lowercase hex digits.
pub const KEY: &str = "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";

/// The label the stand-in's key check reports for [`KEY`].
pub const KEY_LABEL_SEEN: &str = "stand-in key";

/// The authorization code the test browser brings back.
pub const CODE: &str = "code-7Qx2vLmN9pRt4WsY";

/// Long enough for anything that should happen at once on loopback.
pub const PATIENCE: Duration = Duration::from_secs(10);

// ----------------------------------------------------------------------------------------
// The stand-in for OpenRouter
// ----------------------------------------------------------------------------------------

/// One `POST /api/v1/auth/keys` as the stand-in received it.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub code: String,
    pub code_verifier: String,
    pub code_challenge_method: String,
}

struct KeysResponder {
    status: u16,
    body: serde_json::Value,
    delay: Duration,
    seen: Arc<Mutex<Vec<Exchange>>>,
}

impl wiremock::Respond for KeysResponder {
    fn respond(&self, request: &wiremock::Request) -> wiremock::ResponseTemplate {
        let body: serde_json::Value = match serde_json::from_slice(&request.body) {
            Ok(v) => v,
            Err(_) => return wiremock::ResponseTemplate::new(400),
        };
        let field = |name: &str| body.get(name).and_then(|v| v.as_str()).map(str::to_owned);
        let (Some(code), Some(code_verifier), Some(code_challenge_method)) = (
            field("code"),
            field("code_verifier"),
            field("code_challenge_method"),
        ) else {
            return wiremock::ResponseTemplate::new(400).set_body_json(
                serde_json::json!({"error": {"code": 400, "message": "missing field"}}),
            );
        };
        self.seen.lock().unwrap().push(Exchange {
            code,
            code_verifier,
            code_challenge_method,
        });
        wiremock::ResponseTemplate::new(self.status)
            .set_body_json(self.body.clone())
            .set_delay(self.delay)
    }
}

/// A wiremock server answering `POST /api/v1/auth/keys`, on its own thread and runtime so
/// blocking and async tests use it alike.
pub struct StandIn {
    pub url: url::Url,
    seen: Arc<Mutex<Vec<Exchange>>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl StandIn {
    /// Answers every exchange with 200 and [`KEY`].
    pub fn new() -> Self {
        Self::answering(200, serde_json::json!({"key": KEY, "user_id": "user_1"}))
    }

    /// Answers every well-formed exchange with `status` and `body`.
    pub fn answering(status: u16, body: serde_json::Value) -> Self {
        Self::answering_after(Duration::ZERO, status, body)
    }

    /// Answers every well-formed exchange with `status` and `body`, `delay` after it arrived.
    pub fn answering_after(delay: Duration, status: u16, body: serde_json::Value) -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (url_tx, url_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let seen2 = seen.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let server = wiremock::MockServer::start().await;
                wiremock::Mock::given(wiremock::matchers::method("POST"))
                    .and(wiremock::matchers::path("/api/v1/auth/keys"))
                    .and(wiremock::matchers::header(
                        "content-type",
                        "application/json",
                    ))
                    .respond_with(KeysResponder {
                        status,
                        body,
                        delay,
                        seen: seen2,
                    })
                    .mount(&server)
                    .await;
                // The key check after storing (`GET /api/v1/key`): the key handed out is
                // valid, anything else is not.
                wiremock::Mock::given(wiremock::matchers::method("GET"))
                    .and(wiremock::matchers::path("/api/v1/key"))
                    .and(wiremock::matchers::header(
                        "authorization",
                        format!("Bearer {KEY}").as_str(),
                    ))
                    .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(
                        serde_json::json!({"data": {"label": KEY_LABEL_SEEN, "usage": 0.25, "limit": null, "is_free_tier": false}}),
                    ))
                    .mount(&server)
                    .await;
                wiremock::Mock::given(wiremock::matchers::method("GET"))
                    .and(wiremock::matchers::path("/api/v1/key"))
                    .respond_with(wiremock::ResponseTemplate::new(401).set_body_json(
                        serde_json::json!({"error": {"code": 401, "message": "User not found."}}),
                    ))
                    .with_priority(10)
                    .mount(&server)
                    .await;
                url_tx.send(server.uri()).unwrap();
                let _ = stop_rx.await;
            });
        });
        let url = url_rx.recv().unwrap().parse().unwrap();
        StandIn {
            url,
            seen,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Every exchange received so far.
    pub fn exchanges(&self) -> Vec<Exchange> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for StandIn {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

// ----------------------------------------------------------------------------------------
// Running `login`
// ----------------------------------------------------------------------------------------

/// Which driver runs the login.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// `openrouter_auth::login` on its own thread.
    Blocking,
    /// `openrouter_auth::login_async` on the current tokio runtime (call from inside a
    /// multi-thread `#[tokio::test]`).
    Tokio,
}

/// Options for a login against `stand_in` that stores into `dir/credentials.json`, opens no
/// browser and reads nothing from the process environment.
pub fn options(stand_in: &StandIn, dir: &Path) -> LoginOptions {
    LoginOptions::default()
        .base_url(stand_in.url.clone())
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

/// A login running in the background.
pub struct Running {
    events: mpsc::Receiver<LoginEvent>,
    result: mpsc::Receiver<Result<LoginOutcome, LoginError>>,
    pub cancel: CancelHandle,
    seen: Vec<LoginEvent>,
}

impl Running {
    /// Starts `login` (or `login_async`) with `options`.
    pub fn start(driver: Driver, options: LoginOptions) -> Running {
        Self::start_with(driver, options, CancelHandle::new())
    }

    /// Starts a login whose cancel handle was cancelled before it began.
    pub fn start_cancelled(driver: Driver, options: LoginOptions) -> Running {
        let cancel = CancelHandle::new();
        cancel.cancel();
        Self::start_with(driver, options, cancel)
    }

    /// Starts a login driven through `handle` (which the test may already have used, e.g.
    /// to paste before the login began).
    pub fn start_with_handle(
        driver: Driver,
        options: LoginOptions,
        handle: CancelHandle,
    ) -> Running {
        Self::start_with(driver, options, handle)
    }

    /// Waits for the next event that `pick` maps to `Some`, and returns it.
    pub fn wait_for<T>(&mut self, what: &str, pick: impl Fn(&LoginEvent) -> Option<T>) -> T {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(found) = self.seen.iter().find_map(&pick) {
                return found;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(e) => self.seen.push(e),
                Err(_) => panic!("no {what} within {PATIENCE:?}: {:?}", self.seen),
            }
        }
    }

    fn start_with(driver: Driver, options: LoginOptions, cancel: CancelHandle) -> Running {
        let (ev_tx, events) = mpsc::channel();
        let (res_tx, result) = mpsc::channel();
        let observer = move |e: LoginEvent| {
            let _ = ev_tx.send(e);
        };
        match driver {
            Driver::Blocking => {
                let cancel = cancel.clone();
                std::thread::spawn(move || {
                    let mut observer = observer;
                    let r = openrouter_auth::login(&options, &mut observer, &cancel);
                    let _ = res_tx.send(r);
                });
            }
            Driver::Tokio => {
                let cancel = cancel.clone();
                tokio::runtime::Handle::current().spawn(async move {
                    let r = openrouter_auth::login_async(options, Box::new(observer), cancel).await;
                    let _ = res_tx.send(r);
                });
            }
        }
        Running {
            events,
            result,
            cancel,
            seen: Vec::new(),
        }
    }

    /// Waits for the `AuthorizationUrl` event and returns its `callback_url`.
    pub fn callback_url(&mut self) -> url::Url {
        let deadline = Instant::now() + PATIENCE;
        loop {
            if let Some(url) = self.seen.iter().find_map(|e| match e {
                LoginEvent::AuthorizationUrl { callback_url, .. } => callback_url.clone(),
                _ => None,
            }) {
                return url;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(left) {
                Ok(e) => self.seen.push(e),
                Err(_) => panic!("no authorization URL within {PATIENCE:?}: {:?}", self.seen),
            }
        }
    }

    /// The authorization URL the user is shown.
    pub fn authorization_url(&mut self) -> url::Url {
        self.callback_url();
        self.seen
            .iter()
            .find_map(|e| match e {
                LoginEvent::AuthorizationUrl { url, .. } => Some(url.clone()),
                _ => None,
            })
            .unwrap()
    }

    /// The events seen so far (drains the channel).
    pub fn events(&mut self) -> Vec<LoginEvent> {
        while let Ok(e) = self.events.try_recv() {
            self.seen.push(e);
        }
        self.seen.clone()
    }

    /// Waits (at most `within`) for `login` to return.
    pub fn finish_within(&mut self, within: Duration) -> Result<LoginOutcome, LoginError> {
        match self.result.recv_timeout(within) {
            Ok(r) => r,
            Err(_) => panic!("login did not return within {within:?}"),
        }
    }

    /// Waits for `login` to return.
    pub fn finish(&mut self) -> Result<LoginOutcome, LoginError> {
        self.finish_within(PATIENCE)
    }

    /// Whether `login` has returned (without consuming the result).
    pub fn still_running(&self) -> bool {
        matches!(self.result.try_recv(), Err(mpsc::TryRecvError::Empty))
    }
}

// ----------------------------------------------------------------------------------------
// The browser
// ----------------------------------------------------------------------------------------

/// An HTTP response as the browser read it.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Parses a whole response (the server closes after one).
    pub fn parse(raw: &[u8]) -> Response {
        let text = String::from_utf8_lossy(raw);
        let (head, body) = text
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("no complete response head in {text:?}"));
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
            .collect();
        Response {
            status,
            headers,
            body: body.to_owned(),
        }
    }
}

/// The listener's address for a URL like `http://localhost:PORT/…` (127.0.0.1).
pub fn addr_of(url: &url::Url) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], url.port().expect("callback URL has a port")))
}

/// Opens a connection to `addr` with a read timeout.
pub fn connect(addr: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&addr, PATIENCE).expect("connect to the listener");
    s.set_read_timeout(Some(PATIENCE)).unwrap();
    s.set_write_timeout(Some(PATIENCE)).unwrap();
    s
}

/// Reads until the server closes the connection.
pub fn read_to_close(s: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut out = Vec::new();
    s.read_to_end(&mut out)?;
    Ok(out)
}

/// Sends `bytes` on a new connection and reads the whole answer.
pub fn raw(addr: SocketAddr, bytes: &[u8]) -> Response {
    let mut s = connect(addr);
    s.write_all(bytes).expect("send request");
    let raw = read_to_close(&mut s).expect("read answer");
    Response::parse(&raw)
}

/// `GET target` with a correct `Host` header.
pub fn get(addr: SocketAddr, target: &str) -> Response {
    raw(
        addr,
        format!(
            "GET {target} HTTP/1.1\r\nHost: localhost:{}\r\nUser-Agent: test-browser\r\n\r\n",
            addr.port()
        )
        .as_bytes(),
    )
}

/// The path and query of `url`, as a request target.
pub fn target_of(url: &url::Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_owned(),
    }
}

/// The callback target carrying `code`, as OpenRouter would send the browser back.
pub fn callback_target(callback_url: &url::Url, code: &str) -> String {
    let mut u = callback_url.clone();
    u.query_pairs_mut().append_pair("code", code);
    target_of(&u)
}

/// What the browser saw when it came back with a code.
#[derive(Debug)]
pub struct Visit {
    /// The answer to the callback request itself.
    pub redirect: Response,
    /// The page the redirect led to.
    pub page: Response,
}

/// Plays the browser: GET the callback with `code` at `addr`, expect a 303, follow its
/// `Location`, and return both answers.
pub fn come_back_at(addr: SocketAddr, callback_url: &url::Url, code: &str) -> Visit {
    let redirect = get(addr, &callback_target(callback_url, code));
    assert_eq!(redirect.status, 303, "callback answer: {redirect:?}");
    let location = redirect
        .header("Location")
        .expect("303 has a Location")
        .to_owned();
    assert!(
        !location.contains(code),
        "the clean URL must not carry the code: {location}"
    );
    let page = get(addr, &location);
    Visit { redirect, page }
}

/// [`come_back_at`] on 127.0.0.1.
pub fn come_back(callback_url: &url::Url, code: &str) -> Visit {
    come_back_at(addr_of(callback_url), callback_url, code)
}

/// Plays the browser sent back with an OAuth error (RFC 6749 section 4.1.2.1): GET the
/// callback with the `error`/`error_description` pairs in `params`, expect a 303 to the clean
/// `/callback/<nonce>/done` URL (no query, nothing of the error in it), follow it, and return
/// both answers.
pub fn come_back_with_error(callback_url: &url::Url, params: &[(&str, &str)]) -> Visit {
    let addr = addr_of(callback_url);
    let mut u = callback_url.clone();
    u.query_pairs_mut().extend_pairs(params);
    let redirect = get(addr, &target_of(&u));
    assert_eq!(redirect.status, 303, "callback answer: {redirect:?}");
    let location = redirect
        .header("Location")
        .expect("303 has a Location")
        .to_owned();
    assert_eq!(location, format!("{}/done", callback_url.path()));
    let page = get(addr, &location);
    Visit { redirect, page }
}

/// Asserts that a completed login stored [`KEY`] in `dir/credentials.json` with mode 0600, and
/// that the browser's final page says so.
pub fn assert_signed_in(
    result: Result<LoginOutcome, LoginError>,
    visit: &Visit,
    dir: &Path,
) -> LoginOutcome {
    let done = result.unwrap_or_else(|e| panic!("login failed: {e} ({e:?})"));
    assert_eq!(done.key.expose_secret(), KEY);
    assert_eq!(done.user_id.as_deref(), Some("user_1"));
    let path = dir.join("credentials.json");
    assert_eq!(done.stored[0].path.as_deref(), Some(path.as_path()));
    let stored: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&path).expect("credentials file exists")).unwrap();
    assert_eq!(stored["openrouter"]["api_key"], KEY, "{stored}");
    assert_mode_0600(&path);
    assert_eq!(visit.page.status, 200, "{:?}", visit.page);
    assert!(
        visit.page.body.contains("Signed in to OpenRouter"),
        "final page: {}",
        visit.page.body
    );
    done
}

/// Asserts the file is readable and writable by its owner only.
pub fn assert_mode_0600(path: &Path) {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{} has mode {mode:o}", path.display());
    }
    #[cfg(not(unix))]
    let _ = path;
}

/// A fresh temporary directory.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::TempDir::new().unwrap()
}

/// `dir/credentials.json`.
pub fn credentials(dir: &Path) -> PathBuf {
    dir.join("credentials.json")
}

/// Runs a case with both drivers: `mod $case { blocking, tokio }`. Use with
/// `#[macro_use] mod common;`.
macro_rules! both_drivers {
    ($($case:ident),* $(,)?) => {
        $(
            mod $case {
                #[test]
                fn blocking() {
                    super::$case($crate::common::Driver::Blocking)
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn tokio() {
                    super::$case($crate::common::Driver::Tokio)
                }
            }
        )*
    };
}

// ----------------------------------------------------------------------------------------
// File attributes
// ----------------------------------------------------------------------------------------

/// Sets a file attribute with `chattr` (`'i'` immutable: nobody, not even root, may create or
/// delete files in the directory; `'a'` append-only: files may be created but not deleted or
/// renamed over) for as long as it lives.
#[cfg(target_os = "linux")]
#[allow(dead_code)]
pub struct Chattr(std::path::PathBuf, char);

#[cfg(target_os = "linux")]
#[allow(dead_code)]
impl Chattr {
    /// `None` where `chattr` is missing or the file system lacks the attribute.
    pub fn set(path: &Path, flag: char) -> Option<Chattr> {
        std::process::Command::new("chattr")
            .arg(format!("+{flag}"))
            .arg(path)
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
            .then(|| Chattr(path.to_path_buf(), flag))
    }
}

#[cfg(target_os = "linux")]
impl Drop for Chattr {
    fn drop(&mut self) {
        let _ = std::process::Command::new("chattr")
            .arg(format!("-{}", self.1))
            .arg(&self.0)
            .status();
    }
}
