//! HTTP requests as plain data: what the core asks a shell to send to OpenRouter.
//!
//! The core never opens a connection. It builds an [`HttpRequest`] (method, URL, headers,
//! body) and the shell sends it with any client it likes (the `openrouter-auth` crate uses
//! reqwest), then hands back the status, headers and body.

use crate::app::ProductToken;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// The `User-Agent` this crate sends: `openrouter-auth/<version>`.
pub const USER_AGENT: &str = concat!("openrouter-auth/", env!("CARGO_PKG_VERSION"));

/// The `User-Agent` for requests made on behalf of an app: `<product> openrouter-auth/<version>`
/// (RFC 9110 section 10.1.5: the most significant product first), or [`USER_AGENT`] alone
/// when `product` is `None`. Always a valid header value: [`ProductToken`] admits token
/// characters only.
pub fn user_agent(product: Option<&ProductToken>) -> String {
    match product {
        Some(p) => format!("{} {USER_AGENT}", p.as_str()),
        None => USER_AGENT.to_owned(),
    }
}

/// An HTTP request to OpenRouter, as data. Its body and `Authorization` header may hold
/// secrets (the code, the `code_verifier`, the API key): they are zeroized on drop and
/// `Debug` redacts them.
#[derive(Clone, Serialize, Deserialize)]
pub struct HttpRequest {
    /// `GET` or `POST`.
    pub method: HttpMethod,
    /// The absolute URL, e.g. `https://openrouter.ai/api/v1/auth/keys`.
    pub url: url::Url,
    /// Header names and values, in order. Values may be secret (`Authorization`).
    pub headers: Vec<(String, Zeroizing<String>)>,
    /// The body bytes (empty for `GET`). May be secret.
    pub body: Zeroizing<Vec<u8>>,
}

/// The methods the core ever asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum HttpMethod {
    /// `GET`
    Get,
    /// `POST`
    Post,
}

impl HttpMethod {
    /// The method token.
    pub fn as_str(self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
        }
    }
}

impl HttpRequest {
    /// The value of the first header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The request with its `User-Agent` set to [`user_agent`]`(product)`, e.g. for
    /// [`crate::key_check_request`] on behalf of an app (the flow does it for the code
    /// exchange from [`crate::FlowConfig::product_token`]).
    #[must_use]
    pub fn with_user_agent(mut self, product: Option<&ProductToken>) -> Self {
        let value = Zeroizing::new(user_agent(product));
        match self
            .headers
            .iter_mut()
            .find(|(n, _)| n.eq_ignore_ascii_case("user-agent"))
        {
            Some((_, v)) => *v = value,
            None => self.headers.push(("User-Agent".into(), value)),
        }
        self
    }
}

impl std::fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let headers: Vec<(&str, &str)> = self
            .headers
            .iter()
            .map(|(n, v)| {
                if n.eq_ignore_ascii_case("authorization") {
                    (n.as_str(), "[redacted]")
                } else {
                    (n.as_str(), v.as_str())
                }
            })
            .collect();
        f.debug_struct("HttpRequest")
            .field("method", &self.method)
            .field("url", &self.url.as_str())
            .field("headers", &headers)
            .field(
                "body",
                &format_args!("[{} bytes redacted]", self.body.len()),
            )
            .finish()
    }
}

/// An HTTP response from OpenRouter as the shell received it. The body may hold the API key:
/// zeroized on drop, redacted in `Debug`.
#[derive(Clone, Default, Serialize, Deserialize)]
pub struct HttpResponse {
    /// The status code, e.g. 200.
    pub status: u16,
    /// Header names and values as received (values lossily decoded as UTF-8).
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Zeroizing<Vec<u8>>,
}

impl HttpResponse {
    /// A response with no headers.
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Zeroizing::new(body.into()),
        }
    }

    /// Adds a header (builder style).
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// The value of the first header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl std::fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field(
                "body",
                &format_args!("[{} bytes redacted]", self.body.len()),
            )
            .finish()
    }
}
