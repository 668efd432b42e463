//! The two-tower model: a user tower and an item tower map each side's features to a vector,
//! L2-normalised, and the score is their dot product over a temperature.
//!
//! User tower input: the user's identity (optional), metadata features (categorical values,
//! numeric fields cut into quantile bins) and the mean embedding of their most recent items.
//! Item tower input: identity (optional), metadata features (genres, year bins) and hashed text
//! tokens. Both go through a ReLU MLP (default 256-128-32, the lectures' content DNN).
//!
//! Losses:
//! - `softmax`: in-batch sampled softmax, the other items of the batch being the negatives, with
//!   the log-Q correction (subtracting the log of each item's sampling probability, its share of
//!   the training interactions) that keeps popular items from being over-penalised, and
//!   accidental hits (the same item elsewhere in the batch) masked out;
//! - `bce`: sigmoid cross-entropy with `negatives` uniformly sampled items per positive, as in
//!   the notebook;
//! - `mse`: squared error of `b + s · (u · v)` against the rating, with a learned scale and
//!   offset — the lectures' content DNN, which predicts ratings.
//!
//! Every user and item of the dataset gets a vector after training, including those with no
//! training interactions (they have features), so cold users and cold items are scored from
//! features alone; [`TwoTower::user_vector_from_features`] and
//! [`TwoTower::item_vector_from_features`] do the same for entities the dataset never had.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var, D};
use rand::Rng;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use reco_core::model::{Embeddings, FitOptions, Query, RatingPredictor, Recommender, SimilarItems};
use reco_core::topk::{top_k, Scored};
use reco_core::{Dataset, Error, Result};
use reco_models::featurize::FeatureRows;

use crate::bags::{batch, Bags};
use crate::nn::{Init, Store, Tower};
use crate::nn_err;
use crate::optim::SparseTable;
use crate::train::{fit_loop, optim_of, side_by_side, Params, Run, Validation};

mod softmax;
mod sparse;
mod state;

pub(crate) use softmax::in_batch_softmax;
use sparse::{bag_batch, Slots};

/// The training objective of a two-tower model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Loss {
    /// In-batch sampled softmax with log-Q correction.
    Softmax,
    /// Sigmoid cross-entropy with sampled negatives.
    Bce,
    /// Squared error on ratings.
    Mse,
}

/// Parameters of a two-tower model (`"model": "two-tower"`, or `"content-dnn"` for the
/// lectures' defaults: no ids, no recent items, MSE on ratings).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TwoTowerParams {
    /// Training objective.
    pub loss: Loss,
    /// Width of the feature embeddings (the towers' input).
    pub embedding_dim: usize,
    /// MLP layer sizes; the last is the vector length.
    pub layers: Vec<usize>,
    /// Give every user with training data an identity embedding.
    pub user_identity: bool,
    /// Give every item with training data an identity embedding.
    pub item_identity: bool,
    /// User metadata fields (`["*"]` all, `[]` none).
    pub user_fields: Vec<String>,
    /// Item metadata fields, text fields included (`["*"]` all, `[]` none).
    pub item_fields: Vec<String>,
    /// Quantile bins per numeric field.
    pub numeric_bins: usize,
    /// Hash buckets for the tokens of item text fields (0: no text).
    pub text_buckets: usize,
    /// Length of the bag of recent items in the user tower (0: none).
    pub recent_items: usize,
    /// Sampled negatives per positive (`bce`).
    pub negatives: usize,
    /// Subtract log sampling probabilities from in-batch logits (`softmax`).
    pub logq: bool,
    /// Logits are dot products divided by this.
    pub temperature: f64,
    /// Passes over the data (at most).
    pub epochs: usize,
    /// Interactions per batch (and in-batch negatives for `softmax`).
    pub batch_size: usize,
    /// Adam step size.
    pub learning_rate: f64,
    /// Decoupled weight decay (AdamW).
    pub weight_decay: f64,
    /// Early-stopping patience in epochs (with validation data).
    pub patience: usize,
    /// Train the embedding tables row-sparse: a step updates only the rows its batch looks up,
    /// with per-row bias correction (lazy AdamW), so its cost follows the batch, not the
    /// number of users and items. `false`: dense AdamW over every row at every step.
    pub sparse_updates: bool,
}

impl Default for TwoTowerParams {
    fn default() -> Self {
        TwoTowerParams {
            loss: Loss::Softmax,
            embedding_dim: 64,
            layers: vec![256, 128, 32],
            user_identity: true,
            item_identity: true,
            user_fields: vec!["*".into()],
            item_fields: vec!["*".into()],
            numeric_bins: 10,
            text_buckets: 4096,
            recent_items: 20,
            negatives: 4,
            logq: true,
            temperature: 0.05,
            epochs: 20,
            batch_size: 512,
            learning_rate: 0.002,
            weight_decay: 0.0,
            patience: 3,
            sparse_updates: true,
        }
    }
}

impl TwoTowerParams {
    /// The lectures' content DNN: features only, rating regression.
    pub fn content_dnn() -> Self {
        TwoTowerParams {
            loss: Loss::Mse,
            user_identity: false,
            item_identity: false,
            recent_items: 0,
            temperature: 1.0,
            epochs: 30,
            batch_size: 256,
            learning_rate: 0.001,
            ..Self::default()
        }
    }

    /// Checks the parameters.
    pub fn validate(&self) -> Result<()> {
        optim_of!(self).validate()?;
        if self.embedding_dim == 0 {
            return Err(Error::param("embedding_dim", "must be at least 1"));
        }
        if self.layers.is_empty() || self.layers.contains(&0) {
            return Err(Error::param(
                "layers",
                "needs at least one layer, none of size 0",
            ));
        }
        if !(self.temperature > 0.0 && self.temperature.is_finite()) {
            return Err(Error::param("temperature", "must be positive"));
        }
        if self.loss == Loss::Bce && self.negatives == 0 {
            return Err(Error::param("negatives", "bce needs at least one negative"));
        }
        Ok(())
    }
}

/// Splits the item field list into what featurize handles and the text fields.
fn text_fields<'d>(data: &'d Dataset, fields: &[String]) -> (Vec<String>, Vec<&'d [String]>) {
    let table = data.item_features.as_deref();
    let text: Vec<&reco_core::features::TextField> =
        table.map_or(Vec::new(), |t| t.text.iter().collect());
    let all = fields.iter().any(|f| f == "*");
    let chosen = text
        .iter()
        .filter(|t| all || fields.contains(&t.name))
        .map(|t| t.values.as_slice())
        .collect();
    let rest = fields
        .iter()
        .filter(|f| !text.iter().any(|t| &t.name == *f))
        .cloned()
        .collect();
    (rest, chosen)
}

/// Starts the rating head at the middle of the training rating range, spanning half of it;
/// returns the range.
fn init_head(
    vars: &[(String, candle_core::Var)],
    m: &reco_core::Interactions,
) -> Result<(f32, f32)> {
    let (lo, hi) = m
        .values()
        .iter()
        .fold((f32::INFINITY, f32::NEG_INFINITY), |(a, b), &r| {
            (a.min(r), b.max(r))
        });
    let mean = m.values().iter().map(|&r| f64::from(r)).sum::<f64>() / m.nnz() as f64;
    if let Some((_, v)) = vars.iter().find(|(n, _)| n == "head") {
        let init = Tensor::new(&[((hi - lo) / 2.0).max(1e-3), mean as f32], &Device::Cpu)
            .map_err(nn_err("head"))?;
        v.set(&init).map_err(nn_err("head"))?;
    }
    Ok((lo, hi))
}

/// A fitted two-tower model.
pub struct TwoTower {
    params: TwoTowerParams,
    /// Fitted as the `content-dnn` kind (same network, other defaults).
    pub(crate) content_dnn: bool,
    user_tower: Tower,
    item_tower: Tower,
    weights: Vec<(String, Tensor)>,
    user_rows: Bags,
    item_rows: Bags,
    user_names: Vec<String>,
    item_names: Vec<String>,
    recent: Option<Bags>,
    dim: usize,
    users: Vec<f32>,
    items: Vec<f32>,
    /// Rating head: scale, offset, lowest and highest training rating.
    head: [f32; 4],
}

/// What the towers read: bags of both sides and the readable token names.
struct Inputs {
    user_rows: Bags,
    item_rows: Bags,
    user_names: Vec<String>,
    item_names: Vec<String>,
    recent: Option<Bags>,
}

impl Inputs {
    fn of(p: &TwoTowerParams, data: &Dataset) -> Result<Inputs> {
        let mut users =
            FeatureRows::of_users(data, p.user_identity, &p.user_fields, p.numeric_bins)?;
        let (item_fields, texts) = text_fields(data, &p.item_fields);
        let mut items = FeatureRows::of_items(data, p.item_identity, &item_fields, p.numeric_bins)?;
        let user_names = std::mem::take(&mut users.names);
        let mut item_names = std::mem::take(&mut items.names);
        if !texts.is_empty() && p.text_buckets > 0 {
            item_names.extend((0..p.text_buckets).map(|b| format!("text#{b}")));
        }
        Ok(Inputs {
            user_rows: Bags::of_features(users, None),
            item_rows: Bags::of_features(items, Some((&texts, p.text_buckets))),
            user_names,
            item_names,
            recent: (p.recent_items > 0).then(|| Bags::recent_items(data, p.recent_items)),
        })
    }
}

fn towers(
    p: &TwoTowerParams,
    store: &mut Store,
    n_user_tokens: usize,
    n_item_tokens: usize,
    n_items: Option<usize>,
) -> Result<(Tower, Tower, Tensor)> {
    let user = Tower::new(
        store,
        "user",
        n_user_tokens,
        n_items,
        p.embedding_dim,
        &p.layers,
        true,
    )?;
    let item = Tower::new(
        store,
        "item",
        n_item_tokens,
        None,
        p.embedding_dim,
        &p.layers,
        true,
    )?;
    let head = store.take("head", &[2], Init::Const(0.0))?;
    Ok((user, item, head))
}

/// Vectors of entities `0..n` through `tower`, in chunks.
fn all_vectors(tower: &Tower, rows: &Bags, recent: Option<&Bags>, n: usize) -> Result<Vec<f32>> {
    let mut out = Vec::new();
    for start in (0..n).step_by(4096) {
        let ids = start as u32..(start + 4096).min(n) as u32;
        let tok = batch(ids.clone().map(|e| (rows.row(e), None)));
        let rec = match (recent, tower.has_recent()) {
            (Some(r), true) => Some(batch(ids.clone().map(|e| (r.row(e), None)))),
            _ => None,
        };
        let v = tower
            .forward(&tok, rec.as_ref())
            .and_then(|t| t.detach().flatten_all()?.to_vec1::<f32>())
            .map_err(nn_err("computing vectors"))?;
        out.extend(v);
    }
    Ok(out)
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

impl TwoTower {
    /// Trains a two-tower model.
    pub fn fit(p: &TwoTowerParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<TwoTower> {
        p.validate()?;
        let m = &data.interactions;
        let (n_users, n_items) = (m.n_users(), m.n_items());
        if m.nnz() == 0 {
            return Err(Error::data("there are no training interactions"));
        }
        let inputs = Inputs::of(p, data)?;
        let mut store = Store::Train {
            vars: Vec::new(),
            rng: Box::new(ChaCha8Rng::seed_from_u64(opts.seed)),
        };
        let (user_tower, item_tower, head) = towers(
            p,
            &mut store,
            inputs.user_rows.n_tokens,
            inputs.item_rows.n_tokens,
            inputs.recent.as_ref().map(|_| n_items),
        )?;
        let vars = store.named();
        let (sparse, slots) = Slots::of(p, &vars)?;
        let (lo, hi) = init_head(&vars, m)?;
        let counts = m.item_counts();
        let logq: Vec<f32> = counts
            .iter()
            .map(|&c| ((f64::from(c.max(1))) / m.nnz() as f64).ln() as f32)
            .collect();
        let validation = match p.loss {
            Loss::Mse => opts.validation.map(|valid| Validation::Rmse { valid }),
            _ => Validation::recall(m, opts.validation, opts.seed),
        };
        let mut model = TwoTower {
            params: p.clone(),
            content_dnn: false,
            user_tower,
            item_tower,
            weights: Vec::new(),
            user_rows: inputs.user_rows,
            item_rows: inputs.item_rows,
            user_names: inputs.user_names,
            item_names: inputs.item_names,
            recent: inputs.recent,
            dim: *p.layers.last().unwrap_or(&1),
            users: Vec::new(),
            items: Vec::new(),
            head: [0.0, 0.0, lo, hi],
        };
        let sparse = std::cell::RefCell::new(sparse);
        let loss_of =
            |chunk: &[(u32, u32, f32)], rng: &mut ChaCha8Rng| -> Result<(Tensor, GradStore)> {
                model.batch_loss(
                    chunk,
                    rng,
                    &head,
                    &logq,
                    n_items,
                    (&mut sparse.borrow_mut(), &slots),
                )
            };
        let end_epoch = || -> Result<f64> {
            match validation.as_ref() {
                Some(v) => model.validation_score(v, &head, n_users, n_items),
                None => Ok(0.0),
            }
        };
        fit_loop(
            &optim_of!(p),
            &Params {
                vars: &vars,
                sparse: &sparse,
            },
            m,
            Run {
                // content-dnn is this network with other defaults: the parameters tell them apart.
                kind: "two-tower",
                params: serde_json::to_value(p)
                    .map_err(|e| Error::training("two-tower", e.to_string()))?,
            },
            opts,
            validation.as_ref(),
            loss_of,
            end_epoch,
        )?;
        // The variables now hold the best epoch's weights (or the last epoch's).
        let (users, items) = model.compute_vectors(n_users, n_items)?;
        let h = read_head(&head)?;
        model.users = users;
        model.items = items;
        model.head[0] = h[0];
        model.head[1] = h[1];
        model.weights = vars
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().detach()))
            .collect();
        Ok(model)
    }

    /// The training loss of one batch of (user, item, rating) examples. Tables trained
    /// row-sparse (`sparse`, found by `slots`) are looked up through the batch's gathered rows.
    fn batch_loss(
        &self,
        chunk: &[(u32, u32, f32)],
        rng: &mut ChaCha8Rng,
        head: &Tensor,
        logq: &[f32],
        n_items: usize,
        (sparse, slots): (&mut [SparseTable], &Slots),
    ) -> Result<(Tensor, GradStore)> {
        let p = &self.params;
        let b = chunk.len();
        for table in sparse.iter_mut() {
            table.begin();
        }
        let ub = bag_batch(
            sparse,
            slots.user,
            chunk.iter().map(|&(u, _, _)| (self.user_rows.row(u), None)),
        );
        let rb = self.recent.as_ref().map(|r| {
            bag_batch(
                sparse,
                slots.recent,
                chunk.iter().map(|&(u, i, _)| (r.row(u), Some(i))),
            )
        });
        let items: Vec<u32> = match p.loss {
            Loss::Bce => chunk
                .iter()
                .map(|e| e.1)
                .chain((0..b * p.negatives).map(|_| rng.gen_range(0..n_items as u32)))
                .collect(),
            _ => chunk.iter().map(|e| e.1).collect(),
        };
        let ib = bag_batch(
            sparse,
            slots.item,
            items.iter().map(|&i| (self.item_rows.row(i), None)),
        );
        (|| {
            let mut gathered = |slot: Option<usize>| slot.map(|k| sparse[k].gather()).transpose();
            let (ut, rt, it) = (
                gathered(slots.user)?,
                gathered(slots.recent)?,
                gathered(slots.item)?,
            );
            let (user_table, recent_table) = self.user_tower.tables();
            let (user_table, recent_table) = (
                ut.as_ref().unwrap_or(user_table),
                rt.as_ref().or(recent_table),
            );
            let item_table = it.as_ref().unwrap_or(self.item_tower.tables().0);
            // The towers share nothing until the loss, so each can run its forward and its
            // backward pass on a core of its own (see `side_by_side`).
            let (u, v) = side_by_side(
                || {
                    self.user_tower
                        .forward_with(user_table, recent_table, &ub, rb.as_ref())
                },
                || self.item_tower.forward_with(item_table, None, &ib, None),
            );
            let (u, v) = (u?, v?);
            // The loss is differentiated up to the towers' outputs; each tower then back-
            // propagates its output's gradient g as the gradient of sum(output ⊙ g), which is
            // exactly g (the sum's gradient is ones).
            let (lu, lv) = (
                Var::from_tensor(&u.detach())?,
                Var::from_tensor(&v.detach())?,
            );
            let loss = self.loss_on(chunk, lu.as_tensor(), lv.as_tensor(), &items, head, logq)?;
            let mut grads = loss.backward()?;
            let (gu, gv) = (grads.remove(lu.as_tensor()), grads.remove(lv.as_tensor()));
            let back = |out: &Tensor, g: Option<Tensor>| {
                g.map(|g| out.mul(&g)?.sum_all()?.backward()).transpose()
            };
            let (a, b) = side_by_side(|| back(&u, gu), || back(&v, gv));
            for tower in [a?, b?].into_iter().flatten() {
                grads.extend(tower)?;
            }
            Ok((loss, grads))
        })()
        .map_err(nn_err("training step"))
    }

    /// The loss of a batch from its tower outputs: `u` one row per example, `v` one row per
    /// entry of `items` (the positives, then sampled negatives for `bce`).
    fn loss_on(
        &self,
        chunk: &[(u32, u32, f32)],
        u: &Tensor,
        v: &Tensor,
        items: &[u32],
        head: &Tensor,
        logq: &[f32],
    ) -> candle_core::Result<Tensor> {
        let p = &self.params;
        let dev = Device::Cpu;
        let tau = p.temperature;
        let b = chunk.len();
        match p.loss {
            Loss::Softmax => in_batch_softmax(u, v, items, p.logq.then_some(logq), tau),
            Loss::Bce => {
                let k = p.negatives;
                let pos = v.narrow(0, 0, b)?;
                let neg = v.narrow(0, b, b * k)?.reshape((b, k, ()))?;
                let lp = (u.mul(&pos)?.sum_keepdim(1)? / tau)?;
                let ln = (u.unsqueeze(1)?.matmul(&neg.transpose(1, 2)?)?.squeeze(1)? / tau)?;
                let logits = Tensor::cat(&[lp, ln], 1)?;
                let mut t = vec![0f32; b * (k + 1)];
                for r in 0..b {
                    t[r * (k + 1)] = 1.0;
                }
                let t = Tensor::from_vec(t, (b, k + 1), &dev)?;
                candle_nn::loss::binary_cross_entropy_with_logit(&logits, &t)
            }
            Loss::Mse => {
                let d = u.mul(v)?.sum(D::Minus1)?;
                let s = head.narrow(0, 0, 1)?;
                let o = head.narrow(0, 1, 1)?;
                let pred = d.broadcast_mul(&s)?.broadcast_add(&o)?;
                let r: Vec<f32> = chunk.iter().map(|e| e.2).collect();
                let r = Tensor::from_vec(r, b, &dev)?;
                candle_nn::loss::mse(&pred, &r)
            }
        }
    }

    /// The validation score at the end of an epoch, from freshly computed tower vectors.
    fn validation_score(
        &self,
        v: &Validation<'_>,
        head: &Tensor,
        n_users: usize,
        n_items: usize,
    ) -> Result<f64> {
        let (users, items) = self.compute_vectors(n_users, n_items)?;
        let h = read_head(head)?;
        let [_, _, lo, hi] = self.head;
        let dim = self.dim;
        let score_user = |u: u32, out: &mut [f32]| {
            let uv = &users[u as usize * dim..(u as usize + 1) * dim];
            for (i, o) in out.iter_mut().enumerate() {
                *o = dot(uv, &items[i * dim..(i + 1) * dim]);
            }
        };
        let predict = |pairs: &[(u32, u32)]| {
            pairs
                .iter()
                .map(|&(u, i)| {
                    let d = dot(
                        &users[u as usize * dim..(u as usize + 1) * dim],
                        &items[i as usize * dim..(i as usize + 1) * dim],
                    );
                    (h[1] + h[0] * d).clamp(lo, hi)
                })
                .collect()
        };
        Ok(v.score(n_items, &score_user, &predict))
    }

    fn compute_vectors(&self, n_users: usize, n_items: usize) -> Result<(Vec<f32>, Vec<f32>)> {
        Ok((
            all_vectors(
                &self.user_tower,
                &self.user_rows,
                self.recent.as_ref(),
                n_users,
            )?,
            all_vectors(&self.item_tower, &self.item_rows, None, n_items)?,
        ))
    }

    /// The vector of a user the model has never seen, from readable feature names (as in
    /// explanations: `gender=F`, `age#3`) and the items they interacted with, latest last.
    /// Unknown names are an error.
    pub fn user_vector_from_features(&self, names: &[&str], recent: &[u32]) -> Result<Vec<f32>> {
        let toks = lookup(&self.user_names, names, "user feature")?;
        self.vector_of(&self.user_tower, &toks, self.params.user_identity, recent)
    }

    /// The vector of an item the model has never seen, from readable feature names
    /// (`genre=Comedy`, `year#7`).
    pub fn item_vector_from_features(&self, names: &[&str]) -> Result<Vec<f32>> {
        let toks = lookup(&self.item_names, names, "item feature")?;
        self.vector_of(&self.item_tower, &toks, self.params.item_identity, &[])
    }

    /// The vector of an entity outside the training data: `slot` says whether its side has
    /// identity features, whose share of the weight an entity without one still leaves empty
    /// (as the feature rows of cold entities do, see `FeatureRows::build_with_slot`).
    fn vector_of(
        &self,
        tower: &Tower,
        toks: &[u32],
        slot: bool,
        recent: &[u32],
    ) -> Result<Vec<f32>> {
        let w = vec![1.0 / (toks.len() + usize::from(slot)).max(1) as f32; toks.len()];
        let tb = batch(std::iter::once(((toks, w.as_slice()), None)));
        let n = self.items.len() / self.dim.max(1);
        let recent: Vec<u32> = recent
            .iter()
            .rev()
            .filter(|&&i| (i as usize) < n)
            .take(self.params.recent_items)
            .copied()
            .collect();
        let rw = vec![1.0 / recent.len().max(1) as f32; recent.len()];
        let rb = batch(std::iter::once(((recent.as_slice(), rw.as_slice()), None)));
        tower
            .forward(&tb, tower.has_recent().then_some(&rb))
            .and_then(|t| t.flatten_all()?.to_vec1::<f32>())
            .map_err(nn_err("computing a vector"))
    }

    fn user(&self, u: u32) -> Option<&[f32]> {
        self.users
            .get(u as usize * self.dim..(u as usize + 1) * self.dim)
    }

    fn item(&self, i: u32) -> Option<&[f32]> {
        self.items
            .get(i as usize * self.dim..(i as usize + 1) * self.dim)
    }

    /// Number of users with vectors.
    pub fn n_users(&self) -> usize {
        self.users.len() / self.dim.max(1)
    }

    /// The parameters.
    pub fn params(&self) -> &TwoTowerParams {
        &self.params
    }
}

fn read_head(head: &Tensor) -> Result<[f32; 2]> {
    let v = head.to_vec1::<f32>().map_err(nn_err("rating head"))?;
    Ok([v[0], v[1]])
}

fn lookup(names: &[String], wanted: &[&str], what: &str) -> Result<Vec<u32>> {
    let index: HashMap<&str, u32> = names
        .iter()
        .enumerate()
        .map(|(k, n)| (n.as_str(), k as u32))
        .collect();
    wanted
        .iter()
        .map(|w| {
            index
                .get(w)
                .copied()
                .ok_or_else(|| Error::param("features", format!("unknown {what} {w:?}")))
        })
        .collect()
}

impl Recommender for TwoTower {
    fn n_items(&self) -> usize {
        self.items.len() / self.dim.max(1)
    }

    fn score(&self, query: &Query<'_>, out: &mut [f32]) -> Result<()> {
        let owned;
        let uv: &[f32] = match query.user.and_then(|u| self.user(u)) {
            Some(v) if query.history.is_empty() => v,
            _ => {
                // An anonymous user (or a known one with a new history): the user tower on
                // the history alone.
                let recent: Vec<u32> = query.history.iter().map(|h| h.0).collect();
                owned =
                    self.vector_of(&self.user_tower, &[], self.params.user_identity, &recent)?;
                &owned
            }
        };
        for (i, o) in out.iter_mut().enumerate() {
            *o = self
                .item(i as u32)
                .map_or(f32::NEG_INFINITY, |v| dot(uv, v));
        }
        Ok(())
    }

    fn score_users(&self, users: &[u32], out: &mut [f32]) -> Result<()> {
        reco_core::model::check_block(self.n_items(), users.len(), out.len())?;
        let mut rows = Vec::with_capacity(users.len() * self.dim);
        let mut stranger: Option<Vec<f32>> = None;
        for &u in users {
            match self.user(u) {
                Some(v) => rows.extend_from_slice(v),
                // As in `score`: the user tower on an empty history, computed once.
                None => {
                    if stranger.is_none() {
                        stranger = Some(self.vector_of(
                            &self.user_tower,
                            &[],
                            self.params.user_identity,
                            &[],
                        )?);
                    }
                    rows.extend_from_slice(stranger.as_deref().unwrap_or_default());
                }
            }
        }
        if rows.len() != users.len() * self.dim {
            return Err(Error::training(
                "two-tower",
                "a user vector has the wrong length",
            ));
        }
        reco_models::mf::products(&rows, &self.items, self.dim, out);
        Ok(())
    }

    fn as_embeddings(&self) -> Option<&dyn Embeddings> {
        Some(self)
    }

    fn as_similar_items(&self) -> Option<&dyn SimilarItems> {
        Some(self)
    }

    fn as_rating_predictor(&self) -> Option<&dyn RatingPredictor> {
        (self.params.loss == Loss::Mse).then_some(self as &dyn RatingPredictor)
    }
}

impl Embeddings for TwoTower {
    fn dim(&self) -> usize {
        self.dim
    }

    fn user_vector(&self, user: u32) -> Option<&[f32]> {
        self.user(user)
    }

    fn item_vector(&self, item: u32) -> Option<&[f32]> {
        self.item(item)
    }

    fn user_matrix(&self) -> Option<&[f32]> {
        Some(&self.users)
    }

    fn item_matrix(&self) -> Option<&[f32]> {
        Some(&self.items)
    }
}

impl SimilarItems for TwoTower {
    /// The items nearest in squared Euclidean distance ‖v_k − v_i‖² between tower vectors,
    /// scored by the negated distance.
    fn similar_items(&self, item: u32, k: usize) -> Result<Vec<Scored>> {
        let v = self
            .item(item)
            .ok_or_else(|| Error::param("item", format!("item {item} is out of range")))?;
        let scores: Vec<f32> = (0..self.n_items() as u32)
            .map(|j| {
                let w = self.item(j).unwrap_or(v);
                -v.iter().zip(w).map(|(a, b)| (a - b) * (a - b)).sum::<f32>()
            })
            .collect();
        Ok(top_k(&scores, k, &[item], |_| false))
    }
}

impl RatingPredictor for TwoTower {
    fn predict(&self, user: u32, item: u32) -> f32 {
        let [s, o, lo, hi] = self.head;
        match (self.user(user), self.item(item)) {
            (Some(u), Some(v)) => (o + s * dot(u, v)).clamp(lo, hi),
            _ => o.clamp(lo, hi),
        }
    }
}

impl_neural_model!(TwoTower, |m| if m.content_dnn {
    reco_models::ModelSpec::new::<crate::family::ContentDnn>(m.params.clone())
} else {
    reco_models::ModelSpec::new::<TwoTower>(m.params.clone())
});

#[cfg(test)]
mod tests;
