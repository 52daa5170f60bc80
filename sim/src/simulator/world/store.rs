//! The key store: how the shell's store answers `StoreKey` (ok, slow, failing, hung).

use super::*;

impl<'p> World<'p> {
    pub(super) fn store_key(&mut self, i: usize, key: &str) -> Result<(), SimViolation> {
        self.log("<-", || format!("StoreKey {key}"));
        let f = &self.flows[i];
        let Some(rec) = self.model.key(key) else {
            return Err(self.broken(
                i,
                "stored-needs-own-callback-code",
                "StoreKey with a key OpenRouter never issued".into(),
            ));
        };
        if rec.challenge != f.challenge || !f.cf.own_codes().any(|c| c == rec.code) {
            return Err(self.broken(
                i,
                "stored-needs-own-callback-code",
                "StoreKey with a key issued for another flow's code".into(),
            ));
        }
        let t = self.now;
        let ok = Input::KeyStored {
            location: "the sim's key store".into(),
            report: (),
        };
        if self.healed(t) {
            let d = self.rng.range(1, HEALED_MAX_MS);
            self.at(t + d, Ev::ToFlow(i, Box::new(ok)));
            return Ok(());
        }
        match f.plan.store {
            StoreFate::Ok { ms } => self.at(t + ms, Ev::ToFlow(i, Box::new(ok))),
            StoreFate::Fails { ms } => {
                let input = Input::KeyNotStored {
                    reason: StoreFailure::WriteFailed {
                        message: "the disk is full".into(),
                    },
                };
                self.at(t + ms, Ev::ToFlow(i, Box::new(input)));
            }
            StoreFate::Hangs => {
                if let Some(h) = self.plan.heal_at_ms {
                    let d = self.rng.range(1, HEALED_MAX_MS);
                    self.at(h.max(t) + d, Ev::ToFlow(i, Box::new(ok)));
                }
            }
        }
        Ok(())
    }
}
