//! The request heads a loopback callback port really sees, byte for byte.
//!
//! Browser heads follow what Chrome 131, Firefox 133 and Safari 18 send on a cross-site
//! navigation (the redirect from openrouter.ai) and on the favicon fetch that follows; curl is
//! `curl/8.11`. The junk is what the port gets from strangers: a TLS ClientHello from a port
//! scanner, an HTTP/2 preface, a DNS-rebinding POST, a CORS preflight from a web page, an
//! HTTP/1.0 probe without `Host`, a guessed nonce, binary noise and a bad percent-encoding.

use openrouter_auth_core::FlowNonce;
use rand_chacha::rand_core::SeedableRng;

/// Whether a request is the real callback (or its follow-up) or a stray.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    /// A browser or curl delivering the code (or the error, or fetching `/done`).
    Callback,
    /// Anything else: favicon, junk, probes, attacks.
    Stray,
}

/// One request head.
#[derive(Debug, Clone)]
pub struct Request {
    /// Short name, e.g. `chrome-callback`.
    pub name: &'static str,
    /// Callback or stray.
    pub class: Class,
    /// The bytes on the wire.
    pub bytes: Vec<u8>,
}

/// The corpus for one flow: its nonce, its port, and the requests.
pub struct Corpus {
    /// The flow's nonce (the path segment after `/callback/`).
    pub nonce: FlowNonce,
    /// The loopback port the requests are addressed to.
    pub port: u16,
    /// The requests, in a fixed order.
    pub requests: Vec<Request>,
}

/// An authorization code shaped like OpenRouter's.
pub const CODE: &str = "9f1c3a52-6a0e-4b8e-9a7c-2f1d0b7e8c44";

const CHROME_UA: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const FIREFOX_UA: &str = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0";
const SAFARI_UA: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Safari/605.1.15";

/// Chrome's navigation head for `target` on `host` (a cross-site redirect from openrouter.ai).
pub fn chrome(target: &str, host: &str) -> Vec<u8> {
    format!(
        "GET {target} HTTP/1.1\r\n\
         Host: {host}\r\n\
         Connection: keep-alive\r\n\
         sec-ch-ua: \"Google Chrome\";v=\"131\", \"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\"\r\n\
         sec-ch-ua-mobile: ?0\r\n\
         sec-ch-ua-platform: \"macOS\"\r\n\
         Upgrade-Insecure-Requests: 1\r\n\
         User-Agent: {CHROME_UA}\r\n\
         Accept: text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7\r\n\
         Sec-Fetch-Site: cross-site\r\n\
         Sec-Fetch-Mode: navigate\r\n\
         Sec-Fetch-User: ?1\r\n\
         Sec-Fetch-Dest: document\r\n\
         Referer: https://openrouter.ai/\r\n\
         Accept-Encoding: gzip, deflate, br, zstd\r\n\
         Accept-Language: en-US,en;q=0.9\r\n\r\n"
    )
    .into_bytes()
}

fn firefox(target: &str, host: &str, site: &str) -> Vec<u8> {
    format!(
        "GET {target} HTTP/1.1\r\n\
         Host: {host}\r\n\
         User-Agent: {FIREFOX_UA}\r\n\
         Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
         Accept-Language: en-US,en;q=0.5\r\n\
         Accept-Encoding: gzip, deflate, br, zstd\r\n\
         Referer: https://openrouter.ai/\r\n\
         Connection: keep-alive\r\n\
         Upgrade-Insecure-Requests: 1\r\n\
         Sec-Fetch-Dest: document\r\n\
         Sec-Fetch-Mode: navigate\r\n\
         Sec-Fetch-Site: {site}\r\n\
         Sec-Fetch-User: ?1\r\n\
         Priority: u=0, i\r\n\r\n"
    )
    .into_bytes()
}

fn safari(target: &str, host: &str) -> Vec<u8> {
    format!(
        "GET {target} HTTP/1.1\r\n\
         Host: {host}\r\n\
         Sec-Fetch-Dest: document\r\n\
         User-Agent: {SAFARI_UA}\r\n\
         Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n\
         Sec-Fetch-Site: cross-site\r\n\
         Sec-Fetch-Mode: navigate\r\n\
         Accept-Language: en-GB,en;q=0.9\r\n\
         Referer: https://openrouter.ai/\r\n\
         Priority: u=0, i\r\n\
         Accept-Encoding: gzip, deflate\r\n\
         Connection: keep-alive\r\n\r\n"
    )
    .into_bytes()
}

/// curl's head for `target` on `host`.
pub fn curl(target: &str, host: &str) -> Vec<u8> {
    format!(
        "GET {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: curl/8.11.0\r\nAccept: */*\r\n\r\n"
    )
    .into_bytes()
}

/// Chrome's favicon fetch on `host`.
pub fn chrome_favicon(host: &str) -> Vec<u8> {
    format!(
        "GET /favicon.ico HTTP/1.1\r\n\
         Host: {host}\r\n\
         Connection: keep-alive\r\n\
         sec-ch-ua-platform: \"macOS\"\r\n\
         User-Agent: {CHROME_UA}\r\n\
         sec-ch-ua: \"Google Chrome\";v=\"131\", \"Chromium\";v=\"131\", \"Not_A Brand\";v=\"24\"\r\n\
         sec-ch-ua-mobile: ?0\r\n\
         Accept: image/avif,image/webp,image/apng,image/svg+xml,image/*,*/*;q=0.8\r\n\
         Sec-Fetch-Site: same-origin\r\n\
         Sec-Fetch-Mode: no-cors\r\n\
         Sec-Fetch-Dest: image\r\n\
         Accept-Encoding: gzip, deflate, br, zstd\r\n\
         Accept-Language: en-US,en;q=0.9\r\n\r\n"
    )
    .into_bytes()
}

/// A TLS 1.2/1.3 ClientHello prefix, as a port scanner or a mistaken `https://` sends.
pub const TLS_CLIENT_HELLO: &[u8] = b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\x8a\x1f\x07\xd2\x5b\xe4\x10\x99\x2c\x3d\x41\x6e\x80\x0b\x77\x1a\x26\x53\x90\xcc\x04\xe1\x2f\x38\x5d\x66\xa0\x11\x7b\x42\x09\xd8\x20\x6f\xc1\x00\x3e\x13\x02\x13\x03\x13\x01\xc0\x2c\xc0\x30\x00\x9f\xcc\xa9\xcc\xa8\xcc\xaa\xc0\x2b\xc0\x2f\x00\x9e\xc0\x24\xc0\x28\x00\x6b\xc0\x23\xc0\x27\x00\x67\xc0\x0a\xc0\x14\x00\x39\xc0\x09\xc0\x13\x00\x33\x00\x9d\x00\x9c\x00\x3d\x00\x3c\x00\x35\x00\x2f\x00\xff\x01\x00\x01\x75\x00\x00\x00\x0e\x00\x0c\x00\x00\x09\x6c\x6f\x63\x61\x6c\x68\x6f\x73\x74\r\n\r\n";

/// The HTTP/2 connection preface.
pub const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

impl Corpus {
    /// The corpus for a flow on `port` with a fixed (seeded) nonce.
    pub fn new(port: u16) -> Self {
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let nonce = FlowNonce::generate(&mut rng);
        let requests = Self::build(nonce.expose_secret(), port);
        Self {
            nonce,
            port,
            requests,
        }
    }

    /// The requests for a flow whose nonce is `nonce` on `port`.
    pub fn build(nonce: &str, port: u16) -> Vec<Request> {
        let host = format!("localhost:{port}");
        let ip_host = format!("127.0.0.1:{port}");
        let cb = format!("/callback/{nonce}?code={CODE}");
        let cb_state = format!("/callback/{nonce}?code={CODE}&state={nonce}");
        let done = format!("/callback/{nonce}/done");
        let denied = format!(
            "/callback/{nonce}?error=access_denied&error_description=The+user+denied+access%21"
        );
        let r = |name, class, bytes| Request { name, class, bytes };
        use Class::*;
        vec![
            r("chrome-callback", Callback, chrome(&cb, &host)),
            r("firefox-callback", Callback, firefox(&cb_state, &host, "cross-site")),
            r("safari-callback", Callback, safari(&cb, &host)),
            r("curl-callback", Callback, curl(&cb, &ip_host)),
            r("chrome-denied", Callback, chrome(&denied, &host)),
            r("firefox-done", Callback, firefox(&done, &host, "same-origin")),
            r("chrome-favicon", Stray, chrome_favicon(&host)),
            r("curl-favicon", Stray, curl("/favicon.ico", &host)),
            r("tls-client-hello", Stray, TLS_CLIENT_HELLO.to_vec()),
            r("h2-preface", Stray, H2_PREFACE.to_vec()),
            r(
                "dns-rebinding-post",
                Stray,
                format!(
                    "POST /callback/{nonce} HTTP/1.1\r\nHost: attacker.example:{port}\r\n\
                     Origin: http://attacker.example:{port}\r\nContent-Type: text/plain\r\n\
                     User-Agent: {CHROME_UA}\r\nContent-Length: 5\r\n\r\n"
                )
                .into_bytes(),
            ),
            r(
                "cors-preflight",
                Stray,
                format!(
                    "OPTIONS /callback/ HTTP/1.1\r\nHost: {host}\r\nOrigin: https://evil.example\r\n\
                     Access-Control-Request-Method: PUT\r\nAccess-Control-Request-Headers: content-type\r\n\
                     User-Agent: {CHROME_UA}\r\nAccept: */*\r\nSec-Fetch-Mode: cors\r\n\r\n"
                )
                .into_bytes(),
            ),
            r("http10-probe", Stray, b"GET / HTTP/1.0\r\n\r\n".to_vec()),
            r(
                "guessed-nonce",
                Stray,
                curl("/callback/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA?code=guess", &host),
            ),
            r(
                "binary-noise",
                Stray,
                b"\x00\xff\x13\x37\xde\xad\xbe\xef\r\n\r\n".to_vec(),
            ),
            r(
                "bad-percent",
                Stray,
                curl(&format!("/callback/{nonce}?code=%zz"), &host),
            ),
        ]
    }

    /// The requests of one class.
    pub fn of(&self, class: Class) -> impl Iterator<Item = &Request> {
        self.requests.iter().filter(move |r| r.class == class)
    }
}

/// A browser's request head (Chrome 131 on Linux, a same-origin fetch) for `method` and
/// `target`, addressed to `host`: what the counting-allocator tests feed the server's parser.
pub fn browser_head(method: &str, target: &str, host: &str) -> Vec<u8> {
    format!(
        "{method} {target} HTTP/1.1\r\nHost: {host}\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64) \
         AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36\r\n\
         Accept: image/avif,image/webp,*/*;q=0.8\r\nAccept-Language: en-US,en;q=0.9\r\n\
         Sec-Fetch-Site: same-origin\r\nConnection: keep-alive\r\n\r\n"
    )
    .into_bytes()
}
