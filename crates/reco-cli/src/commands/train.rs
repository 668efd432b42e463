//! `reco train`: fit one model and write it as an artifact directory.

use std::path::PathBuf;

use anyhow::Result;

use reco_core::artifact::Existing;
use reco_core::model::{FitOptions, Progress};
use reco_core::split::{self, Protocol};

use crate::models;
use crate::progress;
use crate::source::DataArgs;

/// Options of `reco train`.
#[derive(clap::Args, Debug)]
pub(crate) struct TrainArgs {
    #[command(flatten)]
    data: DataArgs,
    /// Model: a name (`popularity`) or a JSON spec (`{"model":"popularity","weighting":"trending"}`).
    #[arg(long, default_value = "popularity")]
    model: String,
    /// Seed.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Hold out this fraction of the data (at random) for early stopping by models with
    /// `patience` (the factor models, factorization machines, the hybrid and the neural
    /// networks); the model is trained on the rest.
    #[arg(long)]
    validation: Option<f64>,
    /// Artifact directory to write; it must not exist unless --force is given.
    #[arg(long)]
    out: PathBuf,
    /// Replace an existing artifact directory at --out (atomically, once the new one is
    /// complete).
    #[arg(long)]
    force: bool,
    /// Directory for the training state of a neural model (two-tower, content-dnn,
    /// neural-cf), saved after every epoch: if the fit is stopped (Ctrl-C, a crash), the same
    /// command resumes from the last completed epoch. Removed once the artifact is saved.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
}

/// Fits the model on the data (less the validation share) and saves it with the whole data's
/// histories, so `recommend` excludes validation items too.
pub(crate) fn run(a: TrainArgs) -> Result<()> {
    let TrainArgs {
        data,
        model,
        seed,
        validation,
        out,
        force,
        checkpoint,
    } = a;
    let existing = if force {
        Existing::Replace
    } else {
        Existing::Refuse
    };
    // The spec and the output are checked before the data are read: a typo or a taken name
    // fails at once, not after the fit.
    let named = models::parse_one(&model)?;
    if let Some(r) = validation.filter(|r| !(*r > 0.0 && *r < 1.0)) {
        anyhow::bail!(reco_core::Error::param(
            "validation",
            format!("needs a fraction in (0, 1), got {r}")
        ));
    }
    if checkpoint.is_some()
        && !reco_neural::KINDS
            .iter()
            .any(|k| k.name == named.spec.kind())
    {
        anyhow::bail!(reco_core::Error::param(
            "checkpoint",
            format!(
                "only the neural models train in resumable epochs ({}); {} fits in one go",
                reco_neural::KINDS
                    .iter()
                    .map(|k| k.name)
                    .collect::<Vec<_>>()
                    .join(", "),
                named.spec.kind()
            )
        ));
    }
    reco_core::artifact::check_target(&out, existing)?;
    if let Some(dir) = &checkpoint {
        std::fs::create_dir_all(dir)
            .map_err(|e| anyhow::Error::from(reco_core::Error::io(dir, e)))?;
    }
    let full = data.load()?;
    if full.interactions.nnz() == 0 {
        anyhow::bail!(reco_core::Error::data(format!(
            "{}: no interactions to train on (were all rows filtered out by --threshold?); \
             nothing was written",
            full.name
        )));
    }
    let folds;
    let (ds, held_out) = match validation {
        Some(r) => {
            folds = split::split(&full, &Protocol::Holdout { ratio: r }, seed)?;
            (&folds[0].train, Some(&folds[0].test))
        }
        None => (&full, None),
    };
    let bar = progress::bar(0, &named.name);
    let report = |p: Progress<'_>| {
        if p.stage == "resumed" {
            // Said once, so a rerun after Ctrl-C shows that it did not start over.
            bar.suspend(|| {
                eprintln!(
                    "resuming from the checkpoint: {} of {} epochs done",
                    p.done, p.total
                )
            });
            return;
        }
        bar.set_length(p.total);
        bar.set_position(p.done);
    };
    let fitted = named.spec.fit(
        ds,
        &FitOptions {
            seed,
            progress: Some(&report),
            validation: held_out,
            checkpoint: checkpoint.as_deref(),
        },
    );
    bar.finish_and_clear();
    let m = match (fitted, &checkpoint) {
        (Err(reco_core::Error::Interrupted), Some(dir)) => {
            return Err(
                anyhow::Error::from(reco_core::Error::Interrupted).context(format!(
                    "stopped; the last completed epoch is saved in {}: run the same command \
                     to resume from it",
                    dir.display()
                )),
            )
        }
        (r, _) => r?,
    };
    // Saved with the whole data, so `recommend` excludes validation items too.
    reco_models::save(
        m.as_ref(),
        &full,
        &out,
        serde_json::json!({ "dataset": ds.name, "seed": seed, "validation": validation }),
        existing,
    )?;
    if let Some(dir) = &checkpoint {
        reco_neural::checkpoint::remove(dir)?;
    }
    if let Some((eps, delta)) = m.privacy() {
        println!("privacy: ({eps:.3}, {delta:e})-differentially private per rating");
    }
    println!("saved {} to {}", named.name, out.display());
    Ok(())
}
