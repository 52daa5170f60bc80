//! Helpers for the issue-6 CLI tests (headless, paste, status, logout, keyring): the
//! `openrouter-auth` binary with a writable standard input and a controlled environment, a
//! pseudo-terminal through `script(1)`, and a tiny fake OpenRouter whose key check fails.
#![allow(dead_code)] // each test file uses a different part of this module

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use openrouter_auth_sim::emulator::Emulator;
use openrouter_auth_tests::{cli_binary, Browser, Finished, Stream, STEP_TIMEOUT};
use url::Url;

/// A key in OpenRouter's format (not issued by any emulator).
pub const FAKE_KEY: &str =
    "sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// What the child's standard input is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stdin {
    /// `/dev/null`: end of input at once.
    Null,
    /// A pipe the test writes to ([`Run::type_line`]) and may close ([`Run::close_stdin`]).
    Pipe,
}

/// The environment every run gets: `HOME`, XDG directories and `XDG_RUNTIME_DIR` inside
/// `home`, no D-Bus session (so no real keyring is ever touched), a keyring service name of
/// its own, no detection variables (SSH, display, container) and no `RUST_LOG`.
fn base_command(home: &Path) -> Command {
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
        .env("TZ", "UTC");
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
    ] {
        c.env_remove(var);
    }
    c
}

/// A running `openrouter-auth` with captured output and (optionally) a writable stdin.
pub struct Run {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<(Stream, String)>,
    stdout: Arc<Mutex<String>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

impl Run {
    /// Starts `openrouter-auth args…` with the base environment plus `env`.
    pub fn start(home: &Path, args: &[&str], env: &[(&str, &str)], stdin: Stdin) -> Run {
        let mut cmd = base_command(home);
        cmd.args(args).envs(env.iter().copied());
        cmd.stdin(match stdin {
            Stdin::Null => Stdio::null(),
            Stdin::Pipe => Stdio::piped(),
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start openrouter-auth");
        let stdin = child.stdin.take();
        Self::capture(child, stdin)
    }

    fn capture(mut child: Child, stdin: Option<ChildStdin>) -> Run {
        let (tx, lines) = mpsc::channel();
        let stdout = Arc::new(Mutex::new(String::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let readers = vec![
            reader(
                child.stdout.take().expect("piped stdout"),
                Stream::Stdout,
                stdout.clone(),
                tx.clone(),
            ),
            reader(
                child.stderr.take().expect("piped stderr"),
                Stream::Stderr,
                stderr.clone(),
                tx,
            ),
        ];
        Run {
            child,
            stdin,
            lines,
            stdout,
            stderr,
            readers,
        }
    }

    /// `login --base-url <emulator> --store <store> extra…` (no `--no-browser`: add it to
    /// `extra` where detection must not apply).
    pub fn login(
        emulator_url: &Url,
        home: &Path,
        store: &str,
        extra: &[&str],
        env: &[(&str, &str)],
        stdin: Stdin,
    ) -> Run {
        let base = emulator_url.to_string();
        let mut args = vec!["login", "--base-url", base.as_str(), "--store", store];
        args.extend_from_slice(extra);
        Run::start(home, &args, env, stdin)
    }

    /// Writes `text` and a newline to the child's stdin.
    pub fn type_line(&mut self, text: &str) {
        let stdin = self.stdin.as_mut().expect("stdin is a pipe");
        writeln!(stdin, "{text}").expect("write to stdin");
        stdin.flush().expect("flush stdin");
    }

    /// Closes the child's stdin (end of input).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// The next line on `stream` for which `pred` holds (other lines are skipped).
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

    /// Human mode: the indented authorization URL on stderr.
    pub fn authorization_url(&mut self) -> Url {
        let line = self.wait_line(Stream::Stderr, |l| {
            l.starts_with("  http") && l.contains("/auth?")
        });
        Url::parse(line.trim()).expect("the indented line is the authorization URL")
    }

    /// `--json` mode: the `authorization_url` event.
    pub fn authorization_event(&mut self) -> serde_json::Value {
        let line = self.wait_line(Stream::Stdout, |l| l.contains("\"authorization_url\""));
        serde_json::from_str(&line).expect("a JSON event")
    }

    /// Everything on stdout so far.
    pub fn stdout_so_far(&self) -> String {
        self.stdout
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Everything on stderr so far.
    pub fn stderr_so_far(&self) -> String {
        self.stderr
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Waits (at most [`STEP_TIMEOUT`]) for the exit.
    pub fn finish(self) -> Finished {
        self.finish_within(STEP_TIMEOUT)
    }

    /// Waits at most `limit` for the exit; kills the process and panics after that.
    pub fn finish_within(mut self, limit: Duration) -> Finished {
        self.stdin = None;
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
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
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        Finished {
            status,
            code: status.code(),
            stdout: self.stdout_so_far(),
            stderr: self.stderr_so_far(),
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn reader(
    pipe: impl Read + Send + 'static,
    stream: Stream,
    all: Arc<Mutex<String>>,
    tx: mpsc::Sender<(Stream, String)>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut r = BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
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

/// Runs `openrouter-auth args…` to the end with stdin closed.
pub fn run(home: &Path, args: &[&str]) -> Finished {
    Run::start(home, args, &[], Stdin::Null).finish()
}

// -------------------------------------------------------------------------------------------
// A pseudo-terminal

/// The `script` program from util-linux, if installed (it runs a command on a new
/// pseudo-terminal).
pub fn script_program() -> Option<PathBuf> {
    ["/usr/bin/script", "/bin/script"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Starts `openrouter-auth args…` on a pseudo-terminal (stdin, stdout and stderr are all the
/// terminal) through `script -qfec`. What the test types goes to the terminal; everything the
/// program prints (and the terminal's echo) arrives on [`Stream::Stdout`].
pub fn start_on_tty(script: &Path, home: &Path, args: &[&str]) -> Run {
    let quoted: Vec<String> = std::iter::once(cli_binary().display().to_string())
        .chain(args.iter().map(|a| a.to_string()))
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    // The environment of a normal run, carried over to `script` (which passes it on to the
    // command it runs through $SHELL -c).
    let template = base_command(home);
    let mut cmd = Command::new(script);
    cmd.args(["-qfec", &quoted.join(" "), "/dev/null"]);
    for (k, v) in template.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.env("SHELL", "/bin/sh").env("TERM", "dumb");
    cmd.stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("start script");
    let stdin = child.stdin.take();
    Run::capture(child, stdin)
}

// -------------------------------------------------------------------------------------------
// Playing the user

/// Opens a headless authorization URL as the user would (on another device): the emulator's
/// page shows the code in `<code id="code">`; returns it.
pub fn code_shown_for(auth_url: &Url) -> String {
    let page = Browser::new().get(auth_url);
    assert_eq!(page.status, 200, "{page:?}");
    let marker = "<code id=\"code\">";
    let start = page
        .body
        .find(marker)
        .unwrap_or_else(|| panic!("no code on the page: {}", page.body))
        + marker.len();
    let end = start + page.body[start..].find('<').expect("a closed <code>");
    page.body[start..end].to_owned()
}

/// Loads a loopback authorization URL without following the redirect; returns where the
/// browser would go next (`http://localhost:PORT/callback/<nonce>?code=…`).
pub fn redirect_target(auth_url: &Url) -> Url {
    let page = Browser::new().get(auth_url);
    assert_eq!(page.status, 302, "{page:?}");
    page.location.expect("a Location")
}

/// The value of the `key_label` the emulator saw last.
pub fn last_key_label(emulator: &Emulator) -> Option<String> {
    emulator
        .authorize_requests()
        .last()
        .expect("an authorization request")
        .key_label
        .clone()
}

/// Signs in through the CLI in loopback mode (a scripted browser follows the URL) into
/// `store`; returns the key the emulator issued.
pub fn sign_in(emulator: &Emulator, home: &Path, store: &str) -> String {
    let mut r = Run::login(
        &emulator.base_url(),
        home,
        store,
        &["--no-browser", "--force"],
        &[],
        Stdin::Null,
    );
    let url = r.authorization_url();
    Browser::new().follow(&url);
    let f = r.finish();
    assert_eq!(f.code, Some(0), "{f:#?}");
    emulator.issued_keys().last().expect("a key").key.clone()
}

/// `https://…/keys/<64 lowercase hex>`-shaped key page under `base` for `key`.
pub fn key_page(base: &Url, key: &str) -> String {
    openrouter_auth::core::ApiKey::new(key)
        .key_page_url(base)
        .to_string()
}

/// Asserts `page` is `base/keys/` followed by 64 lowercase hex digits.
pub fn assert_key_page_shape(page: &str, base: &Url) {
    let prefix = base.join("/keys/").unwrap().to_string();
    let hash = page
        .strip_prefix(&prefix)
        .unwrap_or_else(|| panic!("{page} does not start with {prefix}"));
    assert_eq!(hash.len(), 64, "{page}");
    assert!(
        hash.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{page}"
    );
}

// -------------------------------------------------------------------------------------------
// A fake OpenRouter whose key check fails

/// Answers `POST /api/v1/auth/keys` with [`FAKE_KEY`] and `GET /api/v1/key` with
/// `key_status` (and an error body), on 127.0.0.1. Stops when dropped.
pub struct FakeOpenRouter {
    pub url: Url,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl FakeOpenRouter {
    /// Starts it.
    pub fn start(key_status: u16) -> FakeOpenRouter {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = Url::parse(&format!("http://{}", listener.local_addr().unwrap())).unwrap();
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stop2 = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stop2.load(std::sync::atomic::Ordering::SeqCst) {
                match listener.accept() {
                    Ok((s, _)) => serve_one(s, key_status),
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        });
        FakeOpenRouter {
            url,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for FakeOpenRouter {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn serve_one(mut s: std::net::TcpStream, key_status: u16) {
    s.set_nonblocking(false).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let length: usize = head
        .lines()
        .find_map(|l| {
            let (n, v) = l.split_once(':')?;
            n.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    while buf.len() < head_end + length {
        match s.read(&mut chunk) {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let (status, body) = if head.starts_with("POST /api/v1/auth/keys ") {
        (
            200,
            serde_json::json!({"key": FAKE_KEY, "user_id": "user_1"}).to_string(),
        )
    } else if head.starts_with("GET /api/v1/key ") {
        (
            key_status,
            serde_json::json!({"error": {"code": key_status, "message": "Internal Server Error"}})
                .to_string(),
        )
    } else {
        (404, "{}".to_string())
    };
    let _ = write!(
        s,
        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}
