//! Co-clustering (George & Merugu 2005; Surprise's `CoClustering`): users and items are each
//! put in a few clusters, and a rating is predicted from the mean of its co-cluster, corrected
//! by how far the user and the item sit from their clusters' means:
//!
//! r̂_ui = C̄(c_u, c_i) + (μ_u − C̄_u(c_u)) + (μ_i − C̄_i(c_i)).
//!
//! Training alternates as Surprise does: each epoch computes the cluster means, moves every
//! user to the cluster that minimises the squared error of their ratings, then every item
//! (against the users' new clusters, with the same means). Users, then items, are reassigned in
//! parallel; each choice depends only on the epoch's means, so the result is the same on any
//! number of threads.

use crate::spec::{check, CheckState, Shape};
use rand::Rng;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use reco_core::model::{FitOptions, Query, RatingPredictor, Recommender};
use reco_core::{Dataset, Error, Interactions, Result};

use crate::bias::Scale;
use crate::spec::impl_model;

/// Most clusters on either side: the error of each candidate cluster is computed for every
/// rating, so the work of an epoch grows with the cluster count.
pub const MAX_CLUSTERS: usize = 1_000;

/// Parameters of co-clustering; defaults are Surprise's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CoClusteringParams {
    /// User clusters (Surprise `n_cltr_u`).
    pub user_clusters: usize,
    /// Item clusters (Surprise `n_cltr_i`).
    pub item_clusters: usize,
    /// Reassignment passes.
    pub epochs: usize,
}

impl Default for CoClusteringParams {
    fn default() -> Self {
        CoClusteringParams {
            user_clusters: 3,
            item_clusters: 3,
            epochs: 20,
        }
    }
}

impl CoClusteringParams {
    /// Checks every rule, one error per broken rule.
    pub fn validate(&self) -> Result<()> {
        for (name, n) in [
            ("user_clusters", self.user_clusters),
            ("item_clusters", self.item_clusters),
        ] {
            if !(1..=MAX_CLUSTERS).contains(&n) {
                return Err(Error::param(
                    name,
                    format!("must be between 1 and {MAX_CLUSTERS}, got {n}"),
                ));
            }
        }
        if self.epochs == 0 {
            return Err(Error::param("epochs", "must be at least 1"));
        }
        Ok(())
    }
}

/// Means of every cluster and co-cluster (the global mean where a cluster is empty).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Means {
    /// Row-major `user_clusters × item_clusters`.
    co: Vec<f32>,
    user: Vec<f32>,
    item: Vec<f32>,
    n_item_clusters: usize,
}

impl Means {
    fn of(m: &Interactions, uc: &[u32], ic: &[u32], p: &CoClusteringParams, mu: f64) -> Means {
        let (nu, ni) = (p.user_clusters, p.item_clusters);
        let mut co = vec![(0f64, 0u64); nu * ni];
        let (mut user, mut item) = (vec![(0f64, 0u64); nu], vec![(0f64, 0u64); ni]);
        for (u, i, r) in m.iter() {
            let (a, b) = (uc[u as usize] as usize, ic[i as usize] as usize);
            for s in [&mut co[a * ni + b], &mut user[a], &mut item[b]] {
                s.0 += f64::from(r);
                s.1 += 1;
            }
        }
        let mean = |s: &[(f64, u64)]| -> Vec<f32> {
            s.iter()
                .map(|&(sum, n)| if n > 0 { sum / n as f64 } else { mu } as f32)
                .collect()
        };
        Means {
            co: mean(&co),
            user: mean(&user),
            item: mean(&item),
            n_item_clusters: ni,
        }
    }

    /// The prediction for a user of cluster `a` with mean `mu_u` and an item of cluster `b`
    /// with mean `mu_i`.
    fn estimate(&self, a: usize, b: usize, mu_u: f32, mu_i: f32) -> f32 {
        self.co[a * self.n_item_clusters + b] + (mu_u - self.user[a]) + (mu_i - self.item[b])
    }
}

/// The cluster (lowest index on ties) that minimises the squared error of `ratings`, where
/// `estimate(c, k, r)` predicts the k-th rating `r` from cluster `c`.
fn best_cluster(
    n: usize,
    ratings: impl Iterator<Item = f32> + Clone,
    estimate: impl Fn(usize, usize) -> f32,
) -> u32 {
    let mut best = (f64::INFINITY, 0usize);
    for c in 0..n {
        let err: f64 = ratings
            .clone()
            .enumerate()
            .map(|(k, r)| f64::from(r - estimate(c, k)).powi(2))
            .sum();
        if err < best.0 {
            best = (err, c);
        }
    }
    best.1 as u32
}

/// A fitted co-clustering model.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct CoClustering {
    params: CoClusteringParams,
    mu: f32,
    /// Mean rating of each user (NaN without training ratings).
    user_mean: Vec<f32>,
    /// Mean rating of each item (NaN without training ratings).
    item_mean: Vec<f32>,
    user_cluster: Vec<u32>,
    item_cluster: Vec<u32>,
    means: Means,
    scale: Scale,
}

fn row_means<'a>(n: usize, values: impl Fn(u32) -> &'a [f32] + Sync) -> Vec<f32> {
    (0..n as u32)
        .into_par_iter()
        .map(|x| {
            let v = values(x);
            if v.is_empty() {
                f32::NAN
            } else {
                (v.iter().map(|&r| f64::from(r)).sum::<f64>() / v.len() as f64) as f32
            }
        })
        .collect()
}

impl CoClustering {
    /// Draws the initial clusters from the seed, then alternates.
    pub fn fit(p: &CoClusteringParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<Self> {
        p.validate()?;
        let m = &data.interactions;
        let mut rng = crate::mf::rng(opts.seed, 71);
        let uc: Vec<u32> = (0..m.n_users())
            .map(|_| rng.gen_range(0..p.user_clusters as u32))
            .collect();
        let ic: Vec<u32> = (0..m.n_items())
            .map(|_| rng.gen_range(0..p.item_clusters as u32))
            .collect();
        Self::fit_from(p, m, uc, ic, opts)
    }

    /// Alternates from the given initial clusters.
    fn fit_from(
        p: &CoClusteringParams,
        m: &Interactions,
        mut uc: Vec<u32>,
        mut ic: Vec<u32>,
        opts: &FitOptions<'_>,
    ) -> Result<Self> {
        if m.nnz() == 0 {
            return Err(Error::data("there are no training ratings"));
        }
        let mu = m.values().iter().map(|&v| f64::from(v)).sum::<f64>() / m.nnz() as f64;
        let user_mean = row_means(m.n_users(), |u| m.user_values(u));
        let item_mean = row_means(m.n_items(), |i| m.item_values(i));
        for epoch in 0..p.epochs {
            let means = Means::of(m, &uc, &ic, p, mu);
            uc = (0..m.n_users() as u32)
                .into_par_iter()
                .map(|u| {
                    let (items, values) = (m.user_items(u), m.user_values(u));
                    best_cluster(p.user_clusters, values.iter().copied(), |c, k| {
                        let i = items[k] as usize;
                        means.estimate(c, ic[i] as usize, user_mean[u as usize], item_mean[i])
                    })
                })
                .collect();
            ic = (0..m.n_items() as u32)
                .into_par_iter()
                .map(|i| {
                    let (users, values) = (m.item_users(i), m.item_values(i));
                    best_cluster(p.item_clusters, values.iter().copied(), |c, k| {
                        let u = users[k] as usize;
                        means.estimate(uc[u] as usize, c, user_mean[u], item_mean[i as usize])
                    })
                })
                .collect();
            opts.step("epoch", epoch as u64 + 1, p.epochs as u64, None)?;
        }
        let means = Means::of(m, &uc, &ic, p, mu);
        Ok(CoClustering {
            params: p.clone(),
            mu: mu as f32,
            user_mean,
            item_mean,
            user_cluster: uc,
            item_cluster: ic,
            means,
            scale: Scale::of(m),
        })
    }

    /// The prediction for a user of cluster `c` (if known) with mean `mean` (NaN if unknown).
    fn estimate(&self, cluster: Option<u32>, mean: f32, i: u32) -> f32 {
        let item_mean = self.item_mean.get(i as usize).copied().unwrap_or(f32::NAN);
        let est = match (cluster, item_mean.is_nan(), mean.is_nan()) {
            (Some(c), false, false) => {
                let ci = self.item_cluster[i as usize] as usize;
                self.means.estimate(c as usize, ci, mean, item_mean)
            }
            (_, _, false) => mean,
            (_, false, true) => item_mean,
            _ => self.mu,
        };
        self.scale.clip(est)
    }

    /// The cluster and mean of an anonymous history: the cluster that best explains it.
    fn place(&self, history: &[(u32, f32)]) -> (Option<u32>, f32) {
        let known: Vec<(u32, f32)> = history
            .iter()
            .copied()
            .filter(|&(i, _)| self.item_mean.get(i as usize).is_some_and(|m| !m.is_nan()))
            .collect();
        if known.is_empty() {
            return (None, f32::NAN);
        }
        let mean =
            (known.iter().map(|&(_, r)| f64::from(r)).sum::<f64>() / known.len() as f64) as f32;
        let c = best_cluster(
            self.params.user_clusters,
            known.iter().map(|h| h.1),
            |c, k| {
                let i = known[k].0 as usize;
                let ci = self.item_cluster[i] as usize;
                self.means.estimate(c, ci, mean, self.item_mean[i])
            },
        );
        (Some(c), mean)
    }

    fn who(&self, q: &Query<'_>) -> (Option<u32>, f32) {
        match q.user {
            Some(u) if q.history.is_empty() && (u as usize) < self.user_mean.len() => {
                let mean = self.user_mean[u as usize];
                (
                    Some(self.user_cluster[u as usize]).filter(|_| !mean.is_nan()),
                    mean,
                )
            }
            _ => self.place(q.history),
        }
    }
}

impl RatingPredictor for CoClustering {
    fn predict(&self, u: u32, i: u32) -> f32 {
        let (c, mean) = self.who(&Query::user(u));
        self.estimate(c, mean, i)
    }
}

impl Recommender for CoClustering {
    fn n_items(&self) -> usize {
        self.item_mean.len()
    }

    /// Items ranked by predicted rating.
    fn score(&self, q: &Query<'_>, out: &mut [f32]) -> Result<()> {
        let (c, mean) = self.who(q);
        for (i, o) in out.iter_mut().enumerate() {
            *o = self.estimate(c, mean, i as u32);
        }
        Ok(())
    }

    fn as_rating_predictor(&self) -> Option<&dyn RatingPredictor> {
        Some(self)
    }
}

impl_model!(CoClustering);

impl crate::spec::Kind for CoClustering {
    const NAME: &'static str = "coclustering";
    const SUMMARY: &'static str =
        "Co-clustering of users and items (George & Merugu 2005; Surprise's CoClustering).";
    type Params = CoClusteringParams;
    type Fitted = CoClustering;

    fn validate(p: &CoClusteringParams) -> Result<()> {
        p.validate()
    }
    fn capabilities(_: &CoClusteringParams) -> crate::spec::Capabilities {
        crate::spec::Capabilities {
            rates: true,
            ..Default::default()
        }
    }
    fn fit(p: &CoClusteringParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<CoClustering> {
        CoClustering::fit(p, data, opts)
    }
    fn restore(p: &CoClusteringParams, state: &[u8], shape: &Shape) -> Result<CoClustering> {
        crate::spec::restore_state(p, state, shape, |m: &CoClustering| &m.params)
    }
    fn examples() -> Vec<CoClusteringParams> {
        vec![
            CoClusteringParams::default(),
            CoClusteringParams {
                user_clusters: 5,
                item_clusters: 2,
                epochs: 10,
            },
        ]
    }
}

impl CheckState for CoClustering {
    fn check_state(&self, shape: &Shape) -> std::result::Result<(), String> {
        let (uc, ic) = (self.means.user.len(), self.means.item.len());
        check::len("the user means", self.user_mean.len(), shape.users)?;
        check::len("the item means", self.item_mean.len(), shape.items)?;
        check::len("the user clusters", self.user_cluster.len(), shape.users)?;
        check::len("the item clusters", self.item_cluster.len(), shape.items)?;
        check::below("the user clusters", &self.user_cluster, uc)?;
        check::below("the item clusters", &self.item_cluster, ic)?;
        check::len("the item cluster count", self.means.n_item_clusters, ic)?;
        check::rows("the co-cluster means", self.means.co.len(), uc, ic)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Surprise's loop, written out naively: the reference the parallel version must match.
    fn naive(m: &Interactions, p: &CoClusteringParams, uc0: &[u32], ic0: &[u32]) -> Vec<f64> {
        let trip: Vec<(usize, usize, f64)> = m
            .iter()
            .map(|(u, i, r)| (u as usize, i as usize, f64::from(r)))
            .collect();
        let (nu, ni) = (m.n_users(), m.n_items());
        let mu = trip.iter().map(|t| t.2).sum::<f64>() / trip.len() as f64;
        let mean_of = |f: &dyn Fn(&(usize, usize, f64)) -> bool| {
            let v: Vec<f64> = trip.iter().filter(|t| f(t)).map(|t| t.2).collect();
            v.iter().sum::<f64>() / v.len() as f64
        };
        let um: Vec<f64> = (0..nu).map(|u| mean_of(&|t| t.0 == u)).collect();
        let im: Vec<f64> = (0..ni).map(|i| mean_of(&|t| t.1 == i)).collect();
        let (mut uc, mut ic) = (uc0.to_vec(), ic0.to_vec());
        let averages = |uc: &[u32], ic: &[u32]| {
            let avg = |f: &dyn Fn(&(usize, usize, f64)) -> bool| {
                let v: Vec<f64> = trip.iter().filter(|t| f(t)).map(|t| t.2).collect();
                if v.is_empty() {
                    mu
                } else {
                    v.iter().sum::<f64>() / v.len() as f64
                }
            };
            let co: Vec<Vec<f64>> = (0..p.user_clusters)
                .map(|a| {
                    (0..p.item_clusters)
                        .map(|b| avg(&|t| uc[t.0] as usize == a && ic[t.1] as usize == b))
                        .collect()
                })
                .collect();
            let cu: Vec<f64> = (0..p.user_clusters)
                .map(|a| avg(&|t| uc[t.0] as usize == a))
                .collect();
            let ci: Vec<f64> = (0..p.item_clusters)
                .map(|b| avg(&|t| ic[t.1] as usize == b))
                .collect();
            (co, cu, ci)
        };
        for _ in 0..p.epochs {
            let (co, cu, ci) = averages(&uc, &ic);
            let est =
                |a: usize, b: usize, u: usize, i: usize| co[a][b] + um[u] - cu[a] + im[i] - ci[b];
            let argmin = |errs: Vec<f64>| {
                let mut best = 0;
                for (k, e) in errs.iter().enumerate() {
                    if *e < errs[best] {
                        best = k;
                    }
                }
                best as u32
            };
            let new_uc: Vec<u32> = (0..nu)
                .map(|u| {
                    argmin(
                        (0..p.user_clusters)
                            .map(|a| {
                                trip.iter()
                                    .filter(|t| t.0 == u)
                                    .map(|t| (t.2 - est(a, ic[t.1] as usize, u, t.1)).powi(2))
                                    .sum()
                            })
                            .collect(),
                    )
                })
                .collect();
            uc = new_uc;
            ic = (0..ni)
                .map(|i| {
                    argmin(
                        (0..p.item_clusters)
                            .map(|b| {
                                trip.iter()
                                    .filter(|t| t.1 == i)
                                    .map(|t| (t.2 - est(uc[t.0] as usize, b, t.0, i)).powi(2))
                                    .sum()
                            })
                            .collect(),
                    )
                })
                .collect();
        }
        let (co, cu, ci) = averages(&uc, &ic);
        let mut preds = Vec::new();
        for u in 0..nu {
            for i in 0..ni {
                let e = co[uc[u] as usize][ic[i] as usize] + um[u] - cu[uc[u] as usize] + im[i]
                    - ci[ic[i] as usize];
                preds.push(e.clamp(1.0, 5.0));
            }
        }
        preds
    }

    #[test]
    fn matches_surprises_loop_written_out_naively() {
        let c = reco_core::synth::ScalableConfig {
            users: 40,
            items: 30,
            interactions: 500,
            seed: 5,
            ..Default::default()
        };
        let data = reco_core::synth::scalable(&c, &|_, _| {}).unwrap();
        let m = &data.interactions;
        let p = CoClusteringParams {
            user_clusters: 3,
            item_clusters: 4,
            epochs: 6,
        };
        let uc0: Vec<u32> = (0..m.n_users() as u32).map(|u| u % 3).collect();
        let ic0: Vec<u32> = (0..m.n_items() as u32).map(|i| (i * 7) % 4).collect();
        let want = naive(m, &p, &uc0, &ic0);
        let got = CoClustering::fit_from(&p, m, uc0, ic0, &FitOptions::default()).unwrap();
        let (min, max) = (got.scale.min, got.scale.max);
        assert_eq!((min, max), (1.0, 5.0));
        let mut k = 0;
        for u in 0..m.n_users() as u32 {
            for i in 0..m.n_items() as u32 {
                // Users and items in the data all have ratings (the naive means need them).
                if m.user_len(u) > 0 && m.item_len(i) > 0 {
                    let g = got.predict(u, i);
                    assert!(
                        (f64::from(g) - want[k]).abs() < 1e-4,
                        "u{u} i{i}: {g} vs {}",
                        want[k]
                    );
                }
                k += 1;
            }
        }
    }

    #[test]
    fn a_block_structure_is_recovered_and_predicted() {
        // Users 0-2 rate items 0-2 with 5 and items 3-5 with 1; users 3-5 the reverse. User 0
        // has not rated item 1: in the right co-cluster the prediction is 5.
        let mut t = reco_core::Triplets::new(false);
        for u in 0..6u32 {
            for i in 0..6u32 {
                if (u, i) == (0, 1) {
                    continue;
                }
                let high = (u < 3) == (i < 3);
                t.push(u, i, if high { 5.0 } else { 1.0 }, None);
            }
        }
        let m = Interactions::from_triplets(&t, 6, 6, reco_core::DuplicatePolicy::Last)
            .unwrap()
            .0;
        let p = CoClusteringParams {
            user_clusters: 2,
            item_clusters: 2,
            epochs: 5,
        };
        // Start from a partition that mixes the blocks.
        let fit = CoClustering::fit_from(
            &p,
            &m,
            vec![0, 1, 0, 1, 0, 1],
            vec![1, 0, 0, 1, 1, 0],
            &FitOptions::default(),
        )
        .unwrap();
        let same = |a: &[u32], x: usize, y: usize| a[x] == a[y];
        assert!(same(&fit.user_cluster, 0, 1) && same(&fit.user_cluster, 1, 2));
        assert!(!same(&fit.user_cluster, 0, 3));
        assert!(same(&fit.item_cluster, 0, 1) && !same(&fit.item_cluster, 0, 5));
        // Co-cluster mean 5 (8 ratings of 5). User 0 rated 2 × 5 + 3 × 1, mean 13/5; its
        // cluster holds 49 rating points in 17 ratings. Item 1 mirrors it: 13/5 against 49/17.
        let want = 5.0 + 2.0 * (13.0 / 5.0 - 49.0 / 17.0);
        let got = fit.predict(0, 1);
        assert!((f64::from(got) - want).abs() < 1e-5, "{got} vs {want}");
    }
}
