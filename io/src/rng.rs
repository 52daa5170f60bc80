//! Randomness from the operating system for the core, which draws none of its own.
//!
//! The core's constructors take any `rand_core::CryptoRng + rand_core::RngCore` (rand_core
//! 0.9). `rand_core::OsRng` itself does not qualify: since rand_core 0.9 it only implements
//! the fallible `TryRngCore`/`TryCryptoRng`, so `Flow::new(config, &mut OsRng, now)` does not
//! compile. [`os_rng`] is the adapter (`OsRng.unwrap_err()`), and [`new_flow`] uses it.

use openrouter_auth_core::{ConfigError, Flow, FlowConfig, Time};
use rand_core::TryRngCore;

/// The operating system's CSPRNG (`getrandom`: `getrandom(2)` on Linux,
/// `BCryptGenRandom` on Windows, `getentropy` on macOS) as a
/// `rand_core::CryptoRng + rand_core::RngCore`, for the core's constructors:
///
/// ```
/// use openrouter_auth::core::{Flow, FlowConfig, Time};
/// let flow: Flow = Flow::new(FlowConfig::default(), &mut openrouter_auth::os_rng(), Time::ZERO)
///     .expect("the default base URL is https");
/// # let _ = flow;
/// ```
///
/// # Panics
///
/// Drawing from it panics if the operating system cannot supply random bytes (on Linux
/// before the entropy pool is first initialised early at boot, the call blocks instead).
pub fn os_rng() -> rand_core::UnwrapErr<rand_core::OsRng> {
    rand_core::OsRng.unwrap_err()
}

/// A [`Flow`] seeded from the operating system ([`os_rng`]): what `login` does, for an
/// embedder that drives the core itself. `now` is the embedder's clock reading, on the same
/// scale as every later input's (e.g. milliseconds since the program started).
///
/// `R` is what the embedder's store hands back with `Input::KeyStored` (often `()`).
///
/// # Errors
///
/// [`ConfigError::InsecureBaseUrl`] for a base URL that is neither https nor http on a
/// loopback host, as [`Flow::new`].
///
/// # Panics
///
/// As [`os_rng`].
pub fn new_flow<R: Clone>(config: FlowConfig, now: Time) -> Result<Flow<R>, ConfigError> {
    Flow::new(config, &mut os_rng(), now)
}
