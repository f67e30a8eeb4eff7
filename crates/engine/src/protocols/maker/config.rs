//! Maker settings that shape results: oracle mode, OSM delay and sampling, price sources,
//! tolerances.

use super::*;

pub use crate::oracle::OracleMode;

/// Maker settings that shape results.
#[derive(Clone, Debug)]
pub struct MakerConfig {
    /// Recorded oracle values or estimates (default [`OracleMode::Auto`]).
    pub oracle: OracleMode,
    /// OSM delay in seconds (`OSM.hop`, 3600 on mainnet); 0 reads the market price directly.
    pub hop: i64,
    /// How the OSM's reading is estimated from recorded market prices (default: the Median
    /// under ETHUSD's relayer rule where the market is seen at least once a minute, interpolation
    /// elsewhere).
    pub osm_sample: OsmSample,
    /// Quote unit of the prices the OSM reads (`USD`; DAI is taken at `par` = 1).
    pub quote: Id,
    /// Price assets per collateral (the ilk name before its `-`), first present wins; defaults:
    /// `ETH` -> `WETH`, `ETH`; `WBTC` -> `WBTC`, `BTC`; anything else -> its own name.
    pub price_assets: BTreeMap<String, Vec<Id>>,
    /// A market price older than this many seconds at the OSM's reading time is no price (gaps
    /// in the recorded prices; the CoinGecko export has gaps of up to ~25 h).
    pub max_price_age: i64,
    /// Seconds by which a feed's prices trail the market, per feed: a price stamped `t` is taken
    /// as the market at `t - lag` when the OSM samples the market. Measured for the CoinGecko
    /// hourly export against the 10-minute crash-day bars (docs/fidelity.md). Empty by default.
    pub feed_lag: BTreeMap<Id, i64>,
    /// Largest difference between recorded and formula collateral that still `explained`, wad.
    /// The Flipside export casts collateral to a whole number (`INK::number`), so 0.5 ETH of
    /// rounding plus the export's rounding of the deposits that built `ink`.
    pub collateral_tolerance: U256,
    /// Largest relative difference between recorded and formula debt that is still `explained`,
    /// parts per million.
    pub debt_tolerance_ppm: u64,
}

impl Default for MakerConfig {
    fn default() -> Self {
        let mut price_assets = BTreeMap::new();
        price_assets.insert("ETH".to_owned(), vec![Id::name("WETH"), Id::name("ETH")]);
        price_assets.insert("WBTC".to_owned(), vec![Id::name("WBTC"), Id::name("BTC")]);
        Self {
            oracle: OracleMode::Auto,
            hop: 3600,
            osm_sample: OsmSample::Median(MedianRule::ETH_USD),
            quote: Id::name("USD"),
            price_assets,
            feed_lag: BTreeMap::new(),
            max_price_age: 2 * 86_400,
            collateral_tolerance: WAD / U256::from(2u8) + WAD / U256::from(100u8),
            debt_tolerance_ppm: 1_000,
        }
    }
}

impl MakerConfig {
    /// The settings as they appear in the run file.
    pub fn describe(&self) -> MakerSettings {
        MakerSettings {
            collateral_tolerance: Quantity::new(self.collateral_tolerance, 18),
            debt_tolerance_ppm: self.debt_tolerance_ppm,
            feed_lag_seconds: self
                .feed_lag
                .iter()
                .map(|(feed, lag)| (feed.to_string(), *lag))
                .collect(),
            max_price_age_seconds: self.max_price_age,
            median_rule: match self.osm_sample {
                OsmSample::Median(rule) => Some(MedianRuleSetting {
                    expiration_seconds: rule.expiration,
                    poll_seconds: rule.poll,
                    spread_bps: rule.spread_bps,
                }),
                _ => None,
            },
            // Only a mode other than the default is written, so runs made before the mode
            // existed (which were `auto` runs of logs without recorded values) keep their bytes.
            oracle: (self.oracle != OracleMode::Auto).then(|| self.oracle.name().to_owned()),
            osm_hop_seconds: self.hop,
            osm_sample: self.osm_sample.name().to_owned(),
            price_assets: self
                .price_assets
                .iter()
                .map(|(gem, ids)| (gem.clone(), ids.iter().map(Id::to_string).collect()))
                .collect(),
            quote: self.quote.to_string(),
        }
    }

    pub(super) fn price_assets_for(&self, ilk: &Id) -> Vec<Id> {
        let gem = gem_of(ilk);
        match self.price_assets.get(&gem) {
            Some(assets) => assets.clone(),
            None => gem.parse::<Id>().map(|id| vec![id]).unwrap_or_default(),
        }
    }
}

/// The collateral an ilk's OSM prices: its name up to the first `-` (`ETH-B` -> `ETH`).
pub(super) fn gem_of(ilk: &Id) -> String {
    let name = ilk.to_string();
    name.split('-').next().unwrap_or(&name).to_owned()
}
