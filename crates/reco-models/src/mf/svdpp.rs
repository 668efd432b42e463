//! SVD++ (Koren 2008): r̂ = μ + b_u + b_i + q_i · (p_u + |N(u)|^-½ Σ_{j ∈ N(u)} y_j), with N(u)
//! the items the user rated. Surprise's defaults (20 factors, 20 epochs, learning_rate 0.007, regularization 0.02).
//!
//! Surprise updates every y_j of the user after each rating, O(|N(u)| k) per rating. The update
//! is the same for every j of the user — y_j ← (1 − learning_rate·regularization) y_j + learning_rate·err·q_i/√|N(u)| — so over a
//! user's ratings each y_j ends as a·y_j + g with one scalar a and one vector g, and the implicit
//! sum z moves by learning_rate·(err·q_i − regularization·z). Tracking a, g and z gives Surprise's exact updates in
//! O(k) per rating plus O(|N(u)| k) per user visit.

use crate::spec::{check, CheckState, Shape};
use serde::{Deserialize, Serialize};

use reco_core::model::{FitOptions, Query, RatingPredictor, Recommender};
use reco_core::{Dataset, Result};

use super::{best_or, check_common, end_of_pass, factor_capabilities, EarlyStop, Factors, Seen};
use crate::spec::impl_model;

/// Parameters of SVD++.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SvdppParams {
    /// Number of factors.
    pub factors: usize,
    /// Passes over the ratings.
    pub epochs: usize,
    /// Standard deviation of the factor initialisation (mean 0).
    pub init_std: f64,
    /// Learning rate of every parameter.
    pub learning_rate: f64,
    /// Regularisation of every parameter.
    pub regularization: f64,
    /// With validation data: stop after this many epochs without a better validation RMSE and
    /// keep the best epoch's factors (0: off).
    pub patience: usize,
}

impl Default for SvdppParams {
    fn default() -> Self {
        SvdppParams {
            factors: 20,
            epochs: 20,
            init_std: 0.1,
            learning_rate: 0.007,
            regularization: 0.02,
            patience: 3,
        }
    }
}

/// A fitted SVD++ model. User vectors in `f` already include the implicit part, so scoring is
/// a plain dot product; `y` keeps the implicit item factors for fold-in.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Svdpp {
    params: SvdppParams,
    f: Factors,
    y: Vec<f32>,
    seen: Seen,
}

impl SvdppParams {
    /// Checks every rule, one error per broken rule.
    pub fn validate(&self) -> Result<()> {
        check_common(
            self.factors,
            self.epochs,
            &[("learning_rate", self.learning_rate)],
            &[
                ("regularization", self.regularization),
                ("init_std", self.init_std),
            ],
        )?;
        Ok(())
    }
}

impl Svdpp {
    /// Runs SGD user by user.
    pub fn fit(p: &SvdppParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<Self> {
        p.validate()?;
        let m = &data.interactions;
        let k = p.factors;
        let mut f = Factors::normal(
            m.n_users(),
            m.n_items(),
            k,
            0.0,
            p.init_std,
            true,
            opts.seed,
        )?;
        let mut y = Factors::normal(
            0,
            m.n_items(),
            k,
            0.0,
            p.init_std,
            false,
            opts.seed ^ 0x5eed,
        )?
        .items;
        if m.nnz() > 0 {
            f.mu = (m.values().iter().map(|&v| v as f64).sum::<f64>() / m.nnz() as f64) as f32;
        }
        let (learning_rate, regularization) = (p.learning_rate as f32, p.regularization as f32);
        let mut z = vec![0f32; k];
        let mut gy = vec![0f32; k];
        let mut early = EarlyStop::rmse(m, opts.validation, p.patience);
        let mut best_y: Option<Vec<f32>> = None;
        for epoch in 0..p.epochs {
            let mut sq = 0f64;
            for u in 0..m.n_users() as u32 {
                let items = m.user_items(u);
                if items.is_empty() {
                    continue;
                }
                let norm = 1.0 / (items.len() as f32).sqrt();
                z.iter_mut().for_each(|v| *v = 0.0);
                for &j in items {
                    for (a, b) in z.iter_mut().zip(&y[j as usize * k..(j as usize + 1) * k]) {
                        *a += b * norm;
                    }
                }
                gy.iter_mut().for_each(|v| *v = 0.0);
                let mut a = 1.0f32;
                let decay = 1.0 - learning_rate * regularization;
                let uu = u as usize;
                for (&i, &r) in items.iter().zip(m.user_values(u)) {
                    let ii = i as usize;
                    let pu = &mut f.users[uu * k..(uu + 1) * k];
                    let qi = &mut f.items[ii * k..(ii + 1) * k];
                    let est = f.mu
                        + f.user_bias[uu]
                        + f.item_bias[ii]
                        + qi.iter()
                            .zip(pu.iter())
                            .zip(&z)
                            .map(|((q, p), z)| q * (p + z))
                            .sum::<f32>();
                    let err = r - est;
                    sq += (err as f64).powi(2);
                    f.user_bias[uu] += learning_rate * (err - regularization * f.user_bias[uu]);
                    f.item_bias[ii] += learning_rate * (err - regularization * f.item_bias[ii]);
                    for c in 0..k {
                        let (pf, qf) = (pu[c], qi[c]);
                        pu[c] += learning_rate * (err * qf - regularization * pf);
                        qi[c] += learning_rate * (err * (pf + z[c]) - regularization * qf);
                        z[c] += learning_rate * (err * qf - regularization * z[c]);
                        gy[c] = gy[c] * decay + learning_rate * err * qf * norm;
                    }
                    a *= decay;
                }
                for &j in items {
                    for (yv, g) in y[j as usize * k..(j as usize + 1) * k].iter_mut().zip(&gy) {
                        *yv = a * *yv + g;
                    }
                }
            }
            let loss = Some((sq / m.nnz().max(1) as f64).sqrt());
            // Validation sees the folded vectors; the best epoch's y is kept with them.
            let pass = end_of_pass(
                &mut early,
                epoch,
                p.epochs,
                "epoch",
                || fold_implicit(&f, &y, m),
                loss,
                opts,
            )?;
            if pass.improved {
                best_y = Some(y.clone());
            }
            if pass.stop {
                break;
            }
        }
        let f = best_or(early, || fold_implicit(&f, &y, m));
        if let Some(by) = best_y {
            y = by;
        }
        f.check_finite("svdpp")?;
        Ok(Svdpp {
            params: p.clone(),
            seen: Seen::of(m),
            f,
            y,
        })
    }
}

impl RatingPredictor for Svdpp {
    fn predict(&self, u: u32, i: u32) -> f32 {
        self.seen.estimate(&self.f, u, i)
    }
}

/// The user vectors with the implicit part folded in: p_u + |N(u)|^-½ Σ_{j ∈ N(u)} y_j.
fn fold_implicit(f: &Factors, y: &[f32], m: &reco_core::Interactions) -> Factors {
    let k = f.k;
    let mut out = f.clone();
    for u in 0..m.n_users() as u32 {
        let items = m.user_items(u);
        if items.is_empty() {
            continue;
        }
        let norm = 1.0 / (items.len() as f32).sqrt();
        for &j in items {
            let (uu, jj) = (u as usize * k, j as usize * k);
            for c in 0..k {
                out.users[uu + c] += y[jj + c] * norm;
            }
        }
    }
    out
}

impl Recommender for Svdpp {
    fn n_items(&self) -> usize {
        self.f.n_items()
    }
    fn score(&self, q: &Query<'_>, out: &mut [f32]) -> Result<()> {
        let f = &self.f;
        let (mut p, bu) = if q.history.is_empty() {
            f.query_user(q, 0.0, |_, v| v)?
        } else {
            // An anonymous user's implicit part comes from the history itself.
            let (mut p, _) =
                f.query_user(q, self.params.regularization as f32 * 10.0, |i, v| {
                    v - f.mu - f.item_bias[i as usize]
                })?;
            let norm = 1.0 / (q.history.len() as f32).sqrt();
            for &(j, _) in q.history {
                for (a, b) in p
                    .iter_mut()
                    .zip(&self.y[j as usize * f.k..(j as usize + 1) * f.k])
                {
                    *a += b * norm;
                }
            }
            (p, 0.0)
        };
        if q.history.is_empty() && !q.user.is_some_and(|u| self.seen.user(u)) {
            p.iter_mut().for_each(|v| *v = 0.0);
        }
        f.score_vector(&p, true, out);
        for o in out.iter_mut() {
            *o += f.mu + bu;
        }
        Ok(())
    }
    fn as_rating_predictor(&self) -> Option<&dyn RatingPredictor> {
        Some(self)
    }
    factor_capabilities!();
}

impl_model!(Svdpp);

impl crate::spec::Kind for Svdpp {
    const NAME: &'static str = "svdpp";
    const SUMMARY: &'static str =
        "SVD++ (Koren 2008): SVD plus implicit feedback from what each user rated.";
    const RENAMED: &'static [(&'static str, &'static str)] =
        &[("lr", "learning_rate"), ("reg", "regularization")];
    type Params = SvdppParams;
    type Fitted = Svdpp;

    fn validate(p: &SvdppParams) -> Result<()> {
        p.validate()
    }

    fn footprint(p: &SvdppParams, shape: &crate::spec::Shape) -> crate::spec::Footprint {
        crate::spec::Footprint::factors(shape, p.factors, 5.0)
    }
    fn capabilities(_: &SvdppParams) -> crate::spec::Capabilities {
        use crate::spec::Capabilities;
        Capabilities {
            rates: true,
            similar_items: true,
            embeddings: true,
            ..Default::default()
        }
    }

    fn fit(p: &SvdppParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<Svdpp> {
        Svdpp::fit(p, data, opts)
    }

    fn restore(p: &SvdppParams, state: &[u8], shape: &Shape) -> Result<Svdpp> {
        crate::spec::restore_state(p, state, shape, |m: &Svdpp| &m.params)
    }

    fn examples() -> Vec<SvdppParams> {
        vec![SvdppParams::default()]
    }
}

impl CheckState for Svdpp {
    fn check_state(&self, shape: &Shape) -> std::result::Result<(), String> {
        self.f.check(shape)?;
        check::rows("the implicit factors", self.y.len(), shape.items, self.f.k)?;
        self.seen.check(shape)
    }
}
