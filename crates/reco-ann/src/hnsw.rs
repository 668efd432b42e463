//! HNSW: a graph index with logarithmic search and parallel construction (the graph itself is
//! in `graph.rs`; this module owns the public type, ids, parameters and files).
//!
//! Why our own: of the Rust crates measured, usearch was best (100k × 64: 17 s build, 1,779
//! queries/s at recall@10 0.958, against hnsw_rs's 78 s / 981 / 0.73 and instant-distance's
//! 210 s / ~750 / 0.91), but on 1M × 64 it answered 3.6× fewer queries per second than hnswlib
//! at the same recall and built 2.2× slower, with its distances through an indirect call and no
//! prefetching. The graph here is hnswlib's algorithm with a flat layout; BENCHMARKS.md has the
//! figures.

use std::path::Path;

use rayon::prelude::*;
use reco_core::model::Filter;
use reco_core::topk::Scored;
use reco_core::Result;
use serde::{Deserialize, Serialize};

use crate::graph::{Frozen, Graph};
use crate::{check_dim, check_finite, Metric, VectorIndex};

/// Build and search parameters of an HNSW graph.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HnswParams {
    /// Links per node (M); more links, better recall, more memory and slower build.
    pub m: usize,
    /// Candidate list size while inserting (efConstruction).
    pub ef_construction: usize,
    /// Candidate list size while searching (ef); at least k is used.
    pub ef_search: usize,
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams {
            m: 16,
            ef_construction: 200,
            ef_search: 100,
        }
    }
}

impl HnswParams {
    /// Checks the parameters.
    pub fn validate(&self) -> Result<()> {
        if self.m < 2 {
            return Err(reco_core::Error::param("m", "must be at least 2"));
        }
        if self.ef_construction > MAX_EF || self.ef_search > MAX_EF {
            return Err(reco_core::Error::param(
                "ef",
                format!("ef_construction and ef_search must be at most {MAX_EF}"),
            ));
        }
        if self.m > MAX_M {
            return Err(reco_core::Error::param(
                "m",
                format!(
                    "{} is above the limit of {MAX_M}; graphs use 8 to 64",
                    self.m
                ),
            ));
        }
        if self.ef_construction == 0 || self.ef_search == 0 {
            return Err(reco_core::Error::param(
                "ef",
                "ef_construction and ef_search must be at least 1",
            ));
        }
        Ok(())
    }
}

/// What `save` writes next to the graph, so that a load can check it reads what was written.
#[derive(Clone, Copy, Serialize, Deserialize)]
struct Header {
    format: u32,
    dim: usize,
    metric: Metric,
    params: HnswParams,
    len: usize,
}

const FORMAT: u32 = 2;

/// The most links per node and layer: far beyond any useful graph (8 to 64), low enough that
/// `2 * m + 1` and the per-node lists cannot overflow or ask for absurd memory.
const MAX_M: usize = 1 << 12;

/// The largest candidate list a search may keep (a search at this ef is already exhaustive on
/// any graph that fits in memory).
const MAX_EF: usize = 1 << 24;

/// Seed of the level draws (levels are a property of the insertion order, not of the data).
const LEVEL_SEED: u64 = 0x5eed_1e7e1;

/// An HNSW graph over `u32`-keyed vectors.
pub struct Hnsw {
    graph: Graph,
}

impl Hnsw {
    /// An empty graph of `dim`-dimensional vectors.
    pub fn new(dim: usize, metric: Metric, params: HnswParams) -> Result<Self> {
        params.validate()?;
        if dim == 0 {
            return Err(reco_core::Error::param("dim", "must be at least 1"));
        }
        Ok(Hnsw {
            graph: Graph::new(dim, metric, params),
        })
    }

    /// A graph of the rows of `vectors` (row-major, `dim` columns), row `r` keyed `r`, linked
    /// in parallel; `progress(done)` is called now and then.
    pub fn from_rows(
        dim: usize,
        metric: Metric,
        params: HnswParams,
        vectors: &[f32],
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<Self> {
        let mut index = Hnsw::new(dim, metric, params)?;
        if !vectors.len().is_multiple_of(dim) {
            return Err(reco_core::Error::param(
                "vectors",
                format!("{} values are not rows of {dim}", vectors.len()),
            ));
        }
        let ids: Vec<u32> = (0..(vectors.len() / dim) as u32).collect();
        index.insert_rows(&ids, vectors, progress)?;
        Ok(index)
    }

    /// Adds the rows of `vectors` under `ids` (one id per row), linked in parallel.
    pub fn insert_rows(
        &mut self,
        ids: &[u32],
        vectors: &[f32],
        progress: &(dyn Fn(usize) + Sync),
    ) -> Result<()> {
        let dim = self.graph.dim;
        crate::check_rows(ids, vectors, dim)?;
        check_finite(vectors)?;
        self.graph.reserve_nodes(ids, vectors, LEVEL_SEED)?;
        self.graph.link_reserved(true, progress);
        Ok(())
    }

    /// Adds one vector; an id already present is an error.
    pub fn add(&mut self, id: u32, vector: &[f32]) -> Result<()> {
        check_dim("vector", vector.len(), self.graph.dim)?;
        check_finite(vector)?;
        if self.graph.contains(id) {
            return Err(reco_core::Error::param(
                "id",
                format!("{id} is already in the index"),
            ));
        }
        self.graph.reserve_nodes(&[id], vector, LEVEL_SEED)?;
        self.graph.link_reserved(false, &|_| {});
        Ok(())
    }

    /// Changes ef (the search-time candidate list).
    pub fn set_ef_search(&mut self, ef: usize) {
        self.graph.params.ef_search = ef.max(1);
    }

    /// The build and search parameters.
    pub fn params(&self) -> HnswParams {
        self.graph.params
    }

    /// Bytes held by the graph and its vectors.
    pub fn memory_bytes(&self) -> usize {
        self.graph.memory_bytes()
    }

    /// Searches many queries (row-major) in parallel.
    pub fn search_many<'f>(
        &self,
        queries: &[f32],
        k: usize,
        filter_of: impl Fn(usize) -> Filter<'f> + Sync,
    ) -> Result<Vec<Vec<Scored>>> {
        queries
            .par_chunks(self.graph.dim)
            .enumerate()
            .map(|(q, v)| self.search(v, k, &filter_of(q)))
            .collect()
    }

    /// The graph as bytes, for embedding in an artifact.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        reco_core::artifact::encode(&self.graph.freeze())
    }

    /// Reads a graph written by [`Hnsw::to_bytes`]; a corrupt graph is an error.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let frozen: Frozen = reco_core::artifact::decode(bytes, "hnsw")?;
        Ok(Hnsw {
            graph: Graph::thaw(frozen)?,
        })
    }

    /// Writes the graph to `dir` (`hnsw.json`, a readable header, and `hnsw.bin`).
    pub fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).map_err(|e| reco_core::Error::io(dir, e))?;
        let header = Header {
            format: FORMAT,
            dim: self.graph.dim,
            metric: self.graph.metric,
            params: self.graph.params,
            len: self.graph.len(),
        };
        let json = dir.join("hnsw.json");
        let text = serde_json::to_string_pretty(&header)
            .map_err(|e| reco_core::Error::param("hnsw", e.to_string()))?;
        std::fs::write(&json, text).map_err(|e| reco_core::Error::io(&json, e))?;
        let bin = dir.join("hnsw.bin");
        std::fs::write(&bin, self.to_bytes()?).map_err(|e| reco_core::Error::io(&bin, e))
    }

    /// Reads a graph written by [`Hnsw::save`].
    pub fn load(dir: &Path) -> Result<Self> {
        let json = dir.join("hnsw.json");
        let text = reco_core::input::read_text(&json)?;
        let bad = |message: String| reco_core::Error::Artifact {
            path: dir.into(),
            message,
        };
        let header: Header =
            serde_json::from_str(&text).map_err(|e| bad(format!("hnsw.json: {e}")))?;
        if header.format != FORMAT {
            return Err(bad(format!(
                "format {} (this build reads {FORMAT})",
                header.format
            )));
        }
        let bin = dir.join("hnsw.bin");
        let bytes = reco_core::input::read(&bin, reco_core::input::MAX_FILE_BYTES)?;
        let mut index = Hnsw::from_bytes(&bytes)?;
        if index.graph.len() != header.len || index.graph.dim != header.dim {
            return Err(bad(format!(
                "hnsw.bin holds {} vectors of {} dimensions, hnsw.json says {} of {}",
                index.graph.len(),
                index.graph.dim,
                header.len,
                header.dim
            )));
        }
        index.set_ef_search(header.params.ef_search);
        Ok(index)
    }
}

impl VectorIndex for Hnsw {
    fn dim(&self) -> usize {
        self.graph.dim
    }

    fn len(&self) -> usize {
        self.graph.len()
    }

    fn metric(&self) -> Metric {
        self.graph.metric
    }

    fn max_id(&self) -> Option<u32> {
        self.graph.max_id()
    }

    fn search(&self, query: &[f32], k: usize, filter: &Filter<'_>) -> Result<Vec<Scored>> {
        check_dim("query", query.len(), self.graph.dim)?;
        check_finite(query)?;
        let k = k.min(self.len());
        if k == 0 {
            return Ok(Vec::new());
        }
        let ef = self.graph.params.ef_search;
        if self.graph.metric == Metric::Cosine {
            return self.graph.search(&crate::normalized(query), k, ef, filter);
        }
        self.graph.search(query, k, ef, filter)
    }
}
