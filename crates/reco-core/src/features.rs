//! Item and user metadata: titles, categorical (multi-valued), numeric and text fields.

use serde::{Deserialize, Serialize};

use crate::ids::IdMap;

/// A categorical field; an entity may hold several values (a film's genres).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct CategoricalField {
    /// Field name, as in the source file.
    pub name: String,
    /// The values seen, as a dense vocabulary.
    pub vocab: IdMap,
    /// Row pointer: the values of entity `e` are `values[ptr[e]..ptr[e + 1]]`.
    pub ptr: Vec<usize>,
    /// Value indices into `vocab`.
    pub values: Vec<u32>,
}

impl CategoricalField {
    /// Value indices of entity `e`.
    pub fn of(&self, e: u32) -> &[u32] {
        &self.values[self.ptr[e as usize]..self.ptr[e as usize + 1]]
    }
}

/// A numeric field; `NaN` marks a missing value.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct NumericField {
    /// Field name.
    pub name: String,
    /// One value per entity.
    pub values: Vec<f32>,
}

/// A free-text field (descriptions, plots), tokenised later by the content models.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct TextField {
    /// Field name.
    pub name: String,
    /// One text per entity; empty when missing.
    pub values: Vec<String>,
}

/// Metadata of every item (or every user), indexed by the dense index of the dataset.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct FeatureTable {
    /// Number of entities described (equals the dataset's item or user count).
    pub len: usize,
    /// Display titles (items), empty when unknown.
    pub titles: Option<Vec<String>>,
    /// Categorical fields.
    pub categorical: Vec<CategoricalField>,
    /// Numeric fields.
    pub numeric: Vec<NumericField>,
    /// Text fields.
    pub text: Vec<TextField>,
}

impl FeatureTable {
    /// The title of entity `e`, if the table has titles and this one is not empty.
    pub fn title(&self, e: u32) -> Option<&str> {
        self.titles
            .as_ref()
            .and_then(|t| t.get(e as usize))
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// The categorical field called `name`.
    pub fn categorical(&self, name: &str) -> Option<&CategoricalField> {
        self.categorical.iter().find(|f| f.name == name)
    }

    /// The field that reports and diversity metrics use as "the category": one named genres,
    /// genre, class, category or categories if any, else the first categorical field.
    pub fn primary_category(&self) -> Option<&CategoricalField> {
        const NAMES: [&str; 5] = ["genres", "genre", "class", "category", "categories"];
        self.categorical
            .iter()
            .find(|f| NAMES.contains(&f.name.to_ascii_lowercase().as_str()))
            .or_else(|| self.categorical.first())
    }

    /// The category names of entity `e` in the primary categorical field, joined with `|`.
    pub fn category_label(&self, e: u32) -> String {
        self.primary_category()
            .map(|f| {
                f.of(e)
                    .iter()
                    .map(|&v| f.vocab.id(v))
                    .collect::<Vec<_>>()
                    .join("|")
            })
            .unwrap_or_default()
    }
}

/// The metadata of one entity, as a loader reads it, before it is placed in a [`FeatureTable`].
#[derive(Clone, Debug, Default)]
pub struct FeatureRow {
    /// Title, if the source has one.
    pub title: Option<String>,
    /// Values of each categorical field, in schema order.
    pub categorical: Vec<Vec<String>>,
    /// Value of each numeric field (`NaN` when missing), in schema order.
    pub numeric: Vec<f32>,
    /// Value of each text field, in schema order.
    pub text: Vec<String>,
}

/// Collects rows keyed by dense index, then builds a [`FeatureTable`] once the entity count is
/// final (metadata may name entities the interactions do not have).
#[derive(Clone, Debug, Default)]
pub struct FeatureTableBuilder {
    has_title: bool,
    categorical: Vec<String>,
    numeric: Vec<String>,
    text: Vec<String>,
    rows: Vec<(u32, FeatureRow)>,
}

impl FeatureTableBuilder {
    /// A builder for the given field names.
    pub fn new(
        has_title: bool,
        categorical: Vec<String>,
        numeric: Vec<String>,
        text: Vec<String>,
    ) -> Self {
        FeatureTableBuilder {
            has_title,
            categorical,
            numeric,
            text,
            rows: Vec::new(),
        }
    }

    /// Records the metadata of entity `e`; a later row for the same entity replaces it.
    pub fn push(&mut self, e: u32, row: FeatureRow) {
        self.rows.push((e, row));
    }

    /// Number of rows pushed.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    /// True when no row was pushed.
    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Builds the table for `len` entities; entities without a row get no categories, `NaN`
    /// numbers and empty texts.
    /// How many of `len` entities have no row.
    pub fn missing(&self, len: usize) -> usize {
        let mut seen = vec![false; len];
        for (e, _) in &self.rows {
            if let Some(s) = seen.get_mut(*e as usize) {
                *s = true;
            }
        }
        seen.iter().filter(|s| !**s).count()
    }

    /// Places the rows of `len` entities into a table; entities without a row get empty values.
    pub fn build(self, len: usize) -> FeatureTable {
        let mut slot: Vec<Option<usize>> = vec![None; len];
        for (k, (e, _)) in self.rows.iter().enumerate() {
            if let Some(s) = slot.get_mut(*e as usize) {
                *s = Some(k);
            }
        }
        let row = |e: usize| slot[e].map(|k| &self.rows[k].1);
        let titles = self.has_title.then(|| {
            (0..len)
                .map(|e| row(e).and_then(|r| r.title.clone()).unwrap_or_default())
                .collect()
        });
        let categorical = self
            .categorical
            .iter()
            .enumerate()
            .map(|(f, name)| {
                let mut field = CategoricalField {
                    name: name.clone(),
                    ptr: Vec::with_capacity(len + 1),
                    ..Default::default()
                };
                field.ptr.push(0);
                for e in 0..len {
                    if let Some(vals) = row(e).and_then(|r| r.categorical.get(f)) {
                        let mut idx: Vec<u32> =
                            vals.iter().map(|v| field.vocab.get_or_insert(v)).collect();
                        idx.sort_unstable();
                        idx.dedup();
                        field.values.extend(idx);
                    }
                    field.ptr.push(field.values.len());
                }
                field
            })
            .collect();
        let numeric = self
            .numeric
            .iter()
            .enumerate()
            .map(|(f, name)| NumericField {
                name: name.clone(),
                values: (0..len)
                    .map(|e| {
                        row(e)
                            .and_then(|r| r.numeric.get(f).copied())
                            .unwrap_or(f32::NAN)
                    })
                    .collect(),
            })
            .collect();
        let text = self
            .text
            .iter()
            .enumerate()
            .map(|(f, name)| TextField {
                name: name.clone(),
                values: (0..len)
                    .map(|e| {
                        row(e)
                            .and_then(|r| r.text.get(f).cloned())
                            .unwrap_or_default()
                    })
                    .collect(),
            })
            .collect();
        FeatureTable {
            len,
            titles,
            categorical,
            numeric,
            text,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builder_places_rows_and_fills_missing() {
        let mut b = FeatureTableBuilder::new(
            true,
            vec!["genre".into()],
            vec!["year".into()],
            vec!["plot".into()],
        );
        b.push(
            2,
            FeatureRow {
                title: Some("Heat".into()),
                categorical: vec![vec!["Crime".into(), "Action".into(), "Crime".into()]],
                numeric: vec![1995.0],
                text: vec!["a heist".into()],
            },
        );
        let t = b.build(3);
        assert_eq!(t.title(2), Some("Heat"));
        assert_eq!(t.title(0), None);
        let g = t.categorical("genre").unwrap();
        assert_eq!(g.of(2).len(), 2, "duplicate values collapse");
        assert!(g.of(0).is_empty());
        assert!(t.numeric[0].values[1].is_nan());
        assert_eq!(t.text[0].values[2], "a heist");
        assert_eq!(t.category_label(2), "Crime|Action");
    }
}
