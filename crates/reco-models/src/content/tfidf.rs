//! A TF-IDF vectorizer with scikit-learn's `TfidfVectorizer` semantics and defaults: lower-case,
//! tokens of two or more Unicode word characters (`(?u)\b\w\w+\b`), optional English stop words,
//! `min_df`/`max_df` (counts or proportions), `max_features` by corpus frequency, smooth idf
//! ln((1 + n)/(1 + df)) + 1, optional sublinear tf 1 + ln(tf), and L2-normalised rows.
//! The vocabulary is sorted, so feature indices match scikit-learn's.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use reco_core::{Error, Result};

const ENGLISH_STOP_WORDS: &str = include_str!("english_stop_words.txt");

/// A document-frequency bound: an absolute count or a proportion of documents.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum DocFreq {
    /// At least/at most this many documents.
    Count(usize),
    /// At least/at most this proportion of documents, in [0, 1].
    Share(f64),
}

impl DocFreq {
    fn resolve(self, n_docs: usize) -> f64 {
        match self {
            DocFreq::Count(c) => c as f64,
            DocFreq::Share(s) => s * n_docs as f64,
        }
    }
}

/// Vectorizer parameters; defaults are scikit-learn's.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TfidfParams {
    /// Lower-case before tokenising.
    pub lowercase: bool,
    /// Drop scikit-learn's English stop words.
    pub english_stop_words: bool,
    /// Ignore terms in fewer documents than this.
    pub min_df: DocFreq,
    /// Ignore terms in more documents than this.
    pub max_df: DocFreq,
    /// Keep only this many terms, the most frequent in the corpus.
    pub max_features: Option<usize>,
    /// tf → 1 + ln(tf).
    pub sublinear_tf: bool,
    /// Add one to document frequencies, as if a document held every term once.
    pub smooth_idf: bool,
    /// Normalise rows to unit L2 norm.
    pub l2_norm: bool,
}

impl Default for TfidfParams {
    fn default() -> Self {
        TfidfParams {
            lowercase: true,
            english_stop_words: false,
            min_df: DocFreq::Count(1),
            max_df: DocFreq::Share(1.0),
            max_features: None,
            sublinear_tf: false,
            smooth_idf: true,
            l2_norm: true,
        }
    }
}

impl TfidfParams {
    /// Checks every rule, one error per broken rule.
    pub fn validate(&self) -> Result<()> {
        for (name, d) in [("min_df", self.min_df), ("max_df", self.max_df)] {
            if let DocFreq::Share(s) = d {
                if !(0.0..=1.0).contains(&s) {
                    return Err(Error::param(
                        name,
                        format!("a proportion must be in [0, 1], got {s}"),
                    ));
                }
            }
        }
        if self.max_features == Some(0) {
            return Err(Error::param("max_features", "must be at least 1"));
        }
        // Mixed forms depend on the corpus size and are checked when fitting.
        let inverted = match (self.min_df, self.max_df) {
            (DocFreq::Count(a), DocFreq::Count(b)) => a > b,
            (DocFreq::Share(a), DocFreq::Share(b)) => a > b,
            _ => false,
        };
        if inverted {
            return Err(Error::param(
                "min_df",
                "must not exceed max_df: no term could be kept",
            ));
        }
        Ok(())
    }
}

/// Splits `text` into tokens of at least two word characters (letters, digits, underscore).
pub fn tokenize(text: &str, lowercase: bool) -> Vec<String> {
    let text = if lowercase {
        text.to_lowercase()
    } else {
        text.to_string()
    };
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut len = 0;
    for c in text.chars().chain(std::iter::once(' ')) {
        if c.is_alphanumeric() || c == '_' {
            cur.push(c);
            len += 1;
        } else {
            if len >= 2 {
                out.push(std::mem::take(&mut cur));
            }
            cur.clear();
            len = 0;
        }
    }
    out
}

/// A fitted vectorizer: vocabulary (sorted) and idf weights.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Tfidf {
    params: TfidfParams,
    /// Terms, sorted; the index is the feature index.
    pub vocabulary: Vec<String>,
    /// Idf of each term.
    pub idf: Vec<f64>,
}

/// A sparse row: sorted feature indices and values.
pub type SparseRow = Vec<(u32, f32)>;

impl Tfidf {
    /// Learns the vocabulary and idf from `docs`.
    pub fn fit(params: &TfidfParams, docs: &[&str]) -> Result<Tfidf> {
        params.validate()?;
        let stop: std::collections::HashSet<&str> = if params.english_stop_words {
            ENGLISH_STOP_WORDS.split_whitespace().collect()
        } else {
            Default::default()
        };
        let n = docs.len();
        let mut df: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for d in docs {
            let mut seen = std::collections::HashSet::new();
            for t in tokenize(d, params.lowercase) {
                if stop.contains(t.as_str()) {
                    continue;
                }
                let e = df.entry(t.clone()).or_default();
                e.1 += 1;
                if seen.insert(t) {
                    e.0 += 1;
                }
            }
        }
        let (lo, hi) = (params.min_df.resolve(n), params.max_df.resolve(n));
        let mut kept: Vec<(String, usize, usize)> = df
            .into_iter()
            .filter(|(_, (d, _))| *d as f64 >= lo && *d as f64 <= hi)
            .map(|(t, (d, tf))| (t, d, tf))
            .collect();
        if let Some(m) = params.max_features {
            if kept.len() > m {
                // Most frequent in the corpus; ties by term, then back to sorted order.
                kept.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
                kept.truncate(m);
                kept.sort_by(|a, b| a.0.cmp(&b.0));
            }
        }
        let idf = kept
            .iter()
            .map(|(_, d, _)| {
                let s = if params.smooth_idf { 1.0 } else { 0.0 };
                ((n as f64 + s) / (*d as f64 + s)).ln() + 1.0
            })
            .collect();
        Ok(Tfidf {
            params: params.clone(),
            vocabulary: kept.into_iter().map(|k| k.0).collect(),
            idf,
        })
    }

    /// Number of features.
    pub fn len(&self) -> usize {
        self.vocabulary.len()
    }

    /// True when the vocabulary is empty.
    pub fn is_empty(&self) -> bool {
        self.vocabulary.is_empty()
    }

    /// The TF-IDF row of one document (terms outside the vocabulary are ignored).
    pub fn transform(&self, doc: &str) -> SparseRow {
        let mut counts: BTreeMap<u32, f64> = BTreeMap::new();
        for t in tokenize(doc, self.params.lowercase) {
            if let Ok(k) = self.vocabulary.binary_search(&t) {
                *counts.entry(k as u32).or_default() += 1.0;
            }
        }
        let mut row: Vec<(u32, f64)> = counts
            .into_iter()
            .map(|(k, tf)| {
                let tf = if self.params.sublinear_tf {
                    1.0 + tf.ln()
                } else {
                    tf
                };
                (k, tf * self.idf[k as usize])
            })
            .collect();
        if self.params.l2_norm {
            let norm = row.iter().map(|x| x.1 * x.1).sum::<f64>().sqrt();
            if norm > 0.0 {
                row.iter_mut().for_each(|x| x.1 /= norm);
            }
        }
        row.into_iter().map(|(k, v)| (k, v as f32)).collect()
    }
}

#[cfg(test)]
#[allow(clippy::approx_constant)]
mod tests {
    use super::*;

    const DOCS: [&str; 5] = [
        "The quick brown fox jumps over the lazy dog",
        "A fox, a FOX! Über-fast foxes run_fast 42 times",
        "dogs and cats and the 7 x y",
        "café naïve façade über quick quick quick",
        "",
    ];

    /// Checks every non-zero of the matrix against scikit-learn 1.9.1's output.
    fn check(params: TfidfParams, vocab: &[&str], expected: &[(usize, u32, f64)]) {
        let t = Tfidf::fit(&params, &DOCS).unwrap();
        assert_eq!(t.vocabulary, vocab);
        let mut got = Vec::new();
        for (r, d) in DOCS.iter().enumerate() {
            for (c, v) in t.transform(d) {
                got.push((r, c, v as f64));
            }
        }
        assert_eq!(got.len(), expected.len());
        for (g, e) in got.iter().zip(expected) {
            assert_eq!((g.0, g.1), (e.0, e.1));
            assert!((g.2 - e.2).abs() < 1e-6, "{g:?} vs {e:?}");
        }
    }

    // Reference values (printed to 9 decimals): scikit-learn 1.9.1 `TfidfVectorizer(**kw).fit_transform(DOCS)`.
    #[test]
    fn matches_scikit_learn_defaults() {
        check(
            TfidfParams::default(),
            &[
                "42", "and", "brown", "café", "cats", "dog", "dogs", "fast", "façade", "fox",
                "foxes", "jumps", "lazy", "naïve", "over", "quick", "run_fast", "the", "times",
                "über",
            ],
            &[
                (0, 2, 0.335097303),
                (0, 5, 0.335097303),
                (0, 9, 0.270354394),
                (0, 11, 0.335097303),
                (0, 12, 0.335097303),
                (0, 14, 0.335097303),
                (0, 15, 0.270354394),
                (0, 17, 0.540708787),
                (1, 0, 0.348058704),
                (1, 7, 0.348058704),
                (1, 9, 0.561623142),
                (1, 10, 0.348058704),
                (1, 16, 0.348058704),
                (1, 18, 0.348058704),
                (1, 19, 0.280811571),
                (2, 1, 0.77551332),
                (2, 4, 0.38775666),
                (2, 6, 0.38775666),
                (2, 17, 0.312839632),
                (3, 3, 0.324286526),
                (3, 8, 0.324286526),
                (3, 13, 0.324286526),
                (3, 15, 0.784896982),
                (3, 19, 0.261632327),
            ],
        );
    }

    #[test]
    fn matches_scikit_learn_stop_words_and_sublinear_tf() {
        check(
            TfidfParams {
                english_stop_words: true,
                sublinear_tf: true,
                ..Default::default()
            },
            &[
                "42", "brown", "café", "cats", "dog", "dogs", "fast", "façade", "fox", "foxes",
                "jumps", "lazy", "naïve", "quick", "run_fast", "times", "über",
            ],
            &[
                (0, 1, 0.434297183),
                (0, 4, 0.434297183),
                (0, 8, 0.350388233),
                (0, 10, 0.434297183),
                (0, 11, 0.434297183),
                (0, 13, 0.350388233),
                (1, 0, 0.364736985),
                (1, 6, 0.364736985),
                (1, 8, 0.498238193),
                (1, 9, 0.364736985),
                (1, 14, 0.364736985),
                (1, 15, 0.364736985),
                (1, 16, 0.294267503),
                (2, 3, 0.707106781),
                (2, 5, 0.707106781),
                (3, 2, 0.391700417),
                (3, 7, 0.391700417),
                (3, 12, 0.391700417),
                (3, 13, 0.663206457),
                (3, 16, 0.31602143),
            ],
        );
    }

    #[test]
    fn matches_scikit_learn_min_df_and_max_features() {
        check(
            TfidfParams {
                min_df: DocFreq::Count(2),
                ..Default::default()
            },
            &["fox", "quick", "the", "über"],
            &[
                (0, 0, 0.40824829),
                (0, 1, 0.40824829),
                (0, 2, 0.816496581),
                (1, 0, 0.894427191),
                (1, 3, 0.447213595),
                (2, 2, 1.0),
                (3, 1, 0.948683298),
                (3, 3, 0.316227766),
            ],
        );
        check(
            TfidfParams {
                max_features: Some(3),
                smooth_idf: false,
                ..Default::default()
            },
            &["fox", "quick", "the"],
            &[
                (0, 0, 0.40824829),
                (0, 1, 0.40824829),
                (0, 2, 0.816496581),
                (1, 0, 1.0),
                (2, 2, 1.0),
                (3, 1, 1.0),
            ],
        );
        assert!(TfidfParams {
            max_df: DocFreq::Share(1.5),
            ..Default::default()
        }
        .validate()
        .is_err());
    }
}
