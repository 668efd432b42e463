//! The in-batch sampled softmax of the two-tower model as one candle operation with a
//! hand-written gradient.

use candle_core::Tensor;

use crate::nn::contiguous_f32;

/// The in-batch sampled softmax loss: row r's positive is column r, the other columns are its
/// negatives; logits are u·v/τ minus log Q of the column's item (when given, indexed by item),
/// and a column holding the row's own item elsewhere in the batch is left out.
///
/// The b × b part after the product u·vᵀ is one fused operation ([`SoftmaxOp`]) with a
/// hand-written gradient: built from candle's operations it took a dozen passes over the
/// matrix forward and as many backward (scaling, the log-Q row, a mask, log-softmax, the
/// pick), a large share of a training step.
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
    u.matmul(&v.t()?)?.apply_op1(op)
}

/// The loss of [`in_batch_softmax`] on the b × b products: mean over rows r of
/// logsumexp_c(z_rc) − z_rr, z_rc = p_rc/τ + offset_c over the columns c that are r or hold
/// another item than row r's.
struct SoftmaxOp {
    items: Vec<u32>,
    offset: Vec<f32>,
    inv_tau: f32,
    /// The softmax of every row, kept by the forward pass for the backward one (which would
    /// otherwise take the b² exponentials again).
    probs: std::sync::Mutex<Vec<f32>>,
}

impl SoftmaxOp {
    /// The loss and the softmax of every row of the b × b products (left-out columns at 0).
    fn forward(&self, products: &[f32]) -> (f32, Vec<f32>) {
        let b = self.items.len();
        let mut probs = vec![0f32; b * b];
        let mut total = 0f64;
        for (r, (z, row)) in probs
            .chunks_exact_mut(b)
            .zip(products.chunks_exact(b))
            .enumerate()
        {
            let mut max = f32::NEG_INFINITY;
            for (c, (zc, &p)) in z.iter_mut().zip(row).enumerate() {
                *zc = if c != r && self.items[c] == self.items[r] {
                    f32::NEG_INFINITY
                } else {
                    p * self.inv_tau + self.offset[c]
                };
                max = max.max(*zc);
            }
            let own = z[r];
            let mut sum = 0f32;
            for zc in z.iter_mut() {
                *zc = (*zc - max).exp();
                sum += *zc;
            }
            for zc in z.iter_mut() {
                *zc /= sum;
            }
            total += f64::from(max + sum.ln() - own);
        }
        ((total / b.max(1) as f64) as f32, probs)
    }
}

impl candle_core::CustomOp1 for SoftmaxOp {
    fn name(&self) -> &'static str {
        "in-batch-softmax"
    }

    fn cpu_fwd(
        &self,
        storage: &candle_core::CpuStorage,
        layout: &candle_core::Layout,
    ) -> candle_core::Result<(candle_core::CpuStorage, candle_core::Shape)> {
        let b = self.items.len();
        let products = contiguous_f32(storage, layout, "in-batch softmax")?;
        if products.len() != b * b {
            candle_core::bail!(
                "in-batch softmax: {} products for a batch of {b}",
                products.len()
            );
        }
        let (loss, probs) = self.forward(products);
        *self.probs.lock().unwrap_or_else(|e| e.into_inner()) = probs;
        Ok((
            candle_core::CpuStorage::F32(vec![loss]),
            candle_core::Shape::from(()),
        ))
    }

    fn bwd(
        &self,
        arg: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<Option<Tensor>> {
        let b = self.items.len();
        let mut probs = std::mem::take(&mut *self.probs.lock().unwrap_or_else(|e| e.into_inner()));
        if probs.len() != b * b {
            // A second backward pass through the same graph: the forward's values are gone.
            probs = self.forward(&arg.flatten_all()?.to_vec1::<f32>()?).1;
        }
        let g = grad.to_scalar::<f32>()? / b.max(1) as f32;
        // d/dp_rc = (softmax_rc − [c = r]) / τ, times the mean's 1/b and the upstream grad.
        for (r, row) in probs.chunks_exact_mut(b).enumerate() {
            row[r] -= 1.0;
            for o in row.iter_mut() {
                *o *= self.inv_tau * g;
            }
        }
        Ok(Some(Tensor::from_vec(probs, (b, b), arg.device())?))
    }
}
