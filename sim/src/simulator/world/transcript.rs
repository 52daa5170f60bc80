//! The transcript: every line a recorded run prints, redacted, and the digest of the raw lines
//! (the snapshot tests and `sim --seed N --explain` read it).

use super::*;

impl<'p> World<'p> {
    /// Replaces `secret` by `label()` in the recorded lines (the label is made only when
    /// recording).
    pub(super) fn redact(&mut self, secret: &str, label: impl FnOnce() -> String) {
        if let Some(r) = &mut self.rec {
            if !secret.is_empty() && !r.redactions.iter().any(|(s, _)| s == secret) {
                r.redactions.push((secret.to_owned(), label()));
            }
        }
    }

    pub(super) fn log(&mut self, dir: &str, f: impl FnOnce() -> String) {
        if let Some(r) = &mut self.rec {
            let raw = format!("{}  {dir} {}", fmt_ms(self.now), f());
            r.hash.update(raw.as_bytes());
            r.hash.update(b"\n");
            let mut line = raw;
            for (s, l) in &r.redactions {
                if line.contains(s.as_str()) {
                    line = line.replace(s.as_str(), l);
                }
            }
            r.lines.push(line);
        }
    }
}

pub(super) fn fmt_ms(ms: u64) -> String {
    format!("{:>7}.{:03}", ms / 1000, ms % 1000)
}

pub(super) fn title_of(body: &str) -> &str {
    body.split_once("<h1>")
        .and_then(|(_, rest)| rest.split_once("</h1>"))
        .map_or("", |(t, _)| t)
}

pub(super) fn lossy(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(&b[..b.len().min(120)]).into_owned();
    let s: String = s
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    if b.len() > 120 {
        format!("{s}…({} bytes)", b.len())
    } else {
        s
    }
}
