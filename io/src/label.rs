//! The default `key_label`: something the user recognises in their OpenRouter key list
//! (`openrouter-auth on <hostname> <YYYY-MM-DD>`), at most 100 characters.

use openrouter_auth_core::KeyLabel;

/// `"<program> on <host> <date>"`, cut to 100 characters (ending in `…`) with control
/// characters replaced by spaces ([`KeyLabel::lossy`]). An empty `host` is left out; `date` is
/// `YYYY-MM-DD`.
pub fn key_label_for(program: &str, host: &str, date: &str) -> KeyLabel {
    let host = host.trim();
    let text = if host.is_empty() {
        format!("{program} {date}")
    } else {
        format!("{program} on {host} {date}")
    };
    KeyLabel::lossy(&text)
        .or_else(|_| KeyLabel::lossy(program))
        .unwrap_or_else(|_| KeyLabel::new("openrouter-auth").expect("a valid constant label"))
}

/// This machine's host name (without a domain), or `""` if it cannot be read.
pub fn short_hostname() -> String {
    let name = gethostname::gethostname().to_string_lossy().into_owned();
    match name.split_once('.') {
        Some((short, _)) if !short.is_empty() => short.to_owned(),
        _ => name,
    }
}

/// Today's date in the local time zone (UTC if it cannot be determined), as `YYYY-MM-DD`.
pub fn local_date() -> String {
    match localtime_file() {
        Some(tz) => jiff::Timestamp::now().to_zoned(tz).date().to_string(),
        None => jiff::Zoned::now().date().to_string(),
    }
}

/// Without `TZ`, the zone in `/etc/localtime`, read directly. jiff's own lookup of the
/// system zone first indexes the whole zoneinfo tree (dozens of directories), and the date is
/// needed before the authorization URL can be printed (it is in the key label).
fn localtime_file() -> Option<jiff::tz::TimeZone> {
    if !cfg!(unix) || std::env::var_os("TZ").is_some() {
        return None;
    }
    let data = std::fs::read("/etc/localtime").ok()?;
    jiff::tz::TimeZone::tzif("localtime", &data).ok()
}

/// [`key_label_for`] with this machine's host name and today's local date.
pub fn default_key_label(program: &str) -> KeyLabel {
    key_label_for(program, &short_hostname(), &local_date())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn program_host_and_date() {
        assert_eq!(
            key_label_for("openrouter-auth", "ana-laptop", "2026-01-31").as_str(),
            "openrouter-auth on ana-laptop 2026-01-31"
        );
        assert_eq!(
            key_label_for("openrouter-auth", "  ", "2026-01-31").as_str(),
            "openrouter-auth 2026-01-31"
        );
    }

    #[test]
    fn long_or_odd_host_names_stay_within_100_characters() {
        let host = "h".repeat(300);
        let label = key_label_for("openrouter-auth", &host, "2026-01-31");
        assert_eq!(label.as_str().chars().count(), 100);
        assert!(label.as_str().ends_with('…'));
        let label = key_label_for("openrouter-auth", "bad\u{7}host\n", "2026-01-31");
        assert_eq!(label.as_str(), "openrouter-auth on bad host 2026-01-31");
    }

    #[test]
    fn date_is_iso() {
        let d = local_date();
        assert_eq!(d.len(), 10, "{d}");
        assert!(d.chars().enumerate().all(|(i, c)| if i == 4 || i == 7 {
            c == '-'
        } else {
            c.is_ascii_digit()
        }));
        let label = default_key_label("openrouter-auth");
        assert!(label.as_str().starts_with("openrouter-auth "));
        assert!(label.as_str().ends_with(&d));
    }
}
