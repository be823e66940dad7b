//! `AUTHOR/PACKAGE[@VERSION]` arguments.

use std::fmt;
use std::str::FromStr;

use ipsr_proto::{AuthorId, PackageName, Version};

/// Which version a [`PackageSpec`] asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VersionSel {
    /// The newest non-yanked release.
    Newest,
    /// Exactly this version.
    Exact(Version),
    /// The newest non-yanked release matching a SemVer requirement (`^1.2`).
    Req(semver::VersionReq),
}

/// `AUTHOR/PACKAGE[@VERSION|@REQ]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackageSpec {
    /// The author.
    pub author: AuthorId,
    /// The package.
    pub package: PackageName,
    /// The version asked for.
    pub version: VersionSel,
}

/// `AUTHOR/PACKAGE@VERSION` with an exact version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReleaseSpec {
    /// The author.
    pub author: AuthorId,
    /// The package.
    pub package: PackageName,
    /// The version.
    pub version: Version,
}

impl FromStr for PackageSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (author, rest) = s
            .split_once('/')
            .ok_or("expected AUTHOR/PACKAGE[@VERSION], e.g. k51qzi5uqu5d…/com.example.app@1.2.0")?;
        let author: AuthorId = author.parse().map_err(|e| format!("author: {e}"))?;
        let (package, version) = match rest.split_once('@') {
            Some((p, v)) => (p, Some(v)),
            None => (rest, None),
        };
        let package: PackageName = package.parse().map_err(|e| format!("package: {e}"))?;
        let version = match version {
            None => VersionSel::Newest,
            Some(v) => match v.parse::<Version>() {
                Ok(v) => VersionSel::Exact(v),
                Err(exact) => VersionSel::Req(v.parse().map_err(|_| {
                    format!("version: {exact}; or write a requirement such as ^1.2")
                })?),
            },
        };
        Ok(Self {
            author,
            package,
            version,
        })
    }
}

impl FromStr for ReleaseSpec {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let spec: PackageSpec = s.parse()?;
        match spec.version {
            VersionSel::Exact(version) => Ok(Self {
                author: spec.author,
                package: spec.package,
                version,
            }),
            _ => Err("expected AUTHOR/PACKAGE@VERSION with an exact version, e.g. …/com.example.app@1.2.0".into()),
        }
    }
}

impl fmt::Display for ReleaseSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}@{}", self.author, self.package, self.version)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_versions_and_requirements() {
        let author = ipsr_proto::AuthorKey::from_seed(&[1; 32]).author_id();
        let s: PackageSpec = format!("{author}/com.example.app").parse().unwrap();
        assert_eq!(s.version, VersionSel::Newest);
        let s: PackageSpec = format!("{author}/com.example.app@1.2.0").parse().unwrap();
        assert!(matches!(s.version, VersionSel::Exact(_)));
        let s: PackageSpec = format!("{author}/com.example.app@^1.2").parse().unwrap();
        assert!(matches!(s.version, VersionSel::Req(_)));
        for bad in [
            "nope".to_owned(),
            format!("{author}/app"),
            "x/com.example.app".to_owned(),
            format!("{author}/com.example.app@what"),
        ] {
            assert!(bad.parse::<PackageSpec>().is_err(), "{bad}");
        }
        assert!(
            format!("{author}/com.example.app@^1")
                .parse::<ReleaseSpec>()
                .is_err()
        );
    }
}
