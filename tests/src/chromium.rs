//! A real headless Chromium for the end-to-end tests: launched as root-safe as a test can make
//! it (`--headless --no-sandbox`, a fresh profile, no background networking), driven either over
//! the DevTools protocol ([`Chromium::launch`], [`Tab`]) or with `--dump-dom` ([`dump_dom`]).
//!
//! Tests call [`require`] first: it returns `None` (and prints `skipped: chromium not
//! installed`) when there is no Chromium, unless `OPENROUTER_AUTH_REQUIRE_CHROMIUM=1` is set, in
//! which case a missing Chromium fails the test. CI sets it.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tungstenite::{Message, WebSocket};

use crate::STEP_TIMEOUT;

/// Set to `1` to make a missing Chromium a test failure instead of a skip.
pub const REQUIRE_ENV: &str = "OPENROUTER_AUTH_REQUIRE_CHROMIUM";

/// The Chromium binary: `$CHROMIUM` if set, else `/usr/bin/chromium`; `None` if it does not
/// exist.
pub fn find() -> Option<PathBuf> {
    let bin = std::env::var_os("CHROMIUM")
        .filter(|v| !v.is_empty())
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    bin.is_file().then_some(bin)
}

/// The Chromium binary, or `None` after printing `skipped: chromium not installed` (to the real
/// stderr, past the test harness's capture).
///
/// # Panics
///
/// If Chromium is missing and `OPENROUTER_AUTH_REQUIRE_CHROMIUM=1`.
pub fn require(test: &str) -> Option<PathBuf> {
    if let Some(bin) = find() {
        return Some(bin);
    }
    let required = std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1");
    assert!(
        !required,
        "{test}: chromium not installed (no /usr/bin/chromium or $CHROMIUM) and {REQUIRE_ENV}=1; \
         install it with `apt-get install -y chromium`"
    );
    let _ = writeln!(
        std::io::stderr(),
        "{test}: skipped: chromium not installed (apt-get install -y chromium; set {REQUIRE_ENV}=1 to fail instead)"
    );
    None
}

/// Serialises Chromium runs within a test binary: two Chromiums at once on a 2-core CI
/// machine make every step slow. Poison is ignored.
pub fn exclusive() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|p| p.into_inner())
}

/// The flags every run gets: headless, no sandbox (tests run as root), no GPU, no QUIC, and
/// nothing in the background that could reach the network.
pub fn base_args(profile: &Path) -> Vec<String> {
    vec![
        "--headless".into(),
        "--no-sandbox".into(),
        "--disable-gpu".into(),
        "--disable-quic".into(),
        "--no-first-run".into(),
        "--no-default-browser-check".into(),
        "--disable-background-networking".into(),
        "--disable-component-update".into(),
        "--disable-sync".into(),
        "--disable-extensions".into(),
        "--disable-dev-shm-usage".into(),
        "--no-proxy-server".into(),
        format!("--user-data-dir={}", profile.display()),
    ]
}

/// What a finished Chromium process printed.
#[derive(Debug)]
pub struct Output {
    /// The exit status.
    pub status: ExitStatus,
    /// Standard output (the DOM, for `--dump-dom`).
    pub stdout: String,
    /// Standard error (Chromium's own log noise).
    pub stderr: String,
}

/// Runs `chromium … --dump-dom url` with a fresh profile: Chromium loads `url`, follows every
/// redirect, waits for the load event and prints the final DOM.
///
/// # Panics
///
/// If Chromium cannot start or does not finish within [`STEP_TIMEOUT`].
pub fn dump_dom(bin: &Path, url: &url::Url) -> Output {
    let profile = tempfile::tempdir().expect("a Chromium profile directory");
    let mut cmd = Command::new(bin);
    cmd.args(base_args(profile.path()))
        .arg("--dump-dom")
        .arg(url.as_str());
    run_with_timeout(cmd, STEP_TIMEOUT)
}

/// Runs `chromium … --screenshot=file --window-size=width,height url` with a fresh profile:
/// Chromium loads `url` and writes a PNG of the viewport to `file`. With `dark`, the page
/// sees `prefers-color-scheme: dark` (`--force-dark-mode`).
///
/// # Panics
///
/// If Chromium cannot start or does not finish within [`STEP_TIMEOUT`].
pub fn screenshot(
    bin: &Path,
    url: &url::Url,
    file: &Path,
    (width, height): (u32, u32),
    dark: bool,
) -> Output {
    let profile = tempfile::tempdir().expect("a Chromium profile directory");
    let mut cmd = Command::new(bin);
    cmd.args(base_args(profile.path()))
        .arg(format!("--screenshot={}", file.display()))
        .arg(format!("--window-size={width},{height}"))
        .arg("--hide-scrollbars");
    if dark {
        cmd.arg("--force-dark-mode");
    }
    cmd.arg(url.as_str());
    run_with_timeout(cmd, STEP_TIMEOUT)
}

fn run_with_timeout(mut cmd: Command, limit: Duration) -> Output {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start chromium");
    let out = read_all(child.stdout.take().expect("piped stdout"));
    let err = read_all(child.stderr.take().expect("piped stderr"));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("chromium did not finish within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    // A helper process Chromium left behind could hold the pipes open: wait a little only.
    let grace = Duration::from_secs(5);
    Output {
        status,
        stdout: out.recv_timeout(grace).unwrap_or_default(),
        stderr: err.recv_timeout(grace).unwrap_or_default(),
    }
}

fn read_all(mut pipe: impl Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        let _ = tx.send(String::from_utf8_lossy(&buf).into_owned());
    });
    rx
}

/// A running headless Chromium with its DevTools endpoint on a loopback port. Killed (with
/// its profile deleted) on drop.
pub struct Chromium {
    child: Child,
    port: u16,
    log: Arc<Mutex<String>>,
    _profile: tempfile::TempDir,
}

impl Chromium {
    /// Launches Chromium on `about:blank` with `--remote-debugging-port=0` and waits for its
    /// `DevTools listening on ws://…` line.
    ///
    /// # Panics
    ///
    /// If Chromium does not start or never prints that line within [`STEP_TIMEOUT`].
    pub fn launch(bin: &Path) -> Chromium {
        let profile = tempfile::tempdir().expect("a Chromium profile directory");
        let mut child = Command::new(bin)
            .args(base_args(profile.path()))
            .arg("--remote-debugging-port=0")
            .arg("--remote-debugging-address=127.0.0.1")
            .arg("about:blank")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start chromium");
        let log = Arc::new(Mutex::new(String::new()));
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().expect("piped stderr");
        let all = Arc::clone(&log);
        // Keep draining stderr for the whole run: a full pipe would stall Chromium.
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                if let Some(ws) = line.strip_prefix("DevTools listening on ") {
                    let _ = tx.send(ws.trim().to_owned());
                }
                let mut all = all.lock().unwrap_or_else(|p| p.into_inner());
                all.push_str(&line);
                all.push('\n');
            }
        });
        let mut chromium = Chromium {
            child,
            port: 0,
            log,
            _profile: profile,
        };
        let ws = match rx.recv_timeout(STEP_TIMEOUT) {
            Ok(ws) => ws,
            Err(e) => panic!(
                "chromium printed no DevTools address ({e:?}); its stderr:\n{}",
                chromium.log()
            ),
        };
        let url = url::Url::parse(&ws).expect("a ws:// DevTools URL");
        chromium.port = url.port().expect("the DevTools URL has a port");
        chromium
    }

    /// Everything Chromium printed on stderr so far.
    pub fn log(&self) -> String {
        self.log.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Connects to the first page target (the `about:blank` tab).
    ///
    /// # Panics
    ///
    /// If no page target shows up within [`STEP_TIMEOUT`] or the websocket fails.
    pub fn first_tab(&self) -> Tab {
        let list = format!("http://127.0.0.1:{}/json/list", self.port);
        let client = reqwest::blocking::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .expect("a reqwest client");
        let deadline = Instant::now() + STEP_TIMEOUT;
        let ws_url = loop {
            let targets: Value = client
                .get(&list)
                .send()
                .and_then(|r| r.json())
                .unwrap_or(Value::Null);
            let page = targets.as_array().and_then(|ts| {
                ts.iter()
                    .find(|t| t["type"] == "page")
                    .and_then(|t| t["webSocketDebuggerUrl"].as_str())
                    .map(str::to_owned)
            });
            if let Some(ws) = page {
                break ws;
            }
            assert!(
                Instant::now() < deadline,
                "no page target in {list}; chromium's stderr:\n{}",
                self.log()
            );
            std::thread::sleep(Duration::from_millis(100));
        };
        let stream =
            TcpStream::connect(("127.0.0.1", self.port)).expect("connect to DevTools port");
        stream
            .set_read_timeout(Some(STEP_TIMEOUT))
            .expect("set a read timeout");
        let (ws, _) = tungstenite::client(ws_url.as_str(), stream)
            .unwrap_or_else(|e| panic!("DevTools websocket handshake with {ws_url}: {e}"));
        Tab { ws, next_id: 0 }
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One page target, driven over the DevTools protocol (one command at a time; events are
/// skipped).
pub struct Tab {
    ws: WebSocket<TcpStream>,
    next_id: u64,
}

impl Tab {
    /// Sends `method` with `params` and returns its `result`, or the protocol error's text.
    ///
    /// # Panics
    ///
    /// If the websocket fails (Chromium died or did not answer in [`STEP_TIMEOUT`]).
    pub fn call(&mut self, method: &str, params: Value) -> Result<Value, String> {
        self.next_id += 1;
        let id = self.next_id;
        let msg = json!({"id": id, "method": method, "params": params}).to_string();
        self.ws
            .send(Message::Text(msg.into()))
            .unwrap_or_else(|e| panic!("DevTools send {method}: {e}"));
        loop {
            let msg = self
                .ws
                .read()
                .unwrap_or_else(|e| panic!("DevTools read (waiting for {method}): {e}"));
            let Message::Text(text) = msg else { continue };
            let v: Value = serde_json::from_str(text.as_str()).expect("DevTools sends JSON");
            if v["id"] != id {
                continue; // an event, or an answer to an earlier command
            }
            return match v.get("error") {
                Some(err) => Err(err.to_string()),
                None => Ok(v["result"].clone()),
            };
        }
    }

    /// Starts loading `url` in this tab.
    ///
    /// # Panics
    ///
    /// If Chromium refuses the navigation.
    pub fn navigate(&mut self, url: &url::Url) {
        let r = self
            .call("Page.navigate", json!({"url": url.as_str()}))
            .unwrap_or_else(|e| panic!("Page.navigate {url}: {e}"));
        assert!(
            r.get("errorText").is_none(),
            "navigation to {url} failed: {r}"
        );
    }

    /// Evaluates `expression` in the page and returns its value (`Err` while the page is
    /// between documents, or if it threw).
    pub fn eval(&mut self, expression: &str) -> Result<Value, String> {
        let r = self.call(
            "Runtime.evaluate",
            json!({"expression": expression, "returnByValue": true}),
        )?;
        if let Some(ex) = r.get("exceptionDetails") {
            return Err(ex.to_string());
        }
        Ok(r["result"]["value"].clone())
    }

    /// Polls `expression` every 100 ms until it evaluates to `true`.
    ///
    /// # Panics
    ///
    /// After [`STEP_TIMEOUT`], naming `what` and the page's location and text.
    pub fn wait_for(&mut self, what: &str, expression: &str) {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            if self.eval(expression) == Ok(Value::Bool(true)) {
                return;
            }
            if Instant::now() >= deadline {
                let at = self
                    .eval("location.href + '\\n' + (document.body ? document.body.innerText : '')");
                panic!("timed out waiting for {what}; the page is: {at:?}");
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The page's current URL.
    pub fn location(&mut self) -> String {
        self.string("location.href")
    }

    /// The page's visible text.
    pub fn text(&mut self) -> String {
        self.string("document.body ? document.body.innerText : ''")
    }

    /// The page's title.
    pub fn title(&mut self) -> String {
        self.string("document.title")
    }

    fn string(&mut self, expression: &str) -> String {
        match self.eval(expression) {
            Ok(Value::String(s)) => s,
            other => panic!("{expression} gave {other:?}"),
        }
    }
}
