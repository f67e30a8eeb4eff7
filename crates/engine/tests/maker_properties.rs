//! Property tests of the Maker model: whatever the sequence of vault actions, price moves and
//! liquidations, collateral and debt move only by the protocol's rules, nothing goes negative,
//! a liquidation never takes more than `Cat.bite`/`Dog.bark` allow, and the index finds exactly
//! the vaults a full scan finds.

// Helpers outside `#[test]` functions build fixed, valid inputs.
#![allow(clippy::unwrap_used)]

use cascade_engine::math::{RAY, WAD};
use cascade_engine::protocols::maker::{MakerConfig, MakerModel};
use cascade_engine::{LiquidatorChoice, PriceBook, ProtocolModel};
use cascade_events::{
    Amount, Event, Fixed, Id, ParamChange, Payload, PositionChange, PriceUpdate, Protocol, Symbol,
    Timestamp, U256,
};
use proptest::prelude::*;

const VAULTS: u64 = 4;

#[derive(Clone, Debug)]
enum Op {
    Deposit(u64, u64),
    Withdraw(u64, u64),
    Borrow(u64, u64),
    Repay(u64, u64),
    Price(u64),
    Wait(i64),
    Liquidate,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..VAULTS, 1u64..100).prop_map(|(v, eth)| Op::Deposit(v, eth)),
        (0..VAULTS, 1u64..120).prop_map(|(v, eth)| Op::Withdraw(v, eth)),
        (0..VAULTS, 1_000u64..150_000).prop_map(|(v, dai)| Op::Borrow(v, dai)),
        (0..VAULTS, 1_000u64..150_000).prop_map(|(v, dai)| Op::Repay(v, dai)),
        (300u64..4_000).prop_map(Op::Price),
        (1i64..20_000).prop_map(Op::Wait),
        Just(Op::Liquidate),
    ]
}

fn ilk() -> Id {
    Id::name("ETH-B")
}

fn event(time: i64, payload: Payload) -> Event {
    Event::at(1, Timestamp(time), payload)
}

/// `tokens` whole units of `unit` base units each (`WAD`, or more for balances beyond 128 bits).
fn change(vault: u64, asset: &str, tokens: u64, unit: U256) -> PositionChange {
    PositionChange {
        protocol: Protocol::Maker,
        market: ilk(),
        account: Id::Number(vault),
        asset: Id::name(asset),
        amount: Amount(U256::from(tokens) * unit),
        shares: None,
    }
}

fn param(model: &mut MakerModel, name: &str, value: &str) {
    let change = ParamChange {
        protocol: Protocol::Maker,
        market: ilk(),
        param: Symbol::new(name).unwrap(),
        value: Fixed::parse_exact(value).unwrap(),
    };
    model
        .apply(
            &event(0, Payload::ParamChange(Box::new(change))),
            &PriceBook::default(),
        )
        .unwrap();
}

/// Total collateral (wad) and normalised debt (`art`, wad) over the vaults.
fn totals(model: &MakerModel) -> (U256, U256) {
    (0..VAULTS)
        .filter_map(|v| model.vault(&ilk(), &Id::Number(v)))
        .fold((U256::ZERO, U256::ZERO), |(i, a), view| {
            (i + view.ink, a + view.art)
        })
}

/// Base units per whole token of collateral, and the decimals of the price's integer value.
#[derive(Clone, Copy)]
struct Units {
    collateral: U256,
    price_decimals: u8,
}

/// Ordinary balances: 18-decimal collateral, whole-dollar prices.
const ORDINARY: Units = Units {
    collateral: WAD,
    price_decimals: 0,
};

/// Collateral balances beyond `2^128` base units (`1e39` per token), priced at `1e-20` dollar
/// per token unit so vaults still hover around the liquidation ratio.
fn wide() -> Units {
    Units {
        collateral: WAD * U256::from(10u8).pow(U256::from(21u8)),
        price_decimals: 20,
    }
}

fn run(ops: &[Op], dog: bool, hole: u64, units: Units) -> Result<(), TestCaseError> {
    let mut model = MakerModel::new(MakerConfig {
        hop: 0,
        ..MakerConfig::default()
    });
    let mut book = PriceBook::default();
    param(&mut model, "SPOTTER.ilks.mat", "1.5");
    param(&mut model, "JUG.ilks.duty", "0.05");
    param(&mut model, "VAT.ilks.dust", "1000");
    if dog {
        param(&mut model, "DOG.ilks.chop", "0.13");
        param(&mut model, "DOG.ilks.hole", &hole.to_string());
    } else {
        param(&mut model, "CAT.ilks.chop", "0.13");
        param(&mut model, "CAT.ilks.dunk", "50000");
    }
    let mut time = 1;
    let mut deposited = U256::ZERO;
    let mut changes = Vec::new();
    let mut tracked = std::collections::BTreeSet::new();
    model.advance(Timestamp(time), &book).unwrap();
    let price = |value: u64| PriceUpdate {
        asset: Id::name("WETH"),
        quote: Id::name("USD"),
        price: Fixed::new(U256::from(value), units.price_decimals),
        feed: Id::name("test"),
        round: None,
    };
    let update = price(2000);
    book.record(&update, Timestamp(time));
    model.on_price(&update, Timestamp(time), &book).unwrap();
    for op in ops {
        // One action per second: every action is settled by the Vat rules before the next.
        time += 1;
        model.advance(Timestamp(time), &book).unwrap();
        let (ink_before, art_before) = totals(&model);
        let mut seized = U256::ZERO;
        let mut withdrawn = U256::ZERO;
        match op {
            Op::Deposit(v, eth) => {
                deposited += U256::from(*eth) * units.collateral;
                model
                    .apply(
                        &event(
                            time,
                            Payload::Deposit(Box::new(change(*v, "ETH", *eth, units.collateral))),
                        ),
                        &book,
                    )
                    .unwrap();
            }
            Op::Withdraw(v, eth) => {
                let ink = model
                    .vault(&ilk(), &Id::Number(*v))
                    .map_or(U256::ZERO, |view| view.ink);
                withdrawn = ink.min(U256::from(*eth) * units.collateral);
                model
                    .apply(
                        &event(
                            time,
                            Payload::Withdraw(Box::new(change(*v, "ETH", *eth, units.collateral))),
                        ),
                        &book,
                    )
                    .unwrap();
            }
            Op::Borrow(v, dai) => {
                model
                    .apply(
                        &event(
                            time,
                            Payload::Borrow(Box::new(change(*v, "DAI", *dai, WAD))),
                        ),
                        &book,
                    )
                    .unwrap();
                let (_, art_after) = totals(&model);
                let view = model.vault(&ilk(), &Id::Number(*v)).unwrap();
                // A draw adds `ceil(dai * RAY / rate)` of art: the vault owes at least the DAI
                // drawn, and less than one unit of art more. `owed` estimates the rate from the
                // view, truncated to a ray: off by up to `added / RAY` more.
                let added = art_after - art_before;
                let owed = added * (view.debt * RAY / view.art.max(U256::ONE)) / RAY;
                let slack = added / RAY + U256::from(2u8);
                prop_assert!(added > U256::ZERO);
                prop_assert!(owed + slack >= U256::from(*dai) * WAD, "{owed}");
            }
            Op::Repay(v, dai) => {
                model
                    .apply(
                        &event(time, Payload::Repay(Box::new(change(*v, "DAI", *dai, WAD)))),
                        &book,
                    )
                    .unwrap();
                let (_, art_after) = totals(&model);
                prop_assert!(art_after <= art_before);
            }
            Op::Price(value) => {
                let update = price(*value);
                if book.record(&update, Timestamp(time)).is_some() {
                    model.on_price(&update, Timestamp(time), &book).unwrap();
                }
            }
            Op::Wait(seconds) => {
                time += seconds;
                model.advance(Timestamp(time), &book).unwrap();
                let (ink_after, art_after) = totals(&model);
                // Time alone moves no collateral and no normalised debt (interest is the rate's);
                // only the Vat rules settle what the previous second left.
                prop_assert_eq!(ink_after, ink_before);
                prop_assert!(art_after <= art_before);
            }
            Op::Liquidate => {
                let mut candidates = Vec::new();
                model
                    .liquidatable(Timestamp(time), &mut candidates)
                    .unwrap();
                let mut scanned = model.unsafe_by_full_scan(Timestamp(time)).unwrap();
                let mut indexed: Vec<(Id, Id)> =
                    candidates.iter().map(|c| (c.market, c.account)).collect();
                scanned.sort();
                indexed.sort();
                prop_assert_eq!(&indexed, &scanned);
                // The incrementally kept set (status changes, risk counts) agrees as well.
                changes.clear();
                prop_assert!(model.unsafe_changes(Timestamp(time), &mut changes).unwrap());
                for (market, account, now) in changes.drain(..) {
                    if now {
                        tracked.insert((market, account));
                    } else {
                        tracked.remove(&(market, account));
                    }
                }
                prop_assert_eq!(tracked.iter().copied().collect::<Vec<_>>(), scanned.clone());
                let mut risks = Vec::new();
                model.risk(Timestamp(time), &mut risks).unwrap();
                prop_assert_eq!(risks[0].accounts_unsafe, scanned.len() as u64);
                for candidate in &candidates {
                    prop_assert!(candidate.health < WAD);
                    let view = model.vault(&ilk(), &candidate.account).unwrap();
                    let (ink, debt) = (view.ink, candidate.debt_value);
                    let choice = LiquidatorChoice::default();
                    let Some(done) = model
                        .simulate_liquidation(candidate, &choice, Timestamp(time))
                        .unwrap()
                    else {
                        continue;
                    };
                    seized += done.collateral_seized.value;
                    prop_assert!(done.collateral_seized.value <= ink);
                    prop_assert!(done.collateral_sold.value <= done.collateral_seized.value);
                    prop_assert!(done.debt_repaid.value <= debt + U256::ONE);
                    let tab = done.debt_repaid.value * U256::from(113u8) / U256::from(100u8);
                    if !dog {
                        // Cat: a bite raises at most one dunk (50,000 DAI, penalty included).
                        prop_assert!(tab <= U256::from(50_001u64) * WAD, "tab {tab}");
                    } else if done.debt_repaid.value + U256::from(1000u64) * WAD < debt {
                        // Dog: a partial bark stays within the hole.
                        prop_assert!(tab <= U256::from(hole + 1) * WAD, "tab {tab}");
                    }
                }
            }
        }
        let (ink_after, _) = totals(&model);
        if !matches!(op, Op::Wait(_)) {
            // Collateral moves only by deposits, withdrawals of what is there, and seizures.
            let expected = match op {
                Op::Deposit(_, eth) => ink_before + U256::from(*eth) * units.collateral,
                _ => ink_before - withdrawn - seized,
            };
            prop_assert_eq!(ink_after, expected);
        }
        prop_assert!(ink_after <= deposited);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn dog_era_books_balance(ops in prop::collection::vec(op(), 1..60), hole in 20_000u64..2_000_000) {
        run(&ops, true, hole, ORDINARY)?;
    }

    #[test]
    fn cat_era_books_balance(ops in prop::collection::vec(op(), 1..60)) {
        run(&ops, false, 0, ORDINARY)?;
    }

    /// Balances beyond 128 bits: the index keeps such vaults apart (`Member::WIDE`) and must
    /// still find exactly what the full scan finds.
    #[test]
    fn vaults_beyond_128_bits_are_found_like_the_rest(ops in prop::collection::vec(op(), 1..60), hole in 20_000u64..2_000_000) {
        run(&ops, true, hole, wide())?;
    }
}
