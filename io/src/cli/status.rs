//! `status`: find the stored key and check it with OpenRouter.

use super::args::StatusArgs;
use super::stores::{
    find_keys, known_stores, readable_json, readable_warning, refuse_stdout, replace_hint,
    store_arg, Found,
};
use super::ui::{key_info_json, key_info_lines, Ui};
use crate::exit;
use openrouter_auth::core;
use openrouter_auth::StoreEnv;

/// The environment variable tools read the key from.
const API_KEY_ENV: &str = "OPENROUTER_API_KEY";

pub fn run(args: StatusArgs) -> u8 {
    let ui = Ui::new(args.common.json);
    let env = StoreEnv::from_process();
    let base = &args.common.base_url;
    // What every tool that reads the environment uses first (issue 15, item 4).
    let env_key = std::env::var(API_KEY_ENV)
        .ok()
        .map(|k| k.trim().to_owned())
        .filter(|k| !k.is_empty())
        .map(core::ApiKey::new);
    // Stores not looked in (a keyring without a keychain), said in one line each after the
    // answer, and in `--json` as `skipped`.
    let mut skipped_lines = Vec::new();
    let mut skipped_json = serde_json::Value::Array(Vec::new());
    let mut found = match &args.store {
        Some(spec) => {
            if let Some(code) = refuse_stdout(&ui, spec, "check") {
                return code;
            }
            let loaded = openrouter_auth::open_store(spec, &env).and_then(|store| {
                let key = store.load()?;
                let found = key.map(|key| Found::in_store(spec, store.as_ref(), key));
                Ok((store.describe(), found))
            });
            match loaded {
                Ok((_, Some(found))) => vec![found],
                Ok((description, None)) => {
                    ui.json(serde_json::json!({
                        "event": "status", "state": "missing", "store": description,
                        "looked_in": [description], "found": [],
                    }));
                    ui.result(&format!(
                        "No OpenRouter key in {description}. Run `openrouter-auth login{}`.",
                        store_arg(spec)
                    ));
                    return exit::NO_KEY;
                }
                Err(e) => {
                    let e = exit::store_message(&e);
                    ui.json(serde_json::json!({
                        "event": "status", "state": "error", "message": e,
                    }));
                    ui.line(&format!("error: {e}"));
                    return exit::ERROR;
                }
            }
        }
        None => {
            let search = find_keys(&known_stores(), &env, &ui);
            skipped_lines = search.skipped_lines();
            skipped_json = search.skipped_json();
            let (found, looked_in, unreadable) =
                (search.found, search.looked_in, search.unreadable);
            if found.is_empty() && !unreadable.is_empty() && env_key.is_none() {
                // A store that cannot be read may hold the key, and `login` would refuse to
                // write there too: "no key, run login" would send the user into that error.
                let message = format!(
                    "no OpenRouter key found, but {} could not be read; fix or move it before signing in again",
                    unreadable
                        .iter()
                        .map(|(d, _)| d.as_str())
                        .collect::<Vec<_>>()
                        .join("; ")
                );
                ui.json(serde_json::json!({
                    "event": "status", "state": "error", "message": message,
                    "looked_in": looked_in, "found": [],
                    "unreadable": unreadable.iter().map(|(d, e)| serde_json::json!({"store": d, "message": e})).collect::<Vec<_>>(),
                    "skipped": skipped_json,
                }));
                ui.line(&format!("error: {message}"));
                skipped_lines.iter().for_each(|l| ui.result(l));
                return exit::ERROR;
            }
            if found.is_empty() && env_key.is_none() {
                ui.json(serde_json::json!({
                    "event": "status", "state": "missing", "store": null,
                    "looked_in": looked_in, "found": [], "skipped": skipped_json,
                }));
                ui.result(&format!(
                    "No OpenRouter key found (looked in: {}). Run `openrouter-auth login`.",
                    looked_in.join("; ")
                ));
                skipped_lines.iter().for_each(|l| ui.result(l));
                return exit::NO_KEY;
            }
            found
        }
    };
    // Without --store the environment's key comes first: it is the one tools use.
    if let (None, Some(key)) = (&args.store, &env_key) {
        found.insert(
            0,
            Found {
                spec: openrouter_auth::StoreSpec::default(),
                from_env: true,
                description: format!("the environment variable {API_KEY_ENV}"),
                key: key.clone(),
                base_url: None,
                readable: None,
            },
        );
    }
    // Stored keys that tools reading the environment do not see.
    let shadowed: Vec<&Found> = match &env_key {
        Some(key) => found
            .iter()
            .filter(|f| !f.from_env && f.key.expose_secret() != key.expose_secret())
            .collect(),
        None => Vec::new(),
    };
    let mut reports = Vec::new();
    let mut first_code = None;
    for f in &found {
        let page = f.key_page(base);
        let spec = if f.from_env {
            "env".to_owned()
        } else {
            f.spec.to_string()
        };
        let mut report = serde_json::json!({
            "event": "status", "store": f.description, "spec": spec, "key_hint": f.key.hint(),
            "key_page": page.as_str(),
            "readable_by_others": f.readable.as_ref().map(readable_json),
        });
        if let Some(r) = &f.readable {
            ui.line(&readable_warning(r));
        }
        let code = match openrouter_auth::check_key(base, &f.key) {
            Ok(info) => {
                report["state"] = "valid".into();
                if let (serde_json::Value::Object(r), serde_json::Value::Object(i)) =
                    (&mut report, key_info_json(&info))
                {
                    r.extend(i);
                }
                ui.result(&format!(
                    "Key {} in {} is valid.\n{}",
                    f.key.hint(),
                    f.description,
                    key_info_lines(&info, &page)
                ));
                exit::OK
            }
            Err(e) if e.key_is_invalid() => {
                report["state"] = "invalid".into();
                report["message"] = e.to_string().into();
                ui.result(&format!(
                    "Key {} in {} is NOT valid: {e}.\n  key page:  {page}\n  {}",
                    f.key.hint(),
                    f.description,
                    if f.from_env {
                        format!("Tools use this key first: set {API_KEY_ENV} to a valid key, or unset it to use a stored one.")
                    } else {
                        replace_hint(&f.spec, &env)
                    }
                ));
                exit::KEY_NOT_VALID
            }
            Err(e) => {
                report["state"] = "error".into();
                report["message"] = e.to_string().into();
                ui.result(&format!(
                    "Key {} in {}: {e}.\n  key page:  {page}",
                    f.key.hint(),
                    f.description
                ));
                exit::ERROR
            }
        };
        first_code.get_or_insert(code);
        reports.push(report);
    }
    let mut ev = reports[0].clone();
    for r in &mut reports {
        if let serde_json::Value::Object(m) = r {
            m.shift_remove("event");
        }
    }
    ev["found"] = serde_json::Value::Array(reports);
    ev["skipped"] = skipped_json;
    if !shadowed.is_empty() {
        ev["shadows"] = shadowed
            .iter()
            .map(|f| serde_json::json!({"store": f.description, "key_hint": f.key.hint()}))
            .collect::<Vec<_>>()
            .into();
        for f in &shadowed {
            ui.result(&format!(
                "{API_KEY_ENV} is set to another key than the one in {} ({}): tools that read the environment use {API_KEY_ENV}'s, not the stored one.",
                f.description,
                f.key.hint()
            ));
        }
    }
    skipped_lines.iter().for_each(|l| ui.result(l));
    ui.json(ev);
    first_code.unwrap_or(exit::ERROR)
}
