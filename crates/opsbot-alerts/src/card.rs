//! Alert cards: a group of firing alerts for app members becomes a card whose buttons
//! acknowledge it (`确认:42,43`), silence it for an hour or for the rest of the day,
//! and run the remediations its rules offer; automatic remediation's outcome is on it
//! too. Each button is a command the clicker could type, run as the clicker (the
//! channel checks the key, the engine the permission). The card's text is the route's
//! own message plus a line naming those commands, for surfaces without cards.

use crate::notify::{human_duration, icon, local_time};
use crate::silence::group_matcher;
use chrono::{DateTime, FixedOffset, Utc};
use opsbot_core::alerts::MAX_ACK_IDS;
use opsbot_core::card::{self, Action, Card, CardKeys, Field, Style, MAX_BUTTONS, MAX_FIELDS};
use opsbot_store::alerts::AlertRecord;
use std::time::Duration;

/// Who the card says it is from.
pub const SOURCE: &str = "opsbot 告警";
/// Alerts of a group listed by name in the sub title.
const LISTED: usize = 5;
/// Alert ids shown in the 编号 field of a group.
const IDS_SHOWN: usize = 8;

/// A remediation a person may start from the card.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Offer {
    /// The button's text.
    pub label: String,
    pub command: String,
    /// Roles a clicker needs one of (the rule's).
    pub roles: Vec<String>,
}

/// What a card is made of.
#[derive(Debug)]
pub struct AlertGroup<'a> {
    pub route: &'a str,
    /// The route's `group_by` (for the group's silence matcher).
    pub group_by: &'a [String],
    /// The firing alerts announced, oldest notice first; not empty.
    pub firing: &'a [&'a AlertRecord],
    /// How many resolved alerts the same message announces.
    pub resolved: usize,
    /// The route's message, rendered for this target (with the remediation outcomes).
    pub text: &'a str,
    pub markdown: bool,
    /// Remediations to offer, in rule order.
    pub offers: &'a [Offer],
    /// Automatic remediation's outcomes, one line each (`🤖 已自动执行 …`).
    pub outcomes: &'a [String],
    pub timezone: FixedOffset,
}

/// The card for `g`, its buttons signed with `keys` until `now + ttl`.
pub fn alert_card(keys: &CardKeys, g: &AlertGroup<'_>, now: DateTime<Utc>, ttl: Duration) -> Card {
    let first = g.firing[0];
    let expires_at = now.timestamp() + i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2);
    let task_id = card::task_id(&format!("al{}", first.id));
    let object = format!("al{}", first.id);
    let buttons = keys.for_card(&task_id, expires_at);
    let one = g.firing.len() == 1;

    let ids: Vec<String> = g
        .firing
        .iter()
        .take(MAX_ACK_IDS)
        .map(|a| a.id.to_string())
        .collect();
    let ack = format!("确认:{}", ids.join(","));
    let ack_text = if one {
        "确认"
    } else if g.firing.len() <= MAX_ACK_IDS {
        "全部确认"
    } else {
        "确认前 100 条"
    };
    let mut list =
        vec![buttons.button(ack_text, Style::Primary, "ack", &object, Action::run(&ack))];
    let mut typed = vec![ack];
    if let Some(matcher) = group_matcher(g.group_by, g.firing) {
        let hour = format!("静默:{matcher},1h");
        list.push(buttons.button(
            "静默 1 小时",
            Style::Secondary,
            "silence",
            &object,
            Action::run(&hour),
        ));
        list.push(buttons.button(
            "静默 今天",
            Style::Secondary,
            "silence",
            &object,
            Action::SilenceToday { matcher },
        ));
        typed.push(hour);
    }
    for (i, offer) in g.offers.iter().enumerate() {
        typed.push(offer.command.clone());
        if list.len() < MAX_BUTTONS {
            list.push(buttons.button(
                offer.label.clone(),
                Style::Danger,
                format!("fix-{i}"),
                &object,
                Action::Run {
                    command: offer.command.clone(),
                    roles: offer.roles.clone(),
                },
            ));
        }
    }

    let (title, desc, mut sub_title, fields) = if one {
        single(first, g)
    } else {
        several(g, now)
    };
    for line in g.outcomes {
        if !sub_title.is_empty() {
            sub_title.push('\n');
        }
        sub_title.push_str(line);
    }
    let text = format!("{}\n可发送: {}", g.text, typed.join(" · "));
    Card {
        task_id,
        source: SOURCE.into(),
        title,
        desc,
        sub_title,
        fields: fields.into_iter().take(MAX_FIELDS).collect(),
        selection: None,
        buttons: list,
        text,
        markdown: g.markdown,
        expires_at,
    }
}

type Parts = (String, String, String, Vec<Field>);

/// One alert: `🔴 HighCPU @web-01`, severity and start, its summary, its facts.
fn single(a: &AlertRecord, g: &AlertGroup<'_>) -> Parts {
    let mut title = format!("{} {}", icon(&a.severity), a.name);
    if !a.endpoint.is_empty() {
        title.push_str(&format!(" @{}", a.endpoint));
    }
    let since = local_time(a.starts_at, g.timezone);
    let desc = if a.severity.is_empty() {
        format!("{since} 起")
    } else {
        format!("{} · {since} 起", a.severity)
    };
    let sub_title = match &a.parse_error {
        Some(_) => format!("{}(未能解析,原文已保存)", a.summary),
        None => a.summary.clone(),
    };
    let instance = if a.endpoint.is_empty() {
        a.labels.get("instance").cloned().unwrap_or_default()
    } else {
        a.endpoint.clone()
    };
    let mut fields = vec![Field::new("编号", format!("#{}", a.id))];
    for (key, value) in [
        ("实例", instance),
        ("严重度", a.severity.clone()),
        ("开始", since),
        ("次数", a.occurrences.to_string()),
        ("来源", a.source.clone()),
    ] {
        if !value.is_empty() {
            fields.push(Field::new(key, value));
        }
    }
    if g.resolved > 0 {
        // Before 来源, which matters least.
        let at = fields.len().min(MAX_FIELDS - 1);
        fields.insert(at, Field::new("恢复", format!("{} 条", g.resolved)));
    }
    (title, desc, sub_title, fields)
}

/// A group: `🔴 3 条告警 · ops`, severities and the earliest start, the first few
/// alerts by name, counts and ids.
fn several(g: &AlertGroup<'_>, now: DateTime<Utc>) -> Parts {
    let worst = g
        .firing
        .iter()
        .map(|a| icon(&a.severity))
        .min_by_key(|i| ["🔴", "🟠", "🔵"].iter().position(|x| x == i))
        .unwrap_or("🔵");
    let title = format!("{worst} {} 条告警 · {}", g.firing.len(), g.route);
    // Severities in the order first seen, with their counts.
    let mut severities: Vec<(&str, usize)> = Vec::new();
    for a in g.firing {
        let s = if a.severity.is_empty() {
            "未分级"
        } else {
            a.severity.as_str()
        };
        match severities.iter_mut().find(|(k, _)| *k == s) {
            Some((_, n)) => *n += 1,
            None => severities.push((s, 1)),
        }
    }
    let severity = severities
        .iter()
        .map(|(s, n)| format!("{s} {n}"))
        .collect::<Vec<_>>()
        .join(" · ");
    let earliest = g
        .firing
        .iter()
        .map(|a| a.starts_at)
        .min()
        .unwrap_or_default();
    let since = local_time(earliest, g.timezone);
    let desc = format!("{severity} · 最早 {since} 起");
    let mut lines: Vec<String> = g
        .firing
        .iter()
        .take(LISTED)
        .map(|a| {
            let mut line = format!("#{} {}", a.id, a.name);
            if !a.endpoint.is_empty() {
                line.push_str(&format!(" @{}", a.endpoint));
            }
            line
        })
        .collect();
    if g.firing.len() > LISTED {
        lines.push(format!("…另有 {} 条", g.firing.len() - LISTED));
    }
    let mut ids: Vec<String> = g
        .firing
        .iter()
        .take(IDS_SHOWN)
        .map(|a| format!("#{}", a.id))
        .collect();
    if g.firing.len() > IDS_SHOWN {
        ids.push("…".into());
    }
    let mut fields = vec![
        Field::new("告警", format!("{} 条", g.firing.len())),
        Field::new("严重度", severity),
        Field::new("最早开始", since),
        Field::new("持续", human_duration(now - earliest)),
        Field::new("编号", ids.join(" ")),
    ];
    if g.resolved > 0 {
        fields.insert(1, Field::new("恢复", format!("{} 条", g.resolved)));
    }
    (title, desc, lines.join("\n"), fields)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn alert(id: i64, name: &str, endpoint: &str, labels: &[(&str, &str)]) -> AlertRecord {
        let at = chrono::DateTime::parse_from_rfc3339("2026-12-01T02:20:00Z")
            .unwrap()
            .with_timezone(&Utc);
        AlertRecord {
            id,
            fingerprint: format!("am:{id}"),
            source: "alertmanager".into(),
            status: "firing".into(),
            severity: "critical".into(),
            name: name.into(),
            summary: format!("{name} on {endpoint}"),
            endpoint: endpoint.into(),
            metric: String::new(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            annotations: BTreeMap::new(),
            recipients: vec![],
            parse_error: None,
            payload_id: 1,
            starts_at: at,
            ends_at: None,
            first_seen: at,
            last_seen: at,
            occurrences: 2,
            ack_by: None,
            ack_at: None,
        }
    }

    fn keys() -> CardKeys {
        CardKeys::new([9; 32])
    }

    fn group<'a>(
        firing: &'a [&'a AlertRecord],
        offers: &'a [Offer],
        outcomes: &'a [String],
    ) -> AlertGroup<'a> {
        AlertGroup {
            route: "critical",
            group_by: &[],
            firing,
            resolved: 0,
            text: "🔥【告警】…",
            markdown: false,
            offers,
            outcomes,
            timezone: FixedOffset::east_opt(8 * 3600).unwrap(),
        }
    }

    #[test]
    fn one_alert_card() {
        let a = alert(42, "HighCPU", "web-01:9100", &[("namespace", "payments")]);
        let offers = [Offer {
            label: "扩容 api".into(),
            command: "扩容:payments/api,+2".into(),
            roles: vec!["oncall".into()],
        }];
        let outcomes = ["🤖 已自动执行 重启:web-01 (#7)".to_string()];
        let now = Utc::now();
        let c = alert_card(
            &keys(),
            &group(&[&a], &offers, &outcomes),
            now,
            Duration::from_secs(3600),
        );
        assert!(c.task_id.starts_with("al42-"), "{}", c.task_id);
        assert_eq!(c.source, "opsbot 告警");
        assert_eq!(c.title, "🔴 HighCPU @web-01:9100");
        assert_eq!(c.desc, "critical · 12-01 10:20:00 起");
        assert_eq!(
            c.sub_title,
            "HighCPU on web-01:9100\n🤖 已自动执行 重启:web-01 (#7)"
        );
        let fields: Vec<(&str, &str)> = c
            .fields
            .iter()
            .map(|f| (f.key.as_str(), f.value.as_str()))
            .collect();
        assert_eq!(
            fields,
            [
                ("编号", "#42"),
                ("实例", "web-01:9100"),
                ("严重度", "critical"),
                ("开始", "12-01 10:20:00"),
                ("次数", "2"),
                ("来源", "alertmanager"),
            ]
        );
        let buttons: Vec<(&str, &str, &Action)> = c
            .buttons
            .iter()
            .map(|b| (b.text.as_str(), b.slot.as_str(), &b.action))
            .collect();
        assert_eq!(
            buttons,
            [
                ("确认", "ack", &Action::run("确认:42")),
                ("静默 1 小时", "silence", &Action::run("静默:#42,1h")),
                (
                    "静默 今天",
                    "silence",
                    &Action::SilenceToday {
                        matcher: "#42".into()
                    }
                ),
                (
                    "扩容 api",
                    "fix-0",
                    &Action::Run {
                        command: "扩容:payments/api,+2".into(),
                        roles: vec!["oncall".into()]
                    }
                ),
            ]
        );
        for b in &c.buttons {
            assert_eq!(keys().verify(&c.task_id, b, now.timestamp()), Ok(()));
            assert!(b.key.starts_with(&format!("{}.al42.", b.action.verb())));
        }
        assert_eq!(
            keys().verify(&c.task_id, &c.buttons[0], now.timestamp() + 3601),
            Err(opsbot_core::KeyError::Expired)
        );
        assert_eq!(c.expires_at, now.timestamp() + 3600);
        assert_eq!(
            c.text,
            "🔥【告警】…\n可发送: 确认:42 · 静默:#42,1h · 扩容:payments/api,+2"
        );
    }

    #[test]
    fn a_group_card_acks_and_silences_the_group() {
        let a = alert(42, "HighCPU", "web-01", &[("team", "ops"), ("job", "node")]);
        let b = alert(43, "HighCPU", "web-02", &[("team", "ops"), ("job", "node")]);
        let mut c3 = alert(
            44,
            "HighCPU",
            "web-03",
            &[("team", "ops"), ("job", "node exporter")],
        );
        c3.severity = "warning".into();
        let offers: Vec<Offer> = (0..5)
            .map(|i| Offer {
                label: format!("重启 {i}"),
                command: format!("重启:web-0{i}"),
                roles: vec![],
            })
            .collect();
        let firing = [&a, &b, &c3];
        let mut g = group(&firing, &offers, &[]);
        g.resolved = 1;
        let c = alert_card(&keys(), &g, Utc::now(), Duration::from_secs(86400));
        assert_eq!(c.title, "🔴 3 条告警 · critical");
        assert_eq!(c.desc, "critical 2 · warning 1 · 最早 12-01 10:20:00 起");
        assert_eq!(
            c.sub_title,
            "#42 HighCPU @web-01\n#43 HighCPU @web-02\n#44 HighCPU @web-03"
        );
        assert_eq!(c.fields[0], Field::new("告警", "3 条"));
        assert_eq!(c.fields[1], Field::new("恢复", "1 条"));
        assert_eq!(c.fields.last().unwrap(), &Field::new("编号", "#42 #43 #44"));
        assert!(c.fields.len() <= MAX_FIELDS);
        // 确认 all, silence what they share, and as many remediations as fit.
        assert_eq!(c.buttons.len(), MAX_BUTTONS);
        assert_eq!(c.buttons[0].text, "全部确认");
        assert_eq!(c.buttons[0].action, Action::run("确认:42,43,44"));
        assert_eq!(
            c.buttons[1].action,
            Action::run("静默:name=HighCPU&team=ops,1h")
        );
        assert_eq!(
            c.buttons[2].action,
            Action::SilenceToday {
                matcher: "name=HighCPU&team=ops".into()
            }
        );
        assert_eq!(c.buttons[5].text, "重启 2");
        // The text names every command, also the remediations no button had room for.
        assert!(
            c.text.ends_with("可发送: 确认:42,43,44 · 静默:name=HighCPU&team=ops,1h · 重启:web-00 · 重启:web-01 · 重启:web-02 · 重启:web-03 · 重启:web-04"),
            "{}",
            c.text
        );
        let matcher = crate::silence::Matcher::parse("name=HighCPU&team=ops").unwrap();
        assert!(firing
            .iter()
            .all(|a| matcher.matches(&crate::routing::Facts::from(*a))));
    }
}
