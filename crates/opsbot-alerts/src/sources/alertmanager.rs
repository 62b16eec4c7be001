//! Prometheus Alertmanager's webhook (`webhook_configs`, payload version 4,
//! PROTOCOLS.md §4.1): a group of alerts, each firing or resolved with its own
//! fingerprint. Unknown fields are tolerated (newer versions add some). When
//! Alertmanager cut the list (`max_alerts`), a synthetic alert says how many are
//! missing, so nobody mistakes the message for the whole story.

use super::json_body;
use crate::alert::{fingerprint, Alert, Source, Status};
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Message {
    #[serde(default)]
    version: String,
    #[serde(default)]
    receiver: String,
    #[serde(default)]
    group_key: String,
    #[serde(default)]
    external_url: String,
    #[serde(default)]
    truncated_alerts: u64,
    alerts: Vec<WireAlert>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct WireAlert {
    status: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    starts_at: Option<String>,
    #[serde(default)]
    ends_at: Option<String>,
    #[serde(default, rename = "generatorURL")]
    generator_url: String,
    #[serde(default)]
    fingerprint: String,
}

/// RFC 3339, with Go's zero time (`0001-01-01T00:00:00Z`) meaning "not set".
fn time(s: Option<&str>) -> Option<DateTime<Utc>> {
    let t = DateTime::parse_from_rfc3339(s?).ok()?.with_timezone(&Utc);
    (t.timestamp() > 0).then_some(t)
}

pub fn parse(body: &[u8]) -> Result<Vec<Alert>> {
    let value = json_body(Source::Alertmanager, body)?;
    let msg: Message = serde_json::from_value(value).map_err(|e| {
        Error::BadPayload(format!(
            "alertmanager: not a webhook payload (version 4 with an alerts list): {e}"
        ))
    })?;
    if !msg.version.is_empty() && msg.version != "4" {
        tracing::warn!(version = %msg.version, "Alertmanager webhook version is not 4; reading it as 4");
    }
    let mut out = Vec::with_capacity(msg.alerts.len() + 1);
    for (i, a) in msg.alerts.into_iter().enumerate() {
        let status = Status::parse(&a.status).ok_or_else(|| {
            Error::BadPayload(format!(
                "alertmanager: alerts[{i}].status {:?} is neither firing nor resolved",
                a.status
            ))
        })?;
        let label = |k: &str| a.labels.get(k).cloned().unwrap_or_default();
        let name = a
            .labels
            .get("alertname")
            .cloned()
            .unwrap_or_else(|| "Alertmanager".into());
        let summary = a
            .annotations
            .get("summary")
            .or_else(|| a.annotations.get("description"))
            .or_else(|| a.annotations.get("message"))
            .cloned()
            .unwrap_or_else(|| name.clone());
        let endpoint = ["instance", "host", "hostname", "node"]
            .iter()
            .map(|k| label(k))
            .find(|v| !v.is_empty())
            .unwrap_or_default();
        let fp = if a.fingerprint.is_empty() {
            let flat: Vec<String> = a.labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let parts: Vec<&str> = flat.iter().map(String::as_str).collect();
            fingerprint(Source::Alertmanager, &parts)
        } else {
            format!("alertmanager:{}", a.fingerprint)
        };
        let mut annotations = a.annotations.clone();
        if !a.generator_url.is_empty() {
            annotations.insert("url".into(), a.generator_url.clone());
        }
        if !msg.receiver.is_empty() {
            annotations.insert("receiver".into(), msg.receiver.clone());
        }
        let starts_at = time(a.starts_at.as_deref()).unwrap_or_else(Utc::now);
        let ends_at = match status {
            Status::Resolved => Some(time(a.ends_at.as_deref()).unwrap_or_else(Utc::now)),
            Status::Firing => None,
        };
        out.push(Alert {
            source: Source::Alertmanager,
            fingerprint: fp,
            status,
            severity: label("severity"),
            name,
            summary,
            endpoint,
            metric: label("metric"),
            labels: a.labels,
            annotations,
            recipients: Vec::new(),
            parse_error: None,
            starts_at,
            ends_at,
        });
    }
    if msg.truncated_alerts > 0 {
        out.push(Alert {
            source: Source::Alertmanager,
            fingerprint: fingerprint(Source::Alertmanager, &["truncated", &msg.group_key]),
            status: Status::Firing,
            severity: "warning".into(),
            name: "AlertmanagerTruncated".into(),
            summary: format!(
                "Alertmanager 截断了 {} 条告警(max_alerts),请在 {} 查看完整列表",
                msg.truncated_alerts,
                if msg.external_url.is_empty() {
                    "Alertmanager"
                } else {
                    &msg.external_url
                }
            ),
            endpoint: String::new(),
            metric: String::new(),
            labels: BTreeMap::from([("group_key".to_string(), msg.group_key.clone())]),
            annotations: BTreeMap::from([(
                "truncated_alerts".to_string(),
                msg.truncated_alerts.to_string(),
            )]),
            recipients: Vec::new(),
            parse_error: None,
            starts_at: Utc::now(),
            ends_at: None,
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capture(name: &str) -> Vec<u8> {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
    }

    #[test]
    fn real_alertmanager_0_25_captures() {
        let firing = parse(&capture("alertmanager_webhook_raw_firing.json")).unwrap();
        assert_eq!(firing.len(), 1);
        let a = &firing[0];
        assert_eq!(a.status, Status::Firing);
        assert_eq!(a.name, "HighCPU");
        assert_eq!(a.severity, "critical");
        assert_eq!(a.endpoint, "web-01:9100");
        assert_eq!(a.summary, "CPU > 90% on web-01");
        assert_eq!(a.fingerprint, "alertmanager:6df799a0f3897f3a");
        assert_eq!(a.ends_at, None, "Go zero time is unset");
        assert_eq!(
            a.annotations["url"],
            "http://prometheus.local/graph?g0.expr=cpu"
        );
        let resolved = parse(&capture("alertmanager_webhook_raw_resolved.json")).unwrap();
        assert_eq!(resolved[0].status, Status::Resolved);
        assert_eq!(resolved[0].fingerprint, a.fingerprint);
        assert_eq!(
            resolved[0].ends_at.unwrap().to_rfc3339(),
            "2026-11-22T01:48:57+00:00"
        );
    }

    #[test]
    fn truncation_and_bad_payloads() {
        let body = br#"{"version":"4","groupKey":"{}:{a=\"b\"}","truncatedAlerts":7,"alerts":[{"status":"firing","labels":{"alertname":"X"},"startsAt":"2026-11-22T01:48:56.123+08:00","newField":1}],"future":true}"#;
        let alerts = parse(body).unwrap();
        assert_eq!(alerts.len(), 2);
        assert_eq!(
            alerts[0].starts_at.to_rfc3339(),
            "2026-11-21T17:48:56.123+00:00"
        );
        assert!(
            alerts[0].fingerprint.starts_with("alertmanager:"),
            "computed from labels"
        );
        assert!(alerts[1].summary.contains("7 条"));
        for bad in [
            &b"{"[..],
            b"[]",
            br#"{"version":"4"}"#,
            br#"{"alerts":[{"status":"maybe"}]}"#,
        ] {
            let e = parse(bad).unwrap_err();
            assert_eq!(e.status(), 400, "{e}");
        }
    }
}
