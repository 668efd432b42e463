//! The pipeline's specification: models, candidate sources with budgets, ranker, re-rankers.
//! The same text is a TOML file for `reco pipeline` and a `{"model": "pipeline", ...}` object
//! anywhere a model is accepted.

use reco_ann::{HnswParams, Metric};
use reco_core::Result;
use serde::{Deserialize, Serialize};

/// A whole pipeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    /// Always `"pipeline"` when the spec is written as a model.
    #[serde(default = "pipeline_kind")]
    pub model: String,
    /// Name in reports.
    #[serde(default)]
    pub name: Option<String>,
    /// The models the sources and the ranker refer to by name.
    #[serde(default)]
    pub models: Vec<NamedModel>,
    /// Where candidates come from, each with its budget.
    pub sources: Vec<SourceSpec>,
    /// How candidates are ordered.
    #[serde(default)]
    pub ranker: RankerSpec,
    /// What reorders the ranked list, in order.
    #[serde(default)]
    pub rerank: Vec<RerankSpec>,
    /// Length of the list the re-rankers produce (the evaluator's largest cutoff is enough).
    #[serde(default = "default_depth")]
    pub depth: usize,
}

fn pipeline_kind() -> String {
    "pipeline".into()
}

fn default_depth() -> usize {
    100
}

/// A model used by the pipeline: a name and any model specification.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NamedModel {
    /// Name the sources and the ranker use.
    pub name: String,
    /// The specification, as for `reco train --model` (`{"model": "ials", "factors": 32}`).
    #[serde(flatten)]
    pub spec: serde_json::Map<String, serde_json::Value>,
}

/// A candidate source.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum SourceSpec {
    /// Nearest items to the user's vector in an embedding model, through a vector index.
    Ann {
        /// Embedding model (factor models, two-tower).
        model: String,
        /// Candidates taken.
        budget: usize,
        /// `hnsw` or `exact`.
        #[serde(default)]
        index: IndexKind,
        /// Metric of the index.
        #[serde(default)]
        metric: Metric,
        /// Graph parameters.
        #[serde(default)]
        hnsw: HnswParams,
    },
    /// For each of the user's last `last` items, its `per_item` most similar items (the
    /// lectures' "because you watched").
    Related {
        /// A model with similar items (item-kNN, co-visitation, content, factor models).
        model: String,
        /// Recent items looked at.
        #[serde(default = "ten")]
        last: usize,
        /// Neighbours per recent item.
        #[serde(default = "ten")]
        per_item: usize,
        /// Candidates taken.
        budget: usize,
    },
    /// The most popular items of the user's top categories.
    TopCategories {
        /// Categorical item field (default: the primary category, e.g. genre).
        #[serde(default)]
        field: Option<String>,
        /// Categories of the user's history used.
        #[serde(default = "three")]
        categories: usize,
        /// Candidates taken.
        budget: usize,
    },
    /// The most popular items overall.
    Popular {
        /// Candidates taken.
        budget: usize,
    },
    /// The most popular items among users who share a value of a categorical user field
    /// (the lectures' "top 20 in your country").
    PopularInSegment {
        /// Categorical user field (occupation, country).
        field: String,
        /// Candidates taken.
        budget: usize,
    },
    /// The top items of any model (co-visitation, EASE, a two-tower network).
    Model {
        /// Model name.
        model: String,
        /// Candidates taken.
        budget: usize,
    },
}

fn ten() -> usize {
    10
}

fn three() -> usize {
    3
}

impl SourceSpec {
    /// How many candidates the source may add.
    pub fn budget(&self) -> usize {
        match self {
            SourceSpec::Ann { budget, .. }
            | SourceSpec::Related { budget, .. }
            | SourceSpec::TopCategories { budget, .. }
            | SourceSpec::Popular { budget }
            | SourceSpec::PopularInSegment { budget, .. }
            | SourceSpec::Model { budget, .. } => *budget,
        }
    }

    /// The source's name in features and explanations (`ann:mf`, `popular`, …).
    pub fn label(&self) -> String {
        match self {
            SourceSpec::Ann { model, .. } => format!("ann:{model}"),
            SourceSpec::Related { model, .. } => format!("related:{model}"),
            SourceSpec::TopCategories { .. } => "top-categories".into(),
            SourceSpec::Popular { .. } => "popular".into(),
            SourceSpec::PopularInSegment { field, .. } => format!("popular-in:{field}"),
            SourceSpec::Model { model, .. } => format!("model:{model}"),
        }
    }

    fn model(&self) -> Option<&str> {
        match self {
            SourceSpec::Ann { model, .. }
            | SourceSpec::Related { model, .. }
            | SourceSpec::Model { model, .. } => Some(model),
            _ => None,
        }
    }
}

/// Which vector index an ANN source uses.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum IndexKind {
    /// HNSW graph (sub-linear).
    #[default]
    Hnsw,
    /// Brute force.
    Exact,
}

/// How candidates are ordered.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RankerSpec {
    /// `logistic`, `gbdt`, or `sources` (no learning: the sum of the sources' reciprocal ranks).
    #[serde(default)]
    pub kind: RankerKind,
    /// Share of each user's latest training interactions that become the ranker's labels; the
    /// models behind the sources are fitted on the rest first.
    #[serde(default = "window")]
    pub window: f64,
    /// Negatives sampled per positive, from the candidates that were not interacted with.
    #[serde(default = "four")]
    pub negatives: usize,
    /// Models whose score of each candidate is a feature (stacking).
    #[serde(default)]
    pub models: Vec<String>,
    /// Refit the sources' models on all the training data after the ranker is trained (the
    /// ranker then sees slightly stronger scores than it learned from, but no data is wasted).
    #[serde(default = "yes")]
    pub refit: bool,
    /// L2 penalty of logistic regression.
    #[serde(default = "l2")]
    pub l2: f64,
    /// Gradient-boosted trees: number of trees.
    #[serde(default = "trees")]
    pub trees: usize,
    /// Gradient-boosted trees: depth of each tree.
    #[serde(default = "depth3")]
    pub max_depth: usize,
    /// Gradient-boosted trees: shrinkage.
    #[serde(default = "lr")]
    pub learning_rate: f64,
}

fn window() -> f64 {
    0.2
}
fn four() -> usize {
    4
}
fn yes() -> bool {
    true
}
fn l2() -> f64 {
    1.0
}
fn trees() -> usize {
    100
}
fn depth3() -> usize {
    3
}
fn lr() -> f64 {
    0.1
}

impl Default for RankerSpec {
    fn default() -> Self {
        RankerSpec {
            kind: RankerKind::default(),
            window: window(),
            negatives: four(),
            models: Vec::new(),
            refit: true,
            l2: l2(),
            trees: trees(),
            max_depth: depth3(),
            learning_rate: lr(),
        }
    }
}

/// Ranker families.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RankerKind {
    /// L2-regularised logistic regression on standardised features (Newton's method).
    #[default]
    Logistic,
    /// Gradient-boosted regression trees on the logistic loss.
    Gbdt,
    /// No learning: candidates ordered by the sum of their sources' reciprocal ranks.
    Sources,
}

/// A re-ranker.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum RerankSpec {
    /// Maximal marginal relevance: each pick maximises λ·relevance − (1 − λ)·max similarity to
    /// the items already picked.
    Mmr {
        /// Weight of relevance (1 = no diversification).
        lambda: f64,
        /// Item similarity: the cosine of an embedding model's item vectors, or of the items'
        /// category sets when absent.
        #[serde(default)]
        model: Option<String>,
    },
    /// Long-tail exploration: `slots` positions of the top `of` go to items drawn at random
    /// (seeded by user) from the candidates outside the most popular `head` share of items.
    Explore {
        /// Positions given to exploration.
        slots: usize,
        /// The list length the slots are placed in (the last `slots` positions of it).
        #[serde(default = "ten")]
        of: usize,
        /// Share of the catalogue counted as the head (by popularity).
        #[serde(default = "head")]
        head: f64,
    },
    /// At most `max` items per category in the list (the rest move down).
    CategoryCap {
        /// Items per category.
        max: usize,
        /// Categorical item field (default: the primary category).
        #[serde(default)]
        field: Option<String>,
    },
}

fn head() -> f64 {
    0.2
}

impl PipelineSpec {
    /// Checks references and ranges, one error per broken rule.
    pub fn validate(&self) -> Result<()> {
        let bad = |m: String| Err(reco_core::Error::param("pipeline", m));
        if self.model != "pipeline" {
            return bad(format!("model must be \"pipeline\", not {:?}", self.model));
        }
        if self.sources.is_empty() {
            return bad("at least one source is needed".into());
        }
        let names: Vec<&str> = self.models.iter().map(|m| m.name.as_str()).collect();
        for (i, n) in names.iter().enumerate() {
            if names[..i].contains(n) {
                return bad(format!("two models are named {n:?}"));
            }
        }
        for m in &self.models {
            reco_models::ModelSpec::from_value(serde_json::Value::Object(m.spec.clone())).map_err(
                |e| reco_core::Error::param("pipeline", format!("model {:?}: {e}", m.name)),
            )?;
        }
        let known = |n: &str| names.contains(&n);
        for s in &self.sources {
            if s.budget() == 0 {
                return bad(format!("source {} has budget 0", s.label()));
            }
            if let Some(m) = s.model() {
                if !known(m) {
                    return bad(format!(
                        "source {} names model {m:?}, which is not in `models` ({names:?})",
                        s.label()
                    ));
                }
            }
        }
        for m in &self.ranker.models {
            if !known(m) {
                return bad(format!("ranker names unknown model {m:?}"));
            }
        }
        for r in &self.rerank {
            match r {
                RerankSpec::Mmr { lambda, model } => {
                    if !(0.0..=1.0).contains(lambda) {
                        return bad(format!("mmr lambda {lambda} is outside [0, 1]"));
                    }
                    if let Some(m) = model {
                        if !known(m) {
                            return bad(format!("mmr names unknown model {m:?}"));
                        }
                    }
                }
                RerankSpec::Explore { slots, of, head } => {
                    if slots > of || !(0.0..1.0).contains(head) {
                        return bad("explore needs slots ≤ of and head in [0, 1)".into());
                    }
                }
                RerankSpec::CategoryCap { max, .. } => {
                    if *max == 0 {
                        return bad("category-cap max must be at least 1".into());
                    }
                }
            }
        }
        let w = self.ranker.window;
        if self.ranker.kind != RankerKind::Sources && !(w > 0.0 && w < 1.0) {
            return bad(format!("ranker window {w} is outside (0, 1)"));
        }
        if self.depth == 0 {
            return bad("depth must be at least 1".into());
        }
        Ok(())
    }
}
