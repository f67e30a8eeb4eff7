//! The generic CSV source: a TOML mapping says which column means what.
//!
//! A mapping names the time column and its format, optionally the block, transaction and log
//! columns, and one or more `[[event]]` tables: the event kind and, for each of its fields,
//! either a constant or a column with its conversion (id kind, unit and decimals, sign). Every
//! row produces the events of the tables in order (a table with `when = "COLUMN"` only when that
//! cell is not blank). The built-in Maker adapter is a set of such mappings (see
//! `fixtures/mappings/`), which keeps per-source rules declarative. The format is documented in
//! `docs/ingest.md`.
//!
//! Must never: fall back to a default for a column that is named but missing, or convert an
//! amount through anything but its decimal digits.

use std::fmt;
use std::path::{Path, PathBuf};

use cascade_events::{
    Amount, B256, CollateralToggle, Event, Fixed, Id, IndexUpdate, Liquidation, LiquidationDetail,
    ParamChange, Payload, PositionChange, PriceUpdate, Protocol, Symbol, Timestamp, VaultOpen,
};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer};

use crate::batch::{Context, Rejects, SourceBatch};
use crate::error::{IngestError, RowError};
use crate::table::{CsvInput, Row};
use crate::value::{self, IdKind, Sign, TimeFormat, Unit};

/// Rows read before the event vector is reserved for the whole file.
const RESERVE_AFTER: u64 = 4096;

/// A parsed mapping file.
#[derive(Debug, Clone)]
pub struct Mapping {
    name: PathBuf,
    text: String,
    spec: MappingSpec,
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
            message: error.to_string(),
        })?;
        // Fail on constants and option combinations now, not at the first row.
        spec.check(name)?;
        Ok(Mapping {
            name: name.to_owned(),
            text: text.to_owned(),
            spec,
        })
    }

    /// The mapping text as read (part of a source's content hash).
    pub fn text(&self) -> &str {
        &self.text
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

    /// Reads one CSV file through this mapping, appending its events to `batch`.
    pub fn read_into(
        &self,
        path: &Path,
        context: &Context<'_>,
        rejects: &mut Rejects,
        batch: &mut SourceBatch,
    ) -> Result<(), IngestError> {
        let mut input = CsvInput::open(path)?;
        let mut plan = Plan::compile(
            &self.spec,
            &self.name,
            path,
            input.header(),
            context.chain_id,
        )?;
        batch.report.files.push(path.to_owned());
        let file_bytes = std::fs::metadata(path).map_or(0, |m| m.len());
        let mut produced = Vec::with_capacity(self.spec.events.len());
        let mut seen = 0u64;
        let rows = input.for_each_row(context.progress, |row| {
            seen += 1;
            if seen == RESERVE_AFTER
                && let Ok(row) = &row
            {
                // One reservation sized from the rows so far, instead of doubling a vector of
                // a million events (hundreds of bytes each) several times over.
                let per_row = (row.byte_offset() / RESERVE_AFTER).max(1);
                let rows = file_bytes / per_row;
                let events = rows.saturating_mul(self.spec.events.len() as u64) / 10 * 11;
                batch.events.reserve(usize::try_from(events).unwrap_or(0));
            }
            produced.clear();
            match row.and_then(|row| plan.row(row, &mut produced)) {
                Ok(()) => batch.events.extend(produced.drain(..)),
                Err(error) => rejects.reject(error)?,
            }
            Ok(())
        })?;
        batch.report.rows_read += rows;
        Ok(())
    }
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
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct TimeSpec {
    column: String,
    format: String,
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
    Liquidation(LiquidationSpec),
    CollateralToggle(ToggleSpec),
    IndexUpdate(IndexSpec),
    ParamChange(ParamSpec),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PriceSpec {
    when: Option<String>,
    asset: Field,
    quote: Field,
    price: Field,
    feed: Field,
    round: Option<Field>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct VaultOpenSpec {
    when: Option<String>,
    protocol: Protocol,
    market: Field,
    account: Field,
    owner: Option<Field>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct PositionSpec {
    when: Option<String>,
    protocol: Protocol,
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
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct LiquidationSpec {
    when: Option<String>,
    protocol: Protocol,
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
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ToggleSpec {
    when: Option<String>,
    protocol: Protocol,
    market: Field,
    account: Field,
    asset: Field,
    enabled: Field,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct IndexSpec {
    when: Option<String>,
    protocol: Protocol,
    market: Field,
    asset: Field,
    supply_index: Option<Field>,
    borrow_index: Option<Field>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParamSpec {
    when: Option<String>,
    protocol: Protocol,
    market: Field,
    param: Field,
    value: Field,
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
    id: Option<IdKind>,
    unit: Option<Unit>,
    decimals: Option<u8>,
    sign: Option<Sign>,
    scaled: Option<bool>,
    #[serde(default)]
    optional: bool,
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
        if self == FieldType::Amount
            && options.unit.unwrap_or_default() == Unit::Tokens
            && options.decimals.is_none()
        {
            return Err("an amount in tokens needs `decimals` (the token's precision)".into());
        }
        if options.scaled == Some(true) && options.decimals.is_none() {
            return Err("`scaled = true` needs `decimals`".into());
        }
        Ok(())
    }
}

/// A boxed cell conversion.
type Conv<T> = Box<dyn Fn(&str) -> Result<T, String> + Send + Sync>;

/// Where a field's value comes from, compiled.
enum Get<T> {
    Absent,
    Const(T),
    Column {
        index: usize,
        optional: bool,
        convert: Conv<T>,
    },
}

impl<T: Copy> Get<T> {
    fn required(&self, row: &Row<'_>) -> Result<T, Box<RowError>> {
        match self {
            Get::Const(value) => Ok(*value),
            Get::Column { index, convert, .. } => row.parse(*index, convert),
            Get::Absent => Err(row.whole_row_error("a required field has no value")),
        }
    }

    fn optional(&self, row: &Row<'_>) -> Result<Option<T>, Box<RowError>> {
        match self {
            Get::Absent => Ok(None),
            Get::Const(value) => Ok(Some(*value)),
            Get::Column {
                index,
                optional,
                convert,
            } => {
                if *optional && row.is_blank(*index) {
                    Ok(None)
                } else {
                    row.parse(*index, convert).map(Some)
                }
            }
        }
    }
}

struct Compiler<'a> {
    mapping: &'a Path,
    file: &'a Path,
    header: &'a [String],
}

impl Compiler<'_> {
    fn mapping_error(&self, field: &str, message: impl fmt::Display) -> IngestError {
        IngestError::Mapping {
            file: self.mapping.to_owned(),
            message: format!("field `{field}`: {message}"),
        }
    }

    fn column(&self, name: &str) -> Result<usize, IngestError> {
        self.header
            .iter()
            .position(|column| column == name)
            .ok_or_else(|| IngestError::MissingColumn {
                file: self.file.to_owned(),
                column: name.to_owned(),
                header: self.header.join(","),
            })
    }

    fn compile<T: Copy + 'static>(
        &self,
        name: &str,
        field: Option<&Field>,
        kind: FieldType,
        make: impl Fn(&FieldOptions) -> Conv<T>,
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
        match (&options.column, &options.value) {
            (Some(column), _) => Ok(Get::Column {
                index: self.column(column)?,
                optional: options.optional,
                convert,
            }),
            (None, Some(text)) => convert(text)
                .map(Get::Const)
                .map_err(|reason| self.mapping_error(name, format!("constant {text:?}: {reason}"))),
            (None, None) => Err(self.mapping_error(name, "needs `column` or `value`")),
        }
    }

    fn id(&self, name: &str, field: Option<&Field>) -> Result<Get<Id>, IngestError> {
        self.compile(name, field, FieldType::Id, |o| {
            let kind = o.id.unwrap_or_default();
            Box::new(move |text| value::id(text, kind))
        })
    }

    fn amount(&self, name: &str, field: Option<&Field>) -> Result<Get<Amount>, IngestError> {
        self.compile(name, field, FieldType::Amount, |o| {
            let (unit, sign) = (o.unit.unwrap_or_default(), o.sign.unwrap_or_default());
            let decimals = o.decimals.unwrap_or(0);
            Box::new(move |text| value::amount(text, unit, decimals, sign))
        })
    }

    fn fixed(&self, name: &str, field: Option<&Field>) -> Result<Get<Fixed>, IngestError> {
        self.compile(name, field, FieldType::Fixed, |o| {
            let (decimals, scaled) = (o.decimals, o.scaled.unwrap_or(false));
            Box::new(move |text| value::fixed(text, decimals, scaled))
        })
    }

    fn symbol(&self, name: &str, field: Option<&Field>) -> Result<Get<Symbol>, IngestError> {
        self.compile(name, field, FieldType::Symbol, |_| Box::new(value::symbol))
    }

    fn round(&self, name: &str, field: Option<&Field>) -> Result<Get<u128>, IngestError> {
        self.compile(name, field, FieldType::Round, |_| {
            Box::new(value::integer_u128)
        })
    }

    fn boolean(&self, name: &str, field: Option<&Field>) -> Result<Get<bool>, IngestError> {
        self.compile(name, field, FieldType::Bool, |_| Box::new(value::boolean))
    }

    fn when(&self, column: Option<&String>) -> Result<Option<usize>, IngestError> {
        column.map(|name| self.column(name)).transpose()
    }
}

impl MappingSpec {
    /// Checks what can be checked without a data file: time format, constants, option
    /// combinations. Compiling against a header that has every named column does exactly that.
    fn check(&self, name: &Path) -> Result<(), IngestError> {
        let mut header = Vec::new();
        self.collect_columns(&mut header);
        Plan::compile(self, name, name, &header, 1).map(|_| ())
    }

    fn collect_columns(&self, columns: &mut Vec<String>) {
        let mut add = |name: &String| {
            if !columns.contains(name) {
                columns.push(name.clone());
            }
        };
        add(&self.time.column);
        for name in [&self.block, &self.tx_hash, &self.tx_index, &self.log_index]
            .into_iter()
            .flatten()
        {
            add(name);
        }
        for event in &self.events {
            event.for_each_field(&mut |field| {
                if let Field::Options(FieldOptions {
                    column: Some(name), ..
                }) = field
                {
                    add(name);
                }
            });
            if let Some(name) = event.when() {
                add(name);
            }
        }
    }
}

impl EventSpec {
    fn when(&self) -> Option<&String> {
        match self {
            EventSpec::Price(s) => s.when.as_ref(),
            EventSpec::VaultOpen(s) => s.when.as_ref(),
            EventSpec::Deposit(s)
            | EventSpec::Withdraw(s)
            | EventSpec::Borrow(s)
            | EventSpec::Repay(s) => s.when.as_ref(),
            EventSpec::Liquidation(s) => s.when.as_ref(),
            EventSpec::CollateralToggle(s) => s.when.as_ref(),
            EventSpec::IndexUpdate(s) => s.when.as_ref(),
            EventSpec::ParamChange(s) => s.when.as_ref(),
        }
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
            EventSpec::VaultOpen(s) => all(&[Some(&s.market), Some(&s.account), s.owner.as_ref()]),
            EventSpec::Deposit(s)
            | EventSpec::Withdraw(s)
            | EventSpec::Borrow(s)
            | EventSpec::Repay(s) => all(&[
                Some(&s.market),
                Some(&s.account),
                Some(&s.asset),
                Some(&s.amount),
                s.shares.as_ref(),
            ]),
            EventSpec::Liquidation(s) => all(&[
                Some(&s.market),
                Some(&s.account),
                s.liquidator.as_ref(),
                Some(&s.collateral_asset),
                Some(&s.collateral_seized),
                Some(&s.debt_asset),
                Some(&s.debt_repaid),
            ]),
            EventSpec::CollateralToggle(s) => all(&[
                Some(&s.market),
                Some(&s.account),
                Some(&s.asset),
                Some(&s.enabled),
            ]),
            EventSpec::IndexUpdate(s) => all(&[
                Some(&s.market),
                Some(&s.asset),
                s.supply_index.as_ref(),
                s.borrow_index.as_ref(),
            ]),
            EventSpec::ParamChange(s) => all(&[Some(&s.market), Some(&s.param), Some(&s.value)]),
        }
    }
}

/// A mapping compiled against one file's header.
struct Plan {
    chain_id: u64,
    time_column: usize,
    time: TimePlan,
    block: Get<u64>,
    tx_hash: Get<B256>,
    tx_index: Get<u32>,
    log_index: Get<u32>,
    events: Vec<(Option<usize>, EventPlan)>,
}

enum TimePlan {
    Fixed(TimeFormat),
    /// `unix_auto`: seconds or milliseconds, decided by the first row and held to by the rest.
    Auto(Option<TimeFormat>),
}

/// Unix times at or above this are milliseconds: as seconds they would be after the year 5000.
const MILLIS_FROM: i64 = 100_000_000_000;

impl TimePlan {
    fn parse(&mut self, text: &str) -> Result<Timestamp, String> {
        match self {
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
        file: &Path,
        header: &[String],
        chain_id: u64,
    ) -> Result<Self, IngestError> {
        let compiler = Compiler {
            mapping,
            file,
            header,
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
        let time = if spec.time.format == "unix_auto" {
            TimePlan::Auto(None)
        } else {
            TimePlan::Fixed(TimeFormat::parse(&spec.time.format).map_err(|message| {
                IngestError::Mapping {
                    file: mapping.to_owned(),
                    message,
                }
            })?)
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
            compiler.compile(name, field.as_ref(), FieldType::Round, |_| {
                Box::new(|text| {
                    value::integer_u64(text).and_then(|v| {
                        u32::try_from(v).map_err(|_| "does not fit 32 bits".to_owned())
                    })
                })
            })
        };
        Ok(Plan {
            chain_id: spec.chain_id.unwrap_or(chain_id),
            time_column: compiler.column(&spec.time.column)?,
            time,
            block: compiler.compile(
                "block",
                column(&spec.block).as_ref(),
                FieldType::Round,
                |_| Box::new(value::integer_u64),
            )?,
            tx_hash: compiler.compile(
                "tx_hash",
                column(&spec.tx_hash).as_ref(),
                FieldType::Round,
                |_| {
                    Box::new(|text: &str| {
                        text.trim()
                            .parse::<B256>()
                            .map_err(|_| "not a 32-byte hex hash".to_owned())
                    })
                },
            )?,
            tx_index: small("tx_index", column(&spec.tx_index))?,
            log_index: small("log_index", column(&spec.log_index))?,
            events: spec
                .events
                .iter()
                .map(|event| {
                    Ok((
                        compiler.when(event.when())?,
                        EventPlan::compile(event, &compiler)?,
                    ))
                })
                .collect::<Result<_, IngestError>>()?,
        })
    }

    /// Appends one row's events to `out` (left empty when the row is bad).
    fn row(&mut self, row: &Row<'_>, out: &mut Vec<Event>) -> Result<(), Box<RowError>> {
        let time_plan = &mut self.time;
        let time = row.parse(self.time_column, |text| time_plan.parse(text))?;
        let block = self.block.optional(row)?;
        let tx_index = self.tx_index.optional(row)?;
        let log_index = self.log_index.optional(row)?;
        let tx_hash = self.tx_hash.optional(row)?;
        let start = out.len();
        for (when, plan) in &self.events {
            if when.is_some_and(|column| row.is_blank(column)) {
                continue;
            }
            let payload = match plan.build(row, block) {
                Ok(payload) => payload,
                Err(error) => {
                    // A row yields all its events or none.
                    out.truncate(start);
                    return Err(error);
                }
            };
            out.push(Event {
                seq: 0,
                chain_id: self.chain_id,
                block,
                time,
                tx_index,
                log_index,
                tx_hash,
                source: 0,
                payload,
            });
        }
        Ok(())
    }
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
        protocol: Protocol,
        market: Get<Id>,
        account: Get<Id>,
        owner: Get<Id>,
    },
    Position {
        kind: fn(PositionChange) -> Payload,
        protocol: Protocol,
        market: Get<Id>,
        account: Get<Id>,
        asset: Get<Id>,
        amount: Get<Amount>,
        shares: Get<Amount>,
    },
    Liquidation {
        protocol: Protocol,
        market: Get<Id>,
        account: Get<Id>,
        liquidator: Get<Id>,
        collateral_asset: Get<Id>,
        collateral_seized: Get<Amount>,
        debt_asset: Get<Id>,
        debt_repaid: Get<Amount>,
        detail: DetailSpec,
        dog_from_block: Option<u64>,
    },
    Toggle {
        protocol: Protocol,
        market: Get<Id>,
        account: Get<Id>,
        asset: Get<Id>,
        enabled: Get<bool>,
    },
    Index {
        protocol: Protocol,
        market: Get<Id>,
        asset: Get<Id>,
        supply_index: Get<Fixed>,
        borrow_index: Get<Fixed>,
    },
    Param {
        protocol: Protocol,
        market: Get<Id>,
        param: Get<Symbol>,
        value: Get<Fixed>,
    },
}

impl EventPlan {
    fn compile(spec: &EventSpec, c: &Compiler<'_>) -> Result<Self, IngestError> {
        Ok(match spec {
            EventSpec::Price(s) => EventPlan::Price {
                asset: c.id("asset", Some(&s.asset))?,
                quote: c.id("quote", Some(&s.quote))?,
                price: c.fixed("price", Some(&s.price))?,
                feed: c.id("feed", Some(&s.feed))?,
                round: c.round("round", s.round.as_ref())?,
            },
            EventSpec::VaultOpen(s) => EventPlan::VaultOpen {
                protocol: s.protocol,
                market: c.id("market", Some(&s.market))?,
                account: c.id("account", Some(&s.account))?,
                owner: c.id("owner", s.owner.as_ref())?,
            },
            EventSpec::Deposit(s) => Self::position(Payload::Deposit, s, c)?,
            EventSpec::Withdraw(s) => Self::position(Payload::Withdraw, s, c)?,
            EventSpec::Borrow(s) => Self::position(Payload::Borrow, s, c)?,
            EventSpec::Repay(s) => Self::position(Payload::Repay, s, c)?,
            EventSpec::Liquidation(s) => EventPlan::Liquidation {
                protocol: s.protocol,
                market: c.id("market", Some(&s.market))?,
                account: c.id("account", Some(&s.account))?,
                liquidator: c.id("liquidator", s.liquidator.as_ref())?,
                collateral_asset: c.id("collateral_asset", Some(&s.collateral_asset))?,
                collateral_seized: c.amount("collateral_seized", Some(&s.collateral_seized))?,
                debt_asset: c.id("debt_asset", Some(&s.debt_asset))?,
                debt_repaid: c.amount("debt_repaid", Some(&s.debt_repaid))?,
                detail: s.detail,
                dog_from_block: s.maker_dog_from_block,
            },
            EventSpec::CollateralToggle(s) => EventPlan::Toggle {
                protocol: s.protocol,
                market: c.id("market", Some(&s.market))?,
                account: c.id("account", Some(&s.account))?,
                asset: c.id("asset", Some(&s.asset))?,
                enabled: c.boolean("enabled", Some(&s.enabled))?,
            },
            EventSpec::IndexUpdate(s) => EventPlan::Index {
                protocol: s.protocol,
                market: c.id("market", Some(&s.market))?,
                asset: c.id("asset", Some(&s.asset))?,
                supply_index: c.fixed("supply_index", s.supply_index.as_ref())?,
                borrow_index: c.fixed("borrow_index", s.borrow_index.as_ref())?,
            },
            EventSpec::ParamChange(s) => EventPlan::Param {
                protocol: s.protocol,
                market: c.id("market", Some(&s.market))?,
                param: c.symbol("param", Some(&s.param))?,
                value: c.fixed("value", Some(&s.value))?,
            },
        })
    }

    fn position(
        kind: fn(PositionChange) -> Payload,
        s: &PositionSpec,
        c: &Compiler<'_>,
    ) -> Result<Self, IngestError> {
        Ok(EventPlan::Position {
            kind,
            protocol: s.protocol,
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
            } => Payload::Price(PriceUpdate {
                asset: asset.required(row)?,
                quote: quote.required(row)?,
                price: price.required(row)?,
                feed: feed.required(row)?,
                round: round.optional(row)?,
            }),
            EventPlan::VaultOpen {
                protocol,
                market,
                account,
                owner,
            } => Payload::VaultOpen(VaultOpen {
                protocol: *protocol,
                market: market.required(row)?,
                account: account.required(row)?,
                owner: owner.optional(row)?,
            }),
            EventPlan::Position {
                kind,
                protocol,
                market,
                account,
                asset,
                amount,
                shares,
            } => kind(PositionChange {
                protocol: *protocol,
                market: market.required(row)?,
                account: account.required(row)?,
                asset: asset.required(row)?,
                amount: amount.required(row)?,
                shares: shares.optional(row)?,
            }),
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
            } => {
                let debt_repaid = debt_repaid.required(row)?;
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
                Payload::Liquidation(Liquidation {
                    protocol: *protocol,
                    market: market.required(row)?,
                    account: account.required(row)?,
                    liquidator: liquidator.optional(row)?,
                    collateral_asset: collateral_asset.required(row)?,
                    collateral_seized: collateral_seized.required(row)?,
                    debt_asset: debt_asset.required(row)?,
                    debt_repaid,
                    detail: match detail {
                        DetailSpec::None => LiquidationDetail::None,
                        DetailSpec::Aave => LiquidationDetail::Aave {
                            receive_a_token: None,
                        },
                        DetailSpec::MakerCat => LiquidationDetail::MakerCat {
                            tab: Some(debt_repaid),
                            art: None,
                            auction: None,
                        },
                        DetailSpec::MakerDog => LiquidationDetail::MakerDog {
                            due: Some(debt_repaid),
                            art: None,
                            auction: None,
                        },
                    },
                })
            }
            EventPlan::Toggle {
                protocol,
                market,
                account,
                asset,
                enabled,
            } => Payload::CollateralToggle(CollateralToggle {
                protocol: *protocol,
                market: market.required(row)?,
                account: account.required(row)?,
                asset: asset.required(row)?,
                enabled: enabled.required(row)?,
            }),
            EventPlan::Index {
                protocol,
                market,
                asset,
                supply_index,
                borrow_index,
            } => Payload::IndexUpdate(IndexUpdate {
                protocol: *protocol,
                market: market.required(row)?,
                asset: asset.required(row)?,
                supply_index: supply_index.optional(row)?,
                borrow_index: borrow_index.optional(row)?,
            }),
            EventPlan::Param {
                protocol,
                market,
                param,
                value,
            } => Payload::ParamChange(ParamChange {
                protocol: *protocol,
                market: market.required(row)?,
                param: param.required(row)?,
                value: value.required(row)?,
            }),
        })
    }
}
