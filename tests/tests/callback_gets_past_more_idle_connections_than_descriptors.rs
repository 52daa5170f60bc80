//! More idle connections than the process may open files (macOS starts programs with a soft
//! limit of 256): the `openrouter-auth login` listener must still take the real callback, not
//! leave it in the kernel's queue until the login times out. (The library's side, with both
//! drivers: io/tests/idle_and_stalled_connections_do_not_block_the_callback.rs.)
#![cfg(unix)]

use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use openrouter_auth_sim::emulator::Mode;
use openrouter_auth_tests::{cli_binary, command, emulator, Browser, Cli, STEP_TIMEOUT};

/// `openrouter-auth args…` in the test environment, under `ulimit -n max_open_files`.
fn start_with_descriptor_limit(home: &std::path::Path, max_open_files: u32, args: &[&str]) -> Cli {
    let template = command(home);
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("ulimit -n {max_open_files} && exec \"$0\" \"$@\""))
        .arg(cli_binary())
        .args(args)
        .stdin(std::process::Stdio::null());
    for (k, v) in template.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    Cli::capture(cmd)
}

#[test]
fn more_idle_connections_than_the_descriptor_limit() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let store = home.path().join("credentials.json");
    let base = emulator.base_url().to_string();
    let store_arg = format!("file:{}", store.display());
    let mut cli = start_with_descriptor_limit(
        home.path(),
        64,
        &[
            "login",
            "--no-browser",
            "--base-url",
            &base,
            "--store",
            &store_arg,
        ],
    );
    let auth = cli.authorization_url_human();
    let authorize = Browser::new().get(&auth);
    assert_eq!(authorize.status, 302, "{authorize:?}");
    let callback = authorize.location.expect("a redirect to the callback");
    let port = callback.port().expect("the callback names its port");
    let addr = SocketAddr::from(([127, 0, 0, 1], port));

    let started = Instant::now();
    let idle: Vec<TcpStream> = (0..200)
        .map(|_| TcpStream::connect_timeout(&addr, STEP_TIMEOUT).expect("connect"))
        .collect();
    // The callback on 127.0.0.1 too, where the idle connections are (whatever `localhost`
    // resolves to first), with the Host header the browser would send.
    let browser = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(STEP_TIMEOUT)
        .resolve(callback.host_str().expect("a host"), addr)
        .build()
        .unwrap();
    let redirect = browser.get(callback.clone()).send().expect("the callback");
    assert_eq!(redirect.status().as_u16(), 303, "{redirect:?}");
    let location = redirect
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .expect("a Location")
        .to_owned();
    let page = browser
        .get(callback.join(&location).unwrap())
        .send()
        .expect("the final page")
        .text()
        .unwrap();
    assert!(page.contains("Signed in to OpenRouter"), "{page}");
    let f = cli.finish();
    assert!(f.status.success(), "{}", f.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "the callback took {:?} behind 200 idle connections at a 64-descriptor limit",
        started.elapsed()
    );
    drop(idle);
}
