//! `reco data inspect | synth | split`: look at data, generate it, cut it into train and test
//! files.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Subcommand;

use reco_core::split::{self, Protocol};
use reco_core::{synth, Dataset};

use crate::progress;
use crate::source::DataArgs;

/// The synthetic data generators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Preset {
    /// The notebook's demo data (30 users, 60 items, 6 categories).
    Notebook,
    /// Zipf popularity, latent tastes, categories, text, timestamps, sessions, user and item
    /// features, at any size.
    Scalable,
}

#[derive(Subcommand, Debug)]
pub(crate) enum DataCommand {
    /// Counts, density, rating histogram, long-tail share, metadata fields.
    Inspect {
        #[command(flatten)]
        data: DataArgs,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Generate synthetic data and write it as RecBole atomic files (NAME.inter, .item, .user, .session).
    Synth {
        /// Generator: the notebook's demo data, or the scalable one (Zipf popularity, tastes,
        /// metadata, sessions).
        #[arg(long, value_enum, default_value_t = Preset::Notebook)]
        preset: Preset,
        /// Scalable preset: users.
        #[arg(long)]
        users: Option<usize>,
        /// Scalable preset: items.
        #[arg(long)]
        items: Option<usize>,
        /// Scalable preset: interactions.
        #[arg(long)]
        interactions: Option<usize>,
        /// Scalable preset: Zipf exponent of popularity.
        #[arg(long)]
        zipf: Option<f64>,
        /// Scalable preset: latent taste dimensions.
        #[arg(long)]
        dims: Option<usize>,
        /// Scalable preset: categories.
        #[arg(long)]
        categories: Option<usize>,
        /// Scalable preset: skip sessions.
        #[arg(long)]
        no_sessions: bool,
        /// Seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Base name of the files.
        #[arg(long, default_value = "synth")]
        name: String,
    },
    /// Split data with a protocol and write train/test CSV files (user,item,rating[,timestamp]).
    Split {
        #[command(flatten)]
        data: DataArgs,
        /// kfold:K, holdout:R, loo, temporal:F, timecut:Q|T, cold-users:F, cold-items:F.
        #[arg(long, default_value = "loo")]
        protocol: String,
        /// Seed.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Output directory: train.csv/test.csv, or fold-N/ for k-fold.
        #[arg(long)]
        out: PathBuf,
    },
}

/// Runs a `reco data` subcommand.
pub(crate) fn run(command: DataCommand) -> Result<()> {
    match command {
        DataCommand::Inspect { data, json } => inspect(&data.load()?, json),
        DataCommand::Synth {
            preset,
            users,
            items,
            interactions,
            zipf,
            dims,
            categories,
            no_sessions,
            seed,
            out,
            name,
        } => {
            let scalable_only = [
                ("--users", users.is_some()),
                ("--items", items.is_some()),
                ("--interactions", interactions.is_some()),
                ("--zipf", zipf.is_some()),
                ("--dims", dims.is_some()),
                ("--categories", categories.is_some()),
                ("--no-sessions", no_sessions),
            ];
            if let (Preset::Notebook, Some((flag, _))) =
                (preset, scalable_only.iter().find(|(_, given)| *given))
            {
                anyhow::bail!(reco_core::Error::param(
                    "preset",
                    format!("{flag} sizes the scalable generator; add --preset scalable")
                ));
            }
            let ds = match preset {
                Preset::Notebook => synth::notebook(&synth::NotebookConfig {
                    seed,
                    ..Default::default()
                })?,
                Preset::Scalable => {
                    let d = synth::ScalableConfig::default();
                    let c = synth::ScalableConfig {
                        users: users.unwrap_or(d.users),
                        items: items.unwrap_or(d.items),
                        interactions: interactions.unwrap_or(d.interactions),
                        zipf: zipf.unwrap_or(d.zipf),
                        dims: dims.unwrap_or(d.dims),
                        categories: categories.unwrap_or(d.categories),
                        sessions: !no_sessions,
                        seed,
                        ..d
                    };
                    let bar = progress::bar(c.users as u64, "generating users");
                    let ds = synth::scalable(&c, &|d, _| bar.set_position(d))?;
                    bar.finish_and_clear();
                    ds
                }
            };
            let spinner = progress::spinner("writing files");
            synth::write_atomic(&ds, &out, &name)?;
            spinner.finish_and_clear();
            println!(
                "wrote {} users, {} items, {} interactions to {}/{name}.*",
                ds.n_users(),
                ds.n_items(),
                ds.interactions.nnz(),
                out.display()
            );
            Ok(())
        }
        DataCommand::Split {
            data,
            protocol,
            seed,
            out,
        } => {
            let ds = data.load()?;
            let p: Protocol = protocol.parse()?;
            let folds = split::split(&ds, &p, seed)?;
            for (f, fold) in folds.iter().enumerate() {
                let dir = if folds.len() == 1 {
                    out.clone()
                } else {
                    out.join(format!("fold-{}", f + 1))
                };
                std::fs::create_dir_all(&dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
                write_csv(
                    &fold.train,
                    &fold.train.interactions,
                    &dir.join("train.csv"),
                )?;
                write_csv(&fold.train, &fold.test, &dir.join("test.csv"))?;
                if let Some(c) = &fold.candidates {
                    write_candidates(&fold.train, c, &dir.join("candidates.csv"))?;
                }
                println!(
                    "{}: train {} / test {} interactions",
                    dir.display(),
                    fold.train.interactions.nnz(),
                    fold.test.nnz()
                );
            }
            Ok(())
        }
    }
}

/// Writes the items a fold ranks among (cold-item splits): one item id per line under `item`.
fn write_candidates(ds: &Dataset, items: &[u32], path: &Path) -> Result<()> {
    let mut text = String::from("item\n");
    for &i in items {
        text.push_str(ds.items.id(i));
        text.push('\n');
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}

/// Reads a `candidates.csv` written by `reco data split`; every id must be in the fold.
pub(crate) fn read_candidates(ds: &Dataset, path: &Path) -> Result<Vec<u32>> {
    let text = reco_core::input::read_text(path)?;
    let mut items = text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .enumerate()
        .map(|(n, id)| {
            ds.items.get(id.trim()).with_context(|| {
                format!(
                    "{}:{}: item {id:?} is in neither train nor test",
                    path.display(),
                    n + 2
                )
            })
        })
        .collect::<Result<Vec<u32>>>()?;
    items.sort_unstable();
    items.dedup();
    Ok(items)
}

fn write_csv(ds: &Dataset, m: &reco_core::Interactions, path: &Path) -> Result<()> {
    let f = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut w = std::io::BufWriter::new(f);
    let ts = m.timestamps();
    writeln!(
        w,
        "user,item,rating{}",
        if ts.is_some() { ",timestamp" } else { "" }
    )?;
    let quote = |s: &str| {
        if s.contains([',', '"']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    };
    for u in 0..m.n_users() as u32 {
        let r = m.row_range(u);
        for p in r {
            let i = m.indices()[p];
            write!(
                w,
                "{},{},{}",
                quote(ds.users.id(u)),
                quote(ds.items.id(i)),
                m.values()[p]
            )?;
            match ts {
                Some(t) => writeln!(w, ",{}", t[p])?,
                None => writeln!(w)?,
            }
        }
    }
    w.flush()?;
    Ok(())
}

fn inspect(ds: &Dataset, json: bool) -> Result<()> {
    let s = ds.stats();
    if json {
        println!("{}", serde_json::to_string_pretty(&s)?);
        return Ok(());
    }
    println!("dataset        {}", s.name);
    println!("feedback       {:?}", s.feedback);
    println!("users          {}", s.users);
    println!("items          {}", s.items);
    println!("interactions   {}", s.interactions);
    println!("density        {:.6}", s.density);
    println!(
        "per user       min {} / median {} / max {}",
        s.min_user_interactions, s.median_user_interactions, s.max_user_interactions
    );
    println!(
        "empty          {} users, {} items without interactions",
        s.users_without_interactions, s.items_without_interactions
    );
    println!(
        "long tail      top 20% of items hold {:.1}% of interactions",
        100.0 * s.top20_item_share
    );
    if let (Some(a), Some(b)) = (s.min_timestamp, s.max_timestamp) {
        println!("time range     {a} .. {b}");
    }
    if !s.rating_histogram.is_empty() {
        println!("ratings");
        let max = s
            .rating_histogram
            .iter()
            .map(|x| x.1)
            .max()
            .unwrap_or(1)
            .max(1);
        for (bin, count) in &s.rating_histogram {
            println!(
                "  {bin:>4}  {count:>10}  {}",
                "#".repeat((40 * count).div_ceil(max))
            );
        }
    }
    if !s.item_metadata_fields.is_empty() {
        println!("item metadata  {}", s.item_metadata_fields.join(", "));
    }
    if !s.user_metadata_fields.is_empty() {
        println!("user metadata  {}", s.user_metadata_fields.join(", "));
    }
    if s.sessions > 0 {
        println!("sessions       {}", s.sessions);
    }
    println!(
        "memory         {:.1} MiB (interaction matrix)",
        s.memory_bytes as f64 / (1 << 20) as f64
    );
    let r = &s.report;
    if r.duplicates.rows_merged > 0 || r.skipped_rows > 0 || r.below_threshold > 0 {
        println!(
            "load report    {} rows read, {} merged duplicates, {} skipped, {} below threshold",
            r.rows_read, r.duplicates.rows_merged, r.skipped_rows, r.below_threshold
        );
    }
    Ok(())
}
