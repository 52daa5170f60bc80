//! The command line: every subcommand's arguments, as clap definitions.

use clap::{Parser, Subcommand};
use openrouter_auth::core::{self, CallbackHost, KeyLabel};
use openrouter_auth::StoreSpec;

pub const EXIT_CODES: &str = "Exit codes:
  0    signed in (login), key valid (status), done (logout)
  1    other error (busy port, unreadable store, key already stored, …)
  2    usage error
  3    access denied in the browser
  4    timed out waiting for the browser or a pasted code
  5    the code exchange failed (OpenRouter or network)
  6    signed in but the key could not be stored (the key is printed once)
  7    the stored key is not valid (status)
  8    no key stored (status, token)
  130  cancelled (Ctrl-C)";

#[derive(Parser)]
#[command(name = "openrouter-auth", version, about = "Sign in with OpenRouter and store the API key where your tools look for it", after_long_help = EXIT_CODES)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Sign in (OAuth PKCE) and store a new API key.
    ///
    /// By default the browser on this machine is used and, at the same time, a code or the
    /// address the browser ended on can be pasted into the terminal: the first valid one wins.
    /// Over SSH, in a container or without a display, headless sign-in is chosen instead (open
    /// the URL on any device, paste the code OpenRouter shows); --headless / --no-headless
    /// decide it yourself.
    #[command(after_long_help = EXIT_CODES)]
    Login(LoginArgs),
    /// Find the stored key and check it with OpenRouter.
    ///
    /// Without --store, checks OPENROUTER_API_KEY first when it is set (tools use it before
    /// any stored key, and status says when it differs from a stored one), then looks in the
    /// credentials file, opencode, aider, llm, crush, goose and the keyring, in that order;
    /// the first key found decides the exit code (0 valid, 7 not valid, 8 none).
    #[command(after_long_help = EXIT_CODES)]
    Status(StatusArgs),
    /// Print the stored key alone on stdout, for scripts.
    ///
    /// For `export OPENROUTER_API_KEY=$(openrouter-auth token)`. Looks in the same stores, in the same order, as `status`, and prints the first key
    /// found followed by a newline; the key is not checked with OpenRouter. Without a key it
    /// prints nothing there, says so on standard error and exits 8.
    #[command(after_long_help = EXIT_CODES)]
    Token(TokenArgs),
    /// Remove the stored key from this machine (it is not revoked).
    ///
    /// This does not revoke the key: delete it on its OpenRouter page, which is printed.
    #[command(after_long_help = EXIT_CODES)]
    Logout(LogoutArgs),
    /// Print a shell completion script on stdout.
    ///
    /// For example `openrouter-auth completions bash > ~/.local/share/bash-completion/completions/openrouter-auth`,
    /// or `source <(openrouter-auth completions zsh)`.
    Completions(CompletionsArgs),
    /// Print the manual page (roff) on stdout.
    ///
    /// For example `openrouter-auth man > ~/.local/share/man/man1/openrouter-auth.1`, or
    /// `openrouter-auth man | man -l -`.
    Man,
}

#[derive(clap::Args)]
pub struct CompletionsArgs {
    /// The shell to complete for
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(clap::Args)]
pub struct Common {
    /// OpenRouter's address (see --help)
    ///
    /// https, or plain http on localhost, 127.0.0.1 or [::1] (an emulator for testing).
    /// Without this flag, OPENROUTER_AUTH_BASE_URL when set, else https://openrouter.ai.
    #[arg(long = "base-url", value_name = "URL", value_parser = parse_base_url)]
    base_url_flag: Option<url::Url>,
    /// The address in use: `--base-url`, else `OPENROUTER_AUTH_BASE_URL`, else OpenRouter's
    /// (set by [`Common::resolve`]).
    #[arg(skip = default_base_url())]
    pub base_url: url::Url,
    /// JSON lines on stdout instead of text
    ///
    /// One JSON object per line, each event documented in the README.
    #[arg(long)]
    pub json: bool,
}

#[derive(clap::Args)]
pub struct LoginArgs {
    /// Where the key is kept (see --help)
    ///
    /// One of: file, file:PATH, opencode, aider, env-file:PATH, stdout, keyring, llm, crush,
    /// goose.
    /// Repeat it to write the one new key to several stores (every one is checked before the
    /// browser opens).
    #[arg(long = "store", default_value = "file", value_name = "KIND", action = clap::ArgAction::Append, value_parser = parse_store)]
    pub stores: Vec<StoreSpec>,
    #[command(flatten)]
    pub common: Common,
    /// Print the URL, do not open a browser
    ///
    /// The callback is still awaited, and a code or the browser's address can be pasted.
    #[arg(long)]
    pub no_browser: bool,
    /// Open the URL on any device, paste the code
    ///
    /// Sign in without a browser on this machine: open the URL on any device and paste the
    /// code OpenRouter shows. No loopback listener is opened.
    #[arg(long, conflicts_with_all = ["no_headless", "port"])]
    pub headless: bool,
    /// Never choose headless sign-in by itself
    ///
    /// Over SSH, in containers or without a display, wait for the browser's callback anyway
    /// (pasting still works).
    #[arg(long)]
    pub no_headless: bool,
    /// Replace a key the store already holds
    ///
    /// Sign in even if the store already holds an OpenRouter key. The old key is replaced
    /// here but keeps working until you revoke it on its OpenRouter page.
    #[arg(long)]
    pub force: bool,
    /// Callback port, 0 for any free one
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub port: u16,
    /// The callback URL's host
    ///
    /// localhost or 127.0.0.1.
    #[arg(long, default_value = "localhost", value_name = "HOST")]
    pub callback_host: CallbackHost,
    /// Seconds to wait for the sign-in
    ///
    /// How long to wait for the browser or a pasted code (at least 1).
    #[arg(long, default_value_t = 600, value_name = "SECS", value_parser = parse_timeout)]
    pub timeout: u64,
    /// Name of the new key on OpenRouter
    ///
    /// At most 100 characters. Default: "openrouter-auth on <hostname> <YYYY-MM-DD>".
    #[arg(long, value_name = "TEXT", value_parser = parse_label)]
    pub key_label: Option<KeyLabel>,
    /// Credit limit of the new key, in US dollars
    ///
    /// OpenRouter's `limit`: the key stops working once it has spent this much (a positive
    /// number, such as 5 or 2.50). Worth it for a key on a shared or remote machine. Default:
    /// no limit.
    #[arg(long, value_name = "USD", value_parser = parse_limit, allow_negative_numbers = true)]
    pub limit: Option<f64>,
    /// Store a key you already have, read from stdin
    ///
    /// No sign-in: the key is read from standard input (never from the command line, where
    /// other users and the shell history would see it), checked with OpenRouter, and stored
    /// like a new one. A key OpenRouter refuses is not stored.
    #[arg(long, conflicts_with_all = ["headless", "no_headless", "no_browser", "port", "limit", "key_label"])]
    pub with_key: bool,
}

/// A credit limit in US dollars: a positive, finite number.
pub fn parse_limit(s: &str) -> Result<f64, String> {
    let v: f64 = s.trim().trim_start_matches('$').parse().map_err(|_| {
        format!("'{s}' is not an amount of US dollars: write a number, such as 5 or 2.50")
    })?;
    if !v.is_finite() {
        return Err(format!(
            "'{s}' is not a finite amount: write a number, such as 5 or 2.50"
        ));
    }
    if v <= 0.0 {
        return Err(format!(
            "the limit must be more than 0 US dollars (got {s}); leave --limit out for no limit"
        ));
    }
    Ok(v)
}

/// The environment variable that sets the address when `--base-url` is not given.
pub const BASE_URL_ENV: &str = "OPENROUTER_AUTH_BASE_URL";

fn default_base_url() -> url::Url {
    url::Url::parse(core::DEFAULT_BASE_URL).expect("the default base URL parses")
}

impl Common {
    /// Settles [`Common::base_url`]: `--base-url`, else a non-empty `OPENROUTER_AUTH_BASE_URL`
    /// (an unusable value is blamed on the variable, not on the flag), else OpenRouter's.
    pub fn resolve(&mut self, env: Option<std::ffi::OsString>) -> Result<(), String> {
        if let Some(url) = self.base_url_flag.take() {
            self.base_url = url;
            return Ok(());
        }
        let Some(value) = env.filter(|v| !v.is_empty()) else {
            return Ok(());
        };
        let value = value.to_string_lossy().into_owned();
        match parse_base_url(&value) {
            Ok(url) => {
                self.base_url = url;
                Ok(())
            }
            Err(reason) => Err(format!(
                "{BASE_URL_ENV} is set to '{value}', which cannot be used: {reason}. Fix it or unset it (then {} is used), or pass --base-url",
                core::DEFAULT_BASE_URL
            )),
        }
    }
}

/// `https`, or plain `http` only on a loopback host (an emulator): the code verifier, the
/// code and the API key must never cross a network unencrypted.
pub fn parse_base_url(s: &str) -> Result<url::Url, String> {
    let url = url::Url::parse(s).map_err(|e| match e {
        url::ParseError::RelativeUrlWithoutBase => {
            format!("'{s}' is not a full URL: write it with its scheme, as in https://{s}")
        }
        e => format!("'{s}' is not a URL ({e})"),
    })?;
    match core::base_url_is_secure(&url) {
        true => Ok(url),
        false => Err(
            "it must be an https URL (plain http only on localhost, 127.0.0.1 or [::1], for an emulator): the code verifier and the API key would otherwise travel unencrypted"
                .to_string(),
        ),
    }
}

/// A store kind, as `--store` takes it. clap's message already names the value, so only why
/// it is wrong and the kinds there are follow.
pub fn parse_store(s: &str) -> Result<StoreSpec, String> {
    s.parse().map_err(|e| match e {
        openrouter_auth::StoreError::BadSpec { reason, .. } => {
            format!(
                "{reason}; the kinds are: {}",
                openrouter_auth::STORE_SPEC_FORMS
            )
        }
        e => e.to_string(),
    })
}

/// `--timeout`: whole seconds, at least 1.
pub fn parse_timeout(s: &str) -> Result<u64, String> {
    match s.trim().parse::<u64>() {
        Ok(0) => Err("the sign-in needs at least 1 second: give a number of seconds, such as 600 (the default)".to_owned()),
        Ok(secs) => Ok(secs),
        Err(_) => Err("write a whole number of seconds, such as 600 (the default)".to_owned()),
    }
}

pub fn parse_label(s: &str) -> Result<KeyLabel, String> {
    KeyLabel::new(s).map_err(|e| e.to_string())
}

#[derive(clap::Args)]
pub struct StatusArgs {
    /// Which store to check (default: each, in order)
    ///
    /// Without it: file, opencode, aider, llm, crush, goose and keyring, in that order.
    #[arg(long, value_name = "KIND", value_parser = parse_store)]
    pub store: Option<StoreSpec>,
    #[command(flatten)]
    pub common: Common,
}

#[derive(clap::Args)]
pub struct TokenArgs {
    /// Which store to read (default: the first with a key)
    ///
    /// Without it: the first of file, opencode, aider, llm, crush, goose and keyring that
    /// holds a key.
    #[arg(long, value_name = "KIND", value_parser = parse_store)]
    pub store: Option<StoreSpec>,
}

#[derive(clap::Args)]
pub struct LogoutArgs {
    /// Which store to remove the key from [default: file]
    #[arg(long, value_name = "KIND", conflicts_with = "all", value_parser = parse_store)]
    pub store: Option<StoreSpec>,
    /// Remove the key from every store that holds one
    ///
    /// file, opencode, aider, llm, crush, goose and keyring.
    #[arg(long)]
    pub all: bool,
    #[command(flatten)]
    pub common: Common,
}
