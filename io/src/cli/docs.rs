//! `completions` and `man`: generated from the same clap definitions as the parser.

use super::args::Cli;
use crate::exit;
use clap::CommandFactory;
use std::io::Write;

/// The completion script for `shell` on stdout.
pub fn completions(shell: clap_complete::Shell) -> u8 {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "openrouter-auth", &mut out);
    if shell == clap_complete::Shell::Bash {
        // clap_complete's bash script names a subcommand's state `openrouter__auth__subcmd__x`
        // where it is set and `openrouter__subcmd__auth__subcmd__x` where it is matched, for
        // a binary name with a hyphen, so no flag of a subcommand completes
        // (clap-rs/clap#6421, open): spell both the same.
        let script =
            String::from_utf8_lossy(&out).replace("openrouter__subcmd__auth", "openrouter__auth");
        return write_out(script.as_bytes());
    }
    write_out(&out)
}

/// The manual page (roff, section 1) on stdout: the command and every subcommand, with the
/// long help of each flag and the exit codes.
pub fn man() -> u8 {
    let cmd = Cli::command();
    let mut out = Vec::new();
    let man = clap_mangen::Man::new(cmd.clone());
    let rendered = man.render(&mut out).and_then(|()| {
        for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
            let name = format!("openrouter-auth {}", sub.get_name());
            let sub = sub.clone().display_name(name.clone()).bin_name(name);
            let man = clap_mangen::Man::new(sub);
            man.render_title(&mut out)?;
            man.render_name_section(&mut out)?;
            man.render_synopsis_section(&mut out)?;
            man.render_description_section(&mut out)?;
            man.render_options_section(&mut out)?;
            man.render_extra_section(&mut out)?;
        }
        Ok(())
    });
    match rendered {
        Ok(()) => write_out(&out),
        Err(e) => {
            eprintln!("error: could not render the manual page: {e}");
            exit::ERROR
        }
    }
}

fn write_out(bytes: &[u8]) -> u8 {
    let mut out = std::io::stdout().lock();
    match out.write_all(bytes).and_then(|()| out.flush()) {
        Ok(()) => exit::OK,
        Err(e) => {
            eprintln!("error: could not write to standard output: {e}");
            exit::ERROR
        }
    }
}
