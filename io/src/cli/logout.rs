//! `logout`: remove the stored key from this machine (it is not revoked).

use super::args::LogoutArgs;
use super::stores::{find_keys, known_stores, refuse_stdout};
use super::ui::Ui;
use crate::exit;
use openrouter_auth::{StoreEnv, StoreError, StoreSpec};

pub fn run(args: LogoutArgs) -> u8 {
    let ui = Ui::new(args.common.json);
    let env = StoreEnv::from_process();
    let base = &args.common.base_url;
    let specs = if args.all {
        known_stores()
    } else {
        let spec = args.store.clone().unwrap_or_default();
        if let Some(code) = refuse_stdout(&ui, &spec, "remove") {
            return code;
        }
        vec![spec]
    };
    let mut removed = Vec::new();
    let mut not_found = Vec::new();
    let mut errors = Vec::new();
    for spec in &specs {
        let mut store = match openrouter_auth::open_store(spec, &env) {
            Ok(s) => s,
            Err(e) if args.all => {
                tracing::debug!(%spec, error = %e, "store skipped");
                continue;
            }
            Err(e) => {
                let e = exit::store_message(&e);
                ui.line(&format!("error: {e}"));
                errors.push(serde_json::json!({"spec": spec.to_string(), "message": e}));
                continue;
            }
        };
        // The key's page is under the OpenRouter it came from, when the store recorded it.
        let issued_by = store.load_meta().ok().and_then(|m| m.base_url);
        let key = match store.load() {
            Ok(k) => k,
            Err(StoreError::KeyringUnavailable { .. }) if args.all => continue,
            Err(e) => {
                tracing::debug!(error = %e, "could not read the key before removing it");
                None
            }
        };
        match store.remove() {
            Ok(true) => {
                let page = key
                    .as_ref()
                    .map(|k| k.key_page_url(issued_by.as_ref().unwrap_or(base)));
                let hint = key.as_ref().map(|k| k.hint());
                ui.line(&format!(
                    "Removed the OpenRouter key {}from {}.",
                    hint.as_deref().map(|h| format!("{h} ")).unwrap_or_default(),
                    store.describe()
                ));
                removed.push(serde_json::json!({
                    "store": store.describe(), "spec": spec.to_string(),
                    "key_hint": hint, "key_page": page.as_ref().map(|p| p.as_str()),
                }));
                match page {
                    Some(page) => ui.line(&format!(
                        "Removing it here does not revoke it: the key keeps working until you delete it on OpenRouter:\n  {page}"
                    )),
                    None => ui.line(
                        "Removing it here does not revoke it: the key keeps working until you delete it on OpenRouter (https://openrouter.ai/settings/keys).",
                    ),
                }
            }
            Ok(false) => not_found.push(store.describe()),
            Err(e) => {
                let e = exit::store_message(&e);
                ui.line(&format!("error: {e}"));
                errors.push(serde_json::json!({
                    "store": store.describe(), "spec": spec.to_string(), "message": e,
                }));
            }
        }
    }
    let failed = !errors.is_empty();
    if removed.is_empty() && !failed {
        if args.all {
            ui.line("No OpenRouter key found in any store; nothing removed.");
        } else {
            ui.line(&format!(
                "No OpenRouter key in {}; nothing removed.",
                not_found.join("; ")
            ));
            let others: Vec<StoreSpec> = known_stores()
                .into_iter()
                .filter(|s| !specs.contains(s))
                .collect();
            let elsewhere = find_keys(&others, &env, &Ui::new(true)).found;
            if !elsewhere.is_empty() {
                let names: Vec<String> = elsewhere.iter().map(|f| f.spec.to_string()).collect();
                ui.line(&format!(
                    "A key is stored in: {}. Use --store {} or --all.",
                    elsewhere
                        .iter()
                        .map(|f| f.description.as_str())
                        .collect::<Vec<_>>()
                        .join("; "),
                    names[0]
                ));
            }
        }
    }
    ui.json(serde_json::json!({
        "event": "logged_out",
        "removed": removed,
        "not_found": not_found,
        "errors": errors,
        "revoked": false,
        "note": "removing a key here does not revoke it; delete it on its key page",
    }));
    if failed {
        exit::ERROR
    } else {
        exit::OK
    }
}
