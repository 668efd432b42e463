//! Implicit-feedback ALS (Hu, Koren & Volinsky 2008) with the YᵀY trick: every user solves
//! (YᵀY + λI + Σ_{i ∈ I_u} (c_ui − 1) y_i y_iᵀ) x_u = Σ_{i ∈ I_u} c_ui y_i, and items alike.
//! Solvers: conjugate gradient warm-started from the previous factors (implicit's default, 3
//! steps) or exact Cholesky (faer). Users are solved in parallel, each independently, so results
//! do not depend on the thread count.
//!
//! Confidence: `linear` c = 1 + α·v (Hu et al.) or `log` c = 1 + α·ln(1 + v/ε). implicit 0.7
//! uses c = α·v, so its `alpha = a` on binary data is reco's `alpha = a − 1`.

use crate::spec::{check, CheckState, Shape};
use faer::linalg::solvers::Solve;
use faer::{Mat, Side};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use reco_core::model::{FitOptions, Query, Recommender};
use reco_core::{Dataset, Error, Interactions, Result};

use super::lanes::Lanes;
use super::{best_or, end_of_pass, EarlyStop};
use super::{check_common, dot, factor_capabilities, simd_dispatch, Factors};
use crate::knn::similarity::{bm25, tfidf};
use crate::spec::impl_model;

/// How interaction values become confidences.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Confidence {
    /// c = 1 + α·v.
    #[default]
    Linear,
    /// c = 1 + α·ln(1 + v/ε).
    Log,
}

/// Reweighting of the interaction matrix before confidences (implicit's helpers).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Reweight {
    /// Raw values.
    #[default]
    None,
    /// BM25 weights of the user × item matrix (K1 1.2, B 0.75).
    Bm25,
    /// TF-IDF weights.
    Tfidf,
}

/// The linear-system solver.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Solver {
    /// Conjugate gradient, `cg_steps` per solve, warm-started.
    #[default]
    Cg,
    /// Exact Cholesky factorisation.
    Cholesky,
}

/// Parameters of implicit ALS.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct IalsParams {
    /// Number of factors.
    pub factors: usize,
    /// Alternations (one user pass and one item pass each).
    pub epochs: usize,
    /// L2 regularisation λ.
    pub regularization: f64,
    /// Confidence scale α.
    pub alpha: f64,
    /// Confidence shape.
    pub confidence: Confidence,
    /// ε of the log confidence.
    pub epsilon: f64,
    /// Matrix reweighting.
    pub reweight: Reweight,
    /// Solver.
    pub solver: Solver,
    /// Conjugate-gradient steps per solve.
    pub cg_steps: usize,
    /// With validation data: stop after this many epochs without a better validation recall@10
    /// and keep the best iteration's factors (0: off).
    pub patience: usize,
}

impl Default for IalsParams {
    fn default() -> Self {
        IalsParams {
            factors: 64,
            epochs: 15,
            regularization: 0.05,
            alpha: 1.0,
            confidence: Confidence::Linear,
            epsilon: 1.0,
            reweight: Reweight::None,
            solver: Solver::Cg,
            cg_steps: 3,
            patience: 3,
        }
    }
}

impl IalsParams {
    /// Checks every rule, one error per broken rule.
    pub fn validate(&self) -> Result<()> {
        check_common(
            self.factors,
            self.epochs,
            &[("epsilon", self.epsilon)],
            &[
                ("regularization", self.regularization),
                ("alpha", self.alpha),
            ],
        )?;
        if self.solver == Solver::Cg && self.cg_steps == 0 {
            return Err(Error::param("cg_steps", "must be at least 1"));
        }
        Ok(())
    }

    fn conf(&self, v: f32) -> f32 {
        let v = v.max(0.0) as f64;
        (1.0 + self.alpha
            * match self.confidence {
                Confidence::Linear => v,
                Confidence::Log => (v / self.epsilon).ln_1p(),
            }) as f32
    }
}

/// Solves one row: x ← argmin for confidences `conf` over the rows `idx` of `y`. `scratch`
/// holds CG's vectors, reused across the rows a thread solves.
#[allow(clippy::too_many_arguments)]
fn solve_row(
    scratch: &mut Vec<f32>,
    x: &mut [f32],
    idx: &[u32],
    conf: &[f32],
    y: &[f32],
    yty: &[f64],
    yty32: &[f32],
    regularization: f64,
    p: &IalsParams,
) -> Result<()> {
    let k = x.len();
    let row = |i: u32| &y[i as usize * k..(i as usize + 1) * k];
    match p.solver {
        Solver::Cholesky => {
            let mut a = Mat::<f64>::from_fn(k, k, |r, c| {
                yty[r * k + c] + if r == c { regularization } else { 0.0 }
            });
            let mut b = Mat::<f64>::zeros(k, 1);
            // Σ (c − 1) y yᵀ as products GᵀG of the rows scaled by √(c − 1) (confidences are
            // at least 1), a blocked matrix product rather than k² scalar updates per
            // interaction; in blocks of rows, so a popular item's solve holds 512 rows at most.
            const BLOCK: usize = 512;
            let mut g = Mat::<f64>::zeros(BLOCK.min(idx.len()), k);
            for (ib, cb) in idx.chunks(BLOCK).zip(conf.chunks(BLOCK)) {
                for (t, (&i, &c)) in ib.iter().zip(cb).enumerate() {
                    debug_assert!(c >= 1.0, "confidence {c} below 1");
                    let (yi, w) = (row(i), (c as f64 - 1.0).max(0.0).sqrt());
                    for r in 0..k {
                        g[(t, r)] = w * yi[r] as f64;
                        b[(r, 0)] += c as f64 * yi[r] as f64;
                    }
                }
                let gb = g.as_ref().subrows(0, ib.len());
                faer::linalg::matmul::matmul(
                    a.as_mut(),
                    faer::Accum::Add,
                    gb.transpose(),
                    gb,
                    1.0f64,
                    faer::Par::Seq,
                );
            }
            let sol = a
                .llt(Side::Lower)
                .map_err(|e| {
                    Error::training(
                        "ials",
                        format!("a least-squares solve failed ({e:?}); raise regularization"),
                    )
                })?
                .solve(&b);
            for r in 0..k {
                x[r] = sol[(r, 0)] as f32;
            }
        }
        Solver::Cg => {
            scratch.resize(3 * k, 0.0);
            cg(
                x,
                scratch,
                idx,
                conf,
                y,
                yty32,
                regularization as f32,
                p.cg_steps,
            )
        }
    }
    Ok(())
}

simd_dispatch! {
    /// Conjugate gradient on A x = b in f32, warm-started from `x` (implicit's scheme):
    /// A v = YᵀY v + λ v + Σ (c − 1)(y·v) y and b = Σ c y. Runs the AVX2+FMA kernels where the
    /// processor has them; both kernel sets give the same results bit for bit.
    fn cg(x: &mut [f32], scratch: &mut [f32], idx: &[u32], conf: &[f32], y: &[f32], yty32: &[f32], regularization: f32, steps: usize) => cg_with::<Lanes>
}

/// CG with the kernels of `L`; only reached through [`cg`], which checks that the processor
/// has `L`'s instructions.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn cg_with<L: Lanes>(
    x: &mut [f32],
    scratch: &mut [f32],
    idx: &[u32],
    conf: &[f32],
    y: &[f32],
    yty: &[f32],
    regularization: f32,
    steps: usize,
) {
    // Plain functions, not closures: closures do not inherit the caller's target features,
    // and `mul_add` outside an FMA-enabled function is a slow library call.
    let k = x.len();
    let (tmp, rest) = scratch.split_at_mut(k);
    let (res, dir) = rest.split_at_mut(k);
    let dir = &mut dir[..k];
    cg_ax::<L>(x, tmp, idx, conf, y, yty, regularization);
    for (r, t) in res.iter_mut().zip(tmp.iter()) {
        *r = -t;
    }
    // b = Σ c y, four rows at a time.
    for (ii, cc) in idx.chunks(4).zip(conf.chunks(4)) {
        let mut w = [0f32; 4];
        w[..cc.len()].copy_from_slice(cc);
        // SAFETY: `cg` dispatches to L only on processors that have its instructions.
        unsafe { L::axpy4(res, w, quad(y, k, ii.len(), |j| ii[j] as usize)) };
    }
    dir.copy_from_slice(res);
    let mut rs_old = dot(res, res);
    for _ in 0..steps {
        if rs_old < 1e-20 {
            break;
        }
        cg_ax::<L>(dir, tmp, idx, conf, y, yty, regularization);
        let step = rs_old / dot(dir, tmp);
        for r in 0..k {
            x[r] = dir[r].mul_add(step, x[r]);
            res[r] = tmp[r].mul_add(-step, res[r]);
        }
        let rs_new = dot(res, res);
        let beta = rs_new / rs_old;
        for r in 0..k {
            dir[r] = dir[r].mul_add(beta, res[r]);
        }
        rs_old = rs_new;
    }
}

/// out = A v = YᵀY v + λ v + Σ (c − 1)(y·v) y.
///
/// Four rows at a time: a single dot product of 64 values is a chain of dependent additions,
/// so one row at a time waits on latency; four independent chains, and one pass over `out` for
/// four updates, keep both FMA ports busy.
#[inline(always)]
fn cg_ax<L: Lanes>(
    v: &[f32],
    out: &mut [f32],
    idx: &[u32],
    conf: &[f32],
    y: &[f32],
    yty: &[f32],
    regularization: f32,
) {
    let k = v.len();
    for r0 in (0..k).step_by(4) {
        let n = (k - r0).min(4);
        // SAFETY (here and below): `cg` dispatches to L only on processors that have its
        // instructions.
        let d = unsafe { L::dot4(quad(yty, k, n, |j| r0 + j), v) };
        for (j, dj) in d.iter().enumerate().take(n) {
            out[r0 + j] = regularization.mul_add(v[r0 + j], *dj);
        }
    }
    for (ii, cc) in idx.chunks(4).zip(conf.chunks(4)) {
        let rows = quad(y, k, ii.len(), |j| ii[j] as usize);
        let d = unsafe { L::dot4(rows, v) };
        let mut w = [0f32; 4];
        for (j, &c) in cc.iter().enumerate() {
            w[j] = d[j] * (c - 1.0);
        }
        unsafe { L::axpy4(out, w, rows) };
    }
}

/// Rows `at(0..n)` (n from one to four) of the row-major `m`, `k` wide, as the four rows of
/// the kernels; a short group repeats its last row, which its callers weigh 0 or ignore (a
/// fused multiply-add by 0 leaves the sum as it is), so no remainder needs its own loop.
#[inline(always)]
fn quad(m: &[f32], k: usize, n: usize, at: impl Fn(usize) -> usize) -> [&[f32]; 4] {
    std::array::from_fn(|j| {
        let i = at(j.min(n - 1));
        &m[i * k..(i + 1) * k]
    })
}

/// Rows per block of the Gram matrix: a block's partial sum is one task, and blocks are added in
/// order, so the sum does not depend on the thread count.
const GRAM_ROWS: usize = 512;

/// YᵀY in f64, from fixed-size blocks of rows computed in parallel and summed in order.
fn gram(y: &[f32], k: usize) -> Vec<f64> {
    let partials: Vec<Vec<f64>> = y
        .par_chunks(GRAM_ROWS * k.max(1))
        .map(|block| {
            let mut g = vec![0f64; k * k];
            gram_block(block, k, &mut g);
            g
        })
        .collect();
    let mut g = vec![0f64; k * k];
    for p in &partials {
        for (a, b) in g.iter_mut().zip(p) {
            *a += b;
        }
    }
    for r in 0..k {
        for s in 0..r {
            g[r * k + s] = g[s * k + r];
        }
    }
    g
}

simd_dispatch! {
    /// Adds the upper triangle of Σ y yᵀ over the rows of `block` to `g`.
    fn gram_block(block: &[f32], k: usize, g: &mut [f64]) => gram_block_generic
}

#[inline(always)]
fn gram_block_generic(block: &[f32], k: usize, g: &mut [f64]) {
    for row in block.chunks_exact(k) {
        for (r, &a) in row.iter().enumerate() {
            let a = a as f64;
            for (gs, &b) in g[r * k + r..(r + 1) * k].iter_mut().zip(&row[r..]) {
                *gs = a.mul_add(b as f64, *gs);
            }
        }
    }
}

/// One half-step: solve every row of `x` against `y` (rows of `m` give indices and confidences).
fn half_step(
    x: &mut [f32],
    y: &[f32],
    m: &Interactions,
    conf: &[f32],
    p: &IalsParams,
) -> Result<()> {
    let k = p.factors;
    let yty = gram(y, k);
    let yty32: Vec<f32> = yty.iter().map(|&v| v as f32).collect();
    x.par_chunks_mut(k)
        .enumerate()
        .try_for_each_init(Vec::new, |scratch, (u, row)| {
            let r = m.row_range(u as u32);
            solve_row(
                scratch,
                row,
                &m.indices()[r.clone()],
                &conf[r],
                y,
                &yty,
                &yty32,
                p.regularization,
                p,
            )
        })
}

/// A fitted implicit ALS model.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Ials {
    params: IalsParams,
    f: Factors,
    yty: Vec<f64>,
}

impl Ials {
    /// Alternates user and item solves.
    pub fn fit(p: &IalsParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<Self> {
        p.validate()?;
        let m0 = &data.interactions;
        let values: Vec<f32> = match p.reweight {
            Reweight::None => m0.values().to_vec(),
            Reweight::Bm25 => bm25(m0, 1.2, 0.75),
            Reweight::Tfidf => tfidf(m0),
        };
        let conf_u: Vec<f32> = values.into_iter().map(|v| p.conf(v)).collect();
        let mu = m0.with_values(&conf_u);
        let mt = mu.transpose();
        let k = p.factors;
        let mut f = Factors::uniform(m0.n_users(), m0.n_items(), k, 0.0, 0.01, opts.seed);
        let mut early = EarlyStop::recall(m0, opts.validation, p.patience, opts.seed);
        for it in 0..p.epochs {
            half_step(&mut f.users, &f.items, &mu, mu.values(), p)?;
            half_step(&mut f.items, &f.users, &mt, mt.values(), p)?;
            if end_of_pass(&mut early, it, p.epochs, "epoch", || &f, None, opts)?.stop {
                break;
            }
        }
        let f = best_or(early, || f);
        f.check_finite("ials")?;
        let yty = gram(&f.items, k);
        Ok(Ials {
            params: p.clone(),
            f,
            yty,
        })
    }

    /// Factors of a user from a fresh history, exactly as a training user solve (implicit's
    /// `recalculate_user`).
    pub fn fold_in(&self, history: &[(u32, f32)]) -> Result<Vec<f32>> {
        let mut h = history.to_vec();
        h.sort_by_key(|x| x.0);
        if let Some(&(i, _)) = h.iter().find(|x| x.0 as usize >= self.f.n_items()) {
            return Err(Error::param(
                "history",
                format!("item index {i} is outside the catalogue"),
            ));
        }
        let idx: Vec<u32> = h.iter().map(|x| x.0).collect();
        let conf: Vec<f32> = h.iter().map(|x| self.params.conf(x.1)).collect();
        let mut x = vec![0f32; self.f.k];
        let exact = IalsParams {
            solver: Solver::Cholesky,
            ..self.params.clone()
        };
        solve_row(
            &mut Vec::new(),
            &mut x,
            &idx,
            &conf,
            &self.f.items,
            &self.yty,
            &[],
            self.params.regularization,
            &exact,
        )?;
        Ok(x)
    }

    /// How much each history item contributed to `item`'s score (implicit's `explain`):
    /// score = Σ_j c_j · y_itemᵀ W y_j with W = (YᵀY + λI + Σ (c − 1) y yᵀ)⁻¹; best first.
    pub fn explain(&self, history: &[(u32, f32)], item: u32, k: usize) -> Result<Vec<(u32, f32)>> {
        let kk = self.f.k;
        let mut a = Mat::<f64>::from_fn(kk, kk, |r, c| {
            self.yty[r * kk + c]
                + if r == c {
                    self.params.regularization
                } else {
                    0.0
                }
        });
        for &(j, v) in history {
            if j as usize >= self.f.n_items() {
                return Err(Error::param(
                    "history",
                    format!("item index {j} is outside the catalogue"),
                ));
            }
            let c = self.params.conf(v) as f64;
            let y = self.f.item(j);
            for r in 0..kk {
                for s in 0..kk {
                    a[(r, s)] += (c - 1.0) * y[r] as f64 * y[s] as f64;
                }
            }
        }
        let target = Mat::<f64>::from_fn(kk, 1, |r, _| self.f.item(item)[r] as f64);
        let w = a
            .llt(Side::Lower)
            .map_err(|e| {
                Error::training(
                    "ials",
                    format!("explain: the least-squares solve failed: {e:?}"),
                )
            })?
            .solve(&target);
        let mut out: Vec<(u32, f32)> = history
            .iter()
            .map(|&(j, v)| {
                let y = self.f.item(j);
                let d: f64 = (0..kk).map(|r| w[(r, 0)] * y[r] as f64).sum();
                (j, (self.params.conf(v) as f64 * d) as f32)
            })
            .collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        out.truncate(k);
        Ok(out)
    }
}

impl Recommender for Ials {
    fn n_items(&self) -> usize {
        self.f.n_items()
    }

    fn score(&self, q: &Query<'_>, out: &mut [f32]) -> Result<()> {
        let p = if !q.history.is_empty() {
            self.fold_in(q.history)?
        } else {
            q.user
                .filter(|&u| (u as usize) < self.f.n_users())
                .map_or_else(|| vec![0.0; self.f.k], |u| self.f.user(u).to_vec())
        };
        for (i, o) in out.iter_mut().enumerate() {
            *o = dot(&p, self.f.item(i as u32));
        }
        Ok(())
    }

    fn score_users(&self, users: &[u32], out: &mut [f32]) -> Result<()> {
        let f = &self.f;
        f.score_users(users, out, false, |u, p| {
            f.copy_user(u, p);
            0.0
        })
    }

    fn as_explain(&self) -> Option<&dyn reco_core::explain::Explain> {
        Some(self)
    }

    factor_capabilities!();
}

impl_model!(Ials);

impl crate::spec::Kind for Ials {
    const NAME: &'static str = "ials";
    const SUMMARY: &'static str =
        "Implicit-feedback ALS (Hu, Koren & Volinsky), by conjugate gradient or Cholesky.";
    const RENAMED: &'static [(&'static str, &'static str)] =
        &[("iterations", "epochs"), ("reg", "regularization")];
    type Params = IalsParams;
    type Fitted = Ials;

    fn validate(p: &IalsParams) -> Result<()> {
        p.validate()
    }

    fn footprint(p: &IalsParams, shape: &crate::spec::Shape) -> crate::spec::Footprint {
        crate::spec::Footprint::factors(shape, p.factors, 3.0)
    }
    fn capabilities(_: &IalsParams) -> crate::spec::Capabilities {
        use crate::spec::Capabilities;
        Capabilities {
            ranks: true,
            similar_items: true,
            embeddings: true,
            ..Default::default()
        }
    }

    fn fit(p: &IalsParams, data: &Dataset, opts: &FitOptions<'_>) -> Result<Ials> {
        Ials::fit(p, data, opts)
    }

    fn restore(p: &IalsParams, state: &[u8], shape: &Shape) -> Result<Ials> {
        crate::spec::restore_state(p, state, shape, |m: &Ials| &m.params)
    }

    fn examples() -> Vec<IalsParams> {
        [Solver::Cg, Solver::Cholesky]
            .map(|solver| IalsParams {
                factors: 16,
                epochs: 5,
                alpha: 10.0,
                solver,
                ..Default::default()
            })
            .to_vec()
    }
}

impl CheckState for Ials {
    fn check_state(&self, shape: &Shape) -> std::result::Result<(), String> {
        self.f.check(shape)?;
        check::rows("YᵀY", self.yty.len(), self.f.k, self.f.k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Solves one row both ways and checks the Cholesky solution against the normal equations
    /// (recomputed here in f64) and many CG steps against the Cholesky solution.
    fn check_solvers(k: usize, n_rows: usize, idx: &[u32], conf: &[f32]) {
        let y: Vec<f32> = (0..n_rows * k)
            .map(|t| ((t as u64 * 2_654_435_761 % 1000) as f32 / 1000.0) - 0.5)
            .collect();
        let yty = gram(&y, k);
        let yty32: Vec<f32> = yty.iter().map(|&v| v as f32).collect();
        let solve = |solver: Solver| {
            let p = IalsParams {
                factors: k,
                solver,
                cg_steps: 60,
                ..Default::default()
            };
            let mut x = vec![0f32; k];
            solve_row(
                &mut Vec::new(),
                &mut x,
                idx,
                conf,
                &y,
                &yty,
                &yty32,
                0.1,
                &p,
            )
            .map(|()| x)
        };
        let (a, b) = (
            solve(Solver::Cholesky).expect("cholesky"),
            solve(Solver::Cg).expect("cg"),
        );
        let scale = a.iter().map(|v| v.abs()).fold(0f32, f32::max).max(1e-3);
        for (x, z) in a.iter().zip(&b) {
            assert!((x - z).abs() < 1e-3 * scale, "{a:?} vs {b:?}");
        }
        // A x = b with A = YᵀY + λI + Σ (c − 1) y yᵀ and b = Σ c y.
        for r in 0..k {
            let mut lhs =
                0.1 * a[r] as f64 + (0..k).map(|s| yty[r * k + s] * a[s] as f64).sum::<f64>();
            let mut rhs = 0.0;
            for (&i, &c) in idx.iter().zip(conf) {
                let yi = &y[i as usize * k..(i as usize + 1) * k];
                let d: f64 = yi.iter().zip(&a).map(|(p, q)| *p as f64 * *q as f64).sum();
                lhs += (c as f64 - 1.0) * d * yi[r] as f64;
                rhs += c as f64 * yi[r] as f64;
            }
            assert!(
                (lhs - rhs).abs() < 1e-4 * (1.0 + rhs.abs()),
                "row {r}: {lhs} vs {rhs}"
            );
        }
    }

    #[test]
    fn cg_converges_to_the_cholesky_solution() {
        check_solvers(4, 6, &[0, 2, 5], &[3.0, 1.5, 8.0]);
    }

    #[test]
    fn solvers_agree_past_the_block_and_lane_edges() {
        // k = 12: a four-row block and a remainder of the eight-lane kernels; 1,301
        // interactions: three of Cholesky's 512-row blocks and a remainder of four.
        let idx: Vec<u32> = (0..1301).map(|t| (t * 7 % 1500) as u32).collect();
        let conf: Vec<f32> = (0..1301).map(|t| 1.0 + (t % 5) as f32 * 0.75).collect();
        check_solvers(12, 1500, &idx, &conf);
    }
}
