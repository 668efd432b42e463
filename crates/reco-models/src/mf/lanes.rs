//! Four-row vector kernels for the factor solvers, in a portable and an AVX2+FMA form with the
//! same arithmetic (so the same results bit for bit).
//!
//! Why four rows: one inner product of 64 values is a chain of dependent multiply-adds, so a
//! solver doing one row at a time waits on the FMA latency; four independent chains, and one
//! pass over the output for four updates, keep both FMA ports busy. Why intrinsics: written as
//! plain loops over four eight-lane accumulators, the compiler vectorised across the rows with
//! shuffles and ran slower than one row at a time.
//!
//! Every sum has a fixed order: lane l accumulates elements l, l + 8, ... with fused
//! multiply-adds, then the lanes are added as ((s0 + s4) + (s2 + s6)) + ((s1 + s5) + (s3 + s7)),
//! then elements past the last multiple of eight, in order.

/// The kernels. Implementations are selected by the caller's dispatch (see `ials::cg`).
pub(crate) trait Lanes {
    /// The inner products of four rows with `v` (each row at least `v.len()` long).
    ///
    /// # Safety
    /// The processor must support the implementation's instructions (AVX2 and FMA for
    /// [`Avx2`]; nothing for [`Portable`]).
    unsafe fn dot4(rows: [&[f32]; 4], v: &[f32]) -> [f32; 4];

    /// out += Σ_j w_j rows_j (each row at least `out.len()` long), in one pass over `out`.
    ///
    /// # Safety
    /// As for [`Lanes::dot4`].
    unsafe fn axpy4(out: &mut [f32], w: [f32; 4], rows: [&[f32]; 4]);
}

/// Plain Rust, for processors without AVX2.
pub(crate) struct Portable;

#[inline(always)]
fn reduce(a: &[f32; 8]) -> f32 {
    ((a[0] + a[4]) + (a[2] + a[6])) + ((a[1] + a[5]) + (a[3] + a[7]))
}

impl Lanes for Portable {
    #[inline(always)]
    unsafe fn dot4(rows: [&[f32]; 4], v: &[f32]) -> [f32; 4] {
        let k = v.len();
        let body = k - k % 8;
        let mut out = [0f32; 4];
        for (o, row) in out.iter_mut().zip(rows) {
            let mut acc = [0f32; 8];
            for (a, b) in row[..body].chunks_exact(8).zip(v[..body].chunks_exact(8)) {
                for l in 0..8 {
                    acc[l] = a[l].mul_add(b[l], acc[l]);
                }
            }
            let mut s = reduce(&acc);
            for c in body..k {
                s = row[c].mul_add(v[c], s);
            }
            *o = s;
        }
        out
    }

    #[inline(always)]
    unsafe fn axpy4(out: &mut [f32], w: [f32; 4], rows: [&[f32]; 4]) {
        for (c, o) in out.iter_mut().enumerate() {
            *o = rows[3][c].mul_add(
                w[3],
                rows[2][c].mul_add(w[2], rows[1][c].mul_add(w[1], rows[0][c].mul_add(w[0], *o))),
            );
        }
    }
}

/// 256-bit AVX2 with fused multiply-add.
#[cfg(target_arch = "x86_64")]
pub(crate) struct Avx2;

#[cfg(target_arch = "x86_64")]
impl Lanes for Avx2 {
    #[inline(always)]
    unsafe fn dot4(rows: [&[f32]; 4], v: &[f32]) -> [f32; 4] {
        use std::arch::x86_64::*;
        let k = v.len();
        let body = k - k % 8;
        assert!(rows.iter().all(|r| r.len() >= k));
        let mut acc = [_mm256_setzero_ps(); 4];
        let mut c = 0;
        while c < body {
            // SAFETY: c + 8 <= body <= k, and every row and v hold at least k values.
            let vc = _mm256_loadu_ps(v.as_ptr().add(c));
            for j in 0..4 {
                let a = _mm256_loadu_ps(rows[j].as_ptr().add(c));
                acc[j] = _mm256_fmadd_ps(a, vc, acc[j]);
            }
            c += 8;
        }
        let mut out = [0f32; 4];
        for j in 0..4 {
            let mut lanes = [0f32; 8];
            _mm256_storeu_ps(lanes.as_mut_ptr(), acc[j]);
            let mut s = reduce(&lanes);
            for c in body..k {
                s = rows[j][c].mul_add(v[c], s);
            }
            out[j] = s;
        }
        out
    }

    #[inline(always)]
    unsafe fn axpy4(out: &mut [f32], w: [f32; 4], rows: [&[f32]; 4]) {
        use std::arch::x86_64::*;
        let k = out.len();
        let body = k - k % 8;
        assert!(rows.iter().all(|r| r.len() >= k));
        let ws = w.map(|x| _mm256_set1_ps(x));
        let mut c = 0;
        while c < body {
            // SAFETY: c + 8 <= body <= k, and out and every row hold at least k values.
            let p = out.as_mut_ptr().add(c);
            let mut o = _mm256_loadu_ps(p);
            for j in 0..4 {
                o = _mm256_fmadd_ps(_mm256_loadu_ps(rows[j].as_ptr().add(c)), ws[j], o);
            }
            _mm256_storeu_ps(p, o);
            c += 8;
        }
        for c in body..k {
            out[c] = rows[3][c].mul_add(
                w[3],
                rows[2][c].mul_add(
                    w[2],
                    rows[1][c].mul_add(w[1], rows[0][c].mul_add(w[0], out[c])),
                ),
            );
        }
    }
}

/// Whether this processor runs [`Avx2`].
#[cfg(target_arch = "x86_64")]
pub(crate) fn has_avx2() -> bool {
    std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn portable_kernels_match_the_definitions(
            k in 0usize..40,
            seed in prop::collection::vec(-4f32..4.0, 200),
            w in prop::array::uniform4(-2f32..2.0),
        ) {
            let row = |j: usize| -> Vec<f32> { (0..k).map(|c| seed[(j * 41 + c) % 200]).collect() };
            let rows: Vec<Vec<f32>> = (0..4).map(row).collect();
            let v = row(4);
            let r = [&rows[0][..], &rows[1][..], &rows[2][..], &rows[3][..]];
            // SAFETY: the portable kernels need no special instructions.
            let d = unsafe { Portable::dot4(r, &v) };
            let mut out = row(5);
            let before = out.clone();
            unsafe { Portable::axpy4(&mut out, w, r) };
            for j in 0..4 {
                let exact: f64 = rows[j].iter().zip(&v).map(|(a, b)| *a as f64 * *b as f64).sum();
                prop_assert!((d[j] as f64 - exact).abs() < 1e-4 * (1.0 + exact.abs()));
            }
            for c in 0..k {
                let exact = before[c] as f64
                    + (0..4).map(|j| w[j] as f64 * rows[j][c] as f64).sum::<f64>();
                prop_assert!((out[c] as f64 - exact).abs() < 1e-4 * (1.0 + exact.abs()));
            }
        }

        #[cfg(target_arch = "x86_64")]
        #[test]
        fn avx2_kernels_equal_the_portable_ones_bit_for_bit(
            k in 0usize..80,
            seed in prop::collection::vec(-4f32..4.0, 200),
            w in prop::array::uniform4(-2f32..2.0),
        ) {
            if !has_avx2() {
                return Ok(());
            }
            let row = |j: usize| -> Vec<f32> { (0..k).map(|c| seed[(j * 37 + c * 3) % 200]).collect() };
            let rows: Vec<Vec<f32>> = (0..4).map(row).collect();
            let v = row(4);
            let r = [&rows[0][..], &rows[1][..], &rows[2][..], &rows[3][..]];
            // SAFETY: AVX2 and FMA are present, checked above.
            let (a, b) = unsafe { (Avx2::dot4(r, &v), Portable::dot4(r, &v)) };
            prop_assert_eq!(a.map(f32::to_bits), b.map(f32::to_bits));
            let (mut x, mut y) = (row(5), row(5));
            unsafe {
                Avx2::axpy4(&mut x, w, r);
                Portable::axpy4(&mut y, w, r);
            }
            prop_assert_eq!(
                x.iter().map(|v| v.to_bits()).collect::<Vec<_>>(),
                y.iter().map(|v| v.to_bits()).collect::<Vec<_>>()
            );
        }
    }
}
