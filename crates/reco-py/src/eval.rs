//! Evaluation from Python: `reco eval` on a dataset.

use pyo3::prelude::*;

use crate::dataset::Dataset;
use crate::to_py;

/// Evaluates named models (`(name, spec JSON)` pairs) on `data` under `protocol`, as `reco
/// eval` does: every fold fitted and ranked, metrics with 95% intervals at each cutoff, rating
/// errors for rating models, paired tests against `baseline`, accuracy per group of each user
/// field in `groups`. Returns the report as JSON.
#[pyfunction]
#[pyo3(signature = (data, models, protocol="temporal:0.2", ks=vec![10], seed=42, relevance_threshold=None, baseline=None, auc=false, ranking=true, groups=vec![]))]
#[allow(clippy::too_many_arguments)]
pub fn evaluate_json(
    py: Python<'_>,
    data: &Dataset,
    models: Vec<(String, String)>,
    protocol: &str,
    ks: Vec<usize>,
    seed: u64,
    relevance_threshold: Option<f32>,
    baseline: Option<String>,
    auc: bool,
    ranking: bool,
    groups: Vec<String>,
) -> PyResult<String> {
    let specs = models
        .into_iter()
        .map(|(name, spec)| Ok((name, reco_models::ModelSpec::from_json(&spec)?)))
        .collect::<reco_core::Result<Vec<_>>>()
        .map_err(to_py)?;
    let candidates: Vec<reco_eval::Candidate<'static>> = specs
        .into_iter()
        .map(|(name, spec)| reco_eval::Candidate {
            name,
            spec: spec.to_value().unwrap_or_default(),
            fit: spec.into_fit_fn(),
        })
        .collect();
    let protocol_text = protocol.to_string();
    let protocol: reco_core::split::Protocol = protocol.parse().map_err(to_py)?;
    let mut ks = ks;
    ks.sort_unstable();
    ks.dedup();
    let cfg = reco_eval::EvalConfig {
        ks,
        seed,
        relevance_threshold,
        baseline,
        auc,
        ranking,
        groups,
    };
    let ds = data.inner.clone();
    let report = py
        .detach(|| {
            let folds = reco_core::split::split(&ds, &protocol, seed)?;
            reco_eval::evaluate(
                &ds.name,
                &protocol_text,
                &folds,
                &candidates,
                &cfg,
                None,
                &|_, _| {},
            )
        })
        .map_err(to_py)?;
    Ok(reco_eval::report::to_json(&report))
}

/// The HTML report (inline SVG, opens offline) of an evaluation's JSON report, as
/// `reco eval --report` writes it.
#[pyfunction]
pub fn report_html(report_json: &str) -> PyResult<String> {
    let r: reco_eval::Report = serde_json::from_str(report_json).map_err(|e| {
        to_py(reco_core::Error::param(
            "report",
            format!("not an evaluation's report: {e}"),
        ))
    })?;
    Ok(reco_eval::html::eval_report(&r))
}
