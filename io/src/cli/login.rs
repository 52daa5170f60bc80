//! `login`: check the store, sign in, store the key, check it, report.

use super::args::LoginArgs;
use super::stores::store_arg;
use super::ui::{
    ask_yes_no, key_info_json, key_info_lines, qr_code, stderr_size, stderr_width, wrap, Ttys, Ui,
};
use crate::exit;
use openrouter_auth::terminal::{escape, escape_text};
use openrouter_auth::{
    default_key_label, login, EnvSnapshot, ExistingKey, LoginError, LoginEvent, LoginHandle,
    LoginOptions, ReplacePolicy, StoreEnv, StoreError, StoreSpec,
};
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// Point 7 of issue 6: a store that already holds an OpenRouter key is not overwritten
/// unseen. The library looks at the store before signing in; the CLI picks the policy
/// (`--force` replaces; on a terminal it asks; otherwise it refuses) and words the question.
fn replace_policy(args: &LoginArgs, ui: &Ui, ttys: Ttys) -> ReplacePolicy {
    if args.force {
        return ReplacePolicy::Force;
    }
    if ui.json || !ttys.stdin || !ttys.stderr {
        return ReplacePolicy::Refuse;
    }
    ReplacePolicy::ask(|existing: &ExistingKey| {
        match (&existing.unreadable, &existing.found, &existing.key_page) {
            (Some(e), _, _) => eprintln!(
                "{}",
                wrap(
                    &escape_text(&format!(
                        "{} has an OpenRouter entry this tool cannot read: {e}.",
                        existing.store
                    )),
                    stderr_width()
                )
            ),
            (None, found, page) => eprintln!(
                "{}",
                wrap(
                    &format!(
                        "{} already holds an OpenRouter key ({}).\nSigning in creates another key; the old one keeps working until you revoke it at:\n  {}",
                        escape(&existing.store),
                        found.as_deref().unwrap_or("…"),
                        page.as_ref().map_or("", |p| p.as_str())
                    ),
                    stderr_width()
                )
            ),
        }
        ask_yes_no("Sign in and replace it here?")
    })
}

/// `--with-key`: the key from standard input, one line. Never from argv. At a terminal the
/// prompt goes to the terminal and the key is read with echo off (rpassword), so it is never
/// shown on screen or left in the scrollback. `Err` says what to do when there is none.
fn read_key(ttys: Ttys) -> Result<openrouter_auth::core::ApiKey, String> {
    use std::io::BufRead;
    let mut line = zeroize::Zeroizing::new(String::new());
    let read = if ttys.stdin {
        rpassword::prompt_password(
            "Paste your OpenRouter API key (it is not shown) and press Enter: ",
        )
        .map(|typed| *line = typed)
    } else {
        std::io::stdin().lock().read_line(&mut line).map(|_| ())
    };
    let key = line.trim();
    match read {
        Ok(()) if !key.is_empty() => Ok(openrouter_auth::core::ApiKey::new(key)),
        _ => Err("--with-key reads the key from standard input, and none came: pipe it in, as in `printenv OPENROUTER_API_KEY | openrouter-auth login --with-key`".to_owned()),
    }
}

/// What `--force` replaced, told once the new key is stored (nothing is replaced before).
fn replacing_line(existing: &ExistingKey) -> String {
    match (&existing.unreadable, &existing.found, &existing.key_page) {
        (Some(e), _, _) => format!(
            "Replaced the OpenRouter entry this tool could not read in {} (--force): {e}.",
            existing.store
        ),
        (None, found, page) => format!(
            "Replaced the OpenRouter key {} in {} (--force). The old key keeps working until you revoke it at:\n  {}",
            found.as_deref().unwrap_or("…"),
            existing.store,
            page.as_ref().map_or("", |p| p.as_str())
        ),
    }
}

pub fn run(args: LoginArgs) -> u8 {
    let ui = Ui::new(args.common.json);
    let ttys = Ttys::detect();
    let store_env = StoreEnv::from_process();
    let stdout_store = args.stores.contains(&StoreSpec::Stdout);
    if args.common.json && stdout_store {
        // Both claim standard output: `--store stdout` promises the key and nothing else,
        // `--json` one JSON object per line. Nothing has been signed in yet.
        let message = "--json and --store stdout both write to standard output: use --store stdout alone to capture just the key, or --json with a store that keeps it";
        ui.json(serde_json::json!({
            "event": "failed", "error": {"kind": "usage", "message": message},
        }));
        ui.line(&format!("error: {message}"));
        return exit::USAGE;
    }
    let key_label = args
        .key_label
        .clone()
        .unwrap_or_else(|| default_key_label("openrouter-auth"));
    // The flags decide headless or loopback; without any of them, the library reads the
    // environment (and falls back to headless when no listener can be opened).
    let auto = !(args.headless || args.no_headless || args.no_browser);
    let options = LoginOptions::default()
        .base_url(args.common.base_url.clone())
        .port(args.port)
        .callback_host(args.callback_host)
        .key_label(key_label)
        .timeout(Duration::from_secs(args.timeout))
        .stores(args.stores.clone())
        .store_env(store_env)
        .open_browser(!args.no_browser)
        .headless(args.headless)
        .detect_headless(auto.then(EnvSnapshot::from_process))
        .headless_fallback(!args.no_headless)
        .replace(replace_policy(&args, &ui, ttys))
        .check_key(true);
    let mut options = options;
    options.limit = args.limit;
    let handle = LoginHandle::new();
    let ctrl_c = handle.clone();
    let presses = std::sync::atomic::AtomicU32::new(0);
    let _ = ctrlc::set_handler(move || {
        if presses.fetch_add(1, std::sync::atomic::Ordering::SeqCst) > 0 {
            std::process::exit(exit::CANCELLED.into());
        }
        ctrl_c.cancel();
    });
    let deadline = Instant::now() + options.timeout;
    let replaced = Arc::new(Mutex::new(None));
    let result = if args.with_key {
        let key = match read_key(ttys) {
            Ok(key) => key,
            Err(message) => {
                ui.json(serde_json::json!({
                    "event": "failed", "error": {"kind": "usage", "message": message},
                }));
                ui.line(&format!("error: {message}"));
                return exit::USAGE;
            }
        };
        let forced = args.force;
        let note = replaced.clone();
        let mut observer = move |e: LoginEvent| {
            if let LoginEvent::ReplacingKey(existing) = e {
                if forced {
                    *note.lock().unwrap_or_else(|p| p.into_inner()) =
                        Some(replacing_line(&existing));
                }
            }
        };
        openrouter_auth::store_existing_key(&options, key, &mut observer)
    } else {
        login_once(&options, &ui, ttys, deadline, &handle, &replaced)
    };
    ui.stop_spinner();
    match result {
        Ok(done) => {
            let mode = |s: &openrouter_auth::StoreReport| {
                s.mode
                    .map(|m| format!(" (mode {m:04o})"))
                    .unwrap_or_default()
            };
            let stored = &done.stored[0];
            // `--with-key` signed nobody in: the key was checked, then stored.
            let lead = if args.with_key {
                "Checked with OpenRouter."
            } else {
                "Signed in."
            };
            let page = done.key.key_page_url(&options.base_url);
            let mut ev = serde_json::json!({
                "event": "signed_in",
                "store": args.stores[0].to_string(),
                "location": stored.path.as_ref().map(|p| p.display().to_string()),
                "stores": args.stores.iter().zip(&done.stored).map(|(spec, s)| serde_json::json!({
                    "store": spec.to_string(), "description": s.description,
                    "location": s.path.as_ref().map(|p| p.display().to_string()),
                })).collect::<Vec<_>>(),
                "key_hint": done.key.hint(),
                "user_id": done.user_id,
                "key_label": options.key_label.as_ref().map(|l| l.as_str()),
                "key_page": page.as_str(),
            });
            match &done.key_check {
                Some(Ok(info)) => ev["key_check"] = key_info_json(info),
                Some(Err(e)) => {
                    ev["warning"] = serde_json::json!({"kind": e.kind(), "message": e.to_string()})
                }
                None => {}
            }
            ui.json(ev);
            if let Some(note) = replaced.lock().unwrap_or_else(|p| p.into_inner()).take() {
                ui.line(&note);
            }
            // The result goes to stdout, unless stdout carries the key alone.
            let result = |s: &str| {
                if stdout_store {
                    ui.line(s)
                } else {
                    ui.result(s)
                }
            };
            if stdout_store && done.stored.len() == 1 {
                ui.line(&format!(
                    "{lead} Key {} printed to standard output (not kept anywhere else).",
                    done.key.hint()
                ));
            } else if done.stored.len() == 1 {
                result(&format!(
                    "{lead} Key {} stored in {}{}.",
                    done.key.hint(),
                    stored.description,
                    mode(stored)
                ));
            } else {
                // One key, several stores: each on its own line.
                let list: Vec<String> = done
                    .stored
                    .iter()
                    .map(|s| format!("  - {}{}", s.description, mode(s)))
                    .collect();
                result(&format!(
                    "{lead} Key {} stored in:\n{}",
                    done.key.hint(),
                    list.join("\n")
                ));
            }
            match &done.key_check {
                Some(Ok(info)) => result(&key_info_lines(info, &page)),
                Some(Err(e)) => ui.line(&format!(
                    "warning: the key is stored, but checking it with OpenRouter failed: {e}.\n  key page:  {page}\n             (see usage there, or revoke the key)"
                )),
                None => {}
            }
            exit::OK
        }
        Err(LoginError::KeyExists {
            existing,
            declined: true,
        }) => {
            ui.line(match existing.unreadable {
                Some(_) => "Kept the file as it is; nothing was signed in.",
                None => "Kept the existing key; nothing was signed in.",
            });
            exit::ERROR
        }
        Err(e) => {
            // The store a hint names: the one that holds the key, else the first asked for.
            let spec = match &e {
                LoginError::KeyExists { existing, .. } => args.stores.get(existing.destination),
                _ => None,
            };
            let message = login_error_message(&e, spec.unwrap_or(&args.stores[0]), ttys);
            report_login_error(&ui, e, message, &options.base_url)
        }
    }
}

/// A failed login's message: the library's words and what only the CLI can add (its flags,
/// its commands).
fn login_error_message(e: &LoginError, spec: &StoreSpec, ttys: Ttys) -> String {
    match e {
        LoginError::KeyExists { existing, .. } => match (&existing.unreadable, &existing.key_page) {
            (Some(_), _) => format!(
                "{e}. Pass --force to replace it, or fix the file by hand; nothing was signed in"
            ),
            (None, page) => format!(
                "{e}. Pass --force to replace it (revoke the old one at {}), or run `openrouter-auth logout{}` first",
                page.as_ref().map_or("its key page", |p| p.as_str()),
                store_arg(spec)
            ),
        },
        // No keychain: the one-line explanation and the store to use instead.
        LoginError::Store(s @ StoreError::KeyringUnavailable { .. }) => exit::store_message(s),
        LoginError::Store(s) => format!("{}; nothing was signed in", exit::store_message(s)),
        other => exit::login_message_for(other, ttys.stdin),
    }
}

/// The headless screen: the URL, with a QR code above it on a terminal tall and wide enough
/// for both (the URL comes after the code, so both stay on screen), then the prompt. Where
/// the code does not fit, one line says so and how to see it.
fn show_headless_url(ui: &Ui, url: &url::Url, ttys: Ttys, suggest_limit: bool) {
    const PROMPT: &str = "After you approve, OpenRouter shows a code. Paste it here and press Enter (Ctrl-C to cancel):";
    // A key minted on a shared or remote machine: say once how to cap what it can spend.
    const TIP: &str =
        "Tip: on a shared or remote machine, --limit USD caps what the new key can spend.";
    let tip = suggest_limit.then_some(TIP);
    let size = (!ui.json && ttys.stderr)
        .then(stderr_size)
        .flatten()
        .filter(|&(w, h)| w > 0 && h > 0);
    let Some((cols, rows)) = size else {
        ui.line(&format!(
            "Open this URL on any device to sign in to OpenRouter:\n\n  {url}\n"
        ));
        if let Some(tip) = tip {
            ui.line(tip);
        }
        ui.line(PROMPT);
        return;
    };
    let head = "Open this URL on any device, or scan the code, to sign in to OpenRouter:";
    // Lines on screen: the text wrapped at `cols`, the URL as the terminal folds it, and the
    // line the cursor waits on.
    let lines = |s: &str| wrap(s, cols).lines().count();
    let url_rows = (2 + url.as_str().chars().count()).div_ceil(cols);
    let text_rows = lines(head) + url_rows + 1 + tip.map_or(0, lines) + lines(PROMPT) + 1;
    let qr = qr_code(url);
    match qr {
        Some(qr)
            if qr.lines().count() + text_rows <= rows
                && qr.lines().next().map_or(0, |l| l.chars().count()) <= cols =>
        {
            ui.line(head);
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "{qr}");
            let _ = err.flush();
            ui.line(&format!("  {url}\n"));
            if let Some(tip) = tip {
                ui.line(tip);
            }
        }
        qr => {
            ui.line(&format!(
                "Open this URL on any device to sign in to OpenRouter:\n\n  {url}\n"
            ));
            if let Some(tip) = tip {
                ui.line(tip);
            }
            if let Some(qr) = qr {
                let (w, h) = (
                    qr.lines().next().map_or(0, |l| l.chars().count()),
                    qr.lines().count() + text_rows,
                );
                ui.line(&format!(
                    "No QR code: it needs a {w}x{h} terminal, this one is {cols}x{rows}."
                ));
            }
        }
    }
    ui.line(PROMPT);
}

/// The `login` call with the CLI's observer.
fn login_once(
    options: &LoginOptions,
    ui: &Ui,
    ttys: Ttys,
    deadline: Instant,
    handle: &LoginHandle,
    replaced: &Arc<Mutex<Option<String>>>,
) -> Result<openrouter_auth::LoginOutcome, LoginError> {
    let open_browser = options.open_browser;
    let suggest_limit = options.limit.is_none();
    let replaced = replaced.clone();
    let forced = matches!(options.replace, ReplacePolicy::Force);
    let ui2 = ui.clone();
    let mut reason: Option<String> = None;
    // Standard input is read for pastes only once the URL is shown: before that, the
    // library may ask (through `replace_policy`) whether to replace a key.
    let mut reading_pastes = false;
    // Why the last attempt at the code exchange failed, for the retry's line.
    let mut retry_reason: Option<String> = None;
    let paste_handle = handle.clone();
    let mut observer = move |e: LoginEvent| match e {
        LoginEvent::Listening { port, ipv6 } => {
            tracing::debug!(port, ipv6, "listening");
        }
        LoginEvent::HeadlessChosen { reason: why } => {
            ui2.line(&format!(
                "{why}: using headless sign-in; --no-headless to wait for a browser callback instead."
            ));
            reason = Some(why.to_string());
        }
        LoginEvent::HeadlessFallback { reason: why } => ui2.line(&format!(
            "Could not open a loopback listener ({why}): using headless sign-in instead."
        )),
        LoginEvent::ReplacingKey(existing) if forced => {
            *replaced.lock().unwrap_or_else(|p| p.into_inner()) = Some(replacing_line(&existing));
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
                show_headless_url(&ui2, &url, ttys, suggest_limit);
            } else {
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
            // After the URL is out (a thread's start is not on the path to it).
            if !reading_pastes {
                reading_pastes = true;
                spawn_paste_reader(paste_handle.clone());
            }
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
            } else if let Some(why) = retry_reason.take() {
                ui2.line(&format!(
                    "The last try failed ({why}). Retrying the code exchange (attempt {attempt})…"
                ));
            } else {
                ui2.line(&format!("Retrying the code exchange (attempt {attempt})…"));
            }
        }
        LoginEvent::ExchangeRetry { reason, .. } => retry_reason = Some(reason),
        LoginEvent::OpenRouterUnreachable { base_url, reason } => {
            ui2.json(serde_json::json!({
                "event": "openrouter_unreachable",
                "base_url": base_url.as_str(),
                "reason": reason,
            }));
            ui2.line(&format!(
                "warning: OpenRouter at {base_url} cannot be reached: {reason}. Approving now would fail: check the network, a proxy (HTTPS_PROXY) or the address, then start again."
            ));
        }
        LoginEvent::PasteRejected { reason } => {
            ui2.json(serde_json::json!({"event": "paste_rejected", "reason": reason}));
            ui2.line(&format!("Not accepted: {reason}. Still waiting."));
        }
        _ => {}
    };
    login(options, &mut observer, handle)
}

fn report_login_error(ui: &Ui, e: LoginError, message: String, base_url: &url::Url) -> u8 {
    let code = exit::login_failure(&e).code;
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
            ui.line(&format!("error: {message}"));
            ui.line("Your new key is below. It was not stored: keep it now.");
            println!("{}", key.expose_secret());
            return code;
        }
    }
    ui.json(ev);
    ui.line(&format!("error: {message}"));
    code
}
