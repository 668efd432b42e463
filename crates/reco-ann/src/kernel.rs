//! Distance kernels. The portable ones live in reco-core, shared with the factor models; the
//! graph's AVX2 loops call the fused multiply-add copies below instead, because the compiler
//! turns the portable eight-accumulator loop into 128-bit multiplies and shuffles (it must keep
//! the written order of additions), which cost 10–20% of search time on 64-d vectors.

pub use reco_core::vector::{dot, l2_squared};

#[cfg(target_arch = "x86_64")]
use std::arch::x86_64::*;

/// Sum of the eight lanes of `s`.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn hsum(s: __m256) -> f32 {
    let h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    let h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    _mm_cvtss_f32(_mm_add_ss(h, _mm_movehdup_ps(h)))
}

/// Inner product over the common length of two slices, with 256-bit fused multiply-adds.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let (mut s0, mut s1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut i = 0;
    // SAFETY (all loads): i + 8 ≤ n or i + 16 ≤ n, within both slices.
    while i + 16 <= n {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s0);
        s1 = _mm256_fmadd_ps(
            _mm256_loadu_ps(pa.add(i + 8)),
            _mm256_loadu_ps(pb.add(i + 8)),
            s1,
        );
        i += 16;
    }
    if i + 8 <= n {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)), s0);
        i += 8;
    }
    let mut r = hsum(_mm256_add_ps(s0, s1));
    for k in i..n {
        r += a[k] * b[k];
    }
    r
}

/// Squared Euclidean distance over the common length of two slices, with 256-bit FMAs.
///
/// # Safety
/// The CPU must support AVX2 and FMA.
#[cfg(target_arch = "x86_64")]
#[inline]
#[target_feature(enable = "avx2,fma")]
pub(crate) unsafe fn l2_squared_avx2(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (pa, pb) = (a.as_ptr(), b.as_ptr());
    let (mut s0, mut s1) = (_mm256_setzero_ps(), _mm256_setzero_ps());
    let mut i = 0;
    // SAFETY (all loads): i + 8 ≤ n or i + 16 ≤ n, within both slices.
    while i + 16 <= n {
        let d0 = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
        let d1 = _mm256_sub_ps(
            _mm256_loadu_ps(pa.add(i + 8)),
            _mm256_loadu_ps(pb.add(i + 8)),
        );
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        s1 = _mm256_fmadd_ps(d1, d1, s1);
        i += 16;
    }
    if i + 8 <= n {
        let d0 = _mm256_sub_ps(_mm256_loadu_ps(pa.add(i)), _mm256_loadu_ps(pb.add(i)));
        s0 = _mm256_fmadd_ps(d0, d0, s0);
        i += 8;
    }
    let mut r = hsum(_mm256_add_ps(s0, s1));
    for k in i..n {
        r += (a[k] - b[k]) * (a[k] - b[k]);
    }
    r
}

#[cfg(all(test, target_arch = "x86_64"))]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn avx2_kernels_match_the_definitions(v in prop::collection::vec((-10f32..10.0, -10f32..10.0), 0..70)) {
            if !(is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")) {
                return Ok(());
            }
            let (a, b): (Vec<f32>, Vec<f32>) = v.into_iter().unzip();
            let d: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
            let l: f64 = a.iter().zip(&b).map(|(x, y)| (*x as f64 - *y as f64).powi(2)).sum();
            // SAFETY: the CPU features were checked above.
            let (dv, lv) = unsafe { (dot_avx2(&a, &b), l2_squared_avx2(&a, &b)) };
            prop_assert!((dv as f64 - d).abs() < 1e-3 * (1.0 + d.abs()));
            prop_assert!((lv as f64 - l).abs() < 1e-3 * (1.0 + l));
        }
    }
}
