//! The changed-path Bloom filters git stores in `objects/info/commit-graph` (chunks BIDX and
//! BDAT, written by `git commit-graph write --changed-paths`), which gix does not read. A
//! commit's filter holds every path (and each leading directory) that differs from its first
//! parent, so "not in the filter" lets history walks skip reading that commit's trees.
//!
//! Only the single-file graph is read; anything unexpected (a split chain, another hash, an
//! unknown version, bad offsets) means no filters, which only costs speed.

use std::path::Path;

use gix::oid;

/// Larger graphs are not read whole into memory.
const MAX_FILE_BYTES: u64 = 64 * 1024 * 1024;
const SHA1_LEN: usize = 20;
const SEED0: u32 = 0x293a_e76f;
const SEED1: u32 = 0x7e64_6e2c;

pub(crate) struct Filters {
    data: Vec<u8>,
    /// Sorted commit ids, `count * 20` bytes.
    oids: std::ops::Range<usize>,
    /// Per commit, the end of its filter in `filters` (u32 big-endian).
    index: std::ops::Range<usize>,
    /// The filter bytes (BDAT after its 12-byte header).
    filters: std::ops::Range<usize>,
    count: usize,
    version: u32,
    num_hashes: u32,
}

/// The hashed keys of one path (the path and its leading directories) for one `Filters`.
pub(crate) struct Keys(Vec<(u32, u32)>);

impl Filters {
    /// The filters of the repository at `git_dir`, if its commit-graph has usable ones.
    pub(crate) fn load(git_dir: &Path) -> Option<Filters> {
        let file = git_dir.join("objects/info/commit-graph");
        if std::fs::metadata(&file).ok()?.len() > MAX_FILE_BYTES {
            return None;
        }
        Filters::parse(std::fs::read(file).ok()?)
    }

    fn parse(data: Vec<u8>) -> Option<Filters> {
        // Header: signature, version 1, hash version 1 (SHA-1), chunk count, base graph count.
        if data.get(..6)? != b"CGPH\x01\x01" || *data.get(7)? != 0 {
            return None;
        }
        let chunks = usize::from(*data.get(6)?);
        let (mut oids, mut index, mut bdat) = (None, None, None);
        for i in 0..chunks {
            let at = 8 + 12 * i;
            let id = data.get(at..at + 4)?;
            let start = usize::try_from(be64(&data, at + 4)?).ok()?;
            let end = usize::try_from(be64(&data, at + 16)?).ok()?;
            if start > end || end > data.len() {
                return None;
            }
            match id {
                b"OIDL" => oids = Some(start..end),
                b"BIDX" => index = Some(start..end),
                b"BDAT" => bdat = Some(start..end),
                // A base-graph list would mean this file is a chain layer: not expected here.
                b"BASE" => return None,
                _ => {}
            }
        }
        let (oids, index, bdat) = (oids?, index?, bdat?);
        let count = oids.len() / SHA1_LEN;
        if oids.len() % SHA1_LEN != 0 || index.len() != count * 4 || bdat.len() < 12 {
            return None;
        }
        let version = be32(&data, bdat.start)?;
        let num_hashes = be32(&data, bdat.start + 4)?;
        if !(version == 1 || version == 2) || num_hashes == 0 || num_hashes > 32 {
            return None;
        }
        Some(Filters {
            oids,
            index,
            filters: bdat.start + 12..bdat.end,
            count,
            version,
            num_hashes,
            data,
        })
    }

    /// The keys for `path` (segments without slashes), or `None` when the filters cannot
    /// answer for it: the root, or bytes >= 0x80 under version 1 (whose hash depended on the
    /// platform's `char` signedness).
    pub(crate) fn keys(&self, segments: &[&str]) -> Option<Keys> {
        if segments.is_empty() {
            return None;
        }
        let path = segments.join("/");
        if self.version == 1 && !path.is_ascii() {
            return None;
        }
        let mut keys = Vec::with_capacity(segments.len());
        let mut end = 0;
        for segment in segments {
            end += segment.len();
            let key = &path.as_bytes()[..end];
            keys.push((murmur3(SEED0, key), murmur3(SEED1, key)));
            end += 1;
        }
        Some(Keys(keys))
    }

    /// False only when `commit`'s filter proves the path unchanged against its first parent;
    /// true ("maybe") for commits not in the graph, without a computed filter, or whose
    /// filter was too large (all bits set) or simply matches.
    pub(crate) fn maybe_changed(&self, commit: &oid, keys: &Keys) -> bool {
        self.filter(commit).is_none_or(|filter| {
            let bits = filter.len() as u64 * 8;
            // Every key must be present: a changed path brings all its leading directories.
            keys.0.iter().all(|&(h0, h1)| {
                (0..self.num_hashes).all(|i| {
                    let bit = u64::from(h0.wrapping_add(i.wrapping_mul(h1))) % bits;
                    filter
                        .get((bit / 8) as usize)
                        .is_some_and(|byte| byte & (1 << (bit % 8)) != 0)
                })
            })
        })
    }

    /// The commit's filter bytes; `None` when unknown (absent, not computed, or bad offsets).
    fn filter(&self, commit: &oid) -> Option<&[u8]> {
        let oids = self.data.get(self.oids.clone())?;
        let pos = binary_search(oids, self.count, commit.as_bytes())?;
        let end = usize::try_from(be32(&self.data, self.index.start + 4 * pos)?).ok()?;
        let start = match pos {
            0 => 0,
            _ => usize::try_from(be32(&self.data, self.index.start + 4 * (pos - 1))?).ok()?,
        };
        let filters = self.data.get(self.filters.clone())?;
        // An empty range means git computed no filter for this commit.
        filters.get(start..end).filter(|f| !f.is_empty())
    }
}

fn binary_search(oids: &[u8], count: usize, id: &[u8]) -> Option<usize> {
    let (mut lo, mut hi) = (0, count);
    while lo < hi {
        let mid = lo + (hi - lo) / 2;
        let at = oids.get(mid * SHA1_LEN..(mid + 1) * SHA1_LEN)?;
        match at.cmp(id) {
            std::cmp::Ordering::Less => lo = mid + 1,
            std::cmp::Ordering::Greater => hi = mid,
            std::cmp::Ordering::Equal => return Some(mid),
        }
    }
    None
}

fn be32(data: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(data.get(at..at + 4)?.try_into().ok()?))
}

fn be64(data: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_be_bytes(data.get(at..at + 8)?.try_into().ok()?))
}

/// murmur3_32 as git's version 2 filters use it (bytes unsigned, little-endian blocks); for
/// ASCII input version 1 gives the same.
pub(crate) fn murmur3(seed: u32, data: &[u8]) -> u32 {
    const C1: u32 = 0xcc9e_2d51;
    const C2: u32 = 0x1b87_3593;
    let mix = |k: u32| k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2);
    let mut h = seed;
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        h = (h ^ mix(k))
            .rotate_left(13)
            .wrapping_mul(5)
            .wrapping_add(0xe654_6b64);
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        let k = tail
            .iter()
            .rev()
            .fold(0u32, |k, &byte| (k << 8) | u32::from(byte));
        h ^= mix(k);
    }
    h ^= data.len() as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
}
