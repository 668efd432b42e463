//! `reco serve`: the HTTP recommendation server (crate `reco-serve`; docs/serve.md).

use std::path::PathBuf;

use anyhow::{Context, Result};

use reco_serve::config::ModelSource;
use reco_serve::{Config, ServeError};

use crate::source::DataArgs;

/// Options of `reco serve`.
#[derive(clap::Args, Debug)]
pub(crate) struct ServeArgs {
    /// Start at once on the notebook's synthetic data with the default model, an SQLite file
    /// `reco-demo.db` in the working directory and 127.0.0.1:8080 (other options override).
    #[arg(long)]
    demo: bool,
    /// Configuration file (TOML; docs/serve.md lists every key).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Address to listen on (overrides `listen`).
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
    /// Database URL, `sqlite://FILE` or `postgres://USER@HOST:PORT/DB` (overrides `database`).
    #[arg(long, value_name = "URL")]
    database: Option<String>,
    /// Model to serve: a JSON spec or a model/pipeline file (overrides `model`).
    #[arg(long)]
    model: Option<String>,
    /// Worker threads for requests (default: the cores).
    #[arg(long)]
    threads: Option<usize>,
    /// With --data: seed an empty store from these files (any format the loaders read).
    #[command(flatten)]
    data: DataArgs,
}

/// True when `--data` was written on the command line (its default is only for other
/// commands; serve seeds from data only when asked).
fn data_given() -> bool {
    std::env::args_os().any(|a| {
        let a = a.to_string_lossy();
        a == "--data" || a.starts_with("--data=")
    })
}

/// Runs `reco serve`.
pub(crate) fn run(a: ServeArgs) -> Result<()> {
    let mut cfg = match &a.config {
        Some(p) => Config::from_file(p).map_err(to_anyhow)?,
        None => Config::default(),
    };
    if a.demo && a.config.is_none() {
        cfg.database = "sqlite://reco-demo.db".into();
        // A small store: retrain after a few hundred events so the demo shows a new version.
        cfg.retrain.after_events = 500;
    }
    if let Some(l) = a.listen {
        cfg.listen = l;
    }
    if let Some(d) = a.database {
        cfg.database = d;
    }
    if let Some(m) = &a.model {
        cfg.model = if m.trim_start().starts_with('{') {
            ModelSource::Inline(serde_json::from_str(m).context("--model is not valid JSON")?)
        } else {
            ModelSource::File(PathBuf::from(m))
        };
    }
    cfg.check().map_err(to_anyhow)?;
    let seed = if a.demo && !data_given() {
        Some(crate::source::synthesize("notebook,seed=42")?)
    } else if data_given() {
        Some(a.data.load()?)
    } else {
        None
    };
    let threads = a.threads.unwrap_or_else(|| {
        std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get)
    });
    reco_serve::run(cfg, seed, threads).map_err(to_anyhow)
}

/// Keeps engine errors as `reco_core::Error` so the exit code names their class.
fn to_anyhow(e: ServeError) -> anyhow::Error {
    match e {
        ServeError::Engine(e) => e.into(),
        e => anyhow::anyhow!(e),
    }
}
