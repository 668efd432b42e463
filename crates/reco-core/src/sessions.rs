//! Ordered item sequences (views, clicks) grouped by session.

use serde::{Deserialize, Serialize};

use crate::ids::IdMap;

/// Sessions as ordered item sequences; repeats are kept (a view may repeat).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Sessions {
    /// External session ids.
    pub ids: IdMap,
    /// Row pointer: the items of session `s` are `items[ptr[s]..ptr[s + 1]]`.
    pub ptr: Vec<usize>,
    /// Item indices in session order.
    pub items: Vec<u32>,
}

impl Sessions {
    /// Builds sessions from `(session, order, item)` rows in any order; rows are sorted by
    /// session then order, ties keeping input order.
    pub fn from_rows(ids: IdMap, mut rows: Vec<(u32, f64, u32)>) -> Self {
        let n = ids.len();
        // Stable sort: equal (session, order) keep file order.
        rows.sort_by(|a, b| a.0.cmp(&b.0).then(a.1.total_cmp(&b.1)));
        let mut ptr = vec![0usize; n + 1];
        for r in &rows {
            ptr[r.0 as usize + 1] += 1;
        }
        for s in 0..n {
            ptr[s + 1] += ptr[s];
        }
        Sessions {
            ids,
            ptr,
            items: rows.into_iter().map(|r| r.2).collect(),
        }
    }

    /// Number of sessions.
    pub fn len(&self) -> usize {
        self.ptr.len().saturating_sub(1)
    }

    /// True when there is no session.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Items of session `s`, in order.
    pub fn session(&self, s: usize) -> &[u32] {
        &self.items[self.ptr[s]..self.ptr[s + 1]]
    }

    /// Iterates the sessions in index order.
    pub fn iter(&self) -> impl Iterator<Item = &[u32]> {
        (0..self.len()).map(|s| self.session(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_are_ordered_within_sessions() {
        let ids = IdMap::from(vec!["a".to_string(), "b".to_string()]);
        let s = Sessions::from_rows(
            ids,
            vec![(1, 2.0, 7), (0, 1.0, 3), (1, 1.0, 5), (0, 0.0, 4)],
        );
        assert_eq!(s.len(), 2);
        assert_eq!(s.session(0), &[4, 3]);
        assert_eq!(s.session(1), &[5, 7]);
    }
}
