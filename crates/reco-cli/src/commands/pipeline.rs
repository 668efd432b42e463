//! `reco pipeline`: evaluate a retrieval + ranking pipeline written as a TOML file.

use std::path::PathBuf;

use anyhow::{Context, Result};

use super::eval::{eval, EvalArgs};
use crate::models::Named;

/// Options of `reco pipeline`.
#[derive(clap::Args, Debug)]
pub(crate) struct PipelineArgs {
    /// The pipeline file.
    #[arg(long)]
    config: PathBuf,
    #[command(flatten)]
    eval: Box<EvalArgs>,
}

/// Reads the pipeline and evaluates it beside any `--model` given.
pub(crate) fn run(a: PipelineArgs) -> Result<()> {
    let PipelineArgs { config, eval: args } = a;
    let text = reco_core::input::read_text(&config)?;
    let spec =
        reco_pipeline::spec_from_toml(&text).with_context(|| format!("{}", config.display()))?;
    let name = spec
        .params::<reco_pipeline::Pipeline>()
        .and_then(|p| p.name.clone())
        .or_else(|| config.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "pipeline".into());
    eval(*args, vec![Named { name, spec }])
}
