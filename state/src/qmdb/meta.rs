//! The metadata record: what the last committed block left on disk.
//!
//! Written to `META.tmp`, fsynced, renamed over `META`, and the directory fsynced: the rename is
//! the commit point. The record ends with a SHA-256 of everything before it, so a damaged record
//! is reported as corruption instead of being trusted.

use super::{
    entry::ENTRY_HEADER_LEN,
    log::{corrupt, io_error, sync_dir},
    shard::ShardMeta,
    Config,
};
use crate::{StateError, SHARD_COUNT};
use alloy_primitives::B256;
use sha2::{Digest, Sha256};
use std::{
    fs::{self, File},
    io::Write,
    path::Path,
};

const MAGIC: &[u8; 8] = b"ZQMDBMTA";
const FORMAT_VERSION: u32 = 1;
const FILE: &str = "META";
const TEMP_FILE: &str = "META.tmp";

/// The committed state of the whole store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    pub config: Config,
    pub height: Option<u64>,
    pub root: B256,
    pub shards: Vec<ShardMeta>,
    pub block_hashes: Vec<(u64, B256)>,
}

impl Meta {
    fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(1024 + 40 * self.block_hashes.len());
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
        out.extend_from_slice(&self.config.segment_size.to_le_bytes());
        out.extend_from_slice(&self.config.compact_min_entries.to_le_bytes());
        out.extend_from_slice(&self.config.compact_utilization.to_le_bytes());
        out.extend_from_slice(&self.config.compact_batch.to_le_bytes());
        out.extend_from_slice(&self.config.keep_heights.to_le_bytes());
        out.push(u8::from(self.height.is_some()));
        out.extend_from_slice(&self.height.unwrap_or(0).to_le_bytes());
        out.extend_from_slice(self.root.as_slice());
        for shard in &self.shards {
            for value in [
                shard.log_end,
                shard.next_serial,
                shard.active_count,
                shard.cursor_serial,
                shard.cursor_position,
            ] {
                out.extend_from_slice(&value.to_le_bytes());
            }
            out.extend_from_slice(&shard.root);
        }
        out.extend_from_slice(&(self.block_hashes.len() as u32).to_le_bytes());
        for (number, hash) in &self.block_hashes {
            out.extend_from_slice(&number.to_le_bytes());
            out.extend_from_slice(hash.as_slice());
        }
        let checksum: [u8; 32] = Sha256::digest(&out).into();
        out.extend_from_slice(&checksum);
        out
    }

    fn decode(bytes: &[u8], path: &Path) -> Result<Self, StateError> {
        let bad = |reason: &str| corrupt(path, reason);
        if bytes.len() < 32 {
            return Err(bad("metadata record is truncated"));
        }
        let (body, checksum) = bytes.split_at(bytes.len() - 32);
        if Sha256::digest(body)[..] != *checksum {
            return Err(bad("metadata checksum does not match"));
        }
        let mut reader = Reader { bytes: body, at: 0 };
        if reader.take(8).ok_or_else(|| bad("truncated"))? != MAGIC {
            return Err(bad("not a QMDB metadata file"));
        }
        let version = reader.u32().ok_or_else(|| bad("truncated"))?;
        if version != FORMAT_VERSION {
            return Err(bad(&format!(
                "metadata format {version} is not supported (expected {FORMAT_VERSION})"
            )));
        }
        let truncated = || corrupt(path, "metadata record is truncated");
        let config = Config {
            segment_size: reader.u64().ok_or_else(truncated)?,
            compact_min_entries: reader.u64().ok_or_else(truncated)?,
            compact_utilization: reader.u32().ok_or_else(truncated)?,
            compact_batch: reader.u32().ok_or_else(truncated)?,
            keep_heights: reader.u64().ok_or_else(truncated)?,
        };
        config.validate().map_err(|e| corrupt(path, e.to_string()))?;
        let has_height = reader.take(1).ok_or_else(truncated)?[0];
        let height = reader.u64().ok_or_else(truncated)?;
        let height = match has_height {
            0 => None,
            1 => Some(height),
            _ => return Err(bad("bad height flag")),
        };
        let root = B256::from_slice(reader.take(32).ok_or_else(truncated)?);
        let mut shards = Vec::with_capacity(SHARD_COUNT);
        for _ in 0..SHARD_COUNT {
            let mut shard = ShardMeta {
                log_end: reader.u64().ok_or_else(truncated)?,
                next_serial: reader.u64().ok_or_else(truncated)?,
                active_count: reader.u64().ok_or_else(truncated)?,
                cursor_serial: reader.u64().ok_or_else(truncated)?,
                cursor_position: reader.u64().ok_or_else(truncated)?,
                root: [0; 32],
            };
            shard.root.copy_from_slice(reader.take(32).ok_or_else(truncated)?);
            if shard.cursor_serial > shard.next_serial
                || shard.cursor_position > shard.log_end
                || shard.active_count > shard.next_serial
            {
                return Err(bad("shard figures are inconsistent"));
            }
            shards.push(shard);
        }
        let count = reader.u32().ok_or_else(truncated)? as usize;
        let mut block_hashes = Vec::with_capacity(count.min(1024));
        for _ in 0..count {
            let number = reader.u64().ok_or_else(truncated)?;
            block_hashes.push((number, B256::from_slice(reader.take(32).ok_or_else(truncated)?)));
        }
        if reader.at != body.len() {
            return Err(bad("trailing bytes in metadata record"));
        }
        Ok(Meta { config, height, root, shards, block_hashes })
    }

    /// Reads the committed record; `None` for a directory that holds no store yet.
    pub fn read(dir: &Path) -> Result<Option<Self>, StateError> {
        let path = dir.join(FILE);
        match fs::read(&path) {
            Ok(bytes) => Self::decode(&bytes, &path).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let shard_dirs: Vec<_> = fs::read_dir(dir)
                    .map_err(|e| io_error(dir, e))?
                    .filter_map(Result::ok)
                    .filter(|item| item.file_name().to_string_lossy().starts_with("shard-"))
                    .map(|item| item.path())
                    .collect();
                // A creation stopped before its first record (a crash, a failed shard) leaves
                // shard files holding at most their sentries and no data: it is created again,
                // which resets them. Anything more is a store whose record is gone.
                if log_bytes(&shard_dirs)? > SHARD_COUNT as u64 * ENTRY_HEADER_LEN as u64 {
                    return Err(corrupt(
                        &path,
                        "shard files hold data but the metadata record is missing; the store \
                         cannot be recovered without it",
                    ));
                }
                Ok(None)
            }
            Err(e) => Err(io_error(&path, e)),
        }
    }

    /// Writes the record durably and atomically (the commit point).
    pub fn write(&self, dir: &Path) -> Result<(), StateError> {
        let temp = dir.join(TEMP_FILE);
        let mut file = File::create(&temp).map_err(|e| io_error(&temp, e))?;
        file.write_all(&self.encode()).map_err(|e| io_error(&temp, e))?;
        file.sync_all().map_err(|e| io_error(&temp, e))?;
        let path = dir.join(FILE);
        fs::rename(&temp, &path).map_err(|e| io_error(&path, e))?;
        sync_dir(dir)
    }
}

struct Reader<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let slice = self.bytes.get(self.at..self.at.checked_add(n)?)?;
        self.at += n;
        Some(slice)
    }
    fn u32(&mut self) -> Option<u32> {
        self.take(4).map(|b| u32::from_le_bytes(b.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Option<u64> {
        self.take(8).map(|b| u64::from_le_bytes(b.try_into().expect("8 bytes")))
    }
}

/// Bytes of log segments in the shard directories `shard_dirs`.
fn log_bytes(shard_dirs: &[std::path::PathBuf]) -> Result<u64, StateError> {
    let mut total = 0;
    for shard_dir in shard_dirs {
        for item in fs::read_dir(shard_dir).map_err(|e| io_error(shard_dir, e))? {
            let item = item.map_err(|e| io_error(shard_dir, e))?;
            if item.file_name().to_string_lossy().starts_with("seg-") {
                total += item.metadata().map_err(|e| io_error(&item.path(), e))?.len();
            }
        }
    }
    Ok(total)
}
