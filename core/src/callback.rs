//! Callback parsing: what a request target that reached the loopback listener means.
//!
//! [`parse_callback`] is a pure, total function from the raw request target (path and query
//! as bytes, exactly as the request line carried them) to one [`CallbackTarget`]. It never
//! panics and reads at most [`MAX_TARGET_BYTES`] bytes.
//!
//! Sources: PROTOCOL.md section 2 (OpenRouter appends `code`), RFC 6749 section 4.1.2.1
//! (`error`, `error_description`, `error_uri`), RFC 8252 section 8.1 and RFC 9700 section 4.7
//! (bind the callback to the flow: our nonce in the path, `state` checked if present).

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
/// address bar (PROTOCOL.md section 7).
pub const DONE_SUFFIX: &str = "/done";

/// What one request target means for a flow with a given nonce.
#[derive(Debug, Clone, PartialEq, Eq)]
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

const KNOWN: [&str; 5] = ["code", "state", "error", "error_description", "error_uri"];

/// Classifies one request target for the flow whose nonce is `nonce`. Total: never panics.
/// The nonce and `state` comparisons are constant time.
pub fn parse_callback(target: &[u8], nonce: &FlowNonce) -> CallbackTarget {
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
            if code.is_empty() || code.len() > MAX_CODE_BYTES || code.chars().any(char::is_control)
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

/// Strict `application/x-www-form-urlencoded` parsing of the five names we know; others are
/// skipped (but must still be well-formed). Only the values of known names are copied out.
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

/// Which of [`KNOWN`] the (still encoded) parameter name is, if any. Names are not secret:
/// the common unescaped case is compared in place.
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

/// Checks one component the way [`decode`] would, without keeping the result.
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

/// Percent-decodes one component (`+` is a space), strictly. The result and every
/// intermediate buffer are zeroized on drop (a component may be the authorization code).
pub(crate) fn decode(bytes: &[u8]) -> Result<Zeroizing<String>, Malformed> {
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
