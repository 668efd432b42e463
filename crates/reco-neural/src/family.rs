//! The neural kinds: `two-tower`, `content-dnn` and `neural-cf`, plugged into reco's registry.

use serde::de::DeserializeOwned;
use serde::Serialize;

use reco_core::model::FitOptions;
use reco_core::{Dataset, Result};
use reco_models::{Capabilities, Footprint, Kind, KindEntry, Shape};

use crate::ncf::{NcfParams, NeuralCf};
use crate::two_tower::{Loss, TwoTower, TwoTowerParams};

/// The kinds of this crate, as [`register`] hands them to the registry.
pub static KINDS: &[KindEntry] = &[
    KindEntry::of::<TwoTower>(),
    KindEntry::of::<ContentDnn>(),
    KindEntry::of::<NeuralCf>(),
];

/// Makes the neural kinds known to model parsing, fitting and artifact loading. Call once at
/// start-up; calling again is harmless.
pub fn register() -> Result<()> {
    reco_models::register(KINDS)
}

/// Reads `value` over `defaults`, so that a kind's own defaults apply to the keys not given and
/// unknown keys are still refused.
fn over<T: Serialize + DeserializeOwned>(
    defaults: T,
    value: serde_json::Value,
) -> serde_json::Result<T> {
    let mut base = serde_json::to_value(defaults)?;
    if let (Some(b), serde_json::Value::Object(v)) = (base.as_object_mut(), value) {
        b.extend(v);
    }
    serde_json::from_value(base)
}

fn tower_capabilities(p: &TwoTowerParams) -> Capabilities {
    Capabilities {
        ranks: p.loss != Loss::Mse,
        rates: p.loss == Loss::Mse,
        similar_items: true,
        embeddings: true,
        listwise: false,
    }
}

/// Weights of an MLP with these layer widths.
fn mlp_weights(layers: &[usize]) -> f64 {
    layers
        .windows(2)
        .map(|w| (w[0] as f64 + 1.0) * w[1] as f64)
        .sum()
}

/// Embedding tables for identities, fields, text buckets and recent items, the towers, Adam's
/// moments for all of them, and a batch of activations (with its gradients).
fn tower_footprint(p: &TwoTowerParams, shape: &Shape) -> Footprint {
    let mut rows = (p.numeric_bins + p.text_buckets) as f64 * 2.0;
    if p.user_identity {
        rows += shape.users as f64;
    }
    if p.item_identity || p.recent_items > 0 {
        rows += shape.items as f64;
    }
    let first = p.embedding_dim as f64 * 4.0;
    let towers =
        2.0 * (first * p.layers.first().copied().unwrap_or(0) as f64 + mlp_weights(&p.layers));
    let width = p.embedding_dim as f64 + p.layers.iter().sum::<usize>() as f64;
    let batch = p.batch_size as f64 * (1 + p.negatives) as f64 * width * 2.0;
    let logits = p.batch_size as f64 * p.batch_size as f64;
    Footprint {
        bytes: Footprint::data(shape).bytes
            + (rows * p.embedding_dim as f64 + towers) * 4.0 * 3.0
            + (batch + logits) * 4.0 * 3.0,
        driver: "embedding_dim, layers or batch_size",
    }
}

impl Kind for TwoTower {
    const NAME: &'static str = "two-tower";
    const SUMMARY: &'static str =
        "Two-tower retrieval over ids, metadata, text and recent items (softmax with log-Q, sampled BCE or MSE).";
    const RENAMED: &'static [(&'static str, &'static str)] =
        &[("user_ids", "user_identity"), ("item_ids", "item_identity")];
    type Params = TwoTowerParams;
    type Fitted = TwoTower;

    fn validate(p: &TwoTowerParams) -> Result<()> {
        p.validate()
    }
    fn footprint(p: &TwoTowerParams, shape: &Shape) -> Footprint {
        tower_footprint(p, shape)
    }
    fn capabilities(p: &TwoTowerParams) -> Capabilities {
        tower_capabilities(p)
    }
    fn fit(p: &TwoTowerParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<TwoTower> {
        TwoTower::fit(p, data, opts)
    }
    fn restore(p: &TwoTowerParams, state: &[u8], _: &Shape) -> Result<TwoTower> {
        TwoTower::from_safetensors(p, state)
    }
    fn examples() -> Vec<TwoTowerParams> {
        vec![
            TwoTowerParams {
                epochs: 4,
                layers: vec![64, 32],
                batch_size: 256,
                ..Default::default()
            },
            TwoTowerParams {
                loss: Loss::Bce,
                epochs: 4,
                layers: vec![64, 32],
                temperature: 0.1,
                ..Default::default()
            },
        ]
    }
}

/// The `content-dnn` kind: the lectures' content-based deep network, a two-tower network over
/// features only, trained on ratings.
pub struct ContentDnn;

impl Kind for ContentDnn {
    const NAME: &'static str = "content-dnn";
    const SUMMARY: &'static str =
        "The lectures' content DNN: user and item feature towers trained on ratings (MSE).";
    const RENAMED: &'static [(&'static str, &'static str)] =
        &[("user_ids", "user_identity"), ("item_ids", "item_identity")];
    type Params = TwoTowerParams;
    type Fitted = TwoTower;

    fn parse(value: serde_json::Value) -> serde_json::Result<TwoTowerParams> {
        over(TwoTowerParams::content_dnn(), value)
    }
    fn validate(p: &TwoTowerParams) -> Result<()> {
        p.validate()
    }
    fn footprint(p: &TwoTowerParams, shape: &Shape) -> Footprint {
        tower_footprint(p, shape)
    }
    fn capabilities(p: &TwoTowerParams) -> Capabilities {
        tower_capabilities(p)
    }
    fn fit(p: &TwoTowerParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<TwoTower> {
        let mut m = TwoTower::fit(p, data, opts)?;
        m.content_dnn = true;
        Ok(m)
    }
    fn restore(p: &TwoTowerParams, state: &[u8], _: &Shape) -> Result<TwoTower> {
        let mut m = TwoTower::from_safetensors(p, state)?;
        m.content_dnn = true;
        Ok(m)
    }
    fn examples() -> Vec<TwoTowerParams> {
        vec![TwoTowerParams {
            epochs: 3,
            layers: vec![64, 32],
            ..TwoTowerParams::content_dnn()
        }]
    }
}

impl Kind for NeuralCf {
    const NAME: &'static str = "neural-cf";
    const SUMMARY: &'static str =
        "Neural collaborative filtering (NeuMF: GMF + MLP, He et al. 2017).";
    type Params = NcfParams;
    type Fitted = NeuralCf;

    fn validate(p: &NcfParams) -> Result<()> {
        p.validate()
    }
    fn footprint(p: &NcfParams, shape: &Shape) -> Footprint {
        // GMF and MLP embeddings per user and item, with Adam's two moments each.
        let rows = (shape.users + shape.items) as f64;
        let width = p.factors as f64 + p.layers.first().copied().unwrap_or(0) as f64 / 2.0;
        let layers = mlp_weights(&p.layers);
        let batch = p.batch_size as f64 * (1 + p.negatives) as f64;
        Footprint {
            bytes: Footprint::data(shape).bytes
                + (rows * width + layers) * 4.0 * 3.0
                + batch * p.layers.iter().sum::<usize>() as f64 * 4.0 * 3.0,
            driver: "factors, layers or batch_size",
        }
    }
    fn capabilities(_: &NcfParams) -> Capabilities {
        Capabilities {
            ranks: true,
            ..Default::default()
        }
    }
    fn fit(p: &NcfParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<NeuralCf> {
        NeuralCf::fit(p, data, opts)
    }
    fn restore(p: &NcfParams, state: &[u8], _: &Shape) -> Result<NeuralCf> {
        NeuralCf::from_safetensors(p, state)
    }
    fn examples() -> Vec<NcfParams> {
        vec![NcfParams {
            epochs: 3,
            ..Default::default()
        }]
    }
}
