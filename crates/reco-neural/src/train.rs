//! The training loop the networks share: seeded shuffling, mini-batches, AdamW, progress with
//! loss and throughput, and early stopping on a validation split.

use std::cell::RefCell;
use std::time::Instant;

use candle_core::{Tensor, Var};
use candle_nn::{AdamW, Optimizer, ParamsAdamW};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use reco_core::model::FitOptions;
use reco_core::{Error, Interactions, Result};
use reco_models::mf::validation_recall;

use crate::nn::{AdamSettings, SparseTable};
use crate::nn_err;

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

/// Runs the loop: `loss_of` builds the loss of a batch of training examples, `end_epoch`
/// returns the validation score (when validating; the sparse tables are in the variables by
/// then); shuffling and sampling follow `opts.seed`. Returns the number of epochs run.
pub(crate) fn fit_loop<E: Copy + Send + Sync>(
    optim: &Optim,
    params: &Params<'_>,
    mut examples: Vec<E>,
    opts: &FitOptions<'_>,
    validation: Option<&Validation<'_>>,
    mut loss_of: impl FnMut(&[E], &mut ChaCha8Rng) -> Result<Tensor>,
    mut end_epoch: impl FnMut() -> Result<f64>,
) -> Result<usize> {
    if examples.is_empty() {
        return Err(Error::data("there are no training interactions"));
    }
    let vars = params.vars;
    let settings = ParamsAdamW {
        lr: optim.learning_rate,
        weight_decay: optim.weight_decay,
        ..ParamsAdamW::default()
    };
    let adam = AdamSettings {
        lr: settings.lr,
        beta1: settings.beta1,
        beta2: settings.beta2,
        eps: settings.eps,
        weight_decay: settings.weight_decay,
    };
    let sparse_ids: Vec<_> = params
        .sparse
        .borrow()
        .iter()
        .map(|t| t.var().as_tensor().id())
        .collect();
    let dense = vars
        .iter()
        .filter(|(_, v)| !sparse_ids.contains(&v.as_tensor().id()))
        .map(|(_, v)| v.clone())
        .collect();
    let mut opt = AdamW::new(dense, settings).map_err(nn_err("optimiser"))?;
    // Its own stream: the parameter store draws the initial weights from `opts.seed`.
    let mut rng = ChaCha8Rng::seed_from_u64(opts.seed ^ 0x9e37_79b9_7f4a_7c15);
    let mut best = validation.map(|v| Best::new(v.higher_is_better(), optim.patience));
    let total = examples.len() as u64;
    let mut epochs = 0;
    for epoch in 0..optim.epochs {
        epochs = epoch + 1;
        examples.shuffle(&mut rng);
        let started = Instant::now();
        let (mut loss_sum, mut batches, mut done) = (0f64, 0usize, 0u64);
        for chunk in examples.chunks(optim.batch_size) {
            let loss = loss_of(chunk, &mut rng)?;
            let grads = loss.backward().map_err(nn_err("backward pass"))?;
            opt.step(&grads).map_err(nn_err("optimiser step"))?;
            for table in params.sparse.borrow_mut().iter_mut() {
                table.step(&grads, &adam)?;
            }
            loss_sum += f64::from(
                loss.to_scalar::<f32>()
                    .map_err(nn_err("reading the loss"))?,
            );
            batches += 1;
            done += chunk.len() as u64;
            if batches % 16 == 0 || done == total {
                let rate = done as f64 / started.elapsed().as_secs_f64().max(1e-9);
                opts.report(
                    &format!("epoch {epochs}/{} · {rate:.0} ex/s", optim.epochs),
                    done,
                    total,
                    Some(loss_sum / batches as f64),
                );
            }
        }
        let mean_loss = loss_sum / batches.max(1) as f64;
        if !mean_loss.is_finite() {
            return Err(Error::diverged(
                "neural network",
                format!("loss {mean_loss} at epoch {epochs}; lower learning_rate"),
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
        opts.step(
            "epoch",
            epochs as u64,
            optim.epochs as u64,
            Some(if validation.is_some() {
                score
            } else {
                mean_loss
            }),
        )?;
        if stop {
            break;
        }
    }
    if let Some(b) = best {
        b.restore(vars)?;
    }
    Ok(epochs)
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
