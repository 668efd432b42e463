//! Synthetic data: the embedded default of reco, deterministic by seed.
//!
//! Two presets. `notebook` reproduces the semantics of the classic demo generator (30 users, 60
//! items, 6 categories with their word lists, 12 ratings per user drawn 70/30 from the preferred
//! category, base 4.2/2.8 plus N(0, 0.6) noise clipped to [1, 5] and rounded to 0.1, one 8-view
//! session per user). `scalable` draws a catalogue with Zipf popularity, latent tastes,
//! categories, text, timestamps, sessions and user/item features, up to tens of millions of
//! interactions; each user's rows come from an RNG seeded by (seed, user), so output does not
//! depend on the number of threads.

use std::io::{BufWriter, Write};
use std::path::Path;
use std::sync::Arc;

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::dataset::{Dataset, Feedback};
use crate::error::{Error, Result};
use crate::features::{FeatureRow, FeatureTable, FeatureTableBuilder};
use crate::ids::IdMap;
use crate::interactions::{DuplicatePolicy, Interactions, Triplets};
use crate::sessions::Sessions;

/// Keyword lists of the six notebook categories.
pub const CATEGORY_WORDS: [(&str, [&str; 12]); 6] = [
    (
        "action",
        [
            "action",
            "fast",
            "adventure",
            "hero",
            "battle",
            "explosion",
            "chase",
            "mission",
            "fight",
            "weapon",
            "danger",
            "rescue",
        ],
    ),
    (
        "romance",
        [
            "romance",
            "love",
            "drama",
            "heart",
            "relationship",
            "emotion",
            "passion",
            "kiss",
            "betrayal",
            "wedding",
            "tearful",
            "affection",
        ],
    ),
    (
        "scifi",
        [
            "scifi",
            "space",
            "future",
            "alien",
            "robot",
            "technology",
            "galaxy",
            "time",
            "experiment",
            "spaceship",
            "cyber",
            "planet",
        ],
    ),
    (
        "comedy",
        [
            "comedy",
            "funny",
            "joke",
            "laugh",
            "humor",
            "awkward",
            "satire",
            "parody",
            "prank",
            "clumsy",
            "ridiculous",
            "smile",
        ],
    ),
    (
        "horror",
        [
            "horror",
            "scary",
            "ghost",
            "dark",
            "monster",
            "fear",
            "nightmare",
            "blood",
            "curse",
            "haunted",
            "evil",
            "scream",
        ],
    ),
    (
        "documentary",
        [
            "documentary",
            "history",
            "facts",
            "nature",
            "real",
            "science",
            "culture",
            "wildlife",
            "investigation",
            "education",
            "truth",
            "archive",
        ],
    ),
];

fn rng_for(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed);
    r.set_stream(stream);
    r
}

fn ids(prefix: &str, n: usize) -> IdMap {
    IdMap::from((0..n).map(|i| format!("{prefix}{i}")).collect::<Vec<_>>())
}

mod atomic;
mod notebook;
mod scalable;

pub use atomic::write_atomic;
pub use notebook::{notebook, NotebookConfig};
pub use scalable::{scalable, ScalableConfig};

/// Builds a synthetic dataset from its text form (`reco ... --data synth:SPEC`, `reco.synthetic`
/// in Python): `notebook` or `notebook,seed=3,users=50,items=80` for the notebook preset, or
/// `key=value,...` (optionally after `scalable,`) with [`ScalableConfig`]'s fields. `progress`
/// hears (users done, users) of the scalable generator.
pub fn from_spec(spec: &str, progress: &(dyn Fn(u64, u64) + Sync)) -> crate::Result<Dataset> {
    let bad = |message: String| Error::param("data", message);
    if spec == "notebook" || spec.starts_with("notebook,") {
        let mut c = NotebookConfig::default();
        for (k, v) in spec_pairs(spec.trim_start_matches("notebook").trim_start_matches(','))? {
            let number = |what: &str| {
                v.parse::<u64>()
                    .map_err(|e| bad(format!("notebook {what} {v:?}: {e}")))
            };
            match k {
                "seed" => c.seed = number("seed")?,
                "users" => c.users = number("users")? as usize,
                "items" => c.items = number("items")? as usize,
                _ => {
                    return Err(bad(format!(
                        "unknown notebook parameter {k:?} (seed, users, items)"
                    )))
                }
            }
        }
        return notebook(&c);
    }
    let mut map = serde_json::Map::new();
    for (k, v) in spec_pairs(spec.trim_start_matches("scalable").trim_start_matches(','))? {
        let value: serde_json::Value =
            serde_json::from_str(v).unwrap_or(serde_json::Value::String(v.to_string()));
        map.insert(k.to_string(), value);
    }
    let c: ScalableConfig =
        serde_json::from_value(serde_json::Value::Object(map)).map_err(|e| {
            bad(format!(
                "synthetic data parameters in {:?}: {e}",
                format!("synth:{spec}")
            ))
        })?;
    scalable(&c, progress)
}

fn spec_pairs(s: &str) -> crate::Result<Vec<(&str, &str)>> {
    s.split(',')
        .filter(|p| !p.is_empty())
        .map(|p| {
            p.split_once('=')
                .map(|(k, v)| (k.trim(), v.trim()))
                .ok_or_else(|| Error::param("data", format!("{p:?} is not key=value")))
        })
        .collect()
}

/// A small dataset with known structure for checking that a model learns: 400 users and 600
/// items with strong category tastes (80% of each user's interactions in their favourite
/// categories), Zipf popularity, timestamps, metadata, and 24,000 interactions, of which the
/// last 5 items have none (cold catalogue items). Deterministic.
pub fn structured() -> crate::Result<Dataset> {
    let c = ScalableConfig {
        users: 400,
        items: 600,
        interactions: 24_000,
        categories: 6,
        taste_share: 0.8,
        seed: 7,
        ..Default::default()
    };
    let ds = scalable(&c, &|_, _| {})?;
    let keep: Vec<bool> = ds.interactions.indices().iter().map(|&i| i < 595).collect();
    Ok(ds.with_interactions(ds.interactions.select(&keep)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notebook_preset_follows_its_recipe() {
        let ds = notebook(&NotebookConfig::default()).unwrap();
        assert_eq!((ds.n_users(), ds.n_items()), (30, 60));
        let f = ds.item_features.as_ref().unwrap();
        let cat = |i: u32| f.category_label(i);
        for u in 0..30u32 {
            let items = ds.interactions.user_items(u);
            assert!(items.len() <= 12 && items.len() >= 4);
            for (&i, &r) in items.iter().zip(ds.interactions.user_values(u)) {
                assert!((1.0..=5.0).contains(&r));
                assert!(
                    ((r * 10.0).round() - r * 10.0).abs() < 1e-3,
                    "rounded to 0.1"
                );
                let words: Vec<&str> = f.text[0].values[i as usize].split(' ').collect();
                assert_eq!(words.len(), 5);
            }
            let s = ds.sessions.as_ref().unwrap().session(u as usize);
            assert_eq!(s.len(), 8);
            assert!(
                s.iter().all(|&i| cat(i) == cat(s[0])),
                "sessions stay in one category"
            );
        }
        assert!(f.title(7).unwrap().starts_with("Item_07_Category_0"));
        let again = notebook(&NotebookConfig::default()).unwrap();
        assert!(
            again.interactions == ds.interactions,
            "deterministic by seed"
        );
    }

    #[test]
    fn scalable_hits_the_target_and_round_trips_through_files() {
        let c = ScalableConfig {
            users: 300,
            items: 200,
            interactions: 6_000,
            ..Default::default()
        };
        let ds = scalable(&c, &|_, _| {}).unwrap();
        assert_eq!(ds.interactions.nnz(), 6_000);
        let counts = ds.interactions.item_counts();
        let mut sorted = counts.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        let head: u32 = sorted[..20].iter().sum();
        assert!(
            head as f64 > 0.2 * 6_000.0,
            "Zipf head holds a large share: {head}"
        );
        let d = tempfile::tempdir().unwrap();
        write_atomic(&ds, d.path(), "synth").unwrap();
        let back = crate::loaders::recbole::load(d.path(), &Default::default()).unwrap();
        // Indices follow first appearance in the files, so compare in the external id space.
        let external = |x: &Dataset| {
            let ts = x.interactions.timestamps().unwrap();
            let mut v: Vec<(String, String, u32, i64)> = x
                .interactions
                .iter()
                .zip(ts)
                .map(|((u, i, r), &t)| {
                    (
                        x.users.id(u).to_string(),
                        x.items.id(i).to_string(),
                        r.to_bits(),
                        t,
                    )
                })
                .collect();
            v.sort();
            v
        };
        assert!(
            external(&back) == external(&ds),
            "interactions differ after the round trip"
        );
        assert_eq!(back.n_items(), ds.n_items());
        let (a, b) = (
            back.item_features.clone().unwrap(),
            ds.item_features.clone().unwrap(),
        );
        for i in [0u32, 7, 199] {
            let j = back.items.get(ds.items.id(i)).unwrap();
            assert_eq!(a.title(j), b.title(i));
            assert_eq!(a.text[0].values[j as usize], b.text[0].values[i as usize]);
            assert_eq!(
                a.numeric[1].values[j as usize],
                b.numeric[1].values[i as usize]
            );
            assert_eq!(a.category_label(j), b.category_label(i));
        }
        let (sa, sb) = (back.sessions.clone().unwrap(), ds.sessions.clone().unwrap());
        assert_eq!(sa.len(), sb.len());
        assert!(sa
            .session(3)
            .iter()
            .zip(sb.session(3))
            .all(|(&x, &y)| back.items.id(x) == ds.items.id(y)));
        let again = scalable(&c, &|_, _| {}).unwrap();
        assert!(
            again.interactions == ds.interactions,
            "deterministic by seed"
        );
    }

    #[test]
    fn invalid_configs_name_the_parameter() {
        let c = ScalableConfig {
            interactions: 10_000_000,
            users: 10,
            items: 10,
            categories: 2,
            ..Default::default()
        };
        assert!(scalable(&c, &|_, _| {})
            .unwrap_err()
            .to_string()
            .contains("interactions"));
        let c = ScalableConfig {
            zipf: f64::NAN,
            ..Default::default()
        };
        assert!(c.validate().unwrap_err().to_string().contains("zipf"));
    }
}
