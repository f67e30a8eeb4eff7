//! Who owns which position in a market of several protocols: the owners, which of them hold
//! positions in more than one protocol (`--overlap`), and the collateral their positions share.
//!
//! An owner is drawn at a time: with probability `overlap` it holds a position in every protocol
//! of the market, its collateral drawn once and kept in each protocol with probability 3/4
//! (otherwise drawn again: every volatile asset follows the same crash, so a different one is
//! still correlated); otherwise it holds one position in one protocol, chosen uniformly, whose
//! collateral its protocol's generator draws as in a one-protocol market. Owners are drawn until
//! the market holds `accounts` positions; each protocol numbers its positions in owner order.
//!
//! Must never: use floats, or read entropy besides the seed.

use super::generator::PPM;
use super::sample::Sampler;

/// Stream label of the ownership draws (the generators' own streams are below 1,000 per
/// protocol).
const STREAM_PLAN: u64 = 4;

/// Marks a position whose collateral its generator draws.
const DRAWN: u8 = u8::MAX;

/// The owners of one protocol's positions, in position order.
#[derive(Clone, Debug, Default)]
pub(crate) struct Slots {
    owners: Vec<u32>,
    assets: Vec<u8>,
}

impl Slots {
    /// Owner number of position `index`.
    pub(crate) fn owner(&self, index: u32) -> u32 {
        self.owners[index as usize]
    }

    /// The collateral (index into the market's list) position `index` must use, if its owner's
    /// other positions decided it.
    pub(crate) fn asset(&self, index: u32) -> Option<u8> {
        Some(self.assets[index as usize]).filter(|&a| a != DRAWN)
    }

    /// Positions.
    pub(crate) fn len(&self) -> u32 {
        self.owners.len() as u32
    }
}

/// A market's ownership: one [`Slots`] per protocol, and the owner counts.
pub(crate) struct Plan {
    pub slots: Vec<Slots>,
    /// Distinct owners.
    pub owners: u32,
    /// Owners holding positions in more than one protocol.
    pub shared: u32,
}

/// Draws the ownership of `accounts` positions over `protocols` protocols whose collateral list
/// has these weights.
pub(crate) fn draw(
    seed: u64,
    accounts: u32,
    protocols: usize,
    overlap_ppm: u32,
    weights: &[u32],
) -> Plan {
    let mut rng = Sampler::new(seed, STREAM_PLAN);
    let mut slots = vec![Slots::default(); protocols];
    let mut placed = 0u32;
    let mut owner = 0u32;
    let mut shared = 0u32;
    let total_weight: u64 = weights.iter().map(|&w| u64::from(w)).sum();
    let pick = |rng: &mut Sampler| {
        let mut roll = rng.below(total_weight.max(1));
        for (i, &w) in weights.iter().enumerate() {
            if roll < u64::from(w) {
                return i as u8;
            }
            roll -= u64::from(w);
        }
        0
    };
    while placed < accounts {
        let room = (accounts - placed) as usize;
        if protocols > 1 && room > 1 && rng.below(PPM) < u64::from(overlap_ppm) {
            let asset = pick(&mut rng);
            for slot in slots.iter_mut().take(room) {
                let own = if rng.below(4) < 3 {
                    asset
                } else {
                    pick(&mut rng)
                };
                slot.owners.push(owner);
                slot.assets.push(own);
                placed += 1;
            }
            shared += 1;
        } else {
            let k = rng.below(protocols as u64) as usize;
            slots[k].owners.push(owner);
            slots[k].assets.push(DRAWN);
            placed += 1;
        }
        owner += 1;
    }
    Plan {
        slots,
        owners: owner,
        shared,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_add_up_and_shared_owners_hold_one_position_per_protocol() {
        let plan = draw(3, 10_001, 3, 300_000, &[60, 30]);
        let positions: u32 = plan.slots.iter().map(Slots::len).sum();
        assert_eq!(positions, 10_001);
        let mut held = vec![0u32; plan.owners as usize];
        for slots in &plan.slots {
            for i in 0..slots.len() {
                held[slots.owner(i) as usize] += 1;
            }
        }
        assert!(held.iter().all(|&n| n >= 1));
        let multi = held.iter().filter(|&&n| n > 1).count() as u32;
        assert_eq!(multi, plan.shared);
        // Every multi-protocol owner holds one position in each protocol (the last one may be
        // cut short by the position count).
        assert!(held.iter().filter(|&&n| n > 1).all(|&n| n <= 3));
        let share = f64::from(plan.shared) / f64::from(plan.owners);
        assert!((share - 0.3).abs() < 0.02, "{share}");
    }

    #[test]
    fn one_protocol_or_no_overlap_shares_nobody() {
        for plan in [draw(1, 500, 1, 500_000, &[1]), draw(1, 500, 3, 0, &[1, 1])] {
            assert_eq!(plan.shared, 0);
            assert_eq!(plan.owners, 500);
        }
    }
}
