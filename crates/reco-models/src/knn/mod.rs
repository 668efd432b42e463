//! User-kNN and item-kNN: neighbourhood models for rating prediction (Surprise's KNNBasic,
//! KNNWithMeans, KNNWithZScore, KNNBaseline) and for top-N ranking (implicit's item-item
//! semantics), with the similarities of [`similarity`].
//!
//! Item-kNN precomputes each item's neighbour list (pruned to `max_neighbours`, in parallel).
//! User-kNN computes a user's neighbours when asked, by a sparse product over the user's items,
//! so it never holds an n_users × n_users matrix and works with 140k users.

pub mod similarity;

use crate::spec::{check, CheckState, Shape};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use reco_core::model::{FitOptions, Query, RatingPredictor, Recommender, SimilarItems};
use reco_core::topk::Scored;
use reco_core::{Dataset, Error, Interactions, Result};

use crate::bias::{BaselineParams, Biases, Scale};
use crate::neighbours::NeighbourLists;
use crate::spec::{Model, ModelSpec};
pub use similarity::Similarity;
use similarity::{Accumulator, SimilarityIndex};

/// How a rating is predicted from the neighbours.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Prediction {
    /// Σ sim · r / Σ sim (KNNBasic).
    #[default]
    Basic,
    /// μ_x + Σ sim · (r − μ_n) / Σ sim (KNNWithMeans; the notebook's mean-centred formula).
    WithMeans,
    /// μ_x + σ_x Σ sim · (r − μ_n)/σ_n / Σ sim (KNNWithZScore).
    WithZscore,
    /// b_xy + Σ sim · (r − b_n) / Σ sim with ALS baselines (KNNBaseline).
    Baseline,
}

/// Parameters of user-kNN and item-kNN; defaults follow Surprise where it has one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KnnParams {
    /// Neighbours used per prediction (Surprise `k`).
    pub k: usize,
    /// Fewer usable neighbours than this makes a prediction fall back (Surprise `min_k`).
    pub min_k: usize,
    /// Similarity.
    pub similarity: Similarity,
    /// Shrinkage of `pearson-baseline`.
    pub shrinkage: f64,
    /// Pairs with fewer co-rated columns have similarity 0.
    pub min_support: u32,
    /// Neighbours with a lower similarity are ignored (threshold neighbourhoods).
    pub threshold: f32,
    /// Rating prediction variant.
    pub prediction: Prediction,
    /// Item-kNN: neighbours kept per item (0 keeps every positive one: exact, but memory grows
    /// with the square of the catalogue). For top-N this is implicit's `K`.
    pub max_neighbours: usize,
    /// BM25 `K1`.
    pub bm25_k1: f64,
    /// BM25 `B`.
    pub bm25_b: f64,
    /// Baselines for `pearson-baseline` and the `baseline` prediction.
    pub baseline: BaselineParams,
    /// Rank items by predicted rating (the notebook's kNN recommenders) instead of the
    /// neighbourhood score Σ sim · value.
    pub rank_by_rating: bool,
}

impl Default for KnnParams {
    fn default() -> Self {
        KnnParams {
            k: 40,
            min_k: 1,
            similarity: Similarity::Cosine,
            shrinkage: 100.0,
            min_support: 1,
            threshold: 0.0,
            prediction: Prediction::Basic,
            max_neighbours: 0,
            bm25_k1: 1.2,
            bm25_b: 0.75,
            baseline: BaselineParams::default(),
            rank_by_rating: false,
        }
    }
}

impl KnnParams {
    /// Checks every rule, one error per broken rule.
    pub fn validate(&self) -> Result<()> {
        if self.k == 0 {
            return Err(Error::param("k", "must be at least 1"));
        }
        if self.min_k > self.k {
            return Err(Error::param(
                "min_k",
                format!(
                    "must be at most k ({}), got {}: every prediction would fall back",
                    self.k, self.min_k
                ),
            ));
        }
        if !(self.shrinkage >= 0.0 && self.shrinkage.is_finite()) {
            return Err(Error::param("shrinkage", "must be a finite number >= 0"));
        }
        if !self.threshold.is_finite() {
            return Err(Error::param("threshold", "must be finite"));
        }
        if !(self.bm25_k1 >= 0.0 && self.bm25_k1.is_finite()) {
            return Err(Error::param("bm25_k1", "must be a finite number >= 0"));
        }
        if !(0.0..=1.0).contains(&self.bm25_b) {
            return Err(Error::param("bm25_b", "must be in [0, 1]"));
        }
        self.baseline.validate()
    }
}

/// Which side is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Side {
    /// Users are compared (user-kNN).
    User,
    /// Items are compared (item-kNN).
    Item,
}

/// Mean and standard deviation of each row of the ratings.
#[derive(Clone, Debug, Serialize, Deserialize)]
struct Moments {
    mean: Vec<f32>,
    sd: Vec<f32>,
}

fn row_moments(m: &Interactions, global: f32) -> Moments {
    let (mut mean, mut sd) = (
        Vec::with_capacity(m.n_users()),
        Vec::with_capacity(m.n_users()),
    );
    for x in 0..m.n_users() as u32 {
        let v = m.user_values(x);
        if v.is_empty() {
            mean.push(global);
            sd.push(0.0);
            continue;
        }
        let mu = v.iter().map(|&r| r as f64).sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|&r| (r as f64 - mu).powi(2)).sum::<f64>() / v.len() as f64;
        mean.push(mu as f32);
        sd.push(var.sqrt() as f32);
    }
    Moments { mean, sd }
}

/// The rows × columns matrix of one side: users × items as is, items × users transposed.
fn oriented(m: &Interactions, side: Side) -> Interactions {
    match side {
        Side::User => m.clone(),
        Side::Item => m.transpose(),
    }
}

/// A fitted user-kNN or item-kNN model.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Knn {
    params: KnnParams,
    pub(crate) side: Side,
    /// Raw ratings, rows = compared entities.
    rows: Interactions,
    /// Transformed matrix and norms for the similarity.
    index: SimilarityIndex,
    moments: Moments,
    biases: Biases,
    scale: Scale,
    /// Item-kNN: neighbour lists (CSR over items).
    graph: NeighbourLists,
}

impl Knn {
    /// Fits on `data`: transforms the matrix for the similarity and, for item-kNN, computes every
    /// item's neighbour list in parallel.
    pub fn fit(p: &KnnParams, side: Side, data: &Dataset, opts: &FitOptions<'_>) -> Result<Self> {
        p.validate()?;
        let m = &data.interactions;
        // Baselines only where the similarity or the prediction uses them; μ always (fallback).
        let needs_biases =
            p.similarity == Similarity::PearsonBaseline || p.prediction == Prediction::Baseline;
        let biases = if needs_biases && m.nnz() > 0 {
            Biases::fit(m, &p.baseline, &FitOptions::default())?
        } else {
            let mu = if m.nnz() == 0 {
                0.0
            } else {
                (m.values().iter().map(|&v| v as f64).sum::<f64>() / m.nnz() as f64) as f32
            };
            Biases {
                mu,
                bu: vec![0.0; m.n_users()],
                bi: vec![0.0; m.n_items()],
            }
        };
        let rows = oriented(m, side);
        let moments = row_moments(&rows, biases.mu);
        let values: Vec<f32> = match p.similarity {
            Similarity::AdjustedCosine => {
                // Centre by the mean of the other side (item-kNN: each user's mean).
                let cols = row_moments(
                    &oriented(
                        m,
                        if side == Side::User {
                            Side::Item
                        } else {
                            Side::User
                        },
                    ),
                    biases.mu,
                );
                rows.iter()
                    .map(|(_, c, v)| v - cols.mean[c as usize])
                    .collect()
            }
            Similarity::PearsonBaseline => rows
                .iter()
                .map(|(x, c, v)| {
                    let (u, i) = if side == Side::User { (x, c) } else { (c, x) };
                    v - biases.baseline(u, i)
                })
                .collect(),
            Similarity::Tfidf => similarity::tfidf(&rows),
            Similarity::Bm25 => similarity::bm25(&rows, p.bm25_k1, p.bm25_b),
            Similarity::Jaccard => vec![1.0; rows.nnz()],
            _ => rows.values().to_vec(),
        };
        let index = SimilarityIndex::new(
            rows.with_values(&values),
            p.similarity,
            p.shrinkage,
            p.min_support,
        );
        let mut model = Knn {
            params: p.clone(),
            side,
            scale: Scale::of(m),
            rows,
            index,
            moments,
            biases,
            graph: NeighbourLists::default(),
        };
        if side == Side::Item {
            let n = model.rows.n_users();
            let done = std::sync::atomic::AtomicU64::new(0);
            let lists: Vec<Vec<(u32, f32)>> = (0..n as u32)
                .into_par_iter()
                .map_init(
                    || Accumulator::new(n),
                    |acc, x| {
                        let l = model.neighbours_of_row(x, acc, p.max_neighbours);
                        let d = done.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
                        if d.is_multiple_of(1024) || d == n as u64 {
                            opts.report("items", d, n as u64, None);
                        }
                        l
                    },
                )
                .collect();
            model.graph = NeighbourLists::from_lists(lists);
        }
        Ok(model)
    }

    /// Neighbours of row `x` by the similarity, best first, above the threshold.
    fn neighbours_of_row(&self, x: u32, acc: &mut Accumulator, keep: usize) -> Vec<(u32, f32)> {
        let m = &self.index.m;
        let mut l = self
            .index
            .row(m.user_items(x), m.user_values(x), Some(x), acc, keep);
        l.retain(|p| p.1 >= self.params.threshold);
        l
    }

    /// User-kNN: the query user's `k`-nearest neighbours who have `item`, most similar first,
    /// and their summed similarity.
    pub(crate) fn neighbours_with(&self, q: &Query<'_>, item: u32, k: usize) -> (Vec<u32>, f32) {
        let Some(u) = q.user.filter(|&u| (u as usize) < self.rows.n_users()) else {
            return (Vec::new(), 0.0);
        };
        let mut l = self.neighbours_of_row(u, &mut Accumulator::new(self.rows.n_users()), 0);
        l.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        l.truncate(self.params.k);
        let with: Vec<(u32, f32)> = l
            .into_iter()
            .filter(|&(n, _)| self.rows.get(n, item).is_some())
            .collect();
        let weight = with.iter().map(|p| p.1).sum();
        (with.into_iter().take(k).map(|p| p.0).collect(), weight)
    }

    /// Item-kNN neighbour list of item `i`.
    fn item_list(&self, i: u32) -> (&[u32], &[f32]) {
        self.graph.of(i)
    }

    fn n_items_total(&self) -> usize {
        match self.side {
            Side::User => self.rows.n_items(),
            Side::Item => self.rows.n_users(),
        }
    }

    /// Per-user state for predictions: user-kNN, the similarity to every user (0 when none);
    /// item-kNN, the user's rating of every item (NaN when unrated).
    fn user_context(&self, u: u32) -> Vec<f32> {
        match self.side {
            Side::User => {
                let mut dense = vec![0f32; self.rows.n_users()];
                if (u as usize) < self.rows.n_users() {
                    for (n, s) in
                        self.neighbours_of_row(u, &mut Accumulator::new(self.rows.n_users()), 0)
                    {
                        dense[n as usize] = s;
                    }
                }
                dense
            }
            Side::Item => {
                let mut dense = vec![f32::NAN; self.rows.n_users()];
                if (u as usize) < self.rows.n_items() {
                    for (&j, &r) in self.rows.item_users(u).iter().zip(self.rows.item_values(u)) {
                        dense[j as usize] = r;
                    }
                }
                dense
            }
        }
    }

    /// Predicted rating before clipping, or `None` when Surprise would declare it impossible.
    fn estimate(&self, u: u32, i: u32, ctx: &[f32]) -> Option<f32> {
        let (x, y) = match self.side {
            Side::User => (u, i),
            Side::Item => (i, u),
        };
        if x as usize >= self.rows.n_users() || y as usize >= self.rows.n_items() {
            return None;
        }
        let k = self.params.k;
        // The k most similar rows that rated column y: (row, sim, rating).
        let mut nbrs: Vec<(u32, f32, f32)> = Vec::with_capacity(k);
        match self.side {
            Side::Item => {
                let (idx, sim) = self.item_list(x);
                for (&n, &s) in idx.iter().zip(sim) {
                    let r = ctx[n as usize];
                    if !r.is_nan() {
                        nbrs.push((n, s, r));
                        if nbrs.len() == k {
                            break;
                        }
                    }
                }
            }
            Side::User => {
                nbrs.extend(
                    self.rows
                        .item_users(y)
                        .iter()
                        .zip(self.rows.item_values(y))
                        .filter(|(&n, _)| ctx[n as usize] > 0.0)
                        .map(|(&n, &r)| (n, ctx[n as usize], r)),
                );
                let best_first = |a: &(u32, f32, f32), b: &(u32, f32, f32)| {
                    b.1.total_cmp(&a.1).then(a.0.cmp(&b.0))
                };
                if nbrs.len() > k {
                    nbrs.select_nth_unstable_by(k, best_first);
                    nbrs.truncate(k);
                }
            }
        }
        let mean = &self.moments.mean;
        let base = |n: u32| match self.side {
            Side::User => self.biases.baseline(n, y),
            Side::Item => self.biases.baseline(y, n),
        };
        let enough = nbrs.len() >= self.params.min_k.max(1);
        let sum_sim: f32 = nbrs.iter().map(|n| n.1).sum();
        let weighted = |f: &dyn Fn(u32, f32) -> f32| {
            nbrs.iter().map(|&(n, s, r)| s * f(n, r)).sum::<f32>() / sum_sim
        };
        match self.params.prediction {
            Prediction::Basic => enough.then(|| weighted(&|_, r| r)),
            Prediction::WithMeans => Some(
                mean[x as usize]
                    + if enough {
                        weighted(&|n, r| r - mean[n as usize])
                    } else {
                        0.0
                    },
            ),
            Prediction::WithZscore => {
                let sd = |n: u32| {
                    let s = self.moments.sd[n as usize];
                    if s > 0.0 {
                        s
                    } else {
                        1.0
                    }
                };
                Some(
                    mean[x as usize]
                        + if enough {
                            sd(x) * weighted(&|n, r| (r - mean[n as usize]) / sd(n))
                        } else {
                            0.0
                        },
                )
            }
            Prediction::Baseline => {
                let own = base(x);
                Some(
                    own + if enough {
                        weighted(&|n, r| r - base(n))
                    } else {
                        0.0
                    },
                )
            }
        }
    }
}

impl RatingPredictor for Knn {
    fn predict(&self, u: u32, i: u32) -> f32 {
        let mut out = [0f32];
        self.predict_user(u, &[i], &mut out);
        out[0]
    }

    fn predict_user(&self, u: u32, items: &[u32], out: &mut [f32]) {
        let ctx = self.user_context(u);
        for (o, &i) in out.iter_mut().zip(items) {
            *o = self.scale.clip(
                self.estimate(u, i, &ctx)
                    .filter(|v| v.is_finite())
                    .unwrap_or(self.biases.mu),
            );
        }
    }
}

impl Recommender for Knn {
    fn n_items(&self) -> usize {
        self.n_items_total()
    }

    /// Item-kNN: score(i) = Σ_{j ∈ history} value_j · sim(j → i) over j's neighbour list.
    /// User-kNN: the k most similar users, score(i) = Σ sim · value over those who have i.
    fn score(&self, q: &Query<'_>, out: &mut [f32]) -> Result<()> {
        if let (true, Some(u), true) = (self.params.rank_by_rating, q.user, q.history.is_empty()) {
            let items: Vec<u32> = (0..out.len() as u32).collect();
            self.predict_user(u, &items, out);
            return Ok(());
        }
        out.iter_mut().for_each(|o| *o = 0.0);
        let owned: Vec<(u32, f32)>;
        let history: &[(u32, f32)] = match (q.history.is_empty(), q.user) {
            (false, _) => q.history,
            (true, Some(u)) => {
                owned = match self.side {
                    Side::User if (u as usize) < self.rows.n_users() => self
                        .rows
                        .user_items(u)
                        .iter()
                        .copied()
                        .zip(self.rows.user_values(u).iter().copied())
                        .collect(),
                    Side::Item if (u as usize) < self.rows.n_items() => self
                        .rows
                        .item_users(u)
                        .iter()
                        .copied()
                        .zip(self.rows.item_values(u).iter().copied())
                        .collect(),
                    _ => Vec::new(),
                };
                &owned
            }
            (true, None) => &[],
        };
        if let Some(&(bad, _)) = history.iter().find(|h| h.0 as usize >= out.len()) {
            return Err(Error::param(
                "history",
                format!("item index {bad} is outside the catalogue"),
            ));
        }
        match self.side {
            Side::Item => {
                for &(j, v) in history {
                    let (idx, sim) = self.item_list(j);
                    for (&i, &s) in idx.iter().zip(sim) {
                        out[i as usize] += v * s;
                    }
                }
            }
            Side::User => {
                let mut sorted: Vec<(u32, f32)> = history.to_vec();
                sorted.sort_by_key(|h| h.0);
                let (cols, vals): (Vec<u32>, Vec<f32>) = sorted.into_iter().unzip();
                let vals = self.transform_history(&cols, &vals, q.user);
                let mut acc = Accumulator::new(self.rows.n_users());
                let mut nbrs = self.index.row(&cols, &vals, q.user, &mut acc, 0);
                nbrs.retain(|p| p.1 >= self.params.threshold);
                nbrs.truncate(self.params.k);
                for (n, s) in nbrs {
                    for (&i, &r) in self.rows.user_items(n).iter().zip(self.rows.user_values(n)) {
                        out[i as usize] += s * r;
                    }
                }
            }
        }
        Ok(())
    }

    fn as_rating_predictor(&self) -> Option<&dyn RatingPredictor> {
        Some(self)
    }

    fn as_explain(&self) -> Option<&dyn reco_core::explain::Explain> {
        Some(self)
    }

    fn as_similar_items(&self) -> Option<&dyn SimilarItems> {
        (self.side == Side::Item).then_some(self as &dyn SimilarItems)
    }
}

impl Knn {
    /// A user history in the value space of the similarity matrix: a known user's own
    /// transformed row, or raw values for an anonymous history (weights are not re-derived).
    fn transform_history(&self, cols: &[u32], vals: &[f32], user: Option<u32>) -> Vec<f32> {
        if let Some(u) = user.filter(|&u| (u as usize) < self.index.m.n_users()) {
            if self.rows.user_items(u) == cols {
                return self.index.m.user_values(u).to_vec();
            }
        }
        if self.params.similarity == Similarity::Jaccard {
            return vec![1.0; vals.len()];
        }
        vals.to_vec()
    }

    /// Users most similar to `u` (user-kNN).
    pub fn similar_users(&self, u: u32, k: usize) -> Result<Vec<Scored>> {
        if self.side != Side::User {
            return Err(Error::Unsupported("similar_users needs user-knn".into()));
        }
        if u as usize >= self.rows.n_users() {
            return Err(Error::param(
                "user",
                format!("index {u} is outside the training users"),
            ));
        }
        let mut acc = Accumulator::new(self.rows.n_users());
        Ok(self
            .neighbours_of_row(u, &mut acc, k)
            .into_iter()
            .take(k)
            .map(|(item, score)| Scored { item, score })
            .collect())
    }

    /// The neighbours that contributed to `item`'s score for `history`: (neighbour, weight), best
    /// first — the explanation of a kNN recommendation.
    pub fn explain(&self, history: &[(u32, f32)], item: u32, k: usize) -> Vec<(u32, f32)> {
        let mut out: Vec<(u32, f32)> = match self.side {
            Side::Item => history
                .iter()
                .filter_map(|&(j, v)| {
                    let (idx, sim) = self.item_list(j);
                    idx.iter().position(|&i| i == item).map(|p| (j, v * sim[p]))
                })
                .collect(),
            Side::User => Vec::new(),
        };
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        out.truncate(k);
        out
    }
}

impl SimilarItems for Knn {
    fn similar_items(&self, item: u32, k: usize) -> Result<Vec<Scored>> {
        self.graph.similar(item, k)
    }
}

impl Model for Knn {
    fn spec(&self) -> ModelSpec {
        match self.side {
            Side::User => ModelSpec::new::<UserKnn>(self.params.clone()),
            Side::Item => ModelSpec::new::<ItemKnn>(self.params.clone()),
        }
    }
    fn state(&self) -> Result<Vec<u8>> {
        reco_core::artifact::encode(self)
    }
}

/// The `user-knn` kind: neighbours are users similar to the one asking.
pub struct UserKnn;

/// The `item-knn` kind: neighbours are items similar to the user's items.
pub struct ItemKnn;

/// The similarities the examples cover, with neighbour lists sized as their use needs: rating
/// models keep every neighbour (exact), ranking models 50 per item (implicit's `K`).
fn knn_examples(prediction: Prediction) -> Vec<KnnParams> {
    [
        Similarity::Cosine,
        Similarity::AdjustedCosine,
        Similarity::Pearson,
        Similarity::PearsonBaseline,
        Similarity::Msd,
        Similarity::Jaccard,
        Similarity::VectorCosine,
        Similarity::Tfidf,
        Similarity::Bm25,
    ]
    .map(|similarity| KnnParams {
        similarity,
        max_neighbours: if similarity.co_rated() { 0 } else { 50 },
        prediction,
        ..Default::default()
    })
    .to_vec()
}

/// Item-kNN keeps `max_neighbours` per item (every item when 0); user-kNN keeps nothing per
/// pair: it ranks neighbours per query, with a dense row of user scores per worker.
fn knn_footprint(p: &KnnParams, side: Side, shape: &crate::spec::Shape) -> crate::spec::Footprint {
    match side {
        Side::Item => {
            let kept = if p.max_neighbours == 0 {
                shape.items
            } else {
                p.max_neighbours
            };
            crate::spec::Footprint::neighbours(shape, shape.items, kept, "max_neighbours")
        }
        Side::User => {
            crate::spec::Footprint::neighbours(shape, shape.users, 0, "the number of users")
        }
    }
}

fn knn_capabilities(p: &KnnParams, side: Side) -> crate::spec::Capabilities {
    crate::spec::Capabilities {
        ranks: !p.similarity.co_rated() && !p.rank_by_rating,
        rates: true,
        similar_items: side == Side::Item,
        ..Default::default()
    }
}

/// Parameters renamed in the baseline options both sides share.
const KNN_RENAMED: &[(&str, &str)] = &[
    ("baseline.reg", "regularization"),
    ("baseline.reg_u", "regularization_bu"),
    ("baseline.reg_i", "regularization_bi"),
];

/// The two kinds differ only in the side compared and their examples' prediction.
macro_rules! knn_kind {
    ($kind:ty, $name:literal, $summary:literal, $side:expr, $prediction:expr) => {
        impl crate::spec::Kind for $kind {
            const NAME: &'static str = $name;
            const SUMMARY: &'static str = $summary;
            const RENAMED: &'static [(&'static str, &'static str)] = KNN_RENAMED;
            type Params = KnnParams;
            type Fitted = Knn;

            fn validate(p: &KnnParams) -> Result<()> {
                p.validate()
            }
            fn footprint(p: &KnnParams, shape: &crate::spec::Shape) -> crate::spec::Footprint {
                knn_footprint(p, $side, shape)
            }
            fn capabilities(p: &KnnParams) -> crate::spec::Capabilities {
                knn_capabilities(p, $side)
            }
            fn fit(p: &KnnParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<Knn> {
                Knn::fit(p, $side, data, opts)
            }
            fn restore(p: &KnnParams, state: &[u8], shape: &Shape) -> Result<Knn> {
                let m = crate::spec::restore_state(p, state, shape, |m: &Knn| &m.params)?;
                check_side(m, $side)
            }
            fn examples() -> Vec<KnnParams> {
                knn_examples($prediction)
            }
        }
    };
}

knn_kind!(
    UserKnn,
    "user-knn",
    "User-based neighbourhood model (Surprise's KNN* on users).",
    Side::User,
    Prediction::WithMeans
);
knn_kind!(
    ItemKnn,
    "item-knn",
    "Item-based neighbourhood model (Surprise's KNN* on items, implicit's item-item).",
    Side::Item,
    Prediction::Basic
);

/// A state saved by the other side's kind would answer as the wrong model.
fn check_side(m: Knn, side: Side) -> Result<Knn> {
    if m.side != side {
        return Err(Error::artifact(
            "model.bin",
            "the state is of the other kNN side than the specification names",
        ));
    }
    Ok(m)
}

impl CheckState for Knn {
    fn check_state(&self, shape: &Shape) -> std::result::Result<(), String> {
        let (rows, cols) = match self.side {
            Side::User => (shape.users, shape.items),
            Side::Item => (shape.items, shape.users),
        };
        let same = |what: &str, m: &Interactions| {
            if m.n_users() == rows && m.n_items() == cols && m.nnz() == self.rows.nnz() {
                Ok(())
            } else {
                Err(format!("{what} do not match the id space"))
            }
        };
        same("the stored ratings", &self.rows)?;
        same("the similarity index", &self.index.m)?;
        check::len("the row norms", self.index.norms.len(), rows)?;
        check::len("the row means", self.moments.mean.len(), rows)?;
        check::len("the row deviations", self.moments.sd.len(), rows)?;
        self.biases.check(shape)?;
        self.graph.check(rows, self.side == Side::User)
    }
}
