//! A small model of OpenRouter (PROTOCOL.md sections 1 to 4), in virtual time.
//!
//! - `/auth` validates the authorization URL and issues a code bound to its `code_challenge`
//!   (or sends the browser back with `error=access_denied`). It echoes `state` if told to.
//! - The code exchange checks, in the emulator's order: unknown or used code (403 `Invalid
//!   code or code_verifier`), expiry 10 minutes after issue (403 `Authorization code
//!   expired`), `code_challenge_method` (400), the verifier against the challenge (403). A
//!   request that gets that far uses the code up, whatever the verdict.
//! - Keys are `sk-or-v1-` and 64 lowercase hex digits; each remembers the code and challenge
//!   it was issued for, so the simulator can tell whose key a flow stored.

use super::rng::SimRng;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use openrouter_auth_core::{CodeChallengeMethod, HttpResponse};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use url::Url;

/// Codes expire this long after they were issued (ms).
pub const CODE_LIFETIME_MS: u64 = 10 * 60 * 1000;

/// One authorization code OpenRouter issued.
#[derive(Debug, Clone)]
pub struct CodeRecord {
    /// The code.
    pub code: String,
    /// The `code_challenge` it is bound to.
    pub challenge: String,
    /// The method given at `/auth`.
    pub method: CodeChallengeMethod,
    /// Virtual ms of issue.
    pub issued_at: u64,
    /// Used up by an exchange that reached the checks.
    pub used: bool,
    /// How many exchange requests carried it.
    pub seen: u32,
}

/// One key OpenRouter created.
#[derive(Debug, Clone)]
pub struct KeyRecord {
    /// The code it was created for.
    pub code: String,
    /// That code's challenge.
    pub challenge: String,
    /// The `key_label`, if given.
    pub label: Option<String>,
}

/// What `/auth` made of an authorization URL.
#[derive(Debug, Clone)]
pub struct Authorized {
    /// The `callback_url`, absent in headless mode.
    pub callback_url: Option<Url>,
    /// `state`, if given.
    pub state: Option<String>,
    /// `code_challenge`.
    pub challenge: String,
    /// `code_challenge_method`.
    pub method: CodeChallengeMethod,
    /// `key_label`.
    pub label: Option<String>,
}

/// The model.
#[derive(Debug, Default)]
pub struct OpenRouter {
    codes: BTreeMap<String, CodeRecord>,
    keys: BTreeMap<String, KeyRecord>,
    /// Echo `state` on callbacks.
    pub echo_state: bool,
}

impl OpenRouter {
    /// A model that echoes `state` or not.
    pub fn new(echo_state: bool) -> Self {
        OpenRouter {
            echo_state,
            ..Default::default()
        }
    }

    /// Checks an authorization URL like `GET /auth` would. Errors: what OpenRouter would
    /// refuse (its page would show an error instead of asking the user).
    pub fn check_authorize(&self, url: &Url) -> Result<Authorized, String> {
        if url.scheme() != "https" || url.path() != "/auth" {
            return Err(format!("not the authorize endpoint: {}", url.path()));
        }
        let mut callback_url = None;
        let mut challenge = None;
        let mut method = None;
        let mut label = None;
        let mut state = None;
        for (k, v) in url.query_pairs() {
            let slot = match &*k {
                "callback_url" => {
                    let cb = Url::parse(&v).map_err(|e| format!("callback_url: {e}"))?;
                    let loopback = cb.scheme() == "http"
                        && matches!(cb.host_str(), Some("localhost" | "127.0.0.1"))
                        && cb.port().is_some();
                    if !loopback && cb.scheme() != "https" {
                        return Err(format!("callback_url not allowed: {cb}"));
                    }
                    callback_url.replace(cb).is_some()
                }
                "code_challenge" => challenge.replace(v.into_owned()).is_some(),
                "code_challenge_method" => {
                    let m = match &*v {
                        "S256" => CodeChallengeMethod::S256,
                        "plain" => CodeChallengeMethod::Plain,
                        other => return Err(format!("code_challenge_method {other}")),
                    };
                    method.replace(m).is_some()
                }
                "key_label" => {
                    if v.chars().count() > 100 {
                        return Err("key_label over 100 characters".into());
                    }
                    label.replace(v.into_owned()).is_some()
                }
                "state" => state.replace(v.into_owned()).is_some(),
                other => return Err(format!("unknown parameter {other}")),
            };
            if slot {
                return Err(format!("{k} given twice"));
            }
        }
        let challenge = challenge.ok_or("no code_challenge")?;
        let method = method.unwrap_or(CodeChallengeMethod::S256);
        if method == CodeChallengeMethod::S256
            && (challenge.len() != 43 || URL_SAFE_NO_PAD.decode(&challenge).is_err())
        {
            return Err("a malformed S256 code_challenge".into());
        }
        Ok(Authorized {
            callback_url,
            state,
            challenge,
            method,
            label,
        })
    }

    /// The user approved: issues a code bound to `auth`'s challenge.
    pub fn issue_code(&mut self, auth: &Authorized, now: u64, rng: &mut SimRng) -> String {
        let code = rng.token(32);
        self.codes.insert(
            code.clone(),
            CodeRecord {
                code: code.clone(),
                challenge: auth.challenge.clone(),
                method: auth.method,
                issued_at: now,
                used: false,
                seen: 0,
            },
        );
        code
    }

    /// Where the browser goes back to: `callback_url` with `code` (or `error`) appended, and
    /// `state` if the model echoes it.
    pub fn redirect(&self, auth: &Authorized, outcome: Result<&str, &str>) -> Option<Url> {
        let mut url = auth.callback_url.clone()?;
        {
            let mut q = url.query_pairs_mut();
            match outcome {
                Ok(code) => {
                    q.append_pair("code", code);
                }
                Err(error) => {
                    q.append_pair("error", error);
                    q.append_pair("error_description", "The user denied access");
                }
            }
            if self.echo_state {
                if let Some(s) = &auth.state {
                    q.append_pair("state", s);
                }
            }
        }
        Some(url)
    }

    /// Whether `code` is issued, unused and unexpired at `now`, for `challenge`.
    pub fn code_is_good(&self, code: &str, challenge: &str, now: u64) -> bool {
        self.codes.get(code).is_some_and(|r| {
            !r.used
                && now.saturating_sub(r.issued_at) <= CODE_LIFETIME_MS
                && r.challenge == challenge
        })
    }

    /// The record of `code`.
    pub fn code(&self, code: &str) -> Option<&CodeRecord> {
        self.codes.get(code)
    }

    /// The record of `key`.
    pub fn key(&self, key: &str) -> Option<&KeyRecord> {
        self.keys.get(key)
    }

    /// `POST /api/v1/auth/keys`: returns the answer and the code the body carried.
    pub fn exchange(&mut self, body: &[u8], now: u64, rng: &mut SimRng) -> (HttpResponse, String) {
        // Every message is a constant with nothing to escape, so this is the JSON that
        // `serde_json::json!({"error": {"code": status, "message": message}})` prints.
        let err = |status: u16, message: &'static str| {
            HttpResponse::new(
                status,
                format!(r#"{{"error":{{"code":{status},"message":"{message}"}}}}"#),
            )
            .with_header("Content-Type", "application/json")
        };
        let Some(ExchangeBody {
            code,
            code_verifier: verifier,
            code_challenge_method,
        }) = ExchangeBody::parse(body)
        else {
            return (err(400, "Invalid JSON"), String::new());
        };
        let method = match code_challenge_method.as_str() {
            "" | "S256" => CodeChallengeMethod::S256,
            "plain" => CodeChallengeMethod::Plain,
            _ => return (err(400, "Invalid code_challenge_method"), code),
        };
        let Some(rec) = self.codes.get_mut(&code) else {
            return (err(403, "Invalid code or code_verifier"), code);
        };
        rec.seen += 1;
        if rec.used {
            return (err(403, "Invalid code or code_verifier"), code);
        }
        if now.saturating_sub(rec.issued_at) > CODE_LIFETIME_MS {
            rec.used = true;
            return (err(403, "Authorization code expired"), code);
        }
        if method != rec.method {
            return (err(400, "Invalid code_challenge_method"), code);
        }
        rec.used = true;
        let ok = match method {
            CodeChallengeMethod::S256 => {
                URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == rec.challenge
            }
            CodeChallengeMethod::Plain => verifier == rec.challenge,
        };
        if !ok {
            return (err(403, "Invalid code or code_verifier"), code);
        }
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let hex: String = rng
            .bytes(32)
            .iter()
            .flat_map(|b| [HEX[usize::from(b >> 4)], HEX[usize::from(b & 0xf)]])
            .map(char::from)
            .collect();
        let key = format!("sk-or-v1-{hex}");
        self.keys.insert(
            key.clone(),
            KeyRecord {
                code: code.clone(),
                challenge: rec.challenge.clone(),
                label: None,
            },
        );
        // `key` and `user` are hex and ASCII letters: this is the JSON `serde_json` prints
        // for `{"key": key, "user_id": user}`.
        let user = format!("user_{}", &hex[..12]);
        let resp = HttpResponse::new(200, format!(r#"{{"key":"{key}","user_id":"{user}"}}"#))
            .with_header("Content-Type", "application/json");
        (resp, code)
    }

    /// `GET /api/v1/key` for `key` as OpenRouter (or a proxy in front of it) might answer:
    /// `variant` 0 is the normal answer (200 for a key it issued, 401 otherwise); the others
    /// are the failures a key check meets (used to seed the `key_info` fuzz corpus).
    pub fn key_info(&self, key: &str, variant: u8, rng: &mut SimRng) -> HttpResponse {
        let normal = match self.keys.get(key) {
            Some(rec) => {
                let usage = rng.below(10_000) as f64 / 100.0;
                let limit = if rng.chance(50) {
                    serde_json::Value::Null
                } else {
                    serde_json::json!(usage + rng.below(1_000) as f64)
                };
                HttpResponse::new(
                    200,
                    serde_json::json!({"data": {
                        "label": rec.label.clone().unwrap_or_else(|| "openrouter-auth".into()),
                        "limit": limit, "limit_remaining": null, "usage": usage,
                        "usage_daily": 0.0, "usage_weekly": usage / 2.0, "usage_monthly": usage,
                        "is_free_tier": rng.chance(50),
                        "expires_at": if rng.chance(80) { serde_json::Value::Null } else { "2030-01-01T00:00:00Z".into() },
                        "rate_limit": {"requests": 20, "interval": "10s"}
                    }})
                    .to_string(),
                )
            }
            None => HttpResponse::new(
                401,
                r#"{"error":{"code":401,"message":"No auth credentials found"}}"#,
            ),
        };
        match variant % 9 {
            0 => normal,
            1 => HttpResponse::new(401, r#"{"error":{"code":401,"message":"User not found"}}"#),
            2 => HttpResponse::new(429, "").with_header("Retry-After", "7"),
            3 => HttpResponse::new(502, "<html><h1>502 Bad Gateway</h1></html>"),
            4 => HttpResponse::new(404, r#"{"error":{"code":404,"message":"Not Found"}}"#),
            5 => HttpResponse::new(200, r#"{"data":null}"#),
            6 => {
                let cut = normal.body.len() / 2;
                HttpResponse::new(200, normal.body[..cut].to_vec())
            }
            7 => HttpResponse::new(403, "<html>Forbidden by proxy</html>"),
            // A debugging proxy that echoes the request, our `Authorization` header included.
            _ => HttpResponse::new(
                400,
                format!(
                    "<html><pre>400 Bad Request\nGET /api/v1/key HTTP/1.1\nAuthorization: Bearer {key}\nAccept: application/json</pre></html>"
                ),
            ),
        }
    }

    /// All keys issued so far.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.keys.keys().map(String::as_str)
    }
}

/// The fields of an exchange body the model reads, each `""` when missing or not a string.
struct ExchangeBody {
    code: String,
    code_verifier: String,
    code_challenge_method: String,
}

impl ExchangeBody {
    /// `None` if `body` is not JSON ([`openrouter_auth_oracle::exchange_fields`]).
    fn parse(body: &[u8]) -> Option<Self> {
        let [code, code_verifier, code_challenge_method] =
            openrouter_auth_oracle::exchange_fields(body)?.map(Option::unwrap_or_default);
        Some(ExchangeBody {
            code,
            code_verifier,
            code_challenge_method,
        })
    }
}
