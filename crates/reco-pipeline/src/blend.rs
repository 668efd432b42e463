//! Hybrids of whole models: a weighted blend with weights tuned on held-out interactions, and
//! a switch that answers cold users and items with one model and everyone else with another.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rayon::prelude::*;
use reco_core::model::{FitOptions, Query, Recommender};
use reco_core::topk::top_k;
use reco_core::{Dataset, Result};
use reco_models::{Model, ModelSpec};
use serde::{Deserialize, Serialize};

use crate::spec::NamedModel;

/// A weighted blend of models' standardised scores.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BlendSpec {
    /// The models blended.
    pub models: Vec<NamedModel>,
    /// Fixed weights, one per model; when absent they are tuned on held-out interactions.
    #[serde(default)]
    pub weights: Option<Vec<f64>>,
    /// Share of each user's latest interactions held out to tune the weights.
    #[serde(default = "validation")]
    pub validation: f64,
    /// Cutoff of the NDCG the weights maximise.
    #[serde(default = "ten")]
    pub k: usize,
    /// Users sampled for tuning.
    #[serde(default = "users")]
    pub users: usize,
}

fn validation() -> f64 {
    0.1
}
fn ten() -> usize {
    10
}
fn users() -> usize {
    2000
}

/// Weights tried for each model in a round of coordinate ascent.
const GRID: [f64; 12] = [0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0, 1.5, 2.0, 3.0, 5.0];
/// Items kept from each model's list per tuning user: a blended top-k practically never
/// reaches below every model's top 200.
const POOL: usize = 200;

impl BlendSpec {
    /// Checks the specification.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(reco_core::Error::param("blend", m));
        if self.models.len() < 2 {
            return bad("a blend needs at least two models".into());
        }
        if let Some(w) = &self.weights {
            if w.len() != self.models.len() || w.iter().any(|x| !x.is_finite()) {
                return bad(format!(
                    "{} weights for {} models",
                    w.len(),
                    self.models.len()
                ));
            }
        }
        if !(self.validation > 0.0 && self.validation < 1.0) {
            return bad(format!("validation {} is outside (0, 1)", self.validation));
        }
        if self.weights.is_none() && (self.k == 0 || self.users == 0) {
            return bad("tuning weights needs k >= 1 and users >= 1".into());
        }
        let names: Vec<&str> = self.models.iter().map(|m| m.name.as_str()).collect();
        for (i, n) in names.iter().enumerate() {
            if names[..i].contains(n) {
                return bad(format!("two models are named {n:?}"));
            }
        }
        for m in &self.models {
            m.spec.validate().map_err(|e| {
                reco_core::Error::param("blend", format!("model {:?}: {e}", m.name))
            })?;
        }
        Ok(())
    }
}

/// Scores standardised per query (mean 0, standard deviation 1 over the finite scores), so
/// that models on different scales can be added; −∞ stays −∞.
pub fn standardise(scores: &mut [f32]) {
    let (mut n, mut s, mut q) = (0f64, 0f64, 0f64);
    for &x in scores.iter().filter(|x| x.is_finite()) {
        n += 1.0;
        s += x as f64;
        q += (x as f64) * (x as f64);
    }
    if n == 0.0 {
        return;
    }
    let mean = s / n;
    let sd = (q / n - mean * mean).max(0.0).sqrt();
    let sd = if sd > 1e-12 { sd } else { 1.0 };
    for x in scores.iter_mut() {
        *x = if x.is_finite() {
            ((*x as f64 - mean) / sd) as f32
        } else {
            f32::NEG_INFINITY
        };
    }
}

/// A fitted blend.
pub struct Blend {
    pub(crate) spec: BlendSpec,
    pub(crate) models: Vec<Box<dyn Model>>,
    /// The weights used (tuned or given).
    pub weights: Vec<f64>,
    /// Validation NDCG of each model alone and of the blend, when tuned.
    pub tuning: Option<Tuning>,
}

/// What tuning measured on the held-out interactions.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Tuning {
    /// NDCG@k of each model alone.
    pub alone: Vec<f64>,
    /// NDCG@k of the tuned blend.
    pub blend: f64,
}

fn fit_all(
    models: &[NamedModel],
    data: &Dataset,
    opts: &FitOptions<'_>,
) -> Result<Vec<Box<dyn Model>>> {
    models
        .iter()
        .enumerate()
        .map(|(k, m)| {
            opts.report(
                &format!("model {}", m.name),
                k as u64,
                models.len() as u64,
                None,
            );
            m.spec.fit(data, &opts.for_part())
        })
        .collect()
}

/// One tuning user: the pooled items, each model's standardised score of them, and which are
/// relevant.
struct Pool {
    scores: Vec<Vec<f32>>,
    relevant: Vec<bool>,
    n_relevant: usize,
}

fn ndcg(pool: &Pool, w: &[f64], k: usize) -> f64 {
    let blended: Vec<f32> = (0..pool.relevant.len())
        .map(|i| {
            w.iter()
                .zip(&pool.scores)
                .map(|(w, s)| (*w * s[i] as f64) as f32)
                .sum()
        })
        .collect();
    let top = top_k(&blended, k, &[], |_| false);
    let dcg: f64 = top
        .iter()
        .enumerate()
        .filter(|(_, s)| pool.relevant[s.item as usize])
        .map(|(r, _)| 1.0 / (r as f64 + 2.0).log2())
        .sum();
    let idcg: f64 = (0..pool.n_relevant.min(k))
        .map(|r| 1.0 / (r as f64 + 2.0).log2())
        .sum();
    if idcg > 0.0 {
        dcg / idcg
    } else {
        0.0
    }
}

impl Blend {
    /// Fits the models; tunes the weights by coordinate ascent on NDCG@k of each sampled user's
    /// held-out latest interactions (models fitted without them), then refits on everything.
    pub fn fit(spec: BlendSpec, data: &Dataset, opts: &FitOptions<'_>) -> Result<Blend> {
        spec.validate()?;
        let (weights, tuning) = match &spec.weights {
            Some(w) => (w.clone(), None),
            None => {
                let fold = crate::latest_share(data, spec.validation, opts.seed ^ 0xb1e)?;
                let models = fit_all(&spec.models, &fold.train, opts)?;
                let mut users: Vec<u32> = (0..fold.test.n_users() as u32)
                    .filter(|&u| fold.test.user_len(u) > 0)
                    .collect();
                users.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(
                    opts.seed ^ 0xb1e,
                ));
                users.truncate(spec.users);
                opts.report("tuning", 0, 1, None);
                let pools: Vec<Pool> = users
                    .par_iter()
                    .map(|&u| -> Result<Pool> {
                        let seen = fold.train.interactions.user_items(u);
                        let mut all: Vec<Vec<f32>> = Vec::with_capacity(models.len());
                        let mut items: Vec<u32> = Vec::new();
                        for m in &models {
                            let mut s = vec![0f32; m.n_items()];
                            m.score(&Query::user(u), &mut s)?;
                            standardise(&mut s);
                            items.extend(top_k(&s, POOL, seen, |_| false).iter().map(|x| x.item));
                            all.push(s);
                        }
                        items.sort_unstable();
                        items.dedup();
                        let relevant: Vec<bool> = items
                            .iter()
                            .map(|&i| fold.test.get(u, i).is_some())
                            .collect();
                        Ok(Pool {
                            scores: all
                                .iter()
                                .map(|s| items.iter().map(|&i| s[i as usize]).collect())
                                .collect(),
                            n_relevant: fold.test.user_len(u),
                            relevant,
                        })
                    })
                    .collect::<Result<_>>()?;
                let mean = |w: &[f64]| {
                    pools.iter().map(|p| ndcg(p, w, spec.k)).sum::<f64>()
                        / pools.len().max(1) as f64
                };
                let m = spec.models.len();
                let alone: Vec<f64> = (0..m)
                    .map(|j| {
                        mean(
                            &(0..m)
                                .map(|i| if i == j { 1.0 } else { 0.0 })
                                .collect::<Vec<_>>(),
                        )
                    })
                    .collect();
                // Start from the best single model, so tuning can only improve on it.
                let best = (0..m)
                    .max_by(|&a, &b| alone[a].total_cmp(&alone[b]))
                    .unwrap_or(0);
                let mut w: Vec<f64> = (0..m).map(|i| if i == best { 1.0 } else { 0.0 }).collect();
                let mut score = alone[best];
                for _round in 0..3 {
                    let before = score;
                    for j in 0..m {
                        for &g in &GRID {
                            let mut t = w.clone();
                            t[j] = g;
                            if t.iter().all(|&x| x == 0.0) {
                                continue;
                            }
                            let s = mean(&t);
                            if s > score + 1e-12 {
                                score = s;
                                w = t;
                            }
                        }
                    }
                    if score <= before + 1e-9 {
                        break;
                    }
                }
                (
                    w,
                    Some(Tuning {
                        alone,
                        blend: score,
                    }),
                )
            }
        };
        let models = fit_all(&spec.models, data, opts)?;
        Ok(Blend {
            spec,
            models,
            weights,
            tuning,
        })
    }
}

impl Recommender for Blend {
    fn n_items(&self) -> usize {
        self.models.first().map_or(0, |m| m.n_items())
    }

    fn score(&self, query: &Query<'_>, out: &mut [f32]) -> Result<()> {
        out.iter_mut().for_each(|x| *x = 0.0);
        let mut buf = vec![0f32; out.len()];
        for (m, &w) in self.models.iter().zip(&self.weights) {
            if w == 0.0 {
                continue;
            }
            m.score(query, &mut buf)?;
            standardise(&mut buf);
            for (o, b) in out.iter_mut().zip(&buf) {
                *o += (w as f32) * b;
            }
        }
        Ok(())
    }

    fn as_explain(&self) -> Option<&dyn reco_core::explain::Explain> {
        Some(self)
    }
}

/// Cold users and items to one model, the rest to another.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SwitchSpec {
    /// The model for users and items with enough history (collaborative filtering).
    pub warm: ModelSpec,
    /// The model for the others (content, popularity).
    pub cold: ModelSpec,
    /// Users with fewer training interactions are answered by the cold model alone.
    #[serde(default = "five")]
    pub min_user: usize,
    /// Items with fewer training interactions are scored by the cold model (standardised), the
    /// others by the warm model.
    #[serde(default = "one")]
    pub min_item: usize,
}

fn five() -> usize {
    5
}
fn one() -> usize {
    1
}

impl SwitchSpec {
    /// Checks the specification (the two models were validated when they were parsed).
    pub fn validate(&self) -> Result<()> {
        self.warm.validate()?;
        self.cold.validate()
    }
}

/// A fitted switch.
pub struct Switch {
    pub(crate) spec: SwitchSpec,
    pub(crate) warm: Box<dyn Model>,
    pub(crate) cold: Box<dyn Model>,
    /// Training interactions of each user and item.
    pub(crate) user_counts: Vec<u32>,
    pub(crate) item_counts: Vec<u32>,
}

impl Switch {
    /// Fits both models on `data`.
    pub fn fit(spec: SwitchSpec, data: &Dataset, opts: &FitOptions<'_>) -> Result<Switch> {
        spec.validate()?;
        let warm = spec.warm.fit(data, &opts.for_part())?;
        let cold = spec.cold.fit(data, &opts.for_part())?;
        let m = &data.interactions;
        Ok(Switch {
            spec,
            warm,
            cold,
            user_counts: (0..m.n_users() as u32)
                .map(|u| m.user_len(u) as u32)
                .collect(),
            item_counts: m.item_counts(),
        })
    }

    /// Whether `query` goes to the cold model alone.
    pub fn is_cold_user(&self, query: &Query<'_>) -> bool {
        let n = match (query.user, query.history.is_empty()) {
            (Some(u), true) => self.user_counts.get(u as usize).copied().unwrap_or(0) as usize,
            _ => query.history.len(),
        };
        n < self.spec.min_user
    }
}

impl Recommender for Switch {
    fn n_items(&self) -> usize {
        self.item_counts.len()
    }

    fn score(&self, query: &Query<'_>, out: &mut [f32]) -> Result<()> {
        if self.is_cold_user(query) {
            return self.cold.score(query, out);
        }
        self.warm.score(query, out)?;
        if self
            .item_counts
            .iter()
            .all(|&c| c as usize >= self.spec.min_item)
        {
            return Ok(());
        }
        standardise(out);
        let mut cold = vec![0f32; out.len()];
        self.cold.score(query, &mut cold)?;
        standardise(&mut cold);
        for ((o, c), &n) in out.iter_mut().zip(&cold).zip(&self.item_counts) {
            if (n as usize) < self.spec.min_item {
                *o = *c;
            }
        }
        Ok(())
    }

    fn as_explain(&self) -> Option<&dyn reco_core::explain::Explain> {
        Some(self)
    }
}
