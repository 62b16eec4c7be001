//! Open-Falcon's alarm sender (falcon-plus `modules/alarm/cron/im_sender.go`,
//! PROTOCOLS.md §3): a form `tos=<a,b>&content=<falcon content>` posted to `api.im`
//! (some forks send the same as a GET query). The content format is
//!
//! `[P0][PROBLEM][host01][][cpu*cpu too high all(#3) cpu.idle  9.5<=10][O1 2017-06-15 10:20:00]`
//!
//! priority, status, endpoint, an empty field, `note func metric tags left op right`,
//! and `O<step> <time>` (the server's local time). Seed 002 prefixes the note with an
//! alarm type and `*` (`cpu*…`) to pick the WeCom app: that type becomes the label
//! `type`. Combined messages (falcon merges ≥ P2) are read too; anything else is kept
//! with `parse_error` set and goes to the default route.

use super::{split_people, ParseContext};
use crate::alert::{fingerprint, Alert, Source, Status};
use crate::{Error, Result};
use chrono::{NaiveDateTime, TimeZone, Utc};
use opsbot_core::form::parse_form;
use std::collections::BTreeMap;

const OPERATORS: [&str; 6] = ["==", "!=", "<=", ">=", "<", ">"];

/// The form (or query) of one request.
pub fn parse_request(body: &[u8], ctx: &ParseContext<'_>) -> Result<Vec<Alert>> {
    let body = std::str::from_utf8(body)
        .map_err(|_| Error::BadPayload("openfalcon: the form is not UTF-8".into()))?;
    let raw = if body.trim().is_empty() {
        ctx.query
    } else {
        body
    };
    let fields = parse_form(raw.trim()).ok_or_else(|| {
        Error::BadPayload("openfalcon: malformed form (a bad %-escape or not UTF-8)".into())
    })?;
    let content = fields
        .get("content")
        .filter(|c| !c.trim().is_empty())
        .ok_or_else(|| {
            Error::BadPayload(
                "openfalcon: missing form field content (Open-Falcon sends tos=…&content=…)".into(),
            )
        })?;
    let tos = fields
        .get("tos")
        .map(|t| split_people(t))
        .unwrap_or_default();
    Ok(vec![parse_content(content.trim(), tos, ctx)])
}

/// One falcon content string into an alert (never fails: see the module doc).
pub fn parse_content(content: &str, recipients: Vec<String>, ctx: &ParseContext<'_>) -> Alert {
    match parse_fields(content, ctx).or_else(|_| parse_combined(content)) {
        Ok(mut alert) => {
            alert.recipients = recipients;
            alert
        }
        Err(why) => Alert {
            source: Source::OpenFalcon,
            fingerprint: fingerprint(Source::OpenFalcon, &["unparsed", content]),
            status: Status::Firing,
            severity: String::new(),
            name: "无法解析的 Open-Falcon 告警".into(),
            summary: content.chars().take(500).collect(),
            endpoint: String::new(),
            metric: String::new(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::from([("content".to_string(), content.to_string())]),
            recipients,
            parse_error: Some(why),
            starts_at: Utc::now(),
            ends_at: None,
        },
    }
}

fn parse_fields(content: &str, ctx: &ParseContext<'_>) -> Result<Alert, String> {
    let inner = content
        .strip_prefix('[')
        .and_then(|c| c.strip_suffix(']'))
        .ok_or("content is not enclosed in [ ]")?;
    let parts: Vec<&str> = inner.split("][").collect();
    if parts.len() < 6 {
        return Err(format!(
            "expected 6 [..] fields (priority, status, endpoint, -, expression, step/time), found {}",
            parts.len()
        ));
    }
    // The note may contain "][": the expression is everything between field 3 and the last.
    let expression = parts[4..parts.len() - 1].join("][");
    let priority = parts[0];
    let level: u32 = priority
        .strip_prefix('P')
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("priority {priority:?} is not P<n>"))?;
    let status = match parts[1] {
        "PROBLEM" => Status::Firing,
        "OK" => Status::Resolved,
        other => return Err(format!("status {other:?} is neither PROBLEM nor OK")),
    };
    let endpoint = parts[2].to_string();
    let (note, func, metric, tags, left, op, right) = parse_expression(&expression)?;
    let (step, time) = parse_step(parts[parts.len() - 1], ctx)?;

    let mut labels: BTreeMap<String, String> = tags
        .split(',')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    // Seed 002: "cpu*CPU 使用率过高" → alarm type "cpu".
    let (kind, note_text) = match note.split_once('*') {
        Some((kind, rest)) if !kind.trim().is_empty() => (Some(kind.trim()), rest.trim()),
        _ => (None, note.trim()),
    };
    if let Some(kind) = kind {
        labels
            .entry("type".into())
            .or_insert_with(|| kind.to_string());
    }
    let annotations = BTreeMap::from([
        ("note".to_string(), note.to_string()),
        ("func".to_string(), func.to_string()),
        ("operator".to_string(), op.to_string()),
        ("left_value".to_string(), left.to_string()),
        ("right_value".to_string(), right.to_string()),
        ("step".to_string(), step.to_string()),
        ("priority".to_string(), level.to_string()),
        ("content".to_string(), content.to_string()),
    ]);
    let name = if note_text.is_empty() {
        metric.to_string()
    } else {
        note_text.to_string()
    };
    Ok(Alert {
        source: Source::OpenFalcon,
        fingerprint: fingerprint(
            Source::OpenFalcon,
            &[priority, &endpoint, metric, tags, func, op, right, note],
        ),
        status,
        severity: priority.to_string(),
        name,
        summary: format!("{metric} {func} {left}{op}{right}"),
        endpoint,
        metric: metric.to_string(),
        labels,
        annotations,
        recipients: Vec::new(),
        parse_error: None,
        starts_at: time,
        ends_at: (status == Status::Resolved).then_some(time),
    })
}

type Expression<'a> = (
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
    &'a str,
);

/// `note func metric tags left<op>right`, read from the right: the note and the tags
/// may hold spaces, the last token is the comparison and `func` looks like `all(#3)`.
fn parse_expression(expr: &str) -> Result<Expression<'_>, String> {
    let tokens: Vec<(usize, &str)> = token_spans(expr);
    let Some(&(_, comparison)) = tokens.last() else {
        return Err("empty expression".into());
    };
    let (at, op) = comparison
        .char_indices()
        .find_map(|(i, _)| {
            OPERATORS
                .iter()
                .find(|op| comparison[i..].starts_with(**op))
                .map(|op| (i, *op))
        })
        .ok_or_else(|| format!("no comparison (==, !=, <, <=, >, >=) in {comparison:?}"))?;
    let (left, right) = (&comparison[..at], &comparison[at + op.len()..]);
    let f = tokens[..tokens.len() - 1]
        .iter()
        .position(|(_, t)| t.contains("(#") && t.ends_with(')'))
        .ok_or("no function like all(#3) in the expression")?;
    let metric = tokens
        .get(f + 1)
        .filter(|_| f + 1 < tokens.len() - 1)
        .map(|(_, t)| *t)
        .ok_or("no metric after the function")?;
    let note = expr[..tokens[f].0].trim();
    let tags_start = tokens[f + 1].0 + metric.len();
    let tags = expr[tags_start..tokens[tokens.len() - 1].0].trim();
    Ok((note, tokens[f].1, metric, tags, left, op, right))
}

/// Whitespace-separated tokens with their byte offsets.
fn token_spans(s: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in s.char_indices() {
        match (c.is_whitespace(), start) {
            (true, Some(b)) => {
                out.push((b, &s[b..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(b) = start {
        out.push((b, &s[b..]));
    }
    out
}

fn parse_step(field: &str, ctx: &ParseContext<'_>) -> Result<(u32, chrono::DateTime<Utc>), String> {
    let (step, time) = field
        .split_once(' ')
        .ok_or_else(|| format!("{field:?} is not O<step> <time>"))?;
    let step: u32 = step
        .strip_prefix('O')
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| format!("step {step:?} is not O<n>"))?;
    let naive = NaiveDateTime::parse_from_str(time.trim(), "%Y-%m-%d %H:%M:%S")
        .map_err(|e| format!("time {time:?}: {e}"))?;
    let time = ctx
        .timezone
        .from_local_datetime(&naive)
        .single()
        .ok_or_else(|| format!("time {time:?} does not exist in the configured zone"))?
        .with_timezone(&Utc);
    Ok((step, time))
}

/// falcon's combiner (PROTOCOLS.md §3.2): `[P2][PROBLEM] 3 cpu.idle e.g. host01 <link>`
/// or `... e.g. host01. detail in email`.
fn parse_combined(content: &str) -> Result<Alert, String> {
    let rest = content.strip_prefix('[').ok_or("not a combined message")?;
    let (priority, rest) = rest.split_once("][").ok_or("not a combined message")?;
    let (status, rest) = rest.split_once("] ").ok_or("not a combined message")?;
    let status = match status {
        "PROBLEM" => Status::Firing,
        "OK" => Status::Resolved,
        _ => return Err("not a combined message".into()),
    };
    let mut words = rest.split_whitespace();
    let count: u32 = words
        .next()
        .and_then(|n| n.parse().ok())
        .ok_or("not a combined message")?;
    let metric = words.next().ok_or("not a combined message")?;
    let metric = metric.trim_end_matches('.');
    if words.next() != Some("e.g.") {
        return Err("not a combined message".into());
    }
    let endpoint = words
        .next()
        .ok_or("not a combined message")?
        .trim_end_matches('.');
    let link = words.find(|w| w.contains("/portal/links/")).unwrap_or("");
    let mut annotations = BTreeMap::from([
        ("count".to_string(), count.to_string()),
        ("content".to_string(), content.to_string()),
    ]);
    if !link.is_empty() {
        annotations.insert("url".into(), link.to_string());
    }
    Ok(Alert {
        source: Source::OpenFalcon,
        fingerprint: fingerprint(
            Source::OpenFalcon,
            &["combined", priority, metric, endpoint, link],
        ),
        status,
        severity: priority.to_string(),
        name: format!("{count} 条 {metric} 告警(合并)"),
        summary: format!("{count} 个 endpoint 的 {metric} 告警,例如 {endpoint}"),
        endpoint: endpoint.to_string(),
        metric: metric.to_string(),
        labels: BTreeMap::new(),
        annotations,
        recipients: Vec::new(),
        parse_error: None,
        starts_at: Utc::now(),
        ends_at: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;

    fn ctx() -> ParseContext<'static> {
        static EMPTY: std::sync::OnceLock<BTreeMap<String, String>> = std::sync::OnceLock::new();
        ParseContext {
            timezone: FixedOffset::east_opt(8 * 3600).unwrap(),
            zabbix_fields: EMPTY.get_or_init(BTreeMap::new),
            query: "",
        }
    }

    #[test]
    fn the_protocol_example() {
        let a = parse_content(
            "[P0][PROBLEM][host01][][cpu too high all(#3) cpu.idle  9.5<=10][O1 2017-06-15 10:20:00]",
            vec![],
            &ctx(),
        );
        assert_eq!(a.parse_error, None);
        assert_eq!(a.status, Status::Firing);
        assert_eq!(a.severity, "P0");
        assert_eq!(a.endpoint, "host01");
        assert_eq!(a.metric, "cpu.idle");
        assert_eq!(a.name, "cpu too high");
        assert_eq!(a.annotations["func"], "all(#3)");
        assert_eq!(a.annotations["left_value"], "9.5");
        assert_eq!(a.annotations["operator"], "<=");
        assert_eq!(a.annotations["right_value"], "10");
        assert_eq!(a.annotations["step"], "1");
        assert!(a.labels.is_empty());
        assert_eq!(a.starts_at.to_rfc3339(), "2017-06-15T02:20:00+00:00");
    }

    #[test]
    fn seed_002_alarm_type_tags_and_recovery() {
        let body = "tos=zhangsan,lisi&content=%5BP1%5D%5BOK%5D%5Bdb-01%5D%5B%5D%5Bdisk*%E7%A3%81%E7%9B%98%E5%BF%AB%E6%BB%A1+max(%233)+df.bytes.used.percent+fstype=ext4,mount=/data+95.12345>=90%5D%5BO3+2017-06-15+10:20:00%5D";
        let alerts = parse_request(body.as_bytes(), &ctx()).unwrap();
        let a = &alerts[0];
        assert_eq!(a.parse_error, None, "{a:?}");
        assert_eq!(a.status, Status::Resolved);
        assert_eq!(a.recipients, ["zhangsan", "lisi"]);
        assert_eq!(a.labels["type"], "disk");
        assert_eq!(a.labels["mount"], "/data");
        assert_eq!(a.labels["fstype"], "ext4");
        assert_eq!(a.name, "磁盘快满");
        assert_eq!(a.metric, "df.bytes.used.percent");
        assert_eq!(a.annotations["left_value"], "95.12345");
        assert_eq!(a.annotations["operator"], ">=");
        assert_eq!(a.annotations["step"], "3");
        // The PROBLEM of the same strategy has the same fingerprint.
        let firing = parse_content(
            "[P1][PROBLEM][db-01][][disk*磁盘快满 max(#3) df.bytes.used.percent fstype=ext4,mount=/data 97>=90][O1 2017-06-15 10:18:00]",
            vec![],
            &ctx(),
        );
        assert_eq!(firing.fingerprint, a.fingerprint);
    }

    #[test]
    fn get_query_and_missing_fields() {
        let ctx = ParseContext {
            query: "tos=ops&content=%5BP2%5D%5BPROBLEM%5D%5Bweb%5D%5B%5D%5Bload+all(%231)+load.1min++12>10%5D%5BO1+2017-06-15+10:20:00%5D",
            ..ctx()
        };
        let a = &parse_request(b"", &ctx).unwrap()[0];
        assert_eq!(a.parse_error, None);
        assert_eq!(a.metric, "load.1min");
        let e = parse_request(b"tos=a", &ParseContext { query: "", ..ctx }).unwrap_err();
        assert!(e.to_string().contains("content"), "{e}");
    }

    #[test]
    fn unparseable_content_is_kept() {
        let a = parse_content("磁盘坏了 [P0]", vec!["ops".into()], &ctx());
        assert!(a.parse_error.is_some());
        assert_eq!(a.status, Status::Firing);
        assert_eq!(a.annotations["content"], "磁盘坏了 [P0]");
        assert_eq!(a.recipients, ["ops"]);
        for bad in [
            "[P0][PROBLEM][h][][no function here 1>2][O1 2017-06-15 10:20:00]",
            "[PX][PROBLEM][h][][n all(#3) m 1>2][O1 2017-06-15 10:20:00]",
            "[P0][MAYBE][h][][n all(#3) m 1>2][O1 2017-06-15 10:20:00]",
            "[P0][PROBLEM][h][][n all(#3) m 1>2][O1 yesterday]",
            "[P0][PROBLEM][h][][n all(#3) m 12][O1 2017-06-15 10:20:00]",
        ] {
            assert!(
                parse_content(bad, vec![], &ctx()).parse_error.is_some(),
                "{bad}"
            );
        }
    }

    #[test]
    fn combined_messages() {
        let a = parse_content(
            "[P2][PROBLEM] 3 cpu.idle e.g. host01 http://falcon/portal/links/abc ",
            vec![],
            &ctx(),
        );
        assert_eq!(a.parse_error, None);
        assert_eq!(a.endpoint, "host01");
        assert_eq!(a.annotations["count"], "3");
        let b = parse_content(
            "[P3][PROBLEM] 5 mem.used.  e.g. db-02. detail in email",
            vec![],
            &ctx(),
        );
        assert_eq!(b.parse_error, None, "{b:?}");
        assert_eq!(b.metric, "mem.used");
        assert_eq!(b.endpoint, "db-02");
    }
}
