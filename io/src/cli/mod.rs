//! The command's parts: argument definitions ([`args`]), one module per subcommand, what they
//! share ([`stores`]) and the renderer ([`ui`]).

pub mod args;
mod docs;
mod login;
mod logout;
mod status;
mod stores;
mod token;
pub mod ui;

use args::Command;

/// Log output (`RUST_LOG`, default `warn`) on stderr. Without `RUST_LOG` the filter is a
/// plain level (what `EnvFilter::new("warn")` means), so starting parses no directives.
pub fn init_tracing() {
    let fmt = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .without_time();
    let _ = match std::env::var_os(tracing_subscriber::EnvFilter::DEFAULT_ENV) {
        None => fmt
            .with_max_level(tracing_subscriber::filter::LevelFilter::WARN)
            .try_init(),
        Some(_) => fmt
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
            )
            .try_init(),
    };
}

/// Runs one subcommand; returns its exit code.
pub fn run(mut command: Command) -> u8 {
    let common = match &mut command {
        Command::Login(a) => Some(&mut a.common),
        Command::Status(a) => Some(&mut a.common),
        Command::Logout(a) => Some(&mut a.common),
        Command::Token(_) | Command::Completions(_) | Command::Man => None,
    };
    if let Some(common) = common {
        if let Err(message) = common.resolve(std::env::var_os(args::BASE_URL_ENV)) {
            let ui = ui::Ui::new(common.json);
            ui.json(serde_json::json!({
                "event": "failed", "error": {"kind": "usage", "message": message},
            }));
            ui.line(&format!("error: {message}"));
            return crate::exit::USAGE;
        }
    }
    match command {
        Command::Login(args) => login::run(args),
        Command::Status(args) => status::run(args),
        Command::Token(args) => token::run(args),
        Command::Logout(args) => logout::run(args),
        Command::Completions(args) => docs::completions(args.shell),
        Command::Man => docs::man(),
    }
}

#[cfg(test)]
mod tests {
    use super::args::Cli;
    use super::stores::shell_word;
    use super::ui::{money, qr_code, yes_no};

    #[test]
    fn qr_code_is_a_square_of_half_blocks() {
        let url: url::Url = "https://openrouter.ai/auth?code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256&key_label=openrouter-auth+on+host+2026-01-31".parse().unwrap();
        let qr = qr_code(&url).expect("a URL this long fits in a QR code");
        let lines: Vec<&str> = qr.lines().collect();
        let width = lines[0].chars().count();
        assert!(lines.iter().all(|l| l.chars().count() == width));
        // Two modules per cell vertically, plus the quiet zone: rows = ceil(width / 2).
        assert_eq!(lines.len(), width.div_ceil(2));
        // The version 8 code of this URL (49 modules) and a quiet zone of 2 on each side, not
        // the standard's 4: the code must fit a small terminal.
        assert_eq!(width, 49 + 2 * 2);
        assert!(qr
            .chars()
            .all(|c| matches!(c, '█' | '▀' | '▄' | ' ' | '\n')));
    }

    #[test]
    fn money_and_yes_no() {
        assert_eq!(money(None), "none");
        assert_eq!(money(Some(1.5)), "$1.50");
        assert_eq!(yes_no(Some(true)), "yes");
        assert_eq!(yes_no(None), "unknown");
    }

    #[test]
    fn store_hints_are_one_shell_word() {
        assert_eq!(shell_word("aider"), "aider");
        assert_eq!(shell_word("file:/home/a/x.json"), "file:/home/a/x.json");
        assert_eq!(shell_word("file:/my keys/x.json"), "'file:/my keys/x.json'");
        assert_eq!(shell_word("env-file:it's.env"), r"'env-file:it'\''s.env'");
        assert_eq!(shell_word("file:$HOME/x"), "'file:$HOME/x'");
    }

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
