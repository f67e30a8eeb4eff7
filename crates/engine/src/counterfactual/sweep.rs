//! Parameter sweeps: one counterfactual per point of a grid of parameter values, in parallel.
//!
//! A sweep axis is written `protocol.market.param=START..END:STEP` (`maker.ETH-B.mat=1.3..1.8:0.05`;
//! a global parameter omits the market: `maker.Hole=...`). Values are exact decimals: START, then
//! START + STEP, ... up to END inclusive. Every point starts from the same prepared window
//! checkpoint ([`super::scenario::prepare`]) and runs on its own engine; the `jobs` threads of a rayon pool
//! take the points in grid order, one at a time, and the results are collected in grid order, so they are the same
//! whatever `jobs` is. Within one point the engine stays single-threaded.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use cascade_events::{Fixed, Protocol, U256};
pub use cascade_run::sweep::{PointResult, SweepAxisInfo};

use super::scenario::session::{point_from, window_events};
use super::scenario::{MarketSel, Param, Prepared, Scenario, ScenarioError, Scope, window_state};
use crate::EngineError;
use crate::core::replay::Engine;

/// Most points a sweep may have.
pub const MAX_POINTS: usize = 100_000;

/// One swept parameter and its values.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SweepAxis {
    /// The key as written (`maker.ETH-B.mat`).
    pub key: String,
    /// Protocol.
    pub protocol: Protocol,
    /// Market, or all for a global parameter.
    pub market: MarketSel,
    /// Parameter.
    pub param: Param,
    /// Values in order, each checked against the parameter's unit.
    pub values: Vec<Fixed>,
}

fn sweep_error(spec: &str, reason: impl Into<String>) -> ScenarioError {
    ScenarioError::Sweep {
        spec: spec.to_owned(),
        reason: reason.into(),
    }
}

impl SweepAxis {
    /// Parses `protocol.market.param=START..END:STEP`.
    pub fn parse(spec: &str) -> Result<SweepAxis, ScenarioError> {
        let (key, range) = spec
            .split_once('=')
            .ok_or_else(|| sweep_error(spec, "expected KEY=START..END:STEP"))?;
        let (protocol_name, rest) = key.split_once('.').ok_or_else(|| {
            sweep_error(spec, "the key is protocol.market.param (or protocol.param)")
        })?;
        let protocol: Protocol = protocol_name
            .parse()
            .map_err(|reason: String| sweep_error(spec, reason))?;
        let (market, param_name) = match rest.rsplit_once('.') {
            Some((market, param)) => (Some(market), param),
            None => (None, rest),
        };
        let param = Param::lookup(protocol, param_name).map_err(|known| {
            sweep_error(
                spec,
                format!(
                    "{param_name:?} is not a {protocol} parameter (expected one of: {})",
                    known.join(", ")
                ),
            )
        })?;
        let market = match (param.spec().scope, market) {
            (Scope::Global, None) => MarketSel::All,
            (Scope::Global, Some(_)) => {
                return Err(sweep_error(
                    spec,
                    format!(
                        "{protocol} {} is global: write {protocol}.{}",
                        param.name(),
                        param.name()
                    ),
                ));
            }
            (Scope::Market, None) => {
                return Err(sweep_error(
                    spec,
                    format!(
                        "{protocol} {} is set per market: write {protocol}.MARKET.{}",
                        param.name(),
                        param.name()
                    ),
                ));
            }
            (Scope::Market, Some(market)) => MarketSel::One(
                market
                    .parse()
                    .map_err(|e: cascade_events::SymbolError| sweep_error(spec, e.to_string()))?,
            ),
        };
        let (bounds, step) = range
            .split_once(':')
            .ok_or_else(|| sweep_error(spec, "expected START..END:STEP"))?;
        let (start, end) = bounds
            .split_once("..")
            .ok_or_else(|| sweep_error(spec, "expected START..END:STEP"))?;
        let number = |text: &str, what: &str| {
            Fixed::parse_exact(text.trim())
                .map_err(|error| sweep_error(spec, format!("{what} {text:?}: {error}")))
        };
        let (start, end, step) = (
            number(start, "start")?,
            number(end, "end")?,
            number(step, "step")?,
        );
        if step.value.is_zero() {
            return Err(sweep_error(spec, "the step must be above 0"));
        }
        if end < start {
            return Err(sweep_error(spec, "the end is below the start"));
        }
        let decimals = start.decimals.max(end.decimals).max(step.decimals);
        let at = |f: Fixed| {
            f.rescale(decimals)
                .ok_or_else(|| sweep_error(spec, "value too large"))
        };
        let (first, last, increment) = (at(start)?, at(end)?, at(step)?);
        let count = (last - first) / increment + U256::from(1u8);
        if count > U256::from(MAX_POINTS) {
            return Err(sweep_error(spec, format!("more than {MAX_POINTS} values")));
        }
        let mut values = Vec::new();
        let mut value = first;
        while value <= last {
            let fixed = Fixed::new(value, decimals);
            let checked = param
                .check(fixed)
                .map_err(|reason| sweep_error(spec, format!("{fixed}: {reason}")))?;
            values.push(checked);
            value += increment;
        }
        Ok(SweepAxis {
            key: key.to_owned(),
            protocol,
            market,
            param,
            values,
        })
    }

    /// The axis as sweep results show it.
    pub fn info(&self) -> SweepAxisInfo {
        SweepAxisInfo {
            key: self.key.clone(),
            protocol: self.protocol,
            market: self.market,
            param: self.param.name(),
            values: self.values.clone(),
        }
    }
}

/// Every combination of the axes' values, the first axis varying slowest.
pub fn grid(axes: &[SweepAxis]) -> Vec<Vec<Fixed>> {
    let mut points: Vec<Vec<Fixed>> = vec![Vec::new()];
    for axis in axes {
        points = points
            .into_iter()
            .flat_map(|prefix| {
                axis.values.iter().map(move |value| {
                    let mut point = prefix.clone();
                    point.push(*value);
                    point
                })
            })
            .collect();
    }
    points
}

/// Refuses two axes of one parameter (however spelled): each point would set it twice and only
/// the last value would count.
fn check_distinct(axes: &[SweepAxis]) -> Result<(), ScenarioError> {
    for (index, axis) in axes.iter().enumerate() {
        let target = (axis.protocol, axis.market, axis.param);
        if let Some(first) = axes[..index]
            .iter()
            .find(|a| (a.protocol, a.market, a.param) == target)
        {
            return Err(sweep_error(
                &axis.key,
                format!(
                    "sweeps {} {} {} again (--param {} already does): give each parameter once",
                    axis.protocol,
                    axis.market,
                    axis.param.spec().name,
                    first.key
                ),
            ));
        }
    }
    Ok(())
}

/// Runs `base` once per grid point of `axes` (each point overriding the swept parameters from the
/// window start) on `jobs` threads; results in grid order. The first error in grid order among
/// the points run is returned (after one, no new point starts).
pub fn run_sweep(
    prepared: &Prepared,
    base: &Scenario,
    axes: &[SweepAxis],
    jobs: usize,
) -> Result<Vec<PointResult>, EngineError> {
    check_distinct(axes)?;
    prepared.check_axes(axes)?;
    let points = grid(axes);
    let events = window_events(prepared)?;
    let queue = Queue {
        points: &points,
        events: &events,
        next: AtomicUsize::new(0),
        failed: AtomicBool::new(false),
    };
    let threads = jobs.max(1).min(points.len());
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|index| format!("sweep-{index}"))
        .build()
        .map_err(|error| EngineError::Source(format!("starting the sweep threads: {error}")))?;
    // Every thread of the pool runs one worker that takes points from the queue until none is
    // left: rayon's splitting would hand each thread fixed halves of unequal points, and decode
    // the window state once per split job instead of once per thread.
    let mut done: Vec<(usize, Result<PointResult, EngineError>)> = pool
        .broadcast(|_| queue.work(prepared, base, axes))
        .into_iter()
        .flatten()
        .collect();
    done.sort_by_key(|(index, _)| *index);
    done.into_iter().map(|(_, result)| result).collect()
}

/// The points of a sweep, handed out in grid order to whichever thread is free: the threads stay
/// busy to the end however unequal the points are, and each decodes the window state once.
struct Queue<'a> {
    points: &'a [Vec<Fixed>],
    /// The window's events, decoded once for every point.
    events: &'a [cascade_events::Event],
    next: AtomicUsize,
    failed: AtomicBool,
}

impl Queue<'_> {
    /// Runs points until none is left or one failed; returns each point run with its index.
    fn work(
        &self,
        prepared: &Prepared,
        base: &Scenario,
        axes: &[SweepAxis],
    ) -> Vec<(usize, Result<PointResult, EngineError>)> {
        let mut done = Vec::new();
        // The window state this thread copies for each of its points, decoded at its first.
        let mut start: Option<Option<Engine>> = None;
        while !self.failed.load(Ordering::Relaxed) {
            let index = self.next.fetch_add(1, Ordering::Relaxed);
            let Some(values) = self.points.get(index) else {
                break;
            };
            let mut scenario = base.clone();
            for (axis, value) in axes.iter().zip(values) {
                scenario = scenario.with_override(axis.protocol, axis.market, axis.param, *value);
            }
            let result = match &start {
                Some(state) => Ok(state.as_ref()),
                None => window_state(prepared).map(|state| start.insert(state).as_ref()),
            }
            .and_then(|state| point_from(prepared, &scenario, state, self.events))
            .map(|(run, accounts)| PointResult::of(values.clone(), &run, accounts));
            if result.is_err() {
                self.failed.store(true, Ordering::Relaxed);
            }
            done.push((index, result));
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_issue_example() {
        let axis = SweepAxis::parse("maker.ETH-B.mat=1.3..1.8:0.05").unwrap();
        assert_eq!(axis.param, Param::MakerMat);
        assert_eq!(
            axis.market,
            MarketSel::One(cascade_events::Id::name("ETH-B"))
        );
        let values: Vec<String> = axis.values.iter().map(Fixed::to_string).collect();
        assert_eq!(
            values,
            [
                "1.30", "1.35", "1.40", "1.45", "1.50", "1.55", "1.60", "1.65", "1.70", "1.75",
                "1.80"
            ]
        );
        let global = SweepAxis::parse("compound-v2.close-factor=0.5..0.5:0.1").unwrap();
        assert_eq!((global.market, global.values.len()), (MarketSel::All, 1));
        // An end between steps is not reached.
        assert_eq!(
            SweepAxis::parse("maker.ETH-B.chop=0.1..0.2:0.03")
                .unwrap()
                .values
                .len(),
            4
        );
    }

    #[test]
    fn refuses_bad_axes_with_the_spec_in_the_message() {
        for (spec, expected) in [
            ("maker.ETH-B.mat", "expected KEY=START..END:STEP"),
            ("maker.ETH-B.mat=1.3..1.8", "expected START..END:STEP"),
            ("maker.ETH-B.mat=1.8..1.3:0.1", "below the start"),
            ("maker.ETH-B.mat=1.3..1.8:0", "above 0"),
            ("maker.ETH-B.mat=0.5..1.8:0.5", "0.5: maker mat must be"),
            ("maker.ETH-B.lt=1..2:1", "not a maker parameter"),
            ("makr.ETH-B.mat=1..2:1", "unknown protocol"),
            ("maker.mat=1..2:1", "set per market"),
            ("maker.ETH-B.Hole=1..2:1", "is global"),
            (
                "maker.ETH-B.mat=1..100000:0.0001",
                "more than 100000 values",
            ),
        ] {
            let message = SweepAxis::parse(spec).unwrap_err().to_string();
            assert!(
                message.contains(spec) && message.contains(expected),
                "{spec}: {message}"
            );
        }
    }

    #[test]
    fn grids_vary_the_first_axis_slowest() {
        let a = SweepAxis::parse("maker.ETH-B.mat=1.3..1.4:0.1").unwrap();
        let b = SweepAxis::parse("maker.ETH-B.chop=0.1..0.3:0.1").unwrap();
        let points: Vec<Vec<String>> = grid(&[a, b])
            .into_iter()
            .map(|p| p.iter().map(Fixed::to_string).collect())
            .collect();
        assert_eq!(points.len(), 6);
        assert_eq!(points[0], ["1.3", "0.1"]);
        assert_eq!(points[2], ["1.3", "0.3"]);
        assert_eq!(points[3], ["1.4", "0.1"]);
        assert_eq!(grid(&[]), vec![Vec::<Fixed>::new()]);
    }
}
