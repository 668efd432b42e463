//! One BPR epoch cut into blocks: the user and item ranges, and the sampler and updates of one
//! block (user range × item range), which the blocks of a stratum run at once.

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{step, BprParams, NegativeSampling, AHEAD};
use crate::mf::prefetch;

/// How many user and item ranges an epoch is cut into: one per thread, but one in all when a
/// range would hold fewer than 512 items or 16,384 interactions, where the hand-off between
/// threads costs more than it brings and a negative's range would be too narrow.
pub(super) fn blocks_for(threads: usize, n_items: usize, nnz: usize) -> usize {
    threads.min(n_items / 512).min(nnz / 16_384).clamp(1, 64)
}

/// Row boundaries cutting the users into `t` contiguous ranges of about equal interactions.
pub(super) fn balanced_cut(m: &reco_core::Interactions, t: usize) -> Vec<usize> {
    let nu = m.n_users();
    let mut cut = vec![0usize];
    let mut acc = 0usize;
    for u in 0..nu {
        acc += m.user_len(u as u32);
        // Cut after user u once the range reaches its share; (n·b)/t without overflow for
        // any real count (both below 2^40 here).
        while cut.len() < t && acc * t >= m.nnz() * cut.len() {
            cut.push(u + 1);
        }
    }
    cut.resize(t + 1, nu);
    cut
}

/// One block of a stratum: a range of users (their rows), a range of this epoch's item order
/// (their rows, in that order), the users' visiting order and the block's own random seed.
pub(super) struct Job<'a> {
    pub users: &'a mut [f32],
    pub u0: usize,
    pub items: &'a mut [f32],
    pub i0: usize,
    pub order: &'a [u32],
    pub seed: u64,
}

/// Runs one block's samples: for each user of the range, as many (positive, negative) pairs as
/// the user has positives in the item range, both drawn from the range. Returns the pairs
/// already ranked right and the positives skipped (a user holding every item of the range).
#[allow(clippy::too_many_arguments)]
pub(super) fn run_block(
    job: Job<'_>,
    m: &reco_core::Interactions,
    pos: &[u32],
    by_pos: &[u32],
    weights: &[f64],
    p: &BprParams,
    learning_rate: f32,
    regularization: f32,
) -> (usize, usize) {
    let k = p.factors + 1;
    let nc = job.items.len() / k;
    let mut r = ChaCha8Rng::seed_from_u64(job.seed);
    let cdf: Vec<f64> = match p.negative_sampling {
        NegativeSampling::Uniform => Vec::new(),
        NegativeSampling::Popularity => {
            let mut acc = 0.0;
            let w: Vec<f64> = by_pos[job.i0..job.i0 + nc]
                .iter()
                .map(|&i| {
                    acc += weights[i as usize];
                    acc
                })
                .collect();
            w.iter().map(|x| x / acc.max(f64::MIN_POSITIVE)).collect()
        }
    };
    // The current user's positives in the range as bits: a negative is checked with one load
    // instead of a binary search over the user's list (whose mispredicted branches were a
    // large share of an epoch). Set per user and cleared after: two passes over the list.
    let mut seen = vec![0u64; nc.div_ceil(64)];
    let has = |seen: &[u64], j: u32| seen[j as usize / 64] >> (j % 64) & 1 == 1;
    let (mut mine, mut pairs): (Vec<u32>, Vec<(u32, u32)>) = (Vec::new(), Vec::new());
    let (mut correct, mut skipped) = (0usize, 0usize);
    for &u in job.order {
        mine.clear();
        mine.extend(m.user_items(u).iter().filter_map(|&i| {
            let q = (pos[i as usize] as usize).checked_sub(job.i0)?;
            (q < nc).then_some(q as u32)
        }));
        if mine.is_empty() {
            continue;
        }
        if mine.len() == nc {
            skipped += mine.len();
            continue;
        }
        if p.verify_negatives {
            for &i in &mine {
                seen[i as usize / 64] |= 1 << (i % 64);
            }
        }
        // The user's samples are drawn first, so the rows of a sample a few ahead can be
        // fetched while this one is computed: a random negative's row is otherwise a cache
        // miss per step.
        pairs.clear();
        for _ in 0..mine.len() {
            let i = mine[r.gen_range(0..mine.len())];
            let mut j;
            loop {
                j = match p.negative_sampling {
                    NegativeSampling::Uniform => r.gen_range(0..nc as u32),
                    NegativeSampling::Popularity => {
                        cdf.partition_point(|&c| c < r.gen::<f64>()).min(nc - 1) as u32
                    }
                };
                // Never the positive itself, verified or not: the update needs two distinct
                // rows (and learns nothing from i against i).
                if j != i && (!p.verify_negatives || !has(&seen, j)) {
                    break;
                }
            }
            pairs.push((i, j));
        }
        if p.verify_negatives {
            for &i in &mine {
                seen[i as usize / 64] = 0;
            }
        }
        let uu = (u as usize - job.u0) * k;
        let pu = &mut job.users[uu..uu + k];
        for (t, &(i, j)) in pairs.iter().enumerate() {
            if let Some(&(ai, aj)) = pairs.get(t + AHEAD) {
                prefetch(job.items, ai as usize * k, k);
                prefetch(job.items, aj as usize * k, k);
            }
            if step(
                pu,
                job.items,
                i as usize * k,
                j as usize * k,
                k,
                learning_rate,
                regularization,
            ) {
                correct += 1;
            }
        }
    }
    (correct, skipped)
}
