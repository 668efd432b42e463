//! The items the server knows (from the items table and from events), in memory with an index
//! that never changes: metadata for filters and cold start, popularity, deletion marks.

use reco_core::IdMap;

use crate::store::ItemRow;

/// Every item ever seen, by catalogue index (append-only, so indices held elsewhere stay valid).
#[derive(Debug, Default)]
pub struct Catalog {
    ids: IdMap,
    titles: Vec<Option<String>>,
    categories: Vec<Vec<u32>>,
    vocab: IdMap,
    timestamps: Vec<i64>,
    deleted: Vec<bool>,
    n_deleted: usize,
    popularity: Vec<f64>,
}

impl Catalog {
    /// Number of catalogue entries (deleted ones included).
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when no item is known.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The index of an item id.
    pub fn get(&self, id: &str) -> Option<u32> {
        self.ids.get(id)
    }

    /// The id of an index.
    pub fn id(&self, i: u32) -> &str {
        self.ids.id(i)
    }

    /// The index of an id, adding the item (no metadata) if it is new; a deleted item that
    /// comes back in an event is live again.
    pub fn intern(&mut self, id: &str, ts: i64) -> u32 {
        let i = self.ids.get_or_insert(id);
        if i as usize == self.titles.len() {
            self.titles.push(None);
            self.categories.push(Vec::new());
            self.timestamps.push(ts);
            self.deleted.push(false);
            self.popularity.push(0.0);
        }
        if std::mem::replace(&mut self.deleted[i as usize], false) {
            self.n_deleted -= 1;
        }
        i
    }

    /// Sets an item's metadata.
    pub fn upsert(&mut self, row: &ItemRow, now: i64) -> u32 {
        let i = self.intern(&row.id, row.timestamp.unwrap_or(now)) as usize;
        self.titles[i] = row.title.clone();
        let mut cats: Vec<u32> = row
            .categories
            .iter()
            .map(|c| self.vocab.get_or_insert(c))
            .collect();
        cats.sort_unstable();
        cats.dedup();
        self.categories[i] = cats;
        if let Some(ts) = row.timestamp {
            self.timestamps[i] = ts;
        }
        i as u32
    }

    /// Marks an item deleted: it is never recommended again unless it comes back.
    pub fn delete(&mut self, i: u32) {
        if let Some(d) = self.deleted.get_mut(i as usize) {
            if !std::mem::replace(d, true) {
                self.n_deleted += 1;
            }
        }
        if let Some(p) = self.popularity.get_mut(i as usize) {
            *p = 0.0;
        }
    }

    /// True when some item was deleted (callers skip the scan otherwise).
    pub fn any_deleted(&self) -> bool {
        self.n_deleted > 0
    }

    /// True when the item was deleted.
    pub fn is_deleted(&self, i: u32) -> bool {
        self.deleted.get(i as usize).copied().unwrap_or(true)
    }

    /// Adds `delta` positive events to the item's popularity.
    pub fn add_popularity(&mut self, i: u32, delta: f64) {
        if let Some(p) = self.popularity.get_mut(i as usize) {
            *p = (*p + delta).max(0.0);
        }
    }

    /// Positive events of the item.
    pub fn popularity(&self, i: u32) -> f64 {
        self.popularity.get(i as usize).copied().unwrap_or(0.0)
    }

    /// Category indices of the item, sorted.
    pub fn categories(&self, i: u32) -> &[u32] {
        self.categories
            .get(i as usize)
            .map_or(&[], |c| c.as_slice())
    }

    /// Category names of the item.
    pub fn category_names(&self, i: u32) -> Vec<String> {
        self.categories(i)
            .iter()
            .map(|&c| self.vocab.id(c).to_string())
            .collect()
    }

    /// The index of a category name.
    pub fn category(&self, name: &str) -> Option<u32> {
        self.vocab.get(name)
    }

    /// The item's title.
    pub fn title(&self, i: u32) -> Option<&str> {
        self.titles.get(i as usize).and_then(|t| t.as_deref())
    }

    /// When the item appeared.
    pub fn timestamp(&self, i: u32) -> i64 {
        self.timestamps.get(i as usize).copied().unwrap_or(0)
    }

    /// True when the item passes a category filter: `wanted` (category indices; `None` for a
    /// name the catalogue does not have, which nothing matches) with `all` or any semantics.
    pub fn matches(&self, i: u32, wanted: &[Option<u32>], all: bool) -> bool {
        if wanted.is_empty() {
            return true;
        }
        let cats = self.categories(i);
        let has = |c: &Option<u32>| c.is_some_and(|c| cats.binary_search(&c).is_ok());
        if all {
            wanted.iter().all(has)
        } else {
            wanted.iter().any(has)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(id: &str, cats: &[&str]) -> ItemRow {
        ItemRow {
            id: id.into(),
            title: Some(id.to_uppercase()),
            categories: cats.iter().map(|c| c.to_string()).collect(),
            fields: Default::default(),
            timestamp: Some(7),
        }
    }

    #[test]
    fn indices_are_stable_and_filters_follow_any_or_all() {
        let mut c = Catalog::default();
        let a = c.upsert(&row("a", &["x", "y"]), 0);
        let b = c.upsert(&row("b", &["y"]), 0);
        assert_eq!((a, b), (0, 1));
        assert_eq!(c.intern("a", 9), 0);
        let x = c.category("x");
        let y = c.category("y");
        assert!(c.matches(a, &[x, y], true));
        assert!(!c.matches(b, &[x, y], true));
        assert!(c.matches(b, &[x, y], false));
        assert!(
            !c.matches(a, &[None], false),
            "unknown categories match nothing"
        );
        c.delete(b);
        assert!(c.is_deleted(b));
        c.intern("b", 1);
        assert!(!c.is_deleted(b), "an event brings a deleted item back");
        assert_eq!(c.title(a), Some("A"));
        assert_eq!(c.category_names(a), vec!["x", "y"]);
    }
}
