//! Every renamed parameter of every kind, nested paths included: the old name is read with a
//! warning that names both, the value lands under the new name, and giving both is an error.

use reco_models::{registry, ModelSpec};
use serde_json::Value;

/// The object that holds the last segment of `path` (`name[]` walks into the first element
/// of an array that holds the rest of the path).
fn holder<'a>(v: &'a mut Value, path: &[&str]) -> Option<&'a mut serde_json::Map<String, Value>> {
    let (head, rest) = path.split_first()?;
    if rest.is_empty() {
        return v.as_object_mut().filter(|o| o.contains_key(*head));
    }
    match head.strip_suffix("[]") {
        Some(name) => v
            .get_mut(name)?
            .as_array_mut()?
            .iter_mut()
            .find_map(|x| holder(x, rest)),
        None => holder(v.get_mut(*head)?, rest),
    }
}

/// Examples of each kind, plus specs that hold the optional parts some renames live in.
fn specs_of(kind: &reco_models::KindEntry) -> Vec<Value> {
    let mut out: Vec<Value> = kind
        .examples()
        .iter()
        .map(|s| s.to_value().expect("value"))
        .collect();
    if kind.name == "svd" {
        out.push(serde_json::json!({"model": "svd", "dp": {"noise": 1.0, "batch_size": 700}}));
        let mut groups = serde_json::json!({"model": "svd"});
        for g in ["bu", "bi", "pu", "qi"] {
            groups[format!("learning_rate_{g}")] = 0.01.into();
            groups[format!("regularization_{g}")] = 0.03.into();
        }
        out.push(groups);
    }
    out
}

#[test]
fn every_old_name_is_read_with_a_warning_and_stored_under_the_new_one() {
    reco_neural::register().expect("neural");
    reco_pipeline::register().expect("composites");
    let mut checked = 0;
    for kind in registry::kinds() {
        for &(old, new) in kind.renamed {
            let path: Vec<&str> = old.split('.').collect();
            let mut new_path = path.clone();
            *new_path.last_mut().expect("path") = new;
            // A spec where the new name holds a value: move it to the old name.
            let (leaf, old_leaf) = (new, path[path.len() - 1]);
            let found = specs_of(kind).into_iter().find_map(|mut v| {
                let want = ModelSpec::from_value(v.clone()).expect("valid spec");
                let o = holder(&mut v, &new_path)?;
                let x = o.remove(leaf).filter(|x| !x.is_null())?;
                o.insert(old_leaf.to_string(), x.clone());
                Some((v, want, x))
            });
            let (old_spec, want, x) =
                found.unwrap_or_else(|| panic!("{}: no spec holds `{new}` for `{old}`", kind.name));
            let (got, warnings) =
                reco_core::warning::capture(|| ModelSpec::from_value(old_spec.clone()));
            let got = got.unwrap_or_else(|e| panic!("{}: `{old}` refused: {e}", kind.name));
            assert_eq!(got, want, "{}: `{old}` did not land on `{new}`", kind.name);
            assert!(
                warnings.len() == 1 && warnings[0].contains(old) && warnings[0].contains(new),
                "{}: {warnings:?}",
                kind.name
            );
            // Both names at once is ambiguous.
            let mut both = old_spec;
            let mut old_path = new_path.clone();
            *old_path.last_mut().expect("path") = old_leaf;
            if let Some(o) = holder(&mut both, &old_path) {
                o.insert(leaf.to_string(), x);
            }
            let e = reco_core::warning::capture(|| ModelSpec::from_value(both))
                .0
                .expect_err("both names accepted");
            assert!(e.to_string().contains("give only"), "{}: {e}", kind.name);
            checked += 1;
        }
    }
    assert!(checked >= 30, "only {checked} renames checked");
}
