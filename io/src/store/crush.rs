//! The `crush` store: charmbracelet crush's data configuration `crush.json`, where crush itself
//! saves a provider's API key when you type one in.

use std::path::{Path, PathBuf};

use openrouter_auth_core::ApiKey;
use serde_json::{Map, Value};

use super::fsutil::{read_existing, update, Change, Updated};
use super::json::{parse_object, preflight_json, report, to_pretty, type_name, written, Scrubbed};
use super::{KeyMeta, KeyStore, Replace, StoreError, StoreReport};

/// The variable that moves crush's data directory (the file is `$CRUSH_GLOBAL_DATA/crush.json`),
/// read by [`crate::StoreEnv::from_process`].
pub const CRUSH_GLOBAL_DATA_VAR: &str = "CRUSH_GLOBAL_DATA";

const PROVIDERS: &str = "providers";
const ENTRY: &str = "providers.openrouter";
const ID: &str = "openrouter";
const FIELD: &str = "api_key";

/// crush's data configuration (the `crush` store spec): sets `providers.openrouter.api_key`, as
/// crush does when it saves a key you enter (`SetProviderAPIKey`), and keeps the rest of the
/// file (other providers, the openrouter entry's other fields such as `base_url` or `models`,
/// `models`, `options`…) in order:
///
/// ```json
/// {
///   "providers": {
///     "openrouter": {
///       "api_key": "sk-or-v1-…"
///     }
///   }
/// }
/// ```
///
/// Nothing else is needed: `openrouter` is one of crush's known providers, so the key is all
/// crush needs to offer its models. Written pretty-printed (2-space indent, a final newline
/// only if the file had one), mode 0600. `load` reads the key; a value starting with `$` is
/// one of crush's environment references (`"$OPENROUTER_API_KEY"`), not a key, and counts as
/// none. `remove` deletes only `api_key` (and the `openrouter` entry if nothing else is in it).
///
/// Location: `$CRUSH_GLOBAL_DATA/crush.json`, else `$XDG_DATA_HOME/crush/crush.json`, else
/// `~/.local/share/crush/crush.json`. crush merges it over its global configuration
/// (`~/.config/crush/crush.json`), which this store never writes. Errors: see [`KeyStore`];
/// a `providers` or `providers.openrouter` that is there but not an object is
/// [`StoreError::NotAnObject`] and the file is left untouched.
#[derive(Clone, Debug)]
pub struct CrushStore {
    path: PathBuf,
}

impl CrushStore {
    /// A store at `path` (normally `~/.local/share/crush/crush.json`). Nothing is read yet.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }
}

/// `doc[name]` as an object, created when absent or null; anything else is refused.
fn object_entry<'a>(
    path: &Path,
    doc: &'a mut Map<String, Value>,
    name: &str,
    entry: &'static str,
) -> Result<&'a mut Map<String, Value>, StoreError> {
    let value = doc.entry(name).or_insert(Value::Null);
    if value.is_null() {
        *value = Value::Object(Map::new());
    }
    match value {
        Value::Object(obj) => Ok(obj),
        other => Err(StoreError::NotAnObject {
            path: path.to_path_buf(),
            entry: Some(entry),
            found: type_name(other),
        }),
    }
}

/// The `providers.openrouter` object, created when missing.
fn openrouter_entry<'a>(
    path: &Path,
    doc: &'a mut Map<String, Value>,
) -> Result<&'a mut Map<String, Value>, StoreError> {
    let providers = object_entry(path, doc, PROVIDERS, PROVIDERS)?;
    object_entry(path, providers, ID, ENTRY)
}

impl KeyStore for CrushStore {
    fn describe(&self) -> String {
        format!("crush data config {}", self.path.display())
    }

    fn location(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn preflight(&self) -> Result<(), StoreError> {
        if let Some(mut doc) = preflight_json(&self.path)? {
            openrouter_entry(&self.path, &mut doc.0)?;
        }
        Ok(())
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
                None => Scrubbed(Map::new()),
            };
            let found = crush_key(&this.path, &doc.0).unwrap_or(None);
            replace.check(|| this.describe(), found.as_ref(), key)?;
            let entry = openrouter_entry(&this.path, &mut doc.0)?;
            let value = Value::String(key.expose_secret().to_owned());
            if let Some(previous) = entry.insert(FIELD.into(), value) {
                drop(Scrubbed(Map::from_iter([(String::new(), previous)])));
            }
            let newline = old.is_none_or(|b| b.ends_with(b"\n"));
            Ok(Change::Write(to_pretty(&doc.0, newline)))
        })?;
        tracing::info!(path = %self.path.display(), key = %key.hint(), "stored API key for crush");
        Ok(report(self, &self.path, written(updated)))
    }

    fn load(&self) -> Result<Option<ApiKey>, StoreError> {
        let Some(bytes) = read_existing(&self.path)? else {
            return Ok(None);
        };
        let doc = parse_object(&self.path, &bytes)?;
        crush_key(&self.path, &doc.0)
    }

    fn remove(&mut self) -> Result<bool, StoreError> {
        let updated = update(&self.path, |old| {
            let Some(bytes) = old else {
                return Ok(Change::Keep);
            };
            let mut doc = parse_object(&self.path, bytes)?;
            let Some(Value::Object(providers)) = doc.0.get_mut(PROVIDERS) else {
                return Ok(Change::Keep);
            };
            let Some(Value::Object(entry)) = providers.get_mut(ID) else {
                return Ok(Change::Keep);
            };
            let Some(previous) = entry.shift_remove(FIELD) else {
                return Ok(Change::Keep);
            };
            drop(Scrubbed(Map::from_iter([(String::new(), previous)])));
            if entry.is_empty() {
                providers.shift_remove(ID);
            }
            Ok(Change::Write(to_pretty(&doc.0, bytes.ends_with(b"\n"))))
        })?;
        Ok(!matches!(updated, Updated::Kept))
    }
}

/// The key in a crush document (see [`KeyStore::load`]): `providers.openrouter.api_key`, unless
/// it is empty or a `$VARIABLE` reference crush resolves from the environment.
fn crush_key(path: &Path, doc: &Map<String, Value>) -> Result<Option<ApiKey>, StoreError> {
    let entry = match doc.get(PROVIDERS) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(providers)) => providers.get(ID),
        Some(other) => {
            return Err(StoreError::NotAnObject {
                path: path.to_path_buf(),
                entry: Some(PROVIDERS),
                found: type_name(other),
            })
        }
    };
    let value = match entry {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::Object(obj)) => obj.get(FIELD),
        Some(other) => {
            return Err(StoreError::NotAnObject {
                path: path.to_path_buf(),
                entry: Some(ENTRY),
                found: type_name(other),
            })
        }
    };
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(k)) if k.is_empty() || k.starts_with('$') => Ok(None),
        Some(Value::String(k)) => Ok(Some(ApiKey::new(k.as_str()))),
        Some(other) => Err(StoreError::Malformed {
            path: path.to_path_buf(),
            reason: format!("`{ENTRY}.{FIELD}` is a {}, not a string", type_name(other)),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::KEY;
    use super::*;
    use std::fs;
    use tempfile::TempDir;

    const CRUSH_DATA: &str = r#"{
  "$schema": "https://charm.land/crush.json",
  "models": {
    "large": {
      "model": "claude-sonnet-4",
      "provider": "anthropic"
    }
  },
  "providers": {
    "anthropic": {
      "api_key": "sk-ant-1"
    },
    "openrouter": {
      "api_key": "sk-or-v1-old",
      "base_url": "https://openrouter.ai/api/v1"
    }
  },
  "options": {
    "debug": false
  }
}"#;

    #[test]
    fn sets_only_the_api_key_and_keeps_everything_else_byte_exact() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("crush.json");
        fs::write(&path, CRUSH_DATA).unwrap();
        let mut s = CrushStore::new(&path);
        assert_eq!(s.load().unwrap().unwrap().expose_secret(), "sk-or-v1-old");
        s.preflight().unwrap();
        s.store(&ApiKey::new(KEY), &KeyMeta::default()).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            CRUSH_DATA.replace("sk-or-v1-old", KEY)
        );
        assert!(s.remove().unwrap());
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            CRUSH_DATA.replace("      \"api_key\": \"sk-or-v1-old\",\n", "")
        );
        assert!(s.load().unwrap().is_none());
        assert!(!s.remove().unwrap());
    }

    #[test]
    fn a_new_file_holds_the_entry_and_remove_drops_an_empty_entry() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("share/crush/crush.json");
        let mut s = CrushStore::new(&path);
        let report = s.store(&ApiKey::new(KEY), &KeyMeta::default()).unwrap();
        #[cfg(unix)]
        assert_eq!(report.mode, Some(0o600));
        let v: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            v,
            serde_json::json!({"providers": {"openrouter": {"api_key": KEY}}})
        );
        assert!(s.remove().unwrap());
        let v: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(v, serde_json::json!({"providers": {}}));
    }

    #[test]
    fn an_environment_reference_is_not_a_key() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("crush.json");
        fs::write(
            &path,
            r#"{"providers": {"openrouter": {"api_key": "$OPENROUTER_API_KEY"}}}"#,
        )
        .unwrap();
        assert!(CrushStore::new(&path).load().unwrap().is_none());
    }

    #[test]
    fn what_is_not_an_object_is_refused_untouched() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("crush.json");
        for (content, entry) in [
            (r#"{"providers": ["sk-x"]}"#, "entry `providers`"),
            (
                r#"{"providers": {"openrouter": "sk-x"}}"#,
                "entry `providers.openrouter`",
            ),
            (r#"{"providers": {"openrouter": {"#, "not valid JSON"),
        ] {
            fs::write(&path, content).unwrap();
            let mut s = CrushStore::new(&path);
            let pre = s.preflight().unwrap_err().to_string();
            assert!(pre.contains(entry), "{pre}");
            let msg = s
                .store(&ApiKey::new(KEY), &KeyMeta::default())
                .unwrap_err()
                .to_string();
            assert!(
                msg.contains(entry) && msg.contains("left untouched"),
                "{msg}"
            );
            assert!(!msg.contains("sk-x"), "{msg}");
            assert_eq!(fs::read_to_string(&path).unwrap(), content);
        }
    }
}
