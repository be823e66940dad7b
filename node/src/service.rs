//! The node's own rules, sans-IO: a [`Service`] is fed events and the
//! current time, and answers with [`Action`]s for the runtime to carry out
//! against the swarm, the store and the blocking pool. It never touches a
//! socket, a file or a clock, so every rule is unit-tested with a fake
//! clock (`service/tests.rs`).
//!
//! ```text
//!  swarm events ─┐                      ┌─▶ Report (gossip verdict), Gossip
//!  commands ─────┼─▶ runtime ─▶ Service ┼─▶ Check (verify), Apply (store),
//!  off-loop work ┤   (IO)       (rules) │   both off the loop
//!                │                      ├─▶ Announce, DhtPut, ReadRepublish
//!  wake-ups ─────┘      ▲               ├─▶ ReadReprovide, Provide
//!                       │               ├─▶ StartSync, Disconnect
//!                       └── Action ─────┴─▶ Ban, Unban, LogHead
//! ```
//!
//! The rules:
//! * **Records** (gossip and local publish take one path): a gossiped
//!   message is first rate-limited per peer, then verified off the loop
//!   ([`Service::on_checked`]: `Reject` penalises the sender of an invalid
//!   one), let through only while its author has a token, then applied to
//!   the store off the loop; [`Service::on_applied`] turns the outcome into
//!   gossipsub's verdict: `Accept` forwards a record that is news to this
//!   node (and takes a token from its author), `Ignore` drops a duplicate,
//!   stale or rate-limited one. A local publish is let through by the same
//!   author budget ([`Service::admit_publish`]); if it is news it is
//!   gossiped and announced in the DHT.
//! * **Author limits**: a token bucket per author (`limiter.rs`), for
//!   records from gossip, from the holding area and local publishes (not
//!   sync or the DHT, which bring only what peers hold). A record over its
//!   author's rate is neither stored nor passed on; a relay that sent it is
//!   not blamed (`Ignore`), since an honest peer relays what it accepted
//!   under its own budget.
//! * **Clock skew**: a record from over an hour ahead of this node's clock
//!   is `Ignore`d (this node's clock may be the one that is wrong: no
//!   penalty) and held (`held.rs`) until it becomes acceptable, then
//!   checked again; if it is news then, it is gossiped.
//! * **Rate limits**: a token bucket per peer for inbound records (gossip
//!   and DHT puts share it) and one for inbound sync requests; a peer's
//!   buckets go when its last connection closes.
//! * **Sync**: a node syncs with each peer when first connected (unless
//!   configured off), and every `sync_interval` with the next connected
//!   peer in turn; never twice at once with one peer. A peer that sent an
//!   invalid record during sync is disconnected.
//! * **Bans**: a banned peer is refused for [`BAN`], then let back; a new
//!   ban of a banned peer extends it.
//! * **Republish**: every `dht_republish_interval`, the next batch of
//!   releases (in key order, wrapping around) is put into the DHT again,
//!   one read at a time, so records outlive their DHT expiry and a
//!   restarted node's records are findable again. The batch follows the
//!   number of releases (at least [`REPUBLISH_BATCH`]) so that a full pass
//!   takes at most a quarter of the record TTL ([`pacing`](crate::pacing)).
//! * **Re-provide**: the same walk over the pins, every `provide_interval`,
//!   announces this node as a provider of the next batch of pinned roots
//!   (at least [`REPROVIDE_BATCH`]), a full pass within a quarter of the
//!   provider record TTL.
//! * **Provider records** a peer sends share its inbound records budget;
//!   the store's verdict on each (`providers`) is counted and logged here.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::ops::Bound;
use std::time::{Duration, Instant};

use cid::Cid;
use ipsr_content::blockstore::BlockstoreError;
use ipsr_proto::limits::MAX_CLOCK_SKEW_MS;
use ipsr_proto::{ReleaseKey, Signed, VerifyError};
use libp2p::PeerId;
use libp2p::gossipsub::{MessageAcceptance, MessageId};
use tracing::{debug, info, warn};

use crate::config::Config;
use crate::error::NodeError;
use crate::limiter::{AuthorLimiter, Limiter};
use crate::metrics::Counters;
use crate::pacing::{self, Page, Walk};
use crate::providers::Refused;
use crate::store::DhtValue;
use crate::store::{StoreError, Stored};
use crate::sync::{Outcome, SyncError};

mod held;

use held::{Held, Hold, SLACK};

/// How long a banned peer is refused.
pub(crate) const BAN: Duration = Duration::from_secs(60 * 60);
/// The fewest releases re-announced in the DHT per republish.
pub(crate) const REPUBLISH_BATCH: usize = 64;
/// The fewest pinned roots re-announced as provided per re-provide.
pub(crate) const REPROVIDE_BATCH: usize = 64;
/// Sync requests a peer may send per second (burst: twice that).
pub(crate) const SYNC_REQUESTS_PER_SEC: u32 = 50;

/// Where a record to check and apply came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// Published through this node's client (already verified): the
    /// release to announce in the DHT, `None` for an identity document.
    Local(Option<ReleaseKey>),
    /// Gossiped by `source` as message `id`.
    Gossip {
        /// The peer that passed it on.
        source: PeerId,
        /// Gossipsub's id of the message, for the verdict.
        id: MessageId,
    },
    /// Held for being from the future, and now due (`held.rs`).
    Held,
}

impl Origin {
    /// The `source` label of the records metrics.
    fn label(&self) -> &'static str {
        match self {
            Self::Local(_) => "local",
            Self::Gossip { .. } => "gossip",
            Self::Held => "held",
        }
    }
}

/// What the runtime is to do.
#[derive(Debug, PartialEq)]
pub(crate) enum Action {
    /// Tell gossipsub what to do with a message it holds back.
    Report {
        /// The message.
        id: MessageId,
        /// Who passed it on.
        source: PeerId,
        /// Forward it, penalise the sender, or drop it.
        acceptance: MessageAcceptance,
    },
    /// Verify the gossiped `bytes` off the loop; the verdict goes to
    /// [`Service::on_checked`].
    Check {
        /// Where they came from.
        origin: Origin,
        /// The signed record as it arrived.
        bytes: Vec<u8>,
    },
    /// Apply a verified record to the store off the loop; the outcome goes
    /// to [`Service::on_applied`].
    Apply {
        /// Where it came from.
        origin: Origin,
        /// The record or identity document.
        record: Box<Signed>,
    },
    /// Publish a signed record on the records topic.
    Gossip(Vec<u8>),
    /// Put what this node serves for a release into the DHT (the values
    /// are read from the store).
    Announce(ReleaseKey),
    /// Put these values into the DHT.
    DhtPut(Vec<DhtValue>),
    /// Read the next releases to republish (up to `limit` after `after`)
    /// and their DHT values; the outcome goes to
    /// [`Service::on_republish_read`].
    ReadRepublish {
        /// Where the walk stands (`None`: from the start).
        after: Option<ReleaseKey>,
        /// How many releases.
        limit: usize,
    },
    /// Read the next pinned roots to re-announce (up to `limit` after
    /// `after`); the outcome goes to [`Service::on_reprovide_read`].
    ReadReprovide {
        /// Where the walk stands (`None`: from the start).
        after: Option<Cid>,
        /// How many roots.
        limit: usize,
    },
    /// Announce this node as a provider of these roots in the DHT.
    Provide(Vec<Cid>),
    /// Start a sync session; its outcome goes to [`Service::on_synced`].
    StartSync(PeerId),
    /// Close every connection to a peer.
    Disconnect(PeerId),
    /// Close every connection to a peer and refuse new ones.
    Ban(PeerId),
    /// Accept a banned peer again.
    Unban(PeerId),
    /// The log grew to this position (at least).
    LogHead(u64),
}

/// The settings of the rules, from the node's [`Config`].
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// Inbound records (gossip, DHT puts) a peer may send per second.
    pub(crate) records_per_peer_per_sec: u32,
    /// Records of one author let through per second (0: no limit) ...
    pub(crate) records_per_author_per_sec: u32,
    /// ... with at most this many saved up ...
    pub(crate) author_records_burst: u32,
    /// ... for at most this many authors at once.
    pub(crate) max_tracked_authors: usize,
    /// How often to sync with the next connected peer.
    pub(crate) sync_interval: Duration,
    /// Whether to sync with each peer when first connected.
    pub(crate) sync_on_connect: bool,
    /// How often to republish the next batch of releases.
    pub(crate) republish_interval: Duration,
    /// How long DHT records live (paces the republish walk).
    pub(crate) record_ttl: Duration,
    /// How often to re-announce the next batch of pins.
    pub(crate) reprovide_interval: Duration,
    /// How long provider records live (paces the re-provide walk).
    pub(crate) provider_ttl: Duration,
}

impl From<&Config> for Settings {
    fn from(config: &Config) -> Self {
        Self {
            records_per_peer_per_sec: config.max_records_per_peer_per_sec,
            records_per_author_per_sec: config.max_records_per_author_per_sec,
            author_records_burst: config.author_records_burst,
            max_tracked_authors: config.max_tracked_authors,
            sync_interval: config.sync_interval,
            sync_on_connect: config.sync_on_connect,
            republish_interval: config.dht_republish_interval,
            record_ttl: config.dht_record_ttl,
            reprovide_interval: config.provide_interval,
            provider_ttl: config.provider_record_ttl,
        }
    }
}

/// The rules' state. Everything that varies with time takes `now`.
#[derive(Debug)]
pub(crate) struct Service {
    settings: Settings,
    /// Inbound records (gossip and DHT puts), per peer.
    records: Limiter,
    /// Records let through (gossip, held, local publishes), per author.
    authors: AuthorLimiter,
    /// Inbound sync requests, per peer.
    sync_requests: Limiter,
    /// Connected peers, in the order sync rotates through them.
    connected: BTreeSet<PeerId>,
    /// Sessions under way.
    syncing: HashSet<PeerId>,
    /// The peer the rotation synced with last.
    last_rotated: Option<PeerId>,
    /// When the rotation syncs next.
    next_sync: Instant,
    /// Banned peers and when their ban ends, ...
    bans: HashMap<PeerId, Instant>,
    /// ... and the same ends in time order (the next one first).
    ban_ends: BTreeSet<(Instant, PeerId)>,
    /// The republish walk over the releases.
    republish: Walk<ReleaseKey>,
    /// The re-provide walk over the pins.
    reprovide: Walk<Cid>,
    /// Records from the future, until they are due.
    held: Held,
    counters: Counters,
    outbox: VecDeque<Action>,
}

impl Service {
    /// A service whose timers start at `now`: the first rotation, the
    /// first republish and the first re-provide are due at once.
    pub(crate) fn new(settings: Settings, counters: Counters, now: Instant) -> Self {
        let rate = settings.records_per_peer_per_sec;
        Self {
            records: Limiter::new(rate, rate),
            authors: AuthorLimiter::new(
                settings.records_per_author_per_sec,
                settings.author_records_burst,
                settings.max_tracked_authors,
            ),
            sync_requests: Limiter::new(SYNC_REQUESTS_PER_SEC, SYNC_REQUESTS_PER_SEC * 2),
            connected: BTreeSet::new(),
            syncing: HashSet::new(),
            last_rotated: None,
            next_sync: now,
            bans: HashMap::new(),
            ban_ends: BTreeSet::new(),
            republish: Walk::new(
                settings.republish_interval,
                pacing::pass(settings.record_ttl),
                REPUBLISH_BATCH,
                now,
            ),
            reprovide: Walk::new(
                settings.reprovide_interval,
                pacing::pass(settings.provider_ttl),
                REPROVIDE_BATCH,
                now,
            ),
            held: Held::default(),
            settings,
            counters,
            outbox: VecDeque::new(),
        }
    }

    /// The next action to carry out, oldest first.
    pub(crate) fn next_action(&mut self) -> Option<Action> {
        self.outbox.pop_front()
    }

    /// When [`tick`](Self::tick) has something to do next.
    pub(crate) fn next_wakeup(&self) -> Instant {
        // A walk whose read is under way is re-armed by its outcome.
        [
            Some(self.next_sync),
            self.republish.due(),
            self.reprovide.due(),
            self.ban_ends.first().map(|(end, _)| *end),
            self.held.next_due(),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(self.next_sync)
    }

    /// Does what is due at `now`: lifts ended bans, syncs with the next
    /// peer in turn, starts the next republish and re-provide reads,
    /// checks held records that are due.
    pub(crate) fn tick(&mut self, now: Instant) {
        self.lift_bans(now);
        for bytes in self.held.take_due(now) {
            self.outbox.push_back(Action::Check {
                origin: Origin::Held,
                bytes,
            });
        }
        if now >= self.next_sync {
            self.next_sync = now + self.settings.sync_interval;
            self.rotate_sync();
        }
        if let Some((after, limit)) = self.republish.start(now) {
            self.outbox
                .push_back(Action::ReadRepublish { after, limit });
        }
        if let Some((after, limit)) = self.reprovide.start(now) {
            self.outbox
                .push_back(Action::ReadReprovide { after, limit });
        }
    }

    /// A connection to `peer` was established; `first` when it is the
    /// only one.
    pub(crate) fn on_connected(&mut self, peer: PeerId, first: bool) {
        self.connected.insert(peer);
        if first && self.settings.sync_on_connect {
            self.start_sync(peer);
        }
    }

    /// The last connection to `peer` closed.
    pub(crate) fn on_disconnected(&mut self, peer: &PeerId) {
        self.connected.remove(peer);
        self.records.forget(peer);
        self.sync_requests.forget(peer);
    }

    /// Gossipsub delivered message `id` from `source`, held back until the
    /// verdict.
    pub(crate) fn on_gossip(
        &mut self,
        source: PeerId,
        id: MessageId,
        bytes: Vec<u8>,
        now: Instant,
    ) {
        if !self.records.allow(source, now) {
            debug!(%source, "rate limited");
            self.report(id, source, MessageAcceptance::Ignore);
            return;
        }
        self.outbox.push_back(Action::Check {
            origin: Origin::Gossip { source, id },
            bytes,
        });
    }

    /// The gossiped or held `bytes` from `origin` were verified off the
    /// loop, with this verdict, at `now`: a valid record is let through to
    /// the store while its author has a token (else dropped: `Ignore`, no
    /// penalty); an invalid one is rejected; one from the future is held.
    pub(crate) fn on_checked(
        &mut self,
        origin: Origin,
        bytes: Vec<u8>,
        verdict: Result<Signed, VerifyError>,
        now: Instant,
    ) {
        let label = origin.label();
        let acceptance = match verdict {
            Ok(record) => {
                if self.authors.try_take(*record.author(), now) {
                    self.outbox.push_back(Action::Apply {
                        origin,
                        record: Box::new(record),
                    });
                    return;
                }
                debug!(
                    author = %record.author(),
                    record = %record.id(),
                    source = label,
                    "author over its rate: record dropped"
                );
                self.counters.throttled(label);
                MessageAcceptance::Ignore
            }
            // Valid but for this node's clock, which may be the wrong one:
            // no penalty, and checked again when its time comes.
            Err(VerifyError::FromFuture {
                created_at,
                now: clock,
            }) => {
                let early = created_at.saturating_sub(clock.saturating_add(MAX_CLOCK_SKEW_MS));
                let due = now + Duration::from_millis(early) + SLACK;
                let hold = self.held.hold(bytes, due, now);
                debug!(source = label, created_at, ?hold, "record from the future");
                self.counters.future(label, hold.label(), 1);
                if let Hold::Held { evicted } = hold
                    && evicted > 0
                {
                    self.counters.future(label, "evicted", evicted as u64);
                }
                MessageAcceptance::Ignore
            }
            Err(e) => {
                if let Origin::Gossip { source, .. } = &origin {
                    warn!(%source, reason = e.reason(), error = %e, "rejected record");
                }
                self.counters.rejected(label, e.reason());
                MessageAcceptance::Reject
            }
        };
        if let Origin::Gossip { source, id } = origin {
            self.report(id, source, acceptance);
        }
    }

    /// Whether to apply a record published through this node's client at
    /// `now`: when it can take a token from its author (given back in
    /// [`on_applied`](Self::on_applied) if it is not news); else the caller
    /// is told to try again later.
    pub(crate) fn admit_publish(&mut self, record: &Signed, now: Instant) -> Result<(), NodeError> {
        let author = *record.author();
        if self.authors.try_take(author, now) {
            return Ok(());
        }
        debug!(%author, record = %record.id(), "author over its rate: publish refused");
        self.counters.throttled("local");
        Err(NodeError::AuthorRateLimited {
            author,
            per_sec: self.settings.records_per_author_per_sec,
            burst: self.settings.author_records_burst,
        })
    }

    /// `record` from `origin` was applied to the store off the loop, with
    /// this outcome, at `now`: a record that is news is passed on (`Accept`
    /// for gossip; a local publish is gossiped and announced, a held record
    /// gossiped); anything else goes no further (`Ignore`) and gives its
    /// author back the token it took. For a local publish the runtime also
    /// answers the caller with the outcome.
    pub(crate) fn on_applied(
        &mut self,
        origin: Origin,
        record: &Signed,
        outcome: &Result<Stored, NodeError>,
        now: Instant,
    ) {
        let label = origin.label();
        let news = match outcome {
            Ok(stored) => {
                if let Some(position) = stored.position {
                    self.outbox.push_back(Action::LogHead(position));
                }
                if stored.is_news() {
                    info!(
                        record = %stored.id,
                        author = %record.author(),
                        source = label,
                        "record accepted"
                    );
                    self.counters.accepted(label, 1);
                }
                stored.is_news()
            }
            Err(e) => {
                warn!(error = %e, source = label, "store failed");
                false
            }
        };
        if !news {
            self.authors.give_back(*record.author(), now);
        }
        match origin {
            Origin::Gossip { source, id } => {
                let acceptance = match news {
                    true => MessageAcceptance::Accept,
                    false => MessageAcceptance::Ignore,
                };
                self.report(id, source, acceptance);
            }
            Origin::Local(key) if news => {
                self.outbox.push_back(Action::Gossip(record.to_bytes()));
                if let Some(key) = key {
                    self.outbox.push_back(Action::Announce(key));
                }
            }
            // Peers whose clocks are as far behind held it too; the others
            // have it already and ignore it.
            Origin::Held if news => self.outbox.push_back(Action::Gossip(record.to_bytes())),
            Origin::Local(_) | Origin::Held => {}
        }
    }

    /// The verified `record` from `origin` was not written: the store's
    /// write queue was full (a slow disk; `writes.rs`). Its author gets
    /// its token back, a gossiped one is `Ignore`d (not passed on, no
    /// penalty: the sender did nothing wrong, and sync brings the record
    /// back later), and it is counted (the runtime refuses a local
    /// publish itself).
    pub(crate) fn on_shed(&mut self, origin: Origin, record: &Signed, now: Instant) {
        let label = origin.label();
        debug!(record = %record.id(), source = label, "store behind: record shed");
        self.counters.shed(label);
        self.authors.give_back(*record.author(), now);
        if let Origin::Gossip { source, id } = origin {
            self.report(id, source, MessageAcceptance::Ignore);
        }
    }

    /// Whether to answer a sync request from `peer` now (else: "rate
    /// limited").
    pub(crate) fn allow_sync_request(&mut self, peer: PeerId, now: Instant) -> bool {
        self.sync_requests.allow(peer, now)
    }

    /// Whether to check a DHT value or a provider record `source` put (it
    /// shares the peer's records budget with gossip).
    pub(crate) fn allow_dht_put(&mut self, source: PeerId, now: Instant) -> bool {
        let allowed = self.records.allow(source, now);
        if !allowed {
            debug!(%source, "DHT put rate limited");
        }
        allowed
    }

    /// A sync session with `peer` ended: what it stored counts, and moves
    /// the log head, also when it failed part way; then its error, if any.
    pub(crate) fn on_synced(&mut self, peer: PeerId, outcome: Outcome) {
        self.syncing.remove(&peer);
        let Outcome {
            report,
            head,
            result,
        } = outcome;
        self.counters.accepted("sync", report.kept as u64);
        if report.early > 0 {
            self.counters.future("sync", "skipped", report.early as u64);
        }
        if let Some(position) = head {
            self.outbox.push_back(Action::LogHead(position));
        }
        match result {
            Ok(()) => {
                debug!(%peer, ?report, "synced");
                self.counters.sync_session("ok", report.rounds as u64);
            }
            Err(SyncError::InvalidRecord(e)) => {
                self.counters.rejected("sync", e.reason());
                self.counters.sync_session("invalid_record", 0);
                warn!(%peer, error = %e, "peer sent an invalid record during sync; disconnecting");
                self.outbox.push_back(Action::Disconnect(peer));
            }
            Err(e) => {
                debug!(%peer, error = %e, ?report, "sync failed");
                self.counters.sync_session("failed", 0);
            }
        }
    }

    /// Bans `peer` (it sent blocks whose bytes do not match their CID)
    /// until `now` + [`BAN`].
    pub(crate) fn on_ban(&mut self, peer: PeerId, now: Instant) {
        warn!(%peer, "banned for an hour");
        if let Some(old) = self.bans.insert(peer, now + BAN) {
            self.ban_ends.remove(&(old, peer));
        }
        self.ban_ends.insert((now + BAN, peer));
        self.outbox.push_back(Action::Ban(peer));
    }

    /// The republish read finished at `now`: the values to put, the last
    /// release read (`None` when the walk reached the end) and how many
    /// releases the store holds.
    pub(crate) fn on_republish_read(
        &mut self,
        outcome: Result<Page<ReleaseKey, DhtValue>, StoreError>,
        now: Instant,
    ) {
        match outcome {
            Ok(Page { items, next, total }) => {
                if let Some(took) = self.republish.read(next, total, now) {
                    info!(releases = total, ?took, "republished every release");
                }
                self.counters.republished(items.len() as u64);
                if !items.is_empty() {
                    self.outbox.push_back(Action::DhtPut(items));
                }
            }
            Err(e) => {
                // The walk tries the same batch again next time.
                self.republish.failed();
                warn!(error = %e, "republish failed");
            }
        }
    }

    /// The re-provide read finished at `now`: the pinned roots to announce,
    /// the last one (`None` when the walk reached the end) and how many
    /// pins there are.
    pub(crate) fn on_reprovide_read(
        &mut self,
        outcome: Result<Page<Cid, Cid>, BlockstoreError>,
        now: Instant,
    ) {
        match outcome {
            Ok(Page { items, next, total }) => {
                if let Some(took) = self.reprovide.read(next, total, now) {
                    info!(pins = total, ?took, "re-provided every pin");
                }
                self.counters.reprovided(items.len() as u64);
                if !items.is_empty() {
                    debug!(roots = items.len(), "re-providing");
                    self.outbox.push_back(Action::Provide(items));
                }
            }
            Err(e) => {
                self.reprovide.failed();
                warn!(error = %e, "re-provide failed");
            }
        }
    }

    /// What became of a provider record for `key` that `provider` sent:
    /// kept, or refused for a reason (counted, and logged at debug).
    pub(crate) fn on_provider_record(
        &mut self,
        provider: PeerId,
        key: &[u8],
        verdict: Result<(), Refused>,
    ) {
        match verdict {
            Ok(()) => {
                debug!(%provider, key = %hex::encode(key), "kept a provider record");
                self.counters.provider_record("kept");
            }
            Err(e) => {
                debug!(%provider, key = %hex::encode(key), reason = e.label(), "refused a provider record");
                self.counters.provider_record(e.label());
            }
        }
    }

    /// An inbound DHT put was stored: `news` records new to the store, at
    /// log positions up to `head`.
    pub(crate) fn on_dht_applied(&mut self, news: usize, head: Option<u64>) {
        self.counters.accepted("dht", news as u64);
        if let Some(position) = head {
            self.outbox.push_back(Action::LogHead(position));
        }
    }

    /// An inbound DHT put from `source` was shed: the disk is behind, or
    /// enough puts wait for it already.
    pub(crate) fn on_dht_shed(&mut self, source: PeerId) {
        debug!(%source, "store behind: DHT put shed");
        self.counters.shed("dht");
    }

    /// A DHT get found records that were stored at up to `position`.
    pub(crate) fn on_dht_stored(&mut self, position: u64) {
        self.outbox.push_back(Action::LogHead(position));
    }

    fn report(&mut self, id: MessageId, source: PeerId, acceptance: MessageAcceptance) {
        self.outbox.push_back(Action::Report {
            id,
            source,
            acceptance,
        });
    }

    /// Starts a session with `peer` unless one is running.
    fn start_sync(&mut self, peer: PeerId) {
        if self.syncing.insert(peer) {
            self.outbox.push_back(Action::StartSync(peer));
        }
    }

    /// Syncs with the connected peer after the one synced with last (in
    /// peer id order, wrapping around), so that a record that missed this
    /// node's gossip arrives anyway.
    fn rotate_sync(&mut self) {
        let after = match self.last_rotated {
            Some(last) => (Bound::Excluded(last), Bound::Unbounded),
            None => (Bound::Unbounded, Bound::Unbounded),
        };
        let Some(next) = self
            .connected
            .range(after)
            .next()
            .or_else(|| self.connected.first())
            .copied()
        else {
            return;
        };
        self.last_rotated = Some(next);
        self.start_sync(next);
    }

    fn lift_bans(&mut self, now: Instant) {
        while let Some(&(end, peer)) = self.ban_ends.first()
            && end <= now
        {
            self.ban_ends.pop_first();
            self.bans.remove(&peer);
            debug!(%peer, "ban lifted");
            self.outbox.push_back(Action::Unban(peer));
        }
    }
}

#[cfg(test)]
mod tests;
