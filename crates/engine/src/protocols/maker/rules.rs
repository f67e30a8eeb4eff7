//! Maker's liquidation arithmetic as pure functions: `Cat.bite` (liquidations 1.2, Flip
//! auctions) and `Dog.bark` (liquidations 2.0, Clipper auctions), from dss `cat.sol` and `dog.sol`.
//!
//! Units as in the contracts: `ink`, `art`, `chop` wad; `rate`, `spot` ray; `dust`, `dunk`,
//! `hole`, `box`, `room` rad. These functions decide amounts only; they never touch state.

use cascade_events::U256;

use crate::EngineError;
use crate::math::{WAD, div_small_quotient, mul, mul_div};

/// A vault's collateral and normalised debt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Urn {
    /// Collateral, wad.
    pub ink: U256,
    /// Normalised debt, wad.
    pub art: U256,
}

/// `ink * spot < art * rate`: the unsafe test of `Vat.frob`, `Cat.bite` and `Dog.bark`
/// (with `spot > 0`; a zero spot means no price and nothing is liquidatable).
pub fn is_unsafe(urn: Urn, spot: U256, rate: U256) -> Result<bool, EngineError> {
    if spot.is_zero() {
        return Ok(false);
    }
    Ok(mul(urn.ink, spot, "ink * spot")? < mul(urn.art, rate, "art * rate")?)
}

/// `ink * spot / (art * rate)` in wad: below one is unsafe. `None` without debt.
pub fn health(urn: Urn, spot: U256, rate: U256) -> Result<Option<U256>, EngineError> {
    let debt = mul(urn.art, rate, "art * rate")?;
    if debt.is_zero() {
        return Ok(None);
    }
    let value = mul(urn.ink, spot, "ink * spot")?;
    // A health is a small quotient (about one wad): the short division gives the same floor.
    Ok(div_small_quotient(mul(value, WAD, "health")?, debt))
}

/// The highest OSM value (wad) at which `urn` is unsafe, with the Spotter's
/// `spot = val * 10^9 * RAY / mat` (`Spotter.poke`, `par` = 1) and the Vat's unsafe test
/// `ink * spot < art * rate`, all rounded as the contracts round. `None` without debt (never
/// unsafe), without collateral (unsafe at any price), or when no positive value would do.
pub fn break_even_value(urn: Urn, mat: U256, rate: U256) -> Result<Option<U256>, EngineError> {
    let tab = mul(urn.art, rate, "art * rate")?;
    if tab.is_zero() || urn.ink.is_zero() || mat.is_zero() {
        return Ok(None);
    }
    // Unsafe iff spot <= (tab - 1) / ink; spot <= s iff val * 10^36 < (s + 1) * mat.
    let highest_spot = (tab - U256::ONE) / urn.ink;
    let bound = mul(highest_spot + U256::ONE, mat, "spot * mat")?;
    let value = (bound - U256::ONE) / (WAD * WAD);
    Ok((!value.is_zero()).then_some(value))
}

/// Why a liquidation the vault's health would allow is refused by a limit or rounding rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `Cat/liquidation-limit-hit` or `Dog/liquidation-limit-hit`: `box`/`hole`/`Hole` full.
    LimitHit,
    /// `Dog/dusty-auction-from-partial-liquidation`.
    DustyAuction,
    /// `Cat/null-auction` or `Dog/null-auction`: nothing to take.
    NullAuction,
}

impl Refusal {
    /// The contract's revert reason.
    pub fn reason(self) -> &'static str {
        match self {
            Refusal::LimitHit => "liquidation-limit-hit",
            Refusal::DustyAuction => "dusty-auction-from-partial-liquidation",
            Refusal::NullAuction => "null-auction",
        }
    }
}

/// What one bite or bark takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Take {
    /// Collateral moved to the auction, wad.
    pub dink: U256,
    /// Normalised debt removed, wad.
    pub dart: U256,
    /// `dart * rate`: the debt moved to the Vow (rad). `Cat`'s `Bite` event and `Dog`'s `Bark`
    /// event both log this figure (Cat calls it `tab`, Dog `due`).
    pub due: U256,
    /// `due * chop / WAD`: what the auction must raise, penalty included (rad).
    pub tab: U256,
}

impl Take {
    /// The take of `dink` and `dart`: `due = dart * rate`, `tab = due * chop / WAD`.
    fn of(dink: U256, dart: U256, rate: U256, chop: U256) -> Result<Self, EngineError> {
        let due = mul(dart, rate, "dart * rate")?;
        let tab = mul(due, chop, "due * chop")? / WAD;
        Ok(Take {
            dink,
            dart,
            due,
            tab,
        })
    }
}

/// `Cat.bite` (liquidations 1.2): takes at most `dunk` (penalty included) per bite, limited by
/// the room left in the litterbox; the remaining vault may be dusty.
///
/// ```text
/// room = box - litter;  require(litter < box && room >= dust)
/// dart = min(art, min(dunk, room) * WAD / rate / chop)
/// dink = min(ink, ink * dart / art)
/// tab  = dart * rate * chop / WAD
/// ```
pub fn cat_bite(
    urn: Urn,
    rate: U256,
    dust: U256,
    chop: U256,
    dunk: U256,
    room: Option<U256>,
) -> Result<Result<Take, Refusal>, EngineError> {
    match cat_limit(rate, dust, chop, dunk, room)? {
        Ok(limit) => cat_take(urn, rate, chop, limit),
        Err(refusal) => Ok(Err(refusal)),
    }
}

/// The part of [`cat_bite`] that is the same for every vault of an ilk at one moment: the most
/// normalised debt one bite may take, `min(dunk, room) * WAD / rate / chop`, or the refusal of
/// a full litterbox.
pub fn cat_limit(
    rate: U256,
    dust: U256,
    chop: U256,
    dunk: U256,
    room: Option<U256>,
) -> Result<Result<U256, Refusal>, EngineError> {
    let room = match room {
        Some(room) if room.is_zero() || room < dust => return Ok(Err(Refusal::LimitHit)),
        Some(room) => room,
        None => U256::MAX,
    };
    let limit = dunk.min(room);
    Ok(Ok(mul(limit, WAD, "dunk * WAD")?
        / rate
        / chop.max(U256::ONE)))
}

/// [`cat_bite`] of `urn` under its ilk's [`cat_limit`].
pub fn cat_take(
    urn: Urn,
    rate: U256,
    chop: U256,
    limit: U256,
) -> Result<Result<Take, Refusal>, EngineError> {
    let dart = urn.art.min(limit);
    if urn.art.is_zero() {
        return Ok(Err(Refusal::NullAuction));
    }
    let dink = urn
        .ink
        .min(mul_div(urn.ink, dart, urn.art, "ink * dart / art")?);
    if dart.is_zero() || dink.is_zero() {
        return Ok(Err(Refusal::NullAuction));
    }
    Ok(Ok(Take::of(dink, dart, rate, chop)?))
}

/// `Dog.bark` (liquidations 2.0): the whole vault unless `hole`/`Hole` leave less room; a
/// partial bark that would leave a dusty vault takes it all, one that would start a dusty
/// auction is refused.
///
/// ```text
/// require(Hole > Dirt && hole > dirt);  room = min(Hole - Dirt, hole - dirt)
/// dart = min(art, room * WAD / rate / chop)
/// if art > dart: if (art - dart) * rate < dust: dart = art
///                else require(dart * rate >= dust)
/// dink = ink * dart / art;  require(dink > 0)
/// due = dart * rate;  tab = due * chop / WAD
/// ```
pub fn dog_bark(
    urn: Urn,
    rate: U256,
    dust: U256,
    chop: U256,
    room: Option<U256>,
) -> Result<Result<Take, Refusal>, EngineError> {
    if urn.art.is_zero() {
        return Ok(Err(Refusal::NullAuction));
    }
    match dog_limit(rate, chop, room)? {
        Ok(limit) => dog_take(urn, rate, dust, chop, limit),
        Err(refusal) => Ok(Err(refusal)),
    }
}

/// The part of [`dog_bark`] that is the same for every vault of an ilk at one moment: the most
/// normalised debt one bark may take, `room * WAD / rate / chop` (`None`: no limit), or the
/// refusal of a full `hole`/`Hole`.
pub fn dog_limit(
    rate: U256,
    chop: U256,
    room: Option<U256>,
) -> Result<Result<Option<U256>, Refusal>, EngineError> {
    Ok(match room {
        Some(room) if room.is_zero() => Err(Refusal::LimitHit),
        Some(room) => Ok(Some(
            mul(room, WAD, "room * WAD")? / rate / chop.max(U256::ONE),
        )),
        None => Ok(None),
    })
}

/// [`dog_bark`] of `urn` under its ilk's [`dog_limit`].
pub fn dog_take(
    urn: Urn,
    rate: U256,
    dust: U256,
    chop: U256,
    limit: Option<U256>,
) -> Result<Result<Take, Refusal>, EngineError> {
    Ok(match dog_lot(urn, rate, dust, limit)? {
        Ok((dink, dart)) => Ok(Take::of(dink, dart, rate, chop)?),
        Err(refusal) => Err(refusal),
    })
}

/// Whether [`dog_take`] refuses, without forming the take (a check's evidence needs no more);
/// its products are still formed, so an overflow fails as the take's would.
pub fn dog_refusal(
    urn: Urn,
    rate: U256,
    dust: U256,
    chop: U256,
    limit: Option<U256>,
) -> Result<Option<Refusal>, EngineError> {
    Ok(match dog_lot(urn, rate, dust, limit)? {
        Ok((_, dart)) => {
            mul(mul(dart, rate, "dart * rate")?, chop, "due * chop")?;
            None
        }
        Err(refusal) => Some(refusal),
    })
}

/// The collateral and normalised debt (`dink`, `dart`) [`dog_take`] takes.
fn dog_lot(
    urn: Urn,
    rate: U256,
    dust: U256,
    limit: Option<U256>,
) -> Result<Result<(U256, U256), Refusal>, EngineError> {
    if urn.art.is_zero() {
        return Ok(Err(Refusal::NullAuction));
    }
    let mut dart = limit.map_or(urn.art, |limit| urn.art.min(limit));
    if urn.art > dart {
        if mul(urn.art - dart, rate, "(art - dart) * rate")? < dust {
            dart = urn.art;
        } else if mul(dart, rate, "dart * rate")? < dust {
            return Ok(Err(Refusal::DustyAuction));
        }
    }
    // `ink * dart / art` of the whole vault is `ink`; the product is still formed, so an
    // overflow fails as the contract's `mul` reverts.
    let dink = if dart == urn.art {
        mul(urn.ink, dart, "ink * dart / art").map(|_| urn.ink)?
    } else {
        mul_div(urn.ink, dart, urn.art, "ink * dart / art")?
    };
    if dink.is_zero() {
        return Ok(Err(Refusal::NullAuction));
    }
    Ok(Ok((dink, dart)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::math::RAY;

    fn wad(units: u64) -> U256 {
        U256::from(units) * WAD
    }

    fn rad(units: u64) -> U256 {
        wad(units) * RAY
    }

    #[test]
    fn cat_bites_one_dunk_at_a_time() {
        // 100 ETH, 100,000 DAI of debt at rate 1, chop 1.13, dunk 50,000 DAI:
        // dart = 50,000 / 1.13 = 44,247.787610619469026548 DAI of art, tab = dunk.
        let urn = Urn {
            ink: wad(100),
            art: wad(100_000),
        };
        let chop = WAD * U256::from(113u8) / U256::from(100u8);
        let take = cat_bite(urn, RAY, rad(100), chop, rad(50_000), None)
            .unwrap()
            .unwrap();
        assert_eq!(
            take.dart,
            "44247787610619469026548".parse::<U256>().unwrap()
        );
        assert_eq!(take.due, take.dart * RAY);
        // dink = 100 * 44247.78.. / 100000 = 44.247787610619469026 ETH
        assert_eq!(take.dink, "44247787610619469026".parse::<U256>().unwrap());
        assert!(rad(50_000) - take.tab < RAY * U256::from(2u8));
        // A full litterbox refuses.
        assert_eq!(
            cat_bite(urn, RAY, rad(100), chop, rad(50_000), Some(rad(99))).unwrap(),
            Err(Refusal::LimitHit)
        );
    }

    #[test]
    fn dog_barks_whole_vault_or_the_hole_with_dust_rules() {
        let urn = Urn {
            ink: wad(10),
            art: wad(20_000),
        };
        let chop = WAD * U256::from(113u8) / U256::from(100u8);
        let rate = RAY + RAY / U256::from(10u8); // 1.1: debt 22,000 DAI
        let whole = dog_bark(urn, rate, rad(15_000), chop, None)
            .unwrap()
            .unwrap();
        assert_eq!((whole.dink, whole.dart), (urn.ink, urn.art));
        assert_eq!(whole.due, rad(22_000));
        assert_eq!(whole.tab, rad(24_860));
        // Room for 11,300 DAI of tab: dart = 11,300 / 1.1 / 1.13 = 9,090.9.. art; the rest
        // (10,909 art = 12,000 DAI) is under the 15,000 dust: take everything.
        let dusty_rest = dog_bark(urn, rate, rad(15_000), chop, Some(rad(11_300)))
            .unwrap()
            .unwrap();
        assert_eq!(dusty_rest.dart, urn.art);
        // With dust 5,000 the partial bark stands: dart = 9,090.909.. art.
        let partial = dog_bark(urn, rate, rad(5_000), chop, Some(rad(11_300)))
            .unwrap()
            .unwrap();
        assert_eq!(
            partial.dart,
            "9090909090909090909090".parse::<U256>().unwrap()
        );
        assert_eq!(partial.dink, urn.ink * partial.dart / urn.art);
        // Room for only 1,130 DAI of tab: a 1,000 DAI auction under the 5,000 dust is refused.
        assert_eq!(
            dog_bark(urn, rate, rad(5_000), chop, Some(rad(1_130))).unwrap(),
            Err(Refusal::DustyAuction)
        );
        assert_eq!(
            dog_bark(urn, rate, rad(5_000), chop, Some(U256::ZERO)).unwrap(),
            Err(Refusal::LimitHit)
        );
    }

    #[test]
    fn unsafe_is_strict_and_needs_a_price() {
        let urn = Urn {
            ink: wad(1),
            art: wad(1000),
        };
        // spot 1000 DAI/ETH exactly at rate 1: ink * spot == art * rate, not unsafe.
        assert!(!is_unsafe(urn, RAY * U256::from(1000u16), RAY).unwrap());
        assert!(is_unsafe(urn, RAY * U256::from(999u16), RAY).unwrap());
        assert!(!is_unsafe(urn, U256::ZERO, RAY).unwrap());
        assert_eq!(
            health(urn, RAY * U256::from(500u16), RAY).unwrap(),
            Some(WAD / U256::from(2u8))
        );
    }

    /// `Dog.bark` as dog.sol writes it, in one piece: what the split into [`dog_limit`] and
    /// [`dog_take`] must reproduce.
    fn dog_bark_in_one_piece(
        urn: Urn,
        rate: U256,
        dust: U256,
        chop: U256,
        room: Option<U256>,
    ) -> Result<Take, Refusal> {
        if urn.art.is_zero() {
            return Err(Refusal::NullAuction);
        }
        let mut dart = match room {
            Some(room) if room.is_zero() => return Err(Refusal::LimitHit),
            Some(room) => urn.art.min(room * WAD / rate / chop),
            None => urn.art,
        };
        if urn.art > dart {
            if (urn.art - dart) * rate < dust {
                dart = urn.art;
            } else if dart * rate < dust {
                return Err(Refusal::DustyAuction);
            }
        }
        let dink = urn.ink * dart / urn.art;
        if dink.is_zero() {
            return Err(Refusal::NullAuction);
        }
        let due = dart * rate;
        Ok(Take {
            dink,
            dart,
            due,
            tab: due * chop / WAD,
        })
    }

    proptest::proptest! {
        #[test]
        fn dog_bark_is_the_contracts_bark(
            ink in 0u128..1_000_000_000_000_000_000_000_000,
            art in 0u128..1_000_000_000_000_000_000_000_000_000,
            rate_extra in 0u64..1_000_000_000_000_000_000,
            dust_dai in 0u64..100_000,
            room_dai in proptest::option::of(0u64..10_000_000),
        ) {
            let urn = Urn { ink: U256::from(ink), art: U256::from(art) };
            let rate = RAY + U256::from(rate_extra) * U256::from(1_000_000_000u64);
            let chop = WAD * U256::from(113u8) / U256::from(100u8);
            let (dust, room) = (rad(dust_dai), room_dai.map(rad));
            let bark = dog_bark(urn, rate, dust, chop, room).unwrap();
            proptest::prop_assert_eq!(bark, dog_bark_in_one_piece(urn, rate, dust, chop, room));
            if let (Ok(limit), false) = (dog_limit(rate, chop, room).unwrap(), urn.art.is_zero()) {
                proptest::prop_assert_eq!(
                    dog_refusal(urn, rate, dust, chop, limit).unwrap(),
                    bark.err()
                );
            }
        }

        #[test]
        fn health_is_the_exact_quotient(
            ink in 0u128..1_000_000_000_000_000_000_000_000,
            art in 1u128..1_000_000_000_000_000_000_000_000_000,
            spot_extra in 0u64..u64::MAX,
            rate_extra in 0u64..1_000_000_000_000_000_000,
        ) {
            let urn = Urn { ink: U256::from(ink), art: U256::from(art) };
            let spot = U256::from(spot_extra) * U256::from(1_000_000_000_000u64);
            let rate = RAY + U256::from(rate_extra) * U256::from(1_000_000_000u64);
            let exact = urn.ink * spot * WAD / (urn.art * rate);
            proptest::prop_assert_eq!(health(urn, spot, rate).unwrap(), Some(exact));
        }

        #[test]
        fn break_even_is_the_last_unsafe_value(
            ink in 1u128..1_000_000_000_000_000_000_000_000,
            art in 1u128..1_000_000_000_000_000_000_000_000_000,
            rate_extra in 0u64..1_000_000_000_000_000_000,
            mat_extra in 0u64..2_000_000_000_000_000_000,
        ) {
            let urn = Urn { ink: U256::from(ink), art: U256::from(art) };
            let rate = crate::math::RAY + U256::from(rate_extra) * U256::from(1_000_000_000u64);
            let mat = crate::math::RAY + U256::from(mat_extra) * U256::from(1_000_000_000u64);
            let spot = |val: U256| val * crate::math::BLN * crate::math::RAY / mat;
            if let Some(value) = break_even_value(urn, mat, rate).unwrap() {
                proptest::prop_assert!(is_unsafe(urn, spot(value), rate).unwrap());
                proptest::prop_assert!(!is_unsafe(urn, spot(value + U256::ONE), rate).unwrap());
            }
        }
    }
}
