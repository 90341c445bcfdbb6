//! The entry: the unit QMDB appends to a shard's log.
//!
//! Wire layout (little-endian integers), hashed as a whole to form a twig leaf:
//!
//! | offset | size | field |
//! |---|---|---|
//! | 0 | 4 | total length of the entry in bytes |
//! | 4 | 32 | key hash |
//! | 36 | 32 | next key hash (the smallest live key above this one in the shard) |
//! | 68 | 8 | version: `height << 24 | op index` |
//! | 76 | 8 | serial number (position in the shard's sequence of entries) |
//! | 84 | 4 | value length `v` |
//! | 88 | 2 | number `d` of deactivated serial numbers |
//! | 90 | v | value |
//! | 90 + v | 8·d | serial numbers this entry deactivates |

use crate::KeyHash;

/// Bytes before the value.
pub const ENTRY_HEADER_LEN: usize = 90;
/// Largest value an entry may hold (contract code is at most 24 KiB on mainnet; genesis
/// allocations may be larger, so this leaves generous room while bounding a corrupt length).
pub const MAX_VALUE_LEN: usize = 1 << 24;
/// Most serial numbers one entry may deactivate.
pub const MAX_DEACTIVATED: usize = u16::MAX as usize;

/// A decoded entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The key hash this entry files a value under.
    pub key: KeyHash,
    /// The next live key hash in the shard's sorted order.
    pub next: KeyHash,
    /// `height << 24 | op index` of the write that produced the value.
    pub version: u64,
    /// Position in the shard's entry sequence.
    pub serial: u64,
    /// The stored value.
    pub value: Vec<u8>,
    /// Serial numbers of older entries this entry makes inactive.
    pub deactivated: Vec<u64>,
}

/// Why bytes are not an entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// Fewer bytes than the header or than the declared length.
    #[error("entry truncated: {have} bytes, need {need}")]
    Truncated {
        /// Bytes available.
        have: usize,
        /// Bytes the entry needs.
        need: usize,
    },
    /// The declared total length disagrees with the value and deactivation counts.
    #[error("entry length {declared} disagrees with its fields ({computed})")]
    LengthMismatch {
        /// Length in the header.
        declared: usize,
        /// Length the fields imply.
        computed: usize,
    },
    /// A value longer than [`MAX_VALUE_LEN`].
    #[error("entry value of {0} bytes exceeds the limit")]
    ValueTooLong(usize),
}

impl Entry {
    /// Encoded length.
    pub fn encoded_len(&self) -> usize {
        ENTRY_HEADER_LEN + self.value.len() + 8 * self.deactivated.len()
    }

    /// Appends the wire form to `out`.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        let len = self.encoded_len();
        out.reserve(len);
        out.extend_from_slice(&(len as u32).to_le_bytes());
        out.extend_from_slice(self.key.as_bytes());
        out.extend_from_slice(self.next.as_bytes());
        out.extend_from_slice(&self.version.to_le_bytes());
        out.extend_from_slice(&self.serial.to_le_bytes());
        out.extend_from_slice(&(self.value.len() as u32).to_le_bytes());
        out.extend_from_slice(&(self.deactivated.len() as u16).to_le_bytes());
        out.extend_from_slice(&self.value);
        for serial in &self.deactivated {
            out.extend_from_slice(&serial.to_le_bytes());
        }
    }

    /// The wire form.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.encoded_len());
        self.encode_into(&mut out);
        out
    }

    /// Decodes one entry from the front of `bytes`; returns it and its length. Never panics.
    pub fn decode(bytes: &[u8]) -> Result<(Self, usize), EntryError> {
        let (len, value_len) = checked_header(bytes)?;
        if bytes.len() < len {
            return Err(EntryError::Truncated { have: bytes.len(), need: len });
        }
        let value_end = ENTRY_HEADER_LEN + value_len;
        let deactivated = bytes[value_end..len]
            .chunks_exact(8)
            .map(|chunk| u64::from_le_bytes(chunk.try_into().expect("8-byte chunk")))
            .collect();
        let entry = Entry {
            key: KeyHash(bytes[4..36].try_into().expect("32 bytes")),
            next: KeyHash(bytes[36..68].try_into().expect("32 bytes")),
            version: u64_at(bytes, 68),
            serial: u64_at(bytes, 76),
            value: bytes[ENTRY_HEADER_LEN..value_end].to_vec(),
            deactivated,
        };
        Ok((entry, len))
    }
}

/// The total length an entry declares in its first 4 bytes, checked against the header size and
/// the largest possible entry.
pub fn declared_len(bytes: &[u8]) -> Result<usize, EntryError> {
    if bytes.len() < ENTRY_HEADER_LEN {
        return Err(EntryError::Truncated { have: bytes.len(), need: ENTRY_HEADER_LEN });
    }
    let len = u32_at(bytes, 0) as usize;
    let max = ENTRY_HEADER_LEN + MAX_VALUE_LEN + 8 * MAX_DEACTIVATED;
    if !(ENTRY_HEADER_LEN..=max).contains(&len) {
        return Err(EntryError::LengthMismatch { declared: len, computed: ENTRY_HEADER_LEN });
    }
    Ok(len)
}

/// The entry's total length and value length, from its header alone (`bytes` may stop after
/// it), once the header's fields agree with each other.
pub fn checked_header(bytes: &[u8]) -> Result<(usize, usize), EntryError> {
    let len = declared_len(bytes)?;
    let value_len = u32_at(bytes, 84) as usize;
    let deactivated_count = u16::from_le_bytes([bytes[88], bytes[89]]) as usize;
    if value_len > MAX_VALUE_LEN {
        return Err(EntryError::ValueTooLong(value_len));
    }
    let computed = ENTRY_HEADER_LEN + value_len + 8 * deactivated_count;
    if computed != len {
        return Err(EntryError::LengthMismatch { declared: len, computed });
    }
    Ok((len, value_len))
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn round_trips() {
        let entry = Entry {
            key: KeyHash([1; 32]),
            next: KeyHash([2; 32]),
            version: 7 << 24 | 3,
            serial: 99,
            value: vec![5; 32],
            deactivated: vec![4, 8],
        };
        let bytes = entry.encode();
        assert_eq!(bytes.len(), entry.encoded_len());
        assert_eq!(Entry::decode(&bytes), Ok((entry, bytes.len())));
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = Entry::decode(&bytes);
        }
    }
}
