//! The `llm` store: the `keys.json` of Simon Willison's `llm`, where `llm keys get openrouter`
//! and the `llm-openrouter` plugin find the key.

use std::path::{Path, PathBuf};

use openrouter_auth_core::ApiKey;
use serde_json::{Map, Value};

use super::fsutil::{read_existing, update, Change, Updated};
use super::json::{parse_object, preflight_json, report, to_pretty, type_name, written, Scrubbed};
use super::{KeyMeta, KeyStore, Replace, StoreError, StoreReport};

/// The name `llm-openrouter` looks the key up under (`llm keys set openrouter`).
pub const LLM_KEY_NAME: &str = "openrouter";

/// The variable that moves llm's user directory (llm's `user_dir()`), read by
/// [`crate::StoreEnv::from_process`].
pub const LLM_USER_PATH_VAR: &str = "LLM_USER_PATH";

/// The note llm puts first in a `keys.json` it creates (`llm keys set`); written the same
/// way when this store creates the file.
const NOTE: (&str, &str) = (
    "// Note",
    "This file stores secret API credentials. Do not share!",
);

/// llm's `keys.json` (the `llm` store spec): a JSON object of key names to key strings, e.g.
///
/// ```json
/// {
///   "// Note": "This file stores secret API credentials. Do not share!",
///   "openai": "sk-…",
///   "openrouter": "sk-or-v1-…"
/// }
/// ```
///
/// `store` sets `"openrouter"` (in place, or appended) and keeps every other key and the note,
/// in order; the file is written as `llm keys set` writes it (2-space indent, a final newline),
/// mode 0600. A new file starts with llm's note. `load` reads `"openrouter"` (a missing, null
/// or empty value is no key); `remove` deletes only that name and keeps the file. Location:
/// `$LLM_USER_PATH/keys.json`, else `keys.json` in click's application directory
/// `io.datasette.llm` (`~/.config/io.datasette.llm` on Linux, `~/Library/Application
/// Support/io.datasette.llm` on macOS, `%APPDATA%\io.datasette.llm` on Windows); `llm keys
/// path` prints it. Errors: see [`KeyStore`].
#[derive(Clone, Debug)]
pub struct LlmStore {
    path: PathBuf,
}

impl LlmStore {
    /// A store at `path` (normally `<llm user dir>/keys.json`). Nothing is read or created yet.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }
}

impl KeyStore for LlmStore {
    fn describe(&self) -> String {
        format!("llm keys file {}", self.path.display())
    }

    fn location(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn preflight(&self) -> Result<(), StoreError> {
        // `store` replaces the `openrouter` value whatever it holds.
        preflight_json(&self.path).map(drop)
    }

    fn store(&mut self, key: &ApiKey, meta: &KeyMeta) -> Result<StoreReport, StoreError> {
        self.store_replacing(key, meta, &Replace::Any)
    }

    fn store_replacing(
        &mut self,
        key: &ApiKey,
        _meta: &KeyMeta,
        replace: &Replace,
    ) -> Result<StoreReport, StoreError> {
        let this = &*self;
        let updated = update(&this.path, |old| {
            let mut doc = match old {
                Some(bytes) => parse_object(&this.path, bytes)?,
                None => Scrubbed(Map::from_iter([(
                    NOTE.0.to_owned(),
                    Value::String(NOTE.1.to_owned()),
                )])),
            };
            let found = llm_key(&this.path, &doc.0).unwrap_or(None);
            replace.check(|| this.describe(), found.as_ref(), key)?;
            let value = Value::String(key.expose_secret().to_owned());
            if let Some(previous) = doc.0.insert(LLM_KEY_NAME.into(), value) {
                drop(Scrubbed(Map::from_iter([(String::new(), previous)])));
            }
            Ok(Change::Write(to_pretty(&doc.0, true)))
        })?;
        tracing::info!(path = %self.path.display(), key = %key.hint(), "stored API key for llm");
        Ok(report(self, &self.path, written(updated)))
    }

    fn load(&self) -> Result<Option<ApiKey>, StoreError> {
        let Some(bytes) = read_existing(&self.path)? else {
            return Ok(None);
        };
        let doc = parse_object(&self.path, &bytes)?;
        llm_key(&self.path, &doc.0)
    }

    fn remove(&mut self) -> Result<bool, StoreError> {
        let updated = update(&self.path, |old| {
            let Some(bytes) = old else {
                return Ok(Change::Keep);
            };
            let mut doc = parse_object(&self.path, bytes)?;
            let Some(previous) = doc.0.shift_remove(LLM_KEY_NAME) else {
                return Ok(Change::Keep);
            };
            drop(Scrubbed(Map::from_iter([(String::new(), previous)])));
            Ok(Change::Write(to_pretty(&doc.0, true)))
        })?;
        Ok(!matches!(updated, Updated::Kept))
    }
}

/// The key in an llm `keys.json` document (see [`KeyStore::load`]).
fn llm_key(path: &Path, doc: &Map<String, Value>) -> Result<Option<ApiKey>, StoreError> {
    match doc.get(LLM_KEY_NAME) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(k)) if k.is_empty() => Ok(None),
        Some(Value::String(k)) => Ok(Some(ApiKey::new(k.as_str()))),
        Some(other) => Err(StoreError::Malformed {
            path: path.to_path_buf(),
            reason: format!("`{LLM_KEY_NAME}` is a {}, not a string", type_name(other)),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{KEY, KEY2};
    use super::*;
    use std::fs;
    use tempfile::TempDir;

    /// A keys.json as `llm keys set` writes it (`json.dumps(…, indent=2) + "\n"`).
    const LLM_KEYS: &str = "{\n  \"// Note\": \"This file stores secret API credentials. Do not share!\",\n  \"openai\": \"sk-openai\",\n  \"openrouter\": \"sk-or-v1-old\",\n  \"gemini\": \"g\"\n}\n";

    #[test]
    fn replaces_only_its_key_byte_exact_and_removes_only_it() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("keys.json");
        fs::write(&path, LLM_KEYS).unwrap();
        let mut s = LlmStore::new(&path);
        assert_eq!(s.load().unwrap().unwrap().expose_secret(), "sk-or-v1-old");
        s.preflight().unwrap();
        s.store(&ApiKey::new(KEY), &KeyMeta::default()).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            LLM_KEYS.replace("sk-or-v1-old", KEY)
        );
        assert!(s.remove().unwrap());
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            LLM_KEYS.replace("  \"openrouter\": \"sk-or-v1-old\",\n", "")
        );
        assert!(s.load().unwrap().is_none());
        assert!(!s.remove().unwrap());
    }

    #[test]
    fn a_new_file_starts_with_llms_note_and_is_private() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("io.datasette.llm/keys.json");
        let mut s = LlmStore::new(&path);
        let report = s.store(&ApiKey::new(KEY), &KeyMeta::default()).unwrap();
        #[cfg(unix)]
        assert_eq!(report.mode, Some(0o600));
        assert_eq!(report.path.as_deref(), Some(path.as_path()));
        let v: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"// Note": NOTE.1, "openrouter": KEY}),
            "{v}"
        );
        s.store(&ApiKey::new(KEY2), &KeyMeta::default()).unwrap();
        assert_eq!(s.load().unwrap().unwrap().expose_secret(), KEY2);
    }

    #[test]
    fn a_file_that_does_not_parse_is_never_overwritten() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("keys.json");
        for content in [&b"{\"openai\": \"sk-x\","[..], b"[\"sk-x\"]"] {
            fs::write(&path, content).unwrap();
            let mut s = LlmStore::new(&path);
            assert!(s.preflight().is_err());
            let msg = s
                .store(&ApiKey::new(KEY), &KeyMeta::default())
                .unwrap_err()
                .to_string();
            assert!(msg.contains("left untouched"), "{msg}");
            assert!(!msg.contains("sk-x") && !msg.contains(KEY), "{msg}");
            assert!(s.remove().is_err());
            assert_eq!(fs::read(&path).unwrap(), content);
        }
    }

    #[test]
    fn a_key_that_is_not_a_string_is_malformed() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("keys.json");
        fs::write(&path, r#"{"openrouter": {"k": "v"}}"#).unwrap();
        let msg = LlmStore::new(&path).load().unwrap_err().to_string();
        assert!(msg.contains("malformed") && msg.contains("object"), "{msg}");
    }
}
