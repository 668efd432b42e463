//! Similarities between the rows of a sparse matrix, computed one row at a time as a sparse
//! product: for a row x, every column c of x and every other row y holding c contribute to the
//! statistics of the pair (x, y). The cost is Σ_{c ∈ x} |rows of c|, never a dense n × n pass.

use serde::{Deserialize, Serialize};

use reco_core::Interactions;

/// How two rows are compared. The first five follow Surprise (statistics over co-rated columns
/// only); the last four follow implicit (whole vectors, global norms).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Similarity {
    /// Σ a·b / sqrt(Σ a² · Σ b²) over co-rated columns.
    #[default]
    Cosine,
    /// Cosine of values centred by each column's mean (for item-kNN: by user means).
    AdjustedCosine,
    /// Pearson correlation over co-rated columns.
    Pearson,
    /// Cosine of baseline residuals r − (μ + b_u + b_i), shrunk by (n − 1)/(n − 1 + shrinkage).
    PearsonBaseline,
    /// 1 / (1 + mean squared difference) over co-rated columns.
    Msd,
    /// |x ∩ y| / |x ∪ y| of the column sets.
    Jaccard,
    /// Cosine of the whole vectors (implicit's CosineRecommender).
    VectorCosine,
    /// Cosine of TF-IDF-weighted vectors: √value · idf (implicit's TFIDFRecommender).
    Tfidf,
    /// Dot product of BM25-weighted vectors (implicit's BM25Recommender).
    Bm25,
}

impl Similarity {
    /// True for the similarities computed from co-rated statistics.
    pub fn co_rated(self) -> bool {
        matches!(
            self,
            Similarity::Cosine
                | Similarity::AdjustedCosine
                | Similarity::Pearson
                | Similarity::PearsonBaseline
                | Similarity::Msd
        )
    }
}

/// Per-thread accumulators, sized to the number of rows and reset after each use.
pub struct Accumulator {
    freq: Vec<u32>,
    prods: Vec<f64>,
    sqx: Vec<f64>,
    sqy: Vec<f64>,
    sx: Vec<f64>,
    sy: Vec<f64>,
    dots: Vec<f32>,
    touched: Vec<u32>,
    out: Vec<(u32, f32)>,
}

impl Accumulator {
    /// Accumulators for `n` rows.
    pub fn new(n: usize) -> Self {
        Accumulator {
            freq: vec![0; n],
            prods: vec![0.0; n],
            sqx: vec![0.0; n],
            sqy: vec![0.0; n],
            sx: vec![0.0; n],
            sy: vec![0.0; n],
            dots: vec![0.0; n],
            touched: Vec::new(),
            out: Vec::new(),
        }
    }
}

/// The prepared matrix a similarity is computed on.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SimilarityIndex {
    /// Rows are the compared entities; values already transformed (centred, weighted).
    pub m: Interactions,
    /// Euclidean norm of each row (for the vector similarities).
    pub norms: Vec<f64>,
    /// Which similarity.
    pub kind: Similarity,
    /// Shrinkage of `pearson-baseline`.
    pub shrinkage: f64,
    /// Pairs with fewer co-rated columns get similarity 0.
    pub min_support: u32,
}

impl SimilarityIndex {
    /// Wraps a prepared matrix.
    pub fn new(m: Interactions, kind: Similarity, shrinkage: f64, min_support: u32) -> Self {
        // Jaccard counts shared columns: its dot products must run on 0/1 values.
        let m = if kind == Similarity::Jaccard {
            m.with_values(&vec![1.0; m.nnz()])
        } else {
            m
        };
        let norms = (0..m.n_users() as u32)
            .map(|x| {
                m.user_values(x)
                    .iter()
                    .map(|&v| (v as f64) * (v as f64))
                    .sum::<f64>()
                    .sqrt()
            })
            .collect();
        SimilarityIndex {
            m,
            norms,
            kind,
            shrinkage,
            min_support,
        }
    }

    /// Similarities of a row given by its `(columns, values)` (sorted columns, transformed
    /// values) to every row sharing a column, as `(row, sim)` with sim > 0, best first (ties by
    /// ascending row). `skip` is excluded (the row itself); `keep > 0` keeps only the best `keep`.
    pub fn row(
        &self,
        cols: &[u32],
        vals: &[f32],
        skip: Option<u32>,
        acc: &mut Accumulator,
        keep: usize,
    ) -> Vec<(u32, f32)> {
        let m = &self.m;
        let co = self.kind.co_rated();
        if co {
            for (&c, &a) in cols.iter().zip(vals) {
                let a = a as f64;
                for (&y, &b) in m.item_users(c).iter().zip(m.item_values(c)) {
                    let yi = y as usize;
                    if acc.freq[yi] == 0 {
                        acc.touched.push(y);
                    }
                    acc.freq[yi] += 1;
                    let b = b as f64;
                    acc.prods[yi] += a * b;
                    acc.sqx[yi] += a * a;
                    acc.sqy[yi] += b * b;
                    acc.sx[yi] += a;
                    acc.sy[yi] += b;
                }
            }
        } else {
            return self.vector_row(cols, vals, skip, acc, keep);
        }
        let norm_x = vals
            .iter()
            .map(|&v| (v as f64) * (v as f64))
            .sum::<f64>()
            .sqrt();
        let len_x = cols.len() as f64;
        let mut out = std::mem::take(&mut acc.out);
        out.clear();
        for &y in &acc.touched {
            let yi = y as usize;
            let n = acc.freq[yi];
            if Some(y) != skip && n >= self.min_support {
                let s = self.pair(
                    n as f64,
                    acc.prods[yi],
                    acc.sqx[yi],
                    acc.sqy[yi],
                    acc.sx[yi],
                    acc.sy[yi],
                    norm_x,
                    self.norms[yi],
                    len_x,
                    m.user_len(y) as f64,
                );
                if s > 0.0 && s.is_finite() {
                    out.push((y, s as f32));
                }
            }
            acc.freq[yi] = 0;
            acc.prods[yi] = 0.0;
            if co {
                acc.sqx[yi] = 0.0;
                acc.sqy[yi] = 0.0;
                acc.sx[yi] = 0.0;
                acc.sy[yi] = 0.0;
            }
        }
        acc.touched.clear();
        let result = crate::neighbours::best_pairs(&mut out, keep);
        acc.out = out;
        result
    }

    /// The whole-vector similarities: only dot products are needed, accumulated into one dense
    /// f32 array (the hot loop of item-kNN at scale), then read back by a sequential scan, which
    /// is cheaper than tracking touched rows when lists are long.
    fn vector_row(
        &self,
        cols: &[u32],
        vals: &[f32],
        skip: Option<u32>,
        acc: &mut Accumulator,
        keep: usize,
    ) -> Vec<(u32, f32)> {
        let m = &self.m;
        let dots = &mut acc.dots;
        let mut work = 0usize;
        let binary = self.kind == Similarity::Jaccard;
        for (&c, &a) in cols.iter().zip(vals) {
            let a = if binary { 1.0 } else { a };
            let (ys, bs) = (m.item_users(c), m.item_values(c));
            work += ys.len();
            for (&y, &b) in ys.iter().zip(bs) {
                dots[y as usize] += a * b;
            }
        }
        let norm_x = vals
            .iter()
            .map(|&v| (v as f64) * (v as f64))
            .sum::<f64>()
            .sqrt();
        let len_x = cols.len() as f64;
        // A reused buffer: a fresh vector per row faulted in new pages for every item.
        let mut out = std::mem::take(&mut acc.out);
        out.clear();
        let mut visit = |y: usize, d: f32| {
            if Some(y as u32) == skip {
                return;
            }
            let d = d as f64;
            let s = match self.kind {
                Similarity::Jaccard => d / (len_x + m.user_len(y as u32) as f64 - d),
                Similarity::Bm25 => d,
                _ => {
                    let n = norm_x * self.norms[y];
                    if n > 0.0 {
                        d / n
                    } else {
                        0.0
                    }
                }
            };
            if s > 0.0 && s.is_finite() {
                out.push((y as u32, s as f32));
            }
        };
        if work > dots.len() / 8 {
            for (y, d) in dots.iter_mut().enumerate() {
                if *d != 0.0 {
                    visit(y, *d);
                    *d = 0.0;
                }
            }
        } else {
            // Few updates: revisit only the rows reached (a row may be listed twice; the reset
            // makes the second visit a no-op).
            for &c in cols {
                for &y in m.item_users(c) {
                    let d = dots[y as usize];
                    if d != 0.0 {
                        visit(y as usize, d);
                        dots[y as usize] = 0.0;
                    }
                }
            }
        }
        let result = crate::neighbours::best_pairs(&mut out, keep);
        acc.out = out;
        result
    }

    #[allow(clippy::too_many_arguments)]
    fn pair(
        &self,
        n: f64,
        prods: f64,
        sqx: f64,
        sqy: f64,
        sx: f64,
        sy: f64,
        norm_x: f64,
        norm_y: f64,
        len_x: f64,
        len_y: f64,
    ) -> f64 {
        match self.kind {
            Similarity::Cosine | Similarity::AdjustedCosine => {
                let d = (sqx * sqy).sqrt();
                if d > 0.0 {
                    prods / d
                } else {
                    0.0
                }
            }
            Similarity::Pearson => {
                let num = n * prods - sx * sy;
                let den = ((n * sqx - sx * sx) * (n * sqy - sy * sy)).sqrt();
                if den > 0.0 {
                    num / den
                } else {
                    0.0
                }
            }
            Similarity::PearsonBaseline => {
                let d = (sqx * sqy).sqrt();
                if d > 0.0 {
                    (n - 1.0) / (n - 1.0 + self.shrinkage) * prods / d
                } else {
                    0.0
                }
            }
            // sqx + sqy − 2·prods = Σ (a − b)².
            Similarity::Msd => 1.0 / ((sqx + sqy - 2.0 * prods).max(0.0) / n + 1.0),
            Similarity::Jaccard => n / (len_x + len_y - n),
            Similarity::VectorCosine | Similarity::Tfidf => {
                let d = norm_x * norm_y;
                if d > 0.0 {
                    prods / d
                } else {
                    0.0
                }
            }
            Similarity::Bm25 => prods,
        }
    }
}

/// TF-IDF weights as implicit computes them on a rows × columns matrix whose rows are the
/// compared entities: √value · (ln N − ln(1 + df)), N the number of rows, df the number of rows
/// holding the column.
pub fn tfidf(m: &Interactions) -> Vec<f32> {
    let n = m.n_users() as f64;
    let idf: Vec<f64> = (0..m.n_items() as u32)
        .map(|c| n.ln() - (m.item_len(c) as f64).ln_1p())
        .collect();
    m.iter()
        .map(|(_, c, v)| ((v as f64).max(0.0).sqrt() * idf[c as usize]) as f32)
        .collect()
}

/// BM25 weights as implicit computes them: value (K1 + 1) / (K1 · L_row + value) · idf, with
/// L_row = (1 − B) + B · row sum / mean row sum.
pub fn bm25(m: &Interactions, k1: f64, b: f64) -> Vec<f32> {
    let n = m.n_users() as f64;
    let idf: Vec<f64> = (0..m.n_items() as u32)
        .map(|c| n.ln() - (m.item_len(c) as f64).ln_1p())
        .collect();
    let sums: Vec<f64> = (0..m.n_users() as u32)
        .map(|x| m.user_values(x).iter().map(|&v| v as f64).sum())
        .collect();
    let avg = sums.iter().sum::<f64>() / sums.len().max(1) as f64;
    m.iter()
        .map(|(x, c, v)| {
            let len = (1.0 - b) + b * sums[x as usize] / avg;
            let v = v as f64;
            (v * (k1 + 1.0) / (k1 * len + v) * idf[c as usize]) as f32
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use reco_core::{DuplicatePolicy, Triplets};

    fn m(rows: &[(u32, u32, f32)], nr: usize, nc: usize) -> Interactions {
        let mut t = Triplets::new(false);
        rows.iter().for_each(|&(u, i, v)| t.push(u, i, v, None));
        Interactions::from_triplets(&t, nr, nc, DuplicatePolicy::Last)
            .unwrap()
            .0
    }

    fn sim(kind: Similarity, x: u32, y: u32) -> f32 {
        let data = m(
            &[
                (0, 0, 5.0),
                (0, 1, 3.0),
                (0, 2, 4.0),
                (1, 0, 4.0),
                (1, 1, 1.0),
                (1, 3, 2.0),
                (2, 3, 5.0),
            ],
            3,
            4,
        );
        let idx = SimilarityIndex::new(data.clone(), kind, 100.0, 1);
        let mut acc = Accumulator::new(3);
        idx.row(
            data.user_items(x),
            data.user_values(x),
            Some(x),
            &mut acc,
            0,
        )
        .iter()
        .find(|p| p.0 == y)
        .map_or(0.0, |p| p.1)
    }

    #[test]
    fn similarities_by_hand() {
        // Rows 0 and 1 co-rate columns 0 and 1: (5, 3) and (4, 1).
        let cos = (5.0 * 4.0 + 3.0 * 1.0) / ((25.0f64 + 9.0) * (16.0 + 1.0)).sqrt();
        assert!((sim(Similarity::Cosine, 0, 1) as f64 - cos).abs() < 1e-6);
        // Two co-rated points are perfectly correlated.
        assert!((sim(Similarity::Pearson, 0, 1) - 1.0).abs() < 1e-6);
        // MSD: ((5−4)² + (3−1)²)/2 = 2.5 → 1/3.5.
        assert!((sim(Similarity::Msd, 0, 1) - 1.0 / 3.5).abs() < 1e-6);
        // Jaccard: |{0,1}| / |{0,1,2,3}| = 0.5.
        assert!((sim(Similarity::Jaccard, 0, 1) - 0.5).abs() < 1e-6);
        // Whole-vector cosine: 23 / (sqrt(50) · sqrt(21)).
        assert!(
            (sim(Similarity::VectorCosine, 0, 1) as f64 - 23.0 / (50f64.sqrt() * 21f64.sqrt()))
                .abs()
                < 1e-6
        );
        assert_eq!(sim(Similarity::Cosine, 0, 2), 0.0, "no co-rated column");
        assert!(
            (sim(Similarity::Bm25, 1, 2) - 10.0).abs() < 1e-6,
            "plain dot product on the given values"
        );
    }

    #[test]
    fn weights_match_implicit_formulas() {
        let data = m(&[(0, 0, 4.0), (1, 0, 1.0), (1, 1, 9.0)], 3, 2);
        let w = tfidf(&data);
        let idf0 = 3f64.ln() - 2f64.ln_1p();
        assert!((w[0] as f64 - 2.0 * idf0).abs() < 1e-6);
        let b = bm25(&data, 1.2, 0.75);
        // Row sums 4, 10, 0 → mean 14/3; row 0: L = 0.25 + 0.75 · 4/(14/3).
        let l0 = 0.25 + 0.75 * 4.0 / (14.0 / 3.0);
        assert!((b[0] as f64 - 4.0 * 2.2 / (1.2 * l0 + 4.0) * idf0).abs() < 1e-6);
    }
}
