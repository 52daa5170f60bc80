//! Text from outside (OpenRouter's answers, store files, paths, the environment) made safe to
//! show on a terminal.
//!
//! A terminal acts on some characters instead of showing them. ESC (U+001B) starts sequences
//! that set the window title (`ESC ] 0 ; … BEL`), write the clipboard (OSC 52), clear the
//! screen (`ESC [ 2 J`) or move the cursor over earlier lines; BEL, BS and CR rewrite or hide
//! what was shown; the C1 controls U+0080–U+009F include one-character forms of the same
//! introducers (U+009B is CSI, U+009D is OSC on terminals that honour C1); and the Unicode
//! bidirectional formatting characters reorder what is displayed (the "Trojan Source" attack,
//! CVE-2021-42574). A key's `label`, a `user_id`, an error body or a line of a store file can
//! hold any of them.
//!
//! - [`escape`] and [`escape_text`] are for text output: every such character is replaced by
//!   a visible, printable-ASCII escape (`\u{1b}`, `\u{202e}`, `\r`, …), so a hostile
//!   sequence shows up as text and does nothing. [`escape`] escapes line breaks too (for one
//!   value on one line); [`escape_text`] keeps `\n` (for whole messages whose line breaks are
//!   ours).
//! - [`json_line`] is for `--json` output: the exact value is kept, and every such character
//!   is written as a JSON `\uXXXX` escape (serde_json alone escapes only U+0000–U+001F), so
//!   the line holds no control or bidi character even when it is shown on a terminal, and a
//!   JSON reader gets the value back unchanged.
//!
//! Which characters: [`is_unsafe`].

use std::borrow::Cow;
use std::fmt::Write as _;

/// Whether a terminal may act on `c` rather than show it: the C0 controls U+0000–U+001F
/// (including tab and line breaks), DEL U+007F, the C1 controls U+0080–U+009F, and the
/// bidirectional formatting characters (U+061C, U+200E, U+200F, U+202A–U+202E,
/// U+2066–U+2069; Unicode Standard Annex #9, section 2).
pub fn is_unsafe(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{061C}' | '\u{200E}' | '\u{200F}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}'
        )
}

/// `s` with every [unsafe](is_unsafe) character, line breaks included, replaced by a
/// printable-ASCII escape: `\n`, `\r` and `\t` for those three, `\u{…}` (lowercase hex, as
/// Rust writes it) for the others. Borrowed when there is nothing to replace. For one value
/// shown on one line (a key label, a path, a user id).
///
/// ```
/// use openrouter_auth::terminal::escape;
/// assert_eq!(escape("laptop"), "laptop");
/// assert_eq!(escape("\x1b]0;pwned\x07"), r"\u{1b}]0;pwned\u{7}");
/// assert_eq!(escape("a\nb"), r"a\nb");
/// ```
pub fn escape(s: &str) -> Cow<'_, str> {
    escape_where(s, is_unsafe)
}

/// Like [`escape`], but `\n` stays a line break: for a whole message built by this program
/// (whose line breaks are its own) that may quote outside text. Outside text that must stay
/// on one line is passed through [`escape`] first.
///
/// ```
/// use openrouter_auth::terminal::escape_text;
/// assert_eq!(escape_text("error: x\n  \x1b[2J"), "error: x\n  \\u{1b}[2J");
/// ```
pub fn escape_text(s: &str) -> Cow<'_, str> {
    escape_where(s, |c| c != '\n' && is_unsafe(c))
}

fn escape_where(s: &str, replace: impl Fn(char) -> bool) -> Cow<'_, str> {
    let Some(first) = s.find(&replace) else {
        return Cow::Borrowed(s);
    };
    let mut out = String::with_capacity(s.len() + 8);
    out.push_str(&s[..first]);
    for c in s[first..].chars() {
        if !replace(c) {
            out.push(c);
            continue;
        }
        match c {
            '\n' => out.push_str(r"\n"),
            '\r' => out.push_str(r"\r"),
            '\t' => out.push_str(r"\t"),
            c => {
                let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
            }
        }
    }
    Cow::Owned(out)
}

/// `value` as one line of compact JSON (no trailing newline) in which every
/// [unsafe](is_unsafe) character inside a string, key or value, is written as a `\uXXXX`
/// escape (RFC 8259 section 7). The line itself holds only printable characters and spaces,
/// and parses back to exactly `value`.
///
/// ```
/// use openrouter_auth::terminal::json_line;
/// let v = serde_json::json!({"label": "\u{9b}2J\u{202e}"});
/// let line = json_line(&v);
/// assert_eq!(line, r#"{"label":"\u009b2J\u202e"}"#);
/// assert_eq!(serde_json::from_str::<serde_json::Value>(&line).unwrap(), v);
/// ```
pub fn json_line(value: &serde_json::Value) -> String {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, TerminalSafe);
    serde::Serialize::serialize(value, &mut ser).expect("a JSON value always serializes");
    String::from_utf8(out).expect("serde_json writes UTF-8")
}

/// serde_json's compact formatter, plus `\uXXXX` for the unsafe characters it leaves as they
/// are (DEL, C1, bidi formatting).
struct TerminalSafe;

impl serde_json::ser::Formatter for TerminalSafe {
    fn write_string_fragment<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        fragment: &str,
    ) -> std::io::Result<()> {
        let mut start = 0;
        for (i, c) in fragment.char_indices() {
            if is_unsafe(c) {
                writer.write_all(&fragment.as_bytes()[start..i])?;
                // Every unsafe character is in the Basic Multilingual Plane: one escape.
                write!(writer, "\\u{:04x}", u32::from(c))?;
                start = i + c.len_utf8();
            }
        }
        writer.write_all(&fragment.as_bytes()[start..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const HOSTILE: &str = "\x1b]0;pwned\x07\x1b[2J";

    #[test]
    fn escape_sequences_become_visible_text() {
        assert_eq!(escape(HOSTILE), r"\u{1b}]0;pwned\u{7}\u{1b}[2J");
        assert_eq!(
            escape("\x1b]52;c;aGk=\x1b\\"),
            r"\u{1b}]52;c;aGk=\u{1b}\",
            "OSC 52 clipboard write"
        );
        assert_eq!(
            escape("\u{9b}2J\u{9d}0;x\u{9c}"),
            r"\u{9b}2J\u{9d}0;x\u{9c}"
        );
        assert_eq!(escape("a\x7fb\x08c"), r"a\u{7f}b\u{8}c");
        assert_eq!(escape("a\r\n\tb\0"), r"a\r\n\tb\u{0}");
    }

    #[test]
    fn bidi_overrides_and_isolates_are_escaped() {
        for c in ('\u{202A}'..='\u{202E}').chain('\u{2066}'..='\u{2069}') {
            let s = format!("key{c}txt.exe");
            assert_eq!(escape(&s), format!("key\\u{{{:x}}}txt.exe", u32::from(c)));
        }
        assert_eq!(
            escape("\u{200e}\u{200f}\u{61c}"),
            r"\u{200e}\u{200f}\u{61c}"
        );
    }

    #[test]
    fn printable_text_is_borrowed_unchanged() {
        for s in [
            "",
            "laptop",
            "openrouter-auth on host 2026-01-31",
            "Ünïcödé … ✓ 鍵",
            "a\\b",
        ] {
            assert!(matches!(escape(s), Cow::Borrowed(b) if b == s), "{s:?}");
        }
        assert!(matches!(escape_text("one\ntwo"), Cow::Borrowed("one\ntwo")));
    }

    #[test]
    fn escape_text_keeps_line_breaks_only() {
        assert_eq!(escape_text("a\nb\r\x1b[1A"), "a\nb\\r\\u{1b}[1A");
    }

    #[test]
    fn json_line_escapes_what_serde_json_leaves_raw() {
        let v = serde_json::json!({"label": HOSTILE, "del": "\x7f", "c1": "\u{9b}",
            "bidi": "\u{202e}\u{2066}", "ok": "é ✓", "\u{9b}key": 1});
        let line = json_line(&v);
        assert!(!line.chars().any(is_unsafe), "{line}");
        assert!(
            line.contains(r#""label":"\u001b]0;pwned\u0007\u001b[2J""#),
            "{line}"
        );
        assert!(line.contains(r#""c1":"\u009b""#), "{line}");
        assert!(line.contains(r#""bidi":"\u202e\u2066""#), "{line}");
        assert!(line.contains(r#""ok":"é ✓""#), "{line}");
        assert!(line.contains(r#""\u009bkey":1"#), "{line}");
        let back: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(back, v);
    }

    #[test]
    fn json_line_matches_serde_json_on_ordinary_values() {
        let v = serde_json::json!({"event": "signed_in", "n": [1, 2.5, null, true],
            "s": "quote \" backslash \\ tab \t"});
        assert_eq!(json_line(&v), v.to_string());
    }

    /// Any text, or text crowded with controls, C1 and bidi characters.
    fn outside_text() -> impl Strategy<Value = String> {
        prop_oneof![
            any::<String>(),
            "[\\x00-\\x{a0}\\x{61c}\\x{200c}-\\x{2070}\\x{e9}\\x{9375}\\\\]{0,40}",
        ]
    }

    proptest! {
        #[test]
        fn escaped_text_never_holds_an_unsafe_character(s in outside_text()) {
            let one = escape(&s);
            prop_assert!(!one.chars().any(is_unsafe), "{:?} -> {:?}", s, one);
            let text = escape_text(&s);
            prop_assert!(!text.chars().any(|c| c != '\n' && is_unsafe(c)), "{:?} -> {:?}", s, text);
            // Character by character: a safe one is kept, an unsafe one becomes a printable
            // ASCII escape starting with a backslash.
            let mut by_char = String::new();
            for c in s.chars() {
                let one_char = c.to_string();
                let e = escape(&one_char);
                if is_unsafe(c) {
                    prop_assert!(e.starts_with('\\') && e.len() > 1 && e.bytes().all(|b| b.is_ascii_graphic()), "{:?}", e);
                } else {
                    prop_assert_eq!(&*e, one_char.as_str());
                }
                by_char.push_str(&e);
            }
            prop_assert_eq!(&*one, by_char.as_str());
        }

        #[test]
        fn json_lines_hold_no_unsafe_character_and_round_trip(
            s in outside_text(),
            key in outside_text(),
        ) {
            let v = serde_json::json!({ key.clone(): s, "list": [key] });
            let line = json_line(&v);
            prop_assert!(!line.chars().any(is_unsafe), "{}", line);
            let back: serde_json::Value = serde_json::from_str(&line).unwrap();
            prop_assert_eq!(back, v);
        }
    }
}
