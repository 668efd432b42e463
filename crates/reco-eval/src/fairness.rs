//! Fairness and popularity-bias audit: who gets exposure, who gets accuracy.
//!
//! - Exposure by item-popularity group: the catalogue split into head (the most popular items
//!   holding `head` of the training interactions), tail (the least popular holding `tail`) and
//!   the middle; for each, its share of items, of training interactions, of recommendation
//!   slots and of position-discounted exposure (1 / log₂(rank + 1)).
//! - Popularity lift (Abdollahpouri et al. 2019): for each user, the mean popularity of the
//!   recommended items over the mean popularity of the user's history, minus one; averaged.
//! - Accuracy by user group: NDCG@k and recall@k per value of a user field (categorical
//!   values, or quartile bands of a numeric field such as age), with intervals.
//! - [`reweight_by_popularity`]: interaction weights ∝ count(item)^−α, for training models that
//!   read values as confidences or sample weights.

use rayon::prelude::*;
use reco_core::model::{Query, Recommender};
use reco_core::split::Fold;
use reco_core::topk::top_k;
use reco_core::{Dataset, Result};
use serde::{Deserialize, Serialize};

use crate::evaluator::relevance;
use crate::metrics::at_k;
use crate::stats::Stat;

/// Exposure of one popularity group.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GroupExposure {
    /// `head`, `mid` or `tail`.
    pub group: String,
    /// Share of catalogue items.
    pub items: f64,
    /// Share of training interactions.
    pub interactions: f64,
    /// Share of recommendation slots.
    pub slots: f64,
    /// Share of position-discounted exposure.
    pub exposure: f64,
}

/// Accuracy of one user group.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct GroupAccuracy {
    /// Field.
    pub field: String,
    /// Value or band.
    pub group: String,
    /// NDCG@k.
    pub ndcg: Stat,
    /// Recall@k.
    pub recall: Stat,
}

/// The audit of one model on one fold.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Audit {
    /// Cutoff.
    pub k: usize,
    /// Users audited.
    pub users: usize,
    /// Exposure by popularity group.
    pub exposure: Vec<GroupExposure>,
    /// Mean popularity lift (0: the lists are as popular as the users' histories).
    pub popularity_lift: f64,
    /// Share of recommended items that are in the tail group (long-tail coverage).
    pub tail_share: f64,
    /// Accuracy per user group, for each field asked for.
    pub by_group: Vec<GroupAccuracy>,
}

/// Popularity group of every item: 0 head, 1 mid, 2 tail, by cumulative share of
/// interactions (`head` of them in the head group, `tail` in the tail group).
/// Counts may be any non-negative numbers (the server's decayed popularities among them).
pub fn popularity_groups<T: Copy + Into<f64>>(counts: &[T], head: f64, tail: f64) -> Vec<u8> {
    let counts: Vec<f64> = counts.iter().map(|&c| c.into()).collect();
    let total: f64 = counts.iter().sum();
    let mut order: Vec<usize> = (0..counts.len()).collect();
    order.sort_by(|&a, &b| counts[b].total_cmp(&counts[a]).then(a.cmp(&b)));
    let mut groups = vec![1u8; counts.len()];
    let mut acc = 0.0;
    for &i in &order {
        let before = acc;
        acc += counts[i];
        groups[i] = if total == 0.0 || before < head * total {
            0
        } else if before >= (1.0 - tail) * total {
            2
        } else {
            1
        };
    }
    groups
}

/// The user groups of a field: category labels, or quartile bands of a numeric field.
pub fn user_groups(train: &Dataset, field: &str) -> Result<Vec<Option<String>>> {
    let table = train
        .user_features
        .as_deref()
        .ok_or_else(|| reco_core::Error::param("by", "the data has no user features"))?;
    let n = train.n_users();
    if let Some(f) = table.categorical(field) {
        // Numbers stored as tokens (MovieLens-100K's age) are banded like a numeric field.
        let numbers: Option<Vec<f64>> = (0..f.vocab.len() as u32)
            .map(|v| f.vocab.id(v).trim().parse::<f64>().ok())
            .collect();
        if let Some(numbers) = numbers.filter(|v| v.len() > 8) {
            let values: Vec<f32> = (0..n as u32)
                .map(|u| {
                    ((u as usize) < table.len)
                        .then(|| f.of(u).first().map(|&v| numbers[v as usize] as f32))
                        .flatten()
                        .unwrap_or(f32::NAN)
                })
                .collect();
            return Ok(bands(&values, n));
        }
        return Ok((0..n as u32)
            .map(|u| {
                ((u as usize) < table.len)
                    .then(|| f.of(u).first().map(|&v| f.vocab.id(v).to_string()))
                    .flatten()
            })
            .collect());
    }
    let f = table
        .numeric
        .iter()
        .find(|f| f.name == field)
        .ok_or_else(|| reco_core::Error::param("by", format!("users have no field {field:?}")))?;
    Ok(bands(&f.values, n))
}

/// Quartile bands of a numeric field, labelled with their bounds.
fn bands(values: &[f32], n: usize) -> Vec<Option<String>> {
    let mut v: Vec<f32> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(|a, b| a.total_cmp(b));
    if v.is_empty() {
        return vec![None; n];
    }
    let q = |p: f64| v[((v.len() - 1) as f64 * p) as usize];
    let cuts = [q(0.25), q(0.5), q(0.75)];
    (0..n)
        .map(|u| {
            let x = *values.get(u)?;
            if !x.is_finite() {
                return None;
            }
            let b = cuts.iter().filter(|&&c| x > c).count();
            let lo = if b == 0 { v[0] } else { cuts[b - 1] };
            let hi = if b == 3 { v[v.len() - 1] } else { cuts[b] };
            Some(format!("q{} ({lo}–{hi}]", b + 1))
        })
        .collect()
}

/// Audits `model` (fitted on `fold.train`) on the fold's test users.
pub fn audit(model: &dyn Recommender, fold: &Fold, k: usize, by: &[String]) -> Result<Audit> {
    let train = &fold.train;
    let m = &train.interactions;
    let counts = m.item_counts();
    let groups = popularity_groups(&counts, 0.2, 0.2);
    let rel = relevance(fold, None);
    let lists: Vec<Vec<u32>> = rel
        .par_iter()
        .map_init(
            || vec![0f32; train.n_items()],
            |buf, (u, _)| -> Result<Vec<u32>> {
                model.score(&Query::user(*u), buf)?;
                let allow = fold.candidates.as_deref();
                let seen = m.user_items(*u);
                Ok(match allow {
                    Some(a) => top_k(buf, k, seen, |i| a.binary_search(&i).is_err()),
                    None => top_k(buf, k, seen, |_| false),
                }
                .iter()
                .map(|s| s.item)
                .collect())
            },
        )
        .collect::<Result<_>>()?;
    let total_items = counts.len().max(1) as f64;
    let total_inter: f64 = counts.iter().map(|&c| c as f64).sum::<f64>().max(1.0);
    let mut slots = [0f64; 3];
    let mut expo = [0f64; 3];
    let mut lifts = Vec::new();
    for ((u, _), list) in rel.iter().zip(&lists) {
        for (r, &i) in list.iter().enumerate() {
            let g = groups[i as usize] as usize;
            slots[g] += 1.0;
            expo[g] += 1.0 / ((r + 2) as f64).log2();
        }
        let h = m.user_items(*u);
        if !h.is_empty() && !list.is_empty() {
            let ph = h.iter().map(|&i| counts[i as usize] as f64).sum::<f64>() / h.len() as f64;
            let pr =
                list.iter().map(|&i| counts[i as usize] as f64).sum::<f64>() / list.len() as f64;
            if ph > 0.0 {
                lifts.push(pr / ph - 1.0);
            }
        }
    }
    let (ns, ne) = (
        slots.iter().sum::<f64>().max(1.0),
        expo.iter().sum::<f64>().max(1e-12),
    );
    let exposure = ["head", "mid", "tail"]
        .iter()
        .enumerate()
        .map(|(g, name)| GroupExposure {
            group: name.to_string(),
            items: groups.iter().filter(|&&x| x as usize == g).count() as f64 / total_items,
            interactions: counts
                .iter()
                .zip(&groups)
                .filter(|(_, &x)| x as usize == g)
                .map(|(&c, _)| c as f64)
                .sum::<f64>()
                / total_inter,
            slots: slots[g] / ns,
            exposure: expo[g] / ne,
        })
        .collect();
    let mut by_group = Vec::new();
    for field in by {
        let ug = user_groups(train, field)?;
        let mut names: Vec<String> = ug.iter().flatten().cloned().collect();
        names.sort();
        names.dedup();
        for name in names {
            let (mut nd, mut rc) = (Vec::new(), Vec::new());
            for ((u, r), list) in rel.iter().zip(&lists) {
                if ug.get(*u as usize).and_then(|g| g.as_deref()) == Some(name.as_str()) {
                    let a = at_k(list, r, k);
                    nd.push(a.ndcg);
                    rc.push(a.recall);
                }
            }
            if !nd.is_empty() {
                by_group.push(GroupAccuracy {
                    field: field.clone(),
                    group: name,
                    ndcg: Stat::of(&nd),
                    recall: Stat::of(&rc),
                });
            }
        }
    }
    let recommended: usize = lists.iter().map(Vec::len).sum();
    Ok(Audit {
        k,
        users: rel.len(),
        exposure,
        popularity_lift: if lifts.is_empty() {
            0.0
        } else {
            lifts.iter().sum::<f64>() / lifts.len() as f64
        },
        tail_share: slots[2] / recommended.max(1) as f64,
        by_group,
    })
}

/// A copy of `data` whose interaction values are multiplied by `(count(item) / mean count)^−α`
/// (inverse-propensity-style weights against popularity bias): α = 0 changes nothing, α = 1
/// gives every item the same total weight. Models that read values as confidences (implicit
/// ALS) or sample weights (popularity by sum, co-visitation) then train on the re-weighted data.
pub fn reweight_by_popularity(data: &Dataset, alpha: f64) -> Result<Dataset> {
    if !(0.0..=2.0).contains(&alpha) {
        return Err(reco_core::Error::param(
            "reweight",
            format!("α = {alpha} is outside [0, 2]"),
        ));
    }
    let m = &data.interactions;
    let counts = m.item_counts();
    let nonzero: Vec<f64> = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| c as f64)
        .collect();
    let mean = nonzero.iter().sum::<f64>() / nonzero.len().max(1) as f64;
    let mut values = Vec::with_capacity(m.nnz());
    for u in 0..m.n_users() as u32 {
        for (&i, &v) in m.user_items(u).iter().zip(m.user_values(u)) {
            let w = (counts[i as usize] as f64 / mean).powf(-alpha);
            values.push((v as f64 * w) as f32);
        }
    }
    Ok(data.with_interactions(m.with_values(&values)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn popularity_groups_by_cumulative_share() {
        // 10 interactions: item 0 holds 5 (head: the first 20% are reached inside it),
        // items 1..3 hold 2+2+1, item 4 none.
        let g = popularity_groups(&[5, 2, 2, 1, 0], 0.2, 0.2);
        assert_eq!(g, vec![0, 1, 1, 2, 2]);
    }
}
