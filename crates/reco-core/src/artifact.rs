//! Model artifacts: a directory with a versioned, checksummed `manifest.json` and the files it
//! lists. Loading verifies the format, the version and every checksum, and reports a corrupt or
//! foreign artifact as an error, never a panic.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::{Error, Result};
use crate::ids::hex;

/// Name written in every manifest, to recognise reco artifacts.
pub const FORMAT: &str = "reco-model";
/// Current artifact layout version; readers accept this version only.
pub const FORMAT_VERSION: u32 = 1;

/// The manifest of a model artifact.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Manifest {
    /// Always [`FORMAT`].
    pub format: String,
    /// Layout version.
    pub format_version: u32,
    /// Version of reco that wrote it.
    pub reco_version: String,
    /// The model specification (the same JSON as in model files).
    pub spec: serde_json::Value,
    /// Seconds since the Unix epoch at creation.
    pub created_unix: u64,
    /// Users in the training id space.
    pub n_users: usize,
    /// Items in the training id space.
    pub n_items: usize,
    /// Digest of the item id map, to refuse scoring against another id space.
    pub items_digest: String,
    /// Fingerprint of the training interactions.
    pub data_fingerprint: String,
    /// Free-form metrics or notes recorded at training time.
    #[serde(default)]
    pub extra: serde_json::Value,
    /// SHA-256 of every payload file.
    pub files: BTreeMap<String, String>,
    /// SHA-256 of this manifest's compact JSON without this field, so that an edit to the
    /// manifest itself (spec, shapes, checksums) is caught. Absent in artifacts written before
    /// it existed; those load with a warning.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub checksum: Option<String>,
}

/// What [`write`] does when the artifact directory already exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Existing {
    /// Fail with [`Error::Exists`] (the default of `reco train --out`).
    Refuse,
    /// Replace it atomically (`--force`).
    Replace,
}

/// Fails when `dir` exists and `existing` is [`Existing::Refuse`]; callers check this before
/// long work so that a fit is not wasted on a name that cannot be written.
pub fn check_target(dir: &Path, existing: Existing) -> Result<()> {
    if existing == Existing::Refuse && std::fs::symlink_metadata(dir).is_ok() {
        return Err(Error::Exists { path: dir.into() });
    }
    Ok(())
}

/// The checksum of a manifest's JSON value, without its `checksum` field.
fn manifest_checksum(value: &serde_json::Value) -> Result<String> {
    let mut v = value.clone();
    if let Some(o) = v.as_object_mut() {
        o.remove("checksum");
    }
    let bytes =
        serde_json::to_vec(&v).map_err(|e| Error::artifact("manifest.json", e.to_string()))?;
    Ok(sha256(&bytes))
}

/// SHA-256 of bytes, hex-encoded.
pub fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Writes `files` and a manifest (whose `files` and `checksum` fields are filled here) as the
/// directory `dir`, atomically: everything goes into a hidden sibling directory, is flushed to
/// disk, and only then renamed to `dir`. A crash or kill at any moment leaves either no `dir`
/// (or the previous one) or a complete one, never a directory that loads half a model.
pub fn write(
    dir: &Path,
    mut manifest: Manifest,
    files: &[(&str, Vec<u8>)],
    existing: Existing,
) -> Result<()> {
    check_target(dir, existing)?;
    let (parent, name) = split_target(dir)?;
    std::fs::create_dir_all(&parent).map_err(|e| Error::io(&parent, e))?;
    remove_stale_partials(&parent, &name);
    let tmp = parent.join(format!(".{name}.partial-{}", unique_suffix()));
    let result = (|| {
        std::fs::create_dir(&tmp).map_err(|e| Error::io(&tmp, e))?;
        manifest.files.clear();
        manifest.checksum = None;
        for (name, bytes) in files {
            write_synced(&tmp.join(name), bytes)?;
            manifest.files.insert(name.to_string(), sha256(bytes));
        }
        let value = serde_json::to_value(&manifest)
            .map_err(|e| Error::artifact(dir, format!("cannot encode the manifest: {e}")))?;
        manifest.checksum = Some(manifest_checksum(&value)?);
        let text = serde_json::to_vec_pretty(&manifest)
            .map_err(|e| Error::artifact(dir, format!("cannot encode the manifest: {e}")))?;
        write_synced(&tmp.join("manifest.json"), &text)?;
        sync_dir(&tmp)?;
        crate::interrupt::check()?;
        if std::fs::symlink_metadata(dir).is_ok() {
            check_target(dir, existing)?;
            // A directory cannot be renamed over a non-empty one: move the old one aside
            // first. A kill between the two renames leaves no artifact at `dir` (and the old
            // one, complete, in the hidden sibling), never a mixture.
            let old = parent.join(format!(".{name}.old-{}", unique_suffix()));
            std::fs::rename(dir, &old).map_err(|e| Error::io(dir, e))?;
            std::fs::rename(&tmp, dir).map_err(|e| Error::io(dir, e))?;
            let _ = std::fs::remove_dir_all(&old);
        } else {
            std::fs::rename(&tmp, dir).map_err(|e| Error::io(dir, e))?;
        }
        sync_dir(&parent)
    })();
    if result.is_err() {
        let _ = std::fs::remove_dir_all(&tmp);
    }
    result
}

/// The parent directory and the final name of an artifact path.
fn split_target(dir: &Path) -> Result<(std::path::PathBuf, String)> {
    let name = dir
        .file_name()
        .and_then(|n| n.to_str())
        .filter(|n| !n.is_empty() && *n != "." && *n != "..")
        .ok_or_else(|| Error::Format {
            path: dir.into(),
            message: "an artifact needs a directory name of its own (not `.`, `..` or `/`)".into(),
        })?;
    let parent = match dir.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    Ok((parent, name.to_string()))
}

/// A suffix unique to this process and moment, for hidden sibling directories.
fn unique_suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!("{}-{nanos}", std::process::id())
}

/// Removes `.NAME.partial-PID-*` directories left by a writer that was killed (its process no
/// longer exists), so repeated interrupted runs do not pile up.
fn remove_stale_partials(parent: &Path, name: &str) {
    let prefix = format!(".{name}.partial-");
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let file_name = e.file_name();
        let Some(rest) = file_name.to_str().and_then(|n| n.strip_prefix(&prefix)) else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        let alive = !pid.is_empty() && Path::new("/proc").join(pid).exists();
        if !alive && Path::new("/proc/self").exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let mut f = std::fs::File::create(path).map_err(|e| Error::io(path, e))?;
    f.write_all(bytes).map_err(|e| Error::io(path, e))?;
    f.sync_all().map_err(|e| Error::io(path, e))
}

fn sync_dir(dir: &Path) -> Result<()> {
    #[cfg(unix)]
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))?;
    Ok(())
}

/// Reads and verifies an artifact; returns the manifest and the payload files by name.
pub fn read(dir: &Path) -> Result<(Manifest, BTreeMap<String, Vec<u8>>)> {
    let path = dir.join("manifest.json");
    let bad = |message: String| Error::Artifact {
        path: dir.to_path_buf(),
        message,
    };
    let text = crate::input::read(&path, crate::input::MAX_SPEC_BYTES)?;
    let value: serde_json::Value = serde_json::from_slice(&text)
        .map_err(|e| bad(format!("manifest.json is not JSON: {e}")))?;
    if value.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
        return Err(bad(
            "not a reco model (manifest format field missing or different)".into(),
        ));
    }
    match value.get("format_version").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(FORMAT_VERSION) => {}
        Some(v) => {
            return Err(Error::ArtifactIncompatible {
                path: dir.into(),
                message: format!(
                    "artifact format version {v} is not supported (this reco reads version \
                     {FORMAT_VERSION}); retrain the model with this version"
                ),
            })
        }
        None => return Err(bad("manifest.json has no format_version number".into())),
    }
    match value.get("checksum") {
        Some(serde_json::Value::String(want)) => {
            if &manifest_checksum(&value)? != want {
                return Err(bad(
                    "manifest.json was modified after it was written (its checksum does not \
                     match); retrain or restore the original"
                        .into(),
                ));
            }
        }
        Some(_) => {
            return Err(bad(
                "manifest.json has a checksum that is not a string".into()
            ))
        }
        None => crate::warning::warn(format!(
            "{}: the manifest has no checksum (written by an older reco), so edits to it cannot \
             be detected; save the model again to add one",
            dir.display()
        )),
    }
    let manifest: Manifest =
        serde_json::from_value(value).map_err(|e| bad(format!("manifest.json: {e}")))?;
    let mut files = BTreeMap::new();
    for (name, want) in &manifest.files {
        if name.contains('/') || name.contains("..") {
            return Err(bad(format!("file name {name:?} escapes the artifact")));
        }
        let p = dir.join(name);
        let bytes = crate::input::read(&p, crate::input::MAX_FILE_BYTES)?;
        let got = sha256(&bytes);
        if &got != want {
            return Err(bad(format!(
                "checksum mismatch for {name}: the file is corrupt or was modified"
            )));
        }
        files.insert(name.clone(), bytes);
    }
    Ok((manifest, files))
}

/// Encodes a serialisable value compactly (postcard).
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>> {
    postcard::to_allocvec(value).map_err(|e| Error::Artifact {
        path: "<memory>".into(),
        message: format!("cannot encode: {e}"),
    })
}

/// Decodes a value written by [`encode`].
pub fn decode<T: for<'de> Deserialize<'de>>(bytes: &[u8], name: &str) -> Result<T> {
    postcard::from_bytes(bytes).map_err(|e| Error::Artifact {
        path: name.into(),
        message: format!(
            "the file is corrupt or from another version ({e}); retrain the model or restore \
             the artifact"
        ),
    })
}

/// A fingerprint of training interactions: shape and SHA-256 of indices and values.
pub fn fingerprint(m: &crate::interactions::Interactions) -> String {
    let mut h = Sha256::new();
    h.update((m.n_users() as u64).to_le_bytes());
    h.update((m.n_items() as u64).to_le_bytes());
    for &p in m.indptr() {
        h.update((p as u64).to_le_bytes());
    }
    for &i in m.indices() {
        h.update(i.to_le_bytes());
    }
    for &v in m.values() {
        h.update(v.to_le_bytes());
    }
    hex(&h.finalize())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn manifest() -> Manifest {
        Manifest {
            format: FORMAT.into(),
            format_version: FORMAT_VERSION,
            reco_version: "0".into(),
            spec: serde_json::json!({"model": "x"}),
            created_unix: 0,
            n_users: 1,
            n_items: 1,
            items_digest: String::new(),
            data_fingerprint: String::new(),
            extra: serde_json::Value::Null,
            files: BTreeMap::new(),
            checksum: None,
        }
    }

    #[test]
    fn round_trip_and_corruption_detection() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().join("m");
        let d = &d;
        let files = [("model.bin", encode(&vec![1.5f32, 2.5]).unwrap())];
        write(d, manifest(), &files, Existing::Refuse).unwrap();
        let e = write(d, manifest(), &files, Existing::Refuse).unwrap_err();
        assert!(matches!(e, Error::Exists { .. }), "{e}");
        write(d, manifest(), &files, Existing::Replace).unwrap();
        let siblings: Vec<_> = std::fs::read_dir(d.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(siblings, ["m"], "no temporary directory is left behind");
        let text = std::fs::read_to_string(d.join("manifest.json")).unwrap();
        let edited = text.replace("\"n_items\": 1", "\"n_items\": 2");
        assert_ne!(text, edited);
        std::fs::write(d.join("manifest.json"), &edited).unwrap();
        let e = read(d).unwrap_err().to_string();
        assert!(e.contains("modified"), "{e}");
        std::fs::write(d.join("manifest.json"), &text).unwrap();
        let (m, files) = read(d).unwrap();
        assert_eq!(m.spec["model"], "x");
        let v: Vec<f32> = decode(&files["model.bin"], "model.bin").unwrap();
        assert_eq!(v, vec![1.5, 2.5]);

        std::fs::write(d.join("model.bin"), b"garbage").unwrap();
        let e = read(d).unwrap_err().to_string();
        assert!(e.contains("checksum mismatch"), "{e}");

        std::fs::write(
            d.join("manifest.json"),
            b"{\"format\":\"reco-model\",\"format_version\":99}",
        )
        .unwrap();
        assert!(read(d).unwrap_err().to_string().contains("version"));
        std::fs::write(d.join("manifest.json"), b"\x00\x01").unwrap();
        assert!(read(d).unwrap_err().to_string().contains("not JSON"));
        assert!(decode::<Vec<f32>>(b"\xff\xff\xff\xff\xff", "x").is_err());
    }
}
