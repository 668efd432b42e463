//! Factorization machines (Rendle 2010), order 2:
//! ŷ(x) = w₀ + Σ_j w_j x_j + Σ_{j<l} ⟨v_j, v_l⟩ x_j x_l, with the pairwise term computed in
//! O(k·n) as ½ Σ_f [(Σ_j v_jf x_j)² − Σ_j v_jf² x_j²].
//!
//! An example's features x are the user's (an identity feature plus metadata such as age band or
//! occupation) followed by the item's (identity, genres, binned year …), each side normalised to
//! sum 1 (see [`crate::featurize`]). `task = "regression"` fits ratings by squared loss;
//! `task = "classification"` fits clicks by logistic loss, every interaction a positive and
//! `negatives` uniformly drawn items the user has not interacted with as negatives. Training is
//! SGD or AdaGrad over the shuffled examples, sequential and reproducible with the seed.
//!
//! Because x splits into a user part and an item part, the prediction splits too:
//! ŷ(u, i) = w₀ + c_u + c_i + s_u · s_i, where s_u = Σ_{j ∈ u} v_j x_j and c_u = Σ w_j x_j plus
//! the pairwise term within the user's own features (likewise for items). The fitted model keeps
//! exactly these vectors in the shared factor store, so it ranks, predicts, exposes embeddings
//! and finds similar items like every MF model, and places users and items without history by
//! their metadata.

use crate::spec::{CheckState, Shape};
use rand::seq::SliceRandom;
use rand::Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use reco_core::model::{FitOptions, Query, RatingPredictor, Recommender};
use reco_core::{Dataset, Error, Result};

use crate::bias::Scale;
use crate::featurize::{FeatureRows, FieldList};
use crate::mf::{
    best_or, check_common, dot, end_of_pass, factor_capabilities, rng, sigmoid, EarlyStop, Factors,
    Positives,
};
use crate::spec::impl_model;

/// What the machine predicts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FmTask {
    /// Ratings, by squared loss.
    #[default]
    Regression,
    /// Interactions against sampled non-interactions, by logistic loss.
    Classification,
}

/// The update rule.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FmOptimizer {
    /// Plain SGD with a constant learning rate.
    Sgd,
    /// Per-parameter AdaGrad (accumulators start at 1).
    #[default]
    Adagrad,
}

/// Parameters of a factorization machine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FmParams {
    /// Size of the pairwise factors v_j.
    pub factors: usize,
    /// Passes over the examples.
    pub epochs: usize,
    /// Regression (ratings) or classification (clicks).
    pub task: FmTask,
    /// SGD or AdaGrad.
    pub optimizer: FmOptimizer,
    /// Learning rate.
    pub learning_rate: f64,
    /// L2 penalty on the linear weights w_j.
    pub regularization_w: f64,
    /// L2 penalty on the factors v_j.
    pub regularization_v: f64,
    /// Standard deviation of the initial factors.
    pub init_std: f64,
    /// Classification: sampled negatives per positive.
    pub negatives: usize,
    /// Give each user seen in training an identity feature.
    pub user_identity: bool,
    /// Give each item seen in training an identity feature.
    pub item_identity: bool,
    /// User metadata fields used as features: `["*"]` all, `[]` none.
    pub user_fields: FieldList,
    /// Item metadata fields used as features: `["*"]` all, `[]` none.
    pub item_fields: FieldList,
    /// Quantile bins for numeric fields.
    pub numeric_bins: usize,
    /// With validation data: stop after this many epochs without a better validation score
    /// (RMSE for regression, recall@10 for classification) and keep the best epoch (0: off).
    pub patience: usize,
}

impl Default for FmParams {
    fn default() -> Self {
        FmParams {
            factors: 16,
            epochs: 20,
            task: FmTask::Regression,
            optimizer: FmOptimizer::Adagrad,
            learning_rate: 0.05,
            regularization_w: 0.001,
            regularization_v: 0.001,
            init_std: 0.05,
            negatives: 4,
            user_identity: true,
            item_identity: true,
            user_fields: vec!["*".into()],
            item_fields: vec!["*".into()],
            numeric_bins: 10,
            patience: 3,
        }
    }
}

impl FmParams {
    /// Checks the parameters, one error per broken rule.
    pub fn validate(&self) -> Result<()> {
        check_common(
            self.factors,
            self.epochs,
            &[
                ("learning_rate", self.learning_rate),
                ("init_std", self.init_std),
            ],
            &[
                ("regularization_w", self.regularization_w),
                ("regularization_v", self.regularization_v),
            ],
        )?;
        if self.negatives == 0 {
            return Err(Error::param("negatives", "must be at least 1"));
        }
        if self.numeric_bins == 0 {
            return Err(Error::param("numeric_bins", "must be at least 1"));
        }
        Ok(())
    }
}

/// Appends the features of entity `e` of `rows`, shifted by `offset` into the machine's
/// feature space (user features first, then item features).
fn push_features(x: &mut Vec<(u32, f32)>, rows: &FeatureRows, e: u32, offset: u32) {
    let (idx, val) = rows.row(e);
    x.extend(idx.iter().map(|&j| j + offset).zip(val.iter().copied()));
}

/// The parameters being trained: w₀, w, v (row-major, k per feature), and AdaGrad accumulators.
struct Machine {
    k: usize,
    w0: f32,
    w: Vec<f32>,
    v: Vec<f32>,
    gw: Vec<f32>,
    gv: Vec<f32>,
}

impl Machine {
    /// ŷ(x), leaving Σ_j v_j x_j in `s`.
    fn predict(&self, x: &[(u32, f32)], s: &mut [f32]) -> f32 {
        s.iter_mut().for_each(|a| *a = 0.0);
        let (mut lin, mut sq) = (self.w0, 0f32);
        for &(j, xj) in x {
            let j = j as usize;
            lin += self.w[j] * xj;
            for (a, &vf) in s.iter_mut().zip(&self.v[j * self.k..(j + 1) * self.k]) {
                let t = vf * xj;
                *a += t;
                sq += t * t;
            }
        }
        lin + 0.5 * (dot(s, s) - sq)
    }

    /// One step along dL/dŷ = `g` for example `x`, whose Σ v_j x_j is in `s` (before the step).
    fn step(&mut self, x: &[(u32, f32)], s: &[f32], g: f32, p: &FmParams) {
        let (learning_rate, rw, rv) = (
            p.learning_rate as f32,
            p.regularization_w as f32,
            p.regularization_v as f32,
        );
        let ada = p.optimizer == FmOptimizer::Adagrad;
        let k = self.k;
        self.w0 -= learning_rate * g;
        for &(j, xj) in x {
            let j = j as usize;
            let d = g * xj + rw * self.w[j];
            if ada {
                self.w[j] -= learning_rate / self.gw[j].sqrt() * d;
                self.gw[j] += d * d;
            } else {
                self.w[j] -= learning_rate * d;
            }
            let v = &mut self.v[j * k..(j + 1) * k];
            let gv = &mut self.gv[if ada { j * k..(j + 1) * k } else { 0..0 }];
            for f in 0..k {
                let d = g * xj * (s[f] - v[f] * xj) + rv * v[f];
                if ada {
                    v[f] -= learning_rate / gv[f].sqrt() * d;
                    gv[f] += d * d;
                } else {
                    v[f] -= learning_rate * d;
                }
            }
        }
    }

    /// The split form as a factor store: users [s_u, 1] with bias c_u, items [s_i, c_i], μ = w₀.
    fn factors(&self, urows: &FeatureRows, irows: &FeatureRows) -> Factors {
        let k = self.k;
        let mut x = Vec::new();
        let mut side = |rows: &FeatureRows, offset: u32, e: u32, out: &mut [f32]| -> f32 {
            x.clear();
            push_features(&mut x, rows, e, offset);
            // ŷ of this side alone minus w₀ is c (its linear and within-side pairwise terms).
            self.predict(&x, &mut out[..k]) - self.w0
        };
        let mut f = Factors {
            k: k + 1,
            users: vec![0.0; urows.len() * (k + 1)],
            items: vec![0.0; irows.len() * (k + 1)],
            user_bias: vec![0.0; urows.len()],
            item_bias: Vec::new(),
            mu: self.w0,
        };
        for u in 0..urows.len() {
            let row = &mut f.users[u * (k + 1)..(u + 1) * (k + 1)];
            f.user_bias[u] = side(urows, 0, u as u32, row);
            row[k] = 1.0;
        }
        let offset = urows.n_features as u32;
        for i in 0..irows.len() {
            let row = &mut f.items[i * (k + 1)..(i + 1) * (k + 1)];
            row[k] = side(irows, offset, i as u32, row);
        }
        f
    }
}

/// A fitted factorization machine in split form.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Fm {
    params: FmParams,
    f: Factors,
    scale: Scale,
}

impl Fm {
    /// Trains by SGD or AdaGrad over shuffled examples.
    pub fn fit(p: &FmParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<Self> {
        p.validate()?;
        let m = &data.interactions;
        let ni = m.n_items();
        if m.nnz() == 0 {
            return Err(Error::data("no interactions to train on"));
        }
        let urows = FeatureRows::of_users(data, p.user_identity, &p.user_fields, p.numeric_bins)?;
        let irows = FeatureRows::of_items(data, p.item_identity, &p.item_fields, p.numeric_bins)?;
        let n_features = urows.n_features + irows.n_features;
        let k = p.factors;
        let normal =
            Normal::new(0.0, p.init_std).map_err(|e| Error::param("init_std", e.to_string()))?;
        let mut init = rng(opts.seed, 51);
        let regression = p.task == FmTask::Regression;
        let mean = m.values().iter().map(|&v| f64::from(v)).sum::<f64>() / m.nnz() as f64;
        let ada = p.optimizer == FmOptimizer::Adagrad;
        let mut fm = Machine {
            k,
            w0: if regression { mean as f32 } else { 0.0 },
            w: vec![0.0; n_features],
            v: (0..n_features * k)
                .map(|_| normal.sample(&mut init) as f32)
                .collect(),
            gw: if ada {
                vec![1.0; n_features]
            } else {
                Vec::new()
            },
            gv: if ada {
                vec![1.0; n_features * k]
            } else {
                Vec::new()
            },
        };
        let mut order: Vec<(u32, u32, f32)> = m.iter().collect();
        let mut r = rng(opts.seed, 52);
        let mut x: Vec<(u32, f32)> = Vec::new();
        let mut s = vec![0f32; k];
        let offset = urows.n_features as u32;
        let build = |x: &mut Vec<(u32, f32)>, u: u32, i: u32| {
            x.clear();
            push_features(x, &urows, u, 0);
            push_features(x, &irows, i, offset);
        };
        let mut early = if regression {
            EarlyStop::rmse_split_form(opts.validation, p.patience)
        } else {
            EarlyStop::recall(m, opts.validation, p.patience, opts.seed)
        };
        let positives = Positives::new(m);
        for epoch in 0..p.epochs {
            order.shuffle(&mut r);
            let mut total = 0f64;
            let mut count = 0usize;
            for &(u, i, y) in &order {
                build(&mut x, u, i);
                let yhat = fm.predict(&x, &mut s);
                if regression {
                    let g = yhat - y;
                    total += f64::from(g * g);
                    count += 1;
                    fm.step(&x, &s, g, p);
                    continue;
                }
                let prob = sigmoid(yhat);
                total -= f64::from(prob.max(1e-12).ln());
                count += 1;
                fm.step(&x, &s, prob - 1.0, p);
                for _ in 0..p.negatives {
                    let j = r.gen_range(0..ni as u32);
                    if positives.has(u, j) {
                        continue;
                    }
                    build(&mut x, u, j);
                    let prob = sigmoid(fm.predict(&x, &mut s));
                    total -= f64::from((1.0 - prob).max(1e-12).ln());
                    count += 1;
                    fm.step(&x, &s, prob, p);
                }
            }
            let mut loss = total / count.max(1) as f64;
            if regression {
                loss = loss.sqrt();
            }
            let pass = end_of_pass(
                &mut early,
                epoch,
                p.epochs,
                "epoch",
                || fm.factors(&urows, &irows),
                Some(loss),
                opts,
            )?;
            if pass.stop {
                break;
            }
        }
        let f = best_or(early, || fm.factors(&urows, &irows));
        f.check_finite("fm")?;
        Ok(Fm {
            params: p.clone(),
            f,
            scale: Scale::of(m),
        })
    }

    /// ŷ(u, i) from the split form: w₀ + c_u + s_u · s_i + c_i (the user part is 0 for an index
    /// the model has never seen).
    fn raw(&self, u: u32, i: u32) -> f32 {
        let f = &self.f;
        let mut y = f.mu;
        if (u as usize) < f.n_users() {
            y += f.user_bias[u as usize] + dot(f.user(u), f.item(i));
        } else {
            y += f.item(i)[f.k - 1];
        }
        y
    }
}

impl RatingPredictor for Fm {
    fn predict(&self, u: u32, i: u32) -> f32 {
        if i as usize >= self.f.n_items() {
            return self.scale.clip(self.f.mu);
        }
        self.scale.clip(self.raw(u, i))
    }
}

impl Recommender for Fm {
    fn n_items(&self) -> usize {
        self.f.n_items()
    }
    fn score(&self, q: &Query<'_>, out: &mut [f32]) -> Result<()> {
        let k = self.params.factors;
        let f = &self.f;
        // An anonymous history is folded in by ridge regression on the item vectors.
        let (mut p, _) = f.query_user(q, 0.1, |i, v| match self.params.task {
            FmTask::Regression => v - f.mu - f.item(i)[k],
            FmTask::Classification => 1.0,
        })?;
        p[k] = 1.0;
        f.score_vector(&p, false, out);
        Ok(())
    }
    fn as_rating_predictor(&self) -> Option<&dyn RatingPredictor> {
        (self.params.task == FmTask::Regression).then_some(self as &dyn RatingPredictor)
    }
    factor_capabilities!();
}

impl_model!(Fm);

impl crate::spec::Kind for Fm {
    const NAME: &'static str = "fm";
    const SUMMARY: &'static str =
        "Factorization machine (Rendle 2010) over user and item features, for ratings or clicks.";
    const RENAMED: &'static [(&'static str, &'static str)] = &[
        ("lr", "learning_rate"),
        ("reg_w", "regularization_w"),
        ("reg_v", "regularization_v"),
    ];
    type Params = FmParams;
    type Fitted = Fm;

    fn validate(p: &FmParams) -> Result<()> {
        p.validate()
    }

    fn footprint(p: &FmParams, shape: &crate::spec::Shape) -> crate::spec::Footprint {
        crate::spec::Footprint::factors(shape, p.factors, 4.0)
    }
    fn capabilities(p: &FmParams) -> crate::spec::Capabilities {
        use crate::spec::Capabilities;
        Capabilities {
            ranks: p.task == FmTask::Classification,
            rates: p.task == FmTask::Regression,
            similar_items: true,
            embeddings: true,
            ..Default::default()
        }
    }

    fn fit(p: &FmParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<Fm> {
        Fm::fit(p, data, opts)
    }

    fn restore(p: &FmParams, state: &[u8], shape: &Shape) -> Result<Fm> {
        crate::spec::restore_state(p, state, shape, |m: &Fm| &m.params)
    }

    fn examples() -> Vec<FmParams> {
        [FmTask::Classification, FmTask::Regression]
            .map(|task| FmParams {
                task,
                epochs: 8,
                ..Default::default()
            })
            .to_vec()
    }
}

impl CheckState for Fm {
    fn check_state(&self, shape: &Shape) -> std::result::Result<(), String> {
        self.f.check(shape)?;
        // Scores use a constant slot after the `factors` learned ones.
        self.f.check_width(self.params.factors, 1)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use rand::Rng;

    fn machine(n: usize, k: usize, seed: u64) -> Machine {
        let mut r = rng(seed, 0);
        Machine {
            k,
            w0: r.gen_range(-1.0..1.0),
            w: (0..n).map(|_| r.gen_range(-1.0..1.0)).collect(),
            v: (0..n * k).map(|_| r.gen_range(-1.0..1.0)).collect(),
            gw: vec![1.0; n],
            gv: vec![1.0; n * k],
        }
    }

    /// The definition: w₀ + Σ w_j x_j + Σ_{j<l} ⟨v_j, v_l⟩ x_j x_l, in O(k n²).
    fn naive(m: &Machine, x: &[(u32, f32)]) -> f32 {
        let mut y = m.w0;
        for (a, &(j, xj)) in x.iter().enumerate() {
            y += m.w[j as usize] * xj;
            for &(l, xl) in &x[a + 1..] {
                let vj = &m.v[j as usize * m.k..(j as usize + 1) * m.k];
                let vl = &m.v[l as usize * m.k..(l as usize + 1) * m.k];
                y += vj.iter().zip(vl).map(|(a, b)| a * b).sum::<f32>() * xj * xl;
            }
        }
        y
    }

    proptest! {
        #[test]
        fn linear_time_identity_equals_the_pairwise_sum(
            seed in 0u64..1000,
            feats in proptest::collection::btree_map(0u32..30, -2.0f32..2.0, 1..8),
        ) {
            let m = machine(30, 5, seed);
            let x: Vec<(u32, f32)> = feats.into_iter().collect();
            let mut s = vec![0.0; 5];
            let fast = m.predict(&x, &mut s);
            prop_assert!((fast - naive(&m, &x)).abs() < 1e-3 * (1.0 + fast.abs()));
        }
    }

    #[test]
    fn sgd_step_follows_the_analytic_gradient() {
        // Squared loss ½(ŷ − y)²: the step must match −learning_rate · dL/dθ computed by finite differences.
        let p = FmParams {
            optimizer: FmOptimizer::Sgd,
            learning_rate: 1e-3,
            regularization_w: 0.0,
            regularization_v: 0.0,
            ..Default::default()
        };
        let x = [(1u32, 0.5f32), (4, 0.5), (7, 1.0)];
        let base = machine(8, 3, 9);
        let y = 2.0;
        let loss = |m: &Machine| {
            let mut s = vec![0.0; 3];
            0.5 * (m.predict(&x, &mut s) - y).powi(2)
        };
        let mut stepped = machine(8, 3, 9);
        let mut s = vec![0.0; 3];
        let g = stepped.predict(&x, &mut s) - y;
        stepped.step(&x, &s, g, &p);
        let h = 1e-3f32;
        for t in 0..base.v.len() {
            let mut plus = machine(8, 3, 9);
            plus.v[t] += h;
            let mut minus = machine(8, 3, 9);
            minus.v[t] -= h;
            let numeric = (loss(&plus) - loss(&minus)) / (2.0 * h);
            let moved = (base.v[t] - stepped.v[t]) / 1e-3;
            assert!(
                (moved - numeric).abs() < 2e-2 * (1.0 + numeric.abs()),
                "v[{t}]: step {moved}, numeric {numeric}"
            );
        }
        for &(j, xj) in &x {
            let moved = (base.w[j as usize] - stepped.w[j as usize]) / 1e-3;
            assert!((moved - g * xj).abs() < 1e-3);
        }
    }

    #[test]
    fn split_form_equals_the_full_prediction() {
        // Two users and three items with identity features plus one shared item feature.
        let urows = FeatureRows::build(2, &[true, true], None, &[], 1).unwrap();
        let mut irows = FeatureRows::build(3, &[true, true, true], None, &[], 1).unwrap();
        irows.n_features = 4;
        irows.idx = vec![0, 3, 1, 3, 2];
        irows.val = vec![0.5, 0.5, 0.5, 0.5, 1.0];
        irows.ptr = vec![0, 2, 4, 5];
        let m = machine(2 + 4, 3, 5);
        let f = m.factors(&urows, &irows);
        for u in 0..2u32 {
            for i in 0..3u32 {
                let (ii, iv) = irows.row(i);
                let mut x = vec![(u, 1.0)];
                x.extend(ii.iter().map(|&j| j + 2).zip(iv.iter().copied()));
                let mut s = vec![0.0; 3];
                let full = m.predict(&x, &mut s);
                let split = f.mu + f.user_bias[u as usize] + dot(f.user(u), f.item(i));
                assert!((full - split).abs() < 1e-5, "u{u} i{i}: {full} vs {split}");
            }
        }
    }

    #[test]
    fn invalid_parameters_are_rejected_one_rule_at_a_time() {
        let bad = |p: FmParams| p.validate().unwrap_err().to_string();
        assert!(bad(FmParams {
            factors: 0,
            ..Default::default()
        })
        .contains("factors"));
        assert!(bad(FmParams {
            learning_rate: -1.0,
            ..Default::default()
        })
        .contains("learning_rate"));
        assert!(bad(FmParams {
            regularization_v: -1.0,
            ..Default::default()
        })
        .contains("regularization_v"));
        assert!(bad(FmParams {
            negatives: 0,
            ..Default::default()
        })
        .contains("negatives"));
    }
}
