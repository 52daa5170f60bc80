//! Medians and percentiles over samples in microseconds.

use std::time::Duration;

/// Samples of a duration, kept sorted on demand.
#[derive(Debug, Clone, Default)]
pub struct Samples {
    us: Vec<f64>,
}

impl Samples {
    /// No samples.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds one sample.
    pub fn push(&mut self, d: Duration) {
        self.us.push(d.as_secs_f64() * 1e6);
    }

    /// How many samples.
    pub fn len(&self) -> usize {
        self.us.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.us.is_empty()
    }

    /// The `p`-th percentile (0..=100, nearest rank) in microseconds; NaN when empty.
    pub fn percentile(&self, p: f64) -> f64 {
        percentile(&self.us, p)
    }

    /// The median in microseconds.
    pub fn median(&self) -> f64 {
        self.percentile(50.0)
    }

    /// The largest sample in microseconds.
    pub fn max(&self) -> f64 {
        self.percentile(100.0)
    }

    /// `n=… p50=… p90=… p99=… max=…` in milliseconds.
    pub fn summary_ms(&self) -> String {
        format!(
            "n={} p50={:.2}ms p90={:.2}ms p99={:.2}ms max={:.2}ms",
            self.len(),
            self.median() / 1e3,
            self.percentile(90.0) / 1e3,
            self.percentile(99.0) / 1e3,
            self.max() / 1e3
        )
    }
}

/// Nearest-rank percentile of `values` (unsorted); NaN when empty.
pub fn percentile(values: &[f64], p: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let rank = ((p / 100.0) * v.len() as f64).ceil() as usize;
    v[rank.clamp(1, v.len()) - 1]
}

/// The median of `values`; NaN when empty.
pub fn median(values: &[f64]) -> f64 {
    percentile(values, 50.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 50.0), 50.0);
        assert_eq!(percentile(&v, 99.0), 99.0);
        assert_eq!(percentile(&v, 100.0), 100.0);
        assert_eq!(percentile(&v, 0.0), 1.0);
        assert!(percentile(&[], 50.0).is_nan());
    }
}
