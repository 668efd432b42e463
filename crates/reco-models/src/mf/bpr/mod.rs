//! Bayesian personalised ranking (Rendle et al. 2009) by SGD on sampled (user, positive,
//! negative) triples, with item biases (a constant-1 user factor, as implicit does), uniform or
//! popularity-weighted negatives (∝ count^0.75), one epoch = as many samples as interactions.
//! Epochs are block-partitioned over the threads (DSGD-style strata of user and item ranges),
//! deterministic for a seed and a thread count.

use crate::spec::{CheckState, Shape};
use rand::seq::SliceRandom;
use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use reco_core::model::{FitOptions, Query, Recommender};
use reco_core::{Dataset, Error, Result};

use super::lanes::Lanes;
use super::{best_or, end_of_pass, EarlyStop};
use super::{check_common, dot, factor_capabilities, rng, simd_dispatch, split_by, Factors};
use crate::spec::impl_model;

mod blocks;

use blocks::{balanced_cut, blocks_for, run_block, Job};

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
    /// Block-partitioned parallel SGD: with T threads, users and items are cut into T ranges
    /// and the T blocks of a stratum run at once, touching disjoint rows (one range on small
    /// data). Deterministic for a seed and a thread count.
    pub parallel: bool,
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
            parallel: true,
        }
    }
}

/// A fitted BPR model; the last factor of each item is its bias (users hold 1 there).
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(from = "Saved", into = "Saved")]
pub struct Bpr {
    params: BprParams,
    f: Factors,
}

/// The saved state: the parameters without `parallel`, which decides how a fit runs, not what
/// it produced (so states saved before it existed keep loading), and the factors.
#[derive(Serialize, Deserialize)]
struct Saved {
    factors: usize,
    epochs: usize,
    learning_rate: f64,
    regularization: f64,
    negative_sampling: NegativeSampling,
    verify_negatives: bool,
    patience: usize,
    f: Factors,
}

impl From<Bpr> for Saved {
    fn from(m: Bpr) -> Saved {
        let p = m.params;
        Saved {
            factors: p.factors,
            epochs: p.epochs,
            learning_rate: p.learning_rate,
            regularization: p.regularization,
            negative_sampling: p.negative_sampling,
            verify_negatives: p.verify_negatives,
            patience: p.patience,
            f: m.f,
        }
    }
}

impl From<Saved> for Bpr {
    fn from(s: Saved) -> Bpr {
        Bpr {
            params: BprParams {
                factors: s.factors,
                epochs: s.epochs,
                learning_rate: s.learning_rate,
                regularization: s.regularization,
                negative_sampling: s.negative_sampling,
                verify_negatives: s.verify_negatives,
                patience: s.patience,
                ..BprParams::default()
            },
            f: s.f,
        }
    }
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
        let n = m.nnz();
        // Popularity weights, count^0.75; each block draws from its own items' cumulative sum.
        let weights: Vec<f64> = m
            .item_counts()
            .iter()
            .map(|&c| (c as f64).powf(0.75))
            .collect();
        let t = if p.parallel {
            blocks_for(rayon::current_num_threads(), ni, n)
        } else {
            1
        };
        // Users are cut into t contiguous ranges of about n/t interactions each (fixed for the
        // fit); items are dealt into t equal ranges of a fresh random order every epoch.
        let user_cut = balanced_cut(m, t);
        let mut orders: Vec<Vec<u32>> = user_cut
            .windows(2)
            .map(|w| {
                (w[0] as u32..w[1] as u32)
                    .filter(|&u| m.user_len(u) > 0)
                    .collect()
            })
            .collect();
        let item_cut: Vec<usize> = (0..=t).map(|b| b * ni / t).collect();
        // by_pos[q] is the item at position q of this epoch's order, pos[i] the inverse; `work`
        // holds the item rows in that order, so each block's items are one contiguous slice.
        // With one range the order stays the identity and the rows are trained in place.
        let mut by_pos: Vec<u32> = (0..ni as u32).collect();
        let mut pos: Vec<u32> = by_pos.clone();
        let mut work = if t > 1 {
            vec![0f32; ni * k]
        } else {
            Vec::new()
        };
        let (learning_rate, regularization) = (p.learning_rate as f32, p.regularization as f32);
        let mut r = rng(opts.seed, 32);
        let mut early = EarlyStop::recall(m, opts.validation, p.patience, opts.seed);
        for epoch in 0..p.epochs {
            if t > 1 {
                by_pos.shuffle(&mut r);
                for (q, &i) in by_pos.iter().enumerate() {
                    pos[i as usize] = q as u32;
                }
                for (row, &i) in work.chunks_exact_mut(k).zip(&by_pos) {
                    row.copy_from_slice(&f.items[i as usize * k..(i as usize + 1) * k]);
                }
            }
            for order in &mut orders {
                order.shuffle(&mut r);
            }
            let (mut correct, mut skipped) = (0usize, 0usize);
            // Stratum s pairs user range b with item range (b + s) mod t: the t blocks touch
            // disjoint user and item rows and run at once; over the t strata every user meets
            // every item range once. A positive's negative comes from its own item range, which
            // this epoch's random order makes uniform over the catalogue on average.
            for s in 0..t {
                let users = split_by(&mut f.users, &user_cut, k);
                let table = if t > 1 { &mut work } else { &mut f.items };
                let mut items: Vec<Option<&mut [f32]>> = split_by(table, &item_cut, k)
                    .into_iter()
                    .map(Some)
                    .collect();
                let jobs: Vec<Job<'_>> = users
                    .into_iter()
                    .zip(&orders)
                    .enumerate()
                    .map(|(b, (users, order))| {
                        let c = (b + s) % t;
                        Job {
                            users,
                            u0: user_cut[b],
                            items: items[c].take().unwrap_or_default(),
                            i0: item_cut[c],
                            order,
                            seed: r.gen(),
                        }
                    })
                    .collect();
                let run = |job: Job<'_>| {
                    run_block(
                        job,
                        m,
                        &pos,
                        &by_pos,
                        &weights,
                        p,
                        learning_rate,
                        regularization,
                    )
                };
                let counts: Vec<(usize, usize)> = if t > 1 {
                    jobs.into_par_iter().map(run).collect()
                } else {
                    jobs.into_iter().map(run).collect()
                };
                for (c, sk) in counts {
                    correct += c;
                    skipped += sk;
                }
            }
            if t > 1 {
                for (row, &i) in work.chunks_exact(k).zip(&by_pos) {
                    f.items[i as usize * k..(i as usize + 1) * k].copy_from_slice(row);
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
        // The state does not hold `parallel` (it loads as the default); the manifest's value
        // is the model's.
        let saved = BprParams {
            parallel: BprParams::default().parallel,
            ..p.clone()
        };
        let mut m = crate::spec::restore_state(&saved, state, shape, |m: &Bpr| &m.params)?;
        m.params.parallel = p.parallel;
        Ok(m)
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

    /// Share of (user, positive, random non-positive) triples a model ranks right, from
    /// `pairs` uniform draws: an independent check of what training learned.
    fn ranking_accuracy(m: &Bpr, data: &Dataset, pairs: usize) -> f64 {
        let inter = &data.interactions;
        let mut r = rng(7, 7);
        let (nu, ni) = (inter.n_users() as u32, inter.n_items() as u32);
        let mut out = vec![0f32; ni as usize];
        let mut right = 0usize;
        for _ in 0..pairs {
            let u = r.gen_range(0..nu);
            let items = inter.user_items(u);
            if items.is_empty() {
                continue;
            }
            let i = items[r.gen_range(0..items.len())];
            let j = loop {
                let j = r.gen_range(0..ni);
                if items.binary_search(&j).is_err() {
                    break j;
                }
            };
            m.score(&Query::user(u), &mut out).expect("score");
            right += usize::from(out[i as usize] > out[j as usize]);
        }
        right as f64 / pairs as f64
    }

    #[test]
    fn parallel_epochs_are_deterministic_and_learn_as_well_as_one_pass() {
        let data =
            reco_core::synth::from_spec("users=1500,items=1200,interactions=40000", &|_, _| {})
                .expect("data");
        let nnz = data.interactions.nnz();
        assert_eq!(
            blocks_for(2, 1200, nnz),
            2,
            "the data must take the parallel path"
        );
        let p = BprParams {
            factors: 16,
            epochs: 15,
            learning_rate: 0.05,
            ..Default::default()
        };
        let on = |threads: usize, p: &BprParams| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("pool")
                .install(|| Bpr::fit(p, &data, &FitOptions::default()).expect("fit"))
        };
        let (a, b) = (on(2, &p), on(2, &p));
        assert_eq!(a.f.users, b.f.users);
        assert_eq!(a.f.items, b.f.items);
        let one = on(
            2,
            &BprParams {
                parallel: false,
                ..p.clone()
            },
        );
        assert_ne!(a.f.items, one.f.items, "the blocked epochs did not run");
        let (acc_blocks, acc_one) = (
            ranking_accuracy(&a, &data, 4000),
            ranking_accuracy(&one, &data, 4000),
        );
        assert!(acc_one > 0.75, "one pass learned little: {acc_one}");
        assert!(
            (acc_blocks - acc_one).abs() < 0.03,
            "blocked {acc_blocks} against one pass {acc_one}"
        );
    }

    /// `parallel` is not in the saved state: a state loads under either value, takes the
    /// manifest's, and still refuses other parameters.
    #[test]
    fn the_saved_state_leaves_parallel_to_the_manifest() {
        use crate::spec::Kind;
        let data = reco_core::synth::structured().expect("data");
        let p = BprParams {
            factors: 4,
            epochs: 2,
            parallel: false,
            ..Default::default()
        };
        let m = Bpr::fit(&p, &data, &FitOptions::default()).expect("fit");
        let state = reco_core::artifact::encode(&m).expect("encode");
        let shape = Shape::of(&data);
        for parallel in [false, true] {
            let q = BprParams {
                parallel,
                ..p.clone()
            };
            let back = <Bpr as Kind>::restore(&q, &state, &shape).expect("restore");
            assert_eq!(back.params, q);
            assert_eq!(back.f.items, m.f.items);
        }
        let other = BprParams {
            epochs: 3,
            ..p.clone()
        };
        assert!(<Bpr as Kind>::restore(&other, &state, &shape).is_err());
    }

    #[test]
    fn users_are_cut_into_ranges_of_equal_interactions() {
        // Users with 3, 1, 1, 1 and 2 interactions (8): two ranges of 4, cut after user 1;
        // four ranges of 2 as near as whole users allow.
        let mut b = DatasetBuilder::new(true);
        for (u, n) in [("a", 3), ("b", 1), ("c", 1), ("d", 1), ("e", 2)] {
            for i in 0..n {
                let (u, i) = (
                    b.users.get_or_insert(u),
                    b.items.get_or_insert(&format!("i{i}")),
                );
                b.triplets.push(u, i, 1.0, None);
            }
        }
        let data = b.finish("t", &LoadOptions::default()).expect("data");
        assert_eq!(balanced_cut(&data.interactions, 1), vec![0, 5]);
        assert_eq!(balanced_cut(&data.interactions, 2), vec![0, 2, 5]);
        assert_eq!(balanced_cut(&data.interactions, 4), vec![0, 1, 2, 4, 5]);
        assert_eq!(blocks_for(2, 1682, 100_000), 2);
        assert_eq!(blocks_for(2, 900, 100_000), 1);
        assert_eq!(blocks_for(8, 27_000, 20_000), 1);
    }

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
