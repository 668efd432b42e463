//! The candidate sources of a pipeline: each proposes up to its budget of unseen items.

use reco_core::model::{Filter, Query};
use reco_core::topk::Scored;
use reco_core::Result;
use rustc_hash::FxHashMap;

use crate::pipeline::Pipeline;
use crate::spec::SourceSpec;

/// Whether `item` may be proposed.
pub(crate) fn allowed(item: u32, seen: &[u32], allow: Option<&[u32]>) -> bool {
    seen.binary_search(&item).is_err() && allow.is_none_or(|a| a.binary_search(&item).is_ok())
}

/// The shares of each category value in a history.
pub(crate) fn category_shares(
    cats: &crate::catalog::Categories,
    history: &[u32],
) -> FxHashMap<u32, f64> {
    let mut shares: FxHashMap<u32, f64> = FxHashMap::default();
    let mut total = 0.0;
    for &i in history {
        for &c in cats.of(i) {
            *shares.entry(c).or_default() += 1.0;
            total += 1.0;
        }
    }
    if total > 0.0 {
        shares.values_mut().for_each(|v| *v /= total);
    }
    shares
}

impl Pipeline {
    /// The proposals of source `s` for `query`, best first.
    pub(crate) fn source(
        &self,
        s: usize,
        source: &SourceSpec,
        query: &Query<'_>,
        history: &[u32],
        seen: &[u32],
        allow: Option<&[u32]>,
    ) -> Result<Vec<Scored>> {
        let cat = &self.stage.catalog;
        let ok = |i: u32| allowed(i, seen, allow);
        let pop = |i: u32| (cat.counts[i as usize] as f32).ln_1p();
        Ok(match source {
            SourceSpec::Ann { budget, .. } => {
                let m = self
                    .stage
                    .model(self.refs.sources.get(s).copied().flatten())?;
                let (Some(e), Some(u), Some(index)) =
                    (m.as_embeddings(), query.user, &self.stage.indexes[s])
                else {
                    return Ok(Vec::new());
                };
                let Some(v) = e.user_vector(u) else {
                    return Ok(Vec::new());
                };
                index.get().search(
                    v,
                    *budget,
                    &Filter {
                        exclude: seen,
                        allow,
                    },
                )?
            }
            SourceSpec::Related {
                model,
                recent_items: last,
                per_item,
                budget,
            } => {
                let m = self
                    .stage
                    .model(self.refs.sources.get(s).copied().flatten())?;
                let sim = m.as_similar_items().ok_or_else(|| {
                    reco_core::Error::param(
                        "source",
                        format!("related source: model {model:?} cannot find similar items"),
                    )
                })?;
                let mut acc: FxHashMap<u32, f32> = FxHashMap::default();
                let mut recent: Vec<u32> = Vec::with_capacity(*last);
                for &i in history.iter().rev() {
                    if recent.len() == *last {
                        break;
                    }
                    if !recent.contains(&i) {
                        recent.push(i);
                    }
                }
                for &i in &recent {
                    // Ask for more than needed: seen items are dropped afterwards.
                    for n in sim
                        .similar_items(i, per_item + recent.len())?
                        .into_iter()
                        .filter(|n| ok(n.item))
                        .take(*per_item)
                    {
                        *acc.entry(n.item).or_default() += n.score;
                    }
                }
                let out: Vec<Scored> = acc
                    .into_iter()
                    .map(|(item, score)| Scored { item, score })
                    .collect();
                reco_core::topk::top_k_of(out, *budget)
            }
            SourceSpec::TopCategories {
                field,
                categories,
                budget,
            } => {
                let Some(c) = cat.categories(field.as_deref()) else {
                    return Ok(Vec::new());
                };
                let shares = category_shares(c, history);
                let mut top: Vec<(u32, f64)> = shares.into_iter().collect();
                top.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
                top.truncate(*categories);
                let total: f64 = top.iter().map(|t| t.1).sum();
                let mut out: Vec<Scored> = Vec::new();
                let mut taken: rustc_hash::FxHashSet<u32> = Default::default();
                for (v, share) in &top {
                    let quota = ((*budget as f64) * share / total).ceil() as usize;
                    let mut n = 0;
                    for &i in &c.charts[*v as usize] {
                        if n == quota {
                            break;
                        }
                        if ok(i) && taken.insert(i) {
                            out.push(Scored {
                                item: i,
                                score: *share as f32 * pop(i),
                            });
                            n += 1;
                        }
                    }
                }
                reco_core::topk::top_k_of(out, *budget)
            }
            SourceSpec::Popular { budget } => cat
                .by_popularity
                .iter()
                .copied()
                .filter(|&i| ok(i))
                .take(*budget)
                .map(|i| Scored {
                    item: i,
                    score: pop(i),
                })
                .collect(),
            SourceSpec::PopularInSegment { field, budget } => {
                let (Some(seg), Some(u)) = (cat.segments(field), query.user) else {
                    return Ok(Vec::new());
                };
                let u = u as usize;
                if u + 1 >= seg.ptr.len() {
                    return Ok(Vec::new());
                }
                let mut acc: FxHashMap<u32, u32> = FxHashMap::default();
                for &v in &seg.values[seg.ptr[u]..seg.ptr[u + 1]] {
                    for &(i, n) in &seg.charts[v as usize] {
                        if ok(i) {
                            *acc.entry(i).or_default() += n;
                        }
                    }
                }
                let out: Vec<Scored> = acc
                    .into_iter()
                    .map(|(item, n)| Scored {
                        item,
                        score: (n as f32).ln_1p(),
                    })
                    .collect();
                reco_core::topk::top_k_of(out, *budget)
            }
            SourceSpec::Model { budget, .. } => {
                let m = self
                    .stage
                    .model(self.refs.sources.get(s).copied().flatten())?;
                m.recommend(
                    query,
                    *budget,
                    &Filter {
                        exclude: seen,
                        allow,
                    },
                )?
            }
        })
    }
}
