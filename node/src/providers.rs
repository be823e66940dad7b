//! Provider records in the DHT (`docs/node.md`, "Provider records"): which
//! inbound `ADD_PROVIDER` records a node keeps, for how long, and how many.
//!
//! Kademlia hands every inbound provider record to the application
//! (`StoreInserts::FilterBoth`), after checking that its provider is the
//! peer that sent it. The rules here decide the rest, purely (the time is
//! an argument); the [`DhtStore`](crate::dht_store::DhtStore) applies them
//! to what it holds:
//!
//! * **Key**: the multihash of a content root IPSR serves, the only hash it
//!   accepts: sha2-256 with a 32-byte digest, so the key is exactly
//!   `0x12 0x20` followed by 32 bytes ([`check_key`]). Anything else names
//!   content no IPSR node can fetch and is refused.
//! * **Expiry**: a kept record lives [`Config::provider_record_ttl`]
//!   (48 h, as in IPFS) from when it arrived, or less when the sender asked
//!   for less ([`expiry`]); the provider re-announces to renew it.
//! * **Size**: a record keeps at most [`MAX_ADDRESSES`] addresses of at
//!   most [`MAX_ADDRESS_BYTES`] bytes each ([`trim_addresses`]).
//! * **Caps** ([`Tally::admit`]): per provider peer, per key (the first
//!   providers of a key stay; later ones are refused until one expires),
//!   and in all, in records and in bytes. A provider that renews a record
//!   it has here is never refused for a count.
//!
//! [`Config::provider_record_ttl`]: crate::Config::provider_record_ttl

use std::collections::HashMap;
use std::time::{Duration, Instant};

use libp2p::kad::ProviderRecord;
use libp2p::{Multiaddr, PeerId};

use crate::config::DhtStoreLimits;

/// The length of a provider key: `0x12 0x20` and a sha2-256 digest.
pub(crate) const KEY_LEN: usize = 34;
/// Multihash code of sha2-256 (the one hash IPSR content uses).
const SHA2_256: u8 = 0x12;
/// Length of a sha2-256 digest.
const DIGEST_LEN: u8 = 32;
/// The most addresses a provider record keeps (the first ones sent).
pub(crate) const MAX_ADDRESSES: usize = 8;
/// The longest address a provider record keeps, in bytes.
pub(crate) const MAX_ADDRESS_BYTES: usize = 256;

/// Why an inbound provider record was not kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refused {
    /// The key is not the multihash of content IPSR serves.
    #[error("not a sha2-256 multihash of 32 bytes")]
    Key,
    /// The provider sent records faster than its budget allows.
    #[error("rate limited")]
    RateLimited,
    /// The provider has as many records here as one peer may.
    #[error("the provider has as many records here as one peer may")]
    PeerFull,
    /// The key has as many providers as a node keeps for one key.
    #[error("the key has as many providers as a node keeps")]
    KeyFull,
    /// The provider records are at their total count or bytes.
    #[error("the provider records are at their limit")]
    StoreFull,
}

impl Refused {
    /// The `outcome` label of the provider records metric.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Self::Key => "bad_key",
            Self::RateLimited => "rate_limited",
            Self::PeerFull => "peer_full",
            Self::KeyFull => "key_full",
            Self::StoreFull => "store_full",
        }
    }
}

/// The rule for a provider key: exactly `0x12 0x20` and 32 bytes, the
/// multihash bytes of a sha2-256 CID (what `Provide` announces:
/// `cid.hash().to_bytes()`).
pub(crate) fn check_key(key: &[u8]) -> Result<(), Refused> {
    match key {
        [SHA2_256, DIGEST_LEN, ..] if key.len() == KEY_LEN => Ok(()),
        _ => Err(Refused::Key),
    }
}

/// When a record that arrived at `now` expires: `now + ttl`, or earlier
/// when the sender asked for earlier.
pub(crate) fn expiry(now: Instant, ttl: Duration, asked: Option<Instant>) -> Instant {
    let most = now + ttl;
    asked.map_or(most, |asked| asked.min(most))
}

/// The addresses a record keeps: the first [`MAX_ADDRESSES`] of those no
/// longer than [`MAX_ADDRESS_BYTES`].
pub(crate) fn trim_addresses(addresses: Vec<Multiaddr>) -> Vec<Multiaddr> {
    addresses
        .into_iter()
        .filter(|a| a.len() <= MAX_ADDRESS_BYTES)
        .take(MAX_ADDRESSES)
        .collect()
}

/// The bytes a provider record counts for: its key, its provider's id and
/// its addresses.
pub(crate) fn size(record: &ProviderRecord) -> usize {
    record.key.as_ref().len()
        + record.provider.to_bytes().len()
        + record.addresses.iter().map(Multiaddr::len).sum::<usize>()
}

/// How many provider records of other peers a node keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Caps {
    /// In all.
    pub(crate) total: usize,
    /// Bytes ([`size`]) in all.
    pub(crate) bytes: usize,
    /// Per provider peer.
    pub(crate) per_peer: usize,
    /// Per key.
    pub(crate) per_key: usize,
}

impl Caps {
    /// The caps of `limits`, a node's configuration.
    pub(crate) fn of(limits: &DhtStoreLimits) -> Self {
        Self {
            total: limits.providers,
            bytes: limits.provider_bytes,
            per_peer: limits.providers_per_peer,
            per_key: limits.providers_per_key,
        }
    }
}

/// The provider records of other peers a node holds, counted: in all, in
/// bytes and per provider.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    total: usize,
    bytes: usize,
    per_peer: HashMap<PeerId, usize>,
}

impl Tally {
    /// Whether a record of `bytes` from `provider` fits, for a key that
    /// already has `key_providers` providers; `replacing` is the size of
    /// the record it renews (same key, same provider), if any. Renewing
    /// never adds to a count, only (perhaps) to the bytes.
    pub(crate) fn admit(
        &self,
        caps: &Caps,
        provider: &PeerId,
        bytes: usize,
        key_providers: usize,
        replacing: Option<usize>,
    ) -> Result<(), Refused> {
        if let Some(old) = replacing {
            return match self.bytes.saturating_sub(old) + bytes <= caps.bytes {
                true => Ok(()),
                false => Err(Refused::StoreFull),
            };
        }
        if self.of(provider) >= caps.per_peer {
            return Err(Refused::PeerFull);
        }
        if key_providers >= caps.per_key {
            return Err(Refused::KeyFull);
        }
        if self.total >= caps.total || self.bytes + bytes > caps.bytes {
            return Err(Refused::StoreFull);
        }
        Ok(())
    }

    /// Counts a record of `bytes` from `provider` in.
    pub(crate) fn add(&mut self, provider: PeerId, bytes: usize) {
        self.total += 1;
        self.bytes += bytes;
        *self.per_peer.entry(provider).or_default() += 1;
    }

    /// Counts a record of `bytes` from `provider` out.
    pub(crate) fn remove(&mut self, provider: &PeerId, bytes: usize) {
        self.total = self.total.saturating_sub(1);
        self.bytes = self.bytes.saturating_sub(bytes);
        if let Some(n) = self.per_peer.get_mut(provider) {
            *n -= 1;
            if *n == 0 {
                self.per_peer.remove(provider);
            }
        }
    }

    /// Records held in all.
    pub(crate) fn total(&self) -> usize {
        self.total
    }

    /// Bytes held in all.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// Records held from `provider`.
    pub(crate) fn of(&self, provider: &PeerId) -> usize {
        self.per_peer.get(provider).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sha256_key(fill: u8) -> Vec<u8> {
        let mut key = vec![0x12, 0x20];
        key.extend_from_slice(&[fill; 32]);
        key
    }

    #[test]
    fn the_key_is_the_multihash_of_a_sha2_256_cid() {
        assert_eq!(check_key(&sha256_key(7)), Ok(()));
        // What the node announces for a CID is such a key, CIDv0 or v1.
        let cid: cid::Cid = ipsr_testkit::CID.parse().unwrap();
        assert_eq!(check_key(&cid.hash().to_bytes()), Ok(()));
        assert_eq!(cid.hash().to_bytes().len(), KEY_LEN);
    }

    #[test]
    fn other_hashes_lengths_and_garbage_are_refused() {
        let mut short = sha256_key(1);
        short.pop();
        let mut long = sha256_key(1);
        long.push(0);
        let mut blake3 = sha256_key(1);
        blake3[0] = 0x1e;
        let mut truncated = sha256_key(1);
        truncated[1] = 20;
        truncated.truncate(22);
        let identity = [0x00, 0x03, b'a', b'b', b'c'];
        for key in [
            &short[..],
            &long,
            &blake3,
            &truncated,
            &identity,
            b"/ipsr/release/1/",
            &[],
        ] {
            assert_eq!(check_key(key), Err(Refused::Key), "{key:?}");
        }
    }

    #[test]
    fn a_record_expires_after_the_ttl_or_sooner_if_asked() {
        let now = Instant::now();
        let ttl = Duration::from_secs(48 * 3600);
        assert_eq!(expiry(now, ttl, None), now + ttl);
        let soon = now + Duration::from_secs(60);
        assert_eq!(expiry(now, ttl, Some(soon)), soon);
        assert_eq!(expiry(now, ttl, Some(now + ttl * 2)), now + ttl);
    }

    #[test]
    fn addresses_are_trimmed_to_a_few_short_ones() {
        let short: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
        let long: Multiaddr = format!("/dns/{}/tcp/1", "a".repeat(300)).parse().unwrap();
        assert!(long.len() > MAX_ADDRESS_BYTES);
        let mut many = vec![long.clone()];
        many.extend(std::iter::repeat_n(short.clone(), 20));
        let kept = trim_addresses(many);
        assert_eq!(kept, vec![short; MAX_ADDRESSES]);
        assert!(trim_addresses(vec![long]).is_empty());
    }

    fn caps() -> Caps {
        Caps {
            total: 4,
            bytes: 1000,
            per_peer: 2,
            per_key: 3,
        }
    }

    #[test]
    fn a_peer_gets_its_share_and_no_more() {
        let (a, b) = (PeerId::random(), PeerId::random());
        let mut t = Tally::default();
        for _ in 0..2 {
            assert_eq!(t.admit(&caps(), &a, 10, 0, None), Ok(()));
            t.add(a, 10);
        }
        assert_eq!(t.admit(&caps(), &a, 10, 0, None), Err(Refused::PeerFull));
        assert_eq!(
            t.admit(&caps(), &b, 10, 0, None),
            Ok(()),
            "others still fit"
        );
        // Renewing a record it has is no new record.
        assert_eq!(t.admit(&caps(), &a, 10, 1, Some(10)), Ok(()));
        t.remove(&a, 10);
        assert_eq!(t.of(&a), 1);
        assert_eq!(t.admit(&caps(), &a, 10, 0, None), Ok(()));
    }

    #[test]
    fn a_key_keeps_its_first_providers() {
        let t = Tally::default();
        let a = PeerId::random();
        assert_eq!(t.admit(&caps(), &a, 10, 2, None), Ok(()));
        assert_eq!(t.admit(&caps(), &a, 10, 3, None), Err(Refused::KeyFull));
        assert_eq!(t.admit(&caps(), &a, 10, 3, Some(10)), Ok(()), "a renewal");
    }

    #[test]
    fn the_total_is_capped_in_records_and_in_bytes() {
        let mut t = Tally::default();
        for _ in 0..4 {
            t.add(PeerId::random(), 100);
        }
        let c = PeerId::random();
        assert_eq!(t.admit(&caps(), &c, 1, 0, None), Err(Refused::StoreFull));
        let mut t = Tally::default();
        t.add(PeerId::random(), 990);
        assert_eq!(t.admit(&caps(), &c, 10, 0, None), Ok(()));
        assert_eq!(t.admit(&caps(), &c, 11, 0, None), Err(Refused::StoreFull));
        // A renewal may not grow the bytes past the cap either.
        assert_eq!(t.admit(&caps(), &c, 1000, 0, Some(990)), Ok(()));
        assert_eq!(
            t.admit(&caps(), &c, 1001, 0, Some(990)),
            Err(Refused::StoreFull)
        );
        assert_eq!((t.total(), t.bytes()), (1, 990));
    }
}
