//! `exec-floor`: prints one line and exits. P4 times spawn → this line to show what starting
//! any Rust program costs on the machine, so the CLI's start time can be read against it.
#![forbid(unsafe_code)]

fn main() {
    println!("{{\"event\":\"ready\"}}");
}
