//! The embedding app's name on the pages a person sees, and its product in the `User-Agent`
//! OpenRouter sees; never a CLI flag in a page.
mod common;
use common::*;
use openrouter_auth_core::*;

fn config(app: &str, product: Option<&str>) -> FlowConfig {
    let mut c = FlowConfig::default();
    c.app_name = AppName::new(app).unwrap();
    c.product_token = product.map(|p| ProductToken::new(p).unwrap());
    c
}

#[test]
fn the_result_page_sends_the_user_back_to_the_app_by_name() {
    let mut f = bound_flow(7, config("Zed <Preview>", Some("zed/0.190.0")));
    let _ = drain(&mut f);
    let _ = f.handle_input(get(1, &own(&f, "?code=c0de")), t(1));
    let outs = drain(&mut f);
    let Some(Output::SendExchange { request, .. }) = outs.first() else {
        panic!("{outs:?}")
    };
    assert_eq!(
        request.header("user-agent"),
        Some(format!("zed/0.190.0 openrouter-auth/{}", env!("CARGO_PKG_VERSION")).as_str())
    );
    let id = exchange_id(&outs);
    let _ = f.handle_input(
        Input::ExchangeResponse {
            id,
            response: ok_response(),
        },
        t(2),
    );
    let _ = drain(&mut f);
    let _ = f.handle_input(
        Input::KeyStored {
            location: "Zed's keychain".into(),
            report: (),
        },
        t(3),
    );
    let _ = drain(&mut f);
    let _ = f.handle_input(get(2, &own(&f, "/done")), t(4));
    let page = response_for(&drain(&mut f), 2);
    assert!(
        page.body.contains("return to Zed &lt;Preview&gt;"),
        "{}",
        page.body
    );
    assert!(!page.body.contains("terminal"), "{}", page.body);
    assert!(!page.body.contains("<Preview>"), "escaped: {}", page.body);
    // Where the key can be revoked: its page on OpenRouter.
    let key_page = ApiKey::new(KEY).key_page_url(&FlowConfig::default().base_url);
    assert!(
        page.body.contains(&format!("<a href=\"{key_page}\"")),
        "{}",
        page.body
    );
}

#[test]
fn without_a_product_the_user_agent_is_ours_alone() {
    let mut f = bound_flow(8, FlowConfig::default());
    let _ = drain(&mut f);
    let _ = f.handle_input(get(1, &own(&f, "?code=c0de")), t(1));
    let outs = drain(&mut f);
    let Some(Output::SendExchange { request, .. }) = outs.first() else {
        panic!("{outs:?}")
    };
    assert_eq!(request.header("user-agent"), Some(USER_AGENT));
}

#[test]
fn no_page_names_a_command_line_flag() {
    for page in [
        Page::HeadTooLarge,
        Page::Expired,
        Page::KeyNotStored {
            key_label: Some("my-agent on host 2026-12-02".into()),
            key_page: Some("https://openrouter.ai/keys/3f1c".into()),
        },
        Page::Busy,
        Page::NotFound,
        Page::Cancelled,
        Page::AlreadyFinished,
    ] {
        let html = page.render_for(&AppName::new("my-agent").unwrap()).body;
        // What the page says: everything after the style sheet (whose custom properties
        // are spelled `--name`).
        let body = &html[html.find("</style>").expect("a style sheet")..];
        assert!(!body.contains("--"), "{page:?} names a flag: {body}");
        assert!(!body.contains("terminal"), "{page:?}: {body}");
    }
}
