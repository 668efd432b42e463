//! The evaluator: fit every model on every fold, rank for every test user, measure.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use reco_core::model::{FitOptions, Progress, Recommender};
use reco_core::split::Fold;
use reco_core::topk::top_k;
use reco_core::{Dataset, Error, Feedback, Result};

use crate::metric::{Accuracy, Beyond, Metric};
use crate::metrics::{at_k, auc, gini, intra_list_diversity, personalization, Relevant};
use crate::stats::{paired_t, Paired, Stat};

/// A function that fits a model on a training set.
pub type FitFn<'a> = dyn Fn(&Dataset, &FitOptions<'_>) -> Result<Box<dyn Recommender>> + Sync + 'a;

/// A model to evaluate: a name and how to fit it.
pub struct Candidate<'a> {
    /// Name in reports.
    pub name: String,
    /// The model specification as JSON, recorded in reports.
    pub spec: serde_json::Value,
    /// Fits the model.
    pub fit: Box<FitFn<'a>>,
}

/// Evaluation settings.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EvalConfig {
    /// Cutoffs, ascending.
    pub ks: Vec<usize>,
    /// Seed passed to every fit.
    pub seed: u64,
    /// With explicit data, test items rated below this are not relevant (default: all are).
    pub relevance_threshold: Option<f32>,
    /// Model to test the others against (paired t-test per metric).
    pub baseline: Option<String>,
    /// Compute AUC from the full score vectors (costs a pass over the catalogue per user).
    pub auc: bool,
    /// Rank items for the test users (top-k and beyond-accuracy metrics); off for a rating-only
    /// evaluation.
    #[serde(default = "yes")]
    pub ranking: bool,
    /// User fields (categorical, or numeric in quartile bands) whose groups get their own
    /// accuracy figures ([`ModelReport::groups`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
}

fn yes() -> bool {
    true
}

impl EvalConfig {
    /// Checks the settings against the names of the models to evaluate, before anything is
    /// fitted or written.
    pub fn check(&self, names: &[&str]) -> Result<()> {
        if self.ks.is_empty() || self.ks.contains(&0) {
            return Err(Error::param("k", "give at least one cutoff, each >= 1"));
        }
        if let Some(b) = &self.baseline {
            if !names.contains(&b.as_str()) {
                return Err(Error::param(
                    "baseline",
                    format!("{b:?} is not one of the models ({names:?})"),
                ));
            }
        }
        Ok(())
    }
}

/// Everything measured for one model.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelReport {
    /// Name.
    pub name: String,
    /// Specification.
    pub spec: serde_json::Value,
    /// Fit time of each fold, seconds.
    pub fit_seconds: Vec<f64>,
    /// Mean time to score and rank for one user, milliseconds.
    pub recommend_ms_per_user: f64,
    /// Time to predict every test rating, seconds summed over folds (rating models).
    #[serde(default)]
    pub predict_seconds: f64,
    /// Metric (written `ndcg@10`, `rmse`, `coverage@10`, …) → mean, interval, n.
    pub metrics: BTreeMap<Metric, Stat>,
    /// Per-user metric → paired test against the baseline.
    pub vs_baseline: BTreeMap<Metric, Paired>,
    /// Accuracy by user group: field → group label → metric → mean, interval, users (the
    /// fields of [`EvalConfig::groups`]; users without a value are left out).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub groups: BTreeMap<String, BTreeMap<String, BTreeMap<Metric, Stat>>>,
}

/// The result of an evaluation.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Report {
    /// Dataset name.
    pub dataset: String,
    /// Protocol, as written on the command line.
    pub protocol: String,
    /// Number of folds.
    pub folds: usize,
    /// Cutoffs.
    pub ks: Vec<usize>,
    /// Settings.
    pub config: EvalConfig,
    /// (fold, user) pairs evaluated: users with at least one relevant test item.
    pub users_evaluated: usize,
    /// Per model.
    pub models: Vec<ModelReport>,
}

/// The ranked lists of one model on one fold, for run files: (user, [(item, score)]).
pub type RunLists = Vec<(u32, Vec<(u32, f32)>)>;

/// Where ranked lists go while evaluating (run files), if anywhere.
pub trait RunSink: Sync {
    /// Receives the lists of `model` on `fold`.
    fn lists(&self, model: &str, fold: usize, train: &Dataset, lists: &RunLists) -> Result<()>;
}

/// Writes TREC-format run files `runs/MODEL.foldF.run` and qrels `qrels.foldF.txt` in a directory.
pub struct RunFiles<'a>(pub &'a Path);

impl RunFiles<'_> {
    /// Writes the qrels of a fold: `user 0 item gain`, one line per relevant test item.
    pub fn qrels(&self, fold: usize, train: &Dataset, rel: &[(u32, Relevant)]) -> Result<()> {
        let p = self.0.join(format!("qrels.fold{fold}.txt"));
        let mut w = BufWriter::new(std::fs::File::create(&p).map_err(|e| Error::io(&p, e))?);
        for (u, r) in rel {
            for &i in r.items() {
                writeln!(
                    w,
                    "{} 0 {} {}",
                    train.users.id(*u),
                    train.items.id(i),
                    r.gain(i)
                )
                .map_err(|e| Error::io(&p, e))?;
            }
        }
        w.flush().map_err(|e| Error::io(&p, e))
    }
}

impl RunSink for RunFiles<'_> {
    fn lists(&self, model: &str, fold: usize, train: &Dataset, lists: &RunLists) -> Result<()> {
        let dir = self.0.join("runs");
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let p = dir.join(format!("{model}.fold{fold}.run"));
        let mut w = BufWriter::new(std::fs::File::create(&p).map_err(|e| Error::io(&p, e))?);
        for (u, list) in lists {
            for (rank, (i, s)) in list.iter().enumerate() {
                writeln!(
                    w,
                    "{} Q0 {} {} {} {}",
                    train.users.id(*u),
                    train.items.id(*i),
                    rank + 1,
                    s,
                    model
                )
                .map_err(|e| Error::io(&p, e))?;
            }
        }
        w.flush().map_err(|e| Error::io(&p, e))
    }
}

/// Relevant test items per test user of a fold.
pub fn relevance(fold: &Fold, threshold: Option<f32>) -> Vec<(u32, Relevant)> {
    let t = &fold.test;
    let explicit = fold.train.feedback == Feedback::Explicit;
    (0..t.n_users() as u32)
        .filter(|&u| t.user_len(u) > 0)
        .filter_map(|u| {
            let pairs = t
                .user_items(u)
                .iter()
                .zip(t.user_values(u))
                .map(|(&i, &v)| {
                    let relevant = threshold.is_none_or(|th| v >= th);
                    (
                        i,
                        if !relevant {
                            0.0
                        } else if explicit {
                            v as f64
                        } else {
                            1.0
                        },
                    )
                })
                .collect();
            let r = Relevant::new(pairs);
            (!r.is_empty()).then_some((u, r))
        })
        .collect()
}

/// One user's ranked list `(item, score)` and AUC.
type UserRow = (Vec<(u32, f32)>, Option<f64>);

/// Per-model accumulators across folds.
#[derive(Default)]
struct Acc {
    /// Per-user values, in (fold, user) order so that models stay paired.
    per_user: BTreeMap<Metric, Vec<f64>>,
    /// One value per fold.
    per_fold: BTreeMap<Metric, Vec<f64>>,
    fit_seconds: Vec<f64>,
    rec_seconds: f64,
    rec_users: usize,
    predict_seconds: f64,
    /// Squared and absolute rating errors summed, and their count.
    rating_errors: (f64, f64, usize),
}

/// What a fold offers every model: its relevance, catalogue statistics and candidates.
struct FoldView<'a> {
    fold: &'a Fold,
    rel: Vec<(u32, Relevant)>,
    counts: Vec<u32>,
    n_train_users: usize,
    categories: Option<reco_core::features::CategoricalField>,
}

impl<'a> FoldView<'a> {
    fn new(fold: &'a Fold, cfg: &EvalConfig) -> Self {
        let train = &fold.train;
        FoldView {
            fold,
            rel: relevance(fold, cfg.relevance_threshold),
            counts: train.interactions.item_counts(),
            n_train_users: (0..train.n_users() as u32)
                .filter(|&u| train.interactions.user_len(u) > 0)
                .count()
                .max(1),
            categories: train
                .item_features
                .as_ref()
                .and_then(|t| t.primary_category().cloned()),
        }
    }
}

/// Evaluates `candidates` on `folds`. `progress` receives (model, fold, users done, users).
pub fn evaluate(
    dataset: &str,
    protocol: &str,
    folds: &[Fold],
    candidates: &[Candidate<'_>],
    cfg: &EvalConfig,
    sink: Option<&dyn RunSink>,
    progress: &(dyn Fn(&str, Progress<'_>) + Sync),
) -> Result<Report> {
    let names: Vec<&str> = candidates.iter().map(|c| c.name.as_str()).collect();
    cfg.check(&names)?;
    let mut accs: Vec<Acc> = candidates.iter().map(|_| Acc::default()).collect();
    let mut users_evaluated = 0;
    // Each ranked (fold, user)'s group per field, in the order of the per-user values.
    let mut labels: Vec<Vec<Option<String>>> = vec![Vec::new(); cfg.groups.len()];
    for (f, fold) in folds.iter().enumerate() {
        let view = FoldView::new(fold, cfg);
        users_evaluated += view.rel.len();
        if cfg.ranking {
            for (field, out) in cfg.groups.iter().zip(&mut labels) {
                let of = crate::fairness::user_groups(&fold.train, field)?;
                out.extend(
                    view.rel
                        .iter()
                        .map(|(u, _)| of.get(*u as usize).cloned().flatten()),
                );
            }
        }
        for (c, acc) in candidates.iter().zip(accs.iter_mut()) {
            let stage = format!("{} fold {}/{}", c.name, f + 1, folds.len());
            reco_core::interrupt::check()?;
            let model = fit(c, &fold.train, cfg, &stage, progress, acc)?;
            reco_core::interrupt::check()?;
            let rows = rank(model.as_ref(), &view, cfg, &stage, progress, acc)?;
            accuracy(&view, &rows, cfg, acc);
            beyond_accuracy(&view, &rows, cfg, acc);
            rating_errors(model.as_ref(), fold, acc);
            if let Some(s) = sink {
                let lists: RunLists = view
                    .rel
                    .iter()
                    .map(|(u, _)| *u)
                    .zip(rows.into_iter().map(|r| r.0))
                    .collect();
                s.lists(&c.name, f, &fold.train, &lists)?;
            }
        }
    }
    let baseline = cfg
        .baseline
        .as_ref()
        .and_then(|b| candidates.iter().position(|c| &c.name == b));
    let models = candidates
        .iter()
        .enumerate()
        .map(|(m, c)| {
            let paired = baseline.filter(|&b| b != m).map(|b| &accs[b]);
            let mut r = summarise(c, &accs[m], paired);
            r.groups = by_group(&accs[m], &cfg.groups, &labels);
            r
        })
        .collect();
    Ok(Report {
        dataset: dataset.into(),
        protocol: protocol.into(),
        folds: folds.len(),
        ks: cfg.ks.clone(),
        config: cfg.clone(),
        users_evaluated,
        models,
    })
}

/// Fits one model on a fold's training data, timed.
fn fit(
    c: &Candidate<'_>,
    train: &Dataset,
    cfg: &EvalConfig,
    stage: &str,
    progress: &(dyn Fn(&str, Progress<'_>) + Sync),
    acc: &mut Acc,
) -> Result<Box<dyn Recommender>> {
    let report_fit = |p: Progress<'_>| progress(stage, p);
    let t0 = Instant::now();
    let model = (c.fit)(
        train,
        &FitOptions {
            seed: cfg.seed,
            progress: Some(&report_fit),
            validation: None,
            checkpoint: None,
        },
    )?;
    acc.fit_seconds.push(t0.elapsed().as_secs_f64());
    if model.n_items() != train.n_items() {
        return Err(Error::Unsupported(format!(
            "{} scores {} items, the data has {}",
            c.name,
            model.n_items(),
            train.n_items()
        )));
    }
    Ok(model)
}

/// Every test user's top list (and AUC), from one `score` call each, in parallel.
fn rank(
    model: &dyn Recommender,
    view: &FoldView<'_>,
    cfg: &EvalConfig,
    stage: &str,
    progress: &(dyn Fn(&str, Progress<'_>) + Sync),
    acc: &mut Acc,
) -> Result<Vec<UserRow>> {
    let train = &view.fold.train;
    let kmax = cfg.ks.iter().copied().max().unwrap_or(10);
    let done = AtomicU64::new(0);
    let total = view.rel.len() as u64;
    let t0 = Instant::now();
    let ranked: &[(u32, Relevant)] = if cfg.ranking { &view.rel } else { &[] };
    let n = train.n_items();
    // Blocks of users are scored at once (one matrix product for factor models).
    let block = reco_core::model::block_users(n, ranked.len());
    let rows: Vec<UserRow> = ranked
        .par_chunks(block)
        .map_init(
            Vec::new,
            |buf: &mut Vec<f32>, chunk| -> Result<Vec<UserRow>> {
                let users: Vec<u32> = chunk.iter().map(|(u, _)| *u).collect();
                buf.resize(chunk.len() * n, 0.0);
                model.score_users(&users, buf)?;
                let out = chunk
                    .iter()
                    .enumerate()
                    .map(|(j, (u, r))| {
                        let scores = &buf[j * n..(j + 1) * n];
                        let seen = train.interactions.user_items(*u);
                        let allow = view.fold.candidates.as_deref();
                        let top = match allow {
                            Some(a) => top_k(scores, kmax, seen, |i| a.binary_search(&i).is_err()),
                            None => top_k(scores, kmax, seen, |_| false),
                        };
                        let a = if cfg.auc {
                            auc(scores, r, seen, allow)
                        } else {
                            None
                        };
                        (top.iter().map(|s| (s.item, s.score)).collect(), a)
                    })
                    .collect();
                let d = done.fetch_add(chunk.len() as u64, Ordering::Relaxed) + chunk.len() as u64;
                progress(
                    stage,
                    Progress {
                        stage: "users",
                        done: d,
                        total,
                        loss: None,
                    },
                );
                Ok(out)
            },
        )
        .collect::<Result<Vec<_>>>()?
        .into_iter()
        .flatten()
        .collect();
    acc.rec_seconds += t0.elapsed().as_secs_f64();
    acc.rec_users += view.rel.len();
    Ok(rows)
}

/// Per-user accuracy at every cutoff, and AUC.
fn accuracy(view: &FoldView<'_>, rows: &[UserRow], cfg: &EvalConfig, acc: &mut Acc) {
    for ((_, r), (list, a)) in view.rel.iter().zip(rows) {
        let items: Vec<u32> = list.iter().map(|x| x.0).collect();
        for &k in &cfg.ks {
            let m = at_k(&items, r, k);
            for metric in Accuracy::ALL {
                acc.per_user
                    .entry(Metric::Accuracy(metric, k))
                    .or_default()
                    .push(metric.of(&m));
            }
        }
        if cfg.auc {
            acc.per_user
                .entry(Metric::Auc)
                .or_default()
                .push(a.unwrap_or(f64::NAN));
        }
    }
}

/// Coverage, Gini, personalization, novelty, popularity and diversity of the lists at every
/// cutoff: one value per fold (none for a fold without test users).
fn beyond_accuracy(view: &FoldView<'_>, rows: &[UserRow], cfg: &EvalConfig, acc: &mut Acc) {
    let n_items = view.fold.train.n_items();
    let n_cands = view.fold.candidates.as_ref().map_or(n_items, Vec::len);
    for &k in cfg.ks.iter().filter(|_| !rows.is_empty()) {
        let mut exposure = vec![0f64; n_items];
        let (mut novelty, mut pop, mut n_items_shown) = (0.0, 0.0, 0usize);
        let mut ild = Vec::new();
        for (list, _) in rows {
            let l = &list[..list.len().min(k)];
            for &(i, _) in l {
                let count = view.counts[i as usize] as f64;
                exposure[i as usize] += 1.0;
                let p = (count + 1.0) / (view.n_train_users as f64 + 1.0);
                novelty += -p.log2();
                pop += count;
                n_items_shown += 1;
            }
            if let Some(cf) = &view.categories {
                let items: Vec<u32> = l.iter().map(|x| x.0).collect();
                if let Some(d) = intra_list_diversity(&items, |i| cf.of(i)) {
                    ild.push(d);
                }
            }
        }
        // Exposure over the candidate items only (all items unless cold-item protocol).
        if let Some(c) = &view.fold.candidates {
            exposure = c.iter().map(|&i| exposure[i as usize]).collect();
        }
        let shown = exposure.iter().filter(|&&e| e > 0.0).count();
        let mut put = |m: Beyond, v: f64| {
            acc.per_fold
                .entry(Metric::Beyond(m, k))
                .or_default()
                .push(v)
        };
        put(Beyond::Coverage, shown as f64 / n_cands.max(1) as f64);
        put(Beyond::Gini, gini(&exposure));
        put(
            Beyond::Personalization,
            personalization(&exposure, rows.len(), k),
        );
        if n_items_shown > 0 {
            put(Beyond::Novelty, novelty / n_items_shown as f64);
            put(Beyond::AvgPopularity, pop / n_items_shown as f64);
        }
        if !ild.is_empty() {
            put(
                Beyond::Diversity,
                ild.iter().sum::<f64>() / ild.len() as f64,
            );
        }
    }
}

/// Errors of every test rating's prediction, for rating models on explicit data.
fn rating_errors(model: &dyn Recommender, fold: &Fold, acc: &mut Acc) {
    if fold.train.feedback != Feedback::Explicit {
        return;
    }
    let Some(rp) = model.as_rating_predictor() else {
        return;
    };
    let t0 = Instant::now();
    let t = &fold.test;
    let errs: Vec<f64> = (0..t.n_users() as u32)
        .into_par_iter()
        .flat_map_iter(|u| {
            let mut out = vec![0f32; t.user_len(u)];
            rp.predict_user(u, t.user_items(u), &mut out);
            out.into_iter()
                .zip(t.user_values(u))
                .map(|(p, &v)| (p - v) as f64)
                .collect::<Vec<_>>()
        })
        .collect();
    acc.predict_seconds += t0.elapsed().as_secs_f64();
    for e in errs {
        acc.rating_errors.0 += e * e;
        acc.rating_errors.1 += e.abs();
        acc.rating_errors.2 += 1;
    }
}

/// One model's report: means with intervals, paired tests against the baseline's
/// accumulators when there is one, and timings.
/// Accuracy metrics per group of each field: the per-user values whose user has that label.
fn by_group(
    acc: &Acc,
    fields: &[String],
    labels: &[Vec<Option<String>>],
) -> BTreeMap<String, BTreeMap<String, BTreeMap<Metric, Stat>>> {
    let mut out = BTreeMap::new();
    for (field, of) in fields.iter().zip(labels) {
        let mut groups: BTreeMap<String, BTreeMap<Metric, Stat>> = BTreeMap::new();
        let mut names: Vec<&String> = of.iter().flatten().collect();
        names.sort();
        names.dedup();
        for g in names {
            let stats = acc
                .per_user
                .iter()
                .filter(|(m, xs)| matches!(m, Metric::Accuracy(..)) && xs.len() == of.len())
                .map(|(m, xs)| {
                    let v: Vec<f64> = xs
                        .iter()
                        .zip(of)
                        .filter(|(x, l)| l.as_ref() == Some(g) && !x.is_nan())
                        .map(|(x, _)| *x)
                        .collect();
                    (*m, Stat::of(&v))
                })
                .collect();
            groups.insert(g.clone(), stats);
        }
        out.insert(field.clone(), groups);
    }
    out
}

fn summarise(c: &Candidate<'_>, acc: &Acc, baseline: Option<&Acc>) -> ModelReport {
    let mut metrics: BTreeMap<Metric, Stat> = BTreeMap::new();
    for (&name, xs) in &acc.per_user {
        let xs: Vec<f64> = xs.iter().copied().filter(|x| !x.is_nan()).collect();
        metrics.insert(name, Stat::of(&xs));
    }
    for (&name, xs) in &acc.per_fold {
        metrics.insert(name, Stat::of(xs));
    }
    let (se, ae, n) = acc.rating_errors;
    if n > 0 {
        let exact = |mean: f64| Stat { mean, ci95: 0.0, n };
        metrics.insert(Metric::Rmse, exact((se / n as f64).sqrt()));
        metrics.insert(Metric::Mae, exact(ae / n as f64));
    }
    let mut vs_baseline = BTreeMap::new();
    if let Some(b) = baseline {
        for (&name, xs) in &acc.per_user {
            if let Some(p) = b.per_user.get(&name).and_then(|ys| paired_t(xs, ys)) {
                vs_baseline.insert(name, p);
            }
        }
    }
    ModelReport {
        name: c.name.clone(),
        spec: c.spec.clone(),
        fit_seconds: acc.fit_seconds.clone(),
        predict_seconds: acc.predict_seconds,
        recommend_ms_per_user: if acc.rec_users > 0 {
            1000.0 * acc.rec_seconds / acc.rec_users as f64
        } else {
            0.0
        },
        metrics,
        vs_baseline,
        groups: BTreeMap::new(),
    }
}
