//! The load driver's engine: one thread, one `mio::Poll`, two kinds of connections.
//!
//! - *Churn* slots run closed-loop: connect, write one request head, read the answer to EOF,
//!   close, start again with the next request of the rotation. With `n` slots there are
//!   always `n` requests in flight, so the rate is what the server sustains.
//! - *Idle* slots connect and send nothing (a browser preconnect, a slowloris, a scanner that
//!   holds sockets). When the server drops one, it connects again after
//!   [`Spec::idle_reconnect_after`], as an attacker that wants to keep holding sockets would.
//!
//! The same engine drives our server and the peer, so the driver's own cost is the same on
//! both sides of every ratio.

use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Token};
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// What to send, how hard, for how long.
#[derive(Debug, Clone)]
pub struct Spec {
    /// The server.
    pub target: SocketAddr,
    /// Closed-loop request connections.
    pub churn: usize,
    /// The request heads churn slots send, in rotation.
    pub requests: Vec<Vec<u8>>,
    /// Idle connections to hold open.
    pub idle: usize,
    /// How long an idle slot waits before connecting again after the server dropped it.
    pub idle_reconnect_after: Duration,
    /// Idle connects per second at most (the first ones and the reconnects alike), so the
    /// holders ramp up instead of overflowing the server's listen backlog in one burst: a
    /// burst beyond the backlog drops SYNs, and each dropped connect waits a whole second for
    /// its SYN to be sent again (a kernel effect, not the server's).
    pub idle_connect_rate: f64,
    /// Stop after this long (also stops when the `stop` flag is set).
    pub duration: Duration,
}

/// What happened.
#[derive(Debug, Clone, Default)]
pub struct Report {
    /// Answers read to EOF that started with `HTTP/1.x`.
    pub completed: u64,
    /// Of those, answers with status 404.
    pub not_found: u64,
    /// Connections that failed (refused, reset, closed without an answer).
    pub failed: u64,
    /// Idle connections the server dropped and the driver opened again.
    pub idle_reconnects: u64,
    /// Idle connections open at the end.
    pub idle_open: usize,
    /// Wall time of the run.
    pub elapsed: Duration,
}

impl Report {
    /// Completed answers per second.
    pub fn rate(&self) -> f64 {
        self.completed as f64 / self.elapsed.as_secs_f64()
    }
}

enum State {
    Connecting,
    Writing(usize),
    Reading,
    Idle,
}

struct Slot {
    stream: Option<TcpStream>,
    state: State,
    generation: usize,
    idle: bool,
    request: usize,
    head: [u8; 12],
    got: usize,
    retry_at: Option<Instant>,
}

const SLOT_BITS: usize = 20;

fn token(slot: usize, generation: usize) -> Token {
    Token(generation << SLOT_BITS | slot)
}

fn split(t: Token) -> (usize, usize) {
    (t.0 & ((1 << SLOT_BITS) - 1), t.0 >> SLOT_BITS)
}

struct Engine<'a> {
    poll: Poll,
    spec: &'a Spec,
    slots: Vec<Slot>,
    next_request: usize,
    report: Report,
    /// Connects idle slots may still make now (a token bucket filled at
    /// [`Spec::idle_connect_rate`]).
    idle_tokens: f64,
}

impl Engine<'_> {
    fn open(&mut self, i: usize) {
        if self.slots[i].idle {
            if self.idle_tokens < 1.0 {
                // Wait for a token; the loop tries again.
                self.slots[i].stream = None;
                return;
            }
            self.idle_tokens -= 1.0;
        }
        let slot = &mut self.slots[i];
        slot.generation = slot.generation.wrapping_add(1) & 0xfff;
        slot.stream = None;
        slot.got = 0;
        slot.request = self.next_request % self.spec.requests.len().max(1);
        if !slot.idle {
            self.next_request += 1;
        }
        match TcpStream::connect(self.spec.target) {
            Ok(mut s) => {
                let tok = token(i, slot.generation);
                if self
                    .poll
                    .registry()
                    .register(&mut s, tok, Interest::WRITABLE | Interest::READABLE)
                    .is_ok()
                {
                    slot.stream = Some(s);
                    slot.state = State::Connecting;
                } else {
                    self.report.failed += 1;
                }
            }
            Err(_) => self.report.failed += 1,
        }
    }

    fn close_and_reopen(&mut self, i: usize) {
        if let Some(mut s) = self.slots[i].stream.take() {
            let _ = self.poll.registry().deregister(&mut s);
        }
        if self.slots[i].idle && !self.spec.idle_reconnect_after.is_zero() {
            self.slots[i].retry_at = Some(Instant::now() + self.spec.idle_reconnect_after);
        } else {
            self.open(i);
        }
    }

    fn on_event(&mut self, i: usize) {
        loop {
            let slot = &mut self.slots[i];
            let Some(stream) = slot.stream.as_mut() else {
                return;
            };
            match slot.state {
                State::Connecting => match stream.peer_addr() {
                    Ok(_) => {
                        if slot.idle {
                            slot.state = State::Idle;
                            let tok = token(i, slot.generation);
                            let _ =
                                self.poll
                                    .registry()
                                    .reregister(stream, tok, Interest::READABLE);
                            return;
                        }
                        slot.state = State::Writing(0);
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => {
                        if let Ok(Some(_)) | Err(_) = stream.take_error() {
                            self.report.failed += 1;
                            return self.close_and_reopen(i);
                        }
                        return;
                    }
                    Err(_) => {
                        self.report.failed += 1;
                        return self.close_and_reopen(i);
                    }
                },
                State::Writing(pos) => {
                    let req = &self.spec.requests[slot.request];
                    if pos >= req.len() {
                        slot.state = State::Reading;
                        let tok = token(i, slot.generation);
                        let _ = self
                            .poll
                            .registry()
                            .reregister(stream, tok, Interest::READABLE);
                        continue;
                    }
                    match stream.write(&req[pos..]) {
                        Ok(n) => slot.state = State::Writing(pos + n),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => {
                            // The server may answer and close before taking the whole head
                            // (a 400 on the first bytes): read what it said.
                            slot.state = State::Reading;
                        }
                    }
                }
                State::Reading => {
                    let mut buf = [0u8; 4096];
                    match stream.read(&mut buf) {
                        Ok(0) => {
                            if slot.got >= 12 && slot.head.starts_with(b"HTTP/1.") {
                                self.report.completed += 1;
                                if &slot.head[9..12] == b"404" {
                                    self.report.not_found += 1;
                                }
                            } else {
                                self.report.failed += 1;
                            }
                            return self.close_and_reopen(i);
                        }
                        Ok(n) => {
                            if slot.got < 12 {
                                let take = n.min(12 - slot.got);
                                slot.head[slot.got..slot.got + take].copy_from_slice(&buf[..take]);
                            }
                            slot.got += n;
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => {
                            if slot.got >= 12 && slot.head.starts_with(b"HTTP/1.") {
                                // Reset after a whole answer (unread junk on close).
                                self.report.completed += 1;
                            } else {
                                self.report.failed += 1;
                            }
                            return self.close_and_reopen(i);
                        }
                    }
                }
                State::Idle => {
                    let mut buf = [0u8; 1024];
                    match stream.read(&mut buf) {
                        Ok(0) => {
                            self.report.idle_reconnects += 1;
                            return self.close_and_reopen(i);
                        }
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => {
                            self.report.idle_reconnects += 1;
                            return self.close_and_reopen(i);
                        }
                    }
                }
            }
        }
    }
}

/// Runs `spec` until its duration passes or `stop` is set.
pub fn run(spec: &Spec, stop: &AtomicBool) -> io::Result<Report> {
    let poll = Poll::new()?;
    let mut slots = Vec::with_capacity(spec.churn + spec.idle);
    for k in 0..spec.churn + spec.idle {
        slots.push(Slot {
            stream: None,
            state: State::Connecting,
            generation: 0,
            idle: k >= spec.churn,
            request: 0,
            head: [0; 12],
            got: 0,
            retry_at: None,
        });
    }
    let mut e = Engine {
        poll,
        spec,
        slots,
        next_request: 0,
        report: Report::default(),
        idle_tokens: 0.0,
    };
    let start = Instant::now();
    let until = start + spec.duration;
    // Churn slots connect now; idle holders ramp up at `idle_connect_rate` in the loop.
    for i in 0..spec.churn + spec.idle {
        e.open(i);
    }
    let mut events = Events::with_capacity(1024);
    let mut last_refill = start;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now >= until {
            break;
        }
        let wait = (until - now).min(Duration::from_millis(if spec.idle > 0 { 2 } else { 20 }));
        match e.poll.poll(&mut events, Some(wait)) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        }
        for ev in events.iter() {
            let (i, generation) = split(ev.token());
            if i < e.slots.len() && e.slots[i].generation == generation {
                e.on_event(i);
            }
        }
        // Slots whose connect failed outright, and idle slots whose pause is over, have no
        // stream: connect again.
        let now = Instant::now();
        e.idle_tokens = (e.idle_tokens
            + now.duration_since(last_refill).as_secs_f64() * spec.idle_connect_rate)
            .min(spec.idle_connect_rate / 100.0 + 1.0);
        last_refill = now;
        for i in 0..e.slots.len() {
            if e.slots[i].stream.is_none() && e.slots[i].retry_at.is_none_or(|t| t <= now) {
                e.slots[i].retry_at = None;
                e.open(i);
            }
        }
    }
    e.report.elapsed = start.elapsed();
    e.report.idle_open = e
        .slots
        .iter()
        .filter(|s| s.idle && matches!(s.state, State::Idle) && s.stream.is_some())
        .count();
    Ok(e.report)
}

/// Runs `spec` on a new thread; set the returned flag to stop it early.
pub fn spawn(
    spec: Spec,
) -> (
    std::sync::Arc<AtomicBool>,
    std::thread::JoinHandle<io::Result<Report>>,
) {
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let h = std::thread::spawn(move || run(&spec, &flag));
    (stop, h)
}
