//! Which asset, quote and precision a Chainlink feed reports: a small table from a feeds file,
//! command-line flags, and built-in defaults for the feeds cascade ships examples of.
//!
//! Feeds file format (TOML, `--feeds FILE`):
//!
//! ```toml
//! [[feed]]
//! address = "0x5f4eC3Df9cbd43714FE2740f5E3616155c5b8419"   # proxy or aggregator
//! asset = "ETH"
//! quote = "USD"
//! decimals = 8
//!
//! [[feed]]
//! address = "0x37bC7498f4FF12C19678ee8fE19d713b87F6a9e6"   # the aggregator that logs answers
//! proxy = "0x5f4eC3Df9cbd43714FE2740f5E3616155c5b8419"     # the proxy it answers for
//! asset = "ETH"
//! quote = "USD"
//! decimals = 8
//! ```
//!
//! `proxy`: an aggregator's `AnswerUpdated` logs come from the aggregator, while readers
//! (`AaveOracle`'s sources, Chainlink's feed list, `getRoundData` dumps) name the proxy in front
//! of it; with `proxy` given, the aggregator's answers are recorded as the proxy's (feed = the
//! proxy's address).
//!
//! Must never: guess decimals for a feed nobody described; an unknown feed is an error that says
//! which flags to give.

use std::collections::BTreeMap;
use std::path::Path;

use cascade_events::{Address, Id};
use serde::Deserialize;

use crate::error::IngestError;

/// What a feed reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Feed {
    /// The asset priced.
    pub asset: Id,
    /// The unit of the price.
    pub quote: Id,
    /// Decimals of the answer.
    pub decimals: u8,
    /// The proxy this aggregator answers for, when the table says so.
    pub proxy: Option<Address>,
}

/// Built-in feeds: the Ethereum mainnet proxies of the `chainlink/` files in the shared data
/// (addresses as in their file names and in Chainlink's published feed list).
const BUILT_IN: [(&str, &str, &str, u8); 3] = [
    (
        "0x5f4eC3Df9cbd43714FE2740f5E3616155c5b8419",
        "ETH",
        "USD",
        8,
    ),
    (
        "0xF4030086522a5bEEa4988F8cA5B36dbC97BeE88c",
        "BTC",
        "USD",
        8,
    ),
    (
        "0x86392dC19c0b719886221c78AB11eb8Cf5c52812",
        "stETH",
        "ETH",
        18,
    ),
];

/// A lookup table of feeds by address.
#[derive(Clone, Debug, Default)]
pub struct FeedTable {
    feeds: BTreeMap<Address, Feed>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedsFile {
    #[serde(rename = "feed", default)]
    feeds: Vec<FeedEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedEntry {
    address: String,
    asset: String,
    quote: String,
    decimals: u8,
    proxy: Option<String>,
}

impl FeedTable {
    /// The built-in feeds only.
    pub fn built_in() -> Self {
        let mut table = FeedTable::default();
        for (address, asset, quote, decimals) in BUILT_IN {
            if let (Ok(address), Ok(asset), Ok(quote)) =
                (address.parse(), asset.parse(), quote.parse())
            {
                table.feeds.insert(
                    address,
                    Feed {
                        asset,
                        quote,
                        decimals,
                        proxy: None,
                    },
                );
            }
        }
        table
    }

    /// The built-in feeds, overridden and extended by a feeds file.
    pub fn with_file(path: &Path) -> Result<Self, IngestError> {
        let text = std::fs::read_to_string(path).map_err(|source| IngestError::Io {
            path: path.to_owned(),
            source,
        })?;
        let error = |message: String| IngestError::Source {
            path: path.to_owned(),
            message,
        };
        let file: FeedsFile = toml::from_str(&text)
            .map_err(|e| error(cascade_events::clip(&e.to_string()).into()))?;
        let mut table = Self::built_in();
        for entry in file.feeds {
            let address: Address = entry.address.parse().map_err(|_| {
                error(format!(
                    "feed address {} is not an address",
                    cascade_events::Excerpt(&entry.address)
                ))
            })?;
            let asset = entry
                .asset
                .parse()
                .map_err(|e| error(format!("asset: {e}")))?;
            let quote = entry
                .quote
                .parse()
                .map_err(|e| error(format!("quote: {e}")))?;
            let proxy = entry
                .proxy
                .map(|proxy| {
                    proxy.parse().map_err(|_| {
                        error(format!(
                            "feed proxy {} is not an address",
                            cascade_events::Excerpt(&proxy)
                        ))
                    })
                })
                .transpose()?;
            table.feeds.insert(
                address,
                Feed {
                    asset,
                    quote,
                    decimals: entry.decimals,
                    proxy,
                },
            );
        }
        Ok(table)
    }

    /// The feed at `address`, if described.
    pub fn get(&self, address: &Address) -> Option<Feed> {
        self.feeds.get(address).copied()
    }
}

/// The first `0x` + 40 hex digits in a file name (`eth-usd_0x5f4e….csv`).
pub fn address_in_name(path: &Path) -> Option<Address> {
    let name = path.file_name()?.to_string_lossy();
    let bytes = name.as_bytes();
    (0..bytes.len().saturating_sub(41)).find_map(|start| {
        let candidate = name.get(start..start + 42)?;
        let is_hex = candidate[2..].bytes().all(|b| b.is_ascii_hexdigit());
        (candidate.starts_with("0x") && is_hex)
            .then(|| candidate.parse().ok())
            .flatten()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_is_found_in_file_names() {
        let path = Path::new("data/eth-usd_0x5f4eC3Df9cbd43714FE2740f5E3616155c5b8419.csv");
        let address = address_in_name(path).unwrap();
        let feed = FeedTable::built_in().get(&address).unwrap();
        assert_eq!(
            (feed.asset, feed.quote, feed.decimals),
            (Id::name("ETH"), Id::name("USD"), 8)
        );
        assert_eq!(address_in_name(Path::new("prices.csv")), None);
        assert_eq!(address_in_name(Path::new("0x12.csv")), None);
    }

    #[test]
    fn a_feeds_file_extends_the_table() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("feeds.toml");
        std::fs::write(
            &path,
            "[[feed]]\naddress = \"0x0000000000000000000000000000000000000001\"\nasset = \"LINK\"\nquote = \"ETH\"\ndecimals = 18\n",
        )
        .unwrap();
        let table = FeedTable::with_file(&path).unwrap();
        let feed = table.get(&Address::with_last_byte(1)).unwrap();
        assert_eq!((feed.asset, feed.proxy), (Id::name("LINK"), None));
        std::fs::write(
            &path,
            "[[feed]]\naddress = \"0x0000000000000000000000000000000000000001\"\nproxy = \"0x0000000000000000000000000000000000000002\"\nasset = \"LINK\"\nquote = \"ETH\"\ndecimals = 18\n",
        )
        .unwrap();
        let feed = FeedTable::with_file(&path)
            .unwrap()
            .get(&Address::with_last_byte(1))
            .unwrap();
        assert_eq!(feed.proxy, Some(Address::with_last_byte(2)));
        std::fs::write(
            &path,
            "[[feed]]\naddress = \"0x0000000000000000000000000000000000000001\"\nproxy = \"0x12\"\nasset = \"LINK\"\nquote = \"ETH\"\ndecimals = 18\n",
        )
        .unwrap();
        assert!(
            FeedTable::with_file(&path)
                .unwrap_err()
                .to_string()
                .contains("feed proxy")
        );
        std::fs::write(
            &path,
            "[[feed]]\naddress = \"nope\"\nasset = \"A\"\nquote = \"B\"\ndecimals = 1\n",
        )
        .unwrap();
        assert!(
            FeedTable::with_file(&path)
                .unwrap_err()
                .to_string()
                .contains("not an address")
        );
    }
}
