//! Silences (`静默:匹配,时长`): while one is active, matching alerts are stored and
//! listed but announce nothing. A matcher is `key=glob` pairs joined by `&` (keys:
//! `name`, `endpoint`, `metric`, `severity`, `source`, `fingerprint` or any label), or
//! a bare glob matched against the endpoint, the name, the metric and the `instance`
//! label. The desk turns `#42` into the fingerprint of alert 42.

use crate::routing::{glob, Facts};
use globset::GlobMatcher;
use opsbot_store::alerts::AlertStore;
use opsbot_store::alerts::SilenceRecord;
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
}
