//! Bayesian probabilistic matrix factorisation by Gibbs sampling (Salakhutdinov & Mnih 2008),
//! with user and item biases: r_ui ~ N(μ + b_u + b_i + p_u · q_i, 1/α). Each user's [p_u, b_u]
//! is drawn from N(μ_U, Λ_U⁻¹), each item's [q_i, b_i] from N(μ_V, Λ_V⁻¹), and (μ_U, Λ_U),
//! (μ_V, Λ_V) from Normal-Wishart priors; α has a Gamma prior unless fixed.
//!
//! A sweep draws the hyper-parameters given the rows, then every user row given the items (in
//! parallel: the rows are independent given the rest), then every item row, then α. The
//! prediction is the mean of r̂ over the kept sweeps. That mean is itself an inner product:
//! (1/S) Σ_s p_u^s · q_i^s = [p_u^1 … p_u^S]/√S · [q_i^1 … q_i^S]/√S, so the fitted model is an
//! ordinary factor model of S × `factors` columns (biases, being linear, are plain means) and
//! scores blocks of users with one matrix product like every other factor model.

use crate::spec::{check, CheckState, Shape};
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use rand_distr::{ChiSquared, Distribution, Gamma, StandardNormal};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use reco_core::model::{FitOptions, Query, RatingPredictor, Recommender};
use reco_core::{Dataset, Error, Interactions, Result};

use super::{check_common, factor_capabilities, Factors, Seen};
use crate::spec::impl_model;

/// Largest `factors × samples`: the fitted model keeps that many columns per user and item.
const MAX_COLUMNS: usize = 1 << 16;

/// Parameters of Bayesian PMF.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BpmfParams {
    /// Number of factors.
    pub factors: usize,
    /// Sweeps drawn and discarded before the chain is used.
    pub burn_in: usize,
    /// Sweeps kept after the burn-in; the prediction averages them, and the fitted model holds
    /// `factors × samples` columns per row.
    pub samples: usize,
    /// Learn user and item biases (as one more sampled coordinate of each row).
    pub biased: bool,
    /// Fixed noise precision α = 1/σ²; absent: α is sampled from its Gamma posterior.
    pub noise_precision: Option<f64>,
    /// β₀ of the Normal-Wishart priors: how strongly the row means are pulled to zero.
    pub prior_strength: f64,
    /// Standard deviation of the initial rows.
    pub init_std: f64,
}

impl Default for BpmfParams {
    fn default() -> Self {
        BpmfParams {
            factors: 10,
            burn_in: 20,
            samples: 80,
            biased: true,
            noise_precision: None,
            prior_strength: 2.0,
            init_std: 0.1,
        }
    }
}

impl BpmfParams {
    /// Checks every rule, one error per broken rule.
    pub fn validate(&self) -> Result<()> {
        if self.samples == 0 {
            return Err(Error::param("samples", "must be at least 1"));
        }
        check_common(
            self.factors,
            self.samples,
            &[("prior_strength", self.prior_strength)],
            &[("init_std", self.init_std)],
        )?;
        if let Some(a) = self.noise_precision {
            if !(a > 0.0 && a.is_finite()) {
                return Err(Error::param(
                    "noise_precision",
                    format!("must be a finite number > 0, got {a}"),
                ));
            }
        }
        match self.factors.checked_mul(self.samples) {
            Some(c) if c <= MAX_COLUMNS => Ok(()),
            _ => Err(Error::param(
                "samples",
                format!(
                    "factors × samples must be at most {MAX_COLUMNS} (the fitted model keeps \
                     that many columns per row), got {} × {}",
                    self.factors, self.samples
                ),
            )),
        }
    }

    /// Columns of the fitted model.
    fn columns(&self) -> usize {
        self.factors.saturating_mul(self.samples)
    }
}

/// A fitted Bayesian PMF model.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Bpmf {
    params: BpmfParams,
    /// The kept sweeps side by side, each scaled by 1/√S (see the module comment).
    f: Factors,
    /// Posterior means of the `factors`-wide rows: what an anonymous history is folded into.
    mean: Factors,
    /// Ridge λ of that fold-in: the prior precision over the noise precision of the last sweep.
    fold_in_reg: f32,
    seen: Seen,
}

/// Dense symmetric positive-definite helpers on row-major `d × d` slices (d is small: factors
/// plus one).
mod dense {
    /// Lower Cholesky factor in place; false when `a` is not positive definite.
    pub fn cholesky(a: &mut [f64], d: usize) -> bool {
        for j in 0..d {
            let mut s = a[j * d + j];
            for k in 0..j {
                s -= a[j * d + k] * a[j * d + k];
            }
            if !(s > 0.0 && s.is_finite()) {
                return false;
            }
            let l = s.sqrt();
            a[j * d + j] = l;
            for i in j + 1..d {
                let mut s = a[i * d + j];
                for k in 0..j {
                    s -= a[i * d + k] * a[j * d + k];
                }
                a[i * d + j] = s / l;
            }
            for k in j + 1..d {
                a[j * d + k] = 0.0;
            }
        }
        true
    }

    /// Solves L y = b in place (L lower, from [`cholesky`]).
    pub fn forward(l: &[f64], d: usize, b: &mut [f64]) {
        for i in 0..d {
            let mut s = b[i];
            for k in 0..i {
                s -= l[i * d + k] * b[k];
            }
            b[i] = s / l[i * d + i];
        }
    }

    /// Solves Lᵀ x = y in place.
    pub fn backward(l: &[f64], d: usize, y: &mut [f64]) {
        for i in (0..d).rev() {
            let mut s = y[i];
            for k in i + 1..d {
                s -= l[k * d + i] * y[k];
            }
            y[i] = s / l[i * d + i];
        }
    }

    /// The inverse of a positive-definite `a` (overwritten by its factor); None when it is not
    /// positive definite.
    pub fn inverse(a: &mut [f64], d: usize) -> Option<Vec<f64>> {
        if !cholesky(a, d) {
            return None;
        }
        let mut inv = vec![0f64; d * d];
        let mut col = vec![0f64; d];
        for c in 0..d {
            col.iter_mut().for_each(|v| *v = 0.0);
            col[c] = 1.0;
            forward(a, d, &mut col);
            backward(a, d, &mut col);
            for r in 0..d {
                inv[r * d + c] = col[r];
            }
        }
        Some(inv)
    }
}

/// The prior of one side's rows: N(mean, precision⁻¹).
struct Hyper {
    mean: Vec<f64>,
    precision: Vec<f64>,
}

/// Draws (μ, Λ) from the Normal-Wishart posterior given `rows` (row-major, `d` wide), with
/// prior μ₀ = 0, β₀ = `beta0`, W₀ = I, ν₀ = d.
fn sample_hyper(rows: &[f64], d: usize, beta0: f64, rng: &mut ChaCha8Rng) -> Result<Hyper> {
    let n = (rows.len() / d) as f64;
    let mut mean = vec![0f64; d];
    for r in rows.chunks_exact(d) {
        mean.iter_mut().zip(r).for_each(|(m, v)| *m += v);
    }
    mean.iter_mut().for_each(|m| *m /= n.max(1.0));
    // W*⁻¹ = I + Σ (x − x̄)(x − x̄)ᵀ + β₀N/(β₀+N) x̄ x̄ᵀ
    let mut winv = vec![0f64; d * d];
    for r in rows.chunks_exact(d) {
        for i in 0..d {
            let di = r[i] - mean[i];
            for j in 0..=i {
                winv[i * d + j] += di * (r[j] - mean[j]);
            }
        }
    }
    let shrink = beta0 * n / (beta0 + n);
    for i in 0..d {
        for j in 0..=i {
            winv[i * d + j] += shrink * mean[i] * mean[j];
            winv[j * d + i] = winv[i * d + j];
        }
        winv[i * d + i] += 1.0;
    }
    let fail = || Error::training("bpmf", "a hyper-parameter draw was not positive definite");
    let mut w = dense::inverse(&mut winv, d).ok_or_else(fail)?;
    if !dense::cholesky(&mut w, d) {
        return Err(fail());
    }
    // Bartlett: Λ = G A Aᵀ Gᵀ with G Gᵀ = W*, A lower, A_ii² ~ χ²(ν − i), A_ij ~ N(0, 1).
    let nu = d as f64 + n;
    let mut a = vec![0f64; d * d];
    for i in 0..d {
        let chi =
            ChiSquared::new(nu - i as f64).map_err(|e| Error::training("bpmf", e.to_string()))?;
        a[i * d + i] = chi.sample(rng).sqrt();
        for j in 0..i {
            a[i * d + j] = rng.sample(StandardNormal);
        }
    }
    let mut ga = vec![0f64; d * d];
    for i in 0..d {
        for j in 0..d {
            ga[i * d + j] = (j..=i).map(|k| w[i * d + k] * a[k * d + j]).sum();
        }
    }
    let mut precision = vec![0f64; d * d];
    for i in 0..d {
        for j in 0..=i {
            let v: f64 = (0..d).map(|k| ga[i * d + k] * ga[j * d + k]).sum();
            precision[i * d + j] = v;
            precision[j * d + i] = v;
        }
    }
    // μ ~ N(μ*, (β* Λ)⁻¹), μ* = N x̄ / (β₀ + N).
    let beta = beta0 + n;
    let mut l: Vec<f64> = precision.iter().map(|v| v * beta).collect();
    if !dense::cholesky(&mut l, d) {
        return Err(fail());
    }
    let mut e: Vec<f64> = (0..d).map(|_| rng.sample(StandardNormal)).collect();
    dense::backward(&l, d, &mut e);
    let mean = mean.iter().zip(&e).map(|(m, e)| m * n / beta + e).collect();
    Ok(Hyper { mean, precision })
}

/// The sampling state of one side: `d`-wide rows [factors, bias] (the bias slot only when
/// biased).
struct Side<'a> {
    rows: &'a mut [f64],
    /// The other side's rows, read as features [factors, 1] with the bias moved into the target.
    other: &'a [f64],
    /// The ratings by row of this side.
    m: &'a Interactions,
}

/// Draws every row of a side given the other side, in parallel, each row from its own seeded
/// stream so that the draw does not depend on the thread count.
fn sample_rows(
    s: Side<'_>,
    hyper: &Hyper,
    p: &BpmfParams,
    mu: f64,
    alpha: f64,
    seed: u64,
) -> Result<()> {
    let k = p.factors;
    let d = k + usize::from(p.biased);
    let prior_b: Vec<f64> = (0..d)
        .map(|i| {
            (0..d)
                .map(|j| hyper.precision[i * d + j] * hyper.mean[j])
                .sum()
        })
        .collect();
    s.rows.par_chunks_mut(d).enumerate().try_for_each_init(
        || (vec![0f64; d * d], vec![0f64; d], vec![0f64; d]),
        |(a, b, z), (r, row)| {
            let mut rng = ChaCha8Rng::seed_from_u64(seed);
            rng.set_stream(r as u64);
            a.copy_from_slice(&hyper.precision);
            b.copy_from_slice(&prior_b);
            let (idx, vals) = (s.m.user_items(r as u32), s.m.user_values(r as u32));
            for (&j, &v) in idx.iter().zip(vals) {
                let o = &s.other[j as usize * d..(j as usize + 1) * d];
                z[..k].copy_from_slice(&o[..k]);
                let mut t = v as f64 - mu;
                if p.biased {
                    z[k] = 1.0;
                    t -= o[k];
                }
                for i in 0..d {
                    let zi = alpha * z[i];
                    b[i] += zi * t;
                    for c in 0..=i {
                        a[i * d + c] += zi * z[c];
                    }
                }
            }
            for i in 0..d {
                for c in 0..i {
                    a[c * d + i] = a[i * d + c];
                }
            }
            if !dense::cholesky(a, d) {
                return Err(Error::training(
                    "bpmf",
                    "a row's posterior precision was not positive definite",
                ));
            }
            // x = L⁻ᵀ (L⁻¹ b + ε) ~ N(Λ*⁻¹ b, Λ*⁻¹)
            dense::forward(a, d, b);
            for v in b.iter_mut() {
                *v += rng.sample::<f64, _>(StandardNormal);
            }
            dense::backward(a, d, b);
            row.copy_from_slice(b);
            Ok(())
        },
    )
}

/// Σ (r − r̂)² over the training ratings with the current rows.
fn squared_error(
    m: &Interactions,
    users: &[f64],
    items: &[f64],
    d: usize,
    k: usize,
    mu: f64,
) -> f64 {
    (0..m.n_users())
        .into_par_iter()
        .map(|u| {
            let x = &users[u * d..(u + 1) * d];
            m.user_items(u as u32)
                .iter()
                .zip(m.user_values(u as u32))
                .map(|(&i, &v)| {
                    let y = &items[i as usize * d..(i as usize + 1) * d];
                    let mut est = mu + (0..k).map(|c| x[c] * y[c]).sum::<f64>();
                    if d > k {
                        est += x[k] + y[k];
                    }
                    (v as f64 - est).powi(2)
                })
                .sum::<f64>()
        })
        .sum()
}

impl Bpmf {
    /// Runs the Gibbs sampler and keeps the post-burn-in sweeps.
    pub fn fit(p: &BpmfParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<Self> {
        p.validate()?;
        let m = &data.interactions;
        let mt = m.transpose();
        let (k, s) = (p.factors, p.samples);
        let d = k + usize::from(p.biased);
        let (nu, ni) = (m.n_users(), m.n_items());
        let init = Factors::normal(nu, ni, d, 0.0, p.init_std, false, opts.seed)?;
        let mut users: Vec<f64> = init.users.iter().map(|&v| v as f64).collect();
        let mut items: Vec<f64> = init.items.iter().map(|&v| v as f64).collect();
        let mu = if m.nnz() > 0 {
            m.values().iter().map(|&v| v as f64).sum::<f64>() / m.nnz() as f64
        } else {
            0.0
        };
        let cols = p.columns();
        let mut f = Factors {
            k: cols,
            users: vec![0f32; nu * cols],
            items: vec![0f32; ni * cols],
            user_bias: vec![0f32; nu],
            item_bias: vec![0f32; ni],
            mu: mu as f32,
        };
        let mut mean = Factors {
            k,
            users: vec![0f32; nu * k],
            items: vec![0f32; ni * k],
            user_bias: vec![0f32; nu],
            item_bias: vec![0f32; ni],
            mu: mu as f32,
        };
        let mut rng = super::rng(opts.seed, 31);
        let mut alpha = p.noise_precision.unwrap_or(2.0);
        let scale = 1.0 / (s as f64).sqrt();
        let total = p.burn_in + s;
        let mut fold_in_reg = 1.0f32;
        for sweep in 0..total {
            let seed = rng.gen::<u64>();
            let hu = sample_hyper(&users, d, p.prior_strength, &mut rng)?;
            sample_rows(
                Side {
                    rows: &mut users,
                    other: &items,
                    m,
                },
                &hu,
                p,
                mu,
                alpha,
                seed,
            )?;
            let hv = sample_hyper(&items, d, p.prior_strength, &mut rng)?;
            sample_rows(
                Side {
                    rows: &mut items,
                    other: &users,
                    m: &mt,
                },
                &hv,
                p,
                mu,
                alpha,
                seed ^ 0x9e37_79b9_7f4a_7c15,
            )?;
            let sse = squared_error(m, &users, &items, d, k, mu);
            if p.noise_precision.is_none() {
                // Gamma(1, 1) prior: shape 1 + n/2, rate 1 + SSE/2.
                let g = Gamma::new(1.0 + m.nnz() as f64 / 2.0, 1.0 / (1.0 + sse / 2.0))
                    .map_err(|e| Error::training("bpmf", e.to_string()))?;
                alpha = g.sample(&mut rng);
            }
            if sweep >= p.burn_in {
                let at = (sweep - p.burn_in) * k;
                keep(
                    &users,
                    &mut f.users,
                    &mut f.user_bias,
                    &mut mean.users,
                    d,
                    k,
                    cols,
                    at,
                    scale,
                    s,
                );
                keep(
                    &items,
                    &mut f.items,
                    &mut f.item_bias,
                    &mut mean.items,
                    d,
                    k,
                    cols,
                    at,
                    scale,
                    s,
                );
                let diag: f64 = (0..k).map(|i| hu.precision[i * d + i]).sum::<f64>() / k as f64;
                fold_in_reg = (diag / alpha) as f32;
            }
            let rmse = (sse / m.nnz().max(1) as f64).sqrt();
            opts.step("sweep", sweep as u64 + 1, total as u64, Some(rmse))?;
        }
        mean.user_bias.clone_from(&f.user_bias);
        mean.item_bias.clone_from(&f.item_bias);
        // Rows without training data hold draws from the prior; scoring treats them as unknown.
        forget_unseen(&mut f.users, &mut f.user_bias, cols, |u| m.user_len(u) == 0);
        forget_unseen(&mut mean.users, &mut mean.user_bias, k, |u| {
            m.user_len(u) == 0
        });
        forget_unseen(&mut f.items, &mut f.item_bias, cols, |i| m.item_len(i) == 0);
        forget_unseen(&mut mean.items, &mut mean.item_bias, k, |i| {
            m.item_len(i) == 0
        });
        f.check_finite("bpmf")?;
        Ok(Bpmf {
            params: p.clone(),
            seen: Seen::of(m),
            f,
            mean,
            fold_in_reg,
        })
    }
}

/// Zeroes the rows (`width` wide) and biases of the rows `unseen` picks.
fn forget_unseen(rows: &mut [f32], bias: &mut [f32], width: usize, unseen: impl Fn(u32) -> bool) {
    for (r, (row, b)) in rows
        .chunks_exact_mut(width)
        .zip(bias.iter_mut())
        .enumerate()
    {
        if unseen(r as u32) {
            row.iter_mut().for_each(|v| *v = 0.0);
            *b = 0.0;
        }
    }
}

/// Stores one kept sweep: its factors scaled by 1/√S at column `at` of the fitted rows, its
/// biases and factors added (divided by S) into the means.
#[allow(clippy::too_many_arguments)]
fn keep(
    rows: &[f64],
    out: &mut [f32],
    bias: &mut [f32],
    mean: &mut [f32],
    d: usize,
    k: usize,
    cols: usize,
    at: usize,
    scale: f64,
    s: usize,
) {
    for (r, x) in rows.chunks_exact(d).enumerate() {
        let dst = &mut out[r * cols + at..r * cols + at + k];
        for c in 0..k {
            dst[c] = (x[c] * scale) as f32;
            mean[r * k + c] += (x[c] / s as f64) as f32;
        }
        if d > k {
            bias[r] += (x[k] / s as f64) as f32;
        }
    }
}

impl RatingPredictor for Bpmf {
    fn predict(&self, u: u32, i: u32) -> f32 {
        self.seen.estimate(&self.f, u, i)
    }
}

impl Recommender for Bpmf {
    fn n_items(&self) -> usize {
        self.f.n_items()
    }
    fn score(&self, q: &Query<'_>, out: &mut [f32]) -> Result<()> {
        if q.history.is_empty() {
            let f = &self.f;
            let (p, bu) = f.query_user(q, 0.0, |_, v| v)?;
            f.score_vector(&p, true, out);
            out.iter_mut().for_each(|o| *o += f.mu + bu);
            return Ok(());
        }
        let f = &self.mean;
        let (p, bu) = f.query_user(q, self.fold_in_reg * q.history.len() as f32, |i, v| {
            v - f.mu - f.item_bias[i as usize]
        })?;
        f.score_vector(&p, true, out);
        out.iter_mut().for_each(|o| *o += f.mu + bu);
        Ok(())
    }
    fn score_users(&self, users: &[u32], out: &mut [f32]) -> Result<()> {
        self.f.score_rating_users(users, out)
    }
    fn as_rating_predictor(&self) -> Option<&dyn RatingPredictor> {
        Some(self)
    }
    factor_capabilities!();
}

impl_model!(Bpmf);

impl crate::spec::Kind for Bpmf {
    const NAME: &'static str = "bpmf";
    const SUMMARY: &'static str =
        "Bayesian PMF by Gibbs sampling (Salakhutdinov & Mnih 2008), with biases.";
    const RENAMED: &'static [(&'static str, &'static str)] = &[];
    type Params = BpmfParams;
    type Fitted = Bpmf;

    fn validate(p: &BpmfParams) -> Result<()> {
        p.validate()
    }

    fn footprint(p: &BpmfParams, shape: &crate::spec::Shape) -> crate::spec::Footprint {
        // The kept columns, plus the f64 sampling rows and the transposed ratings.
        let mut fp = crate::spec::Footprint::factors(shape, p.columns(), 1.0);
        let rows = (shape.users + shape.items) as f64;
        fp.bytes +=
            rows * (p.factors as f64 + 1.0) * 12.0 + crate::spec::Footprint::data(shape).bytes;
        fp
    }
    fn capabilities(_: &BpmfParams) -> crate::spec::Capabilities {
        use crate::spec::Capabilities;
        Capabilities {
            rates: true,
            similar_items: true,
            embeddings: true,
            ..Default::default()
        }
    }

    fn fit(p: &BpmfParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<Bpmf> {
        Bpmf::fit(p, data, opts)
    }

    fn restore(p: &BpmfParams, state: &[u8], shape: &Shape) -> Result<Bpmf> {
        crate::spec::restore_state(p, state, shape, |m: &Bpmf| &m.params)
    }

    fn examples() -> Vec<BpmfParams> {
        vec![BpmfParams {
            factors: 4,
            burn_in: 3,
            samples: 5,
            ..Default::default()
        }]
    }
}

impl CheckState for Bpmf {
    fn check_state(&self, shape: &Shape) -> std::result::Result<(), String> {
        self.f.check(shape)?;
        self.mean.check(shape)?;
        check::rows(
            "the mean user factors",
            self.mean.users.len(),
            shape.users,
            self.params.factors,
        )?;
        if self.f.k != self.params.columns() || self.mean.k != self.params.factors {
            return Err(format!(
                "{} columns for {} factors × {} samples",
                self.f.k, self.params.factors, self.params.samples
            ));
        }
        if !(self.fold_in_reg >= 0.0 && self.fold_in_reg.is_finite()) {
            return Err(format!(
                "fold-in λ {} is not a finite number >= 0",
                self.fold_in_reg
            ));
        }
        self.seen.check(shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Cholesky helpers against a hand-computed 3 × 3 case.
    #[test]
    fn cholesky_solves_and_inverts() {
        // A = L Lᵀ with L = [[2,0,0],[1,3,0],[−1,2,1]]
        let a0 = [4.0, 2.0, -2.0, 2.0, 10.0, 5.0, -2.0, 5.0, 6.0];
        let mut a = a0;
        assert!(dense::cholesky(&mut a, 3));
        let l = [2.0, 0.0, 0.0, 1.0, 3.0, 0.0, -1.0, 2.0, 1.0];
        for (x, y) in a.iter().zip(&l) {
            assert!((x - y).abs() < 1e-12, "{a:?}");
        }
        let mut a = a0;
        let inv = dense::inverse(&mut a, 3).unwrap();
        for i in 0..3 {
            for j in 0..3 {
                let v: f64 = (0..3).map(|k| a0[i * 3 + k] * inv[k * 3 + j]).sum();
                assert!((v - f64::from(u8::from(i == j))).abs() < 1e-12);
            }
        }
        let mut bad = [1.0, 2.0, 2.0, 1.0];
        assert!(!dense::cholesky(&mut bad, 2));
    }

    /// Ratings 3 + b_u + b_i + u·v + N(0, 0.3²) from rank-3 truth, each user rating 40 of 200
    /// items; returns the training dataset and the held-out (user, item, noiseless rating).
    fn low_rank(seed: u64) -> (Dataset, Vec<(u32, u32, f64)>) {
        use reco_core::loaders::{DatasetBuilder, LoadOptions};
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let (nu, ni, r) = (300usize, 200usize, 3usize);
        let mut g = |sd: f64| -> f64 { rng.sample::<f64, _>(StandardNormal) * sd };
        let u: Vec<f64> = (0..nu * r).map(|_| g(0.6)).collect();
        let v: Vec<f64> = (0..ni * r).map(|_| g(0.6)).collect();
        let bu: Vec<f64> = (0..nu).map(|_| g(0.3)).collect();
        let bi: Vec<f64> = (0..ni).map(|_| g(0.3)).collect();
        let truth = |a: usize, b: usize| {
            3.0 + bu[a] + bi[b] + (0..r).map(|c| u[a * r + c] * v[b * r + c]).sum::<f64>()
        };
        let mut bd = DatasetBuilder::new(false);
        let mut held = Vec::new();
        for a in 0..nu {
            for k in 0..50 {
                let b = (a * 37 + k * 11) % ni;
                let (uid, iid) = (
                    bd.users.get_or_insert(&format!("u{a}")),
                    bd.items.get_or_insert(&format!("i{b}")),
                );
                if k < 40 {
                    let noisy = truth(a, b) + g(0.3);
                    bd.triplets.push(uid, iid, noisy as f32, None);
                } else {
                    held.push((uid, iid, truth(a, b)));
                }
            }
        }
        bd.has_ratings = true;
        (
            bd.finish("low-rank", &LoadOptions::default()).unwrap(),
            held,
        )
    }

    fn rmse(m: &Bpmf, held: &[(u32, u32, f64)]) -> f64 {
        let se: f64 = held
            .iter()
            .map(|&(u, i, t)| (m.predict(u, i) as f64 - t).powi(2))
            .sum();
        (se / held.len() as f64).sqrt()
    }

    /// On low-rank data the posterior mean recovers the noiseless ratings of held-out pairs far
    /// better than the biases alone, and averaging more sweeps does not hurt.
    #[test]
    fn recovers_low_rank_ratings() {
        let (data, held) = low_rank(1);
        let opts = FitOptions {
            seed: 5,
            ..Default::default()
        };
        let fit = |p: BpmfParams| Bpmf::fit(&p, &data, &opts).unwrap();
        let m = fit(BpmfParams {
            factors: 5,
            ..Default::default()
        });
        let biases = crate::bias::Baseline::fit(&Default::default(), &data, &opts).unwrap();
        let se: f64 = held
            .iter()
            .map(|&(u, i, t)| (biases.predict(u, i) as f64 - t).powi(2))
            .sum();
        let base = (se / held.len() as f64).sqrt();
        let got = rmse(&m, &held);
        assert!(
            got < 0.5 * base && got < 0.3,
            "bpmf {got:.3}, biases {base:.3}"
        );
        let one = fit(BpmfParams {
            factors: 5,
            samples: 1,
            ..Default::default()
        });
        assert!(
            rmse(&one, &held) > got,
            "one sweep {:.3} vs {got:.3}",
            rmse(&one, &held)
        );
        // The score of every item is the rating estimate before clipping.
        let mut s = vec![0f32; m.n_items()];
        m.score(&Query::user(3), &mut s).unwrap();
        for i in [0u32, 17, 150] {
            let want = m.predict(3, i);
            assert!((s[i as usize].clamp(m.seen.scale.min, m.seen.scale.max) - want).abs() < 1e-4);
        }
    }

    /// Rows are drawn from per-row streams, so the fit is the same on one thread or two.
    #[test]
    fn fit_does_not_depend_on_the_thread_count() {
        let (data, _) = low_rank(2);
        let p = BpmfParams {
            factors: 3,
            burn_in: 2,
            samples: 3,
            ..Default::default()
        };
        let run = |threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap()
                .install(|| Bpmf::fit(&p, &data, &FitOptions::default()).unwrap())
        };
        let (a, b) = (run(1), run(2));
        assert_eq!(a.f.users, b.f.users);
        assert_eq!(a.f.item_bias, b.f.item_bias);
        assert!(BpmfParams {
            samples: 0,
            ..p.clone()
        }
        .validate()
        .is_err());
        assert!(BpmfParams {
            factors: 1000,
            samples: 1000,
            ..p.clone()
        }
        .validate()
        .is_err());
        assert!(BpmfParams {
            noise_precision: Some(0.0),
            ..p
        }
        .validate()
        .is_err());
    }

    /// The Wishart draw's mean is ν W: over many draws from the same rows the sample mean of Λ
    /// must approach (d + n) · (I + scatter)⁻¹.
    #[test]
    fn hyper_draws_have_the_normal_wishart_mean() {
        let d = 2;
        let rows = [1.0, 0.0, -1.0, 0.0, 0.0, 2.0, 0.0, -2.0];
        // x̄ = 0, scatter = diag(2, 8): W* = diag(1/3, 1/9), ν = 6.
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let n = 20_000;
        let mut sum = [0f64; 4];
        let mut mean = [0f64; 2];
        for _ in 0..n {
            let h = sample_hyper(&rows, d, 2.0, &mut rng).unwrap();
            sum.iter_mut().zip(&h.precision).for_each(|(s, v)| *s += v);
            mean.iter_mut().zip(&h.mean).for_each(|(s, v)| *s += v);
        }
        let want = [2.0, 0.0, 0.0, 6.0 / 9.0];
        for (s, w) in sum.iter().zip(want) {
            assert!((s / n as f64 - w).abs() < 0.03, "{sum:?}");
        }
        for m in mean {
            assert!((m / n as f64).abs() < 0.02, "{mean:?}");
        }
    }
}
