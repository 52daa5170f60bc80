//! End-to-end test helpers for openrouter-auth: the `openrouter-auth` binary run as a child
//! process against the OpenRouter emulator, a scripted browser (reqwest, redirects followed by
//! hand), and a real headless Chromium driven over the DevTools protocol ([`chromium`]).
//!
//! These helpers never touch the user's real home: every CLI run gets `HOME`, `XDG_CONFIG_HOME`
//! and `XDG_DATA_HOME` inside its own temporary directory.
//!
//! ```no_run
//! use openrouter_auth_tests::{Browser, Cli};
//! use openrouter_auth_sim::emulator::Emulator;
//! let emulator = Emulator::start_blocking();
//! let home = tempfile::tempdir().unwrap();
//! let store = home.path().join("c.json");
//! let mut cli = Cli::login(&emulator, home.path(), &format!("file:{}", store.display()), &["--json"]);
//! let (auth_url, _callback) = cli.authorization_url_json();
//! let pages = Browser::new().follow(&auth_url);
//! assert!(pages.last().unwrap().body.contains("Signed in to OpenRouter"));
//! assert_eq!(cli.finish().code, Some(0));
//! ```
#![forbid(unsafe_code)]

pub mod chromium;

use std::ffi::OsStr;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{mpsc, Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use openrouter_auth_sim::emulator::{Emulator, EmulatorOptions, Mode};
use url::Url;

/// The longest any single step (a line of output, a page load, a process exit) may take before
/// the test fails. Generous: CI machines are small and Chromium is slow to start.
pub const STEP_TIMEOUT: Duration = Duration::from_secs(60);

/// Exit codes of `openrouter-auth` (see `EXIT_CODES` in `io/src/main.rs`).
pub mod exit {
    /// Signed in.
    pub const OK: i32 = 0;
    /// Another error (port busy, unusable store, …).
    pub const ERROR: i32 = 1;
    /// Access denied in the browser.
    pub const DENIED: i32 = 3;
    /// Timed out waiting for the browser.
    pub const TIMED_OUT: i32 = 4;
    /// The code exchange failed.
    pub const EXCHANGE_FAILED: i32 = 5;
    /// Signed in, but the key could not be stored (it is printed once).
    pub const KEY_NOT_STORED: i32 = 6;
    /// Cancelled (Ctrl-C).
    pub const CANCELLED: i32 = 130;
}

// -------------------------------------------------------------------------------------------
// The binary

/// The path of the `openrouter-auth` binary, built once per test process.
///
/// Cargo sets `CARGO_BIN_EXE_*` only for binaries of the package under test, so this runs
/// `cargo build -p openrouter-auth --bin openrouter-auth` with the target directory and profile
/// of the running test binary (`…/<target>/<profile>/deps/<test>-<hash>`), which is a quick
/// no-op when the binary is up to date. Set `OPENROUTER_AUTH_BIN` to use a given binary
/// instead (e.g. when cross-compiling).
///
/// # Panics
///
/// If the build fails (its output is in the panic message).
pub fn cli_binary() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(build_cli).clone()
}

fn build_cli() -> PathBuf {
    if let Some(bin) = std::env::var_os("OPENROUTER_AUTH_BIN").filter(|v| !v.is_empty()) {
        return PathBuf::from(bin);
    }
    cargo_build(&["--bin", "openrouter-auth"], "openrouter-auth")
}

/// The path of the library's example `name` (`io/examples/<name>.rs`), built the way
/// [`cli_binary`] builds the command (`cargo build -p openrouter-auth --example <name>`, a
/// quick no-op when it is up to date), so a test always runs the example as it is now.
///
/// # Panics
///
/// If the build fails (its output is in the panic message).
pub fn example_binary(name: &str) -> PathBuf {
    cargo_build(&["--example", name], &format!("examples/{name}"))
}

/// Runs `cargo build -p openrouter-auth <what>` for the target directory and profile of the
/// running test binary and returns `<profile dir>/<artifact>`.
fn cargo_build(what: &[&str], artifact: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary knows its own path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("the test binary lives in <target>/<profile>/deps");
    let target_dir = profile_dir
        .parent()
        .expect("the profile directory lives in the target directory");
    let profile = profile_dir
        .file_name()
        .and_then(OsStr::to_str)
        .expect("a UTF-8 profile directory name");
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the workspace root");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(workspace)
        .env("CARGO_TARGET_DIR", target_dir)
        .args(["build", "-p", "openrouter-auth"])
        .args(what);
    // Cargo runs this test with variables describing the test's own package. A build script
    // that declares `rerun-if-env-changed` on one of them (ring does, on CARGO_MANIFEST_DIR)
    // would see a different value than in the `cargo test` that built everything, and the two
    // builds would keep rebuilding ring, rustls, reqwest and openrouter-auth for each other.
    for (name, _) in std::env::vars_os() {
        let Some(name) = name.to_str() else { continue };
        let set_by_cargo_for_tests = name.starts_with("CARGO_PKG_")
            || name.starts_with("CARGO_BIN_EXE_")
            || matches!(
                name,
                "CARGO_MANIFEST_DIR"
                    | "CARGO_MANIFEST_PATH"
                    | "CARGO_CRATE_NAME"
                    | "CARGO_BIN_NAME"
                    | "CARGO_PRIMARY_PACKAGE"
                    | "CARGO_TARGET_TMPDIR"
                    | "CARGO_RUSTC_CURRENT_DIR"
                    | "OUT_DIR"
            );
        if set_by_cargo_for_tests {
            cmd.env_remove(name);
        }
    }
    match profile {
        "debug" => {}
        "release" => {
            cmd.arg("--release");
        }
        other => {
            cmd.args(["--profile", other]);
        }
    }
    let out = cmd.output().expect("run `cargo build -p openrouter-auth`");
    assert!(
        out.status.success(),
        "building openrouter-auth {what:?} failed ({}):\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let bin = profile_dir.join(format!("{artifact}{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.is_file(), "cargo built no {}", bin.display());
    bin
}

// -------------------------------------------------------------------------------------------
// The CLI as a process

/// Which output stream a line came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Standard output.
    Stdout,
    /// Standard error.
    Stderr,
}

/// A running `openrouter-auth` process with both output streams captured line by line.
///
/// Dropping it kills the process if it is still running, so a failing test leaves nothing
/// behind.
pub struct Cli {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<(Stream, String)>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

/// How a [`Cli`] process ended, with everything it printed.
#[derive(Debug)]
pub struct Finished {
    /// The exit status.
    pub status: ExitStatus,
    /// The exit code (`None` if killed by a signal).
    pub code: Option<i32>,
    /// Everything on standard output.
    pub stdout: String,
    /// Everything on standard error.
    pub stderr: String,
}

impl Finished {
    /// Every standard output line parsed as JSON (for `--json` runs).
    ///
    /// # Panics
    ///
    /// If a line is not JSON.
    pub fn json_events(&self) -> Vec<serde_json::Value> {
        self.stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l)
                    .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {l:?}"))
            })
            .collect()
    }

    /// The last JSON event whose `event` field is `name`.
    ///
    /// # Panics
    ///
    /// If there is none.
    pub fn event(&self, name: &str) -> serde_json::Value {
        self.json_events()
            .into_iter()
            .rev()
            .find(|e| e["event"] == name)
            .unwrap_or_else(|| panic!("no {name:?} event on stdout:\n{}", self.stdout))
    }
}

/// What the child's standard input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdin {
    /// `/dev/null`: end of input at once.
    Null,
    /// A pipe the test writes to ([`Cli::type_line`]) and may close ([`Cli::close_stdin`]).
    Pipe,
}

/// `openrouter-auth` in the environment every test run gets: `HOME`, the XDG directories and
/// `XDG_RUNTIME_DIR` inside `home`, no D-Bus session (so no real keyring is ever touched), a
/// keyring service name of its own, `BROWSER=true`, UTC, `COLUMNS=10000` (no wrapping), no `RUST_LOG`, no base URL or key
/// from the environment, none of the consumers' location variables (`LLM_USER_PATH`,
/// `CRUSH_GLOBAL_DATA`, `GOOSE_PATH_ROOT`, `GOOSE_DISABLE_KEYRING`), and none of the variables
/// headless detection reads (SSH, display, container, WSL), so a test decides those itself.
pub fn command(home: &Path) -> Command {
    let mut c = Command::new(cli_binary());
    c.env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_RUNTIME_DIR", home)
        .env("NO_COLOR", "1")
        .env(
            "OPENROUTER_AUTH_KEYRING_SERVICE",
            format!("openrouter-auth-test-{}", std::process::id()),
        )
        .env("BROWSER", "true")
        .env("TZ", "UTC")
        // Wide lines off a terminal, so a test reads each message whole on one line; the
        // snapshot tests of the layout set 80 columns themselves.
        .env("COLUMNS", "10000");
    for var in [
        "RUST_LOG",
        "OPENROUTER_AUTH_BASE_URL",
        "OPENROUTER_API_KEY",
        "DBUS_SESSION_BUS_ADDRESS",
        "SSH_CONNECTION",
        "SSH_TTY",
        "SSH_CLIENT",
        "DISPLAY",
        "WAYLAND_DISPLAY",
        "container",
        "WSL_DISTRO_NAME",
        "WSL_INTEROP",
        "LLM_USER_PATH",
        "CRUSH_GLOBAL_DATA",
        "GOOSE_PATH_ROOT",
        "GOOSE_DISABLE_KEYRING",
    ] {
        c.env_remove(var);
    }
    c
}

impl Cli {
    /// Starts `openrouter-auth` with `args` in the environment of [`command`], stdin closed.
    ///
    /// # Panics
    ///
    /// If the process cannot be started.
    pub fn spawn<I, S>(home: &Path, args: I) -> Cli
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        let mut cmd = command(home);
        cmd.args(args).stdin(Stdio::null());
        Cli::capture(cmd)
    }

    /// Starts `openrouter-auth args…` in the environment of [`command`] plus `env`, with
    /// standard input as `stdin` says.
    ///
    /// # Panics
    ///
    /// If the process cannot be started.
    pub fn start(home: &Path, args: &[&str], env: &[(&str, &str)], stdin: Stdin) -> Cli {
        let mut cmd = command(home);
        cmd.args(args).envs(env.iter().copied());
        cmd.stdin(match stdin {
            Stdin::Null => Stdio::null(),
            Stdin::Pipe => Stdio::piped(),
        });
        Cli::capture(cmd)
    }

    /// Runs `cmd` (any program: e.g. `script(1)` wrapping the CLI) with stdout and stderr
    /// captured line by line; its stdin is writable ([`Cli::type_line`]) if `cmd` made it a
    /// pipe.
    ///
    /// # Panics
    ///
    /// If the process cannot be started.
    pub fn capture(mut cmd: Command) -> Cli {
        let mut child = cmd
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start openrouter-auth");
        let (tx, lines) = mpsc::channel();
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            spawn_reader(
                child.stdout.take().expect("piped stdout"),
                Stream::Stdout,
                Arc::clone(&stdout),
                tx.clone(),
            ),
            spawn_reader(
                child.stderr.take().expect("piped stderr"),
                Stream::Stderr,
                Arc::clone(&stderr),
                tx,
            ),
        ];
        Cli {
            stdin: child.stdin.take(),
            child,
            lines,
            stdout,
            stderr,
            readers,
        }
    }

    /// Writes `text` and a newline to the process's stdin.
    ///
    /// # Panics
    ///
    /// If stdin is not a pipe or the write fails.
    pub fn type_line(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is a pipe");
        writeln!(stdin, "{text}").expect("write to stdin");
        stdin.flush().expect("flush stdin");
    }

    /// Closes the process's stdin (end of input).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// `--json` mode: the whole `authorization_url` event.
    pub fn authorization_event(&mut self) -> serde_json::Value {
        let line = self.wait_line(Stream::Stdout, |l| l.contains("\"authorization_url\""));
        serde_json::from_str(&line).expect("a JSON event")
    }

    /// Starts `openrouter-auth login --no-browser --base-url <emulator> --store <store>` plus
    /// `extra` arguments.
    pub fn login(emulator: &Emulator, home: &Path, store: &str, extra: &[&str]) -> Cli {
        let base = emulator.base_url().to_string();
        let mut args = vec![
            "login",
            "--no-browser",
            "--base-url",
            base.as_str(),
            "--store",
            store,
        ];
        args.extend_from_slice(extra);
        Cli::spawn(home, args)
    }

    /// A key OpenRouter (`emulator`) knows, for tests that need one: an ordinary `login`
    /// into `home/first.json`, approved by a scripted browser. Returns the issued key.
    pub fn signed_in_key(emulator: &Emulator, home: &Path) -> String {
        let first = home.join("first.json");
        let mut cli = Cli::login(emulator, home, &format!("file:{}", first.display()), &[]);
        Browser::new().follow(&cli.authorization_url_human());
        let f = cli.finish();
        assert_eq!(f.code, Some(exit::OK), "{f:#?}");
        emulator
            .issued_keys()
            .last()
            .expect("a key was issued")
            .key
            .clone()
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Waits for the next line on `stream` for which `pred` holds and returns it (without its
    /// line ending). Lines that do not match are skipped (they stay in the full transcript).
    ///
    /// # Panics
    ///
    /// After [`STEP_TIMEOUT`], or if the process closes its output first.
    pub fn wait_line(&mut self, stream: Stream, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok((s, line)) if s == stream && pred(&line) => return line,
                Ok(_) => {}
                Err(e) => panic!(
                    "no matching line on {stream:?} ({e:?}).\nstdout:\n{}\nstderr:\n{}",
                    self.stdout_so_far(),
                    self.stderr_so_far()
                ),
            }
        }
    }

    /// `--json` mode: waits for the `authorization_url` event and returns the authorization
    /// URL and the callback URL in it.
    pub fn authorization_url_json(&mut self) -> (Url, Url) {
        let line = self.wait_line(Stream::Stdout, |l| l.contains("\"authorization_url\""));
        let ev: serde_json::Value = serde_json::from_str(&line).expect("a JSON event line");
        assert_eq!(ev["event"], "authorization_url", "{line}");
        let url = Url::parse(ev["url"].as_str().expect("url is a string")).expect("a URL");
        let callback = Url::parse(
            ev["callback_url"]
                .as_str()
                .expect("callback_url is a string in loopback mode"),
        )
        .expect("a callback URL");
        (url, callback)
    }

    /// Human mode: waits for the indented authorization URL on stderr.
    pub fn authorization_url_human(&mut self) -> Url {
        let line = self.wait_line(Stream::Stderr, |l| l.starts_with("  http"));
        Url::parse(line.trim()).expect("the indented line is the authorization URL")
    }

    /// Sends SIGINT (as Ctrl-C does) with `kill -INT <pid>`.
    ///
    /// # Panics
    ///
    /// If `kill` fails.
    pub fn interrupt(&self) {
        let status = Command::new("kill")
            .args(["-INT", &self.pid().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -INT failed: {status}");
    }

    /// Everything printed on stdout so far.
    pub fn stdout_so_far(&self) -> String {
        self.stdout
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Everything printed on stderr so far.
    pub fn stderr_so_far(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits for the process to exit (at most [`STEP_TIMEOUT`]) and returns how it ended.
    ///
    /// # Panics
    ///
    /// If it does not exit in time (it is killed first; its output is in the message).
    pub fn finish(mut self) -> Finished {
        self.finish_within(STEP_TIMEOUT)
    }

    /// Like [`Cli::finish`], with its own time limit.
    pub fn finish_within(&mut self, limit: Duration) -> Finished {
        self.stdin = None;
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for openrouter-auth") {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                panic!(
                    "openrouter-auth did not exit within {limit:?}.\nstdout:\n{}\nstderr:\n{}",
                    self.stdout_so_far(),
                    self.stderr_so_far()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        Finished {
            status,
            code: status.code(),
            stdout: self.stdout_so_far(),
            stderr: self.stderr_so_far(),
        }
    }
}

impl Drop for Cli {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn spawn_reader(
    pipe: impl Read + Send + 'static,
    stream: Stream,
    all: Arc<Mutex<String>>,
    tx: mpsc::Sender<(Stream, String)>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut reader = BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let text = String::from_utf8_lossy(&buf).into_owned();
                    all.lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .push_str(&text);
                    let line = text.trim_end_matches(['\n', '\r']).to_owned();
                    let _ = tx.send((stream, line));
                }
            }
        }
    })
}

// -------------------------------------------------------------------------------------------
// A scripted browser

/// One HTTP answer the scripted browser received.
#[derive(Debug, Clone)]
pub struct Page {
    /// The URL that was loaded.
    pub url: Url,
    /// The status code.
    pub status: u16,
    /// The `Location` header, resolved against `url`.
    pub location: Option<Url>,
    /// The body as text.
    pub body: String,
}

impl Page {
    /// The text of the first `<h1>`, or `""`.
    pub fn heading(&self) -> &str {
        between(&self.body, "<h1>", "</h1>").unwrap_or_default()
    }
}

/// A browser played by reqwest: no automatic redirects (each hop is a [`Page`]), no proxy, no
/// cookies.
pub struct Browser {
    client: reqwest::blocking::Client,
}

impl Default for Browser {
    fn default() -> Self {
        Self::new()
    }
}

impl Browser {
    /// A new scripted browser.
    ///
    /// # Panics
    ///
    /// If reqwest cannot build a client.
    pub fn new() -> Self {
        let client = reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(STEP_TIMEOUT)
            .build()
            .expect("a reqwest client");
        Browser { client }
    }

    /// `GET url`, one hop.
    ///
    /// # Panics
    ///
    /// If the request fails at the transport level.
    pub fn get(&self, url: &Url) -> Page {
        let resp = self
            .client
            .get(url.clone())
            .send()
            .unwrap_or_else(|e| panic!("GET {url} failed: {e}"));
        let status = resp.status().as_u16();
        let location = resp
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(|l| url.join(l).expect("a valid Location"));
        let body = resp.text().expect("a text body");
        Page {
            url: url.clone(),
            status,
            location,
            body,
        }
    }

    /// Loads `url` and follows redirects by hand (at most 10 hops); returns every hop, the
    /// final page last.
    ///
    /// # Panics
    ///
    /// On a transport failure or more than 10 redirects.
    pub fn follow(&self, url: &Url) -> Vec<Page> {
        let mut pages = vec![self.get(url)];
        while let Some(next) = pages
            .last()
            .filter(|p| (300..400).contains(&p.status))
            .and_then(|p| p.location.clone())
        {
            assert!(pages.len() <= 10, "too many redirects: {pages:#?}");
            pages.push(self.get(&next));
        }
        pages
    }
}

/// The `href` of the element with `id` in the emulator's consent page (`&amp;` unescaped),
/// resolved against `base`.
///
/// # Panics
///
/// If there is no such link.
pub fn link_by_id(page: &Page, id: &str) -> Url {
    let marker = format!("id=\"{id}\" href=\"");
    let start = page
        .body
        .find(&marker)
        .unwrap_or_else(|| panic!("no link #{id} in:\n{}", page.body))
        + marker.len();
    let end = start + page.body[start..].find('"').expect("a closed href");
    let href = page.body[start..end].replace("&amp;", "&");
    page.url.join(&href).expect("a valid href")
}

/// The value of query parameter `name` in `url`.
pub fn query_param(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

fn between<'a>(s: &'a str, start: &str, end: &str) -> Option<&'a str> {
    let from = s.find(start)? + start.len();
    let len = s[from..].find(end)?;
    Some(&s[from..from + len])
}

// -------------------------------------------------------------------------------------------
// Small helpers

/// Starts an emulator in `mode`.
///
/// # Panics
///
/// If it cannot bind a port.
pub fn emulator(mode: Mode) -> Emulator {
    Emulator::start_with_blocking(EmulatorOptions { port: 0, mode }).expect("start the emulator")
}

/// The API key in a credentials file written by `--store file:PATH`
/// (`{"openrouter": {"api_key": …}}`).
///
/// # Panics
///
/// If the file is missing or not in that shape.
pub fn stored_key(path: &Path) -> String {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let v: serde_json::Value = serde_json::from_str(&text).expect("the credentials file is JSON");
    v["openrouter"]["api_key"]
        .as_str()
        .unwrap_or_else(|| panic!("no openrouter.api_key in {}", path.display()))
        .to_owned()
}

/// The permission bits of `path` (e.g. `0o600`).
///
/// # Panics
///
/// If `path` cannot be inspected.
#[cfg(unix)]
pub fn file_mode(path: &Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

/// Whether 127.0.0.1:`port` can be bound right now.
pub fn port_is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
}

/// insta filters that make the CLI's human output stable: the given temporary directory,
/// ports, nonces, PKCE challenges, `state`, codes, key labels (the default one names the host
/// and the date), key hints and key page hashes.
pub fn redactions(tmp: &Path) -> Vec<(String, String)> {
    let tmp = regex_escape(&tmp.display().to_string());
    [
        (tmp.as_str(), "[TMP]"),
        (r"(127\.0\.0\.1|localhost|\[::1\]):\d+", "$1:[PORT]"),
        (r"(localhost|127\.0\.0\.1)%3A\d+", "$1%3A[PORT]"),
        (r"(%2Fcallback%2F|/callback/)[A-Za-z0-9_-]+", "$1[NONCE]"),
        (
            r"\b(code_challenge|state|code)=[A-Za-z0-9_.~-]+",
            "$1=[REDACTED]",
        ),
        (r"\bkey_label=[^&\s]+", "key_label=[LABEL]"),
        (r"(?m)^(  label: +).+$", "$1[LABEL]"),
        (r"sk-or-v1-[0-9a-f]{3}…[0-9a-f]{4}", "sk-or-v1-[HINT]"),
        (r"/keys/[0-9a-f]{64}", "/keys/[KEY_HASH]"),
    ]
    .into_iter()
    .map(|(re, with)| (re.to_owned(), with.to_owned()))
    .collect()
}

/// Escapes every regex metacharacter in `s`.
pub fn regex_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if "\\.+*?()|[]{}^$#&-~".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// Waits until `cond` holds, checking every 20 ms, for at most [`STEP_TIMEOUT`].
///
/// # Panics
///
/// With `what` in the message, if it never does.
pub fn wait_until(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = Instant::now() + STEP_TIMEOUT;
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sets a file attribute with `chattr` (`'i'` immutable: nobody, not even root, may create or
/// delete files in the directory; `'a'` append-only: files may be created but not deleted or
/// renamed over) for as long as it lives.
#[cfg(target_os = "linux")]
pub struct Chattr(PathBuf, char);

#[cfg(target_os = "linux")]
impl Chattr {
    /// `None` where `chattr` is missing or the file system lacks the attribute.
    pub fn set(path: &Path, flag: char) -> Option<Chattr> {
        Command::new("chattr")
            .arg(format!("+{flag}"))
            .arg(path)
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
            .then(|| Chattr(path.to_path_buf(), flag))
    }
}

#[cfg(target_os = "linux")]
impl Drop for Chattr {
    fn drop(&mut self) {
        let _ = Command::new("chattr")
            .arg(format!("-{}", self.1))
            .arg(&self.0)
            .status();
    }
}
