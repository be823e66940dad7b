//! [`DhtStore`]: Kademlia's in-memory store, bounded (`docs/node.md`,
//! "Kademlia DHT"). It wraps kad's `MemoryStore` and keeps, on top of it,
//! the counts that bound it and the expiry of everything it holds:
//!
//! * **Value records**, at most [`DhtStoreLimits::records`] and
//!   [`DhtStoreLimits::record_bytes`] (keys and values). Each expires (the
//!   sender's expiry, or the record TTL at most). A record this node put
//!   itself (its own copy of what it serves, [`RecordStore::put`] with
//!   itself as publisher) is kept only while there is room, and is the
//!   first to go when a record from a peer ([`DhtStore::keep`]) needs it:
//!   the records this node holds for others are what the DHT relies on,
//!   and its own are in its store anyway. An own record that finds no
//!   room is still sent to the network.
//! * **Provider records** of other peers, admitted by the rules of
//!   [`providers`](crate::providers) ([`DhtStore::offer`]): a valid key,
//!   caps per peer, per key and in all (records and bytes), expiry. This
//!   node's own provider records (one per pinned root it announces) are
//!   outside those caps and expire like any other unless re-announced.
//!
//! Nothing expired is ever returned; expired entries are removed whenever
//! the store is written to (their expiry is kept in time order, so that
//! costs nothing when nothing is due).

use std::borrow::Cow;
use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use libp2p::PeerId;
use libp2p::kad::store::{self, MemoryStore, MemoryStoreConfig, RecordStore};
use libp2p::kad::{ProviderRecord, Record, RecordKey};
use tracing::debug;

use crate::config::DhtStoreLimits;
use crate::providers::{self, Caps, Refused, Tally};

/// Provider keys this node announces of its own, at most (its pins).
const MAX_OWN_PROVIDED: usize = 1_000_000;

/// What the store holds, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct DhtStoreStats {
    /// Value records.
    pub(crate) records: usize,
    /// Their bytes (keys and values).
    pub(crate) record_bytes: usize,
    /// Provider records of other peers.
    pub(crate) providers: usize,
    /// Their bytes (keys, provider ids, addresses).
    pub(crate) provider_bytes: usize,
}

/// Kademlia's record store, bounded in records, bytes and provider records.
pub(crate) struct DhtStore {
    inner: MemoryStore,
    local: PeerId,
    limits: DhtStoreLimits,
    record_ttl: Duration,
    provider_ttl: Duration,
    /// Bytes of the value records held.
    record_bytes: usize,
    /// Keys of value records that are this node's own copies.
    own: BTreeSet<Vec<u8>>,
    /// Every value record's expiry, soonest first (one entry per record).
    record_expiry: BTreeSet<(Instant, Vec<u8>)>,
    /// The provider records of other peers, counted.
    tally: Tally,
    /// Every provider record's expiry, soonest first.
    provider_expiry: BTreeSet<(Instant, Vec<u8>, PeerId)>,
}

impl std::fmt::Debug for DhtStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DhtStore")
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl DhtStore {
    /// An empty store for the node `local`: records live at most
    /// `record_ttl`, provider records `provider_ttl`.
    pub(crate) fn new(
        local: PeerId,
        limits: DhtStoreLimits,
        record_ttl: Duration,
        provider_ttl: Duration,
    ) -> Self {
        let inner = MemoryStore::with_config(
            local,
            MemoryStoreConfig {
                // The counts are kept here; the inner store only stores.
                max_records: usize::MAX,
                // kad's store refuses a value of exactly this many bytes.
                max_value_bytes: ipsr_proto::limits::MAX_RECORD_BYTES + 1,
                // Room for this node beside the peers a key may have.
                max_providers_per_key: limits.providers_per_key + 1,
                max_provided_keys: limits.providers.saturating_add(MAX_OWN_PROVIDED),
            },
        );
        Self {
            inner,
            local,
            limits,
            record_ttl,
            provider_ttl,
            record_bytes: 0,
            own: BTreeSet::new(),
            record_expiry: BTreeSet::new(),
            tally: Tally::default(),
            provider_expiry: BTreeSet::new(),
        }
    }

    /// What the store holds.
    pub(crate) fn stats(&self) -> DhtStoreStats {
        DhtStoreStats {
            records: self.record_expiry.len(),
            record_bytes: self.record_bytes,
            providers: self.tally.total(),
            provider_bytes: self.tally.bytes(),
        }
    }

    fn caps(&self) -> Caps {
        Caps::of(&self.limits)
    }

    /// Keeps a value record a peer put (validated by the application) at
    /// `now`, making room by dropping this node's own copies if need be.
    /// Refused when it is too large or the store is full of others' records.
    pub(crate) fn keep(&mut self, mut record: Record, now: Instant) -> store::Result<()> {
        self.sweep(now);
        if record.value.len() > ipsr_proto::limits::MAX_RECORD_BYTES {
            return Err(store::Error::ValueTooLarge);
        }
        record.expires = Some(providers::expiry(now, self.record_ttl, record.expires));
        while !self.fits(&record) {
            let mine = record.key.as_ref();
            let Some(victim) = self.own.iter().find(|k| k.as_slice() != mine).cloned() else {
                return Err(store::Error::MaxRecords);
            };
            debug!("DHT store full: dropping an own record for a peer's");
            self.remove_record(&RecordKey::from(victim));
        }
        self.insert_record(record, false);
        Ok(())
    }

    /// Keeps this node's own copy of a record it puts, at `now`, while
    /// there is room; the put goes to the network either way.
    fn put_own(&mut self, mut record: Record, now: Instant) -> store::Result<()> {
        self.sweep(now);
        if record.value.len() > ipsr_proto::limits::MAX_RECORD_BYTES {
            return Err(store::Error::ValueTooLarge);
        }
        record.expires = Some(providers::expiry(now, self.record_ttl, record.expires));
        if self.fits(&record) {
            self.insert_record(record, true);
        } else {
            debug!("DHT store full: an own record is put but not kept");
        }
        Ok(())
    }

    /// Whether `record` fits, counting what it would replace.
    fn fits(&self, record: &Record) -> bool {
        let old = self.inner.get(&record.key);
        let count = self.record_expiry.len() + usize::from(old.is_none());
        let bytes = self.record_bytes - old.map_or(0, |o| record_size(&o)) + record_size(record);
        count <= self.limits.records && bytes <= self.limits.record_bytes
    }

    fn insert_record(&mut self, record: Record, own: bool) {
        self.remove_record(&record.key);
        let key = record.key.to_vec();
        let expires = record.expires.expect("set before insertion");
        self.record_bytes += record_size(&record);
        self.record_expiry.insert((expires, key.clone()));
        if own {
            self.own.insert(key);
        }
        if let Err(e) = self.inner.put(record) {
            // Size-checked above; the inner store has no other limit.
            debug!(error = %e, "DHT store refused a record");
        }
    }

    fn remove_record(&mut self, key: &RecordKey) {
        if let Some(old) = self.inner.get(key) {
            let (size, expires) = (record_size(&old), old.expires);
            self.record_bytes -= size;
            if let Some(expires) = expires {
                self.record_expiry.remove(&(expires, key.to_vec()));
            }
            self.own.remove(key.as_ref());
            self.inner.remove(key);
        }
    }

    /// Offers a provider record a peer sent at `now` (kad checked that its
    /// provider is the sender): kept by the rules of
    /// [`providers`](crate::providers), or refused with the reason.
    pub(crate) fn offer(
        &mut self,
        mut record: ProviderRecord,
        now: Instant,
    ) -> Result<(), Refused> {
        self.sweep(now);
        providers::check_key(record.key.as_ref())?;
        if record.provider == self.local {
            // Kad never hands on such a record; nothing to keep of it.
            return Ok(());
        }
        record.addresses = providers::trim_addresses(record.addresses);
        record.expires = Some(providers::expiry(now, self.provider_ttl, record.expires));
        let held = self.inner.providers(&record.key);
        let old = held.iter().find(|p| p.provider == record.provider);
        let others = held.iter().filter(|p| p.provider != self.local).count();
        let size = providers::size(&record);
        self.tally.admit(
            &self.caps(),
            &record.provider,
            size,
            others,
            old.map(providers::size),
        )?;
        self.insert_provider(record);
        Ok(())
    }

    fn insert_provider(&mut self, record: ProviderRecord) {
        self.remove_provider_entry(&record.key, &record.provider);
        let expires = record.expires.expect("set before insertion");
        self.provider_expiry
            .insert((expires, record.key.to_vec(), record.provider));
        if record.provider != self.local {
            self.tally.add(record.provider, providers::size(&record));
        }
        if let Err(e) = self.inner.add_provider(record) {
            // Only the count of keys can refuse, and it is above every cap.
            debug!(error = %e, "DHT store refused a provider record");
        }
    }

    fn remove_provider_entry(&mut self, key: &RecordKey, provider: &PeerId) {
        let held = self.inner.providers(key);
        let Some(old) = held.iter().find(|p| p.provider == *provider) else {
            return;
        };
        if let Some(expires) = old.expires {
            self.provider_expiry
                .remove(&(expires, key.to_vec(), *provider));
        }
        if *provider != self.local {
            self.tally.remove(provider, providers::size(old));
        }
        self.inner.remove_provider(key, provider);
    }

    /// Removes every record and provider record expired at `now`.
    pub(crate) fn sweep(&mut self, now: Instant) {
        while let Some((expires, _)) = self.record_expiry.first()
            && *expires <= now
        {
            let (_, key) = self.record_expiry.pop_first().expect("just seen");
            let key = RecordKey::from(key);
            // Its expiry entry is gone already; the rest goes here.
            if let Some(old) = self.inner.get(&key) {
                self.record_bytes -= record_size(&old);
            }
            self.own.remove(key.as_ref());
            self.inner.remove(&key);
        }
        while let Some((expires, _, _)) = self.provider_expiry.first()
            && *expires <= now
        {
            let (_, key, provider) = self.provider_expiry.pop_first().expect("just seen");
            let key = RecordKey::from(key);
            if provider != self.local
                && let Some(old) = self
                    .inner
                    .providers(&key)
                    .into_iter()
                    .find(|p| p.provider == provider)
            {
                self.tally.remove(&provider, providers::size(&old));
            }
            self.inner.remove_provider(&key, &provider);
        }
    }

    /// The record under `key` unless expired at `now`.
    pub(crate) fn get_at(&self, key: &RecordKey, now: Instant) -> Option<Cow<'_, Record>> {
        self.inner.get(key).filter(|r| !r.is_expired(now))
    }

    /// The providers of `key` whose records have not expired at `now`.
    pub(crate) fn providers_at(&self, key: &RecordKey, now: Instant) -> Vec<ProviderRecord> {
        let mut held = self.inner.providers(key);
        held.retain(|p| !p.is_expired(now));
        held
    }
}

/// The bytes a value record counts for: its key and its value.
fn record_size(record: &Record) -> usize {
    record.key.as_ref().len() + record.value.len()
}

impl RecordStore for DhtStore {
    type RecordsIter<'a> = <MemoryStore as RecordStore>::RecordsIter<'a>;
    type ProvidedIter<'a> = <MemoryStore as RecordStore>::ProvidedIter<'a>;

    fn get(&self, key: &RecordKey) -> Option<Cow<'_, Record>> {
        self.get_at(key, Instant::now())
    }

    /// kad calls this for the records this node puts itself (it is their
    /// publisher); anything else is a peer's record.
    fn put(&mut self, record: Record) -> store::Result<()> {
        match record.publisher == Some(self.local) {
            true => self.put_own(record, Instant::now()),
            false => self.keep(record, Instant::now()),
        }
    }

    fn remove(&mut self, key: &RecordKey) {
        self.remove_record(key);
    }

    /// Every record held, expired ones included (kad's replication jobs,
    /// which read it, are off: the republish walk does their work).
    fn records(&self) -> Self::RecordsIter<'_> {
        self.inner.records()
    }

    /// kad calls this when this node starts providing a key: its own
    /// record, which lives the provider TTL unless announced again. (A
    /// peer's record would go through [`DhtStore::offer`].)
    fn add_provider(&mut self, mut record: ProviderRecord) -> store::Result<()> {
        let now = Instant::now();
        if record.provider != self.local {
            return self
                .offer(record, now)
                .map_err(|_| store::Error::MaxProvidedKeys);
        }
        self.sweep(now);
        record.expires = Some(providers::expiry(now, self.provider_ttl, record.expires));
        self.insert_provider(record);
        Ok(())
    }

    fn providers(&self, key: &RecordKey) -> Vec<ProviderRecord> {
        self.providers_at(key, Instant::now())
    }

    /// This node's own provider records, expired ones included (kad's
    /// provider republication, which reads it, is off: the re-provide walk
    /// does its work).
    fn provided(&self) -> Self::ProvidedIter<'_> {
        self.inner.provided()
    }

    fn remove_provider(&mut self, key: &RecordKey, provider: &PeerId) {
        self.remove_provider_entry(key, provider);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOUR: Duration = Duration::from_secs(3600);
    const TTL: Duration = Duration::from_secs(48 * 3600);

    fn limits() -> DhtStoreLimits {
        DhtStoreLimits {
            records: 3,
            record_bytes: 1000,
            providers: 5,
            provider_bytes: 10_000,
            providers_per_peer: 2,
            providers_per_key: 3,
        }
    }

    fn store() -> (DhtStore, PeerId) {
        let local = PeerId::random();
        (DhtStore::new(local, limits(), TTL, TTL), local)
    }

    fn content_key(n: u8) -> RecordKey {
        let mut key = vec![0x12, 0x20];
        key.extend_from_slice(&[n; 32]);
        RecordKey::from(key)
    }

    fn offer(peer: PeerId, key: u8) -> ProviderRecord {
        ProviderRecord::new(content_key(key), peer, Vec::new())
    }

    fn record(key: &str, bytes: usize, publisher: Option<PeerId>) -> Record {
        Record {
            key: RecordKey::new(&key),
            value: vec![7; bytes],
            publisher,
            expires: None,
        }
    }

    fn held(s: &DhtStore, key: u8, now: Instant) -> Vec<PeerId> {
        s.providers_at(&content_key(key), now)
            .into_iter()
            .map(|p| p.provider)
            .collect()
    }

    #[test]
    fn a_valid_provider_record_is_kept_and_answered_until_it_expires() {
        let (mut s, _) = store();
        let t0 = Instant::now();
        let a = PeerId::random();
        assert_eq!(s.offer(offer(a, 1), t0), Ok(()));
        assert_eq!(held(&s, 1, t0 + TTL - HOUR), vec![a]);
        assert_eq!(held(&s, 1, t0 + TTL), vec![], "never returned expired");
        assert_eq!(s.stats().providers, 1);
        // Swept at the next write after its expiry.
        let b = PeerId::random();
        assert_eq!(s.offer(offer(b, 2), t0 + TTL), Ok(()));
        assert_eq!(s.stats().providers, 1);
        assert!(s.inner.providers(&content_key(1)).is_empty());
        assert_eq!(s.tally.of(&a), 0);
    }

    #[test]
    fn a_renewed_record_lives_on_and_counts_once() {
        let (mut s, _) = store();
        let t0 = Instant::now();
        let a = PeerId::random();
        s.offer(offer(a, 1), t0).unwrap();
        s.offer(offer(a, 1), t0 + HOUR * 40).unwrap();
        assert_eq!(held(&s, 1, t0 + TTL + HOUR), vec![a]);
        assert_eq!(s.stats().providers, 1);
        assert_eq!(s.provider_expiry.len(), 1);
    }

    #[test]
    fn bad_keys_and_records_beyond_the_caps_are_not_stored() {
        let (mut s, _) = store();
        let t0 = Instant::now();
        let [a, b, c, d] = [0; 4].map(|_| PeerId::random());
        let bad = ProviderRecord::new(RecordKey::new(&b"/ipsr/release/1/x"), a, Vec::new());
        assert_eq!(s.offer(bad.clone(), t0), Err(Refused::Key));
        assert!(s.providers_at(&bad.key, t0).is_empty());
        // Per peer: two.
        s.offer(offer(a, 1), t0).unwrap();
        s.offer(offer(a, 2), t0).unwrap();
        assert_eq!(s.offer(offer(a, 3), t0), Err(Refused::PeerFull));
        assert!(held(&s, 3, t0).is_empty());
        // Per key: three.
        s.offer(offer(b, 1), t0).unwrap();
        s.offer(offer(c, 1), t0).unwrap();
        assert_eq!(s.offer(offer(d, 1), t0), Err(Refused::KeyFull));
        assert_eq!(held(&s, 1, t0).len(), 3);
        // In all: five.
        s.offer(offer(b, 4), t0).unwrap();
        assert_eq!(s.offer(offer(d, 5), t0), Err(Refused::StoreFull));
        assert_eq!(s.stats().providers, 5);
        // Once some expire, there is room again.
        assert_eq!(s.offer(offer(d, 5), t0 + TTL), Ok(()));
        assert_eq!(s.stats().providers, 1);
    }

    #[test]
    fn provider_bytes_are_capped_and_addresses_trimmed() {
        let local = PeerId::random();
        let limits = DhtStoreLimits {
            provider_bytes: 200,
            ..limits()
        };
        let mut s = DhtStore::new(local, limits, TTL, TTL);
        let t0 = Instant::now();
        let addr: libp2p::Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
        let mut fat = offer(PeerId::random(), 1);
        fat.addresses = vec![addr.clone(); 30];
        s.offer(fat, t0).unwrap();
        let kept = s.providers_at(&content_key(1), t0);
        assert_eq!(kept[0].addresses.len(), providers::MAX_ADDRESSES);
        assert!(s.stats().provider_bytes <= 200);
        let mut more = offer(PeerId::random(), 2);
        more.addresses = vec![addr; 4];
        assert_eq!(s.offer(more, t0), Err(Refused::StoreFull));
    }

    #[test]
    fn own_provider_records_are_outside_the_caps_and_expire_unless_renewed() {
        let (mut s, local) = store();
        let t0 = Instant::now();
        for n in 0..10 {
            s.add_provider(offer(local, n)).unwrap();
        }
        assert_eq!(s.stats().providers, 0, "not counted with the peers'");
        // A key full of peers still has room for this node.
        for _ in 0..3 {
            s.offer(offer(PeerId::random(), 0), t0).unwrap();
        }
        assert_eq!(held(&s, 0, t0).len(), 4);
        assert!(held(&s, 0, t0).contains(&local));
        assert_eq!(s.provided().count(), 10);
        s.sweep(Instant::now() + TTL);
        assert_eq!(s.provided().count(), 0);
    }

    #[test]
    fn records_are_bounded_in_count_and_bytes_and_expire() {
        let (mut s, _) = store();
        let t0 = Instant::now();
        let peer = Some(PeerId::random());
        s.keep(record("a", 100, peer), t0).unwrap();
        s.keep(record("b", 100, peer), t0).unwrap();
        s.keep(record("c", 100, peer), t0).unwrap();
        assert!(matches!(
            s.keep(record("d", 100, peer), t0),
            Err(store::Error::MaxRecords)
        ));
        // Replacing a record is no new one; bytes count what it replaces.
        s.keep(record("c", 790, peer), t0).unwrap();
        assert_eq!(s.stats().record_bytes, 3 + 200 + 790);
        assert!(matches!(
            s.keep(record("c", 798, peer), t0),
            Err(store::Error::MaxRecords)
        ));
        assert!(s.get_at(&RecordKey::new(&"c"), t0).is_some());
        assert!(s.get_at(&RecordKey::new(&"c"), t0 + TTL).is_none());
        s.sweep(t0 + TTL);
        assert_eq!(s.stats(), DhtStoreStats::default());
    }

    #[test]
    fn own_records_give_way_to_peers_records() {
        let (mut s, local) = store();
        let t0 = Instant::now();
        for key in ["a", "b", "c"] {
            s.put(record(key, 10, Some(local))).unwrap();
        }
        // Full: another own record is not kept, but the put succeeds.
        s.put(record("d", 10, Some(local))).unwrap();
        assert!(s.get(&RecordKey::new(&"d")).is_none());
        // A peer's record takes an own record's place.
        let peer = Some(PeerId::random());
        s.keep(record("e", 10, peer), t0).unwrap();
        s.keep(record("f", 10, peer), t0).unwrap();
        s.keep(record("g", 10, peer), t0).unwrap();
        assert!(matches!(
            s.keep(record("h", 10, peer), t0),
            Err(store::Error::MaxRecords)
        ));
        let kept: BTreeSet<_> = s.records().map(|r| r.key.to_vec()).collect();
        let expected: BTreeSet<_> = ["e", "f", "g"].map(|k| k.as_bytes().to_vec()).into();
        assert_eq!(kept, expected);
        assert!(s.own.is_empty());
    }

    #[test]
    fn a_record_lives_no_longer_than_the_ttl_whatever_it_asks() {
        let (mut s, _) = store();
        let t0 = Instant::now();
        let mut r = record("a", 1, None);
        r.expires = Some(t0 + TTL * 10);
        s.keep(r, t0).unwrap();
        assert!(s.get_at(&RecordKey::new(&"a"), t0 + TTL).is_none());
        let mut r = record("b", 1, None);
        r.expires = Some(t0 + HOUR);
        s.keep(r, t0).unwrap();
        assert!(s.get_at(&RecordKey::new(&"b"), t0 + HOUR).is_none());
        assert!(matches!(
            s.keep(
                record("big", ipsr_proto::limits::MAX_RECORD_BYTES + 1, None),
                t0
            ),
            Err(store::Error::ValueTooLarge)
        ));
    }
}
