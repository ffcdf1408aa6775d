//! The segment file under /dev/shm, mapped shared, seen as `&[AtomicU64]`.
//!
//! The one module of the crate with `unsafe` (the workspace denies it elsewhere): a mapping
//! must become a slice of atomics, and a parked reader waits on a futex, and nothing safe
//! does either. Everything else in `ring` goes
//! through [`Segment::words`], so every access to shared memory is an atomic load or store:
//! no data race in the Rust memory model, whatever another process does at the same time.

#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::io;
use std::mem::{align_of, size_of};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use memmap2::{MmapOptions, MmapRaw};

use super::layout::WORD;

// The futex word is the low half of a u64 word: its first 4 bytes on a little-endian machine.
const _: () = assert!(cfg!(target_endian = "little"));
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

/// The futex of a ring word: its low 32 bits.
fn futex_addr(word: &AtomicU64) -> *const u32 {
    word.as_ptr().cast::<u32>().cast_const()
}

/// Sleep until `word`'s low 32 bits change from `expected` (a wake), or `timeout` passes, or
/// a signal: the caller re-checks the ring either way.
pub fn futex_wait(word: &AtomicU64, expected: u32, timeout: Duration) {
    let ts = libc::timespec {
        tv_sec: timeout.as_secs().min(i64::MAX as u64) as libc::time_t,
        tv_nsec: libc::c_long::from(timeout.subsec_nanos() as i32),
    };
    // SAFETY: `futex_addr` points at the first 4 bytes of a live, 8-aligned AtomicU64 of the
    // mapping (little endian: its low half), valid for the call; FUTEX_WAIT only reads it
    // (atomically, in the kernel) and compares it with `expected`. The futex is not
    // FUTEX_PRIVATE: the word is in a shared mapping, and processes wait on it together. The
    // timespec lives on this stack for the call. Any result (woken, EAGAIN, ETIMEDOUT, EINTR)
    // is fine: the caller re-reads the cursor.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            futex_addr(word),
            libc::FUTEX_WAIT,
            expected,
            &ts as *const libc::timespec,
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}

/// Wake every process parked on `word` (after the caller changed it).
pub fn futex_wake(word: &AtomicU64) {
    // SAFETY: as in `futex_wait`: a live, aligned word of the shared mapping; FUTEX_WAKE
    // neither reads nor writes it, it only wakes waiters queued on its address.
    unsafe {
        libc::syscall(
            libc::SYS_futex,
            futex_addr(word),
            libc::FUTEX_WAKE,
            i32::MAX,
            std::ptr::null::<libc::timespec>(),
            std::ptr::null::<u32>(),
            0u32,
        );
    }
}
