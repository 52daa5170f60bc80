//! Dotenv stores: aider's `~/.aider/oauth-keys.env` and any `.env` file.

use std::path::{Path, PathBuf};

use openrouter_auth_core::ApiKey;
use zeroize::{Zeroize, Zeroizing};

use super::fsutil::{read_existing, read_for_update, write_atomic};
use super::{KeyMeta, KeyStore, StoreError, StoreReport};

/// The variable every OpenRouter client reads (PROTOCOL.md section 8).
pub const DOTENV_VAR: &str = "OPENROUTER_API_KEY";

/// A dotenv file holding `OPENROUTER_API_KEY="sk-or-v1-…"` (`--store aider`,
/// `--store env-file:PATH`).
///
/// * `store` replaces the first assignment (`OPENROUTER_API_KEY=…`, also
///   `export OPENROUTER_API_KEY=…`, with optional spaces or tabs before the name, after
///   `export` and around `=`) by `OPENROUTER_API_KEY="<key>"`, keeping that line's line ending,
///   and drops later assignments; with none, it appends the line (first adding a line break if
///   the file does not end with one; `\r\n` if the file's first line ends so). Every other line
///   stays byte-identical, including CRLF endings, a missing final newline and bytes that are
///   not UTF-8. The key must be printable ASCII without whitespace, quotes, `\`, `$` or `` ` ``
///   (OpenRouter keys are), else [`StoreError::UnsafeKey`] and nothing is written.
/// * `load` parses the value of the **last** assignment (dotenv semantics: later wins): `"…"`
///   (with `\"`, `\\`, `\n`… escapes), `'…'` (literal) or bare (up to a ` #` comment, trimmed).
///   An empty value counts as no key.
/// * `remove` drops the assignment lines and nothing else.
///
/// The file ends up with mode 0600 like every key file, even a project `.env` that was 0644.
#[derive(Clone, Debug)]
pub struct DotenvStore {
    path: PathBuf,
    what: &'static str,
}

impl DotenvStore {
    /// Any dotenv file at `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            what: "dotenv file",
        }
    }

    /// aider's key file at `path` (normally `~/.aider/oauth-keys.env`); differs from
    /// [`DotenvStore::new`] only in [`KeyStore::describe`].
    pub fn aider(path: impl Into<PathBuf>) -> Self {
        Self {
            path: path.into(),
            what: "aider key file",
        }
    }
}

/// One line: its content (without the line ending) and its ending (`\n`, `\r\n` or nothing).
struct Line<'a> {
    content: &'a [u8],
    ending: &'a [u8],
}

fn split_lines(bytes: &[u8]) -> Vec<Line<'_>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        let (line, tail) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..=i], &rest[i + 1..]),
            None => (rest, &rest[rest.len()..]),
        };
        let body_len = if line.ends_with(b"\r\n") {
            line.len() - 2
        } else if line.ends_with(b"\n") {
            line.len() - 1
        } else {
            line.len()
        };
        out.push(Line {
            content: &line[..body_len],
            ending: &line[body_len..],
        });
        rest = tail;
    }
    out
}

fn skip_blanks(s: &[u8]) -> &[u8] {
    let n = s.iter().take_while(|b| matches!(b, b' ' | b'\t')).count();
    &s[n..]
}

/// If `line` assigns `OPENROUTER_API_KEY`, the bytes after the `=`.
fn assignment_value(line: &[u8]) -> Option<&[u8]> {
    let mut s = skip_blanks(line);
    if let Some(rest) = s.strip_prefix(b"export") {
        if rest.first().is_some_and(|b| matches!(b, b' ' | b'\t')) {
            s = skip_blanks(rest);
        }
    }
    let s = s.strip_prefix(DOTENV_VAR.as_bytes())?;
    let s = skip_blanks(s);
    s.strip_prefix(b"=")
}

/// Parses a dotenv value. `Err` carries a reason (never the value).
fn parse_value(raw: &[u8]) -> Result<Zeroizing<Vec<u8>>, &'static str> {
    let s = skip_blanks(raw);
    let mut out = Zeroizing::new(Vec::with_capacity(s.len()));
    match s.first() {
        Some(b'"') => {
            let mut it = s[1..].iter();
            loop {
                match it.next() {
                    None => return Err("unterminated double quote"),
                    Some(b'"') => break,
                    Some(b'\\') => match it.next() {
                        None => return Err("unterminated double quote"),
                        Some(b'n') => out.push(b'\n'),
                        Some(b'r') => out.push(b'\r'),
                        Some(b't') => out.push(b'\t'),
                        Some(&c @ (b'"' | b'\\' | b'\'' | b'$')) => out.push(c),
                        Some(&c) => out.extend_from_slice(&[b'\\', c]),
                    },
                    Some(&c) => out.push(c),
                }
            }
        }
        Some(b'\'') => {
            let body = &s[1..];
            let end = body
                .iter()
                .position(|&b| b == b'\'')
                .ok_or("unterminated single quote")?;
            out.extend_from_slice(&body[..end]);
        }
        _ => {
            // bare: up to an inline comment (`#` at the start or after a blank), trimmed
            let mut end = s.len();
            for (i, &b) in s.iter().enumerate() {
                if b == b'#' && (i == 0 || matches!(s[i - 1], b' ' | b'\t')) {
                    end = i;
                    break;
                }
            }
            let v = &s[..end];
            let trimmed = v.len()
                - v.iter()
                    .rev()
                    .take_while(|b| matches!(b, b' ' | b'\t'))
                    .count();
            out.extend_from_slice(&v[..trimmed]);
        }
    }
    Ok(out)
}

/// Characters we can put between double quotes without any dotenv parser (python-dotenv, which
/// aider uses, interpolates `${…}`) reading something else.
fn key_is_dotenv_safe(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\'' | b'\\' | b'$' | b'`'))
}

impl DotenvStore {
    fn assignment_line(&self, key: &ApiKey) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        let k = key.expose_secret();
        if !key_is_dotenv_safe(k) {
            return Err(StoreError::UnsafeKey {
                path: self.path.clone(),
            });
        }
        let mut line = Zeroizing::new(Vec::with_capacity(DOTENV_VAR.len() + k.len() + 3));
        line.extend_from_slice(DOTENV_VAR.as_bytes());
        line.extend_from_slice(b"=\"");
        line.extend_from_slice(k.as_bytes());
        line.push(b'"');
        Ok(line)
    }
}

impl KeyStore for DotenvStore {
    fn describe(&self) -> String {
        format!("{} {}", self.what, self.path.display())
    }

    fn location(&self) -> Option<&Path> {
        Some(&self.path)
    }

    fn preflight(&self) -> Result<(), StoreError> {
        super::fsutil::preflight_write(&self.path)
    }

    fn store(&mut self, key: &ApiKey, _meta: &KeyMeta) -> Result<StoreReport, StoreError> {
        let new_line = self.assignment_line(key)?;
        let old = read_for_update(&self.path)?;
        let old_bytes: &[u8] = old.as_deref().map(Vec::as_slice).unwrap_or_default();
        let lines = split_lines(old_bytes);
        let mut out = Zeroizing::new(Vec::with_capacity(old_bytes.len() + new_line.len() + 2));
        let mut replaced = false;
        for line in &lines {
            if assignment_value(line.content).is_some() {
                if !replaced {
                    out.extend_from_slice(&new_line);
                    out.extend_from_slice(line.ending);
                    replaced = true;
                }
            } else {
                out.extend_from_slice(line.content);
                out.extend_from_slice(line.ending);
            }
        }
        if !replaced {
            let newline: &[u8] = match lines.first() {
                Some(l) if l.ending == b"\r\n" => b"\r\n",
                _ => b"\n",
            };
            if !out.is_empty() && !out.ends_with(b"\n") {
                out.extend_from_slice(newline);
            }
            out.extend_from_slice(&new_line);
            out.extend_from_slice(newline);
        }
        let mode = write_atomic(&self.path, &out)?;
        tracing::info!(path = %self.path.display(), key = %key.hint(), "stored API key in dotenv file");
        Ok(StoreReport {
            description: self.describe(),
            path: Some(self.path.clone()),
            mode,
        })
    }

    fn load(&self) -> Result<Option<ApiKey>, StoreError> {
        let Some(bytes) = read_existing(&self.path)? else {
            return Ok(None);
        };
        let Some((lineno, raw)) = split_lines(&bytes)
            .iter()
            .enumerate()
            .filter_map(|(i, l)| assignment_value(l.content).map(|v| (i + 1, v)))
            .next_back()
        else {
            return Ok(None);
        };
        let malformed = |reason: &str| StoreError::Malformed {
            path: self.path.clone(),
            reason: format!("line {lineno}: {reason}"),
        };
        let value = parse_value(raw).map_err(malformed)?;
        if value.is_empty() {
            return Ok(None);
        }
        let mut text = String::from_utf8(value.to_vec()).map_err(|e| {
            let mut bytes = e.into_bytes();
            bytes.zeroize();
            malformed("value is not valid UTF-8")
        })?;
        let key = ApiKey::new(text.as_str());
        text.zeroize();
        Ok(Some(key))
    }

    fn remove(&mut self) -> Result<bool, StoreError> {
        let Some(bytes) = read_for_update(&self.path)? else {
            return Ok(false);
        };
        let lines = split_lines(&bytes);
        if !lines.iter().any(|l| assignment_value(l.content).is_some()) {
            return Ok(false);
        }
        let mut out = Zeroizing::new(Vec::with_capacity(bytes.len()));
        for line in lines
            .iter()
            .filter(|l| assignment_value(l.content).is_none())
        {
            out.extend_from_slice(line.content);
            out.extend_from_slice(line.ending);
        }
        write_atomic(&self.path, &out)?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::{env_in, KEY, KEY2};
    use super::super::{open_store, StoreSpec};
    use super::*;
    use std::fs;
    use tempfile::TempDir;

    fn store_at(dir: &TempDir, content: &[u8]) -> (PathBuf, DotenvStore) {
        let path = dir.path().join(".env");
        fs::write(&path, content).unwrap();
        (path.clone(), DotenvStore::new(path))
    }

    fn set(s: &mut DotenvStore, key: &str) {
        s.store(&ApiKey::new(key), &KeyMeta::default()).unwrap();
    }

    #[test]
    fn replaces_first_assignment_drops_duplicates_keeps_crlf_and_no_final_newline() {
        let dir = TempDir::new().unwrap();
        let input: &[u8] = b"# comment\r\nA=1\r\n  export OPENROUTER_API_KEY = 'old'\r\nB=\"x y\"\r\nOPENROUTER_API_KEY=dup\r\n\xff raw bytes\r\nC=3";
        let (path, mut s) = store_at(&dir, input);
        assert_eq!(s.load().unwrap().unwrap().expose_secret(), "dup");
        set(&mut s, KEY);
        let mut expected = b"# comment\r\nA=1\r\n".to_vec();
        expected.extend_from_slice(format!("OPENROUTER_API_KEY=\"{KEY}\"\r\n").as_bytes());
        expected.extend_from_slice(b"B=\"x y\"\r\n\xff raw bytes\r\nC=3");
        assert_eq!(fs::read(&path).unwrap(), expected);
        assert_eq!(s.load().unwrap().unwrap().expose_secret(), KEY);

        assert!(s.remove().unwrap());
        assert_eq!(
            fs::read(&path).unwrap(),
            b"# comment\r\nA=1\r\nB=\"x y\"\r\n\xff raw bytes\r\nC=3"
        );
        assert!(s.load().unwrap().is_none());
        assert!(!s.remove().unwrap());
    }

    #[test]
    fn appends_with_newline_when_missing() {
        let dir = TempDir::new().unwrap();
        for (input, expected) in [
            (&b""[..], format!("OPENROUTER_API_KEY=\"{KEY}\"\n")),
            (b"A=1", format!("A=1\nOPENROUTER_API_KEY=\"{KEY}\"\n")),
            (b"A=1\n", format!("A=1\nOPENROUTER_API_KEY=\"{KEY}\"\n")),
            (b"A=1\r\nB=2", format!("A=1\r\nB=2\r\nOPENROUTER_API_KEY=\"{KEY}\"\r\n")),
            (
                b"# OPENROUTER_API_KEY=commented\nOPENROUTER_API_KEY_OLD=x\n",
                format!(
                    "# OPENROUTER_API_KEY=commented\nOPENROUTER_API_KEY_OLD=x\nOPENROUTER_API_KEY=\"{KEY}\"\n"
                ),
            ),
        ] {
            let (path, mut s) = store_at(&dir, input);
            assert!(s.load().unwrap().is_none());
            set(&mut s, KEY);
            assert_eq!(fs::read_to_string(&path).unwrap(), expected);
            // storing again replaces in place: same bytes with the new key
            set(&mut s, KEY2);
            assert_eq!(
                fs::read_to_string(&path).unwrap(),
                expected.replace(KEY, KEY2)
            );
            assert!(s.remove().unwrap());
            let left = fs::read_to_string(&path).unwrap();
            assert!(!left.contains("sk-or-v1"), "{left}");
        }
    }

    #[test]
    fn replacement_keeps_missing_final_newline() {
        let dir = TempDir::new().unwrap();
        let (path, mut s) = store_at(&dir, b"A=1\nexport\tOPENROUTER_API_KEY=old");
        set(&mut s, KEY);
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("A=1\nOPENROUTER_API_KEY=\"{KEY}\"")
        );
    }

    #[test]
    fn parses_quoted_and_bare_values() {
        for (line, expect) in [
            ("OPENROUTER_API_KEY=\"sk-a\"", Some("sk-a")),
            ("OPENROUTER_API_KEY='sk-b' # note", Some("sk-b")),
            ("OPENROUTER_API_KEY=sk-c   # note", Some("sk-c")),
            (
                "OPENROUTER_API_KEY=sk-d#notacomment",
                Some("sk-d#notacomment"),
            ),
            ("export OPENROUTER_API_KEY=  \"sk-\\\"e\"", Some("sk-\"e")),
            ("\t OPENROUTER_API_KEY\t=sk-f\r", Some("sk-f")),
            ("OPENROUTER_API_KEY=", None),
            ("OPENROUTER_API_KEY=\"\"", None),
            ("exportOPENROUTER_API_KEY=x", None),
            ("XOPENROUTER_API_KEY=x", None),
        ] {
            let dir = TempDir::new().unwrap();
            let (_, s) = store_at(&dir, format!("{line}\n").as_bytes());
            let got = s.load().unwrap();
            assert_eq!(got.as_ref().map(ApiKey::expose_secret), expect, "{line:?}");
        }
    }

    #[test]
    fn unterminated_quote_is_malformed_without_value() {
        let dir = TempDir::new().unwrap();
        let (path, s) = store_at(&dir, b"A=1\nOPENROUTER_API_KEY=\"sk-or-v1-secret\n");
        let msg = s.load().unwrap_err().to_string();
        assert!(
            msg.contains("line 2") && msg.contains("unterminated"),
            "{msg}"
        );
        assert!(msg.contains(&path.display().to_string()), "{msg}");
        assert!(!msg.contains("secret"), "{msg}");
    }

    #[test]
    fn unsafe_key_is_refused_and_not_echoed() {
        let dir = TempDir::new().unwrap();
        let (path, mut s) = store_at(&dir, b"A=1\n");
        for bad in ["sk\"x", "sk\nINJECTED=1", "sk $HOME", "sk-${X}", ""] {
            let err = s.store(&ApiKey::new(bad), &KeyMeta::default()).unwrap_err();
            let msg = err.to_string();
            assert!(matches!(err, StoreError::UnsafeKey { .. }), "{msg}");
            assert!(msg.contains(&path.display().to_string()), "{msg}");
            if !bad.is_empty() {
                assert!(!msg.contains(bad), "{msg}");
            }
            assert_eq!(fs::read(&path).unwrap(), b"A=1\n");
        }
    }

    #[cfg(unix)]
    #[test]
    fn aider_store_creates_private_dir_and_file() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new().unwrap();
        let env = env_in(&dir);
        let home = env.home.clone().unwrap();
        fs::create_dir_all(&home).unwrap();
        fs::set_permissions(&home, fs::Permissions::from_mode(0o755)).unwrap();
        let mut s = open_store(&StoreSpec::Aider, &env).unwrap();
        assert!(s.describe().starts_with("aider key file "));
        let report = s.store(&ApiKey::new(KEY), &KeyMeta::default()).unwrap();
        let path = home.join(".aider/oauth-keys.env");
        assert_eq!(report.path.as_deref(), Some(path.as_path()));
        assert_eq!(report.mode, Some(0o600));
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(&home.join(".aider")), 0o700);
        assert_eq!(mode(&home), 0o755);
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("OPENROUTER_API_KEY=\"{KEY}\"\n")
        );
    }

    #[cfg(unix)]
    #[test]
    fn world_readable_env_file_becomes_0600() {
        use std::os::unix::fs::PermissionsExt;
        let dir = TempDir::new().unwrap();
        let (path, mut s) = store_at(&dir, b"A=1\n");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let report = s.store(&ApiKey::new(KEY), &KeyMeta::default()).unwrap();
        assert_eq!(report.mode, Some(0o600));
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o7777,
            0o600
        );
    }

    #[cfg(unix)]
    #[test]
    fn symlinked_env_file_is_refused() {
        let dir = TempDir::new().unwrap();
        let real = dir.path().join("real.env");
        fs::write(&real, b"OPENROUTER_API_KEY=old\n").unwrap();
        let link = dir.path().join(".env");
        std::os::unix::fs::symlink(&real, &link).unwrap();
        let mut s = DotenvStore::new(&link);
        assert_eq!(s.load().unwrap().unwrap().expose_secret(), "old");
        let msg = s
            .store(&ApiKey::new(KEY), &KeyMeta::default())
            .unwrap_err()
            .to_string();
        assert!(msg.contains(&link.display().to_string()), "{msg}");
        assert!(!msg.contains(KEY), "{msg}");
        assert!(s.remove().is_err());
        assert_eq!(fs::read(&real).unwrap(), b"OPENROUTER_API_KEY=old\n");
    }
}
