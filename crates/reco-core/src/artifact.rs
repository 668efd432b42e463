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
}

/// SHA-256 of bytes, hex-encoded.
pub fn sha256(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Writes `files` and a manifest (whose `files` field is filled here) into `dir`.
pub fn write(dir: &Path, mut manifest: Manifest, files: &[(&str, Vec<u8>)]) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    manifest.files.clear();
    for (name, bytes) in files {
        let path = dir.join(name);
        std::fs::write(&path, bytes).map_err(|e| Error::io(&path, e))?;
        manifest.files.insert(name.to_string(), sha256(bytes));
    }
    let path = dir.join("manifest.json");
    let text = serde_json::to_vec_pretty(&manifest).map_err(|e| Error::Artifact {
        path: path.clone(),
        message: e.to_string(),
    })?;
    std::fs::write(&path, text).map_err(|e| Error::io(&path, e))
}

/// Reads and verifies an artifact; returns the manifest and the payload files by name.
pub fn read(dir: &Path) -> Result<(Manifest, BTreeMap<String, Vec<u8>>)> {
    let path = dir.join("manifest.json");
    let bad = |message: String| Error::Artifact {
        path: dir.to_path_buf(),
        message,
    };
    let text = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
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
    let manifest: Manifest =
        serde_json::from_value(value).map_err(|e| bad(format!("manifest.json: {e}")))?;
    let mut files = BTreeMap::new();
    for (name, want) in &manifest.files {
        if name.contains('/') || name.contains("..") {
            return Err(bad(format!("file name {name:?} escapes the artifact")));
        }
        let p = dir.join(name);
        let bytes = std::fs::read(&p).map_err(|e| Error::io(&p, e))?;
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
        message: format!("cannot decode: {e}"),
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
        }
    }

    #[test]
    fn round_trip_and_corruption_detection() {
        let d = tempfile::tempdir().unwrap();
        write(
            d.path(),
            manifest(),
            &[("model.bin", encode(&vec![1.5f32, 2.5]).unwrap())],
        )
        .unwrap();
        let (m, files) = read(d.path()).unwrap();
        assert_eq!(m.spec["model"], "x");
        let v: Vec<f32> = decode(&files["model.bin"], "model.bin").unwrap();
        assert_eq!(v, vec![1.5, 2.5]);

        std::fs::write(d.path().join("model.bin"), b"garbage").unwrap();
        let e = read(d.path()).unwrap_err().to_string();
        assert!(e.contains("checksum mismatch"), "{e}");

        std::fs::write(
            d.path().join("manifest.json"),
            b"{\"format\":\"reco-model\",\"format_version\":99}",
        )
        .unwrap();
        assert!(read(d.path()).unwrap_err().to_string().contains("version"));
        std::fs::write(d.path().join("manifest.json"), b"\x00\x01").unwrap();
        assert!(read(d.path()).unwrap_err().to_string().contains("not JSON"));
        assert!(decode::<Vec<f32>>(b"\xff\xff\xff\xff\xff", "x").is_err());
    }
}
