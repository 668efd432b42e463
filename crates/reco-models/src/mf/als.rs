//! Explicit ALS with biases and weighted-λ regularisation (Zhou et al. 2008): alternately, every
//! user solves [p_u, b_u] = argmin Σ_i (r_ui − μ − b_i − p_u·q_i − b_u)² + λ n_u (|p_u|² + b_u²)
//! by Cholesky (faer), then every item likewise; rows are solved in parallel, independently.

use crate::spec::{CheckState, Shape};
use faer::linalg::solvers::Solve;
use faer::{Mat, Side};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use reco_core::model::{FitOptions, Query, RatingPredictor, Recommender};
use reco_core::{Dataset, Error, Interactions, Result};

use super::{best_or, end_of_pass, EarlyStop};
use super::{check_common, factor_capabilities, Factors, Seen};
use crate::spec::impl_model;

/// Parameters of explicit ALS.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlsParams {
    /// Number of factors.
    pub factors: usize,
    /// Alternations.
    pub epochs: usize,
    /// λ; multiplied by each row's rating count when `weighted_regularization`.
    pub regularization: f64,
    /// Weighted-λ regularisation.
    pub weighted_regularization: bool,
    /// Learn user and item biases.
    pub biased: bool,
    /// With validation data: stop after this many epochs without a better validation RMSE
    /// and keep the best iteration's factors (0: off).
    pub patience: usize,
}

impl Default for AlsParams {
    fn default() -> Self {
        AlsParams {
            factors: 20,
            epochs: 15,
            regularization: 0.05,
            weighted_regularization: true,
            biased: true,
            patience: 3,
        }
    }
}

/// Solves every row of (`x`, `xb`) against fixed (`y`, `yb`): targets r − μ − yb.
#[allow(clippy::too_many_arguments)]
fn solve_side(
    x: &mut [f32],
    xb: &mut [f32],
    y: &[f32],
    yb: &[f32],
    m: &Interactions,
    mu: f32,
    p: &AlsParams,
    k: usize,
) -> Result<()> {
    let d = k + usize::from(p.biased);
    x.par_chunks_mut(k)
        .zip(xb.par_iter_mut())
        .enumerate()
        .try_for_each(|(u, (row, bias))| {
            let (idx, vals) = (m.user_items(u as u32), m.user_values(u as u32));
            if idx.is_empty() {
                return Ok(());
            }
            let lambda = p.regularization
                * if p.weighted_regularization {
                    idx.len() as f64
                } else {
                    1.0
                };
            let mut a = Mat::<f64>::zeros(d, d);
            let mut b = Mat::<f64>::zeros(d, 1);
            let mut z = vec![0f64; d];
            for (&i, &r) in idx.iter().zip(vals) {
                let yi = &y[i as usize * k..(i as usize + 1) * k];
                for c in 0..k {
                    z[c] = yi[c] as f64;
                }
                if p.biased {
                    z[k] = 1.0;
                }
                let t = r as f64 - mu as f64 - yb.get(i as usize).copied().unwrap_or(0.0) as f64;
                for r1 in 0..d {
                    b[(r1, 0)] += z[r1] * t;
                    for r2 in 0..d {
                        a[(r1, r2)] += z[r1] * z[r2];
                    }
                }
            }
            for r1 in 0..d {
                a[(r1, r1)] += lambda.max(1e-9);
            }
            let sol = a
                .llt(Side::Lower)
                .map_err(|e| {
                    Error::training(
                        "als",
                        format!("a least-squares solve failed ({e:?}); raise regularization"),
                    )
                })?
                .solve(&b);
            for c in 0..k {
                row[c] = sol[(c, 0)] as f32;
            }
            if p.biased {
                *bias = sol[(k, 0)] as f32;
            }
            Ok(())
        })
}

/// A fitted explicit ALS model.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Als {
    params: AlsParams,
    f: Factors,
    seen: Seen,
}

impl AlsParams {
    /// Checks every rule, one error per broken rule.
    pub fn validate(&self) -> Result<()> {
        check_common(
            self.factors,
            self.epochs,
            &[],
            &[("regularization", self.regularization)],
        )?;
        Ok(())
    }
}

impl Als {
    /// Alternates user and item solves.
    pub fn fit(p: &AlsParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<Self> {
        p.validate()?;
        let m = &data.interactions;
        let k = p.factors;
        let mut f = Factors::normal(m.n_users(), m.n_items(), k, 0.0, 0.1, true, opts.seed)?;
        if p.biased && m.nnz() > 0 {
            f.mu = (m.values().iter().map(|&v| v as f64).sum::<f64>() / m.nnz() as f64) as f32;
        }
        let mt = m.transpose();
        let mut early = EarlyStop::rmse(m, opts.validation, p.patience);
        for it in 0..p.epochs {
            solve_side(
                &mut f.users,
                &mut f.user_bias,
                &f.items,
                &f.item_bias,
                m,
                f.mu,
                p,
                k,
            )?;
            solve_side(
                &mut f.items,
                &mut f.item_bias,
                &f.users,
                &f.user_bias,
                &mt,
                f.mu,
                p,
                k,
            )?;
            if end_of_pass(&mut early, it, p.epochs, "epoch", || &f, None, opts)?.stop {
                break;
            }
        }
        let f = best_or(early, || f);
        f.check_finite("als")?;
        Ok(Als {
            params: p.clone(),
            seen: Seen::of(m),
            f,
        })
    }
}

impl RatingPredictor for Als {
    fn predict(&self, u: u32, i: u32) -> f32 {
        self.seen.estimate(&self.f, u, i)
    }
}

impl Recommender for Als {
    fn n_items(&self) -> usize {
        self.f.n_items()
    }
    fn score(&self, q: &Query<'_>, out: &mut [f32]) -> Result<()> {
        let f = &self.f;
        let lambda = self.params.regularization as f32 * q.history.len().max(1) as f32;
        let (p, bu) = f.query_user(q, lambda, |i, v| v - f.mu - f.item_bias[i as usize])?;
        f.score_vector(&p, true, out);
        for o in out.iter_mut() {
            *o += f.mu + bu;
        }
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

impl_model!(Als);

impl crate::spec::Kind for Als {
    const NAME: &'static str = "als";
    const SUMMARY: &'static str = "Explicit ALS with biases and weighted-λ.";
    const RENAMED: &'static [(&'static str, &'static str)] = &[
        ("iterations", "epochs"),
        ("reg", "regularization"),
        ("weighted_reg", "weighted_regularization"),
    ];
    type Params = AlsParams;
    type Fitted = Als;

    fn validate(p: &AlsParams) -> Result<()> {
        p.validate()
    }

    fn footprint(p: &AlsParams, shape: &crate::spec::Shape) -> crate::spec::Footprint {
        crate::spec::Footprint::factors(shape, p.factors, 3.0)
    }
    fn capabilities(_: &AlsParams) -> crate::spec::Capabilities {
        use crate::spec::Capabilities;
        Capabilities {
            rates: true,
            similar_items: true,
            embeddings: true,
            ..Default::default()
        }
    }

    fn fit(p: &AlsParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<Als> {
        Als::fit(p, data, opts)
    }

    fn restore(p: &AlsParams, state: &[u8], shape: &Shape) -> Result<Als> {
        crate::spec::restore_state(p, state, shape, |m: &Als| &m.params)
    }

    fn examples() -> Vec<AlsParams> {
        vec![AlsParams {
            factors: 8,
            epochs: 5,
            ..Default::default()
        }]
    }
}

impl CheckState for Als {
    fn check_state(&self, shape: &Shape) -> std::result::Result<(), String> {
        self.f.check(shape)?;
        self.seen.check(shape)
    }
}
