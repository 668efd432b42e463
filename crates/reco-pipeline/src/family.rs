//! The pipeline, blend and switch as model kinds: once registered they parse, fit, evaluate,
//! save and load wherever a model is accepted.

use reco_core::artifact::{decode, encode};
use reco_core::model::{FitOptions, Recommender};
use reco_core::{Dataset, Result};
use reco_models::{Family, Model, ModelSpec, PluginSpec};
use serde::{Deserialize, Serialize};

use crate::blend::{Blend, BlendSpec, Switch, SwitchSpec};
use crate::catalog::Catalog;
use crate::pipeline::{feature_names, AnyIndex, Pipeline, Stage};
use crate::ranker::Ranker;
use crate::spec::PipelineSpec;

/// The family of composite models.
pub struct Composite;

/// The one instance, registered by [`crate::register`].
pub static COMPOSITE: Composite = Composite;

const KINDS: [&str; 3] = ["pipeline", "blend", "switch"];

fn parse<T: for<'de> Deserialize<'de>>(spec: &serde_json::Value) -> Result<T> {
    serde_json::from_value(spec.clone())
        .map_err(|e| reco_core::Error::param("model", e.to_string()))
}

fn kind(spec: &serde_json::Value) -> &str {
    spec.get("model").and_then(|m| m.as_str()).unwrap_or("")
}

fn plugin(kind: &'static str, value: &serde_json::Value) -> ModelSpec {
    ModelSpec::Plugin(PluginSpec {
        family: &COMPOSITE,
        kind,
        value: value.clone(),
    })
}

fn sub_spec(map: &serde_json::Map<String, serde_json::Value>) -> Result<ModelSpec> {
    ModelSpec::from_value(serde_json::Value::Object(map.clone()))
}

impl Family for Composite {
    fn kinds(&self) -> &'static [&'static str] {
        &KINDS
    }

    fn validate(&self, spec: &serde_json::Value) -> Result<()> {
        match kind(spec) {
            "pipeline" => parse::<PipelineSpec>(spec)?.validate(),
            "blend" => parse::<BlendSpec>(spec)?.validate(),
            "switch" => parse::<SwitchSpec>(spec)?.validate(),
            k => Err(reco_core::Error::param(
                "model",
                format!("{k:?} is not a composite model"),
            )),
        }
    }

    fn ranks(&self, _spec: &serde_json::Value) -> bool {
        true
    }

    fn fit(
        &self,
        spec: &serde_json::Value,
        data: &Dataset,
        opts: &FitOptions<'_>,
    ) -> Result<Box<dyn Model>> {
        Ok(match kind(spec) {
            "pipeline" => Box::new(Pipeline::fit(parse(spec)?, spec.clone(), data, opts)?),
            "blend" => Box::new(Blend::fit(parse(spec)?, spec.clone(), data, opts)?),
            "switch" => Box::new(Switch::fit(parse(spec)?, spec.clone(), data, opts)?),
            k => {
                return Err(reco_core::Error::param(
                    "model",
                    format!("{k:?} is not a composite model"),
                ))
            }
        })
    }

    fn restore(&self, spec: &serde_json::Value, state: &[u8]) -> Result<Box<dyn Model>> {
        Ok(match kind(spec) {
            "pipeline" => Box::new(restore_pipeline(parse(spec)?, spec.clone(), state)?),
            "blend" => {
                let s: BlendSpec = parse(spec)?;
                let st: BlendState = decode(state, "blend")?;
                if st.models.len() != s.models.len() || st.weights.len() != s.models.len() {
                    return Err(corrupt("blend state does not match its specification"));
                }
                let models = s
                    .models
                    .iter()
                    .zip(&st.models)
                    .map(|(m, b)| sub_spec(&m.spec)?.restore(b))
                    .collect::<Result<_>>()?;
                Box::new(Blend {
                    value: spec.clone(),
                    models,
                    weights: st.weights,
                    tuning: st.tuning,
                })
            }
            "switch" => {
                let s: SwitchSpec = parse(spec)?;
                let st: SwitchState = decode(state, "switch")?;
                Box::new(Switch {
                    value: spec.clone(),
                    warm: sub_spec(&s.warm)?.restore(&st.warm)?,
                    cold: sub_spec(&s.cold)?.restore(&st.cold)?,
                    min_user: s.min_user,
                    min_item: s.min_item,
                    user_counts: st.user_counts,
                    item_counts: st.item_counts,
                })
            }
            k => {
                return Err(reco_core::Error::param(
                    "model",
                    format!("{k:?} is not a composite model"),
                ))
            }
        })
    }
}

fn corrupt(m: &str) -> reco_core::Error {
    reco_core::Error::Artifact {
        path: "model.bin".into(),
        message: m.into(),
    }
}

#[derive(Serialize, Deserialize)]
struct PipelineState {
    seed: u64,
    models: Vec<Vec<u8>>,
    /// Per source: (0 exact, 1 HNSW, 2 MIPS graph; bytes).
    indexes: Vec<Option<(u8, Vec<u8>)>>,
    catalog: Catalog,
    ranker: Ranker,
}

#[derive(Serialize, Deserialize)]
struct BlendState {
    models: Vec<Vec<u8>>,
    weights: Vec<f64>,
    tuning: Option<crate::blend::Tuning>,
}

#[derive(Serialize, Deserialize)]
struct SwitchState {
    warm: Vec<u8>,
    cold: Vec<u8>,
    user_counts: Vec<u32>,
    item_counts: Vec<u32>,
}

fn restore_pipeline(
    spec: PipelineSpec,
    value: serde_json::Value,
    state: &[u8],
) -> Result<Pipeline> {
    spec.validate()?;
    let st: PipelineState = decode(state, "pipeline")?;
    if st.models.len() != spec.models.len() || st.indexes.len() != spec.sources.len() {
        return Err(corrupt("pipeline state does not match its specification"));
    }
    let models = spec
        .models
        .iter()
        .zip(&st.models)
        .map(|(m, b)| sub_spec(&m.spec)?.restore(b))
        .collect::<Result<_>>()?;
    let indexes = st
        .indexes
        .into_iter()
        .map(|ix| {
            ix.map(|(kind, b)| -> Result<AnyIndex> {
                Ok(match kind {
                    0 => AnyIndex::Exact(decode(&b, "exact index")?),
                    1 => AnyIndex::Hnsw(reco_ann::Hnsw::from_bytes(&b)?),
                    2 => AnyIndex::Mips(reco_ann::Mips::from_bytes(&b)?),
                    k => return Err(corrupt(&format!("unknown index kind {k}"))),
                })
            })
            .transpose()
        })
        .collect::<Result<_>>()?;
    let feature_names = feature_names(&spec);
    Ok(Pipeline {
        spec,
        value,
        seed: st.seed,
        stage: Stage {
            models,
            indexes,
            catalog: st.catalog,
        },
        ranker: st.ranker,
        feature_names,
    })
}

impl Model for Pipeline {
    fn spec(&self) -> ModelSpec {
        plugin("pipeline", &self.value)
    }

    fn state(&self) -> Result<Vec<u8>> {
        let models = self
            .stage
            .models
            .iter()
            .map(|m| m.state())
            .collect::<Result<_>>()?;
        let indexes = self
            .stage
            .indexes
            .iter()
            .map(|ix| {
                ix.as_ref()
                    .map(|ix| -> Result<(u8, Vec<u8>)> {
                        Ok(match ix {
                            AnyIndex::Exact(e) => (0, encode(e)?),
                            AnyIndex::Hnsw(h) => (1, h.to_bytes()?),
                            AnyIndex::Mips(m) => (2, m.to_bytes()?),
                        })
                    })
                    .transpose()
            })
            .collect::<Result<_>>()?;
        encode(&PipelineState {
            seed: self.seed,
            models,
            indexes,
            catalog: self.stage.catalog.clone(),
            ranker: self.ranker.clone(),
        })
    }
}

impl Model for Blend {
    fn spec(&self) -> ModelSpec {
        plugin("blend", &self.value)
    }

    fn state(&self) -> Result<Vec<u8>> {
        encode(&BlendState {
            models: self
                .models
                .iter()
                .map(|m| m.state())
                .collect::<Result<_>>()?,
            weights: self.weights.clone(),
            tuning: self.tuning.clone(),
        })
    }
}

impl Model for Switch {
    fn spec(&self) -> ModelSpec {
        plugin("switch", &self.value)
    }

    fn state(&self) -> Result<Vec<u8>> {
        encode(&SwitchState {
            warm: self.warm.state()?,
            cold: self.cold.state()?,
            user_counts: self.user_counts.clone(),
            item_counts: self.item_counts.clone(),
        })
    }
}

// Keeps the trait in scope for the `Model: Recommender` bound's methods used above.
#[allow(unused_imports)]
use Recommender as _;
