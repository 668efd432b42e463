//! The retrieval + ranking pipeline: sources → merge → features → ranker → re-rankers.

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rayon::prelude::*;
use reco_ann::{Exact, Hnsw, VectorIndex};
use reco_core::model::{Filter, FitOptions, Query, Recommender};
use reco_core::topk::{rank_cmp, Scored};
use reco_core::{Dataset, Interactions, Result};
use reco_models::Model;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;
use crate::ranker::{Gbdt, Logistic, Ranker, Rows};
use crate::rerank;
use crate::sources::{allowed, category_shares};
use crate::spec::{IndexKind, PipelineSpec, RankerKind, Refs, RerankSpec, SourceSpec};

/// Users whose later interactions train the ranker, at most (sampled with the seed): enough
/// rows for tens of features, bounded time on large data.
const RANKER_USERS: usize = 20_000;
/// Extra items kept in segment charts beyond the budget, so that seen items can be skipped.
const CHART_SLACK: usize = 500;

/// A vector index of one source.
pub(crate) enum AnyIndex {
    Exact(Exact),
    Hnsw(Hnsw),
    Mips(reco_ann::Mips),
}

impl AnyIndex {
    pub(crate) fn get(&self) -> &dyn VectorIndex {
        match self {
            AnyIndex::Exact(e) => e,
            AnyIndex::Hnsw(h) => h,
            AnyIndex::Mips(m) => m,
        }
    }
}

/// Fitted models, indexes and catalogue: everything the sources read.
pub(crate) struct Stage {
    pub models: Vec<Box<dyn Model>>,
    pub indexes: Vec<Option<AnyIndex>>,
    pub catalog: Catalog,
}

/// The merged candidates of one query, with the features of each.
pub(crate) struct Candidates {
    pub items: Vec<u32>,
    /// Per candidate, per source: (rank, score) when the source proposed it.
    pub hits: Vec<Vec<Option<(u32, f32)>>>,
    pub features: Vec<f32>,
    pub dim: usize,
}

/// A fitted pipeline; it implements [`Recommender`], so it is evaluated, saved and served like
/// any model.
pub struct Pipeline {
    pub(crate) spec: PipelineSpec,
    pub(crate) refs: Refs,
    pub(crate) seed: u64,
    pub(crate) stage: Stage,
    pub(crate) ranker: Ranker,
    pub(crate) feature_names: Vec<String>,
}

/// The model at a resolved reference.
fn model_at(models: &[Box<dyn Model>], k: Option<usize>) -> Result<&dyn Model> {
    k.and_then(|k| models.get(k))
        .map(|m| m.as_ref())
        .ok_or_else(|| reco_core::Error::param("pipeline", "a model reference does not resolve"))
}

impl Stage {
    /// The model at a resolved reference.
    pub(crate) fn model(&self, k: Option<usize>) -> Result<&dyn Model> {
        model_at(&self.models, k)
    }
}

/// The category fields and user segments the spec reads.
fn needs(spec: &PipelineSpec) -> (Vec<Option<String>>, Vec<(String, usize)>) {
    // The primary category comes first: the category-overlap feature and MMR use it.
    let mut fields: Vec<Option<String>> = Vec::new();
    let mut segments = Vec::new();
    // Always: the category-overlap feature reads it (dropped when items have no metadata).
    let want_primary = true;
    if want_primary {
        fields.push(None);
    }
    for s in &spec.sources {
        match s {
            SourceSpec::TopCategories { field: Some(f), .. } => fields.push(Some(f.clone())),
            SourceSpec::PopularInSegment { field, budget } => {
                segments.push((field.clone(), budget + CHART_SLACK))
            }
            _ => {}
        }
    }
    for r in &spec.rerank {
        if let RerankSpec::CategoryCap { field: Some(f), .. } = r {
            fields.push(Some(f.clone()));
        }
    }
    (fields, segments)
}

impl Stage {
    fn build(
        spec: &PipelineSpec,
        refs: &Refs,
        data: &Dataset,
        opts: &FitOptions<'_>,
    ) -> Result<Stage> {
        let mut models = Vec::with_capacity(spec.models.len());
        for (k, m) in spec.models.iter().enumerate() {
            opts.report(
                &format!("model {}", m.name),
                k as u64,
                spec.models.len() as u64,
                None,
            );
            models.push(m.spec.fit(
                data,
                &FitOptions {
                    validation: None,
                    ..opts.for_part()
                },
            )?);
        }
        let (fields, segments) = needs(spec);
        // Item features are optional when nothing asks for categories by default.
        let fields: Vec<Option<String>> = if data.item_features.is_none() {
            fields.into_iter().filter(|f| f.is_some()).collect()
        } else {
            fields
        };
        let catalog = Catalog::build(data, &fields, &segments)?;
        let mut indexes = Vec::with_capacity(spec.sources.len());
        for (s, source) in spec.sources.iter().enumerate() {
            let SourceSpec::Ann {
                model,
                index,
                metric,
                hnsw,
                ..
            } = source
            else {
                indexes.push(None);
                continue;
            };
            let m = model_at(&models, refs.sources.get(s).copied().flatten())?;
            let emb = m.as_embeddings().ok_or_else(|| {
                reco_core::Error::param(
                    "source",
                    format!("ann source: model {model:?} has no embeddings"),
                )
            })?;
            let dim = emb.dim();
            opts.report(&format!("index {model}"), 0, 1, None);
            indexes.push(Some(match index {
                IndexKind::Exact => {
                    let mut e = Exact::new(dim, *metric)?;
                    for i in 0..data.n_items() as u32 {
                        if let Some(v) = emb.item_vector(i).filter(|v| has_signal(data, i, v)) {
                            e.add(i, v)?;
                        }
                    }
                    AnyIndex::Exact(e)
                }
                IndexKind::Hnsw => {
                    let mut rows = Vec::with_capacity(data.n_items() * dim);
                    let mut ids = Vec::with_capacity(data.n_items());
                    for i in 0..data.n_items() as u32 {
                        if let Some(v) = emb.item_vector(i).filter(|v| has_signal(data, i, v)) {
                            rows.extend_from_slice(v);
                            ids.push(i);
                        }
                    }
                    // Inner product goes through the MIPS-to-L2 transformation: measured better
                    // than the native graph on factor-model vectors (reco_ann::Mips).
                    if *metric == reco_ann::Metric::InnerProduct {
                        AnyIndex::Mips(reco_ann::Mips::build(dim, *hnsw, &ids, &rows)?)
                    } else {
                        let mut h = Hnsw::new(dim, *metric, *hnsw)?;
                        h.insert_rows(&ids, &rows, &|_| {})?;
                        AnyIndex::Hnsw(h)
                    }
                }
            }));
        }
        Ok(Stage {
            models,
            indexes,
            catalog,
        })
    }
}

/// Whether an item belongs in an ANN index: factor models leave items without training data
/// at (or next to) zero, and hundreds of thousands of near-identical tiny vectors make a flat,
/// unsearchable region of an HNSW graph (measured on a 1M-item catalogue: the graph's recall of
/// the exact top 50 was 0.51 at ef 100). Such items carry no collaborative signal; the other
/// sources (popular, categories, a content model) still propose them.
fn has_signal(data: &Dataset, item: u32, v: &[f32]) -> bool {
    data.interactions.item_len(item) > 0 && v.iter().any(|x| *x != 0.0)
}

impl Pipeline {
    /// Names of the ranker's features, in order.
    pub fn feature_names(&self) -> &[String] {
        &self.feature_names
    }

    /// The specification.
    pub fn spec(&self) -> &PipelineSpec {
        &self.spec
    }

    /// The fitted ranker.
    pub fn ranker(&self) -> &Ranker {
        &self.ranker
    }

    /// Replaces the re-rankers and the list depth (they need no training: one fitted pipeline
    /// serves every setting of an MMR λ sweep).
    pub fn set_rerank(&mut self, rerank: Vec<RerankSpec>, depth: usize) -> Result<()> {
        let mut spec = self.spec.clone();
        spec.rerank = rerank;
        spec.depth = depth;
        self.refs = spec.resolve()?;
        self.spec = spec;
        Ok(())
    }

    /// Fits the models, trains the ranker on each user's latest interactions, and builds the
    /// indexes.
    pub fn fit(spec: PipelineSpec, data: &Dataset, opts: &FitOptions<'_>) -> Result<Pipeline> {
        let refs = spec.resolve()?;
        let names = feature_names(&spec);
        let (ranker, early) = match spec.ranker.kind {
            RankerKind::Sources => (Ranker::Sources, None),
            kind => {
                let (partial, rows) = Self::labelled(spec.clone(), refs.clone(), data, opts)?;
                opts.report("ranker", 0, 1, None);
                let r = &spec.ranker;
                let ranker = match kind {
                    RankerKind::Gbdt => {
                        Ranker::Gbdt(Gbdt::fit(&rows, r.trees, r.max_depth, r.learning_rate)?)
                    }
                    _ => Ranker::Logistic(Logistic::fit(&rows, r.regularization)?),
                };
                (ranker, if r.refit { None } else { Some(partial.stage) })
            }
        };
        let stage = match early {
            Some(s) => s,
            None => Stage::build(&spec, &refs, data, opts)?,
        };
        Ok(Pipeline {
            spec,
            refs,
            seed: opts.seed,
            stage,
            ranker,
            feature_names: names,
        })
    }

    /// The labelled rows `spec`'s ranker is trained on, and their feature names: the models are
    /// fitted on all but each user's latest `ranker.validation` share of `data`, and the candidates
    /// of up to 20,000 sampled users are labelled by that share. For studying or training a
    /// ranker outside reco.
    pub fn ranker_rows(
        spec: PipelineSpec,
        data: &Dataset,
        opts: &FitOptions<'_>,
    ) -> Result<(Rows, Vec<String>)> {
        let refs = spec.resolve()?;
        let (p, rows) = Self::labelled(spec, refs, data, opts)?;
        Ok((rows, p.feature_names))
    }

    /// A pipeline without a ranker fitted on the earlier share of `data`, and its labelled rows.
    fn labelled(
        spec: PipelineSpec,
        refs: Refs,
        data: &Dataset,
        opts: &FitOptions<'_>,
    ) -> Result<(Pipeline, Rows)> {
        let fold = crate::latest_share(data, spec.ranker.validation, opts.seed ^ 0x5eed)?;
        let stage = Stage::build(&spec, &refs, &fold.train, opts)?;
        let partial = Pipeline {
            feature_names: feature_names(&spec),
            spec,
            refs,
            seed: opts.seed,
            stage,
            ranker: Ranker::Sources,
        };
        opts.report("ranker rows", 0, 1, None);
        let rows = partial.training_rows(&fold.test, opts.seed)?;
        Ok((partial, rows))
    }

    /// Labelled feature rows: each sampled user's candidates that are in `later` are positives,
    /// `negatives` per positive are drawn from the rest.
    fn training_rows(&self, later: &Interactions, seed: u64) -> Result<Rows> {
        let mut users: Vec<u32> = (0..later.n_users() as u32)
            .filter(|&u| later.user_len(u) > 0)
            .collect();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed ^ 0xa11);
        users.shuffle(&mut rng);
        users.truncate(RANKER_USERS);
        users.sort_unstable();
        let negatives = self.spec.ranker.negatives;
        let parts: Vec<(Vec<f32>, Vec<f32>)> = users
            .par_iter()
            .map(|&u| -> Result<(Vec<f32>, Vec<f32>)> {
                let c = self.candidates(&Query::user(u), &[], None)?;
                let positive: Vec<bool> =
                    c.items.iter().map(|i| later.get(u, *i).is_some()).collect();
                let n_pos = positive.iter().filter(|&&p| p).count();
                let (mut x, mut y) = (Vec::new(), Vec::new());
                if n_pos == 0 {
                    return Ok((x, y));
                }
                let mut neg: Vec<usize> = (0..c.items.len()).filter(|&k| !positive[k]).collect();
                let mut r = rand_chacha::ChaCha8Rng::seed_from_u64(
                    seed ^ (u as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15),
                );
                neg.shuffle(&mut r);
                neg.truncate(negatives * n_pos);
                for k in (0..c.items.len()).filter(|&k| positive[k]).chain(neg) {
                    x.extend_from_slice(&c.features[k * c.dim..(k + 1) * c.dim]);
                    y.push(if positive[k] { 1.0 } else { 0.0 });
                }
                Ok((x, y))
            })
            .collect::<Result<_>>()?;
        let dim = self.feature_names.len();
        let mut rows = Rows {
            dim,
            x: Vec::new(),
            y: Vec::new(),
        };
        for (x, y) in parts {
            rows.x.extend(x);
            rows.y.extend(y);
        }
        Ok(rows)
    }

    /// The history of a query, oldest first.
    fn history<'q>(&'q self, query: &'q Query<'_>) -> std::borrow::Cow<'q, [u32]> {
        match (query.user, query.history.is_empty()) {
            (Some(u), true) => std::borrow::Cow::Borrowed(self.stage.catalog.history(u)),
            _ => std::borrow::Cow::Owned(query.history.iter().map(|h| h.0).collect()),
        }
    }

    /// Every source's proposals for `query`, merged, with features.
    pub(crate) fn candidates(
        &self,
        query: &Query<'_>,
        exclude: &[u32],
        allow: Option<&[u32]>,
    ) -> Result<Candidates> {
        let history = self.history(query);
        let mut seen: Vec<u32> = history.to_vec();
        seen.extend_from_slice(exclude);
        seen.sort_unstable();
        seen.dedup();
        let cat = &self.stage.catalog;
        let n_sources = self.spec.sources.len();
        let mut pos: FxHashMap<u32, usize> = FxHashMap::default();
        let mut items = Vec::new();
        let mut hits: Vec<Vec<Option<(u32, f32)>>> = Vec::new();
        for (s, source) in self.spec.sources.iter().enumerate() {
            let proposed = self.source(s, source, query, &history, &seen, allow)?;
            for (rank, c) in proposed.into_iter().enumerate() {
                let k = *pos.entry(c.item).or_insert_with(|| {
                    items.push(c.item);
                    hits.push(vec![None; n_sources]);
                    items.len() - 1
                });
                hits[k][s] = Some((rank as u32, c.score));
            }
        }
        // Features, in the order of `feature_names`.
        let primary = cat.categories(None);
        let shares = primary.map(|c| category_shares(c, &history));
        let model_scores: Vec<Vec<f32>> = self
            .refs
            .ranker
            .iter()
            .map(|&k| self.model_scores(k, query, &items))
            .collect::<Result<_>>()?;
        let dim = self.feature_names.len();
        let mut features = Vec::with_capacity(items.len() * dim);
        let activity = (history.len() as f32).ln_1p();
        for (k, &i) in items.iter().enumerate() {
            let mut n = 0f32;
            for h in &hits[k] {
                match h {
                    Some((r, sc)) => {
                        features.extend([
                            1.0 / (1.0 + *r as f32),
                            if sc.is_finite() { *sc } else { 0.0 },
                        ]);
                        n += 1.0;
                    }
                    None => features.extend([0.0, 0.0]),
                }
            }
            let overlap = match (primary, &shares) {
                (Some(c), Some(sh)) => c
                    .of(i)
                    .iter()
                    .map(|v| sh.get(v).copied().unwrap_or(0.0))
                    .sum::<f64>() as f32,
                _ => 0.0,
            };
            features.extend([
                (cat.counts[i as usize] as f32).ln_1p(),
                cat.recent[i as usize],
                cat.age[i as usize],
                overlap,
                activity,
                n,
            ]);
            for m in &model_scores {
                features.push(m[k]);
            }
        }
        Ok(Candidates {
            items,
            hits,
            features,
            dim,
        })
    }

    /// Scores of `items` under model `m`: inner products when it has vectors, else its scores.
    fn model_scores(&self, m: usize, query: &Query<'_>, items: &[u32]) -> Result<Vec<f32>> {
        let model = self.stage.model(Some(m))?;
        if let (Some(e), Some(u)) = (model.as_embeddings(), query.user) {
            if let Some(uv) = e.user_vector(u) {
                return Ok(items
                    .iter()
                    .map(|&i| e.item_vector(i).map_or(0.0, |iv| reco_ann::dot(uv, iv)))
                    .collect());
            }
        }
        let mut all = vec![0f32; model.n_items()];
        model.score(query, &mut all)?;
        Ok(items
            .iter()
            .map(|&i| {
                let s = all.get(i as usize).copied().unwrap_or(0.0);
                if s.is_finite() {
                    s
                } else {
                    0.0
                }
            })
            .collect())
    }

    /// The final list for `query`: candidates ranked, then re-ranked; (item, ranker score) in
    /// order, the first `depth` re-ranked and the rest by ranker score.
    pub fn rank(
        &self,
        query: &Query<'_>,
        exclude: &[u32],
        allow: Option<&[u32]>,
    ) -> Result<Vec<Scored>> {
        let c = self.candidates(query, exclude, allow)?;
        let scores: Vec<f64> = (0..c.items.len())
            .map(|k| {
                let x = &c.features[k * c.dim..(k + 1) * c.dim];
                let rr: f32 = c.hits[k]
                    .iter()
                    .flatten()
                    .map(|(r, _)| 1.0 / (1.0 + *r as f32))
                    .sum();
                self.ranker.score(x, rr)
            })
            .collect();
        let mut order: Vec<usize> = (0..c.items.len()).collect();
        order.sort_by(|&a, &b| {
            rank_cmp(
                &Scored {
                    item: c.items[a],
                    score: scores[a] as f32,
                },
                &Scored {
                    item: c.items[b],
                    score: scores[b] as f32,
                },
            )
        });
        let cat = &self.stage.catalog;
        let user_seed = self.seed
            ^ query
                .user
                .map_or(u64::MAX, |u| u as u64)
                .wrapping_mul(0x2545_f491_4f6c_dd1d);
        for (r, &model_ref) in self.spec.rerank.iter().zip(&self.refs.rerank) {
            order = match r {
                RerankSpec::Mmr { lambda, model } => {
                    let items: Vec<u32> = order.iter().map(|&p| c.items[p]).collect();
                    let rel: Vec<f64> = order.iter().map(|&p| scores[p]).collect();
                    let picked = match model {
                        Some(m) => {
                            let e =
                                self.stage
                                    .model(model_ref)?
                                    .as_embeddings()
                                    .ok_or_else(|| {
                                        reco_core::Error::param(
                                            "rerank",
                                            format!("mmr: model {m:?} has no item vectors"),
                                        )
                                    })?;
                            let sim = |a: u32, b: u32| match (e.item_vector(a), e.item_vector(b)) {
                                (Some(x), Some(y)) => rerank::vector_cosine(x, y),
                                _ => 0.0,
                            };
                            rerank::mmr(&items, &rel, *lambda, self.spec.depth, &sim)
                        }
                        None => {
                            let cats = cat.categories(None);
                            let sim = |a: u32, b: u32| {
                                cats.map_or(0.0, |c| rerank::category_cosine(c.of(a), c.of(b)))
                            };
                            rerank::mmr(&items, &rel, *lambda, self.spec.depth, &sim)
                        }
                    };
                    let mut out: Vec<usize> = picked.iter().map(|&k| order[k]).collect();
                    let mut used = vec![false; order.len()];
                    picked.iter().for_each(|&k| used[k] = true);
                    out.extend(
                        order
                            .iter()
                            .enumerate()
                            .filter(|(k, _)| !used[*k])
                            .map(|(_, &p)| p),
                    );
                    out
                }
                RerankSpec::Explore { slots, of, head } => {
                    let cut = (*head * cat.n_items as f64) as u32;
                    let tail = |p: usize| cat.popularity_rank[c.items[p] as usize] >= cut;
                    rerank::explore(&order, *slots, *of, &tail, user_seed)
                }
                RerankSpec::CategoryCap { max, field } => {
                    let cats = cat.categories(field.as_deref());
                    let first = |p: usize| cats.and_then(|cs| cs.of(c.items[p]).first().copied());
                    rerank::category_cap(&order, *max, &first)
                }
            };
        }
        Ok(order
            .into_iter()
            .map(|p| Scored {
                item: c.items[p],
                score: scores[p] as f32,
            })
            .collect())
    }

    /// The candidate sources that proposed `item` for `query`, with the item's rank in each,
    /// and the ranker's feature contributions when it is linear.
    pub fn trace(&self, query: &Query<'_>, item: u32) -> Result<Option<Trace>> {
        let c = self.candidates(query, &[], None)?;
        let Some(k) = c.items.iter().position(|&i| i == item) else {
            return Ok(None);
        };
        let sources = self
            .spec
            .sources
            .iter()
            .zip(&c.hits[k])
            .filter_map(|(s, h)| h.map(|(rank, score)| (s.label(), rank, score)))
            .collect();
        let x = &c.features[k * c.dim..(k + 1) * c.dim];
        let contributions = match &self.ranker {
            Ranker::Logistic(m) => {
                let mut v: Vec<(String, f64)> = self
                    .feature_names
                    .iter()
                    .cloned()
                    .zip(m.contributions(x))
                    .collect();
                v.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
                v
            }
            _ => Vec::new(),
        };
        Ok(Some(Trace {
            sources,
            contributions,
        }))
    }
}

/// Why a pipeline proposed an item.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Trace {
    /// (source, rank in it, its score).
    pub sources: Vec<(String, u32, f32)>,
    /// (feature, share of the log-odds), largest first; empty for non-linear rankers.
    pub contributions: Vec<(String, f64)>,
}

/// The ranker's feature names for a spec.
pub(crate) fn feature_names(spec: &PipelineSpec) -> Vec<String> {
    let mut v = Vec::new();
    for s in &spec.sources {
        let l = s.label();
        v.push(format!("{l}:rr"));
        v.push(format!("{l}:score"));
    }
    for f in [
        "popularity",
        "recent",
        "age",
        "category_overlap",
        "user_activity",
        "sources",
    ] {
        v.push(f.to_string());
    }
    for m in &spec.ranker.models {
        v.push(format!("model:{m}"));
    }
    v
}

impl Recommender for Pipeline {
    fn n_items(&self) -> usize {
        self.stage.catalog.n_items
    }

    /// Candidates score so that their order is the pipeline's (re-ranked positions first,
    /// all ≥ 1); every other item scores in (−1, 0] by popularity, the pipeline's backfill.
    fn score(&self, query: &Query<'_>, out: &mut [f32]) -> Result<()> {
        let cat = &self.stage.catalog;
        let n_items = cat.n_items.max(1) as f32;
        for (o, &r) in out.iter_mut().zip(&cat.popularity_rank) {
            *o = -(r as f32) / n_items;
        }
        let list = self.rank(query, &[], None)?;
        let n = list.len() as f32;
        for (p, s) in list.iter().enumerate() {
            if let Some(o) = out.get_mut(s.item as usize) {
                *o = n - p as f32;
            }
        }
        Ok(())
    }

    /// The pipeline's list, then popular items when fewer than `k` candidates pass the filter.
    fn recommend_users<'f>(
        &self,
        users: &[u32],
        k: usize,
        filter: &(dyn Fn(usize) -> Filter<'f> + Sync),
    ) -> Result<Vec<Vec<Scored>>> {
        // The list is re-ranked after scoring, so each user goes through `recommend`.
        users
            .par_iter()
            .enumerate()
            .map(|(j, &u)| self.recommend(&Query::user(u), k, &filter(j)))
            .collect()
    }

    fn recommend(&self, query: &Query<'_>, k: usize, filter: &Filter<'_>) -> Result<Vec<Scored>> {
        let mut list = self.rank(query, filter.exclude, filter.allow)?;
        list.truncate(k);
        if list.len() < k {
            let history = self.history(query);
            let mut taken: Vec<u32> = list
                .iter()
                .map(|s| s.item)
                .chain(history.iter().copied())
                .collect();
            taken.extend_from_slice(filter.exclude);
            taken.sort_unstable();
            taken.dedup();
            let cat = &self.stage.catalog;
            let n_items = cat.n_items.max(1) as f32;
            let need = k - list.len();
            list.extend(
                cat.by_popularity
                    .iter()
                    .copied()
                    .filter(|&i| allowed(i, &taken, filter.allow))
                    .take(need)
                    .map(|i| Scored {
                        item: i,
                        score: -(cat.popularity_rank[i as usize] as f32) / n_items,
                    }),
            );
        }
        Ok(list)
    }

    fn as_explain(&self) -> Option<&dyn reco_core::explain::Explain> {
        Some(self)
    }
}
