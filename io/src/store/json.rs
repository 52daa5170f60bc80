//! The JSON stores: our own credentials file and opencode's `auth.json`; the JSON helpers
//! here also serve the llm and crush stores.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use openrouter_auth_core::ApiKey;
use serde_json::{Map, Value};
use zeroize::{Zeroize, Zeroizing};

use super::fsutil::{preflight_write, read_existing, update, Change, Updated};
use super::{KeyMeta, KeyStore, Replace, StoreError, StoreReport};

/// The provider id under which both JSON formats keep the OpenRouter entry.
const ENTRY: &str = "openrouter";

/// A parsed JSON document whose strings (some of which are keys) are zeroized on drop.
pub(super) struct Scrubbed(pub(super) Map<String, Value>);

impl Drop for Scrubbed {
    fn drop(&mut self) {
        fn scrub(v: &mut Value) {
            match v {
                Value::String(s) => s.zeroize(),
                Value::Array(a) => a.iter_mut().for_each(scrub),
                Value::Object(o) => o.values_mut().for_each(scrub),
                _ => {}
            }
        }
        self.0.values_mut().for_each(scrub);
    }
}

pub(super) fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Parses `bytes` as a JSON object. An empty (or all-whitespace) file counts as `{}`.
/// The error reason carries the category, line and column only, never file contents.
pub(super) fn parse_object(path: &Path, bytes: &[u8]) -> Result<Scrubbed, StoreError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Scrubbed(Map::new()));
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(Scrubbed(map)),
        Ok(mut other) => {
            let found = type_name(&other);
            // scrub whatever it was before dropping it
            drop(Scrubbed(Map::from_iter([(String::new(), other.take())])));
            Err(StoreError::NotAnObject {
                path: path.to_path_buf(),
                entry: None,
                found,
            })
        }
        Err(e) => {
            use serde_json::error::Category;
            let what = match e.classify() {
                Category::Syntax => "syntax error",
                Category::Eof => "unexpected end of file",
                Category::Data => "unexpected data",
                Category::Io => "read error",
            };
            Err(StoreError::Unparseable {
                path: path.to_path_buf(),
                reason: format!("{what} at line {}, column {}", e.line(), e.column()),
            })
        }
    }
}

/// Pretty JSON with 2-space indent (the layout of `JSON.stringify(x, null, 2)`), into a buffer
/// sized exactly so it never reallocates (reallocation would leave unzeroized copies).
pub(super) fn to_pretty(map: &Map<String, Value>, trailing_newline: bool) -> Zeroizing<Vec<u8>> {
    struct Count(usize);
    impl Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    serde_json::to_writer_pretty(&mut count, map).expect("a JSON map always serializes");
    let mut out = Zeroizing::new(Vec::with_capacity(count.0 + 1));
    serde_json::to_writer_pretty(&mut *out, map).expect("a JSON map always serializes");
    if trailing_newline {
        out.push(b'\n');
    }
    out
}

/// What `store` would refuse in a JSON store, checked before signing in: the file's place
/// ([`preflight_write`]) and its contents (a file that is not a JSON object is never clobbered).
/// Returns the parsed document, if the file exists, for store-specific checks.
pub(super) fn preflight_json(path: &Path) -> Result<Option<Scrubbed>, StoreError> {
    preflight_write(path)?;
    match read_existing(path)? {
        Some(bytes) => parse_object(path, &bytes).map(Some),
        None => Ok(None),
    }
}

/// The document `bytes` hold (`None`: no file, an empty object).
fn parse_or_empty(path: &Path, bytes: Option<&[u8]>) -> Result<Scrubbed, StoreError> {
    match bytes {
        Some(bytes) => parse_object(path, bytes),
        None => Ok(Scrubbed(Map::new())),
    }
}

/// The mode [`update`] reported for a merge that always writes.
pub(super) fn written(updated: Updated) -> Option<u32> {
    match updated {
        Updated::Wrote(mode) => mode,
        Updated::Deleted | Updated::Kept => None,
    }
}

pub(super) fn report(store: &dyn KeyStore, path: &Path, mode: Option<u32>) -> StoreReport {
    StoreReport {
        description: store.describe(),
        path: Some(path.to_path_buf()),
        mode,
    }
}

/// Our own credentials file (the `file` store spec, the `file:PATH` store spec):
///
/// ```json
/// {
///   "openrouter": {
///     "api_key": "sk-or-v1-…",
///     "key_label": "laptop",
///     "user_id": "user_…",
///     "base_url": "https://openrouter.ai/",
///     "stored_at": 1767225600
///   }
/// }
/// ```
///
/// `stored_at` is unix seconds. `key_label`/`user_id`/`base_url` (the OpenRouter that issued
/// the key, where its key page is) are written when known and removed when not (they
/// describe the key being replaced); [`KeyStore::load_meta`] reads them back. Unknown top-level fields and unknown fields inside
/// `"openrouter"` are kept in order. Written pretty-printed with a final newline, mode 0600.
/// `remove` drops the five fields above (and the entry, and then the file, if nothing else is
/// left). Errors: see [`KeyStore`].
#[derive(Clone, Debug)]
pub struct CredentialsFileStore {
    path: PathBuf,
}

impl CredentialsFileStore {
    /// A store at `path`. Nothing is read or created yet.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }
}

const OUR_FIELDS: [&str; 5] = ["api_key", "key_label", "user_id", "base_url", "stored_at"];

/// The `openrouter` object of our credentials file, created when absent or null (`load` reads
/// both as "no key"). Errors: [`StoreError::NotAnObject`] for any other value, which is never
/// overwritten.
fn credentials_entry<'a>(
    path: &Path,
    doc: &'a mut Map<String, Value>,
) -> Result<&'a mut Map<String, Value>, StoreError> {
    let entry = doc.entry(ENTRY).or_insert(Value::Null);
    if entry.is_null() {
        *entry = Value::Object(Map::new());
    }
    match entry {
        Value::Object(obj) => Ok(obj),
        other => Err(StoreError::NotAnObject {
            path: path.to_path_buf(),
            entry: Some(ENTRY),
            found: type_name(other),
        }),
    }
}

impl KeyStore for CredentialsFileStore {
    fn describe(&self) -> String {
        format!("credentials file {}", self.path.display())
    }

    fn location(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn preflight(&self) -> Result<(), StoreError> {
        if let Some(mut doc) = preflight_json(&self.path)? {
            credentials_entry(&self.path, &mut doc.0)?;
        }
        Ok(())
    }

    fn store(&mut self, key: &ApiKey, meta: &KeyMeta) -> Result<StoreReport, StoreError> {
        self.store_replacing(key, meta, &Replace::Any)
    }

    fn store_replacing(
        &mut self,
        key: &ApiKey,
        meta: &KeyMeta,
        replace: &Replace,
    ) -> Result<StoreReport, StoreError> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let this = &*self;
        let updated = update(&this.path, |old| {
            let mut doc = parse_or_empty(&this.path, old)?;
            let found = credentials_key(&this.path, &doc.0).unwrap_or(None);
            replace.check(|| this.describe(), found.as_ref(), key)?;
            let obj = credentials_entry(&this.path, &mut doc.0)?;
            obj.insert(
                "api_key".into(),
                Value::String(key.expose_secret().to_string()),
            );
            let base_url = meta.base_url.as_ref().map(|u| u.to_string());
            for (name, value) in [
                ("key_label", &meta.key_label),
                ("user_id", &meta.user_id),
                ("base_url", &base_url),
            ] {
                match value {
                    Some(v) => {
                        obj.insert(name.into(), Value::String(v.clone()));
                    }
                    None => {
                        obj.shift_remove(name);
                    }
                }
            }
            obj.insert("stored_at".into(), Value::from(now));
            Ok(Change::Write(to_pretty(&doc.0, true)))
        })?;
        tracing::info!(path = %self.path.display(), key = %key.hint(), "stored API key");
        Ok(report(self, &self.path, written(updated)))
    }

    fn load(&self) -> Result<Option<ApiKey>, StoreError> {
        let Some(bytes) = read_existing(&self.path)? else {
            return Ok(None);
        };
        let doc = parse_object(&self.path, &bytes)?;
        credentials_key(&self.path, &doc.0)
    }

    /// The label, user id and base URL stored beside the key; a field that is missing, not
    /// a string, or (the base URL) not a URL is `None`.
    fn load_meta(&self) -> Result<KeyMeta, StoreError> {
        let Some(bytes) = read_existing(&self.path)? else {
            return Ok(KeyMeta::default());
        };
        let doc = parse_object(&self.path, &bytes)?;
        if credentials_key(&self.path, &doc.0)?.is_none() {
            return Ok(KeyMeta::default());
        }
        let Some(Value::Object(obj)) = doc.0.get(ENTRY) else {
            return Ok(KeyMeta::default());
        };
        let text = |name: &str| obj.get(name).and_then(Value::as_str).map(str::to_owned);
        let mut meta = KeyMeta::new(text("key_label"), text("user_id"));
        meta.base_url = text("base_url").and_then(|u| url::Url::parse(&u).ok());
        Ok(meta)
    }

    fn remove(&mut self) -> Result<bool, StoreError> {
        let updated = update(&self.path, |old| {
            let Some(bytes) = old else {
                return Ok(Change::Keep);
            };
            let mut doc = parse_object(&self.path, bytes)?;
            let Some(Value::Object(obj)) = doc.0.get_mut(ENTRY) else {
                return Ok(Change::Keep);
            };
            if !obj.contains_key("api_key") {
                return Ok(Change::Keep);
            }
            for f in OUR_FIELDS {
                if let Some(Value::String(s)) = obj.shift_remove(f).as_mut() {
                    s.zeroize();
                }
            }
            if obj.is_empty() {
                doc.0.shift_remove(ENTRY);
            }
            Ok(if doc.0.is_empty() {
                Change::Delete
            } else {
                Change::Write(to_pretty(&doc.0, true))
            })
        })?;
        Ok(!matches!(updated, Updated::Kept))
    }
}

/// The key in our credentials document (see [`KeyStore::load`]).
fn credentials_key(path: &Path, doc: &Map<String, Value>) -> Result<Option<ApiKey>, StoreError> {
    match doc.get(ENTRY) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(obj)) => match obj.get("api_key") {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(k)) if k.is_empty() => Ok(None),
            Some(Value::String(k)) => Ok(Some(ApiKey::new(k.as_str()))),
            Some(other) => Err(StoreError::Malformed {
                path: path.to_path_buf(),
                reason: format!("`{ENTRY}.api_key` is a {}, not a string", type_name(other)),
            }),
        },
        Some(other) => Err(StoreError::NotAnObject {
            path: path.to_path_buf(),
            entry: Some(ENTRY),
            found: type_name(other),
        }),
    }
}

/// opencode's `auth.json` (the `opencode` store spec): sets
/// `"openrouter": {"type": "api", "key": "sk-or-v1-…"}` (an existing API-key entry keeps its
/// other fields, such as `metadata`: only `key` changes) and keeps every other provider and field
/// untouched and in order, written as opencode writes it (`JSON.stringify(x, null, 2)`: 2-space
/// indent, a final newline only if the file had one). A file opencode wrote itself therefore
/// changes only in the `openrouter` entry. `load` reads `openrouter.key` (`None` for entries
/// of other types, such as `oauth`); `remove` deletes only the `openrouter` entry, leaving `{}`
/// if nothing else is there. Errors: see [`KeyStore`].
#[derive(Clone, Debug)]
pub struct OpencodeStore {
    path: PathBuf,
}

impl OpencodeStore {
    /// A store at `path` (normally `$XDG_DATA_HOME/opencode/auth.json`).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }
}

impl KeyStore for OpencodeStore {
    fn describe(&self) -> String {
        format!("opencode auth file {}", self.path.display())
    }

    fn location(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn preflight(&self) -> Result<(), StoreError> {
        // `store` replaces the `openrouter` entry whatever it holds.
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
            let mut doc = parse_or_empty(&this.path, old)?;
            let found = opencode_key(&this.path, &doc.0).unwrap_or(None);
            replace.check(|| this.describe(), found.as_ref(), key)?;
            let new_key = Value::String(key.expose_secret().to_string());
            match doc.0.get_mut(ENTRY) {
                // An API-key entry keeps the fields we do not know (opencode's `metadata`, a
                // plugin's): only `key` changes, in place; the old key is scrubbed.
                Some(Value::Object(old))
                    if old.get("type").and_then(Value::as_str) == Some("api") =>
                {
                    if let Some(old_key) = old.insert("key".into(), new_key) {
                        drop(Scrubbed(Map::from_iter([(String::new(), old_key)])));
                    }
                }
                _ => {
                    let mut entry = Map::new();
                    entry.insert("type".into(), Value::String("api".into()));
                    entry.insert("key".into(), new_key);
                    // Replaces in place (keeps the entry's position) or appends; the old
                    // entry (another type, e.g. `oauth`) is scrubbed.
                    if let Some(old_entry) = doc.0.insert(ENTRY.into(), Value::Object(entry)) {
                        drop(Scrubbed(Map::from_iter([(String::new(), old_entry)])));
                    }
                }
            }
            let newline = old.is_some_and(|b| b.ends_with(b"\n"));
            Ok(Change::Write(to_pretty(&doc.0, newline)))
        })?;
        tracing::info!(path = %self.path.display(), key = %key.hint(), "stored API key for opencode");
        Ok(report(self, &self.path, written(updated)))
    }

    fn load(&self) -> Result<Option<ApiKey>, StoreError> {
        let Some(bytes) = read_existing(&self.path)? else {
            return Ok(None);
        };
        let doc = parse_object(&self.path, &bytes)?;
        opencode_key(&self.path, &doc.0)
    }

    fn remove(&mut self) -> Result<bool, StoreError> {
        let updated = update(&self.path, |old| {
            let Some(bytes) = old else {
                return Ok(Change::Keep);
            };
            let mut doc = parse_object(&self.path, bytes)?;
            let Some(old_entry) = doc.0.shift_remove(ENTRY) else {
                return Ok(Change::Keep);
            };
            drop(Scrubbed(Map::from_iter([(String::new(), old_entry)])));
            Ok(Change::Write(to_pretty(&doc.0, bytes.ends_with(b"\n"))))
        })?;
        Ok(!matches!(updated, Updated::Kept))
    }
}

/// The key in an opencode document (see [`KeyStore::load`]).
fn opencode_key(path: &Path, doc: &Map<String, Value>) -> Result<Option<ApiKey>, StoreError> {
    let Some(entry) = doc.get(ENTRY) else {
        return Ok(None);
    };
    let Value::Object(obj) = entry else {
        return Err(StoreError::Malformed {
            path: path.to_path_buf(),
            reason: format!("`{ENTRY}` is a {}, not an object", type_name(entry)),
        });
    };
    if obj.get("type").and_then(Value::as_str) != Some("api") {
        return Ok(None);
    }
    match obj.get("key") {
        Some(Value::String(k)) if !k.is_empty() => Ok(Some(ApiKey::new(k.as_str()))),
        None | Some(Value::Null) | Some(Value::String(_)) => Ok(None),
        Some(other) => Err(StoreError::Malformed {
            path: path.to_path_buf(),
            reason: format!("`{ENTRY}.key` is a {}, not a string", type_name(other)),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{KEY, KEY2};
    use super::*;
    use std::fs;
    use tempfile::TempDir;

    /// An auth.json as opencode writes it: `JSON.stringify(x, null, 2)`, no final newline.
    const OPENCODE_AUTH: &str = r#"{
  "anthropic": {
    "type": "oauth",
    "refresh": "rt-abc",
    "access": "at-def",
    "expires": 1767225600000
  },
  "openrouter": {
    "type": "api",
    "key": "sk-or-v1-old"
  },
  "github-copilot": {
    "type": "oauth",
    "refresh": "gho_x",
    "access": "",
    "expires": 0,
    "enterpriseUrl": "ghe.example.com"
  },
  "wellknown-thing": {
    "type": "wellknown",
    "key": "K",
    "token": "T\u001f é",
    "list": [
      1,
      2.5,
      [],
      {},
      null,
      true
    ]
  }
}"#;

    fn parse(bytes: &[u8]) -> Value {
        serde_json::from_slice(bytes).unwrap()
    }

    #[cfg(unix)]
    fn mode(p: &Path) -> u32 {
        use std::os::unix::fs::PermissionsExt;
        fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn opencode_replaces_only_its_entry_byte_exact() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("auth.json");
        fs::write(&path, OPENCODE_AUTH).unwrap();
        let mut s = OpencodeStore::new(&path);
        assert_eq!(s.load().unwrap().unwrap().expose_secret(), "sk-or-v1-old");
        s.store(&ApiKey::new(KEY), &KeyMeta::default()).unwrap();
        let after = fs::read_to_string(&path).unwrap();
        assert_eq!(after, OPENCODE_AUTH.replace("sk-or-v1-old", KEY));
        assert_eq!(s.load().unwrap().unwrap().expose_secret(), KEY);

        // remove: only the openrouter entry goes; the rest is byte-identical to opencode's layout
        assert!(s.remove().unwrap());
        let expected = OPENCODE_AUTH.replace(
            "  \"openrouter\": {\n    \"type\": \"api\",\n    \"key\": \"sk-or-v1-old\"\n  },\n",
            "",
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), expected);
        assert!(s.load().unwrap().is_none());
        assert!(!s.remove().unwrap());
        assert_eq!(fs::read_to_string(&path).unwrap(), expected);
    }

    /// Issue 15, item 7: fields of the openrouter entry this tool does not know (opencode's
    /// `metadata`) are kept when the key is replaced.
    #[test]
    fn opencode_keeps_unknown_fields_of_its_entry() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("auth.json");
        fs::write(
            &path,
            r#"{"openrouter":{"type":"api","key":"sk-or-v1-old","metadata":{"source":"plugin","n":1}},"anthropic":{"type":"api","key":"x"}}"#,
        )
        .unwrap();
        let mut s = OpencodeStore::new(&path);
        s.store(&ApiKey::new("sk-or-v1-new"), &KeyMeta::default())
            .unwrap();
        let v: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["openrouter"]["key"], "sk-or-v1-new");
        assert_eq!(v["openrouter"]["type"], "api");
        assert_eq!(v["openrouter"]["metadata"]["source"], "plugin");
        assert_eq!(v["openrouter"]["metadata"]["n"], 1);
        assert_eq!(v["anthropic"]["key"], "x");
        // An entry of another type (an OAuth sign-in) is replaced whole.
        fs::write(
            &path,
            r#"{"openrouter":{"type":"oauth","refresh":"r","access":"a"}}"#,
        )
        .unwrap();
        s.store(&ApiKey::new("sk-or-v1-new"), &KeyMeta::default())
            .unwrap();
        let v: Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(
            v["openrouter"],
            serde_json::json!({"type": "api", "key": "sk-or-v1-new"})
        );
    }

    #[test]
    fn opencode_appends_entry_and_keeps_other_providers() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("auth.json");
        // compact, with a final newline, not opencode's layout: compare parsed JSON
        let input = r#"{"zeta":{"type":"api","key":"z","extra":{"n":[1,2]}},"alpha":{"type":"oauth","refresh":"r","access":"a","expires":5}}
"#;
        fs::write(&path, input).unwrap();
        let mut s = OpencodeStore::new(&path);
        assert!(s.load().unwrap().is_none());
        s.store(&ApiKey::new(KEY), &KeyMeta::default()).unwrap();
        let bytes = fs::read(&path).unwrap();
        assert!(bytes.ends_with(b"}\n"));
        let after = parse(&bytes);
        let before = parse(input.as_bytes());
        let keys: Vec<_> = after.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["zeta", "alpha", "openrouter"]);
        assert_eq!(after["zeta"], before["zeta"]);
        assert_eq!(after["alpha"], before["alpha"]);
        assert_eq!(
            after["openrouter"],
            serde_json::json!({"type": "api", "key": KEY})
        );
        assert!(s.remove().unwrap());
        assert_eq!(parse(&fs::read(&path).unwrap()), before);
    }

    #[test]
    fn opencode_replaces_oauth_entry_and_ignores_it_on_load() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("auth.json");
        fs::write(
            &path,
            r#"{"openrouter":{"type":"oauth","refresh":"r","access":"a","expires":1}}"#,
        )
        .unwrap();
        let mut s = OpencodeStore::new(&path);
        assert!(s.load().unwrap().is_none());
        s.store(&ApiKey::new(KEY), &KeyMeta::default()).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("{{\n  \"openrouter\": {{\n    \"type\": \"api\",\n    \"key\": \"{KEY}\"\n  }}\n}}")
        );
    }

    #[cfg(unix)]
    #[test]
    fn opencode_new_file_and_dirs_are_private() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("share/opencode/auth.json");
        let report = OpencodeStore::new(&path)
            .store(&ApiKey::new(KEY), &KeyMeta::default())
            .unwrap();
        assert_eq!(report.mode, Some(0o600));
        assert_eq!(report.path.as_deref(), Some(path.as_path()));
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&dir.path().join("share")), 0o700);
        assert_eq!(mode(&dir.path().join("share/opencode")), 0o700);
    }

    #[cfg(unix)]
    #[test]
    fn previously_world_readable_file_becomes_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("auth.json");
        fs::write(&path, "{}").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let report = OpencodeStore::new(&path)
            .store(&ApiKey::new(KEY), &KeyMeta::default())
            .unwrap();
        assert_eq!(report.mode, Some(0o600));
        assert_eq!(mode(&path), 0o600);
        let cpath = dir.path().join("c.json");
        fs::write(&cpath, "{}").unwrap();
        fs::set_permissions(&cpath, fs::Permissions::from_mode(0o644)).unwrap();
        let report = CredentialsFileStore::new(&cpath)
            .store(&ApiKey::new(KEY), &KeyMeta::default())
            .unwrap();
        assert_eq!(report.mode, Some(0o600));
        assert_eq!(mode(&cpath), 0o600);
    }

    #[test]
    fn unparseable_files_are_never_overwritten() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("auth.json");
        let cases: [(&[u8], &str); 5] = [
            (
                b"{\n  \"anthropic\": {\n    \"key\": \"secret\",\n    oops\n}",
                "line 4, column 5",
            ),
            (b"{\"a\": 1", "unexpected end of file"),
            (b"[1, 2]", "JSON array"),
            (b"\"sk-or-v1-stringly\"", "JSON string"),
            (b"\xff\xfe{}", "not valid JSON"),
        ];
        for (content, expect) in cases {
            fs::write(&path, content).unwrap();
            let stores: [Box<dyn KeyStore>; 2] = [
                Box::new(OpencodeStore::new(&path)),
                Box::new(CredentialsFileStore::new(&path)),
            ];
            for mut s in stores {
                let err = s.store(&ApiKey::new(KEY), &KeyMeta::default()).unwrap_err();
                let msg = err.to_string();
                assert!(msg.contains(&path.display().to_string()), "{msg}");
                assert!(msg.contains(expect), "{msg}");
                assert!(msg.contains("left untouched"), "{msg}");
                assert!(!msg.contains(KEY), "{msg}");
                assert!(
                    !msg.contains("secret") && !msg.contains("stringly"),
                    "{msg}"
                );
                assert_eq!(fs::read(&path).unwrap(), content);
                assert!(s.remove().is_err());
                assert!(s.load().is_err());
                assert_eq!(fs::read(&path).unwrap(), content);
            }
        }
    }

    #[test]
    fn empty_file_counts_as_empty_object() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("auth.json");
        fs::write(&path, "").unwrap();
        let mut s = OpencodeStore::new(&path);
        assert!(s.load().unwrap().is_none());
        s.store(&ApiKey::new(KEY), &KeyMeta::default()).unwrap();
        assert_eq!(s.load().unwrap().unwrap().expose_secret(), KEY);
    }

    #[test]
    fn credentials_file_format_and_unknown_fields_kept() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("cfg/openrouter-auth/credentials.json");
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(
            &path,
            r#"{"version": 1, "openrouter": {"api_key": "old", "key_label": "old-label", "user_id": "u0", "note": "mine"}, "other": [1]}"#,
        )
        .unwrap();
        let mut s = CredentialsFileStore::new(&path);
        assert_eq!(s.load().unwrap().unwrap().expose_secret(), "old");
        let meta = KeyMeta::new(Some("laptop".into()), None);
        let report = s.store(&ApiKey::new(KEY), &meta).unwrap();
        assert!(report.description.starts_with("credentials file "));
        let text = fs::read_to_string(&path).unwrap();
        assert!(text.ends_with("}\n"));
        assert!(
            text.contains("\n  \"openrouter\": {\n    \"api_key\": "),
            "{text}"
        );
        let v = parse(text.as_bytes());
        let keys: Vec<_> = v.as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["version", "openrouter", "other"]);
        assert_eq!(v["version"], 1);
        assert_eq!(v["other"], serde_json::json!([1]));
        let e = v["openrouter"].as_object().unwrap();
        let fields: Vec<_> = e.keys().cloned().collect();
        assert_eq!(fields, ["api_key", "key_label", "note", "stored_at"]);
        assert_eq!(e["api_key"], KEY);
        assert_eq!(e["key_label"], "laptop");
        assert_eq!(e["note"], "mine");
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs();
        let stored_at = e["stored_at"].as_u64().unwrap();
        assert!(stored_at <= now && stored_at + 600 > now);

        s.store(&ApiKey::new(KEY2), &KeyMeta::default()).unwrap();
        assert_eq!(s.load().unwrap().unwrap().expose_secret(), KEY2);

        // remove keeps unknown fields, the file stays
        assert!(s.remove().unwrap());
        let v = parse(&fs::read(&path).unwrap());
        assert_eq!(
            v,
            serde_json::json!({"version": 1, "openrouter": {"note": "mine"}, "other": [1]})
        );
        assert!(s.load().unwrap().is_none());
        assert!(!s.remove().unwrap());
    }

    #[test]
    fn credentials_file_removed_when_nothing_else_left() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("credentials.json");
        let mut s = CredentialsFileStore::new(&path);
        s.store(
            &ApiKey::new(KEY),
            &KeyMeta::new(Some("l".into()), Some("u".into())),
        )
        .unwrap();
        let v = parse(&fs::read(&path).unwrap());
        assert_eq!(v["openrouter"]["user_id"], "u");
        assert!(s.remove().unwrap());
        assert!(!path.exists());
    }

    #[test]
    fn credentials_file_records_where_the_key_came_from() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("credentials.json");
        let mut s = CredentialsFileStore::new(&path);
        assert_eq!(s.load_meta().unwrap(), KeyMeta::default());
        let emulator: url::Url = "http://127.0.0.1:8123/".parse().unwrap();
        let meta = KeyMeta::new(Some("l".into()), None).with_base_url(emulator.clone());
        s.store(&ApiKey::new(KEY), &meta).unwrap();
        let v = parse(&fs::read(&path).unwrap());
        assert_eq!(v["openrouter"]["base_url"], "http://127.0.0.1:8123/");
        assert_eq!(s.load_meta().unwrap(), meta);
        // A key stored without one does not inherit the old key's.
        s.store(&ApiKey::new(KEY2), &KeyMeta::default()).unwrap();
        assert_eq!(s.load_meta().unwrap().base_url, None);
        s.store(&ApiKey::new(KEY), &meta).unwrap();
        assert!(s.remove().unwrap());
        assert!(!path.exists(), "base_url is ours and goes with the key");
        // Other programs' files get no such field.
        let auth = dir.path().join("auth.json");
        let mut o = OpencodeStore::new(&auth);
        o.store(&ApiKey::new(KEY), &meta).unwrap();
        assert!(!fs::read_to_string(&auth).unwrap().contains("base_url"));
        assert_eq!(o.load_meta().unwrap(), KeyMeta::default());
    }

    #[test]
    fn credentials_entry_not_an_object_is_refused() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("credentials.json");
        let content = br#"{"openrouter": "sk-or-v1-raw"}"#;
        fs::write(&path, content).unwrap();
        let mut s = CredentialsFileStore::new(&path);
        let err = s.store(&ApiKey::new(KEY), &KeyMeta::default()).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains("entry `openrouter`"), "{msg}");
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(!msg.contains("sk-or-v1"), "{msg}");
        assert_eq!(fs::read(&path).unwrap(), content);
        assert!(s.load().is_err());
        // Refused before signing in too, with the same error.
        let pre = s.preflight().unwrap_err().to_string();
        assert_eq!(pre, msg);
        assert_eq!(fs::read(&path).unwrap(), content);
    }

    #[test]
    fn credentials_entry_null_counts_as_no_key_and_is_filled() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("credentials.json");
        fs::write(&path, br#"{"other": 1, "openrouter": null}"#).unwrap();
        let mut s = CredentialsFileStore::new(&path);
        assert!(s.load().unwrap().is_none());
        s.preflight().unwrap();
        s.store(&ApiKey::new(KEY), &KeyMeta::default()).unwrap();
        assert_eq!(s.load().unwrap().unwrap().expose_secret(), KEY);
        let v = parse(&fs::read(&path).unwrap());
        assert_eq!(v["other"], 1, "{v}");
        assert_eq!(v["openrouter"]["api_key"], KEY, "{v}");
    }

    #[test]
    fn opencode_preflight_accepts_any_entry_it_would_replace() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("auth.json");
        fs::write(&path, br#"{"openrouter": "oops"}"#).unwrap();
        let mut s = OpencodeStore::new(&path);
        s.preflight().unwrap();
        s.store(&ApiKey::new(KEY), &KeyMeta::default()).unwrap();
        assert_eq!(s.load().unwrap().unwrap().expose_secret(), KEY);
    }

    #[test]
    fn malformed_key_type_is_reported_without_contents() {
        let dir = TempDir::new().unwrap();
        let path = dir.path().join("auth.json");
        fs::write(&path, r#"{"openrouter": {"type": "api", "key": 42}}"#).unwrap();
        let msg = OpencodeStore::new(&path).load().unwrap_err().to_string();
        assert!(msg.contains("malformed") && msg.contains("number"), "{msg}");
        assert!(msg.contains(&path.display().to_string()), "{msg}");
    }

    #[cfg(unix)]
    #[test]
    fn symlinked_auth_file_is_refused_untouched() {
        let dir = TempDir::new().unwrap();
        let real = dir.path().join("dotfiles-auth.json");
        fs::write(&real, OPENCODE_AUTH).unwrap();
        let link = dir.path().join("auth.json");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let mut s = OpencodeStore::new(&link);
        assert_eq!(s.load().unwrap().unwrap().expose_secret(), "sk-or-v1-old");
        let msg = s
            .store(&ApiKey::new(KEY), &KeyMeta::default())
            .unwrap_err()
            .to_string();
        assert!(msg.contains("symbolic link"), "{msg}");
        assert!(!msg.contains(KEY), "{msg}");
        assert!(s.remove().is_err());
        assert_eq!(fs::read_to_string(&real).unwrap(), OPENCODE_AUTH);
        assert!(fs::symlink_metadata(&link)
            .unwrap()
            .file_type()
            .is_symlink());
    }
}
