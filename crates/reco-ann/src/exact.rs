//! Brute-force search: the oracle, and the fastest index for small catalogues.

use std::path::Path;

use rayon::prelude::*;
use reco_core::model::Filter;
use reco_core::topk::{rank_cmp, ranks_before, top_k_of, Scored};
use reco_core::Result;
use serde::{Deserialize, Serialize};

use crate::{check_dim, check_finite, normalized, passes, Metric, VectorIndex};

/// Items scored per block: 1024 × 64-d × 4 bytes = 256 KiB, which stays in L2 while a group
/// of queries runs over it.
const BLOCK: usize = 1024;
/// Queries that share one pass over the item blocks.
const GROUP: usize = 16;

/// Every vector in one row-major array; a search scores them all.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Exact {
    dim: usize,
    metric: Metric,
    ids: Vec<u32>,
    data: Vec<f32>,
}

/// Keeps the `k` best of a stream without sorting it: candidates collect in a buffer that is
/// cut back to `k` by selection whenever it doubles, and anything worse than the `k`-th best
/// seen at the last cut is skipped.
struct TopK {
    k: usize,
    buf: Vec<Scored>,
    bar: Option<Scored>,
}

impl TopK {
    fn new(k: usize) -> Self {
        TopK {
            k,
            buf: Vec::with_capacity(2 * k + 1),
            bar: None,
        }
    }

    #[inline]
    fn push(&mut self, c: Scored) {
        if let Some(bar) = &self.bar {
            if !ranks_before(&c, bar) {
                return;
            }
        }
        self.buf.push(c);
        if self.buf.len() >= 2 * self.k.max(1) {
            self.buf.select_nth_unstable_by(self.k - 1, rank_cmp);
            self.buf.truncate(self.k);
            self.bar = self.buf.iter().copied().max_by(rank_cmp);
        }
    }

    fn finish(self) -> Vec<Scored> {
        top_k_of(self.buf, self.k)
    }
}

impl Exact {
    /// An empty index of `dim`-dimensional vectors.
    pub fn new(dim: usize, metric: Metric) -> Result<Self> {
        if dim == 0 {
            return Err(reco_core::Error::param("dim", "must be at least 1"));
        }
        Ok(Exact {
            dim,
            metric,
            ids: Vec::new(),
            data: Vec::new(),
        })
    }

    /// An index of the rows of `vectors` (row-major, `dim` columns), row `r` keyed `r`.
    pub fn from_rows(dim: usize, metric: Metric, vectors: &[f32]) -> Result<Self> {
        let mut index = Exact::new(dim, metric)?;
        if !vectors.len().is_multiple_of(dim) {
            return Err(reco_core::Error::param(
                "vectors",
                format!("{} values are not rows of {dim}", vectors.len()),
            ));
        }
        let n = vectors.len() / dim;
        index.ids = (0..n as u32).collect();
        index.data = match metric {
            Metric::Cosine => vectors.chunks_exact(dim).flat_map(normalized).collect(),
            _ => vectors.to_vec(),
        };
        Ok(index)
    }

    /// Adds one vector under `id`. Ids need not be dense or ordered; adding an id twice keeps
    /// both copies, so callers own uniqueness (as they do for dataset indices).
    pub fn add(&mut self, id: u32, vector: &[f32]) -> Result<()> {
        check_dim("vector", vector.len(), self.dim)?;
        check_finite(vector)?;
        match self.metric {
            Metric::Cosine => self.data.extend(normalized(vector)),
            _ => self.data.extend_from_slice(vector),
        }
        self.ids.push(id);
        Ok(())
    }

    /// Searches many queries (row-major, `dim` columns) at once, in parallel; `filter_of(q)`
    /// is query `q`'s filter. Queries in a group share each block of items while it is in cache.
    pub fn search_many<'f>(
        &self,
        queries: &[f32],
        k: usize,
        filter_of: impl Fn(usize) -> Filter<'f> + Sync,
    ) -> Result<Vec<Vec<Scored>>> {
        if !queries.len().is_multiple_of(self.dim) {
            return Err(reco_core::Error::param(
                "queries",
                format!("{} values are not rows of {}", queries.len(), self.dim),
            ));
        }
        let prepared: Vec<f32> = match self.metric {
            Metric::Cosine => queries
                .chunks_exact(self.dim)
                .flat_map(normalized)
                .collect(),
            _ => queries.to_vec(),
        };
        let k = k.min(self.ids.len());
        let groups: Vec<Vec<Vec<Scored>>> = prepared
            .par_chunks(self.dim * GROUP)
            .enumerate()
            .map(|(g, group)| self.search_group(group, g * GROUP, k, &filter_of))
            .collect();
        Ok(groups.into_iter().flatten().collect())
    }

    fn search_group<'f>(
        &self,
        group: &[f32],
        first: usize,
        k: usize,
        filter_of: &(impl Fn(usize) -> Filter<'f> + Sync),
    ) -> Vec<Vec<Scored>> {
        let d = self.dim;
        let nq = group.len() / d;
        let filters: Vec<Filter<'f>> = (0..nq).map(|q| filter_of(first + q)).collect();
        let mut tops: Vec<TopK> = (0..nq).map(|_| TopK::new(k)).collect();
        if k == 0 {
            return vec![Vec::new(); nq];
        }
        for (b, block) in self.data.chunks(d * BLOCK).enumerate() {
            let ids = &self.ids[b * BLOCK..b * BLOCK + block.len() / d];
            for (q, top) in tops.iter_mut().enumerate() {
                let query = &group[q * d..(q + 1) * d];
                let filter = &filters[q];
                let plain = filter.exclude.is_empty() && filter.allow.is_none();
                for (v, &id) in block.chunks_exact(d).zip(ids) {
                    let score = self.metric.score(query, v);
                    if plain || passes(filter, id) {
                        top.push(Scored { item: id, score });
                    }
                }
            }
        }
        tops.into_iter().map(TopK::finish).collect()
    }

    /// The stored vector of row `row` (normalised, for cosine).
    pub fn row(&self, row: usize) -> Option<&[f32]> {
        self.data.get(row * self.dim..(row + 1) * self.dim)
    }

    /// Writes the index (postcard).
    pub fn save(&self, path: &Path) -> Result<()> {
        let bytes = reco_core::artifact::encode(self)?;
        std::fs::write(path, bytes).map_err(|e| reco_core::Error::io(path, e))
    }

    /// Reads an index written by [`Exact::save`].
    pub fn load(path: &Path) -> Result<Self> {
        let bytes = reco_core::input::read(path, reco_core::input::MAX_FILE_BYTES)?;
        Self::from_bytes(&bytes, &path.display().to_string())
    }

    /// Decodes an index encoded by [`Exact::save`] (`name` names its origin in errors),
    /// checking that the vectors fit the ids.
    pub fn from_bytes(bytes: &[u8], name: &str) -> Result<Self> {
        let index: Exact = reco_core::artifact::decode(bytes, name)?;
        if index.dim == 0 || index.ids.len().checked_mul(index.dim) != Some(index.data.len()) {
            return Err(reco_core::Error::Artifact {
                path: name.into(),
                message: "vector data does not match the ids".into(),
            });
        }
        Ok(index)
    }
}

impl VectorIndex for Exact {
    fn dim(&self) -> usize {
        self.dim
    }

    fn len(&self) -> usize {
        self.ids.len()
    }

    fn metric(&self) -> Metric {
        self.metric
    }

    fn max_id(&self) -> Option<u32> {
        self.ids.iter().max().copied()
    }

    fn search(&self, query: &[f32], k: usize, filter: &Filter<'_>) -> Result<Vec<Scored>> {
        check_dim("query", query.len(), self.dim)?;
        let mut out = self.search_many(query, k, |_| *filter)?;
        Ok(out.pop().unwrap_or_default())
    }
}
