//! Conversions of one cell's text into a typed value: amounts, fixed-point numbers, times, ids.
//!
//! Shared by every adapter and by mappings, so "what does `-0.5828` mean in a withdrawal column"
//! is decided once. Amounts and prices are parsed from their decimal digits
//! ([`Fixed::parse_with`]), never through `f64`. Each function returns the reason as
//! text on failure; the caller attaches file, line, column and value.
//!
//! Must never: round an amount silently, or accept a sign the column's convention forbids.

use cascade_events::{Address, Amount, Fixed, Id, ParseAmountError, Symbol, Timestamp, U256};
use chrono::{DateTime, NaiveDateTime};
use serde::Deserialize;

use crate::table::Cell;

/// How an amount column is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Unit {
    /// Whole tokens with a decimal fraction (`"1.5"` ETH); scaled by the token's decimals.
    #[default]
    Tokens,
    /// Integer base units (`"1500000000000000000"` wei); an exponent is accepted when the value
    /// it denotes is an integer (`"1.8862488153356683e+22"`).
    Base,
}

/// The sign convention of an amount column.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Sign {
    /// Amounts are written positive; a minus sign is an error.
    #[default]
    Positive,
    /// Amounts are written negative (the Maker export's withdrawals); the event carries the
    /// absolute value, and a value without a minus sign is an error.
    Negative,
}

/// Decimal text scaled by `10^decimals`, exactly (see [`Fixed::parse_with`]).
fn parse_decimal(text: &str, decimals: u8) -> Result<U256, ParseAmountError> {
    match plain_decimal(text, decimals) {
        Some(value) => Ok(value),
        None => Fixed::parse_with(text, decimals).map(|fixed| fixed.value),
    }
}

/// The fast path of [`parse_decimal`] for the common shape of export cells: digits with at most
/// one dot, no sign, exponent or spaces, fitting 128 bits. `None` sends anything else (and every
/// error) to the general parser, which gives the same value or the error; a property test checks
/// that both agree.
fn plain_decimal(text: &str, decimals: u8) -> Option<U256> {
    let mut value: u128 = 0;
    let mut fraction_digits: u8 = 0;
    let mut seen_dot = false;
    let mut any_digit = false;
    for &byte in text.as_bytes() {
        match byte {
            b'0'..=b'9' => {
                any_digit = true;
                if seen_dot {
                    if fraction_digits == decimals {
                        // Zeros past the precision carry nothing; anything else is an error the
                        // general parser reports.
                        if byte != b'0' {
                            return None;
                        }
                        continue;
                    }
                    fraction_digits += 1;
                }
                value = value
                    .checked_mul(10)?
                    .checked_add(u128::from(byte - b'0'))?;
            }
            b'.' if !seen_dot => seen_dot = true,
            _ => return None,
        }
    }
    if !any_digit {
        return None;
    }
    let scale = 10u128.checked_pow(u32::from(decimals - fraction_digits))?;
    value.checked_mul(scale).map(U256::from)
}

/// Parses an amount cell into base units.
///
/// `decimals` is the token's precision: with [`Unit::Tokens`] a value with more non-zero
/// fractional digits than that is refused ("more decimals than the token has"), never rounded.
pub fn amount(text: &str, unit: Unit, decimals: u8, sign: Sign) -> Result<Amount, String> {
    let trimmed = text.trim();
    let digits = match sign {
        Sign::Positive => trimmed,
        Sign::Negative => match trimmed.strip_prefix('-') {
            Some(rest) if !rest.starts_with(['-', '+']) => rest,
            _ => {
                return Err(
                    "expected a negative amount (this column is written with a minus sign)".into(),
                );
            }
        },
    };
    let scale = match unit {
        Unit::Tokens => decimals,
        Unit::Base => 0,
    };
    parse_decimal(digits, scale)
        .map(Amount)
        .map_err(|error| amount_reason(&error, unit, decimals, sign))
}

fn amount_reason(error: &ParseAmountError, unit: Unit, decimals: u8, sign: Sign) -> String {
    match (error, unit) {
        (ParseAmountError::TooPrecise { .. }, Unit::Tokens) => {
            format!("more decimals than the token has ({decimals})")
        }
        (ParseAmountError::TooPrecise { .. }, Unit::Base) => {
            "not an integer number of base units".into()
        }
        (ParseAmountError::Negative(_), _) if sign == Sign::Positive => {
            "negative amount where only positive amounts are possible".into()
        }
        (ParseAmountError::Negative(_), _) => "doubly negative amount".into(),
        (ParseAmountError::NotANumber(_), _) => "not a decimal number".into(),
        (ParseAmountError::Overflow(_), _) => "does not fit 256 bits".into(),
    }
}

/// Parses a non-negative fixed-point cell.
///
/// With `decimals` = `None` the precision is what the text carries (`"1.30"` has 2 decimals);
/// with `Some(d)` the value is stored with `d` decimals and more non-zero digits are refused.
/// With `scaled` the text is already an integer scaled by `10^d` (Chainlink's `answer`).
pub fn fixed(text: &str, decimals: Option<u8>, scaled: bool) -> Result<Fixed, String> {
    let reason = |error: ParseAmountError| match error {
        ParseAmountError::TooPrecise { decimals, .. } => format!("more than {decimals} decimals"),
        ParseAmountError::Negative(_) => {
            "negative value where only non-negative values are possible".into()
        }
        ParseAmountError::NotANumber(_) => "not a decimal number".into(),
        ParseAmountError::Overflow(_) => "does not fit 256 bits".into(),
    };
    match (decimals, scaled) {
        (Some(decimals), true) => parse_decimal(text, 0)
            .map(|value| Fixed::new(value, decimals))
            .map_err(|error| match error {
                ParseAmountError::TooPrecise { .. } => {
                    "not an integer (the column is scaled)".into()
                }
                other => reason(other),
            }),
        (Some(decimals), false) => parse_decimal(text, decimals)
            .map(|value| Fixed::new(value, decimals))
            .map_err(reason),
        (None, _) => Fixed::parse_exact(text).map_err(reason),
    }
}

/// Refuses a price of 0: nothing trades at 0, and exports write 0 where they had no price.
pub fn positive_price(price: Fixed) -> Result<Fixed, String> {
    if price.value.is_zero() {
        Err("a price of 0 is no price (exports write 0 where they have none)".into())
    } else {
        Ok(price)
    }
}

/// How a time cell is written. All times are UTC.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimeFormat {
    /// Unix seconds.
    UnixSeconds,
    /// Unix milliseconds, truncated to the second.
    UnixMillis,
    /// RFC 3339 with an offset (`2021-05-19T00:10:00.0000000Z`).
    Rfc3339,
    /// A chrono `strftime` pattern for a naive date-time (`%Y-%m-%d %H:%M:%S%.f`, or
    /// `%d/%m/%y %H:%M` without seconds: the start of the minute), read in a fixed zone.
    Pattern {
        /// The pattern.
        pattern: String,
        /// Seconds east of UTC of the zone the times are written in (`timezone`).
        offset: i32,
    },
}

impl TimeFormat {
    /// Reads the mapping-file spelling: `unix_s`, `unix_ms`, `rfc3339`, or a pattern with `%`.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text {
            "unix_s" => Ok(TimeFormat::UnixSeconds),
            "unix_ms" => Ok(TimeFormat::UnixMillis),
            "rfc3339" => Ok(TimeFormat::Rfc3339),
            pattern if pattern.contains('%') => Ok(TimeFormat::Pattern {
                pattern: pattern.to_owned(),
                offset: 0,
            }),
            other => Err(format!(
                "unknown time format {other:?} (expected unix_s, unix_ms, rfc3339 or a strftime pattern)"
            )),
        }
    }
}

/// Reads a mapping's `timezone`: `UTC` (also `Z`, `GMT`) or a fixed offset `+HH:MM`/`-HH:MM`,
/// as seconds east of UTC. Named zones with daylight saving time are refused: a sheet written in
/// local time across a clock change has an hour that happens twice, which no offset resolves.
pub fn timezone(text: &str) -> Result<i32, String> {
    let trimmed = text.trim();
    if matches!(trimmed, "UTC" | "utc" | "Z" | "GMT") {
        return Ok(0);
    }
    let refuse = || {
        format!(
            "unknown time zone {trimmed:?} (expected UTC or an offset such as +02:00; a zone with daylight saving time needs its times converted, or written with an offset and read as rfc3339)"
        )
    };
    let rest = trimmed.strip_prefix("UTC").unwrap_or(trimmed).to_owned();
    let (sign, digits) = match rest.split_at_checked(1) {
        Some(("+", digits)) => (1, digits),
        Some(("-", digits)) => (-1, digits),
        _ => return Err(refuse()),
    };
    let (hours, minutes) = digits.split_once(':').ok_or_else(refuse)?;
    let field = |text: &str, max: i32| {
        (text.len() == 2 && text.bytes().all(|b| b.is_ascii_digit()))
            .then(|| text.parse::<i32>().ok())
            .flatten()
            .filter(|value| *value <= max)
            .ok_or_else(refuse)
    };
    Ok(sign * (field(hours, 14)? * 3600 + field(minutes, 59)? * 60))
}

/// Times before this (2009-01-03, the first Bitcoin block) are refused: no market data or
/// on-chain event predates it, so such a value is a wrong column or a zero placeholder.
pub const EARLIEST: Timestamp = Timestamp(1_230_940_800);
/// Times from 2100 on are refused for the same reason.
pub const LATEST: Timestamp = Timestamp(4_102_444_800);

/// Parses a time cell and checks it is within [`EARLIEST`], [`LATEST`].
pub fn time(text: &str, format: &TimeFormat) -> Result<Timestamp, String> {
    let trimmed = text.trim();
    let seconds = match format {
        TimeFormat::UnixSeconds => parse_unix(trimmed)?,
        TimeFormat::UnixMillis => parse_unix(trimmed)?.div_euclid(1000),
        TimeFormat::Rfc3339 => DateTime::parse_from_rfc3339(trimmed)
            .map_err(|error| format!("not an RFC 3339 time: {error}"))?
            .timestamp(),
        TimeFormat::Pattern { pattern, offset } => {
            NaiveDateTime::parse_from_str(trimmed, pattern)
                .map_err(|error| format!("not a time in the format {pattern:?}: {error}"))?
                .and_utc()
                .timestamp()
                - i64::from(*offset)
        }
    };
    check_range(Timestamp(seconds))
}

/// Checks that a time is plausible for market or chain data.
pub fn check_range(time: Timestamp) -> Result<Timestamp, String> {
    if time.0 == 0 {
        return Err("zero timestamp (a placeholder, not a time)".into());
    }
    if time < EARLIEST || time >= LATEST {
        return Err(format!(
            "time {time} is outside {EARLIEST} .. {LATEST} (wrong unit or wrong column?)"
        ));
    }
    Ok(time)
}

fn parse_unix(text: &str) -> Result<i64, String> {
    text.parse::<i64>()
        .map_err(|_| "not an integer unix time".to_owned())
}

/// How an identity cell is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IdKind {
    /// The text form of [`Id`]: `0x…` address, `#123` number, anything else a name.
    #[default]
    Auto,
    /// An EVM address (`0x` and 40 hex digits).
    Address,
    /// A decimal number (a Maker vault number), without the `#`.
    Number,
    /// A name of at most 32 bytes.
    Name,
}

/// Refuses a name with a control character: a line break inside quotes (a broken export) would
/// otherwise become part of an asset or market name.
fn printable(text: &str) -> Result<&str, String> {
    if text.chars().any(char::is_control) {
        Err("a name cannot hold a control character (a line break inside quotes?)".into())
    } else {
        Ok(text)
    }
}

/// Parses an identity cell.
pub fn id(text: &str, kind: IdKind) -> Result<Id, String> {
    let trimmed = printable(text.trim())?;
    if trimmed.is_empty() {
        return Err("empty identity".into());
    }
    match kind {
        IdKind::Auto => trimmed.parse::<Id>().map_err(|error| error.to_string()),
        IdKind::Address => {
            // Exports write addresses with or without `0x`, in any case (subgraphs lower-case
            // them, Etherscan checksums them, Dune drops the prefix of `varbinary` columns).
            let hex = trimmed
                .strip_prefix("0x")
                .or_else(|| trimmed.strip_prefix("0X"))
                .unwrap_or(trimmed);
            if hex.len() != 40 {
                return Err("not an address (40 hex digits, with or without 0x)".into());
            }
            hex.parse()
                .map(Id::Address)
                .map_err(|_| "not a hex address".to_owned())
        }
        IdKind::Number => trimmed
            .parse::<u64>()
            .map(Id::Number)
            .map_err(|_| "not a non-negative integer".to_owned()),
        IdKind::Name => Symbol::new(trimmed)
            .map(Id::Name)
            .map_err(|error| error.to_string()),
    }
}

/// Parses a Compound exchange rate mantissa (`exchangeRateStored()`, scaled by 1e18): a positive
/// integer, decimal or `0x` hex.
pub fn exchange_rate(text: &str) -> Result<U256, String> {
    let rate = integer(text)
        .map_err(|reason| format!("{reason} (the exchange rate is the integer mantissa exchangeRateStored() returns, scaled by 1e18)"))?;
    if rate.is_zero() {
        return Err("an exchange rate of 0 is no rate".into());
    }
    Ok(rate)
}

/// Parses a name of at most 32 bytes (a parameter name).
pub fn symbol(text: &str) -> Result<Symbol, String> {
    Symbol::new(printable(text.trim())?).map_err(|error| error.to_string())
}

/// Parses a non-negative integer that may be written in decimal or `0x` hex (round ids, block
/// numbers, indices).
pub fn integer(text: &str) -> Result<U256, String> {
    let trimmed = text.trim();
    if let Some(hex) = trimmed.strip_prefix("0x") {
        return U256::from_str_radix(hex, 16).map_err(|_| "not a hex integer".to_owned());
    }
    parse_decimal(trimmed, 0).map_err(|error| match error {
        ParseAmountError::TooPrecise { .. } => "not an integer".to_owned(),
        ParseAmountError::Negative(_) => {
            "negative where only non-negative integers are possible".to_owned()
        }
        ParseAmountError::NotANumber(_) => "not an integer".to_owned(),
        ParseAmountError::Overflow(_) => "does not fit 256 bits".to_owned(),
    })
}

/// A token's precision: an integer in `0..=77` (10^77 is the largest power of ten a `U256`
/// holds).
pub fn decimals(text: &str) -> Result<u8, String> {
    integer_u64(text).and_then(|d| {
        u8::try_from(d)
            .ok()
            .filter(|d| *d <= 77)
            .ok_or_else(|| "not a token precision (0..=77)".to_owned())
    })
}

/// [`integer`] narrowed to `u64`.
pub fn integer_u64(text: &str) -> Result<u64, String> {
    let value = integer(text)?;
    u64::try_from(value).map_err(|_| "does not fit 64 bits".to_owned())
}

/// [`integer`] narrowed to `u128`.
pub fn integer_u128(text: &str) -> Result<u128, String> {
    let value = integer(text)?;
    u128::try_from(value).map_err(|_| "does not fit 128 bits".to_owned())
}

/// The largest Chainlink round id: round ids are `uint80`, a proxy's being
/// `phase << 64 | aggregator round` with a 16-bit phase (`AggregatorProxy.addPhase`).
pub const MAX_ROUND_ID: u128 = (1 << 80) - 1;

/// Refuses a round id no Chainlink feed can have: above `uint80`, or aggregator round 0 (the low
/// 64 bits; aggregators number their rounds from 1, and a proxy has no data for round 0).
pub fn check_round(round: u128) -> Result<u128, String> {
    if round > MAX_ROUND_ID {
        Err(format!(
            "above the largest Chainlink round id {MAX_ROUND_ID} (round ids are uint80: a 16-bit phase above a 64-bit aggregator round)"
        ))
    } else if round & u128::from(u64::MAX) == 0 {
        Err(
            "aggregator round 0 (the low 64 bits) does not exist: aggregators number rounds from 1"
                .into(),
        )
    } else {
        Ok(round)
    }
}

/// Parses a Chainlink round id ([`integer`], then [`check_round`]).
pub fn round_id(text: &str) -> Result<u128, String> {
    integer_u128(text).and_then(check_round)
}

/// Parses `true`/`false` (also `True`/`False`, `1`/`0`).
pub fn boolean(text: &str) -> Result<bool, String> {
    match text.trim() {
        "true" | "True" | "TRUE" | "1" => Ok(true),
        "false" | "False" | "FALSE" | "0" => Ok(false),
        _ => Err("not a boolean (true/false)".into()),
    }
}

// ---------------------------------------------------------------------------------------------
// Typed cells (a Parquet column's values), converted without their text. Each function gives
// `Some` only where the text conversion of the cell's text gives that very value, and `None`
// for every other cell (a string, a float, an inexact or out-of-range value), which the caller
// then converts through its text: so the value is the same either way, and every error is
// worded by the text conversion. A property test (`crate::mapped_parquet`) checks the agreement.

/// `magnitude` x 10^(`decimals` - `scale`) when that is an integer that fits 256 bits and the
/// power of ten does too (as [`Fixed::parse_with`] requires of the digits it is given).
fn rescale(magnitude: U256, scale: i8, decimals: u8) -> Option<U256> {
    let exponent = i32::from(decimals) - i32::from(scale);
    let factor = |exponent: i32| {
        let exponent = u8::try_from(exponent).ok().filter(|e| *e <= 77)?;
        match 10u128.checked_pow(u32::from(exponent)) {
            Some(small) => Some(U256::from(small)),
            None => Some(U256::from(10u8).pow(U256::from(exponent))),
        }
    };
    if exponent >= 0 {
        let factor = factor(exponent)?;
        if let (Ok(small), Ok(by)) = (u128::try_from(magnitude), u128::try_from(factor))
            && let Some(product) = small.checked_mul(by)
        {
            return Some(U256::from(product));
        }
        magnitude.checked_mul(factor)
    } else {
        let divisor = factor(-exponent)?;
        let (quotient, remainder) = magnitude.div_rem(divisor);
        remainder.is_zero().then_some(quotient)
    }
}

/// [`amount`] of a number cell.
pub fn amount_of(cell: Cell<'_>, unit: Unit, decimals: u8, sign: Sign) -> Option<Amount> {
    let Cell::Number {
        negative,
        magnitude,
        scale,
    } = cell
    else {
        return None;
    };
    if negative != (sign == Sign::Negative) {
        return None;
    }
    let decimals = match unit {
        Unit::Tokens => decimals,
        Unit::Base => 0,
    };
    rescale(magnitude, scale, decimals).map(Amount)
}

/// [`fixed`] of a number cell.
pub fn fixed_of(cell: Cell<'_>, decimals: Option<u8>, scaled: bool) -> Option<Fixed> {
    let Cell::Number {
        negative: false,
        magnitude,
        scale,
    } = cell
    else {
        return None;
    };
    match (decimals, scaled) {
        (Some(decimals), true) => rescale(magnitude, scale, 0).map(|v| Fixed::new(v, decimals)),
        (Some(decimals), false) => {
            rescale(magnitude, scale, decimals).map(|v| Fixed::new(v, decimals))
        }
        // The text has exactly `scale` digits after the point, which is the precision kept.
        (None, _) => {
            let decimals = u8::try_from(scale.max(0)).ok()?;
            rescale(magnitude, scale, decimals).map(|v| Fixed::new(v, decimals))
        }
    }
}

/// [`integer`] of a number cell.
pub fn integer_of(cell: Cell<'_>) -> Option<U256> {
    match cell {
        Cell::Number {
            negative: false,
            magnitude,
            scale,
        } => rescale(magnitude, scale, 0),
        _ => None,
    }
}

/// A whole number cell written without a point (scale 0) as an `i64`, as `str::parse` reads
/// its text.
pub fn unix_of(cell: Cell<'_>) -> Option<i64> {
    let Cell::Number {
        negative,
        magnitude,
        scale: 0,
    } = cell
    else {
        return None;
    };
    let magnitude = i128::try_from(magnitude).ok()?;
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

/// [`time`] of a number cell (unix seconds or milliseconds) or an instant (RFC 3339).
pub fn time_of(cell: Cell<'_>, format: &TimeFormat) -> Option<Timestamp> {
    let seconds = match (format, cell) {
        (TimeFormat::UnixSeconds, _) => unix_of(cell)?,
        (TimeFormat::UnixMillis, _) => unix_of(cell)?.div_euclid(1000),
        // Inside the accepted range the RFC 3339 text is exact, and reads back as these
        // seconds (the fraction, if any, is dropped as `timestamp()` drops it).
        (TimeFormat::Rfc3339, Cell::Instant { value, per_second }) => value.div_euclid(per_second),
        _ => return None,
    };
    check_range(Timestamp(seconds)).ok()
}

/// [`id`] of a number cell (`id = "number"`) or of bytes (`id = "address"`).
pub fn id_of(cell: Cell<'_>, kind: IdKind) -> Option<Id> {
    match (kind, cell) {
        (
            IdKind::Number,
            Cell::Number {
                negative: false,
                magnitude,
                scale: 0,
            },
        ) => u64::try_from(magnitude).ok().map(Id::Number),
        (IdKind::Address, Cell::Bytes(bytes)) if bytes.len() == 20 => {
            Some(Id::Address(Address::from_slice(bytes)))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wei(units: u128) -> Amount {
        Amount::from_units(units)
    }

    #[test]
    fn amounts_follow_unit_and_sign() {
        // A blank amount is no amount, never a silent 0 (docs/ingest.md, "an unknown side").
        for unit in [Unit::Tokens, Unit::Base] {
            assert!(amount(" ", unit, 18, Sign::Positive).is_err());
        }
        let eth = 10u128.pow(18);
        assert_eq!(
            amount("2.527445121", Unit::Tokens, 18, Sign::Positive),
            Ok(wei(2_527_445_121 * 10u128.pow(9)))
        );
        assert_eq!(
            amount("-0.5828", Unit::Tokens, 18, Sign::Negative),
            Ok(wei(5_828 * eth / 10_000))
        );
        assert_eq!(
            amount("-8e-18", Unit::Tokens, 18, Sign::Negative),
            Ok(wei(8))
        );
        assert_eq!(
            amount("1.8862488153356683e+22", Unit::Base, 18, Sign::Positive),
            Ok(wei(18_862_488_153_356_683_000_000))
        );
        assert_eq!(
            amount("0.0000001", Unit::Tokens, 6, Sign::Positive),
            Err("more decimals than the token has (6)".into())
        );
        assert_eq!(
            amount("-5", Unit::Tokens, 18, Sign::Positive),
            Err("negative amount where only positive amounts are possible".into())
        );
        assert!(
            amount("5", Unit::Tokens, 18, Sign::Negative)
                .unwrap_err()
                .contains("expected a negative")
        );
        assert!(amount("--5", Unit::Tokens, 18, Sign::Negative).is_err());
        assert_eq!(
            amount("12.5", Unit::Base, 0, Sign::Positive),
            Err("not an integer number of base units".into())
        );
        assert_eq!(
            amount("abc", Unit::Tokens, 18, Sign::Positive),
            Err("not a decimal number".into())
        );
    }

    #[test]
    fn fixed_keeps_or_imposes_precision() {
        assert_eq!(fixed("1.30", None, false).unwrap().to_string(), "1.30");
        assert_eq!(
            fixed("231234567890", Some(8), true).unwrap().to_string(),
            "2312.34567890"
        );
        assert_eq!(
            fixed("3000.500000000", Some(8), false).unwrap().to_string(),
            "3000.50000000"
        );
        assert_eq!(
            fixed("1.123", Some(2), false),
            Err("more than 2 decimals".into())
        );
        assert!(fixed("12.5", Some(8), true).is_err());
        assert!(fixed("-1", None, false).unwrap_err().contains("negative"));
    }

    #[test]
    fn times_in_every_format() {
        let pattern = TimeFormat::parse("%Y-%m-%d %H:%M:%S%.f").unwrap();
        assert_eq!(
            time("2022-01-24 22:04:28.000", &pattern),
            Ok(Timestamp(1_643_061_868))
        );
        assert_eq!(
            time("2020-10-19 14:00:52", &pattern),
            Ok(Timestamp(1_603_116_052))
        );
        // The Maker parameter file writes single-digit hours.
        assert_eq!(
            time("2023-01-26 3:03:11", &pattern),
            Ok(Timestamp(1_674_702_191))
        );
        assert_eq!(
            time("1609459201234", &TimeFormat::UnixMillis),
            Ok(Timestamp(1_609_459_201))
        );
        assert_eq!(
            time("1700000123", &TimeFormat::UnixSeconds),
            Ok(Timestamp(1_700_000_123))
        );
        assert_eq!(
            time("2021-05-19T00:10:00.0000000Z", &TimeFormat::Rfc3339),
            Ok(Timestamp(1_621_383_000))
        );
        assert!(
            time("0", &TimeFormat::UnixSeconds)
                .unwrap_err()
                .contains("zero timestamp")
        );
        // Milliseconds read as seconds land far in the future.
        assert!(
            time("1609459201234", &TimeFormat::UnixSeconds)
                .unwrap_err()
                .contains("outside")
        );
        assert!(time("yesterday", &pattern).is_err());
        assert!(TimeFormat::parse("unix_minutes").is_err());
    }

    #[test]
    fn minute_times_in_a_zone() {
        // 19/05/21 14:07 at UTC+02:00 is 12:07:00 UTC, the start of that minute.
        let minutes = TimeFormat::Pattern {
            pattern: "%d/%m/%y %H:%M".into(),
            offset: timezone("+02:00").unwrap(),
        };
        assert_eq!(
            time("19/05/21 14:07", &minutes),
            Ok(Timestamp(1_621_426_020))
        );
        assert_eq!(timezone("UTC"), Ok(0));
        assert_eq!(timezone("-05:30"), Ok(-19_800));
        assert_eq!(timezone("UTC+01:00"), Ok(3600));
        for refused in ["Europe/Berlin", "+2", "+15:00", "+02:60", ""] {
            assert!(timezone(refused).is_err(), "{refused}");
        }
    }

    #[test]
    fn ids_by_kind() {
        assert_eq!(id("16175", IdKind::Number), Ok(Id::Number(16175)));
        assert_eq!(id("ETH-B", IdKind::Name), Ok(Id::name("ETH-B")));
        assert!(matches!(
            id(
                "0xefb52b3c270c20bf180ca51393dac604c4851580",
                IdKind::Address
            ),
            Ok(Id::Address(_))
        ));
        assert!(id("0x12", IdKind::Address).is_err());
        // With or without 0x, in any case: one address.
        let lower = id(
            "0xefb52b3c270c20bf180ca51393dac604c4851580",
            IdKind::Address,
        );
        for spelling in [
            "efb52b3c270c20bf180ca51393dac604c4851580",
            "0XEFB52B3C270C20BF180CA51393DAC604C4851580",
            "EfB52b3C270c20bF180Ca51393daC604c4851580",
        ] {
            assert_eq!(id(spelling, IdKind::Address), lower, "{spelling}");
        }
        assert!(id("zzb52b3c270c20bf180ca51393dac604c4851580", IdKind::Address).is_err());
        assert!(id("-3", IdKind::Number).is_err());
        assert!(id("", IdKind::Auto).is_err());
        assert!(id(&"x".repeat(33), IdKind::Name).is_err());
    }

    proptest::proptest! {
        #[test]
        fn fast_path_agrees_with_the_general_parser(
            integer in 0u64..u64::MAX,
            fraction in "[0-9]{0,24}",
            decimals in 0u8..40,
        ) {
            let text = format!("{integer}.{fraction}");
            let general = Fixed::parse_with(&text, decimals).map(|f| f.value);
            proptest::prop_assert_eq!(parse_decimal(&text, decimals), general.clone());
            if let Some(fast) = plain_decimal(&text, decimals) {
                proptest::prop_assert_eq!(Ok(fast), general);
            }
            let whole = integer.to_string();
            proptest::prop_assert_eq!(parse_decimal(&whole, decimals), Fixed::parse_with(&whole, decimals).map(|f| f.value));
        }

        #[test]
        fn fast_path_never_accepts_what_the_general_parser_refuses(text in "[0-9.eE+ -]{0,12}", decimals in 0u8..20) {
            let general = Fixed::parse_with(&text, decimals).map(|f| f.value);
            if let Some(fast) = plain_decimal(&text, decimals) {
                proptest::prop_assert_eq!(Ok(fast), general);
            }
        }
    }

    #[test]
    fn integers_decimal_or_hex() {
        assert_eq!(integer_u64("0x10"), Ok(16));
        assert_eq!(integer_u64("16"), Ok(16));
        assert_eq!(
            integer_u128("129127208515966861315"),
            Ok(129_127_208_515_966_861_315)
        );
        assert!(integer_u64("1.5").is_err());
        assert!(integer_u64("129127208515966861315").is_err());
        assert_eq!(boolean("True"), Ok(true));
        assert!(boolean("yes").is_err());
    }
}
