//! The blocking one-liner: sign in with OpenRouter and keep the new key in this tool's
//! credentials file (`<config dir>/openrouter-auth/credentials.json`).
//!
//! `cargo run -p openrouter-auth --example blocking_sign_in`; set `OPENROUTER_AUTH_BASE_URL`
//! to sign in against another OpenRouter (the emulator: `cargo run -p openrouter-auth-sim
//! --bin openrouter-emulator`).

use openrouter_auth::{login, CancelHandle, LoginEvent, LoginOptions, StoreEnv};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The library reads no environment unless told: here, where the user's home is.
    let mut options = LoginOptions::default().store_env(StoreEnv::from_process());
    if let Ok(base_url) = std::env::var("OPENROUTER_AUTH_BASE_URL") {
        options = options.base_url(base_url.parse()?);
    }
    let mut show = |event: LoginEvent| {
        if let LoginEvent::AuthorizationUrl { url, .. } = event {
            println!("Open {url} to sign in");
        }
    };
    let done = login(&options, &mut show, &CancelHandle::new())?;
    println!(
        "Signed in: key {} stored in {}",
        done.key.hint(),
        done.stored[0].description
    );
    Ok(())
}
