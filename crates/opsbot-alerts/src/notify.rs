//! Turning pending notices into messages. An open group (route × group key) is sent
//! `group_wait` after its first notice, and at most once per `group_interval`, so a
//! burst becomes one message, also when its alerts reach different instances: the
//! store keeps each group's due time (written with the notice), and every instance's
//! notifier claims the due groups, under a lease, and sends them, whoever received
//! their alerts. The flush is conditional on the claim, so a group is sent once, by
//! one instance; a claim whose holder died runs out and another instance sends the
//! group. An instance looks at every `group_poll` and when a group it opened falls
//! due (its in-process hint). Sending = run the
//! group's automatic remediations ([`crate::auto`]), render the route's template for
//! each target (firing alerts to app members as a card with buttons, [`crate::card`])
//! and write each message whole, as a neutral [`Notice`], to the outbox in the same
//! transaction that closes the notices: a group is announced exactly once, also if the
//! process dies in between. Targets over their
//! WeCom rate (robot 20/min, 30/min per member) wait, and meanwhile more alerts merge
//! into their group. The delivery worker of the channel splits each message to its
//! platform's size limit and sends it.
//!
//! After a restart the open groups are read back from the store and sent; open groups
//! an earlier version left without a schedule get one.

use crate::auto::Auto;
use crate::card::{alert_card, AlertGroup, Offer};
use crate::config::Settings;
use crate::remediation::Mode;
use crate::routing::{Format, Route};
use crate::silence::{silenced, Silences};
use crate::template::{AlertView, GroupView};
use chrono::{DateTime, FixedOffset, Utc};
use opsbot_core::notice::{app_channel, robot_channel, Body, Target};
use opsbot_core::Notice;
use opsbot_store::alerts::AlertStore;
use opsbot_store::alerts::{
    AlertRecord, GroupClaim, GroupFlush, NewNotice, NoticeRecord, PendingGroup, FIRING, RESOLVED,
};
use opsbot_store::NewOutbox;
use opsbot_wecom::clock::SystemClock;
use opsbot_wecom::ratelimit::SlidingWindowLimiter;
use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, watch, Notify};
use tokio::time::Instant;

/// A group that could not be sent (store down) is tried again after this.
const RETRY: Duration = Duration::from_secs(5);
/// Another instance flushed part of a group: read it again this soon.
const RACED: Duration = Duration::from_secs(1);
/// Slightly more than WeCom's minute, as the API client's own limiter does.
const WINDOW: Duration = Duration::from_secs(61);

/// One message destination of a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub channel: String,
    pub target: Target,
    pub format: Format,
    /// Rate-limit keys: the members and robot this message counts against.
    pub budget: Vec<String>,
}

/// Where `route` sends a message about alerts naming `recipients`.
pub fn deliveries(route: &Route, recipients: &[String]) -> Vec<Delivery> {
    let t = &route.targets;
    let mut out = Vec::new();
    if let Some(app) = &t.app {
        let channel = app_channel(app);
        let format = route.format.unwrap_or(Format::Text);
        let mut users: Vec<String> = t.users.clone();
        if t.alert_recipients {
            for r in recipients {
                if !users.contains(r) {
                    users.push(r.clone());
                }
            }
        }
        if !users.is_empty() || !t.parties.is_empty() || !t.tags.is_empty() {
            out.push(Delivery {
                channel: channel.clone(),
                budget: users
                    .iter()
                    .map(|u| format!("{channel}:user:{}", u.to_lowercase()))
                    .collect(),
                target: Target::Members {
                    users,
                    parties: t.parties.clone(),
                    tags: t.tags.clone(),
                },
                format,
            });
        } else if t.alert_recipients && t.appchat.is_none() {
            // The route only sends to whom the alerts name, and they name nobody: the
            // empty recipient list dead-letters with a reason an operator can read.
            out.push(Delivery {
                channel: channel.clone(),
                budget: Vec::new(),
                target: Target::Members {
                    users: Vec::new(),
                    parties: Vec::new(),
                    tags: Vec::new(),
                },
                format,
            });
        }
        if let Some(chat) = &t.appchat {
            out.push(Delivery {
                channel: channel.clone(),
                budget: vec![format!("{channel}:chat:{chat}")],
                target: Target::AppChat { chat: chat.clone() },
                format,
            });
        }
    }
    for robot in &t.robots {
        let channel = robot_channel(robot);
        let format = route.format.unwrap_or(Format::Markdown);
        out.push(Delivery {
            budget: vec![channel.clone()],
            channel,
            target: Target::Robot,
            format,
        });
    }
    out
}

/// The message carrying `text` to `d`, whole.
pub fn notice(d: &Delivery, text: &str) -> Notice {
    let content = text.to_string();
    Notice {
        channel: d.channel.clone(),
        target: d.target.clone(),
        body: match d.format {
            Format::Text => Body::Text { content },
            Format::Markdown => Body::Markdown { content },
        },
    }
}

/// What a group's remediation rules come to: buttons to offer, and what automatic
/// remediation did (a line each).
#[derive(Debug, Default)]
struct Remediated {
    offers: Vec<Offer>,
    outcomes: Vec<String>,
}

/// The outbox items carrying `text` to `d`: one, whole; the delivering channel splits
/// it to its platform's size limit.
pub fn outbox_items(d: &Delivery, text: &str) -> Vec<NewOutbox> {
    vec![NewOutbox::from(&notice(d, text))]
}

/// `12-01 10:20:00` in the gateway's zone.
pub fn local_time(t: DateTime<Utc>, tz: FixedOffset) -> String {
    t.with_timezone(&tz).format("%m-%d %H:%M:%S").to_string()
}

/// `5 分钟`, `2 小时 3 分钟`, `45 秒`.
pub fn human_duration(d: chrono::Duration) -> String {
    let s = d.num_seconds().max(0);
    match s {
        0..60 => format!("{s} 秒"),
        60..3600 => format!("{} 分钟", s / 60),
        3600..86400 => format!("{} 小时 {} 分钟", s / 3600, s % 3600 / 60),
        _ => format!("{} 天 {} 小时", s / 86400, s % 86400 / 3600),
    }
}

/// 🔴 critical-ish, 🟠 warning-ish, 🔵 otherwise (the engine's alert list uses the same).
pub fn icon(severity: &str) -> &'static str {
    opsbot_core::alerts::severity_icon(severity)
}

/// An alert as templates see it.
pub fn view(a: &AlertRecord, tz: FixedOffset) -> AlertView {
    AlertView {
        id: a.id,
        source: a.source.clone(),
        status: a.status.clone(),
        severity: a.severity.clone(),
        icon: icon(&a.severity).into(),
        name: a.name.clone(),
        summary: a.summary.clone(),
        endpoint: a.endpoint.clone(),
        metric: a.metric.clone(),
        labels: a.labels.clone(),
        annotations: a.annotations.clone(),
        recipients: a.recipients.clone(),
        starts_at: local_time(a.starts_at, tz),
        ends_at: a.ends_at.map(|t| local_time(t, tz)).unwrap_or_default(),
        duration: a
            .ends_at
            .map(|e| human_duration(e - a.starts_at))
            .unwrap_or_default(),
        occurrences: a.occurrences,
        ack_by: a.ack_by.clone().unwrap_or_default(),
        parse_error: a.parse_error.clone().unwrap_or_default(),
    }
}

/// Renders `view` for `d` with `route`'s template of its format.
pub fn render(settings: &Settings, route: &Route, d: &Delivery, view: &GroupView) -> String {
    use crate::template::{DEFAULT_MARKDOWN, DEFAULT_TEXT};
    match d.format {
        Format::Text => {
            settings
                .templates
                .render_or_default(&route.text_template, DEFAULT_TEXT, view)
        }
        Format::Markdown => {
            settings
                .templates
                .render_or_default(&route.markdown_template, DEFAULT_MARKDOWN, view)
        }
    }
}

/// A look this much after a group's due time serves it too.
const HINT_SLACK: Duration = Duration::from_millis(10);
/// Due groups claimed at once; more are claimed as these are sent.
const CLAIM_BATCH: u64 = 16;
/// How often open groups without a schedule (left by an earlier version) are looked
/// for, and closed schedules pruned.
const CARE_EVERY: Duration = Duration::from_secs(60);
/// A group whose route this instance does not know waits this long for one that does
/// (a configuration being rolled out), or for this one to be reconfigured.
const NO_ROUTE: Duration = Duration::from_secs(600);
/// Closed schedules are kept this long after their last message at least (longer when
/// a route's interval is longer).
const KEEP_CLOSED: Duration = Duration::from_secs(24 * 3600);

/// What became of a claimed group.
enum Sent {
    /// Queued (or closed with nothing to send); `Some`: notices that came meanwhile
    /// keep it open until then.
    Done(Option<DateTime<Utc>>),
    /// Try again after this (a target is over its rate, the group raced, no route).
    Later(Duration),
    /// Another instance took the group over: it sends it.
    Fenced,
}

/// An id for this notifier's claims, unique among running notifiers.
fn claimer_id() -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let host = std::fs::read_to_string("/etc/hostname")
        .map(|h| h.trim().chars().take(64).collect::<String>())
        .unwrap_or_else(|_| "host".into());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!(
        "alerts-{host}-{}-{nanos:08x}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// The grouping task. The store keeps each open group's schedule; this task claims the
/// groups that are due, whoever received their alerts, and sends each under its claim.
/// Its own ingest tells it when a group it just opened will be due, so it looks then
/// instead of at the next poll.
pub struct Notifier {
    store: Arc<dyn AlertStore>,
    settings: Arc<Settings>,
    silences: Arc<Silences>,
    wake: Option<Arc<Notify>>,
    news: mpsc::UnboundedReceiver<NewNotice>,
    auto: Auto,
    owner: String,
    /// When groups this instance knows of fall due: extra looks before the next poll.
    hints: BTreeSet<Instant>,
    budget: SlidingWindowLimiter<String>,
    robot_budget: SlidingWindowLimiter<String>,
}

impl Notifier {
    pub fn new(
        store: Arc<dyn AlertStore>,
        settings: Arc<Settings>,
        silences: Arc<Silences>,
        wake: Option<Arc<Notify>>,
        news: mpsc::UnboundedReceiver<NewNotice>,
        auto: Auto,
    ) -> Self {
        let clock = Arc::new(SystemClock::new());
        // Other scopes than the API client's: these pace whole groups, that one sends.
        let (budget, robot_budget) = match &settings.rate_windows {
            Some(shared) => (
                SlidingWindowLimiter::with_windows(
                    30,
                    WINDOW,
                    clock.clone(),
                    shared.clone(),
                    "alerts:member",
                ),
                SlidingWindowLimiter::with_windows(
                    20,
                    WINDOW,
                    clock,
                    shared.clone(),
                    "alerts:robot",
                ),
            ),
            None => (
                SlidingWindowLimiter::new(30, WINDOW, clock.clone()),
                SlidingWindowLimiter::new(20, WINDOW, clock),
            ),
        };
        Notifier {
            store,
            settings,
            silences,
            wake,
            news,
            auto,
            owner: claimer_id(),
            hints: BTreeSet::new(),
            budget,
            robot_budget,
        }
    }

    /// Who this notifier's claims name.
    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Runs until `stop`; open groups stay in the store for the next start, or for
    /// another instance.
    pub async fn run(mut self, mut stop: watch::Receiver<bool>) {
        tracing::debug!(owner = %self.owner, "alert notifier started");
        self.recover().await;
        let mut poll = Instant::now();
        let mut care = Instant::now() + CARE_EVERY;
        loop {
            let next = match self.hints.first() {
                Some(h) => poll.min(*h),
                None => poll,
            };
            tokio::select! {
                n = self.news.recv() => match n {
                    Some(n) => self.hint(Instant::now() + n.group_wait),
                    None => break,
                },
                _ = tokio::time::sleep_until(next) => {
                    let now = Instant::now();
                    while self.hints.first().is_some_and(|h| *h <= now) {
                        self.hints.pop_first();
                    }
                    self.send_due().await;
                    poll = Instant::now() + self.settings.group_poll;
                    if Instant::now() >= care {
                        if let Err(e) = self.care().await {
                            tracing::warn!(error = %e, "cannot look after alert group schedules");
                        }
                        care = Instant::now() + CARE_EVERY;
                    }
                },
                _ = stop.changed() => break,
            }
            if *stop.borrow() {
                break;
            }
        }
    }

    /// One look serves every group due by then: a burst's notices make a few hints,
    /// not one each.
    fn hint(&mut self, at: Instant) {
        if self.hints.range(at..=at + HINT_SLACK).next().is_none() {
            self.hints.insert(at);
        }
    }

    /// Open groups left without a schedule (by an earlier version) get one before the
    /// first look, so they are sent.
    async fn recover(&mut self) {
        let mut wait = Duration::from_millis(200);
        loop {
            match self.care().await {
                Ok(()) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read pending alert groups yet; retrying");
                    tokio::time::sleep(wait).await;
                    wait = (wait * 2).min(Duration::from_secs(10));
                }
            }
        }
    }

    /// Schedules open groups that have none, and forgets closed schedules long past.
    async fn care(&mut self) -> opsbot_store::Result<()> {
        let groups = self.store.alert_notice_groups().await?;
        let pending: Vec<PendingGroup> = groups
            .into_iter()
            .map(|g| {
                let (group_wait, group_interval) = self.timing(&g.route);
                PendingGroup {
                    group: NewNotice {
                        route: g.route,
                        group_key: g.group_key,
                        group_wait,
                        group_interval,
                    },
                    oldest: g.oldest,
                }
            })
            .collect();
        if !pending.is_empty() {
            tracing::debug!(groups = pending.len(), "alert groups pending");
            self.store.alert_groups_schedule(&pending).await?;
        }
        let longest = self
            .settings
            .router
            .routes()
            .map(|r| r.group_interval)
            .max()
            .unwrap_or_default();
        let keep = chrono::Duration::from_std(KEEP_CLOSED.max(longest.saturating_mul(2)))
            .unwrap_or(chrono::Duration::MAX);
        let before = Utc::now()
            .checked_sub_signed(keep)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let pruned = self.store.alert_group_schedules_prune(before).await?;
        if pruned > 0 {
            tracing::debug!(pruned, "closed alert group schedules forgotten");
        }
        Ok(())
    }

    /// `route`'s group wait and interval (zero for a route this instance does not know).
    fn timing(&self, route: &str) -> (Duration, Duration) {
        self.settings
            .router
            .route(route)
            .map(|r| (r.group_wait, r.group_interval))
            .unwrap_or_default()
    }

    /// Claims the due groups, a batch at a time, and sends each.
    async fn send_due(&mut self) {
        loop {
            let claims = match self
                .store
                .alert_groups_claim(&self.owner, self.settings.group_lease, CLAIM_BATCH)
                .await
            {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot claim due alert groups yet; retrying");
                    return;
                }
            };
            let full = claims.len() as u64 == CLAIM_BATCH;
            for claim in claims {
                self.send_claimed(claim).await;
            }
            if !full {
                return;
            }
        }
    }

    async fn send_claimed(&mut self, claim: GroupClaim) {
        let later = match self.send(&claim).await {
            Ok(Sent::Done(None)) => return,
            Ok(Sent::Done(Some(due))) => {
                self.hint(instant_at(due));
                return;
            }
            Ok(Sent::Fenced) => {
                tracing::info!(route = %claim.route, group = %claim.group_key, "another instance took this alert group over; it sends it");
                return;
            }
            Ok(Sent::Later(later)) => later,
            Err(e) => {
                tracing::warn!(route = %claim.route, group = %claim.group_key, error = %e, "cannot send an alert group yet; retrying");
                RETRY
            }
        };
        let due = chrono::Duration::from_std(later)
            .ok()
            .and_then(|d| Utc::now().checked_add_signed(d))
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        // If this fails too, the claim runs out and the group is due again then.
        match self.store.alert_group_defer(&claim, due).await {
            Ok(true) => self.hint(Instant::now() + later),
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(route = %claim.route, group = %claim.group_key, error = %e, "cannot put an alert group back; it is due again when its claim ends");
            }
        }
    }

    /// Sends one claimed group.
    async fn send(&mut self, claim: &GroupClaim) -> opsbot_store::Result<Sent> {
        let (route_name, group_key) = (&claim.route, &claim.group_key);
        let notices = self.store.alert_notices(route_name, group_key).await?;
        let Some(route) = self.settings.router.route(route_name) else {
            if notices.is_empty() {
                return self.flush(claim, &[], &[], Duration::ZERO).await;
            }
            tracing::error!(route = %route_name, "no route to send alerts to; they stay listed in 告警");
            return Ok(Sent::Later(NO_ROUTE));
        };
        let interval = route.group_interval;
        if notices.is_empty() {
            return self.flush(claim, &[], &[], interval).await;
        }
        let active = self.silences.active().await?;
        let (quiet, loud): (Vec<&NoticeRecord>, Vec<&NoticeRecord>) =
            notices.iter().partition(|n| {
                silenced(&active, &(&n.alert).into())
                    || (n.status == RESOLVED && !route.send_resolved)
            });
        let done: Vec<i64> = notices.iter().map(|n| n.id).collect();
        if loud.is_empty() {
            let sent = self.flush(claim, &done, &[], interval).await?;
            tracing::debug!(route = %route.name, silenced = quiet.len(), "alert group silenced");
            return Ok(sent);
        }
        // In the order the alerts name them (Open-Falcon's `tos` order), once each.
        let mut recipients: Vec<String> = Vec::new();
        for r in loud.iter().flat_map(|n| n.alert.recipients.iter()) {
            if !recipients.contains(r) {
                recipients.push(r.clone());
            }
        }
        let targets = deliveries(route, &recipients);
        // Every target within its rate, or the whole group waits (and grows).
        let mut wait = Duration::ZERO;
        for d in &targets {
            let limiter = if matches!(d.target, Target::Robot) {
                &self.robot_budget
            } else {
                &self.budget
            };
            wait = wait.max(limiter.try_acquire_all(&d.budget).await);
        }
        if !wait.is_zero() {
            tracing::info!(route = %route.name, ?wait, "alert target at its WeCom rate limit; the group waits and keeps collecting");
            return Ok(Sent::Later(wait));
        }
        let tz = self.settings.timezone;
        let view = GroupView {
            route: route.name.clone(),
            group: group_key.clone(),
            firing: loud
                .iter()
                .filter(|n| n.status == FIRING)
                .map(|n| view(&n.alert, tz))
                .collect(),
            resolved: loud
                .iter()
                .filter(|n| n.status == RESOLVED)
                .map(|n| view(&n.alert, tz))
                .collect(),
            count: loud.len(),
            max_listed: self.settings.max_listed,
        };
        // Each firing alert once (it may have fired, resolved and fired again within
        // the group's wait), as the card lists them.
        let mut seen = HashSet::new();
        let firing: Vec<&NoticeRecord> = loud
            .iter()
            .copied()
            .filter(|n| n.status == FIRING && seen.insert(n.alert.id))
            .collect();
        let remediated = self.remediate(route, &firing).await?;
        let firing_alerts: Vec<&AlertRecord> = firing.iter().map(|n| &n.alert).collect();
        let now = Utc::now();
        let mut items = Vec::new();
        for d in &targets {
            let mut text = render(&self.settings, route, d, &view);
            for line in &remediated.outcomes {
                text.push('\n');
                text.push_str(line);
            }
            let mut message = notice(d, &text);
            if let (Some(keys), Target::Members { .. }) = (&self.settings.cards, &d.target) {
                if route.cards && !firing_alerts.is_empty() {
                    let group = AlertGroup {
                        route: &route.name,
                        group_by: &route.group_by,
                        firing: &firing_alerts,
                        resolved: view.resolved.len(),
                        text: &text,
                        markdown: d.format == Format::Markdown,
                        offers: &remediated.offers,
                        outcomes: &remediated.outcomes,
                        timezone: tz,
                    };
                    message.body = Body::Card {
                        card: alert_card(keys, &group, now, self.settings.card_ttl),
                    };
                }
            }
            items.push(NewOutbox::from(&message));
        }
        let sent = self.flush(claim, &done, &items, interval).await?;
        if let Sent::Done(_) = sent {
            tracing::info!(route = %route.name, group = %group_key, alerts = loud.len(), silenced = quiet.len(), messages = items.len(), "alert group queued");
            if let Some(w) = &self.wake {
                w.notify_one();
            }
        }
        Ok(sent)
    }

    /// Closes `done` and queues `items` under `claim`.
    async fn flush(
        &self,
        claim: &GroupClaim,
        done: &[i64],
        items: &[NewOutbox],
        interval: Duration,
    ) -> opsbot_store::Result<Sent> {
        Ok(
            match self
                .store
                .alert_notices_flush(claim, done, items, interval)
                .await?
            {
                GroupFlush::Queued { next_due, .. } => Sent::Done(next_due),
                GroupFlush::Raced => {
                    tracing::info!(route = %claim.route, group = %claim.group_key, "another instance sent part of this group; reading it again");
                    Sent::Later(RACED)
                }
                GroupFlush::Fenced => Sent::Fenced,
            },
        )
    }
}

/// The instant `at` (by the wall clock) corresponds to, now if past.
fn instant_at(at: DateTime<Utc>) -> Instant {
    Instant::now() + (at - Utc::now()).to_std().unwrap_or_default()
}
impl Notifier {
    /// The remediation rules of `firing` on `route`: `button` rules become offers;
    /// `auto` rules run now (each command once per group), and one that did not run is
    /// offered for a person to decide. `Err`: the store is down.
    async fn remediate(
        &self,
        route: &Route,
        firing: &[&NoticeRecord],
    ) -> opsbot_store::Result<Remediated> {
        let rules = &self.settings.remediations;
        let mut out = Remediated::default();
        if rules.is_empty() {
            return Ok(out);
        }
        let tz = self.settings.timezone;
        let at = Utc::now().with_timezone(&tz);
        let mut offered = HashSet::new();
        let mut ran = HashSet::new();
        // Only what still fires: a notice may announce a firing that has since ended.
        for n in firing.iter().filter(|n| n.alert.status == FIRING) {
            let alert_view = view(&n.alert, tz);
            for filled in rules.for_alert(&route.name, &n.alert, &alert_view, at) {
                let offer = Offer {
                    label: filled.label.clone(),
                    command: filled.command.clone(),
                    roles: filled.rule.roles.clone(),
                };
                match filled.rule.mode {
                    Mode::Button => {
                        if offered.insert(filled.command.clone()) {
                            out.offers.push(offer);
                        }
                    }
                    Mode::Auto => {
                        if !ran.insert((filled.rule.name.clone(), filled.command.clone())) {
                            continue;
                        }
                        let outcome = self
                            .auto
                            .run(filled.rule, &filled.command, &n.alert, n.created_at)
                            .await?;
                        out.outcomes.push(outcome.line(&filled.command, tz));
                        if !outcome.started() && offered.insert(filled.command.clone()) {
                            out.offers.push(offer);
                        }
                    }
                }
            }
        }
        Ok(out)
    }
}
