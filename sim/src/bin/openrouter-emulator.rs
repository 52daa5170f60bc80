//! `openrouter-emulator`: serves the OpenRouter OAuth PKCE emulator until killed.
//!
//! Prints exactly one line, `openrouter emulator listening on http://127.0.0.1:PORT`, once the
//! server accepts connections.

use std::io::Write as _;
use std::process::ExitCode;

use clap::{Parser, ValueEnum};
use openrouter_auth_sim::emulator::{Emulator, EmulatorOptions, Mode};

/// Emulates OpenRouter's OAuth PKCE endpoints (`/auth`, `/api/v1/auth/keys`, `/api/v1/key`) on
/// 127.0.0.1.
#[derive(Debug, Parser)]
#[command(name = "openrouter-emulator", version)]
struct Args {
    /// Port to listen on (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// How `/auth` answers: redirect straight to the callback, or show a consent page.
    #[arg(long, value_enum, default_value_t = CliMode::Redirect)]
    mode: CliMode,
}

/// The `--mode` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CliMode {
    /// 302 to the callback with a new code.
    Redirect,
    /// A consent page with Approve and Deny links.
    Consent,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let mode = match args.mode {
        CliMode::Redirect => Mode::Redirect,
        CliMode::Consent => Mode::Consent,
    };
    let emulator = match Emulator::start_with_blocking(EmulatorOptions {
        port: args.port,
        mode,
    }) {
        Ok(emulator) => emulator,
        Err(err) => {
            eprintln!(
                "openrouter-emulator: cannot listen on 127.0.0.1:{}: {err}",
                args.port
            );
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    let printed = writeln!(
        stdout,
        "openrouter emulator listening on http://127.0.0.1:{}",
        emulator.address().port()
    )
    .and_then(|()| stdout.flush());
    drop(stdout);
    if let Err(err) = printed {
        eprintln!("openrouter-emulator: cannot write to stdout: {err}");
        return ExitCode::FAILURE;
    }
    // The server runs on its own thread; keep `emulator` alive until the process is killed.
    loop {
        std::thread::park();
    }
}
