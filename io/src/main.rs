//! `openrouter-auth`: sign in with OpenRouter from a terminal and store the API key where
//! your tools look for it.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use openrouter_auth::core::{self, CallbackHost, KeyLabel};
use openrouter_auth::terminal::{escape, escape_text};
use openrouter_auth::{
    default_key_label, headless_reason, login, EnvSnapshot, LoginError, LoginEvent, LoginHandle,
    LoginOptions, StoreEnv, StoreError, StoreSpec,
};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Exit codes (documented in the README and in `--help`) and the table that picks them.
mod exit;

const EXIT_CODES: &str = "Exit codes:
  0    signed in (login), key valid (status), done (logout)
  1    other error (port busy, unreadable store, a key already stored and no --force, …)
  2    usage error
  3    access denied in the browser
  4    timed out waiting for the browser or a pasted code
  5    the code exchange failed (OpenRouter or network)
  6    signed in but the key could not be stored (the key is printed once)
  7    the stored key is not valid (status)
  8    no key stored (status, token)
  130  cancelled (Ctrl-C)";

#[derive(Parser)]
#[command(name = "openrouter-auth", version, about = "Sign in with OpenRouter and store the API key where your tools look for it", after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sign in (OAuth PKCE) and store a new API key.
    ///
    /// By default the browser on this machine is used and, at the same time, a code or the
    /// address the browser ended on can be pasted into the terminal: the first valid one wins.
    /// Over SSH, in a container or without a display, headless sign-in is chosen instead (open
    /// the URL on any device, paste the code OpenRouter shows); --headless / --no-headless
    /// decide it yourself.
    #[command(after_help = EXIT_CODES)]
    Login(LoginArgs),
    /// Find the stored key and check it with OpenRouter.
    ///
    /// Without --store, looks in the credentials file, opencode, aider, llm, crush, goose and
    /// the keyring, in that order; the first key found decides the exit code (0 valid, 7 not valid, 8 none).
    #[command(after_help = EXIT_CODES)]
    Status(StatusArgs),
    /// Print the stored key, and nothing else, on standard output: for
    /// `export OPENROUTER_API_KEY=$(openrouter-auth token)`.
    ///
    /// Looks in the same stores, in the same order, as `status`, and prints the first key
    /// found followed by a newline; the key is not checked with OpenRouter. Without a key it
    /// prints nothing there, says so on standard error and exits 8.
    #[command(after_help = EXIT_CODES)]
    Token(TokenArgs),
    /// Remove the stored key from this machine. This does not revoke it: delete it on its
    /// OpenRouter page, which is printed.
    #[command(after_help = EXIT_CODES)]
    Logout(LogoutArgs),
}

#[derive(clap::Args)]
struct Common {
    /// OpenRouter's address: https, or plain http on localhost/127.0.0.1/[::1] (an emulator
    /// for testing).
    #[arg(long, env = "OPENROUTER_AUTH_BASE_URL", default_value = core::DEFAULT_BASE_URL, value_name = "URL", value_parser = parse_base_url)]
    base_url: url::Url,
    /// One JSON object per line on stdout instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct LoginArgs {
    /// Where the key is kept: file, file:PATH, opencode, aider, env-file:PATH, stdout, keyring,
    /// llm, crush, goose.
    #[arg(long, default_value = "file", value_name = "KIND")]
    store: StoreSpec,
    #[command(flatten)]
    common: Common,
    /// Print the URL but do not launch a browser (the callback is still awaited, and a code
    /// or the browser's address can be pasted).
    #[arg(long)]
    no_browser: bool,
    /// Sign in without a browser on this machine: open the URL on any device and paste the
    /// code OpenRouter shows. No loopback listener is opened.
    #[arg(long, conflicts_with_all = ["no_headless", "port"])]
    headless: bool,
    /// Never choose headless sign-in by itself (over SSH, in containers, without a display):
    /// wait for the browser's callback (pasting still works).
    #[arg(long)]
    no_headless: bool,
    /// Sign in even if the store already holds an OpenRouter key. The old key is replaced
    /// here but keeps working until you revoke it on its OpenRouter page.
    #[arg(long)]
    force: bool,
    /// Loopback port for the callback (default: any free port).
    #[arg(long, default_value_t = 0, value_name = "N")]
    port: u16,
    /// Host name in the callback URL.
    #[arg(long, default_value = "localhost", value_name = "localhost|127.0.0.1")]
    callback_host: CallbackHost,
    /// Seconds to wait for the browser or a pasted code.
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    timeout: u64,
    /// Name of the new key in your OpenRouter key list (at most 100 characters). Default:
    /// "openrouter-auth on <hostname> <YYYY-MM-DD>".
    #[arg(long, value_name = "TEXT", value_parser = parse_label)]
    key_label: Option<KeyLabel>,
}

/// `https`, or plain `http` only on a loopback host (an emulator): the code verifier, the
/// code and the API key must never cross a network unencrypted.
fn parse_base_url(s: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(s).map_err(|e| e.to_string())?;
    match core::base_url_is_secure(&url) {
        true => Ok(url),
        false => Err(
            "it must be an https URL (plain http only on localhost, 127.0.0.1 or [::1], for an emulator): the code verifier and the API key would otherwise travel unencrypted"
                .to_string(),
        ),
    }
}

fn parse_label(s: &str) -> Result<KeyLabel, String> {
    KeyLabel::new(s).map_err(|e| e.to_string())
}

#[derive(clap::Args)]
struct StatusArgs {
    /// Which store to check (default: look in file, opencode, aider, llm, crush, goose and
    /// keyring).
    #[arg(long, value_name = "KIND")]
    store: Option<StoreSpec>,
    #[command(flatten)]
    common: Common,
}

#[derive(clap::Args)]
struct TokenArgs {
    /// Which store to read (default: the first of file, opencode, aider, llm, crush, goose
    /// and keyring that holds a key).
    #[arg(long, value_name = "KIND")]
    store: Option<StoreSpec>,
}

#[derive(clap::Args)]
struct LogoutArgs {
    /// Which store to remove the key from (default: file).
    #[arg(long, value_name = "KIND", conflicts_with = "all")]
    store: Option<StoreSpec>,
    /// Remove the key from every store that holds one (file, opencode, aider, llm, crush,
    /// goose, keyring).
    #[arg(long)]
    all: bool,
    #[command(flatten)]
    common: Common,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .without_time()
        .try_init();
    let code = match cli.command {
        Command::Login(args) => run_login(args),
        Command::Status(args) => run_status(args),
        Command::Token(args) => run_token(args),
        Command::Logout(args) => run_logout(args),
    };
    ExitCode::from(code)
}

/// Human output on stderr, or JSON lines on stdout. Neither lets a control character from
/// outside through (issue 12, rule 4): text lines go through [`escape_text`], JSON lines are
/// [`openrouter_auth::terminal::json_line`].
#[derive(Clone)]
struct Ui {
    json: bool,
    fancy: bool,
    spinner: Arc<Mutex<Option<ProgressBar>>>,
}

impl Ui {
    fn new(json: bool) -> Self {
        let fancy =
            !json && std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        Ui {
            json,
            fancy,
            spinner: Arc::new(Mutex::new(None)),
        }
    }

    fn line(&self, s: &str) {
        self.stop_spinner();
        if !self.json {
            eprintln!("{}", escape_text(s));
        }
    }

    fn json(&self, v: serde_json::Value) {
        if self.json {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", openrouter_auth::terminal::json_line(&v));
            let _ = out.flush();
        }
    }

    /// "Waiting for the browser": a spinner with the time left when stderr is a terminal and
    /// `spinner` allows it (not while the user may be typing a paste: the spinner would
    /// redraw over the input), else one line.
    fn start_waiting(&self, deadline: Instant, spinner: bool) {
        if !self.fancy || !spinner {
            if !self.json {
                eprintln!("Waiting for the browser (Ctrl-C to cancel)…");
            }
            return;
        }
        let pb = ProgressBar::new_spinner();
        pb.set_style(ProgressStyle::with_template("{spinner} {msg}").expect("valid template"));
        pb.enable_steady_tick(Duration::from_millis(120));
        *self.spinner.lock().unwrap_or_else(|p| p.into_inner()) = Some(pb.clone());
        let spinner = self.spinner.clone();
        std::thread::spawn(move || loop {
            let left = deadline.saturating_duration_since(Instant::now()).as_secs();
            pb.set_message(format!(
                "Waiting for the browser… {}:{:02} left (Ctrl-C to cancel)",
                left / 60,
                left % 60
            ));
            std::thread::sleep(Duration::from_millis(500));
            if spinner.lock().unwrap_or_else(|p| p.into_inner()).is_none() {
                return;
            }
        });
    }

    fn stop_spinner(&self) {
        if let Some(pb) = self
            .spinner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
        {
            pb.finish_and_clear();
        }
    }
}

/// Whether standard input, output and error are terminals, read once.
#[derive(Clone, Copy)]
struct Ttys {
    stdin: bool,
    stdout: bool,
    stderr: bool,
}

impl Ttys {
    fn detect() -> Self {
        Ttys {
            stdin: std::io::stdin().is_terminal(),
            stdout: std::io::stdout().is_terminal(),
            stderr: std::io::stderr().is_terminal(),
        }
    }
}

/// Reads standard input line by line on its own thread and hands each non-empty line to the
/// login as pasted text. Never blocks the login: at end of input (a closed stdin, a pipe
/// whose writer is gone) or on a read error the thread tells the login and ends quietly.
fn spawn_paste_reader(handle: LoginHandle) {
    /// Longest line read at once; anything longer arrives in pieces, which the flow refuses.
    const MAX_LINE: usize = 8 * 1024;
    std::thread::spawn(move || {
        use std::io::{BufRead, Read};
        let stdin = std::io::stdin();
        let mut lock = stdin.lock();
        // Sized once so reading never reallocates (a reallocation would leave an unzeroized
        // copy of a pasted code behind).
        let mut buf = zeroize::Zeroizing::new(Vec::with_capacity(MAX_LINE + 1));
        loop {
            buf.clear();
            match (&mut lock)
                .take(MAX_LINE as u64)
                .read_until(b'\n', &mut buf)
            {
                Ok(0) | Err(_) => {
                    handle.close_pastes();
                    return;
                }
                Ok(_) => {
                    let text = String::from_utf8_lossy(&buf);
                    let text = zeroize::Zeroizing::new(text.trim().to_owned());
                    if !text.is_empty() {
                        handle.paste(&text);
                    }
                }
            }
        }
    });
}

/// The authorization URL as a QR code for the terminal (two modules per character cell).
fn qr_code(url: &url::Url) -> Option<String> {
    use qrcode::render::unicode::Dense1x2;
    let code =
        qrcode::QrCode::with_error_correction_level(url.as_str(), qrcode::EcLevel::L).ok()?;
    Some(
        code.render::<Dense1x2>()
            .dark_color(Dense1x2::Light)
            .light_color(Dense1x2::Dark)
            .quiet_zone(true)
            .build(),
    )
}

fn money(v: Option<f64>) -> String {
    v.map_or("none".to_string(), |v| format!("${v:.2}"))
}

fn yes_no(v: Option<bool>) -> &'static str {
    v.map_or("unknown", |f| if f { "yes" } else { "no" })
}

/// The indented description of a checked key (status and after login). The label is
/// OpenRouter's text: escaped, so it stays on its line.
fn key_info_lines(info: &core::KeyInfo, page: &url::Url) -> String {
    format!(
        "  label:     {}\n  usage:     {}\n  limit:     {}\n  free tier: {}\n  key page:  {page}\n             (see usage there, or revoke the key)",
        escape(info.label.as_deref().unwrap_or("-")),
        money(info.usage),
        money(info.limit),
        yes_no(info.is_free_tier),
    )
}

fn key_info_json(info: &core::KeyInfo) -> serde_json::Value {
    serde_json::json!({
        "label": info.label, "usage": info.usage, "limit": info.limit,
        "limit_remaining": info.limit_remaining, "is_free_tier": info.is_free_tier,
    })
}

/// Asks a yes/no question on stderr and reads the answer from stdin (a terminal).
fn ask_yes_no(question: &str) -> bool {
    use std::io::BufRead;
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}

/// Point 7 of issue 6: a store that already holds an OpenRouter key is not overwritten
/// unseen. `Ok(())` to go on, `Err(exit code)` to stop.
fn confirm_replacing(args: &LoginArgs, ui: &Ui, ttys: Ttys, env: &StoreEnv) -> Result<(), u8> {
    if matches!(args.store, StoreSpec::Stdout) {
        return Ok(());
    }
    let fail = |kind: &str, message: String| {
        ui.json(serde_json::json!({
            "event": "failed", "error": {"kind": kind, "message": message},
        }));
        ui.line(&format!("error: {message}"));
        exit::ERROR
    };
    let store = openrouter_auth::open_store(&args.store, env).map_err(|e| {
        let e = exit::store_message(&e);
        fail("store_unavailable", format!("{e}; nothing was signed in"))
    })?;
    // A store that cannot be read now cannot be written after signing in either (a file that
    // is not JSON is never clobbered; no keychain is no keychain): mint nothing.
    let existing = match store.load() {
        Ok(existing) => existing,
        // An OpenRouter entry this tool cannot read (`"openrouter": "x"` in opencode's file,
        // an unterminated quote in a dotenv line), in a file `store` would rewrite: replaced
        // only on the same terms as a key.
        Err(
            e @ (StoreError::Malformed { .. } | StoreError::NotAnObject { entry: Some(_), .. }),
        ) if store.preflight().is_ok() => {
            return confirm_replacing_unreadable(args, ui, ttys, &store.describe(), &e, fail);
        }
        Err(e @ StoreError::KeyringUnavailable { .. }) => {
            return Err(fail("store_unavailable", exit::store_message(&e)))
        }
        Err(e) => {
            let e = exit::store_message(&e);
            return Err(fail(
                "store_unavailable",
                format!("{e}; nothing was signed in (a new key could not be stored there)"),
            ));
        }
    };
    store.preflight().map_err(|e| {
        let e = exit::store_message(&e);
        fail("store_unavailable", format!("{e}; nothing was signed in"))
    })?;
    let Some(old) = existing else {
        return Ok(());
    };
    let page = old.key_page_url(&args.common.base_url);
    if args.force {
        ui.line(&format!(
            "Replacing the OpenRouter key {} in {} (--force). The old key keeps working until you revoke it at:\n  {page}",
            old.hint(),
            store.describe()
        ));
        return Ok(());
    }
    if !ui.json && ttys.stdin && ttys.stderr {
        eprintln!(
            "{} already holds an OpenRouter key ({}).\nSigning in creates another key; the old one keeps working until you revoke it at:\n  {page}",
            escape(&store.describe()),
            old.hint()
        );
        if ask_yes_no("Sign in and replace it here?") {
            return Ok(());
        }
        ui.line("Kept the existing key; nothing was signed in.");
        return Err(exit::ERROR);
    }
    Err(fail(
        "key_exists",
        format!(
            "{} already holds an OpenRouter key ({}); signing in would mint another. Pass --force to replace it (revoke the old one at {page}), or run `openrouter-auth logout{}` first",
            store.describe(),
            old.hint(),
            store_arg(&args.store)
        ),
    ))
}

/// [`confirm_replacing`] for a store whose OpenRouter entry cannot be read: `--force`, or a
/// yes on a terminal, replaces it; otherwise nothing is signed in.
fn confirm_replacing_unreadable(
    args: &LoginArgs,
    ui: &Ui,
    ttys: Ttys,
    describe: &str,
    e: &StoreError,
    fail: impl Fn(&str, String) -> u8,
) -> Result<(), u8> {
    if args.force {
        ui.line(&format!(
            "Replacing the OpenRouter entry this tool cannot read in {describe} (--force): {e}."
        ));
        return Ok(());
    }
    if !ui.json && ttys.stdin && ttys.stderr {
        eprintln!(
            "{}",
            escape_text(&format!(
                "{describe} has an OpenRouter entry this tool cannot read: {e}."
            ))
        );
        if ask_yes_no("Sign in and replace it here?") {
            return Ok(());
        }
        ui.line("Kept the file as it is; nothing was signed in.");
        return Err(exit::ERROR);
    }
    Err(fail(
        "entry_unreadable",
        format!(
            "{e}; signing in would replace that entry. Pass --force to replace it, or fix the file by hand; nothing was signed in"
        ),
    ))
}

fn run_login(args: LoginArgs) -> u8 {
    let ui = Ui::new(args.common.json);
    let ttys = Ttys::detect();
    let store_env = StoreEnv::from_process();
    if args.common.json && matches!(args.store, StoreSpec::Stdout) {
        // Both claim standard output: `--store stdout` promises the key and nothing else,
        // `--json` one JSON object per line. Nothing has been signed in yet.
        let message = "--json and --store stdout both write to standard output: use --store stdout alone to capture just the key, or --json with a store that keeps it";
        ui.json(serde_json::json!({
            "event": "failed", "error": {"kind": "usage", "message": message},
        }));
        ui.line(&format!("error: {message}"));
        return exit::USAGE;
    }
    if let Err(code) = confirm_replacing(&args, &ui, ttys, &store_env) {
        return code;
    }
    // Headless or loopback: the flags decide; without any of them, the environment does.
    let auto = !(args.headless || args.no_headless || args.no_browser);
    let detected = if auto {
        headless_reason(&EnvSnapshot::from_process())
    } else {
        None
    };
    if let Some(reason) = &detected {
        ui.line(&format!(
            "{reason}: using headless sign-in; --no-headless to wait for a browser callback instead."
        ));
    }
    let headless = args.headless || detected.is_some();
    let key_label = args
        .key_label
        .clone()
        .unwrap_or_else(|| default_key_label("openrouter-auth"));
    let mut options = LoginOptions {
        base_url: args.common.base_url.clone(),
        port: args.port,
        callback_host: args.callback_host,
        key_label: Some(key_label),
        timeout: Duration::from_secs(args.timeout),
        store: args.store.clone(),
        store_env,
        open_browser: !args.no_browser && !headless,
        headless,
        force: args.force,
        ..LoginOptions::default()
    };
    let handle = LoginHandle::new();
    let ctrl_c = handle.clone();
    let presses = std::sync::atomic::AtomicU32::new(0);
    let _ = ctrlc::set_handler(move || {
        if presses.fetch_add(1, std::sync::atomic::Ordering::SeqCst) > 0 {
            std::process::exit(exit::CANCELLED.into());
        }
        ctrl_c.cancel();
    });
    spawn_paste_reader(handle.clone());
    let deadline = Instant::now() + options.timeout;
    let mut result = login_once(&options, &ui, ttys, deadline, detected.as_ref(), &handle);
    if let Err(LoginError::Bind(e)) = &result {
        // Point 2 of issue 6: race both paths "when a loopback listener can be opened";
        // when it cannot, headless sign-in still works.
        if args.port == 0 && !args.no_headless {
            ui.line(&format!(
                "Could not open a loopback listener ({e}): using headless sign-in instead."
            ));
            options.headless = true;
            options.open_browser = false;
            result = login_once(&options, &ui, ttys, deadline, None, &handle);
        }
    }
    ui.stop_spinner();
    let stdout_store = matches!(options.store, StoreSpec::Stdout);
    match result {
        Ok(done) => {
            let mode = done
                .stored
                .mode
                .map(|m| format!(" (mode {m:04o})"))
                .unwrap_or_default();
            let page = done.key.key_page_url(&options.base_url);
            let check = openrouter_auth::check_key(&options.base_url, &done.key);
            let mut ev = serde_json::json!({
                "event": "signed_in",
                "store": options.store.to_string(),
                "location": done.stored.path.as_ref().map(|p| p.display().to_string()),
                "key_hint": done.key.hint(),
                "user_id": done.user_id,
                "key_label": options.key_label.as_ref().map(|l| l.as_str()),
                "key_page": page.as_str(),
            });
            match &check {
                Ok(info) => ev["key_check"] = key_info_json(info),
                Err(e) => {
                    ev["warning"] = serde_json::json!({"kind": e.kind(), "message": e.to_string()})
                }
            }
            ui.json(ev);
            if stdout_store {
                ui.line(&format!(
                    "Signed in. Key {} printed to standard output (not kept anywhere else).",
                    done.key.hint()
                ));
            } else {
                ui.line(&format!(
                    "Signed in. Key {} stored in {}{mode}.",
                    done.key.hint(),
                    done.stored.description
                ));
            }
            match &check {
                Ok(info) => ui.line(&key_info_lines(info, &page)),
                Err(e) => ui.line(&format!(
                    "warning: the key is stored, but checking it with OpenRouter failed: {e}.\n  key page:  {page}\n             (see usage there, or revoke the key)"
                )),
            }
            exit::OK
        }
        Err(e) => report_login_error(&ui, e, &options.base_url),
    }
}

/// One `login` call with the CLI's observer.
fn login_once(
    options: &LoginOptions,
    ui: &Ui,
    ttys: Ttys,
    deadline: Instant,
    detected: Option<&openrouter_auth::HeadlessReason>,
    handle: &LoginHandle,
) -> Result<openrouter_auth::LoginOutcome, LoginError> {
    let open_browser = options.open_browser;
    let ui2 = ui.clone();
    let reason = detected.map(|r| r.to_string());
    let mut observer = move |e: LoginEvent| match e {
        LoginEvent::Listening { port, ipv6 } => {
            tracing::debug!(port, ipv6, "listening");
        }
        LoginEvent::AuthorizationUrl {
            url,
            callback_url,
            headless,
        } => {
            ui2.json(serde_json::json!({
                "event": "authorization_url",
                "url": url.as_str(),
                "callback_url": callback_url.as_ref().map(|u| u.as_str()),
                "headless": headless,
                "headless_reason": reason,
            }));
            if headless {
                ui2.line(&format!(
                    "Open this URL on any device to sign in to OpenRouter:\n\n  {url}\n"
                ));
                if !ui2.json && ttys.stdout {
                    if let Some(qr) = qr_code(&url) {
                        let mut out = std::io::stdout().lock();
                        let _ = writeln!(out, "{qr}");
                        let _ = out.flush();
                    }
                }
                ui2.line("After you approve, OpenRouter shows a code. Paste it here and press Enter (Ctrl-C to cancel):");
                return;
            }
            if open_browser {
                ui2.line(&format!("Opening your browser to sign in to OpenRouter. If it does not open, visit:\n\n  {url}\n"));
            } else {
                ui2.line(&format!(
                    "Open this URL in a browser to sign in to OpenRouter:\n\n  {url}\n"
                ));
            }
            if ttys.stdin {
                ui2.line("Or paste the code or the address your browser ended on here:");
            }
            ui2.start_waiting(deadline, !ttys.stdin);
        }
        LoginEvent::BrowserOpened => {}
        LoginEvent::BrowserFailed { reason } => {
            ui2.line(&format!(
                "Could not open a browser ({reason}); open the URL above by hand."
            ));
            ui2.start_waiting(deadline, !ttys.stdin);
        }
        LoginEvent::Exchanging { attempt } => {
            if attempt == 1 {
                ui2.line("Got the authorization code. Exchanging it for a key…");
            } else {
                ui2.line(&format!("Retrying the code exchange (attempt {attempt})…"));
            }
        }
        LoginEvent::Storing => {}
        LoginEvent::PasteRejected { reason } => {
            ui2.json(serde_json::json!({"event": "paste_rejected", "reason": reason}));
            ui2.line(&format!("Not accepted: {reason}. Still waiting."));
        }
    };
    login(options, &mut observer, handle)
}

fn report_login_error(ui: &Ui, e: LoginError, base_url: &url::Url) -> u8 {
    let code = exit::login_failure(&e).code;
    let message = exit::login_message(&e);
    let mut ev = serde_json::json!({
        "event": "failed",
        "error": {"kind": e.kind(), "message": message},
    });
    if let LoginError::Flow(f) = &e {
        ev["error"]["party"] = exit::party_name(f.party()).into();
        ev["error"]["may_have_been_sent"] = f.may_have_been_sent().into();
        if f.may_have_been_sent() {
            // Where a key that never reached us can be revoked.
            let mut keys = base_url.clone();
            keys.set_path("/keys");
            keys.set_query(None);
            keys.set_fragment(None);
            ev["error"]["keys_url"] = keys.as_str().into();
        }
    }
    if let LoginError::KeyNotStored { key, .. } = &e {
        // The key exists only here now: hand it over once, on stdout.
        if ui.json {
            ev["key"] = serde_json::Value::String(key.expose_secret().to_owned());
        } else {
            eprintln!("{}", escape_text(&format!("error: {message}")));
            eprintln!("Your new key is below. It was not stored: keep it now.");
            println!("{}", key.expose_secret());
            return code;
        }
    }
    ui.json(ev);
    ui.line(&format!("error: {message}"));
    code
}

/// The stores `status` looks through and `logout --all` clears, in order.
fn known_stores() -> Vec<StoreSpec> {
    let mut v = vec![
        StoreSpec::File(None),
        StoreSpec::Opencode,
        StoreSpec::Aider,
        StoreSpec::Llm,
        StoreSpec::Crush,
        StoreSpec::Goose,
    ];
    if openrouter_auth::store::KEYRING_SUPPORTED {
        v.push(StoreSpec::Keyring);
    }
    v
}

/// A key found in a store.
struct Found {
    spec: StoreSpec,
    description: String,
    key: core::ApiKey,
}

/// Looks through `specs`; a store that cannot be opened (no home directory) or has no
/// keychain is skipped quietly, one that cannot be read is reported, skipped and listed in
/// the third element (its description and why).
fn find_keys(
    specs: &[StoreSpec],
    env: &StoreEnv,
    ui: &Ui,
) -> (Vec<Found>, Vec<String>, Vec<(String, String)>) {
    let mut found = Vec::new();
    let mut looked_in = Vec::new();
    let mut unreadable = Vec::new();
    for spec in specs {
        let Ok(store) = openrouter_auth::open_store(spec, env) else {
            continue;
        };
        match store.load() {
            Ok(Some(key)) => found.push(Found {
                spec: spec.clone(),
                description: store.describe(),
                key,
            }),
            Ok(None) => {}
            Err(StoreError::KeyringUnavailable { reason }) => {
                tracing::debug!(%reason, "keyring skipped");
                continue;
            }
            Err(e) => {
                let e = exit::store_message(&e);
                ui.line(&format!("warning: skipped {}: {e}", store.describe()));
                unreadable.push((store.describe(), e));
            }
        }
        looked_in.push(store.describe());
    }
    (found, looked_in, unreadable)
}

/// What to run about an invalid key in `spec`: commands that name that store (a bare
/// `login --force` would sign in to the default store and leave this one as it is). When the
/// store's file is one that both `login` and `logout` refuse to replace (a symbolic link), it
/// says so instead. Reads only: `status` writes nothing, so this is
/// [`openrouter_auth::store::check_replaceable`], not `KeyStore::preflight` and its probe.
fn replace_hint(spec: &StoreSpec, env: &StoreEnv) -> String {
    let store_arg = store_arg(spec);
    let refused = openrouter_auth::open_store(spec, env)
        .ok()
        .and_then(|s| s.location().map(openrouter_auth::store::check_replaceable))
        .and_then(Result::err);
    match refused {
        None => format!(
            "Sign in again with `openrouter-auth login --force{store_arg}`, or remove it with `openrouter-auth logout{store_arg}`."
        ),
        Some(e) => format!(
            "This tool will neither replace nor remove it there: {}.",
            exit::store_message(&e)
        ),
    }
}

/// ` --store SPEC` for a command line that must reach `spec` (empty for the default store).
fn store_arg(spec: &StoreSpec) -> String {
    if *spec == StoreSpec::default() {
        String::new()
    } else {
        format!(" --store {}", shell_word(&spec.to_string()))
    }
}

/// `word` as one POSIX shell word: as is when it holds only safe characters, else in single
/// quotes.
fn shell_word(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./:~=+@%,".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

fn refuse_stdout(ui: &Ui, spec: &StoreSpec, what: &str) -> Option<u8> {
    if !matches!(spec, StoreSpec::Stdout) {
        return None;
    }
    let message = format!("`--store stdout` keeps no key, so there is nothing to {what}");
    ui.json(serde_json::json!({"event": "failed", "error": {"kind": "usage", "message": message}}));
    ui.line(&format!("error: {message}"));
    Some(exit::USAGE)
}

fn run_status(args: StatusArgs) -> u8 {
    let ui = Ui::new(args.common.json);
    let env = StoreEnv::from_process();
    let base = &args.common.base_url;
    let found = match &args.store {
        Some(spec) => {
            if let Some(code) = refuse_stdout(&ui, spec, "check") {
                return code;
            }
            let loaded = openrouter_auth::open_store(spec, &env)
                .and_then(|store| Ok((store.describe(), store.load()?)));
            match loaded {
                Ok((description, Some(key))) => vec![Found {
                    spec: spec.clone(),
                    description,
                    key,
                }],
                Ok((description, None)) => {
                    ui.json(serde_json::json!({
                        "event": "status", "state": "missing", "store": description,
                        "looked_in": [description], "found": [],
                    }));
                    ui.line(&format!(
                        "No OpenRouter key in {description}. Run `openrouter-auth login{}`.",
                        store_arg(spec)
                    ));
                    return exit::NO_KEY;
                }
                Err(e) => {
                    let e = exit::store_message(&e);
                    ui.json(serde_json::json!({
                        "event": "status", "state": "error", "message": e,
                    }));
                    ui.line(&format!("error: {e}"));
                    return exit::ERROR;
                }
            }
        }
        None => {
            let (found, looked_in, unreadable) = find_keys(&known_stores(), &env, &ui);
            if found.is_empty() && !unreadable.is_empty() {
                // A store that cannot be read may hold the key, and `login` would refuse to
                // write there too: "no key, run login" would send the user into that error.
                let message = format!(
                    "no OpenRouter key found, but {} could not be read; fix or move it before signing in again",
                    unreadable
                        .iter()
                        .map(|(d, _)| d.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                );
                ui.json(serde_json::json!({
                    "event": "status", "state": "error", "message": message,
                    "looked_in": looked_in, "found": [],
                    "unreadable": unreadable.iter().map(|(d, e)| serde_json::json!({"store": d, "message": e})).collect::<Vec<_>>(),
                }));
                ui.line(&format!("error: {message}"));
                return exit::ERROR;
            }
            if found.is_empty() {
                ui.json(serde_json::json!({
                    "event": "status", "state": "missing", "store": null,
                    "looked_in": looked_in, "found": [],
                }));
                ui.line(&format!(
                    "No OpenRouter key found (looked in: {}). Run `openrouter-auth login`.",
                    looked_in.join("; ")
                ));
                return exit::NO_KEY;
            }
            found
        }
    };
    let mut reports = Vec::new();
    let mut first_code = None;
    for f in &found {
        let page = f.key.key_page_url(base);
        let mut report = serde_json::json!({
            "event": "status", "store": f.description, "spec": f.spec.to_string(), "key_hint": f.key.hint(),
            "key_page": page.as_str(),
        });
        let code = match openrouter_auth::check_key(base, &f.key) {
            Ok(info) => {
                report["state"] = "valid".into();
                if let (serde_json::Value::Object(r), serde_json::Value::Object(i)) =
                    (&mut report, key_info_json(&info))
                {
                    r.extend(i);
                }
                ui.line(&format!(
                    "Key {} in {} is valid.\n{}",
                    f.key.hint(),
                    f.description,
                    key_info_lines(&info, &page)
                ));
                exit::OK
            }
            Err(e) if e.key_is_invalid() => {
                report["state"] = "invalid".into();
                report["message"] = e.to_string().into();
                ui.line(&format!(
                    "Key {} in {} is NOT valid: {e}.\n  key page:  {page}\n  {}",
                    f.key.hint(),
                    f.description,
                    replace_hint(&f.spec, &env)
                ));
                exit::KEY_NOT_VALID
            }
            Err(e) => {
                report["state"] = "error".into();
                report["message"] = e.to_string().into();
                ui.line(&format!(
                    "Key {} in {}: {e}.\n  key page:  {page}",
                    f.key.hint(),
                    f.description
                ));
                exit::ERROR
            }
        };
        first_code.get_or_insert(code);
        reports.push(report);
    }
    let mut ev = reports[0].clone();
    for r in &mut reports {
        if let serde_json::Value::Object(m) = r {
            m.shift_remove("event");
        }
    }
    ev["found"] = serde_json::Value::Array(reports);
    ui.json(ev);
    first_code.unwrap_or(exit::ERROR)
}

/// `token`: the key alone on stdout; every message, warning and error on stderr, one line.
fn run_token(args: TokenArgs) -> u8 {
    let env = StoreEnv::from_process();
    // Human lines only: stdout carries the key and nothing else.
    let ui = Ui::new(false);
    let key = match &args.store {
        Some(spec) => {
            if let Some(code) = refuse_stdout(&ui, spec, "print") {
                return code;
            }
            let loaded = openrouter_auth::open_store(spec, &env)
                .and_then(|store| Ok((store.describe(), store.load()?)));
            match loaded {
                Ok((_, Some(key))) => key,
                Ok((description, None)) => {
                    eprintln!(
                        "No OpenRouter key in {description}. Run `openrouter-auth login{}`.",
                        store_arg(spec)
                    );
                    return exit::NO_KEY;
                }
                Err(e) => {
                    eprintln!("error: {e}");
                    return exit::ERROR;
                }
            }
        }
        None => {
            // A store that cannot be read is named on stderr ("warning: skipped …").
            let (found, looked_in, unreadable) = find_keys(&known_stores(), &env, &ui);
            match found.into_iter().next() {
                Some(f) => f.key,
                None if !unreadable.is_empty() => {
                    eprintln!(
                        "error: no OpenRouter key found, but {} could not be read",
                        unreadable
                            .iter()
                            .map(|(d, _)| d.as_str())
                            .collect::<Vec<_>>()
                            .join("; ")
                    );
                    return exit::ERROR;
                }
                None => {
                    eprintln!(
                        "No OpenRouter key found (looked in: {}). Run `openrouter-auth login`.",
                        looked_in.join("; ")
                    );
                    return exit::NO_KEY;
                }
            }
        }
    };
    let mut out = std::io::stdout().lock();
    let line = zeroize::Zeroizing::new(format!("{}\n", key.expose_secret()));
    match out.write_all(line.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("error: could not write the key to standard output: {e}");
            exit::ERROR
        }
    }
}

fn run_logout(args: LogoutArgs) -> u8 {
    let ui = Ui::new(args.common.json);
    let env = StoreEnv::from_process();
    let base = &args.common.base_url;
    let specs = if args.all {
        known_stores()
    } else {
        let spec = args.store.clone().unwrap_or_default();
        if let Some(code) = refuse_stdout(&ui, &spec, "remove") {
            return code;
        }
        vec![spec]
    };
    let mut removed = Vec::new();
    let mut not_found = Vec::new();
    let mut errors = Vec::new();
    for spec in &specs {
        let mut store = match openrouter_auth::open_store(spec, &env) {
            Ok(s) => s,
            Err(e) if args.all => {
                tracing::debug!(%spec, error = %e, "store skipped");
                continue;
            }
            Err(e) => {
                let e = exit::store_message(&e);
                ui.line(&format!("error: {e}"));
                errors.push(serde_json::json!({"spec": spec.to_string(), "message": e}));
                continue;
            }
        };
        let key = match store.load() {
            Ok(k) => k,
            Err(StoreError::KeyringUnavailable { .. }) if args.all => continue,
            Err(e) => {
                tracing::debug!(error = %e, "could not read the key before removing it");
                None
            }
        };
        match store.remove() {
            Ok(true) => {
                let page = key.as_ref().map(|k| k.key_page_url(base));
                let hint = key.as_ref().map(|k| k.hint());
                ui.line(&format!(
                    "Removed the OpenRouter key {}from {}.",
                    hint.as_deref().map(|h| format!("{h} ")).unwrap_or_default(),
                    store.describe()
                ));
                removed.push(serde_json::json!({
                    "store": store.describe(), "spec": spec.to_string(),
                    "key_hint": hint, "key_page": page.as_ref().map(|p| p.as_str()),
                }));
                match page {
                    Some(page) => ui.line(&format!(
                        "Removing it here does not revoke it: the key keeps working until you delete it on OpenRouter:\n  {page}"
                    )),
                    None => ui.line(
                        "Removing it here does not revoke it: the key keeps working until you delete it on OpenRouter (https://openrouter.ai/settings/keys).",
                    ),
                }
            }
            Ok(false) => not_found.push(store.describe()),
            Err(e) => {
                let e = exit::store_message(&e);
                ui.line(&format!("error: {e}"));
                errors.push(serde_json::json!({
                    "store": store.describe(), "spec": spec.to_string(), "message": e,
                }));
            }
        }
    }
    let failed = !errors.is_empty();
    if removed.is_empty() && !failed {
        if args.all {
            ui.line("No OpenRouter key found in any store; nothing removed.");
        } else {
            ui.line(&format!(
                "No OpenRouter key in {}; nothing removed.",
                not_found.join("; ")
            ));
            let others: Vec<StoreSpec> = known_stores()
                .into_iter()
                .filter(|s| !specs.contains(s))
                .collect();
            let (elsewhere, _, _) = find_keys(&others, &env, &Ui::new(true));
            if !elsewhere.is_empty() {
                let names: Vec<String> = elsewhere.iter().map(|f| f.spec.to_string()).collect();
                ui.line(&format!(
                    "A key is stored in: {}. Use --store {} or --all.",
                    elsewhere
                        .iter()
                        .map(|f| f.description.as_str())
                        .collect::<Vec<_>>()
                        .join("; "),
                    names[0]
                ));
            }
        }
    }
    ui.json(serde_json::json!({
        "event": "logged_out",
        "removed": removed,
        "not_found": not_found,
        "errors": errors,
        "revoked": false,
        "note": "removing a key here does not revoke it; delete it on its key page",
    }));
    if failed {
        exit::ERROR
    } else {
        exit::OK
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn qr_code_is_a_square_of_half_blocks() {
        let url: url::Url = "https://openrouter.ai/auth?code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&key_label=openrouter-auth+on+host+2026-01-31".parse().unwrap();
        let qr = qr_code(&url).expect("a URL this long fits in a QR code");
        let lines: Vec<&str> = qr.lines().collect();
        let width = lines[0].chars().count();
        assert!(lines.iter().all(|l| l.chars().count() == width));
        // Two modules per cell vertically, plus the quiet zone: rows = ceil(width / 2).
        assert_eq!(lines.len(), width.div_ceil(2));
        assert!(qr
            .chars()
            .all(|c| matches!(c, '█' | '▀' | '▄' | ' ' | '\n')));
    }

    #[test]
    fn money_and_yes_no() {
        assert_eq!(money(None), "none");
        assert_eq!(money(Some(1.5)), "$1.50");
        assert_eq!(yes_no(Some(true)), "yes");
        assert_eq!(yes_no(None), "unknown");
    }

    #[test]
    fn store_hints_are_one_shell_word() {
        assert_eq!(shell_word("aider"), "aider");
        assert_eq!(shell_word("file:/home/a/x.json"), "file:/home/a/x.json");
        assert_eq!(shell_word("file:/my keys/x.json"), "'file:/my keys/x.json'");
        assert_eq!(shell_word("env-file:it's.env"), r"'env-file:it'\''s.env'");
        assert_eq!(shell_word("file:$HOME/x"), "'file:$HOME/x'");
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
