//! Arbitrary bytes through the whole receive path: size check, envelope
//! decode, payload decode, signature and field validation. Nothing may
//! panic, and whatever parses must be its own canonical encoding: one
//! record, one encoding.
#![no_main]

use ipsr_proto::SignedRecord;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(unverified) = SignedRecord::from_bytes(data) else {
        return;
    };
    assert_eq!(unverified.to_bytes(), data, "a non-canonical envelope parsed");
    if let Ok(verified) = unverified.verify_at(u64::MAX / 2) {
        let bytes = verified.to_bytes();
        assert_eq!(bytes, data, "a non-canonical record verified");
        let again = SignedRecord::from_bytes(&bytes)
            .and_then(|r| r.verify_at(u64::MAX / 2))
            .expect("a verified record verifies again");
        assert_eq!(again.id(), verified.id());
        assert_eq!(again.record(), verified.record());
    }
});
