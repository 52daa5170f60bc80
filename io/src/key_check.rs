//! Checking a key with OpenRouter (`GET /api/v1/key`, <https://openrouter.ai/docs/api/api-reference/api-keys/get-current-key>):
//! what `login` shows after storing a new key, and what `status` reports. The same request
//! through any [`Transport`] ([`check_key_with`]) or [`AsyncTransport`] ([`check_key_async`]);
//! [`check_key`] uses the default blocking client.

use crate::transport::{AsyncTransport, Transport, TransportError};
use openrouter_auth_core::{key_check_request, parse_key_info, ApiKey, KeyCheckError, KeyInfo};
use std::time::Duration;

/// How long one key check may take.
pub const KEY_CHECK_TIMEOUT: Duration = Duration::from_secs(15);

/// Why a key check gave no [`KeyInfo`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyCheckFailure {
    /// OpenRouter answered, and not with the key's details (401: the key is not valid).
    #[error("{0}")]
    Answered(#[source] KeyCheckError),
    /// No answer (DNS, connection, TLS, timeout), or the HTTP client could not be set up.
    #[error("could not reach OpenRouter to check the key: {0}")]
    Unreachable(#[source] TransportError),
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
            KeyCheckFailure::Answered(_) => "unexpected_response",
            KeyCheckFailure::Unreachable(_) => "unreachable",
        }
    }
}

/// Asks OpenRouter at `base_url` about `key` with the default blocking client
/// ([`blocking_client`](crate::blocking_client): the system's trust store, proxies
/// from the environment, no redirects), waiting at most [`KEY_CHECK_TIMEOUT`]. Do not call it
/// from inside an async runtime: use [`check_key_async`].
///
/// # Errors
///
/// [`KeyCheckFailure`]; [`KeyCheckFailure::key_is_invalid`] tells a 401 apart.
#[cfg(feature = "reqwest")]
#[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
pub fn check_key(base_url: &url::Url, key: &ApiKey) -> Result<KeyInfo, KeyCheckFailure> {
    let client =
        crate::transport::blocking_client(base_url).map_err(KeyCheckFailure::Unreachable)?;
    check_key_with(&client, base_url, key)
}

/// [`check_key`] through the caller's blocking [`Transport`].
///
/// # Errors
///
/// As [`check_key`].
pub fn check_key_with(
    transport: &dyn Transport,
    base_url: &url::Url,
    key: &ApiKey,
) -> Result<KeyInfo, KeyCheckFailure> {
    check_key_request(transport, &key_check_request(base_url, key))
}

/// Sends a key check `request` (as [`key_check_request`] makes it, perhaps with the login's
/// `User-Agent`) and reads the answer.
pub(crate) fn check_key_request(
    transport: &dyn Transport,
    request: &openrouter_auth_core::HttpRequest,
) -> Result<KeyInfo, KeyCheckFailure> {
    let response = transport
        .send(request, KEY_CHECK_TIMEOUT)
        .map_err(KeyCheckFailure::Unreachable)?;
    parse_key_info(&response).map_err(KeyCheckFailure::Answered)
}

/// [`check_key`] through the caller's [`AsyncTransport`], e.g. a `reqwest::Client` (build the
/// default one with [`async_client`](crate::async_client)).
///
/// # Errors
///
/// As [`check_key`].
pub async fn check_key_async(
    transport: &dyn AsyncTransport,
    base_url: &url::Url,
    key: &ApiKey,
) -> Result<KeyInfo, KeyCheckFailure> {
    check_key_request_async(transport, &key_check_request(base_url, key)).await
}

/// [`check_key_request`] through an [`AsyncTransport`].
pub(crate) async fn check_key_request_async(
    transport: &dyn AsyncTransport,
    request: &openrouter_auth_core::HttpRequest,
) -> Result<KeyInfo, KeyCheckFailure> {
    let response = transport
        .send(request, KEY_CHECK_TIMEOUT)
        .await
        .map_err(KeyCheckFailure::Unreachable)?;
    parse_key_info(&response).map_err(KeyCheckFailure::Answered)
}
