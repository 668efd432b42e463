//! Training from the store: the events become a dataset (per-type weights, the configured
//! merge, negative pairs counted against), the candidate is compared with the active version
//! on each sampled user's latest event, and a version that is not worse is refitted on every
//! event and saved as an artifact (with the histories' values, for fold-in).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use reco_core::features::{FeatureRow, FeatureTableBuilder};
use reco_core::interactions::Triplets;
use reco_core::model::{FitOptions, Query, Recommender};
use reco_core::split::{self, Protocol};
use reco_core::{Dataset, IdMap, Interactions};
use reco_eval::{evaluate, Candidate, EvalConfig, Metric};
use reco_models::ModelSpec;

use crate::config::Config;
use crate::engine::Active;
use crate::error::{Result, ServeError};
use crate::store::{ItemRow, Store};

const CHUNK: i64 = 200_000;

/// Training data read from the store.
pub struct TrainingData {
    /// The dataset.
    pub dataset: Dataset,
    /// Events up to this sequence number were read.
    pub through: i64,
    /// First and last event time.
    pub window: [i64; 2],
    /// Events read.
    pub events: i64,
    /// The forget clock read before the events.
    pub forget_clock: i64,
}

/// Reads every event up to the current end of the log into a dataset.
pub async fn read_dataset(store: &Store, cfg: &Config) -> Result<TrainingData> {
    // The clock first: a user forgotten while the events are read has a later clock, so this
    // version masks them even if some of their events were read.
    let forget_clock = store.forget_clock().await?;
    let through = store.max_seq().await?;
    let weights = &cfg.feedback.types;
    let mut users = IdMap::new();
    let mut items = IdMap::new();
    let mut t = Triplets::new(true);
    let mut negative: Vec<(u32, u32, i64)> = Vec::new();
    let (mut first, mut last, mut events) = (i64::MAX, i64::MIN, 0i64);
    let mut after = 0;
    loop {
        let rows = store.events_between(after, through, CHUNK).await?;
        let Some(end) = rows.last().map(|r| r.seq) else {
            break;
        };
        for r in &rows {
            // Types removed from the configuration since the event was stored are skipped.
            let Some(&w) = weights.get(&r.kind) else {
                continue;
            };
            let u = users.get_or_insert(&r.user);
            let i = items.get_or_insert(&r.item);
            let value = (f64::from(w) * r.value) as f32;
            first = first.min(r.timestamp);
            last = last.max(r.timestamp);
            events += 1;
            if w < 0.0 {
                negative.push((u, i, r.seq));
                if cfg.merge_policy()? != reco_core::DuplicatePolicy::Sum {
                    continue;
                }
            }
            t.push(u, i, value, Some(r.timestamp));
        }
        after = end;
    }
    let feedback = cfg.feedback_kind()?;
    let policy = cfg.merge_policy()?;
    let (m, report) = Interactions::from_triplets(&t, users.len(), items.len(), policy)?;
    // Summed signals at or below zero (a dislike outweighing a view) are not positives; with
    // ratings, a negative event removes the pair.
    let m = drop_negative(m, &negative, policy);
    let catalog = store.items().await?;
    let features = item_features(&items, &catalog);
    let dataset = Dataset {
        name: "serve".into(),
        users: Arc::new(users),
        items: Arc::new(items),
        interactions: m,
        feedback,
        item_features: Some(Arc::new(features)),
        user_features: None,
        sessions: None,
        report: reco_core::LoadReport {
            rows_read: events as usize,
            duplicates: report,
            ..Default::default()
        },
    };
    Ok(TrainingData {
        dataset,
        through,
        window: if events > 0 { [first, last] } else { [0, 0] },
        events,
        forget_clock,
    })
}

fn drop_negative(
    m: Interactions,
    negative: &[(u32, u32, i64)],
    policy: reco_core::DuplicatePolicy,
) -> Interactions {
    let mut keep: Vec<bool> = m.values().iter().map(|&v| v > 0.0).collect();
    if policy != reco_core::DuplicatePolicy::Sum {
        for &(u, i, _) in negative {
            let r = m.row_range(u);
            if let Ok(p) = m.user_items(u).binary_search(&i) {
                keep[r.start + p] = false;
            }
        }
    }
    if keep.iter().all(|&k| k) {
        m
    } else {
        m.select(&keep)
    }
}

/// Item metadata as a feature table: titles and one categorical field, `category`.
fn item_features(items: &IdMap, rows: &[ItemRow]) -> reco_core::FeatureTable {
    let mut b = FeatureTableBuilder::new(true, vec!["category".into()], Vec::new(), Vec::new());
    for r in rows {
        if let Some(i) = items.get(&r.id) {
            b.push(
                i,
                FeatureRow {
                    title: r.title.clone(),
                    categorical: vec![r.categories.clone()],
                    numeric: Vec::new(),
                    text: Vec::new(),
                },
            );
        }
    }
    b.build(items.len())
}

/// The active version seen through the candidate's id space, so both are scored on the same
/// hold-out by the same evaluator. Items the active model does not know score lowest.
struct Remapped {
    active: Arc<Active>,
    users: Vec<Option<u32>>,
    items: Vec<Option<u32>>,
    n_items: usize,
}

impl Remapped {
    fn new(active: Arc<Active>, ds: &Dataset) -> Remapped {
        let l = &active.loaded;
        let users = ds.users.ids().iter().map(|u| l.users.get(u)).collect();
        let items = ds.items.ids().iter().map(|i| l.items.get(i)).collect();
        Remapped {
            active,
            users,
            items,
            n_items: ds.n_items(),
        }
    }
}

impl Recommender for Remapped {
    fn n_items(&self) -> usize {
        self.n_items
    }

    fn score(&self, q: &Query<'_>, out: &mut [f32]) -> reco_core::Result<()> {
        let model = &self.active.loaded.model;
        let mut theirs = vec![0f32; model.n_items()];
        let user = q
            .user
            .and_then(|u| self.users.get(u as usize).copied().flatten());
        let history: Vec<(u32, f32)> = q
            .history
            .iter()
            .filter_map(|&(i, v)| {
                self.items
                    .get(i as usize)
                    .copied()
                    .flatten()
                    .map(|m| (m, v))
            })
            .collect();
        match (user, history.is_empty()) {
            (Some(u), true) => model.score(&Query::user(u), &mut theirs)?,
            (None, true) => theirs.fill(0.0),
            (u, false) => model.score(
                &Query {
                    user: u,
                    history: &history,
                },
                &mut theirs,
            )?,
        }
        for (o, m) in out.iter_mut().zip(&self.items) {
            *o = m.map_or(f32::NEG_INFINITY, |m| theirs[m as usize]);
        }
        Ok(())
    }
}

/// The result of a training run.
pub struct Trained {
    /// The refitted model, if promoted (None: rejected by the gate).
    pub model: Option<Box<dyn reco_models::Model>>,
    /// Hold-out metrics: `candidate` and, when a version was active, `active`.
    pub metrics: serde_json::Value,
    /// Why it was rejected.
    pub message: String,
    /// Seconds spent.
    pub seconds: f64,
}

/// True when a smaller value of the metric is better.
fn lower_is_better(m: Metric) -> bool {
    matches!(m, Metric::Rmse | Metric::Mae)
}

/// Fits `spec` on the data, compares it with `active` on a recent hold-out, refits on all data
/// if it is not worse. Runs on a blocking thread (it uses every core through rayon).
pub fn train(
    spec: &ModelSpec,
    data: &TrainingData,
    active: Option<Arc<Active>>,
    cfg: &Config,
    progress: &(dyn Fn(reco_core::model::Progress<'_>) + Sync),
) -> Result<Trained> {
    let start = Instant::now();
    let ds = &data.dataset;
    if ds.interactions.nnz() == 0 {
        return Err(ServeError::Unprocessable(
            "there are no events with a positive value to train on".into(),
        ));
    }
    let metric = cfg.gate_metric()?;
    let seed = cfg.retrain.seed;
    let mut metrics = serde_json::Map::new();
    let mut message = String::new();
    let mut promote = true;
    if let Some(mut fold) = holdout(ds, cfg)? {
        let k = match metric {
            Metric::Accuracy(_, k) | Metric::Beyond(_, k) => k,
            _ => 10,
        };
        fold.train.sessions = None;
        let mut candidates = vec![Candidate {
            name: "candidate".into(),
            spec: spec.to_value()?,
            fit: Box::new(|d: &Dataset, o: &FitOptions<'_>| {
                let m = spec.fit(d, o)?;
                Ok(m as Box<dyn Recommender>)
            }),
        }];
        if let Some(a) = active {
            candidates.push(Candidate {
                name: "active".into(),
                spec: serde_json::json!({ "version": a.version }),
                fit: Box::new(move |d: &Dataset, _: &FitOptions<'_>| {
                    Ok(Box::new(Remapped::new(a.clone(), d)) as Box<dyn Recommender>)
                }),
            });
        }
        let ecfg = EvalConfig {
            ks: vec![k],
            seed,
            relevance_threshold: None,
            baseline: None,
            auc: false,
            ranking: !matches!(metric, Metric::Rmse | Metric::Mae),
        };
        let report = evaluate(
            "serve",
            "latest-event",
            &[fold],
            &candidates,
            &ecfg,
            None,
            &|_, p| progress(p),
        )?;
        let value = |name: &str| {
            report
                .models
                .iter()
                .find(|m| m.name == name)
                .and_then(|m| m.metrics.get(&metric))
                .map(|s| (s.mean, s.ci95))
        };
        let cand = value("candidate");
        for m in &report.models {
            let all: serde_json::Map<String, serde_json::Value> = m
                .metrics
                .iter()
                .map(|(k, s)| {
                    (
                        k.to_string(),
                        serde_json::json!({"mean": s.mean, "ci95": s.ci95, "n": s.n}),
                    )
                })
                .collect();
            metrics.insert(m.name.clone(), all.into());
        }
        metrics.insert("metric".into(), metric.to_string().into());
        metrics.insert("holdout_users".into(), report.users_evaluated.into());
        if let (Some((c, _)), Some((a, _))) = (cand, value("active")) {
            let tol = cfg.retrain.tolerance;
            let ok = if lower_is_better(metric) {
                c <= a + tol
            } else {
                c >= a - tol
            };
            if !ok {
                promote = false;
                message = format!(
                    "{metric} {c:.4} on the hold-out against the active version's {a:.4} (tolerance {tol})"
                );
            }
        }
    }
    let model = if promote {
        Some(spec.fit(
            ds,
            &FitOptions {
                seed,
                progress: Some(progress),
                validation: None,
            },
        )?)
    } else {
        None
    };
    Ok(Trained {
        model,
        metrics: metrics.into(),
        message,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// Each sampled user's latest event held out (users with at least two interactions).
fn holdout(ds: &Dataset, cfg: &Config) -> Result<Option<split::Fold>> {
    let has_two = (0..ds.n_users() as u32).any(|u| ds.interactions.user_len(u) >= 2);
    if !has_two {
        return Ok(None);
    }
    let mut folds = split::split(ds, &Protocol::LeaveLastOut, cfg.retrain.seed)?;
    let Some(mut fold) = folds.pop() else {
        return Ok(None);
    };
    let n = cfg.retrain.holdout_users;
    if n > 0 {
        let test = &fold.test;
        let mut with_test: Vec<u32> = (0..test.n_users() as u32)
            .filter(|&u| test.user_len(u) > 0)
            .collect();
        if with_test.len() > n {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(cfg.retrain.seed);
            with_test.shuffle(&mut rng);
            with_test.truncate(n);
            let mut chosen = vec![false; test.n_users()];
            for u in with_test {
                chosen[u as usize] = true;
            }
            let keep: Vec<bool> = (0..test.n_users() as u32)
                .flat_map(|u| std::iter::repeat_n(chosen[u as usize], test.user_len(u)))
                .collect();
            fold.test = test.select(&keep);
        }
    }
    Ok(Some(fold))
}

/// Saves a trained model as the artifact of `version`, with the histories' training values.
pub fn save(
    model: &dyn reco_models::Model,
    ds: &Dataset,
    dir: &Path,
    version: i64,
) -> Result<PathBuf> {
    let path = dir.join(format!("v{version}"));
    let values = reco_core::artifact::encode(&ds.interactions.values().to_vec())?;
    reco_models::save_with(
        model,
        ds,
        &path,
        serde_json::json!({ "version": version }),
        reco_core::artifact::Existing::Replace,
        vec![("values.bin", values)],
    )?;
    Ok(path)
}

/// Loads the artifact of a version: the model and the training values.
pub fn load(path: &Path) -> Result<(reco_models::LoadedModel, Vec<f32>)> {
    let (manifest, files) = reco_core::artifact::read(path)?;
    let values: Vec<f32> = match files.get("values.bin") {
        Some(b) => reco_core::artifact::decode(b, "values.bin")?,
        None => Vec::new(),
    };
    let loaded = reco_models::from_files(path, manifest, &files)?;
    // An artifact from `reco train` has no values: its histories count as 1 each.
    let values = if values.is_empty() {
        vec![1.0; loaded.history_items.len()]
    } else {
        values
    };
    Ok((loaded, values))
}
