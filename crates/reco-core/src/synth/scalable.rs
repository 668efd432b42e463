//! The scalable preset: Zipf popularity, latent tastes, visits, sessions and features.

use super::*;

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
        // Dense indices are u32; stay well inside them.
        const MAX_IDS: usize = 1 << 31;
        if self.users == 0 || self.users > MAX_IDS {
            return Err(Error::param("users", format!("must be in 1..={MAX_IDS}")));
        }
        if self.items < 2 || self.items > MAX_IDS {
            return Err(Error::param("items", format!("must be in 2..={MAX_IDS}")));
        }
        if self.dims > 4096 {
            return Err(Error::param("dims", "must be at most 4096"));
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
        // Tastes for every user and item, per-user draws, and the interactions with their
        // timestamps, sessions and the CSR/CSC copies of the finished dataset.
        let rows = (self.users + self.items) as f64;
        let bytes = rows * (self.dims as f64 * 8.0 + 96.0) + self.interactions as f64 * 64.0;
        crate::resources::check(
            || {
                format!(
                    "generating {} users × {} items with {} interactions",
                    self.users, self.items, self.interactions
                )
            },
            bytes,
            "users, items, interactions or dims",
        )
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
