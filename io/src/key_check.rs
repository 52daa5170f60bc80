//! Checking a key with OpenRouter (`GET /api/v1/key`, PROTOCOL.md section 4): what `login`
//! shows after storing a new key, and what `status` reports.

use crate::transport::{blocking_client, send_blocking, TransportError};
use openrouter_auth_core::{key_check_request, parse_key_info, ApiKey, KeyCheckError, KeyInfo};
use std::time::Duration;

/// How long one key check may take.
pub const KEY_CHECK_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a key check gave no [`KeyInfo`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyCheckFailure {
    /// OpenRouter answered, and not with the key's details (401: the key is not valid).
    #[error("{0}")]
    Answered(KeyCheckError),
    /// No answer (DNS, connection, timeout).
    #[error("could not reach OpenRouter to check the key: {0}")]
    Unreachable(TransportError),
}

impl KeyCheckFailure {
    /// Whether OpenRouter said the key is not valid (401: revoked, deleted or never valid),
    /// as opposed to not being able to tell.
    pub fn key_is_invalid(&self) -> bool {
        matches!(self, KeyCheckFailure::Answered(KeyCheckError::KeyNotValid))
    }

    /// A stable machine-readable name: `invalid_key`, `rate_limited`, `server_error`,
    /// `bad_answer`, `unexpected_response` or `unreachable`.
    pub fn kind(&self) -> &'static str {
        match self {
            KeyCheckFailure::Answered(KeyCheckError::KeyNotValid) => "invalid_key",
            KeyCheckFailure::Answered(KeyCheckError::RateLimited) => "rate_limited",
            KeyCheckFailure::Answered(KeyCheckError::Server { .. }) => "server_error",
            KeyCheckFailure::Answered(KeyCheckError::BadBody) => "bad_answer",
            KeyCheckFailure::Answered(KeyCheckError::Unexpected { .. }) => "unexpected_response",
            KeyCheckFailure::Unreachable(_) => "unreachable",
        }
    }
}

/// Asks OpenRouter at `base_url` about `key` (blocking, at most [`KEY_CHECK_TIMEOUT`]).
/// Do not call it from inside an async runtime.
///
/// Errors: [`KeyCheckFailure`]; [`KeyCheckFailure::key_is_invalid`] tells a 401 apart.
pub fn check_key(base_url: &url::Url, key: &ApiKey) -> Result<KeyInfo, KeyCheckFailure> {
    let client = blocking_client(base_url);
    let request = key_check_request(base_url, key);
    let response = send_blocking(&client, &request, KEY_CHECK_TIMEOUT)
        .map_err(KeyCheckFailure::Unreachable)?;
    parse_key_info(&response).map_err(KeyCheckFailure::Answered)
}
