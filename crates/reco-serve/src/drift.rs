//! Drift: the distribution of incoming events against the active version's training data.
//! Four fields are compared:
//! - `category`: the categories of the items acted on (an item with several counts a share in
//!   each);
//! - `popularity`: the items' popularity group in training (the audit's rule: the most
//!   trained-on items holding 20% of the events are `head`, the least holding 20% `tail`, the
//!   rest `mid`), and `new` for items the version has not seen;
//! - `user_activity`: the acting users' activity band in training (`heavy`, `medium`, `light` by
//!   the same rule over users), and `new` for users the version has not seen;
//! - `value`: the events' training values (type weight × value), in the deciles of the
//!   training events' values (ties merge deciles, so binary feedback has two buckets).
//!
//! Each field's drift is the population stability index, Σ (p − q) ln(p / q) over its buckets,
//! of the last `drift.window` positive events against the training events; above
//! `drift.threshold` on any field (with at least `drift.min_events` events in the window) the
//! version is stale.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;
use serde::Serialize;
use utoipa::ToSchema;

use crate::catalog::Catalog;
use crate::engine::{Active, ACTIVITY};
use crate::quality::GROUPS;

/// Share given to a bucket that one side lacks, so that the index stays finite.
const FLOOR: f64 = 1e-4;

/// The training distributions of a version.
#[derive(Clone, Debug)]
pub struct Reference {
    /// Share of training events per category name (`none` for items without one).
    pub category: FxHashMap<String, f64>,
    /// Popularity group per model item (0 head, 1 mid, 2 tail).
    band: Vec<u8>,
    /// Share of training events per popularity group (head, mid, tail, new).
    pub band_share: [f64; 4],
    /// Activity band (0 heavy, 1 medium, 2 light) by hashed user id.
    activity: FxHashMap<u64, u8>,
    /// Share of training events per activity band (heavy, medium, light, new).
    pub activity_share: [f64; 4],
    /// Upper edges of the value buckets (distinct training deciles).
    edges: Vec<f32>,
    /// Share of training events per value bucket (`edges.len() + 1` of them).
    pub value_share: Vec<f64>,
}

/// Training values read for the deciles: a strided sample beyond this, so a version of 20M
/// events costs a sort of a million.
const VALUE_SAMPLE: usize = 1 << 20;

/// A user id's key in [`Reference`]; a 64-bit hash keeps the window small (16 bytes an event).
fn user_key(user: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = rustc_hash::FxHasher::default();
    user.hash(&mut h);
    h.finish()
}

/// Adds an item's categories to a histogram, each with an equal part of `w`.
fn add_categories(h: &mut FxHashMap<String, f64>, cat: &Catalog, item: u32, w: f64) {
    let names = cat.category_names(item);
    if names.is_empty() {
        *h.entry("none".into()).or_default() += w;
        return;
    }
    let part = w / names.len() as f64;
    for n in names {
        *h.entry(n).or_default() += part;
    }
}

/// The value bucket of `v`: the number of edges below it.
fn value_bucket(edges: &[f32], v: f32) -> usize {
    edges.partition_point(|e| *e < v)
}

fn value_label(edges: &[f32], b: usize) -> String {
    match (b.checked_sub(1).map(|k| edges[k]), edges.get(b)) {
        (None, Some(hi)) => format!("≤{hi}"),
        (Some(lo), Some(hi)) => format!("({lo}, {hi}]"),
        (Some(lo), None) => format!(">{lo}"),
        (None, None) => "all".into(),
    }
}

impl Reference {
    /// The training distributions of `a`, its items' categories read from `cat`.
    pub fn of(a: &Active, cat: &Catalog) -> Reference {
        let n = a.to_catalog.len();
        let mut count = vec![0u64; n];
        for &i in &a.loaded.history_items {
            if let Some(c) = count.get_mut(i as usize) {
                *c += 1;
            }
        }
        let band = reco_eval::fairness::popularity_groups(
            &count.iter().map(|&c| c as f64).collect::<Vec<f64>>(),
            0.2,
            0.2,
        );
        let total = count.iter().sum::<u64>().max(1) as f64;
        let mut band_share = [0.0; 4];
        let mut category = FxHashMap::default();
        for (i, &c) in count.iter().enumerate() {
            if c == 0 {
                continue;
            }
            band_share[band[i] as usize] += c as f64 / total;
            add_categories(&mut category, cat, a.to_catalog[i], c as f64 / total);
        }
        let bands = a.user_bands();
        let mut activity_share = [0.0; 4];
        let mut activity = FxHashMap::default();
        for (u, id) in a.loaded.users.ids().iter().enumerate() {
            let (b, len) = (bands[u], a.loaded.seen(u as u32).len());
            activity_share[usize::from(b)] += len as f64 / total;
            activity.insert(user_key(id), b);
        }
        // Single events' values when the version kept them: merged values (sums of repeated
        // events) are not what one incoming event carries.
        let values = if a.event_values.is_empty() {
            &a.values
        } else {
            &a.event_values
        };
        let step = values.len().div_ceil(VALUE_SAMPLE).max(1);
        let mut sample: Vec<f32> = values
            .iter()
            .step_by(step)
            .copied()
            .filter(|v| v.is_finite())
            .collect();
        sample.sort_by(f32::total_cmp);
        let mut edges: Vec<f32> = (1..10)
            .filter_map(|d| sample.get(d * sample.len() / 10).copied())
            .collect();
        edges.dedup();
        let mut value_share = vec![0.0; edges.len() + 1];
        for &v in &sample {
            value_share[value_bucket(&edges, v)] += 1.0 / sample.len() as f64;
        }
        Reference {
            category,
            band,
            band_share,
            activity,
            activity_share,
            edges,
            value_share,
        }
    }
}

/// A positive event as the window keeps it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Seen {
    /// Catalogue index of the item.
    pub item: u32,
    /// The user's key ([`user_key`] of the id).
    pub user: u64,
    /// The event's training value.
    pub value: f32,
}

impl Seen {
    /// An event of `user` on catalogue entry `item` with training value `value`.
    pub fn new(item: u32, user: &str, value: f32) -> Seen {
        Seen {
            item,
            user: user_key(user),
            value,
        }
    }
}

/// The last positive events, at most `cap`.
#[derive(Debug, Default)]
pub struct Window {
    items: VecDeque<Seen>,
    cap: usize,
}

impl Window {
    /// An empty window of `cap` events.
    pub fn new(cap: usize) -> Window {
        Window {
            items: VecDeque::with_capacity(cap.min(1 << 20)),
            cap,
        }
    }

    /// Adds an event, dropping the oldest beyond the capacity.
    pub fn push(&mut self, item: Seen) {
        if self.cap == 0 {
            return;
        }
        if self.items.len() == self.cap {
            self.items.pop_front();
        }
        self.items.push_back(item);
    }

    /// Events held.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// True when empty.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// The population stability index of `current` against `reference` (both shares over the
/// union of their buckets; a missing bucket counts as [`FLOOR`]).
pub fn psi(reference: &FxHashMap<String, f64>, current: &FxHashMap<String, f64>) -> f64 {
    let mut keys: Vec<&String> = reference.keys().chain(current.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.iter()
        .map(|k| {
            let p = current.get(*k).copied().unwrap_or(0.0).max(FLOOR);
            let q = reference.get(*k).copied().unwrap_or(0.0).max(FLOOR);
            (p - q) * (p / q).ln()
        })
        .sum()
}

/// One field's drift.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct FieldDrift {
    /// `category`, `popularity`, `user_activity` or `value`.
    pub field: String,
    /// Population stability index of the window against training.
    pub psi: f64,
    /// Training shares per bucket.
    pub reference: Vec<(String, f64)>,
    /// Window shares per bucket.
    pub current: Vec<(String, f64)>,
}

/// Drift of the incoming events against the active version.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DriftReport {
    /// The version compared with.
    pub model_version: Option<i64>,
    /// Positive events in the window.
    pub events: usize,
    /// Per field.
    pub fields: Vec<FieldDrift>,
    /// The threshold on each field's index.
    pub threshold: f64,
    /// Events the window needs before it may mark the version stale (`drift.min_events`):
    /// fewer make indices too noisy to act on.
    pub min_events: usize,
    /// True when the window holds at least `drift.min_events` events and a field is above
    /// the threshold: the version no longer describes the traffic; retrain.
    pub stale: bool,
}

fn sorted(h: &FxHashMap<String, f64>) -> Vec<(String, f64)> {
    let mut v: Vec<(String, f64)> = h.iter().map(|(k, v)| (k.clone(), *v)).collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    v
}

/// The buckets of `shares` under their `names`, empty ones left out.
fn named<S: AsRef<str>>(names: &[S], shares: &[f64]) -> FxHashMap<String, f64> {
    names
        .iter()
        .zip(shares)
        .filter(|(_, s)| **s > 0.0)
        .map(|(k, s)| (k.as_ref().to_string(), *s))
        .collect()
}

/// Compares `window` with the reference of `a`.
pub fn report(
    a: Option<&Active>,
    reference: Option<&Reference>,
    window: &Window,
    cat: &Catalog,
    threshold: f64,
    min_events: usize,
) -> DriftReport {
    let (Some(a), Some(r)) = (a, reference) else {
        return DriftReport {
            model_version: None,
            events: window.len(),
            fields: Vec::new(),
            threshold,
            min_events,
            stale: false,
        };
    };
    let n = window.len().max(1) as f64;
    let mut category = FxHashMap::default();
    let mut band = FxHashMap::default();
    let mut activity = FxHashMap::default();
    let mut value = FxHashMap::default();
    for s in &window.items {
        add_categories(&mut category, cat, s.item, 1.0 / n);
        let b = a
            .model_item(s.item)
            .and_then(|m| r.band.get(m as usize).copied())
            .unwrap_or(3);
        *band.entry(GROUPS[b as usize].to_string()).or_default() += 1.0 / n;
        let u = r.activity.get(&s.user).copied().unwrap_or(3);
        *activity
            .entry(ACTIVITY[u as usize].to_string())
            .or_default() += 1.0 / n;
        let v = value_label(&r.edges, value_bucket(&r.edges, s.value));
        *value.entry(v).or_default() += 1.0 / n;
    }
    let ref_band = named(&GROUPS, &r.band_share);
    let ref_activity = named(&ACTIVITY, &r.activity_share);
    let labels: Vec<String> = (0..r.value_share.len())
        .map(|b| value_label(&r.edges, b))
        .collect();
    let ref_value = named(&labels, &r.value_share);
    let field = |name: &str, reference: &FxHashMap<String, f64>, current| FieldDrift {
        field: name.into(),
        psi: psi(reference, current),
        reference: sorted(reference),
        current: sorted(current),
    };
    let fields = vec![
        field("category", &r.category, &category),
        field("popularity", &ref_band, &band),
        field("user_activity", &ref_activity, &activity),
        field("value", &ref_value, &value),
    ];
    let stale = window.len() >= min_events && fields.iter().any(|f| f.psi > threshold);
    DriftReport {
        model_version: Some(a.version),
        events: window.len(),
        fields,
        threshold,
        min_events,
        stale,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shares(v: &[(&str, f64)]) -> FxHashMap<String, f64> {
        v.iter().map(|(k, s)| (k.to_string(), *s)).collect()
    }

    /// By hand: equal distributions give 0; 0.5/0.5 against 0.8/0.2 gives
    /// 0.3·ln(0.8/0.5) + (−0.3)·ln(0.2/0.5) = 0.4159.
    #[test]
    fn psi_by_hand() {
        let a = shares(&[("x", 0.5), ("y", 0.5)]);
        assert_eq!(psi(&a, &a), 0.0);
        let b = shares(&[("x", 0.8), ("y", 0.2)]);
        assert!((psi(&a, &b) - 0.415_888).abs() < 1e-5, "{}", psi(&a, &b));
        // A bucket one side lacks counts at the floor, so a new category weighs heavily.
        let c = shares(&[("x", 0.35), ("y", 0.35), ("z", 0.3)]);
        assert!(psi(&a, &c) > 2.0);
    }

    /// Deciles with ties: ratings 1..5 in shares 10/10/30/30/20% give the edges 2, 3, 4, 5
    /// (the first decile is 2) and buckets ≤2, (2, 3], (3, 4], (4, 5].
    #[test]
    fn value_buckets_merge_tied_deciles() {
        let edges = [2.0f32, 3.0, 4.0, 5.0];
        let got: Vec<usize> = [1.0f32, 2.0, 2.5, 3.0, 4.0, 5.0, 6.0]
            .iter()
            .map(|&v| value_bucket(&edges, v))
            .collect();
        assert_eq!(got, [0, 0, 1, 1, 2, 3, 4]);
        assert_eq!(value_label(&edges, 0), "≤2");
        assert_eq!(value_label(&edges, 2), "(3, 4]");
        assert_eq!(value_label(&edges, 4), ">5");
        assert_eq!(value_label(&[], 0), "all");
    }

    #[test]
    fn the_window_keeps_the_last_events() {
        let mut w = Window::new(3);
        for i in 0..5 {
            w.push(Seen::new(i, "u", 1.0));
        }
        assert_eq!(
            w.items.iter().map(|s| s.item).collect::<Vec<_>>(),
            [2, 3, 4]
        );
        let mut off = Window::new(0);
        off.push(Seen::new(1, "u", 1.0));
        assert!(off.is_empty());
    }
}
