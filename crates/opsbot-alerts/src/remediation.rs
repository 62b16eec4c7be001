//! Remediation rules (`[[alerts.remediations]]`): what can be done about an alert, as
//! a command template over it (`扩容:{{labels.namespace}}/{{labels.deployment}},+2`).
//! A `button` rule is offered on the alert's card, for whoever may run the command; an
//! `auto` rule runs at once as the service identity, within its hourly limit and
//! cool-down, unless the alert is flapping ([`crate::auto`]).
//!
//! Rules match with the routes' own keys (sources, severity, alertname, endpoint,
//! metric, labels, time, days) and may be limited to some routes. Templates are compiled
//! when the configuration loads. A variable the alert does not have, or has empty,
//! skips the rule for that alert (and says so in the log): a half-written command
//! (`扩容:/api,+2`) is never offered or run.

use crate::config::{duration, is_ident, problem, ConfigError};
use crate::routing::{Facts, MatchKeys, Matcher};
use crate::template::AlertView;
use chrono::{DateTime, FixedOffset};
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior};
use opsbot_store::alerts::AlertRecord;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

/// One `[[alerts.remediations]]` rule as written.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RemediationConfig {
    /// Names the rule in logs and its hourly limit.
    pub name: String,
    /// Only alerts announced on these routes (route names); none = any route.
    pub routes: Vec<String>,
    // ---- what it matches: the routes' keys, all given criteria, any entry of a list --
    pub sources: Vec<String>,
    pub severity: Vec<String>,
    pub alertname: Vec<String>,
    pub endpoint: Vec<String>,
    pub metric: Vec<String>,
    pub labels: BTreeMap<String, String>,
    pub time: Vec<String>,
    pub days: Vec<String>,
    // ---- what it does ---------------------------------------------------------------
    /// A chat command, as a minijinja template over the alert (`labels`, `endpoint`,
    /// `name`, `severity`, `annotations`, `id`, …).
    pub command: String,
    /// The button's text (a template too); default: the command.
    pub label: Option<String>,
    /// `button` (default) or `auto`.
    pub mode: Option<String>,
    /// Only clickers holding one of these roles may use the button (on top of the
    /// command's own permission).
    pub roles: Vec<String>,
    /// `auto` only: runs of this rule per hour, at most (default 3).
    pub max_per_hour: Option<u32>,
    /// `auto` only: not the same command again within this (default 15m).
    pub cooldown: Option<String>,
}

impl RemediationConfig {
    fn match_keys(&self) -> MatchKeys<'_> {
        MatchKeys {
            sources: &self.sources,
            severity: &self.severity,
            status: None,
            alertname: &self.alertname,
            endpoint: &self.endpoint,
            metric: &self.metric,
            labels: &self.labels,
            time: &self.time,
            days: &self.days,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Offered on the card.
    Button,
    /// Run when the alert is announced.
    Auto,
}

const DEFAULT_MAX_PER_HOUR: u32 = 3;
const DEFAULT_COOLDOWN: &str = "15m";
/// The shortest cool-down: it is also what keeps two instances sending one group
/// from running its remediation twice.
const MIN_COOLDOWN: Duration = Duration::from_secs(60);

/// A compiled rule.
#[derive(Debug)]
pub struct Rule {
    pub name: String,
    matcher: Matcher,
    routes: Vec<String>,
    /// Template names in [`Remediations`]' environment.
    command: String,
    label: Option<String>,
    pub mode: Mode,
    pub roles: Vec<String>,
    pub max_per_hour: u32,
    pub cooldown: Duration,
}

/// A rule filled in for one alert.
#[derive(Debug, Clone)]
pub struct Filled<'a> {
    pub rule: &'a Rule,
    pub command: String,
    pub label: String,
}

/// Every rule, with the templates they render.
pub struct Remediations {
    rules: Vec<Rule>,
    env: Environment<'static>,
}

impl std::fmt::Debug for Remediations {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remediations")
            .field("rules", &self.rules)
            .finish_non_exhaustive()
    }
}

impl Default for Remediations {
    fn default() -> Self {
        Remediations {
            rules: Vec::new(),
            env: strict_env(),
        }
    }
}

/// Templates that refuse to print what the alert does not have: an undefined
/// variable, none, or an empty string is an error, not an empty piece of a command.
fn strict_env() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_formatter(|out, state, value| {
        if value.is_undefined()
            || value.is_none()
            || value.as_str().is_some_and(|s| s.trim().is_empty())
        {
            return Err(Error::new(
                ErrorKind::UndefinedError,
                "a value in the template is missing or empty",
            ));
        }
        minijinja::escape_formatter(out, state, value)
    });
    env
}

fn describe(e: &Error) -> String {
    let what = match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    };
    match e.line() {
        Some(line) => format!("line {line}: {what}"),
        None => what,
    }
}

impl Remediations {
    /// Checks and compiles `configs`; `routes` are the route names a rule may name.
    pub fn compile(
        configs: &[RemediationConfig],
        routes: &[&str],
    ) -> Result<Remediations, ConfigError> {
        let mut out = Remediations::default();
        let mut names = HashSet::new();
        for (i, c) in configs.iter().enumerate() {
            let at = format!("alerts.remediations[{i}]");
            let key = |f: &str| format!("{at}.{f}");
            if !is_ident(&c.name) {
                return Err(problem(
                    key("name"),
                    format!(
                        "{:?} must be 1 to 64 letters, digits, - or _ (it names the rule's hourly limit)",
                        c.name
                    ),
                ));
            }
            if !names.insert(c.name.as_str()) {
                return Err(problem(key("name"), format!("duplicate rule {:?}", c.name)));
            }
            for (j, r) in c.routes.iter().enumerate() {
                if !routes.contains(&r.as_str()) {
                    return Err(problem(
                        format!("{}[{j}]", key("routes")),
                        format!("no route is named {r:?} (routes: {})", routes.join(", ")),
                    ));
                }
            }
            if c.routes.is_empty() && c.match_keys().is_empty() {
                return Err(problem(
                    &at,
                    "matches every alert: give routes or match keys (severity, alertname, labels, …)",
                ));
            }
            let matcher = Matcher::compile(c.match_keys(), &at)?;
            let mode = match c.mode.as_deref() {
                None | Some("button") => Mode::Button,
                Some("auto") => Mode::Auto,
                Some(other) => {
                    return Err(problem(
                        key("mode"),
                        format!("{other:?} is not \"button\" or \"auto\""),
                    ))
                }
            };
            if mode == Mode::Button {
                for (given, what) in [
                    (c.max_per_hour.is_some(), "max_per_hour"),
                    (c.cooldown.is_some(), "cooldown"),
                ] {
                    if given {
                        return Err(problem(
                            key(what),
                            "only a rule with mode = \"auto\" takes it",
                        ));
                    }
                }
            }
            let max_per_hour = c.max_per_hour.unwrap_or(DEFAULT_MAX_PER_HOUR);
            if max_per_hour == 0 {
                return Err(problem(
                    key("max_per_hour"),
                    "must be at least 1 (to stop a rule, remove it or make it a button)",
                ));
            }
            let cooldown = duration(
                &key("cooldown"),
                c.cooldown.as_deref().unwrap_or(DEFAULT_COOLDOWN),
            )?;
            if cooldown < MIN_COOLDOWN {
                return Err(problem(
                    key("cooldown"),
                    "must be at least 1m (it also keeps two instances from running one alert's remediation twice)",
                ));
            }
            for (j, role) in c.roles.iter().enumerate() {
                if role.trim().is_empty() {
                    return Err(problem(
                        format!("{}[{j}]", key("roles")),
                        "must be a role name",
                    ));
                }
            }
            if c.command.trim().is_empty() {
                return Err(problem(
                    key("command"),
                    "is missing: the chat command to run, e.g. 重启:{{labels.host}}",
                ));
            }
            let command = format!("r{i}.command");
            out.add(&command, &c.command)
                .map_err(|e| problem(key("command"), e))?;
            let label = match &c.label {
                Some(l) if l.trim().is_empty() => {
                    return Err(problem(
                        key("label"),
                        "is empty: leave it out to show the command",
                    ))
                }
                Some(l) => {
                    let id = format!("r{i}.label");
                    out.add(&id, l).map_err(|e| problem(key("label"), e))?;
                    Some(id)
                }
                None => None,
            };
            out.rules.push(Rule {
                name: c.name.clone(),
                matcher,
                routes: c.routes.clone(),
                command,
                label,
                mode,
                roles: c.roles.iter().map(|r| r.trim().to_string()).collect(),
                max_per_hour,
                cooldown,
            });
        }
        Ok(out)
    }

    /// Compiles template `id`; tries it on a sample alert so an unknown filter or a
    /// wrong call is reported now. (What the sample lacks is no error: real alerts
    /// carry other labels.)
    fn add(&mut self, id: &str, source: &str) -> Result<(), String> {
        self.env
            .add_template_owned(id.to_string(), source.to_string())
            .map_err(|e| describe(&e))?;
        let sample = crate::template::sample().firing.remove(0);
        match self
            .env
            .get_template(id)
            .map_err(|e| describe(&e))?
            .render(&sample)
        {
            Ok(_) => Ok(()),
            Err(e) if e.kind() == ErrorKind::UndefinedError => Ok(()),
            Err(e) => Err(describe(&e)),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// The index of the first `auto` rule, if any.
    pub fn first_auto(&self) -> Option<usize> {
        self.rules.iter().position(|r| r.mode == Mode::Auto)
    }

    /// The rules for `alert` announced on `route` at `at`, filled in, in configured
    /// order. A rule the alert cannot fill is left out and logged.
    pub fn for_alert(
        &self,
        route: &str,
        alert: &AlertRecord,
        view: &AlertView,
        at: DateTime<FixedOffset>,
    ) -> Vec<Filled<'_>> {
        let facts = Facts::from(alert);
        self.rules
            .iter()
            .filter(|r| r.routes.is_empty() || r.routes.iter().any(|n| n == route))
            .filter(|r| r.matcher.matches(&facts, at))
            .filter_map(|rule| match self.fill(rule, view) {
                Ok(filled) => Some(filled),
                Err(why) => {
                    tracing::warn!(rule = %rule.name, alert = alert.id, %why, "remediation rule skipped: the alert does not fill its template");
                    None
                }
            })
            .collect()
    }

    /// `rule` filled in with `view`; `Err` says which values were missing.
    pub fn fill<'a>(&self, rule: &'a Rule, view: &AlertView) -> Result<Filled<'a>, String> {
        let command = self.render(&rule.command, view)?;
        let label = match &rule.label {
            Some(id) => self.render(id, view)?,
            None => command.clone(),
        };
        Ok(Filled {
            rule,
            command,
            label,
        })
    }

    fn render(&self, id: &str, view: &AlertView) -> Result<String, String> {
        let t = self.env.get_template(id).map_err(|e| describe(&e))?;
        match t.render(view) {
            Ok(text) => Ok(text.trim().to_string()),
            Err(e) if e.kind() == ErrorKind::UndefinedError => {
                let context = serde_json::to_value(view).unwrap_or_default();
                let missing: BTreeSet<String> = t
                    .undeclared_variables(true)
                    .into_iter()
                    .filter(|path| !filled(&context, path))
                    .collect();
                if missing.is_empty() {
                    Err(describe(&e))
                } else {
                    let list: Vec<String> = missing.into_iter().collect();
                    Err(format!("missing or empty: {}", list.join(", ")))
                }
            }
            Err(e) => Err(describe(&e)),
        }
    }
}

/// Whether `path` (`labels.namespace`) names a non-empty value in `context`.
fn filled(context: &serde_json::Value, path: &str) -> bool {
    let mut v = context;
    for part in path.split('.') {
        match v.get(part) {
            Some(next) => v = next,
            None => return false,
        }
    }
    match v {
        serde_json::Value::Null => false,
        serde_json::Value::String(s) => !s.trim().is_empty(),
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::template::sample;

    fn rules(toml_text: &str) -> Result<Remediations, ConfigError> {
        #[derive(Deserialize)]
        struct Doc {
            remediations: Vec<RemediationConfig>,
        }
        let doc: Doc = toml::from_str(toml_text).unwrap();
        Remediations::compile(&doc.remediations, &["ops", "default"])
    }

    #[test]
    fn commands_render_from_the_alert_or_not_at_all() {
        let r = rules(
            r#"
[[remediations]]
name = "scale"
labels = { team = "ops" }
command = "扩容:{{labels.namespace}}/{{labels.deployment}},+2"
label = "扩容 {{labels.deployment}}"
mode = "auto"
roles = ["oncall"]
"#,
        )
        .unwrap();
        let rule = &r.rules()[0];
        assert_eq!((rule.mode, rule.max_per_hour), (Mode::Auto, 3));
        assert_eq!(rule.cooldown, Duration::from_secs(900));
        let mut view = sample().firing.remove(0);
        view.labels.insert("namespace".into(), "payments".into());
        view.labels.insert("deployment".into(), "api".into());
        let filled = r.fill(rule, &view).unwrap();
        assert_eq!(filled.command, "扩容:payments/api,+2");
        assert_eq!(filled.label, "扩容 api");
        // A label missing, or empty: the rule is skipped, saying which.
        view.labels.remove("deployment");
        let e = r.fill(rule, &view).unwrap_err();
        assert_eq!(e, "missing or empty: labels.deployment");
        view.labels.insert("deployment".into(), " ".into());
        view.labels.insert("namespace".into(), String::new());
        let e = r.fill(rule, &view).unwrap_err();
        assert_eq!(e, "missing or empty: labels.deployment, labels.namespace");
    }

    #[test]
    fn rules_match_like_routes_and_keep_to_their_routes() {
        let r = rules(
            r#"
[[remediations]]
name = "reboot"
routes = ["ops"]
severity = ["critical"]
command = "重启:{{endpoint}}"
[[remediations]]
name = "any-route"
alertname = ["High*"]
command = "开机:{{endpoint}}"
"#,
        )
        .unwrap();
        let alert = AlertRecord {
            id: 1,
            fingerprint: "f".into(),
            source: "alertmanager".into(),
            status: "firing".into(),
            severity: "critical".into(),
            name: "HighCPU".into(),
            summary: String::new(),
            endpoint: "web-01".into(),
            metric: String::new(),
            labels: BTreeMap::new(),
            annotations: BTreeMap::new(),
            recipients: vec![],
            parse_error: None,
            payload_id: 1,
            starts_at: chrono::Utc::now(),
            ends_at: None,
            first_seen: chrono::Utc::now(),
            last_seen: chrono::Utc::now(),
            occurrences: 1,
            ack_by: None,
            ack_at: None,
        };
        let view = crate::notify::view(&alert, FixedOffset::east_opt(0).unwrap());
        let at = chrono::Utc::now().fixed_offset();
        let commands = |route: &str, a: &AlertRecord| -> Vec<String> {
            r.for_alert(route, a, &view, at)
                .into_iter()
                .map(|f| f.command)
                .collect()
        };
        assert_eq!(commands("ops", &alert), ["重启:web-01", "开机:web-01"]);
        assert_eq!(commands("default", &alert), ["开机:web-01"]);
        let mut warning = alert.clone();
        warning.severity = "warning".into();
        assert_eq!(commands("ops", &warning), ["开机:web-01"]);
    }

    #[test]
    fn every_key_is_checked_by_name() {
        let cases = [
            ("name = \"a b\"\ncommand = \"x\"\nseverity = [\"P0\"]", "alerts.remediations[0].name"),
            ("name = \"a\"\ncommand = \"x\"\nroutes = [\"nope\"]", "alerts.remediations[0].routes[0]"),
            ("name = \"a\"\ncommand = \"x\"", "alerts.remediations[0]"),
            ("name = \"a\"\nseverity = [\"P0\"]", "alerts.remediations[0].command"),
            ("name = \"a\"\ncommand = \"重启:{{ endpoint }\"\nseverity = [\"P0\"]", "alerts.remediations[0].command"),
            ("name = \"a\"\ncommand = \"重启:{{ endpoint|nosuchfilter }}\"\nseverity = [\"P0\"]", "alerts.remediations[0].command"),
            ("name = \"a\"\ncommand = \"x\"\nlabel = \"{% if %}\"\nseverity = [\"P0\"]", "alerts.remediations[0].label"),
            ("name = \"a\"\ncommand = \"x\"\nseverity = [\"P0\"]\nmode = \"sometimes\"", "alerts.remediations[0].mode"),
            ("name = \"a\"\ncommand = \"x\"\nseverity = [\"P0\"]\nmax_per_hour = 2", "alerts.remediations[0].max_per_hour"),
            ("name = \"a\"\ncommand = \"x\"\nseverity = [\"P0\"]\nmode = \"auto\"\nmax_per_hour = 0", "alerts.remediations[0].max_per_hour"),
            ("name = \"a\"\ncommand = \"x\"\nseverity = [\"P0\"]\nmode = \"auto\"\ncooldown = \"soon\"", "alerts.remediations[0].cooldown"),
            ("name = \"a\"\ncommand = \"x\"\nseverity = [\"P0\"]\nmode = \"auto\"\ncooldown = \"10s\"", "alerts.remediations[0].cooldown"),
            ("name = \"a\"\ncommand = \"x\"\nseverity = [\"P0\"]\nroles = [\"\"]", "alerts.remediations[0].roles[0]"),
            ("name = \"a\"\ncommand = \"x\"\nlabels = { team = \"[\" }", "alerts.remediations[0].labels.team"),
            ("name = \"a\"\ncommand = \"x\"\nsources = [\"nagios\"]", "alerts.remediations[0].sources[0]"),
        ];
        for (text, key) in cases {
            let e = rules(&format!("[[remediations]]\n{text}")).unwrap_err();
            assert_eq!(e.key, key, "{text}: {e}");
        }
        let e = rules(
            "[[remediations]]\nname = \"a\"\ncommand = \"x\"\nseverity = [\"P0\"]\n[[remediations]]\nname = \"a\"\ncommand = \"y\"\nseverity = [\"P0\"]",
        )
        .unwrap_err();
        assert_eq!(e.key, "alerts.remediations[1].name");
        let e = rules(
            "[[remediations]]\nname = \"a\"\ncommand = \"重启:{{ endpoint }\"\nseverity = [\"P0\"]",
        )
        .unwrap_err();
        assert!(e.problem.starts_with("line 1:"), "{e}");
    }
}
