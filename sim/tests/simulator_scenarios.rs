//! A few hand-written simulator scenarios, their transcripts pinned with insta: virtual time,
//! direction (`->` into the flow, `<-` out of it, `..` the world), event; secrets redacted.
use openrouter_auth_core::{CallbackHost, CodeChallengeMethod};
use openrouter_auth_sim::simulator::plan::{
    Attack, AttackKind, Fate, FlowPlan, Plan, StoreFate, UserPlan,
};
use openrouter_auth_sim::simulator::{run_plan, Record, RunReport};

fn user() -> UserPlan {
    UserPlan {
        comes_back: true,
        think_ms: 8_000,
        approves: true,
        redirect_ms: 120,
        duplicate_callback: false,
        reloads: vec![],
        close_after_ms: None,
        follows_redirect: true,
        favicon: true,
        pastes_url_ms: None,
        approves_again_ms: None,
        paste_ms: 15_000,
        typo: false,
        junk_first: false,
    }
}

fn flow() -> FlowPlan {
    FlowPlan {
        headless: false,
        callback_host: CallbackHost::Localhost,
        method: CodeChallengeMethod::S256,
        callback_timeout_s: 600,
        exchange_timeout_s: 30,
        port: 53682,
        gap_ms: 0,
        user: user(),
        fates: vec![],
        store: StoreFate::Ok { ms: 40 },
        cancel_after_ms: None,
        stale_tabs: vec![],
        preconnects: 0,
    }
}

fn plan(flows: Vec<FlowPlan>, attacks: Vec<Attack>) -> Plan {
    Plan {
        flows,
        attacks,
        heal_at_ms: None,
        echo_state: false,
    }
}

fn run(seed: u64, p: &Plan) -> RunReport {
    let r = run_plan(seed, p, Record::Transcript);
    if let Some(v) = &r.violation {
        panic!("{}\n{v}", r.transcript.join("\n"));
    }
    let again = run_plan(seed, p, Record::Transcript);
    assert_eq!(r.digest, again.digest, "the scenario is not deterministic");
    r
}

fn transcript(r: &RunReport) -> String {
    r.transcript.join("\n")
}

#[test]
fn happy_path() {
    let mut f = flow();
    f.preconnects = 1;
    let r = run(1, &plan(vec![f], vec![]));
    assert_eq!(r.outcomes, ["stored"]);
    insta::assert_snapshot!("happy_path", transcript(&r));
}

#[test]
fn a_lost_request_is_retried_but_one_that_may_have_arrived_is_not() {
    let mut f = flow();
    f.fates = vec![
        Fate::LostBeforeSending { after: 120 },
        Fate::LostAfterSending {
            up: 200,
            after: 900,
        },
    ];
    f.user.follows_redirect = false;
    let r = run(2, &plan(vec![f], vec![]));
    assert_eq!(r.outcomes, ["network"]);
    insta::assert_snapshot!("lost_after_sending", transcript(&r));
}

#[test]
fn stray_requests_floods_and_stale_tabs_do_not_disturb_the_sign_in() {
    let first = {
        let mut f = flow();
        f.user.comes_back = false;
        f.callback_timeout_s = 20;
        f
    };
    let mut second = flow();
    second.gap_ms = 1_000;
    second.stale_tabs = vec![2_000];
    second.user.duplicate_callback = true;
    second.user.reloads = vec![(500, false), (700, true)];
    second.fates = vec![Fate::Slow {
        up: 2_000,
        down: 1_500,
    }];
    let attacks = vec![
        Attack {
            at_ms: 22_000,
            kind: AttackKind::Flood { count: 8 },
        },
        Attack {
            at_ms: 25_000,
            kind: AttackKind::BadHost(0),
        },
        Attack {
            at_ms: 26_000,
            kind: AttackKind::WrongMethod(0),
        },
        Attack {
            at_ms: 29_500,
            kind: AttackKind::GuessedNonceError,
        },
    ];
    let r = run(3, &plan(vec![first, second], attacks));
    assert_eq!(r.outcomes, ["timed_out", "stored"]);
    insta::assert_snapshot!("strays_and_stale_tabs", transcript(&r));
}

#[test]
fn headless_paste_after_junk_and_a_failing_store() {
    let mut f = flow();
    f.headless = true;
    f.user.junk_first = true;
    f.store = StoreFate::Fails { ms: 300 };
    let r = run(4, &plan(vec![f], vec![]));
    assert_eq!(r.outcomes, ["key_not_stored"]);
    insta::assert_snapshot!("headless_paste", transcript(&r));
}

#[test]
fn an_injected_code_on_a_leaked_nonce_fails_the_exchange_not_the_user() {
    let mut f = flow();
    f.user.think_ms = 30_000;
    let attacks = vec![Attack {
        at_ms: 10_000,
        kind: AttackKind::LeakedNonceCode,
    }];
    let r = run(5, &plan(vec![f], attacks));
    assert_eq!(r.outcomes, ["invalid_code"]);
    insta::assert_snapshot!("leaked_nonce_code_injection", transcript(&r));
}

#[test]
fn a_hung_key_store_recovers_when_the_faults_heal() {
    let mut f = flow();
    f.store = StoreFate::Hangs;
    let mut p = plan(vec![f], vec![]);
    p.heal_at_ms = Some(60_000);
    let r = run(6, &p);
    assert_eq!(r.outcomes, ["stored"]);
    insta::assert_snapshot!("hung_store_heals", transcript(&r));
}

#[test]
fn a_denial_redirects_to_done_and_ends_the_sign_in() {
    let mut f = flow();
    f.user.approves = false;
    let r = run(7, &plan(vec![f], vec![]));
    assert_eq!(r.outcomes, ["denied"]);
    let t = transcript(&r);
    // The error leaves the address bar like a code: a 303 to /done, which shows the denial,
    // and only then does the flow finish.
    let at = |what: &str| {
        t.find(what)
            .unwrap_or_else(|| panic!("no {what:?} in\n{t}"))
    };
    let redirect = at("303 -> /callback/<nonce#0>/done");
    let page = at("200 \"Sign-in cancelled\"");
    let finished = at("Finished: failed, denied");
    assert!(redirect < page && page < finished, "{t}");
    insta::assert_snapshot!("denied", transcript(&r));
}
