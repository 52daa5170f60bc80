//! Issue 15, item 7: `completions <shell>` and `man` come from the same definitions as the
//! parser, and work in the real programs: bash completes a subcommand's flags from the
//! script, `man` renders the page with every subcommand's flags and the exit codes.
#![cfg(unix)]

use std::process::Command;

use openrouter_auth_tests::{cli_binary, Cli};

fn output(args: &[&str]) -> String {
    let home = tempfile::tempdir().unwrap();
    let f = Cli::spawn(home.path(), args).finish();
    assert_eq!(f.code, Some(0), "{f:#?}");
    f.stdout
}

/// What bash's completion function offers for `words` (the last one being completed).
fn bash_completes(words: &[&str]) -> Vec<String> {
    let script = format!(
        "source <('{}' completions bash)\nCOMP_WORDS=({})\nCOMP_CWORD={}\n_openrouter__auth openrouter-auth '{}' '{}'\nprintf '%s\\n' \"${{COMPREPLY[@]}}\"",
        cli_binary().display(),
        words.join(" "),
        words.len() - 1,
        words[words.len() - 1],
        words[words.len() - 2],
    );
    let out = Command::new("bash")
        .args(["--norc", "-c", &script])
        .output()
        .expect("bash runs");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn bash_completes_subcommands_and_their_flags() {
    let subcommands = bash_completes(&["openrouter-auth", "lo"]);
    assert!(subcommands.contains(&"login".to_owned()), "{subcommands:?}");
    assert!(
        subcommands.contains(&"logout".to_owned()),
        "{subcommands:?}"
    );
    let flags = bash_completes(&["openrouter-auth", "login", "--he"]);
    assert!(flags.contains(&"--headless".to_owned()), "{flags:?}");
    let flags = bash_completes(&["openrouter-auth", "status", "--"]);
    assert!(flags.contains(&"--store".to_owned()), "{flags:?}");
    assert!(!flags.contains(&"--headless".to_owned()), "{flags:?}");
}

#[test]
fn other_shells_get_a_script_naming_the_flags() {
    for shell in ["zsh", "fish", "elvish", "powershell"] {
        let script = output(&["completions", shell]);
        assert!(script.contains("headless"), "{shell}: {script}");
        assert!(script.contains("openrouter-auth"), "{shell}");
    }
}

#[test]
fn the_man_page_renders_every_subcommand_and_the_exit_codes() {
    let page = output(&["man"]);
    assert!(page.starts_with(".ie") || page.starts_with(".TH"), "{page}");
    let Ok(mut man) = Command::new("man")
        .args(["-l", "-P", "cat", "-"])
        .env("MANWIDTH", "80")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
    else {
        eprintln!("skipped the rendering: man is not installed");
        return;
    };
    use std::io::Write;
    man.stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = man.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    for needle in [
        "openrouter-auth login",
        "--headless",
        "openrouter-auth status",
        "openrouter-auth token",
        "openrouter-auth logout",
        "--all",
        "Exit codes:",
        "keeps working until you revoke it",
    ] {
        assert!(text.contains(needle), "no {needle:?} in:\n{text}");
    }
}
