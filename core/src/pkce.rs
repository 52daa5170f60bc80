//! PKCE (RFC 7636): the `code_verifier`, its `code_challenge`, and the
//! `code_challenge_method`.
//!
//! OpenRouter accepts `S256` and `plain` (OpenRouter's OAuth PKCE guide: <https://openrouter.ai/docs/use-cases/oauth-pkce>). We always use `S256`;
//! `plain` exists only for explicit opt-in and is never a fallback (RFC 7636 section 7.2,
//! RFC 9700 section 2.1.1).

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Why a string is not a valid `code_verifier` (RFC 7636 section 4.1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifierError {
    /// Fewer than 43 or more than 128 characters. Carries the length in characters.
    #[error("a code_verifier must be 43 to 128 characters long, this one has {0}")]
    Length(usize),
    /// A character outside `A-Z a-z 0-9 - . _ ~`. Carries the 0-based position, never the
    /// character itself (the verifier is a secret).
    #[error(
        "a code_verifier may contain only A-Z a-z 0-9 - . _ ~ (bad character at position {0})"
    )]
    Character(usize),
}

crate::secret::secret_string!(
    /// The PKCE `code_verifier`: 43 to 128 characters of `A-Z a-z 0-9 - . _ ~`
    /// (RFC 7636 section 4.1). A secret: zeroized on drop, redacted in `Debug`/`Display`,
    /// compared in constant time, read only with [`CodeVerifier::expose_secret`]. It appears
    /// only in the code exchange body. Neither `Clone` nor convertible into a `String`, so no
    /// copy escapes zeroizing; serde reads it back through [`CodeVerifier::parse`].
    ///
    /// ```compile_fail
    /// fn needs_clone<T: Clone>() {}
    /// needs_clone::<openrouter_auth_core::CodeVerifier>();
    /// ```
    ///
    /// ```compile_fail
    /// let v = openrouter_auth_core::CodeVerifier::from_entropy(&[0; 32]);
    /// let s: String = v.into();
    /// ```
    #[derive(Deserialize)]
    #[serde(try_from = "String")]
    CodeVerifier
);

/// Writes the verifier itself (a serialised [`crate::Flow`] holds its secrets).
impl Serialize for CodeVerifier {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.expose_secret())
    }
}

impl CodeVerifier {
    /// Minimum length in characters (RFC 7636 section 4.1).
    pub const MIN_LEN: usize = 43;
    /// Maximum length in characters (RFC 7636 section 4.1).
    pub const MAX_LEN: usize = 128;

    /// Makes a verifier from 32 bytes of the caller's CSPRNG, base64url without padding:
    /// 43 characters, 256 bits (RFC 7636 section 4.1, recommended form).
    pub fn generate<R: rand_core::CryptoRng + rand_core::RngCore + ?Sized>(rng: &mut R) -> Self {
        let mut bytes = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(bytes.as_mut());
        Self::from_entropy(&bytes)
    }

    /// The verifier for 32 given octets (base64url without padding). Used by
    /// [`CodeVerifier::generate`] and by the RFC 7636 appendix B test vector.
    pub fn from_entropy(bytes: &[u8; 32]) -> Self {
        Self(Zeroizing::new(crate::b64url(bytes)))
    }

    /// Parses a verifier, e.g. one a caller persisted. Errors: [`VerifierError`].
    pub fn parse(s: &str) -> Result<Self, VerifierError> {
        let len = s.chars().count();
        if !(Self::MIN_LEN..=Self::MAX_LEN).contains(&len) {
            return Err(VerifierError::Length(len));
        }
        if let Some(pos) = s.bytes().position(|b| !is_unreserved(b)) {
            return Err(VerifierError::Character(pos));
        }
        Ok(Self(Zeroizing::new(s.to_owned())))
    }

    /// The `code_challenge` for `method` (RFC 7636 section 4.2).
    pub fn challenge(&self, method: CodeChallengeMethod) -> CodeChallenge {
        match method {
            CodeChallengeMethod::S256 => {
                let digest = Sha256::digest(self.0.as_bytes());
                CodeChallenge(crate::b64url(&digest))
            }
            CodeChallengeMethod::Plain => CodeChallenge(self.0.as_str().to_owned()),
        }
    }
}

impl TryFrom<String> for CodeVerifier {
    type Error = VerifierError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        let s = Zeroizing::new(s);
        Self::parse(&s)
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// The `code_challenge` sent in the authorization URL (RFC 7636 section 4.2). Not a secret:
/// for `S256` it reveals nothing about the verifier.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct CodeChallenge(String);

impl CodeChallenge {
    /// The challenge as it goes on the wire.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for CodeChallenge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A `plain` challenge *is* the verifier, so even this is redacted.
        f.write_str("CodeChallenge([redacted])")
    }
}

/// The `code_challenge_method` (RFC 7636 section 4.3). OpenRouter requires the same value at
/// `/auth` and at the code exchange (OpenRouter's OAuth PKCE guide, step 2; else 400).
///
/// Deliberately exhaustive: RFC 7636 section 4.2 defines exactly these two methods, and a
/// match on them may rely on that.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CodeChallengeMethod {
    /// `S256`: the challenge is BASE64URL(SHA256(verifier)). The default, and the only method
    /// this crate ever picks by itself.
    #[default]
    S256,
    /// `plain`: the challenge is the verifier. Explicit opt-in only (RFC 7636 section 7.2);
    /// never used as a fallback.
    #[serde(rename = "plain")]
    Plain,
}

impl CodeChallengeMethod {
    /// The wire value: `S256` or `plain`.
    pub fn as_str(self) -> &'static str {
        match self {
            CodeChallengeMethod::S256 => "S256",
            CodeChallengeMethod::Plain => "plain",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7636 appendix B.
    #[test]
    fn rfc7636_appendix_b_vector() {
        let octets = [
            116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212,
            37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121,
        ];
        let v = CodeVerifier::from_entropy(&octets);
        assert_eq!(
            v.expose_secret(),
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        );
        assert_eq!(
            v.challenge(CodeChallengeMethod::S256).as_str(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
        assert_eq!(
            v.challenge(CodeChallengeMethod::Plain).as_str(),
            "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
        );
    }

    #[test]
    fn generated_verifier_is_43_unreserved_chars_and_differs() {
        use rand_chacha::rand_core::SeedableRng;
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let a = CodeVerifier::generate(&mut rng);
        let b = CodeVerifier::generate(&mut rng);
        assert_eq!(a.expose_secret().len(), 43);
        assert!(CodeVerifier::parse(a.expose_secret()).is_ok());
        assert_ne!(a, b);
    }

    #[test]
    fn parse_rejects_bad_lengths_and_characters() {
        assert_eq!(
            CodeVerifier::parse(&"a".repeat(42)),
            Err(VerifierError::Length(42))
        );
        assert_eq!(
            CodeVerifier::parse(&"a".repeat(129)),
            Err(VerifierError::Length(129))
        );
        assert!(CodeVerifier::parse(&"a".repeat(43)).is_ok());
        assert!(CodeVerifier::parse(&"~._-".repeat(32)).is_ok());
        let mut s = "a".repeat(50);
        s.replace_range(10..11, "+");
        assert_eq!(CodeVerifier::parse(&s), Err(VerifierError::Character(10)));
        let uni = format!("{}é", "a".repeat(43));
        assert_eq!(CodeVerifier::parse(&uni), Err(VerifierError::Character(43)));
    }

    #[test]
    fn errors_never_show_the_verifier() {
        let secret = format!("{}+secretpart", "a".repeat(40));
        let err = CodeVerifier::parse(&secret).unwrap_err().to_string();
        assert!(!err.contains("secretpart"), "{err}");
        let v = CodeVerifier::parse(&"s3cr3t".repeat(8)).unwrap();
        assert!(!format!("{v:?}{v}").contains("s3cr3t"));
    }

    #[test]
    fn serde_round_trip_validates() {
        let v = CodeVerifier::parse(&"x".repeat(60)).unwrap();
        let json = serde_json::to_string(&v).unwrap();
        let back: CodeVerifier = serde_json::from_str(&json).unwrap();
        assert_eq!(v, back);
        assert!(serde_json::from_str::<CodeVerifier>("\"short\"").is_err());
        assert_eq!(
            serde_json::to_string(&CodeChallengeMethod::Plain).unwrap(),
            "\"plain\""
        );
    }
}
