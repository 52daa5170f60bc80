//! Child processes the harnesses drive (the emulator, our CLI, the peers) and what `/proc`
//! says about them.

use std::io::{self, BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The directory holding the bench binaries and their siblings (`openrouter-auth`,
/// `openrouter-emulator`): `$BENCH_BIN_DIR`, else the directory of the running executable.
pub fn bin_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("BENCH_BIN_DIR") {
        return PathBuf::from(d);
    }
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe.parent().expect("exe has a directory").to_path_buf();
    // `cargo bench` executables live in target/<profile>/deps.
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir.parent().expect("deps has a parent").to_path_buf()
    } else {
        dir
    }
}

/// The path of binary `name` in [`bin_dir`]; an error naming the build command if missing.
pub fn bin(name: &str) -> io::Result<PathBuf> {
    let p = bin_dir().join(name);
    if p.exists() {
        Ok(p)
    } else {
        Err(io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "{} not found: build it first (bench/run-all.sh does: cargo build --release -p openrouter-auth -p openrouter-auth-sim -p openrouter-auth-bench --bins)",
                p.display()
            ),
        ))
    }
}

/// A child's stdout read line by line on a thread, so reads can time out.
pub struct Lines {
    rx: mpsc::Receiver<String>,
}

impl Lines {
    /// Starts reading `out`.
    pub fn new(out: ChildStdout) -> Self {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let Ok(line) = line else { return };
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self { rx }
    }

    /// The next line, with the instant it was read; `None` on EOF or after `timeout`.
    pub fn next(&self, timeout: Duration) -> Option<(String, Instant)> {
        self.rx
            .recv_timeout(timeout)
            .ok()
            .map(|l| (l, Instant::now()))
    }
}

/// A child that is killed (SIGKILL) and reaped when dropped.
pub struct Proc {
    /// The child.
    pub child: Child,
    /// Its stdout lines, if piped.
    pub lines: Option<Lines>,
}

impl Proc {
    /// Spawns `cmd` with stdin null and stdout piped (stderr as `cmd` says).
    pub fn spawn(cmd: &mut Command) -> io::Result<Self> {
        let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).spawn()?;
        let lines = child.stdout.take().map(Lines::new);
        Ok(Self { child, lines })
    }

    /// The child's pid.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The next stdout line.
    pub fn next_line(&self, timeout: Duration) -> Option<(String, Instant)> {
        self.lines.as_ref().and_then(|l| l.next(timeout))
    }

    /// Waits up to `timeout` for the child to exit; its exit code if it did.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<i32> {
        let until = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return Some(st.code().unwrap_or(-1));
            }
            if Instant::now() >= until {
                return None;
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The emulator (`openrouter-emulator`) in its own process.
pub struct EmulatorProc {
    proc_: Proc,
    /// Its base URL, e.g. `http://127.0.0.1:40123/`.
    pub base_url: url::Url,
}

impl EmulatorProc {
    /// Starts it and waits for its "listening" line.
    pub fn start() -> io::Result<Self> {
        let proc_ = Proc::spawn(Command::new(bin("openrouter-emulator")?).stderr(Stdio::null()))?;
        let (line, _) = proc_
            .next_line(Duration::from_secs(20))
            .ok_or_else(|| io::Error::other("the emulator printed nothing"))?;
        let url = line
            .rsplit(' ')
            .next()
            .and_then(|u| url::Url::parse(u).ok())
            .ok_or_else(|| io::Error::other(format!("unexpected emulator line: {line}")))?;
        Ok(Self {
            proc_,
            base_url: url,
        })
    }

    /// The emulator's pid.
    pub fn pid(&self) -> u32 {
        self.proc_.pid()
    }
}

/// `openrouter-auth login --no-browser --json` against `base_url`, storing into `store`.
pub struct CliLogin {
    /// The process.
    pub proc_: Proc,
    /// When it was spawned (just before `spawn`).
    pub spawned: Instant,
}

/// What the CLI printed first: the authorization URL event.
#[derive(Debug, Clone)]
pub struct UrlEvent {
    /// The authorization URL.
    pub url: url::Url,
    /// The callback URL inside it.
    pub callback_url: url::Url,
    /// When the line was read.
    pub at: Instant,
}

impl CliLogin {
    /// Spawns the CLI; `timeout_secs` is its `--timeout`.
    pub fn spawn(base_url: &url::Url, store: &Path, timeout_secs: u64) -> io::Result<Self> {
        let mut cmd = Command::new(bin("openrouter-auth")?);
        cmd.args(["login", "--no-browser", "--json", "--base-url"])
            .arg(base_url.as_str())
            .arg("--store")
            .arg(format!("file:{}", store.display()))
            .arg("--timeout")
            .arg(timeout_secs.to_string())
            .env_remove("RUST_LOG")
            .stderr(Stdio::null());
        let spawned = Instant::now();
        let proc_ = Proc::spawn(&mut cmd)?;
        Ok(Self { proc_, spawned })
    }

    /// Waits for the `authorization_url` JSON event.
    pub fn wait_url(&self, timeout: Duration) -> io::Result<UrlEvent> {
        let (line, at) = self
            .proc_
            .next_line(timeout)
            .ok_or_else(|| io::Error::other("the CLI printed no authorization URL"))?;
        let v: serde_json::Value = serde_json::from_str(&line)
            .map_err(|e| io::Error::other(format!("not JSON: {line}: {e}")))?;
        let parse = |k: &str| {
            v.get(k)
                .and_then(|s| s.as_str())
                .and_then(|s| url::Url::parse(s).ok())
                .ok_or_else(|| io::Error::other(format!("no {k} in {line}")))
        };
        Ok(UrlEvent {
            url: parse("url")?,
            callback_url: parse("callback_url")?,
            at,
        })
    }
}

fn status_field(pid: u32, field: &str) -> Option<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    s.lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// Peak resident set size (`VmHWM`) of `pid`, in KiB.
pub fn vm_hwm_kib(pid: u32) -> Option<u64> {
    status_field(pid, "VmHWM:")
}

/// Current resident set size (`VmRSS`) of `pid`, in KiB.
pub fn vm_rss_kib(pid: u32) -> Option<u64> {
    status_field(pid, "VmRSS:")
}

/// Current anonymous (private: heap, stacks) and file-backed (mapped binary and libraries)
/// resident memory of `pid`, in KiB.
pub fn rss_anon_file_kib(pid: u32) -> (u64, u64) {
    (
        status_field(pid, "RssAnon:").unwrap_or(0),
        status_field(pid, "RssFile:").unwrap_or(0),
    )
}

/// User + system CPU time of `pid` (all its threads), from `/proc/<pid>/stat`.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are fields 14 and 15.
    let rest = &s[s.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_secs_f64(ticks as f64 / clock_ticks() as f64))
}

fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100)
    })
}

/// The 1-minute load average and the number of CPUs, for the record.
pub fn machine_load() -> String {
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "load average {} on {cpus} CPUs",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    )
}
