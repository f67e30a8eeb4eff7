//! The canonical state encoding of the Maker model (checkpoints and the state hash). Hand-written:
//! the byte layout is pinned by the state hashes in the golden files.

use super::*;

impl MakerModel {
    /// [`ProtocolModel::encode_state`].
    pub(super) fn encode(&self, out: &mut StateWriter) {
        out.i64(self.hop);
        // In (ilk, account) order, whatever order the vaults were acted on in.
        let mut pending: Vec<(&Id, &Id, &Pending)> = self
            .ilks
            .iter()
            .flat_map(|(market, ilk)| {
                ilk.pending
                    .iter()
                    .map(move |(slot, pending)| (market, ilk.vaults.id(*slot), pending))
            })
            .collect();
        pending.sort_unstable_by(|a, b| (a.0, a.1).cmp(&(b.0, b.1)));
        out.count(pending.len());
        for (market, account, pending) in pending {
            out.id(market);
            out.id(account);
            out.u256(pending.ink_deficit);
            out.u256(pending.art_credit);
            out.u256(pending.repaid_dai);
            out.bool(pending.frobbed);
        }
        out.i64(self.auction_seconds);
        encode_opt(out, self.dog_hole);
        out.u256(self.dog_dirt);
        encode_opt(out, self.cat_box);
        out.u256(self.cat_litter);
        out.count(self.auctions.len());
        for auction in &self.auctions {
            out.id(&auction.ilk);
            out.u256(auction.tab);
            out.bool(auction.dog);
            out.time(auction.settles_at);
        }
        out.count(self.osms.len());
        for (asset, osm) in &self.osms {
            out.id(asset);
            osm.encode(out);
        }
        out.count(self.ilks.len());
        for (id, ilk) in self.ilks.iter() {
            out.id(id);
            out.u256(ilk.rate);
            match ilk.rho {
                Some(rho) => {
                    out.bool(true);
                    out.time(rho);
                }
                None => out.bool(false),
            }
            for value in [
                ilk.duty,
                ilk.mat,
                ilk.spot,
                ilk.dust,
                ilk.line,
                ilk.cat_chop,
                ilk.dunk,
                ilk.dog_chop,
            ] {
                out.u256(value);
            }
            out.bool(ilk.dog_live);
            encode_opt(out, ilk.hole);
            out.u256(ilk.dirt);
            out.u256(ilk.clip.buf);
            out.u64(ilk.clip.tail);
            out.u256(ilk.clip.cusp);
            out.u256(ilk.clip.chip);
            out.u256(ilk.clip.tip);
            match &ilk.price_asset {
                Some(asset) => {
                    out.bool(true);
                    out.id(asset);
                }
                None => out.bool(false),
            }
            out.count(ilk.vaults.len());
            for slot in ilk.vaults.sorted() {
                let vault = ilk.vaults.at(slot);
                out.id(ilk.vaults.id(slot));
                out.u256(vault.ink);
                out.u256(vault.art);
                out.u8(vault.flags);
            }
            match &ilk.watches {
                Some(watches) => {
                    out.bool(true);
                    for watch in watches {
                        out.u256(watch.threshold);
                        out.u256(watch.rate);
                        out.u64(watch.level as u64);
                        out.u64((watch.level >> 64) as u64);
                        out.u64(watch.count);
                        out.u256(watch.ink);
                        out.u256(watch.art);
                    }
                }
                None => out.bool(false),
            }
            out.count(ilk.changes.len());
            for (account, (was, now)) in &ilk.changes {
                out.id(account);
                out.bool(*was);
                out.bool(*now);
            }
        }
        // Last, and only when there are any, so that the state of a log without recorded oracle
        // values is byte for byte what it was before they were modelled (its hash is in goldens).
        if !self.recorded.is_empty() {
            out.count(self.recorded.len());
            for (market, recorded) in &self.recorded {
                out.id(market);
                out.u256(recorded.value);
                out.time(recorded.time);
                out.u64(recorded.seq);
                out.u8(match recorded.source {
                    OracleValueSource::OsmLogValue => 0,
                    OracleValueSource::SpotterPoke => 1,
                    OracleValueSource::CompoundPriceUpdated => 2,
                });
                out.id(&recorded.oracle);
            }
        }
    }

    /// [`ProtocolModel::decode_state`].
    pub(super) fn decode(&mut self, input: &mut StateReader<'_>) -> Result<(), EngineError> {
        let mut model = MakerModel::new(self.config.clone());
        model.hop = input.i64()?;
        let mut pending = Vec::new();
        for _ in 0..input.count()? {
            let key = (input.id()?, input.id()?);
            pending.push((
                key,
                Pending {
                    ink_deficit: input.u256()?,
                    art_credit: input.u256()?,
                    repaid_dai: input.u256()?,
                    frobbed: input.bool()?,
                },
            ));
        }
        model.auction_seconds = input.i64()?;
        model.dog_hole = decode_opt(input)?;
        model.dog_dirt = input.u256()?;
        model.cat_box = decode_opt(input)?;
        model.cat_litter = input.u256()?;
        for _ in 0..input.count()? {
            model.auctions.push(OpenAuction {
                ilk: input.id()?,
                tab: input.u256()?,
                dog: input.bool()?,
                settles_at: input.time()?,
            });
        }
        for _ in 0..input.count()? {
            let asset = input.id()?;
            model.osms.insert(asset, Osm::decode(input)?);
        }
        for _ in 0..input.count()? {
            let id = input.id()?;
            let mut ilk = Ilk {
                rate: input.u256()?,
                rho: if input.bool()? {
                    Some(input.time()?)
                } else {
                    None
                },
                ..Ilk::default()
            };
            ilk.duty = input.u256()?;
            ilk.mat = input.u256()?;
            ilk.spot = input.u256()?;
            ilk.dust = input.u256()?;
            ilk.line = input.u256()?;
            ilk.cat_chop = input.u256()?;
            ilk.dunk = input.u256()?;
            ilk.dog_chop = input.u256()?;
            ilk.dog_live = input.bool()?;
            ilk.hole = decode_opt(input)?;
            ilk.dirt = input.u256()?;
            ilk.clip = Clip {
                buf: input.u256()?,
                tail: input.u64()?,
                cusp: input.u256()?,
                chip: input.u256()?,
                tip: input.u256()?,
            };
            ilk.price_asset = if input.bool()? {
                Some(input.id()?)
            } else {
                None
            };
            for _ in 0..input.count()? {
                let account = input.id()?;
                let vault = Vault {
                    ink: input.u256()?,
                    art: input.u256()?,
                    pending: None,
                    flags: input.u8()?,
                };
                let (slot, _) = ilk.vaults.slot_or_insert_with(account, || vault);
                // No watches yet: this only rebuilds the index entry.
                ilk.reindex(slot, vault)?;
            }
            if input.bool()? {
                let mut watches = [Watch::default(); 2];
                for watch in &mut watches {
                    watch.threshold = input.u256()?;
                    watch.rate = input.u256()?;
                    let low = input.u64()?;
                    let high = input.u64()?;
                    watch.level = u128::from(low) | (u128::from(high) << 64);
                    watch.count = input.u64()?;
                    watch.ink = input.u256()?;
                    watch.art = input.u256()?;
                }
                ilk.watches = Some(watches);
            }
            for _ in 0..input.count()? {
                let account = input.id()?;
                let was = input.bool()?;
                let now = input.bool()?;
                ilk.changes.insert(account, (was, now));
            }
            model.ilks.insert(id, ilk);
        }
        if !input.at_end() {
            for _ in 0..input.count()? {
                let market = input.id()?;
                let value = input.u256()?;
                let time = input.time()?;
                let seq = input.u64()?;
                let source = match input.u8()? {
                    0 => OracleValueSource::OsmLogValue,
                    1 => OracleValueSource::SpotterPoke,
                    2 => OracleValueSource::CompoundPriceUpdated,
                    other => return Err(input.error(format!("oracle value source {other}"))),
                };
                let oracle = input.id()?;
                model.recorded.insert(
                    market,
                    Recorded {
                        value,
                        time,
                        seq,
                        source,
                        oracle,
                    },
                );
            }
        }
        for ((market, account), entry) in pending {
            let ilk = model.ilks.get_mut(&market);
            let Some((ilk, slot)) = ilk.and_then(|ilk| ilk.vaults.find(&account).map(|s| (ilk, s)))
            else {
                return Err(input.error(format!(
                    "pending actions of vault {account} in {market}, which the state lacks"
                )));
            };
            ilk.vaults.at_mut(slot).pending = Some(ilk.pending.len() as u32);
            ilk.pending.push((slot, entry));
        }
        *self = model;
        Ok(())
    }
}

pub(super) fn encode_opt(out: &mut StateWriter, value: Option<U256>) {
    match value {
        Some(value) => {
            out.bool(true);
            out.u256(value);
        }
        None => out.bool(false),
    }
}

pub(super) fn decode_opt(input: &mut StateReader<'_>) -> Result<Option<U256>, EngineError> {
    Ok(if input.bool()? {
        Some(input.u256()?)
    } else {
        None
    })
}
