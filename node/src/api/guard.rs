//! Who may use the API: the rules against web pages that reach it through
//! the user's browser (`docs/node-api.md`, "Browsers and other origins").
//!
//! * **DNS rebinding.** A page on `rebind.attacker.example` makes its name
//!   resolve to 127.0.0.1 and then calls the API as the same origin. The
//!   browser still sends `Host: rebind.attacker.example`, so a request is
//!   served only when its `Host` names a loopback address (`localhost`,
//!   `127.0.0.0/8`, `::1`) or the address the API is bound to. A request
//!   without `Host` (HTTP/1.0 tools) is served: browsers always send it.
//! * **Cross-site requests.** A page elsewhere can send a `POST` with a
//!   "simple" content type without a preflight. A request that changes
//!   state (any method but `GET`, `HEAD`, `OPTIONS`) is refused when its
//!   `Origin` is present and not a loopback or bound-address origin
//!   (`null` included), or when `Sec-Fetch-Site` says `cross-site` or
//!   `same-site`.
//!
//! The rules are a plain function of the request's method and headers.

use std::net::{IpAddr, SocketAddr};

use warp::http::Method;

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    /// The `Host` header names neither a loopback address nor the API's.
    #[error("Host {0:?} is not this node's API (only loopback names and the bound address are)")]
    Host(String),
    /// A state-changing request from a page of another origin.
    #[error("cross-origin request refused: {0}")]
    CrossOrigin(String),
}

/// The API's address, which its requests may name besides loopback.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Guard {
    bound: SocketAddr,
}

impl Guard {
    pub(crate) fn new(bound: SocketAddr) -> Self {
        Self { bound }
    }

    /// Whether a request with this method and these headers is served.
    pub(crate) fn check(
        &self,
        method: &Method,
        host: Option<&str>,
        origin: Option<&str>,
        fetch_site: Option<&str>,
    ) -> Result<(), Refusal> {
        if let Some(host) = host
            && !self.allowed_authority(host)
        {
            return Err(Refusal::Host(host.to_owned()));
        }
        let reads = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        if reads {
            return Ok(());
        }
        if let Some(site) = fetch_site
            && matches!(
                site.to_ascii_lowercase().as_str(),
                "cross-site" | "same-site"
            )
        {
            return Err(Refusal::CrossOrigin(format!("Sec-Fetch-Site: {site}")));
        }
        if let Some(origin) = origin {
            let authority = origin
                .strip_prefix("http://")
                .or_else(|| origin.strip_prefix("https://"));
            match authority {
                Some(authority) if self.allowed_authority(authority) => {}
                _ => return Err(Refusal::CrossOrigin(format!("Origin: {origin}"))),
            }
        }
        Ok(())
    }

    /// Whether `authority` (`name`, `name:port`, `[v6]`, `[v6]:port`)
    /// names a loopback address or the bound one.
    fn allowed_authority(&self, authority: &str) -> bool {
        let name = match authority.strip_prefix('[') {
            Some(rest) => match rest.split_once(']') {
                Some((v6, "")) => v6,
                Some((v6, port)) if port.strip_prefix(':').is_some_and(valid_port) => v6,
                _ => return false,
            },
            None => match authority.rsplit_once(':') {
                Some((name, port)) if valid_port(port) => name,
                Some(_) => return false,
                None => authority,
            },
        };
        if name.eq_ignore_ascii_case("localhost") {
            return true;
        }
        match name.parse::<IpAddr>() {
            Ok(ip) => ip.is_loopback() || ip == self.bound.ip(),
            Err(_) => false,
        }
    }
}

/// A port after a host's `:`: one to five digits.
fn valid_port(digits: &str) -> bool {
    !digits.is_empty() && digits.len() <= 5 && digits.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> Guard {
        Guard::new("127.0.0.1:5050".parse().unwrap())
    }

    fn host(h: &str) -> Result<(), Refusal> {
        guard().check(&Method::GET, Some(h), None, None)
    }

    fn post(origin: Option<&str>, site: Option<&str>) -> Result<(), Refusal> {
        guard().check(&Method::POST, Some("127.0.0.1:5050"), origin, site)
    }

    #[test]
    fn loopback_hosts_are_served_and_others_refused() {
        for ok in [
            "127.0.0.1:5050",
            "127.0.0.1",
            "127.1.2.3:80",
            "localhost:5050",
            "LOCALHOST",
            "[::1]:5050",
            "[::1]",
        ] {
            assert_eq!(host(ok), Ok(()), "{ok}");
        }
        for bad in [
            "rebind.attacker.example",
            "rebind.attacker.example:5050",
            "localhost.attacker.example",
            "127.0.0.1.nip.io",
            "192.0.2.1:5050",
            "[2001:db8::1]:5050",
            "127.0.0.1:50x",
            "127.0.0.1:",
            "[::1",
            "",
        ] {
            assert!(matches!(host(bad), Err(Refusal::Host(_))), "{bad}");
        }
        // No Host at all (HTTP/1.0): served.
        assert_eq!(guard().check(&Method::POST, None, None, None), Ok(()));
    }

    #[test]
    fn the_bound_address_is_a_host_too() {
        let g = Guard::new("192.0.2.7:5050".parse().unwrap());
        assert_eq!(
            g.check(&Method::GET, Some("192.0.2.7:5050"), None, None),
            Ok(())
        );
        assert!(
            g.check(&Method::GET, Some("192.0.2.8:5050"), None, None)
                .is_err()
        );
    }

    #[test]
    fn state_changes_from_other_origins_are_refused() {
        assert_eq!(post(None, None), Ok(()), "curl and the CLI send no Origin");
        assert_eq!(
            post(Some("http://127.0.0.1:5050"), Some("same-origin")),
            Ok(())
        );
        assert_eq!(post(Some("http://localhost:8080"), None), Ok(()));
        assert_eq!(post(None, Some("none")), Ok(()), "typed in the address bar");
        for (origin, site) in [
            (Some("https://attacker.example"), None),
            (Some("null"), None),
            (Some("http://127.0.0.1.attacker.example"), None),
            (Some("file://"), None),
            (None, Some("cross-site")),
            (None, Some("same-site")),
            (Some("http://127.0.0.1:5050"), Some("cross-site")),
        ] {
            assert!(
                matches!(post(origin, site), Err(Refusal::CrossOrigin(_))),
                "{origin:?} {site:?}"
            );
        }
        // Reads are not state changes: a page may not read the answer
        // anyway (no CORS headers), and a GET changes nothing.
        assert_eq!(
            guard().check(
                &Method::GET,
                Some("127.0.0.1:5050"),
                Some("https://attacker.example"),
                Some("cross-site")
            ),
            Ok(())
        );
        for method in [Method::DELETE, Method::PUT, Method::PATCH] {
            assert!(
                guard()
                    .check(&method, None, Some("https://attacker.example"), None)
                    .is_err()
            );
        }
    }
}
