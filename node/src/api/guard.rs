//! Who may use the API: the API token, and the rules against web pages
//! that reach it through the user's browser (`docs/node-api.md`,
//! "Authentication" and "Browsers and other origins").
//!
//! * **The token.** When the API has one (it is bound off loopback, or was
//!   given a token file), every request, whatever its route and method,
//!   must carry `Authorization: Bearer TOKEN`. A request with the token
//!   comes from someone the operator gave it to, who may reach the node by
//!   any name: the `Host` rule below is not applied to it.
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
//!   `same-site`. This holds with a valid token too.
//!
//! The rules are a plain function of the request's method and headers
//! ([`Guard::check`] of a [`Head`]).

use std::net::{IpAddr, SocketAddr};

use warp::http::Method;

use super::token::ApiToken;

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    /// The API needs a token and the request has no `Authorization`.
    #[error(
        "this node's API requires its token: send Authorization: Bearer TOKEN, with the \
         token from the node's API token file"
    )]
    NoToken,
    /// The `Authorization` header is not `Bearer` with the API's token.
    #[error("the Authorization header does not carry this node's API token")]
    WrongToken,
    /// The `Host` header names neither a loopback address nor the API's.
    #[error("Host {0:?} is not this node's API (only loopback names and the bound address are)")]
    Host(String),
    /// A state-changing request from a page of another origin.
    #[error("cross-origin request refused: {0}")]
    CrossOrigin(String),
}

/// What the rules look at of a request: its method and a few headers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Head<'a> {
    pub(crate) method: &'a Method,
    pub(crate) host: Option<&'a str>,
    pub(crate) origin: Option<&'a str>,
    pub(crate) fetch_site: Option<&'a str>,
    pub(crate) authorization: Option<&'a str>,
}

/// The API's address, which its requests may name besides loopback, and
/// its token, if it needs one.
#[derive(Debug, Clone)]
pub(crate) struct Guard {
    bound: SocketAddr,
    token: Option<ApiToken>,
}

impl Guard {
    pub(crate) fn new(bound: SocketAddr, token: Option<ApiToken>) -> Self {
        Self { bound, token }
    }

    /// Whether a request with this method and these headers is served.
    pub(crate) fn check(&self, head: &Head<'_>) -> Result<(), Refusal> {
        match &self.token {
            Some(token) => {
                let presented = head.authorization.ok_or(Refusal::NoToken)?;
                match bearer(presented) {
                    Some(presented) if token.matches(presented) => {}
                    _ => return Err(Refusal::WrongToken),
                }
            }
            None => {
                if let Some(host) = head.host
                    && !self.allowed_authority(host)
                {
                    return Err(Refusal::Host(host.to_owned()));
                }
            }
        }
        let reads = matches!(*head.method, Method::GET | Method::HEAD | Method::OPTIONS);
        if reads {
            return Ok(());
        }
        if let Some(site) = head.fetch_site
            && matches!(
                site.to_ascii_lowercase().as_str(),
                "cross-site" | "same-site"
            )
        {
            return Err(Refusal::CrossOrigin(format!("Sec-Fetch-Site: {site}")));
        }
        if let Some(origin) = head.origin {
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

/// The credentials of an `Authorization: Bearer TOKEN` value (the scheme
/// in any case, spaces around the token ignored); `None` for any other
/// scheme.
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then_some(token.trim_start_matches(' '))
}

/// A port after a host's `:`: one to five digits.
fn valid_port(digits: &str) -> bool {
    !digits.is_empty() && digits.len() <= 5 && digits.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard() -> Guard {
        Guard::new("127.0.0.1:5050".parse().unwrap(), None)
    }

    /// A request without `Authorization`.
    fn check(
        guard: &Guard,
        method: &Method,
        host: Option<&str>,
        origin: Option<&str>,
        fetch_site: Option<&str>,
    ) -> Result<(), Refusal> {
        guard.check(&Head {
            method,
            host,
            origin,
            fetch_site,
            authorization: None,
        })
    }

    fn host(h: &str) -> Result<(), Refusal> {
        check(&guard(), &Method::GET, Some(h), None, None)
    }

    fn post(origin: Option<&str>, site: Option<&str>) -> Result<(), Refusal> {
        check(
            &guard(),
            &Method::POST,
            Some("127.0.0.1:5050"),
            origin,
            site,
        )
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
        assert_eq!(check(&guard(), &Method::POST, None, None, None), Ok(()));
    }

    #[test]
    fn the_bound_address_is_a_host_too() {
        let g = Guard::new("192.0.2.7:5050".parse().unwrap(), None);
        assert_eq!(
            check(&g, &Method::GET, Some("192.0.2.7:5050"), None, None),
            Ok(())
        );
        assert!(check(&g, &Method::GET, Some("192.0.2.8:5050"), None, None).is_err());
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
            check(
                &guard(),
                &Method::GET,
                Some("127.0.0.1:5050"),
                Some("https://attacker.example"),
                Some("cross-site")
            ),
            Ok(())
        );
        for method in [Method::DELETE, Method::PUT, Method::PATCH] {
            assert!(
                check(
                    &guard(),
                    &method,
                    None,
                    Some("https://attacker.example"),
                    None
                )
                .is_err()
            );
        }
    }

    const TOKEN: &str = "0123456789abcdef0123456789abcdef";

    /// A guard of an API bound off loopback, with [`TOKEN`].
    fn guarded() -> Guard {
        let token = ApiToken::new(TOKEN).unwrap();
        Guard::new("0.0.0.0:5050".parse().unwrap(), Some(token))
    }

    fn with_token<'a>(method: &'a Method, authorization: Option<&'a str>) -> Head<'a> {
        Head {
            method,
            host: Some("127.0.0.1:5050"),
            origin: None,
            fetch_site: None,
            authorization,
        }
    }

    #[test]
    fn with_a_token_every_request_must_carry_it() {
        let g = guarded();
        let right = format!("Bearer {TOKEN}");
        for method in [
            Method::GET,
            Method::HEAD,
            Method::OPTIONS,
            Method::POST,
            Method::PUT,
            Method::DELETE,
        ] {
            assert_eq!(
                g.check(&with_token(&method, None)),
                Err(Refusal::NoToken),
                "{method}"
            );
            assert_eq!(
                g.check(&with_token(&method, Some(&right))),
                Ok(()),
                "{method}"
            );
        }
        let wrong_ones = [
            "Bearer 0123456789abcdef0123456789abcdee".to_owned(),
            format!("Bearer {}", &TOKEN[1..]),
            format!("Bearer {TOKEN}x"),
            format!("Basic {TOKEN}"),
            format!("Token {TOKEN}"),
            TOKEN.to_owned(),
            "Bearer".to_owned(),
            "Bearer ".to_owned(),
            String::new(),
        ];
        for wrong in &wrong_ones {
            assert_eq!(
                g.check(&with_token(&Method::GET, Some(wrong))),
                Err(Refusal::WrongToken),
                "{wrong:?}"
            );
        }
        for spelled in [
            format!("bearer {TOKEN}"),
            format!("BEARER   {TOKEN}"),
            format!(" Bearer {TOKEN} "),
        ] {
            assert_eq!(
                g.check(&with_token(&Method::GET, Some(&spelled))),
                Ok(()),
                "{spelled:?}"
            );
        }
    }

    #[test]
    fn with_the_token_any_host_is_served_but_not_other_origins() {
        let g = guarded();
        let right = format!("Bearer {TOKEN}");
        let remote = Head {
            host: Some("node.example.org:5050"),
            ..with_token(&Method::POST, Some(&right))
        };
        assert_eq!(g.check(&remote), Ok(()), "an operator's real host name");
        // Without the token, the token is what is missing, whatever the host.
        let anonymous = Head {
            authorization: None,
            ..remote
        };
        assert_eq!(g.check(&anonymous), Err(Refusal::NoToken));
        // A page of another origin cannot change state, even one that
        // somehow has the token.
        let cross_site = Head {
            origin: Some("https://attacker.example"),
            ..remote
        };
        assert!(matches!(g.check(&cross_site), Err(Refusal::CrossOrigin(_))));
        let same_site = Head {
            fetch_site: Some("same-site"),
            ..remote
        };
        assert!(matches!(g.check(&same_site), Err(Refusal::CrossOrigin(_))));
        // Reads are served to it as to any client.
        let read = Head {
            method: &Method::GET,
            ..cross_site
        };
        assert_eq!(g.check(&read), Ok(()));
    }

    /// On loopback without a token, an `Authorization` header changes
    /// nothing: the `Host` rule applies.
    #[test]
    fn without_a_token_authorization_is_ignored() {
        let head = Head {
            host: Some("rebind.attacker.example"),
            ..with_token(&Method::GET, Some("Bearer anything-at-all-here"))
        };
        assert!(matches!(guard().check(&head), Err(Refusal::Host(_))));
        assert_eq!(
            guard().check(&with_token(&Method::GET, Some("junk"))),
            Ok(())
        );
    }
}
