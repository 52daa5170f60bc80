//! The user and their browser: starting a sign-in, the OpenRouter page, the redirect to the
//! loopback callback, stale tabs, pasting, and how the browser reacts to the pages it gets.

use super::*;

impl<'p> World<'p> {
    pub(super) fn start_flow(&mut self, i: usize) -> Result<(), SimViolation> {
        let plan = self.plan.flows[i].clone();
        let mut config = DEFAULT_CONFIG.clone();
        config.headless = plan.headless;
        config.callback_host = plan.callback_host;
        config.code_challenge_method = plan.method;
        config.callback_timeout = Duration::from_secs(plan.callback_timeout_s);
        config.exchange_timeout = Duration::from_secs(plan.exchange_timeout_s);
        let rng_seed = self.rng.fork();
        let mut flow_rng = ChaCha20Rng::seed_from_u64(rng_seed);
        let now = Time::from_millis(self.now);
        if let Some(t) = &mut self.tapes {
            t.push(FlowTape {
                config: config.clone(),
                rng_seed,
                start: now,
                steps: Vec::new(),
            });
        }
        let (cf, outs) =
            CheckedFlow::new(config, &mut flow_rng, now).map_err(|v| self.fail(Some(i), v))?;
        let nonce = cf.flow().nonce().expose_secret().to_owned();
        let challenge = cf.flow().code_challenge().as_str().to_owned();
        self.redact(cf.verifier(), || format!("<verifier#{i}>"));
        self.redact(&nonce, || format!("<nonce#{i}>"));
        self.redact(&challenge, || format!("<challenge#{i}>"));
        self.flows.push(FlowState {
            cf,
            callback_deadline: self.now + plan.callback_timeout_s * 1000,
            port: plan.port,
            started_at: self.now,
            plan,
            nonce,
            challenge,
            terminal_at: None,
            finished_at: None,
            codes: Vec::new(),
            first_delivery: None,
            server_seen: BTreeMap::new(),
            redirect: None,
            conn_order: Vec::new(),
            ops: Vec::new(),
            last_op_ms: self.now,
            in_flight_id: None,
        });
        let p = &self.flows[i].plan;
        let line = self.rec.is_some().then(|| {
            format!(
                "flow#{i} starts: {}, port {}, {}, {}, callback timeout {} s, exchange timeout {} s",
                if p.headless { "headless" } else { "loopback" },
                p.port,
                p.callback_host.as_str(),
                p.method.as_str(),
                p.callback_timeout_s,
                p.exchange_timeout_s
            )
        });
        let (cancel, stale) = (p.cancel_after_ms, p.stale_tabs.clone());
        if let Some(line) = line {
            self.log("..", || line);
        }
        if let Some(c) = cancel {
            self.at(self.now + c, Ev::Cancel(i));
        }
        for s in stale {
            self.stale_tab(i, self.now + s);
        }
        self.after_step(i, outs)?;
        if !self.flows[i].plan.headless {
            let port = self.flows[i].port;
            self.log("->", || format!("ListenerBound port={port}"));
            self.feed(
                i,
                Input::ListenerBound { port, ipv6: true },
                Some(FuzzOp::Bind),
            )?;
        }
        Ok(())
    }

    /// A stale tab re-sends an older flow's callback URL (a real one from an earlier flow of
    /// this run, or one made up for a flow before the run).
    pub(super) fn stale_tab(&mut self, i: usize, t: u64) {
        let port = self.flows[i].port;
        let host = format!("localhost:{port}");
        let recording = self.rec.is_some();
        let mut target = match (0..i).rev().find_map(|j| self.flows[j].redirect.clone()) {
            Some(url) => {
                let mut t = url.path().to_owned();
                if let Some(q) = url.query() {
                    t.push('?');
                    t.push_str(q);
                }
                t
            }
            None => format!(
                "/callback/{}?code={}",
                self.rng.token(32),
                self.rng.token(32)
            ),
        };
        self.at(
            t,
            Ev::Request(Box::new(Req {
                who: Who::StaleTab,
                kind: Kind::Stale,
                port,
                method: "GET".into(),
                target: if recording {
                    target.clone().into_bytes()
                } else {
                    std::mem::take(&mut target).into_bytes()
                },
                host: Some(host.into_bytes()),
                close_after: None,
                carries: Carries::Nothing,
                // The fuzz op is only kept when recording: no copy of the target otherwise.
                fuzz_target: recording.then(|| FuzzTarget::Raw(target.into_bytes())),
                fuzz_host: FuzzHost::Ours,
            })),
        );
    }

    pub(super) fn authorize(&mut self, i: usize, again: bool) -> Result<(), SimViolation> {
        if self.flows[i].finished_at.is_some() && !self.flows[i].plan.headless {
            self.log("..", || {
                format!("browser#{i} comes back too late: nothing listens")
            });
            return Ok(());
        }
        let Some(url) = self.flows[i].cf.flow().authorization_url().cloned() else {
            return Err(self.broken(i, "authorization-url-accepted", "no URL".into()));
        };
        let auth = match self.model.check_authorize(&url) {
            Ok(a) => a,
            Err(e) => return Err(self.broken(i, "authorization-url-accepted", e)),
        };
        let f = &self.flows[i];
        if auth.challenge != f.challenge || auth.method != f.plan.method {
            return Err(self.broken(
                i,
                "authorization-url-accepted",
                "the URL's code_challenge is not the flow's".into(),
            ));
        }
        let user = f.plan.user.clone();
        let headless = f.plan.headless;
        if headless != auth.callback_url.is_none() {
            return Err(self.broken(
                i,
                "authorization-url-accepted",
                "callback_url present exactly when not headless".into(),
            ));
        }
        if let Some(cb) = &auth.callback_url {
            let want = format!("/callback/{}", f.nonce);
            if cb.port() != Some(f.port)
                || cb.path() != want
                || auth.state.as_deref() != Some(&f.nonce)
            {
                return Err(self.broken(
                    i,
                    "authorization-url-accepted",
                    "callback_url must carry the flow's port and nonce, state the nonce".into(),
                ));
            }
        }
        if !user.approves {
            self.log("..", || format!("user#{i} denies at OpenRouter"));
            if headless {
                // Nothing comes back in headless mode; the user gives up with Ctrl-C.
                self.at(self.now + 5_000, Ev::Cancel(i));
                return Ok(());
            }
            let url = self
                .model
                .redirect(&auth, Err("access_denied"))
                .expect("loopback");
            return self.browser_callback(i, url, Carries::Error);
        }
        let code = self.model.issue_code(&auth, self.now, &mut self.rng);
        let n = self.flows[i].codes.len();
        self.redact(&code, || format!("<code#{i}.{n}>"));
        self.flows[i].codes.push(code.clone());
        self.log("..", || {
            format!("user#{i} approves at OpenRouter: code {code} issued")
        });
        let challenge = self.flows[i].challenge.clone();
        self.flows[i].cf.note_code_issued(&code, &challenge);
        if headless {
            let idx = (n % 256) as u8;
            let mut at = self.now + user.paste_ms;
            if user.junk_first {
                self.at(
                    at,
                    Ev::Paste {
                        flow: i,
                        text: "the code is on the other screen".into(),
                        carries: Carries::Nothing,
                        fuzz: FuzzPaste::Raw(b"the code is on the other screen".to_vec()),
                    },
                );
                at += 3_000;
            }
            let (text, carries, fuzz) = if user.typo {
                let t = code[..code.len() - 1].to_owned();
                (t.clone(), Carries::Code, FuzzPaste::Raw(t.into_bytes()))
            } else {
                (
                    format!("  {code}\n"),
                    Carries::Code,
                    FuzzPaste::BareCode(idx),
                )
            };
            self.at(
                at,
                Ev::Paste {
                    flow: i,
                    text,
                    carries,
                    fuzz,
                },
            );
            return Ok(());
        }
        let url = self.model.redirect(&auth, Ok(&code)).expect("loopback");
        if !again {
            if let Some(d) = user.approves_again_ms {
                self.at(self.now + user.redirect_ms + d, Ev::Authorize(i, true));
            }
        }
        self.browser_callback(i, url, Carries::Code)
    }

    /// The browser is sent back to the listener with `url`.
    pub(super) fn browser_callback(
        &mut self,
        i: usize,
        url: Url,
        carries: Carries,
    ) -> Result<(), SimViolation> {
        let user = self.flows[i].plan.user.clone();
        let port = self.flows[i].port;
        let host = format!("{}:{port}", self.flows[i].plan.callback_host.as_str());
        let fuzz_host = match self.flows[i].plan.callback_host {
            CallbackHost::Localhost => FuzzHost::Ours,
            CallbackHost::Ipv4Loopback => FuzzHost::Ipv4,
            _ => FuzzHost::Ours,
        };
        let mut target = url.path().to_owned();
        if let Some(q) = url.query() {
            target.push('?');
            target.push_str(q);
        }
        self.flows[i].redirect = Some(url.clone());
        let n = self.flows[i].codes.len().saturating_sub(1);
        let fuzz_target = match carries {
            Carries::Code if self.plan.echo_state => FuzzTarget::OwnCodeWithState((n % 256) as u8),
            Carries::Code => FuzzTarget::OwnCode((n % 256) as u8),
            _ => FuzzTarget::OwnError(true),
        };
        let t = self.now + user.redirect_ms;
        for k in 0..self.flows[i].plan.preconnects {
            self.at(t.saturating_sub(1 + u64::from(k)), Ev::Preconnect(port));
        }
        let req = |kind: Kind, method: &str, close_after: Option<u64>, carries: Carries| Req {
            who: Who::Browser(i),
            kind,
            port,
            method: method.into(),
            target: target.clone().into_bytes(),
            host: Some(host.clone().into_bytes()),
            close_after,
            carries,
            fuzz_target: Some(fuzz_target.clone()),
            fuzz_host: fuzz_host.clone(),
        };
        self.at(
            t,
            Ev::Request(Box::new(req(
                Kind::Callback,
                "GET",
                user.close_after_ms,
                carries,
            ))),
        );
        if user.duplicate_callback {
            self.at(
                t + 1,
                Ev::Request(Box::new(req(Kind::Callback, "GET", None, carries))),
            );
        }
        for (after, head) in &user.reloads {
            let m = if *head { "HEAD" } else { "GET" };
            self.at(
                t + after,
                Ev::Request(Box::new(req(Kind::Reload, m, None, carries))),
            );
        }
        if let Some(after) = user.pastes_url_ms {
            let code = url
                .query_pairs()
                .find(|(k, _)| k == "code")
                .map(|(_, v)| v.into_owned());
            let (text, fuzz) = match (carries, code) {
                // Sometimes only the code, copied out of the address bar.
                (Carries::Code, Some(code)) if self.rng.chance(30) => {
                    (code, FuzzPaste::BareCode((n % 256) as u8))
                }
                (Carries::Code, _) => (url.to_string(), FuzzPaste::OwnUrl((n % 256) as u8)),
                _ => (
                    url.to_string(),
                    FuzzPaste::Raw(url.to_string().into_bytes()),
                ),
            };
            self.at(
                t + after,
                Ev::Paste {
                    flow: i,
                    text,
                    carries,
                    fuzz,
                },
            );
        }
        Ok(())
    }

    pub(super) fn note_delivery(&mut self, i: usize, carries: Carries, paste: Option<&str>) {
        if carries == Carries::Nothing || self.flows[i].first_delivery.is_some() {
            return;
        }
        let f = &self.flows[i];
        let code_ok = match paste {
            Some(text) => {
                let text = text.trim();
                let code = Url::parse(text)
                    .ok()
                    .and_then(|u| {
                        u.query_pairs()
                            .find(|(k, _)| k == "code")
                            .map(|(_, v)| v.into_owned())
                    })
                    .unwrap_or_else(|| text.to_owned());
                self.model.code_is_good(&code, &f.challenge, self.now)
            }
            None => f
                .codes
                .last()
                .is_some_and(|c| self.model.code_is_good(c, &f.challenge, self.now)),
        };
        let in_time =
            self.now < f.callback_deadline && f.cf.flow().phase() == Phase::AwaitingCallback;
        self.flows[i].first_delivery = Some((carries, code_ok && in_time, self.now));
    }

    pub(super) fn browser_reacts(
        &mut self,
        info: ConnInfo,
        response: &openrouter_auth_core::BrowserResponse,
    ) -> Result<(), SimViolation> {
        let Who::Browser(b) = info.who else {
            return Ok(());
        };
        if b != info.flow {
            return Ok(()); // an old tab that reached a newer flow: it shows the 404
        }
        let user = &self.flows[b].plan.user;
        let (follows_redirect, favicon) = (user.follows_redirect, user.favicon);
        let port = self.flows[b].port;
        // Made only for a request that follows (most responses end here).
        let host = |w: &Self| format!("{}:{port}", w.flows[b].plan.callback_host.as_str());
        let fuzz_host = match self.flows[b].plan.callback_host {
            CallbackHost::Localhost => FuzzHost::Ours,
            CallbackHost::Ipv4Loopback => FuzzHost::Ipv4,
            _ => FuzzHost::Ours,
        };
        if response.status == 303 && matches!(info.kind, Kind::Callback | Kind::Reload) {
            if follows_redirect {
                let location = response.header("location").unwrap_or("/").to_owned();
                let delay = self.rng.range(2, 150);
                let done = format!("/callback/{}/done", self.flows[b].nonce);
                let fuzz_target = if location == done {
                    FuzzTarget::OwnDone
                } else {
                    FuzzTarget::Raw(location.clone().into_bytes())
                };
                self.at(
                    self.now + delay,
                    Ev::Request(Box::new(Req {
                        who: Who::Browser(b),
                        kind: Kind::Done,
                        port,
                        method: "GET".into(),
                        target: location.into_bytes(),
                        host: Some(host(self).into_bytes()),
                        close_after: None,
                        carries: Carries::Nothing,
                        fuzz_target: Some(fuzz_target),
                        fuzz_host,
                    })),
                );
            }
        } else if response.status == 200 && favicon && info.kind != Kind::Favicon {
            let delay = self.rng.range(1, 60);
            self.at(
                self.now + delay,
                Ev::Request(Box::new(Req {
                    who: Who::Browser(b),
                    kind: Kind::Favicon,
                    port,
                    method: "GET".into(),
                    target: b"/favicon.ico".to_vec(),
                    host: Some(host(self).into_bytes()),
                    close_after: None,
                    carries: Carries::Nothing,
                    fuzz_target: Some(FuzzTarget::Favicon),
                    fuzz_host,
                })),
            );
        }
        Ok(())
    }
}
