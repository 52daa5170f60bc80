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
    let mut f = Flow::new(config, &mut rng(seed), t(0));
    f.handle_input(Input::ListenerBound { port: PORT }, t(0));
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
