//! Non-personalised baselines: random and popularity (count, rating-weighted, trending).

use crate::spec::{check, CheckState, Shape};
use serde::{Deserialize, Serialize};

use reco_core::model::{FitOptions, Query, Recommender};
use reco_core::{Dataset, Error, Result};

use crate::spec::impl_model;

/// Parameters of the random model.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RandomParams {
    /// Added to the fit seed, to draw several random baselines from one seed.
    pub seed_offset: u64,
}

/// Scores every item with a hash of (seed, user, item): a fixed random ranking per user.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RandomModel {
    params: RandomParams,
    seed: u64,
    n_items: usize,
}

impl RandomModel {
    /// "Fits" by remembering the seed and the catalogue size.
    pub fn fit(p: &RandomParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<Self> {
        Ok(RandomModel {
            params: p.clone(),
            seed: opts.seed.wrapping_add(p.seed_offset),
            n_items: data.n_items(),
        })
    }
}

/// SplitMix64 finaliser: a fast, well-mixed hash of a 64-bit value.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Recommender for RandomModel {
    fn n_items(&self) -> usize {
        self.n_items
    }

    fn score(&self, q: &Query<'_>, out: &mut [f32]) -> Result<()> {
        let key = mix(self.seed ^ mix(q.user.map_or(u64::MAX, u64::from)));
        for (i, o) in out.iter_mut().enumerate() {
            *o = (mix(key ^ i as u64) >> 40) as f32;
        }
        Ok(())
    }
}

impl_model!(RandomModel);

impl crate::spec::Kind for RandomModel {
    const NAME: &'static str = "random";
    const SUMMARY: &'static str = "Uniformly random ranking: the floor every model must beat.";
    type Params = RandomParams;
    type Fitted = RandomModel;

    fn validate(_: &RandomParams) -> Result<()> {
        Ok(())
    }

    fn capabilities(_: &RandomParams) -> crate::spec::Capabilities {
        use crate::spec::Capabilities;
        Capabilities::default()
    }

    fn fit(p: &RandomParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<RandomModel> {
        RandomModel::fit(p, data, opts)
    }

    fn restore(p: &RandomParams, state: &[u8], shape: &Shape) -> Result<RandomModel> {
        crate::spec::restore_state(p, state, shape, |m: &RandomModel| &m.params)
    }

    fn examples() -> Vec<RandomParams> {
        vec![RandomParams::default()]
    }
}

/// What popularity counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Weighting {
    /// Number of interactions (the notebook's baseline).
    #[default]
    Count,
    /// Sum of values (ratings or weights).
    Rating,
    /// Interactions decayed by age: each counts 0.5^(age / half-life), age measured from the
    /// latest training timestamp.
    Trending,
}

/// Parameters of the popularity model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PopularityParams {
    /// What to count.
    pub weighting: Weighting,
    /// Half-life of the trending decay, in days.
    pub half_life_days: f64,
}

impl Default for PopularityParams {
    fn default() -> Self {
        PopularityParams {
            weighting: Weighting::Count,
            half_life_days: 30.0,
        }
    }
}

impl PopularityParams {
    /// Checks the half-life.
    pub fn validate(&self) -> Result<()> {
        if !(self.half_life_days > 0.0 && self.half_life_days.is_finite()) {
            return Err(Error::param(
                "half_life_days",
                format!("must be a finite number > 0, got {}", self.half_life_days),
            ));
        }
        Ok(())
    }
}

/// One score per item, the same for every user.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Popularity {
    params: PopularityParams,
    scores: Vec<f32>,
}

impl Popularity {
    /// Counts the training interactions.
    pub fn fit(p: &PopularityParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<Self> {
        let m = &data.interactions;
        let mut acc = vec![0f64; m.n_items()];
        match p.weighting {
            Weighting::Count => {
                for (i, c) in m.item_counts().into_iter().enumerate() {
                    acc[i] = c as f64;
                }
            }
            Weighting::Rating => {
                for (_, i, v) in m.iter() {
                    acc[i as usize] += v as f64;
                }
            }
            Weighting::Trending => {
                let ts = m.timestamps().ok_or_else(|| {
                    Error::data("popularity weighting trending needs timestamps and the training data has none")
                })?;
                let now = ts.iter().copied().max().unwrap_or(0);
                let half_life = p.half_life_days * 86_400.0;
                for (&i, &t) in m.indices().iter().zip(ts) {
                    acc[i as usize] += 0.5f64.powf(now.saturating_sub(t) as f64 / half_life);
                }
            }
        }
        opts.report("items", m.n_items() as u64, m.n_items() as u64, None);
        Ok(Popularity {
            params: p.clone(),
            scores: acc.into_iter().map(|x| x as f32).collect(),
        })
    }

    /// The score of every item.
    pub fn scores(&self) -> &[f32] {
        &self.scores
    }
}

impl Recommender for Popularity {
    fn n_items(&self) -> usize {
        self.scores.len()
    }

    fn score(&self, _q: &Query<'_>, out: &mut [f32]) -> Result<()> {
        out.copy_from_slice(&self.scores);
        Ok(())
    }

    fn as_explain(&self) -> Option<&dyn reco_core::explain::Explain> {
        Some(self)
    }
}

impl_model!(Popularity);

impl crate::spec::Kind for Popularity {
    const NAME: &'static str = "popularity";
    const SUMMARY: &'static str = "Most popular items, by count, rating sum or time-decayed trend.";
    type Params = PopularityParams;
    type Fitted = Popularity;

    fn validate(p: &PopularityParams) -> Result<()> {
        p.validate()
    }

    fn capabilities(_: &PopularityParams) -> crate::spec::Capabilities {
        use crate::spec::Capabilities;
        Capabilities {
            ranks: true,
            ..Default::default()
        }
    }

    fn fit(p: &PopularityParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<Popularity> {
        Popularity::fit(p, data, opts)
    }

    fn restore(p: &PopularityParams, state: &[u8], shape: &Shape) -> Result<Popularity> {
        crate::spec::restore_state(p, state, shape, |m: &Popularity| &m.params)
    }

    fn examples() -> Vec<PopularityParams> {
        [Weighting::Count, Weighting::Rating, Weighting::Trending]
            .map(|weighting| PopularityParams {
                weighting,
                half_life_days: 60.0,
            })
            .to_vec()
    }
}

impl CheckState for RandomModel {
    fn check_state(&self, shape: &Shape) -> std::result::Result<(), String> {
        check::len("the catalogue", self.n_items, shape.items)
    }
}

impl CheckState for Popularity {
    fn check_state(&self, shape: &Shape) -> std::result::Result<(), String> {
        check::len("the scores", self.scores.len(), shape.items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reco_core::loaders::{DatasetBuilder, LoadOptions};
    use reco_core::model::Filter;

    fn data() -> Dataset {
        let mut b = DatasetBuilder::new(true);
        let day = 86_400;
        // item a: 2 old ratings of 5; item b: 3 recent ratings of 1; item c: 1 rating today.
        for (u, i, r, t) in [
            ("1", "a", 5.0, 0),
            ("2", "a", 5.0, 0),
            ("1", "b", 1.0, 90 * day),
            ("2", "b", 1.0, 90 * day),
            ("3", "b", 1.0, 90 * day),
            ("3", "c", 4.0, 100 * day),
        ] {
            let (u, i) = (b.users.get_or_insert(u), b.items.get_or_insert(i));
            b.triplets.push(u, i, r, Some(t));
        }
        b.has_ratings = true;
        b.finish("t", &LoadOptions::default()).unwrap()
    }

    fn top(spec: PopularityParams) -> Vec<u32> {
        let m = Popularity::fit(&spec, &data(), &FitOptions::default()).unwrap();
        m.recommend(&Query::user(0), 3, &Filter::default())
            .unwrap()
            .iter()
            .map(|s| s.item)
            .collect()
    }

    #[test]
    fn each_weighting_ranks_as_computed_by_hand() {
        assert_eq!(top(PopularityParams::default()), vec![1, 0, 2]); // counts 2, 3, 1
        assert_eq!(
            top(PopularityParams {
                weighting: Weighting::Rating,
                ..Default::default()
            }),
            vec![0, 2, 1]
        ); // 10, 3, 4
           // 10-day half-life: a = 2·0.5^10 ≈ 0.002, b = 3·0.5 = 1.5, c = 1.
        let m = Popularity::fit(
            &PopularityParams {
                weighting: Weighting::Trending,
                half_life_days: 10.0,
            },
            &data(),
            &FitOptions::default(),
        )
        .unwrap();
        assert!((m.scores()[1] - 1.5).abs() < 1e-6);
        assert!((m.scores()[0] - 2.0 * 0.5f32.powi(10)).abs() < 1e-6);
        assert_eq!(m.scores()[2], 1.0);
    }

    #[test]
    fn bad_half_life_is_refused() {
        assert!(PopularityParams {
            half_life_days: 0.0,
            ..Default::default()
        }
        .validate()
        .is_err());
        assert!(PopularityParams {
            half_life_days: f64::NAN,
            ..Default::default()
        }
        .validate()
        .is_err());
    }

    #[test]
    fn random_is_a_fixed_permutation_per_user() {
        let m = RandomModel::fit(
            &RandomParams::default(),
            &data(),
            &FitOptions {
                seed: 7,
                ..Default::default()
            },
        )
        .unwrap();
        let a = m.recommend(&Query::user(0), 3, &Filter::default()).unwrap();
        let b = m.recommend(&Query::user(0), 3, &Filter::default()).unwrap();
        assert_eq!(a, b);
        let mut items: Vec<u32> = a.iter().map(|s| s.item).collect();
        items.sort();
        assert_eq!(items, vec![0, 1, 2]);
    }
}
