//! The `[alerts]` section of the configuration, and its compilation into what the
//! gateway runs on (routes with compiled globs and templates, remediation rules,
//! parsed durations). Every problem names its key:
//! `alerts.routes[2].text_template: line 3: …`.

use crate::alert::Source;
use crate::remediation::{RemediationConfig, Remediations};
use crate::routing::{Format, Route, Router, Targets};
use crate::template::Templates;
use chrono::FixedOffset;
use opsbot_wecom::RobotConfig;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AlertsConfig {
    /// Wait this long after the first alert of a group before sending it, so a burst
    /// becomes one message.
    pub group_wait: String,
    /// At least this long between two messages of one group.
    pub group_interval: String,
    /// How long an instance's claim on a due group lasts: when the instance dies
    /// holding it, another sends the group this much later.
    pub group_lease: String,
    /// Largest accepted request body.
    pub max_body_bytes: usize,
    /// Requests waiting to be stored before new ones get 503.
    pub queue: usize,
    /// Zone for Open-Falcon's local times, time windows and displayed times
    /// (`+08:00`); default the server's.
    pub timezone: Option<String>,
    /// Alerts listed by name in one message; the rest are counted.
    pub max_listed: usize,
    pub sources: SourcesConfig,
    pub robots: Vec<RobotConfig>,
    pub routes: Vec<RouteConfig>,
    /// Where alerts go that no route takes, and those that could not be parsed.
    pub default: Option<RouteConfig>,
    /// How long the buttons of an alert card work.
    pub card_ttl: String,
    /// What can be done about an alert: offered as a button, or run at once.
    pub remediations: Vec<RemediationConfig>,
    /// The user automatic remediation runs as (a `[[users]]` id whose roles allow the
    /// rules' commands); audited as such, on channel `alerts`. Required with an
    /// `auto` rule.
    pub remediation_user: Option<String>,
    /// An alert that resolved `flap_threshold` times within `flap_window` is flapping:
    /// automatic remediation leaves it alone. `flap_threshold = 0`: never.
    pub flap_window: String,
    pub flap_threshold: u32,
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            group_wait: "10s".into(),
            group_interval: "1m".into(),
            group_lease: "30s".into(),
            max_body_bytes: 1024 * 1024,
            queue: 4096,
            timezone: None,
            max_listed: 10,
            sources: SourcesConfig::default(),
            robots: Vec::new(),
            routes: Vec::new(),
            default: None,
            card_ttl: "24h".into(),
            remediations: Vec::new(),
            remediation_user: None,
            flap_window: "1h".into(),
            flap_threshold: 3,
        }
    }
}

/// One table per source; a source without one is not served (404).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourcesConfig {
    pub openfalcon: Option<SourceConfig>,
    pub alertmanager: Option<SourceConfig>,
    pub zabbix: Option<SourceConfig>,
    pub generic: Option<SourceConfig>,
}

impl SourcesConfig {
    pub fn get(&self, source: Source) -> Option<&SourceConfig> {
        match source {
            Source::OpenFalcon => self.openfalcon.as_ref(),
            Source::Alertmanager => self.alertmanager.as_ref(),
            Source::Zabbix => self.zabbix.as_ref(),
            Source::Generic => self.generic.as_ref(),
        }
    }
}

/// How a source proves itself: a shared token, an address allow-list, or both.
#[derive(Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SourceConfig {
    /// Sent as `Authorization: Bearer <token>`, `X-Opsbot-Token: <token>` or `?token=`.
    pub token: Option<String>,
    /// CIDRs or addresses the source may post from.
    pub allow_ips: Vec<String>,
    /// Zabbix only: our field → the key the media-type script sends.
    pub fields: BTreeMap<String, String>,
}

/// Never prints the token.
impl std::fmt::Debug for SourceConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceConfig")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("allow_ips", &self.allow_ips)
            .field("fields", &self.fields)
            .finish()
    }
}

fn yes() -> bool {
    true
}

/// One `[[alerts.routes]]` rule (or `[alerts.default]`): what it matches, where it
/// sends, how the message looks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    #[serde(default)]
    pub name: String,
    // ---- what it matches (all given criteria; any entry of a list) ----------------
    #[serde(default)]
    pub sources: Vec<String>,
    /// Globs over the severity as the source writes it (`P0`, `critical`, `High`).
    #[serde(default)]
    pub severity: Vec<String>,
    /// `firing` or `resolved`.
    #[serde(default)]
    pub status: Option<String>,
    /// Globs over the alert name.
    #[serde(default)]
    pub alertname: Vec<String>,
    #[serde(default)]
    pub endpoint: Vec<String>,
    #[serde(default)]
    pub metric: Vec<String>,
    /// Label → glob; every one must match (Open-Falcon's alarm type is label `type`).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    /// `HH:MM-HH:MM` windows (may cross midnight) in `alerts.timezone`.
    #[serde(default)]
    pub time: Vec<String>,
    /// `mon` … `sun`.
    #[serde(default)]
    pub days: Vec<String>,
    /// Keep looking for more routes after this one matched.
    #[serde(default, rename = "continue")]
    pub continue_matching: bool,
    // ---- where it sends -------------------------------------------------------------
    /// A `[[wecom.apps]]` name: sends through that app.
    #[serde(default)]
    pub app: Option<String>,
    #[serde(default)]
    pub users: Vec<String>,
    #[serde(default)]
    pub parties: Vec<String>,
    #[serde(default)]
    pub tags: Vec<String>,
    /// Also to the people the alert names (Open-Falcon `tos`, Zabbix `to`).
    #[serde(default)]
    pub alert_recipients: bool,
    /// An app group chat id (`appchat/create`), sent through `app`.
    #[serde(default)]
    pub appchat: Option<String>,
    /// `[[alerts.robots]]` names.
    #[serde(default)]
    pub robots: Vec<String>,
    // ---- how it looks -----------------------------------------------------------------
    /// `text` or `markdown`; default text for app messages, markdown for robots.
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub text_template: Option<String>,
    #[serde(default)]
    pub markdown_template: Option<String>,
    #[serde(default = "yes")]
    pub send_resolved: bool,
    /// Firing alerts to app members (users, parties, tags) as cards with buttons;
    /// `false`: as text. App chats and robots always get text.
    #[serde(default = "yes")]
    pub cards: bool,
    /// Labels (or `name`, `endpoint`, `metric`, `severity`, `source`) whose values
    /// split a route's alerts into separate groups; none = one group per route.
    #[serde(default)]
    pub group_by: Vec<String>,
    #[serde(default)]
    pub group_wait: Option<String>,
    #[serde(default)]
    pub group_interval: Option<String>,
}

/// A configuration problem: the key and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("key {key}: {problem}")]
pub struct ConfigError {
    pub key: String,
    pub problem: String,
}

pub(crate) fn problem(key: impl Into<String>, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        key: key.into(),
        problem: problem.into(),
    }
}

/// Everything the gateway runs on, checked.
#[derive(Debug)]
pub struct Settings {
    pub router: Router,
    pub templates: Templates,
    pub sources: SourcesConfig,
    pub allow_ips: BTreeMap<Source, Vec<ipnet::IpNet>>,
    pub robots: Vec<RobotConfig>,
    pub timezone: FixedOffset,
    pub max_body_bytes: usize,
    pub queue: usize,
    pub max_listed: usize,
    /// Signs the buttons of alert cards; `None`: alerts are text (set by the binary
    /// from its secret key, after [`AlertsConfig::compile`]).
    pub cards: Option<opsbot_core::CardKeys>,
    /// How long a card's buttons work.
    pub card_ttl: Duration,
    pub remediations: Remediations,
    /// Who automatic remediation runs as.
    pub remediation_user: Option<String>,
    pub flap: Flap,
    /// How often the notifier looks for groups due in the store (sent by whichever
    /// instance claims them first): how late a group another instance received, or
    /// left behind, may be sent.
    pub group_poll: Duration,
    /// How long a notifier's claim on a due group lasts: a notifier that dies holding
    /// one delays its group this long at most. Longer than sending a group takes.
    pub group_lease: Duration,
    /// Where the notifier paces its targets' WeCom rates: `None` in this process, or
    /// windows every instance shares (set by the binary, as `cards` is).
    pub rate_windows: Option<std::sync::Arc<dyn opsbot_core::RateWindows>>,
}

/// When an alert counts as flapping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Flap {
    pub window: Duration,
    /// Resolutions within `window`; 0 = never flapping.
    pub threshold: u32,
}

/// [`Settings::group_poll`] (not configured: tests set it).
pub const GROUP_POLL: Duration = Duration::from_secs(1);

/// The longest flap window: the store keeps status changes two days.
const MAX_FLAP_WINDOW: Duration = Duration::from_secs(24 * 3600);
/// The longest a card's buttons may work (WeCom's update codes last 72 h).
const MAX_CARD_TTL: Duration = Duration::from_secs(72 * 3600);

pub(crate) fn duration(key: &str, value: &str) -> Result<Duration, ConfigError> {
    opsbot_core::parse_duration(value)
        .ok_or_else(|| problem(key, format!("{value:?} is not a duration like 10s, 1m, 1h")))
}

/// The configured [`Flap`], checked.
fn flap(c: &AlertsConfig) -> Result<Flap, ConfigError> {
    let window = duration("alerts.flap_window", &c.flap_window)?;
    if window.is_zero() || window > MAX_FLAP_WINDOW {
        return Err(problem(
            "alerts.flap_window",
            "must be more than 0s and at most 24h",
        ));
    }
    if c.flap_threshold == 1 {
        return Err(problem(
            "alerts.flap_threshold",
            "1 would call every alert that resolved once flapping: use 2 or more, or 0 to never",
        ));
    }
    Ok(Flap {
        window,
        threshold: c.flap_threshold,
    })
}

/// `+08:00` / `-05:30` / `UTC`.
pub fn parse_offset(s: &str) -> Option<FixedOffset> {
    let s = s.trim();
    if s.eq_ignore_ascii_case("utc") || s == "Z" {
        return FixedOffset::east_opt(0);
    }
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':').unwrap_or((rest, "0"));
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    if h > 14 || m > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

pub(crate) fn is_ident(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl AlertsConfig {
    /// Checks everything and builds the [`Settings`]. `apps` are the configured
    /// `[[wecom.apps]]` names routes may send through.
    pub fn compile(&self, apps: &[&str]) -> Result<Settings, ConfigError> {
        let group_wait = duration("alerts.group_wait", &self.group_wait)?;
        let card_ttl = duration("alerts.card_ttl", &self.card_ttl)?;
        if card_ttl < Duration::from_secs(60) || card_ttl > MAX_CARD_TTL {
            return Err(problem(
                "alerts.card_ttl",
                "must be between 1m and 72h (WeCom updates a card for 72 h)",
            ));
        }
        let flap = flap(self)?;
        let group_interval = duration("alerts.group_interval", &self.group_interval)?;
        let group_lease = duration("alerts.group_lease", &self.group_lease)?;
        if !(Duration::from_secs(1)..=Duration::from_secs(600)).contains(&group_lease) {
            return Err(problem(
                "alerts.group_lease",
                "must be between 1s and 10m (longer than sending a group takes)",
            ));
        }
        if self.max_body_bytes < 1024 {
            return Err(problem("alerts.max_body_bytes", "must be at least 1024"));
        }
        if self.queue == 0 {
            return Err(problem("alerts.queue", "must be at least 1"));
        }
        if self.max_listed == 0 {
            return Err(problem("alerts.max_listed", "must be at least 1"));
        }
        let timezone = match &self.timezone {
            Some(tz) => parse_offset(tz).ok_or_else(|| {
                problem(
                    "alerts.timezone",
                    format!("{tz:?} is not an offset like +08:00"),
                )
            })?,
            None => *chrono::Local::now().offset(),
        };
        let mut allow_ips = BTreeMap::new();
        let mut any_source = false;
        for source in Source::ALL {
            let Some(s) = self.sources.get(source) else {
                continue;
            };
            any_source = true;
            let key = |f: &str| format!("alerts.sources.{source}.{f}");
            if s.token.as_deref().is_some_and(|t| t.trim().len() < 8) {
                return Err(problem(key("token"), "must be at least 8 characters"));
            }
            let mut nets = Vec::new();
            for (i, ip) in s.allow_ips.iter().enumerate() {
                let net = ip
                    .parse::<ipnet::IpNet>()
                    .or_else(|_| ip.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                    .map_err(|_| {
                        problem(
                            format!("{}[{i}]", key("allow_ips")),
                            format!("{ip:?} is not an address or CIDR"),
                        )
                    })?;
                nets.push(net);
            }
            if s.token.is_none() && nets.is_empty() {
                return Err(problem(
                    key("token"),
                    "a source needs a token, an allow_ips list, or both (deny by default)",
                ));
            }
            if source != Source::Zabbix && !s.fields.is_empty() {
                return Err(problem(key("fields"), "only the zabbix source maps fields"));
            }
            for field in s.fields.keys() {
                if !crate::sources::zabbix::FIELDS
                    .iter()
                    .any(|(f, _)| f == field)
                {
                    let known: Vec<&str> = crate::sources::zabbix::FIELDS
                        .iter()
                        .map(|(f, _)| *f)
                        .collect();
                    return Err(problem(
                        format!("{}.{field}", key("fields")),
                        format!("unknown field; known: {}", known.join(", ")),
                    ));
                }
            }
            allow_ips.insert(source, nets);
        }
        if !any_source {
            return Err(problem(
                "alerts.sources",
                "no source is configured; add e.g. [alerts.sources.alertmanager] with a token",
            ));
        }
        let mut robot_names = HashSet::new();
        for (i, r) in self.robots.iter().enumerate() {
            let key = |f: &str| format!("alerts.robots[{i}].{f}");
            if !is_ident(&r.name) {
                return Err(problem(
                    key("name"),
                    format!("{:?} must be letters, digits, - or _", r.name),
                ));
            }
            if !robot_names.insert(r.name.as_str()) {
                return Err(problem(
                    key("name"),
                    format!("duplicate robot {:?}", r.name),
                ));
            }
            if r.key.trim().is_empty() || r.key.contains(['&', '?', '/', ' ']) {
                return Err(problem(
                    key("key"),
                    "must be the key= value of the robot's webhook URL",
                ));
            }
            if !(r.api_base.starts_with("http://") || r.api_base.starts_with("https://")) {
                return Err(problem(
                    key("api_base"),
                    "must start with http:// or https://",
                ));
            }
        }
        let mut templates = Templates::new();
        let mut routes = Vec::new();
        let mut names = HashSet::new();
        let ctx = RouteContext {
            apps,
            robots: &robot_names,
            group_wait,
            group_interval,
        };
        for (i, r) in self.routes.iter().enumerate() {
            let route = compile_route(
                r,
                &format!("alerts.routes[{i}]"),
                &ctx,
                &mut templates,
                false,
            )?;
            if !names.insert(route.name.clone()) {
                return Err(problem(
                    format!("alerts.routes[{i}].name"),
                    format!("duplicate route {:?}", route.name),
                ));
            }
            routes.push(route);
        }
        let default = match &self.default {
            Some(d) => {
                let route = compile_route(d, "alerts.default", &ctx, &mut templates, true)?;
                if names.contains(&route.name) {
                    return Err(problem(
                        "alerts.default.name",
                        format!("{:?} is also a route's name", route.name),
                    ));
                }
                Some(route)
            }
            None => None,
        };
        if routes.is_empty() && default.is_none() {
            return Err(problem(
                "alerts.default",
                "no route: add [alerts.default] (and [[alerts.routes]]) saying who gets alerts",
            ));
        }
        let route_names: Vec<&str> = routes
            .iter()
            .chain(default.as_ref())
            .map(|r| r.name.as_str())
            .collect();
        let remediations = Remediations::compile(&self.remediations, &route_names)?;
        let remediation_user = match self.remediation_user.as_deref().map(str::trim) {
            None => None,
            Some(u) if u.is_empty() || u.contains(['|', ' ']) => {
                return Err(problem(
                    "alerts.remediation_user",
                    "must be a user id (a [[users]] entry) without spaces or '|'",
                ))
            }
            Some(u) => Some(u.to_string()),
        };
        if let Some(i) = remediations.first_auto() {
            if remediation_user.is_none() {
                return Err(problem(
                    "alerts.remediation_user",
                    format!(
                        "alerts.remediations[{i}] runs automatically: name the user it runs as (a [[users]] id with a role for its command)"
                    ),
                ));
            }
        }
        Ok(Settings {
            router: Router::new(routes, default, timezone),
            templates,
            sources: self.sources.clone(),
            allow_ips,
            robots: self.robots.clone(),
            timezone,
            max_body_bytes: self.max_body_bytes,
            queue: self.queue,
            max_listed: self.max_listed,
            cards: None,
            card_ttl,
            remediations,
            remediation_user,
            flap,
            group_poll: GROUP_POLL,
            group_lease,
            rate_windows: None,
        })
    }
}

struct RouteContext<'a> {
    apps: &'a [&'a str],
    robots: &'a HashSet<&'a str>,
    group_wait: Duration,
    group_interval: Duration,
}

fn compile_route(
    r: &RouteConfig,
    at: &str,
    ctx: &RouteContext<'_>,
    templates: &mut Templates,
    is_default: bool,
) -> Result<Route, ConfigError> {
    let key = |f: &str| format!("{at}.{f}");
    let name = match (r.name.as_str(), is_default) {
        ("", true) => "default".to_string(),
        (n, _) if is_ident(n) => n.to_string(),
        (n, _) => {
            return Err(problem(
                key("name"),
                format!("{n:?} must be letters, digits, - or _ (it names the route in messages)"),
            ))
        }
    };
    if is_default && (!r.match_keys().is_empty() || r.continue_matching) {
        return Err(problem(
            at,
            "the default route takes every alert no route took: it has no match keys or continue",
        ));
    }
    let matcher = crate::routing::Matcher::compile(r.match_keys(), at)?;
    if let Some(app) = &r.app {
        if !ctx.apps.contains(&app.as_str()) {
            return Err(problem(
                key("app"),
                format!("no [[wecom.apps]] entry is named {app:?}"),
            ));
        }
    }
    let wants_app = !r.users.is_empty()
        || !r.parties.is_empty()
        || !r.tags.is_empty()
        || r.alert_recipients
        || r.appchat.is_some();
    if wants_app && r.app.is_none() {
        return Err(problem(
            key("app"),
            "users, parties, tags, alert_recipients and appchat are sent through an app: name one of [[wecom.apps]]",
        ));
    }
    for (i, robot) in r.robots.iter().enumerate() {
        if !ctx.robots.contains(robot.as_str()) {
            return Err(problem(
                format!("{}[{i}]", key("robots")),
                format!("no [[alerts.robots]] entry is named {robot:?}"),
            ));
        }
    }
    if !wants_app && r.robots.is_empty() {
        return Err(problem(
            at,
            "sends nowhere: give users, parties, tags, alert_recipients, appchat (with app) or robots",
        ));
    }
    for (list, what) in [
        (&r.users, "users"),
        (&r.parties, "parties"),
        (&r.tags, "tags"),
    ] {
        if let Some(i) = list
            .iter()
            .position(|id| id.trim().is_empty() || id.contains('|'))
        {
            return Err(problem(
                format!("{}[{i}]", key(what)),
                "must be a non-empty id without '|'",
            ));
        }
    }
    if let Some(chat) = &r.appchat {
        if chat.is_empty() || chat.len() > 32 || !chat.bytes().all(|b| b.is_ascii_alphanumeric()) {
            return Err(problem(
                key("appchat"),
                "must be a chat id of 1 to 32 letters or digits",
            ));
        }
    }
    let format = match r.format.as_deref() {
        None => None,
        Some("text") => Some(Format::Text),
        Some("markdown") => Some(Format::Markdown),
        Some(other) => {
            return Err(problem(
                key("format"),
                format!("{other:?} is not \"text\" or \"markdown\""),
            ))
        }
    };
    let text_template = match &r.text_template {
        Some(src) => {
            let id = format!("{name}.text");
            templates
                .add(&id, src)
                .map_err(|e| problem(key("text_template"), e))?;
            id
        }
        None => crate::template::DEFAULT_TEXT.to_string(),
    };
    let markdown_template = match &r.markdown_template {
        Some(src) => {
            let id = format!("{name}.markdown");
            templates
                .add(&id, src)
                .map_err(|e| problem(key("markdown_template"), e))?;
            id
        }
        None => crate::template::DEFAULT_MARKDOWN.to_string(),
    };
    let group_wait = match &r.group_wait {
        Some(v) => duration(&key("group_wait"), v)?,
        None => ctx.group_wait,
    };
    let group_interval = match &r.group_interval {
        Some(v) => duration(&key("group_interval"), v)?,
        None => ctx.group_interval,
    };
    Ok(Route {
        name,
        matcher,
        continue_matching: r.continue_matching,
        targets: Targets {
            app: r.app.clone(),
            users: r.users.clone(),
            parties: r.parties.clone(),
            tags: r.tags.clone(),
            alert_recipients: r.alert_recipients,
            appchat: r.appchat.clone(),
            robots: r.robots.clone(),
        },
        format,
        text_template,
        markdown_template,
        send_resolved: r.send_resolved,
        cards: r.cards,
        group_by: r.group_by.clone(),
        group_wait,
        group_interval,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str =
        "[sources.generic]\ntoken = \"0123456789\"\n[default]\napp = \"ops\"\nusers = [\"u\"]\n";

    fn compile(extra: &str) -> Result<Settings, ConfigError> {
        let c: AlertsConfig = toml::from_str(&format!("{extra}\n{BASE}")).unwrap();
        c.compile(&["ops"])
    }

    #[test]
    fn card_and_remediation_keys_have_defaults() {
        let s = compile("").unwrap();
        assert_eq!(s.card_ttl, Duration::from_secs(86_400));
        assert_eq!(
            s.flap,
            Flap {
                window: Duration::from_secs(3600),
                threshold: 3
            }
        );
        assert!(s.cards.is_none(), "the binary sets the keys");
        assert!(s.remediations.is_empty() && s.remediation_user.is_none());
        assert!(s.router.route("default").unwrap().cards);
    }

    #[test]
    fn card_and_remediation_keys_are_checked_by_name() {
        let auto = "[[remediations]]\nname = \"r\"\nseverity = [\"P0\"]\ncommand = \"重启:{{endpoint}}\"\nmode = \"auto\"\n";
        for (extra, key) in [
            ("card_ttl = \"soon\"", "alerts.card_ttl"),
            ("card_ttl = \"10s\"", "alerts.card_ttl"),
            ("card_ttl = \"4d\"", "alerts.card_ttl"),
            ("flap_window = \"2d\"", "alerts.flap_window"),
            ("flap_window = \"0s\"", "alerts.flap_window"),
            ("flap_threshold = 1", "alerts.flap_threshold"),
            ("remediation_user = \"a b\"", "alerts.remediation_user"),
            (auto, "alerts.remediation_user"),
        ] {
            let e = compile(extra).unwrap_err();
            assert_eq!(e.key, key, "{extra}: {e}");
        }
        let s = compile(&format!(
            "remediation_user = \"svc\"\nflap_threshold = 0\n{auto}"
        ))
        .unwrap();
        assert_eq!(s.remediation_user.as_deref(), Some("svc"));
        assert_eq!(s.flap.threshold, 0);
        let e = compile("[[remediations]]\nname = \"r\"\nroutes = [\"nope\"]\ncommand = \"x\"")
            .unwrap_err();
        assert_eq!(e.key, "alerts.remediations[0].routes[0]");
        assert!(e.problem.contains("default"), "{e}");
    }
}
