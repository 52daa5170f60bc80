//! Issue 16, "The demo lies in one case": every `--fault` of `demo` shows, in every browser
//! mode: the sign-in fails with the fault's exit code and the closing `failed (…)` line on
//! stdout, and no key is said to be signed in.

use std::process::Command;

/// Each fault and the exit code it ends with.
const FAULTS: [(&str, u8); 8] = [
    ("denied", 3),
    ("expired", 5),
    ("server-error", 5),
    ("rate-limited", 5),
    ("conflict", 5),
    ("malformed-json", 5),
    ("no-key", 5),
    ("store-fails", 6),
];

fn demo(args: &[&str]) -> (Option<i32>, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_demo"))
        .args(args)
        .output()
        .expect("the demo runs");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// The browser modes to test: scripted always; Chromium where it is installed.
fn browsers() -> Vec<&'static str> {
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    if std::path::Path::new(&chromium).exists() {
        vec!["scripted", "chromium"]
    } else {
        eprintln!("chromium not installed: only the scripted browser is tested");
        vec!["scripted"]
    }
}

#[test]
fn every_fault_fails_in_every_browser_mode() {
    for browser in browsers() {
        for (fault, code) in FAULTS {
            let (got, stdout, stderr) = demo(&["--browser", browser, "--fault", fault]);
            let what = format!("--browser {browser} --fault {fault}");
            assert_eq!(got, Some(i32::from(code)), "{what}\n{stdout}\n{stderr}");
            let last = stdout.lines().last().unwrap_or_default();
            assert!(
                last.starts_with("failed ("),
                "{what}: no closing failed line:\n{stdout}"
            );
            assert!(!stdout.contains("signed in:"), "{what}:\n{stdout}");
        }
    }
}

#[test]
fn without_a_fault_each_browser_mode_signs_in() {
    for browser in browsers() {
        let (got, stdout, stderr) = demo(&["--browser", browser]);
        assert_eq!(got, Some(0), "--browser {browser}\n{stdout}\n{stderr}");
        assert!(stdout.starts_with("signed in: key sk-or-v1-"), "{stdout}");
    }
}
