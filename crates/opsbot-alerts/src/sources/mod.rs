//! The ingest formats. Each parser turns one request body into alerts, or says why
//! it cannot (HTTP 400). Open-Falcon content that does not follow the falcon format is
//! kept as an alert with `parse_error` set instead of being refused, so a new sender
//! format is never silently dropped.

pub mod alertmanager;
pub mod generic;
pub mod openfalcon;
pub mod zabbix;

use crate::alert::{Alert, Source};
use crate::Result;
use chrono::FixedOffset;
use std::collections::BTreeMap;

/// What a parser may need besides the body.
#[derive(Debug, Clone)]
pub struct ParseContext<'a> {
    /// Open-Falcon formats times in its server's local zone.
    pub timezone: FixedOffset,
    /// Zabbix: our field name → the key the media-type script uses.
    pub zabbix_fields: &'a BTreeMap<String, String>,
    /// The raw query string (Open-Falcon may send GET with a query).
    pub query: &'a str,
}

/// Reads `body` as `source` sends it.
pub fn parse(source: Source, body: &[u8], ctx: &ParseContext<'_>) -> Result<Vec<Alert>> {
    match source {
        Source::OpenFalcon => openfalcon::parse_request(body, ctx),
        Source::Alertmanager => alertmanager::parse(body),
        Source::Zabbix => zabbix::parse(body, ctx.zabbix_fields),
        Source::Generic => generic::parse(body),
    }
}

/// A JSON body, or a clear 400.
pub(crate) fn json_body(source: Source, body: &[u8]) -> Result<serde_json::Value> {
    serde_json::from_slice(body)
        .map_err(|e| crate::Error::BadPayload(format!("{source}: the body is not valid JSON: {e}")))
}

/// A JSON value as text: strings as they are, others in JSON notation.
pub(crate) fn text(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => s.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A list of people written `a,b` / `a|b` / `a b` / `["a","b"]`.
pub(crate) fn people(value: Option<&serde_json::Value>) -> Vec<String> {
    match value {
        Some(serde_json::Value::Array(items)) => items
            .iter()
            .map(text)
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect(),
        Some(v) => split_people(&text(v)),
        None => Vec::new(),
    }
}

pub(crate) fn split_people(s: &str) -> Vec<String> {
    s.split(|c: char| c == ',' || c == '|' || c == ';' || c.is_whitespace())
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect()
}
