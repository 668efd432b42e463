//! Evaluation protocols: how a dataset is cut into train and test.
//!
//! Every protocol is a mask over the stored interactions, so train and test are complementary
//! selections of one matrix: they share the id maps and cannot overlap. A split read from two
//! files is checked for overlap and refused if any (user, item) pair is in both.

use std::path::{Path, PathBuf};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::error::{Error, Result};
use crate::interactions::{Interactions, Triplets};
use crate::loaders::{delimited, DatasetBuilder, InteractionColumns, LoadOptions, TextFormat};

/// A protocol, written `kfold:5`, `holdout:0.2`, `loo`, `temporal:0.2`, `timecut:0.8`,
/// `cold-users:0.1` or `cold-items:0.1`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "protocol", rename_all = "kebab-case")]
pub enum Protocol {
    /// Interactions shuffled and dealt into `k` folds; each fold is the test set once.
    KFold {
        /// Number of folds (≥ 2).
        k: usize,
    },
    /// A random `ratio` of interactions is test.
    Holdout {
        /// Test share in (0, 1).
        ratio: f64,
    },
    /// Each user with ≥ 2 interactions has the latest one held out (ties: largest item index);
    /// without timestamps a random one (seeded).
    LeaveLastOut,
    /// Each user's latest `fraction` of interactions (at least one, leaving at least one in train)
    /// is test; needs timestamps.
    Temporal {
        /// Test share per user in (0, 1).
        fraction: f64,
    },
    /// Interactions at or after a cut are test. `at` ≤ 1 is a quantile of the timestamps,
    /// anything larger a Unix time.
    TimeCut {
        /// Quantile or timestamp.
        at: f64,
    },
    /// A random `fraction` of users (with interactions) have all their interactions in test.
    ColdUsers {
        /// Share of users.
        fraction: f64,
    },
    /// A random `fraction` of items have all their interactions in test; models rank only those
    /// items for the test users.
    ColdItems {
        /// Share of items.
        fraction: f64,
    },
}

impl std::str::FromStr for Protocol {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        let (name, arg) = s.split_once(':').unwrap_or((s, ""));
        // `kfold` takes the default; `kfold:` is a value left out by mistake.
        if s.ends_with(':') {
            return Err(Error::param(
                "protocol",
                format!("{s:?} has an empty value after ':'; write e.g. {name}:5, or {name} alone for the default"),
            ));
        }
        let num = |default: Option<f64>| -> Result<f64> {
            if arg.is_empty() {
                return default.ok_or_else(|| {
                    Error::param("protocol", format!("{name} needs a value, e.g. {name}:0.2"))
                });
            }
            arg.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| Error::param("protocol", format!("{arg:?} is not a number")))
        };
        let frac = |v: f64| -> Result<f64> {
            if v > 0.0 && v < 1.0 {
                Ok(v)
            } else {
                Err(Error::param(
                    "protocol",
                    format!("{name} needs a fraction in (0, 1), got {v}"),
                ))
            }
        };
        Ok(match name {
            "kfold" => {
                let k = num(Some(5.0))?;
                if k < 2.0 || k.fract() != 0.0 {
                    return Err(Error::param("protocol", format!("kfold needs an integer k >= 2, got {arg}")));
                }
                Protocol::KFold { k: k as usize }
            }
            "holdout" => Protocol::Holdout { ratio: frac(num(Some(0.2))?)? },
            "loo" | "leave-last-one-out" if arg.is_empty() => Protocol::LeaveLastOut,
            "loo" | "leave-last-one-out" => {
                return Err(Error::param(
                    "protocol",
                    format!("{name} takes no value (it holds out each user's last interaction), got {arg:?}"),
                ))
            }
            "temporal" => Protocol::Temporal { fraction: frac(num(Some(0.2))?)? },
            "timecut" => {
                let at = num(Some(0.8))?;
                if at <= 0.0 {
                    return Err(Error::param("protocol", "timecut needs a quantile in (0, 1] or a timestamp"));
                }
                Protocol::TimeCut { at }
            }
            "cold-users" => Protocol::ColdUsers { fraction: frac(num(Some(0.1))?)? },
            "cold-items" => Protocol::ColdItems { fraction: frac(num(Some(0.1))?)? },
            _ => {
                return Err(Error::param(
                    "protocol",
                    format!("{name:?} is not one of kfold, holdout, loo, temporal, timecut, cold-users, cold-items"),
                ))
            }
        })
    }
}

impl std::fmt::Display for Protocol {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Protocol::KFold { k } => write!(f, "kfold:{k}"),
            Protocol::Holdout { ratio } => write!(f, "holdout:{ratio}"),
            Protocol::LeaveLastOut => write!(f, "loo"),
            Protocol::Temporal { fraction } => write!(f, "temporal:{fraction}"),
            Protocol::TimeCut { at } => write!(f, "timecut:{at}"),
            Protocol::ColdUsers { fraction } => write!(f, "cold-users:{fraction}"),
            Protocol::ColdItems { fraction } => write!(f, "cold-items:{fraction}"),
        }
    }
}

/// One train/test pair in a shared id space. Training data carries no sessions: sessions are
/// not cut by the protocol and could hold held-out items.
#[derive(Clone, Debug)]
pub struct Fold {
    /// Training data (metadata and sessions shared with the source dataset).
    pub train: Dataset,
    /// Held-out interactions, same shape as `train.interactions`.
    pub test: Interactions,
    /// Items the models may rank for this fold (cold-item protocol); all items when `None`.
    pub candidates: Option<Vec<u32>>,
}

fn rng(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

/// Cuts `ds` with `protocol`; every random choice comes from `seed`.
pub fn split(ds: &Dataset, protocol: &Protocol, seed: u64) -> Result<Vec<Fold>> {
    let m = &ds.interactions;
    let nnz = m.nnz();
    if nnz == 0 {
        return Err(Error::data("no interactions to split"));
    }
    let fold = |is_test: Vec<bool>, candidates: Option<Vec<u32>>| -> Fold {
        let keep: Vec<bool> = is_test.iter().map(|t| !t).collect();
        let mut train = ds.with_interactions(m.select(&keep));
        // Sessions are not tied to the split (they may hold held-out items), so folds drop them.
        train.sessions = None;
        Fold {
            train,
            test: m.select(&is_test),
            candidates,
        }
    };
    let needs_ts = |name: &str| -> Result<&[i64]> {
        m.timestamps().ok_or_else(|| {
            Error::param(
                "protocol",
                format!("{name} needs timestamps and the data has none"),
            )
        })
    };
    Ok(match *protocol {
        Protocol::KFold { k } => {
            if k > nnz {
                return Err(Error::param(
                    "protocol",
                    format!("kfold:{k} needs at least {k} interactions, the data has {nnz}"),
                ));
            }
            let mut perm: Vec<u32> = (0..nnz as u32).collect();
            perm.shuffle(&mut rng(seed, 1));
            let mut fold_of = vec![0usize; nnz];
            for (rank, &p) in perm.iter().enumerate() {
                // Contiguous chunks of the shuffled order, as sizes differ by at most one.
                fold_of[p as usize] = ((rank as u128 * k as u128) / nnz as u128) as usize;
            }
            (0..k)
                .map(|f| fold(fold_of.iter().map(|&x| x == f).collect(), None))
                .collect()
        }
        Protocol::Holdout { ratio } => {
            let mut perm: Vec<u32> = (0..nnz as u32).collect();
            perm.shuffle(&mut rng(seed, 2));
            let n_test = ((nnz as f64) * ratio).round().max(1.0) as usize;
            let mut is_test = vec![false; nnz];
            perm[..n_test.min(nnz)]
                .iter()
                .for_each(|&p| is_test[p as usize] = true);
            vec![fold(is_test, None)]
        }
        Protocol::LeaveLastOut => {
            let mut is_test = vec![false; nnz];
            let ts = m.timestamps();
            for u in 0..m.n_users() as u32 {
                let r = m.row_range(u);
                if r.len() < 2 {
                    continue;
                }
                let pick = match ts {
                    // Latest timestamp; among equal times the largest item index, which is the
                    // last position in the row because rows are sorted by item.
                    Some(ts) => r.clone().max_by_key(|&p| (ts[p], p)).unwrap_or(r.start),
                    None => r.start + rng(seed, 3 + u as u64).gen_range(0..r.len()),
                };
                is_test[pick] = true;
            }
            vec![fold(is_test, None)]
        }
        Protocol::Temporal { fraction } => {
            let ts = needs_ts("temporal")?;
            let mut is_test = vec![false; nnz];
            for u in 0..m.n_users() as u32 {
                let r = m.row_range(u);
                if r.len() < 2 {
                    continue;
                }
                let n_test = ((r.len() as f64 * fraction).round() as usize).clamp(1, r.len() - 1);
                let mut pos: Vec<usize> = r.collect();
                pos.sort_by_key(|&p| (ts[p], p));
                pos[pos.len() - n_test..]
                    .iter()
                    .for_each(|&p| is_test[p] = true);
            }
            vec![fold(is_test, None)]
        }
        Protocol::TimeCut { at } => {
            let ts = needs_ts("timecut")?;
            let cut = if at <= 1.0 {
                let mut sorted = ts.to_vec();
                let q = ((sorted.len() as f64 * at) as usize).min(sorted.len() - 1);
                *sorted.select_nth_unstable(q).1
            } else {
                at as i64
            };
            let is_test: Vec<bool> = ts.iter().map(|&t| t >= cut).collect();
            if is_test.iter().all(|&t| t) || !is_test.iter().any(|&t| t) {
                return Err(Error::param(
                    "protocol",
                    format!("timecut at {cut} leaves train or test empty"),
                ));
            }
            vec![fold(is_test, None)]
        }
        Protocol::ColdUsers { fraction } => {
            let mut users: Vec<u32> = (0..m.n_users() as u32)
                .filter(|&u| m.user_len(u) > 0)
                .collect();
            users.shuffle(&mut rng(seed, 4));
            users.truncate(((users.len() as f64 * fraction).round() as usize).max(1));
            let mut cold = vec![false; m.n_users()];
            users.iter().for_each(|&u| cold[u as usize] = true);
            let is_test = (0..m.n_users() as u32)
                .flat_map(|u| std::iter::repeat_n(cold[u as usize], m.user_len(u)))
                .collect();
            vec![fold(is_test, None)]
        }
        Protocol::ColdItems { fraction } => {
            let mut items: Vec<u32> = (0..m.n_items() as u32)
                .filter(|&i| m.item_len(i) > 0)
                .collect();
            items.shuffle(&mut rng(seed, 5));
            items.truncate(((items.len() as f64 * fraction).round() as usize).max(1));
            items.sort_unstable();
            let mut cold = vec![false; m.n_items()];
            items.iter().for_each(|&i| cold[i as usize] = true);
            let is_test = m.indices().iter().map(|&i| cold[i as usize]).collect();
            vec![fold(is_test, Some(items))]
        }
    })
}

/// Loads a ready-made split: `train` and `test` files read into one id space (train first, so
/// indices follow train's order of first appearance). A pair in both files is an error.
pub fn from_files(
    train: &Path,
    test: &Path,
    format: &TextFormat,
    cols: Option<&InteractionColumns>,
    opts: &LoadOptions,
) -> Result<Fold> {
    read_pair(train, test, format, cols, opts)?.finish(opts)
}

/// A train/test pair read but not yet assembled: its builder can still take item and user
/// metadata (read after both files, so every id of either is known) before [`PairReader::finish`].
pub struct PairReader {
    /// The builder holding the training rows; metadata readers add to it.
    pub builder: DatasetBuilder,
    test_rows: Triplets,
    name: String,
    paths: (PathBuf, PathBuf),
}

/// Reads a ready-made train/test pair sharing one id space; see [`from_files`].
pub fn read_pair(
    train: &Path,
    test: &Path,
    format: &TextFormat,
    cols: Option<&InteractionColumns>,
    opts: &LoadOptions,
) -> Result<PairReader> {
    let mut b = DatasetBuilder::new(true);
    delimited::read_interactions(&mut b, train, format, cols, opts)?;
    let n_train = b.triplets.len();
    delimited::read_interactions(&mut b, test, format, cols, opts)?;
    let all = std::mem::take(&mut b.triplets);
    let part = |r: std::ops::Range<usize>| Triplets {
        users: all.users[r.clone()].to_vec(),
        items: all.items[r.clone()].to_vec(),
        values: all.values[r.clone()].to_vec(),
        timestamps: all.timestamps.as_ref().map(|t| t[r].to_vec()),
    };
    let test_rows = part(n_train..all.len());
    b.triplets = part(0..n_train);
    let name = train
        .file_stem()
        .map_or("train".into(), |s| s.to_string_lossy().into_owned());
    Ok(PairReader {
        builder: b,
        test_rows,
        name,
        paths: (train.to_path_buf(), test.to_path_buf()),
    })
}

impl PairReader {
    /// Builds the training set and the test matrix; refuses a pair that overlaps.
    pub fn finish(self, opts: &LoadOptions) -> Result<Fold> {
        let PairReader {
            builder: b,
            test_rows,
            name,
            paths: (train_path, test_path),
        } = self;
        let train_ds = b.finish(&name, opts)?;
        let (n_users, n_items) = (train_ds.n_users(), train_ds.n_items());
        let (test, dup) =
            Interactions::from_triplets(&test_rows, n_users, n_items, opts.duplicates)?;
        if dup.rows_merged > 0 {
            crate::warning::warn(format!(
                "{}: {} rows repeat a (user, item) pair and were merged into {} ({:?} policy; \
                 see --duplicates)",
                test_path.display(),
                dup.rows_merged,
                dup.pairs,
                opts.duplicates
            ));
        }
        let cold_users = (0..n_users as u32)
            .filter(|&u| {
                !test.user_items(u).is_empty() && train_ds.interactions.user_items(u).is_empty()
            })
            .count();
        let (test_counts, train_counts) = (test.item_counts(), train_ds.interactions.item_counts());
        let cold_items = test_counts
            .iter()
            .zip(&train_counts)
            .filter(|&(&t, &r)| t > 0 && r == 0)
            .count();
        if cold_users + cold_items > 0 {
            crate::warning::warn(format!(
                "{}: {cold_users} test users and {cold_items} test items do not occur in {}; \
                 models score them as cold start (most cannot rank for them)",
                test_path.display(),
                train_path.display()
            ));
        }
        let overlap: Vec<(u32, u32)> = test
            .iter()
            .filter(|&(u, i, _)| train_ds.interactions.get(u, i).is_some())
            .map(|(u, i, _)| (u, i))
            .collect();
        if let Some(&(u, i)) = overlap.first() {
            return Err(Error::Overlap {
                train: train_path,
                test: test_path,
                count: overlap.len(),
                user: train_ds.users.id(u).to_string(),
                item: train_ds.items.id(i).to_string(),
            });
        }
        Ok(Fold {
            train: train_ds,
            test,
            candidates: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::interactions::DuplicatePolicy;
    use std::sync::Arc;

    fn ds(rows: &[(u32, u32, i64)], n_users: usize, n_items: usize) -> Dataset {
        let mut t = Triplets::new(true);
        for &(u, i, ts) in rows {
            t.push(u, i, 1.0, Some(ts));
        }
        let (m, _) =
            Interactions::from_triplets(&t, n_users, n_items, DuplicatePolicy::Last).unwrap();
        Dataset {
            name: "t".into(),
            users: Arc::new(
                (0..n_users)
                    .map(|u| u.to_string())
                    .collect::<Vec<_>>()
                    .into(),
            ),
            items: Arc::new(
                (0..n_items)
                    .map(|i| i.to_string())
                    .collect::<Vec<_>>()
                    .into(),
            ),
            interactions: m,
            feedback: crate::Feedback::Implicit,
            item_features: None,
            user_features: None,
            sessions: None,
            report: Default::default(),
        }
    }

    #[test]
    fn loo_holds_out_the_latest_with_ties_to_the_largest_item() {
        let d = ds(
            &[
                (0, 0, 5),
                (0, 1, 9),
                (0, 2, 9),
                (1, 3, 1),
                (2, 0, 1),
                (2, 1, 0),
            ],
            3,
            4,
        );
        let f = &split(&d, &Protocol::LeaveLastOut, 0).unwrap()[0];
        assert_eq!(f.test.user_items(0), &[2]);
        assert_eq!(
            f.test.user_items(1),
            &[] as &[u32],
            "a single interaction stays in train"
        );
        assert_eq!(f.test.user_items(2), &[0]);
        assert_eq!(
            f.train.interactions.nnz() + f.test.nnz(),
            d.interactions.nnz()
        );
    }

    #[test]
    fn temporal_keeps_at_least_one_each_side() {
        let d = ds(
            &[
                (0, 0, 1),
                (0, 1, 2),
                (0, 2, 3),
                (0, 3, 4),
                (0, 4, 5),
                (1, 0, 1),
                (1, 1, 2),
            ],
            2,
            5,
        );
        let f = &split(&d, &Protocol::Temporal { fraction: 0.4 }, 0).unwrap()[0];
        assert_eq!(f.test.user_items(0), &[3, 4]);
        assert_eq!(f.test.user_items(1), &[1]);
    }

    #[test]
    fn kfold_partitions_every_interaction_once() {
        let rows: Vec<(u32, u32, i64)> = (0..50).map(|k| (k % 7, k / 7, k as i64)).collect();
        let d = ds(&rows, 7, 8);
        let folds = split(&d, &Protocol::KFold { k: 5 }, 42).unwrap();
        let mut seen = std::collections::HashSet::new();
        for f in &folds {
            assert_eq!(f.test.nnz(), 10);
            for (u, i, _) in f.test.iter() {
                assert!(seen.insert((u, i)));
                assert!(f.train.interactions.get(u, i).is_none());
            }
        }
        assert_eq!(seen.len(), 50);
        let again = split(&d, &Protocol::KFold { k: 5 }, 42).unwrap();
        assert_eq!(again[2].test, folds[2].test, "same seed, same folds");
    }

    #[test]
    fn cold_protocols_hold_out_whole_users_and_items() {
        let rows: Vec<(u32, u32, i64)> = (0..60).map(|k| (k % 10, k % 6, k as i64)).collect();
        let d = ds(&rows, 10, 6);
        let f = &split(&d, &Protocol::ColdUsers { fraction: 0.3 }, 1).unwrap()[0];
        for u in 0..10 {
            assert!(f.test.user_len(u) == 0 || f.train.interactions.user_len(u) == 0);
        }
        let f = &split(&d, &Protocol::ColdItems { fraction: 0.5 }, 1).unwrap()[0];
        let cands = f.candidates.as_ref().unwrap();
        assert_eq!(cands.len(), 3);
        for &i in cands {
            assert_eq!(f.train.interactions.item_len(i), 0);
        }
    }

    #[test]
    fn protocols_parse_and_reject_nonsense() {
        assert_eq!(
            "kfold:5".parse::<Protocol>().unwrap(),
            Protocol::KFold { k: 5 }
        );
        assert_eq!("loo".parse::<Protocol>().unwrap().to_string(), "loo");
        for bad in [
            "kfold:1",
            "holdout:1.5",
            "temporal:x",
            "nope",
            "timecut:-1",
            "kfold:",
            "loo:3",
        ] {
            assert!(bad.parse::<Protocol>().is_err(), "{bad}");
        }
        let d = ds(&[(0, 0, 1)], 1, 1);
        let no_ts = d.with_interactions(d.interactions.select(&[true]));
        assert!(split(&no_ts, &Protocol::TimeCut { at: 0.5 }, 0).is_err());
    }

    #[test]
    fn files_with_overlap_are_refused() {
        let d = tempfile::tempdir().unwrap();
        let tr = d.path().join("train.csv");
        let te = d.path().join("test.csv");
        std::fs::write(&tr, "user,item,rating\na,x,5\na,y,3\nb,x,4\n").unwrap();
        std::fs::write(&te, "user,item,rating\nb,y,2\n").unwrap();
        let f = from_files(&tr, &te, &TextFormat::csv(), None, &LoadOptions::default()).unwrap();
        assert_eq!(f.test.nnz(), 1);
        assert_eq!(f.train.interactions.nnz(), 3);
        std::fs::write(&te, "user,item,rating\nb,x,2\na,x,1\n").unwrap();
        let e =
            from_files(&tr, &te, &TextFormat::csv(), None, &LoadOptions::default()).unwrap_err();
        assert!(matches!(e, Error::Overlap { count: 2, .. }), "{e}");
    }
}
