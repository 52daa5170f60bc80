//! The key check: `GET {base_url}/api/v1/key` with `Authorization: Bearer <key>`
//! (<https://openrouter.ai/docs/api/api-reference/api-keys/get-current-key>).

use crate::exchange::{api_url, error_message, redact_keys, sanitise};
use crate::http::{HttpMethod, HttpRequest, HttpResponse, USER_AGENT};
use crate::secret::ApiKey;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// What OpenRouter says about a key (`data` of `GET /api/v1/key`). Unknown fields are ignored;
/// every field is optional because OpenRouter documents several as nullable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct KeyInfo {
    /// The key's label (the `key_label` given at sign-in).
    #[serde(default)]
    pub label: Option<String>,
    /// Credit limit in US dollars; `None` for unlimited.
    #[serde(default)]
    pub limit: Option<f64>,
    /// Credits left under the limit, in US dollars; `None` for unlimited.
    #[serde(default)]
    pub limit_remaining: Option<f64>,
    /// Credits used in all, in US dollars.
    #[serde(default)]
    pub usage: Option<f64>,
    /// Credits used today (UTC), in US dollars.
    #[serde(default)]
    pub usage_daily: Option<f64>,
    /// Credits used this week (UTC), in US dollars.
    #[serde(default)]
    pub usage_weekly: Option<f64>,
    /// Credits used this month (UTC), in US dollars.
    #[serde(default)]
    pub usage_monthly: Option<f64>,
    /// Whether the account has never bought credits.
    #[serde(default)]
    pub is_free_tier: Option<bool>,
    /// When the key expires (ISO 8601), if it does.
    #[serde(default)]
    pub expires_at: Option<String>,
}

/// Why a key check failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum KeyCheckError {
    /// 401: OpenRouter does not accept the key (revoked, deleted, or never valid).
    #[error("OpenRouter does not accept this key (401): it was revoked or is not valid")]
    KeyNotValid,
    /// 429: rate limited.
    #[error("OpenRouter is rate limiting requests (429); try again later")]
    RateLimited,
    /// 5xx.
    #[error("OpenRouter had a server error ({status}) while checking the key")]
    Server {
        /// 500 to 599.
        status: u16,
    },
    /// A 200 whose body is not `{"data": {...}}`.
    #[error("OpenRouter's answer about the key could not be read")]
    BadBody,
    /// Any other status.
    #[error("OpenRouter answered {status} while checking the key{}", .excerpt.as_deref().map(|e| format!(": {e}")).unwrap_or_default())]
    Unexpected {
        /// The status code.
        status: u16,
        /// Sanitised excerpt of the body.
        excerpt: Option<String>,
    },
}

/// Builds `GET {base_url}/api/v1/key` with `Authorization: Bearer <key>`.
pub fn key_check_request(base_url: &url::Url, key: &ApiKey) -> HttpRequest {
    HttpRequest {
        method: HttpMethod::Get,
        url: api_url(base_url, "/api/v1/key"),
        headers: vec![
            (
                "Authorization".into(),
                Zeroizing::new(format!("Bearer {}", key.expose_secret())),
            ),
            ("Accept".into(), Zeroizing::new("application/json".into())),
            ("User-Agent".into(), Zeroizing::new(USER_AGENT.into())),
        ],
        body: Zeroizing::new(Vec::new()),
    }
}

/// Builds a reachability probe: `GET {base_url}/api/v1/key` with no credentials. Any HTTP
/// answer (OpenRouter answers 401) proves OpenRouter can be reached; a shell sends it while
/// the user is still on the consent page, so a dead network, DNS, proxy or TLS setup is
/// reported before the user approves rather than after (issue 16). Carries no secret.
pub fn reachability_request(base_url: &url::Url) -> HttpRequest {
    HttpRequest {
        method: HttpMethod::Get,
        url: api_url(base_url, "/api/v1/key"),
        headers: vec![
            ("Accept".into(), Zeroizing::new("application/json".into())),
            ("User-Agent".into(), Zeroizing::new(USER_AGENT.into())),
        ],
        body: Zeroizing::new(Vec::new()),
    }
}

#[derive(Deserialize)]
struct Envelope {
    data: KeyInfo,
}

/// Parses the answer to [`key_check_request`]. Errors: [`KeyCheckError`].
pub fn parse_key_info(resp: &HttpResponse) -> Result<KeyInfo, KeyCheckError> {
    match resp.status {
        200 => serde_json::from_slice::<Envelope>(&resp.body)
            .map(|e| e.data)
            .map_err(|_| KeyCheckError::BadBody),
        401 => Err(KeyCheckError::KeyNotValid),
        429 => Err(KeyCheckError::RateLimited),
        500..=599 => Err(KeyCheckError::Server {
            status: resp.status,
        }),
        status => Err(KeyCheckError::Unexpected {
            status,
            // A proxy may echo our request, `Authorization: Bearer <key>` included.
            excerpt: error_message(&resp.body)
                .or_else(|| Some(sanitise(&resp.body)))
                .map(redact_keys)
                .filter(|e| !e.is_empty()),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_has_bearer_and_redacts() {
        let req = key_check_request(
            &"https://openrouter.ai".parse().unwrap(),
            &ApiKey::new("sk-or-v1-secret"),
        );
        assert_eq!(req.url.as_str(), "https://openrouter.ai/api/v1/key");
        assert_eq!(req.header("authorization"), Some("Bearer sk-or-v1-secret"));
        assert!(!format!("{req:?}").contains("secret"));
    }

    #[test]
    fn parses_documented_shape_and_ignores_unknown_fields() {
        let body = r#"{"data":{"label":"my laptop","limit":null,"limit_remaining":null,"usage":0.25,
            "usage_daily":0,"usage_weekly":0,"usage_monthly":0.25,"is_free_tier":true,
            "expires_at":null,"rate_limit":{"requests":20,"interval":"10s"},"new_field":1}}"#;
        let info = parse_key_info(&HttpResponse::new(200, body)).unwrap();
        assert_eq!(info.label.as_deref(), Some("my laptop"));
        assert_eq!(info.usage, Some(0.25));
        assert_eq!(info.is_free_tier, Some(true));
        assert_eq!(info.limit, None);
    }

    #[test]
    fn errors() {
        assert_eq!(
            parse_key_info(&HttpResponse::new(401, "")),
            Err(KeyCheckError::KeyNotValid)
        );
        assert_eq!(
            parse_key_info(&HttpResponse::new(200, "{}")),
            Err(KeyCheckError::BadBody)
        );
        assert_eq!(
            parse_key_info(&HttpResponse::new(503, "")),
            Err(KeyCheckError::Server { status: 503 })
        );
        assert_eq!(
            parse_key_info(&HttpResponse::new(404, r#"{"error":{"message":"nope"}}"#)),
            Err(KeyCheckError::Unexpected {
                status: 404,
                excerpt: Some("nope".into())
            })
        );
    }
}
