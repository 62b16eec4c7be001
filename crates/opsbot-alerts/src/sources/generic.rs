//! The generic JSON endpoint, for scripts and anything without a native format:
//!
//! ```json
//! {"alerts": [{"name": "DiskFull", "status": "firing", "severity": "critical",
//!   "endpoint": "db-01", "metric": "disk.used", "summary": "磁盘使用率 95%",
//!   "labels": {"team": "dba"}, "annotations": {"runbook": "…"}, "value": 95,
//!   "to": ["zhangsan"], "fingerprint": "optional", "starts_at": "RFC 3339",
//!   "ends_at": "RFC 3339", "url": "…"}]}
//! ```
//!
//! A single alert object or a bare array are accepted too. `name` (or `summary`) is
//! required; `status` defaults to firing; without `fingerprint` one is computed from
//! name, endpoint, metric and labels.

use super::{json_body, people, text};
use crate::alert::{fingerprint, Alert, Source, Status};
use crate::{Error, Result};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

pub fn parse(body: &[u8]) -> Result<Vec<Alert>> {
    let value = json_body(Source::Generic, body)?;
    let items = match value {
        Value::Array(items) => items,
        Value::Object(mut obj) => match obj.remove("alerts") {
            Some(Value::Array(items)) => items,
            Some(_) => {
                return Err(Error::BadPayload(
                    "generic: \"alerts\" must be an array of alert objects".into(),
                ))
            }
            None => vec![Value::Object(obj)],
        },
        _ => {
            return Err(Error::BadPayload(
                "generic: expected {\"alerts\": [...]}, an alert object or an array".into(),
            ))
        }
    };
    if items.is_empty() {
        return Err(Error::BadPayload("generic: no alerts in the body".into()));
    }
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let Value::Object(obj) = item else {
                return Err(Error::BadPayload(format!(
                    "generic: alerts[{i}] is not an object"
                )));
            };
            one(i, obj)
        })
        .collect()
}

fn map(value: Option<&Value>) -> BTreeMap<String, String> {
    match value {
        Some(Value::Object(m)) => m.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
        _ => BTreeMap::new(),
    }
}

fn one(i: usize, obj: &Map<String, Value>) -> Result<Alert> {
    let field = |k: &str| {
        obj.get(k)
            .map(text)
            .map(|s| s.trim().to_string())
            .unwrap_or_default()
    };
    let bad = |why: String| Error::BadPayload(format!("generic: alerts[{i}]: {why}"));
    let name = match (field("name"), field("summary")) {
        (n, _) if !n.is_empty() => n,
        (_, s) if !s.is_empty() => s,
        _ => return Err(bad("\"name\" (or \"summary\") is required".into())),
    };
    let status = match obj.get("status") {
        None => Status::Firing,
        Some(v) => Status::parse(&text(v))
            .ok_or_else(|| bad(format!("status {} is neither firing nor resolved", v)))?,
    };
    let time = |k: &str| -> Result<Option<DateTime<Utc>>> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => DateTime::parse_from_rfc3339(&text(v))
                .map(|t| Some(t.with_timezone(&Utc)))
                .map_err(|e| bad(format!("{k} {v} is not an RFC 3339 time: {e}"))),
        }
    };
    let labels = map(obj.get("labels"));
    let mut annotations = map(obj.get("annotations"));
    for k in ["value", "url"] {
        if obj.contains_key(k) {
            annotations.insert(k.into(), field(k));
        }
    }
    let (endpoint, metric) = (field("endpoint"), field("metric"));
    let fp = match field("fingerprint") {
        f if !f.is_empty() => format!("generic:{f}"),
        _ => {
            let flat: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
            let mut parts = vec![name.as_str(), endpoint.as_str(), metric.as_str()];
            parts.extend(flat.iter().map(String::as_str));
            fingerprint(Source::Generic, &parts)
        }
    };
    let summary = match field("summary") {
        s if s.is_empty() => name.clone(),
        s => s,
    };
    let ends_at = time("ends_at")?;
    Ok(Alert {
        source: Source::Generic,
        fingerprint: fp,
        status,
        severity: field("severity"),
        name,
        summary,
        endpoint,
        metric,
        labels,
        annotations,
        recipients: people(obj.get("to")),
        parse_error: None,
        starts_at: time("starts_at")?.unwrap_or_else(Utc::now),
        ends_at: ends_at.or_else(|| (status == Status::Resolved).then(Utc::now)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_shapes() {
        let body = r#"{"alerts":[{"name":"DiskFull","severity":"critical","endpoint":"db-01","labels":{"team":"dba","n":3},"value":95,"to":"zhangsan|lisi"},{"summary":"备份失败","status":"resolved","fingerprint":"backup-1"}]}"#;
        let a = parse(body.as_bytes()).unwrap();
        assert_eq!(a.len(), 2);
        assert_eq!(a[0].status, Status::Firing);
        assert_eq!(a[0].labels["n"], "3");
        assert_eq!(a[0].annotations["value"], "95");
        assert_eq!(a[0].recipients, ["zhangsan", "lisi"]);
        assert_eq!(a[1].name, "备份失败");
        assert_eq!(a[1].fingerprint, "generic:backup-1");
        assert!(a[1].ends_at.is_some());
        let single = parse(br#"{"name":"X","starts_at":"2026-11-30T10:00:00+08:00"}"#).unwrap();
        assert_eq!(
            single[0].starts_at.to_rfc3339(),
            "2026-11-30T02:00:00+00:00"
        );
        assert_eq!(
            single[0].fingerprint,
            parse(br#"[{"name":"X"}]"#).unwrap()[0].fingerprint
        );
    }

    #[test]
    fn bad_bodies_say_what_is_wrong() {
        for (body, needle) in [
            (&b"not json"[..], "not valid JSON"),
            (b"{\"alerts\":[]}", "no alerts"),
            (b"{\"alerts\":{}}", "array"),
            (b"[{\"severity\":\"x\"}]", "name"),
            (b"[{\"name\":\"x\",\"status\":\"odd\"}]", "status"),
            (
                b"[{\"name\":\"x\",\"starts_at\":\"yesterday\"}]",
                "RFC 3339",
            ),
            (b"[1]", "not an object"),
            (b"42", "expected"),
        ] {
            let e = parse(body).unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
    }
}
