//! Quality and bias of the lists served, over time: click-through and conversion, catalogue
//! coverage, popularity lift, exposure of head, mid and tail items, and click-through by user
//! group, per time bucket; and the alerts that compare the latest window with thresholds.
//!
//! The definitions are the offline audit's (`reco audit`, `reco_eval::fairness`), applied to
//! what was shown instead of to a test fold:
//! - popularity groups: the most popular items holding 20% of the popularity are `head`, the
//!   least popular holding 20% are `tail`, the rest `mid`;
//! - exposure: each group's share of position-discounted exposure, 1 / log₂(position + 1);
//! - popularity lift: per personal list, the mean popularity of its items over the mean
//!   popularity of the user's training history, minus one; averaged over the lists;
//! - user groups: the values of a user field, or else activity bands of the users by their
//!   training events (`heavy`, `medium`, `light` by the same 20% rule, `new` without any).
//!
//! This module is pure: the caller reads the impressions, joins their outcomes and supplies the
//! lookups (see `online::quality`).

use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;
use utoipa::ToSchema;

use crate::config::Monitoring;
use crate::experiment::{Rate, Reaction};
use crate::store::ImpressionRow;

/// Names of the popularity groups, by group number; the last, `new`, is an item the version
/// has not seen (drift's fourth bucket; exposure has the first three).
pub const GROUPS: [&str; 4] = ["head", "mid", "tail", "new"];

/// The quality of the lists served in one time bucket.
#[derive(Clone, Debug, Serialize, ToSchema, PartialEq)]
pub struct QualityPoint {
    /// Bucket start, Unix seconds (inclusive).
    pub start: i64,
    /// Bucket end, Unix seconds (exclusive).
    pub end: i64,
    /// Lists served.
    pub impressions: u64,
    /// Share of lists with a click.
    pub ctr: Rate,
    /// Share of lists with a conversion.
    pub conversion: Rate,
    /// Distinct items shown over the live catalogue's size.
    pub coverage: f64,
    /// Mean popularity lift of the personal lists whose user has a training history (absent
    /// without any).
    pub popularity_lift: Option<f64>,
    /// Share of position-discounted exposure per popularity group (`head`, `mid`, `tail`).
    pub exposure: Vec<(String, f64)>,
    /// Click-through per user group.
    pub by_group: Vec<(String, Rate)>,
}

/// What the computation needs besides the impressions: lookups into the catalogue and the
/// active version.
pub struct Lookups<'a> {
    /// Popularity group of an item id (`None`: not in the live catalogue).
    pub group: &'a dyn Fn(&str) -> Option<u8>,
    /// Popularity of an item id.
    pub popularity: &'a dyn Fn(&str) -> f64,
    /// Mean popularity of a user's training history (`None`: no history).
    pub history_popularity: &'a dyn Fn(&str) -> Option<f64>,
    /// A user's group.
    pub user_group: &'a dyn Fn(&str) -> String,
    /// Items in the live catalogue.
    pub live_items: usize,
}

/// Quality per bucket of `width` seconds from `start`, `buckets` of them; `rows` and
/// `reactions` are aligned, and rows outside the span are skipped.
pub fn series(
    rows: &[ImpressionRow],
    reactions: &[Reaction],
    start: i64,
    width: i64,
    buckets: usize,
    look: &Lookups<'_>,
) -> Vec<QualityPoint> {
    let width = width.max(1);
    let mut parts: Vec<Vec<usize>> = vec![Vec::new(); buckets];
    for (k, r) in rows.iter().enumerate() {
        if r.ts < start {
            continue;
        }
        let b = ((r.ts - start) / width) as usize;
        if let Some(p) = parts.get_mut(b) {
            p.push(k);
        }
    }
    parts
        .iter()
        .enumerate()
        .map(|(b, idx)| {
            let s = start.saturating_add(width.saturating_mul(b as i64));
            point(rows, reactions, idx, s, s.saturating_add(width), look)
        })
        .collect()
}

/// The quality of the rows at `idx`.
fn point(
    rows: &[ImpressionRow],
    reactions: &[Reaction],
    idx: &[usize],
    start: i64,
    end: i64,
    look: &Lookups<'_>,
) -> QualityPoint {
    let (mut clicks, mut conversions) = (0u64, 0u64);
    let mut distinct: FxHashSet<&str> = FxHashSet::default();
    let mut exposure = [0.0f64; 3];
    let (mut lift_sum, mut lifts) = (0.0f64, 0u64);
    let mut groups: FxHashMap<String, (u64, u64)> = FxHashMap::default();
    for &k in idx {
        let (row, re) = (&rows[k], &reactions[k]);
        clicks += u64::from(re.click);
        conversions += u64::from(re.conversion);
        for (p, item) in row.items.iter().enumerate() {
            distinct.insert(item);
            if let Some(g) = (look.group)(item) {
                exposure[usize::from(g.min(2))] += 1.0 / (p as f64 + 2.0).log2();
            }
        }
        if let Some(user) = row.user.as_deref() {
            let e = groups.entry((look.user_group)(user)).or_insert((0, 0));
            e.0 += u64::from(re.click);
            e.1 += 1;
            if row.route == "recommend" && !row.items.is_empty() {
                if let Some(h) = (look.history_popularity)(user).filter(|h| *h > 0.0) {
                    let shown = row.items.iter().map(|i| (look.popularity)(i)).sum::<f64>()
                        / row.items.len() as f64;
                    lift_sum += shown / h - 1.0;
                    lifts += 1;
                }
            }
        }
    }
    let n = idx.len() as u64;
    let total: f64 = exposure.iter().sum();
    let mut by_group: Vec<(String, Rate)> = groups
        .into_iter()
        .map(|(g, (c, n))| (g, Rate::of(c, n)))
        .collect();
    by_group.sort_by(|a, b| a.0.cmp(&b.0));
    QualityPoint {
        start,
        end,
        impressions: n,
        ctr: Rate::of(clicks, n),
        conversion: Rate::of(conversions, n),
        coverage: distinct.len() as f64 / look.live_items.max(1) as f64,
        popularity_lift: (lifts > 0).then(|| lift_sum / lifts as f64),
        exposure: GROUPS
            .iter()
            .zip(exposure)
            .map(|(g, e)| (g.to_string(), if total > 0.0 { e / total } else { 0.0 }))
            .collect(),
        by_group,
    }
}

/// One alert: a measure of the latest window against its threshold.
#[derive(Clone, Debug, Serialize, ToSchema, PartialEq)]
pub struct Alert {
    /// `ctr`, `coverage`, `popularity_lift`, `head_exposure` or `group_gap`.
    pub name: String,
    /// The measure (absent when the window cannot give it).
    pub value: Option<f64>,
    /// The configured threshold.
    pub threshold: f64,
    /// `min` (fires below) or `max` (fires above).
    pub kind: String,
    /// True when the window has enough lists and the measure is past the threshold.
    pub firing: bool,
}

/// The relative click-through gap between the best and the worst user group among those with
/// at least `min` lists: 1 − worst / best (0 when all are equal, absent with fewer than two
/// such groups or no clicks at all).
pub fn group_gap(by_group: &[(String, Rate)], min: u64) -> Option<f64> {
    let rates: Vec<f64> = by_group
        .iter()
        .filter(|(_, r)| r.trials >= min)
        .map(|(_, r)| r.rate)
        .collect();
    if rates.len() < 2 {
        return None;
    }
    let best = rates.iter().copied().fold(f64::MIN, f64::max);
    let worst = rates.iter().copied().fold(f64::MAX, f64::min);
    (best > 0.0).then(|| 1.0 - worst / best)
}

/// The configured alerts, evaluated on `p` (the latest window). An alert fires only when the
/// window holds at least `min_impressions` lists: a quiet hour is not a failing model.
pub fn alerts(cfg: &Monitoring, p: &QualityPoint) -> Vec<Alert> {
    let enough = p.impressions >= cfg.min_impressions;
    let head = p
        .exposure
        .iter()
        .find(|(g, _)| g == "head")
        .map(|(_, e)| *e);
    let measures: [(&str, Option<f64>, Option<f64>, bool); 5] = [
        ("ctr", Some(p.ctr.rate), cfg.min_ctr, true),
        ("coverage", Some(p.coverage), cfg.min_coverage, true),
        (
            "popularity_lift",
            p.popularity_lift,
            cfg.max_popularity_lift,
            false,
        ),
        ("head_exposure", head, cfg.max_head_exposure, false),
        (
            "group_gap",
            group_gap(&p.by_group, cfg.min_impressions),
            cfg.max_group_gap,
            false,
        ),
    ];
    measures
        .into_iter()
        .filter_map(|(name, value, threshold, is_min)| {
            let threshold = threshold?;
            let past = value.is_some_and(|v| if is_min { v < threshold } else { v > threshold });
            Some(Alert {
                name: name.to_string(),
                value,
                threshold,
                kind: if is_min { "min" } else { "max" }.to_string(),
                firing: enough && past,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ts: i64, user: &str, items: &[&str]) -> ImpressionRow {
        ImpressionRow {
            id: format!("r-{ts}-{user}"),
            user: Some(user.to_string()),
            ts,
            version: Some(1),
            experiment: None,
            arm: None,
            route: "recommend".into(),
            items: items.iter().map(|s| s.to_string()).collect(),
            teams: None,
            event_seq: 0,
        }
    }

    fn reaction(clicks: &[bool], conversion: bool) -> Reaction {
        Reaction {
            clicks: clicks.to_vec(),
            click: clicks.iter().any(|c| *c),
            conversion,
        }
    }

    /// Two buckets computed by hand. Items: a (head, popularity 8), b (mid, 4), c (tail, 1);
    /// user u's history has mean popularity 4, user v has none; the catalogue holds 4 items.
    #[test]
    fn a_series_by_hand() {
        let rows = vec![
            row(100, "u", &["a", "b"]),
            row(130, "v", &["c", "a"]),
            row(170, "u", &["b", "c"]),
            row(500, "u", &["a"]), // outside the span
        ];
        let reactions = vec![
            reaction(&[true, false], false),
            reaction(&[false, false], false),
            reaction(&[false, true], true),
            reaction(&[true], true),
        ];
        let pop = |i: &str| match i {
            "a" => 8.0,
            "b" => 4.0,
            _ => 1.0,
        };
        let look = Lookups {
            group: &|i| {
                Some(match i {
                    "a" => 0,
                    "b" => 1,
                    _ => 2,
                })
            },
            popularity: &pop,
            history_popularity: &|u| (u == "u").then_some(4.0),
            user_group: &|u| if u == "u" { "heavy" } else { "new" }.to_string(),
            live_items: 4,
        };
        let s = series(&rows, &reactions, 100, 50, 2, &look);
        assert_eq!(s.len(), 2);
        let (p, q) = (&s[0], &s[1]);
        assert_eq!((p.start, p.end, q.start, q.end), (100, 150, 150, 200));
        assert_eq!(
            (p.impressions, p.ctr.successes, p.conversion.successes),
            (2, 1, 0)
        );
        assert_eq!(
            (q.impressions, q.ctr.successes, q.conversion.successes),
            (1, 1, 1)
        );
        // Bucket 1 shows a, b, c of 4 items; bucket 2 shows b, c.
        assert!((p.coverage - 0.75).abs() < 1e-12 && (q.coverage - 0.5).abs() < 1e-12);
        // Exposure in bucket 1: a at 1 (weight 1) and at 2 (1/log2 3), b at 2, c at 1.
        let w2 = 1.0 / 3f64.log2();
        let total = 2.0 + 2.0 * w2;
        let want = [(1.0 + w2) / total, w2 / total, 1.0 / total];
        for ((g, e), w) in p.exposure.iter().zip(want) {
            assert!((e - w).abs() < 1e-12, "{g}: {e} against {w}");
        }
        // Lift: only u's lists count. Bucket 1: (8+4)/2 / 4 − 1 = 0.5; bucket 2: 2.5/4 − 1.
        assert!((p.popularity_lift.unwrap() - 0.5).abs() < 1e-12);
        assert!((q.popularity_lift.unwrap() + 0.375).abs() < 1e-12);
        assert_eq!(
            p.by_group
                .iter()
                .map(|(g, r)| (g.as_str(), r.successes, r.trials))
                .collect::<Vec<_>>(),
            [("heavy", 1, 1), ("new", 0, 1)]
        );
    }

    #[test]
    fn alerts_fire_past_their_thresholds_with_enough_lists() {
        let cfg = Monitoring {
            min_ctr: Some(0.2),
            min_coverage: Some(0.1),
            max_popularity_lift: Some(1.0),
            max_head_exposure: Some(0.6),
            max_group_gap: Some(0.3),
            min_impressions: 100,
            ..Monitoring::default()
        };
        let p = QualityPoint {
            start: 0,
            end: 1,
            impressions: 400,
            ctr: Rate::of(60, 400),
            conversion: Rate::of(0, 400),
            coverage: 0.05,
            popularity_lift: Some(0.5),
            exposure: vec![
                ("head".into(), 0.7),
                ("mid".into(), 0.2),
                ("tail".into(), 0.1),
            ],
            by_group: vec![
                ("a".into(), Rate::of(40, 200)),
                ("b".into(), Rate::of(20, 200)),
                ("c".into(), Rate::of(0, 10)),
            ],
        };
        let firing = |p: &QualityPoint| -> Vec<String> {
            alerts(&cfg, p)
                .into_iter()
                .filter(|a| a.firing)
                .map(|a| a.name)
                .collect()
        };
        // CTR 0.15 < 0.2, coverage 0.05 < 0.1, head 0.7 > 0.6, gap 1 − 0.1/0.2 = 0.5 > 0.3
        // (group c has too few lists to count); lift 0.5 is under 1.
        assert_eq!(
            firing(&p),
            ["ctr", "coverage", "head_exposure", "group_gap"]
        );
        assert_eq!(group_gap(&p.by_group, 100), Some(0.5));
        let quiet = QualityPoint {
            impressions: 99,
            ..p.clone()
        };
        assert!(firing(&quiet).is_empty());
        let off = Monitoring::default();
        assert!(alerts(&off, &p).is_empty());
    }
}
