//! The graph's serialisable form, and the checks that make a loaded graph safe to walk.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use reco_core::Result;
use serde::{Deserialize, Serialize};

use super::memory::huge_vec;
use super::Graph;
use crate::{HnswParams, Metric};

/// The graph's serialisable form.
#[derive(Serialize, Deserialize)]
pub(crate) struct Frozen {
    dim: usize,
    metric: Metric,
    params: HnswParams,
    ids: Vec<u32>,
    levels: Vec<u8>,
    vectors: Vec<f32>,
    level0: Vec<u32>,
    upper: Vec<Vec<u32>>,
    entry: Option<(u32, u8)>,
}

impl Graph {
    pub fn freeze(&self) -> Frozen {
        let plain = |v: &[AtomicU32]| {
            v.iter()
                .map(|x| x.load(Ordering::Relaxed))
                .collect::<Vec<u32>>()
        };
        Frozen {
            dim: self.dim,
            metric: self.metric,
            params: self.params,
            ids: self.ids[..self.linked].to_vec(),
            levels: self.levels[..self.linked].to_vec(),
            vectors: self.vectors[..self.linked * self.dim].to_vec(),
            level0: plain(&self.level0[..self.linked * (1 + self.m0())]),
            upper: self.upper[..self.linked].iter().map(|u| plain(u)).collect(),
            entry: *self.entry.lock().unwrap_or_else(|e| e.into_inner()),
        }
    }

    pub fn thaw(f: Frozen) -> Result<Graph> {
        let bad = |m: &str| reco_core::Error::Artifact {
            path: "hnsw".into(),
            message: m.into(),
        };
        f.params.validate()?;
        let n = f.ids.len();
        let m = f.params.m;
        // The sizes come from the file: products that overflow are as wrong as ones that differ.
        let fits = |len: usize, a: usize, b: usize| a.checked_mul(b) == Some(len);
        if f.dim == 0
            || f.levels.len() != n
            || !fits(f.vectors.len(), n, f.dim)
            || !fits(f.level0.len(), n, 1 + 2 * m)
            || f.upper.len() != n
            || f.upper
                .iter()
                .zip(&f.levels)
                .any(|(u, &l)| !fits(u.len(), l as usize, 1 + m))
            || f.level0
                .iter()
                .chain(f.upper.iter().flatten())
                .any(|&x| x as usize > n.max(2 * m + 1))
            || f.entry
                .is_some_and(|(e, l)| e as usize >= n || f.levels[e as usize] != l)
            || (n > 0) != f.entry.is_some()
        {
            return Err(bad("the graph's arrays do not fit together"));
        }
        let mut g = Graph::new(f.dim, f.metric, f.params);
        g.by_id = f
            .ids
            .iter()
            .enumerate()
            .map(|(k, &id)| (id, k as u32))
            .collect();
        if g.by_id.len() != n {
            return Err(bad("an id appears twice"));
        }
        // Links must name nodes; counts must fit their lists.
        let stride0 = 1 + 2 * m;
        for node in 0..n {
            let c = f.level0[node * stride0] as usize;
            if c > 2 * m
                || f.level0[node * stride0 + 1..node * stride0 + 1 + c]
                    .iter()
                    .any(|&x| x as usize >= n)
            {
                return Err(bad("a link names no node"));
            }
            for l in 0..f.levels[node] as usize {
                let s = l * (1 + m);
                let c = f.upper[node][s] as usize;
                // A link at level l + 1 must reach a node that has that level.
                if c > m
                    || f.upper[node][s + 1..s + 1 + c]
                        .iter()
                        .any(|&x| x as usize >= n || (f.levels[x as usize] as usize) < l + 1)
                {
                    return Err(bad("a link names no node"));
                }
            }
        }
        g.ids = f.ids;
        g.levels = f.levels;
        g.vectors = huge_vec(f.vectors.len());
        g.vectors.extend_from_slice(&f.vectors);
        g.level0 = huge_vec(f.level0.len());
        g.level0.extend(f.level0.into_iter().map(AtomicU32::new));
        g.upper = f
            .upper
            .into_iter()
            .map(|u| u.into_iter().map(AtomicU32::new).collect())
            .collect();
        g.locks = (0..n).map(|_| Mutex::new(())).collect();
        *g.entry.lock().unwrap_or_else(|e| e.into_inner()) = f.entry;
        g.linked = n;
        Ok(g)
    }
}
