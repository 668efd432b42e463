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
use rustc_hash::FxHashMap;

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
    /// The largest sequence number of each user's events (dataset user index).
    pub last_seq: Vec<i64>,
    /// Events merged into each stored interaction (with `merge = "mean"` only; else empty).
    pub counts: Vec<f32>,
    /// Training values of single positive events (type weight × value), a strided sample of
    /// at most [`EVENT_VALUES`]: the reference of the `value` drift field, which merged values
    /// (sums of repeated events) would not be.
    pub event_values: Vec<f32>,
}

/// Most event values kept with a version.
pub const EVENT_VALUES: usize = 1 << 16;

/// Reads every event up to the current end of the log into a dataset.
pub async fn read_dataset(store: &Store, cfg: &Config) -> Result<TrainingData> {
    // The clock first: a user forgotten while the events are read has a later clock, so this
    // version masks them even if some of their events were read.
    let forget_clock = store.forget_clock().await?;
    let through = store.max_seq().await?;
    // Users who opted out of personalisation are not trained on.
    let opted_out: rustc_hash::FxHashSet<String> = store.opted_out().await?.into_iter().collect();
    let weights = &cfg.feedback.types;
    let mut users = IdMap::new();
    let mut items = IdMap::new();
    let policy = cfg.merge_policy()?;
    let mut t = Triplets::new(true);
    // Pairs with a negative event → whether their latest event is negative (events arrive in
    // log order, so the last write wins).
    let mut negative: FxHashMap<(u32, u32), bool> = FxHashMap::default();
    let mut last_seq: Vec<i64> = Vec::new();
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
            if opted_out.contains(&r.user) {
                continue;
            }
            let u = users.get_or_insert(&r.user);
            let i = items.get_or_insert(&r.item);
            if u as usize == last_seq.len() {
                last_seq.push(r.seq);
            }
            last_seq[u as usize] = last_seq[u as usize].max(r.seq);
            let value = (f64::from(w) * r.value) as f32;
            first = first.min(r.timestamp);
            last = last.max(r.timestamp);
            events += 1;
            if w < 0.0 {
                negative.insert((u, i), true);
                if policy != reco_core::DuplicatePolicy::Sum {
                    continue;
                }
            } else if let Some(latest) = negative.get_mut(&(u, i)) {
                *latest = false;
            }
            t.push(u, i, value, Some(r.timestamp));
        }
        after = end;
    }
    let positive = t.values.iter().filter(|v| **v > 0.0).count();
    let event_values: Vec<f32> = t
        .values
        .iter()
        .copied()
        .filter(|v| *v > 0.0)
        .step_by(positive.div_ceil(EVENT_VALUES).max(1))
        .collect();
    let feedback = cfg.feedback_kind()?;
    let (m, report) = Interactions::from_triplets(&t, users.len(), items.len(), policy)?;
    // Summed signals at or below zero (a dislike outweighing a view) are not positives; with
    // ratings, a pair whose latest event is negative is removed.
    let keep = keep_mask(&m, &negative, policy);
    // With `mean`, fold-in needs how many events each value averages: the same rows merged
    // by `sum` with value 1 are those counts, in the same order.
    let counts = if policy == reco_core::DuplicatePolicy::Mean {
        let mut ones = t.clone();
        ones.values.iter_mut().for_each(|v| *v = 1.0);
        let (c, _) = Interactions::from_triplets(
            &ones,
            users.len(),
            items.len(),
            reco_core::DuplicatePolicy::Sum,
        )?;
        select(c, &keep).values().to_vec()
    } else {
        Vec::new()
    };
    let m = select(m, &keep);
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
        last_seq,
        counts,
        event_values,
    })
}

/// Which stored interactions are positives: a value above zero and, unless values are summed,
/// a latest event that is not negative.
fn keep_mask(
    m: &Interactions,
    negative: &FxHashMap<(u32, u32), bool>,
    policy: reco_core::DuplicatePolicy,
) -> Vec<bool> {
    let mut keep: Vec<bool> = m.values().iter().map(|&v| v > 0.0).collect();
    if policy != reco_core::DuplicatePolicy::Sum {
        for (&(u, i), &latest_negative) in negative {
            if latest_negative {
                if let Ok(p) = m.user_items(u).binary_search(&i) {
                    keep[m.row_range(u).start + p] = false;
                }
            }
        }
    }
    keep
}

fn select(m: Interactions, keep: &[bool]) -> Interactions {
    if keep.iter().all(|&k| k) {
        m
    } else {
        m.select(keep)
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
    let since = active.as_ref().map(|a| a.trained_through);
    let fold = holdout(ds, cfg, &data.last_seq, since)?;
    if fold.is_none() && active.is_some() {
        message = "no user has events newer than the active version: promoted without a comparison"
            .into();
    }
    if let Some(mut fold) = fold {
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
            groups: Vec::new(),
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
                checkpoint: None,
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

/// Each sampled user's latest event held out (users with at least two interactions and, when a
/// version is active, an event newer than it: the active version has not learnt those, so
/// both models meet the hold-out unseen).
fn holdout(
    ds: &Dataset,
    cfg: &Config,
    last_seq: &[i64],
    newer_than: Option<i64>,
) -> Result<Option<split::Fold>> {
    let has_two = (0..ds.n_users() as u32).any(|u| ds.interactions.user_len(u) >= 2);
    if !has_two {
        return Ok(None);
    }
    let mut folds = split::split(ds, &Protocol::LeaveLastOut, cfg.retrain.seed)?;
    let Some(mut fold) = folds.pop() else {
        return Ok(None);
    };
    let n = cfg.retrain.holdout_users;
    let test = &fold.test;
    let mut chosen: Vec<u32> = (0..test.n_users() as u32)
        .filter(|&u| test.user_len(u) > 0)
        .filter(|&u| newer_than.is_none_or(|t| last_seq.get(u as usize).is_some_and(|&s| s > t)))
        .collect();
    if chosen.is_empty() {
        return Ok(None);
    }
    if n > 0 && chosen.len() > n {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(cfg.retrain.seed);
        chosen.shuffle(&mut rng);
        chosen.truncate(n);
    }
    let mut is_chosen = vec![false; test.n_users()];
    for u in chosen {
        is_chosen[u as usize] = true;
    }
    let keep: Vec<bool> = (0..test.n_users() as u32)
        .flat_map(|u| std::iter::repeat_n(is_chosen[u as usize], test.user_len(u)))
        .collect();
    if keep.iter().any(|k| !k) {
        fold.test = test.select(&keep);
    }
    Ok(Some(fold))
}

/// Saves a trained model as the artifact of `version`, with the histories' training values
/// (and, for `mean`, how many events each value averages).
pub fn save(
    model: &dyn reco_models::Model,
    data: &TrainingData,
    dir: &Path,
    version: i64,
) -> Result<PathBuf> {
    let path = dir.join(format!("v{version}"));
    let ds = &data.dataset;
    let mut files = vec![(
        "values.bin",
        reco_core::artifact::encode(&ds.interactions.values().to_vec())?,
    )];
    if !data.counts.is_empty() {
        files.push(("counts.bin", reco_core::artifact::encode(&data.counts)?));
    }
    files.push((
        "event_values.bin",
        reco_core::artifact::encode(&data.event_values)?,
    ));
    reco_models::save_with(
        model,
        ds,
        &path,
        serde_json::json!({ "version": version }),
        reco_core::artifact::Existing::Replace,
        files,
    )?;
    Ok(path)
}

/// A version's artifact read back: the model, the training values of its histories, and the
/// event counts behind them (empty unless `merge = "mean"`).
pub struct Loaded {
    /// The model and its maps.
    pub model: reco_models::LoadedModel,
    /// Training value per history entry.
    pub values: Vec<f32>,
    /// Events per history entry (`mean` only).
    pub counts: Vec<f32>,
    /// A sample of single events' training values (empty in artifacts written before it).
    pub event_values: Vec<f32>,
}

/// Loads the artifact of a version.
pub fn load(path: &Path) -> Result<Loaded> {
    let (manifest, files) = reco_core::artifact::read(path)?;
    let values: Vec<f32> = match files.get("values.bin") {
        Some(b) => reco_core::artifact::decode(b, "values.bin")?,
        None => Vec::new(),
    };
    let counts: Vec<f32> = match files.get("counts.bin") {
        Some(b) => reco_core::artifact::decode(b, "counts.bin")?,
        None => Vec::new(),
    };
    let event_values: Vec<f32> = match files.get("event_values.bin") {
        Some(b) => reco_core::artifact::decode(b, "event_values.bin")?,
        None => Vec::new(),
    };
    let loaded = reco_models::from_files(path, manifest, &files)?;
    // An artifact from `reco train` has no values: its histories count as 1 each.
    let values = if values.is_empty() {
        vec![1.0; loaded.history_items.len()]
    } else {
        values
    };
    let n = loaded.history_items.len();
    if values.len() != n || !(counts.is_empty() || counts.len() == n) {
        return Err(ServeError::Engine(reco_core::Error::artifact(
            path,
            "values.bin or counts.bin does not have one entry per history entry",
        )));
    }
    Ok(Loaded {
        model: loaded,
        values,
        counts,
        event_values,
    })
}
