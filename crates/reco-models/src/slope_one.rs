//! Slope One (Lemire & Maclachlan 2005): item-pair average rating differences.
//!
//! dev(i, j) is the mean of r_ui − r_uj over users who rated both. The unweighted variant is
//! Surprise's (`μ_u + mean over rated j of dev(i, j)`); the weighted one averages
//! dev(i, j) + r_uj with weights freq(i, j). The pair table is sparse (only co-rated pairs) and
//! built item by item in parallel; catalogues above [`MAX_ITEMS`] are refused, since the table
//! grows with the square of the catalogue.

use crate::spec::{check, CheckState, Shape};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use reco_core::model::{FitOptions, Query, RatingPredictor, Recommender};
use reco_core::{Dataset, Error, Result};

use crate::bias::Scale;
use crate::spec::impl_model;

/// Largest catalogue Slope One accepts.
pub const MAX_ITEMS: usize = 20_000;

/// Parameters of Slope One.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SlopeOneParams {
    /// Weight each pair by how many users rated both (weighted Slope One); false gives Surprise's
    /// unweighted variant.
    pub weighted: bool,
}

impl Default for SlopeOneParams {
    fn default() -> Self {
        SlopeOneParams { weighted: true }
    }
}

/// A fitted Slope One model: for each item i, the items j co-rated with it, with dev(i, j) and
/// freq(i, j), sorted by j.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SlopeOne {
    params: SlopeOneParams,
    ptr: Vec<u64>,
    other: Vec<u32>,
    dev: Vec<f32>,
    freq: Vec<u32>,
    user_items: Vec<Vec<(u32, f32)>>,
    user_mean: Vec<f32>,
    mu: f32,
    scale: Scale,
}

impl SlopeOne {
    /// Builds the pair table.
    pub fn fit(p: &SlopeOneParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<Self> {
        let m = &data.interactions;
        if m.n_items() > MAX_ITEMS {
            return Err(Error::data(format!(
                "slope-one accepts at most {MAX_ITEMS} items, the data has {}",
                m.n_items()
            )));
        }
        let n = m.n_items();
        let done = std::sync::atomic::AtomicU64::new(0);
        let lists: Vec<Vec<(u32, f32, u32)>> = (0..n as u32)
            .into_par_iter()
            .map_init(
                || (vec![0f64; n], vec![0u32; n], Vec::<u32>::new()),
                |(sum, cnt, touched), i| {
                    for (&u, &ri) in m.item_users(i).iter().zip(m.item_values(i)) {
                        for (&j, &rj) in m.user_items(u).iter().zip(m.user_values(u)) {
                            if j == i {
                                continue;
                            }
                            if cnt[j as usize] == 0 {
                                touched.push(j);
                            }
                            cnt[j as usize] += 1;
                            sum[j as usize] += (ri - rj) as f64;
                        }
                    }
                    touched.sort_unstable();
                    let out = touched
                        .iter()
                        .map(|&j| {
                            (
                                j,
                                (sum[j as usize] / cnt[j as usize] as f64) as f32,
                                cnt[j as usize],
                            )
                        })
                        .collect();
                    for &j in touched.iter() {
                        sum[j as usize] = 0.0;
                        cnt[j as usize] = 0;
                    }
                    touched.clear();
                    let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    if d.is_multiple_of(1024) || d == n as u64 {
                        opts.report("items", d, n as u64, None);
                    }
                    out
                },
            )
            .collect();
        let mut model = SlopeOne {
            params: p.clone(),
            ptr: vec![0],
            other: Vec::new(),
            dev: Vec::new(),
            freq: Vec::new(),
            user_items: (0..m.n_users() as u32)
                .map(|u| {
                    m.user_items(u)
                        .iter()
                        .copied()
                        .zip(m.user_values(u).iter().copied())
                        .collect()
                })
                .collect(),
            user_mean: (0..m.n_users() as u32)
                .map(|u| {
                    let v = m.user_values(u);
                    if v.is_empty() {
                        f32::NAN
                    } else {
                        (v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64) as f32
                    }
                })
                .collect(),
            mu: if m.nnz() == 0 {
                0.0
            } else {
                (m.values().iter().map(|&v| v as f64).sum::<f64>() / m.nnz() as f64) as f32
            },
            scale: Scale::of(m),
        };
        for l in lists {
            for (j, d, f) in l {
                model.other.push(j);
                model.dev.push(d);
                model.freq.push(f);
            }
            model.ptr.push(model.other.len() as u64);
        }
        Ok(model)
    }

    fn pairs(&self, i: u32) -> std::ops::Range<usize> {
        self.ptr[i as usize] as usize..self.ptr[i as usize + 1] as usize
    }

    /// Per-item (numerator, denominator) for a history: both variants reduce to sums over
    /// co-rated pairs, accumulated from each rated item's own pair list (dev(i, j) = −dev(j, i)).
    fn accumulate(&self, history: &[(u32, f32)], num: &mut [f64], den: &mut [f64]) {
        for &(j, rj) in history {
            if j as usize + 1 >= self.ptr.len() {
                continue;
            }
            for p in self.pairs(j) {
                let i = self.other[p] as usize;
                let dev_ij = -(self.dev[p] as f64);
                if self.params.weighted {
                    let f = self.freq[p] as f64;
                    num[i] += (dev_ij + rj as f64) * f;
                    den[i] += f;
                } else {
                    num[i] += dev_ij;
                    den[i] += 1.0;
                }
            }
        }
    }

    fn finish(&self, num: f64, den: f64, user_mean: f32) -> Option<f32> {
        if den <= 0.0 {
            return None;
        }
        Some(if self.params.weighted {
            (num / den) as f32
        } else {
            user_mean + (num / den) as f32
        })
    }
}

impl RatingPredictor for SlopeOne {
    fn predict(&self, u: u32, i: u32) -> f32 {
        let mut out = [0f32];
        self.predict_user(u, &[i], &mut out);
        out[0]
    }

    fn predict_user(&self, u: u32, items: &[u32], out: &mut [f32]) {
        let Some(hist) = self.user_items.get(u as usize).filter(|h| !h.is_empty()) else {
            out.iter_mut().for_each(|o| *o = self.scale.clip(self.mu));
            return;
        };
        let mean = self.user_mean[u as usize];
        for (o, &i) in out.iter_mut().zip(items) {
            let (mut num, mut den) = (0.0, 0.0);
            if (i as usize) + 1 < self.ptr.len() {
                // Walk i's pair list against the user's sorted history.
                let r = self.pairs(i);
                let (others, devs, freqs) =
                    (&self.other[r.clone()], &self.dev[r.clone()], &self.freq[r]);
                for &(j, rj) in hist {
                    if let Ok(p) = others.binary_search(&j) {
                        if self.params.weighted {
                            num += (devs[p] as f64 + rj as f64) * freqs[p] as f64;
                            den += freqs[p] as f64;
                        } else {
                            num += devs[p] as f64;
                            den += 1.0;
                        }
                    }
                }
            }
            // Surprise: with no co-rated item the estimate is the user's mean.
            let est = self.finish(num, den, mean).unwrap_or(mean);
            *o = self.scale.clip(if est.is_finite() { est } else { self.mu });
        }
    }
}

impl Recommender for SlopeOne {
    fn n_items(&self) -> usize {
        self.ptr.len() - 1
    }

    fn score(&self, q: &Query<'_>, out: &mut [f32]) -> Result<()> {
        let owned;
        let hist: &[(u32, f32)] = if !q.history.is_empty() {
            q.history
        } else {
            owned = q
                .user
                .and_then(|u| self.user_items.get(u as usize))
                .cloned()
                .unwrap_or_default();
            &owned
        };
        let n = out.len();
        let (mut num, mut den) = (vec![0f64; n], vec![0f64; n]);
        self.accumulate(hist, &mut num, &mut den);
        let mean = if hist.is_empty() {
            self.mu
        } else {
            (hist.iter().map(|h| h.1 as f64).sum::<f64>() / hist.len() as f64) as f32
        };
        for i in 0..n {
            // Items with no co-rated pair rank below every predicted one.
            out[i] = self.finish(num[i], den[i], mean).map_or(f32::MIN, |x| x);
        }
        Ok(())
    }

    fn as_rating_predictor(&self) -> Option<&dyn RatingPredictor> {
        Some(self)
    }
}

impl_model!(SlopeOne);

impl crate::spec::Kind for SlopeOne {
    const NAME: &'static str = "slope-one";
    const SUMMARY: &'static str = "Slope One (weighted by default; unweighted is Surprise's).";
    type Params = SlopeOneParams;
    type Fitted = SlopeOne;

    fn validate(_: &SlopeOneParams) -> Result<()> {
        Ok(())
    }

    fn footprint(_: &SlopeOneParams, shape: &crate::spec::Shape) -> crate::spec::Footprint {
        // Deviations and counts for every item pair.
        let n = shape.items as f64;
        crate::spec::Footprint {
            bytes: crate::spec::Footprint::data(shape).bytes + n * n * 12.0,
            driver: "the number of items (slope-one keeps a deviation per item pair)",
        }
    }
    fn capabilities(_: &SlopeOneParams) -> crate::spec::Capabilities {
        use crate::spec::Capabilities;
        Capabilities {
            rates: true,
            ..Default::default()
        }
    }

    fn fit(p: &SlopeOneParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<SlopeOne> {
        SlopeOne::fit(p, data, opts)
    }

    fn restore(p: &SlopeOneParams, state: &[u8], shape: &Shape) -> Result<SlopeOne> {
        crate::spec::restore_state(p, state, shape, |m: &SlopeOne| &m.params)
    }

    fn examples() -> Vec<SlopeOneParams> {
        vec![
            SlopeOneParams::default(),
            SlopeOneParams { weighted: false },
        ]
    }
}

impl CheckState for SlopeOne {
    fn check_state(&self, shape: &Shape) -> std::result::Result<(), String> {
        check::csr(
            "the deviation index",
            &self.ptr,
            shape.items,
            self.other.len(),
        )?;
        check::below("the deviation index", &self.other, shape.items)?;
        check::len("the deviations", self.dev.len(), self.other.len())?;
        check::len("the frequencies", self.freq.len(), self.other.len())?;
        check::len("the user ratings", self.user_items.len(), shape.users)?;
        check::len("the user means", self.user_mean.len(), shape.users)?;
        for h in &self.user_items {
            if h.iter().any(|&(i, _)| i as usize >= shape.items) {
                return Err("a user's ratings name an item beyond the catalogue".into());
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
    fn the_classic_example() {
        // Lemire & Maclachlan: A rates i=1, j=1.5; B rates i=2 only... here: u0 (a 1, b 1.5),
        // u1 (a 2); predict u1's b. dev(b, a) = 0.5 → 2.5 in both variants.
        let mut bd = DatasetBuilder::new(false);
        // u2's lone rating widens the rating scale so 2.5 is not clipped.
        for (u, i, r) in [
            ("0", "a", 1.0),
            ("0", "b", 1.5),
            ("1", "a", 2.0),
            ("2", "c", 5.0),
        ] {
            let (u, i) = (bd.users.get_or_insert(u), bd.items.get_or_insert(i));
            bd.triplets.push(u, i, r, None);
        }
        bd.has_ratings = true;
        let ds = bd.finish("t", &LoadOptions::default()).unwrap();
        for weighted in [true, false] {
            let m =
                SlopeOne::fit(&SlopeOneParams { weighted }, &ds, &FitOptions::default()).unwrap();
            // Unweighted: μ_u1 (2) + dev (0.5) = 2.5; weighted: (0.5 + 2)·1/1 = 2.5.
            assert!((m.predict(1, 1) - 2.5).abs() < 1e-6, "weighted={weighted}");
            let mut s = vec![0f32; 3];
            m.score(&Query::user(1), &mut s).unwrap();
            assert!((s[1] - 2.5).abs() < 1e-6);
        }
    }
}
