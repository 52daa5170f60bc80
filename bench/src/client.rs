//! A tiny blocking HTTP/1.1 client: one request per connection, `Connection: close`, read to
//! EOF. Enough for the harnesses to play the browser and to time the emulator, with no client
//! library of its own in the measurement.

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::time::Duration;

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers in order.
    pub headers: Vec<(String, String)>,
    /// Body bytes (everything after the head, up to EOF).
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (ASCII case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Parses a whole response (head and body up to EOF).
pub fn parse_response(raw: &[u8]) -> io::Result<Response> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut resp = httparse::Response::new(&mut headers);
    match resp.parse(raw) {
        Ok(httparse::Status::Complete(n)) => Ok(Response {
            status: resp.code.unwrap_or(0),
            headers: resp
                .headers
                .iter()
                .map(|h| {
                    (
                        h.name.to_string(),
                        String::from_utf8_lossy(h.value).into_owned(),
                    )
                })
                .collect(),
            body: raw[n..].to_vec(),
        }),
        Ok(httparse::Status::Partial) => Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!("incomplete response ({} bytes)", raw.len()),
        )),
        Err(e) => Err(io::Error::new(io::ErrorKind::InvalidData, e.to_string())),
    }
}

/// Connects to `addr`, writes `head` (and `body`), reads to EOF, parses.
pub fn exchange(
    addr: SocketAddr,
    head: &[u8],
    body: &[u8],
    timeout: Duration,
) -> io::Result<Response> {
    let mut s = TcpStream::connect_timeout(&addr, timeout)?;
    s.set_nodelay(true)?;
    s.set_read_timeout(Some(timeout))?;
    s.set_write_timeout(Some(timeout))?;
    s.write_all(head)?;
    if !body.is_empty() {
        s.write_all(body)?;
    }
    let mut raw = Vec::with_capacity(4096);
    s.read_to_end(&mut raw)?;
    parse_response(&raw)
}

/// The socket address of a `http://host:port/` URL (first resolved address).
pub fn addr_of(url: &url::Url) -> io::Result<SocketAddr> {
    let host = url
        .host_str()
        .ok_or_else(|| io::Error::other("URL without host"))?;
    let port = url.port_or_known_default().unwrap_or(80);
    (host.trim_start_matches('[').trim_end_matches(']'), port)
        .to_socket_addrs()?
        .next()
        .ok_or_else(|| io::Error::other("host does not resolve"))
}

fn host_header(url: &url::Url) -> String {
    match url.port() {
        Some(p) => format!("{}:{p}", url.host_str().unwrap_or("localhost")),
        None => url.host_str().unwrap_or("localhost").to_string(),
    }
}

fn path_and_query(url: &url::Url) -> String {
    match url.query() {
        Some(q) => format!("{}?{q}", url.path()),
        None => url.path().to_string(),
    }
}

/// `GET url` as curl would send it, without following redirects.
pub fn get(url: &url::Url, timeout: Duration) -> io::Result<Response> {
    let head = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: curl/8.11.0\r\nAccept: */*\r\nConnection: close\r\n\r\n",
        path_and_query(url),
        host_header(url)
    );
    exchange(addr_of(url)?, head.as_bytes(), b"", timeout)
}

/// `POST url` with a JSON body.
pub fn post_json(url: &url::Url, json: &str, timeout: Duration) -> io::Result<Response> {
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: bench\r\nAccept: */*\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        path_and_query(url),
        host_header(url),
        json.len()
    );
    exchange(addr_of(url)?, head.as_bytes(), json.as_bytes(), timeout)
}

/// The request target (path and query) of `url`, for building a browser head.
pub fn target_of(url: &url::Url) -> String {
    path_and_query(url)
}

/// The `Host` header value for `url`.
pub fn host_of(url: &url::Url) -> String {
    host_header(url)
}
