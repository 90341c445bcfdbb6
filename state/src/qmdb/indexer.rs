//! The in-memory index of one shard: key hash → file position of the key's live entry.
//!
//! Layout, chosen to stay within 16 bytes of DRAM per live entry:
//! - 4096 buckets per shard, chosen by key-hash bits 4..16 (bits 0..4 choose the shard);
//! - each bucket is a vector of 10-byte slots sorted by key, a slot being the next 32 bits of the
//!   key hash (the tag) and a 48-bit position in the shard's log (256 TiB of addressable log);
//! - vectors grow by an eighth at a time, so the slack stays near 12.5%.
//!
//! 48 bits of the key hash (shard + bucket + tag) identify a key. Keys that share them (about
//! one pair among 16M keys) are ordered by reading their full keys from the log, so the index is
//! exact, not probabilistic. A lookup touches one bucket and costs one log read per candidate
//! slot: one read, except for an absent key whose tag collides (probability ~2^-24 at 16M keys).

use crate::{KeyHash, StateError};

/// Buckets per shard.
const BUCKETS: usize = 4096;
/// Largest position a slot can hold.
pub const MAX_POSITION: u64 = (1 << 48) - 1;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(C, packed)]
struct Slot {
    tag: u32,
    position_low: u32,
    position_high: u16,
}

impl Slot {
    #[inline]
    fn tag(&self) -> u32 {
        self.tag
    }

    #[inline]
    fn position(&self) -> u64 {
        u64::from(self.position_low) | u64::from(self.position_high) << 32
    }

    fn new(tag: u32, position: u64) -> Self {
        Slot { tag, position_low: position as u32, position_high: (position >> 32) as u16 }
    }
}

#[inline]
fn bucket_of(key: &KeyHash) -> usize {
    (usize::from(key.0[0] & 0x0f) << 8) | usize::from(key.0[1])
}

#[inline]
fn tag_of(key: &KeyHash) -> u32 {
    u32::from_be_bytes(key.0[2..6].try_into().expect("4 bytes"))
}

/// Reads the full key of the entry at a log position; used only to order keys whose 64-bit
/// prefixes collide.
pub type ResolveKey<'a> = dyn FnMut(u64) -> Result<KeyHash, StateError> + 'a;

/// The index of one shard.
#[derive(Debug)]
pub struct ShardIndex {
    buckets: Vec<Vec<Slot>>,
    len: usize,
}

impl Default for ShardIndex {
    fn default() -> Self {
        Self { buckets: vec![Vec::new(); BUCKETS], len: 0 }
    }
}

impl ShardIndex {
    /// Number of keys indexed.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Positions of every slot whose 64-bit prefix equals `key`'s: the candidates for an exact
    /// lookup (almost always zero or one).
    pub fn candidates(&self, key: &KeyHash) -> impl Iterator<Item = u64> + '_ {
        let bucket = &self.buckets[bucket_of(key)];
        let tag = tag_of(key);
        let start = bucket.partition_point(|slot| slot.tag() < tag);
        bucket[start..].iter().take_while(move |slot| slot.tag() == tag).map(Slot::position)
    }

    /// Index in `bucket` of the first slot whose key is not below `key`.
    fn lower_bound(
        bucket: &[Slot],
        key: &KeyHash,
        resolve: &mut ResolveKey<'_>,
    ) -> Result<usize, StateError> {
        let tag = tag_of(key);
        let mut index = bucket.partition_point(|slot| slot.tag() < tag);
        while index < bucket.len() && bucket[index].tag() == tag {
            if resolve(bucket[index].position())? >= *key {
                break;
            }
            index += 1;
        }
        Ok(index)
    }

    /// Adds `key` (not yet indexed) at `position`.
    pub fn insert(
        &mut self,
        key: &KeyHash,
        position: u64,
        resolve: &mut ResolveKey<'_>,
    ) -> Result<(), StateError> {
        debug_assert!(position <= MAX_POSITION);
        let bucket = &mut self.buckets[bucket_of(key)];
        let index = Self::lower_bound(bucket, key, resolve)?;
        if bucket.len() == bucket.capacity() {
            bucket.reserve_exact((bucket.len() / 8).max(4));
        }
        bucket.insert(index, Slot::new(tag_of(key), position));
        self.len += 1;
        Ok(())
    }

    /// Moves `key` from `old` to `new`; false if no slot of `key` holds `old`.
    pub fn replace(&mut self, key: &KeyHash, old: u64, new: u64) -> bool {
        let tag = tag_of(key);
        let bucket = &mut self.buckets[bucket_of(key)];
        let start = bucket.partition_point(|slot| slot.tag() < tag);
        for slot in bucket[start..].iter_mut().take_while(|slot| slot.tag() == tag) {
            if slot.position() == old {
                *slot = Slot::new(tag, new);
                return true;
            }
        }
        false
    }

    /// Removes `key`'s slot at `position`; false if there is none.
    pub fn remove(&mut self, key: &KeyHash, position: u64) -> bool {
        let tag = tag_of(key);
        let bucket = &mut self.buckets[bucket_of(key)];
        let start = bucket.partition_point(|slot| slot.tag() < tag);
        let found = bucket[start..]
            .iter()
            .take_while(|slot| slot.tag() == tag)
            .position(|slot| slot.position() == position);
        match found {
            Some(offset) => {
                bucket.remove(start + offset);
                self.len -= 1;
                true
            }
            None => false,
        }
    }

    /// Position of the largest indexed key below `key`, if any.
    pub fn predecessor(
        &self,
        key: &KeyHash,
        resolve: &mut ResolveKey<'_>,
    ) -> Result<Option<u64>, StateError> {
        let home = bucket_of(key);
        let index = Self::lower_bound(&self.buckets[home], key, resolve)?;
        if index > 0 {
            return Ok(Some(self.buckets[home][index - 1].position()));
        }
        Ok(self.buckets[..home].iter().rev().find_map(|bucket| bucket.last().map(Slot::position)))
    }

    /// Bytes of heap this index holds (slots and bucket headers), for reporting.
    pub fn heap_bytes(&self) -> usize {
        self.buckets.capacity() * std::mem::size_of::<Vec<Slot>>()
            + self.buckets.iter().map(|b| b.capacity() * std::mem::size_of::<Slot>()).sum::<usize>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn slots_are_ten_bytes() {
        assert_eq!(std::mem::size_of::<Slot>(), 10);
    }

    #[test]
    fn orders_keys_that_share_a_64_bit_prefix_by_full_key() {
        // Keys share shard, bucket and tag; only the last byte differs.
        let keys: Vec<KeyHash> = [9u8, 3, 7, 1]
            .iter()
            .map(|last| {
                let mut bytes = [0x5a; 32];
                bytes[31] = *last;
                KeyHash(bytes)
            })
            .collect();
        let by_position: BTreeMap<u64, KeyHash> =
            keys.iter().enumerate().map(|(i, k)| (i as u64 * 100, *k)).collect();
        let mut resolve = |position: u64| Ok(by_position[&position]);
        let mut index = ShardIndex::default();
        for (position, key) in &by_position {
            index.insert(key, *position, &mut resolve).unwrap();
        }
        assert_eq!(index.len(), 4);
        // The predecessor of the key ending in 7 is the one ending in 3 (position 100).
        assert_eq!(index.predecessor(&keys[2], &mut resolve).unwrap(), Some(100));
        assert_eq!(index.predecessor(&keys[3], &mut resolve).unwrap(), None);
        assert_eq!(index.candidates(&keys[0]).count(), 4);
        assert!(index.replace(&keys[0], 0, 500));
        assert!(index.remove(&keys[0], 500));
        assert!(!index.remove(&keys[0], 500));
        assert_eq!(index.len(), 3);
    }
}
