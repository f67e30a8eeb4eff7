//! Seeded sampling that gives the same numbers on every machine.
//!
//! The random stream is ChaCha8 (`rand_chacha`), whose output is specified bit for bit. On top of
//! it this module builds its own samplers instead of using `rand`'s distributions, whose algorithms
//! may change between releases. Floats are used here, but only through operations IEEE 754
//! defines exactly (`+ - * /`, `sqrt`, conversions): [`ln`] and [`exp`] are polynomial evaluations
//! written out below, never the platform's `libm`, so a seed yields the same bits everywhere.
//! Every sample that reaches an event is quantised to an integer by the caller right away.
//!
//! Must never: call `f64::ln`, `f64::exp`, `powf`, trigonometric functions or `mul_add` (fused
//! rounding differs from separate rounding), or read any source of entropy other than the seed.

use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};

/// The generator's random stream: one per synthetic market, consumed in a fixed order.
pub(crate) struct Sampler {
    rng: ChaCha8Rng,
}

impl Sampler {
    /// A stream determined by `seed` and a `stream` label, so independent parts of the generator
    /// (accounts, price noise) do not shift each other when one of them draws more numbers.
    pub(crate) fn new(seed: u64, stream: u64) -> Self {
        let mut key = [0u8; 32];
        key[..8].copy_from_slice(&seed.to_le_bytes());
        key[8..16].copy_from_slice(&stream.to_le_bytes());
        Self {
            rng: ChaCha8Rng::from_seed(key),
        }
    }

    /// 64 uniformly random bits.
    pub(crate) fn bits(&mut self) -> u64 {
        self.rng.next_u64()
    }

    /// An integer uniform in `0..n` (`n > 0`), by the multiply-shift map (bias below 2^-32 for
    /// the sizes used here).
    pub(crate) fn below(&mut self, n: u64) -> u64 {
        ((u128::from(self.bits()) * u128::from(n)) >> 64) as u64
    }

    /// A float uniform in `[0, 1)` with 53 random bits.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.bits() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// True with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// A standard normal sample by Marsaglia's polar method (needs only `ln` and `sqrt`).
    pub(crate) fn normal(&mut self) -> f64 {
        loop {
            let u = 2.0 * self.unit() - 1.0;
            let v = 2.0 * self.unit() - 1.0;
            let s = u * u + v * v;
            if s > 0.0 && s < 1.0 {
                return u * (-2.0 * ln(s) / s).sqrt();
            }
        }
    }

    /// A log-normal sample with the given median and log-space standard deviation.
    pub(crate) fn log_normal(&mut self, median: f64, sigma: f64) -> f64 {
        median * exp(sigma * self.normal())
    }
}

const LN_2: f64 = std::f64::consts::LN_2;

/// Natural logarithm of a positive finite `x`, from basic operations only (see the module doc).
///
/// `x = m * 2^e` with `m` in `[1, 2)`; `ln m = 2 atanh(s)` with `s = (m - 1) / (m + 1)`, whose
/// series converges fast for `|s| <= 1/3`. Accurate to a few ulps, which is all sampling needs.
pub(crate) fn ln(x: f64) -> f64 {
    debug_assert!(x > 0.0 && x.is_finite(), "ln of {x}");
    let bits = x.to_bits();
    let mut exponent = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut mantissa = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    if exponent == -1023 {
        // Subnormal: scale into the normal range first (exact).
        let scaled = x * (1u64 << 54) as f64;
        let bits = scaled.to_bits();
        exponent = ((bits >> 52) & 0x7ff) as i64 - 1023 - 54;
        mantissa = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    }
    // Centre the mantissa on 1 so |s| stays small: [0.75, 1.5).
    if mantissa > 1.5 {
        mantissa *= 0.5;
        exponent += 1;
    }
    let s = (mantissa - 1.0) / (mantissa + 1.0);
    let s2 = s * s;
    let mut term = s;
    let mut sum = 0.0;
    let mut k = 1.0;
    while k < 40.0 {
        sum += term / k;
        term *= s2;
        k += 2.0;
    }
    2.0 * sum + exponent as f64 * LN_2
}

/// `e^x` from basic operations only (see the module doc); saturates outside about ±700.
///
/// `x = k ln 2 + r` with `|r| <= ln 2 / 2`; `e^r` by its Taylor series, `2^k` built from bits.
pub(crate) fn exp(x: f64) -> f64 {
    let x = x.clamp(-700.0, 700.0);
    let k = (x / LN_2 + if x < 0.0 { -0.5 } else { 0.5 }) as i64;
    let r = x - k as f64 * LN_2;
    let mut term = 1.0;
    let mut sum = 1.0;
    let mut n = 1.0;
    while n < 24.0 {
        term = term * r / n;
        sum += term;
        n += 1.0;
    }
    sum * f64::from_bits(((k + 1023) as u64) << 52)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ln_and_exp_agree_with_libm_closely() {
        for x in [
            1e-300_f64, 1e-9, 0.001, 0.3, 0.75, 1.0, 1.5, 2.0, 3.0, 10.0, 1e12, 1e300,
        ] {
            let expected = x.ln();
            assert!(
                (ln(x) - expected).abs() <= 1e-13 * expected.abs().max(1.0),
                "ln({x}) = {} vs {expected}",
                ln(x)
            );
        }
        for x in [-50.0_f64, -3.0, -0.4, 0.0, 0.2, 1.0, 5.5, 40.0] {
            let expected = x.exp();
            assert!(
                (exp(x) - expected).abs() <= 1e-13 * expected,
                "exp({x}) = {} vs {expected}",
                exp(x)
            );
        }
    }

    #[test]
    fn the_stream_is_pinned() {
        // ChaCha8 keyed by (seed, stream): pinning the first outputs catches a dependency update
        // that would silently change every synthetic market.
        let mut a = Sampler::new(42, 7);
        let first: Vec<u64> = (0..3).map(|_| a.bits()).collect();
        let mut b = Sampler::new(42, 7);
        assert_eq!(first, (0..3).map(|_| b.bits()).collect::<Vec<_>>());
        let mut other = Sampler::new(42, 8);
        assert_ne!(first[0], other.bits());
        assert_eq!(first, PINNED_42_7);
    }

    const PINNED_42_7: [u64; 3] = [
        7_838_003_479_062_968_374,
        7_891_298_053_395_504_390,
        13_217_638_607_239_514_785,
    ];

    #[test]
    fn normal_samples_have_unit_spread() {
        let mut s = Sampler::new(1, 0);
        let n = 20_000;
        let samples: Vec<f64> = (0..n).map(|_| s.normal()).collect();
        let mean = samples.iter().sum::<f64>() / n as f64;
        let var = samples.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / n as f64;
        assert!(mean.abs() < 0.03, "mean {mean}");
        assert!((var - 1.0).abs() < 0.05, "variance {var}");
    }

    #[test]
    fn below_stays_in_range() {
        let mut s = Sampler::new(3, 0);
        let mut seen = [false; 5];
        for _ in 0..1000 {
            let v = s.below(5);
            assert!(v < 5);
            seen[v as usize] = true;
        }
        assert!(seen.iter().all(|&x| x), "every value drawn: {seen:?}");
    }
}
