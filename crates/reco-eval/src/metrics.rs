//! Metric definitions. Formulas and conventions are in `docs/metrics.md`; in short:
//!
//! - A user is evaluated when they have at least one relevant test item; others are skipped,
//!   not counted as zero.
//! - Ranked lists break score ties by ascending item index (see `reco_core::topk`).
//! - precision@k divides by k even when fewer than k items were recommended; recall@k divides
//!   by the number of relevant items |R|; IDCG@k and the AP@k normaliser use min(|R|, k).
//! - Graded NDCG uses the gain itself (linear), binary NDCG a gain of 1.

/// Relevant test items of one user with their gains (> 0), sorted by item.
#[derive(Clone, Debug, Default)]
pub struct Relevant {
    items: Vec<u32>,
    gains: Vec<f64>,
}

impl Relevant {
    /// Builds from `(item, gain)` pairs; pairs with gain ≤ 0 are not relevant and are dropped.
    pub fn new(mut pairs: Vec<(u32, f64)>) -> Self {
        pairs.retain(|p| p.1 > 0.0);
        pairs.sort_by_key(|p| p.0);
        pairs.dedup_by_key(|p| p.0);
        Relevant {
            items: pairs.iter().map(|p| p.0).collect(),
            gains: pairs.iter().map(|p| p.1).collect(),
        }
    }

    /// Number of relevant items |R|.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when nothing is relevant (the user is then not evaluated).
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Gain of `item`, 0 when not relevant.
    pub fn gain(&self, item: u32) -> f64 {
        self.items
            .binary_search(&item)
            .map_or(0.0, |k| self.gains[k])
    }

    /// Relevant items, ascending.
    pub fn items(&self) -> &[u32] {
        &self.items
    }
}

/// Top-k accuracy of one ranked list.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AtK {
    /// hits / k.
    pub precision: f64,
    /// hits / |R|.
    pub recall: f64,
    /// Harmonic mean of precision and recall (0 when both are 0).
    pub f1: f64,
    /// 1 when at least one hit.
    pub hit_rate: f64,
    /// 1 / rank of the first hit, 0 without a hit.
    pub mrr: f64,
    /// Average precision at k, normalised by min(|R|, k).
    pub map: f64,
    /// Binary-gain NDCG.
    pub ndcg: f64,
    /// Graded (linear gain) NDCG.
    pub ndcg_graded: f64,
}

impl AtK {
    /// Names of the fields, in the order of [`AtK::values`].
    pub const NAMES: [&'static str; 8] = [
        "precision",
        "recall",
        "f1",
        "hit_rate",
        "mrr",
        "map",
        "ndcg",
        "ndcg_graded",
    ];

    /// Field values in the order of [`AtK::NAMES`].
    pub fn values(&self) -> [f64; 8] {
        [
            self.precision,
            self.recall,
            self.f1,
            self.hit_rate,
            self.mrr,
            self.map,
            self.ndcg,
            self.ndcg_graded,
        ]
    }
}

fn discount(rank: usize) -> f64 {
    1.0 / ((rank + 1) as f64).log2()
}

/// Metrics of `ranked` (best first) at cutoff `k` against `rel`. `rel` must not be empty.
pub fn at_k(ranked: &[u32], rel: &Relevant, k: usize) -> AtK {
    let list = &ranked[..ranked.len().min(k)];
    let (mut hits, mut dcg, mut dcg_graded, mut ap, mut rr) = (0usize, 0.0, 0.0, 0.0, 0.0);
    for (r, &item) in list.iter().enumerate() {
        let g = rel.gain(item);
        if g > 0.0 {
            hits += 1;
            let rank = r + 1;
            dcg += discount(rank);
            dcg_graded += g * discount(rank);
            ap += hits as f64 / rank as f64;
            if rr == 0.0 {
                rr = 1.0 / rank as f64;
            }
        }
    }
    let n_ideal = rel.len().min(k);
    let idcg: f64 = (1..=n_ideal).map(discount).sum();
    let mut gains = rel.gains.clone();
    gains.sort_by(|a, b| b.total_cmp(a));
    let idcg_graded: f64 = gains
        .iter()
        .take(n_ideal)
        .enumerate()
        .map(|(r, g)| g * discount(r + 1))
        .sum();
    let precision = hits as f64 / k as f64;
    let recall = hits as f64 / rel.len() as f64;
    AtK {
        precision,
        recall,
        f1: if precision + recall > 0.0 {
            2.0 * precision * recall / (precision + recall)
        } else {
            0.0
        },
        hit_rate: (hits > 0) as u8 as f64,
        mrr: rr,
        map: if n_ideal > 0 {
            ap / n_ideal as f64
        } else {
            0.0
        },
        ndcg: if idcg > 0.0 { dcg / idcg } else { 0.0 },
        ndcg_graded: if idcg_graded > 0.0 {
            dcg_graded / idcg_graded
        } else {
            0.0
        },
    }
}

/// Area under the ROC curve of one user's full scores: the probability that a relevant item
/// outscores a non-relevant candidate, ties counting one half. Candidates are all items not in
/// `exclude` (sorted; the training items) and, when given, in `allow`. `None` when there is no
/// relevant or no non-relevant candidate.
pub fn auc(scores: &[f32], rel: &Relevant, exclude: &[u32], allow: Option<&[u32]>) -> Option<f64> {
    let key = |s: f32| if s.is_nan() { f32::NEG_INFINITY } else { s };
    let mut pos: Vec<f32> = rel
        .items()
        .iter()
        .filter(|&&i| exclude.binary_search(&i).is_err())
        .map(|&i| key(scores[i as usize]))
        .collect();
    if pos.is_empty() {
        return None;
    }
    pos.sort_by(|a, b| a.total_cmp(b));
    let (mut wins, mut n_neg) = (0.0f64, 0usize);
    let mut consider = |i: u32| {
        if rel.gain(i) > 0.0 || exclude.binary_search(&i).is_ok() {
            return;
        }
        let s = key(scores[i as usize]);
        // Positives above s, and ties with s, by binary search in the sorted positive scores.
        let below_or_eq = pos.partition_point(|&p| p <= s);
        let below = pos.partition_point(|&p| p < s);
        wins += (pos.len() - below_or_eq) as f64 + 0.5 * (below_or_eq - below) as f64;
        n_neg += 1;
    };
    match allow {
        Some(a) => a.iter().for_each(|&i| consider(i)),
        None => (0..scores.len() as u32).for_each(consider),
    }
    (n_neg > 0).then(|| wins / (n_neg as f64 * pos.len() as f64))
}

/// Gini coefficient of non-negative exposure counts: 0 when every item is shown equally, →1
/// when one item takes all exposure.
pub fn gini(counts: &[f64]) -> f64 {
    let n = counts.len();
    let total: f64 = counts.iter().sum();
    if n == 0 || total <= 0.0 {
        return 0.0;
    }
    let mut c = counts.to_vec();
    c.sort_by(|a, b| a.total_cmp(b));
    let weighted: f64 = c
        .iter()
        .enumerate()
        .map(|(i, &x)| (2.0 * (i + 1) as f64 - n as f64 - 1.0) * x)
        .sum();
    weighted / (n as f64 * total)
}

/// 1 − mean overlap between pairs of users' lists, with overlap |A ∩ B| / k, computed exactly
/// from how many lists hold each item: Σ_pairs |A ∩ B| = Σ_i C(c_i, 2).
pub fn personalization(item_list_counts: &[f64], n_lists: usize, k: usize) -> f64 {
    if n_lists < 2 || k == 0 {
        return 0.0;
    }
    let shared: f64 = item_list_counts.iter().map(|&c| c * (c - 1.0) / 2.0).sum();
    let pairs = n_lists as f64 * (n_lists as f64 - 1.0) / 2.0;
    1.0 - shared / (pairs * k as f64)
}

/// Mean pairwise dissimilarity (1 − cosine) of a list under binary category vectors; `None`
/// for lists shorter than 2. `cats(i)` returns the sorted category indices of item `i`.
pub fn intra_list_diversity<'a>(list: &[u32], cats: impl Fn(u32) -> &'a [u32]) -> Option<f64> {
    if list.len() < 2 {
        return None;
    }
    let (mut sum, mut pairs) = (0.0, 0usize);
    for a in 0..list.len() {
        for b in a + 1..list.len() {
            let (x, y) = (cats(list[a]), cats(list[b]));
            let cos = if x.is_empty() || y.is_empty() {
                0.0
            } else {
                let common = x.iter().filter(|c| y.binary_search(c).is_ok()).count();
                common as f64 / ((x.len() * y.len()) as f64).sqrt()
            };
            sum += 1.0 - cos;
            pairs += 1;
        }
    }
    Some(sum / pairs as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-12, "{a} != {b}");
    }

    #[test]
    fn hand_computed_list() {
        // relevant {1 (gain 3), 5 (gain 1)}; ranked [1, 9, 5]
        let rel = Relevant::new(vec![(5, 1.0), (1, 3.0), (7, 0.0)]);
        assert_eq!(rel.len(), 2, "gain 0 is not relevant");
        let m = at_k(&[1, 9, 5], &rel, 3);
        close(m.precision, 2.0 / 3.0);
        close(m.recall, 1.0);
        close(m.f1, 0.8);
        close(m.hit_rate, 1.0);
        close(m.mrr, 1.0);
        close(m.map, (1.0 + 2.0 / 3.0) / 2.0);
        close(m.ndcg, (1.0 + 0.5) / (1.0 + 1.0 / 3f64.log2()));
        close(m.ndcg_graded, (3.0 + 1.0 * 0.5) / (3.0 + 1.0 / 3f64.log2()));
        // k = 1 only sees the first item; IDCG uses min(|R|, k) = 1.
        let m = at_k(&[9, 1, 5], &rel, 1);
        close(m.precision, 0.0);
        close(m.ndcg, 0.0);
        let m = at_k(&[9, 1], &rel, 2);
        close(m.mrr, 0.5);
        close(m.map, 0.5 / 2.0);
        close(m.precision, 0.5);
        // Short list: precision still divides by k.
        close(at_k(&[1], &rel, 10).precision, 0.1);
    }

    #[test]
    fn auc_by_hand() {
        // scores: item0 0.9 (pos), item1 0.5, item2 0.5 (pos), item3 0.1, item4 excluded
        let s = [0.9, 0.5, 0.5, 0.1, 5.0];
        let rel = Relevant::new(vec![(0, 1.0), (2, 1.0)]);
        // negatives 1, 3. pairs: (0,1) win, (0,3) win, (2,1) tie, (2,3) win → 3.5/4
        close(auc(&s, &rel, &[4], None).unwrap(), 3.5 / 4.0);
        close(auc(&s, &rel, &[], Some(&[0, 1, 2])).unwrap(), 1.5 / 2.0);
        assert!(auc(&s, &rel, &[1, 3, 4], None).is_none(), "no negatives");
    }

    #[test]
    fn beyond_accuracy_by_hand() {
        close(gini(&[1.0, 1.0, 1.0]), 0.0);
        close(gini(&[0.0, 0.0, 3.0]), 2.0 / 3.0);
        // Two identical lists of 2: overlap 1 → personalization 0; disjoint → 1.
        close(personalization(&[2.0, 2.0, 0.0, 0.0], 2, 2), 0.0);
        close(personalization(&[1.0, 1.0, 1.0, 1.0], 2, 2), 1.0);
        let cats: Vec<Vec<u32>> = vec![vec![0], vec![0], vec![1], vec![0, 1]];
        // pairs: (0,1) cos 1 → 0; (0,2) 0 → 1; (1,2) → 1 ; mean 2/3
        close(
            intra_list_diversity(&[0, 1, 2], |i| &cats[i as usize]).unwrap(),
            2.0 / 3.0,
        );
        close(
            intra_list_diversity(&[0, 3], |i| &cats[i as usize]).unwrap(),
            1.0 - 1.0 / 2f64.sqrt(),
        );
    }

    proptest! {
        #[test]
        fn bounds_and_invariances(ranked in prop::collection::vec(0u32..30, 0..15), rel in prop::collection::btree_map(0u32..30, 1u32..5, 1..8), k in 1usize..20) {
            let mut ranked = ranked; ranked.dedup();
            let mut seen = std::collections::HashSet::new();
            ranked.retain(|x| seen.insert(*x));
            let pairs: Vec<(u32, f64)> = rel.iter().map(|(&i, &g)| (i, g as f64)).collect();
            let r = Relevant::new(pairs.clone());
            let m = at_k(&ranked, &r, k);
            for v in m.values() { prop_assert!((0.0..=1.0 + 1e-12).contains(&v)); }
            prop_assert!(m.ndcg <= 1.0 + 1e-12 && m.map <= m.hit_rate + 1e-12);
            // The order in which relevance is given does not matter.
            let mut rev = pairs.clone(); rev.reverse();
            prop_assert_eq!(at_k(&ranked, &Relevant::new(rev), k), m);
            // Putting every relevant item first gives NDCG 1 and recall min(|R|,k)/|R|.
            let ideal: Vec<u32> = { let mut v: Vec<(u32, f64)> = pairs.clone(); v.sort_by(|a, b| b.1.total_cmp(&a.1)); v.iter().map(|p| p.0).collect() };
            let best = at_k(&ideal, &r, k);
            prop_assert!((best.ndcg - 1.0).abs() < 1e-9 && (best.ndcg_graded - 1.0).abs() < 1e-9);
            prop_assert!((best.recall - r.len().min(k) as f64 / r.len() as f64).abs() < 1e-12);
        }

        #[test]
        fn auc_is_one_minus_reversed(scores in prop::collection::vec(-5i32..5, 4..30), n_pos in 1usize..3) {
            let s: Vec<f32> = scores.iter().map(|&x| x as f32).collect();
            let neg: Vec<f32> = s.iter().map(|x| -x).collect();
            let rel = Relevant::new((0..n_pos as u32).map(|i| (i, 1.0)).collect());
            let (a, b) = (auc(&s, &rel, &[], None).unwrap(), auc(&neg, &rel, &[], None).unwrap());
            prop_assert!((a + b - 1.0).abs() < 1e-12);
            prop_assert!((0.0..=1.0).contains(&a));
        }
    }
}
