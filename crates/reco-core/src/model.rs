//! The traits models implement: a required [`Recommender`] and optional capabilities.

use crate::error::Result;
use crate::topk::{top_k, Scored};

/// Who is asking for recommendations.
#[derive(Clone, Copy, Debug, Default)]
pub struct Query<'a> {
    /// A user known to the model (dense index), if any.
    pub user: Option<u32>,
    /// Interactions `(item, value)` of an anonymous or returning user, used by models that can
    /// score from a history; for a known user the model's own training history is used instead
    /// when this is empty.
    pub history: &'a [(u32, f32)],
}

impl<'a> Query<'a> {
    /// A known user.
    pub fn user(u: u32) -> Self {
        Query {
            user: Some(u),
            history: &[],
        }
    }

    /// An anonymous user with a history.
    pub fn history(h: &'a [(u32, f32)]) -> Self {
        Query {
            user: None,
            history: h,
        }
    }
}

/// Which items may be recommended.
#[derive(Clone, Copy, Debug, Default)]
pub struct Filter<'a> {
    /// Items never to return, sorted ascending (typically the user's training items).
    pub exclude: &'a [u32],
    /// When set, only these items (sorted ascending) may be returned.
    pub allow: Option<&'a [u32]>,
}

/// Progress of long work, reported through [`FitOptions::progress`].
#[derive(Clone, Copy, Debug)]
pub struct Progress<'a> {
    /// What is being done ("epoch", "users").
    pub stage: &'a str,
    /// Units done.
    pub done: u64,
    /// Units in all.
    pub total: u64,
    /// Training loss so far, when the model has one.
    pub loss: Option<f64>,
}

/// Options of one fit, common to every model.
#[derive(Clone, Copy, Default)]
pub struct FitOptions<'a> {
    /// Seed of every random choice.
    pub seed: u64,
    /// Callback for progress; the CLI draws a bar with it.
    pub progress: Option<&'a (dyn Fn(Progress<'_>) + Sync)>,
    /// Held-out interactions (same id space) for early stopping, by models that support it.
    pub validation: Option<&'a crate::interactions::Interactions>,
    /// A directory where models that train in epochs (the neural networks) keep their whole
    /// training state after every epoch, and from which a fit of the same model, parameters,
    /// data and seed resumes instead of starting over. Other models ignore it.
    pub checkpoint: Option<&'a std::path::Path>,
}

impl FitOptions<'_> {
    /// Reports progress at a safe point between units of sequential work (an epoch), and
    /// returns [`crate::Error::Interrupted`] if the user asked to stop (Ctrl-C).
    pub fn step(&self, stage: &str, done: u64, total: u64, loss: Option<f64>) -> Result<()> {
        self.report(stage, done, total, loss);
        crate::interrupt::check()
    }

    /// These options for a model that a composite model (pipeline, stack, blend) fits as one of
    /// its parts: without the checkpoint directory, which holds the state of one fit only.
    pub fn for_part(&self) -> Self {
        FitOptions {
            checkpoint: None,
            ..*self
        }
    }

    /// Reports progress if anyone listens (from parallel workers too; it never stops them).
    pub fn report(&self, stage: &str, done: u64, total: u64, loss: Option<f64>) {
        if let Some(p) = self.progress {
            p(Progress {
                stage,
                done,
                total,
                loss,
            });
        }
    }
}

/// A fitted model that ranks items. Fitted models are immutable and shareable across threads.
pub trait Recommender: Send + Sync {
    /// Number of items the model scores (the dataset's item count at fit time).
    fn n_items(&self) -> usize;

    /// Writes a score for every item into `out` (`out.len() == n_items()`); higher is better.
    fn score(&self, query: &Query<'_>, out: &mut [f32]) -> Result<()>;

    /// The `k` best items for `query` that pass `filter`, best first, ties by ascending index.
    fn recommend(&self, query: &Query<'_>, k: usize, filter: &Filter<'_>) -> Result<Vec<Scored>> {
        let mut scores = vec![0f32; self.n_items()];
        self.score(query, &mut scores)?;
        Ok(match filter.allow {
            Some(allow) => top_k(&scores, k, filter.exclude, |i| {
                allow.binary_search(&i).is_err()
            }),
            None => top_k(&scores, k, filter.exclude, |_| false),
        })
    }

    /// Scores every item for several known users at once: `out` holds `users.len()` rows of
    /// `n_items()` scores, row `j` being what [`Recommender::score`] writes for
    /// `Query::user(users[j])` (up to float rounding). Factor models override it with one
    /// blocked matrix product per call, several times faster than scoring users one by one;
    /// [`by_blocks`] calls it.
    fn score_users(&self, users: &[u32], out: &mut [f32]) -> Result<()> {
        check_block(self.n_items(), users.len(), out.len())?;
        for (&u, row) in users
            .iter()
            .zip(out.chunks_exact_mut(self.n_items().max(1)))
        {
            self.score(&Query::user(u), row)?;
        }
        Ok(())
    }

    /// The `k` best items for each of `users` (known users), exactly as [`Recommender::recommend`]
    /// gives them one by one, with `filter(j)` for `users[j]`. By default blocks of users are
    /// scored with [`Recommender::score_users`], the blocks in parallel ([`by_blocks`]); a
    /// model whose `recommend` is not the top of its scores (a re-ranking pipeline) overrides
    /// it.
    fn recommend_users<'f>(
        &self,
        users: &[u32],
        k: usize,
        filter: &(dyn Fn(usize) -> Filter<'f> + Sync),
    ) -> Result<Vec<Vec<Scored>>> {
        by_blocks(self, users, k, filter)
    }

    /// The rating-prediction capability, if the model has it.
    fn as_rating_predictor(&self) -> Option<&dyn RatingPredictor> {
        None
    }

    /// The similar-items capability, if the model has it.
    fn as_similar_items(&self) -> Option<&dyn SimilarItems> {
        None
    }

    /// The embeddings capability (user and item vectors), if the model has it.
    fn as_embeddings(&self) -> Option<&dyn Embeddings> {
        None
    }

    /// The explanation capability, if the model can say why it scores an item.
    fn as_explain(&self) -> Option<&dyn crate::explain::Explain> {
        None
    }
}

/// Checks that a [`Recommender::score_users`] output holds one row of `n_items` per user.
pub fn check_block(n_items: usize, users: usize, out: usize) -> Result<()> {
    if n_items.checked_mul(users) != Some(out) {
        return Err(crate::Error::param(
            "out",
            format!("{out} scores for {users} users of {n_items} items"),
        ));
    }
    Ok(())
}

/// Users scored together by [`by_blocks`]: a block's scores take about 4 MiB (they stay
/// in the last-level cache while their top lists are picked), and there are at least four
/// blocks per thread when the users are few, so that the threads share the work evenly.
pub fn block_users(n_items: usize, users: usize) -> usize {
    let by_memory = ((1usize << 20) / n_items.max(1)).clamp(1, 256);
    let by_threads = users.div_ceil(4 * rayon::current_num_threads()).max(1);
    by_memory.min(by_threads)
}

/// [`Recommender::recommend_users`] by blocks: each block of users is scored with one
/// [`Recommender::score_users`] call and its top lists picked from the scores, the blocks in
/// parallel.
pub fn by_blocks<'f, M: Recommender + ?Sized>(
    model: &M,
    users: &[u32],
    k: usize,
    filter: &(dyn Fn(usize) -> Filter<'f> + Sync),
) -> Result<Vec<Vec<Scored>>> {
    use rayon::prelude::*;
    let n = model.n_items();
    let block = block_users(n, users.len());
    let blocks = users
        .par_chunks(block)
        .enumerate()
        .map_init(Vec::new, |buf: &mut Vec<f32>, (c, chunk)| {
            let len = chunk
                .len()
                .checked_mul(n)
                .ok_or_else(|| crate::Error::param("users", "too many scores for one block"))?;
            buf.resize(len, 0.0);
            model.score_users(chunk, buf)?;
            Ok((0..chunk.len())
                .map(|j| {
                    let f = filter(c * block + j);
                    let scores = &buf[j * n..(j + 1) * n];
                    match f.allow {
                        Some(allow) => {
                            top_k(scores, k, f.exclude, |i| allow.binary_search(&i).is_err())
                        }
                        None => top_k(scores, k, f.exclude, |_| false),
                    }
                })
                .collect::<Vec<_>>())
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(blocks.into_iter().flatten().collect())
}

/// Models whose scores are inner products of user and item vectors (matrix factorisation,
/// two-tower networks); what an ANN index is built from.
pub trait Embeddings: Send + Sync {
    /// Vector length.
    fn dim(&self) -> usize;
    /// The vector of a training user.
    fn user_vector(&self, user: u32) -> Option<&[f32]>;
    /// The vector of an item.
    fn item_vector(&self, item: u32) -> Option<&[f32]>;
    /// Every training user's vector as one row-major `users × dim` matrix, when the model
    /// stores them so: callers (the Python package) can then lend the memory instead of
    /// copying it.
    fn user_matrix(&self) -> Option<&[f32]> {
        None
    }
    /// Every item's vector as one row-major `items × dim` matrix, when stored so.
    fn item_matrix(&self) -> Option<&[f32]> {
        None
    }
}

/// Models that predict the rating a user would give an item.
pub trait RatingPredictor: Send + Sync {
    /// Predicted rating of `item` by `user` (either may be unknown to training: the model falls
    /// back to what it knows, e.g. the global mean).
    fn predict(&self, user: u32, item: u32) -> f32;

    /// Predictions for several items of one user; models that share work across a user's
    /// items (user-kNN computes the neighbourhood once) override it.
    fn predict_user(&self, user: u32, items: &[u32], out: &mut [f32]) {
        for (o, &i) in out.iter_mut().zip(items) {
            *o = self.predict(user, i);
        }
    }
}

/// Models that find items related to an item.
pub trait SimilarItems: Send + Sync {
    /// The `k` items most similar to `item`, excluding itself.
    fn similar_items(&self, item: u32, k: usize) -> Result<Vec<Scored>>;
}
