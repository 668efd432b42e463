//! Checkpoints of a network's fit: after every epoch the whole training state (weights, both
//! optimisers' moments and step counts, the best epoch's weights and score) goes into one
//! safetensors file in the checkpoint directory, written to a temporary name, flushed and
//! renamed, so a crash or Ctrl-C leaves either the previous checkpoint or the new one.
//!
//! A checkpoint names its fit by a digest of the model kind, its parameters (all but
//! `epochs`), the training and validation data and the seed. A fit given a directory holding its
//! own checkpoint resumes after the saved epoch; because every epoch's shuffle and sampling
//! come from a generator seeded by the epoch's number, the resumed fit is bit for bit the one
//! that was never stopped. Leaving `epochs` out lets a finished fit be extended with more epochs.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use reco_core::{Error, Interactions, Result};

/// The checkpoint's file name inside the directory.
pub const FILE: &str = "checkpoint.safetensors";

/// Version of the layout below; a checkpoint of another version is refused.
const FORMAT: &str = "1";

/// What a checkpoint holds besides its tensors.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Progress {
    /// Epochs completed.
    pub epochs_done: usize,
    /// Early stopping ended the fit.
    pub stopped: bool,
    /// Steps of the dense optimiser.
    pub adam_steps: u64,
    /// The best validation score so far and its epoch.
    pub best: Option<(f64, usize)>,
}

/// A checkpoint read back: its progress and tensors by name.
pub(crate) struct Saved {
    pub progress: Progress,
    pub tensors: HashMap<String, Tensor>,
    path: PathBuf,
}

impl Saved {
    /// The f32 tensor `name` of `len` values, flattened.
    pub fn floats(&mut self, name: &str, len: usize) -> Result<Vec<f32>> {
        self.take(name, len, DType::F32)?
            .to_vec1::<f32>()
            .map_err(|e| corrupt(&self.path, format!("tensor {name:?}: {e}")))
    }

    /// The u32 tensor `name` of `len` values.
    pub fn counts(&mut self, name: &str, len: usize) -> Result<Vec<u32>> {
        self.take(name, len, DType::U32)?
            .to_vec1::<u32>()
            .map_err(|e| corrupt(&self.path, format!("tensor {name:?}: {e}")))
    }

    /// The tensor `name`, checked to hold `len` values of `dtype`, flattened.
    pub fn take(&mut self, name: &str, len: usize, dtype: DType) -> Result<Tensor> {
        let t = self
            .tensors
            .remove(name)
            .ok_or_else(|| corrupt(&self.path, format!("it has no tensor {name:?}")))?;
        if t.elem_count() != len || t.dtype() != dtype {
            return Err(corrupt(
                &self.path,
                format!(
                    "tensor {name:?} holds {} {:?} values, expected {len} {dtype:?}",
                    t.elem_count(),
                    t.dtype()
                ),
            ));
        }
        t.flatten_all()
            .map_err(|e| corrupt(&self.path, format!("tensor {name:?}: {e}")))
    }
}

fn corrupt(path: &Path, message: String) -> Error {
    Error::artifact(
        path,
        format!("unusable checkpoint: {message}; remove it to start the fit over"),
    )
}

/// The digest that names a fit: kind, parameters without `epochs`, data, validation data and
/// seed.
pub(crate) fn identity(
    kind: &str,
    params: &serde_json::Value,
    train: &Interactions,
    validation: Option<&Interactions>,
    seed: u64,
) -> String {
    let mut p = params.clone();
    if let Some(map) = p.as_object_mut() {
        map.remove("epochs");
    }
    let text = serde_json::json!({
        "kind": kind,
        "params": p,
        "train": reco_core::artifact::fingerprint(train),
        "validation": validation.map(reco_core::artifact::fingerprint),
        "seed": seed,
    })
    .to_string();
    reco_core::artifact::sha256(text.as_bytes())
}

/// Reads the checkpoint in `dir` if there is one; refuses one of another fit or format.
pub(crate) fn load(dir: &Path, identity: &str) -> Result<Option<Saved>> {
    let path = dir.join(FILE);
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes)
        .map_err(|e| corrupt(&path, format!("not a safetensors file ({e})")))?;
    let meta = header.metadata().clone().unwrap_or_default();
    let get = |k: &str| {
        meta.get(k)
            .cloned()
            .ok_or_else(|| corrupt(&path, format!("its header has no {k:?}")))
    };
    if get("format")? != FORMAT {
        return Err(corrupt(
            &path,
            format!("format {:?}, this build reads {FORMAT:?}", get("format")?),
        ));
    }
    if get("identity")? != identity {
        return Err(Error::param(
            "checkpoint",
            format!(
                "{} holds the checkpoint of another fit (the model, its parameters other than \
                 epochs, the data or the seed differ); remove it or choose another directory",
                path.display()
            ),
        ));
    }
    let num = |k: &str| -> Result<u64> {
        get(k)?
            .parse()
            .map_err(|_| corrupt(&path, format!("{k:?} is not a count")))
    };
    let best = match (meta.get("best_score"), meta.get("best_epoch")) {
        (Some(s), Some(e)) => Some((
            s.parse()
                .map_err(|_| corrupt(&path, "best_score is not a number".into()))?,
            e.parse()
                .map_err(|_| corrupt(&path, "best_epoch is not a count".into()))?,
        )),
        _ => None,
    };
    let progress = Progress {
        epochs_done: usize::try_from(num("epochs_done")?)
            .map_err(|_| corrupt(&path, "epochs_done is too large".into()))?,
        stopped: get("stopped")? == "true",
        adam_steps: num("adam_steps")?,
        best,
    };
    let tensors = candle_core::safetensors::load_buffer(&bytes, &Device::Cpu)
        .map_err(|e| corrupt(&path, e.to_string()))?;
    Ok(Some(Saved {
        progress,
        tensors,
        path,
    }))
}

/// Writes a checkpoint into `dir` (created if needed), replacing the previous one atomically.
pub(crate) fn save(
    dir: &Path,
    identity: &str,
    progress: &Progress,
    tensors: Vec<(String, Tensor)>,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    let mut meta = HashMap::from([
        ("format".to_string(), FORMAT.to_string()),
        ("identity".to_string(), identity.to_string()),
        ("epochs_done".to_string(), progress.epochs_done.to_string()),
        ("stopped".to_string(), progress.stopped.to_string()),
        ("adam_steps".to_string(), progress.adam_steps.to_string()),
    ]);
    if let Some((score, epoch)) = progress.best {
        // `{:?}` of an f64 reads back to the same value.
        meta.insert("best_score".into(), format!("{score:?}"));
        meta.insert("best_epoch".into(), epoch.to_string());
    }
    let path = dir.join(FILE);
    let tmp = dir.join(format!(".{FILE}.tmp"));
    let bytes = safetensors::serialize(tensors, Some(meta))
        .map_err(|e| Error::artifact(&path, format!("cannot be written: {e}")))?;
    let write = || -> std::io::Result<()> {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, &path)?;
        // The rename is durable once the directory is flushed too.
        std::fs::File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = std::fs::remove_file(&tmp);
        Error::io(&path, e)
    })
}

/// Removes the checkpoint in `dir`, if any (after the model it led to is saved).
pub fn remove(dir: &Path) -> Result<()> {
    let path = dir.join(FILE);
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(Error::io(&path, e)),
    }
}
