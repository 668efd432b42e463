//! The building blocks the networks share: a parameter store that either creates trainable
//! variables (seeded, so a fit is reproducible) or hands back tensors read from a file, an
//! embedding bag, a ReLU MLP and a tower made of both.

use std::collections::HashMap;

use candle_core::{DType, Device, Tensor, Var, D};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use reco_core::{Error, Result};

use crate::bags::Batch;
use crate::nn_err;

/// How a new parameter is drawn.
#[derive(Clone, Copy)]
pub(crate) enum Init {
    /// N(0, sd²).
    Normal(f64),
    /// U(−bound, bound).
    Uniform(f64),
    /// A constant.
    Const(f32),
}

/// Where parameters come from: new variables for training, or tensors loaded from a file.
pub(crate) enum Store {
    /// Creating variables with a seeded generator.
    Train {
        vars: Vec<(String, Var)>,
        rng: Box<ChaCha8Rng>,
    },
    /// Reading tensors by name.
    Load(HashMap<String, Tensor>),
}

impl Store {
    /// The parameter `name` of `shape`: created with `init`, or loaded and shape-checked.
    pub fn take(&mut self, name: &str, shape: &[usize], init: Init) -> Result<Tensor> {
        match self {
            Store::Train { vars, rng } => {
                let n: usize = shape.iter().product();
                let data: Vec<f32> = match init {
                    Init::Normal(sd) => (0..n)
                        .map(|_| {
                            // Box–Muller keeps us off another dependency.
                            let (a, b): (f64, f64) = (rng.gen::<f64>().max(1e-12), rng.gen());
                            ((-2.0 * a.ln()).sqrt() * (std::f64::consts::TAU * b).cos() * sd) as f32
                        })
                        .collect(),
                    Init::Uniform(bound) => (0..n)
                        .map(|_| rng.gen_range(-bound..=bound) as f32)
                        .collect(),
                    Init::Const(c) => vec![c; n],
                };
                let t = Tensor::from_vec(data, shape, &Device::Cpu).map_err(nn_err(name))?;
                let v = Var::from_tensor(&t).map_err(nn_err(name))?;
                let out = v.as_tensor().clone();
                vars.push((name.to_string(), v));
                Ok(out)
            }
            Store::Load(map) => {
                let t = map.remove(name).ok_or_else(|| {
                    Error::artifact(
                        "model.safetensors",
                        format!("the model file has no tensor {name:?}"),
                    )
                })?;
                if t.dims() != shape || t.dtype() != DType::F32 {
                    return Err(Error::artifact(
                        "model.safetensors",
                        format!(
                            "tensor {name:?} has shape {:?} {:?}, expected {shape:?} f32",
                            t.dims(),
                            t.dtype()
                        ),
                    ));
                }
                Ok(t)
            }
        }
    }

    /// Refuses a loaded file that holds tensors the network did not take (a file of another
    /// architecture or version).
    pub fn finish(&self, what: &str) -> Result<()> {
        match self {
            Store::Load(rest) => match rest.keys().min() {
                Some(extra) => Err(Error::artifact(
                    "model.safetensors",
                    format!("{what} model file: unexpected tensor {extra:?}"),
                )),
                None => Ok(()),
            },
            Store::Train { .. } => Ok(()),
        }
    }

    /// Names and current values of the variables (for snapshots and saving).
    pub fn named(&self) -> Vec<(String, Var)> {
        match self {
            Store::Train { vars, .. } => vars.clone(),
            Store::Load(_) => Vec::new(),
        }
    }
}

/// Calls `f` with the values of a CPU f32 tensor, without copying them when they are
/// contiguous.
pub(crate) fn with_values<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> candle_core::Result<R> {
    let t = t.contiguous()?;
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        candle_core::Storage::Cpu(cpu) => Ok(f(contiguous_f32(cpu, layout, "tensor values")?)),
        _ => candle_core::bail!("tensor values: the CPU only"),
    }
}

/// Weighted sum of the embedding rows of each row of `b`: `(rows, dim)`. One fused operation
/// with a hand-written gradient (a scatter-add into the table's rows): composed of a lookup, a
/// broadcast product and a sum, a 20-item recent bag made three passes over rows × 20 × dim
/// values each way.
pub(crate) fn embedding_bag(table: &Tensor, b: &Batch) -> candle_core::Result<Tensor> {
    let (n, _) = table.dims2()?;
    if let Some(&t) = b.tok.iter().find(|&&t| t as usize >= n) {
        candle_core::bail!("embedding bag: token {t} of a table of {n} rows");
    }
    table.apply_op1(BagOp {
        rows: b.rows,
        width: b.width,
        tok: b.tok.clone(),
        w: b.w.clone(),
    })
}

/// [`embedding_bag`]'s operation on the table.
struct BagOp {
    rows: usize,
    width: usize,
    tok: Vec<u32>,
    w: Vec<f32>,
}

impl BagOp {
    /// (row, token, weight) of every non-zero weight, in row-major order.
    fn entries(&self) -> impl Iterator<Item = (usize, usize, f32)> + '_ {
        self.tok
            .iter()
            .zip(&self.w)
            .enumerate()
            .filter(|(_, (_, &w))| w != 0.0)
            .map(|(k, (&t, &w))| (k / self.width.max(1), t as usize, w))
    }
}

/// The values of a fused operation's contiguous f32 input (`what` names the operation in the
/// error).
pub(crate) fn contiguous_f32<'a>(
    storage: &'a candle_core::CpuStorage,
    layout: &candle_core::Layout,
    what: &str,
) -> candle_core::Result<&'a [f32]> {
    match (storage, layout.contiguous_offsets()) {
        (candle_core::CpuStorage::F32(data), Some((from, to))) => Ok(&data[from..to]),
        _ => candle_core::bail!("{what}: needs a contiguous f32 input"),
    }
}

impl candle_core::CustomOp1 for BagOp {
    fn name(&self) -> &'static str {
        "embedding-bag"
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let table = contiguous_f32(storage, layout, "embedding bag")?;
        let dim = layout.shape().dims().get(1).copied().unwrap_or(0);
        let mut out = vec![0f32; self.rows * dim];
        for (r, t, w) in self.entries() {
            let src = &table[t * dim..(t + 1) * dim];
            for (o, &x) in out[r * dim..(r + 1) * dim].iter_mut().zip(src) {
                *o += w * x;
            }
        }
        Ok((
            candle_core::CpuStorage::F32(out),
            candle_core::Shape::from((self.rows, dim)),
        ))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let (n, dim) = arg.dims2()?;
        let g = grad.flatten_all()?.to_vec1::<f32>()?;
        let mut out = vec![0f32; n * dim];
        for (r, t, w) in self.entries() {
            let src = &g[r * dim..(r + 1) * dim];
            for (o, &x) in out[t * dim..(t + 1) * dim].iter_mut().zip(src) {
                *o += w * x;
            }
        }
        Ok(Some(Tensor::from_vec(out, (n, dim), arg.device())?))
    }
}

/// Rows scaled to unit length (rows of zeros stay near zero).
pub(crate) fn l2_normalize(x: &Tensor) -> candle_core::Result<Tensor> {
    let norm = (x.sqr()?.sum_keepdim(D::Minus1)? + 1e-12)?.sqrt()?;
    x.broadcast_div(&norm)
}

/// Fully connected layers with ReLU between them (none after the last).
pub(crate) struct Mlp {
    layers: Vec<(Tensor, Tensor)>,
}

impl Mlp {
    /// Layers `input → sizes[0] → … → sizes[last]`, initialised like PyTorch's `Linear`.
    pub fn new(store: &mut Store, prefix: &str, input: usize, sizes: &[usize]) -> Result<Mlp> {
        let mut layers = Vec::with_capacity(sizes.len());
        let mut fan_in = input;
        for (k, &out) in sizes.iter().enumerate() {
            let bound = 1.0 / (fan_in as f64).sqrt();
            let w = store.take(
                &format!("{prefix}.mlp{k}.weight"),
                &[out, fan_in],
                Init::Uniform(bound),
            )?;
            let b = store.take(
                &format!("{prefix}.mlp{k}.bias"),
                &[out],
                Init::Uniform(bound),
            )?;
            layers.push((w, b));
            fan_in = out;
        }
        Ok(Mlp { layers })
    }

    /// Output width (the input width when there are no layers).
    pub fn forward(&self, mut x: Tensor) -> candle_core::Result<Tensor> {
        let last = self.layers.len().saturating_sub(1);
        for (k, (w, b)) in self.layers.iter().enumerate() {
            x = crate::linear::linear(&x, w, b, k < last)?;
        }
        Ok(x)
    }
}

/// One tower: an embedding bag over the entity's tokens, optionally concatenated with the mean
/// embedding of its recent items, then an MLP, then (optionally) L2 normalisation.
pub(crate) struct Tower {
    tokens: Tensor,
    recent: Option<Tensor>,
    mlp: Mlp,
    normalize: bool,
}

impl Tower {
    /// A tower over `n_tokens` tokens (and `n_recent` items in the recent-items bag, if any).
    pub fn new(
        store: &mut Store,
        prefix: &str,
        n_tokens: usize,
        n_recent: Option<usize>,
        dim: usize,
        layers: &[usize],
        normalize: bool,
    ) -> Result<Tower> {
        let init = Init::Normal(1.0 / (dim as f64).sqrt());
        let tokens = store.take(&format!("{prefix}.tokens"), &[n_tokens.max(1), dim], init)?;
        let recent = n_recent
            .map(|n| store.take(&format!("{prefix}.recent"), &[n.max(1), dim], init))
            .transpose()?;
        let input = dim * if recent.is_some() { 2 } else { 1 };
        let mlp = Mlp::new(store, prefix, input, layers)?;
        Ok(Tower {
            tokens,
            recent,
            mlp,
            normalize,
        })
    }

    /// The vectors of a batch: `(rows, out)`.
    pub fn forward(&self, tokens: &Batch, recent: Option<&Batch>) -> candle_core::Result<Tensor> {
        self.forward_with(&self.tokens, self.recent.as_ref(), tokens, recent)
    }

    /// [`Tower::forward`] with other embedding tables: a batch's gathered rows during training,
    /// the batches' tokens numbered by them.
    pub fn forward_with(
        &self,
        token_table: &Tensor,
        recent_table: Option<&Tensor>,
        tokens: &Batch,
        recent: Option<&Batch>,
    ) -> candle_core::Result<Tensor> {
        let mut x = embedding_bag(token_table, tokens)?;
        if let (Some(table), Some(b)) = (recent_table, recent) {
            x = Tensor::cat(&[x, embedding_bag(table, b)?], 1)?;
        }
        let x = self.mlp.forward(x)?;
        if self.normalize {
            l2_normalize(&x)
        } else {
            Ok(x)
        }
    }

    /// The tower's token table and recent-items table (if any).
    pub fn tables(&self) -> (&Tensor, Option<&Tensor>) {
        (&self.tokens, self.recent.as_ref())
    }

    /// Whether the tower reads a recent-items bag.
    pub fn has_recent(&self) -> bool {
        self.recent.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bags::batch;
    use rand::SeedableRng;

    #[test]
    fn embedding_bag_is_the_weighted_sum_of_rows() {
        let table = Tensor::new(&[[1f32, 2.], [10., 20.], [100., 200.]], &Device::Cpu).unwrap();
        let r0: (&[u32], &[f32]) = (&[0, 2], &[0.5, 0.25]);
        let r1: (&[u32], &[f32]) = (&[1], &[2.0]);
        let b = batch([(r0, None), (r1, None)].into_iter());
        let out: Vec<Vec<f32>> = embedding_bag(&table, &b).unwrap().to_vec2().unwrap();
        assert_eq!(out, vec![vec![25.5, 51.0], vec![20.0, 40.0]]);
    }

    /// The fused bag and its scatter-add gradient against candle's lookup, product and sum.
    #[test]
    fn embedding_bag_gradient_is_the_scatter_of_the_weighted_output_gradient() {
        let dev = Device::Cpu;
        let table = Var::new(&[[1f32, 2.], [10., 20.], [100., 200.], [-1., 3.]], &dev).unwrap();
        let r0: (&[u32], &[f32]) = (&[0, 2, 0], &[0.5, 0.25, 1.0]);
        let r1: (&[u32], &[f32]) = (&[3], &[2.0]);
        let b = batch([(r0, None), (r1, None)].into_iter());
        let c = Tensor::new(&[[1f32, -2.], [0.5, 4.]], &dev).unwrap();
        let fused = embedding_bag(table.as_tensor(), &b).unwrap();
        let tok = Tensor::from_vec(b.tok.clone(), b.rows * b.width, &dev).unwrap();
        let w = Tensor::from_vec(b.w.clone(), (b.rows, b.width, 1), &dev).unwrap();
        let plain = table
            .as_tensor()
            .index_select(&tok, 0)
            .unwrap()
            .reshape((b.rows, b.width, 2))
            .unwrap()
            .broadcast_mul(&w)
            .unwrap()
            .sum(1)
            .unwrap();
        let value = |t: &Tensor| t.to_vec2::<f32>().unwrap();
        assert_eq!(value(&fused), value(&plain));
        let grad = |t: &Tensor| {
            let g = t.mul(&c).unwrap().sum_all().unwrap().backward().unwrap();
            value(g.get(&table).unwrap())
        };
        // Row 0 is looked up twice in bag 0 (weights 0.5 and 1), row 1 never.
        let want = vec![vec![1.5, -3.], vec![0., 0.], vec![0.25, -0.5], vec![1., 8.]];
        assert_eq!(grad(&fused), want);
        assert_eq!(grad(&plain), want);
        // A token past the table is an error, not a panic.
        let far: (&[u32], &[f32]) = (&[9], &[1.0]);
        let bad = batch([(far, None)].into_iter());
        assert!(embedding_bag(table.as_tensor(), &bad).is_err());
    }

    #[test]
    fn normalised_rows_have_unit_length() {
        let x = Tensor::new(&[[3f32, 4.], [0., -2.]], &Device::Cpu).unwrap();
        let y: Vec<Vec<f32>> = l2_normalize(&x).unwrap().to_vec2().unwrap();
        assert!((y[0][0] - 0.6).abs() < 1e-6 && (y[0][1] - 0.8).abs() < 1e-6);
        assert!((y[1][1] + 1.0).abs() < 1e-6);
    }

    #[test]
    fn mlp_matches_a_hand_computed_forward_pass() {
        let mut map = HashMap::new();
        let dev = Device::Cpu;
        map.insert(
            "m.mlp0.weight".into(),
            Tensor::new(&[[1f32, -1.], [2., 0.]], &dev).unwrap(),
        );
        map.insert(
            "m.mlp0.bias".into(),
            Tensor::new(&[0f32, -5.], &dev).unwrap(),
        );
        map.insert(
            "m.mlp1.weight".into(),
            Tensor::new(&[[1f32, 1.]], &dev).unwrap(),
        );
        map.insert("m.mlp1.bias".into(), Tensor::new(&[0.5f32], &dev).unwrap());
        let mut store = Store::Load(map);
        let mlp = Mlp::new(&mut store, "m", 2, &[2, 1]).unwrap();
        let x = Tensor::new(&[[3f32, 1.]], &dev).unwrap();
        // Hidden: relu([3 - 1, 6 - 5]) = [2, 1]; output: 2 + 1 + 0.5 (no ReLU at the end).
        let y: Vec<Vec<f32>> = mlp.forward(x).unwrap().to_vec2().unwrap();
        assert_eq!(y, vec![vec![3.5]]);
        // A wrong shape in a file is an error, not a panic.
        let mut bad = HashMap::new();
        bad.insert(
            "m.mlp0.weight".into(),
            Tensor::zeros((3, 3), DType::F32, &dev).unwrap(),
        );
        assert!(Mlp::new(&mut Store::Load(bad), "m", 2, &[2]).is_err());
    }

    #[test]
    fn seeded_stores_draw_the_same_parameters() {
        let draw = |seed| {
            let mut s = Store::Train {
                vars: Vec::new(),
                rng: Box::new(ChaCha8Rng::seed_from_u64(seed)),
            };
            let t = s.take("x", &[4, 3], Init::Normal(1.0)).unwrap();
            t.flatten_all().unwrap().to_vec1::<f32>().unwrap()
        };
        assert_eq!(draw(7), draw(7));
        assert_ne!(draw(7), draw(8));
    }
}
