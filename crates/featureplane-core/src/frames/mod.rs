//! Frames: the feature values of one symbol after one applied message, one at a time or as
//! columns (the layout of `featureplane.frames.FrameBatch`), and on the wire as FPF1 typed
//! frames ([`wire`], docs/frame-abi.md).

pub mod wire;

use crate::error::Result;
use crate::features::schema::{Dtype, Values, FEATURES, N_FEATURES};

/// Quality bits of a frame (lob_shared_v1 contract).
pub mod quality {
    pub const GAP_DETECTED: u32 = 1;
    pub const STATE_RESET: u32 = 2;
    pub const STALE_INPUT: u32 = 4;
    pub const OUT_OF_ORDER_INPUT: u32 = 8;
    pub const PARTIAL_FEATURES: u32 = 16;
    /// A cumulative sum left i64 since the symbol's reset: its feature holds the i64 bound and
    /// is not ready (docs/features/trades.md).
    pub const VALUE_SATURATED: u32 = 32;
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct FrameHeader {
    /// Row index, in the input, of the last row of the message that produced the frame.
    pub input_index: i64,
    pub symbol_id: u32,
    pub seq: i64,
    pub source_ts_ns: i64,
    pub local_ts_ns: i64,
    pub changed_mask: u64,
    pub warmup_ready_mask: u64,
    pub quality_flags: u32,
}

/// One frame: its header and the feature values in schema order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Frame {
    pub header: FrameHeader,
    pub values: Values,
}

impl Frame {
    /// Write this frame as an FPF1 typed frame; see [`wire::write_fpf1`].
    #[inline]
    pub fn write_fpf1(&self, schema_hash64: u64, out: &mut [u8]) -> Result<usize> {
        wire::write_fpf1(self, schema_hash64, out)
    }
}

/// One feature's values down the frames, in its dtype.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    I64(Vec<i64>),
    F64(Vec<f64>),
    U32(Vec<u32>),
}

impl Column {
    fn with_capacity(dtype: Dtype, n: usize) -> Self {
        match dtype {
            Dtype::I64 => Self::I64(Vec::with_capacity(n)),
            Dtype::F64 => Self::F64(Vec::with_capacity(n)),
            Dtype::U32 => Self::U32(Vec::with_capacity(n)),
        }
    }

    #[inline]
    fn push_word(&mut self, word: u64) {
        match self {
            Self::I64(v) => v.push(word as i64),
            Self::F64(v) => v.push(f64::from_bits(word)),
            Self::U32(v) => v.push(word as u32),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Self::I64(v) => v.len(),
            Self::F64(v) => v.len(),
            Self::U32(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Frames as columns: the header arrays plus one array per feature, in schema order.
#[derive(Debug, Clone, PartialEq)]
pub struct FrameColumns {
    pub input_index: Vec<i64>,
    pub symbol_id: Vec<u32>,
    pub seq: Vec<i64>,
    pub source_ts_ns: Vec<i64>,
    pub local_ts_ns: Vec<i64>,
    pub changed_mask: Vec<u64>,
    pub warmup_ready_mask: Vec<u64>,
    pub quality_flags: Vec<u32>,
    pub values: Vec<Column>,
}

impl FrameColumns {
    pub fn with_capacity(n: usize) -> Self {
        Self {
            input_index: Vec::with_capacity(n),
            symbol_id: Vec::with_capacity(n),
            seq: Vec::with_capacity(n),
            source_ts_ns: Vec::with_capacity(n),
            local_ts_ns: Vec::with_capacity(n),
            changed_mask: Vec::with_capacity(n),
            warmup_ready_mask: Vec::with_capacity(n),
            quality_flags: Vec::with_capacity(n),
            values: FEATURES
                .iter()
                .map(|&(_, dtype)| Column::with_capacity(dtype, n))
                .collect(),
        }
    }

    /// Columns of a feature set whose features have `dtypes` (a declared set's, [`crate::plan`]).
    pub fn with_dtypes(dtypes: &[Dtype], n: usize) -> Self {
        Self {
            values: dtypes
                .iter()
                .map(|&dtype| Column::with_capacity(dtype, n))
                .collect(),
            ..Self::with_capacity_of_headers(n)
        }
    }

    fn with_capacity_of_headers(n: usize) -> Self {
        Self {
            input_index: Vec::with_capacity(n),
            symbol_id: Vec::with_capacity(n),
            seq: Vec::with_capacity(n),
            source_ts_ns: Vec::with_capacity(n),
            local_ts_ns: Vec::with_capacity(n),
            changed_mask: Vec::with_capacity(n),
            warmup_ready_mask: Vec::with_capacity(n),
            quality_flags: Vec::with_capacity(n),
            values: Vec::new(),
        }
    }

    pub fn push(&mut self, frame: &Frame) {
        self.push_words(&frame.header, frame.values.0.iter().copied());
    }

    /// One frame as its header and one word per feature (the layout of [`Values`]).
    #[inline]
    pub fn push_words(&mut self, h: &FrameHeader, words: impl Iterator<Item = u64>) {
        self.input_index.push(h.input_index);
        self.symbol_id.push(h.symbol_id);
        self.seq.push(h.seq);
        self.source_ts_ns.push(h.source_ts_ns);
        self.local_ts_ns.push(h.local_ts_ns);
        self.changed_mask.push(h.changed_mask);
        self.warmup_ready_mask.push(h.warmup_ready_mask);
        self.quality_flags.push(h.quality_flags);
        for (column, word) in self.values.iter_mut().zip(words) {
            column.push_word(word);
        }
    }

    /// Frames given as their headers and values (`headers[i]` with `values[i]`), appended
    /// column by column: one tight loop per column, each reserving once.
    pub fn extend_frames(&mut self, headers: &[FrameHeader], values: &[Values]) {
        debug_assert_eq!(headers.len(), values.len());
        self.input_index
            .extend(headers.iter().map(|h| h.input_index));
        self.symbol_id.extend(headers.iter().map(|h| h.symbol_id));
        self.seq.extend(headers.iter().map(|h| h.seq));
        self.source_ts_ns
            .extend(headers.iter().map(|h| h.source_ts_ns));
        self.local_ts_ns
            .extend(headers.iter().map(|h| h.local_ts_ns));
        self.changed_mask
            .extend(headers.iter().map(|h| h.changed_mask));
        self.warmup_ready_mask
            .extend(headers.iter().map(|h| h.warmup_ready_mask));
        self.quality_flags
            .extend(headers.iter().map(|h| h.quality_flags));
        for (f, column) in self.values.iter_mut().enumerate() {
            let words = values.iter().map(|v| v.0[f]);
            match column {
                Column::I64(c) => c.extend(words.map(|w| w as i64)),
                Column::F64(c) => c.extend(words.map(f64::from_bits)),
                Column::U32(c) => c.extend(words.map(|w| w as u32)),
            }
        }
    }

    pub fn len(&self) -> usize {
        self.input_index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.input_index.is_empty()
    }

    /// Frame `i` back as a struct (tests, debugging).
    pub fn frame(&self, i: usize) -> Frame {
        let mut words = [0u64; N_FEATURES];
        for (word, column) in words.iter_mut().zip(&self.values) {
            *word = match column {
                Column::I64(v) => v[i] as u64,
                Column::F64(v) => v[i].to_bits(),
                Column::U32(v) => u64::from(v[i]),
            };
        }
        Frame {
            header: FrameHeader {
                input_index: self.input_index[i],
                symbol_id: self.symbol_id[i],
                seq: self.seq[i],
                source_ts_ns: self.source_ts_ns[i],
                local_ts_ns: self.local_ts_ns[i],
                changed_mask: self.changed_mask[i],
                warmup_ready_mask: self.warmup_ready_mask[i],
                quality_flags: self.quality_flags[i],
            },
            values: Values(words),
        }
    }
}
