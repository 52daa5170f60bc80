//! The loopback server's request-head parse, exposed for the benchmarks (P1 in
//! `BENCHMARKS.md`) and the fuzz targets (`fuzz/`, bodies in `openrouter-auth-sim`). Not meant
//! for embedders: [`LoopbackServer`](crate::LoopbackServer) runs it on every connection.

use crate::server::{self, Head};
use openrouter_auth_core::{Page, RequestHead};

/// What the loopback server makes of the bytes received so far on one connection
/// ([`parse_head`]).
#[derive(Debug)]
pub enum ParsedHead<'a> {
    /// The head is not complete yet: the server reads more.
    Partial,
    /// A complete head, borrowed from the read buffer. The server hands it to the flow as it
    /// is ([`Flow::handle_request`](openrouter_auth_core::Flow::handle_request)), which
    /// decides on it ([`classify_request`](openrouter_auth_core::classify_request)) and
    /// copies out only a code or an `error=`.
    Request(RequestHead<'a>),
    /// The server answers at once with this page and closes (400 unparsable or an
    /// unsupported version, 431 too many headers); `head_only` is true for a HEAD request.
    Rejected {
        /// The answer.
        page: Page,
        /// The request was HEAD: the answer goes out without a body.
        head_only: bool,
    },
}

/// The server's own request-head parse (httparse, at most
/// [`MAX_HEADERS`](crate::MAX_HEADERS) headers, exactly one `Host` kept). `buf` is
/// every byte received so far (the server caps it at
/// [`MAX_HEAD_BYTES`](crate::MAX_HEAD_BYTES) + 1 = 16,385 bytes and answers 431 past
/// that). Copies nothing: a complete head borrows from `buf`. Never panics.
pub fn parse_head(buf: &[u8]) -> ParsedHead<'_> {
    match server::parse_head(buf) {
        Head::Partial => ParsedHead::Partial,
        Head::Complete(request) => ParsedHead::Request(request),
        Head::Reject(fixed) => {
            let (page, head_only) = fixed.page();
            ParsedHead::Rejected { page, head_only }
        }
    }
}
