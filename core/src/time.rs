//! Time as the core sees it: a caller-supplied millisecond count.
//!
//! The core reads no clock. Every input carries `now` as a [`Time`]: milliseconds since an
//! epoch the caller picks (a process-start `Instant` in the drivers, a virtual clock in the
//! simulator, Unix time for a web service that parks flows in a database). Time that goes
//! backwards is clamped: the core never moves its own notion of time back (as str0m does).

use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A point in time, in milliseconds since the caller's epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Time(u64);

impl Time {
    /// The caller's epoch.
    pub const ZERO: Time = Time(0);

    /// `millis` milliseconds after the caller's epoch.
    pub const fn from_millis(millis: u64) -> Self {
        Time(millis)
    }

    /// Milliseconds since the caller's epoch.
    pub const fn as_millis(self) -> u64 {
        self.0
    }

    /// `self + d`, saturating at the far future.
    pub fn saturating_add(self, d: Duration) -> Time {
        Time(
            self.0
                .saturating_add(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
        )
    }

    /// How long from `self` until `later`; zero if `later` is not after `self`.
    pub fn until(self, later: Time) -> Duration {
        Duration::from_millis(later.0.saturating_sub(self.0))
    }
}
