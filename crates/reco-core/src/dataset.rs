//! A dataset: interactions with their id maps, metadata and sessions.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::features::FeatureTable;
use crate::ids::IdMap;
use crate::interactions::{DuplicateReport, Interactions};
use crate::sessions::Sessions;

/// Whether values are ratings to predict or weights of implicit signals.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Feedback {
    /// Ratings on a scale; rating models and RMSE/MAE apply.
    Explicit,
    /// Presence (and optionally strength) of an interaction.
    Implicit,
}

/// What loading did besides producing rows: merged duplicates and skipped rows.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct LoadReport {
    /// Rows read from the interaction file(s), before merging.
    pub rows_read: usize,
    /// Duplicate merging.
    pub duplicates: DuplicateReport,
    /// Rows skipped as malformed (only with skip-bad-rows).
    pub skipped_rows: usize,
    /// The first few skipped rows' errors.
    pub skipped_examples: Vec<String>,
    /// Rows dropped by the positive threshold.
    pub below_threshold: usize,
    /// Metadata rows whose id the interactions do not have and that were skipped.
    pub unknown_metadata_ids: usize,
}

/// Everything a model may learn from, in one dense id space.
///
/// Id maps and metadata sit behind `Arc` so that the folds of a split share them instead of
/// copying them.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// Human-readable name (file or preset).
    pub name: String,
    /// User ids.
    pub users: Arc<IdMap>,
    /// Item ids.
    pub items: Arc<IdMap>,
    /// The interaction matrix, `users.len() × items.len()`.
    pub interactions: Interactions,
    /// Explicit ratings or implicit signals.
    pub feedback: Feedback,
    /// Item metadata, if loaded.
    pub item_features: Option<Arc<FeatureTable>>,
    /// User metadata, if loaded.
    pub user_features: Option<Arc<FeatureTable>>,
    /// Sessions, if loaded.
    pub sessions: Option<Arc<Sessions>>,
    /// What loading did.
    pub report: LoadReport,
}

impl Dataset {
    /// Number of users.
    pub fn n_users(&self) -> usize {
        self.interactions.n_users()
    }

    /// Number of items.
    pub fn n_items(&self) -> usize {
        self.interactions.n_items()
    }

    /// The same dataset with other interactions (a fold of a split); everything else is shared.
    pub fn with_interactions(&self, interactions: Interactions) -> Dataset {
        Dataset {
            name: self.name.clone(),
            users: self.users.clone(),
            items: self.items.clone(),
            interactions,
            feedback: self.feedback,
            item_features: self.item_features.clone(),
            user_features: self.user_features.clone(),
            sessions: self.sessions.clone(),
            report: self.report.clone(),
        }
    }

    /// Summary statistics for `reco data inspect`.
    pub fn stats(&self) -> DatasetStats {
        let m = &self.interactions;
        let counts = m.item_counts();
        let mut sorted: Vec<u32> = counts.clone();
        sorted.sort_unstable_by(|a, b| b.cmp(a));
        let head = sorted.len().div_ceil(5);
        let head_sum: u64 = sorted[..head].iter().map(|&c| c as u64).sum();
        let total: u64 = sorted.iter().map(|&c| c as u64).sum();
        let user_lens: Vec<usize> = (0..m.n_users() as u32).map(|u| m.user_len(u)).collect();
        let mut histogram = Vec::new();
        if self.feedback == Feedback::Explicit {
            let mut bins: std::collections::BTreeMap<i64, usize> = Default::default();
            for &v in m.values() {
                // Bins of 0.5 cover the 1–5 star and the 0.5–5 half-star scales alike.
                *bins.entry((v as f64 * 2.0).round() as i64).or_default() += 1;
            }
            histogram = bins.into_iter().map(|(b, c)| (b as f64 / 2.0, c)).collect();
        }
        let (mut min_ts, mut max_ts) = (None, None);
        if let Some(ts) = m.timestamps() {
            min_ts = ts.iter().min().copied();
            max_ts = ts.iter().max().copied();
        }
        DatasetStats {
            name: self.name.clone(),
            users: m.n_users(),
            items: m.n_items(),
            interactions: m.nnz(),
            density: m.density(),
            feedback: self.feedback,
            users_without_interactions: user_lens.iter().filter(|&&l| l == 0).count(),
            items_without_interactions: counts.iter().filter(|&&c| c == 0).count(),
            min_user_interactions: user_lens.iter().copied().min().unwrap_or(0),
            median_user_interactions: median(&user_lens),
            max_user_interactions: user_lens.iter().copied().max().unwrap_or(0),
            top20_item_share: if total == 0 {
                0.0
            } else {
                head_sum as f64 / total as f64
            },
            rating_histogram: histogram,
            min_timestamp: min_ts,
            max_timestamp: max_ts,
            item_metadata_fields: self
                .item_features
                .as_ref()
                .map(|f| field_names(f))
                .unwrap_or_default(),
            user_metadata_fields: self
                .user_features
                .as_ref()
                .map(|f| field_names(f))
                .unwrap_or_default(),
            sessions: self.sessions.as_ref().map_or(0, |s| s.len()),
            memory_bytes: m.heap_bytes(),
            report: self.report.clone(),
        }
    }
}

fn field_names(f: &FeatureTable) -> Vec<String> {
    let mut out = Vec::new();
    if f.titles.is_some() {
        out.push("title".to_string());
    }
    out.extend(
        f.categorical
            .iter()
            .map(|c| format!("{} (categorical)", c.name)),
    );
    out.extend(f.numeric.iter().map(|c| format!("{} (numeric)", c.name)));
    out.extend(f.text.iter().map(|c| format!("{} (text)", c.name)));
    out
}

fn median(xs: &[usize]) -> f64 {
    if xs.is_empty() {
        return 0.0;
    }
    let mut v = xs.to_vec();
    v.sort_unstable();
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2] as f64
    } else {
        (v[n / 2 - 1] + v[n / 2]) as f64 / 2.0
    }
}

/// Summary of a dataset, as printed by `reco data inspect`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct DatasetStats {
    /// Dataset name.
    pub name: String,
    /// Number of users.
    pub users: usize,
    /// Number of items (the catalogue, including items without interactions).
    pub items: usize,
    /// Stored interactions after duplicate merging.
    pub interactions: usize,
    /// interactions / (users × items).
    pub density: f64,
    /// Explicit or implicit.
    pub feedback: Feedback,
    /// Users with no interaction.
    pub users_without_interactions: usize,
    /// Items with no interaction (catalogue-only items).
    pub items_without_interactions: usize,
    /// Smallest history length.
    pub min_user_interactions: usize,
    /// Median history length.
    pub median_user_interactions: f64,
    /// Largest history length.
    pub max_user_interactions: usize,
    /// Share of interactions on the 20% most popular items (long-tail indicator).
    pub top20_item_share: f64,
    /// (bin, count) with bins of 0.5 rating points; empty for implicit data.
    pub rating_histogram: Vec<(f64, usize)>,
    /// Earliest timestamp.
    pub min_timestamp: Option<i64>,
    /// Latest timestamp.
    pub max_timestamp: Option<i64>,
    /// Item metadata fields.
    pub item_metadata_fields: Vec<String>,
    /// User metadata fields.
    pub user_metadata_fields: Vec<String>,
    /// Number of sessions.
    pub sessions: usize,
    /// Heap bytes of the interaction matrix.
    pub memory_bytes: usize,
    /// What loading did.
    pub report: LoadReport,
}
