//! The optimisers: AdamW over whole variables ([`DenseAdam`]) and row-sparse ("lazy") AdamW for
//! embedding tables ([`SparseTable`]), both with their state in plain vectors so that a
//! checkpoint can hold it.

use candle_core::backprop::GradStore;
use candle_core::{Device, Tensor, Var};
use rayon::prelude::*;

use reco_core::Result;

use crate::nn::with_values;
use crate::nn_err;

/// Adam's settings, shared by the dense optimiser and the row-sparse tables.
#[derive(Clone, Copy, Debug)]
pub(crate) struct AdamSettings {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

/// One AdamW update's constants, from Adam's settings.
struct AdamStep {
    b1: f32,
    b2: f32,
    c1: f32,
    c2: f32,
    lr: f32,
    eps: f32,
    decay: f32,
}

impl AdamStep {
    fn new(a: &AdamSettings) -> AdamStep {
        AdamStep {
            b1: a.beta1 as f32,
            b2: a.beta2 as f32,
            c1: (1.0 - a.beta1) as f32,
            c2: (1.0 - a.beta2) as f32,
            lr: a.lr as f32,
            eps: a.eps as f32,
            decay: (1.0 - a.lr * a.weight_decay) as f32,
        }
    }

    /// The bias corrections of the two moments after `s` steps.
    fn corrections(a: &AdamSettings, s: u64) -> (f32, f32) {
        let s = i32::try_from(s).unwrap_or(i32::MAX);
        (
            (1.0 / (1.0 - a.beta1.powi(s))) as f32,
            (1.0 / (1.0 - a.beta2.powi(s))) as f32,
        )
    }

    /// Moves weights `w` with moments `m`, `v` by their gradient `g`, the moments corrected by
    /// `scale`.
    fn update(
        &self,
        (scale_m, scale_v): (f32, f32),
        w: &mut [f32],
        m: &mut [f32],
        v: &mut [f32],
        g: &[f32],
    ) {
        for (((w, m), v), &g) in w.iter_mut().zip(m.iter_mut()).zip(v.iter_mut()).zip(g) {
            *m = *m * self.b1 + g * self.c1;
            *v = *v * self.b2 + g * g * self.c2;
            let adjusted = (*m * scale_m) / ((*v * scale_v).sqrt() + self.eps);
            *w = *w * self.decay - adjusted * self.lr;
        }
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
        let (k, scale) = (AdamStep::new(a), AdamStep::corrections(a, self.steps));
        let err = nn_err("optimiser step");
        self.vars
            .par_iter()
            .zip(self.theta.par_iter_mut())
            .zip(self.m.par_iter_mut().zip(self.v.par_iter_mut()))
            .try_for_each(|((var, w), (m, v))| {
                let Some(g) = grads.get(var.as_tensor()) else {
                    return Ok(());
                };
                with_values(g, |g| k.update(scale, w, m, v, g))?;
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
            scales.push(AdamStep::corrections(a, s as u64));
        }
        let scales = &*scales;
        let k = AdamStep::new(a);
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
                let scale = scales
                    .get(*count as usize)
                    .copied()
                    .unwrap_or_else(|| AdamStep::corrections(a, u64::from(*count)));
                let span = r * d..(r + 1) * d;
                k.update(
                    scale,
                    &mut w[span.clone()],
                    &mut m[span.clone()],
                    &mut v[span],
                    gr,
                );
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

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
}
