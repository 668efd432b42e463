//! One explanation for any model: the model's own [`Explain`] when it has one, otherwise
//! reasons derived from its capabilities, plus the item's categories the user's history
//! favours.

use reco_core::explain::{Explain, Explanation, Reason};
use reco_core::model::{Query, Recommender};
use reco_core::{Dataset, Result};

use crate::blend::{standardise, Blend, Switch};
use crate::pipeline::Pipeline;

/// Why `model` recommends `item` to `query` (a known user of `data`, or an anonymous
/// history): up to `k` reasons of each kind, strongest first. See [`explain_with`].
pub fn explain(
    model: &dyn Recommender,
    data: &Dataset,
    query: &Query<'_>,
    item: u32,
    k: usize,
) -> Result<Explanation> {
    let owned: Vec<(u32, f32)>;
    let history: &[(u32, f32)] = match (query.user, query.history.is_empty()) {
        (Some(u), true) if (u as usize) < data.n_users() => {
            let m = &data.interactions;
            owned = m
                .user_items(u)
                .iter()
                .copied()
                .zip(m.user_values(u).iter().copied())
                .collect();
            &owned
        }
        _ => query.history,
    };
    let primary = data
        .item_features
        .as_deref()
        .and_then(|t| t.primary_category());
    let labels = |i: u32| -> Vec<String> {
        match primary {
            Some(f) if (i as usize) + 1 < f.ptr.len() => {
                f.of(i).iter().map(|&c| f.vocab.id(c).to_string()).collect()
            }
            _ => Vec::new(),
        }
    };
    let field = primary.map_or("category", |f| f.name.as_str());
    explain_with(
        model,
        &Query {
            user: query.user,
            history,
        },
        item,
        k,
        field,
        &labels,
    )
}

/// Why `model` recommends `item` to `query`, whose `history` the caller has filled in;
/// `categories(i)` are item `i`'s category labels in `field`.
///
/// - The model's own decomposition when it has one (kNN, implicit ALS, content,
///   co-visitation, popularity, pipelines, blends, switches).
/// - Else, for embedding models, the history items whose vectors are closest to the item's
///   ("because you watched X"); for models with similar items, the history items the item is
///   most similar to.
/// - Always, the item's categories with the share of the user's history in each.
pub fn explain_with(
    model: &dyn Recommender,
    query: &Query<'_>,
    item: u32,
    k: usize,
    field: &str,
    categories: &dyn Fn(u32) -> Vec<String>,
) -> Result<Explanation> {
    if item as usize >= model.n_items() {
        return Err(reco_core::Error::param(
            "item",
            format!("item index {item} is outside the catalogue"),
        ));
    }
    let history = query.history;
    let mut reasons = match model.as_explain() {
        Some(e) => e.explain(query, item, k)?,
        None => from_capabilities(model, history, item, k)?,
    };
    let mut shared: Vec<Reason> = categories(item)
        .into_iter()
        .filter_map(|c| {
            let n = history
                .iter()
                .filter(|h| categories(h.0).contains(&c))
                .count();
            (n > 0).then(|| Reason::Feature {
                field: field.to_string(),
                value: c,
                weight: n as f32 / history.len() as f32,
            })
        })
        .collect();
    shared.sort_by(|a, b| match (a, b) {
        (Reason::Feature { weight: x, .. }, Reason::Feature { weight: y, .. }) => y.total_cmp(x),
        _ => std::cmp::Ordering::Equal,
    });
    shared.truncate(k);
    reasons.extend(shared);
    Ok(Explanation { item, reasons })
}

fn from_capabilities(
    model: &dyn Recommender,
    history: &[(u32, f32)],
    item: u32,
    k: usize,
) -> Result<Vec<Reason>> {
    let mut out: Vec<(u32, f32)> = Vec::new();
    if let Some(e) = model.as_embeddings() {
        if let Some(v) = e.item_vector(item) {
            out = history
                .iter()
                .filter(|h| h.0 != item)
                .filter_map(|&(j, _)| {
                    e.item_vector(j)
                        .map(|w| (j, crate::rerank::vector_cosine(v, w) as f32))
                })
                .collect();
        }
    } else if let Some(s) = model.as_similar_items() {
        let near = s.similar_items(item, 200)?;
        out = history
            .iter()
            .filter_map(|&(j, _)| near.iter().find(|n| n.item == j).map(|n| (j, n.score)))
            .collect();
    }
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    out.truncate(k);
    Ok(out
        .into_iter()
        .filter(|p| p.1 > 0.0)
        .map(|(item, weight)| Reason::Item { item, weight })
        .collect())
}

impl Explain for Pipeline {
    /// The sources that proposed the item, then the ranker's largest feature contributions.
    fn explain(&self, q: &Query<'_>, item: u32, k: usize) -> Result<Vec<Reason>> {
        let Some(t) = self.trace(q, item)? else {
            return Ok(Vec::new());
        };
        let mut out: Vec<Reason> = t
            .sources
            .into_iter()
            .map(|(source, rank, _)| Reason::Source { source, rank })
            .collect();
        out.extend(
            t.contributions
                .into_iter()
                .filter(|c| c.1 > 0.0)
                .take(k)
                .map(|(name, w)| Reason::Signal {
                    name,
                    weight: w as f32,
                }),
        );
        Ok(out)
    }
}

impl Explain for Blend {
    /// Each model's weighted, standardised score of the item, then the strongest model's own
    /// reasons.
    fn explain(&self, q: &Query<'_>, item: u32, k: usize) -> Result<Vec<Reason>> {
        let mut parts = Vec::new();
        let mut buf = vec![0f32; self.n_items()];
        for (m, (model, &w)) in self.models.iter().zip(&self.weights).enumerate() {
            if w == 0.0 {
                continue;
            }
            model.score(q, &mut buf)?;
            standardise(&mut buf);
            parts.push((m, (w as f32) * buf[item as usize]));
        }
        parts.sort_by(|a, b| b.1.total_cmp(&a.1));
        let names: Vec<&str> = self.spec.models.iter().map(|m| m.name.as_str()).collect();
        let mut out: Vec<Reason> = parts
            .iter()
            .map(|&(m, w)| Reason::Signal {
                name: format!("model:{}", names.get(m).copied().unwrap_or("?")),
                weight: w,
            })
            .collect();
        if let Some(&(m, _)) = parts.first() {
            if let Some(e) = self.models[m].as_explain() {
                out.extend(e.explain(q, item, k)?);
            }
        }
        Ok(out)
    }
}

impl Explain for Switch {
    /// The reasons of whichever model answered.
    fn explain(&self, q: &Query<'_>, item: u32, k: usize) -> Result<Vec<Reason>> {
        let cold_item = self
            .item_counts
            .get(item as usize)
            .is_some_and(|&c| (c as usize) < self.spec.min_item);
        let (name, model) = if self.is_cold_user(q) || cold_item {
            ("cold", &self.cold)
        } else {
            ("warm", &self.warm)
        };
        let mut out = vec![Reason::Signal {
            name: format!("switch:{name}"),
            weight: 1.0,
        }];
        if let Some(e) = model.as_explain() {
            out.extend(e.explain(q, item, k)?);
        }
        Ok(out)
    }
}
