//! The shared-memory frame ring: create/attach/close, schema refusal, lapping with exact loss
//! counts and GAP flags, the last-frame table, a crashed writer's segment, and a bounded
//! stress test of the seqlock (the long one: FP_RING_STRESS_FRAMES=10000000, see
//! docs/transport.md).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use featureplane_core::error::{Error, RingProblem};
use featureplane_core::features::schema::{FEATURE_SET_ID, N_FEATURES};
use featureplane_core::frames::quality::GAP_DETECTED;
use featureplane_core::frames::wire::{read_fpf1, FRAME_SIZE};
use featureplane_core::ring::{
    probe, remove_stale, Expect, RingReader, RingSpec, RingWriter, Start, WriterState,
};
use featureplane_core::{Frame, FrameHeader};

const HASH: u64 = 0x5EED_F00D_1234_5678;

fn spec(capacity: usize) -> RingSpec {
    RingSpec {
        capacity,
        max_symbols: 4,
        max_readers: 8,
        frame_size: FRAME_SIZE,
        meta_cap: 256,
        feature_set_id: FEATURE_SET_ID.to_string(),
        schema_hash64: HASH,
    }
}

fn expect() -> Expect {
    Expect {
        feature_set_id: FEATURE_SET_ID.to_string(),
        schema_hash64: HASH,
        frame_size: FRAME_SIZE,
    }
}

fn ring_name(tag: &str) -> String {
    format!("fp-test-{tag}-{}", std::process::id())
}

/// The frame at ring position `p`: every word derived from `p`, so a torn copy shows.
fn frame_bytes(p: u64, symbol: u32) -> [u8; FRAME_SIZE] {
    let mut values = featureplane_core::features::schema::Values::default();
    for (i, w) in values.0.iter_mut().enumerate() {
        // book_regime (u32) keeps its high bytes zero.
        let word = p.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(i as u32);
        *w = if i == N_FEATURES - 1 {
            word & 0xFFFF_FFFF
        } else {
            word
        };
    }
    let frame = Frame {
        header: FrameHeader {
            input_index: 0,
            symbol_id: symbol,
            seq: p as i64,
            source_ts_ns: p as i64 * 3,
            local_ts_ns: p as i64 * 5,
            changed_mask: p,
            warmup_ready_mask: !p,
            quality_flags: 0,
        },
        values,
    };
    let mut out = [0u8; FRAME_SIZE];
    frame.write_fpf1(HASH, &mut out).unwrap();
    out
}

/// Whether `bytes` is exactly the frame of position `p` (GAP flag aside).
fn is_frame_of(bytes: &[u8], p: u64) -> bool {
    let mut b = bytes.to_vec();
    b[20..24].copy_from_slice(&0u32.to_le_bytes());
    let symbol = u32::from_le_bytes([b[16], b[17], b[18], b[19]]);
    b == frame_bytes(p, symbol)
}

fn symbol_of(p: u64) -> u32 {
    (p % 3) as u32
}

#[test]
fn round_trip_then_close() {
    let name = ring_name("rt");
    let mut w = RingWriter::create(&name, &spec(16), b"meta!", false).unwrap();
    let mut r = RingReader::attach(&name, &expect(), Start::Live, false).unwrap();
    assert_eq!(r.meta(), b"meta!");
    let mut out = vec![0u8; 8 * FRAME_SIZE];
    assert_eq!(r.read(&mut out, 8).frames, 0);
    let all: Vec<u8> = (0..5).flat_map(|p| frame_bytes(p, symbol_of(p))).collect();
    assert_eq!(w.publish_batch(&all).unwrap(), 0);
    assert_eq!(w.publish(&frame_bytes(5, 2)).unwrap(), 5);
    let got = r.read(&mut out, 8);
    assert_eq!((got.start, got.frames, got.lost), (0, 6, 0));
    for p in 0..6 {
        let f = &out[p * FRAME_SIZE..(p + 1) * FRAME_SIZE];
        assert!(is_frame_of(f, p as u64));
        assert_eq!(read_fpf1(f, HASH).unwrap().header.seq, p as i64);
    }
    let info = w.readers();
    assert_eq!(info.len(), 1);
    assert_eq!((info[0].position, info[0].lag, info[0].alive), (6, 0, true));
    w.close(true).unwrap();
    assert!(r.read(&mut out, 8).closed);
    assert!(probe(&name).unwrap().is_none(), "unlinked");
    assert!(matches!(
        RingReader::attach(&name, &expect(), Start::Live, false),
        Err(Error::Ring(RingProblem::NotFound { .. }))
    ));
    assert!(matches!(
        w.publish(&frame_bytes(6, 0)),
        Err(Error::Ring(RingProblem::Closed { .. }))
    ));
}

#[test]
fn refusals() {
    let name = ring_name("refuse");
    let mut w = RingWriter::create(&name, &spec(8), b"", false).unwrap();
    let busy = RingWriter::create(&name, &spec(8), b"", true);
    assert!(matches!(busy, Err(Error::Ring(RingProblem::Busy { .. }))));
    for bad in [
        Expect {
            schema_hash64: HASH + 1,
            ..expect()
        },
        Expect {
            feature_set_id: "other_v1".into(),
            ..expect()
        },
        Expect {
            frame_size: FRAME_SIZE - 8,
            ..expect()
        },
    ] {
        let e = RingReader::attach(&name, &bad, Start::Live, false)
            .err()
            .unwrap();
        assert!(matches!(e, Error::Ring(RingProblem::Schema { .. })), "{e}");
        assert_eq!(e.class(), featureplane_core::ErrorClass::SchemaMismatch);
    }
    // A frame of another schema, a short batch, a symbol beyond the table: nothing published.
    let mut foreign = frame_bytes(0, 0);
    foreign[8] ^= 1;
    let batch: Vec<u8> = [frame_bytes(0, 0), foreign].concat();
    assert!(matches!(w.publish_batch(&batch), Err(Error::Frame(_))));
    assert!(w.publish_batch(&batch[..FRAME_SIZE + 1]).is_err());
    assert!(matches!(
        w.publish(&frame_bytes(0, 9)),
        Err(Error::Ring(RingProblem::SymbolId { .. }))
    ));
    assert_eq!(w.cursor(), 0);
    for bad in [
        RingSpec {
            capacity: 12,
            ..spec(8)
        },
        RingSpec {
            frame_size: 70,
            ..spec(8)
        },
    ] {
        assert!(matches!(
            RingWriter::create(&ring_name("bad"), &bad, b"", false),
            Err(Error::Ring(RingProblem::BadSpec(_)))
        ));
    }
    w.close(true).unwrap();
}

#[test]
fn a_lapped_reader_learns_exactly_what_it_lost() {
    let name = ring_name("lap");
    let cap = 16u64;
    let mut w = RingWriter::create(&name, &spec(cap as usize), b"", false).unwrap();
    let mut r = RingReader::attach(&name, &expect(), Start::Live, false).unwrap();
    let mut out = vec![0u8; 64 * FRAME_SIZE];
    for p in 0..3 {
        w.publish(&frame_bytes(p, symbol_of(p))).unwrap();
    }
    assert_eq!(r.read(&mut out, 2).frames, 2);
    for p in 3..100 {
        w.publish(&frame_bytes(p, symbol_of(p))).unwrap();
    }
    let got = r.read(&mut out, 64);
    // Oldest held: 100 - 16 = 84, plus a sixteenth of the ring: 85.
    assert_eq!((got.start, got.lost), (85, 83));
    assert_eq!(got.frames, 15);
    for k in 0..got.frames {
        let f = &out[k * FRAME_SIZE..(k + 1) * FRAME_SIZE];
        let p = got.start + k as u64;
        assert!(is_frame_of(f, p));
        let flags = u32::from_le_bytes([f[20], f[21], f[22], f[23]]);
        // The first frame of each symbol after the gap carries GAP, no other.
        assert_eq!(flags & GAP_DETECTED != 0, k < 3, "frame {k}");
    }
    assert_eq!((r.lost(), r.gaps(), r.lag()), (83, 1, 0));
    let info = w.readers();
    assert_eq!((info[0].lost, info[0].gaps), (83, 1));
    w.close(true).unwrap();
}

#[test]
fn a_late_joiner_starts_from_the_last_frame_of_every_symbol() {
    let name = ring_name("late");
    let mut w = RingWriter::create(&name, &spec(8), b"", false).unwrap();
    let all: Vec<u8> = (0..40).flat_map(|p| frame_bytes(p, symbol_of(p))).collect();
    w.publish_batch(&all).unwrap();
    w.publish(&frame_bytes(40, 1)).unwrap();
    let r = RingReader::attach(&name, &expect(), Start::Live, false).unwrap();
    let mut out = vec![0u8; 4 * FRAME_SIZE];
    assert_eq!(r.latest(&mut out), 3);
    // Symbols 0, 1, 2: last at 39, 40, 38.
    for (k, p) in [39u64, 40, 38].into_iter().enumerate() {
        assert!(is_frame_of(&out[k * FRAME_SIZE..(k + 1) * FRAME_SIZE], p));
    }
    let oldest = RingReader::attach(&name, &expect(), Start::Oldest, false).unwrap();
    assert_eq!(oldest.position(), 41 - 8);
    w.close(true).unwrap();
}

/// Not a test on its own: the child process of `a_crashed_writer_is_detected`.
#[test]
#[ignore = "run by a_crashed_writer_is_detected in a child process"]
fn child_writer_that_crashes() {
    let Ok(name) = std::env::var("FP_RING_CHILD") else {
        return;
    };
    let mut w = RingWriter::create(&name, &spec(8), b"", false).unwrap();
    for p in 0..3 {
        w.publish(&frame_bytes(p, 0)).unwrap();
    }
    std::process::abort();
}

#[test]
fn a_crashed_writer_is_detected() {
    let name = ring_name("crash");
    let status = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "child_writer_that_crashes",
            "--nocapture",
        ])
        .env("FP_RING_CHILD", &name)
        .stderr(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(!status.success(), "the child aborts");
    let st = probe(&name).unwrap().unwrap();
    assert_eq!((st.state, st.cursor), (WriterState::Crashed, 3));
    let e = RingReader::attach(&name, &expect(), Start::Oldest, false)
        .err()
        .unwrap();
    assert!(matches!(e, Error::Ring(RingProblem::Stale { .. })), "{e}");
    // A reader may still drain it on purpose.
    let mut r = RingReader::attach(&name, &expect(), Start::Oldest, true).unwrap();
    let mut out = vec![0u8; 4 * FRAME_SIZE];
    assert_eq!(r.read(&mut out, 4).frames, 3);
    assert!(!r.writer_alive());
    // The next writer of the name refuses it unless told to replace it, and reports it.
    assert!(matches!(
        RingWriter::create(&name, &spec(8), b"", false),
        Err(Error::Ring(RingProblem::Stale { .. }))
    ));
    let mut w = RingWriter::create(&name, &spec(8), b"", true).unwrap();
    assert_eq!(w.replaced().map(|s| s.state), Some(WriterState::Crashed));
    w.close(false).unwrap();
    assert_eq!(
        remove_stale(&name).unwrap().map(|s| s.state),
        Some(WriterState::Closed)
    );
    assert!(probe(&name).unwrap().is_none());
}

fn xorshift(state: &mut u64) -> u64 {
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    *state
}

/// A writer thread flat out and three readers with random pauses over a small ring (so they
/// are lapped again and again): every frame a reader gets is whole and at its position, and
/// frames received plus frames lost is every frame published.
#[test]
fn stress_no_torn_frame() {
    let total: u64 = std::env::var("FP_RING_STRESS_FRAMES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200_000);
    let name = ring_name("stress");
    let mut w = RingWriter::create(&name, &spec(64), b"", false).unwrap();
    let done = Arc::new(AtomicBool::new(false));
    let readers: Vec<_> = (0..3u64)
        .map(|k| {
            let name = name.clone();
            let done = Arc::clone(&done);
            let mut r = RingReader::attach(&name, &expect(), Start::Live, false).unwrap();
            std::thread::spawn(move || {
                let mut seed = 0x1234_5678 + k;
                let mut out = vec![0u8; 32 * FRAME_SIZE];
                let (mut got, mut lost, mut next) = (0u64, 0u64, 0u64);
                loop {
                    let max = 1 + (xorshift(&mut seed) % 32) as usize;
                    let res = r.read_wait(&mut out, max, Duration::from_millis(20), Duration::ZERO);
                    assert_eq!(res.start, next + res.lost, "contiguous positions");
                    for i in 0..res.frames {
                        let p = res.start + i as u64;
                        assert!(
                            is_frame_of(&out[i * FRAME_SIZE..(i + 1) * FRAME_SIZE], p),
                            "torn or misplaced frame at {p}"
                        );
                    }
                    got += res.frames as u64;
                    lost += res.lost;
                    next = res.start + res.frames as u64;
                    if res.closed || (done.load(Ordering::Acquire) && r.lag() == 0) {
                        break;
                    }
                    // Reader 0 keeps up; 1 and 2 pause now and then.
                    if k > 0 && xorshift(&mut seed) % 8 == 0 {
                        std::thread::sleep(Duration::from_micros(xorshift(&mut seed) % 200));
                    }
                }
                (got, lost, r.gaps())
            })
        })
        .collect();
    let mut batch = Vec::with_capacity(16 * FRAME_SIZE);
    let mut p = 0;
    while p < total {
        let k = (1 + p % 16).min(total - p);
        batch.clear();
        for q in p..p + k {
            batch.extend_from_slice(&frame_bytes(q, symbol_of(q)));
        }
        w.publish_batch(&batch).unwrap();
        p += k;
    }
    done.store(true, Ordering::Release);
    w.close(false).unwrap();
    let mut lapped = 0;
    for h in readers {
        let (got, lost, gaps) = h.join().unwrap();
        assert_eq!(got + lost, total, "every frame received or counted lost");
        lapped += gaps;
    }
    eprintln!("stress: {total} frames, 3 readers, lapped {lapped} times in all");
    w.close(true).unwrap();
}

/// The benchmark's latency loops, both writer pacings: every frame arrives, in order, with
/// a latency recorded for it; the segment can be locked in memory (or the refusal says why).
#[test]
fn latency_loops_count_every_frame() {
    use featureplane_core::ring::bench;

    for spin_pacing in [false, true] {
        let name = ring_name(&format!("latency-{spin_pacing}"));
        let mut writer = RingWriter::create(&name, &spec(1024), b"{}", true).unwrap();
        match writer.lock_memory() {
            Ok(()) => {}
            Err(Error::Ring(RingProblem::Io { what, .. })) => assert!(what.contains("mlock")),
            Err(e) => panic!("unexpected {e}"),
        }
        let mut reader = RingReader::attach(&name, &expect(), Start::Live, false).unwrap();
        let n = 300;
        let t = std::thread::spawn(move || {
            bench::read_latencies(
                &mut reader,
                n,
                Duration::from_secs(30),
                Duration::from_millis(20),
            )
        });
        let template = frame_bytes(0, 1);
        bench::write_paced(&mut writer, &template, n, 5_000, spin_pacing).unwrap();
        let got = t.join().unwrap();
        assert_eq!(
            (got.frames, got.lost, got.wrong),
            (n, 0, 0),
            "{spin_pacing}"
        );
        assert_eq!(got.latencies_ns.len(), n as usize);
        assert!(got.latencies_ns.iter().all(|&l| l < u64::MAX));
        writer.close(true).unwrap();
    }
    let (median, largest) = bench::clock_cost_ns(1000);
    assert!(median <= largest);
    let a = bench::monotonic_ns();
    assert!(bench::monotonic_ns() >= a);
}
