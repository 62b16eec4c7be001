//! `labelSelector` and `fieldSelector` query parameters.

use serde_json::Value;

use super::status::ApiError;

#[derive(Debug, Clone)]
enum Req {
    Eq(String, String),
    Ne(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    NotExists(String),
}

/// A parsed selector; the empty selector matches everything.
#[derive(Debug, Clone, Default)]
pub(crate) struct Selector {
    labels: Vec<Req>,
    fields: Vec<Req>,
}

/// Splits on commas outside parentheses.
fn split_terms(s: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let (mut depth, mut start) = (0, 0);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                out.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[start..]);
    out.into_iter()
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .collect()
}

fn set_values(s: &str) -> Vec<String> {
    s.trim()
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(',')
        .map(|v| v.trim().to_string())
        .filter(|v| !v.is_empty())
        .collect()
}

fn parse_label_term(t: &str) -> Result<Req, ApiError> {
    let bad = || ApiError::bad_request(format!("unable to parse requirement: {t}"));
    if let Some(k) = t.strip_prefix('!') {
        return Ok(Req::NotExists(k.trim().to_string()));
    }
    if let Some((k, v)) = t.split_once("!=") {
        return Ok(Req::Ne(k.trim().into(), v.trim().into()));
    }
    if let Some((k, v)) = t.split_once("==") {
        return Ok(Req::Eq(k.trim().into(), v.trim().into()));
    }
    if let Some((k, v)) = t.split_once('=') {
        return Ok(Req::Eq(k.trim().into(), v.trim().into()));
    }
    if let Some((k, v)) = t.split_once(" notin ") {
        return Ok(Req::NotIn(k.trim().into(), set_values(v)));
    }
    if let Some((k, v)) = t.split_once(" in ") {
        return Ok(Req::In(k.trim().into(), set_values(v)));
    }
    if t.contains(' ') || t.contains('(') {
        return Err(bad());
    }
    Ok(Req::Exists(t.to_string()))
}

fn parse_field_term(t: &str) -> Result<Req, ApiError> {
    if let Some((k, v)) = t.split_once("!=") {
        return Ok(Req::Ne(k.trim().into(), v.trim().into()));
    }
    if let Some((k, v)) = t.split_once("==") {
        return Ok(Req::Eq(k.trim().into(), v.trim().into()));
    }
    if let Some((k, v)) = t.split_once('=') {
        return Ok(Req::Eq(k.trim().into(), v.trim().into()));
    }
    Err(ApiError::bad_request(format!(
        "invalid selector: '{t}'; can't understand '{t}'"
    )))
}

/// Fields a real server lets clients select on, per resource; others are refused.
const FIELDS: [&str; 9] = [
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "status.phase",
    "involvedObject.name",
    "involvedObject.kind",
    "involvedObject.namespace",
    "involvedObject.uid",
    "reason",
];

impl Selector {
    pub(crate) fn parse(labels: Option<&str>, fields: Option<&str>) -> Result<Self, ApiError> {
        let labels = split_terms(labels.unwrap_or(""))
            .into_iter()
            .map(parse_label_term)
            .collect::<Result<Vec<_>, _>>()?;
        let fields = split_terms(fields.unwrap_or(""))
            .into_iter()
            .map(parse_field_term)
            .collect::<Result<Vec<_>, _>>()?;
        for f in &fields {
            let (Req::Eq(k, _) | Req::Ne(k, _)) = f else {
                continue;
            };
            if !FIELDS.contains(&k.as_str()) {
                return Err(ApiError::bad_request(format!(
                    "field label not supported: {k}"
                )));
            }
        }
        Ok(Selector { labels, fields })
    }

    pub(crate) fn matches(&self, obj: &Value) -> bool {
        let labels = &obj["metadata"]["labels"];
        let label = |k: &str| labels.get(k).and_then(Value::as_str);
        let field = |k: &str| {
            let mut v = obj;
            for part in k.split('.') {
                v = &v[part];
            }
            match v {
                Value::String(s) => Some(s.as_str()),
                _ => Some(""),
            }
        };
        self.labels.iter().all(|r| check(r, &label)) && self.fields.iter().all(|r| check(r, &field))
    }
}

fn check<'a>(r: &Req, get: &impl Fn(&str) -> Option<&'a str>) -> bool {
    match r {
        Req::Eq(k, v) => get(k) == Some(v.as_str()),
        Req::Ne(k, v) => get(k) != Some(v.as_str()),
        Req::In(k, vs) => get(k).is_some_and(|x| vs.iter().any(|v| v == x)),
        Req::NotIn(k, vs) => get(k).is_none_or(|x| vs.iter().all(|v| v != x)),
        Req::Exists(k) => get(k).is_some(),
        Req::NotExists(k) => get(k).is_none(),
    }
}

/// `app=web,tier=x` from a `matchLabels` map, as kubectl and the Scale status show it.
pub(crate) fn match_labels_string(labels: &Value) -> String {
    labels
        .as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}
