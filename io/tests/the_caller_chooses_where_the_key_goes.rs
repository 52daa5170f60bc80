//! The caller chooses where the key goes (issue 14 item 1, issue 15 item 2): its own
//! [`KeyStore`], nowhere at all (the key only comes back to it), or several stores from one
//! sign-in, each reported on its own; a store that fails leaves the key with the caller,
//! saying which stores have it.

#[macro_use]
mod common;

use common::*;
use openrouter_auth::core::ApiKey;
use openrouter_auth::{
    KeyDestination, KeyMeta, KeyStore, LoginError, LoginEvent, LoginOptions, SharedKeyStore,
    StoreError, StoreReport, StoreSpec,
};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// An app's own store: the key in memory, nothing on disk.
struct Memory {
    name: &'static str,
    key: Option<ApiKey>,
    meta: Option<KeyMeta>,
    refuse_writes: bool,
    refuse_preflight: bool,
}

impl Memory {
    fn new(name: &'static str) -> Arc<Mutex<Memory>> {
        Arc::new(Mutex::new(Memory {
            name,
            key: None,
            meta: None,
            refuse_writes: false,
            refuse_preflight: false,
        }))
    }

    fn key(store: &Mutex<Memory>) -> Option<String> {
        let g = store.lock().unwrap();
        g.key.as_ref().map(|k| k.expose_secret().to_owned())
    }
}

impl KeyStore for Memory {
    fn describe(&self) -> String {
        format!("the {} app's memory", self.name)
    }

    fn location(&self) -> Option<&Path> {
        None
    }

    fn preflight(&self) -> Result<(), StoreError> {
        match self.refuse_preflight {
            true => Err(StoreError::Custom {
                message: format!("{} is locked", self.describe()),
                source: None,
            }),
            false => Ok(()),
        }
    }

    fn store(&mut self, key: &ApiKey, meta: &KeyMeta) -> Result<StoreReport, StoreError> {
        if self.refuse_writes {
            return Err(StoreError::Custom {
                message: format!("{} is full", self.describe()),
                source: None,
            });
        }
        self.key = Some(key.clone());
        self.meta = Some(meta.clone());
        Ok(StoreReport::new(self.describe()))
    }

    fn load(&self) -> Result<Option<ApiKey>, StoreError> {
        Ok(self.key.clone())
    }

    fn remove(&mut self) -> Result<bool, StoreError> {
        Ok(self.key.take().is_some())
    }
}

fn custom(store: &Arc<Mutex<Memory>>) -> KeyDestination {
    let shared: SharedKeyStore = store.clone();
    KeyDestination::Custom(shared)
}

/// Every file under `dir`.
fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                todo.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out
}

fn sign_in(
    driver: Driver,
    options: LoginOptions,
) -> (Result<openrouter_auth::LoginOutcome, LoginError>, Visit) {
    let mut login = Running::start(driver, options);
    let callback_url = login.callback_url();
    let visit = come_back(&callback_url, CODE);
    (login.finish(), visit)
}

fn an_apps_own_store_receives_the_key(driver: Driver) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let mine = Memory::new("editor");
    let (result, visit) = sign_in(
        driver,
        options(&stand_in, dir.path()).stores(vec![custom(&mine)]),
    );
    let done = result.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(Memory::key(&mine).as_deref(), Some(KEY));
    assert_eq!(
        mine.lock()
            .unwrap()
            .meta
            .as_ref()
            .unwrap()
            .user_id
            .as_deref(),
        Some("user_1")
    );
    assert_eq!(done.stored.len(), 1);
    assert_eq!(done.stored[0].description, "the editor app's memory");
    assert!(
        visit
            .page
            .body
            .contains("Delivered to</dt><dd>the editor app&#39;s memory"),
        "the page names the app's store: {}",
        visit.page.body
    );
    assert!(
        files_under(dir.path()).is_empty(),
        "no built-in store was written"
    );
}

fn return_only_writes_nothing(driver: Driver) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let (result, visit) = sign_in(driver, options(&stand_in, dir.path()).return_only());
    let done = result.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        done.key.expose_secret(),
        KEY,
        "the key comes back to the caller"
    );
    assert!(done.stored.is_empty());
    assert!(
        files_under(dir.path()).is_empty(),
        "{:?}",
        files_under(dir.path())
    );
    assert!(
        visit.page.body.contains("Signed in to OpenRouter"),
        "{}",
        visit.page.body
    );
    assert!(
        !visit.page.body.contains("standard output") && !visit.page.body.contains("file"),
        "the page claims a store: {}",
        visit.page.body
    );
}

fn two_stores_get_the_same_key(driver: Driver) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let mine = Memory::new("editor");
    let (result, visit) = sign_in(
        driver,
        options(&stand_in, dir.path()).stores(vec![
            KeyDestination::from(StoreSpec::File(Some(credentials(dir.path())))),
            custom(&mine),
        ]),
    );
    let done = result.unwrap_or_else(|e| panic!("{e}"));
    let file: serde_json::Value =
        serde_json::from_slice(&std::fs::read(credentials(dir.path())).unwrap()).unwrap();
    assert_eq!(file["openrouter"]["api_key"], KEY);
    assert_eq!(Memory::key(&mine).as_deref(), Some(KEY));
    assert_eq!(stand_in.exchanges().len(), 1, "one sign-in, one key");
    assert_eq!(done.stored.len(), 2);
    assert_eq!(
        done.stored[0].path.as_deref(),
        Some(credentials(dir.path()).as_path())
    );
    assert_eq!(done.stored[1].description, "the editor app's memory");
    assert!(
        visit.page.body.contains("credentials file") && visit.page.body.contains("memory"),
        "the page names both: {}",
        visit.page.body
    );
}

fn a_failing_store_leaves_the_key_with_the_caller(driver: Driver) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let good = Memory::new("editor");
    let full = Memory::new("agent");
    full.lock().unwrap().refuse_writes = true;
    let (result, visit) = sign_in(
        driver,
        options(&stand_in, dir.path()).stores(vec![custom(&good), custom(&full)]),
    );
    match result {
        Err(LoginError::KeyNotStored {
            key,
            reason,
            stores,
            ..
        }) => {
            assert_eq!(key.expose_secret(), KEY, "the key is handed over");
            assert!(
                reason.contains(
                    "not stored in the agent app's memory: the agent app's memory is full"
                ),
                "{reason}"
            );
            assert!(
                reason.contains("stored in the editor app's memory"),
                "says which store has it: {reason}"
            );
            assert!(!reason.contains(KEY), "{reason}");
            assert_eq!(stores.len(), 2);
            assert_eq!(stores[0].store, "the editor app's memory");
            assert!(stores[0].stored());
            assert_eq!(stores[1].store, "the agent app's memory");
            assert!(matches!(stores[1].result, Err(StoreError::Custom { .. })));
        }
        other => panic!("expected KeyNotStored, got {other:?}"),
    }
    assert_eq!(Memory::key(&good).as_deref(), Some(KEY));
    assert_eq!(Memory::key(&full), None);
    assert!(
        visit.page.body.contains("the key was not stored"),
        "the browser must not claim success: {}",
        visit.page.body
    );
}

fn every_store_is_checked_before_the_browser_opens(driver: Driver) {
    let stand_in = StandIn::new();
    let dir = tempdir();
    let good = Memory::new("editor");
    let locked = Memory::new("agent");
    locked.lock().unwrap().refuse_preflight = true;
    let mut login = Running::start(
        driver,
        options(&stand_in, dir.path()).stores(vec![custom(&good), custom(&locked)]),
    );
    match login.finish() {
        Err(LoginError::Store(e)) => assert_eq!(e.to_string(), "the agent app's memory is locked"),
        other => panic!("expected a store error, got {other:?}"),
    }
    assert!(
        !login
            .events()
            .iter()
            .any(|e| matches!(e, LoginEvent::AuthorizationUrl { .. })),
        "no authorization URL was shown: {:?}",
        login.events()
    );
    assert!(stand_in.exchanges().is_empty());
    assert_eq!(Memory::key(&good), None);
}

both_drivers!(
    an_apps_own_store_receives_the_key,
    return_only_writes_nothing,
    two_stores_get_the_same_key,
    a_failing_store_leaves_the_key_with_the_caller,
    every_store_is_checked_before_the_browser_opens,
);

/// Issue 14.5: the defaults read no environment. The process has a home directory (the test
/// runner's), yet the default options know none; the caller passes the snapshot explicitly.
#[test]
fn default_options_read_no_environment() {
    assert!(
        std::env::var_os("HOME").is_some(),
        "the test needs a HOME to ignore"
    );
    let options = openrouter_auth::LoginOptions::default();
    assert_eq!(options.store_env.home, None);
    assert_eq!(options.store_env.config_dir, None);
    assert!(options.detect_headless.is_none());
    let explicit = options.store_env(openrouter_auth::StoreEnv::from_process());
    assert!(explicit.store_env.home.is_some());
}
