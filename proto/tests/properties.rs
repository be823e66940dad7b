//! Property tests of the codecs, signatures and ordering rules.

#![allow(clippy::unwrap_used)]

use std::cmp::Ordering;

use ipsr_proto::noncanonical;
use ipsr_proto::strategy::{self, signed_record};
use ipsr_proto::{
    AuthorId, AuthorKey, ContentId, KeyCache, PackageName, PackageState, Record, Release,
    SignedRecord, Version, Yank,
};
use proptest::prelude::*;
use proptest::sample::Index;

/// Later than any `created_at` the strategies make.
const NOW: u64 = 5_000_000_000_000;

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn signed_record_round_trips(signed in signed_record()) {
        let bytes = signed.to_bytes();
        let back = SignedRecord::from_bytes(&bytes).unwrap().verify_at(NOW).unwrap();
        prop_assert_eq!(back.record(), signed.record());
        prop_assert_eq!(back.id(), signed.id());
        prop_assert_eq!(back.to_bytes(), bytes);
    }

    #[test]
    fn record_payload_and_json_round_trip(signed in signed_record()) {
        let record = signed.record();
        prop_assert_eq!(&Record::decode(&record.encode()).unwrap(), record);
        let json = serde_json::to_string(record).unwrap();
        prop_assert_eq!(&serde_json::from_str::<Record>(&json).unwrap(), record);
    }

    #[test]
    fn text_forms_round_trip(
        key in strategy::author_key(),
        name in strategy::package_name(),
        version in strategy::version(),
        cid in strategy::content_id(),
    ) {
        let id = key.author_id();
        prop_assert_eq!(id.to_string().parse::<AuthorId>().unwrap(), id);
        prop_assert_eq!(name.to_string().parse::<PackageName>().unwrap(), name);
        prop_assert_eq!(version.to_string().parse::<Version>().unwrap(), version);
        prop_assert_eq!(cid.to_string().parse::<ContentId>().unwrap(), cid);
        prop_assert_eq!(ContentId::from_bytes(&cid.to_bytes()).unwrap(), cid);
    }

    #[test]
    fn flipping_any_bit_breaks_verification(signed in signed_record(), bit in any::<Index>()) {
        let mut bytes = signed.to_bytes();
        let bit = bit.index(bytes.len() * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
        let result = SignedRecord::from_bytes(&bytes).and_then(|r| r.verify_at(NOW));
        prop_assert!(result.is_err(), "bit {} flipped and still verified", bit);
    }

    #[test]
    fn a_key_cache_never_changes_the_verdict(
        signed in signed_record(),
        other in signed_record(),
        bit in any::<Index>(),
    ) {
        // A cache that already holds the keys of both records (and of any
        // record whose key the flipped bit leaves valid).
        let mut keys = KeyCache::new(8);
        for r in [&signed, &other] {
            let bytes = r.to_bytes();
            prop_assert!(SignedRecord::from_bytes(&bytes).unwrap().verify_at_cached(NOW, &mut keys).is_ok());
        }
        let mut bytes = signed.to_bytes();
        let bit = bit.index(bytes.len() * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
        for candidate in [signed.to_bytes(), bytes] {
            let plain = SignedRecord::from_bytes(&candidate).and_then(|r| r.verify_at(NOW));
            let cached = SignedRecord::from_bytes(&candidate).and_then(|r| r.verify_at_cached(NOW, &mut keys));
            prop_assert_eq!(plain.map(|r| r.id()), cached.map(|r| r.id()));
        }
    }

    #[test]
    fn non_canonical_encodings_are_refused((signed, level, edit, bytes) in noncanonical::non_canonical()) {
        // The same record, validly signed, only written another way.
        prop_assert_ne!(&bytes, &signed.to_bytes());
        prop_assert!(noncanonical::signature_verifies(&bytes));
        let expected = noncanonical::expected_error(level);
        let verified = SignedRecord::from_bytes(&bytes).and_then(|r| r.verify_at(NOW));
        prop_assert_eq!(verified.unwrap_err(), expected.clone(), "{:?} {:?}", level, edit);
        let stored = SignedRecord::from_trusted_storage(&bytes);
        prop_assert_eq!(stored.unwrap_err(), expected, "{:?} {:?}", level, edit);
    }

    #[test]
    fn whatever_verifies_is_its_own_canonical_encoding(signed in signed_record(), bit in any::<Index>()) {
        // Flipping a bit mostly breaks the record; when what is left still
        // parses, re-encoding it gives back the very bytes parsed.
        let mut bytes = signed.to_bytes();
        let bit = bit.index(bytes.len() * 8);
        bytes[bit / 8] ^= 1 << (bit % 8);
        for candidate in [signed.to_bytes(), bytes] {
            if let Ok(parsed) = SignedRecord::from_bytes(&candidate) {
                prop_assert_eq!(parsed.to_bytes(), candidate.clone());
                if let Ok(record) = ipsr_proto::Record::decode(parsed.payload()) {
                    prop_assert_eq!(record.encode(), parsed.payload().to_vec());
                }
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = SignedRecord::from_bytes(&bytes).and_then(|r| r.verify_at(NOW));
    }

    #[test]
    fn order_is_a_strict_total_order(records in same_release_records(3)) {
        let [a, b, c] = [&records[0], &records[1], &records[2]];
        for (x, y) in [(a, b), (b, c), (a, c)] {
            // Antisymmetric, and total: equal only for identical records.
            prop_assert_eq!(x.order(y), y.order(x).reverse());
            prop_assert_eq!(x.order(y) == Ordering::Equal, x == y);
            prop_assert!(!(x.supersedes(y) && y.supersedes(x)));
            prop_assert_eq!(x.supersedes(y), x.order(y) == Ordering::Greater);
        }
        // Transitive.
        if a.supersedes(b) && b.supersedes(c) {
            prop_assert!(a.supersedes(c));
        }
        if c.supersedes(b) && b.supersedes(a) {
            prop_assert!(c.supersedes(a));
        }
    }

    #[test]
    fn merge_is_order_independent(
        (records, shuffled) in package_records(12).prop_flat_map(|r| (Just(r.clone()), Just(r).prop_shuffle())),
    ) {
        let key = records[0].record().package_key();
        let mut in_order = PackageState::new(key.clone());
        let mut reordered = PackageState::new(key);
        for r in &records {
            in_order.apply(r.clone()).unwrap();
        }
        for r in &shuffled {
            reordered.apply(r.clone()).unwrap();
        }
        prop_assert_eq!(in_order.newest(), reordered.newest());
        prop_assert_eq!(&in_order, &reordered);
        // Applying everything again changes nothing.
        let before = in_order.clone();
        for r in &shuffled {
            let applied = in_order.apply(r.clone()).unwrap();
            prop_assert!(!applied.change.is_held());
        }
        prop_assert_eq!(in_order, before);
    }
}

/// `n` records (releases and yanks) of one author's `com.example.app`, with
/// small ranges of versions, `seq`s and CIDs so that collisions are common.
fn package_records(n: usize) -> impl Strategy<Value = Vec<SignedRecord>> {
    (
        any::<[u8; 32]>(),
        proptest::collection::vec(record_spec(3), 1..=n),
    )
        .prop_map(|(seed, specs)| {
            let key = AuthorKey::from_seed(&seed);
            specs.into_iter().map(|spec| spec.sign(&key)).collect()
        })
}

/// `n` records of one release (`com.example.app@1.0.0`).
fn same_release_records(n: usize) -> impl Strategy<Value = Vec<SignedRecord>> {
    (
        any::<[u8; 32]>(),
        proptest::collection::vec(record_spec(1), n),
    )
        .prop_map(|(seed, specs)| {
            let key = AuthorKey::from_seed(&seed);
            specs.into_iter().map(|spec| spec.sign(&key)).collect()
        })
}

#[derive(Debug, Clone)]
struct Spec {
    yank: bool,
    version: u8,
    version_code: u64,
    seq: u64,
    cid: u8,
}

fn record_spec(versions: u8) -> impl Strategy<Value = Spec> {
    (any::<bool>(), 0..versions, 0u64..3, 0u64..4, 0u8..3).prop_map(
        |(yank, version, version_code, seq, cid)| Spec {
            yank,
            version,
            version_code,
            seq,
            cid,
        },
    )
}

impl Spec {
    fn sign(&self, key: &AuthorKey) -> SignedRecord {
        let package: PackageName = "com.example.app".parse().unwrap();
        let version: Version = format!("1.{}.0", self.version).parse().unwrap();
        if self.yank {
            let mut y = Yank::new(key.author_id(), package, version, "bad build".into());
            y.seq = self.seq;
            y.created_at = self.seq;
            y.sign(key).unwrap()
        } else {
            let mh = multihash::Multihash::<64>::wrap(0x12, &[self.cid; 32]).unwrap();
            let cid = ContentId::new(cid::Cid::new_v1(0x55, mh)).unwrap();
            let mut r = Release::new(key.author_id(), package, version, self.version_code, cid);
            r.seq = self.seq;
            r.created_at = self.seq;
            r.sign(key).unwrap()
        }
    }
}
