//! Typed protocol parameters.
//!
//! Each protocol names its parameters in one enum implementing [`ProtocolParam`]. A name written
//! by a person or a log (`mat`, `DOG.ilks.chop`, `liquidationThreshold`) is parsed once, where it
//! enters (a scenario file, a `--params` file, a governance event), into that enum; the value
//! travels through the protocol-agnostic loop as a [`ParamId`] inside a [`ParamSetting`], and the
//! model turns it back into its enum without reading text again.

use cascade_events::{Fixed, Id, Protocol};

use crate::EngineError;

/// One parameter of one protocol: the protocol and the parameter's place in its
/// [`ProtocolParam::ALL`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ParamId {
    /// The protocol whose parameter this is.
    pub protocol: Protocol,
    index: u8,
}

/// A parameter change as the loop hands it to a model: a scenario override, a `--params` entry,
/// the oracle delay of a scenario.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamSetting {
    /// Which parameter.
    pub param: ParamId,
    /// The ilk, reserve or cToken it applies to; `None` for a protocol-wide parameter.
    pub market: Option<Id>,
    /// The value in the human units of [`cascade_events::ParamChange::value`].
    pub value: Fixed,
}

impl ParamSetting {
    /// The error for a setting handed to a model of another protocol.
    pub fn foreign(&self) -> EngineError {
        EngineError::InvalidParam {
            param: format!("{}#{}", self.param.protocol.name(), self.param.index),
            value: self.value.to_string(),
            reason: "not a parameter of this protocol",
        }
    }
}

/// The parameters of one protocol, as one enum.
pub trait ProtocolParam: Copy + Eq + std::fmt::Debug + 'static {
    /// Every parameter, in a fixed order (a [`ParamId`] is a place in it).
    const ALL: &'static [Self];

    /// The parameter a name denotes, as logs, scenario tables and `--params` files write it.
    fn parse(name: &str) -> Option<Self>;

    /// The name it is reported under.
    fn name(self) -> &'static str;

    /// The parameter as `protocol`'s [`ParamId`].
    fn id(self, protocol: Protocol) -> ParamId {
        let index = Self::ALL
            .iter()
            .position(|p| *p == self)
            .expect("ALL lists every parameter");
        ParamId {
            protocol,
            index: u8::try_from(index).expect("a protocol has fewer than 256 parameters"),
        }
    }

    /// The parameter `id` denotes, when it is one of `protocol`'s.
    fn from_id(id: ParamId, protocol: Protocol) -> Option<Self> {
        if id.protocol != protocol {
            return None;
        }
        Self::ALL.get(usize::from(id.index)).copied()
    }
}
