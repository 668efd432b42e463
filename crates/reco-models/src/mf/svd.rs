//! Biased matrix factorisation by SGD ("SVD", Funk / Koren), with Surprise's semantics and
//! defaults: r̂ = μ + b_u + b_i + p_u · q_i, 100 factors, 20 epochs, learning_rate 0.005,
//! regularization 0.02, factors from N(0, 0.1). `biased = false` drops μ and the biases, which
//! is probabilistic MF's MAP objective (squared error with Gaussian priors = L2 penalties).
//! Training is DSGD by default: the ratings are cut into a grid of user × item blocks, and the
//! blocks of a stratum, which share no user and no item, run in parallel; deterministic for a
//! seed and a thread count. `parallel = false` is one sequential pass per epoch in the data's
//! order (user by user), or a seeded shuffle.

use crate::spec::{CheckState, Shape};
use rand::seq::SliceRandom;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use reco_core::model::{FitOptions, Query, RatingPredictor, Recommender};
use reco_core::{Dataset, Error, Interactions, Result};

use super::{check_common, dot, factor_capabilities, rng, simd_dispatch, split_by, Factors, Seen};
use crate::spec::impl_model;

/// Parameters; every learning rate and regularisation can be set per parameter group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SvdParams {
    /// Number of factors.
    pub factors: usize,
    /// Passes over the ratings.
    pub epochs: usize,
    /// Learn μ, b_u and b_i.
    pub biased: bool,
    /// Mean of the factor initialisation.
    pub init_mean: f64,
    /// Standard deviation of the factor initialisation.
    pub init_std: f64,
    /// Learning rate of every parameter, unless overridden.
    pub learning_rate: f64,
    /// Regularisation of every parameter, unless overridden.
    pub regularization: f64,
    /// Learning rate of b_u.
    pub learning_rate_bu: Option<f64>,
    /// Learning rate of b_i.
    pub learning_rate_bi: Option<f64>,
    /// Learning rate of p_u.
    pub learning_rate_pu: Option<f64>,
    /// Learning rate of q_i.
    pub learning_rate_qi: Option<f64>,
    /// Regularisation of b_u.
    pub regularization_bu: Option<f64>,
    /// Regularisation of b_i.
    pub regularization_bi: Option<f64>,
    /// Regularisation of p_u.
    pub regularization_pu: Option<f64>,
    /// Regularisation of q_i.
    pub regularization_qi: Option<f64>,
    /// Visit the ratings in a new seeded order every epoch instead of the data's order.
    pub shuffle: bool,
    /// Block-partitioned parallel SGD (DSGD): with T threads, users and items are cut into T
    /// ranges and the T blocks of each stratum run at once, touching disjoint parameters.
    /// Deterministic for a given seed and thread count; `false` is one sequential pass.
    pub parallel: bool,
    /// With validation data, stop after this many epochs without a better validation RMSE and
    /// keep the best epoch's factors (0: train every epoch).
    pub patience: usize,
    /// Train with differential privacy (DP-SGD, see [`super::dp`]): `{"noise": σ, "clip": C,
    /// "batch_size": B, "delta": δ}`. Uses `learning_rate` and `regularization` for every parameter, ignores `parallel`,
    /// `shuffle` and `patience`, and needs `biased`.
    pub dp: Option<super::dp::DpParams>,
}

impl Default for SvdParams {
    fn default() -> Self {
        SvdParams {
            factors: 100,
            epochs: 20,
            biased: true,
            init_mean: 0.0,
            init_std: 0.1,
            learning_rate: 0.005,
            regularization: 0.02,
            learning_rate_bu: None,
            learning_rate_bi: None,
            learning_rate_pu: None,
            learning_rate_qi: None,
            regularization_bu: None,
            regularization_bi: None,
            regularization_pu: None,
            regularization_qi: None,
            shuffle: false,
            parallel: true,
            patience: 3,
            dp: None,
        }
    }
}

impl SvdParams {
    /// Checks every rule, one error per broken rule.
    pub fn validate(&self) -> Result<()> {
        if let Some(dp) = &self.dp {
            dp.validate()?;
            if !self.biased {
                return Err(Error::param("dp", "private training needs biased = true"));
            }
        }
        let o = |x: Option<f64>, d: f64| x.unwrap_or(d);
        check_common(
            self.factors,
            self.epochs,
            &[
                ("learning_rate", self.learning_rate),
                (
                    "learning_rate_bu",
                    o(self.learning_rate_bu, self.learning_rate),
                ),
                (
                    "learning_rate_bi",
                    o(self.learning_rate_bi, self.learning_rate),
                ),
                (
                    "learning_rate_pu",
                    o(self.learning_rate_pu, self.learning_rate),
                ),
                (
                    "learning_rate_qi",
                    o(self.learning_rate_qi, self.learning_rate),
                ),
            ],
            &[
                ("regularization", self.regularization),
                (
                    "regularization_bu",
                    o(self.regularization_bu, self.regularization),
                ),
                (
                    "regularization_bi",
                    o(self.regularization_bi, self.regularization),
                ),
                (
                    "regularization_pu",
                    o(self.regularization_pu, self.regularization),
                ),
                (
                    "regularization_qi",
                    o(self.regularization_qi, self.regularization),
                ),
                ("init_std", self.init_std),
            ],
        )
    }
}

/// A fitted SVD model.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Svd {
    params: SvdParams,
    f: Factors,
    seen: Seen,
    /// ε of the (ε, δ) guarantee when trained with differential privacy.
    epsilon: Option<f64>,
}

impl Svd {
    /// Runs SGD: DSGD over blocks (one sequential pass when `parallel` is false), or DP-SGD
    /// when `dp` is set.
    pub fn fit(p: &SvdParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<Self> {
        p.validate()?;
        let m = &data.interactions;
        let mut f = Factors::normal(
            m.n_users(),
            m.n_items(),
            p.factors,
            p.init_mean,
            p.init_std,
            p.biased,
            opts.seed,
        )?;
        let epsilon = match &p.dp {
            Some(dp) => {
                // μ must not come from the private ratings: the middle of the (public) scale.
                let scale = crate::bias::Scale::of(m);
                f.mu = 0.5 * (scale.min + scale.max);
                let (lr, reg) = (p.learning_rate as f32, p.regularization as f32);
                Some(super::dp::train(&mut f, m, p.epochs, lr, reg, dp, opts)?)
            }
            None => {
                if p.biased && m.nnz() > 0 {
                    let sum = m.values().iter().map(|&v| v as f64).sum::<f64>();
                    f.mu = (sum / m.nnz() as f64) as f32;
                }
                dsgd(p, m, &mut f, opts)?;
                None
            }
        };
        f.check_finite("svd")?;
        Ok(Svd {
            params: p.clone(),
            seen: Seen::of(m),
            f,
            epsilon,
        })
    }

    /// The fitted factors.
    pub fn factors(&self) -> &Factors {
        &self.f
    }

    /// ε of the (ε, δ)-DP guarantee (δ from the parameters) when trained privately.
    pub fn epsilon(&self) -> Option<f64> {
        self.epsilon
    }
}

/// Learning rates and regularisations of one fit.
struct Rates {
    learning_rate_bu: f32,
    learning_rate_bi: f32,
    learning_rate_pu: f32,
    learning_rate_qi: f32,
    regularization_bu: f32,
    regularization_bi: f32,
    regularization_pu: f32,
    regularization_qi: f32,
    biased: bool,
    mu: f32,
    k: usize,
}

impl Rates {
    /// The per-group rates of `p`, each falling back to the common one.
    fn of(p: &SvdParams, mu: f32) -> Rates {
        let g = |x: Option<f64>, d: f64| x.unwrap_or(d) as f32;
        Rates {
            learning_rate_bu: g(p.learning_rate_bu, p.learning_rate),
            learning_rate_bi: g(p.learning_rate_bi, p.learning_rate),
            learning_rate_pu: g(p.learning_rate_pu, p.learning_rate),
            learning_rate_qi: g(p.learning_rate_qi, p.learning_rate),
            regularization_bu: g(p.regularization_bu, p.regularization),
            regularization_bi: g(p.regularization_bi, p.regularization),
            regularization_pu: g(p.regularization_pu, p.regularization),
            regularization_qi: g(p.regularization_qi, p.regularization),
            biased: p.biased,
            mu,
            k: p.factors,
        }
    }
}

/// The ratings cut into a t × t grid of blocks of contiguous user and item ranges: the t blocks
/// of a stratum (b, (b + s) mod t) share no user and no item and run in parallel (DSGD). Users
/// and items are renumbered by a seeded permutation first, so blocks hold about the same number
/// of ratings however the ids were ordered.
struct Grid {
    t: usize,
    perm_u: Vec<u32>,
    perm_i: Vec<u32>,
    /// Each block's (user, item, rating), row-major, with ids relative to the block's first
    /// user and item. The ratings themselves are stored and shuffled per block, not positions
    /// into one array: an epoch then streams through memory instead of gathering at random.
    blocks: Vec<Vec<(u32, u32, f32)>>,
    /// Ratings in all blocks.
    n: usize,
    /// Row boundaries of the user and item ranges.
    user_cut: Vec<usize>,
    item_cut: Vec<usize>,
}

impl Grid {
    fn new(m: &Interactions, t: usize, seed: u64) -> Grid {
        let (nu, ni) = (m.n_users(), m.n_items());
        let mut perm_u: Vec<u32> = (0..nu as u32).collect();
        let mut perm_i: Vec<u32> = (0..ni as u32).collect();
        if t > 1 {
            perm_u.shuffle(&mut rng(seed, 22));
            perm_i.shuffle(&mut rng(seed, 23));
        }
        let (nu1, ni1) = (nu.max(1), ni.max(1));
        let ub = |u: u32| (u as usize * t / nu1).min(t - 1);
        let ib = |i: u32| (i as usize * t / ni1).min(t - 1);
        // Row boundaries consistent with ub/ib: block b holds rows r with r·t/n = b.
        let user_cut: Vec<usize> = (0..=t).map(|b| (b * nu1).div_ceil(t).min(nu)).collect();
        let item_cut: Vec<usize> = (0..=t).map(|b| (b * ni1).div_ceil(t).min(ni)).collect();
        let mut blocks: Vec<Vec<(u32, u32, f32)>> = vec![Vec::new(); t * t];
        for (u, i, r) in m.iter() {
            let (u, i) = (perm_u[u as usize], perm_i[i as usize]);
            let (bu, bi) = (ub(u), ib(i));
            // Both cuts are below the ids they subtract from (ids are u32, so are the offsets).
            blocks[bu * t + bi].push((u - user_cut[bu] as u32, i - item_cut[bi] as u32, r));
        }
        Grid {
            t,
            perm_u,
            perm_i,
            n: m.nnz(),
            blocks,
            user_cut,
            item_cut,
        }
    }

    /// `f` with rows in permuted order.
    fn permute(&self, f: &Factors) -> Factors {
        let k = f.k;
        let mut g = Factors {
            k,
            users: vec![0.0; f.users.len()],
            items: vec![0.0; f.items.len()],
            user_bias: f.user_bias.clone(),
            item_bias: f.item_bias.clone(),
            mu: f.mu,
        };
        for (u, &pu) in self.perm_u.iter().enumerate() {
            let pu = pu as usize;
            g.users[pu * k..(pu + 1) * k].copy_from_slice(&f.users[u * k..(u + 1) * k]);
        }
        for (i, &pi) in self.perm_i.iter().enumerate() {
            let pi = pi as usize;
            g.items[pi * k..(pi + 1) * k].copy_from_slice(&f.items[i * k..(i + 1) * k]);
        }
        g
    }

    /// Writes the permuted `g` back into `f`'s order (biases only when `biased`).
    fn unpermute(&self, g: &Factors, f: &mut Factors, biased: bool) {
        let k = f.k;
        for (u, &pu) in self.perm_u.iter().enumerate() {
            let pu = pu as usize;
            f.users[u * k..(u + 1) * k].copy_from_slice(&g.users[pu * k..(pu + 1) * k]);
            if biased {
                f.user_bias[u] = g.user_bias[pu];
            }
        }
        for (i, &pi) in self.perm_i.iter().enumerate() {
            let pi = pi as usize;
            f.items[i * k..(i + 1) * k].copy_from_slice(&g.items[pi * k..(pi + 1) * k]);
            if biased {
                f.item_bias[i] = g.item_bias[pi];
            }
        }
    }

    /// One epoch: the t strata in turn, each stratum's blocks in parallel. Returns the summed
    /// squared training error.
    fn epoch(&self, g: &mut Factors, rates: &Rates) -> f64 {
        let (t, k, biased) = (self.t, g.k, rates.biased);
        let mut sq = 0f64;
        for s in 0..t {
            let mut users = split_by(&mut g.users, &self.user_cut, k);
            let mut ubias = split_by(&mut g.user_bias, &self.user_cut, usize::from(biased));
            let mut items: Vec<Option<&mut [f32]>> = split_by(&mut g.items, &self.item_cut, k)
                .into_iter()
                .map(Some)
                .collect();
            let mut ibias: Vec<Option<&mut [f32]>> =
                split_by(&mut g.item_bias, &self.item_cut, usize::from(biased))
                    .into_iter()
                    .map(Some)
                    .collect();
            let jobs: Vec<_> = (0..t)
                .map(|b| {
                    let c = (b + s) % t;
                    let block = Block {
                        users: std::mem::take(&mut users[b]),
                        ubias: std::mem::take(&mut ubias[b]),
                        items: items[c].take().unwrap_or_default(),
                        ibias: ibias[c].take().unwrap_or_default(),
                    };
                    (block, &self.blocks[b * t + c])
                })
                .collect();
            let errs: Vec<f64> = jobs
                .into_par_iter()
                .map(|(block, ratings)| run_block(block, ratings, rates))
                .collect();
            sq += errs.iter().sum::<f64>();
        }
        sq
    }

    /// RMSE of `g` (permuted) on the validation ratings (original ids).
    fn validation_rmse(&self, g: &Factors, v: &Interactions, biased: bool) -> f64 {
        let k = g.k;
        let (mut se, mut n) = (0f64, 0usize);
        for (u, i, r) in v.iter() {
            let (pu, pi) = (
                self.perm_u[u as usize] as usize,
                self.perm_i[i as usize] as usize,
            );
            let mut est = dot(
                &g.users[pu * k..(pu + 1) * k],
                &g.items[pi * k..(pi + 1) * k],
            );
            if biased {
                est += g.mu + g.user_bias[pu] + g.item_bias[pi];
            }
            se += ((r - est) as f64).powi(2);
            n += 1;
        }
        (se / n.max(1) as f64).sqrt()
    }
}

/// Trains `f` by DSGD, with early stopping on the validation RMSE when there is validation
/// data (keeping the best epoch's factors).
fn dsgd(
    p: &SvdParams,
    m: &Interactions,
    f: &mut Factors,
    opts: &FitOptions<'_>,
) -> reco_core::Result<()> {
    let rates = Rates::of(p, f.mu);
    let t = if p.parallel {
        rayon::current_num_threads().clamp(1, 64)
    } else {
        1
    };
    let mut grid = Grid::new(m, t, opts.seed);
    let mut g = grid.permute(f);
    let mut shuffler = rng(opts.seed, 21);
    let mut best: Option<(f64, usize, Factors)> = None;
    for epoch in 0..p.epochs {
        if p.shuffle {
            grid.blocks
                .iter_mut()
                .for_each(|b| b.shuffle(&mut shuffler));
        }
        let sq = grid.epoch(&mut g, &rates);
        let mut loss = (sq / grid.n.max(1) as f64).sqrt();
        if let (Some(v), true) = (opts.validation, p.patience > 0) {
            loss = grid.validation_rmse(&g, v, p.biased);
            if best.as_ref().is_none_or(|b| loss < b.0) {
                best = Some((loss, epoch, g.clone()));
            } else if best.as_ref().is_some_and(|b| epoch - b.1 >= p.patience) {
                opts.report("epoch", p.epochs as u64, p.epochs as u64, Some(loss));
                break;
            }
        }
        opts.step("epoch", epoch as u64 + 1, p.epochs as u64, Some(loss))?;
    }
    if let Some((_, _, snapshot)) = best {
        g = snapshot;
    }
    grid.unpermute(&g, f, p.biased);
    Ok(())
}

/// The parameters one block may touch: a user range and an item range.
struct Block<'a> {
    users: &'a mut [f32],
    ubias: &'a mut [f32],
    items: &'a mut [f32],
    ibias: &'a mut [f32],
}

simd_dispatch! {
    /// One SGD pass over a block's ratings; returns the summed squared error. Compiled twice, and
    /// the AVX2+FMA copy is used where the processor has it. The updates use fused multiply-adds
    /// (`mul_add`), which are exactly rounded in hardware and in software alike, so results do not
    /// depend on the processor — only the speed does.
    fn run_block(b: Block<'_>, ratings: &[(u32, u32, f32)], r: &Rates) -> f64 => run_block_generic
}

#[inline(always)]
fn run_block_generic(b: Block<'_>, ratings: &[(u32, u32, f32)], r: &Rates) -> f64 {
    let k = r.k;
    let mut sq = 0f64;
    for &(u, i, rating) in ratings {
        let (u, i) = (u as usize, i as usize);
        let pu = &mut b.users[u * k..(u + 1) * k];
        let qi = &mut b.items[i * k..(i + 1) * k];
        let mut est = dot(pu, qi);
        if r.biased {
            est += r.mu + b.ubias[u] + b.ibias[i];
        }
        let err = rating - est;
        sq += (err as f64) * (err as f64);
        if r.biased {
            b.ubias[u] += r.learning_rate_bu * (err - r.regularization_bu * b.ubias[u]);
            b.ibias[i] += r.learning_rate_bi * (err - r.regularization_bi * b.ibias[i]);
        }
        // p ← p + learning_rate (err q − regularization p) = p (1 − learning_rate regularization) + (learning_rate err) q, as two fused operations.
        let (dp, gp) = (
            1.0 - r.learning_rate_pu * r.regularization_pu,
            r.learning_rate_pu * err,
        );
        let (dq, gq) = (
            1.0 - r.learning_rate_qi * r.regularization_qi,
            r.learning_rate_qi * err,
        );
        for (a, q) in pu.iter_mut().zip(qi.iter_mut()) {
            let (pa, qb) = (*a, *q);
            *a = pa.mul_add(dp, gp * qb);
            *q = qb.mul_add(dq, gq * pa);
        }
    }
    sq
}

impl RatingPredictor for Svd {
    /// Surprise's estimate: terms of an unknown user or item are left out.
    fn predict(&self, u: u32, i: u32) -> f32 {
        self.seen.estimate(&self.f, u, i)
    }
}

impl Recommender for Svd {
    fn n_items(&self) -> usize {
        self.f.n_items()
    }

    fn score(&self, q: &Query<'_>, out: &mut [f32]) -> Result<()> {
        let f = &self.f;
        let known = q.history.is_empty() && q.user.is_some_and(|u| self.seen.user(u));
        let (p, bu) = if known || !q.history.is_empty() {
            f.query_user(q, self.params.regularization as f32 * 10.0, |i, v| {
                v - f.mu - f.item_bias.get(i as usize).copied().unwrap_or(0.0)
            })?
        } else {
            (vec![0.0; f.k], 0.0)
        };
        f.score_vector(&p, self.params.biased, out);
        for (i, o) in out.iter_mut().enumerate() {
            if !self.seen.item(i as u32) {
                *o -= dot(&p, f.item(i as u32));
            }
            *o += f.mu + bu;
        }
        Ok(())
    }

    fn score_users(&self, users: &[u32], out: &mut [f32]) -> Result<()> {
        let f = &self.f;
        f.score_users(users, out, self.params.biased, |u, p| {
            if !self.seen.user(u) {
                return f.mu;
            }
            p.copy_from_slice(f.user(u));
            f.mu + f.user_bias.get(u as usize).copied().unwrap_or(0.0)
        })?;
        // Items without training ratings have factors that never moved from their start: as
        // in `score`, only their biases count.
        let n = f.n_items();
        let unseen: Vec<u32> = (0..n as u32).filter(|&i| !self.seen.item(i)).collect();
        if unseen.is_empty() {
            return Ok(());
        }
        for (o, &u) in out.chunks_exact_mut(n.max(1)).zip(users) {
            if self.seen.user(u) {
                let p = f.user(u);
                for &i in &unseen {
                    o[i as usize] -= dot(p, f.item(i));
                }
            }
        }
        Ok(())
    }

    fn as_rating_predictor(&self) -> Option<&dyn RatingPredictor> {
        Some(self)
    }
    factor_capabilities!();
}

impl_model!(
    Svd,
    fn privacy(&self) -> Option<(f64, f64)> {
        Some((self.epsilon?, self.params.dp.as_ref()?.delta))
    }
);

impl crate::spec::Kind for Svd {
    const NAME: &'static str = "svd";
    const SUMMARY: &'static str = "Biased MF by SGD (Surprise's SVD; `biased = false` is probabilistic MF), optionally differentially private.";
    const RENAMED: &'static [(&'static str, &'static str)] = &[
        ("lr", "learning_rate"),
        ("reg", "regularization"),
        ("lr_bu", "learning_rate_bu"),
        ("lr_bi", "learning_rate_bi"),
        ("lr_pu", "learning_rate_pu"),
        ("lr_qi", "learning_rate_qi"),
        ("reg_bu", "regularization_bu"),
        ("reg_bi", "regularization_bi"),
        ("reg_pu", "regularization_pu"),
        ("reg_qi", "regularization_qi"),
        ("dp.batch", "batch_size"),
    ];
    type Params = SvdParams;
    type Fitted = Svd;

    fn validate(p: &SvdParams) -> Result<()> {
        p.validate()
    }

    fn footprint(p: &SvdParams, shape: &crate::spec::Shape) -> crate::spec::Footprint {
        crate::spec::Footprint::factors(shape, p.factors, 4.0)
    }
    fn capabilities(_: &SvdParams) -> crate::spec::Capabilities {
        use crate::spec::Capabilities;
        Capabilities {
            rates: true,
            similar_items: true,
            embeddings: true,
            ..Default::default()
        }
    }

    fn fit(p: &SvdParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<Svd> {
        Svd::fit(p, data, opts)
    }

    fn restore(p: &SvdParams, state: &[u8], shape: &Shape) -> Result<Svd> {
        crate::spec::restore_state(p, state, shape, |m: &Svd| &m.params)
    }

    fn examples() -> Vec<SvdParams> {
        vec![
            SvdParams {
                factors: 16,
                ..Default::default()
            },
            SvdParams {
                factors: 16,
                shuffle: true,
                ..Default::default()
            },
        ]
    }
}

impl CheckState for Svd {
    fn check_state(&self, shape: &Shape) -> std::result::Result<(), String> {
        self.f.check(shape)?;
        self.seen.check(shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reco_core::split::{split, Protocol};
    use reco_core::synth::{scalable, ScalableConfig};

    fn rmse(m: &Svd, t: &reco_core::Interactions) -> f64 {
        let se: f64 = t
            .iter()
            .map(|(u, i, r)| ((m.predict(u, i) - r) as f64).powi(2))
            .sum();
        (se / t.nnz() as f64).sqrt()
    }

    #[test]
    fn early_stopping_keeps_the_best_validation_epoch() {
        let c = ScalableConfig {
            users: 300,
            items: 200,
            interactions: 8_000,
            seed: 3,
            ..Default::default()
        };
        let ds = scalable(&c, &|_, _| {}).unwrap();
        let fold = &split(&ds, &Protocol::Holdout { ratio: 0.2 }, 1).unwrap()[0];
        // Many epochs with a large learning rate overfit the training part.
        let p = SvdParams {
            factors: 32,
            epochs: 150,
            learning_rate: 0.03,
            regularization: 0.0,
            ..Default::default()
        };
        let stopped = Svd::fit(
            &p,
            &fold.train,
            &FitOptions {
                seed: 1,
                progress: None,
                validation: Some(&fold.test),
                checkpoint: None,
            },
        )
        .unwrap();
        let full = Svd::fit(
            &SvdParams {
                patience: 0,
                ..p.clone()
            },
            &fold.train,
            &FitOptions {
                seed: 1,
                progress: None,
                validation: Some(&fold.test),
                checkpoint: None,
            },
        )
        .unwrap();
        assert!(
            rmse(&stopped, &fold.test) < rmse(&full, &fold.test),
            "{} vs {}",
            rmse(&stopped, &fold.test),
            rmse(&full, &fold.test)
        );
        assert!(SvdParams {
            learning_rate: 0.0,
            ..Default::default()
        }
        .validate()
        .is_err());
    }

    #[test]
    fn private_training_trades_accuracy_for_privacy() {
        let c = ScalableConfig {
            users: 300,
            items: 200,
            interactions: 8_000,
            seed: 3,
            ..Default::default()
        };
        let ds = scalable(&c, &|_, _| {}).unwrap();
        let fold = &split(&ds, &Protocol::Holdout { ratio: 0.2 }, 1).unwrap()[0];
        let fit = |noise: Option<f64>| {
            let p = SvdParams {
                factors: 8,
                epochs: 10,
                learning_rate: 0.01,
                dp: noise.map(|noise| super::super::dp::DpParams {
                    noise,
                    clip: 1.0,
                    batch_size: 200,
                    delta: 1e-5,
                }),
                ..Default::default()
            };
            Svd::fit(&p, &fold.train, &FitOptions::default()).unwrap()
        };
        let mean_only = {
            let mu = fold.train.interactions.values().iter().sum::<f32>()
                / fold.train.interactions.nnz() as f32;
            let se: f64 = fold
                .test
                .iter()
                .map(|(_, _, r)| ((r - mu) as f64).powi(2))
                .sum();
            (se / fold.test.nnz() as f64).sqrt()
        };
        let (low, high) = (fit(Some(0.5)), fit(Some(8.0)));
        let (e_low, e_high) = (low.epsilon().unwrap(), high.epsilon().unwrap());
        assert!(e_low > e_high && e_high > 0.0, "ε {e_low} vs {e_high}");
        assert!(fit(None).epsilon().is_none());
        // Little noise learns the biases (beats the global mean); much noise is worse.
        let (r_low, r_high) = (rmse(&low, &fold.test), rmse(&high, &fold.test));
        assert!(
            r_low < mean_only && r_low < r_high,
            "σ 0.5: {r_low}, σ 8: {r_high}, mean: {mean_only}"
        );
        assert!(SvdParams {
            biased: false,
            dp: Some(Default::default()),
            ..Default::default()
        }
        .validate()
        .is_err());
    }
}
