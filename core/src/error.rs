//! The one error type of the crate.
//!
//! Every variant names the field, column, file or table at fault so that a user can fix
//! the input without reading the source, and keeps the error it comes from (an IO or
//! Parquet error, the error that stopped a run) as its [`source`](std::error::Error::source).
//! No variant ever carries a raw subscriber id or the pseudonymization key: messages are
//! built from field names, positions and counts only.

use std::fmt;

/// The error an [`Error`] comes from.
pub type Source = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A failure of crowdtally, naming what is at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration field or a release parameter is invalid. Raised before any work
    /// is done ([`Config::validate`](crate::Config::validate),
    /// [`ReleaseSpec::validate`](crate::ReleaseSpec::validate)), or when a machine
    /// setting such as `spill_dir` cannot be used.
    #[error("invalid configuration: `{field}` {message}")]
    Config {
        /// The configuration field at fault, as named in the method (e.g. `k`, `tz`).
        field: &'static str,
        /// What is wrong with it.
        message: String,
        /// The error behind it, if any (an IO error for `spill_dir`).
        #[source]
        source: Option<Source>,
    },
    /// The geography (regions, region cells, zones, zone cells, study area) is invalid.
    #[error("invalid geography: `{field}` {message}")]
    Geography {
        /// The table or field at fault (e.g. `regions.parent_id`, `zone_cells.cell`).
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The input pings cannot be read: a missing column, a column of an unsupported type,
    /// columns of different lengths. (Bad *values* are not errors: they are dropped and
    /// counted by reason in the quality report.)
    #[error("invalid input: `{column}` {message}")]
    Input {
        /// The input column at fault, as the user named it.
        column: String,
        /// What is wrong with it.
        message: String,
    },
    /// A file cannot be read or written: missing, truncated, not Parquet, or one of its
    /// columns is missing or of an unsupported type.
    #[error("cannot read `{path}`: {}{message}", column.as_ref().map(|c| format!("`{c}` ")).unwrap_or_default())]
    File {
        /// The file.
        path: String,
        /// The column at fault, if one is.
        column: Option<String>,
        /// What is wrong.
        message: String,
        /// The IO, Parquet or Arrow error behind it, if any.
        #[source]
        source: Option<Source>,
    },
    /// The privacy ledger refuses the release (budget spent, another cut of the same
    /// period, other factors), or cannot be used (damaged, unwritable).
    #[error("ledger `{path}`: {message}")]
    Ledger {
        /// The ledger file.
        path: String,
        /// Why.
        message: String,
        /// The IO error behind it, if any.
        #[source]
        source: Option<std::io::Error>,
    },
    /// The run was stopped before its end (by its progress callback, its stop signal, or
    /// a user's interrupt); its spill files are removed.
    #[error("the run was stopped {by}")]
    Stopped {
        /// Who stopped it, in words ("by the progress callback").
        by: String,
        /// The error the progress callback returned, if it returned one.
        #[source]
        cause: Option<Box<Error>>,
    },
    /// The operating system's random number generator failed (differential privacy
    /// needs it).
    #[error("no randomness: {0}")]
    Randomness(#[source] Source),
    /// An error from the Arrow library while reading or building columns.
    #[error("arrow: {0}")]
    Arrow(#[source] arrow_schema::ArrowError),
}

impl From<arrow_schema::ArrowError> for Error {
    fn from(error: arrow_schema::ArrowError) -> Self {
        // A crowdtally error that travelled through an Arrow batch source comes back as
        // itself, with its field.
        match error {
            arrow_schema::ArrowError::ExternalError(inner) => match inner.downcast::<Self>() {
                Ok(own) => *own,
                Err(other) => Self::Arrow(arrow_schema::ArrowError::ExternalError(other)),
            },
            other => Self::Arrow(other),
        }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    /// A configuration or parameter error naming `field`.
    pub fn config(field: &'static str, message: impl fmt::Display) -> Self {
        Self::Config {
            field,
            message: message.to_string(),
            source: None,
        }
    }

    /// A configuration error naming `field`, with the error behind it.
    pub(crate) fn config_source(
        field: &'static str,
        message: impl fmt::Display,
        source: impl Into<Source>,
    ) -> Self {
        Self::Config {
            field,
            message: message.to_string(),
            source: Some(source.into()),
        }
    }

    pub(crate) fn geography(field: impl Into<String>, message: impl fmt::Display) -> Self {
        Self::Geography {
            field: field.into(),
            message: message.to_string(),
        }
    }

    /// An input error naming the column (or argument) `column`.
    pub fn input(column: impl Into<String>, message: impl fmt::Display) -> Self {
        Self::Input {
            column: column.into(),
            message: message.to_string(),
        }
    }

    /// An error of the file at `path` caused by `source`: the message is `what`, then
    /// the source's own words (so that one line says it all), and the source is kept.
    pub(crate) fn file_source<E>(path: &std::path::Path, what: &str, source: E) -> Self
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let message = if what.is_empty() {
            source.to_string()
        } else {
            format!("{what}: {source}")
        };
        Self::File {
            path: path.display().to_string(),
            column: None,
            message,
            source: Some(Box::new(source)),
        }
    }

    /// The ledger at `path` refuses or cannot be used.
    pub(crate) fn ledger(path: &std::path::Path, message: impl fmt::Display) -> Self {
        Self::Ledger {
            path: path.display().to_string(),
            message: message.to_string(),
            source: None,
        }
    }

    /// The ledger at `path` cannot be used because of an IO error.
    pub(crate) fn ledger_io(
        path: &std::path::Path,
        message: impl fmt::Display,
        source: std::io::Error,
    ) -> Self {
        Self::Ledger {
            path: path.display().to_string(),
            message: format!("{message}: {source}"),
            source: Some(source),
        }
    }

    /// A stop, by `by` (in words), with no error behind it.
    pub fn stopped(by: impl Into<String>) -> Self {
        Self::Stopped {
            by: by.into(),
            cause: None,
        }
    }

    /// The same error, said of a file: an input error becomes a file error naming the
    /// file and the column; an Arrow error one naming the file.
    #[must_use]
    pub fn in_file(self, path: &std::path::Path) -> Self {
        let path = path.display().to_string();
        match self {
            Self::Input { column, message } => Self::File {
                path,
                column: Some(column),
                message,
                source: None,
            },
            Self::Arrow(error) => Self::File {
                path,
                column: None,
                message: error.to_string(),
                source: Some(Box::new(error)),
            },
            other => other,
        }
    }

    /// The field, table, column, file or ledger the error names, if any (for a file:
    /// the column, else the file).
    #[must_use]
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Config { field, .. } => Some(field),
            Self::Geography { field, .. } => Some(field),
            Self::Input { column, .. } => Some(column),
            Self::File { path, column, .. } => Some(column.as_deref().unwrap_or(path)),
            Self::Ledger { path, .. } => Some(path),
            Self::Arrow(_) | Self::Stopped { .. } | Self::Randomness(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::error::Error as _;

    #[test]
    fn file_errors_keep_their_source_and_say_it() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "no such file");
        let error = Error::file_source(std::path::Path::new("a.parquet"), "", io);
        assert_eq!(error.to_string(), "cannot read `a.parquet`: no such file");
        assert_eq!(error.source().unwrap().to_string(), "no such file");
        assert_eq!(error.field(), Some("a.parquet"));
    }

    #[test]
    fn a_stop_keeps_the_error_that_caused_it() {
        let cause = Error::config("progress", "said stop");
        let stop = Error::Stopped {
            by: "by the progress callback".into(),
            cause: Some(Box::new(cause)),
        };
        assert_eq!(
            stop.to_string(),
            "the run was stopped by the progress callback"
        );
        assert!(stop.source().unwrap().to_string().contains("said stop"));
    }
}
