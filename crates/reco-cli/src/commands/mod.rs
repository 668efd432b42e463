//! The subcommands, one module each. This module holds the shape of the command line and
//! hands each subcommand to its module.

mod audit;
mod data;
mod demo;
mod eval;
mod kinds;
mod lookup;
mod pipeline;
mod report;
mod serve;
mod train;
mod tune;

use anyhow::Result;
use clap::{Parser, Subcommand};

/// reco — build, evaluate and serve recommendations.
#[derive(Parser, Debug)]
#[command(name = "reco", version, about, long_about = None)]
pub struct Cli {
    /// Memory a command may plan to use, e.g. `4G` or `512M` (default: the memory the system
    /// reports as available). Fits and generators whose estimate is larger stop at once, naming
    /// the parameter to lower.
    #[arg(long, global = true, value_name = "SIZE")]
    memory_limit: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Inspect, generate and split data.
    #[command(subcommand)]
    Data(data::DataCommand),
    /// Fit a model and write it as an artifact directory.
    Train(train::TrainArgs),
    /// Evaluate models under a protocol, or on a ready-made train/test pair.
    Eval(Box<eval::EvalArgs>),
    /// Evaluate a retrieval + ranking pipeline described in a TOML file (sources and budgets,
    /// models, ranker, re-rankers; see docs/pipeline.md), beside any --model given.
    Pipeline(pipeline::PipelineArgs),
    /// Fairness and popularity-bias audit of models on the first fold of a protocol: exposure by
    /// item-popularity group, popularity lift, accuracy by user group.
    Audit(audit::AuditArgs),
    /// Recommend for a user from a saved model.
    Recommend(lookup::RecommendArgs),
    /// Write the user and item vectors of a saved embedding model (factor models, two-tower)
    /// as tab-separated files `users.tsv` and `items.tsv`: the external id, then the vector.
    ExportVectors(lookup::ExportArgs),
    /// Items similar to an item, from a saved model that can tell (kNN, content, co-visitation,
    /// RP3β, factor models).
    Similar(lookup::SimilarArgs),
    /// List the model kinds, what each can do, and example specifications.
    Models(kinds::ModelsArgs),
    /// The main job: the notebook's data and protocol, every model, a comparison table.
    Demo(demo::DemoArgs),
    /// Search hyper-parameters: trials of a search space (grid, random or TPE) scored on
    /// validation data carved from the training part, the winner scored once on the test part
    /// and written as a model file; resumable.
    Tune(Box<tune::TuneArgs>),
    /// Write the HTML report (inline SVG charts, opens offline) of an evaluation's
    /// results.json or a search's tune.json.
    Report(report::ReportArgs),
    /// Serve recommendations over HTTP: feedback stored durably (SQLite or PostgreSQL), new
    /// events reflected at once, retraining with a promotion gate, model versions and rollback
    /// (docs/serve.md).
    Serve(Box<serve::ServeArgs>),
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> Result<()> {
    if let Some(limit) = &cli.memory_limit {
        reco_core::resources::set_memory_budget(reco_core::resources::parse_size(limit)?);
    }
    match cli.command {
        Command::Data(c) => data::run(c),
        Command::Train(a) => train::run(a),
        Command::Eval(a) => eval::eval(*a, Vec::new()),
        Command::Pipeline(a) => pipeline::run(a),
        Command::Audit(a) => audit::run(a),
        Command::Recommend(a) => lookup::run_recommend(a),
        Command::ExportVectors(a) => lookup::run_export(a),
        Command::Similar(a) => lookup::run_similar(a),
        Command::Models(a) => kinds::run(a),
        Command::Demo(a) => demo::run(a),
        Command::Serve(a) => serve::run(*a),
        Command::Tune(a) => tune::run(*a),
        Command::Report(a) => report::run(a),
    }
}

/// Writes a result file whole or not at all (a temporary file renamed into place).
pub(crate) fn write_file(path: &std::path::Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, bytes).map_err(|e| reco_core::Error::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| reco_core::Error::io(path, e))?;
    Ok(())
}
