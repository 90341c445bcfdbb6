//! Versioned, length-checked wire formats for commitments and chunks.
//!
//! Every integer is little-endian. Decoders check each length against the bytes that are left
//! before allocating, reject unknown magic, versions and profiles, and reject bytes after the
//! end, so decoding arbitrary input returns an error and never panics or over-allocates.
//!
//! ```text
//! Commitment, version 1
//!   magic "ZDAC" (4) | version 1 (1) | profile (1: fast, 2: semi-avid) | n u32 | k u32
//!   | block length u64
//!   fast:      | shard length u32 | root [32]
//!   semi-avid: | rows u32 | k column commitments, compressed G1 [48 each] | digest [32]
//!
//! Chunk, version 1
//!   magic "ZDAK" (4) | version 1 (1) | profile (1) | index u32
//!   fast:      | data length u32 | data | proof length u8 | proof hashes [32 each]
//!   semi-avid: | rows u32 | coded column, canonical scalars [32 each, little-endian]
//! ```

use super::{fast, semi_avid};
use super::{Chunk, Commitment, Profile, Result, SvidError};

/// Magic bytes opening a commitment.
pub const COMMITMENT_MAGIC: &[u8; 4] = b"ZDAC";
/// Magic bytes opening a chunk.
pub const CHUNK_MAGIC: &[u8; 4] = b"ZDAK";
/// The wire format version this build writes and reads.
pub const WIRE_VERSION: u8 = 1;

impl Profile {
    /// The profile's byte on the wire.
    pub const fn wire_byte(self) -> u8 {
        match self {
            Profile::Fast => 1,
            Profile::SemiAvid => 2,
        }
    }

    fn from_wire_byte(what: &'static str, found: u8) -> Result<Self> {
        match found {
            1 => Ok(Profile::Fast),
            2 => Ok(Profile::SemiAvid),
            found => Err(SvidError::UnknownProfile { what, found }),
        }
    }
}

/// Appends little-endian fields to a buffer.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    pub(crate) bytes: Vec<u8>,
}

impl Writer {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self { bytes: Vec::with_capacity(capacity) }
    }

    pub(crate) fn header(&mut self, magic: &[u8; 4], profile: Profile) {
        self.bytes.extend_from_slice(magic);
        self.bytes.push(WIRE_VERSION);
        self.bytes.push(profile.wire_byte());
    }

    pub(crate) fn u8(&mut self, value: u8) {
        self.bytes.push(value);
    }

    pub(crate) fn u32(&mut self, value: u32) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    pub(crate) fn u64(&mut self, value: u64) {
        self.bytes.extend_from_slice(&value.to_le_bytes());
    }

    pub(crate) fn bytes(&mut self, value: &[u8]) {
        self.bytes.extend_from_slice(value);
    }
}

/// Reads little-endian fields, checking each length against what is left.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    offset: usize,
    what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], what: &'static str) -> Self {
        Self { bytes, offset: 0, what }
    }

    /// Reads magic, version and profile.
    pub(crate) fn header(&mut self, magic: &'static [u8; 4]) -> Result<Profile> {
        let found: [u8; 4] = self.array()?;
        if &found != magic {
            let expected = if magic == COMMITMENT_MAGIC { "ZDAC" } else { "ZDAK" };
            return Err(SvidError::BadMagic { what: self.what, expected, found });
        }
        let version = self.u8()?;
        if version != WIRE_VERSION {
            return Err(SvidError::UnsupportedVersion {
                what: self.what,
                found: version,
                supported: WIRE_VERSION,
            });
        }
        Profile::from_wire_byte(self.what, self.u8()?)
    }

    /// The next `len` bytes; `len` is checked against what is left before anything is taken.
    pub(crate) fn take(&mut self, len: u64) -> Result<&'a [u8]> {
        let available = self.bytes.len() - self.offset;
        match usize::try_from(len) {
            Ok(len) if len <= available => {
                let slice = &self.bytes[self.offset..self.offset + len];
                self.offset += len;
                Ok(slice)
            }
            _ => Err(SvidError::Truncated {
                what: self.what,
                offset: self.offset,
                needed: len,
                available,
            }),
        }
    }

    pub(crate) fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let slice = self.take(N as u64)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    pub(crate) fn u8(&mut self) -> Result<u8> {
        Ok(self.array::<1>()?[0])
    }

    pub(crate) fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    pub(crate) fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// Bytes left unread.
    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.offset
    }

    /// Fails on anything after the end of the encoding.
    pub(crate) fn finish(self) -> Result<()> {
        match self.remaining() {
            0 => Ok(()),
            extra => Err(SvidError::TrailingBytes { what: self.what, extra }),
        }
    }
}

impl Commitment {
    /// The commitment's wire bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Commitment::Fast(commitment) => commitment.to_bytes(),
            Commitment::SemiAvid(commitment) => commitment.to_bytes(),
        }
    }

    /// Decodes and validates a commitment: header fields consistent, points in the subgroup,
    /// digest intact. Never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut reader = Reader::new(bytes, "commitment");
        let commitment = match reader.header(COMMITMENT_MAGIC)? {
            Profile::Fast => Commitment::Fast(fast::FastCommitment::read(&mut reader)?),
            Profile::SemiAvid => {
                Commitment::SemiAvid(semi_avid::SemiAvidCommitment::read(&mut reader)?)
            }
        };
        reader.finish()?;
        Ok(commitment)
    }
}

/// A chunk's wire bytes before its payload: magic, version, profile, index, and the profile's
/// length field.
pub(crate) const CHUNK_FIXED_BYTES: u64 = 4 + 1 + 1 + 4 + 4;

impl Chunk {
    /// The chunk's wire bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        match self {
            Chunk::Fast(chunk) => chunk.to_bytes(),
            Chunk::SemiAvid(chunk) => chunk.to_bytes(),
        }
    }

    /// Length of the chunk's wire encoding, without encoding it.
    pub fn wire_len(&self) -> u64 {
        match self {
            Chunk::Fast(chunk) => {
                CHUNK_FIXED_BYTES + chunk.data.len() as u64 + 1 + 32 * chunk.proof.len() as u64
            }
            Chunk::SemiAvid(chunk) => {
                CHUNK_FIXED_BYTES + (semi_avid::SCALAR_BYTES * chunk.column.len()) as u64
            }
        }
    }

    /// Decodes a chunk (its shape only; [`super::verify_chunk`] checks it against a commitment).
    /// Never panics.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let mut reader = Reader::new(bytes, "chunk");
        let chunk = match reader.header(CHUNK_MAGIC)? {
            Profile::Fast => Chunk::Fast(fast::FastChunk::read(&mut reader)?),
            Profile::SemiAvid => Chunk::SemiAvid(semi_avid::SemiAvidChunk::read(&mut reader)?),
        };
        reader.finish()?;
        Ok(chunk)
    }
}
