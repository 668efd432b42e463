//! Dense indices and the maps between external string ids and them.

use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Dense index of a user, `0..n_users`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct UserIdx(pub u32);

/// Dense index of an item, `0..n_items`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct ItemIdx(pub u32);

/// A bijection between external string ids and dense `u32` indices.
///
/// Indices are handed out in order of first appearance, so loading the same file twice gives the
/// same indices; models, run files and tie-breaking all rely on that.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(from = "Vec<String>", into = "Vec<String>")]
pub struct IdMap {
    ids: Vec<String>,
    index: FxHashMap<String, u32>,
}

impl IdMap {
    /// An empty map.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of ids.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// True when the map holds no id.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// The index of `id`, adding it when new.
    ///
    /// # Panics
    /// When more than `u32::MAX` ids are added, which no in-memory dataset reaches.
    pub fn get_or_insert(&mut self, id: &str) -> u32 {
        if let Some(&i) = self.index.get(id) {
            return i;
        }
        let i = u32::try_from(self.ids.len()).expect("more than 2^32 ids");
        self.ids.push(id.to_owned());
        self.index.insert(id.to_owned(), i);
        i
    }

    /// The index of `id`, if known.
    pub fn get(&self, id: &str) -> Option<u32> {
        self.index.get(id).copied()
    }

    /// The external id at `index`.
    ///
    /// # Panics
    /// When `index` is out of range; indices come from this map, so that is a programming error.
    pub fn id(&self, index: u32) -> &str {
        &self.ids[index as usize]
    }

    /// All ids in index order.
    pub fn ids(&self) -> &[String] {
        &self.ids
    }

    /// SHA-256 of the ids in order, to check that a model and a dataset speak the same id space.
    pub fn digest(&self) -> String {
        let mut h = Sha256::new();
        for id in &self.ids {
            h.update((id.len() as u64).to_le_bytes());
            h.update(id.as_bytes());
        }
        hex(&h.finalize())
    }
}

impl From<Vec<String>> for IdMap {
    fn from(ids: Vec<String>) -> Self {
        let index = ids
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i as u32))
            .collect();
        IdMap { ids, index }
    }
}

impl From<IdMap> for Vec<String> {
    fn from(m: IdMap) -> Self {
        m.ids
    }
}

/// Lower-case hexadecimal of a byte string.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indices_follow_first_appearance_and_round_trip() {
        let mut m = IdMap::new();
        assert_eq!(m.get_or_insert("b"), 0);
        assert_eq!(m.get_or_insert("a"), 1);
        assert_eq!(m.get_or_insert("b"), 0);
        assert_eq!(m.id(1), "a");
        assert_eq!(m.get("zz"), None);
        let back: IdMap = serde_json::from_str(&serde_json::to_string(&m).unwrap()).unwrap();
        assert_eq!(back.get("a"), Some(1));
        assert_eq!(back.digest(), m.digest());
    }

    #[test]
    fn digest_depends_on_order() {
        let a = IdMap::from(vec!["x".to_string(), "y".to_string()]);
        let b = IdMap::from(vec!["y".to_string(), "x".to_string()]);
        assert_ne!(a.digest(), b.digest());
    }
}
