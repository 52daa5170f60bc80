//! The renderer: progress on stderr, results on stdout, or `--json` lines on stdout; the spinner, the QR code,
//! the description of a checked key, and the yes/no prompt.

use indicatif::{ProgressBar, ProgressStyle};
use openrouter_auth::core;
use openrouter_auth::terminal::{escape, escape_text};
use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The version of the `--json` lines' shape, in every line as `schema`: raised when a field
/// changes meaning or goes away (new fields may come without it).
pub const JSON_SCHEMA: u32 = 1;

/// Human output (progress, prompts and errors on stderr, results on stdout), or JSON lines
/// on stdout. Neither lets a control character from
/// outside through (issue 12, rule 4): text lines go through [`escape_text`], JSON lines are
/// [`openrouter_auth::terminal::json_line`].
#[derive(Clone)]
pub struct Ui {
    pub json: bool,
    pub fancy: bool,
    pub spinner: Arc<Mutex<Option<ProgressBar>>>,
}

impl Ui {
    pub fn new(json: bool) -> Self {
        // The spinner redraws its line: only on a terminal that can (not TERM=dumb). NO_COLOR
        // asks for no colour, and the spinner has none, so it does not stop it.
        let fancy = !json
            && std::io::stderr().is_terminal()
            && std::env::var_os("TERM").is_none_or(|t| t != "dumb");
        Ui {
            json,
            fancy,
            spinner: Arc::new(Mutex::new(None)),
        }
    }

    pub fn line(&self, s: &str) {
        self.stop_spinner();
        if !self.json {
            eprintln!("{}", wrap(&escape_text(s), stderr_width()));
        }
    }

    /// A result the person asked for (`status`, the key after `login`): on stdout, so
    /// `openrouter-auth status | less` shows it; nothing in `--json` mode.
    pub fn result(&self, s: &str) {
        self.stop_spinner();
        if !self.json {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", wrap(&escape_text(s), stdout_width()));
            let _ = out.flush();
        }
    }

    /// One `--json` line, led by `"schema": JSON_SCHEMA` (the README documents each event).
    pub fn json(&self, mut v: serde_json::Value) {
        if let serde_json::Value::Object(m) = &mut v {
            m.shift_insert(0, "schema".to_owned(), JSON_SCHEMA.into());
        }
        if self.json {
            let mut out = std::io::stdout().lock();
            let _ = writeln!(out, "{}", openrouter_auth::terminal::json_line(&v));
            let _ = out.flush();
        }
    }

    /// "Waiting for the browser": a spinner with the time left when stderr is a terminal and
    /// `spinner` allows it (not while the user may be typing a paste: the spinner would
    /// redraw over the input), else one line.
    pub fn start_waiting(&self, deadline: Instant, spinner: bool) {
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

    pub fn stop_spinner(&self) {
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

/// The width prose is wrapped to on stderr: its terminal's; when it is not a terminal (a
/// pipe, a file), `COLUMNS` if set, else 80 columns.
pub fn stderr_width() -> usize {
    width_or_80(terminal_size::terminal_size_of(std::io::stderr()))
}

/// [`stderr_width`] for stdout.
pub fn stdout_width() -> usize {
    width_or_80(terminal_size::terminal_size_of(std::io::stdout()))
}

fn width_or_80(size: Option<(terminal_size::Width, terminal_size::Height)>) -> usize {
    match size {
        Some((w, _)) => usize::from(w.0).max(20),
        // Not a terminal: `COLUMNS` when it is a number, as for other tools; else 80.
        None => std::env::var("COLUMNS")
            .ok()
            .and_then(|c| c.trim().parse::<usize>().ok())
            .filter(|&c| c > 0)
            .map_or(80, |c| c.max(20)),
    }
}

/// `text` wrapped to `width` columns, line by line: between words only, never inside one
/// (a URL too long for the line goes on a line of its own, whole), each line's indentation
/// kept for its continuation lines.
pub fn wrap(text: &str, width: usize) -> String {
    text.split('\n')
        .map(|line| {
            let body = line.trim_start_matches(' ');
            let indent = &line[..line.len() - body.len()];
            if body.is_empty() || textwrap::core::display_width(line) <= width {
                return line.to_owned();
            }
            let options = textwrap::Options::new(width)
                .initial_indent(indent)
                .subsequent_indent(indent)
                .break_words(false)
                .word_splitter(textwrap::WordSplitter::NoHyphenation);
            textwrap::wrap(body, options).join("\n")
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Whether standard input, output and error are terminals, read once.
#[derive(Clone, Copy)]
pub struct Ttys {
    pub stdin: bool,
    pub stderr: bool,
}

impl Ttys {
    pub fn detect() -> Self {
        Ttys {
            stdin: std::io::stdin().is_terminal(),
            stderr: std::io::stderr().is_terminal(),
        }
    }
}

/// Modules of light margin around the QR code: 2 (the standard asks for 4, but readers
/// manage with 2, and every row saved keeps the code on an 80x24 screen).
const QR_QUIET_ZONE: usize = 2;

/// The authorization URL as a QR code for the terminal: lowest error correction (the
/// shortest code), a quiet zone of [`QR_QUIET_ZONE`], two modules per character cell (upper
/// and lower half blocks). Light modules are drawn as blocks, dark ones as blanks, so the
/// code reads on a terminal with a dark background; its lines are all as wide.
pub fn qr_code(url: &url::Url) -> Option<String> {
    let code =
        qrcode::QrCode::with_error_correction_level(url.as_str(), qrcode::EcLevel::L).ok()?;
    let n = code.width();
    let colors = code.to_colors();
    let size = n + 2 * QR_QUIET_ZONE;
    // Light (drawn) at (x, y) of the code with its margin.
    let light = |x: usize, y: usize| {
        let (Some(cx), Some(cy)) = (x.checked_sub(QR_QUIET_ZONE), y.checked_sub(QR_QUIET_ZONE))
        else {
            return true;
        };
        cx >= n || cy >= n || colors[cy * n + cx] == qrcode::Color::Light
    };
    let mut out = String::new();
    for row in (0..size).step_by(2) {
        for x in 0..size {
            let top = light(x, row);
            // Below the last row (an odd size): the margin goes on, light.
            let bottom = row + 1 >= size || light(x, row + 1);
            out.push(match (top, bottom) {
                (true, true) => '█',
                (true, false) => '▀',
                (false, true) => '▄',
                (false, false) => ' ',
            });
        }
        out.push('\n');
    }
    out.pop();
    Some(out)
}

/// The terminal's size (columns, rows) on stderr, if it is one.
pub fn stderr_size() -> Option<(usize, usize)> {
    terminal_size::terminal_size_of(std::io::stderr())
        .map(|(w, h)| (usize::from(w.0), usize::from(h.0)))
}

pub fn money(v: Option<f64>) -> String {
    v.map_or("none".to_string(), |v| format!("${v:.2}"))
}

pub fn yes_no(v: Option<bool>) -> &'static str {
    v.map_or("unknown", |f| if f { "yes" } else { "no" })
}

/// The indented description of a checked key (status and after login). The label is
/// OpenRouter's text: escaped, so it stays on its line.
pub fn key_info_lines(info: &core::KeyInfo, page: &url::Url) -> String {
    format!(
        "  label:     {}\n  usage:     {}\n  limit:     {}{}\n  free tier: {}\n  key page:  {page}\n             (see usage there, or revoke the key)",
        escape(info.label.as_deref().unwrap_or("-")),
        money(info.usage),
        money(info.limit),
        match (info.limit, info.limit_remaining) {
            (Some(_), Some(left)) => format!(" ({} left)", money(Some(left))),
            _ => String::new(),
        },
        yes_no(info.is_free_tier),
    )
}

pub fn key_info_json(info: &core::KeyInfo) -> serde_json::Value {
    // Every field of the key check (OpenRouter's `GET /api/v1/key`), US dollars.
    serde_json::json!({
        "label": info.label, "usage": info.usage,
        "usage_daily": info.usage_daily, "usage_weekly": info.usage_weekly,
        "usage_monthly": info.usage_monthly, "limit": info.limit,
        "limit_remaining": info.limit_remaining, "is_free_tier": info.is_free_tier,
        "expires_at": info.expires_at,
    })
}

/// Asks a yes/no question on stderr and reads the answer from stdin (a terminal).
pub fn ask_yes_no(question: &str) -> bool {
    use std::io::BufRead;
    eprint!("{question} [y/N] ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    if std::io::stdin().lock().read_line(&mut answer).is_err() {
        return false;
    }
    matches!(answer.trim().to_ascii_lowercase().as_str(), "y" | "yes")
}
