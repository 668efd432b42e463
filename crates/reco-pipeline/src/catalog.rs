//! What the pipeline knows about items and users besides its models: popularity, recency,
//! categories, histories in time order, and segment charts. Built from the training data.

use reco_core::features::FeatureTable;
use reco_core::{Dataset, Result};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};

/// Seconds in a day.
const DAY: f64 = 86_400.0;
/// Items counted as "recent" interactions: the last 30 days of the data.
const RECENT_DAYS: f64 = 30.0;

/// A categorical field as item → values, with each value's items by popularity.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Categories {
    pub name: String,
    pub ptr: Vec<usize>,
    pub values: Vec<u32>,
    pub labels: Vec<String>,
    /// Items of each value, most popular first.
    pub charts: Vec<Vec<u32>>,
}

impl Categories {
    pub fn of(&self, item: u32) -> &[u32] {
        let i = item as usize;
        if i + 1 >= self.ptr.len() {
            return &[];
        }
        &self.values[self.ptr[i]..self.ptr[i + 1]]
    }
}

/// The most popular items among the users holding each value of a user field.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Segments {
    pub name: String,
    pub ptr: Vec<usize>,
    pub values: Vec<u32>,
    /// Per value: (item, count), most popular first, cut at `keep`.
    pub charts: Vec<Vec<(u32, u32)>>,
}

/// Items and histories.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Catalog {
    pub n_items: usize,
    pub n_users: usize,
    pub counts: Vec<u32>,
    /// Items by popularity (count, then ascending index).
    pub by_popularity: Vec<u32>,
    /// Rank of each item in `by_popularity`.
    pub popularity_rank: Vec<u32>,
    /// ln(1 + interactions in the data's last 30 days).
    pub recent: Vec<f32>,
    /// ln(1 + days between the item's first interaction and the end of the data); 0 without
    /// timestamps.
    pub age: Vec<f32>,
    /// User histories, oldest first (by timestamp, else by index).
    pub hist_ptr: Vec<usize>,
    pub hist: Vec<u32>,
    /// Categorical item fields in use, by name.
    pub categories: Vec<Categories>,
    /// User segment fields in use.
    pub segments: Vec<Segments>,
}

/// True when `ptr` is a CSR index (of any number of rows) over `len` values.
fn csr(ptr: &[usize], len: usize) -> bool {
    reco_core::interactions::is_csr(ptr, ptr.len().saturating_sub(1), len)
}

impl Catalog {
    /// Checks a catalogue read from an artifact: every array has its length and every index
    /// names an item, user or value that exists, so a corrupt file fails to load instead of
    /// indexing out of bounds while recommending.
    pub(crate) fn check(&self) -> std::result::Result<(), &'static str> {
        let n = self.n_items;
        let item = |i: &u32| (*i as usize) < n;
        let fits = self.counts.len() == n
            && self.by_popularity.len() == n
            && self.popularity_rank.len() == n
            && self.recent.len() == n
            && self.age.len() == n
            && self.by_popularity.iter().all(item)
            && self.popularity_rank.iter().all(item)
            && self.hist_ptr.len() == self.n_users + 1
            && csr(&self.hist_ptr, self.hist.len())
            && self.hist.iter().all(item)
            && self.categories.iter().all(|c| {
                csr(&c.ptr, c.values.len())
                    && c.ptr.len() <= n + 1
                    && c.charts.len() == c.labels.len()
                    && c.values.iter().all(|&v| (v as usize) < c.labels.len())
                    && c.charts.iter().flatten().all(item)
            })
            && self.segments.iter().all(|s| {
                csr(&s.ptr, s.values.len())
                    && s.ptr.len() <= self.n_users + 1
                    && s.values.iter().all(|&v| (v as usize) < s.charts.len())
                    && s.charts.iter().flatten().all(|(i, _)| item(i))
            });
        if fits {
            Ok(())
        } else {
            Err("the pipeline's catalogue is inconsistent")
        }
    }
}

fn categories_of(table: &FeatureTable, field: Option<&str>, counts: &[u32]) -> Result<Categories> {
    let f = match field {
        Some(name) => table.categorical(name),
        None => table.primary_category(),
    }
    .ok_or_else(|| {
        reco_core::Error::param(
            "field",
            match field {
                Some(n) => format!("items have no categorical field {n:?}"),
                None => "items have no categorical field".into(),
            },
        )
    })?;
    let mut charts = vec![Vec::new(); f.vocab.len()];
    for i in 0..table.len as u32 {
        for &v in f.of(i) {
            charts[v as usize].push(i);
        }
    }
    for c in &mut charts {
        c.sort_by_key(|&i| (std::cmp::Reverse(counts[i as usize]), i));
    }
    Ok(Categories {
        name: f.name.clone(),
        ptr: f.ptr.clone(),
        values: f.values.clone(),
        labels: (0..f.vocab.len() as u32)
            .map(|v| f.vocab.id(v).to_string())
            .collect(),
        charts,
    })
}

impl Catalog {
    /// Summarises `data`; `fields` are the item category fields and `segments` the user fields
    /// the pipeline's sources and re-rankers use (`None` is the primary category).
    pub fn build(
        data: &Dataset,
        fields: &[Option<String>],
        segments: &[(String, usize)],
    ) -> Result<Self> {
        let m = &data.interactions;
        let (n_users, n_items) = (m.n_users(), m.n_items());
        let counts = m.item_counts();
        let mut by_popularity: Vec<u32> = (0..n_items as u32).collect();
        by_popularity.sort_by_key(|&i| (std::cmp::Reverse(counts[i as usize]), i));
        let mut popularity_rank = vec![0u32; n_items];
        for (r, &i) in by_popularity.iter().enumerate() {
            popularity_rank[i as usize] = r as u32;
        }
        let mut recent = vec![0f32; n_items];
        let mut age = vec![0f32; n_items];
        let mut hist_ptr = Vec::with_capacity(n_users + 1);
        let mut hist = Vec::with_capacity(m.nnz());
        hist_ptr.push(0);
        match m.timestamps() {
            Some(ts) => {
                let end = ts.iter().copied().max().unwrap_or(0);
                let cut = end - (RECENT_DAYS * DAY) as i64;
                let mut first = vec![i64::MAX; n_items];
                let mut recent_n = vec![0u32; n_items];
                for u in 0..n_users as u32 {
                    let items = m.user_items(u);
                    let t = m.user_timestamps(u).unwrap_or(&[]);
                    let mut order: Vec<usize> = (0..items.len()).collect();
                    order.sort_by_key(|&k| (t[k], items[k]));
                    for k in order {
                        let i = items[k] as usize;
                        hist.push(items[k]);
                        first[i] = first[i].min(t[k]);
                        if t[k] >= cut {
                            recent_n[i] += 1;
                        }
                    }
                    hist_ptr.push(hist.len());
                }
                for i in 0..n_items {
                    recent[i] = (recent_n[i] as f32).ln_1p();
                    if first[i] != i64::MAX {
                        age[i] = (((end - first[i]) as f64 / DAY).max(0.0) as f32).ln_1p();
                    }
                }
            }
            None => {
                for u in 0..n_users as u32 {
                    hist.extend_from_slice(m.user_items(u));
                    hist_ptr.push(hist.len());
                }
            }
        }
        let mut cats = Vec::new();
        for f in fields {
            let table = data.item_features.as_deref().ok_or_else(|| {
                reco_core::Error::param(
                    "field",
                    "the pipeline needs item categories; the data has no item features",
                )
            })?;
            let c = categories_of(table, f.as_deref(), &counts)?;
            if !cats.iter().any(|x: &Categories| x.name == c.name) {
                cats.push(c);
            }
        }
        let mut segs = Vec::new();
        for (name, keep) in segments {
            let table = data.user_features.as_deref().ok_or_else(|| {
                reco_core::Error::param(
                    "field",
                    "a segment source needs user features; the data has none",
                )
            })?;
            let f = table.categorical(name).ok_or_else(|| {
                reco_core::Error::param(
                    "field",
                    format!("users have no categorical field {name:?}"),
                )
            })?;
            let mut tally: Vec<FxHashMap<u32, u32>> = vec![FxHashMap::default(); f.vocab.len()];
            for u in 0..n_users.min(table.len) as u32 {
                for &v in f.of(u) {
                    for &i in m.user_items(u) {
                        *tally[v as usize].entry(i).or_default() += 1;
                    }
                }
            }
            let charts = tally
                .into_iter()
                .map(|t| {
                    let mut c: Vec<(u32, u32)> = t.into_iter().collect();
                    c.sort_by_key(|&(i, n)| (std::cmp::Reverse(n), i));
                    c.truncate(*keep);
                    c
                })
                .collect();
            segs.push(Segments {
                name: name.clone(),
                ptr: f.ptr.clone(),
                values: f.values.clone(),
                charts,
            });
        }
        Ok(Catalog {
            n_items,
            n_users,
            counts,
            by_popularity,
            popularity_rank,
            recent,
            age,
            hist_ptr,
            hist,
            categories: cats,
            segments: segs,
        })
    }

    /// A training user's history, oldest first.
    pub fn history(&self, user: u32) -> &[u32] {
        let u = user as usize;
        if u + 1 >= self.hist_ptr.len() {
            return &[];
        }
        &self.hist[self.hist_ptr[u]..self.hist_ptr[u + 1]]
    }

    /// The category field named `field` (`None`: the first one built, the primary category).
    pub fn categories(&self, field: Option<&str>) -> Option<&Categories> {
        match field {
            None => self.categories.first(),
            Some(n) => self.categories.iter().find(|c| c.name == n),
        }
    }

    /// The segment field named `name`.
    pub fn segments(&self, name: &str) -> Option<&Segments> {
        self.segments.iter().find(|s| s.name == name)
    }
}
