//! Integer money: token amounts in base units and fixed-point numbers with explicit decimals.
//!
//! Exports write amounts as decimal text (`"120000.12345678"` DAI, `"1.8e+22"` wei); parsing them
//! through `f64` would lose digits, so [`parse_decimal`] works on the digits themselves and refuses
//! anything that is not exactly representable at the requested precision.

use std::fmt;
use std::str::FromStr;

use alloy_primitives::U256;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use wincode::{SchemaRead, SchemaWrite};

/// A 256-bit unsigned integer as it is encoded in a record: 32 bytes, little-endian.
#[derive(SchemaWrite, SchemaRead)]
pub(crate) struct U256Wire([u8; 32]);

impl From<&U256> for U256Wire {
    fn from(value: &U256) -> Self {
        Self(value.to_le_bytes())
    }
}

impl From<U256Wire> for U256 {
    fn from(wire: U256Wire) -> Self {
        U256::from_le_bytes(wire.0)
    }
}

/// A token amount in the token's base units (wei for ETH, 1e-6 for USDC, ...).
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, SchemaWrite, SchemaRead)]
pub struct Amount(#[wincode(with = "wincode::adapter::FromInto<U256Wire, U256>")] pub U256);

impl Amount {
    /// Zero base units.
    pub const ZERO: Amount = Amount(U256::ZERO);

    /// An amount of `units` base units.
    pub fn from_units(units: u128) -> Self {
        Amount(U256::from(units))
    }

    /// Parses decimal text in whole tokens (`"1.5"`) into base units of a token with `decimals`
    /// decimals. See [`parse_decimal`] for the accepted forms.
    pub fn parse_tokens(text: &str, decimals: u8) -> Result<Self, ParseAmountError> {
        parse_decimal(text, decimals).map(Amount)
    }

    /// The amount as decimal text in whole tokens, with exactly `decimals` fractional digits
    /// trimmed of trailing zeros (`1500000000000000000` with 18 decimals is `"1.5"`).
    pub fn to_tokens_string(&self, decimals: u8) -> String {
        let mut text = String::new();
        self.write_tokens(decimals, &mut text)
            .expect("writing to a String cannot fail");
        text
    }

    /// Writes [`Amount::to_tokens_string`]'s text to `out` without building a `String`: what a
    /// file of millions of amounts needs.
    pub fn write_tokens(&self, decimals: u8, out: &mut impl fmt::Write) -> fmt::Result {
        write_fixed(self.0, decimals, true, out)
    }
}

impl fmt::Display for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Amount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Amount({})", self.0)
    }
}

impl From<U256> for Amount {
    fn from(value: U256) -> Self {
        Amount(value)
    }
}

/// Amounts appear in JSON as decimal strings of base units: JSON numbers lose precision past 2^53.
impl Serialize for Amount {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for Amount {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_decimal(&text, 0)
            .map(Amount)
            .map_err(serde::de::Error::custom)
    }
}

/// A non-negative fixed-point number: `value / 10^decimals`.
///
/// Prices (`2312.34567890` USD as `231234567890` with 8 decimals, as Chainlink reports it) and
/// governance parameters (`mat` 1.3, `duty` 0.06) keep the precision their source gave them; the
/// engine converts to wad/ray where the contract does.
#[derive(Clone, Copy, PartialEq, Eq, Hash, SchemaWrite, SchemaRead)]
pub struct Fixed {
    /// The scaled integer.
    #[wincode(with = "wincode::adapter::FromInto<U256Wire, U256>")]
    pub value: U256,
    /// How many decimal digits of `value` are fractional.
    pub decimals: u8,
}

impl Fixed {
    /// `value / 10^decimals`.
    pub fn new(value: U256, decimals: u8) -> Self {
        Fixed { value, decimals }
    }

    /// Parses decimal text keeping exactly the precision written: `"1.50"` has 2 decimals.
    pub fn parse_exact(text: &str) -> Result<Self, ParseAmountError> {
        let decimals = written_decimals(text)?;
        parse_decimal(text, decimals).map(|value| Fixed { value, decimals })
    }

    /// Parses decimal text at a fixed precision of `decimals` digits.
    pub fn parse_with(text: &str, decimals: u8) -> Result<Self, ParseAmountError> {
        parse_decimal(text, decimals).map(|value| Fixed { value, decimals })
    }

    /// The same number at another precision, rounding toward zero when digits are dropped;
    /// `None` when scaling up overflows 256 bits.
    pub fn rescale(&self, decimals: u8) -> Option<U256> {
        if decimals >= self.decimals {
            let factor = pow10(decimals - self.decimals)?;
            self.value.checked_mul(factor)
        } else {
            let factor = pow10(self.decimals - decimals)?;
            Some(self.value / factor)
        }
    }
}

/// Fixed-point numbers compare by value: `1.5` with 1 decimal equals `1.50` with 2.
impl PartialOrd for Fixed {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Fixed {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let common = self.decimals.max(other.decimals);
        match (self.rescale(common), other.rescale(common)) {
            (Some(a), Some(b)) => a.cmp(&b).then(self.decimals.cmp(&other.decimals)),
            // Only an astronomically large value overflows when scaled up; it is the larger.
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(_), None) => std::cmp::Ordering::Less,
            (None, None) => self.decimals.cmp(&other.decimals),
        }
    }
}

impl fmt::Display for Fixed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_fixed(self.value, self.decimals, false, f)
    }
}

impl fmt::Debug for Fixed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fixed({self})")
    }
}

impl FromStr for Fixed {
    type Err = ParseAmountError;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Fixed::parse_exact(text)
    }
}

/// JSON form: the decimal string with all `decimals` fractional digits, so it parses back to the
/// identical value and precision.
impl Serialize for Fixed {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Fixed {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Fixed::parse_exact(&text).map_err(serde::de::Error::custom)
    }
}

/// Why decimal text is not an exact non-negative amount.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseAmountError {
    /// Not a decimal number (`""`, `"1.2.3"`, `"abc"`, `"NaN"`).
    #[error("{} is not a decimal number", crate::Excerpt(.0))]
    NotANumber(String),
    /// A minus sign on a quantity that cannot be negative.
    #[error("{} is negative", crate::Excerpt(.0))]
    Negative(String),
    /// More fractional digits than the precision allows (non-zero digits only count).
    #[error("{} has more than {decimals} decimals", crate::Excerpt(text))]
    TooPrecise {
        /// The text as given.
        text: String,
        /// The precision asked for.
        decimals: u8,
    },
    /// The value does not fit 256 bits at the requested precision.
    #[error("{} overflows 256 bits", crate::Excerpt(.0))]
    Overflow(String),
}

/// Parses decimal text into an integer scaled by `10^decimals`, exactly.
///
/// Accepted: digits with an optional fraction and an optional exponent (`"12"`, `"0.05"`,
/// `"1.8862488153356683e+22"`, `"493380000000000.0"`), an optional leading `+`, surrounding
/// whitespace. Fractional digits beyond `decimals` are accepted only when they are zeros;
/// otherwise [`ParseAmountError::TooPrecise`]. A leading `-` is [`ParseAmountError::Negative`]
/// (even for `-0`, since a sign on an amount is a sign of a misread column).
pub fn parse_decimal(text: &str, decimals: u8) -> Result<U256, ParseAmountError> {
    let digits = Digits::parse(text)?;
    // Position of the decimal point after applying the exponent, counted in digits of `all`.
    let point = i64::try_from(digits.integer.len())
        .ok()
        .and_then(|len| len.checked_add(digits.exponent))
        .ok_or_else(|| ParseAmountError::Overflow(text.to_owned()))?;
    let all: Vec<u8> = digits
        .integer
        .bytes()
        .chain(digits.fraction.bytes())
        .collect();
    let keep = point + i64::from(decimals);
    let mut value = U256::ZERO;
    let ten = U256::from(10u8);
    let overflow = || ParseAmountError::Overflow(text.to_owned());
    for (index, digit) in all.iter().enumerate() {
        let index = index as i64;
        let digit = u64::from(digit - b'0');
        if index >= keep {
            if digit != 0 {
                return Err(ParseAmountError::TooPrecise {
                    text: text.to_owned(),
                    decimals,
                });
            }
            continue;
        }
        value = value
            .checked_mul(ten)
            .and_then(|v| v.checked_add(U256::from(digit)))
            .ok_or_else(overflow)?;
    }
    let missing = keep - all.len() as i64;
    if missing > 0 {
        let factor = u8::try_from(missing)
            .ok()
            .and_then(pow10)
            .ok_or_else(overflow)?;
        value = value.checked_mul(factor).ok_or_else(overflow)?;
    }
    Ok(value)
}

/// The number of fractional digits the text carries after applying its exponent.
fn written_decimals(text: &str) -> Result<u8, ParseAmountError> {
    let digits = Digits::parse(text)?;
    let decimals = (digits.fraction.len() as i64 - digits.exponent).max(0);
    u8::try_from(decimals).map_err(|_| ParseAmountError::Overflow(text.to_owned()))
}

struct Digits<'a> {
    integer: &'a str,
    fraction: &'a str,
    exponent: i64,
}

impl<'a> Digits<'a> {
    fn parse(text: &'a str) -> Result<Self, ParseAmountError> {
        let not_a_number = || ParseAmountError::NotANumber(text.to_owned());
        let trimmed = text.trim();
        if trimmed.starts_with('-') {
            return Err(ParseAmountError::Negative(text.to_owned()));
        }
        let unsigned = trimmed.strip_prefix('+').unwrap_or(trimmed);
        let (mantissa, exponent) = match unsigned.find(['e', 'E']) {
            Some(at) => {
                let exponent: i64 = unsigned[at + 1..].parse().map_err(|_| not_a_number())?;
                (&unsigned[..at], exponent)
            }
            None => (unsigned, 0),
        };
        let (integer, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if (integer.is_empty() && fraction.is_empty())
            || !all_digits(integer)
            || !all_digits(fraction)
        {
            return Err(not_a_number());
        }
        Ok(Digits {
            integer,
            fraction,
            exponent,
        })
    }
}

/// `10^exp`, or `None` past 10^77 (the largest power of ten below 2^256): a token's unit
/// (`assetUnit`, `10 ** decimals`). Read from a table: valuing every asset of every account at
/// every hourly sample computed the power each time, a measurable share of a replay.
pub fn pow10(exp: u8) -> Option<U256> {
    POWERS_OF_TEN.get(usize::from(exp)).copied()
}

/// `10^0 ..= 10^77`, every power of ten below 2^256.
static POWERS_OF_TEN: std::sync::LazyLock<Vec<U256>> = std::sync::LazyLock::new(|| {
    std::iter::successors(Some(U256::from(1u8)), |power| {
        power.checked_mul(U256::from(10u8))
    })
    .collect()
});

/// Writes `value / 10^decimals` as decimal text: all `decimals` fractional digits, or with `trim`
/// none of the trailing zeros (nor the point when no digit remains).
fn write_fixed(value: U256, decimals: u8, trim: bool, out: &mut impl fmt::Write) -> fmt::Result {
    // Amounts nearly always fit 128 bits, whose digits `itoa` writes without dividing a U256.
    let mut small = itoa::Buffer::new();
    let large;
    let digits = match u128::try_from(value) {
        Ok(value) => small.format(value),
        Err(_) => {
            large = value.to_string();
            large.as_str()
        }
    };
    let decimals = usize::from(decimals);
    if decimals == 0 {
        return out.write_str(digits);
    }
    let (integer, fraction) = digits.split_at(digits.len().saturating_sub(decimals));
    let leading_zeros = decimals - fraction.len();
    let fraction = if trim {
        fraction.trim_end_matches('0')
    } else {
        fraction
    };
    out.write_str(if integer.is_empty() { "0" } else { integer })?;
    if fraction.is_empty() && trim {
        return Ok(());
    }
    out.write_char('.')?;
    const ZEROS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
    let mut zeros = leading_zeros;
    while zeros > 0 {
        let run = zeros.min(ZEROS.len());
        out.write_str(&ZEROS[..run])?;
        zeros -= run;
    }
    out.write_str(fraction)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn units(text: &str, decimals: u8) -> Result<U256, ParseAmountError> {
        parse_decimal(text, decimals)
    }

    #[test]
    fn parses_export_amounts_exactly() {
        assert_eq!(
            units("120000.12345678", 18).unwrap(),
            U256::from(120_000_123_456_780_000_000_000u128)
        );
        assert_eq!(
            units("50", 18).unwrap(),
            U256::from(50u128 * 10u128.pow(18))
        );
        assert_eq!(units("0.05", 2).unwrap(), U256::from(5u8));
        assert_eq!(
            units("493380000000000.0", 0).unwrap(),
            U256::from(493_380_000_000_000u64)
        );
        assert_eq!(
            units("1.8862488153356683e+22", 0).unwrap(),
            U256::from(18_862_488_153_356_683_000_000u128)
        );
        assert_eq!(units("25e-1", 1).unwrap(), U256::from(25u8));
        assert_eq!(units(" +7 ", 0).unwrap(), U256::from(7u8));
        assert_eq!(units(".5", 1).unwrap(), U256::from(5u8));
    }

    #[test]
    fn refuses_what_is_not_exact() {
        assert!(matches!(
            units("1.0000001", 6),
            Err(ParseAmountError::TooPrecise { .. })
        ));
        assert!(matches!(
            units("-0.5828", 18),
            Err(ParseAmountError::Negative(_))
        ));
        assert!(matches!(
            units("-0", 18),
            Err(ParseAmountError::Negative(_))
        ));
        for bad in ["", ".", "1.2.3", "abc", "NaN", "1e", "0x10", "1,5"] {
            assert!(
                matches!(units(bad, 18), Err(ParseAmountError::NotANumber(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            units("1e80", 0),
            Err(ParseAmountError::Overflow(_))
        ));
        assert!(matches!(
            units("1e9999999999999999999", 0),
            Err(ParseAmountError::NotANumber(_))
        ));
        // Trailing zeros beyond the precision carry no information and are accepted.
        assert_eq!(units("1.500000", 1).unwrap(), U256::from(15u8));
    }

    #[test]
    fn fixed_keeps_written_precision_and_compares_by_value() {
        let a = Fixed::parse_exact("1.50").unwrap();
        assert_eq!((a.value, a.decimals), (U256::from(150u8), 2));
        assert_eq!(a.to_string(), "1.50");
        let b = Fixed::parse_exact("1.5").unwrap();
        assert_eq!(
            a.cmp(&b),
            std::cmp::Ordering::Greater,
            "same value, more precision sorts after"
        );
        assert_eq!(b.cmp(&a), std::cmp::Ordering::Less);
        assert!(Fixed::parse_exact("1.49").unwrap() < b);
        assert_eq!(Fixed::parse_exact("25e-1").unwrap().to_string(), "2.5");
        assert_eq!(
            a.rescale(27).unwrap(),
            U256::from(15u8) * pow10(26).unwrap()
        );
        assert_eq!(a.rescale(0).unwrap(), U256::from(1u8));
        assert_eq!(Fixed::new(U256::from(5u8), 3).to_string(), "0.005");
    }

    #[test]
    fn amount_token_text() {
        let amount = Amount::parse_tokens("1204.40141169", 8).unwrap();
        assert_eq!(amount, Amount::from_units(120_440_141_169));
        assert_eq!(amount.to_tokens_string(8), "1204.40141169");
        assert_eq!(Amount::from_units(10u128.pow(18)).to_tokens_string(18), "1");
        assert_eq!(serde_json::to_string(&amount).unwrap(), "\"120440141169\"");
    }

    /// The text as `U256`'s own digits, padded and cut: what [`write_fixed`] must equal.
    fn padded_text(value: U256, decimals: u8, trim: bool) -> String {
        let digits = value.to_string();
        let decimals = usize::from(decimals);
        if decimals == 0 {
            return digits;
        }
        let padded = format!("{digits:0>width$}", width = decimals + 1);
        let (integer, fraction) = padded.split_at(padded.len() - decimals);
        let text = format!("{integer}.{fraction}");
        if trim {
            text.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            text
        }
    }

    #[test]
    fn text_of_edge_values() {
        for value in [
            U256::ZERO,
            U256::from(u128::MAX),
            U256::from(u128::MAX) + U256::from(1u8),
            U256::MAX,
        ] {
            for decimals in [0u8, 1, 18, 39, 40, 77, 78, 79, 255] {
                assert_eq!(
                    Fixed::new(value, decimals).to_string(),
                    padded_text(value, decimals, false)
                );
                assert_eq!(
                    Amount(value).to_tokens_string(decimals),
                    padded_text(value, decimals, true)
                );
            }
        }
        assert_eq!(Amount::from_units(1_000).to_tokens_string(3), "1");
        assert_eq!(Amount::from_units(1_050).to_tokens_string(3), "1.05");
        assert_eq!(Amount::from_units(50).to_tokens_string(3), "0.05");
        assert_eq!(Fixed::new(U256::from(1_000u32), 3).to_string(), "1.000");
    }

    proptest! {
        #[test]
        fn text_equals_the_padded_digits(
            limbs in any::<[u64; 4]>(),
            shift in 0usize..256,
            decimals in any::<u8>(),
        ) {
            let value = U256::from_limbs(limbs) >> shift;
            prop_assert_eq!(Fixed::new(value, decimals).to_string(), padded_text(value, decimals, false));
            prop_assert_eq!(Amount(value).to_tokens_string(decimals), padded_text(value, decimals, true));
        }

        #[test]
        fn fixed_text_round_trips(value in any::<u128>(), decimals in 0u8..40) {
            let fixed = Fixed::new(U256::from(value), decimals);
            prop_assert_eq!(Fixed::parse_exact(&fixed.to_string()).unwrap(), fixed);
        }

        #[test]
        fn token_text_round_trips(value in any::<u128>(), decimals in 0u8..30) {
            let amount = Amount::from_units(value);
            let text = amount.to_tokens_string(decimals);
            prop_assert_eq!(Amount::parse_tokens(&text, decimals).unwrap(), amount);
        }
    }
}
