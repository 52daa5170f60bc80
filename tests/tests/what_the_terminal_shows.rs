//! What a real terminal (tmux, of a given size, read back with `capture-pane`) shows.
//!
//! Issue 16, "The QR code does not fit": a headless sign-in shows the QR code only where it
//! fits with the URL below it, and that code decodes with a real QR reader (zbar's `zbarimg`)
//! from a capture of the screen; in a smaller terminal the code is left out with a one-line
//! note, and the URL is whole on screen. Also: the spinner and NO_COLOR / TERM=dumb, and a key
//! pasted into `login --with-key` never showing on screen.
#![cfg(unix)]

use std::path::{Path, PathBuf};
use std::process::Command;

use openrouter_auth_sim::emulator::{Emulator, Mode};
use openrouter_auth_tests::{cli_binary, command, emulator, stored_key, wait_until, Cli};

/// `program` on the PATH, if installed.
fn installed(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join(program))
        .find(|p| p.is_file())
}

/// A tmux server of our own (its socket in a temporary directory), killed on drop.
struct Tmux {
    socket: PathBuf,
}

impl Tmux {
    fn run(&self, args: &[&str]) -> std::process::Output {
        Command::new("tmux")
            .arg("-S")
            .arg(&self.socket)
            .args(args)
            .output()
            .expect("tmux runs")
    }

    /// What the pane shows, one screen line per line (`-J`: lines the terminal folded are
    /// joined back, so a long URL reads whole).
    fn screen(&self, joined: bool) -> String {
        let args: &[&str] = if joined {
            &["capture-pane", "-p", "-J", "-t", "qr"]
        } else {
            &["capture-pane", "-p", "-t", "qr"]
        };
        String::from_utf8(self.run(args).stdout).unwrap()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.run(&["kill-server"]);
    }
}

/// `openrouter-auth login --headless` in a `cols`x`rows` tmux terminal, in the environment of
/// every test run; returns the tmux server once the prompt is on screen.
fn headless_in_tmux(emulator: &Emulator, home: &Path, cols: u16, rows: u16) -> Tmux {
    let store = format!("file:{}", home.join("c.json").display());
    let base = emulator.base_url().to_string();
    let args = [
        "login",
        "--headless",
        "--base-url",
        &base,
        "--store",
        &store,
    ];
    in_tmux(home, cols, rows, &args, &[], "", "Paste it here")
}

/// `openrouter-auth args…` (then `redirect`, shell syntax) in a `cols`x`rows` tmux terminal,
/// in the environment of every test run plus `env`; returns once `ready` is on screen.
fn in_tmux(
    home: &Path,
    cols: u16,
    rows: u16,
    args: &[&str],
    env: &[(&str, &str)],
    redirect: &str,
    ready: &str,
) -> Tmux {
    // Through env(1): tmux sets TERM in the pane itself.
    let mut line: Vec<String> = std::iter::once("env".to_owned())
        .chain(env.iter().map(|(k, v)| format!("{k}={v}")))
        .chain(std::iter::once(cli_binary().display().to_string()))
        .chain(args.iter().map(|a| a.to_string()))
        .map(|a| format!("'{}'", a.replace('\'', r"'\''")))
        .collect();
    line.push(redirect.to_owned());
    let tmux = Tmux {
        socket: home.join(format!("tmux-{cols}x{rows}.sock")),
    };
    // The server (started by this command) passes its environment on to the pane.
    let template = command(home);
    let mut cmd = Command::new("tmux");
    for (k, v) in template.get_envs() {
        match v {
            Some(v) => cmd.env(k, v),
            None => cmd.env_remove(k),
        };
    }
    let out = cmd
        .arg("-S")
        .arg(&tmux.socket)
        .args(["-f", "/dev/null", "new-session", "-d", "-s", "qr"])
        .args(["-x", &cols.to_string(), "-y", &rows.to_string()])
        .arg(line.join(" "))
        .output()
        .expect("tmux starts");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_until("the program is ready", || tmux.screen(true).contains(ready));
    tmux
}

/// The QR code's lines on `screen` (half and full blocks), decoded by `zbarimg` from an image
/// of them: each character cell is two modules high, a drawn half is light, a blank one dark
/// (as on a terminal with a dark background), and the screen around the code stays dark.
fn decode_qr(zbarimg: &Path, screen: &str, dir: &Path) -> Option<String> {
    let is_qr = |l: &&str| l.contains('█') || l.contains('▀') || l.contains('▄');
    let lines: Vec<&str> = screen.lines().filter(is_qr).collect();
    if lines.is_empty() {
        return None;
    }
    let cells: Vec<Vec<char>> = lines.iter().map(|l| l.chars().collect()).collect();
    let width = cells.iter().map(Vec::len).max().unwrap();
    // A dark border of 4 modules: the terminal's background around the code.
    let (border, scale) = (4, 4);
    let (w, h) = (width + 2 * border, 2 * cells.len() + 2 * border);
    let mut pbm = format!("P1\n{} {}\n", w * scale, h * scale);
    for y in 0..h {
        let mut row = String::new();
        for x in 0..w {
            let light = match (x.checked_sub(border), y.checked_sub(border)) {
                (Some(cx), Some(my)) if my / 2 < cells.len() => {
                    let c = cells[my / 2].get(cx).copied().unwrap_or(' ');
                    matches!((c, my % 2), ('█', _) | ('▀', 0) | ('▄', 1))
                }
                _ => false,
            };
            // PBM: 1 is black.
            for _ in 0..scale {
                row.push_str(if light { "0 " } else { "1 " });
            }
        }
        for _ in 0..scale {
            pbm.push_str(&row);
            pbm.push('\n');
        }
    }
    let image = dir.join("screen.pbm");
    std::fs::write(&image, pbm).unwrap();
    let out = Command::new(zbarimg)
        .args(["--raw", "-q"])
        .arg(&image)
        .output()
        .expect("zbarimg runs");
    out.status
        .success()
        .then(|| String::from_utf8(out.stdout).unwrap().trim_end().to_owned())
}

/// The authorization URL as it reads on the screen: whole, on a line of its own.
fn url_on(screen: &str) -> url::Url {
    let line = screen
        .lines()
        .map(str::trim)
        .find(|l| l.contains("/auth?"))
        .unwrap_or_else(|| panic!("no URL on screen:\n{screen}"));
    url::Url::parse(line).unwrap_or_else(|e| panic!("{e}: {line:?}"))
}

#[test]
fn the_qr_code_decodes_where_it_fits_and_is_left_out_where_not() {
    let (Some(_), Some(zbarimg)) = (installed("tmux"), installed("zbarimg")) else {
        eprintln!("skipped: tmux and zbarimg (Debian zbar-tools) are needed");
        return;
    };
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();

    // 80x24: too small for the code and the URL together.
    let small = headless_in_tmux(&emulator, home.path(), 80, 24);
    let screen = small.screen(false);
    let joined = small.screen(true);
    drop(small);
    assert!(!screen.contains('█') && !screen.contains('▀'), "{screen}");
    let notes: Vec<&str> = screen
        .lines()
        .filter(|l| l.starts_with("No QR code"))
        .collect();
    assert_eq!(notes.len(), 1, "one line says why:\n{screen}");
    // Followed by the prompt, not folded onto a second line.
    let after = screen.lines().skip_while(|l| !l.starts_with("No QR code"));
    assert!(
        after
            .clone()
            .nth(1)
            .unwrap()
            .starts_with("After you approve"),
        "{screen}"
    );
    let url = url_on(&joined);
    assert!(
        screen.lines().next().unwrap().starts_with("Open this URL"),
        "nothing scrolled away:\n{screen}"
    );
    // The size it says it needs.
    let needs = notes[0]
        .split_whitespace()
        .find_map(|w| {
            let (c, r) = w.split_once('x')?;
            Some((c.parse::<u16>().ok()?, r.parse::<u16>().ok()?))
        })
        .unwrap_or_else(|| panic!("no size in {:?}", notes[0]));

    // At the size it needs, and taller: shown above the URL, decoding to that URL, with the
    // first line still on screen.
    for rows in [needs.1, needs.1 + 16] {
        let tall = headless_in_tmux(&emulator, home.path(), 80, rows);
        let screen = tall.screen(false);
        let joined = tall.screen(true);
        drop(tall);
        assert!(
            screen.lines().next().unwrap().starts_with("Open this URL"),
            "80x{rows}: the top scrolled away:\n{screen}"
        );
        let shown = url_on(&joined);
        assert_eq!(shown.path(), url.path());
        let decoded = decode_qr(&zbarimg, &screen, home.path())
            .unwrap_or_else(|| panic!("80x{rows}: no QR code decoded from:\n{screen}"));
        assert_eq!(decoded, shown.as_str(), "80x{rows}");
        let lines: Vec<&str> = screen.lines().collect();
        let qr_end = lines.iter().rposition(|l| l.contains('█')).unwrap();
        let url_at = lines.iter().position(|l| l.contains("/auth?")).unwrap();
        assert!(url_at > qr_end, "the URL comes after the code:\n{screen}");
    }

    // One row fewer than it needs: left out.
    let short = headless_in_tmux(&emulator, home.path(), 80, needs.1 - 1);
    let screen = short.screen(false);
    drop(short);
    assert!(!screen.contains('█'), "{screen}");
    assert!(screen.contains("No QR code"), "{screen}");
}

/// Issue 15, item 7: NO_COLOR asks for no colour, not for no spinner: on a terminal with
/// NO_COLOR set the time left still counts down; TERM=dumb stops it.
#[test]
fn no_color_keeps_the_spinner_and_a_dumb_terminal_stops_it() {
    if installed("tmux").is_none() {
        eprintln!("skipped: tmux is needed");
        return;
    }
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let store = format!("file:{}", home.path().join("c.json").display());
    let base = emulator.base_url().to_string();
    // stdin not a terminal (nobody types a paste), stderr the terminal: the spinner's case.
    let args = [
        "login",
        "--no-browser",
        "--base-url",
        &base,
        "--store",
        &store,
    ];
    let fancy = in_tmux(
        home.path(),
        80,
        24,
        &args,
        &[("NO_COLOR", "1"), ("TERM", "xterm")],
        "< /dev/null",
        "left (Ctrl-C to cancel)",
    );
    drop(fancy);
    let dumb = in_tmux(
        home.path(),
        100,
        24,
        &args,
        &[("NO_COLOR", "1"), ("TERM", "dumb")],
        "< /dev/null",
        "Waiting for the browser (Ctrl-C to cancel)",
    );
    assert!(
        !dumb.screen(true).contains("left (Ctrl-C"),
        "{}",
        dumb.screen(true)
    );
}

/// Issue 15, item 3: a person who pastes a key into `login --with-key` at a terminal does not
/// see it echoed: the key is on no line of the screen (nor in its scrollback), and it is the
/// key that got stored.
#[test]
fn a_key_pasted_into_with_key_is_not_shown() {
    if installed("tmux").is_none() {
        eprintln!("skipped: tmux is needed");
        return;
    }
    let emulator = emulator(Mode::Redirect);
    let home = tempfile::tempdir().unwrap();
    let key = Cli::signed_in_key(&emulator, home.path());

    let second = home.path().join("second.json");
    let store = format!("file:{}", second.display());
    let base = emulator.base_url().to_string();
    let args = [
        "login",
        "--with-key",
        "--base-url",
        &base,
        "--store",
        &store,
    ];
    // The pane stays after the program ends (the sleep), so its last screen can be read.
    let tmux = in_tmux(
        home.path(),
        80,
        24,
        &args,
        &[],
        "; sleep 60",
        "Paste your OpenRouter API key",
    );
    tmux.run(&["send-keys", "-t", "qr", "-l", &key]);
    tmux.run(&["send-keys", "-t", "qr", "Enter"]);
    wait_until("the key is checked and stored", || {
        tmux.screen(true).contains("Checked with OpenRouter")
    });
    let scrollback = tmux.run(&["capture-pane", "-p", "-J", "-S", "-", "-t", "qr"]);
    let scrollback = String::from_utf8(scrollback.stdout).unwrap();
    // The part of the key its hint (`sk-or-v1-abc…wxyz`) never shows is nowhere on screen.
    let hidden = &key[12..key.len() - 4];
    assert!(
        !scrollback.contains(hidden),
        "the pasted key is on screen:\n{scrollback}"
    );
    assert_eq!(stored_key(&second), key);
}
