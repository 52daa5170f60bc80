//! The world's own rules, beyond the flow's (checked by the oracle inside every `CheckedFlow`):
//! whose code, whose key, what the server saw, liveness, and that a clean sign-in succeeds.

use super::*;

impl<'p> World<'p> {
    pub(super) fn fail(&self, flow: Option<usize>, v: Violation) -> SimViolation {
        SimViolation {
            seed: self.seed,
            invariant: v.invariant,
            detail: v.detail,
            time_ms: self.now,
            flow,
        }
    }

    pub(super) fn broken(
        &self,
        flow: usize,
        invariant: &'static str,
        detail: String,
    ) -> SimViolation {
        self.fail(Some(flow), Violation { invariant, detail })
    }

    pub(super) fn end_checks(&mut self) -> Result<(), SimViolation> {
        for (i, f) in self.flows.iter().enumerate() {
            f.cf.check_end().map_err(|v| self.fail(Some(i), v))?;
        }
        let Some(heal) = self.plan.heal_at_ms else {
            return Ok(());
        };
        if self.flows.len() < self.plan.flows.len() {
            let n = self.flows.len();
            return Err(self.fail(
                Some(n.saturating_sub(1)),
                Violation {
                    invariant: "liveness",
                    detail: format!(
                        "only {n} of {} flows started: flow#{} never finished",
                        self.plan.flows.len(),
                        n.saturating_sub(1)
                    ),
                },
            ));
        }
        for (i, f) in self.flows.iter().enumerate() {
            let p = &f.plan;
            let bound = (f.started_at + (p.callback_timeout_s + p.exchange_timeout_s) * 1000)
                .max(heal)
                + STORE_SLOW_MAX_MS
                + HEALED_MAX_MS;
            let linger = DONE_LINGER.as_millis() as u64;
            match (f.terminal_at, f.finished_at) {
                (Some(t), Some(d)) if t <= bound && d <= bound + linger => {}
                (t, d) => {
                    return Err(self.broken(
                        i,
                        "liveness",
                        format!(
                            "with faults healed at {heal} ms the flow must end by {bound} ms and finish by {} ms; it ended at {t:?} and finished at {d:?} (phase {:?})",
                            bound + linger,
                            f.cf.flow().phase()
                        ),
                    ))
                }
            }
            // A clean sign-in succeeds: no fault ever, nobody else knows the nonce, no Ctrl-C,
            // and the first code or error that reached the flow was a good code, in time.
            let clean = heal == 0
                && !self.plan.leaks_nonce()
                && p.cancel_after_ms
                    .is_none_or(|c| f.terminal_at.is_some_and(|t| t < f.started_at + c));
            if clean {
                if let Some((Carries::Code, true, _)) = f.first_delivery {
                    if !matches!(f.cf.flow().outcome(), Some(Outcome::Stored { .. })) {
                        return Err(self.broken(
                            i,
                            "clean-run-signs-in",
                            format!(
                                "a good code arrived in time on a fault-free run, yet the flow ended {:?}",
                                f.cf.flow().outcome().map(|o| match o {
                                    Outcome::Failed(e) => e.kind(),
                                    Outcome::KeyNotStored { .. } => "key_not_stored",
                                    Outcome::Stored { .. } => "stored",
                                    _ => "other",
                                })
                            ),
                        ));
                    }
                }
            }
        }
        Ok(())
    }
}
