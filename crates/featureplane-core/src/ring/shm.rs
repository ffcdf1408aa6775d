//! The segment file under /dev/shm, mapped shared, seen as `&[AtomicU64]`.
//!
//! The one module of the crate with `unsafe` (the workspace denies it elsewhere): a mapping
//! must become a slice of atomics, and nothing safe does that. Everything else in `ring` goes
//! through [`Segment::words`], so every access to shared memory is an atomic load or store:
//! no data race in the Rust memory model, whatever another process does at the same time.

#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io;
use std::mem::{align_of, size_of};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::AtomicU64;

use memmap2::{MmapOptions, MmapRaw};

use super::layout::WORD;

// The cast below relies on these; both hold on every 64-bit target the crate builds for.
const _: () = assert!(size_of::<AtomicU64>() == WORD);
const _: () = assert!(align_of::<AtomicU64>() == WORD);

/// A mapped ring segment; unmapped on drop (the file stays until unlinked).
pub struct Segment {
    map: MmapRaw,
    words: usize,
}

impl Segment {
    /// Create `path` (which must not exist) with `len` zeroed bytes, and map it.
    pub fn create_new(path: &Path, len: usize) -> io::Result<Self> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)?;
        file.set_len(len as u64)?;
        Self::map(file, len)
    }

    /// Map an existing segment, read and write (readers publish their position in it).
    pub fn open(path: &Path) -> io::Result<Self> {
        let file = OpenOptions::new().read(true).write(true).open(path)?;
        let len = usize::try_from(file.metadata()?.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "segment too large"))?;
        Self::map(file, len)
    }

    fn map(file: File, len: usize) -> io::Result<Self> {
        if len == 0 || len % WORD != 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("segment of {len} bytes is not a whole number of words"),
            ));
        }
        let map = MmapOptions::new().len(len).map_raw(&file)?;
        Ok(Self {
            map,
            words: len / WORD,
        })
    }

    /// The whole segment as atomic words.
    #[inline]
    pub fn words(&self) -> &[AtomicU64] {
        // SAFETY: `map` is a live shared mapping of exactly `words * 8` bytes (checked in
        // `map`), page aligned by mmap, so 8-aligned as AtomicU64 needs (asserted above, with
        // its size). It stays mapped while `self` lives, and the slice borrows `self`. The
        // memory is only ever accessed through these atomics (MmapRaw hands out no `&[u8]`),
        // and AtomicU64 allows shared mutation through `&`, so aliasing the mapping from
        // other processes or other `Segment`s of the same file is sound. The file is
        // created at its full size and never truncated by the ring; a third party truncating
        // it would fault the process (SIGBUS), as with any shared mapping.
        unsafe { std::slice::from_raw_parts(self.map.as_ptr().cast::<AtomicU64>(), self.words) }
    }

    pub fn len(&self) -> usize {
        self.words * WORD
    }
}
