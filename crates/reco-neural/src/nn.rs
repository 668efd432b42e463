//! The building blocks the networks share: a parameter store that either creates trainable
//! variables (seeded, so a fit is reproducible) or hands back tensors read from a file, an
//! embedding bag, a ReLU MLP and a tower made of both.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{DType, Device, Tensor, Var, D};
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

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

/// Adam's settings, shared by the dense optimiser and the row-sparse tables.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AdamSettings {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

/// One AdamW update's constants: Adam's settings and the bias corrections after `s` steps.
struct AdamStep {
    b1: f32,
    b2: f32,
    c1: f32,
    c2: f32,
    lr: f32,
    eps: f32,
    decay: f32,
    scale_m: f32,
    scale_v: f32,
}

impl AdamStep {
    fn new(a: &AdamSettings, s: i32) -> AdamStep {
        AdamStep {
            scale_m: (1.0 / (1.0 - a.beta1.powi(s))) as f32,
            scale_v: (1.0 / (1.0 - a.beta2.powi(s))) as f32,
            ..AdamStep::new_without_corrections(a)
        }
    }

    /// [`AdamStep::new`] with both bias corrections at 1, for the caller to set.
    fn new_without_corrections(a: &AdamSettings) -> AdamStep {
        AdamStep {
            b1: a.beta1 as f32,
            b2: a.beta2 as f32,
            c1: (1.0 - a.beta1) as f32,
            c2: (1.0 - a.beta2) as f32,
            lr: a.lr as f32,
            eps: a.eps as f32,
            decay: (1.0 - a.lr * a.weight_decay) as f32,
            scale_m: 1.0,
            scale_v: 1.0,
        }
    }

    /// Moves weights `w` with moments `m`, `v` by their gradient `g`.
    fn update(&self, w: &mut [f32], m: &mut [f32], v: &mut [f32], g: &[f32]) {
        for (((w, m), v), &g) in w.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g) {
            *m = *m * self.b1 + g * self.c1;
            *v = *v * self.b2 + g * g * self.c2;
            let adjusted = (*m * self.scale_m) / ((*v * self.scale_v).sqrt() + self.eps);
            *w = *w * self.decay - adjusted * self.lr;
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

/// AdamW over whole variables (the layers, and the tables when they are not row-sparse), with
/// its moments in plain vectors so that a checkpoint can save and restore them; candle's
/// optimiser keeps them private. Same update as candle's `AdamW` (decoupled weight decay, bias
/// correction by the global step).
pub(crate) struct DenseAdam {
    vars: Vec<Var>,
    theta: Vec<Vec<f32>>,
    m: Vec<Vec<f32>>,
    v: Vec<Vec<f32>>,
    steps: u64,
}

impl DenseAdam {
    /// Trains `vars`, their moments at zero.
    pub fn new(vars: Vec<Var>) -> Result<DenseAdam> {
        let theta = vars
            .iter()
            .map(|v| v.as_tensor().flatten_all()?.to_vec1::<f32>())
            .collect::<candle_core::Result<Vec<_>>>()
            .map_err(nn_err("optimiser"))?;
        let zeros: Vec<Vec<f32>> = theta.iter().map(|t| vec![0.0; t.len()]).collect();
        Ok(DenseAdam {
            vars,
            m: zeros.clone(),
            v: zeros,
            theta,
            steps: 0,
        })
    }

    /// One step from the gradients in `grads` (variables without a gradient do not move).
    /// The variables are independent, so they are updated in parallel.
    pub fn step(&mut self, grads: &GradStore, a: &AdamSettings) -> Result<()> {
        self.steps += 1;
        let k = AdamStep::new(a, i32::try_from(self.steps).unwrap_or(i32::MAX));
        let err = nn_err("optimiser step");
        self.vars
            .par_iter()
            .zip(self.theta.par_iter_mut())
            .zip(self.m.par_iter_mut().zip(self.v.par_iter_mut()))
            .try_for_each(|((var, w), (m, v))| {
                let Some(g) = grads.get(var.as_tensor()) else {
                    return Ok(());
                };
                with_values(g, |g| k.update(w, m, v, g))?;
                Tensor::from_slice(w, var.as_tensor().shape(), &Device::Cpu)
                    .and_then(|t| var.set(&t))
            })
            .map_err(err)
    }

    /// Steps taken.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The optimiser's moments as named tensors: `{name}.m` and `{name}.v` per variable, named
    /// as `names` says (the step count is [`DenseAdam::steps`]).
    pub fn state(&self, names: &[String]) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        for (k, name) in names.iter().enumerate().take(self.vars.len()) {
            let shape = self.vars[k].as_tensor().shape();
            for (suffix, data) in [("m", &self.m[k]), ("v", &self.v[k])] {
                let t = Tensor::from_slice(data, shape, &Device::Cpu)
                    .map_err(nn_err("optimiser state"))?;
                out.push((format!("{name}.{suffix}"), t));
            }
        }
        Ok(out)
    }

    /// Restores the state [`DenseAdam::state`] gave (the variables must already hold the saved
    /// weights); `get` finds a tensor by name.
    pub fn restore(
        &mut self,
        names: &[String],
        steps: u64,
        get: &mut dyn FnMut(&str, usize) -> Result<Vec<f32>>,
    ) -> Result<()> {
        for (k, name) in names.iter().enumerate().take(self.vars.len()) {
            let n = self.theta[k].len();
            self.m[k] = get(&format!("{name}.m"), n)?;
            self.v[k] = get(&format!("{name}.v"), n)?;
            self.theta[k] = self.vars[k]
                .as_tensor()
                .flatten_all()
                .and_then(|t| t.to_vec1::<f32>())
                .map_err(nn_err("optimiser state"))?;
        }
        self.steps = steps;
        Ok(())
    }
}

/// An embedding table trained by row-sparse ("lazy") AdamW: a step reads and updates only the
/// rows its batch looks up. A dense optimiser over a table of 140,000 user rows touches every
/// row (and its two moments) at every step, which made a step's cost grow with the catalogue
/// instead of the batch.
///
/// Each row counts its own steps, so its bias correction is that of a row updated `s` times: a
/// row's first update moves it by the learning rate whatever the global step. When every row is
/// looked up at every step this is exactly dense AdamW.
///
/// During training the table lives here ([`SparseTable::rows`]); a batch gathers its rows into a
/// small variable (local row 0 is a zero row that padding points at, never updated), and
/// [`SparseTable::sync`] copies the table into the model's variable for validation, snapshots
/// and saving.
pub(crate) struct SparseTable {
    var: Var,
    dim: usize,
    rows: Vec<f32>,
    m: Vec<f32>,
    v: Vec<f32>,
    steps: Vec<u32>,
    /// Table row → local row of the current batch (0: not in the batch).
    slot: Vec<u32>,
    /// Local row r + 1 → table row.
    touched: Vec<u32>,
    gathered: Option<Var>,
    /// Adam's bias corrections by a row's step count (two powers and divisions per row were
    /// a tenth of a step's time), for the betas they were computed with.
    scales: (f64, f64, Vec<(f32, f32)>),
}

impl SparseTable {
    /// Takes over the training of `var`, a `(rows, dim)` table.
    pub fn new(var: Var) -> Result<SparseTable> {
        let err = nn_err("embedding table");
        let (n, dim) = var.as_tensor().dims2().map_err(&err)?;
        let rows = var
            .as_tensor()
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(&err)?;
        Ok(SparseTable {
            var,
            dim,
            m: vec![0.0; rows.len()],
            v: vec![0.0; rows.len()],
            rows,
            steps: vec![0; n],
            slot: vec![0; n],
            touched: Vec::new(),
            gathered: None,
            scales: (0.0, 0.0, Vec::new()),
        })
    }

    /// Starts a batch: forgets the previous batch's rows.
    pub fn begin(&mut self) {
        for &t in &self.touched {
            self.slot[t as usize] = 0;
        }
        self.touched.clear();
        self.gathered = None;
    }

    /// The local row of table row `t` in this batch (from 1; added on first use).
    pub fn local(&mut self, t: u32) -> u32 {
        let s = &mut self.slot[t as usize];
        if *s == 0 {
            self.touched.push(t);
            *s = self.touched.len() as u32;
        }
        *s
    }

    /// The batch's rows as a trainable `(1 + touched, dim)` tensor, row 0 zero.
    pub fn gather(&mut self) -> candle_core::Result<Tensor> {
        let d = self.dim;
        let mut data = vec![0f32; (self.touched.len() + 1) * d];
        for (out, &t) in data[d..].chunks_exact_mut(d).zip(&self.touched) {
            out.copy_from_slice(&self.rows[t as usize * d..(t as usize + 1) * d]);
        }
        let n = self.touched.len() + 1;
        let var = Var::from_tensor(&Tensor::from_vec(data, (n, d), &Device::Cpu)?)?;
        let t = var.as_tensor().clone();
        self.gathered = Some(var);
        Ok(t)
    }

    /// One lazy AdamW step on the rows of this batch, from their gradients in `grads`. The
    /// batch's rows are scattered over the table, so the step waits on memory more than it
    /// computes: the two halves of the table are updated in parallel, each asking for its
    /// next rows ahead.
    pub fn step(&mut self, grads: &GradStore, a: &AdamSettings) -> Result<()> {
        /// Rows asked for ahead of their update.
        const AHEAD: usize = 4;
        /// Step counts whose bias corrections are kept; past them the corrections are 1 to
        /// within 1e-4 and computed on the spot.
        const KEPT: usize = 1 << 14;
        let Some(var) = &self.gathered else {
            return Ok(());
        };
        let Some(g) = grads.get(var.as_tensor()) else {
            return Ok(());
        };
        let d = self.dim;
        let mid = self.steps.len() / 2;
        if (self.scales.0, self.scales.1) != (a.beta1, a.beta2) {
            self.scales = (a.beta1, a.beta2, vec![(1.0, 1.0)]);
        }
        let most = self.touched.iter().map(|&t| self.steps[t as usize]).max();
        let wanted = most.map_or(0, |s| (s as usize).saturating_add(2)).min(KEPT);
        let scales = &mut self.scales.2;
        for s in scales.len()..wanted {
            let k = AdamStep::new(a, s as i32);
            scales.push((k.scale_m, k.scale_v));
        }
        let scales = &*scales;
        // (local row, table row) of each half.
        let (low, high): (Vec<_>, Vec<_>) = self
            .touched
            .iter()
            .enumerate()
            .map(|(k, &t)| (k + 1, t as usize))
            .partition(|&(_, t)| t < mid);
        let (rows, m, v, steps) = (
            self.rows.split_at_mut(mid * d),
            self.m.split_at_mut(mid * d),
            self.v.split_at_mut(mid * d),
            self.steps.split_at_mut(mid),
        );
        // Table rows [first, first + steps.len()), their values and moments.
        let half = |first: usize,
                    w: &mut [f32],
                    m: &mut [f32],
                    v: &mut [f32],
                    steps: &mut [u32],
                    list: &[(usize, usize)],
                    g: &[f32]| {
            for (j, &(local, t)) in list.iter().enumerate() {
                if let Some(&(_, next)) = list.get(j + AHEAD) {
                    let at = (next - first) * d;
                    for table in [&*w, &*m, &*v] {
                        reco_models::mf::prefetch(table, at, d);
                    }
                }
                let (Some(gr), Some(r)) = (g.get(local * d..(local + 1) * d), t.checked_sub(first))
                else {
                    continue;
                };
                let Some(count) = steps.get_mut(r) else {
                    continue;
                };
                *count = count.saturating_add(1);
                let mut k = AdamStep::new_without_corrections(a);
                (k.scale_m, k.scale_v) = match scales.get(*count as usize) {
                    Some(&kept) => kept,
                    None => {
                        let c = AdamStep::new(a, i32::try_from(*count).unwrap_or(i32::MAX));
                        (c.scale_m, c.scale_v)
                    }
                };
                let span = r * d..(r + 1) * d;
                k.update(&mut w[span.clone()], &mut m[span.clone()], &mut v[span], gr);
            }
        };
        with_values(g, |g| {
            rayon::join(
                || half(0, rows.0, m.0, v.0, steps.0, &low, g),
                || half(mid, rows.1, m.1, v.1, steps.1, &high, g),
            )
        })
        .map_err(nn_err("embedding gradient"))?;
        Ok(())
    }

    /// Copies the table into the model's variable.
    pub fn sync(&self) -> Result<()> {
        let n = self.rows.len() / self.dim.max(1);
        Tensor::from_vec(self.rows.clone(), (n, self.dim), &Device::Cpu)
            .and_then(|t| self.var.set(&t))
            .map_err(nn_err("embedding table"))
    }

    /// The variable this table trains.
    pub fn var(&self) -> &Var {
        &self.var
    }

    /// The table's optimiser state as named tensors: `{prefix}.m`, `{prefix}.v` and the per-row
    /// step counts `{prefix}.steps` (its weights are the variable's, after [`SparseTable::sync`]).
    pub fn state(&self, prefix: &str) -> Result<Vec<(String, Tensor)>> {
        let err = nn_err("embedding table state");
        let shape = self.var.as_tensor().shape();
        Ok(vec![
            (
                format!("{prefix}.m"),
                Tensor::from_slice(&self.m, shape, &Device::Cpu).map_err(&err)?,
            ),
            (
                format!("{prefix}.v"),
                Tensor::from_slice(&self.v, shape, &Device::Cpu).map_err(&err)?,
            ),
            (
                format!("{prefix}.steps"),
                Tensor::from_slice(&self.steps, self.steps.len(), &Device::Cpu).map_err(&err)?,
            ),
        ])
    }

    /// Restores what [`SparseTable::state`] gave; the variable must already hold the saved
    /// weights. `floats` and `counts` find a tensor by name and expected length.
    pub fn restore(
        &mut self,
        prefix: &str,
        floats: &mut dyn FnMut(&str, usize) -> Result<Vec<f32>>,
        counts: &mut dyn FnMut(&str, usize) -> Result<Vec<u32>>,
    ) -> Result<()> {
        let n = self.rows.len();
        self.m = floats(&format!("{prefix}.m"), n)?;
        self.v = floats(&format!("{prefix}.v"), n)?;
        self.steps = counts(&format!("{prefix}.steps"), self.steps.len())?;
        self.rows = self
            .var
            .as_tensor()
            .flatten_all()
            .and_then(|t| t.to_vec1::<f32>())
            .map_err(nn_err("embedding table"))?;
        Ok(())
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

    /// The dense optimiser against candle's AdamW (the one it replaced) on a quadratic loss with
    /// weight decay, over several steps; and its saved state, restored into a fresh optimiser,
    /// continues exactly where the first left off.
    #[test]
    fn dense_adam_follows_candles_adamw_and_resumes_from_its_state() {
        use candle_nn::Optimizer;
        let dev = Device::Cpu;
        let start = [[0.5f32, -1.0, 2.0], [0.1, 0.0, -0.3]];
        let (ours, theirs) = (
            Var::new(&start, &dev).unwrap(),
            Var::new(&start, &dev).unwrap(),
        );
        let a = AdamSettings {
            lr: 0.05,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.1,
        };
        let mut opt = DenseAdam::new(vec![ours.clone()]).unwrap();
        let mut peer = candle_nn::AdamW::new(
            vec![theirs.clone()],
            candle_nn::ParamsAdamW {
                lr: a.lr,
                beta1: a.beta1,
                beta2: a.beta2,
                eps: a.eps,
                weight_decay: a.weight_decay,
            },
        )
        .unwrap();
        let target = Tensor::new(&[[1f32, 1., 1.], [-1., 2., 0.]], &dev).unwrap();
        let loss = |w: &Var| {
            (w.as_tensor() - &target)
                .unwrap()
                .sqr()
                .unwrap()
                .sum_all()
                .unwrap()
        };
        for _ in 0..7 {
            opt.step(&loss(&ours).backward().unwrap(), &a).unwrap();
            peer.step(&loss(&theirs).backward().unwrap()).unwrap();
        }
        let (x, y) = (
            ours.as_tensor().to_vec2::<f32>().unwrap(),
            theirs.as_tensor().to_vec2::<f32>().unwrap(),
        );
        for (x, y) in x.iter().flatten().zip(y.iter().flatten()) {
            assert!((x - y).abs() < 1e-6, "{x} against candle's {y}");
        }
        // Save, take three more steps; restore into a new optimiser over a copy of the saved
        // weights, take the same three steps: the same weights, bit for bit.
        let names = vec!["w".to_string()];
        let saved = opt.state(&names).unwrap();
        let weights = ours.as_tensor().copy().unwrap();
        for _ in 0..3 {
            opt.step(&loss(&ours).backward().unwrap(), &a).unwrap();
        }
        let copy = Var::from_tensor(&weights).unwrap();
        let mut again = DenseAdam::new(vec![copy.clone()]).unwrap();
        let map: HashMap<String, Tensor> = saved.into_iter().collect();
        again
            .restore(&names, opt.steps() - 3, &mut |name, _| {
                Ok(map[name].flatten_all().unwrap().to_vec1::<f32>().unwrap())
            })
            .unwrap();
        for _ in 0..3 {
            again.step(&loss(&copy).backward().unwrap(), &a).unwrap();
        }
        assert_eq!(
            copy.as_tensor().to_vec2::<f32>().unwrap(),
            ours.as_tensor().to_vec2::<f32>().unwrap()
        );
    }

    /// Lazy AdamW by hand: a row moves only at steps that look it up, and its first step moves
    /// it by the learning rate (Adam's first step is lr · g/|g| after bias correction) even when
    /// it comes at the table's second step.
    #[test]
    fn sparse_rows_move_only_when_looked_up_with_their_own_bias_correction() {
        let dev = Device::Cpu;
        let var = Var::new(&[[1f32, 2.], [3., 4.], [5., 6.]], &dev).unwrap();
        let mut t = SparseTable::new(var.clone()).unwrap();
        let a = AdamSettings {
            lr: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
        };
        // loss = Σ c ⊙ rows: the gradient of a looked-up row is c.
        let mut step = |row: u32, c: [f32; 2]| {
            t.begin();
            assert_eq!(t.local(row), 1);
            assert_eq!(t.local(row), 1, "a row twice in a batch is one local row");
            let g = t.gather().unwrap();
            let c = Tensor::new(&[[0f32, 0.], [c[0], c[1]]], &dev).unwrap();
            let grads = g.mul(&c).unwrap().sum_all().unwrap().backward().unwrap();
            t.step(&grads, &a).unwrap();
            t.sync().unwrap();
            var.as_tensor().to_vec2::<f32>().unwrap()
        };
        let after = step(0, [2.0, -0.5]);
        let close = |x: f32, y: f32| (x - y).abs() < 1e-5;
        assert!(
            close(after[0][0], 0.9) && close(after[0][1], 2.1),
            "{after:?}"
        );
        assert_eq!(after[1], vec![3., 4.]);
        assert_eq!(after[2], vec![5., 6.]);
        let after = step(2, [-1.0, 3.0]);
        assert!(
            close(after[2][0], 5.1) && close(after[2][1], 5.9),
            "{after:?}"
        );
        assert!(
            close(after[0][0], 0.9) && close(after[0][1], 2.1),
            "{after:?}"
        );
        // Row 0's second step: m = 0.9·0.1·g + 0.1·g = 0.19 g, v = 0.999·0.001 g² + 0.001 g²;
        // after bias correction m̂ = g and v̂ = g², so it moves by lr again.
        let after = step(0, [2.0, -0.5]);
        assert!(
            close(after[0][0], 0.8) && close(after[0][1], 2.2),
            "{after:?}"
        );
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
