//! The one place where core errors become Python exceptions.

use pyo3::create_exception;
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

create_exception!(
    crowdtally,
    CrowdtallyError,
    PyValueError,
    "Base class of every crowdtally error (a ValueError)."
);
create_exception!(
    crowdtally,
    ConfigError,
    CrowdtallyError,
    "An invalid configuration field; `.field` names it."
);
create_exception!(
    crowdtally,
    GeographyError,
    CrowdtallyError,
    "An invalid geography table or column; `.field` names it."
);
create_exception!(
    crowdtally,
    LedgerError,
    CrowdtallyError,
    "The privacy ledger refuses a release (budget spent, another cut of a released period, \
     other factors) or cannot be used (damaged, unwritable); `.field` names the ledger file."
);
create_exception!(
    crowdtally,
    InputError,
    CrowdtallyError,
    "Unreadable input pings: a missing column or an unsupported type; `.field` names it."
);

/// A core error on its way to Python.
pub struct CoreError(pub crowdtally::Error);

impl From<crowdtally::Error> for CoreError {
    fn from(error: crowdtally::Error) -> Self {
        Self(error)
    }
}

impl From<CoreError> for PyErr {
    fn from(CoreError(error): CoreError) -> Self {
        let message = error.to_string();
        let field = error.field().map(str::to_owned);
        let err = match &error {
            crowdtally::Error::Config { .. } => ConfigError::new_err(message),
            crowdtally::Error::Geography { .. } => GeographyError::new_err(message),
            crowdtally::Error::Input { .. } | crowdtally::Error::File { .. } => {
                InputError::new_err(message)
            }
            crowdtally::Error::Ledger { .. } => LedgerError::new_err(message),
            _ => CrowdtallyError::new_err(message),
        };
        Python::attach(|py| {
            // The field is a column or parameter name, never data.
            let _ = err.value(py).setattr("field", field);
        });
        err
    }
}

/// A Python-side error naming a parameter (wrong type or value of an argument).
pub fn config_error(field: &'static str, message: impl std::fmt::Display) -> PyErr {
    CoreError(crowdtally::Error::config(field, message)).into()
}

/// An input error naming a column or argument.
pub fn input_error(column: impl Into<String>, message: impl std::fmt::Display) -> PyErr {
    CoreError(crowdtally::Error::input(column, message)).into()
}

/// The name of an object's Python type (never its value).
pub fn type_name(found: &Bound<'_, PyAny>) -> String {
    found
        .get_type()
        .name()
        .map_or_else(|_| "?".to_owned(), |n| n.to_string())
}

/// A type error naming the argument, for objects of an unsupported Python type.
pub fn type_error(argument: &str, expected: &str, found: &Bound<'_, PyAny>) -> PyErr {
    let found = type_name(found);
    PyTypeError::new_err(format!("`{argument}` must be {expected}, got {found}"))
}

/// Runs core work with the GIL released and maps its error.
pub fn detach<T, F>(py: Python<'_>, work: F) -> PyResult<T>
where
    T: Send,
    F: FnOnce() -> crowdtally::Result<T> + Send,
{
    py.detach(work).map_err(|e| CoreError(e).into())
}
