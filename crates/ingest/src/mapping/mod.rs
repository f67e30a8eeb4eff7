//! The generic CSV source: a TOML mapping says which column means what.
//!
//! A mapping names the time column and its format, optionally the block, transaction and log
//! columns, and one or more `[[event]]` tables: the event kind and, for each of its fields,
//! either a constant or a column with its conversion (id kind, unit and decimals, sign). Every
//! row produces the events of the tables in order (a table with `when`/`unless` only when those
//! cells are non-blank/blank; [`rules`]). A field may read a second file joined by key, and such
//! a file may produce events of its own ([`lookup`]); `[duplicates]` drops repeated rows and a
//! liquidation table may check its amounts against its prices ([`rules`]). The built-in Maker
//! adapter is a set of such mappings (see `fixtures/mappings/`), which keeps per-source rules
//! declarative. The format is documented in `docs/ingest.md`.
//!
//! Must never: fall back to a default for a column that is named but missing, or convert an
//! amount through anything but its decimal digits.

mod locate;
mod lookup;
mod rules;
#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cascade_events::{
    AccountTotals, Amount, B256, CollateralToggle, Event, Fixed, Id, IndexUpdate,
    LiquidationDetail, ParamChange, PartialLiquidation, Payload, PositionChange, PositionSnapshot,
    PriceUpdate, Protocol, Symbol, Timestamp, U256, VaultOpen,
};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::batch::{Context, EventBuffer, Rejects, SourceBatch};
use crate::error::{IngestError, RowError};
use crate::mapped_parquet::ParquetInput;
use crate::table::{self, Cell, CsvInput, Row, RowSource};
use crate::value::{self, IdKind, Sign, TimeFormat, Unit};
use locate::{Step, locate};
use lookup::{Join, LookupSpec, LookupTable};
use rules::{ColumnList, Duplicates, DuplicatesSpec, Gate, Side, Tally, Test, Verdict};

/// Rows read before the event vector is reserved for the whole file.
const RESERVE_AFTER: u64 = 4096;

/// A parsed mapping file.
#[derive(Debug, Clone)]
pub struct Mapping {
    name: PathBuf,
    text: String,
    spec: Box<MappingSpec>,
}

impl Mapping {
    /// Reads and checks a mapping file.
    pub fn from_file(path: &Path) -> Result<Self, IngestError> {
        let text = std::fs::read_to_string(path).map_err(|source| IngestError::Io {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(path, &text)
    }

    /// Parses mapping text; `name` is used in messages.
    pub fn from_toml(name: &Path, text: &str) -> Result<Self, IngestError> {
        let spec: MappingSpec = toml::from_str(text).map_err(|error| IngestError::Mapping {
            file: name.to_owned(),
            message: place_unknown_field(text, error.message())
                .unwrap_or_else(|| error.to_string()),
        })?;
        // Fail on constants and option combinations now, not at the first row.
        spec.check(name, text)?;
        Ok(Mapping {
            name: name.to_owned(),
            text: text.to_owned(),
            spec: Box::new(spec),
        })
    }

    /// The mapping text as read (part of a source's content hash).
    pub fn text(&self) -> &str {
        &self.text
    }

    /// False when the mapping says `prices = "per-row"`: its prices are not points of a series
    /// (the source is recorded as [`crate::SourceKind::CsvRows`]).
    pub fn prices_are_series(&self) -> bool {
        self.spec.prices == PriceIdentity::Series
    }

    /// True when the mapping says `instant_order = "file"`: at one instant its events keep the
    /// file's order (the source is recorded as [`crate::SourceKind::CsvFileOrder`]).
    pub fn keeps_file_order(&self) -> bool {
        self.spec.instant_order == InstantOrder::File
    }

    /// The mapping's `description`, if it has one.
    pub fn description(&self) -> Option<&str> {
        self.spec.description.as_deref()
    }

    /// Replaces the constant of field `field` in every `[[event]]` that has one (the Maker
    /// adapter sets the ilk of files that do not name it).
    pub(crate) fn set_constant(&mut self, field: &str, value: &str) {
        for event in &mut self.spec.events {
            event.set_constant(field, value);
        }
    }

    /// Sets `maker_dog_from_block` on every liquidation table.
    pub(crate) fn set_dog_from_block(&mut self, block: Option<u64>) {
        for event in &mut self.spec.events {
            if let EventSpec::Liquidation(spec) = event {
                spec.maker_dog_from_block = block;
            }
        }
    }

    /// The lookup files read along with the main file `input`, in mapping order (they shape
    /// the events, so they are part of the source's content hash).
    pub fn lookup_files(&self, input: &Path) -> Vec<PathBuf> {
        self.spec
            .lookups
            .iter()
            .map(|lookup| lookup.resolve(input))
            .collect()
    }

    /// Reads the `[[lookup]]` table `name` from `path` instead of the mapping's `path` (the
    /// command line's `--lookup NAME=FILE`).
    pub fn set_lookup_path(&mut self, name: &str, path: &Path) -> Result<(), IngestError> {
        let lookup = self
            .spec
            .lookups
            .iter_mut()
            .find(|lookup| lookup.name == name)
            .ok_or_else(|| IngestError::Mapping {
                file: self.name.clone(),
                message: format!("no [[lookup]] table named {name:?}"),
            })?;
        // The table's bytes, not its path, are part of the content hash (`lookup_files`).
        lookup.path = path.to_owned();
        Ok(())
    }

    /// Reads one CSV file through this mapping, appending its events to `batch`: the events of
    /// its lookup tables first (when the file produced any), then the rows'.
    pub fn read_into(
        &self,
        path: &Path,
        context: &Context<'_>,
        rejects: &mut Rejects,
        batch: &mut SourceBatch,
    ) -> Result<(), IngestError> {
        let mut input = CsvInput::open(path)?;
        self.read_rows(path, &mut input, context, rejects, batch)
    }

    /// Reads one Parquet file through this mapping, as [`Mapping::read_into`] a CSV file: only
    /// the columns the mapping names are read, each as its exact text, or as its typed value
    /// where a field converts that to the same result ([`crate::mapped_parquet`]).
    pub fn read_parquet_into(
        &self,
        path: &Path,
        context: &Context<'_>,
        rejects: &mut Rejects,
        batch: &mut SourceBatch,
    ) -> Result<(), IngestError> {
        let mut columns = Vec::new();
        self.spec
            .collect_columns(&mut columns, &mut BTreeMap::new());
        let mut input = ParquetInput::open(path, &columns)?;
        if let Some(column) = &self.spec.time.column
            && input.is_time_column(column)
            && self.spec.time.format != "rfc3339"
        {
            return Err(IngestError::Mapping {
                file: self.name.clone(),
                message: format!(
                    "[time] column {column:?} of {} is a Parquet timestamp or date, read as an RFC 3339 time in UTC: give format = \"rfc3339\"",
                    path.display()
                ),
            });
        }
        self.read_rows(path, &mut input, context, rejects, batch)
    }

    fn read_rows(
        &self,
        path: &Path,
        input: &mut dyn RowSource,
        context: &Context<'_>,
        rejects: &mut Rejects,
        batch: &mut SourceBatch,
    ) -> Result<(), IngestError> {
        let mut lookups = BTreeMap::new();
        for lookup in &self.spec.lookups {
            let table = LookupTable::load(
                lookup,
                &self.name,
                &lookup.resolve(path),
                context,
                rejects,
                batch,
            )?;
            lookups.insert(lookup.name.clone(), Arc::new(table));
        }
        let mut plan = Plan::compile(
            &self.spec,
            &self.name,
            Some(&self.text),
            path,
            input.header(),
            context.chain_id,
            &lookups,
        )?;
        batch.report.files.push(path.to_owned());
        let first = batch.events.len();
        let mut earliest: Option<Timestamp> = None;
        let mut produced = Vec::with_capacity(self.spec.events.len());
        let mut seen = 0u64;
        let hint = input.size_hint();
        let rows = input.each_row(context.progress, &mut |row| {
            seen += 1;
            if seen == RESERVE_AFTER
                && let Ok(row) = &row
            {
                // One reservation sized from the rows so far, instead of doubling a vector of
                // a million events (hundreds of bytes each) several times over.
                let rows = hint.rows(row.byte_offset(), seen);
                let events = rows.saturating_mul(self.spec.events.len() as u64) / 10 * 11;
                batch.events.reserve(usize::try_from(events).unwrap_or(0));
            }
            produced.clear();
            match row.and_then(|row| plan.row(row, &mut produced)) {
                Ok(time) => {
                    if !produced.is_empty() {
                        earliest = Some(earliest.map_or(time, |e| e.min(time)));
                    }
                    batch.events.extend(produced.drain(..));
                }
                Err(error) => rejects.reject(error)?,
            }
            Ok(())
        })?;
        batch.report.rows_read += rows;
        plan.tally.drain_into(&mut batch.report, path);
        if let Some(time) = earliest {
            prepend_lookup_events(batch, first, time, plan.chain_id, lookups.values());
        }
        Ok(())
    }
}

/// serde's "unknown field `x`" inside an `[[event]]` (an internally tagged table, which the TOML
/// parser can only place at its header), placed at the key itself.
fn place_unknown_field(text: &str, message: &str) -> Option<String> {
    let rest = message.strip_prefix("unknown field `")?;
    let field = &rest[..rest.find('`')?];
    let place = locate::locate_key_named(text, field)?;
    Some(format!("{place}: {message}"))
}

/// Puts the events of the lookup tables before the events from `first` on, at `time`: a lookup
/// file is a snapshot without times of its own, in force from the first event it explains.
fn prepend_lookup_events<'a>(
    batch: &mut SourceBatch,
    first: usize,
    time: Timestamp,
    chain_id: u64,
    tables: impl Iterator<Item = &'a Arc<LookupTable>>,
) {
    let mut events = EventBuffer::new(0);
    for table in tables {
        events.extend(
            table
                .events()
                .map(|payload| Event::at(chain_id, time, payload)),
        );
    }
    if events.is_empty() {
        return;
    }
    let rows: Vec<Event> = batch.events.iter_from(first).collect();
    batch.events.truncate(first);
    batch.events.extend(events.iter());
    batch.events.extend(rows);
}

// ---------------------------------------------------------------------------------------------
// The file format.

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct MappingSpec {
    /// Free text for humans.
    #[serde(default)]
    description: Option<String>,
    chain_id: Option<u64>,
    block: Option<String>,
    tx_hash: Option<String>,
    tx_index: Option<String>,
    log_index: Option<String>,
    time: TimeSpec,
    #[serde(rename = "event", default)]
    events: Vec<EventSpec>,
    #[serde(rename = "lookup", default)]
    lookups: Vec<LookupSpec>,
    duplicates: Option<DuplicatesSpec>,
    #[serde(default)]
    prices: PriceIdentity,
    #[serde(default)]
    instant_order: InstantOrder,
}

/// `instant_order`: how the source's events at one instant sort against each other and against
/// other sources' (`crate::order`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum InstantOrder {
    /// Parameter changes, prices, snapshots, position changes, liquidations, across sources.
    #[default]
    ByKind,
    /// The file's own order, after every other source's events of that instant (a file whose
    /// rows at one second must replay as written: a repay before the deposit it funds).
    File,
}

/// `prices`: what a price event without a round is, for the duplicate rule.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum PriceIdentity {
    /// Points of a price series: one price per feed, asset, quote and second (a repeat is an
    /// identical duplicate, a different value a conflict).
    #[default]
    Series,
    /// Prices observed with the row's other event (the Aave export's reserve prices): no
    /// identity of their own, every one kept.
    PerRow,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TimeSpec {
    /// The column of the time; or `value`, one time for every row (a snapshot's).
    column: Option<String>,
    value: Option<String>,
    format: String,
    /// The zone naive times (a `strftime` pattern) are written in: `UTC` or `+HH:MM`.
    timezone: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
enum EventSpec {
    Price(PriceSpec),
    VaultOpen(VaultOpenSpec),
    Deposit(PositionSpec),
    Withdraw(PositionSpec),
    Borrow(PositionSpec),
    Repay(PositionSpec),
    Liquidation(Box<LiquidationSpec>),
    CollateralToggle(ToggleSpec),
    IndexUpdate(IndexSpec),
    ParamChange(ParamSpec),
    Snapshot(Box<SnapshotSpec>),
    AccountTotals(Box<TotalsSpec>),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceSpec {
    when: Option<ColumnList>,
    unless: Option<ColumnList>,
    count: Option<String>,
    asset: Field,
    quote: Field,
    price: Field,
    feed: Field,
    round: Option<Field>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct VaultOpenSpec {
    when: Option<ColumnList>,
    unless: Option<ColumnList>,
    count: Option<String>,
    protocol: Field,
    market: Field,
    account: Field,
    owner: Option<Field>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PositionSpec {
    when: Option<ColumnList>,
    unless: Option<ColumnList>,
    count: Option<String>,
    protocol: Field,
    market: Field,
    account: Field,
    asset: Field,
    amount: Field,
    shares: Option<Field>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum DetailSpec {
    #[default]
    None,
    Aave,
    MakerCat,
    MakerDog,
    /// Compound v2 `LiquidateBorrow`: `collateral_seized` is `seizeTokens`, in cTokens, which
    /// the Compound model turns into the underlying with the market's exchange rate in the log,
    /// as it does for the `eth-logs` adapter's events.
    Compound,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct LiquidationSpec {
    when: Option<ColumnList>,
    unless: Option<ColumnList>,
    count: Option<String>,
    protocol: Field,
    market: Field,
    account: Field,
    liquidator: Option<Field>,
    collateral_asset: Field,
    collateral_seized: Field,
    debt_asset: Field,
    debt_repaid: Field,
    #[serde(default)]
    detail: DetailSpec,
    /// Maker: rows at or after this block are Dog barks (`debt_repaid` is `due`), earlier rows
    /// Cat bites (`debt_repaid` is `tab`). Overrides `detail`.
    maker_dog_from_block: Option<u64>,
    /// Rows whose collateral and debt, valued at these prices, are more than this factor apart
    /// are rejected (a unit slip); rows lacking either price are counted as not checked.
    plausible_within: Option<u64>,
    collateral_price: Option<Field>,
    debt_price: Option<Field>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToggleSpec {
    when: Option<ColumnList>,
    unless: Option<ColumnList>,
    count: Option<String>,
    protocol: Field,
    market: Field,
    account: Field,
    asset: Field,
    enabled: Field,
}

/// One asset of an account's position from a positions export (`position-snapshot` events).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct SnapshotSpec {
    when: Option<ColumnList>,
    unless: Option<ColumnList>,
    count: Option<String>,
    protocol: Field,
    market: Field,
    account: Field,
    asset: Field,
    collateral: Field,
    debt: Field,
    /// Whether the amounts are the protocol's stored units (Aave scaled balances, Maker `art`);
    /// false when absent.
    scaled: Option<Field>,
    collateral_enabled: Option<Field>,
    /// Aave v3 e-mode category of the account (an integer 0..=255).
    e_mode: Option<Field>,
}

/// An account's whole position as `getUserAccountData` totals (`account-totals` events).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TotalsSpec {
    when: Option<ColumnList>,
    unless: Option<ColumnList>,
    count: Option<String>,
    protocol: Field,
    market: Field,
    account: Field,
    /// Total collateral in the base currency (an amount: wei with `unit = "base"`, decimal ETH
    /// with `decimals = 18`).
    collateral: Field,
    debt: Field,
    /// The weighted liquidation threshold: basis points (8250) or a fraction (0.825).
    liquidation_threshold: Field,
    ltv: Option<Field>,
    health_factor: Option<Field>,
    e_mode: Option<Field>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct IndexSpec {
    when: Option<ColumnList>,
    unless: Option<ColumnList>,
    count: Option<String>,
    protocol: Field,
    market: Field,
    asset: Field,
    supply_index: Option<Field>,
    borrow_index: Option<Field>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParamSpec {
    when: Option<ColumnList>,
    unless: Option<ColumnList>,
    count: Option<String>,
    protocol: Field,
    market: Field,
    param: Field,
    value: Field,
}

impl MappingSpec {
    /// Whether the mapping writes `decimals` parameters itself (a `param-change` table whose
    /// `param` is `decimals`, or comes from a column and may be): then it is not done for it.
    fn declares_decimals(&self) -> bool {
        let lookup_events = self.lookups.iter().flat_map(|lookup| &lookup.events);
        self.events
            .iter()
            .chain(lookup_events)
            .any(|event| match event {
                EventSpec::ParamChange(param) => match &param.param {
                    Field::Const(name) => name == "decimals",
                    Field::Options(options) => {
                        options.value.as_ref().is_none_or(|name| name == "decimals")
                    }
                },
                _ => false,
            })
    }
}

impl EventSpec {
    fn set_constant(&mut self, field: &str, value: &str) {
        let target = match (self, field) {
            (EventSpec::VaultOpen(s), "market") => &mut s.market,
            (
                EventSpec::Deposit(s)
                | EventSpec::Withdraw(s)
                | EventSpec::Borrow(s)
                | EventSpec::Repay(s),
                "market",
            ) => &mut s.market,
            (EventSpec::Liquidation(s), "market") => &mut s.market,
            (EventSpec::ParamChange(s), "market") => &mut s.market,
            _ => return,
        };
        if matches!(target, Field::Const(_)) {
            *target = Field::Const(value.to_owned());
        }
    }
}

/// One field of an event: a constant, or a column with its conversion options.
#[derive(Debug, Clone)]
enum Field {
    Const(String),
    Options(FieldOptions),
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FieldOptions {
    column: Option<String>,
    value: Option<String>,
    /// With `key`: `column` is a column of this `[[lookup]]` table, in the row whose key is the
    /// main file's `key` cell.
    lookup: Option<String>,
    key: Option<String>,
    id: Option<IdKind>,
    unit: Option<Unit>,
    decimals: Option<DecimalsSpec>,
    /// Fixed values: the text is the value times `10^shift` (wei for ETH: 18).
    shift: Option<u8>,
    sign: Option<Sign>,
    scaled: Option<bool>,
    /// Amounts in Compound cTokens: the exchange rate as `CToken.exchangeRateStored()` returns
    /// it (an integer mantissa scaled by 1e18), from a column, a lookup or a constant; the
    /// amount becomes underlying base units.
    exchange_rate: Option<Box<FieldOptions>>,
    #[serde(default)]
    optional: bool,
    /// A liquidation's side the source does not have (`debt_repaid = { unknown = true }`),
    /// alone in its table.
    unknown: Option<bool>,
    /// What a blank cell of a liquidation's side means: `"unknown"` (otherwise it is an error).
    blank: Option<BlankMeans>,
}

/// What a blank cell means where `blank` says it (`blank = "unknown"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
enum BlankMeans {
    /// The amount is not known: the liquidation is recorded with that side unknown.
    Unknown,
}

impl FieldOptions {
    /// The keys given besides `unknown`, for the error that `unknown = true` stands alone.
    fn keys_besides_unknown(&self) -> Vec<&'static str> {
        [
            ("column", self.column.is_some()),
            ("value", self.value.is_some()),
            ("lookup", self.lookup.is_some()),
            ("key", self.key.is_some()),
            ("id", self.id.is_some()),
            ("unit", self.unit.is_some()),
            ("decimals", self.decimals.is_some()),
            ("shift", self.shift.is_some()),
            ("sign", self.sign.is_some()),
            ("scaled", self.scaled.is_some()),
            ("exchange_rate", self.exchange_rate.is_some()),
            ("optional", self.optional),
            ("blank", self.blank.is_some()),
        ]
        .into_iter()
        .filter_map(|(key, given)| given.then_some(key))
        .collect()
    }
}

impl FieldOptions {
    /// Calls `main` with every column of the file these options read, and `lookup` with every
    /// (table, column) they join.
    fn columns(&self, main: &mut dyn FnMut(&String), lookup: &mut dyn FnMut(&str, &String)) {
        match (&self.column, &self.lookup, &self.key) {
            (Some(column), Some(table), Some(key)) => {
                main(key);
                lookup(table, column);
            }
            (Some(column), ..) => main(column),
            _ => {}
        }
        if let Some(DecimalsSpec::Lookup(r)) = &self.decimals {
            main(&r.key);
            lookup(&r.lookup, &r.column);
        }
        if let Some(rate) = &self.exchange_rate {
            rate.columns(main, lookup);
        }
    }
}

/// A precision: a number, or a column of a lookup table (`{ lookup, key, column }`).
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum DecimalsSpec {
    Fixed(u8),
    Lookup(LookupRef),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct LookupRef {
    lookup: String,
    key: String,
    column: String,
}

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl<'de> Visitor<'de> for FieldVisitor {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(
                    "a constant (string, number, boolean) or a table with `column` or `value`",
                )
            }
            fn visit_str<E: de::Error>(self, text: &str) -> Result<Field, E> {
                Ok(Field::Const(text.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, number: i64) -> Result<Field, E> {
                Ok(Field::Const(number.to_string()))
            }
            fn visit_u64<E: de::Error>(self, number: u64) -> Result<Field, E> {
                Ok(Field::Const(number.to_string()))
            }
            fn visit_bool<E: de::Error>(self, flag: bool) -> Result<Field, E> {
                Ok(Field::Const(flag.to_string()))
            }
            fn visit_map<M: MapAccess<'de>>(self, map: M) -> Result<Field, M::Error> {
                FieldOptions::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(Field::Options)
            }
        }
        deserializer.deserialize_any(FieldVisitor)
    }
}

// ---------------------------------------------------------------------------------------------
// Checking and compiling against a header.

/// What kind of value a field holds, which decides the options it accepts.
#[derive(Clone, Copy, PartialEq, Eq)]
enum FieldType {
    Id,
    Amount,
    Fixed,
    Symbol,
    Round,
    Bool,
}

impl FieldType {
    fn allows(self, options: &FieldOptions) -> Result<(), String> {
        let mut extra = Vec::new();
        let only_for = |present: bool, name: &str, allowed: bool, extra: &mut Vec<String>| {
            if present && !allowed {
                extra.push(name.to_owned());
            }
        };
        only_for(
            options.id.is_some(),
            "id",
            self == FieldType::Id,
            &mut extra,
        );
        only_for(
            options.unit.is_some(),
            "unit",
            self == FieldType::Amount,
            &mut extra,
        );
        only_for(
            options.sign.is_some(),
            "sign",
            self == FieldType::Amount,
            &mut extra,
        );
        only_for(
            options.decimals.is_some(),
            "decimals",
            matches!(self, FieldType::Amount | FieldType::Fixed),
            &mut extra,
        );
        only_for(
            options.scaled.is_some(),
            "scaled",
            self == FieldType::Fixed,
            &mut extra,
        );
        only_for(
            options.shift.is_some(),
            "shift",
            self == FieldType::Fixed,
            &mut extra,
        );
        only_for(
            options.exchange_rate.is_some(),
            "exchange_rate",
            self == FieldType::Amount,
            &mut extra,
        );
        if options.unknown.is_some() || options.blank.is_some() {
            return Err(
                "only a liquidation's `collateral_seized` and `debt_repaid` can be unknown".into(),
            );
        }
        if !extra.is_empty() {
            return Err(format!(
                "option(s) {} do not apply to this field",
                extra.join(", ")
            ));
        }
        match (&options.column, &options.value) {
            (Some(_), Some(_)) => return Err("give either `column` or `value`, not both".into()),
            (None, None) => return Err("needs `column` or `value`".into()),
            _ => {}
        }
        match (&options.lookup, &options.key) {
            (Some(_), None) | (None, Some(_)) => {
                return Err(
                    "`lookup` and `key` go together (the table and the main file's key column)"
                        .into(),
                );
            }
            (Some(_), Some(_)) if options.column.is_none() => {
                return Err("`lookup` needs `column` (the lookup file's column to read)".into());
            }
            _ => {}
        }
        if options.value.is_some() && matches!(options.decimals, Some(DecimalsSpec::Lookup(_))) {
            return Err("a constant cannot take its decimals from a lookup".into());
        }
        if self == FieldType::Amount
            && options.unit.unwrap_or_default() == Unit::Tokens
            && options.decimals.is_none()
        {
            return Err("an amount in tokens needs `decimals` (the token's precision)".into());
        }
        if options.scaled == Some(true) && options.decimals.is_none() {
            return Err("`scaled = true` needs `decimals`".into());
        }
        if let Some(shift) = options.shift {
            match &options.decimals {
                _ if options.scaled == Some(true) => {
                    return Err("give either `scaled` or `shift`, not both".into());
                }
                None => return Err("`shift` needs `decimals`".into()),
                Some(DecimalsSpec::Fixed(decimals)) if shift > *decimals => {
                    return Err(format!(
                        "`shift = {shift}` is more than `decimals = {decimals}`"
                    ));
                }
                Some(_) => {}
            }
        }
        Ok(())
    }
}

/// A boxed cell conversion, given the precision the field's `decimals` resolve to for the row.
type Conv<T> = Box<dyn Fn(&str, Option<u8>) -> Result<T, String> + Send + Sync>;

/// The same conversion of a typed cell (a Parquet value), without its text: `Some` only where
/// the [`Conv`] of the cell's text gives that value, `None` to convert the text instead (which
/// also words every error). See the typed functions of [`value`].
type Fast<T> = Box<dyn Fn(Cell<'_>, Option<u8>) -> Option<T> + Send + Sync>;

/// Where a field's value comes from, compiled.
enum Get<T> {
    Absent,
    Const(T),
    Column {
        index: usize,
        optional: bool,
        decimals: Decimals,
        convert: Conv<T>,
        fast: Option<Fast<T>>,
    },
    Lookup {
        join: Join,
        optional: bool,
        decimals: Decimals,
        convert: Conv<T>,
    },
}

/// A field's `decimals`, compiled.
enum Decimals {
    Unset,
    Fixed(u8),
    Lookup(Join),
}

impl Decimals {
    fn get(&self, row: &Row<'_>) -> Result<Option<u8>, Box<RowError>> {
        match self {
            Decimals::Unset => Ok(None),
            Decimals::Fixed(decimals) => Ok(Some(*decimals)),
            Decimals::Lookup(join) => join.parse(row, value::decimals).map(Some),
        }
    }
}

impl<T: Copy> Get<T> {
    fn required(&self, row: &Row<'_>) -> Result<T, Box<RowError>> {
        match self {
            Get::Const(value) => Ok(*value),
            Get::Column {
                index,
                decimals,
                convert,
                fast,
                ..
            } => {
                let decimals = decimals.get(row)?;
                // A CSV row has only text: it goes straight to the text conversion.
                if let Some(fast) = fast.as_ref().filter(|_| row.is_typed())
                    && let Some(value) = fast(row.cell(*index), decimals)
                {
                    return Ok(value);
                }
                row.parse(*index, |text| convert(text, decimals))
            }
            Get::Lookup {
                join,
                decimals,
                convert,
                ..
            } => {
                let decimals = decimals.get(row)?;
                join.parse(row, |text| convert(text, decimals))
            }
            Get::Absent => Err(row.whole_row_error("a required field has no value")),
        }
    }

    fn optional(&self, row: &Row<'_>) -> Result<Option<T>, Box<RowError>> {
        let blank = match self {
            Get::Absent => return Ok(None),
            Get::Const(value) => return Ok(Some(*value)),
            Get::Column {
                index, optional, ..
            } => *optional && row.is_blank(*index),
            Get::Lookup { join, optional, .. } => *optional && join.is_blank(row)?,
        };
        if blank {
            Ok(None)
        } else {
            self.required(row).map(Some)
        }
    }

    /// The precision the field's `decimals` give for this row.
    fn decimals(&self, row: &Row<'_>) -> Result<Option<u8>, Box<RowError>> {
        match self {
            Get::Column { decimals, .. } | Get::Lookup { decimals, .. } => decimals.get(row),
            Get::Absent | Get::Const(_) => Ok(None),
        }
    }

    /// The main-file column an error about this field's value points at.
    fn column(&self) -> Option<usize> {
        match self {
            Get::Column { index, .. } => Some(*index),
            Get::Lookup { join, .. } => Some(join.key),
            Get::Absent | Get::Const(_) => None,
        }
    }
}

/// An amount field, with the cToken exchange rate that converts it to underlying base units.
struct AmountGet {
    get: Get<Amount>,
    rate: Option<Get<U256>>,
}

/// The scale of a Compound `Exp` mantissa (`ExponentialNoError.expScale`).
const EXP_SCALE: u128 = 1_000_000_000_000_000_000;

impl AmountGet {
    fn required(&self, row: &Row<'_>) -> Result<Amount, Box<RowError>> {
        let amount = self.get.required(row)?;
        self.underlying(amount, row)
    }

    fn optional(&self, row: &Row<'_>) -> Result<Option<Amount>, Box<RowError>> {
        match self.get.optional(row)? {
            Some(amount) => self.underlying(amount, row).map(Some),
            None => Ok(None),
        }
    }

    /// cTokens to underlying base units as Compound does it: `CToken.redeemFresh` computes
    /// `mul_ScalarTruncate(exchangeRate, redeemTokens)`, i.e. `tokens * mantissa / 1e18`
    /// rounded down (`ExponentialNoError.truncate`), with `exchangeRate` the 1e18-scaled
    /// mantissa `exchangeRateStored()` returns.
    fn underlying(&self, amount: Amount, row: &Row<'_>) -> Result<Amount, Box<RowError>> {
        let Some(rate) = &self.rate else {
            return Ok(amount);
        };
        let mantissa = rate.required(row)?;
        let product = amount.0.checked_mul(mantissa).ok_or_else(|| {
            let reason = format!(
                "{} cTokens times the exchange rate {mantissa} overflows 256 bits",
                amount.0
            );
            match rate.column() {
                Some(column) => row.error(column, reason),
                None => row.whole_row_error(reason),
            }
        })?;
        Ok(Amount(product / U256::from(EXP_SCALE)))
    }

    /// The precision of the amount as written (the cToken's, when converted).
    fn decimals(&self, row: &Row<'_>) -> Result<Option<u8>, Box<RowError>> {
        self.get.decimals(row)
    }

    fn column(&self) -> Option<usize> {
        self.get.column()
    }
}

/// A liquidation's side: an amount, declared unknown (`{ unknown = true }`), or an amount whose
/// blank cell means unknown (`blank = "unknown"`).
enum SideGet {
    Unknown,
    Known(AmountGet),
    BlankUnknown(AmountGet),
}

impl SideGet {
    /// The row's amount; `None` where the mapping declares it unknown.
    fn get(&self, row: &Row<'_>) -> Result<Option<Amount>, Box<RowError>> {
        match self {
            SideGet::Unknown => Ok(None),
            SideGet::Known(amount) => amount.required(row).map(Some),
            SideGet::BlankUnknown(amount) => amount.optional(row),
        }
    }

    /// How the amount is read, unless it is always unknown.
    fn amount(&self) -> Option<&AmountGet> {
        match self {
            SideGet::Unknown => None,
            SideGet::Known(amount) | SideGet::BlankUnknown(amount) => Some(amount),
        }
    }
}

#[derive(Clone)]
struct Compiler<'a> {
    mapping: &'a Path,
    file: &'a Path,
    header: &'a [String],
    lookups: &'a BTreeMap<String, Arc<LookupTable>>,
    /// The mapping's text, to name the line and column of a key in errors.
    text: Option<&'a str>,
    /// The table being compiled (`event`, 2), under which field names are looked up.
    at: Vec<Step>,
}

/// `line L, column C: ` of the key at `path` of the mapping `text`, or nothing.
fn key_place(text: Option<&str>, path: &[Step]) -> String {
    text.and_then(|text| locate(text, path))
        .map_or_else(String::new, |place| format!("{place}: "))
}

/// A path of keys, for [`key_place`].
fn keys(names: &[&str]) -> Vec<Step> {
    names
        .iter()
        .map(|name| Step::Key((*name).to_owned()))
        .collect()
}

impl Compiler<'_> {
    /// The same compiler for the `index`-th table of the array `array` (`event`).
    fn within(&self, array: &[Step], index: usize) -> Self {
        let mut at = array.to_vec();
        at.push(Step::Index(index));
        Compiler { at, ..self.clone() }
    }

    fn mapping_error(&self, field: &str, message: impl fmt::Display) -> IngestError {
        let mut path = self.at.clone();
        path.push(Step::Key(field.to_owned()));
        IngestError::Mapping {
            file: self.mapping.to_owned(),
            message: format!("{}field `{field}`: {message}", key_place(self.text, &path)),
        }
    }

    fn column(&self, name: &str) -> Result<usize, IngestError> {
        table::column(self.file, self.header, name)
    }

    fn join(
        &self,
        field: &str,
        lookup: &str,
        key: &str,
        column: &str,
    ) -> Result<Join, IngestError> {
        let table = self.lookups.get(lookup).ok_or_else(|| {
            self.mapping_error(field, format!("no [[lookup]] table named {lookup:?}"))
        })?;
        Ok(Join {
            key: self.column(key)?,
            column: table.column(column)?,
            table: Arc::clone(table),
        })
    }

    fn compile<T: Copy + 'static>(
        &self,
        name: &str,
        field: Option<&Field>,
        kind: FieldType,
        make: impl Fn(&FieldOptions) -> Conv<T>,
    ) -> Result<Get<T>, IngestError> {
        self.compile_fast(name, field, kind, make, |_| None)
    }

    /// [`Compiler::compile`] with a conversion of typed cells (`fast`) next to the text one.
    fn compile_fast<T: Copy + 'static>(
        &self,
        name: &str,
        field: Option<&Field>,
        kind: FieldType,
        make: impl Fn(&FieldOptions) -> Conv<T>,
        fast: impl Fn(&FieldOptions) -> Option<Fast<T>>,
    ) -> Result<Get<T>, IngestError> {
        let options = match field {
            None => return Ok(Get::Absent),
            Some(Field::Const(text)) => FieldOptions {
                value: Some(text.clone()),
                ..FieldOptions::default()
            },
            Some(Field::Options(options)) => options.clone(),
        };
        kind.allows(&options)
            .map_err(|message| self.mapping_error(name, message))?;
        let convert = make(&options);
        let decimals = match &options.decimals {
            None => Decimals::Unset,
            Some(DecimalsSpec::Fixed(decimals)) => Decimals::Fixed(*decimals),
            Some(DecimalsSpec::Lookup(r)) => {
                Decimals::Lookup(self.join(name, &r.lookup, &r.key, &r.column)?)
            }
        };
        match (
            &options.column,
            &options.value,
            &options.lookup,
            &options.key,
        ) {
            (Some(column), _, Some(lookup), Some(key)) => Ok(Get::Lookup {
                join: self.join(name, lookup, key, column)?,
                optional: options.optional,
                decimals,
                convert,
            }),
            (Some(column), ..) => Ok(Get::Column {
                index: self.column(column)?,
                optional: options.optional,
                decimals,
                convert,
                fast: fast(&options),
            }),
            (None, Some(text), ..) => {
                let decimals = match decimals {
                    Decimals::Fixed(decimals) => Some(decimals),
                    _ => None,
                };
                convert(text, decimals).map(Get::Const).map_err(|reason| {
                    self.mapping_error(name, format!("constant {text:?}: {reason}"))
                })
            }
            (None, None, ..) => Err(self.mapping_error(name, "needs `column` or `value`")),
        }
    }

    fn id(&self, name: &str, field: Option<&Field>) -> Result<Get<Id>, IngestError> {
        self.compile_fast(
            name,
            field,
            FieldType::Id,
            |o| {
                let kind = o.id.unwrap_or_default();
                Box::new(move |text, _| value::id(text, kind))
            },
            |o| {
                let kind = o.id.unwrap_or_default();
                Some(Box::new(move |cell, _| value::id_of(cell, kind)))
            },
        )
    }

    fn amount(&self, name: &str, field: Option<&Field>) -> Result<AmountGet, IngestError> {
        let get = self.compile_fast(
            name,
            field,
            FieldType::Amount,
            |o| {
                let (unit, sign) = (o.unit.unwrap_or_default(), o.sign.unwrap_or_default());
                Box::new(move |text, decimals| {
                    value::amount(text, unit, decimals.unwrap_or(0), sign)
                })
            },
            |o| {
                let (unit, sign) = (o.unit.unwrap_or_default(), o.sign.unwrap_or_default());
                Some(Box::new(move |cell, decimals| {
                    value::amount_of(cell, unit, decimals.unwrap_or(0), sign)
                }))
            },
        )?;
        let rate = match field {
            Some(Field::Options(FieldOptions {
                exchange_rate: Some(rate),
                ..
            })) => {
                if rate.decimals.is_some() {
                    return Err(self.mapping_error(
                        name,
                        "`exchange_rate` is the integer mantissa `exchangeRateStored()` returns (scaled by 1e18): it takes no `decimals`",
                    ));
                }
                let rate = Field::Options((**rate).clone());
                Some(self.compile_fast(
                    name,
                    Some(&rate),
                    FieldType::Round,
                    |_| Box::new(|text, _| value::exchange_rate(text)),
                    |_| {
                        Some(Box::new(|cell, _| {
                            value::integer_of(cell).filter(|r| !r.is_zero())
                        }))
                    },
                )?)
            }
            _ => None,
        };
        Ok(AmountGet { get, rate })
    }

    /// A liquidation's side, which may be declared unknown: `{ unknown = true }` alone, or
    /// `blank = "unknown"` beside a `column` (a blank cell is otherwise an error).
    fn side(&self, name: &str, field: &Field) -> Result<SideGet, IngestError> {
        let Field::Options(options) = field else {
            return self.amount(name, Some(field)).map(SideGet::Known);
        };
        let at = |key: &str, message: String| {
            let mut path = self.at.clone();
            path.extend(keys(&[name, key]));
            IngestError::Mapping {
                file: self.mapping.to_owned(),
                message: format!("{}field `{name}`: {message}", key_place(self.text, &path)),
            }
        };
        match options.unknown {
            Some(true) => {
                let others = options.keys_besides_unknown();
                return if others.is_empty() {
                    Ok(SideGet::Unknown)
                } else {
                    Err(at(
                        "unknown",
                        format!(
                            "`unknown = true` stands alone: drop {}",
                            others
                                .iter()
                                .map(|key| format!("`{key}`"))
                                .collect::<Vec<_>>()
                                .join(", ")
                        ),
                    ))
                };
            }
            Some(false) => {
                return Err(at(
                    "unknown",
                    "`unknown = false` is the default: drop it".to_owned(),
                ));
            }
            None => {}
        }
        let Some(BlankMeans::Unknown) = options.blank else {
            return self.amount(name, Some(field)).map(SideGet::Known);
        };
        if options.column.is_none() || options.optional {
            return Err(at(
                "blank",
                "`blank = \"unknown\"` needs a `column` and no `optional`".to_owned(),
            ));
        }
        let read = Field::Options(FieldOptions {
            blank: None,
            optional: true,
            ..options.clone()
        });
        self.amount(name, Some(&read)).map(SideGet::BlankUnknown)
    }

    fn fixed(&self, name: &str, field: Option<&Field>) -> Result<Get<Fixed>, IngestError> {
        self.fixed_checked(name, field, Ok)
    }

    fn price(&self, name: &str, field: Option<&Field>) -> Result<Get<Fixed>, IngestError> {
        self.fixed_checked(name, field, value::positive_price)
    }

    /// A fixed-point field whose parsed value must also pass `check`.
    fn fixed_checked(
        &self,
        name: &str,
        field: Option<&Field>,
        check: fn(Fixed) -> Result<Fixed, String>,
    ) -> Result<Get<Fixed>, IngestError> {
        self.compile_fast(
            name,
            field,
            FieldType::Fixed,
            |o| {
                let (scaled, shift) = (o.scaled.unwrap_or(false), o.shift);
                Box::new(move |text, decimals| {
                    match (shift, decimals) {
                        (Some(shift), Some(decimals)) => {
                            let digits = decimals.checked_sub(shift).ok_or_else(|| {
                                format!("`shift = {shift}` is more than the {decimals} decimals")
                            })?;
                            value::fixed(text, Some(digits), false)
                                .map(|parsed| Fixed::new(parsed.value, decimals))
                        }
                        _ => value::fixed(text, decimals, scaled),
                    }
                    .and_then(check)
                })
            },
            |o| {
                let (scaled, shift) = (o.scaled.unwrap_or(false), o.shift);
                Some(Box::new(move |cell, decimals| {
                    match (shift, decimals) {
                        (Some(shift), Some(decimals)) => {
                            value::fixed_of(cell, Some(decimals.checked_sub(shift)?), false)
                                .map(|parsed| Fixed::new(parsed.value, decimals))
                        }
                        _ => value::fixed_of(cell, decimals, scaled),
                    }
                    .filter(|fixed| check(*fixed).is_ok())
                }))
            },
        )
    }

    fn protocol(&self, field: &Field) -> Result<Get<Protocol>, IngestError> {
        self.compile("protocol", Some(field), FieldType::Symbol, |_| {
            Box::new(|text, _| text.trim().parse::<Protocol>())
        })
    }

    fn symbol(&self, name: &str, field: Option<&Field>) -> Result<Get<Symbol>, IngestError> {
        self.compile(name, field, FieldType::Symbol, |_| {
            Box::new(|text, _| value::symbol(text))
        })
    }

    fn round(&self, name: &str, field: Option<&Field>) -> Result<Get<u128>, IngestError> {
        self.compile(name, field, FieldType::Round, |_| {
            Box::new(|text, _| value::round_id(text))
        })
    }

    /// A small category number (an Aave v3 e-mode category, 0..=255).
    fn category(&self, name: &str, field: Option<&Field>) -> Result<Get<u8>, IngestError> {
        self.compile(name, field, FieldType::Round, |_| {
            Box::new(|text, _| {
                text.trim()
                    .parse::<u8>()
                    .map_err(|_| format!("{:?} is not a category number 0..=255", text.trim()))
            })
        })
    }

    fn boolean(&self, name: &str, field: Option<&Field>) -> Result<Get<bool>, IngestError> {
        self.compile(name, field, FieldType::Bool, |_| {
            Box::new(|text, _| value::boolean(text))
        })
    }

    /// The condition and counter of a table.
    fn gate(&self, event: &EventSpec) -> Result<Gate, IngestError> {
        let (when, unless, count) = event.gate();
        let columns = |list: Option<&ColumnList>| {
            list.map_or(&[][..], ColumnList::conditions)
                .iter()
                .map(|condition| Ok(Test::new(condition, self.column(condition.column())?)))
                .collect::<Result<Vec<_>, IngestError>>()
        };
        Ok(Gate {
            when: columns(when)?,
            unless: columns(unless)?,
            count: count.cloned(),
        })
    }
}

impl MappingSpec {
    /// Checks what can be checked without a data file: time format, constants, option
    /// combinations, lookup names. Compiling against headers that have every named column (and
    /// lookup tables without rows) does exactly that.
    fn check(&self, name: &Path, text: &str) -> Result<(), IngestError> {
        let mut header = Vec::new();
        let mut lookup_columns: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for lookup in &self.lookups {
            if lookup_columns
                .insert(&lookup.name, vec![lookup.key.clone()])
                .is_some()
            {
                return Err(IngestError::Mapping {
                    file: name.to_owned(),
                    message: format!("two [[lookup]] tables named {:?}", lookup.name),
                });
            }
        }
        self.collect_columns(&mut header, &mut lookup_columns);
        let mut lookups = BTreeMap::new();
        for lookup in &self.lookups {
            let mut columns = lookup_columns
                .remove(lookup.name.as_str())
                .unwrap_or_default();
            let mut add = |column: &String| {
                if !columns.contains(column) {
                    columns.push(column.clone());
                }
            };
            for event in &lookup.events {
                event.columns(&mut add, &mut |_, _| {});
            }
            let no_lookups = BTreeMap::new();
            let compiler = Compiler {
                mapping: name,
                file: &lookup.path,
                header: &columns,
                lookups: &no_lookups,
                text: Some(text),
                at: Vec::new(),
            };
            let index = self
                .lookups
                .iter()
                .position(|l| l.name == lookup.name)
                .unwrap_or(0);
            let mut array = keys(&["lookup"]);
            array.push(Step::Index(index));
            array.push(Step::Key("event".into()));
            for (number, event) in lookup.events.iter().enumerate() {
                let compiler = compiler.within(&array, number);
                compiler.gate(event)?;
                EventPlan::compile(event, &compiler)?;
            }
            lookups.insert(
                lookup.name.clone(),
                Arc::new(LookupTable::placeholder(
                    &lookup.name,
                    &lookup.path,
                    columns,
                )),
            );
        }
        Plan::compile(self, name, Some(text), name, &header, 1, &lookups).map(|_| ())
    }

    /// Adds the main file's columns the mapping names to `columns`, and to `lookups` the
    /// columns it reads from each lookup table.
    fn collect_columns(
        &self,
        columns: &mut Vec<String>,
        lookups: &mut BTreeMap<&str, Vec<String>>,
    ) {
        let mut add = |name: &String| {
            if !columns.contains(name) {
                columns.push(name.clone());
            }
        };
        if let Some(column) = &self.time.column {
            add(column);
        }
        for name in [&self.block, &self.tx_hash, &self.tx_index, &self.log_index]
            .into_iter()
            .flatten()
        {
            add(name);
        }
        if let Some(duplicates) = &self.duplicates {
            duplicates
                .key
                .iter()
                .chain(&duplicates.similar)
                .for_each(&mut add);
        }
        let mut add_lookup = |table: &str, column: &String| {
            if let Some(columns) = lookups.get_mut(table)
                && !columns.contains(column)
            {
                columns.push(column.clone());
            }
        };
        for event in &self.events {
            event.columns(&mut add, &mut add_lookup);
        }
    }
}

impl EventSpec {
    /// `when`, `unless` and `count` of the table.
    fn gate(&self) -> (Option<&ColumnList>, Option<&ColumnList>, Option<&String>) {
        macro_rules! gate {
            ($spec:expr) => {
                (
                    $spec.when.as_ref(),
                    $spec.unless.as_ref(),
                    $spec.count.as_ref(),
                )
            };
        }
        match self {
            EventSpec::Price(s) => gate!(s),
            EventSpec::VaultOpen(s) => gate!(s),
            EventSpec::Deposit(s)
            | EventSpec::Withdraw(s)
            | EventSpec::Borrow(s)
            | EventSpec::Repay(s) => gate!(s),
            EventSpec::Liquidation(s) => gate!(s),
            EventSpec::CollateralToggle(s) => gate!(s),
            EventSpec::IndexUpdate(s) => gate!(s),
            EventSpec::ParamChange(s) => gate!(s),
            EventSpec::Snapshot(s) => gate!(s),
            EventSpec::AccountTotals(s) => gate!(s),
        }
    }

    /// Calls `main` with every column of the file the table reads, and `lookup` with every
    /// (table, column) it joins.
    fn columns(&self, main: &mut dyn FnMut(&String), lookup: &mut dyn FnMut(&str, &String)) {
        let (when, unless, _) = self.gate();
        for list in [when, unless].into_iter().flatten() {
            list.conditions()
                .iter()
                .for_each(|condition| main(condition.column()));
        }
        self.for_each_field(&mut |field| {
            if let Field::Options(options) = field {
                options.columns(main, lookup);
            }
        });
    }

    fn for_each_field(&self, visit: &mut dyn FnMut(&Field)) {
        let mut all = |fields: &[Option<&Field>]| fields.iter().flatten().for_each(|f| visit(f));
        match self {
            EventSpec::Price(s) => all(&[
                Some(&s.asset),
                Some(&s.quote),
                Some(&s.price),
                Some(&s.feed),
                s.round.as_ref(),
            ]),
            EventSpec::VaultOpen(s) => all(&[
                Some(&s.protocol),
                Some(&s.market),
                Some(&s.account),
                s.owner.as_ref(),
            ]),
            EventSpec::Deposit(s)
            | EventSpec::Withdraw(s)
            | EventSpec::Borrow(s)
            | EventSpec::Repay(s) => all(&[
                Some(&s.protocol),
                Some(&s.market),
                Some(&s.account),
                Some(&s.asset),
                Some(&s.amount),
                s.shares.as_ref(),
            ]),
            EventSpec::Liquidation(s) => all(&[
                Some(&s.protocol),
                Some(&s.market),
                Some(&s.account),
                s.liquidator.as_ref(),
                Some(&s.collateral_asset),
                Some(&s.collateral_seized),
                Some(&s.debt_asset),
                Some(&s.debt_repaid),
                s.collateral_price.as_ref(),
                s.debt_price.as_ref(),
            ]),
            EventSpec::CollateralToggle(s) => all(&[
                Some(&s.protocol),
                Some(&s.market),
                Some(&s.account),
                Some(&s.asset),
                Some(&s.enabled),
            ]),
            EventSpec::IndexUpdate(s) => all(&[
                Some(&s.protocol),
                Some(&s.market),
                Some(&s.asset),
                s.supply_index.as_ref(),
                s.borrow_index.as_ref(),
            ]),
            EventSpec::ParamChange(s) => all(&[
                Some(&s.protocol),
                Some(&s.market),
                Some(&s.param),
                Some(&s.value),
            ]),
            EventSpec::Snapshot(s) => all(&[
                Some(&s.protocol),
                Some(&s.market),
                Some(&s.account),
                Some(&s.asset),
                Some(&s.collateral),
                Some(&s.debt),
                s.scaled.as_ref(),
                s.collateral_enabled.as_ref(),
                s.e_mode.as_ref(),
            ]),
            EventSpec::AccountTotals(s) => all(&[
                Some(&s.protocol),
                Some(&s.market),
                Some(&s.account),
                Some(&s.collateral),
                Some(&s.debt),
                Some(&s.liquidation_threshold),
                s.ltv.as_ref(),
                s.health_factor.as_ref(),
                s.e_mode.as_ref(),
            ]),
        }
    }
}

/// A mapping compiled against one file's header.
struct Plan {
    chain_id: u64,
    time_column: Option<usize>,
    time: TimePlan,
    block: Get<u64>,
    tx_hash: Get<B256>,
    tx_index: Get<u32>,
    log_index: Get<u32>,
    events: Vec<(Gate, EventPlan)>,
    duplicates: Option<Duplicates>,
    tally: Tally,
    /// The (protocol, asset, decimals) whose `decimals` parameter this ingest has written, so
    /// each is written once (`None`: the mapping writes its own `decimals` parameters).
    token_decimals: Option<BTreeSet<(Protocol, Id, u8)>>,
    /// This row's token decimals, written once the row is kept.
    row_decimals: Vec<(Protocol, Id, u8)>,
}

enum TimePlan {
    /// `[time] value`: every row at this time.
    Const(Timestamp),
    Fixed(TimeFormat),
    /// `unix_auto`: seconds or milliseconds, decided by the first row and held to by the rest.
    Auto(Option<TimeFormat>),
}

/// Unix times at or above this are milliseconds: as seconds they would be after the year 5000.
const MILLIS_FROM: i64 = 100_000_000_000;

impl TimePlan {
    /// The time of a typed cell, as [`TimePlan::parse`] reads its text, or `None` to read the
    /// text (`value::time_of`). The unit `unix_auto` detects is the one the text would set.
    fn parse_cell(&mut self, cell: Cell<'_>) -> Option<Timestamp> {
        match self {
            TimePlan::Const(_) => None,
            TimePlan::Fixed(format) => value::time_of(cell, format),
            TimePlan::Auto(detected) => {
                let format = if value::unix_of(cell)? >= MILLIS_FROM {
                    TimeFormat::UnixMillis
                } else {
                    TimeFormat::UnixSeconds
                };
                match detected {
                    None => *detected = Some(format.clone()),
                    Some(first) if *first != format => return None,
                    Some(_) => {}
                }
                value::time_of(cell, &format)
            }
        }
    }

    fn parse(&mut self, text: &str) -> Result<Timestamp, String> {
        match self {
            TimePlan::Const(time) => Ok(*time),
            TimePlan::Fixed(format) => value::time(text, format),
            TimePlan::Auto(detected) => {
                let raw: i64 = text
                    .trim()
                    .parse()
                    .map_err(|_| "not an integer unix time".to_owned())?;
                let format = if raw >= MILLIS_FROM {
                    TimeFormat::UnixMillis
                } else {
                    TimeFormat::UnixSeconds
                };
                match detected {
                    None => *detected = Some(format.clone()),
                    Some(first) if *first != format => {
                        return Err(format!(
                            "timestamp unit differs from the file's first row ({})",
                            if *first == TimeFormat::UnixMillis {
                                "milliseconds"
                            } else {
                                "seconds"
                            }
                        ));
                    }
                    Some(_) => {}
                }
                value::time(text, &format)
            }
        }
    }
}

impl Plan {
    fn compile(
        spec: &MappingSpec,
        mapping: &Path,
        text: Option<&str>,
        file: &Path,
        header: &[String],
        chain_id: u64,
        lookups: &BTreeMap<String, Arc<LookupTable>>,
    ) -> Result<Self, IngestError> {
        let compiler = Compiler {
            mapping,
            file,
            header,
            lookups,
            text,
            at: Vec::new(),
        };
        let at_key = |path: &[&str], message: String| IngestError::Mapping {
            file: mapping.to_owned(),
            message: format!("{}{message}", key_place(text, &keys(path))),
        };
        if spec.events.is_empty() {
            return Err(IngestError::Mapping {
                file: mapping.to_owned(),
                message: "no [[event]] table: a mapping must produce at least one event per row"
                    .into(),
            });
        }
        if spec.block.is_none()
            && spec
                .events
                .iter()
                .any(|e| matches!(e, EventSpec::Liquidation(l) if l.maker_dog_from_block.is_some()))
        {
            return Err(IngestError::Mapping {
                file: mapping.to_owned(),
                message: "`maker_dog_from_block` needs the top-level `block` column".into(),
            });
        }
        let mut time = if spec.time.format == "unix_auto" {
            TimePlan::Auto(None)
        } else {
            TimePlan::Fixed(
                TimeFormat::parse(&spec.time.format)
                    .map_err(|message| at_key(&["time", "format"], format!("[time] {message}")))?,
            )
        };
        if let Some(zone) = &spec.time.timezone {
            let seconds = value::timezone(zone).map_err(|message| {
                at_key(&["time", "timezone"], format!("[time] timezone: {message}"))
            })?;
            match &mut time {
                TimePlan::Fixed(TimeFormat::Pattern { offset, .. }) => *offset = seconds,
                _ => {
                    return Err(at_key(
                        &["time", "timezone"],
                        "[time] timezone applies to a strftime pattern only: unix and RFC 3339 times carry their zone"
                            .into(),
                    ));
                }
            }
        }
        let (time_column, time) = match (&spec.time.column, &spec.time.value) {
            (Some(column), None) => (Some(compiler.column(column)?), time),
            (None, Some(value)) => {
                let at = time.parse(value).map_err(|reason| {
                    at_key(
                        &["time", "value"],
                        format!("[time] value {value:?}: {reason}"),
                    )
                })?;
                (None, TimePlan::Const(at))
            }
            _ => {
                return Err(at_key(
                    &["time"],
                    "[time] needs either `column` or `value`".into(),
                ));
            }
        };
        let column = |name: &Option<String>| {
            name.as_ref().map(|n| {
                Field::Options(FieldOptions {
                    column: Some(n.clone()),
                    ..FieldOptions::default()
                })
            })
        };
        let small = |name: &str, field: Option<Field>| {
            compiler.compile_fast(
                name,
                field.as_ref(),
                FieldType::Round,
                |_| {
                    Box::new(|text, _| {
                        value::integer_u64(text).and_then(|v| {
                            u32::try_from(v).map_err(|_| "does not fit 32 bits".to_owned())
                        })
                    })
                },
                |_| {
                    Some(Box::new(|cell, _| {
                        u32::try_from(value::integer_of(cell)?).ok()
                    }))
                },
            )
        };
        Ok(Plan {
            chain_id: spec.chain_id.unwrap_or(chain_id),
            time_column,
            time,
            block: compiler.compile_fast(
                "block",
                column(&spec.block).as_ref(),
                FieldType::Round,
                |_| Box::new(|text, _| value::integer_u64(text)),
                |_| {
                    Some(Box::new(|cell, _| {
                        u64::try_from(value::integer_of(cell)?).ok()
                    }))
                },
            )?,
            tx_hash: compiler.compile_fast(
                "tx_hash",
                column(&spec.tx_hash).as_ref(),
                FieldType::Round,
                |_| {
                    Box::new(|text: &str, _| {
                        text.trim()
                            .parse::<B256>()
                            .map_err(|_| "not a 32-byte hex hash".to_owned())
                    })
                },
                |_| {
                    Some(Box::new(|cell, _| match cell {
                        Cell::Bytes(bytes) if bytes.len() == 32 => Some(B256::from_slice(bytes)),
                        _ => None,
                    }))
                },
            )?,
            tx_index: small("tx_index", column(&spec.tx_index))?,
            log_index: small("log_index", column(&spec.log_index))?,
            events: spec
                .events
                .iter()
                .enumerate()
                .map(|(index, event)| {
                    let compiler = compiler.within(&keys(&["event"]), index);
                    Ok((compiler.gate(event)?, EventPlan::compile(event, &compiler)?))
                })
                .collect::<Result<_, IngestError>>()?,
            duplicates: match &spec.duplicates {
                Some(rule) => {
                    let columns = |names: &[String]| {
                        names
                            .iter()
                            .map(|name| compiler.column(name))
                            .collect::<Result<Vec<_>, _>>()
                    };
                    if rule.key.is_empty() {
                        return Err(IngestError::Mapping {
                            file: mapping.to_owned(),
                            message: "[duplicates] needs at least one `key` column".into(),
                        });
                    }
                    Some(Duplicates::new(
                        columns(&rule.key)?,
                        columns(&rule.similar)?,
                    ))
                }
                None => None,
            },
            tally: Tally::default(),
            token_decimals: (!spec.declares_decimals()).then(BTreeSet::new),
            row_decimals: Vec::new(),
        })
    }

    /// Appends one row's events to `out` (nothing when the row is bad or a dropped duplicate)
    /// and returns the row's time.
    fn row(&mut self, row: &Row<'_>, out: &mut Vec<Event>) -> Result<Timestamp, Box<RowError>> {
        let time_plan = &mut self.time;
        let time = match self.time_column {
            Some(column) => match Some(row)
                .filter(|row| row.is_typed())
                .and_then(|row| time_plan.parse_cell(row.cell(column)))
            {
                Some(time) => time,
                None => row.parse(column, |text| time_plan.parse(text))?,
            },
            None => time_plan
                .parse("")
                .map_err(|reason| row.whole_row_error(reason))?,
        };
        let block = self.block.optional(row)?;
        let tx_index = self.tx_index.optional(row)?;
        let log_index = self.log_index.optional(row)?;
        let tx_hash = self.tx_hash.optional(row)?;
        let start = out.len();
        self.row_decimals.clear();
        // A row yields all its events or none: every exit below that is not success truncates.
        let result = (|| {
            for (gate, plan) in &self.events {
                if !gate.opens(row) {
                    continue;
                }
                if self.token_decimals.is_some() {
                    plan.token_decimals(row, &mut self.row_decimals)?;
                }
                out.push(Event {
                    seq: 0,
                    chain_id: self.chain_id,
                    block,
                    time,
                    tx_index,
                    log_index,
                    tx_hash,
                    source: 0,
                    payload: plan.build(row, block)?,
                });
            }
            // Duplicates are judged on rows that convert, before the checks: a repeated row is
            // dropped as such whatever its prices say.
            let key = match &mut self.duplicates {
                Some(rule) => match rule.classify(row, &mut self.tally) {
                    Verdict::New(key) => Some(key),
                    Verdict::Dropped => return Ok(false),
                },
                None => None,
            };
            // Conditions are re-read rather than remembered: no allocation per row.
            for (gate, plan) in &self.events {
                if gate.opens(row) {
                    plan.check(row, &mut self.tally)?;
                }
            }
            for (gate, _) in &self.events {
                if let Some(name) = gate.count.as_ref().filter(|_| gate.opens(row)) {
                    self.tally.count(name);
                }
            }
            if let (Some(rule), Some(key)) = (&mut self.duplicates, key) {
                rule.keep(key, row);
            }
            Ok(true)
        })();
        match result {
            Ok(true) => {
                self.write_token_decimals(time, out, start);
                Ok(time)
            }
            Ok(false) => {
                out.truncate(start);
                Ok(time)
            }
            Err(error) => {
                out.truncate(start);
                Err(error)
            }
        }
    }
}

impl Plan {
    /// Puts a `decimals` parameter before the kept row's events (at `start` in `out`, at the
    /// row's time) for each token whose decimals the row's amounts were read with and this
    /// ingest has not written yet: the lending models then know the token's precision, and the
    /// run writes its amounts in tokens.
    fn write_token_decimals(&mut self, time: Timestamp, out: &mut Vec<Event>, start: usize) {
        let Some(written) = &mut self.token_decimals else {
            return;
        };
        let chain_id = self.chain_id;
        let params: Vec<Event> = self
            .row_decimals
            .drain(..)
            .filter(|key| written.insert(*key))
            .map(|(protocol, asset, decimals)| {
                let change = ParamChange {
                    protocol,
                    market: asset,
                    param: Symbol::new("decimals").expect("a short ASCII literal"),
                    value: Fixed::new(U256::from(decimals), 0),
                };
                Event::at(chain_id, time, Payload::ParamChange(Box::new(change)))
            })
            .collect();
        out.splice(start..start, params);
    }
}

/// `plausible_within` of a liquidation table, compiled.
struct Plausible {
    within: u64,
    collateral_price: Get<Fixed>,
    debt_price: Get<Fixed>,
}

enum EventPlan {
    Price {
        asset: Get<Id>,
        quote: Get<Id>,
        price: Get<Fixed>,
        feed: Get<Id>,
        round: Get<u128>,
    },
    VaultOpen {
        protocol: Get<Protocol>,
        market: Get<Id>,
        account: Get<Id>,
        owner: Get<Id>,
    },
    Position {
        kind: fn(Box<PositionChange>) -> Payload,
        protocol: Get<Protocol>,
        market: Get<Id>,
        account: Get<Id>,
        asset: Get<Id>,
        amount: AmountGet,
        shares: AmountGet,
    },
    Liquidation {
        protocol: Get<Protocol>,
        market: Get<Id>,
        account: Get<Id>,
        liquidator: Get<Id>,
        collateral_asset: Get<Id>,
        collateral_seized: SideGet,
        debt_asset: Get<Id>,
        debt_repaid: SideGet,
        detail: DetailSpec,
        dog_from_block: Option<u64>,
        check: Option<Box<Plausible>>,
    },
    Toggle {
        protocol: Get<Protocol>,
        market: Get<Id>,
        account: Get<Id>,
        asset: Get<Id>,
        enabled: Get<bool>,
    },
    Index {
        protocol: Get<Protocol>,
        market: Get<Id>,
        asset: Get<Id>,
        supply_index: Get<Fixed>,
        borrow_index: Get<Fixed>,
    },
    Param {
        protocol: Get<Protocol>,
        market: Get<Id>,
        param: Get<Symbol>,
        value: Get<Fixed>,
    },
    Snapshot {
        protocol: Get<Protocol>,
        market: Get<Id>,
        account: Get<Id>,
        asset: Get<Id>,
        collateral: AmountGet,
        debt: AmountGet,
        scaled: Get<bool>,
        collateral_enabled: Get<bool>,
        e_mode: Get<u8>,
    },
    Totals {
        protocol: Get<Protocol>,
        market: Get<Id>,
        account: Get<Id>,
        collateral: AmountGet,
        debt: AmountGet,
        liquidation_threshold: Get<Fixed>,
        ltv: Get<Fixed>,
        health_factor: Get<Fixed>,
        e_mode: Get<u8>,
    },
}

impl EventPlan {
    fn compile(spec: &EventSpec, c: &Compiler<'_>) -> Result<Self, IngestError> {
        Ok(match spec {
            EventSpec::Price(s) => EventPlan::Price {
                asset: c.id("asset", Some(&s.asset))?,
                quote: c.id("quote", Some(&s.quote))?,
                price: c.price("price", Some(&s.price))?,
                feed: c.id("feed", Some(&s.feed))?,
                round: c.round("round", s.round.as_ref())?,
            },
            EventSpec::VaultOpen(s) => EventPlan::VaultOpen {
                protocol: c.protocol(&s.protocol)?,
                market: c.id("market", Some(&s.market))?,
                account: c.id("account", Some(&s.account))?,
                owner: c.id("owner", s.owner.as_ref())?,
            },
            EventSpec::Deposit(s) => Self::position(Payload::Deposit, s, c)?,
            EventSpec::Withdraw(s) => Self::position(Payload::Withdraw, s, c)?,
            EventSpec::Borrow(s) => Self::position(Payload::Borrow, s, c)?,
            EventSpec::Repay(s) => Self::position(Payload::Repay, s, c)?,
            EventSpec::Liquidation(s) => EventPlan::Liquidation {
                protocol: c.protocol(&s.protocol)?,
                market: c.id("market", Some(&s.market))?,
                account: c.id("account", Some(&s.account))?,
                liquidator: c.id("liquidator", s.liquidator.as_ref())?,
                collateral_asset: c.id("collateral_asset", Some(&s.collateral_asset))?,
                collateral_seized: c.side("collateral_seized", &s.collateral_seized)?,
                debt_asset: c.id("debt_asset", Some(&s.debt_asset))?,
                debt_repaid: c.side("debt_repaid", &s.debt_repaid)?,
                detail: Self::detail(s, c)?,
                dog_from_block: s.maker_dog_from_block,
                check: Self::plausible(s, c)?.map(Box::new),
            },
            EventSpec::CollateralToggle(s) => EventPlan::Toggle {
                protocol: c.protocol(&s.protocol)?,
                market: c.id("market", Some(&s.market))?,
                account: c.id("account", Some(&s.account))?,
                asset: c.id("asset", Some(&s.asset))?,
                enabled: c.boolean("enabled", Some(&s.enabled))?,
            },
            EventSpec::IndexUpdate(s) => EventPlan::Index {
                protocol: c.protocol(&s.protocol)?,
                market: c.id("market", Some(&s.market))?,
                asset: c.id("asset", Some(&s.asset))?,
                supply_index: c.fixed("supply_index", s.supply_index.as_ref())?,
                borrow_index: c.fixed("borrow_index", s.borrow_index.as_ref())?,
            },
            EventSpec::ParamChange(s) => EventPlan::Param {
                protocol: c.protocol(&s.protocol)?,
                market: c.id("market", Some(&s.market))?,
                param: c.symbol("param", Some(&s.param))?,
                value: c.fixed("value", Some(&s.value))?,
            },
            EventSpec::Snapshot(s) => EventPlan::Snapshot {
                protocol: c.protocol(&s.protocol)?,
                market: c.id("market", Some(&s.market))?,
                account: c.id("account", Some(&s.account))?,
                asset: c.id("asset", Some(&s.asset))?,
                collateral: c.amount("collateral", Some(&s.collateral))?,
                debt: c.amount("debt", Some(&s.debt))?,
                scaled: c.boolean("scaled", s.scaled.as_ref())?,
                collateral_enabled: c
                    .boolean("collateral_enabled", s.collateral_enabled.as_ref())?,
                e_mode: c.category("e_mode", s.e_mode.as_ref())?,
            },
            EventSpec::AccountTotals(s) => EventPlan::Totals {
                protocol: c.protocol(&s.protocol)?,
                market: c.id("market", Some(&s.market))?,
                account: c.id("account", Some(&s.account))?,
                collateral: c.amount("collateral", Some(&s.collateral))?,
                debt: c.amount("debt", Some(&s.debt))?,
                liquidation_threshold: c
                    .fixed("liquidation_threshold", Some(&s.liquidation_threshold))?,
                ltv: c.fixed("ltv", s.ltv.as_ref())?,
                health_factor: c.fixed("health_factor", s.health_factor.as_ref())?,
                e_mode: c.category("e_mode", s.e_mode.as_ref())?,
            },
        })
    }

    /// The liquidation's `detail`, checked against its amounts: `compound`'s seized amount is
    /// the log's `seizeTokens`, so it is neither converted here nor valued.
    fn detail(s: &LiquidationSpec, c: &Compiler<'_>) -> Result<DetailSpec, IngestError> {
        if matches!(s.detail, DetailSpec::Compound) {
            if let Field::Options(FieldOptions {
                exchange_rate: Some(_),
                ..
            }) = &s.collateral_seized
            {
                return Err(c.mapping_error(
                    "detail",
                    "`compound` takes `collateral_seized` as `seizeTokens`, in cTokens, which the replay converts with the log's exchange rate: drop its `exchange_rate`, or the detail to convert it here",
                ));
            }
            if s.plausible_within.is_some() {
                return Err(c.mapping_error(
                    "plausible_within",
                    "cannot value `seizeTokens` (cTokens) of a `compound` liquidation",
                ));
            }
        }
        Ok(s.detail)
    }

    fn plausible(s: &LiquidationSpec, c: &Compiler<'_>) -> Result<Option<Plausible>, IngestError> {
        let prices = (s.collateral_price.as_ref(), s.debt_price.as_ref());
        let Some(within) = s.plausible_within else {
            if prices.0.is_some() || prices.1.is_some() {
                return Err(c.mapping_error(
                    "collateral_price",
                    "prices are only read for `plausible_within`",
                ));
            }
            return Ok(None);
        };
        let (Some(collateral_price), Some(debt_price)) = prices else {
            return Err(c.mapping_error(
                "plausible_within",
                "needs `collateral_price` and `debt_price`",
            ));
        };
        // Each check asks both amounts' options; a constant amount has none.
        let both = |test: fn(&FieldOptions) -> bool| {
            [&s.collateral_seized, &s.debt_repaid]
                .map(|field| matches!(field, Field::Options(options) if test(options)))
        };
        if both(|o| o.unknown == Some(true)).contains(&true) {
            return Err(c.mapping_error("plausible_within", "cannot value a side declared unknown"));
        }
        if both(|o| o.decimals.is_some()).contains(&false) {
            return Err(c.mapping_error(
                "plausible_within",
                "needs `decimals` on `collateral_seized` and `debt_repaid` (to value whole tokens)",
            ));
        }
        if both(|o| o.exchange_rate.is_some()).contains(&true) {
            return Err(c.mapping_error(
                "plausible_within",
                "cannot value an amount converted with `exchange_rate` (its decimals are the cToken's, not the underlying's)",
            ));
        }
        if within == 0 {
            return Err(c.mapping_error("plausible_within", "must be at least 1"));
        }
        Ok(Some(Plausible {
            within,
            collateral_price: c.fixed("collateral_price", Some(collateral_price))?,
            debt_price: c.fixed("debt_price", Some(debt_price))?,
        }))
    }

    /// Runs the table's checks on a row whose event was built; counts what it checked.
    fn check(&self, row: &Row<'_>, tally: &mut Tally) -> Result<(), Box<RowError>> {
        let EventPlan::Liquidation {
            collateral_seized,
            debt_repaid,
            check: Some(check),
            ..
        } = self
        else {
            return Ok(());
        };
        let (Some(collateral_price), Some(debt_price)) = (
            check.collateral_price.optional(row)?,
            check.debt_price.optional(row)?,
        ) else {
            tally.count(rules::UNCHECKED);
            return Ok(());
        };
        let side = |side: &SideGet, price| -> Result<Option<Side>, Box<RowError>> {
            let (Some(read), Some(amount)) = (side.amount(), side.get(row)?) else {
                return Ok(None);
            };
            Ok(Some(Side {
                amount: amount.0,
                decimals: read.decimals(row)?.unwrap_or(0),
                price,
            }))
        };
        let (Some(collateral), Some(debt)) = (
            side(collateral_seized, collateral_price)?,
            side(debt_repaid, debt_price)?,
        ) else {
            // A side blank and so unknown on this row: nothing to value it against.
            tally.count(rules::UNCHECKED);
            return Ok(());
        };
        tally.count(rules::CHECKED);
        rules::plausible(check.within, &collateral, &debt).map_err(|reason| match collateral_seized
            .amount()
            .and_then(AmountGet::column)
        {
            Some(column) => row.error(column, reason),
            None => row.whole_row_error(reason),
        })
    }

    /// The (protocol, asset, decimals) of the row's token amounts whose decimals the mapping
    /// gives (a number or a lookup), for the lending models that read a `decimals` parameter
    /// (Aave, Compound; Maker's amounts have fixed precisions): of a position change, a
    /// liquidation's two sides, a snapshot's collateral and debt. An amount converted from
    /// cTokens, and a Compound snapshot's collateral or a `compound` liquidation's seized
    /// amount in cTokens, are left out: their decimals would be the cToken's.
    fn token_decimals(
        &self,
        row: &Row<'_>,
        out: &mut Vec<(Protocol, Id, u8)>,
    ) -> Result<(), Box<RowError>> {
        let (protocol, sides) = match self {
            EventPlan::Position {
                protocol,
                asset,
                amount,
                ..
            } => (protocol, [Some((asset, amount)), None]),
            EventPlan::Snapshot {
                protocol,
                asset,
                collateral,
                debt,
                ..
            } => (protocol, [Some((asset, collateral)), Some((asset, debt))]),
            EventPlan::Liquidation {
                protocol,
                collateral_asset,
                collateral_seized,
                debt_asset,
                debt_repaid,
                ..
            } => (
                protocol,
                [
                    collateral_seized
                        .amount()
                        .map(|read| (collateral_asset, read)),
                    debt_repaid.amount().map(|read| (debt_asset, read)),
                ],
            ),
            _ => return Ok(()),
        };
        let protocol = protocol.required(row)?;
        if !matches!(
            protocol,
            Protocol::AaveV2 | Protocol::AaveV3 | Protocol::CompoundV2
        ) {
            return Ok(());
        }
        // A Compound snapshot's collateral, and the `seizeTokens` of a `compound` liquidation,
        // are in cTokens, whose decimals are not the underlying's: only the debt says those.
        let ctoken_collateral = match self {
            EventPlan::Snapshot { .. } => protocol == Protocol::CompoundV2,
            EventPlan::Liquidation { detail, .. } => matches!(detail, DetailSpec::Compound),
            _ => false,
        };
        for (at, side) in sides.into_iter().enumerate() {
            let Some((asset, amount)) = side.filter(|_| !(ctoken_collateral && at == 0)) else {
                continue;
            };
            if amount.rate.is_some() {
                continue;
            }
            if let Some(decimals) = amount.decimals(row)? {
                let key = (protocol, asset.required(row)?, decimals);
                if !out.contains(&key) {
                    out.push(key);
                }
            }
        }
        Ok(())
    }

    fn position(
        kind: fn(Box<PositionChange>) -> Payload,
        s: &PositionSpec,
        c: &Compiler<'_>,
    ) -> Result<Self, IngestError> {
        Ok(EventPlan::Position {
            kind,
            protocol: c.protocol(&s.protocol)?,
            market: c.id("market", Some(&s.market))?,
            account: c.id("account", Some(&s.account))?,
            asset: c.id("asset", Some(&s.asset))?,
            amount: c.amount("amount", Some(&s.amount))?,
            shares: c.amount("shares", s.shares.as_ref())?,
        })
    }

    fn build(&self, row: &Row<'_>, block: Option<u64>) -> Result<Payload, Box<RowError>> {
        Ok(match self {
            EventPlan::Price {
                asset,
                quote,
                price,
                feed,
                round,
            } => Payload::Price(Box::new(PriceUpdate {
                asset: asset.required(row)?,
                quote: quote.required(row)?,
                price: price.required(row)?,
                feed: feed.required(row)?,
                round: round.optional(row)?,
            })),
            EventPlan::VaultOpen {
                protocol,
                market,
                account,
                owner,
            } => Payload::VaultOpen(Box::new(VaultOpen {
                protocol: protocol.required(row)?,
                market: market.required(row)?,
                account: account.required(row)?,
                owner: owner.optional(row)?,
            })),
            EventPlan::Position {
                kind,
                protocol,
                market,
                account,
                asset,
                amount,
                shares,
            } => kind(Box::new(PositionChange {
                protocol: protocol.required(row)?,
                market: market.required(row)?,
                account: account.required(row)?,
                asset: asset.required(row)?,
                amount: amount.required(row)?,
                shares: shares.optional(row)?,
            })),
            EventPlan::Liquidation {
                protocol,
                market,
                account,
                liquidator,
                collateral_asset,
                collateral_seized,
                debt_asset,
                debt_repaid,
                detail,
                dog_from_block,
                ..
            } => {
                let debt_repaid = debt_repaid.get(row)?;
                let collateral_seized = collateral_seized.get(row)?;
                let detail = match dog_from_block {
                    Some(from) => match block {
                        Some(block) if block >= *from => DetailSpec::MakerDog,
                        Some(_) => DetailSpec::MakerCat,
                        None => {
                            return Err(row.whole_row_error(
                                "no block number to tell a Cat bite from a Dog bark",
                            ));
                        }
                    },
                    None => *detail,
                };
                let detail = match detail {
                    DetailSpec::None => LiquidationDetail::None,
                    DetailSpec::Aave => LiquidationDetail::Aave {
                        receive_a_token: None,
                    },
                    DetailSpec::MakerCat => LiquidationDetail::MakerCat {
                        tab: debt_repaid,
                        art: None,
                        auction: None,
                    },
                    DetailSpec::MakerDog => LiquidationDetail::MakerDog {
                        due: debt_repaid,
                        art: None,
                        auction: None,
                    },
                    // Without the seized cTokens there is no `seizeTokens` to carry.
                    DetailSpec::Compound => match collateral_seized {
                        Some(seize_tokens) => LiquidationDetail::Compound { seize_tokens },
                        None => LiquidationDetail::None,
                    },
                };
                let partial = PartialLiquidation {
                    protocol: protocol.required(row)?,
                    market: market.required(row)?,
                    account: account.required(row)?,
                    liquidator: liquidator.optional(row)?,
                    collateral_asset: collateral_asset.required(row)?,
                    collateral_seized,
                    debt_asset: debt_asset.required(row)?,
                    debt_repaid,
                    detail,
                };
                match (collateral_seized, debt_repaid) {
                    (Some(collateral), Some(debt)) => {
                        Payload::Liquidation(Box::new(partial.with_amounts(collateral, debt)))
                    }
                    _ => Payload::PartialLiquidation(Box::new(partial)),
                }
            }
            EventPlan::Snapshot {
                protocol,
                market,
                account,
                asset,
                collateral,
                debt,
                scaled,
                collateral_enabled,
                e_mode,
            } => Payload::PositionSnapshot(Box::new(PositionSnapshot {
                protocol: protocol.required(row)?,
                market: market.required(row)?,
                account: account.required(row)?,
                asset: asset.required(row)?,
                collateral: collateral.required(row)?,
                debt: debt.required(row)?,
                scaled: scaled.optional(row)?.unwrap_or(false),
                collateral_enabled: collateral_enabled.optional(row)?,
                e_mode: e_mode.optional(row)?,
            })),
            EventPlan::Totals {
                protocol,
                market,
                account,
                collateral,
                debt,
                liquidation_threshold,
                ltv,
                health_factor,
                e_mode,
            } => Payload::AccountTotals(Box::new(AccountTotals {
                protocol: protocol.required(row)?,
                market: market.required(row)?,
                account: account.required(row)?,
                collateral: collateral.required(row)?,
                debt: debt.required(row)?,
                liquidation_threshold: liquidation_threshold.required(row)?,
                ltv: ltv.optional(row)?,
                health_factor: health_factor.optional(row)?,
                e_mode: e_mode.optional(row)?,
            })),
            EventPlan::Toggle {
                protocol,
                market,
                account,
                asset,
                enabled,
            } => Payload::CollateralToggle(Box::new(CollateralToggle {
                protocol: protocol.required(row)?,
                market: market.required(row)?,
                account: account.required(row)?,
                asset: asset.required(row)?,
                enabled: enabled.required(row)?,
            })),
            EventPlan::Index {
                protocol,
                market,
                asset,
                supply_index,
                borrow_index,
            } => Payload::IndexUpdate(Box::new(IndexUpdate {
                protocol: protocol.required(row)?,
                market: market.required(row)?,
                asset: asset.required(row)?,
                supply_index: supply_index.optional(row)?,
                borrow_index: borrow_index.optional(row)?,
            })),
            EventPlan::Param {
                protocol,
                market,
                param,
                value,
            } => Payload::ParamChange(Box::new(ParamChange {
                protocol: protocol.required(row)?,
                market: market.required(row)?,
                param: param.required(row)?,
                value: value.required(row)?,
            })),
        })
    }
}
