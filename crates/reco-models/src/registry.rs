//! The registry of model kinds: the built-in kinds of this crate, and the families other
//! crates plug in (neural networks, pipelines) so that their heavy dependencies stay out of
//! the core build.

use std::sync::RwLock;

use reco_core::{Error, Result};

use crate::spec::KindEntry;

/// The kinds of this crate, in the order listings show them.
pub static BUILTIN: &[KindEntry] = &[
    KindEntry::of::<crate::baseline::RandomModel>(),
    KindEntry::of::<crate::baseline::Popularity>(),
    KindEntry::of::<crate::bias::Baseline>(),
    KindEntry::of::<crate::knn::UserKnn>(),
    KindEntry::of::<crate::knn::ItemKnn>(),
    KindEntry::of::<crate::slope_one::SlopeOne>(),
    KindEntry::of::<crate::coclustering::CoClustering>(),
    KindEntry::of::<crate::content::Content>(),
    KindEntry::of::<crate::covisit::Covisit>(),
    KindEntry::of::<crate::ease::Ease>(),
    KindEntry::of::<crate::rp3::Rp3>(),
    KindEntry::of::<crate::mf::svd::Svd>(),
    KindEntry::of::<crate::mf::svdpp::Svdpp>(),
    KindEntry::of::<crate::mf::bpmf::Bpmf>(),
    KindEntry::of::<crate::mf::nmf::Nmf>(),
    KindEntry::of::<crate::mf::als::Als>(),
    KindEntry::of::<crate::mf::ials::Ials>(),
    KindEntry::of::<crate::mf::bpr::Bpr>(),
    KindEntry::of::<crate::mf::lmf::Lmf>(),
    KindEntry::of::<crate::mf::hybrid::Hybrid>(),
    KindEntry::of::<crate::fm::Fm>(),
];

static FAMILIES: RwLock<Vec<&'static [KindEntry]>> = RwLock::new(Vec::new());

/// Plugs in a family of kinds defined in another crate. Registering the same list twice is
/// harmless; a name already taken (by a built-in kind, another family, or twice in the list)
/// is refused with [`Error::DuplicateKind`] and nothing is registered.
pub fn register(family: &'static [KindEntry]) -> Result<()> {
    let mut list = FAMILIES.write().unwrap_or_else(|e| e.into_inner());
    if list.iter().any(|f| std::ptr::eq(*f, family)) {
        return Ok(());
    }
    for (i, k) in family.iter().enumerate() {
        let taken = BUILTIN
            .iter()
            .chain(list.iter().flat_map(|f| f.iter()))
            .chain(&family[..i])
            .any(|e| e.name == k.name);
        if taken {
            return Err(Error::DuplicateKind { kind: k.name });
        }
    }
    list.push(family);
    Ok(())
}

/// Every known kind: the built-in ones, then each registered family's.
pub fn kinds() -> Vec<&'static KindEntry> {
    let list = FAMILIES.read().unwrap_or_else(|e| e.into_inner());
    BUILTIN
        .iter()
        .chain(list.iter().flat_map(|f| f.iter()))
        .collect()
}

/// The kind called `name`, or [`Error::UnknownKind`] listing the known ones.
pub fn lookup(name: &str) -> Result<&'static KindEntry> {
    let all = kinds();
    all.iter()
        .find(|k| k.name == name)
        .copied()
        .ok_or_else(|| Error::UnknownKind {
            kind: name.chars().take(80).collect(),
            known: all.iter().map(|k| k.name).collect::<Vec<_>>().join(", "),
        })
}

/// What a kind can do, as the words `reco models` prints: ranks, rates, similar-items,
/// embeddings, listwise.
pub fn abilities(c: crate::Capabilities) -> Vec<&'static str> {
    [
        (c.ranks, "ranks"),
        (c.rates, "rates"),
        (c.similar_items, "similar-items"),
        (c.embeddings, "embeddings"),
        (c.listwise, "listwise"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect()
}

/// A kind described for users (`reco models --json`, `reco.kinds()` in Python): its name,
/// summary, capabilities, renamed parameters and example specifications.
pub fn describe(k: &KindEntry) -> Result<serde_json::Value> {
    let examples = k.examples();
    // Some capabilities depend on the parameters (a classification FM ranks, a regression
    // one rates): list what any example can do.
    let any = examples
        .iter()
        .fold(crate::Capabilities::default(), |a, e| a | e.capabilities());
    let examples = examples
        .iter()
        .map(|e| e.to_value())
        .collect::<Result<Vec<_>>>()?;
    Ok(serde_json::json!({
        "kind": k.name,
        "summary": k.summary,
        "capabilities": abilities(any),
        "renamed": k.renamed.iter().map(|(old, new)| serde_json::json!({"old": old, "new": new})).collect::<Vec<_>>(),
        "examples": examples,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    static CLASH: &[KindEntry] = &[KindEntry::of::<crate::mf::svd::Svd>()];

    #[test]
    fn names_are_unique_and_collisions_are_refused() {
        let names: Vec<&str> = BUILTIN.iter().map(|k| k.name).collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        sorted.dedup();
        assert_eq!(sorted.len(), names.len(), "duplicate built-in name");
        assert!(matches!(
            register(CLASH),
            Err(Error::DuplicateKind { kind: "svd" })
        ));
        assert!(kinds().iter().filter(|k| k.name == "svd").count() == 1);
    }

    #[test]
    fn every_kind_has_examples_that_validate() {
        for k in BUILTIN {
            let ex = k.examples();
            assert!(!ex.is_empty(), "{} has no examples", k.name);
            for s in ex {
                assert_eq!(s.kind(), k.name);
                s.validate()
                    .unwrap_or_else(|e| panic!("{} example invalid: {e}", k.name));
            }
        }
    }
}
