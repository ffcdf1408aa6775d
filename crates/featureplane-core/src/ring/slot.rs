//! The per-slot seqlock: how one frame goes into a slot and comes out whole or not at all.
//!
//! A slot is a stamp word followed by the frame's words. For the frame at ring position `p`
//! the writer stores the odd stamp `2p + 1`, a release fence, the frame words (relaxed), then
//! the even stamp `2p + 2` with release. A reader that wants position `p` loads the stamp with
//! acquire and requires `2p + 2`, copies the words (relaxed), issues an acquire fence and
//! loads the stamp again: equal means no store of a later frame reached any word it copied
//! (had one, the fences would make the later odd stamp visible to the second load). A stamp
//! above `2p + 2` means the slot already holds a later frame: the reader was lapped.

use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{fence, AtomicU64};

use super::layout::{stamp_done, stamp_writing, WORD};

/// Little-endian word of an 8-byte chunk.
#[inline(always)]
pub fn le_word(chunk: &[u8]) -> u64 {
    let mut b = [0u8; WORD];
    b.copy_from_slice(chunk);
    u64::from_le_bytes(b)
}

/// Write `frame` (a whole number of words) into the slot `slot` (stamp first) as position
/// `position`.
#[inline(always)]
pub fn write(slot: &[AtomicU64], position: u64, frame: &[u8]) {
    let (stamp, words) = slot.split_at(1);
    stamp[0].store(stamp_writing(position), Relaxed);
    fence(Release);
    for (w, chunk) in words.iter().zip(frame.chunks_exact(WORD)) {
        w.store(le_word(chunk), Relaxed);
    }
    stamp[0].store(stamp_done(position), Release);
}

/// What a read of one slot found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// The frame was copied whole.
    Copied,
    /// The slot holds an earlier frame or none yet (the writer has not finished `position`).
    NotYet,
    /// The slot holds (or is taking) the frame at this later position: `position` is gone.
    Overwritten(u64),
}

/// Copy the frame at `position` out of `slot` into `out` (a whole number of words).
#[inline(always)]
pub fn read(slot: &[AtomicU64], position: u64, out: &mut [u8]) -> Read {
    let (stamp, words) = slot.split_at(1);
    let want = stamp_done(position);
    let s1 = stamp[0].load(Acquire);
    if s1 != want {
        return classify(s1, want);
    }
    for (w, chunk) in words.iter().zip(out.chunks_exact_mut(WORD)) {
        chunk.copy_from_slice(&w.load(Relaxed).to_le_bytes());
    }
    fence(Acquire);
    let s2 = stamp[0].load(Relaxed);
    if s2 == s1 {
        Read::Copied
    } else {
        classify(s2, want)
    }
}

#[inline]
fn classify(stamp: u64, want: u64) -> Read {
    if stamp > want {
        // 2q + 1 (writing q) and 2q + 2 (holding q) both give q.
        Read::Overwritten((stamp - 1) / 2)
    } else {
        Read::NotYet
    }
}

/// Copy whatever frame the slot holds (the last-frame table): its position, or None when the
/// slot has never been written. Retries while the writer is in the slot; gives up (None)
/// after `tries` attempts that all met a write, which a writer never causes for long.
pub fn read_any(slot: &[AtomicU64], out: &mut [u8], tries: usize) -> Option<u64> {
    for _ in 0..tries {
        let s1 = slot[0].load(Acquire);
        if s1 == 0 {
            return None;
        }
        if s1 % 2 == 1 {
            std::hint::spin_loop();
            continue;
        }
        let position = (s1 - 2) / 2;
        if read(slot, position, out) == Read::Copied {
            return Some(position);
        }
    }
    None
}
