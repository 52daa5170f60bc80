//! P1's two contestants: what the loopback server and the flow do with a request head before
//! answering it, and raw `httparse` on the same bytes.
//!
//! [`ours`] is the head parse of `openrouter-auth`'s server (the real `server::parse_head`,
//! reached through `openrouter_auth::head::parse_head`) followed by exactly the checks the
//! flow makes before picking an answer (`Flow::on_request` calls the same
//! [`classify_request`]: the `Host` guard, the method, then `parse_callback`), all on the
//! head borrowed from the read buffer. Page rendering and socket work are left out: they are
//! measured by P2.

use openrouter_auth::head::{parse_head, ParsedHead};
use openrouter_auth_core::{classify_request, CallbackTarget, FlowNonce, RequestClass};

pub use openrouter_auth::MAX_HEADERS;

/// What the server and flow decide for one head.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The head is incomplete: read more.
    Partial,
    /// Answered by the server before the flow sees it (400, 431) with this status.
    Rejected(u16),
    /// Answered by the flow with this status without any state change.
    Answered(u16),
    /// Our callback with a code: the exchange starts.
    Exchange,
    /// Our callback with `error=`: the flow fails as denied.
    Denied,
    /// `/callback/<nonce>/done`.
    Done,
}

/// Ours: head parse + `Host` guard + method + callback validation, as the server and
/// `Flow::on_request` do them.
pub fn ours(buf: &[u8], nonce: &FlowNonce, port: u16) -> Verdict {
    let head = match parse_head(buf) {
        ParsedHead::Partial => return Verdict::Partial,
        ParsedHead::Rejected { page, .. } => return Verdict::Rejected(page.status()),
        ParsedHead::Request(r) => r,
    };
    let (head_only, target) = match classify_request(&head, nonce, Some(port)) {
        RequestClass::Misdirected { .. } => return Verdict::Answered(421),
        RequestClass::MethodNotAllowed => return Verdict::Answered(405),
        RequestClass::Target { head_only, target } => (head_only, target),
    };
    match target {
        CallbackTarget::Code(_) if !head_only => Verdict::Exchange,
        CallbackTarget::Error(_) if !head_only => Verdict::Denied,
        CallbackTarget::Code(_) | CallbackTarget::Error(_) => Verdict::Answered(200),
        CallbackTarget::Done => Verdict::Done,
        CallbackTarget::NotOurs(n) => {
            use openrouter_auth_core::callback::NotOurs;
            match n {
                NotOurs::WrongPath | NotOurs::WrongNonce => Verdict::Answered(404),
                _ => Verdict::Answered(400),
            }
        }
        CallbackTarget::Malformed(_) | _ => Verdict::Answered(400),
    }
}

/// The peer: raw `httparse::Request::parse` with the same header array, on the same bytes.
/// Returns the head length when complete (0 when partial, `usize::MAX` on error).
pub fn peer(buf: &[u8]) -> usize {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => 0,
        Err(_) => usize::MAX,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::corpus::{Class, Corpus};

    #[test]
    fn corpus_verdicts_are_what_the_server_would_do() {
        let c = Corpus::new(53122);
        let verdict = |name: &str| {
            let r = c.requests.iter().find(|r| r.name == name).unwrap();
            ours(&r.bytes, &c.nonce, c.port)
        };
        for name in [
            "chrome-callback",
            "firefox-callback",
            "safari-callback",
            "curl-callback",
        ] {
            assert_eq!(verdict(name), Verdict::Exchange, "{name}");
        }
        assert_eq!(verdict("chrome-denied"), Verdict::Denied);
        assert_eq!(verdict("firefox-done"), Verdict::Done);
        assert_eq!(verdict("chrome-favicon"), Verdict::Answered(404));
        assert_eq!(verdict("tls-client-hello"), Verdict::Rejected(400));
        assert_eq!(verdict("h2-preface"), Verdict::Rejected(400));
        assert_eq!(verdict("dns-rebinding-post"), Verdict::Answered(421));
        assert_eq!(verdict("cors-preflight"), Verdict::Answered(405));
        assert_eq!(verdict("http10-probe"), Verdict::Answered(421));
        assert_eq!(verdict("guessed-nonce"), Verdict::Answered(404));
        assert_eq!(verdict("bad-percent"), Verdict::Answered(400));
        assert_eq!(verdict("binary-noise"), Verdict::Rejected(400));
        // Every head in the corpus is whole: the peer parses the browser ones completely.
        for r in c.of(Class::Callback) {
            assert_eq!(peer(&r.bytes), r.bytes.len(), "{}", r.name);
        }
    }
}
