//! Shared helpers for item-item models that build one neighbour list per item in parallel.

use crate::spec::check;

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

/// One neighbour list per item, stored as CSR: the graph of item-item models.
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
#[serde(try_from = "Unchecked")]
pub(crate) struct NeighbourLists {
    ptr: Vec<u64>,
    nbr: Vec<u32>,
    weight: Vec<f32>,
}

/// The lists as read from an artifact, before [`NeighbourLists`] checks that they fit together.
#[derive(serde::Deserialize)]
struct Unchecked {
    ptr: Vec<u64>,
    nbr: Vec<u32>,
    weight: Vec<f32>,
}

impl TryFrom<Unchecked> for NeighbourLists {
    type Error = String;

    /// A corrupt or edited artifact must fail to load rather than index out of bounds later.
    fn try_from(u: Unchecked) -> Result<Self, String> {
        let items = u.ptr.len().saturating_sub(1);
        let empty = u.ptr.is_empty() && u.nbr.is_empty() && u.weight.is_empty();
        if !(empty || reco_core::interactions::is_csr(&u.ptr, items, u.nbr.len()))
            || u.nbr.len() != u.weight.len()
            || u.nbr.iter().any(|&j| j as usize >= items)
        {
            return Err("the neighbour lists are inconsistent".into());
        }
        Ok(NeighbourLists {
            ptr: u.ptr,
            nbr: u.nbr,
            weight: u.weight,
        })
    }
}

impl NeighbourLists {
    /// Concatenates per-item lists (already best first).
    pub(crate) fn from_lists(lists: Vec<Vec<(u32, f32)>>) -> Self {
        let mut g = NeighbourLists {
            ptr: Vec::with_capacity(lists.len() + 1),
            ..Default::default()
        };
        g.ptr.push(0);
        for l in lists {
            g.nbr.extend(l.iter().map(|x| x.0));
            g.weight.extend(l.iter().map(|x| x.1));
            g.ptr.push(g.nbr.len() as u64);
        }
        g
    }

    /// Number of items.
    pub(crate) fn len(&self) -> usize {
        self.ptr.len().saturating_sub(1)
    }

    /// Neighbours of item `i` and their weights, best first.
    pub(crate) fn of(&self, i: u32) -> (&[u32], &[f32]) {
        let (a, b) = (
            self.ptr[i as usize] as usize,
            self.ptr[i as usize + 1] as usize,
        );
        (&self.nbr[a..b], &self.weight[a..b])
    }

    /// The first `k` neighbours of `item` (the `SimilarItems` answer), or an error for an index
    /// outside the catalogue.
    pub(crate) fn similar(
        &self,
        item: u32,
        k: usize,
    ) -> reco_core::Result<Vec<reco_core::topk::Scored>> {
        if item as usize >= self.len() {
            return Err(reco_core::Error::param(
                "item",
                format!("index {item} is outside the catalogue"),
            ));
        }
        let (nb, w) = self.of(item);
        Ok(nb
            .iter()
            .zip(w)
            .take(k)
            .map(|(&i, &s)| reco_core::topk::Scored { item: i, score: s })
            .collect())
    }
}

impl NeighbourLists {
    /// Checks the lists against the catalogue: one list per item (or none at all, for models
    /// that keep no graph).
    pub(crate) fn check(&self, items: usize, optional: bool) -> std::result::Result<(), String> {
        if optional && self.ptr.is_empty() {
            return Ok(());
        }
        check::len("the neighbour lists", self.len(), items)
    }
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
