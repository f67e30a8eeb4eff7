//! `aave-subgraph-liquidations`: the Aave v2 subgraph `LiquidationCall` export
//! (`liquidations.csv`) with its reserves file (`tokens.csv`, next to it unless `--reserves`
//! names it).
//!
//! What a row becomes, in this order and at the row's timestamp:
//! 1. a price event for the collateral reserve and one for the debt reserve, from the row's own
//!    `reservePriceETH*` columns (quote `ETH`, [`PRICE_DECIMALS`] decimals, feed
//!    `aave-v2-subgraph`), when the row has them, so the engine can check the seize formula with the prices of that moment;
//! 2. the liquidation: market = the `pool` column (the LendingPoolAddressesProvider), account =
//!    `user`, liquidator when given, reserves named by the export's symbols (`WETH`, `AmmWETH`:
//!    unique across both markets, where token addresses are not).
//!
//! Before the first row, for every reserve of `tokens.csv`: parameter changes
//! `liquidationThreshold` and `liquidationBonus` (basis points as a fraction: `8250` is
//! `0.8250`, stored as the integer 8250 with 4 decimals) and `decimals`, with market = the
//! reserve's symbol. `tokens.csv` is a snapshot taken when the export was made.
//!
//! **The unit rule.** Rows with an empty `liquidator` (the older subgraph schema, to July 2021)
//! hold `collateralAmount`/`principalAmount` in raw base units and `reservePriceETH*` in wei per
//! whole token; rows with a liquidator hold whole tokens (scaled by the reserve's decimals) and
//! ETH per token. Where a row has both prices, the rule is checked: the collateral's ETH value
//! must be within a factor of [`PLAUSIBLE_RATIO`] of the debt's (a liquidation returns the debt
//! plus a bonus of at most 15%; a unit slip is off by at least 10^2). A row that fails the check
//! breaks the rule and is rejected with both values named (quarantined with `--skip-invalid`).
//! Counts per branch are in the report.
//!
//! **Duplicates.** The export has no transaction hash or log index, so identity is the
//! liquidation's own facts: pool, timestamp, user, liquidator, both reserves and both amounts.
//! A later row with the same identity is dropped and counted, whether it is identical or differs
//! only in the derived price and USD columns (the first row's prices are kept). Rows that differ
//! in the liquidator are two liquidations and are both kept (and counted).
//!
//! The same rules written as a mapping for the generic `csv` kind are
//! `fixtures/mappings/aave-v2-liquidations.toml`; `tests/mapping_equivalence.rs` keeps the two
//! equal event for event and count for count, so a change here needs the same change there.
//!
//! Must never: guess the decimals of a reserve missing from `tokens.csv` (such a row is
//! rejected), or read an amount through `f64`.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use cascade_events::{
    Event, Fixed, Id, Liquidation, LiquidationDetail, ParamChange, Payload, PriceUpdate, Protocol,
    Symbol, Timestamp, U256,
};

use crate::batch::{Context, Rejects, SourceBatch};
use crate::error::{IngestError, RowError};
use crate::table::{CsvInput, Row};
use crate::value::{self, IdKind, Sign, TimeFormat, Unit};

/// A row's collateral and debt values (in ETH, from its own prices) must be within this factor
/// of each other for the unit rule to hold.
pub const PLAUSIBLE_RATIO: u64 = 20;

/// Decimals of the reserve prices: the export writes them as float renderings, in wei with
/// fractional digits (`4219905567156961.5`) or in ETH with up to 18 decimals; 27 holds both
/// exactly.
pub const PRICE_DECIMALS: u8 = 27;

/// Flags of the `aave-subgraph-liquidations` kind.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// The reserves file (default: `tokens.csv` beside the liquidation file).
    pub reserves: Option<PathBuf>,
}

/// A reserve of `tokens.csv`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Reserve {
    symbol: Symbol,
    decimals: u8,
    threshold_bps: u64,
    bonus_bps: u64,
}

/// The reserves file used for the export at `path`.
pub fn reserves_path(path: &Path, options: &Options) -> PathBuf {
    match &options.reserves {
        Some(path) => path.clone(),
        None => path.with_file_name("tokens.csv"),
    }
}

/// Reads the export.
pub fn read(
    path: &Path,
    options: &Options,
    context: &Context<'_>,
) -> Result<SourceBatch, IngestError> {
    let reserves_path = reserves_path(path, options);
    if !reserves_path.exists() {
        return Err(IngestError::Source {
            path: path.to_owned(),
            message: format!(
                "reserves file {} not found: give --reserves FILE",
                reserves_path.display()
            ),
        });
    }
    let mut batch = SourceBatch::new(context.source);
    let mut rejects = Rejects::new(context.skip_invalid);
    let reserves = read_reserves(&reserves_path, context, &mut rejects, &mut batch)?;

    let mut input = CsvInput::open(path)?;
    let columns = Columns::find(&input)?;
    batch.report.files.push(path.to_owned());
    let mut state = RowState::default();
    let mut liquidations = Vec::new();
    let rows = input.for_each_row(context.progress, |row| {
        let row = match row {
            Ok(row) => row,
            Err(error) => return rejects.reject(error),
        };
        match columns.read(row, &reserves, &mut state, context.chain_id) {
            Ok(events) => {
                liquidations.extend(events);
                Ok(())
            }
            Err(error) => rejects.reject(error),
        }
    })?;
    batch.report.rows_read += rows;

    // Reserve parameters go first, at the time of the earliest liquidation.
    let start = liquidations
        .iter()
        .map(|e: &Event| e.time)
        .min()
        .unwrap_or(Timestamp(0));
    for reserve in reserves.values() {
        for (param, value) in [
            (
                "liquidationThreshold",
                Fixed::new(U256::from(reserve.threshold_bps), 4),
            ),
            (
                "liquidationBonus",
                Fixed::new(U256::from(reserve.bonus_bps), 4),
            ),
            ("decimals", Fixed::new(U256::from(reserve.decimals), 0)),
        ] {
            let param = Symbol::new(param).map_err(|e| IngestError::Usage(e.to_string()))?;
            batch.events.push(Event::at(
                context.chain_id,
                start,
                Payload::ParamChange(Box::new(ParamChange {
                    protocol: Protocol::AaveV2,
                    market: Id::Name(reserve.symbol),
                    param,
                    value,
                })),
            ));
        }
    }
    if liquidations.is_empty() {
        batch.events.clear();
    }
    batch.events.extend(liquidations);
    batch.report.duplicates += state.identical + state.price_only;
    for (name, count) in [
        ("rows in raw base units (empty liquidator)", state.raw_rows),
        ("rows in whole tokens (liquidator given)", state.token_rows),
        ("rows checked against their own prices", state.checked),
        (
            "rows without both prices (unit rule not checkable)",
            state.unchecked,
        ),
        ("identical duplicate rows dropped", state.identical),
        (
            "duplicate rows differing only in prices dropped (first kept)",
            state.price_only,
        ),
        (
            "same liquidation facts by different liquidators (kept)",
            state.other_liquidator,
        ),
    ] {
        if count > 0 {
            batch.report.count(name, count);
        }
    }
    batch.report.flagged.extend(state.flagged);
    batch.report.rejected = rejects.into_rows();
    Ok(batch)
}

/// Reads `tokens.csv` into reserves by symbol.
fn read_reserves(
    path: &Path,
    context: &Context<'_>,
    rejects: &mut Rejects,
    batch: &mut SourceBatch,
) -> Result<BTreeMap<Symbol, Reserve>, IngestError> {
    let mut input = CsvInput::open(path)?;
    let [symbol, decimals, threshold, bonus] = [
        "symbol",
        "decimals",
        "reserveLiquidationThreshold",
        "reserveLiquidationBonus",
    ]
    .map(|name| input.column(name));
    let (symbol, decimals, threshold, bonus) = (symbol?, decimals?, threshold?, bonus?);
    batch.report.files.push(path.to_owned());
    let mut reserves = BTreeMap::new();
    let bps = |text: &str| {
        value::fixed(text, Some(0), false)
            .and_then(|f| u64::try_from(f.value).map_err(|_| "too large".to_owned()))
    };
    let rows = input.for_each_row(context.progress, |row| {
        let row = match row {
            Ok(row) => row,
            Err(error) => return rejects.reject(error),
        };
        let parsed = (|| {
            let reserve = Reserve {
                symbol: row.parse(symbol, value::symbol)?,
                decimals: row.parse(decimals, value::decimals)?,
                threshold_bps: row.parse(threshold, bps)?,
                bonus_bps: row.parse(bonus, bps)?,
            };
            if reserves.contains_key(&reserve.symbol) {
                return Err(row.error(
                    symbol,
                    "symbol listed twice: liquidation rows could not tell the reserves apart",
                ));
            }
            Ok(reserve)
        })();
        match parsed {
            Ok(reserve) => {
                reserves.insert(reserve.symbol, reserve);
                Ok(())
            }
            Err(error) => rejects.reject(error),
        }
    })?;
    batch.report.rows_read += rows;
    Ok(reserves)
}

/// Column indices of `liquidations.csv`.
struct Columns {
    collateral_amount: usize,
    collateral_reserve: usize,
    pool: usize,
    principal_amount: usize,
    principal_reserve: usize,
    timestamp: usize,
    user: usize,
    liquidator: usize,
    price_collateral: usize,
    price_principal: usize,
}

/// Running tallies while reading rows.
#[derive(Default)]
struct RowState {
    /// Identity -> (first line, whole row text) of rows already read.
    seen: HashMap<String, (u64, String)>,
    /// Identity without the liquidator -> first liquidator seen.
    facts: HashMap<String, String>,
    raw_rows: u64,
    token_rows: u64,
    checked: u64,
    unchecked: u64,
    identical: u64,
    price_only: u64,
    other_liquidator: u64,
    flagged: Vec<String>,
}

impl Columns {
    fn find(input: &CsvInput) -> Result<Self, IngestError> {
        Ok(Columns {
            collateral_amount: input.column("collateralAmount")?,
            collateral_reserve: input.column("collateralReserve")?,
            pool: input.column("pool")?,
            principal_amount: input.column("principalAmount")?,
            principal_reserve: input.column("principalReserve")?,
            timestamp: input.column("timestamp")?,
            user: input.column("user")?,
            liquidator: input.column("liquidator")?,
            price_collateral: input.column("reservePriceETHCollateral")?,
            price_principal: input.column("reservePriceETHPrincipal")?,
        })
    }

    /// The events of one row, or none when it is a duplicate.
    fn read(
        &self,
        row: &Row<'_>,
        reserves: &BTreeMap<Symbol, Reserve>,
        state: &mut RowState,
        chain_id: u64,
    ) -> Result<Vec<Event>, Box<RowError>> {
        let time = row.parse(self.timestamp, |t| value::time(t, &TimeFormat::UnixSeconds))?;
        let pool = row.parse(self.pool, |t| value::id(t, IdKind::Address))?;
        let user = row.parse(self.user, |t| value::id(t, IdKind::Address))?;
        let liquidator = if row.is_blank(self.liquidator) {
            None
        } else {
            Some(row.parse(self.liquidator, |t| value::id(t, IdKind::Address))?)
        };
        let reserve = |column: usize| {
            let symbol = row.parse(column, value::symbol)?;
            reserves.get(&symbol).copied().ok_or_else(|| {
                row.error(
                    column,
                    "reserve not in the reserves file (tokens.csv): its decimals are unknown",
                )
            })
        };
        let collateral = reserve(self.collateral_reserve)?;
        let debt = reserve(self.principal_reserve)?;

        // The unit rule: see the module documentation.
        let raw = liquidator.is_none();
        let (unit, price_decimals) = if raw {
            (Unit::Base, PRICE_DECIMALS - 18)
        } else {
            (Unit::Tokens, PRICE_DECIMALS)
        };
        let amount = |column: usize, reserve: &Reserve| {
            row.parse(column, |t| {
                value::amount(t, unit, reserve.decimals, Sign::Positive)
            })
        };
        let seized = amount(self.collateral_amount, &collateral)?;
        let repaid = amount(self.principal_amount, &debt)?;
        let price = |column: usize| -> Result<Option<Fixed>, Box<RowError>> {
            if row.is_blank(column) {
                return Ok(None);
            }
            // Wei per token (raw rows) or ETH per token (the others): either way the stored
            // value is ETH per whole token with PRICE_DECIMALS decimals.
            row.parse(column, |t| {
                value::fixed(t, Some(price_decimals), false).and_then(value::positive_price)
            })
            .map(|p| Some(Fixed::new(p.value, PRICE_DECIMALS)))
        };
        let collateral_price = price(self.price_collateral)?;
        let debt_price = price(self.price_principal)?;

        let identity = [
            row.text(self.pool),
            row.text(self.timestamp),
            row.text(self.user),
            row.text(self.liquidator),
            row.text(self.collateral_reserve),
            row.text(self.principal_reserve),
            row.text(self.collateral_amount),
            row.text(self.principal_amount),
        ]
        .join("|");
        let whole = row.raw();
        if let Some((first_line, first_row)) = state.seen.get(&identity) {
            if *first_row == whole {
                state.identical += 1;
            } else {
                state.price_only += 1;
                state.flagged.push(format!(
                    "line {}: same liquidation as line {first_line} with different prices; dropped, line {first_line} kept",
                    row.line()
                ));
            }
            return Ok(Vec::new());
        }
        let facts = [
            row.text(self.pool),
            row.text(self.timestamp),
            row.text(self.user),
            row.text(self.collateral_amount),
            row.text(self.principal_amount),
        ]
        .join("|");
        match state.facts.get(&facts) {
            Some(other) if other != row.text(self.liquidator) => {
                state.other_liquidator += 1;
                state.flagged.push(format!(
                    "line {}: same user, second and amounts as an earlier row but liquidator {} (kept as a second liquidation)",
                    row.line(),
                    row.text(self.liquidator)
                ));
            }
            Some(_) => {}
            None => {
                state
                    .facts
                    .insert(facts, row.text(self.liquidator).to_owned());
            }
        }

        if let (Some(cp), Some(dp)) = (collateral_price, debt_price) {
            state.checked += 1;
            check_units(
                row,
                self,
                raw,
                (seized.0, collateral.decimals, cp.value),
                (repaid.0, debt.decimals, dp.value),
            )?;
        } else {
            state.unchecked += 1;
        }
        if raw {
            state.raw_rows += 1;
        } else {
            state.token_rows += 1;
        }
        state.seen.insert(identity, (row.line(), whole));

        let eth = Id::name("ETH");
        let feed = Id::name("aave-v2-subgraph");
        let mut events = Vec::with_capacity(3);
        for (reserve, price) in [(collateral, collateral_price), (debt, debt_price)] {
            if let Some(price) = price {
                events.push(Event::at(
                    chain_id,
                    time,
                    Payload::Price(Box::new(PriceUpdate {
                        asset: Id::Name(reserve.symbol),
                        quote: eth,
                        price,
                        feed,
                        round: None,
                    })),
                ));
            }
        }
        events.push(Event::at(
            chain_id,
            time,
            Payload::Liquidation(Box::new(Liquidation {
                protocol: Protocol::AaveV2,
                market: pool,
                account: user,
                liquidator,
                collateral_asset: Id::Name(collateral.symbol),
                collateral_seized: seized,
                debt_asset: Id::Name(debt.symbol),
                debt_repaid: repaid,
                detail: LiquidationDetail::Aave {
                    receive_a_token: None,
                },
            })),
        ));
        Ok(events)
    }
}

fn pow10(exp: u8) -> U256 {
    U256::from(10u8).pow(U256::from(exp))
}

/// Checks the unit rule with the row's own prices: `(amount in base units, decimals, wei per
/// whole token)` for collateral and debt.
fn check_units(
    row: &Row<'_>,
    columns: &Columns,
    raw: bool,
    collateral: (U256, u8, U256),
    debt: (U256, u8, U256),
) -> Result<(), Box<RowError>> {
    // Both values in wei, scaled to a common 10^(dc + dd) so no division loses the ratio.
    let collateral_value = collateral
        .0
        .saturating_mul(collateral.2)
        .saturating_mul(pow10(debt.1));
    let debt_value = debt
        .0
        .saturating_mul(debt.2)
        .saturating_mul(pow10(collateral.1));
    let ratio = U256::from(PLAUSIBLE_RATIO);
    if collateral_value > debt_value.saturating_mul(ratio)
        || debt_value > collateral_value.saturating_mul(ratio)
    {
        let rule = if raw {
            "raw base units (empty liquidator)"
        } else {
            "whole tokens (liquidator given)"
        };
        return Err(row.error(
            columns.collateral_amount,
            format!(
                "breaks the unit rule: read as {rule}, the collateral is worth {} wei against {} wei of debt at the row's own prices (more than {PLAUSIBLE_RATIO}x apart)",
                collateral_value / pow10(debt.1),
                debt_value / pow10(collateral.1),
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::test_context as context;
    use cascade_events::Amount;

    const TOKENS: &str = "borrowingEnabled,decimals,id,pool,reserveLiquidationBonus,reserveLiquidationThreshold,stableBorrowRateEnabled,symbol,usageAsCollateralEnabled
True,18,0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc20xb53c1a33016b2dc2ff3653530bff1848a515c8c5,0xb53c1a33016b2dc2ff3653530bff1848a515c8c5,10500.0,8500.0,True,WETH,True
True,6,0xa0b86991c6218b36c1d19d4a2e9eb0ce3606eb480xb53c1a33016b2dc2ff3653530bff1848a515c8c5,0xb53c1a33016b2dc2ff3653530bff1848a515c8c5,10500.0,8500.0,True,USDC,True
";
    const HEADER: &str = "collateralAmount,collateralReserve,pool,principalAmount,principalReserve,timestamp,user,liquidator,reservePriceETHCollateral,reservePriceETHPrincipal\n";
    const POOL: &str = "0xb53c1a33016b2dc2ff3653530bff1848a515c8c5";
    const USER: &str = "0x1111111111111111111111111111111111111111";
    const BOT: &str = "0x2222222222222222222222222222222222222222";

    fn run(rows: &[String], skip_invalid: bool) -> Result<SourceBatch, IngestError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("tokens.csv"), TOKENS).unwrap();
        let path = dir.path().join("liquidations.csv");
        std::fs::write(&path, format!("{HEADER}{}", rows.join(""))).unwrap();
        read(&path, &Options::default(), &context(skip_invalid))
    }

    /// 1.05 ETH of collateral for 2000 USDC of debt at 0.0005 ETH per USDC.
    fn raw_row(time: u64) -> String {
        format!(
            "1050000000000000000,WETH,{POOL},2000000000,USDC,{time},{USER},,1000000000000000000.0,500000000000000.0\n"
        )
    }

    fn token_row(time: u64, liquidator: &str) -> String {
        format!("1.05,WETH,{POOL},2000,USDC,{time},{USER},{liquidator},1.0,0.0005\n")
    }

    fn liquidations(batch: &SourceBatch) -> Vec<Liquidation> {
        batch
            .events
            .iter()
            .filter_map(|e| match e.payload {
                Payload::Liquidation(l) => Some(*l),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn both_branches_give_the_same_base_units() {
        let batch = run(
            &[raw_row(1_621_382_400), token_row(1_630_000_000, BOT)],
            false,
        )
        .unwrap();
        let found = liquidations(&batch);
        assert_eq!(found.len(), 2);
        for l in &found {
            assert_eq!(
                l.collateral_seized,
                Amount::from_units(1_050_000_000_000_000_000)
            );
            assert_eq!(l.debt_repaid, Amount::from_units(2_000_000_000));
            assert_eq!(l.collateral_asset, Id::name("WETH"));
        }
        assert_eq!(found[0].liquidator, None);
        assert!(found[1].liquidator.is_some());
        assert_eq!(
            batch.report.counters["rows in raw base units (empty liquidator)"],
            1
        );
        assert_eq!(
            batch.report.counters["rows in whole tokens (liquidator given)"],
            1
        );
        assert_eq!(
            batch.report.counters["rows checked against their own prices"],
            2
        );
    }

    #[test]
    fn reserve_parameters_then_prices_then_liquidation() {
        let batch = run(&[raw_row(1_621_382_400)], false).unwrap();
        let kinds: Vec<&str> = batch.events.iter().map(|e| e.kind().name()).collect();
        assert_eq!(
            kinds,
            ["param-change"; 6]
                .iter()
                .copied()
                .chain(["price", "price", "liquidation"])
                .collect::<Vec<_>>()
        );
        assert!(
            batch
                .events
                .iter()
                .all(|e| e.time == Timestamp(1_621_382_400))
        );
        let params: Vec<String> = batch
            .events
            .iter()
            .take(6)
            .map(|e| match &e.payload {
                Payload::ParamChange(p) => format!("{} {} {}", p.market, p.param, p.value),
                _ => unreachable!(),
            })
            .collect();
        assert_eq!(
            params[..3],
            [
                "USDC liquidationThreshold 0.8500",
                "USDC liquidationBonus 1.0500",
                "USDC decimals 6"
            ]
        );
        // Both branches store wei per whole token with 18 decimals.
        let Payload::Price(usdc) = &batch.events.get(7).payload else {
            unreachable!()
        };
        assert_eq!(usdc.price.to_string(), "0.000500000000000000000000000");
    }

    #[test]
    fn a_row_breaking_the_unit_rule_is_rejected() {
        // Raw units claimed (no liquidator) but whole tokens written: 1 wei of ETH for 2000 USDC.
        let broken = format!(
            "1,WETH,{POOL},2000,USDC,1621382400,{USER},,1000000000000000000.0,500000000000000.0\n"
        );
        let error = run(std::slice::from_ref(&broken), false)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("breaks the unit rule") && error.contains("line 2"),
            "{error}"
        );
        let batch = run(&[broken, raw_row(1_621_382_401)], true).unwrap();
        assert_eq!(liquidations(&batch).len(), 1);
        assert_eq!(batch.report.rejected.len(), 1);
    }

    #[test]
    fn duplicates_identical_or_price_only_are_dropped_other_liquidators_kept() {
        let price_only = token_row(1_630_000_000, BOT).replace(",1.0,0.0005", ",1.0,0.0006");
        let other_bot = token_row(1_630_000_000, "0x3333333333333333333333333333333333333333");
        let batch = run(
            &[
                token_row(1_630_000_000, BOT),
                token_row(1_630_000_000, BOT),
                price_only,
                other_bot,
            ],
            false,
        )
        .unwrap();
        assert_eq!(liquidations(&batch).len(), 2);
        assert_eq!(batch.report.duplicates, 2);
        assert_eq!(batch.report.counters["identical duplicate rows dropped"], 1);
        assert_eq!(
            batch.report.counters["duplicate rows differing only in prices dropped (first kept)"],
            1
        );
        assert_eq!(
            batch.report.counters["same liquidation facts by different liquidators (kept)"],
            1
        );
        assert_eq!(batch.report.flagged.len(), 2);
    }

    #[test]
    fn bad_values_are_rejected_with_their_cell() {
        let cases = [
            (
                format!("1.0000001,USDC,{POOL},1,USDC,1630000000,{USER},{BOT},,\n"),
                "collateralAmount",
                "more decimals than the token has (6)",
            ),
            (
                format!("-1,WETH,{POOL},1,USDC,1630000000,{USER},{BOT},,\n"),
                "collateralAmount",
                "negative",
            ),
            (
                format!("1,UST,{POOL},1,USDC,1630000000,{USER},{BOT},,\n"),
                "collateralReserve",
                "not in the reserves file",
            ),
            (
                format!("1.5,WETH,{POOL},1,USDC,1621382400,{USER},,,\n"),
                "collateralAmount",
                "not an integer number of base units",
            ),
            (
                format!("1,WETH,{POOL},1,USDC,yesterday,{USER},{BOT},,\n"),
                "timestamp",
                "not an integer",
            ),
            (
                format!("1,WETH,{POOL},1,USDC,1630000000,0x12,{BOT},,\n"),
                "user",
                "not an address",
            ),
        ];
        for (row, column, reason) in cases {
            let error = run(&[row], false).unwrap_err();
            let IngestError::Row(error) = error else {
                panic!("{error}")
            };
            assert_eq!(error.column, column);
            assert!(
                error.reason.contains(reason),
                "{}: {}",
                column,
                error.reason
            );
        }
    }

    #[test]
    fn missing_reserves_file_or_column() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("liquidations.csv");
        std::fs::write(&path, HEADER).unwrap();
        assert!(
            read(&path, &Options::default(), &context(false))
                .unwrap_err()
                .to_string()
                .contains("--reserves")
        );
        std::fs::write(dir.path().join("tokens.csv"), TOKENS).unwrap();
        std::fs::write(&path, HEADER.replace("user,", "")).unwrap();
        assert!(
            matches!(read(&path, &Options::default(), &context(false)), Err(IngestError::MissingColumn { column, .. }) if column == "user")
        );
        std::fs::write(&path, HEADER).unwrap();
        assert!(
            read(&path, &Options::default(), &context(false))
                .unwrap()
                .events
                .is_empty()
        );
    }
}
