//! The HTTP responses the loopback listener sends to the browser, made here so every shell
//! answers the same way.
//!
//! Every response carries the headers of PROTOCOL.md section 7: `Cache-Control: no-store`,
//! `Referrer-Policy: no-referrer`, `X-Content-Type-Options: nosniff`, a
//! `Content-Security-Policy` that loads nothing from anywhere (the one inline style is allowed
//! by its hash), `X-Frame-Options: DENY` and `Connection: close`. Every reflected value is
//! HTML-escaped. Pages tell the truth: "signed in" only after the key was received and stored.

use serde::{Deserialize, Serialize};

/// An HTTP/1.1 response to the browser, as data. [`BrowserResponse::encode`] gives the bytes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrowserResponse {
    /// Status code, e.g. 200.
    pub status: u16,
    /// Reason phrase, e.g. `OK`.
    pub reason: String,
    /// Headers other than `Content-Length` (added by [`BrowserResponse::encode`]).
    pub headers: Vec<(String, String)>,
    /// The body (UTF-8 HTML or empty).
    pub body: String,
}

impl BrowserResponse {
    /// The response as bytes on the wire. For a `HEAD` request pass `head_only = true`:
    /// the same head (with the `Content-Length` of the full body) and no body (RFC 9110
    /// section 9.3.2).
    pub fn encode(&self, head_only: bool) -> Vec<u8> {
        let mut out = Vec::with_capacity(512 + self.body.len());
        out.extend_from_slice(format!("HTTP/1.1 {} {}\r\n", self.status, self.reason).as_bytes());
        for (n, v) in &self.headers {
            out.extend_from_slice(n.as_bytes());
            out.extend_from_slice(b": ");
            out.extend_from_slice(v.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(format!("Content-Length: {}\r\n\r\n", self.body.len()).as_bytes());
        if !head_only {
            out.extend_from_slice(self.body.as_bytes());
        }
        out
    }

    /// The value of the first header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Every page and plain answer the listener can give.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Page {
    /// 200: the key was received and stored. `location` says where, in words.
    SignedIn {
        /// e.g. `credentials file /home/ana/.config/openrouter-auth/credentials.json`.
        location: String,
    },
    /// 200: the key was received but could not be stored; the program shows it.
    KeyNotStored,
    /// 200: the user (or OpenRouter) refused, via an `error=` callback. Served on `/done`,
    /// after the callback itself got a 303 there.
    Denied {
        /// The `error` value, e.g. `access_denied`.
        error: String,
        /// `error_description`, if any.
        description: Option<String>,
    },
    /// 200: the sign-in failed; `reason` is the user-facing error message.
    Failed {
        /// Why, in words (escaped when rendered).
        reason: String,
    },
    /// 200: the program cancelled the sign-in.
    Cancelled,
    /// 200: the sign-in waited too long for the browser.
    Expired,
    /// 200: the code arrived and the key is being fetched (a reload during the exchange).
    InProgress,
    /// 200: a request on the flow's own path after it ended.
    AlreadyFinished,
    /// 303 See Other to `location` (the clean `/done` URL, PROTOCOL.md section 7).
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

const STYLE: &str = "body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;max-width:36rem;margin:12vh auto;padding:0 1.5rem;color:#1f2328;line-height:1.5}h1{font-size:1.5rem}p.small{color:#59636e;font-size:.9rem}@media (prefers-color-scheme:dark){body{background:#0d1117;color:#e6edf3}p.small{color:#9198a1}}";

/// The `Content-Security-Policy` of every page. The style hash is the base64 SHA-256 of
/// [`STYLE`], written out so no page render hashes anything; the test
/// `style_hash_in_csp_matches_the_inline_style` recomputes it.
const CSP: &str = "default-src 'none'; style-src 'sha256-N16+WE3qLvJqeov9BJQC/MJ/hHmpAlLhu5L4WYxbBiA='; img-src data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

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

fn html(title: &str, paragraphs: &[String]) -> String {
    let title = escape_html(title);
    let mut out = String::with_capacity(
        1024 + 2 * title.len() + paragraphs.iter().map(|p| p.len() + 8).sum::<usize>(),
    );
    out.push_str("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\n<link rel=\"icon\" href=\"data:,\">\n<title>");
    out.push_str(&title);
    out.push_str(" · OpenRouter sign-in</title>\n<style>");
    out.push_str(STYLE);
    out.push_str("</style>\n</head>\n<body>\n<h1>");
    out.push_str(&title);
    out.push_str("</h1>\n");
    for p in paragraphs {
        out.push_str("<p>");
        out.push_str(p);
        out.push_str("</p>\n");
    }
    out.push_str("<p class=\"small\">openrouter-auth</p>\n</body>\n</html>\n");
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

    /// Renders the page with all the security headers.
    pub fn render(&self) -> BrowserResponse {
        let close = "You can close this tab and return to the terminal.".to_string();
        let body = match self {
            Page::SignedIn { location } => html(
                "Signed in to OpenRouter",
                &[
                    format!("Your new API key was stored in {}.", escape_html(location)),
                    close,
                ],
            ),
            Page::KeyNotStored => html(
                "Signed in, but the key was not stored",
                &["OpenRouter gave a key, but it could not be saved. The terminal shows it and says why.".into()],
            ),
            Page::Denied { error, description } => {
                let mut ps = vec![if error == "access_denied" {
                    "Access was denied, so no key was created.".to_string()
                } else {
                    format!("OpenRouter reported <code>{}</code>.", escape_html(error))
                }];
                if let Some(d) = description {
                    ps.push(escape_html(d));
                }
                ps.push(close);
                html("Sign-in cancelled", &ps)
            }
            Page::Failed { reason } => html("Sign-in failed", &[escape_html(reason), close]),
            Page::Cancelled => html("Sign-in cancelled", &["The program stopped waiting for this sign-in.".into(), close]),
            Page::Expired => html("Sign-in expired", &["This sign-in waited too long. Start it again from the terminal.".into()]),
            Page::InProgress => html("Signing in…", &["The authorization code arrived; the key is being fetched. The first tab shows the result.".into()]),
            Page::AlreadyFinished => html("This sign-in has finished", &["This link was already used. Start a new sign-in from the terminal if you need one.".into()]),
            Page::SeeOther { .. } => String::new(),
            Page::BadRequest { reason } => html("Bad request", &[escape_html(reason)]),
            Page::NotFound => html("Not found", &["Nothing here.".into()]),
            Page::MethodNotAllowed => html("Method not allowed", &["Only GET and HEAD are accepted.".into()]),
            Page::RequestTimeout => html("Request timeout", &["The request did not arrive in time.".into()]),
            Page::MisdirectedRequest => html("Misdirected request", &["This server answers only to localhost, 127.0.0.1 and [::1].".into()]),
            Page::HeadTooLarge => html(
                "Request too large",
                &[
                    "The request head is too large (over 16 KiB).".into(),
                    "If this was the sign-in, your browser is sending large cookies for localhost: \
                     start the sign-in again with <code>--callback-host 127.0.0.1</code>, which \
                     has no cookies."
                        .into(),
                ],
            ),
            Page::Busy => html("Busy", &["Too many connections; try again.".into()]),
        };
        let mut headers: Vec<(String, String)> = Vec::with_capacity(10);
        let mut h = |n: &str, v: String| headers.push((n.to_string(), v));
        if let Page::SeeOther { location } = self {
            h("Location", location.clone());
        }
        if body.is_empty() {
            h("Content-Type", "text/plain; charset=utf-8".into());
        } else {
            h("Content-Type", "text/html; charset=utf-8".into());
        }
        if matches!(self, Page::MethodNotAllowed) {
            h("Allow", "GET, HEAD".into());
        }
        h("Cache-Control", "no-store".into());
        h("Referrer-Policy", "no-referrer".into());
        h("X-Content-Type-Options", "nosniff".into());
        h("X-Frame-Options", "DENY".into());
        h("Content-Security-Policy", CSP.into());
        h("Connection", "close".into());
        BrowserResponse {
            status: self.status(),
            reason: self.reason().into(),
            headers,
            body,
        }
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
                location: "credentials file /tmp/x.json".into(),
            },
            Page::KeyNotStored,
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
