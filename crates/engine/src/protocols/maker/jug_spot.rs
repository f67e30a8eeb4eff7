//! `Jug.drip` (the stability fee accrued into `rate`) and `Spotter.poke` (`spot` from the OSM
//! price and `mat`).

use super::*;

impl Ilk {
    /// `Jug.drip`: `rate = rmul(rpow(duty, now - rho, ONE), rate)`.
    pub(super) fn drip(&mut self, time: Timestamp) -> Result<(), EngineError> {
        let Some(rho) = self.rho else {
            self.rho = Some(time);
            return Ok(());
        };
        if time <= rho {
            return Ok(());
        }
        let dt = (time.0 - rho.0) as u64;
        let factor = match self.rpow_cache {
            Some((cached, factor)) if cached == dt => factor,
            _ => {
                let factor = rpow(self.duty, dt, RAY)?;
                self.rpow_cache = Some((dt, factor));
                factor
            }
        };
        self.rate = rmul(factor, self.rate, "rpow(duty) * rate")?;
        self.rho = Some(time);
        Ok(())
    }

    /// `Spotter.poke`: `spot = rdiv(rdiv(mul(val, 10 ** 9), par), mat)` with `par = RAY`.
    pub(super) fn poke(&mut self, value: Option<U256>) -> Result<bool, EngineError> {
        let spot = match value {
            Some(val) if !self.mat.is_zero() => {
                mul_div(mul(val, BLN, "val * 1e9")?, RAY, self.mat, "val / mat")?
            }
            _ => U256::ZERO,
        };
        let changed = spot != self.spot;
        self.spot = spot;
        Ok(changed)
    }
}
