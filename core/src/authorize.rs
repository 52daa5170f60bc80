//! The authorization request: the URL the user's browser opens (OpenRouter's OAuth PKCE
//! guide, step 1: <https://openrouter.ai/docs/use-cases/oauth-pkce>).
//!
//! `GET {base_url}/auth?callback_url=…&code_challenge=…&code_challenge_method=…&key_label=…`
//! with every value percent-encoded by the `url` crate. The headless variant (OpenRouter's guide, which makes `callback_url` optional;
//! section 5) leaves out `callback_url`; OpenRouter then shows the code on the page.

use crate::pkce::{CodeChallenge, CodeChallengeMethod};
use serde::{Deserialize, Serialize};

/// OpenRouter's production base URL.
pub const DEFAULT_BASE_URL: &str = "https://openrouter.ai";

/// Whether `base_url` may carry the code exchange and the key check: `https`, or plain `http`
/// only on a loopback host (`localhost`, 127.0.0.0/8, `[::1]`: an emulator on this machine).
/// Anything else would send the `code_verifier`, the authorization code and the API key
/// across a network unencrypted (RFC 9700 section 2.6; RFC 8252 section 8.3).
pub fn base_url_is_secure(base_url: &url::Url) -> bool {
    let loopback = match base_url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match base_url.scheme() {
        "https" => base_url.host().is_some(),
        "http" => loopback,
        _ => false,
    }
}

/// Why a `key_label` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum KeyLabelError {
    /// Empty, or only white space.
    #[error("the key label is empty")]
    Empty,
    /// Over [`KeyLabel::MAX_CHARS`] characters. Carries the length in characters.
    #[error("the key label has {0} characters; OpenRouter allows at most 100")]
    TooLong(usize),
    /// Holds a control character (newline, tab, NUL, …) that would garble a key list.
    #[error("the key label contains a control character")]
    ControlCharacter,
}

/// The `key_label`: how the key will be named in the user's OpenRouter key list. At most 100
/// characters (OpenRouter's OAuth PKCE guide, step 1), no control characters, not blank. Leading and trailing
/// white space is trimmed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct KeyLabel(String);

impl KeyLabel {
    /// OpenRouter's limit, in characters.
    pub const MAX_CHARS: usize = 100;

    /// Validates a label. Errors: [`KeyLabelError`].
    pub fn new(label: &str) -> Result<Self, KeyLabelError> {
        let label = label.trim();
        if label.is_empty() {
            return Err(KeyLabelError::Empty);
        }
        let n = label.chars().count();
        if n > Self::MAX_CHARS {
            return Err(KeyLabelError::TooLong(n));
        }
        if label.chars().any(char::is_control) {
            return Err(KeyLabelError::ControlCharacter);
        }
        Ok(Self(label.to_owned()))
    }

    /// Like [`KeyLabel::new`] but cuts an over-long label to 100 characters (ending in `…`)
    /// and replaces control characters by spaces, for labels built from machine data such as
    /// a hostname. Errors only when nothing printable is left.
    pub fn lossy(label: &str) -> Result<Self, KeyLabelError> {
        let cleaned: String = label
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        let cleaned = cleaned.trim();
        if cleaned.chars().count() > Self::MAX_CHARS {
            let cut: String = cleaned.chars().take(Self::MAX_CHARS - 1).collect();
            return Self::new(&format!("{}…", cut.trim_end()));
        }
        Self::new(cleaned)
    }

    /// The label.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for KeyLabel {
    type Error = KeyLabelError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(&s)
    }
}

impl From<KeyLabel> for String {
    fn from(l: KeyLabel) -> String {
        l.0
    }
}

/// The host name put in the `callback_url`. The listener serves both 127.0.0.1 and ::1
/// whichever is advertised.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub enum CallbackHost {
    /// `localhost` (default): reported to work where `127.0.0.1` hung OpenRouter's authorize
    /// page (OpenRouter's OAuth PKCE guide; RFC 8252 section 7.3); browsers may resolve it to ::1 first.
    #[default]
    Localhost,
    /// `127.0.0.1`, on request (RFC 8252 section 7.3 prefers the literal).
    Ipv4Loopback,
}

impl CallbackHost {
    /// `localhost` or `127.0.0.1`.
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackHost::Localhost => "localhost",
            CallbackHost::Ipv4Loopback => "127.0.0.1",
        }
    }
}

impl std::str::FromStr for CallbackHost {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "localhost" => Ok(CallbackHost::Localhost),
            "127.0.0.1" => Ok(CallbackHost::Ipv4Loopback),
            other => Err(format!(
                "callback host must be `localhost` or `127.0.0.1`, not `{other}`"
            )),
        }
    }
}

/// `http://{host}:{port}/callback/{nonce}`: the `callback_url` for a loopback flow
/// (RFC 8252 section 7.3). The nonce is in the path so the binding works whatever OpenRouter
/// does with `state` (OpenRouter's OAuth PKCE guide, step 1; RFC 9700 section 4.7.1).
pub fn callback_url(host: CallbackHost, port: u16, nonce: &crate::FlowNonce) -> url::Url {
    let s = format!(
        "http://{}:{}/callback/{}",
        host.as_str(),
        port,
        nonce.expose_secret()
    );
    url::Url::parse(&s).expect("a loopback host, a port and a base64url nonce form a valid URL")
}

/// Builds `{base_url}/auth?…` (OpenRouter's OAuth PKCE guide, step 1: <https://openrouter.ai/docs/use-cases/oauth-pkce>).
///
/// - `callback_url`: `Some` for the loopback flow, `None` for headless mode.
/// - `state`: sent when `Some` (we send the flow nonce; OpenRouter may ignore it).
///
/// Any path on `base_url` is replaced by `/auth`; its query and fragment are dropped.
pub fn authorization_url(
    base_url: &url::Url,
    callback_url: Option<&url::Url>,
    code_challenge: &CodeChallenge,
    code_challenge_method: CodeChallengeMethod,
    key_label: Option<&KeyLabel>,
    state: Option<&str>,
) -> url::Url {
    let mut url = base_url.clone();
    url.set_fragment(None);
    url.set_query(None);
    url.set_path("/auth");
    {
        let mut q = url.query_pairs_mut();
        if let Some(cb) = callback_url {
            q.append_pair("callback_url", cb.as_str());
        }
        q.append_pair("code_challenge", code_challenge.as_str());
        q.append_pair("code_challenge_method", code_challenge_method.as_str());
        if let Some(label) = key_label {
            q.append_pair("key_label", label.as_str());
        }
        if let Some(state) = state {
            q.append_pair("state", state);
        }
    }
    url
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_https_or_loopback_http_may_carry_secrets() {
        let secure = |u: &str| base_url_is_secure(&url::Url::parse(u).unwrap());
        for ok in [
            "https://openrouter.ai",
            "https://openrouter.ai/",
            "http://localhost:8080/",
            "http://LOCALHOST",
            "http://127.0.0.1:1",
            "http://127.8.9.10",
            "http://[::1]:9/",
        ] {
            assert!(secure(ok), "{ok}");
        }
        for bad in [
            "http://openrouter.ai",
            "http://localhost.evil.example",
            "http://192.168.1.2",
            "http://[::2]",
            "ftp://localhost",
            "file:///etc/passwd",
            "data:text/plain,x",
        ] {
            assert!(!secure(bad), "{bad}");
        }
    }

    #[test]
    fn key_label_limits() {
        assert_eq!(KeyLabel::new("  "), Err(KeyLabelError::Empty));
        assert!(KeyLabel::new(&"é".repeat(100)).is_ok());
        assert_eq!(
            KeyLabel::new(&"é".repeat(101)),
            Err(KeyLabelError::TooLong(101))
        );
        assert_eq!(KeyLabel::new("a\nb"), Err(KeyLabelError::ControlCharacter));
        assert_eq!(KeyLabel::new(" my app ").unwrap().as_str(), "my app");
        let long = KeyLabel::lossy(&"x".repeat(300)).unwrap();
        assert_eq!(long.as_str().chars().count(), 100);
        assert!(long.as_str().ends_with('…'));
        assert_eq!(KeyLabel::lossy("host\tname").unwrap().as_str(), "host name");
    }

    #[test]
    fn callback_host_parses() {
        assert_eq!("localhost".parse(), Ok(CallbackHost::Localhost));
        assert_eq!("127.0.0.1".parse(), Ok(CallbackHost::Ipv4Loopback));
        assert!("0.0.0.0".parse::<CallbackHost>().is_err());
    }
}
