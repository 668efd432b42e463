//! A stacked blend of rating models (Wolpert's stacking, with Sill et al.'s feature-weighted
//! linear combiner from the Netflix Prize): each model's out-of-fold predictions of the training
//! ratings train a linear combiner, then every model is refitted on all of the training ratings.
//!
//! The training ratings are dealt into `folds` folds; for each fold every model is fitted on the
//! others and predicts it, so each training rating gets one prediction per model from models
//! that never saw it. The combiner is a ridge regression of the rating on those predictions, and
//! — with `support` — on each prediction times how many ratings its user and item have (log,
//! standardised): a model that is good for heavy users and poor for light ones gets weights that
//! say so. Evaluated by `reco eval`, the whole of this runs inside each outer training fold, so
//! no test rating reaches either the models or the combiner.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use reco_core::model::{FitOptions, Query, RatingPredictor, Recommender};
use reco_core::{Dataset, Error, Interactions, Result};
use reco_models::bias::Scale;
use reco_models::Model;
use serde::{Deserialize, Serialize};

use crate::spec::NamedModel;

/// A stacked blend of rating models.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackSpec {
    /// The rating models combined (each must predict ratings).
    pub models: Vec<NamedModel>,
    /// Folds of the training ratings that give the out-of-fold predictions (≥ 2).
    #[serde(default = "five")]
    pub folds: usize,
    /// Ridge λ of the combiner, per training rating.
    #[serde(default = "regularization")]
    pub regularization: f64,
    /// Let each model's weight depend on its user's and item's rating counts (feature-weighted
    /// linear stacking); false: one weight per model.
    #[serde(default = "yes")]
    pub support: bool,
}

fn five() -> usize {
    5
}
fn regularization() -> f64 {
    1e-3
}
fn yes() -> bool {
    true
}

/// Largest `folds`: each fold refits every model.
const MAX_FOLDS: usize = 50;

impl StackSpec {
    /// Checks the specification.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(Error::param("stack", m));
        if self.models.is_empty() {
            return bad("a stack needs at least one model".into());
        }
        if !(2..=MAX_FOLDS).contains(&self.folds) {
            return bad(format!(
                "folds must be between 2 and {MAX_FOLDS}, got {}",
                self.folds
            ));
        }
        if !(self.regularization >= 0.0 && self.regularization.is_finite()) {
            return bad(format!(
                "regularization must be a finite number >= 0, got {}",
                self.regularization
            ));
        }
        let names: Vec<&str> = self.models.iter().map(|m| m.name.as_str()).collect();
        for (i, n) in names.iter().enumerate() {
            if names[..i].contains(n) {
                return bad(format!("two models are named {n:?}"));
            }
        }
        for m in &self.models {
            m.spec
                .validate()
                .map_err(|e| Error::param("stack", format!("model {:?}: {e}", m.name)))?;
            if !m.spec.capabilities().rates {
                return bad(format!(
                    "model {:?} ({}) does not predict ratings",
                    m.name,
                    m.spec.kind()
                ));
            }
        }
        Ok(())
    }

    /// Columns of the combiner: an intercept and each model's prediction, and with `support`
    /// the two counts and each prediction times each count.
    pub fn width(&self) -> usize {
        let m = self.models.len();
        if self.support {
            3 + 3 * m
        } else {
            1 + m
        }
    }
}

/// How the rating counts enter the combiner: ln(1 + n), standardised over the training ratings.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
pub(crate) struct Support {
    user: (f64, f64),
    item: (f64, f64),
}

impl Support {
    fn feature(&self, n: usize, side: (f64, f64)) -> f64 {
        ((n as f64).ln_1p() - side.0) / side.1
    }
}

/// What stacking measured on the out-of-fold predictions of the training ratings.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Stacking {
    /// RMSE of each model alone.
    pub alone: Vec<f64>,
    /// RMSE of the combiner (in-sample on the out-of-fold predictions).
    pub stack: f64,
}

/// A fitted stack.
pub struct Stack {
    pub(crate) spec: StackSpec,
    pub(crate) models: Vec<Box<dyn Model>>,
    /// Mean training rating: the combiner works on centred ratings and predictions.
    pub(crate) mu: f64,
    /// The combiner's weights, in the column order of [`Stack::row`].
    pub weights: Vec<f64>,
    pub(crate) support: Support,
    pub(crate) scale: Scale,
    /// Training rating counts of each user and item.
    pub(crate) user_counts: Vec<u32>,
    pub(crate) item_counts: Vec<u32>,
    /// The out-of-fold figures.
    pub stacking: Stacking,
}

/// The state a fitted stack saves besides its models.
#[derive(Serialize, Deserialize)]
pub(crate) struct StackState {
    pub models: Vec<Vec<u8>>,
    pub mu: f64,
    pub weights: Vec<f64>,
    pub support: Support,
    pub scale: Scale,
    pub user_counts: Vec<u32>,
    pub item_counts: Vec<u32>,
    pub stacking: Stacking,
}

/// Fills `x` with the combiner's columns for one rating: predictions `p` (centred on `mu`),
/// and the standardised counts `au`, `ai`.
fn row(x: &mut [f64], p: &[f64], au: f64, ai: f64, support: bool) {
    let m = p.len();
    x[0] = 1.0;
    x[1..=m].copy_from_slice(p);
    if support {
        x[m + 1] = au;
        x[m + 2] = ai;
        for (j, &pj) in p.iter().enumerate() {
            x[m + 3 + 2 * j] = pj * au;
            x[m + 4 + 2 * j] = pj * ai;
        }
    }
}

fn counts(m: &Interactions) -> (Vec<u32>, Vec<u32>) {
    (
        (0..m.n_users() as u32)
            .map(|u| m.user_len(u) as u32)
            .collect(),
        (0..m.n_items() as u32)
            .map(|i| m.item_len(i) as u32)
            .collect(),
    )
}

fn mean_sd(xs: impl Iterator<Item = f64>) -> (f64, f64) {
    let (mut n, mut s, mut q) = (0f64, 0f64, 0f64);
    for x in xs {
        n += 1.0;
        s += x;
        q += x * x;
    }
    let mean = s / n.max(1.0);
    let sd = (q / n.max(1.0) - mean * mean).max(0.0).sqrt();
    (mean, if sd > 1e-9 { sd } else { 1.0 })
}

/// Ridge least squares: (XᵀX + λN·I′) w = Xᵀy, I′ sparing the intercept. `x` is row-major,
/// `d` wide.
fn ridge(x: &[f64], y: &[f64], d: usize, lambda: f64) -> Result<Vec<f64>> {
    use faer::linalg::solvers::Solve;
    let n = y.len();
    let mut a = faer::Mat::<f64>::zeros(d, d);
    let mut b = faer::Mat::<f64>::zeros(d, 1);
    for (r, &t) in x.chunks_exact(d).zip(y) {
        for i in 0..d {
            b[(i, 0)] += r[i] * t;
            for j in 0..=i {
                a[(i, j)] += r[i] * r[j];
            }
        }
    }
    for i in 0..d {
        for j in 0..i {
            a[(j, i)] = a[(i, j)];
        }
        // A tiny floor keeps the solve defined when two models predict identically.
        a[(i, i)] += if i == 0 {
            1e-9
        } else {
            lambda * n as f64 + 1e-9
        };
    }
    let w = a
        .llt(faer::Side::Lower)
        .map_err(|e| Error::training("stack", format!("the combiner's solve failed: {e:?}")))?
        .solve(&b);
    Ok((0..d).map(|i| w[(i, 0)]).collect())
}

impl Stack {
    /// Collects the out-of-fold predictions, fits the combiner, refits the models on all data.
    pub fn fit(spec: StackSpec, data: &Dataset, opts: &FitOptions<'_>) -> Result<Stack> {
        spec.validate()?;
        let m = &data.interactions;
        let nnz = m.nnz();
        if nnz < spec.folds {
            return Err(Error::data(format!(
                "a stack with {} folds needs at least {} ratings, got {nnz}",
                spec.folds, spec.folds
            )));
        }
        let k = spec.models.len();
        let mut fold: Vec<usize> = (0..nnz).map(|p| p % spec.folds).collect();
        fold.shuffle(&mut rand_chacha::ChaCha8Rng::seed_from_u64(
            opts.seed ^ 0x57ac,
        ));
        // Each rating's position: its user (from the CSR row) and item.
        let users: Vec<u32> = (0..m.n_users() as u32)
            .flat_map(|u| std::iter::repeat_n(u, m.user_len(u)))
            .collect();
        let items = m.indices();
        let mut oof = vec![0f64; nnz * k];
        let mut fold_counts = vec![(0u32, 0u32); nnz];
        let steps = (spec.folds * k) as u64;
        for f in 0..spec.folds {
            let keep: Vec<bool> = fold.iter().map(|&g| g != f).collect();
            let train = data.with_interactions(m.select(&keep));
            let (uc, ic) = counts(&train.interactions);
            for p in (0..nnz).filter(|&p| fold[p] == f) {
                fold_counts[p] = (uc[users[p] as usize], ic[items[p] as usize]);
            }
            for (j, named) in spec.models.iter().enumerate() {
                opts.step(
                    &format!("fold {} model {}", f + 1, named.name),
                    (f * k + j) as u64,
                    steps,
                    None,
                )?;
                let model = named.spec.fit(&train, &opts.for_part())?;
                let r = rater(model.as_ref(), &named.name)?;
                for p in (0..nnz).filter(|&p| fold[p] == f) {
                    oof[p * k + j] = r.predict(users[p], items[p]) as f64;
                }
            }
        }
        let mu = m.values().iter().map(|&v| v as f64).sum::<f64>() / nnz as f64;
        let support = Support {
            user: mean_sd(fold_counts.iter().map(|c| (c.0 as f64).ln_1p())),
            item: mean_sd(fold_counts.iter().map(|c| (c.1 as f64).ln_1p())),
        };
        let d = spec.width();
        let mut x = vec![0f64; nnz * d];
        let mut centred = vec![0f64; k];
        for p in 0..nnz {
            for j in 0..k {
                centred[j] = oof[p * k + j] - mu;
            }
            let (cu, ci) = fold_counts[p];
            row(
                &mut x[p * d..(p + 1) * d],
                &centred,
                support.feature(cu as usize, support.user),
                support.feature(ci as usize, support.item),
                spec.support,
            );
        }
        let y: Vec<f64> = m.values().iter().map(|&v| v as f64 - mu).collect();
        let weights = ridge(&x, &y, d, spec.regularization)?;
        let scale = Scale::of(m);
        let rmse = |f: &dyn Fn(usize) -> f64| {
            let se: f64 = (0..nnz)
                .map(|p| {
                    (m.values()[p] as f64 - f(p).clamp(scale.min as f64, scale.max as f64)).powi(2)
                })
                .sum();
            (se / nnz as f64).sqrt()
        };
        let stacking = Stacking {
            alone: (0..k).map(|j| rmse(&|p| oof[p * k + j])).collect(),
            stack: rmse(&|p| {
                mu + x[p * d..(p + 1) * d]
                    .iter()
                    .zip(&weights)
                    .map(|(a, b)| a * b)
                    .sum::<f64>()
            }),
        };
        opts.step("refit", steps, steps, Some(stacking.stack))?;
        let models = spec
            .models
            .iter()
            .map(|named| {
                let model = named.spec.fit(data, &opts.for_part())?;
                rater(model.as_ref(), &named.name)?;
                Ok(model)
            })
            .collect::<Result<Vec<_>>>()?;
        let (user_counts, item_counts) = counts(m);
        Ok(Stack {
            spec,
            models,
            mu,
            weights,
            support,
            scale,
            user_counts,
            item_counts,
            stacking,
        })
    }

    /// The combined, unclipped estimate from each model's estimate `p` (centred here, so
    /// overwritten) and the rating counts of the user and the item; `x` is scratch of the
    /// combiner's width.
    fn combine(&self, p: &mut [f64], nu: usize, ni: usize, x: &mut [f64]) -> f64 {
        p.iter_mut().for_each(|v| *v -= self.mu);
        row(
            x,
            p,
            self.support.feature(nu, self.support.user),
            self.support.feature(ni, self.support.item),
            self.spec.support,
        );
        self.mu + x.iter().zip(&self.weights).map(|(a, b)| a * b).sum::<f64>()
    }

    fn user_count(&self, u: u32) -> usize {
        self.user_counts.get(u as usize).copied().unwrap_or(0) as usize
    }

    fn item_count(&self, i: u32) -> usize {
        self.item_counts.get(i as usize).copied().unwrap_or(0) as usize
    }
}

impl RatingPredictor for Stack {
    fn predict(&self, u: u32, i: u32) -> f32 {
        let mut p: Vec<f64> = self
            .models
            .iter()
            .map(|m| {
                m.as_rating_predictor()
                    .map_or(self.mu, |r| r.predict(u, i) as f64)
            })
            .collect();
        let mut x = vec![0f64; self.spec.width()];
        let est = self.combine(&mut p, self.user_count(u), self.item_count(i), &mut x);
        self.scale.clip(est as f32)
    }
}

impl Recommender for Stack {
    fn n_items(&self) -> usize {
        self.models.first().map_or(0, |m| m.n_items())
    }

    /// Each model's scores of every item (their rating estimates) combined item by item; an
    /// anonymous history counts as the user's ratings.
    fn score(&self, query: &Query<'_>, out: &mut [f32]) -> Result<()> {
        let n = out.len();
        let mut all = vec![0f32; n * self.models.len()];
        for (m, buf) in self.models.iter().zip(all.chunks_exact_mut(n.max(1))) {
            m.score(query, buf)?;
        }
        let nu = if query.history.is_empty() {
            query.user.map_or(0, |u| self.user_count(u))
        } else {
            query.history.len()
        };
        let mut p = vec![0f64; self.models.len()];
        let mut x = vec![0f64; self.spec.width()];
        for (i, o) in out.iter_mut().enumerate() {
            for (j, v) in p.iter_mut().enumerate() {
                *v = all[j * n + i] as f64;
            }
            *o = self.combine(&mut p, nu, self.item_count(i as u32), &mut x) as f32;
        }
        Ok(())
    }

    fn as_rating_predictor(&self) -> Option<&dyn RatingPredictor> {
        Some(self)
    }
}

fn rater<'a>(model: &'a dyn Model, name: &str) -> Result<&'a dyn RatingPredictor> {
    model
        .as_rating_predictor()
        .ok_or_else(|| Error::param("stack", format!("model {name:?} does not predict ratings")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reco_models::ModelSpec;

    fn named(name: &str, json: &str) -> NamedModel {
        NamedModel {
            name: name.into(),
            spec: ModelSpec::from_json(json).unwrap(),
        }
    }

    /// The combiner solves least squares: exact linear data give back their weights.
    #[test]
    fn ridge_recovers_exact_weights() {
        let want = [0.5, 2.0, -1.0];
        let mut x = Vec::new();
        let mut y = Vec::new();
        for r in 0..50 {
            let row = [1.0, (r as f64 * 0.37).sin(), (r as f64 * 0.11).cos() * 2.0];
            y.push(row.iter().zip(&want).map(|(a, b)| a * b).sum());
            x.extend(row);
        }
        let w = ridge(&x, &y, 3, 0.0).unwrap();
        for (a, b) in w.iter().zip(want) {
            assert!((a - b).abs() < 1e-6, "{w:?}");
        }
        // Ridge shrinks every weight but the intercept.
        let shrunk = ridge(&x, &y, 3, 10.0).unwrap();
        assert!(shrunk[1].abs() < 2.0 && shrunk[2].abs() < 1.0, "{shrunk:?}");
    }

    /// Out-of-fold predictions come from models that never saw the rating: a model that
    /// memorises its training ratings is much worse out of fold than on them. The combiner, which
    /// includes each model alone, is at least as good as the best of them on those predictions,
    /// and the stack's ratings equal the combination of the refitted models' ratings.
    #[test]
    fn out_of_fold_predictions_do_not_leak_and_the_combiner_beats_each_model() {
        let data = reco_core::synth::structured().unwrap();
        let memorise =
            r#"{"model":"svd","factors":60,"epochs":60,"regularization":0.0,"learning_rate":0.02}"#;
        let spec = StackSpec {
            models: vec![
                named("svd", memorise),
                named("baseline", r#"{"model":"baseline"}"#),
            ],
            folds: 3,
            regularization: 1e-3,
            support: true,
        };
        let opts = FitOptions {
            seed: 9,
            ..Default::default()
        };
        let s = Stack::fit(spec, &data, &opts).unwrap();
        let m = &data.interactions;
        let svd = s.models[0].as_rating_predictor().unwrap();
        let train_se: f64 = m
            .iter()
            .map(|(u, i, r)| (svd.predict(u, i) as f64 - r as f64).powi(2))
            .sum();
        let train_rmse = (train_se / m.nnz() as f64).sqrt();
        let st = &s.stacking;
        assert!(
            st.alone[0] > 2.0 * train_rmse,
            "out of fold {:.3}, on training {train_rmse:.3}",
            st.alone[0]
        );
        let best = st.alone.iter().copied().fold(f64::INFINITY, f64::min);
        assert!(st.stack <= best + 1e-6, "{st:?}");
        // predict = clip(μ + w · row(p − μ, counts)), by hand for one rating.
        let (u, i) = (5u32, m.user_items(5)[0]);
        let p: Vec<f64> = s
            .models
            .iter()
            .map(|x| x.as_rating_predictor().unwrap().predict(u, i) as f64 - s.mu)
            .collect();
        let au = ((m.user_len(u) as f64).ln_1p() - s.support.user.0) / s.support.user.1;
        let ai = ((m.item_len(i) as f64).ln_1p() - s.support.item.0) / s.support.item.1;
        let w = &s.weights;
        let by_hand = s.mu
            + w[0]
            + w[1] * p[0]
            + w[2] * p[1]
            + w[3] * au
            + w[4] * ai
            + w[5] * p[0] * au
            + w[6] * p[0] * ai
            + w[7] * p[1] * au
            + w[8] * p[1] * ai;
        let by_hand = by_hand.clamp(s.scale.min as f64, s.scale.max as f64);
        assert!((s.predict(u, i) as f64 - by_hand).abs() < 1e-4);
    }

    #[test]
    fn specifications_are_checked() {
        let base = StackSpec {
            models: vec![named("b", r#"{"model":"baseline"}"#)],
            folds: 5,
            regularization: 1e-3,
            support: true,
        };
        assert!(base.validate().is_ok());
        let bad = |s: StackSpec, word: &str| {
            let e = s.validate().unwrap_err().to_string();
            assert!(e.contains(word), "{e}");
        };
        bad(
            StackSpec {
                folds: 1,
                ..base.clone()
            },
            "folds",
        );
        bad(
            StackSpec {
                regularization: f64::NAN,
                ..base.clone()
            },
            "regularization",
        );
        bad(
            StackSpec {
                models: vec![named("p", r#"{"model":"popularity"}"#)],
                ..base.clone()
            },
            "does not predict ratings",
        );
        bad(
            StackSpec {
                models: vec![
                    named("b", r#"{"model":"baseline"}"#),
                    named("b", r#"{"model":"svd"}"#),
                ],
                ..base
            },
            "two models",
        );
    }
}
