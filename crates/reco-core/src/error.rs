//! The error type of the data layer.
//!
//! Every variant carries the place at fault (file, line, column, field) so that a user can fix
//! the input without reading the source.

use std::path::PathBuf;

/// Result alias of the data layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong while loading, splitting, generating or saving data.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The operating system refused a read or write.
    #[error("{path}: {source}")]
    Io {
        /// File being read or written.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A row could not be parsed.
    #[error("{path}:{line}: column {column}: {message}: {text:?}")]
    Parse {
        /// File being read.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// Column name (or 1-based position when the file has no header).
        column: String,
        /// The offending text, truncated to 80 characters.
        text: String,
        /// What was expected.
        message: String,
    },
    /// A file that must hold rows holds none.
    #[error("{path}: the file has no data rows")]
    EmptyFile {
        /// File being read.
        path: PathBuf,
    },
    /// A required column is not in the header, or a position is past the row width.
    #[error("{path}: column {column:?} not found (columns are: {available})")]
    MissingColumn {
        /// File being read.
        path: PathBuf,
        /// The column asked for.
        column: String,
        /// The columns that exist, comma-separated.
        available: String,
    },
    /// Metadata names an id that the interactions do not know, when that is not allowed.
    #[error("{path}:{line}: unknown {kind} id {id:?}")]
    UnknownId {
        /// File being read.
        path: PathBuf,
        /// 1-based line number.
        line: u64,
        /// "user" or "item".
        kind: &'static str,
        /// The id.
        id: String,
    },
    /// A file or directory does not look like the format asked for.
    #[error("{path}: {message}")]
    Format {
        /// File or directory at fault.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A parameter breaks one of its rules.
    #[error("invalid parameter {name}: {message}")]
    InvalidParameter {
        /// Parameter name as the user writes it.
        name: &'static str,
        /// The broken rule.
        message: String,
    },
    /// A split would put the same (user, item) pair in train and test.
    #[error("train/test overlap: {count} (user, item) pairs are in both, e.g. ({user}, {item})")]
    Overlap {
        /// Number of overlapping pairs.
        count: usize,
        /// External user id of the first overlapping pair.
        user: String,
        /// External item id of the first overlapping pair.
        item: String,
    },
    /// A saved artifact is corrupt, foreign, or from an unsupported version.
    #[error("artifact {path}: {message}")]
    Artifact {
        /// Artifact directory or file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A model was asked something it cannot answer.
    #[error("{0}")]
    Unsupported(String),
}

impl Error {
    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// Builds a parse error, truncating the offending text so a binary file cannot flood a terminal.
    pub fn parse(
        path: impl Into<PathBuf>,
        line: u64,
        column: impl Into<String>,
        text: &str,
        message: impl Into<String>,
    ) -> Self {
        let text: String = text.chars().take(80).collect();
        Error::Parse {
            path: path.into(),
            line,
            column: column.into(),
            text,
            message: message.into(),
        }
    }

    /// Builds an invalid-parameter error.
    pub fn param(name: &'static str, message: impl Into<String>) -> Self {
        Error::InvalidParameter {
            name,
            message: message.into(),
        }
    }
}
