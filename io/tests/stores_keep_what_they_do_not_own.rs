//! Where the key lands after a real login: other opencode providers and other dotenv lines
//! survive the merge, the file ends up mode 0600, and a file we cannot parse is left
//! byte-identical: refused before signing in, or, if it broke during the sign-in, with the
//! key still handed to the caller.

#[macro_use]
mod common;

use common::*;
use openrouter_auth::{LoginError, StoreSpec};

/// Runs a whole login with `store` and returns the result and the browser's final page.
fn login_into(
    driver: Driver,
    stand_in: &StandIn,
    dir: &std::path::Path,
    store: StoreSpec,
) -> (Result<openrouter_auth::LoginOutcome, LoginError>, Response) {
    let mut login = Running::start(driver, options(stand_in, dir).store(store));
    let callback_url = login.callback_url();
    let visit = come_back(&callback_url, CODE);
    (login.finish(), visit.page)
}

fn opencode_keeps_other_providers(driver: Driver) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let auth = dir.path().join("xdg/opencode/auth.json");
    std::fs::create_dir_all(auth.parent().unwrap()).unwrap();
    std::fs::write(
        &auth,
        r#"{
  "anthropic": {"type": "oauth", "refresh": "r-token", "access": "a-token", "expires": 1767225600000},
  "openrouter": {"type": "api", "key": "sk-or-v1-old"},
  "openai": {"type": "api", "key": "sk-proj-other"}
}"#,
    )
    .unwrap();
    let (result, page) = login_into(driver, &stand_in, dir.path(), StoreSpec::Opencode);
    let done = result.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(done.stored[0].path.as_deref(), Some(auth.as_path()));
    assert!(
        page.body.contains("Signed in to OpenRouter"),
        "{}",
        page.body
    );
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&auth).unwrap()).unwrap();
    assert_eq!(
        v["openrouter"],
        serde_json::json!({"type": "api", "key": KEY})
    );
    assert_eq!(
        v["anthropic"],
        serde_json::json!({"type": "oauth", "refresh": "r-token", "access": "a-token", "expires": 1767225600000u64})
    );
    assert_eq!(
        v["openai"],
        serde_json::json!({"type": "api", "key": "sk-proj-other"})
    );
    let order: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(order, ["anthropic", "openrouter", "openai"]);
    assert_mode_0600(&auth);
}

fn dotenv_keeps_other_lines(driver: Driver) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let env = dir.path().join("project/.env");
    std::fs::create_dir_all(env.parent().unwrap()).unwrap();
    std::fs::write(
        &env,
        "# local settings\nDATABASE_URL=postgres://localhost/app\nOPENROUTER_API_KEY=\"sk-or-v1-old\"\n\nexport EDITOR=vim\n",
    )
    .unwrap();
    let (result, page) = login_into(
        driver,
        &stand_in,
        dir.path(),
        StoreSpec::EnvFile(env.clone()),
    );
    result.unwrap_or_else(|e| panic!("{e}"));
    assert!(
        page.body.contains("Signed in to OpenRouter"),
        "{}",
        page.body
    );
    assert_eq!(
        std::fs::read_to_string(&env).unwrap(),
        format!(
            "# local settings\nDATABASE_URL=postgres://localhost/app\nOPENROUTER_API_KEY=\"{KEY}\"\n\nexport EDITOR=vim\n"
        )
    );
    assert_mode_0600(&env);
}

/// A hand-edited, broken opencode `auth.json`: a trailing comma and a comment.
const BROKEN_AUTH_JSON: &[u8] =
    b"{\n  // my keys\n  \"anthropic\": {\"type\": \"api\", \"key\": \"sk-ant-x\"},\n}\n";

/// Writes `contents` to `path` with mode 0640 (unix).
fn write_0640(path: &std::path::Path, contents: &[u8]) {
    std::fs::write(path, contents).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o640)).unwrap();
    }
}

/// The file is byte-identical, keeps mode 0640, and nothing was left beside it.
fn assert_left_alone(auth: &std::path::Path) {
    assert_eq!(std::fs::read(auth).unwrap(), BROKEN_AUTH_JSON);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(auth).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o640, "the file we did not write keeps its mode");
    }
    let names: Vec<_> = std::fs::read_dir(auth.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["auth.json"], "no temporary or probe file is left");
}

fn unparseable_auth_json_is_refused_before_signing_in(driver: Driver) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let auth = dir.path().join("xdg/opencode/auth.json");
    std::fs::create_dir_all(auth.parent().unwrap()).unwrap();
    write_0640(&auth, BROKEN_AUTH_JSON);
    let mut login = Running::start(
        driver,
        options(&stand_in, dir.path()).store(StoreSpec::Opencode),
    );
    match login.finish() {
        Err(LoginError::Store(e)) => {
            let msg = e.to_string();
            assert!(msg.contains("auth.json"), "{msg}");
            assert!(!msg.contains("sk-ant-x"), "{msg}");
        }
        other => panic!("expected a store error before signing in, got {other:?}"),
    }
    assert!(stand_in.exchanges().is_empty(), "no key may be minted");
    assert_left_alone(&auth);
}

fn auth_json_broken_during_sign_in_is_left_alone_and_the_key_handed_out(driver: Driver) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let auth = dir.path().join("xdg/opencode/auth.json");
    std::fs::create_dir_all(auth.parent().unwrap()).unwrap();
    let mut login = Running::start(
        driver,
        options(&stand_in, dir.path()).store(StoreSpec::Opencode),
    );
    let callback_url = login.callback_url();
    // Someone hand-edits the file while the browser is open.
    write_0640(&auth, BROKEN_AUTH_JSON);
    let page = come_back(&callback_url, CODE).page;
    match login.finish() {
        Err(LoginError::KeyNotStored { key, reason, .. }) => {
            assert_eq!(key.expose_secret(), KEY, "the key must still be handed out");
            assert!(reason.contains("auth.json"), "{reason}");
            assert!(!reason.contains("sk-ant-x"), "{reason}");
        }
        other => panic!("expected KeyNotStored, got {other:?}"),
    }
    assert!(
        page.body.contains("the key was not stored"),
        "the browser must not claim success: {}",
        page.body
    );
    assert_left_alone(&auth);
}

/// An append-only directory: files can be created there but not deleted or renamed over.
/// The store check refuses it (its probe file cannot be deleted) and says so; and if the write
/// gets there anyway, its error names the temporary file that still holds the key.
#[cfg(target_os = "linux")]
#[test]
fn append_only_directory_is_refused_and_a_stuck_temp_file_is_named() {
    use openrouter_auth::{CredentialsFileStore, KeyMeta, KeyStore, StoreError};
    let dir = tempdir();
    let locked = dir.path().join("locked");
    std::fs::create_dir(&locked).unwrap();
    let target = locked.join("credentials.json");
    std::fs::write(&target, b"{}").unwrap();
    let Some(_guard) = Chattr::set(&locked, 'a') else {
        eprintln!("skipped: chattr +a is not available here");
        return;
    };
    let mut store = CredentialsFileStore::new(&target);
    let err = store.preflight().unwrap_err().to_string();
    assert!(err.contains("delete a probe file"), "{err}");
    assert!(err.contains(&locked.display().to_string()), "{err}");
    let err = store
        .store(
            &openrouter_auth::core::ApiKey::new(KEY),
            &KeyMeta::default(),
        )
        .unwrap_err();
    let msg = err.to_string();
    let StoreError::TempLeft { temp, .. } = &err else {
        panic!("expected TempLeft, got {err:?}");
    };
    let left = std::fs::read_to_string(temp).unwrap();
    assert!(
        left.contains(KEY),
        "the named file is the one holding the key"
    );
    assert!(msg.contains(&temp.display().to_string()), "{msg}");
    assert!(!msg.contains(KEY), "{msg}");
    assert_eq!(std::fs::read(&target).unwrap(), b"{}");
}

both_drivers!(
    opencode_keeps_other_providers,
    dotenv_keeps_other_lines,
    unparseable_auth_json_is_refused_before_signing_in,
    auth_json_broken_during_sign_in_is_left_alone_and_the_key_handed_out,
);
