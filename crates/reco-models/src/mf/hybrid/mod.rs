//! Feature-based hybrid MF with LightFM's semantics: a user (item) is represented by the sum of
//! the embeddings and biases of its features, r̂_ui = e_u · e_i + b_u + b_i, where
//! e_u = Σ_f w_f v_f over the user's features (an identity feature plus metadata such as age band
//! or occupation; genres or year for items), rows normalised to weights summing to 1.
//!
//! With identity features only this is plain MF trained with a ranking loss (`loss = "warp"` is
//! LightFM's WARP model); with metadata it recommends for users and items that training never
//! saw, from their features alone. Identity features are given only to users and items that have
//! training interactions, so a cold item is placed by its genres rather than by an untrained
//! random vector.
//!
//! Losses, each an SGD step per sampled example with per-coordinate AdaGrad (accumulators start
//! at 1, as LightFM's):
//! - `warp` (Weston et al. 2011): for a positive (u, i), draw items until one scores above
//!   s(u, i) − 1 (at most `max_sampled`, skipping the user's positives); the step is weighted by
//!   ln⌊(n − 1)/draws⌋, an estimate of the positive's rank, capped at 10.
//! - `kos-warp`: for the user of each positive, draw `kos_n` of the user's positives, take the
//!   `kos_k`-th best scored as the positive, then as WARP.
//! - `bpr`: per positive, a negative drawn from the interactions (∝ popularity, redrawn while
//!   the user has it), loss −ln σ(s_ui − s_uj).
//! - `bce`: pointwise binary cross-entropy on σ(s_ui), the positive with label 1 and `negatives`
//!   uniformly drawn non-positives with label 0 (binary-label CF with a sigmoid).
//!
//! Parameters live in relaxed atomics so that `parallel = true` can train lock-free in the
//! Hogwild style (as LightFM's `num_threads`): threads take disjoint slices of the shuffled
//! examples and may overwrite each other's updates to a shared item, so parallel results vary
//! from run to run. `parallel = false` (the default, like LightFM's one thread) is exactly
//! reproducible with the seed.

use crate::spec::{CheckState, Shape};
use rand::seq::SliceRandom;
use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use reco_core::model::{FitOptions, Query, Recommender};
use reco_core::{Dataset, Error, Interactions, Result};

use super::{
    best_or, check_common, dot, end_of_pass, factor_capabilities, rng, sigmoid, EarlyStop, Factors,
    Positives,
};
use crate::featurize::{FeatureRows, FieldList};
use table::{Buffers, Table};

mod table;
use crate::spec::impl_model;

/// The training loss of the hybrid model.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum HybridLoss {
    /// Weighted approximate-rank pairwise loss.
    #[default]
    Warp,
    /// k-order-statistic WARP.
    KosWarp,
    /// Bayesian personalised ranking.
    Bpr,
    /// Binary cross-entropy with sampled negatives.
    Bce,
}

/// Parameters of the hybrid model; defaults follow LightFM except the factor count.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HybridParams {
    /// Embedding size.
    pub factors: usize,
    /// Passes over the positives.
    pub epochs: usize,
    /// The loss.
    pub loss: HybridLoss,
    /// AdaGrad learning rate.
    pub learning_rate: f64,
    /// L2 penalty on user feature parameters, applied to those an example touches.
    pub regularization_user: f64,
    /// L2 penalty on item feature parameters, applied to those an example touches.
    pub regularization_item: f64,
    /// WARP: at most this many negative draws per positive.
    pub max_sampled: usize,
    /// k-OS WARP: the rank of the positive used among those drawn.
    pub kos_k: usize,
    /// k-OS WARP: positives drawn per user.
    pub kos_n: usize,
    /// BCE: sampled negatives per positive.
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
    /// Hogwild-style parallel training (not reproducible run to run).
    pub parallel: bool,
    /// With validation data: stop after this many epochs without a better validation recall@10
    /// and keep the best epoch (0: off).
    pub patience: usize,
}

impl Default for HybridParams {
    fn default() -> Self {
        HybridParams {
            factors: 32,
            epochs: 30,
            loss: HybridLoss::Warp,
            learning_rate: 0.05,
            regularization_user: 0.0,
            regularization_item: 0.0,
            max_sampled: 10,
            kos_k: 5,
            kos_n: 10,
            negatives: 4,
            user_identity: true,
            item_identity: true,
            user_fields: vec!["*".into()],
            item_fields: vec!["*".into()],
            numeric_bins: 10,
            parallel: false,
            patience: 3,
        }
    }
}

impl HybridParams {
    /// Checks the parameters, one error per broken rule.
    pub fn validate(&self) -> Result<()> {
        check_common(
            self.factors,
            self.epochs,
            &[("learning_rate", self.learning_rate)],
            &[
                ("regularization_user", self.regularization_user),
                ("regularization_item", self.regularization_item),
            ],
        )?;
        if self.max_sampled == 0 {
            return Err(Error::param("max_sampled", "must be at least 1"));
        }
        if self.kos_k == 0 {
            return Err(Error::param("kos_k", "must be at least 1"));
        }
        if self.kos_n < self.kos_k {
            return Err(Error::param(
                "kos_n",
                format!(
                    "must be at least kos_k ({}), got {}",
                    self.kos_k, self.kos_n
                ),
            ));
        }
        if self.negatives == 0 {
            return Err(Error::param("negatives", "must be at least 1"));
        }
        if self.numeric_bins == 0 {
            return Err(Error::param("numeric_bins", "must be at least 1"));
        }
        Ok(())
    }
}

/// The largest WARP weight, as LightFM's MAX_LOSS: keeps early steps stable.
const MAX_LOSS: f32 = 10.0;

/// The WARP step weight after `sampled` draws among `n` items: ln⌊(n − 1)/draws⌋, the log of
/// the estimated rank of the positive, at least 0 and at most [`MAX_LOSS`].
fn warp_weight(n: usize, sampled: usize) -> f32 {
    ((n.saturating_sub(1) / sampled.max(1)) as f32)
        .max(1.0)
        .ln()
        .min(MAX_LOSS)
}

/// Scratch vectors of one thread.
struct Scratch {
    u: Vec<f32>,
    i: Vec<f32>,
    j: Vec<f32>,
    grad: Vec<f32>,
    b: Buffers,
}

/// Everything one SGD step reads.
struct Trainer<'a> {
    p: &'a HybridParams,
    m: &'a Interactions,
    positives: Positives<'a>,
    users: Table,
    items: Table,
    urows: FeatureRows,
    irows: FeatureRows,
    k: usize,
    learning_rate: f32,
}

impl Trainer<'_> {
    #[inline]
    fn score(&self, u: &[f32], i: &[f32]) -> f32 {
        dot(&u[..self.k], &i[..self.k]) + u[self.k] + i[self.k]
    }

    /// The pairwise update shared by WARP and BPR with weight `w`: pushes item `i` up and item
    /// `j` (whose representation is in `s.j`) down for user `u`.
    fn pairwise(&self, u: u32, i: u32, j: u32, w: f32, s: &mut Scratch) {
        let k = self.k;
        let (ureg, ireg) = (
            self.p.regularization_user as f32,
            self.p.regularization_item as f32,
        );
        for c in 0..k {
            s.grad[c] = w * (s.j[c] - s.i[c]);
        }
        s.grad[k] = 0.0;
        self.users.step(
            &self.urows,
            u,
            &s.grad,
            k,
            self.learning_rate,
            ureg,
            &mut s.b,
        );
        for c in 0..k {
            s.grad[c] = -w * s.u[c];
        }
        s.grad[k] = -w;
        self.items.step(
            &self.irows,
            i,
            &s.grad,
            k + 1,
            self.learning_rate,
            ireg,
            &mut s.b,
        );
        for c in 0..=k {
            s.grad[c] = -s.grad[c];
        }
        self.items.step(
            &self.irows,
            j,
            &s.grad,
            k + 1,
            self.learning_rate,
            ireg,
            &mut s.b,
        );
    }

    /// WARP against positive `i` whose score is `pos` (the user's and the positive's
    /// representations are in `s.u`, `s.i`). Returns the step's weight (0 without violation).
    fn warp_from(&self, u: u32, i: u32, pos: f32, r: &mut impl Rng, s: &mut Scratch) -> f32 {
        let n = self.m.n_items();
        for sampled in 1..=self.p.max_sampled {
            let j = r.gen_range(0..n as u32);
            let (neg, in_j) =
                self.items
                    .score_against(&self.irows, j, &s.u, &mut s.j, &mut s.b.tmp);
            if neg > pos - 1.0 {
                if self.positives.has(u, j) {
                    continue;
                }
                if !in_j {
                    self.items.repr(&self.irows, j, &mut s.j, &mut s.b.tmp);
                }
                let w = warp_weight(n, sampled);
                self.pairwise(u, i, j, w, s);
                return w;
            }
        }
        0.0
    }

    /// One example of the loss for positive (u, i); returns its loss.
    fn example(&self, u: u32, i: u32, r: &mut impl Rng, s: &mut Scratch) -> f32 {
        let k = self.k;
        self.users.repr(&self.urows, u, &mut s.u, &mut s.b.tmp);
        self.items.repr(&self.irows, i, &mut s.i, &mut s.b.tmp);
        let pos = self.score(&s.u, &s.i);
        match self.p.loss {
            HybridLoss::Warp => self.warp_from(u, i, pos, r, s),
            HybridLoss::KosWarp => unreachable!("k-OS WARP runs per user"),
            HybridLoss::Bpr => {
                // LightFM's: the negative is a random interaction's item (so drawn in proportion
                // to popularity), redrawn while the user has it.
                let all = self.m.indices();
                let mut j = all[r.gen_range(0..all.len())];
                for _ in 0..100 {
                    if !self.positives.has(u, j) {
                        break;
                    }
                    j = all[r.gen_range(0..all.len())];
                }
                self.items.repr(&self.irows, j, &mut s.j, &mut s.b.tmp);
                let x = pos - self.score(&s.u, &s.j);
                let w = 1.0 - sigmoid(x);
                self.pairwise(u, i, j, w, s);
                -sigmoid(x).max(1e-12).ln()
            }
            HybridLoss::Bce => {
                let (ureg, ireg) = (
                    self.p.regularization_user as f32,
                    self.p.regularization_item as f32,
                );
                let mut loss = 0.0;
                for t in 0..=self.p.negatives {
                    let (item, label) = if t == 0 {
                        (i, 1.0)
                    } else {
                        let j = r.gen_range(0..self.m.n_items() as u32);
                        if self.positives.has(u, j) {
                            continue;
                        }
                        self.items.repr(&self.irows, j, &mut s.i, &mut s.b.tmp);
                        (j, 0.0)
                    };
                    let prob = sigmoid(self.score(&s.u, &s.i));
                    let fit = if label > 0.5 { prob } else { 1.0 - prob };
                    loss -= fit.max(1e-12).ln();
                    let g = prob - label;
                    for c in 0..k {
                        s.grad[c] = g * s.i[c];
                    }
                    s.grad[k] = g;
                    for c in 0..k {
                        s.j[c] = g * s.u[c];
                    }
                    s.j[k] = g;
                    self.users.step(
                        &self.urows,
                        u,
                        &s.grad,
                        k + 1,
                        self.learning_rate,
                        ureg,
                        &mut s.b,
                    );
                    self.items.step(
                        &self.irows,
                        item,
                        &s.j,
                        k + 1,
                        self.learning_rate,
                        ireg,
                        &mut s.b,
                    );
                }
                loss
            }
        }
    }

    /// One k-OS WARP example for user `u`.
    fn kos_example(&self, u: u32, r: &mut impl Rng, s: &mut Scratch) -> f32 {
        let seen = self.m.user_items(u);
        self.users.repr(&self.urows, u, &mut s.u, &mut s.b.tmp);
        let n = self.p.kos_n.min(seen.len());
        let mut drawn: Vec<(f32, u32)> = (0..n)
            .map(|_| {
                let i = seen[r.gen_range(0..seen.len())];
                self.items.repr(&self.irows, i, &mut s.i, &mut s.b.tmp);
                (self.score(&s.u, &s.i), i)
            })
            .collect();
        drawn.sort_by(|a, b| b.0.total_cmp(&a.0));
        let (pos, i) = drawn[self.p.kos_k.min(n) - 1];
        self.items.repr(&self.irows, i, &mut s.i, &mut s.b.tmp);
        self.warp_from(u, i, pos, r, s)
    }

    fn scratch(&self) -> Scratch {
        let k1 = self.k + 1;
        Scratch {
            u: vec![0.0; k1],
            i: vec![0.0; k1],
            j: vec![0.0; k1],
            grad: vec![0.0; k1],
            b: Buffers {
                w: vec![0.0; k1],
                g: vec![0.0; k1],
                tmp: vec![0.0; k1],
            },
        }
    }

    /// User and item representations as a factor store: users [e_u, 1], items [e_i, b_i], so
    /// the dot product ranks like the model's score (b_u does not change a user's ranking).
    fn factors(&self) -> Factors {
        let k1 = self.k + 1;
        let mut f = Factors {
            k: k1,
            users: vec![0.0; self.urows.len() * k1],
            items: vec![0.0; self.irows.len() * k1],
            ..Default::default()
        };
        f.users.par_chunks_mut(k1).enumerate().for_each_init(
            || vec![0f32; k1],
            |tmp, (u, row)| {
                self.users.repr(&self.urows, u as u32, row, tmp);
                row[self.k] = 1.0;
            },
        );
        f.items.par_chunks_mut(k1).enumerate().for_each_init(
            || vec![0f32; k1],
            |tmp, (i, row)| self.items.repr(&self.irows, i as u32, row, tmp),
        );
        f
    }
}

/// A fitted hybrid model: the user and item representations (known users and items, and
/// catalogue entries without interactions placed by their features).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Hybrid {
    params: HybridParams,
    f: Factors,
}

impl Hybrid {
    /// Trains with the chosen loss.
    pub fn fit(p: &HybridParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<Self> {
        p.validate()?;
        let m = &data.interactions;
        let ni = m.n_items();
        if ni < 2 {
            return Err(Error::data("the hybrid model needs at least two items"));
        }
        let urows = FeatureRows::of_users(data, p.user_identity, &p.user_fields, p.numeric_bins)?;
        let irows = FeatureRows::of_items(data, p.item_identity, &p.item_fields, p.numeric_bins)?;
        let threads = if p.parallel {
            rayon::current_num_threads().max(1)
        } else {
            1
        };
        let mut init = rng(opts.seed, 41);
        let t = Trainer {
            p,
            m,
            positives: Positives::new(m),
            users: Table::new(urows.n_features, p.factors, threads > 1, &mut init),
            items: Table::new(irows.n_features, p.factors, threads > 1, &mut init),
            urows,
            irows,
            k: p.factors,
            learning_rate: p.learning_rate as f32,
        };
        // Examples: every positive (user, item) pair; k-OS WARP uses only its user.
        let mut order: Vec<(u32, u32)> = m
            .iter()
            .filter(|&(_, _, v)| v > 0.0)
            .map(|(u, i, _)| (u, i))
            .collect();
        let mut shuffle = rng(opts.seed, 42);
        let mut early = EarlyStop::recall(m, opts.validation, p.patience, opts.seed);
        for epoch in 0..p.epochs {
            order.shuffle(&mut shuffle);
            let chunk = order.len().div_ceil(threads).max(1);
            let run = |(c, part): (usize, &[(u32, u32)])| -> f64 {
                let mut r = rng(opts.seed, 1000 + (epoch * threads + c) as u64);
                let mut s = t.scratch();
                part.iter()
                    .map(|&(u, i)| {
                        f64::from(if p.loss == HybridLoss::KosWarp {
                            t.kos_example(u, &mut r, &mut s)
                        } else {
                            t.example(u, i, &mut r, &mut s)
                        })
                    })
                    .sum()
            };
            let total: f64 = if threads > 1 {
                order.par_chunks(chunk).enumerate().map(run).sum()
            } else {
                order.chunks(chunk).enumerate().map(run).sum()
            };
            let loss = total / order.len().max(1) as f64;
            let pass = end_of_pass(
                &mut early,
                epoch,
                p.epochs,
                "epoch",
                || t.factors(),
                Some(loss),
                opts,
            )?;
            if pass.stop {
                break;
            }
        }
        let f = best_or(early, || t.factors());
        f.check_finite("hybrid")?;
        Ok(Hybrid {
            params: p.clone(),
            f,
        })
    }
}

impl Recommender for Hybrid {
    fn n_items(&self) -> usize {
        self.f.n_items()
    }
    fn score(&self, q: &Query<'_>, out: &mut [f32]) -> Result<()> {
        let k = self.params.factors;
        // An anonymous history is folded in by ridge regression on the item representations.
        let (mut u, _) = self.f.query_user(q, 0.1, |_, _| 1.0)?;
        u[k] = 1.0;
        self.f.score_vector(&u, false, out);
        Ok(())
    }
    factor_capabilities!();
}

impl_model!(Hybrid);

impl crate::spec::Kind for Hybrid {
    const NAME: &'static str = "hybrid";
    const SUMMARY: &'static str = "LightFM-style hybrid MF over identity and metadata features (WARP, k-OS WARP, BPR or BCE).";
    const RENAMED: &'static [(&'static str, &'static str)] = &[
        ("lr", "learning_rate"),
        ("user_reg", "regularization_user"),
        ("item_reg", "regularization_item"),
    ];
    type Params = HybridParams;
    type Fitted = Hybrid;

    fn validate(p: &HybridParams) -> Result<()> {
        p.validate()
    }

    fn footprint(p: &HybridParams, shape: &crate::spec::Shape) -> crate::spec::Footprint {
        crate::spec::Footprint::factors(shape, p.factors, 4.0)
    }
    fn capabilities(_: &HybridParams) -> crate::spec::Capabilities {
        use crate::spec::Capabilities;
        Capabilities {
            ranks: true,
            similar_items: true,
            embeddings: true,
            ..Default::default()
        }
    }

    fn fit(p: &HybridParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<Hybrid> {
        Hybrid::fit(p, data, opts)
    }

    fn restore(p: &HybridParams, state: &[u8], shape: &Shape) -> Result<Hybrid> {
        crate::spec::restore_state(p, state, shape, |m: &Hybrid| &m.params)
    }

    fn examples() -> Vec<HybridParams> {
        [
            HybridLoss::Warp,
            HybridLoss::KosWarp,
            HybridLoss::Bpr,
            HybridLoss::Bce,
        ]
        .map(|loss| HybridParams {
            loss,
            epochs: 10,
            ..Default::default()
        })
        .to_vec()
    }
}

impl CheckState for Hybrid {
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
    use reco_core::split::{split, Protocol};

    #[test]
    fn warp_weight_follows_the_rank_estimate() {
        // 1,000 items, a violation on the first draw: rank about 999.
        assert!((warp_weight(1000, 1) - 999f32.ln()).abs() < 1e-6);
        // Third draw: ⌊999/3⌋ = 333.
        assert!((warp_weight(1000, 3) - 333f32.ln()).abs() < 1e-6);
        // Found late weighs nothing, never less.
        assert_eq!(warp_weight(1000, 999), 0.0);
        assert_eq!(warp_weight(2, 10), 0.0);
        // Capped for huge catalogues.
        assert_eq!(warp_weight(usize::MAX, 1), MAX_LOSS);
    }

    #[test]
    fn cold_items_are_placed_by_their_features() {
        // Hold out whole items; with item metadata the model ranks them for the users whose
        // category they share far better than chance, with identity features only it cannot.
        let data = reco_core::synth::structured().unwrap();
        let folds = split(&data, &Protocol::ColdItems { fraction: 0.2 }, 3).unwrap();
        let fold = &folds[0];
        let cold: Vec<u32> = (0..data.n_items() as u32)
            .filter(|&i| fold.test.item_len(i) > 0)
            .collect();
        let recall = |fields: Vec<String>| {
            let spec = HybridParams {
                item_fields: fields,
                user_fields: vec![],
                epochs: 15,
                ..Default::default()
            };
            let m = Hybrid::fit(
                &spec,
                &fold.train,
                &FitOptions {
                    seed: 5,
                    progress: None,
                    validation: None,
                    checkpoint: None,
                },
            )
            .unwrap();
            let (mut hits, mut total) = (0usize, 0usize);
            let mut scores = vec![0f32; data.n_items()];
            for u in 0..data.n_users() as u32 {
                let rel = fold.test.user_items(u);
                if rel.is_empty() {
                    continue;
                }
                m.score(&Query::user(u), &mut scores).unwrap();
                let mut ranked: Vec<u32> = cold.clone();
                ranked.sort_by(|&a, &b| scores[b as usize].total_cmp(&scores[a as usize]));
                hits += ranked[..10]
                    .iter()
                    .filter(|i| rel.binary_search(i).is_ok())
                    .count();
                total += rel.len().min(10);
            }
            hits as f64 / total as f64
        };
        let with = recall(vec!["*".into()]);
        let without = recall(vec![]);
        // Random ranking of the cold items gives about 10 / |cold|.
        let chance = 10.0 / cold.len() as f64;
        assert!(
            with > 2.0 * chance && with > without + 0.05,
            "with {with}, without {without}, chance {chance}"
        );
    }

    #[test]
    fn hogwild_training_learns_as_well_as_one_thread() {
        let data = reco_core::synth::structured().unwrap();
        let folds = split(&data, &Protocol::Holdout { ratio: 0.2 }, 1).unwrap();
        let fold = &folds[0];
        let opts = FitOptions {
            seed: 2,
            progress: None,
            validation: Some(&fold.test),
            checkpoint: None,
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(2)
            .build()
            .unwrap();
        let recall = |parallel: bool| {
            let p = HybridParams {
                parallel,
                epochs: 8,
                patience: 0,
                ..Default::default()
            };
            let m = pool
                .install(|| Hybrid::fit(&p, &fold.train, &opts))
                .unwrap();
            let v = EarlyStop::recall(&fold.train.interactions, Some(&fold.test), 1, 0).unwrap();
            v.score(&m.f)
        };
        let (one, two) = (recall(false), recall(true));
        assert!(one > 0.1, "serial recall@10 {one}");
        assert!((one - two).abs() < 0.05, "serial {one}, hogwild {two}");
    }

    #[test]
    fn early_stopping_keeps_the_best_epoch() {
        let data = reco_core::synth::structured().unwrap();
        let folds = split(&data, &Protocol::Holdout { ratio: 0.2 }, 1).unwrap();
        let fold = &folds[0];
        let seen = std::sync::Mutex::new(Vec::new());
        let report = |p: reco_core::model::Progress<'_>| seen.lock().unwrap().push(p.loss);
        let opts = FitOptions {
            seed: 2,
            progress: Some(&report),
            validation: Some(&fold.test),
            checkpoint: None,
        };
        // Whenever training stops, the factors kept are those of the best validation epoch.
        let p = HybridParams {
            epochs: 40,
            patience: 2,
            ..Default::default()
        };
        let m = Hybrid::fit(&p, &fold.train, &opts).unwrap();
        let losses: Vec<f64> = seen.lock().unwrap().iter().flatten().copied().collect();
        let best = losses.iter().copied().fold(f64::MIN, f64::max);
        let v = EarlyStop::recall(&fold.train.interactions, Some(&fold.test), 1, 2).unwrap();
        assert!(
            (v.score(&m.f) - best).abs() < 1e-9,
            "kept {} best {best}",
            v.score(&m.f)
        );
        assert!(losses.len() >= 3);
    }

    #[test]
    fn invalid_parameters_are_rejected_one_rule_at_a_time() {
        let bad = |p: HybridParams| p.validate().unwrap_err().to_string();
        assert!(bad(HybridParams {
            factors: 0,
            ..Default::default()
        })
        .contains("factors"));
        assert!(bad(HybridParams {
            learning_rate: 0.0,
            ..Default::default()
        })
        .contains("learning_rate"));
        assert!(bad(HybridParams {
            max_sampled: 0,
            ..Default::default()
        })
        .contains("max_sampled"));
        assert!(bad(HybridParams {
            kos_k: 11,
            ..Default::default()
        })
        .contains("kos_k"));
        assert!(bad(HybridParams {
            negatives: 0,
            ..Default::default()
        })
        .contains("negatives"));
        assert!(bad(HybridParams {
            regularization_user: -1.0,
            ..Default::default()
        })
        .contains("regularization_user"));
    }
}
