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

/// Parameters of the notebook preset.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotebookConfig {
    /// Users (30).
    pub users: usize,
    /// Items (60).
    pub items: usize,
    /// Categories (6, at most 6: one per keyword list).
    pub categories: usize,
    /// Ratings per user (12), 70% from the preferred category.
    pub ratings_per_user: usize,
    /// Views per session (8).
    pub session_len: usize,
    /// Seed (42).
    pub seed: u64,
}

impl Default for NotebookConfig {
    fn default() -> Self {
        NotebookConfig {
            users: 30,
            items: 60,
            categories: 6,
            ratings_per_user: 12,
            session_len: 8,
            seed: 42,
        }
    }
}

/// The notebook's demo data: explicit ratings without timestamps, item titles, categories and
/// descriptions, one session per user.
pub fn notebook(c: &NotebookConfig) -> Result<Dataset> {
    if c.categories == 0 || c.categories > CATEGORY_WORDS.len() {
        return Err(Error::param(
            "categories",
            format!("must be in 1..=6, got {}", c.categories),
        ));
    }
    if c.users == 0 || c.items == 0 {
        return Err(Error::param("users", "users and items must be positive"));
    }
    let mut rng = rng_for(c.seed, 0);
    let item_cat: Vec<usize> = (0..c.items)
        .map(|_| rng.gen_range(0..c.categories))
        .collect();
    let user_pref: Vec<usize> = (0..c.users)
        .map(|_| rng.gen_range(0..c.categories))
        .collect();
    let mut meta = FeatureTableBuilder::new(
        true,
        vec!["category".into()],
        vec![],
        vec!["description".into()],
    );
    for (i, &cat) in item_cat.iter().enumerate() {
        let words: Vec<&str> = CATEGORY_WORDS[cat]
            .1
            .choose_multiple(&mut rng, 5)
            .copied()
            .collect();
        meta.push(
            i as u32,
            FeatureRow {
                title: Some(format!("Item_{i:02}_Category_{cat:02}")),
                categorical: vec![vec![cat.to_string()]],
                numeric: vec![],
                text: vec![words.join(" ")],
            },
        );
    }
    let noise = Normal::<f64>::new(0.0, 0.6).map_err(|e| Error::param("noise", e.to_string()))?;
    let mut t = Triplets::new(false);
    let n_pref = (c.ratings_per_user as f64 * 0.7) as usize;
    let n_other = c.ratings_per_user - n_pref;
    for (u, &pref) in user_pref.iter().enumerate() {
        let preferred: Vec<u32> = (0..c.items as u32)
            .filter(|&i| item_cat[i as usize] == pref)
            .collect();
        let other: Vec<u32> = (0..c.items as u32)
            .filter(|&i| item_cat[i as usize] != pref)
            .collect();
        let mut chosen: Vec<u32> = preferred
            .choose_multiple(&mut rng, n_pref.min(preferred.len()))
            .copied()
            .collect();
        chosen.extend(other.choose_multiple(&mut rng, n_other.min(other.len())));
        chosen.shuffle(&mut rng);
        for i in chosen {
            let base: f64 = if item_cat[i as usize] == pref {
                4.2
            } else {
                2.8
            };
            let r: f64 = (base + noise.sample(&mut rng)).clamp(1.0, 5.0);
            t.push(u as u32, i, ((r * 10.0).round() / 10.0) as f32, None);
        }
    }
    let mut sess = Vec::new();
    for (u, &pref) in user_pref.iter().enumerate() {
        let preferred: Vec<u32> = (0..c.items as u32)
            .filter(|&i| item_cat[i as usize] == pref)
            .collect();
        for k in 0..c.session_len {
            if let Some(&i) = preferred.choose(&mut rng) {
                sess.push((u as u32, k as f64, i));
            }
        }
    }
    let (m, _) = Interactions::from_triplets(&t, c.users, c.items, DuplicatePolicy::Last)?;
    Ok(Dataset {
        name: "notebook".into(),
        users: Arc::new(ids("", c.users)),
        items: Arc::new(ids("", c.items)),
        interactions: m,
        feedback: Feedback::Explicit,
        item_features: Some(Arc::new(meta.build(c.items))),
        user_features: None,
        sessions: Some(Arc::new(Sessions::from_rows(ids("s", c.users), sess))),
        report: Default::default(),
    })
}

/// Parameters of the scalable preset.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ScalableConfig {
    /// Users.
    pub users: usize,
    /// Items.
    pub items: usize,
    /// Target number of interactions (distinct user–item pairs).
    pub interactions: usize,
    /// Zipf exponent of item popularity (≈1 is typical of real catalogues).
    pub zipf: f64,
    /// Latent taste dimensions; ratings follow the dot product of user and item tastes.
    pub dims: usize,
    /// Item categories.
    pub categories: usize,
    /// Share of a user's picks drawn from their favourite categories (the rest by popularity).
    pub taste_share: f64,
    /// Whether to generate sessions (each user's history cut into visits).
    pub sessions: bool,
    /// First timestamp (Unix seconds).
    pub start_time: i64,
    /// Length of the observed period in days.
    pub days: u32,
    /// Seed.
    pub seed: u64,
}

impl Default for ScalableConfig {
    fn default() -> Self {
        ScalableConfig {
            users: 2_000,
            items: 1_000,
            interactions: 100_000,
            zipf: 1.0,
            dims: 8,
            categories: 12,
            taste_share: 0.6,
            sessions: true,
            start_time: 1_577_836_800,
            days: 730,
            seed: 42,
        }
    }
}

impl ScalableConfig {
    /// Checks every rule, one error per broken rule.
    pub fn validate(&self) -> Result<()> {
        if self.users == 0 {
            return Err(Error::param("users", "must be at least 1"));
        }
        if self.items < 2 {
            return Err(Error::param("items", "must be at least 2"));
        }
        if self.categories == 0 || self.categories > self.items {
            return Err(Error::param("categories", "must be in 1..=items"));
        }
        if self.dims == 0 {
            return Err(Error::param("dims", "must be at least 1"));
        }
        if !(self.zipf >= 0.0 && self.zipf.is_finite()) {
            return Err(Error::param("zipf", "must be a finite number >= 0"));
        }
        if !(0.0..=1.0).contains(&self.taste_share) {
            return Err(Error::param("taste_share", "must be in [0, 1]"));
        }
        let cap = self.users as f64 * self.items as f64 * 0.5;
        if self.interactions == 0 || self.interactions as f64 > cap {
            return Err(Error::param(
                "interactions",
                format!("must be in 1..={} (half the user × item grid)", cap as u64),
            ));
        }
        Ok(())
    }
}

const AGE_BANDS: [&str; 6] = ["18-24", "25-34", "35-44", "45-54", "55-64", "65+"];
const COUNTRIES: [&str; 12] = [
    "US", "IN", "BR", "DE", "GB", "FR", "JP", "NG", "MX", "ID", "CA", "KE",
];

/// Cumulative distribution of a weight vector, for inverse-CDF sampling by binary search.
fn cdf(weights: impl Iterator<Item = f64>) -> Vec<f64> {
    let mut acc = 0.0;
    let mut c: Vec<f64> = weights
        .map(|w| {
            acc += w;
            acc
        })
        .collect();
    c.iter_mut().for_each(|x| *x /= acc.max(f64::MIN_POSITIVE));
    c
}

fn sample(cdf: &[f64], rng: &mut impl Rng) -> usize {
    let x: f64 = rng.gen();
    cdf.partition_point(|&c| c < x).min(cdf.len() - 1)
}

fn category_word(cat: usize, k: usize) -> String {
    match CATEGORY_WORDS.get(cat) {
        Some((_, words)) => words[k % 12].to_string(),
        None => format!("c{cat}w{}", k % 12),
    }
}

fn category_name(cat: usize) -> String {
    CATEGORY_WORDS
        .get(cat)
        .map_or_else(|| format!("category{cat}"), |c| c.0.to_string())
}

/// Generates the scalable preset in memory; `progress(done, total)` is called per chunk of users.
pub fn scalable(c: &ScalableConfig, progress: &(dyn Fn(u64, u64) + Sync)) -> Result<Dataset> {
    c.validate()?;
    let mut rng = rng_for(c.seed, 0);
    let std = Normal::<f64>::new(0.0, 1.0).map_err(|e| Error::param("dims", e.to_string()))?;
    let d = c.dims;
    let centroids: Vec<f32> = (0..c.categories * d)
        .map(|_| std.sample(&mut rng) as f32)
        .collect();
    let item_cat: Vec<usize> = (0..c.items)
        .map(|_| rng.gen_range(0..c.categories))
        .collect();
    let item_vec: Vec<f32> = (0..c.items)
        .flat_map(|i| (0..d).map(move |k| (i, k)))
        .map(|(i, k)| centroids[item_cat[i] * d + k] + 0.5 * std.sample(&mut rng) as f32)
        .collect();
    // Popularity rank is a random permutation, so popularity is independent of the index.
    let mut rank: Vec<usize> = (0..c.items).collect();
    rank.shuffle(&mut rng);
    let pop: Vec<f64> = rank
        .iter()
        .map(|&r| 1.0 / ((r + 1) as f64).powf(c.zipf))
        .collect();
    let max_pop = pop.iter().copied().fold(0.0, f64::max);
    let item_bias: Vec<f32> = (0..c.items)
        .map(|i| 0.3 * std.sample(&mut rng) as f32 + 0.2 * (pop[i] / max_pop).sqrt() as f32)
        .collect();
    let global_cdf = cdf(pop.iter().copied());
    let by_cat: Vec<Vec<u32>> = (0..c.categories)
        .map(|k| {
            (0..c.items as u32)
                .filter(|&i| item_cat[i as usize] == k)
                .collect()
        })
        .collect();
    let cat_cdf: Vec<Vec<f64>> = by_cat
        .iter()
        .map(|items| cdf(items.iter().map(|&i| pop[i as usize])))
        .collect();

    // Activity: log-normal, scaled so the sum hits the target, capped at half the catalogue.
    let act: Vec<f64> = (0..c.users)
        .map(|_| (1.0 * std.sample(&mut rng)).exp())
        .collect();
    let total: f64 = act.iter().sum();
    let cap = (c.items / 2).max(1);
    let mut n_u: Vec<usize> = act
        .iter()
        .map(|a| ((a / total * c.interactions as f64).round() as usize).clamp(1, cap))
        .collect();
    let mut diff = c.interactions as i64 - n_u.iter().sum::<usize>() as i64;
    let mut u = 0usize;
    let mut stalls = 0usize;
    while diff != 0 && stalls < c.users {
        let ok = if diff > 0 { n_u[u] < cap } else { n_u[u] > 1 };
        if ok {
            if diff > 0 {
                n_u[u] += 1;
                diff -= 1
            } else {
                n_u[u] -= 1;
                diff += 1
            }
            stalls = 0;
        } else {
            stalls += 1;
        }
        u = (u + 1) % c.users;
    }

    let span = c.days as i64 * 86_400;
    let t0 = c.start_time;
    let done = std::sync::atomic::AtomicU64::new(0);
    let chunk = 4096;
    let per_user: Vec<Vec<(u32, f32, i64)>> = (0..c.users)
        .into_par_iter()
        .with_min_len(chunk)
        .map(|u| {
            let mut r = rng_for(c.seed, 1 + u as u64);
            let fav: Vec<usize> = (0..3).map(|_| r.gen_range(0..c.categories)).collect();
            let cat_w = cdf([0.6, 0.3, 0.1].into_iter());
            let uv: Vec<f32> = (0..d)
                .map(|k| centroids[fav[0] * d + k] * 0.7 + 0.7 * std.sample(&mut r) as f32)
                .collect();
            let n = n_u[u];
            let mut seen = rustc_hash::FxHashSet::default();
            let mut rows = Vec::with_capacity(n);
            let start = t0 + r.gen_range(0..(span * 4 / 5).max(1));
            let active = r.gen_range(86_400..=(span / 5).max(86_401));
            let mut tries = 0;
            while rows.len() < n && tries < n * 50 {
                tries += 1;
                let i = if r.gen_bool(c.taste_share) {
                    let k = fav[sample(&cat_w, &mut r)];
                    if by_cat[k].is_empty() {
                        continue;
                    }
                    by_cat[k][sample(&cat_cdf[k], &mut r)]
                } else {
                    sample(&global_cdf, &mut r) as u32
                };
                if !seen.insert(i) {
                    continue;
                }
                let iv = &item_vec[i as usize * d..(i as usize + 1) * d];
                let dot: f32 = uv.iter().zip(iv).map(|(a, b)| a * b).sum::<f32>() / d as f32;
                let rating = (3.4
                    + 1.1 * dot.tanh() * 2.0
                    + item_bias[i as usize]
                    + 0.6 * std.sample(&mut r) as f32)
                    .round()
                    .clamp(1.0, 5.0);
                rows.push((i, rating, 0));
            }
            // Visits of 1–12 picks a few minutes apart, at random points of the active window.
            let mut k = 0;
            while k < rows.len() {
                let len = r.gen_range(1..=12usize).min(rows.len() - k);
                let mut t = start + r.gen_range(0..active);
                for row in &mut rows[k..k + len] {
                    row.2 = t;
                    t += r.gen_range(20..600);
                }
                k += len;
            }
            rows.sort_by_key(|x| x.2);
            if u % chunk == 0 {
                let k = done.fetch_add(chunk as u64, std::sync::atomic::Ordering::Relaxed);
                progress(k.min(c.users as u64), c.users as u64);
            }
            rows
        })
        .collect();
    progress(c.users as u64, c.users as u64);

    let nnz: usize = per_user.iter().map(Vec::len).sum();
    let mut t = Triplets::new(true);
    t.users.reserve(nnz);
    t.items.reserve(nnz);
    t.values.reserve(nnz);
    let mut sess = Vec::new();
    let mut n_sessions = 0u32;
    for (u, rows) in per_user.into_iter().enumerate() {
        let mut last = i64::MIN;
        for (k, (i, v, ts)) in rows.into_iter().enumerate() {
            t.push(u as u32, i, v, Some(ts));
            if c.sessions {
                // A new visit after 30 minutes of inactivity.
                if k == 0 || ts - last > 1800 {
                    n_sessions += 1;
                }
                sess.push((n_sessions - 1, ts as f64, i));
                last = ts;
            }
        }
    }
    let (m, _) = Interactions::from_triplets(&t, c.users, c.items, DuplicatePolicy::Last)?;
    drop(t);

    let mut meta = FeatureTableBuilder::new(
        true,
        vec!["category".into()],
        vec!["year".into(), "price".into()],
        vec!["description".into()],
    );
    let mut mr = rng_for(c.seed, u64::MAX);
    for (i, &cat) in item_cat.iter().enumerate() {
        let words: Vec<String> = (0..6)
            .map(|_| category_word(cat, mr.gen_range(0..12)))
            .collect();
        let year = 2025.0 - (mr.gen::<f64>().powf(2.0) * 75.0).floor();
        let price = (std.sample(&mut mr) * 0.6 + 2.5).exp().min(999.0);
        meta.push(
            i as u32,
            FeatureRow {
                title: Some(format!("Item {i} ({})", category_name(cat))),
                categorical: vec![vec![category_name(cat)]],
                numeric: vec![year as f32, ((price * 100.0).round() / 100.0) as f32],
                text: vec![words.join(" ")],
            },
        );
    }
    let mut umeta = FeatureTableBuilder::new(
        false,
        vec!["age_band".into(), "country".into()],
        vec![],
        vec![],
    );
    let country_cdf = cdf((0..COUNTRIES.len()).map(|k| 1.0 / (k + 1) as f64));
    let age_cdf = cdf([0.15, 0.3, 0.22, 0.15, 0.1, 0.08].into_iter());
    for u in 0..c.users {
        umeta.push(
            u as u32,
            FeatureRow {
                categorical: vec![
                    vec![AGE_BANDS[sample(&age_cdf, &mut mr)].into()],
                    vec![COUNTRIES[sample(&country_cdf, &mut mr)].into()],
                ],
                ..Default::default()
            },
        );
    }
    Ok(Dataset {
        name: "synth".into(),
        users: Arc::new(ids("u", c.users)),
        items: Arc::new(ids("i", c.items)),
        interactions: m,
        feedback: Feedback::Explicit,
        item_features: Some(Arc::new(meta.build(c.items))),
        user_features: Some(Arc::new(umeta.build(c.users))),
        sessions: c
            .sessions
            .then(|| Arc::new(Sessions::from_rows(ids("s", n_sessions as usize), sess))),
        report: Default::default(),
    })
}

fn clean(s: &str) -> String {
    s.replace(['\t', '\n', '\r'], " ")
}

/// Writes any dataset as RecBole atomic files `dir/NAME.inter`, `.item`, `.user` and
/// `.session`, which [`crate::loaders::recbole::load`] reads back.
pub fn write_atomic(ds: &Dataset, dir: &Path, name: &str) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let open = |ext: &str| -> Result<(std::path::PathBuf, BufWriter<std::fs::File>)> {
        let p = dir.join(format!("{name}.{ext}"));
        let f = std::fs::File::create(&p).map_err(|e| Error::io(&p, e))?;
        Ok((p, BufWriter::with_capacity(1 << 20, f)))
    };
    let m = &ds.interactions;
    let (p, mut w) = open("inter")?;
    let io = |p: &Path| {
        let p = p.to_path_buf();
        move |e| Error::io(&p, e)
    };
    let rating = ds.feedback == Feedback::Explicit;
    write!(
        w,
        "user_id:token\titem_id:token\t{}",
        if rating {
            "rating:float"
        } else {
            "weight:float"
        }
    )
    .map_err(io(&p))?;
    writeln!(
        w,
        "{}",
        if m.has_timestamps() {
            "\ttimestamp:float"
        } else {
            ""
        }
    )
    .map_err(io(&p))?;
    for u in 0..m.n_users() as u32 {
        let ts = m.user_timestamps(u);
        for (k, (&i, &v)) in m.user_items(u).iter().zip(m.user_values(u)).enumerate() {
            write!(w, "{}\t{}\t{}", ds.users.id(u), ds.items.id(i), v).map_err(io(&p))?;
            match ts {
                Some(ts) => writeln!(w, "\t{}", ts[k]),
                None => writeln!(w),
            }
            .map_err(io(&p))?;
        }
    }
    w.flush().map_err(io(&p))?;
    let write_table = |ext: &str, t: &FeatureTable, ids: &IdMap| -> Result<()> {
        let (p, mut w) = open(ext)?;
        let mut header = vec![format!("{ext}_id:token")];
        if t.titles.is_some() {
            header.push("title:token_seq".into());
        }
        header.extend(
            t.categorical
                .iter()
                .map(|f| format!("{}:token_seq", f.name)),
        );
        header.extend(t.numeric.iter().map(|f| format!("{}:float", f.name)));
        header.extend(t.text.iter().map(|f| format!("{}:token_seq", f.name)));
        writeln!(w, "{}", header.join("\t")).map_err(io(&p))?;
        for e in 0..t.len as u32 {
            let mut row = vec![ids.id(e).to_string()];
            if let Some(titles) = &t.titles {
                row.push(clean(&titles[e as usize]));
            }
            row.extend(t.categorical.iter().map(|f| {
                f.of(e)
                    .iter()
                    .map(|&v| clean(f.vocab.id(v)).replace(' ', "_"))
                    .collect::<Vec<_>>()
                    .join(" ")
            }));
            row.extend(t.numeric.iter().map(|f| {
                let v = f.values[e as usize];
                if v.is_nan() {
                    String::new()
                } else {
                    v.to_string()
                }
            }));
            row.extend(t.text.iter().map(|f| clean(&f.values[e as usize])));
            writeln!(w, "{}", row.join("\t")).map_err(io(&p))?;
        }
        w.flush().map_err(io(&p))
    };
    if let Some(t) = &ds.item_features {
        write_table("item", t, &ds.items)?;
    }
    if let Some(t) = &ds.user_features {
        write_table("user", t, &ds.users)?;
    }
    if let Some(s) = &ds.sessions {
        let (p, mut w) = open("session")?;
        writeln!(w, "session_id:token\titem_id:token\tposition:float").map_err(io(&p))?;
        for k in 0..s.len() {
            for (pos, &i) in s.session(k).iter().enumerate() {
                writeln!(w, "{}\t{}\t{}", s.ids.id(k as u32), ds.items.id(i), pos)
                    .map_err(io(&p))?;
            }
        }
        w.flush().map_err(io(&p))?;
    }
    Ok(())
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
