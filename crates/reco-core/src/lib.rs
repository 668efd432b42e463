//! # reco-core
//!
//! The data layer of reco and the traits every model implements.
//!
//! Everything here works on dense indices (`u32`) behind [`IdMap`]s, so that a dataset of
//! MovieLens-20M size (20M interactions, 140k users, 27k items) is a few hundred MB of flat
//! arrays: interactions are stored once by user (CSR) and once by item (CSC), built with a
//! counting sort, and never as a dense user × item matrix. Splits are masks over those arrays,
//! so train and test share the id space and cannot overlap by construction.
//!
//! The crate knows nothing about particular models: it defines [`model::Recommender`] and the
//! optional capabilities, and [`artifact`] saves any serialisable model with a checksummed
//! manifest.
#![warn(missing_docs)]

pub mod artifact;
pub mod dataset;
pub mod error;
pub mod explain;
pub mod features;
pub mod ids;
pub mod input;
pub mod interactions;
pub mod interrupt;
pub mod loaders;
pub mod model;
pub mod resources;
pub mod sessions;
pub mod split;
pub mod synth;
pub mod topk;
pub mod vector;
pub mod warning;

pub use dataset::{Dataset, DatasetStats, Feedback, LoadReport};
pub use error::{Error, ErrorCategory, Result};
pub use features::FeatureTable;
pub use ids::{IdMap, ItemIdx, UserIdx};
pub use interactions::{DuplicatePolicy, Interactions, Triplets};
pub use sessions::Sessions;
