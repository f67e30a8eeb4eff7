//! The crash a synthetic market goes through: its text spec and the price path it draws.
//!
//! Spec grammar (the `--shock` flag), comma-separated, the first item mandatory:
//!
//! ```text
//! DEPTH%@DURATION [,rebound=PCT%[@DURATION]] [,start=DURATION] [,hold=DURATION] [,noise=PCT%]
//! ```
//!
//! `-40%@6h` drops every volatile asset by 40% over 6 hours; `rebound=15%` then lifts it 15% above
//! the trough over the rebound duration (default: the drop's); `start` is the calm warm-up before
//! the crash (default 24h), `hold` the time after the rebound (default 12h), `noise` the hourly
//! volatility of the log-price (default 0.6%, tripled while the price falls). Durations take `s`,
//! `m`, `h` or `d`. The default spec is `-40%@6h,rebound=15%@6h,start=24h,hold=12h,noise=0.6%`.
//!
//! Must never: use platform float functions (see [`super::sample`]); the path is evaluated with
//! basic operations and the crate's own `exp`.

use std::fmt;
use std::str::FromStr;

use super::SynthError;
use super::sample::{self, Sampler};

/// A crash scenario for the synthetic price path.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ShockSpec {
    /// Relative move from the pre-crash level to the trough, in basis points (-4000 = -40%).
    pub depth_bps: i32,
    /// How long the fall takes, seconds.
    pub drop_secs: u32,
    /// Rise from the trough, in basis points of the trough price.
    pub rebound_bps: u32,
    /// How long the rebound takes, seconds.
    pub rebound_secs: u32,
    /// Calm time before the crash starts, seconds.
    pub start_secs: u32,
    /// Time after the rebound until the market's log ends, seconds.
    pub hold_secs: u32,
    /// Hourly volatility of the log-price, in basis points.
    pub noise_bps: u32,
}

impl Default for ShockSpec {
    fn default() -> Self {
        Self {
            depth_bps: -4000,
            drop_secs: 6 * 3600,
            rebound_bps: 1500,
            rebound_secs: 6 * 3600,
            start_secs: 24 * 3600,
            hold_secs: 12 * 3600,
            noise_bps: 60,
        }
    }
}

impl ShockSpec {
    /// Seconds from the market's start to the end of its log.
    pub fn total_secs(&self) -> u32 {
        self.start_secs + self.drop_secs + self.rebound_secs + self.hold_secs
    }

    /// Seconds from the market's start to the trough.
    pub fn trough_secs(&self) -> u32 {
        self.start_secs + self.drop_secs
    }

    /// The deterministic part of the path at `t` seconds after the start: a multiplier of the
    /// starting price (1 before the crash, `1 + depth` at the trough).
    pub(crate) fn trend(&self, t: u32) -> f64 {
        let trough = 1.0 + f64::from(self.depth_bps) / 10_000.0;
        if t <= self.start_secs {
            return 1.0;
        }
        let into_drop = t - self.start_secs;
        if into_drop < self.drop_secs {
            let s = smoothstep(f64::from(into_drop) / f64::from(self.drop_secs));
            return 1.0 + (trough - 1.0) * s;
        }
        let into_rebound = into_drop - self.drop_secs;
        let rebound = f64::from(self.rebound_bps) / 10_000.0;
        if into_rebound < self.rebound_secs {
            let s = smoothstep(f64::from(into_rebound) / f64::from(self.rebound_secs));
            return trough * (1.0 + rebound * s);
        }
        trough * (1.0 + rebound)
    }

    /// True while the price is falling: noise is larger then, as in real crashes.
    fn falling(&self, t: u32) -> bool {
        t > self.start_secs && t < self.trough_secs()
    }
}

/// `3u² - 2u³`: an S-curve from 0 to 1 with flat ends, from basic operations only.
fn smoothstep(u: f64) -> f64 {
    u * u * (3.0 - 2.0 * u)
}

/// One asset's market price, advanced one block at a time: trend times `e^noise`, where the noise
/// is a mean-reverting random walk (so the crash keeps its shape however long the window).
pub(crate) struct PricePath {
    start_price: f64,
    noise: f64,
    sampler: Sampler,
    sigma_per_block: f64,
    reversion: f64,
}

impl PricePath {
    /// A path starting at `start_price` (quote units per token), with its own noise stream.
    pub(crate) fn new(
        start_price: f64,
        shock: &ShockSpec,
        block_secs: u32,
        sampler: Sampler,
    ) -> Self {
        let blocks_per_hour = 3600.0 / f64::from(block_secs);
        Self {
            start_price,
            noise: 0.0,
            sampler,
            sigma_per_block: f64::from(shock.noise_bps) / 10_000.0 / blocks_per_hour.sqrt(),
            // Noise forgets its past over about six hours.
            reversion: 1.0 / (6.0 * blocks_per_hour),
        }
    }

    /// The price at `t` seconds after the start, quantised to `decimals` decimals; call once
    /// per block in time order.
    pub(crate) fn step(&mut self, shock: &ShockSpec, t: u32, decimals: u8) -> u128 {
        let sigma = if shock.falling(t) {
            3.0 * self.sigma_per_block
        } else {
            self.sigma_per_block
        };
        self.noise = self.noise * (1.0 - self.reversion) + sigma * self.sampler.normal();
        let price = self.start_price * shock.trend(t) * sample::exp(self.noise);
        // 10^d is exact in binary64 for d <= 22, and so is this loop's product.
        let scale = (0..decimals.min(22)).fold(1.0, |acc, _| acc * 10.0);
        let scaled = price * scale;
        // `as` saturates; a positive price is at least one base unit.
        (scaled + 0.5).max(1.0) as u128
    }
}

impl FromStr for ShockSpec {
    type Err = SynthError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = |why: &str| SynthError::BadShock {
            spec: text.to_owned(),
            reason: why.to_owned(),
        };
        let mut spec = ShockSpec::default();
        let mut items = text.split(',').map(str::trim);
        let head = items
            .next()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| bad("empty spec"))?;
        let (depth, drop) = head
            .split_once('@')
            .ok_or_else(|| bad("the first item must be DEPTH%@DURATION, e.g. -40%@6h"))?;
        spec.depth_bps = parse_percent_bps(depth).map_err(|e| bad(&e))?;
        if spec.depth_bps <= -10_000 {
            return Err(bad("the drop must be above -100%"));
        }
        spec.drop_secs = parse_duration(drop).map_err(|e| bad(&e))?;
        let mut rebound_secs = None;
        for item in items {
            let (key, value) = item
                .split_once('=')
                .ok_or_else(|| bad(&format!("{item:?} is not key=value")))?;
            match key {
                "rebound" => {
                    let (pct, secs) = match value.split_once('@') {
                        Some((pct, secs)) => {
                            (pct, Some(parse_duration(secs).map_err(|e| bad(&e))?))
                        }
                        None => (value, None),
                    };
                    spec.rebound_bps = non_negative(parse_percent_bps(pct).map_err(|e| bad(&e))?)
                        .ok_or_else(|| bad("rebound must not be negative"))?;
                    rebound_secs = secs;
                }
                "start" => spec.start_secs = parse_duration(value).map_err(|e| bad(&e))?,
                "hold" => spec.hold_secs = parse_duration(value).map_err(|e| bad(&e))?,
                "noise" => {
                    spec.noise_bps = non_negative(parse_percent_bps(value).map_err(|e| bad(&e))?)
                        .ok_or_else(|| bad("noise must not be negative"))?;
                }
                other => {
                    return Err(bad(&format!(
                        "unknown key {other:?} (expected rebound, start, hold or noise)"
                    )));
                }
            }
        }
        spec.rebound_secs = rebound_secs.unwrap_or(spec.drop_secs);
        if spec.drop_secs == 0 || spec.rebound_secs == 0 {
            return Err(bad("drop and rebound durations must be positive"));
        }
        if u64::from(spec.start_secs)
            + u64::from(spec.drop_secs)
            + u64::from(spec.rebound_secs)
            + u64::from(spec.hold_secs)
            > u64::from(u32::MAX)
        {
            return Err(bad("the whole window must be shorter than 136 years"));
        }
        Ok(spec)
    }
}

fn non_negative(bps: i32) -> Option<u32> {
    u32::try_from(bps).ok()
}

/// `-40%` or `12.5%` to basis points (at most two decimals, so the value is exact).
fn parse_percent_bps(text: &str) -> Result<i32, String> {
    let number = text
        .strip_suffix('%')
        .ok_or_else(|| format!("{text:?} must end with %"))?;
    let (negative, digits) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number.strip_prefix('+').unwrap_or(number)),
    };
    let (whole, frac) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty() && frac.is_empty() || frac.len() > 2 {
        return Err(format!(
            "{text:?} is not a percentage with at most 2 decimals"
        ));
    }
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(whole) || !all_digits(frac) {
        return Err(format!("{text:?} is not a percentage"));
    }
    let whole: i64 = if whole.is_empty() {
        0
    } else {
        whole
            .parse()
            .map_err(|_| format!("{text:?} is too large"))?
    };
    let frac: i64 = format!("{frac:0<2}").parse().unwrap_or(0);
    let bps = whole
        .checked_mul(100)
        .and_then(|w| w.checked_add(frac))
        .filter(|&b| b <= 1_000_000)
        .ok_or_else(|| format!("{text:?} is too large"))?;
    Ok((if negative { -bps } else { bps }) as i32)
}

/// `90s`, `30m`, `6h`, `2d` to seconds.
fn parse_duration(text: &str) -> Result<u32, String> {
    let split = text.len().saturating_sub(1);
    let (number, unit) = text.split_at(split);
    let factor = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?} needs a unit: s, m, h or d")),
    };
    number
        .parse::<u32>()
        .ok()
        .and_then(|n| n.checked_mul(factor))
        .ok_or_else(|| format!("{text:?} is not a duration"))
}

impl fmt::Display for ShockSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pct = |bps: i64| {
            let sign = if bps < 0 { "-" } else { "" };
            let bps = bps.abs();
            if bps % 100 == 0 {
                format!("{sign}{}%", bps / 100)
            } else {
                format!("{sign}{}.{:02}%", bps / 100, bps % 100)
            }
        };
        let dur = |s: u32| {
            if s.is_multiple_of(86_400) && s > 0 {
                format!("{}d", s / 86_400)
            } else if s.is_multiple_of(3600) && s > 0 {
                format!("{}h", s / 3600)
            } else if s.is_multiple_of(60) && s > 0 {
                format!("{}m", s / 60)
            } else {
                format!("{s}s")
            }
        };
        write!(
            f,
            "{}@{},rebound={}@{},start={},hold={},noise={}",
            pct(i64::from(self.depth_bps)),
            dur(self.drop_secs),
            pct(i64::from(self.rebound_bps)),
            dur(self.rebound_secs),
            dur(self.start_secs),
            dur(self.hold_secs),
            pct(i64::from(self.noise_bps)),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_spec_round_trips_through_text() {
        let text = ShockSpec::default().to_string();
        assert_eq!(text, "-40%@6h,rebound=15%@6h,start=1d,hold=12h,noise=0.60%");
        assert_eq!(text.parse::<ShockSpec>().unwrap(), ShockSpec::default());
    }

    #[test]
    fn spec_fields_parse() {
        let spec: ShockSpec = "-25.5%@90m,rebound=5%,start=2h,noise=1%".parse().unwrap();
        assert_eq!(spec.depth_bps, -2550);
        assert_eq!(spec.drop_secs, 5400);
        assert_eq!(spec.rebound_bps, 500);
        assert_eq!(
            spec.rebound_secs, 5400,
            "rebound takes as long as the drop by default"
        );
        assert_eq!(spec.start_secs, 7200);
        assert_eq!(spec.hold_secs, 12 * 3600);
        assert_eq!(spec.noise_bps, 100);
    }

    #[test]
    fn bad_specs_say_why() {
        for (text, needle) in [
            ("", "empty"),
            ("-40%", "DEPTH%@DURATION"),
            ("-40@6h", "must end with %"),
            ("-100%@6h", "above -100%"),
            ("-40%@6", "needs a unit"),
            ("-40%@6h,rebound=-3%", "negative"),
            ("-40%@6h,speed=2", "unknown key"),
            ("-40.123%@6h", "at most 2 decimals"),
            ("-40%@0h", "positive"),
        ] {
            let error = text.parse::<ShockSpec>().unwrap_err().to_string();
            assert!(error.contains(needle), "{text:?}: {error}");
        }
    }

    #[test]
    fn trend_hits_the_trough_and_rebounds() {
        let spec = ShockSpec::default();
        assert_eq!(spec.trend(0), 1.0);
        assert_eq!(spec.trend(spec.start_secs), 1.0);
        let trough = spec.trend(spec.trough_secs());
        assert!((trough - 0.6).abs() < 1e-12, "{trough}");
        let end = spec.trend(spec.total_secs());
        assert!((end - 0.69).abs() < 1e-12, "{end}");
        // Monotone fall.
        let mut last = 1.0;
        for t in (spec.start_secs..spec.trough_secs()).step_by(600) {
            let v = spec.trend(t);
            assert!(v <= last);
            last = v;
        }
    }
}
