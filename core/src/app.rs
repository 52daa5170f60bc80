//! Who is signing in: the embedding app's display name (shown on every browser page) and the
//! product token it puts in the `User-Agent` the core builds.

use serde::{Deserialize, Serialize};

/// Why an [`AppName`] or a [`ProductToken`] was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AppNameError {
    /// Empty, or only white space.
    #[error("the app name is empty")]
    Empty,
    /// Longer than the limit (carries the length, in characters, and the limit).
    #[error("the app name has {len} characters; at most {max} are allowed")]
    TooLong {
        /// The length given, in characters.
        len: usize,
        /// The limit, in characters.
        max: usize,
    },
    /// Holds a control character (newline, tab, NUL, …) that would garble a page or a header.
    #[error("the app name contains a control character")]
    ControlCharacter,
    /// A product token holds a character HTTP does not allow in one (RFC 9110 section 10.1.5:
    /// `name[/version]`, each made of letters, digits and ``!#$%&'*+-.^_`|~``).
    #[error("the User-Agent product {0:?} is not of the form name/version (letters, digits and !#$%&'*+-.^_`|~ only)")]
    NotAProductToken(String),
}

/// The embedding app's display name, e.g. `Zed` or `my-agent`: the pages say "you can
/// return to `<name>`". At most [`AppName::MAX_CHARS`] characters, not blank, no control
/// characters; leading and trailing white space is trimmed. Rendered HTML-escaped. Default
/// `openrouter-auth`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AppName(String);

impl AppName {
    /// The limit, in characters.
    pub const MAX_CHARS: usize = 60;

    /// Validates a display name.
    ///
    /// # Errors
    ///
    /// [`AppNameError::Empty`], [`AppNameError::TooLong`] or
    /// [`AppNameError::ControlCharacter`].
    pub fn new(name: &str) -> Result<Self, AppNameError> {
        let name = name.trim();
        if name.is_empty() {
            return Err(AppNameError::Empty);
        }
        let len = name.chars().count();
        if len > Self::MAX_CHARS {
            return Err(AppNameError::TooLong {
                len,
                max: Self::MAX_CHARS,
            });
        }
        if name.chars().any(char::is_control) {
            return Err(AppNameError::ControlCharacter);
        }
        Ok(Self(name.to_owned()))
    }

    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for AppName {
    fn default() -> Self {
        Self("openrouter-auth".into())
    }
}

impl std::fmt::Display for AppName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for AppName {
    type Error = AppNameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(&s)
    }
}

impl From<AppName> for String {
    fn from(n: AppName) -> String {
        n.0
    }
}

/// A `User-Agent` product (RFC 9110 section 10.1.5), e.g. `zed/0.190.0`: the app's name and
/// optional version, each a token (letters, digits and ``!#$%&'*+-.^_`|~``), at most
/// [`ProductToken::MAX_LEN`] bytes. The core's requests then carry
/// `User-Agent: <product> openrouter-auth/<version>` ([`crate::user_agent`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ProductToken(String);

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

impl ProductToken {
    /// The limit, in bytes.
    pub const MAX_LEN: usize = 64;

    /// Validates `name` or `name/version`.
    ///
    /// # Errors
    ///
    /// [`AppNameError::Empty`], [`AppNameError::TooLong`], or
    /// [`AppNameError::NotAProductToken`] (white space, control characters, a second `/`,
    /// non-ASCII, an empty name or version).
    pub fn new(product: &str) -> Result<Self, AppNameError> {
        if product.is_empty() {
            return Err(AppNameError::Empty);
        }
        if product.len() > Self::MAX_LEN {
            return Err(AppNameError::TooLong {
                len: product.chars().count(),
                max: Self::MAX_LEN,
            });
        }
        let mut parts = product.split('/');
        let ok = parts
            .by_ref()
            .take(2)
            .all(|p| !p.is_empty() && p.bytes().all(is_tchar))
            && parts.next().is_none();
        if !ok {
            return Err(AppNameError::NotAProductToken(
                product.escape_debug().to_string(),
            ));
        }
        Ok(Self(product.to_owned()))
    }

    /// A token made from a display name: ASCII letters, digits and `-._` kept, runs of
    /// anything else turned into one `-`, cut to [`ProductToken::MAX_LEN`]. `None` when
    /// nothing is left (a name in another script).
    pub fn from_app_name(name: &AppName) -> Option<Self> {
        let mut out = String::with_capacity(name.as_str().len());
        for c in name.as_str().chars() {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') {
                out.push(c);
            } else if !out.ends_with('-') {
                out.push('-');
            }
        }
        let out = out.trim_matches('-');
        let out = &out[..out.len().min(Self::MAX_LEN)];
        Self::new(out).ok()
    }

    /// The product.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ProductToken {
    type Error = AppNameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(&s)
    }
}

impl From<ProductToken> for String {
    fn from(p: ProductToken) -> String {
        p.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_names_refuse_what_would_garble_a_page() {
        assert_eq!(AppName::new("  Zed  ").unwrap().as_str(), "Zed");
        assert_eq!(AppName::new(" "), Err(AppNameError::Empty));
        assert_eq!(AppName::new("a\nb"), Err(AppNameError::ControlCharacter));
        assert!(matches!(
            AppName::new(&"x".repeat(61)),
            Err(AppNameError::TooLong { len: 61, max: 60 })
        ));
        assert_eq!(AppName::default().as_str(), "openrouter-auth");
    }

    #[test]
    fn product_tokens_are_valid_header_tokens() {
        assert!(ProductToken::new("zed/0.190.0").is_ok());
        assert!(ProductToken::new("goose").is_ok());
        for bad in ["", "my app/1", "a/b/c", "a/", "/1", "é/1", "a\r\nX-Evil: 1"] {
            assert!(ProductToken::new(bad).is_err(), "{bad:?}");
        }
        let name = AppName::new("My Agent (beta)").unwrap();
        assert_eq!(
            ProductToken::from_app_name(&name).unwrap().as_str(),
            "My-Agent-beta"
        );
        assert_eq!(
            ProductToken::from_app_name(&AppName::new("日本").unwrap()),
            None
        );
    }
}
