//! A reader of a ring: attaches by name, checks the schema, copies frames out in batches,
//! learns exactly what it lost when the writer lapped it, and publishes its position.

use std::sync::atomic::fence;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use std::time::{Duration, Instant};

use super::layout::*;
use super::shm::{self, Segment};
use super::slot::{self, Read};
use super::status::{self, alive, now_ns, RingStatus, WriterState};
use crate::error::{Error, Result, RingProblem};
use crate::frames::quality::GAP_DETECTED;

/// Where a new reader starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// At the writer's cursor: the next frame published (with the last-frame table for the
    /// current values).
    Live,
    /// At the oldest frame the ring still holds.
    Oldest,
}

/// What a reader expects of a ring; an attach refuses a ring that differs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expect {
    pub feature_set_id: String,
    pub schema_hash64: u64,
    pub frame_size: usize,
}

/// One read: `frames` frames at positions `start..start + frames`, after `lost` frames the
/// reader was lapped over (positions `start - lost..start`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ReadOutcome {
    pub start: u64,
    pub frames: usize,
    pub lost: u64,
    /// The writer closed the ring and the reader has read everything.
    pub closed: bool,
}

/// Longest single futex sleep: a lost wake (a writer that crashed mid-publish) costs at most
/// this much.
const PARK_MAX: Duration = Duration::from_millis(10);

/// Tries of the last-frame table's seqlock before giving a symbol up for this call.
const LATEST_TRIES: usize = 100_000;

pub struct RingReader {
    seg: Segment,
    name: String,
    offsets: Offsets,
    capacity: u64,
    mask: u64,
    frame_size: usize,
    frame_words: usize,
    max_symbols: usize,
    position: u64,
    lost: u64,
    gaps: u64,
    /// Per symbol: a gap happened since its last frame, so its next frame carries GAP.
    pending_gap: Vec<bool>,
    any_pending: bool,
    /// First word of this reader's entry in the reader table, if it got one.
    entry: Option<usize>,
    writer: (u64, u64),
    epoch: u64,
}

impl RingReader {
    /// Attach to the ring `name`.
    ///
    /// Refused: no such ring ([`RingProblem::NotFound`]); not a ring of this layout; another
    /// feature set, schema hash or frame size ([`RingProblem::Schema`]); a writer that is gone
    /// without closing ([`RingProblem::Stale`]) unless `allow_stale` (to drain what is left).
    pub fn attach(name: &str, expect: &Expect, start: Start, allow_stale: bool) -> Result<Self> {
        let (seg, offsets) = status::open_segment(name)?;
        let w = seg.words();
        let fs_id = status::read_feature_set_id(w);
        let hash = w[W_SCHEMA_HASH64].load(Relaxed);
        let frame_size = w[W_FRAME_SIZE].load(Relaxed) as usize;
        if fs_id != expect.feature_set_id
            || hash != expect.schema_hash64
            || frame_size != expect.frame_size
        {
            return Err(Error::Ring(RingProblem::Schema {
                name: name.to_string(),
                what: format!(
                    "the ring carries {fs_id} (schema hash {hash:016x}, {frame_size}-byte \
                     frames); this reader is built for {} ({:016x}, {}-byte frames)",
                    expect.feature_set_id, expect.schema_hash64, expect.frame_size
                ),
            }));
        }
        let st = status::status_of(&seg, name);
        if st.state == WriterState::Crashed && !allow_stale {
            return Err(st.stale_error());
        }
        let capacity = w[W_CAPACITY].load(Relaxed);
        let max_symbols = w[W_MAX_SYMBOLS].load(Relaxed) as usize;
        let cursor = w[W_CURSOR].load(Acquire);
        let position = match start {
            Start::Live => cursor,
            Start::Oldest => cursor.saturating_sub(capacity),
        };
        let mut reader = Self {
            name: name.to_string(),
            offsets,
            capacity,
            mask: capacity - 1,
            frame_size,
            frame_words: frame_size / WORD,
            max_symbols,
            position,
            lost: 0,
            gaps: 0,
            pending_gap: vec![false; max_symbols],
            any_pending: false,
            entry: None,
            writer: (st.writer_pid, w[W_WRITER_START].load(Relaxed)),
            epoch: st.epoch,
            seg,
        };
        reader.entry = reader.claim_entry();
        reader.publish_position();
        Ok(reader)
    }

    /// Take a free entry of the reader table (or one a dead reader left).
    fn claim_entry(&self) -> Option<usize> {
        let w = self.seg.words();
        let (pid, start) = status::this_process();
        let n = w[W_MAX_READERS].load(Relaxed) as usize;
        for i in 0..n {
            let at = (self.offsets.readers + i * READER_BYTES) / WORD;
            let e = &w[at..at + READER_BYTES / WORD];
            let held = e[R_PID].load(Acquire);
            let free = held == 0 || !alive(held, e[R_START].load(Relaxed));
            if free
                && e[R_PID]
                    .compare_exchange(held, pid, Acquire, Relaxed)
                    .is_ok()
            {
                e[R_START].store(start, Relaxed);
                e[R_LOST].store(0, Relaxed);
                e[R_GAPS].store(0, Relaxed);
                e[R_ATTACHED_NS].store(now_ns(), Relaxed);
                return Some(at);
            }
        }
        None
    }

    fn publish_position(&self) {
        if let Some(at) = self.entry {
            let e = &self.seg.words()[at..];
            e[R_POSITION].store(self.position, Relaxed);
            e[R_LOST].store(self.lost, Relaxed);
            e[R_GAPS].store(self.gaps, Relaxed);
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn frame_size(&self) -> usize {
        self.frame_size
    }

    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    pub fn max_symbols(&self) -> usize {
        self.max_symbols
    }

    /// Lock this process's mapping of the segment in memory (`mlock`), so no frame waits on
    /// a page brought back from swap. Refused ([`RingProblem::Io`]) without `CAP_IPC_LOCK` or
    /// a `RLIMIT_MEMLOCK` of the segment's size (`ulimit -l`).
    pub fn lock_memory(&self) -> Result<()> {
        self.seg.lock().map_err(|e| {
            Error::Ring(RingProblem::Io {
                name: self.name.clone(),
                what: format!(
                    "mlock of the {}-byte segment refused ({e}): run with CAP_IPC_LOCK or \
                     raise RLIMIT_MEMLOCK (ulimit -l)",
                    self.seg.len()
                ),
            })
        })
    }

    /// The next position this reader reads.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The writer's cursor: frames published.
    pub fn cursor(&self) -> u64 {
        self.seg.words()[W_CURSOR].load(Acquire)
    }

    /// Frames published and not yet read.
    pub fn lag(&self) -> u64 {
        self.cursor().saturating_sub(self.position)
    }

    /// Frames lost to being lapped, in all.
    pub fn lost(&self) -> u64 {
        self.lost
    }

    /// Times this reader was lapped.
    pub fn gaps(&self) -> u64 {
        self.gaps
    }

    /// Whether this reader has an entry in the reader table (its lag is visible to others).
    pub fn registered(&self) -> bool {
        self.entry.is_some()
    }

    pub fn status(&self) -> RingStatus {
        status::status_of(&self.seg, &self.name)
    }

    /// Whether the writer that created this segment still runs.
    pub fn writer_alive(&self) -> bool {
        alive(self.writer.0, self.writer.1)
    }

    pub fn epoch(&self) -> u64 {
        self.epoch
    }

    /// The metadata the writer stored at create.
    pub fn meta(&self) -> Vec<u8> {
        let w = self.seg.words();
        let len = w[W_META_LEN].load(Relaxed) as usize;
        let mut out = Vec::with_capacity(round_up(len, WORD));
        for word in &w[self.offsets.meta / WORD..(self.offsets.meta + round_up(len, WORD)) / WORD] {
            out.extend_from_slice(&word.load(Relaxed).to_le_bytes());
        }
        out.truncate(len);
        out
    }

    /// Copy up to `max` frames (and at most what fits `out`) from the reader's position into
    /// `out`, without waiting.
    ///
    /// The frames are contiguous positions. A reader the writer lapped skips to a fresh
    /// position, a sixteenth of the ring ahead of the oldest frame, so that it is not lapped
    /// again at once; the outcome's `lost` counts the skipped frames exactly, and the first
    /// frame of every symbol after the skip carries `GAP_DETECTED`. A frame the writer
    /// overwrites while it is copied is never returned: the read stops before it.
    pub fn read(&mut self, out: &mut [u8], max: usize) -> ReadOutcome {
        let max = max.min(out.len() / self.frame_size);
        let mut lost = 0;
        let mut got = 0;
        // One retry: a copy that meets an overwritten first slot skips past what the slot
        // holds and tries once more; whatever is left waits for the next call.
        for _ in 0..2 {
            let cursor = self.cursor();
            if cursor > self.position + self.capacity {
                lost += self.skip_to(cursor - self.capacity);
            }
            let available = usize::try_from(cursor.saturating_sub(self.position));
            let want = max.min(available.unwrap_or(usize::MAX));
            let (n, overwritten) = self.copy_run(self.position, want, out);
            got = n;
            match overwritten {
                Some(seen) if n == 0 => {
                    // The writer is at `seen` at least: the oldest frame left is one ring back.
                    lost += self.skip_to((seen + 1).saturating_sub(self.capacity));
                }
                _ => break,
            }
        }
        let start = self.position;
        if lost > 0 {
            self.lost += lost;
            self.gaps += 1;
            self.pending_gap.fill(true);
            self.any_pending = true;
        }
        if self.any_pending {
            self.flag_gaps(&mut out[..got * self.frame_size]);
        }
        self.position += got as u64;
        self.publish_position();
        let closed = got == 0
            && self.seg.words()[W_STATE].load(Acquire) == STATE_CLOSED
            && self.position >= self.cursor();
        ReadOutcome {
            start,
            frames: got,
            lost,
            closed,
        }
    }

    /// Move the position to `oldest` plus a sixteenth of the ring (capped at the cursor);
    /// returns the frames skipped.
    fn skip_to(&mut self, oldest: u64) -> u64 {
        let cursor = self.cursor();
        let to = (oldest + self.capacity / 16).min(cursor).max(self.position);
        let skipped = to - self.position;
        self.position = to;
        skipped
    }

    /// Copy `n` frames from `position` on; stops at the first slot that does not hold its
    /// frame. Returns the frames copied and, when the stop was an overwritten slot, the later
    /// position the slot holds.
    #[inline]
    fn copy_run(&self, position: u64, n: usize, out: &mut [u8]) -> (usize, Option<u64>) {
        let w = self.seg.words();
        let stride = self.offsets.stride / WORD;
        let base = self.offsets.ring / WORD;
        for (k, dst) in out.chunks_exact_mut(self.frame_size).take(n).enumerate() {
            let p = position + k as u64;
            let at = base + (p & self.mask) as usize * stride;
            match slot::read(&w[at..at + 1 + self.frame_words], p, dst) {
                Read::Copied => {}
                Read::NotYet => return (k, None),
                Read::Overwritten(seen) => return (k, Some(seen)),
            }
        }
        (n, None)
    }

    fn flag_gaps(&mut self, frames: &mut [u8]) {
        for frame in frames.chunks_exact_mut(self.frame_size) {
            let symbol = u32::from_le_bytes([frame[16], frame[17], frame[18], frame[19]]) as usize;
            if symbol < self.max_symbols && self.pending_gap[symbol] {
                self.pending_gap[symbol] = false;
                let flags = u32::from_le_bytes([frame[20], frame[21], frame[22], frame[23]]);
                frame[20..24].copy_from_slice(&(flags | GAP_DETECTED).to_le_bytes());
            }
        }
        self.any_pending = self.pending_gap.iter().any(|&p| p);
    }

    /// [`RingReader::read`], waiting up to `timeout` for at least one frame (or a loss, or the
    /// end): spinning for `spin` first (lowest latency, a core busy), then parked on the
    /// ring's futex until the writer publishes (no core used; a wake costs the writer a
    /// syscall while a reader is parked).
    pub fn read_wait(
        &mut self,
        out: &mut [u8],
        max: usize,
        timeout: Duration,
        spin: Duration,
    ) -> ReadOutcome {
        let t0 = Instant::now();
        loop {
            let r = self.read(out, max);
            if r.frames > 0 || r.lost > 0 || r.closed {
                return r;
            }
            let waited = t0.elapsed();
            if waited >= timeout {
                return r;
            }
            if waited < spin {
                // Poll the cursor alone until it moves (or the spin time is up).
                let cursor = &self.seg.words()[W_CURSOR];
                let mut i = 0u32;
                while cursor.load(Acquire) <= self.position {
                    std::hint::spin_loop();
                    i = i.wrapping_add(1);
                    if i % 1024 == 0 && t0.elapsed() >= spin.min(timeout) {
                        break;
                    }
                    if i % 65_536 == 0 && self.seg.words()[W_STATE].load(Acquire) == STATE_CLOSED {
                        break;
                    }
                }
            } else {
                self.park(PARK_MAX.min(timeout - waited));
            }
        }
    }

    /// Sleep on the ring's futex until the writer publishes or closes (or `timeout`).
    ///
    /// The waiter count goes up before the cursor is checked again, with a SeqCst fence
    /// between, pairing with the writer's fence between its cursor store and its load of the
    /// count: a publish either sees this waiter (and wakes it) or is seen by the check below
    /// (and no sleep happens). Each sleep is bounded anyway, so nothing hangs.
    fn park(&self, timeout: Duration) {
        let w = self.seg.words();
        w[W_WAITERS].fetch_add(1, SeqCst);
        let seq = w[W_FUTEX].load(SeqCst) as u32;
        fence(SeqCst);
        let idle =
            w[W_CURSOR].load(SeqCst) <= self.position && w[W_STATE].load(Acquire) != STATE_CLOSED;
        if idle {
            shm::futex_wait(&w[W_FUTEX], seq, timeout);
        }
        w[W_WAITERS].fetch_sub(1, Release);
    }

    /// Each symbol's newest frame older than the reader's position, from the last-frame
    /// table, into `out`; returns how many were copied (in symbol-id order).
    ///
    /// At attach (start `Live`) this is the current value of every symbol, and the ring
    /// brings everything after it. A symbol whose newest frame is already ahead of the reader
    /// is left out: reading on brings it. No GAP flags are set here.
    pub fn latest(&self, out: &mut [u8]) -> usize {
        let w = self.seg.words();
        let stride = self.offsets.stride / WORD;
        let base = self.offsets.latest / WORD;
        let mut n = 0;
        for symbol in 0..self.max_symbols {
            let Some(dst) = out.chunks_exact_mut(self.frame_size).nth(n) else {
                break;
            };
            let at = base + symbol * stride;
            if let Some(p) = slot::read_any(&w[at..at + 1 + self.frame_words], dst, LATEST_TRIES) {
                if p < self.position {
                    n += 1;
                }
            }
        }
        n
    }
}

impl Drop for RingReader {
    fn drop(&mut self) {
        if let Some(at) = self.entry.take() {
            self.seg.words()[at + R_PID].store(0, Release);
        }
    }
}
