use featureplane_core::events::{rows_from_bytes, EventRow, TRADE};
use featureplane_core::{Config, Engine, Grid};
use std::time::Instant;
fn main() {
    let bytes = std::fs::read("/tmp/fp/pm/btc.rows").unwrap();
    let rows: Vec<EventRow> = rows_from_bytes(&bytes).unwrap().into_owned();
    let mut msgs = vec![];
    let mut s = 0;
    for (i, r) in rows.iter().enumerate() {
        if r.ends_message() {
            msgs.push((s, i + 1));
            s = i + 1;
        }
    }
    let pollute: usize = std::env::var("POLLUTE")
        .map(|v| v.parse().unwrap())
        .unwrap_or(0);
    let mut junk = vec![0u64; pollute / 8 + 1];
    let mut best = vec![u64::MAX; msgs.len()];
    for _ in 0..7 {
        let mut e = Engine::new(
            &[Grid {
                tick: 0.1,
                lot: 0.001,
            }],
            Config::default(),
        )
        .unwrap();
        for (k, &(a, b)) in msgs.iter().enumerate() {
            for j in (0..junk.len()).step_by(8) {
                junk[j] = junk[j].wrapping_add(1);
            }
            if std::env::var_os("WARMROWS").is_some() {
                let mut x = 0i64;
                for r in &rows[a..b] {
                    x ^= r.px ^ r.qty ^ r.seq;
                }
                std::hint::black_box(x);
            }
            let t = Instant::now();
            let f = e.process_message(&rows[a..b]).unwrap();
            std::hint::black_box(f);
            best[k] = best[k].min(t.elapsed().as_nanos() as u64);
        }
    }
    let mut book: Vec<u64> = vec![];
    let mut tr: Vec<u64> = vec![];
    let mut sz = vec![];
    for (k, &(a, b)) in msgs.iter().enumerate() {
        if rows[a].kind == TRADE {
            tr.push(best[k])
        } else {
            book.push(best[k]);
            sz.push(b - a)
        }
    }
    for v in [
        &mut book,
        &mut tr,
        &mut sz.iter().map(|&x| x as u64).collect::<Vec<_>>(),
    ] {
        v.sort();
        println!("p50 {} p99 {}", v[v.len() / 2], v[v.len() * 99 / 100]);
    }
}
