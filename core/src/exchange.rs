//! The code exchange: `POST {base_url}/api/v1/auth/keys` (OpenRouter's OAuth PKCE guide,
//! step 2: <https://openrouter.ai/docs/use-cases/oauth-pkce>; RFC 7636 section 4.5).
//!
//! [`exchange_request`] builds the request as data; [`parse_exchange_response`] turns
//! OpenRouter's answer into the key or one [`FlowError`] per documented failure, filed under
//! who must act ([`UserError`], [`OpenRouterError`], [`ProgramError`]).

use crate::error::{FlowError, OpenRouterError, ProgramError, UserError};
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
#[non_exhaustive]
pub struct ExchangeSuccess {
    /// The new API key.
    pub key: ApiKey,
    /// OpenRouter's user id (`user_…`), when it sent one.
    pub user_id: Option<String>,
}

#[derive(Serialize)]
struct ExchangeBody<'a> {
    code: &'a str,
    code_verifier: &'a str,
    code_challenge_method: &'a str,
}

/// Builds `POST {base_url}/api/v1/auth/keys` with `Content-Type: application/json`,
/// `Accept: application/json`, our `User-Agent`, and the JSON body
/// `{"code", "code_verifier", "code_challenge_method"}` (OpenRouter's OAuth PKCE guide, step 2).
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

/// Classifies OpenRouter's answer to the exchange. Errors, one per documented failure
/// (OpenRouter's OAuth PKCE guide, step 2, and its API reference): 400 `Invalid code_challenge_method`
/// [`ProgramError::InvalidCodeChallengeMethod`]; 403 [`UserError::InvalidCode`] or
/// [`UserError::CodeExpired`]; 405 [`ProgramError::MethodNotAllowed`]; 409
/// [`OpenRouterError::Conflict`]; 429 [`OpenRouterError::RateLimited`]; 5xx
/// [`OpenRouterError::Server`]; a 200 without a usable key [`OpenRouterError::MissingKey`],
/// never a success; anything else [`OpenRouterError::Unexpected`]. Never a
/// [`FlowError::Network`]: that is the shell's transport failing. Messages never contain the
/// code, the verifier or a key.
pub fn parse_exchange_response(resp: &HttpResponse) -> Result<ExchangeSuccess, FlowError> {
    let body: &[u8] = &resp.body;
    let message = || error_message(body);
    match resp.status {
        200 | 201 => {
            let parsed: SuccessBody =
                serde_json::from_slice(body).map_err(|e| OpenRouterError::MissingKey {
                    reason: if e.is_eof() {
                        "the body was cut short".into()
                    } else {
                        "the body is not the expected JSON".into()
                    },
                })?;
            let key = match parsed.key {
                Some(serde_json::Value::String(k)) => Zeroizing::new(k),
                Some(_) => {
                    return Err(OpenRouterError::MissingKey {
                        reason: "`key` is not a string".into(),
                    }
                    .into())
                }
                None => {
                    return Err(OpenRouterError::MissingKey {
                        reason: "no `key` in the answer".into(),
                    }
                    .into())
                }
            };
            if !looks_like_key(&key) {
                return Err(OpenRouterError::MissingKey {
                    reason: "the key does not look like an OpenRouter key".into(),
                }
                .into());
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
                Err(ProgramError::InvalidCodeChallengeMethod.into())
            } else {
                Err(unexpected(resp))
            }
        }
        401 | 403 => {
            let m = message().unwrap_or_default().to_ascii_lowercase();
            if m.contains("expired") {
                Err(UserError::CodeExpired.into())
            } else {
                Err(UserError::InvalidCode.into())
            }
        }
        405 => Err(ProgramError::MethodNotAllowed.into()),
        409 => Err(OpenRouterError::Conflict {
            message: message().map(redact_keys),
        }
        .into()),
        429 => Err(OpenRouterError::RateLimited {
            retry_after: parse_retry_after(resp.header("retry-after")),
        }
        .into()),
        500..=599 => Err(OpenRouterError::Server {
            status: resp.status,
        }
        .into()),
        _ => Err(unexpected(resp)),
    }
}

fn unexpected(resp: &HttpResponse) -> FlowError {
    let excerpt = error_message(&resp.body).unwrap_or_else(|| sanitise(&resp.body));
    FlowError::OpenRouter(OpenRouterError::Unexpected {
        status: resp.status,
        excerpt: Some(redact_keys(excerpt)).filter(|e| !e.is_empty()),
    })
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
        use crate::error::{OpenRouterError::*, ProgramError::*, UserError::*};
        let p = |r: HttpResponse| parse_exchange_response(&r).unwrap_err();
        assert_eq!(
            p(err(400, "Invalid code_challenge_method")),
            FlowError::from(InvalidCodeChallengeMethod)
        );
        assert_eq!(
            p(err(403, "Invalid code or code_verifier")),
            FlowError::from(InvalidCode)
        );
        assert_eq!(
            p(err(403, "Authorization code expired")),
            FlowError::from(CodeExpired)
        );
        assert_eq!(
            p(err(405, "Method Not Allowed")),
            FlowError::from(MethodNotAllowed)
        );
        assert_eq!(
            p(err(409, "Failed to create or update app")),
            FlowError::from(Conflict {
                message: Some("Failed to create or update app".into())
            })
        );
        assert_eq!(
            p(err(429, "slow down").with_header("Retry-After", "17")),
            FlowError::from(RateLimited {
                retry_after: Some(Duration::from_secs(17))
            })
        );
        assert_eq!(
            p(resp(429, "")),
            FlowError::from(RateLimited { retry_after: None })
        );
        assert_eq!(
            p(resp(502, "<html>bad gateway</html>")),
            FlowError::from(Server { status: 502 })
        );
        assert_eq!(
            p(resp(418, "I'm a\n\n teapot\u{1}")),
            FlowError::from(Unexpected {
                status: 418,
                excerpt: Some("I'm a teapot?".into())
            })
        );
        assert_eq!(
            p(resp(400, "")),
            FlowError::from(Unexpected {
                status: 400,
                excerpt: None
            })
        );
    }

    #[test]
    fn ok_without_usable_key_is_an_error() {
        let p = |b: &str| parse_exchange_response(&resp(200, b)).unwrap_err();
        assert!(matches!(
            p(r#"{"user_id":"u"}"#),
            FlowError::OpenRouter(OpenRouterError::MissingKey { .. })
        ));
        assert!(matches!(
            p(r#"{"key":17}"#),
            FlowError::OpenRouter(OpenRouterError::MissingKey { .. })
        ));
        assert!(matches!(
            p(r#"{"key":""}"#),
            FlowError::OpenRouter(OpenRouterError::MissingKey { .. })
        ));
        assert!(matches!(
            p(r#"{"key":"not-a-key-at-all"}"#),
            FlowError::OpenRouter(OpenRouterError::MissingKey { .. })
        ));
        assert!(matches!(
            p(r#"{"key":"sk-or-v1-ab"#),
            FlowError::OpenRouter(OpenRouterError::MissingKey { .. })
        ));
        assert!(matches!(
            p("<html>"),
            FlowError::OpenRouter(OpenRouterError::MissingKey { .. })
        ));
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
        let FlowError::OpenRouter(OpenRouterError::Unexpected {
            excerpt: Some(e), ..
        }) = parse_exchange_response(&resp(418, &long)).unwrap_err()
        else {
            panic!("expected Unexpected")
        };
        assert!(e.chars().count() <= EXCERPT_CHARS + 1);
    }
}
