//! Exit codes, and the one table that turns a library error into the CLI's exit code and
//! hint.
//!
//! A sign-in failure's code follows from who must act ([`FlowError`]'s outer variant, see
//! [`Party`]): the person signing in gets one code per thing they can do about it; the network,
//! OpenRouter and the program share "the code exchange failed". The library's messages name
//! no command-line flag (an embedding app has none); the flag that gets around an error is
//! the CLI's to add, here, as a suffix to the library's message.

use openrouter_auth::core::{FlowError, OpenRouterError, Party, UserError};
use openrouter_auth::{BindError, LoginError, StoreError};

/// Success: signed in (`login`), key valid (`status`), done (`logout`).
pub const OK: u8 = 0;
/// Any other error: a busy port, an unreadable store, a key already stored and no `--force`,
/// standard input closed before a headless code.
pub const ERROR: u8 = 1;
/// A usage error (also an insecure `--base-url`).
pub const USAGE: u8 = 2;
/// Access denied in the browser (or OpenRouter refused there).
pub const DENIED: u8 = 3;
/// Timed out waiting for the browser or a pasted code.
pub const TIMED_OUT: u8 = 4;
/// The code exchange failed (OpenRouter, the network, or a code it no longer takes).
pub const EXCHANGE_FAILED: u8 = 5;
/// Signed in, but the key could not be stored (it is printed once).
pub const KEY_NOT_STORED: u8 = 6;
/// The stored key is not valid (`status`).
pub const KEY_NOT_VALID: u8 = 7;
/// No key stored (`status`).
pub const NO_KEY: u8 = 8;
/// Cancelled (Ctrl-C), as a shell reports SIGINT.
pub const CANCELLED: u8 = 130;

/// How the CLI reports a failed `login`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Failure {
    /// The exit code.
    pub code: u8,
    /// What only the CLI can add to the library's message, appended to it as is (it starts
    /// with its own separator, e.g. `; use --store file`).
    pub hint: Option<&'static str>,
}

/// The hint for a taken fixed port.
const PORT_HINT: &str = "; pick another port with --port, or leave --port out to use any free port";
/// The hint for a key that another sign-in stored meanwhile.
const KEY_APPEARED_HINT: &str = "; use this key, or sign in again with --force to replace that one";
/// The hint for a headless sign-in whose standard input ended.
const STDIN_CLOSED_HINT: &str =
    "; standard input is closed, so run the sign-in in a terminal to paste the code";

/// The table: a `login` error's exit code and hint.
pub fn login_failure(e: &LoginError) -> Failure {
    let (code, hint) = match e {
        LoginError::Flow(f) => (flow_code(f), flow_hint(f)),
        LoginError::KeyNotStored { stores, .. } => (
            KEY_NOT_STORED,
            stores
                .iter()
                .any(|a| matches!(a.result, Err(StoreError::KeyAppeared { .. })))
                .then_some(KEY_APPEARED_HINT),
        ),
        LoginError::InsecureBaseUrl { .. } | LoginError::InvalidLimit(_) => (USAGE, None),
        LoginError::Bind(BindError::PortInUse { .. }) => (ERROR, Some(PORT_HINT)),
        LoginError::Bind(_) | LoginError::Io(_) | LoginError::HttpClient(_) => (ERROR, None),
        LoginError::Store(s) => (ERROR, store_hint(s)),
        // `--with-key`: OpenRouter refused the key given (exit 7, as `status` for a key
        // that is not valid); it could not be asked: 1.
        LoginError::KeyCheckFailed(c) if c.key_is_invalid() => (KEY_NOT_VALID, None),
        _ => (ERROR, None),
    };
    Failure { code, hint }
}

/// A sign-in failure's exit code, from who must act.
pub fn flow_code(e: &FlowError) -> u8 {
    match e {
        // The person signing in: one code for each thing they did or did not do.
        FlowError::User(u) => match u {
            UserError::Denied(_) => DENIED,
            UserError::CallbackTimedOut { .. } => TIMED_OUT,
            UserError::Cancelled { .. } => CANCELLED,
            UserError::PastesClosed => ERROR,
            // A code OpenRouter no longer takes (used, expired): the exchange failed.
            UserError::InvalidCode | UserError::CodeExpired => EXCHANGE_FAILED,
            _ => ERROR,
        },
        // OpenRouter answered `error=` on its sign-in page: the browser showed a refusal, as
        // for a denial.
        FlowError::OpenRouter(OpenRouterError::Refused(_)) => DENIED,
        // Everyone else: the code exchange failed.
        FlowError::Network(_) | FlowError::OpenRouter(_) | FlowError::Program(_) => EXCHANGE_FAILED,
        _ => ERROR,
    }
}

fn flow_hint(e: &FlowError) -> Option<&'static str> {
    match e {
        FlowError::User(UserError::PastesClosed) => Some(STDIN_CLOSED_HINT),
        _ => None,
    }
}

/// The flag that gets around a store error, if there is one.
pub fn store_hint(e: &StoreError) -> Option<&'static str> {
    match e {
        StoreError::NoConfigDir => Some("; use --store file:PATH"),
        StoreError::Symlink { .. } => Some(
            " (--store file:PATH for this tool's credentials file, env-file:PATH for a dotenv file)",
        ),
        StoreError::KeyringUnavailable { .. } => Some("; use --store file"),
        _ => None,
    }
}

/// A store error as the CLI prints it: the library's message and the CLI's hint.
pub fn store_message(e: &StoreError) -> String {
    format!("{e}{}", store_hint(e).unwrap_or_default())
}

/// A `login` error as the CLI prints it: the library's message and the CLI's hint.
pub fn login_message(e: &LoginError) -> String {
    format!("{e}{}", login_failure(e).hint.unwrap_or_default())
}

/// [`login_message`], told apart by where standard input comes from: a headless sign-in
/// whose input ended at a terminal was ended by the person (Ctrl-D), not by a missing
/// terminal.
pub fn login_message_for(e: &LoginError, stdin_is_terminal: bool) -> String {
    match e {
        LoginError::Flow(FlowError::User(UserError::PastesClosed)) if stdin_is_terminal => {
            "the input ended (Ctrl-D) before a code was pasted, so the sign-in stopped; run `openrouter-auth login` again and paste the code OpenRouter shows, then press Enter".to_owned()
        }
        e => login_message(e),
    }
}

/// Who must act, as the CLI's JSON names it: `user`, `network`, `openrouter`, `program`.
pub fn party_name(p: Party) -> &'static str {
    match p {
        Party::User => "user",
        Party::Network => "network",
        Party::OpenRouter => "openrouter",
        Party::Program => "program",
        _ => "unknown",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use openrouter_auth::core::{CallbackError, NetworkError, ProgramError};
    use std::path::PathBuf;
    use std::time::Duration;

    fn cb(error: &str) -> CallbackError {
        CallbackError {
            error: error.into(),
            error_description: None,
            error_uri: None,
        }
    }

    /// Every kind of sign-in failure, its party, and the exit code the README documents.
    #[test]
    fn each_flow_error_exits_with_the_code_of_who_must_act() {
        let table: Vec<(FlowError, Party, u8)> = vec![
            (FlowError::denied(cb("access_denied")), Party::User, DENIED),
            (
                UserError::CallbackTimedOut {
                    waited: Duration::from_secs(600),
                }
                .into(),
                Party::User,
                TIMED_OUT,
            ),
            (
                UserError::Cancelled {
                    may_have_been_sent: false,
                }
                .into(),
                Party::User,
                CANCELLED,
            ),
            (
                UserError::Cancelled {
                    may_have_been_sent: true,
                }
                .into(),
                Party::User,
                CANCELLED,
            ),
            (UserError::PastesClosed.into(), Party::User, ERROR),
            (UserError::InvalidCode.into(), Party::User, EXCHANGE_FAILED),
            (UserError::CodeExpired.into(), Party::User, EXCHANGE_FAILED),
            (
                NetworkError::ExchangeTimedOut {
                    waited: Duration::from_secs(30),
                    may_have_been_sent: true,
                }
                .into(),
                Party::Network,
                EXCHANGE_FAILED,
            ),
            (
                NetworkError::Unreachable {
                    reason: "connection refused".into(),
                    may_have_been_sent: false,
                }
                .into(),
                Party::Network,
                EXCHANGE_FAILED,
            ),
            (
                FlowError::denied(cb("server_error")),
                Party::OpenRouter,
                DENIED,
            ),
            (
                OpenRouterError::Conflict { message: None }.into(),
                Party::OpenRouter,
                EXCHANGE_FAILED,
            ),
            (
                OpenRouterError::RateLimited { retry_after: None }.into(),
                Party::OpenRouter,
                EXCHANGE_FAILED,
            ),
            (
                OpenRouterError::Server { status: 502 }.into(),
                Party::OpenRouter,
                EXCHANGE_FAILED,
            ),
            (
                OpenRouterError::MissingKey {
                    reason: "no `key` in the answer".into(),
                }
                .into(),
                Party::OpenRouter,
                EXCHANGE_FAILED,
            ),
            (
                OpenRouterError::Unexpected {
                    status: 418,
                    excerpt: None,
                }
                .into(),
                Party::OpenRouter,
                EXCHANGE_FAILED,
            ),
            (
                ProgramError::InvalidCodeChallengeMethod.into(),
                Party::Program,
                EXCHANGE_FAILED,
            ),
            (
                ProgramError::MethodNotAllowed.into(),
                Party::Program,
                EXCHANGE_FAILED,
            ),
        ];
        for kind in FlowError::KINDS {
            assert!(
                table.iter().any(|(e, _, _)| e.kind() == *kind),
                "no row for {kind}"
            );
        }
        for (e, party, code) in table {
            assert_eq!(e.party(), party, "{e:?}");
            assert_eq!(flow_code(&e), code, "{e:?}");
            let failure = login_failure(&LoginError::Flow(e.clone()));
            assert_eq!(failure.code, code, "{e:?}");
            assert!(
                !e.to_string().contains("--"),
                "a library message names a flag: {e}"
            );
        }
    }

    #[test]
    fn the_flags_that_get_around_an_error_come_from_the_cli() {
        let port = LoginError::Bind(BindError::PortInUse {
            port: 8976,
            family: openrouter_auth::IpFamily::V4,
        });
        assert!(!port.to_string().contains("--"), "{port}");
        assert_eq!(login_failure(&port).code, ERROR);
        assert!(login_message(&port).contains("--port"));

        let keyring = StoreError::KeyringUnavailable {
            reason: "no secret service is running on this machine".into(),
        };
        assert!(!keyring.to_string().contains("--"), "{keyring}");
        assert!(store_message(&keyring).ends_with("; use --store file"));

        let link = StoreError::Symlink {
            path: PathBuf::from("/h/auth.json"),
            target: PathBuf::from("/h/real.json"),
        };
        assert!(!link.to_string().contains("--"), "{link}");
        assert!(store_message(&link).contains("--store file:PATH"));

        assert!(!StoreError::NoConfigDir.to_string().contains("--"));
        assert!(store_message(&StoreError::NoConfigDir).contains("--store file:PATH"));

        let closed = LoginError::Flow(UserError::PastesClosed.into());
        assert_eq!(login_failure(&closed).code, ERROR);
        assert!(login_message(&closed).contains("standard input is closed"));

        let stored = LoginError::Store(StoreError::KeyringUnavailable {
            reason: "no keychain".into(),
        });
        assert_eq!(login_message(&stored), "no keychain; use --store file");
    }
}
