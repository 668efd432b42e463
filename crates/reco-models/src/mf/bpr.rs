//! Bayesian personalised ranking (Rendle et al. 2009) by SGD on sampled (user, positive,
//! negative) triples, with item biases (a constant-1 user factor, as implicit does), uniform or
//! popularity-weighted negatives (∝ count^0.75), one epoch = as many samples as interactions.
//! Training is sequential and deterministic with the seed.

use crate::spec::{CheckState, Shape};
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

use reco_core::model::{FitOptions, Query, Recommender};
use reco_core::{Dataset, Error, Result};

use super::lanes::Lanes;
use super::{best_or, end_of_pass, EarlyStop};
use super::{check_common, dot, factor_capabilities, rng, simd_dispatch, Factors};
use crate::spec::impl_model;

/// How negatives are drawn.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum NegativeSampling {
    /// Uniform over the catalogue.
    #[default]
    Uniform,
    /// Proportional to interaction count^0.75.
    Popularity,
}

/// Parameters of BPR; defaults are implicit's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BprParams {
    /// Number of factors (plus one for the item bias).
    pub factors: usize,
    /// Epochs.
    pub epochs: usize,
    /// Learning rate.
    pub learning_rate: f64,
    /// L2 regularisation.
    pub regularization: f64,
    /// Negative sampling.
    pub negative_sampling: NegativeSampling,
    /// Redraw a negative the user has interacted with.
    pub verify_negatives: bool,
    /// With validation data: stop after this many epochs without a better validation recall@10
    /// and keep the best epoch's factors (0: off).
    pub patience: usize,
}

impl Default for BprParams {
    fn default() -> Self {
        BprParams {
            factors: 100,
            epochs: 100,
            learning_rate: 0.01,
            regularization: 0.01,
            negative_sampling: NegativeSampling::Uniform,
            verify_negatives: true,
            patience: 3,
        }
    }
}

/// A fitted BPR model; the last factor of each item is its bias (users hold 1 there).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Bpr {
    params: BprParams,
    f: Factors,
}

impl BprParams {
    /// Checks every rule, one error per broken rule.
    pub fn validate(&self) -> Result<()> {
        check_common(
            self.factors,
            self.epochs,
            &[("learning_rate", self.learning_rate)],
            &[("regularization", self.regularization)],
        )?;
        Ok(())
    }
}

impl Bpr {
    /// Runs SGD on sampled triples.
    pub fn fit(p: &BprParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<Self> {
        p.validate()?;
        let m = &data.interactions;
        let (nu, ni) = (m.n_users(), m.n_items());
        if ni < 2 {
            return Err(Error::data("BPR needs at least two items"));
        }
        let k = p.factors + 1;
        let mut init = rng(opts.seed, 31);
        let mut f = Factors {
            k,
            users: (0..nu * k)
                .map(|t| {
                    if t % k == k - 1 {
                        1.0
                    } else {
                        (init.gen::<f32>() - 0.5) / k as f32
                    }
                })
                .collect(),
            items: (0..ni * k)
                .map(|t| {
                    if t % k == k - 1 {
                        0.0
                    } else {
                        (init.gen::<f32>() - 0.5) / k as f32
                    }
                })
                .collect(),
            ..Default::default()
        };
        let mut user_order: Vec<u32> = (0..nu as u32).filter(|&u| m.user_len(u) > 0).collect();
        let n = m.nnz();
        let cdf: Vec<f64> = {
            let mut acc = 0.0;
            let w: Vec<f64> = m
                .item_counts()
                .iter()
                .map(|&c| {
                    acc += (c as f64).powf(0.75);
                    acc
                })
                .collect();
            w.iter().map(|x| x / acc.max(f64::MIN_POSITIVE)).collect()
        };
        let (learning_rate, regularization) = (p.learning_rate as f32, p.regularization as f32);
        let mut r = rng(opts.seed, 32);
        let mut early = EarlyStop::recall(m, opts.validation, p.patience, opts.seed);
        let mut pairs: Vec<(u32, u32)> = Vec::new();
        for epoch in 0..p.epochs {
            let (mut correct, mut skipped) = (0usize, 0usize);
            // Users in a fresh random order, each drawing as many positives (with replacement)
            // as it has interactions: the same distribution of (u, i) as drawing interactions at
            // random, stratified by user, and a user's row stays in cache for its samples.
            user_order.shuffle(&mut r);
            for &u in &user_order {
                let items = m.user_items(u);
                // The user's samples are drawn first (the same draws in the same order as one
                // at a time), so the rows of a sample a few ahead can be fetched while this
                // one is computed: a random negative's row is otherwise a cache miss per step.
                pairs.clear();
                for _ in 0..items.len() {
                    let i = items[r.gen_range(0..items.len())];
                    if items.len() == ni {
                        skipped += 1;
                        continue;
                    }
                    let mut j;
                    loop {
                        j = match p.negative_sampling {
                            NegativeSampling::Uniform => r.gen_range(0..ni as u32),
                            NegativeSampling::Popularity => {
                                cdf.partition_point(|&c| c < r.gen::<f64>()).min(ni - 1) as u32
                            }
                        };
                        // Never the positive itself, verified or not: the update needs two
                        // distinct rows (and learns nothing from i against i).
                        if j != i && (!p.verify_negatives || items.binary_search(&j).is_err()) {
                            break;
                        }
                    }
                    pairs.push((i, j));
                }
                let uu = u as usize * k;
                for (t, &(i, j)) in pairs.iter().enumerate() {
                    if let Some(&(ai, aj)) = pairs.get(t + AHEAD) {
                        prefetch(&f.items, ai as usize * k, k);
                        prefetch(&f.items, aj as usize * k, k);
                    }
                    if step(
                        &mut f.users[uu..uu + k],
                        &mut f.items,
                        i as usize * k,
                        j as usize * k,
                        k,
                        learning_rate,
                        regularization,
                    ) {
                        correct += 1;
                    }
                }
            }
            let acc = correct as f64 / (n - skipped).max(1) as f64;
            if end_of_pass(&mut early, epoch, p.epochs, "epoch", || &f, Some(acc), opts)?.stop {
                break;
            }
        }
        let f = best_or(early, || f);
        f.check_finite("bpr")?;
        Ok(Bpr {
            params: p.clone(),
            f,
        })
    }
}

/// Samples between a row's prefetch and its use.
const AHEAD: usize = 4;

/// Asks the cache for `data[start..start + len]` ahead of its use; a hint only.
#[inline(always)]
fn prefetch(data: &[f32], start: usize, len: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(row) = data.get(start..start + len) {
        // 16 floats per 64-byte line.
        for line in row.chunks(16) {
            // SAFETY: a prefetch never faults and does not change memory; the address is in
            // `data`. SSE is part of every x86-64 processor.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    line.as_ptr().cast::<i8>(),
                )
            };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (data, start, len);
}

simd_dispatch! {
    /// One BPR update of (u, i, j); true when the pair was already ranked right. Dispatched to an
    /// AVX2+FMA copy where available, with the same arithmetic.
    fn step(pu: &mut [f32], items: &mut [f32], ii: usize, jj: usize, k: usize, learning_rate: f32, regularization: f32) -> bool => step_with::<Lanes>
}

#[inline(always)]
fn step_with<L: Lanes>(
    pu: &mut [f32],
    items: &mut [f32],
    ii: usize,
    jj: usize,
    k: usize,
    learning_rate: f32,
    regularization: f32,
) -> bool {
    // i ≠ j (j is a negative), so the two item rows are disjoint.
    let (qi, qj) = if ii < jj {
        let (a, b) = items.split_at_mut(jj);
        (&mut a[ii..ii + k], &mut b[..k])
    } else {
        let (a, b) = items.split_at_mut(ii);
        (&mut b[..k], &mut a[jj..jj + k])
    };
    // Both scores at once, as independent chains (the kernel takes four rows).
    // SAFETY: `step` runs L only on processors that have its instructions.
    let d = unsafe { L::dot4([&*qi, &*qj, &*qi, &*qj], pu) };
    let x = d[0] - d[1];
    let z = 1.0 / (1.0 + x.exp());
    let decay = 1.0 - learning_rate * regularization;
    let g = learning_rate * z;
    // The last slot is the item bias: the user's constant 1 is not trained. It is updated
    // apart: a condition inside the loop made the user's row a masked store, which is slow.
    let factors = k - 1;
    for ((p, a), b) in pu[..factors]
        .iter_mut()
        .zip(&mut qi[..factors])
        .zip(&mut qj[..factors])
    {
        let (pv, av, bv) = (*p, *a, *b);
        *p = pv.mul_add(decay, g * (av - bv));
        *a = av.mul_add(decay, g * pv);
        *b = bv.mul_add(decay, -g * pv);
    }
    let p = pu[factors];
    qi[factors] = qi[factors].mul_add(decay, g * p);
    qj[factors] = qj[factors].mul_add(decay, -g * p);
    x > 0.0
}

impl Recommender for Bpr {
    fn n_items(&self) -> usize {
        self.f.n_items()
    }
    fn score(&self, q: &Query<'_>, out: &mut [f32]) -> Result<()> {
        let f = &self.f;
        let mut p = if q.history.is_empty() {
            q.user
                .filter(|&u| (u as usize) < f.n_users())
                .map_or_else(|| vec![0.0; f.k], |u| f.user(u).to_vec())
        } else {
            f.fold_in(
                q.history,
                self.params.regularization as f32 * 10.0,
                |_, _| 1.0,
            )?
        };
        // The bias slot is 1 for every user, also folded-in and anonymous ones.
        if let Some(last) = p.last_mut() {
            *last = 1.0;
        }
        for (i, o) in out.iter_mut().enumerate() {
            *o = dot(&p, f.item(i as u32));
        }
        Ok(())
    }
    fn score_users(&self, users: &[u32], out: &mut [f32]) -> Result<()> {
        let f = &self.f;
        f.score_users(users, out, false, |u, p| {
            f.copy_user(u, p);
            if let Some(last) = p.last_mut() {
                *last = 1.0;
            }
            0.0
        })
    }
    factor_capabilities!();
}

impl_model!(Bpr);

impl crate::spec::Kind for Bpr {
    const NAME: &'static str = "bpr";
    const SUMMARY: &'static str = "Bayesian personalised ranking (Rendle 2009).";
    const RENAMED: &'static [(&'static str, &'static str)] = &[
        ("negatives", "negative_sampling"),
        ("lr", "learning_rate"),
        ("reg", "regularization"),
    ];
    type Params = BprParams;
    type Fitted = Bpr;

    fn validate(p: &BprParams) -> Result<()> {
        p.validate()
    }

    fn footprint(p: &BprParams, shape: &crate::spec::Shape) -> crate::spec::Footprint {
        crate::spec::Footprint::factors(shape, p.factors, 3.0)
    }
    fn capabilities(_: &BprParams) -> crate::spec::Capabilities {
        use crate::spec::Capabilities;
        Capabilities {
            ranks: true,
            similar_items: true,
            embeddings: true,
            ..Default::default()
        }
    }

    fn fit(p: &BprParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<Bpr> {
        Bpr::fit(p, data, opts)
    }

    fn restore(p: &BprParams, state: &[u8], shape: &Shape) -> Result<Bpr> {
        crate::spec::restore_state(p, state, shape, |m: &Bpr| &m.params)
    }

    fn examples() -> Vec<BprParams> {
        vec![BprParams {
            factors: 16,
            epochs: 20,
            learning_rate: 0.05,
            ..Default::default()
        }]
    }
}

impl CheckState for Bpr {
    fn check_state(&self, shape: &Shape) -> std::result::Result<(), String> {
        self.f.check(shape)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reco_core::loaders::{DatasetBuilder, LoadOptions};

    #[test]
    fn unverified_negatives_never_draw_the_positive() {
        // Two items, so an unverified draw hits the positive about half the time; it used to
        // index one row as two and panic.
        let mut b = DatasetBuilder::new(true);
        for (u, i) in [("1", "a"), ("2", "b"), ("3", "a")] {
            let (u, i) = (b.users.get_or_insert(u), b.items.get_or_insert(i));
            b.triplets.push(u, i, 1.0, None);
        }
        let data = b.finish("t", &LoadOptions::default()).expect("data");
        let p = BprParams {
            factors: 4,
            epochs: 50,
            verify_negatives: false,
            ..Default::default()
        };
        let m = Bpr::fit(&p, &data, &FitOptions::default()).expect("fit");
        // It learned: the two users of item a rank it above b.
        for u in [0u32, 2] {
            let mut out = vec![0f32; 2];
            m.score(&Query::user(u), &mut out).expect("score");
            let own = data.interactions.user_items(u)[0] as usize;
            assert!(out.iter().all(|s| s.is_finite()), "{out:?}");
            assert!(out[own] > out[1 - own], "user {u}: {out:?}");
        }
    }
}
