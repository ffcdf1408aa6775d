//! The one writer of a ring: creates the segment, publishes frames, keeps the last frame of
//! every symbol, closes.

use std::fs;
use std::path::PathBuf;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use std::sync::atomic::{fence, AtomicU64};

use super::layout::*;
use super::shm::{self, Segment};
use super::slot;
use super::status::{self, alive, now_ns, ring_path, RingStatus, WriterState};
use crate::error::{Error, FrameProblem, Result, RingProblem};
use crate::frames::wire::{self, HEADER_SIZE, LAYOUT_VERSION as FRAME_LAYOUT_VERSION};
use crate::frames::Frame;

/// A reader as the reader table shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReaderInfo {
    pub pid: u64,
    /// The next position the reader will read.
    pub position: u64,
    /// Frames published and not yet read by it: the writer's cursor minus its position.
    pub lag: u64,
    /// Frames it lost to being lapped, in all.
    pub lost: u64,
    /// Times it was lapped.
    pub gaps: u64,
    pub attached_ns: u64,
    /// Whether its process still runs.
    pub alive: bool,
}

/// The writer of one ring (one per ring: a second `create` of a live ring's name is refused).
pub struct RingWriter {
    seg: Segment,
    name: String,
    spec: RingSpec,
    offsets: Offsets,
    mask: u64,
    frame_words: usize,
    position: u64,
    closed: bool,
    /// A crashed or closed writer's segment this one replaced at create.
    replaced: Option<RingStatus>,
    /// Scratch of `publish_batch`: per symbol, 1 + the index of its last frame in the batch.
    last_in_batch: Vec<usize>,
    touched: Vec<usize>,
}

impl RingWriter {
    /// Create the ring `name` (`/dev/shm/<name>`) with the shape `spec` and the opaque
    /// metadata `meta` (the Python layer stores the symbol table there).
    ///
    /// A segment of that name whose writer runs is refused ([`RingProblem::Busy`]). One whose
    /// writer is gone (crashed, or closed without removing it) is replaced when
    /// `replace_stale`, and reported by [`RingWriter::replaced`]; otherwise refused
    /// ([`RingProblem::Stale`]). A file of that name that is not a ring is never touched.
    pub fn create(name: &str, spec: &RingSpec, meta: &[u8], replace_stale: bool) -> Result<Self> {
        let path = ring_path(name)?;
        let offsets = check_spec(spec, meta)?;
        let mut replaced = None;
        if let Some(old) = status::probe(name)? {
            match old.state {
                WriterState::Live => {
                    return Err(Error::Ring(RingProblem::Busy {
                        name: name.to_string(),
                        pid: old.writer_pid,
                    }))
                }
                WriterState::Crashed if !replace_stale => return Err(old.stale_error()),
                _ => {
                    status::unlink(name)?;
                    replaced = Some(old);
                }
            }
        }
        let (pid, start) = status::this_process();
        let io = |e: std::io::Error| {
            Error::Ring(RingProblem::Io {
                name: name.to_string(),
                what: e.to_string(),
            })
        };
        // Build the segment under a private name and link it in whole: a reader never sees a
        // half-written header, and of two writers racing for one name exactly one wins.
        let tmp = PathBuf::from(status::SHM_DIR).join(format!(".{name}.{pid}.tmp"));
        let _ = fs::remove_file(&tmp);
        let seg = Segment::create_new(&tmp, offsets.total).map_err(io)?;
        init_header(&seg, spec, meta, pid, start);
        let linked = fs::hard_link(&tmp, &path);
        let _ = fs::remove_file(&tmp);
        if let Err(e) = linked {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                let pid = status::probe(name)?.map_or(0, |s| s.writer_pid);
                return Err(Error::Ring(RingProblem::Busy {
                    name: name.to_string(),
                    pid,
                }));
            }
            return Err(io(e));
        }
        Ok(Self {
            seg,
            name: name.to_string(),
            spec: spec.clone(),
            offsets,
            mask: spec.capacity as u64 - 1,
            frame_words: spec.frame_size / WORD,
            position: 0,
            closed: false,
            replaced,
            last_in_batch: vec![0; spec.max_symbols],
            touched: Vec::new(),
        })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn spec(&self) -> &RingSpec {
        &self.spec
    }

    /// Frames published so far (the next frame's position).
    pub fn cursor(&self) -> u64 {
        self.position
    }

    /// The stale segment this writer replaced at create, if any.
    pub fn replaced(&self) -> Option<&RingStatus> {
        self.replaced.as_ref()
    }

    pub fn status(&self) -> RingStatus {
        status::status_of(&self.seg, &self.name)
    }

    /// Publish one FPF1 frame (`frame_size` bytes); returns its position.
    pub fn publish(&mut self, frame: &[u8]) -> Result<u64> {
        self.check_open()?;
        if frame.len() != self.spec.frame_size {
            return Err(self.length_error(frame.len()));
        }
        let symbol = self.check_frame(frame)?;
        let position = self.position;
        let w = self.seg.words();
        slot::write(self.ring_slot(w, position), position, frame);
        slot::write(self.latest_slot(w, symbol), position, frame);
        self.position += 1;
        w[W_CURSOR].store(self.position, Release);
        w[W_HEARTBEAT].store(now_ns(), Relaxed);
        wake_parked(w);
        Ok(position)
    }

    /// Publish one frame of the core's engine, written as FPF1 in place (a Rust live process).
    pub fn publish_frame(&mut self, frame: &Frame) -> Result<u64> {
        let mut buf = [0u8; wire::FRAME_SIZE];
        frame.write_fpf1(self.spec.schema_hash64, &mut buf)?;
        self.publish(&buf)
    }

    /// Publish frames back to back (`n x frame_size` bytes, a `FrameBatch`'s records); returns
    /// the first one's position. Every frame is checked before any is published, so a bad one
    /// publishes nothing. Readers see the frames in chunks of at most a quarter of the ring,
    /// so a batch longer than the ring still reaches a reader that keeps up.
    pub fn publish_batch(&mut self, frames: &[u8]) -> Result<u64> {
        self.check_open()?;
        let size = self.spec.frame_size;
        if frames.len() % size != 0 {
            return Err(self.length_error(frames.len()));
        }
        for frame in frames.chunks_exact(size) {
            self.check_frame(frame)?;
        }
        let first = self.position;
        let chunk = (self.spec.capacity / 4).max(1) * size;
        for part in frames.chunks(chunk) {
            self.publish_chunk(part);
        }
        self.seg.words()[W_HEARTBEAT].store(now_ns(), Relaxed);
        Ok(first)
    }

    fn publish_chunk(&mut self, frames: &[u8]) {
        let size = self.spec.frame_size;
        let w = self.seg.words();
        let mut position = self.position;
        for (i, frame) in frames.chunks_exact(size).enumerate() {
            slot::write(self.ring_slot(w, position), position, frame);
            let symbol = symbol_of(frame);
            if self.last_in_batch[symbol] == 0 {
                self.touched.push(symbol);
            }
            self.last_in_batch[symbol] = i + 1;
            position += 1;
        }
        // The table takes only each symbol's last frame of the chunk: what a late joiner needs.
        for &symbol in &self.touched {
            let i = self.last_in_batch[symbol] - 1;
            let frame = &frames[i * size..(i + 1) * size];
            slot::write(self.latest_slot(w, symbol), self.position + i as u64, frame);
            self.last_in_batch[symbol] = 0;
        }
        self.touched.clear();
        self.position = position;
        w[W_CURSOR].store(position, Release);
        wake_parked(w);
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

    /// Mark the writer alive while it has nothing to publish (a quiet market).
    pub fn heartbeat(&self) {
        self.seg.words()[W_HEARTBEAT].store(now_ns(), Relaxed);
    }

    /// The attached readers: their position, lag, losses, and whether they still run.
    pub fn readers(&self) -> Vec<ReaderInfo> {
        let w = self.seg.words();
        let cursor = w[W_CURSOR].load(Acquire);
        (0..self.spec.max_readers)
            .filter_map(|i| {
                let e = &w[(self.offsets.readers + i * READER_BYTES) / WORD..];
                let pid = e[R_PID].load(Acquire);
                if pid == 0 {
                    return None;
                }
                let position = e[R_POSITION].load(Relaxed);
                Some(ReaderInfo {
                    pid,
                    position,
                    lag: cursor.saturating_sub(position),
                    lost: e[R_LOST].load(Relaxed),
                    gaps: e[R_GAPS].load(Relaxed),
                    attached_ns: e[R_ATTACHED_NS].load(Relaxed),
                    alive: alive(pid, e[R_START].load(Relaxed)),
                })
            })
            .collect()
    }

    /// Close the ring: readers drain what is published and then see the end. With `unlink`
    /// the name is removed too (attached readers keep their mapping; new ones cannot attach).
    pub fn close(&mut self, unlink: bool) -> Result<()> {
        if !self.closed {
            self.closed = true;
            self.seg.words()[W_STATE].store(STATE_CLOSED, Release);
            wake_parked(self.seg.words());
        }
        if unlink {
            // Only our own segment: a later writer may have taken the name after a close.
            if status::probe(&self.name)?.is_some_and(|s| s.epoch == self.epoch()) {
                status::unlink(&self.name)?;
            }
        }
        Ok(())
    }

    pub fn is_closed(&self) -> bool {
        self.closed
    }

    fn epoch(&self) -> u64 {
        self.seg.words()[W_EPOCH].load(Relaxed)
    }

    fn check_open(&self) -> Result<()> {
        if self.closed {
            return Err(Error::Ring(RingProblem::Closed {
                name: self.name.clone(),
            }));
        }
        Ok(())
    }

    fn length_error(&self, bytes: usize) -> Error {
        Error::Ring(RingProblem::Schema {
            name: self.name.clone(),
            what: format!(
                "{bytes} bytes is not a whole number of this ring's {}-byte frames",
                self.spec.frame_size
            ),
        })
    }

    /// The frame's decoding rules that concern the ring (magic, version, value count, schema
    /// hash) and its symbol id; returns the symbol id.
    #[inline]
    fn check_frame(&self, frame: &[u8]) -> Result<usize> {
        let refuse = |p| Err(Error::Frame(p));
        let magic = [frame[0], frame[1], frame[2], frame[3]];
        if magic != wire::MAGIC {
            return refuse(FrameProblem::Magic { magic });
        }
        let version = u16::from_le_bytes([frame[4], frame[5]]);
        if version != FRAME_LAYOUT_VERSION {
            return refuse(FrameProblem::LayoutVersion { version });
        }
        let n_values = u16::from_le_bytes([frame[6], frame[7]]);
        let want = (self.spec.frame_size - HEADER_SIZE) / WORD;
        if usize::from(n_values) != want {
            return refuse(FrameProblem::NValues {
                got: n_values,
                want,
            });
        }
        let hash = slot::le_word(&frame[8..16]);
        if hash != self.spec.schema_hash64 {
            return refuse(FrameProblem::SchemaHash {
                got: hash,
                want: self.spec.schema_hash64,
            });
        }
        let symbol = symbol_of(frame);
        if symbol >= self.spec.max_symbols {
            return Err(Error::Ring(RingProblem::SymbolId {
                symbol_id: symbol as u32,
                max_symbols: self.spec.max_symbols,
            }));
        }
        Ok(symbol)
    }

    #[inline(always)]
    fn ring_slot<'a>(&self, w: &'a [AtomicU64], position: u64) -> &'a [AtomicU64] {
        let at = (self.offsets.ring + (position & self.mask) as usize * self.offsets.stride) / WORD;
        &w[at..at + 1 + self.frame_words]
    }

    #[inline(always)]
    fn latest_slot<'a>(&self, w: &'a [AtomicU64], symbol: usize) -> &'a [AtomicU64] {
        let at = (self.offsets.latest + symbol * self.offsets.stride) / WORD;
        &w[at..at + 1 + self.frame_words]
    }
}

impl Drop for RingWriter {
    /// A writer dropped without `close` closes the ring (readers see the end) but leaves the
    /// segment for them; a process that dies without dropping it leaves a stale segment.
    fn drop(&mut self) {
        let _ = self.close(false);
    }
}

/// Wake the readers parked on the futex, if any (one load when none is: the common case of
/// spinning or busy readers costs the writer nothing more).
///
/// The SeqCst fence pairs with the reader's (`RingReader::park`): either the writer sees the
/// reader's waiter count, or the reader sees the new cursor before it sleeps.
#[inline(always)]
fn wake_parked(w: &[AtomicU64]) {
    fence(SeqCst);
    if w[W_WAITERS].load(Relaxed) != 0 {
        w[W_FUTEX].fetch_add(1, Release);
        shm::futex_wake(&w[W_FUTEX]);
    }
}

#[inline(always)]
fn symbol_of(frame: &[u8]) -> usize {
    u32::from_le_bytes([frame[16], frame[17], frame[18], frame[19]]) as usize
}

/// Largest shapes a ring accepts: bounds that keep a typo from mapping terabytes.
const MAX_CAPACITY: usize = 1 << 26;
const MAX_SYMBOLS: usize = 1 << 20;
const MAX_READERS: usize = 4096;
const MAX_META: usize = 16 << 20;

fn check_spec(spec: &RingSpec, meta: &[u8]) -> Result<Offsets> {
    let bad = |what: String| Err(Error::Ring(RingProblem::BadSpec(what)));
    if !spec.capacity.is_power_of_two() || !(2..=MAX_CAPACITY).contains(&spec.capacity) {
        return bad(format!(
            "capacity must be a power of two from 2 to {MAX_CAPACITY}, got {}",
            spec.capacity
        ));
    }
    if !(1..=MAX_SYMBOLS).contains(&spec.max_symbols) {
        return bad(format!(
            "max_symbols must be 1 to {MAX_SYMBOLS}, got {}",
            spec.max_symbols
        ));
    }
    if spec.max_readers > MAX_READERS {
        return bad(format!(
            "max_readers must be at most {MAX_READERS}, got {}",
            spec.max_readers
        ));
    }
    let values = spec.frame_size.saturating_sub(HEADER_SIZE) / WORD;
    if spec.frame_size < HEADER_SIZE
        || spec.frame_size % WORD != 0
        || values > usize::from(u16::MAX)
    {
        return bad(format!(
            "frame_size must be 64 + 8 n bytes (n < 65536), got {}",
            spec.frame_size
        ));
    }
    if spec.meta_cap > MAX_META || meta.len() > spec.meta_cap {
        return bad(format!(
            "metadata of {} bytes does not fit meta_cap {} (at most {MAX_META})",
            meta.len(),
            spec.meta_cap
        ));
    }
    let id = spec.feature_set_id.as_bytes();
    if id.is_empty() || id.len() > FEATURE_SET_ID_BYTES || id.contains(&0) {
        return bad(format!(
            "feature_set_id must be 1 to {FEATURE_SET_ID_BYTES} bytes without NUL, got {:?}",
            spec.feature_set_id
        ));
    }
    Offsets::of(spec).ok_or_else(|| Error::Ring(RingProblem::BadSpec("ring too large".into())))
}

fn init_header(seg: &Segment, spec: &RingSpec, meta: &[u8], pid: u64, start: u64) {
    let w = seg.words();
    let offsets = Offsets::of(spec).unwrap_or_else(|| unreachable!("checked by check_spec"));
    let set = |i: usize, v: u64| w[i].store(v, Relaxed);
    set(W_LAYOUT_VERSION, LAYOUT_VERSION);
    set(W_FRAME_SIZE, spec.frame_size as u64);
    set(W_SLOT_STRIDE, offsets.stride as u64);
    set(W_CAPACITY, spec.capacity as u64);
    set(W_MAX_SYMBOLS, spec.max_symbols as u64);
    set(W_MAX_READERS, spec.max_readers as u64);
    set(W_SCHEMA_HASH64, spec.schema_hash64);
    set(W_WRITER_PID, pid);
    set(W_WRITER_START, start);
    let now = now_ns();
    set(W_EPOCH, now);
    set(W_HEARTBEAT, now);
    set(W_META_LEN, meta.len() as u64);
    set(W_META_CAP, spec.meta_cap as u64);
    let mut id = [0u8; FEATURE_SET_ID_BYTES];
    id[..spec.feature_set_id.len()].copy_from_slice(spec.feature_set_id.as_bytes());
    for (i, chunk) in id.chunks_exact(WORD).enumerate() {
        set(W_FEATURE_SET_ID + i, slot::le_word(chunk));
    }
    let mut padded = meta.to_vec();
    padded.resize(round_up(meta.len(), WORD), 0);
    for (i, chunk) in padded.chunks_exact(WORD).enumerate() {
        set(offsets.meta / WORD + i, slot::le_word(chunk));
    }
    set(W_STATE, STATE_LIVE);
    // The magic last, with release: a segment with the magic has a whole header.
    w[W_MAGIC].store(MAGIC, Release);
}
