//! The model specification enum and the `Model` trait every fitted model implements.

use serde::{Deserialize, Serialize};

use reco_core::model::{FitOptions, Recommender};
use reco_core::{Dataset, Result};

use crate::baseline::{Popularity, PopularityParams, RandomModel, RandomParams};

/// A model and its parameters, as written in model files (TOML or JSON) and manifests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ModelSpec {
    /// Uniformly random ranking: the floor every model must beat.
    Random(RandomParams),
    /// Most popular items (by count, rating sum or time-decayed trend).
    Popularity(PopularityParams),
}

impl ModelSpec {
    /// The model's family name (`popularity`, `random`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            ModelSpec::Random(_) => "random",
            ModelSpec::Popularity(_) => "popularity",
        }
    }

    /// Checks the parameters, one error per broken rule.
    pub fn validate(&self) -> Result<()> {
        match self {
            ModelSpec::Random(_) => Ok(()),
            ModelSpec::Popularity(p) => p.validate(),
        }
    }

    /// Validates, then trains on `data`.
    pub fn fit(&self, data: &Dataset, opts: &FitOptions<'_>) -> Result<Box<dyn Model>> {
        self.validate()?;
        Ok(match self {
            ModelSpec::Random(p) => Box::new(RandomModel::fit(p, data, opts)?),
            ModelSpec::Popularity(p) => Box::new(Popularity::fit(p, data, opts)?),
        })
    }

    /// Rebuilds a fitted model from the state written by [`Model::state`].
    pub(crate) fn restore(&self, state: &[u8]) -> Result<Box<dyn Model>> {
        Ok(match self {
            ModelSpec::Random(_) => Box::new(reco_core::artifact::decode::<RandomModel>(
                state,
                "model.bin",
            )?),
            ModelSpec::Popularity(_) => Box::new(reco_core::artifact::decode::<Popularity>(
                state,
                "model.bin",
            )?),
        })
    }
}

/// A fitted model: it recommends, and it can describe and serialise itself.
pub trait Model: Recommender {
    /// The specification it was fitted from.
    fn spec(&self) -> ModelSpec;
    /// Its fitted state, for artifacts.
    fn state(&self) -> Result<Vec<u8>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn specs_parse_from_toml_and_json_and_reject_unknown_fields() {
        let s: ModelSpec = toml::from_str(
            "model = \"popularity\"\nweighting = \"trending\"\nhalf_life_days = 7.0",
        )
        .unwrap();
        assert_eq!(s.kind(), "popularity");
        let j: ModelSpec = serde_json::from_str(r#"{"model":"random","seed_offset":3}"#).unwrap();
        assert_eq!(j.kind(), "random");
        assert!(serde_json::from_str::<ModelSpec>(r#"{"model":"popularity","colour":1}"#).is_err());
        assert!(serde_json::from_str::<ModelSpec>(r#"{"model":"nope"}"#).is_err());
    }
}
