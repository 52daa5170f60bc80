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
        .get_matches();
    let args = cli::args::Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    cli::init_tracing();
    ExitCode::from(cli::run(args.command))
}
