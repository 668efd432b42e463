//! The model specification enum and the `Model` trait every fitted model implements.

use serde::{Deserialize, Serialize};

use reco_core::artifact::decode;
use reco_core::model::{FitOptions, Recommender};
use reco_core::{Dataset, Result};

use crate::baseline::{Popularity, PopularityParams, RandomModel, RandomParams};
use crate::bias::{Baseline, BaselineParams};
use crate::content::{Content, ContentParams};
use crate::covisit::{Covisit, CovisitParams};
use crate::ease::{Ease, EaseParams};
use crate::fm::{Fm, FmParams};
use crate::knn::{Knn, KnnParams, Side};
use crate::mf::als::{Als, AlsParams};
use crate::mf::bpr::{Bpr, BprParams};
use crate::mf::hybrid::{Hybrid, HybridParams};
use crate::mf::ials::{Ials, IalsParams};
use crate::mf::lmf::{Lmf, LmfParams};
use crate::mf::nmf::{Nmf, NmfParams};
use crate::mf::svd::{Svd, SvdParams};
use crate::mf::svdpp::{Svdpp, SvdppParams};
use crate::rp3::{Rp3, Rp3Params};
use crate::slope_one::{SlopeOne, SlopeOneParams};

/// A model and its parameters, as written in model files (TOML or JSON) and manifests.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "model", rename_all = "kebab-case", deny_unknown_fields)]
pub enum ModelSpec {
    /// Uniformly random ranking: the floor every model must beat.
    Random(RandomParams),
    /// Most popular items (by count, rating sum or time-decayed trend).
    Popularity(PopularityParams),
    /// μ + b_u + b_i (Surprise's BaselineOnly), fitted by ALS or SGD.
    Baseline(BaselineParams),
    /// User-based neighbourhood model.
    UserKnn(KnnParams),
    /// Item-based neighbourhood model.
    ItemKnn(KnnParams),
    /// Slope One (weighted by default; unweighted is Surprise's).
    SlopeOne(SlopeOneParams),
    /// Content-based: TF-IDF/one-hot item vectors, user profiles, cosine.
    Content(ContentParams),
    /// Item-to-item co-visitation from sessions or cut histories.
    Covisit(CovisitParams),
    /// EASE^R closed-form item-item model.
    Ease(EaseParams),
    /// RP3β random-walk item-item model.
    Rp3beta(Rp3Params),
    /// Biased MF by SGD (Surprise's SVD; `biased = false` is probabilistic MF).
    Svd(SvdParams),
    /// SVD++ (Koren 2008).
    Svdpp(SvdppParams),
    /// Non-negative MF (Surprise's NMF).
    Nmf(NmfParams),
    /// Explicit ALS with biases and weighted-λ.
    Als(AlsParams),
    /// Implicit-feedback ALS (Hu, Koren & Volinsky).
    Ials(IalsParams),
    /// Bayesian personalised ranking.
    Bpr(BprParams),
    /// Logistic MF (Johnson 2014).
    Lmf(LmfParams),
    /// LightFM-style hybrid MF over identity and metadata features (WARP, k-OS WARP, BPR or
    /// BCE with sampled negatives).
    Hybrid(HybridParams),
    /// Factorization machine (Rendle 2010) over user and item features.
    Fm(FmParams),
    /// A model of a family defined in another crate and plugged in with [`register`] (the
    /// neural networks of reco-neural). Built by [`ModelSpec::from_value`], written by
    /// [`ModelSpec::to_value`]; serde's derive does not see it.
    #[serde(skip)]
    Plugin(PluginSpec),
}

/// The specification of a plugged-in model: its kind and its whole JSON object (`model` key
/// included), which the family parses and validates itself.
#[derive(Clone)]
pub struct PluginSpec {
    /// The family that answers to the kind.
    pub family: &'static dyn Family,
    /// The `model` name.
    pub kind: &'static str,
    /// The whole specification object.
    pub value: serde_json::Value,
}

impl PartialEq for PluginSpec {
    fn eq(&self, other: &Self) -> bool {
        same_family(self.family, other.family) && self.value == other.value
    }
}

impl std::fmt::Debug for PluginSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PluginSpec({})", self.value)
    }
}

fn same_family(a: &dyn Family, b: &dyn Family) -> bool {
    std::ptr::addr_eq(a as *const dyn Family, b as *const dyn Family)
}

/// A model family that lives outside this crate, so that its heavy dependencies (a neural
/// network library) stay out of the core build. The binary registers it once at start-up; from
/// then on its kinds parse, fit, save and load like the built-in ones.
pub trait Family: Send + Sync {
    /// The `model` names the family answers to.
    fn kinds(&self) -> &'static [&'static str];
    /// Checks a specification (the whole object, `model` key included).
    fn validate(&self, spec: &serde_json::Value) -> Result<()>;
    /// Whether the model ranks items (see [`ModelSpec::ranks`]).
    fn ranks(&self, spec: &serde_json::Value) -> bool;
    /// Fits a model.
    fn fit(
        &self,
        spec: &serde_json::Value,
        data: &Dataset,
        opts: &FitOptions<'_>,
    ) -> Result<Box<dyn Model>>;
    /// Rebuilds a fitted model from the state its [`Model::state`] wrote.
    fn restore(&self, spec: &serde_json::Value, state: &[u8]) -> Result<Box<dyn Model>>;
}

static FAMILIES: std::sync::RwLock<Vec<&'static dyn Family>> = std::sync::RwLock::new(Vec::new());

/// Plugs in a model family; registering the same family twice is harmless, and a kind already
/// taken (by a built-in model or another family) is refused.
pub fn register(family: &'static dyn Family) -> Result<()> {
    let mut list = FAMILIES.write().unwrap_or_else(|e| e.into_inner());
    if list.iter().any(|f| same_family(*f, family)) {
        return Ok(());
    }
    for &kind in family.kinds() {
        let builtin = serde_json::from_value::<ModelSpec>(serde_json::json!({ "model": kind }));
        let taken_by_builtin =
            !matches!(&builtin, Err(e) if e.to_string().starts_with("unknown variant"));
        if taken_by_builtin || plugin_family(&list, kind).is_some() {
            return Err(reco_core::Error::param(
                "model",
                format!("{kind:?} is already a model kind"),
            ));
        }
    }
    list.push(family);
    Ok(())
}

fn plugin_family(
    list: &[&'static dyn Family],
    kind: &str,
) -> Option<(&'static dyn Family, &'static str)> {
    list.iter()
        .find_map(|f| f.kinds().iter().find(|k| **k == kind).map(|k| (*f, *k)))
}

impl ModelSpec {
    /// The model's family name (`popularity`, `random`, …).
    pub fn kind(&self) -> &'static str {
        match self {
            ModelSpec::Random(_) => "random",
            ModelSpec::Popularity(_) => "popularity",
            ModelSpec::Baseline(_) => "baseline",
            ModelSpec::UserKnn(_) => "user-knn",
            ModelSpec::ItemKnn(_) => "item-knn",
            ModelSpec::SlopeOne(_) => "slope-one",
            ModelSpec::Content(_) => "content",
            ModelSpec::Covisit(_) => "covisit",
            ModelSpec::Ease(_) => "ease",
            ModelSpec::Rp3beta(_) => "rp3beta",
            ModelSpec::Svd(_) => "svd",
            ModelSpec::Svdpp(_) => "svdpp",
            ModelSpec::Nmf(_) => "nmf",
            ModelSpec::Als(_) => "als",
            ModelSpec::Ials(_) => "ials",
            ModelSpec::Bpr(_) => "bpr",
            ModelSpec::Lmf(_) => "lmf",
            ModelSpec::Hybrid(_) => "hybrid",
            ModelSpec::Fm(_) => "fm",
            ModelSpec::Plugin(p) => p.kind,
        }
    }

    /// True when the model is meant to rank items (top-N); false for pure rating predictors and
    /// neighbourhood models on co-rated similarities, whose purpose is rating prediction.
    pub fn ranks(&self) -> bool {
        match self {
            ModelSpec::Random(_)
            | ModelSpec::Baseline(_)
            | ModelSpec::SlopeOne(_)
            | ModelSpec::Svd(_)
            | ModelSpec::Svdpp(_)
            | ModelSpec::Nmf(_)
            | ModelSpec::Als(_) => false,
            ModelSpec::Ials(_) | ModelSpec::Bpr(_) | ModelSpec::Lmf(_) | ModelSpec::Hybrid(_) => {
                true
            }
            ModelSpec::Fm(p) => p.task == crate::fm::FmTask::Classification,
            ModelSpec::Plugin(p) => p.family.ranks(&p.value),
            ModelSpec::Popularity(_)
            | ModelSpec::Content(_)
            | ModelSpec::Covisit(_)
            | ModelSpec::Ease(_)
            | ModelSpec::Rp3beta(_) => true,
            ModelSpec::UserKnn(p) | ModelSpec::ItemKnn(p) => {
                !p.similarity.co_rated() && !p.rank_by_rating
            }
        }
    }

    /// Checks the parameters, one error per broken rule.
    pub fn validate(&self) -> Result<()> {
        match self {
            ModelSpec::Random(_) => Ok(()),
            ModelSpec::Popularity(p) => p.validate(),
            ModelSpec::Baseline(p) => p.validate(),
            ModelSpec::UserKnn(p) | ModelSpec::ItemKnn(p) => p.validate(),
            ModelSpec::SlopeOne(_) => Ok(()),
            ModelSpec::Content(p) => p.validate(),
            ModelSpec::Covisit(p) => p.validate(),
            ModelSpec::Ease(_) | ModelSpec::Rp3beta(_) => Ok(()),
            ModelSpec::Svd(p) => p.validate(),
            ModelSpec::Ials(p) => p.validate(),
            ModelSpec::Hybrid(p) => p.validate(),
            ModelSpec::Fm(p) => p.validate(),
            ModelSpec::Plugin(p) => p.family.validate(&p.value),
            // These check their parameters when fitting.
            ModelSpec::Nmf(_)
            | ModelSpec::Als(_)
            | ModelSpec::Bpr(_)
            | ModelSpec::Svdpp(_)
            | ModelSpec::Lmf(_) => Ok(()),
        }
    }

    /// Validates, then trains on `data`.
    pub fn fit(&self, data: &Dataset, opts: &FitOptions<'_>) -> Result<Box<dyn Model>> {
        self.validate()?;
        Ok(match self {
            ModelSpec::Random(p) => Box::new(RandomModel::fit(p, data, opts)?),
            ModelSpec::Popularity(p) => Box::new(Popularity::fit(p, data, opts)?),
            ModelSpec::Baseline(p) => Box::new(Baseline::fit(p, data, opts)?),
            ModelSpec::UserKnn(p) => Box::new(Knn::fit(p, Side::User, data, opts)?),
            ModelSpec::ItemKnn(p) => Box::new(Knn::fit(p, Side::Item, data, opts)?),
            ModelSpec::SlopeOne(p) => Box::new(SlopeOne::fit(p, data, opts)?),
            ModelSpec::Content(p) => Box::new(Content::fit(p, data, opts)?),
            ModelSpec::Covisit(p) => Box::new(Covisit::fit(p, data, opts)?),
            ModelSpec::Ease(p) => Box::new(Ease::fit(p, data, opts)?),
            ModelSpec::Rp3beta(p) => Box::new(Rp3::fit(p, data, opts)?),
            ModelSpec::Svd(p) => Box::new(Svd::fit(p, data, opts)?),
            ModelSpec::Svdpp(p) => Box::new(Svdpp::fit(p, data, opts)?),
            ModelSpec::Nmf(p) => Box::new(Nmf::fit(p, data, opts)?),
            ModelSpec::Als(p) => Box::new(Als::fit(p, data, opts)?),
            ModelSpec::Ials(p) => Box::new(Ials::fit(p, data, opts)?),
            ModelSpec::Bpr(p) => Box::new(Bpr::fit(p, data, opts)?),
            ModelSpec::Lmf(p) => Box::new(Lmf::fit(p, data, opts)?),
            ModelSpec::Hybrid(p) => Box::new(Hybrid::fit(p, data, opts)?),
            ModelSpec::Fm(p) => Box::new(Fm::fit(p, data, opts)?),
            ModelSpec::Plugin(p) => p.family.fit(&p.value, data, opts)?,
        })
    }

    /// Rebuilds a fitted model from the state written by [`Model::state`].
    pub fn restore(&self, state: &[u8]) -> Result<Box<dyn Model>> {
        match self {
            ModelSpec::Random(_) => restore::<RandomModel>(state),
            ModelSpec::Popularity(_) => restore::<Popularity>(state),
            ModelSpec::Baseline(_) => restore::<Baseline>(state),
            ModelSpec::UserKnn(_) | ModelSpec::ItemKnn(_) => restore::<Knn>(state),
            ModelSpec::SlopeOne(_) => restore::<SlopeOne>(state),
            ModelSpec::Content(_) => restore::<Content>(state),
            ModelSpec::Covisit(_) => restore::<Covisit>(state),
            ModelSpec::Ease(_) => restore::<Ease>(state),
            ModelSpec::Rp3beta(_) => restore::<Rp3>(state),
            ModelSpec::Svd(_) => restore::<Svd>(state),
            ModelSpec::Svdpp(_) => restore::<Svdpp>(state),
            ModelSpec::Nmf(_) => restore::<Nmf>(state),
            ModelSpec::Als(_) => restore::<Als>(state),
            ModelSpec::Ials(_) => restore::<Ials>(state),
            ModelSpec::Bpr(_) => restore::<Bpr>(state),
            ModelSpec::Lmf(_) => restore::<Lmf>(state),
            ModelSpec::Hybrid(_) => restore::<Hybrid>(state),
            ModelSpec::Fm(_) => restore::<Fm>(state),
            ModelSpec::Plugin(p) => p.family.restore(&p.value, state),
        }
    }

    /// Parses a specification object: a registered plugin kind goes to its family (which
    /// validates it), anything else to the built-in models.
    pub fn from_value(value: serde_json::Value) -> Result<ModelSpec> {
        let kind = value
            .get("model")
            .and_then(|k| k.as_str())
            .map(str::to_string);
        let found = kind.as_deref().and_then(|k| {
            let list = FAMILIES.read().unwrap_or_else(|e| e.into_inner());
            plugin_family(&list, k)
        });
        if let Some((family, kind)) = found {
            family.validate(&value)?;
            return Ok(ModelSpec::Plugin(PluginSpec {
                family,
                kind,
                value,
            }));
        }
        serde_json::from_value(value).map_err(|e| reco_core::Error::param("model", e.to_string()))
    }

    /// The specification as a JSON object (the form [`ModelSpec::from_value`] reads).
    pub fn to_value(&self) -> Result<serde_json::Value> {
        match self {
            ModelSpec::Plugin(p) => Ok(p.value.clone()),
            s => {
                serde_json::to_value(s).map_err(|e| reco_core::Error::param("model", e.to_string()))
            }
        }
    }
}

/// The names a model's state file may have in an artifact.
pub const STATE_FILES: [&str; 2] = ["model.bin", "model.safetensors"];

fn restore<T: Model + serde::de::DeserializeOwned + 'static>(
    state: &[u8],
) -> Result<Box<dyn Model>> {
    Ok(Box::new(decode::<T>(state, "model.bin")?))
}

/// Implements [`Model`] for a model whose parameters sit in `self.params` and whose state is its
/// serde form.
macro_rules! impl_model {
    ($ty:ty, $variant:ident $(, $($extra:tt)*)?) => {
        impl $crate::spec::Model for $ty {
            fn spec(&self) -> $crate::spec::ModelSpec {
                $crate::spec::ModelSpec::$variant(self.params.clone())
            }
            fn state(&self) -> reco_core::Result<Vec<u8>> {
                reco_core::artifact::encode(self)
            }
            $($($extra)*)?
        }
    };
}
pub(crate) use impl_model;

/// A fitted model: it recommends, and it can describe and serialise itself.
pub trait Model: Recommender {
    /// The specification it was fitted from.
    fn spec(&self) -> ModelSpec;
    /// Its fitted state, for artifacts.
    fn state(&self) -> Result<Vec<u8>>;
    /// (ε, δ) of the differential-privacy guarantee per rating, for privately trained models.
    fn privacy(&self) -> Option<(f64, f64)> {
        None
    }
    /// Name of the artifact file that holds [`Model::state`]: `model.bin` (postcard) unless the
    /// model writes another format (`model.safetensors` for neural networks).
    fn state_file(&self) -> &'static str {
        STATE_FILES[0]
    }
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
