//! The drivers: run one [`Flow`] against the real world (a loopback server, OpenRouter over
//! reqwest, a browser, a key store) until it finishes.
//!
//! [`login`] blocks the calling thread; [`login_async`] (feature `tokio`) is the same loop on
//! a blocking thread with the HTTP requests on the caller's tokio runtime. Both run the same
//! core and the same loop (`run`): only where the code exchange runs differs. No sign-in
//! decision is made here.

use crate::server::{BindError, LoopbackServer};
use crate::store::{
    open_store, KeyMeta, KeyStore, Replace, StoreEnv, StoreError, StoreReport, StoreSpec,
};
use crate::transport::{AsyncTransport, Transport, TransportError};
use mio::Waker;
use openrouter_auth_core::{
    ApiKey, CallbackHost, ConfigError, ExchangeId, Flow, FlowConfig, FlowError, Handled,
    HttpRequest, KeyLabel, Outcome, Output, StoreFailure, Time,
};
use rand_chacha::rand_core::SeedableRng;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// Everything `login` needs to know. `LoginOptions::default()` signs in to OpenRouter
/// production, any free port, `localhost`, 10 minutes, the default credentials file, and
/// opens the browser.
#[derive(Debug, Clone)]
pub struct LoginOptions {
    /// OpenRouter (or an emulator). Default `https://openrouter.ai`.
    pub base_url: url::Url,
    /// Loopback port; 0 (default) picks a free one.
    pub port: u16,
    /// Host name in the `callback_url`. Default `localhost`.
    pub callback_host: CallbackHost,
    /// The `key_label`; `None` lets OpenRouter pick.
    pub key_label: Option<KeyLabel>,
    /// How long to wait for the browser, in seconds' precision. Default 600 s.
    pub timeout: Duration,
    /// How long the code exchange may take. Default 30 s.
    pub exchange_timeout: Duration,
    /// Where the key goes. Default: the credentials file.
    pub store: StoreSpec,
    /// Where the store looks up home and config directories.
    pub store_env: StoreEnv,
    /// Launch the system browser (the URL is reported to the observer either way).
    pub open_browser: bool,
    /// Headless mode (OpenRouter's PKCE flow without a `callback_url`): no listener is opened and the authorization URL
    /// has no `callback_url`; the code OpenRouter shows reaches the login through
    /// [`CancelHandle::paste`]. In loopback mode (the default) pasting works too, racing the
    /// browser's callback.
    pub headless: bool,
    /// Replace an OpenRouter key that appeared in the store during the sign-in (another
    /// sign-in or program stored it after this one began). Off (the default): such a key is
    /// kept and the login ends with [`LoginError::KeyNotStored`] carrying the new key, its
    /// reason [`StoreError::KeyAppeared`]'s message. The key the store held when the login
    /// began is replaced either way (`openrouter-auth login` asks about it first).
    pub force: bool,
    /// The HTTP client [`login`] sends the code exchange with (see
    /// [`Transport`] for what it must guarantee). `None` (default): the default client
    /// ([`transport::blocking_client`](crate::transport::blocking_client); feature `reqwest`).
    pub transport: Option<Arc<dyn Transport>>,
    /// The HTTP client [`login_async`] sends the code exchange with, e.g. the app's own
    /// `reqwest::Client` (with `redirect::Policy::none()`). `None` (default): `transport` on a
    /// thread of its own if that is set, else the default async client
    /// ([`transport::async_client`](crate::transport::async_client); feature `reqwest`).
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
            timeout: core.callback_timeout,
            exchange_timeout: core.exchange_timeout,
            store: StoreSpec::default(),
            store_env: StoreEnv::from_process(),
            open_browser: true,
            headless: false,
            force: false,
            transport: None,
            async_transport: None,
        }
    }
}

impl LoginOptions {
    fn flow_config(&self) -> FlowConfig {
        FlowConfig {
            base_url: self.base_url.clone(),
            callback_host: self.callback_host,
            key_label: self.key_label.clone(),
            code_challenge_method: Default::default(),
            callback_timeout: self.timeout,
            exchange_timeout: self.exchange_timeout,
            headless: self.headless,
        }
    }
}

/// Progress a user may want to see. Secrets never appear in events.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// OpenRouter returned a key; storing it.
    Storing,
    /// A pasted text was refused.
    PasteRejected {
        /// Why.
        reason: String,
    },
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

/// A signed-in result.
#[derive(Debug)]
pub struct LoginOutcome {
    /// The new API key.
    pub key: ApiKey,
    /// OpenRouter's user id, if sent.
    pub user_id: Option<String>,
    /// Where and how it was stored.
    pub stored: StoreReport,
}

/// Why `login` returned no stored key. [`LoginError::KeyNotStored`] still carries the key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LoginError {
    /// The loopback listener could not be opened.
    #[error(transparent)]
    Bind(#[from] BindError),
    /// The store could not be opened, or would refuse any key ([`KeyStore::preflight`]);
    /// reported before anything was signed in. Display and `source()` are the store error's.
    #[error(transparent)]
    Store(StoreError),
    /// The sign-in failed; see [`FlowError::kind`] and [`FlowError::party`]. Display and
    /// `source()` are the flow error's.
    #[error(transparent)]
    Flow(FlowError),
    /// A key was obtained but not stored. Show `key` to the user: the store does not hold it
    /// (`reason` says why, and names a temporary file left holding it, if any).
    #[error("signed in, but the key could not be stored: {reason}")]
    KeyNotStored {
        /// The key. Give it to the user once.
        key: ApiKey,
        /// OpenRouter's user id, if sent.
        user_id: Option<String>,
        /// Why storing failed.
        reason: String,
    },
    /// `base_url` is neither https nor http on a loopback host
    /// ([`openrouter_auth_core::base_url_is_secure`]); nothing was sent or opened.
    #[error("refusing to sign in through {base_url}: it must be https (plain http only on localhost, 127.0.0.1 or [::1], for an emulator), or the code verifier and the API key would travel unencrypted")]
    InsecureBaseUrl {
        /// The refused base URL.
        base_url: url::Url,
    },
    /// No HTTP client: the default one could not be set up (the TLS setup failed), or the
    /// crate was built without the `reqwest` feature and [`LoginOptions::transport`] is unset.
    /// Nothing was sent or opened.
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
            LoginError::InsecureBaseUrl { .. } => "insecure_base_url",
            LoginError::HttpClient(_) => "http_client",
            LoginError::Io(_) => "io",
        }
    }
}

/// What the loop feeds its flow: the core's input, with the shell's store report.
pub(crate) type Input = openrouter_auth_core::Input<StoreReport>;

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
    /// key is never lost.
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
    /// A task on a tokio runtime.
    #[cfg(feature = "tokio")]
    Tokio(tokio::runtime::Handle, Arc<dyn AsyncTransport>),
}

/// Extra time the HTTP client gets beyond the flow's exchange timeout. The flow's own deadline
/// must decide: a client timer set to the same instant races it, and the two drivers then
/// report the same stall differently (`ExchangeTimedOut` or a transport `Network` error).
/// The client's timer only guards against a request that outlives the flow.
const TRANSPORT_GRACE: Duration = Duration::from_secs(2);

impl Exchanger {
    fn send(&self, id: ExchangeId, request: HttpRequest, timeout: Duration, inbox: Inbox) {
        let timeout = timeout + TRANSPORT_GRACE;
        let deliver =
            move |inbox: Inbox, r: Result<openrouter_auth_core::HttpResponse, TransportError>| {
                inbox.send(match r {
                    Ok(response) => Input::ExchangeResponse { id, response },
                    Err(e) => Input::ExchangeFailed {
                        id,
                        may_have_been_sent: e.may_have_been_sent,
                        reason: e.reason,
                    },
                })
            };
        match self {
            Exchanger::Blocking(client) => {
                let client = Arc::clone(client);
                std::thread::spawn(move || {
                    let r = client.send(&request, timeout);
                    deliver(inbox, r);
                });
            }
            #[cfg(feature = "tokio")]
            Exchanger::Tokio(handle, client) => {
                let client = Arc::clone(client);
                handle.spawn(async move {
                    let r = client.send(&request, timeout).await;
                    deliver(inbox, r);
                });
            }
        }
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
    let client = match &options.transport {
        Some(t) => Arc::clone(t),
        None => default_blocking(&options.base_url)?,
    };
    run(options, observer, cancel, Exchanger::Blocking(client))
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
    let mut flow: Flow<StoreReport> = Flow::new(options.flow_config(), &mut rng, now_since(epoch))
        .map_err(|e| match e {
            ConfigError::InsecureBaseUrl { base_url } => LoginError::InsecureBaseUrl { base_url },
            other => LoginError::Io(std::io::Error::other(other.to_string())),
        })?;
    let mut store = open_store(&options.store, &options.store_env).map_err(LoginError::Store)?;
    // Mint no key that the store would refuse anyway (a symlink, a read-only directory, a
    // hand-broken JSON file): say so now, before the browser opens.
    store.preflight().map_err(LoginError::Store)?;
    // What the store holds now: a different key found at store time appeared meanwhile.
    let replace = match options.force {
        true => Replace::Any,
        false => Replace::Seen(store.seen()),
    };

    // Where the loop sleeps between events: the loopback server's `mio::Poll` (loopback
    // mode), or the inbox channel alone (headless mode: no listener is opened at all, so
    // headless sign-in works where loopback sockets cannot be bound).
    let mut server = if options.headless {
        None
    } else {
        Some(LoopbackServer::bind(options.port)?)
    };
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
    let result = loop {
        let mut finished = None;
        while let Some(out) = flow.poll_output() {
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
                    observer.event(LoginEvent::Exchanging { attempt });
                    exchanger.send(id, request, timeout, inbox.clone());
                }
                Output::StoreKey { key, user_id } => {
                    observer.event(LoginEvent::Storing);
                    let meta = KeyMeta {
                        key_label: options.key_label.as_ref().map(|l| l.as_str().to_owned()),
                        user_id,
                    };
                    // Local and quick: done inline, so the store needs no thread or lock.
                    let input = store_key(store.as_mut(), &key, &meta, &replace);
                    inbox.send(input);
                }
                Output::PasteRejected { reason } => {
                    observer.event(LoginEvent::PasteRejected { reason })
                }
                Output::Finished(outcome) => finished = Some(outcome),
            }
        }
        if let Some(outcome) = finished {
            break outcome;
        }
        let until = flow.poll_timeout().map(|t| instant_of(epoch, t));
        let mut inputs = match &mut server {
            Some(server) => server
                .poll(until)?
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
        let now = now_since(epoch);
        for input in inputs {
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
            server.poll(Some(flush_until))?;
        }
    }
    match result {
        Outcome::Stored {
            key,
            user_id,
            report,
            ..
        } => Ok(LoginOutcome {
            key,
            user_id,
            stored: report,
        }),
        Outcome::KeyNotStored {
            key,
            user_id,
            reason,
        } => Err(LoginError::KeyNotStored {
            key,
            user_id,
            reason: reason.to_string(),
        }),
        Outcome::Failed(e) => Err(LoginError::Flow(e)),
    }
}

/// A server's input (a request or a closed connection) as the loop's flow takes it.
fn from_server(input: openrouter_auth_core::Input) -> Option<Input> {
    use openrouter_auth_core::Input as Plain;
    match input {
        Plain::Request(r) => Some(Input::Request(r)),
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
    }
}

/// Logs at debug what the flow did with an input; an ignored one says why.
fn log_handled(what: &'static str, handled: Handled) {
    match handled {
        Handled::Ignored(why) => tracing::debug!(input = what, ?why, "the flow ignored an input"),
        other => tracing::debug!(input = what, handled = ?other, "input handled"),
    }
}

fn store_key(store: &mut dyn KeyStore, key: &ApiKey, meta: &KeyMeta, replace: &Replace) -> Input {
    match store.store_replacing(key, meta, replace) {
        Ok(report) => Input::KeyStored {
            location: report.description.clone(),
            report,
        },
        Err(e) => Input::KeyNotStored {
            reason: store_failure(&e),
        },
    }
}

/// The core's kind of store failure for a [`StoreError`], with its message.
fn store_failure(e: &StoreError) -> StoreFailure {
    let message = e.to_string();
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
