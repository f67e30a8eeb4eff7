//! A market of several protocols: one generator per protocol, stepped block by block and merged
//! into one log.
//!
//! The generators share the seed's price streams, so every asset follows one market path and each
//! protocol's oracle publishes the same answers from it: an answer two protocols both read (the
//! `synth-WETH-USD` feed of Maker and Compound) is written once, the first time it appears in its
//! block. Within a block the protocols' events follow each other in `--protocol` order, each
//! protocol's in its own order (prices, keeper, openings, activity), renumbered so that
//! `tx_index` = `log_index` = position in the block, as in a one-protocol market.
//!
//! Must never: reorder one protocol's events, or drop an event that is not an exact repeat of a
//! price answer already written in the same block.

use cascade_events::{Event, Payload, PriceUpdate};

use super::generator::{self, Generator};
use super::plan;
use super::{Sink, SynthConfig, SynthError, SynthSummary};

pub(crate) fn generate(config: &SynthConfig, sink: Sink<'_>) -> Result<SynthSummary, SynthError> {
    let protocols = config.protocols();
    for (i, p) in protocols.iter().enumerate() {
        if protocols[..i].contains(p) {
            return Err(SynthError::Config(format!("{p} is listed twice")));
        }
    }
    let weights: Vec<u32> = generator::collateral_infos(config)?
        .iter()
        .map(|info| info.weight)
        .collect();
    let plan = plan::draw(
        config.seed,
        config.accounts,
        protocols.len(),
        config.overlap_ppm,
        &weights,
    );
    let mut generators = Vec::with_capacity(protocols.len());
    for (k, (protocol, slots)) in protocols.iter().zip(plan.slots).enumerate() {
        if slots.len() == 0 {
            return Err(SynthError::Config(format!(
                "{} accounts leave no position for {protocol}",
                config.accounts
            )));
        }
        let mut own = config.clone();
        own.protocol = *protocol;
        own.also.clear();
        own.accounts = slots.len();
        generators.push(Generator::with_slots(own, k as u64, Some(slots))?);
    }
    let blocks = generators[0].block_plan()?;
    let mut summary = SynthSummary {
        owners: plan.owners,
        shared_owners: plan.shared,
        ..SynthSummary::default()
    };
    let mut block_events: Vec<Event> = Vec::new();
    let mut written: Vec<PriceUpdate> = Vec::new();
    let mut seq = 0u64;
    for block in 0..=blocks.total_blocks {
        block_events.clear();
        written.clear();
        for generator in &mut generators {
            generator.step(block, &blocks, &mut |event: &Event| {
                block_events.push(event.clone());
                Ok(())
            })?;
        }
        let mut tx = 0u32;
        for event in &mut block_events {
            if let Payload::Price(update) = &event.payload {
                if written.contains(update) {
                    continue;
                }
                written.push(**update);
            }
            event.seq = seq;
            event.tx_index = Some(tx);
            event.log_index = Some(tx);
            sink(event).map_err(|source| SynthError::Sink { seq, source })?;
            if seq == 0 {
                summary.first_time = event.time;
            }
            summary.last_time = event.time;
            *summary.by_kind.entry(event.kind().name()).or_insert(0) += 1;
            seq += 1;
            tx += 1;
        }
    }
    summary.events = seq;
    for (k, generator) in generators.into_iter().enumerate() {
        let own = generator.into_summary();
        if k == 0 {
            summary.start_price = own.start_price;
            summary.low_price = own.low_price;
            summary.lead_asset = own.lead_asset;
        }
        summary.accounts += own.accounts;
        summary.accounts_liquidated += own.accounts_liquidated;
        summary.looped += own.looped;
        summary.loopable += own.loopable;
    }
    Ok(summary)
}
