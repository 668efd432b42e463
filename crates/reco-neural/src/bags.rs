//! Tower inputs: every user or item is a short bag of (token, weight) pairs — its identity,
//! metadata features, hashed text tokens — and every user also a bag of recent items. A batch of
//! bags becomes two padded arrays (tokens, weights) that the embedding-bag operation turns into one
//! vector per row (an "embedding bag").

use serde::{Deserialize, Serialize};

use reco_core::Dataset;
use reco_models::content::tfidf::tokenize;
use reco_models::featurize::FeatureRows;

/// Bags in compressed-row form.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub(crate) struct Bags {
    /// Number of distinct tokens (rows of the embedding table).
    pub n_tokens: usize,
    /// Row pointer.
    pub ptr: Vec<usize>,
    /// Tokens.
    pub tok: Vec<u32>,
    /// Weights.
    pub w: Vec<f32>,
}

impl Bags {
    /// The bag of entity `e`.
    pub fn row(&self, e: u32) -> (&[u32], &[f32]) {
        let (a, b) = (self.ptr[e as usize], self.ptr[e as usize + 1]);
        (&self.tok[a..b], &self.w[a..b])
    }

    /// Number of entities.
    pub fn len(&self) -> usize {
        self.ptr.len().saturating_sub(1)
    }

    /// Feature rows as bags, with `text` hashed into `buckets` extra tokens per entity when given
    /// (the text tokens of an entity share a total weight of 1, as its features do).
    pub fn of_features(rows: FeatureRows, text: Option<(&[&[String]], usize)>) -> Bags {
        let FeatureRows {
            n_features,
            ptr,
            idx,
            val,
            ..
        } = rows;
        let Some((texts, buckets)) = text.filter(|t| t.1 > 0 && !t.0.is_empty()) else {
            return Bags {
                n_tokens: n_features,
                ptr,
                tok: idx,
                w: val,
            };
        };
        let mut out = Bags {
            n_tokens: n_features + buckets,
            ptr: vec![0],
            tok: Vec::with_capacity(idx.len()),
            w: Vec::with_capacity(val.len()),
        };
        for e in 0..ptr.len() - 1 {
            out.tok.extend_from_slice(&idx[ptr[e]..ptr[e + 1]]);
            out.w.extend_from_slice(&val[ptr[e]..ptr[e + 1]]);
            let mut hashed: Vec<u32> = texts
                .iter()
                .flat_map(|field| tokenize(field.get(e).map_or("", String::as_str), true))
                .map(|t| n_features as u32 + (fnv1a(t.as_bytes()) % buckets as u64) as u32)
                .collect();
            hashed.sort_unstable();
            hashed.dedup();
            let w = 1.0 / hashed.len().max(1) as f32;
            out.w.extend(std::iter::repeat_n(w, hashed.len()));
            out.tok.extend(hashed);
            out.ptr.push(out.tok.len());
        }
        out
    }

    /// Each user's `n` most recent training items (latest by timestamp, or the last in index
    /// order without timestamps), with equal weights.
    pub fn recent_items(data: &Dataset, n: usize) -> Bags {
        let m = &data.interactions;
        let mut out = Bags {
            n_tokens: m.n_items(),
            ptr: Vec::with_capacity(m.n_users() + 1),
            tok: Vec::new(),
            w: Vec::new(),
        };
        out.ptr.push(0);
        let mut order: Vec<usize> = Vec::new();
        for u in 0..m.n_users() as u32 {
            let items = m.user_items(u);
            order.clear();
            order.extend(0..items.len());
            if let Some(ts) = m.user_timestamps(u) {
                order.sort_by_key(|&k| (std::cmp::Reverse(ts[k]), std::cmp::Reverse(items[k])));
            } else {
                order.reverse();
            }
            order.truncate(n);
            let w = 1.0 / order.len().max(1) as f32;
            out.tok.extend(order.iter().map(|&k| items[k]));
            out.w.extend(std::iter::repeat_n(w, order.len()));
            out.ptr.push(out.tok.len());
        }
        out
    }
}

/// 64-bit FNV-1a: a fixed hash, so hashed text tokens mean the same after a reload.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// A batch of bags: tokens and weights, `rows × width` row-major, padded with token 0 at
/// weight 0.
pub(crate) struct Batch {
    pub rows: usize,
    pub width: usize,
    pub tok: Vec<u32>,
    pub w: Vec<f32>,
}

/// Collects rows into a padded [`Batch`]. `drop` is a token to leave out of each row (the
/// target item in a user's recent items during training; the others are re-weighted).
pub(crate) fn batch<'a>(
    rows: impl ExactSizeIterator<Item = ((&'a [u32], &'a [f32]), Option<u32>)> + Clone,
) -> Batch {
    batch_mapped(rows, |t| t)
}

/// [`batch`] with every kept token renumbered by `map` (padding stays token 0): the rows of a
/// batch's gathered embedding table, where row 0 is the zero row padding points at.
pub(crate) fn batch_mapped<'a>(
    rows: impl ExactSizeIterator<Item = ((&'a [u32], &'a [f32]), Option<u32>)> + Clone,
    mut map: impl FnMut(u32) -> u32,
) -> Batch {
    let n = rows.len();
    let width = rows
        .clone()
        .map(|((t, _), _)| t.len())
        .max()
        .unwrap_or(0)
        .max(1);
    let mut tok = vec![0u32; n * width];
    let mut w = vec![0f32; n * width];
    for (r, ((ts, ws), drop)) in rows.enumerate() {
        let dropped: f32 = ts
            .iter()
            .zip(ws)
            .filter(|(t, _)| Some(**t) == drop)
            .map(|(_, w)| *w)
            .sum();
        let rescale = if dropped > 0.0 && dropped < 1.0 {
            1.0 / (1.0 - dropped)
        } else {
            1.0
        };
        let mut k = r * width;
        for (&t, &x) in ts.iter().zip(ws) {
            if Some(t) != drop {
                tok[k] = map(t);
                w[k] = x * rescale;
                k += 1;
            }
        }
    }
    Batch {
        rows: n,
        width,
        tok,
        w,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dropping_the_target_reweights_the_rest_and_pads_short_rows() {
        let a: (&[u32], &[f32]) = (&[3, 5, 7, 9], &[0.25; 4]);
        let b: (&[u32], &[f32]) = (&[1], &[1.0]);
        let rows = [(a, Some(5)), (b, None)];
        let bt = batch(rows.iter().copied());
        assert_eq!((bt.rows, bt.width), (2, 4));
        assert_eq!(bt.tok, vec![3, 7, 9, 0, 1, 0, 0, 0]);
        let w = bt.w;
        let third = 1.0 / 3.0;
        for (got, want) in w.iter().zip([third, third, third, 0.0, 1.0, 0.0, 0.0, 0.0]) {
            assert!((got - want).abs() < 1e-6, "{w:?}");
        }
    }

    #[test]
    fn text_tokens_hash_into_buckets_after_the_features_with_weight_one() {
        let rows = FeatureRows {
            n_features: 2,
            ptr: vec![0, 1, 1],
            idx: vec![1],
            val: vec![1.0],
            names: vec!["a".into(), "b".into()],
        };
        let field = vec!["Star wars, star".to_string(), String::new()];
        let texts = [field.as_slice()];
        let b = Bags::of_features(rows, Some((&texts, 8)));
        assert_eq!(b.n_tokens, 10);
        let (t, w) = b.row(0);
        // "star" twice counts once; "wars" is the other token.
        assert_eq!(t.len(), 3);
        assert_eq!(t[0], 1);
        assert!(t[1..].iter().all(|&x| (2..10).contains(&x)));
        assert!((w[1..].iter().sum::<f32>() - 1.0).abs() < 1e-6);
        assert_eq!(b.row(1).0.len(), 0);
        // The published FNV-1a test vector: the buckets do not depend on the build.
        assert_eq!(fnv1a(b"a"), 0xaf63_dc4c_8601_ec8c);
    }
}
