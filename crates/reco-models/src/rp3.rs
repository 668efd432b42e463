//! RP3β (Paudel et al. 2017): item-item weights from a three-step random walk
//! item → user → item, with transition probabilities raised to α and the destination's
//! popularity penalised by deg^β; each item keeps its top-K neighbours; score = x_u · W.

use crate::spec::{check, CheckState, Shape};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use reco_core::model::{FitOptions, Query, Recommender, SimilarItems};
use reco_core::topk::Scored;
use reco_core::{Dataset, Error, Result};

use crate::neighbours::NeighbourLists;
use crate::spec::impl_model;

/// Parameters of RP3β.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Rp3Params {
    /// Exponent of the transition probabilities.
    pub alpha: f64,
    /// Popularity penalty exponent (0 gives P3α).
    pub beta: f64,
    /// Neighbours kept per item.
    pub max_neighbours: usize,
}

impl Default for Rp3Params {
    fn default() -> Self {
        Rp3Params {
            alpha: 1.0,
            beta: 0.5,
            max_neighbours: 100,
        }
    }
}

/// The fitted walk weights (CSR over items).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Rp3 {
    params: Rp3Params,
    graph: NeighbourLists,
    histories: Vec<Vec<u32>>,
}

impl Rp3Params {
    /// Checks every rule, one error per broken rule.
    pub fn validate(&self) -> Result<()> {
        for (name, v) in [("alpha", self.alpha), ("beta", self.beta)] {
            if !(v >= 0.0 && v.is_finite()) {
                return Err(Error::param(
                    name,
                    format!("must be a finite number >= 0, got {v}"),
                ));
            }
        }
        if self.max_neighbours == 0 {
            return Err(Error::param("max_neighbours", "must be at least 1"));
        }
        Ok(())
    }
}

impl Rp3 {
    /// Computes each item's walk weights by a sparse product, in parallel.
    pub fn fit(p: &Rp3Params, data: &Dataset, opts: &FitOptions<'_>) -> Result<Self> {
        p.validate()?;
        let m = &data.interactions;
        let n = m.n_items();
        let deg_u: Vec<f64> = (0..m.n_users() as u32)
            .map(|u| m.user_len(u) as f64)
            .collect();
        let deg_i: Vec<f64> = (0..n as u32).map(|i| m.item_len(i) as f64).collect();
        let done = std::sync::atomic::AtomicU64::new(0);
        let lists: Vec<Vec<(u32, f32)>> =
            (0..n as u32)
                .into_par_iter()
                .map_init(
                    || (vec![0f64; n], Vec::<u32>::new(), Vec::<(u32, f32)>::new()),
                    |(acc, touched, buf), i| {
                        let w1 = (1.0 / deg_i[i as usize]).powf(p.alpha);
                        for &u in m.item_users(i) {
                            let w = w1 * (1.0 / deg_u[u as usize]).powf(p.alpha);
                            for &j in m.user_items(u) {
                                if acc[j as usize] == 0.0 {
                                    touched.push(j);
                                }
                                acc[j as usize] += w;
                            }
                        }
                        buf.clear();
                        buf.extend(touched.iter().filter(|&&j| j != i).map(|&j| {
                            (j, (acc[j as usize] / deg_i[j as usize].powf(p.beta)) as f32)
                        }));
                        for &j in touched.iter() {
                            acc[j as usize] = 0.0;
                        }
                        touched.clear();
                        let l = crate::neighbours::best_pairs(buf, p.max_neighbours);
                        let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                        if d.is_multiple_of(4096) || d == n as u64 {
                            opts.report("items", d, n as u64, None);
                        }
                        l
                    },
                )
                .collect();
        let graph = NeighbourLists::from_lists(lists);
        let histories = (0..m.n_users() as u32)
            .map(|u| m.user_items(u).to_vec())
            .collect();
        Ok(Rp3 {
            params: p.clone(),
            graph,
            histories,
        })
    }

    fn neighbours(&self, i: u32) -> (&[u32], &[f32]) {
        self.graph.of(i)
    }
}

impl Recommender for Rp3 {
    fn n_items(&self) -> usize {
        self.graph.len()
    }

    fn score(&self, q: &Query<'_>, out: &mut [f32]) -> Result<()> {
        out.iter_mut().for_each(|o| *o = 0.0);
        let owned: Vec<u32>;
        let hist: &[u32] = if !q.history.is_empty() {
            owned = q.history.iter().map(|h| h.0).collect();
            &owned
        } else {
            q.user
                .and_then(|u| self.histories.get(u as usize))
                .map_or(&[], Vec::as_slice)
        };
        for &j in hist {
            if j as usize >= out.len() {
                return Err(Error::param(
                    "history",
                    format!("item index {j} is outside the catalogue"),
                ));
            }
            let (nb, w) = self.neighbours(j);
            for (&i, &x) in nb.iter().zip(w) {
                out[i as usize] += x;
            }
        }
        Ok(())
    }

    fn as_similar_items(&self) -> Option<&dyn SimilarItems> {
        Some(self)
    }
}

impl SimilarItems for Rp3 {
    fn similar_items(&self, item: u32, k: usize) -> Result<Vec<Scored>> {
        self.graph.similar(item, k)
    }
}

impl_model!(Rp3);

impl crate::spec::Kind for Rp3 {
    const NAME: &'static str = "rp3beta";
    const SUMMARY: &'static str = "RP3β: random-walk item-item model with popularity penalty.";
    const RENAMED: &'static [(&'static str, &'static str)] = &[("top_k", "max_neighbours")];
    type Params = Rp3Params;
    type Fitted = Rp3;

    fn validate(p: &Rp3Params) -> Result<()> {
        p.validate()
    }

    fn footprint(p: &Rp3Params, shape: &crate::spec::Shape) -> crate::spec::Footprint {
        crate::spec::Footprint::neighbours(shape, shape.items, p.max_neighbours, "max_neighbours")
    }
    fn capabilities(_: &Rp3Params) -> crate::spec::Capabilities {
        use crate::spec::Capabilities;
        Capabilities {
            ranks: true,
            similar_items: true,
            ..Default::default()
        }
    }

    fn fit(p: &Rp3Params, data: &Dataset, opts: &FitOptions<'_>) -> Result<Rp3> {
        Rp3::fit(p, data, opts)
    }

    fn restore(p: &Rp3Params, state: &[u8], shape: &Shape) -> Result<Rp3> {
        crate::spec::restore_state(p, state, shape, |m: &Rp3| &m.params)
    }

    fn examples() -> Vec<Rp3Params> {
        vec![Rp3Params::default()]
    }
}

impl CheckState for Rp3 {
    fn check_state(&self, shape: &Shape) -> std::result::Result<(), String> {
        self.graph.check(shape.items, false)?;
        check::len("the histories", self.histories.len(), shape.users)?;
        for h in &self.histories {
            check::below("a history", h, shape.items)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reco_core::loaders::{DatasetBuilder, LoadOptions};

    #[test]
    fn walk_weights_by_hand() {
        // Users {a, b}, {a, c}, {b}. From a: deg(a) = 2; via user 0 (deg 2) to b: 1/2 · 1/2;
        // via user 1 (deg 2) to c: 1/4. β = 1: b divided by deg(b) = 2 → 1/8; c by 1 → 1/4.
        let mut bd = DatasetBuilder::new(false);
        for (u, i) in [("0", "a"), ("0", "b"), ("1", "a"), ("1", "c"), ("2", "b")] {
            let (u, i) = (bd.users.get_or_insert(u), bd.items.get_or_insert(i));
            bd.triplets.push(u, i, 1.0, None);
        }
        let ds = bd.finish("t", &LoadOptions::default()).unwrap();
        let m = Rp3::fit(
            &Rp3Params {
                alpha: 1.0,
                beta: 1.0,
                max_neighbours: 10,
            },
            &ds,
            &FitOptions::default(),
        )
        .unwrap();
        let s = m.similar_items(0, 5).unwrap();
        assert_eq!(
            s,
            vec![
                Scored {
                    item: 2,
                    score: 0.25
                },
                Scored {
                    item: 1,
                    score: 0.125
                }
            ]
        );
    }
}
