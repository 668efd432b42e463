//! Neural collaborative filtering (He et al., 2017, "NeuMF"): a generalised matrix
//! factorisation branch (element-wise product of user and item embeddings) and an MLP branch
//! (concatenated embeddings through ReLU layers) joined by a final linear layer into a logit,
//! trained with sigmoid cross-entropy against `negatives` uniformly sampled items per positive.
//!
//! Scores are not dot products, so the model has no `Embeddings` capability; scoring a user
//! runs the network over the whole catalogue at once. It knows users by id only: an anonymous
//! user is scored with the mean user embedding (a popularity-like answer).

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use reco_core::model::{FitOptions, Query, Recommender};
use reco_core::{Dataset, Error, Result};

use crate::nn::{Init, Mlp, Store};
use crate::optim::SparseTable;
use crate::train::{fit_loop, optim_of, Params, Run, Validation};
use crate::{file_err, nn_err};

/// Parameters of neural collaborative filtering (`"model": "neural-cf"`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NcfParams {
    /// Width of the GMF embeddings.
    pub factors: usize,
    /// MLP branch: the first size is the concatenated embedding width (half per side), the
    /// rest are hidden layers, each followed by ReLU.
    pub layers: Vec<usize>,
    /// Sampled negatives per positive.
    pub negatives: usize,
    /// Passes over the data (at most).
    pub epochs: usize,
    /// Positives per batch.
    pub batch_size: usize,
    /// Adam step size.
    pub learning_rate: f64,
    /// Decoupled weight decay (AdamW).
    pub weight_decay: f64,
    /// Early-stopping patience in epochs (with validation data).
    pub patience: usize,
    /// Train the four embedding tables row-sparse (lazy AdamW; see `two-tower`).
    pub sparse_updates: bool,
}

impl Default for NcfParams {
    fn default() -> Self {
        NcfParams {
            factors: 16,
            layers: vec![64, 32, 16],
            negatives: 4,
            epochs: 20,
            batch_size: 256,
            learning_rate: 0.001,
            weight_decay: 0.0,
            patience: 3,
            sparse_updates: true,
        }
    }
}

impl NcfParams {
    /// Checks the parameters.
    pub fn validate(&self) -> Result<()> {
        optim_of!(self).validate()?;
        if self.factors == 0 {
            return Err(Error::param("factors", "must be at least 1"));
        }
        if self.layers.is_empty() || self.layers.contains(&0) || !self.layers[0].is_multiple_of(2) {
            return Err(Error::param(
                "layers",
                "needs at least one layer, none of size 0, the first even",
            ));
        }
        if self.negatives == 0 {
            return Err(Error::param("negatives", "must be at least 1"));
        }
        Ok(())
    }
}

/// The network's tensors.
struct Net {
    user_gmf: Tensor,
    item_gmf: Tensor,
    user_mlp: Tensor,
    item_mlp: Tensor,
    mlp: Mlp,
    out_w: Tensor,
    out_b: Tensor,
}

impl Net {
    fn new(p: &NcfParams, store: &mut Store, n_users: usize, n_items: usize) -> Result<Net> {
        let half = p.layers[0] / 2;
        let e = Init::Normal(0.01);
        let user_gmf = store.take("user_gmf", &[n_users.max(1), p.factors], e)?;
        let item_gmf = store.take("item_gmf", &[n_items.max(1), p.factors], e)?;
        let user_mlp = store.take("user_mlp", &[n_users.max(1), half], e)?;
        let item_mlp = store.take("item_mlp", &[n_items.max(1), half], e)?;
        let mlp = Mlp::new(store, "ncf", p.layers[0], &p.layers[1..])?;
        let width = p.factors + p.layers.last().copied().unwrap_or(1);
        let bound = 1.0 / (width as f64).sqrt();
        let out_w = store.take("out.weight", &[width, 1], Init::Uniform(bound))?;
        let out_b = store.take("out.bias", &[1], Init::Uniform(bound))?;
        Ok(Net {
            user_gmf,
            item_gmf,
            user_mlp,
            item_mlp,
            mlp,
            out_w,
            out_b,
        })
    }

    /// Logits of rows whose user parts are `(ug, um)` and item parts `(ig, im)`.
    fn logits(
        &self,
        ug: &Tensor,
        um: &Tensor,
        ig: &Tensor,
        im: &Tensor,
    ) -> candle_core::Result<Tensor> {
        let gmf = ug.broadcast_mul(ig)?;
        let rows = im.dim(0)?;
        let um = um.broadcast_as((rows, um.dim(1)?))?;
        let mlp = self.mlp.forward(Tensor::cat(&[&um, im], 1)?)?.relu()?;
        Tensor::cat(&[gmf, mlp], 1)?
            .matmul(&self.out_w)?
            .broadcast_add(&self.out_b)?
            .squeeze(1)
    }

    /// Logits of (user, item) pairs.
    fn pairs(&self, users: &[u32], items: &[u32]) -> candle_core::Result<Tensor> {
        self.pairs_with(
            [
                &self.user_gmf,
                &self.user_mlp,
                &self.item_gmf,
                &self.item_mlp,
            ],
            users,
            items,
        )
    }

    /// Logits of (user, item) pairs looked up in other tables (user GMF, user MLP, item GMF,
    /// item MLP): a batch's gathered rows during training, `users` and `items` numbered by them.
    fn pairs_with(
        &self,
        [ug, um, ig, im]: [&Tensor; 4],
        users: &[u32],
        items: &[u32],
    ) -> candle_core::Result<Tensor> {
        let dev = Device::Cpu;
        let u = Tensor::new(users, &dev)?;
        let i = Tensor::new(items, &dev)?;
        self.logits(
            &ug.index_select(&u, 0)?,
            &um.index_select(&u, 0)?,
            &ig.index_select(&i, 0)?,
            &im.index_select(&i, 0)?,
        )
    }

    /// Logits of every item for one user (`None`: the mean user).
    fn all_items(&self, user: Option<u32>) -> candle_core::Result<Vec<f32>> {
        let (ug, um) = match user {
            Some(u) => (
                self.user_gmf.narrow(0, u as usize, 1)?,
                self.user_mlp.narrow(0, u as usize, 1)?,
            ),
            None => (
                self.user_gmf.mean_keepdim(0)?,
                self.user_mlp.mean_keepdim(0)?,
            ),
        };
        self.logits(&ug, &um, &self.item_gmf, &self.item_mlp)?
            .detach()
            .to_vec1::<f32>()
    }
}

/// A fitted NeuMF model.
pub struct NeuralCf {
    params: NcfParams,
    net: Net,
    weights: Vec<(String, Tensor)>,
    n_users: usize,
    n_items: usize,
}

impl NeuralCf {
    /// Trains the model.
    pub fn fit(p: &NcfParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<NeuralCf> {
        p.validate()?;
        let m = &data.interactions;
        let (n_users, n_items) = (m.n_users(), m.n_items());
        let mut store = Store::Train {
            vars: Vec::new(),
            rng: Box::new(ChaCha8Rng::seed_from_u64(opts.seed)),
        };
        let net = Net::new(p, &mut store, n_users, n_items)?;
        let vars = store.named();
        // The user GMF, user MLP, item GMF and item MLP tables, in that order.
        let sparse: Vec<SparseTable> = if p.sparse_updates {
            ["user_gmf", "user_mlp", "item_gmf", "item_mlp"]
                .iter()
                .filter_map(|want| vars.iter().find(|(n, _)| n == want))
                .map(|(_, v)| SparseTable::new(v.clone()))
                .collect::<Result<_>>()?
        } else {
            Vec::new()
        };
        let sparse = std::cell::RefCell::new(sparse);
        let validation = Validation::recall(m, opts.validation, opts.seed);
        let k = p.negatives;
        let loss_of =
            |chunk: &[(u32, u32, f32)], rng: &mut ChaCha8Rng| -> Result<(Tensor, GradStore)> {
                let b = chunk.len();
                let mut users = Vec::with_capacity(b * (k + 1));
                let mut items = Vec::with_capacity(b * (k + 1));
                let mut target = Vec::with_capacity(b * (k + 1));
                for &(u, i, _) in chunk {
                    users.push(u);
                    items.push(i);
                    target.push(1f32);
                    for _ in 0..k {
                        users.push(u);
                        items.push(rng.gen_range(0..n_items as u32));
                        target.push(0.0);
                    }
                }
                let mut tables = sparse.borrow_mut();
                (|| {
                    let logits = if let [a, b, c, d] = &mut tables[..] {
                        // Both tables of a side see the same ids in the same order, so they number
                        // them alike.
                        for t in [&mut *a, &mut *b, &mut *c, &mut *d] {
                            t.begin();
                        }
                        for u in &mut users {
                            let id = *u;
                            *u = a.local(id);
                            b.local(id);
                        }
                        for i in &mut items {
                            let id = *i;
                            *i = c.local(id);
                            d.local(id);
                        }
                        let g = [a.gather()?, b.gather()?, c.gather()?, d.gather()?];
                        net.pairs_with([&g[0], &g[1], &g[2], &g[3]], &users, &items)?
                    } else {
                        net.pairs(&users, &items)?
                    };
                    let t = Tensor::from_vec(target, users.len(), &Device::Cpu)?;
                    let loss = candle_nn::loss::binary_cross_entropy_with_logit(&logits, &t)?;
                    let grads = loss.backward()?;
                    Ok((loss, grads))
                })()
                .map_err(nn_err("training step"))
            };
        let end_epoch = || -> Result<f64> {
            let Some(v) = validation.as_ref() else {
                return Ok(0.0);
            };
            let score_user = |u: u32, out: &mut [f32]| {
                if let Ok(s) = net.all_items(Some(u)) {
                    out.copy_from_slice(&s);
                }
            };
            Ok(v.score(n_items, &score_user, &|_| Vec::new()))
        };
        fit_loop(
            &optim_of!(p),
            &Params {
                vars: &vars,
                sparse: &sparse,
            },
            m,
            Run {
                kind: "neural-cf",
                params: serde_json::to_value(p)
                    .map_err(|e| Error::training("neural-cf", e.to_string()))?,
            },
            opts,
            validation.as_ref(),
            loss_of,
            end_epoch,
        )?;
        let weights = vars
            .iter()
            .map(|(n, v)| (n.clone(), v.as_tensor().detach()))
            .collect();
        Ok(NeuralCf {
            params: p.clone(),
            net,
            weights,
            n_users,
            n_items,
        })
    }

    /// The weights as a safetensors file, the specification in its metadata.
    pub fn to_safetensors(&self) -> Result<Vec<u8>> {
        let mut meta = HashMap::new();
        meta.insert(
            "spec".to_string(),
            reco_models::Model::spec(self).to_value()?.to_string(),
        );
        safetensors::serialize(self.weights.clone(), Some(meta))
            .map_err(|e| Error::artifact("model.safetensors", format!("cannot be written: {e}")))
    }

    /// Reads a model written by [`NeuralCf::to_safetensors`].
    pub fn from_safetensors(p: &NcfParams, bytes: &[u8]) -> Result<NeuralCf> {
        p.validate()?;
        let map = candle_core::safetensors::load_buffer(bytes, &Device::Cpu)
            .map_err(file_err("reading"))?;
        let dims = |k: &str| map.get(k).map(|t| t.dims().first().copied().unwrap_or(0));
        let (Some(n_users), Some(n_items)) = (dims("user_gmf"), dims("item_gmf")) else {
            return Err(Error::artifact(
                "model.safetensors",
                "neural-cf model file: embeddings missing",
            ));
        };
        let mut weights: Vec<(String, Tensor)> =
            map.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        weights.sort_by(|a, b| a.0.cmp(&b.0));
        let mut store = Store::Load(map);
        let net = Net::new(p, &mut store, n_users, n_items)?;
        store.finish("neural-cf")?;
        Ok(NeuralCf {
            params: p.clone(),
            net,
            weights,
            n_users,
            n_items,
        })
    }

    /// The parameters.
    pub fn params(&self) -> &NcfParams {
        &self.params
    }
}

impl Recommender for NeuralCf {
    fn n_items(&self) -> usize {
        self.n_items
    }

    fn score(&self, query: &Query<'_>, out: &mut [f32]) -> Result<()> {
        let user = query.user.filter(|&u| (u as usize) < self.n_users);
        let s = self.net.all_items(user).map_err(nn_err("scoring"))?;
        out.copy_from_slice(&s);
        Ok(())
    }
}

impl_neural_model!(NeuralCf, |m| reco_models::ModelSpec::new::<NeuralCf>(
    m.params.clone()
));
