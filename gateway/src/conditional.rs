//! Conditional and partial requests, shared by downloads and
//! `GET /ipfs/{cid}`: the `Range` and `If-None-Match` headers of a request
//! ([`Conditions`], read by [`conditions`]), whether an `If-None-Match`
//! names a tag ([`matches_tag`]), what a `Range` asks of a file
//! ([`wanted`]), and the `Cache-Control` of content named by its CID
//! ([`IMMUTABLE`]).

use std::ops::RangeInclusive;

use warp::{Filter, Rejection};

use crate::error::Failure;

/// `Cache-Control` of content named by its CID.
pub(crate) const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// The request headers a download looks at.
#[derive(Debug, Default, Clone)]
pub(crate) struct Conditions {
    pub(crate) range: Option<String>,
    pub(crate) if_none_match: Option<String>,
}

/// The `Range` and `If-None-Match` request headers.
pub(crate) fn conditions() -> impl Filter<Extract = (Conditions,), Error = Rejection> + Clone {
    warp::header::optional::<String>("range")
        .and(warp::header::optional::<String>("if-none-match"))
        .map(|range, if_none_match| Conditions {
            range,
            if_none_match,
        })
}

/// Whether an `If-None-Match` value names `tag` (or is `*`).
pub(crate) fn matches_tag(if_none_match: Option<&str>, tag: &str) -> bool {
    let Some(value) = if_none_match else {
        return false;
    };
    value
        .split(',')
        .map(str::trim)
        .any(|t| t == "*" || t == tag || t.strip_prefix("W/") == Some(tag))
}

/// What a `Range` header asks of a file of `size` bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Wanted {
    Whole,
    Part(RangeInclusive<u64>),
}

pub(crate) fn wanted(range: Option<&str>, size: u64) -> Result<Wanted, Failure> {
    use http_range_header::RangeUnsatisfiableError as E;
    let Some(range) = range else {
        return Ok(Wanted::Whole);
    };
    let ranges = match http_range_header::parse_range_header(range) {
        Ok(parsed) => parsed.validate(size),
        // A malformed header may be ignored (RFC 9110, 14.2).
        Err(_) => return Ok(Wanted::Whole),
    };
    match ranges {
        Ok(ranges) if ranges.len() == 1 => Ok(Wanted::Part(ranges[0].clone())),
        // Several ranges (multipart answers) are not served: the whole file is.
        Ok(_) => Ok(Wanted::Whole),
        Err(E::Unsatisfiable | E::Rejected(_)) => Err(Failure::RangeNotSatisfiable { size }),
        Err(_) => Ok(Wanted::Whole),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges() {
        assert_eq!(wanted(None, 10).unwrap(), Wanted::Whole);
        assert_eq!(wanted(Some("bytes=2-4"), 10).unwrap(), Wanted::Part(2..=4));
        assert_eq!(wanted(Some("bytes=7-"), 10).unwrap(), Wanted::Part(7..=9));
        assert_eq!(wanted(Some("bytes=-3"), 10).unwrap(), Wanted::Part(7..=9));
        assert_eq!(
            wanted(Some("bytes=5-100"), 10).unwrap(),
            Wanted::Part(5..=9)
        );
        assert!(matches!(
            wanted(Some("bytes=10-"), 10),
            Err(Failure::RangeNotSatisfiable { size: 10 })
        ));
        assert_eq!(wanted(Some("pages=1-2"), 10).unwrap(), Wanted::Whole);
        assert_eq!(wanted(Some("bytes=0-1,4-5"), 10).unwrap(), Wanted::Whole);
    }
}
