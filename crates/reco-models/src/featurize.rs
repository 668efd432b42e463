//! Sparse feature rows for feature-based models (the LightFM-style hybrid, factorisation
//! machines): every user or item becomes a short list of (feature, weight) pairs drawn from an
//! identity feature and the metadata fields of a [`FeatureTable`].
//!
//! Categorical fields give one feature per value (a film's genres, a user's occupation); numeric
//! fields are cut into quantile bins, one feature per bin, so a model can learn a non-linear
//! effect of age or year; text fields are left to the content models. Rows are normalised to sum
//! to 1, as LightFM's `Dataset` does, so an item with five genres does not get a representation
//! five times longer than an item with one.

use serde::{Deserialize, Serialize};

use reco_core::features::FeatureTable;
use reco_core::{Dataset, Error, Result};

/// Which metadata fields become features: `["*"]` is every categorical and numeric field,
/// `[]` none, otherwise the named fields.
pub type FieldList = Vec<String>;

/// Sparse rows of (feature, weight), one row per entity, in compressed form.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FeatureRows {
    /// Number of distinct features (the width of the embedding table).
    pub n_features: usize,
    /// Row pointer: entity `e` owns `idx[ptr[e]..ptr[e + 1]]`.
    pub ptr: Vec<usize>,
    /// Feature indices.
    pub idx: Vec<u32>,
    /// Feature weights, summing to 1 per non-empty row.
    pub val: Vec<f32>,
    /// A readable name per feature (`id:42`, `class=Comedy`, `age#3`), for explanations.
    pub names: Vec<String>,
}

impl FeatureRows {
    /// Number of entities.
    pub fn len(&self) -> usize {
        self.ptr.len().saturating_sub(1)
    }

    /// True when there are no entities.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The features and weights of entity `e`.
    #[inline]
    pub fn row(&self, e: u32) -> (&[u32], &[f32]) {
        let (a, b) = (self.ptr[e as usize], self.ptr[e as usize + 1]);
        (&self.idx[a..b], &self.val[a..b])
    }

    /// True when no entity has more than its identity feature.
    #[cfg(test)]
    fn identity_only(&self) -> bool {
        self.n_features == self.len()
            && (0..self.len()).all(|e| {
                let (i, _) = self.row(e as u32);
                i.is_empty() || (i.len() == 1 && i[0] as usize == e)
            })
    }

    /// The rows of every user of `data`: with `identity`, an identity feature for each user who
    /// has training interactions (the others keep its slot, see [`FeatureRows::build_with_slot`]),
    /// then the user metadata `fields`. Errors name the `user_fields` parameter.
    pub fn of_users(
        data: &Dataset,
        identity: bool,
        fields: &[String],
        numeric_bins: usize,
    ) -> Result<FeatureRows> {
        let m = &data.interactions;
        let table = data.user_features.as_deref();
        Self::of_side(
            m.n_users(),
            |u| m.user_len(u) > 0,
            table,
            identity,
            fields,
            numeric_bins,
        )
        .map_err(|e| Error::param("user_fields", e.to_string()))
    }

    /// [`FeatureRows::of_users`] for the items, with the item metadata; errors name
    /// `item_fields`.
    pub fn of_items(
        data: &Dataset,
        identity: bool,
        fields: &[String],
        numeric_bins: usize,
    ) -> Result<FeatureRows> {
        let m = &data.interactions;
        let table = data.item_features.as_deref();
        Self::of_side(
            m.n_items(),
            |i| m.item_len(i) > 0,
            table,
            identity,
            fields,
            numeric_bins,
        )
        .map_err(|e| Error::param("item_fields", e.to_string()))
    }

    /// The rows of `n` entities, with an identity feature (or its slot) for those `has_data`.
    fn of_side(
        n: usize,
        has_data: impl Fn(u32) -> bool,
        table: Option<&FeatureTable>,
        identity: bool,
        fields: &[String],
        numeric_bins: usize,
    ) -> Result<FeatureRows> {
        let seen: Vec<bool> = (0..n as u32).map(|e| identity && has_data(e)).collect();
        Self::build_with_slot(n, &seen, identity, table, fields, numeric_bins)
    }

    /// [`FeatureRows::build_with_slot`] without the identity slot.
    pub fn build(
        n: usize,
        identity: &[bool],
        table: Option<&FeatureTable>,
        fields: &[String],
        numeric_bins: usize,
    ) -> Result<FeatureRows> {
        Self::build_with_slot(n, identity, false, table, fields, numeric_bins)
    }

    /// Builds the rows of `n` entities. `identity[e]` says whether entity `e` gets its own
    /// identity feature (feature `e`); models give it only to entities seen in training, since an
    /// identity embedding nobody trained is noise. Metadata features follow from index `n`.
    /// With `identity_slot`, an entity without its identity feature still counts it when its row
    /// is normalised, so a cold item's genres weigh what a warm item's genres weighed in training.
    pub fn build_with_slot(
        n: usize,
        identity: &[bool],
        identity_slot: bool,
        table: Option<&FeatureTable>,
        fields: &[String],
        numeric_bins: usize,
    ) -> Result<FeatureRows> {
        let pad = |e: usize| identity_slot && !identity.get(e).copied().unwrap_or(false);
        let mut rows: Vec<Vec<u32>> = (0..n)
            .map(|e| {
                if identity.get(e).copied().unwrap_or(false) {
                    vec![e as u32]
                } else {
                    Vec::new()
                }
            })
            .collect();
        let mut names: Vec<String> = (0..n).map(|e| format!("id:{e}")).collect();
        if !fields.is_empty() {
            let all = fields.iter().any(|f| f == "*");
            let Some(t) = table else {
                if all {
                    // "Every field" of data without metadata is no field.
                    return Ok(Self::assemble(rows, names, pad));
                }
                return Err(Error::param(
                    "fields",
                    format!("metadata fields {fields:?} were asked for, but the data has no metadata; pass [] to use identity features only"),
                ));
            };
            let known: Vec<&str> = t
                .categorical
                .iter()
                .map(|f| f.name.as_str())
                .chain(t.numeric.iter().map(|f| f.name.as_str()))
                .collect();
            if !all {
                if let Some(bad) = fields.iter().find(|f| !known.contains(&f.as_str())) {
                    return Err(Error::param(
                        "fields",
                        format!("unknown metadata field {bad:?}; known: {known:?}"),
                    ));
                }
            }
            let wanted = |name: &str| all || fields.iter().any(|f| f == name);
            for c in t.categorical.iter().filter(|c| wanted(&c.name)) {
                let base = names.len() as u32;
                names.extend(
                    (0..c.vocab.len() as u32).map(|v| format!("{}={}", c.name, c.vocab.id(v))),
                );
                for (e, row) in rows.iter_mut().enumerate().take(t.len.min(n)) {
                    row.extend(c.of(e as u32).iter().map(|&v| base + v));
                }
            }
            for f in t.numeric.iter().filter(|f| wanted(&f.name)) {
                let cuts = quantile_cuts(&f.values, numeric_bins.max(1));
                let base = names.len() as u32;
                names.extend((0..=cuts.len()).map(|b| format!("{}#{b}", f.name)));
                for (e, row) in rows.iter_mut().enumerate().take(f.values.len().min(n)) {
                    let x = f.values[e];
                    if x.is_finite() {
                        row.push(base + cuts.partition_point(|&c| c <= x) as u32);
                    }
                }
            }
        }
        Ok(Self::assemble(rows, names, pad))
    }

    /// Compresses the rows; weights are 1 / (features + 1 when `pad(e)`).
    fn assemble(
        rows: Vec<Vec<u32>>,
        names: Vec<String>,
        pad: impl Fn(usize) -> bool,
    ) -> FeatureRows {
        let n = rows.len();
        let mut out = FeatureRows {
            n_features: names.len(),
            ptr: Vec::with_capacity(n + 1),
            names,
            ..Default::default()
        };
        out.ptr.push(0);
        for (e, mut row) in rows.into_iter().enumerate() {
            row.sort_unstable();
            row.dedup();
            let w = 1.0 / (row.len() + usize::from(pad(e))).max(1) as f32;
            out.val.extend(std::iter::repeat_n(w, row.len()));
            out.idx.extend(row);
            out.ptr.push(out.idx.len());
        }
        out
    }
}

/// Interior cut points splitting the finite values into `bins` groups of about equal size
/// (fewer when values repeat).
fn quantile_cuts(values: &[f32], bins: usize) -> Vec<f32> {
    let mut v: Vec<f32> = values.iter().copied().filter(|x| x.is_finite()).collect();
    v.sort_by(f32::total_cmp);
    let mut cuts: Vec<f32> = (1..bins)
        .filter_map(|b| v.get(b * v.len() / bins).copied())
        .collect();
    cuts.dedup();
    // A cut equal to the minimum would leave the first bin empty.
    cuts.retain(|&c| v.first().is_some_and(|&m| c > m));
    cuts
}

#[cfg(test)]
mod tests {
    use super::*;
    use reco_core::features::{CategoricalField, NumericField};
    use reco_core::ids::IdMap;

    fn table() -> FeatureTable {
        let mut vocab = IdMap::default();
        vocab.get_or_insert("Comedy");
        vocab.get_or_insert("Drama");
        FeatureTable {
            len: 3,
            titles: None,
            categorical: vec![CategoricalField {
                name: "genre".into(),
                vocab,
                ptr: vec![0, 2, 3, 3],
                values: vec![0, 1, 1],
            }],
            numeric: vec![NumericField {
                name: "year".into(),
                values: vec![1990.0, 2000.0, f32::NAN],
            }],
            text: vec![],
        }
    }

    #[test]
    fn rows_hold_identity_categories_and_bins_normalised() {
        let t = table();
        let r = FeatureRows::build(3, &[true, false, true], Some(&t), &["*".into()], 2).unwrap();
        // Features: 3 identities, 2 genres (3, 4), 2 year bins (5, 6).
        assert_eq!(r.n_features, 7);
        let (i, w) = r.row(0);
        assert_eq!(i, &[0, 3, 4, 5]);
        assert!(w.iter().all(|&x| (x - 0.25).abs() < 1e-7));
        // No identity for entity 1: its genre and its (upper) year bin.
        assert_eq!(r.row(1).0, &[4, 6]);
        // Missing year, no genres: identity only.
        assert_eq!(r.row(2).0, &[2]);
        assert_eq!(r.names[3], "genre=Comedy");
        assert!(!r.identity_only());
        // With the identity slot, entity 1 weighs its two features as if it had three.
        let slot =
            FeatureRows::build_with_slot(3, &[true, false, true], true, Some(&t), &["*".into()], 2)
                .unwrap();
        assert!(slot.row(1).1.iter().all(|&x| (x - 1.0 / 3.0).abs() < 1e-7));
        assert_eq!(slot.row(0).1, r.row(0).1);
        let only = FeatureRows::build(3, &[true; 3], Some(&t), &[], 2).unwrap();
        assert!(only.identity_only());
    }

    #[test]
    fn unknown_fields_and_missing_metadata_are_errors() {
        let t = table();
        let e = FeatureRows::build(3, &[true; 3], Some(&t), &["colour".into()], 2).unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
        assert!(FeatureRows::build(3, &[true; 3], None, &["year".into()], 2).is_err());
        // Every field of no metadata is identity only.
        let none = FeatureRows::build(3, &[true; 3], None, &["*".into()], 2).unwrap();
        assert!(none.identity_only());
        let one = FeatureRows::build(3, &[true; 3], Some(&t), &["year".into()], 2).unwrap();
        assert_eq!(one.n_features, 5);
    }

    #[test]
    fn quantile_cuts_split_evenly_and_skip_repeats() {
        let v: Vec<f32> = (0..100).map(|x| x as f32).collect();
        assert_eq!(quantile_cuts(&v, 4), vec![25.0, 50.0, 75.0]);
        assert!(quantile_cuts(&[1.0; 10], 4).is_empty());
    }
}
