//! Why a sign-in failed, sorted by who must act (the user, OpenRouter, the network or this program).
//!
//! [`FlowError`]'s outer variant is the [`Party`] that has to do something about it: the
//! person signing in ([`UserError`]), the network ([`NetworkError`]), OpenRouter's service
//! ([`OpenRouterError`]) or this program and its caller ([`ProgramError`]). A shell picks its
//! exit code and its hint from the outer variant (and, where it wants finer detail, from
//! [`FlowError::kind`]); it never has to know every inner variant. Every enum here is
//! `#[non_exhaustive]`: new failures may be added without a major release.
//!
//! Messages ([`std::fmt::Display`]) are whole sentences for a person, never contain the
//! authorization code, the `code_verifier` or an API key, and never name a command-line flag
//! (a CLI adds its own hints from the type). [`FlowError::kind`] is the stable
//! machine-readable name.

use crate::callback::CallbackError;
use crate::exchange::sanitise;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// Who must act on a failure: the outer variant of [`FlowError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[non_exhaustive]
pub enum Party {
    /// The person signing in (denied, too slow, cancelled, a code that no longer works).
    User,
    /// The network between here and OpenRouter.
    Network,
    /// OpenRouter's service.
    OpenRouter,
    /// This program or its caller (a bug, a bad configuration).
    Program,
}

/// Why a flow failed. The variant says who must act ([`FlowError::party`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum FlowError {
    /// The person signing in must act: approve, be quicker, or start again.
    #[error(transparent)]
    User(UserError),
    /// The network failed between here and OpenRouter.
    #[error(transparent)]
    Network(NetworkError),
    /// OpenRouter's service failed or refused for its own reasons.
    #[error(transparent)]
    OpenRouter(OpenRouterError),
    /// A bug in this program or its configuration.
    #[error(transparent)]
    Program(ProgramError),
}

/// Failures the person signing in must act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum UserError {
    /// The browser came back with `error=access_denied` (RFC 6749 section 4.1.2.1): the user
    /// declined. Built by [`FlowError::denied`].
    #[error("{}", denied_message(.0))]
    Denied(CallbackError),
    /// No callback (or pasted code) arrived in time.
    #[error("timed out after {} s waiting for the browser or a pasted code; start the sign-in again", .waited.as_secs())]
    CallbackTimedOut {
        /// How long the flow waited.
        waited: Duration,
    },
    /// Cancelled by the user or the embedding program. When the exchange request was out
    /// (`may_have_been_sent`), OpenRouter may have created a key that never reached us: the
    /// message then says so and where to revoke it.
    #[error("sign-in cancelled{}", maybe_sent_suffix(*.may_have_been_sent))]
    Cancelled {
        /// Whether an exchange request was out when the cancel came (then a key may exist).
        may_have_been_sent: bool,
    },
    /// Headless: the source of pasted text closed (e.g. standard input reached its end)
    /// before a usable code arrived, so nothing is left to wait for.
    #[error("no authorization code was pasted and no more input can come (the pasted input was closed); start the sign-in again where the code OpenRouter shows can be pasted")]
    PastesClosed,
    /// 403 `Invalid code or code_verifier` (OpenRouter's OAuth PKCE guide, step 2): wrong verifier, or the
    /// code was already used.
    #[error("OpenRouter rejected the authorization code (403: invalid code or code_verifier); it may have been used already. Start the sign-in again")]
    InvalidCode,
    /// 403 `Authorization code expired`: more than 10 minutes since the code was issued.
    #[error(
        "the authorization code expired (codes are valid for 10 minutes). Start the sign-in again"
    )]
    CodeExpired,
}

/// Failures of the network between here and OpenRouter.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum NetworkError {
    /// The exchange did not finish within the exchange timeout.
    #[error(
        "OpenRouter did not answer within {} s{}; start the sign-in again",
        .waited.as_secs(),
        maybe_sent_suffix(*.may_have_been_sent)
    )]
    ExchangeTimedOut {
        /// The exchange timeout.
        waited: Duration,
        /// Whether an exchange request was out when time ran out (then OpenRouter may have
        /// created a key that never reached us); false when the flow was only waiting to
        /// retry a request that certainly was not sent.
        may_have_been_sent: bool,
    },
    /// The exchange could not reach OpenRouter (or its answer was lost). Kind `network`.
    #[error("could not reach OpenRouter: {reason}{}", maybe_sent_suffix(*.may_have_been_sent))]
    Unreachable {
        /// What the transport said (no secrets).
        reason: String,
        /// Whether the request may have reached OpenRouter (then a key may exist).
        may_have_been_sent: bool,
    },
}

/// Failures on OpenRouter's side: its answers to `/auth` and to the code exchange
/// (OpenRouter's OAuth PKCE guide, step 2, and API reference) that are neither the user's doing nor a bug here.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum OpenRouterError {
    /// The browser came back with an `error=` other than `access_denied` (RFC 6749 section
    /// 4.1.2.1, e.g. `server_error`). Kind `denied`, like the user's own denial. Built by
    /// [`FlowError::denied`].
    #[error("{}", denied_message(.0))]
    Refused(CallbackError),
    /// 409: OpenRouter failed to create or update the app.
    #[error("OpenRouter could not create the key (409{}); try again later, or create a key at https://openrouter.ai/keys", message_suffix(.message))]
    Conflict {
        /// OpenRouter's message, sanitised and cut to [`crate::exchange::EXCERPT_CHARS`].
        message: Option<String>,
    },
    /// 429: rate limited.
    #[error("OpenRouter is rate limiting requests (429){}; start the sign-in again later", retry_suffix(.retry_after))]
    RateLimited {
        /// From `Retry-After` (seconds form), if present.
        retry_after: Option<Duration>,
    },
    /// 5xx: OpenRouter failed.
    #[error("OpenRouter had a server error ({status}); start the sign-in again in a moment")]
    Server {
        /// The status code, 500 to 599.
        status: u16,
    },
    /// 200, but no usable key in the body (missing, not a string, not `sk-or-`, not JSON,
    /// truncated). A key may have been created: the user should check their key list.
    #[error("OpenRouter answered without a usable key ({reason}); a key may have been created: check https://openrouter.ai/keys")]
    MissingKey {
        /// What was wrong, without the body.
        reason: String,
    },
    /// Any other answer to the exchange. Kind `unexpected_response`.
    #[error("OpenRouter answered {status} unexpectedly{}", message_suffix(.excerpt))]
    Unexpected {
        /// The status code.
        status: u16,
        /// A sanitised excerpt of the body (printable ASCII, at most
        /// [`crate::exchange::EXCERPT_CHARS`]).
        excerpt: Option<String>,
    },
}

/// Failures that are a bug in this program or its configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error, Serialize, Deserialize)]
#[non_exhaustive]
pub enum ProgramError {
    /// 400 `Invalid code_challenge_method`: the method differed between `/auth` and the
    /// exchange.
    #[error("OpenRouter rejected the code_challenge_method (400): this is a bug in the program, please report it")]
    InvalidCodeChallengeMethod,
    /// 405 `Method Not Allowed`: not a POST over HTTPS (a wrong base URL or a proxy).
    #[error("OpenRouter answered 405 Method Not Allowed: check the base URL (it must be https)")]
    MethodNotAllowed,
}

impl FlowError {
    /// Every value [`FlowError::kind`] returns, grouped by party. These names are a stable,
    /// machine-readable API (a CLI prints them in its JSON output): they are never renamed.
    pub const KINDS: &'static [&'static str] = &[
        "denied",
        "timed_out",
        "cancelled",
        "no_code_source",
        "invalid_code",
        "code_expired",
        "exchange_timed_out",
        "network",
        "conflict",
        "rate_limited",
        "server_error",
        "missing_key",
        "unexpected_response",
        "invalid_code_challenge_method",
        "method_not_allowed",
    ];

    /// An `error=` callback, filed under who must act: `access_denied` is the user's
    /// ([`UserError::Denied`]), any other code OpenRouter's ([`OpenRouterError::Refused`]).
    pub fn denied(e: CallbackError) -> Self {
        if e.error == "access_denied" {
            FlowError::User(UserError::Denied(e))
        } else {
            FlowError::OpenRouter(OpenRouterError::Refused(e))
        }
    }

    /// Who must act: the outer variant.
    pub fn party(&self) -> Party {
        match self {
            FlowError::User(_) => Party::User,
            FlowError::Network(_) => Party::Network,
            FlowError::OpenRouter(_) => Party::OpenRouter,
            FlowError::Program(_) => Party::Program,
        }
    }

    /// A stable machine-readable name, e.g. `denied`, `timed_out`, `invalid_code`. One per
    /// inner variant, except `denied`, which both parties' `error=` callbacks share.
    pub fn kind(&self) -> &'static str {
        match self {
            FlowError::User(e) => match e {
                UserError::Denied(_) => "denied",
                UserError::CallbackTimedOut { .. } => "timed_out",
                UserError::Cancelled { .. } => "cancelled",
                UserError::PastesClosed => "no_code_source",
                UserError::InvalidCode => "invalid_code",
                UserError::CodeExpired => "code_expired",
            },
            FlowError::Network(e) => match e {
                NetworkError::ExchangeTimedOut { .. } => "exchange_timed_out",
                NetworkError::Unreachable { .. } => "network",
            },
            FlowError::OpenRouter(e) => match e {
                OpenRouterError::Refused(_) => "denied",
                OpenRouterError::Conflict { .. } => "conflict",
                OpenRouterError::RateLimited { .. } => "rate_limited",
                OpenRouterError::Server { .. } => "server_error",
                OpenRouterError::MissingKey { .. } => "missing_key",
                OpenRouterError::Unexpected { .. } => "unexpected_response",
            },
            FlowError::Program(e) => match e {
                ProgramError::InvalidCodeChallengeMethod => "invalid_code_challenge_method",
                ProgramError::MethodNotAllowed => "method_not_allowed",
            },
        }
    }

    /// Whether OpenRouter may have created a key that never reached us: an exchange request
    /// was out when the flow was cancelled, timed out or lost the answer, or OpenRouter
    /// answered without a usable key. The message then points to the key list
    /// (`https://openrouter.ai/keys`) where such a key can be revoked.
    pub fn may_have_been_sent(&self) -> bool {
        match self {
            FlowError::User(UserError::Cancelled { may_have_been_sent })
            | FlowError::Network(
                NetworkError::ExchangeTimedOut {
                    may_have_been_sent, ..
                }
                | NetworkError::Unreachable {
                    may_have_been_sent, ..
                },
            ) => *may_have_been_sent,
            FlowError::OpenRouter(OpenRouterError::MissingKey { .. }) => true,
            _ => false,
        }
    }

    /// The `error=` callback, if the flow ended with one (either party's).
    pub fn callback_error(&self) -> Option<&CallbackError> {
        match self {
            FlowError::User(UserError::Denied(e))
            | FlowError::OpenRouter(OpenRouterError::Refused(e)) => Some(e),
            _ => None,
        }
    }
}

impl From<UserError> for FlowError {
    fn from(e: UserError) -> Self {
        FlowError::User(e)
    }
}

impl From<NetworkError> for FlowError {
    fn from(e: NetworkError) -> Self {
        FlowError::Network(e)
    }
}

impl From<OpenRouterError> for FlowError {
    fn from(e: OpenRouterError) -> Self {
        FlowError::OpenRouter(e)
    }
}

impl From<ProgramError> for FlowError {
    fn from(e: ProgramError) -> Self {
        FlowError::Program(e)
    }
}

fn maybe_sent_suffix(may_have_been_sent: bool) -> &'static str {
    if may_have_been_sent {
        "; the request may have reached OpenRouter, so a key may have been created: check https://openrouter.ai/keys"
    } else {
        ""
    }
}

fn denied_message(e: &CallbackError) -> String {
    let mut m = if e.error == "access_denied" {
        "access was denied in the browser; no key was created".to_string()
    } else {
        format!("OpenRouter reported `{}`", sanitise(e.error.as_bytes()))
    };
    if let Some(d) = &e.error_description {
        m.push_str(": ");
        m.push_str(&sanitise(d.as_bytes()));
    }
    m
}

fn message_suffix(m: &Option<String>) -> String {
    match m {
        Some(m) if !m.is_empty() => format!(": {m}"),
        _ => String::new(),
    }
}

fn retry_suffix(d: &Option<Duration>) -> String {
    match d {
        Some(d) => format!(" for {} s", d.as_secs()),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cancel_during_the_exchange_says_a_key_may_exist_and_where_to_revoke_it() {
        let e = FlowError::User(UserError::Cancelled {
            may_have_been_sent: true,
        });
        assert_eq!(e.kind(), "cancelled");
        assert_eq!(e.party(), Party::User);
        assert!(e.may_have_been_sent());
        let m = e.to_string();
        assert!(m.starts_with("sign-in cancelled"), "{m}");
        assert!(m.contains("a key may have been created"), "{m}");
        assert!(m.contains("https://openrouter.ai/keys"), "{m}");

        let e = FlowError::User(UserError::Cancelled {
            may_have_been_sent: false,
        });
        assert!(!e.may_have_been_sent());
        assert_eq!(e.to_string(), "sign-in cancelled");
    }

    /// One of each variant. The matches have no wildcard (inside the crate
    /// `#[non_exhaustive]` does not demand one), so a new variant does not compile until it
    /// is listed here, and then [`FlowError::KINDS`] must hold its kind.
    fn one_of_each() -> Vec<FlowError> {
        let cb = CallbackError {
            error: "access_denied".into(),
            error_description: None,
            error_uri: None,
        };
        let all: Vec<FlowError> = vec![
            UserError::Denied(cb.clone()).into(),
            UserError::CallbackTimedOut {
                waited: Duration::ZERO,
            }
            .into(),
            UserError::Cancelled {
                may_have_been_sent: true,
            }
            .into(),
            UserError::PastesClosed.into(),
            UserError::InvalidCode.into(),
            UserError::CodeExpired.into(),
            NetworkError::ExchangeTimedOut {
                waited: Duration::ZERO,
                may_have_been_sent: false,
            }
            .into(),
            NetworkError::Unreachable {
                reason: String::new(),
                may_have_been_sent: false,
            }
            .into(),
            OpenRouterError::Refused(cb).into(),
            OpenRouterError::Conflict { message: None }.into(),
            OpenRouterError::RateLimited { retry_after: None }.into(),
            OpenRouterError::Server { status: 500 }.into(),
            OpenRouterError::MissingKey {
                reason: String::new(),
            }
            .into(),
            OpenRouterError::Unexpected {
                status: 418,
                excerpt: None,
            }
            .into(),
            ProgramError::InvalidCodeChallengeMethod.into(),
            ProgramError::MethodNotAllowed.into(),
        ];
        for e in &all {
            match e {
                FlowError::User(
                    UserError::Denied(_)
                    | UserError::CallbackTimedOut { .. }
                    | UserError::Cancelled { .. }
                    | UserError::PastesClosed
                    | UserError::InvalidCode
                    | UserError::CodeExpired,
                )
                | FlowError::Network(
                    NetworkError::ExchangeTimedOut { .. } | NetworkError::Unreachable { .. },
                )
                | FlowError::OpenRouter(
                    OpenRouterError::Refused(_)
                    | OpenRouterError::Conflict { .. }
                    | OpenRouterError::RateLimited { .. }
                    | OpenRouterError::Server { .. }
                    | OpenRouterError::MissingKey { .. }
                    | OpenRouterError::Unexpected { .. },
                )
                | FlowError::Program(
                    ProgramError::InvalidCodeChallengeMethod | ProgramError::MethodNotAllowed,
                ) => {}
            }
        }
        all
    }

    #[test]
    fn kinds_lists_every_kind_once() {
        let mut listed: Vec<&str> = FlowError::KINDS.to_vec();
        listed.sort_unstable();
        listed.dedup();
        assert_eq!(listed.len(), FlowError::KINDS.len(), "a kind listed twice");
        let mut seen: Vec<&str> = one_of_each().iter().map(FlowError::kind).collect();
        seen.sort_unstable();
        seen.dedup();
        assert_eq!(seen, listed);
    }

    #[test]
    fn the_party_is_the_outer_variant_and_no_message_names_a_flag() {
        for e in one_of_each() {
            let party = match &e {
                FlowError::User(_) => Party::User,
                FlowError::Network(_) => Party::Network,
                FlowError::OpenRouter(_) => Party::OpenRouter,
                FlowError::Program(_) => Party::Program,
            };
            assert_eq!(e.party(), party, "{e:?}");
            assert!(!e.to_string().contains("--"), "{e}");
        }
    }

    #[test]
    fn an_error_callback_is_filed_under_who_must_act() {
        let cb = |error: &str| CallbackError {
            error: error.into(),
            error_description: None,
            error_uri: None,
        };
        let user = FlowError::denied(cb("access_denied"));
        assert_eq!((user.party(), user.kind()), (Party::User, "denied"));
        let theirs = FlowError::denied(cb("server_error"));
        assert_eq!(
            (theirs.party(), theirs.kind()),
            (Party::OpenRouter, "denied")
        );
        assert_eq!(theirs.callback_error(), Some(&cb("server_error")));
    }
}
