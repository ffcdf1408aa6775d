//! The segment file under /dev/shm, mapped shared, seen as `&[AtomicU64]`.
//!
//! The one module of the crate with `unsafe` (the workspace denies it elsewhere): a mapping
//! must become a slice of atomics, a parked reader waits on a futex, and the latency loops
//! read `CLOCK_MONOTONIC` as ns, and nothing safe does any of them. Everything else in `ring` goes
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
        // MAP_POPULATE: every page of the segment is allocated (the writer's create) and
        // mapped (every attach) now, not on the first touch of each slot. Without it, a ring
        // of 256-byte slots takes a page fault in the writer and another in each reader every
        // 16th frame of the first lap: a few us each, on 6% of frames, the ring's p99.
        let map = MmapOptions::new().len(len).populate().map_raw(&file)?;
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

    /// Lock the mapping's pages in memory (`mlock`): never swapped out, so no read or write
    /// of the ring waits on a major fault. Needs `CAP_IPC_LOCK` or a `RLIMIT_MEMLOCK` of the
    /// segment's size; the error says which limit refused it.
    pub fn lock(&self) -> io::Result<()> {
        self.map.lock()
    }
}

/// `CLOCK_MONOTONIC` in ns: one clock for every process of the machine (the kernel's, read
/// through the vDSO, about 20 ns), never stepped by NTP as the wall clock can be.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a live, writable timespec on this stack for the call; CLOCK_MONOTONIC
    // is supported by every Linux kernel, so the call only writes `ts`.
    unsafe {
        libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts);
    }
    (ts.tv_sec as u64).wrapping_mul(1_000_000_000) + ts.tv_nsec as u64
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
