//! OpenRouter's side of the code exchange: what its server does with a request that reached it
//! (the model in `model.rs` decides the answer).

use super::*;

impl<'p> World<'p> {
    pub(super) fn at_server(
        &mut self,
        i: usize,
        id: ExchangeId,
        body: &[u8],
        deadline: u64,
        then: Then,
    ) -> Result<(), SimViolation> {
        let (mut resp, code) = self.model.exchange(body, self.now, &mut self.rng);
        let seen = {
            let s = self.flows[i].server_seen.entry(code.clone()).or_insert(0);
            *s += 1;
            *s
        };
        if seen > 1 {
            return Err(self.broken(
                i,
                "server-sees-code-once",
                format!("OpenRouter received this flow's code {seen} times"),
            ));
        }
        // The key is only looked up for the transcript's redactions.
        if resp.status == 200 && self.rec.is_some() {
            let key = serde_json::from_slice::<serde_json::Value>(&resp.body)
                .ok()
                .and_then(|v| v.get("key").and_then(|k| k.as_str()).map(str::to_owned))
                .unwrap_or_default();
            let n = self.model.keys().count();
            self.redact(&key, || format!("<key#{n}>"));
        }
        self.log("..", || {
            format!(
                "OpenRouter: exchange id={} code={code} -> {} {}",
                id.0,
                resp.status,
                lossy(&resp.body)
            )
        });
        let t = self.now;
        let timed_out = Input::ExchangeFailed {
            id,
            may_have_been_sent: true,
            reason: "operation timed out".into(),
        };
        match then {
            Then::Nothing => {}
            Then::Reset { after } => {
                let input = Input::ExchangeFailed {
                    id,
                    may_have_been_sent: true,
                    reason: "connection reset by peer".into(),
                };
                self.proxy(i, t + after, deadline, input, timed_out);
            }
            Then::Answer { down, fate } => {
                match fate {
                    Fate::ServerError { .. } => {
                        resp = HttpResponse::new(500, "Internal Server Error");
                    }
                    Fate::Garbage { which, .. } if resp.status == 200 => {
                        let body: Vec<u8> = match which {
                            0 => b"<html><body>Service temporarily unavailable</body></html>"
                                .to_vec(),
                            1 => self.rng.bytes(40),
                            2 => br#"{"data":{"user_id":"user_1"}}"#.to_vec(),
                            _ => br#"{"key":12345,"user_id":null}"#.to_vec(),
                        };
                        resp = HttpResponse::new(200, body);
                    }
                    Fate::Truncated { .. } if resp.status == 200 => {
                        let n = resp.body.len();
                        let cut = self.rng.range(0, n as u64 - 1) as usize;
                        resp = HttpResponse::new(200, resp.body[..cut].to_vec());
                    }
                    _ => {}
                }
                let at = t + down;
                let input = Input::ExchangeResponse { id, response: resp };
                if matches!(fate, Fate::Echo { .. }) && at < deadline {
                    let echo = Input::ExchangeResponse {
                        id: ExchangeId(id.0 + 1000),
                        response: HttpResponse::new(200, "{}"),
                    };
                    self.at(at.saturating_sub(1), Ev::ToFlow(i, Box::new(echo)));
                }
                if matches!(fate, Fate::Duplicate { .. }) && at < deadline {
                    self.at(at + 1, Ev::ToFlow(i, Box::new(input.clone())));
                }
                self.proxy(i, at, deadline, input, timed_out);
            }
        }
        Ok(())
    }
}
