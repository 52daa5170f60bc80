//! Sending the core's [`HttpRequest`]s with reqwest (rustls, no redirects, timeouts) and
//! classifying failures as "certainly not sent" or "may have been sent" (PROTOCOL.md
//! section 3: a code must never be replayed after the second kind).

use openrouter_auth_core::{HttpMethod, HttpRequest, HttpResponse};
use std::time::Duration;
use zeroize::Zeroizing;

/// Time allowed to open a TCP+TLS connection to OpenRouter.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest response body read, in bytes (OpenRouter's answers are a few hundred bytes).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A request that got no HTTP answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
pub struct TransportError {
    /// `false` only when the request certainly never left this machine (DNS failure,
    /// connection refused, a bad URL): only then may it be sent again.
    pub may_have_been_sent: bool,
    /// What failed, without secrets.
    pub reason: String,
}

fn classify(e: &reqwest::Error) -> TransportError {
    // `is_connect` covers DNS and TCP/TLS connect failures (including connect timeouts):
    // nothing of the request was written. `is_builder`: never started.
    let not_sent = e.is_connect() || e.is_builder();
    let what = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else if e.is_body() || e.is_decode() {
        "the answer was cut off"
    } else if e.is_request() {
        "the request failed"
    } else {
        "transport error"
    };
    // reqwest's Display carries the URL (no secrets: the code travels in the body), and the
    // source chain says why.
    let mut reason = what.to_string();
    let mut src: Option<&dyn std::error::Error> = std::error::Error::source(e);
    if let Some(s) = src.take() {
        reason.push_str(": ");
        reason.push_str(&s.to_string());
    }
    TransportError {
        may_have_been_sent: !not_sent,
        reason,
    }
}

fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(a)) => a.is_loopback(),
        Some(url::Host::Ipv6(a)) => a.is_loopback(),
        None => false,
    }
}

/// A blocking client: rustls, redirects off, [`CONNECT_TIMEOUT`]. Proxies from the
/// environment are used except for loopback base URLs (the emulator).
pub fn blocking_client(base_url: &url::Url) -> reqwest::blocking::Client {
    let mut b = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(openrouter_auth_core::USER_AGENT);
    if is_loopback(base_url) {
        b = b.no_proxy();
    }
    b.build()
        .expect("a rustls client with these options always builds")
}

/// The method and headers of `req` for reqwest. Header values are marked sensitive (so
/// `Authorization` stays out of reqwest's own `Debug`). A header the core built that HTTP
/// cannot carry is a bug; it is reported as "never sent".
fn parts(
    req: &HttpRequest,
) -> Result<(reqwest::Method, reqwest::header::HeaderMap), TransportError> {
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
    let method = match req.method {
        HttpMethod::Get => reqwest::Method::GET,
        HttpMethod::Post => reqwest::Method::POST,
    };
    let mut headers = HeaderMap::with_capacity(req.headers.len());
    for (n, v) in &req.headers {
        let bad = || TransportError {
            may_have_been_sent: false,
            reason: format!("the request header `{n}` is not valid HTTP"),
        };
        let name = HeaderName::from_bytes(n.as_bytes()).map_err(|_| bad())?;
        let mut value = HeaderValue::from_str(v.as_str()).map_err(|_| bad())?;
        value.set_sensitive(true);
        headers.append(name, value);
    }
    Ok((method, headers))
}

/// Sends `req` and waits at most `timeout` for the whole answer.
pub fn send_blocking(
    client: &reqwest::blocking::Client,
    req: &HttpRequest,
    timeout: Duration,
) -> Result<HttpResponse, TransportError> {
    let (method, headers) = parts(req)?;
    let resp = client
        .request(method, req.url.clone())
        .headers(headers)
        .body(req.body.to_vec())
        .timeout(timeout)
        .send()
        .map_err(|e| classify(&e))?;
    let status = resp.status().as_u16();
    let headers = header_list(resp.headers());
    let mut body = Zeroizing::new(Vec::new());
    use std::io::Read;
    resp.take(MAX_BODY_BYTES as u64)
        .read_to_end(&mut body)
        .map_err(|e| TransportError {
            may_have_been_sent: true,
            reason: format!("the answer was cut off: {e}"),
        })?;
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

fn header_list(h: &reqwest::header::HeaderMap) -> Vec<(String, String)> {
    h.iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect()
}

/// An async client with the same settings as [`blocking_client`].
#[cfg(feature = "tokio")]
pub fn async_client(base_url: &url::Url) -> reqwest::Client {
    let mut b = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(CONNECT_TIMEOUT)
        .user_agent(openrouter_auth_core::USER_AGENT);
    if is_loopback(base_url) {
        b = b.no_proxy();
    }
    b.build()
        .expect("a rustls client with these options always builds")
}

/// Async [`send_blocking`].
#[cfg(feature = "tokio")]
pub async fn send_async(
    client: &reqwest::Client,
    req: &HttpRequest,
    timeout: Duration,
) -> Result<HttpResponse, TransportError> {
    let (method, headers) = parts(req)?;
    let mut resp = client
        .request(method, req.url.clone())
        .headers(headers)
        .body(req.body.to_vec())
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| classify(&e))?;
    let status = resp.status().as_u16();
    let headers = header_list(resp.headers());
    let mut body = Zeroizing::new(Vec::new());
    while let Some(chunk) = resp.chunk().await.map_err(|e| TransportError {
        may_have_been_sent: true,
        reason: classify(&e).reason,
    })? {
        let room = MAX_BODY_BYTES.saturating_sub(body.len());
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if room == 0 {
            break;
        }
    }
    Ok(HttpResponse {
        status,
        headers,
        body,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connection_refused_is_certainly_not_sent() {
        // Bind then drop a listener to get a port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let base: url::Url = format!("http://127.0.0.1:{port}").parse().unwrap();
        let req = openrouter_auth_core::key_check_request(
            &base,
            &openrouter_auth_core::ApiKey::new("sk-or-v1-x"),
        );
        let err = send_blocking(&blocking_client(&base), &req, Duration::from_secs(5)).unwrap_err();
        assert!(!err.may_have_been_sent, "{err:?}");
        assert!(!err.reason.contains("sk-or-v1-x"));
    }

    #[test]
    fn a_server_that_hangs_up_after_the_request_may_have_seen_it() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let t = std::thread::spawn(move || {
            let (mut s, _) = l.accept().unwrap();
            let mut buf = [0u8; 4096];
            let _ = std::io::Read::read(&mut s, &mut buf);
            drop(s);
        });
        let base: url::Url = format!("http://127.0.0.1:{port}").parse().unwrap();
        let req = openrouter_auth_core::key_check_request(
            &base,
            &openrouter_auth_core::ApiKey::new("sk-or-v1-x"),
        );
        let err = send_blocking(&blocking_client(&base), &req, Duration::from_secs(5)).unwrap_err();
        assert!(err.may_have_been_sent, "{err:?}");
        t.join().unwrap();
    }
}
