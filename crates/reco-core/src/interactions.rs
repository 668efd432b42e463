//! The interaction matrix: CSR by user and CSC by item, built once and then immutable.

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How repeated (user, item) rows are merged into one entry.
///
/// The policy is always explicit and the number of merged rows is reported, because silently
/// keeping one of several ratings changes what a model learns.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DuplicatePolicy {
    /// Keep the row that comes last in file order (the default: a re-rating replaces the old one).
    #[default]
    Last,
    /// Keep the row that comes first in file order.
    First,
    /// Add the values (event counts, weights).
    Sum,
    /// Keep the largest value.
    Max,
    /// Average the values.
    Mean,
}

impl std::str::FromStr for DuplicatePolicy {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "last" => Self::Last,
            "first" => Self::First,
            "sum" => Self::Sum,
            "max" => Self::Max,
            "mean" => Self::Mean,
            _ => {
                return Err(Error::param(
                    "duplicates",
                    format!("{s:?} is not one of last, first, sum, max, mean"),
                ))
            }
        })
    }
}

/// What merging duplicates did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicateReport {
    /// Distinct (user, item) pairs that had more than one row.
    pub pairs: usize,
    /// Rows merged away (input rows minus stored entries).
    pub rows_merged: usize,
}

/// Rows in file order, before sorting and merging. Collects what loaders and generators produce.
#[derive(Clone, Debug, Default)]
pub struct Triplets {
    /// User index of each row.
    pub users: Vec<u32>,
    /// Item index of each row.
    pub items: Vec<u32>,
    /// Rating or weight of each row.
    pub values: Vec<f32>,
    /// Timestamp of each row, when the source has them (then every row has one).
    pub timestamps: Option<Vec<i64>>,
}

impl Triplets {
    /// An empty set; `with_timestamps` says whether rows will carry a timestamp.
    pub fn new(with_timestamps: bool) -> Self {
        Triplets {
            timestamps: with_timestamps.then(Vec::new),
            ..Default::default()
        }
    }

    /// Number of rows.
    pub fn len(&self) -> usize {
        self.users.len()
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Appends one row. `ts` is ignored when the set has no timestamps.
    pub fn push(&mut self, user: u32, item: u32, value: f32, ts: Option<i64>) {
        self.users.push(user);
        self.items.push(item);
        self.values.push(value);
        if let Some(t) = self.timestamps.as_mut() {
            t.push(ts.unwrap_or(0));
        }
    }
}

/// The user × item matrix of observed interactions.
///
/// Stored twice — rows by user (CSR) and columns by item (CSC) — because models walk both ways
/// (user histories; item audiences). Within a row items are in ascending index order, and within
/// a column users are too. Values are `f32` ratings or weights; timestamps are optional and follow
/// the CSR order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Unchecked")]
pub struct Interactions {
    n_users: usize,
    n_items: usize,
    indptr: Vec<usize>,
    indices: Vec<u32>,
    values: Vec<f32>,
    timestamps: Option<Vec<i64>>,
    col_ptr: Vec<usize>,
    col_users: Vec<u32>,
    col_values: Vec<f32>,
}

/// Interactions as read from a file, before [`Interactions`] checks that they fit together.
#[derive(Deserialize)]
struct Unchecked {
    n_users: usize,
    n_items: usize,
    indptr: Vec<usize>,
    indices: Vec<u32>,
    values: Vec<f32>,
    timestamps: Option<Vec<i64>>,
    col_ptr: Vec<usize>,
    col_users: Vec<u32>,
    col_values: Vec<f32>,
}

/// True when `ptr` indexes `rows` rows of `len` values: starts at 0, never decreases, ends at
/// `len`. The check every decoder of a CSR layout read from a file makes.
pub fn is_csr<P: Copy + TryInto<usize>>(ptr: &[P], rows: usize, len: usize) -> bool {
    let at = |k: usize| ptr[k].try_into().ok();
    ptr.len() == rows.saturating_add(1)
        && at(0) == Some(0)
        && (1..ptr.len()).all(|k| matches!((at(k - 1), at(k)), (Some(a), Some(b)) if a <= b))
        && at(rows) == Some(len)
}

impl TryFrom<Unchecked> for Interactions {
    type Error = String;

    /// Saved models hold interactions; a corrupt file must fail to load rather than index out
    /// of bounds later. Both orientations are checked (shapes and index ranges).
    fn try_from(u: Unchecked) -> std::result::Result<Self, String> {
        let nnz = u.indices.len();
        let ok = is_csr(&u.indptr, u.n_users, nnz)
            && is_csr(&u.col_ptr, u.n_items, nnz)
            && u.values.len() == nnz
            && u.col_users.len() == nnz
            && u.col_values.len() == nnz
            && u.timestamps.as_ref().is_none_or(|t| t.len() == nnz)
            && u.indices.iter().all(|&i| (i as usize) < u.n_items)
            && u.col_users.iter().all(|&x| (x as usize) < u.n_users)
            && (0..u.n_users).all(|r| {
                u.indices[u.indptr[r]..u.indptr[r + 1]]
                    .windows(2)
                    .all(|w| w[0] < w[1])
            });
        if !ok {
            return Err("the stored interactions are inconsistent".into());
        }
        Ok(Interactions {
            n_users: u.n_users,
            n_items: u.n_items,
            indptr: u.indptr,
            indices: u.indices,
            values: u.values,
            timestamps: u.timestamps,
            col_ptr: u.col_ptr,
            col_users: u.col_users,
            col_values: u.col_values,
        })
    }
}

impl Interactions {
    /// Builds the matrix from rows in file order, merging duplicates with `policy`.
    ///
    /// `n_users`/`n_items` may exceed the largest index (users or items without interactions).
    /// For merged rows the timestamp kept is that of the kept row (`last`, `first`) or the latest
    /// one (`sum`, `max`, `mean`).
    pub fn from_triplets(
        t: &Triplets,
        n_users: usize,
        n_items: usize,
        policy: DuplicatePolicy,
    ) -> Result<(Self, DuplicateReport)> {
        let n = t.len();
        if t.items.len() != n || t.values.len() != n {
            return Err(Error::param("triplets", "columns of different lengths"));
        }
        if let Some(ts) = &t.timestamps {
            if ts.len() != n {
                return Err(Error::param("triplets", "timestamps of a different length"));
            }
        }
        if let Some(&u) = t.users.iter().find(|&&u| u as usize >= n_users) {
            return Err(Error::param(
                "triplets",
                format!("user index {u} >= {n_users}"),
            ));
        }
        if let Some(&i) = t.items.iter().find(|&&i| i as usize >= n_items) {
            return Err(Error::param(
                "triplets",
                format!("item index {i} >= {n_items}"),
            ));
        }

        // Counting sort by user keeps file order within a user; a stable sort by item then
        // keeps file order among duplicates, which `first`/`last` rely on.
        let mut row_ptr = vec![0usize; n_users + 1];
        for &u in &t.users {
            row_ptr[u as usize + 1] += 1;
        }
        for u in 0..n_users {
            row_ptr[u + 1] += row_ptr[u];
        }
        let mut order = vec![0u32; n];
        let mut next = row_ptr.clone();
        for (row, &u) in t.users.iter().enumerate() {
            order[next[u as usize]] = row as u32;
            next[u as usize] += 1;
        }
        split_rows_mut(&mut order, &row_ptr)
            .into_par_iter()
            .for_each(|seg| seg.sort_by_key(|&r| t.items[r as usize]));

        let mut indptr = Vec::with_capacity(n_users + 1);
        let mut indices = Vec::with_capacity(n);
        let mut values = Vec::with_capacity(n);
        let mut timestamps = t.timestamps.as_ref().map(|_| Vec::with_capacity(n));
        let mut report = DuplicateReport::default();
        indptr.push(0);
        for u in 0..n_users {
            let seg = &order[row_ptr[u]..row_ptr[u + 1]];
            let mut k = 0;
            while k < seg.len() {
                let item = t.items[seg[k] as usize];
                let mut end = k + 1;
                while end < seg.len() && t.items[seg[end] as usize] == item {
                    end += 1;
                }
                let group = &seg[k..end];
                if group.len() > 1 {
                    report.pairs += 1;
                    report.rows_merged += group.len() - 1;
                }
                let (v, ts) = merge(group, t, policy);
                indices.push(item);
                values.push(v);
                if let Some(out) = timestamps.as_mut() {
                    out.push(ts);
                }
                k = end;
            }
            indptr.push(indices.len());
        }
        Ok((
            Self::from_csr(n_users, n_items, indptr, indices, values, timestamps),
            report,
        ))
    }

    /// Assembles the matrix from sorted CSR arrays and derives the CSC copy.
    fn from_csr(
        n_users: usize,
        n_items: usize,
        indptr: Vec<usize>,
        indices: Vec<u32>,
        values: Vec<f32>,
        timestamps: Option<Vec<i64>>,
    ) -> Self {
        let nnz = indices.len();
        let mut col_ptr = vec![0usize; n_items + 1];
        for &i in &indices {
            col_ptr[i as usize + 1] += 1;
        }
        for i in 0..n_items {
            col_ptr[i + 1] += col_ptr[i];
        }
        let mut next = col_ptr.clone();
        let mut col_users = vec![0u32; nnz];
        let mut col_values = vec![0f32; nnz];
        for u in 0..n_users {
            for p in indptr[u]..indptr[u + 1] {
                let i = indices[p] as usize;
                col_users[next[i]] = u as u32;
                col_values[next[i]] = values[p];
                next[i] += 1;
            }
        }
        Interactions {
            n_users,
            n_items,
            indptr,
            indices,
            values,
            timestamps,
            col_ptr,
            col_users,
            col_values,
        }
    }

    /// An empty matrix of the given shape.
    pub fn empty(n_users: usize, n_items: usize, with_timestamps: bool) -> Self {
        Self::from_csr(
            n_users,
            n_items,
            vec![0; n_users + 1],
            Vec::new(),
            Vec::new(),
            with_timestamps.then(Vec::new),
        )
    }

    /// Number of users (rows), including users without interactions.
    pub fn n_users(&self) -> usize {
        self.n_users
    }

    /// Number of items (columns), including items without interactions.
    pub fn n_items(&self) -> usize {
        self.n_items
    }

    /// Number of stored (user, item) entries.
    pub fn nnz(&self) -> usize {
        self.indices.len()
    }

    /// Fraction of the user × item grid that is observed.
    pub fn density(&self) -> f64 {
        if self.n_users == 0 || self.n_items == 0 {
            return 0.0;
        }
        self.nnz() as f64 / (self.n_users as f64 * self.n_items as f64)
    }

    /// True when the matrix carries timestamps.
    pub fn has_timestamps(&self) -> bool {
        self.timestamps.is_some()
    }

    /// Range of positions of user `u` in the CSR arrays.
    #[inline]
    pub fn row_range(&self, u: u32) -> std::ops::Range<usize> {
        self.indptr[u as usize]..self.indptr[u as usize + 1]
    }

    /// Items of user `u`, ascending.
    #[inline]
    pub fn user_items(&self, u: u32) -> &[u32] {
        &self.indices[self.row_range(u)]
    }

    /// Values of user `u`, aligned with [`Self::user_items`].
    #[inline]
    pub fn user_values(&self, u: u32) -> &[f32] {
        &self.values[self.row_range(u)]
    }

    /// Timestamps of user `u`, aligned with [`Self::user_items`].
    pub fn user_timestamps(&self, u: u32) -> Option<&[i64]> {
        let r = self.row_range(u);
        self.timestamps.as_ref().map(|t| &t[r])
    }

    /// Number of interactions of user `u`.
    #[inline]
    pub fn user_len(&self, u: u32) -> usize {
        self.indptr[u as usize + 1] - self.indptr[u as usize]
    }

    /// Users of item `i`, ascending.
    #[inline]
    pub fn item_users(&self, i: u32) -> &[u32] {
        &self.col_users[self.col_ptr[i as usize]..self.col_ptr[i as usize + 1]]
    }

    /// Values of item `i`, aligned with [`Self::item_users`].
    #[inline]
    pub fn item_values(&self, i: u32) -> &[f32] {
        &self.col_values[self.col_ptr[i as usize]..self.col_ptr[i as usize + 1]]
    }

    /// Number of interactions of item `i`.
    #[inline]
    pub fn item_len(&self, i: u32) -> usize {
        self.col_ptr[i as usize + 1] - self.col_ptr[i as usize]
    }

    /// The value of (u, i), if observed.
    pub fn get(&self, u: u32, i: u32) -> Option<f32> {
        let items = self.user_items(u);
        items.binary_search(&i).ok().map(|k| self.user_values(u)[k])
    }

    /// All CSR values (ratings or weights) in storage order.
    pub fn values(&self) -> &[f32] {
        &self.values
    }

    /// All timestamps in CSR order, if any.
    pub fn timestamps(&self) -> Option<&[i64]> {
        self.timestamps.as_deref()
    }

    /// The CSR row pointer (`n_users + 1` entries).
    pub fn indptr(&self) -> &[usize] {
        &self.indptr
    }

    /// The CSR item indices.
    pub fn indices(&self) -> &[u32] {
        &self.indices
    }

    /// Iterates `(user, item, value)` in CSR order.
    pub fn iter(&self) -> impl Iterator<Item = (u32, u32, f32)> + '_ {
        (0..self.n_users as u32).flat_map(move |u| {
            let r = self.row_range(u);
            self.indices[r.clone()]
                .iter()
                .zip(&self.values[r])
                .map(move |(&i, &v)| (u, i, v))
        })
    }

    /// Interaction count of every item.
    pub fn item_counts(&self) -> Vec<u32> {
        (0..self.n_items)
            .map(|i| (self.col_ptr[i + 1] - self.col_ptr[i]) as u32)
            .collect()
    }

    /// Keeps the entries whose CSR position has `keep[p] == true`, same shape and id space.
    ///
    /// This is how splits cut a dataset: train and test are complementary selections of one
    /// matrix, so they cannot overlap and they share the id maps.
    pub fn select(&self, keep: &[bool]) -> Self {
        assert_eq!(keep.len(), self.nnz(), "mask length must equal nnz");
        let mut indptr = Vec::with_capacity(self.n_users + 1);
        let mut indices = Vec::new();
        let mut values = Vec::new();
        let mut timestamps = self.timestamps.as_ref().map(|_| Vec::new());
        indptr.push(0);
        for u in 0..self.n_users {
            for p in self.indptr[u]..self.indptr[u + 1] {
                if keep[p] {
                    indices.push(self.indices[p]);
                    values.push(self.values[p]);
                    if let (Some(out), Some(src)) = (timestamps.as_mut(), self.timestamps.as_ref())
                    {
                        out.push(src[p]);
                    }
                }
            }
            indptr.push(indices.len());
        }
        Self::from_csr(
            self.n_users,
            self.n_items,
            indptr,
            indices,
            values,
            timestamps,
        )
    }

    /// The same entries with every value replaced by `f(value)`.
    pub fn map_values(&self, f: impl Fn(f32) -> f32) -> Self {
        let mut out = self.clone();
        out.values.iter_mut().for_each(|v| *v = f(*v));
        out.col_values.iter_mut().for_each(|v| *v = f(*v));
        out
    }

    /// The transpose (items become rows), in O(nnz): the CSC arrays already are its CSR.
    /// Timestamps are dropped.
    pub fn transpose(&self) -> Self {
        Self::from_csr(
            self.n_items,
            self.n_users,
            self.col_ptr.clone(),
            self.col_users.clone(),
            self.col_values.clone(),
            None,
        )
    }

    /// The same entries with new values, given in CSR order (`values.len() == nnz`).
    pub fn with_values(&self, values: &[f32]) -> Self {
        assert_eq!(values.len(), self.nnz(), "one value per stored entry");
        Self::from_csr(
            self.n_users,
            self.n_items,
            self.indptr.clone(),
            self.indices.clone(),
            values.to_vec(),
            self.timestamps.clone(),
        )
    }

    /// Approximate heap bytes held, for reports on memory use.
    pub fn heap_bytes(&self) -> usize {
        self.indptr.len() * 8
            + self.indices.len() * 4
            + self.values.len() * 4
            + self.timestamps.as_ref().map_or(0, |t| t.len() * 8)
            + self.col_ptr.len() * 8
            + self.col_users.len() * 4
            + self.col_values.len() * 4
    }
}

fn merge(group: &[u32], t: &Triplets, policy: DuplicatePolicy) -> (f32, i64) {
    let ts = |r: u32| t.timestamps.as_ref().map_or(0, |x| x[r as usize]);
    let latest = || group.iter().map(|&r| ts(r)).max().unwrap_or(0);
    let vals = group.iter().map(|&r| t.values[r as usize]);
    match policy {
        DuplicatePolicy::Last => {
            let r = group[group.len() - 1];
            (t.values[r as usize], ts(r))
        }
        DuplicatePolicy::First => (t.values[group[0] as usize], ts(group[0])),
        DuplicatePolicy::Sum => (vals.map(f64::from).sum::<f64>() as f32, latest()),
        DuplicatePolicy::Max => (vals.fold(f32::NEG_INFINITY, f32::max), latest()),
        DuplicatePolicy::Mean => (
            (vals.map(f64::from).sum::<f64>() / group.len() as f64) as f32,
            latest(),
        ),
    }
}

/// Splits `data` into the row segments given by `ptr`, so rows can be processed in parallel.
pub(crate) fn split_rows_mut<'a, T>(mut data: &'a mut [T], ptr: &[usize]) -> Vec<&'a mut [T]> {
    let mut out = Vec::with_capacity(ptr.len().saturating_sub(1));
    for w in ptr.windows(2) {
        let (head, tail) = data.split_at_mut(w[1] - w[0]);
        out.push(head);
        data = tail;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn trip(rows: &[(u32, u32, f32, i64)]) -> Triplets {
        let mut t = Triplets::new(true);
        for &(u, i, v, ts) in rows {
            t.push(u, i, v, Some(ts));
        }
        t
    }

    #[test]
    fn csr_and_csc_agree_on_a_small_case() {
        let t = trip(&[
            (1, 2, 5.0, 10),
            (0, 1, 3.0, 5),
            (1, 0, 1.0, 7),
            (0, 2, 4.0, 1),
        ]);
        let (m, rep) = Interactions::from_triplets(&t, 3, 4, DuplicatePolicy::Last).unwrap();
        assert_eq!(rep, DuplicateReport::default());
        assert_eq!(m.user_items(0), &[1, 2]);
        assert_eq!(m.user_values(0), &[3.0, 4.0]);
        assert_eq!(m.user_timestamps(1).unwrap(), &[7, 10]);
        assert_eq!(m.user_items(2), &[] as &[u32]);
        assert_eq!(m.item_users(2), &[0, 1]);
        assert_eq!(m.item_values(2), &[4.0, 5.0]);
        assert_eq!(m.item_counts(), vec![1, 1, 2, 0]);
        assert_eq!(m.get(1, 0), Some(1.0));
        assert_eq!(m.get(1, 1), None);
    }

    #[test]
    fn each_duplicate_policy_merges_as_documented() {
        let rows = [
            (0, 0, 2.0, 30),
            (0, 0, 4.0, 10),
            (0, 0, 3.0, 20),
            (0, 1, 1.0, 5),
        ];
        let expect = [
            (DuplicatePolicy::Last, 3.0, 20),
            (DuplicatePolicy::First, 2.0, 30),
            (DuplicatePolicy::Sum, 9.0, 30),
            (DuplicatePolicy::Max, 4.0, 30),
            (DuplicatePolicy::Mean, 3.0, 30),
        ];
        for (policy, v, ts) in expect {
            let (m, rep) = Interactions::from_triplets(&trip(&rows), 1, 2, policy).unwrap();
            assert_eq!(m.user_values(0)[0], v, "{policy:?}");
            assert_eq!(m.user_timestamps(0).unwrap()[0], ts, "{policy:?}");
            assert_eq!(
                rep,
                DuplicateReport {
                    pairs: 1,
                    rows_merged: 2
                }
            );
        }
    }

    #[test]
    fn out_of_range_indices_are_errors() {
        let t = trip(&[(3, 0, 1.0, 0)]);
        assert!(Interactions::from_triplets(&t, 3, 1, DuplicatePolicy::Last).is_err());
    }

    proptest! {
        #[test]
        fn csc_is_the_transpose_of_csr(rows in prop::collection::vec((0u32..6, 0u32..7, 0.0f32..5.0), 0..60)) {
            let mut t = Triplets::new(false);
            for &(u, i, v) in &rows { t.push(u, i, v, None); }
            let (m, rep) = Interactions::from_triplets(&t, 6, 7, DuplicatePolicy::Sum).unwrap();
            prop_assert_eq!(m.nnz() + rep.rows_merged, rows.len());
            let mut from_rows: Vec<(u32, u32, f32)> = m.iter().collect();
            let mut from_cols = Vec::new();
            for i in 0..7u32 {
                for (&u, &v) in m.item_users(i).iter().zip(m.item_values(i)) { from_cols.push((u, i, v)); }
            }
            from_rows.sort_by(|a, b| a.partial_cmp(b).unwrap());
            from_cols.sort_by(|a, b| a.partial_cmp(b).unwrap());
            prop_assert_eq!(from_rows, from_cols);
            for u in 0..6u32 { prop_assert!(m.user_items(u).windows(2).all(|w| w[0] < w[1])); }
            // Sum policy preserves the total.
            let total: f64 = rows.iter().map(|r| r.2 as f64).sum();
            let stored: f64 = m.values().iter().map(|&v| v as f64).sum();
            prop_assert!((total - stored).abs() < 1e-3);
        }

        #[test]
        fn transpose_swaps_rows_and_columns(rows in prop::collection::vec((0u32..6, 0u32..4, 0.0f32..5.0), 0..40)) {
            let mut t = Triplets::new(false);
            for &(u, i, v) in &rows { t.push(u, i, v, None); }
            let (m, _) = Interactions::from_triplets(&t, 6, 4, DuplicatePolicy::Last).unwrap();
            let tr = m.transpose();
            prop_assert_eq!((tr.n_users(), tr.n_items(), tr.nnz()), (4, 6, m.nnz()));
            for (u, i, v) in m.iter() { prop_assert_eq!(tr.get(i, u), Some(v)); }
            for i in 0..4u32 { prop_assert_eq!(tr.user_items(i), m.item_users(i)); }
            for u in 0..6u32 { prop_assert_eq!(tr.item_users(u), m.user_items(u)); }
        }

        #[test]
        fn select_keeps_exactly_the_masked_entries(rows in prop::collection::vec((0u32..5, 0u32..5), 1..40), seed in any::<u64>()) {
            let mut t = Triplets::new(false);
            for &(u, i) in &rows { t.push(u, i, 1.0, None); }
            let (m, _) = Interactions::from_triplets(&t, 5, 5, DuplicatePolicy::Last).unwrap();
            let mask: Vec<bool> = (0..m.nnz()).map(|p| (seed >> (p % 64)) & 1 == 1).collect();
            let a = m.select(&mask);
            let inv: Vec<bool> = mask.iter().map(|b| !b).collect();
            let b = m.select(&inv);
            prop_assert_eq!(a.nnz() + b.nnz(), m.nnz());
            for (u, i, _) in a.iter() { prop_assert!(b.get(u, i).is_none()); prop_assert!(m.get(u, i).is_some()); }
        }
    }
}
