//! One of the 16 shards: its log, index, twigs and upper tree, and the per-block write path.

use super::{
    entry::{Entry, MAX_DEACTIVATED, MAX_VALUE_LEN},
    hash::{
        active_chunk, active_level, active_root, hash_leaf, hash_node, null_nodes, upper_level,
        Hash, ACTIVE_DEPTH, TWIG_DEPTH, TWIG_ENTRIES, TWIG_ROOT_LEVEL, UPPER_DEPTH,
    },
    indexer::{ShardIndex, MAX_POSITION},
    log::{corrupt, io_error, Log, Unsynced},
    proof::EntryProof,
    Config,
};
use crate::{KeyHash, StateError};
use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    fs::{File, OpenOptions},
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
};

/// A value to write (`Some`) or a key to delete (`None`).
pub type Op = (KeyHash, Option<Vec<u8>>);

/// The smallest key hash of shard `shard`: the key of its sentry entry.
pub fn shard_min(shard: usize) -> KeyHash {
    let mut bytes = [0u8; 32];
    bytes[0] = (shard as u8) << 4;
    KeyHash(bytes)
}

/// The largest key hash of shard `shard`: the `next` of the shard's largest key.
pub fn shard_max(shard: usize) -> KeyHash {
    let mut bytes = [0xffu8; 32];
    bytes[0] = ((shard as u8) << 4) | 0x0f;
    KeyHash(bytes)
}

/// What memory keeps of a twig: its entry-tree root, its active bits and where it starts.
#[derive(Clone, Debug)]
struct Twig {
    left_root: Hash,
    active: [u64; 32],
    /// Log position of the twig's first entry (`u64::MAX` when it lies in a deleted segment).
    first_position: u64,
    root: Hash,
}

impl Twig {
    fn empty(first_position: u64) -> Self {
        let nulls = null_nodes();
        Twig {
            left_root: nulls.twig[TWIG_DEPTH],
            active: [0; 32],
            first_position,
            root: nulls.upper[0],
        }
    }
}

/// The persistent per-shard figures a commit records in the metadata.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ShardMeta {
    pub log_end: u64,
    pub next_serial: u64,
    pub active_count: u64,
    pub cursor_serial: u64,
    pub cursor_position: u64,
    pub root: Hash,
}

/// One shard.
#[derive(Debug)]
pub struct Shard {
    id: usize,
    log: Log,
    index: ShardIndex,
    twigs: Vec<Twig>,
    /// Heap-ordered nodes of the youngest twig's entry tree: 1 is its root, 2048.. its leaves.
    youngest: Vec<Hash>,
    /// Leaves of the youngest twig changed since the last rehash (inclusive range).
    youngest_dirty: Option<(usize, usize)>,
    /// Twigs whose active bits changed since the last rehash.
    dirty_twigs: Vec<u64>,
    /// `upper[0]` are twig roots; `upper[UPPER_DEPTH][0]` is the shard root.
    upper: Vec<Vec<Hash>>,
    next_serial: u64,
    active_count: u64,
    cursor_serial: u64,
    cursor_position: u64,
    twig_roots_path: PathBuf,
    twig_roots_file: File,
    /// Left roots of twigs completed since the last flush.
    pending_twig_roots: Vec<Hash>,
    /// (height, position): segments ending at or before `position` became deletable at `height`.
    deletable: VecDeque<(u64, u64)>,
    /// Reused encoding buffer.
    scratch: Vec<u8>,
}

/// A shard's files written by [`Shard::write_pending`] and not yet fsynced.
#[must_use = "written shard bytes are durable only once synced"]
#[derive(Debug)]
pub struct ShardUnsynced {
    log: Unsynced,
    twig_roots: bool,
}

struct Rewrite {
    old: Option<(u64, Entry)>,
    value: Vec<u8>,
    deactivate: Vec<u64>,
}

/// One block's writes to a shard, with the old entries they replace looked up; applied in
/// chunks by [`Shard::apply_chunk`].
pub struct ApplyPlan {
    /// The entries to append, in key order; those not yet applied.
    rewrites: std::vec::IntoIter<(KeyHash, Rewrite)>,
    /// Rewrites applied so far (their index orders the block's versions).
    applied: usize,
    deleted: HashMap<KeyHash, (u64, Entry)>,
    created: Vec<KeyHash>,
    created_successor: HashMap<KeyHash, KeyHash>,
}

impl Shard {
    /// Opens shard `id` in `dir`: creates it (with its sentry) when `meta` is `None`, otherwise
    /// recovers it to the committed `meta` and checks that it reproduces the recorded root.
    pub fn open(
        id: usize,
        dir: &Path,
        config: &Config,
        meta: Option<&ShardMeta>,
    ) -> Result<Self, StateError> {
        let committed = meta.copied().unwrap_or_default();
        let log = Log::open(dir, config.segment_size, committed.log_end)?;
        let twig_roots_path = dir.join("twigs.bin");
        let twig_roots_file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&twig_roots_path)
            .map_err(|e| io_error(&twig_roots_path, e))?;
        let mut shard = Shard {
            id,
            log,
            index: ShardIndex::default(),
            twigs: Vec::new(),
            youngest: fresh_youngest(),
            youngest_dirty: None,
            dirty_twigs: Vec::new(),
            upper: vec![Vec::new(); UPPER_DEPTH + 1],
            next_serial: 0,
            active_count: 0,
            cursor_serial: 0,
            cursor_position: 0,
            twig_roots_path,
            twig_roots_file,
            pending_twig_roots: Vec::new(),
            deletable: VecDeque::new(),
            scratch: Vec::new(),
        };
        match meta {
            None => {
                shard
                    .twig_roots_file
                    .set_len(0)
                    .map_err(|e| io_error(&shard.twig_roots_path, e))?;
                let sentry = Entry {
                    key: shard_min(id),
                    next: shard_max(id),
                    version: 0,
                    serial: 0,
                    value: Vec::new(),
                    deactivated: Vec::new(),
                };
                let position = shard.append(sentry)?;
                shard.index.insert(&shard_min(id), position, &mut |_| {
                    unreachable!("an empty index resolves no keys")
                })?;
                shard.rehash();
                shard.flush()?;
            }
            Some(meta) => shard.recover(meta)?,
        }
        Ok(shard)
    }

    /// The figures a commit records.
    pub fn meta(&self) -> ShardMeta {
        ShardMeta {
            log_end: self.log.end(),
            next_serial: self.next_serial,
            active_count: self.active_count,
            cursor_serial: self.cursor_serial,
            cursor_position: self.cursor_position,
            root: self.root(),
        }
    }

    /// The shard root.
    pub fn root(&self) -> Hash {
        self.upper[UPPER_DEPTH][0]
    }

    /// Live keys (including the sentry).
    pub fn live_keys(&self) -> u64 {
        self.active_count
    }

    /// Entries ever appended.
    pub fn total_entries(&self) -> u64 {
        self.next_serial
    }

    /// Bytes of log on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.log.disk_bytes()
    }

    /// Heap bytes of the index.
    pub fn index_bytes(&self) -> usize {
        self.index.heap_bytes()
    }

    fn path(&self) -> PathBuf {
        self.twig_roots_path.parent().map(Path::to_path_buf).unwrap_or_default()
    }

    /// The live entry of `key` and its position.
    pub fn lookup(&self, key: &KeyHash) -> Result<Option<(u64, Entry)>, StateError> {
        for position in self.index.candidates(key) {
            let (entry, _) = self.log.read_entry(position)?;
            if entry.key == *key {
                return Ok(Some((position, entry)));
            }
        }
        Ok(None)
    }

    /// The live entry with the largest key below `key` (the sentry at worst).
    fn predecessor(&self, key: &KeyHash) -> Result<(u64, Entry), StateError> {
        let log = &self.log;
        let position = self.index.predecessor(key, &mut |p| log.read_key(p))?.ok_or_else(|| {
            corrupt(&self.path(), format!("no key below {key:?}: sentry missing"))
        })?;
        let (entry, _) = self.log.read_entry(position)?;
        Ok((position, entry))
    }

    fn check_key(&self, key: &KeyHash) -> Result<(), StateError> {
        if key.shard() != self.id || *key == shard_min(self.id) || *key == shard_max(self.id) {
            return Err(StateError::Unsupported {
                reason: format!("key hash {key:?} is reserved for shard bounds"),
            });
        }
        Ok(())
    }

    /// Validates `ops` (sorted, unique keys of this shard) without changing anything: every
    /// error a block can cause is found here, before the first write.
    pub fn check_ops(&self, ops: &[Op]) -> Result<(), StateError> {
        for (key, value) in ops {
            self.check_key(key)?;
            if let Some(value) = value.as_ref().filter(|value| value.len() > MAX_VALUE_LEN) {
                return Err(StateError::Unsupported {
                    reason: format!(
                        "a value of {} bytes under key hash {key:?} is over the store's limit of \
                         {MAX_VALUE_LEN} bytes per value",
                        value.len()
                    ),
                });
            }
        }
        Ok(())
    }

    /// The read-only half of applying one block's writes: looks up every old entry the block
    /// replaces, deletes or re-links. It reads the log (the costly part) but changes nothing, so
    /// it can run while readers share the shard.
    pub fn plan(&self, ops: &[Op]) -> Result<ApplyPlan, StateError> {
        let mut rewrites: BTreeMap<KeyHash, Rewrite> = BTreeMap::new();
        let mut deleted: HashMap<KeyHash, (u64, Entry)> = HashMap::new();
        let mut created: Vec<KeyHash> = Vec::new();
        for (key, value) in ops {
            match (value, self.lookup(key)?) {
                (Some(value), old) => {
                    if old.is_none() {
                        created.push(*key);
                    }
                    rewrites.insert(
                        *key,
                        Rewrite { old, value: value.clone(), deactivate: Vec::new() },
                    );
                }
                (None, Some(old)) => {
                    deleted.insert(*key, old);
                }
                (None, None) => {}
            }
        }
        let mut structural: Vec<KeyHash> = created.iter().chain(deleted.keys()).copied().collect();
        structural.sort_unstable();
        let mut created_successor: HashMap<KeyHash, KeyHash> = HashMap::new();
        // Per deleted key, the position of the nearest kept key below it. Keys come in order and
        // every deleted key is among them, so a deleted predecessor's is already known: a run of
        // deleted keys costs one lookup each, not a walk back over the run (quadratic in its
        // length).
        let mut kept_below: HashMap<KeyHash, u64> = HashMap::new();
        for key in &structural {
            let mut predecessor = self.predecessor(key)?;
            let is_created = !deleted.contains_key(key);
            if is_created {
                created_successor.insert(*key, predecessor.1.next);
            }
            if let Some(&position) = kept_below.get(&predecessor.1.key) {
                predecessor = (position, self.log.read_entry(position)?.0);
            }
            if !is_created {
                kept_below.insert(*key, predecessor.0);
            }
            let created_below = created[..created.partition_point(|c| c < key)].last().copied();
            let target = match created_below {
                Some(below) if below > predecessor.1.key => below,
                _ => {
                    let target = predecessor.1.key;
                    rewrites.entry(target).or_insert_with(|| Rewrite {
                        value: predecessor.1.value.clone(),
                        old: Some(predecessor),
                        deactivate: Vec::new(),
                    });
                    target
                }
            };
            if let Some((_, gone)) = deleted.get(key) {
                rewrites.get_mut(&target).expect("inserted above").deactivate.push(gone.serial);
            }
        }
        // The one limit only the lookups show (so it poisons the store like a failed write,
        // though nothing was written): one entry names at most MAX_DEACTIVATED serials.
        if let Some((key, rewrite)) =
            rewrites.iter().find(|(_, rewrite)| rewrite.deactivate.len() > MAX_DEACTIVATED)
        {
            return Err(StateError::Unsupported {
                reason: format!(
                    "a block deletes {} keys that follow key hash {key:?} in one run; at most \
                     {MAX_DEACTIVATED} such deletions fit in one block",
                    rewrite.deactivate.len()
                ),
            });
        }
        let rewrites: Vec<(KeyHash, Rewrite)> = rewrites.into_iter().collect();
        Ok(ApplyPlan {
            rewrites: rewrites.into_iter(),
            applied: 0,
            deleted,
            created,
            created_successor,
        })
    }

    /// The writing half: applies the block's writes in key order, appending one entry per
    /// written or re-linked key: updated and created keys, and each key whose `next` changes
    /// because a key was created or deleted after it. A deleted key's serial is deactivated by
    /// its predecessor's new entry. `plan` must come from [`Shard::plan`] on this shard as it is,
    /// changed since only by earlier chunks of the same plan.
    ///
    /// Applies at most `chunk` (at least one) of the plan's entries and returns whether the plan
    /// is done. After each chunk every key reads its value from before the block or after it (a
    /// key whose entry is not rewritten yet, the old one), so the caller can let readers in
    /// between.
    pub fn apply_chunk(
        &mut self,
        plan: &mut ApplyPlan,
        height: u64,
        chunk: usize,
    ) -> Result<bool, StateError> {
        let ApplyPlan { rewrites, applied, deleted, created, created_successor } = plan;
        for (key, rewrite) in rewrites.by_ref().take(chunk.max(1)) {
            let op_index = *applied;
            *applied += 1;
            let mut successor = match &rewrite.old {
                Some((_, old)) => old.next,
                None => created_successor[&key],
            };
            while let Some((_, gone)) = deleted.get(&successor) {
                successor = gone.next;
            }
            let above = created.partition_point(|c| *c <= key);
            let next = match created.get(above) {
                Some(created_above) if *created_above < successor => *created_above,
                _ => successor,
            };
            let mut deactivated = Vec::with_capacity(1 + rewrite.deactivate.len());
            if let Some((_, old)) = &rewrite.old {
                deactivated.push(old.serial);
            }
            deactivated.extend_from_slice(&rewrite.deactivate);
            let entry = Entry {
                key,
                next,
                version: height << 24 | (op_index as u64 & 0xff_ffff),
                serial: self.next_serial,
                value: rewrite.value,
                deactivated,
            };
            let position = self.append(entry)?;
            match rewrite.old {
                Some((old_position, _)) => {
                    if !self.index.replace(&key, old_position, position) {
                        return Err(corrupt(&self.path(), "index lost a live key"));
                    }
                }
                None => {
                    let log = &self.log;
                    self.index.insert(&key, position, &mut |p| log.read_key(p))?;
                }
            }
        }
        if !rewrites.as_slice().is_empty() {
            return Ok(false);
        }
        for (key, (position, _)) in deleted.drain() {
            if !self.index.remove(&key, position) {
                return Err(corrupt(&self.path(), "index lost a deleted key"));
            }
        }
        debug_assert_eq!(self.index.len() as u64, self.active_count);
        Ok(true)
    }

    /// Appends `entry` (its serial must be the next one): logs it, makes it active, deactivates
    /// what it names, and records its leaf in the youngest twig.
    fn append(&mut self, entry: Entry) -> Result<u64, StateError> {
        debug_assert_eq!(entry.serial, self.next_serial);
        let mut bytes = std::mem::take(&mut self.scratch);
        bytes.clear();
        entry.encode_into(&mut bytes);
        let position = self.log.append(&bytes);
        if position > MAX_POSITION {
            return Err(StateError::Unsupported { reason: "shard log exceeds 256 TiB".into() });
        }
        let serial = self.next_serial;
        let twig = (serial / TWIG_ENTRIES) as usize;
        let leaf = (serial % TWIG_ENTRIES) as usize;
        if leaf == 0 {
            debug_assert_eq!(twig, self.twigs.len());
            self.twigs.push(Twig::empty(position));
            self.youngest = fresh_youngest();
        }
        self.youngest[TWIG_ENTRIES as usize + leaf] = hash_leaf(&bytes);
        self.scratch = bytes;
        self.youngest_dirty = Some(match self.youngest_dirty {
            Some((lo, _)) => (lo, leaf),
            None => (leaf, leaf),
        });
        self.twigs[twig].active[leaf / 64] |= 1 << (leaf % 64);
        self.dirty_twigs.push(twig as u64);
        self.active_count += 1;
        self.next_serial += 1;
        for old in &entry.deactivated {
            self.deactivate(*old)?;
        }
        if leaf == TWIG_ENTRIES as usize - 1 {
            // The twig is full: fix its entry tree and keep only the root.
            self.rehash_youngest();
            self.pending_twig_roots.push(self.twigs[twig].left_root);
        }
        Ok(position)
    }

    fn deactivate(&mut self, serial: u64) -> Result<(), StateError> {
        let twig = (serial / TWIG_ENTRIES) as usize;
        let bit = (serial % TWIG_ENTRIES) as usize;
        let word = self
            .twigs
            .get_mut(twig)
            .map(|t| &mut t.active[bit / 64])
            .filter(|word| **word & (1 << (bit % 64)) != 0)
            .ok_or_else(|| {
                corrupt(&self.twig_roots_path, format!("serial {serial} deactivated twice"))
            })?;
        *word &= !(1 << (bit % 64));
        self.active_count -= 1;
        self.dirty_twigs.push(twig as u64);
        Ok(())
    }

    /// Compaction: while the live region (serials from the cursor on) is less than
    /// `utilization` percent active and holds at least `min_entries`, re-append the active
    /// entry at the cursor and move past it, at most `batch` entries per block.
    pub fn compact(&mut self, config: &Config) -> Result<(), StateError> {
        for _ in 0..config.compact_batch {
            let region = self.next_serial - self.cursor_serial;
            if region < config.compact_min_entries
                || self.active_count * 100 >= region * u64::from(config.compact_utilization)
                || self.cursor_position >= self.log.end()
            {
                break;
            }
            let (entry, len) = self.log.read_entry(self.cursor_position)?;
            if entry.serial != self.cursor_serial {
                return Err(corrupt(
                    &self.path(),
                    format!(
                        "serial {} at compaction cursor, expected {}",
                        entry.serial, self.cursor_serial
                    ),
                ));
            }
            if self.is_active(entry.serial) {
                let key = entry.key;
                let moved =
                    Entry { serial: self.next_serial, deactivated: vec![entry.serial], ..entry };
                let position = self.append(moved)?;
                if !self.index.replace(&key, self.cursor_position, position) {
                    return Err(corrupt(&self.path(), "index lost a compacted key"));
                }
            }
            self.cursor_serial += 1;
            self.cursor_position += len as u64;
        }
        Ok(())
    }

    fn is_active(&self, serial: u64) -> bool {
        let bit = (serial % TWIG_ENTRIES) as usize;
        self.twigs
            .get((serial / TWIG_ENTRIES) as usize)
            .is_some_and(|t| t.active[bit / 64] & (1 << (bit % 64)) != 0)
    }

    /// Notes, after a commit at `height`, which segments compaction has emptied, and deletes
    /// those that became deletable at least `keep_heights` blocks ago.
    pub fn prune(&mut self, height: u64, keep_heights: u64) -> Result<(), StateError> {
        let aligned = (self.cursor_serial / TWIG_ENTRIES) as usize;
        if let Some(twig) = self.twigs.get(aligned) {
            if twig.first_position != u64::MAX {
                self.deletable.push_back((height, twig.first_position));
            }
        }
        let mut boundary = None;
        while let Some((at, position)) = self.deletable.front().copied() {
            if at.saturating_add(keep_heights) > height {
                break;
            }
            boundary = Some(position);
            self.deletable.pop_front();
        }
        if let Some(position) = boundary {
            self.log.delete_segments_before(position)?;
        }
        Ok(())
    }

    fn rehash_youngest(&mut self) {
        let Some((mut lo, mut hi)) = self.youngest_dirty.take() else { return };
        let leaves = TWIG_ENTRIES as usize;
        lo += leaves;
        hi += leaves;
        for level in 1..=TWIG_DEPTH {
            lo /= 2;
            hi /= 2;
            for node in lo..=hi {
                self.youngest[node] =
                    hash_node(level as u8, &self.youngest[2 * node], &self.youngest[2 * node + 1]);
            }
        }
        let twig = self.twigs.len() - 1;
        self.twigs[twig].left_root = self.youngest[1];
        self.dirty_twigs.push(twig as u64);
    }

    /// Recomputes the roots of changed twigs and the changed paths of the upper tree.
    pub fn rehash(&mut self) {
        self.rehash_youngest();
        let mut dirty = std::mem::take(&mut self.dirty_twigs);
        dirty.sort_unstable();
        dirty.dedup();
        let nulls = null_nodes();
        self.upper[0].resize(self.twigs.len(), nulls.upper[0]);
        for twig in &dirty {
            let info = &mut self.twigs[*twig as usize];
            info.root = hash_node(TWIG_ROOT_LEVEL, &info.left_root, &active_root(&info.active));
            self.upper[0][*twig as usize] = info.root;
        }
        for level in 1..=UPPER_DEPTH {
            dirty.iter_mut().for_each(|index| *index /= 2);
            dirty.dedup();
            let width = self.upper[level - 1].len().div_ceil(2).max(1);
            self.upper[level].resize(width, nulls.upper[level]);
            let (below, above) = self.upper.split_at_mut(level);
            let children = &below[level - 1];
            for index in &dirty {
                let index = *index as usize;
                let left = children.get(2 * index).unwrap_or(&nulls.upper[level - 1]);
                let right = children.get(2 * index + 1).unwrap_or(&nulls.upper[level - 1]);
                above[0][index] = hash_node(upper_level(level), left, right);
            }
        }
    }

    /// Writes and fsyncs this block's log bytes and completed twig roots.
    pub fn flush(&mut self) -> Result<(), StateError> {
        let unsynced = self.write_pending()?;
        self.sync(unsynced)
    }

    /// Writes this block's log bytes and completed twig roots without making them durable;
    /// [`Self::sync`] does that with the shard shared, so readers are not kept out while the
    /// disk catches up. Nothing the store's metadata points to may be written in between.
    pub fn write_pending(&mut self) -> Result<ShardUnsynced, StateError> {
        let log = self.log.write_pending()?;
        let mut twig_roots = false;
        if !self.pending_twig_roots.is_empty() {
            let completed = self.next_serial / TWIG_ENTRIES;
            let offset = (completed - self.pending_twig_roots.len() as u64) * 32;
            let bytes: Vec<u8> = self.pending_twig_roots.concat();
            let path = &self.twig_roots_path;
            self.twig_roots_file.write_all_at(&bytes, offset).map_err(|e| io_error(path, e))?;
            self.pending_twig_roots.clear();
            twig_roots = true;
        }
        Ok(ShardUnsynced { log, twig_roots })
    }

    /// Fsyncs what [`Self::write_pending`] wrote.
    pub fn sync(&self, unsynced: ShardUnsynced) -> Result<(), StateError> {
        self.log.sync(unsynced.log)?;
        if unsynced.twig_roots {
            let path = &self.twig_roots_path;
            self.twig_roots_file.sync_data().map_err(|e| io_error(path, e))?;
        }
        Ok(())
    }

    /// Rebuilds memory from the files, cut back to `meta`, and checks the recomputed root.
    fn recover(&mut self, meta: &ShardMeta) -> Result<(), StateError> {
        let path = self.path();
        let completed = meta.next_serial / TWIG_ENTRIES;
        let stored =
            self.twig_roots_file.metadata().map_err(|e| io_error(&self.twig_roots_path, e))?.len();
        if stored < completed * 32 {
            return Err(corrupt(
                &self.twig_roots_path,
                format!("{} twig roots stored, {completed} committed", stored / 32),
            ));
        }
        self.twig_roots_file
            .set_len(completed * 32)
            .map_err(|e| io_error(&self.twig_roots_path, e))?;
        let mut stored_roots = vec![0u8; (completed * 32) as usize];
        self.twig_roots_file
            .read_exact_at(&mut stored_roots, 0)
            .map_err(|e| io_error(&self.twig_roots_path, e))?;
        let twig_count = meta.next_serial.div_ceil(TWIG_ENTRIES) as usize;
        self.twigs = (0..twig_count)
            .map(|t| {
                let mut twig = Twig::empty(u64::MAX);
                if (t as u64) < completed {
                    twig.left_root.copy_from_slice(&stored_roots[t * 32..t * 32 + 32]);
                }
                twig
            })
            .collect();

        // Pass 1: serial continuity, active bits, twig starts, and entry trees (checked against
        // the stored roots of complete twigs; the youngest twig's leaves are kept).
        let mut first_serial: Option<u64> = None;
        let mut expected_serial = 0;
        let mut leaves: Vec<Hash> = Vec::with_capacity(TWIG_ENTRIES as usize);
        let mut leaves_twig = u64::MAX;
        let twigs = &mut self.twigs;
        let verify_twig =
            |twigs: &[Twig], twig: u64, leaves: &mut Vec<Hash>| -> Result<(), StateError> {
                if leaves.len() == TWIG_ENTRIES as usize && twig < completed {
                    let root = tree_root(leaves);
                    if root != twigs[twig as usize].left_root {
                        return Err(corrupt(
                            &path,
                            format!("twig {twig} does not match its stored root"),
                        ));
                    }
                }
                leaves.clear();
                Ok(())
            };
        let mut active_serials = 0u64;
        let mut deactivations: Vec<u64> = Vec::new();
        let mut young_leaves: Vec<Hash> = Vec::new();
        let youngest_twig = meta.next_serial.saturating_sub(1) / TWIG_ENTRIES;
        self.log.scan(self.log.first_position(), |position, bytes| {
            let (entry, _) = Entry::decode(bytes)
                .map_err(|e| corrupt(&path, format!("entry at {position}: {e}")))?;
            let serial = entry.serial;
            match first_serial {
                None => {
                    first_serial = Some(serial);
                    expected_serial = serial;
                }
                Some(_) if serial != expected_serial => {
                    return Err(corrupt(
                        &path,
                        format!(
                            "entry at {position} has serial {serial}, expected {expected_serial}"
                        ),
                    ))
                }
                Some(_) => {}
            }
            if serial >= meta.next_serial {
                return Err(corrupt(&path, format!("serial {serial} beyond the committed count")));
            }
            expected_serial += 1;
            let twig = serial / TWIG_ENTRIES;
            let leaf = (serial % TWIG_ENTRIES) as usize;
            if twig != leaves_twig {
                verify_twig(twigs, leaves_twig, &mut leaves)?;
                leaves_twig = twig;
            }
            if leaf == 0 {
                twigs[twig as usize].first_position = position;
            }
            if leaf == leaves.len() {
                leaves.push(hash_leaf(bytes));
            }
            if twig == youngest_twig {
                young_leaves.push(hash_leaf(bytes));
            }
            twigs[twig as usize].active[leaf / 64] |= 1 << (leaf % 64);
            active_serials += 1;
            deactivations.extend_from_slice(&entry.deactivated);
            Ok(())
        })?;
        verify_twig(&self.twigs, leaves_twig, &mut leaves)?;
        let first_serial = first_serial.unwrap_or(meta.next_serial);
        if expected_serial != meta.next_serial {
            return Err(corrupt(
                &path,
                format!(
                    "log holds entries up to serial {expected_serial}, metadata says {}",
                    meta.next_serial
                ),
            ));
        }
        for serial in deactivations {
            if serial < first_serial {
                continue;
            }
            if serial >= meta.next_serial {
                return Err(corrupt(&path, format!("deactivation of unknown serial {serial}")));
            }
            let twig = &mut self.twigs[(serial / TWIG_ENTRIES) as usize];
            let bit = (serial % TWIG_ENTRIES) as usize;
            if twig.active[bit / 64] & (1 << (bit % 64)) == 0 {
                return Err(corrupt(&path, format!("serial {serial} deactivated twice")));
            }
            twig.active[bit / 64] &= !(1 << (bit % 64));
            active_serials -= 1;
        }
        if active_serials != meta.active_count {
            return Err(corrupt(
                &path,
                format!("{active_serials} live entries, metadata says {}", meta.active_count),
            ));
        }
        self.next_serial = meta.next_serial;
        self.active_count = meta.active_count;
        self.cursor_serial = meta.cursor_serial;
        self.cursor_position = meta.cursor_position;
        if (first_serial..self.cursor_serial).any(|serial| self.is_active(serial)) {
            return Err(corrupt(&path, "a live entry lies behind the compaction cursor"));
        }
        // The youngest twig's entry tree.
        if !meta.next_serial.is_multiple_of(TWIG_ENTRIES) {
            let base = youngest_twig * TWIG_ENTRIES;
            if young_leaves.len() as u64 != meta.next_serial - base {
                return Err(corrupt(&path, "the youngest twig is not fully on disk"));
            }
            for (leaf, hash) in young_leaves.iter().enumerate() {
                self.youngest[TWIG_ENTRIES as usize + leaf] = *hash;
            }
            if !young_leaves.is_empty() {
                self.youngest_dirty = Some((0, young_leaves.len() - 1));
            }
        }
        // Pass 2: index every live entry.
        let mut live = Vec::new();
        self.log.scan(self.log.first_position(), |position, bytes| {
            let serial = u64::from_le_bytes(bytes[76..84].try_into().expect("8 bytes"));
            if self.is_active(serial) {
                live.push((KeyHash(bytes[4..36].try_into().expect("32 bytes")), position));
            }
            Ok(())
        })?;
        live.sort_unstable();
        for pair in live.windows(2) {
            if pair[0].0 == pair[1].0 {
                return Err(corrupt(&path, format!("key {:?} has two live entries", pair[0].0)));
            }
        }
        let log = &self.log;
        for (key, position) in live {
            self.index.insert(&key, position, &mut |p| log.read_key(p))?;
        }
        self.dirty_twigs = (0..self.twigs.len() as u64).collect();
        self.rehash();
        if self.root() != meta.root {
            return Err(corrupt(&path, "recomputed shard root differs from the committed root"));
        }
        Ok(())
    }

    /// Proof material for the live entry at `position` (see [`EntryProof`]).
    pub fn prove_position(&self, position: u64) -> Result<EntryProof, StateError> {
        let (entry, _) = self.log.read_entry(position)?;
        let serial = entry.serial;
        let twig_index = (serial / TWIG_ENTRIES) as usize;
        let leaf = (serial % TWIG_ENTRIES) as usize;
        let twig = &self.twigs[twig_index];
        // The youngest twig's entry tree is in memory while it fills; a full one's is rebuilt
        // from the log like an older twig's (recovery keeps a full last twig's root only).
        let filling = !self.next_serial.is_multiple_of(TWIG_ENTRIES);
        let left_path = if twig_index + 1 == self.twigs.len() && filling {
            tree_path(&self.youngest, leaf)
        } else {
            // An older twig keeps only its root: rebuild its entry tree from the log.
            let mut leaves = Vec::with_capacity(TWIG_ENTRIES as usize);
            let mut at = twig.first_position;
            if at == u64::MAX {
                return Err(corrupt(&self.path(), "a live entry's twig lies in a deleted segment"));
            }
            for _ in 0..TWIG_ENTRIES {
                // Re-encoding is exact: decoding checks every length against the bytes.
                let (leaf_entry, len) = self.log.read_entry(at)?;
                leaves.push(hash_leaf(&leaf_entry.encode()));
                at += len as u64;
            }
            let mut nodes = fresh_youngest();
            nodes[TWIG_ENTRIES as usize..].copy_from_slice(&leaves);
            for node in (1..TWIG_ENTRIES as usize).rev() {
                nodes[node] =
                    hash_node(heap_level(node) as u8, &nodes[2 * node], &nodes[2 * node + 1]);
            }
            if nodes[1] != twig.left_root {
                return Err(corrupt(
                    &self.path(),
                    format!("twig {twig_index} does not match its root"),
                ));
            }
            tree_path(&nodes, leaf)
        };
        let chunk_index = leaf / 256;
        let chunks: Vec<Hash> = (0..8).map(|i| active_chunk(&twig.active, i)).collect();
        let mut active_path = Vec::with_capacity(ACTIVE_DEPTH);
        let mut level_nodes = chunks.clone();
        let mut index = chunk_index;
        for height in 1..=ACTIVE_DEPTH {
            active_path.push(level_nodes[index ^ 1]);
            level_nodes = level_nodes
                .chunks_exact(2)
                .map(|pair| hash_node(active_level(height), &pair[0], &pair[1]))
                .collect();
            index /= 2;
        }
        let nulls = null_nodes();
        let mut upper_path = Vec::with_capacity(UPPER_DEPTH);
        let mut index = twig_index;
        for level in 0..UPPER_DEPTH {
            upper_path.push(*self.upper[level].get(index ^ 1).unwrap_or(&nulls.upper[level]));
            index /= 2;
        }
        Ok(EntryProof {
            entry: entry.encode(),
            left_path,
            active_chunk: chunks[chunk_index],
            active_path,
            upper_path,
            shard_path: Vec::new(),
        })
    }

    /// Position of the live entry with the largest key below `key`, for exclusion proofs.
    pub fn predecessor_position(&self, key: &KeyHash) -> Result<u64, StateError> {
        self.predecessor(key).map(|(position, _)| position)
    }
}

fn fresh_youngest() -> Vec<Hash> {
    let nulls = null_nodes();
    let mut nodes = vec![nulls.twig[0]; 2 * TWIG_ENTRIES as usize];
    for (node, slot) in nodes.iter_mut().enumerate().take(TWIG_ENTRIES as usize).skip(1) {
        *slot = nulls.twig[heap_level(node)];
    }
    nodes
}

/// Height above the leaves of heap node `node` (1 is the root) in a twig's entry tree.
fn heap_level(node: usize) -> usize {
    TWIG_DEPTH - node.ilog2() as usize
}

/// Root of a full twig's entry tree from its 2048 leaves.
fn tree_root(leaves: &[Hash]) -> Hash {
    let mut level: Vec<Hash> = leaves.to_vec();
    for height in 1..=TWIG_DEPTH {
        level = level.chunks_exact(2).map(|p| hash_node(height as u8, &p[0], &p[1])).collect();
    }
    level[0]
}

/// Sibling path from leaf `leaf` to the root of a heap-ordered entry tree.
fn tree_path(nodes: &[Hash], leaf: usize) -> Vec<Hash> {
    let mut node = TWIG_ENTRIES as usize + leaf;
    let mut path = Vec::with_capacity(TWIG_DEPTH);
    while node > 1 {
        path.push(nodes[node ^ 1]);
        node /= 2;
    }
    path
}
