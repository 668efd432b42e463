//! Saving and loading fitted models as artifacts, with the id maps, the users' training
//! histories (so "exclude seen" works without the dataset) and a small catalogue of titles.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use reco_core::artifact::{self, Manifest, FORMAT, FORMAT_VERSION};
use reco_core::{Dataset, Error, IdMap, Result};

use crate::spec::{Model, ModelSpec};

/// Titles and category labels of items, for human-readable output.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ItemLabels {
    /// Title per item (empty when unknown).
    pub titles: Vec<String>,
    /// Category label per item (empty when unknown).
    pub categories: Vec<String>,
}

impl ItemLabels {
    /// The labels of a dataset's items, if it has item metadata.
    pub fn of(ds: &Dataset) -> Option<ItemLabels> {
        let f = ds.item_features.as_ref()?;
        Some(ItemLabels {
            titles: (0..ds.n_items() as u32)
                .map(|i| f.title(i).unwrap_or("").to_string())
                .collect(),
            categories: (0..ds.n_items() as u32)
                .map(|i| f.category_label(i))
                .collect(),
        })
    }
}

#[derive(Serialize, Deserialize)]
struct Histories {
    indptr: Vec<u64>,
    items: Vec<u32>,
}

/// A model read back from an artifact, with what is needed to answer in external ids.
pub struct LoadedModel {
    /// The model.
    pub model: Box<dyn Model>,
    /// The manifest.
    pub manifest: Manifest,
    /// User ids of the training data.
    pub users: IdMap,
    /// Item ids of the training data.
    pub items: IdMap,
    /// Each user's training items, sorted (for excluding seen items).
    pub history_ptr: Vec<u64>,
    /// Concatenated histories.
    pub history_items: Vec<u32>,
    /// Titles and categories, if the training data had item metadata.
    pub labels: Option<ItemLabels>,
}

impl LoadedModel {
    /// Training items of user `u`, sorted ascending.
    pub fn seen(&self, u: u32) -> &[u32] {
        let (a, b) = (
            self.history_ptr[u as usize] as usize,
            self.history_ptr[u as usize + 1] as usize,
        );
        &self.history_items[a..b]
    }
}

/// Writes `model`, trained on `train`, as an artifact directory (atomically; an existing one is
/// refused or replaced as `existing` says).
pub fn save(
    model: &dyn Model,
    train: &Dataset,
    dir: &Path,
    extra: serde_json::Value,
    existing: artifact::Existing,
) -> Result<()> {
    save_with(model, train, dir, extra, existing, Vec::new())
}

/// [`save`] with more payload files (checksummed like the others; [`load`] ignores them, a
/// caller that wrote them reads them with [`artifact::read`]). The server keeps the training
/// values of the histories this way, to fold in new events on top of them.
pub fn save_with(
    model: &dyn Model,
    train: &Dataset,
    dir: &Path,
    extra: serde_json::Value,
    existing: artifact::Existing,
    more: Vec<(&str, Vec<u8>)>,
) -> Result<()> {
    let spec = model.spec().to_value()?;
    let m = &train.interactions;
    let hist = Histories {
        indptr: m.indptr().iter().map(|&p| p as u64).collect(),
        items: m.indices().to_vec(),
    };
    let mut files = vec![
        (model.state_file(), model.state()?),
        ("users.bin", artifact::encode(train.users.ids())?),
        ("items.bin", artifact::encode(train.items.ids())?),
        ("history.bin", artifact::encode(&hist)?),
    ];
    if let Some(c) = ItemLabels::of(train) {
        files.push(("catalog.bin", artifact::encode(&c)?));
    }
    for (name, bytes) in more {
        if files.iter().any(|(n, _)| *n == name) {
            return Err(Error::param(
                "files",
                format!("{name} is a reserved artifact file"),
            ));
        }
        files.push((name, bytes));
    }
    let manifest = Manifest {
        format: FORMAT.into(),
        format_version: FORMAT_VERSION,
        reco_version: env!("CARGO_PKG_VERSION").into(),
        spec,
        created_unix: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        n_users: train.n_users(),
        n_items: train.n_items(),
        items_digest: train.items.digest(),
        data_fingerprint: artifact::fingerprint(m),
        extra,
        files: Default::default(),
        checksum: None,
    };
    artifact::write(dir, manifest, &files, existing)
}

/// The serialised form of [`Histories`], borrowed: writing a loaded model back copies nothing.
#[derive(Serialize)]
struct HistoriesRef<'a> {
    indptr: &'a [u64],
    items: &'a [u32],
}

/// Writes a model read by [`load`] back as an artifact (a copy elsewhere; Python's pickling),
/// with its manifest: the specification, shapes and fingerprint of the data it was fitted on.
/// Extra payload files of the original ([`save_with`]) are not kept.
pub fn save_loaded(m: &LoadedModel, dir: &Path, existing: artifact::Existing) -> Result<()> {
    let hist = HistoriesRef {
        indptr: &m.history_ptr,
        items: &m.history_items,
    };
    let mut files = vec![
        (m.model.state_file(), m.model.state()?),
        ("users.bin", artifact::encode(m.users.ids())?),
        ("items.bin", artifact::encode(m.items.ids())?),
        ("history.bin", artifact::encode(&hist)?),
    ];
    if let Some(c) = &m.labels {
        files.push(("catalog.bin", artifact::encode(c)?));
    }
    artifact::write(dir, m.manifest.clone(), &files, existing)
}

/// Reads an artifact written by [`save`], verifying version, checksums and shapes.
pub fn load(dir: &Path) -> Result<LoadedModel> {
    // Decoders name the file they read; say which artifact it belongs to.
    load_checked(dir).map_err(|e| match e {
        Error::Artifact { path, message }
            if path.is_relative() && path.components().count() == 1 =>
        {
            Error::Artifact {
                path: dir.join(path),
                message,
            }
        }
        e => e,
    })
}

fn load_checked(dir: &Path) -> Result<LoadedModel> {
    let (manifest, files) = artifact::read(dir)?;
    from_files(dir, manifest, &files)
}

/// Builds a model from an artifact's manifest and payload files already in memory, checking
/// that they agree (shapes, histories, catalogue, item digest). [`load`] calls it after reading
/// and verifying the checksums; it is public so that the decoders can be exercised without a
/// file system (the fuzz targets feed it arbitrary bytes). `dir` only names the artifact in
/// errors.
pub fn from_files(
    dir: &Path,
    manifest: Manifest,
    files: &BTreeMap<String, Vec<u8>>,
) -> Result<LoadedModel> {
    let bad = |message: String| Error::Artifact {
        path: dir.into(),
        message,
    };
    let get = |name: &str| {
        files
            .get(name)
            .ok_or_else(|| bad(format!("{name} is missing")))
    };
    // Warnings about renamed parameters are dropped: the user cannot edit a saved spec.
    let (spec, _) = reco_core::warning::capture(|| ModelSpec::from_value(manifest.spec.clone()));
    let spec = spec.map_err(|e| Error::ArtifactIncompatible {
        path: dir.into(),
        message: format!("this version of reco cannot read its model specification: {e}"),
    })?;
    let state = crate::spec::STATE_FILES
        .iter()
        .find_map(|name| files.get(*name))
        .ok_or_else(|| bad("model.bin is missing".into()))?;
    let shape = crate::spec::Shape {
        users: manifest.n_users,
        items: manifest.n_items,
        interactions: 0,
    };
    let model = spec.restore(state, &shape)?;
    let users: Vec<String> = artifact::decode(get("users.bin")?, "users.bin")?;
    let items: Vec<String> = artifact::decode(get("items.bin")?, "items.bin")?;
    let hist: Histories = artifact::decode(get("history.bin")?, "history.bin")?;
    let catalog = files
        .get("catalog.bin")
        .map(|b| artifact::decode::<ItemLabels>(b, "catalog.bin"))
        .transpose()?;
    if users.len() != manifest.n_users
        || items.len() != manifest.n_items
        || model.n_items() != items.len()
        || hist.indptr.len() != users.len() + 1
    {
        return Err(bad(
            "shapes of the id maps, histories and model disagree".into()
        ));
    }
    if hist.indptr.first() != Some(&0)
        || hist.indptr.windows(2).any(|w| w[0] > w[1])
        || hist.indptr.last().copied() != Some(hist.items.len() as u64)
        || hist.items.iter().any(|&i| i as usize >= items.len())
    {
        return Err(bad("training histories are inconsistent".into()));
    }
    if let Some(c) = &catalog {
        if c.titles.len() != items.len() || c.categories.len() != items.len() {
            return Err(bad("the catalogue does not have one entry per item".into()));
        }
    }
    let items = IdMap::from(items);
    if items.digest() != manifest.items_digest {
        return Err(bad("item id map does not match its digest".into()));
    }
    Ok(LoadedModel {
        model,
        manifest,
        users: IdMap::from(users),
        items,
        history_ptr: hist.indptr,
        history_items: hist.items,
        labels: catalog,
    })
}

/// Serialises a value as a JSON string inside a binary state, for parameter types whose
/// user-facing serde form (untagged enums) binary formats cannot decode.
pub(crate) mod as_json {
    use serde::{de::DeserializeOwned, Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<T: Serialize, S: Serializer>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        let text = serde_json::to_string(v).map_err(serde::ser::Error::custom)?;
        s.serialize_str(&text)
    }

    pub fn deserialize<'de, T: DeserializeOwned, D: Deserializer<'de>>(
        d: D,
    ) -> Result<T, D::Error> {
        let text = String::deserialize(d)?;
        serde_json::from_str(&text).map_err(serde::de::Error::custom)
    }
}
