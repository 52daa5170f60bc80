//! Callback parsing: what a request target that reached the loopback listener means.
//!
//! [`parse_callback`] is a pure, total function from the raw request target (path and query
//! as bytes, exactly as the request line carried them) to one [`CallbackTarget`]. It never
//! panics and reads at most [`MAX_TARGET_BYTES`] bytes.
//!
//! Sources: OpenRouter's OAuth PKCE guide, step 1 (OpenRouter appends `code`:
//! <https://openrouter.ai/docs/use-cases/oauth-pkce>), RFC 6749 section 4.1.2.1
//! (`error`, `error_description`, `error_uri`), RFC 8252 section 8.1 and RFC 9700 section 4.7
//! (bind the callback to the flow: our nonce in the path, `state` checked if present).

use crate::flow::{host_is_ours, BrowserRequest, ConnectionId};
use crate::secret::{AuthorizationCode, FlowNonce};
use zeroize::Zeroizing;

/// The longest request target we look at, in bytes. Longer targets are
/// [`Malformed::TooLong`]. A real callback target is under 200 bytes.
pub const MAX_TARGET_BYTES: usize = 8 * 1024;

/// The longest authorization code we accept, in bytes (OpenRouter's are far shorter).
pub const MAX_CODE_BYTES: usize = 2048;

/// The path prefix of every callback: `/callback/<nonce>`.
pub const CALLBACK_PREFIX: &str = "/callback/";

/// The path suffix of the clean page the browser is sent to after the callback
/// (`/callback/<nonce>/done`), so the code, or an `error=` and its description, leaves the
/// address bar (RFC 9700 section 4.3).
pub const DONE_SUFFIX: &str = "/done";

/// What one request target means for a flow with a given nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum CallbackTarget {
    /// Our callback path carrying an authorization code (and a matching `state`, or none).
    Code(AuthorizationCode),
    /// Our callback path carrying an OAuth error (RFC 6749 section 4.1.2.1), e.g. the user
    /// pressed Deny (`error=access_denied`).
    Error(CallbackError),
    /// `/callback/<nonce>/done`: the clean result page the flow redirects the browser to.
    Done,
    /// Not a callback for this flow. The flow must not change.
    NotOurs(NotOurs),
    /// On our path but unusable. The flow must not change.
    Malformed(Malformed),
}

/// An `error=` callback: the three RFC 6749 section 4.1.2.1 fields, decoded.
///
/// Deliberately exhaustive: it holds exactly the three fields RFC 6749 defines for an error
/// response, and shells and tests build it with a struct expression.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct CallbackError {
    /// `error`, e.g. `access_denied`.
    pub error: String,
    /// `error_description`, human text from the server, if any.
    pub error_description: Option<String>,
    /// `error_uri`, if any.
    pub error_uri: Option<String>,
}

/// Why a target is not a callback for this flow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum NotOurs {
    /// The path is not `/callback/<something>` (e.g. `/favicon.ico`, `/`).
    WrongPath,
    /// `/callback/<other nonce>`: another flow's URL, a stale tab, or a guess.
    WrongNonce,
    /// Our path with neither `code` nor `error` (a reload without query, a probe).
    NoParameters,
    /// Our path, but `state` is present and differs from our nonce.
    StateMismatch,
}

/// Why a target on our path is unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Malformed {
    /// Longer than [`MAX_TARGET_BYTES`].
    TooLong,
    /// A `%` not followed by two hex digits.
    BadPercentEncoding,
    /// A parameter that decodes to bytes that are not UTF-8.
    NotUtf8,
    /// `code`, `state`, `error`, `error_description` or `error_uri` given twice.
    DuplicateParameter(&'static str),
    /// `code` empty, longer than [`MAX_CODE_BYTES`], or holding control characters.
    BadCode,
}

impl std::fmt::Display for Malformed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Malformed::TooLong => write!(f, "the request is too long"),
            Malformed::BadPercentEncoding => write!(f, "the query has a bad percent-encoding"),
            Malformed::NotUtf8 => write!(f, "the query is not valid UTF-8"),
            Malformed::DuplicateParameter(p) => write!(f, "`{p}` appears more than once"),
            Malformed::BadCode => write!(f, "the authorization code is empty or not printable"),
        }
    }
}

impl Malformed {
    /// How many values [`Malformed::index`] numbers.
    pub(crate) const COUNT: usize = 4 + KNOWN.len();

    /// A number below [`Malformed::COUNT`] for each value, for the flow's cache of rendered
    /// pages; `None` for a [`Malformed::DuplicateParameter`] outside the known parameters.
    pub(crate) fn index(self) -> Option<usize> {
        Some(match self {
            Malformed::TooLong => 0,
            Malformed::BadPercentEncoding => 1,
            Malformed::NotUtf8 => 2,
            Malformed::BadCode => 3,
            Malformed::DuplicateParameter(p) => 4 + KNOWN.iter().position(|k| *k == p)?,
        })
    }
}

const KNOWN: [&str; 5] = ["code", "state", "error", "error_description", "error_uri"];
const CODE: usize = 0;
const STATE: usize = 1;
const ERROR: usize = 2;
const ERROR_DESCRIPTION: usize = 3;
const ERROR_URI: usize = 4;

/// A request head as the shell parsed it, borrowed from the shell's read buffer: what
/// [`classify_request`] needs to decide an answer, with nothing copied. The buffer it
/// borrows from may hold an authorization code: the shell keeps it in a zeroizing buffer
/// (the `openrouter-auth` server does) and wipes it when the connection is done.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct RequestHead<'a> {
    /// The method token, e.g. `GET`.
    pub method: &'a str,
    /// The raw request target (path and query), e.g. `/callback/…?code=…`. May hold the code.
    pub target: &'a [u8],
    /// The raw `Host` header value, if there was exactly one.
    pub host: Option<&'a [u8]>,
}

impl RequestHead<'_> {
    /// The owned [`BrowserRequest`] for `Input::Request`, from connection `conn` (three
    /// copies: method, target in a zeroizing buffer, `Host`).
    pub fn to_request(&self, conn: ConnectionId) -> BrowserRequest {
        BrowserRequest {
            conn,
            method: self.method.to_owned(),
            target: Zeroizing::new(self.target.to_vec()),
            host: self.host.map(<[u8]>::to_vec),
        }
    }
}

impl std::fmt::Debug for RequestHead<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestHead")
            .field("method", &self.method)
            .field(
                "target",
                &format_args!("[{} bytes redacted]", self.target.len()),
            )
            .field("host", &self.host.map(String::from_utf8_lossy))
            .finish()
    }
}

impl BrowserRequest {
    /// This request as a borrowed [`RequestHead`].
    pub fn head(&self) -> RequestHead<'_> {
        RequestHead {
            method: &self.method,
            target: &self.target,
            host: self.host.as_deref(),
        }
    }
}

/// What the flow makes of a request head before it picks an answer ([`classify_request`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestClass {
    /// The `Host` header is missing, repeated or not ours ([`host_is_ours`]): 421.
    /// `head_only` is true for a HEAD request.
    Misdirected {
        /// The request was HEAD.
        head_only: bool,
    },
    /// Neither GET nor HEAD: 405.
    MethodNotAllowed,
    /// A GET or HEAD to this target ([`parse_callback`]).
    Target {
        /// The request was HEAD: it must have no side effect.
        head_only: bool,
        /// What the target means.
        target: CallbackTarget,
    },
}

/// The flow's checks on a request head, in its order: the `Host` guard (RFC 8252 section
/// 8.3), the method, then [`parse_callback`]. `port` is the listener's port once known.
/// Total and allocation-free for every request that is not a callback carrying a code or
/// an `error=` (only those copy the decoded values out). The nonce and `state` comparisons
/// are constant time.
pub fn classify_request(
    head: &RequestHead<'_>,
    nonce: &FlowNonce,
    port: Option<u16>,
) -> RequestClass {
    let head_only = head.method == "HEAD";
    if !host_is_ours(head.host, port) {
        return RequestClass::Misdirected { head_only };
    }
    if head.method != "GET" && !head_only {
        return RequestClass::MethodNotAllowed;
    }
    RequestClass::Target {
        head_only,
        target: parse_callback(head.target, nonce),
    }
}

/// Classifies one request target for the flow whose nonce is `nonce`. Total: never panics.
/// The nonce and `state` comparisons are constant time and done in place. One pass over the
/// target splits it; nothing is copied unless the answer is [`CallbackTarget::Code`] or
/// [`CallbackTarget::Error`].
pub fn parse_callback(target: &[u8], nonce: &FlowNonce) -> CallbackTarget {
    if target.len() > MAX_TARGET_BYTES {
        return CallbackTarget::Malformed(Malformed::TooLong);
    }
    // The path ends at the first `?` or `#` (a fragment never belongs in a request target:
    // anything after one is ignored). Ours is the prefix, exactly as many bytes as the nonce
    // has (its length is public), then optionally `/done`: that is where the path must end,
    // so no search for the `?` is needed. A `?` or `#` inside those bytes makes them differ
    // from the nonce, whose alphabet has neither.
    let Some(rest) = target.strip_prefix(CALLBACK_PREFIX.as_bytes()) else {
        return CallbackTarget::NotOurs(NotOurs::WrongPath); // the prefix has no `?` or `#`
    };
    let Some((candidate, after)) = rest.split_at_checked(nonce.expose_secret().len()) else {
        return CallbackTarget::NotOurs(NotOurs::WrongNonce);
    };
    let ends_path = |b: &[u8]| matches!(b.first(), None | Some(b'?' | b'#'));
    if let Some(after_done) = after.strip_prefix(DONE_SUFFIX.as_bytes()) {
        if ends_path(after_done) {
            return if nonce.ct_matches(candidate) {
                CallbackTarget::Done
            } else {
                CallbackTarget::NotOurs(NotOurs::WrongNonce)
            };
        }
    }
    if !ends_path(after) || !nonce.ct_matches(candidate) {
        return CallbackTarget::NotOurs(NotOurs::WrongNonce);
    }
    let params = match after.split_first() {
        Some((b'?', query)) => match scan_query(query) {
            Ok(p) => p,
            Err(m) => return CallbackTarget::Malformed(m),
        },
        _ => Params::default(),
    };
    if let Some(state) = params[STATE] {
        if !ct_decoded_matches(state, nonce.expose_secret().as_bytes()) {
            return CallbackTarget::NotOurs(NotOurs::StateMismatch);
        }
    }
    let owned = |v: Component<'_>| decode(v.bytes).map(|mut s| std::mem::take(&mut *s));
    if let Some(error) = params[ERROR] {
        let fields = (|| {
            Ok(CallbackError {
                error: owned(error)?,
                error_description: params[ERROR_DESCRIPTION].map(owned).transpose()?,
                error_uri: params[ERROR_URI].map(owned).transpose()?,
            })
        })();
        return match fields {
            Ok(e) => CallbackTarget::Error(e),
            Err(m) => CallbackTarget::Malformed(m),
        };
    }
    let Some(code) = params[CODE] else {
        return CallbackTarget::NotOurs(NotOurs::NoParameters);
    };
    // Decoding never makes a component longer: the length check can come first.
    if code.bytes.is_empty() || code.bytes.len() > 3 * MAX_CODE_BYTES {
        return CallbackTarget::Malformed(Malformed::BadCode);
    }
    if !code.escaped && code.ascii {
        // The usual code: nothing to decode, and ASCII (so UTF-8, and a control character
        // is an ASCII one). One copy, straight into the zeroizing wrapper.
        if code.bytes.len() > MAX_CODE_BYTES || code.control {
            return CallbackTarget::Malformed(Malformed::BadCode);
        }
        return match std::str::from_utf8(code.bytes) {
            Ok(code) => CallbackTarget::Code(AuthorizationCode::new(code)),
            Err(_) => CallbackTarget::Malformed(Malformed::NotUtf8),
        };
    }
    match decode(code.bytes) {
        Ok(mut code)
            if !(code.is_empty()
                || code.len() > MAX_CODE_BYTES
                || code.chars().any(char::is_control)) =>
        {
            // Moved, not copied: the only copy stays in a zeroizing wrapper.
            CallbackTarget::Code(AuthorizationCode::new(std::mem::take(&mut *code)))
        }
        Ok(_) => CallbackTarget::Malformed(Malformed::BadCode),
        Err(m) => CallbackTarget::Malformed(m),
    }
}

/// One still-encoded query component, borrowed from the target.
#[derive(Clone, Copy, Default)]
struct Component<'a> {
    bytes: &'a [u8],
    /// It holds a `%` or a `+`: decoding changes it.
    escaped: bool,
    /// Every byte is ASCII (so it is UTF-8 without a check).
    ascii: bool,
    /// It holds an ASCII control character (as written, before any decoding).
    control: bool,
}

impl<'a> Component<'a> {
    /// The three facts in one pass over the bytes, with no early exit (so it vectorises):
    /// separate searches for the escapes, the non-ASCII bytes and the controls read a code
    /// three times.
    fn new(bytes: &'a [u8]) -> Self {
        const NOT_ASCII: u8 = 1;
        const ESCAPE: u8 = 2;
        const CONTROL: u8 = 4;
        let seen = bytes.iter().fold(0u8, |seen, &b| {
            let not_ascii = u8::from(b >= 0x80) * NOT_ASCII;
            let escape = u8::from(b == b'%' || b == b'+') * ESCAPE;
            let control = u8::from(b < 0x20 || b == 0x7f) * CONTROL;
            seen | not_ascii | escape | control
        });
        Component {
            bytes,
            escaped: seen & ESCAPE != 0,
            ascii: seen & NOT_ASCII == 0,
            control: seen & CONTROL != 0,
        }
    }
}

type Params<'a> = [Option<Component<'a>>; 5];

/// Strict `application/x-www-form-urlencoded` parsing of the five names we know, in one
/// pass over the query; others are skipped (but must still be well-formed). Every
/// component is validated the way [`decode`] would; nothing is copied. The separators are
/// found with `memchr`'s searches (a lookup table per byte took 1% more instructions on the
/// P1 corpus, and a plain loop for the `=` 0.3% more); a component's escapes, non-ASCII
/// bytes and controls with one branch-free pass ([`Component::new`]).
fn scan_query(query: &[u8]) -> Result<Params<'_>, Malformed> {
    let mut out: Params<'_> = Default::default();
    let mut start = 0;
    loop {
        // A pair ends at `&`, or at `#`: a fragment never belongs in a request target, and
        // anything after one is ignored. One search finds either.
        let (end, last) = match memchr::memchr2(b'&', b'#', &query[start..]) {
            Some(i) => (start + i, query[start + i] == b'#'),
            None => (query.len(), true),
        };
        let pair = &query[start..end];
        if !pair.is_empty() {
            let (name, value) = match memchr::memchr(b'=', pair) {
                Some(e) => (&pair[..e], &pair[e + 1..]),
                None => (pair, &[][..]),
            };
            let value = Component::new(value);
            let slot = known_slot(name)?;
            validate(value)?;
            if let Some(slot) = slot {
                if out[slot].is_some() {
                    return Err(Malformed::DuplicateParameter(KNOWN[slot]));
                }
                out[slot] = Some(value);
            }
        }
        if last {
            return Ok(out);
        }
        start = end + 1;
    }
}

/// Which of [`KNOWN`] the (still encoded) parameter name is, if any. Names are not secret.
/// A name spelt exactly as one of them (the usual case) needs no validation: they are plain
/// ASCII with nothing to decode.
fn known_slot(name: &[u8]) -> Result<Option<usize>, Malformed> {
    if let Some(slot) = KNOWN.iter().position(|k| name == k.as_bytes()) {
        return Ok(Some(slot));
    }
    let name = Component::new(name);
    validate(name)?;
    if !name.escaped {
        return Ok(None);
    }
    Ok(KNOWN
        .iter()
        .position(|k| decoded_eq(name.bytes, k.as_bytes())))
}

/// Percent-decoding (`+` is a space) as an iterator of bytes; an error at the first `%`
/// not followed by two hex digits.
struct Decode<'a>(&'a [u8]);

impl Iterator for Decode<'_> {
    type Item = Result<u8, Malformed>;

    fn next(&mut self) -> Option<Self::Item> {
        let (&b, rest) = self.0.split_first()?;
        Some(match b {
            b'%' => match rest {
                [h, l, tail @ ..] => match (hex(*h), hex(*l)) {
                    (Some(h), Some(l)) => {
                        self.0 = tail;
                        Ok(h << 4 | l)
                    }
                    _ => {
                        self.0 = &[];
                        Err(Malformed::BadPercentEncoding)
                    }
                },
                _ => {
                    self.0 = &[];
                    Err(Malformed::BadPercentEncoding)
                }
            },
            b'+' => {
                self.0 = rest;
                Ok(b' ')
            }
            b => {
                self.0 = rest;
                Ok(b)
            }
        })
    }
}

/// Checks one component the way [`decode`] would, without keeping the result: a bad
/// escape anywhere is [`Malformed::BadPercentEncoding`], else bytes that are not UTF-8 are
/// [`Malformed::NotUtf8`]. No allocation: escaped components are decoded through a small
/// zeroized stack buffer (the component may be the authorization code).
fn validate(c: Component<'_>) -> Result<(), Malformed> {
    if !c.escaped {
        if c.ascii {
            return Ok(());
        }
        return std::str::from_utf8(c.bytes)
            .map(drop)
            .map_err(|_| Malformed::NotUtf8);
    }
    let mut buf = Zeroizing::new([0u8; 64]);
    let mut n = 0;
    let mut not_utf8 = false;
    let mut bytes = Decode(c.bytes);
    loop {
        let next = bytes.next().transpose()?;
        if let Some(b) = next {
            if not_utf8 {
                continue; // still looking for a bad escape, which is reported first
            }
            buf[n] = b;
            n += 1;
            if n < buf.len() {
                continue;
            }
        }
        if !not_utf8 {
            match std::str::from_utf8(&buf[..n]) {
                Ok(_) => n = 0,
                // A character cut at the buffer's end: carried over to the next round.
                Err(e) if e.error_len().is_none() && next.is_some() => {
                    buf.copy_within(e.valid_up_to()..n, 0);
                    n -= e.valid_up_to();
                }
                Err(_) => not_utf8 = true,
            }
        }
        if next.is_none() {
            return if not_utf8 {
                Err(Malformed::NotUtf8)
            } else {
                Ok(())
            };
        }
    }
}

/// `raw` decodes to exactly `expected` (not constant time: for parameter names).
fn decoded_eq(raw: &[u8], expected: &[u8]) -> bool {
    let mut want = expected.iter();
    Decode(raw).all(|b| b.ok() == want.next().copied()) && want.next().is_none()
}

/// `raw` (the `state` value, still encoded) decodes to exactly `nonce`, compared in place
/// in constant time (`subtle`; only the length is public).
fn ct_decoded_matches(raw: Component<'_>, nonce: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    if !raw.escaped {
        return crate::ct_eq(raw.bytes, nonce);
    }
    let mut same = subtle::Choice::from(1);
    let mut n = 0;
    for b in Decode(raw.bytes) {
        let Ok(b) = b else { return false };
        same &= b.ct_eq(nonce.get(n).unwrap_or(&0));
        n += 1;
    }
    n == nonce.len() && bool::from(same)
}

/// Percent-decodes one component (`+` is a space), strictly. The result and every
/// intermediate buffer are zeroized on drop (a component may be the authorization code).
pub(crate) fn decode(bytes: &[u8]) -> Result<Zeroizing<String>, Malformed> {
    if !bytes.iter().any(|&b| b == b'%' || b == b'+') {
        return match std::str::from_utf8(bytes) {
            Ok(s) => Ok(Zeroizing::new(s.to_owned())),
            Err(_) => Err(Malformed::NotUtf8),
        };
    }
    let mut out = Zeroizing::new(Vec::with_capacity(bytes.len()));
    for b in Decode(bytes) {
        out.push(b?);
    }
    // Moves the bytes out without copying; `out` is left empty.
    match String::from_utf8(std::mem::take(&mut *out)) {
        Ok(s) => Ok(Zeroizing::new(s)),
        Err(e) => {
            drop(Zeroizing::new(e.into_bytes()));
            Err(Malformed::NotUtf8)
        }
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn nonce() -> FlowNonce {
        use rand_chacha::rand_core::SeedableRng;
        FlowNonce::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(1))
    }

    fn target(n: &FlowNonce, q: &str) -> Vec<u8> {
        format!("/callback/{}{q}", n.expose_secret()).into_bytes()
    }

    #[test]
    fn code_on_our_path() {
        let n = nonce();
        assert_eq!(
            parse_callback(&target(&n, "?code=abc%2Fdef+1"), &n),
            CallbackTarget::Code(AuthorizationCode::new("abc/def 1"))
        );
        let with_state = format!("?state={}&code=x", n.expose_secret());
        assert!(matches!(
            parse_callback(&target(&n, &with_state), &n),
            CallbackTarget::Code(_)
        ));
        assert!(matches!(
            parse_callback(&target(&n, "?foo=1&code=x&bar"), &n),
            CallbackTarget::Code(_)
        ));
    }

    #[test]
    fn error_on_our_path() {
        let n = nonce();
        let t = target(&n, "?error=access_denied&error_description=User+said+no%21");
        assert_eq!(
            parse_callback(&t, &n),
            CallbackTarget::Error(CallbackError {
                error: "access_denied".into(),
                error_description: Some("User said no!".into()),
                error_uri: None,
            })
        );
    }

    #[test]
    fn not_ours() {
        let n = nonce();
        assert_eq!(
            parse_callback(b"/favicon.ico", &n),
            CallbackTarget::NotOurs(NotOurs::WrongPath)
        );
        assert_eq!(
            parse_callback(b"/", &n),
            CallbackTarget::NotOurs(NotOurs::WrongPath)
        );
        assert_eq!(
            parse_callback(b"", &n),
            CallbackTarget::NotOurs(NotOurs::WrongPath)
        );
        assert_eq!(
            parse_callback(b"/callback/guess?code=x", &n),
            CallbackTarget::NotOurs(NotOurs::WrongNonce)
        );
        assert_eq!(
            parse_callback(b"/callback/?error=access_denied", &n),
            CallbackTarget::NotOurs(NotOurs::WrongNonce)
        );
        assert_eq!(
            parse_callback(&target(&n, ""), &n),
            CallbackTarget::NotOurs(NotOurs::NoParameters)
        );
        assert_eq!(
            parse_callback(&target(&n, "?state=nope&code=x"), &n),
            CallbackTarget::NotOurs(NotOurs::StateMismatch)
        );
        assert_eq!(
            parse_callback(&target(&n, "/done"), &n),
            CallbackTarget::Done
        );
        assert_eq!(
            parse_callback(b"/callback/other/done", &n),
            CallbackTarget::NotOurs(NotOurs::WrongNonce)
        );
        // Another nonce of the same length: refused by the comparison itself, not the length.
        let other = "A".repeat(n.expose_secret().len());
        assert_ne!(other, n.expose_secret());
        for rest in ["", "/done", "/done?x", "?code=x", "#f"] {
            assert_eq!(
                parse_callback(format!("/callback/{other}{rest}").as_bytes(), &n),
                CallbackTarget::NotOurs(NotOurs::WrongNonce),
                "{rest}"
            );
        }
    }

    #[test]
    fn malformed() {
        let n = nonce();
        let m = |q: &str| parse_callback(&target(&n, q), &n);
        assert_eq!(
            m("?code=%zz"),
            CallbackTarget::Malformed(Malformed::BadPercentEncoding)
        );
        assert_eq!(
            m("?code=%4"),
            CallbackTarget::Malformed(Malformed::BadPercentEncoding)
        );
        assert_eq!(
            m("?code=%ff"),
            CallbackTarget::Malformed(Malformed::NotUtf8)
        );
        assert_eq!(
            m("?code=a&code=b"),
            CallbackTarget::Malformed(Malformed::DuplicateParameter("code"))
        );
        assert_eq!(m("?code="), CallbackTarget::Malformed(Malformed::BadCode));
        assert_eq!(
            m("?code=a%0Ab"),
            CallbackTarget::Malformed(Malformed::BadCode)
        );
        let long = format!("?code={}", "a".repeat(MAX_TARGET_BYTES));
        assert_eq!(m(&long), CallbackTarget::Malformed(Malformed::TooLong));
    }

    /// The previous implementation (two scans, an owned copy of every known value), kept as
    /// the reference the one-pass parser must agree with on every input.
    mod reference {
        use super::super::{
            AuthorizationCode, CallbackError, CallbackTarget, FlowNonce, Malformed, NotOurs,
            CALLBACK_PREFIX, DONE_SUFFIX, MAX_CODE_BYTES, MAX_TARGET_BYTES,
        };
        use zeroize::Zeroizing;

        fn hex(b: u8) -> Option<u8> {
            super::super::hex(b)
        }

        const KNOWN: [&str; 5] = ["code", "state", "error", "error_description", "error_uri"];

        // Classifies one request target for the flow whose nonce is `nonce`. Total: never panics.
        // The nonce and `state` comparisons are constant time.
        pub(super) fn parse_callback(target: &[u8], nonce: &FlowNonce) -> CallbackTarget {
            if target.len() > MAX_TARGET_BYTES {
                return CallbackTarget::Malformed(Malformed::TooLong);
            }
            // A fragment never belongs in a request target; ignore anything after one.
            let target = match target.iter().position(|&b| b == b'#') {
                Some(i) => &target[..i],
                None => target,
            };
            let (path, query) = match target.iter().position(|&b| b == b'?') {
                Some(i) => (&target[..i], Some(&target[i + 1..])),
                None => (target, None),
            };
            let Some(rest) = path.strip_prefix(CALLBACK_PREFIX.as_bytes()) else {
                return CallbackTarget::NotOurs(NotOurs::WrongPath);
            };
            if let Some(segment) = rest.strip_suffix(DONE_SUFFIX.as_bytes()) {
                return if nonce.ct_matches(segment) {
                    CallbackTarget::Done
                } else {
                    CallbackTarget::NotOurs(NotOurs::WrongNonce)
                };
            }
            if !nonce.ct_matches(rest) {
                return CallbackTarget::NotOurs(NotOurs::WrongNonce);
            }
            let params = match parse_query(query.unwrap_or_default()) {
                Ok(p) => p,
                Err(m) => return CallbackTarget::Malformed(m),
            };
            let [code, state, error, error_description, error_uri] = params;
            if let Some(state) = &state {
                if !nonce.ct_matches(state.as_bytes()) {
                    return CallbackTarget::NotOurs(NotOurs::StateMismatch);
                }
            }
            if let Some(error) = error {
                return CallbackTarget::Error(CallbackError {
                    error: error.to_string(),
                    error_description: error_description.map(|s| s.to_string()),
                    error_uri: error_uri.map(|s| s.to_string()),
                });
            }
            match code {
                Some(mut code) => {
                    if code.is_empty()
                        || code.len() > MAX_CODE_BYTES
                        || code.chars().any(char::is_control)
                    {
                        CallbackTarget::Malformed(Malformed::BadCode)
                    } else {
                        // Moved, not copied: the only copy stays in a zeroizing wrapper.
                        CallbackTarget::Code(AuthorizationCode::new(std::mem::take(&mut *code)))
                    }
                }
                None => CallbackTarget::NotOurs(NotOurs::NoParameters),
            }
        }

        type Params = [Option<Zeroizing<String>>; 5];

        // Strict `application/x-www-form-urlencoded` parsing of the five names we know; others are
        // skipped (but must still be well-formed). Only the values of known names are copied out.
        fn parse_query(query: &[u8]) -> Result<Params, Malformed> {
            let mut out: Params = Default::default();
            for pair in query.split(|&b| b == b'&') {
                if pair.is_empty() {
                    continue;
                }
                let (name, value) = match pair.iter().position(|&b| b == b'=') {
                    Some(i) => (&pair[..i], &pair[i + 1..]),
                    None => (pair, &[][..]),
                };
                match known_slot(name)? {
                    Some(slot) => {
                        let value = decode(value)?;
                        if out[slot].is_some() {
                            return Err(Malformed::DuplicateParameter(KNOWN[slot]));
                        }
                        out[slot] = Some(value);
                    }
                    None => validate(value)?,
                }
            }
            Ok(out)
        }

        // Which of [`KNOWN`] the (still encoded) parameter name is, if any. Names are not secret:
        // the common unescaped case is compared in place.
        fn known_slot(name: &[u8]) -> Result<Option<usize>, Malformed> {
            let slot = |n: &[u8]| KNOWN.iter().position(|k| k.as_bytes() == n);
            if needs_decoding(name) {
                Ok(slot(decode(name)?.as_bytes()))
            } else if std::str::from_utf8(name).is_err() {
                Err(Malformed::NotUtf8)
            } else {
                Ok(slot(name))
            }
        }

        // Checks one component the way [`decode`] would, without keeping the result.
        fn validate(bytes: &[u8]) -> Result<(), Malformed> {
            if needs_decoding(bytes) {
                decode(bytes).map(drop)
            } else {
                std::str::from_utf8(bytes)
                    .map(drop)
                    .map_err(|_| Malformed::NotUtf8)
            }
        }

        fn needs_decoding(bytes: &[u8]) -> bool {
            bytes.iter().any(|&b| b == b'%' || b == b'+')
        }

        // Percent-decodes one component (`+` is a space), strictly. The result and every
        // intermediate buffer are zeroized on drop (a component may be the authorization code).
        fn decode(bytes: &[u8]) -> Result<Zeroizing<String>, Malformed> {
            if !needs_decoding(bytes) {
                return match std::str::from_utf8(bytes) {
                    Ok(s) => Ok(Zeroizing::new(s.to_owned())),
                    Err(_) => Err(Malformed::NotUtf8),
                };
            }
            let mut out = Zeroizing::new(Vec::with_capacity(bytes.len()));
            let mut i = 0;
            while i < bytes.len() {
                match bytes[i] {
                    b'%' => {
                        let hi = bytes.get(i + 1).and_then(|b| hex(*b));
                        let lo = bytes.get(i + 2).and_then(|b| hex(*b));
                        match (hi, lo) {
                            (Some(h), Some(l)) => out.push(h << 4 | l),
                            _ => return Err(Malformed::BadPercentEncoding),
                        }
                        i += 3;
                    }
                    b'+' => {
                        out.push(b' ');
                        i += 1;
                    }
                    b => {
                        out.push(b);
                        i += 1;
                    }
                }
            }
            // Moves the bytes out without copying; `out` is left empty.
            match String::from_utf8(std::mem::take(&mut *out)) {
                Ok(s) => Ok(Zeroizing::new(s)),
                Err(e) => {
                    drop(Zeroizing::new(e.into_bytes()));
                    Err(Malformed::NotUtf8)
                }
            }
        }
    }

    /// Targets built from the pieces that matter: our path, separators, escapes (good, bad,
    /// non-UTF-8), the five names, our nonce as `state`, and stray bytes.
    fn target_pieces(n: &FlowNonce) -> impl Strategy<Value = Vec<u8>> {
        let nonce = n.expose_secret().to_owned();
        let piece = prop_oneof![
            Just(b"?".to_vec()),
            Just(b"#".to_vec()),
            Just(b"&".to_vec()),
            Just(b"=".to_vec()),
            Just(b"+".to_vec()),
            Just(b"%".to_vec()),
            Just(b"%4".to_vec()),
            Just(b"%41".to_vec()),
            Just(b"%zz".to_vec()),
            Just(b"%ff".to_vec()),
            Just(b"%C3%A9".to_vec()),
            Just(b"%C3".to_vec()),
            Just(b"%0A".to_vec()),
            Just(b"code".to_vec()),
            Just(b"c%6Fde".to_vec()),
            Just(b"state".to_vec()),
            Just(b"error".to_vec()),
            Just(b"error_description".to_vec()),
            Just(b"error_uri".to_vec()),
            Just(b"/done".to_vec()),
            Just(b"/".to_vec()),
            Just(nonce.clone().into_bytes()),
            Just(nonce.as_bytes()[nonce.len() - 1..].to_vec()),
            Just(nonce.replacen('A', "%41", 1).into_bytes()),
            proptest::collection::vec(any::<u8>(), 1..4),
            "[a-z0-9]{1,80}".prop_map(String::into_bytes),
        ];
        let wrong = nonce.replacen(
            &nonce[..1],
            if nonce.starts_with('B') { "C" } else { "B" },
            1,
        );
        proptest::collection::vec(piece, 0..24).prop_map(move |pieces| {
            // Mostly our whole path; sometimes none of it, our prefix alone (so the pieces
            // make the nonce, or fall short of it), the nonce less its last byte, or another
            // nonce of the same length.
            let mut t = match pieces.len() % 8 {
                7 => Vec::new(),
                6 => b"/callback/".to_vec(),
                5 => format!("/callback/{}", &nonce[..nonce.len() - 1]).into_bytes(),
                // As long as the nonce but not it: must never pass, `/done` after it or not.
                4 => format!("/callback/{wrong}/done").into_bytes(),
                3 => format!("/callback/{wrong}").into_bytes(),
                _ => format!("/callback/{nonce}").into_bytes(),
            };
            for p in pieces {
                t.extend_from_slice(&p);
            }
            t
        })
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..10_000)) {
            let n = nonce();
            let _ = parse_callback(&bytes, &n);
            let mut t = target(&n, "?");
            t.extend_from_slice(&bytes);
            let _ = parse_callback(&t, &n);
        }

        #[test]
        fn one_pass_parse_agrees_with_the_reference(t in target_pieces(&nonce())) {
            let n = nonce();
            prop_assert_eq!(parse_callback(&t, &n), reference::parse_callback(&t, &n));
        }

        #[test]
        fn any_percent_encoded_code_round_trips(code in "[^\\p{Cc}]{1,300}") {
            let n = nonce();
            let enc: String = url::form_urlencoded::Serializer::new(String::new())
                .append_pair("code", &code)
                .finish();
            let got = parse_callback(&target(&n, &format!("?{enc}")), &n);
            prop_assert_eq!(got, CallbackTarget::Code(AuthorizationCode::new(code)));
        }
    }
}
