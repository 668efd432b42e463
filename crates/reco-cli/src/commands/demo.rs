//! `reco demo`: the notebook's data and protocol, every notebook recommender, one table.

use anyhow::{Context, Result};

use reco_core::model::{Filter, FitOptions, Query};
use reco_core::split::{self, Protocol};
use reco_eval::{evaluate, EvalConfig};

use super::eval::{candidates, eval_progress};
use crate::models::{self, Named};
use crate::source;

/// Options of `reco demo`.
#[derive(clap::Args, Debug)]
pub(crate) struct DemoArgs {
    /// Seed of the data and of the split.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// User whose recommendations are shown.
    #[arg(long, default_value = "2")]
    user: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `reco demo`.
pub(crate) fn run(a: DemoArgs) -> Result<()> {
    demo(a.seed, &a.user, a.json)
}

/// The models `reco demo` compares: every model family that exists, with the notebook's names.
fn demo_models() -> Result<Vec<Named>> {
    [
        r#"{"name": "random", "model": "random"}"#,
        r#"{"name": "popularity", "model": "popularity"}"#,
        r#"{"name": "content-tfidf", "model": "content", "tfidf": {"english_stop_words": true, "max_features": 5000}, "category_weight": 0}"#,
        r#"{"name": "covisitation", "model": "covisit", "max_neighbours": 50, "recent_items": 1}"#,
        r#"{"name": "user-knn", "model": "user-knn", "similarity": "pearson", "prediction": "with-means", "k": 30, "rank_by_rating": true}"#,
        r#"{"name": "item-knn", "model": "item-knn", "similarity": "cosine", "prediction": "with-means", "k": 50, "rank_by_rating": true}"#,
        r#"{"name": "matrix-factorization", "model": "svd", "factors": 32, "epochs": 50, "learning_rate": 0.01, "regularization": 0.05}"#,
        // The notebook's two-tower: 32-d id towers, L2-normalised, sigmoid BCE on the cosine
        // with 3 random negatives per positive, Adam 0.01, batch 256 — for 30 epochs, not 10:
        // with our towers' extra linear layer, 60 Adam steps leave it at random's level.
        r#"{"name": "two-tower", "model": "two-tower", "loss": "bce", "negatives": 3, "embedding_dim": 32, "layers": [32], "user_fields": [], "item_fields": [], "recent_items": 0, "temperature": 1.0, "learning_rate": 0.01, "batch_size": 256, "epochs": 30}"#,
    ]
    .iter()
    .map(|s| models::parse_one(s))
    .collect()
}

fn demo(seed: u64, user: &str, json: bool) -> Result<()> {
    let ds = source::synthesize(&format!("notebook,seed={seed}"))?;
    let mut folds = split::split(&ds, &Protocol::LeaveLastOut, seed)?;
    // The notebook's co-visitation learns from every session, as its sessions are not tied to
    // the held-out ratings; splits drop sessions, so the demo puts them back.
    for f in &mut folds {
        f.train.sessions = ds.sessions.clone();
    }
    let list = demo_models()?;
    let cfg = EvalConfig {
        ks: vec![10],
        seed,
        relevance_threshold: None,
        baseline: Some("random".into()),
        auc: true,
        ranking: true,
    };
    let (bar, on_progress) = eval_progress();
    let report = evaluate(
        &ds.name,
        "loo",
        &folds,
        &candidates(&list),
        &cfg,
        None,
        &on_progress,
    )?;
    bar.finish_and_clear();
    let fold = &folds[0];
    let u = ds.users.get(user).with_context(|| {
        format!(
            "user {user:?} is not in the demo data (0..{})",
            ds.n_users() - 1
        )
    })?;
    let feats = ds.item_features.as_ref();
    let mut samples = Vec::new();
    for n in &list {
        let m = n.spec.fit(
            &fold.train,
            &FitOptions {
                seed,
                progress: None,
                validation: None,
            },
        )?;
        let recs = m.recommend(
            &Query::user(u),
            10,
            &Filter {
                exclude: fold.train.interactions.user_items(u),
                allow: None,
            },
        )?;
        samples.push((n.name.clone(), recs));
    }
    if json {
        let samples: serde_json::Value = samples
            .iter()
            .map(|(name, recs)| (name.clone(), recs.iter().map(|s| serde_json::json!({"item": ds.items.id(s.item), "title": feats.and_then(|f| f.title(s.item)), "category": feats.map(|f| f.category_label(s.item)), "score": s.score})).collect::<Vec<_>>().into()))
            .collect::<serde_json::Map<String, serde_json::Value>>()
            .into();
        println!(
            "{}",
            serde_json::to_string_pretty(
                &serde_json::json!({ "report": report, "user": user, "recommendations": samples })
            )?
        );
        return Ok(());
    }
    println!("reco demo · notebook data: {} users, {} items, {} ratings · train {} / test {} (one held-out rating per user, seen items excluded)\n", ds.n_users(), ds.n_items(), ds.interactions.nnz(), fold.train.interactions.nnz(), fold.test.nnz());
    println!("| model | precision@10 | recall@10 | ndcg@10 | auc | coverage@10 |");
    println!("|---|---|---|---|---|---|");
    for m in &report.models {
        let g = |k: &str| {
            k.parse::<reco_eval::Metric>()
                .ok()
                .and_then(|k| m.metrics.get(&k))
                .map_or("–".to_string(), |s| format!("{:.3}", s.mean))
        };
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            m.name,
            g("precision@10"),
            g("recall@10"),
            g("ndcg@10"),
            g("auc"),
            g("coverage@10")
        );
    }
    for (name, recs) in &samples {
        println!("\n{name} recommendations (user={user})");
        println!("  {:>4}  {:<22} category", "item", "title");
        for s in recs {
            println!(
                "  {:>4}  {:<22} {}",
                ds.items.id(s.item),
                feats.and_then(|f| f.title(s.item)).unwrap_or(""),
                feats.map(|f| f.category_label(s.item)).unwrap_or_default()
            );
        }
    }
    Ok(())
}
