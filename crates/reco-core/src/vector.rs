//! Vector kernels shared by the factor models and vector search, written so that the compiler
//! vectorises them: eight independent accumulators break the floating-point dependency chain a
//! plain fold would have, and the order of additions is fixed, so results are deterministic.
//! They are `#[inline(always)]` so that inside a `#[target_feature(enable = "avx2,fma")]`
//! function they compile to 256-bit instructions.

/// Inner product over the common length of two slices.
#[inline(always)]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            acc[l] += x[l] * y[l];
        }
    }
    let mut s = (acc[0] + acc[4]) + (acc[1] + acc[5]) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

/// Squared Euclidean distance of two equally long slices.
#[inline(always)]
pub fn l2_squared(a: &[f32], b: &[f32]) -> f32 {
    debug_assert_eq!(a.len(), b.len());
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for l in 0..8 {
            let d = x[l] - y[l];
            acc[l] += d * d;
        }
    }
    let mut s = (acc[0] + acc[4]) + (acc[1] + acc[5]) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
    for (x, y) in ra.iter().zip(rb) {
        s += (x - y) * (x - y);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn kernels_match_the_definitions(v in prop::collection::vec((-10f32..10.0, -10f32..10.0), 0..40)) {
            let (a, b): (Vec<f32>, Vec<f32>) = v.into_iter().unzip();
            let d: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            let l: f64 = a.iter().zip(&b).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum();
            prop_assert!((dot(&a, &b) as f64 - d).abs() < 1e-3 * (1.0 + d.abs()));
            prop_assert!((l2_squared(&a, &b) as f64 - l).abs() < 1e-3 * (1.0 + l));
        }
    }
}
