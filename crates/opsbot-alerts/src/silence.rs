//! Silences (`静默:匹配,时长`): while one is active, matching alerts are stored and
//! listed but announce nothing. A matcher is `key=glob` pairs joined by `&` (keys:
//! `name`, `endpoint`, `metric`, `severity`, `source`, `fingerprint` or any label), or
//! a bare glob matched against the endpoint, the name, the metric and the `instance`
//! label. The desk turns `#42` into the fingerprint of alert 42. An alert card's
//! silence buttons carry [`group_matcher`].

use crate::routing::{glob, Facts};
use globset::GlobMatcher;
use opsbot_store::alerts::AlertStore;
use opsbot_store::alerts::{AlertRecord, SilenceRecord};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Mutex;

#[derive(Debug)]
pub enum Matcher {
    Fields(Vec<(String, GlobMatcher)>),
    Any(GlobMatcher),
}

impl Matcher {
    pub fn parse(text: &str) -> Result<Matcher, String> {
        let text = text.trim();
        if text.is_empty() {
            return Err("匹配条件是空的".into());
        }
        if !text.contains('=') {
            return glob(text)
                .map(Matcher::Any)
                .map_err(|e| format!("匹配条件无效: {e}"));
        }
        let mut fields = Vec::new();
        for part in text.split(['&', ' ']).filter(|p| !p.is_empty()) {
            let (k, v) = part
                .split_once('=')
                .ok_or_else(|| format!("「{part}」应写成 键=模式,例如 endpoint=web-*"))?;
            if k.trim().is_empty() || v.trim().is_empty() {
                return Err(format!("「{part}」的键或模式是空的"));
            }
            let g = glob(v.trim()).map_err(|e| format!("匹配条件无效: {e}"))?;
            fields.push((k.trim().to_string(), g));
        }
        Ok(Matcher::Fields(fields))
    }

    pub fn matches(&self, f: &Facts<'_>) -> bool {
        match self {
            Matcher::Any(g) => [
                f.endpoint,
                f.name,
                f.metric,
                f.labels.get("instance").map(String::as_str).unwrap_or(""),
            ]
            .iter()
            .any(|v| !v.is_empty() && g.is_match(v)),
            Matcher::Fields(fields) => fields
                .iter()
                .all(|(k, g)| f.field(k).is_some_and(|v| g.is_match(v))),
        }
    }
}

/// The longest matcher a card's silence buttons carry.
const MAX_GROUP_MATCHER: usize = 400;

/// A matcher that silences `alerts`, a group announced together, as `静默` takes it
/// (so it can be typed too): `#42` for one alert; for several, the route's `group_by`
/// values, or else what they all share (name, endpoint, labels with one value), like
/// Alertmanager's common labels. `None` when they share nothing a matcher can say.
/// Characters a matcher cannot hold literally (`,` `&`, blanks, glob signs) match as
/// `?`.
pub fn group_matcher(group_by: &[String], alerts: &[&AlertRecord]) -> Option<String> {
    let (first, rest) = alerts.split_first()?;
    if rest.is_empty() {
        return Some(format!("#{}", first.id));
    }
    let facts: Vec<Facts<'_>> = alerts.iter().map(|a| Facts::from(*a)).collect();
    let shared = |key: &str| -> Option<String> {
        let value = facts[0].field(key)?;
        (!value.is_empty() && facts.iter().all(|f| f.field(key) == Some(value)))
            .then(|| value.to_string())
    };
    let mut pairs: Vec<(String, String)> = Vec::new();
    if !group_by.is_empty() {
        for key in group_by {
            pairs.push((key.clone(), shared(key)?));
        }
    } else {
        for key in ["name", "endpoint"] {
            if let Some(v) = shared(key) {
                pairs.push((key.to_string(), v));
            }
        }
        for key in first.labels.keys() {
            // `alertname` is the name already; a key must be a plain word.
            let plain = key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
            if key != "alertname" && plain {
                if let Some(v) = shared(key) {
                    pairs.push((key.clone(), v));
                }
            }
        }
    }
    let mut matcher = String::new();
    for (key, value) in pairs {
        let pair = format!("{key}={}", literal(&value));
        if matcher.len() + pair.len() + 1 > MAX_GROUP_MATCHER {
            break;
        }
        if !matcher.is_empty() {
            matcher.push('&');
        }
        matcher.push_str(&pair);
    }
    (!matcher.is_empty()).then_some(matcher)
}

/// `value` as a glob matching itself, with `?` for what a matcher cannot hold.
fn literal(value: &str) -> String {
    value
        .chars()
        .map(|c| {
            if c.is_whitespace()
                || matches!(
                    c,
                    ',' | '&' | '*' | '?' | '[' | ']' | '{' | '}' | '\\' | '#'
                )
            {
                '?'
            } else {
                c
            }
        })
        .collect()
}

/// How long the active silences are reused before they are read again (other
/// processes may add silences; this process's own are seen at once).
const REFRESH: Duration = Duration::from_secs(2);

type Active = Arc<Vec<(SilenceRecord, Matcher)>>;

/// The active silences, cached.
pub struct Silences {
    store: Arc<dyn AlertStore>,
    cache: Mutex<Option<(Instant, Active)>>,
}

impl std::fmt::Debug for Silences {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Silences").finish_non_exhaustive()
    }
}

impl Silences {
    pub fn new(store: Arc<dyn AlertStore>) -> Self {
        Silences {
            store,
            cache: Mutex::new(None),
        }
    }

    /// Forget the cache (after this process added a silence).
    pub async fn invalidate(&self) {
        *self.cache.lock().await = None;
    }

    pub async fn active(&self) -> opsbot_store::Result<Active> {
        let mut cache = self.cache.lock().await;
        if let Some((at, active)) = cache.as_ref() {
            if at.elapsed() < REFRESH {
                return Ok(active.clone());
            }
        }
        let now = chrono::Utc::now();
        let active: Active = Arc::new(
            self.store
                .silences_active(now)
                .await?
                .into_iter()
                .filter_map(|s| match Matcher::parse(&s.matcher) {
                    Ok(m) => Some((s, m)),
                    Err(e) => {
                        tracing::warn!(silence = s.id, error = %e, "ignoring a silence whose matcher no longer parses");
                        None
                    }
                })
                .collect(),
        );
        *cache = Some((Instant::now(), active.clone()));
        Ok(active)
    }
}

/// Whether any of `active` silences `f` (ended ones are skipped).
pub fn silenced(active: &[(SilenceRecord, Matcher)], f: &Facts<'_>) -> bool {
    let now = chrono::Utc::now();
    active.iter().any(|(s, m)| s.ends_at > now && m.matches(f))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    #[test]
    fn matchers() {
        let labels = BTreeMap::from([("team".to_string(), "dba".to_string())]);
        let f = Facts {
            source: "zabbix",
            status: "firing",
            severity: "High",
            name: "Disk full",
            endpoint: "db-01",
            metric: "",
            fingerprint: "zabbix:event:1",
            labels: &labels,
            unparsed: false,
        };
        assert!(Matcher::parse("db-*").unwrap().matches(&f));
        assert!(Matcher::parse("DISK*").unwrap().matches(&f));
        assert!(!Matcher::parse("web-*").unwrap().matches(&f));
        assert!(Matcher::parse("team=db*&severity=high")
            .unwrap()
            .matches(&f));
        assert!(!Matcher::parse("team=db* source=generic")
            .unwrap()
            .matches(&f));
        assert!(Matcher::parse("fingerprint=zabbix:event:1")
            .unwrap()
            .matches(&f));
        assert!(!Matcher::parse("nosuchlabel=*").unwrap().matches(&f));
        for bad in ["", "=x", "a=", "a=[", "["] {
            assert!(Matcher::parse(bad).is_err(), "{bad}");
        }
    }

    fn record(id: i64, name: &str, endpoint: &str, labels: &[(&str, &str)]) -> AlertRecord {
        let now = chrono::Utc::now();
        AlertRecord {
            id,
            fingerprint: format!("f{id}"),
            source: "alertmanager".into(),
            status: "firing".into(),
            severity: "warning".into(),
            name: name.into(),
            summary: String::new(),
            endpoint: endpoint.into(),
            metric: String::new(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            annotations: BTreeMap::new(),
            recipients: vec![],
            parse_error: None,
            payload_id: 1,
            starts_at: now,
            ends_at: None,
            first_seen: now,
            last_seen: now,
            occurrences: 1,
            ack_by: None,
            ack_at: None,
        }
    }

    #[test]
    fn a_group_is_silenced_by_what_its_alerts_share() {
        let a = record(
            1,
            "Disk full",
            "db-01",
            &[("alertname", "Disk full"), ("team", "d,b&a"), ("dc", "sh")],
        );
        let b = record(
            2,
            "Disk full",
            "db-02",
            &[("alertname", "Disk full"), ("team", "d,b&a"), ("dc", "bj")],
        );
        let other = record(3, "Disk full", "db-03", &[("team", "web")]);
        assert_eq!(group_matcher(&[], &[&a]).as_deref(), Some("#1"));
        assert_eq!(group_matcher(&[], &[]), None);
        // Shared name and labels; what a matcher cannot hold matches as `?`.
        let m = group_matcher(&[], &[&a, &b]).unwrap();
        assert_eq!(m, "name=Disk?full&team=d?b?a");
        assert!(!m.contains([',', ' ']), "it must survive 静默:<matcher>,1h");
        let parsed = Matcher::parse(&m).unwrap();
        assert!(parsed.matches(&Facts::from(&a)) && parsed.matches(&Facts::from(&b)));
        assert!(!parsed.matches(&Facts::from(&other)));
        // The route's group_by, when it has one.
        let m = group_matcher(&["name".into(), "team".into()], &[&a, &b]).unwrap();
        assert_eq!(m, "name=Disk?full&team=d?b?a");
        assert_eq!(group_matcher(&["dc".into()], &[&a, &b]), None);
        // Nothing in common: no silence button.
        let c = record(4, "Other", "x", &[]);
        assert_eq!(group_matcher(&[], &[&a, &c]), None);
    }
}
