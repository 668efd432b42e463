//! # reco-models
//!
//! The classical algorithms of reco, one module per family, and [`ModelSpec`]: the one
//! serialisable description of a model (`{"model": "popularity", "weighting": "count"}`) that
//! the CLI, model files, artifacts and the evaluator share. `ModelSpec::fit` validates the
//! parameters, trains, and returns an immutable [`Model`]; [`save`] and [`load`] write and read
//! checksummed artifacts.
#![warn(missing_docs)]

pub mod baseline;
pub mod bias;
pub mod content;
pub mod covisit;
pub mod ease;
mod explain;
pub mod featurize;
pub mod fm;
pub mod knn;
pub mod mf;
mod neighbours;
mod persist;
pub mod rp3;
pub mod slope_one;
mod spec;
pub mod testing;

pub use baseline::{PopularityParams, RandomParams, Weighting};
pub use persist::{load, save, Catalog, LoadedModel};
pub use spec::{register, Family, Model, ModelSpec, PluginSpec};
