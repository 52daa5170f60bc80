//! Headless: a pasted code OpenRouter refuses (403 invalid code) was never accepted, so the
//! user may paste the right one, up to MAX_PASTED_CODES in all, with the same verifier; and a
//! text that is not a code is told what a code looks like.
mod common;
use common::*;
use openrouter_auth_core::*;

fn headless(seed: u64) -> Flow {
    let mut c = FlowConfig::default();
    c.headless = true;
    let mut f = Flow::new(c, &mut rng(seed), t(0)).unwrap();
    let _ = drain(&mut f);
    f
}

fn invalid_code() -> HttpResponse {
    error_response(403, "Invalid code or code_verifier")
}

fn paste(f: &mut Flow, text: &str, at: u64) -> (Handled, Vec<Output>) {
    let h = f.handle_input(Input::Pasted(text.to_owned().into()), t(at));
    (h, drain(f))
}

fn rejection(outs: &[Output]) -> String {
    match outs {
        [Output::PasteRejected { reason }] => reason.clone(),
        other => panic!("expected one PasteRejected: {other:?}"),
    }
}

#[test]
fn a_refused_paste_can_be_pasted_again_with_the_same_verifier() {
    let mut f = headless(1);
    let (_, outs) = paste(&mut f, "typo-code", 1);
    let first = exchange_body(&outs);
    let _ = f.handle_input(
        Input::ExchangeResponse {
            id: exchange_id(&outs),
            response: invalid_code(),
        },
        t(2),
    );
    let outs = drain(&mut f);
    assert_eq!(f.phase(), Phase::AwaitingCallback, "the sign-in goes on");
    assert!(finished(&outs).is_none(), "{outs:?}");
    let told = rejection(&outs);
    assert!(told.contains("did not accept that code"), "{told}");
    assert!(
        told.contains("Paste the code again (2 tries left)"),
        "{told}"
    );
    assert!(
        !told.contains("typo-code"),
        "the code is not echoed: {told}"
    );

    // The same wrong code again is not sent again.
    let (h, outs) = paste(&mut f, "typo-code", 3);
    assert_eq!(h, Handled::PasteRejected);
    assert!(rejection(&outs).contains("already refused"), "{outs:?}");
    assert_eq!(f.exchanges_sent(), 1);

    // The right code: exchanged with the very same verifier, and the sign-in completes.
    let (_, outs) = paste(&mut f, "right-code", 4);
    let second = exchange_body(&outs);
    assert_eq!(second["code"], "right-code");
    assert_eq!(second["code_verifier"], first["code_verifier"]);
    let _ = f.handle_input(
        Input::ExchangeResponse {
            id: exchange_id(&outs),
            response: ok_response(),
        },
        t(5),
    );
    assert!(matches!(
        drain(&mut f).as_slice(),
        [Output::StoreKey { .. }]
    ));
}

#[test]
fn the_third_refused_paste_ends_the_sign_in() {
    let mut f = headless(2);
    for (i, code) in ["one", "two", "three"].iter().enumerate() {
        let at = 10 * i as u64;
        let (_, outs) = paste(&mut f, code, at + 1);
        let _ = f.handle_input(
            Input::ExchangeResponse {
                id: exchange_id(&outs),
                response: invalid_code(),
            },
            t(at + 2),
        );
        let outs = drain(&mut f);
        if i < 2 {
            assert_eq!(f.phase(), Phase::AwaitingCallback, "{code}");
            let left = 2 - i;
            assert!(rejection(&outs).contains(&format!("({left} ")), "{outs:?}");
        } else {
            assert_eq!(
                finished(&outs),
                Some(Outcome::Failed(FlowError::User(UserError::InvalidCode)))
            );
        }
    }
    assert_eq!(f.exchanges_sent(), 3);
}

#[test]
fn other_refusals_still_end_the_sign_in() {
    let mut f = headless(3);
    let (_, outs) = paste(&mut f, "old-code", 1);
    let _ = f.handle_input(
        Input::ExchangeResponse {
            id: exchange_id(&outs),
            response: error_response(403, "Authorization code expired"),
        },
        t(2),
    );
    assert!(f.is_terminal());

    // A loopback flow whose browser brought the code does not wait for a paste.
    let mut f = bound_flow(4, FlowConfig::default());
    let _ = drain(&mut f);
    let _ = f.handle_input(get(1, &own(&f, "?code=c")), t(1));
    let outs = drain(&mut f);
    let _ = f.handle_input(
        Input::ExchangeResponse {
            id: exchange_id(&outs),
            response: invalid_code(),
        },
        t(2),
    );
    assert!(f.is_terminal());
}

#[test]
fn a_text_that_is_not_a_code_is_told_what_a_code_looks_like() {
    let mut f = headless(5);
    let (h, outs) = paste(&mut f, "hello world", 1);
    assert_eq!(h, Handled::PasteRejected);
    let told = rejection(&outs);
    assert!(!told.contains("empty or not printable"), "{told}");
    assert!(told.contains("one word with no spaces"), "{told}");
    assert!(
        told.contains("shown by OpenRouter after you approve"),
        "{told}"
    );
}

#[test]
fn a_refused_paste_ends_the_sign_in_when_nothing_more_can_be_pasted() {
    let mut f = headless(6);
    let (_, outs) = paste(&mut f, "piped-code", 1);
    // Standard input ended while the code was being exchanged (`echo code | login`).
    let _ = f.handle_input(Input::PastesClosed, t(2));
    let _ = f.handle_input(
        Input::ExchangeResponse {
            id: exchange_id(&outs),
            response: invalid_code(),
        },
        t(3),
    );
    assert_eq!(
        finished(&drain(&mut f)),
        Some(Outcome::Failed(FlowError::User(UserError::InvalidCode))),
        "no waiting ten minutes for a paste that cannot come"
    );
}
