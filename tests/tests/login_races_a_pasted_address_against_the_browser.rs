//! Issue 6, points 2 and 4: while the loopback listener waits for the browser, standard input
//! accepts the address the browser ended on (`http://localhost:PORT/callback/<nonce>?code=…`,
//! nonce checked) or a bare code; the first valid one wins and the other path ends cleanly.
//! A pasted address with another nonce is refused and the login keeps waiting. Standard input
//! that is closed, or a pipe that never says anything, never blocks the browser path.
#![cfg(unix)]

mod support;

use std::time::Duration;

use openrouter_auth_sim::emulator::Mode;
use openrouter_auth_tests::{
    emulator, exit, port_is_free, query_param, stored_key, wait_until, Browser, Stream,
};
use support::*;

fn start(
    emulator_url: &url::Url,
    home: &std::path::Path,
    stdin: Stdin,
) -> (Run, std::path::PathBuf) {
    let store = home.join("c.json");
    let spec = format!("file:{}", store.display());
    let run = Run::login(
        emulator_url,
        home,
        &spec,
        &["--no-browser", "--json"],
        &[],
        stdin,
    );
    (run, store)
}

fn urls(run: &mut Run) -> (url::Url, url::Url) {
    let ev = run.authorization_event();
    assert_eq!(ev["headless"], false, "{ev}");
    let auth = url::Url::parse(ev["url"].as_str().unwrap()).unwrap();
    let callback = url::Url::parse(ev["callback_url"].as_str().unwrap()).unwrap();
    (auth, callback)
}

#[test]
fn pasting_the_redirect_address_signs_in_while_the_listener_is_open() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let (mut run, store) = start(&emulator.base_url(), home.path(), Stdin::Pipe);
    let (auth, callback) = urls(&mut run);
    let port = callback.port().unwrap();
    assert!(!port_is_free(port), "the listener is open");
    // The browser ends on the callback address but never reaches the listener (another
    // machine, a blocked port): the user copies the address bar into the terminal.
    let landed = redirect_target(&auth);
    assert!(landed.as_str().starts_with(callback.as_str()), "{landed}");
    run.type_line(landed.as_str());
    let f = run.finish();
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    assert_eq!(emulator.exchange_attempts(), 1);
    assert_eq!(stored_key(&store), emulator.issued_keys()[0].key);
    // The other path ended with the login: the listener is gone.
    wait_until("the port is free again", || port_is_free(port));
}

#[test]
fn a_pasted_address_with_another_nonce_is_refused_and_the_login_keeps_waiting() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let (mut run, store) = start(&emulator.base_url(), home.path(), Stdin::Pipe);
    let (auth, callback) = urls(&mut run);
    let landed = redirect_target(&auth);
    // Same port and code, another flow's nonce.
    let mut forged = landed.clone();
    forged.set_path("/callback/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    run.type_line(forged.as_str());
    let refused = run.wait_line(Stream::Stdout, |l| l.contains("\"paste_rejected\""));
    assert!(refused.contains("another sign-in"), "{refused}");
    assert_eq!(emulator.exchange_attempts(), 0, "nothing was exchanged");
    assert!(run.running(), "still waiting");
    assert!(!port_is_free(callback.port().unwrap()));

    // The browser path is still open and wins.
    let pages = Browser::new().follow(&landed);
    assert!(
        pages.last().unwrap().body.contains("Signed in"),
        "{:?}",
        pages.last()
    );
    let f = run.finish();
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    assert_eq!(emulator.exchange_attempts(), 1);
    assert_eq!(stored_key(&store), emulator.issued_keys()[0].key);
}

#[test]
fn a_bare_code_can_be_pasted_in_loopback_mode_too() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let (mut run, store) = start(&emulator.base_url(), home.path(), Stdin::Pipe);
    let (auth, _) = urls(&mut run);
    let code = query_param(&redirect_target(&auth), "code").unwrap();
    run.type_line(&code);
    let f = run.finish();
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    assert_eq!(stored_key(&store), emulator.issued_keys()[0].key);
}

#[test]
fn the_browser_wins_while_a_pipe_on_stdin_stays_silent() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    // stdin is a pipe whose writer stays open and never writes.
    let (mut run, store) = start(&emulator.base_url(), home.path(), Stdin::Pipe);
    let (auth, _) = urls(&mut run);
    Browser::new().follow(&auth);
    // Keep our end of the pipe open until the process is gone.
    let mut waited = Duration::ZERO;
    while run.running() {
        assert!(waited < Duration::from_secs(30), "login did not end");
        std::thread::sleep(Duration::from_millis(20));
        waited += Duration::from_millis(20);
    }
    let f = run.finish();
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    assert_eq!(stored_key(&store), emulator.issued_keys()[0].key);
}

#[test]
fn closed_stdin_does_not_end_or_break_a_loopback_login() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let (mut run, store) = start(&emulator.base_url(), home.path(), Stdin::Null);
    let (auth, _) = urls(&mut run);
    // Give the reader time to see the end of input: the login must still be waiting.
    std::thread::sleep(Duration::from_millis(300));
    assert!(run.running());
    Browser::new().follow(&auth);
    let f = run.finish();
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    assert_eq!(stored_key(&store), emulator.issued_keys()[0].key);
}

#[test]
fn garbage_then_end_of_input_leaves_the_browser_path_working() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let (mut run, _) = start(&emulator.base_url(), home.path(), Stdin::Pipe);
    let (auth, _) = urls(&mut run);
    run.type_line("https://example.com/not-ours?code=x");
    run.wait_line(Stream::Stdout, |l| l.contains("\"paste_rejected\""));
    run.close_stdin();
    std::thread::sleep(Duration::from_millis(200));
    assert!(run.running());
    Browser::new().follow(&auth);
    let f = run.finish();
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
}

#[test]
fn the_paste_prompt_is_only_shown_on_a_terminal() {
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let mut run = Run::login(
        &emulator.base_url(),
        home.path(),
        "file",
        &["--no-browser"],
        &[],
        Stdin::Pipe,
    );
    let auth = run.authorization_url();
    Browser::new().follow(&auth);
    let f = run.finish();
    assert_eq!(f.code, Some(exit::OK), "{f:#?}");
    assert!(!f.stderr.contains("Or paste"), "{}", f.stderr);
}
