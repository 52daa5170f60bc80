use openrouter_auth_core::{HttpRequest, HttpResponse};
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// Time the default clients allow to open a TCP+TLS connection to OpenRouter.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest response body a transport keeps, in bytes (OpenRouter's answers are a few hundred
/// bytes): longer bodies are cut here.
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// A request that got no complete HTTP answer.
///
/// Build one with [`TransportError::not_sent`] or [`TransportError::maybe_sent`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{reason}")]
#[non_exhaustive]
pub struct TransportError {
    /// `false` only when the request certainly never left this machine (the name did not
    /// resolve, the connection was refused, the TLS handshake failed, the request could not
    /// be built): only then may a code exchange be sent again. See the
    /// [`Transport`].
    pub may_have_been_sent: bool,
    /// What failed, in words for a person, without secrets.
    pub reason: String,
}

impl TransportError {
    /// A failure before any byte of the request left this machine: the exchange may be retried.
    pub fn not_sent(reason: impl Into<String>) -> Self {
        Self {
            may_have_been_sent: false,
            reason: reason.into(),
        }
    }

    /// A failure after the request may have reached the server (a timeout, a connection closed
    /// while waiting, an answer cut off): the exchange is not retried.
    pub fn maybe_sent(reason: impl Into<String>) -> Self {
        Self {
            may_have_been_sent: true,
            reason: reason.into(),
        }
    }
}

/// Sends one [`HttpRequest`] and blocks until its whole answer arrived or `timeout` passed.
/// Used by [`login`](crate::login()) and [`check_key_with`](crate::check_key_with).
///
/// See the [`Transport`] for what an implementation must guarantee (above all:
/// no redirects, and an honest [`TransportError::may_have_been_sent`]). With the `reqwest`
/// feature, `reqwest::blocking::Client` implements it.
///
/// # How it works
///
/// The HTTP client that sends the core's [`HttpRequest`]s (the code exchange and the key
/// check): the [`Transport`] (blocking) and [`AsyncTransport`] traits a login takes, and, with
/// the `reqwest` feature (on by default), their implementations for [`reqwest::blocking::Client`]
/// and [`reqwest::Client`] plus the default clients [`blocking_client`] and [`async_client`].
///
/// ## The contract of a transport
///
/// A transport sends one request and returns the whole answer, whatever its status: a 4xx or
/// 5xx is an [`HttpResponse`], not an error (the core decides what a status means). It returns a
/// [`TransportError`] only when no complete answer came, and then it must say whether the
/// request **may have been sent** ([`TransportError::may_have_been_sent`]). The rule is the
/// core's: a code exchange is retried only after a failure that certainly never left this
/// machine (the name did not resolve, the connection was refused, the TLS handshake failed, the
/// request could not be built), because OpenRouter burns an authorization code the first time
/// it sees it, and resending a code it may already have turned into a key loses that key.
/// When in doubt, say "may have been sent".
///
/// A transport must also:
/// - **not follow redirects**: the exchange's `POST` carries the authorization code and the
///   `code_verifier`, the key check an `Authorization` header; a 3xx is returned as it is (the
///   core treats it as an unexpected answer). The implementations here refuse an answer that
///   came from another URL than the one asked (a client configured to follow redirects);
/// - send the headers the core built (`Content-Type`, `Authorization`, `User-Agent`) as given:
///   the `User-Agent` carries the app's product token
///   ([`LoginOptions::product_token`](crate::LoginOptions::product_token)); the
///   implementations here send it in place of the client's own `user_agent`;
/// - give up after `timeout` (the whole request, connection included). What a login passes:
///   the code exchange gets [`LoginOptions::exchange_timeout`](crate::LoginOptions::exchange_timeout)
///   plus 2 s (the flow's own deadline decides; the extra only ends a request that outlives
///   it), the reachability probe 10 s, the key check 15 s
///   ([`KEY_CHECK_TIMEOUT`](crate::KEY_CHECK_TIMEOUT)). A client timeout of its own that is
///   shorter wins, and then counts as a network failure;
/// - keep at most [`MAX_BODY_BYTES`] of the body (OpenRouter's answers are a few hundred
///   bytes); cutting a longer one there is fine;
/// - keep secrets out of its errors and logs: the request body holds the authorization code and
///   the `code_verifier`, the key check's `Authorization` header and every successful exchange's
///   answer hold an API key.
///
/// A login sends three kinds of request through it: the reachability probe (`GET
/// /api/v1/key` without credentials, beside showing the URL), the code exchange (`POST
/// /api/v1/auth/keys`) and, when [`LoginOptions::check_key`](crate::LoginOptions::check_key)
/// is on, the key check (`GET /api/v1/key` with the new key).
///
/// The implementations for `reqwest::blocking::Client` and `reqwest::Client` are for
/// reqwest 0.12 (feature `reqwest`); a client of another reqwest major version is another
/// type and needs a wrapper implementing the trait.
///
/// An embedder with its own configured reqwest client (a root CA of its own, a proxy, a
/// `User-Agent`) passes it as it is (`Arc::new(client)`): set `redirect::Policy::none()` on it.
/// Any other client works by implementing one of the traits.
pub trait Transport: Send + Sync + std::fmt::Debug {
    /// Sends `request`; returns any answer (every status), or why none came.
    ///
    /// # Errors
    ///
    /// [`TransportError`] when no complete answer came, saying whether the request may have
    /// been sent.
    fn send(
        &self,
        request: &HttpRequest,
        timeout: Duration,
    ) -> Result<HttpResponse, TransportError>;
}

/// What [`AsyncTransport::send`] returns: a boxed future, so the trait can be used as
/// `dyn AsyncTransport`.
pub type SendFuture<'a> =
    Pin<Box<dyn Future<Output = Result<HttpResponse, TransportError>> + Send + 'a>>;

/// [`Transport`] for async clients. Used by [`login_async`](crate::login_async) and
/// [`check_key_async`](crate::check_key_async); the same contract. With the `reqwest` feature,
/// `reqwest::Client` implements it (its futures need a tokio runtime).
pub trait AsyncTransport: Send + Sync + std::fmt::Debug {
    /// Sends `request`; resolves to any answer (every status), or why none came, within
    /// `timeout`.
    fn send<'a>(&'a self, request: &'a HttpRequest, timeout: Duration) -> SendFuture<'a>;
}

#[cfg(feature = "reqwest")]
pub use self::with_reqwest::{
    async_client, async_client_builder, blocking_client, blocking_client_builder,
};

#[cfg(feature = "reqwest")]
mod with_reqwest {
    use super::*;
    use zeroize::Zeroizing;

    /// Keeps the first [`MAX_BODY_BYTES`] of a body, zeroized on drop.
    struct CappedBody(Zeroizing<Vec<u8>>);

    impl CappedBody {
        fn new() -> Self {
            Self(Zeroizing::new(Vec::new()))
        }

        /// Appends what fits; `false` once the cap is reached (stop reading).
        fn push(&mut self, chunk: &[u8]) -> bool {
            let room = MAX_BODY_BYTES.saturating_sub(self.0.len());
            self.0.extend_from_slice(&chunk[..chunk.len().min(room)]);
            self.0.len() < MAX_BODY_BYTES
        }
    }

    /// The one wording of a body that stopped arriving.
    /// (The root cause only: the blocking and async clients wrap it in different layers.)
    fn cut_off(e: &dyn std::error::Error) -> TransportError {
        let mut root = e;
        while let Some(s) = root.source() {
            root = s;
        }
        TransportError::maybe_sent(format!("the answer was cut off: {root}"))
    }

    /// `e` and its sources, joined with ": " (repeated messages once).
    fn chain(e: &dyn std::error::Error) -> String {
        let mut out = e.to_string();
        let mut src = e.source();
        while let Some(s) = src {
            let m = s.to_string();
            if !out.ends_with(&m) {
                out.push_str(": ");
                out.push_str(&m);
            }
            src = s.source();
        }
        out
    }

    /// Whether `url` names this machine (the emulator), and over which scheme: such
    /// requests bypass proxies, and plain-http ones need no trust store.
    enum Loopback {
        No,
        Http,
        Https,
    }

    fn loopback(url: &url::Url) -> Loopback {
        let local = match url.host() {
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            Some(url::Host::Ipv4(a)) => a.is_loopback(),
            Some(url::Host::Ipv6(a)) => a.is_loopback(),
            None => false,
        };
        match (local, url.scheme()) {
            (false, _) => Loopback::No,
            (true, "http") => Loopback::Http,
            (true, _) => Loopback::Https,
        }
    }

    fn built<C>(r: reqwest::Result<C>) -> Result<C, TransportError> {
        r.map_err(|e| TransportError::not_sent(format!("could not set up HTTPS: {}", chain(&e))))
    }

    /// The default blocking client's settings, to add to (a root certificate, a proxy) before
    /// `build()`: rustls with the operating system's trust store (on Linux the CA bundle
    /// openssl would use, or `SSL_CERT_FILE` / `SSL_CERT_DIR`; the Keychain on macOS; the
    /// Windows certificate store), proxies from `HTTPS_PROXY` / `ALL_PROXY` / `NO_PROXY`
    /// (none for a loopback `base_url`, the emulator), redirects off, [`CONNECT_TIMEOUT`],
    /// `User-Agent` [`USER_AGENT`](openrouter_auth_core::USER_AGENT).
    ///
    /// For a plain `http://` loopback `base_url` (the emulator) the trust store is not
    /// loaded: with no redirect and no proxy, no request can use TLS, and on Linux loading it
    /// means reading and parsing every file of `/etc/ssl/certs` (several ms, which the code
    /// exchange would wait for when the browser comes back at once).
    #[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
    pub fn blocking_client_builder(base_url: &url::Url) -> reqwest::blocking::ClientBuilder {
        let b = reqwest::blocking::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(openrouter_auth_core::USER_AGENT);
        match loopback(base_url) {
            Loopback::No => b,
            Loopback::Https => b.no_proxy(),
            Loopback::Http => b.no_proxy().tls_built_in_root_certs(false),
        }
    }

    /// The default blocking client ([`blocking_client_builder`], built). Do not call it
    /// inside an async runtime.
    ///
    /// # Errors
    ///
    /// When the TLS setup fails (e.g. the system's trust store holds no usable certificate);
    /// [`TransportError::may_have_been_sent`] is `false`.
    #[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
    pub fn blocking_client(
        base_url: &url::Url,
    ) -> Result<reqwest::blocking::Client, TransportError> {
        built(blocking_client_builder(base_url).build())
    }

    /// [`blocking_client_builder`] for the async client.
    #[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
    pub fn async_client_builder(base_url: &url::Url) -> reqwest::ClientBuilder {
        let b = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(CONNECT_TIMEOUT)
            .user_agent(openrouter_auth_core::USER_AGENT);
        match loopback(base_url) {
            Loopback::No => b,
            Loopback::Https => b.no_proxy(),
            Loopback::Http => b.no_proxy().tls_built_in_root_certs(false),
        }
    }

    /// The default async client ([`async_client_builder`], built).
    ///
    /// # Errors
    ///
    /// As [`blocking_client`].
    #[cfg_attr(docsrs, doc(cfg(feature = "reqwest")))]
    pub fn async_client(base_url: &url::Url) -> Result<reqwest::Client, TransportError> {
        built(async_client_builder(base_url).build())
    }

    /// The one request builder: `req` as an `http::Request`, which converts into both
    /// reqwest request types. Header values are marked sensitive (so `Authorization` stays
    /// out of reqwest's own `Debug`). A header the core built that HTTP cannot carry is a bug;
    /// it is reported as "never sent".
    fn http_request(req: &HttpRequest) -> Result<http::Request<Vec<u8>>, TransportError> {
        use http::header::{HeaderName, HeaderValue};
        let method = match req.method {
            openrouter_auth_core::HttpMethod::Get => http::Method::GET,
            openrouter_auth_core::HttpMethod::Post => http::Method::POST,
            _ => {
                return Err(TransportError::not_sent(
                    "an HTTP method this client does not know",
                ))
            }
        };
        let mut out = http::Request::new(req.body.to_vec());
        *out.method_mut() = method;
        *out.uri_mut() = req.url.as_str().parse().map_err(|_| {
            TransportError::not_sent(format!("the URL {} is not valid HTTP", req.url))
        })?;
        for (n, v) in &req.headers {
            let bad =
                || TransportError::not_sent(format!("the request header `{n}` is not valid HTTP"));
            let name = HeaderName::from_bytes(n.as_bytes()).map_err(|_| bad())?;
            let mut value = HeaderValue::from_str(v.as_str()).map_err(|_| bad())?;
            value.set_sensitive(true);
            out.headers_mut().append(name, value);
        }
        Ok(out)
    }

    fn not_built(e: reqwest::Error) -> TransportError {
        TransportError::not_sent(format!("the request could not be built: {}", chain(&e)))
    }

    /// A client that followed a redirect (its policy is not `none()`): the answer is not
    /// OpenRouter's, and the request (with its secrets) may have gone elsewhere.
    fn check_not_redirected(asked: &url::Url, got: &url::Url) -> Result<(), TransportError> {
        if asked == got {
            return Ok(());
        }
        Err(TransportError::maybe_sent(format!(
            "the HTTP client followed a redirect to {}; sign-in requests must not follow redirects (build the client with `redirect::Policy::none()`)",
            got.origin().ascii_serialization()
        )))
    }

    fn response(
        status: reqwest::StatusCode,
        headers: &reqwest::header::HeaderMap,
        body: CappedBody,
    ) -> HttpResponse {
        HttpResponse {
            status: status.as_u16(),
            headers: headers
                .iter()
                .map(|(n, v)| {
                    (
                        n.as_str().to_owned(),
                        String::from_utf8_lossy(v.as_bytes()).into_owned(),
                    )
                })
                .collect(),
            body: body.0,
        }
    }

    /// Says how far a reqwest failure got: whether the request may have been sent, and why.
    fn classify(e: &reqwest::Error) -> TransportError {
        // `is_connect` covers DNS, TCP and TLS connect failures (connect timeouts too):
        // nothing of the request was written. `is_builder`: never started.
        let sent = !(e.is_connect() || e.is_builder());
        let mut what = if e.is_timeout() {
            "timed out"
        } else if e.is_connect() {
            "could not connect"
        } else if e.is_body() || e.is_decode() {
            "the answer was cut off"
        } else {
            "the request failed"
        }
        .to_owned();
        // Why, in plain words where the sources say it (refused, DNS, TLS, proxy); else the
        // sources themselves. reqwest's own message carries the URL (no secret: the code
        // travels in the body).
        if let Some(why) = plain_reason(e) {
            what.push_str(": ");
            what.push_str(&why);
        } else if let Some(src) = std::error::Error::source(e) {
            what.push_str(": ");
            what.push_str(&chain(src));
        }
        TransportError {
            may_have_been_sent: sent,
            reason: what,
        }
    }

    /// Every error under `e`, outermost first, including what an `io::Error` wraps (which
    /// `source()` skips: hyper-rustls wraps tokio-rustls's `io::Error` in another one).
    fn sources<'a>(
        e: &'a (dyn std::error::Error + 'static),
    ) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
        std::iter::successors(Some(e), |cur| {
            cur.downcast_ref::<std::io::Error>()
                .and_then(|io| io.get_ref())
                .map(|inner| inner as &(dyn std::error::Error + 'static))
                .or_else(|| cur.source())
        })
    }

    /// A connect failure in a person's words: the name did not resolve, the connection was
    /// refused (by the server or by the proxy), the TLS handshake failed. `None` when the
    /// sources say nothing this knows; the caller then shows them as they are.
    fn plain_reason(e: &reqwest::Error) -> Option<String> {
        let first = std::error::Error::source(e)?;
        let all: Vec<_> = sources(first).collect();
        let innermost = all.last().map(|s| s.to_string()).unwrap_or_default();
        let said = |what: &str| all.iter().any(|s| s.to_string().starts_with(what));
        let host = e
            .url()
            .and_then(|u| Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?)));
        let at = host
            .as_deref()
            .map_or(String::new(), |h| format!(" at {h}"));
        match all.iter().find_map(|s| s.downcast_ref::<rustls::Error>()) {
            // A TLS-inspecting proxy, a private CA: say what to do about it.
            Some(tls @ rustls::Error::InvalidCertificate(_)) => return Some(format!(
                "the TLS handshake{at} failed: the server's certificate is not trusted by this system ({tls}); behind a proxy or firewall that inspects HTTPS, add its root certificate to the system's trust store"
            )),
            Some(tls) => return Some(format!("the TLS handshake{at} failed ({tls})")),
            None => {}
        }
        if said("dns error") {
            let name = e.url().and_then(|u| u.host_str().map(str::to_owned));
            let name = name.map_or(String::new(), |n| format!(" {n}"));
            return Some(format!("the name{name} did not resolve ({innermost})"));
        }
        let kind = all
            .iter()
            .find_map(|s| s.downcast_ref::<std::io::Error>().map(std::io::Error::kind));
        let proxy = said("tunnel error");
        use std::io::ErrorKind as K;
        let what = match kind? {
            K::ConnectionRefused if proxy => "the proxy refused the connection (HTTPS_PROXY)",
            K::ConnectionRefused => return Some(format!("the connection{at} was refused")),
            K::ConnectionReset | K::ConnectionAborted => "the connection was reset",
            K::TimedOut => "the connection timed out",
            K::NetworkUnreachable => "the network is unreachable",
            K::HostUnreachable => "the host is unreachable",
            _ => return None,
        };
        Some(what.to_owned())
    }

    impl Transport for reqwest::blocking::Client {
        fn send(
            &self,
            req: &HttpRequest,
            timeout: Duration,
        ) -> Result<HttpResponse, TransportError> {
            let mut request =
                reqwest::blocking::Request::try_from(http_request(req)?).map_err(not_built)?;
            *request.timeout_mut() = Some(timeout);
            let mut resp = self.execute(request).map_err(|e| classify(&e))?;
            check_not_redirected(&req.url, resp.url())?;
            let (status, headers) = (resp.status(), resp.headers().clone());
            let mut body = CappedBody::new();
            let mut buf = Zeroizing::new([0u8; 8192]);
            loop {
                let n = std::io::Read::read(&mut resp, &mut buf[..]).map_err(|e| cut_off(&e))?;
                if n == 0 || !body.push(&buf[..n]) {
                    break;
                }
            }
            Ok(response(status, &headers, body))
        }
    }

    impl AsyncTransport for reqwest::Client {
        fn send<'a>(&'a self, req: &'a HttpRequest, timeout: Duration) -> SendFuture<'a> {
            Box::pin(async move {
                let mut request =
                    reqwest::Request::try_from(http_request(req)?).map_err(not_built)?;
                *request.timeout_mut() = Some(timeout);
                let mut resp = self.execute(request).await.map_err(|e| classify(&e))?;
                check_not_redirected(&req.url, resp.url())?;
                let (status, headers) = (resp.status(), resp.headers().clone());
                let mut body = CappedBody::new();
                while let Some(chunk) = resp.chunk().await.map_err(|e| cut_off(&e))? {
                    if !body.push(&chunk) {
                        break;
                    }
                }
                Ok(response(status, &headers, body))
            })
        }
    }
}

#[cfg(all(test, feature = "reqwest"))]
mod tests {
    use super::*;

    fn key_check(base: &url::Url) -> HttpRequest {
        openrouter_auth_core::key_check_request(
            base,
            &openrouter_auth_core::ApiKey::new("sk-or-v1-x"),
        )
    }

    #[test]
    fn connection_refused_is_certainly_not_sent() {
        // Bind then drop a listener to get a port nothing listens on.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let base: url::Url = format!("http://127.0.0.1:{port}").parse().unwrap();
        let err = Transport::send(
            &blocking_client(&base).unwrap(),
            &key_check(&base),
            Duration::from_secs(5),
        )
        .unwrap_err();
        assert!(!err.may_have_been_sent, "{err:?}");
        // In plain words, once: which address, and that it refused.
        assert_eq!(
            err.reason,
            format!("could not connect: the connection at 127.0.0.1:{port} was refused")
        );
    }

    /// What a failed connect says, for a base URL and a client.
    fn connect_failure(base: &str, client: reqwest::blocking::Client) -> String {
        let base: url::Url = base.parse().unwrap();
        let err = Transport::send(&client, &key_check(&base), Duration::from_secs(5)).unwrap_err();
        assert!(!err.may_have_been_sent, "{err:?}");
        err.reason
    }

    #[test]
    fn a_name_that_does_not_resolve_is_named() {
        // `.invalid` never resolves (RFC 6761 section 6.4).
        let base: url::Url = "https://openrouter.invalid".parse().unwrap();
        let reason = connect_failure(base.as_str(), blocking_client(&base).unwrap());
        assert!(
            reason.starts_with("could not connect: the name openrouter.invalid did not resolve ("),
            "{reason}"
        );
        assert!(!reason.contains("client error"), "{reason}");
    }

    #[test]
    fn a_proxy_that_refuses_is_blamed_not_openrouter() {
        let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let proxy = format!("http://{}", dead.local_addr().unwrap());
        drop(dead);
        let base: url::Url = "https://openrouter.invalid".parse().unwrap();
        let client = blocking_client_builder(&base)
            .proxy(reqwest::Proxy::https(proxy).unwrap())
            .build()
            .unwrap();
        let reason = connect_failure(base.as_str(), client);
        assert_eq!(
            reason,
            "could not connect: the proxy refused the connection (HTTPS_PROXY)"
        );
    }

    #[test]
    fn a_server_that_does_not_speak_tls_fails_the_handshake() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { return };
                let _ = std::io::Write::write_all(&mut s, b"HTTP/1.1 400 Bad Request\r\n\r\n");
            }
        });
        let base: url::Url = format!("https://127.0.0.1:{port}").parse().unwrap();
        let reason = connect_failure(base.as_str(), blocking_client(&base).unwrap());
        assert!(
            reason.starts_with(&format!(
                "could not connect: the TLS handshake at 127.0.0.1:{port} failed"
            )),
            "{reason}"
        );
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
        let err = Transport::send(
            &blocking_client(&base).unwrap(),
            &key_check(&base),
            Duration::from_secs(5),
        )
        .unwrap_err();
        assert!(err.may_have_been_sent, "{err:?}");
        t.join().unwrap();
    }

    /// A server that answers every connection with `head` and then `body_len` bytes of 'x'.
    fn answering(head: &'static str, body_len: usize) -> url::Url {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { return };
                let mut buf = [0u8; 4096];
                let _ = std::io::Read::read(&mut s, &mut buf);
                let _ = std::io::Write::write_all(&mut s, head.as_bytes());
                let _ = std::io::Write::write_all(&mut s, &vec![b'x'; body_len]);
            }
        });
        format!("http://127.0.0.1:{port}").parse().unwrap()
    }

    #[test]
    fn both_clients_cut_a_long_body_at_the_cap() {
        let len = MAX_BODY_BYTES * 2;
        let head = Box::leak(
            format!("HTTP/1.1 500 Oops\r\nContent-Length: {len}\r\nConnection: close\r\n\r\n")
                .into_boxed_str(),
        );
        let base = answering(head, len);
        let r = Transport::send(
            &blocking_client(&base).unwrap(),
            &key_check(&base),
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!((r.status, r.body.len()), (500, MAX_BODY_BYTES));
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let r = rt
            .block_on(AsyncTransport::send(
                &async_client(&base).unwrap(),
                &key_check(&base),
                Duration::from_secs(5),
            ))
            .unwrap();
        assert_eq!((r.status, r.body.len()), (500, MAX_BODY_BYTES));
    }

    #[test]
    fn both_clients_word_a_cut_off_body_the_same() {
        // Promises 100 bytes, sends 10, hangs up.
        let base = answering(
            "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nConnection: close\r\n\r\n",
            10,
        );
        let blocking = Transport::send(
            &blocking_client(&base).unwrap(),
            &key_check(&base),
            Duration::from_secs(5),
        )
        .unwrap_err();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let not_blocking = rt
            .block_on(AsyncTransport::send(
                &async_client(&base).unwrap(),
                &key_check(&base),
                Duration::from_secs(5),
            ))
            .unwrap_err();
        assert!(blocking.may_have_been_sent && not_blocking.may_have_been_sent);
        assert!(
            blocking.reason.starts_with("the answer was cut off"),
            "{blocking:?}"
        );
        assert_eq!(blocking.reason, not_blocking.reason);
    }

    #[test]
    fn a_redirect_is_returned_as_is_and_a_client_that_follows_one_is_refused() {
        // `/api/v1/key` redirects to `/elsewhere`, which answers 200 with a body.
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let seen = hits.clone();
        std::thread::spawn(move || {
            for s in l.incoming() {
                let Ok(mut s) = s else { return };
                let mut buf = [0u8; 4096];
                let n = std::io::Read::read(&mut s, &mut buf).unwrap_or(0);
                let answer: &[u8] = if buf[..n].starts_with(b"GET /elsewhere ") {
                    seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}"
                } else {
                    b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                };
                let _ = std::io::Write::write_all(&mut s, answer);
            }
        });
        let base: url::Url = format!("http://127.0.0.1:{port}").parse().unwrap();
        let r = Transport::send(
            &blocking_client(&base).unwrap(),
            &key_check(&base),
            Duration::from_secs(5),
        )
        .unwrap();
        assert_eq!(r.status, 302);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let r = rt
            .block_on(AsyncTransport::send(
                &async_client(&base).unwrap(),
                &key_check(&base),
                Duration::from_secs(5),
            ))
            .unwrap();
        assert_eq!(r.status, 302);
        assert_eq!(
            hits.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "the default clients followed the redirect"
        );
        // An embedder's client with reqwest's default policy follows it: its answer is refused.
        let err = Transport::send(
            &reqwest::blocking::Client::new(),
            &key_check(&base),
            Duration::from_secs(5),
        )
        .unwrap_err();
        assert!(err.may_have_been_sent, "{err:?}");
        assert!(err.reason.contains("followed a redirect"), "{err:?}");
        let err = rt
            .block_on(AsyncTransport::send(
                &reqwest::Client::new(),
                &key_check(&base),
                Duration::from_secs(5),
            ))
            .unwrap_err();
        assert!(err.reason.contains("followed a redirect"), "{err:?}");
    }
}
