//! A shard's append-only log of entries, split into segment files.
//!
//! Positions are offsets in the shard's whole log; a segment file `seg-<start>.log` holds the
//! bytes from `start` on. An entry never spans two segments. Bytes appended during a block stay in
//! memory until [`Log::flush`] writes and fsyncs them; only flushed bytes can be read.
//!
//! Reads go through a read-only shared mapping of each segment (a lookup is a copy from the page
//! cache, not a `pread` system call), sized to the most the segment can grow to, so appends never
//! need a new mapping. Only the flushed part of a mapping is ever read, and flushed bytes are
//! never rewritten: appends land past it, and a segment is cut back only in [`Log::open`], before
//! it is mapped. A segment that cannot be mapped is read with `pread`.

use super::entry::{checked_header, declared_len, Entry, ENTRY_HEADER_LEN};
use crate::{KeyHash, StateError};
use memmap2::{Mmap, MmapOptions};
use std::{
    collections::BTreeMap,
    fs::{self, File, OpenOptions},
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
};

/// Bytes read at once when the entry length is not yet known; covers accounts and slots.
const FIRST_READ: usize = 256;
/// Capacity of the append buffer kept between blocks.
const KEPT_BUFFER: usize = 256 << 10;

#[derive(Debug)]
struct Segment {
    path: PathBuf,
    file: File,
    /// Flushed length of the file.
    len: u64,
    /// The file mapped read-only, at least `len` bytes long (`None`: read with `pread`).
    map: Option<Mmap>,
}

impl Segment {
    /// `file`, flushed up to `len`, mapped for reads up to `capacity` bytes (at least `len`).
    fn new(path: PathBuf, file: File, len: u64, capacity: u64) -> Self {
        let map = usize::try_from(capacity.max(len)).ok().and_then(|map_len| {
            // SAFETY: the mapping is read-only and shared. This process holds the store's
            // exclusive lock, so no other writer changes the file; it reads only below `len`
            // (checked in `read_entry`), and those bytes are never rewritten or cut away while
            // the segment is open (appends go past `len`; truncation happens only in `Log::open`,
            // before the mapping exists). Pages past the end of the file are never touched.
            unsafe { MmapOptions::new().len(map_len).map(&file) }.ok()
        });
        Self { path, file, len, map }
    }

    /// The flushed bytes from `offset` on, when mapped.
    fn mapped_from(&self, offset: u64) -> Option<&[u8]> {
        let map = self.map.as_ref()?;
        map.get(usize::try_from(offset).ok()?..usize::try_from(self.len).ok()?)
    }
}

/// One shard's log.
#[derive(Debug)]
pub struct Log {
    dir: PathBuf,
    segment_size: u64,
    segments: BTreeMap<u64, Segment>,
    /// Flushed (and, after a commit, durable) end of the log.
    end: u64,
    /// Appended, not yet flushed bytes, starting at `end`.
    pending: Vec<u8>,
    /// Starts of segments opened by pending bytes.
    pending_segments: Vec<u64>,
}

pub(crate) fn io_error(path: &Path, source: std::io::Error) -> StateError {
    StateError::Io { path: path.display().to_string(), source }
}

pub(crate) fn corrupt(path: &Path, reason: impl Into<String>) -> StateError {
    StateError::CorruptDatabase { path: path.display().to_string(), reason: reason.into() }
}

fn segment_name(start: u64) -> String {
    format!("seg-{start:016x}.log")
}

fn parse_segment_name(name: &str) -> Option<u64> {
    let hex = name.strip_prefix("seg-")?.strip_suffix(".log")?;
    if hex.len() != 16 {
        return None;
    }
    u64::from_str_radix(hex, 16).ok()
}

/// Files written by [`Log::write_pending`] and not yet fsynced; [`Log::sync`] takes it.
#[must_use = "written log bytes are durable only once synced"]
#[derive(Debug, Default)]
pub struct Unsynced {
    /// Starts of the segments written.
    segments: Vec<u64>,
    /// A segment was created, so the directory's entries must be synced too.
    directory: bool,
}

impl Log {
    /// Opens the log in `dir`, cutting it back to `committed_end`: segments that start at or after
    /// it are removed and the last one is truncated, which discards a partially written block.
    pub fn open(dir: &Path, segment_size: u64, committed_end: u64) -> Result<Self, StateError> {
        fs::create_dir_all(dir).map_err(|e| io_error(dir, e))?;
        let mut starts = Vec::new();
        for item in fs::read_dir(dir).map_err(|e| io_error(dir, e))? {
            let item = item.map_err(|e| io_error(dir, e))?;
            if let Some(start) = item.file_name().to_str().and_then(parse_segment_name) {
                starts.push(start);
            }
        }
        starts.sort_unstable();
        let mut segments = BTreeMap::new();
        let mut expected_start: Option<u64> = None;
        for start in starts {
            let path = dir.join(segment_name(start));
            if start >= committed_end {
                // Written after the last commit: discard.
                fs::remove_file(&path).map_err(|e| io_error(&path, e))?;
                continue;
            }
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .open(&path)
                .map_err(|e| io_error(&path, e))?;
            let mut len = file.metadata().map_err(|e| io_error(&path, e))?.len();
            if let Some(expected) = expected_start {
                if expected != start {
                    return Err(corrupt(
                        &path,
                        format!("segment starts at {start}, expected {expected}"),
                    ));
                }
            }
            if start + len > committed_end {
                file.set_len(committed_end - start).map_err(|e| io_error(&path, e))?;
                file.sync_all().map_err(|e| io_error(&path, e))?;
                len = committed_end - start;
            }
            expected_start = Some(start + len);
            segments.insert(start, Segment::new(path, file, len, segment_size));
        }
        let flushed_end = expected_start.unwrap_or(0);
        if flushed_end != committed_end {
            return Err(corrupt(
                dir,
                format!("log ends at {flushed_end} but the last commit recorded {committed_end}"),
            ));
        }
        sync_dir(dir)?;
        Ok(Log {
            dir: dir.to_path_buf(),
            segment_size,
            segments,
            end: committed_end,
            pending: Vec::new(),
            pending_segments: Vec::new(),
        })
    }

    /// Flushed end of the log.
    pub fn end(&self) -> u64 {
        self.end
    }

    /// Start of the first segment still on disk.
    pub fn first_position(&self) -> u64 {
        self.segments.keys().next().copied().unwrap_or(self.end)
    }

    /// Bytes in segment files on disk.
    pub fn disk_bytes(&self) -> u64 {
        self.segments.values().map(|segment| segment.len).sum()
    }

    /// Appends encoded entry bytes; returns the position they will have.
    pub fn append(&mut self, bytes: &[u8]) -> u64 {
        let position = self.end + self.pending.len() as u64;
        let current_start =
            self.pending_segments.last().or_else(|| self.segments.keys().next_back()).copied();
        let opens_segment = match current_start {
            None => true,
            Some(start) => {
                position > start && position - start + bytes.len() as u64 > self.segment_size
            }
        };
        if opens_segment {
            self.pending_segments.push(position);
        }
        self.pending.extend_from_slice(bytes);
        position
    }

    /// Writes pending bytes to their segment files and fsyncs every file touched (and the
    /// directory when a segment was created).
    #[cfg(test)]
    pub fn flush(&mut self) -> Result<(), StateError> {
        let unsynced = self.write_pending()?;
        self.sync(unsynced)
    }

    /// Writes pending bytes to their segment files, where readers find them, without making
    /// them durable: [`Self::sync`] does that with the log shared, so a commit need not keep
    /// readers out while the disk catches up.
    pub fn write_pending(&mut self) -> Result<Unsynced, StateError> {
        if self.pending.is_empty() {
            return Ok(Unsynced::default());
        }
        let pending_end = self.end + self.pending.len() as u64;
        let mut touched = Vec::new();
        // Bytes that continue the current last segment.
        let first_new = self.pending_segments.first().copied().unwrap_or(pending_end);
        if first_new > self.end {
            let (start, segment) =
                self.segments.iter_mut().next_back().expect("a segment to continue");
            let bytes = &self.pending[..(first_new - self.end) as usize];
            segment
                .file
                .write_all_at(bytes, self.end - start)
                .map_err(|e| io_error(&segment.path, e))?;
            segment.len += bytes.len() as u64;
            touched.push(*start);
        }
        let created = !self.pending_segments.is_empty();
        for (i, start) in self.pending_segments.iter().enumerate() {
            let stop = self.pending_segments.get(i + 1).copied().unwrap_or(pending_end);
            let path = self.dir.join(segment_name(*start));
            let file = OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
                .map_err(|e| io_error(&path, e))?;
            let bytes = &self.pending[(start - self.end) as usize..(stop - self.end) as usize];
            file.write_all_at(bytes, 0).map_err(|e| io_error(&path, e))?;
            let len = bytes.len() as u64;
            self.segments.insert(*start, Segment::new(path, file, len, self.segment_size));
            touched.push(*start);
        }
        self.end = pending_end;
        self.pending.clear();
        // A large block must not pin its buffer for the life of the store.
        self.pending.shrink_to(KEPT_BUFFER);
        self.pending_segments.clear();
        Ok(Unsynced { segments: touched, directory: created })
    }

    /// Fsyncs the files [`Self::write_pending`] wrote (and the directory when it created a
    /// segment). No segment may be removed in between.
    pub fn sync(&self, unsynced: Unsynced) -> Result<(), StateError> {
        for start in unsynced.segments {
            let segment = self.segments.get(&start).ok_or_else(|| {
                corrupt(&self.dir, format!("segment at {start} removed before it was synced"))
            })?;
            segment.file.sync_data().map_err(|e| io_error(&segment.path, e))?;
        }
        if unsynced.directory {
            sync_dir(&self.dir)?;
        }
        Ok(())
    }

    /// The key of the entry at `position`, read from its header alone: the index compares keys
    /// whose tags collide, and decoding the whole entry would copy a value of up to 16 MiB.
    pub fn read_key(&self, position: u64) -> Result<KeyHash, StateError> {
        let mut first = [0u8; ENTRY_HEADER_LEN];
        let (head, available): (&[u8], usize) = if position >= self.end {
            let pending = self.pending.get((position - self.end) as usize..).unwrap_or_default();
            (pending, pending.len())
        } else {
            let (segment, offset) = self.segment_at(position)?;
            let available = (segment.len - offset) as usize;
            match segment.mapped_from(offset) {
                Some(bytes) => (bytes, available),
                None => {
                    let head = &mut first[..available.min(ENTRY_HEADER_LEN)];
                    read_exact(segment, head, offset)?;
                    (head, available)
                }
            }
        };
        // The header is checked as a full read checks it (its lengths agree, and the entry
        // ends where its bytes do), so a corrupt position fails here too rather than comparing
        // garbage.
        let corrupt_entry =
            |reason: String| corrupt(&self.dir, format!("entry at {position}: {reason}"));
        let (len, _) = checked_header(head).map_err(|e| corrupt_entry(e.to_string()))?;
        if len > available {
            return Err(corrupt_entry(format!("{len} bytes run past the {available} there")));
        }
        Ok(KeyHash(head[4..36].try_into().expect("a header holds the key")))
    }

    /// The flushed segment holding `position`, and the offset of `position` in it.
    fn segment_at(&self, position: u64) -> Result<(&Segment, u64), StateError> {
        let (start, segment) =
            self.segments.range(..=position).next_back().ok_or_else(|| {
                corrupt(&self.dir, format!("no segment holds position {position}"))
            })?;
        let offset = position - start;
        if offset >= segment.len {
            return Err(corrupt(
                &segment.path,
                format!("position {position} is past the segment end"),
            ));
        }
        Ok((segment, offset))
    }

    /// Reads the entry at `position` (flushed, or appended in the current block).
    pub fn read_entry(&self, position: u64) -> Result<(Entry, usize), StateError> {
        if position >= self.end {
            // Appended during the current block and not yet flushed.
            let at = (position - self.end) as usize;
            let bytes = self.pending.get(at..).unwrap_or_default();
            return Entry::decode(bytes)
                .map_err(|e| corrupt(&self.dir, format!("pending entry at {position}: {e}")));
        }
        let (segment, offset) = self.segment_at(position)?;
        let available = (segment.len - offset) as usize;
        // Mapped, the head is every flushed byte from `offset`; else a first read.
        let mut first = [0u8; FIRST_READ];
        let head: &[u8] = match segment.mapped_from(offset) {
            Some(bytes) => bytes,
            None => {
                let head = &mut first[..available.min(FIRST_READ)];
                read_exact(segment, head, offset)?;
                head
            }
        };
        let len = declared_len(head)
            .map_err(|e| corrupt(&segment.path, format!("entry at {position}: {e}")))?;
        if len > available {
            return Err(corrupt(
                &segment.path,
                format!("entry at {position} runs past the segment end"),
            ));
        }
        let decoded = if len <= head.len() {
            Entry::decode(&head[..len])
        } else {
            let mut buffer = vec![0u8; len];
            buffer[..head.len()].copy_from_slice(head);
            read_exact(segment, &mut buffer[head.len()..], offset + head.len() as u64)?;
            Entry::decode(&buffer)
        };
        decoded.map_err(|e| corrupt(&segment.path, format!("entry at {position}: {e}")))
    }

    /// Deletes whole segments that end at or before `position`, except the last segment.
    /// Returns the starts of the deleted segments.
    pub fn delete_segments_before(&mut self, position: u64) -> Result<Vec<u64>, StateError> {
        let last = self.segments.keys().next_back().copied();
        let doomed: Vec<u64> = self
            .segments
            .iter()
            .filter(|(start, segment)| Some(**start) != last && *start + segment.len <= position)
            .map(|(start, _)| *start)
            .collect();
        for start in &doomed {
            let segment = self.segments.remove(start).expect("listed above");
            fs::remove_file(&segment.path).map_err(|e| io_error(&segment.path, e))?;
        }
        if !doomed.is_empty() {
            sync_dir(&self.dir)?;
        }
        Ok(doomed)
    }

    /// Calls `visit(position, entry bytes)` for every flushed entry from `from` (an entry
    /// boundary at or after the first segment's start) to the end, in log order. Stops at the
    /// first error, including a malformed entry.
    pub fn scan(
        &self,
        from: u64,
        mut visit: impl FnMut(u64, &[u8]) -> Result<(), StateError>,
    ) -> Result<(), StateError> {
        const CHUNK: usize = 8 << 20;
        for (start, segment) in self.segments.range(..self.end) {
            let seg_end = start + segment.len;
            if seg_end <= from {
                continue;
            }
            let mut position = from.max(*start);
            let mut read_to = position;
            let mut buffer: Vec<u8> = Vec::new();
            // `buffer[consumed..]` holds the bytes from `position` to `read_to`.
            let mut consumed = 0;
            while position < seg_end {
                let rest = &buffer[consumed..];
                let need = match declared_len(rest) {
                    Ok(len) => len,
                    Err(_) if rest.len() < super::entry::ENTRY_HEADER_LEN => {
                        super::entry::ENTRY_HEADER_LEN
                    }
                    Err(e) => {
                        return Err(corrupt(&segment.path, format!("entry at {position}: {e}")))
                    }
                };
                if rest.len() >= need {
                    visit(position, &rest[..need])?;
                    consumed += need;
                    position += need as u64;
                    continue;
                }
                if read_to >= seg_end {
                    return Err(corrupt(
                        &segment.path,
                        format!("entry at {position} runs past the segment end"),
                    ));
                }
                buffer.drain(..consumed);
                consumed = 0;
                let want = (CHUNK.max(need) as u64).min(seg_end - read_to) as usize;
                let have = buffer.len();
                buffer.resize(have + want, 0);
                read_exact(segment, &mut buffer[have..], read_to - start)?;
                read_to += want as u64;
            }
        }
        Ok(())
    }
}

fn read_exact(segment: &Segment, buffer: &mut [u8], offset: u64) -> Result<(), StateError> {
    segment.file.read_exact_at(buffer, offset).map_err(|e| io_error(&segment.path, e))
}

/// fsyncs a directory so that file creations, renames and removals in it are durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), StateError> {
    File::open(dir).and_then(|d| d.sync_all()).map_err(|e| io_error(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64) -> Entry {
        // Sizes around the first read (256 bytes) and past the segment size (4 KiB).
        let value_len = match index % 5 {
            0 => 0,
            1 => 100,
            2 => 250,
            3 => 700,
            _ => 5000,
        };
        Entry {
            key: KeyHash([index as u8; 32]),
            next: KeyHash([!(index as u8); 32]),
            version: index,
            serial: index * 3,
            value: (0..value_len).map(|byte| (byte as u64 ^ index) as u8).collect(),
            deactivated: (0..index % 3).collect(),
        }
    }

    fn read_all(log: &Log, positions: &[(u64, Entry)]) {
        for (position, expected) in positions {
            let (entry, len) = log.read_entry(*position).unwrap();
            assert_eq!((&entry, len), (expected, expected.encoded_len()), "at {position}");
            assert_eq!(log.read_key(*position).unwrap(), expected.key, "key at {position}");
        }
    }

    /// Entries spread over many segments read back the same mapped, through `pread`, and after a
    /// reopen; a position inside an entry is a typed error.
    #[test]
    fn mapped_and_pread_reads_agree_across_segments() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), 4096, 0).unwrap();
        let mut positions = Vec::new();
        for index in 0..120 {
            let entry = entry(index);
            positions.push((log.append(&entry.encode()), entry));
            if index % 7 == 6 {
                log.flush().unwrap();
            }
        }
        log.flush().unwrap();
        assert!(log.segments.len() > 20, "{} segments", log.segments.len());
        assert!(log.segments.values().all(|segment| segment.map.is_some()));
        read_all(&log, &positions);

        for segment in log.segments.values_mut() {
            segment.map = None;
        }
        read_all(&log, &positions);

        let end = log.end();
        drop(log);
        let log = Log::open(dir.path(), 4096, end).unwrap();
        assert!(log.segments.values().all(|segment| segment.map.is_some()));
        read_all(&log, &positions);
        let (last, _) = log.segments.iter().next_back().unwrap();
        let inside_last = last + log.segments[last].len;
        assert!(matches!(log.read_entry(inside_last - 1), Err(StateError::CorruptDatabase { .. })));
        assert!(matches!(log.read_key(inside_last - 1), Err(StateError::CorruptDatabase { .. })));
    }

    /// A key is read only from a header whose lengths agree and whose entry fits in the bytes
    /// after it.
    #[test]
    fn keys_of_inconsistent_headers_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), 4096, 0).unwrap();
        let bytes = entry(0).encode();
        assert_eq!(bytes.len(), ENTRY_HEADER_LEN);
        // Declares 8 bytes more than its (empty) value and deactivations hold.
        let mut longer = bytes.clone();
        longer[..4].copy_from_slice(&(ENTRY_HEADER_LEN as u32 + 8).to_le_bytes());
        // Consistent, one deactivation, but its 8 bytes are not there: the buffer ends.
        let mut cut = longer.clone();
        cut[88..90].copy_from_slice(&1u16.to_le_bytes());
        let sound = log.append(&bytes);
        let longer = log.append(&longer);
        let cut = log.append(&cut);
        assert_eq!(log.read_key(sound).unwrap(), entry(0).key);
        for position in [longer, cut] {
            let error = log.read_key(position).unwrap_err();
            assert!(matches!(error, StateError::CorruptDatabase { .. }), "{error}");
        }
    }

    /// Keys of entries still pending (appended in the current block) read from the buffer.
    #[test]
    fn pending_keys_read_from_the_buffer() {
        let dir = tempfile::tempdir().unwrap();
        let mut log = Log::open(dir.path(), 4096, 0).unwrap();
        let positions: Vec<_> =
            (0..10).map(|index| (log.append(&entry(index).encode()), entry(index))).collect();
        read_all(&log, &positions);
    }
}
