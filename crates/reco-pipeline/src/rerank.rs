//! Re-rankers: they reorder a ranked list for diversity, exploration or balance.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use reco_ann::dot;

/// Maximal marginal relevance (Carbonell & Goldstein 1998): picks, one at a time, the item
/// maximising `λ·rel(i) − (1 − λ)·max_{j picked} sim(i, j)`. `rel` is min–max scaled to [0, 1]
/// over the list so that λ means the same for every ranker. Returns positions into `items`.
pub fn mmr(
    items: &[u32],
    rel: &[f64],
    lambda: f64,
    take: usize,
    sim: &dyn Fn(u32, u32) -> f64,
) -> Vec<usize> {
    let n = items.len();
    let take = take.min(n);
    let (lo, hi) = rel
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &r| {
            (a.min(r), b.max(r))
        });
    let span = if hi > lo { hi - lo } else { 1.0 };
    let scaled: Vec<f64> = rel.iter().map(|r| (r - lo) / span).collect();
    let mut picked = Vec::with_capacity(take);
    let mut used = vec![false; n];
    // The largest similarity of each item to the picked ones, updated as picks are made.
    let mut max_sim = vec![f64::NEG_INFINITY; n];
    for _ in 0..take {
        let mut best: Option<(f64, usize)> = None;
        for k in 0..n {
            if used[k] {
                continue;
            }
            let penalty = if picked.is_empty() { 0.0 } else { max_sim[k] };
            let v = lambda * scaled[k] - (1.0 - lambda) * penalty;
            // Ties keep the earlier (better-ranked) item.
            if best.is_none_or(|(b, _)| v > b) {
                best = Some((v, k));
            }
        }
        let Some((_, k)) = best else { break };
        used[k] = true;
        picked.push(k);
        for j in 0..n {
            if !used[j] {
                max_sim[j] = max_sim[j].max(sim(items[k], items[j]));
            }
        }
    }
    picked
}

/// Cosine of two category sets (each item's values, sorted ascending).
pub fn category_cosine(a: &[u32], b: &[u32]) -> f64 {
    if a.is_empty() || b.is_empty() {
        return 0.0;
    }
    let (mut i, mut j, mut common) = (0, 0, 0usize);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
        }
    }
    common as f64 / ((a.len() * b.len()) as f64).sqrt()
}

/// Cosine of two vectors.
pub fn vector_cosine(a: &[f32], b: &[f32]) -> f64 {
    let n = (dot(a, a) * dot(b, b)).sqrt();
    if n > 0.0 {
        (dot(a, b) / n) as f64
    } else {
        0.0
    }
}

/// Puts `slots` items from the long tail (positions whose `is_tail` is true, drawn at random
/// with `seed`) at the last `slots` positions of the first `of`. Returns the new order.
pub fn explore(
    order: &[usize],
    slots: usize,
    of: usize,
    is_tail: &dyn Fn(usize) -> bool,
    seed: u64,
) -> Vec<usize> {
    let of = of.min(order.len());
    let keep = of.saturating_sub(slots);
    let mut pool: Vec<usize> = order[keep..]
        .iter()
        .copied()
        .filter(|&p| is_tail(p))
        .collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    pool.shuffle(&mut rng);
    pool.truncate(of - keep);
    let mut out: Vec<usize> = order[..keep].to_vec();
    out.extend(&pool);
    out.extend(order[keep..].iter().filter(|p| !pool.contains(p)));
    out
}

/// Keeps at most `max` items per category in order; an item over its category's cap moves
/// after every item that fits. Items without a category are never capped.
pub fn category_cap(
    order: &[usize],
    max: usize,
    category: &dyn Fn(usize) -> Option<u32>,
) -> Vec<usize> {
    let mut count: rustc_hash::FxHashMap<u32, usize> = Default::default();
    let (mut out, mut later) = (Vec::with_capacity(order.len()), Vec::new());
    for &p in order {
        match category(p) {
            Some(c) => {
                let n = count.entry(c).or_default();
                if *n < max {
                    *n += 1;
                    out.push(p);
                } else {
                    later.push(p);
                }
            }
            None => out.push(p),
        }
    }
    out.extend(later);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn mmr_by_hand() {
        // Items 0 and 1 are near-duplicates; 2 is different but less relevant.
        let sim = |a: u32, b: u32| {
            if a + b == 1 {
                0.9
            } else if a == b {
                1.0
            } else {
                0.0
            }
        };
        let rel = [1.0, 0.9, 0.5];
        // λ = 1: relevance order.
        assert_eq!(mmr(&[0, 1, 2], &rel, 1.0, 3, &sim), vec![0, 1, 2]);
        // λ = 0.5: after 0, item 1 scores 0.5·0.8 − 0.5·0.9 = −0.05, item 2 scores 0.5·0 − 0 = 0.
        assert_eq!(mmr(&[0, 1, 2], &rel, 0.5, 3, &sim), vec![0, 2, 1]);
        assert!((category_cosine(&[1, 2], &[2, 3]) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn caps_and_exploration() {
        let cat = |p: usize| Some([0u32, 0, 0, 1, 0, 1][p]);
        assert_eq!(
            category_cap(&[0, 1, 2, 3, 4, 5], 2, &cat),
            vec![0, 1, 3, 5, 2, 4]
        );
        let tail = |p: usize| p >= 4;
        let e = explore(&[0, 1, 2, 3, 4, 5, 6], 2, 5, &tail, 1);
        assert_eq!(&e[..3], &[0, 1, 2]);
        assert!(e[3] >= 4 && e[4] >= 4 && e[3] != e[4]);
        let mut sorted = e.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..7).collect::<Vec<_>>());
    }

    proptest! {
        #[test]
        fn rerankers_permute(n in 0usize..30, lambda in 0.0f64..1.0, max in 1usize..4, seed in 0u64..50) {
            let items: Vec<u32> = (0..n as u32).collect();
            let rel: Vec<f64> = items.iter().map(|&i| ((i * 7919) % 13) as f64).collect();
            let sim = |a: u32, b: u32| if a % 3 == b % 3 { 1.0 } else { 0.0 };
            let picked = mmr(&items, &rel, lambda, n, &sim);
            let mut s = picked.clone();
            s.sort_unstable();
            prop_assert_eq!(s, (0..n).collect::<Vec<_>>());
            let capped = category_cap(&picked, max, &|p| Some((p % 3) as u32));
            // The cap holds until the spill-over, and the spill-over holds only items whose
            // category was full before it.
            let mut count = [0usize; 3];
            let spill = capped.iter().position(|&p| { count[p % 3] += 1; count[p % 3] > max });
            if let Some(s) = spill {
                let mut before = [0usize; 3];
                capped[..s].iter().for_each(|&p| before[p % 3] += 1);
                prop_assert!(capped[s..].iter().all(|&p| before[p % 3] == max));
            }
            let e = explore(&capped, 2, 10, &|p| p % 2 == 0, seed);
            let mut s = e.clone();
            s.sort_unstable();
            prop_assert_eq!(s, (0..n).collect::<Vec<_>>());
        }
    }
}
