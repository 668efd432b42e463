//! The training loop the networks share: seeded shuffling, mini-batches, AdamW, progress with
//! loss and throughput, and early stopping on a validation split.

use std::cell::RefCell;
use std::time::Instant;

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use reco_core::model::FitOptions;
use reco_core::{Error, Interactions, Result};
use reco_models::mf::validation_recall;

use crate::checkpoint::{self, Progress};
use crate::nn_err;
use crate::optim::{AdamSettings, DenseAdam, SparseTable};

/// A network's parameters as the loop trains them: every variable by name (for the best
/// epoch's snapshot), and the embedding tables among them that are trained row-sparse (the
/// others by dense AdamW). The loss closure borrows the tables to gather a batch's rows.
pub(crate) struct Params<'a> {
    pub vars: &'a [(String, Var)],
    pub sparse: &'a RefCell<Vec<SparseTable>>,
}

/// Optimisation settings every network shares.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Optim {
    /// Passes over the training interactions (at most; early stopping may end sooner).
    pub epochs: usize,
    /// Interactions per mini-batch.
    pub batch_size: usize,
    /// Adam's step size.
    pub learning_rate: f64,
    /// Decoupled weight decay (AdamW); 0 is plain Adam.
    pub weight_decay: f64,
    /// Epochs without a better validation score before stopping (0: never stop early). Used only
    /// when validation data is given (`reco train --validation`).
    pub patience: usize,
}

/// The [`Optim`] of a parameter struct that has its fields (parameter structs keep them at top
/// level, as serde cannot flatten into a struct that refuses unknown fields).
macro_rules! optim_of {
    ($p:expr) => {
        $crate::train::Optim {
            epochs: $p.epochs,
            batch_size: $p.batch_size,
            learning_rate: $p.learning_rate,
            weight_decay: $p.weight_decay,
            patience: $p.patience,
        }
    };
}
pub(crate) use optim_of;

impl Optim {
    /// Checks the settings.
    pub fn validate(&self) -> Result<()> {
        if self.epochs == 0 {
            return Err(Error::param("epochs", "must be at least 1"));
        }
        if self.batch_size == 0 {
            return Err(Error::param("batch_size", "must be at least 1"));
        }
        if !(self.learning_rate > 0.0 && self.learning_rate.is_finite()) {
            return Err(Error::param("learning_rate", "must be positive"));
        }
        if !(self.weight_decay >= 0.0 && self.weight_decay.is_finite()) {
            return Err(Error::param("weight_decay", "must be non-negative"));
        }
        Ok(())
    }
}

/// Rating predictions for (user, item) pairs.
pub(crate) type Predict<'a> = dyn Fn(&[(u32, u32)]) -> Vec<f32> + 'a;

/// Weights by name.
type Snapshot = Vec<(String, Tensor)>;

/// How an epoch is judged on the validation split.
pub(crate) enum Validation<'a> {
    /// Recall@10 with training items excluded, over at most 2,000 validation users sampled
    /// once (higher is better) — the definition the factor models use.
    Recall {
        train: &'a Interactions,
        valid: &'a Interactions,
        users: Vec<u32>,
    },
    /// RMSE of the predicted ratings (lower is better).
    Rmse { valid: &'a Interactions },
}

impl<'a> Validation<'a> {
    /// Recall-based validation, or None without validation data.
    pub fn recall(
        train: &'a Interactions,
        valid: Option<&'a Interactions>,
        seed: u64,
    ) -> Option<Self> {
        let valid = valid?;
        let mut users: Vec<u32> = (0..valid.n_users().min(train.n_users()) as u32)
            .filter(|&u| valid.user_len(u) > 0)
            .collect();
        users.shuffle(&mut ChaCha8Rng::seed_from_u64(seed ^ 0x5eed));
        users.truncate(2000);
        Some(Validation::Recall {
            train,
            valid,
            users,
        })
    }

    /// Whether higher scores are better.
    pub fn higher_is_better(&self) -> bool {
        matches!(self, Validation::Recall { .. })
    }

    /// The score of a model given by its full score vector per user and its rating prediction.
    pub fn score(
        &self,
        n_items: usize,
        score_user: &(dyn Fn(u32, &mut [f32]) + Sync),
        predict: &Predict<'_>,
    ) -> f64 {
        match self {
            Validation::Recall {
                train,
                valid,
                users,
            } => validation_recall(train, valid, users, n_items, score_user),
            Validation::Rmse { valid } => {
                let pairs: Vec<(u32, u32)> = valid
                    .iter()
                    .filter(|&(_, i, _)| (i as usize) < n_items)
                    .map(|(u, i, _)| (u, i))
                    .collect();
                let pred = predict(&pairs);
                let se: f64 = valid
                    .iter()
                    .filter(|&(_, i, _)| (i as usize) < n_items)
                    .zip(pred)
                    .map(|((_, _, r), p)| f64::from(r - p).powi(2))
                    .sum();
                (se / pairs.len().max(1) as f64).sqrt()
            }
        }
    }
}

/// Keeps the best epoch's weights and says when to stop.
pub(crate) struct Best {
    higher: bool,
    patience: usize,
    best: Option<(f64, usize, Snapshot)>,
}

impl Best {
    pub fn new(higher: bool, patience: usize) -> Best {
        Best {
            higher,
            patience,
            best: None,
        }
    }

    /// Records epoch `epoch`'s score, copying the weights when it is the best; true to stop.
    pub fn observe(&mut self, epoch: usize, score: f64, vars: &[(String, Var)]) -> Result<bool> {
        let better = self.best.as_ref().is_none_or(|b| {
            if self.higher {
                score > b.0
            } else {
                score < b.0
            }
        });
        if better {
            let copy = vars
                .iter()
                .map(|(n, v)| Ok((n.clone(), v.as_tensor().copy()?)))
                .collect::<candle_core::Result<Vec<_>>>()
                .map_err(nn_err("keeping the best weights"))?;
            self.best = Some((score, epoch, copy));
        }
        let since = epoch - self.best.as_ref().map_or(epoch, |b| b.1);
        Ok(self.patience > 0 && since >= self.patience)
    }

    /// The best score and its epoch, if an epoch was observed.
    pub fn score(&self) -> Option<(f64, usize)> {
        self.best.as_ref().map(|b| (b.0, b.1))
    }

    /// The best epoch's weights, if an epoch was observed.
    pub fn snapshot(&self) -> Option<&Snapshot> {
        self.best.as_ref().map(|b| &b.2)
    }

    /// Takes a saved best epoch (when resuming).
    pub fn set(&mut self, score: f64, epoch: usize, weights: Snapshot) {
        self.best = Some((score, epoch, weights));
    }

    /// Puts the best epoch's weights back into the variables.
    pub fn restore(self, vars: &[(String, Var)]) -> Result<()> {
        if let Some((_, _, copy)) = self.best {
            for ((_, v), (_, t)) in vars.iter().zip(copy) {
                v.set(&t).map_err(nn_err("restoring the best weights"))?;
            }
        }
        Ok(())
    }
}

thread_local! {
    /// Overrides [`side_by_side`]'s choice on this thread (tests of both ways).
    pub(crate) static SIDE_BY_SIDE: std::cell::Cell<Option<bool>> = const { std::cell::Cell::new(None) };
}

/// Runs `a` and `b`: at the same time, each on a single-thread pool of its own, when candle
/// runs every operation on its calling thread (`RAYON_NUM_THREADS=1`, which the `reco` binary
/// sets for candle while its own pool keeps every core) and rayon may use two threads or more;
/// otherwise one after the other here. Splitting each small operation of a step over both
/// cores, as candle does by default, costs more in hand-offs than it gains; two independent
/// halves of a step (the two towers) keep both cores busy without them. The results are the
/// same bits either way: every operation still runs on one thread.
pub(crate) fn side_by_side<A: Send, B: Send>(
    a: impl FnOnce() -> A + Send,
    b: impl FnOnce() -> B + Send,
) -> (A, B) {
    static PAIR: std::sync::OnceLock<Option<[rayon::ThreadPool; 2]>> = std::sync::OnceLock::new();
    let wanted = SIDE_BY_SIDE.with(std::cell::Cell::get).unwrap_or_else(|| {
        candle_core::utils::get_num_threads() == 1 && rayon::current_num_threads() >= 2
    });
    let pools = wanted
        .then(|| {
            PAIR.get_or_init(|| {
                let one = || {
                    rayon::ThreadPoolBuilder::new()
                        .num_threads(1)
                        .thread_name(|_| "reco-tower".into())
                        .build()
                        .ok()
                };
                Some([one()?, one()?])
            })
            .as_ref()
        })
        .flatten();
    match pools {
        Some([pa, pb]) => {
            let mut ra = None;
            // `a` goes to its pool's thread; this thread waits for `b` on the other pool, then
            // for `a` at the end of the scope.
            let rb = pa.in_place_scope(|s| {
                s.spawn(|_| ra = Some(a()));
                pb.install(b)
            });
            match ra {
                Some(ra) => (ra, rb),
                // The spawned half panicked; in_place_scope re-raised it above.
                None => unreachable!("the scope waits for its spawned work"),
            }
        }
        None => (a(), b()),
    }
}

/// What a fit is, for its checkpoints: the model kind and its parameters.
pub(crate) struct Run<'a> {
    pub kind: &'a str,
    pub params: serde_json::Value,
}

/// The training example at position `k` of the interactions (user, item, value): the user is
/// found in the row offsets, so an epoch needs only a shuffled order of positions, not a copy
/// of the examples.
fn example_at(m: &Interactions, k: usize) -> (u32, u32, f32) {
    let user = m.indptr().partition_point(|&p| p <= k).saturating_sub(1);
    (user as u32, m.indices()[k], m.values()[k])
}

/// The generator of epoch `epoch`'s shuffle and sampling: its own stream of one seed, so an
/// epoch does not depend on the ones before it and a resumed fit draws what an unbroken one
/// would.
fn epoch_rng(seed: u64, epoch: usize) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x9e37_79b9_7f4a_7c15);
    rng.set_stream(epoch as u64);
    rng
}

/// Runs the loop over the interactions of `train`: `loss_of` builds the loss of a batch of
/// (user, item, value) examples and its gradients, `end_epoch` returns the validation score
/// (when validating; the sparse tables are in the variables by then); shuffling and sampling follow `opts.seed`.
/// With `opts.checkpoint`, the state is saved after every epoch and a saved fit resumes.
/// Returns the number of epochs completed.
#[allow(clippy::too_many_arguments)]
pub(crate) fn fit_loop(
    optim: &Optim,
    params: &Params<'_>,
    train: &Interactions,
    run: Run<'_>,
    opts: &FitOptions<'_>,
    validation: Option<&Validation<'_>>,
    mut loss_of: impl FnMut(&[(u32, u32, f32)], &mut ChaCha8Rng) -> Result<(Tensor, GradStore)>,
    mut end_epoch: impl FnMut() -> Result<f64>,
) -> Result<usize> {
    let n = train.nnz();
    if n == 0 {
        return Err(Error::data("there are no training interactions"));
    }
    let n32 = u32::try_from(n).map_err(|_| {
        Error::data(format!(
            "{n} training interactions: the networks train on at most {}",
            u32::MAX
        ))
    })?;
    let vars = params.vars;
    let adam = AdamSettings {
        lr: optim.learning_rate,
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay: optim.weight_decay,
    };
    let sparse_ids: Vec<_> = params
        .sparse
        .borrow()
        .iter()
        .map(|t| t.var().as_tensor().id())
        .collect();
    let (dense_names, dense): (Vec<String>, Vec<Var>) = vars
        .iter()
        .filter(|(_, v)| !sparse_ids.contains(&v.as_tensor().id()))
        .map(|(n, v)| (n.clone(), v.clone()))
        .unzip();
    let mut opt = DenseAdam::new(dense)?;
    let mut best = validation.map(|v| Best::new(v.higher_is_better(), optim.patience));
    let identity = opts
        .checkpoint
        .map(|_| checkpoint::identity(run.kind, &run.params, train, opts.validation, opts.seed));
    let mut progress = Progress {
        epochs_done: 0,
        stopped: false,
        adam_steps: 0,
        best: None,
    };
    if let (Some(dir), Some(id)) = (opts.checkpoint, &identity) {
        if let Some(saved) = checkpoint::load(dir, id)? {
            progress = resume(saved, optim, params, &dense_names, &mut opt, &mut best)?;
            opts.report(
                "resumed",
                progress.epochs_done as u64,
                optim.epochs as u64,
                None,
            );
        }
    }
    let mut order: Vec<u32> = Vec::new();
    let mut chunk: Vec<(u32, u32, f32)> = Vec::with_capacity(optim.batch_size.min(n));
    let mut epoch = progress.epochs_done;
    while epoch < optim.epochs && !progress.stopped {
        let mut rng = epoch_rng(opts.seed, epoch);
        order.clear();
        order.extend(0..n32);
        order.shuffle(&mut rng);
        let started = Instant::now();
        let (mut loss_sum, mut batches, mut done) = (0f64, 0usize, 0u64);
        for positions in order.chunks(optim.batch_size) {
            chunk.clear();
            chunk.extend(positions.iter().map(|&k| example_at(train, k as usize)));
            let (loss, grads) = loss_of(&chunk, &mut rng)?;
            opt.step(&grads, &adam)?;
            for table in params.sparse.borrow_mut().iter_mut() {
                table.step(&grads, &adam)?;
            }
            loss_sum += f64::from(
                loss.to_scalar::<f32>()
                    .map_err(nn_err("reading the loss"))?,
            );
            batches += 1;
            done += chunk.len() as u64;
            if batches % 16 == 0 || done == n as u64 {
                let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-9);
                opts.report(
                    &format!("epoch {}/{} · {rate:.0} ex/s", epoch + 1, optim.epochs),
                    done,
                    n as u64,
                    Some(loss_sum / batches as f64),
                );
                // An epoch of a large fit takes minutes: Ctrl-C should not wait for its end.
                // What it loses is this epoch; the checkpoint holds the ones before.
                reco_core::interrupt::check()?;
            }
        }
        let mean_loss = loss_sum / batches.max(1) as f64;
        if !mean_loss.is_finite() {
            return Err(Error::diverged(
                "neural network",
                format!(
                    "loss {mean_loss} at epoch {}; lower learning_rate",
                    epoch + 1
                ),
            ));
        }
        for table in params.sparse.borrow().iter() {
            table.sync()?;
        }
        let score = end_epoch()?;
        let stop = match (&mut best, validation) {
            (Some(b), Some(_)) => b.observe(epoch, score, vars)?,
            _ => false,
        };
        epoch += 1;
        progress = Progress {
            epochs_done: epoch,
            stopped: stop,
            adam_steps: opt.steps(),
            best: best.as_ref().and_then(Best::score),
        };
        if let (Some(dir), Some(id)) = (opts.checkpoint, &identity) {
            let tensors = state(vars, &dense_names, &opt, params, best.as_ref())?;
            checkpoint::save(dir, id, &progress, tensors)?;
        }
        opts.step(
            "epoch",
            epoch as u64,
            optim.epochs as u64,
            Some(if validation.is_some() {
                score
            } else {
                mean_loss
            }),
        )?;
    }
    if let Some(b) = best {
        b.restore(vars)?;
    }
    Ok(epoch)
}

/// Everything a checkpoint keeps, by name: `w.*` the weights, `adam.*` the dense optimiser's
/// moments, `sparse.K.*` the row-sparse tables' moments and step counts, `best.*` the best
/// epoch's weights.
fn state(
    vars: &[(String, Var)],
    dense_names: &[String],
    opt: &DenseAdam,
    params: &Params<'_>,
    best: Option<&Best>,
) -> Result<Vec<(String, Tensor)>> {
    let mut out: Vec<(String, Tensor)> = vars
        .iter()
        .map(|(n, v)| (format!("w.{n}"), v.as_tensor().clone()))
        .collect();
    let names: Vec<String> = dense_names.iter().map(|n| format!("adam.{n}")).collect();
    out.extend(opt.state(&names)?);
    for (k, table) in params.sparse.borrow().iter().enumerate() {
        out.extend(table.state(&format!("sparse.{k}"))?);
    }
    if let Some(snapshot) = best.and_then(Best::snapshot) {
        out.extend(
            snapshot
                .iter()
                .map(|(n, t)| (format!("best.{n}"), t.clone())),
        );
    }
    Ok(out)
}

/// Puts a checkpoint's state back into the variables, optimisers and best-epoch keeper.
fn resume(
    mut saved: checkpoint::Saved,
    optim: &Optim,
    params: &Params<'_>,
    dense_names: &[String],
    opt: &mut DenseAdam,
    best: &mut Option<Best>,
) -> Result<Progress> {
    let progress = saved.progress.clone();
    if progress.epochs_done > optim.epochs {
        return Err(Error::param(
            "epochs",
            format!(
                "the checkpoint has {} epochs done, more than the {} asked for",
                progress.epochs_done, optim.epochs
            ),
        ));
    }
    let err = nn_err("resuming from the checkpoint");
    let tensor = |saved: &mut checkpoint::Saved, name: &str, like: &Tensor| -> Result<Tensor> {
        saved
            .take(name, like.elem_count(), DType::F32)?
            .reshape(like.shape())
            .map_err(&err)
    };
    for (n, v) in params.vars {
        let t = tensor(&mut saved, &format!("w.{n}"), v.as_tensor())?;
        v.set(&t).map_err(nn_err("resuming from the checkpoint"))?;
    }
    let names: Vec<String> = dense_names.iter().map(|n| format!("adam.{n}")).collect();
    opt.restore(&names, progress.adam_steps, &mut |name, len| {
        saved.floats(name, len)
    })?;
    for (k, table) in params.sparse.borrow_mut().iter_mut().enumerate() {
        let prefix = format!("sparse.{k}");
        // Two closures cannot both borrow `saved` mutably: read the counts first.
        let steps_len = table.var().as_tensor().dims().first().copied().unwrap_or(0);
        let steps = saved.counts(&format!("{prefix}.steps"), steps_len)?;
        table.restore(
            &prefix,
            &mut |name, len| saved.floats(name, len),
            &mut |_, _| Ok(steps.clone()),
        )?;
    }
    if let (Some(b), Some((score, epoch))) = (best.as_mut(), progress.best) {
        let snapshot = params
            .vars
            .iter()
            .map(|(n, v)| {
                Ok((
                    n.clone(),
                    tensor(&mut saved, &format!("best.{n}"), v.as_tensor())?,
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        b.set(score, epoch, snapshot);
    }
    Ok(progress)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn best_keeps_the_best_weights_and_stops_after_patience() {
        let v = Var::new(&[1f32], &candle_core::Device::Cpu).unwrap();
        let vars = vec![("w".to_string(), v.clone())];
        let mut b = Best::new(true, 2);
        assert!(!b.observe(0, 0.1, &vars).unwrap());
        v.set(&Tensor::new(&[2f32], &candle_core::Device::Cpu).unwrap())
            .unwrap();
        assert!(!b.observe(1, 0.3, &vars).unwrap());
        v.set(&Tensor::new(&[3f32], &candle_core::Device::Cpu).unwrap())
            .unwrap();
        assert!(!b.observe(2, 0.2, &vars).unwrap());
        assert!(b.observe(3, 0.25, &vars).unwrap());
        b.restore(&vars).unwrap();
        assert_eq!(v.as_tensor().to_vec1::<f32>().unwrap(), vec![2.0]);
    }
}
