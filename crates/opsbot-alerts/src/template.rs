//! Message templates (minijinja). Every route renders its group message with a text
//! and a markdown template: its own, or the built-in Chinese defaults below. Templates
//! are compiled, and tried on a sample group, when the configuration loads, so a
//! mistake is reported with its line before opsbot starts, not at 3 a.m.
//!
//! The context of a group message: `route`, `group`, `firing` and `resolved` (lists of
//! alerts), `count`, `max_listed`. Each alert has `id`, `source`, `status`,
//! `severity`, `icon`, `name`, `summary`, `endpoint`, `metric`, `labels`,
//! `annotations`, `recipients`, `starts_at`, `ends_at`, `duration`, `occurrences`,
//! `ack_by`, `parse_error`.

use minijinja::{Environment, UndefinedBehavior};
use serde::Serialize;
use std::collections::BTreeMap;

pub const DEFAULT_TEXT: &str = "default.text";
pub const DEFAULT_MARKDOWN: &str = "default.markdown";

const TEXT: &str = r#"{% if firing %}🔥【告警】{{ firing|length }} 条{% if resolved %},✅ 恢复 {{ resolved|length }} 条{% endif %}{% else %}✅【恢复】{{ resolved|length }} 条{% endif %} · {{ route }}
{% for a in firing[:max_listed] %}
#{{ a.id }} {{ a.icon }}{{ a.severity }} {{ a.name }}{% if a.endpoint %} @{{ a.endpoint }}{% endif %}

  {{ a.summary }}{% if a.parse_error %}(未能解析,原文已保存){% endif %} · {{ a.starts_at }}
{% endfor %}
{% if firing|length > max_listed %}
…另有 {{ firing|length - max_listed }} 条告警
{% endif %}
{% for a in resolved[:max_listed] %}
✅ #{{ a.id }} {{ a.name }}{% if a.endpoint %} @{{ a.endpoint }}{% endif %} 已恢复{% if a.duration %}(持续 {{ a.duration }}){% endif %}

{% endfor %}
{% if resolved|length > max_listed %}
…另有 {{ resolved|length - max_listed }} 条恢复
{% endif %}
发送 告警 查看全部 · 确认:编号 · 静默:匹配,时长"#;

const MARKDOWN: &str = r#"{% if firing %}### 🔥 告警 {{ firing|length }} 条{% if resolved %},恢复 {{ resolved|length }} 条{% endif %} · {{ route }}{% else %}### ✅ 恢复 {{ resolved|length }} 条 · {{ route }}{% endif %}

{% for a in firing[:max_listed] %}
> **#{{ a.id }}** <font color="warning">{{ a.severity }}</font> {{ a.name }}{% if a.endpoint %} @{{ a.endpoint }}{% endif %}

> {{ a.summary }} · <font color="comment">{{ a.starts_at }}</font>
{% endfor %}
{% if firing|length > max_listed %}
…另有 {{ firing|length - max_listed }} 条告警
{% endif %}
{% for a in resolved[:max_listed] %}
> <font color="info">已恢复</font> #{{ a.id }} {{ a.name }}{% if a.endpoint %} @{{ a.endpoint }}{% endif %}{% if a.duration %}(持续 {{ a.duration }}){% endif %}

{% endfor %}
{% if resolved|length > max_listed %}
…另有 {{ resolved|length - max_listed }} 条恢复
{% endif %}
<font color="comment">发送 告警 查看全部 · 确认:编号 · 静默:匹配,时长</font>"#;

/// One alert as templates see it.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AlertView {
    pub id: i64,
    pub source: String,
    pub status: String,
    pub severity: String,
    pub icon: String,
    pub name: String,
    pub summary: String,
    pub endpoint: String,
    pub metric: String,
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub recipients: Vec<String>,
    pub starts_at: String,
    pub ends_at: String,
    pub duration: String,
    pub occurrences: i64,
    pub ack_by: String,
    pub parse_error: String,
}

/// A group message's context.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct GroupView {
    pub route: String,
    pub group: String,
    pub firing: Vec<AlertView>,
    pub resolved: Vec<AlertView>,
    pub count: usize,
    pub max_listed: usize,
}

#[derive(Debug)]
pub struct Templates {
    env: Environment<'static>,
}

impl Default for Templates {
    fn default() -> Self {
        Self::new()
    }
}

impl Templates {
    /// The built-in defaults.
    pub fn new() -> Self {
        let mut env = Environment::new();
        // Block tags on their own lines leave no blank lines behind.
        env.set_trim_blocks(true);
        env.set_lstrip_blocks(true);
        env.set_undefined_behavior(UndefinedBehavior::Lenient);
        env.add_template(DEFAULT_TEXT, TEXT)
            .expect("built-in text template compiles");
        env.add_template(DEFAULT_MARKDOWN, MARKDOWN)
            .expect("built-in markdown template compiles");
        Templates { env }
    }

    /// Compiles `source` as template `id` and renders it once on a sample group;
    /// the error names the line.
    pub fn add(&mut self, id: &str, source: &str) -> Result<(), String> {
        self.env
            .add_template_owned(id.to_string(), source.to_string())
            .map_err(describe)?;
        self.render(id, &sample()).map(drop)
    }

    /// Renders template `id`.
    pub fn render(&self, id: &str, group: &GroupView) -> Result<String, String> {
        let t = self.env.get_template(id).map_err(describe)?;
        let text = t
            .render(minijinja::Value::from_serialize(group))
            .map_err(describe)?;
        Ok(text.trim().to_string())
    }

    /// Renders `id`, falling back to the built-in `default` when the route's own
    /// template fails at run time (the message must still go out).
    pub fn render_or_default(&self, id: &str, default: &str, group: &GroupView) -> String {
        match self.render(id, group) {
            Ok(text) if !text.is_empty() => text,
            Ok(_) => self.render(default, group).unwrap_or_default(),
            Err(e) => {
                tracing::error!(template = id, error = %e, "alert template failed; using the built-in one");
                self.render(default, group)
                    .unwrap_or_else(|e| format!("告警 {} 条(模板错误: {e})", group.count))
            }
        }
    }
}

fn describe(e: minijinja::Error) -> String {
    let what = match e.detail() {
        Some(d) => format!("{}: {d}", e.kind()),
        None => e.kind().to_string(),
    };
    match e.line() {
        Some(line) => format!("line {line}: {what}"),
        None => what,
    }
}

/// A group with one firing and one resolved alert, to try templates on.
pub fn sample() -> GroupView {
    let alert = |id, status: &str| AlertView {
        id,
        source: "alertmanager".into(),
        status: status.into(),
        severity: "critical".into(),
        icon: "🔴".into(),
        name: "HighCPU".into(),
        summary: "CPU 使用率 97%".into(),
        endpoint: "web-01".into(),
        metric: "cpu".into(),
        labels: BTreeMap::from([("team".to_string(), "ops".to_string())]),
        annotations: BTreeMap::new(),
        recipients: vec!["zhangsan".into()],
        starts_at: "12-01 10:20:00".into(),
        ends_at: String::new(),
        duration: String::new(),
        occurrences: 1,
        ack_by: String::new(),
        parse_error: String::new(),
    };
    GroupView {
        route: "ops".into(),
        group: "{}".into(),
        firing: vec![alert(1, "firing")],
        resolved: vec![alert(2, "resolved")],
        count: 2,
        max_listed: 10,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_render_compactly() {
        let t = Templates::new();
        let text = t.render(DEFAULT_TEXT, &sample()).unwrap();
        assert_eq!(
            text,
            "🔥【告警】1 条,✅ 恢复 1 条 · ops\n#1 🔴critical HighCPU @web-01\n  CPU 使用率 97% · 12-01 10:20:00\n✅ #2 HighCPU @web-01 已恢复\n发送 告警 查看全部 · 确认:编号 · 静默:匹配,时长"
        );
        let md = t.render(DEFAULT_MARKDOWN, &sample()).unwrap();
        assert!(md.starts_with("### 🔥 告警 1 条,恢复 1 条 · ops\n"), "{md}");
        let mut many = sample();
        many.firing = (0..25)
            .map(|i| AlertView {
                id: i,
                ..sample().firing[0].clone()
            })
            .collect();
        many.max_listed = 10;
        let text = t.render(DEFAULT_TEXT, &many).unwrap();
        assert!(text.contains("…另有 15 条告警"), "{text}");
        assert_eq!(text.matches("HighCPU").count(), 11);
    }

    #[test]
    fn bad_templates_name_the_line() {
        let mut t = Templates::new();
        let e = t.add("x", "ok\n{{ a.name }\n").unwrap_err();
        assert!(e.starts_with("line 2:"), "{e}");
        let e = t.add("y", "{{ route|nosuchfilter }}").unwrap_err();
        assert!(e.contains("nosuchfilter") || e.contains("filter"), "{e}");
        t.add(
            "z",
            "{{ route }}: {% for a in firing %}{{ a.name }} {% endfor %}",
        )
        .unwrap();
        assert_eq!(t.render("z", &sample()).unwrap(), "ops: HighCPU");
    }
}
