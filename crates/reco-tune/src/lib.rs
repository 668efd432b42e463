//! Hyper-parameter search for reco models (`reco tune`).
//!
//! A search varies the parameters of a [`space::Space`] around a base specification. The
//! data are first cut by the outer protocol; on each outer fold, trials are scored on a
//! validation split carved from that fold's training part only ([`TuneConfig::validation`]),
//! and the winner is refitted on the whole training part and scored once on the test part, so
//! the reported test figure has never guided the search. Trials run in batches of
//! [`TuneConfig::parallel`] on the thread pool; each finished trial is appended to a
//! [`TrialStore`], from which an interrupted search resumes where it stopped.

pub mod search;
pub mod space;
mod store;

use std::collections::BTreeMap;
use std::time::Instant;

use rayon::prelude::*;
use reco_core::split::{split, Fold, Protocol};
use reco_core::{Error, Result};
use reco_eval::{evaluate, Candidate, EvalConfig, Metric};
use reco_models::ModelSpec;
use serde::{Deserialize, Serialize};
use serde_json::Value;

pub use search::Strategy;
pub use space::Space;
pub use store::TrialStore;

/// Settings of a search.
#[derive(Clone, Debug)]
pub struct TuneConfig {
    /// What is optimised: an accuracy metric at a cutoff, AUC, or RMSE/MAE (minimised).
    pub metric: Metric,
    /// Trials per outer fold.
    pub trials: usize,
    /// How trials are chosen.
    pub strategy: Strategy,
    /// Seed of the splits, the sampler and every fit.
    pub seed: u64,
    /// Trials run at once (proposals are made per batch, so this is part of the search's
    /// identity: a resumed search must use the same value).
    pub parallel: usize,
    /// The protocol that carves validation data from each outer training part.
    pub validation: Protocol,
    /// Test ratings below this are not relevant (explicit data).
    pub relevance_threshold: Option<f32>,
    /// Successive halving: every trial first runs on a small budget, and only the best part
    /// of each rung goes on to the next, larger one.
    pub halving: Option<Halving>,
    /// How each outer fold's winner is chosen.
    pub select: Select,
    /// Validation windows (>= 1): with more than one, the validation protocol is applied again
    /// to what the previous window left for training (rolling origin: with `temporal:0.2`, the
    /// second window validates on the 20% before the latest 20%), and trials are scored on all
    /// windows together, which halves the noise of a single window's few users at twice the
    /// cost. Validation protocols that already make several folds (`kfold:K`) use those.
    pub windows: usize,
}

/// How each outer fold's winner is chosen among its trials.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Select {
    /// The trial with the best validation value.
    Best,
    /// The best trial if it beats the base specification significantly on the validation data
    /// (paired t-test over the validation users, p < 0.05, in the metric's direction), else
    /// the base. With dozens of trials the best validation value is partly luck (the winner's
    /// curse), and on a validation set of a few hundred users a search can hand back settings
    /// that are worse on test than the ones it started from; this keeps the starting point
    /// unless the data say otherwise. Metrics that are not averaged per user (RMSE, MAE) have
    /// no paired test and keep the best trial.
    Significant,
}

impl std::str::FromStr for Select {
    type Err = Error;
    fn from_str(s: &str) -> Result<Select> {
        match s {
            "best" => Ok(Select::Best),
            "significant" => Ok(Select::Significant),
            _ => Err(Error::param(
                "select",
                format!("{s:?}: best or significant"),
            )),
        }
    }
}

impl std::fmt::Display for Select {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Select::Best => "best",
            Select::Significant => "significant",
        })
    }
}

/// The best trial checked against the base specification on one fold's validation data.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct BaseCheck {
    /// The base specification's validation value.
    pub base_validation: f64,
    /// Mean per-user difference, best trial minus base.
    pub diff: f64,
    /// Two-sided p-value of the paired t-test.
    pub p_value: f64,
    /// The base was kept: the best trial was not significantly better.
    pub kept_base: bool,
}

/// Successive halving (the rungs of one Hyperband bracket): with `rungs` rungs, rung `r` runs
/// on `eta^(r + 1 - rungs)` of the full budget and keeps the best `1/eta` of its trials for
/// rung `r + 1`; the last rung is the full budget. The budget is the model's `epochs` when its
/// specification has them, else the share of training interactions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Halving {
    /// Reduction factor (>= 2).
    pub eta: usize,
    /// Rungs (>= 2).
    pub rungs: usize,
}

impl std::str::FromStr for Halving {
    type Err = Error;
    fn from_str(s: &str) -> Result<Halving> {
        let (e, r) = s.split_once(':').unwrap_or((s, "3"));
        let num = |v: &str| v.parse::<usize>().ok().filter(|n| (2..=8).contains(n));
        match (num(e), num(r)) {
            (Some(eta), Some(rungs)) => Ok(Halving { eta, rungs }),
            _ => Err(Error::param(
                "halving",
                format!("{s:?}: ETA[:RUNGS], each an integer in 2..=8 (e.g. 3 or 3:4)"),
            )),
        }
    }
}

impl std::fmt::Display for Halving {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.eta, self.rungs)
    }
}

impl Halving {
    /// The share of the full budget rung `r` runs on.
    pub fn budget(&self, r: usize) -> f64 {
        (self.eta as f64).powi(r as i32 + 1 - self.rungs as i32)
    }

    /// Trials per rung when the first runs `trials`: each keeps `1/eta` of the one before.
    pub fn sizes(&self, trials: usize) -> Vec<usize> {
        let mut k = trials;
        (0..self.rungs)
            .map(|r| {
                if r > 0 {
                    k = k.div_ceil(self.eta);
                }
                k
            })
            .collect()
    }
}

impl TuneConfig {
    /// Whether smaller values of the metric are better.
    pub fn minimise(&self) -> bool {
        matches!(self.metric, Metric::Rmse | Metric::Mae)
    }

    fn eval_config(&self) -> EvalConfig {
        let k = match self.metric {
            Metric::Accuracy(_, k) | Metric::Beyond(_, k) => k,
            _ => 10,
        };
        let rating = self.minimise();
        EvalConfig {
            ks: vec![k],
            seed: self.seed,
            relevance_threshold: self.relevance_threshold,
            baseline: None,
            auc: self.metric == Metric::Auc,
            ranking: !rating,
            groups: Vec::new(),
        }
    }

    /// Checks the settings before anything runs.
    pub fn check(&self) -> Result<()> {
        if let Metric::Beyond(..) = self.metric {
            return Err(Error::param(
                "metric",
                format!("{} describes lists, not their accuracy; tune for ndcg@k, recall@k, auc, rmse or another accuracy metric", self.metric),
            ));
        }
        if self.trials == 0 || self.trials > 1 << 20 {
            return Err(Error::param("trials", "must be in 1..=1048576"));
        }
        if self.windows == 0 || self.windows > 10 {
            return Err(Error::param("windows", "must be in 1..=10"));
        }
        if self.parallel == 0 || self.parallel > 1024 {
            return Err(Error::param("parallel", "must be in 1..=1024"));
        }
        Ok(())
    }
}

/// One finished trial.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Trial {
    /// Outer fold.
    pub fold: usize,
    /// Index within the fold's search.
    pub trial: usize,
    /// The sampler's coordinates (what a resumed TPE is told again).
    pub x: Vec<f64>,
    /// Parameter values by path.
    pub params: BTreeMap<String, Value>,
    /// The validation metric (None when the trial failed).
    pub value: Option<f64>,
    /// Why it failed: an invalid combination of parameters, a diverged fit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// Wall time of the trial, seconds.
    pub seconds: f64,
    /// Successive-halving rung (0 without halving).
    #[serde(default)]
    pub rung: usize,
    /// Share of the full budget (epochs or training interactions) it ran on.
    #[serde(default = "one")]
    pub budget: f64,
}

fn one() -> f64 {
    1.0
}

/// The search on one outer fold.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FoldResult {
    /// Outer fold.
    pub fold: usize,
    /// The winning trial.
    pub best_trial: usize,
    /// Its parameters.
    pub params: BTreeMap<String, Value>,
    /// Its validation metric.
    pub validation: f64,
    /// The winner refitted on the fold's training part, scored on its test part: metric
    /// name → mean.
    pub test: BTreeMap<String, f64>,
    /// The winning specification.
    pub spec: Value,
    /// With [`Select::Significant`]: the best trial against the base. When the base was kept,
    /// `params` is empty, `validation` and `spec` are the base's, and `best_trial` still names
    /// the trial it was checked against.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base_check: Option<BaseCheck>,
}

impl FoldResult {
    /// The winner as tables show it: its trial index, or "base".
    pub fn winner_label(&self) -> String {
        match &self.base_check {
            Some(c) if c.kept_base => "base".into(),
            _ => self.best_trial.to_string(),
        }
    }
}

/// The result of a search.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Tuned {
    /// The metric optimised.
    pub metric: String,
    /// Whether it was minimised.
    pub minimise: bool,
    /// Every trial of every outer fold.
    pub trials: Vec<Trial>,
    /// Per outer fold: the winner and its test score.
    pub folds: Vec<FoldResult>,
    /// The optimised metric on the test parts, averaged over outer folds.
    pub test_mean: f64,
    /// The specification to use: the winner of the outer fold whose validation score was
    /// best (with one outer fold, its winner).
    pub best_spec: Value,
    /// The space searched (`Space::from_json` reads it back).
    pub space: Value,
}

/// Where a search is, for a progress bar.
#[derive(Clone, Copy, Debug)]
pub struct TuneProgress {
    /// Outer fold (from 0).
    pub fold: usize,
    /// Outer folds.
    pub folds: usize,
    /// Trials finished on this fold (resumed ones included).
    pub done: usize,
    /// Trials of this fold.
    pub total: usize,
    /// Best validation value so far on this fold.
    pub best: Option<f64>,
}

/// The full form of a specification (every default written out), the base that paths of a
/// space point into.
pub fn full_spec(base: Value) -> Result<Value> {
    ModelSpec::from_value(base)?.to_value()
}

/// Runs a search on `outer` folds of a dataset. `store` holds the trials already done (from
/// an interrupted run) and receives each new one as it finishes.
pub fn tune(
    dataset: &str,
    base: &Value,
    space: &Space,
    outer: &[Fold],
    cfg: &TuneConfig,
    store: &TrialStore,
    progress: &(dyn Fn(TuneProgress) + Sync),
) -> Result<Tuned> {
    cfg.check()?;
    let base = full_spec(base.clone())?;
    space.check(&base)?;
    let proposer = search::Proposer::new(space, cfg.strategy, cfg.seed, cfg.trials)?;
    let total = proposer
        .capacity()
        .map_or(cfg.trials, |c| c.min(cfg.trials));
    let ecfg = cfg.eval_config();
    let sign = if cfg.minimise() { 1.0 } else { -1.0 };
    let sizes = cfg.halving.map_or(vec![total], |h| h.sizes(total));
    // Trials of a fold over every rung, for the progress bar.
    let runs: usize = sizes.iter().sum();
    let mut folds = Vec::with_capacity(outer.len());
    for (f, fold) in outer.iter().enumerate() {
        let inner = validation_folds(&fold.train, cfg, cfg.seed.wrapping_add(f as u64))?;
        let report = |done: usize, best: Option<f64>| {
            progress(TuneProgress {
                fold: f,
                folds: outer.len(),
                done,
                total: runs,
                best,
            })
        };
        let rungs = sizes.len();
        let budget = |rung: usize| cfg.halving.map_or(1.0, |h| h.budget(rung));
        // Runs trials of one rung on that rung's data (cut once per rung, not per trial).
        let run = |items: Vec<(usize, Vec<f64>)>, rung: usize, data: &[Fold]| -> Result<()> {
            let outcome: Vec<Result<()>> = items
                .into_par_iter()
                .map(|(i, x)| {
                    let t = run_trial(
                        dataset,
                        &base,
                        space,
                        data,
                        &ecfg,
                        cfg,
                        (f, i, rung, budget(rung)),
                        x,
                    )?;
                    store.append(&t)?;
                    report(store.count(f), best_of(store, f, sign, rungs - 1));
                    Ok(())
                })
                .collect();
            // An interruption or a storage failure ends the search; finished trials are kept.
            outcome.into_iter().collect::<Result<Vec<()>>>()?;
            report(store.count(f), best_of(store, f, sign, rungs - 1));
            Ok(())
        };
        let data = budget_data(&base, &inner, budget(0), cfg.seed)?;
        let mut next = 0;
        while next < total {
            let end = (next + cfg.parallel).min(total);
            // What the sampler knows: every first-rung trial of this fold before the batch.
            let history: Vec<search::Observation> = store.with(|all| {
                all.iter()
                    .filter(|t| t.fold == f && t.rung == 0 && t.trial < next)
                    .filter_map(|t| t.value.map(|v| (t.x.clone(), sign * v)))
                    .collect()
            });
            let todo: Vec<usize> = (next..end).filter(|&i| !store.has(f, i, 0)).collect();
            let proposals = todo
                .iter()
                .map(|&i| proposer.propose(i, &history).map(|x| (i, x)))
                .collect::<Result<Vec<_>>>()?;
            run(proposals, 0, data.as_deref().unwrap_or(&inner))?;
            next = end;
        }
        // Each further rung: the best 1/eta of the previous one, on a larger budget.
        for (rung, &kept) in sizes.iter().enumerate().skip(1) {
            let mut prev: Vec<Trial> = store.with(|all| {
                all.iter()
                    .filter(|t| t.fold == f && t.rung == rung - 1 && t.value.is_some())
                    .cloned()
                    .collect()
            });
            prev.sort_by(by_loss(sign));
            let items: Vec<(usize, Vec<f64>)> = prev
                .into_iter()
                .take(kept)
                .filter(|t| !store.has(f, t.trial, rung))
                .map(|t| (t.trial, t.x))
                .collect();
            let data = budget_data(&base, &inner, budget(rung), cfg.seed)?;
            run(items, rung, data.as_deref().unwrap_or(&inner))?;
        }
        let last = rungs - 1;
        let trials: Vec<Trial> = store.trials().into_iter().filter(|t| t.fold == f).collect();
        let winner = trials
            .iter()
            .filter(|t| t.value.is_some() && t.rung == last)
            .min_by(|a, b| by_loss(sign)(a, b))
            .ok_or_else(|| {
                let why = trials
                    .iter()
                    .find_map(|t| t.error.clone())
                    .unwrap_or_else(|| "no trial ran".into());
                Error::training(
                    "tune",
                    format!(
                        "no trial succeeded on fold {}; the first error: {why}",
                        f + 1
                    ),
                )
            })?;
        let mut spec = with_params(&base, &winner.params)?;
        let mut params = winner.params.clone();
        let mut validation = winner.value.unwrap_or(f64::NAN);
        let base_check = match cfg.select {
            Select::Significant if spec != base => {
                check_base(dataset, &base, &spec, &inner, &ecfg, cfg)?
            }
            _ => None,
        };
        if let Some(c) = base_check.as_ref().filter(|c| c.kept_base) {
            spec = base.clone();
            params = BTreeMap::new();
            validation = c.base_validation;
        }
        let test = evaluate(
            dataset,
            "tune-test",
            std::slice::from_ref(fold),
            &[candidate(&spec)?],
            &ecfg,
            None,
            &|_, _| {},
        )?;
        let test = test
            .models
            .first()
            .map(|m| {
                m.metrics
                    .iter()
                    .map(|(k, s)| (k.to_string(), s.mean))
                    .collect::<BTreeMap<_, _>>()
            })
            .unwrap_or_default();
        folds.push(FoldResult {
            fold: f,
            best_trial: winner.trial,
            params,
            validation,
            test,
            spec,
            base_check,
        });
    }
    let key = cfg.metric.to_string();
    let test_mean = folds
        .iter()
        .map(|r| r.test.get(&key).copied().unwrap_or(f64::NAN))
        .sum::<f64>()
        / folds.len().max(1) as f64;
    let best_spec = folds
        .iter()
        .min_by(|a, b| (sign * a.validation).total_cmp(&(sign * b.validation)))
        .map(|r| r.spec.clone())
        .unwrap_or(base);
    Ok(Tuned {
        metric: key,
        minimise: cfg.minimise(),
        trials: store.trials(),
        folds,
        test_mean,
        best_spec,
        space: space.to_json(),
    })
}

/// The validation folds carved from an outer training part: the validation protocol's
/// folds, and with [`TuneConfig::windows`] > 1 (for protocols that make one fold) that
/// protocol applied again to what each window left for training, so that every window
/// validates on interactions older than the one before and trains on what precedes them.
pub fn validation_folds(
    train: &reco_core::Dataset,
    cfg: &TuneConfig,
    seed: u64,
) -> Result<Vec<Fold>> {
    let mut inner = split(train, &cfg.validation, seed)?;
    if inner.is_empty() {
        return Err(Error::param(
            "validation",
            "the validation protocol made no folds",
        ));
    }
    while windows_of_one(&cfg.validation) && inner.len() < cfg.windows {
        let earlier = split(&inner[inner.len() - 1].train, &cfg.validation, seed)?;
        match earlier.into_iter().next() {
            Some(w) if w.test.nnz() > 0 => inner.push(w),
            _ => break,
        }
    }
    Ok(inner)
}

/// Whether a validation protocol makes one fold (and so can be rolled back into windows).
fn windows_of_one(p: &Protocol) -> bool {
    !matches!(p, Protocol::KFold { .. })
}

/// Scores the best trial's specification and the base together on the validation data, the
/// base as the paired test's baseline; None when the metric has no per-user values.
fn check_base(
    dataset: &str,
    base: &Value,
    best: &Value,
    inner: &[Fold],
    ecfg: &EvalConfig,
    cfg: &TuneConfig,
) -> Result<Option<BaseCheck>> {
    let named = |name: &str, spec: &Value| -> Result<Candidate<'static>> {
        Ok(Candidate {
            name: name.into(),
            ..candidate(spec)?
        })
    };
    let gate = EvalConfig {
        baseline: Some("base".into()),
        ..ecfg.clone()
    };
    let r = evaluate(
        dataset,
        "tune-base-check",
        inner,
        &[named("best", best)?, named("base", base)?],
        &gate,
        None,
        &|_, _| {},
    )?;
    let (Some(b), Some(base_report)) = (r.models.first(), r.models.get(1)) else {
        return Ok(None);
    };
    let (Some(p), Some(bv)) = (
        b.vs_baseline.get(&cfg.metric),
        base_report.metrics.get(&cfg.metric),
    ) else {
        return Ok(None);
    };
    let sign = if cfg.minimise() { -1.0 } else { 1.0 };
    let better = sign * p.diff > 0.0 && p.p_value < 0.05;
    Ok(Some(BaseCheck {
        base_validation: bv.mean,
        diff: p.diff,
        p_value: p.p_value,
        kept_base: !better,
    }))
}

/// Orders trials best first by their value (`sign` 1 when smaller is better, -1 when larger
/// is), ties by trial index; trials without a value compare as 0.
fn by_loss(sign: f64) -> impl Fn(&Trial, &Trial) -> std::cmp::Ordering {
    move |a, b| {
        let (x, y) = (sign * a.value.unwrap_or(0.0), sign * b.value.unwrap_or(0.0));
        x.total_cmp(&y).then(a.trial.cmp(&b.trial))
    }
}

/// The best value on a fold at the highest rung reached so far (up to `last`).
fn best_of(store: &TrialStore, fold: usize, sign: f64, last: usize) -> Option<f64> {
    store.with(|trials| {
        let top = trials
            .iter()
            .filter(|t| t.fold == fold && t.rung <= last)
            .map(|t| t.rung)
            .max()?;
        trials
            .iter()
            .filter(|t| t.fold == fold && t.rung == top)
            .filter_map(|t| t.value)
            .min_by(|a, b| (sign * a).total_cmp(&(sign * b)))
    })
}

/// The base specification with `params` set.
pub fn with_params(base: &Value, params: &BTreeMap<String, Value>) -> Result<Value> {
    let mut spec = base.clone();
    for (path, v) in params {
        space::set(&mut spec, path, v.clone())?;
    }
    Ok(spec)
}

/// The validation folds a rung on `budget` of the full budget runs on, when the budget is
/// data: a specification with `epochs` is shortened instead ([`scale_epochs`]), and the full
/// budget needs no cut. Otherwise each fold's training part is cut to that share of its
/// interactions.
fn budget_data(base: &Value, inner: &[Fold], budget: f64, seed: u64) -> Result<Option<Vec<Fold>>> {
    if budget >= 1.0 || base.get("epochs").and_then(Value::as_u64).is_some() {
        return Ok(None);
    }
    let cut = Protocol::Holdout {
        ratio: 1.0 - budget,
    };
    inner
        .iter()
        .map(|f| {
            let part = split(&f.train, &cut, seed)?
                .into_iter()
                .next()
                .ok_or_else(|| Error::param("halving", "the budget cut made no data"))?;
            Ok(Fold {
                train: part.train,
                test: f.test.clone(),
                candidates: f.candidates.clone(),
            })
        })
        .collect::<Result<Vec<_>>>()
        .map(Some)
}

/// A trial's specification on `budget` of the full budget: its epochs scaled (at least one)
/// when it has them.
fn scale_epochs(mut spec: Value, budget: f64) -> Value {
    if budget < 1.0 {
        if let Some(e) = spec.get("epochs").and_then(Value::as_u64) {
            spec["epochs"] = Value::from(((e as f64 * budget).round() as u64).max(1));
        }
    }
    spec
}

fn candidate(spec: &Value) -> Result<Candidate<'static>> {
    let parsed = ModelSpec::from_value(spec.clone())?;
    Ok(Candidate {
        name: parsed.kind().to_string(),
        spec: spec.clone(),
        fit: parsed.into_fit_fn(),
    })
}

#[allow(clippy::too_many_arguments)]
fn run_trial(
    dataset: &str,
    base: &Value,
    space: &Space,
    data: &[Fold],
    ecfg: &EvalConfig,
    cfg: &TuneConfig,
    (fold, trial, rung, budget): (usize, usize, usize, f64),
    x: Vec<f64>,
) -> Result<Trial> {
    let t0 = Instant::now();
    let params = space.values(&x);
    let scored = with_params(base, &params).and_then(|s| {
        let c = candidate(&scale_epochs(s, budget))?;
        evaluate(
            dataset,
            "tune-validation",
            data,
            &[c],
            ecfg,
            None,
            &|_, _| {},
        )
    });
    let (value, error) = match scored {
        Ok(r) => {
            let v = r
                .models
                .first()
                .and_then(|m| m.metrics.get(&cfg.metric))
                .map(|s| s.mean)
                .filter(|v| v.is_finite());
            match v {
                Some(v) => (Some(v), None),
                None => (
                    None,
                    Some(format!("no finite {} on the validation data", cfg.metric)),
                ),
            }
        }
        // Ctrl-C stops the search; it is not a property of the parameters.
        Err(Error::Interrupted) => return Err(Error::Interrupted),
        Err(e) => (None, Some(e.to_string())),
    };
    Ok(Trial {
        fold,
        trial,
        x,
        params,
        value,
        error,
        seconds: t0.elapsed().as_secs_f64(),
        rung,
        budget,
    })
}

/// The HTML report of a search: each fold's winner with its validation and test scores, the
/// validation value of every trial in order with the best so far, and each parameter's
/// effect (its values against the validation metric; log ranges on a log scale).
pub fn html_report(t: &Tuned, space: &Space) -> String {
    use reco_eval::html::{chart, escape, page, Series, Style};
    let mut sections = Vec::new();
    let mut table = String::from(
        "<h2>Winners</h2><table id=\"winners\"><tr><th>fold</th><th>best trial</th><th>validation</th><th>test</th><th>parameters</th></tr>",
    );
    for f in &t.folds {
        let params: Vec<String> = f
            .params
            .iter()
            .map(|(k, v)| format!("{} = {}", escape(k), escape(&v.to_string())))
            .collect();
        table.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{:.4}</td><td>{:.4}</td><td>{}</td></tr>",
            f.fold + 1,
            f.winner_label(),
            f.validation,
            f.test.get(&t.metric).copied().unwrap_or(f64::NAN),
            params.join(", ")
        ));
    }
    table.push_str("</table>");
    let failed = t.trials.iter().filter(|x| x.value.is_none()).count();
    table.push_str(&format!(
        "<p class=\"note\">{} trials, {failed} failed; {} ({}); test {} averaged over outer folds: {:.4}. The test part never guided the search.</p>",
        t.trials.len(),
        escape(&t.metric),
        if t.minimise { "lower is better" } else { "higher is better" },
        escape(&t.metric),
        t.test_mean
    ));
    sections.push(table);
    let folds: Vec<usize> = {
        let mut f: Vec<usize> = t.trials.iter().map(|x| x.fold).collect();
        f.sort_unstable();
        f.dedup();
        f
    };
    let mut figs = String::new();
    let (mut pts, mut lines) = (Vec::new(), Vec::new());
    for &f in &folds {
        let mut trials: Vec<&Trial> = t.trials.iter().filter(|x| x.fold == f).collect();
        trials.sort_by_key(|x| x.trial);
        let values: Vec<(f64, f64)> = trials
            .iter()
            .filter_map(|x| x.value.map(|v| (x.trial as f64, v)))
            .collect();
        let mut best = Vec::new();
        let mut b: Option<f64> = None;
        for &(i, v) in &values {
            let better = b.is_none_or(|b| if t.minimise { v < b } else { v > b });
            if better {
                b = Some(v);
            }
            best.push((i, b.unwrap_or(v)));
        }
        pts.push(Series {
            name: format!("fold {}", f + 1),
            points: values,
            errors: Vec::new(),
        });
        lines.push(Series {
            name: format!("fold {}", f + 1),
            points: best,
            errors: Vec::new(),
        });
    }
    figs.push_str(&chart(
        "trials",
        "Validation value of each trial",
        "trial",
        &t.metric,
        &pts,
        Style::Points,
    ));
    figs.push_str(&chart(
        "best-so-far",
        "Best validation value so far",
        "trial",
        &t.metric,
        &lines,
        Style::Lines,
    ));
    for p in &space.params {
        let log = matches!(
            p.dist,
            space::Dist::Int { log: true, .. } | space::Dist::Float { log: true, .. }
        );
        let choices = match &p.dist {
            space::Dist::Choice(c) => Some(c),
            _ => None,
        };
        let series: Vec<Series> = folds
            .iter()
            .map(|&f| Series {
                name: format!("fold {}", f + 1),
                points: t
                    .trials
                    .iter()
                    .filter(|x| x.fold == f)
                    .filter_map(|x| {
                        let v = x.value?;
                        let raw = x.params.get(&p.path)?;
                        let xv = match choices {
                            Some(c) => c.iter().position(|o| o == raw)? as f64,
                            None => raw.as_f64()?,
                        };
                        Some((if log { xv.log10() } else { xv }, v))
                    })
                    .collect(),
                errors: Vec::new(),
            })
            .collect();
        let label = match choices {
            Some(c) => format!(
                "{} (choice index: {})",
                p.path,
                c.iter()
                    .enumerate()
                    .map(|(i, v)| format!("{i} = {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None if log => format!("log10 {}", p.path),
            None => p.path.clone(),
        };
        figs.push_str(&chart(
            &format!("param-{}", p.path.replace('.', "-")),
            &format!("Effect of {}", p.path),
            &label,
            &t.metric,
            &series,
            Style::Points,
        ));
    }
    sections.push(format!("<h2>Trials and parameters</h2>{figs}"));
    page(&format!("reco tune: {}", t.metric), &sections)
}
