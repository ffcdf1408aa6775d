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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sources::binance::Grid as DecimalGrid;

    fn path() -> LivePath {
        let chain = ChainConfig {
            symbol: "BTCUSDT".into(),
            symbol_id: 0,
            usdm: true,
            px: DecimalGrid { units: 1, exp: 1 },
            qty: DecimalGrid { units: 1, exp: 3 },
            chunk_rows: usize::MAX,
            stop_on_skip: false,
        };
        let grid = Grid {
            tick: 0.1,
            lot: 0.001,
        };
        LivePath::new(chain, grid, Config::default()).expect("one symbol")
    }

    const DIFF: &[u8] = b"6 {\"stream\":\"btcusdt@depth@0ms\",\"data\":{\"e\":\"depthUpdate\",\
        \"E\":3,\"T\":2,\"s\":\"BTCUSDT\",\"U\":101,\"u\":102,\"pu\":99,\
        \"b\":[[\"61800.1\",\"1.000\"]],\"a\":[]}}";
    const SNAPSHOT: &[u8] = b"7 {\"lastUpdateId\":100,\"E\":2,\"T\":1,\
        \"bids\":[[\"61800.2\",\"2.909\"]],\"asks\":[[\"61800.3\",\"1.072\"]]}";
    const TRADE: &[u8] = b"8 {\"stream\":\"btcusdt@trade\",\"data\":{\"e\":\"trade\",\"E\":4,\
        \"T\":4,\"s\":\"BTCUSDT\",\"t\":1,\"p\":\"61800.3\",\"q\":\"0.002\",\"X\":\"MARKET\",\
        \"m\":false}}";

    #[test]
    fn a_diff_waits_for_its_snapshot_then_each_message_writes_its_frame() {
        let mut p = path();
        assert_eq!(p.message(DIFF).expect("parsed"), RELEASED_NONE);
        assert_eq!(p.frames(), 0);
        // The snapshot releases itself and the diff that straddles it.
        assert_eq!(p.message(SNAPSHOT).expect("parsed"), RELEASED_BOOK);
        assert_eq!(p.frames(), 2);
        assert_eq!(p.message(TRADE).expect("parsed"), RELEASED_TRADE);
        assert_eq!(p.frames(), 3);
        assert_eq!(&p.last_frame()[..4], b"FPF1");
    }

    #[test]
    fn a_line_that_is_not_json_is_skipped_not_an_error() {
        let mut p = path();
        assert_eq!(p.message(b"9 {not json").expect("skipped"), RELEASED_NONE);
        assert_eq!(p.frames(), 0);
    }
}
