//! Answers: the active model version with its maps to the catalogue, and the recommendation
//! logic around it (seen and rejected items out, new events folded in, new items by category,
//! popular items for users nobody knows, category filters, pages).

use reco_core::explain::Reason;
use reco_core::model::{Filter, Query};
use reco_core::topk::{rank_cmp, Scored};
use reco_core::{DuplicatePolicy, ErrorCategory};
use reco_models::LoadedModel;
use rustc_hash::FxHashMap;

use crate::catalog::Catalog;
use crate::error::{Result, ServeError};
use crate::live::UserLive;

const NONE: u32 = u32::MAX;

/// Names of the user activity bands of [`Active::user_bands`], by band number; the last,
/// `new`, is a user the version has not seen.
pub const ACTIVITY: [&str; 4] = ["heavy", "medium", "light", "new"];

/// The model version that answers, with what it needs beyond the model.
pub struct Active {
    /// Version number.
    pub version: i64,
    /// Events up to this sequence number were in its training data.
    pub trained_through: i64,
    /// The forget clock when its data was read (users forgotten later are masked).
    pub forget_clock: i64,
    /// The model and its id maps.
    pub loaded: LoadedModel,
    /// Training value of each history entry (aligned with `loaded.history_items`).
    pub values: Vec<f32>,
    /// Events behind each training value (`merge = "mean"` only; else empty).
    pub counts: Vec<f32>,
    /// A sample of single training events' values (empty for older artifacts).
    pub event_values: Vec<f32>,
    /// Catalogue index of each model item.
    pub to_catalog: Vec<u32>,
    /// Model index of each catalogue entry that existed at activation ([`NONE`] if not in the
    /// model); later entries are all new.
    pub from_catalog: Vec<u32>,
    /// Catalogue entries at activation that the model does not have.
    pub cold: Vec<u32>,
}

impl Active {
    /// Builds the maps against the catalogue (interning model items it lacks as deleted: the
    /// store no longer has them).
    pub fn new(
        version: i64,
        trained_through: i64,
        forget_clock: i64,
        artifact: crate::trainer::Loaded,
        catalog: &mut Catalog,
    ) -> Result<Active> {
        let crate::trainer::Loaded {
            model: loaded,
            values,
            counts,
            event_values,
        } = artifact;
        let mut to_catalog = Vec::with_capacity(loaded.items.len());
        for id in loaded.items.ids() {
            let i = match catalog.get(id) {
                Some(i) => i,
                None => {
                    let i = catalog.intern(id, 0);
                    catalog.delete(i);
                    i
                }
            };
            to_catalog.push(i);
        }
        let mut from_catalog = vec![NONE; catalog.len()];
        for (m, &c) in to_catalog.iter().enumerate() {
            from_catalog[c as usize] = m as u32;
        }
        let cold = (0..catalog.len() as u32)
            .filter(|&c| from_catalog[c as usize] == NONE)
            .collect();
        Ok(Active {
            version,
            trained_through,
            forget_clock,
            loaded,
            values,
            counts,
            event_values,
            to_catalog,
            from_catalog,
            cold,
        })
    }

    /// Activity band of every model user, by the audit's popularity rule over users: the
    /// heaviest users holding 20% of the training events are 0 (`heavy`), the lightest holding
    /// 20% are 2 (`light`), the rest 1 (`medium`); names in [`ACTIVITY`].
    pub fn user_bands(&self) -> Vec<u8> {
        let lens: Vec<f64> = self
            .loaded
            .history_ptr
            .windows(2)
            .map(|w| w[1].saturating_sub(w[0]) as f64)
            .collect();
        reco_eval::fairness::popularity_groups(&lens, 0.2, 0.2)
    }

    /// The model index of a catalogue entry.
    pub fn model_item(&self, c: u32) -> Option<u32> {
        self.from_catalog
            .get(c as usize)
            .copied()
            .filter(|&m| m != NONE)
    }

    fn history(&self, u: u32) -> (&[u32], &[f32]) {
        let r = self.history_range(u);
        (&self.loaded.history_items[r.clone()], &self.values[r])
    }

    fn history_range(&self, u: u32) -> std::ops::Range<usize> {
        self.loaded.history_ptr[u as usize] as usize
            ..self.loaded.history_ptr[u as usize + 1] as usize
    }

    /// Events behind each of user `u`'s training values (1 each unless `mean` kept counts).
    fn history_counts(&self, u: u32) -> Vec<f32> {
        let r = self.history_range(u);
        if self.counts.is_empty() {
            vec![1.0; r.len()]
        } else {
            self.counts[r].to_vec()
        }
    }

    /// Catalogue entries that are not in the model (new since it was trained, or without
    /// training events).
    fn cold_items(&self, catalog: &Catalog) -> impl Iterator<Item = u32> + '_ {
        let later = self.from_catalog.len() as u32..catalog.len() as u32;
        self.cold.iter().copied().chain(later)
    }
}

/// What a caller asks for.
#[derive(Clone, Debug, Default)]
pub struct Ask {
    /// How many items.
    pub n: usize,
    /// How many to skip (pages).
    pub offset: usize,
    /// Category filter.
    pub categories: Vec<String>,
    /// Items must have every category (else any).
    pub all: bool,
    /// Item ids never to return.
    pub exclude: Vec<String>,
    /// Return items the user has interacted with.
    pub include_seen: bool,
    /// Add reasons.
    pub explain: bool,
}

/// One recommended item.
#[derive(Clone, Debug)]
pub struct Pick {
    /// Catalogue index.
    pub item: u32,
    /// Score (the model's scale; category affinity for new items; event count for popular).
    pub score: f32,
    /// The item is newer than the model and was placed by its categories.
    pub new: bool,
    /// Reasons, when asked.
    pub reasons: Vec<serde_json::Value>,
}

/// An answer.
#[derive(Clone, Debug)]
pub struct Answer {
    /// Items, best first.
    pub items: Vec<Pick>,
    /// Why the answer is not the model's personal one: `popular` (nobody knows the user) or
    /// `history` (the user is not in the model; their recent events were folded in).
    pub cold_start: Option<&'static str>,
}

/// How a new event combines with a pair's value so far (`old`: the value and how many events
/// it merges), as training merges them.
fn combine(policy: DuplicatePolicy, old: Option<(f32, f32)>, new: f32) -> (f32, f32) {
    match (policy, old) {
        (_, None) => (new, 1.0),
        (DuplicatePolicy::Sum, Some((o, n))) => (o + new, n + 1.0),
        (DuplicatePolicy::Last, Some((_, n))) => (new, n + 1.0),
        (DuplicatePolicy::First, Some((o, n))) => (o, n + 1.0),
        (DuplicatePolicy::Max, Some((o, n))) => (o.max(new), n + 1.0),
        (DuplicatePolicy::Mean, Some((o, n))) => ((o * n + new) / (n + 1.0), n + 1.0),
    }
}

/// The category filter as catalogue category indices, without repeats: with `all`, one unknown
/// category means nothing matches (`[None]`); with any, unknown ones are dropped (all unknown:
/// `[None]`).
fn wanted(catalog: &Catalog, ask: &Ask) -> Vec<Option<u32>> {
    if ask.categories.is_empty() {
        return Vec::new();
    }
    let found: Vec<Option<u32>> = ask.categories.iter().map(|c| catalog.category(c)).collect();
    if ask.all && found.iter().any(Option::is_none) {
        return vec![None];
    }
    let mut known: Vec<u32> = found.into_iter().flatten().collect();
    known.sort_unstable();
    known.dedup();
    if known.is_empty() {
        return vec![None];
    }
    known.into_iter().map(Some).collect()
}

/// Everything the recommendation of one user needs besides the model.
pub struct UserContext<'a> {
    /// External id.
    pub user: &'a str,
    /// Live state.
    pub live: &'a UserLive,
    /// True when the user was forgotten after this model was trained: the model's memory of
    /// them is not used.
    pub masked: bool,
}

/// Recommends for a user.
pub fn recommend_user(
    active: Option<&Active>,
    catalog: &Catalog,
    cx: &UserContext<'_>,
    ask: &Ask,
    policy: DuplicatePolicy,
    cold_share: f64,
) -> Result<Answer> {
    let want = wanted(catalog, ask);
    let mut excluded_cat: Vec<u32> = cx.live.hidden.clone();
    excluded_cat.extend(ask.exclude.iter().filter_map(|id| catalog.get(id)));
    if !ask.include_seen {
        excluded_cat.extend(cx.live.recent.iter().map(|e| e.item));
    }
    excluded_cat.sort_unstable();
    excluded_cat.dedup();
    let Some(a) = active else {
        return Ok(Answer {
            items: popular(catalog, &excluded_cat, &want, ask),
            cold_start: Some("popular"),
        });
    };
    let known = if cx.masked {
        None
    } else {
        a.loaded.users.get(cx.user)
    };
    if let Some(u) = known {
        if !ask.include_seen {
            excluded_cat.extend(a.history(u).0.iter().map(|&m| a.to_catalog[m as usize]));
        }
    }
    excluded_cat.sort_unstable();
    excluded_cat.dedup();

    // The query: the model's own user, or a history with the new events folded in.
    let mut history: Vec<(u32, f32)> = Vec::new();
    if !cx.live.recent.is_empty() {
        let mut merged: FxHashMap<u32, (f32, f32)> = FxHashMap::default();
        if let Some(u) = known {
            let (items, values) = a.history(u);
            let counts = a.history_counts(u);
            merged.extend(
                items
                    .iter()
                    .copied()
                    .zip(values.iter().copied().zip(counts.iter().copied())),
            );
        }
        for e in &cx.live.recent {
            if let Some(m) = a.model_item(e.item) {
                // Unless signals are summed, a negative event only hides the item.
                if e.negative() && policy != DuplicatePolicy::Sum {
                    continue;
                }
                let old = merged.get(&m).copied();
                merged.insert(m, combine(policy, old, e.weight));
            }
        }
        let hidden = &cx.live.hidden;
        history = merged
            .into_iter()
            .filter(|&(m, (v, _))| {
                v > 0.0 && hidden.binary_search(&a.to_catalog[m as usize]).is_err()
            })
            .map(|(m, (v, _))| (m, v))
            .collect();
        history.sort_unstable_by_key(|&(m, _)| m);
    }
    let query = match (known, history.is_empty()) {
        (Some(u), true) => Query::user(u),
        (u, false) => Query {
            user: u,
            history: &history,
        },
        (None, true) => {
            return Ok(Answer {
                items: popular(catalog, &excluded_cat, &want, ask),
                cold_start: Some("popular"),
            })
        }
    };
    let cold_start = known.is_none().then_some("history");

    let mut exclude: Vec<u32> = excluded_cat
        .iter()
        .filter_map(|&c| a.model_item(c))
        .collect();
    if catalog.any_deleted() {
        exclude.extend(
            a.to_catalog
                .iter()
                .enumerate()
                .filter(|(_, &c)| catalog.is_deleted(c))
                .map(|(m, _)| m as u32),
        );
    }
    exclude.sort_unstable();
    exclude.dedup();
    let allow: Option<Vec<u32>> = (!want.is_empty()).then(|| {
        (0..a.to_catalog.len() as u32)
            .filter(|&m| catalog.matches(a.to_catalog[m as usize], &want, ask.all))
            .collect()
    });
    let filter = Filter {
        exclude: &exclude,
        allow: allow.as_deref(),
    };
    let k = ask.offset + ask.n;
    let model = &a.loaded.model;
    let ranked = match model.recommend(&query, k, &filter) {
        Ok(r) => r,
        // A model that cannot score from a history answers for the user it knows, and a user it
        // does not know gets the popular items.
        Err(e) if e.category() == ErrorCategory::Unsupported && !history.is_empty() => {
            match known {
                Some(u) => model.recommend(&Query::user(u), k, &filter)?,
                None => {
                    return Ok(Answer {
                        items: popular(catalog, &excluded_cat, &want, ask),
                        cold_start: Some("popular"),
                    })
                }
            }
        }
        Err(e) => return Err(e.into()),
    };
    let mut picks: Vec<Pick> = ranked
        .iter()
        .map(|s| Pick {
            item: a.to_catalog[s.item as usize],
            score: s.score,
            new: false,
            reasons: Vec::new(),
        })
        .collect();
    if cold_share > 0.0 {
        let profile_items: Vec<u32> = history
            .iter()
            .map(|&(m, _)| a.to_catalog[m as usize])
            .chain(known.map_or(Vec::new(), |u| {
                a.history(u)
                    .0
                    .iter()
                    .map(|&m| a.to_catalog[m as usize])
                    .collect()
            }))
            .chain(
                cx.live
                    .recent
                    .iter()
                    .filter(|e| e.weight > 0.0)
                    .map(|e| e.item),
            )
            .collect();
        let cold = cold_by_category(a, catalog, &profile_items, &excluded_cat, &want, ask, k);
        picks = interleave(picks, cold, cold_share, k);
    }
    let mut items: Vec<Pick> = picks.into_iter().skip(ask.offset).take(ask.n).collect();
    if ask.explain {
        for p in &mut items {
            p.reasons = explain(a, catalog, &query, p)?;
        }
    }
    Ok(Answer { items, cold_start })
}

/// New items ranked by how much their categories overlap the user's history's categories.
fn cold_by_category(
    a: &Active,
    catalog: &Catalog,
    history: &[u32],
    excluded: &[u32],
    want: &[Option<u32>],
    ask: &Ask,
    k: usize,
) -> Vec<Pick> {
    let mut profile: FxHashMap<u32, f32> = FxHashMap::default();
    for &c in history {
        for &cat in catalog.categories(c) {
            *profile.entry(cat).or_default() += 1.0;
        }
    }
    if profile.is_empty() {
        return Vec::new();
    }
    let norm = history.len().max(1) as f32;
    let mut out: Vec<(Scored, i64)> = a
        .cold_items(catalog)
        .filter(|&c| {
            !catalog.is_deleted(c)
                && excluded.binary_search(&c).is_err()
                && catalog.matches(c, want, ask.all)
        })
        .filter_map(|c| {
            let s: f32 = catalog
                .categories(c)
                .iter()
                .filter_map(|cat| profile.get(cat))
                .sum();
            (s > 0.0).then_some((
                Scored {
                    item: c,
                    score: s / norm,
                },
                catalog.timestamp(c),
            ))
        })
        .collect();
    // Best affinity first, then the newest, then by index.
    out.sort_by(|x, y| {
        rank_cmp(&Scored { item: 0, ..x.0 }, &Scored { item: 0, ..y.0 })
            .then(y.1.cmp(&x.1))
            .then(x.0.item.cmp(&y.0.item))
    });
    out.truncate(k);
    out.into_iter()
        .map(|(s, _)| Pick {
            item: s.item,
            score: s.score,
            new: true,
            reasons: Vec::new(),
        })
        .collect()
}

/// Places new items at every `1/share`-th position (the first at position `1/share - 1`), the
/// model's items elsewhere, until `k`.
fn interleave(model: Vec<Pick>, cold: Vec<Pick>, share: f64, k: usize) -> Vec<Pick> {
    if cold.is_empty() {
        return model;
    }
    let step = ((1.0 / share).round() as usize).max(1);
    let mut m = model.into_iter();
    let mut c = cold.into_iter();
    let mut out = Vec::with_capacity(k);
    while out.len() < k {
        let slot_is_cold = (out.len() + 1) % step == 0;
        let next = if slot_is_cold {
            c.next().or_else(|| m.next())
        } else {
            m.next().or_else(|| c.next())
        };
        match next {
            Some(p) => out.push(p),
            None => break,
        }
    }
    out
}

/// The most popular items (positive events), newest first among equals.
pub fn popular(catalog: &Catalog, excluded: &[u32], want: &[Option<u32>], ask: &Ask) -> Vec<Pick> {
    rank_catalog(catalog, excluded, want, ask, |c| {
        catalog.popularity(c) as f32
    })
}

/// The newest items.
pub fn latest(catalog: &Catalog, excluded: &[u32], want: &[Option<u32>], ask: &Ask) -> Vec<Pick> {
    rank_catalog(catalog, excluded, want, ask, |c| {
        catalog.timestamp(c) as f32
    })
    .into_iter()
    .map(|mut p| {
        p.score = catalog.timestamp(p.item) as f32;
        p
    })
    .collect()
}

fn rank_catalog(
    catalog: &Catalog,
    excluded: &[u32],
    want: &[Option<u32>],
    ask: &Ask,
    score: impl Fn(u32) -> f32,
) -> Vec<Pick> {
    let mut all: Vec<(f32, i64, u32)> = (0..catalog.len() as u32)
        .filter(|&c| {
            !catalog.is_deleted(c)
                && excluded.binary_search(&c).is_err()
                && catalog.matches(c, want, ask.all)
        })
        .map(|c| (score(c), catalog.timestamp(c), c))
        .collect();
    let k = (ask.offset + ask.n).min(all.len());
    let order = |x: &(f32, i64, u32), y: &(f32, i64, u32)| {
        y.0.total_cmp(&x.0).then(y.1.cmp(&x.1)).then(x.2.cmp(&y.2))
    };
    if k < all.len() && k > 0 {
        all.select_nth_unstable_by(k - 1, order);
    }
    all.truncate(k);
    all.sort_by(order);
    all.into_iter()
        .skip(ask.offset)
        .map(|(s, _, c)| Pick {
            item: c,
            score: s,
            new: false,
            reasons: Vec::new(),
        })
        .collect()
}

/// The filter arguments in catalogue terms, for routes without a user.
pub fn catalog_filter(catalog: &Catalog, ask: &Ask) -> (Vec<u32>, Vec<Option<u32>>) {
    let mut ex: Vec<u32> = ask
        .exclude
        .iter()
        .filter_map(|id| catalog.get(id))
        .collect();
    ex.sort_unstable();
    ex.dedup();
    (ex, wanted(catalog, ask))
}

/// Recommends for an anonymous session from its recent items.
pub fn recommend_session(
    active: Option<&Active>,
    catalog: &Catalog,
    items: &[String],
    ask: &Ask,
    cold_share: f64,
) -> Result<Answer> {
    let (mut excluded, want) = catalog_filter(catalog, ask);
    let session: Vec<u32> = items.iter().filter_map(|id| catalog.get(id)).collect();
    if !ask.include_seen {
        excluded.extend(&session);
        excluded.sort_unstable();
        excluded.dedup();
    }
    let live = UserLive::of_recent(
        session
            .iter()
            .enumerate()
            .map(|(k, &item)| crate::live::LiveEvent {
                item,
                weight: 1.0,
                seq: i64::MAX - (session.len() - k) as i64,
            })
            .collect(),
    );
    if active.is_none() || session.is_empty() {
        return Ok(Answer {
            items: popular(catalog, &excluded, &want, ask),
            cold_start: Some("popular"),
        });
    }
    let cx = UserContext {
        user: "",
        live: &live,
        masked: true,
    };
    let mut ask = ask.clone();
    ask.exclude
        .extend(excluded.iter().map(|&c| catalog.id(c).to_string()));
    let mut answer = recommend_user(active, catalog, &cx, &ask, DuplicatePolicy::Sum, cold_share)?;
    if answer.cold_start == Some("history") {
        answer.cold_start = None;
    }
    Ok(answer)
}

/// Items similar to one item, by the model's similar-items capability.
pub fn similar(a: &Active, catalog: &Catalog, item: &str, ask: &Ask) -> Result<Vec<Pick>> {
    let c = catalog
        .get(item)
        .filter(|&c| !catalog.is_deleted(c))
        .ok_or_else(|| ServeError::NotFound(format!("item {item:?} does not exist")))?;
    let Some(m) = a.model_item(c) else {
        return Err(ServeError::Unprocessable(format!(
            "item {item:?} is newer than model version {}: similar items come after the next training",
            a.version
        )));
    };
    let Some(sim) = a.loaded.model.as_similar_items() else {
        return Err(ServeError::Unprocessable(format!(
            "the model of version {} ({}) has no similar-items capability",
            a.version,
            a.loaded.model.spec().kind()
        )));
    };
    let (excluded, want) = catalog_filter(catalog, ask);
    // Ask for more than needed: deleted, excluded and filtered items are dropped afterwards.
    let extra = excluded.len() + 16;
    let k = ask.offset + ask.n;
    let mut want_k = k + extra;
    loop {
        let got = sim.similar_items(m, want_k)?;
        let exhausted = got.len() < want_k;
        let picks: Vec<Pick> = got
            .into_iter()
            .map(|s| (a.to_catalog[s.item as usize], s.score))
            .filter(|&(c2, _)| {
                c2 != c
                    && !catalog.is_deleted(c2)
                    && excluded.binary_search(&c2).is_err()
                    && catalog.matches(c2, &want, ask.all)
            })
            .map(|(item, score)| Pick {
                item,
                score,
                new: false,
                reasons: Vec::new(),
            })
            .collect();
        if picks.len() >= k || exhausted || want_k >= a.to_catalog.len() {
            return Ok(picks.into_iter().skip(ask.offset).take(ask.n).collect());
        }
        want_k = (want_k * 4).min(a.to_catalog.len());
    }
}

fn explain(
    a: &Active,
    catalog: &Catalog,
    q: &Query<'_>,
    p: &Pick,
) -> Result<Vec<serde_json::Value>> {
    use serde_json::json;
    if p.new {
        return Ok(vec![json!({
            "kind": "feature", "field": "category",
            "value": catalog.category_names(p.item).join(", "), "weight": p.score
        })]);
    }
    let Some(ex) = a.loaded.model.as_explain() else {
        return Ok(Vec::new());
    };
    let Some(m) = a.model_item(p.item) else {
        return Ok(Vec::new());
    };
    let reasons = ex.explain(q, m, 3)?;
    Ok(reasons
        .into_iter()
        .map(|r| match r {
            Reason::Item { item, weight } => json!({
                "kind": "item",
                "item": a.to_catalog.get(item as usize).map(|&c| catalog.id(c)),
                "weight": weight
            }),
            // Other users are never named: only how many.
            Reason::Users { users, weight } => {
                json!({"kind": "users", "count": users.len(), "weight": weight})
            }
            Reason::Feature {
                field,
                value,
                weight,
            } => json!({"kind": "feature", "field": field, "value": value, "weight": weight}),
            Reason::Source { source, rank } => {
                json!({"kind": "source", "source": source, "rank": rank})
            }
            Reason::Signal { name, weight } => {
                json!({"kind": "signal", "name": name, "weight": weight})
            }
            Reason::Popular { count } => json!({"kind": "popular", "count": count}),
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pick(item: u32, new: bool) -> Pick {
        Pick {
            item,
            score: 0.0,
            new,
            reasons: Vec::new(),
        }
    }

    #[test]
    fn new_items_take_every_fifth_slot_at_share_one_fifth() {
        let model: Vec<Pick> = (0..10).map(|i| pick(i, false)).collect();
        let cold: Vec<Pick> = (100..102).map(|i| pick(i, true)).collect();
        let out = interleave(model, cold, 0.2, 10);
        let ids: Vec<u32> = out.iter().map(|p| p.item).collect();
        assert_eq!(ids, vec![0, 1, 2, 3, 100, 4, 5, 6, 7, 101]);
    }

    #[test]
    fn interleaving_fills_from_the_other_list_when_one_runs_out() {
        let out = interleave(
            vec![pick(0, false)],
            vec![pick(9, true), pick(8, true)],
            0.5,
            5,
        );
        let ids: Vec<u32> = out.iter().map(|p| p.item).collect();
        assert_eq!(ids, vec![0, 9, 8]);
    }

    #[test]
    fn events_combine_as_the_training_merge_does() {
        assert_eq!(
            combine(DuplicatePolicy::Sum, Some((2.0, 1.0)), 3.0),
            (5.0, 2.0)
        );
        assert_eq!(combine(DuplicatePolicy::Last, Some((2.0, 1.0)), 3.0).0, 3.0);
        assert_eq!(
            combine(DuplicatePolicy::First, Some((2.0, 1.0)), 3.0).0,
            2.0
        );
        assert_eq!(combine(DuplicatePolicy::Max, Some((2.0, 1.0)), 1.0).0, 2.0);
        assert_eq!(combine(DuplicatePolicy::Sum, None, -1.0), (-1.0, 1.0));
        // Three ratings averaging 4, then a 1: the mean of all four, as training computes it.
        assert_eq!(
            combine(DuplicatePolicy::Mean, Some((4.0, 3.0)), 1.0),
            (3.25, 4.0)
        );
    }
}
