//! The code exchange: `POST {base_url}/api/v1/auth/keys` (PROTOCOL.md section 3).
//!
//! [`exchange_request`] builds the request as data; [`parse_exchange_response`] turns
//! OpenRouter's answer into the key or one [`ExchangeError`] per documented failure.

use crate::http::{HttpMethod, HttpRequest, HttpResponse, USER_AGENT};
use crate::pkce::{CodeChallengeMethod, CodeVerifier};
use crate::secret::{ApiKey, AuthorizationCode};
use serde::{Deserialize, Serialize};
use std::time::Duration;
use zeroize::Zeroizing;

/// How many characters of an unexpected body an error may carry.
pub const EXCERPT_CHARS: usize = 200;

/// What a successful exchange returns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeSuccess {
    /// The new API key.
    pub key: ApiKey,
    /// OpenRouter's user id (`user_…`), when it sent one.
    pub user_id: Option<String>,
}

/// Why the code exchange failed. Each documented failure of PROTOCOL.md section 3 has its
/// own variant; [`ExchangeError::Unexpected`] catches the rest. Messages never contain the
/// code, the verifier or a key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
pub enum ExchangeError {
    /// 400 `Invalid code_challenge_method`: the method differed between `/auth` and the
    /// exchange. A bug in the client (the caller), not the user's fault.
    #[error("OpenRouter rejected the code_challenge_method (400): this is a bug in the program, please report it")]
    InvalidCodeChallengeMethod,
    /// 403 `Invalid code or code_verifier`: wrong verifier, or the code was already used.
    #[error("OpenRouter rejected the authorization code (403: invalid code or code_verifier); it may have been used already. Start the sign-in again")]
    InvalidCode,
    /// 403 `Authorization code expired`: more than 10 minutes since the code was issued.
    #[error(
        "the authorization code expired (codes are valid for 10 minutes). Start the sign-in again"
    )]
    CodeExpired,
    /// 405 `Method Not Allowed`: not a POST over HTTPS (a wrong base URL or a proxy).
    #[error("OpenRouter answered 405 Method Not Allowed: check the base URL (it must be https)")]
    MethodNotAllowed,
    /// 409: OpenRouter failed to create or update the app. On OpenRouter's side.
    #[error("OpenRouter could not create the key (409{}); try again later, or create a key at https://openrouter.ai/keys", message_suffix(.message))]
    Conflict {
        /// OpenRouter's message, sanitised and cut to [`EXCERPT_CHARS`].
        message: Option<String>,
    },
    /// 429: rate limited.
    #[error("OpenRouter is rate limiting requests (429){}; start the sign-in again later", retry_suffix(.retry_after))]
    RateLimited {
        /// From `Retry-After` (seconds form), if present.
        retry_after: Option<Duration>,
    },
    /// 5xx: OpenRouter failed.
    #[error("OpenRouter had a server error ({status}); start the sign-in again in a moment")]
    Server {
        /// The status code, 500 to 599.
        status: u16,
    },
    /// 200, but no usable key in the body (missing, not a string, not `sk-or-`, not JSON,
    /// truncated). A key may have been created: the user should check their key list.
    #[error("OpenRouter answered without a usable key ({reason}); a key may have been created: check https://openrouter.ai/keys")]
    MissingKey {
        /// What was wrong, without the body.
        reason: String,
    },
    /// Any other answer.
    #[error("OpenRouter answered {status} unexpectedly{}", message_suffix(.excerpt))]
    Unexpected {
        /// The status code.
        status: u16,
        /// A sanitised excerpt of the body (printable ASCII, at most [`EXCERPT_CHARS`]).
        excerpt: Option<String>,
    },
}

fn message_suffix(m: &Option<String>) -> String {
    match m {
        Some(m) if !m.is_empty() => format!(": {m}"),
        _ => String::new(),
    }
}

fn retry_suffix(d: &Option<Duration>) -> String {
    match d {
        Some(d) => format!(" for {} s", d.as_secs()),
        None => String::new(),
    }
}

#[derive(Serialize)]
struct ExchangeBody<'a> {
    code: &'a str,
    code_verifier: &'a str,
    code_challenge_method: &'a str,
}

/// Builds `POST {base_url}/api/v1/auth/keys` with `Content-Type: application/json`,
/// `Accept: application/json`, our `User-Agent`, and the JSON body
/// `{"code", "code_verifier", "code_challenge_method"}` (PROTOCOL.md section 3).
pub fn exchange_request(
    base_url: &url::Url,
    code: &AuthorizationCode,
    code_verifier: &CodeVerifier,
    method: CodeChallengeMethod,
) -> HttpRequest {
    let body = ExchangeBody {
        code: code.expose_secret(),
        code_verifier: code_verifier.expose_secret(),
        code_challenge_method: method.as_str(),
    };
    let body = serde_json::to_vec(&body).expect("three strings always serialise");
    HttpRequest {
        method: HttpMethod::Post,
        url: api_url(base_url, "/api/v1/auth/keys"),
        headers: vec![
            (
                "Content-Type".into(),
                Zeroizing::new("application/json".into()),
            ),
            ("Accept".into(), Zeroizing::new("application/json".into())),
            ("User-Agent".into(), Zeroizing::new(USER_AGENT.into())),
        ],
        body: Zeroizing::new(body),
    }
}

pub(crate) fn api_url(base_url: &url::Url, path: &str) -> url::Url {
    let mut u = base_url.clone();
    u.set_query(None);
    u.set_fragment(None);
    u.set_path(path);
    u
}

#[derive(Deserialize)]
struct ErrorBody {
    error: ErrorDetail,
}

#[derive(Deserialize)]
struct ErrorDetail {
    #[serde(default)]
    message: Option<String>,
}

/// OpenRouter's `{"error": {"message": …}}`, sanitised, if the body has that shape.
pub(crate) fn error_message(body: &[u8]) -> Option<String> {
    serde_json::from_slice::<ErrorBody>(body)
        .ok()
        .and_then(|b| b.error.message)
        .map(|m| sanitise(m.as_bytes()))
}

/// Printable ASCII only (others become `?`), white space folded, cut to [`EXCERPT_CHARS`].
pub fn sanitise(bytes: &[u8]) -> String {
    let mut out = String::new();
    let mut last_space = false;
    for &b in bytes.iter().take(EXCERPT_CHARS * 4) {
        let c = match b {
            b' ' | b'\t' | b'\r' | b'\n' => ' ',
            0x21..=0x7e => b as char,
            _ => '?',
        };
        if c == ' ' && last_space {
            continue;
        }
        last_space = c == ' ';
        out.push(c);
        if out.len() >= EXCERPT_CHARS {
            out.push('…');
            break;
        }
    }
    out.trim().to_owned()
}

/// Redacts anything that looks like an API key (`sk-or-…`) from an excerpt.
pub(crate) fn redact_keys(s: String) -> String {
    match s.find("sk-or-") {
        Some(i) => {
            let end = s[i..]
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '-' || c == '_'))
                .map_or(s.len(), |j| i + j);
            let mut out = s[..i].to_owned();
            out.push_str("[redacted]");
            out.push_str(&redact_keys(s[end..].to_owned()));
            out
        }
        None => s,
    }
}

/// `Retry-After` in its delta-seconds form (RFC 9110 section 10.2.3); an HTTP-date is ignored.
pub fn parse_retry_after(value: Option<&str>) -> Option<Duration> {
    value
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs)
}

#[derive(Deserialize)]
struct SuccessBody {
    key: Option<serde_json::Value>,
    #[serde(default)]
    user_id: Option<serde_json::Value>,
}

/// Classifies OpenRouter's answer to the exchange. Errors: [`ExchangeError`], one per
/// documented failure (PROTOCOL.md section 3). A 200 without a usable key is
/// [`ExchangeError::MissingKey`], never a success.
pub fn parse_exchange_response(resp: &HttpResponse) -> Result<ExchangeSuccess, ExchangeError> {
    let body: &[u8] = &resp.body;
    let message = || error_message(body);
    match resp.status {
        200 | 201 => {
            let parsed: SuccessBody =
                serde_json::from_slice(body).map_err(|e| ExchangeError::MissingKey {
                    reason: if e.is_eof() {
                        "the body was cut short".into()
                    } else {
                        "the body is not the expected JSON".into()
                    },
                })?;
            let key = match parsed.key {
                Some(serde_json::Value::String(k)) => Zeroizing::new(k),
                Some(_) => {
                    return Err(ExchangeError::MissingKey {
                        reason: "`key` is not a string".into(),
                    })
                }
                None => {
                    return Err(ExchangeError::MissingKey {
                        reason: "no `key` in the answer".into(),
                    })
                }
            };
            if !looks_like_key(&key) {
                return Err(ExchangeError::MissingKey {
                    reason: "the key does not look like an OpenRouter key".into(),
                });
            }
            let user_id = match parsed.user_id {
                Some(serde_json::Value::String(u)) => Some(sanitise(u.as_bytes())),
                _ => None,
            };
            Ok(ExchangeSuccess {
                key: ApiKey::new(key.as_str()),
                user_id,
            })
        }
        400 => {
            let m = message();
            if m.as_deref()
                .is_some_and(|m| m.to_ascii_lowercase().contains("code_challenge_method"))
            {
                Err(ExchangeError::InvalidCodeChallengeMethod)
            } else {
                Err(unexpected(resp))
            }
        }
        401 | 403 => {
            let m = message().unwrap_or_default().to_ascii_lowercase();
            if m.contains("expired") {
                Err(ExchangeError::CodeExpired)
            } else {
                Err(ExchangeError::InvalidCode)
            }
        }
        405 => Err(ExchangeError::MethodNotAllowed),
        409 => Err(ExchangeError::Conflict {
            message: message().map(redact_keys),
        }),
        429 => Err(ExchangeError::RateLimited {
            retry_after: parse_retry_after(resp.header("retry-after")),
        }),
        500..=599 => Err(ExchangeError::Server {
            status: resp.status,
        }),
        _ => Err(unexpected(resp)),
    }
}

fn unexpected(resp: &HttpResponse) -> ExchangeError {
    let excerpt = error_message(&resp.body).unwrap_or_else(|| sanitise(&resp.body));
    ExchangeError::Unexpected {
        status: resp.status,
        excerpt: Some(redact_keys(excerpt)).filter(|e| !e.is_empty()),
    }
}

/// `sk-or-` followed by 8 to 256 characters of `A-Z a-z 0-9 - _`.
fn looks_like_key(k: &str) -> bool {
    k.strip_prefix("sk-or-").is_some_and(|rest| {
        (8..=256).contains(&rest.len())
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

    fn resp(status: u16, body: &str) -> HttpResponse {
        HttpResponse::new(status, body.as_bytes().to_vec())
    }

    fn err(status: u16, message: &str) -> HttpResponse {
        resp(
            status,
            &serde_json::json!({"error": {"code": status, "message": message}}).to_string(),
        )
    }

    #[test]
    fn request_shape() {
        let v = CodeVerifier::parse("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").unwrap();
        let req = exchange_request(
            &"https://openrouter.ai/some/path?x=1".parse().unwrap(),
            &AuthorizationCode::new("the-code"),
            &v,
            CodeChallengeMethod::S256,
        );
        assert_eq!(req.method, HttpMethod::Post);
        assert_eq!(req.url.as_str(), "https://openrouter.ai/api/v1/auth/keys");
        assert_eq!(req.header("content-type"), Some("application/json"));
        assert!(req
            .header("user-agent")
            .unwrap()
            .starts_with("openrouter-auth/"));
        let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"code": "the-code", "code_verifier": v.expose_secret(), "code_challenge_method": "S256"})
        );
        let dbg = format!("{req:?}");
        assert!(
            !dbg.contains("the-code") && !dbg.contains(v.expose_secret()),
            "{dbg}"
        );
    }

    #[test]
    fn success() {
        let ok = parse_exchange_response(&resp(
            200,
            &format!(r#"{{"key":"{KEY}","user_id":"user_1"}}"#),
        ))
        .unwrap();
        assert_eq!(ok.key.expose_secret(), KEY);
        assert_eq!(ok.user_id.as_deref(), Some("user_1"));
        let ok = parse_exchange_response(&resp(
            200,
            &format!(r#"{{"key":"{KEY}","user_id":null,"extra":1}}"#),
        ))
        .unwrap();
        assert_eq!(ok.user_id, None);
    }

    #[test]
    fn documented_failures_map_one_by_one() {
        use ExchangeError::*;
        let p = |r: HttpResponse| parse_exchange_response(&r).unwrap_err();
        assert_eq!(
            p(err(400, "Invalid code_challenge_method")),
            InvalidCodeChallengeMethod
        );
        assert_eq!(p(err(403, "Invalid code or code_verifier")), InvalidCode);
        assert_eq!(p(err(403, "Authorization code expired")), CodeExpired);
        assert_eq!(p(err(405, "Method Not Allowed")), MethodNotAllowed);
        assert_eq!(
            p(err(409, "Failed to create or update app")),
            Conflict {
                message: Some("Failed to create or update app".into())
            }
        );
        assert_eq!(
            p(err(429, "slow down").with_header("Retry-After", "17")),
            RateLimited {
                retry_after: Some(Duration::from_secs(17))
            }
        );
        assert_eq!(p(resp(429, "")), RateLimited { retry_after: None });
        assert_eq!(
            p(resp(502, "<html>bad gateway</html>")),
            Server { status: 502 }
        );
        assert_eq!(
            p(resp(418, "I'm a\n\n teapot\u{1}")),
            Unexpected {
                status: 418,
                excerpt: Some("I'm a teapot?".into())
            }
        );
        assert_eq!(
            p(resp(400, "")),
            Unexpected {
                status: 400,
                excerpt: None
            }
        );
    }

    #[test]
    fn ok_without_usable_key_is_an_error() {
        let p = |b: &str| parse_exchange_response(&resp(200, b)).unwrap_err();
        assert!(matches!(
            p(r#"{"user_id":"u"}"#),
            ExchangeError::MissingKey { .. }
        ));
        assert!(matches!(
            p(r#"{"key":17}"#),
            ExchangeError::MissingKey { .. }
        ));
        assert!(matches!(
            p(r#"{"key":""}"#),
            ExchangeError::MissingKey { .. }
        ));
        assert!(matches!(
            p(r#"{"key":"not-a-key-at-all"}"#),
            ExchangeError::MissingKey { .. }
        ));
        assert!(matches!(
            p(r#"{"key":"sk-or-v1-ab"#),
            ExchangeError::MissingKey { .. }
        ));
        assert!(matches!(p("<html>"), ExchangeError::MissingKey { .. }));
    }

    #[test]
    fn keys_never_leak_into_errors() {
        let e = parse_exchange_response(&resp(418, &format!("oops {KEY} more"))).unwrap_err();
        assert!(!e.to_string().contains(KEY), "{e}");
        let e = parse_exchange_response(&err(409, &format!("dup {KEY}"))).unwrap_err();
        assert!(!e.to_string().contains(KEY), "{e}");
    }

    #[test]
    fn excerpt_is_bounded() {
        let long = "x".repeat(10_000);
        let ExchangeError::Unexpected {
            excerpt: Some(e), ..
        } = parse_exchange_response(&resp(418, &long)).unwrap_err()
        else {
            panic!("expected Unexpected")
        };
        assert!(e.chars().count() <= EXCERPT_CHARS + 1);
    }
}
