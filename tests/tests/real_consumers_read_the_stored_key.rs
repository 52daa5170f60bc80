//! Issue 15, point 5: after one `login --store <consumer>` against the emulator, the consumer
//! itself sees the key, and what it already had is kept. Each test seeds the consumer's file
//! with another entry, signs in, runs the real program (installed from the package registries
//! by `.ci/install-consumers` into `$OPENROUTER_AUTH_CONSUMERS_BIN`), and checks both.
//!
//! A program that is not installed skips its test with a message, unless
//! `OPENROUTER_AUTH_REQUIRE_CONSUMERS=1` (set by `.ci/run`), where it fails.
//!
//! crush (npm `@charmland/crush` downloads its binary from GitHub in a postinstall step, which
//! the registries-only network here refuses) and goose (not published on npm or PyPI) cannot
//! be installed: their tests check the file against the format crush's and goose's own source
//! read and write (crush: `providers.<id>.api_key` in its data config, set by its
//! `SetProviderAPIKey`; goose: `serde_yaml` of its secrets map in `secrets.yaml`).
#![cfg(unix)]

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use openrouter_auth_sim::emulator::Mode;
use openrouter_auth_tests::{emulator, file_mode, Browser};
use support::*;

/// The real program `name`: in `$OPENROUTER_AUTH_CONSUMERS_BIN`, else on `PATH`. `None`
/// (with a message) when absent and not required; a panic when required.
fn consumer(name: &str) -> Option<PathBuf> {
    let from_env = std::env::var_os("OPENROUTER_AUTH_CONSUMERS_BIN")
        .map(|dir| PathBuf::from(dir).join(name))
        .filter(|p| p.is_file());
    let found = from_env.or_else(|| {
        std::env::var_os("PATH").and_then(|path| {
            std::env::split_paths(&path)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
    });
    if found.is_none() {
        let required = std::env::var("OPENROUTER_AUTH_REQUIRE_CONSUMERS").as_deref() == Ok("1");
        assert!(
            !required,
            "`{name}` is not installed (OPENROUTER_AUTH_REQUIRE_CONSUMERS=1): run .ci/install-consumers and set OPENROUTER_AUTH_CONSUMERS_BIN"
        );
        eprintln!("skipped: `{name}` is not installed (see .ci/install-consumers)");
    }
    found
}

/// Runs the consumer with `home` as its whole world (HOME and the XDG directories in it, no
/// colour, no key from the environment); returns (exit code, stdout, stderr).
fn run_consumer(program: &Path, home: &Path, args: &[&str]) -> (i32, String, String) {
    let mut c = Command::new(program);
    c.args(args)
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join(".config"))
        .env("XDG_DATA_HOME", home.join(".local/share"))
        .env("XDG_CACHE_HOME", home.join(".cache"))
        .env("XDG_STATE_HOME", home.join(".local/state"))
        .env("NO_COLOR", "1")
        .env("TERM", "dumb")
        .stdin(Stdio::null());
    for var in [
        "OPENROUTER_API_KEY",
        "LLM_USER_PATH",
        "OPENCODE_CONFIG",
        "LLM_OPENROUTER_KEY",
    ] {
        c.env_remove(var);
    }
    let out = c.output().expect("run the consumer");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// `login --store <store>` against the emulator with extra environment; returns the key.
fn sign_in_with(
    emulator: &openrouter_auth_sim::emulator::Emulator,
    home: &Path,
    store: &str,
    env: &[(&str, &str)],
) -> String {
    let mut r = Run::login(
        &emulator.base_url(),
        home,
        store,
        &["--no-browser"],
        env,
        Stdin::Null,
    );
    let url = r.authorization_url();
    Browser::new().follow(&url);
    let f = r.finish();
    assert_eq!(f.code, Some(0), "{f:#?}");
    emulator.issued_keys().last().expect("a key").key.clone()
}

#[test]
fn llm_keys_get_openrouter_prints_the_key_and_other_keys_stay() {
    let Some(llm) = consumer("llm") else { return };
    let home = tempfile::tempdir().unwrap();
    // Seed with llm itself: another provider's key, in llm's default location.
    let (code, _, err) = run_consumer(
        &llm,
        home.path(),
        &["keys", "set", "openai", "--value", "sk-openai-seeded"],
    );
    assert_eq!(code, 0, "{err}");
    let (_, path, _) = run_consumer(&llm, home.path(), &["keys", "path"]);
    assert_eq!(
        path.trim(),
        home.path()
            .join(".config/io.datasette.llm/keys.json")
            .display()
            .to_string(),
        "llm's own idea of where keys.json is = this store's default"
    );

    let emulator = emulator(Mode::Redirect);
    let key = sign_in_with(&emulator, home.path(), "llm", &[]);

    let (code, out, err) = run_consumer(&llm, home.path(), &["keys", "get", "openrouter"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("{key}\n"));
    let (code, out, err) = run_consumer(&llm, home.path(), &["keys", "list"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "openai\nopenrouter\n");
    let (_, out, _) = run_consumer(&llm, home.path(), &["keys", "get", "openai"]);
    assert_eq!(out, "sk-openai-seeded\n");

    // `token --store llm` and `logout --store llm` agree with llm.
    let f = run(home.path(), &["token", "--store", "llm"]);
    assert_eq!(f.stdout, format!("{key}\n"), "{f:#?}");
    let f = run(home.path(), &["logout", "--store", "llm"]);
    assert_eq!(f.code, Some(0), "{f:#?}");
    let (code, _, err) = run_consumer(&llm, home.path(), &["keys", "get", "openrouter"]);
    assert_ne!(code, 0);
    assert!(err.contains("No key found with name 'openrouter'"), "{err}");
    let (_, out, _) = run_consumer(&llm, home.path(), &["keys", "get", "openai"]);
    assert_eq!(out, "sk-openai-seeded\n");
}

#[test]
fn llm_openrouter_plugin_is_installed_to_read_that_key() {
    // The plugin reads the key llm keeps under "openrouter" (`llm keys set openrouter`).
    let Some(llm) = consumer("llm") else { return };
    let home = tempfile::tempdir().unwrap();
    let (code, out, err) = run_consumer(&llm, home.path(), &["plugins"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"llm-openrouter\""), "{out}");
}

#[test]
fn opencode_auth_list_shows_the_openrouter_credential_and_the_seeded_one() {
    let Some(opencode) = consumer("opencode") else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let auth = home.path().join(".local/share/opencode/auth.json");
    std::fs::create_dir_all(auth.parent().unwrap()).unwrap();
    // As opencode writes it (JSON.stringify(x, null, 2)).
    let seeded =
        "{\n  \"anthropic\": {\n    \"type\": \"api\",\n    \"key\": \"sk-ant-seeded\"\n  }\n}";
    std::fs::write(&auth, seeded).unwrap();
    let (code, before, err) = run_consumer(&opencode, home.path(), &["auth", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(before.contains("Anthropic"), "{before}");
    assert!(!before.contains("OpenRouter"), "{before}");

    let emulator = emulator(Mode::Redirect);
    let key = sign_in_with(&emulator, home.path(), "opencode", &[]);

    let (code, after, err) = run_consumer(&opencode, home.path(), &["auth", "list"]);
    assert_eq!(code, 0, "{err}");
    let plain = strip_ansi(&after);
    assert!(plain.contains("OpenRouter api"), "{plain}");
    assert!(plain.contains("Anthropic api"), "{plain}");
    assert!(plain.contains("2 credentials"), "{plain}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&auth).unwrap()).unwrap();
    assert_eq!(v["openrouter"]["key"], key.as_str());
    assert_eq!(v["anthropic"]["key"], "sk-ant-seeded");
}

/// Text without ANSI escape sequences (opencode colours its list even with NO_COLOR).
fn strip_ansi(s: &str) -> String {
    let mut out = String::new();
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if c.is_ascii_alphabetic() {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

#[test]
fn crush_data_config_gets_the_key_where_crush_reads_it_and_keeps_the_rest() {
    // Tested against the format crush's source reads and writes (see the module docs).
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join(".local/share/crush/crush.json");
    std::fs::create_dir_all(data.parent().unwrap()).unwrap();
    std::fs::write(
        &data,
        r#"{"providers": {"anthropic": {"api_key": "sk-ant-seeded"}}, "options": {"debug": false}}"#,
    )
    .unwrap();
    let emulator = emulator(Mode::Redirect);
    let key = sign_in_with(&emulator, home.path(), "crush", &[]);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&data).unwrap()).unwrap();
    assert_eq!(
        v,
        serde_json::json!({
            "providers": {
                "anthropic": {"api_key": "sk-ant-seeded"},
                "openrouter": {"api_key": key},
            },
            "options": {"debug": false},
        })
    );
    assert_eq!(file_mode(&data), 0o600);
    let f = run(home.path(), &["token", "--store", "crush"]);
    assert_eq!(f.stdout, format!("{key}\n"), "{f:#?}");
    let f = run(home.path(), &["logout", "--store", "crush"]);
    assert_eq!(f.code, Some(0), "{f:#?}");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&data).unwrap()).unwrap();
    assert_eq!(
        v["providers"],
        serde_json::json!({"anthropic": {"api_key": "sk-ant-seeded"}})
    );
}

#[test]
fn goose_secrets_file_gets_the_key_and_keeps_the_other_secrets() {
    // Tested against the format goose's source reads and writes (see the module docs).
    let home = tempfile::tempdir().unwrap();
    let secrets = home.path().join(".config/goose/secrets.yaml");
    std::fs::create_dir_all(secrets.parent().unwrap()).unwrap();
    std::fs::write(&secrets, "ANTHROPIC_API_KEY: sk-ant-seeded\n").unwrap();
    let env = [("GOOSE_DISABLE_KEYRING", "1")];
    let emulator = emulator(Mode::Redirect);
    let key = sign_in_with(&emulator, home.path(), "goose", &env);
    assert_eq!(
        std::fs::read_to_string(&secrets).unwrap(),
        format!("ANTHROPIC_API_KEY: sk-ant-seeded\nOPENROUTER_API_KEY: {key}\n")
    );
    assert_eq!(file_mode(&secrets), 0o600);
    let f = Run::start(
        home.path(),
        &["token", "--store", "goose"],
        &env,
        Stdin::Null,
    )
    .finish();
    assert_eq!(f.stdout, format!("{key}\n"), "{f:#?}");
    // Without a keychain (no D-Bus session here) goose uses the file even when its keyring
    // is not turned off, and so does the store.
    let f = run(home.path(), &["token", "--store", "goose"]);
    assert_eq!(f.stdout, format!("{key}\n"), "{f:#?}");
    let f = Run::start(
        home.path(),
        &["logout", "--store", "goose"],
        &env,
        Stdin::Null,
    )
    .finish();
    assert_eq!(f.code, Some(0), "{f:#?}");
    assert_eq!(
        std::fs::read_to_string(&secrets).unwrap(),
        "ANTHROPIC_API_KEY: sk-ant-seeded\n"
    );
}

/// Issue 15, "done when": one `login --store opencode --store aider --store llm` leaves the
/// same key in all three, and the real programs read it: opencode lists it, llm prints it,
/// and aider's file reads back through python-dotenv (what aider loads it with).
#[test]
fn one_login_to_opencode_aider_and_llm_leaves_the_same_key_where_each_program_reads_it() {
    let (Some(opencode), Some(llm)) = (consumer("opencode"), consumer("llm")) else {
        return;
    };
    let home = tempfile::tempdir().unwrap();
    let emulator = emulator(Mode::Redirect);
    let mut r = Run::login(
        &emulator.base_url(),
        home.path(),
        "opencode",
        &["--no-browser", "--store", "aider", "--store", "llm"],
        &[],
        Stdin::Null,
    );
    let url = r.authorization_url();
    Browser::new().follow(&url);
    let f = r.finish();
    assert_eq!(f.code, Some(0), "{f:#?}");
    let issued = emulator.issued_keys();
    assert_eq!(issued.len(), 1, "one sign-in, one key");
    let key = issued[0].key.clone();

    let (code, out, err) = run_consumer(&opencode, home.path(), &["auth", "list"]);
    assert_eq!(code, 0, "{err}");
    assert!(strip_ansi(&out).contains("OpenRouter api"), "{out}");
    let auth = home.path().join(".local/share/opencode/auth.json");
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&auth).unwrap()).unwrap();
    assert_eq!(v["openrouter"]["key"], key.as_str());

    let (code, out, err) = run_consumer(&llm, home.path(), &["keys", "get", "openrouter"]);
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, format!("{key}\n"));

    let env_file = home.path().join(".aider/oauth-keys.env");
    let out = Command::new("python3")
        .args([
            "-c",
            "import sys; from dotenv import dotenv_values; print(dotenv_values(sys.argv[1])['OPENROUTER_API_KEY'])",
        ])
        .arg(&env_file)
        .output()
        .expect("python3 with python-dotenv (.ci/run installs it)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), format!("{key}\n"));
    assert_eq!(file_mode(&env_file) & 0o077, 0, "the env file is private");
}
