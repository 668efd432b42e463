//! Shared helpers for item-item models that build one neighbour list per item in parallel.

/// The best `keep` pairs of `buf` (all when `keep == 0`), best first with ties by ascending
/// index, copied out so `buf` can be reused: a fresh vector per item would fault in new pages
/// for every item of a large catalogue.
pub(crate) fn best_pairs(buf: &mut [(u32, f32)], keep: usize) -> Vec<(u32, f32)> {
    let best_first = |a: &(u32, f32), b: &(u32, f32)| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0));
    let n = if keep > 0 && buf.len() > keep {
        buf.select_nth_unstable_by(keep, best_first);
        keep
    } else {
        buf.len()
    };
    let head = &mut buf[..n];
    head.sort_unstable_by(best_first);
    head.to_vec()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_best_with_ties_by_index() {
        let mut b = vec![(5, 1.0), (2, 3.0), (9, 3.0), (1, 0.5)];
        assert_eq!(best_pairs(&mut b, 2), vec![(2, 3.0), (9, 3.0)]);
        assert_eq!(best_pairs(&mut b, 0).len(), 4);
    }
}
