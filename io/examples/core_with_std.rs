//! The sans-IO core driven with nothing but `std` and a small blocking HTTP client (ureq; turn
//! on its `rustls` feature for https): listeners on 127.0.0.1 and ::1, a thread per connection.
use openrouter_auth_core::*;
use rand_core::{OsRng, TryRngCore};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::mpsc::{channel, Sender};
use std::time::{Duration, Instant};
use zeroize::Zeroizing;

/// What the threads tell the loop: an input, with the connection's stream if it is a request.
type Event = (Input, Option<TcpStream>);

/// Reads one request head (at most 16 KiB, 10 s) and hands it to the loop with its stream.
fn serve(mut stream: TcpStream, conn: ConnectionId, tx: Sender<Event>) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let (mut head, mut byte) = (Zeroizing::new(Vec::new()), [0u8]);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 * 1024 || stream.read(&mut byte).unwrap_or(0) == 0 {
            return drop(tx.send((Input::ConnectionClosed(conn), None)));
        }
        head.push(byte[0]);
    }
    let text = Zeroizing::new(String::from_utf8_lossy(&head).into_owned());
    let mut lines = text.split("\r\n");
    let mut first = lines.next().unwrap_or("").split(' ');
    let (method, target) = (first.next().unwrap_or("").to_owned(), first.next());
    let hosts: Vec<&str> = (lines.filter_map(|l| l.split_once(':')))
        .filter(|(name, _)| name.eq_ignore_ascii_case("host"))
        .map(|(_, v)| v.trim())
        .collect();
    let host = (hosts.len() == 1).then(|| hosts[0].as_bytes().to_vec());
    let target = Zeroizing::new(target.unwrap_or("").as_bytes().to_vec());
    let request = BrowserRequest {
        conn,
        method,
        target,
        host,
    };
    let _ = tx.send((Input::Request(request), Some(stream)));
}

/// Sends the core's code exchange; what came back (or why nothing did) is the flow's input.
fn exchange(id: ExchangeId, request: &HttpRequest, timeout: Duration) -> Input {
    let config = ureq::Agent::config_builder().timeout_global(Some(timeout));
    let agent: ureq::Agent = config
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let mut call = agent.post(request.url.as_str());
    for (name, value) in &request.headers {
        call = call.header(name.as_str(), value.as_str());
    }
    let answer = call.send(&request.body[..]).and_then(|mut answer| {
        let body = answer.body_mut().read_to_vec()?;
        Ok(HttpResponse::new(answer.status().as_u16(), body))
    });
    match answer {
        Ok(response) => Input::ExchangeResponse { id, response },
        Err(e) => Input::ExchangeFailed {
            id,
            // Nothing left this machine when no connection was made.
            may_have_been_sent: !matches!(
                e,
                ureq::Error::ConnectionFailed | ureq::Error::HostNotFound
            ),
            reason: e.to_string(),
        },
    }
}

/// An input the flow ignored says why; it may point at a bug in the shell.
fn log(handled: Handled) {
    if let Handled::Ignored(why) = handled {
        eprintln!("ignored: {why:?}")
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let epoch = Instant::now();
    let now = || Time::from_millis(epoch.elapsed().as_millis() as u64);
    let mut config = FlowConfig::default();
    if let Ok(url) = std::env::var("OPENROUTER_AUTH_BASE_URL") {
        config.base_url = url.parse()?; // an emulator
    }
    let mut flow: Flow = Flow::new(config, &mut OsRng.unwrap_err(), now())?;
    let v4 = TcpListener::bind("127.0.0.1:0")?;
    let port = v4.local_addr()?.port();
    let v6 = TcpListener::bind(("::1", port)).ok();
    let ipv6 = v6.is_some();
    let (tx, rx) = channel::<Event>();
    // Connection ids: even from 127.0.0.1, odd from ::1.
    for (family, listener) in std::iter::once(v4).chain(v6).enumerate() {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for (n, stream) in listener.incoming().flatten().enumerate() {
                let (tx, conn) = (tx.clone(), ConnectionId((2 * n + family) as u64));
                std::thread::spawn(move || serve(stream, conn, tx));
            }
        });
    }
    log(flow.handle_input(Input::ListenerBound { port, ipv6 }, now()));
    let mut streams: HashMap<ConnectionId, TcpStream> = HashMap::new();
    let outcome = loop {
        let mut finished = None;
        while let Some(output) = flow.poll_output() {
            match output {
                Output::OpenBrowser { url } => println!("Open {url} to sign in"),
                Output::Respond {
                    conn,
                    response,
                    head_only,
                } => {
                    if let Some(mut stream) = streams.remove(&conn) {
                        let _ = stream.write_all(&response.encode(head_only));
                        let _ = stream.shutdown(Shutdown::Both);
                    }
                }
                Output::SendExchange {
                    id,
                    request,
                    timeout,
                    ..
                } => {
                    let tx = tx.clone();
                    std::thread::spawn(move || tx.send((exchange(id, &request, timeout), None)));
                }
                // A real app writes the key to its own storage here.
                Output::StoreKey { .. } => {
                    let (location, report) = ("this example's memory".to_owned(), ());
                    let _ = tx.send((Input::KeyStored { location, report }, None));
                }
                // The last answers (the `/done` page) came out before this: stop after them.
                Output::Finished(outcome) => finished = Some(outcome),
                _ => {} // headless prompts, paste refusals, outputs a newer core may add
            }
        }
        if let Some(outcome) = finished {
            break outcome;
        }
        // Sleep until the next input or the flow's next deadline (none: until an input).
        let left = |t: Time| t.as_millis().saturating_sub(now().as_millis());
        let wait = Duration::from_millis(flow.poll_timeout().map_or(u64::MAX, left));
        let event = rx.recv_timeout(wait).ok();
        for (input, stream) in event.into_iter().chain(rx.try_iter()) {
            if let (Input::Request(request), Some(stream)) = (&input, stream) {
                streams.insert(request.conn, stream);
            }
            log(flow.handle_input(input, now()));
        }
        // A deadline that passed while inputs kept coming is still due.
        if flow.poll_timeout().is_some_and(|t| t <= now()) {
            log(flow.handle_timeout(now()));
        }
    };
    match outcome {
        Outcome::Stored { key, location, .. } => {
            println!("Signed in: key {} kept in {location}", key.hint())
        }
        other => println!("Not signed in: {other:?}"),
    }
    Ok(())
}
