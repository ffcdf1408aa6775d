//! The bytes of an FPF1 frame, built by hand from the table of docs/frame-abi.md, equal what
//! the core writes for the same frame; the core reads them back.

use featureplane_core::events::{MessageBuilder, ASK, BID};
use featureplane_core::features::schema::*;
use featureplane_core::frames::wire::{read_fpf1, write_fpf1, FRAME_SIZE, NO_INPUT_INDEX};
use featureplane_core::{Config, Engine, Frame, Grid};

const HASH: u64 = 0x0123_4567_89AB_CDEF;

/// The doc's layout, field by field at its offsets; the values by their dtype's slot rule.
fn by_hand(frame: &Frame) -> Vec<u8> {
    let h = &frame.header;
    let mut buf = vec![0u8; 64 + 8 * 22];
    let mut put = |at: usize, bytes: &[u8]| buf[at..at + bytes.len()].copy_from_slice(bytes);
    put(0, b"FPF1");
    put(4, &1u16.to_le_bytes());
    put(6, &22u16.to_le_bytes());
    put(8, &HASH.to_le_bytes());
    put(16, &h.symbol_id.to_le_bytes());
    put(20, &h.quality_flags.to_le_bytes());
    put(24, &h.seq.to_le_bytes());
    put(32, &h.source_ts_ns.to_le_bytes());
    put(40, &h.local_ts_ns.to_le_bytes());
    put(48, &h.changed_mask.to_le_bytes());
    put(56, &h.warmup_ready_mask.to_le_bytes());
    for (i, (_, dtype)) in FEATURES.iter().enumerate() {
        let v = &frame.values;
        let slot = match dtype {
            Dtype::I64 => v.i64(i).to_le_bytes(),
            Dtype::F64 => v.f64(i).to_bits().to_le_bytes(),
            Dtype::U32 => u64::from(v.u32(i)).to_le_bytes(),
        };
        put(64 + 8 * i, &slot);
    }
    buf
}

fn frames() -> Vec<Frame> {
    let grid = Grid {
        tick: 0.1,
        lot: 0.001,
    };
    let config = Config {
        schema_hash64: HASH,
        ..Config::default()
    };
    let mut engine = Engine::new(&[grid, grid], config).unwrap();
    let messages = [
        MessageBuilder::new(1, 10)
            .seq(4)
            .local_ts(12)
            .clear()
            .snapshot_level(BID, 99, 5)
            .snapshot_level(ASK, 101, 3)
            .build(),
        MessageBuilder::new(1, 11)
            .seq(5)
            .level(BID, 100, 7)
            .trade(-1, 99, 2)
            .build(),
        // One-sided (partial features), no sequence.
        MessageBuilder::new(0, 12).level(ASK, 50, 1).build(),
    ];
    messages
        .iter()
        .map(|m| engine.process_message(m).unwrap().expect("applied"))
        .collect()
}

#[test]
fn the_core_writes_the_documented_bytes() {
    let frames = frames();
    for frame in &frames {
        let mut out = [0u8; FRAME_SIZE];
        assert_eq!(write_fpf1(frame, HASH, &mut out), Ok(FRAME_SIZE));
        assert_eq!(out.as_slice(), by_hand(frame).as_slice());
    }
    // A few values read straight off the doc's offsets.
    let mut out = [0u8; FRAME_SIZE];
    frames[1].write_fpf1(HASH, &mut out).unwrap();
    let word = |at: usize| u64::from_le_bytes(out[at..at + 8].try_into().unwrap());
    assert_eq!(
        u32::from_le_bytes(out[16..20].try_into().unwrap()),
        1,
        "symbol_id"
    );
    assert_eq!(word(24) as i64, 5, "seq");
    assert_eq!(word(64) as i64, 100, "bid_px");
    assert_eq!(word(72) as i64, 101, "ask_px");
    assert_eq!(word(104) as i64, 201, "mid, half ticks");
    assert_eq!(word(208) as i64, 99, "last_trade_px");
    assert_eq!(word(232), 0, "book_regime, zero-extended");
}

#[test]
fn the_core_reads_back_what_it_writes() {
    for frame in frames() {
        let mut out = [0u8; FRAME_SIZE];
        write_fpf1(&frame, HASH, &mut out).unwrap();
        let back = read_fpf1(&out, HASH).unwrap();
        assert_eq!(back.header.input_index, NO_INPUT_INDEX);
        assert_eq!(back.header.symbol_id, frame.header.symbol_id);
        assert_eq!(back.header.changed_mask, frame.header.changed_mask);
        // Values compare as their 64-bit words: f64 bit for bit, NaN included.
        assert_eq!(back.values, frame.values);
        assert!(read_fpf1(&out, HASH ^ 1).is_err());
    }
}
