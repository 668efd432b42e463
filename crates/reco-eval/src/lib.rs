//! # reco-eval
//!
//! Metrics (rating, top-k, beyond-accuracy), statistics and the evaluator that fits models on
//! the folds of a protocol and reports every metric with its interval. The evaluator takes
//! fitting functions, not model types, so evaluation knows nothing of particular models.
#![warn(missing_docs)]

pub mod evaluator;
pub mod fairness;
pub mod html;
pub mod metric;
pub mod metrics;
pub mod report;
pub mod stats;

pub use evaluator::{evaluate, Candidate, EvalConfig, Report, RunFiles, RunSink};
pub use metric::{Accuracy, Beyond, Metric};
