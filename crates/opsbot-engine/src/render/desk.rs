//! Every sentence about what the subsystems' desks report: the firing-alert and
//! dead-letter list lines, alert acknowledgements and silences (`opsbot_core::alerts`),
//! and why a desk could not answer. The desks report
//! data; wording lives only here.

use opsbot_core::alerts::severity_icon;
use opsbot_core::{
    Acked, AlertRef, DeadLetter, DeskError, FiringAlert, Recipient, Silence, Silenced,
};

/// Which command a desk error answers: the same fact reads a little differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Asked {
    /// 告警, 告警:死信.
    Alerts,
    Ack,
    Silence,
    Asset,
}

/// `#42 HighCPU @web-01`, the endpoint only when there is one.
fn endpoint(a: &AlertRef) -> String {
    if a.endpoint.is_empty() {
        String::new()
    } else {
        format!(" @{}", a.endpoint)
    }
}

/// A line of 告警: `#42 🔴critical HighCPU @web-01 · 12-01 10:20:00 起 · ✔zhangsan`.
pub fn firing(a: &FiringAlert) -> String {
    let mut line = format!(
        "#{} {}{} {}",
        a.id,
        severity_icon(&a.severity),
        a.severity,
        a.name
    );
    if !a.endpoint.is_empty() {
        line.push_str(&format!(" @{}", a.endpoint));
    }
    line.push_str(&format!(" · {} 起", a.since.format("%m-%d %H:%M:%S")));
    if let Some(by) = &a.acked_by {
        line.push_str(&format!(" · ✔{by}"));
    }
    if a.unparsed {
        line.push_str(" · ⚠未解析");
    }
    line
}

/// A line of 告警:死信: `#7 12-01 10:20:00 ops → zhangsan: errcode 81013 …`.
pub fn dead_letter(d: &DeadLetter) -> String {
    // The platform's reason can be long; the first 240 characters say it.
    let why: String = d.error.chars().take(240).collect();
    format!(
        "#{} {} {} → {}: {why}",
        d.id,
        d.at.format("%m-%d %H:%M:%S"),
        d.app,
        recipient(&d.to)
    )
}

/// Who a dead letter was for, in a few words.
fn recipient(r: &Recipient) -> String {
    match r {
        Recipient::User(user) => user.clone(),
        Recipient::Chat(chat) => format!("群聊 {chat}"),
        Recipient::Members {
            users,
            parties,
            tags,
        } => {
            let mut who: Vec<String> = users.clone();
            who.extend(parties.iter().map(|p| format!("部门{p}")));
            who.extend(tags.iter().map(|t| format!("标签{t}")));
            if who.is_empty() {
                "(无接收人)".into()
            } else {
                who.join("|")
            }
        }
        Recipient::Robot => "群机器人".into(),
        Recipient::Unknown => "?".into(),
    }
}

/// What `确认:id` did.
pub fn acked(a: &Acked) -> String {
    match a {
        Acked::Now {
            alert,
            recovered,
            told,
        } => format!(
            "✅ 已确认告警 #{} {}{}{},已通知: {}",
            alert.id,
            alert.name,
            endpoint(alert),
            if *recovered { "(已恢复)" } else { "" },
            if told.is_empty() {
                "(无路由)".to_string()
            } else {
                told.join("、")
            }
        ),
        Acked::Already { alert, by, at } => format!(
            "告警 #{} {} 已由 {} 于 {} 确认",
            alert.id,
            alert.name,
            by.as_deref().unwrap_or("?"),
            at.map(|t| t.format("%m-%d %H:%M:%S").to_string())
                .unwrap_or_default()
        ),
    }
}

/// What `静默` did.
pub fn silence(s: &Silence) -> String {
    let shown = match &s.what {
        Silenced::Alert { id, name } => format!("#{id} {name}"),
        Silenced::Matching(m) => m.clone(),
    };
    format!(
        "🔕 已静默「{shown}」{},至 {};当前匹配 {} 条正在发生的告警。期间的告警照常记录,只是不通知",
        minutes(s.minutes),
        s.until.format("%m-%d %H:%M:%S"),
        s.covered
    )
}

/// `45 分钟`, `2 小时 0 分钟`, `1 天 0 小时`.
fn minutes(m: u32) -> String {
    match m {
        // What the gateway's duration wording says of no time at all.
        0 => "0 秒".to_string(),
        1..60 => format!("{m} 分钟"),
        60..1440 => format!("{} 小时 {} 分钟", m / 60, m % 60),
        _ => format!("{} 天 {} 小时", m / 1440, m % 1440 / 60),
    }
}

/// Why a desk could not answer `asked`.
pub fn error(e: &DeskError, asked: Asked) -> String {
    match (e, asked) {
        (DeskError::BadAlertId(text), _) => {
            format!("告警编号「{text}」不是数字,例如 确认:42(发送 告警 查看编号)")
        }
        (DeskError::NoSuchAlert(id), Asked::Ack) => {
            format!("没有编号为 #{id} 的告警,发送 告警 查看正在发生的告警")
        }
        (DeskError::NoSuchAlert(id), _) => format!("没有编号为 #{id} 的告警"),
        (DeskError::BadMatcher(why), _) => {
            format!("{why}。例: 静默:web-*,2h 或 静默:team=dba&severity=warning,30m 或 静默:#42,1d")
        }
        (DeskError::Unavailable(why), Asked::Asset) => {
            format!("⚠ 存储暂不可用: {why}。请稍后重试")
        }
        (DeskError::Unavailable(why), _) => format!("⚠ 告警网关暂不可用: {why}。请稍后重试"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{FixedOffset, TimeZone};

    #[test]
    fn list_lines_say_what_the_rows_hold() {
        let tz = FixedOffset::east_opt(8 * 3600).expect("offset");
        let at = tz
            .with_ymd_and_hms(2026, 3, 4, 5, 6, 7)
            .single()
            .expect("time");
        let mut a = FiringAlert {
            id: 42,
            name: "HighCPU".into(),
            severity: "critical".into(),
            endpoint: "web-01".into(),
            since: at,
            acked_by: Some("zhangsan".into()),
            unparsed: true,
        };
        assert_eq!(
            firing(&a),
            "#42 🔴critical HighCPU @web-01 · 03-04 05:06:07 起 · ✔zhangsan · ⚠未解析"
        );
        (a.severity, a.endpoint, a.acked_by, a.unparsed) =
            (String::new(), String::new(), None, false);
        assert_eq!(firing(&a), "#42 🔵 HighCPU · 03-04 05:06:07 起");
        let mut d = DeadLetter {
            id: 7,
            at,
            app: "ops".into(),
            to: Recipient::Members {
                users: vec!["a".into()],
                parties: vec!["2".into()],
                tags: vec!["t".into()],
            },
            error: "x".repeat(300),
        };
        assert_eq!(
            dead_letter(&d),
            format!("#7 03-04 05:06:07 ops → a|部门2|标签t: {}", "x".repeat(240))
        );
        for (to, shown) in [
            (Recipient::Chat("c1".into()), "群聊 c1"),
            (Recipient::Robot, "群机器人"),
            (Recipient::Unknown, "?"),
            (
                Recipient::Members {
                    users: vec![],
                    parties: vec![],
                    tags: vec![],
                },
                "(无接收人)",
            ),
        ] {
            d.to = to;
            assert!(dead_letter(&d).contains(&format!("→ {shown}:")), "{shown}");
        }
    }

    #[test]
    fn durations_read_as_the_gateway_wrote_them() {
        assert_eq!(minutes(30), "30 分钟");
        assert_eq!(minutes(120), "2 小时 0 分钟");
        assert_eq!(minutes(1500), "1 天 1 小时");
    }

    #[test]
    fn acks_and_silences_are_worded_once() {
        let alert = AlertRef {
            id: 42,
            name: "HighCPU".into(),
            endpoint: "web-01".into(),
        };
        let now = Acked::Now {
            alert: alert.clone(),
            recovered: true,
            told: vec!["ops".into(), "dba".into()],
        };
        assert_eq!(
            acked(&now),
            "✅ 已确认告警 #42 HighCPU @web-01(已恢复),已通知: ops、dba"
        );
        let tz = FixedOffset::east_opt(8 * 3600).expect("offset");
        let at = tz.with_ymd_and_hms(2026, 3, 4, 5, 6, 7).single();
        let already = Acked::Already {
            alert,
            by: Some("zhangsan".into()),
            at,
        };
        assert_eq!(
            acked(&already),
            "告警 #42 HighCPU 已由 zhangsan 于 03-04 05:06:07 确认"
        );
        let s = Silence {
            what: Silenced::Matching("web-*".into()),
            minutes: 60,
            until: at.expect("time"),
            covered: 1,
        };
        assert_eq!(
            silence(&s),
            "🔕 已静默「web-*」1 小时 0 分钟,至 03-04 05:06:07;当前匹配 1 条正在发生的告警。期间的告警照常记录,只是不通知"
        );
    }
}
