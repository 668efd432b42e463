//! How far the factor models are from what the machine allows.
//!
//! ```text
//! cargo run --release -p reco-models --example roofline -- peak
//! cargo run --release -p reco-models --example roofline -- models data/ml-100k [runs] [only]
//! cargo run --release -p reco-models --example roofline -- models /tmp/reco-scale/t20/train.csv 1
//! ```
//!
//! `peak` measures the machine: the f32 fused multiply-add rate (eight-lane AVX2 FMA, twelve
//! independent chains so latency is hidden) and the memory bandwidth of a STREAM-style triad
//! `a = b + s·c` over arrays far larger than the caches, each on one thread and on all.
//!
//! `models` fits iALS (CG and Cholesky), BPR, SVD and SVD++ with the peer tables' settings,
//! takes the seconds per epoch from the difference of an `E`- and a `2E`-epoch fit (so loading
//! and set-up cancel), counts each epoch's floating-point operations and bytes from the
//! algorithm (formulas beside each model below), and prints Markdown rows: achieved GFLOP/s and
//! GB/s and their fractions of the measured peaks. Bytes count every factor row an update
//! reads or writes as if it came from memory, an upper bound on the traffic; where the rows stay
//! in cache the real traffic is lower, so a model far below both ceilings is bound by neither
//! (latency, synchronisation or overheads).

use std::path::Path;
use std::time::Instant;

use reco_core::loaders::LoadOptions;
use reco_core::model::FitOptions;
use reco_core::Dataset;
use reco_models::ModelSpec;
use serde_json::{json, Value};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Independent FMA chains per thread: two FMA ports × four cycles of latency, with room.
const CHAINS: usize = 12;

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn fma_avx2(rounds: usize, seed: f32) -> f32 {
    use std::arch::x86_64::*;
    let mut acc = [_mm256_set1_ps(seed); CHAINS];
    let a = _mm256_set1_ps(0.999_999);
    let b = _mm256_set1_ps(1e-7);
    for _ in 0..rounds {
        for r in acc.iter_mut() {
            *r = _mm256_fmadd_ps(*r, a, b);
        }
    }
    let mut lanes = [0f32; 8];
    let mut total = 0.0;
    for r in acc {
        _mm256_storeu_ps(lanes.as_mut_ptr(), r);
        total += lanes.iter().sum::<f32>();
    }
    total
}

/// Floating-point operations per second of `threads` threads running FMA chains.
fn fma_rate(threads: usize) -> f64 {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
        let rounds = 200_000_000 / CHAINS;
        let t = Instant::now();
        let sink: f32 = std::thread::scope(|s| {
            let hs: Vec<_> = (0..threads)
                // SAFETY: AVX2 and FMA are present, checked just above.
                .map(|k| s.spawn(move || unsafe { fma_avx2(rounds, k as f32) }))
                .collect();
            hs.into_iter().map(|h| h.join().unwrap_or(0.0)).sum()
        });
        let secs = t.elapsed().as_secs_f64();
        std::hint::black_box(sink);
        return (threads * rounds * CHAINS * 8 * 2) as f64 / secs;
    }
    0.0
}

/// Bytes per second of a triad over 3 × 256 MiB, split across `threads` threads; best of three.
fn triad_rate(threads: usize) -> f64 {
    let n = 64 << 20;
    let mut a = vec![0f32; n];
    let b = vec![1f32; n];
    let c = vec![2f32; n];
    let chunk = n.div_ceil(threads);
    let mut best = 0f64;
    for _ in 0..3 {
        let t = Instant::now();
        std::thread::scope(|s| {
            for ((a, b), c) in a
                .chunks_mut(chunk)
                .zip(b.chunks(chunk))
                .zip(c.chunks(chunk))
            {
                s.spawn(move || {
                    for ((x, y), z) in a.iter_mut().zip(b).zip(c) {
                        *x = y + 3.0 * z;
                    }
                });
            }
        });
        let secs = t.elapsed().as_secs_f64();
        std::hint::black_box(&a);
        // Read b and c, write a (and read it for ownership: write-allocate).
        best = best.max((4 * n * 4) as f64 / secs);
    }
    best
}

/// The machine's ceilings on all threads: (FLOP/s, bytes/s).
fn peaks(print: bool) -> (f64, f64) {
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let (f1, fa) = (fma_rate(1), fma_rate(all));
    let (b1, ba) = (triad_rate(1), triad_rate(all));
    if print {
        println!("| measure | 1 thread | {all} threads |");
        println!("| --- | --- | --- |");
        println!(
            "| f32 FMA (AVX2, {CHAINS} chains) | {:.1} GFLOP/s | {:.1} GFLOP/s |",
            f1 / 1e9,
            fa / 1e9
        );
        println!(
            "| triad a = b + s·c (3 × 256 MiB) | {:.1} GB/s | {:.1} GB/s |",
            b1 / 1e9,
            ba / 1e9
        );
        println!(
            "\nridge point: {:.1} FLOP/byte (below it a kernel streaming from memory is memory-bound)",
            fa / ba
        );
    }
    (fa, ba)
}

/// The shape a model's counts depend on.
struct Shape {
    users: f64,
    items: f64,
    nnz: f64,
    /// Users with at least one interaction (SVD++ keeps per-user vectors for them).
    rated_users: f64,
}

impl Shape {
    fn of(d: &Dataset) -> Shape {
        let m = &d.interactions;
        Shape {
            users: m.n_users() as f64,
            items: m.n_items() as f64,
            nnz: m.nnz() as f64,
            rated_users: (0..m.n_users() as u32)
                .filter(|&u| m.user_len(u) > 0)
                .count() as f64,
        }
    }
}

/// One model of the table: its spec without `epochs`, the epochs of the shorter fit, and its
/// per-epoch (flops, bytes).
struct Case {
    name: &'static str,
    spec: Value,
    epochs: usize,
    binary: bool,
    counts: fn(&Shape) -> (f64, f64),
}

/// iALS, CG with 3 steps, k = 64, per epoch (a user half-step and an item half-step). Per
/// half-step solving n_x rows against the n_y rows of Y: the Gram matrix YᵀY (upper triangle,
/// n_y·k(k+1)/2 FMA); per row 4 products A·v (the initial residual and 3 steps), each k² FMA for
/// YᵀY·v plus 2k per interaction, k per interaction for b, and ~5k of vector updates per step.
/// Bytes: Y once for the Gram matrix, each interaction's Y row and (index, confidence) per
/// product and for b, each row of X read and written.
fn ials_cg(s: &Shape) -> (f64, f64) {
    let (k, steps) = (64.0, 3.0);
    let half = |nx: f64, ny: f64| {
        let fma = ny * k * (k + 1.0) / 2.0
            + nx * ((steps + 1.0) * (k * k + k) + 5.0 * k * steps)
            + s.nnz * ((steps + 1.0) * 2.0 * k + k);
        let bytes = 4.0 * ny * k + s.nnz * (steps + 2.0) * (4.0 * k + 8.0) + 8.0 * k * nx;
        (2.0 * fma, bytes)
    };
    let (a, b) = (half(s.users, s.items), half(s.items, s.users));
    (a.0 + b.0, a.1 + b.1)
}

/// iALS with exact Cholesky, k = 64: per row, A = YᵀY + λI + Σ (c−1) y yᵀ built in full (k² FMA
/// per interaction, plus k for b), factorised (k³/3) and solved (2k²); the Gram matrix as above.
fn ials_cholesky(s: &Shape) -> (f64, f64) {
    let k = 64.0;
    let half = |nx: f64, ny: f64| {
        let fma = ny * k * (k + 1.0) / 2.0
            + nx * (k * k * k / 3.0 + 2.0 * k * k + k * k)
            + s.nnz * (k * k + k);
        let bytes = 4.0 * ny * k + s.nnz * (4.0 * k + 8.0) + 8.0 * k * nx;
        (2.0 * fma, bytes)
    };
    let (a, b) = (half(s.users, s.items), half(s.items, s.users));
    (a.0 + b.0, a.1 + b.1)
}

/// BPR, 64 factors + the item bias (k = 65), one sample per interaction: the score difference
/// u·(i − j) (2k flops) and three SGD updates of k values (2 FMA each: 12k flops); the three rows
/// read and written (24k bytes) plus the positive's index (4 bytes).
fn bpr(s: &Shape) -> (f64, f64) {
    let k = 65.0;
    (s.nnz * 14.0 * k, s.nnz * (24.0 * k + 4.0))
}

/// Biased SVD, k = 100 (Surprise's default), one SGD step per rating: the prediction's dot
/// (2k flops) and the updates of p_u and q_i (4 FMA per factor: 8k flops); both rows read and
/// written (16k bytes) plus the rating and index (8 bytes).
fn svd(s: &Shape) -> (f64, f64) {
    let k = 100.0;
    (s.nnz * 10.0 * k, s.nnz * (16.0 * k + 8.0))
}

/// SVD++, k = 20, user by user: per rating the prediction q·(p + z) (3k flops) and the updates
/// of p, q, z and the implicit gradient (~13k flops); per rated item of each user the implicit
/// sum z (2k flops) and the update of y_j (3k flops). Bytes: p, q rows read and written per
/// rating, y rows read twice and written once per rated item.
fn svdpp(s: &Shape) -> (f64, f64) {
    let k = 20.0;
    let flops = s.nnz * (16.0 * k) + s.nnz * 5.0 * k;
    let bytes = s.nnz * (16.0 * k + 8.0) + s.nnz * 12.0 * k + s.rated_users * 8.0 * k;
    (flops, bytes)
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "iALS, CG 3 steps, 64 f",
            spec: json!({"model": "ials", "factors": 64, "regularization": 0.05, "alpha": 0.0}),
            epochs: 10,
            binary: true,
            counts: ials_cg,
        },
        Case {
            name: "iALS, Cholesky, 64 f",
            spec: json!({"model": "ials", "factors": 64, "regularization": 0.05, "alpha": 0.0,
                         "solver": "cholesky"}),
            epochs: 2,
            binary: true,
            counts: ials_cholesky,
        },
        Case {
            name: "BPR, 64 f",
            spec: json!({"model": "bpr", "factors": 64, "learning_rate": 0.01,
                         "regularization": 0.01}),
            epochs: 10,
            binary: true,
            counts: bpr,
        },
        Case {
            name: "SVD, 100 f",
            spec: json!({"model": "svd", "factors": 100}),
            epochs: 10,
            binary: false,
            counts: svd,
        },
        Case {
            name: "SVD++, 20 f",
            spec: json!({"model": "svdpp", "factors": 20}),
            epochs: 5,
            binary: false,
            counts: svdpp,
        },
    ]
}

fn load(path: &str, binary: bool) -> Res<Dataset> {
    let o = LoadOptions {
        threshold: binary.then_some(1.0),
        ..LoadOptions::default()
    };
    Ok(reco_core::loaders::load(Path::new(path), None, None, &o)?)
}

/// Seconds of one fit of `spec` with `epochs` epochs.
fn fit_seconds(spec: &Value, epochs: usize, data: &Dataset) -> Res<f64> {
    let mut v = spec.clone();
    v["epochs"] = json!(epochs);
    let spec = ModelSpec::from_value(v)?;
    let opts = FitOptions {
        seed: 42,
        progress: None,
        validation: None,
        checkpoint: None,
    };
    let t = Instant::now();
    let m = spec.fit(data, &opts)?;
    let secs = t.elapsed().as_secs_f64();
    drop(m);
    Ok(secs)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn models(path: &str, runs: usize, only: Option<&str>) -> Res<()> {
    let (peak_flops, peak_bytes) = peaks(false);
    println!(
        "machine: {:.1} GFLOP/s f32 FMA, {:.1} GB/s triad (all threads)\n",
        peak_flops / 1e9,
        peak_bytes / 1e9
    );
    println!("| model | data | s/epoch | GFLOP/epoch | GB/epoch | GFLOP/s | % of FMA peak | GB/s | % of triad |");
    println!("| --- | --- | --- | --- | --- | --- | --- | --- | --- |");
    let (mut binary, mut ratings) = (None, None);
    for c in cases()
        .into_iter()
        .filter(|c| only.is_none_or(|o| c.name.contains(o)))
    {
        let slot = if c.binary { &mut binary } else { &mut ratings };
        if slot.is_none() {
            *slot = Some(load(path, c.binary)?);
        }
        let Some(data) = slot.as_ref() else {
            continue;
        };
        let per_epoch: Vec<f64> = (0..runs)
            .map(|_| {
                let short = fit_seconds(&c.spec, c.epochs, data)?;
                let long = fit_seconds(&c.spec, 2 * c.epochs, data)?;
                Ok((long - short).max(1e-9) / c.epochs as f64)
            })
            .collect::<Res<_>>()?;
        let t = median(per_epoch);
        let (flops, bytes) = (c.counts)(&Shape::of(data));
        println!(
            "| {} | {} × {}, {} | {:.4} | {:.2} | {:.2} | {:.1} | {:.1}% | {:.1} | {:.1}% |",
            c.name,
            data.n_users(),
            data.n_items(),
            data.interactions.nnz(),
            t,
            flops / 1e9,
            bytes / 1e9,
            flops / t / 1e9,
            100.0 * flops / t / peak_flops,
            bytes / t / 1e9,
            100.0 * bytes / t / peak_bytes
        );
    }
    Ok(())
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("peak") => {
            peaks(true);
            Ok(())
        }
        Some("models") => {
            let path = args.get(1).ok_or("models needs a data path")?;
            let runs = args.get(2).map_or(Ok(3), |r| r.parse())?;
            models(path, runs, args.get(3).map(String::as_str))
        }
        _ => Err("usage: roofline peak | roofline models DATA [RUNS] [NAME PART]".into()),
    }
}
