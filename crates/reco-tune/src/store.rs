//! The trials of a search, kept in memory and, when given a path, in a JSON-lines file: a
//! header line that says which search it belongs to, then one line per finished trial,
//! written and flushed as the trial ends. Opening an existing file resumes its search; a file
//! of another search is refused.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use reco_core::{Error, Result};
use serde_json::Value;

use crate::Trial;

/// The trials of one search.
pub struct TrialStore {
    file: Option<(PathBuf, Mutex<std::fs::File>)>,
    trials: Mutex<Vec<Trial>>,
}

impl TrialStore {
    /// Trials in memory only.
    pub fn memory() -> TrialStore {
        TrialStore {
            file: None,
            trials: Mutex::new(Vec::new()),
        }
    }

    /// Opens the trials file at `path` for the search described by `header`: a new file
    /// starts with the header; an existing one must have the same header, and its trials are
    /// loaded (a last line cut short by a crash is dropped).
    pub fn open(path: &Path, header: &Value) -> Result<TrialStore> {
        let io = |e: std::io::Error| Error::io(path, e);
        let mut trials = Vec::new();
        if path.exists() {
            let f = std::fs::File::open(path).map_err(io)?;
            let mut lines = std::io::BufReader::new(f).lines();
            let first = lines.next().transpose().map_err(io)?.unwrap_or_default();
            let theirs: Value = serde_json::from_str(&first).map_err(|e| {
                Error::param(
                    "trials",
                    format!(
                        "{}: the first line is not a search header: {e}",
                        path.display()
                    ),
                )
            })?;
            if &theirs != header {
                let differs = differing(header, &theirs);
                return Err(Error::param(
                    "trials",
                    format!(
                        "{} belongs to another search ({differs} differs); give another --out or remove it to start afresh",
                        path.display()
                    ),
                ));
            }
            for line in lines {
                let line = line.map_err(io)?;
                match serde_json::from_str::<Trial>(&line) {
                    Ok(t) => trials.push(t),
                    // Only the last line can be partial (a kill during its write).
                    Err(_) => break,
                }
            }
            // Rewrite without a partial tail, so that appends start on a fresh line.
            let mut text =
                serde_json::to_string(header).map_err(|e| Error::param("trials", e.to_string()))?;
            text.push('\n');
            for t in &trials {
                text.push_str(
                    &serde_json::to_string(t).map_err(|e| Error::param("trials", e.to_string()))?,
                );
                text.push('\n');
            }
            let tmp = path.with_extension("jsonl.tmp");
            std::fs::write(&tmp, text).map_err(io)?;
            std::fs::rename(&tmp, path).map_err(io)?;
        } else {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
            }
            let mut text =
                serde_json::to_string(header).map_err(|e| Error::param("trials", e.to_string()))?;
            text.push('\n');
            std::fs::write(path, text).map_err(io)?;
        }
        let file = std::fs::OpenOptions::new()
            .append(true)
            .open(path)
            .map_err(io)?;
        Ok(TrialStore {
            file: Some((path.to_path_buf(), Mutex::new(file))),
            trials: Mutex::new(trials),
        })
    }

    /// Calls `f` with the trials so far (in the order they finished) without copying them.
    pub fn with<R>(&self, f: impl FnOnce(&[Trial]) -> R) -> R {
        match self.trials.lock() {
            Ok(t) => f(&t),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }

    /// A copy of the trials so far, in the order they finished.
    pub fn trials(&self) -> Vec<Trial> {
        self.trials.lock().map(|t| t.clone()).unwrap_or_default()
    }

    /// Whether trial `trial` of outer fold `fold` is done at successive-halving rung `rung`.
    pub fn has(&self, fold: usize, trial: usize, rung: usize) -> bool {
        self.trials
            .lock()
            .map(|t| {
                t.iter()
                    .any(|x| x.fold == fold && x.trial == trial && x.rung == rung)
            })
            .unwrap_or(false)
    }

    /// Trials done on outer fold `fold`.
    pub fn count(&self, fold: usize) -> usize {
        self.trials
            .lock()
            .map(|t| t.iter().filter(|x| x.fold == fold).count())
            .unwrap_or(0)
    }

    /// Records a finished trial (in the file first: what is in memory is on disk).
    pub fn append(&self, t: &Trial) -> Result<()> {
        if let Some((path, file)) = &self.file {
            let mut line =
                serde_json::to_string(t).map_err(|e| Error::param("trials", e.to_string()))?;
            line.push('\n');
            let mut f = file
                .lock()
                .map_err(|_| Error::param("trials", "a writer panicked"))?;
            f.write_all(line.as_bytes())
                .and_then(|()| f.flush())
                .map_err(|e| Error::io(path, e))?;
        }
        self.trials
            .lock()
            .map_err(|_| Error::param("trials", "a writer panicked"))?
            .push(t.clone());
        Ok(())
    }
}

/// The first top-level field where two headers differ.
fn differing(a: &Value, b: &Value) -> String {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => x
            .iter()
            .find(|(k, v)| y.get(*k) != Some(*v))
            .map(|(k, _)| k.clone())
            .or_else(|| y.keys().find(|k| !x.contains_key(*k)).cloned())
            .unwrap_or_else(|| "the header".into()),
        _ => "the header".into(),
    }
}
