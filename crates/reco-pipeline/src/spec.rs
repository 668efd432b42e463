//! The pipeline's specification: models, candidate sources with budgets, ranker, re-rankers.
//! The same text is a TOML file for `reco pipeline` and a `{"model": "pipeline", ...}` object
//! anywhere a model is accepted.

use reco_ann::{HnswParams, Metric};
use reco_core::Result;
use reco_models::ModelSpec;
use serde::{Deserialize, Serialize};

/// The most candidates one source may propose: the same limit a model specification's `budget`
/// has (see [`reco_models::SIZE_LIMITS`]), so a typo cannot plan a buffer of billions of items.
const MAX_BUDGET: usize = 1 << 24;

/// A whole pipeline.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineSpec {
    /// Name in reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
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

fn default_depth() -> usize {
    100
}

/// A model used by a pipeline or a blend: a name and any model specification, written as one
/// object (`{"name": "mf", "model": "ials", "factors": 32}`).
#[derive(Clone, Debug, PartialEq)]
pub struct NamedModel {
    /// Name the sources and the ranker use.
    pub name: String,
    /// The specification, as for `reco train --model`.
    pub spec: ModelSpec,
}

impl Serialize for NamedModel {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        use serde::ser::Error as _;
        let mut value = self.spec.to_value().map_err(S::Error::custom)?;
        let Some(map) = value.as_object_mut() else {
            return Err(S::Error::custom("a model specification is an object"));
        };
        // The sub-model's own `name` (a pipeline's report name) would collide with the one the
        // other parts refer to it by: only the latter is kept.
        match map.insert("name".into(), self.name.clone().into()) {
            None | Some(serde_json::Value::Null) => value.serialize(s),
            Some(own) => Err(S::Error::custom(format!(
                "model {:?} has a `name` of its own ({own}); a named sub-model cannot",
                self.name
            ))),
        }
    }
}

impl<'de> Deserialize<'de> for NamedModel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error as _;
        let mut value = reco_models::strict_value(d)?;
        let name = match value.as_object_mut().and_then(|o| o.remove("name")) {
            Some(serde_json::Value::String(n)) => n,
            Some(other) => {
                return Err(D::Error::custom(format!(
                    "model name {other} is not a string"
                )))
            }
            None => return Err(D::Error::custom(format!("a model needs a `name`: {value}"))),
        };
        let spec = ModelSpec::from_value(value)
            .map_err(|e| D::Error::custom(format!("model {name:?}: {e}")))?;
        Ok(NamedModel { name, spec })
    }
}

/// A pipeline's references to its models (by name in the specification) resolved once to
/// positions in `models`, so that answering a query never looks a name up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Refs {
    /// Per source, the model it reads.
    pub sources: Vec<Option<usize>>,
    /// Per ranker feature model.
    pub ranker: Vec<usize>,
    /// Per re-ranker, the model it reads.
    pub rerank: Vec<Option<usize>>,
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
    /// For each of the user's last `recent_items` items, its `per_item` most similar items (the
    /// lectures' "because you watched").
    Related {
        /// A model with similar items (item-kNN, co-visitation, content, factor models).
        model: String,
        /// Recent items looked at.
        #[serde(default = "ten")]
        recent_items: usize,
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
    #[serde(default = "validation")]
    pub validation: f64,
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
    #[serde(default = "regularization")]
    pub regularization: f64,
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

fn validation() -> f64 {
    0.2
}
fn four() -> usize {
    4
}
fn yes() -> bool {
    true
}
fn regularization() -> f64 {
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
            validation: validation(),
            negatives: four(),
            models: Vec::new(),
            refit: true,
            regularization: regularization(),
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
    /// Checks references, capabilities and ranges, one error per broken rule (the models'
    /// own parameters were validated when they were parsed).
    pub fn validate(&self) -> Result<()> {
        self.resolve().map(|_| ())
    }

    /// Validates and resolves every model name to its position in `models`.
    pub(crate) fn resolve(&self) -> Result<Refs> {
        let bad = |m: String| Err(reco_core::Error::param("pipeline", m));
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
            m.spec.validate().map_err(|e| {
                reco_core::Error::param("pipeline", format!("model {:?}: {e}", m.name))
            })?;
        }
        let find = |n: &str, user: &str| -> Result<usize> {
            names.iter().position(|x| *x == n).ok_or_else(|| {
                reco_core::Error::param(
                    "pipeline",
                    format!("{user} names model {n:?}, which is not in `models` ({names:?})"),
                )
            })
        };
        let need = |k: usize, what: &str, ok: bool, user: &str| -> Result<()> {
            if ok {
                Ok(())
            } else {
                Err(reco_core::Error::param(
                    "pipeline",
                    format!(
                        "{user} needs {what}, which model {:?} ({}) does not have",
                        names[k],
                        self.models[k].spec.kind()
                    ),
                ))
            }
        };
        let mut refs = Refs::default();
        for s in &self.sources {
            if s.budget() == 0 {
                return bad(format!("source {} has budget 0", s.label()));
            }
            if s.budget() > MAX_BUDGET {
                return bad(format!(
                    "source {} has budget {}, above the limit of {MAX_BUDGET}; lower it",
                    s.label(),
                    s.budget()
                ));
            }
            match s {
                SourceSpec::Related {
                    recent_items,
                    per_item,
                    ..
                } if *recent_items == 0 || *per_item == 0 => {
                    return bad(format!(
                        "source {} needs recent_items >= 1 and per_item >= 1",
                        s.label()
                    ));
                }
                SourceSpec::TopCategories { categories: 0, .. } => {
                    return bad("source top-categories needs categories >= 1".into());
                }
                SourceSpec::Ann { hnsw, .. } => hnsw.validate()?,
                _ => {}
            }
            let user = format!("source {}", s.label());
            let k = s.model().map(|m| find(m, &user)).transpose()?;
            if let Some(k) = k {
                let caps = self.models[k].spec.capabilities();
                match s {
                    SourceSpec::Ann { .. } => need(k, "item vectors", caps.embeddings, &user)?,
                    SourceSpec::Related { .. } => {
                        need(k, "similar items", caps.similar_items, &user)?
                    }
                    _ => {}
                }
            }
            refs.sources.push(k);
        }
        for m in &self.ranker.models {
            refs.ranker.push(find(m, "the ranker")?);
        }
        for r in &self.rerank {
            let mut k = None;
            match r {
                RerankSpec::Mmr { lambda, model } => {
                    if !(0.0..=1.0).contains(lambda) {
                        return bad(format!("mmr lambda {lambda} is outside [0, 1]"));
                    }
                    if let Some(m) = model {
                        let i = find(m, "mmr")?;
                        need(
                            i,
                            "item vectors",
                            self.models[i].spec.capabilities().embeddings,
                            "mmr",
                        )?;
                        k = Some(i);
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
            refs.rerank.push(k);
        }
        let r = &self.ranker;
        if r.kind != RankerKind::Sources {
            let w = r.validation;
            if !(w > 0.0 && w < 1.0) {
                return bad(format!("ranker validation {w} is outside (0, 1)"));
            }
            if r.negatives == 0 {
                return bad("ranker negatives must be at least 1".into());
            }
        }
        if !(r.regularization >= 0.0 && r.regularization.is_finite()) {
            return bad(format!(
                "ranker regularization {} must be a finite number >= 0",
                r.regularization
            ));
        }
        if r.kind == RankerKind::Gbdt
            && (r.trees == 0
                || r.max_depth == 0
                || !(r.learning_rate > 0.0 && r.learning_rate.is_finite()))
        {
            return bad(
                "a gbdt ranker needs trees >= 1, max_depth >= 1 and learning_rate > 0".into(),
            );
        }
        if self.depth == 0 {
            return bad("depth must be at least 1".into());
        }
        Ok(refs)
    }
}
