//! A tokio app that signs in with OpenRouter the way an agent or editor would, under its own
//! name: the key goes
//! into the app's own storage (here a keychain-like map keyed by API URL, as Zed keeps it),
//! nothing is written to this crate's stores and nothing is printed but the app's own
//! lines; the code exchange and the key check go through the app's own `reqwest::Client`.
//!
//! `cargo run -p openrouter-auth --example tokio_app`; `OPENROUTER_AUTH_BASE_URL` points it
//! at another OpenRouter (an emulator).

use openrouter_auth::core::{ApiKey, AppName};
use openrouter_auth::{
    login_async, CancelHandle, KeyMeta, KeyStore, LoginEvent, LoginOptions, SharedKeyStore,
    StoreError, StoreReport,
};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

/// The app's own secret storage: one entry per API URL.
#[derive(Default)]
struct AppKeychain {
    api_url: String,
    entries: BTreeMap<String, ApiKey>,
}

impl KeyStore for AppKeychain {
    fn describe(&self) -> String {
        format!("Acme Agent's keychain entry for {}", self.api_url)
    }

    fn location(&self) -> Option<&Path> {
        None
    }

    fn store(&mut self, key: &ApiKey, _meta: &KeyMeta) -> Result<StoreReport, StoreError> {
        self.entries.insert(self.api_url.clone(), key.clone());
        Ok(StoreReport::new(self.describe()))
    }

    fn load(&self) -> Result<Option<ApiKey>, StoreError> {
        Ok(self.entries.get(&self.api_url).cloned())
    }

    fn remove(&mut self) -> Result<bool, StoreError> {
        Ok(self.entries.remove(&self.api_url).is_some())
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base_url: url::Url = std::env::var("OPENROUTER_AUTH_BASE_URL")
        .unwrap_or_else(|_| "https://openrouter.ai".into())
        .parse()?;
    // The app's own client: its User-Agent, its proxy and TLS settings; no redirects.
    let client = reqwest::Client::builder()
        .user_agent("acme-agent/1.0")
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let keychain = Arc::new(Mutex::new(AppKeychain {
        api_url: base_url.to_string(),
        ..AppKeychain::default()
    }));
    let store: SharedKeyStore = keychain.clone();
    let options = LoginOptions::default()
        .base_url(base_url)
        // The app's name on the browser pages, in the key's label and in the User-Agent.
        .app_name(AppName::new("Acme Agent")?)
        .store(store)
        .async_transport(Arc::new(client));
    let observer = Box::new(|event: LoginEvent| {
        if let LoginEvent::AuthorizationUrl { url, .. } = event {
            println!("Acme Agent: open {url} to sign in");
        }
    });
    let done = login_async(options, observer, CancelHandle::new()).await?;
    let kept = keychain.lock().unwrap().load()?.map(|k| k.hint());
    println!(
        "Acme Agent: signed in; key {} kept in {} ({})",
        done.key.hint(),
        done.stored[0].description,
        if kept.as_deref() == Some(done.key.hint().as_str()) {
            "read back"
        } else {
            "missing"
        }
    );
    if let Some(Ok(info)) = &done.key_check {
        println!("Acme Agent: OpenRouter knows the key as {:?}", info.label);
    }
    Ok(())
}
