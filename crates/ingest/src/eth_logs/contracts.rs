//! The contract table: what each emitting address is (`--contract ADDRESS=KIND`,
//! `--contracts FILE` and the built-in mainnet contracts).

use std::collections::BTreeMap;
use std::path::Path;
use std::str::FromStr;

use alloy_primitives::Address;
use cascade_events::{Protocol, Symbol};

use crate::error::IngestError;
use crate::table::CsvInput;

/// What a contract address is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Contract {
    /// An Aave v2 LendingPool.
    AaveV2Pool,
    /// An Aave v3 Pool.
    AaveV3Pool,
    /// A Compound v2 cToken, with the symbol the price oracle names its underlying by when
    /// known (`ETH` for cETH).
    CompoundCToken(Option<Symbol>),
    /// A Chainlink aggregator (its feed must be in the feed table).
    ChainlinkAggregator,
    /// The Maker Dog.
    MakerDog,
    /// A Maker Clipper, with the ilk it sells when known.
    MakerClipper(Option<Symbol>),
    /// The Maker Spotter (its `Poke` names the ilk; its `file` notes set `mat`).
    MakerSpotter,
    /// The Maker Vat (its `file` notes set `dust` and `line`).
    MakerVat,
    /// The Maker Jug (its `file` notes set `duty`).
    MakerJug,
    /// The Maker Cat of Liquidations 1.2 (its `file` notes set `chop`, `dunk` and `box`).
    MakerCat,
    /// A Maker OSM and the collateral it prices (`ETH`: every `ETH-*` ilk reads it).
    MakerOsm(Symbol),
    /// A Maker Median and the asset it prices.
    MakerMedian(Symbol),
    /// Compound's `UniswapAnchoredView`.
    CompoundOracle,
    /// An `AaveOracle` of Aave v2 or v3.
    AaveOracle(Protocol),
    /// The configurator of an Aave v2 `LendingPool` or v3 `Pool` (its reserve parameters).
    AaveConfigurator(Protocol),
    /// Compound's Comptroller (its Unitroller proxy), which sets the risk parameters.
    CompoundComptroller,
}

impl FromStr for Contract {
    type Err = String;
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Ok(match text {
            "aave-v2" => Contract::AaveV2Pool,
            "aave-v3" => Contract::AaveV3Pool,
            "compound-v2" => Contract::CompoundCToken(None),
            "chainlink" => Contract::ChainlinkAggregator,
            "maker-dog" => Contract::MakerDog,
            "maker-clipper" => Contract::MakerClipper(None),
            "maker-spotter" => Contract::MakerSpotter,
            "maker-vat" => Contract::MakerVat,
            "maker-jug" => Contract::MakerJug,
            "maker-cat" => Contract::MakerCat,
            "compound-oracle" => Contract::CompoundOracle,
            "aave-v2-oracle" => Contract::AaveOracle(Protocol::AaveV2),
            "aave-v3-oracle" => Contract::AaveOracle(Protocol::AaveV3),
            "aave-v2-configurator" => Contract::AaveConfigurator(Protocol::AaveV2),
            "aave-v3-configurator" => Contract::AaveConfigurator(Protocol::AaveV3),
            "compound-comptroller" => Contract::CompoundComptroller,
            other => {
                let (kind, name) = other.split_once(':').unwrap_or((other, ""));
                let symbol = || Symbol::new(name).map_err(|e| format!("{other:?}: {e}"));
                match kind {
                    "maker-clipper" => Contract::MakerClipper(Some(symbol()?)),
                    "compound-v2" => Contract::CompoundCToken(Some(symbol()?)),
                    "maker-osm" => Contract::MakerOsm(symbol()?),
                    "maker-median" => Contract::MakerMedian(symbol()?),
                    _ => {
                        return Err(format!(
                            "unknown contract kind {other:?} (expected aave-v2, aave-v3, compound-v2[:SYMBOL], chainlink, maker-dog, maker-clipper[:ILK], maker-spotter, maker-vat, maker-jug, maker-cat, maker-osm:GEM, maker-median:ASSET, compound-oracle, compound-comptroller, aave-v2-oracle, aave-v3-oracle, aave-v2-configurator, aave-v3-configurator)"
                        ));
                    }
                }
            }
        })
    }
}

/// Parses `ADDRESS=KIND` (the `--contract` flag).
pub fn parse_contract(text: &str) -> Result<(Address, Contract), String> {
    let (address, kind) = text.split_once('=').ok_or("expected ADDRESS=KIND")?;
    let address = address
        .trim()
        .parse()
        .map_err(|_| format!("{address:?} is not an address"))?;
    Ok((address, kind.trim().parse()?))
}

/// Reads a contract table file: CSV with columns `address,kind` (kinds as `--contract` spells
/// them); the `--contracts FILE` flag. Any bad row is an error naming its line, and an address
/// listed twice with different kinds is one: the table decides what an oracle prices.
pub fn read_contracts(path: &Path) -> Result<BTreeMap<Address, Contract>, IngestError> {
    let mut input = CsvInput::open(path)?;
    let address = input.column("address")?;
    let kind = input.column("kind")?;
    let mut contracts = BTreeMap::new();
    input.for_each_row(&crate::progress::NoProgress, |row| {
        let row = row.map_err(IngestError::Row)?;
        let at = row.parse(address, |text| {
            text.trim()
                .parse::<Address>()
                .map_err(|_| "not an address".to_owned())
        })?;
        let contract = row.parse(kind, |text| text.trim().parse::<Contract>())?;
        match contracts.insert(at, contract.clone()) {
            Some(previous) if previous != contract => Err(row
                .error(kind, format!("{at:#x} is already listed as {previous:?}"))
                .into()),
            _ => Ok(()),
        }
    })?;
    Ok(contracts)
}

/// Built-in contracts: the Ethereum mainnet pools and the configurators of the main markets, the
/// Compound Comptroller, the Maker Dog, Spotter, Vat, Jug and Cat (the Liquidations 1.2 Cat of
/// changelog 1.1 on, `MCD_CAT`; its predecessor `MCD_CAT_OLD` held `chop` as a ray and `lump`, and
/// is not built in). The AMM market's configurator is left out:
/// the Aave model keys reserve parameters by asset, and the AMM market lists the main market's
/// assets with other parameters.
pub(super) const BUILT_IN: [(&str, &str); 11] = [
    ("0x7d2768dE32b0b80b7a3454c06BdAc94A69DDc7A9", "aave-v2"), // Aave v2 main LendingPool
    ("0x7937D4799803FbBe595ed57278Bc4cA21f3bFfCB", "aave-v2"), // Aave v2 AMM LendingPool
    ("0x87870Bca3F3fD6335C3F4ce8392D69350B4fA4E2", "aave-v3"), // Aave v3 Ethereum Pool
    (
        "0x311Bb771e4F8952E6Da169b425E7e92d6Ac45756",
        "aave-v2-configurator",
    ), // Aave v2 main LendingPoolConfigurator
    (
        "0x64b761D848206f447Fe2dd461b0c635Ec39EbB27",
        "aave-v3-configurator",
    ), // Aave v3 Ethereum PoolConfigurator
    (
        "0x3d9819210A31b4961b30EF54bE2aeD79B9c9Cd3B",
        "compound-comptroller",
    ), // Compound v2 Comptroller (Unitroller)
    ("0x135954d155898D42C90D2a57824C690e0c7BEf1B", "maker-dog"), // Maker Dog
    (
        "0x65C79fcB50Ca1594B025960e539eD7A9a6D434A3",
        "maker-spotter",
    ), // Maker Spotter
    ("0x35D1b3F3D7966A1DFe207aa4514C12a259A0492B", "maker-vat"), // Maker Vat
    ("0x19c0976f590D67707E62397C87829d896Dc0f1F1", "maker-jug"), // Maker Jug
    ("0xa5679C04fc3d9d8b0AaB1F0ab83555b301cA70Ea", "maker-cat"), // Maker Cat (MCD_CAT)
];
