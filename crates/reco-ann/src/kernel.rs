//! The distance kernels live in reco-core, shared with the factor models.

pub use reco_core::vector::{dot, l2_squared};
