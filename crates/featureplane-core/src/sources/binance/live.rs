//! One venue message in, its typed frames out, in Rust alone: the chain research replay reads
//! captures with, then the engine, then the FPF1 frame a ring or a bus carries.
//!
//! This is the work the live plane does per message once Python is out of the way, and the
//! figure `featureplane bench` reports beside the per-message call from Python. A message is
//! one recorder line (`<local_ts_ns> <json>`), as the live feed hands it to its chain.

use crate::engine::{Config, Engine, Grid};
use crate::events::{messages, TRADE};
use crate::frames::wire::FRAME_SIZE;
use crate::Result;

use super::{Chain, ChainConfig, PlainOnly};

/// What one message released: nothing yet (a diff waiting for its snapshot), book messages,
/// trades, or both (a line that released buffered diffs and a trade).
pub const RELEASED_NONE: u8 = 0;
pub const RELEASED_BOOK: u8 = 1;
pub const RELEASED_TRADE: u8 = 2;

/// One symbol's chain and a lob_shared_v1 engine, fed one message at a time.
pub struct LivePath {
    chain: Chain,
    engine: Engine,
    frame: Vec<u8>,
    frames: u64,
}

impl LivePath {
    /// A path for the symbol of `chain` (its symbol id must be 0: the engine has one symbol).
    pub fn new(chain: ChainConfig, grid: Grid, config: Config) -> Result<Self> {
        Ok(Self {
            chain: Chain::new(chain),
            engine: Engine::new(&[grid], config)?,
            frame: vec![0; FRAME_SIZE],
            frames: 0,
        })
    }

    /// Parse one message, apply what it releases and write each frame; what it released
    /// (`RELEASED_*` bits). Decimals the plain path leaves aside are refused (skipped), as in
    /// the Rust-only reader.
    pub fn message(&mut self, line: &[u8]) -> Result<u8> {
        self.chain.feed(line, 0, &mut PlainOnly);
        self.chain.take_notes(); // skips are counted by the chain; nothing reads them here
        let chunk = self.chain.take_chunk();
        let mut released = RELEASED_NONE;
        for (_, message) in messages(&chunk.events) {
            released |= if message[0].kind == TRADE {
                RELEASED_TRADE
            } else {
                RELEASED_BOOK
            };
            if let Some(frame) = self.engine.process_message(message)? {
                frame.write_fpf1(self.engine.config().schema_hash64, &mut self.frame)?;
                self.frames += 1;
            }
        }
        Ok(released)
    }

    /// Frames written so far.
    pub fn frames(&self) -> u64 {
        self.frames
    }

    /// The last frame written (FPF1 bytes; zeros before the first).
    pub fn last_frame(&self) -> &[u8] {
        &self.frame
    }
}
