//! The node's rules, through the [`Service`] alone: no sockets, no store,
//! no sleeps. Time is a fake clock: `t0` plus whatever a test says.

use ipsr_proto::{Applied, Change, RecordId, Signed, SignedRecord};
use ipsr_testkit::{key, release};

use super::*;
use crate::sync::{Outcome, SyncError, SyncReport};

/// Records a peer may send per second (a power of two: exact refills).
const RATE: u32 = 4;
/// Records of one author let through per second, and at once.
const AUTHOR_RATE: u32 = 2;
const AUTHOR_BURST: u32 = 4;
const SYNC_EVERY: Duration = Duration::from_secs(30);
const REPUBLISH_EVERY: Duration = Duration::from_secs(60);
const REPROVIDE_EVERY: Duration = Duration::from_secs(30);
/// Records and provider records live 48 h: a pass takes at most 12 h.
const TTL: Duration = Duration::from_secs(48 * 3600);

fn settings(sync_on_connect: bool) -> Settings {
    Settings {
        records_per_peer_per_sec: RATE,
        records_per_author_per_sec: AUTHOR_RATE,
        author_records_burst: AUTHOR_BURST,
        max_tracked_authors: 8,
        sync_interval: SYNC_EVERY,
        sync_on_connect,
        republish_interval: REPUBLISH_EVERY,
        record_ttl: TTL,
        reprovide_interval: REPROVIDE_EVERY,
        provider_ttl: TTL,
    }
}

/// A service started at `t0`, its counters, and `t0`.
fn service(sync_on_connect: bool) -> (Service, Counters, Instant) {
    let counters = Counters::default();
    let t0 = Instant::now();
    let s = Service::new(settings(sync_on_connect), counters.clone(), t0);
    (s, counters, t0)
}

fn drain(s: &mut Service) -> Vec<Action> {
    std::iter::from_fn(|| s.next_action()).collect()
}

/// `n` peers, in the order the sync rotation visits them.
fn peers(n: usize) -> Vec<PeerId> {
    let mut peers: Vec<PeerId> = (0..n).map(|_| PeerId::random()).collect();
    peers.sort();
    peers
}

/// What the store says of a record: kept at `position`, or not news.
fn stored(position: Option<u64>) -> Stored {
    let change = match position {
        Some(_) => Change::New,
        None => Change::Duplicate,
    };
    Stored {
        id: RecordId::from_bytes([1; 32]),
        applied: Applied {
            change,
            reports: Vec::new(),
        },
        position,
    }
}

fn message(n: u8) -> MessageId {
    MessageId::from(vec![n])
}

fn gossip(source: PeerId, n: u8) -> Origin {
    Origin::Gossip {
        source,
        id: message(n),
    }
}

fn report(source: PeerId, n: u8, acceptance: MessageAcceptance) -> Action {
    Action::Report {
        id: message(n),
        source,
        acceptance,
    }
}

// Records: gossip and local publish.

#[test]
fn gossip_is_checked_off_the_loop_before_any_verdict() {
    let (mut s, _, t0) = service(false);
    let [p] = peers(1)[..] else { unreachable!() };
    s.on_gossip(p, message(1), b"record".to_vec(), t0);
    assert_eq!(
        drain(&mut s),
        vec![Action::Check {
            origin: gossip(p, 1),
            bytes: b"record".to_vec()
        }]
    );
}

/// A signed record (distinct for each `n`, the same on every call: `seq`
/// fixes its `created_at`) of `key(7)`.
fn signed(n: u32) -> Signed {
    Signed::Record(
        release(&key(7), &format!("1.0.{n}"))
            .seq(u64::from(n))
            .sign(),
    )
}

/// Its bytes.
fn record(n: u32) -> Vec<u8> {
    signed(n).to_bytes()
}

#[test]
fn verified_gossip_goes_to_the_store_off_the_loop() {
    let (mut s, counters, t0) = service(false);
    let [p] = peers(1)[..] else { unreachable!() };
    s.on_checked(gossip(p, 1), record(1), Ok(signed(1)), t0);
    assert_eq!(
        drain(&mut s),
        vec![Action::Apply {
            origin: gossip(p, 1),
            record: Box::new(signed(1))
        }]
    );
    assert_eq!(
        counters.accepted_from("gossip"),
        0,
        "not before it is stored"
    );
}

#[test]
fn gossip_that_is_news_is_accepted_and_moves_the_log_head() {
    let (mut s, counters, t0) = service(false);
    let [p] = peers(1)[..] else { unreachable!() };
    s.on_applied(gossip(p, 1), &signed(1), &Ok(stored(Some(7))), t0);
    assert_eq!(
        drain(&mut s),
        vec![Action::LogHead(7), report(p, 1, MessageAcceptance::Accept)]
    );
    assert_eq!(counters.accepted_from("gossip"), 1);
}

#[test]
fn gossip_already_held_or_superseded_is_ignored_and_not_passed_on() {
    let (mut s, counters, t0) = service(false);
    let [p] = peers(1)[..] else { unreachable!() };
    s.on_applied(gossip(p, 1), &signed(1), &Ok(stored(None)), t0);
    let stale = Stored {
        applied: Applied {
            change: Change::Stale,
            reports: Vec::new(),
        },
        ..stored(None)
    };
    s.on_applied(gossip(p, 2), &signed(1), &Ok(stale), t0);
    assert_eq!(
        drain(&mut s),
        vec![
            report(p, 1, MessageAcceptance::Ignore),
            report(p, 2, MessageAcceptance::Ignore)
        ]
    );
    assert_eq!(counters.accepted_from("gossip"), 0);
}

#[test]
fn invalid_gossip_is_rejected_so_gossipsub_penalises_the_sender() {
    let (mut s, counters, t0) = service(false);
    let [p] = peers(1)[..] else { unreachable!() };
    let invalid = Err(VerifyError::KeyMismatch);
    s.on_checked(gossip(p, 1), b"forged".to_vec(), invalid, t0);
    assert_eq!(drain(&mut s), vec![report(p, 1, MessageAcceptance::Reject)]);
    assert_eq!(counters.rejected_from("gossip", "key_mismatch"), 1);
}

#[test]
fn gossip_the_store_failed_on_is_ignored_not_blamed_on_the_sender() {
    let (mut s, counters, t0) = service(false);
    let [p] = peers(1)[..] else { unreachable!() };
    s.on_applied(gossip(p, 1), &signed(1), &Err(NodeError::Stopped), t0);
    assert_eq!(drain(&mut s), vec![report(p, 1, MessageAcceptance::Ignore)]);
    assert_eq!(counters.rejected_from("gossip", "key_mismatch"), 0);
}

#[test]
fn a_local_publish_that_is_news_is_gossiped_and_announced() {
    let (mut s, counters, t0) = service(false);
    let r = release(&key(7), "1.0.0").sign();
    let origin = Origin::Local(Some(r.release_key()));
    s.on_applied(origin, &Signed::Record(r.clone()), &Ok(stored(Some(3))), t0);
    assert_eq!(
        drain(&mut s),
        vec![
            Action::LogHead(3),
            Action::Gossip(r.to_bytes()),
            Action::Announce(r.release_key()),
        ]
    );
    assert_eq!(counters.accepted_from("local"), 1);
}

#[test]
fn a_local_publish_that_is_not_news_or_failed_goes_nowhere() {
    let (mut s, counters, t0) = service(false);
    let r = Signed::Record(release(&key(7), "1.0.0").sign());
    let origin = Origin::Local(None);
    s.on_applied(origin.clone(), &r, &Ok(stored(None)), t0);
    s.on_applied(origin, &r, &Err(NodeError::Stopped), t0);
    assert_eq!(drain(&mut s), vec![]);
    assert_eq!(counters.accepted_from("local"), 0);
}

#[test]
fn a_record_shed_for_a_full_write_queue_is_ignored_counted_and_costs_no_token() {
    let (mut s, counters, t0) = service(false);
    let [p] = peers(1)[..] else { unreachable!() };
    // The author's whole burst is verified and let through while the disk
    // is behind: each takes a token, and each is shed.
    for n in 1..=AUTHOR_BURST {
        let m = u8::try_from(n).unwrap();
        s.on_checked(gossip(p, m), record(n), Ok(signed(n)), t0);
        let Some(Action::Apply { origin, record }) = s.next_action() else {
            panic!("a verified record goes to the store");
        };
        s.on_shed(origin, &record, t0);
        assert_eq!(
            drain(&mut s),
            vec![report(p, m, MessageAcceptance::Ignore)],
            "not passed on, not blamed on the sender"
        );
    }
    assert_eq!(counters.shed_from("gossip"), u64::from(AUTHOR_BURST));
    assert_eq!(counters.accepted_from("gossip"), 0);
    assert_eq!(counters.rejected_from("gossip", "key_mismatch"), 0);
    // The tokens came back: the author's records get through once the
    // disk caught up, at the same instant.
    let accepted = (100..100 + AUTHOR_BURST)
        .filter(|n| gossip_news(&mut s, p, *n, t0))
        .count();
    assert_eq!(accepted, AUTHOR_BURST as usize);
    // A shed publish is counted; the runtime answers its caller.
    let r = Signed::Record(release(&key(9), "1.0.0").sign());
    s.on_shed(Origin::Local(None), &r, t0);
    assert_eq!(drain(&mut s), vec![]);
    assert_eq!(counters.shed_from("local"), 1);
}

// Author limits.

/// Checks `n`'s record from `p` as gossip at `now`; when it is let through,
/// stores it as news (at position `n`). Whether it was accepted.
fn gossip_news(s: &mut Service, p: PeerId, n: u32, now: Instant) -> bool {
    let id = message(u8::try_from(n).unwrap());
    let origin = Origin::Gossip { source: p, id };
    s.on_checked(origin, record(n), Ok(signed(n)), now);
    let mut accepted = false;
    while let Some(action) = s.next_action() {
        match action {
            Action::Apply { origin, record } => {
                let news = stored(Some(u64::from(n)));
                s.on_applied(origin, &record, &Ok(news), now);
            }
            Action::Report { acceptance, .. } => {
                accepted = acceptance == MessageAcceptance::Accept;
            }
            _ => {}
        }
    }
    accepted
}

#[test]
fn an_author_over_its_rate_is_dropped_without_blaming_the_relay() {
    let (mut s, counters, t0) = service(false);
    let [p] = peers(1)[..] else { unreachable!() };
    let accepted = (1..=10).filter(|n| gossip_news(&mut s, p, *n, t0)).count();
    assert_eq!(accepted, AUTHOR_BURST as usize);
    assert_eq!(counters.throttled_from("gossip"), 6);
    assert_eq!(counters.rejected_from("gossip", "key_mismatch"), 0);
    // The dropped ones were ignored: not stored, not passed on, no penalty.
    s.on_checked(gossip(p, 11), record(11), Ok(signed(11)), t0);
    assert_eq!(
        drain(&mut s),
        vec![report(p, 11, MessageAcceptance::Ignore)]
    );
    // Another author is not held back ...
    let other = release(&key(8), "1.0.0").sign();
    s.on_checked(
        gossip(p, 12),
        other.to_bytes(),
        Ok(Signed::Record(other)),
        t0,
    );
    assert!(matches!(drain(&mut s)[..], [Action::Apply { .. }]));
    // ... and this one gets AUTHOR_RATE a second again.
    let later = t0 + Duration::from_secs(1);
    let accepted = (20..30)
        .filter(|n| gossip_news(&mut s, p, *n, later))
        .count();
    assert_eq!(accepted, AUTHOR_RATE as usize);
}

#[test]
fn records_checked_at_once_take_no_more_than_the_burst() {
    let (mut s, counters, t0) = service(false);
    let [p] = peers(1)[..] else { unreachable!() };
    // Ten verified before any is stored: each takes its token when let
    // through, not when stored.
    for n in 1..=10 {
        s.on_checked(gossip(p, n), record(n.into()), Ok(signed(n.into())), t0);
    }
    let applies = drain(&mut s)
        .into_iter()
        .filter(|a| matches!(a, Action::Apply { .. }))
        .count();
    assert_eq!(applies, AUTHOR_BURST as usize);
    assert_eq!(counters.throttled_from("gossip"), 6);
}

#[test]
fn records_that_are_not_news_take_no_token() {
    let (mut s, _, t0) = service(false);
    let [p] = peers(1)[..] else { unreachable!() };
    // Replays of an author's records (anyone can send them) are checked
    // and ignored as often as they come, without using up its budget.
    for n in 0..50 {
        let origin = gossip(p, n);
        s.on_checked(origin, record(1), Ok(signed(1)), t0);
        while let Some(action) = s.next_action() {
            if let Action::Apply { origin, record } = action {
                s.on_applied(origin, &record, &Ok(stored(None)), t0);
            }
        }
    }
    let accepted = (1..=10).filter(|n| gossip_news(&mut s, p, *n, t0)).count();
    assert_eq!(accepted, AUTHOR_BURST as usize);
}

#[test]
fn a_local_publish_over_the_rate_is_refused_with_a_clear_error() {
    let (mut s, counters, t0) = service(false);
    for n in 1..=AUTHOR_BURST {
        let r = signed(n);
        assert!(s.admit_publish(&r, t0).is_ok());
        s.on_applied(Origin::Local(None), &r, &Ok(stored(Some(1))), t0);
    }
    let err = s.admit_publish(&signed(99), t0).unwrap_err();
    assert!(matches!(
        err,
        NodeError::AuthorRateLimited { author, per_sec: AUTHOR_RATE, burst: AUTHOR_BURST }
            if author == key(7).author_id()
    ));
    assert!(err.to_string().contains("try again later"), "{err}");
    assert_eq!(counters.throttled_from("local"), 1);
    assert!(
        s.admit_publish(&Signed::Record(release(&key(8), "1.0.0").sign()), t0)
            .is_ok()
    );
    let later = t0 + Duration::from_secs(1) / AUTHOR_RATE;
    assert!(s.admit_publish(&signed(99), later).is_ok());
}

#[test]
fn a_held_record_over_its_authors_rate_is_dropped() {
    let (mut s, counters, t0) = service(false);
    let [p] = peers(1)[..] else { unreachable!() };
    for n in 1..=AUTHOR_BURST {
        assert!(gossip_news(&mut s, p, n, t0));
    }
    s.on_checked(Origin::Held, record(50), Ok(signed(50)), t0);
    assert_eq!(drain(&mut s), vec![]);
    assert_eq!(counters.throttled_from("held"), 1);
}

// Clock skew.

/// This node's wall clock in the tests (unix ms).
const WALL: u64 = 1_800_000_000_000;

/// The check's verdict on a record `ahead` ms past the one-hour bound.
fn from_future(ahead: Duration) -> Result<Signed, VerifyError> {
    let ahead = u64::try_from(ahead.as_millis()).unwrap();
    Err(VerifyError::FromFuture {
        created_at: WALL + MAX_CLOCK_SKEW_MS + ahead,
        now: WALL,
    })
}

/// A service whose own timers (sync, republish, re-provide) stay quiet for
/// a day.
fn quiet() -> (Service, Counters, Instant) {
    let counters = Counters::default();
    let t0 = Instant::now();
    let day = Duration::from_secs(24 * 60 * 60);
    let settings = Settings {
        sync_interval: day * 2,
        republish_interval: day * 2,
        reprovide_interval: day * 2,
        ..settings(false)
    };
    let mut s = Service::new(settings, counters.clone(), t0);
    s.tick(t0);
    s.on_republish_read(Ok(page(None, Vec::new())), t0);
    s.on_reprovide_read(Ok(page(None, Vec::new())), t0);
    drain(&mut s);
    (s, counters, t0)
}

/// The records the service hands back for checking when ticked at `now`.
fn rechecked(s: &mut Service, now: Instant) -> Vec<Vec<u8>> {
    s.tick(now);
    drain(s)
        .into_iter()
        .filter_map(|a| match a {
            Action::Check {
                origin: Origin::Held,
                bytes,
            } => Some(bytes),
            _ => None,
        })
        .collect()
}

#[test]
fn gossip_from_the_future_is_ignored_not_rejected_and_checked_again_when_due() {
    let (mut s, counters, t0) = quiet();
    let [p] = peers(1)[..] else { unreachable!() };
    let bytes = record(1);
    let early = Duration::from_secs(10);
    s.on_checked(gossip(p, 1), bytes.clone(), from_future(early), t0);
    // No penalty: this node's clock may be the one that is behind.
    assert_eq!(drain(&mut s), vec![report(p, 1, MessageAcceptance::Ignore)]);
    assert_eq!(counters.rejected_from("gossip", "from_future"), 0);
    assert_eq!(counters.future_from("gossip", "held"), 1);
    // Checked again once it is acceptable by this node's clock.
    let due = t0 + early + SLACK;
    assert_eq!(s.next_wakeup(), due);
    assert_eq!(
        rechecked(&mut s, due - Duration::from_millis(1)),
        Vec::<Vec<u8>>::new()
    );
    assert_eq!(rechecked(&mut s, due), vec![bytes.clone()]);
    assert_eq!(
        rechecked(&mut s, due + early),
        Vec::<Vec<u8>>::new(),
        "once"
    );
    // News then: kept and passed on, with no verdict to give.
    s.on_checked(Origin::Held, bytes.clone(), Ok(signed(1)), due);
    let [Action::Apply { origin, record }] = &drain(&mut s)[..] else {
        panic!("let through to the store")
    };
    s.on_applied(origin.clone(), record, &Ok(stored(Some(5))), due);
    assert_eq!(
        drain(&mut s),
        vec![Action::LogHead(5), Action::Gossip(bytes)]
    );
    assert_eq!(counters.accepted_from("held"), 1);
}

#[test]
fn a_held_record_still_early_when_checked_again_is_held_again() {
    let (mut s, counters, t0) = quiet();
    let bytes = record(1);
    // This node's clock went back meanwhile: still five seconds early.
    let early = Duration::from_secs(5);
    s.on_checked(Origin::Held, bytes.clone(), from_future(early), t0);
    assert_eq!(drain(&mut s), vec![]);
    assert_eq!(counters.future_from("held", "held"), 1);
    assert_eq!(rechecked(&mut s, t0 + early + SLACK), vec![bytes.clone()]);
    // Known by then (another peer's sync brought it): nothing more to do.
    s.on_applied(
        Origin::Held,
        &signed(1),
        &Ok(stored(None)),
        t0 + early + SLACK,
    );
    assert_eq!(drain(&mut s), vec![]);
}

#[test]
fn a_record_due_over_a_day_ahead_is_ignored_and_not_held() {
    let (mut s, counters, t0) = quiet();
    let [p] = peers(1)[..] else { unreachable!() };
    let day = Duration::from_secs(24 * 60 * 60);
    s.on_checked(gossip(p, 1), record(1), from_future(day), t0);
    assert_eq!(drain(&mut s), vec![report(p, 1, MessageAcceptance::Ignore)]);
    assert_eq!(counters.future_from("gossip", "too_far"), 1);
    assert_eq!(rechecked(&mut s, t0 + day * 2), Vec::<Vec<u8>>::new());
}

#[test]
fn a_record_from_the_future_relayed_twice_is_held_once() {
    let (mut s, counters, t0) = quiet();
    let [a, b] = peers(2)[..] else { unreachable!() };
    let early = Duration::from_secs(3);
    s.on_checked(gossip(a, 1), record(1), from_future(early), t0);
    s.on_checked(gossip(b, 2), record(1), from_future(early), t0);
    assert_eq!(
        drain(&mut s),
        vec![
            report(a, 1, MessageAcceptance::Ignore),
            report(b, 2, MessageAcceptance::Ignore)
        ]
    );
    assert_eq!(counters.future_from("gossip", "duplicate"), 1);
    assert_eq!(rechecked(&mut s, t0 + early + SLACK), vec![record(1)]);
}

#[test]
fn records_from_the_future_in_a_sync_session_are_counted_not_blamed() {
    let (mut s, counters, _) = service(true);
    let [a] = peers(1)[..] else { unreachable!() };
    s.on_connected(a, true);
    drain(&mut s);
    let report = SyncReport {
        early: 2,
        ..SyncReport::default()
    };
    s.on_synced(a, ended(report, None, Ok(())));
    assert_eq!(drain(&mut s), vec![]);
    assert_eq!(counters.future_from("sync", "skipped"), 2);
    assert_eq!(counters.sync_sessions_with("ok"), 1);
}

// Rate limits.

#[test]
fn a_peer_gossiping_past_its_budget_is_ignored_until_it_refills() {
    let (mut s, _, t0) = service(false);
    let [a, b] = peers(2)[..] else { unreachable!() };
    for n in 0..=RATE as u8 {
        s.on_gossip(a, message(n), vec![n], t0);
    }
    let actions = drain(&mut s);
    let checks = actions
        .iter()
        .filter(|a| matches!(a, Action::Check { .. }))
        .count();
    assert_eq!(checks, RATE as usize, "the burst is checked");
    assert_eq!(
        actions.last(),
        Some(&report(a, RATE as u8, MessageAcceptance::Ignore)),
        "the one past the burst is dropped unchecked"
    );
    // Another peer has its own budget.
    s.on_gossip(b, message(9), vec![9], t0);
    assert!(matches!(drain(&mut s)[..], [Action::Check { .. }]));
    // One token comes back every 1/RATE s.
    let refill = Duration::from_secs(1) / RATE;
    s.on_gossip(a, message(10), vec![10], t0 + refill / 2);
    assert!(matches!(drain(&mut s)[..], [Action::Report { .. }]));
    s.on_gossip(a, message(11), vec![11], t0 + refill);
    assert!(matches!(drain(&mut s)[..], [Action::Check { .. }]));
}

#[test]
fn dht_puts_share_the_gossip_budget() {
    let (mut s, _, t0) = service(false);
    let [a] = peers(1)[..] else { unreachable!() };
    for n in 0..RATE as u8 - 1 {
        s.on_gossip(a, message(n), vec![n], t0);
    }
    assert!(s.allow_dht_put(a, t0), "one token left");
    assert!(!s.allow_dht_put(a, t0));
    s.on_gossip(a, message(9), vec![9], t0);
    assert_eq!(
        drain(&mut s).last(),
        Some(&report(a, 9, MessageAcceptance::Ignore))
    );
}

#[test]
fn a_disconnected_peer_starts_with_a_full_budget() {
    let (mut s, _, t0) = service(false);
    let [a] = peers(1)[..] else { unreachable!() };
    s.on_connected(a, true);
    while s.allow_dht_put(a, t0) {}
    s.on_disconnected(&a);
    assert!(s.allow_dht_put(a, t0), "its bucket went with it");
}

#[test]
fn sync_requests_are_limited_per_peer() {
    let (mut s, _, t0) = service(false);
    let [a, b] = peers(2)[..] else { unreachable!() };
    let burst = (SYNC_REQUESTS_PER_SEC * 2) as usize;
    let allowed = (0..burst + 10)
        .filter(|_| s.allow_sync_request(a, t0))
        .count();
    assert_eq!(allowed, burst);
    assert!(s.allow_sync_request(b, t0), "per peer");
    let one = Duration::from_secs(1) / SYNC_REQUESTS_PER_SEC;
    assert!(s.allow_sync_request(a, t0 + one));
    assert!(!s.allow_sync_request(a, t0 + one));
    // Forgotten on disconnect, like the records budget.
    s.on_disconnected(&a);
    assert!(s.allow_sync_request(a, t0 + one));
}

// Sync.

#[test]
fn a_node_syncs_with_a_peer_once_when_first_connected() {
    let (mut s, _, _) = service(true);
    let [a, b] = peers(2)[..] else { unreachable!() };
    s.on_connected(a, true);
    s.on_connected(a, false);
    s.on_connected(b, true);
    assert_eq!(
        drain(&mut s),
        vec![Action::StartSync(a), Action::StartSync(b)]
    );
    // A reconnect while its session runs starts no second one.
    s.on_disconnected(&a);
    s.on_connected(a, true);
    assert_eq!(drain(&mut s), vec![]);
    // Once it ended, the next first connection syncs again.
    s.on_synced(a, ended(SyncReport::default(), None, Ok(())));
    s.on_disconnected(&a);
    s.on_connected(a, true);
    assert_eq!(drain(&mut s), vec![Action::StartSync(a)]);
}

#[test]
fn without_sync_on_connect_a_connection_starts_nothing() {
    let (mut s, _, _) = service(false);
    let [a] = peers(1)[..] else { unreachable!() };
    s.on_connected(a, true);
    assert_eq!(drain(&mut s), vec![]);
}

/// The sync actions of the rotation's ticks at `t0`, `t0 + 30 s`, ...
/// (each session ends at once unless it is `busy`).
fn rotation(s: &mut Service, t0: Instant, ticks: u32, busy: Option<PeerId>) -> Vec<PeerId> {
    let mut synced = Vec::new();
    for i in 0..ticks {
        s.tick(t0 + SYNC_EVERY * i);
        for action in drain(s) {
            if let Action::StartSync(peer) = action {
                synced.push(peer);
                if Some(peer) != busy {
                    s.on_synced(peer, ended(SyncReport::default(), None, Ok(())));
                }
            }
        }
    }
    synced
}

#[test]
fn the_rotation_syncs_with_each_connected_peer_in_turn() {
    let (mut s, _, t0) = service(false);
    let p = peers(3);
    for peer in &p {
        s.on_connected(*peer, true);
    }
    assert_eq!(
        rotation(&mut s, t0, 7, None),
        vec![p[0], p[1], p[2], p[0], p[1], p[2], p[0]]
    );
}

#[test]
fn the_rotation_waits_for_its_interval() {
    let (mut s, _, t0) = service(false);
    let [a] = peers(1)[..] else { unreachable!() };
    s.on_connected(a, true);
    s.tick(t0);
    assert!(drain(&mut s).contains(&Action::StartSync(a)));
    s.on_synced(a, ended(SyncReport::default(), None, Ok(())));
    s.tick(t0 + SYNC_EVERY - Duration::from_millis(1));
    assert!(!drain(&mut s).contains(&Action::StartSync(a)));
    assert_eq!(s.next_wakeup(), t0 + SYNC_EVERY);
    s.tick(t0 + SYNC_EVERY);
    assert!(drain(&mut s).contains(&Action::StartSync(a)));
}

#[test]
fn the_rotation_skips_gone_peers_and_never_doubles_a_session() {
    let (mut s, _, t0) = service(false);
    let p = peers(3);
    for peer in &p {
        s.on_connected(*peer, true);
    }
    s.on_disconnected(&p[1]);
    // p[0]'s first session never ends: its next turn starts nothing.
    assert_eq!(rotation(&mut s, t0, 4, Some(p[0])), vec![p[0], p[2], p[2]],);
}

#[test]
fn a_peer_that_sent_an_invalid_record_during_sync_is_disconnected() {
    let (mut s, counters, _) = service(true);
    let [a, b] = peers(2)[..] else { unreachable!() };
    s.on_connected(a, true);
    s.on_connected(b, true);
    drain(&mut s);
    let invalid = SyncError::InvalidRecord(ipsr_proto::VerifyError::BadSignature);
    s.on_synced(a, ended(SyncReport::default(), None, Err(invalid)));
    s.on_synced(
        b,
        ended(
            SyncReport::default(),
            None,
            Err(SyncError::Unexpected("records")),
        ),
    );
    assert_eq!(drain(&mut s), vec![Action::Disconnect(a)]);
    assert_eq!(counters.rejected_from("sync", "bad_signature"), 1);
    assert_eq!(counters.sync_sessions_with("invalid_record"), 1);
    assert_eq!(counters.sync_sessions_with("failed"), 1);
}

#[test]
fn a_session_that_kept_records_moves_the_log_head() {
    let (mut s, counters, _) = service(true);
    let [a] = peers(1)[..] else { unreachable!() };
    s.on_connected(a, true);
    drain(&mut s);
    let report = SyncReport {
        rounds: 2,
        fetched: 5,
        kept: 4,
        peer_lacks: 0,
        early: 0,
    };
    s.on_synced(a, ended(report, Some(41), Ok(())));
    assert_eq!(drain(&mut s), vec![Action::LogHead(41)]);
    assert_eq!(counters.accepted_from("sync"), 4);
    assert_eq!(counters.sync_sessions_with("ok"), 1);
}

/// How a session ended, for `on_synced`.
fn ended(report: SyncReport, head: Option<u64>, result: Result<(), SyncError>) -> Outcome {
    Outcome {
        report,
        head,
        result,
    }
}

#[test]
fn a_session_that_failed_after_keeping_records_counts_them_and_moves_the_log_head() {
    let (mut s, counters, _) = service(true);
    let [a] = peers(1)[..] else { unreachable!() };
    s.on_connected(a, true);
    drain(&mut s);
    // Two batches stored, then the third fetch timed out.
    let report = SyncReport {
        rounds: 1,
        fetched: 512,
        kept: 500,
        ..SyncReport::default()
    };
    let timed_out = Err(SyncError::Unexpected("records"));
    s.on_synced(a, ended(report, Some(77), timed_out));
    assert_eq!(drain(&mut s), vec![Action::LogHead(77)]);
    assert_eq!(counters.accepted_from("sync"), 500);
    assert_eq!(counters.sync_sessions_with("failed"), 1);
    assert_eq!(counters.sync_sessions_with("ok"), 0);
}

#[test]
fn a_stored_dht_put_counts_its_news_and_moves_the_log_head_and_a_shed_one_is_counted() {
    let (mut s, counters, _) = service(true);
    let [a] = peers(1)[..] else { unreachable!() };
    s.on_dht_applied(2, Some(9));
    s.on_dht_applied(0, None);
    assert_eq!(drain(&mut s), vec![Action::LogHead(9)]);
    assert_eq!(counters.accepted_from("dht"), 2);
    s.on_dht_shed(a);
    assert_eq!(drain(&mut s), vec![]);
    assert_eq!(counters.shed_from("dht"), 1);
}

// Bans.

#[test]
fn a_ban_lasts_an_hour() {
    let (mut s, _, t0) = service(false);
    let [a] = peers(1)[..] else { unreachable!() };
    s.on_ban(a, t0);
    assert_eq!(drain(&mut s), vec![Action::Ban(a)]);
    s.tick(t0 + BAN - Duration::from_secs(1));
    assert!(!drain(&mut s).contains(&Action::Unban(a)));
    assert!(s.next_wakeup() <= t0 + BAN);
    s.tick(t0 + BAN);
    assert!(drain(&mut s).contains(&Action::Unban(a)));
    s.tick(t0 + BAN * 2);
    assert!(!drain(&mut s).contains(&Action::Unban(a)), "lifted once");
}

#[test]
fn a_new_ban_extends_the_old_one() {
    let (mut s, _, t0) = service(false);
    let [a, b] = peers(2)[..] else { unreachable!() };
    let half = BAN / 2;
    s.on_ban(a, t0);
    s.on_ban(b, t0);
    s.on_ban(a, t0 + half);
    assert_eq!(
        drain(&mut s),
        vec![Action::Ban(a), Action::Ban(b), Action::Ban(a)]
    );
    s.tick(t0 + BAN);
    let lifted = drain(&mut s);
    assert!(lifted.contains(&Action::Unban(b)));
    assert!(!lifted.contains(&Action::Unban(a)), "a's second ban holds");
    s.tick(t0 + half + BAN);
    assert!(drain(&mut s).contains(&Action::Unban(a)));
}

// Republish.

/// A batch of a walk over a set of two keys.
fn page<C, T>(next: Option<C>, items: Vec<T>) -> Page<C, T> {
    Page {
        items,
        next,
        total: 2,
    }
}

fn read(after: Option<ReleaseKey>) -> Action {
    Action::ReadRepublish {
        after,
        limit: REPUBLISH_BATCH,
    }
}

fn reads(actions: Vec<Action>) -> Vec<Action> {
    actions
        .into_iter()
        .filter(|a| matches!(a, Action::ReadRepublish { .. } | Action::DhtPut(_)))
        .collect()
}

#[test]
fn republish_walks_the_store_a_batch_per_interval_and_wraps_around() {
    let (mut s, _, t0) = service(false);
    let (first, last) = (
        release(&key(7), "1.0.0").sign(),
        release(&key(7), "2.0.0").sign(),
    );
    let value = |r: &SignedRecord| (r.release_key().dht_key(), r.to_bytes());
    s.tick(t0);
    assert_eq!(reads(drain(&mut s)), vec![read(None)], "due at start");
    s.on_republish_read(Ok(page(Some(first.release_key()), vec![value(&first)])), t0);
    assert_eq!(drain(&mut s), vec![Action::DhtPut(vec![value(&first)])]);
    s.tick(t0 + REPUBLISH_EVERY - Duration::from_millis(1));
    assert_eq!(reads(drain(&mut s)), vec![], "one batch per interval");
    s.tick(t0 + REPUBLISH_EVERY);
    assert_eq!(
        reads(drain(&mut s)),
        vec![read(Some(first.release_key()))],
        "the next batch starts after the last release of this one"
    );
    s.on_republish_read(Ok(page(Some(last.release_key()), vec![value(&last)])), t0);
    drain(&mut s);
    s.tick(t0 + REPUBLISH_EVERY * 2);
    assert_eq!(reads(drain(&mut s)), vec![read(Some(last.release_key()))]);
    // The end of the store: nothing to put, and the walk starts over, a
    // pass's length after this pass began (not a tick later: a small store
    // is renewed once a pass, not as often as the ticks allow).
    s.on_republish_read(Ok(page(None, Vec::new())), t0);
    assert_eq!(drain(&mut s), vec![]);
    s.tick(t0 + REPUBLISH_EVERY * 3);
    assert_eq!(reads(drain(&mut s)), vec![]);
    s.tick(t0 + pacing::pass(TTL) - Duration::from_millis(1));
    assert_eq!(reads(drain(&mut s)), vec![]);
    s.tick(t0 + pacing::pass(TTL));
    assert_eq!(reads(drain(&mut s)), vec![read(None)]);
}

#[test]
fn republish_reads_one_batch_at_a_time_and_retries_a_failed_one() {
    let (mut s, _, t0) = service(false);
    let r = release(&key(7), "1.0.0").sign();
    s.tick(t0);
    drain(&mut s);
    s.on_republish_read(Ok(page(Some(r.release_key()), Vec::new())), t0);
    s.tick(t0 + REPUBLISH_EVERY);
    assert_eq!(reads(drain(&mut s)), vec![read(Some(r.release_key()))]);
    // A slow read: the next interval passes without a second one.
    s.tick(t0 + REPUBLISH_EVERY * 2);
    assert_eq!(reads(drain(&mut s)), vec![]);
    s.on_republish_read(Err(StoreError::Corrupt("disk".into())), t0);
    s.tick(t0 + REPUBLISH_EVERY * 2);
    assert_eq!(
        reads(drain(&mut s)),
        vec![read(Some(r.release_key()))],
        "a failed batch is read again"
    );
}

#[test]
fn the_next_wakeup_is_the_earliest_thing_due() {
    let (mut s, _, t0) = service(false);
    assert_eq!(s.next_wakeup(), t0, "the first rotation and republish");
    s.tick(t0);
    drain(&mut s);
    // The republish read is under way: only the rotation is armed.
    assert_eq!(s.next_wakeup(), t0 + SYNC_EVERY);
    s.on_republish_read(Ok(page(None, Vec::new())), t0);
    assert_eq!(s.next_wakeup(), t0 + SYNC_EVERY);
    // With timers longer than a ban, the ban's end comes first.
    let slow = Settings {
        sync_interval: BAN * 2,
        republish_interval: BAN * 3,
        ..settings(false)
    };
    let mut s = Service::new(slow, Counters::default(), t0);
    s.tick(t0);
    s.on_republish_read(Ok(page(None, Vec::new())), t0);
    let [a] = peers(1)[..] else { unreachable!() };
    s.on_ban(a, t0 + Duration::from_secs(1));
    assert_eq!(s.next_wakeup(), t0 + Duration::from_secs(1) + BAN);
    s.tick(t0 + Duration::from_secs(1) + BAN);
    assert_eq!(s.next_wakeup(), t0 + BAN * 2, "then the rotation");
}

#[test]
fn republish_keeps_pace_with_a_million_releases() {
    // 64 releases a minute took 10 days over a million; the batch now
    // follows the store's size, and a pass ends within a quarter of the TTL.
    const RELEASES: u64 = 1_000_000;
    let (mut s, counters, t0) = service(false);
    let cursor = release(&key(7), "1.0.0").sign().release_key();
    let value = (b"key".to_vec(), b"value".to_vec());
    let (mut now, mut began) = (t0, t0);
    // Releases read in this pass, the passes' lengths, the largest batch.
    let (mut at, mut passes, mut largest) = (0u64, Vec::new(), 0);
    while passes.len() < 2 {
        s.tick(now);
        for action in drain(&mut s) {
            let Action::ReadRepublish { after, limit } = action else {
                continue;
            };
            assert_eq!(after.is_none(), at == 0, "a pass starts at the first key");
            if at == 0 {
                began = now;
            }
            let n = (RELEASES - at).min(limit as u64);
            at += n;
            largest = largest.max(limit);
            let next = (n == limit as u64).then(|| cursor.clone());
            if next.is_none() {
                passes.push(now - began);
                at = 0;
            }
            let page = Page {
                items: vec![value.clone()],
                next,
                total: RELEASES,
            };
            s.on_republish_read(Ok(page), now);
            assert_eq!(drain(&mut s), vec![Action::DhtPut(vec![value.clone()])]);
        }
        now = s.next_wakeup();
    }
    // The first pass learns the size at 64 a minute; the second keeps pace.
    assert!(passes[1] <= pacing::pass(TTL), "{:?}", passes[1]);
    assert!(
        passes[1] >= pacing::pass(TTL) - REPUBLISH_EVERY * 3,
        "{passes:?}"
    );
    assert_eq!(largest, 1_391, "a million over 719 minutes");
    assert!(counters.republished_total() > 720);
}

#[test]
fn reprovide_walks_the_pins_at_a_pace_that_follows_their_number() {
    let (mut s, counters, t0) = service(false);
    let roots: Vec<Cid> = (0..70).map(|n| *ipsr_testkit::cid(n).cid()).collect();
    let reprovides = |actions: Vec<Action>| -> Vec<Action> {
        actions
            .into_iter()
            .filter(|a| matches!(a, Action::ReadReprovide { .. } | Action::Provide(_)))
            .collect()
    };
    s.tick(t0);
    assert_eq!(
        reprovides(drain(&mut s)),
        vec![Action::ReadReprovide {
            after: None,
            limit: REPROVIDE_BATCH
        }],
        "due at start, the size not known yet"
    );
    let first = Page {
        items: roots[..64].to_vec(),
        next: Some(roots[63]),
        total: 100_000,
    };
    s.on_reprovide_read(Ok(first), t0);
    assert_eq!(drain(&mut s), vec![Action::Provide(roots[..64].to_vec())]);
    s.tick(t0 + REPROVIDE_EVERY - Duration::from_millis(1));
    assert_eq!(reprovides(drain(&mut s)), vec![], "one batch per interval");
    s.tick(t0 + REPROVIDE_EVERY);
    // 100 000 pins over 12 h at one batch every 30 s: 1 439 batches of 70.
    let limit = pacing::batch(100_000, REPROVIDE_EVERY, pacing::pass(TTL), REPROVIDE_BATCH);
    assert_eq!(limit, 70);
    assert_eq!(
        reprovides(drain(&mut s)),
        vec![Action::ReadReprovide {
            after: Some(roots[63]),
            limit
        }]
    );
    // A short batch is the end: the walk starts over.
    let last = Page {
        items: roots[64..].to_vec(),
        next: None,
        total: 100_000,
    };
    s.on_reprovide_read(Ok(last), t0 + REPROVIDE_EVERY);
    assert_eq!(drain(&mut s), vec![Action::Provide(roots[64..].to_vec())]);
    assert_eq!(counters.reprovided_total(), 70);
    // The next pass starts a pass's length after this one began.
    s.tick(t0 + REPROVIDE_EVERY * 2);
    assert_eq!(reprovides(drain(&mut s)), vec![]);
    let again = t0 + pacing::pass(TTL);
    s.tick(again);
    assert_eq!(
        reprovides(drain(&mut s)),
        vec![Action::ReadReprovide { after: None, limit }]
    );
    // A failed read is tried again.
    let broken = BlockstoreError::BadPin("disk".into());
    s.on_reprovide_read(Err(broken), again);
    assert_eq!(drain(&mut s), vec![]);
    s.tick(again + REPROVIDE_EVERY);
    assert_eq!(
        reprovides(drain(&mut s)),
        vec![Action::ReadReprovide { after: None, limit }]
    );
}

#[test]
fn provider_record_verdicts_are_counted_by_outcome() {
    let (mut s, counters, _) = service(false);
    let [a] = peers(1)[..] else { unreachable!() };
    let key = [0x12, 0x20];
    s.on_provider_record(a, &key, Ok(()));
    s.on_provider_record(a, &key, Ok(()));
    s.on_provider_record(a, b"x", Err(Refused::Key));
    s.on_provider_record(a, &key, Err(Refused::PeerFull));
    assert_eq!(counters.provider_records_with("kept"), 2);
    assert_eq!(counters.provider_records_with("bad_key"), 1);
    assert_eq!(counters.provider_records_with("peer_full"), 1);
    assert_eq!(counters.provider_records_with("store_full"), 0);
    assert_eq!(drain(&mut s), vec![], "nothing to do but count");
}
