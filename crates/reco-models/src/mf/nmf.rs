//! Non-negative matrix factorisation with multiplicative updates (Luo et al. 2014), Surprise's
//! semantics and defaults: 15 factors, 50 epochs, regularization_pu and regularization_qi 0.06, factors from U(0, 1), unbiased.

use crate::spec::{check, CheckState, Shape};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use reco_core::model::{FitOptions, Query, RatingPredictor, Recommender};
use reco_core::{Dataset, Result};

use super::{best_or, end_of_pass, EarlyStop};
use super::{check_common, dot, factor_capabilities, Factors};
use crate::bias::Scale;
use crate::spec::impl_model;

/// Parameters of NMF.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NmfParams {
    /// Number of factors.
    pub factors: usize,
    /// Multiplicative-update passes.
    pub epochs: usize,
    /// Regularisation of user factors.
    pub regularization_pu: f64,
    /// Regularisation of item factors.
    pub regularization_qi: f64,
    /// Lower bound of the uniform initialisation.
    pub init_low: f32,
    /// Upper bound of the uniform initialisation.
    pub init_high: f32,
    /// With validation data: stop after this many epochs without a better validation RMSE
    /// and keep the best epoch's factors (0: off).
    pub patience: usize,
}

impl Default for NmfParams {
    fn default() -> Self {
        NmfParams {
            factors: 15,
            epochs: 50,
            regularization_pu: 0.06,
            regularization_qi: 0.06,
            init_low: 0.0,
            init_high: 1.0,
            patience: 3,
        }
    }
}

/// A fitted NMF model (non-negative factors).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Nmf {
    params: NmfParams,
    f: Factors,
    mu: f32,
    known_user: Vec<bool>,
    known_item: Vec<bool>,
    scale: Scale,
}

impl NmfParams {
    /// Checks every rule, one error per broken rule.
    pub fn validate(&self) -> Result<()> {
        check_common(
            self.factors,
            self.epochs,
            &[],
            &[
                ("regularization_pu", self.regularization_pu),
                ("regularization_qi", self.regularization_qi),
            ],
        )?;
        if !(self.init_low >= 0.0 && self.init_low.is_finite()) {
            return Err(reco_core::Error::param(
                "init_low",
                format!("must be a finite number >= 0, got {}", self.init_low),
            ));
        }
        if !(self.init_high > self.init_low && self.init_high.is_finite()) {
            return Err(reco_core::Error::param(
                "init_high",
                format!(
                    "must be a finite number above init_low ({}), got {}",
                    self.init_low, self.init_high
                ),
            ));
        }
        Ok(())
    }
}

impl Nmf {
    /// Runs the multiplicative updates.
    pub fn fit(p: &NmfParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<Self> {
        p.validate()?;
        let m = &data.interactions;
        if m.values().iter().any(|&v| v < 0.0) {
            return Err(reco_core::Error::data("NMF needs non-negative ratings"));
        }
        let k = p.factors;
        let (nu, ni) = (m.n_users(), m.n_items());
        let mut f = Factors::uniform(nu, ni, k, p.init_low, p.init_high, opts.seed);
        let mt = m.transpose();
        let mut early = EarlyStop::rmse(m, opts.validation, p.patience);
        for epoch in 0..p.epochs {
            // Numerators and denominators from the current factors, users and items each in
            // parallel over their own rows (no shared writes), then the multiplicative updates.
            let stats = |rows: &reco_core::Interactions,
                         own: &[f32],
                         other: &[f32]|
             -> Vec<(Vec<f64>, Vec<f64>)> {
                (0..rows.n_users() as u32)
                    .into_par_iter()
                    .map(|x| {
                        let (mut num, mut den) = (vec![0f64; k], vec![0f64; k]);
                        let px = &own[x as usize * k..(x as usize + 1) * k];
                        for (&y, &r) in rows.user_items(x).iter().zip(rows.user_values(x)) {
                            let qy = &other[y as usize * k..(y as usize + 1) * k];
                            let est = dot(px, qy) as f64;
                            for c in 0..k {
                                num[c] += qy[c] as f64 * r as f64;
                                den[c] += qy[c] as f64 * est;
                            }
                        }
                        (num, den)
                    })
                    .collect()
            };
            let us = stats(m, &f.users, &f.items);
            let is = stats(&mt, &f.items, &f.users);
            let update = |v: &mut [f32],
                          st: &[(Vec<f64>, Vec<f64>)],
                          rows: &reco_core::Interactions,
                          reg: f64| {
                v.par_chunks_mut(k)
                    .zip(st)
                    .enumerate()
                    .for_each(|(x, (row, (num, den)))| {
                        let n = rows.user_len(x as u32) as f64;
                        for c in 0..k {
                            let d = den[c] + n * reg * row[c] as f64;
                            if d > 0.0 {
                                row[c] = (row[c] as f64 * num[c] / d) as f32;
                            }
                        }
                    });
            };
            update(&mut f.users, &us, m, p.regularization_pu);
            update(&mut f.items, &is, &mt, p.regularization_qi);
            if end_of_pass(&mut early, epoch, p.epochs, "epoch", || &f, None, opts)?.stop {
                break;
            }
        }
        let f = best_or(early, || f);
        f.check_finite("nmf")?;
        let mu = if m.nnz() == 0 {
            0.0
        } else {
            (m.values().iter().map(|&v| v as f64).sum::<f64>() / m.nnz() as f64) as f32
        };
        Ok(Nmf {
            params: p.clone(),
            known_user: (0..nu as u32).map(|u| m.user_len(u) > 0).collect(),
            known_item: (0..ni as u32).map(|i| m.item_len(i) > 0).collect(),
            scale: Scale::of(m),
            mu,
            f,
        })
    }
}

impl RatingPredictor for Nmf {
    /// Unknown user or item: the global mean (Surprise declares such predictions impossible).
    fn predict(&self, u: u32, i: u32) -> f32 {
        let known = self.known_user.get(u as usize).copied().unwrap_or(false)
            && self.known_item.get(i as usize).copied().unwrap_or(false);
        self.scale.clip(if known {
            dot(self.f.user(u), self.f.item(i))
        } else {
            self.mu
        })
    }
}

impl Recommender for Nmf {
    fn n_items(&self) -> usize {
        self.f.n_items()
    }
    fn score(&self, q: &Query<'_>, out: &mut [f32]) -> Result<()> {
        let (p, _) = self
            .f
            .query_user(q, self.params.regularization_pu as f32 * 10.0, |_, v| v)?;
        self.f.score_vector(&p, false, out);
        Ok(())
    }
    fn score_users(&self, users: &[u32], out: &mut [f32]) -> Result<()> {
        let f = &self.f;
        f.score_users(users, out, false, |u, p| {
            f.copy_user(u, p);
            0.0
        })
    }
    fn as_rating_predictor(&self) -> Option<&dyn RatingPredictor> {
        Some(self)
    }
    factor_capabilities!();
}

impl_model!(Nmf);

impl crate::spec::Kind for Nmf {
    const NAME: &'static str = "nmf";
    const SUMMARY: &'static str = "Non-negative MF (Surprise's NMF).";
    const RENAMED: &'static [(&'static str, &'static str)] = &[
        ("reg_pu", "regularization_pu"),
        ("reg_qi", "regularization_qi"),
    ];
    type Params = NmfParams;
    type Fitted = Nmf;

    fn validate(p: &NmfParams) -> Result<()> {
        p.validate()
    }

    fn footprint(p: &NmfParams, shape: &crate::spec::Shape) -> crate::spec::Footprint {
        crate::spec::Footprint::factors(shape, p.factors, 4.0)
    }
    fn capabilities(_: &NmfParams) -> crate::spec::Capabilities {
        use crate::spec::Capabilities;
        Capabilities {
            rates: true,
            similar_items: true,
            embeddings: true,
            ..Default::default()
        }
    }

    fn fit(p: &NmfParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<Nmf> {
        Nmf::fit(p, data, opts)
    }

    fn restore(p: &NmfParams, state: &[u8], shape: &Shape) -> Result<Nmf> {
        crate::spec::restore_state(p, state, shape, |m: &Nmf| &m.params)
    }

    fn examples() -> Vec<NmfParams> {
        vec![NmfParams::default()]
    }
}

impl CheckState for Nmf {
    fn check_state(&self, shape: &Shape) -> std::result::Result<(), String> {
        self.f.check(shape)?;
        check::len("the known users", self.known_user.len(), shape.users)?;
        check::len("the known items", self.known_item.len(), shape.items)
    }
}
