//! Helpers for the issue-6 CLI tests (headless, paste, status, logout, keyring): the
//! `openrouter-auth` binary with a writable standard input and a controlled environment, a
//! pseudo-terminal through `script(1)`, and a tiny fake OpenRouter whose key check fails.
#![allow(dead_code)] // each test file uses a different part of this module

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use openrouter_auth_sim::emulator::Emulator;
pub use openrouter_auth_tests::Stdin;
use openrouter_auth_tests::{cli_binary, command, Browser, Cli, Finished, Stream, STEP_TIMEOUT};
use url::Url;

/// A key in OpenRouter's format (not issued by any emulator).
pub const FAKE_KEY: &str =
    "sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// A running `openrouter-auth` ([`Cli`], whose methods it has) that is consumed when it is
/// waited for.
pub struct Run(Cli);

impl std::ops::Deref for Run {
    type Target = Cli;
    fn deref(&self) -> &Cli {
        &self.0
    }
}

impl std::ops::DerefMut for Run {
    fn deref_mut(&mut self) -> &mut Cli {
        &mut self.0
    }
}

impl Run {
    /// Starts `openrouter-auth args…` with the base environment ([`command`]) plus `env`.
    pub fn start(home: &Path, args: &[&str], env: &[(&str, &str)], stdin: Stdin) -> Run {
        Run(Cli::start(home, args, env, stdin))
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

    /// Human mode: the indented authorization URL on stderr.
    pub fn authorization_url(&mut self) -> Url {
        let line = self.wait_line(Stream::Stderr, |l| {
            l.starts_with("  http") && l.contains("/auth?")
        });
        Url::parse(line.trim()).expect("the indented line is the authorization URL")
    }

    /// Waits (at most [`STEP_TIMEOUT`]) for the exit.
    pub fn finish(self) -> Finished {
        self.finish_within(STEP_TIMEOUT)
    }

    /// Waits at most `limit` for the exit; kills the process and panics after that.
    pub fn finish_within(mut self, limit: Duration) -> Finished {
        self.0.finish_within(limit)
    }
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
    let template = command(home);
    let mut cmd = Command::new(script);
    cmd.args(["-qfec", &quoted.join(" "), "/dev/null"]);
    for (k, v) in template.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    cmd.env("SHELL", "/bin/sh").env("TERM", "dumb");
    cmd.stdin(Stdio::piped());
    Run(Cli::capture(cmd))
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
