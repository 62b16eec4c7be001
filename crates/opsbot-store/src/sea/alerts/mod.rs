//! Alert rows: group-committed ingest with de-duplication by fingerprint, queries,
//! acknowledgement, pending notices (grouping state) with their groups' schedules
//! (`groups.rs`), silences and status changes.

pub(crate) mod entity;
mod groups;
pub(crate) mod migration;

use crate::alerts::*;
use crate::sea::conn::Conn;
use crate::sea::errors::{Db, During};
use crate::sea::pool::now;
use crate::sea::prune::delete_in_chunks;
use crate::sea::SeaStore;
use crate::{NewOutbox, Result};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use entity::{alert, alert_notice, alert_payload, alert_silence, alert_transition};
use groups::Asks;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveValue::NotSet, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
    QueryOrder, QuerySelect, Set,
};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Rows per multi-row statement: well under every backend's parameter limit.
const CHUNK: usize = 200;

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

fn record(db: &Db, m: alert::Model) -> Result<AlertRecord> {
    let corrupt =
        |field: &str, e: serde_json::Error| db.corrupt(&format!("{field} of alert {}", m.id), e);
    let labels: BTreeMap<String, String> =
        serde_json::from_str(&m.labels).map_err(|e| corrupt("labels", e))?;
    let annotations: BTreeMap<String, String> =
        serde_json::from_str(&m.annotations).map_err(|e| corrupt("annotations", e))?;
    let recipients: Vec<String> =
        serde_json::from_str(&m.recipients).map_err(|e| corrupt("recipients", e))?;
    Ok(AlertRecord {
        id: m.id,
        fingerprint: m.fingerprint,
        source: m.source,
        status: m.status,
        severity: m.severity,
        name: m.name,
        summary: m.summary,
        endpoint: m.endpoint,
        metric: m.metric,
        labels,
        annotations,
        recipients,
        parse_error: m.parse_error,
        payload_id: m.payload_id,
        starts_at: m.starts_at,
        ends_at: m.ends_at,
        first_seen: m.first_seen,
        last_seen: m.last_seen,
        occurrences: m.occurrences,
        ack_by: m.ack_by,
        ack_at: m.ack_at,
    })
}

/// The known state of one fingerprint while a batch is applied.
struct Known {
    id: i64,
    status: String,
}

async fn ingest(conn: &Conn, db: &Db, batch: &[IngestPayload]) -> Result<Vec<IngestedPayload>> {
    const ACTION: &str = "storing alerts";
    let tx = conn.begin().await.during(db, ACTION)?;
    let mut fingerprints: Vec<&str> = batch
        .iter()
        .flat_map(|p| p.alerts.iter().map(|a| a.fingerprint.as_str()))
        .collect();
    fingerprints.sort_unstable();
    fingerprints.dedup();
    let mut known: HashMap<String, Known> = HashMap::with_capacity(fingerprints.len());
    for chunk in fingerprints.chunks(CHUNK) {
        let rows: Vec<(i64, String, String)> = alert::Entity::find()
            .select_only()
            .column(alert::Column::Id)
            .column(alert::Column::Fingerprint)
            .column(alert::Column::Status)
            .filter(alert::Column::Fingerprint.is_in(chunk.iter().copied()))
            .into_tuple()
            .all(&tx)
            .await
            .during(db, ACTION)?;
        for (id, fingerprint, status) in rows {
            known.insert(fingerprint, Known { id, status });
        }
    }
    let at = now();
    let mut notices = Vec::new();
    let mut asks = Asks::default();
    let mut transitions = Vec::new();
    let mut out = Vec::with_capacity(batch.len());
    for p in batch {
        let payload_id = alert_payload::Entity::insert(alert_payload::ActiveModel {
            id: NotSet,
            source: Set(p.payload.source.clone()),
            peer: Set(p.payload.peer.clone()),
            content_type: Set(p.payload.content_type.clone()),
            body: Set(p.payload.body.clone()),
            received_at: Set(at),
        })
        .exec(&tx)
        .await
        .during(db, ACTION)?
        .last_insert_id;
        let mut alerts = Vec::with_capacity(p.alerts.len());
        for a in &p.alerts {
            let (id, news) = match known.get_mut(&a.fingerprint) {
                None => {
                    let id = alert::Entity::insert(alert::ActiveModel {
                        id: NotSet,
                        fingerprint: Set(a.fingerprint.clone()),
                        source: Set(a.source.clone()),
                        status: Set(a.status.clone()),
                        severity: Set(a.severity.clone()),
                        name: Set(a.name.clone()),
                        summary: Set(a.summary.clone()),
                        endpoint: Set(a.endpoint.clone()),
                        metric: Set(a.metric.clone()),
                        labels: Set(json(&a.labels)),
                        annotations: Set(json(&a.annotations)),
                        recipients: Set(json(&a.recipients)),
                        parse_error: Set(a.parse_error.clone()),
                        payload_id: Set(payload_id),
                        starts_at: Set(a.starts_at),
                        ends_at: Set(a.ends_at),
                        first_seen: Set(at),
                        last_seen: Set(at),
                        occurrences: Set(1),
                        ack_by: Set(None),
                        ack_at: Set(None),
                    })
                    .exec(&tx)
                    .await
                    .during(db, ACTION)?
                    .last_insert_id;
                    known.insert(
                        a.fingerprint.clone(),
                        Known {
                            id,
                            status: a.status.clone(),
                        },
                    );
                    (id, a.status == FIRING)
                }
                Some(k) => {
                    let news = k.status != a.status;
                    let mut update = alert::Entity::update_many()
                        .col_expr(alert::Column::Status, Expr::value(a.status.clone()))
                        .col_expr(alert::Column::Severity, Expr::value(a.severity.clone()))
                        .col_expr(alert::Column::Name, Expr::value(a.name.clone()))
                        .col_expr(alert::Column::Summary, Expr::value(a.summary.clone()))
                        .col_expr(alert::Column::Endpoint, Expr::value(a.endpoint.clone()))
                        .col_expr(alert::Column::Metric, Expr::value(a.metric.clone()))
                        .col_expr(alert::Column::Labels, Expr::value(json(&a.labels)))
                        .col_expr(
                            alert::Column::Annotations,
                            Expr::value(json(&a.annotations)),
                        )
                        .col_expr(alert::Column::Recipients, Expr::value(json(&a.recipients)))
                        .col_expr(
                            alert::Column::ParseError,
                            Expr::value(a.parse_error.clone()),
                        )
                        .col_expr(alert::Column::PayloadId, Expr::value(payload_id))
                        .col_expr(alert::Column::EndsAt, Expr::value(a.ends_at))
                        .col_expr(alert::Column::LastSeen, Expr::value(at))
                        .col_expr(
                            alert::Column::Occurrences,
                            Expr::col(alert::Column::Occurrences).add(1),
                        );
                    if news && a.status == FIRING {
                        // A new episode: the old acknowledgement was for the old one.
                        update = update
                            .col_expr(alert::Column::StartsAt, Expr::value(a.starts_at))
                            .col_expr(alert::Column::AckBy, Expr::value(None::<String>))
                            .col_expr(alert::Column::AckAt, Expr::value(None::<DateTime<Utc>>));
                    }
                    update
                        .filter(alert::Column::Id.eq(k.id))
                        .exec(&tx)
                        .await
                        .during(db, ACTION)?;
                    k.status = a.status.clone();
                    (k.id, news)
                }
            };
            if news {
                transitions.push(alert_transition::ActiveModel {
                    id: NotSet,
                    alert_id: Set(id),
                    status: Set(a.status.clone()),
                    at: Set(at),
                });
            }
            let recorded = if news { a.notices.clone() } else { Vec::new() };
            for n in &recorded {
                asks.add(&n.route, &n.group_key, at, n.group_wait, n.group_interval);
                notices.push(alert_notice::ActiveModel {
                    id: NotSet,
                    alert_id: Set(id),
                    route: Set(n.route.clone()),
                    group_key: Set(n.group_key.clone()),
                    status: Set(a.status.clone()),
                    created_at: Set(at),
                });
            }
            alerts.push(IngestedAlert {
                id,
                news,
                notices: recorded,
            });
        }
        out.push(IngestedPayload { payload_id, alerts });
    }
    while !notices.is_empty() {
        let rest = notices.split_off(notices.len().min(CHUNK));
        alert_notice::Entity::insert_many(std::mem::replace(&mut notices, rest))
            .exec_without_returning(&tx)
            .await
            .during(db, ACTION)?;
    }
    while !transitions.is_empty() {
        let rest = transitions.split_off(transitions.len().min(CHUNK));
        alert_transition::Entity::insert_many(std::mem::replace(&mut transitions, rest))
            .exec_without_returning(&tx)
            .await
            .during(db, ACTION)?;
    }
    // Last: the schedule rows are what other instances' writers and flushes wait on.
    asks.write(&tx, db).await?;
    tx.commit().await.during(db, ACTION)?;
    Ok(out)
}

async fn alerts_by_id<C: ConnectionTrait>(
    conn: &C,
    db: &Db,
    ids: &[i64],
) -> Result<HashMap<i64, AlertRecord>> {
    let mut out = HashMap::with_capacity(ids.len());
    for chunk in ids.chunks(CHUNK) {
        for m in alert::Entity::find()
            .filter(alert::Column::Id.is_in(chunk.iter().copied()))
            .all(conn)
            .await
            .during(db, "reading alerts")?
        {
            out.insert(m.id, record(db, m)?);
        }
    }
    Ok(out)
}

#[async_trait]
impl AlertStore for SeaStore {
    async fn alerts_ingest(&self, batch: &[IngestPayload]) -> Result<Vec<Result<IngestedPayload>>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        // A deadlock's victim (an ingest racing a flush of its group on MySQL) was
        // rolled back whole: run it again, briefly, before saying 503.
        let e = match rerun_if_unavailable(|| ingest(&self.conn, &self.db, batch)).await {
            Ok(done) => return Ok(done.into_iter().map(Ok).collect()),
            Err(e) if e.is_unavailable() => return Err(e),
            Err(e) => e,
        };
        if batch.len() == 1 {
            return Ok(vec![Err(e)]);
        }
        // Something in the batch failed it (the whole transaction rolled back): store
        // each payload alone, so only the one at fault is refused.
        tracing::warn!(error = %e, payloads = batch.len(), "an alert batch failed; storing its payloads one by one");
        let mut out = Vec::with_capacity(batch.len());
        for p in batch {
            out.push(
                ingest(&self.conn, &self.db, std::slice::from_ref(p))
                    .await
                    .map(|mut done| done.remove(0)),
            );
        }
        Ok(out)
    }

    async fn alert_get(&self, id: i64) -> Result<Option<AlertRecord>> {
        alert::Entity::find_by_id(id)
            .one(&self.conn)
            .await
            .during(&self.db, "reading an alert")?
            .map(|m| record(&self.db, m))
            .transpose()
    }

    async fn alerts_list(&self, query: &AlertQuery) -> Result<Vec<AlertRecord>> {
        let mut q = alert::Entity::find().order_by_desc(alert::Column::Id);
        if let Some(status) = &query.status {
            q = q.filter(alert::Column::Status.eq(status.as_str()));
        }
        if let Some(source) = &query.source {
            q = q.filter(alert::Column::Source.eq(source.as_str()));
        }
        if query.limit > 0 {
            q = q.limit(query.limit);
        }
        if query.offset > 0 {
            q = q.offset(query.offset);
        }
        q.all(&self.conn)
            .await
            .during(&self.db, "listing alerts")?
            .into_iter()
            .map(|m| record(&self.db, m))
            .collect()
    }

    async fn alerts_count(&self, status: &str) -> Result<u64> {
        alert::Entity::find()
            .filter(alert::Column::Status.eq(status))
            .count(&self.conn)
            .await
            .during(&self.db, "counting alerts")
    }

    async fn alert_payload(&self, id: i64) -> Result<Option<AlertPayloadRecord>> {
        Ok(alert_payload::Entity::find_by_id(id)
            .one(&self.conn)
            .await
            .during(&self.db, "reading an alert payload")?
            .map(|m| AlertPayloadRecord {
                id: m.id,
                source: m.source,
                peer: m.peer,
                content_type: m.content_type,
                body: m.body,
                received_at: m.received_at,
            }))
    }

    async fn alert_ack(&self, id: i64, by: &str) -> Result<AckOutcome> {
        const ACTION: &str = "acknowledging an alert";
        // Only an unacknowledged row changes, so two people acking at once get one
        // "acked" and one "already acked".
        let updated = alert::Entity::update_many()
            .col_expr(alert::Column::AckBy, Expr::value(by))
            .col_expr(alert::Column::AckAt, Expr::value(now()))
            .filter(alert::Column::Id.eq(id))
            .filter(alert::Column::AckBy.is_null())
            .exec(&self.conn)
            .await
            .during(&self.db, ACTION)?;
        Ok(match self.alert_get(id).await? {
            None => AckOutcome::Missing,
            Some(r) if updated.rows_affected == 1 => AckOutcome::Acked(r),
            Some(r) => AckOutcome::AlreadyAcked(r),
        })
    }

    async fn alert_notice_groups(&self) -> Result<Vec<NoticeGroup>> {
        let rows: Vec<(String, String, DateTime<Utc>, i64)> = alert_notice::Entity::find()
            .select_only()
            .column(alert_notice::Column::Route)
            .column(alert_notice::Column::GroupKey)
            .column_as(alert_notice::Column::CreatedAt.min(), "oldest")
            .column_as(alert_notice::Column::Id.count(), "count")
            .group_by(alert_notice::Column::Route)
            .group_by(alert_notice::Column::GroupKey)
            .into_tuple()
            .all(&self.conn)
            .await
            .during(&self.db, "listing pending alert notices")?;
        let mut groups: Vec<NoticeGroup> = rows
            .into_iter()
            .map(|(route, group_key, oldest, count)| NoticeGroup {
                route,
                group_key,
                oldest,
                count: u64::try_from(count).unwrap_or(0),
            })
            .collect();
        groups.sort_by_key(|g| g.oldest);
        Ok(groups)
    }

    async fn alert_notices(&self, route: &str, group_key: &str) -> Result<Vec<NoticeRecord>> {
        let rows = alert_notice::Entity::find()
            .filter(alert_notice::Column::Route.eq(route))
            .filter(alert_notice::Column::GroupKey.eq(group_key))
            .order_by_asc(alert_notice::Column::Id)
            .all(&self.conn)
            .await
            .during(&self.db, "reading pending alert notices")?;
        let mut ids: Vec<i64> = rows.iter().map(|n| n.alert_id).collect();
        ids.sort_unstable();
        ids.dedup();
        let alerts = alerts_by_id(&self.conn, &self.db, &ids).await?;
        Ok(rows
            .into_iter()
            .filter_map(|n| {
                // A notice whose alert row is gone has nothing left to announce.
                let alert = alerts.get(&n.alert_id)?.clone();
                Some(NoticeRecord {
                    id: n.id,
                    route: n.route,
                    group_key: n.group_key,
                    status: n.status,
                    created_at: n.created_at,
                    alert,
                })
            })
            .collect())
    }

    async fn alert_groups_schedule(&self, pending: &[PendingGroup]) -> Result<()> {
        let asks = Asks::from_pending(pending);
        let tx = self
            .conn
            .begin()
            .await
            .during(&self.db, "scheduling alert groups")?;
        asks.write(&tx, &self.db).await?;
        tx.commit()
            .await
            .during(&self.db, "scheduling alert groups")
    }

    async fn alert_groups_claim(
        &self,
        owner: &str,
        lease: Duration,
        limit: u64,
    ) -> Result<Vec<GroupClaim>> {
        groups::claim(&self.conn, &self.db, owner, lease, limit).await
    }

    async fn alert_group_defer(&self, claim: &GroupClaim, due: DateTime<Utc>) -> Result<bool> {
        groups::defer(&self.conn, &self.db, claim, due).await
    }

    async fn alert_notices_flush(
        &self,
        claim: &GroupClaim,
        done: &[i64],
        items: &[NewOutbox],
        group_interval: Duration,
    ) -> Result<GroupFlush> {
        // A flush racing an ingest of the same group can be MySQL's deadlock victim;
        // the transaction rolled back whole, so it is simply run again.
        rerun_if_unavailable(|| {
            groups::flush(&self.conn, &self.db, claim, done, items, group_interval)
        })
        .await
    }

    async fn alert_group_schedule(
        &self,
        route: &str,
        group_key: &str,
    ) -> Result<Option<GroupSchedule>> {
        groups::read(&self.conn, &self.db, route, group_key).await
    }

    async fn alert_group_schedules_prune(&self, before: DateTime<Utc>) -> Result<u64> {
        groups::prune(&self.conn, &self.db, before).await
    }

    async fn silence_insert(&self, s: &NewSilence) -> Result<i64> {
        Ok(alert_silence::Entity::insert(alert_silence::ActiveModel {
            id: NotSet,
            matcher: Set(s.matcher.clone()),
            created_by: Set(s.created_by.clone()),
            created_at: Set(now()),
            ends_at: Set(s.ends_at),
        })
        .exec(&self.conn)
        .await
        .during(&self.db, "storing a silence")?
        .last_insert_id)
    }

    async fn alert_resolutions(&self, id: i64, since: DateTime<Utc>) -> Result<u64> {
        alert_transition::Entity::find()
            .filter(alert_transition::Column::AlertId.eq(id))
            .filter(alert_transition::Column::Status.eq(RESOLVED))
            .filter(alert_transition::Column::At.gte(since))
            .count(&self.conn)
            .await
            .during(&self.db, "counting an alert's resolutions")
    }

    async fn alert_transitions_prune(&self, before: DateTime<Utc>) -> Result<u64> {
        delete_in_chunks::<alert_transition::Entity>(
            &self.conn,
            &self.db,
            "pruning alert status changes",
            sea_orm::Condition::all().add(alert_transition::Column::At.lt(before)),
            alert_transition::Column::At,
            alert_transition::Column::Id,
        )
        .await
    }

    async fn silences_active(&self, at: DateTime<Utc>) -> Result<Vec<SilenceRecord>> {
        Ok(alert_silence::Entity::find()
            .filter(alert_silence::Column::EndsAt.gt(at))
            .order_by_desc(alert_silence::Column::Id)
            .all(&self.conn)
            .await
            .during(&self.db, "reading silences")?
            .into_iter()
            .map(|m| SilenceRecord {
                id: m.id,
                matcher: m.matcher,
                created_by: m.created_by,
                created_at: m.created_at,
                ends_at: m.ends_at,
            })
            .collect())
    }
}

/// Runs `attempt` again, up to five times with a short growing pause, while it fails
/// with [`crate::StoreError::Unavailable`]: a deadlock victim is classified so (see
/// `sea/errors.rs`), and its transaction rolled back whole. The last result is returned.
async fn rerun_if_unavailable<T, F, Fut>(mut attempt: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T>>,
{
    let mut tries = 0u64;
    loop {
        match attempt().await {
            Err(e) if e.is_unavailable() && tries < 5 => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(10 * tries)).await;
            }
            other => return other,
        }
    }
}
