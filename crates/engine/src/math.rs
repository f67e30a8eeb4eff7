//! Fixed-point integer arithmetic as the contracts do it: wad (1e18), ray (1e27), rad (1e45).
//!
//! Every function mirrors a named Solidity helper and rounds exactly as it does, so the engine's
//! numbers can be compared with on-chain values digit for digit. Overflow is an error naming the
//! quantity, never a wrap. This module must never use floats.

use alloy_primitives::U512;
use alloy_primitives::ruint::UintTryFrom;
use cascade_events::{Fixed, U256};

use crate::EngineError;

const fn u256(value: u128) -> U256 {
    U256::from_limbs([value as u64, (value >> 64) as u64, 0, 0])
}

/// 10^18: one in wad precision.
pub const WAD: U256 = u256(1_000_000_000_000_000_000);
/// 10^27: one in ray precision.
pub const RAY: U256 = u256(1_000_000_000_000_000_000_000_000_000);
/// 10^9: ray / wad.
pub const BLN: U256 = u256(1_000_000_000);

/// Seconds in the 365-day year governance used to turn annual rates into per-second ones.
pub const SECONDS_PER_YEAR: u64 = 365 * 24 * 3600;

/// `a * b`, or an overflow error naming `what`.
pub fn mul(a: U256, b: U256, what: &'static str) -> Result<U256, EngineError> {
    let (x, y) = (a.as_limbs(), b.as_limbs());
    if x[2] | x[3] | y[2] | y[3] == 0 {
        return Ok(mul_128(x[0], x[1], y[0], y[1]));
    }
    a.checked_mul(b)
        .ok_or_else(|| EngineError::Overflow { quantity: what })
}

/// The product of two 128-bit numbers given as (low, high) limbs: four limb products, which
/// cannot overflow 256 bits. Balances, rates and prices are below 2^128, and the general 256-bit
/// multiplication with its overflow check is several times the work (the replay multiplies a few
/// times per event).
fn mul_128(a0: u64, a1: u64, b0: u64, b1: u64) -> U256 {
    let (a0, a1, b0, b1) = (a0 as u128, a1 as u128, b0 as u128, b1 as u128);
    let (low, cross_a, cross_b, high) = (a0 * b0, a0 * b1, a1 * b0, a1 * b1);
    let middle = (low >> 64) + (cross_a as u64 as u128) + (cross_b as u64 as u128);
    // (2^64 - 1)^2 + 2 (2^64 - 2) + 2 < 2^128: no carry out of the top.
    let top = high + (cross_a >> 64) + (cross_b >> 64) + (middle >> 64);
    U256::from_limbs([low as u64, middle as u64, top as u64, (top >> 64) as u64])
}

/// `a + b`, or an overflow error naming `what`.
pub fn add(a: U256, b: U256, what: &'static str) -> Result<U256, EngineError> {
    a.checked_add(b)
        .ok_or_else(|| EngineError::Overflow { quantity: what })
}

/// `a * b / c` rounded down; `c` must be non-zero (checked: a zero divisor is an error too).
pub fn mul_div(a: U256, b: U256, c: U256, what: &'static str) -> Result<U256, EngineError> {
    if c.is_zero() {
        return Err(EngineError::DivisionByZero { quantity: what });
    }
    Ok(mul(a, b, what)? / c)
}

/// `a * b / c` rounded down with the product held in 512 bits: for quotients that fit in 256 bits
/// although the product does not (a price solved from a rad debt times a ray ratio). `None` when
/// `c` is zero or the quotient does not fit.
pub fn mul_div_wide(a: U256, b: U256, c: U256) -> Option<U256> {
    if c.is_zero() {
        return None;
    }
    U256::uint_try_from(U512::from(a) * U512::from(b) / U512::from(c)).ok()
}

/// [`mul_div_wide`] rounded up.
pub fn mul_div_wide_up(a: U256, b: U256, c: U256) -> Option<U256> {
    if c.is_zero() {
        return None;
    }
    let c = U512::from(c);
    U256::uint_try_from((U512::from(a) * U512::from(b)).div_ceil(c)).ok()
}

/// `a * b / c` rounded up.
pub fn mul_div_up(a: U256, b: U256, c: U256, what: &'static str) -> Result<U256, EngineError> {
    if c.is_zero() {
        return Err(EngineError::DivisionByZero { quantity: what });
    }
    let product = mul(a, b, what)?;
    let quotient = product / c;
    Ok(if quotient * c < product {
        quotient + U256::ONE
    } else {
        quotient
    })
}

/// `n / d` rounded down, exactly, fast when the quotient is below 2^64 (a health factor, a
/// price): estimates from the top 64 bits of `d` in `u128` and corrects by multiplication.
/// Falls back to the full 256-bit division otherwise.
pub fn div_small_quotient(n: U256, d: U256) -> Option<U256> {
    if d.is_zero() {
        return None;
    }
    let shift = d.bit_len().saturating_sub(64);
    let d_top = d >> shift;
    let n_top = n >> shift;
    // n / d < 2^64 implies n >> shift < (d_top + 1) * 2^64 <= 2^128.
    if n_top.bit_len() > 127 {
        return Some(n / d);
    }
    let estimate = n_top.to::<u128>() / d_top.to::<u128>();
    // d_top underestimates d / 2^shift by less than one, so the estimate is at most a few above
    // the quotient and never below it by more than one.
    let mut q = U256::from(estimate);
    let above = |q: U256| q.checked_mul(d).is_none_or(|product| product > n);
    while above(q) {
        q -= U256::ONE;
    }
    while !above(q + U256::ONE) {
        q += U256::ONE;
    }
    Some(q)
}

/// `x / RAY` rounded down, through two single-limb divisions (floor of floors is the floor).
pub fn div_ray(x: U256) -> U256 {
    x / BLN / WAD
}

/// `x * y / RAY` rounded down: DSMath/Jug `rmul`.
pub fn rmul(x: U256, y: U256, what: &'static str) -> Result<U256, EngineError> {
    Ok(mul(x, y, what)? / RAY)
}

/// `x * RAY / y` rounded down: Spotter `rdiv`.
pub fn rdiv(x: U256, y: U256, what: &'static str) -> Result<U256, EngineError> {
    mul_div(x, RAY, y, what)
}

/// `x^n` in base `b` with round-half-up at each step: the assembly `rpow` of dss `Jug`
/// (`jug.sol`), which `Jug.drip` uses to compound the per-second `duty` over `now - rho`.
pub fn rpow(x: U256, n: u64, b: U256) -> Result<U256, EngineError> {
    const WHAT: &str = "rpow";
    if x.is_zero() {
        return Ok(if n == 0 { b } else { U256::ZERO });
    }
    let half = b / U256::from(2u8);
    let mut z = if n.is_multiple_of(2) { b } else { x };
    let mut x = x;
    let mut n = n / 2;
    while n > 0 {
        let xx = mul(x, x, WHAT)?;
        x = add(xx, half, WHAT)? / b;
        if n % 2 == 1 {
            let zx = mul(z, x, WHAT)?;
            z = add(zx, half, WHAT)? / b;
        }
        n /= 2;
    }
    Ok(z)
}

/// The per-second ray rate whose compounding over a 365-day year comes closest to `1 + annual`,
/// measured with the same [`rpow`] `Jug.drip` uses.
///
/// Governance spells hard-code these constants (6% a year is `1000000001847694957439350562`);
/// they were computed off-chain at high precision and agree with this search to the last digit
/// or one unit of 1e-27 (see the tests). One unit of the per-second rate moves a year's compounding
/// by about 3e-20, far below anything an export records.
pub fn per_second_rate(annual: &Fixed) -> Result<U256, EngineError> {
    let target = add(
        RAY,
        annual.rescale(27).ok_or(EngineError::Overflow {
            quantity: "annual rate",
        })?,
        "annual rate",
    )?;
    // rpow is monotone in its base, so bisect on the base: lo compounds to <= target, hi above.
    let mut lo = RAY;
    // 1.000001 a second compounds to about 4.7e13 a year: far above any real fee.
    let mut hi = RAY + RAY / U256::from(1_000_000u32);
    if rpow(hi, SECONDS_PER_YEAR, RAY)? <= target {
        return Err(EngineError::InvalidParam {
            param: "annual rate".to_owned(),
            value: annual.to_string(),
            reason: "above 1e13 a year",
        });
    }
    while hi - lo > U256::ONE {
        let mid = (lo + hi) / U256::from(2u8);
        if rpow(mid, SECONDS_PER_YEAR, RAY)? <= target {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    let below = target - rpow(lo, SECONDS_PER_YEAR, RAY)?;
    let above = rpow(hi, SECONDS_PER_YEAR, RAY)? - target;
    Ok(if above < below { hi } else { lo })
}

/// A fixed-point parameter at another precision (`1.3` as a ray), rounding toward zero.
pub fn fixed_to(value: &Fixed, decimals: u8, what: &'static str) -> Result<U256, EngineError> {
    value
        .rescale(decimals)
        .ok_or_else(|| EngineError::Overflow { quantity: what })
}

/// `value / 10^decimals` as exact decimal text without trailing zeros (`"1.5"`, `"867"`).
pub fn decimal(value: U256, decimals: u8) -> String {
    cascade_events::Amount(value).to_tokens_string(decimals)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn narrow_products_equal_the_general_multiplication(a: u128, b: u128) {
            let (a, b) = (U256::from(a), U256::from(b));
            prop_assert_eq!(mul(a, b, "test").unwrap(), a.checked_mul(b).unwrap());
        }
    }

    #[test]
    fn the_largest_narrow_product_and_wide_overflow() {
        let max = U256::from(u128::MAX);
        assert_eq!(
            mul(max, max, "test").unwrap(),
            max.checked_mul(max).unwrap()
        );
        assert!(mul(U256::MAX, U256::from(2u8), "test").is_err());
        let wide = U256::ONE << 200;
        assert_eq!(
            mul(wide, U256::from(3u8), "test").unwrap(),
            wide * U256::from(3u8)
        );
    }

    fn ray(text: &str) -> U256 {
        text.parse().unwrap()
    }

    #[test]
    fn rpow_matches_known_compounding() {
        assert_eq!(rpow(RAY, 12345, RAY).unwrap(), RAY);
        assert_eq!(rpow(U256::ZERO, 0, RAY).unwrap(), RAY);
        assert_eq!(rpow(U256::ZERO, 5, RAY).unwrap(), U256::ZERO);
        // 2^10 in ray precision is exact.
        assert_eq!(
            rpow(RAY * U256::from(2u8), 10, RAY).unwrap(),
            RAY * U256::from(1024u16)
        );
        // 1.5^3 = 3.375, rounding half up at each step keeps it exact.
        assert_eq!(
            rpow(RAY * U256::from(3u8) / U256::from(2u8), 3, RAY).unwrap(),
            RAY * U256::from(3375u16) / U256::from(1000u16)
        );
    }

    #[test]
    fn per_second_rates_match_governance_constants() {
        // Constants from the MakerDAO rates table used by executive spells.
        let cases = [
            ("0.06", "1000000001847694957439350562"),
            ("0.04", "1000000001243680656318820312"),
            ("0.05", "1000000001547125957863212448"),
            ("0.1", "1000000003022265980097387650"),
        ];
        for (annual, expected) in cases {
            let rate = per_second_rate(&Fixed::parse_exact(annual).unwrap()).unwrap();
            let expected = ray(expected);
            assert!(
                rate.abs_diff(expected) <= U256::ONE,
                "{annual}: {rate} vs spell constant {expected}"
            );
        }
        assert_eq!(
            per_second_rate(&Fixed::parse_exact("0").unwrap()).unwrap(),
            RAY
        );
    }

    #[test]
    fn fast_divisions_are_exact() {
        let cases = [
            (U256::from(7u8), U256::from(2u8)),
            (U256::MAX, U256::MAX),
            (U256::MAX / U256::from(3u8), U256::MAX / U256::from(7u8)),
            (
                "799990740740740740741333333333000000000000000000000"
                    .parse()
                    .unwrap(),
                "1000011139368930307515943777000000000000000000000000"
                    .parse()
                    .unwrap(),
            ),
            (RAY * RAY, RAY + U256::ONE),
            (U256::from(5u8), U256::from(9u8)),
            (U256::MAX, U256::ONE),
        ];
        for (n, d) in cases {
            assert_eq!(div_small_quotient(n, d), Some(n / d), "{n} / {d}");
            assert_eq!(div_ray(n), n / RAY);
        }
        assert_eq!(div_small_quotient(U256::ONE, U256::ZERO), None);
    }

    proptest::proptest! {
        #[test]
        fn fast_division_matches_ruint(
            n_hi: u128,
            n_lo: u128,
            d_hi: u64,
            d_lo: u128,
            d_shift in 0usize..200,
        ) {
            let n: U256 = (U256::from(n_hi) << 128usize) | U256::from(n_lo);
            let d: U256 = ((U256::from(d_hi) << 128usize) | U256::from(d_lo)) >> d_shift;
            proptest::prop_assume!(!d.is_zero());
            proptest::prop_assert_eq!(div_small_quotient(n, d), Some(n / d));
            proptest::prop_assert_eq!(div_ray(n), n / RAY);
        }
    }

    #[test]
    fn rounding_helpers_round_the_documented_way() {
        let seven = U256::from(7u8);
        let two = U256::from(2u8);
        assert_eq!(
            mul_div(seven, U256::ONE, two, "t").unwrap(),
            U256::from(3u8)
        );
        assert_eq!(
            mul_div_up(seven, U256::ONE, two, "t").unwrap(),
            U256::from(4u8)
        );
        assert_eq!(
            mul_div_up(U256::from(8u8), U256::ONE, two, "t").unwrap(),
            U256::from(4u8)
        );
        assert!(matches!(
            mul_div(seven, seven, U256::ZERO, "zero"),
            Err(EngineError::DivisionByZero { quantity: "zero" })
        ));
        assert!(matches!(
            mul(U256::MAX, two, "big"),
            Err(EngineError::Overflow { quantity: "big" })
        ));
        assert_eq!(decimal(U256::from(1_500_000u64), 6), "1.5");
    }
}
