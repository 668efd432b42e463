//! Loaders for the formats people have: delimited text, MovieLens (100K, 1M/10M, 20M/25M),
//! RecBole atomic files and sessions files.

pub mod builder;
pub mod delimited;
pub mod movielens;
pub mod recbole;
pub mod text;

use std::path::Path;

pub use builder::{parse_event_weights, DatasetBuilder, LoadOptions, UnknownIds};
pub use delimited::{Entity, InteractionColumns, MetadataColumns, SessionColumns};
pub use text::{ColumnRef, Delimiter, TextFormat};

use crate::dataset::Dataset;
use crate::error::{Error, Result};

/// The layout of a data source, detected from what a path holds or named by the user.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// MovieLens 100K directory (`u.data`).
    MovieLens100K,
    /// MovieLens 1M/10M directory (`ratings.dat`).
    MovieLensDat,
    /// MovieLens 20M/25M/latest directory (`ratings.csv`).
    MovieLensCsv,
    /// Directory of RecBole atomic files (`*.inter`).
    RecBole,
    /// A single delimited file.
    Delimited,
}

impl Layout {
    /// Detects the layout of `path`.
    pub fn detect(path: &Path) -> Result<Layout> {
        if !path.exists() {
            let missing =
                std::io::Error::new(std::io::ErrorKind::NotFound, "no such file or directory");
            return Err(Error::io(path, missing));
        }
        if path.is_file() {
            return Ok(Layout::Delimited);
        }
        if !path.is_dir() {
            // A FIFO, device or socket: say what it is rather than "not a dataset directory".
            crate::input::check_regular(path)?;
        }
        if path.join("u.data").exists() {
            Ok(Layout::MovieLens100K)
        } else if path.join("ratings.dat").exists() {
            Ok(Layout::MovieLensDat)
        } else if path.join("ratings.csv").exists() {
            Ok(Layout::MovieLensCsv)
        } else if recbole::files(path).is_ok() {
            Ok(Layout::RecBole)
        } else if let Err(e @ Error::Format { .. }) = recbole::files(path).map(|_| ()) {
            // Several .inter files: say so rather than "unknown layout".
            match &e {
                Error::Format { message, .. } if message.contains(".inter files") => Err(e),
                _ => Err(unknown_layout(path)),
            }
        } else {
            Err(unknown_layout(path))
        }
    }
}

fn unknown_layout(path: &Path) -> Error {
    Error::Format {
        path: path.to_path_buf(),
        message: "not a known dataset directory (u.data, ratings.dat, ratings.csv or one *.inter \
                  file)"
            .into(),
    }
}

/// Loads `path` with its detected layout. A delimited file is read with `format` (comma-separated
/// with a header by default) and `columns` (guessed from the header by default).
pub fn load(
    path: &Path,
    format: Option<&TextFormat>,
    columns: Option<&InteractionColumns>,
    opts: &LoadOptions,
) -> Result<Dataset> {
    match Layout::detect(path)? {
        Layout::MovieLens100K => movielens::load_100k(path, opts),
        Layout::MovieLensDat => movielens::load_dat(path, opts),
        Layout::MovieLensCsv => movielens::load_csv(path, opts),
        Layout::RecBole => recbole::load(path, opts),
        Layout::Delimited => {
            let default = TextFormat::csv();
            let format = format.unwrap_or(&default);
            let mut b = DatasetBuilder::new(true);
            delimited::read_interactions(&mut b, path, format, columns, opts)?;
            let name = path
                .file_stem()
                .map_or("data".into(), |s| s.to_string_lossy().into_owned());
            b.finish(&name, opts)
        }
    }
}
