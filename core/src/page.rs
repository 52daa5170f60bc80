//! The HTTP responses the loopback listener sends to the browser, made here so every shell
//! answers the same way.
//!
//! Every response carries these headers (RFC 8252 section 8.3; RFC 9700 sections 4.2,
//! 4.3 and 4.16: the listener is reachable by any local page): `Cache-Control: no-store`,
//! `Referrer-Policy: no-referrer`, `X-Content-Type-Options: nosniff`, a
//! `Content-Security-Policy` that loads nothing from anywhere (the one inline style is allowed
//! by its hash), `X-Frame-Options: DENY` and `Connection: close`. Every reflected value is
//! HTML-escaped. Pages tell the truth: "signed in" only after the key was received and stored.

use crate::app::AppName;
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::sync::Arc;

/// One response header: name and value. Every header the listener sends is a fixed string
/// except `Location`, so most are borrowed.
pub type Header = (Cow<'static, str>, Cow<'static, str>);

/// An HTTP/1.1 response to the browser, as data. [`BrowserResponse::encode`] gives the bytes.
///
/// Its fixed parts are borrowed (the reason phrase, the security headers) and its body is
/// shared, so a response built from a rendered page costs no allocation to make, clone or
/// drop: a [`crate::Flow`] renders each page once and hands out the same body for every
/// repeat of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowserResponse {
    /// Status code, e.g. 200.
    pub status: u16,
    /// Reason phrase, e.g. `OK`.
    pub reason: Cow<'static, str>,
    /// Headers other than `Content-Length` (added by [`BrowserResponse::encode`]).
    pub headers: Cow<'static, [Header]>,
    /// The body (UTF-8 HTML or empty).
    pub body: Arc<str>,
}

impl BrowserResponse {
    /// The response as bytes on the wire. For a `HEAD` request pass `head_only = true`:
    /// the same head (with the `Content-Length` of the full body) and no body (RFC 9110
    /// section 9.3.2). Allocates the returned buffer, at its exact size, and nothing else.
    pub fn encode(&self, head_only: bool) -> Vec<u8> {
        let mut status = Digits::new();
        let mut length = Digits::new();
        let status = status.of(self.status.into());
        let length = length.of(self.body.len());
        let body = if head_only { "" } else { &*self.body };
        let size = "HTTP/1.1 \r\n".len()
            + status.len()
            + 1
            + self.reason.len()
            + self
                .headers
                .iter()
                .map(|(n, v)| n.len() + v.len() + 4)
                .sum::<usize>()
            + "Content-Length: \r\n\r\n".len()
            + length.len()
            + body.len();
        let mut out = Vec::with_capacity(size);
        out.extend_from_slice(b"HTTP/1.1 ");
        out.extend_from_slice(status);
        out.push(b' ');
        out.extend_from_slice(self.reason.as_bytes());
        out.extend_from_slice(b"\r\n");
        for (n, v) in self.headers.iter() {
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"Content-Length: ");
        out.extend_from_slice(length);
        out.extend_from_slice(b"\r\n\r\n");
        out.extend_from_slice(body.as_bytes());
        debug_assert_eq!(out.len(), size);
        out
    }

    /// The value of the first header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| &**v)
    }
}

/// A number in decimal, written into a stack buffer.
struct Digits([u8; 20]);

impl Digits {
    fn new() -> Self {
        Digits([0; 20])
    }

    fn of(&mut self, mut n: usize) -> &[u8] {
        let mut i = self.0.len();
        loop {
            i -= 1;
            // `n % 10` is below 10: the cast cannot truncate.
            self.0[i] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                return &self.0[i..];
            }
        }
    }
}

/// A borrowed header, for the tables below.
const fn fixed(name: &'static str, value: &'static str) -> Header {
    (Cow::Borrowed(name), Cow::Borrowed(value))
}

/// The headers every response ends with, in order (see the module doc).
macro_rules! security_headers {
    ($($first:expr),*) => {
        [
            $($first,)*
            fixed("Cache-Control", "no-store"),
            fixed("Referrer-Policy", "no-referrer"),
            fixed("X-Content-Type-Options", "nosniff"),
            fixed("X-Frame-Options", "DENY"),
            fixed("Content-Security-Policy", CSP),
            fixed("Connection", "close"),
        ]
    };
}

const SECURITY_HEADERS: [Header; 6] = security_headers!();
const HTML: Header = fixed("Content-Type", "text/html; charset=utf-8");
const PLAIN: Header = fixed("Content-Type", "text/plain; charset=utf-8");

/// The headers of an HTML page.
static PAGE_HEADERS: [Header; 7] = security_headers!(HTML);

/// The headers of the 405 page: `Allow` names the methods served.
static NOT_ALLOWED_HEADERS: [Header; 8] = security_headers!(HTML, fixed("Allow", "GET, HEAD"));

/// Every page and plain answer the listener can give.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Page {
    /// 200: the key was received and handed to the shell's store. `location` says where, in
    /// words; the page shows it as "Delivered to", which reads right for a file, a keychain,
    /// standard output or the app's own storage.
    SignedIn {
        /// e.g. `credentials file /home/ana/.config/openrouter-auth/credentials.json`.
        location: String,
        /// The `key_label` the key was created with, if the flow sent one.
        key_label: Option<String>,
        /// The key's page on OpenRouter, where it can be revoked
        /// (`{base_url}/keys/<hash>`, [`crate::ApiKey::key_page_url`]).
        key_page: Option<String>,
    },
    /// 200: the key was received but could not be stored; the program shows it. The page
    /// names the key and links its OpenRouter page, where it can be revoked: the key exists
    /// there either way.
    KeyNotStored {
        /// The `key_label` the key was created with, if the flow sent one.
        key_label: Option<String>,
        /// The key's page on OpenRouter (`{base_url}/keys/<hash>`,
        /// [`crate::ApiKey::key_page_url`]).
        key_page: Option<String>,
    },
    /// 200: the user (or OpenRouter) refused, via an `error=` callback. Served on `/done`,
    /// after the callback itself got a 303 there.
    Denied {
        /// The `error` value, e.g. `access_denied`.
        error: String,
        /// `error_description`, if any.
        description: Option<String>,
    },
    /// 200: the sign-in failed; `reason` is the user-facing error message (shown as a
    /// sentence: first letter capitalised, a full stop added).
    Failed {
        /// Why, in words (escaped when rendered).
        reason: String,
    },
    /// 200: the program cancelled the sign-in.
    Cancelled,
    /// 200: the sign-in waited too long for the browser, or the authorization code expired.
    Expired,
    /// 200: the code arrived and the key is being fetched (a reload during the exchange).
    InProgress,
    /// 200: a request on the flow's own path after it ended.
    AlreadyFinished,
    /// 303 See Other to `location` (the clean `/done` URL, so the code leaves the
    /// address bar and history: RFC 9700 section 4.3).
    SeeOther {
        /// Path to redirect to, e.g. `/callback/<nonce>/done`.
        location: String,
    },
    /// 400: a request on our path we cannot use. `reason` is shown (escaped).
    BadRequest {
        /// Why, in words.
        reason: String,
    },
    /// 404: any path that is not ours (`/favicon.ico`, `/`, another nonce).
    NotFound,
    /// 405: a method other than GET or HEAD.
    MethodNotAllowed,
    /// 408: the request head did not arrive in time.
    RequestTimeout,
    /// 421: the `Host` header does not name this listener (DNS-rebinding guard).
    MisdirectedRequest,
    /// 431: the request head was larger than the listener accepts.
    HeadTooLarge,
    /// 503: the listener is at its connection limit.
    Busy,
}

const STYLE: &str = ":root{color-scheme:light dark;--fg:#1f2328;--muted:#59636e;--bg:#f6f8fa;--card:#fff;--line:#d1d9e0;--link:#0969da;--ok:#1a7f37;--err:#cf222e;--warn:#9a6700;--info:#59636e}@media (prefers-color-scheme:dark){:root{--fg:#e6edf3;--muted:#9198a1;--bg:#0d1117;--card:#151b23;--line:#3d444d;--link:#4493f8;--ok:#2da44e;--err:#f85149;--warn:#d29922;--info:#9198a1}}*{box-sizing:border-box}body{margin:0;min-height:100vh;display:flex;flex-direction:column;align-items:center;justify-content:center;padding:2rem 1rem;background:var(--bg);color:var(--fg);font:16px/1.5 system-ui,-apple-system,\"Segoe UI\",Roboto,sans-serif}main{width:100%;max-width:32rem;background:var(--card);border:1px solid var(--line);border-radius:12px;padding:2rem 1.5rem;text-align:center}.mark{display:block;width:48px;height:48px;margin:0 auto 1rem}.mark circle{fill:var(--c)}.mark path{fill:none;stroke:#fff;stroke-width:2.4;stroke-linecap:round;stroke-linejoin:round}.ok{--c:var(--ok)}.err{--c:var(--err)}.warn{--c:var(--warn)}.info{--c:var(--info)}h1{font-size:1.375rem;line-height:1.3;margin:0 0 .75rem}p{margin:0 0 .75rem;overflow-wrap:anywhere}p.next{font-weight:600;margin-bottom:0}dl{margin:1.25rem 0 0;padding-top:1rem;border-top:1px solid var(--line);text-align:left;display:grid;grid-template-columns:max-content 1fr;gap:.375rem 1rem;font-size:.9375rem}dt{color:var(--muted)}dd{margin:0;overflow-wrap:anywhere}a{color:var(--link)}p.link{margin:1rem 0 0;font-size:.9375rem}code{font:.875em ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}footer{margin-top:1.25rem;color:var(--muted);font-size:.8125rem;text-align:center}@media (max-width:400px){main{padding:1.5rem 1rem}dl{grid-template-columns:1fr;gap:0}dd{margin-bottom:.5rem}}";

/// The `Content-Security-Policy` of every page. The style hash is the base64 SHA-256 of
/// [`STYLE`], written out so no page render hashes anything; the test
/// `style_hash_in_csp_matches_the_inline_style` recomputes it. Inline SVG needs no source:
/// it is part of the document.
const CSP: &str = "default-src 'none'; style-src 'sha256-16AkVXnPFmTY3YYweCBDuwNYUvZZ6Gz3Wl7LyFVG7+0='; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

/// Escapes `& < > " '` for HTML text and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The status mark at the top of a page: a filled circle with a symbol, drawn inline (no
/// request, allowed by the CSP). Decorative: the headline says the same in words.
#[derive(Clone, Copy)]
enum Mark {
    /// A check mark on green.
    Ok,
    /// A cross on red.
    Error,
    /// An exclamation mark on amber.
    Warning,
    /// An "i" on grey: nothing went wrong, here is where you are.
    Info,
    /// A clock on grey: waiting, or waited too long.
    Clock,
    /// A bar on grey: stopped on purpose (declined, cancelled).
    Stopped,
}

impl Mark {
    fn svg(self) -> &'static str {
        match self {
            Mark::Ok => "<svg class=\"mark ok\" viewBox=\"0 0 24 24\" aria-hidden=\"true\"><circle cx=\"12\" cy=\"12\" r=\"12\"/><path d=\"M6.75 12.5l3.5 3.5 7-7.5\"/></svg>",
            Mark::Error => "<svg class=\"mark err\" viewBox=\"0 0 24 24\" aria-hidden=\"true\"><circle cx=\"12\" cy=\"12\" r=\"12\"/><path d=\"M8 8l8 8M16 8l-8 8\"/></svg>",
            Mark::Warning => "<svg class=\"mark warn\" viewBox=\"0 0 24 24\" aria-hidden=\"true\"><circle cx=\"12\" cy=\"12\" r=\"12\"/><path d=\"M12 6.5v7M12 17.25v.25\"/></svg>",
            Mark::Info => "<svg class=\"mark info\" viewBox=\"0 0 24 24\" aria-hidden=\"true\"><circle cx=\"12\" cy=\"12\" r=\"12\"/><path d=\"M12 11v6M12 7.25v.25\"/></svg>",
            Mark::Clock => "<svg class=\"mark info\" viewBox=\"0 0 24 24\" aria-hidden=\"true\"><circle cx=\"12\" cy=\"12\" r=\"12\"/><path d=\"M12 6.75V12l3.5 2.25\"/></svg>",
            Mark::Stopped => "<svg class=\"mark info\" viewBox=\"0 0 24 24\" aria-hidden=\"true\"><circle cx=\"12\" cy=\"12\" r=\"12\"/><path d=\"M7.5 12h9\"/></svg>",
        }
    }
}

/// What a page says, in order: one headline, one sentence of what happened, the one next
/// step, then optional details (label, value) and a link. Text is HTML already escaped.
struct Body {
    mark: Mark,
    headline: &'static str,
    happened: String,
    next: Option<String>,
    details: Vec<(&'static str, String)>,
    link: Option<(String, &'static str)>,
}

fn html(app: &AppName, b: Body) -> String {
    let mut out = String::with_capacity(4096);
    out.push_str("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n<meta name=\"color-scheme\" content=\"light dark\">\n<link rel=\"icon\" href=\"data:,\">\n<title>");
    out.push_str(b.headline);
    out.push_str(" · OpenRouter sign-in</title>\n<style>");
    out.push_str(STYLE);
    out.push_str("</style>\n</head>\n<body>\n<main>\n");
    out.push_str(b.mark.svg());
    out.push_str("\n<h1>");
    out.push_str(b.headline);
    out.push_str("</h1>\n<p>");
    out.push_str(&b.happened);
    out.push_str("</p>\n");
    if let Some(next) = &b.next {
        out.push_str("<p class=\"next\">");
        out.push_str(next);
        out.push_str("</p>\n");
    }
    if !b.details.is_empty() {
        out.push_str("<dl>\n");
        for (term, value) in &b.details {
            out.push_str("<dt>");
            out.push_str(term);
            out.push_str("</dt><dd>");
            out.push_str(value);
            out.push_str("</dd>\n");
        }
        out.push_str("</dl>\n");
    }
    if let Some((href, text)) = &b.link {
        out.push_str("<p class=\"link\"><a href=\"");
        out.push_str(href);
        out.push_str("\" rel=\"noreferrer\">");
        out.push_str(text);
        out.push_str("</a></p>\n");
    }
    out.push_str("</main>\n<footer>");
    out.push_str(&escape_html(app.as_str()));
    out.push_str(" · Sign in with OpenRouter</footer>\n</body>\n</html>\n");
    out
}

/// `reason` as a sentence: first letter upper case, ending in a full stop.
fn sentence(reason: &str) -> String {
    let reason = reason.trim();
    let mut chars = reason.chars();
    let mut out: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => return String::new(),
    };
    if !out.ends_with(['.', '!', '?', '…']) {
        out.push('.');
    }
    out
}

impl Page {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            Page::SeeOther { .. } => 303,
            Page::BadRequest { .. } => 400,
            Page::NotFound => 404,
            Page::MethodNotAllowed => 405,
            Page::RequestTimeout => 408,
            Page::MisdirectedRequest => 421,
            Page::HeadTooLarge => 431,
            Page::Busy => 503,
            _ => 200,
        }
    }

    fn reason(&self) -> &'static str {
        match self.status() {
            303 => "See Other",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            408 => "Request Timeout",
            421 => "Misdirected Request",
            431 => "Request Header Fields Too Large",
            503 => "Service Unavailable",
            _ => "OK",
        }
    }

    /// The page's headline (its `<h1>` and `<title>`), e.g. `Signed in to OpenRouter`;
    /// `None` for the 303, which has no body.
    pub fn headline(&self) -> Option<&'static str> {
        Some(match self {
            Page::SignedIn { .. } => "Signed in to OpenRouter",
            Page::KeyNotStored { .. } => "Signed in, but the key was not stored",
            Page::Denied { .. } | Page::Cancelled => "Sign-in cancelled",
            Page::Failed { .. } => "Sign-in failed",
            Page::Expired => "Sign-in expired",
            Page::InProgress => "Signing in…",
            Page::AlreadyFinished => "This sign-in has finished",
            Page::SeeOther { .. } => return None,
            Page::BadRequest { .. } => "This sign-in link does not work",
            Page::NotFound => "Page not found",
            Page::MethodNotAllowed => "Method not allowed",
            Page::RequestTimeout => "Request timed out",
            Page::MisdirectedRequest => "Wrong address",
            Page::HeadTooLarge => "Request too large",
            Page::Busy => "Too many connections",
        })
    }

    /// Renders the page with all the security headers, for the default app name
    /// (`openrouter-auth`). See [`Page::render_for`].
    pub fn render(&self) -> BrowserResponse {
        self.render_for(&AppName::default())
    }

    /// Renders the page with all the security headers; the page names `app` ("you can return
    /// to `<app>`"), HTML-escaped.
    pub fn render_for(&self, app: &AppName) -> BrowserResponse {
        self.response(self.html_for(app).into())
    }

    /// This page's response with `body`, the page's [`Page::html_for`] rendered earlier:
    /// the status, reason and headers cost no allocation (but the 303's `Location`).
    pub(crate) fn response(&self, body: Arc<str>) -> BrowserResponse {
        let headers = match self {
            Page::SeeOther { location } => {
                let mut h = Vec::with_capacity(2 + SECURITY_HEADERS.len());
                h.push((Cow::Borrowed("Location"), Cow::Owned(location.clone())));
                h.push(PLAIN);
                h.extend(SECURITY_HEADERS);
                Cow::Owned(h)
            }
            Page::MethodNotAllowed => Cow::Borrowed(&NOT_ALLOWED_HEADERS[..]),
            _ => Cow::Borrowed(&PAGE_HEADERS[..]),
        };
        BrowserResponse {
            status: self.status(),
            reason: Cow::Borrowed(self.reason()),
            headers,
            body,
        }
    }

    /// The page's HTML naming `app`; empty for the 303, which has no body.
    pub(crate) fn html_for(&self, app: &AppName) -> String {
        let a = escape_html(app.as_str());
        let restart = format!("To try again, start a new sign-in from {a}.");
        let body = |mark, happened: String, next: Option<String>| Body {
            mark,
            headline: self.headline().unwrap_or_default(),
            happened,
            next,
            details: Vec::new(),
            link: None,
        };
        let body = match self {
            Page::SeeOther { .. } => None,
            Page::SignedIn {
                location,
                key_label,
                key_page,
            } => {
                let mut b = body(
                    Mark::Ok,
                    format!("OpenRouter created a new API key for {a}."),
                    Some(format!("You can close this tab and return to {a}.")),
                );
                if let Some(label) = key_label {
                    b.details.push(("Key name", escape_html(label)));
                }
                // A line may break after each `/` of a path rather than inside a name.
                b.details.push(("Delivered to", escape_html(location).replace('/', "/<wbr>")));
                b.link = key_page
                    .as_ref()
                    .map(|u| (escape_html(u), "See or revoke this key on OpenRouter"));
                Some(b)
            }
            Page::KeyNotStored {
                key_label,
                key_page,
            } => {
                let mut b = body(
                    Mark::Warning,
                    format!("OpenRouter created a new API key, but {a} could not save it."),
                    Some(format!(
                        "Return to {a}: it shows the key, so you can save it yourself."
                    )),
                );
                if let Some(label) = key_label {
                    b.details.push(("Key name", escape_html(label)));
                }
                b.link = key_page
                    .as_ref()
                    .map(|u| (escape_html(u), "See or revoke this key on OpenRouter"));
                Some(b)
            }
            Page::Denied { error, description } => {
                let mut happened = if error == "access_denied" {
                    "You declined access on OpenRouter, so no API key was created.".to_string()
                } else {
                    format!(
                        "OpenRouter stopped the sign-in (<code>{}</code>), so no API key was created.",
                        escape_html(error)
                    )
                };
                // OpenRouter's description of a denial only repeats it ("The user denied
                // access"): say it once. Anything else it says is quoted.
                let repeats = error == "access_denied"
                    && description
                        .as_deref()
                        .is_some_and(|d| d.to_ascii_lowercase().contains("denied"));
                if let Some(d) = description.as_deref().map(str::trim) {
                    if !repeats && !d.is_empty() {
                        happened.push_str(" OpenRouter said: “");
                        happened.push_str(&escape_html(d));
                        happened.push('”');
                    }
                }
                Some(body(Mark::Stopped, happened, Some(restart)))
            }
            Page::Failed { reason } => Some(body(
                Mark::Error,
                escape_html(&sentence(reason)),
                Some(format!("Return to {a} for the details, then start a new sign-in from there.")),
            )),
            Page::Cancelled => Some(body(
                Mark::Stopped,
                format!("{a} stopped waiting for this sign-in."),
                Some(restart),
            )),
            Page::Expired => Some(body(
                Mark::Clock,
                "This sign-in took too long and has ended, so no API key was created.".into(),
                Some(format!("Start a new sign-in from {a}.")),
            )),
            Page::InProgress => Some(body(
                Mark::Clock,
                format!("OpenRouter sent the authorization code; {a} is fetching your key."),
                Some("The first tab shows the result. You can close this one.".into()),
            )),
            Page::AlreadyFinished => Some(body(
                Mark::Info,
                "This sign-in link was already used.".into(),
                Some(format!("If you need to sign in again, start a new sign-in from {a}.")),
            )),
            Page::BadRequest { reason } => Some(body(
                Mark::Error,
                escape_html(&sentence(reason)),
                Some(format!("Start a new sign-in from {a}.")),
            )),
            Page::NotFound => Some(body(
                Mark::Info,
                "This address is not part of a sign-in.".into(),
                Some(format!("If you are signing in, use the link {a} showed you.")),
            )),
            Page::MethodNotAllowed => Some(body(
                Mark::Error,
                "This sign-in server only answers GET and HEAD requests.".into(),
                None,
            )),
            Page::RequestTimeout => Some(body(
                Mark::Error,
                "The request did not arrive in time.".into(),
                Some("Reload the page to try again.".into()),
            )),
            Page::MisdirectedRequest => Some(body(
                Mark::Error,
                "This sign-in server only answers to localhost, 127.0.0.1 and [::1].".into(),
                Some(format!("Open the link {a} showed you, as it is.")),
            )),
            Page::HeadTooLarge => Some(body(
                Mark::Error,
                "The request was too large (over 16 KiB): your browser is probably sending large cookies for localhost.".into(),
                Some(format!(
                    "Start a new sign-in from {a} with the callback host <code>127.0.0.1</code>, which has no cookies."
                )),
            )),
            Page::Busy => Some(body(
                Mark::Warning,
                "The sign-in server is busy with too many connections.".into(),
                Some("Reload this page in a moment.".into()),
            )),
        };
        body.map(|b| html(app, b)).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reflected_values_are_escaped() {
        let r = Page::Failed {
            reason: "<script>alert('x')</script> & \"q\"".into(),
        }
        .render();
        assert!(!r.body.contains("<script>"));
        assert!(r
            .body
            .contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt; &amp; &quot;q&quot;"));
        let r = Page::Denied {
            error: "<b>".into(),
            description: Some("<i>".into()),
        }
        .render();
        assert!(!r.body.contains("<b>") && !r.body.contains("<i>"));
    }

    /// The visible text of a page: tags removed.
    fn text(page: &Page) -> String {
        let body = page.render_for(&AppName::new("Acme Agent").unwrap()).body;
        let body = &body[body.find("<body>").unwrap()..];
        let mut out = String::new();
        let mut in_tag = false;
        for c in body.chars() {
            match c {
                '<' => in_tag = true,
                '>' => in_tag = false,
                c if !in_tag => out.push(c),
                _ => {}
            }
        }
        out
    }

    #[test]
    fn each_page_says_what_happened_and_the_next_step_once() {
        let denied = text(&Page::Denied {
            error: "access_denied".into(),
            description: Some("The user denied access".into()),
        });
        assert!(denied.contains("You declined access"), "{denied}");
        assert!(
            !denied.contains("The user"),
            "said twice, in the third person: {denied}"
        );
        assert!(
            denied.contains("start a new sign-in from Acme Agent"),
            "{denied}"
        );

        let expired = text(&Page::Expired);
        assert!(
            expired.contains("Start a new sign-in from Acme Agent."),
            "{expired}"
        );

        let failed = text(&Page::Failed {
            reason: "could not reach OpenRouter: connection refused".into(),
        });
        assert!(
            failed.contains("Could not reach OpenRouter: connection refused."),
            "a raw lower-case error without a full stop: {failed}"
        );

        let to_stdout = text(&Page::SignedIn {
            location: "standard output".into(),
            key_label: Some("Acme Agent on ana-laptop".into()),
            key_page: Some("https://openrouter.ai/keys/ab12".into()),
        });
        assert!(
            !to_stdout.contains("stored in standard output"),
            "{to_stdout}"
        );
        assert!(
            to_stdout.contains("Delivered tostandard output"),
            "{to_stdout}"
        );
        assert!(
            to_stdout.contains("Acme Agent on ana-laptop"),
            "{to_stdout}"
        );
        assert!(to_stdout.contains("return to Acme Agent."), "{to_stdout}");
        let body = Page::SignedIn {
            location: "standard output".into(),
            key_label: None,
            key_page: Some("https://openrouter.ai/keys/ab12".into()),
        }
        .render()
        .body;
        assert!(
            body.contains("<a href=\"https://openrouter.ai/keys/ab12\" rel=\"noreferrer\">See or revoke this key on OpenRouter</a>"),
            "{body}"
        );
    }

    #[test]
    fn every_page_has_one_headline_and_a_status_mark() {
        for p in all_pages() {
            let r = p.render();
            if p.status() == 303 {
                assert!(r.body.is_empty());
                continue;
            }
            assert_eq!(r.body.matches("<h1>").count(), 1, "{p:?}");
            assert!(r
                .body
                .contains(&format!("<h1>{}</h1>", p.headline().unwrap())));
            assert_eq!(r.body.matches("<svg class=\"mark ").count(), 1, "{p:?}");
        }
    }

    #[test]
    fn every_page_has_security_headers() {
        for p in all_pages() {
            let r = p.render();
            assert_eq!(r.header("cache-control"), Some("no-store"), "{p:?}");
            assert_eq!(r.header("referrer-policy"), Some("no-referrer"));
            assert_eq!(r.header("x-content-type-options"), Some("nosniff"));
            assert_eq!(r.header("connection"), Some("close"));
            let csp = r.header("content-security-policy").unwrap();
            assert!(csp.starts_with("default-src 'none'"));
            assert!(
                !csp.contains("http"),
                "CSP must load nothing external: {csp}"
            );
        }
    }

    #[test]
    fn head_has_no_body_but_full_length() {
        let r = Page::NotFound.render();
        let head = String::from_utf8(r.encode(true)).unwrap();
        assert!(head.ends_with("\r\n\r\n"));
        assert!(head.contains(&format!("Content-Length: {}\r\n", r.body.len())));
        assert_eq!(r.encode(false).len(), head.len() + r.body.len());
    }

    #[test]
    fn style_hash_in_csp_matches_the_inline_style() {
        use base64::Engine;
        use sha2::{Digest, Sha256};
        let r = Page::NotFound.render();
        let start = r.body.find("<style>").unwrap() + 7;
        let end = r.body.find("</style>").unwrap();
        let hash = base64::engine::general_purpose::STANDARD
            .encode(Sha256::digest(&r.body.as_bytes()[start..end]));
        assert!(r.header("content-security-policy").unwrap().contains(&hash));
    }

    pub(crate) fn all_pages() -> Vec<Page> {
        vec![
            Page::SignedIn {
                location: "credentials file /home/ana/.config/openrouter-auth/credentials.json"
                    .into(),
                key_label: Some("openrouter-auth on ana-laptop 2026-12-02".into()),
                key_page: Some("https://openrouter.ai/keys/3f1c9a0e7b2d".into()),
            },
            Page::KeyNotStored {
                key_label: Some("openrouter-auth on ana-laptop 2026-12-02".into()),
                key_page: Some("https://openrouter.ai/keys/3f1c9a0e7b2d".into()),
            },
            Page::Denied {
                error: "access_denied".into(),
                description: Some("The user denied access".into()),
            },
            Page::Failed {
                reason: "OpenRouter had a server error (502)".into(),
            },
            Page::Cancelled,
            Page::Expired,
            Page::InProgress,
            Page::AlreadyFinished,
            Page::SeeOther {
                location: "/callback/n/done".into(),
            },
            Page::BadRequest {
                reason: "the query is not valid UTF-8".into(),
            },
            Page::NotFound,
            Page::MethodNotAllowed,
            Page::RequestTimeout,
            Page::MisdirectedRequest,
            Page::HeadTooLarge,
            Page::Busy,
        ]
    }

    #[test]
    fn snapshots_of_every_page() {
        for p in all_pages() {
            let r = p.render();
            let name = format!(
                "page_{}_{}",
                r.status,
                format!("{p:?}").split([' ', '{', '(']).next().unwrap()
            );
            insta::assert_snapshot!(name, String::from_utf8(r.encode(false)).unwrap());
        }
    }
}
