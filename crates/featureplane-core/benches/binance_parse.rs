//! Criterion bench of the Binance line parser: recorder text -> event rows (`Chain::feed`), the
//! parse alone (no decompression, no engine), in bytes of capture text per second.
//!
//! `binance_parse/<capture>` reads the real captures of `../shared/data` (or
//! `$FEATUREPLANE_DATA`), inflated once before timing; a capture that is not there is left
//! out with a line saying so. Each run checks what it parsed: every line read, none skipped, and
//! the same rows as the first run.

use std::io::Read;
use std::path::PathBuf;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use featureplane_core::sources::binance::{Chain, ChainConfig, Fed, Grid, PlainOnly};

/// Rows per chunk, as the Python reader's default hands them out.
const CHUNK_ROWS: usize = 1 << 16;

struct Capture {
    name: &'static str,
    folder: &'static str,
    symbol: &'static str,
    usdm: bool,
    px: Grid,
    qty: Grid,
}

const CAPTURES: [Capture; 3] = [
    Capture {
        name: "usdm_btcusdt",
        folder: "binance-usdm-btcusdt-20240808",
        symbol: "BTCUSDT",
        usdm: true,
        px: Grid { units: 1, exp: 1 },
        qty: Grid { units: 1, exp: 3 },
    },
    Capture {
        name: "usdm_ethusdt",
        folder: "binance-usdm-ethusdt-20240808",
        symbol: "ETHUSDT",
        usdm: true,
        px: Grid { units: 1, exp: 2 },
        qty: Grid { units: 1, exp: 3 },
    },
    Capture {
        name: "spot_btcusdt",
        folder: "binance-spot-btcusdt-20240808-09",
        symbol: "BTCUSDT",
        usdm: false,
        px: Grid { units: 1, exp: 2 },
        qty: Grid { units: 1, exp: 8 },
    },
];

fn data_dir() -> PathBuf {
    std::env::var_os("FEATUREPLANE_DATA").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data"),
        PathBuf::from,
    )
}

/// The text of each `.gz` file of the capture's folder, in name order (the chain's order).
fn inflate(capture: &Capture) -> Option<Vec<Vec<u8>>> {
    let mut paths: Vec<PathBuf> = std::fs::read_dir(data_dir().join(capture.folder))
        .ok()?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "gz"))
        .collect();
    paths.sort();
    let texts: Vec<Vec<u8>> = paths
        .iter()
        .map(|p| {
            let mut text = Vec::new();
            let file = std::fs::File::open(p).expect("capture file");
            flate2::read::MultiGzDecoder::new(file)
                .read_to_end(&mut text)
                .expect("a sound gzip stream");
            text
        })
        .collect();
    (!texts.is_empty()).then_some(texts)
}

/// Parse every file of the chain; returns (lines, event rows, book-ticker rows).
fn parse(capture: &Capture, texts: &[Vec<u8>]) -> (u64, usize, usize) {
    let mut chain = Chain::new(ChainConfig {
        symbol: capture.symbol.into(),
        symbol_id: 0,
        usdm: capture.usdm,
        px: capture.px,
        qty: capture.qty,
        chunk_rows: CHUNK_ROWS,
        stop_on_skip: false,
    });
    let (mut lines, mut events, mut bbo) = (0, 0, 0);
    for (pos, text) in texts.iter().enumerate() {
        chain.start_file(pos as u32);
        let mut start = 0;
        while start < text.len() {
            let (next, fed) = chain.feed(text, start, &mut PlainOnly);
            assert!(matches!(fed, Fed::Block | Fed::ChunkFull), "{fed:?}");
            start = next;
            let chunk = chain.take_chunk();
            events += chunk.events.len();
            bbo += chunk.bbo_key.len();
        }
        lines += chain.lines();
    }
    assert!(chain.take_notes().is_empty(), "a line was skipped");
    (lines, events, bbo)
}

fn bench_parse(c: &mut Criterion) {
    let mut group = c.benchmark_group("binance_parse");
    for capture in &CAPTURES {
        let Some(texts) = inflate(capture) else {
            eprintln!(
                "binance_parse/{}: no capture at {:?}",
                capture.name,
                data_dir()
            );
            continue;
        };
        let bytes: usize = texts.iter().map(Vec::len).sum();
        let expected = parse(capture, &texts);
        let newlines: usize = texts
            .iter()
            .map(|t| memchr::memchr_iter(b'\n', t).count())
            .sum();
        assert!(expected.0 >= newlines as u64, "every line read");
        group.throughput(Throughput::Bytes(bytes as u64));
        group.bench_function(capture.name, |b| {
            b.iter(|| assert_eq!(parse(capture, &texts), expected))
        });
    }
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench_parse
}
criterion_main!(benches);
