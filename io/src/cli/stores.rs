//! What `status`, `token` and `logout` share: the stores to look through, finding keys in
//! them, and the command lines that name a store.

use super::ui::Ui;
use crate::exit;
use openrouter_auth::core;
use openrouter_auth::{StoreEnv, StoreError, StoreSpec};

/// The stores `status` looks through and `logout --all` clears, in order.
pub fn known_stores() -> Vec<StoreSpec> {
    // The keyring even when this build or platform has none: `status` then says it did not
    // look there, and why (the store's load says so at once, without trying).
    vec![
        StoreSpec::File(None),
        StoreSpec::Opencode,
        StoreSpec::Aider,
        StoreSpec::Llm,
        StoreSpec::Crush,
        StoreSpec::Goose,
        StoreSpec::Keyring,
    ]
}

/// A key found in a store.
pub struct Found {
    /// The store; for the key from `OPENROUTER_API_KEY` (`from_env`), the default store.
    pub spec: StoreSpec,
    /// The key comes from the environment variable `OPENROUTER_API_KEY`, not a store.
    pub from_env: bool,
    pub description: String,
    pub key: core::ApiKey,
    /// The OpenRouter the store says the key came from ([`openrouter_auth::KeyMeta::base_url`]).
    pub base_url: Option<url::Url>,
    /// The store's file, when other users can read it.
    pub readable: Option<openrouter_auth::ReadableByOthers>,
}

impl Found {
    /// `key`, as `store` (opened from `spec`) holds it, with what the store recorded about it.
    pub fn in_store(
        spec: &StoreSpec,
        store: &dyn openrouter_auth::KeyStore,
        key: core::ApiKey,
    ) -> Self {
        Found {
            spec: spec.clone(),
            from_env: false,
            description: store.describe(),
            base_url: store.load_meta().ok().and_then(|m| m.base_url),
            readable: store
                .location()
                .and_then(openrouter_auth::readable_by_others),
            key,
        }
    }

    /// The key's page: under the OpenRouter it came from when the store recorded it, else
    /// under `base` (the `--base-url` in use).
    pub fn key_page(&self, base: &url::Url) -> url::Url {
        self.key
            .key_page_url(self.base_url.as_ref().unwrap_or(base))
    }
}

/// What [`find_keys`] saw.
pub struct Search {
    /// The keys, in the order of the stores.
    pub found: Vec<Found>,
    /// Every store looked in (descriptions).
    pub looked_in: Vec<String>,
    /// Stores that could not be read: description and why.
    pub unreadable: Vec<(String, String)>,
    /// Stores not looked in: the keyring without a keychain to talk to (its name and why).
    pub skipped: Vec<(String, String)>,
}

impl Search {
    /// One line per store not looked in, for `status`: "Did not look in …: why.".
    pub fn skipped_lines(&self) -> Vec<String> {
        self.skipped
            .iter()
            .map(|(what, why)| format!("Did not look in the {what}: {why}."))
            .collect()
    }

    /// [`Search::skipped`] for `--json`: [{`store`, `reason`}].
    pub fn skipped_json(&self) -> serde_json::Value {
        self.skipped
            .iter()
            .map(|(what, why)| serde_json::json!({"store": what, "reason": why}))
            .collect::<Vec<_>>()
            .into()
    }
}

/// Looks through `specs`; a store that cannot be opened (no home directory) is skipped
/// quietly, a keyring without a keychain is skipped and listed in [`Search::skipped`], one
/// that cannot be read is reported, skipped and listed in [`Search::unreadable`].
pub fn find_keys(specs: &[StoreSpec], env: &StoreEnv, ui: &Ui) -> Search {
    let mut found = Vec::new();
    let mut looked_in = Vec::new();
    let mut unreadable = Vec::new();
    let mut skipped = Vec::new();
    for spec in specs {
        let Ok(store) = openrouter_auth::open_store(spec, env) else {
            continue;
        };
        match store.load() {
            Ok(Some(key)) => found.push(Found::in_store(spec, store.as_ref(), key)),
            Ok(None) => {}
            Err(StoreError::KeyringUnavailable { reason }) => {
                tracing::debug!(%reason, "keyring skipped");
                skipped.push((openrouter_auth::keyring_name().to_owned(), reason));
                continue;
            }
            Err(e) => {
                let e = exit::store_message(&e);
                ui.line(&format!("warning: skipped {}: {e}", store.describe()));
                unreadable.push((store.describe(), e));
            }
        }
        looked_in.push(store.describe());
    }
    Search {
        found,
        looked_in,
        unreadable,
        skipped,
    }
}

/// The warning about a key file other users can read, with its fix, for a person.
pub fn readable_warning(r: &openrouter_auth::ReadableByOthers) -> String {
    format!(
        "warning: {r}, so they can use the key. Make it private with `chmod 600 {}`.",
        shell_word(&r.path.display().to_string())
    )
}

/// The same for `--json`: `path`, `mode` (octal text, e.g. `"0644"`) and `fix`.
pub fn readable_json(r: &openrouter_auth::ReadableByOthers) -> serde_json::Value {
    serde_json::json!({
        "path": r.path.display().to_string(),
        "mode": format!("{:04o}", r.mode),
        "fix": format!("chmod 600 {}", shell_word(&r.path.display().to_string())),
    })
}

/// What to run about an invalid key in `spec`: commands that name that store (a bare
/// `login --force` would sign in to the default store and leave this one as it is). When the
/// store's file is one that both `login` and `logout` refuse to replace (a symbolic link), it
/// says so instead. Reads only: `status` writes nothing, so this is
/// [`openrouter_auth::check_replaceable`], not `KeyStore::preflight` and its probe.
pub fn replace_hint(spec: &StoreSpec, env: &StoreEnv) -> String {
    let store_arg = store_arg(spec);
    let refused = openrouter_auth::open_store(spec, env)
        .ok()
        .and_then(|s| s.location().map(openrouter_auth::check_replaceable))
        .and_then(Result::err);
    match refused {
        None => format!(
            "Sign in again with `openrouter-auth login --force{store_arg}`, or remove it with `openrouter-auth logout{store_arg}`."
        ),
        Some(e) => format!(
            "This tool will neither replace nor remove it there: {}.",
            exit::store_message(&e)
        ),
    }
}

/// ` --store SPEC` for a command line that must reach `spec` (empty for the default store).
pub fn store_arg(spec: &StoreSpec) -> String {
    if *spec == StoreSpec::default() {
        String::new()
    } else {
        format!(" --store {}", shell_word(&spec.to_string()))
    }
}

/// `word` as one POSIX shell word: as is when it holds only safe characters, else in single
/// quotes.
pub fn shell_word(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./:~=+@%,".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

pub fn refuse_stdout(ui: &Ui, spec: &StoreSpec, what: &str) -> Option<u8> {
    if !matches!(spec, StoreSpec::Stdout) {
        return None;
    }
    let message = format!("`--store stdout` keeps no key, so there is nothing to {what}");
    ui.json(serde_json::json!({"event": "failed", "error": {"kind": "usage", "message": message}}));
    ui.line(&format!("error: {message}"));
    Some(exit::USAGE)
}
