//! The in-batch sampled softmax of the two-tower model as one candle operation with a
//! hand-written gradient.

use candle_core::{CpuStorage, Layout, Shape, Tensor};
use gemm::Parallelism;
use rayon::prelude::*;

use crate::linear::matmul_into;
use crate::nn::{contiguous_f32, with_values};

/// The in-batch sampled softmax loss: row r's positive is column r, the other columns are its
/// negatives; logits are u·v/τ minus log Q of the column's item (when given, indexed by item),
/// and a column holding the row's own item elsewhere in the batch is left out.
///
/// The products u·vᵀ and everything after them are one fused operation ([`SoftmaxOp`]) with a
/// hand-written gradient: built from candle's operations it took a dozen passes over the b × b
/// matrix forward and as many backward (scaling, the log-Q row, a mask, log-softmax, the
/// pick), a large share of a training step. Its rows are independent, so blocks of rows (their
/// products, softmax and gradients) run in parallel on every core.
pub(crate) fn in_batch_softmax(
    u: &Tensor,
    v: &Tensor,
    items: &[u32],
    logq: Option<&[f32]>,
    tau: f64,
) -> candle_core::Result<Tensor> {
    let offset = items
        .iter()
        .map(|&i| logq.map_or(0.0, |q| -q[i as usize]))
        .collect();
    let op = SoftmaxOp {
        items: items.to_vec(),
        offset,
        inv_tau: (1.0 / tau) as f32,
        probs: std::sync::Mutex::new(Vec::new()),
    };
    u.apply_op2(v, op)
}

/// The loss of [`in_batch_softmax`] from u (b × d) and v (b × d): mean over rows r of
/// logsumexp_c(z_rc) − z_rr, z_rc = u_r·v_c/τ + offset_c over the columns c that are r or hold
/// another item than row r's.
struct SoftmaxOp {
    items: Vec<u32>,
    offset: Vec<f32>,
    inv_tau: f32,
    /// The softmax of every row, kept by the forward pass for the backward one (which would
    /// otherwise take the b² exponentials again).
    probs: std::sync::Mutex<Vec<f32>>,
}

/// Rows per parallel task: enough to keep a product's kernels busy, small enough to share the
/// rows out evenly.
fn block(b: usize) -> usize {
    (b / 16).max(8)
}

impl SoftmaxOp {
    /// The loss and the softmax of every row (left-out columns at 0), from u and v (d columns
    /// each). Losses are added in row order, so the total does not depend on the threads.
    fn forward(&self, u: &[f32], v: &[f32], d: usize) -> candle_core::Result<(f32, Vec<f32>)> {
        let b = self.items.len();
        if u.len() != b * d || v.len() != b * d {
            candle_core::bail!(
                "in-batch softmax: {} and {} values for a batch of {b} × {d}",
                u.len(),
                v.len()
            );
        }
        let mut probs = vec![0f32; b * b];
        let step = block(b);
        let losses = probs
            .par_chunks_mut((step * b).max(1))
            .enumerate()
            .map(|(k, z)| {
                let first = k * step;
                let rows = z.len() / b.max(1);
                // This block's products: u[first..] · vᵀ (vᵀ's element (k, c) is v[c·d + k]).
                matmul_into(
                    (rows, b, d),
                    z,
                    &u[first * d..],
                    (d, 1),
                    v,
                    (1, d),
                    Parallelism::None,
                )?;
                Ok(z.chunks_exact_mut(b)
                    .enumerate()
                    .map(|(r, z)| self.row(first + r, z))
                    .collect::<Vec<f64>>())
            })
            .collect::<candle_core::Result<Vec<Vec<f64>>>>()?;
        let total: f64 = losses.iter().flatten().sum();
        Ok(((total / b.max(1) as f64) as f32, probs))
    }

    /// Row r's softmax in place of its products `z`; returns the row's loss. The maximum and
    /// the sum run in eight lanes and the mask is a select, so the passes vectorise instead of
    /// waiting on one running value and a branch per column.
    fn row(&self, r: usize, z: &mut [f32]) -> f64 {
        const LANES: usize = 8;
        let own_item = self.items[r];
        let own = z[r] * self.inv_tau + self.offset[r];
        for ((zc, &item), &offset) in z.iter_mut().zip(&self.items).zip(&self.offset) {
            let logit = *zc * self.inv_tau + offset;
            *zc = if item == own_item {
                f32::NEG_INFINITY
            } else {
                logit
            };
        }
        z[r] = own;
        let mut lanes = [f32::NEG_INFINITY; LANES];
        let mut blocks = z.chunks_exact(LANES);
        for block in &mut blocks {
            for (l, &x) in lanes.iter_mut().zip(block) {
                *l = l.max(x);
            }
        }
        let max = blocks
            .remainder()
            .iter()
            .chain(&lanes)
            .fold(f32::NEG_INFINITY, |m, &x| m.max(x));
        let mut sums = [0f32; LANES];
        let mut blocks = z.chunks_exact_mut(LANES);
        for block in &mut blocks {
            for (s, x) in sums.iter_mut().zip(block) {
                *x = (*x - max).exp();
                *s += *x;
            }
        }
        let mut sum: f32 = sums.iter().sum();
        for x in blocks.into_remainder() {
            *x = (*x - max).exp();
            sum += *x;
        }
        for zc in z.iter_mut() {
            *zc /= sum;
        }
        f64::from(max + sum.ln() - own)
    }
}

impl candle_core::CustomOp2 for SoftmaxOp {
    fn name(&self) -> &'static str {
        "in-batch-softmax"
    }

    fn cpu_fwd(
        &self,
        us: &CpuStorage,
        ul: &Layout,
        vs: &CpuStorage,
        vl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (_, d) = ul.shape().dims2()?;
        let (u, v) = (
            contiguous_f32(us, ul, "in-batch softmax")?,
            contiguous_f32(vs, vl, "in-batch softmax")?,
        );
        let (loss, probs) = self.forward(u, v, d)?;
        *self.probs.lock().unwrap_or_else(|e| e.into_inner()) = probs;
        Ok((CpuStorage::F32(vec![loss]), Shape::from(())))
    }

    fn bwd(
        &self,
        u: &Tensor,
        v: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>)> {
        let b = self.items.len();
        let (_, d) = u.dims2()?;
        let (u, v) = (u.contiguous()?, v.contiguous()?);
        let mut probs = std::mem::take(&mut *self.probs.lock().unwrap_or_else(|e| e.into_inner()));
        if probs.len() != b * b {
            // A second backward pass through the same graph: the forward's values are gone.
            probs = with_values(&u, |u| with_values(&v, |v| self.forward(u, v, d)))???.1;
        }
        let g = grad.to_scalar::<f32>()? / b.max(1) as f32;
        let step = block(b);
        // dz_rc = (softmax_rc − [c = r]) / τ, times the mean's 1/b and the upstream gradient;
        // then du = dz · v and dv = dzᵀ · u, each by blocks of its rows.
        probs
            .par_chunks_mut((step * b).max(1))
            .enumerate()
            .for_each(|(k, block)| {
                for (r, row) in block.chunks_exact_mut(b).enumerate() {
                    row[k * step + r] -= 1.0;
                    for o in row.iter_mut() {
                        *o *= self.inv_tau * g;
                    }
                }
            });
        let dz = probs;
        let product = |lhs_strides: (usize, usize), rhs: &[f32]| {
            let mut out = vec![0f32; b * d];
            out.par_chunks_mut((step * d).max(1))
                .enumerate()
                .try_for_each(|(k, o)| {
                    let first = k * step;
                    let (rs, cs) = lhs_strides;
                    matmul_into(
                        (o.len() / d.max(1), d, b),
                        o,
                        &dz[first * rs..],
                        (rs, cs),
                        rhs,
                        (d, 1),
                        Parallelism::None,
                    )
                })
                .map(|()| out)
        };
        let du = with_values(&v, |v| product((b, 1), v))??;
        let dv = with_values(&u, |u| product((1, b), u))??;
        Ok((
            Some(Tensor::from_vec(du, (b, d), u.device())?),
            Some(Tensor::from_vec(dv, (b, d), v.device())?),
        ))
    }
}
