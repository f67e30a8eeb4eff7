//! Maker's parameters, as the governance events of the export and the scenario table name them
//! (`SPOTTER.ilks.mat`, `DOG.chop`, `CLIPPER.buf`, bare `mat`).
//!
//! A name is read by its first (contract) and last (parameter) components. A `DOG.*` or
//! `CLIPPER.*` change switches its ilk to the Dog's rules (Liquidations 2.0); the same parameter
//! set under its bare name (a scenario override) does not, so those come in two variants.

use crate::protocol::param::ProtocolParam;

/// A Maker parameter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MakerParam {
    /// `OSM.hop`: the oracle delay, seconds.
    Hop,
    /// `Dog.Hole`: DAI in all auctions at once.
    GlobalHole,
    /// `Cat.box`: DAI in all Flipper auctions at once.
    CatBox,
    /// Seconds a simulated auction runs before it settles.
    AuctionSeconds,
    /// `Spotter.ilks.mat`.
    Mat,
    /// `Jug.ilks.duty`, yearly.
    Duty,
    /// `Jug.ilks.duty` as the contract holds it, a per-second ray (`Jug.file` as logged).
    DutyPerSecond,
    /// `Vat.ilks.dust`.
    Dust,
    /// `Vat.ilks.line`.
    Line,
    /// `Cat.ilks.chop`.
    CatChop,
    /// `Cat.ilks.dunk`.
    CatDunk,
    /// `Dog.ilks.chop`, switching the ilk to the Dog.
    DogChop,
    /// The Dog's `chop` under a name without a contract, leaving the ilk's rules as they are.
    Chop,
    /// `Dog.ilks.hole`, switching the ilk to the Dog.
    DogHole,
    /// The Dog's `hole` under a name without a contract.
    Hole,
    /// `Clipper.buf`, switching the ilk to the Dog.
    ClipperBuf,
    /// `buf` under any other name.
    Buf,
    /// `Clipper.tail`, switching the ilk to the Dog.
    ClipperTail,
    /// `tail` under any other name.
    Tail,
    /// `Clipper.cusp`, switching the ilk to the Dog.
    ClipperCusp,
    /// `cusp` under any other name.
    Cusp,
    /// `Clipper.chip`, switching the ilk to the Dog.
    ClipperChip,
    /// `chip` under any other name.
    Chip,
    /// `Clipper.tip`, switching the ilk to the Dog.
    ClipperTip,
    /// `tip` under any other name.
    Tip,
    /// Scenario switch: 1 = Dog/Clipper, 0 = Cat/Flipper.
    Liquidations,
    /// A contract this model does not track (`FLIPPER.*`, `DC-IAM.*`): ignored.
    Untracked,
    /// Any other name: its ilk is still opened, and the change is counted as skipped
    /// (`unknown-parameter`).
    Unknown,
}

/// Contracts whose parameters the model does not track.
const UNTRACKED_PREFIXES: [&str; 2] = ["FLIPPER.", "DC-IAM."];

impl ProtocolParam for MakerParam {
    const ALL: &'static [Self] = &[
        MakerParam::Hop,
        MakerParam::GlobalHole,
        MakerParam::CatBox,
        MakerParam::AuctionSeconds,
        MakerParam::Mat,
        MakerParam::Duty,
        MakerParam::DutyPerSecond,
        MakerParam::Dust,
        MakerParam::Line,
        MakerParam::CatChop,
        MakerParam::CatDunk,
        MakerParam::DogChop,
        MakerParam::Chop,
        MakerParam::DogHole,
        MakerParam::Hole,
        MakerParam::ClipperBuf,
        MakerParam::Buf,
        MakerParam::ClipperTail,
        MakerParam::Tail,
        MakerParam::ClipperCusp,
        MakerParam::Cusp,
        MakerParam::ClipperChip,
        MakerParam::Chip,
        MakerParam::ClipperTip,
        MakerParam::Tip,
        MakerParam::Liquidations,
        MakerParam::Untracked,
        MakerParam::Unknown,
    ];

    /// Every name denotes a Maker parameter, [`MakerParam::Unknown`] at worst.
    fn parse(name: &str) -> Option<Self> {
        if UNTRACKED_PREFIXES
            .iter()
            .any(|prefix| name.starts_with(prefix))
        {
            return Some(MakerParam::Untracked);
        }
        // A name without a dot names no contract: the scenario table's bare `chop` and `hole`
        // are the Dog's, set without switching the ilk's rules.
        let (contract, bare) = match name.split_once('.') {
            Some((contract, rest)) => (contract, rest.rsplit('.').next().unwrap_or(rest)),
            None => ("", name),
        };
        let clipper = contract == "CLIPPER";
        Some(match (contract, bare) {
            (_, "hop") => MakerParam::Hop,
            ("DOG", "Hole") => MakerParam::GlobalHole,
            ("CAT", "box") => MakerParam::CatBox,
            (_, "auction_seconds") => MakerParam::AuctionSeconds,
            (_, "mat") => MakerParam::Mat,
            (_, "duty") => MakerParam::Duty,
            (_, "duty_per_second") => MakerParam::DutyPerSecond,
            (_, "dust") => MakerParam::Dust,
            (_, "line") => MakerParam::Line,
            ("CAT", "chop") => MakerParam::CatChop,
            ("CAT", "dunk") => MakerParam::CatDunk,
            ("DOG", "chop") => MakerParam::DogChop,
            ("", "chop") => MakerParam::Chop,
            ("DOG", "hole") => MakerParam::DogHole,
            ("", "hole") => MakerParam::Hole,
            (_, "buf") if clipper => MakerParam::ClipperBuf,
            (_, "buf") => MakerParam::Buf,
            (_, "tail") if clipper => MakerParam::ClipperTail,
            (_, "tail") => MakerParam::Tail,
            (_, "cusp") if clipper => MakerParam::ClipperCusp,
            (_, "cusp") => MakerParam::Cusp,
            (_, "chip") if clipper => MakerParam::ClipperChip,
            (_, "chip") => MakerParam::Chip,
            (_, "tip") if clipper => MakerParam::ClipperTip,
            (_, "tip") => MakerParam::Tip,
            (_, "liquidations") => MakerParam::Liquidations,
            _ => MakerParam::Unknown,
        })
    }

    fn name(self) -> &'static str {
        match self {
            MakerParam::Hop => "hop",
            MakerParam::GlobalHole => "DOG.Hole",
            MakerParam::CatBox => "CAT.box",
            MakerParam::AuctionSeconds => "auction_seconds",
            MakerParam::Mat => "mat",
            MakerParam::Duty => "duty",
            MakerParam::DutyPerSecond => "duty_per_second",
            MakerParam::Dust => "dust",
            MakerParam::Line => "line",
            MakerParam::CatChop => "CAT.chop",
            MakerParam::CatDunk => "CAT.dunk",
            MakerParam::DogChop => "DOG.chop",
            MakerParam::Chop => "chop",
            MakerParam::DogHole => "DOG.hole",
            MakerParam::Hole => "hole",
            MakerParam::ClipperBuf => "CLIPPER.buf",
            MakerParam::Buf => "buf",
            MakerParam::ClipperTail => "CLIPPER.tail",
            MakerParam::Tail => "tail",
            MakerParam::ClipperCusp => "CLIPPER.cusp",
            MakerParam::Cusp => "cusp",
            MakerParam::ClipperChip => "CLIPPER.chip",
            MakerParam::Chip => "chip",
            MakerParam::ClipperTip => "CLIPPER.tip",
            MakerParam::Tip => "tip",
            MakerParam::Liquidations => "liquidations",
            MakerParam::Untracked => "untracked",
            MakerParam::Unknown => "unknown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_by_contract_and_parameter() {
        let parse = |name| MakerParam::parse(name).unwrap();
        assert_eq!(parse("SPOTTER.ilks.mat"), MakerParam::Mat);
        assert_eq!(parse("mat"), MakerParam::Mat);
        assert_eq!(parse("DOG.ilks.chop"), MakerParam::DogChop);
        assert_eq!(parse("CAT.chop"), MakerParam::CatChop);
        assert_eq!(parse("DOG.Hole"), MakerParam::GlobalHole);
        assert_eq!(parse("CLIPPER.buf"), MakerParam::ClipperBuf);
        assert_eq!(parse("buf"), MakerParam::Buf);
        assert_eq!(parse("FLIPPER.beg"), MakerParam::Untracked);
        assert_eq!(parse("chop"), MakerParam::Chop);
        assert_eq!(parse("hole"), MakerParam::Hole);
        assert_eq!(parse("JUG.duty_per_second"), MakerParam::DutyPerSecond);
        assert_eq!(parse("Hole"), MakerParam::Unknown);
        assert_eq!(parse("VOW.bump"), MakerParam::Unknown);
        for param in MakerParam::ALL {
            let id = param.id(cascade_events::Protocol::Maker);
            assert_eq!(
                MakerParam::from_id(id, cascade_events::Protocol::Maker),
                Some(*param)
            );
        }
    }
}
