//! The baseline rating predictor r̂ = μ + b_u + b_i (Surprise's `BaselineOnly` semantics), fitted
//! by alternating least squares or by SGD, and mean normalisation shared by rating models.

use crate::spec::{check, CheckState, Shape};
use serde::{Deserialize, Serialize};

use reco_core::model::{FitOptions, Query, RatingPredictor, Recommender};
use reco_core::{Dataset, Error, Interactions, Result};

use crate::spec::impl_model;

/// How the biases are estimated.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BiasMethod {
    /// Alternating closed-form updates: b_i = Σ(r − μ − b_u)/(λ_i + |U_i|), then b_u likewise.
    #[default]
    Als,
    /// Stochastic gradient descent on the regularised squared error.
    Sgd,
}

/// Parameters of the baseline predictor; defaults are Surprise's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BaselineParams {
    /// ALS or SGD.
    pub method: BiasMethod,
    /// Passes over the data (ALS 10, SGD 20 in Surprise; 0 means that default).
    pub epochs: usize,
    /// ALS: regularisation of item biases.
    pub regularization_bi: f64,
    /// ALS: regularisation of user biases.
    pub regularization_bu: f64,
    /// SGD: regularisation of both biases.
    pub regularization: f64,
    /// SGD: learning rate.
    pub learning_rate: f64,
}

impl Default for BaselineParams {
    fn default() -> Self {
        BaselineParams {
            method: BiasMethod::Als,
            epochs: 0,
            regularization_bi: 10.0,
            regularization_bu: 15.0,
            regularization: 0.02,
            learning_rate: 0.005,
        }
    }
}

impl BaselineParams {
    /// Checks every rule, one error per broken rule.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [
            ("regularization_bi", self.regularization_bi),
            ("regularization_bu", self.regularization_bu),
            ("regularization", self.regularization),
        ] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(Error::param(
                    name,
                    format!("must be a finite number >= 0, got {v}"),
                ));
            }
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return Err(Error::param(
                "learning_rate",
                format!("must be a finite number > 0, got {}", self.learning_rate),
            ));
        }
        Ok(())
    }

    fn epochs(&self) -> usize {
        match (self.epochs, self.method) {
            (0, BiasMethod::Als) => 10,
            (0, BiasMethod::Sgd) => 20,
            (n, _) => n,
        }
    }
}

/// Fitted global mean and biases; also what kNN-baseline and other models build on.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Biases {
    /// Global mean μ.
    pub mu: f32,
    /// User biases b_u.
    pub bu: Vec<f32>,
    /// Item biases b_i.
    pub bi: Vec<f32>,
}

impl Biases {
    /// Estimates the biases of `m` with `p`.
    pub fn fit(m: &Interactions, p: &BaselineParams, opts: &FitOptions<'_>) -> Result<Biases> {
        p.validate()?;
        if m.nnz() == 0 {
            return Err(Error::data("no ratings to fit biases on"));
        }
        let mu = m.values().iter().map(|&v| v as f64).sum::<f64>() / m.nnz() as f64;
        let (mut bu, mut bi) = (vec![0f64; m.n_users()], vec![0f64; m.n_items()]);
        let epochs = p.epochs();
        for e in 0..epochs {
            match p.method {
                BiasMethod::Als => {
                    for (i, b) in bi.iter_mut().enumerate() {
                        let users = m.item_users(i as u32);
                        let dev: f64 = users
                            .iter()
                            .zip(m.item_values(i as u32))
                            .map(|(&u, &r)| r as f64 - mu - bu[u as usize])
                            .sum();
                        *b = dev / (p.regularization_bi + users.len() as f64);
                    }
                    for (u, b) in bu.iter_mut().enumerate() {
                        let items = m.user_items(u as u32);
                        let dev: f64 = items
                            .iter()
                            .zip(m.user_values(u as u32))
                            .map(|(&i, &r)| r as f64 - mu - bi[i as usize])
                            .sum();
                        *b = dev / (p.regularization_bu + items.len() as f64);
                    }
                }
                BiasMethod::Sgd => {
                    for (u, i, r) in m.iter() {
                        let (u, i) = (u as usize, i as usize);
                        let err = r as f64 - (mu + bu[u] + bi[i]);
                        bu[u] += p.learning_rate * (err - p.regularization * bu[u]);
                        bi[i] += p.learning_rate * (err - p.regularization * bi[i]);
                    }
                }
            }
            opts.step("epoch", e as u64 + 1, epochs as u64, None)?;
        }
        Ok(Biases {
            mu: mu as f32,
            bu: bu.into_iter().map(|x| x as f32).collect(),
            bi: bi.into_iter().map(|x| x as f32).collect(),
        })
    }

    /// μ + b_u + b_i, with the bias of an unknown user or item taken as 0.
    pub fn baseline(&self, u: u32, i: u32) -> f32 {
        self.mu
            + self.bu.get(u as usize).copied().unwrap_or(0.0)
            + self.bi.get(i as usize).copied().unwrap_or(0.0)
    }
}

/// The rating scale seen in training, used to clip predictions as Surprise does.
#[derive(Clone, Copy, Debug, Serialize, Deserialize)]
#[serde(try_from = "UncheckedScale")]
pub struct Scale {
    /// Smallest training rating.
    pub min: f32,
    /// Largest training rating.
    pub max: f32,
}

/// A scale as read from a file, before [`Scale`] checks it (clipping to a reversed or NaN
/// range would panic).
#[derive(Deserialize)]
struct UncheckedScale {
    min: f32,
    max: f32,
}

impl TryFrom<UncheckedScale> for Scale {
    type Error = String;

    fn try_from(s: UncheckedScale) -> std::result::Result<Self, String> {
        if s.min.is_finite() && s.max.is_finite() && s.min <= s.max {
            Ok(Scale {
                min: s.min,
                max: s.max,
            })
        } else {
            Err(format!(
                "the rating scale [{}, {}] is not a range",
                s.min, s.max
            ))
        }
    }
}

impl Scale {
    /// The range of `m`'s values.
    pub fn of(m: &Interactions) -> Scale {
        let (mut min, mut max) = (f32::INFINITY, f32::NEG_INFINITY);
        for &v in m.values() {
            min = min.min(v);
            max = max.max(v);
        }
        if min > max {
            (min, max) = (0.0, 1.0);
        }
        Scale { min, max }
    }

    /// Clips a prediction into the scale.
    pub fn clip(&self, x: f32) -> f32 {
        x.clamp(self.min, self.max)
    }
}

/// The baseline predictor as a model.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Baseline {
    params: BaselineParams,
    biases: Biases,
    scale: Scale,
}

impl Baseline {
    /// Fits the biases.
    pub fn fit(p: &BaselineParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<Self> {
        Ok(Baseline {
            params: p.clone(),
            biases: Biases::fit(&data.interactions, p, opts)?,
            scale: Scale::of(&data.interactions),
        })
    }

    /// The fitted biases.
    pub fn biases(&self) -> &Biases {
        &self.biases
    }
}

impl Recommender for Baseline {
    fn n_items(&self) -> usize {
        self.biases.bi.len()
    }

    fn score(&self, q: &Query<'_>, out: &mut [f32]) -> Result<()> {
        // The user bias shifts every item alike, so the ranking is by item bias.
        for (o, &b) in out.iter_mut().zip(&self.biases.bi) {
            *o = self.biases.mu
                + b
                + q.user
                    .and_then(|u| self.biases.bu.get(u as usize))
                    .copied()
                    .unwrap_or(0.0);
        }
        Ok(())
    }

    fn as_rating_predictor(&self) -> Option<&dyn RatingPredictor> {
        Some(self)
    }
}

impl RatingPredictor for Baseline {
    fn predict(&self, u: u32, i: u32) -> f32 {
        self.scale.clip(self.biases.baseline(u, i))
    }
}

impl_model!(Baseline);

impl crate::spec::Kind for Baseline {
    const NAME: &'static str = "baseline";
    const SUMMARY: &'static str = "μ + b_u + b_i (Surprise's BaselineOnly), fitted by ALS or SGD.";
    const RENAMED: &'static [(&'static str, &'static str)] = &[
        ("reg", "regularization"),
        ("reg_u", "regularization_bu"),
        ("reg_i", "regularization_bi"),
    ];
    type Params = BaselineParams;
    type Fitted = Baseline;

    fn validate(p: &BaselineParams) -> Result<()> {
        p.validate()
    }

    fn capabilities(_: &BaselineParams) -> crate::spec::Capabilities {
        use crate::spec::Capabilities;
        Capabilities {
            rates: true,
            ..Default::default()
        }
    }

    fn fit(p: &BaselineParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<Baseline> {
        Baseline::fit(p, data, opts)
    }

    fn restore(p: &BaselineParams, state: &[u8], shape: &Shape) -> Result<Baseline> {
        crate::spec::restore_state(p, state, shape, |m: &Baseline| &m.params)
    }

    fn examples() -> Vec<BaselineParams> {
        vec![
            BaselineParams::default(),
            BaselineParams {
                method: BiasMethod::Sgd,
                ..Default::default()
            },
        ]
    }
}

/// Which means to subtract before a rating model learns, and add back after it predicts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Centering {
    /// Raw ratings.
    #[default]
    None,
    /// Subtract each user's mean rating.
    User,
    /// Subtract each item's mean rating.
    Item,
    /// Subtract the global mean and the user and item deviations (μ + (μ_u − μ) + (μ_i − μ)).
    Both,
}

/// Mean normalisation: fitted means, a centred copy of the data, and the inverse.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct MeanNormalizer {
    /// Which means.
    pub centering: Centering,
    /// Global mean.
    pub mu: f32,
    /// Mean rating of each user (μ for users without ratings).
    pub user_mean: Vec<f32>,
    /// Mean rating of each item (μ for items without ratings).
    pub item_mean: Vec<f32>,
}

impl MeanNormalizer {
    /// Computes the means of `m`.
    pub fn fit(m: &Interactions, centering: Centering) -> Self {
        let mu = if m.nnz() == 0 {
            0.0
        } else {
            (m.values().iter().map(|&v| v as f64).sum::<f64>() / m.nnz() as f64) as f32
        };
        let mean = |vals: &[f32]| {
            if vals.is_empty() {
                mu
            } else {
                (vals.iter().map(|&v| v as f64).sum::<f64>() / vals.len() as f64) as f32
            }
        };
        MeanNormalizer {
            centering,
            mu,
            user_mean: (0..m.n_users() as u32)
                .map(|u| mean(m.user_values(u)))
                .collect(),
            item_mean: (0..m.n_items() as u32)
                .map(|i| mean(m.item_values(i)))
                .collect(),
        }
    }

    /// The offset removed from (u, i): 0, μ_u, μ_i, or μ_u + μ_i − μ.
    pub fn offset(&self, u: u32, i: u32) -> f32 {
        let um = self.user_mean.get(u as usize).copied().unwrap_or(self.mu);
        let im = self.item_mean.get(i as usize).copied().unwrap_or(self.mu);
        match self.centering {
            Centering::None => 0.0,
            Centering::User => um,
            Centering::Item => im,
            Centering::Both => um + im - self.mu,
        }
    }

    /// A copy of `m` with the offsets removed.
    pub fn center(&self, m: &Interactions) -> Interactions {
        let centred: Vec<f32> = m.iter().map(|(u, i, v)| v - self.offset(u, i)).collect();
        m.with_values(&centred)
    }
}

impl Biases {
    /// Checks biases read from a file against the id space.
    pub(crate) fn check(&self, shape: &Shape) -> std::result::Result<(), String> {
        check::len("the user biases", self.bu.len(), shape.users)?;
        check::len("the item biases", self.bi.len(), shape.items)
    }
}

impl CheckState for Baseline {
    fn check_state(&self, shape: &Shape) -> std::result::Result<(), String> {
        self.biases.check(shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reco_core::{DuplicatePolicy, Triplets};

    fn m(rows: &[(u32, u32, f32)], nu: usize, ni: usize) -> Interactions {
        let mut t = Triplets::new(false);
        rows.iter().for_each(|&(u, i, v)| t.push(u, i, v, None));
        Interactions::from_triplets(&t, nu, ni, DuplicatePolicy::Last)
            .unwrap()
            .0
    }

    #[test]
    fn als_one_epoch_by_hand() {
        // μ = 3. Item pass (b_u = 0): b_0 = (5−3 + 3−3)/(1 + 2) = 2/3; b_1 = (1−3)/(1 + 1) = −1.
        // User pass: b_u0 = ((5−3−2/3) + (1−3+1))/(1 + 2) = (4/3 − 1)/3 = 1/9; b_u1 = (3−3−2/3)/(1+1) = −1/3.
        let x = m(&[(0, 0, 5.0), (0, 1, 1.0), (1, 0, 3.0)], 2, 2);
        let p = BaselineParams {
            epochs: 1,
            regularization_bi: 1.0,
            regularization_bu: 1.0,
            ..Default::default()
        };
        let b = Biases::fit(&x, &p, &FitOptions::default()).unwrap();
        assert!((b.mu - 3.0).abs() < 1e-6);
        assert!((b.bi[0] - 2.0 / 3.0).abs() < 1e-6 && (b.bi[1] + 1.0).abs() < 1e-6);
        assert!((b.bu[0] - 1.0 / 9.0).abs() < 1e-6 && (b.bu[1] + 1.0 / 3.0).abs() < 1e-6);
    }

    #[test]
    fn sgd_one_step_by_hand() {
        let x = m(&[(0, 0, 5.0)], 1, 1);
        let p = BaselineParams {
            method: BiasMethod::Sgd,
            epochs: 1,
            learning_rate: 0.1,
            regularization: 0.5,
            ..Default::default()
        };
        let b = Biases::fit(&x, &p, &FitOptions::default()).unwrap();
        // μ = 5, err = 0 → no change.
        assert_eq!(b.bu[0], 0.0);
        let x = m(&[(0, 0, 5.0), (0, 1, 1.0)], 1, 2);
        let b = Biases::fit(&x, &p, &FitOptions::default()).unwrap();
        // μ = 3; row order (0,0): err 2 → b_u = 0.2, b_0 = 0.2; (0,1): err = 1−3−0.2 = −2.2 → b_u = 0.2 + 0.1(−2.2 − 0.1) = −0.03, b_1 = −0.22.
        assert!(
            (b.bu[0] + 0.03).abs() < 1e-6
                && (b.bi[1] + 0.22).abs() < 1e-6
                && (b.bi[0] - 0.2).abs() < 1e-6
        );
    }

    #[test]
    fn normalizer_round_trips() {
        let x = m(&[(0, 0, 5.0), (0, 1, 1.0), (1, 0, 3.0)], 2, 3);
        for c in [
            Centering::None,
            Centering::User,
            Centering::Item,
            Centering::Both,
        ] {
            let n = MeanNormalizer::fit(&x, c);
            let centred = n.center(&x);
            for ((u, i, v), (_, _, z)) in x.iter().zip(centred.iter()) {
                assert!((z + n.offset(u, i) - v).abs() < 1e-6);
            }
        }
        let n = MeanNormalizer::fit(&x, Centering::User);
        assert_eq!(n.offset(0, 0), 3.0);
        assert_eq!(
            n.item_mean[2], 3.0,
            "an item without ratings gets the global mean"
        );
        assert!(Biases::fit(
            &m(&[], 1, 1),
            &BaselineParams::default(),
            &FitOptions::default()
        )
        .is_err());
        assert!(BaselineParams {
            learning_rate: 0.0,
            ..Default::default()
        }
        .validate()
        .is_err());
    }
}
