//! Recent events of a namespace or of one object in it, newest first.

use crate::cluster::Cluster;
use crate::error::Error;
use crate::pool::model::to_chrono;
use chrono::{DateTime, Utc};
use k8s_openapi::api::core::v1::Event;
use kube::api::ListParams;
use kube::Api;
use serde::Serialize;

/// How many events 事件 shows.
pub const EVENTS_SHOWN: usize = 15;

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct EventRow {
    pub at: Option<DateTime<Utc>>,
    /// `Normal` or `Warning`.
    pub kind: String,
    pub reason: String,
    /// `Deployment/web`.
    pub object: String,
    pub message: String,
    pub count: i32,
}

/// Events in `ns` (of the object named `object` only, when given), newest first.
pub async fn events(
    cluster: &Cluster,
    ns: &str,
    object: Option<&str>,
) -> Result<Vec<EventRow>, Error> {
    let mut params = ListParams::default();
    if let Some(o) = object {
        params = params.fields(&format!("involvedObject.name={o}"));
    }
    let list = Api::<Event>::namespaced(cluster.client.clone(), ns)
        .list(&params)
        .await?;
    let mut rows: Vec<EventRow> = list
        .items
        .into_iter()
        .map(|e| {
            let at = e
                .last_timestamp
                .as_ref()
                .map(to_chrono)
                .or_else(|| {
                    e.event_time.as_ref().map(|t| {
                        to_chrono(&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(t.0))
                    })
                })
                .or_else(|| e.first_timestamp.as_ref().map(to_chrono))
                .or_else(|| e.metadata.creation_timestamp.as_ref().map(to_chrono));
            EventRow {
                at,
                kind: e.type_.unwrap_or_else(|| "Normal".into()),
                reason: e.reason.unwrap_or_default(),
                object: format!(
                    "{}/{}",
                    e.involved_object.kind.unwrap_or_default(),
                    e.involved_object.name.unwrap_or_default()
                ),
                message: e.message.unwrap_or_default(),
                count: e.count.unwrap_or(1),
            }
        })
        .collect();
    rows.sort_by_key(|r| std::cmp::Reverse(r.at));
    rows.truncate(EVENTS_SHOWN);
    Ok(rows)
}
