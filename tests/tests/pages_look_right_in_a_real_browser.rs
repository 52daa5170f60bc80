//! Every result page the browser can land on, rendered by a real headless Chromium with the
//! headers the listener sends (the CSP included), at a desktop width (1000 px) and a phone
//! width (360 px), light and dark. The screenshots go to `target/page-screenshots/` for a
//! person to look at; the test checks what a person would notice: the headline is there, the
//! style sheet was allowed by the CSP (the card has its rounded border, the status mark its
//! size), and nothing is wider than a 360 px screen.
//!
//! Skipped (with a `skipped: chromium not installed` line) when there is no Chromium, unless
//! `OPENROUTER_AUTH_REQUIRE_CHROMIUM=1`.
#![cfg(unix)]

use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;

use openrouter_auth_core::{AppName, Page};
use openrouter_auth_tests::chromium::{self, Chromium};
use serde_json::json;
use url::Url;

/// The pages, each with the file name of its screenshots.
fn pages() -> Vec<(&'static str, Page)> {
    let long_path = "credentials file /home/ana-maria/.config/openrouter-auth/credentials.json";
    vec![
        (
            "success",
            Page::SignedIn {
                location: long_path.into(),
                key_label: Some("Acme Agent on ana-laptop 2026-12-02".into()),
                key_page: Some(
                    "https://openrouter.ai/keys/9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
                        .into(),
                ),
            },
        ),
        (
            "denied",
            Page::Denied {
                error: "access_denied".into(),
                description: Some("The user denied access".into()),
            },
        ),
        ("expired", Page::Expired),
        (
            "failed",
            Page::Failed {
                reason: "could not reach OpenRouter: the connection was refused".into(),
            },
        ),
        (
            "key-not-stored",
            Page::KeyNotStored {
                key_label: Some("Acme Agent on ana-laptop 2026-12-02".into()),
                key_page: Some("https://openrouter.ai/keys/3f1c9a0e7b2d".into()),
            },
        ),
        ("busy", Page::Busy),
        ("not-found", Page::NotFound),
    ]
}

/// Serves page `i` of `pages` on `GET /i` (with its real headers) until the test ends.
fn serve(pages: Vec<Vec<u8>>) -> Url {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let url = Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            let Ok(mut conn) = conn else { continue };
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 16 * 1024 {
                match conn.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => head.extend_from_slice(&buf[..n]),
                }
            }
            let head = String::from_utf8_lossy(&head);
            let path = head.split(' ').nth(1).unwrap_or("/");
            let page = path
                .trim_start_matches('/')
                .parse::<usize>()
                .ok()
                .and_then(|i| pages.get(i));
            let answer = match page {
                Some(bytes) => bytes.clone(),
                None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec(),
            };
            let _ = conn.write_all(&answer);
        }
    });
    url
}

fn screenshot_dir() -> PathBuf {
    // `CARGO_TARGET_TMPDIR` is `<target>/tmp`: the screenshots go next to it.
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("the target directory")
        .join("page-screenshots");
    std::fs::create_dir_all(&dir).expect("create target/page-screenshots");
    dir
}

#[test]
fn every_page_shows_its_headline_styled_and_fits_a_phone() {
    let Some(bin) = chromium::require("every_page_shows_its_headline_styled_and_fits_a_phone")
    else {
        return;
    };
    let _one_at_a_time = chromium::exclusive();
    let app = AppName::new("Acme Agent").unwrap();
    let pages = pages();
    let base = serve(
        pages
            .iter()
            .map(|(_, p)| p.render_for(&app).encode(false))
            .collect(),
    );
    let dir = screenshot_dir();

    let browser = Chromium::launch(&bin);
    let mut tab = browser.first_tab();
    for (width, height) in [(1000u32, 720u32), (360, 740)] {
        tab.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 500}),
        )
        .expect("set the viewport");
        for (i, (name, page)) in pages.iter().enumerate() {
            let url = base.join(&i.to_string()).unwrap();
            let headline = page.headline().expect("every result page has a headline");
            tab.navigate(&url);
            tab.wait_for(
                &format!("{name}: the headline {headline:?} at {width} px"),
                &format!(
                    "document.readyState === 'complete' && !!document.querySelector('h1') && document.querySelector('h1').textContent === {}",
                    serde_json::to_string(headline).unwrap()
                ),
            );
            assert_eq!(
                tab.title(),
                format!("{headline} · OpenRouter sign-in"),
                "{name}"
            );
            // The style sheet ran (the CSP allowed it by its hash): the card is rounded and
            // the inline SVG status mark is drawn at its size.
            let styled = tab
                .eval("getComputedStyle(document.querySelector('main')).borderTopLeftRadius")
                .unwrap();
            assert_eq!(styled, json!("12px"), "{name}: the style sheet was blocked");
            let mark = tab
                .eval("document.querySelector('svg.mark').getBoundingClientRect().width")
                .unwrap();
            assert_eq!(mark.as_f64(), Some(48.0), "{name}: the status mark");
            // Nothing runs off the side of a phone screen (a long path wraps).
            let overflow = tab
                .eval("document.documentElement.scrollWidth - window.innerWidth")
                .unwrap();
            assert!(
                overflow.as_f64().is_some_and(|o| o <= 0.0),
                "{name} at {width} px is {overflow} px too wide"
            );
            // The next step is visible without scrolling: the user must not hunt for it.
            let next_bottom = tab
                .eval("(document.querySelector('.next') || document.querySelector('main p')).getBoundingClientRect().bottom")
                .unwrap();
            assert!(
                next_bottom.as_f64().is_some_and(|b| b <= f64::from(height)),
                "{name} at {width} px: the next step is below the fold ({next_bottom})"
            );
        }
    }
    drop(tab);
    drop(browser);

    for (i, (name, page)) in pages.iter().enumerate() {
        let url = base.join(&i.to_string()).unwrap();
        for (label, size, dark) in [
            ("1000", (1000, 720), false),
            ("360", (360, 740), false),
            ("360-dark", (360, 740), true),
        ] {
            let file = dir.join(format!("{name}-{label}.png"));
            let _ = std::fs::remove_file(&file);
            let out = chromium::screenshot(&bin, &url, &file, size, dark);
            let png = std::fs::read(&file).unwrap_or_else(|e| {
                panic!("{name}: no screenshot at {} ({e}): {out:?}", file.display())
            });
            assert!(png.starts_with(b"\x89PNG"), "{name}: not a PNG");
        }
        // The DOM Chromium ends up with, as `--dump-dom` prints it, has the headline.
        let dom = chromium::dump_dom(&bin, &url);
        let headline = page.headline().unwrap();
        assert!(
            dom.stdout.contains(&format!("<h1>{headline}</h1>")),
            "{name}: {}",
            dom.stdout
        );
    }
}
