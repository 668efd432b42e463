//! A fully connected layer, `y = x·wᵀ + b` optionally through ReLU, as one candle operation
//! with a hand-written gradient.
//!
//! Composed from candle's operations a layer is a matrix product, a broadcast add and a ReLU,
//! and its backward pass a dozen more: the ReLU's mask alone takes four passes over the
//! activations, the bias's gradient a strided reduction, and every gradient starts as a tensor
//! of zeros that it is then added to. In a two-tower step that made the backward pass four times
//! the forward pass instead of two. Fused, the forward pass is one matrix product and one pass
//! for bias and ReLU; the backward pass one pass for the masked gradient and the bias's, and two
//! matrix products.

use candle_core::{CpuStorage, Layout, Shape, Tensor};
use gemm::Parallelism;

use crate::nn::{contiguous_f32, with_values};

/// `relu(x·wᵀ + b)` (or without the ReLU) for `x: (rows, in)`, `w: (out, in)`, `b: (out)`.
pub(crate) fn linear(
    x: &Tensor,
    w: &Tensor,
    b: &Tensor,
    relu: bool,
) -> candle_core::Result<Tensor> {
    x.apply_op3(w, b, Linear { relu })
}

/// The operation: whether a ReLU follows the affine map.
struct Linear {
    relu: bool,
}

/// candle's own choice for its matrix products, so a fused layer splits its work as candle's
/// operations would (one thread unless candle is told otherwise).
fn parallelism() -> Parallelism {
    match candle_core::utils::get_num_threads() {
        0 | 1 => Parallelism::None,
        n => Parallelism::Rayon(n),
    }
}

/// `dst (m × n) = lhs (m × k) · rhs (k × n)`, every matrix given by its element strides
/// (row, column); `dst` is contiguous row-major.
fn matmul(
    dims: (usize, usize, usize),
    lhs: &[f32],
    lhs_strides: (usize, usize),
    rhs: &[f32],
    rhs_strides: (usize, usize),
) -> candle_core::Result<Vec<f32>> {
    let mut dst = vec![0f32; dims.0 * dims.1];
    matmul_into(
        dims,
        &mut dst,
        lhs,
        lhs_strides,
        rhs,
        rhs_strides,
        parallelism(),
    )?;
    Ok(dst)
}

/// [`matmul`] into `dst` (its first m × n elements), split over threads as `parallelism` says.
pub(crate) fn matmul_into(
    (m, n, k): (usize, usize, usize),
    dst: &mut [f32],
    lhs: &[f32],
    (lhs_rs, lhs_cs): (usize, usize),
    rhs: &[f32],
    (rhs_rs, rhs_cs): (usize, usize),
    parallelism: Parallelism,
) -> candle_core::Result<()> {
    let reach = |rows: usize, cols: usize, rs: usize, cs: usize| {
        (rows.saturating_sub(1) * rs + cols.saturating_sub(1) * cs + 1)
            * usize::from(rows * cols > 0)
    };
    if reach(m, k, lhs_rs, lhs_cs) > lhs.len()
        || reach(k, n, rhs_rs, rhs_cs) > rhs.len()
        || m * n > dst.len()
    {
        candle_core::bail!("matrix product: shapes do not match the data");
    }
    if m * n == 0 {
        return Ok(());
    }
    // SAFETY: the bounds check above keeps every element gemm reads inside `lhs` and `rhs`, and
    // every element it writes (m × n at row stride n) inside `dst`; the strides fit in isize
    // because the slices' lengths do.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            false,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
    Ok(())
}

impl candle_core::CustomOp3 for Linear {
    fn name(&self) -> &'static str {
        "linear"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> candle_core::Result<(CpuStorage, Shape)> {
        let (x, w, b) = (
            contiguous_f32(xs, xl, "linear layer")?,
            contiguous_f32(ws, wl, "linear layer")?,
            contiguous_f32(bs, bl, "linear layer")?,
        );
        let (rows, input) = xl.shape().dims2()?;
        let (out, w_in) = wl.shape().dims2()?;
        if w_in != input || b.len() != out {
            candle_core::bail!(
                "linear layer: input ({rows}, {input}), weight ({out}, {w_in}), bias {}",
                b.len()
            );
        }
        // y = x · wᵀ: wᵀ's element (k, j) is w[j·in + k].
        let mut y = matmul((rows, out, input), x, (input, 1), w, (1, input))?;
        for row in y.chunks_exact_mut(out.max(1)) {
            for (v, &bias) in row.iter_mut().zip(b) {
                *v += bias;
                if self.relu {
                    *v = v.max(0.0);
                }
            }
        }
        Ok((CpuStorage::F32(y), Shape::from((rows, out))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> candle_core::Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (rows, input) = x.dims2()?;
        let (out, _) = w.dims2()?;
        // dz = dy where the unit was active (ReLU passes nothing where it output 0); db = Σ dz.
        // A select, not a branch: which units are active is a coin flip the branch predictor
        // loses.
        let dz: Vec<f32> = if self.relu {
            with_values(grad, |g| {
                with_values(res, |y| {
                    g.iter()
                        .zip(y)
                        .map(|(&g, &y)| if y > 0.0 { g } else { 0.0 })
                        .collect()
                })
            })??
        } else {
            with_values(grad, <[f32]>::to_vec)?
        };
        let mut db = vec![0f32; out];
        for row in dz.chunks_exact(out.max(1)) {
            for (s, &g) in db.iter_mut().zip(row) {
                *s += g;
            }
        }
        // dx = dz · w, dw = dzᵀ · x.
        let dx = with_values(w, |w| {
            matmul((rows, input, out), &dz, (out, 1), w, (input, 1))
        })??;
        let dw = with_values(x, |x| {
            matmul((out, input, rows), &dz, (1, out), x, (input, 1))
        })??;
        let dev = x.device();
        Ok((
            Some(Tensor::from_vec(dx, (rows, input), dev)?),
            Some(Tensor::from_vec(dw, (out, input), dev)?),
            Some(Tensor::from_vec(db, out, dev)?),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// candle's composition of the same layer: product, broadcast add, ReLU.
    fn composed(x: &Tensor, w: &Tensor, b: &Tensor, relu: bool) -> Tensor {
        let y = x.matmul(&w.t().unwrap()).unwrap().broadcast_add(b).unwrap();
        if relu {
            y.relu().unwrap()
        } else {
            y
        }
    }

    fn close(a: &Tensor, b: &Tensor) {
        let (a, b) = (
            a.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            b.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
        );
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(&b) {
            assert!((x - y).abs() <= 1e-5 * (1.0 + y.abs()), "{x} against {y}");
        }
    }

    #[test]
    fn a_hand_computed_layer() {
        let dev = Device::Cpu;
        let x = Tensor::new(&[[1f32, 2.], [-3., 0.5]], &dev).unwrap();
        let w = Tensor::new(&[[1f32, 1.], [2., -1.], [0., 4.]], &dev).unwrap();
        let b = Tensor::new(&[0.5f32, -1., 0.], &dev).unwrap();
        // x·wᵀ = [[3, 0, 8], [-2.5, -6.5, 2]]; + b = [[3.5, -1, 8], [-2, -7.5, 2]].
        let y = linear(&x, &w, &b, false).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(y, vec![vec![3.5, -1., 8.], vec![-2., -7.5, 2.]]);
        let y = linear(&x, &w, &b, true).unwrap().to_vec2::<f32>().unwrap();
        assert_eq!(y, vec![vec![3.5, 0., 8.], vec![0., 0., 2.]]);
        // With upstream gradient ones, through the ReLU: dz = [[1, 0, 1], [0, 0, 1]], so
        // db = [1, 0, 2], dx = dz·w = [[1, 5], [0, 4]], dw = dzᵀ·x = [[1, 2], [0, 0], [-2, 2.5]].
        let (xv, wv, bv) = (
            Var::from_tensor(&x).unwrap(),
            Var::from_tensor(&w).unwrap(),
            Var::from_tensor(&b).unwrap(),
        );
        let g = linear(&xv, &wv, &bv, true)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap();
        let get = |v: &Var| {
            g.get(v)
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1::<f32>()
                .unwrap()
        };
        assert_eq!(get(&bv), vec![1., 0., 2.]);
        assert_eq!(get(&xv), vec![1., 5., 0., 4.]);
        assert_eq!(get(&wv), vec![1., 2., 0., 0., -2., 2.5]);
    }

    #[test]
    fn values_and_gradients_match_candles_composition() {
        use rand::{Rng, SeedableRng};
        let dev = Device::Cpu;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        let mut t = |shape: &[usize]| {
            let n = shape.iter().product::<usize>();
            let v: Vec<f32> = (0..n).map(|_| rng.gen_range(-1.0..1.0)).collect();
            Var::from_vec(v, shape, &dev).unwrap()
        };
        // Odd sizes, so no kernel's tail goes untested.
        let (x, w, b) = (t(&[37, 19]), t(&[23, 19]), t(&[23]));
        let c = t(&[37, 23]);
        for relu in [false, true] {
            let fused = linear(&x, &w, &b, relu).unwrap();
            let plain = composed(&x, &w, &b, relu);
            close(&fused, &plain);
            let grads = |y: Tensor| y.mul(&c).unwrap().sum_all().unwrap().backward().unwrap();
            let (gf, gp) = (grads(fused), grads(plain));
            for v in [&x, &w, &b] {
                close(gf.get(v).unwrap(), gp.get(v).unwrap());
            }
        }
    }

    #[test]
    fn mismatched_shapes_are_errors() {
        let dev = Device::Cpu;
        let x = Tensor::zeros((2, 3), candle_core::DType::F32, &dev).unwrap();
        let w = Tensor::zeros((4, 5), candle_core::DType::F32, &dev).unwrap();
        let b = Tensor::zeros(4, candle_core::DType::F32, &dev).unwrap();
        assert!(linear(&x, &w, &b, true).is_err());
        let w = Tensor::zeros((4, 3), candle_core::DType::F32, &dev).unwrap();
        let b = Tensor::zeros(3, candle_core::DType::F32, &dev).unwrap();
        assert!(linear(&x, &w, &b, true).is_err());
    }
}
