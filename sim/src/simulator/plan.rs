//! What every actor will do in one run, drawn from the seed before the run starts
//! ([`Plan::draw`]) or written by hand for a scenario.
//!
//! A plan fixes the *choices* (who comes back when, which exchange attempt is lost, when the
//! faults heal); the run itself still draws the secrets (nonces, codes, keys) and the bytes of
//! junk requests from the same seed.

use super::rng::SimRng;
use openrouter_auth_core::{CallbackHost, CodeChallengeMethod};

/// Everything that will happen in one run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Plan {
    /// The sign-ins, run one after the other (the next starts after the previous finished).
    pub flows: Vec<FlowPlan>,
    /// The local attacker's requests, at absolute virtual times.
    pub attacks: Vec<Attack>,
    /// When every fault heals (network, key store), in ms from the start of the run: `Some(0)`
    /// is a fault-free run; `None` never heals (then liveness is not demanded).
    pub heal_at_ms: Option<u64>,
    /// Whether OpenRouter echoes `state` on the callback.
    pub echo_state: bool,
}

/// One sign-in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowPlan {
    /// Headless mode (the user pastes the code).
    pub headless: bool,
    /// The host in the `callback_url`.
    pub callback_host: CallbackHost,
    /// `S256`, or `plain` by explicit opt-in.
    pub method: CodeChallengeMethod,
    /// Seconds to wait for the browser.
    pub callback_timeout_s: u64,
    /// Seconds the exchange may take.
    pub exchange_timeout_s: u64,
    /// The listener's port.
    pub port: u16,
    /// Milliseconds after the previous flow finished (or the run started) until this one starts.
    pub gap_ms: u64,
    /// The person at the browser (or terminal).
    pub user: UserPlan,
    /// The network's fate for each exchange attempt in turn; attempts past the end succeed.
    pub fates: Vec<Fate>,
    /// The key store's fate.
    pub store: StoreFate,
    /// Ctrl-C this many ms after the flow started.
    pub cancel_after_ms: Option<u64>,
    /// A stale tab re-sends an older flow's callback URL this many ms after the start.
    pub stale_tabs: Vec<u64>,
    /// Browser preconnects (connections that close without a request) before the callback.
    pub preconnects: u8,
}

/// What the user does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserPlan {
    /// `false`: the user never finishes at OpenRouter (closed the tab, went to lunch).
    pub comes_back: bool,
    /// Milliseconds at OpenRouter's page (sign-up, 2FA) before deciding.
    pub think_ms: u64,
    /// Approve (else deny).
    pub approves: bool,
    /// Milliseconds for the redirect back to the listener.
    pub redirect_ms: u64,
    /// The browser sends the callback twice (prefetch, double navigation).
    pub duplicate_callback: bool,
    /// Reloads of the callback URL, ms after the first callback (`true`: a HEAD request).
    pub reloads: Vec<(u64, bool)>,
    /// The tab is closed this many ms after the callback (its connection closes).
    pub close_after_ms: Option<u64>,
    /// The browser follows the 303 to `/done` (after a code or a denial alike).
    pub follows_redirect: bool,
    /// The browser asks for `/favicon.ico` after each page.
    pub favicon: bool,
    /// Loopback mode: the user also pastes the redirect URL into the terminal, ms after the
    /// callback (a browser on another machine).
    pub pastes_url_ms: Option<u64>,
    /// Loopback mode: this many ms after the first callback the user opens the
    /// authorization URL again (another tab) and approves again: a second code for the same
    /// challenge comes back.
    pub approves_again_ms: Option<u64>,
    /// Headless mode: ms between seeing the code and pasting it.
    pub paste_ms: u64,
    /// Headless mode: the pasted code has a typo (its last character is lost).
    pub typo: bool,
    /// Headless mode: first pastes something that is not a code.
    pub junk_first: bool,
}

/// The network's fate for one exchange attempt. Times are milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Delivered, answered.
    Ok {
        /// To OpenRouter.
        up: u64,
        /// Back.
        down: u64,
    },
    /// DNS failure or connection refused: certainly never sent.
    LostBeforeSending {
        /// When the failure is reported.
        after: u64,
    },
    /// OpenRouter processed it; the answer was lost (reset).
    LostAfterSending {
        /// To OpenRouter.
        up: u64,
        /// Until the reset is reported.
        after: u64,
    },
    /// A proxy answered 502/503/504 without reaching OpenRouter.
    ProxyError {
        /// The status.
        status: u16,
        /// When.
        after: u64,
    },
    /// OpenRouter processed it, then failed with 500.
    ServerError {
        /// To OpenRouter.
        up: u64,
        /// Back.
        down: u64,
    },
    /// 429 before OpenRouter processed it.
    RateLimited {
        /// `Retry-After` seconds, if sent.
        retry_after: Option<u16>,
        /// When.
        after: u64,
    },
    /// 409 "failed to create or update app", not processed.
    Conflict {
        /// When.
        after: u64,
    },
    /// Delivered and answered, slowly (may exceed the timeout).
    Slow {
        /// To OpenRouter.
        up: u64,
        /// Back.
        down: u64,
    },
    /// Processed; the answer's body arrives as garbage.
    Garbage {
        /// To OpenRouter.
        up: u64,
        /// Back.
        down: u64,
        /// Which garbage (0..4).
        which: u8,
    },
    /// Processed; the answer's body is cut short.
    Truncated {
        /// To OpenRouter.
        up: u64,
        /// Back.
        down: u64,
    },
    /// No answer at all, ever (a stuck transport); maybe processed.
    BlackHole {
        /// Whether it reached OpenRouter.
        reaches: bool,
        /// To OpenRouter.
        up: u64,
    },
    /// Delivered, answered, and the answer handed to the flow twice.
    Duplicate {
        /// To OpenRouter.
        up: u64,
        /// Back.
        down: u64,
    },
    /// A debugging proxy (or a confused server) answers 400 and echoes the request, body
    /// included; OpenRouter never sees it.
    EchoingProxy {
        /// When.
        after: u64,
    },
    /// Delivered, answered, and an unsolicited answer for another id arrives first.
    Echo {
        /// To OpenRouter.
        up: u64,
        /// Back.
        down: u64,
    },
}

/// The key store's fate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreFate {
    /// Stored after `ms`.
    Ok {
        /// Delay.
        ms: u64,
    },
    /// Failed after `ms` (disk full, read-only home).
    Fails {
        /// Delay.
        ms: u64,
    },
    /// Hangs until the faults heal (then stores); forever if they never do.
    Hangs,
}

/// One request from the local attacker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attack {
    /// Absolute virtual time, ms.
    pub at_ms: u64,
    /// What.
    pub kind: AttackKind,
}

/// The local attacker's repertoire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttackKind {
    /// `/callback/<guessed nonce>?code=<guess>`.
    GuessedNonceCode,
    /// `/callback/<guessed nonce>?error=access_denied`.
    GuessedNonceError,
    /// A target from a list of nasty ones (`which` picks).
    Junk(u8),
    /// Random bytes as the target.
    RandomBytes,
    /// A target over the 8 KiB limit.
    LongTarget,
    /// A wrong or missing `Host` (DNS rebinding), with a plausible callback target.
    BadHost(u8),
    /// `POST` or `OPTIONS` on a callback path.
    WrongMethod(u8),
    /// `count` requests at once, some of them closing at once.
    Flood {
        /// How many.
        count: u16,
    },
    /// Knows the nonce (leaked): sends its own code, issued for its own challenge.
    LeakedNonceCode,
    /// Knows the nonce: sends `error=access_denied`.
    LeakedNonceError,
    /// Knows the nonce: fetches `/done`.
    LeakedNonceDone,
}

impl Plan {
    /// Draws a plan from the seed's stream: 1 to 3 flows, each actor's behaviour, the faults
    /// and when they heal.
    pub fn draw(rng: &mut SimRng) -> Plan {
        let n_flows = match rng.below(10) {
            0..=5 => 1,
            6..=8 => 2,
            _ => 3,
        };
        let fixed_port = rng.chance(30);
        let flows = (0..n_flows)
            .map(|i| FlowPlan::draw(rng, i, fixed_port))
            .collect();
        let heal_at_ms = match rng.below(100) {
            0..=24 => Some(0),
            25..=39 => None,
            _ => Some(rng.skewed(0, 20 * 60_000)),
        };
        let leaked = rng.chance(6);
        let n_attacks = match rng.below(10) {
            0..=3 => 0,
            4..=7 => rng.range(1, 6),
            _ => rng.range(6, 30),
        };
        let mut attacks: Vec<Attack> = (0..n_attacks)
            .map(|_| Attack {
                at_ms: rng.skewed(0, 12 * 60_000),
                kind: AttackKind::draw(rng, leaked),
            })
            .collect();
        attacks.sort_by_key(|a| a.at_ms);
        Plan {
            flows,
            attacks,
            heal_at_ms,
            echo_state: rng.chance(50),
        }
    }

    /// Whether the attacker knows a nonce in this plan.
    pub fn leaks_nonce(&self) -> bool {
        self.attacks.iter().any(|a| {
            matches!(
                a.kind,
                AttackKind::LeakedNonceCode
                    | AttackKind::LeakedNonceError
                    | AttackKind::LeakedNonceDone
            )
        })
    }
}

impl FlowPlan {
    fn draw(rng: &mut SimRng, index: usize, fixed_port: bool) -> FlowPlan {
        let headless = rng.chance(15);
        let callback_timeout_s = match rng.below(10) {
            0..=5 => 600,
            6 | 7 => rng.range(30, 600),
            8 => rng.range(5, 30),
            _ => rng.range(600, 1200),
        };
        let exchange_timeout_s = rng.pick(&[30, 30, 30, 10, 60, 5]);
        let n_fates = match rng.below(10) {
            0..=4 => 0,
            5..=7 => 1,
            _ => rng.range(2, 6),
        };
        let fates = (0..n_fates).map(|_| Fate::draw(rng)).collect();
        let store = match rng.below(20) {
            0..=14 => StoreFate::Ok {
                ms: rng.skewed(1, 200),
            },
            15 | 16 => StoreFate::Ok {
                ms: rng.range(1_000, 20_000),
            },
            17 | 18 => StoreFate::Fails {
                ms: rng.skewed(1, 5_000),
            },
            _ => StoreFate::Hangs,
        };
        let n_stale = if index > 0 || rng.chance(20) {
            rng.below(3)
        } else {
            0
        };
        FlowPlan {
            headless,
            callback_host: if rng.chance(80) {
                CallbackHost::Localhost
            } else {
                CallbackHost::Ipv4Loopback
            },
            method: if rng.chance(5) {
                CodeChallengeMethod::Plain
            } else {
                CodeChallengeMethod::S256
            },
            callback_timeout_s,
            exchange_timeout_s,
            port: if fixed_port {
                53682
            } else {
                rng.range(32_768, 60_999) as u16
            },
            gap_ms: if index == 0 {
                0
            } else {
                rng.skewed(0, 120_000)
            },
            user: UserPlan::draw(rng, headless),
            fates,
            store,
            cancel_after_ms: if rng.chance(5) {
                Some(rng.skewed(0, 700_000))
            } else {
                None
            },
            stale_tabs: (0..n_stale).map(|_| rng.skewed(0, 300_000)).collect(),
            preconnects: rng.below(3) as u8,
        }
    }
}

impl UserPlan {
    fn draw(rng: &mut SimRng, headless: bool) -> UserPlan {
        let n_reloads = match rng.below(10) {
            0..=6 => 0,
            7 | 8 => 1,
            _ => rng.range(2, 4),
        };
        UserPlan {
            comes_back: rng.chance(90),
            think_ms: match rng.below(10) {
                0..=6 => rng.skewed(800, 60_000),
                7 | 8 => rng.range(60_000, 480_000),
                _ => rng.range(480_000, 900_000),
            },
            approves: rng.chance(90),
            redirect_ms: rng.skewed(5, 800),
            duplicate_callback: rng.chance(5),
            reloads: (0..n_reloads)
                .map(|_| (rng.skewed(0, 40_000), rng.chance(15)))
                .collect(),
            close_after_ms: if rng.chance(10) {
                Some(rng.skewed(0, 10_000))
            } else {
                None
            },
            follows_redirect: rng.chance(90),
            favicon: rng.chance(50),
            pastes_url_ms: if !headless && rng.chance(4) {
                Some(rng.skewed(0, 30_000))
            } else {
                None
            },
            approves_again_ms: if !headless && rng.chance(4) {
                Some(rng.skewed(0, 60_000))
            } else {
                None
            },
            paste_ms: rng.skewed(2_000, 120_000),
            typo: headless && rng.chance(8),
            junk_first: headless && rng.chance(15),
        }
    }
}

impl Fate {
    fn draw(rng: &mut SimRng) -> Fate {
        let up = rng.skewed(10, 1_500);
        let down = rng.skewed(10, 1_500);
        match rng.below(14) {
            0 => Fate::Ok { up, down },
            1 => Fate::LostBeforeSending {
                after: rng.skewed(1, 3_000),
            },
            2 => Fate::LostAfterSending {
                up,
                after: rng.skewed(1, 20_000),
            },
            3 => Fate::ProxyError {
                status: rng.pick(&[502, 503, 504]),
                after: rng.skewed(10, 5_000),
            },
            4 => Fate::ServerError { up, down },
            5 => Fate::RateLimited {
                retry_after: if rng.chance(50) {
                    Some(rng.range(0, 120) as u16)
                } else {
                    None
                },
                after: rng.skewed(10, 1_000),
            },
            6 => Fate::Conflict {
                after: rng.skewed(10, 2_000),
            },
            7 => Fate::Slow {
                up: rng.range(1_000, 90_000),
                down: rng.range(1_000, 90_000),
            },
            8 => Fate::Garbage {
                up,
                down,
                which: rng.below(4) as u8,
            },
            9 => Fate::Truncated { up, down },
            10 => Fate::BlackHole {
                reaches: rng.chance(50),
                up,
            },
            11 => Fate::Duplicate { up, down },
            12 => Fate::EchoingProxy {
                after: rng.skewed(10, 2_000),
            },
            _ => Fate::Echo { up, down },
        }
    }
}

impl AttackKind {
    fn draw(rng: &mut SimRng, leaked: bool) -> AttackKind {
        if leaked && rng.chance(30) {
            return match rng.below(3) {
                0 => AttackKind::LeakedNonceCode,
                1 => AttackKind::LeakedNonceError,
                _ => AttackKind::LeakedNonceDone,
            };
        }
        match rng.below(20) {
            0..=3 => AttackKind::GuessedNonceCode,
            4..=6 => AttackKind::GuessedNonceError,
            7..=10 => AttackKind::Junk(rng.below(256) as u8),
            11 | 12 => AttackKind::RandomBytes,
            13 => AttackKind::LongTarget,
            14 | 15 => AttackKind::BadHost(rng.below(256) as u8),
            16 | 17 => AttackKind::WrongMethod(rng.below(256) as u8),
            _ => AttackKind::Flood {
                count: rng.range(16, 200) as u16,
            },
        }
    }
}
