//! Issue 14, point 4: the default clients never follow a redirect on the code exchange. A
//! `302` from `POST /api/v1/auth/keys` ends the sign-in as an unexpected answer; the place it
//! points to never sees the request (which carries the authorization code and the
//! `code_verifier`), even though it would answer with a key.

#[macro_use]
mod common;

use common::*;
use openrouter_auth::{LoginError, LoginOptions, StoreEnv, StoreSpec};
use std::io::{Read, Write};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A server whose exchange endpoint redirects to `/elsewhere`, which hands out [`KEY`].
/// Returns its base URL and how many requests reached `/elsewhere`.
fn redirecting_openrouter() -> (url::Url, Arc<AtomicUsize>) {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = l.local_addr().unwrap().port();
    let elsewhere = Arc::new(AtomicUsize::new(0));
    let seen = elsewhere.clone();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            let mut buf = [0u8; 8192];
            let n = s.read(&mut buf).unwrap_or(0);
            let answer = if buf[..n].windows(10).any(|w| w == b"/elsewhere") {
                seen.fetch_add(1, Ordering::SeqCst);
                let body = format!(r#"{{"key":"{KEY}","user_id":"user_1"}}"#);
                format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len())
            } else {
                "HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned()
            };
            let _ = s.write_all(answer.as_bytes());
        }
    });
    (
        format!("http://127.0.0.1:{port}/").parse().unwrap(),
        elsewhere,
    )
}

fn a_302_from_the_exchange_endpoint_is_an_error(driver: Driver) {
    let (base_url, elsewhere) = redirecting_openrouter();
    let dir = tempdir();
    let options = LoginOptions::default()
        .base_url(base_url)
        .open_browser(false)
        .store(StoreSpec::File(Some(credentials(dir.path()))))
        .store_env(
            StoreEnv::default()
                .home(dir.path().to_path_buf())
                .xdg_data_home(dir.path().join("xdg"))
                .config_dir(dir.path().join("config")),
        );
    let mut login = Running::start(driver, options);
    let callback = login.callback_url();
    let visit = come_back(&callback, CODE);
    let err = login.finish().expect_err("a redirect is not a key");
    assert!(matches!(err, LoginError::Flow(_)), "{err:?}");
    assert_eq!(err.kind(), "unexpected_response", "{err}");
    assert!(err.to_string().contains("302"), "{err}");
    assert_eq!(
        elsewhere.load(Ordering::SeqCst),
        0,
        "the redirect was followed"
    );
    assert!(
        !visit.page.body.contains("Signed in"),
        "{}",
        visit.page.body
    );
    assert!(!credentials(dir.path()).exists());
}

both_drivers!(a_302_from_the_exchange_endpoint_is_an_error);
