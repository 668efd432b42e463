//! reco's boosted-tree and logistic rankers against forust-ml (a pure-Rust XGBoost-style
//! booster) on the rows a pipeline's ranker is really trained on.
//!
//! ```text
//! cargo run --release --manifest-path bench/gbdt-crates/Cargo.toml -- [DATA_DIR] [CONFIG]
//! ```
//!
//! DATA_DIR is RecBole atomic files (default data/ml-100k, from
//! scripts/fetch-movielens-100k.sh), every rating an interaction; CONFIG a pipeline TOML
//! (default examples/pipeline.toml). The rows of the temporal-80% training part are split
//! 80/20 at random; each learner fits the 80% three times (median time quoted) and is scored
//! by AUC and log-loss on the 20%.

use std::path::Path;
use std::time::Instant;

use forust_ml::{GradientBooster, Matrix};
use reco_core::loaders::LoadOptions;
use reco_core::model::FitOptions;
use reco_core::split::{split, Protocol};
use reco_eval::metrics::Relevant;
use reco_pipeline::ranker::{Gbdt, Logistic, Rows};
use reco_pipeline::{Pipeline, PipelineSpec};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// Area under the ROC curve of `scores` against 0/1 `labels`, by reco's own metric (rows
/// stand in for items, the positive rows are the relevant ones).
fn auc(scores: &[f64], labels: &[f32]) -> f64 {
    let rel = Relevant::new(
        (0..labels.len() as u32)
            .filter(|&k| labels[k as usize] > 0.5)
            .map(|k| (k, 1.0))
            .collect(),
    );
    let s: Vec<f32> = scores.iter().map(|&x| x as f32).collect();
    reco_eval::metrics::auc(&s, &rel, &[], None).unwrap_or(f64::NAN)
}

/// Mean log-loss of log-odds `z` against `labels`.
fn log_loss(z: &[f64], labels: &[f32]) -> f64 {
    z.iter()
        .zip(labels)
        .map(|(&z, &y)| {
            let p = (1.0 / (1.0 + (-z).exp())).clamp(1e-12, 1.0 - 1e-12);
            -(y as f64 * p.ln() + (1.0 - y as f64) * (1.0 - p).ln())
        })
        .sum::<f64>()
        / z.len() as f64
}

/// Column-major f64 copy of row-major rows, as forust-ml takes them.
fn columns(rows: &Rows) -> Vec<f64> {
    let n = rows.y.len();
    let mut out = vec![0.0; n * rows.dim];
    for (r, x) in rows.x.chunks_exact(rows.dim).enumerate() {
        for (j, &v) in x.iter().enumerate() {
            out[j * n + r] = v as f64;
        }
    }
    out
}

/// Median of three timed runs of `f`, and its last result.
fn timed<T>(mut f: impl FnMut() -> T) -> (f64, T) {
    let mut times = Vec::new();
    let mut last = None;
    for _ in 0..3 {
        let t0 = Instant::now();
        last = Some(f());
        times.push(t0.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    (times[1], last.expect("three runs"))
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let data = args.get(1).map_or("data/ml-100k", String::as_str);
    let config = args.get(2).map_or("examples/pipeline.toml", String::as_str);
    let ds = reco_core::loaders::recbole::load(
        Path::new(data),
        &LoadOptions {
            threshold: Some(1.0),
            ..LoadOptions::default()
        },
    )?;
    let fold = split(&ds, &Protocol::Temporal { fraction: 0.2 }, 42)?.remove(0);
    let spec = reco_pipeline::spec_from_toml(&std::fs::read_to_string(config)?)?;
    let spec: PipelineSpec = spec
        .params::<reco_pipeline::Pipeline>()
        .ok_or("not a pipeline")?
        .clone();
    let (trees, depth, lr, l2) = (
        spec.ranker.trees,
        spec.ranker.max_depth,
        spec.ranker.learning_rate,
        spec.ranker.regularization,
    );
    let t0 = Instant::now();
    let opts = FitOptions {
        seed: 42,
        progress: None,
        validation: None,
    };
    let (rows, names) = Pipeline::ranker_rows(spec, &fold.train, &opts)?;
    let n = rows.y.len();
    println!(
        "{data}: {n} ranker rows × {} features ({:.0}% positive), made in {:.1} s",
        rows.dim,
        100.0 * rows.y.iter().sum::<f32>() as f64 / n as f64,
        t0.elapsed().as_secs_f64()
    );
    println!("features: {}", names.join(", "));
    // A seeded 80/20 split of the rows (xorshift; the split needs no statistical quality).
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let (mut train, mut test) = (
        Rows {
            dim: rows.dim,
            ..Rows::default()
        },
        Rows {
            dim: rows.dim,
            ..Rows::default()
        },
    );
    for (x, &y) in rows.x.chunks_exact(rows.dim).zip(&rows.y) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let side = if state.is_multiple_of(5) {
            &mut test
        } else {
            &mut train
        };
        side.x.extend_from_slice(x);
        side.y.push(y);
    }
    let score_rows =
        |f: &dyn Fn(&[f32]) -> f64| -> Vec<f64> { test.x.chunks_exact(test.dim).map(f).collect() };
    println!(
        "\n{} training rows, {} held out; {trees} trees of depth {depth}, learning rate {lr}\n",
        train.y.len(),
        test.y.len()
    );
    println!("| learner | fit s (median of 3) | held-out AUC | held-out log-loss |");
    println!("|---|---|---|---|");
    let report = |name: &str, secs: f64, z: &[f64]| {
        println!(
            "| {name} | {secs:.3} | {:.4} | {:.4} |",
            auc(z, &test.y),
            log_loss(z, &test.y)
        )
    };
    let (s, lr_model) = timed(|| Logistic::fit(&train, l2));
    let lr_model = lr_model?;
    report(
        &format!("reco logistic regression (L2 {l2})"),
        s,
        &score_rows(&|x| lr_model.score(x)),
    );
    let (s, gb) = timed(|| Gbdt::fit(&train, trees, depth, lr));
    let gb = gb?;
    report(
        "reco boosted trees (32 bins)",
        s,
        &score_rows(&|x| gb.score(x)),
    );
    let (xtr, xte) = (columns(&train), columns(&test));
    let ytr: Vec<f64> = train.y.iter().map(|&y| y as f64).collect();
    for bins in [32u16, 256] {
        let (s, booster) = timed(|| {
            let mut b = GradientBooster::default()
                .set_iterations(trees)
                .set_learning_rate(lr as f32)
                .set_max_depth(depth)
                .set_nbins(bins)
                .set_l2(1.0)
                .set_min_leaf_weight(1.0);
            b.fit_unweighted(&Matrix::new(&xtr, train.y.len(), train.dim), &ytr, None)
                .map(|()| b)
        });
        let booster = booster?;
        report(
            &format!("forust-ml 0.5 ({bins} bins)"),
            s,
            &booster.predict(&Matrix::new(&xte, test.y.len(), test.dim), true),
        );
    }
    Ok(())
}
