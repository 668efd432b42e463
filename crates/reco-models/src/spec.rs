//! The model contract: a [`Kind`] names a model, its typed parameters, and how to validate,
//! fit and restore it; a [`ModelSpec`] is one kind with its parameters; the
//! [registry](crate::registry) finds a kind by name.
//!
//! Every path goes through the kind's own types: parsing a specification reads the kind's
//! `Params` with serde and validates them, fitting and restoring call the kind's functions on
//! those same typed parameters, and serialising writes them back. There is no second copy of
//! a specification (typed and JSON) that could drift, and no dispatch on strings after the
//! registry lookup.

use std::any::Any;
use std::fmt::Debug;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use reco_core::model::{FitOptions, Recommender};
use reco_core::{Dataset, Error, Result};

/// What a kind's fitted models can do, declared from its parameters before anything is
/// trained, so that a request a model cannot serve (a rating metric for a ranking model, an
/// ANN source over a model without vectors) fails before training starts. The behaviour suite
/// checks each declaration against the fitted model's answers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Capabilities {
    /// The model is meant to rank items (top-N); false for pure rating predictors and
    /// neighbourhood models on co-rated similarities, whose purpose is rating prediction.
    pub ranks: bool,
    /// The model predicts ratings ([`Recommender::as_rating_predictor`]).
    pub rates: bool,
    /// The model answers "items like this one" ([`Recommender::as_similar_items`]).
    pub similar_items: bool,
    /// The model has user and item vectors ([`Recommender::as_embeddings`]).
    pub embeddings: bool,
    /// The list is built as a whole (candidate budgets, re-rankers such as MMR), so a list
    /// under a filter is not the filtered top of [`Recommender::score`]: pass filters to
    /// [`Recommender::recommend`] rather than filtering a longer list afterwards.
    pub listwise: bool,
}

impl std::ops::BitOr for Capabilities {
    type Output = Capabilities;

    /// What either can do.
    fn bitor(self, o: Capabilities) -> Capabilities {
        Capabilities {
            ranks: self.ranks || o.ranks,
            rates: self.rates || o.rates,
            similar_items: self.similar_items || o.similar_items,
            embeddings: self.embeddings || o.embeddings,
            listwise: self.listwise || o.listwise,
        }
    }
}

/// The size of the data a fit will see, for memory estimates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    /// Users in the id space.
    pub users: usize,
    /// Items in the id space.
    pub items: usize,
    /// Stored interactions.
    pub interactions: usize,
}

impl Shape {
    /// The shape of `data`.
    pub fn of(data: &Dataset) -> Shape {
        Shape {
            users: data.n_users(),
            items: data.n_items(),
            interactions: data.interactions.nnz(),
        }
    }
}

/// An estimate of the peak memory a fit needs, and the parameter that drives it (what to
/// lower when it is too much). Estimates are in `f64` bytes so that absurd parameters give
/// absurd numbers rather than overflow.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Footprint {
    /// Estimated peak bytes beyond the dataset itself.
    pub bytes: f64,
    /// The parameter to lower (`factors`, `k`), or a description of the data.
    pub driver: &'static str,
}

impl Footprint {
    /// What every fit costs at least: a few working copies of the interactions (indices,
    /// values, the transposed copy some models build).
    pub fn data(shape: &Shape) -> Footprint {
        Footprint {
            bytes: shape.interactions as f64 * 24.0 + (shape.users + shape.items) as f64 * 16.0,
            driver: "the data size",
        }
    }

    /// Dense `factors`-long vectors for every user and item, `copies` times (the vectors,
    /// gradients or solver buffers, a best-so-far snapshot), on top of the data.
    pub fn factors(shape: &Shape, factors: usize, copies: f64) -> Footprint {
        let rows = (shape.users + shape.items) as f64;
        // Least-squares solvers (ALS, iALS) also hold factors × factors systems, one per
        // worker and a shared Gram matrix.
        let k = factors as f64;
        let systems = k * k * 8.0 * (rayon::current_num_threads() as f64 + 2.0);
        Footprint {
            bytes: Footprint::data(shape).bytes + rows * k * 4.0 * copies + systems,
            driver: "factors",
        }
    }

    /// `per_row` neighbours kept for each of `rows` users or items (index and score), plus a
    /// dense score row per worker thread.
    pub fn neighbours(
        shape: &Shape,
        rows: usize,
        per_row: usize,
        driver: &'static str,
    ) -> Footprint {
        let kept = rows as f64 * (per_row as f64).min(rows.max(1) as f64) * 8.0;
        let workers = rayon::current_num_threads() as f64 * rows as f64 * 8.0;
        Footprint {
            bytes: Footprint::data(shape).bytes + kept + workers,
            driver,
        }
    }

    /// The larger of two estimates (parts that do not live at the same time).
    pub fn max(self, o: Footprint) -> Footprint {
        if o.bytes > self.bytes {
            o
        } else {
            self
        }
    }
}

/// One model kind: the unit that model files, artifacts and the CLI (and any server or
/// bindings) name. Adding a kind is implementing this trait in the model's file and adding one
/// [`KindEntry::of`] line to a registry list; the behaviour suite, the spec round trip and the
/// artifact fixtures then cover it without further edits.
pub trait Kind: 'static {
    /// The name in model files (`"model": "svd"`).
    const NAME: &'static str;
    /// One line saying what the model is, for listings.
    const SUMMARY: &'static str;
    /// Parameters renamed since the previous release, as `(old path, new name)`: the old name
    /// is accepted with a warning. A path reaches into nested objects (`dp.batch`) and into
    /// every element of an array (`sources[].last`); the new name replaces its last segment.
    const RENAMED: &'static [(&'static str, &'static str)] = &[];
    /// The parameters, as written in model files (every field with a default).
    type Params: Clone + Debug + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static;
    /// The fitted model.
    type Fitted: Model;

    /// Reads the parameters from a JSON object without the `model` key. The default is serde;
    /// a kind overrides it when its defaults differ from its parameter type's.
    fn parse(value: serde_json::Value) -> serde_json::Result<Self::Params> {
        serde_json::from_value(value)
    }
    /// Checks every rule the parameters must follow, one error per broken rule, before any
    /// training starts.
    fn validate(params: &Self::Params) -> Result<()>;
    /// What the fitted model will be able to do.
    fn capabilities(params: &Self::Params) -> Capabilities;
    /// The memory a fit on data of `shape` will need, checked against the
    /// [budget](reco_core::resources) before training starts. The default covers models whose
    /// memory grows with the data only.
    fn footprint(params: &Self::Params, shape: &Shape) -> Footprint {
        let _ = params;
        Footprint::data(shape)
    }
    /// Trains on `data` (the parameters have been validated).
    fn fit(params: &Self::Params, data: &Dataset, opts: &FitOptions<'_>) -> Result<Self::Fitted>;
    /// Rebuilds a fitted model from the state its [`Model::state`] wrote, for the id space
    /// `shape` (users and items of the artifact's id maps). The state comes from a file: it
    /// must be checked against `shape` and itself (see [`CheckState`]) before it is used.
    fn restore(params: &Self::Params, state: &[u8], shape: &Shape) -> Result<Self::Fitted>;
    /// Configurations that exercise the kind's main options and train in about a second on
    /// 24k interactions: the behaviour suite and the artifact fixtures run each, and the docs
    /// show the first. Never empty.
    fn examples() -> Vec<Self::Params>;
}

/// A kind as the registry holds it: its names and its functions with the parameter type
/// erased. Built at compile time by [`KindEntry::of`].
pub struct KindEntry {
    /// [`Kind::NAME`].
    pub name: &'static str,
    /// [`Kind::SUMMARY`].
    pub summary: &'static str,
    /// [`Kind::RENAMED`].
    pub renamed: &'static [(&'static str, &'static str)],
    parse: fn(serde_json::Value) -> Result<ModelSpec>,
    examples: fn() -> Vec<ModelSpec>,
}

impl KindEntry {
    /// The entry of kind `K`.
    pub const fn of<K: Kind>() -> KindEntry {
        KindEntry {
            name: K::NAME,
            summary: K::SUMMARY,
            renamed: K::RENAMED,
            parse: parse_kind::<K>,
            examples: examples_of::<K>,
        }
    }

    /// Parses and validates a specification object of this kind (the `model` key, if present,
    /// is ignored). Renamed parameters are accepted with a [warning](reco_core::warning).
    pub fn parse(&self, value: serde_json::Value) -> Result<ModelSpec> {
        (self.parse)(value)
    }

    /// The kind's [`Kind::examples`].
    pub fn examples(&self) -> Vec<ModelSpec> {
        (self.examples)()
    }
}

impl Debug for KindEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "KindEntry({})", self.name)
    }
}

fn entry<K: Kind>() -> &'static KindEntry {
    const { &KindEntry::of::<K>() }
}

fn parse_kind<K: Kind>(value: serde_json::Value) -> Result<ModelSpec> {
    let serde_json::Value::Object(mut map) = value else {
        return Err(Error::param(
            K::NAME,
            format!("a model specification is an object, not {value}"),
        ));
    };
    map.remove("model");
    let mut value = serde_json::Value::Object(map);
    for &(old, new) in K::RENAMED {
        let path: Vec<&str> = old.split('.').collect();
        rename(&mut value, &path, new, K::NAME, old)?;
    }
    check_sizes(&value, K::NAME)?;
    let params = K::parse(value).map_err(|e| Error::param(K::NAME, e.to_string()))?;
    K::validate(&params)?;
    Ok(ModelSpec::new::<K>(params))
}

/// Renames the key at `path` (segments; `name[]` walks every element of an array) to `new`,
/// with a warning; giving both names is an error.
fn rename(
    value: &mut serde_json::Value,
    path: &[&str],
    new: &str,
    kind: &'static str,
    full: &str,
) -> Result<()> {
    let Some((head, rest)) = path.split_first() else {
        return Ok(());
    };
    if rest.is_empty() {
        let Some(map) = value.as_object_mut() else {
            return Ok(());
        };
        if let Some(v) = map.remove(*head) {
            let new_full = match full.rsplit_once('.') {
                Some((parent, _)) => format!("{parent}.{new}"),
                None => new.to_string(),
            };
            if map.contains_key(new) {
                return Err(Error::param(
                    kind,
                    format!("`{full}` is the old name of `{new_full}`; give only `{new_full}`"),
                ));
            }
            reco_core::warning::warn(format!(
                "{kind}: parameter `{full}` is now called `{new_full}`; the old name will be \
                 refused in the next release"
            ));
            map.insert(new.to_string(), v);
        }
        return Ok(());
    }
    let (name, each) = match head.strip_suffix("[]") {
        Some(n) => (n, true),
        None => (*head, false),
    };
    match value.get_mut(name) {
        Some(serde_json::Value::Array(items)) if each => {
            for x in items {
                rename(x, rest, new, kind, full)?;
            }
            Ok(())
        }
        Some(child) if !each => rename(child, rest, new, kind, full),
        _ => Ok(()),
    }
}

/// Upper bounds of the size parameters, by their one name across kinds. Far above any useful
/// setting, they stop sizes that would overflow index arithmetic or run for years before the
/// typed parameters reach a model; the memory estimate then judges what is left against the
/// machine.
pub const SIZE_LIMITS: &[(&str, u64)] = &[
    ("factors", 1 << 16),
    ("embedding_dim", 1 << 16),
    ("hidden", 1 << 16),
    ("k", 1 << 24),
    ("max_neighbours", 1 << 24),
    ("epochs", 100_000),
    ("batch_size", 1 << 24),
    ("negatives", 1 << 16),
    ("user_clusters", 1 << 20),
    ("item_clusters", 1 << 20),
    ("max_features", 1 << 28),
    ("patience", 100_000),
    ("budget", 1 << 24),
    ("layers", 1 << 16),
    ("numeric_bins", 1 << 16),
    ("text_buckets", 1 << 24),
    ("recent_items", 1 << 16),
];

/// Checks the size parameters of a specification object against [`SIZE_LIMITS`], at the top
/// level and in nested objects that are not themselves model specifications (those are
/// checked when they are parsed).
fn check_sizes(value: &serde_json::Value, kind: &'static str) -> Result<()> {
    let Some(map) = value.as_object() else {
        return Ok(());
    };
    for (key, v) in map {
        if let Some(&(_, max)) = SIZE_LIMITS.iter().find(|(k, _)| k == key) {
            let over = |n: &serde_json::Number| match n.as_u64() {
                Some(x) => x > max,
                None => n.as_f64().is_some_and(|x| x > max as f64),
            };
            let too_big = match v {
                serde_json::Value::Number(n) => over(n),
                // Layer widths: every element.
                serde_json::Value::Array(a) => a.iter().any(|x| x.as_number().is_some_and(over)),
                _ => false,
            };
            if too_big {
                return Err(Error::param(
                    kind,
                    format!("`{key}` is {v}, above its limit of {max}; lower it"),
                ));
            }
        }
        match v {
            serde_json::Value::Object(o) if !o.contains_key("model") => check_sizes(v, kind)?,
            serde_json::Value::Array(a) => {
                for x in a.iter().filter(|x| x.get("model").is_none()) {
                    check_sizes(x, kind)?;
                }
            }
            _ => {}
        }
    }
    Ok(())
}

fn examples_of<K: Kind>() -> Vec<ModelSpec> {
    K::examples().into_iter().map(ModelSpec::new::<K>).collect()
}

/// A kind's parameters behind the kind's own functions.
trait SpecObject: Send + Sync + Debug {
    fn entry(&self) -> &'static KindEntry;
    fn validate(&self) -> Result<()>;
    fn capabilities(&self) -> Capabilities;
    fn footprint(&self, shape: &Shape) -> Footprint;
    fn fit(&self, data: &Dataset, opts: &FitOptions<'_>) -> Result<Box<dyn Model>>;
    fn restore(&self, state: &[u8], shape: &Shape) -> Result<Box<dyn Model>>;
    fn params_value(&self) -> Result<serde_json::Value>;
    fn as_any(&self) -> &dyn Any;
    fn same(&self, other: &dyn SpecObject) -> bool;
}

struct Typed<K: Kind>(K::Params);

impl<K: Kind> Debug for Typed<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}({:?})", K::NAME, self.0)
    }
}

impl<K: Kind> SpecObject for Typed<K> {
    fn entry(&self) -> &'static KindEntry {
        entry::<K>()
    }
    fn validate(&self) -> Result<()> {
        K::validate(&self.0)
    }
    fn capabilities(&self) -> Capabilities {
        K::capabilities(&self.0)
    }
    fn footprint(&self, shape: &Shape) -> Footprint {
        K::footprint(&self.0, shape)
    }
    fn fit(&self, data: &Dataset, opts: &FitOptions<'_>) -> Result<Box<dyn Model>> {
        Ok(Box::new(K::fit(&self.0, data, opts)?))
    }
    fn restore(&self, state: &[u8], shape: &Shape) -> Result<Box<dyn Model>> {
        Ok(Box::new(K::restore(&self.0, state, shape)?))
    }
    fn params_value(&self) -> Result<serde_json::Value> {
        serde_json::to_value(&self.0).map_err(|e| Error::param(K::NAME, e.to_string()))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
    fn same(&self, other: &dyn SpecObject) -> bool {
        other
            .as_any()
            .downcast_ref::<Typed<K>>()
            .is_some_and(|o| o.0 == self.0)
    }
}

/// A model kind with its parameters: what model files, manifests, pipelines and requests
/// hold. Written as an object with the kind under `model` (`{"model": "svd", "factors": 50}`),
/// in JSON or TOML; parsing validates.
#[derive(Clone)]
pub struct ModelSpec {
    inner: Arc<dyn SpecObject>,
}

impl ModelSpec {
    /// The specification of kind `K` with `params` (not validated: [`ModelSpec::fit`] does).
    pub fn new<K: Kind>(params: K::Params) -> ModelSpec {
        ModelSpec {
            inner: Arc::new(Typed::<K>(params)),
        }
    }

    /// The parameters, when the specification is of kind `K`.
    pub fn params<K: Kind>(&self) -> Option<&K::Params> {
        self.inner.as_any().downcast_ref::<Typed<K>>().map(|t| &t.0)
    }

    /// The kind's name (`popularity`, `svd`, …).
    pub fn kind(&self) -> &'static str {
        self.inner.entry().name
    }

    /// The kind's registry entry.
    pub fn entry(&self) -> &'static KindEntry {
        self.inner.entry()
    }

    /// What the fitted model will be able to do.
    pub fn capabilities(&self) -> Capabilities {
        self.inner.capabilities()
    }

    /// True when the model is meant to rank items (see [`Capabilities::ranks`]).
    pub fn ranks(&self) -> bool {
        self.capabilities().ranks
    }

    /// Checks the parameters, one error per broken rule.
    pub fn validate(&self) -> Result<()> {
        self.inner.validate()
    }

    /// The estimated peak memory of a fit on data of `shape`.
    pub fn footprint(&self, shape: &Shape) -> Footprint {
        self.inner.footprint(shape)
    }

    /// Validates, checks the memory estimate against the budget, then trains on `data`.
    pub fn fit(&self, data: &Dataset, opts: &FitOptions<'_>) -> Result<Box<dyn Model>> {
        self.inner.validate()?;
        let shape = Shape::of(data);
        let f = self.footprint(&shape);
        reco_core::resources::check(
            || {
                format!(
                    "{} on {} users × {} items ({} interactions)",
                    self.kind(),
                    shape.users,
                    shape.items,
                    shape.interactions
                )
            },
            f.bytes,
            f.driver,
        )?;
        self.inner.fit(data, opts)
    }

    /// This specification as a fitting function whose result is a plain [`Recommender`]: what
    /// an evaluator (`reco_eval::Candidate::fit`) takes.
    pub fn into_fit_fn(self) -> Box<FitRecommender> {
        Box::new(move |data: &Dataset, opts: &FitOptions<'_>| {
            // Trait upcasting: a fitted Model is a Recommender.
            let m: Box<dyn Recommender> = self.fit(data, opts)?;
            Ok(m)
        })
    }

    /// Rebuilds a fitted model from the state written by [`Model::state`], for an id space of
    /// `shape`; a state that does not fit it (or itself) is refused as a corrupt artifact.
    pub fn restore(&self, state: &[u8], shape: &Shape) -> Result<Box<dyn Model>> {
        let model = self.inner.restore(state, shape)?;
        if model.n_items() != shape.items {
            return Err(corrupt_state(format!(
                "the model scores {} items, the artifact has {}",
                model.n_items(),
                shape.items
            )));
        }
        Ok(model)
    }

    /// Parses and validates a specification object: its `model` key names a registered kind.
    pub fn from_value(value: serde_json::Value) -> Result<ModelSpec> {
        let kind = match value.get("model") {
            Some(serde_json::Value::String(k)) => k.clone(),
            Some(other) => {
                return Err(Error::param(
                    "model",
                    format!("the model kind is a string, not {other}"),
                ))
            }
            None => {
                return Err(Error::param(
                    "model",
                    "the specification has no `model` key naming its kind",
                ))
            }
        };
        crate::registry::lookup(&kind)?.parse(value)
    }

    /// Parses a specification from JSON text.
    pub fn from_json(text: &str) -> Result<ModelSpec> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| Error::param("model", e.to_string()))?;
        ModelSpec::from_value(value)
    }

    /// The specification as a JSON object (the form [`ModelSpec::from_value`] reads), every
    /// parameter included with its value.
    pub fn to_value(&self) -> Result<serde_json::Value> {
        let mut v = self.inner.params_value()?;
        let Some(map) = v.as_object_mut() else {
            return Err(Error::param(
                self.kind(),
                "parameters do not serialise as an object",
            ));
        };
        map.insert("model".into(), self.kind().into());
        Ok(v)
    }
}

impl PartialEq for ModelSpec {
    fn eq(&self, other: &Self) -> bool {
        self.inner.same(other.inner.as_ref())
    }
}

impl Debug for ModelSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.inner.fmt(f)
    }
}

impl Serialize for ModelSpec {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        self.to_value()
            .map_err(serde::ser::Error::custom)?
            .serialize(s)
    }
}

impl<'de> Deserialize<'de> for ModelSpec {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let value = strict_value(d)?;
        ModelSpec::from_value(value).map_err(serde::de::Error::custom)
    }
}

/// Reads any self-describing format (TOML, JSON, …) into a JSON value, refusing the numbers
/// JSON cannot hold: a TOML `nan` or `inf` would otherwise become `null`, and an optional
/// parameter would silently take its default.
pub fn strict_value<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<serde_json::Value, D::Error> {
    d.deserialize_any(StrictVisitor)
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = serde_json::Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a value with finite numbers")
    }
    fn visit_bool<E>(self, v: bool) -> std::result::Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_i64<E>(self, v: i64) -> std::result::Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_u64<E>(self, v: u64) -> std::result::Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_f64<E: serde::de::Error>(self, v: f64) -> std::result::Result<Self::Value, E> {
        serde_json::Number::from_f64(v)
            .map(serde_json::Value::Number)
            .ok_or_else(|| E::custom(format!("{v} is not a finite number")))
    }
    fn visit_str<E>(self, v: &str) -> std::result::Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_string<E>(self, v: String) -> std::result::Result<Self::Value, E> {
        Ok(v.into())
    }
    fn visit_unit<E>(self) -> std::result::Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_none<E>(self) -> std::result::Result<Self::Value, E> {
        Ok(serde_json::Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<Self::Value, D::Error> {
        strict_value(d)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut out = Vec::new();
        while let Some(x) = seq.next_element_seed(StrictSeed)? {
            out.push(x);
        }
        Ok(out.into())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(
        self,
        mut map: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut out = serde_json::Map::new();
        while let Some(k) = map.next_key::<String>()? {
            let v = map
                .next_value_seed(StrictSeed)
                .map_err(|e| serde::de::Error::custom(format!("`{k}`: {e}")))?;
            out.insert(k, v);
        }
        Ok(out.into())
    }
}

struct StrictSeed;

impl<'de> serde::de::DeserializeSeed<'de> for StrictSeed {
    type Value = serde_json::Value;
    fn deserialize<D: serde::Deserializer<'de>>(
        self,
        d: D,
    ) -> std::result::Result<Self::Value, D::Error> {
        strict_value(d)
    }
}

/// The names a model's state file may have in an artifact.
pub const STATE_FILES: [&str; 2] = ["model.bin", "model.safetensors"];

/// What a model state read from a file must satisfy before it is used: its arrays fit
/// together and the id space `shape` (every user and item index the artifact can pass is
/// inside them; every stored index points inside its array). A corrupt or edited artifact then
/// fails to load with an error instead of indexing out of bounds, or looping, when it is asked
/// for recommendations.
pub trait CheckState {
    /// `Err` says what does not fit.
    fn check_state(&self, shape: &Shape) -> std::result::Result<(), String>;
}

/// The error for a model state that does not fit its artifact.
pub fn corrupt_state(message: String) -> Error {
    Error::Artifact {
        path: "model.bin".into(),
        message: format!("{message}: the file is corrupt or was modified; retrain the model"),
    }
}

/// Decodes a postcard state written by [`Model::state`] and checks it against the artifact's
/// id space (the common [`Kind::restore`]).
pub fn restore_postcard<T: DeserializeOwned + CheckState>(
    state: &[u8],
    shape: &Shape,
) -> Result<T> {
    let t = reco_core::artifact::decode::<T>(state, "model.bin")?;
    t.check_state(shape).map_err(corrupt_state)?;
    Ok(t)
}

/// [`restore_postcard`] for a model state that embeds its parameters: they must equal the
/// parameters of the specification in the manifest (`params`), which were parsed with their
/// limits and validated; a state whose embedded copy differs was edited or damaged.
pub fn restore_state<T, P>(
    params: &P,
    state: &[u8],
    shape: &Shape,
    embedded: impl Fn(&T) -> &P,
) -> Result<T>
where
    T: DeserializeOwned + CheckState,
    P: PartialEq,
{
    let t: T = restore_postcard(state, shape)?;
    if embedded(&t) != params {
        return Err(corrupt_state(
            "the parameters in the state differ from the specification in the manifest".into(),
        ));
    }
    Ok(t)
}

/// Helpers for [`CheckState`] implementations.
pub mod check {
    /// `Err` unless `len == want`.
    pub fn len(what: &str, len: usize, want: usize) -> Result<(), String> {
        if len == want {
            Ok(())
        } else {
            Err(format!("{what} has {len} entries where {want} are needed"))
        }
    }

    /// `Err` unless `len == rows * width` (without overflow).
    pub fn rows(what: &str, len: usize, rows: usize, width: usize) -> Result<(), String> {
        match rows.checked_mul(width) {
            Some(want) => self::len(what, len, want),
            None => Err(format!("{what}: {rows} × {width} overflows")),
        }
    }

    /// `Err` unless every index is below `bound`.
    pub fn below(what: &str, ids: &[u32], bound: usize) -> Result<(), String> {
        match ids.iter().find(|&&i| i as usize >= bound) {
            None => Ok(()),
            Some(i) => Err(format!("{what} holds index {i}, beyond {bound}")),
        }
    }

    /// `Err` unless `ptr` is a CSR index of `rows` rows over `len` values (starts at 0, never
    /// decreases, ends at `len`).
    pub fn csr<P: Copy + TryInto<usize>>(
        what: &str,
        ptr: &[P],
        rows: usize,
        len: usize,
    ) -> Result<(), String> {
        if reco_core::interactions::is_csr(ptr, rows, len) {
            Ok(())
        } else {
            Err(format!(
                "{what} is not an index of {rows} rows over {len} values"
            ))
        }
    }
}

/// Implements [`Model`] for a model whose parameters sit in `self.params`, whose kind is its
/// own type and whose state is its serde form.
macro_rules! impl_model {
    ($ty:ty $(, $($extra:tt)*)?) => {
        impl $crate::spec::Model for $ty {
            fn spec(&self) -> $crate::spec::ModelSpec {
                $crate::spec::ModelSpec::new::<$ty>(self.params.clone())
            }
            fn state(&self) -> reco_core::Result<Vec<u8>> {
                reco_core::artifact::encode(self)
            }
            $($($extra)*)?
        }
    };
}
pub(crate) use impl_model;

/// A fit that returns a plain [`Recommender`] ([`ModelSpec::into_fit_fn`]).
pub type FitRecommender =
    dyn Fn(&Dataset, &FitOptions<'_>) -> Result<Box<dyn Recommender>> + Send + Sync;

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
        let j = ModelSpec::from_json(r#"{"model":"random","seed_offset":3}"#).unwrap();
        assert_eq!(j.kind(), "random");
        let e = ModelSpec::from_json(r#"{"model":"popularity","colour":1}"#).unwrap_err();
        assert!(e.to_string().contains("colour"), "{e}");
        let e = ModelSpec::from_json(r#"{"model":"nope"}"#).unwrap_err();
        assert!(
            matches!(e, Error::UnknownKind { ref kind, .. } if kind == "nope"),
            "{e}"
        );
        assert!(e.to_string().contains("popularity"), "lists the kinds: {e}");
        assert!(ModelSpec::from_json(r#"{"factors":3}"#).is_err());
        assert!(ModelSpec::from_json(r#"{"model":3}"#).is_err());
    }

    #[test]
    fn non_finite_numbers_in_toml_are_refused_with_their_key() {
        let e = toml::from_str::<ModelSpec>("model = \"svd\"\nlearning_rate_bu = nan\n")
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("learning_rate_bu") && e.contains("not a finite number"),
            "{e}"
        );
        let e = toml::from_str::<ModelSpec>("model = \"svd\"\nregularization = inf\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("regularization") && e.contains("inf"), "{e}");
        let ok: ModelSpec = toml::from_str("model = \"svd\"\nlearning_rate_bu = 0.01\n").unwrap();
        assert_eq!(ok.kind(), "svd");
    }

    #[test]
    fn specs_of_different_kinds_or_parameters_differ() {
        let a = ModelSpec::from_json(r#"{"model":"user-knn"}"#).unwrap();
        let b = ModelSpec::from_json(r#"{"model":"item-knn"}"#).unwrap();
        let c = ModelSpec::from_json(r#"{"model":"item-knn","max_neighbours":7}"#).unwrap();
        assert_ne!(a, b, "same parameter type, different kinds");
        assert_ne!(b, c);
        assert_eq!(b, ModelSpec::from_json(r#"{"model":"item-knn"}"#).unwrap());
    }
}
