//! Issue 14, point 4: the default HTTP client trusts the operating system's certificate store,
//! not only compiled-in roots, so a root CA installed the system's way (a company's
//! TLS-inspecting proxy, a private CA) is trusted.
//!
//! A throwaway CA signs the certificate of an HTTPS endpoint (tokio-rustls) that answers the
//! key check and the code exchange. On Linux the store the client reads is the one
//! `SSL_CERT_FILE` names (as for openssl); the checks run in a child process (this test binary
//! again) with that variable set, so the test process's own environment is left alone. With
//! the CA trusted both default clients get OpenRouter's answer; without it they fail with a
//! TLS error that says what to do, and nothing was sent.
#![cfg(target_os = "linux")]

use openrouter_auth::core::{exchange_request, ApiKey, AuthorizationCode, CodeVerifier};
use openrouter_auth::{async_client, blocking_client};
use openrouter_auth::{check_key, check_key_async, AsyncTransport, Transport};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY: &str = "sk-or-v1-0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
const CHILD_BASE: &str = "TRUST_TEST_BASE_URL";

/// A CA (PEM) and an HTTPS server on 127.0.0.1 whose `localhost` certificate it signed.
fn https_endpoint() -> (String, url::Url) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.distinguished_name.push(
        rcgen::DnType::CommonName,
        "openrouter-auth throwaway test CA",
    );
    let ca = ca.self_signed(&ca_key).unwrap();
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["localhost".to_owned()])
        .unwrap()
        .signed_by(&leaf_key, &ca, &ca_key)
        .unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(
        vec![leaf.der().clone()],
        rustls::pki_types::PrivateKeyDer::Pkcs8(leaf_key.serialize_der().into()),
    )
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    return;
                };
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    // A handshake the client refuses ends here.
                    let Ok(mut tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let mut head = Vec::new();
                    let mut buf = [0u8; 4096];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match tls.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let body = if head.starts_with(b"GET /api/v1/key ") {
                        r#"{"data":{"label":"over https","usage":0,"limit":null,"is_free_tier":true}}"#
                            .to_owned()
                    } else {
                        format!(r#"{{"key":"{KEY}","user_id":"user_tls"}}"#)
                    };
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = tls.write_all(answer.as_bytes()).await;
                    let _ = tls.shutdown().await;
                });
            }
        });
    });
    (
        ca.pem(),
        format!("https://localhost:{port}/").parse().unwrap(),
    )
}

/// Runs [`child`] in this test binary again, with `SSL_CERT_FILE` set to `cert_file` (or the
/// system's own store when `None`); returns its standard output.
fn run_child(base: &url::Url, cert_file: Option<&std::path::Path>) -> String {
    let mut cmd = Command::new(std::env::current_exe().unwrap());
    cmd.args(["--exact", "child", "--nocapture", "--test-threads=1"])
        .env(CHILD_BASE, base.as_str())
        .env_remove("SSL_CERT_DIR")
        .env_remove("SSL_CERT_FILE");
    if let Some(f) = cert_file {
        cmd.env("SSL_CERT_FILE", f);
    }
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "child failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The child: the key check with the default blocking and async clients, and a code exchange
/// with each; one `RESULT` line per attempt.
#[test]
fn child() {
    let Ok(base) = std::env::var(CHILD_BASE) else {
        return; // run as a test of its own: nothing to do
    };
    let base: url::Url = base.parse().unwrap();
    let key = ApiKey::new(KEY);
    let line = |what: &str, r: Result<String, String>| match r {
        Ok(v) => println!("RESULT {what} ok {v}"),
        Err(e) => println!("RESULT {what} err {e}"),
    };
    line(
        "blocking-check",
        check_key(&base, &key)
            .map(|i| i.label.unwrap_or_default())
            .map_err(|e| e.to_string()),
    );
    let verifier = CodeVerifier::generate(&mut openrouter_auth::os_rng());
    let exchange = exchange_request(
        &base,
        &AuthorizationCode::new("code-over-tls"),
        &verifier,
        Default::default(),
    );
    line(
        "blocking-exchange",
        blocking_client(&base)
            .unwrap()
            .send(&exchange, Duration::from_secs(10))
            .map(|r| r.status.to_string())
            .map_err(|e| format!("{} (may have been sent: {})", e, e.may_have_been_sent)),
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = async_client(&base).unwrap();
        line(
            "async-check",
            check_key_async(&client, &base, &key)
                .await
                .map(|i| i.label.unwrap_or_default())
                .map_err(|e| e.to_string()),
        );
        line(
            "async-exchange",
            client
                .send(&exchange, Duration::from_secs(10))
                .await
                .map(|r| r.status.to_string())
                .map_err(|e| format!("{} (may have been sent: {})", e, e.may_have_been_sent)),
        );
    });
}

fn results(stdout: &str) -> Vec<&str> {
    stdout
        .lines()
        .filter_map(|l| l.find("RESULT ").map(|i| &l[i + "RESULT ".len()..]))
        .collect()
}

#[test]
fn with_the_ca_in_the_system_store_the_default_clients_get_the_answer() {
    let (ca_pem, base) = https_endpoint();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let out = run_child(&base, Some(&ca_file));
    assert_eq!(
        results(&out),
        [
            "blocking-check ok over https",
            "blocking-exchange ok 200",
            "async-check ok over https",
            "async-exchange ok 200",
        ],
        "{out}"
    );
}

#[test]
fn without_it_they_fail_with_a_tls_error_before_sending() {
    let (_, base) = https_endpoint();
    // The machine's own store, which has never heard of the throwaway CA.
    let out = run_child(&base, None);
    let lines = results(&out);
    assert_eq!(lines.len(), 4, "{out}");
    for line in lines {
        assert!(line.contains(" err "), "{line}");
        assert!(
            line.contains("the server's certificate is not trusted by this system"),
            "{line}"
        );
        assert!(line.contains("UnknownIssuer"), "{line}");
        if line.contains("exchange") {
            assert!(line.contains("may have been sent: false"), "{line}");
        }
    }
}
