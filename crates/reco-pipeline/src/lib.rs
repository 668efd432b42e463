//! # reco-pipeline
//!
//! The production shape of a recommender, as models like any other:
//!
//! - `pipeline`: candidate sources with budgets (ANN over an embedding model's user vector,
//!   items related to the last items seen, the user's top categories, popular overall and in a
//!   user segment, any model's top items) → merge and de-duplicate, seen items dropped, each
//!   source's rank and score kept as features → a learned ranker (logistic regression or
//!   gradient-boosted trees, trained on each user's later interactions with sampled negatives;
//!   model scores as features make it a stacking hybrid) → re-rankers (MMR, long-tail
//!   exploration, per-category caps).
//! - `blend`: a weighted sum of models' standardised scores, weights tuned on held-out data.
//! - `switch`: one model for cold users and items, another for the rest.
//! - [`explain`]: one [`Explanation`](reco_core::explain::Explanation) for any model.
//!
//! [`register`] plugs the three kinds into reco's model registry.
#![warn(missing_docs)]

pub mod blend;
mod catalog;
pub mod explain;
mod family;
mod pipeline;
pub mod ranker;
pub mod rerank;
mod sources;
pub mod spec;
pub mod stack;

pub use blend::{Blend, BlendSpec, Switch, SwitchSpec};
pub use explain::{explain, explain_with};
pub use family::KINDS;
pub use pipeline::{Pipeline, Trace};
pub use spec::PipelineSpec;

/// Makes `pipeline`, `blend` and `switch` model kinds; call once at start-up (repeating is
/// harmless).
pub fn register() -> reco_core::Result<()> {
    reco_models::register(family::KINDS)
}

/// Holds out each user's latest `share` of interactions (a random share without timestamps):
/// what rankers and blend weights are trained on, the models having been fitted on the rest.
fn latest_share(
    data: &reco_core::Dataset,
    share: f64,
    seed: u64,
) -> reco_core::Result<reco_core::split::Fold> {
    use reco_core::split::{split, Protocol};
    let protocol = if data.interactions.has_timestamps() {
        Protocol::Temporal { fraction: share }
    } else {
        Protocol::Holdout { ratio: share }
    };
    split(data, &protocol, seed)?
        .into_iter()
        .next()
        .ok_or_else(|| reco_core::Error::data("too small to hold out its latest interactions"))
}

/// Reads a pipeline from TOML text (the format of `reco pipeline --config`): a pipeline model
/// specification, with or without `model = "pipeline"`.
pub fn spec_from_toml(text: &str) -> reco_core::Result<reco_models::ModelSpec> {
    from_toml(text, true)
}

/// Reads a model file (`reco serve --model FILE`, `reco.Model.from_file` in Python): TOML when
/// `toml`, else JSON. A TOML file naming `sources` but no `model` is a pipeline file
/// (docs/pipeline.md names its sources, not its kind).
pub fn spec_from_file(text: &str, toml: bool) -> reco_core::Result<reco_models::ModelSpec> {
    if toml {
        from_toml(text, false)
    } else {
        reco_models::ModelSpec::from_json(text)
    }
}

/// TOML text read strictly (no `nan` or `inf`); without a `model` key it is a pipeline when
/// `pipeline` says so or when it has `sources`.
fn from_toml(text: &str, pipeline: bool) -> reco_core::Result<reco_models::ModelSpec> {
    let what = if pipeline { "pipeline" } else { "model file" };
    let doc: toml::Value =
        toml::from_str(text).map_err(|e| reco_core::Error::param(what, e.to_string()))?;
    let mut value =
        reco_models::strict_value(doc).map_err(|e| reco_core::Error::param(what, e.to_string()))?;
    if let Some(o) = value.as_object_mut() {
        if pipeline || o.contains_key("sources") {
            o.entry("model").or_insert_with(|| "pipeline".into());
        }
    }
    reco_models::ModelSpec::from_value(value)
}
