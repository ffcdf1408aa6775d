//! Where everything sits in a ring segment (docs/transport.md has the same table).
//!
//! The segment is an array of little-endian u64 words, every area aligned to a 64-byte cache
//! line, and every word is read and written as an atomic: the header's static words once at
//! creation, the cursor, heartbeat, reader entries and slot stamps with acquire/release, the
//! frame words relaxed between the two stamps of their slot's seqlock.
//!
//! ```text
//! 0      header          512 B   static words, then the cursor, heartbeat, waiters and futex
//!                                words on lines of their own
//! 512    reader table    64 B x max_readers   pid, start, position, lost, gaps, attached_ns
//! ...    metadata        meta_cap B            opaque bytes (the Python layer: JSON symbols)
//! ...    latest table    stride x max_symbols  each symbol's last frame (a slot)
//! ...    ring            stride x capacity     the frames (slots)
//! slot:  word 0 stamp, words 1.. the FPF1 frame, padded to a multiple of 64 B
//! ```

/// `b"FPRING01"` read as a little-endian u64.
pub const MAGIC: u64 = u64::from_le_bytes(*b"FPRING01");
/// Version of this layout; an attach refuses any other.
pub const LAYOUT_VERSION: u64 = 1;
pub const CACHE_LINE: usize = 64;
pub const WORD: usize = 8;

// Header words (index into the segment's u64 words).
pub const W_MAGIC: usize = 0;
pub const W_LAYOUT_VERSION: usize = 1;
pub const W_FRAME_SIZE: usize = 2;
pub const W_SLOT_STRIDE: usize = 3;
pub const W_CAPACITY: usize = 4;
pub const W_MAX_SYMBOLS: usize = 5;
pub const W_MAX_READERS: usize = 6;
pub const W_SCHEMA_HASH64: usize = 7;
pub const W_WRITER_PID: usize = 8;
pub const W_WRITER_START: usize = 9;
pub const W_EPOCH: usize = 10;
pub const W_STATE: usize = 11;
pub const W_META_LEN: usize = 12;
pub const W_META_CAP: usize = 13;
/// Bytes 128..192: the feature-set id, NUL padded.
pub const W_FEATURE_SET_ID: usize = 16;
pub const FEATURE_SET_ID_BYTES: usize = 64;
/// Frames published so far (the next frame's position): its own cache line.
pub const W_CURSOR: usize = 24;
/// Wall-clock ns of the writer's last publish or heartbeat: its own cache line.
pub const W_HEARTBEAT: usize = 32;
/// Readers parked in a futex wait (the writer wakes them only when this is not 0): its own
/// cache line.
pub const W_WAITERS: usize = 40;
/// The futex word readers park on (its low 32 bits): the writer bumps it before a wake.
pub const W_FUTEX: usize = 48;
pub const HEADER_BYTES: usize = 512;

// The cursor and the heartbeat sit on cache lines of their own inside the header (a reader
// polling the cursor never shares a line with the static words or the heartbeat).
const _: () = assert!(W_CURSOR * WORD % CACHE_LINE == 0);
const _: () = assert!(W_HEARTBEAT * WORD % CACHE_LINE == 0);
const _: () = assert!(W_WAITERS * WORD % CACHE_LINE == 0 && W_FUTEX * WORD % CACHE_LINE == 0);
const _: () = assert!(W_FUTEX * WORD + CACHE_LINE <= HEADER_BYTES);
const _: () = assert!(W_FEATURE_SET_ID * WORD + FEATURE_SET_ID_BYTES <= W_CURSOR * WORD);

// Reader entry words (offset from the entry's first word).
pub const R_PID: usize = 0;
pub const R_START: usize = 1;
pub const R_POSITION: usize = 2;
pub const R_LOST: usize = 3;
pub const R_GAPS: usize = 4;
pub const R_ATTACHED_NS: usize = 5;
pub const READER_BYTES: usize = 64;

/// `W_STATE` values.
pub const STATE_LIVE: u64 = 1;
pub const STATE_CLOSED: u64 = 2;

/// The shape of a ring: what its creator chooses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingSpec {
    /// Slots in the ring, a power of two (a reader may fall this many frames behind).
    pub capacity: usize,
    /// Entries of the last-frame-per-symbol table; symbol ids must be below it.
    pub max_symbols: usize,
    /// Entries of the reader table (readers beyond it attach without a published lag).
    pub max_readers: usize,
    /// Bytes of one frame: an FPF1 frame of `n` values is 64 + 8 n.
    pub frame_size: usize,
    /// Bytes kept for the opaque metadata (the symbol table).
    pub meta_cap: usize,
    pub feature_set_id: String,
    pub schema_hash64: u64,
}

/// Byte offsets of the areas of a segment of one shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offsets {
    pub stride: usize,
    pub readers: usize,
    pub meta: usize,
    pub latest: usize,
    pub ring: usize,
    pub total: usize,
}

pub const fn round_up(n: usize, to: usize) -> usize {
    n.div_ceil(to) * to
}

/// Bytes of one slot: the stamp word and the frame, padded to whole cache lines.
pub const fn slot_stride(frame_size: usize) -> usize {
    round_up(WORD + frame_size, CACHE_LINE)
}

impl Offsets {
    /// The areas for these sizes, or None when the total overflows a usize.
    pub fn new(
        capacity: usize,
        max_symbols: usize,
        max_readers: usize,
        frame_size: usize,
        meta_cap: usize,
    ) -> Option<Self> {
        let stride = slot_stride(frame_size);
        let readers = HEADER_BYTES;
        let meta = readers.checked_add(max_readers.checked_mul(READER_BYTES)?)?;
        let latest = meta.checked_add(round_up(meta_cap, CACHE_LINE))?;
        let ring = latest.checked_add(max_symbols.checked_mul(stride)?)?;
        let total = ring.checked_add(capacity.checked_mul(stride)?)?;
        Some(Self {
            stride,
            readers,
            meta,
            latest,
            ring,
            total,
        })
    }

    pub fn of(spec: &RingSpec) -> Option<Self> {
        Self::new(
            spec.capacity,
            spec.max_symbols,
            spec.max_readers,
            spec.frame_size,
            spec.meta_cap,
        )
    }
}

/// The seqlock stamp of a slot holding the frame at `position`, once written (even).
#[inline]
pub const fn stamp_done(position: u64) -> u64 {
    2 * position + 2
}

/// The stamp while the frame at `position` is being written (odd).
#[inline]
pub const fn stamp_writing(position: u64) -> u64 {
    2 * position + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn areas_are_cache_line_aligned_and_ordered() {
        let o = Offsets::new(1024, 8, 16, 240, 1000).unwrap();
        assert_eq!(o.stride, 256);
        for at in [o.readers, o.meta, o.latest, o.ring, o.total] {
            assert_eq!(at % CACHE_LINE, 0, "{o:?}");
        }
        assert_eq!(o.meta, 512 + 16 * 64);
        assert_eq!(o.latest, o.meta + 1024);
        assert_eq!(o.ring, o.latest + 8 * 256);
        assert_eq!(o.total, o.ring + 1024 * 256);
        assert!(Offsets::new(usize::MAX, 1, 1, 240, 0).is_none());
        assert_eq!(MAGIC.to_le_bytes(), *b"FPRING01");
    }
}
