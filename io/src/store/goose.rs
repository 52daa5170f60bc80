//! The `goose` store: block's goose keeps every secret in one map, either as JSON in one keyring
//! entry or, when its keyring is off or missing, in `secrets.yaml` in its config directory.
//! This store sets `OPENROUTER_API_KEY` in that map and never touches the other secrets.

use std::path::{Path, PathBuf};

use openrouter_auth_core::ApiKey;
use serde_json::{Map, Value};
use zeroize::Zeroizing;

use super::fsutil::{preflight_write, read_existing, update, Change, Updated};
use super::json::{parse_object, type_name, Scrubbed};
use super::keyring::imp;
use super::{KeyMeta, KeyStore, Replace, StoreError, StoreReport};

/// The secret's name in goose's map (goose's OpenRouter provider reads it).
pub const GOOSE_KEY_NAME: &str = "OPENROUTER_API_KEY";
/// goose's keyring service.
pub const GOOSE_KEYRING_SERVICE: &str = "goose";
/// goose's keyring account: one entry holds the JSON map of all secrets.
pub const GOOSE_KEYRING_ACCOUNT: &str = "secrets";
/// Set (to anything) in the environment, goose keeps secrets in `secrets.yaml` instead of the
/// keyring; `GOOSE_DISABLE_KEYRING: true` in its `config.yaml` does the same.
pub const GOOSE_DISABLE_KEYRING_VAR: &str = "GOOSE_DISABLE_KEYRING";
/// Moves goose's directories: the config directory becomes `$GOOSE_PATH_ROOT/config`.
pub const GOOSE_PATH_ROOT_VAR: &str = "GOOSE_PATH_ROOT";

/// goose's secret storage (the `goose` store spec), chosen the way goose chooses it:
///
/// * `GOOSE_DISABLE_KEYRING` set in the environment (given to [`GooseStore::new`]) or true
///   in `<config dir>/config.yaml`: the file `<config dir>/secrets.yaml`, a YAML map
///   (`OPENROUTER_API_KEY: sk-or-v1-…`), written as goose writes it (serde_yaml), mode 0600;
/// * otherwise the keyring entry service `goose`, account `secrets`, holding the whole map as
///   JSON; when that entry does not exist yet, goose reads the file, so the new entry starts
///   from the file's secrets; when there is no keychain (servers, containers), goose falls back
///   to the file, and so does this store.
///
/// `store` sets `OPENROUTER_API_KEY` and keeps every other secret (and their order, in the
/// file); `load` reads it; `remove` deletes only it. A file or entry that does not parse as a
/// map is never overwritten ([`StoreError::Unparseable`] / [`StoreError::NotAnObject`]). The
/// config directory is `$GOOSE_PATH_ROOT/config`, else goose's platform directory
/// (`~/.config/goose` on Linux). Comments in `secrets.yaml` are not kept (goose rewrites the
/// file without them too). Errors: see [`KeyStore`].
#[derive(Clone, Debug)]
pub struct GooseStore {
    config_dir: PathBuf,
    secrets_file: PathBuf,
    keyring_disabled_by_env: bool,
}

/// Where goose's map lives for one operation.
enum Backend {
    File,
    Keyring,
}

impl GooseStore {
    /// The store for goose's config directory `config_dir`; `keyring_disabled_by_env` is
    /// whether `GOOSE_DISABLE_KEYRING` is set. Nothing is read yet.
    pub fn new(config_dir: impl Into<PathBuf>, keyring_disabled_by_env: bool) -> Self {
        let config_dir = config_dir.into();
        Self {
            secrets_file: config_dir.join("secrets.yaml"),
            config_dir,
            keyring_disabled_by_env,
        }
    }

    /// goose's own rule: the environment variable, else `GOOSE_DISABLE_KEYRING` in
    /// `config.yaml` (true, "true" or "1"); an unreadable config counts as "not disabled".
    fn keyring_disabled(&self) -> bool {
        if self.keyring_disabled_by_env || !super::KEYRING_SUPPORTED {
            return true;
        }
        let Ok(text) = std::fs::read_to_string(self.config_dir.join("config.yaml")) else {
            return false;
        };
        match serde_yaml::from_str::<serde_yaml::Value>(&text) {
            Ok(doc) => match doc.get(GOOSE_DISABLE_KEYRING_VAR) {
                Some(serde_yaml::Value::Bool(b)) => *b,
                Some(serde_yaml::Value::String(s)) => s == "true" || s == "1",
                _ => false,
            },
            Err(_) => false,
        }
    }

    /// The keyring's map (`None`: no entry), or `Err(None)` when there is no keychain and the
    /// file is to be used.
    fn keyring_map(&self) -> Result<Option<Scrubbed>, Option<StoreError>> {
        match imp::get_raw(GOOSE_KEYRING_SERVICE, GOOSE_KEYRING_ACCOUNT) {
            Ok(Some(text)) => parse_object(&self.keyring_path(), text.as_bytes())
                .map(Some)
                .map_err(Some),
            Ok(None) => Ok(None),
            Err(StoreError::KeyringUnavailable { reason }) => {
                tracing::debug!(%reason, "no keychain: goose uses its secrets file");
                Err(None)
            }
            Err(e) => Err(Some(e)),
        }
    }

    /// A stand-in "path" naming the keyring entry in error messages.
    fn keyring_path(&self) -> PathBuf {
        PathBuf::from(format!(
            "the goose keyring entry (service {GOOSE_KEYRING_SERVICE}, account {GOOSE_KEYRING_ACCOUNT})"
        ))
    }

    /// Picks the backend and reads the map from it (`None`: nothing stored yet). For writes,
    /// the file is read with the symlink check.
    fn read(&self, for_update: bool) -> Result<(Backend, Option<Scrubbed>), StoreError> {
        if !self.keyring_disabled() {
            match self.keyring_map() {
                Ok(Some(map)) => return Ok((Backend::Keyring, Some(map))),
                // goose reads the file when the entry does not exist, and writes the keyring.
                Ok(None) => return Ok((Backend::Keyring, self.read_file(false)?)),
                Err(Some(e)) => return Err(e),
                Err(None) => {}
            }
        }
        Ok((Backend::File, self.read_file(for_update)?))
    }

    fn read_file(&self, _for_update: bool) -> Result<Option<Scrubbed>, StoreError> {
        read_existing(&self.secrets_file)?
            .map(|b| parse_yaml_map(&self.secrets_file, &b))
            .transpose()
    }

    /// Applies `edit` to the map in `backend` and writes it back. The file goes through the
    /// stores' locked read-merge-write ([`update`]), so a secret goose writes meanwhile is
    /// merged, never dropped; `edit` returns `false` to leave it unchanged. Returns whether
    /// it wrote, and the file's mode.
    fn edit(
        &self,
        backend: &Backend,
        doc: Option<Scrubbed>,
        mut edit: impl FnMut(&mut Scrubbed) -> Result<bool, StoreError>,
    ) -> Result<(bool, Option<u32>), StoreError> {
        match backend {
            Backend::File => {
                let updated = update(&self.secrets_file, |old| {
                    let mut doc = match old {
                        Some(bytes) => parse_yaml_map(&self.secrets_file, bytes)?,
                        None => Scrubbed(Map::new()),
                    };
                    if !edit(&mut doc)? {
                        return Ok(Change::Keep);
                    }
                    let text = to_yaml(&self.secrets_file, &doc)?;
                    Ok(Change::Write(Zeroizing::new(text.as_bytes().to_vec())))
                })?;
                Ok(match updated {
                    Updated::Wrote(mode) => (true, mode),
                    Updated::Deleted | Updated::Kept => (false, None),
                })
            }
            Backend::Keyring => {
                let mut doc = doc.unwrap_or_else(|| Scrubbed(Map::new()));
                if !edit(&mut doc)? {
                    return Ok((false, None));
                }
                let text = Zeroizing::new(
                    serde_json::to_string(&doc.0).expect("a JSON map always serializes"),
                );
                imp::set_raw(GOOSE_KEYRING_SERVICE, GOOSE_KEYRING_ACCOUNT, &text)?;
                Ok((true, None))
            }
        }
    }

    fn describe_backend(&self, backend: &Backend) -> String {
        match backend {
            Backend::File => format!("goose secrets file {}", self.secrets_file.display()),
            Backend::Keyring => format!(
                "goose secrets in the {} (service {GOOSE_KEYRING_SERVICE}, account {GOOSE_KEYRING_ACCOUNT})",
                super::keyring_name()
            ),
        }
    }
}

/// Parses goose's `secrets.yaml`: a YAML map (an empty file is an empty map). Errors carry
/// the line and column only, never contents.
fn parse_yaml_map(path: &Path, bytes: &[u8]) -> Result<Scrubbed, StoreError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Scrubbed(Map::new()));
    }
    match serde_yaml::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(Scrubbed(map)),
        Ok(mut other) => {
            let found = type_name(&other);
            drop(Scrubbed(Map::from_iter([(String::new(), other.take())])));
            Err(StoreError::NotAnObject {
                path: path.to_path_buf(),
                entry: None,
                found,
            })
        }
        Err(e) => Err(StoreError::Unparseable {
            path: path.to_path_buf(),
            reason: match e.location() {
                Some(at) => format!(
                    "not a YAML map of secrets: error at line {}, column {}",
                    at.line(),
                    at.column()
                ),
                None => "not a YAML map of secrets".to_owned(),
            },
        }),
    }
}

fn to_yaml(path: &Path, doc: &Scrubbed) -> Result<Zeroizing<String>, StoreError> {
    serde_yaml::to_string(&doc.0)
        .map(Zeroizing::new)
        .map_err(|_| StoreError::Malformed {
            path: path.to_path_buf(),
            reason: "a secret cannot be written back as YAML".to_owned(),
        })
}

impl KeyStore for GooseStore {
    /// Names the file; whether the keyring is used instead is only known when it is asked.
    fn describe(&self) -> String {
        if self.keyring_disabled() {
            self.describe_backend(&Backend::File)
        } else {
            format!(
                "goose secrets (the {} entry {GOOSE_KEYRING_SERVICE}/{GOOSE_KEYRING_ACCOUNT}, or {} without a keychain)",
                super::keyring_name(),
                self.secrets_file.display()
            )
        }
    }

    fn location(&self) -> Option<&Path> {
        Some(&self.secrets_file)
    }

    fn preflight(&self) -> Result<(), StoreError> {
        let (backend, _) = self.read(true)?;
        if let Backend::File = backend {
            preflight_write(&self.secrets_file)?;
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
        let (backend, doc) = self.read(true)?;
        let (_, mode) = self.edit(&backend, doc, |doc| {
            let found = match doc.0.get(GOOSE_KEY_NAME) {
                Some(Value::String(k)) if !k.is_empty() => Some(ApiKey::new(k.as_str())),
                _ => None,
            };
            replace.check(|| self.describe_backend(&backend), found.as_ref(), key)?;
            let value = Value::String(key.expose_secret().to_owned());
            if let Some(previous) = doc.0.insert(GOOSE_KEY_NAME.into(), value) {
                drop(Scrubbed(Map::from_iter([(String::new(), previous)])));
            }
            Ok(true)
        })?;
        tracing::info!(key = %key.hint(), "stored API key for goose");
        Ok(StoreReport {
            description: self.describe_backend(&backend),
            path: matches!(backend, Backend::File).then(|| self.secrets_file.clone()),
            mode,
        })
    }

    fn load(&self) -> Result<Option<ApiKey>, StoreError> {
        let (backend, Some(doc)) = self.read(false)? else {
            return Ok(None);
        };
        match doc.0.get(GOOSE_KEY_NAME) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(k)) if k.is_empty() => Ok(None),
            Some(Value::String(k)) => Ok(Some(ApiKey::new(k.as_str()))),
            Some(other) => Err(StoreError::Malformed {
                path: match backend {
                    Backend::File => self.secrets_file.clone(),
                    Backend::Keyring => self.keyring_path(),
                },
                reason: format!("`{GOOSE_KEY_NAME}` is a {}, not a string", type_name(other)),
            }),
        }
    }

    fn remove(&mut self) -> Result<bool, StoreError> {
        let (backend, doc @ Some(_)) = self.read(true)? else {
            return Ok(false);
        };
        let (removed, _) = self.edit(&backend, doc, |doc| {
            let Some(previous) = doc.0.shift_remove(GOOSE_KEY_NAME) else {
                return Ok(false);
            };
            drop(Scrubbed(Map::from_iter([(String::new(), previous)])));
            Ok(true)
        })?;
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{KEY, KEY2};
    use super::*;
    use std::fs;
    use tempfile::TempDir;

    /// A secrets.yaml as goose writes it (`serde_yaml::to_string` of its map).
    const GOOSE_SECRETS: &str = "ANTHROPIC_API_KEY: sk-ant-1\nGOOGLE_API_KEY: g-2\n";

    fn file_store(dir: &TempDir) -> GooseStore {
        GooseStore::new(dir.path().join("goose"), true)
    }

    #[test]
    fn sets_its_secret_and_keeps_the_others() {
        let dir = TempDir::new().unwrap();
        let mut s = file_store(&dir);
        let path = dir.path().join("goose/secrets.yaml");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, GOOSE_SECRETS).unwrap();
        assert!(s.load().unwrap().is_none());
        s.preflight().unwrap();
        let report = s.store(&ApiKey::new(KEY), &KeyMeta::default()).unwrap();
        assert_eq!(report.path.as_deref(), Some(path.as_path()));
        #[cfg(unix)]
        assert_eq!(report.mode, Some(0o600));
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("{GOOSE_SECRETS}OPENROUTER_API_KEY: {KEY}\n")
        );
        s.store(&ApiKey::new(KEY2), &KeyMeta::default()).unwrap();
        assert_eq!(s.load().unwrap().unwrap().expose_secret(), KEY2);
        assert!(s.remove().unwrap());
        assert_eq!(fs::read_to_string(&path).unwrap(), GOOSE_SECRETS);
        assert!(!s.remove().unwrap());
    }

    #[test]
    fn a_file_that_is_not_a_map_is_never_overwritten() {
        let dir = TempDir::new().unwrap();
        let mut s = file_store(&dir);
        let path = dir.path().join("goose/secrets.yaml");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        for content in ["ANTHROPIC_API_KEY: sk-ant-1\n  bad: [\n", "- sk-ant-1\n"] {
            fs::write(&path, content).unwrap();
            assert!(s.preflight().is_err());
            let msg = s
                .store(&ApiKey::new(KEY), &KeyMeta::default())
                .unwrap_err()
                .to_string();
            assert!(msg.contains("left untouched"), "{msg}");
            assert!(!msg.contains("sk-ant-1"), "{msg}");
            assert!(s.remove().is_err());
            assert_eq!(fs::read_to_string(&path).unwrap(), content);
        }
    }

    #[test]
    fn config_yaml_can_turn_the_keyring_off() {
        let dir = TempDir::new().unwrap();
        let config = dir.path().join("goose");
        fs::create_dir_all(&config).unwrap();
        fs::write(config.join("config.yaml"), "GOOSE_DISABLE_KEYRING: true\n").unwrap();
        let s = GooseStore::new(&config, false);
        assert!(s.keyring_disabled());
        assert!(
            s.describe().starts_with("goose secrets file "),
            "{}",
            s.describe()
        );
        fs::write(config.join("config.yaml"), "GOOSE_MODE: auto\n").unwrap();
        assert_eq!(s.keyring_disabled(), !super::super::KEYRING_SUPPORTED);
    }
}
