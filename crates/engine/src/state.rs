//! The canonical byte encoding of engine state: checkpoints and the state hash share it.
//!
//! Fixed-width little-endian integers, length-prefixed sequences, ids as a tag plus their bytes,
//! written in the (sorted) iteration order of the engine's `BTreeMap`s. The same state always
//! encodes to the same bytes, so `blake3` over them is a state hash. Never encode anything whose
//! order depends on hashing or memory addresses.

use cascade_events::{Fixed, Id, Symbol, Timestamp, U256};

use crate::EngineError;

/// Appends state to a byte buffer in the canonical encoding.
#[derive(Default)]
pub struct StateWriter {
    bytes: Vec<u8>,
}

impl StateWriter {
    /// An empty writer.
    pub fn new() -> Self {
        Self::default()
    }

    /// The bytes written so far.
    pub fn into_bytes(self) -> Vec<u8> {
        self.bytes
    }

    /// The bytes written so far, borrowed.
    pub fn bytes(&self) -> &[u8] {
        &self.bytes
    }

    /// One byte.
    #[inline]
    pub fn u8(&mut self, value: u8) {
        self.bytes.push(value);
    }

    /// A boolean as one byte (0 or 1).
    #[inline]
    pub fn bool(&mut self, value: bool) {
        self.u8(u8::from(value));
    }

    /// An optional value: `false`, or `true` and the value as `write` writes it.
    #[inline]
    pub fn option<T>(&mut self, value: Option<&T>, write: impl FnOnce(&mut Self, &T)) {
        match value {
            Some(value) => {
                self.bool(true);
                write(self, value);
            }
            None => self.bool(false),
        }
    }

    /// Eight bytes, little-endian.
    #[inline]
    pub fn u64(&mut self, value: u64) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    /// Eight bytes, little-endian, two's complement.
    #[inline]
    pub fn i64(&mut self, value: i64) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    /// A length or count.
    #[inline]
    pub fn count(&mut self, value: usize) {
        self.u64(value as u64);
    }

    /// Thirty-two bytes, little-endian.
    #[inline]
    pub fn u256(&mut self, value: U256) {
        self.bytes.extend_from_slice(&value.to_le_bytes::<32>());
    }

    /// A timestamp as its seconds.
    #[inline]
    pub fn time(&mut self, value: Timestamp) {
        self.i64(value.0);
    }

    /// A fixed-point number: value then decimals.
    #[inline]
    pub fn fixed(&mut self, value: &Fixed) {
        self.u256(value.value);
        self.u8(value.decimals);
    }

    /// An id: tag 0 address (20 bytes), 1 number (8 bytes), 2 name (32 bytes).
    #[inline]
    pub fn id(&mut self, value: &Id) {
        match value {
            Id::Address(address) => {
                self.u8(0);
                self.bytes.extend_from_slice(address.as_slice());
            }
            Id::Number(number) => {
                self.u8(1);
                self.u64(*number);
            }
            Id::Name(symbol) => {
                self.u8(2);
                self.bytes.extend_from_slice(symbol.as_bytes32());
            }
        }
    }

    /// Raw bytes without a length prefix (magic numbers).
    #[inline]
    pub fn bytes_raw(&mut self, value: &[u8]) {
        self.bytes.extend_from_slice(value);
    }

    /// Raw bytes with a length prefix.
    #[inline]
    pub fn blob(&mut self, value: &[u8]) {
        self.count(value.len());
        self.bytes.extend_from_slice(value);
    }
}

/// Reads state written by [`StateWriter`], failing with the byte offset on malformed input.
pub struct StateReader<'a> {
    bytes: &'a [u8],
    offset: usize,
}

impl<'a> StateReader<'a> {
    /// A reader over `bytes` from their start.
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { bytes, offset: 0 }
    }

    /// An error at the current offset.
    #[cold]
    pub fn error(&self, reason: impl Into<String>) -> EngineError {
        EngineError::BadCheckpoint {
            offset: self.offset,
            reason: reason.into(),
        }
    }

    /// Whether every byte has been read: how a section written only when it is not empty is
    /// told apart from its absence at the end of a state.
    pub fn at_end(&self) -> bool {
        self.offset == self.bytes.len()
    }

    /// Fails unless every byte was consumed.
    pub fn finish(&self) -> Result<(), EngineError> {
        if self.offset == self.bytes.len() {
            Ok(())
        } else {
            Err(self.error(format!("{} trailing bytes", self.bytes.len() - self.offset)))
        }
    }

    #[inline]
    fn take<const N: usize>(&mut self) -> Result<[u8; N], EngineError> {
        let end = self.offset + N;
        let slice = self
            .bytes
            .get(self.offset..end)
            .ok_or_else(|| self.error(format!("truncated: {N} more bytes expected")))?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        self.offset = end;
        Ok(out)
    }

    /// One byte.
    #[inline]
    pub fn u8(&mut self) -> Result<u8, EngineError> {
        Ok(self.take::<1>()?[0])
    }

    /// A boolean.
    #[inline]
    pub fn bool(&mut self) -> Result<bool, EngineError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            other => Err(self.error(format!("boolean byte {other}"))),
        }
    }

    /// An optional value written by [`StateWriter::option`].
    #[inline]
    pub fn option<T>(
        &mut self,
        read: impl FnOnce(&mut Self) -> Result<T, EngineError>,
    ) -> Result<Option<T>, EngineError> {
        if self.bool()? {
            read(self).map(Some)
        } else {
            Ok(None)
        }
    }

    /// Eight bytes, little-endian.
    #[inline]
    pub fn u64(&mut self) -> Result<u64, EngineError> {
        Ok(u64::from_le_bytes(self.take::<8>()?))
    }

    /// Eight bytes, little-endian, two's complement.
    #[inline]
    pub fn i64(&mut self) -> Result<i64, EngineError> {
        Ok(i64::from_le_bytes(self.take::<8>()?))
    }

    /// A length or count, refused when larger than the bytes left could possibly hold.
    #[inline]
    pub fn count(&mut self) -> Result<usize, EngineError> {
        let value = self.u64()?;
        let left = (self.bytes.len() - self.offset) as u64;
        if value > left {
            return Err(self.error(format!("length {value} exceeds the {left} bytes left")));
        }
        Ok(value as usize)
    }

    /// Thirty-two bytes, little-endian.
    #[inline]
    pub fn u256(&mut self) -> Result<U256, EngineError> {
        Ok(U256::from_le_bytes(self.take::<32>()?))
    }

    /// A timestamp.
    #[inline]
    pub fn time(&mut self) -> Result<Timestamp, EngineError> {
        Ok(Timestamp(self.i64()?))
    }

    /// A fixed-point number.
    #[inline]
    pub fn fixed(&mut self) -> Result<Fixed, EngineError> {
        let value = self.u256()?;
        let decimals = self.u8()?;
        Ok(Fixed::new(value, decimals))
    }

    /// An id.
    #[inline]
    pub fn id(&mut self) -> Result<Id, EngineError> {
        match self.u8()? {
            0 => Ok(Id::Address(cascade_events::Address::new(
                self.take::<20>()?,
            ))),
            1 => Ok(Id::Number(self.u64()?)),
            2 => {
                let bytes = self.take::<32>()?;
                Symbol::from_bytes32(bytes)
                    .map(Id::Name)
                    .map_err(|error| self.error(error.to_string()))
            }
            tag => Err(self.error(format!("unknown id tag {tag}"))),
        }
    }

    /// `count` raw bytes without a length prefix.
    #[inline]
    pub fn raw(&mut self, count: usize) -> Result<&'a [u8], EngineError> {
        let start = self.offset;
        let slice = self
            .bytes
            .get(start..start + count)
            .ok_or_else(|| self.error(format!("truncated: {count} more bytes expected")))?;
        self.offset += count;
        Ok(slice)
    }

    /// Raw bytes with a length prefix.
    #[inline]
    pub fn blob(&mut self) -> Result<&'a [u8], EngineError> {
        let len = self.count()?;
        let start = self.offset;
        self.offset += len;
        Ok(&self.bytes[start..start + len])
    }
}

/// The blake3 hash of canonical state bytes, as lower-case hex.
pub fn hash_hex(bytes: &[u8]) -> String {
    blake3::hash(bytes).to_hex().to_string()
}

/// For tests: encodes `value`, decodes the bytes (all of them) and checks the decoded value
/// encodes to the same bytes; returns it.
#[cfg(test)]
pub(crate) fn round_trip<T>(
    value: &T,
    encode: impl Fn(&T, &mut StateWriter),
    decode: impl Fn(&mut StateReader<'_>) -> Result<T, EngineError>,
) -> T {
    let mut writer = StateWriter::new();
    encode(value, &mut writer);
    let bytes = writer.into_bytes();
    let mut reader = StateReader::new(&bytes);
    let back = decode(&mut reader).expect("decodes");
    reader.finish().expect("no bytes left");
    let mut again = StateWriter::new();
    encode(&back, &mut again);
    assert_eq!(again.into_bytes(), bytes, "re-encodes to the same bytes");
    back
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_field_round_trips_and_truncation_names_the_offset() {
        let mut writer = StateWriter::new();
        writer.u8(7);
        writer.bool(true);
        writer.u64(u64::MAX);
        writer.i64(-5);
        writer.u256(U256::MAX - U256::from(3u8));
        writer.time(Timestamp(1_621_382_400));
        writer.fixed(&Fixed::new(U256::from(13u8), 1));
        writer.id(&Id::Number(21348));
        writer.id(&Id::name("ETH-B"));
        writer.id(&"0x00000000000000000000000000000000000000aa"
            .parse()
            .unwrap());
        writer.blob(b"abc");
        let bytes = writer.into_bytes();

        let mut reader = StateReader::new(&bytes);
        assert_eq!(reader.u8().unwrap(), 7);
        assert!(reader.bool().unwrap());
        assert_eq!(reader.u64().unwrap(), u64::MAX);
        assert_eq!(reader.i64().unwrap(), -5);
        assert_eq!(reader.u256().unwrap(), U256::MAX - U256::from(3u8));
        assert_eq!(reader.time().unwrap(), Timestamp(1_621_382_400));
        assert_eq!(reader.fixed().unwrap(), Fixed::new(U256::from(13u8), 1));
        assert_eq!(reader.id().unwrap(), Id::Number(21348));
        assert_eq!(reader.id().unwrap(), Id::name("ETH-B"));
        assert_eq!(
            reader.id().unwrap().to_string(),
            "0x00000000000000000000000000000000000000aa"
        );
        assert_eq!(reader.blob().unwrap(), b"abc");
        reader.finish().unwrap();

        let mut short = StateReader::new(&bytes[..5]);
        short.u8().unwrap();
        short.bool().unwrap();
        match short.u64() {
            Err(EngineError::BadCheckpoint { offset, .. }) => assert_eq!(offset, 2),
            other => panic!("expected a truncation error, got {other:?}"),
        }
    }
}
