//! Saved artifacts of every model kind, one directory per artifact format version under
//! `fixtures/artifacts/`, loaded by this version of reco: a change of a model's saved state, of
//! its parameters or of the artifact layout that would break models users have saved fails
//! here.
//!
//! The fixtures of the current format version must load and score as they did when they were
//! written (`expected.json`); fixtures of older versions must be refused as incompatible,
//! never misread. Every registered kind needs a fixture of the current version. To write the
//! missing ones (after adding a kind, or when a format version is added):
//!
//! ```sh
//! RECO_WRITE_FIXTURES=1 cargo test -p reco-testing --test artifact_fixtures
//! ```

use std::path::{Path, PathBuf};

use reco_core::artifact::FORMAT_VERSION;
use reco_core::model::{FitOptions, Query};
use reco_core::synth::{scalable, ScalableConfig};
use reco_core::{Dataset, Error};
use reco_models::{registry, ModelSpec};

/// Users whose scores the fixtures record.
const USERS: [u32; 4] = [0, 7, 23, 59];

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/artifacts")
}

/// Small data with every input some kind reads: ratings, timestamps, sessions, item and user
/// features.
fn data() -> Dataset {
    let c = ScalableConfig {
        users: 60,
        items: 80,
        interactions: 1_500,
        categories: 4,
        seed: 3,
        ..Default::default()
    };
    scalable(&c, &|_, _| {}).expect("synthetic data")
}

/// The kind's first example, made small enough to commit: neural layers and hashed text
/// shrink to a few dimensions.
fn fixture_spec(kind: &reco_models::KindEntry) -> ModelSpec {
    let spec = kind.examples().into_iter().next().expect("examples");
    let mut v = spec.to_value().expect("value");
    let o = v.as_object_mut().expect("object");
    for (key, small) in [
        ("embedding_dim", serde_json::json!(8)),
        ("layers", serde_json::json!([8])),
        ("text_buckets", serde_json::json!(64)),
    ] {
        if o.contains_key(key) {
            o.insert(key.into(), small);
        }
    }
    ModelSpec::from_value(v).expect("shrunk spec")
}

fn scores(m: &dyn reco_models::Model) -> Vec<Vec<f32>> {
    USERS
        .iter()
        .map(|&u| {
            let mut s = vec![0f32; m.n_items()];
            m.score(&Query::user(u), &mut s).expect("score");
            s
        })
        .collect()
}

fn write_fixture(dir: &Path, kind: &reco_models::KindEntry, data: &Dataset) {
    let spec = fixture_spec(kind);
    let opts = FitOptions {
        seed: 1,
        ..Default::default()
    };
    let m = spec.fit(data, &opts).expect("fit");
    reco_models::save(
        m.as_ref(),
        data,
        dir,
        serde_json::Value::Null,
        reco_core::artifact::Existing::Replace,
    )
    .expect("save");
    // What the saved model answers, read back: the fixture is what a user's artifact holds.
    let loaded = reco_models::load(dir).expect("load");
    let expected = serde_json::json!({ "users": USERS, "scores": scores(loaded.model.as_ref()) });
    std::fs::write(dir.join("expected.json"), expected.to_string()).expect("write");
}

fn close(a: f32, b: f32) -> bool {
    a == b || (a - b).abs() <= 1e-5 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn every_kind_loads_its_saved_artifact_of_every_format_version() {
    reco_neural::register().expect("neural");
    reco_pipeline::register().expect("composites");
    let write = std::env::var_os("RECO_WRITE_FIXTURES").is_some();
    let current = root().join(format!("v{FORMAT_VERSION}"));
    let data = data();
    let mut missing = Vec::new();
    for kind in registry::kinds() {
        let dir = current.join(kind.name);
        if !dir.join("manifest.json").exists() {
            if write {
                write_fixture(&dir, kind, &data);
            } else {
                missing.push(kind.name);
                continue;
            }
        }
        let loaded = reco_models::load(&dir)
            .unwrap_or_else(|e| panic!("{}: a saved model no longer loads: {e}", kind.name));
        assert_eq!(loaded.model.spec().kind(), kind.name);
        let text = std::fs::read_to_string(dir.join("expected.json")).expect("expected.json");
        let want: serde_json::Value = serde_json::from_str(&text).expect("json");
        let want: Vec<Vec<f32>> = serde_json::from_value(want["scores"].clone()).expect("scores");
        let got = scores(loaded.model.as_ref());
        for (u, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g.len(), w.len(), "{}: catalogue size", kind.name);
            let bad = g.iter().zip(w).position(|(a, b)| !close(*a, *b));
            assert!(
                bad.is_none(),
                "{}: user {} item {:?}: {} now, {} when saved",
                kind.name,
                USERS[u],
                bad,
                bad.map_or(0.0, |i| g[i]),
                bad.map_or(0.0, |i| w[i]),
            );
        }
    }
    assert!(
        missing.is_empty(),
        "no saved artifact of format v{FORMAT_VERSION} for {missing:?}: write them with \
         RECO_WRITE_FIXTURES=1 cargo test -p reco-testing --test artifact_fixtures"
    );
    // Other layouts (older, or a newer one: `v2` is a v1 artifact with its version raised) are
    // refused as incompatible, never misread.
    let mut refused = 0;
    for entry in std::fs::read_dir(root()).expect("fixtures") {
        let dir = entry.expect("entry").path();
        if dir == current {
            continue;
        }
        for kind in std::fs::read_dir(&dir).expect("version dir") {
            let kind = kind.expect("entry").path();
            match reco_models::load(&kind) {
                Err(Error::ArtifactIncompatible { .. }) => refused += 1,
                other => panic!("{}: {:?}", kind.display(), other.err()),
            }
        }
    }
    assert!(
        refused > 0,
        "no fixture of another format version was tried"
    );
}

/// Artifacts written by reco before parameters were renamed (commit 00b911a: `lr`, `reg`,
/// `iterations`, `top_k`, `last_n`, `lambda`, `dp.batch`, `user_reg`, a pipeline's
/// `ranker.window`, `ranker.l2` and `sources[].last`), with the lists that version's
/// `reco recommend -k 80 --include-seen --json` printed. They must load under the new names and
/// recommend the same items with the same scores.
#[test]
fn models_saved_before_the_renames_still_load_and_recommend_the_same() {
    reco_neural::register().expect("neural");
    reco_pipeline::register().expect("composites");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/legacy-00b911a");
    let mut n = 0;
    for entry in std::fs::read_dir(&root).expect("legacy fixtures") {
        let dir = entry.expect("entry").path();
        let name = dir.file_name().map(|f| f.to_string_lossy().into_owned());
        let loaded = reco_models::load(&dir)
            .unwrap_or_else(|e| panic!("{name:?}: a model saved before the renames: {e}"));
        let text = std::fs::read_to_string(dir.join("expected.json")).expect("expected.json");
        let lists: Vec<serde_json::Value> = serde_json::from_str(&text).expect("json");
        for l in &lists {
            let user = l["user"].as_str().expect("user");
            let u = loaded.users.get(user).expect("known user");
            let got = loaded
                .model
                .recommend(&Query::user(u), 80, &reco_core::model::Filter::default())
                .expect("recommend");
            let items: Vec<&str> = got.iter().map(|s| loaded.items.id(s.item)).collect();
            let want: Vec<&str> = l["items"]
                .as_array()
                .expect("items")
                .iter()
                .filter_map(|i| i.as_str())
                .collect();
            assert_eq!(items, want, "{name:?} user {user}: another list");
            for (s, w) in got.iter().zip(l["scores"].as_array().expect("scores")) {
                let w = w.as_f64().expect("score") as f32;
                assert!(
                    close(s.score, w),
                    "{name:?} user {user}: {} vs {w}",
                    s.score
                );
            }
        }
        n += 1;
    }
    assert!(n >= 8, "{n} legacy fixtures");
}

/// A model state is checked against the id space it is restored into: every kind's saved state,
/// restored for a catalogue one item larger or smaller than the one it was trained on, is
/// refused as a corrupt artifact instead of answering with scores for items it does not have
/// (or indexing past its arrays later).
#[test]
fn every_kind_refuses_its_state_in_another_id_space() {
    reco_neural::register().expect("neural");
    reco_pipeline::register().expect("composites");
    let current = root().join(format!("v{FORMAT_VERSION}"));
    for kind in registry::kinds() {
        let dir = current.join(kind.name);
        let loaded = reco_models::load(&dir).expect("the fixture loads");
        let spec = loaded.model.spec();
        let state = reco_models::STATE_FILES
            .iter()
            .find_map(|f| std::fs::read(dir.join(f)).ok())
            .expect("a state file");
        let (users, items) = (loaded.manifest.n_users, loaded.manifest.n_items);
        let same = reco_models::Shape {
            users,
            items,
            interactions: 0,
        };
        assert!(
            spec.restore(&state, &same).is_ok(),
            "{}: its own shape",
            kind.name
        );
        for other in [items + 1, items - 1] {
            let shape = reco_models::Shape {
                items: other,
                ..same
            };
            match spec.restore(&state, &shape) {
                Err(Error::Artifact { .. }) => {}
                Err(e) => panic!("{}: {other} items: another error: {e}", kind.name),
                Ok(_) => panic!(
                    "{}: restored for {other} items instead of {items}",
                    kind.name
                ),
            }
        }
    }
}
