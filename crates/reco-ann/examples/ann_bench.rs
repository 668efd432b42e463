//! Recall@10 against queries per second for the HNSW index, on vectors shared with the Python
//! peers (`bench/peers/compare_hnswlib.py`).
//!
//! ```text
//! cargo run --release -p reco-ann --example ann_bench -- DIR [N] [DIM] [METRIC] [reuse]
//! ```
//!
//! Writes `DIR/base.f32`, `DIR/queries.f32` (raw little-endian rows) and `DIR/truth.u32` (the
//! exact top-10 of every query) when missing, then builds the graph and prints one JSON line
//! per ef with recall@10 and single-thread queries/s, plus build time and memory. Every ef runs
//! the query set `PASSES` times and reports the median pass, because one pass at small ef
//! lasts under 0.1 s and is at the mercy of the scheduler. With `reuse`, a graph saved by an
//! earlier run in `DIR/graph-METRIC` is loaded instead of built (for work on the search loop).

use std::io::Write;
use std::path::Path;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use reco_ann::{Exact, Hnsw, HnswParams, Metric, VectorIndex};
use reco_core::model::Filter;

const QUERIES: usize = 1000;
const K: usize = 10;
const PASSES: usize = 5;

/// Embedding-like vectors: 1,000 cluster centres, per-item noise and unequal norms.
fn generate(n: usize, dim: usize, seed: u64) -> Vec<f32> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut centres = ChaCha8Rng::seed_from_u64(7);
    let c: Vec<f32> = (0..1000 * dim)
        .map(|_| centres.gen_range(-1.0f32..1.0))
        .collect();
    let mut out = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let k = rng.gen_range(0..1000);
        let scale: f32 = rng.gen_range(0.5..1.5);
        out.extend(
            c[k * dim..(k + 1) * dim]
                .iter()
                .map(|x| scale * (x + rng.gen_range(-0.5f32..0.5))),
        );
    }
    out
}

fn write(path: &Path, bytes: &[u8]) {
    std::fs::File::create(path)
        .and_then(|mut f| f.write_all(bytes))
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

fn read_f32(path: &Path) -> Vec<f32> {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let dir = Path::new(args.get(1).map(String::as_str).unwrap_or("/tmp/reco-ann"));
    let n: usize = args
        .get(2)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1_000_000);
    let dim: usize = args.get(3).and_then(|s| s.parse().ok()).unwrap_or(64);
    let metric = match args.get(4).map(String::as_str).unwrap_or("ip") {
        "cosine" => Metric::Cosine,
        "l2" => Metric::L2,
        _ => Metric::InnerProduct,
    };
    std::fs::create_dir_all(dir).expect("output directory");
    let (bp, qp, tp) = (
        dir.join("base.f32"),
        dir.join("queries.f32"),
        dir.join(format!("truth-{metric:?}.u32")),
    );
    if !bp.exists() {
        let b: Vec<u8> = generate(n, dim, 1)
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        write(&bp, &b);
        let q: Vec<u8> = generate(QUERIES, dim, 2)
            .iter()
            .flat_map(|x| x.to_le_bytes())
            .collect();
        write(&qp, &q);
    }
    let base = read_f32(&bp);
    let queries = read_f32(&qp);
    assert_eq!(
        base.len(),
        n * dim,
        "base.f32 was written for another N or DIM"
    );
    let truth: Vec<u32> = if tp.exists() {
        std::fs::read(&tp)
            .expect("truth")
            .chunks_exact(4)
            .map(|c| u32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    } else {
        let t0 = Instant::now();
        let exact = Exact::from_rows(dim, metric, &base).expect("exact index");
        let hits = exact
            .search_many(&queries, K, |_| Filter::default())
            .expect("exact search");
        let secs = t0.elapsed().as_secs_f64();
        println!(
            "{{\"index\":\"exact\",\"queries_per_s\":{:.1},\"threads\":{}}}",
            QUERIES as f64 / secs,
            rayon::current_num_threads()
        );
        let t: Vec<u32> = hits.iter().flat_map(|h| h.iter().map(|s| s.item)).collect();
        write(
            &tp,
            &t.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>(),
        );
        t
    };
    let params = HnswParams {
        m: 16,
        ef_construction: 200,
        ef_search: 64,
    };
    let saved = dir.join(format!("graph-{metric:?}"));
    let reuse = args.get(5).map(String::as_str) == Some("reuse") && saved.exists();
    let mut index = if reuse {
        Hnsw::load(&saved).expect("saved graph")
    } else {
        let t0 = Instant::now();
        let index = Hnsw::from_rows(dim, metric, params, &base, &|_| {}).expect("hnsw build");
        let build = t0.elapsed().as_secs_f64();
        println!(
            "{{\"index\":\"reco-hnsw\",\"build_s\":{build:.1},\"memory_mb\":{:.0},\"threads\":{}}}",
            index.memory_bytes() as f64 / 1e6,
            rayon::current_num_threads()
        );
        index.save(&saved).expect("save graph");
        index
    };
    for ef in [16, 32, 64, 128, 256, 512] {
        index.set_ef_search(ef);
        let mut found = 0usize;
        let mut rates = Vec::with_capacity(PASSES);
        for _ in 0..PASSES {
            found = 0;
            let t0 = Instant::now();
            for (q, v) in queries.chunks_exact(dim).enumerate() {
                let hits = index.search(v, K, &Filter::default()).expect("search");
                let want = &truth[q * K..(q + 1) * K];
                found += hits.iter().filter(|s| want.contains(&s.item)).count();
            }
            rates.push(QUERIES as f64 / t0.elapsed().as_secs_f64());
        }
        rates.sort_by(f64::total_cmp);
        println!(
            "{{\"index\":\"reco-hnsw\",\"ef\":{ef},\"recall_at_10\":{:.4},\"queries_per_s\":{:.0}}}",
            found as f64 / (QUERIES * K) as f64,
            rates[PASSES / 2]
        );
    }
    let _ = index.len();
}
