//! Drift: the distribution of incoming events against the active version's training data.
//! Two fields are compared: the categories of the items acted on (an item with several counts
//! a share in each) and the items' popularity band in training (`head`: the 10% most trained-on
//! items, `mid`: the next 40%, `tail`: the rest, `new`: items the version has not seen). Each
//! field's drift is the population stability index, Σ (p − q) ln(p / q) over its buckets, of the
//! last `drift.window` positive events against the training events; above `drift.threshold` on
//! any field (with at least `drift.min_events` events in the window) the version is stale.

use std::collections::VecDeque;

use rustc_hash::FxHashMap;
use serde::Serialize;
use utoipa::ToSchema;

use crate::catalog::Catalog;
use crate::engine::Active;

/// Share given to a bucket that one side lacks, so that the index stays finite.
const FLOOR: f64 = 1e-4;

/// The training distributions of a version.
#[derive(Clone, Debug)]
pub struct Reference {
    /// Share of training events per category name (`none` for items without one).
    pub category: FxHashMap<String, f64>,
    /// Popularity band per model item (0 head, 1 mid, 2 tail).
    band: Vec<u8>,
    /// Share of training events per band (head, mid, tail, new).
    pub band_share: [f64; 4],
}

const BANDS: [&str; 4] = ["head", "mid", "tail", "new"];

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
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&x, &y| count[y].cmp(&count[x]).then(x.cmp(&y)));
        let mut band = vec![2u8; n];
        for (rank, &i) in order.iter().enumerate() {
            let q = rank as f64 / n.max(1) as f64;
            band[i] = if q < 0.1 {
                0
            } else if q < 0.5 {
                1
            } else {
                2
            };
        }
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
        Reference {
            category,
            band,
            band_share,
        }
    }
}

/// The last positive events (catalogue indices), at most `cap`.
#[derive(Debug, Default)]
pub struct Window {
    items: VecDeque<u32>,
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
    pub fn push(&mut self, item: u32) {
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
    /// `category` or `popularity`.
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
    /// True when the window holds at least `drift.min_events` events and a field is above
    /// the threshold: the version no longer describes the traffic; retrain.
    pub stale: bool,
}

fn sorted(h: &FxHashMap<String, f64>) -> Vec<(String, f64)> {
    let mut v: Vec<(String, f64)> = h.iter().map(|(k, v)| (k.clone(), *v)).collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    v
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
            stale: false,
        };
    };
    let n = window.len().max(1) as f64;
    let mut category = FxHashMap::default();
    let mut band = FxHashMap::default();
    for &c in &window.items {
        add_categories(&mut category, cat, c, 1.0 / n);
        let b = a
            .model_item(c)
            .and_then(|m| r.band.get(m as usize).copied())
            .unwrap_or(3);
        *band.entry(BANDS[b as usize].to_string()).or_default() += 1.0 / n;
    }
    let ref_band: FxHashMap<String, f64> = BANDS
        .iter()
        .zip(r.band_share)
        .filter(|(_, s)| *s > 0.0)
        .map(|(k, s)| (k.to_string(), s))
        .collect();
    let fields = vec![
        FieldDrift {
            field: "category".into(),
            psi: psi(&r.category, &category),
            reference: sorted(&r.category),
            current: sorted(&category),
        },
        FieldDrift {
            field: "popularity".into(),
            psi: psi(&ref_band, &band),
            reference: sorted(&ref_band),
            current: sorted(&band),
        },
    ];
    let stale = window.len() >= min_events && fields.iter().any(|f| f.psi > threshold);
    DriftReport {
        model_version: Some(a.version),
        events: window.len(),
        fields,
        threshold,
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

    #[test]
    fn the_window_keeps_the_last_events() {
        let mut w = Window::new(3);
        for i in 0..5 {
            w.push(i);
        }
        assert_eq!(w.items, [2, 3, 4]);
        let mut off = Window::new(0);
        off.push(1);
        assert!(off.is_empty());
    }
}
