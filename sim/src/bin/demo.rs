//! `demo`: a complete "Sign in with OpenRouter" on a machine with no network.
//!
//! Starts the OpenRouter emulator in-process and runs the real login code path
//! (`openrouter_auth::login`, which the `openrouter-auth login` command wraps) against it with
//! a temporary credentials file, while a scripted browser does what a browser does: follows the
//! authorize redirect, asks for `/favicon.ico`, holds an idle preconnect open, then loads the
//! callback and reads the page. `--browser chromium` uses a real headless Chromium instead;
//! `--fault NAME` shows what a failure looks like to the user.
#![forbid(unsafe_code)]

use clap::{Parser, ValueEnum};
use openrouter_auth::core::KeyLabel;
use openrouter_auth::{
    login, CancelHandle, LoginError, LoginEvent, LoginOptions, ReplacePolicy, StoreEnv, StoreSpec,
};
use openrouter_auth_sim::emulator::{Emulator, Fault, Mode};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::sync::mpsc;
use std::time::Duration;

#[derive(Parser)]
#[command(about = "A full sign-in against the built-in OpenRouter emulator, step by step")]
struct Args {
    /// Who plays the browser.
    #[arg(long, value_enum, default_value_t = BrowserKind::Scripted)]
    browser: BrowserKind,
    /// Show a failure instead of a success.
    #[arg(long, value_enum)]
    fault: Option<DemoFault>,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq)]
enum BrowserKind {
    /// A scripted browser (raw HTTP), always available.
    Scripted,
    /// A real headless Chromium (`/usr/bin/chromium`, or $CHROMIUM).
    Chromium,
}

#[derive(Clone, Copy, ValueEnum, PartialEq, Eq, Debug)]
enum DemoFault {
    /// The user presses Deny on the consent page.
    Denied,
    /// The code is used after its 10 minutes.
    Expired,
    /// OpenRouter answers 500.
    ServerError,
    /// OpenRouter answers 429 with Retry-After.
    RateLimited,
    /// OpenRouter answers 409.
    Conflict,
    /// OpenRouter's answer is not JSON.
    MalformedJson,
    /// OpenRouter answers 200 without a key.
    NoKey,
    /// The key cannot be written: the store's directory becomes a file during the sign-in.
    StoreFails,
}

fn step(actor: &str, text: impl AsRef<str>) {
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "[{actor:<8}] {}", text.as_ref());
}

/// Shows a URL with the secret-bearing parts cut: the code, the nonce (in the callback path,
/// plain or percent-encoded, and as `state`).
fn redact(url: &str) -> String {
    let mut out = url.to_string();
    for param in ["code=", "state="] {
        let mut from = 0;
        while let Some(i) = out[from..].find(param).map(|i| i + from) {
            let boundary = i == 0 || matches!(out.as_bytes()[i - 1], b'?' | b'&');
            let end = out[i..].find('&').map_or(out.len(), |j| i + j);
            if boundary {
                out.replace_range(i + param.len()..end, "…");
            }
            from = i + param.len();
        }
    }
    for marker in ["/callback/", "%2Fcallback%2F"] {
        if let Some(i) = out.find(marker) {
            let start = i + marker.len();
            let end = out[start..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                .map_or(out.len(), |j| start + j);
            out.replace_range(start..end, "<nonce>");
        }
    }
    out
}

fn main() -> ExitCode {
    let args = Args::parse();
    let tmp = tempfile::tempdir().expect("a temporary directory");
    step(
        "demo",
        "a full sign-in against the built-in OpenRouter emulator (no network needed)",
    );

    let emulator = Emulator::start_blocking();
    let base = emulator.base_url();
    step(
        "emulator",
        format!("OpenRouter emulator listening on {base}"),
    );
    match args.fault {
        Some(DemoFault::Denied) => emulator.set_mode(Mode::Consent),
        Some(DemoFault::ServerError) => emulator.inject_fault(Fault::InternalError),
        Some(DemoFault::RateLimited) => emulator.inject_fault(Fault::RateLimited {
            retry_after_secs: 30,
        }),
        Some(DemoFault::Conflict) => emulator.inject_fault(Fault::Conflict),
        Some(DemoFault::MalformedJson) => emulator.inject_fault(Fault::MalformedJson),
        Some(DemoFault::NoKey) => emulator.inject_fault(Fault::OkWithoutKey),
        _ => {}
    }
    if let Some(f) = args.fault {
        step("emulator", format!("fault switched on: {f:?}"));
    }

    let store_dir = tmp.path().join("openrouter-auth");
    let store_path = store_dir.join("credentials.json");
    let options = LoginOptions::default()
        .base_url(base.clone())
        .key_label(KeyLabel::new("openrouter-auth demo").expect("valid label"))
        .store(StoreSpec::File(Some(store_path)))
        .store_env(StoreEnv::default().home(tmp.path().to_path_buf()))
        .open_browser(false)
        .timeout(Duration::from_secs(60))
        // The decisions `openrouter-auth login` leaves to the library, taken the same way:
        // a key already there is not replaced unasked (the demo cannot ask), no listener
        // means headless, and the new key is checked after storing.
        .replace(ReplacePolicy::Refuse)
        .headless_fallback(true)
        .check_key(true);

    let (url_tx, url_rx) = mpsc::channel();
    let cancel = CancelHandle::new();
    let login_thread = std::thread::spawn(move || {
        let mut observer = move |e: LoginEvent| match e {
            LoginEvent::Listening { port, ipv6 } => step(
                "login",
                format!(
                    "loopback server listening on 127.0.0.1{} port {port}",
                    if ipv6 { " and [::1]" } else { "" }
                ),
            ),
            LoginEvent::AuthorizationUrl {
                url, callback_url, ..
            } => {
                step(
                    "login",
                    format!("authorization URL: {}", redact(url.as_str())),
                );
                let _ = url_tx.send((url, callback_url));
            }
            LoginEvent::BrowserOpened | LoginEvent::Storing => {}
            LoginEvent::BrowserFailed { reason } => step("login", format!("browser: {reason}")),
            LoginEvent::Exchanging { attempt } => step(
                "login",
                format!(
                    "callback received; exchanging the code with OpenRouter (attempt {attempt})"
                ),
            ),
            LoginEvent::PasteRejected { reason } => step("login", reason),
            _ => {}
        };
        login(&options, &mut observer, &CancelHandle::new())
    });
    drop(cancel);

    let Ok((auth_url, callback_url)) = url_rx.recv_timeout(Duration::from_secs(10)) else {
        step("demo", "the login never produced an authorization URL");
        return ExitCode::from(1);
    };
    let callback_url = callback_url.expect("loopback mode has a callback URL");
    if args.fault == Some(DemoFault::StoreFails) {
        // After the start, where `login` checks the store, and before the key arrives: a
        // store broken from the start is refused before anything is signed in.
        std::fs::write(&store_dir, b"").expect("temp file");
        step(
            "demo",
            format!(
                "made {} a file, so the store cannot create its directory",
                store_dir.display()
            ),
        );
    }
    let browser_result = match args.browser {
        BrowserKind::Scripted => scripted_browser(&emulator, &auth_url, &callback_url, args.fault),
        BrowserKind::Chromium => chromium_browser(&emulator, &auth_url, args.fault),
    };
    if let Err(e) = browser_result {
        step("browser", format!("error: {e}"));
    }
    let result = login_thread
        .join()
        .expect("the login thread does not panic");
    report(result)
}

fn report(result: Result<openrouter_auth::LoginOutcome, LoginError>) -> ExitCode {
    match result {
        Ok(done) => {
            let stored = &done.stored[0];
            let mode = stored.mode.map_or("n/a".into(), |m| format!("{m:04o}"));
            let path = stored
                .path
                .as_ref()
                .map_or("-".into(), |p| p.display().to_string());
            step("login", "signed in");
            step("login", format!("key:    {}", done.key.hint()));
            step("login", format!("stored: {path}"));
            step("login", format!("mode:   {mode}"));
            // The key check after storing is the library's, as in `openrouter-auth login`.
            match &done.key_check {
                Some(Ok(info)) => step(
                    "login",
                    format!(
                        "key check: valid (label {:?})",
                        info.label.as_deref().unwrap_or("-")
                    ),
                ),
                Some(Err(e)) => step("login", format!("warning: the key check failed: {e}")),
                None => {}
            }
            println!(
                "signed in: key {} stored in {path} (mode {mode})",
                done.key.hint()
            );
            ExitCode::SUCCESS
        }
        Err(LoginError::KeyNotStored { key, reason, .. }) => {
            step(
                "login",
                format!("error: signed in, but the key could not be stored: {reason}"),
            );
            step(
                "login",
                format!(
                    "the key is handed to the user instead ({}), never lost",
                    key.hint()
                ),
            );
            println!(
                "failed (key_not_stored): signed in, but the key could not be stored: {reason}"
            );
            ExitCode::from(6)
        }
        Err(e) => {
            step("login", format!("error: {e}"));
            println!("failed ({}): {e}", e.kind());
            ExitCode::from(match e.kind() {
                "denied" => 3,
                "timed_out" => 4,
                "cancelled" => 130,
                _ => 5,
            })
        }
    }
}

/// One HTTP/1.1 GET over a fresh connection; returns status, headers and body.
fn http_get(
    host_port: &str,
    host_header: &str,
    target: &str,
) -> std::io::Result<(u16, String, String)> {
    let mut s = TcpStream::connect(host_port)?;
    s.set_read_timeout(Some(Duration::from_secs(40)))?;
    write!(
        s,
        "GET {target} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: openrouter-auth-demo-browser\r\nAccept: text/html\r\nConnection: close\r\n\r\n"
    )?;
    let mut raw = Vec::new();
    s.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    Ok((status, head.to_string(), body.to_string()))
}

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (n, v) = l.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

fn title(body: &str) -> String {
    body.split_once("<h1>")
        .and_then(|(_, r)| r.split_once("</h1>"))
        .map_or_else(|| "(no title)".into(), |(t, _)| t.to_string())
}

/// The consent page's Deny link (the emulator's `/auth/deny?request=…`).
fn deny_link(consent_page: &str) -> Result<String, String> {
    consent_page
        .split("href=\"")
        .filter_map(|s| s.split('"').next())
        .find(|h| h.contains("/auth/deny"))
        .map(|h| h.replace("&amp;", "&"))
        .ok_or_else(|| "no Deny link on the consent page".to_string())
}

fn target_of(url: &url::Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

fn scripted_browser(
    emulator: &Emulator,
    auth_url: &url::Url,
    callback_url: &url::Url,
    fault: Option<DemoFault>,
) -> Result<(), String> {
    let emu_addr = emulator.address().to_string();
    let (status, head, body) =
        http_get(&emu_addr, &emu_addr, &target_of(auth_url)).map_err(|e| e.to_string())?;
    let location = if fault == Some(DemoFault::Denied) {
        step(
            "browser",
            format!("GET /auth → {status}, the consent page; the user clicks Deny"),
        );
        let deny = deny_link(&body)?;
        let (status, head, _) = http_get(&emu_addr, &emu_addr, &deny).map_err(|e| e.to_string())?;
        let loc = header(&head, "location")
            .ok_or("no redirect after Deny")?
            .to_string();
        step(
            "browser",
            format!("GET /auth/deny → {status} to {}", redact(&loc)),
        );
        loc
    } else {
        let loc = header(&head, "location")
            .ok_or("the authorize page did not redirect")?
            .to_string();
        step(
            "browser",
            format!("GET /auth → {status} to {}", redact(&loc)),
        );
        loc
    };
    if fault == Some(DemoFault::Expired) {
        emulator.advance_clock(Duration::from_secs(11 * 60));
        step(
            "emulator",
            "clock moved 11 minutes ahead: the code has expired",
        );
    }
    let cb: url::Url = location.parse().map_err(|e| format!("bad redirect: {e}"))?;
    let port = callback_url.port().ok_or("callback URL without port")?;
    let local = format!("127.0.0.1:{port}");
    let host_header = format!("localhost:{port}");

    let preconnect = TcpStream::connect(&local).map_err(|e| e.to_string())?;
    step(
        "browser",
        format!("opened an idle preconnect to {host_header} (it sends nothing)"),
    );

    let (status, _, _) =
        http_get(&local, &host_header, "/favicon.ico").map_err(|e| e.to_string())?;
    step(
        "browser",
        format!("GET /favicon.ico → {status}; the sign-in keeps waiting"),
    );

    step(
        "browser",
        format!(
            "GET {} (our server answers once the result is known)",
            redact(&target_of(&cb))
        ),
    );
    let (status, head, body) =
        http_get(&local, &host_header, &target_of(&cb)).map_err(|e| e.to_string())?;
    let final_body = if status == 303 {
        let done = header(&head, "location")
            .ok_or("303 without Location")?
            .to_string();
        let leaves = if fault == Some(DemoFault::Denied) {
            "the error"
        } else {
            "the code"
        };
        step(
            "browser",
            format!(
                "← 303 See Other to {} ({leaves} leaves the address bar)",
                redact(&done)
            ),
        );
        let (status, _, body) = http_get(&local, &host_header, &done).map_err(|e| e.to_string())?;
        step("browser", format!("GET {} → {status}", redact(&done)));
        body
    } else {
        step("browser", format!("← {status}"));
        body
    };
    step(
        "browser",
        format!("the page says: \"{}\"", title(&final_body)),
    );
    drop(preconnect);
    Ok(())
}

fn chromium_browser(
    emulator: &Emulator,
    auth_url: &url::Url,
    fault: Option<DemoFault>,
) -> Result<(), String> {
    let bin = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if !std::path::Path::new(&bin).exists() {
        return Err(format!("{bin} not found: install it with `apt-get install -y chromium`, or use --browser scripted"));
    }
    let mut url = auth_url.clone();
    if fault == Some(DemoFault::Expired) {
        // The code must be issued before the clock moves: fetch /auth here for the redirect
        // that carries it, move the clock 11 minutes, and let Chromium take that redirect.
        let emu = emulator.address().to_string();
        let (_, head, _) = http_get(&emu, &emu, &target_of(auth_url)).map_err(|e| e.to_string())?;
        let location = header(&head, "location").ok_or("the authorize page did not redirect")?;
        url = location.parse().map_err(|e| format!("bad redirect: {e}"))?;
        emulator.advance_clock(Duration::from_secs(11 * 60));
        step(
            "emulator",
            "code issued, then the clock moved 11 minutes ahead: the code has expired",
        );
    }
    if fault == Some(DemoFault::Denied) {
        // Consent mode: load the consent page here to mint a request id; Chromium goes to Deny.
        let emu = emulator.address().to_string();
        let (_, _, body) = http_get(&emu, &emu, &target_of(auth_url)).map_err(|e| e.to_string())?;
        let deny = deny_link(&body)?;
        url = emulator.base_url().join(&deny).map_err(|e| e.to_string())?;
    }
    let profile = tempfile::tempdir().map_err(|e| e.to_string())?;
    step(
        "browser",
        format!("headless Chromium opens {}", redact(url.as_str())),
    );
    let out = std::process::Command::new(&bin)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--dump-dom",
        ])
        .arg(format!("--user-data-dir={}", profile.path().display()))
        .arg(url.as_str())
        .stderr(std::process::Stdio::null())
        .output()
        .map_err(|e| format!("could not run {bin}: {e}"))?;
    let dom = String::from_utf8_lossy(&out.stdout);
    step(
        "browser",
        format!("Chromium ended on a page that says: \"{}\"", title(&dom)),
    );
    Ok(())
}
