//! Two `openrouter-auth login` processes that began on an empty store: the one that finishes
//! second finds the other's key and, without `--force`, does not replace it silently: exit 6,
//! its own key on stdout, what it found on stderr (issue 12, rule 3). With `--force` it
//! replaces it. (The library's side: io/tests/a_key_stored_meanwhile_is_not_replaced.rs.)

use openrouter_auth_sim::emulator::Mode;
use openrouter_auth_tests::{emulator, exit, stored_key, Browser, Cli};

#[test]
fn the_command_exits_6_and_prints_its_key_when_another_login_stored_first() {
    for force in [false, true] {
        let emulator = emulator(Mode::Redirect);
        let home = tempfile::tempdir().unwrap();
        let store_path = home.path().join("credentials.json");
        let store = format!("file:{}", store_path.display());
        let args: &[&str] = if force { &["--force"] } else { &[] };
        let mut first = Cli::login(&emulator, home.path(), &store, args);
        let mut second = Cli::login(&emulator, home.path(), &store, &[]);
        let (first_auth, second_auth) = (
            first.authorization_url_human(),
            second.authorization_url_human(),
        );
        let browser = Browser::new();
        browser.follow(&second_auth);
        let second = second.finish();
        assert_eq!(second.code, Some(exit::OK), "{}", second.stderr);
        let other_key = emulator.issued_keys()[0].key.clone();
        assert_eq!(stored_key(&store_path), other_key);
        browser.follow(&first_auth);
        let first = first.finish();
        let issued = emulator.issued_keys();
        assert_eq!(issued.len(), 2, "{issued:?}");
        let own_key = issued[1].key.clone();
        if force {
            assert_eq!(first.code, Some(exit::OK), "{}", first.stderr);
            assert_eq!(stored_key(&store_path), own_key);
        } else {
            assert_eq!(first.code, Some(exit::KEY_NOT_STORED), "{}", first.stderr);
            assert_eq!(
                first.stdout.trim(),
                own_key,
                "the key is handed to the user"
            );
            assert!(
                first.stderr.contains("now holds another OpenRouter key"),
                "{}",
                first.stderr
            );
            assert_eq!(stored_key(&store_path), other_key);
        }
    }
}
