//! Launching the system browser (RFC 8252 section 4: the system browser, never an embedded
//! web view), without a shell, so a `&` in the URL survives.
//!
//! On Linux and the BSDs the launcher is started here, from `$BROWSER` (its `:`-separated
//! commands, `%s` standing for the URL, as the `webbrowser` crate reads it) or else
//! `xdg-open`, and a thread waits for it: a launcher that exits (one that hands the URL to a
//! running browser, or one that fails to start) is reaped at once instead of staying a
//! defunct process for as long as the sign-in lasts. A text browser named in `$BROWSER`
//! (`w3m`, `lynx`…, which needs the terminal), WSL, and every other platform go through the
//! `webbrowser` crate, which waits for what it runs in the foreground and starts no child on
//! macOS and Windows.

/// Opens `url` in the user's default browser. Errors: why it could not (no browser, no
/// display); the caller has already shown the URL, so the user can open it by hand.
pub fn open(url: &url::Url) -> Result<(), String> {
    #[cfg(all(
        unix,
        not(any(target_os = "macos", target_os = "ios", target_os = "android"))
    ))]
    {
        let browser = std::env::var("BROWSER").ok();
        let wsl = std::env::var_os("WSL_DISTRO_NAME").is_some()
            || std::env::var_os("WSL_INTEROP").is_some();
        if let Some(launched) = reaped::open(url, browser.as_deref(), wsl) {
            return launched.map(drop);
        }
    }
    webbrowser::open(url.as_str()).map_err(|e| e.to_string())
}

#[cfg(all(
    unix,
    not(any(target_os = "macos", target_os = "ios", target_os = "android"))
))]
mod reaped {
    use std::process::{Command, Stdio};

    /// Browsers that run in the terminal: `webbrowser` runs them in the foreground.
    const TEXT_BROWSERS: [&str; 9] = [
        "lynx", "links", "links2", "elinks", "w3m", "eww", "netrik", "retawq", "curl",
    ];

    /// The command lines to try, in order: each `$BROWSER` entry, then `xdg-open URL`.
    /// `None`: leave it to `webbrowser` (a text browser in `$BROWSER`, or WSL, where it
    /// knows how to reach the Windows browser).
    pub(super) fn launchers(
        url: &str,
        browser: Option<&str>,
        wsl: bool,
    ) -> Option<Vec<Vec<String>>> {
        let mut out = Vec::new();
        for entry in browser.unwrap_or_default().split(':') {
            let argv = command_line(entry, url);
            let Some(program) = argv.first() else {
                continue;
            };
            let name = program.rsplit('/').next().unwrap_or(program);
            if TEXT_BROWSERS.contains(&name) {
                return None;
            }
            out.push(argv);
        }
        if wsl {
            return (!out.is_empty()).then_some(out);
        }
        out.push(vec!["xdg-open".to_owned(), url.to_owned()]);
        Some(out)
    }

    /// One `$BROWSER` entry as a command line: split at whitespace, `%s` replaced by the
    /// URL (appended when no `%s` is there), `%c` by `:`, `%%` by `%`.
    fn command_line(entry: &str, url: &str) -> Vec<String> {
        let mut has_url = false;
        let mut argv: Vec<String> = entry
            .split_ascii_whitespace()
            .map(|word| {
                let mut out = String::new();
                let mut chars = word.chars();
                while let Some(c) = chars.next() {
                    if c != '%' {
                        out.push(c);
                        continue;
                    }
                    match chars.next() {
                        Some('s') => {
                            out.push_str(url);
                            has_url = true;
                        }
                        Some('c') => out.push(':'),
                        Some('%') => out.push('%'),
                        Some(other) => {
                            out.push('%');
                            out.push(other);
                        }
                        None => out.push('%'),
                    }
                }
                out
            })
            .collect();
        if !argv.is_empty() && !has_url {
            argv.push(url.to_owned());
        }
        argv
    }

    /// Starts the first launcher that starts and returns its process id; a thread waits for
    /// it, so it never stays defunct. `None`: leave it to `webbrowser` (see [`launchers`], or
    /// none of them could be started).
    pub(super) fn open(
        url: &url::Url,
        browser: Option<&str>,
        wsl: bool,
    ) -> Option<Result<u32, String>> {
        for argv in launchers(url.as_str(), browser, wsl)? {
            let mut cmd = Command::new(&argv[0]);
            cmd.args(&argv[1..])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            let mut child = match cmd.spawn() {
                Ok(child) => child,
                Err(e) => {
                    tracing::debug!(program = %argv[0], error = %e, "browser launcher not started");
                    continue;
                }
            };
            let pid = child.id();
            let program = argv[0].clone();
            let reaper = std::thread::Builder::new()
                .name("openrouter-auth-browser".into())
                .spawn(move || match child.wait() {
                    Ok(status) if status.success() => {}
                    Ok(status) => tracing::debug!(%program, %status, "browser launcher failed"),
                    Err(e) => tracing::debug!(%program, error = %e, "browser launcher lost"),
                });
            if let Err(e) = reaper {
                tracing::debug!(error = %e, "no thread to wait for the browser launcher");
            }
            return Some(Ok(pid));
        }
        None
    }

    #[cfg(all(test, target_os = "linux"))]
    mod tests {
        use super::*;

        const URL: &str = "https://openrouter.ai/auth?callback_url=http%3A%2F%2Flocalhost&state=x";

        #[test]
        fn browser_entries_then_xdg_open() {
            let l = launchers(URL, Some("firefox --new-window %s:chromium"), false).unwrap();
            assert_eq!(
                l,
                [
                    vec!["firefox".to_owned(), "--new-window".into(), URL.into()],
                    vec!["chromium".into(), URL.into()],
                    vec!["xdg-open".into(), URL.into()],
                ]
            );
            assert_eq!(
                launchers(URL, None, false).unwrap(),
                [vec!["xdg-open".to_owned(), URL.into()]]
            );
            assert_eq!(launchers(URL, Some("/usr/bin/w3m"), false), None);
            assert_eq!(launchers(URL, None, true), None);
        }

        /// Issue 16: a browser that fails to start at once is reaped, not left defunct.
        #[test]
        fn a_browser_that_exits_at_once_is_not_left_defunct() {
            use std::os::unix::fs::PermissionsExt;
            let dir = tempfile::tempdir().unwrap();
            let fake = dir.path().join("fake-browser");
            std::fs::write(&fake, "#!/bin/sh\nexit 3\n").unwrap();
            std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
            let url: url::Url = URL.parse().unwrap();
            let pid = open(&url, Some(fake.to_str().unwrap()), false)
                .expect("launched here")
                .expect("started");
            // Our child until it is reaped; a defunct one stays in /proc in state Z.
            let stat = format!("/proc/{pid}/stat");
            let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
            while let Ok(text) = std::fs::read_to_string(&stat) {
                let ours = text
                    .rsplit_once(") ")
                    .and_then(|(_, rest)| rest.split(' ').nth(1))
                    .is_some_and(|ppid| ppid == std::process::id().to_string());
                if !ours {
                    break; // reaped, and the pid already reused by someone else
                }
                assert!(
                    std::time::Instant::now() < deadline,
                    "the browser launcher is still a child of ours: {text}"
                );
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
        }
    }
}
