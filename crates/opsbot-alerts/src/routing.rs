//! Routing: ordered rules, first match wins unless it says `continue`; alerts no rule
//! takes, and alerts that could not be parsed, go to the default route. A route's
//! targets are WeCom app members, parties and tags, an app group chat, group robots,
//! and optionally the people the alert itself names.

use crate::alert::Alert;
use crate::config::{ConfigError, RouteConfig};
use chrono::{DateTime, Datelike, FixedOffset, NaiveTime, Timelike, Utc, Weekday};
use globset::{GlobBuilder, GlobMatcher};
use opsbot_store::alerts::AlertRecord;
use std::collections::BTreeMap;
use std::time::Duration;

/// The fields routing and silences look at, borrowed from an incoming alert or a
/// stored one.
#[derive(Debug, Clone, Copy)]
pub struct Facts<'a> {
    pub source: &'a str,
    pub status: &'a str,
    pub severity: &'a str,
    pub name: &'a str,
    pub endpoint: &'a str,
    pub metric: &'a str,
    pub fingerprint: &'a str,
    pub labels: &'a BTreeMap<String, String>,
    pub unparsed: bool,
}

impl<'a> From<&'a Alert> for Facts<'a> {
    fn from(a: &'a Alert) -> Self {
        Facts {
            source: a.source.as_str(),
            status: a.status.as_str(),
            severity: &a.severity,
            name: &a.name,
            endpoint: &a.endpoint,
            metric: &a.metric,
            fingerprint: &a.fingerprint,
            labels: &a.labels,
            unparsed: a.parse_error.is_some(),
        }
    }
}

impl<'a> From<&'a AlertRecord> for Facts<'a> {
    fn from(a: &'a AlertRecord) -> Self {
        Facts {
            source: &a.source,
            status: &a.status,
            severity: &a.severity,
            name: &a.name,
            endpoint: &a.endpoint,
            metric: &a.metric,
            fingerprint: &a.fingerprint,
            labels: &a.labels,
            unparsed: a.parse_error.is_some(),
        }
    }
}

impl Facts<'_> {
    /// A field by name (`name`/`alertname`, `endpoint`, `metric`, `severity`,
    /// `source`, `status`, `fingerprint`), else a label.
    pub fn field(&self, key: &str) -> Option<&str> {
        Some(match key {
            "name" | "alertname" => self.name,
            "endpoint" | "host" => self.endpoint,
            "metric" => self.metric,
            "severity" | "priority" => self.severity,
            "source" => self.source,
            "status" => self.status,
            "fingerprint" => self.fingerprint,
            _ => return self.labels.get(key).map(String::as_str),
        })
    }
}

/// A case-insensitive glob (`*`, `?`, `[ab]`, `{a,b}`).
pub fn glob(pattern: &str) -> Result<GlobMatcher, String> {
    GlobBuilder::new(pattern)
        .case_insensitive(true)
        .literal_separator(false)
        .build()
        .map(|g| g.compile_matcher())
        .map_err(|e| format!("{pattern:?} is not a valid pattern: {e}"))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Text,
    Markdown,
}

/// What a route matches: every given criterion, any entry of a list.
#[derive(Debug, Default)]
pub struct Matcher {
    sources: Vec<String>,
    severity: Vec<GlobMatcher>,
    status: Option<String>,
    names: Vec<GlobMatcher>,
    endpoints: Vec<GlobMatcher>,
    metrics: Vec<GlobMatcher>,
    labels: Vec<(String, GlobMatcher)>,
    windows: Vec<(NaiveTime, NaiveTime)>,
    days: Vec<Weekday>,
}

/// The match keys a route or a remediation rule gives, borrowed from its section.
#[derive(Debug, Clone, Copy)]
pub(crate) struct MatchKeys<'a> {
    pub sources: &'a [String],
    pub severity: &'a [String],
    pub status: Option<&'a str>,
    pub alertname: &'a [String],
    pub endpoint: &'a [String],
    pub metric: &'a [String],
    pub labels: &'a BTreeMap<String, String>,
    pub time: &'a [String],
    pub days: &'a [String],
}

impl MatchKeys<'_> {
    /// No criterion at all: it matches every alert.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
            && self.severity.is_empty()
            && self.status.is_none()
            && self.alertname.is_empty()
            && self.endpoint.is_empty()
            && self.metric.is_empty()
            && self.labels.is_empty()
            && self.time.is_empty()
            && self.days.is_empty()
    }
}

impl RouteConfig {
    pub(crate) fn match_keys(&self) -> MatchKeys<'_> {
        MatchKeys {
            sources: &self.sources,
            severity: &self.severity,
            status: self.status.as_deref(),
            alertname: &self.alertname,
            endpoint: &self.endpoint,
            metric: &self.metric,
            labels: &self.labels,
            time: &self.time,
            days: &self.days,
        }
    }
}

impl Matcher {
    /// Compiles the match keys of the section at `at` (`alerts.routes[2]`); errors
    /// name the key.
    pub(crate) fn compile(r: MatchKeys<'_>, at: &str) -> Result<Matcher, ConfigError> {
        let bad = |k: String, p: String| ConfigError { key: k, problem: p };
        for (i, s) in r.sources.iter().enumerate() {
            if crate::alert::Source::parse(s).is_none() {
                return Err(bad(
                    format!("{at}.sources[{i}]"),
                    format!("{s:?} is not one of openfalcon, alertmanager, zabbix, generic"),
                ));
            }
        }
        let globs = |list: &[String], what: &str| -> Result<Vec<GlobMatcher>, ConfigError> {
            list.iter()
                .enumerate()
                .map(|(i, p)| glob(p).map_err(|e| bad(format!("{at}.{what}[{i}]"), e)))
                .collect()
        };
        let status = match r.status {
            None => None,
            Some(s @ ("firing" | "resolved")) => Some(s.to_string()),
            Some(other) => {
                return Err(bad(
                    format!("{at}.status"),
                    format!("{other:?} is not \"firing\" or \"resolved\""),
                ))
            }
        };
        let mut labels = Vec::new();
        for (k, p) in r.labels {
            labels.push((
                k.clone(),
                glob(p).map_err(|e| bad(format!("{at}.labels.{k}"), e))?,
            ));
        }
        let mut windows = Vec::new();
        for (i, w) in r.time.iter().enumerate() {
            let parsed = w.split_once('-').and_then(|(a, b)| {
                let t = |s: &str| NaiveTime::parse_from_str(s.trim(), "%H:%M").ok();
                Some((t(a)?, t(b)?))
            });
            windows.push(parsed.ok_or_else(|| {
                bad(
                    format!("{at}.time[{i}]"),
                    format!("{w:?} is not a window like 09:00-18:00"),
                )
            })?);
        }
        let mut days = Vec::new();
        for (i, d) in r.days.iter().enumerate() {
            days.push(d.trim().parse::<Weekday>().map_err(|_| {
                bad(
                    format!("{at}.days[{i}]"),
                    format!("{d:?} is not a weekday like mon"),
                )
            })?);
        }
        Ok(Matcher {
            sources: r.sources.to_vec(),
            severity: globs(r.severity, "severity")?,
            status,
            names: globs(r.alertname, "alertname")?,
            endpoints: globs(r.endpoint, "endpoint")?,
            metrics: globs(r.metric, "metric")?,
            labels,
            windows,
            days,
        })
    }

    pub fn matches(&self, f: &Facts<'_>, at: DateTime<FixedOffset>) -> bool {
        let any = |globs: &[GlobMatcher], value: &str| {
            globs.is_empty() || globs.iter().any(|g| g.is_match(value))
        };
        (self.sources.is_empty() || self.sources.iter().any(|s| s == f.source))
            && self.status.as_deref().is_none_or(|s| s == f.status)
            && any(&self.severity, f.severity)
            && any(&self.names, f.name)
            && any(&self.endpoints, f.endpoint)
            && any(&self.metrics, f.metric)
            && self
                .labels
                .iter()
                .all(|(k, g)| f.labels.get(k).is_some_and(|v| g.is_match(v)))
            && (self.days.is_empty() || self.days.contains(&at.weekday()))
            && (self.windows.is_empty() || self.windows.iter().any(|w| in_window(*w, at)))
    }
}

fn in_window((from, to): (NaiveTime, NaiveTime), at: DateTime<FixedOffset>) -> bool {
    let now = NaiveTime::from_hms_opt(at.hour(), at.minute(), 0).unwrap_or_default();
    if from <= to {
        from <= now && now < to
    } else {
        // Across midnight: 22:00-08:00.
        now >= from || now < to
    }
}

/// Where a route sends.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Targets {
    pub app: Option<String>,
    pub users: Vec<String>,
    pub parties: Vec<String>,
    pub tags: Vec<String>,
    pub alert_recipients: bool,
    pub appchat: Option<String>,
    pub robots: Vec<String>,
}

#[derive(Debug)]
pub struct Route {
    pub name: String,
    pub matcher: Matcher,
    pub continue_matching: bool,
    pub targets: Targets,
    /// `None`: text for app messages, markdown for robots.
    pub format: Option<Format>,
    pub text_template: String,
    pub markdown_template: String,
    pub send_resolved: bool,
    /// Firing alerts to app members go as cards with buttons (when the gateway has
    /// card keys); otherwise as text.
    pub cards: bool,
    pub group_by: Vec<String>,
    pub group_wait: Duration,
    pub group_interval: Duration,
}

/// Group keys longer than this are hashed (they are a key column in the store).
const MAX_GROUP_KEY: usize = 180;

impl Route {
    /// The group an alert falls in on this route: the `group_by` values, `{}` for one
    /// group per route.
    pub fn group_key(&self, f: &Facts<'_>) -> String {
        if self.group_by.is_empty() {
            return "{}".into();
        }
        let key = self
            .group_by
            .iter()
            .map(|k| format!("{k}={}", f.field(k).unwrap_or("")))
            .collect::<Vec<_>>()
            .join(",");
        if key.len() <= MAX_GROUP_KEY {
            key
        } else {
            crate::alert::fingerprint(crate::alert::Source::Generic, &[&key])
        }
    }
}

#[derive(Debug)]
pub struct Router {
    routes: Vec<Route>,
    default: Option<Route>,
    timezone: FixedOffset,
}

impl Router {
    pub fn new(routes: Vec<Route>, default: Option<Route>, timezone: FixedOffset) -> Self {
        Router {
            routes,
            default,
            timezone,
        }
    }

    /// The routes an alert goes to at `now`, in order. An unparsed alert goes to the
    /// default route only (its fields cannot be trusted for matching).
    pub fn routes_for(&self, f: &Facts<'_>, now: DateTime<Utc>) -> Vec<&Route> {
        let at = now.with_timezone(&self.timezone);
        let mut out = Vec::new();
        if !f.unparsed {
            for r in &self.routes {
                if r.matcher.matches(f, at) {
                    out.push(r);
                    if !r.continue_matching {
                        break;
                    }
                }
            }
        }
        if out.is_empty() {
            out.extend(self.default.as_ref());
        }
        out
    }

    /// Every route, the default last.
    pub fn routes(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter().chain(self.default.as_ref())
    }

    /// A route by name; a route that has gone from the configuration since its
    /// notices were recorded falls back to the default route.
    pub fn route(&self, name: &str) -> Option<&Route> {
        self.routes
            .iter()
            .chain(self.default.as_ref())
            .find(|r| r.name == name)
            .or(self.default.as_ref())
            .or(self.routes.first())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::AlertsConfig;
    use chrono::TimeZone;

    fn settings(toml_text: &str) -> crate::config::Settings {
        let c: AlertsConfig = toml::from_str(toml_text).unwrap();
        c.compile(&["ops", "db"]).unwrap()
    }

    const CONFIG: &str = r#"
timezone = "+08:00"
[sources.generic]
token = "0123456789"
[[routes]]
name = "dba"
labels = { team = "db*" }
severity = ["critical", "P0"]
app = "db"
users = ["dba1"]
continue = true
[[routes]]
name = "night"
time = ["22:00-08:00"]
app = "ops"
users = ["oncall"]
[[routes]]
name = "cpu"
labels = { type = "cpu" }
app = "ops"
alert_recipients = true
group_by = ["endpoint"]
[default]
app = "ops"
users = ["admin"]
"#;

    fn facts<'a>(
        labels: &'a std::collections::BTreeMap<String, String>,
        severity: &'a str,
    ) -> super::Facts<'a> {
        super::Facts {
            source: "generic",
            status: "firing",
            severity,
            name: "X",
            endpoint: "web-01",
            metric: "m",
            fingerprint: "f",
            labels,
            unparsed: false,
        }
    }

    #[test]
    fn order_continue_windows_and_default() {
        let s = settings(CONFIG);
        let noon = chrono::Utc.with_ymd_and_hms(2026, 12, 1, 4, 0, 0).unwrap(); // 12:00 +08
        let night = chrono::Utc.with_ymd_and_hms(2026, 12, 1, 15, 0, 0).unwrap(); // 23:00 +08
        let names = |labels: &[(&str, &str)], sev: &str, at| -> Vec<String> {
            let l: std::collections::BTreeMap<String, String> = labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            s.router
                .routes_for(&facts(&l, sev), at)
                .iter()
                .map(|r| r.name.clone())
                .collect()
        };
        assert_eq!(names(&[("team", "DBA")], "CRITICAL", noon), ["dba"]);
        assert_eq!(
            names(&[("team", "dba")], "critical", night),
            ["dba", "night"]
        );
        assert_eq!(names(&[("type", "cpu")], "P3", noon), ["cpu"]);
        assert_eq!(names(&[], "P3", noon), ["default"]);
        assert_eq!(names(&[("team", "db")], "warning", noon), ["default"]);
        let l = Default::default();
        let mut unparsed = facts(&l, "critical");
        unparsed.unparsed = true;
        let r = s.router.routes_for(&unparsed, night);
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].name, "default");
        assert_eq!(s.router.route("gone").unwrap().name, "default");
        let cpu = s.router.route("cpu").unwrap();
        assert_eq!(cpu.group_key(&facts(&l, "x")), "endpoint=web-01");
        assert_eq!(
            s.router.route("dba").unwrap().group_key(&facts(&l, "x")),
            "{}"
        );
    }

    #[test]
    fn config_errors_name_the_key() {
        let cases = [
            (
                r#"[sources.generic]
token = "0123456789"
[[routes]]
name = "a"
app = "nope"
users = ["u"]"#,
                "alerts.routes[0].app",
            ),
            (
                r#"[sources.generic]
token = "0123456789"
[default]
users = ["u"]"#,
                "alerts.default.app",
            ),
            (
                r#"[sources.generic]
[default]
app = "ops"
users = ["u"]"#,
                "alerts.sources.generic.token",
            ),
            (
                r#"[sources.generic]
token = "0123456789"
[[routes]]
name = "a"
time = ["9-18"]
app = "ops"
users = ["u"]"#,
                "alerts.routes[0].time[0]",
            ),
            (
                r#"[sources.generic]
token = "0123456789"
[[routes]]
name = "a"
app = "ops"
users = ["u"]
text_template = """
line one
{% for a in firing %}
{{ a.name }
{% endfor %}"""
"#,
                "alerts.routes[0].text_template",
            ),
            (
                r#"[sources.generic]
token = "0123456789"
[default]
app = "ops"
users = ["u"]
severity = ["P0"]"#,
                "alerts.default",
            ),
            (
                r#"[sources.generic]
token = "0123456789"
allow_ips = ["10.0.0.0/33"]
[default]
robots = ["r"]"#,
                "alerts.sources.generic.allow_ips[0]",
            ),
            (
                r#"[sources.generic]
token = "0123456789"
[default]
robots = ["r"]"#,
                "alerts.default.robots[0]",
            ),
        ];
        for (text, key) in cases {
            let c: AlertsConfig = toml::from_str(text).unwrap();
            let e = c.compile(&["ops"]).unwrap_err();
            assert_eq!(e.key, key, "{e}");
        }
        let c: AlertsConfig = toml::from_str(cases[4].0).unwrap();
        let e = c.compile(&["ops"]).unwrap_err();
        assert!(e.problem.starts_with("line 3:"), "{e}");
    }
}
