//! Exact signed sums and differences of a run file's amounts, for the tools that compare runs
//! and set thresholds on them (`cascade diff`, `cascade report`, `--fail-on`). The file's own
//! amounts are [`Quantity`]s; [`Num::of`] brings one to this common precision.

use std::fmt;

use cascade_events::Fixed;

use crate::Quantity;

/// A signed decimal with 18 fractional digits, as an `i128` (about ±1.7e20 whole units: far
/// more than any total a run reports). Sums saturate instead of wrapping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Num(pub i128);

const SCALE: i128 = 1_000_000_000_000_000_000;

impl Num {
    /// Zero.
    pub const ZERO: Num = Num(0);

    /// An exact amount of a run file; digits beyond 18 decimals are dropped (rounding toward
    /// zero), an amount beyond the range saturates.
    pub fn of(amount: &Quantity) -> Num {
        amount
            .rescale(18)
            .and_then(|scaled| i128::try_from(scaled).ok())
            .map_or(Num(i128::MAX), Num)
    }

    /// A whole number.
    pub fn from_int(value: i128) -> Self {
        Num(value.saturating_mul(SCALE))
    }

    /// Parses exact decimal text (`"12811.4"`, `"-3"`); digits beyond 18 decimals are dropped
    /// (rounding toward zero).
    pub fn parse(text: &str) -> Option<Num> {
        let (negative, digits) = match text.trim().strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text.trim()),
        };
        let fixed = Fixed::parse_exact(digits).ok()?;
        let scaled = fixed.rescale(18)?;
        let value = i128::try_from(scaled).ok()?;
        Some(Num(if negative { -value } else { value }))
    }

    /// `self + other`, saturating.
    pub fn plus(self, other: Num) -> Num {
        Num(self.0.saturating_add(other.0))
    }

    /// `self - other`, saturating.
    pub fn minus(self, other: Num) -> Num {
        Num(self.0.saturating_sub(other.0))
    }

    /// `self * other`, rounded toward zero; saturating.
    pub fn times(self, other: Num) -> Num {
        // (aw S + af)(bw S + bf) / S = aw bw S + aw bf + af bw + af bf / S: every partial
        // product stays far from overflow for the magnitudes a run holds.
        let (aw, af) = (self.0 / SCALE, self.0 % SCALE);
        let (bw, bf) = (other.0 / SCALE, other.0 % SCALE);
        let whole = aw.saturating_mul(bw).saturating_mul(SCALE);
        let cross = aw.saturating_mul(bf).saturating_add(af.saturating_mul(bw));
        let fraction = af.saturating_mul(bf) / SCALE;
        Num(whole.saturating_add(cross).saturating_add(fraction))
    }

    /// The absolute value.
    pub fn abs(self) -> Num {
        Num(self.0.saturating_abs())
    }

    /// Whether the value is zero.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// The value as a float, for chart coordinates only.
    pub fn to_f64(self) -> f64 {
        self.0 as f64 / SCALE as f64
    }

    /// Exact text with an explicit sign for non-zero values (`+5`, `-0.25`, `0`).
    pub fn signed(self) -> String {
        if self.0 > 0 {
            format!("+{self}")
        } else {
            self.to_string()
        }
    }

    /// Text for people: thousands separators and at most `decimals` decimals, rounded half away
    /// from zero, trailing zeros dropped (`12,811.4`). For an amount of a unit use
    /// [`Num::amount`], which keeps the unit's decimals.
    pub fn human(self, decimals: u32) -> String {
        let text = self.fixed(decimals);
        match text.split_once('.') {
            Some((whole, fraction)) => match fraction.trim_end_matches('0') {
                "" => whole.to_owned(),
                fraction => format!("{whole}.{fraction}"),
            },
            None => text,
        }
    }

    /// Text for people with exactly `decimals` decimals (at most 18), rounded half away from
    /// zero, and thousands separators (`12,811.40`).
    pub fn fixed(self, decimals: u32) -> String {
        let decimals = decimals.min(18);
        let unit = 10u128.pow(18 - decimals);
        let rounded = (self.0.unsigned_abs() + unit / 2) / unit;
        let divisor = 10u128.pow(decimals);
        let whole = (rounded / divisor).to_string();
        let mut grouped = String::new();
        for (index, digit) in whole.chars().enumerate() {
            if index > 0 && (whole.len() - index).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(digit);
        }
        let sign = if self.0 < 0 && rounded != 0 { "-" } else { "" };
        if decimals == 0 {
            return format!("{sign}{grouped}");
        }
        let fraction = rounded % divisor;
        format!(
            "{sign}{grouped}.{fraction:0width$}",
            width = decimals as usize
        )
    }

    /// An amount of `unit` as a report shows it: [`unit_decimals`] decimals, whatever the
    /// value, so one unit reads the same everywhere (`149.3412 WBTC`, `159.6000 WBTC`).
    pub fn amount(self, unit: &str) -> String {
        format!("{} {unit}", self.fixed(unit_decimals(unit)))
    }
}

/// The decimals amounts of `unit` are shown with in reports (`docs/diff.md`, "Amounts"): the
/// last digit is worth about a cent to a few dollars at the unit's usual price, the same for a
/// unit in every table, chart label and sentence. Bitcoin and its wrapped forms 4 (0.0001 BTC),
/// ether and its wrapped and staked forms 3 (0.001 ETH), every other unit (USD, stablecoins,
/// other tokens, a protocol's base currency) 2.
pub fn unit_decimals(unit: &str) -> u32 {
    match unit.to_ascii_uppercase().as_str() {
        "BTC" | "WBTC" | "RENBTC" | "TBTC" | "SBTC" | "HBTC" | "CBBTC" => 4,
        "ETH" | "WETH" | "STETH" | "WSTETH" | "RETH" | "CBETH" | "SETH2" => 3,
        _ => 2,
    }
}

/// Exact text without trailing zeros (`12811.4`, `-3`, `0`).
impl fmt::Display for Num {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let magnitude = self.0.unsigned_abs();
        let whole = magnitude / SCALE as u128;
        let fraction = magnitude % SCALE as u128;
        if fraction == 0 {
            return write!(f, "{sign}{whole}");
        }
        let digits = format!("{fraction:018}");
        write!(f, "{sign}{whole}.{}", digits.trim_end_matches('0'))
    }
}

impl serde::Serialize for Num {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_parse_print_and_sum_exactly() {
        let a = Num::parse("12811.4").unwrap();
        assert_eq!(a.to_string(), "12811.4");
        assert_eq!(Num::parse("-3").unwrap().to_string(), "-3");
        assert_eq!(Num::parse("0.000000000000000001").unwrap(), Num(1));
        assert_eq!(Num::parse("1.0000000000000000019").unwrap(), Num(SCALE + 1));
        assert_eq!(Num::parse("abc"), None);
        let b = Num::parse("0.6").unwrap();
        assert_eq!(a.plus(b).to_string(), "12812");
        assert_eq!(b.minus(a).signed(), "-12810.8");
        assert_eq!(a.minus(b).signed(), "+12810.8");
        assert_eq!(Num::ZERO.signed(), "0");
        assert_eq!(
            a.times(Num::parse("1500.5").unwrap()).to_string(),
            "19223505.7"
        );
        assert_eq!(Num(i128::MAX).plus(a), Num(i128::MAX));
    }

    #[test]
    fn human_text_groups_and_rounds() {
        assert_eq!(Num::parse("12811.44").unwrap().human(1), "12,811.4");
        assert_eq!(Num::parse("12811.45").unwrap().human(1), "12,811.5");
        assert_eq!(Num::parse("1234567").unwrap().human(2), "1,234,567");
        assert_eq!(Num::parse("-999.999").unwrap().human(2), "-1,000");
        assert_eq!(Num::parse("-0.001").unwrap().human(2), "0");
        assert_eq!(Num::parse("100").unwrap().human(0), "100");
    }

    #[test]
    fn amounts_keep_their_units_decimals() {
        assert_eq!(
            Num::parse("149.34").unwrap().amount("WBTC"),
            "149.3400 WBTC"
        );
        assert_eq!(Num::parse("159.6").unwrap().amount("WBTC"), "159.6000 WBTC");
        assert_eq!(
            Num::parse("1234.56789").unwrap().amount("WETH"),
            "1,234.568 WETH"
        );
        assert_eq!(Num::parse("3").unwrap().amount("ETH"), "3.000 ETH");
        assert_eq!(
            Num::parse("1500000.5").unwrap().amount("DAI"),
            "1,500,000.50 DAI"
        );
        assert_eq!(Num::parse("-0.004").unwrap().amount("USD"), "0.00 USD");
        assert_eq!(Num::parse("-2.5").unwrap().fixed(1), "-2.5");
        assert_eq!(Num::parse("7").unwrap().fixed(0), "7");
    }
}
