//! Alerts as records: the raw payloads the gateway received, one row per alert
//! (de-duplicated by fingerprint), pending notices (the durable state of grouping) and
//! silences. The gateway (`opsbot-alerts`) decides what an alert is and where it goes;
//! the store keeps it, decides what is news, and never loses what was accepted.
//!
//! Each open group also has a schedule row (when it is due, when it was last sent, who
//! holds it), so that any instance may send it: instances claim due groups under a
//! lease with a token, and only the holder of the current claim can close the group.

use crate::{NewOutbox, Result};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::time::Duration;

/// `firing` or `resolved`.
pub const FIRING: &str = "firing";
/// See [`FIRING`].
pub const RESOLVED: &str = "resolved";

/// One HTTP request as received, kept verbatim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewAlertPayload {
    /// `openfalcon`, `alertmanager`, `zabbix`, `generic`.
    pub source: String,
    /// The sender's address.
    pub peer: String,
    pub content_type: String,
    pub body: String,
}

/// One alert as a source reported it, normalised by the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AlertUpsert {
    /// What makes two reports the same alert (unique in the store).
    pub fingerprint: String,
    pub source: String,
    /// [`FIRING`] or [`RESOLVED`].
    pub status: String,
    pub severity: String,
    pub name: String,
    pub summary: String,
    pub endpoint: String,
    pub metric: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    /// Recipients the alert itself names (Open-Falcon `tos`, Zabbix `to`).
    pub recipients: Vec<String>,
    /// Why the payload could not be fully understood; the alert is kept anyway.
    pub parse_error: Option<String>,
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
    /// Routes to tell, recorded only when this report is news: a firing alert not seen
    /// firing before, or a status change.
    pub notices: Vec<NewNotice>,
}

/// A route that must hear about an alert, and the group it is batched in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewNotice {
    pub route: String,
    pub group_key: String,
    /// The route's wait after a group's first notice: the group is due then.
    pub group_wait: Duration,
    /// The route's least time between two messages of a group.
    pub group_interval: Duration,
}

/// An open group whose schedule must exist (notices written by an earlier version,
/// which kept no schedule): due `group_wait` after its oldest notice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingGroup {
    pub group: NewNotice,
    pub oldest: DateTime<Utc>,
}

/// One instance's claim on a due group. Until `until` no other instance can claim the
/// group; flushing or deferring it needs this claim (owner and token) to be the
/// current one, so an instance that froze past its lease, and whose group was claimed
/// again since, changes nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupClaim {
    pub route: String,
    pub group_key: String,
    /// Who claimed it (unique per running notifier).
    pub owner: String,
    /// Unique per claim.
    pub token: i64,
    pub until: DateTime<Utc>,
}

/// What [`AlertStore::alert_notices_flush`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupFlush {
    /// The notices are closed and the messages queued (their outbox ids). `next_due`:
    /// notices that arrived meanwhile keep the group open until then.
    Queued {
        outbox: Vec<i64>,
        next_due: Option<DateTime<Utc>>,
    },
    /// Some of the notices were gone (an instance of an earlier version sent them):
    /// nothing changed; read the group again.
    Raced,
    /// The claim is not the group's current one (another instance claimed it since):
    /// nothing changed.
    Fenced,
}

/// A group's schedule as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupSchedule {
    pub route: String,
    pub group_key: String,
    /// When it is to be sent; `None`: closed, nothing pending.
    pub due: Option<DateTime<Utc>>,
    /// When a message of it was last queued.
    pub last_flush: Option<DateTime<Utc>>,
    pub claimed_by: Option<String>,
    pub claim_until: Option<DateTime<Utc>>,
}

/// One received payload and the alerts read from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestPayload {
    pub payload: NewAlertPayload,
    pub alerts: Vec<AlertUpsert>,
}

/// What ingesting one alert did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestedAlert {
    pub id: i64,
    /// A new firing alert or a status change (notices were recorded if any were asked).
    pub news: bool,
    /// The (route, group) pairs that got a pending notice.
    pub notices: Vec<NewNotice>,
}

/// What ingesting one payload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestedPayload {
    pub payload_id: i64,
    pub alerts: Vec<IngestedAlert>,
}

/// A stored alert (serialisable as the REST API shows it).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AlertRecord {
    pub id: i64,
    pub fingerprint: String,
    pub source: String,
    pub status: String,
    pub severity: String,
    pub name: String,
    pub summary: String,
    pub endpoint: String,
    pub metric: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub recipients: Vec<String>,
    pub parse_error: Option<String>,
    /// The payload this alert was last reported in.
    pub payload_id: i64,
    /// Start of the current episode (reset when a resolved alert fires again).
    pub starts_at: DateTime<Utc>,
    pub ends_at: Option<DateTime<Utc>>,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// Reports received for this fingerprint.
    pub occurrences: i64,
    pub ack_by: Option<String>,
    pub ack_at: Option<DateTime<Utc>>,
}

/// A stored raw payload.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct AlertPayloadRecord {
    pub id: i64,
    pub source: String,
    pub peer: String,
    pub content_type: String,
    pub body: String,
    pub received_at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertQuery {
    /// [`FIRING`] / [`RESOLVED`]; `None` for both.
    pub status: Option<String>,
    pub source: Option<String>,
    /// 0 = all.
    pub limit: u64,
    pub offset: u64,
}

/// A pending notice with the alert it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeRecord {
    pub id: i64,
    pub route: String,
    pub group_key: String,
    /// The status being announced (the alert may have moved on since).
    pub status: String,
    pub created_at: DateTime<Utc>,
    pub alert: AlertRecord,
}

/// An open group: pending notices of one route and group key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeGroup {
    pub route: String,
    pub group_key: String,
    pub oldest: DateTime<Utc>,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSilence {
    /// The matcher as the user wrote it (the gateway interprets it).
    pub matcher: String,
    pub created_by: String,
    pub ends_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SilenceRecord {
    pub id: i64,
    pub matcher: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub ends_at: DateTime<Utc>,
}

/// How `alert_ack` went.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AckOutcome {
    Acked(AlertRecord),
    /// Someone acknowledged it before; the record names who.
    AlreadyAcked(AlertRecord),
    Missing,
}

#[async_trait]
pub trait AlertStore: Send + Sync {
    /// Stores every payload and alert of `batch` (the gateway's group commit): one
    /// entry per payload, in order, each durable when it is `Ok`.
    ///
    /// The batch is written in ONE transaction. When that fails for a reason other
    /// than the database being unreachable, each payload is written alone in its own
    /// transaction, so a payload the database refuses (its entry is
    /// [`StoreError::Rejected`](crate::StoreError::Rejected)) or that fails for any
    /// other reason fails alone and never takes the others down. `Err` means the
    /// database could not be reached and nothing was stored.
    ///
    /// Per alert, by fingerprint: a new fingerprint is inserted; a known one is
    /// updated (last seen, occurrences, latest fields). It is *news* when it fires and
    /// was not firing (new, or resolved before) or resolves while firing; only news
    /// records its `notices`, and is recorded as a status change with the time it was
    /// stored ([`AlertStore::alert_resolutions`]). Firing again clears the
    /// acknowledgement and restarts the episode. A first report that is already
    /// resolved is stored, and is not news.
    async fn alerts_ingest(&self, batch: &[IngestPayload]) -> Result<Vec<Result<IngestedPayload>>>;

    async fn alert_get(&self, id: i64) -> Result<Option<AlertRecord>>;

    /// Alerts, newest report first.
    async fn alerts_list(&self, query: &AlertQuery) -> Result<Vec<AlertRecord>>;

    /// How many alerts have `status`.
    async fn alerts_count(&self, status: &str) -> Result<u64>;

    async fn alert_payload(&self, id: i64) -> Result<Option<AlertPayloadRecord>>;

    /// Records who acknowledged the alert, once.
    async fn alert_ack(&self, id: i64, by: &str) -> Result<AckOutcome>;

    /// Open groups, oldest first.
    async fn alert_notice_groups(&self) -> Result<Vec<NoticeGroup>>;

    /// The pending notices of one group, oldest first.
    async fn alert_notices(&self, route: &str, group_key: &str) -> Result<Vec<NoticeRecord>>;

    /// Creates or updates the schedules of `groups` (open groups left without one by an
    /// earlier version) as ingesting their oldest notice would have: due `group_wait`
    /// after it, not before `group_interval` after the last message, and never later
    /// than an earlier due time already stored.
    async fn alert_groups_schedule(&self, groups: &[PendingGroup]) -> Result<()>;

    /// Claims up to `limit` due groups for `owner`, for `lease`, earliest due first:
    /// groups whose due time has come and that no live claim holds. A group is held by
    /// one claimer at a time (skipping rows another claimer has locked, on PostgreSQL
    /// and MySQL; under SQLite's write lock otherwise).
    async fn alert_groups_claim(
        &self,
        owner: &str,
        lease: Duration,
        limit: u64,
    ) -> Result<Vec<GroupClaim>>;

    /// Releases `claim` and makes the group due at `due` (a target is over its rate, or
    /// the store failed). `false` (nothing changed) when the claim is not current.
    async fn alert_group_defer(&self, claim: &GroupClaim, due: DateTime<Utc>) -> Result<bool>;

    /// In one transaction, if `claim` is still the group's current claim: removes the
    /// notices `done`, queues `outbox` and releases the claim, so a group is announced
    /// exactly once even if the process dies here. The group closes, or, if notices
    /// arrived since they were read, stays due `group_interval` after this message (at
    /// once when nothing was queued). Messages queued record the group's last flush.
    async fn alert_notices_flush(
        &self,
        claim: &GroupClaim,
        done: &[i64],
        outbox: &[NewOutbox],
        group_interval: Duration,
    ) -> Result<GroupFlush>;

    /// The schedule of one group, if it has one.
    async fn alert_group_schedule(
        &self,
        route: &str,
        group_key: &str,
    ) -> Result<Option<GroupSchedule>>;

    /// Forgets closed schedules whose last message was queued before `before` (they
    /// constrain nothing any more); returns how many went.
    async fn alert_group_schedules_prune(&self, before: DateTime<Utc>) -> Result<u64>;

    /// How many times alert `id` resolved at or after `since` (by the store's clock):
    /// an alert that keeps firing and resolving is flapping.
    async fn alert_resolutions(&self, id: i64, since: DateTime<Utc>) -> Result<u64>;

    /// Forgets the status changes recorded before `before`; returns how many went.
    async fn alert_transitions_prune(&self, before: DateTime<Utc>) -> Result<u64>;

    async fn silence_insert(&self, silence: &NewSilence) -> Result<i64>;

    /// Silences that have not ended at `now`, newest first.
    async fn silences_active(&self, now: DateTime<Utc>) -> Result<Vec<SilenceRecord>>;
}
