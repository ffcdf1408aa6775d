//! The shared-memory frame ring: one writer, many readers, FPF1 frames in fixed-size slots
//! (docs/transport.md).
//!
//! - [`layout`]: where the header, reader table, metadata, last-frame table and slots sit;
//! - [`slot`]: the per-slot seqlock;
//! - [`writer::RingWriter`]: create, publish (one frame or a batch), heartbeat, close;
//! - [`reader::RingReader`]: attach (schema checked), read batches, lapping and GAP, lag;
//! - [`status`]: writer liveness (pid + process start time), stale segments, `probe`;
//! - [`shm`]: the mapping (the crate's only `unsafe`);
//! - [`bench`]: timed loops for the transport benchmark.
//!
//! The writer never waits for a reader: a reader that falls a whole ring behind is lapped,
//! learns exactly how many frames it lost, and sees `GAP_DETECTED` on the next frame of every
//! symbol. A frame a reader returns is always whole (the seqlock), never torn.

pub mod bench;
pub mod layout;
pub mod reader;
mod shm;
pub mod slot;
pub mod status;
pub mod writer;

pub use layout::RingSpec;
pub use reader::{Expect, ReadOutcome, RingReader, Start};
pub use status::{probe, remove_stale, RingStatus, WriterState};
pub use writer::{ReaderInfo, RingWriter};
