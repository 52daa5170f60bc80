//! The `stdout` store: print the key for the caller to capture.

use std::fmt;
use std::io::Write;
use std::path::Path;

use openrouter_auth_core::ApiKey;
use zeroize::Zeroizing;

use super::{KeyMeta, KeyStore, StoreError, StoreReport};

/// Writes the key followed by a newline, and nothing else, to standard output (or the writer
/// given to [`StdoutStore::with_writer`]). Keeps nothing: `load` gives `Ok(None)`, `remove`
/// gives `Ok(false)`. Errors: [`StoreError::Output`] if the write or flush fails (e.g. a closed
/// pipe).
pub struct StdoutStore {
    out: Box<dyn Write + Send>,
}

impl StdoutStore {
    /// Prints to the process's standard output.
    pub fn new() -> Self {
        Self::with_writer(Box::new(std::io::stdout()))
    }

    /// Prints to `out` instead (tests, embedders).
    pub fn with_writer(out: Box<dyn Write + Send>) -> Self {
        Self { out }
    }
}

impl Default for StdoutStore {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for StdoutStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StdoutStore").finish_non_exhaustive()
    }
}

impl KeyStore for StdoutStore {
    fn describe(&self) -> String {
        "standard output".to_string()
    }

    fn location(&self) -> Option<&Path> {
        None
    }

    fn store(&mut self, key: &ApiKey, _meta: &KeyMeta) -> Result<StoreReport, StoreError> {
        let k = key.expose_secret();
        let mut line = Zeroizing::new(Vec::with_capacity(k.len() + 1));
        line.extend_from_slice(k.as_bytes());
        line.push(b'\n');
        self.out
            .write_all(&line)
            .and_then(|()| self.out.flush())
            .map_err(|source| StoreError::Output { source })?;
        Ok(StoreReport {
            description: self.describe(),
            path: None,
            mode: None,
        })
    }

    fn load(&self) -> Result<Option<ApiKey>, StoreError> {
        Ok(None)
    }

    fn remove(&mut self) -> Result<bool, StoreError> {
        Ok(false)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::KEY;
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);
    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn prints_key_and_newline_only() {
        let buf = Shared::default();
        let mut s = StdoutStore::with_writer(Box::new(buf.clone()));
        let report = s.store(&ApiKey::new(KEY), &KeyMeta::default()).unwrap();
        assert_eq!(*buf.0.lock().unwrap(), format!("{KEY}\n").into_bytes());
        assert_eq!(
            report,
            StoreReport {
                description: "standard output".into(),
                path: None,
                mode: None
            }
        );
        assert!(s.load().unwrap().is_none());
        assert!(!s.remove().unwrap());
        assert_eq!(s.location(), None);
        assert!(!format!("{s:?}").contains(KEY));
    }

    #[test]
    fn write_failure_is_reported_without_key() {
        let mut s = StdoutStore::with_writer(Box::new(Broken));
        let msg = s
            .store(&ApiKey::new(KEY), &KeyMeta::default())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("standard output"), "{msg}");
        assert!(!msg.contains(KEY), "{msg}");
    }
}
