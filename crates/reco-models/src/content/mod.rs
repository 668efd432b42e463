//! Content-based recommendation: items as sparse feature vectors (TF-IDF text, one-hot
//! categories, standardised numbers), users as the weighted average of the items they
//! interacted with, scored by cosine similarity through a sparse product.
//!
//! Every catalogue item with metadata has a vector, whether or not anyone interacted with it,
//! so new items are recommendable at once; a user is any history, so anonymous users are too.

pub mod tfidf;

use crate::spec::{check, CheckState, Shape};
use serde::{Deserialize, Serialize};

use reco_core::model::{FitOptions, Query, Recommender, SimilarItems};
use reco_core::topk::{top_k, Scored};
use reco_core::{Dataset, Error, FeatureTable, Result};

use crate::spec::impl_model;
use tfidf::{SparseRow, Tfidf, TfidfParams};

/// How a user's items are weighted in the profile.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProfileWeighting {
    /// Every item counts once (the notebook's mean of item vectors).
    #[default]
    Binary,
    /// Items weighted by their rating or interaction value.
    Rating,
    /// Items weighted by rating minus the user's mean; disliked items push away when
    /// `negative_feedback` is on, and are dropped otherwise.
    Centered,
}

/// Parameters of the feature space and of the profiles.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ContentParams {
    /// TF-IDF of the text fields (all text fields of an item joined).
    pub tfidf: TfidfParams,
    /// Also put the title in the text.
    pub title_in_text: bool,
    /// Weight of the text block.
    pub text_weight: f32,
    /// Weight of the one-hot categorical block (all categorical fields).
    pub category_weight: f32,
    /// Weight of the standardised numeric block.
    pub numeric_weight: f32,
    /// Profile weighting.
    pub weighting: ProfileWeighting,
    /// Keep negative weights (centred ratings below the user's mean).
    pub negative_feedback: bool,
}

impl Default for ContentParams {
    fn default() -> Self {
        ContentParams {
            tfidf: TfidfParams::default(),
            title_in_text: false,
            text_weight: 1.0,
            category_weight: 1.0,
            numeric_weight: 0.0,
            weighting: ProfileWeighting::Binary,
            negative_feedback: false,
        }
    }
}

impl ContentParams {
    /// Checks every rule, one error per broken rule.
    pub fn validate(&self) -> Result<()> {
        for (name, w) in [
            ("text_weight", self.text_weight),
            ("category_weight", self.category_weight),
            ("numeric_weight", self.numeric_weight),
        ] {
            if !(w >= 0.0 && w.is_finite()) {
                return Err(Error::param(
                    name,
                    format!("must be a finite number >= 0, got {w}"),
                ));
            }
        }
        if self.text_weight + self.category_weight + self.numeric_weight <= 0.0 {
            return Err(Error::param(
                "text_weight",
                "at least one block needs a positive weight",
            ));
        }
        self.tfidf.validate()
    }
}

/// Turns item metadata into unit-norm sparse vectors, with a name per feature.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct FeatureSpace {
    #[serde(with = "crate::persist::as_json")]
    tfidf: Tfidf,
    /// Feature names: `word`, `field=value`, `field` (numeric).
    pub names: Vec<String>,
    /// Item rows, unit L2 norm (empty for items without metadata).
    pub rows: Vec<SparseRow>,
}

impl FeatureSpace {
    /// Builds the vectors of every item of `f`.
    pub fn build(p: &ContentParams, f: &FeatureTable) -> Result<FeatureSpace> {
        let texts: Vec<String> = (0..f.len as u32)
            .map(|i| {
                let mut parts: Vec<&str> = f
                    .text
                    .iter()
                    .map(|t| t.values[i as usize].as_str())
                    .collect();
                if p.title_in_text {
                    parts.extend(f.title(i));
                }
                parts.join(" ")
            })
            .collect();
        let docs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let tfidf = Tfidf::fit(&p.tfidf, &docs)?;
        let mut names: Vec<String> = tfidf.vocabulary.clone();
        let mut cat_offsets = Vec::new();
        for c in &f.categorical {
            cat_offsets.push(names.len() as u32);
            names.extend(c.vocab.ids().iter().map(|v| format!("{}={v}", c.name)));
        }
        let num_offset = names.len() as u32;
        names.extend(f.numeric.iter().map(|n| n.name.clone()));
        // Standardise numbers over the items that have them; missing values contribute nothing.
        let stats: Vec<(f64, f64)> = f
            .numeric
            .iter()
            .map(|n| {
                let xs: Vec<f64> = n
                    .values
                    .iter()
                    .filter(|v| !v.is_nan())
                    .map(|&v| v as f64)
                    .collect();
                let mean = xs.iter().sum::<f64>() / xs.len().max(1) as f64;
                let sd = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>()
                    / xs.len().max(1) as f64)
                    .sqrt();
                (mean, if sd > 0.0 { sd } else { 1.0 })
            })
            .collect();
        let rows = (0..f.len as u32)
            .map(|i| {
                let mut row: Vec<(u32, f32)> = Vec::new();
                if p.text_weight > 0.0 {
                    row.extend(
                        tfidf
                            .transform(&texts[i as usize])
                            .into_iter()
                            .map(|(k, v)| (k, v * p.text_weight)),
                    );
                }
                if p.category_weight > 0.0 {
                    let vals: Vec<u32> = f
                        .categorical
                        .iter()
                        .zip(&cat_offsets)
                        .flat_map(|(c, &off)| c.of(i).iter().map(move |&v| off + v))
                        .collect();
                    let w = p.category_weight / (vals.len().max(1) as f32).sqrt();
                    row.extend(vals.into_iter().map(|k| (k, w)));
                }
                if p.numeric_weight > 0.0 && !f.numeric.is_empty() {
                    let w = p.numeric_weight / (f.numeric.len() as f32).sqrt();
                    for (k, (n, (mean, sd))) in f.numeric.iter().zip(&stats).enumerate() {
                        let v = n.values[i as usize];
                        if !v.is_nan() {
                            row.push((num_offset + k as u32, w * ((v as f64 - mean) / sd) as f32));
                        }
                    }
                }
                row.sort_by_key(|x| x.0);
                let norm = row.iter().map(|x| (x.1 as f64).powi(2)).sum::<f64>().sqrt();
                if norm > 0.0 {
                    row.iter_mut()
                        .for_each(|x| x.1 = (x.1 as f64 / norm) as f32);
                }
                row
            })
            .collect();
        Ok(FeatureSpace { tfidf, names, rows })
    }

    /// Number of features.
    pub fn dim(&self) -> usize {
        self.names.len()
    }
}

/// The fitted content model.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Content {
    #[serde(with = "crate::persist::as_json")]
    params: ContentParams,
    space: FeatureSpace,
    /// Feature → items holding it (for the sparse product).
    inv_ptr: Vec<u64>,
    inv_item: Vec<u32>,
    inv_val: Vec<f32>,
    /// Training histories, for known users.
    histories: Vec<Vec<(u32, f32)>>,
}

impl Content {
    /// Builds the item vectors and the inverted index.
    pub fn fit(p: &ContentParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<Self> {
        p.validate()?;
        let f = data.item_features.as_ref().ok_or_else(|| {
            Error::data("the content model needs item metadata (titles, categories, text)")
        })?;
        let space = FeatureSpace::build(p, f)?;
        let dim = space.dim();
        let mut counts = vec![0u64; dim + 1];
        for row in &space.rows {
            for &(k, _) in row {
                counts[k as usize + 1] += 1;
            }
        }
        for k in 0..dim {
            counts[k + 1] += counts[k];
        }
        let mut next = counts.clone();
        let nnz = counts[dim] as usize;
        let (mut inv_item, mut inv_val) = (vec![0u32; nnz], vec![0f32; nnz]);
        for (i, row) in space.rows.iter().enumerate() {
            for &(k, v) in row {
                let slot = next[k as usize] as usize;
                inv_item[slot] = i as u32;
                inv_val[slot] = v;
                next[k as usize] += 1;
            }
        }
        let m = &data.interactions;
        let histories = (0..m.n_users() as u32)
            .map(|u| {
                m.user_items(u)
                    .iter()
                    .copied()
                    .zip(m.user_values(u).iter().copied())
                    .collect()
            })
            .collect();
        opts.report(
            "items",
            space.rows.len() as u64,
            space.rows.len() as u64,
            None,
        );
        Ok(Content {
            params: p.clone(),
            space,
            inv_ptr: counts,
            inv_item,
            inv_val,
            histories,
        })
    }

    /// The user profile: Σ w_j x_j / Σ |w_j|, as a dense vector over features.
    fn profile(&self, history: &[(u32, f32)]) -> Vec<f64> {
        let mut p = vec![0f64; self.space.dim()];
        let mean = history.iter().map(|h| h.1 as f64).sum::<f64>() / history.len().max(1) as f64;
        let mut total = 0.0;
        for &(j, v) in history {
            let Some(row) = self.space.rows.get(j as usize) else {
                continue;
            };
            let mut w = match self.params.weighting {
                ProfileWeighting::Binary => 1.0,
                ProfileWeighting::Rating => v as f64,
                ProfileWeighting::Centered => v as f64 - mean,
            };
            if w < 0.0 && !self.params.negative_feedback {
                w = 0.0;
            }
            if w == 0.0 {
                continue;
            }
            total += w.abs();
            for &(k, x) in row {
                p[k as usize] += w * x as f64;
            }
        }
        if total > 0.0 {
            p.iter_mut().for_each(|x| *x /= total);
        }
        p
    }

    /// Cosine of a dense profile with every item (rows have unit norm).
    fn cosine_all(&self, p: &[f64], out: &mut [f32]) {
        out.iter_mut().for_each(|o| *o = 0.0);
        let norm = p.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm == 0.0 {
            return;
        }
        for (k, &w) in p.iter().enumerate() {
            if w == 0.0 {
                continue;
            }
            let (a, b) = (self.inv_ptr[k] as usize, self.inv_ptr[k + 1] as usize);
            for (&i, &x) in self.inv_item[a..b].iter().zip(&self.inv_val[a..b]) {
                out[i as usize] += (w * x as f64 / norm) as f32;
            }
        }
    }

    fn history<'a>(&'a self, q: &'a Query<'_>) -> &'a [(u32, f32)] {
        if !q.history.is_empty() {
            return q.history;
        }
        q.user
            .and_then(|u| self.histories.get(u as usize))
            .map_or(&[], Vec::as_slice)
    }

    /// The features shared by a history's profile and `item`, with their contributions, best
    /// first: the explanation of a content recommendation ("scifi", "genres=Sci-Fi").
    pub fn explain(&self, history: &[(u32, f32)], item: u32, k: usize) -> Vec<(String, f32)> {
        let p = self.profile(history);
        let mut out: Vec<(String, f32)> =
            self.space
                .rows
                .get(item as usize)
                .map_or(Vec::new(), |row| {
                    row.iter()
                        .filter(|&&(f, _)| p[f as usize] > 0.0)
                        .map(|&(f, x)| {
                            (
                                self.space.names[f as usize].clone(),
                                (p[f as usize] * x as f64) as f32,
                            )
                        })
                        .collect()
                });
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        out.truncate(k);
        out
    }
}

impl Recommender for Content {
    fn n_items(&self) -> usize {
        self.space.rows.len()
    }

    fn score(&self, q: &Query<'_>, out: &mut [f32]) -> Result<()> {
        let h = self.history(q);
        if let Some(&(bad, _)) = h.iter().find(|x| x.0 as usize >= out.len()) {
            return Err(Error::param(
                "history",
                format!("item index {bad} is outside the catalogue"),
            ));
        }
        let p = self.profile(h);
        self.cosine_all(&p, out);
        Ok(())
    }

    fn as_explain(&self) -> Option<&dyn reco_core::explain::Explain> {
        Some(self)
    }

    fn as_similar_items(&self) -> Option<&dyn SimilarItems> {
        Some(self)
    }
}

impl SimilarItems for Content {
    fn similar_items(&self, item: u32, k: usize) -> Result<Vec<Scored>> {
        if item as usize >= self.space.rows.len() {
            return Err(Error::param(
                "item",
                format!("index {item} is outside the catalogue"),
            ));
        }
        let mut scores = vec![0f32; self.space.rows.len()];
        self.score(&Query::history(&[(item, 1.0)]), &mut scores)?;
        Ok(top_k(&scores, k, &[item], |_| false))
    }
}

impl_model!(Content);

impl crate::spec::Kind for Content {
    const NAME: &'static str = "content";
    const SUMMARY: &'static str =
        "Content-based: TF-IDF/one-hot item vectors, user profiles, cosine.";
    type Params = ContentParams;
    type Fitted = Content;

    fn validate(p: &ContentParams) -> Result<()> {
        p.validate()
    }

    fn capabilities(_: &ContentParams) -> crate::spec::Capabilities {
        use crate::spec::Capabilities;
        Capabilities {
            ranks: true,
            similar_items: true,
            ..Default::default()
        }
    }

    fn fit(p: &ContentParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<Content> {
        Content::fit(p, data, opts)
    }

    fn restore(p: &ContentParams, state: &[u8], shape: &Shape) -> Result<Content> {
        crate::spec::restore_state(p, state, shape, |m: &Content| &m.params)
    }

    fn examples() -> Vec<ContentParams> {
        vec![
            ContentParams::default(),
            ContentParams {
                weighting: ProfileWeighting::Centered,
                numeric_weight: 0.5,
                ..Default::default()
            },
        ]
    }
}

impl CheckState for Content {
    fn check_state(&self, shape: &Shape) -> std::result::Result<(), String> {
        let dim = self.space.dim();
        check::len("the item rows", self.space.rows.len(), shape.items)?;
        for row in &self.space.rows {
            if row.iter().any(|&(f, _)| f as usize >= dim) {
                return Err(format!("an item row names a feature beyond {dim}"));
            }
        }
        check::csr(
            "the inverted index",
            &self.inv_ptr,
            dim,
            self.inv_item.len(),
        )?;
        check::len(
            "the inverted values",
            self.inv_val.len(),
            self.inv_item.len(),
        )?;
        check::below("the inverted index", &self.inv_item, shape.items)?;
        check::len("the histories", self.histories.len(), shape.users)?;
        for h in &self.histories {
            if h.iter().any(|&(i, _)| i as usize >= shape.items) {
                return Err("a history names an item beyond the catalogue".into());
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reco_core::synth::{notebook, NotebookConfig};

    #[test]
    fn profiles_follow_the_users_category() {
        let ds = notebook(&NotebookConfig::default()).unwrap();
        let f = ds.item_features.clone().unwrap();
        let m = Content::fit(&ContentParams::default(), &ds, &FitOptions::default()).unwrap();
        // A history of one category's items recommends that category first.
        let cat = f.category_label(0);
        let same: Vec<(u32, f32)> = (0..60u32)
            .filter(|&i| f.category_label(i) == cat)
            .take(3)
            .map(|i| (i, 1.0))
            .collect();
        let exclude: Vec<u32> = same.iter().map(|h| h.0).collect();
        let recs = m
            .recommend(
                &Query::history(&same),
                3,
                &reco_core::model::Filter {
                    exclude: &exclude,
                    allow: None,
                },
            )
            .unwrap();
        assert!(
            recs.iter().all(|s| f.category_label(s.item) == cat),
            "{recs:?}"
        );
        // Scores are cosines.
        assert!(recs.iter().all(|s| s.score > 0.0 && s.score <= 1.0 + 1e-5));
        let why = m.explain(&same, recs[0].item, 3);
        assert!(!why.is_empty());
        assert!(why.iter().any(|w| w.0.starts_with("category=")
            || reco_core::synth::CATEGORY_WORDS
                .iter()
                .any(|c| c.1.contains(&w.0.as_str()))));
        // An item is most similar to items of its own category.
        let sim = m.similar_items(0, 2).unwrap();
        assert!(sim
            .iter()
            .all(|s| f.category_label(s.item) == cat && s.item != 0));
    }

    #[test]
    fn needs_metadata_and_valid_weights() {
        let mut ds = notebook(&NotebookConfig::default()).unwrap();
        assert!(ContentParams {
            text_weight: -1.0,
            ..Default::default()
        }
        .validate()
        .is_err());
        ds.item_features = None;
        assert!(Content::fit(&ContentParams::default(), &ds, &FitOptions::default()).is_err());
    }
}
