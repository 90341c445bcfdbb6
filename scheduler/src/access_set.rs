//! [`AccessSet`]: the predicted reads and writes of one task, as sorted key prefixes.
//!
//! A key prefix is the first [`KEY_PREFIX_BYTES`] bytes of the state store's SHA-256 key hash (the
//! engine derives it; this crate only compares prefixes). Two tasks *truly conflict* when one
//! writes a key the other reads or writes; reads of the same key never conflict. Conflicts are
//! decided exactly, by a merge walk over the sorted sets; the Bloom filter in
//! [`FrameFilter`](crate::FrameFilter) is only ever a pre-filter in front of this.

use std::cmp::Ordering;

/// Length in bytes of a [`KeyPrefix`]: 80 bits.
pub const KEY_PREFIX_BYTES: usize = 10;

/// The first 10 bytes (80 bits) of a state key's SHA-256 hash.
///
/// Prefixes are uniformly distributed because they come from SHA-256; the Bloom filter relies on
/// that and takes its probe positions straight from the prefix bits.
pub type KeyPrefix = [u8; KEY_PREFIX_BYTES];

/// The most credit keys one set marks ([`AccessSet::with_credits`]); further credits are kept as
/// ordinary read-write keys. One per transaction of a task.
pub const MAX_CREDITS: usize = 4;

/// The sorted read-only and read-write key prefixes of one task.
///
/// Invariants: both sets are sorted and free of duplicates, and they are disjoint — a key that is
/// both read and written counts as read-write only.
///
/// Some read-write keys may be marked as *credits*: the task only adds to the key's value, and
/// nothing it does depends on that value (a plain payment to an account without code). Credits to
/// one key commute, so [`PlanBuilder`](crate::PlanBuilder) does not order them against each other
/// or against earlier readers; readers and writers still wait for every earlier credit. Everywhere
/// else (conflicts, framing, coverage) a credit is an ordinary write.
///
/// ```
/// use zero_scheduler::AccessSet;
///
/// let reader = AccessSet::new([[1; 10], [2; 10]], []);
/// let writer = AccessSet::new([], [[2; 10]]);
/// let other_reader = AccessSet::new([[2; 10]], []);
/// assert!(reader.conflicts_with(&writer));
/// assert!(!reader.conflicts_with(&other_reader));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct AccessSet {
    /// Read-only keys first, then read-write keys; each half sorted and deduplicated.
    keys: Vec<KeyPrefix>,
    /// Index in `keys` where the read-write half starts.
    read_write_start: usize,
    /// The read-write keys that are credits, sorted, in the first `credit_count` places (the
    /// rest zero), so that equal sets compare equal.
    credits: [KeyPrefix; MAX_CREDITS],
    credit_count: u8,
}

impl AccessSet {
    /// Builds a set from keys read and keys written, in any order and with duplicates allowed.
    /// Keys that appear in both are kept in the read-write set only.
    pub fn new(
        read_only: impl IntoIterator<Item = KeyPrefix>,
        read_write: impl IntoIterator<Item = KeyPrefix>,
    ) -> Self {
        let mut read_write: Vec<KeyPrefix> = read_write.into_iter().collect();
        read_write.sort_unstable();
        read_write.dedup();
        let mut keys: Vec<KeyPrefix> =
            read_only.into_iter().filter(|key| read_write.binary_search(key).is_err()).collect();
        keys.sort_unstable();
        keys.dedup();
        let read_write_start = keys.len();
        keys.extend_from_slice(&read_write);
        Self {
            keys,
            read_write_start,
            credits: [[0; KEY_PREFIX_BYTES]; MAX_CREDITS],
            credit_count: 0,
        }
    }

    /// [`AccessSet::new`] plus `credits`: keys the task only adds to (see the type's
    /// documentation). A credit that is also read or written otherwise is an ordinary read-write
    /// key, and so is every credit beyond the first [`MAX_CREDITS`].
    ///
    /// ```
    /// use zero_scheduler::AccessSet;
    ///
    /// let set = AccessSet::with_credits([[1; 10]], [[2; 10]], [[3; 10], [1; 10]]);
    /// assert_eq!(set.credits(), &[[3; 10]]);
    /// assert_eq!(set.read_write(), &[[1; 10], [2; 10], [3; 10]]);
    /// assert!(set.read_only().is_empty());
    /// ```
    pub fn with_credits(
        read_only: impl IntoIterator<Item = KeyPrefix>,
        read_write: impl IntoIterator<Item = KeyPrefix>,
        credits: impl IntoIterator<Item = KeyPrefix>,
    ) -> Self {
        let mut set = Self::new(read_only, read_write);
        for credit in credits {
            if set.is_credit(&credit) {
                continue;
            }
            // Read, or written outright, by the same task: an ordinary write.
            let plain = set.contains(&credit);
            set.insert_read_write(credit);
            let count = usize::from(set.credit_count);
            if !plain && count < MAX_CREDITS {
                set.credits[count] = credit;
                set.credit_count += 1;
                set.credits[..=count].sort_unstable();
            }
        }
        set
    }

    /// The read-write keys that are credits, sorted.
    pub fn credits(&self) -> &[KeyPrefix] {
        &self.credits[..usize::from(self.credit_count)]
    }

    /// Whether `key` is a credit of this set.
    #[inline]
    pub fn is_credit(&self, key: &KeyPrefix) -> bool {
        self.credits().contains(key)
    }

    /// The keys only read, sorted.
    pub fn read_only(&self) -> &[KeyPrefix] {
        &self.keys[..self.read_write_start]
    }

    /// The keys written (and possibly read), sorted.
    pub fn read_write(&self) -> &[KeyPrefix] {
        &self.keys[self.read_write_start..]
    }

    /// Number of distinct keys in both sets together.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the set has no key at all.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Whether `key` is read or written.
    pub fn contains(&self, key: &KeyPrefix) -> bool {
        self.read_only().binary_search(key).is_ok() || self.read_write().binary_search(key).is_ok()
    }

    /// Whether `key` is written.
    pub fn writes(&self, key: &KeyPrefix) -> bool {
        self.read_write().binary_search(key).is_ok()
    }

    /// Adds `key` to the read-write set (moving it out of the read-only set if it was there);
    /// a credit becomes an ordinary read-write key.
    pub fn insert_read_write(&mut self, key: KeyPrefix) {
        if let Some(index) = self.credits().iter().position(|credit| *credit == key) {
            let count = usize::from(self.credit_count);
            self.credits.copy_within(index + 1..count, index);
            self.credits[count - 1] = [0; KEY_PREFIX_BYTES];
            self.credit_count -= 1;
        }
        if let Ok(index) = self.read_only().binary_search(&key) {
            self.keys.remove(index);
            self.read_write_start -= 1;
        }
        if let Err(offset) = self.read_write().binary_search(&key) {
            self.keys.insert(self.read_write_start + offset, key);
        }
    }

    /// Exact conflict test: whether one of the two sets writes a key the other reads or writes.
    pub fn conflicts_with(&self, other: &AccessSet) -> bool {
        sorted_intersect(self.read_write(), other.read_write())
            || sorted_intersect(self.read_write(), other.read_only())
            || sorted_intersect(self.read_only(), other.read_write())
    }

    /// Whether this set (an actual, executed access set) is covered by `prediction`: every key
    /// read is predicted as read or written, and every key written is predicted as written.
    /// An executed task whose actual set is not covered was mispredicted.
    pub fn is_covered_by(&self, prediction: &AccessSet) -> bool {
        self.read_only().iter().all(|key| prediction.contains(key))
            && sorted_subset(self.read_write(), prediction.read_write())
    }
}

/// Whether two sorted, duplicate-free slices share an element (merge walk).
fn sorted_intersect(left: &[KeyPrefix], right: &[KeyPrefix]) -> bool {
    let (mut left_index, mut right_index) = (0, 0);
    while let (Some(left_key), Some(right_key)) = (left.get(left_index), right.get(right_index)) {
        match left_key.cmp(right_key) {
            Ordering::Less => left_index += 1,
            Ordering::Greater => right_index += 1,
            Ordering::Equal => return true,
        }
    }
    false
}

/// Whether every element of sorted `subset` is in sorted `superset` (merge walk).
fn sorted_subset(subset: &[KeyPrefix], superset: &[KeyPrefix]) -> bool {
    let mut superset_index = 0;
    for key in subset {
        loop {
            match superset.get(superset_index).map(|candidate| candidate.cmp(key)) {
                Some(Ordering::Less) => superset_index += 1,
                Some(Ordering::Equal) => break,
                Some(Ordering::Greater) | None => return false,
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> KeyPrefix {
        [byte; KEY_PREFIX_BYTES]
    }

    #[test]
    fn sorts_deduplicates_and_moves_shared_keys_to_read_write() {
        let set = AccessSet::new([key(3), key(1), key(3), key(2)], [key(2), key(9), key(9)]);
        assert_eq!(set.read_only(), &[key(1), key(3)]);
        assert_eq!(set.read_write(), &[key(2), key(9)]);
        assert_eq!(set.len(), 4);
        assert!(set.contains(&key(2)) && set.writes(&key(2)));
        assert!(set.contains(&key(1)) && !set.writes(&key(1)));
        assert!(!set.contains(&key(7)));
    }

    #[test]
    fn conflicts_only_through_a_write() {
        let read_one = AccessSet::new([key(1)], []);
        let read_one_again = AccessSet::new([key(1), key(5)], []);
        let write_one = AccessSet::new([], [key(1)]);
        let write_two = AccessSet::new([key(4)], [key(2)]);
        assert!(!read_one.conflicts_with(&read_one_again));
        assert!(read_one.conflicts_with(&write_one));
        assert!(write_one.conflicts_with(&read_one));
        assert!(write_one.conflicts_with(&write_one.clone()));
        assert!(!write_two.conflicts_with(&write_one));
        assert!(!AccessSet::default().conflicts_with(&write_one));
    }

    #[test]
    fn insert_read_write_promotes_a_read() {
        let mut set = AccessSet::new([key(1), key(2)], [key(3)]);
        set.insert_read_write(key(2));
        set.insert_read_write(key(0));
        set.insert_read_write(key(3));
        assert_eq!(set.read_only(), &[key(1)]);
        assert_eq!(set.read_write(), &[key(0), key(2), key(3)]);
    }

    #[test]
    fn credits_stay_credits_only_while_nothing_else_touches_their_key() {
        let set = AccessSet::with_credits([key(1)], [key(2)], [key(1), key(2), key(3), key(4)]);
        assert_eq!(set.read_only(), &[] as &[KeyPrefix]);
        assert_eq!(set.read_write(), &[key(1), key(2), key(3), key(4)]);
        assert_eq!(set.credits(), &[key(3), key(4)]);
        assert!(set.is_credit(&key(3)) && !set.is_credit(&key(2)));
        // A sender's key written by the task (Task::new) turns a credit into a plain write.
        let mut promoted = set.clone();
        promoted.insert_read_write(key(3));
        assert_eq!(promoted.credits(), &[key(4)]);
        assert_eq!(promoted, AccessSet::with_credits([], [key(1), key(2), key(3)], [key(4)]));
        // Past the limit, credits are ordinary writes.
        let twice = AccessSet::with_credits([], [], [key(7), key(7)]);
        assert_eq!(twice.credits(), &[key(7)]);
        assert_eq!(
            AccessSet::with_credits([], [], [key(8), key(7)]),
            AccessSet::with_credits([], [], [key(7), key(8)])
        );
        let many = AccessSet::with_credits([], [], (10..16).map(key));
        assert_eq!(many.credits(), &[key(10), key(11), key(12), key(13)]);
        assert_eq!(many.read_write().len(), 6);
        // Conflicts treat a credit as a write.
        assert!(
            AccessSet::with_credits([], [], [key(5)]).conflicts_with(&AccessSet::new([key(5)], []))
        );
    }

    #[test]
    fn coverage_of_an_actual_set_by_a_prediction() {
        let prediction = AccessSet::new([key(1)], [key(2), key(3)]);
        assert!(AccessSet::new([key(1), key(2)], [key(3)]).is_covered_by(&prediction));
        assert!(AccessSet::default().is_covered_by(&prediction));
        assert!(!AccessSet::new([], [key(1)]).is_covered_by(&prediction));
        assert!(!AccessSet::new([key(4)], []).is_covered_by(&prediction));
        assert!(!AccessSet::new([], [key(4)]).is_covered_by(&prediction));
    }

    #[test]
    fn merge_walk_matches_a_naive_intersection() {
        let mut state = 7u64;
        let mut next = || {
            state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (state >> 59) as u8
        };
        for _ in 0..200 {
            let left: Vec<KeyPrefix> = (0..4).map(|_| key(next())).collect();
            let right: Vec<KeyPrefix> = (0..4).map(|_| key(next())).collect();
            let a = AccessSet::new(left[..2].to_vec(), left[2..].to_vec());
            let b = AccessSet::new(right[..2].to_vec(), right[2..].to_vec());
            let naive = a.read_write().iter().any(|k| b.contains(k))
                || b.read_write().iter().any(|k| a.contains(k));
            assert_eq!(a.conflicts_with(&b), naive);
        }
    }
}
