//! Tests of the whole generator: determinism, ordering, and that the market it writes is the one
//! the docs describe.

use std::collections::BTreeMap;

use cascade_events::{Event, Id, Payload, PositionChange, Protocol, U256, encode};

use super::generator::{sample_health_bps, sample_size_cents};
use super::sample::Sampler;
use super::*;

fn collect(config: &SynthConfig) -> (Vec<Event>, SynthSummary) {
    let mut events = Vec::new();
    let summary = generate(config, &mut |event: &Event| {
        events.push(event.clone());
        Ok(())
    })
    .expect("generates");
    (events, summary)
}

fn digest(events: &[Event]) -> blake3::Hash {
    let mut hasher = blake3::Hasher::new();
    for event in events {
        hasher.update(&encode(event));
    }
    hasher.finalize()
}

#[test]
fn same_seed_same_bytes_other_seed_other_bytes() {
    for protocol in [
        Protocol::Maker,
        Protocol::AaveV3,
        Protocol::AaveV2,
        Protocol::CompoundV2,
    ] {
        let config = SynthConfig::new(protocol, 300, 7);
        let (a, _) = collect(&config);
        let (b, _) = collect(&config);
        assert_eq!(digest(&a), digest(&b), "{protocol}");
        let (c, _) = collect(&SynthConfig::new(protocol, 300, 8));
        assert_ne!(digest(&a), digest(&c), "{protocol}");
    }
}

#[test]
fn events_are_in_time_and_block_order_with_dense_seqs() {
    let (events, summary) = collect(&SynthConfig::new(Protocol::AaveV3, 500, 1));
    assert_eq!(summary.events, events.len() as u64);
    for (i, pair) in events.windows(2).enumerate() {
        let (a, b) = (&pair[0], &pair[1]);
        assert_eq!(a.seq + 1, b.seq);
        assert!(
            (a.block, a.tx_index) < (b.block, b.tx_index),
            "event {i} and the next are out of order"
        );
        assert!(a.time <= b.time);
    }
    assert_eq!(summary.first_time, events[0].time);
    assert_eq!(summary.last_time, events[events.len() - 1].time);
}

#[test]
fn every_market_crashes_and_gets_liquidated() {
    for protocol in [
        Protocol::Maker,
        Protocol::AaveV3,
        Protocol::AaveV2,
        Protocol::CompoundV2,
    ] {
        let (events, summary) = collect(&SynthConfig::new(protocol, 2_000, 3));
        let liquidations = summary.by_kind.get("liquidation").copied().unwrap_or(0);
        assert!(liquidations > 0, "{protocol}: {summary:?}");
        // The default crash is -40%: the lead asset's oracle low is within noise of that.
        let drop = summary.low_price as f64 / summary.start_price as f64;
        assert!(
            (0.50..0.68).contains(&drop),
            "{protocol}: low/start = {drop}"
        );
        // Every liquidation happens after the crash starts.
        let crash = START_TIME + i64::from(ShockSpec::default().start_secs);
        for event in &events {
            if let Payload::Liquidation(_) = event.payload {
                assert!(
                    event.time.0 > crash,
                    "{protocol}: liquidation before the crash"
                );
            }
        }
        assert!(summary.accounts_liquidated > 0 && summary.accounts_liquidated < 2_000);
    }
}

#[test]
fn position_events_never_overdraw_an_account() {
    // Replays the generated user events and liquidations in base units and checks no balance
    // goes negative: withdrawals and repayments stay within what the account holds.
    for protocol in [Protocol::Maker, Protocol::AaveV3, Protocol::CompoundV2] {
        let (events, _) = collect(&SynthConfig::new(protocol, 1_000, 11));
        let mut coll: BTreeMap<Id, U256> = BTreeMap::new();
        let mut debt: BTreeMap<Id, U256> = BTreeMap::new();
        for event in &events {
            match &event.payload {
                Payload::Deposit(c) => *coll.entry(c.account).or_default() += c.amount.0,
                Payload::Borrow(c) => *debt.entry(c.account).or_default() += c.amount.0,
                Payload::Withdraw(c) => {
                    let held = coll.entry(c.account).or_default();
                    assert!(*held >= c.amount.0, "{protocol}: overdrawn {}", c.account);
                    *held -= c.amount.0;
                }
                Payload::Repay(c) => {
                    let owed = debt.entry(c.account).or_default();
                    // Maker repayments include accrued stability fees.
                    let slack = if protocol == Protocol::Maker {
                        *owed / U256::from(1000)
                    } else {
                        U256::ZERO
                    };
                    assert!(
                        *owed + slack >= c.amount.0,
                        "{protocol}: over-repaid {}",
                        c.account
                    );
                    *owed = owed.saturating_sub(c.amount.0);
                }
                Payload::Liquidation(l) => {
                    let held = coll.entry(l.account).or_default();
                    assert!(
                        *held >= l.collateral_seized.0,
                        "{protocol}: seized more than held"
                    );
                    *held -= l.collateral_seized.0;
                }
                _ => {}
            }
        }
    }
}

#[test]
fn opening_events_follow_the_protocol() {
    let (events, summary) = collect(&SynthConfig::new(Protocol::Maker, 50, 2));
    assert_eq!(summary.by_kind.get("vault-open"), Some(&50));
    let params: Vec<String> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::ParamChange(p) => Some(format!("{}.{}", p.market, p.param)),
            _ => None,
        })
        .collect();
    assert!(
        params.contains(&"ETH-A.SPOTTER.ilks.mat".to_owned()),
        "{params:?}"
    );
    assert!(
        params.contains(&"WBTC-A.DOG.ilks.chop".to_owned()),
        "{params:?}"
    );
    let (_, summary) = collect(&SynthConfig::new(Protocol::CompoundV2, 50, 2));
    assert_eq!(summary.by_kind.get("collateral-toggle"), Some(&50));
    assert_eq!(summary.by_kind.get("vault-open"), None);
}

#[test]
fn unknown_assets_and_empty_markets_are_refused() {
    let mut config = SynthConfig::new(Protocol::AaveV3, 10, 1);
    config.assets = vec!["DOGE".into()];
    let error = generate(&config, &mut |_| Ok(())).unwrap_err().to_string();
    assert!(error.contains("DOGE") && error.contains("WETH"), "{error}");
    config.assets = vec!["USDC".into()];
    assert!(
        generate(&config, &mut |_| Ok(())).is_err(),
        "a stablecoin is not crash collateral"
    );
    let config = SynthConfig::new(Protocol::AaveV3, 0, 1);
    assert!(generate(&config, &mut |_| Ok(())).is_err());
}

#[test]
fn sink_errors_carry_the_event_position() {
    let config = SynthConfig::new(Protocol::AaveV3, 10, 1);
    let mut seen = 0;
    let error = generate(&config, &mut |_| {
        seen += 1;
        if seen == 5 {
            Err("disk full".into())
        } else {
            Ok(())
        }
    })
    .unwrap_err();
    assert!(matches!(error, SynthError::Sink { seq: 4, .. }), "{error}");
}

#[test]
fn same_seed_gives_the_same_log_identity() {
    let config = SynthConfig::new(Protocol::Maker, 400, 21);
    let dirs = [tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap()];
    let a = write_log(dirs[0].path(), &config, Timestamp(1)).unwrap();
    // A different ingest time changes the catalog, never the log.
    let b = write_log(dirs[1].path(), &config, Timestamp(2)).unwrap();
    assert_eq!(a.identity, b.identity);
    assert_eq!(a.summary, b.summary);
    assert_eq!(a.identity.last_seq, Some(a.summary.events - 1));
    let reader = cascade_log::LogReader::open(dirs[0].path()).unwrap();
    let (events, _) = collect(&config);
    let read: Vec<Event> = reader.events(0).map(Result::unwrap).collect();
    assert_eq!(read, events, "the log holds exactly the generated stream");
    let catalog = cascade_log::Catalog::open(dirs[0].path()).unwrap();
    let sources = catalog.sources().unwrap();
    assert_eq!(sources.len(), 1);
    assert_eq!(sources[0].kind, "synth");
    assert_eq!(sources[0].events_written, a.summary.events);
    drop(catalog);

    let other = write_log(dirs[0].path(), &config, Timestamp(3)).unwrap_err();
    assert!(matches!(other, SynthError::NotEmpty { .. }), "{other}");
}

#[test]
fn distributions_match_the_documented_shape() {
    // docs/synthetic.md quotes these figures; the ranges keep the doc honest.
    let mut rng = Sampler::new(5, 0);
    let mut health: Vec<u32> = (0..100_000).map(|_| sample_health_bps(&mut rng)).collect();
    health.sort_unstable();
    let q = |p: usize| f64::from(health[p * health.len() / 100]) / 10_000.0;
    let below = |x: u32| health.iter().filter(|&&h| h < x).count() as f64 / health.len() as f64;
    eprintln!(
        "health q10 {:.2} q25 {:.2} q50 {:.2} q75 {:.2} q90 {:.2}; <1.2 {:.3}; <1.667 {:.3}",
        q(10),
        q(25),
        q(50),
        q(75),
        q(90),
        below(12_000),
        below(16_667)
    );
    assert!(health[0] >= 10_400 && *health.last().unwrap() <= 50_000);
    assert!((1.55..1.75).contains(&q(50)), "median health {}", q(50));
    assert!((0.14..0.22).contains(&below(12_000)));
    assert!((0.45..0.56).contains(&below(16_667)));

    let mut sizes: Vec<u64> = (0..100_000).map(|_| sample_size_cents(&mut rng)).collect();
    sizes.sort_unstable();
    let total: u64 = sizes.iter().sum();
    let top: u64 = sizes[sizes.len() * 99 / 100..].iter().sum();
    let median = sizes[sizes.len() / 2] as f64 / 100.0;
    let mean = total as f64 / sizes.len() as f64 / 100.0;
    let share = top as f64 / total as f64;
    eprintln!("size median {median:.0} mean {mean:.0} top-1% share {share:.3}");
    assert!((3_700.0..4_300.0).contains(&median), "median size {median}");
    assert!((0.2..0.45).contains(&share), "top 1% share {share}");
}

#[test]
fn a_small_market_is_pinned_bit_for_bit() {
    // Same seed, same bytes, on every machine and every build: any change to the generator's
    // output (a dependency update, a float path that is not exact) shows up here. Update the
    // pins only on purpose, and say so in the commit.
    let pins = [
        (Protocol::Maker, "a041e0461e931988"),
        (Protocol::AaveV3, "71347c84a0b8d050"),
        (Protocol::AaveV2, "d057b3be31d2ec71"),
        (Protocol::CompoundV2, "0a93368ca16fc189"),
    ];
    let got: Vec<(Protocol, String)> = pins
        .iter()
        .map(|(protocol, _)| {
            let (events, _) = collect(&SynthConfig::new(*protocol, 100, 1));
            (*protocol, digest(&events).to_hex()[..16].to_owned())
        })
        .collect();
    for ((protocol, pin), (_, hash)) in pins.iter().zip(&got) {
        assert_eq!(hash, pin, "{protocol}: {got:?}");
    }
}

/// A crash deep and fast enough that the keeper reaches some accounts only after their
/// collateral is worth less than their debt plus the bonus: liquidations capped at the balance
/// leave debt with no collateral.
fn underwater_market(protocol: Protocol) -> SynthConfig {
    let mut config = SynthConfig::new(protocol, 2_000, 7);
    config.shock = "-70%@30m".parse().expect("a valid shock");
    config
}

#[test]
fn every_liquidation_seizes_collateral_and_repays_debt() {
    for protocol in [Protocol::AaveV3, Protocol::AaveV2, Protocol::CompoundV2] {
        let (events, _) = collect(&underwater_market(protocol));
        let mut emptied = 0;
        let mut balances: BTreeMap<Id, U256> = BTreeMap::new();
        for event in &events {
            match &event.payload {
                Payload::Deposit(change) => {
                    *balances.entry(change.account).or_default() += change.amount.0;
                }
                Payload::Withdraw(change) => {
                    let balance = balances.entry(change.account).or_default();
                    *balance = balance.saturating_sub(change.amount.0);
                }
                Payload::Liquidation(liquidation) => {
                    assert!(
                        !liquidation.collateral_seized.0.is_zero()
                            && !liquidation.debt_repaid.0.is_zero(),
                        "{protocol}: a liquidation that moves nothing (the contract refuses it): \
                         {liquidation:?}"
                    );
                    let balance = balances.entry(liquidation.account).or_default();
                    *balance = balance.saturating_sub(liquidation.collateral_seized.0);
                    emptied += usize::from(balance.is_zero());
                }
                _ => {}
            }
        }
        assert!(
            emptied > 0,
            "{protocol}: the market should empty some accounts' collateral"
        );
    }
}

#[test]
fn aave_v3_close_factor_reads_the_contracts_health_factor() {
    let weth_info = market::asset("WETH").expect("WETH is in the table");
    let coll = book::CollateralRule::new(Protocol::AaveV3, weth_info);
    let debt = book::DebtRule {
        info: market::debt_asset(Protocol::AaveV3),
        rate: market::pow10(27),
    };
    // 1 WETH at 2,000 USD against 1,747.36 USDC: health 0.83 * 2000 / 1747.36 = 0.950004...,
    // above 0.95 though 9,500 in truncated basis points.
    let account = book::Account {
        coll: 10u128.pow(18),
        debt: 1_747_360_000,
        asset: 0,
        ..book::Account::default()
    };
    let (weth, usdc) = (2_000 * 10u128.pow(8), 10u128.pow(8));
    let hf = book::health_factor_wad(&account, &coll, &debt, weth, usdc);
    assert!(
        hf > 950_000_000_000_000_000 && hf < 950_100_000_000_000_000,
        "{hf}"
    );
    let seizure = book::seize(Protocol::AaveV3, &account, &coll, &debt, weth, usdc);
    assert_eq!(
        seizure.debt_repaid,
        U256::from(1_747_360_000u64 / 2),
        "above 0.95 the close factor is 50%"
    );
}

fn three_protocols(accounts: u32, seed: u64) -> SynthConfig {
    let mut config = SynthConfig::new(Protocol::Maker, accounts, seed);
    config.also = vec![Protocol::AaveV2, Protocol::CompoundV2];
    config.overlap_ppm = 300_000;
    config.loops_ppm = 200_000;
    config
}

#[test]
fn a_multi_protocol_market_is_deterministic_by_seed() {
    let (a, _) = collect(&three_protocols(600, 7));
    let (b, _) = collect(&three_protocols(600, 7));
    let (c, _) = collect(&three_protocols(600, 8));
    assert_eq!(digest(&a), digest(&b));
    assert_ne!(digest(&a), digest(&c));
    let mut no_loops = three_protocols(600, 7);
    no_loops.loops_ppm = 0;
    assert_ne!(digest(&a), digest(&collect(&no_loops).0));
}

#[test]
fn a_multi_protocol_market_is_one_ordered_log_with_each_answer_once() {
    let (events, summary) = collect(&three_protocols(900, 2));
    assert_eq!(summary.events, events.len() as u64);
    let mut answers = std::collections::BTreeSet::new();
    let mut protocols = std::collections::BTreeSet::new();
    for (i, pair) in events.windows(2).enumerate() {
        assert_eq!(pair[0].seq + 1, pair[1].seq);
        assert!(
            (pair[0].block, pair[0].tx_index) < (pair[1].block, pair[1].tx_index),
            "event {i} and the next are out of order"
        );
    }
    for event in &events {
        match &event.payload {
            Payload::Price(p) => assert!(
                answers.insert((p.feed, p.round, event.block)),
                "answer written twice: {p:?}"
            ),
            Payload::Liquidation(l) => {
                protocols.insert(l.protocol);
            }
            _ => {}
        }
    }
    // Maker's DAI, Aave v2's ETH quotes and Compound's USD feeds all appear.
    let quotes: std::collections::BTreeSet<String> = events
        .iter()
        .filter_map(|e| match &e.payload {
            Payload::Price(p) => Some(p.quote.to_string()),
            _ => None,
        })
        .collect();
    assert!(
        quotes.contains("USD") && quotes.contains("ETH"),
        "{quotes:?}"
    );
    assert_eq!(
        protocols.len(),
        3,
        "every protocol liquidates in the crash: {protocols:?}"
    );
}

/// Overlap is the share of owners with a position in more than one protocol, loops the share of
/// positions opened as loops: both come out as asked within binomial noise (30,000 positions:
/// about 19,000 owners, a standard error near 0.0035 for overlap and 0.0023 for loops; the
/// tolerance is 0.015, four standard errors and more).
#[test]
fn overlap_and_loop_shares_come_out_as_asked() {
    let config = three_protocols(30_000, 11);
    let (events, summary) = collect(&config);
    let owners_of = |protocol: Protocol| {
        let mut owners = std::collections::BTreeSet::new();
        for event in &events {
            match &event.payload {
                Payload::VaultOpen(v) if protocol == Protocol::Maker => {
                    owners.insert(v.owner.expect("synthetic vaults have owners"));
                }
                Payload::CollateralToggle(t) if t.protocol == protocol => {
                    owners.insert(t.account);
                }
                _ => {}
            }
        }
        owners
    };
    let sets: Vec<_> = config.protocols().into_iter().map(owners_of).collect();
    let positions: usize = sets.iter().map(|s| s.len()).sum();
    assert_eq!(positions as u32, summary.accounts);
    let mut all = std::collections::BTreeMap::<Id, u32>::new();
    for set in &sets {
        for owner in set {
            *all.entry(*owner).or_default() += 1;
        }
    }
    let shared = all.values().filter(|&&n| n > 1).count();
    assert_eq!(all.len() as u32, summary.owners);
    assert_eq!(shared as u32, summary.shared_owners);
    let overlap = shared as f64 / all.len() as f64;
    assert!((overlap - 0.3).abs() < 0.015, "overlap {overlap}");
    // A looped position deposits again after a borrow in its opening block.
    let mut looped = std::collections::BTreeSet::new();
    let mut borrowed = std::collections::BTreeSet::new();
    for event in &events {
        match &event.payload {
            Payload::Borrow(c) => {
                borrowed.insert((event.block, c.protocol, c.account));
            }
            Payload::Deposit(c) if borrowed.contains(&(event.block, c.protocol, c.account)) => {
                looped.insert((c.protocol, c.account));
            }
            _ => {}
        }
    }
    assert_eq!(looped.len() as u32, summary.looped);
    // Maker vaults never loop: the share is of the Aave and Compound positions (about 20,000,
    // a standard error near 0.0028).
    assert!(
        looped
            .iter()
            .all(|(protocol, _)| *protocol != Protocol::Maker)
    );
    let lending = sets[1].len() + sets[2].len();
    assert_eq!(lending as u32, summary.loopable);
    let loops = looped.len() as f64 / lending as f64;
    assert!((loops - 0.2).abs() < 0.015, "loops {loops}");
}

#[test]
fn a_looped_position_borrows_at_its_target_and_supplies_what_it_borrowed() {
    let mut config = SynthConfig::new(Protocol::AaveV3, 400, 5);
    config.loops_ppm = 1_000_000;
    let (events, summary) = collect(&config);
    assert_eq!(summary.looped, 400);
    let account = market::account_id(Protocol::AaveV3, 17);
    let positions: Vec<&Event> = events
        .iter()
        .filter(|e| {
            matches!(&e.payload, Payload::Deposit(c) | Payload::Borrow(c) if c.account == account)
        })
        .collect();
    let opened = positions[0].block;
    let opening: Vec<&Event> = positions
        .into_iter()
        .take_while(|e| e.block == opened)
        .collect();
    // Deposit, then (borrow, deposit) n times: an odd count of at least 3.
    assert!(opening.len() >= 3 && opening.len() % 2 == 1, "{opening:?}");
    let amounts: Vec<U256> = opening
        .iter()
        .map(|e| match &e.payload {
            Payload::Deposit(c) | Payload::Borrow(c) => c.amount.0,
            _ => unreachable!(),
        })
        .collect();
    // Each re-supply is smaller than the one before (the loop's steps shrink geometrically).
    let supplies: Vec<U256> = amounts.iter().step_by(2).copied().collect();
    assert!(supplies.windows(2).all(|w| w[1] < w[0]), "{supplies:?}");
    // A loop borrows its collateral asset and re-supplies what it borrowed: one asset
    // throughout, each re-supply the borrow before it to within a millionth (the two are split
    // from one total by the same weights, each rounded down).
    let assets: std::collections::BTreeSet<Id> = opening
        .iter()
        .map(|e| match &e.payload {
            Payload::Deposit(c) | Payload::Borrow(c) => c.asset,
            _ => unreachable!(),
        })
        .collect();
    assert_eq!(assets.len(), 1, "{opening:?}");
    for pair in amounts[1..].chunks(2) {
        let (borrowed, supplied) = (pair[0], pair[1]);
        assert!(
            borrowed.abs_diff(supplied) <= borrowed / U256::from(1_000_000u32) + U256::from(4u8),
            "borrowed {borrowed}, re-supplied {supplied}"
        );
    }
}

/// Every loop stays within the protocol's LTV at each borrow (Aave v2 WBTC: LTV 0.70 under a
/// threshold of 0.75, so a looper near health 1.04 is held back by the LTV), and a Maker market
/// refuses `--loops`: its vaults borrow only DAI.
#[test]
fn loops_borrow_within_the_ltv_and_maker_refuses_them() {
    let mut config = SynthConfig::new(Protocol::AaveV2, 300, 9);
    config.assets = vec!["WBTC".into()];
    config.loops_ppm = 1_000_000;
    let (events, summary) = collect(&config);
    assert_eq!((summary.looped, summary.loopable), (300, 300));
    let ltv = U256::from(7_000u32);
    // Per account: the block it opened in, supplied and owed during that block (the loop; later
    // activity steers by health only).
    let mut held = std::collections::BTreeMap::<Id, (Option<u64>, U256, U256)>::new();
    let mut borrows = 0;
    for event in &events {
        let opening = |c: &PositionChange, held: &mut BTreeMap<Id, (Option<u64>, U256, U256)>| {
            let entry = held.entry(c.account).or_default();
            *entry.0.get_or_insert(event.block.unwrap_or(0)) == event.block.unwrap_or(0)
        };
        match &event.payload {
            Payload::Deposit(c) if opening(c, &mut held) => {
                held.entry(c.account).or_default().1 += c.amount.0
            }
            Payload::Borrow(c) if opening(c, &mut held) => {
                let (_, supplied, owed) = held.entry(c.account).or_default();
                *owed += c.amount.0;
                // Both sides are WBTC: the LTV check needs no price.
                assert!(
                    *owed * U256::from(10_000u32) <= *supplied * ltv,
                    "{}: {owed} owed against {supplied}",
                    c.account
                );
                borrows += 1;
            }
            _ => {}
        }
    }
    assert!(borrows >= 300, "{borrows}");
    let mut maker = SynthConfig::new(Protocol::Maker, 10, 1);
    maker.loops_ppm = 200_000;
    let error = generate(&maker, &mut |_| Ok(())).expect_err("Maker cannot loop");
    assert!(error.to_string().contains("only DAI"), "{error}");
}
