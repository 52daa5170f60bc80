//! The drivers: run one [`Flow`] against the real world (a loopback server, OpenRouter over
//! reqwest, a browser, a key store) until it finishes.
//!
//! [`login`] blocks the calling thread; [`login_async`] (feature `tokio`) is the same loop on
//! a blocking thread with the HTTP requests on the caller's tokio runtime. Both run the same
//! core and the same loop (`run`): only where the code exchange runs differs. No sign-in
//! decision is made here.
//!
//! Where the key goes is the caller's choice ([`LoginOptions::stores`]): any number of
//! [`KeyDestination`]s, built-in ([`StoreSpec`]) or the caller's own [`KeyStore`]. One
//! sign-in mints one key and writes it to every destination; with none, nothing is written
//! or printed and the key only comes back in [`LoginOutcome::key`].

use crate::detect::{headless_reason, EnvSnapshot, HeadlessReason};
#[cfg(feature = "tokio")]
use crate::key_check::check_key_request_async;
use crate::key_check::{check_key_request, KeyCheckFailure};
use crate::server::{BindError, LoopbackServer};
use crate::store::{
    open_store, KeyMeta, KeyStore, Replace, SeenKey, StoreEnv, StoreError, StoreReport, StoreSpec,
};
use crate::transport::{AsyncTransport, Transport, TransportError};
use mio::Waker;
use openrouter_auth_core::{
    ApiKey, AppName, CallbackHost, ConfigError, ExchangeId, Flow, FlowConfig, FlowError, Handled,
    HttpRequest, KeyInfo, KeyLabel, Outcome, Output, ProductToken, StoreFailure, Time,
};
use rand_chacha::rand_core::SeedableRng;
use std::fmt;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// Everything `login` needs to know. `LoginOptions::default()` signs in to OpenRouter
/// production, any free port, `localhost`, 10 minutes, the default credentials file, and
/// opens the browser; change it with the chained setters (one per field, same name).
///
/// The defaults read no environment variable: the built-in stores find the user's home and
/// config directories only in [`LoginOptions::store_env`], empty by default (a built-in store
/// then fails with [`StoreError::NoHome`] before anything is signed in). Take the process's
/// snapshot explicitly with `.store_env(StoreEnv::from_process())`, and give
/// [`LoginOptions::detect_headless`] an [`EnvSnapshot`] to let the environment choose
/// headless mode.
///
/// ```
/// # use openrouter_auth::{LoginOptions, ReplacePolicy, StoreSpec};
/// let options = LoginOptions::default()
///     .store(StoreSpec::Opencode)
///     .also_store(StoreSpec::Aider)
///     .replace(ReplacePolicy::Refuse)
///     .open_browser(false);
/// assert_eq!(options.stores.len(), 2);
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct LoginOptions {
    /// OpenRouter (or an emulator). Default `https://openrouter.ai`.
    pub base_url: url::Url,
    /// Loopback port; 0 (default) picks a free one.
    pub port: u16,
    /// Host name in the `callback_url`. Default `localhost`.
    pub callback_host: CallbackHost,
    /// The `key_label`; `None`: `<app_name> on <host> <date>`
    /// ([`default_key_label`](crate::default_key_label)).
    pub key_label: Option<KeyLabel>,
    /// The app's display name, on every browser page ("you can return to `<app>`"), in the
    /// default `key_label` and (as a product token, unless `product_token` is set) in the
    /// `User-Agent`. Default `openrouter-auth`.
    pub app_name: AppName,
    /// The product token that leads the `User-Agent` of every request the login sends (the
    /// code exchange, the reachability probe, the key check), e.g. `acme-agent/1.4.2`, before
    /// `openrouter-auth/<version>`. `None` (default): derived from `app_name`
    /// ([`ProductToken::from_app_name`]; none for the default name). The transport must send
    /// the request's `User-Agent` header as given (the default clients do: a header set on the
    /// request replaces a client's own `user_agent`).
    pub product_token: Option<ProductToken>,
    /// A credit limit for the new key, in US dollars, sent as OpenRouter's `limit`
    /// ([`FlowConfig::limit`]); positive and finite, or the login fails at once. `None`
    /// (default): no limit.
    pub limit: Option<f64>,
    /// How long to wait for the browser, in seconds' precision. Default 600 s.
    pub timeout: Duration,
    /// How long the code exchange may take, from sending to the whole answer; past it the login
    /// ends with `FlowError::Network(NetworkError::ExchangeTimedOut { .. })` and a key may exist
    /// (the transport itself gets 2 s more, see [`Transport`]). Default 30 s.
    pub exchange_timeout: Duration,
    /// Where the key goes: every destination gets the same key, in this order. Default: the
    /// credentials file (`StoreSpec::File(None)`). Empty: return-only, nothing is written or
    /// printed and the key comes back in [`LoginOutcome::key`] alone.
    pub stores: Vec<KeyDestination>,
    /// Where the built-in stores look up home and config directories. Default: empty (no
    /// environment is read); [`StoreEnv::from_process`] is the process's.
    pub store_env: StoreEnv,
    /// Launch the system browser (the URL is reported to the observer either way).
    pub open_browser: bool,
    /// Headless mode (OpenRouter's PKCE flow without a `callback_url`): no listener is opened and the authorization URL
    /// has no `callback_url`; the code OpenRouter shows reaches the login through
    /// [`CancelHandle::paste`]. In loopback mode (the default) pasting works too, racing the
    /// browser's callback.
    pub headless: bool,
    /// When `headless` is off, let this snapshot of the environment decide
    /// ([`headless_reason`]: SSH, a container, no display; `BROWSER` set keeps loopback). A
    /// headless choice is reported as [`LoginEvent::HeadlessChosen`] with its reason. `None`
    /// (the default): no detection, loopback unless `headless`.
    pub detect_headless: Option<EnvSnapshot>,
    /// When the loopback listener cannot be opened on any free port (`port` 0), sign in
    /// headless instead of failing, reported as [`LoginEvent::HeadlessFallback`]. With a
    /// fixed `port` a bind failure is always [`LoginError::Bind`]. Default off.
    pub headless_fallback: bool,
    /// What to do about an OpenRouter key a store already holds when the login begins (and
    /// about one that appears meanwhile). Default [`ReplacePolicy::Replace`].
    pub replace: ReplacePolicy,
    /// Check the new key with OpenRouter (`GET /api/v1/key`) after storing it, through the
    /// same HTTP client as the code exchange; the answer is [`LoginOutcome::key_check`]. A
    /// failed check does not fail the login. Default on.
    pub check_key: bool,
    /// The HTTP client [`login`] sends the code exchange with (see
    /// [`Transport`] for what it must guarantee). `None` (default): the default client
    /// ([`blocking_client`](crate::blocking_client); feature `reqwest`).
    pub transport: Option<Arc<dyn Transport>>,
    /// The HTTP client [`login_async`] sends the code exchange with, e.g. the app's own
    /// `reqwest::Client` (with `redirect::Policy::none()`). `None` (default): `transport` on a
    /// thread of its own if that is set, else the default async client
    /// ([`async_client`](crate::async_client); feature `reqwest`).
    pub async_transport: Option<Arc<dyn AsyncTransport>>,
}

impl Default for LoginOptions {
    fn default() -> Self {
        let core = FlowConfig::default();
        Self {
            base_url: core.base_url,
            port: 0,
            callback_host: CallbackHost::Localhost,
            key_label: None,
            app_name: core.app_name,
            product_token: None,
            limit: None,
            timeout: core.callback_timeout,
            exchange_timeout: core.exchange_timeout,
            stores: vec![KeyDestination::Builtin(StoreSpec::default())],
            store_env: StoreEnv::default(),
            open_browser: true,
            headless: false,
            detect_headless: None,
            headless_fallback: false,
            replace: ReplacePolicy::default(),
            check_key: true,
            transport: None,
            async_transport: None,
        }
    }
}

impl LoginOptions {
    /// Sets [`LoginOptions::base_url`].
    pub fn base_url(mut self, base_url: url::Url) -> Self {
        self.base_url = base_url;
        self
    }

    /// Sets [`LoginOptions::port`].
    pub fn port(mut self, port: u16) -> Self {
        self.port = port;
        self
    }

    /// Sets [`LoginOptions::callback_host`].
    pub fn callback_host(mut self, callback_host: CallbackHost) -> Self {
        self.callback_host = callback_host;
        self
    }

    /// Sets [`LoginOptions::key_label`] (a label, or `None`).
    pub fn key_label(mut self, key_label: impl Into<Option<KeyLabel>>) -> Self {
        self.key_label = key_label.into();
        self
    }

    /// Sets [`LoginOptions::app_name`]: the name the browser pages send the user back to, the
    /// start of the default `key_label`, and the product token in the `User-Agent`.
    pub fn app_name(mut self, app_name: AppName) -> Self {
        self.app_name = app_name;
        self
    }

    /// Sets [`LoginOptions::product_token`] (e.g. `ProductToken::new("acme-agent/1.4.2")?`).
    pub fn product_token(mut self, token: impl Into<Option<ProductToken>>) -> Self {
        self.product_token = token.into();
        self
    }

    /// The product token the login's requests carry: [`LoginOptions::product_token`], else
    /// one made from the app's name.
    fn user_agent_token(&self) -> Option<ProductToken> {
        self.product_token.clone().or_else(|| {
            (self.app_name != AppName::default())
                .then(|| ProductToken::from_app_name(&self.app_name))
                .flatten()
        })
    }

    /// Sets [`LoginOptions::limit`] (US dollars, or `None`).
    pub fn limit(mut self, limit: impl Into<Option<f64>>) -> Self {
        self.limit = limit.into();
        self
    }

    /// Sets [`LoginOptions::timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets [`LoginOptions::exchange_timeout`].
    pub fn exchange_timeout(mut self, exchange_timeout: Duration) -> Self {
        self.exchange_timeout = exchange_timeout;
        self
    }

    /// Sets [`LoginOptions::stores`]: every destination, in order (none: return-only).
    pub fn stores<D: Into<KeyDestination>>(mut self, stores: impl IntoIterator<Item = D>) -> Self {
        self.stores = stores.into_iter().map(Into::into).collect();
        self
    }

    /// The key goes to `store` alone (a [`StoreSpec`], a [`KeyDestination`] or a
    /// [`SharedKeyStore`]).
    pub fn store(self, store: impl Into<KeyDestination>) -> Self {
        self.stores([store.into()])
    }

    /// The key goes to `store` too, after the destinations already set.
    pub fn also_store(mut self, store: impl Into<KeyDestination>) -> Self {
        self.stores.push(store.into());
        self
    }

    /// Return-only: nothing is written or printed; the key comes back in
    /// [`LoginOutcome::key`] alone.
    pub fn return_only(mut self) -> Self {
        self.stores.clear();
        self
    }

    /// Sets [`LoginOptions::store_env`].
    pub fn store_env(mut self, store_env: StoreEnv) -> Self {
        self.store_env = store_env;
        self
    }

    /// Sets [`LoginOptions::open_browser`].
    pub fn open_browser(mut self, open_browser: bool) -> Self {
        self.open_browser = open_browser;
        self
    }

    /// Sets [`LoginOptions::headless`].
    pub fn headless(mut self, headless: bool) -> Self {
        self.headless = headless;
        self
    }

    /// Sets [`LoginOptions::detect_headless`] (a snapshot, or `None`).
    pub fn detect_headless(mut self, env: impl Into<Option<EnvSnapshot>>) -> Self {
        self.detect_headless = env.into();
        self
    }

    /// Sets [`LoginOptions::headless_fallback`].
    pub fn headless_fallback(mut self, headless_fallback: bool) -> Self {
        self.headless_fallback = headless_fallback;
        self
    }

    /// Sets [`LoginOptions::replace`].
    pub fn replace(mut self, replace: ReplacePolicy) -> Self {
        self.replace = replace;
        self
    }

    /// Sets [`LoginOptions::check_key`].
    pub fn check_key(mut self, check_key: bool) -> Self {
        self.check_key = check_key;
        self
    }

    /// Sets [`LoginOptions::transport`].
    pub fn transport(mut self, transport: Arc<dyn Transport>) -> Self {
        self.transport = Some(transport);
        self
    }

    /// Sets [`LoginOptions::async_transport`].
    pub fn async_transport(mut self, transport: Arc<dyn AsyncTransport>) -> Self {
        self.async_transport = Some(transport);
        self
    }

    fn flow_config(&self) -> FlowConfig {
        let mut config = FlowConfig::default();
        config.base_url = self.base_url.clone();
        config.callback_host = self.callback_host;
        config.key_label = Some(
            self.key_label
                .clone()
                .unwrap_or_else(|| crate::default_key_label(self.app_name.as_str())),
        );
        config.callback_timeout = self.timeout;
        config.exchange_timeout = self.exchange_timeout;
        config.headless = self.headless;
        config.product_token = self.user_agent_token();
        config.app_name = self.app_name.clone();
        config.limit = self.limit;
        config
    }
}

/// A caller's own [`KeyStore`], shared with the login: `login` locks it only to check it
/// before the browser opens ([`KeyStore::preflight`], [`KeyStore::seen`]) and to write the
/// key ([`KeyStore::store_replacing`]); the caller keeps its own clone to read it afterwards.
/// Make one with `Arc::new(Mutex::new(my_store))`.
pub type SharedKeyStore = Arc<Mutex<dyn KeyStore>>;

/// One place a [`login`] puts the key (see [`LoginOptions::stores`]).
#[derive(Clone)]
#[non_exhaustive]
pub enum KeyDestination {
    /// A built-in store, opened with [`open_store`] through [`LoginOptions::store_env`].
    Builtin(StoreSpec),
    /// The caller's own store (an app's keychain entry, its settings, memory…). See
    /// [`KeyStore`] for what it must guarantee.
    Custom(SharedKeyStore),
}

impl KeyDestination {
    /// The caller's own store, to be shared with the login.
    pub fn custom(store: impl KeyStore + 'static) -> Self {
        KeyDestination::Custom(Arc::new(Mutex::new(store)))
    }
}

impl From<StoreSpec> for KeyDestination {
    fn from(spec: StoreSpec) -> Self {
        KeyDestination::Builtin(spec)
    }
}

impl From<SharedKeyStore> for KeyDestination {
    fn from(store: SharedKeyStore) -> Self {
        KeyDestination::Custom(store)
    }
}

impl fmt::Debug for KeyDestination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyDestination::Builtin(spec) => f.debug_tuple("Builtin").field(spec).finish(),
            KeyDestination::Custom(_) => f.write_str("Custom(..)"),
        }
    }
}

/// How writing the key to one destination went: one per entry of
/// [`LoginOptions::stores`], in the same order.
#[derive(Debug)]
#[non_exhaustive]
pub struct StoreAttempt {
    /// The store, as [`KeyStore::describe`] says.
    pub store: String,
    /// What it did, or why it did not take the key.
    pub result: Result<StoreReport, StoreError>,
}

impl StoreAttempt {
    /// Whether the store now holds the key.
    pub fn stored(&self) -> bool {
        self.result.is_ok()
    }
}

/// What a login does about an OpenRouter key a destination already holds when it begins.
///
/// Every store is looked at before the browser opens, so a refusal (or a "no" from the
/// caller) mints nothing. A key that appears in a store while the user signs in (another
/// sign-in or program stored it) is kept, and the login ends with
/// [`LoginError::KeyNotStored`] carrying the new key ([`StoreError::KeyAppeared`]), unless
/// the policy is [`ReplacePolicy::Force`].
#[derive(Clone, Default)]
#[non_exhaustive]
pub enum ReplacePolicy {
    /// Replace the key each store holds when the login begins (reported as
    /// [`LoginEvent::ReplacingKey`]): for an app that asked its user already.
    #[default]
    Replace,
    /// Replace whatever the store holds at store time, even a key stored meanwhile.
    Force,
    /// End the login with [`LoginError::KeyExists`] before anything is signed in.
    Refuse,
    /// Ask the caller, once per store that holds a key (or an entry that cannot be read),
    /// before the browser opens: `true` replaces it, `false` ends the login with
    /// [`LoginError::KeyExists`] (`declined: true`). Called on the login's thread.
    Ask(AskReplace),
}

/// The question [`ReplacePolicy::Ask`] puts to the caller: replace this key?
pub type AskReplace = Arc<dyn Fn(&ExistingKey) -> bool + Send + Sync>;

impl ReplacePolicy {
    /// [`ReplacePolicy::Ask`] with `ask`.
    pub fn ask(ask: impl Fn(&ExistingKey) -> bool + Send + Sync + 'static) -> Self {
        ReplacePolicy::Ask(Arc::new(ask))
    }
}

impl fmt::Debug for ReplacePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ReplacePolicy::Replace => "Replace",
            ReplacePolicy::Force => "Force",
            ReplacePolicy::Refuse => "Refuse",
            ReplacePolicy::Ask(_) => "Ask(..)",
        })
    }
}

/// An OpenRouter key (or an OpenRouter entry that cannot be read) a store held when the
/// login began. Never the key itself.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExistingKey {
    /// The store ([`KeyStore::describe`]).
    pub store: String,
    /// Which of [`LoginOptions::stores`] it is: its index in that list (0 for
    /// [`store_existing_key`]'s first destination, and so on).
    pub destination: usize,
    /// The key found, as [`ApiKey::hint`]; `None` when the entry cannot be read.
    pub found: Option<String>,
    /// The key's OpenRouter page, where it can be revoked (it keeps working when replaced
    /// here); `None` when the entry cannot be read.
    pub key_page: Option<url::Url>,
    /// Why the store's OpenRouter entry cannot be read ([`StoreError::Malformed`],
    /// [`StoreError::NotAnObject`]); replacing it replaces that entry.
    pub unreadable: Option<String>,
}

/// Progress a user may want to see. Secrets never appear in events.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LoginEvent {
    /// The listener is up.
    Listening {
        /// Its port.
        port: u16,
        /// Whether `[::1]` is served too.
        ipv6: bool,
    },
    /// Show this URL to the user (always, before any browser is launched).
    AuthorizationUrl {
        /// The authorization URL.
        url: url::Url,
        /// The `callback_url` inside it (`None` in headless mode).
        callback_url: Option<url::Url>,
        /// Headless: the user must paste the code.
        headless: bool,
    },
    /// The system browser was asked to open the URL.
    BrowserOpened,
    /// The browser could not be launched; the user must open the URL by hand.
    BrowserFailed {
        /// Why.
        reason: String,
    },
    /// The callback arrived; exchanging the code (attempt 1, 2, …).
    Exchanging {
        /// Attempt number, from 1.
        attempt: u32,
    },
    /// An attempt at the code exchange failed and another follows ([`LoginEvent::Exchanging`]
    /// with `attempt` comes next): why the last one failed, in words.
    ExchangeRetry {
        /// The attempt about to start, from 2.
        attempt: u32,
        /// Why the previous attempt failed (no secret: a transport error or a status).
        reason: String,
    },
    /// OpenRouter could not be reached while the user was still on the consent page: a
    /// probe (`GET /api/v1/key` without credentials, [`openrouter_auth_core::reachability_request`])
    /// sent beside showing the URL got no answer. The sign-in goes on (the network may come
    /// back), but the code exchange will fail the same way; say so now.
    OpenRouterUnreachable {
        /// The OpenRouter that did not answer.
        base_url: url::Url,
        /// Why, in words (refused, DNS, TLS, proxy, timed out).
        reason: String,
    },
    /// OpenRouter returned a key; storing it.
    Storing,
    /// A pasted text was refused.
    PasteRejected {
        /// Why.
        reason: String,
    },
    /// [`LoginOptions::detect_headless`] chose headless sign-in (before any URL is shown).
    HeadlessChosen {
        /// Why.
        reason: HeadlessReason,
    },
    /// The loopback listener could not be opened, so the login signs in headless instead
    /// ([`LoginOptions::headless_fallback`]).
    HeadlessFallback {
        /// The bind error, in words.
        reason: String,
    },
    /// A store's existing key (or unreadable entry) will be replaced by the new key (before
    /// the browser opens).
    ReplacingKey(ExistingKey),
}

/// Receives [`LoginEvent`]s as they happen (on the driver's thread).
pub trait LoginObserver: Send {
    /// One event.
    fn event(&mut self, event: LoginEvent);
}

impl<F: FnMut(LoginEvent) + Send> LoginObserver for F {
    fn event(&mut self, event: LoginEvent) {
        self(event)
    }
}

/// A signed-in result: the key is in every destination of [`LoginOptions::stores`].
#[derive(Debug)]
#[non_exhaustive]
pub struct LoginOutcome {
    /// The new API key (zeroized on drop; its `Debug` shows none of it).
    pub key: ApiKey,
    /// OpenRouter's user id, if sent.
    pub user_id: Option<String>,
    /// Where and how it was stored: one report per destination, in order (empty for a
    /// return-only login).
    pub stored: Vec<StoreReport>,
    /// What OpenRouter says about the new key (`GET /api/v1/key`), or why it could not
    /// tell; `None` when [`LoginOptions::check_key`] is off.
    pub key_check: Option<Result<KeyInfo, KeyCheckFailure>>,
}

/// Why `login` returned no stored key. [`LoginError::KeyNotStored`] still carries the key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// The loopback listener could not be opened.
    #[error("{0}")]
    Bind(#[from] BindError),
    /// The store could not be opened, or would refuse any key ([`KeyStore::preflight`]);
    /// reported before anything was signed in. Display is the store error's; `source()` is it.
    #[error("{0}")]
    Store(#[source] StoreError),
    /// The sign-in failed; see [`FlowError::kind`] and [`FlowError::party`]. Display and
    /// `source()`: the flow error's message; the flow error itself.
    #[error("{0}")]
    Flow(#[source] FlowError),
    /// A key was obtained but not stored in every destination. Show `key` to the user once:
    /// at least one store does not hold it (`reason` says which and why, and names a
    /// temporary file left holding it, if any; `stores` says, per destination, which have it).
    #[error("signed in, but the key could not be stored: {reason}")]
    KeyNotStored {
        /// The key. Give it to the user once.
        key: ApiKey,
        /// OpenRouter's user id, if sent.
        user_id: Option<String>,
        /// Why storing failed, in words (which stores have the key, which do not and why).
        reason: String,
        /// One attempt per destination, in the order of [`LoginOptions::stores`]; empty when
        /// the flow ended before any store was written.
        stores: Vec<StoreAttempt>,
    },
    /// A store already holds an OpenRouter key (or an entry that cannot be read) and the
    /// [`ReplacePolicy`] refused to replace it, or the caller said no; nothing was signed in.
    #[error("{}", key_exists_message(existing))]
    KeyExists {
        /// What the store holds.
        existing: Box<ExistingKey>,
        /// Whether the caller was asked and said no ([`ReplacePolicy::Ask`]).
        declined: bool,
    },
    /// [`store_existing_key`] was given a key that did not check out with OpenRouter (or
    /// OpenRouter could not be asked); nothing was stored.
    /// [`KeyCheckFailure::key_is_invalid`] tells a key OpenRouter refused apart.
    #[error("the key was not stored: {0}")]
    KeyCheckFailed(#[source] KeyCheckFailure),
    /// `base_url` is neither https nor http on a loopback host
    /// ([`openrouter_auth_core::base_url_is_secure`]); nothing was sent or opened.
    #[error("refusing to sign in through {base_url}: it must be https (plain http only on localhost, 127.0.0.1 or [::1], for an emulator), or the code verifier and the API key would travel unencrypted")]
    InsecureBaseUrl {
        /// The refused base URL.
        base_url: url::Url,
    },
    /// [`LoginOptions::limit`] is zero, negative, infinite or not a number
    /// ([`ConfigError::InvalidLimit`]); nothing was sent or opened.
    #[error(transparent)]
    InvalidLimit(ConfigError),
    /// No HTTP client: the default one could not be set up (the TLS setup failed), or the
    /// crate was built without the `reqwest` feature and [`LoginOptions::transport`] is unset.
    /// Nothing was sent. [`login`] builds the default client only once the authorization URL
    /// is out (the reachability probe needs it first), so the URL may have been shown and
    /// the listener opened; [`login_async`] and [`store_existing_key`] build it first.
    #[error("could not set up the HTTP client: {0}")]
    HttpClient(#[source] TransportError),
    /// The event loop failed (an OS error from `poll`).
    #[error("the loopback server failed: {0}")]
    Io(#[from] std::io::Error),
}

impl LoginError {
    /// A stable machine-readable name (`denied`, `timed_out`, `key_not_stored`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            LoginError::Bind(BindError::PortInUse { .. }) => "port_in_use",
            LoginError::Bind(_) => "listen_failed",
            LoginError::Store(_) => "store_unavailable",
            LoginError::Flow(e) => e.kind(),
            LoginError::KeyNotStored { .. } => "key_not_stored",
            LoginError::KeyExists { existing, .. } if existing.unreadable.is_some() => {
                "entry_unreadable"
            }
            LoginError::KeyExists { .. } => "key_exists",
            LoginError::KeyCheckFailed(e) if e.key_is_invalid() => "key_not_valid",
            LoginError::KeyCheckFailed(_) => "key_check_failed",
            LoginError::InsecureBaseUrl { .. } => "insecure_base_url",
            LoginError::InvalidLimit(_) => "invalid_limit",
            LoginError::HttpClient(_) => "http_client",
            LoginError::Io(_) => "io",
        }
    }
}

fn key_exists_message(existing: &ExistingKey) -> String {
    match (&existing.found, &existing.unreadable) {
        (_, Some(reason)) => format!("{reason}; signing in would replace that entry"),
        (found, None) => format!(
            "{} already holds an OpenRouter key ({}); signing in would mint another",
            existing.store,
            found.as_deref().unwrap_or("…")
        ),
    }
}

/// What the loop feeds its flow: the core's input (the store reports stay with the loop).
pub(crate) type Input = openrouter_auth_core::Input<()>;

/// Sends inputs into a running loop from other threads. In loopback mode the loop sleeps in
/// `mio::Poll`, so a send also wakes it; in headless mode it sleeps on the channel itself.
#[derive(Clone)]
pub(crate) struct Inbox {
    tx: mpsc::Sender<Input>,
    waker: Option<Arc<Waker>>,
}

impl Inbox {
    pub(crate) fn send(&self, input: Input) {
        if self.tx.send(input).is_ok() {
            if let Some(w) = &self.waker {
                let _ = w.wake();
            }
        }
    }
}

/// Talks to a running `login` from any thread: [`cancel`](CancelHandle::cancel) it (Ctrl-C, a
/// UI button) or [`paste`](CancelHandle::paste) what the user typed (a code, or the address the
/// browser ended on). Cloneable. Cancelling before the login starts makes it end at once;
/// text pasted before it starts is kept and handed over when it does. The listener's port is
/// freed when `login` returns.
#[derive(Clone, Default)]
pub struct CancelHandle {
    inner: Arc<Mutex<CancelInner>>,
}

/// The same handle under the name that says what else it does.
pub type LoginHandle = CancelHandle;

/// Most pasted texts kept while no login is attached (more are dropped).
const MAX_QUEUED_PASTES: usize = 16;

#[derive(Default)]
struct CancelInner {
    cancelled: bool,
    pastes_closed: bool,
    ended: bool,
    queued: Vec<Zeroizing<String>>,
    inbox: Option<Inbox>,
}

impl std::fmt::Debug for CancelHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CancelHandle")
            .field("cancelled", &self.is_cancelled())
            .finish()
    }
}

impl CancelHandle {
    /// A handle not yet attached to a login.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the login to stop. A login that is storing a key finishes storing first, so the
    /// key is never lost. A login stopped this way returns
    /// `Err(LoginError::Flow(FlowError::User(UserError::Cancelled { may_have_been_sent })))`
    /// (`kind()` `"cancelled"`); `may_have_been_sent` is true when the code exchange was out,
    /// so a key may exist on OpenRouter (the message links the key list). Prefer this over
    /// dropping a [`login_async`] future (as `tokio::time::timeout` does): that cancels too
    /// and frees the port, but gives no error value to tell the user.
    pub fn cancel(&self) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.cancelled = true;
        if let Some(inbox) = &g.inbox {
            inbox.send(Input::Cancel);
        }
    }

    /// Whether [`CancelHandle::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.inner
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .cancelled
    }

    /// Hands text the user pasted to the login: a redirect URL
    /// (`http://localhost:PORT/callback/<nonce>?code=…`, checked against this flow's nonce) or
    /// a bare authorization code (what OpenRouter shows in headless mode). Works in both modes: in loopback mode
    /// it races the browser's callback, and whichever valid one comes first wins. Text that is
    /// not accepted is reported as [`LoginEvent::PasteRejected`] and the login keeps waiting;
    /// text pasted after the login ended is ignored.
    pub fn paste(&self, text: &str) {
        let text = Zeroizing::new(text.to_owned());
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        match &g.inbox {
            Some(inbox) => inbox.send(Input::Pasted(text)),
            None if !g.ended && g.queued.len() < MAX_QUEUED_PASTES => g.queued.push(text),
            None => {}
        }
    }

    /// Says that nothing more will be pasted (standard input reached its end). A headless
    /// login that is still waiting for a code then ends with [`UserError::PastesClosed`](openrouter_auth_core::UserError::PastesClosed)
    /// instead of waiting for its timeout; a loopback login keeps waiting for the browser.
    pub fn close_pastes(&self) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.pastes_closed = true;
        if let Some(inbox) = &g.inbox {
            inbox.send(Input::PastesClosed);
        }
    }

    fn attach(&self, inbox: Inbox) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if g.cancelled {
            inbox.send(Input::Cancel);
        }
        for text in std::mem::take(&mut g.queued) {
            inbox.send(Input::Pasted(text));
        }
        if g.pastes_closed {
            inbox.send(Input::PastesClosed);
        }
        g.inbox = Some(inbox);
    }

    fn detach(&self) {
        let mut g = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        g.inbox = None;
        g.ended = true;
        g.queued.clear();
    }
}

/// Where the code exchange runs.
pub(crate) enum Exchanger {
    /// A thread per request with a blocking client.
    Blocking(Arc<dyn Transport>),
    /// A thread per request with the default blocking client, built by the first request
    /// that needs it (the reachability probe, started once the URL is shown): reqwest's
    /// runtime thread and the system's trust store stay off the path to the URL.
    #[cfg(feature = "reqwest")]
    Default(Arc<DefaultClient>),
    /// A task on a tokio runtime.
    #[cfg(feature = "tokio")]
    Tokio(tokio::runtime::Handle, Arc<dyn AsyncTransport>),
}

/// Extra time the HTTP client gets beyond the flow's exchange timeout. The flow's own deadline
/// must decide: a client timer set to the same instant races it, and the two drivers then
/// report the same stall differently (`ExchangeTimedOut` or a transport `Network` error).
/// The client's timer only guards against a request that outlives the flow.
const TRANSPORT_GRACE: Duration = Duration::from_secs(2);

/// How long the reachability probe may take before OpenRouter counts as not answering.
const PROBE_TIMEOUT: Duration = Duration::from_secs(10);

/// The default blocking client ([`blocking_client`](crate::blocking_client)), built on first
/// use. A client that could not be built answers every request with the reason, as "never
/// sent"; the login then ends with [`LoginError::HttpClient`] ([`DefaultClient::failure`]).
#[cfg(feature = "reqwest")]
#[derive(Debug)]
pub(crate) struct DefaultClient {
    base_url: url::Url,
    client: std::sync::OnceLock<Result<reqwest::blocking::Client, TransportError>>,
}

#[cfg(feature = "reqwest")]
impl DefaultClient {
    fn new(base_url: &url::Url) -> Self {
        Self {
            base_url: base_url.clone(),
            client: std::sync::OnceLock::new(),
        }
    }

    /// The client, built now if no request has needed it yet (a caller that comes while
    /// another thread builds it waits for that build).
    fn get(&self) -> Result<&reqwest::blocking::Client, &TransportError> {
        self.client
            .get_or_init(|| crate::transport::blocking_client(&self.base_url))
            .as_ref()
    }

    /// Why the client could not be built, once a build was tried and failed.
    fn failure(&self) -> Option<&TransportError> {
        self.client.get().and_then(|r| r.as_ref().err())
    }
}

#[cfg(feature = "reqwest")]
impl Transport for DefaultClient {
    fn send(
        &self,
        request: &HttpRequest,
        timeout: Duration,
    ) -> Result<openrouter_auth_core::HttpResponse, TransportError> {
        self.get().map_err(Clone::clone)?.send(request, timeout)
    }
}

impl Exchanger {
    /// The blocking client, if the requests run on threads.
    fn blocking(&self) -> Option<Arc<dyn Transport>> {
        match self {
            Exchanger::Blocking(client) => Some(Arc::clone(client)),
            #[cfg(feature = "reqwest")]
            Exchanger::Default(client) => Some(Arc::clone(client) as Arc<dyn Transport>),
            #[cfg(feature = "tokio")]
            Exchanger::Tokio(..) => None,
        }
    }

    /// Why the default client could not be built, once that is known.
    fn client_failure(&self) -> Option<TransportError> {
        match self {
            #[cfg(feature = "reqwest")]
            Exchanger::Default(client) => client.failure().cloned(),
            _ => None,
        }
    }

    /// Sends `request` on its own thread (blocking client) or task (async client) and hands
    /// what came back to `deliver` there. The one place the exchange and the probe are sent.
    fn spawn_send(
        &self,
        request: HttpRequest,
        timeout: Duration,
        deliver: impl FnOnce(Result<openrouter_auth_core::HttpResponse, TransportError>)
            + Send
            + 'static,
    ) {
        #[cfg(feature = "tokio")]
        if let Exchanger::Tokio(handle, client) = self {
            let client = Arc::clone(client);
            handle.spawn(async move { deliver(client.send(&request, timeout).await) });
            return;
        }
        if let Some(client) = self.blocking() {
            std::thread::spawn(move || deliver(client.send(&request, timeout)));
        }
    }

    /// Sends the reachability probe through the exchange's client; `done` gets `None` for any
    /// answer, `Some(reason)` for none. Wakes the loop.
    fn probe(
        &self,
        base_url: &url::Url,
        product: Option<&ProductToken>,
        done: mpsc::Sender<Option<String>>,
        waker: Option<Arc<Waker>>,
    ) {
        let request = openrouter_auth_core::reachability_request(base_url).with_user_agent(product);
        self.spawn_send(request, PROBE_TIMEOUT, move |r| {
            let _ = done.send(r.err().map(|e| e.reason));
            if let Some(w) = waker {
                let _ = w.wake();
            }
        });
    }

    /// `GET /api/v1/key` through the same client as the exchange (on the login's thread).
    fn check_key(
        &self,
        base_url: &url::Url,
        product: Option<&ProductToken>,
        key: &ApiKey,
    ) -> Result<KeyInfo, KeyCheckFailure> {
        let request =
            openrouter_auth_core::key_check_request(base_url, key).with_user_agent(product);
        match self {
            Exchanger::Blocking(client) => check_key_request(client.as_ref(), &request),
            #[cfg(feature = "reqwest")]
            Exchanger::Default(client) => check_key_request(client.as_ref(), &request),
            #[cfg(feature = "tokio")]
            Exchanger::Tokio(handle, client) => {
                handle.block_on(check_key_request_async(client.as_ref(), &request))
            }
        }
    }

    /// Sends the code exchange; its answer (or why none came) reaches the loop as an input.
    fn send(&self, id: ExchangeId, request: HttpRequest, timeout: Duration, inbox: Inbox) {
        self.spawn_send(request, timeout + TRANSPORT_GRACE, move |r| {
            inbox.send(match r {
                Ok(response) => Input::ExchangeResponse { id, response },
                Err(e) => Input::ExchangeFailed {
                    id,
                    may_have_been_sent: e.may_have_been_sent,
                    reason: e.reason,
                },
            })
        });
    }
}

/// Signs in, blocking the calling thread until the flow ends, is cancelled through `cancel`,
/// or times out. Do not call it from inside an async runtime: use [`login_async`].
///
/// Returns the stored key, or a [`LoginError`] (which carries the key when it was obtained
/// but not stored).
pub fn login(
    options: &LoginOptions,
    observer: &mut dyn LoginObserver,
    cancel: &CancelHandle,
) -> Result<LoginOutcome, LoginError> {
    let exchanger = match &options.transport {
        Some(t) => Exchanger::Blocking(Arc::clone(t)),
        None => default_exchanger(&options.base_url)?,
    };
    run(options, observer, cancel, exchanger)
}

/// The default client, built when the first request needs it (off the path to the URL).
#[cfg(feature = "reqwest")]
fn default_exchanger(base_url: &url::Url) -> Result<Exchanger, LoginError> {
    Ok(Exchanger::Default(Arc::new(DefaultClient::new(base_url))))
}

#[cfg(not(feature = "reqwest"))]
fn default_exchanger(base_url: &url::Url) -> Result<Exchanger, LoginError> {
    default_blocking(base_url).map(Exchanger::Blocking)
}

#[cfg(feature = "reqwest")]
fn default_blocking(base_url: &url::Url) -> Result<Arc<dyn Transport>, LoginError> {
    match crate::transport::blocking_client(base_url) {
        Ok(c) => Ok(Arc::new(c)),
        Err(e) => Err(LoginError::HttpClient(e)),
    }
}

#[cfg(not(feature = "reqwest"))]
fn default_blocking(_: &url::Url) -> Result<Arc<dyn Transport>, LoginError> {
    Err(LoginError::HttpClient(no_default_client()))
}

#[cfg(all(feature = "tokio", feature = "reqwest"))]
fn default_async(base_url: &url::Url) -> Result<Arc<dyn AsyncTransport>, LoginError> {
    match crate::transport::async_client(base_url) {
        Ok(c) => Ok(Arc::new(c)),
        Err(e) => Err(LoginError::HttpClient(e)),
    }
}

#[cfg(all(feature = "tokio", not(feature = "reqwest")))]
fn default_async(_: &url::Url) -> Result<Arc<dyn AsyncTransport>, LoginError> {
    Err(LoginError::HttpClient(no_default_client()))
}

#[cfg(not(feature = "reqwest"))]
fn no_default_client() -> TransportError {
    TransportError::not_sent(
        "this build has no default HTTP client (the `reqwest` feature is off): set LoginOptions::transport or LoginOptions::async_transport",
    )
}

/// [`login`] for tokio programs: the loopback server runs on a blocking thread, the code
/// exchange on the current runtime. Dropping the future cancels the login.
#[cfg(feature = "tokio")]
#[cfg_attr(docsrs, doc(cfg(feature = "tokio")))]
pub async fn login_async(
    options: LoginOptions,
    mut observer: Box<dyn LoginObserver>,
    cancel: CancelHandle,
) -> Result<LoginOutcome, LoginError> {
    struct CancelOnDrop(CancelHandle, bool);
    impl Drop for CancelOnDrop {
        fn drop(&mut self) {
            if !self.1 {
                self.0.cancel();
            }
        }
    }
    let handle = tokio::runtime::Handle::current();
    let exchanger = match (&options.async_transport, &options.transport) {
        (Some(t), _) => Exchanger::Tokio(handle, Arc::clone(t)),
        (None, Some(t)) => Exchanger::Blocking(Arc::clone(t)),
        (None, None) => Exchanger::Tokio(handle, default_async(&options.base_url)?),
    };
    let mut guard = CancelOnDrop(cancel.clone(), false);
    let task =
        tokio::task::spawn_blocking(move || run(&options, observer.as_mut(), &cancel, exchanger));
    let result = match task.await {
        Ok(r) => r,
        Err(e) => Err(LoginError::Io(std::io::Error::other(format!(
            "login task failed: {e}"
        )))),
    };
    guard.1 = true;
    result
}

/// Stores an API key the user already has (pasted into the app, or `--with-key` in the
/// command) in [`LoginOptions::stores`], as [`login`] stores a new one: OpenRouter is asked
/// about it first (`GET /api/v1/key` through [`LoginOptions::transport`] or the default
/// client) and a key that does not check out is refused; then every store is checked, the
/// [`ReplacePolicy`] applied (a store that already holds this very key is not "replaced"),
/// and the key written to each. Nothing is opened, no browser, no listener; events:
/// [`LoginEvent::ReplacingKey`] only. The outcome's `key_check` is the check's answer and its
/// `user_id` is `None`.
///
/// Blocking; do not call it from inside an async runtime (use `spawn_blocking`).
///
/// # Errors
///
/// [`LoginError::InsecureBaseUrl`], [`LoginError::HttpClient`],
/// [`LoginError::KeyCheckFailed`] (nothing stored), [`LoginError::Store`] and
/// [`LoginError::KeyExists`] (nothing stored), [`LoginError::KeyNotStored`] (some store did
/// not take it: which did is in `stores`).
pub fn store_existing_key(
    options: &LoginOptions,
    key: ApiKey,
    observer: &mut dyn LoginObserver,
) -> Result<LoginOutcome, LoginError> {
    if !openrouter_auth_core::base_url_is_secure(&options.base_url) {
        return Err(LoginError::InsecureBaseUrl {
            base_url: options.base_url.clone(),
        });
    }
    let client = match &options.transport {
        Some(t) => Arc::clone(t),
        None => default_blocking(&options.base_url)?,
    };
    let request = openrouter_auth_core::key_check_request(&options.base_url, &key)
        .with_user_agent(options.user_agent_token().as_ref());
    let info = check_key_request(client.as_ref(), &request).map_err(LoginError::KeyCheckFailed)?;
    let mut stores = open_destinations(options, observer, Some(&key))?;
    let meta = KeyMeta::new(info.label.clone(), None).with_base_url(options.base_url.clone());
    let attempts: Vec<StoreAttempt> = stores.iter_mut().map(|s| s.store(&key, &meta)).collect();
    match store_input(&attempts) {
        Input::KeyNotStored { reason } => Err(LoginError::KeyNotStored {
            key,
            user_id: None,
            reason: reason.to_string(),
            stores: attempts,
        }),
        _ => Ok(LoginOutcome {
            key,
            user_id: None,
            stored: attempts.into_iter().filter_map(|a| a.result.ok()).collect(),
            key_check: Some(Ok(info)),
        }),
    }
}

/// Milliseconds since `epoch`, as the core's [`Time`].
fn now_since(epoch: Instant) -> Time {
    Time::from_millis(u64::try_from(epoch.elapsed().as_millis()).unwrap_or(u64::MAX))
}

fn instant_of(epoch: Instant, t: Time) -> Instant {
    epoch + Duration::from_millis(t.as_millis())
}

/// How long to keep writing final answers after the flow finished.
const FLUSH_GRACE: Duration = Duration::from_secs(2);

/// The one driving loop: drain outputs, wait for the next event or deadline, feed inputs.
pub(crate) fn run(
    options: &LoginOptions,
    observer: &mut dyn LoginObserver,
    cancel: &CancelHandle,
    exchanger: Exchanger,
) -> Result<LoginOutcome, LoginError> {
    let epoch = Instant::now();
    let mut rng = rand_chacha::ChaCha20Rng::from_os_rng();
    // The core refuses a base URL that would carry secrets unencrypted, before anything is
    // opened or sent.
    let mut config = options.flow_config();
    let new_flow = |config: &FlowConfig, rng: &mut rand_chacha::ChaCha20Rng| {
        Flow::<()>::new(config.clone(), rng, now_since(epoch)).map_err(|e| match e {
            ConfigError::InsecureBaseUrl { base_url } => LoginError::InsecureBaseUrl { base_url },
            e @ ConfigError::InvalidLimit { .. } => LoginError::InvalidLimit(e),
            other => LoginError::Io(std::io::Error::other(other.to_string())),
        })
    };
    let mut flow = new_flow(&config, &mut rng)?;
    // Mint no key that a store would refuse anyway (a symlink, a read-only directory, a
    // hand-broken JSON file) or must not replace: say so now, before the browser opens.
    let mut stores = open_destinations(options, observer, None)?;
    let mut attempts: Vec<StoreAttempt> = Vec::new();

    // Headless or loopback: the caller decides, or lets the environment decide.
    if !config.headless {
        if let Some(reason) = options.detect_headless.as_ref().and_then(headless_reason) {
            observer.event(LoginEvent::HeadlessChosen { reason });
            config.headless = true;
            flow = new_flow(&config, &mut rng)?;
        }
    }
    // Where the loop sleeps between events: the loopback server's `mio::Poll` (loopback
    // mode), or the inbox channel alone (headless mode: no listener is opened at all, so
    // headless sign-in works where loopback sockets cannot be bound).
    let mut server = None;
    if !config.headless {
        match LoopbackServer::bind(options.port) {
            Ok(bound) => server = Some(bound),
            // Race both paths "when a loopback listener can be opened" (issue 6, point 2);
            // when none can, headless sign-in still works.
            Err(e) if options.port == 0 && options.headless_fallback => {
                observer.event(LoginEvent::HeadlessFallback {
                    reason: e.to_string(),
                });
                config.headless = true;
                flow = new_flow(&config, &mut rng)?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    let (tx, rx) = mpsc::channel();
    let inbox = Inbox {
        tx,
        waker: server.as_ref().map(LoopbackServer::waker),
    };
    if let Some(server) = &server {
        observer.event(LoginEvent::Listening {
            port: server.port(),
            ipv6: server.has_ipv6(),
        });
        let handled = flow.handle_input(
            Input::ListenerBound {
                port: server.port(),
                ipv6: server.has_ipv6(),
            },
            now_since(epoch),
        );
        log_handled("listener bound", handled);
    }
    // Attach after `ListenerBound`, so text pasted before the login started meets a flow
    // that knows its callback URL.
    cancel.attach(inbox.clone());
    // The reachability probe: started when the URL is shown, answered while the user is on
    // the consent page.
    let (probe_tx, probe_rx) = mpsc::channel();
    let mut probe_tx = Some(probe_tx);
    let mut probe_pending = false;
    let mut last_failure: Option<String> = None;
    let result = loop {
        let mut finished = None;
        while let Some(out) = flow.poll_output() {
            // The probe starts once the URL is out (it builds the default client first).
            let shows_url = matches!(
                out,
                Output::OpenBrowser { .. } | Output::PromptForCode { .. }
            );
            match out {
                Output::OpenBrowser { url } => {
                    observer.event(LoginEvent::AuthorizationUrl {
                        url: url.clone(),
                        callback_url: flow.callback_url().cloned(),
                        headless: false,
                    });
                    if options.open_browser {
                        match crate::browser::open(&url) {
                            Ok(()) => observer.event(LoginEvent::BrowserOpened),
                            Err(reason) => observer.event(LoginEvent::BrowserFailed { reason }),
                        }
                    }
                }
                Output::PromptForCode { url } => observer.event(LoginEvent::AuthorizationUrl {
                    url,
                    callback_url: None,
                    headless: true,
                }),
                Output::Respond {
                    conn,
                    response,
                    head_only,
                } => {
                    if let Some(server) = &mut server {
                        server.respond(conn, response.encode(head_only));
                    }
                }
                Output::SendExchange {
                    id,
                    attempt,
                    request,
                    timeout,
                } => {
                    if let (true, Some(reason)) = (attempt > 1, last_failure.take()) {
                        observer.event(LoginEvent::ExchangeRetry { attempt, reason });
                    }
                    observer.event(LoginEvent::Exchanging { attempt });
                    exchanger.send(id, request, timeout, inbox.clone());
                }
                Output::StoreKey { key, user_id } => {
                    observer.event(LoginEvent::Storing);
                    let meta = KeyMeta::new(
                        flow.config()
                            .key_label
                            .as_ref()
                            .map(|l| l.as_str().to_owned()),
                        user_id,
                    )
                    .with_base_url(flow.config().base_url.clone());
                    // Local and quick: done inline, so the store needs no thread.
                    attempts = stores
                        .iter_mut()
                        .map(|store| store.store(&key, &meta))
                        .collect();
                    inbox.send(store_input(&attempts));
                }
                Output::PasteRejected { reason } => {
                    observer.event(LoginEvent::PasteRejected { reason })
                }
                Output::Finished(outcome) => finished = Some(outcome),
                _ => {} // an output this shell does not know needs nothing from it
            }
            if shows_url {
                if let Some(done) = probe_tx.take() {
                    exchanger.probe(
                        &options.base_url,
                        options.user_agent_token().as_ref(),
                        done,
                        inbox.waker.clone(),
                    );
                    probe_pending = true;
                }
            }
        }
        if let Some(outcome) = finished {
            break outcome;
        }
        let mut until = flow.poll_timeout().map(|t| instant_of(epoch, t));
        if probe_pending {
            // The headless loop sleeps on the inbox alone: look for the probe's answer often.
            let soon = Instant::now() + Duration::from_millis(100);
            until = Some(until.map_or(soon, |t| t.min(soon)));
        }
        let mut inputs = match &mut server {
            // Requests go to the flow as the server parses them, borrowed from its buffer.
            Some(server) => server
                .poll(until, &mut |conn, head| {
                    log_handled("request", flow.handle_request(conn, head, now_since(epoch)));
                })?
                .inputs
                .into_iter()
                .filter_map(from_server)
                .collect(),
            None => {
                let got = match until {
                    Some(t) => rx.recv_timeout(t.saturating_duration_since(Instant::now())),
                    None => rx.recv().map_err(|_| mpsc::RecvTimeoutError::Disconnected),
                };
                got.map_or_else(|_| Vec::new(), |input| vec![input])
            }
        };
        inputs.extend(rx.try_iter());
        // The default client could not be built (the system's trust store is unusable): no
        // request can reach OpenRouter, so say so now, as before the client was built lazily.
        if let Some(e) = exchanger.client_failure() {
            cancel.detach();
            return Err(LoginError::HttpClient(e));
        }
        match probe_rx.try_recv() {
            Ok(Some(reason)) => {
                probe_pending = false;
                observer.event(LoginEvent::OpenRouterUnreachable {
                    base_url: options.base_url.clone(),
                    reason,
                });
            }
            Ok(None) | Err(mpsc::TryRecvError::Disconnected) => probe_pending = false,
            Err(mpsc::TryRecvError::Empty) => {}
        }
        let now = now_since(epoch);
        for input in inputs {
            match &input {
                Input::ExchangeFailed { reason, .. } => last_failure = Some(reason.clone()),
                Input::ExchangeResponse { response, .. } if response.status >= 500 => {
                    last_failure = Some(format!("OpenRouter answered {}", response.status));
                }
                _ => {}
            }
            let what = input_name(&input);
            log_handled(what, flow.handle_input(input, now));
        }
        // A deadline that passed fires even while inputs keep arriving.
        if flow.poll_timeout().is_some_and(|t| t <= now) {
            log_handled("timeout", flow.handle_timeout(now));
        }
    };
    cancel.detach();
    if let Some(mut server) = server {
        // Let the last answers (the result page) reach the browser.
        let flush_until = Instant::now() + FLUSH_GRACE;
        while server.has_pending_writes() && Instant::now() < flush_until {
            // The flow has finished: a request that arrives now gets no answer.
            server.poll(Some(flush_until), &mut |_, _| {})?;
        }
    }
    match result {
        Outcome::Stored { key, user_id, .. } => {
            let key_check = options.check_key.then(|| {
                exchanger.check_key(&options.base_url, options.user_agent_token().as_ref(), &key)
            });
            Ok(LoginOutcome {
                key,
                user_id,
                stored: attempts.into_iter().filter_map(|a| a.result.ok()).collect(),
                key_check,
            })
        }
        Outcome::KeyNotStored {
            key,
            user_id,
            reason,
        } => Err(LoginError::KeyNotStored {
            key,
            user_id,
            reason: reason.to_string(),
            stores: attempts,
        }),
        Outcome::Failed(e) => Err(LoginError::Flow(e)),
        _ => unreachable!("the core of this version ends a flow in one of the three outcomes"),
    }
}

/// One destination, opened and preflighted, with what it held when the login began.
struct OpenStore {
    store: Opened,
    replace: Replace,
}

enum Opened {
    Builtin(Box<dyn KeyStore>),
    Custom(SharedKeyStore),
}

impl Opened {
    fn with<T>(&mut self, f: impl FnOnce(&mut dyn KeyStore) -> T) -> T {
        match self {
            Opened::Builtin(store) => f(store.as_mut()),
            Opened::Custom(shared) => {
                let mut guard = shared.lock().unwrap_or_else(|p| p.into_inner());
                f(&mut *guard)
            }
        }
    }
}

impl OpenStore {
    fn store(&mut self, key: &ApiKey, meta: &KeyMeta) -> StoreAttempt {
        let replace = &self.replace;
        self.store.with(|store| StoreAttempt {
            store: store.describe(),
            result: store.store_replacing(key, meta, replace),
        })
    }
}

/// Opens every destination and checks it ([`KeyStore::preflight`]), before anything is signed
/// in; notes what each holds now, so a different key found at store time counts as one that
/// appeared meanwhile.
fn open_destinations(
    options: &LoginOptions,
    observer: &mut dyn LoginObserver,
    new_key: Option<&ApiKey>,
) -> Result<Vec<OpenStore>, LoginError> {
    let mut opened = Vec::with_capacity(options.stores.len());
    for (index, destination) in options.stores.iter().enumerate() {
        let mut store = match destination {
            KeyDestination::Builtin(spec) => {
                Opened::Builtin(open_store(spec, &options.store_env).map_err(LoginError::Store)?)
            }
            KeyDestination::Custom(shared) => Opened::Custom(Arc::clone(shared)),
        };
        let (existing, seen) = store.with(|s| look_at(s, &options.base_url, new_key))?;
        if let Some(mut existing) = existing {
            existing.destination = index;
            let replace = match &options.replace {
                ReplacePolicy::Refuse => false,
                ReplacePolicy::Ask(ask) => ask(&existing),
                _ => true,
            };
            if !replace {
                let declined = matches!(options.replace, ReplacePolicy::Ask(_));
                return Err(LoginError::KeyExists {
                    existing: Box::new(existing),
                    declined,
                });
            }
            observer.event(LoginEvent::ReplacingKey(existing));
        }
        opened.push(OpenStore {
            store,
            replace: match options.replace {
                ReplacePolicy::Force => Replace::Any,
                _ => Replace::Seen(seen),
            },
        });
    }
    Ok(opened)
}

/// Checks a store before signing in ([`KeyStore::preflight`]) and reads what it holds: the
/// key (or unreadable OpenRouter entry) a new key would replace, and what it was seen to hold.
/// A store that cannot be read now could not be written after signing in either.
fn look_at(
    store: &mut dyn KeyStore,
    base_url: &url::Url,
    new_key: Option<&ApiKey>,
) -> Result<(Option<ExistingKey>, SeenKey), LoginError> {
    store.preflight().map_err(LoginError::Store)?;
    match store.load() {
        Ok(None) => Ok((None, SeenKey::of(None))),
        // The very key being stored: nothing is replaced.
        Ok(Some(key)) if Some(&key) == new_key => Ok((None, SeenKey::of(Some(&key)))),
        Ok(Some(key)) => Ok((
            Some(ExistingKey {
                store: store.describe(),
                destination: 0,
                found: Some(key.hint()),
                key_page: Some(key.key_page_url(base_url)),
                unreadable: None,
            }),
            SeenKey::of(Some(&key)),
        )),
        // An OpenRouter entry the store cannot read (`"openrouter": "x"` in opencode's file,
        // an unterminated quote in a dotenv line), in a file it would rewrite: replaced only
        // on the same terms as a key.
        Err(
            e @ (StoreError::Malformed { .. } | StoreError::NotAnObject { entry: Some(_), .. }),
        ) => Ok((
            Some(ExistingKey {
                store: store.describe(),
                destination: 0,
                found: None,
                key_page: None,
                unreadable: Some(e.to_string()),
            }),
            SeenKey::of(None),
        )),
        Err(e) => Err(LoginError::Store(e)),
    }
}

/// Where a return-only login's key went, for the result page.
const RETURN_ONLY_LOCATION: &str = "the app that started this sign-in";

/// The flow's input for what the stores did: stored if every one took the key (or there was
/// none), else not stored, saying which have it.
fn store_input(attempts: &[StoreAttempt]) -> Input {
    let failed: Vec<(&str, &StoreError)> = attempts
        .iter()
        .filter_map(|a| a.result.as_ref().err().map(|e| (a.store.as_str(), e)))
        .collect();
    let stored: Vec<&str> = attempts
        .iter()
        .filter(|a| a.stored())
        .map(|a| a.store.as_str())
        .collect();
    match failed.as_slice() {
        [] if stored.is_empty() => Input::KeyStored {
            location: RETURN_ONLY_LOCATION.to_owned(),
            report: (),
        },
        [] => Input::KeyStored {
            location: join_and(&stored),
            report: (),
        },
        // One destination: its error as it is.
        [(_, e)] if stored.is_empty() => Input::KeyNotStored {
            reason: store_failure(e, e.to_string()),
        },
        [(_, first), ..] => {
            let mut message = failed
                .iter()
                .map(|(store, e)| format!("not stored in {store}: {e}"))
                .collect::<Vec<_>>()
                .join("; ");
            match stored.is_empty() {
                true => message.push_str("; no store holds it"),
                false => message.push_str(&format!("; stored in {}", join_and(&stored))),
            }
            Input::KeyNotStored {
                reason: store_failure(first, message),
            }
        }
    }
}

/// `a`, `a and b`, `a, b and c`.
fn join_and(items: &[&str]) -> String {
    match items {
        [] => String::new(),
        [one] => (*one).to_owned(),
        [rest @ .., last] => format!("{} and {last}", rest.join(", ")),
    }
}

/// A server's input (a closed connection) as the loop's flow takes it.
fn from_server(input: openrouter_auth_core::Input) -> Option<Input> {
    use openrouter_auth_core::Input as Plain;
    match input {
        Plain::ConnectionClosed(c) => Some(Input::ConnectionClosed(c)),
        _ => None, // the server produces nothing else
    }
}

/// The input's name for the debug log (never its content: it may hold a code).
fn input_name(input: &Input) -> &'static str {
    match input {
        Input::ListenerBound { .. } => "listener bound",
        Input::Request(_) => "request",
        Input::ConnectionClosed(_) => "connection closed",
        Input::ExchangeResponse { .. } => "exchange response",
        Input::ExchangeFailed { .. } => "exchange failed",
        Input::KeyStored { .. } => "key stored",
        Input::KeyNotStored { .. } => "key not stored",
        Input::Pasted(_) => "pasted text",
        Input::PastesClosed => "pastes closed",
        Input::Cancel => "cancel",
        _ => "other input",
    }
}

/// Logs at debug what the flow did with an input; an ignored one says why.
fn log_handled(what: &'static str, handled: Handled) {
    match handled {
        Handled::Ignored(why) => tracing::debug!(input = what, ?why, "the flow ignored an input"),
        other => tracing::debug!(input = what, handled = ?other, "input handled"),
    }
}

/// The core's kind of store failure for a [`StoreError`], with its message.
fn store_failure(e: &StoreError, message: String) -> StoreFailure {
    match e {
        StoreError::Unparseable { .. }
        | StoreError::NotAnObject { .. }
        | StoreError::Malformed { .. }
        | StoreError::Symlink { .. }
        | StoreError::NotAFile { .. }
        | StoreError::UnsafeKey { .. }
        | StoreError::KeyAppeared { .. }
        | StoreError::BadSpec { .. } => StoreFailure::Refused { message },
        StoreError::NoHome | StoreError::NoConfigDir | StoreError::KeyringUnavailable { .. } => {
            StoreFailure::Unavailable { message }
        }
        _ => StoreFailure::WriteFailed { message },
    }
}
