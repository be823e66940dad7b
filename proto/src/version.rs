//! Semantic versions in their canonical text form.

use std::fmt;
use std::str::FromStr;

use crate::limits::MAX_VERSION;

/// A semantic version (SemVer 2.0.0), such as `1.2.0` or `2.0.0-beta.1`.
///
/// Only the canonical text is accepted (no `v` prefix, no leading zeros, no
/// spaces), so one version has one spelling. Releases of one package are
/// ordered by their `version_code`, not by this version.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Version(semver::Version);

/// Why a string is not a [`Version`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidVersion {
    /// Over [`MAX_VERSION`] bytes.
    #[error("version is {0} bytes, over the {MAX_VERSION}-byte limit")]
    TooLong(usize),
    /// Not a semantic version.
    #[error("not a semantic version like 1.2.0: {0}")]
    NotSemver(String),
    /// A semantic version spelled in a non-canonical way.
    #[error("write the version as {0}")]
    NotCanonical(String),
}

impl Version {
    /// The semantic version.
    pub fn semver(&self) -> &semver::Version {
        &self.0
    }
}

impl FromStr for Version {
    type Err = InvalidVersion;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.len() > MAX_VERSION {
            return Err(InvalidVersion::TooLong(s.len()));
        }
        let v = semver::Version::parse(s).map_err(|e| InvalidVersion::NotSemver(e.to_string()))?;
        let canonical = v.to_string();
        if canonical != s {
            return Err(InvalidVersion::NotCanonical(canonical));
        }
        Ok(Self(v))
    }
}

impl From<semver::Version> for Version {
    fn from(v: semver::Version) -> Self {
        Self(v)
    }
}

impl fmt::Display for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl fmt::Debug for Version {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Version({})", self.0)
    }
}

impl serde::Serialize for Version {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Version {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_only() {
        for ok in ["0.0.0", "1.2.3", "2.0.0-beta.1", "1.0.0+build.5"] {
            assert_eq!(ok.parse::<Version>().unwrap().to_string(), ok);
        }
        for bad in [
            "", "1", "1.2", "v1.2.3", "01.2.3", " 1.2.3", "1.2.3 ", "1.2.3-", "1.2.x",
        ] {
            assert!(bad.parse::<Version>().is_err(), "{bad:?}");
        }
        assert!(
            format!("1.0.0-{}", "a".repeat(60))
                .parse::<Version>()
                .is_err()
        );
    }
}
