//! The monitor's division-free exposure test against the health factor.

use proptest::prelude::*;

use super::*;

fn side(price: u128, decimals: u8, threshold: u16, index: u128) -> Side {
    let unit = unit(decimals).unwrap();
    Side {
        price: U256::from(price),
        unit,
        per_unit: Divisor::of(unit).unwrap(),
        threshold,
        index: U256::from(index),
    }
}

#[test]
fn a_health_factor_of_exactly_one_is_not_exposed() {
    let ray = 10u128.pow(27);
    let view = PairView {
        c: side(1, 0, 10_000, ray),
        d: side(1, 0, 0, ray),
    };
    let exposed = |scaled_collateral, scaled_debt| {
        view.exposed(&Member {
            scaled_collateral,
            scaled_debt,
        })
        .unwrap()
        .map(|exposed| exposed.debt_base)
    };
    assert_eq!(exposed(1_000_000, 1_000_000), None);
    assert_eq!(
        exposed(1_000_000, 1_000_001),
        Some(U256::from(1_000_001u64))
    );
    assert_eq!(exposed(1_000_000, 0), None);
    // `wadDiv` rounds half up: (2e18 - 1) * 1e18 + 1e18 over 2e18 is exactly 1 wad, where
    // the comparison's two sides are equal.
    let wad = 10u128.pow(18);
    assert_eq!(exposed(2 * wad - 1, 2 * wad), None);
    assert_eq!(exposed(2 * wad - 2, 2 * wad), Some(U256::from(2 * wad)));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2_000))]

    /// The division-free test gives what the health factor gives, near the boundary too:
    /// the debt is drawn around the collateral's weighted value.
    #[test]
    fn the_exposure_without_division_is_the_health_factors(
        prices in (1u128..10u128.pow(30), 1u128..10u128.pow(30)),
        decimals in (0u8..28, 0u8..28),
        threshold in 0u16..=10_000,
        indices in (10u128.pow(27)..2 * 10u128.pow(27), 10u128.pow(27)..2 * 10u128.pow(27)),
        scaled_collateral in 0u128..10u128.pow(30),
        ratio_ppm in 0u128..2_000_000,
        scaled_debt in 0u128..10u128.pow(30),
        near in any::<bool>(),
    ) {
        let view = PairView {
            c: side(prices.0, decimals.0, threshold, indices.0),
            d: side(prices.1, decimals.1, 0, indices.1),
        };
        // Near the boundary: a debt worth `ratio_ppm` of the weighted collateral.
        let scaled_debt = if near {
            let worth = U256::from(scaled_collateral) * U256::from(prices.0)
                * U256::from(threshold) * U256::from(ratio_ppm)
                * view.d.unit / (view.c.unit * U256::from(prices.1) * U256::from(10_000_000_000u64));
            u128::try_from(worth).unwrap_or(u128::MAX)
        } else {
            scaled_debt
        };
        let member = Member { scaled_collateral, scaled_debt };
        let by_health = view.liquidatable(&member).map(|found| {
            found.map(|data| (data.total_collateral_base, data.total_debt_base))
        });
        let by_comparison = view.exposed(&member).map(|found| {
            found.map(|exposed| (exposed.collateral_base, exposed.debt_base))
        });
        match (by_health, by_comparison) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(_), Err(_)) => {}
            (a, b) => prop_assert!(false, "{a:?} against {b:?}"),
        }
    }
}
