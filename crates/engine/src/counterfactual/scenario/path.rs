//! Price path transforms: the market prices a counterfactual run sees instead of the recorded ones.
//!
//! Each transform applies to one asset, optionally only inside a time window, and they compose in
//! the order the scenario lists them: a transform sees the path the previous ones made. Shifting
//! in time needs the recorded path around the moment asked for, so [`PricePaths`] is built from
//! the whole recorded series of each transformed asset (the engine collects it in a first pass
//! over the log's price events). All arithmetic is on the prices' own integers; the result keeps
//! the recorded price's decimals.

use std::collections::{BTreeMap, BTreeSet};

use cascade_events::{Fixed, Id, Timestamp, U256};
use cascade_run::scenario::{PriceTransform, TransformKind};

use crate::counterfactual::impact::wide_mul_div;

/// The transformed price paths of the assets a scenario transforms.
#[derive(Clone, Debug, Default)]
pub struct PricePaths {
    assets: BTreeMap<Id, AssetPath>,
}

#[derive(Clone, Debug)]
struct AssetPath {
    /// Recorded `(time, price)` in time order; for several at one time, the last counts.
    series: Vec<(Timestamp, Fixed)>,
    stages: Vec<Stage>,
}

#[derive(Clone, Debug)]
struct Stage {
    transform: PriceTransform,
    /// For a drawdown scale: the reference price, fixed when the paths are built.
    reference: Option<Fixed>,
}

impl PricePaths {
    /// The assets whose recorded series [`PricePaths::new`] needs.
    pub fn assets(transforms: &[PriceTransform]) -> BTreeSet<Id> {
        transforms.iter().map(|t| t.asset).collect()
    }

    /// Builds the paths from the transforms and the recorded series of every asset in
    /// [`PricePaths::assets`] (`(time, price)` in log order); the error is an asset with no
    /// recorded price. `window_start` is the run's window start: a drawdown scale without its own
    /// `from` or `reference` measures from the price there (from the first recorded price when
    /// the run has no window start either).
    pub(crate) fn new(
        transforms: &[PriceTransform],
        window_start: Option<Timestamp>,
        mut series: BTreeMap<Id, Vec<(Timestamp, Fixed)>>,
    ) -> Result<Self, Id> {
        let mut assets: BTreeMap<Id, AssetPath> = BTreeMap::new();
        for transform in transforms {
            let path = match assets.get_mut(&transform.asset) {
                Some(path) => path,
                None => {
                    let mut recorded = series
                        .remove(&transform.asset)
                        .filter(|s| !s.is_empty())
                        .ok_or(transform.asset)?;
                    recorded.sort_by_key(|(time, _)| *time);
                    assets.entry(transform.asset).or_insert(AssetPath {
                        series: recorded,
                        stages: Vec::new(),
                    })
                }
            };
            let reference = match &transform.kind {
                TransformKind::ScaleDrawdown {
                    reference: Some(reference),
                    ..
                } => Some(*reference),
                TransformKind::ScaleDrawdown {
                    reference: None, ..
                } => {
                    let at = transform.from.or(window_start).unwrap_or(path.series[0].0);
                    Some(path.eval(path.stages.len(), at, None))
                }
                _ => None,
            };
            path.stages.push(Stage {
                transform: transform.clone(),
                reference,
            });
        }
        Ok(PricePaths { assets })
    }

    /// Whether `asset`'s prices are transformed at all.
    pub fn transforms(&self, asset: &Id) -> bool {
        self.assets.contains_key(asset)
    }

    /// The price a run sees for `asset` at `time`, where the log recorded `recorded`.
    pub fn price(&self, asset: &Id, time: Timestamp, recorded: Fixed) -> Fixed {
        match self.assets.get(asset) {
            Some(path) => path.eval(path.stages.len(), time, Some(recorded)),
            None => recorded,
        }
    }
}

impl AssetPath {
    /// The recorded price in effect at `time` (the first one before the series starts).
    fn recorded_at(&self, time: Timestamp) -> Fixed {
        let after = self.series.partition_point(|(t, _)| *t <= time);
        self.series[after.saturating_sub(1)].1
    }

    /// The path after the first `stages` transforms at `time`; `recorded` is the recorded price
    /// at exactly `time` when the caller has it.
    fn eval(&self, stages: usize, time: Timestamp, recorded: Option<Fixed>) -> Fixed {
        let Some(stage) = stages.checked_sub(1).map(|i| &self.stages[i]) else {
            return recorded.unwrap_or_else(|| self.recorded_at(time));
        };
        let transform = &stage.transform;
        if !transform.covers(time) {
            return self.eval(stages - 1, time, recorded);
        }
        match &transform.kind {
            TransformKind::Shift { seconds } => {
                let earlier = Timestamp(time.0.saturating_sub(*seconds));
                self.eval(stages - 1, earlier, None)
            }
            TransformKind::Cap { max } => {
                let price = self.eval(stages - 1, time, recorded);
                if price > *max {
                    at_decimals(*max, price.decimals)
                } else {
                    price
                }
            }
            TransformKind::Floor { min } => {
                let price = self.eval(stages - 1, time, recorded);
                if price < *min {
                    at_decimals(*min, price.decimals)
                } else {
                    price
                }
            }
            TransformKind::ScaleDrawdown { factor, .. } => {
                let price = self.eval(stages - 1, time, recorded);
                let reference = stage.reference.unwrap_or(price);
                if price >= reference {
                    return price;
                }
                let reference = at_decimals(reference, price.decimals).value;
                let drop = reference - price.value;
                let scale = U256::from(10u8).pow(U256::from(factor.decimals));
                let scaled = wide_mul_div(drop, factor.value, scale).unwrap_or(U256::MAX);
                let value = reference
                    .checked_sub(scaled)
                    .filter(|v| !v.is_zero())
                    .unwrap_or(U256::from(1u8));
                Fixed::new(value, price.decimals)
            }
        }
    }
}

/// `value` at `decimals` precision, rounded down (saturating when scaling up overflows).
fn at_decimals(value: Fixed, decimals: u8) -> Fixed {
    Fixed::new(value.rescale(decimals).unwrap_or(U256::MAX), decimals)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn price(text: &str) -> Fixed {
        Fixed::parse_with(text, 8).unwrap()
    }

    fn eth_series() -> BTreeMap<Id, Vec<(Timestamp, Fixed)>> {
        // 2000 until t=100, 1400 at t=200 (a 30% drop), back to 1800 at t=300.
        BTreeMap::from([(
            Id::name("ETH"),
            vec![
                (Timestamp(0), price("2000")),
                (Timestamp(100), price("2000")),
                (Timestamp(200), price("1400")),
                (Timestamp(300), price("1800")),
            ],
        )])
    }

    fn transform(kind: TransformKind, from: Option<i64>, to: Option<i64>) -> PriceTransform {
        PriceTransform {
            asset: Id::name("ETH"),
            from: from.map(Timestamp),
            to: to.map(Timestamp),
            kind,
        }
    }

    #[test]
    fn doubles_a_drawdown_from_the_window_start() {
        let scale = transform(
            TransformKind::ScaleDrawdown {
                factor: "2".parse().unwrap(),
                reference: None,
            },
            Some(50),
            None,
        );
        let paths = PricePaths::new(&[scale], None, eth_series()).unwrap();
        let eth = Id::name("ETH");
        assert_eq!(
            paths.price(&eth, Timestamp(200), price("1400")),
            price("800")
        );
        assert_eq!(
            paths.price(&eth, Timestamp(300), price("1800")),
            price("1600")
        );
        assert_eq!(
            paths.price(&eth, Timestamp(100), price("2100")),
            price("2100")
        );
        // Before the window nothing changes; other assets are never touched.
        assert_eq!(
            paths.price(&eth, Timestamp(10), price("1000")),
            price("1000")
        );
        assert_eq!(
            paths.price(&Id::name("WBTC"), Timestamp(200), price("1")),
            price("1")
        );
        // Keeps the recorded precision.
        assert_eq!(paths.price(&eth, Timestamp(200), price("1400")).decimals, 8);
    }

    #[test]
    fn an_impossible_drawdown_stops_at_one_unit() {
        let scale = transform(
            TransformKind::ScaleDrawdown {
                factor: "5".parse().unwrap(),
                reference: Some("2000".parse().unwrap()),
            },
            None,
            None,
        );
        let paths = PricePaths::new(&[scale], None, eth_series()).unwrap();
        let floor = paths.price(&Id::name("ETH"), Timestamp(200), price("1400"));
        assert_eq!(floor, Fixed::new(U256::from(1u8), 8));
    }

    #[test]
    fn shifts_caps_and_floors_compose_in_order() {
        let shift = transform(TransformKind::Shift { seconds: 100 }, None, None);
        let cap = transform(
            TransformKind::Cap {
                max: "1900".parse().unwrap(),
            },
            None,
            Some(1_000),
        );
        let floor = transform(
            TransformKind::Floor {
                min: "1500".parse().unwrap(),
            },
            None,
            None,
        );
        let eth = Id::name("ETH");
        let paths = PricePaths::new(std::slice::from_ref(&shift), None, eth_series()).unwrap();
        // At t=200 the delayed path shows t=100's price, at t=300 the crash.
        assert_eq!(
            paths.price(&eth, Timestamp(200), price("1400")),
            price("2000")
        );
        assert_eq!(
            paths.price(&eth, Timestamp(300), price("1800")),
            price("1400")
        );
        let paths = PricePaths::new(&[shift, cap, floor], None, eth_series()).unwrap();
        assert_eq!(
            paths.price(&eth, Timestamp(200), price("1400")),
            price("1900")
        );
        assert_eq!(
            paths.price(&eth, Timestamp(300), price("1800")),
            price("1500")
        );
        // At t=1000 the cap's window has ended: the delayed path (t=900: 1800) shows through.
        assert_eq!(
            paths.price(&eth, Timestamp(1_000), price("1800")),
            price("1800")
        );
        let earlier = transform(TransformKind::Shift { seconds: -100 }, None, None);
        let paths = PricePaths::new(&[earlier], None, eth_series()).unwrap();
        assert_eq!(
            paths.price(&eth, Timestamp(100), price("2000")),
            price("1400")
        );
    }

    #[test]
    fn transforming_an_unpriced_asset_is_an_error() {
        let mut cap = transform(
            TransformKind::Cap {
                max: "1".parse().unwrap(),
            },
            None,
            None,
        );
        cap.asset = Id::name("DAI");
        assert_eq!(
            PricePaths::new(&[cap.clone()], None, eth_series()).unwrap_err(),
            Id::name("DAI")
        );
        assert_eq!(
            PricePaths::assets(&[cap]),
            BTreeSet::from([Id::name("DAI")])
        );
    }
}
