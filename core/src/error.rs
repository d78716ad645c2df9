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
    /// An error from the Arrow library while reading or building columns.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
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

    /// The field, table or column the error names, if any.
    #[must_use]
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::Config { field, .. } => Some(field),
            Self::Geography { field, .. } => Some(field),
            Self::Input { column, .. } => Some(column),
            Self::Arrow(_) => None,
        }
    }
}
