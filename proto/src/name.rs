//! Package names: reverse-DNS application ids.

use std::fmt;
use std::str::FromStr;

use crate::limits::MAX_PACKAGE_NAME;

/// A package name: a reverse-DNS application id as Android defines it, such
/// as `com.example.app`.
///
/// At least two segments separated by `.`; each segment starts with an ASCII
/// letter and holds only ASCII letters, digits and `_`; at most 255 bytes.
/// Anything else (`..`, `/`, spaces, non-ASCII look-alikes) is rejected.
/// Names are case-sensitive, as on Android.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PackageName(String);

/// Why a string is not a [`PackageName`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidPackageName {
    /// Empty or over [`MAX_PACKAGE_NAME`] bytes.
    #[error("package name must be 1 to {MAX_PACKAGE_NAME} bytes, got {0}")]
    Length(usize),
    /// Fewer than two segments.
    #[error("package name needs at least two dot-separated segments, like com.example.app")]
    TooFewSegments,
    /// A segment is empty (`..`, a leading or trailing dot).
    #[error("package name has an empty segment")]
    EmptySegment,
    /// A segment starts with something other than an ASCII letter.
    #[error("each segment of a package name must start with a letter (segment {0:?})")]
    BadStart(String),
    /// A character outside `[A-Za-z0-9_]`.
    #[error("package name may hold only A-Z, a-z, 0-9, _ and dots; found {0:?}")]
    BadChar(char),
}

impl PackageName {
    /// The name as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for PackageName {
    type Err = InvalidPackageName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s.is_empty() || s.len() > MAX_PACKAGE_NAME {
            return Err(InvalidPackageName::Length(s.len()));
        }
        if let Some(c) = s
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || *c == '_' || *c == '.'))
        {
            return Err(InvalidPackageName::BadChar(c));
        }
        let mut segments = 0;
        for segment in s.split('.') {
            segments += 1;
            let first = segment
                .chars()
                .next()
                .ok_or(InvalidPackageName::EmptySegment)?;
            if !first.is_ascii_alphabetic() {
                return Err(InvalidPackageName::BadStart(segment.to_owned()));
            }
        }
        if segments < 2 {
            return Err(InvalidPackageName::TooFewSegments);
        }
        Ok(Self(s.to_owned()))
    }
}

impl fmt::Display for PackageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for PackageName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PackageName({})", self.0)
    }
}

impl serde::Serialize for PackageName {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for PackageName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_android_application_ids() {
        for ok in [
            "com.example.app",
            "a.b",
            "org.fdroid.fdroid",
            "Com.Example_1.x9",
            "a_.b_",
        ] {
            assert_eq!(ok.parse::<PackageName>().unwrap().as_str(), ok);
        }
        assert!(
            format!("a.{}", "b".repeat(253))
                .parse::<PackageName>()
                .is_ok()
        );
    }

    #[test]
    fn rejects_everything_else() {
        let long = format!("a.{}", "b".repeat(254));
        for bad in [
            "",
            "com",
            "com..app",
            ".com.app",
            "com.app.",
            "com/app",
            "com.app/../x",
            "com. app",
            "com.1app",
            "com._app",
            "com.exаmple", // Cyrillic 'а'
            "com.example-app",
            "com.example.app\n",
            long.as_str(),
        ] {
            assert!(bad.parse::<PackageName>().is_err(), "{bad:?} was accepted");
        }
    }
}
