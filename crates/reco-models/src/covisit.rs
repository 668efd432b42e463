//! Item-to-item co-visitation: items that appear in the same sessions ("viewed this, also
//! viewed"). Sessions come from the sessions file or from user histories cut at an inactivity
//! gap. Each item keeps its `max_neighbours` strongest neighbours, so memory is bounded by
//! items × max_neighbours; recommendations come from the last N items of a history with a decay.

use crate::spec::{check, CheckState, Shape};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use reco_core::model::{FitOptions, Query, Recommender, SimilarItems};
use reco_core::topk::Scored;
use reco_core::{Dataset, Error, Result};

use crate::neighbours::NeighbourLists;
use crate::spec::impl_model;

/// Where sessions come from.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SessionSource {
    /// The dataset's sessions file (the notebook's).
    #[default]
    Sessions,
    /// Each user's training history in time order, cut where `gap_seconds` pass without
    /// activity (one session per user without timestamps).
    Histories,
}

/// How co-occurrence counts become weights (c_ab: sessions with both, n_a: sessions with a,
/// N: sessions).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CovisWeighting {
    /// c_ab (the notebook's).
    #[default]
    Count,
    /// c_ab / sqrt(n_a n_b).
    Cosine,
    /// c_ab / (n_a + n_b − c_ab).
    Jaccard,
    /// c_ab · N / (n_a n_b).
    Lift,
    /// c_ab / n_a, the probability of b given a.
    Conditional,
}

/// Parameters of co-visitation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CovisitParams {
    /// Session source.
    pub source: SessionSource,
    /// Inactivity gap that ends a session, for `histories`.
    pub gap_seconds: i64,
    /// Weighting of counts.
    pub weighting: CovisWeighting,
    /// Weight pairs by 1 / distance in the session instead of 1.
    pub position_decay: bool,
    /// Neighbours kept per item.
    pub max_neighbours: usize,
    /// Sessions longer than this keep only their last items (bounds the pair count).
    pub max_session_len: usize,
    /// Recommend from the last N items of a history.
    pub recent_items: usize,
    /// Weight of the t-th most recent item: decay^t.
    pub decay: f32,
    /// Items without co-visitation fill the list by popularity, below every co-visited item.
    pub fill_with_popularity: bool,
}

impl Default for CovisitParams {
    fn default() -> Self {
        CovisitParams {
            source: SessionSource::Sessions,
            gap_seconds: 1800,
            weighting: CovisWeighting::Count,
            position_decay: false,
            max_neighbours: 50,
            max_session_len: 200,
            recent_items: 1,
            decay: 0.8,
            fill_with_popularity: true,
        }
    }
}

impl CovisitParams {
    /// Checks every rule, one error per broken rule.
    pub fn validate(&self) -> Result<()> {
        if self.max_neighbours == 0 {
            return Err(Error::param("max_neighbours", "must be at least 1"));
        }
        if self.recent_items == 0 {
            return Err(Error::param("recent_items", "must be at least 1"));
        }
        if self.max_session_len < 2 {
            return Err(Error::param("max_session_len", "must be at least 2"));
        }
        if self.gap_seconds <= 0 {
            return Err(Error::param("gap_seconds", "must be positive"));
        }
        if !(self.decay > 0.0 && self.decay <= 1.0) {
            return Err(Error::param("decay", "must be in (0, 1]"));
        }
        Ok(())
    }
}

/// Sessions as unique-item sequences (first occurrence order), capped to the last items.
fn sessions_of(p: &CovisitParams, data: &Dataset) -> Result<Vec<Vec<u32>>> {
    let dedup = |s: &[u32]| {
        let mut seen = rustc_hash_set(s.len());
        let mut out: Vec<u32> = s.iter().copied().filter(|i| seen.insert(*i)).collect();
        if out.len() > p.max_session_len {
            out.drain(..out.len() - p.max_session_len);
        }
        out
    };
    match p.source {
        SessionSource::Sessions => {
            let s = data.sessions.as_ref().ok_or_else(|| {
                Error::param(
                    "source",
                    "the data has no sessions; use source = \"histories\"",
                )
            })?;
            Ok(s.iter().map(dedup).collect())
        }
        SessionSource::Histories => {
            let m = &data.interactions;
            let mut out = Vec::new();
            for u in 0..m.n_users() as u32 {
                let items = m.user_items(u);
                match m.user_timestamps(u) {
                    Some(ts) => {
                        let mut order: Vec<usize> = (0..items.len()).collect();
                        order.sort_by_key(|&k| (ts[k], items[k]));
                        let mut cur: Vec<u32> = Vec::new();
                        let mut last = i64::MIN;
                        for k in order {
                            if !cur.is_empty() && ts[k].saturating_sub(last) > p.gap_seconds {
                                out.push(dedup(&cur));
                                cur.clear();
                            }
                            cur.push(items[k]);
                            last = ts[k];
                        }
                        if !cur.is_empty() {
                            out.push(dedup(&cur));
                        }
                    }
                    None if !items.is_empty() => out.push(dedup(items)),
                    None => {}
                }
            }
            Ok(out)
        }
    }
}

fn rustc_hash_set(cap: usize) -> std::collections::HashSet<u32> {
    std::collections::HashSet::with_capacity(cap)
}

/// The fitted co-visitation graph.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Covisit {
    params: CovisitParams,
    graph: NeighbourLists,
    popularity: Vec<f32>,
    /// Each user's most recent items, oldest first (the query context of known users).
    recent: Vec<Vec<u32>>,
}

impl Covisit {
    /// Counts pairs item by item (in parallel) and keeps each item's top neighbours.
    pub fn fit(p: &CovisitParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<Self> {
        p.validate()?;
        let n = data.n_items();
        let sessions = sessions_of(p, data)?;
        // Item → sessions holding it, with the item's position there.
        let mut holders: Vec<Vec<(u32, u32)>> = vec![Vec::new(); n];
        for (s, items) in sessions.iter().enumerate() {
            for (pos, &i) in items.iter().enumerate() {
                if let Some(h) = holders.get_mut(i as usize) {
                    h.push((s as u32, pos as u32));
                }
            }
        }
        let n_sessions = sessions.len().max(1) as f64;
        let df: Vec<f64> = holders.iter().map(|h| h.len() as f64).collect();
        let done = std::sync::atomic::AtomicU64::new(0);
        let lists: Vec<Vec<(u32, f32)>> = (0..n)
            .into_par_iter()
            .map_init(
                || (vec![0f64; n], Vec::<u32>::new(), Vec::<(u32, f32)>::new()),
                |(acc, touched, buf), a| {
                    for &(s, pa) in &holders[a] {
                        for (pb, &b) in sessions[s as usize].iter().enumerate() {
                            if b as usize == a {
                                continue;
                            }
                            let w = if p.position_decay {
                                1.0 / (pb as f64 - pa as f64).abs()
                            } else {
                                1.0
                            };
                            if acc[b as usize] == 0.0 {
                                touched.push(b);
                            }
                            acc[b as usize] += w;
                        }
                    }
                    buf.clear();
                    buf.extend(touched.iter().map(|&b| {
                        let c = acc[b as usize];
                        let (na, nb) = (df[a], df[b as usize]);
                        let w = match p.weighting {
                            CovisWeighting::Count => c,
                            CovisWeighting::Cosine => c / (na * nb).sqrt(),
                            CovisWeighting::Jaccard => c / (na + nb - c).max(c),
                            CovisWeighting::Lift => c * n_sessions / (na * nb),
                            CovisWeighting::Conditional => c / na,
                        };
                        (b, w as f32)
                    }));
                    for &b in touched.iter() {
                        acc[b as usize] = 0.0;
                    }
                    touched.clear();
                    let l = crate::neighbours::best_pairs(buf, p.max_neighbours);
                    let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                    if d.is_multiple_of(4096) || d == n as u64 {
                        opts.report("items", d, n as u64, None);
                    }
                    l
                },
            )
            .collect();
        let graph = NeighbourLists::from_lists(lists);
        let m = &data.interactions;
        let counts = m.item_counts();
        let max = counts.iter().copied().max().unwrap_or(0).max(1) as f32;
        let recent = (0..m.n_users() as u32)
            .map(|u| {
                let items = m.user_items(u);
                let mut order: Vec<usize> = (0..items.len()).collect();
                if let Some(ts) = m.user_timestamps(u) {
                    order.sort_by_key(|&k| (ts[k], items[k]));
                }
                order
                    .iter()
                    .rev()
                    .take(p.recent_items)
                    .rev()
                    .map(|&k| items[k])
                    .collect()
            })
            .collect();
        Ok(Covisit {
            params: p.clone(),
            graph,
            popularity: counts.iter().map(|&c| c as f32 / (max + 1.0)).collect(),
            recent,
        })
    }

    fn neighbours(&self, i: u32) -> (&[u32], &[f32]) {
        self.graph.of(i)
    }

    /// The recent items of a query, oldest first.
    fn context(&self, q: &Query<'_>) -> Vec<u32> {
        if !q.history.is_empty() {
            return q
                .history
                .iter()
                .rev()
                .take(self.params.recent_items)
                .rev()
                .map(|h| h.0)
                .collect();
        }
        q.user
            .and_then(|u| self.recent.get(u as usize))
            .cloned()
            .unwrap_or_default()
    }

    /// For each of `items`, the context item that contributed most: "because you viewed X".
    pub fn explain(&self, q: &Query<'_>, item: u32) -> Option<(u32, f32)> {
        let ctx = self.context(q);
        let mut best: Option<(u32, f32)> = None;
        for (t, &a) in ctx.iter().rev().enumerate() {
            let (nb, w) = self.neighbours(a);
            if let Some(p) = nb.iter().position(|&b| b == item) {
                let c = w[p] * self.params.decay.powi(t as i32);
                if best.is_none_or(|b| c > b.1) {
                    best = Some((a, c));
                }
            }
        }
        best
    }
}

impl Recommender for Covisit {
    fn n_items(&self) -> usize {
        self.graph.len()
    }

    fn score(&self, q: &Query<'_>, out: &mut [f32]) -> Result<()> {
        out.iter_mut().for_each(|o| *o = 0.0);
        let ctx = self.context(q);
        if let Some(&bad) = ctx.iter().find(|&&a| a as usize >= out.len()) {
            return Err(Error::param(
                "history",
                format!("item index {bad} is outside the catalogue"),
            ));
        }
        for (t, &a) in ctx.iter().rev().enumerate() {
            let d = self.params.decay.powi(t as i32);
            let (nb, w) = self.neighbours(a);
            for (&b, &x) in nb.iter().zip(w) {
                out[b as usize] += d * x;
            }
        }
        if self.params.fill_with_popularity {
            // Below every co-visited item: popularity mapped into [−1, 0).
            for (o, &p) in out.iter_mut().zip(&self.popularity) {
                if *o == 0.0 {
                    *o = p - 1.0;
                }
            }
        }
        Ok(())
    }

    fn as_explain(&self) -> Option<&dyn reco_core::explain::Explain> {
        Some(self)
    }

    fn as_similar_items(&self) -> Option<&dyn SimilarItems> {
        Some(self)
    }
}

impl SimilarItems for Covisit {
    fn similar_items(&self, item: u32, k: usize) -> Result<Vec<Scored>> {
        self.graph.similar(item, k)
    }
}

impl_model!(Covisit);

impl crate::spec::Kind for Covisit {
    const NAME: &'static str = "covisit";
    const SUMMARY: &'static str = "Item-to-item co-visitation from sessions or cut histories.";
    const RENAMED: &'static [(&'static str, &'static str)] =
        &[("top_k", "max_neighbours"), ("last_n", "recent_items")];
    type Params = CovisitParams;
    type Fitted = Covisit;

    fn validate(p: &CovisitParams) -> Result<()> {
        p.validate()
    }

    fn footprint(p: &CovisitParams, shape: &crate::spec::Shape) -> crate::spec::Footprint {
        crate::spec::Footprint::neighbours(shape, shape.items, p.max_neighbours, "max_neighbours")
    }
    fn capabilities(_: &CovisitParams) -> crate::spec::Capabilities {
        use crate::spec::Capabilities;
        Capabilities {
            ranks: true,
            similar_items: true,
            ..Default::default()
        }
    }

    fn fit(p: &CovisitParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<Covisit> {
        Covisit::fit(p, data, opts)
    }

    fn restore(p: &CovisitParams, state: &[u8], shape: &Shape) -> Result<Covisit> {
        crate::spec::restore_state(p, state, shape, |m: &Covisit| &m.params)
    }

    fn examples() -> Vec<CovisitParams> {
        [CovisWeighting::Count, CovisWeighting::Cosine]
            .map(|weighting| CovisitParams {
                source: SessionSource::Histories,
                gap_seconds: 86_400,
                weighting,
                recent_items: 5,
                ..Default::default()
            })
            .to_vec()
    }
}

impl CheckState for Covisit {
    fn check_state(&self, shape: &Shape) -> std::result::Result<(), String> {
        self.graph.check(shape.items, false)?;
        check::len("the popularity", self.popularity.len(), shape.items)?;
        for r in &self.recent {
            check::below("the recent items", r, shape.items)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use reco_core::loaders::{DatasetBuilder, LoadOptions};
    use reco_core::IdMap;

    fn data() -> Dataset {
        let mut b = DatasetBuilder::new(false);
        let (u, a) = (b.users.get_or_insert("u"), b.items.get_or_insert("a"));
        b.triplets.push(u, a, 1.0, None);
        for i in ["b", "c", "d"] {
            b.items.get_or_insert(i);
        }
        // Sessions: [a, b, a, c], [a, b], [c, d]  (items a=0, b=1, c=2, d=3)
        let rows = vec![
            (0, 0.0, 0),
            (0, 1.0, 1),
            (0, 2.0, 0),
            (0, 3.0, 2),
            (1, 0.0, 0),
            (1, 1.0, 1),
            (2, 0.0, 2),
            (2, 1.0, 3),
        ];
        b.sessions = Some((
            IdMap::from(vec!["s0".to_string(), "s1".into(), "s2".into()]),
            rows,
        ));
        b.finish("t", &LoadOptions::default()).unwrap()
    }

    #[test]
    fn counts_and_normalisations_by_hand() {
        let fit = |w| {
            Covisit::fit(
                &CovisitParams {
                    weighting: w,
                    ..Default::default()
                },
                &data(),
                &FitOptions::default(),
            )
            .unwrap()
        };
        // a: with b in 2 sessions, with c in 1 (a repeated in s0 counts once).
        let m = fit(CovisWeighting::Count);
        assert_eq!(
            m.similar_items(0, 5).unwrap(),
            vec![
                Scored {
                    item: 1,
                    score: 2.0
                },
                Scored {
                    item: 2,
                    score: 1.0
                }
            ]
        );
        // n_a = 2, n_c = 2, c_ac = 1: cosine 1/2, jaccard 1/3, lift 1·3/4, conditional 1/2.
        let c_of = |m: &Covisit| {
            m.similar_items(0, 5)
                .unwrap()
                .iter()
                .find(|s| s.item == 2)
                .unwrap()
                .score
        };
        assert!((c_of(&fit(CovisWeighting::Cosine)) - 0.5).abs() < 1e-6);
        assert!((c_of(&fit(CovisWeighting::Jaccard)) - 1.0 / 3.0).abs() < 1e-6);
        assert!((c_of(&fit(CovisWeighting::Lift)) - 0.75).abs() < 1e-6);
        assert!((c_of(&fit(CovisWeighting::Conditional)) - 0.5).abs() < 1e-6);
        // The user's last item is a: b first, then c; d fills by popularity below them.
        let recs = m
            .recommend(
                &Query::user(0),
                3,
                &reco_core::model::Filter {
                    exclude: &[0],
                    allow: None,
                },
            )
            .unwrap();
        assert_eq!(
            recs.iter().map(|s| s.item).collect::<Vec<_>>(),
            vec![1, 2, 3]
        );
        assert!(recs[2].score < 0.0);
        assert_eq!(
            m.explain(&Query::history(&[(3, 1.0), (0, 1.0)]), 1),
            Some((0, 2.0))
        );
    }

    #[test]
    fn histories_are_cut_at_the_gap() {
        let mut b = DatasetBuilder::new(true);
        for (i, t) in [("a", 0), ("b", 100), ("c", 10_000), ("d", 10_050)] {
            let (u, i) = (b.users.get_or_insert("u"), b.items.get_or_insert(i));
            b.triplets.push(u, i, 1.0, Some(t));
        }
        let ds = b.finish("t", &LoadOptions::default()).unwrap();
        let p = CovisitParams {
            source: SessionSource::Histories,
            ..Default::default()
        };
        let m = Covisit::fit(&p, &ds, &FitOptions::default()).unwrap();
        assert_eq!(
            m.similar_items(0, 5)
                .unwrap()
                .iter()
                .map(|s| s.item)
                .collect::<Vec<_>>(),
            vec![1]
        );
        assert_eq!(
            m.similar_items(2, 5)
                .unwrap()
                .iter()
                .map(|s| s.item)
                .collect::<Vec<_>>(),
            vec![3]
        );
        assert!(
            Covisit::fit(&CovisitParams::default(), &ds, &FitOptions::default()).is_err(),
            "no sessions file"
        );
    }
}
