//! `openrouter-auth`: sign in with OpenRouter from a terminal and store the API key where
//! your tools look for it.
#![forbid(unsafe_code)]

use clap::{CommandFactory, FromArgMatches};
use std::process::ExitCode;

/// Argument definitions, one module per subcommand, and the renderer.
mod cli;
/// Exit codes (documented in the README and in `--help`) and the table that picks them.
mod exit;

fn main() -> ExitCode {
    // Help wrapped to the terminal's width, or 80 columns when stdout is not a terminal.
    let matches = cli::args::Cli::command()
        .term_width(cli::ui::stdout_width())
        .try_get_matches()
        .and_then(|m| cli::args::Cli::from_arg_matches(&m));
    let args = match matches {
        Ok(args) => args,
        // A usage error, wrapped to the terminal like every other message (clap wraps only
        // its help); help and version as clap prints them.
        Err(e) if e.use_stderr() => {
            eprintln!(
                "{}",
                cli::ui::wrap(e.render().to_string().trim_end(), cli::ui::stderr_width())
            );
            return ExitCode::from(exit::USAGE);
        }
        Err(e) => e.exit(),
    };
    cli::init_tracing();
    ExitCode::from(cli::run(args.command))
}
