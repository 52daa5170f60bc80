//! The `keyring` store: the operating system's credential store, through the `keyring` crate —
//! the macOS Keychain, the Windows Credential Manager, or a Secret Service (GNOME Keyring,
//! KWallet, KeePassXC) on Linux and the BSDs.

use std::path::Path;

use openrouter_auth_core::ApiKey;

use super::{KeyMeta, KeyStore, StoreError, StoreReport};

/// The keyring entry's service name (unless `OPENROUTER_AUTH_KEYRING_SERVICE` names another).
pub const KEYRING_SERVICE: &str = "openrouter-auth";

/// The environment variable that overrides [`KEYRING_SERVICE`] (tests use it so they never
/// touch the developer's real entry; it also lets one machine keep several keys apart).
pub const KEYRING_SERVICE_VAR: &str = "OPENROUTER_AUTH_KEYRING_SERVICE";

/// The keyring entry's account (user) name.
pub const KEYRING_ACCOUNT: &str = "openrouter-api-key";

/// What the platform's credential store is called, for messages.
pub fn keyring_name() -> &'static str {
    if cfg!(target_os = "macos") {
        "macOS Keychain"
    } else if cfg!(target_os = "windows") {
        "Windows Credential Manager"
    } else {
        "Secret Service keyring"
    }
}

/// Whether this build can use a real keychain on this platform. Without it (the `keyring`
/// feature is off, or the platform has no supported keychain), the `keyring` store spec fails with
/// [`StoreError::KeyringUnavailable`] instead of keeping the key in memory only.
pub const KEYRING_SUPPORTED: bool = cfg!(all(
    feature = "keyring",
    any(
        target_os = "macos",
        target_os = "windows",
        target_os = "linux",
        target_os = "freebsd",
        target_os = "openbsd"
    )
));

/// The key as one entry (service [`KEYRING_SERVICE`], account [`KEYRING_ACCOUNT`]) in the
/// system keychain. The key label and user id are not kept. Errors:
/// [`StoreError::KeyringUnavailable`] when there is no keychain to talk to (on Linux: no
/// Secret Service running, as on servers and in containers), [`StoreError::Keyring`] when it
/// refused an operation.
#[derive(Debug, Clone)]
pub struct KeyringStore {
    service: String,
}

impl KeyringStore {
    /// The store, with the service name from `OPENROUTER_AUTH_KEYRING_SERVICE` if that is set
    /// and not empty, else [`KEYRING_SERVICE`]. Nothing is read or written yet.
    pub fn new() -> Self {
        let service = std::env::var(KEYRING_SERVICE_VAR)
            .ok()
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| KEYRING_SERVICE.to_owned());
        Self::with_service(service)
    }

    /// The store under another service name.
    pub fn with_service(service: impl Into<String>) -> Self {
        Self {
            service: service.into(),
        }
    }
}

impl Default for KeyringStore {
    fn default() -> Self {
        Self::new()
    }
}

impl KeyStore for KeyringStore {
    fn describe(&self) -> String {
        format!(
            "{} (service {}, account {KEYRING_ACCOUNT})",
            keyring_name(),
            self.service
        )
    }

    fn location(&self) -> Option<&Path> {
        None
    }

    fn store(&mut self, key: &ApiKey, _meta: &KeyMeta) -> Result<StoreReport, StoreError> {
        imp::set(&self.service, key)?;
        tracing::info!(key = %key.hint(), "stored API key in the keyring");
        Ok(StoreReport {
            description: self.describe(),
            path: None,
            mode: None,
        })
    }

    /// Refuses only a missing keychain ([`StoreError::KeyringUnavailable`]): an entry that
    /// cannot be read is replaced by `store`.
    fn preflight(&self) -> Result<(), StoreError> {
        match imp::get(&self.service) {
            Err(e @ StoreError::KeyringUnavailable { .. }) => Err(e),
            _ => Ok(()),
        }
    }

    fn load(&self) -> Result<Option<ApiKey>, StoreError> {
        imp::get(&self.service)
    }

    fn remove(&mut self) -> Result<bool, StoreError> {
        imp::delete(&self.service)
    }
}

#[cfg(all(
    feature = "keyring",
    any(
        target_os = "macos",
        target_os = "windows",
        target_os = "linux",
        target_os = "freebsd",
        target_os = "openbsd"
    )
))]
pub(super) mod imp {
    use super::{keyring_name, KEYRING_ACCOUNT};
    use crate::store::StoreError;
    use openrouter_auth_core::ApiKey;
    use zeroize::Zeroizing;

    fn entry(service: &str) -> Result<keyring::Entry, StoreError> {
        keyring::Entry::new(service, KEYRING_ACCOUNT).map_err(|e| map("open", e))
    }

    /// The first line of an error and its sources, without secrets (keyring errors carry
    /// none: they describe the platform call, never the password).
    fn describe(e: &dyn std::error::Error) -> String {
        let mut s = e.to_string();
        let mut src = e.source();
        while let Some(inner) = src {
            let t = inner.to_string();
            if !s.contains(&t) {
                s.push_str(": ");
                s.push_str(&t);
            }
            src = inner.source();
        }
        s.lines().next().unwrap_or_default().to_owned()
    }

    fn map(action: &'static str, e: keyring::Error) -> StoreError {
        match e {
            keyring::Error::PlatformFailure(inner) | keyring::Error::NoStorageAccess(inner) => {
                StoreError::KeyringUnavailable {
                    reason: unavailable_reason(&describe(inner.as_ref())),
                }
            }
            other => StoreError::Keyring {
                action,
                what: keyring_name(),
                reason: describe(&other),
            },
        }
    }

    fn unavailable_reason(detail: &str) -> String {
        if cfg!(any(target_os = "macos", target_os = "windows")) {
            format!("the {} cannot be used ({detail})", keyring_name())
        } else {
            format!("no secret service is running on this machine ({detail})")
        }
    }

    pub(super) fn set(service: &str, key: &ApiKey) -> Result<(), StoreError> {
        entry(service)?
            .set_password(key.expose_secret())
            .map_err(|e| map("write the key to", e))
    }

    pub(super) fn get(service: &str) -> Result<Option<ApiKey>, StoreError> {
        match entry(service)?.get_password() {
            Ok(k) => {
                let k = Zeroizing::new(k);
                Ok((!k.is_empty()).then(|| ApiKey::new(k.as_str())))
            }
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(map("read the key from", e)),
        }
    }

    /// Another program's entry (goose's secrets), as text.
    pub(in crate::store) fn get_raw(
        service: &str,
        account: &str,
    ) -> Result<Option<Zeroizing<String>>, StoreError> {
        let entry = keyring::Entry::new(service, account).map_err(|e| map("open", e))?;
        match entry.get_password() {
            Ok(text) => Ok(Some(Zeroizing::new(text))),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(e) => Err(map("read the secrets from", e)),
        }
    }

    /// Replaces another program's entry (goose's secrets) with `text`.
    pub(in crate::store) fn set_raw(
        service: &str,
        account: &str,
        text: &str,
    ) -> Result<(), StoreError> {
        keyring::Entry::new(service, account)
            .map_err(|e| map("open", e))?
            .set_password(text)
            .map_err(|e| map("write the secrets to", e))
    }

    pub(super) fn delete(service: &str) -> Result<bool, StoreError> {
        match entry(service)?.delete_credential() {
            Ok(()) => Ok(true),
            Err(keyring::Error::NoEntry) => Ok(false),
            Err(e) => Err(map("remove the key from", e)),
        }
    }
}

#[cfg(not(all(
    feature = "keyring",
    any(
        target_os = "macos",
        target_os = "windows",
        target_os = "linux",
        target_os = "freebsd",
        target_os = "openbsd"
    )
)))]
pub(super) mod imp {
    use crate::store::StoreError;
    use openrouter_auth_core::ApiKey;

    fn unsupported() -> StoreError {
        StoreError::KeyringUnavailable {
            reason: if cfg!(feature = "keyring") {
                "this platform has no supported keychain".into()
            } else {
                "this build has no keyring support (the `keyring` feature is off)".into()
            },
        }
    }

    pub(super) fn set(_service: &str, _key: &ApiKey) -> Result<(), StoreError> {
        Err(unsupported())
    }

    pub(super) fn get(_service: &str) -> Result<Option<ApiKey>, StoreError> {
        Err(unsupported())
    }

    pub(super) fn delete(_service: &str) -> Result<bool, StoreError> {
        Err(unsupported())
    }

    pub(in crate::store) fn get_raw(
        _service: &str,
        _account: &str,
    ) -> Result<Option<zeroize::Zeroizing<String>>, StoreError> {
        Err(unsupported())
    }

    pub(in crate::store) fn set_raw(
        _service: &str,
        _account: &str,
        _text: &str,
    ) -> Result<(), StoreError> {
        Err(unsupported())
    }
}
