//! A listener that could not take ::1 (IPv6 is not available on the machine) is reached only
//! on 127.0.0.1: the `callback_url` then names `127.0.0.1` even when `localhost` was asked
//! for, since a browser may resolve `localhost` to ::1, where another program could hold the
//! port (RFC 8252 section 8.3). With ::1 served too, the configured host is kept.
mod common;
use common::*;
use openrouter_auth_core::*;

fn bound(callback_host: CallbackHost, ipv6: bool) -> Flow {
    let mut f = Flow::new(
        {
            let mut c = FlowConfig::default();
            c.callback_host = callback_host;
            c
        },
        &mut rng(42),
        t(0),
    )
    .expect("the default base URL is https");
    let _ = f.handle_input(Input::ListenerBound { port: PORT, ipv6 }, t(0));
    f
}

/// The `callback_url` the browser is sent to, as found in the authorization URL it opens.
fn advertised_callback(f: &mut Flow) -> url::Url {
    let outs = drain(f);
    let Some(Output::OpenBrowser { url }) = outs.first() else {
        panic!("{outs:?}")
    };
    let (_, cb) = url
        .query_pairs()
        .find(|(k, _)| k == "callback_url")
        .expect("a loopback flow sends its callback_url");
    let cb = url::Url::parse(&cb).unwrap();
    assert_eq!(f.callback_url(), Some(&cb));
    cb
}

#[test]
fn without_ipv6_localhost_is_advertised_as_127_0_0_1() {
    let mut f = bound(CallbackHost::Localhost, false);
    let cb = advertised_callback(&mut f);
    assert_eq!(cb.host_str(), Some("127.0.0.1"));
    assert_eq!(cb.port(), Some(PORT));
    insta::assert_snapshot!(f.authorization_url().unwrap().as_str());
}

#[test]
fn with_ipv6_the_configured_host_is_kept() {
    for (host, name) in [
        (CallbackHost::Localhost, "localhost"),
        (CallbackHost::Ipv4Loopback, "127.0.0.1"),
    ] {
        let cb = advertised_callback(&mut bound(host, true));
        assert_eq!(cb.host_str(), Some(name));
    }
    let cb = advertised_callback(&mut bound(CallbackHost::Ipv4Loopback, false));
    assert_eq!(cb.host_str(), Some("127.0.0.1"));
}

/// The browser still comes back on 127.0.0.1 with a `Host` naming it, and signs in.
#[test]
fn the_ipv4_callback_is_accepted() {
    let mut f = bound(CallbackHost::Localhost, false);
    let cb = advertised_callback(&mut f);
    let target = format!("{}?code=the-code", cb.path());
    let _ = f.handle_input(req(1, "GET", &target, &format!("127.0.0.1:{PORT}")), t(1));
    drain(&mut f);
    assert_eq!(f.phase(), Phase::Exchanging);
}
