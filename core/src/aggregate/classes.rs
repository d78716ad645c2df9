//! The classes a release is grouped by (method §4), and devices counted by class.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::profile::DeviceClass;

/// A class a release is grouped by: one device class, or `visitor` (both visitor classes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReleaseClass {
    /// Day and overnight visitors together.
    Visitor,
    /// One device class.
    #[serde(untagged)]
    Device(DeviceClass),
}

impl ReleaseClass {
    /// The class's name in tables.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Visitor => "visitor",
            Self::Device(class) => class.name(),
        }
    }

    /// Whether a device of `class` belongs to this release class.
    #[must_use]
    pub fn contains(self, class: DeviceClass) -> bool {
        match self {
            Self::Visitor => class.is_visitor(),
            Self::Device(own) => own == class,
        }
    }

    /// Checks a list of release classes: not empty, no repeats, and not `visitor`
    /// together with one of its parts (§4).
    ///
    /// # Errors
    /// [`Error::Config`] naming `classes`.
    pub fn validate_list(classes: &[Self]) -> Result<()> {
        if classes.is_empty() {
            return Err(Error::config("classes", "must name at least one class"));
        }
        for (i, class) in classes.iter().enumerate() {
            if classes[..i].contains(class) {
                return Err(Error::config(
                    "classes",
                    format!("names {:?} twice", class.name()),
                ));
            }
        }
        let has_part = classes
            .iter()
            .any(|c| matches!(c, Self::Device(d) if d.is_visitor()));
        if classes.contains(&Self::Visitor) && has_part {
            return Err(Error::config(
                "classes",
                "may group by `visitor` or by its parts (`overnight_visitor`, `day_visitor`), not both",
            ));
        }
        Ok(())
    }
}

impl fmt::Display for ReleaseClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ReleaseClass {
    type Err = Error;

    /// Parses a class name.
    ///
    /// # Errors
    /// [`Error::Config`] naming `classes` for an unknown name.
    fn from_str(name: &str) -> Result<Self> {
        if name == "visitor" {
            return Ok(Self::Visitor);
        }
        DeviceClass::ALL
            .into_iter()
            .find(|class| class.name() == name)
            .map(Self::Device)
            .ok_or_else(|| {
                Error::config(
                    "classes",
                    format!(
                        "must name classes among visitor, overnight_visitor, day_visitor, \
                         resident, regular; got {name:?}"
                    ),
                )
            })
    }
}

/// Devices by class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassCounts {
    /// Residents.
    pub resident: u64,
    /// Regulars (commuters, students).
    pub regular: u64,
    /// Overnight visitors (tourists).
    pub overnight_visitor: u64,
    /// Day visitors (excursionists).
    pub day_visitor: u64,
}

impl ClassCounts {
    /// The devices of one class.
    #[must_use]
    pub fn get(&self, class: DeviceClass) -> u64 {
        match class {
            DeviceClass::Resident => self.resident,
            DeviceClass::Regular => self.regular,
            DeviceClass::OvernightVisitor => self.overnight_visitor,
            DeviceClass::DayVisitor => self.day_visitor,
        }
    }

    pub(crate) fn add(&mut self, class: DeviceClass, count: u64) {
        let slot = match class {
            DeviceClass::Resident => &mut self.resident,
            DeviceClass::Regular => &mut self.regular,
            DeviceClass::OvernightVisitor => &mut self.overnight_visitor,
            DeviceClass::DayVisitor => &mut self.day_visitor,
        };
        *slot += count;
    }

    /// All devices.
    #[must_use]
    pub fn total(&self) -> u64 {
        DeviceClass::ALL.iter().map(|&class| self.get(class)).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn class_lists_are_checked() {
        let parse = |names: &[&str]| -> Result<Vec<ReleaseClass>> {
            names.iter().map(|n| n.parse()).collect()
        };
        let ok = parse(&["overnight_visitor", "day_visitor", "resident"]).unwrap();
        ReleaseClass::validate_list(&ok).unwrap();
        for bad in [
            &["visitor", "day_visitor"][..],
            &["regular", "regular"],
            &[],
        ] {
            let err = ReleaseClass::validate_list(&parse(bad).unwrap()).unwrap_err();
            assert_eq!(err.field(), Some("classes"));
        }
        assert_eq!(parse(&["tourist"]).unwrap_err().field(), Some("classes"));
    }
}
