//! The network: a request reaching the loopback listener, and the code exchange on its way to
//! OpenRouter and back (delays, resets, timeouts).

use super::*;

impl<'p> World<'p> {
    pub(super) fn request(&mut self, req: Req) -> Result<(), SimViolation> {
        let Some(i) = self.live_flow(req.port) else {
            self.log("..", || {
                format!(
                    "{} {} refused: nothing listens on port {}",
                    req.method,
                    lossy(&req.target),
                    req.port
                )
            });
            return Ok(());
        };
        let conn = self.next_conn;
        self.next_conn += 1;
        let slot = conn as usize;
        if self.conns.len() <= slot {
            self.conns
                .resize((slot + 1).max(2 * self.conns.len()), None);
        }
        self.conns[slot] = Some(ConnInfo {
            flow: i,
            who: req.who,
            kind: req.kind,
            answered: false,
        });
        self.flows[i].conn_order.push(conn);
        if req.who == Who::Browser(i) && req.method == "GET" {
            self.note_delivery(i, req.carries, None);
        }
        if let Some(after) = req.close_after {
            self.at(self.now + after, Ev::Close(conn));
        }
        self.log("->", || {
            let who = match req.who {
                Who::Browser(b) => format!("browser#{b}"),
                Who::StaleTab => "stale tab".into(),
                Who::Attacker => "attacker".into(),
            };
            format!(
                "{} {} host={} conn={conn} ({who})",
                req.method,
                lossy(&req.target),
                req.host.as_deref().map_or("-".into(), lossy)
            )
        });
        if let Some(r) = &mut self.rec {
            let f = &self.flows[i];
            let mut head = format!("{} ", req.method).into_bytes();
            head.extend_from_slice(&req.target);
            head.extend_from_slice(b" HTTP/1.1\r\n");
            if let Some(h) = &req.host {
                head.extend_from_slice(b"Host: ");
                head.extend_from_slice(h);
                head.extend_from_slice(b"\r\n");
            }
            if matches!(req.who, Who::Browser(_)) {
                head.extend_from_slice(b"User-Agent: Mozilla/5.0 (X11; Linux x86_64) sim\r\nAccept: text/html,application/xhtml+xml\r\nAccept-Language: en\r\nSec-Fetch-Mode: navigate\r\n");
            }
            head.extend_from_slice(b"\r\n");
            r.harvest.http_head.push(head);
            let fixed = openrouter_auth_oracle::fixed_nonce();
            let t = String::from_utf8_lossy(&req.target)
                .replace(&f.nonce, fixed.expose_secret())
                .into_bytes();
            r.harvest.callback_target.push(t);
        }
        let method = match req.method.as_str() {
            "GET" => Some(FuzzMethod::Get),
            "HEAD" => Some(FuzzMethod::Head),
            "POST" => Some(FuzzMethod::Post),
            "OPTIONS" => Some(FuzzMethod::Options),
            _ => None,
        };
        let op = match (method, req.fuzz_target) {
            (Some(method), Some(target)) => Some(FuzzOp::Request {
                method,
                host: req.fuzz_host,
                target,
            }),
            _ => None,
        };
        self.feed(
            i,
            Input::Request(BrowserRequest {
                conn: ConnectionId(conn),
                method: req.method,
                target: Zeroizing::new(req.target),
                host: req.host,
            }),
            op,
        )
    }

    pub(super) fn send_exchange(
        &mut self,
        i: usize,
        id: ExchangeId,
        attempt: u32,
        body: &[u8],
        timeout: Duration,
    ) -> Result<(), SimViolation> {
        // The core numbers its attempts from 1; the plan's fates are indexed from 0.
        let attempt = attempt.saturating_sub(1) as usize;
        let f = &mut self.flows[i];
        f.in_flight_id = Some(id);
        let t = self.now;
        let deadline = t + timeout.as_millis() as u64;
        let fate = if self.healed(t) {
            Fate::Ok {
                up: self.rng.range(5, HEALED_MAX_MS / 2),
                down: self.rng.range(5, HEALED_MAX_MS / 2),
            }
        } else {
            match self.flows[i].plan.fates.get(attempt).copied() {
                Some(fate) => fate,
                None => Fate::Ok {
                    up: self.rng.skewed(10, 800),
                    down: self.rng.skewed(10, 800),
                },
            }
        };
        self.log("<-", || {
            let code = serde_json::from_slice::<serde_json::Value>(body)
                .ok()
                .and_then(|v| v.get("code").and_then(|c| c.as_str()).map(str::to_owned))
                .unwrap_or_default();
            format!(
                "SendExchange id={} code={code} timeout={} ms (attempt {}, network: {fate:?})",
                id.0,
                timeout.as_millis(),
                attempt + 1
            )
        });
        let body = Zeroizing::new(body.to_vec());
        let timed_out = Input::ExchangeFailed {
            id,
            may_have_been_sent: true,
            reason: "operation timed out".into(),
        };
        let server = |w: &mut Self, up: u64, then: Then| {
            if t + up < deadline {
                w.at(
                    t + up,
                    Ev::AtServer {
                        flow: i,
                        id,
                        body: body.clone(),
                        deadline,
                        then,
                    },
                );
            } else {
                w.at(deadline, Ev::ToFlow(i, Box::new(timed_out.clone())));
            }
        };
        let answer = |status: u16, body: &str| Input::ExchangeResponse {
            id,
            response: HttpResponse::new(status, body.to_owned()),
        };
        match fate {
            Fate::Ok { up, down }
            | Fate::Slow { up, down }
            | Fate::ServerError { up, down }
            | Fate::Garbage { up, down, .. }
            | Fate::Truncated { up, down }
            | Fate::Duplicate { up, down }
            | Fate::Echo { up, down } => server(self, up, Then::Answer { down, fate }),
            Fate::LostAfterSending { up, after } => server(self, up, Then::Reset { after }),
            Fate::BlackHole { reaches, up } => {
                if reaches {
                    server(self, up, Then::Nothing);
                }
            }
            Fate::LostBeforeSending { after } => {
                let input = Input::ExchangeFailed {
                    id,
                    may_have_been_sent: false,
                    reason: "connection refused".into(),
                };
                self.at(t + after.min(deadline - t), Ev::ToFlow(i, Box::new(input)));
            }
            Fate::ProxyError { status, after } => {
                let input = answer(status, "<html><body><h1>502 Bad Gateway</h1></body></html>");
                self.proxy(i, t + after, deadline, input, timed_out);
            }
            Fate::RateLimited { retry_after, after } => {
                let mut response = HttpResponse::new(
                    429,
                    r#"{"error":{"code":429,"message":"Rate limit exceeded"}}"#,
                );
                if let Some(s) = retry_after {
                    response = response.with_header("Retry-After", s.to_string());
                }
                let input = Input::ExchangeResponse { id, response };
                self.proxy(i, t + after, deadline, input, timed_out);
            }
            Fate::EchoingProxy { after } => {
                let mut text =
                    b"<html><pre>400 Bad Request\nPOST /api/v1/auth/keys HTTP/1.1\n\n".to_vec();
                text.extend_from_slice(&body);
                text.extend_from_slice(b"</pre></html>");
                let input = Input::ExchangeResponse {
                    id,
                    response: HttpResponse::new(400, text),
                };
                self.proxy(i, t + after, deadline, input, timed_out);
            }
            Fate::Conflict { after } => {
                let input = answer(
                    409,
                    r#"{"error":{"code":409,"message":"Failed to create or update app"}}"#,
                );
                self.proxy(i, t + after, deadline, input, timed_out);
            }
        }
        Ok(())
    }

    pub(super) fn proxy(
        &mut self,
        i: usize,
        at: u64,
        deadline: u64,
        input: Input,
        timed_out: Input,
    ) {
        if at < deadline {
            self.at(at, Ev::ToFlow(i, Box::new(input)));
        } else {
            self.at(deadline, Ev::ToFlow(i, Box::new(timed_out)));
        }
    }
}
