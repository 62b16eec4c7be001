//! Zabbix's webhook media type (PROTOCOLS.md §5): a JavaScript script posts the media
//! type's parameters as a JSON object. There is no fixed wire format, so every field
//! is looked up under a configurable key (`[alerts.sources.zabbix.fields]`), defaulting
//! to the parameter names of the usual script: `to`, `subject`, `message`, `event_id`,
//! `event_value` (1 problem, 0 recovery), `event_severity`, `event_update_status`,
//! `host`, `trigger_id`, `event_tags`, `url`. Macros Zabbix could not resolve arrive
//! literally (`{EVENT.RECOVERY.ID}`) and count as absent.

use super::{json_body, people, text};
use crate::alert::{fingerprint, Alert, Source, Status};
use crate::{Error, Result};
use chrono::Utc;
use serde_json::Value;
use std::collections::BTreeMap;

/// Our fields and the default parameter names.
pub const FIELDS: [(&str, &str); 11] = [
    ("to", "to"),
    ("subject", "subject"),
    ("message", "message"),
    ("event_id", "event_id"),
    ("event_value", "event_value"),
    ("severity", "event_severity"),
    ("update", "event_update_status"),
    ("host", "host"),
    ("trigger_id", "trigger_id"),
    ("tags", "event_tags"),
    ("url", "url"),
];

pub fn parse(body: &[u8], overrides: &BTreeMap<String, String>) -> Result<Vec<Alert>> {
    let Value::Object(obj) = json_body(Source::Zabbix, body)? else {
        return Err(Error::BadPayload(
            "zabbix: the body must be a JSON object of the media type's parameters".into(),
        ));
    };
    let key = |field: &str| -> String {
        overrides.get(field).cloned().unwrap_or_else(|| {
            FIELDS
                .iter()
                .find(|(f, _)| *f == field)
                .map(|(_, k)| k.to_string())
                .unwrap_or_else(|| field.to_string())
        })
    };
    let get = |field: &str| -> Option<String> {
        obj.get(&key(field))
            .map(text)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty() && !is_macro(s))
    };
    let subject = get("subject");
    let message = get("message");
    if subject.is_none() && message.is_none() {
        return Err(Error::BadPayload(format!(
            "zabbix: neither {:?} nor {:?} is set; map the script's parameters with [alerts.sources.zabbix.fields]",
            key("subject"),
            key("message")
        )));
    }
    let status = match get("event_value") {
        None => Status::Firing,
        Some(v) => Status::parse(&v).ok_or_else(|| {
            Error::BadPayload(format!(
                "zabbix: {:?} = {v:?} is neither 1 (problem) nor 0 (recovery)",
                key("event_value")
            ))
        })?,
    };
    let host = get("host").unwrap_or_default();
    let fp = match (get("event_id"), get("trigger_id")) {
        (Some(event), _) => format!("zabbix:event:{event}"),
        (None, Some(trigger)) => fingerprint(Source::Zabbix, &["trigger", &trigger, &host]),
        (None, None) => fingerprint(Source::Zabbix, &[subject.as_deref().unwrap_or(""), &host]),
    };
    let labels = tags(obj.get(&key("tags")));
    let used: Vec<String> = FIELDS.iter().map(|(f, _)| key(f)).collect();
    let mut annotations: BTreeMap<String, String> = obj
        .iter()
        .filter(|(k, _)| !used.contains(k))
        .map(|(k, v)| (k.clone(), text(v)))
        .filter(|(_, v)| !v.is_empty() && !is_macro(v))
        .collect();
    for field in ["event_id", "trigger_id", "url", "update"] {
        if let Some(v) = get(field) {
            annotations.insert(field.into(), v);
        }
    }
    let name = subject
        .clone()
        .or_else(|| message.clone())
        .unwrap_or_default();
    let now = Utc::now();
    Ok(vec![Alert {
        source: Source::Zabbix,
        fingerprint: fp,
        status,
        severity: get("severity").unwrap_or_default(),
        name,
        summary: message.or(subject).unwrap_or_default(),
        endpoint: host,
        metric: String::new(),
        labels,
        annotations,
        recipients: people(obj.get(&key("to"))),
        parse_error: None,
        starts_at: now,
        ends_at: (status == Status::Resolved).then_some(now),
    }])
}

/// `{EVENT.X}`-style text is an unresolved macro.
fn is_macro(s: &str) -> bool {
    s.starts_with('{') && s.ends_with('}') && !s.contains(' ') && !s.contains('"')
}

/// `{EVENT.TAGSJSON}` (`[{"tag":"a","value":"b"}]`, as an array or a JSON string) or
/// `{EVENT.TAGS}` (`a:b, c:d`).
fn tags(value: Option<&Value>) -> BTreeMap<String, String> {
    let from_array = |items: &[Value]| -> BTreeMap<String, String> {
        items
            .iter()
            .filter_map(|t| {
                Some((
                    text(t.get("tag")?),
                    t.get("value").map(text).unwrap_or_default(),
                ))
            })
            .collect()
    };
    match value {
        Some(Value::Array(items)) => from_array(items),
        Some(Value::String(s)) => match serde_json::from_str::<Value>(s) {
            Ok(Value::Array(items)) => from_array(&items),
            _ if is_macro(s.trim()) => BTreeMap::new(),
            _ => s
                .split(',')
                .filter_map(|kv| {
                    let (k, v) = kv.split_once(':').unwrap_or((kv, ""));
                    let k = k.trim();
                    (!k.is_empty()).then(|| (k.to_string(), v.trim().to_string()))
                })
                .collect(),
        },
        _ => BTreeMap::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the usual Zabbix 6 webhook script posts for a problem and its recovery
    /// (parameters as in PROTOCOLS.md §5, macros expanded by Zabbix).
    const PROBLEM: &str = r#"{"to":"zhangsan,lisi","subject":"Problem: High CPU utilization (over 90% for 5m)","message":"Problem started at 10:20:00 on 2026.11.30\r\nProblem name: High CPU utilization\r\nHost: web-01\r\nSeverity: High\r\nOperational data: Current utilization: 97.3 %\r\nOriginal problem ID: 4711","event_id":"4711","event_value":"1","event_severity":"High","event_update_status":"0","host":"web-01","trigger_id":"23456","event_source":"0","event_tags":"[{\"tag\":\"scope\",\"value\":\"performance\"},{\"tag\":\"component\",\"value\":\"cpu\"}]","url":"{$ZABBIX.URL}"}"#;
    const RECOVERY: &str = r#"{"to":"zhangsan,lisi","subject":"Resolved in 5m: High CPU utilization (over 90% for 5m)","message":"Problem has been resolved at 10:25:00 on 2026.11.30","event_id":"4711","event_value":"0","event_severity":"High","event_update_status":"0","host":"web-01","trigger_id":"23456","event_source":"0","event_tags":"[{\"tag\":\"scope\",\"value\":\"performance\"}]","url":"{$ZABBIX.URL}","event_recovery_id":"4712"}"#;

    #[test]
    fn problem_and_recovery_pair_up() {
        let p = &parse(PROBLEM.as_bytes(), &BTreeMap::new()).unwrap()[0];
        assert_eq!(p.status, Status::Firing);
        assert_eq!(p.severity, "High");
        assert_eq!(p.endpoint, "web-01");
        assert_eq!(p.recipients, ["zhangsan", "lisi"]);
        assert_eq!(p.labels["component"], "cpu");
        assert!(p.name.starts_with("Problem: High CPU"));
        assert!(
            !p.annotations.contains_key("url"),
            "unresolved macro dropped"
        );
        assert_eq!(p.annotations["event_source"], "0");
        let r = &parse(RECOVERY.as_bytes(), &BTreeMap::new()).unwrap()[0];
        assert_eq!(r.status, Status::Resolved);
        assert_eq!(r.fingerprint, p.fingerprint);
        assert_eq!(r.annotations["event_recovery_id"], "4712");
    }

    #[test]
    fn fields_can_be_mapped_and_errors_are_clear() {
        let custom = BTreeMap::from([
            ("subject".to_string(), "title".to_string()),
            ("host".to_string(), "hostname".to_string()),
            ("tags".to_string(), "tags".to_string()),
        ]);
        let body = br#"{"title":"Disk full","hostname":"db-01","tags":"team:dba, env:prod"}"#;
        let a = &parse(body, &custom).unwrap()[0];
        assert_eq!(
            (a.name.as_str(), a.endpoint.as_str()),
            ("Disk full", "db-01")
        );
        assert_eq!(a.labels["team"], "dba");
        assert_eq!(a.status, Status::Firing);
        let e = parse(br#"{"host":"x"}"#, &BTreeMap::new()).unwrap_err();
        assert!(e.to_string().contains("subject"), "{e}");
        assert_eq!(parse(b"[1]", &BTreeMap::new()).unwrap_err().status(), 400);
        let e = parse(br#"{"subject":"x","event_value":"7"}"#, &BTreeMap::new()).unwrap_err();
        assert!(e.to_string().contains("event_value"), "{e}");
    }
}
