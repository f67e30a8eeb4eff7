//! Identities of assets, accounts, markets and feeds.
//!
//! Sources name things differently: an `eth_getLogs` dump has addresses, the Maker Flipside export
//! has vault numbers and ilk names, price exports have ticker symbols. [`Id`] keeps each as what it
//! is instead of forcing one into the shape of another, and orders them totally so they can key
//! `BTreeMap`s whose iteration reaches output.

use std::fmt;
use std::str::FromStr;

use alloy_primitives::Address;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use wincode::{SchemaRead, SchemaWrite};

/// A short name stored like a Solidity `bytes32` string: UTF-8, right-padded with zero bytes.
///
/// This is exactly how Maker stores ilk names (`"ETH-B"`), so a `Symbol` can be compared with
/// on-chain values byte for byte. Names longer than 32 bytes or containing a NUL byte are rejected
/// when built, so every `Symbol` round-trips through its text form.
///
/// Ordered by bytes, like the `[u8; 32]` it holds.
#[derive(Clone, Copy, PartialEq, Eq, Hash, SchemaWrite, SchemaRead)]
pub struct Symbol([u8; 32]);

/// Compares four big-endian words, which orders exactly as the bytes do: the engine's ordered
/// maps compare market and asset names at every lookup, and a byte slice comparison is a call to
/// `memcmp`.
impl Ord for Symbol {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        let words = |bytes: &[u8; 32]| -> [u64; 4] {
            std::array::from_fn(|at| {
                let mut word = [0u8; 8];
                word.copy_from_slice(&bytes[at * 8..at * 8 + 8]);
                u64::from_be_bytes(word)
            })
        };
        words(&self.0).cmp(&words(&other.0))
    }
}

impl PartialOrd for Symbol {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Why a text cannot be a [`Symbol`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SymbolError {
    /// The text is longer than the 32 bytes a `bytes32` holds.
    #[error("name {} is longer than 32 bytes", crate::Excerpt(.0))]
    TooLong(String),
    /// The text is empty or contains a NUL byte, which the padding could not tell apart.
    #[error("name {} is empty or contains a NUL byte", crate::Excerpt(.0))]
    Unrepresentable(String),
}

impl Symbol {
    /// Builds a symbol from text; see [`Symbol`] for the rules.
    pub fn new(name: &str) -> Result<Self, SymbolError> {
        let bytes = name.as_bytes();
        if bytes.len() > 32 {
            return Err(SymbolError::TooLong(name.to_owned()));
        }
        if bytes.is_empty() || bytes.contains(&0) {
            return Err(SymbolError::Unrepresentable(name.to_owned()));
        }
        let mut padded = [0u8; 32];
        padded[..bytes.len()].copy_from_slice(bytes);
        Ok(Self(padded))
    }

    /// The name without its padding.
    pub fn as_str(&self) -> &str {
        let len = self.0.iter().position(|&b| b == 0).unwrap_or(32);
        // Construction only accepts `&str`, and decoding validates, so the prefix is UTF-8.
        std::str::from_utf8(&self.0[..len]).unwrap_or("")
    }

    /// The 32 padded bytes, as a contract would hold them.
    pub fn as_bytes32(&self) -> &[u8; 32] {
        &self.0
    }

    /// Builds a symbol from raw padded bytes (e.g. an ilk read from a log topic), checking that
    /// the bytes are UTF-8 followed only by zero padding.
    pub fn from_bytes32(bytes: [u8; 32]) -> Result<Self, SymbolError> {
        let len = bytes.iter().position(|&b| b == 0).unwrap_or(32);
        let text = std::str::from_utf8(&bytes[..len])
            .map_err(|_| SymbolError::Unrepresentable(format!("{bytes:02x?}")))?;
        if len == 0 || bytes[len..].iter().any(|&b| b != 0) {
            return Err(SymbolError::Unrepresentable(text.to_owned()));
        }
        Ok(Self(bytes))
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Symbol({:?})", self.as_str())
    }
}

impl FromStr for Symbol {
    type Err = SymbolError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::new(s)
    }
}

impl Serialize for Symbol {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Symbol {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::new(&text).map_err(serde::de::Error::custom)
    }
}

/// The 20 bytes of an EVM address as they are encoded in a record.
#[derive(SchemaWrite, SchemaRead)]
pub(crate) struct AddressWire([u8; 20]);

impl From<&Address> for AddressWire {
    fn from(address: &Address) -> Self {
        Self(address.0.0)
    }
}

impl From<AddressWire> for Address {
    fn from(wire: AddressWire) -> Self {
        Address::new(wire.0)
    }
}

/// The identity of an asset, account, market or feed.
///
/// Text form (used in JSON, scenario files and the CLI):
/// - `0x` followed by 40 hex digits: [`Id::Address`];
/// - `#` followed by decimal digits: [`Id::Number`] (a Maker vault is `#16175`);
/// - anything else: [`Id::Name`].
///
/// Ordering is by variant first (addresses, then numbers, then names), then by value.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, SchemaWrite, SchemaRead)]
pub enum Id {
    /// An EVM address: a token, a user, a pool, a cToken, an aggregator.
    Address(#[wincode(with = "wincode::adapter::FromInto<AddressWire, Address>")] Address),
    /// A number the source uses as identity where no address is recorded: Maker vault (CDP)
    /// numbers, the only key shared by every file of the Maker Flipside export.
    Number(u64),
    /// A name: a Maker ilk (`ETH-B`), a reserve or ticker symbol (`WETH`), a quote unit (`USD`).
    Name(Symbol),
}

impl Id {
    /// A name id; panics only on names that are not valid [`Symbol`]s, so it is meant for
    /// literals (`Id::name("USD")`). Parse user input with [`str::parse`] instead.
    pub fn name(name: &str) -> Self {
        match Symbol::new(name) {
            Ok(symbol) => Id::Name(symbol),
            Err(error) => panic!("invalid literal name: {error}"),
        }
    }

    /// The address, if this id is one.
    pub fn as_address(&self) -> Option<Address> {
        match self {
            Id::Address(address) => Some(*address),
            _ => None,
        }
    }
}

impl From<Address> for Id {
    fn from(address: Address) -> Self {
        Id::Address(address)
    }
}

impl From<Symbol> for Id {
    fn from(symbol: Symbol) -> Self {
        Id::Name(symbol)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Lower-case hex: stable and diff-friendly, unlike EIP-55 mixed case.
            Id::Address(address) => write!(f, "{address:#x}"),
            Id::Number(number) => write!(f, "#{number}"),
            Id::Name(symbol) => f.write_str(symbol.as_str()),
        }
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Id({self})")
    }
}

impl FromStr for Id {
    type Err = SymbolError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        if text.len() == 42
            && (text.starts_with("0x") || text.starts_with("0X"))
            && let Ok(address) = text.parse::<Address>()
        {
            return Ok(Id::Address(address));
        }
        if let Some(digits) = text.strip_prefix('#')
            && let Ok(number) = digits.parse::<u64>()
        {
            return Ok(Id::Number(number));
        }
        Symbol::new(text).map(Id::Name)
    }
}

impl Serialize for Id {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Id {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn symbols_order_as_their_bytes(a in "[ -~]{1,32}", b in "[ -~]{1,32}") {
            let (x, y) = (Symbol::new(&a).unwrap(), Symbol::new(&b).unwrap());
            prop_assert_eq!(x.cmp(&y), x.as_bytes32().cmp(y.as_bytes32()));
            prop_assert_eq!(x.cmp(&y), a.as_bytes().cmp(b.as_bytes()));
        }
    }

    #[test]
    fn symbols_sharing_a_prefix_order_shorter_first() {
        let names = ["ETH", "ETH-A", "ETH-B", "ETH-BA", "ETHB", "USDC", "USDC.e"];
        let mut symbols: Vec<Symbol> = names
            .iter()
            .rev()
            .map(|n| Symbol::new(n).unwrap())
            .collect();
        symbols.sort();
        let sorted: Vec<&str> = symbols.iter().map(Symbol::as_str).collect();
        assert_eq!(sorted, names);
    }

    #[test]
    fn symbol_is_padded_like_bytes32() {
        let ilk = Symbol::new("ETH-B").unwrap();
        let mut expected = [0u8; 32];
        expected[..5].copy_from_slice(b"ETH-B");
        assert_eq!(ilk.as_bytes32(), &expected);
        assert_eq!(Symbol::from_bytes32(expected).unwrap(), ilk);
        assert_eq!(ilk.to_string(), "ETH-B");
    }

    #[test]
    fn symbol_rejects_what_padding_cannot_represent() {
        assert!(matches!(
            Symbol::new(""),
            Err(SymbolError::Unrepresentable(_))
        ));
        assert!(matches!(
            Symbol::new("a\0b"),
            Err(SymbolError::Unrepresentable(_))
        ));
        assert!(matches!(
            Symbol::new(&"x".repeat(33)),
            Err(SymbolError::TooLong(_))
        ));
        assert!(Symbol::new(&"x".repeat(32)).is_ok());
        let mut gap = [0u8; 32];
        gap[0] = b'A';
        gap[2] = b'B';
        assert!(Symbol::from_bytes32(gap).is_err());
    }

    #[test]
    fn id_text_form_round_trips() {
        for text in [
            "0xc02aaa39b223fe8d0a0e5c4f27ead9083c756cc2",
            "#16175",
            "ETH-B",
            "WETH",
            "#notanumber",
        ] {
            let id: Id = text.parse().unwrap();
            assert_eq!(id.to_string(), text, "{id:?}");
        }
        assert!(matches!("#16175".parse::<Id>().unwrap(), Id::Number(16175)));
        assert!(matches!("0x12".parse::<Id>().unwrap(), Id::Name(_)));
    }

    #[test]
    fn ids_order_by_kind_then_value() {
        let mut ids: Vec<Id> = [
            "WETH",
            "#2",
            "0x0000000000000000000000000000000000000001",
            "#10",
        ]
        .iter()
        .map(|t| t.parse().unwrap())
        .collect();
        ids.sort();
        let texts: Vec<String> = ids.iter().map(Id::to_string).collect();
        assert_eq!(
            texts,
            [
                "0x0000000000000000000000000000000000000001",
                "#2",
                "#10",
                "WETH"
            ]
        );
    }
}
