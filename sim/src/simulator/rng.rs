//! The simulator's own randomness: one seeded `rand_chacha` stream per run, with the few
//! helpers the actors need. The helpers are written here (not taken from `rand`) so a seed
//! keeps replaying the same run across dependency upgrades.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A seeded ChaCha8 stream with small helpers.
#[derive(Debug, Clone)]
pub struct SimRng(ChaCha8Rng);

const B64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

impl SimRng {
    /// The stream for `seed`.
    pub fn new(seed: u64) -> Self {
        SimRng(ChaCha8Rng::seed_from_u64(seed))
    }

    /// 64 random bits.
    pub fn u64(&mut self) -> u64 {
        self.0.next_u64()
    }

    /// Uniform in `0..n` (`n` > 0; 0 gives 0).
    pub fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.u64()) * u128::from(n)) >> 64) as u64
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.below(hi - lo + 1)
    }

    /// `true` with probability `percent` / 100.
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }

    /// One of `items` (not empty).
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len() as u64) as usize]
    }

    /// A delay that is usually short and sometimes long: `lo..=hi` milliseconds, skewed
    /// towards `lo` (the minimum of two or three uniform draws).
    pub fn skewed(&mut self, lo: u64, hi: u64) -> u64 {
        let a = self.range(lo, hi);
        let b = self.range(lo, hi);
        if self.chance(50) {
            a.min(b).min(self.range(lo, hi))
        } else {
            a.min(b)
        }
    }

    /// `len` characters of base64url, like OpenRouter's codes and our nonces.
    pub fn token(&mut self, len: usize) -> String {
        let mut out = Vec::with_capacity(len);
        self.push_token(&mut out, len);
        String::from_utf8(out).expect("base64url is ASCII")
    }

    /// [`SimRng::token`] appended to `out` (the same draws), for building a request target
    /// without a `String` for each token.
    pub fn push_token(&mut self, out: &mut Vec<u8>, len: usize) {
        out.reserve(len);
        for _ in 0..len {
            out.push(B64URL[self.below(64) as usize]);
        }
    }

    /// `len` random bytes.
    pub fn bytes(&mut self, len: usize) -> Vec<u8> {
        let mut v = vec![0u8; len];
        self.0.fill_bytes(&mut v);
        v
    }

    /// A fresh seed for a sub-stream (e.g. the flow's CSPRNG).
    pub fn fork(&mut self) -> u64 {
        self.u64()
    }
}
