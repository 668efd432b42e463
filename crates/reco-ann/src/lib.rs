//! # reco-ann
//!
//! Vector search over the user and item vectors of embedding models, for retrieving candidates
//! from large catalogues in sub-linear time.
//!
//! - [`Exact`]: brute force, blocked over items and parallel over queries; the oracle every
//!   approximate index is tested against, and the right choice up to ~10⁵ items.
//! - [`Hnsw`]: a hierarchical navigable small-world graph, our own: the crates measured were
//!   2–4× slower than hnswlib (see `docs/pipeline.md` and BENCHMARKS.md).
//!
//! Both answer [`VectorIndex::search`] with [`Scored`] hits where a higher score is closer: the
//! inner product, the cosine, or minus the squared Euclidean distance. Both take a
//! [`Filter`](reco_core::model::Filter) (exclude the user's seen items, or allow only a subset),
//! insert incrementally, and save and load.
#![warn(missing_docs)]

mod exact;
mod graph;
mod hnsw;
mod kernel;
mod mips;

pub use exact::Exact;
pub use hnsw::{Hnsw, HnswParams};
pub use kernel::{dot, l2_squared};
pub use mips::Mips;

use reco_core::model::Filter;
use reco_core::topk::Scored;
use reco_core::Result;
use serde::{Deserialize, Serialize};

/// How closeness is measured.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Metric {
    /// Inner product u·v, on vectors as they are (maximum inner-product search, the score of
    /// matrix factorisation and two-tower models).
    #[default]
    InnerProduct,
    /// Cosine similarity; vectors are normalised on insertion and queries on search.
    Cosine,
    /// Euclidean distance; the score is −‖u − v‖².
    L2,
}

impl Metric {
    /// The score of `v` for query `q` under this metric (for cosine, both must already be
    /// normalised).
    #[inline]
    pub fn score(self, q: &[f32], v: &[f32]) -> f32 {
        match self {
            Metric::InnerProduct | Metric::Cosine => dot(q, v),
            Metric::L2 => -l2_squared(q, v),
        }
    }
}

/// A searchable set of vectors keyed by dense `u32` ids (item indices).
pub trait VectorIndex: Send + Sync {
    /// Vector length.
    fn dim(&self) -> usize;
    /// Number of vectors held.
    fn len(&self) -> usize;
    /// True when the index holds no vector.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The metric.
    fn metric(&self) -> Metric;
    /// The largest id held, if any (to check a loaded index against the ids it must use).
    fn max_id(&self) -> Option<u32>;
    /// The `k` ids closest to `query` that pass `filter`, closest first (ties by ascending id).
    fn search(&self, query: &[f32], k: usize, filter: &Filter<'_>) -> Result<Vec<Scored>>;
}

/// Checks a vector's length.
fn check_dim(what: &str, got: usize, want: usize) -> Result<()> {
    if got != want {
        return Err(reco_core::Error::param(
            "vector",
            format!("{what} has {got} dimensions, the index {want}"),
        ));
    }
    Ok(())
}

/// Refuses NaN and infinite components.
fn check_finite(v: &[f32]) -> Result<()> {
    if v.iter().any(|x| !x.is_finite()) {
        return Err(reco_core::Error::param(
            "vector",
            "has a NaN or infinite value",
        ));
    }
    Ok(())
}

/// Checks that `vectors` holds one row of `dim` values per id.
fn check_rows(ids: &[u32], vectors: &[f32], dim: usize) -> Result<()> {
    if dim == 0 || vectors.len() != ids.len() * dim {
        return Err(reco_core::Error::param(
            "vectors",
            format!(
                "{} values are not {} rows of {dim}",
                vectors.len(),
                ids.len()
            ),
        ));
    }
    Ok(())
}

/// Whether `filter` lets `id` through.
#[inline]
fn passes(filter: &Filter<'_>, id: u32) -> bool {
    filter.exclude.binary_search(&id).is_err()
        && filter.allow.is_none_or(|a| a.binary_search(&id).is_ok())
}

/// `v / ‖v‖` (zero vectors stay zero: they match nothing).
pub fn normalized(v: &[f32]) -> Vec<f32> {
    let n = dot(v, v).sqrt();
    if n > 0.0 {
        v.iter().map(|x| x / n).collect()
    } else {
        v.to_vec()
    }
}

/// Share of the `exact` ids that `approx` found: recall of an approximate search.
pub fn recall(approx: &[Scored], exact: &[Scored]) -> f64 {
    if exact.is_empty() {
        return 1.0;
    }
    let truth: std::collections::HashSet<u32> = exact.iter().map(|s| s.item).collect();
    approx.iter().filter(|s| truth.contains(&s.item)).count() as f64 / exact.len() as f64
}
