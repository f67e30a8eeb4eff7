//! The Vat's records: vaults (`urns`: `ink`, `art`) and collateral types (`ilks`) with the
//! parameters of every contract that files into them.

use super::*;

/// A vault as [`MakerModel::vault`] shows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VaultView {
    /// Collateral, wad.
    pub ink: U256,
    /// Normalised debt, wad.
    pub art: U256,
    /// `art * rate` in DAI (wad) with the rate as of the ilk's last drip.
    pub debt: U256,
}

/// One vault: collateral and normalised debt, and its place in the books of the second.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Vault {
    pub(super) ink: U256,
    pub(super) art: U256,
    /// Position of this vault's entry in [`Ilk::pending`] while it has one.
    pub(super) pending: Option<u32>,
    /// Whether the ilk's watches (see [`Watch`]) count this vault: bit [`UNSAFE`] and bit
    /// [`UNDERWATER`], as of each watch's threshold and rate.
    pub(super) flags: u8,
}

/// Clipper auction parameters (kept for counterfactual auctions; dss `clip.sol`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Clip {
    pub(super) buf: U256,
    pub(super) tail: u64,
    pub(super) cusp: U256,
    pub(super) chip: U256,
    pub(super) tip: U256,
}

/// One collateral type with its rules and vaults.
#[derive(Clone, Debug)]
pub(super) struct Ilk {
    /// Accumulated rate, ray (`Vat.ilks.rate`).
    pub(super) rate: U256,
    /// Time of the last drip (`Jug.ilks.rho`).
    pub(super) rho: Option<Timestamp>,
    /// Per-second stability fee, ray (`Jug.ilks.duty`).
    pub(super) duty: U256,
    /// Cached `rpow(duty, dt)` for the last `dt` (prices and actions repeat intervals).
    pub(super) rpow_cache: Option<(u64, U256)>,
    /// Liquidation ratio, ray (`Spotter.ilks.mat`); zero until set.
    pub(super) mat: U256,
    /// Price with safety margin, ray (`Vat.ilks.spot`).
    pub(super) spot: U256,
    /// Minimum vault debt, rad (`Vat.ilks.dust`).
    pub(super) dust: U256,
    /// Debt ceiling, rad (`Vat.ilks.line`): recorded, not enforced on recorded actions.
    pub(super) line: U256,
    /// Whether the Dog (liquidations 2.0) liquidates this ilk.
    pub(super) dog_live: bool,
    /// `Cat.ilks.chop`, wad.
    pub(super) cat_chop: U256,
    /// `Cat.ilks.dunk`, rad.
    pub(super) dunk: U256,
    /// `Dog.ilks.chop`, wad.
    pub(super) dog_chop: U256,
    /// `Dog.ilks.hole`, rad (`None`: not set, unlimited).
    pub(super) hole: Option<U256>,
    /// `Dog.ilks.dirt`, rad.
    pub(super) dirt: U256,
    pub(super) clip: Clip,
    /// The asset whose OSM sets `spot`, once resolved.
    pub(super) price_asset: Option<Id>,
    pub(super) vaults: Slots<Vault>,
    /// The vaults by [`Vault::trigger_key`].
    pub(super) index: BucketIndex<Member>,
    /// Vaults acted on in the current second, with what their actions overshot, in the order
    /// first acted on.
    pub(super) pending: Vec<(Slot, Pending)>,
    /// The unsafe and underwater sets, once the first refresh has set them up.
    pub(super) watches: Option<[Watch; 2]>,
    /// Vaults whose unsafe flag changed since the last report: (flag at the report, flag now).
    pub(super) changes: BTreeMap<Id, (bool, bool)>,
    /// Vaults changed since the last check while the unsafe set held them: those whose open
    /// unsafe episode (if any) needs a new stretch of evidence (not state; may repeat).
    pub(super) touched: Vec<Slot>,
}

impl Default for Ilk {
    fn default() -> Self {
        Self {
            rate: RAY,
            rho: None,
            duty: RAY,
            rpow_cache: None,
            mat: U256::ZERO,
            spot: U256::ZERO,
            dust: U256::ZERO,
            line: U256::ZERO,
            dog_live: false,
            cat_chop: WAD,
            dunk: U256::ZERO,
            dog_chop: WAD,
            hole: None,
            dirt: U256::ZERO,
            clip: Clip::default(),
            price_asset: None,
            vaults: Slots::default(),
            index: BucketIndex::default(),
            pending: Vec::new(),
            watches: None,
            changes: BTreeMap::new(),
            touched: Vec::new(),
        }
    }
}
