//! FPF1, the typed binary frame (docs/frame-abi.md; Python: `featureplane.transport`).
//!
//! A 64-byte header ([`TypedFrameHeaderV1`]) then one 8-byte slot per feature in schema order,
//! all little endian: i64 as is, f64 bits as is, u32 zero-extended. Every slot is 8 bytes, so
//! a value's offset depends only on its position. This is the one binary layout of a frame:
//! what `process_into` hands to Python, what `transport.pack` writes, what a Rust consumer
//! reads in place.
//!
//! Writing is a fixed-size copy into the caller's buffer (no allocation: it runs per message);
//! reading checks the decoding rules before any value is read, and a frame of another layout
//! or schema is an [`Error::Frame`], never a panic and never a misread value.

use std::mem::{align_of, size_of};

use bytemuck::{Pod, Zeroable};

use super::{Frame, FrameHeader};
use crate::error::{Error, FrameProblem, Result};
use crate::features::schema::{Dtype, Values, FEATURES, N_FEATURES};

pub const MAGIC: [u8; 4] = *b"FPF1";
pub const LAYOUT_VERSION: u16 = 1;
pub const HEADER_SIZE: usize = 64;
pub const SLOT_SIZE: usize = 8;
/// Bytes of one lob_shared_v1 frame: 64 + 8 x 22 = 240.
pub const FRAME_SIZE: usize = HEADER_SIZE + SLOT_SIZE * N_FEATURES;

/// `input_index` of a decoded frame: the producer's input rows are not on the wire.
pub const NO_INPUT_INDEX: i64 = -1;

/// The FPF1 header, field for field as docs/frame-abi.md lays it out. Every field sits at a
/// multiple of its own size, so `repr(C)` adds no padding (checked below, and by `Pod`).
///
/// The fields hold native-endian values; [`TypedFrameHeaderV1::to_le_bytes`] and
/// [`TypedFrameHeaderV1::from_le_bytes`] convert to and from the wire's little endian.
#[repr(C)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Pod, Zeroable)]
pub struct TypedFrameHeaderV1 {
    /// `b"FPF1"`
    pub magic: [u8; 4],
    /// 1: this layout.
    pub layout_version: u16,
    /// Value slots that follow the header.
    pub n_values: u16,
    /// `FeatureSet.schema_hash64` of the producer's feature set.
    pub schema_hash64: u64,
    pub symbol_id: u32,
    pub quality_flags: u32,
    pub seq: i64,
    pub source_ts_ns: i64,
    pub local_ts_ns: i64,
    pub changed_mask: u64,
    pub warmup_ready_mask: u64,
}

const _: () = assert!(size_of::<TypedFrameHeaderV1>() == HEADER_SIZE);
const _: () = assert!(align_of::<TypedFrameHeaderV1>() == 8);
const _: () = assert!(N_FEATURES <= u16::MAX as usize);

/// The header's fields in byte order as (name, array-interface type string): the numpy
/// structured dtype of `featureplane.transport.HEADER_DTYPE_FIELDS`, which the extension
/// exports as `FRAME_RECORD_HEADER`.
pub const HEADER_FIELDS: [(&str, &str); 11] = [
    ("magic", "S4"),
    ("layout_version", "<u2"),
    ("n_values", "<u2"),
    ("schema_hash64", "<u8"),
    ("symbol_id", "<u4"),
    ("quality_flags", "<u4"),
    ("seq", "<i8"),
    ("source_ts_ns", "<i8"),
    ("local_ts_ns", "<i8"),
    ("changed_mask", "<u8"),
    ("warmup_ready_mask", "<u8"),
];

/// Per slot, the bits a value may occupy: a u32 feature's word is masked to its low 4 bytes,
/// so a written frame always passes the receiver's zero-extension check.
const SLOT_MASKS: [u64; N_FEATURES] = {
    let mut masks = [u64::MAX; N_FEATURES];
    let mut i = 0;
    while i < N_FEATURES {
        if matches!(FEATURES[i].1, Dtype::U32) {
            masks[i] = u32::MAX as u64;
        }
        i += 1;
    }
    masks
};

impl TypedFrameHeaderV1 {
    /// The FPF1 header of `header`, for a feature set whose schema hash is `schema_hash64`.
    #[inline]
    pub fn new(header: &FrameHeader, schema_hash64: u64) -> Self {
        Self {
            magic: MAGIC,
            layout_version: LAYOUT_VERSION,
            n_values: N_FEATURES as u16,
            schema_hash64,
            symbol_id: header.symbol_id,
            quality_flags: header.quality_flags,
            seq: header.seq,
            source_ts_ns: header.source_ts_ns,
            local_ts_ns: header.local_ts_ns,
            changed_mask: header.changed_mask,
            warmup_ready_mask: header.warmup_ready_mask,
        }
    }

    /// The engine's frame header this carries (`input_index` is not on the wire).
    pub fn frame_header(&self) -> FrameHeader {
        FrameHeader {
            input_index: NO_INPUT_INDEX,
            symbol_id: self.symbol_id,
            seq: self.seq,
            source_ts_ns: self.source_ts_ns,
            local_ts_ns: self.local_ts_ns,
            changed_mask: self.changed_mask,
            warmup_ready_mask: self.warmup_ready_mask,
            quality_flags: self.quality_flags,
        }
    }

    /// The 64 wire bytes.
    #[inline]
    pub fn to_le_bytes(&self) -> [u8; HEADER_SIZE] {
        bytemuck::cast(self.swap_to_le())
    }

    /// The header in `bytes` (any alignment).
    #[inline]
    pub fn from_le_bytes(bytes: &[u8; HEADER_SIZE]) -> Self {
        bytemuck::cast::<_, Self>(*bytes).swap_to_le()
    }

    /// Every multi-byte field between native and little endian (its own inverse; nothing to do
    /// on a little-endian machine, and the compiler removes it there).
    #[inline]
    fn swap_to_le(self) -> Self {
        Self {
            magic: self.magic,
            layout_version: self.layout_version.to_le(),
            n_values: self.n_values.to_le(),
            schema_hash64: self.schema_hash64.to_le(),
            symbol_id: self.symbol_id.to_le(),
            quality_flags: self.quality_flags.to_le(),
            seq: self.seq.to_le(),
            source_ts_ns: self.source_ts_ns.to_le(),
            local_ts_ns: self.local_ts_ns.to_le(),
            changed_mask: self.changed_mask.to_le(),
            warmup_ready_mask: self.warmup_ready_mask.to_le(),
        }
    }
}

/// Write `frame` as an FPF1 frame into the first [`FRAME_SIZE`] bytes of `out`; returns
/// [`FRAME_SIZE`]. `schema_hash64` names the producer's feature set (`FeatureSet.schema_hash64`
/// of lob_shared_v1). Allocation-free; an `out` shorter than a frame is an error.
#[inline]
pub fn write_fpf1(frame: &Frame, schema_hash64: u64, out: &mut [u8]) -> Result<usize> {
    let bytes = out.len();
    let Some(out) = out.get_mut(..FRAME_SIZE) else {
        return Err(Error::FrameBuffer {
            bytes,
            need: FRAME_SIZE,
        });
    };
    let (head, slots) = out.split_at_mut(HEADER_SIZE);
    head.copy_from_slice(&TypedFrameHeaderV1::new(&frame.header, schema_hash64).to_le_bytes());
    for ((slot, &word), mask) in slots
        .chunks_exact_mut(SLOT_SIZE)
        .zip(&frame.values.0)
        .zip(SLOT_MASKS)
    {
        slot.copy_from_slice(&(word & mask).to_le_bytes());
    }
    Ok(FRAME_SIZE)
}

/// Bytes of an FPF1 frame of `n_values` features.
pub const fn frame_size(n_values: usize) -> usize {
    HEADER_SIZE + SLOT_SIZE * n_values
}

/// Write a frame of any feature set (a declared one, [`crate::plan`]) as FPF1 into the first
/// [`frame_size`]`(words.len())` bytes of `out`; returns that size. `words`: one per feature
/// in frame order ([`Values`]' encoding), `dtypes` theirs. Allocation-free; a short `out`, or
/// more features than the header can count, is an error.
pub fn write_fpf1_words(
    header: &FrameHeader,
    words: &[u64],
    dtypes: &[Dtype],
    schema_hash64: u64,
    out: &mut [u8],
) -> Result<usize> {
    let need = frame_size(words.len());
    let bytes = out.len();
    let (Ok(n_values), Some(out)) = (u16::try_from(words.len()), out.get_mut(..need)) else {
        return Err(Error::FrameBuffer { bytes, need });
    };
    let head_fields = TypedFrameHeaderV1 {
        n_values,
        ..TypedFrameHeaderV1::new(header, schema_hash64)
    };
    let (head, slots) = out.split_at_mut(HEADER_SIZE);
    head.copy_from_slice(&head_fields.to_le_bytes());
    for ((slot, &word), &dtype) in slots.chunks_exact_mut(SLOT_SIZE).zip(words).zip(dtypes) {
        let mask = if dtype == Dtype::U32 {
            u64::from(u32::MAX)
        } else {
            u64::MAX
        };
        slot.copy_from_slice(&(word & mask).to_le_bytes());
    }
    Ok(need)
}

/// The header of an FPF1 frame without any schema check: only the length and the magic (to
/// route frames by symbol or schema hash before choosing a decoder).
pub fn peek_header(buf: &[u8]) -> Result<TypedFrameHeaderV1> {
    let Some(head) = buf.first_chunk::<HEADER_SIZE>() else {
        return Err(Error::Frame(FrameProblem::Short { bytes: buf.len() }));
    };
    let header = TypedFrameHeaderV1::from_le_bytes(head);
    if header.magic != MAGIC {
        return Err(Error::Frame(FrameProblem::Magic {
            magic: header.magic,
        }));
    }
    Ok(header)
}

/// Decode one lob_shared_v1 frame for a receiver whose feature set's hash is `schema_hash64`.
///
/// The decoding rules of docs/frame-abi.md, in order, before any value is read: length and
/// magic, layout version, schema hash, value count and exact length, then every u32 slot's
/// high bytes zero. The frame's `input_index` is [`NO_INPUT_INDEX`].
pub fn read_fpf1(buf: &[u8], schema_hash64: u64) -> Result<Frame> {
    let header = peek_header(buf)?;
    let refuse = |problem| Err(Error::Frame(problem));
    if header.layout_version != LAYOUT_VERSION {
        return refuse(FrameProblem::LayoutVersion {
            version: header.layout_version,
        });
    }
    if header.schema_hash64 != schema_hash64 {
        return refuse(FrameProblem::SchemaHash {
            got: header.schema_hash64,
            want: schema_hash64,
        });
    }
    if usize::from(header.n_values) != N_FEATURES {
        return refuse(FrameProblem::NValues {
            got: header.n_values,
            want: N_FEATURES,
        });
    }
    if buf.len() != FRAME_SIZE {
        return refuse(FrameProblem::Length {
            bytes: buf.len(),
            want: FRAME_SIZE,
        });
    }
    let mut words = [0u64; N_FEATURES];
    for (i, (word, slot)) in words
        .iter_mut()
        .zip(buf[HEADER_SIZE..].chunks_exact(SLOT_SIZE))
        .enumerate()
    {
        let mut le = [0u8; SLOT_SIZE];
        le.copy_from_slice(slot);
        *word = u64::from_le_bytes(le);
        if *word & !SLOT_MASKS[i] != 0 {
            return refuse(FrameProblem::U32HighBytes {
                feature: FEATURES[i].0,
            });
        }
    }
    Ok(Frame {
        header: header.frame_header(),
        values: Values(words),
    })
}

#[cfg(test)]
mod tests {
    use std::mem::offset_of;

    use super::*;
    use crate::features::schema::{BID_PX, BOOK_REGIME, MICROPRICE};

    /// Bytes of an array-interface type string such as "<u8" or "S4".
    fn typestr_size(typestr: &str) -> usize {
        typestr
            .trim_start_matches(['<', 'S', 'u', 'i'])
            .parse()
            .unwrap()
    }

    #[test]
    fn header_fields_match_the_struct() {
        type H = TypedFrameHeaderV1;
        let offsets = [
            offset_of!(H, magic),
            offset_of!(H, layout_version),
            offset_of!(H, n_values),
            offset_of!(H, schema_hash64),
            offset_of!(H, symbol_id),
            offset_of!(H, quality_flags),
            offset_of!(H, seq),
            offset_of!(H, source_ts_ns),
            offset_of!(H, local_ts_ns),
            offset_of!(H, changed_mask),
            offset_of!(H, warmup_ready_mask),
        ];
        let mut at = 0;
        for ((name, typestr), offset) in HEADER_FIELDS.iter().zip(offsets) {
            assert_eq!(offset, at, "{name}");
            at += typestr_size(typestr);
        }
        assert_eq!(at, HEADER_SIZE);
        // The doc's table: 64 + 8 x 22.
        assert_eq!(FRAME_SIZE, 240);
    }

    fn frame() -> Frame {
        let mut values = Values::default();
        values.set_i64(BID_PX, -3);
        values.set_f64(MICROPRICE, -0.0);
        values.set_u32(BOOK_REGIME, u32::MAX);
        Frame {
            header: FrameHeader {
                input_index: 17,
                symbol_id: 2,
                seq: -1,
                source_ts_ns: 5,
                local_ts_ns: 6,
                changed_mask: 1 << 40,
                warmup_ready_mask: 3,
                quality_flags: 16,
            },
            values,
        }
    }

    #[test]
    fn a_frame_round_trips_bit_for_bit() {
        let frame = frame();
        let mut out = [0xAAu8; FRAME_SIZE + 3];
        assert_eq!(write_fpf1(&frame, 0xDEAD_BEEF, &mut out), Ok(FRAME_SIZE));
        assert_eq!(out[FRAME_SIZE..], [0xAA; 3], "nothing past the frame");
        let back = read_fpf1(&out[..FRAME_SIZE], 0xDEAD_BEEF).unwrap();
        assert_eq!(back.values, frame.values);
        let want = FrameHeader {
            input_index: NO_INPUT_INDEX,
            ..frame.header
        };
        assert_eq!(back.header, want);
        assert_eq!(peek_header(&out).unwrap().symbol_id, 2);
    }

    #[test]
    fn a_short_buffer_is_an_error() {
        let mut out = [0u8; FRAME_SIZE - 1];
        assert_eq!(
            write_fpf1(&frame(), 1, &mut out),
            Err(Error::FrameBuffer {
                bytes: FRAME_SIZE - 1,
                need: FRAME_SIZE
            })
        );
    }

    #[test]
    fn every_decoding_rule_refuses_in_order() {
        let mut good = [0u8; FRAME_SIZE];
        write_fpf1(&frame(), 7, &mut good).unwrap();
        let problem = |buf: &[u8], hash: u64| match read_fpf1(buf, hash) {
            Err(Error::Frame(p)) => p,
            other => panic!("expected a refusal, got {other:?}"),
        };
        assert_eq!(problem(&good[..63], 7), FrameProblem::Short { bytes: 63 });
        let mut bad = good;
        bad[3] = b'2';
        assert_eq!(problem(&bad, 7), FrameProblem::Magic { magic: *b"FPF2" });
        let mut bad = good;
        bad[4] = 2;
        assert_eq!(problem(&bad, 7), FrameProblem::LayoutVersion { version: 2 });
        assert_eq!(
            problem(&good, 8),
            FrameProblem::SchemaHash { got: 7, want: 8 }
        );
        let mut bad = good;
        bad[6] = 21;
        assert_eq!(
            problem(&bad, 7),
            FrameProblem::NValues { got: 21, want: 22 }
        );
        assert_eq!(
            problem(&good[..FRAME_SIZE - 8], 7),
            FrameProblem::Length {
                bytes: FRAME_SIZE - 8,
                want: FRAME_SIZE
            }
        );
        let mut bad = good;
        bad[HEADER_SIZE + 8 * BOOK_REGIME + 4] = 1;
        assert_eq!(
            problem(&bad, 7),
            FrameProblem::U32HighBytes {
                feature: "book_regime"
            }
        );
        assert!(read_fpf1(&good, 7).is_ok());
        assert_eq!(
            Error::Frame(FrameProblem::Magic { magic: *b"FPF2" }).to_string(),
            "not a typed feature frame: magic FPF2, want b\"FPF1\""
        );
    }

    #[test]
    fn a_u32_word_with_high_bits_is_written_zero_extended() {
        let mut frame = frame();
        frame.values.0[BOOK_REGIME] = 0xFFFF_FFFF_0000_0004;
        let mut out = [0u8; FRAME_SIZE];
        write_fpf1(&frame, 0, &mut out).unwrap();
        let back = read_fpf1(&out, 0).unwrap();
        assert_eq!(back.values.u32(BOOK_REGIME), 4);
        assert_eq!(back.values.0[BOOK_REGIME], 4);
    }
}
