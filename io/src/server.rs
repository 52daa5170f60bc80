use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use openrouter_auth_core::{ConnectionId, Input, Page, RequestHead};
use std::borrow::Cow;
use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use zeroize::{Zeroize, Zeroizing};

/// Largest request head accepted, in bytes (request line and headers, cookies included).
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most headers accepted in one request.
pub const MAX_HEADERS: usize = 64;
/// Time a connection has to deliver its whole request head.
pub const READ_DEADLINE: Duration = Duration::from_secs(10);
/// Time a connection has to take our whole answer.
pub const WRITE_DEADLINE: Duration = Duration::from_secs(10);
/// Most connections open at once.
pub const MAX_CONNECTIONS: usize = 512;
/// The `listen(2)` backlog: connections the kernel queues before we accept them (capped by
/// the OS, e.g. `net.core.somaxconn`). The usual 128 overflows under a burst of preconnects
/// while the loop is busy, and Linux then drops the browser's SYN: a retry 1 s later, then 3 s.
pub const LISTEN_BACKLOG: i32 = 1024;
/// File descriptors left to the rest of the login once `accept` ran out of them: the code
/// exchange needs a socket (and DNS), the key store a few files.
pub const FD_RESERVE: usize = 32;
/// The connection limit never drops below this, however few descriptors there are.
const MIN_CONNECTIONS: usize = 4;
/// How soon to try accepting again after `accept` failed with nothing to make room with.
const ACCEPT_RETRY: Duration = Duration::from_millis(50);

const LISTENER_V4: Token = Token(0);
const LISTENER_V6: Token = Token(1);
/// The token of the waker that lets other threads reach the loop.
pub(crate) const WAKER: Token = Token(2);
const FIRST_CONN: usize = 16;

/// How many ephemeral ports [`LoopbackServer::bind`]`(0)` tries before giving up, when each
/// one it is handed on 127.0.0.1 is already taken on ::1 by another program.
pub const MAX_PORT_TRIES: u32 = 32;

/// One of the two loopback addresses the listener serves.
// Deliberately exhaustive: there are two IP families, and a match over them may rely on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IpFamily {
    /// `127.0.0.1`.
    V4,
    /// `[::1]`.
    V6,
}

impl IpFamily {
    /// `127.0.0.1` or `::1`.
    pub fn loopback(self) -> IpAddr {
        match self {
            IpFamily::V4 => Ipv4Addr::LOCALHOST.into(),
            IpFamily::V6 => Ipv6Addr::LOCALHOST.into(),
        }
    }
}

impl std::fmt::Display for IpFamily {
    /// `127.0.0.1` or `[::1]`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            IpFamily::V4 => "127.0.0.1",
            IpFamily::V6 => "[::1]",
        })
    }
}

/// Why the listener could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BindError {
    /// The fixed port is taken on 127.0.0.1 or on ::1 by another program (`EADDRINUSE`).
    /// Either one is enough: a browser that reaches `localhost` over the other family would
    /// hand the authorization code to that program (RFC 8252 section 8.3). The message names
    /// a command that shows the holder (`ss` on Linux, `lsof` on macOS and the BSDs,
    /// PowerShell's `Get-NetTCPConnection` on Windows).
    #[error("port {port} on {family} is already in use by another program{}", holder_hint(*port))]
    PortInUse {
        /// The port asked for.
        port: u16,
        /// Where it is taken.
        family: IpFamily,
    },
    /// Any free port (port 0) was asked for, and each of the [`MAX_PORT_TRIES`] ports the
    /// system handed out on 127.0.0.1 was already taken on ::1 by another program.
    #[error("no port was free on both 127.0.0.1 and [::1] after {tries} tries: other programs hold [::1] on every port tried")]
    NoFreePort {
        /// Ports tried.
        tries: u32,
    },
    /// Listening on one family failed for another reason than a taken port (e.g. permission
    /// denied). IPv6 that is not available on this machine is not an error: see
    /// [`LoopbackServer::bind`].
    #[error("could not listen on {family} port {port}: {source}")]
    Listen {
        /// The port (0 = any).
        port: u16,
        /// Where listening failed.
        family: IpFamily,
        /// The OS error.
        source: io::Error,
    },
    /// Any other OS error (creating the poller or registering a listener with it).
    #[error("could not open the loopback listener on port {port}: {source}")]
    Io {
        /// The port asked for (0 = any).
        port: u16,
        /// The OS error.
        source: io::Error,
    },
}

/// How to find who holds `port`, as a parenthesised clause for an error message.
fn holder_hint(port: u16) -> String {
    if cfg!(any(target_os = "linux", target_os = "android")) {
        format!(" (`ss -ltnp 'sport = :{port}'` shows which)")
    } else if cfg!(windows) {
        format!(
            " (`Get-NetTCPConnection -State Listen -LocalPort {port}` in PowerShell shows which)"
        )
    } else if cfg!(unix) {
        format!(" (`lsof -nP -iTCP:{port} -sTCP:LISTEN` shows which)")
    } else {
        String::new()
    }
}

enum ConnState {
    /// Reading the request head.
    Reading { buf: Zeroizing<Vec<u8>> },
    /// The head went to the flow; waiting for its answer.
    Waiting,
    /// Writing the answer (the flow's, or one of the server's own [`Fixed`] answers).
    Writing { buf: Cow<'static, [u8]>, pos: usize },
}

struct Conn {
    stream: TcpStream,
    id: ConnectionId,
    state: ConnState,
    deadline: Option<Instant>,
    opened: Instant,
    /// What the connection is registered for with the poll, if it is registered at all. A
    /// connection is registered only once it has to wait: one whose head is already there
    /// when it is accepted and whose answer fits in the socket's buffer is read, answered
    /// and closed without a single `epoll_ctl`.
    registered: Option<Interest>,
}

/// The loopback HTTP server. The driving loop in `login` polls it.
///
/// # How it works
///
/// The loopback server: one `mio::Poll`, listeners on 127.0.0.1 and ::1 on the same port,
/// bounded everything. It turns bytes into core inputs and core outputs into bytes; every
/// decision about what a request means is the core's (`openrouter_auth_core::Flow`).
///
/// Limits (TigerBeetle's rule: a limit on everything a stranger can send):
/// - request head: at most [`MAX_HEAD_BYTES`] (16 KiB) and [`MAX_HEADERS`] (64) headers, else
///   431. Browsers send every `localhost` cookie to every port, so a developer's machine can
///   carry several KiB of them on the callback; 16 KiB (Node's default) leaves room for that;
/// - time: [`READ_DEADLINE`] (10 s) to send the head, else 408; [`WRITE_DEADLINE`] to take
///   the answer, else the connection is dropped;
/// - connections: [`MAX_CONNECTIONS`] (512) open at once, fewer if the process runs out of
///   file descriptors first (macOS starts programs with a soft limit of 256): then the limit
///   drops to what fitted minus 32, kept free for the code exchange and the key
///   store. The oldest connection still reading its head is dropped to make room. The kernel
///   queues up to 1,024 connections not yet accepted, so a burst does not make
///   it drop the browser's connection attempt;
/// - one request per connection, `Connection: close`.
///
/// Sources: RFC 8252 sections 7.3 and 8.3; PROTOCOL.md section 7.
pub struct LoopbackServer {
    poll: Poll,
    v4: TcpListener,
    v6: Option<TcpListener>,
    port: u16,
    conns: HashMap<Token, Conn>,
    by_id: HashMap<ConnectionId, Token>,
    next_token: usize,
    waker: Arc<Waker>,
    events: Events,
    /// Set when `accept` failed (out of descriptors) and connections may still be queued: the
    /// listener will not signal again for them, so try again at this time.
    accept_retry_at: Option<Instant>,
    /// The connection limit: [`MAX_CONNECTIONS`], lowered if descriptors ran out first.
    max_conns: usize,
    /// The one buffer every read goes into first ([`READ_CHUNK`] bytes). A head that arrives
    /// in one read is parsed and handed over from here, so it needs no buffer of its own;
    /// the bytes read are wiped after each use (they may hold the authorization code).
    scratch: Zeroizing<Vec<u8>>,
    /// Connections handed to the flow before they were registered: registered at the start
    /// of the next [`Self::poll`] if still open (the flow holds the callback while it
    /// exchanges the code, and the server must notice the browser going away).
    unregistered: Vec<Token>,
}

/// Bytes asked for by one `read(2)`.
const READ_CHUNK: usize = 4096;

/// What one turn of [`LoopbackServer::poll`] produced besides the requests it handed over.
#[derive(Default)]
pub(crate) struct Turn {
    /// Inputs for the flow (closed connections).
    pub inputs: Vec<Input>,
    /// Whether the waker fired (other threads have inputs queued).
    pub woken: bool,
}

impl LoopbackServer {
    /// Listens on 127.0.0.1:`port` and `[::1]` on the same port; never on a non-loopback
    /// address.
    ///
    /// - A fixed `port` that another program holds on either family fails at once with
    ///   [`BindError::PortInUse`].
    /// - `port` 0 takes a free port the system hands out on 127.0.0.1; if ::1 is taken on
    ///   it, tries another, up to [`MAX_PORT_TRIES`] ports ([`BindError::NoFreePort`]).
    /// - Only when IPv6 is not available on this machine (`EADDRNOTAVAIL`, `EAFNOSUPPORT`,
    ///   `EPROTONOSUPPORT` on ::1) does it serve 127.0.0.1 alone ([`Self::has_ipv6`] is then
    ///   `false`, and the flow must advertise `127.0.0.1`: pass it in
    ///   [`Input::ListenerBound`]). Any other failure on ::1 is [`BindError::Listen`].
    ///
    /// Source: RFC 8252 sections 7.3 and 8.3.
    pub fn bind(port: u16) -> Result<Self, BindError> {
        let poll = Poll::new().map_err(|source| BindError::Io { port, source })?;
        let (mut v4, mut v6) = if port == 0 {
            bind_any_free(MAX_PORT_TRIES, |_| 0)?
        } else {
            bind_pair(port)?
        };
        let actual = v4
            .local_addr()
            .map_err(|source| BindError::Io { port, source })?
            .port();
        let registry = poll.registry();
        registry
            .register(&mut v4, LISTENER_V4, Interest::READABLE)
            .map_err(|source| BindError::Io { port, source })?;
        if let Some(l) = v6.as_mut() {
            registry
                .register(l, LISTENER_V6, Interest::READABLE)
                .map_err(|source| BindError::Io { port, source })?;
        }
        let waker =
            Arc::new(Waker::new(registry, WAKER).map_err(|source| BindError::Io { port, source })?);
        tracing::debug!(
            port = actual,
            ipv6 = v6.is_some(),
            "loopback listener bound"
        );
        Ok(Self {
            poll,
            v4,
            v6,
            port: actual,
            conns: HashMap::new(),
            by_id: HashMap::new(),
            next_token: FIRST_CONN,
            waker,
            events: Events::with_capacity(256),
            accept_retry_at: None,
            max_conns: MAX_CONNECTIONS,
            scratch: Zeroizing::new(vec![0; READ_CHUNK]),
            unregistered: Vec::new(),
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Whether `[::1]` is served too.
    pub fn has_ipv6(&self) -> bool {
        self.v6.is_some()
    }

    /// A waker other threads use to interrupt [`LoopbackServer::poll`].
    pub(crate) fn waker(&self) -> Arc<Waker> {
        self.waker.clone()
    }

    /// Open connections.
    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// Whether any answer is still being written.
    pub(crate) fn has_pending_writes(&self) -> bool {
        self.conns
            .values()
            .any(|c| matches!(c.state, ConnState::Writing { .. }))
    }

    fn next_deadline(&self) -> Option<Instant> {
        self.conns.values().filter_map(|c| c.deadline).min()
    }

    /// Waits for events until `until` (or the nearest connection deadline), handles them,
    /// and returns the inputs for the flow. Each complete request head goes to `on_request`
    /// as it is parsed, borrowed from the connection's read buffer (for
    /// [`Flow::handle_request`](openrouter_auth_core::Flow::handle_request): the flow
    /// decides, and copies out only a code or an `error=`); the buffer is wiped after.
    pub(crate) fn poll(
        &mut self,
        until: Option<Instant>,
        on_request: &mut dyn FnMut(ConnectionId, &RequestHead<'_>),
    ) -> io::Result<Turn> {
        for token in std::mem::take(&mut self.unregistered) {
            let Some(conn) = self.conns.get_mut(&token) else {
                continue; // answered and closed already
            };
            let interest = match conn.state {
                ConnState::Writing { .. } => Interest::WRITABLE,
                ConnState::Reading { .. } | ConnState::Waiting => Interest::READABLE,
            };
            register(&self.poll, conn, token, interest);
        }
        let now = Instant::now();
        let wake_at = [until, self.next_deadline(), self.accept_retry_at]
            .into_iter()
            .flatten()
            .min();
        let timeout = wake_at.map(|t| t.saturating_duration_since(now));
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        let mut turn = Turn::default();
        let tokens: Vec<(Token, bool, bool)> = self
            .events
            .iter()
            .map(|e| {
                (
                    e.token(),
                    e.is_readable() || e.is_read_closed() || e.is_error(),
                    e.is_writable() || e.is_error(),
                )
            })
            .collect();
        for (token, readable, writable) in tokens {
            match token {
                LISTENER_V4 | LISTENER_V6 => self.accept_all(token, &mut turn.inputs, on_request),
                WAKER => turn.woken = true,
                t => {
                    if readable {
                        self.on_readable(t, &mut turn.inputs, on_request);
                    }
                    if writable {
                        self.on_writable(t);
                    }
                }
            }
        }
        let now = Instant::now();
        self.expire(now);
        if self.accept_retry_at.is_some_and(|t| now >= t) {
            self.accept_retry_at = None;
            self.accept_all(LISTENER_V4, &mut turn.inputs, on_request);
            self.accept_all(LISTENER_V6, &mut turn.inputs, on_request);
        }
        Ok(turn)
    }

    fn accept_all(
        &mut self,
        which: Token,
        inputs: &mut Vec<Input>,
        on_request: &mut dyn FnMut(ConnectionId, &RequestHead<'_>),
    ) {
        loop {
            let listener = if which == LISTENER_V4 {
                Some(&self.v4)
            } else {
                self.v6.as_ref()
            };
            let Some(listener) = listener else { return };
            match listener.accept() {
                Ok((stream, peer)) => {
                    if !peer.ip().is_loopback() {
                        // Cannot happen on a loopback listener; refuse anyway.
                        continue;
                    }
                    self.admit(stream, inputs, on_request);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::Interrupted
                            | io::ErrorKind::ConnectionAborted
                            | io::ErrorKind::ConnectionReset
                    ) =>
                {
                    continue
                }
                Err(e) if out_of_descriptors(&e) => {
                    // The listener signals only for new arrivals: without making room now, the
                    // connections already queued (the browser's among them) would wait until
                    // the login times out. Lower the limit so the exchange and the store keep
                    // descriptors to work with, drop the oldest idle connections down to it,
                    // and go on accepting; with nothing to drop, try again shortly.
                    let budget = self
                        .conns
                        .len()
                        .saturating_sub(FD_RESERVE)
                        .max(MIN_CONNECTIONS);
                    if budget < self.max_conns {
                        tracing::debug!(error = %e, limit = budget, "out of file descriptors; lowering the connection limit");
                        self.max_conns = budget;
                    }
                    let mut dropped = false;
                    while let Some(t) = self.oldest_reading() {
                        self.drop_conn(t);
                        dropped = true;
                        if self.conns.len() < self.max_conns {
                            break;
                        }
                    }
                    if !dropped {
                        self.accept_retry_at = Some(Instant::now() + ACCEPT_RETRY);
                        return;
                    }
                }
                Err(e) => {
                    tracing::debug!(error = %e, "accept failed; retrying shortly");
                    self.accept_retry_at = Some(Instant::now() + ACCEPT_RETRY);
                    return;
                }
            }
        }
    }

    /// The oldest connection still reading its head (an idle preconnect or a slowloris):
    /// the one to drop when room is needed. Never one the flow is holding or answering.
    fn oldest_reading(&self) -> Option<Token> {
        self.conns
            .iter()
            .filter(|(_, c)| matches!(c.state, ConnState::Reading { .. }))
            .min_by_key(|(_, c)| c.opened)
            .map(|(t, _)| *t)
    }

    /// Takes a new connection and reads it at once: a browser or a script has usually sent
    /// its head by the time it is accepted. It is registered with the poll only if it has
    /// to wait (see [`Conn::registered`]).
    fn admit(
        &mut self,
        mut stream: TcpStream,
        inputs: &mut Vec<Input>,
        on_request: &mut dyn FnMut(ConnectionId, &RequestHead<'_>),
    ) {
        if self.conns.len() >= self.max_conns {
            // Make room by dropping the oldest connection still reading its head.
            match self.oldest_reading() {
                Some(t) => self.drop_conn(t),
                None => {
                    let _ = stream.write(Fixed::Busy.bytes());
                    return;
                }
            }
        }
        let token = Token(self.next_token);
        self.next_token += 1;
        let id = ConnectionId(token.0 as u64);
        // No `TCP_NODELAY`: each connection gets one answer, written whole and followed by
        // the `shutdown`, which sends any segment Nagle's algorithm held back at once.
        let now = Instant::now();
        self.conns.insert(
            token,
            Conn {
                stream,
                id,
                state: ConnState::Reading {
                    buf: Zeroizing::new(Vec::new()),
                },
                deadline: Some(now + READ_DEADLINE),
                opened: now,
                registered: None,
            },
        );
        self.by_id.insert(id, token);
        self.on_readable(token, inputs, on_request);
    }

    fn drop_conn(&mut self, token: Token) {
        if let Some(c) = self.conns.remove(&token) {
            // Closing the descriptor takes it out of epoll's and kqueue's interest lists;
            // elsewhere mio needs the registration undone first.
            #[cfg(not(unix))]
            if c.registered.is_some() {
                let mut c = c;
                let _ = self.poll.registry().deregister(&mut c.stream);
            }
            self.by_id.remove(&c.id);
        }
    }

    fn on_readable(
        &mut self,
        token: Token,
        inputs: &mut Vec<Input>,
        on_request: &mut dyn FnMut(ConnectionId, &RequestHead<'_>),
    ) {
        enum After {
            Nothing,
            /// The head went to the flow.
            Handed,
            Drop,
            Closed(ConnectionId),
            Answer(Fixed),
        }
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let scratch = &mut self.scratch[..];
        let after = match &mut conn.state {
            ConnState::Reading { buf } => loop {
                match conn.stream.read(scratch) {
                    // Closed before a whole head arrived.
                    Ok(0) => break After::Drop,
                    Ok(n) => {
                        // The usual case, a whole head in the first read, is parsed where it
                        // was read; anything else is gathered in the connection's buffer.
                        let head = if buf.is_empty() {
                            &scratch[..n]
                        } else {
                            let room = (MAX_HEAD_BYTES + 1).saturating_sub(buf.len());
                            buf.extend_from_slice(&scratch[..n.min(room)]);
                            &buf[..]
                        };
                        let parsed = match parse_head(head) {
                            Head::Partial if head.len() > MAX_HEAD_BYTES => {
                                Some(After::Answer(Fixed::HeadTooLarge))
                            }
                            Head::Partial => None,
                            Head::Complete(head) => {
                                on_request(conn.id, &head);
                                Some(After::Handed)
                            }
                            Head::Reject(fixed) => Some(After::Answer(fixed)),
                        };
                        if parsed.is_none() && buf.is_empty() {
                            buf.extend_from_slice(&scratch[..n]);
                        }
                        scratch[..n].zeroize();
                        match parsed {
                            None => continue,
                            Some(After::Handed) => {
                                // Drops the read buffer, which wipes it.
                                conn.state = ConnState::Waiting;
                                conn.deadline = None;
                                if conn.registered.is_none() {
                                    self.unregistered.push(token);
                                }
                                break After::Nothing;
                            }
                            Some(after) => break after,
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        register(&self.poll, conn, token, Interest::READABLE);
                        break After::Nothing;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(_) => break After::Drop,
                }
            },
            ConnState::Waiting => {
                // One request per connection: anything more is discarded. A read error means
                // the browser went away; a clean EOF may be a half-close, so keep waiting.
                let mut sink = [0u8; 1024];
                loop {
                    match conn.stream.read(&mut sink) {
                        Ok(0) => {
                            register(&self.poll, conn, token, Interest::WRITABLE);
                            break After::Nothing;
                        }
                        Ok(_) => continue,
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => break After::Nothing,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                        Err(_) => break After::Closed(conn.id),
                    }
                }
            }
            ConnState::Writing { .. } => After::Nothing,
        };
        match after {
            After::Nothing | After::Handed => {}
            After::Drop => self.drop_conn(token),
            After::Closed(id) => {
                self.drop_conn(token);
                inputs.push(Input::ConnectionClosed(id));
            }
            After::Answer(fixed) => self.answer_now(token, fixed),
        }
    }

    fn on_writable(&mut self, token: Token) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        let ConnState::Writing { buf, pos } = &mut conn.state else {
            return;
        };
        let done = loop {
            if *pos >= buf.len() {
                // The FIN now, with the last segment `send_answer` held back. Not left to the
                // close: a client that sent more than we read (a body, an oversized head)
                // gets a reset from the close, which would discard an answer still queued.
                let _ = conn.stream.shutdown(std::net::Shutdown::Write);
                break true;
            }
            match send_answer(&mut conn.stream, &buf[*pos..]) {
                Ok(0) => break true,
                Ok(n) => *pos += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    register(&self.poll, conn, token, Interest::WRITABLE);
                    break false;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break true,
            }
        };
        if done {
            self.drop_conn(token);
        }
    }

    /// Starts writing `bytes` on the connection the flow calls `conn`, then closes it.
    /// Unknown or already-closed connections are ignored.
    pub(crate) fn respond(&mut self, conn: ConnectionId, bytes: Vec<u8>) {
        let Some(&token) = self.by_id.get(&conn) else {
            return;
        };
        self.start_write(token, Cow::Owned(bytes));
        self.on_writable(token);
    }

    fn start_write(&mut self, token: Token, bytes: Cow<'static, [u8]>) {
        let Some(conn) = self.conns.get_mut(&token) else {
            return;
        };
        conn.state = ConnState::Writing { buf: bytes, pos: 0 };
        conn.deadline = Some(Instant::now() + WRITE_DEADLINE);
        // Registered for writing only if the first write cannot take it all (`on_writable`).
    }

    fn answer_now(&mut self, token: Token, fixed: Fixed) {
        self.start_write(token, Cow::Borrowed(fixed.bytes()));
        self.on_writable(token);
    }

    fn expire(&mut self, now: Instant) {
        let due: Vec<(Token, bool)> = self
            .conns
            .iter()
            .filter(|(_, c)| c.deadline.is_some_and(|d| now >= d))
            .map(|(t, c)| {
                (
                    *t,
                    matches!(&c.state, ConnState::Reading { buf } if !buf.is_empty()),
                )
            })
            .collect();
        for (token, partial_head) in due {
            if partial_head {
                // A stalled request head gets a 408; the answer has its own write deadline.
                self.answer_now(token, Fixed::RequestTimeout);
            } else {
                // An idle preconnect, or a reader that never takes our answer.
                self.drop_conn(token);
            }
        }
    }
}

/// Writes part of an answer that the close will follow. On Linux it is sent with `MSG_MORE`:
/// the kernel holds back a last segment shorter than the MSS, and the `shutdown` that follows
/// the last write sends it with the FIN in the same segment: one packet (and one wake-up of
/// the browser) fewer, and nothing waits for the cork's timer.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn send_answer(stream: &mut TcpStream, bytes: &[u8]) -> io::Result<usize> {
    socket2::SockRef::from(&*stream).send_with_flags(bytes, libc::MSG_MORE | libc::MSG_NOSIGNAL)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn send_answer(stream: &mut TcpStream, bytes: &[u8]) -> io::Result<usize> {
    stream.write(bytes)
}

/// Registers `conn` with `poll` for `interest`, or changes what it is registered for; a
/// connection that cannot be registered is left to its deadline.
fn register(poll: &Poll, conn: &mut Conn, token: Token, interest: Interest) {
    let registry = poll.registry();
    let done = match conn.registered {
        Some(now) if now == interest => return,
        Some(_) => registry.reregister(&mut conn.stream, token, interest),
        None => registry.register(&mut conn.stream, token, interest),
    };
    if done.is_ok() {
        conn.registered = Some(interest);
    }
}

/// Whether `accept` failed for want of file descriptors (EMFILE, ENFILE) or memory.
fn out_of_descriptors(e: &io::Error) -> bool {
    if e.kind() == io::ErrorKind::OutOfMemory {
        return true;
    }
    // ENFILE and EMFILE are 23 and 24 on Linux, macOS and the BSDs; WSAEMFILE and
    // WSAENOBUFS on Windows.
    #[cfg(unix)]
    const CODES: [i32; 2] = [23, 24];
    #[cfg(windows)]
    const CODES: [i32; 2] = [10024, 10055];
    #[cfg(not(any(unix, windows)))]
    const CODES: [i32; 0] = [];
    e.raw_os_error().is_some_and(|c| CODES.contains(&c))
}

/// 127.0.0.1:`port` and `[::1]` on the port that got (`port` 0: any free one). `None` for
/// ::1 only when IPv6 is not available here; a port taken on either family is
/// [`BindError::PortInUse`] (never for `port` 0 on 127.0.0.1: the system picks a free one).
fn bind_pair(port: u16) -> Result<(TcpListener, Option<TcpListener>), BindError> {
    let v4 = listen(SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
        .map_err(|e| bind_error(e, port, IpFamily::V4))?;
    let actual = v4
        .local_addr()
        .map_err(|source| BindError::Io { port, source })?
        .port();
    match listen(SocketAddr::from((Ipv6Addr::LOCALHOST, actual))) {
        Ok(v6) => Ok((v4, Some(v6))),
        Err(e) if ipv6_unavailable(&e) => {
            tracing::debug!(port = actual, error = %e, "IPv6 is not available here; serving on 127.0.0.1 only");
            Ok((v4, None))
        }
        Err(e) => Err(bind_error(e, actual, IpFamily::V6)),
    }
}

/// [`bind_pair`] on the port `pick(try)` names (0 = the system's pick), until one is free on
/// both families, at most `tries` times. A port taken on one family is let go (its other
/// listener closes) and the next one is tried.
fn bind_any_free(
    tries: u32,
    mut pick: impl FnMut(u32) -> u16,
) -> Result<(TcpListener, Option<TcpListener>), BindError> {
    for attempt in 0..tries {
        match bind_pair(pick(attempt)) {
            Err(BindError::PortInUse { port, family }) => {
                tracing::debug!(port, %family, "port taken by another program; trying another");
            }
            other => return other,
        }
    }
    Err(BindError::NoFreePort { tries })
}

/// A failed `listen` on `family`: a taken port is [`BindError::PortInUse`] unless it was
/// the system's own pick (port 0).
fn bind_error(source: io::Error, port: u16, family: IpFamily) -> BindError {
    if source.kind() == io::ErrorKind::AddrInUse && port != 0 {
        BindError::PortInUse { port, family }
    } else {
        BindError::Listen {
            port,
            family,
            source,
        }
    }
}

/// Whether a failure on ::1 means this machine has no IPv6 loopback: ::1 not assigned
/// (`EADDRNOTAVAIL`, e.g. `disable_ipv6`), or no IPv6 in the kernel (`EAFNOSUPPORT`,
/// `EPROTONOSUPPORT`). Only then may the listener run on 127.0.0.1 alone.
fn ipv6_unavailable(e: &io::Error) -> bool {
    if e.kind() == io::ErrorKind::AddrNotAvailable {
        return true;
    }
    #[cfg(unix)]
    const CODES: [i32; 2] = [libc::EAFNOSUPPORT, libc::EPROTONOSUPPORT];
    // WSAEAFNOSUPPORT, WSAEPROTONOSUPPORT.
    #[cfg(windows)]
    const CODES: [i32; 2] = [10047, 10043];
    #[cfg(not(any(unix, windows)))]
    const CODES: [i32; 0] = [];
    e.raw_os_error().is_some_and(|c| CODES.contains(&c))
}

/// A non-blocking listener on `addr` with a [`LISTEN_BACKLOG`] backlog. Like
/// `mio::net::TcpListener::bind`, it sets `SO_REUSEADDR` on unix only (quick rebinding of a
/// fixed port after a previous run; on Windows the option would allow port hijacking), and
/// `SO_REUSEADDR` on Linux never lets two listeners share a port.
fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(LISTEN_BACKLOG)?;
    Ok(TcpListener::from_std(socket.into()))
}

pub(crate) enum Head<'a> {
    Partial,
    /// Borrowed from the read buffer: the flow decides on it as it is.
    Complete(RequestHead<'a>),
    /// Answer at once with this and close.
    Reject(Fixed),
}

/// The answers the server gives on its own, before (or instead of) asking the flow. Each is
/// rendered once per process (for the default app name: the server does not know the
/// flow's) and then written from the same bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fixed {
    /// 503: at the connection limit with nothing to drop.
    Busy,
    /// 408: the head did not arrive within [`READ_DEADLINE`].
    RequestTimeout,
    /// 431: over [`MAX_HEAD_BYTES`] or [`MAX_HEADERS`].
    HeadTooLarge,
    /// 400: not an HTTP request head.
    Unparsable,
    /// 400: an HTTP version other than 1.0 and 1.1; `true` for a HEAD request.
    UnsupportedVersion(bool),
}

impl Fixed {
    const ALL: [Fixed; 6] = [
        Fixed::Busy,
        Fixed::RequestTimeout,
        Fixed::HeadTooLarge,
        Fixed::Unparsable,
        Fixed::UnsupportedVersion(false),
        Fixed::UnsupportedVersion(true),
    ];

    /// The page, and whether it goes out without its body (HEAD).
    pub(crate) fn page(self) -> (Page, bool) {
        match self {
            Fixed::Busy => (Page::Busy, false),
            Fixed::RequestTimeout => (Page::RequestTimeout, false),
            Fixed::HeadTooLarge => (Page::HeadTooLarge, false),
            Fixed::Unparsable => (
                Page::BadRequest {
                    reason: "The request could not be parsed.".into(),
                },
                false,
            ),
            Fixed::UnsupportedVersion(head_only) => (
                Page::BadRequest {
                    reason: "Unsupported HTTP version.".into(),
                },
                head_only,
            ),
        }
    }

    /// The answer on the wire, rendered on first use.
    fn bytes(self) -> &'static [u8] {
        static BYTES: [OnceLock<Vec<u8>>; Fixed::ALL.len()] =
            [const { OnceLock::new() }; Fixed::ALL.len()];
        let i = Fixed::ALL
            .iter()
            .position(|f| *f == self)
            .expect("every answer is in ALL");
        BYTES[i].get_or_init(|| {
            let (page, head_only) = self.page();
            page.render().encode(head_only)
        })
    }
}

pub(crate) fn parse_head(buf: &[u8]) -> Head<'_> {
    // Left uninitialised: httparse writes only the headers it finds, and a 2 KiB array
    // zeroed for every head costs more than the `Host` lookup and the checks after it.
    let mut headers = [const { std::mem::MaybeUninit::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    match req.parse_with_uninit_headers(buf, &mut headers) {
        Ok(httparse::Status::Partial) => Head::Partial,
        Ok(httparse::Status::Complete(_)) => {
            let method = req.method.unwrap_or("");
            let head_only = method == "HEAD";
            let target = req.path.unwrap_or("").as_bytes();
            let mut hosts = req
                .headers
                .iter()
                .filter(|h| h.name.eq_ignore_ascii_case("host"));
            let host = match (hosts.next(), hosts.next()) {
                (Some(h), None) => Some(h.value),
                _ => None, // none, or more than one: the core answers 421
            };
            if req.version != Some(1) && req.version != Some(0) {
                return Head::Reject(Fixed::UnsupportedVersion(head_only));
            }
            Head::Complete(RequestHead {
                method,
                target,
                host,
            })
        }
        Err(httparse::Error::TooManyHeaders) => Head::Reject(Fixed::HeadTooLarge),
        Err(_) => Head::Reject(Fixed::Unparsable),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_head_shapes() {
        assert!(matches!(
            parse_head(b"GET / HTTP/1.1\r\nHost: x"),
            Head::Partial
        ));
        match parse_head(b"GET /a?b HTTP/1.1\r\nHost: localhost:1\r\n\r\n") {
            Head::Complete(r) => {
                assert_eq!(r.target, b"/a?b");
                assert_eq!(r.host, Some(&b"localhost:1"[..]));
            }
            _ => panic!(),
        }
        match parse_head(b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n") {
            Head::Complete(r) => assert_eq!(r.host, None),
            _ => panic!(),
        }
        assert!(matches!(
            parse_head(b"\x00\x01garbage\r\n\r\n"),
            Head::Reject(Fixed::Unparsable)
        ));
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        for i in 0..70 {
            many.extend_from_slice(format!("X-{i}: y\r\n").as_bytes());
        }
        many.extend_from_slice(b"\r\n");
        assert!(matches!(
            parse_head(&many),
            Head::Reject(Fixed::HeadTooLarge)
        ));
    }

    #[test]
    fn busy_fixed_port_is_a_clear_error() {
        let first = LoopbackServer::bind(0).unwrap();
        let port = first.port();
        let t = Instant::now();
        let err = LoopbackServer::bind(port).err().expect("port is taken");
        assert!(t.elapsed() < Duration::from_secs(1));
        assert!(matches!(err, BindError::PortInUse { port: p, family: IpFamily::V4 } if p == port));
        assert!(err.to_string().contains(&port.to_string()));
    }

    /// `bind(0)`'s retry, with the first port it is handed already taken on ::1 by another
    /// program: that port is let go and a port ours on both families is found instead.
    #[test]
    fn any_free_port_skips_a_port_squatted_on_ipv6() {
        let Ok(squatter) = std::net::TcpListener::bind("[::1]:0") else {
            eprintln!("skipped: no IPv6 loopback here");
            return;
        };
        let taken = squatter.local_addr().unwrap().port();
        let mut picks = Vec::new();
        let (v4, v6) = bind_any_free(MAX_PORT_TRIES, |attempt| {
            picks.push(attempt);
            if attempt == 0 {
                taken
            } else {
                0
            }
        })
        .unwrap();
        let port = v4.local_addr().unwrap().port();
        assert_ne!(port, taken);
        assert_eq!(
            v6.expect("::1 is served").local_addr().unwrap().port(),
            port
        );
        assert_eq!(picks, [0, 1]);
    }

    /// Every try handed a port taken on ::1: the retry is bounded and says so.
    #[test]
    fn any_free_port_gives_up_after_its_tries() {
        let Ok(squatter) = std::net::TcpListener::bind("[::1]:0") else {
            eprintln!("skipped: no IPv6 loopback here");
            return;
        };
        let taken = squatter.local_addr().unwrap().port();
        let mut calls = 0;
        let err = bind_any_free(5, |_| {
            calls += 1;
            taken
        })
        .expect_err("never free on ::1");
        assert!(matches!(err, BindError::NoFreePort { tries: 5 }), "{err:?}");
        assert_eq!(calls, 5);
    }

    #[test]
    fn only_a_missing_ipv6_stack_counts_as_no_ipv6() {
        let os = |kind: io::ErrorKind| io::Error::from(kind);
        assert!(ipv6_unavailable(&os(io::ErrorKind::AddrNotAvailable)));
        #[cfg(unix)]
        for code in [
            libc::EAFNOSUPPORT,
            libc::EPROTONOSUPPORT,
            libc::EADDRNOTAVAIL,
        ] {
            assert!(
                ipv6_unavailable(&io::Error::from_raw_os_error(code)),
                "{code}"
            );
        }
        #[cfg(unix)]
        for code in [libc::EADDRINUSE, libc::EACCES, libc::EPERM] {
            assert!(
                !ipv6_unavailable(&io::Error::from_raw_os_error(code)),
                "{code}"
            );
        }
        assert!(!ipv6_unavailable(&os(io::ErrorKind::AddrInUse)));
        assert!(!ipv6_unavailable(&os(io::ErrorKind::PermissionDenied)));
    }
}
