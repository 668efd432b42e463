//! Differentially private SGD for biased MF (DP-SGD, Abadi et al. 2016), with a Rényi-DP
//! accountant for the Poisson-subsampled Gaussian mechanism (Mironov, Talwar & Zhang 2019).
//!
//! The protected unit is one rating: two data sets that differ in one rating give nearly the same
//! distribution of trained models. Each step samples every rating independently with
//! probability q = batch_size / N, computes each sampled rating's gradient with respect to
//! (b_u, b_i, p_u, q_i) (regularisation included), clips it to L2 norm ≤ C, sums the clipped
//! gradients, adds N(0, σ²C²) noise to every coordinate of every parameter (untouched ones too:
//! which rows moved would otherwise reveal who rated what), and takes one step of size learning_rate.
//! The global mean μ is not learned from the data: it is the middle of the rating scale, which
//! is public; the biases learn the offset.
//!
//! Accounting: the subsampled Gaussian mechanism with noise multiplier σ and sampling rate q has,
//! at integer order α ≥ 2, Rényi divergence ε_α = ln A_α / (α − 1) with
//! A_α = Σ_{k=0}^{α} C(α, k) (1 − q)^{α−k} q^k exp((k² − k) / (2σ²)) (exact for integer α).
//! T steps compose to T·ε_α, and (ε, δ)-DP holds with ε = min_α T·ε_α + ln(1/δ) / (α − 1).
//!
//! Cost: the noise touches every parameter at every step, so a step costs O((users + items)·k)
//! however small the batch; larger batches mean fewer steps per epoch.

use rand::Rng;
use rand_distr::{Distribution, StandardNormal};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use reco_core::model::FitOptions;
use reco_core::{Error, Interactions, Result};

use super::{dot, rng, Factors};

/// Parameters of the private training.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DpParams {
    /// Noise multiplier σ: the noise's standard deviation is σ·C.
    pub noise: f64,
    /// Clipping norm C of each rating's gradient.
    pub clip: f64,
    /// Expected ratings per step (each is sampled with probability batch_size / N).
    pub batch_size: usize,
    /// δ of the (ε, δ) guarantee reported.
    pub delta: f64,
}

impl Default for DpParams {
    fn default() -> Self {
        DpParams {
            noise: 1.0,
            clip: 1.0,
            batch_size: 1000,
            delta: 1e-5,
        }
    }
}

impl DpParams {
    /// Checks the parameters, one error per broken rule.
    pub fn validate(&self) -> Result<()> {
        if !(self.noise > 0.0 && self.noise.is_finite()) {
            return Err(Error::param("dp.noise", "must be a finite number > 0"));
        }
        if !(self.clip > 0.0 && self.clip.is_finite()) {
            return Err(Error::param("dp.clip", "must be a finite number > 0"));
        }
        if self.batch_size == 0 {
            return Err(Error::param("dp.batch_size", "must be at least 1"));
        }
        if !(self.delta > 0.0 && self.delta < 1.0) {
            return Err(Error::param(
                "dp.delta",
                "must lie strictly between 0 and 1",
            ));
        }
        Ok(())
    }
}

/// ln A_α of the Poisson-subsampled Gaussian mechanism at integer order α (see the module doc),
/// summed in log space.
fn log_a(q: f64, sigma: f64, alpha: u32) -> f64 {
    if q >= 1.0 {
        let a = f64::from(alpha);
        return (a * a - a) / (2.0 * sigma * sigma);
    }
    let (lq, l1q) = (q.ln(), (-q).ln_1p());
    let mut log_binom = 0f64;
    let terms: Vec<f64> = (0..=alpha)
        .map(|k| {
            if k > 0 {
                log_binom += f64::from(alpha - k + 1).ln() - f64::from(k).ln();
            }
            let kf = f64::from(k);
            log_binom
                + f64::from(alpha - k) * l1q
                + if k > 0 { kf * lq } else { 0.0 }
                + (kf * kf - kf) / (2.0 * sigma * sigma)
        })
        .collect();
    let top = terms.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    top + terms.iter().map(|t| (t - top).exp()).sum::<f64>().ln()
}

/// ε of (ε, δ)-DP after `steps` steps of the subsampled Gaussian mechanism with sampling rate
/// `q` and noise multiplier `sigma`, minimised over the integer orders 2..=512.
pub fn epsilon(q: f64, sigma: f64, steps: u64, delta: f64) -> f64 {
    if steps == 0 {
        return 0.0;
    }
    (2..=512u32)
        .map(|a| {
            let rdp = steps as f64 * log_a(q, sigma, a) / f64::from(a - 1);
            rdp + (1.0 / delta).ln() / f64::from(a - 1)
        })
        .fold(f64::INFINITY, f64::min)
}

/// Trains `f` (biased, μ set by the caller) privately with step `lr` (the learning rate) and
/// L2 penalty `reg` (the regularization);
/// `dp` has been validated. Returns the ε spent.
pub(crate) fn train(
    f: &mut Factors,
    m: &Interactions,
    epochs: usize,
    lr: f32,
    reg: f32,
    dp: &DpParams,
    opts: &FitOptions<'_>,
) -> reco_core::Result<f64> {
    let n = m.nnz();
    if n == 0 {
        return Ok(0.0);
    }
    let k = f.k;
    let q = (dp.batch_size as f64 / n as f64).min(1.0);
    let steps_per_epoch = (n as f64 / dp.batch_size as f64).ceil().max(1.0) as u64;
    let total = steps_per_epoch * epochs as u64;
    let triples: Vec<(u32, u32, f32)> = m.iter().collect();
    let (c, sd) = (dp.clip as f32, (dp.noise * dp.clip) as f32);
    // Gradient sums, dense like the noise: rows of k + 1 (bias last).
    let w = k + 1;
    let mut gu = vec![0f32; f.n_users() * w];
    let mut gi = vec![0f32; f.n_items() * w];
    let mut sample = rng(opts.seed, 61);
    let ln1q = (-q).ln_1p();
    let mut pg = vec![0f32; 2 * w];
    for step in 0..total {
        gu.iter_mut().for_each(|x| *x = 0.0);
        gi.iter_mut().for_each(|x| *x = 0.0);
        // Poisson sampling by geometric gaps: O(batch) per step.
        let mut at = 0usize;
        let (mut sq, mut cnt) = (0f64, 0usize);
        loop {
            let gap = if q >= 1.0 {
                0
            } else {
                let u: f64 = sample.gen::<f64>().max(f64::MIN_POSITIVE);
                (u.ln() / ln1q).floor() as usize
            };
            at = at.saturating_add(gap);
            if at >= n {
                break;
            }
            let (u, i, r) = triples[at];
            at += 1;
            let (ur, ir) = (u as usize * k, i as usize * k);
            let (pu, qi) = (&f.users[ur..ur + k], &f.items[ir..ir + k]);
            let (bu, bi) = (f.user_bias[u as usize], f.item_bias[i as usize]);
            let err = r - (f.mu + bu + bi + dot(pu, qi));
            sq += f64::from(err * err);
            cnt += 1;
            // Per-rating gradient of ½err² + ½reg‖θ‖²: [p_u, b_u, q_i, b_i].
            for t in 0..k {
                pg[t] = -err * qi[t] + reg * pu[t];
                pg[w + t] = -err * pu[t] + reg * qi[t];
            }
            pg[k] = -err + reg * bu;
            pg[w + k] = -err + reg * bi;
            let norm = dot(&pg, &pg).sqrt();
            let scale = if norm > c { c / norm } else { 1.0 };
            let (du, di) = (
                &mut gu[u as usize * w..(u as usize + 1) * w],
                &mut gi[i as usize * w..(i as usize + 1) * w],
            );
            for t in 0..w {
                du[t] += scale * pg[t];
                di[t] += scale * pg[w + t];
            }
        }
        apply(
            &mut f.users,
            &mut f.user_bias,
            &gu,
            k,
            lr,
            sd,
            opts.seed,
            2 * step,
        );
        apply(
            &mut f.items,
            &mut f.item_bias,
            &gi,
            k,
            lr,
            sd,
            opts.seed,
            2 * step + 1,
        );
        if (step + 1) % steps_per_epoch == 0 {
            let epoch = (step + 1) / steps_per_epoch;
            let rmse = (sq / cnt.max(1) as f64).sqrt();
            opts.step("epoch", epoch, epochs as u64, Some(rmse))?;
        }
    }
    Ok(epsilon(q, dp.noise, total, dp.delta))
}

/// θ ← θ − lr·(g + N(0, sd²)) on every factor and bias; the noise comes from a seeded stream per
/// (step, chunk), so results do not depend on the thread count.
#[allow(clippy::too_many_arguments)]
fn apply(
    factors: &mut [f32],
    bias: &mut [f32],
    grad: &[f32],
    k: usize,
    lr: f32,
    sd: f32,
    seed: u64,
    stream: u64,
) {
    const ROWS: usize = 256;
    let w = k + 1;
    factors
        .par_chunks_mut(ROWS * k)
        .zip(bias.par_chunks_mut(ROWS))
        .zip(grad.par_chunks(ROWS * w))
        .enumerate()
        .for_each(|(c, ((fr, br), gr))| {
            let mut r = rng(seed ^ 0x5eed_d1ff, stream.wrapping_mul(1 << 20) + c as u64);
            for (row, (b, g)) in br.iter_mut().zip(gr.chunks(w)).enumerate() {
                let p = &mut fr[row * k..(row + 1) * k];
                for t in 0..k {
                    let z: f32 = StandardNormal.sample(&mut r);
                    p[t] -= lr * (g[t] + sd * z);
                }
                let z: f32 = StandardNormal.sample(&mut r);
                *b -= lr * (g[k] + sd * z);
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A_α by numerical integration of E_{z∼N(0,σ²)}[(μ(z)/μ₀(z))^α], μ the mixture
    /// (1 − q)N(0, σ²) + qN(1, σ²): an independent check of the binomial expansion.
    fn log_a_numeric(q: f64, sigma: f64, alpha: u32) -> f64 {
        let (lo, hi, n) = (-30.0 * sigma, 30.0 * sigma + 1.0, 400_000);
        let h = (hi - lo) / n as f64;
        let pdf = |z: f64, m: f64| {
            (-(z - m) * (z - m) / (2.0 * sigma * sigma)).exp()
                / (sigma * (2.0 * std::f64::consts::PI).sqrt())
        };
        let mut s = 0.0;
        for t in 0..=n {
            let z = lo + t as f64 * h;
            let (m0, m1) = (pdf(z, 0.0), pdf(z, 1.0));
            let ratio = (1.0 - q) + q * m1 / m0.max(f64::MIN_POSITIVE);
            let wgt = if t == 0 || t == n { 0.5 } else { 1.0 };
            s += wgt * m0 * ratio.powi(alpha as i32);
        }
        (s * h).ln()
    }

    #[test]
    fn binomial_expansion_matches_numerical_integration() {
        for &(q, sigma, alpha) in &[
            (0.01, 1.0, 8u32),
            (0.1, 2.0, 16),
            (0.5, 4.0, 4),
            (0.02, 1.5, 12),
        ] {
            let (exact, numeric) = (log_a(q, sigma, alpha), log_a_numeric(q, sigma, alpha));
            assert!(
                (exact - numeric).abs() < 1e-4 * (1.0 + exact.abs()),
                "q {q} σ {sigma} α {alpha}: {exact} vs {numeric}"
            );
        }
    }

    #[test]
    fn full_batch_is_the_gaussian_mechanism() {
        // q = 1: ε_α = α/(2σ²); ε = min_α T·α/(2σ²) + ln(1/δ)/(α − 1).
        let (sigma, t, delta): (f64, u64, f64) = (5.0, 10, 1e-5);
        let direct = (2..=512u32)
            .map(|a| {
                let a = f64::from(a);
                t as f64 * a / (2.0 * sigma * sigma) + (1.0 / delta).ln() / (a - 1.0)
            })
            .fold(f64::INFINITY, f64::min);
        assert!((epsilon(1.0, sigma, t, delta) - direct).abs() < 1e-9);
    }

    #[test]
    fn epsilon_grows_with_steps_and_sampling_and_falls_with_noise() {
        let e = |q, s, t| epsilon(q, s, t, 1e-5);
        assert!(e(0.01, 1.0, 1000) < e(0.01, 1.0, 2000));
        assert!(e(0.01, 1.0, 1000) < e(0.02, 1.0, 1000));
        assert!(e(0.01, 2.0, 1000) < e(0.01, 1.0, 1000));
        assert_eq!(e(0.01, 1.0, 0), 0.0);
        // Amplification by subsampling: sampling 1% of the data per step costs far less than
        // using all of it.
        assert!(e(0.01, 4.0, 10_000) < e(1.0, 4.0, 10_000) / 10.0);
    }

    #[test]
    fn parameters_are_checked_one_rule_at_a_time() {
        let bad = |p: DpParams| p.validate().unwrap_err().to_string();
        assert!(bad(DpParams {
            noise: 0.0,
            ..Default::default()
        })
        .contains("noise"));
        assert!(bad(DpParams {
            clip: -1.0,
            ..Default::default()
        })
        .contains("clip"));
        assert!(bad(DpParams {
            batch_size: 0,
            ..Default::default()
        })
        .contains("batch"));
        assert!(bad(DpParams {
            delta: 1.0,
            ..Default::default()
        })
        .contains("delta"));
    }
}
