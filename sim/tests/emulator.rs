//! Black-box tests of the OpenRouter emulator over real HTTP, as a client would see it.

use std::time::{Duration, Instant};

use openrouter_auth_sim::emulator::{
    ChallengeMethod, Emulator, EmulatorOptions, Fault, Mode, CONSENT_PAGE_TITLE,
};
use reqwest::blocking::{Client, Response};
use reqwest::redirect::Policy;
use reqwest::StatusCode;
use serde_json::{json, Value};
use url::Url;

/// RFC 7636 appendix B.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
const CALLBACK: &str = "http://localhost:53122/callback/nonce123";

fn client() -> Client {
    Client::builder()
        .redirect(Policy::none())
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

fn auth_url(emu: &Emulator, params: &[(&str, &str)]) -> Url {
    let mut url = emu.base_url().join("auth").unwrap();
    url.query_pairs_mut().extend_pairs(params);
    url
}

fn get(url: &Url) -> Response {
    client().get(url.clone()).send().unwrap()
}

fn location(response: &Response) -> Url {
    assert_eq!(response.status(), StatusCode::FOUND);
    let location = response.headers()["location"].to_str().unwrap();
    Url::parse(location).unwrap()
}

fn query(url: &Url, name: &str) -> Option<String> {
    url.query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Runs `/auth` in redirect mode with an S256 challenge and returns the code.
fn authorize_s256(emu: &Emulator) -> String {
    let url = auth_url(
        emu,
        &[
            ("callback_url", CALLBACK),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("key_label", "my app"),
        ],
    );
    query(&location(&get(&url)), "code").expect("code in the redirect")
}

fn exchange(emu: &Emulator, body: Value) -> Response {
    client()
        .post(emu.base_url().join("api/v1/auth/keys").unwrap())
        .json(&body)
        .send()
        .unwrap()
}

fn exchange_s256(emu: &Emulator, code: &str) -> Response {
    exchange(
        emu,
        json!({"code": code, "code_verifier": VERIFIER, "code_challenge_method": "S256"}),
    )
}

/// Asserts OpenRouter's error shape `{"error": {"code": status, "message": message}}`.
fn assert_error(response: Response, status: u16, message: &str) {
    assert_eq!(response.status().as_u16(), status);
    let body: Value = response.json().unwrap();
    assert_eq!(body, json!({"error": {"code": status, "message": message}}));
}

fn assert_success(response: Response) -> String {
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().unwrap();
    let key = body["key"].as_str().unwrap().to_owned();
    let hex = key.strip_prefix("sk-or-v1-").expect("sk-or-v1- prefix");
    assert_eq!(hex.len(), 64);
    assert!(hex
        .chars()
        .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c)));
    assert!(body["user_id"].as_str().unwrap().starts_with("user_"));
    key
}

fn key_info(emu: &Emulator, path: &str, authorization: Option<&str>) -> Response {
    let mut request = client().get(emu.base_url().join(path).unwrap());
    if let Some(value) = authorization {
        request = request.header("Authorization", value);
    }
    request.send().unwrap()
}

// ---------------------------------------------------------------------------------------------
// GET /auth

#[test]
fn redirect_appends_code_and_keeps_existing_query() {
    let emu = Emulator::start_blocking();
    let url = auth_url(
        &emu,
        &[
            ("callback_url", "http://127.0.0.1:4000/cb/n1?keep=yes&x=1"),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
        ],
    );
    let target = location(&get(&url));
    assert_eq!(target.host_str(), Some("127.0.0.1"));
    assert_eq!(target.port(), Some(4000));
    assert_eq!(target.path(), "/cb/n1");
    let pairs: Vec<(String, String)> = target.query_pairs().into_owned().collect();
    assert_eq!(pairs[0], ("keep".into(), "yes".into()));
    assert_eq!(pairs[1], ("x".into(), "1".into()));
    assert_eq!(pairs[2].0, "code");
    assert!(!pairs[2].1.is_empty());
    assert_eq!(pairs.len(), 3);

    let seen = emu.authorize_requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].code_challenge.as_deref(), Some(CHALLENGE));
    assert_eq!(seen[0].key_label, None);
}

#[test]
fn https_callback_is_accepted() {
    let emu = Emulator::start_blocking();
    let url = auth_url(&emu, &[("callback_url", "https://app.example/cb")]);
    let target = location(&get(&url));
    assert_eq!(target.scheme(), "https");
    assert!(query(&target, "code").is_some());
}

#[test]
fn bad_callback_urls_are_rejected_with_an_html_page() {
    let emu = Emulator::start_blocking();
    for bad in [
        "http://evil.example/cb",
        "http://localhost.evil.example/cb",
        "ftp://localhost/cb",
        "not a url",
        "",
    ] {
        let response = get(&auth_url(
            &emu,
            &[("callback_url", bad), ("code_challenge", CHALLENGE)],
        ));
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad:?}");
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        assert!(response.text().unwrap().contains("callback_url"));
    }
    assert_eq!(emu.authorize_requests().len(), 5);
}

#[test]
fn key_label_over_100_chars_is_rejected() {
    let emu = Emulator::start_blocking();
    let ok = "é".repeat(100);
    let response = get(&auth_url(
        &emu,
        &[("callback_url", CALLBACK), ("key_label", &ok)],
    ));
    assert_eq!(response.status(), StatusCode::FOUND);

    let too_long = "a".repeat(101);
    let response = get(&auth_url(
        &emu,
        &[("callback_url", CALLBACK), ("key_label", &too_long)],
    ));
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().unwrap().contains("key_label"));
}

#[test]
fn unknown_code_challenge_method_is_rejected() {
    let emu = Emulator::start_blocking();
    let response = get(&auth_url(
        &emu,
        &[
            ("callback_url", CALLBACK),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S512"),
        ],
    ));
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().unwrap().contains("code_challenge_method"));
}

#[test]
fn consent_approve_redirects_with_a_code_once() {
    let emu = Emulator::start_blocking();
    emu.set_mode(Mode::Consent);
    let url = auth_url(
        &emu,
        &[
            ("callback_url", CALLBACK),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("key_label", "<script>alert(1)</script>"),
        ],
    );
    let response = get(&url);
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().unwrap();
    assert!(page.contains(&format!("<title>{CONSENT_PAGE_TITLE}</title>")));
    assert!(page.contains("localhost:53122"));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert!(!page.contains("<script>"));
    let approve = link(&page, "approve");
    assert!(approve.starts_with("/auth/approve?request="));

    let approve_url = emu.base_url().join(&approve).unwrap();
    let target = location(&get(&approve_url));
    assert!(target.as_str().starts_with(CALLBACK));
    let code = query(&target, "code").unwrap();
    let key = assert_success(exchange_s256(&emu, &code));
    assert_eq!(emu.issued_keys()[0].key, key);
    assert_eq!(emu.issued_keys()[0].label, "<script>alert(1)</script>");

    // The request id is single use, and so is the deny link of the same request.
    assert_eq!(get(&approve_url).status(), StatusCode::BAD_REQUEST);
    let deny_url = emu.base_url().join(&link(&page, "deny")).unwrap();
    assert_eq!(get(&deny_url).status(), StatusCode::BAD_REQUEST);
}

#[test]
fn consent_deny_redirects_with_access_denied() {
    let emu = Emulator::start_with_blocking(EmulatorOptions {
        port: 0,
        mode: Mode::Consent,
    })
    .unwrap();
    let page = get(&auth_url(&emu, &[("callback_url", CALLBACK)]))
        .text()
        .unwrap();
    let deny_url = emu.base_url().join(&link(&page, "deny")).unwrap();
    let target = location(&get(&deny_url));
    assert!(target.as_str().starts_with(CALLBACK));
    assert_eq!(query(&target, "error").as_deref(), Some("access_denied"));
    assert_eq!(
        query(&target, "error_description").as_deref(),
        Some("The user denied access")
    );
    assert!(target
        .as_str()
        .ends_with("error_description=The+user+denied+access"));
    assert_eq!(query(&target, "code"), None);
    assert!(emu.issued_keys().is_empty());
}

/// The `href` of the `<a id="ID" ...>` link on a page.
fn link(page: &str, id: &str) -> String {
    let marker = format!("<a id=\"{id}\" href=\"");
    let start = page.find(&marker).expect("link on the page") + marker.len();
    let end = start + page[start..].find('"').unwrap();
    page[start..end].replace("&amp;", "&")
}

#[test]
fn headless_shows_the_code_and_requires_a_challenge() {
    let emu = Emulator::start_blocking();
    let response = get(&auth_url(
        &emu,
        &[("code_challenge_method", "S256"), ("key_label", "ssh box")],
    ));
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert!(response.text().unwrap().contains("code_challenge"));

    let response = get(&auth_url(
        &emu,
        &[
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("key_label", "ssh box"),
        ],
    ));
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().unwrap();
    assert!(page.to_lowercase().contains("paste"));
    let start = page.find("<code id=\"code\">").unwrap() + "<code id=\"code\">".len();
    let end = start + page[start..].find("</code>").unwrap();
    let code = &page[start..end];
    assert!(!code.is_empty());

    assert_success(exchange_s256(&emu, code));
    assert_eq!(emu.issued_keys()[0].label, "ssh box");
}

// ---------------------------------------------------------------------------------------------
// POST /api/v1/auth/keys

#[test]
fn s256_exchange_issues_a_key() {
    let emu = Emulator::start_blocking();
    let code = authorize_s256(&emu);
    let key = assert_success(exchange_s256(&emu, &code));
    let issued = emu.issued_keys();
    assert_eq!(issued.len(), 1);
    assert_eq!(issued[0].key, key);
    assert_eq!(issued[0].label, "my app");
    assert_eq!(issued[0].code_challenge_method, Some(ChallengeMethod::S256));
    assert!(!issued[0].revoked);
    assert_eq!(emu.exchange_attempts(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_start_serves_an_exchange() {
    let emu = Emulator::start().await;
    let http = reqwest::Client::builder()
        .redirect(Policy::none())
        .build()
        .unwrap();
    let mut url = emu.base_url().join("auth").unwrap();
    url.query_pairs_mut()
        .append_pair("callback_url", CALLBACK)
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256");
    let response = http.get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FOUND);
    let target = Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
    let code = query(&target, "code").unwrap();
    let response = http
        .post(emu.base_url().join("api/v1/auth/keys").unwrap())
        .json(&json!({"code": code, "code_verifier": VERIFIER, "code_challenge_method": "S256"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert!(body["key"].as_str().unwrap().starts_with("sk-or-v1-"));
}

#[tokio::test]
async fn start_blocking_works_inside_a_runtime() {
    let emu = Emulator::start_blocking();
    let response = reqwest::Client::new()
        .get(emu.base_url().join("api/v1/key").unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
}

#[test]
fn plain_method_exchange() {
    let emu = Emulator::start_blocking();
    let url = auth_url(
        &emu,
        &[
            ("callback_url", CALLBACK),
            ("code_challenge", VERIFIER),
            ("code_challenge_method", "plain"),
        ],
    );
    let code = query(&location(&get(&url)), "code").unwrap();
    assert_success(exchange(
        &emu,
        json!({"code": code, "code_verifier": VERIFIER, "code_challenge_method": "plain"}),
    ));
    let issued = emu.issued_keys();
    assert_eq!(
        issued[0].code_challenge_method,
        Some(ChallengeMethod::Plain)
    );
    assert_eq!(issued[0].label, "openrouter-auth");
}

#[test]
fn method_mismatch_is_400_and_does_not_burn_the_code() {
    let emu = Emulator::start_blocking();
    let code = authorize_s256(&emu);
    assert_error(
        exchange(
            &emu,
            json!({"code": code, "code_verifier": CHALLENGE, "code_challenge_method": "plain"}),
        ),
        400,
        "Invalid code_challenge_method",
    );
    assert_success(exchange_s256(&emu, &code));
}

#[test]
fn reused_code_is_403() {
    let emu = Emulator::start_blocking();
    let code = authorize_s256(&emu);
    assert_success(exchange_s256(&emu, &code));
    assert_error(
        exchange_s256(&emu, &code),
        403,
        "Invalid code or code_verifier",
    );
    assert_eq!(emu.issued_keys().len(), 1);
    assert_eq!(emu.exchange_attempts(), 2);
}

#[test]
fn unknown_code_is_403() {
    let emu = Emulator::start_blocking();
    assert_error(
        exchange_s256(&emu, "no-such-code"),
        403,
        "Invalid code or code_verifier",
    );
}

#[test]
fn expired_code_is_403() {
    let emu = Emulator::start_blocking();
    let code = authorize_s256(&emu);
    emu.advance_clock(Duration::from_secs(10 * 60 + 1));
    assert_error(
        exchange_s256(&emu, &code),
        403,
        "Authorization code expired",
    );
}

#[test]
fn code_just_under_ten_minutes_old_still_works() {
    let emu = Emulator::start_blocking();
    let code = authorize_s256(&emu);
    emu.advance_clock(Duration::from_secs(9 * 60 + 50));
    assert_success(exchange_s256(&emu, &code));
}

#[test]
fn wrong_verifier_is_403_and_burns_the_code() {
    let emu = Emulator::start_blocking();
    let code = authorize_s256(&emu);
    let wrong = "A".repeat(43);
    assert_error(
        exchange(
            &emu,
            json!({"code": code, "code_verifier": wrong, "code_challenge_method": "S256"}),
        ),
        403,
        "Invalid code or code_verifier",
    );
    assert_error(
        exchange_s256(&emu, &code),
        403,
        "Invalid code or code_verifier",
    );
    assert!(emu.issued_keys().is_empty());
}

#[test]
fn non_json_body_is_400() {
    let emu = Emulator::start_blocking();
    let code = authorize_s256(&emu);
    let response = client()
        .post(emu.base_url().join("api/v1/auth/keys").unwrap())
        .form(&[
            ("code", code.as_str()),
            ("code_verifier", VERIFIER),
            ("code_challenge_method", "S256"),
        ])
        .send()
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    let body: Value = response.json().unwrap();
    assert_eq!(body["error"]["code"], 400);
    // The code is untouched.
    assert_success(exchange_s256(&emu, &code));
}

#[test]
fn non_post_on_the_keys_endpoint_is_405() {
    let emu = Emulator::start_blocking();
    let response = client()
        .get(emu.base_url().join("api/v1/auth/keys").unwrap())
        .send()
        .unwrap();
    assert_error(response, 405, "Method Not Allowed");
}

// ---------------------------------------------------------------------------------------------
// Faults

#[test]
fn transient_faults_answer_in_openrouter_shape_and_keep_the_code() {
    let cases = [
        (Fault::InternalError, 500, "Internal Server Error"),
        (Fault::Unavailable, 503, "Service Unavailable"),
        (Fault::Conflict, 409, "Failed to create or update app"),
        (
            Fault::RateLimited {
                retry_after_secs: 7,
            },
            429,
            "Rate limit exceeded",
        ),
    ];
    for (fault, status, message) in cases {
        let emu = Emulator::start_blocking();
        let code = authorize_s256(&emu);
        emu.inject_fault(fault.clone());
        let response = exchange_s256(&emu, &code);
        if status == 429 {
            assert_eq!(response.headers()["retry-after"], "7");
        }
        assert_error(response, status, message);
        // Persistent until cleared.
        assert_eq!(exchange_s256(&emu, &code).status().as_u16(), status);
        emu.clear_faults();
        assert_success(exchange_s256(&emu, &code));
        assert_eq!(emu.exchange_attempts(), 3, "{fault:?}");
    }
}

#[test]
fn bad_gateway_is_502_html() {
    let emu = Emulator::start_blocking();
    let code = authorize_s256(&emu);
    emu.inject_fault_once(Fault::BadGateway);
    let response = exchange_s256(&emu, &code);
    assert_eq!(response.status(), StatusCode::BAD_GATEWAY);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(serde_json::from_str::<Value>(&response.text().unwrap()).is_err());
    // Fired once, code not consumed.
    assert_success(exchange_s256(&emu, &code));
}

#[test]
fn once_faults_fire_once_each_in_order() {
    let emu = Emulator::start_blocking();
    let code = authorize_s256(&emu);
    emu.inject_fault(Fault::InternalError);
    emu.inject_fault_once(Fault::Unavailable);
    emu.inject_fault_once(Fault::Conflict);
    assert_eq!(exchange_s256(&emu, &code).status().as_u16(), 503);
    assert_eq!(exchange_s256(&emu, &code).status().as_u16(), 409);
    assert_eq!(exchange_s256(&emu, &code).status().as_u16(), 500);
    emu.clear_faults();
    assert_success(exchange_s256(&emu, &code));
}

#[test]
fn slow_fault_answers_correctly_after_the_delay() {
    let emu = Emulator::start_blocking();
    let code = authorize_s256(&emu);
    emu.inject_fault_once(Fault::Slow(Duration::from_millis(600)));
    let started = Instant::now();
    assert_success(exchange_s256(&emu, &code));
    assert!(started.elapsed() >= Duration::from_millis(600));
}

#[test]
fn slow_fault_trips_a_client_timeout_but_the_key_is_issued() {
    let emu = Emulator::start_blocking();
    let code = authorize_s256(&emu);
    emu.inject_fault_once(Fault::Slow(Duration::from_secs(3)));
    let error = Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .unwrap()
        .post(emu.base_url().join("api/v1/auth/keys").unwrap())
        .json(&json!({"code": code, "code_verifier": VERIFIER, "code_challenge_method": "S256"}))
        .send()
        .unwrap_err();
    assert!(error.is_timeout());
    assert_eq!(emu.issued_keys().len(), 1);
    assert_error(
        exchange_s256(&emu, &code),
        403,
        "Invalid code or code_verifier",
    );
}

#[test]
fn broken_body_faults_issue_the_key_and_burn_the_code() {
    for fault in [
        Fault::MalformedJson,
        Fault::TruncatedBody,
        Fault::OkWithoutKey,
    ] {
        let emu = Emulator::start_blocking();
        let code = authorize_s256(&emu);
        emu.inject_fault_once(fault.clone());
        let response = exchange_s256(&emu, &code);
        assert_eq!(response.status(), StatusCode::OK);
        let text = response.text().unwrap();
        let issued = emu.issued_keys();
        assert_eq!(issued.len(), 1, "{fault:?}");
        match fault {
            Fault::MalformedJson => {
                assert_eq!(text, "{\"key\": ");
                assert!(serde_json::from_str::<Value>(&text).is_err());
            }
            Fault::TruncatedBody => {
                assert!(text.starts_with("{\"key\":\"sk-or-v1-"));
                assert_eq!(text.len(), "{\"key\":\"sk-or-v1-ab".len());
                assert!(issued[0].key.starts_with(&text["{\"key\":\"".len()..]));
                assert!(serde_json::from_str::<Value>(&text).is_err());
            }
            _ => {
                let body: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(body, json!({"user_id": "user_x"}));
            }
        }
        // The key exists and works; the code is gone.
        let bearer = format!("Bearer {}", issued[0].key);
        assert_eq!(
            key_info(&emu, "api/v1/key", Some(&bearer)).status(),
            StatusCode::OK
        );
        assert_error(
            exchange_s256(&emu, &code),
            403,
            "Invalid code or code_verifier",
        );
    }
}

// ---------------------------------------------------------------------------------------------
// GET /api/v1/key

#[test]
fn key_endpoint_describes_issued_keys() {
    let emu = Emulator::start_blocking();
    let code = authorize_s256(&emu);
    let key = assert_success(exchange_s256(&emu, &code));
    for path in ["api/v1/key", "api/v1/auth/key"] {
        let response = key_info(&emu, path, Some(&format!("Bearer {key}")));
        assert_eq!(response.status(), StatusCode::OK);
        let body: Value = response.json().unwrap();
        assert_eq!(
            body,
            json!({"data": {
                "label": "my app",
                "limit": null,
                "limit_remaining": null,
                "usage": 0.0,
                "usage_daily": 0.0,
                "usage_weekly": 0.0,
                "usage_monthly": 0.0,
                "is_free_tier": true,
                "is_provisioning_key": false,
                "expires_at": null,
                "rate_limit": {"requests": 20, "interval": "10s"},
            }})
        );
    }
}

#[test]
fn key_endpoint_rejects_revoked_unknown_and_missing_keys() {
    let emu = Emulator::start_blocking();
    let code = authorize_s256(&emu);
    let key = assert_success(exchange_s256(&emu, &code));
    let bearer = format!("Bearer {key}");

    assert!(emu.revoke_key(&key));
    assert!(!emu.revoke_key(&key));
    assert!(emu.issued_keys()[0].revoked);
    assert_error(
        key_info(&emu, "api/v1/key", Some(&bearer)),
        401,
        "User not found.",
    );
    assert_error(
        key_info(&emu, "api/v1/auth/key", Some(&bearer)),
        401,
        "User not found.",
    );

    let unknown = format!("Bearer sk-or-v1-{}", "0".repeat(64));
    assert_error(
        key_info(&emu, "api/v1/key", Some(&unknown)),
        401,
        "User not found.",
    );
    assert_error(
        key_info(&emu, "api/v1/key", None),
        401,
        "No auth credentials found",
    );
    assert_error(
        key_info(&emu, "api/v1/key", Some(&key)),
        401,
        "No auth credentials found",
    );
}

// ---------------------------------------------------------------------------------------------
// The binary

#[test]
fn binary_prints_its_address_and_serves() {
    use std::io::BufRead as _;
    use std::process::{Command, Stdio};

    let mut child = Command::new(env!("CARGO_BIN_EXE_openrouter-emulator"))
        .args(["--port", "0", "--mode", "consent"])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let result = std::panic::catch_unwind(|| {
        let base = line
            .trim_end()
            .strip_prefix("openrouter emulator listening on ")
            .expect("the announced line");
        let base = Url::parse(base).unwrap();
        assert_eq!(base.host_str(), Some("127.0.0.1"));
        let mut url = base.join("auth").unwrap();
        url.query_pairs_mut().append_pair("callback_url", CALLBACK);
        let response = get(&url);
        assert_eq!(response.status(), StatusCode::OK);
        assert!(response.text().unwrap().contains(CONSENT_PAGE_TITLE));
    });
    child.kill().unwrap();
    child.wait().unwrap();
    result.unwrap();
}

/// The key page the sign-in's success page links to (`/keys/<sha256 of the key>`) shows the
/// key like OpenRouter's settings page, and its "Revoke" form revokes it.
#[test]
fn key_page_shows_the_key_and_revokes_it() {
    use openrouter_auth_sim::emulator::{key_hash, KEY_PAGE_TITLE};
    let emu = Emulator::start_blocking();
    let key = assert_success(exchange_s256(&emu, &authorize_s256(&emu)));
    let page_url = emu
        .base_url()
        .join(&format!("keys/{}", key_hash(&key)))
        .unwrap();
    // The link the core's success page carries is this very URL.
    let core_link = openrouter_auth_core::ApiKey::new(&key).key_page_url(&emu.base_url());
    assert_eq!(core_link, page_url);

    let page = get(&page_url);
    assert_eq!(page.status(), StatusCode::OK);
    let body = page.text().unwrap();
    assert!(
        body.contains(&format!("<title>{KEY_PAGE_TITLE} · my app")),
        "{body}"
    );
    assert!(body.contains("<h1 id=\"label\">my app</h1>"), "{body}");
    assert!(body.contains(&format!("{}…", &key[..12])), "{body}");
    assert!(
        !body.contains(&key),
        "the page never shows the whole key: {body}"
    );
    assert!(body.contains("<dd id=\"status\">Active</dd>"), "{body}");
    assert!(body.contains("<dd id=\"limit\">No limit</dd>"), "{body}");

    let revoked = client()
        .post(
            page_url
                .join(&format!("{}/revoke", key_hash(&key)))
                .unwrap(),
        )
        .send()
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::OK);
    assert!(revoked
        .text()
        .unwrap()
        .contains("<dd id=\"status\">Revoked</dd>"));
    assert!(emu.issued_keys()[0].revoked);
    assert_eq!(
        key_info(&emu, "api/v1/key", Some(&format!("Bearer {key}"))).status(),
        401
    );

    let unknown = get(&emu
        .base_url()
        .join(&format!("keys/{}", "0".repeat(64)))
        .unwrap());
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
}

/// A `limit` on `/auth` becomes the key's credit limit: the key check reports it as `limit`
/// and `limit_remaining`, and the key page shows it; a limit that is not a positive number
/// is refused.
#[test]
fn a_limit_on_the_authorization_url_limits_the_key() {
    use openrouter_auth_sim::emulator::key_hash;
    let emu = Emulator::start_blocking();
    let url = auth_url(
        &emu,
        &[
            ("callback_url", CALLBACK),
            ("code_challenge", CHALLENGE),
            ("code_challenge_method", "S256"),
            ("limit", "2.5"),
        ],
    );
    let code = query(&location(&get(&url)), "code").unwrap();
    let key = assert_success(exchange_s256(&emu, &code));
    let info: Value = key_info(&emu, "api/v1/key", Some(&format!("Bearer {key}")))
        .json()
        .unwrap();
    assert_eq!(info["data"]["limit"], json!(2.5), "{info}");
    assert_eq!(info["data"]["limit_remaining"], json!(2.5), "{info}");
    assert_eq!(emu.issued_keys()[0].limit, Some(2.5));
    let page = get(&emu
        .base_url()
        .join(&format!("keys/{}", key_hash(&key)))
        .unwrap());
    assert!(page.text().unwrap().contains("<dd id=\"limit\">$2.50</dd>"));

    for bad in ["0", "-1", "lots", "NaN", "inf"] {
        let url = auth_url(
            &emu,
            &[
                ("callback_url", CALLBACK),
                ("code_challenge", CHALLENGE),
                ("limit", bad),
            ],
        );
        let answer = get(&url);
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert!(answer.text().unwrap().contains("Invalid limit"), "{bad}");
    }
}
