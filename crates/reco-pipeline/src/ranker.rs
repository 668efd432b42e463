//! Learned rankers over candidate features: logistic regression and gradient-boosted trees.

use rayon::prelude::*;
use reco_core::Result;
use serde::{Deserialize, Serialize};

/// Labelled feature rows a ranker is trained on ([`crate::Pipeline::ranker_rows`] makes them
/// from a pipeline's candidates).
#[derive(Clone, Debug, Default)]
pub struct Rows {
    /// Features per row.
    pub dim: usize,
    /// Row-major features, `dim` per row.
    pub x: Vec<f32>,
    /// Labels: 1 for a candidate the user went on to interact with, 0 for a sampled negative.
    pub y: Vec<f32>,
}

/// A fitted ranker: higher is more likely to be interacted with.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub enum Ranker {
    /// Logistic regression.
    Logistic(Logistic),
    /// Gradient-boosted trees.
    Gbdt(Gbdt),
    /// The sum of the sources' reciprocal ranks (no learning).
    Sources,
}

impl Ranker {
    /// Checks a ranker read from an artifact against the number of features it will be given:
    /// a corrupt file must fail to load, not index out of bounds or loop while ranking.
    pub(crate) fn check(&self, features: usize) -> std::result::Result<(), &'static str> {
        match self {
            Ranker::Sources => Ok(()),
            Ranker::Logistic(l) => {
                if l.mean.len() != features
                    || l.scale.len() != features
                    || l.weights.len() != features
                {
                    return Err("the ranker's weights do not match its features");
                }
                Ok(())
            }
            Ranker::Gbdt(g) => {
                for nodes in &g.trees {
                    // Children come after their parent, so a walk from the root ends.
                    let ok = !nodes.is_empty()
                        && nodes.iter().enumerate().all(|(k, n)| {
                            n.feature == u32::MAX
                                || ((n.feature as usize) < features
                                    && (n.left as usize) > k
                                    && (n.right as usize) > k
                                    && (n.left as usize) < nodes.len()
                                    && (n.right as usize) < nodes.len())
                        });
                    if !ok {
                        return Err("a ranker tree is malformed");
                    }
                }
                Ok(())
            }
        }
    }
}

/// Logistic regression on standardised features.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Logistic {
    /// Feature means.
    pub mean: Vec<f32>,
    /// Feature standard deviations (1 where a feature is constant).
    pub scale: Vec<f32>,
    /// Weights on standardised features.
    pub weights: Vec<f64>,
    /// Intercept.
    pub bias: f64,
}

impl Logistic {
    /// Fits by Newton's method (iteratively reweighted least squares) with an L2 penalty on the
    /// weights (not the intercept): the problem is small (tens of features) and convex, so a
    /// few exact steps beat any step-size tuning.
    pub fn fit(rows: &Rows, l2: f64) -> Result<Self> {
        let (d, n) = (rows.dim, rows.y.len());
        if n == 0 {
            return Err(reco_core::Error::param(
                "ranker",
                "no training rows: no user had a later interaction among the candidates",
            ));
        }
        let (mean, scale) = standardiser(rows);
        let z = |r: usize, j: usize| ((rows.x[r * d + j] - mean[j]) / scale[j]) as f64;
        // Parameters: d weights then the intercept.
        let p = d + 1;
        let mut w = vec![0f64; p];
        for _ in 0..25 {
            let mut grad = vec![0f64; p];
            let mut hess = vec![0f64; p * p];
            let mut feat = vec![0f64; p];
            for r in 0..n {
                for (j, f) in feat.iter_mut().enumerate().take(d) {
                    *f = z(r, j);
                }
                feat[d] = 1.0;
                let t: f64 = feat.iter().zip(&w).map(|(a, b)| a * b).sum();
                let pr = sigmoid(t);
                let g = pr - rows.y[r] as f64;
                let h = (pr * (1.0 - pr)).max(1e-9);
                for a in 0..p {
                    grad[a] += g * feat[a];
                    let ha = h * feat[a];
                    for b in a..p {
                        hess[a * p + b] += ha * feat[b];
                    }
                }
            }
            for a in 0..p {
                for b in 0..a {
                    hess[a * p + b] = hess[b * p + a];
                }
            }
            for j in 0..d {
                grad[j] += l2 * w[j];
                hess[j * p + j] += l2;
            }
            hess[d * p + d] += 1e-9;
            let step = cholesky_solve(&hess, &grad, p)?;
            let mut moved = 0f64;
            for (wj, s) in w.iter_mut().zip(&step) {
                *wj -= s;
                moved = moved.max(s.abs());
            }
            if moved < 1e-7 {
                break;
            }
        }
        let bias = w[d];
        w.truncate(d);
        Ok(Logistic {
            mean,
            scale,
            weights: w,
            bias,
        })
    }

    /// The log-odds of a feature row.
    pub fn score(&self, x: &[f32]) -> f64 {
        self.bias
            + x.iter()
                .zip(&self.mean)
                .zip(&self.scale)
                .zip(&self.weights)
                .map(|(((v, m), s), w)| ((v - m) / s) as f64 * w)
                .sum::<f64>()
    }

    /// Each feature's share of the log-odds (for explanations).
    pub fn contributions(&self, x: &[f32]) -> Vec<f64> {
        x.iter()
            .zip(&self.mean)
            .zip(&self.scale)
            .zip(&self.weights)
            .map(|(((v, m), s), w)| ((v - m) / s) as f64 * w)
            .collect()
    }
}

fn standardiser(rows: &Rows) -> (Vec<f32>, Vec<f32>) {
    let (d, n) = (rows.dim, rows.y.len().max(1));
    let mut mean = vec![0f64; d];
    let mut sq = vec![0f64; d];
    for r in rows.x.chunks_exact(d) {
        for j in 0..d {
            mean[j] += r[j] as f64;
            sq[j] += (r[j] as f64).powi(2);
        }
    }
    let mean: Vec<f64> = mean.iter().map(|m| m / n as f64).collect();
    let scale = sq
        .iter()
        .zip(&mean)
        .map(|(s, m)| {
            let v = (s / n as f64 - m * m).max(0.0).sqrt();
            if v > 1e-9 {
                v as f32
            } else {
                1.0
            }
        })
        .collect();
    (mean.iter().map(|&m| m as f32).collect(), scale)
}

fn sigmoid(t: f64) -> f64 {
    1.0 / (1.0 + (-t).exp())
}

/// Solves `a x = b` for a symmetric positive-definite `a` (`p × p`, row-major).
fn cholesky_solve(a: &[f64], b: &[f64], p: usize) -> Result<Vec<f64>> {
    let mut l = vec![0f64; p * p];
    for i in 0..p {
        for j in 0..=i {
            let s: f64 = (0..j).map(|k| l[i * p + k] * l[j * p + k]).sum();
            if i == j {
                let d = a[i * p + i] - s;
                if d <= 0.0 || !d.is_finite() {
                    return Err(reco_core::Error::training(
                        "pipeline",
                        "logistic ranker: the Hessian is not positive definite; raise the ranker's regularization",
                    ));
                }
                l[i * p + i] = d.sqrt();
            } else {
                l[i * p + j] = (a[i * p + j] - s) / l[j * p + j];
            }
        }
    }
    let mut y = vec![0f64; p];
    for i in 0..p {
        let s: f64 = (0..i).map(|k| l[i * p + k] * y[k]).sum();
        y[i] = (b[i] - s) / l[i * p + i];
    }
    let mut x = vec![0f64; p];
    for i in (0..p).rev() {
        let s: f64 = (i + 1..p).map(|k| l[k * p + i] * x[k]).sum();
        x[i] = (y[i] - s) / l[i * p + i];
    }
    Ok(x)
}

/// Histogram bins per feature.
const BINS: usize = 32;
/// Smallest hessian sum a leaf may hold (as in XGBoost's min_child_weight).
const MIN_CHILD: f64 = 1.0;
/// L2 penalty on leaf values.
const LAMBDA: f64 = 1.0;

/// One tree node: a split (`feature`, `threshold`, children) or a leaf (`value`).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Node {
    /// Feature compared, or `u32::MAX` for a leaf.
    pub feature: u32,
    /// Rows with `x[feature] <= threshold` go left.
    pub threshold: f32,
    /// Left child.
    pub left: u32,
    /// Right child.
    pub right: u32,
    /// Leaf output (log-odds, shrunk).
    pub value: f32,
}

/// Gradient-boosted regression trees on the logistic loss (second-order, histogram splits).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Gbdt {
    /// Initial log-odds.
    pub base: f64,
    /// Trees, each a node array rooted at 0.
    pub trees: Vec<Vec<Node>>,
}

impl Gbdt {
    /// Fits `trees` trees of depth `max_depth`, each shrunk by `learning_rate`.
    pub fn fit(rows: &Rows, trees: usize, max_depth: usize, learning_rate: f64) -> Result<Self> {
        let (d, n) = (rows.dim, rows.y.len());
        if n == 0 {
            return Err(reco_core::Error::param(
                "ranker",
                "no training rows: no user had a later interaction among the candidates",
            ));
        }
        // Candidate thresholds: quantiles of each feature.
        let edges: Vec<Vec<f32>> = (0..d)
            .map(|j| {
                let mut v: Vec<f32> = rows.x.chunks_exact(d).map(|r| r[j]).collect();
                v.sort_by(|a, b| a.total_cmp(b));
                let mut e: Vec<f32> = (1..BINS).map(|b| v[b * (n - 1) / BINS]).collect();
                e.dedup();
                e
            })
            .collect();
        let bins: Vec<u8> = rows
            .x
            .chunks_exact(d)
            .flat_map(|r| {
                r.iter()
                    .zip(&edges)
                    .map(|(x, e)| e.partition_point(|t| t < x) as u8)
                    .collect::<Vec<u8>>()
            })
            .collect();
        let pos: f64 = rows.y.iter().map(|&y| y as f64).sum();
        let prior = ((pos + 1.0) / (n as f64 - pos + 1.0)).ln();
        let mut f = vec![prior; n];
        let mut out = Vec::with_capacity(trees);
        for _ in 0..trees {
            let (g, h): (Vec<f64>, Vec<f64>) = f
                .iter()
                .zip(&rows.y)
                .map(|(&t, &y)| {
                    let p = sigmoid(t);
                    (p - y as f64, (p * (1.0 - p)).max(1e-9))
                })
                .unzip();
            let mut nodes = Vec::new();
            let all: Vec<u32> = (0..n as u32).collect();
            grow(
                &mut nodes,
                all,
                0,
                max_depth,
                &bins,
                d,
                &edges,
                &g,
                &h,
                learning_rate,
            );
            f.par_iter_mut().enumerate().for_each(|(r, fr)| {
                *fr += predict_tree(&nodes, &rows.x[r * d..(r + 1) * d]) as f64;
            });
            out.push(nodes);
        }
        Ok(Gbdt {
            base: prior,
            trees: out,
        })
    }

    /// The log-odds of a feature row.
    pub fn score(&self, x: &[f32]) -> f64 {
        self.base
            + self
                .trees
                .iter()
                .map(|t| predict_tree(t, x) as f64)
                .sum::<f64>()
    }
}

fn predict_tree(nodes: &[Node], x: &[f32]) -> f32 {
    let mut k = 0usize;
    loop {
        let n = &nodes[k];
        if n.feature == u32::MAX {
            return n.value;
        }
        k = if x[n.feature as usize] <= n.threshold {
            n.left
        } else {
            n.right
        } as usize;
    }
}

/// Rows per histogram chunk: chunks are summed in parallel, then added in chunk order, so the
/// sums (and the trees) do not depend on the number of threads.
const HIST_CHUNK: usize = 8192;

/// Gradient and hessian sums per (feature, bin) over `rows`, `BINS` bins per feature. One pass
/// over each row's contiguous bins for every feature at once.
fn histograms(rows: &[u32], bins: &[u8], d: usize, g: &[f64], h: &[f64]) -> Vec<(f64, f64)> {
    let chunk = |part: &[u32]| {
        let mut hist = vec![(0f64, 0f64); d * BINS];
        for &r in part {
            let (gr, hr) = (g[r as usize], h[r as usize]);
            let row = &bins[r as usize * d..(r as usize + 1) * d];
            for (j, &b) in row.iter().enumerate() {
                let cell = &mut hist[j * BINS + b as usize];
                cell.0 += gr;
                cell.1 += hr;
            }
        }
        hist
    };
    if rows.len() <= HIST_CHUNK {
        return chunk(rows);
    }
    let parts: Vec<Vec<(f64, f64)>> = rows.par_chunks(HIST_CHUNK).map(chunk).collect();
    let mut total = vec![(0f64, 0f64); d * BINS];
    for p in parts {
        for (t, x) in total.iter_mut().zip(p) {
            t.0 += x.0;
            t.1 += x.1;
        }
    }
    total
}

#[allow(clippy::too_many_arguments)]
fn grow(
    nodes: &mut Vec<Node>,
    rows: Vec<u32>,
    depth: usize,
    max_depth: usize,
    bins: &[u8],
    d: usize,
    edges: &[Vec<f32>],
    g: &[f64],
    h: &[f64],
    lr: f64,
) -> u32 {
    let me = nodes.len() as u32;
    let (gs, hs): (f64, f64) = rows.iter().fold((0.0, 0.0), |(a, b), &r| {
        (a + g[r as usize], b + h[r as usize])
    });
    nodes.push(Node {
        feature: u32::MAX,
        threshold: 0.0,
        left: 0,
        right: 0,
        value: (-gs / (hs + LAMBDA) * lr) as f32,
    });
    if depth >= max_depth || hs < 2.0 * MIN_CHILD {
        return me;
    }
    let parent = gs * gs / (hs + LAMBDA);
    let hist = histograms(&rows, bins, d, g, h);
    let mut best: Option<(f64, usize, usize)> = None;
    for j in 0..d {
        let (mut gl, mut hl) = (0.0, 0.0);
        for (b, (gb, hb)) in hist[j * BINS..(j + 1) * BINS]
            .iter()
            .enumerate()
            .take(edges[j].len())
        {
            gl += gb;
            hl += hb;
            let (gr, hr) = (gs - gl, hs - hl);
            if hl < MIN_CHILD || hr < MIN_CHILD {
                continue;
            }
            let gain = gl * gl / (hl + LAMBDA) + gr * gr / (hr + LAMBDA) - parent;
            if gain > 1e-9 && best.is_none_or(|(bg, _, _)| gain > bg) {
                best = Some((gain, j, b));
            }
        }
    }
    let Some((_, j, b)) = best else {
        return me;
    };
    let (left, right): (Vec<u32>, Vec<u32>) = rows
        .into_iter()
        .partition(|&r| bins[r as usize * d + j] as usize <= b);
    let l = grow(nodes, left, depth + 1, max_depth, bins, d, edges, g, h, lr);
    let r = grow(nodes, right, depth + 1, max_depth, bins, d, edges, g, h, lr);
    let node = &mut nodes[me as usize];
    node.feature = j as u32;
    node.threshold = edges[j][b];
    node.left = l;
    node.right = r;
    me
}

impl Ranker {
    /// The ranker's score of a feature row; `rr` is the sum of the sources' reciprocal ranks,
    /// used by [`Ranker::Sources`].
    pub fn score(&self, x: &[f32], rr: f32) -> f64 {
        match self {
            Ranker::Logistic(m) => m.score(x),
            Ranker::Gbdt(m) => m.score(x),
            Ranker::Sources => rr as f64,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn histograms_match_a_naive_sum_and_do_not_depend_on_threads() {
        // 20,000 rows, so the parallel chunked path runs; against a per-cell sum.
        let (n, d) = (20_000usize, 3usize);
        let bins: Vec<u8> = (0..n * d).map(|k| ((k * 7 + k / 5) % BINS) as u8).collect();
        let g: Vec<f64> = (0..n).map(|r| (r as f64 * 0.37).sin()).collect();
        let h: Vec<f64> = (0..n).map(|r| 0.1 + (r % 13) as f64 / 13.0).collect();
        let rows: Vec<u32> = (0..n as u32).filter(|r| r % 3 != 1).collect();
        let hist = histograms(&rows, &bins, d, &g, &h);
        for j in 0..d {
            for b in 0..BINS {
                let (mut gs, mut hs) = (0.0, 0.0);
                for &r in &rows {
                    if bins[r as usize * d + j] as usize == b {
                        gs += g[r as usize];
                        hs += h[r as usize];
                    }
                }
                let (cg, ch) = hist[j * BINS + b];
                assert!(
                    (cg - gs).abs() < 1e-9 && (ch - hs).abs() < 1e-9,
                    "feature {j} bin {b}"
                );
            }
        }
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap()
            .install(|| histograms(&rows, &bins, d, &g, &h));
        assert_eq!(one, hist, "the sums depend on the number of threads");
    }

    #[test]
    fn cholesky_solves_a_hand_computed_system() {
        // [[4, 2], [2, 3]] x = [2, 1]  →  x = [0.5, 0]
        let x = cholesky_solve(&[4.0, 2.0, 2.0, 3.0], &[2.0, 1.0], 2).unwrap();
        assert!((x[0] - 0.5).abs() < 1e-12 && x[1].abs() < 1e-12);
        assert!(cholesky_solve(&[1.0, 2.0, 2.0, 1.0], &[1.0, 1.0], 2).is_err());
    }

    #[test]
    fn logistic_regression_recovers_the_generating_weights() {
        // y ~ Bernoulli(σ(1.5 x0 − 2 x1 + 0.5)), x ~ U(−1, 1)²: the fitted weights (converted
        // back from standardised units) match the generating ones within sampling error.
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let n = 20_000;
        let mut rows = Rows {
            dim: 2,
            x: Vec::new(),
            y: Vec::new(),
        };
        for _ in 0..n {
            let (a, b): (f32, f32) = (rng.gen_range(-1.0..1.0), rng.gen_range(-1.0..1.0));
            let p = sigmoid(1.5 * a as f64 - 2.0 * b as f64 + 0.5);
            rows.x.extend([a, b]);
            rows.y.push(if rng.gen::<f64>() < p { 1.0 } else { 0.0 });
        }
        let m = Logistic::fit(&rows, 1e-6).unwrap();
        let w0 = m.weights[0] / m.scale[0] as f64;
        let w1 = m.weights[1] / m.scale[1] as f64;
        let b = m.bias - w0 * m.mean[0] as f64 - w1 * m.mean[1] as f64;
        assert!((w0 - 1.5).abs() < 0.1, "{w0}");
        assert!((w1 + 2.0).abs() < 0.1, "{w1}");
        assert!((b - 0.5).abs() < 0.1, "{b}");
        // The gradient of the penalised log-likelihood vanishes at the optimum.
        let mut g = [0f64; 3];
        for r in 0..n {
            let x = &rows.x[2 * r..2 * r + 2];
            let e = sigmoid(m.score(x)) - rows.y[r] as f64;
            g[0] += e * ((x[0] - m.mean[0]) / m.scale[0]) as f64;
            g[1] += e * ((x[1] - m.mean[1]) / m.scale[1]) as f64;
            g[2] += e;
        }
        assert!(g.iter().all(|v| v.abs() < 1e-3), "{g:?}");
    }

    #[test]
    fn boosted_trees_learn_an_interaction_logistic_regression_cannot() {
        // y = x0 XOR x1 (with noise): no linear model beats chance, two-level trees do.
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(5);
        let mut rows = Rows {
            dim: 2,
            x: Vec::new(),
            y: Vec::new(),
        };
        for _ in 0..4000 {
            let (a, b) = (rng.gen_bool(0.5), rng.gen_bool(0.5));
            let y = (a ^ b) != rng.gen_bool(0.1);
            rows.x
                .extend([a as u8 as f32 + rng.gen_range(-0.1..0.1), b as u8 as f32]);
            rows.y.push(y as u8 as f32);
        }
        let acc = |f: &dyn Fn(&[f32]) -> f64| {
            rows.x
                .chunks_exact(2)
                .zip(&rows.y)
                .filter(|(x, &y)| (f(x) > 0.0) == (y > 0.5))
                .count() as f64
                / 4000.0
        };
        let gb = Gbdt::fit(&rows, 30, 2, 0.3).unwrap();
        let lr = Logistic::fit(&rows, 1.0).unwrap();
        assert!(acc(&|x| gb.score(x)) > 0.85);
        assert!(acc(&|x| lr.score(x)) < 0.6);
        // A one-level tree splits on a single feature; its leaves are −G/(H+λ)·η.
        let stump = Gbdt::fit(&rows, 1, 1, 1.0).unwrap();
        assert_eq!(stump.trees[0].len(), 3);
    }
}
