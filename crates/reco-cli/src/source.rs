//! Turning command-line data options into a dataset or a ready-made split.

use std::path::PathBuf;

use anyhow::{bail, Result};
use clap::Args;

use reco_core::loaders::{
    self, parse_event_weights, ColumnRef, Delimiter, Entity, InteractionColumns, LoadOptions,
    MetadataColumns, TextFormat, UnknownIds,
};
use reco_core::split::{self, Fold};
use reco_core::synth;
use reco_core::{Dataset, DuplicatePolicy, Feedback};

use crate::progress;

/// Where data comes from and how to read it.
#[derive(Args, Debug, Clone)]
pub struct DataArgs {
    /// Data source: a file (delimited text), a directory (MovieLens 100K/1M/10M/20M/25M or
    /// RecBole atomic files, detected), `synth:notebook`, or `synth:key=value,...` for the
    /// scalable generator (users, items, interactions, zipf, dims, categories, seed, ...).
    #[arg(long, default_value = "synth:notebook")]
    pub data: String,
    /// Field delimiter of a delimited file: one character, `tab`, `space`, or a string like `::`.
    #[arg(long, default_value = ",")]
    pub delimiter: String,
    /// The delimited file has no header line (then columns are 1-based positions).
    #[arg(long)]
    pub no_header: bool,
    /// User column (name or 1-based position); guessed from the header by default.
    #[arg(long)]
    pub user_col: Option<String>,
    /// Item column.
    #[arg(long)]
    pub item_col: Option<String>,
    /// Rating column (explicit feedback).
    #[arg(long)]
    pub rating_col: Option<String>,
    /// Timestamp column (integer or decimal seconds).
    #[arg(long)]
    pub time_col: Option<String>,
    /// Weight column, multiplied into the value.
    #[arg(long)]
    pub weight_col: Option<String>,
    /// Event-type column; needs --event-weights.
    #[arg(long)]
    pub event_col: Option<String>,
    /// Weights of event types, e.g. `view=1,cart=3,buy=5`.
    #[arg(long)]
    pub event_weights: Option<String>,
    /// Keep only ratings >= this, as implicit positives.
    #[arg(long)]
    pub threshold: Option<f32>,
    /// Treat the data as implicit feedback even if it has ratings.
    #[arg(long)]
    pub implicit: bool,
    /// How repeated (user, item) rows merge: last, first, sum, max, mean.
    #[arg(long, default_value = "last")]
    pub duplicates: String,
    /// Skip malformed rows (reporting how many and the first few) instead of stopping.
    #[arg(long)]
    pub skip_bad_rows: bool,
    /// Item metadata file (delimited, same delimiter) for a delimited interaction file.
    #[arg(long)]
    pub items: Option<PathBuf>,
    /// Item id column of --items (default: the first).
    #[arg(long)]
    pub item_id_col: Option<String>,
    /// Title column of --items.
    #[arg(long)]
    pub title_col: Option<String>,
    /// Categorical column of --items, `NAME` or `NAME:SEP` for multi-valued (repeatable).
    #[arg(long)]
    pub category_col: Vec<String>,
    /// Numeric column of --items (repeatable).
    #[arg(long)]
    pub numeric_col: Vec<String>,
    /// Text column of --items (repeatable).
    #[arg(long)]
    pub text_col: Vec<String>,
    /// User metadata file (delimited, same delimiter) for a delimited interaction file; the
    /// first column is the user id.
    #[arg(long)]
    pub users: Option<PathBuf>,
    /// Categorical column of --users, `NAME` or `NAME:SEP` (repeatable).
    #[arg(long)]
    pub user_category_col: Vec<String>,
    /// Numeric column of --users (repeatable).
    #[arg(long)]
    pub user_numeric_col: Vec<String>,
    /// Sessions file (delimited, same delimiter, with a header): columns `session`, `item` and
    /// an optional order column (`order`, `position` or `timestamp`), else file order.
    #[arg(long)]
    pub sessions: Option<PathBuf>,
    /// What to do with metadata ids the interactions lack: error, skip, add.
    #[arg(long)]
    pub unknown_ids: Option<String>,
}

impl DataArgs {
    fn options(&self) -> Result<LoadOptions> {
        if let Some(t) = self.threshold.filter(|t| !t.is_finite()) {
            bail!(reco_core::Error::param(
                "threshold",
                format!("{t} is not a finite number; give a rating such as 4")
            ));
        }
        let unknown: Option<UnknownIds> =
            self.unknown_ids.as_deref().map(str::parse).transpose()?;
        Ok(LoadOptions {
            duplicates: self.duplicates.parse::<DuplicatePolicy>()?,
            skip_bad_rows: self.skip_bad_rows,
            threshold: self.threshold,
            event_weights: self
                .event_weights
                .as_deref()
                .map(parse_event_weights)
                .transpose()?
                .unwrap_or_default(),
            feedback: self.implicit.then_some(Feedback::Implicit),
            unknown_items: unknown,
            unknown_users: unknown.unwrap_or(UnknownIds::Error),
        })
    }

    fn format(&self) -> Result<TextFormat> {
        Ok(TextFormat {
            delimiter: self.delimiter.parse::<Delimiter>()?,
            has_header: !self.no_header,
        })
    }

    /// Column choices: the header's guess, overridden by every column flag given. Without flags,
    /// `None` lets the loader guess (and detect a header-less file's width).
    fn columns(&self, path: &std::path::Path) -> Result<Option<InteractionColumns>> {
        let given = [
            &self.user_col,
            &self.item_col,
            &self.rating_col,
            &self.time_col,
            &self.weight_col,
            &self.event_col,
        ];
        if given.iter().all(|c| c.is_none()) || !path.is_file() {
            return Ok(None);
        }
        let header = loaders::text::RecordReader::open(path, &self.format()?)?.header;
        let mut cols = InteractionColumns::guess(&header);
        if header.is_empty() {
            // Without a header only what is named exists, besides user and item.
            cols.rating = None;
            cols.timestamp = None;
        }
        let c = |s: &Option<String>| s.as_deref().map(ColumnRef::parse);
        if let Some(x) = c(&self.user_col) {
            cols.user = x;
        }
        if let Some(x) = c(&self.item_col) {
            cols.item = x;
        }
        cols.rating = c(&self.rating_col).or(cols.rating);
        cols.timestamp = c(&self.time_col).or(cols.timestamp);
        cols.weight = c(&self.weight_col).or(cols.weight);
        cols.event = c(&self.event_col).or(cols.event);
        Ok(Some(cols))
    }

    /// Loads the dataset.
    pub fn load(&self) -> Result<Dataset> {
        if let Some(spec) = self.data.strip_prefix("synth:") {
            return synthesize(spec);
        }
        let path = PathBuf::from(&self.data);
        let opts = self.options()?;
        let spinner = progress::spinner(&format!("loading {}", path.display()));
        let layout = loaders::Layout::detect(&path)?;
        let extra = self.items.is_some() || self.users.is_some() || self.sessions.is_some();
        if layout != loaders::Layout::Delimited && extra {
            bail!(
                "--items, --users and --sessions go with a delimited interaction file; {} is a dataset directory",
                path.display()
            );
        }
        let mut ds = if extra {
            let mut b = loaders::DatasetBuilder::new(true);
            loaders::delimited::read_interactions(
                &mut b,
                &path,
                &self.format()?,
                self.columns(&path)?.as_ref(),
                &opts,
            )?;
            self.read_items(&mut b, &opts)?;
            self.read_users_and_sessions(&mut b, &opts)?;
            b.finish(
                &path
                    .file_stem()
                    .map_or("data".into(), |s| s.to_string_lossy().into_owned()),
                &opts,
            )?
        } else {
            loaders::load(
                &path,
                Some(&self.format()?),
                self.columns(&path)?.as_ref(),
                &opts,
            )?
        };
        spinner.finish_and_clear();
        if self.implicit {
            ds.feedback = Feedback::Implicit;
        }
        report_load(&ds);
        Ok(ds)
    }

    fn read_items(&self, b: &mut loaders::DatasetBuilder, opts: &LoadOptions) -> Result<()> {
        let Some(items) = &self.items else {
            return Ok(());
        };
        let cols = MetadataColumns {
            id: self.item_id_col.as_deref().map(ColumnRef::parse),
            title: self.title_col.as_deref().map(ColumnRef::parse),
            categorical: self
                .category_col
                .iter()
                .map(|c| match c.rsplit_once(':') {
                    Some((name, sep)) if !sep.is_empty() => {
                        (ColumnRef::parse(name), Some(sep.to_string()))
                    }
                    _ => (ColumnRef::parse(c), None),
                })
                .collect(),
            numeric: self
                .numeric_col
                .iter()
                .map(|c| ColumnRef::parse(c))
                .collect(),
            text: self.text_col.iter().map(|c| ColumnRef::parse(c)).collect(),
        };
        let policy = opts.unknown_items.unwrap_or(UnknownIds::Error);
        loaders::delimited::read_metadata(
            b,
            items,
            &self.format()?,
            &cols,
            Entity::Item,
            policy,
            opts,
        )?;
        Ok(())
    }

    fn read_users_and_sessions(
        &self,
        b: &mut loaders::DatasetBuilder,
        opts: &LoadOptions,
    ) -> Result<()> {
        if let Some(users) = &self.users {
            let cols = MetadataColumns {
                id: None,
                title: None,
                categorical: self
                    .user_category_col
                    .iter()
                    .map(|c| split_sep(c))
                    .collect(),
                numeric: self
                    .user_numeric_col
                    .iter()
                    .map(|c| ColumnRef::parse(c))
                    .collect(),
                text: vec![],
            };
            loaders::delimited::read_metadata(
                b,
                users,
                &self.format()?,
                &cols,
                Entity::User,
                opts.unknown_users,
                opts,
            )?;
        }
        if let Some(sessions) = &self.sessions {
            let header = loaders::text::RecordReader::open(sessions, &self.format()?)?.header;
            let find = |names: &[&str]| {
                header
                    .iter()
                    .find(|h| names.contains(&h.to_ascii_lowercase().as_str()))
                    .map(|h| ColumnRef::Name(h.clone()))
            };
            let need = |names: &[&str]| {
                find(names).ok_or_else(|| reco_core::Error::MissingColumn {
                    path: sessions.clone(),
                    column: names[0].to_string(),
                    available: reco_core::input::printable(&header.join(", "), 200),
                })
            };
            let cols = loaders::SessionColumns {
                session: need(&["session", "session_id", "sessionid"])?,
                item: need(&["item", "item_id", "itemid"])?,
                order: find(&["order", "position", "timestamp", "time", "ts"]),
            };
            loaders::delimited::read_sessions(b, sessions, &self.format()?, &cols, opts)?;
        }
        Ok(())
    }

    /// Loads a ready-made split from two files with these options.
    pub fn load_pair(&self, train: &std::path::Path, test: &std::path::Path) -> Result<Fold> {
        let opts = self.options()?;
        let mut pair = split::read_pair(
            train,
            test,
            &self.format()?,
            self.columns(train)?.as_ref(),
            &opts,
        )?;
        self.read_items(&mut pair.builder, &opts)?;
        self.read_users_and_sessions(&mut pair.builder, &opts)?;
        let fold = pair.finish(&opts)?;
        report_load(&fold.train);
        Ok(fold)
    }
}

/// `NAME:SEP` → (column, separator); a bare `NAME` is single-valued.
fn split_sep(c: &str) -> (ColumnRef, Option<String>) {
    match c.rsplit_once(':') {
        Some((name, sep)) if !sep.is_empty() && !name.is_empty() => {
            (ColumnRef::parse(name), Some(sep.to_string()))
        }
        _ => (ColumnRef::parse(c), None),
    }
}

fn report_load(ds: &Dataset) {
    let r = &ds.report;
    if r.duplicates.rows_merged > 0 {
        eprintln!(
            "note: {} duplicate rows merged into {} (user, item) pairs",
            r.duplicates.rows_merged, r.duplicates.pairs
        );
    }
    if r.skipped_rows > 0 {
        eprintln!(
            "note: skipped {} malformed rows; first ones:",
            r.skipped_rows
        );
        for e in &r.skipped_examples {
            eprintln!("  {e}");
        }
    }
    if r.unknown_metadata_ids > 0 {
        eprintln!(
            "note: skipped {} metadata rows with ids unknown to the interactions",
            r.unknown_metadata_ids
        );
    }
}

/// Builds a synthetic dataset from `notebook` or `key=value,...`, with a progress bar.
pub fn synthesize(spec: &str) -> Result<Dataset> {
    let bar = progress::bar(0, "generating users");
    let ds = synth::from_spec(spec, &|d, n| {
        bar.set_length(n);
        bar.set_position(d);
    })?;
    bar.finish_and_clear();
    Ok(ds)
}
