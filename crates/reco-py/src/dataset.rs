//! Datasets from index arrays, files and the synthetic generator.

use std::path::PathBuf;
use std::sync::Arc;

use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::prelude::*;

use reco_core::interactions::{DuplicatePolicy, Interactions, Triplets};
use reco_core::loaders::LoadOptions;
use reco_core::{Error, Feedback, IdMap};

use crate::to_py;

/// Interactions in one dense id space, with the ids, metadata and sessions a loader read.
/// Built by `reco.Dataset.from_pandas`/`from_sparse`/`from_arrays`, `reco.load` and
/// `reco.synthetic`; shared, never copied, by the models fitted on it.
#[pyclass(module = "reco._reco", frozen)]
pub struct Dataset {
    pub(crate) inner: Arc<reco_core::Dataset>,
}

impl Dataset {
    pub(crate) fn new(ds: reco_core::Dataset) -> Self {
        Dataset {
            inner: Arc::new(ds),
        }
    }
}

fn feedback_of(name: Option<&str>, default: Feedback) -> PyResult<Feedback> {
    match name {
        None => Ok(default),
        Some("explicit") => Ok(Feedback::Explicit),
        Some("implicit") => Ok(Feedback::Implicit),
        Some(other) => Err(to_py(Error::param(
            "feedback",
            format!("{other:?} is not one of explicit, implicit"),
        ))),
    }
}

/// An id map from distinct ids; a repeated id is an error (the codes would be ambiguous).
fn id_map(ids: Vec<String>, what: &str) -> reco_core::Result<IdMap> {
    if u32::try_from(ids.len()).is_err() {
        return Err(Error::data(format!(
            "{what}: {} ids are more than reco's 2^32 - 1",
            ids.len()
        )));
    }
    let mut map = IdMap::new();
    for id in &ids {
        let before = map.len();
        if map.get_or_insert(id) as usize != before {
            return Err(Error::data(format!("{what}: the id {id:?} appears twice")));
        }
    }
    Ok(map)
}

/// Checks codes against the number of ids and narrows them to reco's 32-bit indices.
fn codes(codes: &[i64], n: usize, what: &str) -> reco_core::Result<Vec<u32>> {
    crate::indices(codes, n).map_err(|c| {
        Error::data(format!(
            "{what}: code {c} is outside 0..{n} (one code per id, from 0)"
        ))
    })
}

#[pymethods]
impl Dataset {
    /// Builds a dataset from per-row user and item codes (indices into `user_ids` and
    /// `item_ids`), optional values (ratings or weights; 1 when absent) and optional Unix
    /// timestamps. `feedback` is "explicit" or "implicit" (default: explicit when values are
    /// given); `duplicates` says how repeated (user, item) rows merge: last, first, sum, max
    /// or mean.
    #[staticmethod]
    #[pyo3(signature = (user_codes, item_codes, user_ids, item_ids, values=None, timestamps=None, feedback=None, duplicates="last", name="data"))]
    #[allow(clippy::too_many_arguments)]
    fn from_codes(
        py: Python<'_>,
        user_codes: PyReadonlyArray1<'_, i64>,
        item_codes: PyReadonlyArray1<'_, i64>,
        user_ids: Vec<String>,
        item_ids: Vec<String>,
        values: Option<PyReadonlyArray1<'_, f32>>,
        timestamps: Option<PyReadonlyArray1<'_, i64>>,
        feedback: Option<&str>,
        duplicates: &str,
        name: &str,
    ) -> PyResult<Self> {
        let users = user_codes.as_slice()?;
        let items = item_codes.as_slice()?;
        let values = values.as_ref().map(|v| v.as_slice()).transpose()?;
        let timestamps = timestamps.as_ref().map(|t| t.as_slice()).transpose()?;
        let feedback = feedback_of(
            feedback,
            if values.is_some() {
                Feedback::Explicit
            } else {
                Feedback::Implicit
            },
        )?;
        let policy: DuplicatePolicy = duplicates.parse().map_err(to_py)?;
        let n = users.len();
        let lengths_agree = items.len() == n
            && values.is_none_or(|v| v.len() == n)
            && timestamps.is_none_or(|t| t.len() == n);
        if !lengths_agree {
            return Err(to_py(Error::data(
                "users, items, values and timestamps have different lengths",
            )));
        }
        let build = || -> reco_core::Result<reco_core::Dataset> {
            let user_map = id_map(user_ids, "user_ids")?;
            let item_map = id_map(item_ids, "item_ids")?;
            let values = match values {
                Some(v) => {
                    if let Some(p) = v.iter().position(|x| !x.is_finite()) {
                        return Err(Error::data(format!(
                            "values: row {p} has the value {}, not a finite number",
                            v[p]
                        )));
                    }
                    v.to_vec()
                }
                None => vec![1.0; n],
            };
            let t = Triplets {
                users: codes(users, user_map.len(), "user_codes")?,
                items: codes(items, item_map.len(), "item_codes")?,
                values,
                timestamps: timestamps.map(<[i64]>::to_vec),
            };
            let (interactions, duplicates) =
                Interactions::from_triplets(&t, user_map.len(), item_map.len(), policy)?;
            Ok(reco_core::Dataset {
                name: name.to_string(),
                users: Arc::new(user_map),
                items: Arc::new(item_map),
                interactions,
                feedback,
                item_features: None,
                user_features: None,
                sessions: None,
                report: reco_core::LoadReport {
                    rows_read: n,
                    duplicates,
                    ..Default::default()
                },
            })
        };
        let ds = py.detach(build).map_err(to_py)?;
        Ok(Dataset::new(ds))
    }

    /// The dataset's name (file or preset).
    #[getter]
    fn name(&self) -> &str {
        &self.inner.name
    }

    /// Number of users.
    #[getter]
    fn n_users(&self) -> usize {
        self.inner.n_users()
    }

    /// Number of items.
    #[getter]
    fn n_items(&self) -> usize {
        self.inner.n_items()
    }

    /// Number of (user, item) interactions after merging duplicates.
    #[getter]
    fn nnz(&self) -> usize {
        self.inner.interactions.nnz()
    }

    /// "explicit" (ratings) or "implicit".
    #[getter]
    fn feedback(&self) -> &'static str {
        match self.inner.feedback {
            Feedback::Explicit => "explicit",
            Feedback::Implicit => "implicit",
        }
    }

    /// Whether the interactions carry timestamps.
    #[getter]
    fn has_timestamps(&self) -> bool {
        self.inner.interactions.has_timestamps()
    }

    /// Whether items have metadata (categories, text, numeric fields).
    #[getter]
    fn has_item_features(&self) -> bool {
        self.inner.item_features.is_some()
    }

    /// The user ids, in index order.
    fn user_ids(&self) -> Vec<String> {
        self.inner.users.ids().to_vec()
    }

    /// The item ids, in index order.
    fn item_ids(&self) -> Vec<String> {
        self.inner.items.ids().to_vec()
    }

    /// The interactions as arrays `(users, items, values, timestamps or None)`, one entry per
    /// interaction, users ascending (CSR order).
    #[allow(clippy::type_complexity)]
    fn arrays<'py>(
        &self,
        py: Python<'py>,
    ) -> (
        Bound<'py, PyArray1<u32>>,
        Bound<'py, PyArray1<u32>>,
        Bound<'py, PyArray1<f32>>,
        Option<Bound<'py, PyArray1<i64>>>,
    ) {
        let m = &self.inner.interactions;
        let users: Vec<u32> = (0..m.n_users() as u32)
            .flat_map(|u| std::iter::repeat_n(u, m.user_len(u)))
            .collect();
        (
            PyArray1::from_vec(py, users),
            PyArray1::from_slice(py, m.indices()),
            PyArray1::from_slice(py, m.values()),
            m.timestamps().map(|t| PyArray1::from_slice(py, t)),
        )
    }

    /// Cuts the dataset with a protocol of `reco eval --protocol` ("kfold:5", "holdout:0.2",
    /// "loo", "temporal:0.2", "timecut:0.9", "cold-users:0.1", "cold-items:0.1");
    /// returns `(train, test)` pairs sharing the dataset's ids.
    #[pyo3(signature = (protocol, seed=42))]
    fn split(&self, py: Python<'_>, protocol: &str, seed: u64) -> PyResult<Vec<(Self, Self)>> {
        let protocol: reco_core::split::Protocol = protocol.parse().map_err(to_py)?;
        let ds = self.inner.clone();
        let folds = py
            .detach(|| reco_core::split::split(&ds, &protocol, seed))
            .map_err(to_py)?;
        Ok(folds
            .into_iter()
            .map(|f| {
                let test = f.train.with_interactions(f.test);
                (Dataset::new(f.train), Dataset::new(test))
            })
            .collect())
    }

    fn __repr__(&self) -> String {
        format!(
            "reco.Dataset({:?}: {} users, {} items, {} {} interactions)",
            self.inner.name,
            self.inner.n_users(),
            self.inner.n_items(),
            self.inner.interactions.nnz(),
            self.feedback()
        )
    }
}

/// Loads a dataset directory or file the command line reads (MovieLens 100K/1M/20M, RecBole
/// atomic files, a delimited file with a header). `feedback` forces "explicit" or "implicit";
/// `threshold` keeps ratings at or above it as implicit positives; `duplicates` merges
/// repeated pairs (last, first, sum, max, mean); `skip_bad_rows` counts malformed rows instead
/// of stopping at the first.
#[pyfunction]
#[pyo3(signature = (path, feedback=None, threshold=None, duplicates="last", skip_bad_rows=false))]
pub fn load(
    py: Python<'_>,
    path: PathBuf,
    feedback: Option<&str>,
    threshold: Option<f32>,
    duplicates: &str,
    skip_bad_rows: bool,
) -> PyResult<Dataset> {
    let opts = LoadOptions {
        duplicates: duplicates.parse().map_err(to_py)?,
        skip_bad_rows,
        threshold,
        feedback: match feedback {
            None => None,
            Some(f) => Some(feedback_of(Some(f), Feedback::Implicit)?),
        },
        ..Default::default()
    };
    let ds = py
        .detach(|| reco_core::loaders::load(&path, None, None, &opts))
        .map_err(to_py)?;
    Ok(Dataset::new(ds))
}

/// The embedded synthetic data: "notebook" (30 users, 60 items, 6 categories; options
/// `notebook,seed=3,users=50,items=80`) or "users=...,items=...,interactions=...,seed=..."
/// for the scalable generator (Zipf popularity, categories, text, timestamps, sessions).
#[pyfunction]
#[pyo3(signature = (spec="notebook"))]
pub fn synthetic(py: Python<'_>, spec: &str) -> PyResult<Dataset> {
    let spec = spec.strip_prefix("synth:").unwrap_or(spec);
    let ds = py
        .detach(|| reco_core::synth::from_spec(spec, &|_, _| {}))
        .map_err(to_py)?;
    Ok(Dataset::new(ds))
}
