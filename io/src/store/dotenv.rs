//! Dotenv stores: aider's `~/.aider/oauth-keys.env` and any `.env` file.

use std::ops::Range;
use std::path::{Path, PathBuf};

use openrouter_auth_core::ApiKey;
use zeroize::{Zeroize, Zeroizing};

use super::fsutil::{read_existing, update, Change, Updated};
use super::{KeyMeta, KeyStore, Replace, StoreError, StoreReport};

/// The variable every OpenRouter client reads (PROTOCOL.md section 8).
pub const DOTENV_VAR: &str = "OPENROUTER_API_KEY";

/// A dotenv file holding `OPENROUTER_API_KEY="sk-or-v1-…"` (the `aider` store spec,
/// the `env-file:PATH` store spec), read and edited by the grammar of the programs that read it:
/// python-dotenv 1.0 (what aider loads `oauth-keys.env` with) and a POSIX shell that
/// `source`s the file.
///
/// The file is split into statements as python-dotenv's parser splits it: quoted values may
/// span lines (a line inside another variable's quoted value is never taken for an
/// assignment), `export` prefixes, comments, `'…'` and `"…"` with python-dotenv's escapes,
/// and lines it cannot parse, which it skips and which are kept byte for byte.
///
/// * `store` replaces the first statement that sets `OPENROUTER_API_KEY` (also
///   `export OPENROUTER_API_KEY=…`, or the key alone) by `OPENROUTER_API_KEY="<key>"`, keeping
///   what came before the name on that line (indentation, `export`) and after the value (a
///   comment, the line ending), and drops later statements that set it; if one of them was
///   exported, the kept one is too (a shell exports a variable once any assignment did).
///   With none, it appends the line (first adding a line break if the file does not end with
///   one; `\r\n` if the file's first line ends so). Every other byte stays as it was,
///   including CRLF endings, a missing final newline and bytes that are not UTF-8. The key
///   must be printable ASCII without whitespace, quotes, `\`, `$` or `` ` `` (OpenRouter keys
///   are), else [`StoreError::UnsafeKey`] and nothing is written.
/// * `load` reads the **last** statement that sets it and that python-dotenv can parse, as
///   python-dotenv does (later wins):
///   `"…"` (escapes `\\ \' \" \a \b \f \n \r \t \v`; others stay as written), `'…'` (escapes
///   `\\` and `\'`) or bare (up to a `#` after a blank, trimmed). An empty value, or the name
///   without `=`, counts as no key; a statement python-dotenv cannot parse (an unterminated
///   quote) is [`StoreError::Malformed`].
/// * `remove` drops the statements that set it and nothing else.
///
/// Whitespace is ASCII whitespace; python-dotenv also counts Unicode spaces (such as a
/// no-break space), which this parser takes for ordinary characters.
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

/// Python's `\s` for `str` patterns, within ASCII.
fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c | 0x1c..=0x1f)
}

/// `[^\S\r\n]`: whitespace that does not end a line.
fn is_blank(b: u8) -> bool {
    is_space(b) && !matches!(b, b'\r' | b'\n')
}

fn is_eol(b: u8) -> bool {
    matches!(b, b'\r' | b'\n')
}

/// A statement's value, as byte ranges into the file.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Value {
    /// `'…'`: the bytes between the quotes.
    Single(Range<usize>),
    /// `"…"`: the bytes between the quotes.
    Double(Range<usize>),
    /// Bare, without its comment and trailing blanks.
    Bare(Range<usize>),
}

/// One statement of a dotenv file as python-dotenv 1.0's `parse_stream` splits it (its
/// `Binding`), with byte offsets. The blank lines python-dotenv folds into the front of a
/// statement are left out: the statement starts on the line of its first non-blank byte.
#[derive(Clone, Debug)]
struct Statement {
    /// Start of the line the statement begins on.
    line_start: usize,
    /// Where `export` starts (if present), else where the key starts.
    export_start: usize,
    /// Whether the statement has an `export` prefix.
    export: bool,
    /// Where the key starts (after indentation and `export`).
    key_start: usize,
    /// The key (for `'KEY'`, the part between the quotes); `None` for comments and blank tails.
    key: Option<Range<usize>>,
    /// The value: `None` without `=`, `Some(None)` for `KEY=` with nothing after it.
    value: Option<Option<Value>>,
    /// Where what follows the value starts: blanks, a comment, the line ending.
    tail_start: usize,
    /// End of the statement, after its line ending.
    end: usize,
    /// python-dotenv could not parse it (and skips it): why.
    error: Option<&'static str>,
}

/// python-dotenv's `'((?:\\'|[^'])*)'` (or with `"`) from `start` (the opening quote): the
/// index of the closing quote. Without an unescaped closing quote the regex backtracks to the
/// quote of the last `\'` pair.
fn closing_quote(s: &[u8], start: usize, q: u8) -> Option<usize> {
    let mut i = start + 1;
    let mut last_escaped = None;
    while i < s.len() {
        if s[i] == b'\\' && s.get(i + 1) == Some(&q) {
            last_escaped = Some(i + 1);
            i += 2;
        } else if s[i] == q {
            return Some(i);
        } else {
            i += 1;
        }
    }
    last_escaped
}

/// The statements of `s`, covering it from start to end.
fn parse(s: &[u8]) -> Vec<Statement> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < s.len() {
        let mut p = pos;
        while p < s.len() && is_space(s[p]) {
            p += 1;
        }
        let line_start = s[pos..p]
            .iter()
            .rposition(|&b| is_eol(b))
            .map_or(pos, |i| pos + i + 1);
        let st = parse_statement(s, line_start, p);
        pos = st.end;
        out.push(st);
    }
    out
}

/// python-dotenv's `parse_binding` from `p` (its first non-blank byte).
fn parse_statement(s: &[u8], line_start: usize, p: usize) -> Statement {
    let mut st = Statement {
        line_start,
        export_start: p,
        export: false,
        key_start: p,
        key: None,
        value: None,
        tail_start: p,
        end: p,
        error: None,
    };
    if p == s.len() {
        return st;
    }
    let fail = |mut st: Statement, at: usize, why: &'static str| {
        // `_rest_of_line`: up to the line end, and one `\r` or `\n`.
        let mut end = at;
        while end < s.len() && !is_eol(s[end]) {
            end += 1;
        }
        if end < s.len() {
            end += 1;
        }
        st.end = end;
        st.tail_start = end;
        st.error = Some(why);
        st
    };
    let mut q = p;
    // `_export`: `export` and at least one blank.
    if s[q..].starts_with(b"export") && s.get(q + 6).is_some_and(|&b| is_blank(b)) {
        q += 6;
        while q < s.len() && is_blank(s[q]) {
            q += 1;
        }
        st.export = true;
    }
    st.key_start = q;
    // `parse_key`
    match s.get(q) {
        Some(b'#') => {}
        Some(b'\'') => match s[q + 1..].iter().position(|&b| b == b'\'') {
            Some(n) if n > 0 => {
                st.key = Some(q + 1..q + 1 + n);
                q += n + 2;
            }
            _ => return fail(st, q, "a key with an unterminated quote"),
        },
        _ => {
            let start = q;
            while q < s.len() && !matches!(s[q], b'=' | b'#') && !is_space(s[q]) {
                q += 1;
            }
            if q == start {
                return fail(st, q, "no variable name");
            }
            st.key = Some(start..q);
        }
    }
    while q < s.len() && is_blank(s[q]) {
        q += 1;
    }
    st.tail_start = q;
    if s.get(q) == Some(&b'=') {
        q += 1;
        while q < s.len() && is_blank(s[q]) {
            q += 1;
        }
        // `parse_value`
        let value = match s.get(q) {
            Some(&c @ (b'\'' | b'"')) => {
                let Some(close) = closing_quote(s, q, c) else {
                    return fail(st, q, "an unterminated quote");
                };
                let inner = q + 1..close;
                q = close + 1;
                Some(if c == b'\'' {
                    Value::Single(inner)
                } else {
                    Value::Double(inner)
                })
            }
            None | Some(b'\n' | b'\r') => None,
            Some(_) => {
                let start = q;
                while q < s.len() && !is_eol(s[q]) {
                    q += 1;
                }
                // `re.sub(r"\s+#.*", "", part).rstrip()`
                let part = &s[start..q];
                let mut cut = part.len();
                let mut i = 0;
                while i < part.len() {
                    if is_space(part[i]) {
                        let run = i;
                        while i < part.len() && is_space(part[i]) {
                            i += 1;
                        }
                        if part.get(i) == Some(&b'#') {
                            cut = run;
                            break;
                        }
                    } else {
                        i += 1;
                    }
                }
                while cut > 0 && is_space(part[cut - 1]) {
                    cut -= 1;
                }
                Some(Value::Bare(start..start + cut))
            }
        };
        st.tail_start = match &value {
            Some(Value::Bare(r)) => r.end,
            _ => q,
        };
        st.value = Some(value);
    }
    // `_comment`
    let mut r = q;
    while r < s.len() && is_blank(s[r]) {
        r += 1;
    }
    if s.get(r) == Some(&b'#') {
        while r < s.len() && !is_eol(s[r]) {
            r += 1;
        }
        q = r;
    }
    // `_end_of_line`
    let mut r = q;
    while r < s.len() && is_blank(s[r]) {
        r += 1;
    }
    if r == s.len() {
        st.end = r;
    } else if s[r..].starts_with(b"\r\n") {
        st.end = r + 2;
    } else if is_eol(s[r]) {
        st.end = r + 1;
    } else {
        return fail(st, q, "text after the value");
    }
    st
}

impl Statement {
    /// Whether it sets `OPENROUTER_API_KEY` (or tried to: python-dotenv skipped it).
    fn is_ours(&self, s: &[u8]) -> bool {
        self.key
            .as_ref()
            .is_some_and(|k| &s[k.clone()] == DOTENV_VAR.as_bytes())
    }

    /// Its line ending (the last `\r\n`, `\n` or `\r`), if it has one.
    fn ending<'a>(&self, s: &'a [u8]) -> &'a [u8] {
        let body = &s[..self.end];
        if body.ends_with(b"\r\n") {
            b"\r\n"
        } else if body.ends_with(b"\n") {
            b"\n"
        } else if body.ends_with(b"\r") {
            b"\r"
        } else {
            b""
        }
    }

    /// 1-based line number of its key (`\n`, `\r\n` and a lone `\r` end a line).
    fn line(&self, s: &[u8]) -> usize {
        let before = &s[..self.key_start];
        1 + before
            .iter()
            .enumerate()
            .filter(|&(i, &b)| b == b'\n' || (b == b'\r' && before.get(i + 1) != Some(&b'\n')))
            .count()
    }
}

/// Decodes python-dotenv's escapes in a quoted value: `"…"` knows `\\ \' \" \a \b \f \n \r
/// \t \v`, `'…'` only `\\` and `\'`; any other backslash stays as written.
fn unescape(raw: &[u8], double: bool) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(raw.len()));
    let mut i = 0;
    while i < raw.len() {
        let next = raw.get(i + 1).copied();
        let decoded = match (raw[i], next) {
            (b'\\', Some(c @ (b'\\' | b'\''))) => Some(c),
            (b'\\', Some(c)) if double => match c {
                b'"' => Some(b'"'),
                b'a' => Some(0x07),
                b'b' => Some(0x08),
                b'f' => Some(0x0c),
                b'n' => Some(b'\n'),
                b'r' => Some(b'\r'),
                b't' => Some(b'\t'),
                b'v' => Some(0x0b),
                _ => None,
            },
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                i += 2;
            }
            None => {
                out.push(raw[i]);
                i += 1;
            }
        }
    }
    out
}

/// The value a statement sets, as python-dotenv reads it.
fn value_of(s: &[u8], value: &Option<Value>) -> Zeroizing<Vec<u8>> {
    match value {
        None => Zeroizing::new(Vec::new()),
        Some(Value::Single(r)) => unescape(&s[r.clone()], false),
        Some(Value::Double(r)) => unescape(&s[r.clone()], true),
        Some(Value::Bare(r)) => Zeroizing::new(s[r.clone()].to_vec()),
    }
}

/// Characters we can put between double quotes without any dotenv parser (python-dotenv, which
/// aider uses, interpolates `${…}`) or shell reading something else.
fn key_is_dotenv_safe(key: &str) -> bool {
    !key.is_empty()
        && key
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b'"' | b'\'' | b'\\' | b'$' | b'`'))
}

/// `old` with the statements that set `OPENROUTER_API_KEY` replaced by `new_line` (`Some`) or
/// removed (`None`); `None` if there was nothing to replace or remove.
fn edit(old: &[u8], new_line: Option<&[u8]>) -> Option<Zeroizing<Vec<u8>>> {
    let statements = parse(old);
    let ours: Vec<&Statement> = statements.iter().filter(|st| st.is_ours(old)).collect();
    let first = ours.first()?;
    let exported = ours.iter().any(|st| st.export);
    let mut out = Zeroizing::new(Vec::with_capacity(
        old.len() + new_line.map_or(0, |l| l.len() + 8),
    ));
    let mut cursor = 0;
    for st in &ours {
        out.extend_from_slice(&old[cursor..st.line_start]);
        if let (Some(line), true) = (new_line, std::ptr::eq(*st, *first)) {
            // What stood before the name: indentation, `export`.
            out.extend_from_slice(&old[st.line_start..st.export_start]);
            if st.export {
                out.extend_from_slice(&old[st.export_start..st.key_start]);
            } else if exported {
                out.extend_from_slice(b"export ");
            }
            out.extend_from_slice(line);
            // What stood after the value: a comment, the line ending.
            let tail = if st.error.is_some() {
                st.ending(old)
            } else {
                &old[st.tail_start..st.end]
            };
            if tail.first() == Some(&b'#') {
                out.push(b' ');
            }
            out.extend_from_slice(tail);
        }
        cursor = st.end;
    }
    out.extend_from_slice(&old[cursor..]);
    Some(out)
}

/// The key the file sets (the last statement wins), as [`KeyStore::load`].
fn key_in(path: &Path, bytes: &[u8]) -> Result<Option<ApiKey>, StoreError> {
    let statements = parse(bytes);
    let mut ours = statements.iter().filter(|st| st.is_ours(bytes));
    // python-dotenv skips what it cannot parse: the last statement it can parse wins, and
    // only when there is none is a broken one reported.
    let Some(st) = ours
        .clone()
        .rev()
        .find(|st| st.error.is_none())
        .or_else(|| ours.next())
    else {
        return Ok(None);
    };
    let malformed = |reason: &str| StoreError::Malformed {
        path: path.to_path_buf(),
        reason: format!("line {}: {reason}", st.line(bytes)),
    };
    if let Some(why) = st.error {
        return Err(malformed(why));
    }
    let Some(value) = &st.value else {
        return Ok(None);
    };
    let value = value_of(bytes, value);
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

/// `old` with `line` appended on a line of its own.
fn append(old: &[u8], line: &[u8]) -> Zeroizing<Vec<u8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(old.len() + line.len() + 4));
    out.extend_from_slice(old);
    let newline: &[u8] = match split_first_line_ending(old) {
        Some(b"\r\n") => b"\r\n",
        _ => b"\n",
    };
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.extend_from_slice(newline);
    }
    out.extend_from_slice(line);
    out.extend_from_slice(newline);
    out
}

/// The ending of the file's first line (`\n` or `\r\n`), if it has one.
fn split_first_line_ending(s: &[u8]) -> Option<&[u8]> {
    let i = s.iter().position(|&b| b == b'\n')?;
    Some(if i > 0 && s[i - 1] == b'\r' {
        &s[i - 1..=i]
    } else {
        &s[i..=i]
    })
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

    fn store(&mut self, key: &ApiKey, meta: &KeyMeta) -> Result<StoreReport, StoreError> {
        self.store_replacing(key, meta, &Replace::Any)
    }

    fn store_replacing(
        &mut self,
        key: &ApiKey,
        _meta: &KeyMeta,
        replace: &Replace,
    ) -> Result<StoreReport, StoreError> {
        let new_line = self.assignment_line(key)?;
        let this = &*self;
        let updated = update(&this.path, |old| {
            let old = old.unwrap_or_default();
            let found = key_in(&this.path, old).unwrap_or(None);
            replace.check(|| this.describe(), found.as_ref(), key)?;
            Ok(Change::Write(
                edit(old, Some(&new_line)).unwrap_or_else(|| append(old, &new_line)),
            ))
        })?;
        let mode = match updated {
            Updated::Wrote(mode) => mode,
            Updated::Deleted | Updated::Kept => None,
        };
        tracing::info!(path = %self.path.display(), key = %key.hint(), "stored API key in dotenv file");
        Ok(StoreReport {
            description: self.describe(),
            path: Some(self.path.clone()),
            mode,
        })
    }

    fn load(&self) -> Result<Option<ApiKey>, StoreError> {
        match read_existing(&self.path)? {
            Some(bytes) => key_in(&self.path, &bytes),
            None => Ok(None),
        }
    }

    fn remove(&mut self) -> Result<bool, StoreError> {
        let updated = update(&self.path, |old| {
            Ok(match old.and_then(|old| edit(old, None)) {
                Some(out) => Change::Write(out),
                None => Change::Keep,
            })
        })?;
        Ok(!matches!(updated, Updated::Kept))
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
        // The first assignment's indentation and `export` stay.
        expected.extend_from_slice(format!("  export OPENROUTER_API_KEY=\"{KEY}\"\r\n").as_bytes());
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
            format!("A=1\nexport\tOPENROUTER_API_KEY=\"{KEY}\"")
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

    /// Expected values checked against python-dotenv 1.0.1's `dotenv_values`.
    #[test]
    fn reads_what_python_dotenv_reads() {
        for (content, expect) in [
            ("OPENROUTER_API_KEY='sk\\'x'\n", Some("sk'x")),
            ("A=\"x\nOPENROUTER_API_KEY=inner\n\"\nB=1\n", None),
            (
                "OPENROUTER_API_KEY=\"k\"trailing\nOPENROUTER_API_KEY=good\n",
                Some("good"),
            ),
            (
                "OPENROUTER_API_KEY=good\nOPENROUTER_API_KEY=\"k\"trailing\n",
                Some("good"),
            ),
            ("OPENROUTER_API_KEY=\"a\\\"b\" # c\n", Some("a\"b")),
        ] {
            let dir = TempDir::new().unwrap();
            let (_, s) = store_at(&dir, content.as_bytes());
            let got = s.load().unwrap();
            assert_eq!(
                got.as_ref().map(ApiKey::expose_secret),
                expect,
                "{content:?}"
            );
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
