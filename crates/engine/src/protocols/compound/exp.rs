//! Compound's `Exp` fixed-point arithmetic (mantissas scaled by 1e18), bit for bit.
//!
//! Compound v2 has two generations of this library, and they round differently:
//! - `Exponential.sol` (CarefulMath, the Comptroller implementations deployed before the
//!   December 2020 rewrite): `mulExp` of two `Exp`s adds half a unit before dividing, so it
//!   rounds **half up**.
//! - `ExponentialNoError.sol` (every Comptroller and cToken since): `mul_(Exp, Exp)` **truncates**.
//!
//! Division (`div_`/`divExp`) and the scalar helpers (`mul_ScalarTruncate`, `truncate`) truncate
//! in both. [`Rounding`] selects the generation; everything else is shared. Functions return
//! `None` exactly where the contract reverts or reports a `MathError` (overflow, division by
//! zero). This module must never round in any other way, and never use floats.

use cascade_events::U256;

use crate::lending::ConstDivisor;

/// `expScale`: one as an `Exp` mantissa, 1e18 (one wad).
pub const EXP_SCALE: U256 = crate::math::WAD;

/// `halfExpScale`, the rounding term of the old `mulExp`.
const HALF_EXP_SCALE: U256 = U256::from_limbs([500_000_000_000_000_000, 0, 0, 0]);

/// Which `Exp` library the Comptroller in force used for products of two mantissas.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Rounding {
    /// `Exponential.mulExp`: `(a * b + 0.5e18) / 1e18`.
    HalfUp,
    /// `ExponentialNoError.mul_(Exp, Exp)`: `a * b / 1e18`.
    #[default]
    Truncate,
}

/// The product of two mantissas as the selected library computes it (`mulExp` / `mul_`).
pub fn mul_exp(a: U256, b: U256, rounding: Rounding) -> Option<U256> {
    let product = a.checked_mul(b)?;
    match rounding {
        Rounding::HalfUp => Some(EXP_DIVISOR.div(product.checked_add(HALF_EXP_SCALE)?)),
        Rounding::Truncate => Some(EXP_DIVISOR.div(product)),
    }
}

/// Division by [`EXP_SCALE`] through its precomputed reciprocal (the same quotient as `/`).
const EXP_DIVISOR: ConstDivisor = ConstDivisor::new(1_000_000_000_000_000_000);

/// `div_(Exp a, Exp b)` / `divExp`: `a * 1e18 / b`, truncated.
pub fn div_exp(a: U256, b: U256) -> Option<U256> {
    if b.is_zero() {
        return None;
    }
    Some(a.checked_mul(EXP_SCALE)? / b)
}

/// `mul_ScalarTruncate(Exp a, scalar)`: `a * scalar / 1e18`, truncated. Also `mul_(uint, Exp)`,
/// which computes the same.
pub fn mul_scalar_truncate(a: U256, scalar: U256) -> Option<U256> {
    Some(EXP_DIVISOR.div(a.checked_mul(scalar)?))
}

/// `div_(uint a, Exp b)` / `divScalarByExpTruncate`: `a * 1e18 / b`, truncated: underlying to
/// cTokens at an exchange rate.
pub fn div_scalar_by_exp(a: U256, b: U256) -> Option<U256> {
    div_exp(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(value: u128) -> U256 {
        U256::from(value)
    }

    #[test]
    fn the_two_generations_differ_only_on_the_half() {
        // 1.5e-18 * 1: the old library gives 2e-18, the new one 1e-18.
        let a = u(3);
        let b = u(500_000_000_000_000_000);
        assert_eq!(mul_exp(a, b, Rounding::HalfUp), Some(u(2)));
        assert_eq!(mul_exp(a, b, Rounding::Truncate), Some(u(1)));
        // Exact products agree: 1.08 * 2000 = 2160.
        let incentive = u(1_080_000_000_000_000_000);
        let price = u(2_000_000_000_000_000_000_000);
        for rounding in [Rounding::HalfUp, Rounding::Truncate] {
            assert_eq!(
                mul_exp(incentive, price, rounding),
                Some(u(2_160_000_000_000_000_000_000))
            );
        }
        assert_eq!(mul_exp(U256::MAX, u(2), Rounding::Truncate), None);
    }

    #[test]
    fn division_and_scalars_truncate() {
        // 2 / 3 = 0.666...: mantissa 666666666666666666, never ...667.
        assert_eq!(div_exp(u(2), u(3)), Some(u(666_666_666_666_666_666)));
        assert_eq!(div_exp(u(2), u(0)), None);
        // 0.9999...9 (1e18 - 1) times 1 token unit truncates to 0.
        assert_eq!(mul_scalar_truncate(EXP_SCALE - u(1), u(1)), Some(u(0)));
        // 1 USDC (1e6) at exchange rate 0.02e16 (2e14 mantissa, 8-decimal cToken over 6-decimal
        // underlying): 1e6 * 1e18 / 2e14 = 5e9 cToken units = 50 cUSDC.
        assert_eq!(
            div_scalar_by_exp(u(1_000_000), u(200_000_000_000_000)),
            Some(u(5_000_000_000))
        );
    }
}
