//! Models: fit, batch recommendation, similar items, rating prediction, vectors, artifacts.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use numpy::{PyArray1, PyArray2, PyArrayMethods, PyReadonlyArray1};
use pyo3::prelude::*;
use pyo3::types::PyBytes;
use rayon::prelude::*;

use reco_core::artifact::Existing;
use reco_core::model::{Filter, FitOptions, Query};
use reco_core::topk::Scored;
use reco_core::{Error, IdMap};
use reco_models::{LoadedModel, ModelSpec};

use crate::dataset::Dataset;
use crate::to_py;

/// A fitted model and what answering in the caller's ids needs: the id maps and the users'
/// training items (to leave seen items out).
enum Fitted {
    /// Fitted in this process, on a dataset it shares.
    Trained {
        model: Box<dyn reco_models::Model>,
        data: Arc<reco_core::Dataset>,
    },
    /// Read from an artifact.
    Loaded(Box<LoadedModel>),
}

impl Fitted {
    fn model(&self) -> &dyn reco_models::Model {
        match self {
            Fitted::Trained { model, .. } => model.as_ref(),
            Fitted::Loaded(m) => m.model.as_ref(),
        }
    }

    fn users(&self) -> &IdMap {
        match self {
            Fitted::Trained { data, .. } => &data.users,
            Fitted::Loaded(m) => &m.users,
        }
    }

    fn items(&self) -> &IdMap {
        match self {
            Fitted::Trained { data, .. } => &data.items,
            Fitted::Loaded(m) => &m.items,
        }
    }

    /// Training items of user `u`, ascending.
    fn seen(&self, u: u32) -> &[u32] {
        match self {
            Fitted::Trained { data, .. } => data.interactions.user_items(u),
            Fitted::Loaded(m) => m.seen(u),
        }
    }

    fn save(&self, dir: &Path, existing: Existing) -> reco_core::Result<()> {
        match self {
            Fitted::Trained { model, data } => reco_models::save(
                model.as_ref(),
                data,
                dir,
                serde_json::json!({ "written_by": "python" }),
                existing,
            ),
            Fitted::Loaded(m) => reco_models::save_loaded(m, dir, existing),
        }
    }
}

/// A model of any kind: built from a specification (the JSON/TOML form of `reco train
/// --model`), fitted on a [`Dataset`], or read from an artifact. Queries take dense indices;
/// the Python class `reco.Model` maps the caller's ids to them and back.
#[pyclass(module = "reco._reco", frozen)]
pub struct Model {
    spec: ModelSpec,
    fitted: RwLock<Option<Arc<Fitted>>>,
}

/// How often progress reaches Python at most (each report takes the interpreter lock).
const PROGRESS_EVERY: Duration = Duration::from_millis(200);

/// How often a fit looks for Ctrl-C.
const SIGNAL_POLL: Duration = Duration::from_millis(20);

impl Model {
    fn fitted(&self) -> PyResult<Arc<Fitted>> {
        let guard = self.fitted.read().map_err(|_| {
            to_py(Error::Unsupported(
                "the model is unusable after a panic".into(),
            ))
        })?;
        guard.clone().ok_or_else(|| {
            to_py(Error::Unsupported(format!(
                "this {} model is not fitted yet: call fit(dataset) first",
                self.spec.kind()
            )))
        })
    }

    fn from_loaded(m: LoadedModel) -> Self {
        Model {
            spec: m.model.spec(),
            fitted: RwLock::new(Some(Arc::new(Fitted::Loaded(Box::new(m))))),
        }
    }
}

/// Checks that codes index `n` entities and narrows them.
fn codes(codes: &[i64], n: usize, what: &'static str) -> reco_core::Result<Vec<u32>> {
    crate::indices(codes, n).map_err(|c| Error::param(what, format!("index {c} is outside 0..{n}")))
}

/// The sorted, distinct item indices of an `items=` restriction.
fn allowed(items: Option<&[i64]>, n: usize) -> reco_core::Result<Option<Vec<u32>>> {
    items
        .map(|a| {
            let mut v = codes(a, n, "items")?;
            v.sort_unstable();
            v.dedup();
            Ok(v)
        })
        .transpose()
}

fn check_n(n: usize) -> reco_core::Result<()> {
    if n == 0 {
        return Err(Error::param("n", "must be at least 1"));
    }
    Ok(())
}

/// Lists of `width` entries per row, padded with index -1 and a NaN score when a row has
/// fewer (every item filtered out), as two row-major arrays.
fn rows(lists: Vec<Vec<Scored>>, width: usize) -> (Vec<i64>, Vec<f32>) {
    let mut ids = vec![-1i64; lists.len() * width];
    let mut scores = vec![f32::NAN; lists.len() * width];
    for (r, list) in lists.iter().enumerate() {
        for (c, s) in list.iter().take(width).enumerate() {
            ids[r * width + c] = i64::from(s.item);
            scores[r * width + c] = s.score;
        }
    }
    (ids, scores)
}

type Matrices<'py> = (Bound<'py, PyArray2<i64>>, Bound<'py, PyArray2<f32>>);
type Vectors<'py> = (Bound<'py, PyArray1<i64>>, Bound<'py, PyArray1<f32>>);

fn matrices<'py>(
    py: Python<'py>,
    (ids, scores): (Vec<i64>, Vec<f32>),
    shape: [usize; 2],
) -> PyResult<Matrices<'py>> {
    Ok((
        PyArray1::from_vec(py, ids).reshape(shape)?,
        PyArray1::from_vec(py, scores).reshape(shape)?,
    ))
}

#[pymethods]
impl Model {
    /// A model of the kind and parameters in `spec`, a JSON object such as
    /// `{"model": "ials", "factors": 64}`; unknown keys are errors.
    #[new]
    fn new(spec: &str) -> PyResult<Self> {
        let spec = ModelSpec::from_json(spec).map_err(to_py)?;
        Ok(Model {
            spec,
            fitted: RwLock::new(None),
        })
    }

    /// A model from the text of a model file, as `reco train --model FILE` reads it: TOML
    /// (a pipeline file such as `examples/pipeline.toml` needs no `model = "pipeline"`) or
    /// JSON.
    #[staticmethod]
    fn from_text(text: &str, toml: bool) -> PyResult<Self> {
        let spec = reco_pipeline::spec_from_file(text, toml).map_err(to_py)?;
        Ok(Model {
            spec,
            fitted: RwLock::new(None),
        })
    }

    /// The specification as JSON, every parameter included (defaults filled in).
    fn spec_json(&self) -> PyResult<String> {
        let v = self.spec.to_value().map_err(to_py)?;
        Ok(v.to_string())
    }

    /// The model's kind ("ials", "item-knn", ...).
    #[getter]
    fn kind(&self) -> &'static str {
        self.spec.kind()
    }

    /// Whether the model has been fitted (or loaded).
    #[getter]
    fn is_fitted(&self) -> bool {
        self.fitted.read().map(|f| f.is_some()).unwrap_or(false)
    }

    /// Fits the model on `data` (replacing an earlier fit). `progress`, if given, is called as
    /// `progress(stage, done, total, loss)` a few times a second; Ctrl-C stops the fit at the
    /// next epoch with `KeyboardInterrupt`. Other Python threads run during the fit.
    #[pyo3(signature = (data, seed=42, progress=None))]
    fn fit(
        &self,
        py: Python<'_>,
        data: &Dataset,
        seed: u64,
        progress: Option<Py<PyAny>>,
    ) -> PyResult<()> {
        let ds = data.inner.clone();
        let last = Mutex::new(Instant::now() - PROGRESS_EVERY);
        let signal: Mutex<Option<PyErr>> = Mutex::new(None);
        let report = |p: reco_core::model::Progress<'_>| {
            let due = match last.lock() {
                Ok(mut t) if t.elapsed() >= PROGRESS_EVERY || p.done >= p.total => {
                    *t = Instant::now();
                    true
                }
                _ => false,
            };
            if !due {
                return;
            }
            Python::attach(|py| {
                if let Some(cb) = &progress {
                    if let Err(e) = cb.call1(py, (p.stage, p.done, p.total, p.loss)) {
                        // Stops the fit at its next safe point; the error is raised after it.
                        reco_core::interrupt::request();
                        if let Ok(mut s) = signal.lock() {
                            s.get_or_insert(e);
                        }
                    }
                }
            });
        };
        let spec = &self.spec;
        let opts = FitOptions {
            seed,
            progress: Some(&report),
            validation: None,
            checkpoint: None,
        };
        // The fit runs on its own thread while this one, the caller's (the main thread, where
        // Python handles signals), checks for Ctrl-C every few milliseconds: models report
        // progress from worker threads, where signals cannot be seen.
        let result = std::thread::scope(|s| {
            let fitting = s.spawn(|| spec.fit(&ds, &opts));
            while !fitting.is_finished() {
                py.detach(|| std::thread::sleep(SIGNAL_POLL));
                if let Err(e) = py.check_signals() {
                    reco_core::interrupt::request();
                    if let Ok(mut s) = signal.lock() {
                        s.get_or_insert(e);
                    }
                }
            }
            fitting.join().unwrap_or_else(|_| {
                Err(Error::TrainingFailed {
                    model: spec.kind().into(),
                    message: "the fit panicked; this is a bug in reco".into(),
                })
            })
        });
        if let Some(e) = signal.lock().ok().and_then(|mut s| s.take()) {
            reco_core::interrupt::clear();
            return Err(e);
        }
        let model = result.map_err(to_py)?;
        let fitted = Fitted::Trained { model, data: ds };
        let mut slot = self.fitted.write().map_err(|_| {
            to_py(Error::Unsupported(
                "the model is unusable after a panic".into(),
            ))
        })?;
        *slot = Some(Arc::new(fitted));
        Ok(())
    }

    /// Number of users the fitted model knows.
    #[getter]
    fn n_users(&self) -> PyResult<usize> {
        Ok(self.fitted()?.users().len())
    }

    /// Number of items the fitted model scores.
    #[getter]
    fn n_items(&self) -> PyResult<usize> {
        Ok(self.fitted()?.items().len())
    }

    /// The ids of the users the model was fitted on, in index order.
    fn user_ids(&self) -> PyResult<Vec<String>> {
        Ok(self.fitted()?.users().ids().to_vec())
    }

    /// The ids of the items the model scores, in index order.
    fn item_ids(&self) -> PyResult<Vec<String>> {
        Ok(self.fitted()?.items().ids().to_vec())
    }

    /// The `n` best items for each user index, as `(items, scores)` arrays of shape
    /// `(len(users), n)`, best first; rows with fewer candidates end with index -1 and NaN.
    /// `filter_seen` leaves out each user's training items; `items` restricts the candidates.
    /// Users are scored in blocks (one matrix product per block for factor models), the
    /// blocks in parallel, with the interpreter released.
    #[pyo3(signature = (users, n=10, filter_seen=true, items=None))]
    fn recommend<'py>(
        &self,
        py: Python<'py>,
        users: PyReadonlyArray1<'py, i64>,
        n: usize,
        filter_seen: bool,
        items: Option<PyReadonlyArray1<'py, i64>>,
    ) -> PyResult<Matrices<'py>> {
        let f = self.fitted()?;
        check_n(n).map_err(to_py)?;
        let users = codes(users.as_slice()?, f.users().len(), "users").map_err(to_py)?;
        let items = items.as_ref().map(|a| a.as_slice()).transpose()?;
        let allow = allowed(items, f.items().len()).map_err(to_py)?;
        let width = n.min(f.items().len());
        let lists = py
            .detach(|| {
                f.model().recommend_users(&users, width, &|j| Filter {
                    exclude: if filter_seen { f.seen(users[j]) } else { &[] },
                    allow: allow.as_deref(),
                })
            })
            .map_err(to_py)?;
        matrices(py, rows(lists, width), [users.len(), width])
    }

    /// The `n` best items for someone with this history (item indices, and their values: 1
    /// when absent), who need not be a training user: a new user, or a known one with newer
    /// interactions. Models that cannot score from a history answer as for an unknown user.
    /// `filter_seen` leaves the history's items out.
    #[pyo3(signature = (history, values=None, n=10, filter_seen=true, items=None))]
    fn recommend_history<'py>(
        &self,
        py: Python<'py>,
        history: PyReadonlyArray1<'py, i64>,
        values: Option<PyReadonlyArray1<'py, f32>>,
        n: usize,
        filter_seen: bool,
        items: Option<PyReadonlyArray1<'py, i64>>,
    ) -> PyResult<Vectors<'py>> {
        let f = self.fitted()?;
        check_n(n).map_err(to_py)?;
        let n_items = f.items().len();
        let hist = codes(history.as_slice()?, n_items, "history").map_err(to_py)?;
        let values = values.as_ref().map(|v| v.as_slice()).transpose()?;
        if values.is_some_and(|v| v.len() != hist.len()) {
            return Err(to_py(Error::param(
                "values",
                "one value per history item is needed",
            )));
        }
        if let Some(bad) = values.and_then(|v| v.iter().find(|x| !x.is_finite())) {
            return Err(to_py(Error::param(
                "values",
                format!("{bad} is not a finite number"),
            )));
        }
        let pairs: Vec<(u32, f32)> = hist
            .iter()
            .enumerate()
            .map(|(k, &i)| (i, values.map_or(1.0, |v| v[k])))
            .collect();
        let mut exclude = if filter_seen { hist } else { Vec::new() };
        exclude.sort_unstable();
        exclude.dedup();
        let items = items.as_ref().map(|a| a.as_slice()).transpose()?;
        let allow = allowed(items, n_items).map_err(to_py)?;
        let width = n.min(n_items);
        let list = py
            .detach(|| {
                f.model().recommend(
                    &Query::history(&pairs),
                    width,
                    &Filter {
                        exclude: &exclude,
                        allow: allow.as_deref(),
                    },
                )
            })
            .map_err(to_py)?;
        let (ids, scores) = rows(vec![list], width);
        Ok((PyArray1::from_vec(py, ids), PyArray1::from_vec(py, scores)))
    }

    /// The `n` items most similar to each item index, as `(items, scores)` arrays of shape
    /// `(len(items), n)`; for models with item neighbours or item vectors.
    #[pyo3(signature = (items, n=10))]
    fn similar_items<'py>(
        &self,
        py: Python<'py>,
        items: PyReadonlyArray1<'py, i64>,
        n: usize,
    ) -> PyResult<Matrices<'py>> {
        let f = self.fitted()?;
        check_n(n).map_err(to_py)?;
        let items = codes(items.as_slice()?, f.items().len(), "items").map_err(to_py)?;
        let kind = self.spec.kind();
        let s = f.model().as_similar_items().ok_or_else(|| {
            to_py(Error::Unsupported(format!(
                "a {kind} model does not find similar items"
            )))
        })?;
        let width = n.min(f.items().len().saturating_sub(1)).max(1);
        let lists = py
            .detach(|| {
                items
                    .par_iter()
                    .map(|&i| s.similar_items(i, width))
                    .collect::<reco_core::Result<Vec<_>>>()
            })
            .map_err(to_py)?;
        matrices(py, rows(lists, width), [items.len(), width])
    }

    /// Predicted ratings for `(users[k], items[k])` pairs of indices; an index of -1 (an id the
    /// model does not know) gets the model's fallback (the global mean or a bias).
    fn predict<'py>(
        &self,
        py: Python<'py>,
        users: PyReadonlyArray1<'py, i64>,
        items: PyReadonlyArray1<'py, i64>,
    ) -> PyResult<Bound<'py, PyArray1<f32>>> {
        let f = self.fitted()?;
        let (users, items) = (users.as_slice()?, items.as_slice()?);
        if users.len() != items.len() {
            return Err(to_py(Error::param(
                "items",
                "users and items have different lengths",
            )));
        }
        let kind = self.spec.kind();
        let p = f.model().as_rating_predictor().ok_or_else(|| {
            to_py(Error::Unsupported(format!(
                "a {kind} model does not predict ratings; fit a rating model (svd, svdpp, \
                 baseline, user-knn, ...) on explicit data"
            )))
        })?;
        let (nu, ni) = (f.users().len(), f.items().len());
        let out: Vec<f32> = py.detach(|| {
            users
                .par_iter()
                .zip(items.par_iter())
                .map(|(&u, &i)| {
                    p.predict(
                        crate::index(u, nu).unwrap_or(u32::MAX),
                        crate::index(i, ni).unwrap_or(u32::MAX),
                    )
                })
                .collect()
        });
        Ok(PyArray1::from_vec(py, out))
    }

    /// The user vectors as a `(n_users, dim)` array (zeros for users without one), for models
    /// whose scores are inner products (matrix factorisation, two-tower). Factor models lend
    /// their own memory (a read-only view that keeps the fitted model alive, also after a
    /// refit); others are copied.
    fn user_factors<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let f = self.fitted()?;
        let n = f.users().len();
        self.vectors(py, f, n, |e| e.user_matrix(), |e, k| e.user_vector(k))
    }

    /// The item vectors as a `(n_items, dim)` array (zeros for items without one); a view of
    /// the model's memory where it has one matrix, as for `user_factors`.
    fn item_factors<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let f = self.fitted()?;
        let n = f.items().len();
        self.vectors(py, f, n, |e| e.item_matrix(), |e, k| e.item_vector(k))
    }

    /// Writes the fitted model as an artifact directory, the format `reco recommend --model`
    /// reads; an existing directory is refused unless `overwrite`.
    #[pyo3(signature = (path, overwrite=false))]
    fn save(&self, py: Python<'_>, path: PathBuf, overwrite: bool) -> PyResult<()> {
        let f = self.fitted()?;
        let existing = if overwrite {
            Existing::Replace
        } else {
            Existing::Refuse
        };
        py.detach(|| f.save(&path, existing)).map_err(to_py)
    }

    /// Reads an artifact directory written by `save` or `reco train --out`, checking its
    /// checksums and shapes.
    #[staticmethod]
    fn load(py: Python<'_>, path: PathBuf) -> PyResult<Self> {
        let m = py.detach(|| reco_models::load(&path)).map_err(to_py)?;
        Ok(Model::from_loaded(m))
    }

    /// The artifact's files as `{name: bytes}` (what pickling stores).
    fn to_files<'py>(&self, py: Python<'py>) -> PyResult<BTreeMap<String, Bound<'py, PyBytes>>> {
        let f = self.fitted()?;
        let files = py
            .detach(|| -> reco_core::Result<Vec<(String, Vec<u8>)>> {
                let tmp = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
                let dir = tmp.path().join("model");
                f.save(&dir, Existing::Refuse)?;
                let mut out = Vec::new();
                let entries = std::fs::read_dir(&dir).map_err(|e| Error::io(&dir, e))?;
                for entry in entries {
                    let path = entry.map_err(|e| Error::io(&dir, e))?.path();
                    let bytes = std::fs::read(&path).map_err(|e| Error::io(&path, e))?;
                    let name = path
                        .file_name()
                        .map(|n| n.to_string_lossy().into_owned())
                        .unwrap_or_default();
                    out.push((name, bytes));
                }
                Ok(out)
            })
            .map_err(to_py)?;
        Ok(files
            .into_iter()
            .map(|(n, b)| (n, PyBytes::new(py, &b)))
            .collect())
    }

    /// A model from the files of `to_files`, verified like an artifact on disk.
    #[staticmethod]
    fn from_files(py: Python<'_>, files: BTreeMap<String, Vec<u8>>) -> PyResult<Self> {
        let m = py
            .detach(|| -> reco_core::Result<LoadedModel> {
                let tmp = tempfile::tempdir().map_err(|e| Error::io(std::env::temp_dir(), e))?;
                for (name, bytes) in &files {
                    // Names come from a pickle, which may have been tampered with.
                    let plain = Path::new(name)
                        .file_name()
                        .is_some_and(|f| f == name.as_str());
                    if !plain {
                        return Err(Error::param(
                            "files",
                            format!("{name:?} is not a file name"),
                        ));
                    }
                    let path = tmp.path().join(name);
                    std::fs::write(&path, bytes).map_err(|e| Error::io(&path, e))?;
                }
                reco_models::load(tmp.path())
            })
            .map_err(to_py)?;
        Ok(Model::from_loaded(m))
    }

    fn __repr__(&self) -> String {
        let state = if self.is_fitted() {
            "fitted"
        } else {
            "not fitted"
        };
        format!("reco.Model({}, {state})", self.spec.kind())
    }
}

/// Keeps a fitted model alive while numpy arrays borrow its memory (their base object).
#[pyclass(frozen, module = "reco._reco")]
struct Lender(#[allow(dead_code)] Arc<Fitted>);

impl Model {
    fn vectors<'py>(
        &self,
        py: Python<'py>,
        f: Arc<Fitted>,
        n: usize,
        whole: impl for<'a> Fn(&'a dyn reco_core::model::Embeddings) -> Option<&'a [f32]>,
        get: impl for<'a> Fn(&'a dyn reco_core::model::Embeddings, u32) -> Option<&'a [f32]> + Sync,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let kind = self.spec.kind();
        let e = f.model().as_embeddings().ok_or_else(|| {
            to_py(Error::Unsupported(format!(
                "a {kind} model has no user and item vectors"
            )))
        })?;
        let dim = e.dim();
        if let Some(m) = whole(e).filter(|m| n.checked_mul(dim) == Some(m.len())) {
            let view = numpy::ndarray::ArrayView2::from_shape((n, dim), m)
                .map_err(|e| to_py(Error::Unsupported(format!("factor matrix: {e}"))))?;
            let owner = Bound::new(py, Lender(f.clone()))?.into_any();
            // SAFETY: the data belongs to the fitted model in `f`; `owner` holds a reference
            // to it and becomes the array's base, so the memory lives as long as the array
            // (a refit replaces the model's reference, not this one). The array is made
            // read-only below: fitted models are shared by threads without locks.
            let arr = unsafe { PyArray2::borrow_from_array(&view, owner) };
            let kwargs = pyo3::types::PyDict::new(py);
            kwargs.set_item("write", false)?;
            arr.call_method("setflags", (), Some(&kwargs))?;
            return Ok(arr);
        }
        let mut out = vec![0f32; n * dim];
        py.detach(|| {
            out.par_chunks_mut(dim.max(1))
                .enumerate()
                .for_each(|(k, row)| {
                    if let Some(v) = get(e, k as u32) {
                        let m = dim.min(v.len());
                        row[..m].copy_from_slice(&v[..m]);
                    }
                })
        });
        PyArray1::from_vec(py, out).reshape([n, dim])
    }
}
