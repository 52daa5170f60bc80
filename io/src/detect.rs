use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

/// The variables the rule reads.
pub const VARIABLES: [&str; 8] = [
    "BROWSER",
    "SSH_CONNECTION",
    "SSH_TTY",
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "container",
    "WSL_DISTRO_NAME",
    "WSL_INTEROP",
];

/// Files whose existence marks a container (Docker, then Podman).
pub const CONTAINER_MARKERS: [&str; 2] = ["/.dockerenv", "/run/.containerenv"];

/// What the rule looks at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EnvSnapshot {
    /// Environment variables by name (only those [`EnvSnapshot::from_process`] reads matter; others are ignored).
    pub vars: BTreeMap<String, OsString>,
    /// `std::env::consts::OS` of the machine (`linux`, `macos`, `windows`, `freebsd`, …).
    pub os: String,
    /// The first of [`CONTAINER_MARKERS`] that exists, if any.
    pub container_marker: Option<PathBuf>,
}

impl EnvSnapshot {
    /// Reads the process environment and the file system.
    pub fn from_process() -> Self {
        EnvSnapshot {
            vars: VARIABLES
                .iter()
                .filter_map(|name| std::env::var_os(name).map(|v| (name.to_string(), v)))
                .collect(),
            os: std::env::consts::OS.to_string(),
            container_marker: CONTAINER_MARKERS
                .iter()
                .map(Path::new)
                .find(|p| p.exists())
                .map(Path::to_path_buf),
        }
    }

    /// A snapshot with these variables on `os` and no container marker (tests).
    pub fn with_vars(os: &str, vars: &[(&str, &str)]) -> Self {
        EnvSnapshot {
            vars: vars
                .iter()
                .map(|(k, v)| (k.to_string(), OsString::from(v)))
                .collect(),
            os: os.to_string(),
            container_marker: None,
        }
    }

    fn is_set(&self, name: &str) -> bool {
        self.vars.get(name).is_some_and(|v| !v.is_empty())
    }
}

/// Why the rule chose headless sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum HeadlessReason {
    /// An SSH session; `variable` is the one that said so.
    Ssh {
        /// `SSH_CONNECTION` or `SSH_TTY`.
        variable: &'static str,
    },
    /// A container; `evidence` is the marker file or `container=<value>`.
    Container {
        /// What gave it away.
        evidence: String,
    },
    /// No graphical display (Linux or a BSD without `DISPLAY` and `WAYLAND_DISPLAY`).
    NoDisplay,
}

impl fmt::Display for HeadlessReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeadlessReason::Ssh { variable } => {
                write!(f, "SSH session detected ({variable} is set)")
            }
            HeadlessReason::Container { evidence } => {
                write!(f, "container detected ({evidence})")
            }
            HeadlessReason::NoDisplay => {
                f.write_str("no graphical display (neither DISPLAY nor WAYLAND_DISPLAY is set)")
            }
        }
    }
}

/// Applies the rule (see the module doc): `Some(reason)` means prefer headless sign-in.
///
/// # How it works
///
/// Should this sign-in be headless? A pure rule over a snapshot of the environment, so it can
/// be tested without touching the process (PROTOCOL.md section 7: "with no display (SSH,
/// container) … use headless mode").
///
/// The rule, first match wins:
///
/// 0. `BROWSER` is set: something on this machine opens URLs in a browser that reaches its
///    loopback. VS Code Remote (SSH, containers, WSL) and GitHub Codespaces set it to a helper
///    that opens the URL on the user's machine and forwards the port; WSL's `wslview` too. The
///    callback path is kept, whatever follows.
/// 1. `SSH_CONNECTION` or `SSH_TTY` is set: an SSH session. The browser is on another machine
///    and cannot reach this machine's loopback listener.
/// 2. `/.dockerenv` or `/run/.containerenv` exists, or `container` is set (systemd-nspawn,
///    podman, toolbox): a container, whose loopback is not the browser's.
/// 3. Linux or a BSD with neither `DISPLAY` nor `WAYLAND_DISPLAY`: no graphical session, so no
///    browser to launch. WSL is the exception (`WSL_DISTRO_NAME` or `WSL_INTEROP` set): there
///    the Windows browser opens and reaches `localhost`.
///
/// Empty variables count as unset.
pub fn headless_reason(env: &EnvSnapshot) -> Option<HeadlessReason> {
    if env.is_set("BROWSER") {
        return None;
    }
    for variable in ["SSH_CONNECTION", "SSH_TTY"] {
        if env.is_set(variable) {
            return Some(HeadlessReason::Ssh { variable });
        }
    }
    if let Some(marker) = &env.container_marker {
        return Some(HeadlessReason::Container {
            evidence: format!("{} exists", marker.display()),
        });
    }
    if let Some(value) = env.vars.get("container").filter(|v| !v.is_empty()) {
        return Some(HeadlessReason::Container {
            evidence: format!("container={} is set", value.to_string_lossy()),
        });
    }
    let x11_unix = matches!(
        env.os.as_str(),
        "linux" | "freebsd" | "openbsd" | "netbsd" | "dragonfly"
    );
    let wsl = env.is_set("WSL_DISTRO_NAME") || env.is_set("WSL_INTEROP");
    if x11_unix && !wsl && !env.is_set("DISPLAY") && !env.is_set("WAYLAND_DISPLAY") {
        return Some(HeadlessReason::NoDisplay);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(os: &str, vars: &[(&str, &str)]) -> Option<String> {
        headless_reason(&EnvSnapshot::with_vars(os, vars)).map(|r| r.to_string())
    }

    #[test]
    fn ssh_wins_everywhere() {
        let r = reason("macos", &[("SSH_CONNECTION", "10.0.0.2 50000 10.0.0.1 22")]);
        assert_eq!(
            r.as_deref(),
            Some("SSH session detected (SSH_CONNECTION is set)")
        );
        let r = reason("linux", &[("SSH_TTY", "/dev/pts/1"), ("DISPLAY", ":0")]);
        assert_eq!(r.as_deref(), Some("SSH session detected (SSH_TTY is set)"));
        let r = reason("windows", &[("SSH_CONNECTION", "x")]);
        assert!(r.unwrap().starts_with("SSH session"));
    }

    #[test]
    fn empty_variables_count_as_unset() {
        assert_eq!(
            reason("macos", &[("SSH_CONNECTION", ""), ("SSH_TTY", "")]),
            None
        );
        assert_eq!(
            reason("linux", &[("DISPLAY", "")]).as_deref(),
            Some("no graphical display (neither DISPLAY nor WAYLAND_DISPLAY is set)")
        );
    }

    #[test]
    fn linux_needs_a_display() {
        assert_eq!(reason("linux", &[("DISPLAY", ":0")]), None);
        assert_eq!(reason("linux", &[("WAYLAND_DISPLAY", "wayland-0")]), None);
        assert!(reason("linux", &[]).is_some());
        assert!(reason("freebsd", &[]).is_some());
        // Elsewhere a browser needs no DISPLAY.
        assert_eq!(reason("macos", &[]), None);
        assert_eq!(reason("windows", &[]), None);
    }

    #[test]
    fn wsl_opens_the_windows_browser() {
        assert_eq!(reason("linux", &[("WSL_DISTRO_NAME", "Ubuntu")]), None);
        assert_eq!(
            reason("linux", &[("WSL_INTEROP", "/run/WSL/1_interop")]),
            None
        );
        // …but SSH into WSL is still SSH.
        assert!(reason(
            "linux",
            &[("WSL_DISTRO_NAME", "Ubuntu"), ("SSH_CONNECTION", "x")]
        )
        .is_some());
    }

    #[test]
    fn a_browser_helper_keeps_the_callback_path() {
        // VS Code Remote over SSH: SSH_CONNECTION and BROWSER (its forwarding helper).
        assert_eq!(
            reason(
                "linux",
                &[
                    ("SSH_CONNECTION", "10.0.0.2 50000 10.0.0.1 22"),
                    ("BROWSER", "/home/u/.vscode-server/bin/x/helpers/browser.sh"),
                ]
            ),
            None
        );
        // Codespaces: a container without a display, and BROWSER.
        let mut env =
            EnvSnapshot::with_vars("linux", &[("BROWSER", "/vscode/bin/helpers/browser.sh")]);
        env.container_marker = Some(PathBuf::from("/.dockerenv"));
        assert_eq!(headless_reason(&env), None);
        // An empty BROWSER counts as unset.
        assert!(reason("linux", &[("BROWSER", ""), ("SSH_TTY", "/dev/pts/0")]).is_some());
    }

    #[test]
    fn containers() {
        let mut env = EnvSnapshot::with_vars("linux", &[("DISPLAY", ":0")]);
        env.container_marker = Some(PathBuf::from("/.dockerenv"));
        assert_eq!(
            headless_reason(&env).unwrap().to_string(),
            "container detected (/.dockerenv exists)"
        );
        assert_eq!(
            reason("linux", &[("DISPLAY", ":0"), ("container", "podman")]).as_deref(),
            Some("container detected (container=podman is set)")
        );
    }
}
