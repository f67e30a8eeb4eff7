//! `cascade state LOG --at TIME`, and the accounts file of `cascade replay --accounts-at`: every
//! account's position at a time, as CSV (one row per account and asset) or JSON lines (one line
//! per account), the form chosen by the file name (`docs/engine.md`, "Accounts at a time").

use std::fmt;
use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use cascade_engine::Capture;
use cascade_engine::protocol::accounts::{
    AccountPosition, AccountsCapture, AssetPosition, SnapshotDifference, ThresholdKind,
};
use cascade_events::{Amount, Id, Protocol, Timestamp, U256};
use cascade_run::Quantity;
use clap::Args;
use serde::{Serialize, Serializer};

use crate::Outcome;
use crate::engine_args::{EngineArgs, parse_time};
use crate::out::write_file_with;

/// `cascade state LOG --at TIME`.
#[derive(Args)]
pub struct StateArgs {
    /// Log directory.
    dir: PathBuf,
    /// The time (RFC 3339 or YYYY-MM-DD, UTC): the state once every event of the first instant
    /// at or after it is applied (the log's end when there is none).
    #[arg(long, value_name = "TIME")]
    at: String,
    /// Only this account (an address, with or without `0x`, any case; a vault number as `#N`).
    #[arg(long, value_name = "ADDR")]
    account: Option<String>,
    /// Print JSON (one document) instead of text.
    #[arg(long)]
    json: bool,
    #[command(flatten)]
    engine: EngineArgs,
}

/// Runs `cascade state`.
pub fn run(args: StateArgs) -> anyhow::Result<Outcome> {
    let at = parse_time("--at", &args.at)?;
    let account = args.account.as_deref().map(parse_account).transpose()?;
    let capture = Capture {
        at: vec![at],
        stop_when_taken: true,
    };
    let (_, captures) = args.engine.run_log_capturing(&args.dir, &capture, true)?;
    let mut capture = captures
        .into_iter()
        .next()
        .context("the replay took no capture")?;
    if let Some(account) = account {
        capture
            .accounts
            .retain(|position| position.account == account);
    }
    let text = if args.json {
        let document = StateJson {
            at: at.to_rfc3339(),
            state_time: capture.state_time.map(Timestamp::to_rfc3339),
            recorded_health: RecordedHealth::of(&capture.accounts),
            snapshot_differences: capture
                .snapshot_differences
                .iter()
                .map(DifferenceJson::of)
                .collect(),
            accounts: capture.accounts.iter().map(AccountJson::of).collect(),
        };
        let mut text = serde_json::to_string_pretty(&document).context("encoding the state")?;
        text.push('\n');
        text
    } else {
        state_text(&capture, args.account.as_deref())
    };
    // A closed pipe (`| head`) ends the output, not the command.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
    Ok(Outcome::Clean)
}

/// An account as `--account` names it: an address with or without `0x` in any case, else an id
/// as the log writes it.
fn parse_account(text: &str) -> anyhow::Result<Id> {
    let text = text.trim();
    let hex = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))
        .unwrap_or(text);
    if hex.len() == 40 && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return format!("0x{hex}")
            .parse()
            .with_context(|| format!("--account {text:?}: not an address"));
    }
    text.parse()
        .with_context(|| format!("--account {text:?}: not an address or account id"))
}

fn state_text(capture: &AccountsCapture, account: Option<&str>) -> String {
    let mut text = format!(
        "state at {} (events up to {})\n",
        capture.at.to_rfc3339(),
        capture
            .state_time
            .map_or_else(|| "none: empty log".to_owned(), Timestamp::to_rfc3339)
    );
    if let Some(recorded) = RecordedHealth::of(&capture.accounts) {
        text.push_str(&recorded.line());
        text.push('\n');
    }
    if !capture.snapshot_differences.is_empty() {
        text.push_str(&format!(
            "snapshots that differed from the rebuilt state (snapshot-differs-from-rebuilt): {}\n",
            capture.snapshot_differences.len()
        ));
        for difference in &capture.snapshot_differences {
            text.push_str(&format!("  {}\n", DifferenceJson::of(difference).line()));
        }
    }
    if capture.accounts.is_empty() {
        match account {
            Some(account) => text.push_str(&format!("no position for {account}\n")),
            None => text.push_str("no positions\n"),
        }
    }
    for position in &capture.accounts {
        let row = AccountJson::of(position);
        text.push_str(&format!(
            "{} {} {}: health {}, collateral {} {}, debt {} {}, {} {}",
            row.protocol,
            row.market,
            row.account,
            or_unknown(row.health_factor.as_ref()),
            or_unknown(row.collateral_value.as_ref()),
            row.base_currency,
            or_unknown(row.debt_value.as_ref()),
            row.base_currency,
            threshold_kind_name(row.threshold_kind),
            or_unknown(row.threshold),
        ));
        if let (Some(asset), Some(price)) = (&row.liquidation_asset, &row.liquidation_price) {
            text.push_str(&format!(", liquidation price of {asset} {price}"));
        }
        if let Some(at) = &row.totals_at {
            text.push_str(&format!(", from its totals of {at}"));
        }
        if let Some(recorded) = &row.recorded_health_factor {
            text.push_str(&format!(", recorded health {recorded}"));
            if let Some(ppm) = row.health_difference_ppm {
                text.push_str(&format!(" ({ppm:+} ppm)"));
            }
        }
        if let Some(missing) = &row.missing {
            text.push_str(&format!(" (missing: {missing})"));
        }
        text.push('\n');
        for position_asset in &position.assets {
            let asset = AssetJson::of(position_asset, position.base_decimals);
            text.push_str(&format!(
                "  {}: collateral {}{}, debt {}, price {}\n",
                asset.asset,
                asset.collateral,
                if asset.collateral_enabled || position_asset.collateral.is_zero() {
                    ""
                } else {
                    " (not counted)"
                },
                asset.debt,
                or_unknown(asset.price),
            ));
        }
    }
    text
}

/// What `cascade state --json` prints.
#[derive(Serialize)]
struct StateJson<'a> {
    at: String,
    state_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recorded_health: Option<RecordedHealth>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    snapshot_differences: Vec<DifferenceJson>,
    accounts: Vec<AccountJson<'a>>,
}

/// How far the computed health factors are from those the `account-totals` snapshots recorded.
#[derive(Serialize)]
pub struct RecordedHealth {
    /// Accounts with a recorded and a computed health factor.
    pub compared: usize,
    /// Of those, how many differ by more than [`TOLERANCE_PPM`] (0.01%), or could not be
    /// compared (one at the no-debt maximum and not the other).
    pub beyond_tolerance: usize,
    /// The largest difference, in parts per million.
    pub largest_ppm: i64,
}

/// The tolerance of [`RecordedHealth`]: 0.01%.
pub const TOLERANCE_PPM: i64 = 100;

impl RecordedHealth {
    /// The comparison over `accounts`; `None` when none recorded a health factor.
    pub fn of(accounts: &[AccountPosition]) -> Option<Self> {
        let mut tally = Self {
            compared: 0,
            beyond_tolerance: 0,
            largest_ppm: 0,
        };
        for totals in accounts
            .iter()
            .filter_map(|position| position.totals.as_ref())
        {
            if totals.health_factor.is_none() {
                continue;
            }
            tally.compared += 1;
            match totals.health_difference_ppm {
                Some(ppm) => {
                    if ppm.abs() > TOLERANCE_PPM {
                        tally.beyond_tolerance += 1;
                    }
                    if ppm.abs() > tally.largest_ppm.abs() {
                        tally.largest_ppm = ppm;
                    }
                }
                None => tally.beyond_tolerance += 1,
            }
        }
        (tally.compared > 0).then_some(tally)
    }

    /// One line of text.
    pub fn line(&self) -> String {
        format!(
            "recorded health factors: {} compared, {} differ by more than 0.01% ({TOLERANCE_PPM} ppm), largest difference {:+} ppm",
            self.compared, self.beyond_tolerance, self.largest_ppm
        )
    }
}

/// A [`SnapshotDifference`] as text: token amounts in base units.
#[derive(Serialize)]
struct DifferenceJson {
    time: String,
    protocol: String,
    market: String,
    account: String,
    asset: String,
    rebuilt_collateral: String,
    rebuilt_debt: String,
    rebuilt_collateral_enabled: bool,
    snapshot_collateral: String,
    snapshot_debt: String,
    snapshot_collateral_enabled: bool,
}

impl DifferenceJson {
    fn of(difference: &SnapshotDifference) -> Self {
        Self {
            time: difference.time.to_rfc3339(),
            protocol: difference.protocol.to_string(),
            market: difference.market.to_string(),
            account: difference.account.to_string(),
            asset: difference.asset.to_string(),
            rebuilt_collateral: difference.rebuilt.collateral.to_string(),
            rebuilt_debt: difference.rebuilt.debt.to_string(),
            rebuilt_collateral_enabled: difference.rebuilt.collateral_enabled,
            snapshot_collateral: difference.snapshot.collateral.to_string(),
            snapshot_debt: difference.snapshot.debt.to_string(),
            snapshot_collateral_enabled: difference.snapshot.collateral_enabled,
        }
    }

    fn line(&self) -> String {
        format!(
            "{} {} {} {} {}: rebuilt collateral {} debt {}, snapshot collateral {} debt {} (base units)",
            self.time,
            self.protocol,
            self.market,
            self.account,
            self.asset,
            self.rebuilt_collateral,
            self.rebuilt_debt,
            self.snapshot_collateral,
            self.snapshot_debt
        )
    }
}

/// One account as the accounts file and `cascade state --json` write it: amounts as decimal
/// text, token amounts in tokens where the decimals are known (else base units, `decimals`
/// empty), values in the base currency, the health factor `inf` without debt. It borrows the
/// position and writes each field's text straight to the output (a million accounts are tens of
/// millions of fields: no `String` per field).
#[derive(Serialize)]
struct AccountJson<'a> {
    protocol: Text<Protocol>,
    market: Text<&'a Id>,
    account: Text<&'a Id>,
    base_currency: Text<&'a Id>,
    collateral_value: Option<Text<Tokens>>,
    debt_value: Option<Text<Tokens>>,
    threshold_kind: ThresholdKind,
    threshold: Option<&'a Quantity>,
    health_factor: Option<Text<Health>>,
    liquidation_asset: Option<Text<&'a Id>>,
    liquidation_price: Option<&'a Quantity>,
    missing: Option<&'a str>,
    /// For an account known by its totals: when they were recorded.
    #[serde(skip_serializing_if = "Option::is_none")]
    totals_at: Option<Text<Timestamp>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recorded_health_factor: Option<Text<Health>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    health_difference_ppm: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    ltv: Option<&'a Quantity>,
    #[serde(skip_serializing_if = "Option::is_none")]
    e_mode: Option<u8>,
    assets: Assets<'a>,
}

/// The assets of an [`AccountJson`], each as an [`AssetJson`].
struct Assets<'a> {
    assets: &'a [AssetPosition],
    base_decimals: u8,
}

impl Serialize for Assets<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_seq(
            self.assets
                .iter()
                .map(|asset| AssetJson::of(asset, self.base_decimals)),
        )
    }
}

/// One asset of an [`AccountJson`].
#[derive(Serialize)]
struct AssetJson<'a> {
    asset: Text<&'a Id>,
    decimals: Option<u8>,
    collateral: Text<Tokens>,
    collateral_value: Option<Text<Tokens>>,
    debt: Text<Tokens>,
    debt_value: Option<Text<Tokens>>,
    price: Option<&'a Quantity>,
    collateral_enabled: bool,
}

impl<'a> AccountJson<'a> {
    fn of(position: &'a AccountPosition) -> Self {
        let base = |value: Option<U256>| value.map(|v| Text(Tokens(v, position.base_decimals)));
        let totals = position.totals.as_ref();
        let liquidation = position.liquidation_price.as_ref();
        Self {
            protocol: Text(position.protocol),
            market: Text(&position.market),
            account: Text(&position.account),
            base_currency: Text(&position.base_currency),
            collateral_value: base(position.collateral_value),
            debt_value: base(position.debt_value),
            threshold_kind: position.threshold_kind,
            threshold: position.threshold.as_ref(),
            health_factor: position.health_factor.map(|h| Text(Health(h))),
            liquidation_asset: liquidation.map(|l| Text(&l.asset)),
            liquidation_price: liquidation.map(|l| &l.price),
            missing: position.missing.as_deref(),
            totals_at: totals.map(|t| Text(t.at)),
            recorded_health_factor: totals
                .and_then(|t| t.health_factor)
                .map(|h| Text(Health(h))),
            health_difference_ppm: totals.and_then(|t| t.health_difference_ppm),
            ltv: totals.and_then(|t| t.ltv.as_ref()),
            e_mode: totals.and_then(|t| t.e_mode),
            assets: Assets {
                assets: &position.assets,
                base_decimals: position.base_decimals,
            },
        }
    }
}

impl<'a> AssetJson<'a> {
    fn of(asset: &'a AssetPosition, base_decimals: u8) -> Self {
        let tokens = |amount: U256| Text(Tokens(amount, asset.decimals.unwrap_or(0)));
        let base = |value: Option<U256>| value.map(|v| Text(Tokens(v, base_decimals)));
        Self {
            asset: Text(&asset.asset),
            decimals: asset.decimals,
            collateral: tokens(asset.collateral),
            collateral_value: base(asset.collateral_value),
            debt: tokens(asset.debt),
            debt_value: base(asset.debt_value),
            price: asset.price.as_ref(),
            collateral_enabled: asset.collateral_enabled,
        }
    }
}

/// A value written as its `Display` text: in JSON a string the serializer escapes as it goes,
/// without building a `String`.
struct Text<T>(T);

impl<T: fmt::Display> Serialize for Text<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<T: fmt::Display> fmt::Display for Text<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// An amount of base units with this many decimals, as `cascade_run::decimal` writes it.
struct Tokens(U256, u8);

impl fmt::Display for Tokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Amount(self.0).write_tokens(self.1, f)
    }
}

/// A wad health factor as decimal text; `inf` for the protocols' no-debt maximum.
struct Health(U256);

impl fmt::Display for Health {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == U256::MAX {
            f.write_str("inf")
        } else {
            Tokens(self.0, 18).fmt(f)
        }
    }
}

/// A value's text, or `unknown`.
fn or_unknown(value: Option<impl fmt::Display>) -> String {
    value.map_or_else(|| "unknown".to_owned(), |value| value.to_string())
}

/// The columns of a CSV accounts file, one row per account and asset (one with the asset columns
/// empty for an account known only by its totals).
const CSV_HEADER: [&str; 25] = [
    "at",
    "state_time",
    "protocol",
    "market",
    "account",
    "asset",
    "decimals",
    "collateral",
    "collateral_value",
    "debt",
    "debt_value",
    "price",
    "collateral_enabled",
    "base_currency",
    "total_collateral_value",
    "total_debt_value",
    "threshold_kind",
    "threshold",
    "health_factor",
    "liquidation_asset",
    "liquidation_price",
    "missing",
    "totals_at",
    "recorded_health_factor",
    "health_difference_ppm",
];

/// Writes `captures` to `path`: JSON lines when its name ends in `.jsonl` or `.json`, else CSV.
pub fn write_accounts(path: &Path, captures: &[AccountsCapture]) -> anyhow::Result<()> {
    let json = path
        .extension()
        .is_some_and(|extension| extension == "jsonl" || extension == "json");
    // Written as it goes: a million accounts are hundreds of megabytes of text.
    write_file_with(path, |file| {
        let out = std::io::BufWriter::new(file);
        if json {
            accounts_lines(captures, out)
        } else {
            accounts_csv(captures, out)
        }
    })
}

/// One JSON object per account and capture, with the capture's `at` and `state_time`, each
/// written as it is serialized.
fn accounts_lines(captures: &[AccountsCapture], mut out: impl Write) -> std::io::Result<()> {
    #[derive(Serialize)]
    struct Line<'a> {
        at: &'a str,
        state_time: Option<&'a str>,
        #[serde(flatten)]
        account: AccountJson<'a>,
    }
    for capture in captures {
        let at = capture.at.to_rfc3339();
        let state_time = capture.state_time.map(Timestamp::to_rfc3339);
        for position in &capture.accounts {
            let line = Line {
                at: &at,
                state_time: state_time.as_deref(),
                account: AccountJson::of(position),
            };
            serde_json::to_writer(&mut out, &line)?;
            out.write_all(b"\n")?;
        }
    }
    out.flush()
}

fn accounts_csv(captures: &[AccountsCapture], out: impl Write) -> std::io::Result<()> {
    let mut writer = csv::Writer::from_writer(out);
    writer.write_record(CSV_HEADER)?;
    let mut row = CsvRow::default();
    for capture in captures {
        let at = capture.at.to_rfc3339();
        let state_time = capture
            .state_time
            .map(Timestamp::to_rfc3339)
            .unwrap_or_default();
        for position in &capture.accounts {
            row.account(position);
            if position.assets.is_empty() {
                row.write(
                    &mut writer,
                    (&at, &state_time),
                    None,
                    position.base_decimals,
                )?;
            }
            for asset in &position.assets {
                row.write(
                    &mut writer,
                    (&at, &state_time),
                    Some(asset),
                    position.base_decimals,
                )?;
            }
        }
    }
    writer.flush()
}

/// The text of one account's CSV rows, in buffers reused from account to account: the same
/// columns as [`AccountJson`] gives, without a `String` per field (a million accounts are
/// tens of millions of fields).
#[derive(Default)]
struct CsvRow {
    /// Per account: `protocol`, `market`, `account`, `base_currency`, then the header's order
    /// from `total_collateral_value` on.
    account: [String; 15],
    /// Per asset, `asset` to `price`.
    asset: [String; 7],
    /// The names of the threshold kinds met so far, as serde writes them.
    threshold_kinds: Vec<(ThresholdKind, String)>,
}

impl CsvRow {
    /// Fills the account's columns.
    fn account(&mut self, position: &AccountPosition) {
        let kind = match self
            .threshold_kinds
            .iter()
            .find(|(kind, _)| *kind == position.threshold_kind)
        {
            Some((_, name)) => name.clone(),
            None => {
                let name = threshold_kind_name(position.threshold_kind);
                self.threshold_kinds
                    .push((position.threshold_kind, name.clone()));
                name
            }
        };
        let totals = position.totals.as_ref();
        let base = position.base_decimals;
        let [
            protocol,
            market,
            account,
            base_currency,
            collateral_value,
            debt_value,
            threshold_kind,
            threshold,
            health_factor,
            liquidation_asset,
            liquidation_price,
            missing,
            totals_at,
            recorded_health_factor,
            health_difference_ppm,
        ] = &mut self.account;
        put(protocol, Some(position.protocol));
        put(market, Some(position.market));
        put(account, Some(position.account));
        put(base_currency, Some(position.base_currency));
        put_decimal(collateral_value, position.collateral_value, base);
        put_decimal(debt_value, position.debt_value, base);
        *threshold_kind = kind;
        put(threshold, position.threshold);
        put(health_factor, position.health_factor.map(Health));
        let liquidation = position.liquidation_price.as_ref();
        put(liquidation_asset, liquidation.map(|l| l.asset));
        put(liquidation_price, liquidation.map(|l| l.price));
        put(missing, position.missing.as_deref());
        put(totals_at, totals.map(|t| t.at.to_rfc3339()));
        put(
            recorded_health_factor,
            totals.and_then(|t| t.health_factor).map(Health),
        );
        put(
            health_difference_ppm,
            totals.and_then(|t| t.health_difference_ppm),
        );
    }

    /// Writes the account's row for `asset` (the asset columns empty for `None`), the account's
    /// values in `base_decimals`.
    fn write(
        &mut self,
        writer: &mut csv::Writer<impl Write>,
        (at, state_time): (&str, &str),
        asset: Option<&AssetPosition>,
        base_decimals: u8,
    ) -> std::io::Result<()> {
        let [
            name,
            decimals,
            collateral,
            collateral_value,
            debt,
            debt_value,
            price,
        ] = &mut self.asset;
        let enabled = match asset {
            Some(asset) => {
                let tokens = asset.decimals.unwrap_or(0);
                put(name, Some(asset.asset));
                put(decimals, asset.decimals);
                put_decimal(collateral, Some(asset.collateral), tokens);
                put_decimal(collateral_value, asset.collateral_value, base_decimals);
                put_decimal(debt, Some(asset.debt), tokens);
                put_decimal(debt_value, asset.debt_value, base_decimals);
                put(price, asset.price);
                if asset.collateral_enabled {
                    "true"
                } else {
                    "false"
                }
            }
            None => {
                for column in &mut self.asset {
                    column.clear();
                }
                ""
            }
        };
        let [
            protocol,
            market,
            account,
            base_currency,
            total_collateral_value,
            total_debt_value,
            rest @ ..,
        ] = &self.account;
        for field in [at, state_time, protocol, market, account]
            .into_iter()
            // `asset` to `price`, in the header's order.
            .chain(self.asset.iter().map(String::as_str))
            .chain([enabled])
            .chain([base_currency, total_collateral_value, total_debt_value].map(String::as_str))
            .chain(rest.iter().map(String::as_str))
        {
            writer.write_field(field)?;
        }
        writer.write_record(None::<&[u8]>)?;
        Ok(())
    }
}

/// Sets `column` to `value`'s text, or empty for `None`.
fn put(column: &mut String, value: Option<impl std::fmt::Display>) {
    use std::fmt::Write as _;
    column.clear();
    if let Some(value) = value {
        write!(column, "{value}").expect("writing to a String cannot fail");
    }
}

/// Sets `column` to `amount` in units of `decimals` digits ([`Tokens`]' text), or empty.
fn put_decimal(column: &mut String, amount: Option<U256>, decimals: u8) {
    column.clear();
    if let Some(amount) = amount {
        Amount(amount)
            .write_tokens(decimals, column)
            .expect("writing to a String cannot fail");
    }
}

/// A threshold kind's name as the JSON forms write it.
fn threshold_kind_name(kind: ThresholdKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|value| value.as_str().map(str::to_owned))
        .unwrap_or_default()
}
