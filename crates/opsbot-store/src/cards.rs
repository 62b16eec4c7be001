//! Interactive cards and automatic remediation, shared by every instance on one store.
//!
//! A WeCom template card is kept before it is sent, so a click (which may reach any
//! instance) can be checked against the buttons it really had and the card rebuilt
//! after it; with it the one-time `response_code` of the send (usable once, within
//! 72 h). Each button's action is a *slot* that exactly one click wins, by a unique
//! key, so two engineers tapping at the same moment on two instances never both run
//! it. Automatic remediation runs are admitted under a per-rule hourly limit and a
//! per-command cool-down that hold across instances. Pruned by [`crate::retention`].
//!
//! Times are kept to the millisecond (compared as integers, the same on every backend);
//! a claim's `at` to the microsecond.

use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};

/// The longest `task_id` WeCom accepts, in bytes (also the column's length).
pub const TASK_ID_MAX: usize = 128;
/// The longest action slot name, in bytes.
pub const SLOT_MAX: usize = 64;

/// A card about to be sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCard {
    /// Unique per card (WeCom never accepts one twice in an app), at most
    /// [`TASK_ID_MAX`] bytes.
    pub task_id: String,
    /// The outbox channel that sends it: `wecom:<app>` or `wecom-bot:<robot>`.
    pub channel: String,
    /// Where it goes, as the outbox target (JSON).
    pub target: String,
    /// The platform-neutral card, buttons and their actions included (JSON, opaque here).
    pub card: String,
    /// After this the card's buttons are dead, and a day later the card is pruned.
    pub expires_at: DateTime<Utc>,
}

/// A card as kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CardRecord {
    pub task_id: String,
    pub channel: String,
    pub target: String,
    pub card: String,
    /// 1 when put, one more on every [`CardStore::card_replace`].
    pub version: i64,
    /// The send's `response_code`, until it is taken.
    pub response_code: Option<String>,
    /// When that code was issued.
    pub code_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

/// Who took an action slot of a card, and what came of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionClaim {
    pub task_id: String,
    pub slot: String,
    /// The user whose click won.
    pub user: String,
    pub at: DateTime<Utc>,
    /// What it did, as shown to others ("已由 lisi 执行 #42"); `None` while it starts.
    pub outcome: Option<String>,
    /// The job it started, if any.
    pub job: Option<i64>,
}

/// What [`CardStore::action_claim`] got.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClaimResult {
    /// This click won the slot: run its action.
    Won,
    /// Another click won it first: this is that claim (tell the clicker who acted).
    Taken(ActionClaim),
}

/// An automatic remediation run asking to be admitted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemediationRun {
    /// The rule's name.
    pub rule: String,
    /// The rendered command: the cool-down is per rule and command.
    pub target: String,
    /// The alert that triggered it.
    pub alert: Option<i64>,
    pub at: DateTime<Utc>,
}

/// What [`CardStore::remediation_admit`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Run it: recorded under this id (for [`CardStore::remediation_done`]).
    Admitted(i64),
    /// The rule already ran `max_per_hour` times in the hour before the run.
    OverLimit { runs_last_hour: u64 },
    /// The same rule and command ran within the cool-down, last at `last`.
    CoolingDown { last: DateTime<Utc> },
}

/// An admitted remediation run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemediationRecord {
    pub id: i64,
    pub rule: String,
    pub target: String,
    pub alert: Option<i64>,
    pub at: DateTime<Utc>,
    /// The job it started, or why it did not (set by [`CardStore::remediation_done`]).
    pub outcome: Option<String>,
    pub job: Option<i64>,
}

/// Sent cards, their one-time codes and action slots; remediation admission.
///
/// An empty `task_id` or slot, a `task_id` over [`TASK_ID_MAX`] bytes, a slot over
/// [`SLOT_MAX`] bytes or an empty rule name is refused as
/// [`StoreError::Rejected`](crate::StoreError::Rejected).
#[async_trait]
pub trait CardStore: Send + Sync {
    // ---- cards -------------------------------------------------------------------------

    /// Keeps `card` before it is sent. Idempotent: a second put of the same task_id (a
    /// retried send) leaves the row (and its version, code and claims) as it is and
    /// returns Ok.
    async fn card_put(&self, card: &NewCard) -> Result<()>;

    async fn card_get(&self, task_id: &str) -> Result<Option<CardRecord>>;

    /// The response_code of the send (replaces any earlier one). Nothing happens when
    /// there is no such card (it was pruned).
    async fn card_set_code(&self, task_id: &str, code: &str, at: DateTime<Utc>) -> Result<()>;

    /// Takes the send's code for its single use: returns it and clears it, atomically
    /// (two instances never both get it); None when there is none or it was issued
    /// before `issued_after` (now − 72 h: WeCom refuses an older code).
    async fn card_take_code(
        &self,
        task_id: &str,
        issued_after: DateTime<Utc>,
    ) -> Result<Option<String>>;

    /// Replaces the card JSON if its version is still `version` (compare-and-set);
    /// false when someone else replaced it first (re-read and retry), or the card is
    /// gone.
    async fn card_replace(&self, task_id: &str, version: i64, card: &str) -> Result<bool>;

    // ---- action slots ------------------------------------------------------------------

    /// Claims action slot `slot` of card `task_id` for `user`: exactly one claimer wins a
    /// slot, across processes (a unique key, not read-then-write). The loser gets the
    /// winner's claim.
    async fn action_claim(
        &self,
        task_id: &str,
        slot: &str,
        user: &str,
        at: DateTime<Utc>,
    ) -> Result<ClaimResult>;

    /// Records what the winning claim did. Nothing happens when the slot is not claimed.
    async fn action_done(
        &self,
        task_id: &str,
        slot: &str,
        outcome: &str,
        job: Option<i64>,
    ) -> Result<()>;

    /// Gives a claim back (its action could not start): the slot is free again. Only
    /// `user`'s own claim, and only while it has no outcome; false otherwise.
    async fn action_release(&self, task_id: &str, slot: &str, user: &str) -> Result<bool>;

    /// The claims of a card's slots, oldest first.
    async fn action_claims(&self, task_id: &str) -> Result<Vec<ActionClaim>>;

    /// Forgets the cards that expired before `expired_before`, with their claims (and
    /// any claim whose card is gone); returns how many cards went.
    async fn cards_prune(&self, expired_before: DateTime<Utc>) -> Result<u64>;

    // ---- automatic remediation ---------------------------------------------------------

    /// Admits an automatic remediation run, atomically across instances: refused when
    /// the rule already ran `max_per_hour` times in the hour before `run.at`, or when
    /// the same rule+target ran within `cooldown` before `run.at`; otherwise recorded.
    /// The limit is checked first. Runs recorded with a later `at` (another instance's
    /// clock running ahead) count as recent. Two instances admitting concurrently never
    /// exceed the limit: admissions of one rule are serialised (a per-rule lock row taken
    /// `FOR UPDATE` on PostgreSQL and MySQL; SQLite's write transaction already is).
    async fn remediation_admit(
        &self,
        run: &RemediationRun,
        max_per_hour: u32,
        cooldown: std::time::Duration,
    ) -> Result<Admission>;

    /// Records the outcome of an admitted run (job id or refusal text).
    async fn remediation_done(&self, id: i64, outcome: &str, job: Option<i64>) -> Result<()>;

    /// Runs of `rule` since `since`, newest first (for the card and the REST API).
    async fn remediation_runs(
        &self,
        rule: &str,
        since: DateTime<Utc>,
    ) -> Result<Vec<RemediationRecord>>;

    /// Forgets the runs (of every rule) from before `before`; returns how many.
    async fn remediation_prune(&self, before: DateTime<Utc>) -> Result<u64>;
}
