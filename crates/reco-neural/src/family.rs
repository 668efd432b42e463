//! How the neural models plug into reco's model specifications.

use serde::de::DeserializeOwned;
use serde::Serialize;

use reco_core::model::FitOptions;
use reco_core::{Dataset, Error, Result};
use reco_models::{Family, Model, ModelSpec, PluginSpec};

use crate::ncf::{NcfParams, NeuralCf};
use crate::two_tower::{Loss, TwoTower, TwoTowerParams};

/// The model kinds of this crate.
const KINDS: [&str; 3] = ["two-tower", "content-dnn", "neural-cf"];

/// The neural family: `two-tower`, `content-dnn` and `neural-cf`.
pub struct Neural;

static NEURAL: Neural = Neural;

/// Makes the neural kinds known to [`ModelSpec::from_value`], fitting and artifact loading.
/// Call once at start-up; calling again is harmless.
pub fn register() -> Result<()> {
    reco_models::register(&NEURAL)
}

enum Parsed {
    Tower(TwoTowerParams),
    Ncf(NcfParams),
}

/// Reads `value` over `defaults`, so that a kind's own defaults apply to the keys not given and
/// unknown keys are still refused.
fn over<T: Serialize + DeserializeOwned>(defaults: T, value: &serde_json::Value) -> Result<T> {
    let mut base =
        serde_json::to_value(defaults).map_err(|e| Error::param("model", e.to_string()))?;
    if let (Some(b), Some(v)) = (base.as_object_mut(), value.as_object()) {
        for (k, x) in v {
            if k != "model" {
                b.insert(k.clone(), x.clone());
            }
        }
    }
    serde_json::from_value(base).map_err(|e| Error::param("model", e.to_string()))
}

fn kind_of(value: &serde_json::Value) -> Result<&'static str> {
    let k = value.get("model").and_then(|k| k.as_str()).unwrap_or("");
    KINDS
        .iter()
        .find(|x| **x == k)
        .copied()
        .ok_or_else(|| Error::param("model", format!("{k:?} is not a neural model")))
}

fn parse(value: &serde_json::Value) -> Result<Parsed> {
    Ok(match kind_of(value)? {
        "two-tower" => Parsed::Tower(over(TwoTowerParams::default(), value)?),
        "content-dnn" => Parsed::Tower(over(TwoTowerParams::content_dnn(), value)?),
        _ => Parsed::Ncf(over(NcfParams::default(), value)?),
    })
}

/// The specification of a fitted neural model.
pub(crate) fn spec_of(value: &serde_json::Value) -> ModelSpec {
    ModelSpec::Plugin(PluginSpec {
        family: &NEURAL,
        kind: kind_of(value).unwrap_or(KINDS[0]),
        value: value.clone(),
    })
}

impl Family for Neural {
    fn kinds(&self) -> &'static [&'static str] {
        &KINDS
    }

    fn validate(&self, spec: &serde_json::Value) -> Result<()> {
        match parse(spec)? {
            Parsed::Tower(p) => p.validate(),
            Parsed::Ncf(p) => p.validate(),
        }
    }

    fn ranks(&self, spec: &serde_json::Value) -> bool {
        match parse(spec) {
            Ok(Parsed::Tower(p)) => p.loss != Loss::Mse,
            Ok(Parsed::Ncf(_)) => true,
            Err(_) => false,
        }
    }

    fn fit(
        &self,
        spec: &serde_json::Value,
        data: &Dataset,
        opts: &FitOptions<'_>,
    ) -> Result<Box<dyn Model>> {
        Ok(match parse(spec)? {
            Parsed::Tower(p) => Box::new(TwoTower::fit(&p, spec.clone(), data, opts)?),
            Parsed::Ncf(p) => Box::new(NeuralCf::fit(&p, spec.clone(), data, opts)?),
        })
    }

    fn restore(&self, spec: &serde_json::Value, state: &[u8]) -> Result<Box<dyn Model>> {
        Ok(match parse(spec)? {
            Parsed::Tower(p) => Box::new(TwoTower::from_safetensors(&p, spec.clone(), state)?),
            Parsed::Ncf(p) => Box::new(NeuralCf::from_safetensors(&p, spec.clone(), state)?),
        })
    }
}
