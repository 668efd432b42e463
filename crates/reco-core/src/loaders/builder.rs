//! Accumulates what loaders read into one [`Dataset`].

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::dataset::{Dataset, Feedback, LoadReport};
use crate::error::{Error, Result};
use crate::features::FeatureTableBuilder;
use crate::ids::IdMap;
use crate::interactions::{DuplicatePolicy, Interactions, Triplets};
use crate::sessions::Sessions;

/// What to do with a metadata row whose id the interactions do not have.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum UnknownIds {
    /// Stop with an error naming the file, line and id.
    #[default]
    Error,
    /// Skip the row and count it in the load report.
    Skip,
    /// Add the entity (a catalogue item nobody has rated yet: a cold item).
    Add,
}

impl std::str::FromStr for UnknownIds {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "error" => Ok(Self::Error),
            "skip" => Ok(Self::Skip),
            "add" => Ok(Self::Add),
            _ => Err(Error::param(
                "unknown-ids",
                format!("{s:?} is not one of error, skip, add"),
            )),
        }
    }
}

/// Options shared by every loader.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct LoadOptions {
    /// How repeated (user, item) rows merge.
    pub duplicates: DuplicatePolicy,
    /// Skip malformed rows (and report them) instead of stopping at the first.
    pub skip_bad_rows: bool,
    /// Keep only rows whose rating is at least this, as implicit positives of weight 1.
    pub threshold: Option<f32>,
    /// Value of each event type when the file has an event column (`view=1,cart=3,buy=5`).
    pub event_weights: Vec<(String, f32)>,
    /// Force explicit or implicit; by default a file with ratings is explicit.
    pub feedback: Option<Feedback>,
    /// Unknown ids in item metadata; `None` lets the format decide (catalogue files add).
    pub unknown_items: Option<UnknownIds>,
    /// Unknown ids in user metadata.
    pub unknown_users: UnknownIds,
}

impl Default for LoadOptions {
    fn default() -> Self {
        LoadOptions {
            duplicates: DuplicatePolicy::Last,
            skip_bad_rows: false,
            threshold: None,
            event_weights: Vec::new(),
            feedback: None,
            unknown_items: None,
            unknown_users: UnknownIds::Error,
        }
    }
}

/// Parses `view=1,cart=3,buy=5` into event weights.
pub fn parse_event_weights(s: &str) -> Result<Vec<(String, f32)>> {
    s.split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').ok_or_else(|| {
                Error::param("event-weights", format!("{p:?} is not name=weight"))
            })?;
            let w: f32 = v
                .trim()
                .parse()
                .ok()
                .filter(|w: &f32| w.is_finite())
                .ok_or_else(|| {
                    Error::param("event-weights", format!("{v:?} is not a finite number"))
                })?;
            Ok((k.trim().to_string(), w))
        })
        .collect()
}

/// One sessions-file row: (session index, order key, item index).
pub type SessionRow = (u32, f64, u32);

/// Loader state: id maps, rows, metadata and reports, turned into a [`Dataset`] by `finish`.
#[derive(Debug, Default)]
pub struct DatasetBuilder {
    /// User ids seen so far.
    pub users: IdMap,
    /// Item ids seen so far.
    pub items: IdMap,
    /// Interaction rows in file order.
    pub triplets: Triplets,
    /// Whether any interaction file had a rating column.
    pub has_ratings: bool,
    /// Item metadata rows.
    pub item_meta: Option<FeatureTableBuilder>,
    /// User metadata rows.
    pub user_meta: Option<FeatureTableBuilder>,
    /// Session rows `(session, order, item)` and session ids.
    pub sessions: Option<(IdMap, Vec<SessionRow>)>,
    /// Load report so far.
    pub report: LoadReport,
}

impl DatasetBuilder {
    /// An empty builder; `with_timestamps` says whether interaction rows carry timestamps.
    pub fn new(with_timestamps: bool) -> Self {
        DatasetBuilder {
            triplets: Triplets::new(with_timestamps),
            ..Default::default()
        }
    }

    /// Handles a bad row: an error, or with `skip_bad_rows` a count and an example.
    pub fn bad_row(&mut self, opts: &LoadOptions, err: Error) -> Result<()> {
        if !opts.skip_bad_rows {
            return Err(err);
        }
        self.report.skipped_rows += 1;
        if self.report.skipped_examples.len() < 5 {
            self.report.skipped_examples.push(err.to_string());
        }
        Ok(())
    }

    /// Reads the next record of `r`; a record that cannot be split (an unterminated quote) is a
    /// bad row like any other, so `skip_bad_rows` skips it. False at end of file.
    pub fn next_row(
        &mut self,
        r: &mut crate::loaders::text::RecordReader,
        fields: &mut Vec<String>,
        opts: &LoadOptions,
    ) -> Result<bool> {
        loop {
            match r.next_record(fields) {
                Ok(more) => return Ok(more),
                Err(e @ Error::Parse { .. }) => self.bad_row(opts, e)?,
                Err(e) => return Err(e),
            }
        }
    }

    /// Merges duplicates and assembles the dataset.
    pub fn finish(mut self, name: &str, opts: &LoadOptions) -> Result<Dataset> {
        self.report.rows_read = self.triplets.len();
        let n_users = self.users.len();
        let n_items = self.items.len();
        let (interactions, dup) =
            Interactions::from_triplets(&self.triplets, n_users, n_items, opts.duplicates)?;
        self.report.duplicates = dup;
        let feedback = opts
            .feedback
            .unwrap_or(if self.has_ratings && opts.threshold.is_none() {
                Feedback::Explicit
            } else {
                Feedback::Implicit
            });
        for (meta, n, what) in [
            (&self.item_meta, n_items, "items"),
            (&self.user_meta, n_users, "users"),
        ] {
            let missing = meta.as_ref().map_or(0, |m| m.missing(n));
            if missing > 0 {
                crate::warning::warn(format!(
                    "{name}: {missing} of {n} {what} have no metadata row (is the metadata file \
                     truncated?); they get empty features"
                ));
            }
        }
        Ok(Dataset {
            name: name.to_string(),
            users: Arc::new(self.users),
            items: Arc::new(self.items),
            interactions,
            feedback,
            item_features: self.item_meta.map(|b| Arc::new(b.build(n_items))),
            user_features: self.user_meta.map(|b| Arc::new(b.build(n_users))),
            sessions: self
                .sessions
                .map(|(ids, rows)| Arc::new(Sessions::from_rows(ids, rows))),
            report: self.report,
        })
    }
}
