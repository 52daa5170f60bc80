//! `openrouter-auth`: sign in with OpenRouter from a terminal and store the API key where
//! your tools look for it.
#![forbid(unsafe_code)]

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use openrouter_auth::core::{self, CallbackHost, FlowError, KeyLabel};
use openrouter_auth::{
    login, CancelHandle, LoginError, LoginEvent, LoginOptions, StoreEnv, StoreSpec,
};
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Exit codes (documented in the README and in `--help`).
mod exit {
    pub const OK: u8 = 0;
    pub const ERROR: u8 = 1;
    pub const DENIED: u8 = 3;
    pub const TIMED_OUT: u8 = 4;
    pub const EXCHANGE_FAILED: u8 = 5;
    pub const KEY_NOT_STORED: u8 = 6;
    pub const KEY_NOT_VALID: u8 = 7;
    pub const NO_KEY: u8 = 8;
    pub const CANCELLED: u8 = 130;
}

const EXIT_CODES: &str = "Exit codes:
  0    signed in (login), key valid (status), done (logout)
  1    other error (port busy, unreadable store, …)
  2    usage error
  3    access denied in the browser
  4    timed out waiting for the browser
  5    the code exchange failed (OpenRouter or network)
  6    signed in but the key could not be stored (the key is printed once)
  7    the stored key is not valid (status)
  8    no key stored (status)
  130  cancelled (Ctrl-C)";

#[derive(Parser)]
#[command(name = "openrouter-auth", version, about = "Sign in with OpenRouter and store the API key where your tools look for it", after_help = EXIT_CODES)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Sign in in the browser (OAuth PKCE) and store a new API key.
    Login(LoginArgs),
    /// Show the stored key and check it with OpenRouter.
    Status(StatusArgs),
    /// Remove the stored key from this machine (it is not revoked).
    Logout(LogoutArgs),
}

#[derive(clap::Args)]
struct Common {
    /// Where the key is kept: file, file:PATH, opencode, aider, env-file:PATH, stdout.
    #[arg(long, default_value = "file", value_name = "KIND")]
    store: StoreSpec,
    /// OpenRouter's address (an emulator for testing).
    #[arg(long, env = "OPENROUTER_AUTH_BASE_URL", default_value = core::DEFAULT_BASE_URL, value_name = "URL")]
    base_url: url::Url,
    /// One JSON object per line on stdout instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
struct LoginArgs {
    #[command(flatten)]
    common: Common,
    /// Print the URL but do not launch a browser.
    #[arg(long)]
    no_browser: bool,
    /// Loopback port for the callback (default: any free port).
    #[arg(long, default_value_t = 0, value_name = "N")]
    port: u16,
    /// Host name in the callback URL.
    #[arg(long, default_value = "localhost", value_name = "localhost|127.0.0.1")]
    callback_host: CallbackHost,
    /// Seconds to wait for the browser.
    #[arg(long, default_value_t = 600, value_name = "SECS")]
    timeout: u64,
    /// Name of the new key in your OpenRouter key list (at most 100 characters).
    #[arg(long, value_name = "TEXT", value_parser = parse_label)]
    key_label: Option<KeyLabel>,
}

fn parse_label(s: &str) -> Result<KeyLabel, String> {
    KeyLabel::new(s).map_err(|e| e.to_string())
}

#[derive(clap::Args)]
struct StatusArgs {
    #[command(flatten)]
    common: Common,
}

#[derive(clap::Args)]
struct LogoutArgs {
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
        Command::Logout(args) => run_logout(args),
    };
    ExitCode::from(code)
}

/// Human output on stderr, or JSON lines on stdout.
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
            eprintln!("{s}");
        }
    }

    fn json(&self, v: serde_json::Value) {
        if self.json {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{v}");
            let _ = out.flush();
        }
    }

    fn start_waiting(&self, deadline: Instant) {
        if !self.fancy {
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

fn run_login(args: LoginArgs) -> u8 {
    let ui = Ui::new(args.common.json);
    let options = LoginOptions {
        base_url: args.common.base_url.clone(),
        port: args.port,
        callback_host: args.callback_host,
        key_label: args.key_label,
        timeout: Duration::from_secs(args.timeout),
        store: args.common.store.clone(),
        store_env: StoreEnv::from_process(),
        open_browser: !args.no_browser,
        ..LoginOptions::default()
    };
    let cancel = CancelHandle::new();
    let ctrl_c = cancel.clone();
    let presses = std::sync::atomic::AtomicU32::new(0);
    let _ = ctrlc::set_handler(move || {
        if presses.fetch_add(1, std::sync::atomic::Ordering::SeqCst) > 0 {
            std::process::exit(exit::CANCELLED.into());
        }
        ctrl_c.cancel();
    });
    let deadline = Instant::now() + options.timeout;
    let open_browser = options.open_browser;
    let ui2 = ui.clone();
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
            }));
            if headless {
                ui2.line(&format!(
                    "Open this URL on any device to sign in to OpenRouter:\n\n  {url}\n"
                ));
            } else if open_browser {
                ui2.line(&format!("Opening your browser to sign in to OpenRouter. If it does not open, visit:\n\n  {url}\n"));
            } else {
                ui2.line(&format!(
                    "Open this URL in a browser to sign in to OpenRouter:\n\n  {url}\n"
                ));
            }
            ui2.start_waiting(deadline);
        }
        LoginEvent::BrowserOpened => {}
        LoginEvent::BrowserFailed { reason } => {
            ui2.line(&format!(
                "Could not open a browser ({reason}); open the URL above by hand."
            ));
            ui2.start_waiting(deadline);
        }
        LoginEvent::Exchanging { attempt } => {
            if attempt == 1 {
                ui2.line("Browser answered. Exchanging the authorization code for a key…");
            } else {
                ui2.line(&format!("Retrying the code exchange (attempt {attempt})…"));
            }
        }
        LoginEvent::Storing => {}
        LoginEvent::PasteRejected { reason } => ui2.line(&format!("Not accepted: {reason}.")),
    };
    let result = login(&options, &mut observer, &cancel);
    ui.stop_spinner();
    let stdout_store = matches!(options.store, StoreSpec::Stdout);
    match result {
        Ok(done) => {
            let mode = done
                .stored
                .mode
                .map(|m| format!(" (mode {m:04o})"))
                .unwrap_or_default();
            let mut ev = serde_json::json!({
                "event": "signed_in",
                "store": options.store.to_string(),
                "location": done.stored.path.as_ref().map(|p| p.display().to_string()),
                "key_hint": done.key.hint(),
                "user_id": done.user_id,
            });
            if stdout_store {
                ev["key"] = serde_json::Value::String(done.key.expose_secret().to_owned());
            }
            ui.json(ev);
            ui.line(&format!(
                "Signed in. Key {} stored in {}{mode}.",
                done.key.hint(),
                done.stored.description
            ));
            exit::OK
        }
        Err(e) => report_login_error(&ui, e),
    }
}

fn report_login_error(ui: &Ui, e: LoginError) -> u8 {
    let code = match &e {
        LoginError::Flow(FlowError::Denied(_)) => exit::DENIED,
        LoginError::Flow(FlowError::CallbackTimedOut { .. }) => exit::TIMED_OUT,
        LoginError::Flow(FlowError::Cancelled) => exit::CANCELLED,
        LoginError::Flow(_) => exit::EXCHANGE_FAILED,
        LoginError::KeyNotStored { .. } => exit::KEY_NOT_STORED,
        LoginError::Bind(_) | LoginError::Store(_) | LoginError::Io(_) => exit::ERROR,
    };
    let mut ev = serde_json::json!({
        "event": "failed",
        "error": {"kind": e.kind(), "message": e.to_string()},
    });
    if let LoginError::KeyNotStored { key, .. } = &e {
        // The key exists only here now: hand it over once, on stdout.
        if ui.json {
            ev["key"] = serde_json::Value::String(key.expose_secret().to_owned());
        } else {
            eprintln!("error: {e}");
            eprintln!("Your new key is below. It is not saved anywhere: keep it now.");
            println!("{}", key.expose_secret());
            return code;
        }
    }
    ui.json(ev);
    ui.line(&format!("error: {e}"));
    code
}

fn check_key(base_url: &url::Url, key: &core::ApiKey) -> Result<core::KeyInfo, String> {
    let client = openrouter_auth::transport::blocking_client(base_url);
    let req = core::key_check_request(base_url, key);
    let resp = openrouter_auth::transport::send_blocking(&client, &req, Duration::from_secs(15))
        .map_err(|e| format!("could not reach OpenRouter: {e}"))?;
    core::parse_key_info(&resp).map_err(|e| e.to_string())
}

fn run_status(args: StatusArgs) -> u8 {
    let ui = Ui::new(args.common.json);
    let env = StoreEnv::from_process();
    let store = match openrouter_auth::open_store(&args.common.store, &env) {
        Ok(s) => s,
        Err(e) => {
            ui.json(
                serde_json::json!({"event": "status", "state": "error", "message": e.to_string()}),
            );
            ui.line(&format!("error: {e}"));
            return exit::ERROR;
        }
    };
    let key = match store.load() {
        Ok(Some(k)) => k,
        Ok(None) => {
            ui.json(serde_json::json!({"event": "status", "state": "missing", "store": store.describe()}));
            ui.line(&format!(
                "No OpenRouter key in {}. Run `openrouter-auth login`.",
                store.describe()
            ));
            return exit::NO_KEY;
        }
        Err(e) => {
            ui.json(
                serde_json::json!({"event": "status", "state": "error", "message": e.to_string()}),
            );
            ui.line(&format!("error: {e}"));
            return exit::ERROR;
        }
    };
    let page = key.key_page_url(&args.common.base_url);
    match check_key(&args.common.base_url, &key) {
        Ok(info) => {
            ui.json(serde_json::json!({
                "event": "status", "state": "valid", "store": store.describe(),
                "key_hint": key.hint(), "label": info.label, "usage": info.usage,
                "limit": info.limit, "limit_remaining": info.limit_remaining,
                "is_free_tier": info.is_free_tier, "key_page": page.as_str(),
            }));
            let money = |v: Option<f64>| v.map_or("none".to_string(), |v| format!("${v:.2}"));
            ui.line(&format!(
                "Key {} in {} is valid.\n  label:     {}\n  usage:     {}\n  limit:     {}\n  free tier: {}\n  manage:    {}",
                key.hint(),
                store.describe(),
                info.label.as_deref().unwrap_or("-"),
                money(info.usage),
                money(info.limit),
                info.is_free_tier.map_or("unknown", |f| if f { "yes" } else { "no" }),
                page
            ));
            exit::OK
        }
        Err(msg) => {
            let invalid = msg.contains("(401)");
            ui.json(serde_json::json!({
                "event": "status", "state": if invalid { "invalid" } else { "error" },
                "store": store.describe(), "key_hint": key.hint(), "message": msg,
            }));
            ui.line(&format!(
                "Key {} in {}: {msg}",
                key.hint(),
                store.describe()
            ));
            if invalid {
                exit::KEY_NOT_VALID
            } else {
                exit::ERROR
            }
        }
    }
}

fn run_logout(args: LogoutArgs) -> u8 {
    let ui = Ui::new(args.common.json);
    let env = StoreEnv::from_process();
    let mut store = match openrouter_auth::open_store(&args.common.store, &env) {
        Ok(s) => s,
        Err(e) => {
            ui.line(&format!("error: {e}"));
            return exit::ERROR;
        }
    };
    let key = store.load().ok().flatten();
    match store.remove() {
        Ok(true) => {
            let page = key
                .as_ref()
                .map(|k| k.key_page_url(&args.common.base_url).to_string());
            ui.json(serde_json::json!({"event": "logged_out", "store": store.describe(), "key_page": page}));
            ui.line(&format!(
                "Removed the OpenRouter key from {}.",
                store.describe()
            ));
            ui.line(
                "This does not revoke the key: it still works until you delete it on OpenRouter:",
            );
            if let Some(page) = page {
                ui.line(&format!("  {page}"));
            }
            exit::OK
        }
        Ok(false) => {
            ui.json(serde_json::json!({"event": "logged_out", "store": store.describe(), "key_page": null}));
            ui.line(&format!(
                "No OpenRouter key in {}; nothing to remove.",
                store.describe()
            ));
            exit::OK
        }
        Err(e) => {
            ui.line(&format!("error: {e}"));
            exit::ERROR
        }
    }
}
