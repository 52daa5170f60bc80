//! Secret newtypes: the PKCE `code_verifier`, the authorization code, the API key and the
//! flow nonce.
//!
//! Each one zeroizes its bytes on drop, prints `[redacted]` in `Debug` and `Display`, and is
//! read only through an explicit `expose_secret()` (the habit of oauth2-rs and `secrecy`).
//! RFC 9700 section 2.1.1 and RFC 8252 section 8.1: codes and verifiers must not leak.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Defines a secret newtype over `Zeroizing<String>`: `expose_secret()`, constant-time
/// `PartialEq`/`Eq`, and `Debug`/`Display` that print `Name([redacted])`/`[redacted]`. The
/// attributes given (docs, derives, serde) go on the struct: a secret is `Clone` or
/// `Serialize` only where it says so. Used here and by [`crate::pkce::CodeVerifier`].
macro_rules! secret_string {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        pub struct $name(zeroize::Zeroizing<String>);

        impl $name {
            /// The secret itself. Every call site is a place the secret leaves its wrapper:
            /// keep them few and never log the result.
            pub fn expose_secret(&self) -> &str {
                self.0.as_str()
            }
        }

        /// Constant-time equality (`subtle`).
        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                crate::ct_eq(self.0.as_bytes(), other.0.as_bytes())
            }
        }

        impl Eq for $name {}

        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(concat!(stringify!($name), "([redacted])"))
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("[redacted]")
            }
        }
    };
}
pub(crate) use secret_string;

secret_string!(
    /// An OAuth authorization code, as OpenRouter appended it to the `callback_url`
    /// (OpenRouter's OAuth PKCE guide, step 1). Single use; expires 10 minutes after it was issued.
    #[derive(Clone, Serialize, Deserialize)]
    #[serde(transparent)]
    AuthorizationCode
);

secret_string!(
    /// An OpenRouter API key (`sk-or-v1-` followed by 64 lowercase hex digits), as returned by
    /// `POST /api/v1/auth/keys` (ibid., step 2). Long-lived: no expiry, no refresh.
    #[derive(Clone, Serialize, Deserialize)]
    #[serde(transparent)]
    ApiKey
);

secret_string!(
    /// The per-flow nonce: 192 bits from the caller's CSPRNG, base64url without padding
    /// (32 characters). It is the last segment of the callback path (`/callback/<nonce>`) and is
    /// also sent as `state` (RFC 9700 section 4.7.1; OpenRouter may not echo it, so the
    /// nonce in the callback path is what binds the callback to the flow).
    ///
    /// Deserializing (a stored `Flow`) accepts only that shape: [`crate::parse_callback`]
    /// relies on a nonce holding none of `/`, `?` and `#`.
    #[derive(Clone, Serialize)]
    #[serde(transparent)]
    FlowNonce
);

impl<'de> Deserialize<'de> for FlowNonce {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let nonce = Zeroizing::new(String::deserialize(deserializer)?);
        if nonce.len() != FlowNonce::CHARS
            || !nonce
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(serde::de::Error::custom(
                "a flow nonce is 32 base64url characters (A-Z, a-z, 0-9, - and _)",
            ));
        }
        Ok(Self(nonce))
    }
}

impl AuthorizationCode {
    /// Wraps a code. No validation: codes are opaque; the callback parser bounds their length.
    pub fn new(code: impl Into<String>) -> Self {
        Self(Zeroizing::new(code.into()))
    }
}

impl ApiKey {
    /// Wraps a key. No validation here; [`crate::exchange::parse_exchange_response`] checks
    /// what OpenRouter returned.
    pub fn new(key: impl Into<String>) -> Self {
        Self(Zeroizing::new(key.into()))
    }

    /// A hint that lets a person recognise the key without revealing it:
    /// the first 12 and last 4 characters, e.g. `sk-or-v1-abc…wxyz`. Keys shorter than
    /// 24 characters show only `…` and their last 2 characters.
    pub fn hint(&self) -> String {
        let k = self.expose_secret();
        let chars: Vec<char> = k.chars().collect();
        if chars.len() >= 24 {
            let head: String = chars[..12].iter().collect();
            let tail: String = chars[chars.len() - 4..].iter().collect();
            format!("{head}…{tail}")
        } else {
            let tail: String = chars[chars.len().saturating_sub(2)..].iter().collect();
            format!("…{tail}")
        }
    }

    /// Lowercase hex SHA-256 of the key: the id of its page at
    /// `https://openrouter.ai/keys/<hash>` (the key's page in the owner's OpenRouter settings).
    pub fn key_hash(&self) -> String {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let digest = Sha256::digest(self.expose_secret().as_bytes());
        let mut out = String::with_capacity(64);
        for b in digest {
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        out
    }

    /// The page where the key's owner can see and revoke it:
    /// `{base_url}/keys/<lowercase hex SHA-256 of the key>`.
    pub fn key_page_url(&self, base_url: &url::Url) -> url::Url {
        let mut u = base_url.clone();
        u.set_query(None);
        u.set_fragment(None);
        u.set_path(&format!("/keys/{}", self.key_hash()));
        u
    }
}

impl FlowNonce {
    /// Number of random bytes in a nonce (192 bits).
    pub const BYTES: usize = 24;

    /// Its length in base64url characters, without padding.
    pub const CHARS: usize = Self::BYTES / 3 * 4;

    /// Draws a new nonce from the caller's CSPRNG.
    pub fn generate<R: rand_core::CryptoRng + rand_core::RngCore + ?Sized>(rng: &mut R) -> Self {
        let mut bytes = Zeroizing::new([0u8; Self::BYTES]);
        rng.fill_bytes(bytes.as_mut());
        Self(Zeroizing::new(crate::b64url(bytes.as_ref())))
    }

    /// Constant-time comparison with bytes from a request (RFC 9700 section 4.7; `subtle`).
    pub fn ct_matches(&self, candidate: &[u8]) -> bool {
        crate::ct_eq(self.expose_secret().as_bytes(), candidate)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stored flow's nonce must have the generated shape: the callback parser takes the
    /// nonce's length of bytes after `/callback/` and relies on it holding no `/`, `?`, `#`.
    #[test]
    fn a_nonce_deserializes_only_in_the_generated_shape() {
        use rand_core::SeedableRng;
        let nonce = FlowNonce::generate(&mut rand_chacha::ChaCha20Rng::seed_from_u64(7));
        let json = serde_json::to_string(&nonce).unwrap();
        let back: FlowNonce = serde_json::from_str(&json).unwrap();
        assert_eq!(back, nonce);
        assert_eq!(nonce.expose_secret().len(), FlowNonce::CHARS);
        let good = nonce.expose_secret();
        for bad in [
            format!("{}?", &good[1..]),
            format!("{}/", &good[1..]),
            format!("{}#", &good[1..]),
            good[1..].to_owned(),
            format!("{good}A"),
            String::new(),
        ] {
            let err = serde_json::from_str::<FlowNonce>(&serde_json::to_string(&bad).unwrap())
                .expect_err(&bad);
            assert!(err.to_string().contains("32 base64url characters"), "{err}");
            if bad.len() >= 8 {
                assert!(
                    !err.to_string().contains(&bad[..8]),
                    "the error echoes the value"
                );
            }
        }
    }

    #[test]
    fn debug_and_display_redact() {
        let key = ApiKey::new(
            "sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        );
        assert_eq!(format!("{key:?}"), "ApiKey([redacted])");
        assert_eq!(format!("{key}"), "[redacted]");
        let code = AuthorizationCode::new("abc");
        assert!(!format!("{code:?} {code}").contains("abc"));
    }

    #[test]
    fn hint_shows_prefix_and_suffix_only() {
        let key =
            ApiKey::new("sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef01234567wxyz");
        assert_eq!(key.hint(), "sk-or-v1-012…wxyz");
        assert_eq!(ApiKey::new("short").hint(), "…rt");
        assert_eq!(ApiKey::new("").hint(), "…");
    }

    #[test]
    fn key_hash_is_lowercase_hex_sha256() {
        // sha256("abc"), FIPS 180-2 appendix B.1
        assert_eq!(
            ApiKey::new("abc").key_hash(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        let page = ApiKey::new("abc").key_page_url(&"https://openrouter.ai/".parse().unwrap());
        assert_eq!(
            page.as_str(),
            "https://openrouter.ai/keys/ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
