use featureplane_core::plan::{PlanEngine, LOB_SHARED_V1_PLAN};
use featureplane_core::synthetic::{feed, FeedShape};
use featureplane_core::{Config, Engine, Grid};
use std::time::Instant;
fn main() {
    let shape = FeedShape { diffs: 20_000, ..FeedShape::default() };
    let rows = feed(shape, 7);
    let grids = vec![Grid { tick: 0.1, lot: 0.001 }; shape.symbols as usize];
    let which = std::env::args().nth(1).unwrap_or_default();
    if let Some(n) = std::env::args().nth(2) {
        let n: usize = n.parse().unwrap();
        let tr: usize = std::env::var("TRADES").ok().and_then(|v| v.parse().ok()).unwrap_or(FeedShape::default().trades_per_diff);
        let rows = feed(FeedShape { diffs: n, trades_per_diff: tr, ..FeedShape::default() }, 7);
        if which == "spec" {
            let mut e = Engine::new(&grids, Config::default()).unwrap();
            std::hint::black_box(e.process_batch(&rows).unwrap().len());
        } else {
            let mut g = PlanEngine::from_json(LOB_SHARED_V1_PLAN, &grids, Config::default()).unwrap();
            std::hint::black_box(g.process_batch(&rows).unwrap().len());
        }
        return;
    }
    for _ in 0..3 {
        let mut best = [f64::MAX; 2];
        for _ in 0..5 {
            if which != "gen" {
            let mut e = Engine::new(&grids, Config::default()).unwrap();
            let t = Instant::now();
            std::hint::black_box(e.process_batch(&rows).unwrap().len());
            best[0] = best[0].min(t.elapsed().as_secs_f64());
            }
            if which != "spec" {
            let mut g = PlanEngine::from_json(LOB_SHARED_V1_PLAN, &grids, Config::default()).unwrap();
            let t = Instant::now();
            std::hint::black_box(g.process_batch(&rows).unwrap().len());
            best[1] = best[1].min(t.elapsed().as_secs_f64());
            }
        }
        let n = rows.len() as f64;
        println!("spec {:.1} ns/ev, generic {:.1} ns/ev, ratio {:.3}", best[0] / n * 1e9, best[1] / n * 1e9, best[1] / best[0]);
    }
}
