//! `token`: the stored key alone on stdout.

use super::args::TokenArgs;
use super::stores::{find_keys, known_stores, readable_warning, refuse_stdout, store_arg};
use super::ui::Ui;
use crate::exit;
use openrouter_auth::StoreEnv;
use std::io::Write;

/// `token`: the key alone on stdout; every message, warning and error on stderr, one line.
pub fn run(args: TokenArgs) -> u8 {
    let env = StoreEnv::from_process();
    // Human lines only: stdout carries the key and nothing else.
    let ui = Ui::new(false);
    let key = match &args.store {
        Some(spec) => {
            if let Some(code) = refuse_stdout(&ui, spec, "print") {
                return code;
            }
            let loaded = openrouter_auth::open_store(spec, &env).and_then(|store| {
                let readable = store
                    .location()
                    .and_then(openrouter_auth::readable_by_others);
                Ok((store.describe(), store.load()?, readable))
            });
            match loaded {
                Ok((_, Some(key), readable)) => {
                    if let Some(r) = readable {
                        say(&readable_warning(&r));
                    }
                    key
                }
                Ok((description, None, _)) => {
                    say(&format!(
                        "No OpenRouter key in {description}. Run `openrouter-auth login{}`.",
                        store_arg(spec)
                    ));
                    return exit::NO_KEY;
                }
                Err(e) => {
                    say(&format!("error: {e}"));
                    return exit::ERROR;
                }
            }
        }
        None => {
            // A store that cannot be read is named on stderr ("warning: skipped …").
            let search = find_keys(&known_stores(), &env, &ui);
            let (found, looked_in, unreadable) =
                (search.found, search.looked_in, search.unreadable);
            match found.into_iter().next() {
                Some(f) => {
                    if let Some(r) = &f.readable {
                        say(&readable_warning(r));
                    }
                    f.key
                }
                None if !unreadable.is_empty() => {
                    say(&format!(
                        "error: no OpenRouter key found, but {} could not be read",
                        unreadable
                            .iter()
                            .map(|(d, _)| d.as_str())
                            .collect::<Vec<_>>()
                            .join("; ")
                    ));
                    return exit::ERROR;
                }
                None => {
                    say(&format!(
                        "No OpenRouter key found (looked in: {}). Run `openrouter-auth login`.",
                        looked_in.join("; ")
                    ));
                    return exit::NO_KEY;
                }
            }
        }
    };
    let mut out = std::io::stdout().lock();
    let line = zeroize::Zeroizing::new(format!("{}\n", key.expose_secret()));
    match out.write_all(line.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => exit::OK,
        Err(e) => {
            say(&format!(
                "error: could not write the key to standard output: {e}"
            ));
            exit::ERROR
        }
    }
}

/// One message on stderr, escaped and on one line whatever the width: `token`'s callers are
/// scripts that read one line.
fn say(s: &str) {
    eprintln!("{}", openrouter_auth::terminal::escape_text(s));
}
