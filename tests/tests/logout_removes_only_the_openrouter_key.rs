//! Issue 6, point 9: `logout [--store KIND | --all]` removes only the OpenRouter key from the
//! chosen store(s) — other opencode providers and other dotenv lines stay byte-identical —
//! prints the key's page, and says plainly that removing it here does not revoke it.
#![cfg(unix)]

mod support;

use std::path::Path;

use support::*;

const BASE: &str = "https://openrouter.ai";

/// opencode's own layout (`JSON.stringify(x, null, 2)`, no final newline) with other
/// providers around the OpenRouter entry.
fn opencode_auth(key: &str) -> String {
    format!(
        r#"{{
  "anthropic": {{
    "type": "oauth",
    "refresh": "rt-abc",
    "access": "at-def",
    "expires": 1767225600000
  }},
  "openrouter": {{
    "type": "api",
    "key": "{key}"
  }},
  "github-copilot": {{
    "type": "oauth",
    "refresh": "gho_x",
    "access": "",
    "expires": 0
  }}
}}"#
    )
}

const OPENCODE_WITHOUT_OPENROUTER: &str = r#"{
  "anthropic": {
    "type": "oauth",
    "refresh": "rt-abc",
    "access": "at-def",
    "expires": 1767225600000
  },
  "github-copilot": {
    "type": "oauth",
    "refresh": "gho_x",
    "access": "",
    "expires": 0
  }
}"#;

/// A dotenv file with comments, CRLF endings, other variables and no final newline.
fn dotenv(key: &str) -> Vec<u8> {
    format!(
        "# aider keys\r\nANTHROPIC_API_KEY=sk-ant-123 # work\r\nexport OPENROUTER_API_KEY=\"{key}\"\r\n\r\n  OTHER='x y'\r\nLAST=1"
    )
    .into_bytes()
}

const DOTENV_WITHOUT_OPENROUTER: &[u8] =
    b"# aider keys\r\nANTHROPIC_API_KEY=sk-ant-123 # work\r\n\r\n  OTHER='x y'\r\nLAST=1";

fn opencode_path(home: &Path) -> std::path::PathBuf {
    home.join(".local/share/opencode/auth.json")
}

fn aider_path(home: &Path) -> std::path::PathBuf {
    home.join(".aider/oauth-keys.env")
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn logout_from_opencode_keeps_every_other_provider_byte_identical() {
    let home = tempfile::tempdir().unwrap();
    write(
        &opencode_path(home.path()),
        opencode_auth(FAKE_KEY).as_bytes(),
    );
    let f = run(
        home.path(),
        &["logout", "--store", "opencode", "--base-url", BASE],
    );
    assert_eq!(f.code, Some(0), "{f:#?}");
    assert_eq!(
        std::fs::read_to_string(opencode_path(home.path())).unwrap(),
        OPENCODE_WITHOUT_OPENROUTER
    );
    let page = key_page(&BASE.parse().unwrap(), FAKE_KEY);
    assert!(page.starts_with("https://openrouter.ai/keys/"), "{page}");
    assert!(f.stderr.contains(&page), "{}", f.stderr);
    assert!(
        f.stderr.contains("Removing it here does not revoke it"),
        "{}",
        f.stderr
    );
    assert!(!f.stderr.contains(FAKE_KEY));
}

#[test]
fn logout_from_aider_keeps_every_other_line_byte_identical() {
    let home = tempfile::tempdir().unwrap();
    write(&aider_path(home.path()), &dotenv(FAKE_KEY));
    let f = run(
        home.path(),
        &["logout", "--store", "aider", "--base-url", BASE],
    );
    assert_eq!(f.code, Some(0), "{f:#?}");
    assert_eq!(
        std::fs::read(aider_path(home.path())).unwrap(),
        DOTENV_WITHOUT_OPENROUTER
    );
    assert!(f.stderr.contains("does not revoke it"), "{}", f.stderr);
}

#[test]
fn logout_all_clears_every_store_and_lists_each_key_page() {
    let home = tempfile::tempdir().unwrap();
    let other = FAKE_KEY.replace("0123", "4567");
    write(
        &opencode_path(home.path()),
        opencode_auth(FAKE_KEY).as_bytes(),
    );
    write(&aider_path(home.path()), &dotenv(&other));
    let creds = home.path().join(".config/openrouter-auth/credentials.json");
    write(
        &creds,
        format!(
            "{{\n  \"openrouter\": {{\n    \"api_key\": \"{FAKE_KEY}\"\n  }},\n  \"keep\": 1\n}}\n"
        )
        .as_bytes(),
    );
    let f = run(
        home.path(),
        &["logout", "--all", "--json", "--base-url", BASE],
    );
    assert_eq!(f.code, Some(0), "{f:#?}");
    let ev = f.event("logged_out");
    let removed = ev["removed"].as_array().unwrap();
    let specs: Vec<&str> = removed
        .iter()
        .map(|r| r["spec"].as_str().unwrap())
        .collect();
    assert_eq!(specs, ["file", "opencode", "aider"], "{ev}");
    assert_eq!(
        removed[2]["key_page"],
        key_page(&BASE.parse().unwrap(), &other)
    );
    assert_eq!(ev["revoked"], false);
    assert_eq!(
        std::fs::read_to_string(opencode_path(home.path())).unwrap(),
        OPENCODE_WITHOUT_OPENROUTER
    );
    assert_eq!(
        std::fs::read(aider_path(home.path())).unwrap(),
        DOTENV_WITHOUT_OPENROUTER
    );
    assert_eq!(
        std::fs::read_to_string(&creds).unwrap(),
        "{\n  \"keep\": 1\n}\n"
    );
    // Human mode: each page and the plain sentence, once per key.
    write(&aider_path(home.path()), &dotenv(&other));
    write(
        &opencode_path(home.path()),
        opencode_auth(FAKE_KEY).as_bytes(),
    );
    let f = run(home.path(), &["logout", "--all", "--base-url", BASE]);
    assert_eq!(f.code, Some(0), "{f:#?}");
    assert_eq!(
        f.stderr.matches("does not revoke it").count(),
        2,
        "{}",
        f.stderr
    );
    assert!(f.stderr.contains(&key_page(&BASE.parse().unwrap(), &other)));
}

#[test]
fn logout_with_nothing_stored_changes_nothing_and_points_elsewhere() {
    let home = tempfile::tempdir().unwrap();
    write(
        &opencode_path(home.path()),
        opencode_auth(FAKE_KEY).as_bytes(),
    );
    // Default store (`file`) is empty; the key is in opencode.
    let f = run(home.path(), &["logout", "--base-url", BASE]);
    assert_eq!(f.code, Some(0), "{f:#?}");
    assert!(f.stderr.contains("nothing removed"), "{}", f.stderr);
    assert!(f.stderr.contains("--store opencode"), "{}", f.stderr);
    assert_eq!(
        std::fs::read_to_string(opencode_path(home.path())).unwrap(),
        opencode_auth(FAKE_KEY)
    );
}

#[test]
fn status_and_logout_refuse_the_stdout_store() {
    let home = tempfile::tempdir().unwrap();
    for cmd in ["status", "logout"] {
        let f = run(home.path(), &[cmd, "--store", "stdout"]);
        assert_eq!(f.code, Some(2), "{f:#?}");
        assert!(f.stderr.contains("keeps no key"), "{}", f.stderr);
    }
}

/// `logout --json` that fails (a credentials file that is not JSON) exits 1 and says why in
/// its JSON event: a script reading stdout must not get an empty success-looking event.
#[test]
fn json_logout_that_fails_says_why() {
    let home = tempfile::tempdir().unwrap();
    let creds = home.path().join(".config/openrouter-auth/credentials.json");
    write(&creds, b"{not json");
    let f = run(home.path(), &["logout", "--json", "--base-url", BASE]);
    assert_eq!(f.code, Some(1), "{f:#?}");
    let ev = f.event("logged_out");
    let errors = ev["errors"].as_array().expect("an errors array");
    assert_eq!(errors.len(), 1, "{ev}");
    assert_eq!(errors[0]["spec"], "file", "{ev}");
    assert!(
        errors[0]["message"]
            .as_str()
            .unwrap()
            .contains("not valid JSON"),
        "{ev}"
    );
    assert_eq!(std::fs::read(&creds).unwrap(), b"{not json");
}

/// Issue 16: a key from another OpenRouter (here the emulator) has its page there, not on
/// openrouter.ai, even when `logout` and `status` run without that `--base-url`: the
/// credentials file recorded where the key came from.
#[test]
fn the_key_page_is_where_the_key_came_from() {
    let emulator = openrouter_auth_tests::emulator(openrouter_auth_sim::emulator::Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let key = sign_in(&emulator, home.path(), "file");
    let page = key_page(&emulator.base_url(), &key);
    let stored =
        std::fs::read_to_string(home.path().join(".config/openrouter-auth/credentials.json"))
            .unwrap();
    assert!(
        stored.contains(&format!("\"base_url\": \"{}\"", emulator.base_url())),
        "{stored}"
    );

    // `status` against another OpenRouter (a second emulator, which does not know the key):
    // the key page still points where the key can be revoked.
    let other = openrouter_auth_tests::emulator(openrouter_auth_sim::emulator::Mode::Redirect);
    let f = run(
        home.path(),
        &["status", "--json", "--base-url", other.base_url().as_str()],
    );
    assert_eq!(f.event("status")["key_page"], page.as_str(), "{f:#?}");

    let f = run(home.path(), &["logout", "--json"]);
    assert_eq!(f.code, Some(0), "{f:#?}");
    assert_eq!(
        f.event("logged_out")["removed"][0]["key_page"],
        page.as_str()
    );
    let f = {
        sign_in(&emulator, home.path(), "file");
        run(home.path(), &["logout"])
    };
    assert_eq!(f.code, Some(0), "{f:#?}");
    let page = key_page(
        &emulator.base_url(),
        &emulator.issued_keys().last().unwrap().key,
    );
    assert!(f.stderr.contains(&page), "{}", f.stderr);
    assert!(
        !f.stderr.contains(&key_page(&BASE.parse().unwrap(), &key)),
        "{}",
        f.stderr
    );
    assert!(
        !f.stderr.contains("https://openrouter.ai/keys/"),
        "{}",
        f.stderr
    );
}
