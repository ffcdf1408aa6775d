//! The ring's side of `featureplane bench --transport`: timed writer and reader loops that run
//! in two processes, each checking what it receives.
//!
//! Frames carry their send time (`CLOCK_MONOTONIC` ns, read just before the publish) in
//! `local_ts_ns` and their index in `seq`; the reader reads the same clock just after the frame
//! is copied out. A reader checks every frame's `seq` against its ring position, so a torn,
//! reordered or skipped frame fails the run instead of flattering it.

use std::time::{Duration, Instant};

use super::reader::RingReader;
pub use super::shm::monotonic_ns;
use super::writer::RingWriter;
use crate::error::Result;

const SEQ: std::ops::Range<usize> = 24..32;
const LOCAL_TS: std::ops::Range<usize> = 40..48;

fn field(frame: &[u8], at: std::ops::Range<usize>) -> u64 {
    super::slot::le_word(&frame[at])
}

/// Publish `n` frames made from `template` one at a time, about one every `interval_ns`,
/// each stamped with its index (`seq`) and send time (`local_ts_ns`).
///
/// Between frames the writer sleeps (`spin_pacing` false), as a writer fed by a socket waits
/// for its next message and leaves its core to others, or spins on the clock (true), as a
/// writer polling a kernel-bypass NIC does. Either way the reader's latency is measured from
/// the moment a frame is stamped, however late the wait ends.
pub fn write_paced(
    writer: &mut RingWriter,
    template: &[u8],
    n: u64,
    interval_ns: u64,
    spin_pacing: bool,
) -> Result<()> {
    let mut frame = template.to_vec();
    let t0 = Instant::now();
    for i in 0..n {
        let due = Duration::from_nanos(i * interval_ns);
        if spin_pacing {
            while t0.elapsed() < due {
                std::hint::spin_loop();
            }
        } else if let Some(wait) = due.checked_sub(t0.elapsed()) {
            std::thread::sleep(wait);
        }
        frame[SEQ].copy_from_slice(&(i as i64).to_le_bytes());
        frame[LOCAL_TS].copy_from_slice(&monotonic_ns().to_le_bytes());
        writer.publish(&frame)?;
    }
    Ok(())
}

/// What one read of the clock costs: the median and the largest of `samples` gaps between
/// back-to-back `monotonic_ns` reads (ns). Stamps are this far from the instants they name.
pub fn clock_cost_ns(samples: usize) -> (u64, u64) {
    let mut gaps: Vec<u64> = Vec::with_capacity(samples.max(1));
    let mut last = monotonic_ns();
    for _ in 0..samples.max(1) {
        let now = monotonic_ns();
        gaps.push(now.saturating_sub(last));
        last = now;
    }
    gaps.sort_unstable();
    (gaps[gaps.len() / 2], gaps[gaps.len() - 1])
}

/// What a reader loop received.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Received {
    pub frames: u64,
    pub lost: u64,
    /// Frames whose `seq` was not their ring position (must stay 0).
    pub wrong: u64,
    /// Send-to-receive ns of each frame (latency runs only).
    pub latencies_ns: Vec<u64>,
    /// ns from the first frame received to the end.
    pub elapsed_ns: u64,
}

/// Read frames one at a time until `n` are accounted for (received or lost), the ring
/// closes, or `timeout` passes; records each frame's latency. Each wait spins for `spin`
/// (the whole wait: `timeout`), then parks on the ring's futex.
pub fn read_latencies(
    reader: &mut RingReader,
    n: u64,
    timeout: Duration,
    spin: Duration,
) -> Received {
    let mut out = vec![0u8; reader.frame_size()];
    // Written through (not zeroed: calloc'd pages are mapped lazily) before the first frame, so recording a latency never takes a page
    // fault in the loop (one every 512 frames otherwise).
    let mut latencies = vec![u64::MAX; n as usize];
    let mut got = Received::default();
    let t0 = Instant::now();
    while got.frames + got.lost < n && t0.elapsed() < timeout {
        let r = reader.read_wait(&mut out, 1, timeout, spin);
        let now = monotonic_ns();
        got.lost += r.lost;
        if r.frames == 1 {
            latencies[got.frames as usize] = now.saturating_sub(field(&out, LOCAL_TS));
            got.frames += 1;
            got.wrong += u64::from(field(&out, SEQ) != r.start);
        }
        if r.closed {
            break;
        }
    }
    latencies.truncate(got.frames as usize);
    got.latencies_ns = latencies;
    got.elapsed_ns = t0.elapsed().as_nanos() as u64;
    got
}

/// Publish `n` frames from `template` in batches of `batch`, as fast as the ring takes them,
/// `seq` = position; returns the ns it took.
pub fn write_flood(writer: &mut RingWriter, template: &[u8], n: u64, batch: usize) -> Result<u64> {
    let size = template.len();
    let mut buf = template.repeat(batch.max(1));
    let t0 = Instant::now();
    let mut sent = 0;
    while sent < n {
        let k = (batch as u64).min(n - sent) as usize;
        let first = writer.cursor();
        for (i, frame) in buf.chunks_exact_mut(size).take(k).enumerate() {
            frame[SEQ].copy_from_slice(&((first + i as u64) as i64).to_le_bytes());
        }
        writer.publish_batch(&buf[..k * size])?;
        sent += k as u64;
    }
    Ok(t0.elapsed().as_nanos() as u64)
}

/// Read batches of up to `batch` frames until the ring closes (or `timeout`), checking every
/// frame's `seq`; the elapsed time runs from the first frame received.
pub fn read_flood(reader: &mut RingReader, batch: usize, timeout: Duration) -> Received {
    let size = reader.frame_size();
    let mut out = vec![0u8; batch.max(1) * size];
    let mut got = Received::default();
    let t0 = Instant::now();
    let mut first: Option<Instant> = None;
    while t0.elapsed() < timeout {
        let r = reader.read_wait(&mut out, batch, Duration::from_millis(100), timeout);
        got.lost += r.lost;
        if r.frames > 0 {
            first.get_or_insert_with(Instant::now);
            for (i, frame) in out.chunks_exact(size).take(r.frames).enumerate() {
                got.wrong += u64::from(field(frame, SEQ) != r.start + i as u64);
            }
            got.frames += r.frames as u64;
        }
        if r.closed {
            break;
        }
    }
    got.elapsed_ns = first.map_or(0, |f| f.elapsed().as_nanos() as u64);
    got
}
