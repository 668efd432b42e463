//! # reco-py
//!
//! The extension module `reco._reco` of the Python package `reco` (built by maturin from
//! `pyproject.toml` at the repository's root). It works in dense indices: the Python layer
//! (`python/reco`) turns the caller's ids, DataFrames and sparse matrices into index arrays
//! and maps results back, so that ids keep their Python type and this crate stays free of
//! pandas and scipy.
//!
//! Long work (fitting, batch recommendation) runs with the interpreter detached, so other
//! Python threads run meanwhile, and batch calls use every core through rayon.
#![warn(missing_docs)]

mod dataset;
mod eval;
mod model;

use pyo3::prelude::*;

pub use dataset::Dataset;
pub use model::Model;

/// `code` as one of reco's 32-bit indices below `n`, if it is one (`n` never exceeds
/// `u32::MAX`: id maps are checked when built).
pub(crate) fn index(code: i64, n: usize) -> Option<u32> {
    usize::try_from(code)
        .ok()
        .filter(|&c| c < n)
        .and_then(|c| u32::try_from(c).ok())
}

/// Every code as an index below `n`, or the first code that is not one.
pub(crate) fn indices(codes: &[i64], n: usize) -> Result<Vec<u32>, i64> {
    codes.iter().map(|&c| index(c, n).ok_or(c)).collect()
}

/// Converts a reco error into the Python exception of its category (defined in
/// `reco/_errors.py`, so that they can derive from `ValueError` and friends), with the message
/// the command line prints.
pub(crate) fn to_py(e: reco_core::Error) -> PyErr {
    use reco_core::ErrorCategory as C;
    let name = match e.category() {
        C::Data => "DataError",
        C::Spec => "SpecError",
        C::Training => "TrainingError",
        C::Artifact => "ArtifactError",
        C::Io => "StorageError",
        C::Unsupported => "UnsupportedError",
        C::Resources => "ResourceError",
        C::Interrupted => "StoppedError",
    };
    let message = e.to_string();
    Python::attach(|py| {
        let class = py
            .import("reco._errors")
            .and_then(|m| m.getattr(name))
            .and_then(|c| c.call1((message.clone(),)));
        match class {
            Ok(exc) => PyErr::from_value(exc),
            Err(_) => pyo3::exceptions::PyValueError::new_err(message),
        }
    })
}

/// The model kinds this build knows, as the JSON of `reco models --json`: a list of
/// `{kind, summary, capabilities, renamed, examples}`.
#[pyfunction]
fn kinds_json() -> PyResult<String> {
    let rows = reco_models::registry::kinds()
        .into_iter()
        .map(reco_models::registry::describe)
        .collect::<reco_core::Result<Vec<_>>>()
        .map_err(to_py)?;
    Ok(serde_json::Value::Array(rows).to_string())
}

/// The version of the engine.
#[pyfunction]
fn version() -> &'static str {
    env!("CARGO_PKG_VERSION")
}

/// The module: the classes, the loaders and the kinds, with the neural and composite kinds
/// registered as in the command line.
#[pymodule]
fn _reco(m: &Bound<'_, PyModule>) -> PyResult<()> {
    reco_neural::register()
        .and_then(|()| reco_pipeline::register())
        .map_err(to_py)?;
    m.add_class::<Dataset>()?;
    m.add_class::<Model>()?;
    m.add_function(wrap_pyfunction!(kinds_json, m)?)?;
    m.add_function(wrap_pyfunction!(version, m)?)?;
    m.add_function(wrap_pyfunction!(dataset::load, m)?)?;
    m.add_function(wrap_pyfunction!(dataset::synthetic, m)?)?;
    m.add_function(wrap_pyfunction!(eval::evaluate_json, m)?)?;
    m.add_function(wrap_pyfunction!(eval::report_html, m)?)?;
    Ok(())
}
