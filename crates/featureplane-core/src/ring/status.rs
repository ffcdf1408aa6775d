//! Who holds a ring: the writer's process identity, liveness, and a segment's status.
//!
//! A writer records its pid and its process start time (field 22 of `/proc/<pid>/stat`,
//! clock ticks since boot) in the header. The writer is alive when a process of that pid
//! exists and started at that time, so a recycled pid is never taken for the writer.
//! The heartbeat (wall-clock ns of the last publish or `heartbeat()`) tells a quiet writer
//! from a busy one; it is reported, never used to declare a writer dead.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::AtomicU64;
use std::sync::atomic::Ordering::{Acquire, Relaxed};
use std::time::{SystemTime, UNIX_EPOCH};

use super::layout::*;
use super::shm::Segment;
use crate::error::{Error, Result, RingProblem};

/// Where ring segments live: POSIX shared memory, a tmpfs.
pub const SHM_DIR: &str = "/dev/shm";

/// The start time of process `pid` in clock ticks since boot, or None if there is none.
pub fn process_start(pid: u64) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces: count after it.
    let after = stat.get(stat.rfind(')')? + 1..)?;
    after.split_whitespace().nth(19)?.parse().ok()
}

/// This process: (pid, start ticks).
pub fn this_process() -> (u64, u64) {
    let pid = u64::from(std::process::id());
    (pid, process_start(pid).unwrap_or(0))
}

/// Whether the process (pid, start) still runs.
pub fn alive(pid: u64, start: u64) -> bool {
    pid != 0 && process_start(pid) == Some(start)
}

/// Wall-clock ns since the Unix epoch (the clock frames' `local_ts_ns` use).
#[inline]
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64)
}

/// The segment path of a ring name, after checking the name is a plain file name.
pub fn ring_path(name: &str) -> Result<PathBuf> {
    let ok = !name.is_empty()
        && name.len() <= 200
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !ok {
        return Err(Error::Ring(RingProblem::BadName(name.to_string())));
    }
    Ok(Path::new(SHM_DIR).join(name))
}

/// What the writer of a segment is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriterState {
    /// The writer runs.
    Live,
    /// The writer closed the ring: readers drain what is left.
    Closed,
    /// The writer is gone without closing (crashed or killed): the segment is stale.
    Crashed,
}

impl WriterState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Live => "live",
            Self::Closed => "closed",
            Self::Crashed => "crashed",
        }
    }
}

/// A ring segment as its header describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RingStatus {
    pub name: String,
    pub state: WriterState,
    pub writer_pid: u64,
    /// Wall-clock ns at which the writer created the segment: tells two writers of one name
    /// apart.
    pub epoch: u64,
    /// Frames published.
    pub cursor: u64,
    pub heartbeat_ns: u64,
    pub heartbeat_age_ns: u64,
    pub capacity: u64,
    pub max_symbols: u64,
    pub frame_size: u64,
    pub feature_set_id: String,
    pub schema_hash64: u64,
}

impl RingStatus {
    /// The error an attach or a create reports for a crashed writer.
    pub fn stale_error(&self) -> Error {
        Error::Ring(RingProblem::Stale {
            name: self.name.clone(),
            pid: self.writer_pid,
            heartbeat_age_ns: self.heartbeat_age_ns,
        })
    }
}

/// The feature-set id in the header's 64 bytes.
pub(crate) fn read_feature_set_id(words: &[AtomicU64]) -> String {
    let mut bytes = Vec::with_capacity(FEATURE_SET_ID_BYTES);
    for w in &words[W_FEATURE_SET_ID..W_FEATURE_SET_ID + FEATURE_SET_ID_BYTES / WORD] {
        bytes.extend_from_slice(&w.load(Relaxed).to_le_bytes());
    }
    let end = bytes.iter().position(|&b| b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

/// Check a mapped segment is a ring of this layout whose size matches its header; returns
/// its areas.
pub(crate) fn check_layout(seg: &Segment, name: &str) -> Result<Offsets> {
    let layout = |what: String| {
        Err(Error::Ring(RingProblem::Layout {
            name: name.to_string(),
            what,
        }))
    };
    if seg.len() < HEADER_BYTES {
        return layout(format!("{} bytes, shorter than a ring header", seg.len()));
    }
    let w = seg.words();
    let magic = w[W_MAGIC].load(Acquire);
    if magic != MAGIC {
        return layout(format!("magic {:?}", magic.to_le_bytes().escape_ascii()));
    }
    let version = w[W_LAYOUT_VERSION].load(Relaxed);
    if version != LAYOUT_VERSION {
        return layout(format!(
            "ring layout version {version}, this reader knows {LAYOUT_VERSION}"
        ));
    }
    let get = |i: usize| usize::try_from(w[i].load(Relaxed)).unwrap_or(usize::MAX);
    let frame_size = get(W_FRAME_SIZE);
    let offsets = Offsets::new(
        get(W_CAPACITY),
        get(W_MAX_SYMBOLS),
        get(W_MAX_READERS),
        frame_size,
        get(W_META_CAP),
    );
    match offsets {
        Some(o)
            if o.total == seg.len()
                && o.stride == get(W_SLOT_STRIDE)
                && frame_size % WORD == 0
                && get(W_CAPACITY).is_power_of_two()
                && get(W_META_LEN) <= get(W_META_CAP) =>
        {
            Ok(o)
        }
        _ => layout(format!(
            "header sizes do not match the segment's {} bytes",
            seg.len()
        )),
    }
}

/// The status of a mapped, layout-checked segment.
pub(crate) fn status_of(seg: &Segment, name: &str) -> RingStatus {
    let w = seg.words();
    let pid = w[W_WRITER_PID].load(Relaxed);
    let start = w[W_WRITER_START].load(Relaxed);
    let state = if w[W_STATE].load(Acquire) == STATE_CLOSED {
        WriterState::Closed
    } else if alive(pid, start) {
        WriterState::Live
    } else {
        WriterState::Crashed
    };
    let heartbeat_ns = w[W_HEARTBEAT].load(Relaxed);
    RingStatus {
        name: name.to_string(),
        state,
        writer_pid: pid,
        epoch: w[W_EPOCH].load(Relaxed),
        cursor: w[W_CURSOR].load(Acquire),
        heartbeat_ns,
        heartbeat_age_ns: now_ns().saturating_sub(heartbeat_ns),
        capacity: w[W_CAPACITY].load(Relaxed),
        max_symbols: w[W_MAX_SYMBOLS].load(Relaxed),
        frame_size: w[W_FRAME_SIZE].load(Relaxed),
        feature_set_id: read_feature_set_id(w),
        schema_hash64: w[W_SCHEMA_HASH64].load(Relaxed),
    }
}

/// Map a ring by name and check its layout.
pub(crate) fn open_segment(name: &str) -> Result<(Segment, Offsets)> {
    let path = ring_path(name)?;
    let seg = Segment::open(&path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => Error::Ring(RingProblem::NotFound {
            name: name.to_string(),
        }),
        _ => Error::Ring(RingProblem::Io {
            name: name.to_string(),
            what: e.to_string(),
        }),
    })?;
    let offsets = check_layout(&seg, name)?;
    Ok((seg, offsets))
}

/// The status of the ring `name`, or None when there is no segment of that name.
///
/// A crashed writer's segment shows as [`WriterState::Crashed`]: remove it with
/// [`remove_stale`], or let the next writer of the name replace it.
pub fn probe(name: &str) -> Result<Option<RingStatus>> {
    match open_segment(name) {
        Ok((seg, _)) => Ok(Some(status_of(&seg, name))),
        Err(Error::Ring(RingProblem::NotFound { .. })) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Remove the segment `name` if its writer is gone (crashed or closed); returns its status
/// then. A live writer's segment is refused ([`RingProblem::Busy`]).
pub fn remove_stale(name: &str) -> Result<Option<RingStatus>> {
    let Some(status) = probe(name)? else {
        return Ok(None);
    };
    if status.state == WriterState::Live {
        return Err(Error::Ring(RingProblem::Busy {
            name: name.to_string(),
            pid: status.writer_pid,
        }));
    }
    unlink(name)?;
    Ok(Some(status))
}

pub(crate) fn unlink(name: &str) -> Result<()> {
    match fs::remove_file(ring_path(name)?) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::Ring(RingProblem::Io {
            name: name.to_string(),
            what: e.to_string(),
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_wrong_start_is_not() {
        let (pid, start) = this_process();
        assert!(start > 0);
        assert!(alive(pid, start));
        assert!(!alive(pid, start + 1));
        assert!(!alive(0, start));
    }

    #[test]
    fn names_are_plain_file_names() {
        assert!(ring_path("fp.ring-1_a").is_ok());
        for bad in ["", ".hidden", "a/b", "..", "a b", &"x".repeat(201)] {
            assert!(
                matches!(ring_path(bad), Err(Error::Ring(RingProblem::BadName(_)))),
                "{bad:?}"
            );
        }
    }
}
