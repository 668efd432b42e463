//! The hybrid model's parameter store: the embedding and bias of every feature with its AdaGrad
//! accumulators, read and written as plain memory by one thread or as relaxed atomics by
//! several (Hogwild).

use std::sync::atomic::{AtomicU32, Ordering::Relaxed};

use rand::Rng;

use crate::featurize::FeatureRows;
use crate::mf::{dot, simd_dispatch};

/// Embeddings and biases of every feature (k + 1 values per feature, bias last) with their
/// AdaGrad accumulators, as relaxed atomics so threads may share them.
pub(super) struct Table {
    k1: usize,
    w: Vec<AtomicU32>,
    g: Vec<AtomicU32>,
    /// Several threads train (Hogwild): every access is atomic. Otherwise one thread owns the
    /// table and reads and writes it as plain memory, which vectorises.
    shared: bool,
}

impl Table {
    pub(super) fn new(n_features: usize, k: usize, shared: bool, r: &mut impl Rng) -> Table {
        let k1 = k + 1;
        Table {
            k1,
            shared,
            w: (0..n_features * k1)
                .map(|t| {
                    let v = if t % k1 == k {
                        0.0
                    } else {
                        (r.gen::<f32>() - 0.5) / k as f32
                    };
                    AtomicU32::new(v.to_bits())
                })
                .collect(),
            g: (0..n_features * k1)
                .map(|_| AtomicU32::new(1f32.to_bits()))
                .collect(),
        }
    }

    /// The k + 1 cells of feature `f` (parameters, or accumulators with `acc`).
    #[inline]
    fn cells(&self, f: u32, acc: bool) -> &[AtomicU32] {
        let base = f as usize * self.k1;
        &(if acc { &self.g } else { &self.w })[base..base + self.k1]
    }

    /// The parameters of feature `f` as plain floats, valid while nothing writes the table.
    ///
    /// # Safety
    /// The table must not be `shared`: then one thread trains, and it does not write the table
    /// while the returned slice lives (callers drop it before any update).
    #[inline]
    unsafe fn plain(&self, f: u32) -> &[f32] {
        debug_assert!(!self.shared);
        let cells = self.cells(f, false);
        // SAFETY: AtomicU32 has the size and alignment of u32, and so of f32; see above for
        // the absence of concurrent writes.
        unsafe { std::slice::from_raw_parts(cells.as_ptr().cast::<f32>(), cells.len()) }
    }

    /// Copies the k + 1 values of feature `f` (parameters, or accumulators with `acc`) to `out`.
    #[inline]
    fn load(&self, f: u32, acc: bool, out: &mut [f32]) {
        let cells = self.cells(f, acc);
        if self.shared {
            for (o, a) in out.iter_mut().zip(cells) {
                *o = f32::from_bits(a.load(Relaxed));
            }
        } else {
            // SAFETY: one thread trains an unshared table (see `plain`); the cells are valid
            // f32 and `out` has k + 1 slots.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    cells.as_ptr().cast::<f32>(),
                    out.as_mut_ptr(),
                    self.k1.min(out.len()),
                )
            }
        }
    }

    /// Writes `from` into the cells of feature `f` of a shared table (an unshared one is
    /// updated in place by [`Table::step`]).
    #[inline]
    fn store(&self, f: u32, acc: bool, from: &[f32]) {
        debug_assert!(self.shared);
        for (a, v) in self.cells(f, acc).iter().zip(from) {
            a.store(v.to_bits(), Relaxed);
        }
    }

    /// s(u, e) for a user representation `u` (bias last) against entity `e`, without copying
    /// the row when `e` is a single unshared feature of weight 1 (plain MF, one thread). The
    /// flag says whether `out` now holds e's representation (it does unless the row was read in
    /// place).
    #[inline]
    pub(super) fn score_against(
        &self,
        rows: &FeatureRows,
        e: u32,
        u: &[f32],
        out: &mut [f32],
        tmp: &mut [f32],
    ) -> (f32, bool) {
        let k = self.k1 - 1;
        if !self.shared {
            if let ([f], [w]) = rows.row(e) {
                if *w == 1.0 {
                    // SAFETY: not shared, and the slice dies before any write.
                    let r = unsafe { self.plain(*f) };
                    return (dot(&u[..k], &r[..k]) + u[k] + r[k], false);
                }
            }
        }
        self.repr(rows, e, out, tmp);
        (dot(&u[..k], &out[..k]) + u[k] + out[k], true)
    }

    /// out = Σ_f w_f · row_f over the features of entity `e` (embedding and bias).
    #[inline]
    pub(super) fn repr(&self, rows: &FeatureRows, e: u32, out: &mut [f32], tmp: &mut [f32]) {
        let (idx, val) = rows.row(e);
        if let ([f], [w]) = (idx, val) {
            if *w == 1.0 {
                self.load(*f, false, out);
                return;
            }
        }
        out.iter_mut().for_each(|o| *o = 0.0);
        for (&f, &wf) in idx.iter().zip(val) {
            let row: &[f32] = if self.shared {
                self.load(f, false, tmp);
                tmp
            } else {
                // SAFETY: not shared, and the slice dies within this iteration, before any write.
                unsafe { self.plain(f) }
            };
            for (o, &x) in out.iter_mut().zip(row) {
                *o += wf * x;
            }
        }
    }

    /// An AdaGrad step on the features of entity `e` along `grad` (dL/d repr); coordinates
    /// `0..upto` only (the user bias gets no gradient from pairwise losses). Unshared rows are
    /// updated in place; shared rows are copied out and back, so the arithmetic runs vectorised
    /// on plain memory either way.
    #[inline]
    #[allow(clippy::too_many_arguments)]
    pub(super) fn step(
        &self,
        rows: &FeatureRows,
        e: u32,
        grad: &[f32],
        upto: usize,
        lr: f32,
        reg: f32,
        s: &mut Buffers,
    ) {
        let (idx, val) = rows.row(e);
        for (&f, &wf) in idx.iter().zip(val) {
            if !self.shared {
                let (w, g) = (self.cells(f, false), self.cells(f, true));
                // SAFETY: one thread trains an unshared table and holds no other slice of it
                // (see `plain`); the two rows are distinct allocations of valid f32 bits.
                let (w, g) = unsafe {
                    (
                        std::slice::from_raw_parts_mut(w.as_ptr().cast::<f32>().cast_mut(), upto),
                        std::slice::from_raw_parts_mut(g.as_ptr().cast::<f32>().cast_mut(), upto),
                    )
                };
                adagrad(w, g, &grad[..upto], wf, lr, reg);
                continue;
            }
            self.load(f, false, &mut s.w);
            self.load(f, true, &mut s.g);
            adagrad(
                &mut s.w[..upto],
                &mut s.g[..upto],
                &grad[..upto],
                wf,
                lr,
                reg,
            );
            self.store(f, false, &s.w);
            self.store(f, true, &s.g);
        }
    }
}

simd_dispatch! {
    /// w ← w − lr/√G · d, G ← G + d², with d = w_f·grad + reg·w: LightFM's AdaGrad step for one
    /// feature row (accumulator read before it grows).
    fn adagrad(w: &mut [f32], g: &mut [f32], grad: &[f32], wf: f32, lr: f32, reg: f32) => adagrad_generic
}

#[inline(always)]
fn adagrad_generic(w: &mut [f32], g: &mut [f32], grad: &[f32], wf: f32, lr: f32, reg: f32) {
    for ((w, g), &gc) in w.iter_mut().zip(g.iter_mut()).zip(grad) {
        let d = gc.mul_add(wf, reg * *w);
        *w -= lr / g.sqrt() * d;
        *g = d.mul_add(d, *g);
    }
}

/// Row copies used by [`Table::step`] and [`Table::repr`].
pub(super) struct Buffers {
    pub(super) w: Vec<f32>,
    pub(super) g: Vec<f32>,
    pub(super) tmp: Vec<f32>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn adagrad_step_matches_hand_computation() {
        // One feature, k = 1: w = [0.5, 0.0], accumulators 1. Gradient [2, 1], weight 1,
        // lr 0.1, reg 0: w ← w − 0.1/√1 · g, accumulators ← 1 + g².
        let t = Table {
            k1: 2,
            shared: false,
            w: vec![AtomicU32::new(0.5f32.to_bits()), AtomicU32::new(0)],
            g: vec![
                AtomicU32::new(1f32.to_bits()),
                AtomicU32::new(1f32.to_bits()),
            ],
        };
        let rows = FeatureRows::build(1, &[true], None, &[], 1).unwrap();
        let mut b = Buffers {
            w: vec![0.0; 2],
            g: vec![0.0; 2],
            tmp: vec![0.0; 2],
        };
        t.step(&rows, 0, &[2.0, 1.0], 2, 0.1, 0.0, &mut b);
        let w: Vec<f32> =
            t.w.iter()
                .map(|x| f32::from_bits(x.load(Relaxed)))
                .collect();
        let g: Vec<f32> =
            t.g.iter()
                .map(|x| f32::from_bits(x.load(Relaxed)))
                .collect();
        assert!(
            (w[0] - 0.3).abs() < 1e-6 && (w[1] + 0.1).abs() < 1e-6,
            "{w:?}"
        );
        assert_eq!(g, vec![5.0, 2.0]);
        // The second step is smaller: lr / √5.
        t.step(&rows, 0, &[2.0, 0.0], 1, 0.1, 0.0, &mut b);
        let w0 = f32::from_bits(t.w[0].load(Relaxed));
        assert!((w0 - (0.3 - 0.2 / 5f32.sqrt())).abs() < 1e-6);
    }
}
