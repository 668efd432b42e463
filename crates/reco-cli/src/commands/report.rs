//! `reco report`: the HTML report of an evaluation's results.json or a search's tune.json.

use std::path::PathBuf;

use anyhow::Result;
use reco_core::Error;

/// Options of `reco report`.
#[derive(clap::Args, Debug)]
pub(crate) struct ReportArgs {
    /// results.json of `reco eval --out DIR`, tune.json of `reco tune --out DIR`, or one of
    /// those directories.
    input: PathBuf,
    /// The HTML file to write (default: report.html beside the input).
    #[arg(long)]
    out: Option<PathBuf>,
}

/// Runs `reco report`.
pub(crate) fn run(a: ReportArgs) -> Result<()> {
    let input = if a.input.is_dir() {
        ["results.json", "tune.json"]
            .iter()
            .map(|n| a.input.join(n))
            .find(|p| p.is_file())
            .ok_or_else(|| {
                Error::param(
                    "report",
                    format!(
                        "{} holds neither results.json nor tune.json",
                        a.input.display()
                    ),
                )
            })?
    } else {
        a.input.clone()
    };
    let text = reco_core::input::read_text(&input)?;
    let v: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| Error::param("report", format!("{}: not JSON: {e}", input.display())))?;
    let html = if v.get("protocol").is_some() && v.get("models").is_some() {
        let r: reco_eval::Report = serde_json::from_value(v).map_err(|e| {
            Error::param(
                "report",
                format!("{}: not an evaluation's results: {e}", input.display()),
            )
        })?;
        reco_eval::html::eval_report(&r)
    } else if v.get("trials").is_some() && v.get("folds").is_some() {
        let t: reco_tune::Tuned = serde_json::from_value(v).map_err(|e| {
            Error::param(
                "report",
                format!("{}: not a search's result: {e}", input.display()),
            )
        })?;
        let space = reco_tune::Space::from_json(&t.space)?;
        reco_tune::html_report(&t, &space)
    } else {
        return Err(Error::param(
            "report",
            format!(
                "{}: neither an evaluation's results.json nor a search's tune.json",
                input.display()
            ),
        )
        .into());
    };
    let out = a.out.unwrap_or_else(|| input.with_file_name("report.html"));
    super::write_file(&out, html.as_bytes())?;
    println!("wrote {}", out.display());
    Ok(())
}
