//! The pipeline, blend and switch as model kinds: once registered they parse, fit, evaluate,
//! save and load wherever a model is accepted.

use reco_core::artifact::{decode, encode};
use reco_core::model::FitOptions;
use reco_core::{Dataset, Result};
use reco_models::{Capabilities, Footprint, Kind, KindEntry, Model, ModelSpec, Shape};
use serde::{Deserialize, Serialize};

use crate::blend::{Blend, BlendSpec, Switch, SwitchSpec};
use crate::catalog::Catalog;
use crate::pipeline::{feature_names, AnyIndex, Pipeline, Stage};
use crate::ranker::Ranker;
use crate::spec::{NamedModel, PipelineSpec};
use crate::stack::{Stack, StackSpec, StackState};

/// The composite kinds, as [`crate::register`] hands them to the registry.
pub static KINDS: &[KindEntry] = &[
    KindEntry::of::<Pipeline>(),
    KindEntry::of::<Blend>(),
    KindEntry::of::<Switch>(),
    KindEntry::of::<Stack>(),
];

/// A fast factor model for the examples: item vectors for ANN sources and MMR.
fn example_mf() -> ModelSpec {
    ModelSpec::new::<reco_models::mf::ials::Ials>(reco_models::mf::ials::IalsParams {
        factors: 16,
        epochs: 5,
        alpha: 10.0,
        ..Default::default()
    })
}

/// Sub-models of the examples, with the capabilities the sources need.
fn example_models() -> Vec<NamedModel> {
    let knn = reco_models::knn::KnnParams {
        similarity: reco_models::knn::Similarity::VectorCosine,
        max_neighbours: 50,
        ..Default::default()
    };
    vec![
        NamedModel {
            name: "mf".into(),
            spec: example_mf(),
        },
        NamedModel {
            name: "knn".into(),
            spec: ModelSpec::new::<reco_models::knn::ItemKnn>(knn),
        },
    ]
}

/// Sub-models are all kept after their fits: their footprints add up; the largest names the
/// parameter to lower.
fn sum_footprints<'a>(specs: impl IntoIterator<Item = &'a ModelSpec>, shape: &Shape) -> Footprint {
    let mut total = 0.0;
    let mut largest = Footprint::data(shape);
    for f in specs.into_iter().map(|s| s.footprint(shape)) {
        total += f.bytes;
        largest = largest.max(f);
    }
    Footprint {
        bytes: total,
        driver: largest.driver,
    }
}

impl Kind for Pipeline {
    const NAME: &'static str = "pipeline";
    const SUMMARY: &'static str =
        "Retrieval and ranking: candidate sources with budgets, a learned ranker, re-rankers (MMR, exploration, category caps).";
    const RENAMED: &'static [(&'static str, &'static str)] = &[
        ("ranker.l2", "regularization"),
        ("ranker.window", "validation"),
        ("sources[].last", "recent_items"),
    ];
    type Params = PipelineSpec;
    type Fitted = Pipeline;

    fn validate(p: &PipelineSpec) -> Result<()> {
        p.validate()
    }
    fn footprint(p: &PipelineSpec, shape: &Shape) -> Footprint {
        sum_footprints(p.models.iter().map(|m| &m.spec), shape)
    }
    fn capabilities(_: &PipelineSpec) -> Capabilities {
        Capabilities {
            ranks: true,
            listwise: true,
            ..Default::default()
        }
    }
    fn fit(p: &PipelineSpec, data: &Dataset, opts: &FitOptions<'_>) -> Result<Pipeline> {
        Pipeline::fit(p.clone(), data, opts)
    }
    fn restore(p: &PipelineSpec, state: &[u8], shape: &Shape) -> Result<Pipeline> {
        restore_pipeline(p.clone(), state, shape)
    }
    fn examples() -> Vec<PipelineSpec> {
        use crate::spec::{IndexKind, RankerKind, RankerSpec, RerankSpec, SourceSpec};
        let sources = vec![
            SourceSpec::Ann {
                model: "mf".into(),
                budget: 60,
                index: IndexKind::Exact,
                metric: Default::default(),
                hnsw: Default::default(),
            },
            SourceSpec::Related {
                model: "knn".into(),
                recent_items: 5,
                per_item: 10,
                budget: 40,
            },
            SourceSpec::TopCategories {
                field: None,
                categories: 2,
                budget: 30,
            },
            SourceSpec::Popular { budget: 20 },
            SourceSpec::PopularInSegment {
                field: "country".into(),
                budget: 20,
            },
        ];
        let base = PipelineSpec {
            name: None,
            models: example_models(),
            sources,
            ranker: RankerSpec {
                models: vec!["mf".into()],
                ..Default::default()
            },
            rerank: vec![RerankSpec::Mmr {
                lambda: 0.8,
                model: None,
            }],
            depth: 50,
        };
        // Both examples search exactly: an HNSW graph links its rows in parallel, so two fits
        // are not the same graph bit for bit, and the suite asks for identical refits (the
        // graph is tested against exact search in tests/pipeline.rs).
        vec![
            base.clone(),
            PipelineSpec {
                ranker: RankerSpec {
                    kind: RankerKind::Gbdt,
                    trees: 20,
                    models: vec!["mf".into()],
                    ..Default::default()
                },
                rerank: vec![
                    RerankSpec::Mmr {
                        lambda: 0.7,
                        model: Some("mf".into()),
                    },
                    RerankSpec::CategoryCap {
                        max: 3,
                        field: None,
                    },
                    RerankSpec::Explore {
                        slots: 2,
                        of: 10,
                        head: 0.2,
                    },
                ],
                ..base
            },
        ]
    }
}

impl Kind for Blend {
    const NAME: &'static str = "blend";
    const SUMMARY: &'static str =
        "Weighted blend of models' standardised scores, weights tuned on each user's latest interactions.";
    type Params = BlendSpec;
    type Fitted = Blend;

    fn validate(p: &BlendSpec) -> Result<()> {
        p.validate()
    }
    fn footprint(p: &BlendSpec, shape: &Shape) -> Footprint {
        sum_footprints(p.models.iter().map(|m| &m.spec), shape)
    }
    fn capabilities(_: &BlendSpec) -> Capabilities {
        Capabilities {
            ranks: true,
            ..Default::default()
        }
    }
    fn fit(p: &BlendSpec, data: &Dataset, opts: &FitOptions<'_>) -> Result<Blend> {
        Blend::fit(p.clone(), data, opts)
    }
    fn restore(p: &BlendSpec, state: &[u8], shape: &Shape) -> Result<Blend> {
        let st: BlendState = decode(state, "blend")?;
        if st.models.len() != p.models.len() || st.weights.len() != p.models.len() {
            return Err(corrupt("blend state does not match its specification"));
        }
        let models = p
            .models
            .iter()
            .zip(&st.models)
            .map(|(m, b)| m.spec.restore(b, shape))
            .collect::<Result<_>>()?;
        Ok(Blend {
            spec: p.clone(),
            models,
            weights: st.weights,
            tuning: st.tuning,
        })
    }
    fn examples() -> Vec<BlendSpec> {
        let pop = NamedModel {
            name: "pop".into(),
            spec: ModelSpec::new::<reco_models::baseline::Popularity>(Default::default()),
        };
        vec![BlendSpec {
            models: vec![
                NamedModel {
                    name: "mf".into(),
                    spec: example_mf(),
                },
                pop,
            ],
            weights: None,
            validation: 0.1,
            k: 10,
            users: 2000,
        }]
    }
}

impl Kind for Switch {
    const NAME: &'static str = "switch";
    const SUMMARY: &'static str =
        "One model for cold users and items (content, popularity), another for the rest.";
    type Params = SwitchSpec;
    type Fitted = Switch;

    fn validate(p: &SwitchSpec) -> Result<()> {
        p.validate()
    }
    fn footprint(p: &SwitchSpec, shape: &Shape) -> Footprint {
        sum_footprints([&p.warm, &p.cold], shape)
    }
    fn capabilities(_: &SwitchSpec) -> Capabilities {
        Capabilities {
            ranks: true,
            ..Default::default()
        }
    }
    fn fit(p: &SwitchSpec, data: &Dataset, opts: &FitOptions<'_>) -> Result<Switch> {
        Switch::fit(p.clone(), data, opts)
    }
    fn restore(p: &SwitchSpec, state: &[u8], shape: &Shape) -> Result<Switch> {
        let st: SwitchState = decode(state, "switch")?;
        if st.user_counts.len() != shape.users || st.item_counts.len() != shape.items {
            return Err(corrupt("switch state does not match the id space"));
        }
        Ok(Switch {
            spec: p.clone(),
            warm: p.warm.restore(&st.warm, shape)?,
            cold: p.cold.restore(&st.cold, shape)?,
            user_counts: st.user_counts,
            item_counts: st.item_counts,
        })
    }
    fn examples() -> Vec<SwitchSpec> {
        vec![SwitchSpec {
            warm: example_mf(),
            cold: ModelSpec::new::<reco_models::content::Content>(Default::default()),
            min_user: 5,
            min_item: 1,
        }]
    }
}

impl Kind for Stack {
    const NAME: &'static str = "stack";
    const SUMMARY: &'static str =
        "Stacked blend of rating models: a linear combiner learned on out-of-fold predictions.";
    type Params = StackSpec;
    type Fitted = Stack;

    fn validate(p: &StackSpec) -> Result<()> {
        p.validate()
    }
    fn footprint(p: &StackSpec, shape: &Shape) -> Footprint {
        // The kept models, plus one fold's models alive while the out-of-fold predictions are
        // made (dropped model by model) and the combiner's rows.
        let mut f = sum_footprints(p.models.iter().map(|m| &m.spec), shape);
        let largest = p
            .models
            .iter()
            .map(|m| m.spec.footprint(shape).bytes)
            .fold(0.0, f64::max);
        let rows = shape.interactions as f64;
        f.bytes += largest + rows * (p.models.len() as f64 + p.width() as f64) * 8.0;
        f
    }
    fn capabilities(_: &StackSpec) -> Capabilities {
        Capabilities {
            rates: true,
            ..Default::default()
        }
    }
    fn fit(p: &StackSpec, data: &Dataset, opts: &FitOptions<'_>) -> Result<Stack> {
        Stack::fit(p.clone(), data, opts)
    }
    fn restore(p: &StackSpec, state: &[u8], shape: &Shape) -> Result<Stack> {
        let st: StackState = decode(state, "stack")?;
        if st.models.len() != p.models.len() || st.weights.len() != p.width() {
            return Err(corrupt("stack state does not match its specification"));
        }
        if st.user_counts.len() != shape.users || st.item_counts.len() != shape.items {
            return Err(corrupt("stack state does not match the id space"));
        }
        if !st.mu.is_finite() || st.weights.iter().any(|w| !w.is_finite()) {
            return Err(corrupt("stack weights are not finite"));
        }
        let models = p
            .models
            .iter()
            .zip(&st.models)
            .map(|(m, b)| m.spec.restore(b, shape))
            .collect::<Result<_>>()?;
        Ok(Stack {
            spec: p.clone(),
            models,
            mu: st.mu,
            weights: st.weights,
            support: st.support,
            scale: st.scale,
            user_counts: st.user_counts,
            item_counts: st.item_counts,
            stacking: st.stacking,
        })
    }
    fn examples() -> Vec<StackSpec> {
        let named = |name: &str, spec: ModelSpec| NamedModel {
            name: name.into(),
            spec,
        };
        vec![StackSpec {
            models: vec![
                named(
                    "svd",
                    ModelSpec::new::<reco_models::mf::svd::Svd>(reco_models::mf::svd::SvdParams {
                        factors: 8,
                        epochs: 5,
                        ..Default::default()
                    }),
                ),
                named(
                    "baseline",
                    ModelSpec::new::<reco_models::bias::Baseline>(Default::default()),
                ),
            ],
            folds: 3,
            regularization: 1e-3,
            support: true,
        }]
    }
}

impl Model for Stack {
    fn spec(&self) -> ModelSpec {
        ModelSpec::new::<Stack>(self.spec.clone())
    }

    fn state(&self) -> Result<Vec<u8>> {
        encode(&StackState {
            models: self
                .models
                .iter()
                .map(|m| m.state())
                .collect::<Result<_>>()?,
            mu: self.mu,
            weights: self.weights.clone(),
            support: self.support,
            scale: self.scale,
            user_counts: self.user_counts.clone(),
            item_counts: self.item_counts.clone(),
            stacking: self.stacking.clone(),
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
    /// Per source, its vector index, if it has one.
    indexes: Vec<Option<SavedIndex>>,
    catalog: Catalog,
    ranker: Ranker,
}

/// A vector index in its saved form. Variants are encoded by position: append new ones.
#[derive(Serialize, Deserialize)]
enum SavedIndex {
    Exact(Vec<u8>),
    Hnsw(Vec<u8>),
    Mips(Vec<u8>),
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

fn restore_pipeline(spec: PipelineSpec, state: &[u8], shape: &Shape) -> Result<Pipeline> {
    let refs = spec.resolve()?;
    let st: PipelineState = decode(state, "pipeline")?;
    if st.models.len() != spec.models.len() || st.indexes.len() != spec.sources.len() {
        return Err(corrupt("pipeline state does not match its specification"));
    }
    let models: Vec<Box<dyn Model>> = spec
        .models
        .iter()
        .zip(&st.models)
        .map(|(m, b)| m.spec.restore(b, shape))
        .collect::<Result<_>>()?;
    let indexes: Vec<Option<AnyIndex>> = st
        .indexes
        .into_iter()
        .map(|ix| {
            ix.map(|ix| -> Result<AnyIndex> {
                Ok(match ix {
                    SavedIndex::Exact(b) => {
                        AnyIndex::Exact(reco_ann::Exact::from_bytes(&b, "exact index")?)
                    }
                    SavedIndex::Hnsw(b) => AnyIndex::Hnsw(reco_ann::Hnsw::from_bytes(&b)?),
                    SavedIndex::Mips(b) => AnyIndex::Mips(reco_ann::Mips::from_bytes(&b)?),
                })
            })
            .transpose()
        })
        .collect::<Result<_>>()?;
    let feature_names = feature_names(&spec);
    if st.catalog.n_items != shape.items || st.catalog.n_users != shape.users {
        return Err(corrupt(
            "the pipeline's catalogue does not match the id space",
        ));
    }
    st.catalog.check().map_err(corrupt)?;
    st.ranker.check(feature_names.len()).map_err(corrupt)?;
    let n = st.catalog.n_items;
    if models.iter().any(|m| m.n_items() != n) {
        return Err(corrupt(
            "the pipeline's models and catalogue disagree on the items",
        ));
    }
    for (s, ix) in indexes.iter().enumerate() {
        let Some(ix) = ix else { continue };
        let dim = refs
            .sources
            .get(s)
            .copied()
            .flatten()
            .and_then(|k| models.get(k)?.as_embeddings().map(|e| e.dim()));
        if ix.get().max_id().is_some_and(|id| id as usize >= n)
            || dim.is_some_and(|d| d != ix.get().dim())
        {
            return Err(corrupt(
                "a vector index does not match the pipeline's items or model",
            ));
        }
    }
    Ok(Pipeline {
        spec,
        refs,
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
        ModelSpec::new::<Pipeline>(self.spec.clone())
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
                    .map(|ix| -> Result<SavedIndex> {
                        Ok(match ix {
                            AnyIndex::Exact(e) => SavedIndex::Exact(encode(e)?),
                            AnyIndex::Hnsw(h) => SavedIndex::Hnsw(h.to_bytes()?),
                            AnyIndex::Mips(m) => SavedIndex::Mips(m.to_bytes()?),
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
        ModelSpec::new::<Blend>(self.spec.clone())
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
        ModelSpec::new::<Switch>(self.spec.clone())
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
