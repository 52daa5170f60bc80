//! Fuzz target body for the loopback server's request-head handling.
//!
//! The `fuzz/` cargo-fuzz workspace calls [`http_head`] from its `http_head` target, and
//! `cargo test` runs it over the committed seed corpus (`fuzz/corpus/http_head/`). It reaches
//! the server's parse through [`openrouter_auth::head::parse_head`] and checks the flow with
//! the oracle ([`CheckedFlow`]).

use openrouter_auth::head::{parse_head, ParsedHead};
use openrouter_auth::MAX_HEAD_BYTES;
use openrouter_auth_core::{ConnectionId, FlowConfig, Input, Output, Page, Time};
use openrouter_auth_oracle::{CheckedFlow, FuzzRng, FUZZ_PORT};

/// What the server makes of a byte stream: a request for the flow, an immediate answer, or
/// "wait for more".
#[derive(Debug, PartialEq)]
enum Verdict {
    More,
    Request {
        method: String,
        target: Vec<u8>,
        host: Option<Vec<u8>>,
    },
    Answer(Page, bool),
}

fn verdict(head: ParsedHead) -> Verdict {
    match head {
        ParsedHead::Partial => Verdict::More,
        ParsedHead::Request(r) => Verdict::Request {
            method: r.method.to_owned(),
            target: r.target.to_vec(),
            host: r.host.map(<[u8]>::to_vec),
        },
        ParsedHead::Rejected { page, head_only } => Verdict::Answer(page, head_only),
    }
}

/// What the server decides after the bytes of `data` arrived in reads of `chunk` bytes: it
/// parses the growing buffer after each read, keeps at most `MAX_HEAD_BYTES + 1` bytes, and
/// answers 431 to a head still unfinished past the limit.
fn server_view(data: &[u8], chunk: usize) -> Verdict {
    let mut buf: Vec<u8> = Vec::new();
    for piece in data.chunks(chunk.max(1)) {
        let room = (MAX_HEAD_BYTES + 1).saturating_sub(buf.len());
        buf.extend_from_slice(&piece[..piece.len().min(room)]);
        match verdict(parse_head(&buf)) {
            Verdict::More if buf.len() > MAX_HEAD_BYTES => {
                return Verdict::Answer(Page::HeadTooLarge, false)
            }
            Verdict::More => {}
            v => return v,
        }
    }
    Verdict::More
}

/// Body of the `http_head` fuzz target. `data` is what a client sent on one connection.
///
/// Checks: parsing never panics; the server's verdict does not depend on how the bytes were
/// split into reads; an immediate answer encodes to a well-formed 4xx; a complete head, fed
/// to a flow (through the core's invariant checker), breaks none of the flow's rules and
/// gets exactly one response unless it is the flow's own callback being held for the
/// exchange. Panics on a broken rule.
pub fn http_head(data: &[u8]) {
    let whole = server_view(data, usize::MAX);
    let chunk = 1 + usize::from(data.first().copied().unwrap_or(0) % 61);
    for c in [1, chunk, 4096] {
        if c == 1 && data.len() > 2048 {
            continue; // quadratic: keep the fuzzer fast
        }
        let split = server_view(data, c);
        assert_eq!(split, whole, "the verdict depends on reads of {c} bytes");
    }
    match whole {
        Verdict::More => {}
        Verdict::Answer(page, head_only) => {
            let bytes = page.render().encode(head_only);
            assert!(
                bytes.starts_with(b"HTTP/1.1 4"),
                "an immediate answer that is not 4xx"
            );
        }
        Verdict::Request {
            method,
            target,
            host,
        } => {
            assert!(!method.is_empty(), "an empty method");
            assert!(target.len() <= data.len());
            let (mut flow, _) =
                CheckedFlow::new(FlowConfig::default(), &mut FuzzRng::new(0), Time::ZERO)
                    .unwrap_or_else(|v| panic!("{v}"));
            flow.handle_input(
                Input::ListenerBound {
                    port: FUZZ_PORT,
                    ipv6: true,
                },
                Time::ZERO,
            )
            .unwrap_or_else(|v| panic!("{v}"));
            let conn = ConnectionId(7);
            let outs = flow
                .handle_input(
                    Input::Request(openrouter_auth_core::BrowserRequest {
                        conn,
                        method,
                        target: zeroize::Zeroizing::new(target),
                        host,
                    }),
                    Time::from_millis(1),
                )
                .unwrap_or_else(|v| panic!("{v}"));
            let answered = outs
                .iter()
                .filter(|o| matches!(o, Output::Respond { conn: c, .. } if *c == conn))
                .count();
            let held = flow.in_flight().is_some();
            assert!(
                answered == 1 || (answered == 0 && held),
                "{answered} responses to one request (exchange started: {held})"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        http_head(b"GET /favicon.ico HTTP/1.1\r\nHost: localhost:53682\r\n\r\n");
        http_head(b"GET / HTTP/1.1\r\nHost: x");
        http_head(b"\x00\x01garbage\r\n\r\n");
        http_head(&[b'a'; 9000]);
        http_head(b"");
    }
}
