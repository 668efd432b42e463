//! EASE^R (Steck 2019): a closed-form item-item linear model.
//! B = I − P · diag(1 / diag(P)) with P = (XᵀX + λI)⁻¹, so diag(B) = 0; score = x_u · B.
//! The Gram matrix and B are dense n_items × n_items, so catalogues above [`MAX_ITEMS`] are
//! refused; the inverse uses faer's Cholesky factorisation.

use crate::spec::{check, CheckState, Shape};
use faer::linalg::solvers::DenseSolveCore;
use faer::{Mat, Side};
use serde::{Deserialize, Serialize};

use reco_core::model::{FitOptions, Query, Recommender};
use reco_core::{Dataset, Error, Result};

use crate::spec::impl_model;

/// Largest catalogue EASE accepts (its dense matrices take 2 · n² · 4 bytes: 3.2 GB at the limit).
pub const MAX_ITEMS: usize = 20_000;

/// Parameters of EASE.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EaseParams {
    /// L2 regularisation λ added to the diagonal of the Gram matrix.
    pub regularization: f64,
    /// Use 0/1 interactions instead of values.
    pub binary: bool,
}

impl Default for EaseParams {
    fn default() -> Self {
        EaseParams {
            regularization: 500.0,
            binary: true,
        }
    }
}

/// The fitted weights.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ease {
    params: EaseParams,
    n: usize,
    /// Row-major n × n weights.
    b: Vec<f32>,
    histories: Vec<Vec<(u32, f32)>>,
}

impl EaseParams {
    /// Checks every rule, one error per broken rule.
    pub fn validate(&self) -> Result<()> {
        if !(self.regularization > 0.0 && self.regularization.is_finite()) {
            return Err(Error::param(
                "regularization",
                format!("must be a finite number > 0, got {}", self.regularization),
            ));
        }
        Ok(())
    }
}

impl Ease {
    /// Builds the Gram matrix from the sparse rows and inverts it.
    pub fn fit(p: &EaseParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<Self> {
        p.validate()?;
        let m = &data.interactions;
        let n = m.n_items();
        if n > MAX_ITEMS {
            return Err(Error::data(format!("ease accepts at most {MAX_ITEMS} items (dense n × n matrices), the data has {n}; use item-knn or rp3beta")));
        }
        let value = |v: f32| if p.binary { 1.0 } else { v as f64 };
        let mut g = Mat::<f64>::zeros(n, n);
        for u in 0..m.n_users() as u32 {
            let (items, vals) = (m.user_items(u), m.user_values(u));
            for (a, &i) in items.iter().enumerate() {
                let xi = value(vals[a]);
                for (b, &j) in items.iter().enumerate().skip(a) {
                    let x = xi * value(vals[b]);
                    g[(i as usize, j as usize)] += x;
                    if i != j {
                        g[(j as usize, i as usize)] += x;
                    }
                }
            }
        }
        for i in 0..n {
            g[(i, i)] += p.regularization;
        }
        opts.report("gram", 1, 2, None);
        let llt = g.llt(Side::Lower).map_err(|e| {
            Error::training(
                "ease",
                format!(
                    "the regularised Gram matrix is not positive definite ({e:?}); raise regularization"
                ),
            )
        })?;
        let inv = llt.inverse();
        let mut b = vec![0f32; n * n];
        for j in 0..n {
            let d = inv[(j, j)];
            for i in 0..n {
                if i != j {
                    b[i * n + j] = (-inv[(i, j)] / d) as f32;
                }
            }
        }
        opts.report("inverse", 2, 2, None);
        let histories = (0..m.n_users() as u32)
            .map(|u| {
                m.user_items(u)
                    .iter()
                    .copied()
                    .zip(m.user_values(u).iter().map(|&v| value(v) as f32))
                    .collect()
            })
            .collect();
        Ok(Ease {
            params: p.clone(),
            n,
            b,
            histories,
        })
    }
}

impl Recommender for Ease {
    fn n_items(&self) -> usize {
        self.n
    }

    fn score(&self, q: &Query<'_>, out: &mut [f32]) -> Result<()> {
        out.iter_mut().for_each(|o| *o = 0.0);
        let owned: Vec<(u32, f32)>;
        let hist: &[(u32, f32)] = if !q.history.is_empty() {
            owned = q
                .history
                .iter()
                .map(|&(i, v)| (i, if self.params.binary { 1.0 } else { v }))
                .collect();
            &owned
        } else {
            q.user
                .and_then(|u| self.histories.get(u as usize))
                .map_or(&[], Vec::as_slice)
        };
        for &(j, x) in hist {
            if j as usize >= self.n {
                return Err(Error::param(
                    "history",
                    format!("item index {j} is outside the catalogue"),
                ));
            }
            let row = &self.b[j as usize * self.n..(j as usize + 1) * self.n];
            for (o, &w) in out.iter_mut().zip(row) {
                *o += x * w;
            }
        }
        Ok(())
    }
}

impl_model!(Ease);

impl crate::spec::Kind for Ease {
    const NAME: &'static str = "ease";
    const SUMMARY: &'static str = "EASE^R: closed-form item-item model.";
    const RENAMED: &'static [(&'static str, &'static str)] = &[("lambda", "regularization")];
    type Params = EaseParams;
    type Fitted = Ease;

    fn validate(p: &EaseParams) -> Result<()> {
        p.validate()
    }

    fn footprint(_: &EaseParams, shape: &crate::spec::Shape) -> crate::spec::Footprint {
        // The Gram matrix and its inverse in f64, the weights in f32: items × items each.
        let n = shape.items as f64;
        crate::spec::Footprint {
            bytes: crate::spec::Footprint::data(shape).bytes + n * n * 20.0,
            driver:
                "the number of items (EASE keeps items × items matrices; use item-knn or rp3beta \
                     for a large catalogue)",
        }
    }
    fn capabilities(_: &EaseParams) -> crate::spec::Capabilities {
        use crate::spec::Capabilities;
        Capabilities {
            ranks: true,
            ..Default::default()
        }
    }

    fn fit(p: &EaseParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<Ease> {
        Ease::fit(p, data, opts)
    }

    fn restore(p: &EaseParams, state: &[u8], shape: &Shape) -> Result<Ease> {
        crate::spec::restore_state(p, state, shape, |m: &Ease| &m.params)
    }

    fn examples() -> Vec<EaseParams> {
        vec![EaseParams {
            regularization: 50.0,
            ..Default::default()
        }]
    }
}

impl CheckState for Ease {
    fn check_state(&self, shape: &Shape) -> std::result::Result<(), String> {
        check::len("the catalogue", self.n, shape.items)?;
        check::rows("the weight matrix", self.b.len(), self.n, self.n)?;
        check::len("the histories", self.histories.len(), shape.users)?;
        for h in &self.histories {
            if h.iter().any(|&(i, _)| i as usize >= self.n) {
                return Err("a history names an item beyond the catalogue".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reco_core::loaders::{DatasetBuilder, LoadOptions};

    #[test]
    fn two_items_by_hand() {
        // Items a, b; users {a, b}, {a}. G = [[2, 1], [1, 1]] + λI with λ = 1: [[3, 1], [1, 2]].
        // P = 1/5 [[2, −1], [−1, 3]]; B_ab = −P_ab / P_bb = (1/5)/(3/5) = 1/3, B_ba = (1/5)/(2/5) = 1/2.
        let mut bd = DatasetBuilder::new(false);
        for (u, i) in [("0", "a"), ("0", "b"), ("1", "a")] {
            let (u, i) = (bd.users.get_or_insert(u), bd.items.get_or_insert(i));
            bd.triplets.push(u, i, 1.0, None);
        }
        let ds = bd.finish("t", &LoadOptions::default()).unwrap();
        let m = Ease::fit(
            &EaseParams {
                regularization: 1.0,
                binary: true,
            },
            &ds,
            &FitOptions::default(),
        )
        .unwrap();
        assert!((m.b[1] - 1.0 / 3.0).abs() < 1e-6 && (m.b[2] - 0.5).abs() < 1e-6);
        assert_eq!((m.b[0], m.b[3]), (0.0, 0.0));
        let mut s = [0f32; 2];
        m.score(&Query::user(1), &mut s).unwrap();
        assert!((s[1] - 1.0 / 3.0).abs() < 1e-6);
        assert!(Ease::fit(
            &EaseParams {
                regularization: 0.0,
                binary: true
            },
            &ds,
            &FitOptions::default()
        )
        .is_err());
    }
}
