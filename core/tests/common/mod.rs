#![allow(dead_code, missing_docs)]
use openrouter_auth_core::*;
use rand_chacha::rand_core::SeedableRng;
use rand_chacha::ChaCha20Rng;
use zeroize::Zeroizing;

pub const KEY: &str = "sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
pub const PORT: u16 = 53122;

pub fn t(ms: u64) -> Time {
    Time::from_millis(ms)
}

pub fn rng(seed: u64) -> ChaCha20Rng {
    ChaCha20Rng::seed_from_u64(seed)
}

pub fn bound_flow(seed: u64, config: FlowConfig) -> Flow {
    let mut f = Flow::new(config, &mut rng(seed), t(0)).unwrap();
    let _ = f.handle_input(
        Input::ListenerBound {
            port: PORT,
            ipv6: true,
        },
        t(0),
    );
    f
}

pub fn drain(f: &mut Flow) -> Vec<Output> {
    std::iter::from_fn(|| f.poll_output()).collect()
}

pub fn get(conn: u64, target: &str) -> Input {
    req(conn, "GET", target, &format!("localhost:{PORT}"))
}

pub fn req(conn: u64, method: &str, target: &str, host: &str) -> Input {
    Input::Request(BrowserRequest {
        conn: ConnectionId(conn),
        method: method.into(),
        target: Zeroizing::new(target.as_bytes().to_vec()),
        host: Some(host.as_bytes().to_vec()),
    })
}

pub fn own(f: &Flow, query: &str) -> String {
    format!("/callback/{}{query}", f.nonce().expose_secret())
}

pub fn ok_response() -> HttpResponse {
    HttpResponse::new(200, format!(r#"{{"key":"{KEY}","user_id":"user_1"}}"#))
}

/// The single response on `conn` among outputs.
pub fn response_for(outs: &[Output], conn: u64) -> BrowserResponse {
    let found: Vec<&BrowserResponse> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Respond {
                conn: c, response, ..
            } if c.0 == conn => Some(response),
            _ => None,
        })
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one response on conn {conn}: {outs:?}"
    );
    found[0].clone()
}

pub fn exchange_id(outs: &[Output]) -> ExchangeId {
    outs.iter()
        .find_map(|o| match o {
            Output::SendExchange { id, .. } => Some(*id),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no exchange in {outs:?}"))
}

pub fn finished(outs: &[Output]) -> Option<Outcome> {
    outs.iter().find_map(|o| match o {
        Output::Finished(o) => Some(o.clone()),
        _ => None,
    })
}

/// Every `SendExchange` id among outputs, in order.
pub fn exchange_ids(outs: &[Output]) -> Vec<ExchangeId> {
    outs.iter()
        .filter_map(|o| match o {
            Output::SendExchange { id, .. } => Some(*id),
            _ => None,
        })
        .collect()
}

/// How many `SendExchange` outputs there are.
pub fn sends(outs: &[Output]) -> usize {
    exchange_ids(outs).len()
}

/// How many `StoreKey` outputs there are.
pub fn store_keys(outs: &[Output]) -> usize {
    outs.iter()
        .filter(|o| matches!(o, Output::StoreKey { .. }))
        .count()
}

/// The JSON body of the first `SendExchange` among outputs.
pub fn exchange_body(outs: &[Output]) -> serde_json::Value {
    outs.iter()
        .find_map(|o| match o {
            Output::SendExchange { request, .. } => {
                Some(serde_json::from_slice(&request.body).unwrap())
            }
            _ => None,
        })
        .unwrap_or_else(|| panic!("no exchange in {outs:?}"))
}

/// The `<h1>` of an HTML page: what the user reads first.
pub fn title(r: &BrowserResponse) -> &str {
    let start = r.body.find("<h1>").map_or(0, |i| i + 4);
    let end = r.body.find("</h1>").unwrap_or(start);
    &r.body[start..end]
}

/// An error answer from OpenRouter in its documented shape.
pub fn error_response(status: u16, message: &str) -> HttpResponse {
    HttpResponse::new(
        status,
        serde_json::json!({"error": {"code": status, "message": message}}).to_string(),
    )
}

/// Drives a waiting flow through a real callback on `conn` to `Stored`, fetching `/done`,
/// and returns the outcome. Panics if any step does not behave like the happy path.
pub fn complete_via_callback(f: &mut Flow, conn: u64, at: u64) -> Outcome {
    assert!(
        matches!(f.phase(), Phase::Init | Phase::AwaitingCallback),
        "{:?}",
        f.phase()
    );
    let _ = f.handle_input(get(conn, &own(f, "?code=the-real-code")), t(at));
    let outs = drain(f);
    assert_eq!(f.phase(), Phase::Exchanging, "{outs:?}");
    assert_eq!(exchange_body(&outs)["code"], "the-real-code");
    let id = exchange_id(&outs);
    let _ = f.handle_input(
        Input::ExchangeResponse {
            id,
            response: ok_response(),
        },
        t(at + 1),
    );
    assert_eq!(store_keys(&drain(f)), 1);
    let _ = f.handle_input(
        Input::KeyStored {
            location: "credentials file /tmp/c.json".into(),
            report: (),
        },
        t(at + 2),
    );
    let outs = drain(f);
    assert_eq!(ended(f), Some(End::Stored));
    let r = response_for(&outs, conn);
    assert_eq!(r.status, 303);
    let done = r.header("location").unwrap().to_string();
    let _ = f.handle_input(get(conn + 1_000_000, &done), t(at + 3));
    let outs = drain(f);
    assert_eq!(
        title(&response_for(&outs, conn + 1_000_000)),
        "Signed in to OpenRouter"
    );
    let outcome = finished(&outs).expect("finished after /done");
    assert!(matches!(outcome, Outcome::Stored { .. }), "{outcome:?}");
    outcome
}

/// A bound flow that accepted a callback on `conn` and sent its first exchange.
pub fn exchanging_flow(seed: u64, conn: u64) -> (Flow, ExchangeId) {
    let mut f = bound_flow(seed, FlowConfig::default());
    drain(&mut f);
    let _ = f.handle_input(get(conn, &own(&f, "?code=the-code")), t(1000));
    let outs = drain(&mut f);
    assert_eq!(f.phase(), Phase::Exchanging);
    (f, exchange_id(&outs))
}

/// How an ended flow ended: the key stored, or not (failed, or a key that was not stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    Stored,
    Failed,
}

/// `Some` once the flow has ended (lingering or finished), saying how.
pub fn ended<R>(f: &Flow<R>) -> Option<End> {
    f.outcome().map(|o| match o {
        Outcome::Stored { .. } => End::Stored,
        _ => End::Failed,
    })
}

/// A store failure the way a shell reports a failed write.
pub fn write_failed(message: &str) -> StoreFailure {
    StoreFailure::WriteFailed {
        message: message.into(),
    }
}
