//! Early stopping on a validation split, shared by every iterative factor model: after each
//! pass the factors are scored on the held-out data, the best pass's factors are kept, and
//! training stops after `patience` passes without a better score.

use std::borrow::Borrow;

use rand::seq::SliceRandom;
use rayon::prelude::*;

use reco_core::model::FitOptions;
use reco_core::topk::top_k;
use reco_core::Interactions;

use super::{dot, rng, Factors, Seen};

/// How a pass is scored.
enum Metric<'a> {
    /// Recall@10 of the validation items, training items excluded, over at most 2,000
    /// validation users sampled once with the seed (higher is better). Scores are full dot
    /// products of the user and item rows, so a bias kept in a factor slot counts.
    Recall {
        train: &'a Interactions,
        users: Vec<u32>,
    },
    /// RMSE on the validation ratings (lower is better): of Surprise's estimate with `seen`,
    /// or of the plain split form μ + b_u + p_u · q_i without it.
    Rmse { seen: Option<Seen> },
}

/// What early stopping made of a pass.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Pass {
    /// The validation score, when validating.
    pub score: Option<f64>,
    /// The pass is the best so far (its factors were kept).
    pub improved: bool,
    /// Training should stop.
    pub stop: bool,
}

/// The early-stopping state of one fit.
pub(crate) struct EarlyStop<'a> {
    metric: Metric<'a>,
    valid: &'a Interactions,
    patience: usize,
    best: Option<(f64, usize, Factors)>,
}

impl<'a> EarlyStop<'a> {
    fn with(metric: Metric<'a>, valid: Option<&'a Interactions>, patience: usize) -> Option<Self> {
        Some(EarlyStop {
            metric,
            valid: valid.filter(|_| patience > 0)?,
            patience,
            best: None,
        })
    }

    /// Stopping on validation recall@10 (ranking models); None without validation data or
    /// with `patience` 0.
    pub(crate) fn recall(
        train: &'a Interactions,
        valid: Option<&'a Interactions>,
        patience: usize,
        seed: u64,
    ) -> Option<Self> {
        let v = valid.filter(|_| patience > 0)?;
        let mut users: Vec<u32> = (0..v.n_users().min(train.n_users()) as u32)
            .filter(|&u| v.user_len(u) > 0)
            .collect();
        users.shuffle(&mut rng(seed, 91));
        users.truncate(2000);
        Self::with(Metric::Recall { train, users }, valid, patience)
    }

    /// Stopping on the validation RMSE of Surprise's estimate (rating models).
    pub(crate) fn rmse(
        train: &Interactions,
        valid: Option<&'a Interactions>,
        patience: usize,
    ) -> Option<Self> {
        let v = valid.filter(|_| patience > 0)?;
        let seen = Some(Seen::of(train));
        Self::with(Metric::Rmse { seen }, Some(v), patience)
    }

    /// Stopping on the validation RMSE of the unclipped split form μ + b_u + p_u · q_i (models
    /// whose item part lives in a factor slot).
    pub(crate) fn rmse_split_form(
        valid: Option<&'a Interactions>,
        patience: usize,
    ) -> Option<Self> {
        Self::with(Metric::Rmse { seen: None }, valid, patience)
    }

    /// The validation score of `f`.
    pub(crate) fn score(&self, f: &Factors) -> f64 {
        match &self.metric {
            Metric::Recall { train, users } => {
                validation_recall(train, self.valid, users, f.n_items(), &|u, scores| {
                    f.score_vector(f.user(u), false, scores)
                })
            }
            Metric::Rmse { seen } => {
                let (mut se, mut n) = (0f64, 0usize);
                for (u, i, r) in self.valid.iter() {
                    if (u as usize) < f.n_users() && (i as usize) < f.n_items() {
                        let est = match seen {
                            Some(s) => s.estimate(f, u, i),
                            None => {
                                f.mu + f.user_bias.get(u as usize).copied().unwrap_or(0.0)
                                    + dot(f.user(u), f.item(i))
                            }
                        };
                        se += f64::from(r - est).powi(2);
                        n += 1;
                    }
                }
                (se / n.max(1) as f64).sqrt()
            }
        }
    }

    /// Scores pass `pass`, keeps its factors when it is the best so far, and says whether to
    /// stop.
    pub(crate) fn observe(&mut self, pass: usize, f: &Factors) -> Pass {
        let s = self.score(f);
        let higher = matches!(self.metric, Metric::Recall { .. });
        let better = self
            .best
            .as_ref()
            .is_none_or(|b| if higher { s > b.0 } else { s < b.0 });
        if better {
            self.best = Some((s, pass, f.clone()));
        }
        let since = pass - self.best.as_ref().map_or(pass, |b| b.1);
        Pass {
            score: Some(s),
            improved: better,
            stop: since >= self.patience,
        }
    }

    /// The factors of the best pass.
    pub(crate) fn into_best(self) -> Option<Factors> {
        self.best.map(|b| b.2)
    }
}

/// Mean recall@10 of `valid`'s items over `users`, training items excluded, each user ranked
/// by `score_user` over `n_items` items; the per-user denominator is capped at 10. This is the
/// one validation-recall definition of every iterative model (the factor models here and the
/// neural networks of reco-neural).
pub fn validation_recall(
    train: &Interactions,
    valid: &Interactions,
    users: &[u32],
    n_items: usize,
    score_user: &(dyn Fn(u32, &mut [f32]) + Sync),
) -> f64 {
    let total: f64 = users
        .par_iter()
        .map_init(
            || vec![0f32; n_items],
            |scores, &u| {
                score_user(u, scores);
                let top = top_k(scores, 10, train.user_items(u), |_| false);
                let rel = valid.user_items(u);
                let hits = top
                    .iter()
                    .filter(|s| rel.binary_search(&s.item).is_ok())
                    .count();
                hits as f64 / rel.len().clamp(1, 10) as f64
            },
        )
        .sum();
    total / users.len().max(1) as f64
}

/// Ends a pass of a model with optional early stopping: scores the factors `f()` (built only
/// when validating), reports the validation score, or `loss` without validation, to the
/// progress callback, and says whether training should stop; fails when the user interrupted.
pub(crate) fn end_of_pass<F: Borrow<Factors>>(
    early: &mut Option<EarlyStop<'_>>,
    pass: usize,
    total: usize,
    stage: &str,
    f: impl FnOnce() -> F,
    loss: Option<f64>,
    opts: &FitOptions<'_>,
) -> reco_core::Result<Pass> {
    let done = match early.as_mut() {
        Some(v) => v.observe(pass, f().borrow()),
        None => Pass {
            score: loss,
            ..Pass::default()
        },
    };
    opts.step(stage, pass as u64 + 1, total as u64, done.score)?;
    Ok(done)
}

/// The best pass's factors when early stopping kept one, else `last()`.
pub(crate) fn best_or(early: Option<EarlyStop<'_>>, last: impl FnOnce() -> Factors) -> Factors {
    early.and_then(EarlyStop::into_best).unwrap_or_else(last)
}
