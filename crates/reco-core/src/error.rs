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
    // The OS error is part of the message and deliberately not the error's `source()`:
    // reporters that print the chain (anyhow's `{:#}`) would print it twice.
    #[error("{path}: {error}")]
    Io {
        /// File being read or written.
        path: PathBuf,
        /// Underlying error.
        error: std::io::Error,
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
    /// The data cannot serve the request: too few items for a model, negative ratings for a
    /// non-negative one, no timestamps for a time-based one, nothing to train on.
    #[error("{message}")]
    UnsuitableData {
        /// What is missing or wrong.
        message: String,
    },
    /// A split would put the same (user, item) pair in train and test.
    #[error(
        "{test} overlaps {train}: {count} (user, item) pairs are in both, e.g. ({user}, {item}); \
         a test row must not repeat a training row"
    )]
    Overlap {
        /// The training file.
        train: PathBuf,
        /// The test file.
        test: PathBuf,
        /// Number of overlapping pairs.
        count: usize,
        /// External user id of the first overlapping pair.
        user: String,
        /// External item id of the first overlapping pair.
        item: String,
    },
    /// A model specification names a kind that no registered family provides.
    #[error("unknown model kind {kind:?}; the kinds are: {known}")]
    UnknownKind {
        /// The name asked for.
        kind: String,
        /// The registered kinds, comma-separated.
        known: String,
    },
    /// Two model families claim the same kind name.
    #[error("model kind {kind:?} is registered twice")]
    DuplicateKind {
        /// The contested name.
        kind: &'static str,
    },
    /// Training produced NaN or infinite parameters.
    #[error("{model}: training diverged: {message}")]
    Diverged {
        /// Model kind.
        model: String,
        /// What diverged and what to change.
        message: String,
    },
    /// Training could not finish for another reason (a solver failed, the data are degenerate).
    #[error("{model}: training failed: {message}")]
    TrainingFailed {
        /// Model kind.
        model: String,
        /// What failed.
        message: String,
    },
    /// A saved artifact is damaged: a checksum, length, shape or encoding does not hold.
    #[error("artifact {path}: {message}")]
    Artifact {
        /// Artifact directory or file.
        path: PathBuf,
        /// What is wrong with it.
        message: String,
    },
    /// A saved artifact is intact but cannot be read by this version: another format version,
    /// or a model kind or parameter this build does not know.
    #[error("artifact {path}: {message}")]
    ArtifactIncompatible {
        /// Artifact directory or file.
        path: PathBuf,
        /// What does not match.
        message: String,
    },
    /// A model was asked for something it cannot do (a capability it lacks).
    #[error("{0}")]
    Unsupported(String),
    /// An output path exists and replacing it was not asked for.
    #[error("{path} already exists; choose another path or pass --force to replace it")]
    Exists {
        /// The path that exists.
        path: PathBuf,
    },
    /// The work would need more memory (or another resource) than allowed.
    #[error("{what} would need about {needed}, more than the {budget} allowed{hint}")]
    TooLarge {
        /// What was about to be built ("svd with factors = 1000000000").
        what: String,
        /// The estimate, human-readable.
        needed: String,
        /// The budget, human-readable.
        budget: String,
        /// What to change: "; lower factors or raise --memory-limit".
        hint: String,
    },
    /// The user interrupted the work (Ctrl-C); nothing was written.
    #[error("interrupted; nothing was written")]
    Interrupted,
}

/// The broad class of an [`Error`], for callers that map errors to exit codes, HTTP statuses
/// or exception types: the match on [`Error::category`] is exhaustive, so a new variant has to
/// be placed in a class.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorCategory {
    /// The input data are malformed or inconsistent (the user fixes the file).
    Data,
    /// A model specification or another parameter is invalid (the user fixes the request).
    Spec,
    /// Training diverged or failed on valid input (the user changes parameters or data).
    Training,
    /// A saved model is damaged or from an incompatible version.
    Artifact,
    /// The operating system refused a read or write.
    Io,
    /// The model cannot answer this kind of request.
    Unsupported,
    /// The request needs more memory than allowed, or an output exists already.
    Resources,
    /// The user stopped the work.
    Interrupted,
}

impl ErrorCategory {
    /// The lower-case name used in JSON output and documentation.
    pub fn name(self) -> &'static str {
        match self {
            ErrorCategory::Data => "data",
            ErrorCategory::Spec => "spec",
            ErrorCategory::Training => "training",
            ErrorCategory::Artifact => "artifact",
            ErrorCategory::Io => "io",
            ErrorCategory::Unsupported => "unsupported",
            ErrorCategory::Resources => "resources",
            ErrorCategory::Interrupted => "interrupted",
        }
    }
}

impl Error {
    /// The class of the error.
    pub fn category(&self) -> ErrorCategory {
        match self {
            Error::Io { .. } => ErrorCategory::Io,
            Error::Parse { .. }
            | Error::EmptyFile { .. }
            | Error::MissingColumn { .. }
            | Error::UnknownId { .. }
            | Error::Format { .. }
            | Error::UnsuitableData { .. }
            | Error::Overlap { .. } => ErrorCategory::Data,
            Error::InvalidParameter { .. }
            | Error::UnknownKind { .. }
            | Error::DuplicateKind { .. } => ErrorCategory::Spec,
            Error::Diverged { .. } | Error::TrainingFailed { .. } => ErrorCategory::Training,
            Error::Artifact { .. } | Error::ArtifactIncompatible { .. } => ErrorCategory::Artifact,
            Error::Unsupported(_) => ErrorCategory::Unsupported,
            Error::TooLarge { .. } | Error::Exists { .. } => ErrorCategory::Resources,
            Error::Interrupted => ErrorCategory::Interrupted,
        }
    }

    /// Builds an unsuitable-data error.
    pub fn data(message: impl Into<String>) -> Self {
        Error::UnsuitableData {
            message: message.into(),
        }
    }

    /// Builds a divergence error for `model`.
    pub fn diverged(model: impl Into<String>, message: impl Into<String>) -> Self {
        Error::Diverged {
            model: model.into(),
            message: message.into(),
        }
    }

    /// Builds a training-failure error for `model`.
    pub fn training(model: impl Into<String>, message: impl Into<String>) -> Self {
        Error::TrainingFailed {
            model: model.into(),
            message: message.into(),
        }
    }

    /// Builds a corrupt-artifact error.
    pub fn artifact(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error::Artifact {
            path: path.into(),
            message: message.into(),
        }
    }

    /// Wraps an I/O error with the path it concerns.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            error: source,
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
