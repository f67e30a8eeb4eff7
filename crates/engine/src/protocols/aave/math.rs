//! Aave's fixed-point arithmetic: `WadRayMath` and `PercentageMath`, bit for bit.
//!
//! Every function here mirrors one library function of `aave/protocol-v2`
//! (`contracts/protocol/libraries/math/WadRayMath.sol`, `PercentageMath.sol`), whose results the
//! v3 assembly versions (`aave-v3-core`, `aave-v3-origin` up to v3.3) reproduce exactly: products
//! and quotients round **half up**, never to nearest-even, never down. A function returns `None`
//! exactly where the contract reverts (division by zero, a product that would not fit 256 bits),
//! so callers can tell "the transaction would have failed" from a result.
//!
//! This module must never round differently from the contracts, and never use floats.

use cascade_events::U256;

use crate::lending::ConstDivisor;

const fn u256(value: u128) -> U256 {
    U256::from_limbs([value as u64, (value >> 64) as u64, 0, 0])
}

/// One wad (1e18, the precision of health factors and, in v2, ETH-denominated prices) and one ray
/// (1e27, the precision of liquidity and borrow indices): the engine's own.
pub use crate::math::{RAY, WAD};
/// Half a wad, the rounding term of `wadMul`.
pub const HALF_WAD: U256 = u256(500_000_000_000_000_000);
/// Half a ray, the rounding term of `rayMul`.
pub const HALF_RAY: U256 = u256(500_000_000_000_000_000_000_000_000);
/// `PERCENTAGE_FACTOR`: 100.00% in basis points.
pub const PERCENTAGE_FACTOR: U256 = u256(10_000);
/// `HALF_PERCENT`, the rounding term of `percentMul`.
pub const HALF_PERCENT: U256 = u256(5_000);

/// `WadRayMath.wadMul`: `(a * b + WAD/2) / WAD`; zero when either side is zero.
pub fn wad_mul(a: U256, b: U256) -> Option<U256> {
    half_up_mul(a, b, WAD, HALF_WAD)
}

/// `WadRayMath.wadDiv`: `(a * WAD + b/2) / b`; `None` when `b` is zero.
pub fn wad_div(a: U256, b: U256) -> Option<U256> {
    half_up_div(a, b, WAD)
}

/// `WadRayMath.rayMul`: `(a * b + RAY/2) / RAY`; zero when either side is zero. This is how an
/// aToken or debt token turns a scaled balance into a balance (`balanceOf`).
pub fn ray_mul(a: U256, b: U256) -> Option<U256> {
    half_up_mul(a, b, RAY, HALF_RAY)
}

/// `WadRayMath.rayDiv`: `(a * RAY + b/2) / b`; `None` when `b` is zero. This is how an aToken or
/// debt token turns an amount into the scaled amount it mints or burns.
pub fn ray_div(a: U256, b: U256) -> Option<U256> {
    half_up_div(a, b, RAY)
}

/// `PercentageMath.percentMul`: `(value * percentage + 5000) / 10000`, `percentage` in basis
/// points; zero when either side is zero.
pub fn percent_mul(value: U256, percentage: U256) -> Option<U256> {
    half_up_mul(value, percentage, PERCENTAGE_FACTOR, HALF_PERCENT)
}

/// `PercentageMath.percentDiv`: `(value * 10000 + percentage/2) / percentage`; `None` when
/// `percentage` is zero.
pub fn percent_div(value: U256, percentage: U256) -> Option<U256> {
    half_up_div(value, percentage, PERCENTAGE_FACTOR)
}

/// `(a * b + half) / unit` with the contracts' overflow guard `a <= (MAX - half) / b`, which
/// holds exactly when `a * b + half` fits 256 bits: checking the product and the sum is the same
/// test without the guard's division (this runs once per account on the liquidation walk).
fn half_up_mul(a: U256, b: U256, unit: U256, half: U256) -> Option<U256> {
    if a.is_zero() || b.is_zero() {
        return Some(U256::ZERO);
    }
    let rounded = a.checked_mul(b)?.checked_add(half)?;
    // The three units through their precomputed reciprocals (a ray is 2^27 * 5^27: floor of
    // floors is the floor); the quotient is the same as plain division.
    Some(if unit == RAY {
        RAY_ODD_PART.div(rounded >> 27usize)
    } else if unit == WAD {
        WAD_DIVISOR.div(rounded)
    } else if unit == PERCENTAGE_FACTOR {
        PERCENT_DIVISOR.div(rounded)
    } else {
        rounded / unit
    })
}

/// 5^27, the odd part of a ray.
const RAY_ODD_PART: ConstDivisor = ConstDivisor::new(7_450_580_596_923_828_125);
const WAD_DIVISOR: ConstDivisor = ConstDivisor::new(1_000_000_000_000_000_000);
const PERCENT_DIVISOR: ConstDivisor = ConstDivisor::new(10_000);

/// `(a * unit + b/2) / b` with the contracts' guard `a <= (MAX - b/2) / unit`, tested as
/// "`a * unit + b/2` fits 256 bits" (the same condition, without a division).
fn half_up_div(a: U256, b: U256, unit: U256) -> Option<U256> {
    if b.is_zero() {
        return None;
    }
    let half_b = b >> 1usize;
    crate::math::div_small_quotient(a.checked_mul(unit)?.checked_add(half_b)?, b)
}

/// `10^decimals` as a token's unit (`assetUnit` in `GenericLogic`); `None` past 10^77.
pub fn unit(decimals: u8) -> Option<U256> {
    cascade_events::pow10(decimals)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn u(value: u128) -> U256 {
        U256::from(value)
    }

    #[test]
    fn constants_are_the_contract_constants() {
        assert_eq!(WAD, u(10u128.pow(18)));
        assert_eq!(HALF_WAD, u(5 * 10u128.pow(17)));
        assert_eq!(RAY, u(10u128.pow(27)));
        assert_eq!(HALF_RAY, u(5 * 10u128.pow(26)));
        assert_eq!(unit(6), Some(u(1_000_000)));
        assert_eq!(unit(77).map(|x| x > U256::ZERO), Some(true));
        assert_eq!(unit(78), None);
    }

    #[test]
    fn ray_mul_rounds_half_up() {
        // 1.5e-27 * 1 ray: exactly half a unit rounds up to 2 base units? (3 * RAY/2 + RAY/2)/RAY
        // = 2. And 1 * 0.5 ray = (RAY/2 + RAY/2) / RAY = 1: the half rounds up, not to even.
        assert_eq!(ray_mul(u(1), HALF_RAY), Some(u(1)));
        assert_eq!(ray_mul(u(1), HALF_RAY - u(1)), Some(u(0)));
        assert_eq!(ray_mul(u(3), HALF_RAY), Some(u(2)));
        // A balance of 100 tokens (18 decimals) at liquidity index 1.0234567891234567891234567891.
        let index = U256::from_str_radix("1023456789123456789123456789", 10).unwrap();
        let scaled = u(100 * 10u128.pow(18));
        // 1e20 * 1.023456789123456789123456789e27 = 1.023456789123456789123456789e47; / 1e27 =
        // 102345678912345678912.3456789 -> 102345678912345678912 (fraction < .5).
        assert_eq!(ray_mul(scaled, index), Some(u(102_345_678_912_345_678_912)));
        assert_eq!(ray_mul(U256::ZERO, index), Some(U256::ZERO));
        assert_eq!(ray_mul(U256::MAX, u(2)), None);
    }

    #[test]
    fn ray_div_rounds_half_up_with_half_of_divisor() {
        // 1 / 3 ray: (1e27 + 1) / 3 = 333333333333333333333333333.67 -> 333...333.
        assert_eq!(
            ray_div(u(1), u(3)),
            Some(U256::from_str_radix("333333333333333333333333333", 10).unwrap())
        );
        // 2 / 3 ray: (2e27 + 1) / 3 = 666...667 (the half of b = 1 pushes it over).
        assert_eq!(
            ray_div(u(2), u(3)),
            Some(U256::from_str_radix("666666666666666666666666667", 10).unwrap())
        );
        // Scaling 5 wei by index 2 ray: (5e27 + 1e27) / 2e27 = 3: the burn of 5 wei burns 3 scaled.
        assert_eq!(ray_div(u(5), u(2) * RAY), Some(u(3)));
        assert_eq!(ray_div(u(1), U256::ZERO), None);
        assert_eq!(ray_div(U256::MAX, u(1)), None);
    }

    #[test]
    fn wad_math_matches_contract() {
        // Health factor 0.5 * 3 = 1.5 exactly; 1 wei * 0.5 rounds up.
        assert_eq!(
            wad_mul(u(5 * 10u128.pow(17)), u(3 * 10u128.pow(18))),
            Some(u(15 * 10u128.pow(17)))
        );
        assert_eq!(wad_mul(u(1), HALF_WAD), Some(u(1)));
        assert_eq!(wad_mul(u(1), HALF_WAD - u(1)), Some(u(0)));
        // 2 / 3 in wad: (2e18 + 1) / 3 = 666666666666666667.
        assert_eq!(wad_div(u(2), u(3)), Some(u(666_666_666_666_666_667)));
        assert_eq!(wad_div(u(1), u(3)), Some(u(333_333_333_333_333_333)));
        assert_eq!(wad_div(u(1), U256::ZERO), None);
    }

    #[test]
    fn percent_math_matches_contract() {
        // 50% of 3 wei: (15000 + 5000) / 10000 = 2: the close factor of an odd debt rounds up.
        assert_eq!(percent_mul(u(3), u(5000)), Some(u(2)));
        assert_eq!(percent_mul(u(1), u(4999)), Some(u(0)));
        assert_eq!(percent_mul(u(1), u(5000)), Some(u(1)));
        // 105% bonus: 1000 * 10500 / 10000 = 1050.
        assert_eq!(percent_mul(u(1000), u(10500)), Some(u(1050)));
        assert_eq!(percent_mul(u(0), u(10500)), Some(u(0)));
        assert_eq!(percent_mul(u(7), u(0)), Some(u(0)));
        // percentDiv by the bonus: (1050 * 10000 + 5250) / 10500 = 1000.
        assert_eq!(percent_div(u(1050), u(10500)), Some(u(1000)));
        // (1 * 10000 + 5250) / 10500 = 1: rounds half up using half the divisor.
        assert_eq!(percent_div(u(1), u(10500)), Some(u(1)));
        assert_eq!(percent_div(u(1), U256::ZERO), None);
        assert_eq!(percent_mul(U256::MAX, u(2)), None);
    }

    proptest! {
        #[test]
        fn ray_div_then_mul_is_within_one_unit(amount in 0u128..u128::MAX / 4, index_extra in 0u128..10u128.pow(27)) {
            // A deposit minted with rayDiv and read back with rayMul differs from the amount by at
            // most one base unit whenever the index is at least one ray (it only grows from 1 ray).
            let index = RAY + U256::from(index_extra);
            let scaled = ray_div(U256::from(amount), index).unwrap();
            let back = ray_mul(scaled, index).unwrap();
            let diff = if back > U256::from(amount) { back - U256::from(amount) } else { U256::from(amount) - back };
            prop_assert!(diff <= U256::from(1u8));
        }

        #[test]
        fn checked_forms_equal_the_contract_guards(
            a_hi: u128, a_lo: u128, b_hi in 0u128..4, b_lo: u128, shift in 0usize..256,
        ) {
            // The contracts test `a <= (MAX - half) / b` (and `a <= (MAX - b/2) / unit`) before
            // multiplying; the checked product-and-sum must refuse exactly the same inputs and
            // give the same quotients, including near the 256-bit edge.
            let a = ((U256::from(a_hi) << 128usize) | U256::from(a_lo)) >> shift;
            let b = (U256::from(b_hi) << 128usize) | U256::from(b_lo);
            for (unit, half) in [(RAY, HALF_RAY), (WAD, HALF_WAD), (PERCENTAGE_FACTOR, HALF_PERCENT)] {
                let guarded = if a.is_zero() || b.is_zero() {
                    Some(U256::ZERO)
                } else if a > (U256::MAX - half) / b {
                    None
                } else {
                    Some((a * b + half) / unit)
                };
                prop_assert_eq!(half_up_mul(a, b, unit, half), guarded);
                let guarded = if b.is_zero() || a > (U256::MAX - b / U256::from(2u8)) / unit {
                    None
                } else {
                    Some((a * unit + b / U256::from(2u8)) / b)
                };
                prop_assert_eq!(half_up_div(a, b, unit), guarded);
            }
        }

        #[test]
        fn percent_mul_is_nearest_with_ties_up(value in any::<u64>(), pct in 0u64..=20_000) {
            let exact = u128::from(value) * u128::from(pct);
            let got = percent_mul(U256::from(value), U256::from(pct)).unwrap();
            let floor = exact / 10_000;
            let expected = if exact % 10_000 >= 5_000 { floor + 1 } else { floor };
            prop_assert_eq!(got, U256::from(expected));
        }
    }
}
