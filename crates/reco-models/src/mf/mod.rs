//! Matrix factorisation: the shared factor store, scoring, similar items, fold-in, and one file
//! per algorithm.
//!
//! Every model here scores r̂_ui = μ + b_u + b_i + p_u · q_i (rating models) or p_u · q_i (+ b_i)
//! (ranking models), exposes its vectors through [`Embeddings`], finds similar items by factor
//! cosine, and folds in a user it has not seen from a history by a ridge least-squares solve on
//! the item factors (the closed form of ALS), so anonymous users get personal scores.

pub mod als;
pub mod bpmf;
pub mod bpr;
pub mod dp;
mod early;
pub use early::validation_recall;
pub mod hybrid;
pub mod ials;
mod lanes;
pub mod lmf;
pub mod nmf;
pub mod svd;
pub mod svdpp;

pub(crate) use early::{best_or, end_of_pass, EarlyStop};

use crate::spec::{check, Shape};
use faer::linalg::solvers::DenseSolveCore;
use faer::{Mat, Side};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::{Deserialize, Serialize};

use reco_core::model::{Embeddings, Query, SimilarItems};
use reco_core::topk::{top_k, Scored};
use reco_core::{Error, Interactions, Result};

/// The shared dot-product kernel (eight partial sums, fixed order).
pub(crate) use reco_core::vector::dot;

/// Defines `$name`, which runs `$generic` compiled with AVX2 and FMA where the processor has
/// them and as plain code elsewhere. The kernels use `mul_add`, exactly rounded in hardware and
/// software alike, so results do not depend on the processor, only the speed does. `$generic`
/// must be `#[inline(always)]` (and free of closures) to be compiled with the features.
macro_rules! simd_dispatch {
    ($(#[$m:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? => $generic:ident) => {
        $(#[$m])*
        fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                unsafe fn with_avx2($($arg: $ty),*) $(-> $ret)? {
                    $generic($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma") {
                    // SAFETY: the processor supports AVX2 and FMA, checked just above.
                    return unsafe { with_avx2($($arg),*) };
                }
            }
            $generic($($arg),*)
        }
    };
    // A kernel generic over `lanes::Lanes`: the AVX2 copy runs it with the intrinsics, the
    // other with the portable kernels (the same arithmetic).
    ($(#[$m:meta])* fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? => $generic:ident::<Lanes>) => {
        $(#[$m])*
        #[allow(clippy::too_many_arguments)]
        fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2,fma")]
                #[allow(clippy::too_many_arguments)]
                unsafe fn with_avx2($($arg: $ty),*) $(-> $ret)? {
                    $generic::<$crate::mf::lanes::Avx2>($($arg),*)
                }
                if $crate::mf::lanes::has_avx2() {
                    // SAFETY: the processor supports AVX2 and FMA, checked just above.
                    return unsafe { with_avx2($($arg),*) };
                }
            }
            $generic::<$crate::mf::lanes::Portable>($($arg),*)
        }
    };
}
pub(crate) use simd_dispatch;

/// The capabilities every factor model has through its factor store `self.f`: similar items by
/// factor cosine and the user/item vectors. Expands inside an `impl Recommender`.
macro_rules! factor_capabilities {
    () => {
        fn as_similar_items(&self) -> Option<&dyn reco_core::model::SimilarItems> {
            Some(&self.f)
        }
        fn as_embeddings(&self) -> Option<&dyn reco_core::model::Embeddings> {
            Some(&self.f)
        }
    };
}
pub(crate) use factor_capabilities;

/// Checks the rules shared by factor models, one error per broken rule.
pub(crate) fn check_common(
    factors: usize,
    epochs: usize,
    rates: &[(&'static str, f64)],
    regs: &[(&'static str, f64)],
) -> Result<()> {
    if factors == 0 {
        return Err(Error::param("factors", "must be at least 1"));
    }
    if epochs == 0 {
        return Err(Error::param("epochs", "must be at least 1"));
    }
    for &(name, v) in rates {
        if !(v > 0.0 && v.is_finite()) {
            return Err(Error::param(
                name,
                format!("must be a finite number > 0, got {v}"),
            ));
        }
    }
    for &(name, v) in regs {
        if !(v >= 0.0 && v.is_finite()) {
            return Err(Error::param(
                name,
                format!("must be a finite number >= 0, got {v}"),
            ));
        }
    }
    Ok(())
}

/// Splits `v` (rows of `width`) at the row boundaries `cut`: the disjoint parameter ranges that
/// the blocks of one stratum of a partitioned SGD epoch own.
pub(crate) fn split_by<'a, T>(mut v: &'a mut [T], cut: &[usize], width: usize) -> Vec<&'a mut [T]> {
    let mut out = Vec::with_capacity(cut.len());
    for w in cut.windows(2) {
        let (head, tail) = v.split_at_mut((w[1] - w[0]) * width);
        out.push(head);
        v = tail;
    }
    out
}

/// Asks the cache for `data[start..start + len]` ahead of its use; a hint only (the neural
/// models' row-sparse tables use it too).
#[inline(always)]
pub fn prefetch(data: &[f32], start: usize, len: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(row) = data.get(start..start + len) {
        // 16 floats per 64-byte line.
        for line in row.chunks(16) {
            // SAFETY: a prefetch never faults and does not change memory; the address is in
            // `data`. SSE is part of every x86-64 processor.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(
                    line.as_ptr().cast::<i8>(),
                )
            };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (data, start, len);
}

/// A seeded RNG for one purpose of one fit.
pub(crate) fn rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

/// Inner products of every row of `rows` (row-major, `k` wide) with every row of `items`
/// (row-major, `k` wide), into `out` (row-major, one row of `items.len() / k` per row of
/// `rows`): one blocked matrix product (faer), sequential inside because callers run blocks
/// on every thread. What models whose scores are inner products use for
/// [`reco_core::model::Recommender::score_users`].
pub fn products(rows: &[f32], items: &[f32], k: usize, out: &mut [f32]) {
    let k1 = k.max(1);
    let (b, n) = (rows.len() / k1, items.len() / k1);
    if b == 0 || n == 0 || out.len() != b * n {
        return;
    }
    faer::linalg::matmul::matmul(
        faer::MatMut::from_row_major_slice_mut(out, b, n),
        faer::Accum::Replace,
        faer::MatRef::from_row_major_slice(&rows[..b * k], b, k),
        faer::MatRef::from_row_major_slice(&items[..n * k], n, k).transpose(),
        1.0f32,
        faer::Par::Seq,
    );
}

/// Factors and biases of a fitted model.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Factors {
    /// Number of factors k.
    pub k: usize,
    /// User factors, row-major n_users × k.
    pub users: Vec<f32>,
    /// Item factors, row-major n_items × k.
    pub items: Vec<f32>,
    /// User biases (empty for unbiased models).
    pub user_bias: Vec<f32>,
    /// Item biases (empty for unbiased models).
    pub item_bias: Vec<f32>,
    /// Global mean (0 for ranking models).
    pub mu: f32,
}

impl Factors {
    /// Factors drawn from N(mean, sd), biases zero.
    pub fn normal(
        n_users: usize,
        n_items: usize,
        k: usize,
        mean: f64,
        sd: f64,
        biased: bool,
        seed: u64,
    ) -> Result<Factors> {
        let d = Normal::new(mean, sd).map_err(|e| Error::param("init_std", e.to_string()))?;
        let (mut ru, mut ri) = (rng(seed, 11), rng(seed, 12));
        Ok(Factors {
            k,
            users: (0..n_users * k).map(|_| d.sample(&mut ru) as f32).collect(),
            items: (0..n_items * k).map(|_| d.sample(&mut ri) as f32).collect(),
            user_bias: if biased {
                vec![0.0; n_users]
            } else {
                Vec::new()
            },
            item_bias: if biased {
                vec![0.0; n_items]
            } else {
                Vec::new()
            },
            mu: 0.0,
        })
    }

    /// Factors drawn uniformly from [lo, hi).
    pub fn uniform(
        n_users: usize,
        n_items: usize,
        k: usize,
        lo: f32,
        hi: f32,
        seed: u64,
    ) -> Factors {
        let (mut ru, mut ri) = (rng(seed, 11), rng(seed, 12));
        Factors {
            k,
            users: (0..n_users * k).map(|_| ru.gen_range(lo..hi)).collect(),
            items: (0..n_items * k).map(|_| ri.gen_range(lo..hi)).collect(),
            ..Default::default()
        }
    }

    /// Number of users.
    pub fn n_users(&self) -> usize {
        self.users.len() / self.k.max(1)
    }

    /// Number of items.
    pub fn n_items(&self) -> usize {
        self.items.len() / self.k.max(1)
    }

    /// Vector of user `u`.
    #[inline]
    pub fn user(&self, u: u32) -> &[f32] {
        &self.users[u as usize * self.k..(u as usize + 1) * self.k]
    }

    /// Vector of item `i`.
    #[inline]
    pub fn item(&self, i: u32) -> &[f32] {
        &self.items[i as usize * self.k..(i as usize + 1) * self.k]
    }

    /// Errors on a NaN or infinite parameter: training diverged (a learning rate too high).
    pub fn check_finite(&self, model: &str) -> Result<()> {
        let bad = |v: &[f32]| v.iter().any(|x| !x.is_finite());
        if bad(&self.users)
            || bad(&self.items)
            || bad(&self.user_bias)
            || bad(&self.item_bias)
            || !self.mu.is_finite()
        {
            return Err(Error::diverged(
                model,
                "NaN or infinite factors; lower the learning rate or raise regularization",
            ));
        }
        Ok(())
    }

    /// The user vector and bias of a query: a known user's, or one folded in from the history.
    pub fn query_user(
        &self,
        q: &Query<'_>,
        reg: f32,
        target: impl Fn(u32, f32) -> f32,
    ) -> Result<(Vec<f32>, f32)> {
        if q.history.is_empty() {
            if let Some(u) = q.user.filter(|&u| (u as usize) < self.n_users()) {
                return Ok((
                    self.user(u).to_vec(),
                    self.user_bias.get(u as usize).copied().unwrap_or(0.0),
                ));
            }
            return Ok((vec![0.0; self.k], 0.0));
        }
        Ok((self.fold_in(q.history, reg, target)?, 0.0))
    }

    /// Ridge least squares of a history on the item factors: p = (QᵀQ + λI)⁻¹ Qᵀ t, with
    /// t = target(item, value) (the rating minus μ and b_i for rating models, 1 for ranking ones).
    pub fn fold_in(
        &self,
        history: &[(u32, f32)],
        reg: f32,
        target: impl Fn(u32, f32) -> f32,
    ) -> Result<Vec<f32>> {
        let k = self.k;
        let mut a = Mat::<f64>::zeros(k, k);
        let mut b = vec![0f64; k];
        for &(i, v) in history {
            if i as usize >= self.n_items() {
                return Err(Error::param(
                    "history",
                    format!("item index {i} is outside the catalogue"),
                ));
            }
            let q = self.item(i);
            let t = target(i, v) as f64;
            for r in 0..k {
                b[r] += q[r] as f64 * t;
                for c in 0..k {
                    a[(r, c)] += q[r] as f64 * q[c] as f64;
                }
            }
        }
        for r in 0..k {
            a[(r, r)] += reg.max(1e-6) as f64;
        }
        let inv = a
            .llt(Side::Lower)
            .map_err(|e| {
                Error::training("fold-in", format!("the least-squares solve failed: {e:?}"))
            })?
            .inverse();
        Ok((0..k)
            .map(|r| (0..k).map(|c| inv[(r, c)] * b[c]).sum::<f64>() as f32)
            .collect())
    }

    /// Scores a block of known users against every item with one matrix product: `row(u, p)`
    /// writes user `u`'s query vector into `p` (zeros on entry) and returns what is added to
    /// all of that user's scores; row `j` of `out` becomes p · q_i (+ the item bias when
    /// `with_item_bias`) + that constant, as [`Factors::score_vector`] does for one user.
    pub fn score_users(
        &self,
        users: &[u32],
        out: &mut [f32],
        with_item_bias: bool,
        row: impl Fn(u32, &mut [f32]) -> f32,
    ) -> Result<()> {
        let (n, k) = (self.n_items(), self.k);
        reco_core::model::check_block(n, users.len(), out.len())?;
        if out.is_empty() {
            return Ok(());
        }
        let mut rows = vec![0f32; users.len() * k];
        let mut add = vec![0f32; users.len()];
        for ((&u, p), a) in users
            .iter()
            .zip(rows.chunks_exact_mut(k.max(1)))
            .zip(&mut add)
        {
            *a = row(u, p);
        }
        products(&rows, &self.items, k, out);
        let bias = if with_item_bias && self.item_bias.len() == n {
            Some(&self.item_bias)
        } else {
            None
        };
        for (o, &a) in out.chunks_exact_mut(n).zip(&add) {
            match bias {
                Some(b) => o.iter_mut().zip(b).for_each(|(x, &b)| *x += b + a),
                None if a != 0.0 => o.iter_mut().for_each(|x| *x += a),
                None => {}
            }
        }
        Ok(())
    }

    /// [`Factors::score_users`] for rating models: μ + b_u + b_i + p_u · q_i, and μ + b_i for a
    /// user outside the training users.
    pub fn score_rating_users(&self, users: &[u32], out: &mut [f32]) -> Result<()> {
        self.score_users(users, out, true, |u, p| {
            if !self.copy_user(u, p) {
                return self.mu;
            }
            self.mu + self.user_bias.get(u as usize).copied().unwrap_or(0.0)
        })
    }

    /// Copies a training user's vector into `p` (for [`Factors::score_users`]); false, and `p`
    /// untouched, for a user outside the training users.
    pub fn copy_user(&self, u: u32, p: &mut [f32]) -> bool {
        if (u as usize) < self.n_users() {
            p.copy_from_slice(self.user(u));
            return true;
        }
        false
    }

    /// Writes p · q_i (+ item bias when `with_item_bias`) for every item.
    pub fn score_vector(&self, p: &[f32], with_item_bias: bool, out: &mut [f32]) {
        for (i, o) in out.iter_mut().enumerate() {
            *o = dot(p, self.item(i as u32))
                + if with_item_bias {
                    self.item_bias.get(i).copied().unwrap_or(0.0)
                } else {
                    0.0
                };
        }
    }

    /// The `k` items with the highest factor cosine to `item`.
    pub fn similar(&self, item: u32, k: usize) -> Result<Vec<Scored>> {
        if item as usize >= self.n_items() {
            return Err(Error::param(
                "item",
                format!("index {item} is outside the catalogue"),
            ));
        }
        let q = self.item(item);
        let nq = dot(q, q).sqrt().max(f32::MIN_POSITIVE);
        let scores: Vec<f32> = (0..self.n_items() as u32)
            .map(|j| {
                let v = self.item(j);
                dot(q, v) / (nq * dot(v, v).sqrt().max(f32::MIN_POSITIVE))
            })
            .collect();
        Ok(top_k(&scores, k, &[item], |_| false))
    }
}

/// The logistic function, computed without overflow on either side.
#[inline]
pub(crate) fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let z = x.exp();
        z / (1.0 + z)
    }
}

/// Membership test "has user u interacted with item j", asked for every sampled negative. A bit
/// matrix when it fits in 64 MiB (one load instead of a binary search's chain of dependent
/// loads), the sorted rows otherwise.
pub(crate) struct Positives<'a> {
    m: &'a Interactions,
    bits: Vec<u64>,
}

impl<'a> Positives<'a> {
    const MAX_BITS: usize = 1 << 29;

    /// The test for the pairs of `m`.
    pub(crate) fn new(m: &'a Interactions) -> Self {
        let n = m.n_users().saturating_mul(m.n_items());
        let mut bits = Vec::new();
        if n <= Self::MAX_BITS {
            bits = vec![0u64; n.div_ceil(64)];
            for (u, i, _) in m.iter() {
                let b = u as usize * m.n_items() + i as usize;
                bits[b / 64] |= 1 << (b % 64);
            }
        }
        Positives { m, bits }
    }

    /// True when `m` holds (u, j).
    #[inline]
    pub(crate) fn has(&self, u: u32, j: u32) -> bool {
        if self.bits.is_empty() {
            return self.m.user_items(u).binary_search(&j).is_ok();
        }
        let b = u as usize * self.m.n_items() + j as usize;
        self.bits[b / 64] & (1 << (b % 64)) != 0
    }
}

/// Which users and items training saw, and the rating scale. Surprise's estimate leaves out the
/// terms of an unseen user or item and clips to the scale; rating models share it here.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Seen {
    user: Vec<bool>,
    item: Vec<bool>,
    scale: crate::bias::Scale,
}

impl Seen {
    /// What `m` holds.
    pub fn of(m: &reco_core::Interactions) -> Self {
        Seen {
            user: (0..m.n_users() as u32).map(|u| m.user_len(u) > 0).collect(),
            item: (0..m.n_items() as u32).map(|i| m.item_len(i) > 0).collect(),
            scale: crate::bias::Scale::of(m),
        }
    }

    /// True when training had ratings of user `u`.
    pub fn user(&self, u: u32) -> bool {
        self.user.get(u as usize).copied().unwrap_or(false)
    }

    /// True when training had ratings of item `i`.
    pub fn item(&self, i: u32) -> bool {
        self.item.get(i as usize).copied().unwrap_or(false)
    }

    /// μ + b_u + b_i + p_u · q_i without the terms of an unseen user or item, clipped.
    pub fn estimate(&self, f: &Factors, u: u32, i: u32) -> f32 {
        let (ku, ki) = (self.user(u), self.item(i));
        let mut est = f.mu;
        if ku {
            est += f.user_bias.get(u as usize).copied().unwrap_or(0.0);
        }
        if ki {
            est += f.item_bias.get(i as usize).copied().unwrap_or(0.0);
        }
        if ku && ki {
            est += dot(f.user(u), f.item(i));
        }
        self.scale.clip(est)
    }
}

impl Embeddings for Factors {
    fn dim(&self) -> usize {
        self.k
    }
    fn user_vector(&self, u: u32) -> Option<&[f32]> {
        ((u as usize) < self.n_users()).then(|| self.user(u))
    }
    fn item_vector(&self, i: u32) -> Option<&[f32]> {
        ((i as usize) < self.n_items()).then(|| self.item(i))
    }
    fn user_matrix(&self) -> Option<&[f32]> {
        Some(&self.users)
    }
    fn item_matrix(&self) -> Option<&[f32]> {
        Some(&self.items)
    }
}

impl SimilarItems for Factors {
    fn similar_items(&self, item: u32, k: usize) -> Result<Vec<Scored>> {
        self.similar(item, k)
    }
}

impl Factors {
    /// Checks factors read from a file against the id space: one row of `k` per user and item,
    /// biases absent or one per row.
    pub(crate) fn check(&self, shape: &Shape) -> std::result::Result<(), String> {
        if self.k == 0 {
            return Err("the factors have width 0".into());
        }
        check::rows("the user factors", self.users.len(), shape.users, self.k)?;
        check::rows("the item factors", self.items.len(), shape.items, self.k)?;
        if !self.user_bias.is_empty() {
            check::len("the user biases", self.user_bias.len(), shape.users)?;
        }
        if !self.item_bias.is_empty() {
            check::len("the item biases", self.item_bias.len(), shape.items)?;
        }
        Ok(())
    }

    /// Checks that rows hold `factors` learned values and `extra` fixed slots, as the model's
    /// parameters say (scoring writes those slots by position).
    pub(crate) fn check_width(
        &self,
        factors: usize,
        extra: usize,
    ) -> std::result::Result<(), String> {
        if factors.checked_add(extra) == Some(self.k) {
            Ok(())
        } else {
            Err("the factor width does not match the parameters".into())
        }
    }
}

impl Seen {
    /// Checks what training saw against the id space.
    pub(crate) fn check(&self, shape: &Shape) -> std::result::Result<(), String> {
        check::len("the seen users", self.user.len(), shape.users)?;
        check::len("the seen items", self.item.len(), shape.items)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fold_in_recovers_a_user_from_exact_ratings() {
        // Items with orthogonal unit factors: the ridge solution is t / (1 + λ).
        let f = Factors {
            k: 2,
            users: vec![],
            items: vec![1.0, 0.0, 0.0, 1.0],
            mu: 0.0,
            ..Default::default()
        };
        let p = f.fold_in(&[(0, 2.0), (1, -4.0)], 1.0, |_, v| v).unwrap();
        assert!((p[0] - 1.0).abs() < 1e-5 && (p[1] + 2.0).abs() < 1e-5);
        assert!(f.fold_in(&[(7, 1.0)], 1.0, |_, v| v).is_err());
        let s = f.similar(0, 1).unwrap();
        assert_eq!(s[0].item, 1);
        assert!(check_common(0, 1, &[], &[]).is_err());
        assert!(check_common(1, 1, &[("lr", 0.0)], &[]).is_err());
        assert!(check_common(1, 1, &[], &[("reg", -1.0)]).is_err());
    }

    /// Fits `spec` with a validation hold-out and returns the model, its training data, the
    /// held-out part and the scores it reported per pass.
    fn fit_with_validation(
        spec: &crate::ModelSpec,
    ) -> (
        Box<dyn crate::Model>,
        reco_core::Dataset,
        Interactions,
        Vec<f64>,
    ) {
        use reco_core::split::{split, Protocol};
        let data = reco_core::synth::structured().unwrap();
        let fold = split(&data, &Protocol::Holdout { ratio: 0.2 }, 4)
            .unwrap()
            .remove(0);
        let seen = std::sync::Mutex::new(Vec::new());
        let report = |p: reco_core::model::Progress<'_>| {
            if let Some(l) = p.loss {
                seen.lock().unwrap().push(l)
            }
        };
        let opts = reco_core::model::FitOptions {
            seed: 3,
            progress: Some(&report),
            validation: Some(&fold.test),
            checkpoint: None,
        };
        let m = spec.fit(&fold.train, &opts).unwrap();
        let scores = seen.into_inner().unwrap();
        (m, fold.train, fold.test, scores)
    }

    #[test]
    fn ranking_models_keep_their_best_validation_pass() {
        for spec in [
            r#"{"model":"ials","factors":16,"epochs":12}"#,
            r#"{"model":"bpr","factors":16,"epochs":12}"#,
            r#"{"model":"lmf","factors":16,"epochs":12}"#,
        ] {
            let spec: crate::ModelSpec = serde_json::from_str(spec).unwrap();
            let (m, train, valid, scores) = fit_with_validation(&spec);
            assert!(
                !scores.is_empty() && scores.len() <= 12,
                "{spec:?}: {scores:?}"
            );
            // Rebuild the kept vectors and measure them as training did.
            let e = m.as_embeddings().unwrap();
            let f = Factors {
                k: e.dim(),
                users: (0..train.n_users() as u32)
                    .flat_map(|u| e.user_vector(u).unwrap().to_vec())
                    .collect(),
                items: (0..train.n_items() as u32)
                    .flat_map(|i| e.item_vector(i).unwrap().to_vec())
                    .collect(),
                ..Default::default()
            };
            let v = EarlyStop::recall(&train.interactions, Some(&valid), 1, 3).unwrap();
            let best = scores.iter().copied().fold(f64::MIN, f64::max);
            assert!(
                (v.score(&f) - best).abs() < 1e-9,
                "{spec:?}: kept {} best {best}",
                v.score(&f)
            );
        }
    }

    #[test]
    fn rating_models_keep_their_best_validation_pass() {
        for spec in [
            r#"{"model":"als","factors":16,"epochs":12,"regularization":0.001}"#,
            r#"{"model":"svdpp","factors":16,"epochs":30,"learning_rate":0.02}"#,
        ] {
            let spec: crate::ModelSpec = serde_json::from_str(spec).unwrap();
            let (m, _, valid, scores) = fit_with_validation(&spec);
            let p = m.as_rating_predictor().unwrap();
            let se: f64 = valid
                .iter()
                .map(|(u, i, r)| f64::from(r - p.predict(u, i)).powi(2))
                .sum();
            let rmse = (se / valid.nnz() as f64).sqrt();
            let best = scores.iter().copied().fold(f64::MAX, f64::min);
            assert!(
                (rmse - best).abs() < 1e-5,
                "{spec:?}: kept {rmse} best {best}: {scores:?}"
            );
        }
        let nmf: crate::ModelSpec = serde_json::from_str(r#"{"model":"nmf","epochs":30}"#).unwrap();
        let (_, _, _, scores) = fit_with_validation(&nmf);
        assert!(!scores.is_empty() && scores.len() <= 30);
    }
}
