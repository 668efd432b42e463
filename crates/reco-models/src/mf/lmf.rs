//! Logistic matrix factorisation (Johnson 2014): p(u likes i) = σ(x_u · y_i + b_u + b_i),
//! trained by alternating AdaGrad ascent over users then items. For a row, observed pairs
//! contribute c·(1 − σ)·y with confidence c = α·value, and sampled unobserved pairs −σ·y;
//! negatives are drawn from the interaction list (so in proportion to popularity), at most
//! `negatives` per observed pair and `max_negatives` per row, as implicit does (its cap is
//! factors + 2). Rows are updated in parallel, each from its own seeded sample, so results do
//! not depend on the thread count. Defaults are implicit's (30 factors, 30 epochs, learning_rate 1.0,
//! regularization 0.6, factors from N(0, 1)).

use crate::spec::{CheckState, Shape};
use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use reco_core::model::{FitOptions, Query, Recommender};
use reco_core::{Dataset, Error, Interactions, Result};

use super::{best_or, end_of_pass, EarlyStop};
use super::{check_common, dot, factor_capabilities, rng, sigmoid, Factors};
use crate::spec::impl_model;

/// Parameters of logistic MF.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LmfParams {
    /// Number of factors.
    pub factors: usize,
    /// Alternations (a user pass and an item pass each).
    pub epochs: usize,
    /// AdaGrad learning rate.
    pub learning_rate: f64,
    /// L2 regularisation.
    pub regularization: f64,
    /// Confidence scale: c = α·value on observed pairs.
    pub alpha: f64,
    /// Sampled unobserved pairs per observed one.
    pub negatives: usize,
    /// At most this many sampled negatives per row and pass.
    pub max_negatives: usize,
    /// With validation data: stop after this many epochs without a better validation recall@10
    /// and keep the best epoch's factors (0: off).
    pub patience: usize,
}

impl Default for LmfParams {
    fn default() -> Self {
        LmfParams {
            factors: 30,
            epochs: 30,
            learning_rate: 1.0,
            regularization: 0.6,
            alpha: 1.0,
            negatives: 30,
            max_negatives: 32,
            patience: 3,
        }
    }
}

/// One AdaGrad ascent step for every row of `x` (row-major, `kk` wide: factors, then the
/// own-bias slot and the constant slot) against the fixed side `y`.
#[allow(clippy::too_many_arguments)]
fn half_step(
    x: &mut [f32],
    g2: &mut [f32],
    y: &[f32],
    m: &Interactions,
    p: &LmfParams,
    seed: u64,
    stream: u64,
    kk: usize,
    fixed: usize,
) {
    let (learning_rate, regularization, alpha) = (
        p.learning_rate as f32,
        p.regularization as f32,
        p.alpha as f32,
    );
    let all = m.indices();
    x.par_chunks_mut(kk)
        .zip(g2.par_chunks_mut(kk))
        .enumerate()
        .for_each(|(row, (xu, gu))| {
            let (pos, vals) = (m.user_items(row as u32), m.user_values(row as u32));
            if pos.is_empty() || all.is_empty() {
                return;
            }
            let mut r = rng(
                seed,
                stream.wrapping_mul(1_000_003).wrapping_add(row as u64),
            );
            let mut grad = vec![0f32; kk];
            for (&i, &v) in pos.iter().zip(vals) {
                let yi = &y[i as usize * kk..(i as usize + 1) * kk];
                let c = alpha * v;
                let w = c * (1.0 - sigmoid(dot(xu, yi)));
                for (g, &a) in grad.iter_mut().zip(yi) {
                    *g += w * a;
                }
            }
            for _ in 0..(pos.len() * p.negatives).min(p.max_negatives) {
                let i = all[r.gen_range(0..all.len())] as usize;
                let yi = &y[i * kk..(i + 1) * kk];
                let s = sigmoid(dot(xu, yi));
                for (g, &a) in grad.iter_mut().zip(yi) {
                    *g -= s * a;
                }
            }
            for c in 0..kk {
                if c == fixed {
                    continue;
                }
                let g = grad[c] - regularization * xu[c];
                gu[c] += g * g;
                xu[c] += learning_rate / (1e-6 + gu[c]).sqrt() * g;
            }
        });
}

/// A fitted logistic MF model. Vectors have k + 2 slots: users [x, 1, b_u], items [y, b_i, 1],
/// so x·y over all slots is x·y + b_i + b_u.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Lmf {
    params: LmfParams,
    f: Factors,
}

impl LmfParams {
    /// Checks every rule, one error per broken rule.
    pub fn validate(&self) -> Result<()> {
        check_common(
            self.factors,
            self.epochs,
            &[("learning_rate", self.learning_rate)],
            &[
                ("regularization", self.regularization),
                ("alpha", self.alpha),
            ],
        )?;
        if self.negatives == 0 {
            return Err(Error::param("negatives", "must be at least 1"));
        }
        if self.max_negatives == 0 {
            return Err(Error::param("max_negatives", "must be at least 1"));
        }
        Ok(())
    }
}

impl Lmf {
    /// Alternates AdaGrad steps over users and items.
    pub fn fit(p: &LmfParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<Self> {
        p.validate()?;
        let m = &data.interactions;
        let mt = m.transpose();
        let k = p.factors;
        let kk = k + 2;
        let mut f = Factors::normal(m.n_users(), m.n_items(), kk, 0.0, 1.0, false, opts.seed)?;
        // Slot k: the user's constant 1 against the item bias; slot k + 1: the user bias
        // against the item's constant 1. Rows without data start at zero.
        for u in 0..m.n_users() {
            let row = &mut f.users[u * kk..(u + 1) * kk];
            if m.user_len(u as u32) == 0 {
                row.iter_mut().for_each(|v| *v = 0.0);
            }
            row[k] = 1.0;
        }
        for i in 0..m.n_items() {
            let row = &mut f.items[i * kk..(i + 1) * kk];
            if m.item_len(i as u32) == 0 {
                row.iter_mut().for_each(|v| *v = 0.0);
            }
            row[k + 1] = 1.0;
        }
        let (mut gu, mut gi) = (vec![0f32; f.users.len()], vec![0f32; f.items.len()]);
        let mut early = EarlyStop::recall(m, opts.validation, p.patience, opts.seed);
        for epoch in 0..p.epochs {
            let s = 2 * epoch as u64;
            half_step(&mut f.users, &mut gu, &f.items, m, p, opts.seed, s, kk, k);
            half_step(
                &mut f.items,
                &mut gi,
                &f.users,
                &mt,
                p,
                opts.seed,
                s + 1,
                kk,
                k + 1,
            );
            if end_of_pass(&mut early, epoch, p.epochs, "epoch", || &f, None, opts)?.stop {
                break;
            }
        }
        let f = best_or(early, || f);
        f.check_finite("lmf")?;
        Ok(Lmf {
            params: p.clone(),
            f,
        })
    }
}

impl Recommender for Lmf {
    fn n_items(&self) -> usize {
        self.f.n_items()
    }
    fn score(&self, q: &Query<'_>, out: &mut [f32]) -> Result<()> {
        let k = self.params.factors;
        let (mut p, _) = self
            .f
            .query_user(q, self.params.regularization as f32, |_, _| 1.0)?;
        // The constant slot meets the item bias, whoever asks.
        p[k] = 1.0;
        // σ is monotone, so the logit ranks like the probability.
        self.f.score_vector(&p, false, out);
        Ok(())
    }
    fn score_users(&self, users: &[u32], out: &mut [f32]) -> Result<()> {
        let f = &self.f;
        f.score_users(users, out, false, |u, p| {
            f.copy_user(u, p);
            if let Some(x) = p.get_mut(self.params.factors) {
                *x = 1.0;
            }
            0.0
        })
    }
    factor_capabilities!();
}

impl_model!(Lmf);

impl crate::spec::Kind for Lmf {
    const NAME: &'static str = "lmf";
    const SUMMARY: &'static str = "Logistic MF (Johnson 2014).";
    const RENAMED: &'static [(&'static str, &'static str)] = &[
        ("neg_prop", "negatives"),
        ("lr", "learning_rate"),
        ("reg", "regularization"),
    ];
    type Params = LmfParams;
    type Fitted = Lmf;

    fn validate(p: &LmfParams) -> Result<()> {
        p.validate()
    }

    fn footprint(p: &LmfParams, shape: &crate::spec::Shape) -> crate::spec::Footprint {
        crate::spec::Footprint::factors(shape, p.factors, 4.0)
    }
    fn capabilities(_: &LmfParams) -> crate::spec::Capabilities {
        use crate::spec::Capabilities;
        Capabilities {
            ranks: true,
            similar_items: true,
            embeddings: true,
            ..Default::default()
        }
    }

    fn fit(p: &LmfParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<Lmf> {
        Lmf::fit(p, data, opts)
    }

    fn restore(p: &LmfParams, state: &[u8], shape: &Shape) -> Result<Lmf> {
        crate::spec::restore_state(p, state, shape, |m: &Lmf| &m.params)
    }

    fn examples() -> Vec<LmfParams> {
        vec![LmfParams::default()]
    }
}

impl CheckState for Lmf {
    fn check_state(&self, shape: &Shape) -> std::result::Result<(), String> {
        self.f.check(shape)?;
        // Two slots follow the `factors` learned ones: the constant and the user bias.
        self.f.check_width(self.params.factors, 2)?;
        Ok(())
    }
}
