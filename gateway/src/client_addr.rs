//! Which client a request is attributed to behind a reverse proxy (sans
//! IO): [`TrustedProxies`], the proxies the operator runs (addresses and
//! CIDR blocks, `--trusted-proxy`), and [`client_address`], the rule that
//! picks the client from the TCP peer and the `X-Forwarded-For` headers.
//!
//! A proxy appends the address it received a connection from to
//! `X-Forwarded-For`, so the header reads left to right from the farthest
//! hop to the nearest; everything left of what a trusted proxy appended
//! came from the client and may be forged. So the walk goes from the
//! right, through trusted proxies only:
//!
//! ```text
//! X-Forwarded-For: 6.6.6.6, 203.0.113.7, 10.0.0.5      peer 10.0.0.9
//!                  forged   the client   trusted hop    trusted
//!                           ◄──────────── walk ────────────
//! ```
//!
//! * An untrusted peer is the client, whatever it sent.
//! * A trusted peer without the header is the client (a probe of the
//!   proxy's own, say).
//! * From the right, entries that are trusted proxies are skipped; the
//!   first untrusted entry is the client.
//! * An entry that is not an address (an IP, `IPv4:port` or `[IPv6]:port`;
//!   nothing else, no `unknown`, no empty entry) stops the walk, as does
//!   passing [`MAX_ENTRIES`] entries or [`MAX_BYTES`] bytes: the client is
//!   then the last trusted hop walked through, never a value a client could
//!   have written.
//! * When every entry is a trusted proxy, the leftmost is the client.
//!
//! Addresses are compared in their canonical form: an IPv4-mapped IPv6
//! address (`::ffff:a.b.c.d`, as a dual-stack socket reports IPv4 peers)
//! is its IPv4 address, for the peer, for the entries and for the blocks.
//! The address returned is the client's own; per-client limits then key it
//! as every other address (an IPv6 client by its /64).

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

/// The most `X-Forwarded-For` entries walked for one request.
pub(crate) const MAX_ENTRIES: usize = 32;
/// The most bytes of `X-Forwarded-For` values walked for one request
/// (counted from the right, separators included).
pub(crate) const MAX_BYTES: usize = 8 * 1024;

/// A block of addresses: an address and a prefix length, `10.0.0.0/8`,
/// `2001:db8::/32`, or one address (`192.0.2.1`, the whole length).
///
/// An IPv4-mapped IPv6 block (`::ffff:10.0.0.0/104`) is the IPv4 block it
/// maps (`10.0.0.0/8`); bits past the prefix are ignored (`10.1.2.3/8` is
/// `10.0.0.0/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Cidr {
    /// The first address of the block (bits past the prefix cleared).
    base: IpAddr,
    /// How many leading bits an address shares with `base` to lie in it.
    prefix: u8,
}

/// Why a [`Cidr`] could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CidrError {
    /// The part before the `/` is not an IP address.
    #[error("{0:?} is not an IP address (expected e.g. 192.0.2.1, 10.0.0.0/8 or 2001:db8::/32)")]
    Address(String),
    /// The prefix length is not a number within the address's bits.
    #[error("{prefix:?} is not a prefix length of an {family} address (0 to {max})")]
    Prefix {
        /// The prefix length as written.
        prefix: String,
        /// `IPv4` or `IPv6`.
        family: &'static str,
        /// The longest prefix of the family.
        max: u8,
    },
}

impl Cidr {
    /// The block of `prefix` leading bits of `addr` (an IPv4-mapped IPv6
    /// block is read as IPv4), or `None` when `prefix` is longer than the
    /// address.
    pub fn new(addr: IpAddr, prefix: u8) -> Option<Self> {
        let (addr, prefix) = match addr {
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) if prefix >= 96 => (IpAddr::V4(v4), prefix - 96),
                _ => (addr, prefix),
            },
            IpAddr::V4(_) => (addr, prefix),
        };
        let base = match addr {
            IpAddr::V4(v4) if prefix <= 32 => IpAddr::V4((u32::from(v4) & mask32(prefix)).into()),
            IpAddr::V6(v6) if prefix <= 128 => {
                IpAddr::V6((u128::from(v6) & mask128(prefix)).into())
            }
            _ => return None,
        };
        Some(Self { base, prefix })
    }

    /// Whether `ip` (canonical or not) lies in the block.
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.base, ip.to_canonical()) {
            (IpAddr::V4(base), IpAddr::V4(ip)) => {
                u32::from(ip) & mask32(self.prefix) == u32::from(base)
            }
            (IpAddr::V6(base), IpAddr::V6(ip)) => {
                u128::from(ip) & mask128(self.prefix) == u128::from(base)
            }
            _ => false,
        }
    }
}

/// The IPv4 mask of `prefix` (at most 32) leading ones.
fn mask32(prefix: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0)
}

/// The IPv6 mask of `prefix` (at most 128) leading ones.
fn mask128(prefix: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0)
}

impl FromStr for Cidr {
    type Err = CidrError;

    /// `ADDR` or `ADDR/LEN`, surrounding spaces ignored.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let s = s.trim();
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let addr: IpAddr = addr
            .parse()
            .map_err(|_| CidrError::Address(addr.to_owned()))?;
        let (family, max) = match addr {
            IpAddr::V4(_) => ("IPv4", 32),
            IpAddr::V6(_) => ("IPv6", 128),
        };
        let bad = || CidrError::Prefix {
            prefix: prefix.unwrap_or_default().to_owned(),
            family,
            max,
        };
        let prefix = match prefix {
            None => max,
            // Digits only: `u8::from_str` would take a `+`.
            Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
                p.parse().map_err(|_| bad())?
            }
            Some(_) => return Err(bad()),
        };
        Self::new(addr, prefix).ok_or_else(bad)
    }
}

impl fmt::Display for Cidr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.base, self.prefix)
    }
}

/// The reverse proxies a gateway trusts to say who their clients are
/// (`--trusted-proxy`). Empty by default: then every request's client is
/// its TCP peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies {
    blocks: Vec<Cidr>,
}

impl TrustedProxies {
    /// Trusts the proxies in `blocks`.
    pub fn new(blocks: impl IntoIterator<Item = Cidr>) -> Self {
        Self {
            blocks: blocks.into_iter().collect(),
        }
    }

    /// Whether no proxy is trusted.
    pub fn is_empty(&self) -> bool {
        self.blocks.is_empty()
    }

    /// Whether `ip` is a trusted proxy.
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.blocks.iter().any(|b| b.contains(ip))
    }

    /// The trusted blocks.
    pub fn blocks(&self) -> &[Cidr] {
        &self.blocks
    }
}

/// The client a request from `peer` is attributed to, given its
/// `X-Forwarded-For` header values in the order they came
/// (`forwarded_for`; several headers read as one list, in order) and the
/// `trusted` proxies. The rule is in the module's documentation.
pub(crate) fn client_address(
    peer: IpAddr,
    forwarded_for: &[&str],
    trusted: &TrustedProxies,
) -> IpAddr {
    let mut hop = peer.to_canonical();
    if !trusted.contains(hop) {
        return hop;
    }
    let mut entries = 0;
    let mut budget = MAX_BYTES;
    for value in forwarded_for.iter().rev() {
        // Only the last `budget` bytes are looked at; an entry cut there
        // is never read.
        let (window, cut) = tail(value, budget);
        budget -= window.len();
        let mut pieces = window.rsplit(',').peekable();
        while let Some(piece) = pieces.next() {
            entries += 1;
            if entries > MAX_ENTRIES || (cut && pieces.peek().is_none()) {
                return hop;
            }
            let Some(ip) = entry(piece) else {
                return hop;
            };
            if !trusted.contains(ip) {
                return ip;
            }
            hop = ip;
        }
        // The comma between this value and the one before it.
        budget = budget.saturating_sub(1);
        if budget == 0 {
            return hop;
        }
    }
    hop
}

/// The last `budget` bytes of `value` (from a character boundary), and
/// whether that is less than all of it.
fn tail(value: &str, budget: usize) -> (&str, bool) {
    if value.len() <= budget {
        return (value, false);
    }
    let mut start = value.len() - budget;
    while !value.is_char_boundary(start) {
        start += 1;
    }
    (&value[start..], true)
}

/// One `X-Forwarded-For` entry's address, canonical: `IP`, `IPv4:port` or
/// `[IPv6]:port`, surrounding spaces and tabs ignored; `None` for anything
/// else.
fn entry(piece: &str) -> Option<IpAddr> {
    let piece = piece.trim_matches([' ', '\t']);
    let ip = match piece.parse::<IpAddr>() {
        Ok(ip) => ip,
        Err(_) => piece.parse::<SocketAddr>().ok()?.ip(),
    };
    Some(ip.to_canonical())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;
    use crate::occupancy::client_key;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn trusted(blocks: &[&str]) -> TrustedProxies {
        TrustedProxies::new(blocks.iter().map(|b| b.parse::<Cidr>().unwrap()))
    }

    /// The proxy every test but a few trusts, and the client's address.
    const PROXY: &str = "10.0.0.9";

    fn via_proxy(headers: &[&str]) -> IpAddr {
        client_address(ip(PROXY), headers, &trusted(&["10.0.0.0/24"]))
    }

    #[test]
    fn blocks_are_read_masked_and_shown() {
        let b: Cidr = "10.1.2.3/8".parse().unwrap();
        assert_eq!(b.to_string(), "10.0.0.0/8");
        assert_eq!(
            " 192.0.2.1 ".parse::<Cidr>().unwrap().to_string(),
            "192.0.2.1/32"
        );
        assert_eq!(
            "2001:db8::1".parse::<Cidr>().unwrap().to_string(),
            "2001:db8::1/128"
        );
        assert_eq!(
            "2001:db8:1:2:3::/48".parse::<Cidr>().unwrap().to_string(),
            "2001:db8:1::/48"
        );
        assert_eq!(
            "::ffff:10.1.2.3/104".parse::<Cidr>().unwrap(),
            "10.0.0.0/8".parse().unwrap(),
            "an IPv4-mapped block is the IPv4 block"
        );
        assert_eq!(
            "0.0.0.0/0".parse::<Cidr>().unwrap().to_string(),
            "0.0.0.0/0"
        );
        for bad in [
            "",
            "10.0.0.0/",
            "10.0.0.0/33",
            "10.0.0.0/+8",
            "10.0.0.0/-1",
            "10.0.0.0/8/8",
            "::/129",
            "nginx",
            "10.0.0",
            "10.0.0.1:80",
            "[::1]",
            "10.0.0.0/ 8",
        ] {
            assert!(bad.parse::<Cidr>().is_err(), "{bad:?}");
        }
        assert!(matches!(
            "10.0.0.0/40".parse::<Cidr>(),
            Err(CidrError::Prefix { max: 32, .. })
        ));
        assert!(matches!(
            "proxy".parse::<Cidr>(),
            Err(CidrError::Address(_))
        ));
    }

    #[test]
    fn blocks_contain_what_their_prefix_covers() {
        let b: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(b.contains(ip("10.255.1.2")));
        assert!(!b.contains(ip("11.0.0.0")));
        assert!(b.contains(ip("::ffff:10.9.9.9")), "IPv4-mapped is IPv4");
        assert!(!b.contains(ip("::a09:909")), "IPv4-compatible is IPv6");
        let one: Cidr = "192.0.2.1".parse().unwrap();
        assert!(one.contains(ip("192.0.2.1")) && !one.contains(ip("192.0.2.2")));
        let v6: Cidr = "2001:db8::/32".parse().unwrap();
        assert!(v6.contains(ip("2001:db8:ffff::1")));
        assert!(!v6.contains(ip("2001:db9::1")));
        assert!(!v6.contains(ip("10.0.0.1")));
        let all4: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all4.contains(ip("203.0.113.1")) && !all4.contains(ip("::1")));
        let all6: Cidr = "::/0".parse().unwrap();
        assert!(all6.contains(ip("::1")) && !all6.contains(ip("203.0.113.1")));
        let mapped: Cidr = "::ffff:192.0.2.1".parse().unwrap();
        assert!(mapped.contains(ip("192.0.2.1")));
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client() {
        let none = TrustedProxies::default();
        assert!(none.is_empty());
        assert_eq!(
            client_address(ip("10.0.0.9"), &["203.0.113.7"], &none),
            ip("10.0.0.9")
        );
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_sends() {
        let t = trusted(&[PROXY]);
        for headers in [
            &["203.0.113.7"][..],
            &["10.0.0.9"],
            &["203.0.113.7, 10.0.0.9"],
            &["garbage"],
            &[],
        ] {
            assert_eq!(
                client_address(ip("198.51.100.1"), headers, &t),
                ip("198.51.100.1"),
                "{headers:?}"
            );
        }
        assert_eq!(
            client_address(ip("::ffff:198.51.100.1"), &["203.0.113.7"], &t),
            ip("198.51.100.1"),
            "returned canonical"
        );
    }

    #[test]
    fn a_trusted_peer_without_the_header_is_the_client() {
        assert_eq!(via_proxy(&[]), ip(PROXY));
    }

    #[test]
    fn the_rightmost_untrusted_entry_is_the_client() {
        assert_eq!(via_proxy(&["203.0.113.7"]), ip("203.0.113.7"));
        // The client sent its own header; the proxy appended the real
        // address: the forged entries are never reached.
        assert_eq!(
            via_proxy(&["1.1.1.1, 6.6.6.6, 203.0.113.7"]),
            ip("203.0.113.7")
        );
        assert_eq!(
            via_proxy(&["1.1.1.1", "203.0.113.7"]),
            ip("203.0.113.7"),
            "several headers are one list"
        );
        // Through two trusted proxies (both in the block).
        assert_eq!(
            via_proxy(&["6.6.6.6, 203.0.113.7, 10.0.0.5"]),
            ip("203.0.113.7")
        );
        assert_eq!(
            via_proxy(&["6.6.6.6, 203.0.113.7", "10.0.0.5"]),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn a_forged_trusted_address_on_the_left_does_not_help() {
        // A client claims to be a proxy: the proxy appends its real one.
        assert_eq!(via_proxy(&["10.0.0.5, 203.0.113.7"]), ip("203.0.113.7"));
    }

    #[test]
    fn a_malformed_entry_stops_at_the_last_trusted_hop() {
        assert_eq!(via_proxy(&["unknown"]), ip(PROXY));
        assert_eq!(
            via_proxy(&["203.0.113.7, garbage"]),
            ip(PROXY),
            "the address left of garbage is never believed"
        );
        assert_eq!(
            via_proxy(&["203.0.113.7, garbage, 10.0.0.5"]),
            ip("10.0.0.5"),
            "the last trusted hop walked through"
        );
        for bad in [
            "",
            " ",
            "203.0.113.7,",
            ",203.0.113.7, ",
            "203.0.113.7 ,, 10.0.0.5",
            "203.0.113.7:99999",
            "203.0.113.7/8",
            "[203.0.113.7]",
            "2001:db8::1::80",
            "[2001:db8::1]",
            "_hidden",
            "for=203.0.113.7",
            "203.0.113.7;x",
        ] {
            let walked = via_proxy(&[bad]);
            assert!(
                walked == ip(PROXY) || walked == ip("10.0.0.5"),
                "{bad:?} gave {walked}"
            );
        }
        assert_eq!(via_proxy(&["203.0.113.7,"]), ip(PROXY));
        assert_eq!(via_proxy(&["203.0.113.7", ""]), ip(PROXY));
    }

    #[test]
    fn entries_with_ports_and_spaces_are_read() {
        assert_eq!(via_proxy(&["203.0.113.7:4711"]), ip("203.0.113.7"));
        assert_eq!(via_proxy(&["[2001:db8::7]:4711"]), ip("2001:db8::7"));
        assert_eq!(via_proxy(&["2001:db8::7"]), ip("2001:db8::7"));
        assert_eq!(via_proxy(&[" \t203.0.113.7 "]), ip("203.0.113.7"));
        assert_eq!(
            via_proxy(&["::ffff:203.0.113.7"]),
            ip("203.0.113.7"),
            "IPv4-mapped entries are IPv4"
        );
        assert_eq!(
            via_proxy(&["203.0.113.7, ::ffff:10.0.0.5"]),
            ip("203.0.113.7"),
            "a mapped trusted entry is trusted"
        );
    }

    #[test]
    fn a_mapped_peer_is_matched_as_ipv4() {
        let t = trusted(&[PROXY]);
        assert_eq!(
            client_address(ip("::ffff:10.0.0.9"), &["203.0.113.7"], &t),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn when_every_entry_is_trusted_the_leftmost_is_the_client() {
        assert_eq!(via_proxy(&["10.0.0.1, 10.0.0.2"]), ip("10.0.0.1"));
    }

    #[test]
    fn the_walk_stops_after_max_entries() {
        let hops: Vec<String> = (1..=MAX_ENTRIES).map(|i| format!("10.0.0.{i}")).collect();
        let within = format!("203.0.113.7, {}", hops[1..].join(", "));
        assert_eq!(via_proxy(&[&within]), ip("203.0.113.7"), "32 entries");
        let past = format!("203.0.113.7, {}", hops.join(", "));
        assert_eq!(
            via_proxy(&[&past]),
            ip("10.0.0.1"),
            "the 33rd is not read: the last trusted hop"
        );
        let many: Vec<&str> = hops.iter().map(String::as_str).collect();
        let mut headers = vec!["203.0.113.7"];
        headers.extend(&many);
        assert_eq!(
            via_proxy(&headers),
            ip("10.0.0.1"),
            "counted across headers"
        );
    }

    #[test]
    fn the_walk_stops_after_max_bytes() {
        let pad = " ".repeat(MAX_BYTES);
        let padded = format!("203.0.113.7,{pad}, 10.0.0.5");
        assert_eq!(
            via_proxy(&[&padded]),
            ip("10.0.0.5"),
            "an entry cut by the byte bound is never read: the last trusted hop"
        );
        // An address whose start falls just past the bound is not misread
        // as a shorter one (`11.2.3.4` cut to `1.2.3.4`).
        let spaces = MAX_BYTES - "11.2.3.4,".len() - "10.0.0.5".len();
        let whole = format!("11.2.3.4,{}10.0.0.5", " ".repeat(spaces));
        assert_eq!(whole.len(), MAX_BYTES);
        assert_eq!(via_proxy(&[&whole]), ip("11.2.3.4"), "within the bound");
        let cut = format!("11.2.3.4,{}10.0.0.5", " ".repeat(spaces + 1));
        assert_eq!(via_proxy(&[&cut]), ip("10.0.0.5"), "one byte past it");
        let big = "x".repeat(MAX_BYTES * 3);
        assert_eq!(via_proxy(&[&big, "203.0.113.7"]), ip("203.0.113.7"));
        assert_eq!(via_proxy(&["203.0.113.7", &big]), ip(PROXY));
        // The bound falls inside a two-byte character.
        let wide = format!("203.0.113.7,{}x", "é".repeat(MAX_BYTES));
        assert_eq!(via_proxy(&[&wide]), ip(PROXY));
        // Counted across headers, with a separator between them.
        let room = MAX_BYTES - "10.0.0.5".len() - ",".len() - "203.0.113.7".len();
        let last = |spaces: usize| format!("{}10.0.0.5", " ".repeat(spaces));
        assert_eq!(
            via_proxy(&["203.0.113.7", &last(room)]),
            ip("203.0.113.7"),
            "just within the bound"
        );
        assert_eq!(
            via_proxy(&["203.0.113.7", &last(room + 1)]),
            ip("10.0.0.5"),
            "the first header is cut"
        );
        assert_eq!(
            via_proxy(&["203.0.113.7", &last(MAX_BYTES - "10.0.0.5".len())]),
            ip("10.0.0.5"),
            "the bound is reached between the headers"
        );
    }

    #[test]
    fn ipv6_clients_are_still_keyed_by_their_slash_64() {
        let t = trusted(&["2001:db8:ffff::/48"]);
        let proxy = ip("2001:db8:ffff::1");
        let a = client_address(proxy, &["2001:db8:1:2::a"], &t);
        let b = client_address(proxy, &["2001:db8:1:2::b"], &t);
        let c = client_address(proxy, &["2001:db8:1:3::a"], &t);
        assert_eq!(a, ip("2001:db8:1:2::a"), "the address itself");
        assert_eq!(client_key(a), client_key(b), "one /64, one client");
        assert_ne!(client_key(a), client_key(c));
        assert_ne!(client_key(a), client_key(proxy));
    }

    proptest! {
        /// Whatever a client writes in its own header, a trusted proxy's
        /// appended entry is the client.
        #[test]
        fn client_text_never_hides_the_appended_address(
            forged in "[ -~]{0,200}",
            extra in proptest::collection::vec("[ -~]{0,40}", 0..4),
            last in any::<[u8; 4]>(),
        ) {
            let real = IpAddr::from(last);
            prop_assume!(!trusted(&["10.0.0.0/24"]).contains(real));
            let appended = format!("{forged}, {real}");
            let mut headers: Vec<&str> = extra.iter().map(String::as_str).collect();
            headers.push(&appended);
            prop_assert_eq!(via_proxy(&headers), real);
        }

        /// From an untrusted peer the header is never read, whatever
        /// addresses it names.
        #[test]
        fn untrusted_peers_are_never_moved(
            headers in proptest::collection::vec(
                proptest::collection::vec(
                    prop_oneof![
                        any::<[u8; 4]>().prop_map(|a| IpAddr::from(a).to_string()),
                        Just(PROXY.to_owned()),
                        "[ -~]{0,20}",
                    ],
                    1..5,
                ),
                0..4,
            ),
            peer in any::<[u8; 4]>(),
        ) {
            let peer = IpAddr::from(peer);
            let t = trusted(&["10.0.0.0/24"]);
            prop_assume!(!t.contains(peer));
            let headers: Vec<String> = headers.iter().map(|h| h.join(", ")).collect();
            let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
            prop_assert_eq!(client_address(peer, &headers, &t), peer);
        }

        /// The answer is the peer or an address written in the headers,
        /// and any bytes cost at most the bounds.
        #[test]
        fn the_client_is_the_peer_or_an_entry(
            headers in proptest::collection::vec("[0-9a-f:.\\[\\], ]{0,60}", 0..6),
        ) {
            let headers: Vec<&str> = headers.iter().map(String::as_str).collect();
            let client = via_proxy(&headers);
            let joined = headers.join(",");
            prop_assert!(
                client == ip(PROXY)
                    || joined.split(',').filter_map(entry).any(|e| e == client),
                "{} from {:?}", client, headers
            );
        }
    }
}
