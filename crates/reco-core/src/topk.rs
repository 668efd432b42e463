//! Deterministic top-k selection: higher score first, ties by ascending item index.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use serde::{Deserialize, Serialize};

/// An item with its score; higher is better.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scored {
    /// Item index.
    pub item: u32,
    /// Score (model-specific scale).
    pub score: f32,
}

/// Total order "a ranks before b": larger score, then smaller index; NaN ranks last.
pub fn ranks_before(a: &Scored, b: &Scored) -> bool {
    rank_cmp(a, b) == Ordering::Less
}

/// Comparator for sorting into rank order (best first).
pub fn rank_cmp(a: &Scored, b: &Scored) -> Ordering {
    let key = |s: &Scored| {
        if s.score.is_nan() {
            f32::NEG_INFINITY
        } else {
            s.score
        }
    };
    key(b)
        .partial_cmp(&key(a))
        .unwrap_or(Ordering::Equal)
        .then(a.item.cmp(&b.item))
}

struct Worst(Scored);
impl PartialEq for Worst {
    fn eq(&self, o: &Self) -> bool {
        rank_cmp(&self.0, &o.0) == Ordering::Equal
    }
}
impl Eq for Worst {}
impl PartialOrd for Worst {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Worst {
    // The heap's maximum is the worst-ranked kept item, so it is the one to evict.
    fn cmp(&self, o: &Self) -> Ordering {
        rank_cmp(&self.0, &o.0)
    }
}

/// The `k` best of `scores` (indexed by item), skipping items in `exclude` (sorted ascending)
/// and items for which `skip` is true, in rank order.
pub fn top_k(scores: &[f32], k: usize, exclude: &[u32], skip: impl Fn(u32) -> bool) -> Vec<Scored> {
    // k comes from users; more than the catalogue is the whole catalogue.
    let k = k.min(scores.len());
    if k == 0 {
        return Vec::new();
    }
    let mut heap: BinaryHeap<Worst> = BinaryHeap::with_capacity(k + 1);
    // Once k items are kept, a candidate must score strictly above the worst of them: items
    // come in ascending index, so an equal score ranks after it (and NaN never passes). This
    // one comparison turns away almost every item before the exclusion lookup.
    let mut bar: Option<f32> = None;
    for (i, &s) in scores.iter().enumerate() {
        if bar.is_some_and(|b| s.partial_cmp(&b) != Some(Ordering::Greater)) {
            continue;
        }
        let i = i as u32;
        if exclude.binary_search(&i).is_ok() || skip(i) {
            continue;
        }
        let c = Scored { item: i, score: s };
        if heap.len() < k {
            heap.push(Worst(c));
        } else if let Some(w) = heap.peek() {
            if ranks_before(&c, &w.0) {
                heap.pop();
                heap.push(Worst(c));
            }
        }
        if heap.len() == k {
            bar = heap.peek().map(|w| {
                if w.0.score.is_nan() {
                    f32::NEG_INFINITY
                } else {
                    w.0.score
                }
            });
        }
    }
    let mut out: Vec<Scored> = heap.into_iter().map(|w| w.0).collect();
    out.sort_by(rank_cmp);
    out
}

/// The `k` best of an explicit candidate list.
pub fn top_k_of(mut cands: Vec<Scored>, k: usize) -> Vec<Scored> {
    if cands.len() > k {
        cands.select_nth_unstable_by(k, rank_cmp);
        cands.truncate(k);
    }
    cands.sort_by(rank_cmp);
    cands
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn ties_break_by_ascending_index_and_nan_is_last() {
        let s = [1.0, 2.0, f32::NAN, 2.0, 0.5];
        let top: Vec<u32> = top_k(&s, 5, &[], |_| false)
            .iter()
            .map(|x| x.item)
            .collect();
        assert_eq!(top, vec![1, 3, 0, 4, 2]);
        let top: Vec<u32> = top_k(&s, 2, &[1], |_| false)
            .iter()
            .map(|x| x.item)
            .collect();
        assert_eq!(top, vec![3, 0]);
    }

    proptest! {
        #[test]
        fn matches_sort_and_truncate(scores in prop::collection::vec(-3i32..3, 0..50), k in 0usize..12, ex in prop::collection::btree_set(0u32..50, 0..10)) {
            let scores: Vec<f32> = scores.into_iter().map(|x| x as f32).collect();
            let exclude: Vec<u32> = ex.into_iter().collect();
            let got = top_k(&scores, k, &exclude, |i| i % 7 == 3);
            let mut all: Vec<Scored> = scores.iter().enumerate()
                .filter(|(i, _)| !exclude.contains(&(*i as u32)) && (*i as u32) % 7 != 3)
                .map(|(i, &s)| Scored { item: i as u32, score: s }).collect();
            all.sort_by(|a, b| b.score.partial_cmp(&a.score).unwrap().then(a.item.cmp(&b.item)));
            all.truncate(k);
            prop_assert_eq!(&got, &all);
            prop_assert_eq!(top_k_of(scores.iter().enumerate().filter(|(i, _)| !exclude.contains(&(*i as u32)) && (*i as u32) % 7 != 3).map(|(i, &s)| Scored { item: i as u32, score: s }).collect(), k), all);
        }

        #[test]
        fn nan_and_infinities_rank_as_the_sort_ranks_them(codes in prop::collection::vec(0u8..6, 0..60), k in 0usize..15, ex in prop::collection::btree_set(0u32..60, 0..10)) {
            let scores: Vec<f32> = codes.iter().map(|c| match c {
                0 => f32::NAN, 1 => f32::NEG_INFINITY, 2 => f32::INFINITY, 3 => 0.5, 4 => -1.0, _ => 2.0,
            }).collect();
            let exclude: Vec<u32> = ex.into_iter().collect();
            let got = top_k(&scores, k, &exclude, |_| false);
            let mut all: Vec<Scored> = scores.iter().enumerate()
                .filter(|(i, _)| !exclude.contains(&(*i as u32)))
                .map(|(i, &s)| Scored { item: i as u32, score: s }).collect();
            all.sort_by(rank_cmp);
            all.truncate(k);
            let bits = |v: &[Scored]| v.iter().map(|x| (x.item, x.score.to_bits())).collect::<Vec<_>>();
            prop_assert_eq!(bits(&got), bits(&all));
        }
    }
}
