//! The large-catalogue experiments of docs/pipeline.md and BENCHMARKS.md.
//!
//! ```text
//! cargo run --release -p reco-pipeline --example experiments -- lecture data/ml-100k
//! cargo run --release -p reco-pipeline --example experiments -- budget data/ml-100k
//! cargo run --release -p reco-pipeline --example experiments -- mmr data/ml-100k docs/img/mmr.svg
//! cargo run --release -p reco-pipeline --example experiments -- catalogue 1000000
//! ```
//!
//! Every run is single-threaded at query time (latencies are per user on one core) and prints
//! Markdown tables.

use std::path::Path;
use std::time::Instant;

use reco_ann::{recall, Exact, Hnsw, HnswParams, Metric, VectorIndex};
use reco_core::loaders::LoadOptions;
use reco_core::model::{Filter, FitOptions, Query, Recommender};
use reco_core::split::{split, Fold, Protocol};
use reco_core::topk::Scored;
use reco_core::Dataset;
use reco_eval::evaluator::relevance;
use reco_eval::metrics::{at_k, intra_list_diversity, Relevant};
use reco_models::ModelSpec;
use reco_pipeline::spec::RerankSpec;
use reco_pipeline::{Pipeline, PipelineSpec};
use serde_json::json;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

fn opts() -> FitOptions<'static> {
    FitOptions {
        seed: 42,
        progress: None,
        validation: None,
        checkpoint: None,
    }
}

fn load(dir: &str) -> Res<Dataset> {
    let o = LoadOptions {
        threshold: Some(1.0),
        ..LoadOptions::default()
    };
    Ok(reco_core::loaders::recbole::load(Path::new(dir), &o)?)
}

fn temporal(ds: &Dataset) -> Res<Fold> {
    Ok(split(ds, &Protocol::Temporal { fraction: 0.2 }, 42)?.remove(0))
}

/// Mean metrics of ranked lists against the fold's relevance.
struct Scores {
    recall50: f64,
    p10: f64,
    ndcg10: f64,
    ild10: f64,
}

fn score_lists(ds: &Dataset, rel: &[(u32, Relevant)], lists: &[Vec<u32>]) -> Scores {
    let cats = ds
        .item_features
        .as_deref()
        .and_then(|t| t.primary_category());
    let (mut r, mut p, mut n, mut d, mut nd) = (0.0, 0.0, 0.0, 0.0, 0f64);
    for ((_, rl), l) in rel.iter().zip(lists) {
        r += at_k(l, rl, 50).recall;
        let a = at_k(l, rl, 10);
        p += a.precision;
        n += a.ndcg;
        if let Some(c) = cats {
            let top = &l[..l.len().min(10)];
            if let Some(x) = intra_list_diversity(top, |i| c.of(i)) {
                d += x;
                nd += 1.0;
            }
        }
    }
    let m = rel.len().max(1) as f64;
    Scores {
        recall50: r / m,
        p10: p / m,
        ndcg10: n / m,
        ild10: d / nd.max(1.0),
    }
}

fn percentile(xs: &mut [f64], q: f64) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    xs[((xs.len() - 1) as f64 * q).round() as usize]
}

/// Lists and per-user latencies (ms) of `model` for the test users, one thread.
fn run(
    model: &dyn Recommender,
    fold: &Fold,
    rel: &[(u32, Relevant)],
    k: usize,
) -> Res<(Vec<Vec<u32>>, Vec<f64>)> {
    let mut lists = Vec::with_capacity(rel.len());
    let mut ms = Vec::with_capacity(rel.len());
    for (u, _) in rel {
        let seen = fold.train.interactions.user_items(*u);
        let t = Instant::now();
        let l = model.recommend(
            &Query::user(*u),
            k,
            &Filter {
                exclude: seen,
                allow: None,
            },
        )?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
        lists.push(l.iter().map(|s| s.item).collect());
    }
    Ok((lists, ms))
}

fn pipeline(mut value: serde_json::Value, train: &Dataset) -> Res<Pipeline> {
    value["model"] = "pipeline".into();
    let spec = ModelSpec::from_value(value)?;
    let spec: PipelineSpec = spec.params::<Pipeline>().ok_or("not a pipeline")?.clone();
    Ok(Pipeline::fit(spec, train, &opts())?)
}

/// The lectures' exercise: 32-d MF item vectors, HNSW vs brute-force cosine retrieval of the
/// top 50, a logistic-regression ranker over them.
fn lecture(ds: &Dataset, ials: serde_json::Value) -> Res<()> {
    let fold = temporal(ds)?;
    let rel = relevance(&fold, None);
    let mf = ModelSpec::from_value(ials.clone())?.fit(&fold.train, &opts())?;
    let e = mf.as_embeddings().ok_or("no vectors")?;
    let dim = e.dim();
    let n = fold.train.n_items();
    let rows: Vec<f32> = (0..n as u32)
        .flat_map(|i| e.item_vector(i).unwrap_or(&vec![0.0; dim][..]).to_vec())
        .collect();
    let exact = Exact::from_rows(dim, Metric::Cosine, &rows)?;
    let t = Instant::now();
    let hnsw = Hnsw::from_rows(dim, Metric::Cosine, HnswParams::default(), &rows, &|_| {})?;
    let build = t.elapsed().as_secs_f64();
    let (mut l_exact, mut l_hnsw, mut ann_recall, mut t_exact, mut t_hnsw) =
        (Vec::new(), Vec::new(), 0.0, Vec::new(), Vec::new());
    for (u, _) in &rel {
        let seen = fold.train.interactions.user_items(*u);
        let f = Filter {
            exclude: seen,
            allow: None,
        };
        let Some(v) = e.user_vector(*u) else { continue };
        let t = Instant::now();
        let a: Vec<Scored> = exact.search(v, 50, &f)?;
        t_exact.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        let b: Vec<Scored> = hnsw.search(v, 50, &f)?;
        t_hnsw.push(t.elapsed().as_secs_f64() * 1e3);
        ann_recall += recall(&b, &a);
        l_exact.push(a.iter().map(|s| s.item).collect::<Vec<u32>>());
        l_hnsw.push(b.iter().map(|s| s.item).collect::<Vec<u32>>());
    }
    let spec = |index: &str, ranker: &str| {
        json!({
            "model": "pipeline",
            "models": [named("mf", &ials)],
            "sources": [{"kind": "ann", "model": "mf", "budget": 50, "index": index, "metric": "cosine"}],
            "ranker": {"kind": ranker},
            "depth": 50
        })
    };
    let ranked = pipeline(spec("hnsw", "logistic"), &fold.train)?;
    let (l_rank, mut t_rank) = run(&ranked, &fold, &rel, 50)?;
    println!("MovieLens-100K, temporal 20%, {} test users, {dim}-d {} vectors; HNSW build {build:.2} s (M 16, efC 200, ef 100)\n", rel.len(), ials["model"]);
    println!("| retrieval of 50 | recall@50 | P@10 | NDCG@10 | HNSW recall of the exact top 50 | ms/user p50 |");
    println!("|---|---|---|---|---|---|");
    let row = |name: &str, s: Scores, ann: &str, t: &mut Vec<f64>| {
        println!(
            "| {name} | {:.4} | {:.4} | {:.4} | {ann} | {:.3} |",
            s.recall50,
            s.p10,
            s.ndcg10,
            percentile(t, 0.5)
        );
    };
    row(
        "brute-force cosine",
        score_lists(ds, &rel, &l_exact),
        "1 (oracle)",
        &mut t_exact,
    );
    let ar = format!("{:.4}", ann_recall / l_hnsw.len().max(1) as f64);
    row(
        "HNSW cosine",
        score_lists(ds, &rel, &l_hnsw),
        &ar,
        &mut t_hnsw,
    );
    row(
        "HNSW cosine + logistic ranker",
        score_lists(ds, &rel, &l_rank),
        &ar,
        &mut t_rank,
    );
    if let reco_pipeline::ranker::Ranker::Logistic(m) = ranked.ranker() {
        println!("\nlogistic ranker weights (standardised features):");
        for (name, w) in ranked.feature_names().iter().zip(&m.weights) {
            if *w != 0.0 {
                println!("  {name:>24} {w:+.3}");
            }
        }
    }
    Ok(())
}

/// A model entry of a pipeline: the spec with its name.
fn named(name: &str, spec: &serde_json::Value) -> serde_json::Value {
    let mut m = spec.as_object().cloned().unwrap_or_default();
    m.insert("name".into(), name.into());
    serde_json::Value::Object(m)
}

fn multi_source(
    budget: usize,
    ials: &serde_json::Value,
    rerank: serde_json::Value,
) -> serde_json::Value {
    json!({
        "model": "pipeline",
        "models": [
            named("mf", ials),
            {"name": "knn", "model": "item-knn", "similarity": "vector-cosine", "max_neighbours": 50}
        ],
        "sources": [
            {"kind": "ann", "model": "mf", "budget": budget},
            {"kind": "related", "model": "knn", "budget": (budget / 2).max(10)},
            {"kind": "top-categories", "budget": (budget / 4).max(10)},
            {"kind": "popular", "budget": (budget / 4).max(10)}
        ],
        "ranker": {"kind": "logistic", "models": ["mf"]},
        "rerank": rerank,
        "depth": 50
    })
}

/// Retrieval budget against accuracy and latency.
fn budget(ds: &Dataset, ials: serde_json::Value) -> Res<()> {
    let fold = temporal(ds)?;
    let rel = relevance(&fold, None);
    println!("MovieLens-100K, temporal 20%: sources ann (budget B), related (B/2), top-categories (B/4), popular (B/4); logistic ranker\n");
    println!("| B | candidates | NDCG@10 | recall@50 | ms/user p50 | p99 |");
    println!("|---|---|---|---|---|---|");
    for b in [50usize, 100, 200, 500, 1000] {
        let p = pipeline(multi_source(b, &ials, json!([])), &fold.train)?;
        let (lists, mut ms) = run(&p, &fold, &rel, 50)?;
        let s = score_lists(ds, &rel, &lists);
        println!(
            "| {b} | ≤ {} | {:.4} | {:.4} | {:.2} | {:.2} |",
            b + b / 2 + b / 2,
            s.ndcg10,
            s.recall50,
            percentile(&mut ms, 0.5),
            percentile(&mut ms, 0.99)
        );
    }
    Ok(())
}

/// MMR λ sweep: precision against intra-list diversity.
fn mmr(ds: &Dataset, ials: serde_json::Value, svg: &str) -> Res<()> {
    let fold = temporal(ds)?;
    let rel = relevance(&fold, None);
    let mut p = pipeline(multi_source(200, &ials, json!([])), &fold.train)?;
    println!("MovieLens-100K, temporal 20%: the budget-200 pipeline with MMR over genres\n");
    println!("| λ | P@10 | NDCG@10 | intra-list diversity@10 |");
    println!("|---|---|---|---|");
    let mut points = Vec::new();
    for k in 0..=10 {
        let lambda = k as f64 / 10.0;
        p.set_rerank(
            vec![RerankSpec::Mmr {
                lambda,
                model: None,
            }],
            10,
        )?;
        let (lists, _) = run(&p, &fold, &rel, 10)?;
        let s = score_lists(ds, &rel, &lists);
        println!(
            "| {lambda:.1} | {:.4} | {:.4} | {:.4} |",
            s.p10, s.ndcg10, s.ild10
        );
        points.push((lambda, s.p10, s.ild10));
    }
    plot(&points, svg)?;
    println!("\nplot: {svg}");
    Ok(())
}

fn plot(points: &[(f64, f64, f64)], path: &str) -> Res<()> {
    use plotters::prelude::*;
    if let Some(d) = Path::new(path).parent() {
        std::fs::create_dir_all(d)?;
    }
    let root = SVGBackend::new(path, (640, 420)).into_drawing_area();
    root.fill(&WHITE)?;
    let (x0, x1) = points
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.2), b.max(p.2)));
    let (y0, y1) = points
        .iter()
        .fold((f64::MAX, f64::MIN), |(a, b), p| (a.min(p.1), b.max(p.1)));
    let (dx, dy) = ((x1 - x0).max(1e-3) * 0.1, (y1 - y0).max(1e-3) * 0.1);
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "MMR on MovieLens-100K: precision vs diversity",
            ("sans-serif", 18),
        )
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(56)
        .build_cartesian_2d((x0 - dx)..(x1 + dx), (y0 - dy)..(y1 + dy))?;
    chart
        .configure_mesh()
        .x_desc("intra-list diversity@10 (genres)")
        .y_desc("precision@10")
        .draw()?;
    chart.draw_series(LineSeries::new(points.iter().map(|p| (p.2, p.1)), &BLUE))?;
    chart.draw_series(
        points
            .iter()
            .map(|p| Circle::new((p.2, p.1), 3, BLUE.filled())),
    )?;
    chart.draw_series(
        points
            .iter()
            .step_by(2)
            .map(|p| Text::new(format!("λ={:.1}", p.0), (p.2, p.1), ("sans-serif", 12))),
    )?;
    root.present()?;
    Ok(())
}

/// The large synthetic catalogue: 50k users, 3M interactions, 20 categories.
fn catalogue_config(items: usize) -> reco_core::synth::ScalableConfig {
    reco_core::synth::ScalableConfig {
        users: 50_000,
        items,
        interactions: 3_000_000,
        categories: 20,
        sessions: false,
        ..Default::default()
    }
}

/// A synthetic catalogue of `items` items: MF vectors, HNSW vs exact, and the pipeline's
/// latency per user.
fn catalogue(items: usize) -> Res<()> {
    let c = catalogue_config(items);
    let t = Instant::now();
    let ds = reco_core::synth::scalable(&c, &|_, _| {})?;
    eprintln!("data: {:.1} s", t.elapsed().as_secs_f64());
    let fold = temporal(&ds)?;
    let mut rel = relevance(&fold, None);
    rel.truncate(2000);
    let ials = json!({"model": "ials", "factors": 32, "epochs": 8});
    let t = Instant::now();
    let value = json!({
        "model": "pipeline",
        "models": [named("mf", &ials)],
        "sources": [
            {"kind": "ann", "model": "mf", "budget": 200},
            {"kind": "top-categories", "budget": 50},
            {"kind": "popular", "budget": 50}
        ],
        "ranker": {"kind": "logistic", "models": ["mf"], "refit": false},
        "rerank": [{"kind": "mmr", "lambda": 0.8}],
        "depth": 50
    });
    let p = pipeline(value, &fold.train)?;
    let fit = t.elapsed().as_secs_f64();
    let (lists, mut ms) = run(&p, &fold, &rel, 50)?;
    let s = score_lists(&ds, &rel, &lists);
    // Exact inner-product retrieval with the same model, for reference.
    let exact_value = json!({
        "model": "pipeline",
        "models": [named("mf", &ials)],
        "sources": [{"kind": "ann", "model": "mf", "budget": 50, "index": "exact"}],
        "ranker": {"kind": "sources"}
    });
    let hnsw_value = json!({
        "model": "pipeline",
        "models": [named("mf", &ials)],
        "sources": [{"kind": "ann", "model": "mf", "budget": 50}],
        "ranker": {"kind": "sources"}
    });
    let pe = pipeline(exact_value, &fold.train)?;
    let ph = pipeline(hnsw_value, &fold.train)?;
    let (le, mut te) = run(&pe, &fold, &rel, 50)?;
    let (lh, mut th) = run(&ph, &fold, &rel, 50)?;
    let overlap: f64 = le
        .iter()
        .zip(&lh)
        .map(|(a, b)| b.iter().filter(|i| a.contains(i)).count() as f64 / a.len().max(1) as f64)
        .sum::<f64>()
        / le.len().max(1) as f64;
    let (se, sh) = (score_lists(&ds, &rel, &le), score_lists(&ds, &rel, &lh));
    println!("synthetic catalogue: {} users, {} items, {} interactions; temporal 20%; {} test users; 32-d implicit ALS\n", ds.n_users(), ds.n_items(), ds.interactions.nnz(), rel.len());
    println!("| system | recall@50 | P@10 | NDCG@10 | ms/user p50 | p99 |");
    println!("|---|---|---|---|---|---|");
    println!(
        "| exact inner product, top 50 | {:.4} | {:.4} | {:.4} | {:.2} | {:.2} |",
        se.recall50,
        se.p10,
        se.ndcg10,
        percentile(&mut te, 0.5),
        percentile(&mut te, 0.99)
    );
    println!(
        "| HNSW inner product, top 50 | {:.4} | {:.4} | {:.4} | {:.2} | {:.2} |",
        sh.recall50,
        sh.p10,
        sh.ndcg10,
        percentile(&mut th, 0.5),
        percentile(&mut th, 0.99)
    );
    println!("| pipeline: HNSW 200 + categories 50 + popular 50 → logistic → MMR 0.8 | {:.4} | {:.4} | {:.4} | {:.2} | {:.2} |", s.recall50, s.p10, s.ndcg10, percentile(&mut ms, 0.5), percentile(&mut ms, 0.99));
    println!("\nHNSW recall of the exact top 50: {overlap:.4}; pipeline fit (ALS, HNSW, ranker): {fit:.0} s");
    Ok(())
}

/// HNSW on implicit-ALS item vectors of a large catalogue: native inner product against the
/// MIPS-to-L2 transformation, at several ef.
fn mips(items: usize) -> Res<()> {
    let c = catalogue_config(items);
    let ds = reco_core::synth::scalable(&c, &|_, _| {})?;
    let fold = temporal(&ds)?;
    let mf = ModelSpec::from_value(json!({"model": "ials", "factors": 32, "epochs": 8}))?
        .fit(&fold.train, &opts())?;
    let e = mf.as_embeddings().ok_or("no vectors")?;
    let dim = e.dim();
    let warm_only = std::env::var("WARM_ONLY").is_ok();
    let ids: Vec<u32> = (0..ds.n_items() as u32)
        .filter(|&i| !warm_only || fold.train.interactions.item_len(i) > 0)
        .filter(|&i| {
            e.item_vector(i)
                .is_some_and(|v| v.iter().any(|x| *x != 0.0))
        })
        .collect();
    let rows: Vec<f32> = ids
        .iter()
        .flat_map(|&i| e.item_vector(i).unwrap_or(&[]).to_vec())
        .collect();
    let norms: Vec<f32> = rows
        .chunks_exact(dim)
        .map(|v| reco_ann::dot(v, v).sqrt())
        .collect();
    let big = norms.iter().cloned().fold(0f32, f32::max);
    let mut sorted = norms.clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    println!(
        "{} of {} items have a vector; norms: median {:.4}, p99 {:.4}, max {:.4}\n",
        ids.len(),
        ds.n_items(),
        sorted[sorted.len() / 2],
        sorted[sorted.len() * 99 / 100],
        big
    );
    let users: Vec<u32> = relevance(&fold, None)
        .iter()
        .map(|r| r.0)
        .take(500)
        .collect();
    let exact = Exact::from_rows(dim, Metric::InnerProduct, &rows)?;
    let queries: Vec<f32> = users
        .iter()
        .flat_map(|&u| e.user_vector(u).unwrap_or(&vec![0.0; dim][..]).to_vec())
        .collect();
    let truth = exact.search_many(&queries, 50, |_| Filter::default())?;
    let aug: Vec<f32> = rows
        .chunks_exact(dim)
        .zip(&norms)
        .flat_map(|(v, n)| {
            let mut a = v.to_vec();
            a.push((big * big - n * n).max(0.0).sqrt());
            a
        })
        .collect();
    let qaug: Vec<f32> = queries
        .chunks_exact(dim)
        .flat_map(|v| {
            let mut a = v.to_vec();
            a.push(0.0);
            a
        })
        .collect();
    println!("| graph | build s | ef | recall of the exact top 50 | ms/query |");
    println!("|---|---|---|---|---|");
    for (name, d, metric, data, qs) in [
        (
            "native inner product",
            dim,
            Metric::InnerProduct,
            &rows,
            &queries,
        ),
        ("MIPS → L2 transformation", dim + 1, Metric::L2, &aug, &qaug),
    ] {
        let t = Instant::now();
        let mut h = Hnsw::from_rows(d, metric, HnswParams::default(), data, &|_| {})?;
        let build = t.elapsed().as_secs_f64();
        for ef in [100, 400, 1600] {
            h.set_ef_search(ef);
            let t = Instant::now();
            let mut r = 0.0;
            for (q, want) in qs.chunks_exact(d).zip(&truth) {
                let got = h.search(q, 50, &Filter::default())?;
                // Graph ids are row numbers; truth ids are row numbers too.
                r += recall(&got, want);
            }
            let ms = t.elapsed().as_secs_f64() * 1e3 / users.len() as f64;
            println!(
                "| {name} | {build:.0} | {ef} | {:.4} | {ms:.3} |",
                r / users.len() as f64
            );
        }
    }
    Ok(())
}

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let ials = json!({"model": "ials", "factors": 32, "epochs": 15});
    match args.get(1).map(String::as_str) {
        Some("lecture") => lecture(&load(args.get(2).map_or("data/ml-100k", |s| s))?, ials),
        Some("budget") => budget(&load(args.get(2).map_or("data/ml-100k", |s| s))?, ials),
        Some("mmr") => mmr(
            &load(args.get(2).map_or("data/ml-100k", |s| s))?,
            ials,
            args.get(3).map_or("docs/img/mmr.svg", |s| s),
        ),
        Some("mips") => mips(
            args.get(2)
                .and_then(|s| s.parse().ok())
                .unwrap_or(1_000_000),
        ),
        Some("catalogue") => catalogue(
            args.get(2)
                .and_then(|s| s.parse().ok())
                .unwrap_or(1_000_000),
        ),
        _ => Err("usage: experiments lecture|budget|mmr|catalogue [DATA|ITEMS] [SVG]".into()),
    }
}
