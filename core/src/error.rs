//! The one error type of the crate.
//!
//! Every variant names the field, column or table at fault so that a user can fix the
//! input without reading the source. No variant ever carries a raw subscriber id or the
//! pseudonymization key: messages are built from field names, positions and counts only.

use std::fmt;

/// A failure of crowdtally, naming what is at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration field is invalid. Raised by [`Config::validate`](crate::Config::validate)
    /// before any work is done.
    #[error("invalid configuration: `{field}` {message}")]
    Config {
        /// The configuration field at fault, as named in the method (e.g. `k`, `tz`).
        field: &'static str,
        /// What is wrong with it.
        message: String,
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
    /// An input file cannot be read: missing, truncated, not Parquet, or one of its
    /// columns is missing or of an unsupported type.
    #[error("cannot read `{path}`: {}{message}", column.as_ref().map(|c| format!("`{c}` ")).unwrap_or_default())]
    File {
        /// The file.
        path: String,
        /// The column at fault, if one is.
        column: Option<String>,
        /// What is wrong.
        message: String,
    },
    /// The run was stopped before its end (by its progress callback, typically on a
    /// user's interrupt); its spill files are removed.
    #[error("the run was stopped {0}")]
    Stopped(String),
    /// An error from the Arrow library while reading or building columns.
    #[error("arrow: {0}")]
    Arrow(arrow_schema::ArrowError),
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
    pub(crate) fn config(field: &'static str, message: impl fmt::Display) -> Self {
        Self::Config {
            field,
            message: message.to_string(),
        }
    }

    pub(crate) fn geography(field: impl Into<String>, message: impl fmt::Display) -> Self {
        Self::Geography {
            field: field.into(),
            message: message.to_string(),
        }
    }

    pub(crate) fn input(column: impl Into<String>, message: impl fmt::Display) -> Self {
        Self::Input {
            column: column.into(),
            message: message.to_string(),
        }
    }

    /// An error of the file at `path` as a whole (no one column at fault).
    pub(crate) fn file(path: &std::path::Path, message: impl fmt::Display) -> Self {
        Self::File {
            path: path.display().to_string(),
            column: None,
            message: message.to_string(),
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
            },
            Self::Arrow(error) => Self::File {
                path,
                column: None,
                message: error.to_string(),
            },
            other => other,
        }
    }

    /// The field, table or column the error names, if any (for a file: the column, else
    /// the file).
    #[must_use]
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Config { field, .. } => Some(field),
            Self::Geography { field, .. } => Some(field),
            Self::Input { column, .. } => Some(column),
            Self::File { path, column, .. } => Some(column.as_deref().unwrap_or(path)),
            Self::Arrow(_) | Self::Stopped(_) => None,
        }
    }
}
