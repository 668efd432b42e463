//! Our HNSW graph (Malkov & Yashunin 2018), laid out for search speed: level-0 links of every
//! node in one flat array, vectors in another, both on 2 MiB pages where Linux allows; AVX2/FMA
//! distance kernels; a per-thread visited list stamped by generation; and a walk that sorts out
//! unseen neighbours without branching, then prefetches their vectors and the next candidate's
//! links before computing distances (the walk waits on memory, not arithmetic).
//!
//! Parallel construction follows hnswlib: each node's link list has a lock that writers hold;
//! links are atomics, so readers (other insertions walking the graph) never block. Node levels
//! are drawn up front from the seed, so the level structure is reproducible; the links depend on
//! the order threads finish, as in every parallel HNSW.
//!
//! `memory` holds the visited list, huge-page buffers and prefetching; `persist` the saved
//! form and the checks on load.

use std::cmp::Ordering as Cmp;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use rand::{Rng, SeedableRng};
use rayon::prelude::*;
use reco_core::model::Filter;
use reco_core::topk::{rank_cmp, Scored};
use reco_core::Result;

use crate::{check_dim, passes, HnswParams, Metric};

mod memory;
mod persist;

use memory::{prefetch, reserve_huge, VISITED};
pub(crate) use persist::Frozen;

/// A (distance, node) pair ordered by distance, then node.
#[derive(Clone, Copy, PartialEq)]
struct Near(f32, u32);
impl Eq for Near {}
impl PartialOrd for Near {
    fn partial_cmp(&self, o: &Self) -> Option<Cmp> {
        Some(self.cmp(o))
    }
}
impl Ord for Near {
    fn cmp(&self, o: &Self) -> Cmp {
        self.0.total_cmp(&o.0).then(self.1.cmp(&o.1))
    }
}

/// The graph. Internal node numbers are insertion order; `ids` maps them to the caller's ids.
pub(crate) struct Graph {
    pub dim: usize,
    pub metric: Metric,
    pub params: HnswParams,
    ids: Vec<u32>,
    by_id: HashMap<u32, u32>,
    levels: Vec<u8>,
    vectors: Vec<f32>,
    /// Per node: a count, then `2m` links.
    level0: Vec<AtomicU32>,
    /// Per node with level ≥ 1: for each level 1..=L, a count then `m` links.
    upper: Vec<Vec<AtomicU32>>,
    locks: Vec<Mutex<()>>,
    entry: Mutex<Option<(u32, u8)>>,
    /// Nodes linked into the graph (nodes are reserved before they are linked).
    linked: usize,
    /// Whether the CPU runs AVX2 and FMA (the search and insertion loops are compiled twice).
    avx2: bool,
}

fn avx2() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
    }
    #[cfg(not(target_arch = "x86_64"))]
    false
}

fn level_of(rng: &mut rand_chacha::ChaCha8Rng, m: usize) -> u8 {
    let mult = 1.0 / (m as f64).ln();
    let r: f64 = rng.gen_range(f64::MIN_POSITIVE..1.0);
    ((-r.ln() * mult) as usize).min(31) as u8
}

impl Graph {
    pub fn new(dim: usize, metric: Metric, params: HnswParams) -> Graph {
        Graph {
            dim,
            metric,
            params,
            ids: Vec::new(),
            by_id: HashMap::new(),
            levels: Vec::new(),
            vectors: Vec::new(),
            level0: Vec::new(),
            upper: Vec::new(),
            locks: Vec::new(),
            entry: Mutex::new(None),
            linked: 0,
            avx2: avx2(),
        }
    }

    fn m0(&self) -> usize {
        2 * self.params.m
    }

    pub fn len(&self) -> usize {
        self.linked
    }

    pub fn contains(&self, id: u32) -> bool {
        self.by_id.contains_key(&id)
    }

    /// Distance, smaller is closer: −u·v for inner product and cosine, ‖u − v‖² for L2. `A`
    /// selects the AVX2 kernels; it is true only inside the loops compiled for AVX2 and FMA.
    #[inline(always)]
    fn dist<const A: bool>(&self, q: &[f32], node: u32) -> f32 {
        self.between::<A>(q, self.vector(node))
    }

    #[inline(always)]
    fn between<const A: bool>(&self, q: &[f32], v: &[f32]) -> f32 {
        #[cfg(target_arch = "x86_64")]
        if A {
            // SAFETY: `A` is true only in code reached after the CPU check in `insert`/`search`.
            return unsafe {
                if self.metric == Metric::L2 {
                    crate::kernel::l2_squared_avx2(q, v)
                } else {
                    -crate::kernel::dot_avx2(q, v)
                }
            };
        }
        if self.metric == Metric::L2 {
            crate::kernel::l2_squared(q, v)
        } else {
            -crate::kernel::dot(q, v)
        }
    }

    #[inline(always)]
    fn vector_ptr(&self, node: u32) -> *const f32 {
        // SAFETY: node < number of reserved nodes, each with `dim` floats.
        unsafe { self.vectors.as_ptr().add(node as usize * self.dim) }
    }

    #[inline(always)]
    fn vector(&self, node: u32) -> &[f32] {
        &self.vectors[node as usize * self.dim..(node as usize + 1) * self.dim]
    }

    #[inline(always)]
    fn level0_ptr(&self, node: u32) -> *const f32 {
        // SAFETY: node < number of reserved nodes, each with `1 + m0` cells at level 0.
        unsafe { self.level0.as_ptr().add(node as usize * (1 + self.m0())) as *const f32 }
    }

    /// The link list of `node` at `level`: (count cell, link cells).
    #[inline(always)]
    fn links(&self, node: u32, level: u8) -> (&AtomicU32, &[AtomicU32]) {
        if level == 0 {
            let s = node as usize * (1 + self.m0());
            (&self.level0[s], &self.level0[s + 1..s + 1 + self.m0()])
        } else {
            let m = self.params.m;
            let s = (level as usize - 1) * (1 + m);
            let u = &self.upper[node as usize];
            (&u[s], &u[s + 1..s + 1 + m])
        }
    }

    #[inline(always)]
    fn read_links(&self, node: u32, level: u8, out: &mut Vec<u32>) {
        let (count, cells) = self.links(node, level);
        let n = (count.load(Ordering::Acquire) as usize).min(cells.len());
        out.clear();
        out.extend(cells[..n].iter().map(|c| c.load(Ordering::Relaxed)));
    }

    fn write_links(&self, node: u32, level: u8, links: &[u32]) {
        let (count, cells) = self.links(node, level);
        for (c, &l) in cells.iter().zip(links) {
            c.store(l, Ordering::Relaxed);
        }
        count.store(links.len().min(cells.len()) as u32, Ordering::Release);
    }

    /// Appends `n` nodes (vectors, levels drawn from `seed`), not yet linked.
    pub fn max_id(&self) -> Option<u32> {
        self.ids[..self.linked].iter().max().copied()
    }

    pub fn reserve_nodes(&mut self, ids: &[u32], vectors: &[f32], seed: u64) -> Result<()> {
        for (k, &id) in ids.iter().enumerate() {
            if self.by_id.insert(id, (self.ids.len() + k) as u32).is_some() {
                return Err(reco_core::Error::param(
                    "id",
                    format!("{id} is already in the index"),
                ));
            }
        }
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ self.ids.len() as u64);
        let m = self.params.m;
        reserve_huge(&mut self.vectors, ids.len() * self.dim);
        let stride = 1 + self.m0();
        reserve_huge(&mut self.level0, ids.len() * stride);
        for (k, &id) in ids.iter().enumerate() {
            let v = &vectors[k * self.dim..(k + 1) * self.dim];
            let level = level_of(&mut rng, m);
            self.ids.push(id);
            self.levels.push(level);
            self.level0
                .extend((0..1 + self.m0()).map(|_| AtomicU32::new(0)));
            if self.metric == Metric::Cosine {
                self.vectors.extend(crate::normalized(v));
            } else {
                self.vectors.extend_from_slice(v);
            }
            self.upper.push(
                (0..level as usize * (1 + m))
                    .map(|_| AtomicU32::new(0))
                    .collect(),
            );
            self.locks.push(Mutex::new(()));
        }
        Ok(())
    }

    /// Links the reserved nodes `from..` into the graph, in parallel when `parallel`.
    pub fn link_reserved(&mut self, parallel: bool, progress: &(dyn Fn(usize) + Sync)) {
        let (from, to) = (self.linked, self.ids.len());
        if from == to {
            return;
        }
        let mut start = from;
        if self
            .entry
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_none()
        {
            *self.entry.lock().unwrap_or_else(|e| e.into_inner()) =
                Some((from as u32, self.levels[from]));
            start += 1;
        }
        let done = std::sync::atomic::AtomicUsize::new(0);
        let this = &*self;
        let work = |node: usize| {
            this.insert(node as u32);
            let d = done.fetch_add(1, Ordering::Relaxed) + 1;
            if d.is_multiple_of(16384) {
                progress(d);
            }
        };
        if parallel {
            (start..to).into_par_iter().for_each(work);
        } else {
            (start..to).for_each(work);
        }
        self.linked = to;
    }

    #[inline(always)]
    fn greedy<const A: bool>(
        &self,
        q: &[f32],
        mut cur: u32,
        mut d: f32,
        level: u8,
        buf: &mut Vec<u32>,
    ) -> (u32, f32) {
        loop {
            let mut moved = false;
            self.read_links(cur, level, buf);
            for &n in buf.iter() {
                let dn = self.dist::<A>(q, n);
                if dn < d {
                    d = dn;
                    cur = n;
                    moved = true;
                }
            }
            if !moved {
                return (cur, d);
            }
        }
    }

    /// The `ef` nearest nodes to `q` at `level` reachable from `start`, nearest last when popped
    /// from the returned max-heap. Only nodes for which `keep` holds enter the result, but every
    /// node is walked through.
    ///
    /// The walk is bound by memory latency (each step touches a link list, visited marks and
    /// vectors scattered over the whole index), so each expansion first sorts out the
    /// neighbours not seen yet without branching, letting the CPU load all their marks at
    /// once, then prefetches their vectors and the next candidate's links before computing
    /// distances.
    #[inline(always)]
    fn search_layer<const A: bool, F: Fn(u32) -> bool>(
        &self,
        q: &[f32],
        start: Near,
        ef: usize,
        level: u8,
        keep: F,
        buf: &mut Vec<u32>,
    ) -> BinaryHeap<Near> {
        // The search runs outside `LocalKey::with`: a closure would not inherit the caller's
        // target features, and the distance loop inside it would lose AVX2 (measured: 80% of
        // build and search time sat in that closure).
        let mut visited = VISITED.with(|v| std::mem::take(&mut *v.borrow_mut()));
        let mut found: BinaryHeap<Near> = BinaryHeap::with_capacity(ef + 1);
        {
            visited.reset(self.ids.len());
            let mut spare = std::mem::take(&mut visited.candidates);
            spare.clear();
            let mut candidates = BinaryHeap::from(spare);
            visited.mark(start.1);
            candidates.push(std::cmp::Reverse(start));
            if keep(start.1) {
                found.push(start);
            }
            buf.clear();
            buf.resize(self.m0(), 0);
            while let Some(std::cmp::Reverse(c)) = candidates.pop() {
                if found.len() >= ef && found.peek().is_some_and(|w| c.0 > w.0) {
                    break;
                }
                let (count, cells) = self.links(c.1, level);
                let n = (count.load(Ordering::Acquire) as usize).min(cells.len());
                let mut fresh = 0;
                for cell in &cells[..n] {
                    let nb = cell.load(Ordering::Relaxed);
                    buf[fresh] = nb;
                    fresh += visited.mark(nb) as usize;
                }
                for &nb in &buf[..fresh] {
                    prefetch(self.vector_ptr(nb));
                }
                if level == 0 {
                    if let Some(std::cmp::Reverse(next)) = candidates.peek() {
                        prefetch(self.level0_ptr(next.1));
                    }
                }
                for &nb in &buf[..fresh] {
                    let d = self.dist::<A>(q, nb);
                    if found.len() < ef || found.peek().is_some_and(|w| d < w.0) {
                        candidates.push(std::cmp::Reverse(Near(d, nb)));
                        if keep(nb) {
                            found.push(Near(d, nb));
                            if found.len() > ef {
                                found.pop();
                            }
                        }
                    }
                }
            }
            visited.candidates = candidates.into_vec();
        }
        VISITED.with(|v| *v.borrow_mut() = visited);
        found
    }

    /// hnswlib's neighbour heuristic: nearest first, keep a candidate only if it is nearer to
    /// the base than to every neighbour kept so far (so links spread in all directions).
    #[inline(always)]
    fn select<const A: bool>(&self, mut cands: Vec<Near>, m: usize) -> Vec<u32> {
        cands.sort();
        let mut kept: Vec<Near> = Vec::with_capacity(m);
        for c in cands {
            if kept.len() == m {
                break;
            }
            let v = self.vector(c.1);
            let mut diverse = true;
            for k in &kept {
                if self.dist::<A>(v, k.1) <= c.0 {
                    diverse = false;
                    break;
                }
            }
            if diverse {
                kept.push(c);
            }
        }
        kept.into_iter().map(|c| c.1).collect()
    }

    fn insert(&self, node: u32) {
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: the CPU has AVX2 and FMA (checked when the graph was made).
            return unsafe { self.insert_avx2(node) };
        }
        self.insert_impl::<false>(node)
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn insert_avx2(&self, node: u32) {
        self.insert_impl::<true>(node)
    }

    #[inline(always)]
    fn insert_impl<const A: bool>(&self, node: u32) {
        let q = self.vector(node).to_vec();
        let level = self.levels[node as usize];
        let Some((ep, top)) = *self.entry.lock().unwrap_or_else(|e| e.into_inner()) else {
            return;
        };
        let mut buf = Vec::with_capacity(self.m0());
        let mut cur = ep;
        let mut d = self.dist::<A>(&q, ep);
        for l in (level.saturating_add(1)..=top).rev() {
            (cur, d) = self.greedy::<A>(&q, cur, d, l, &mut buf);
        }
        for l in (0..=level.min(top)).rev() {
            let found = self.search_layer::<A, _>(
                &q,
                Near(d, cur),
                self.params.ef_construction,
                l,
                |_| true,
                &mut buf,
            );
            let cands: Vec<Near> = found.into_vec();
            let best = cands.iter().min().copied();
            let cap = if l == 0 { self.m0() } else { self.params.m };
            let links = self.select::<A>(cands, self.params.m);
            {
                let _g = self.locks[node as usize]
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                self.write_links(node, l, &links);
            }
            for &nb in &links {
                let _g = self.locks[nb as usize]
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                let mut mine = Vec::with_capacity(cap + 1);
                self.read_links(nb, l, &mut mine);
                if mine.contains(&node) {
                    continue;
                }
                if mine.len() < cap {
                    mine.push(node);
                    self.write_links(nb, l, &mine);
                } else {
                    let base = self.vector(nb);
                    let mut cands: Vec<Near> = mine
                        .iter()
                        .map(|&x| Near(self.dist::<A>(base, x), x))
                        .collect();
                    cands.push(Near(self.dist::<A>(base, node), node));
                    let pruned = self.select::<A>(cands, cap);
                    self.write_links(nb, l, &pruned);
                }
            }
            if let Some(b) = best {
                (d, cur) = (b.0, b.1);
            }
        }
        if level > top {
            let mut e = self.entry.lock().unwrap_or_else(|e| e.into_inner());
            if e.is_none_or(|(_, t)| level > t) {
                *e = Some((node, level));
            }
        }
    }

    /// The `k` nodes nearest to `query` (already normalised for cosine) that pass `filter`.
    pub fn search(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: &Filter<'_>,
    ) -> Result<Vec<Scored>> {
        check_dim("query", query.len(), self.dim)?;
        #[cfg(target_arch = "x86_64")]
        if self.avx2 {
            // SAFETY: the CPU has AVX2 and FMA (checked when the graph was made).
            return Ok(unsafe { self.search_avx2(query, k, ef, filter) });
        }
        Ok(self.search_impl::<false>(query, k, ef, filter))
    }

    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2,fma")]
    unsafe fn search_avx2(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: &Filter<'_>,
    ) -> Vec<Scored> {
        self.search_impl::<true>(query, k, ef, filter)
    }

    #[inline(always)]
    fn search_impl<const A: bool>(
        &self,
        query: &[f32],
        k: usize,
        ef: usize,
        filter: &Filter<'_>,
    ) -> Vec<Scored> {
        let Some((ep, top)) = *self.entry.lock().unwrap_or_else(|e| e.into_inner()) else {
            return Vec::new();
        };
        let mut buf = Vec::with_capacity(self.m0());
        let mut cur = ep;
        let mut d = self.dist::<A>(query, ep);
        for l in (1..=top).rev() {
            (cur, d) = self.greedy::<A>(query, cur, d, l, &mut buf);
        }
        let plain = filter.exclude.is_empty() && filter.allow.is_none();
        let start = Near(d, cur);
        let found = if plain {
            self.search_layer::<A, _>(query, start, ef.max(k), 0, |_| true, &mut buf)
        } else {
            let keep = |n: u32| passes(filter, self.ids[n as usize]);
            self.search_layer::<A, _>(query, start, ef.max(k), 0, keep, &mut buf)
        };
        let mut out: Vec<Scored> = found
            .into_vec()
            .into_iter()
            .map(|n| Scored {
                item: self.ids[n.1 as usize],
                score: -n.0,
            })
            .collect();
        out.sort_by(rank_cmp);
        out.truncate(k);
        out
    }

    pub fn memory_bytes(&self) -> usize {
        self.vectors.len() * 4
            + self.level0.len() * 4
            + self.upper.iter().map(|u| u.len() * 4 + 24).sum::<usize>()
            + self.ids.len() * (4 + 1 + 16 + 8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The portable loops (run on CPUs without AVX2) find what the AVX2 loops find: both
    /// graphs are built one row at a time from the same seed, so they differ only where
    /// rounding of the two kernels breaks a near-tie.
    #[test]
    fn portable_and_avx2_loops_agree() {
        let (n, dim) = (2000, 16);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let vectors: Vec<f32> = (0..n * dim).map(|_| rng.gen_range(-1.0..1.0)).collect();
        let ids: Vec<u32> = (0..n as u32).collect();
        let params = HnswParams {
            m: 8,
            ef_construction: 64,
            ef_search: 64,
        };
        for metric in [Metric::InnerProduct, Metric::L2] {
            let mut answers = Vec::new();
            for simd in [false, avx2()] {
                let mut g = Graph::new(dim, metric, params);
                g.avx2 = simd;
                g.reserve_nodes(&ids, &vectors, 11).unwrap();
                g.link_reserved(false, &|_| {});
                let mut found = 0;
                let mut lists = Vec::new();
                for q in 0..50 {
                    let query = &vectors[q * dim..(q + 1) * dim];
                    let hits = g.search(query, 10, 64, &Filter::default()).unwrap();
                    // Every vector is its own nearest neighbour under L2.
                    found += hits.iter().any(|s| s.item == q as u32) as usize;
                    lists.push(hits.iter().map(|s| s.item).collect::<Vec<_>>());
                }
                if metric == Metric::L2 {
                    assert_eq!(found, 50, "{metric:?} simd {simd}");
                }
                answers.push(lists);
            }
            let same: usize = answers[0]
                .iter()
                .zip(&answers[1])
                .map(|(a, b)| a.iter().filter(|x| b.contains(x)).count())
                .sum();
            assert!(same >= 480, "{metric:?}: {same} of 500 shared");
        }
    }
}
