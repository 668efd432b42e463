//! # reco-models
//!
//! The classical algorithms of reco, one module per family, and the model contract every
//! family follows: a [`Kind`] (name, typed parameters, validation, capabilities, fit, restore,
//! examples), the [`registry`] of kinds (built-in ones, and families other crates plug in with
//! [`register`]), and [`ModelSpec`]: one kind with its parameters, the one description of a
//! model (`{"model": "popularity", "weighting": "count"}`) that the CLI, model files,
//! artifacts and the evaluator share (and a server or bindings would). `ModelSpec::fit` validates the parameters,
//! trains, and returns an immutable [`Model`]; [`save`] and [`load`] write and read
//! checksummed artifacts.
#![warn(missing_docs)]

pub mod baseline;
pub mod bias;
pub mod coclustering;
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
pub mod registry;
pub mod rp3;
pub mod slope_one;
mod spec;

pub use baseline::{PopularityParams, RandomParams, Weighting};
pub use persist::{from_files, load, save, save_loaded, save_with, ItemLabels, LoadedModel};
pub use registry::register;
pub use spec::{
    check, corrupt_state, restore_postcard, restore_state, strict_value, Capabilities, CheckState,
    FitRecommender, Footprint, Kind, KindEntry, Model, ModelSpec, Shape, SIZE_LIMITS, STATE_FILES,
};
