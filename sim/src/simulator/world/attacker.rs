//! The attacker: forged callbacks, guessed nonces, DNS rebinding and junk on the loopback port.

use super::*;

impl<'p> World<'p> {
    pub(super) fn attack(&mut self, a: usize) -> Result<(), SimViolation> {
        let Some(i) = self.current_flow() else {
            return Ok(());
        };
        let port = self.flows[i].port;
        let nonce = self.flows[i].nonce.clone();
        let ours = format!("localhost:{port}").into_bytes();
        let kind = self.plan.attacks[a].kind;
        let mut reqs: Vec<AttackReq> = Vec::new();
        let guess = |w: &mut Self| {
            // `/callback/{token}?code={token}`, the tokens drawn in that order.
            let mut t = Vec::with_capacity(80);
            t.extend_from_slice(b"/callback/");
            w.rng.push_token(&mut t, 32);
            t.extend_from_slice(b"?code=");
            w.rng.push_token(&mut t, 32);
            t
        };
        let guess_error = |w: &mut Self| {
            // `/callback/{token}?error=access_denied`.
            let mut t = Vec::with_capacity(80);
            t.extend_from_slice(b"/callback/");
            w.rng.push_token(&mut t, 32);
            t.extend_from_slice(b"?error=access_denied");
            t
        };
        match kind {
            AttackKind::GuessedNonceCode => {
                let t = guess(self);
                reqs.push(("GET".into(), t, Some(ours), None, FuzzHost::Ours));
            }
            AttackKind::GuessedNonceError => {
                let t = guess_error(self);
                reqs.push(("GET".into(), t, Some(ours), None, FuzzHost::Ours));
            }
            AttackKind::Junk(which) => {
                let t = junk_target(which, &mut self.rng);
                reqs.push(("GET".into(), t, Some(ours), None, FuzzHost::Ours));
            }
            AttackKind::RandomBytes => {
                let n = self.rng.range(0, 64) as usize;
                let t = self.rng.bytes(n);
                reqs.push(("GET".into(), t, Some(ours), None, FuzzHost::Ours));
            }
            AttackKind::LongTarget => {
                let t = format!(
                    "/callback/{}?code={}",
                    nonce_like(&mut self.rng),
                    "A".repeat(9000)
                )
                .into_bytes();
                reqs.push(("GET".into(), t, Some(ours), None, FuzzHost::Ours));
            }
            AttackKind::BadHost(which) => {
                let hosts: [Option<String>; 9] = [
                    Some(format!("evil.example:{port}")),
                    Some(format!("localhost:{}", port.wrapping_add(1))),
                    None,
                    Some("localhost".into()),
                    Some(format!("[::1]evil:{port}")),
                    Some(format!("localhost:+{port}")),
                    Some(format!("127.0.0.1.evil.example:{port}")),
                    Some(format!("localhost:{port}, evil.example")),
                    Some(format!("0.0.0.0:{port}")),
                ];
                let h = hosts[usize::from(which) % hosts.len()].clone();
                let leaked = self.plan.leaks_nonce();
                let t = if leaked {
                    format!("/callback/{nonce}?error=access_denied").into_bytes()
                } else {
                    guess(self)
                };
                let ft = leaked.then_some(FuzzTarget::OwnError(false));
                let fh = match &h {
                    None => FuzzHost::Missing,
                    Some(h) => FuzzHost::Raw(h.clone().into_bytes()),
                };
                reqs.push(("GET".into(), t, h.map(String::into_bytes), ft, fh));
            }
            AttackKind::WrongMethod(which) => {
                let m =
                    ["POST", "OPTIONS", "PUT", "DELETE", "get", "CONNECT"][usize::from(which) % 6];
                let leaked = self.plan.leaks_nonce();
                let t = if leaked {
                    format!("/callback/{nonce}?error=access_denied").into_bytes()
                } else {
                    guess(self)
                };
                reqs.push((m.into(), t, Some(ours), None, FuzzHost::Ours));
            }
            AttackKind::Flood { count } => {
                reqs.reserve(usize::from(count));
                for k in 0..count {
                    let t = match k % 4 {
                        0 => guess(self),
                        1 => b"/favicon.ico".to_vec(),
                        2 => {
                            let w = self.rng.below(256) as u8;
                            junk_target(w, &mut self.rng)
                        }
                        _ => guess_error(self),
                    };
                    reqs.push(("GET".into(), t, Some(ours.clone()), None, FuzzHost::Ours));
                }
            }
            AttackKind::LeakedNonceCode => {
                // The attacker signs in with its own verifier and injects its code.
                let verifier =
                    CodeVerifier::generate(&mut ChaCha20Rng::seed_from_u64(self.rng.fork()));
                let challenge = verifier.challenge(CodeChallengeMethod::S256);
                let url = openrouter_auth_core::authorization_url(
                    &Url::parse(openrouter_auth_core::DEFAULT_BASE_URL).expect("url"),
                    None,
                    &challenge,
                    CodeChallengeMethod::S256,
                    None,
                    None,
                );
                let auth = self
                    .model
                    .check_authorize(&url)
                    .expect("attacker's own URL");
                let code = self.model.issue_code(&auth, self.now, &mut self.rng);
                self.attacker_codes += 1;
                let n = self.attacker_codes;
                self.redact(&code, || format!("<attacker-code#{n}>"));
                self.flows[i].cf.note_code_issued(&code, challenge.as_str());
                let t = format!("/callback/{nonce}?code={code}").into_bytes();
                reqs.push((
                    "GET".into(),
                    t,
                    Some(ours),
                    Some(FuzzTarget::ForeignCode(0)),
                    FuzzHost::Ours,
                ));
                self.note_delivery(i, Carries::Code, Some("attacker"));
            }
            AttackKind::LeakedNonceError => {
                let t = format!("/callback/{nonce}?error=access_denied").into_bytes();
                reqs.push((
                    "GET".into(),
                    t,
                    Some(ours),
                    Some(FuzzTarget::OwnError(false)),
                    FuzzHost::Ours,
                ));
                self.note_delivery(i, Carries::Error, None);
            }
            AttackKind::LeakedNonceDone => {
                let t = format!("/callback/{nonce}/done").into_bytes();
                reqs.push((
                    "GET".into(),
                    t,
                    Some(ours),
                    Some(FuzzTarget::OwnDone),
                    FuzzHost::Ours,
                ));
            }
        }
        let recording = self.rec.is_some();
        for (method, target, host, fuzz_target, fuzz_host) in reqs {
            // The fuzz op is only kept when recording: no copy of the target otherwise.
            let fuzz_target =
                recording.then(|| fuzz_target.unwrap_or_else(|| FuzzTarget::Raw(target.clone())));
            let close_after = if matches!(kind, AttackKind::Flood { .. }) && self.rng.chance(30) {
                Some(self.rng.range(0, 5))
            } else {
                None
            };
            self.request(Req {
                who: Who::Attacker,
                kind: Kind::Attack,
                port,
                method,
                target,
                host,
                close_after,
                carries: Carries::Nothing,
                fuzz_target,
                fuzz_host,
            })?;
        }
        Ok(())
    }
}

/// An attacker's request: method, target, `Host`, and its fuzz-op form (`None`: the raw
/// target).
pub(super) type AttackReq = (
    String,
    Vec<u8>,
    Option<Vec<u8>>,
    Option<FuzzTarget>,
    FuzzHost,
);

pub(super) fn nonce_like(rng: &mut SimRng) -> String {
    rng.token(32)
}

pub(super) fn junk_target(which: u8, rng: &mut SimRng) -> Vec<u8> {
    let n = rng.token(32);
    let t: String = match which % 24 {
        0 => "/".into(),
        1 => String::new(),
        2 => "*".into(),
        3 => "/callback/".into(),
        4 => "/callback".into(),
        5 => "/callback//done".into(),
        6 => "/callback/%00".into(),
        7 => format!("/callback/{n}/../{n}?code=x"),
        8 => "/callback/?code=x".into(),
        9 => format!("//callback/{n}?code=x"),
        10 => "/robots.txt".into(),
        11 => format!("http://evil.example/callback/{n}?code=x"),
        12 => format!("/callback/{n}?code=%"),
        13 => format!("/callback/{n}?code=%zz&state=%ff"),
        14 => "/?code=x&state=y".into(),
        15 => format!("/callback/{n}#code=x"),
        16 => "/done".into(),
        17 => format!("/callback/{n}/done"),
        18 => "/.well-known/security.txt".into(),
        19 => format!("/callback/{n}?code=a&code=b"),
        20 => format!(
            "/callback/{n}?error=%3Cscript%3Ealert(1)%3C/script%3E&error_description=%E2%80%AE"
        ),
        21 => format!("/callback/{}?code=x", "A".repeat(300)),
        22 => "/favicon.ico?x=1".into(),
        _ => format!("/CALLBACK/{n}?code=x"),
    };
    t.into_bytes()
}
