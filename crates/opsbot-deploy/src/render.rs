//! Every sentence the deploy subsystem says, sized for a phone.

use crate::build::Built;
use crate::config::Project;
use crate::hosts::Target;
use crate::model::{HostState, OrderKind, OrderState};
use opsbot_core::Zone;
use opsbot_store::deploy::{BuildRecord, Deployed, HostRunRecord, LogChunk, OrderRecord};

/// Lines of a log shown in chat; the web UI shows all of it.
const LOG_LINES: usize = 30;
/// Characters of a log shown in chat.
const LOG_CHARS: usize = 1800;

pub fn unknown_project(name: &str, known: &[String]) -> String {
    if known.is_empty() {
        format!("没有项目「{name}」(您没有可用的项目)")
    } else {
        format!("没有项目「{name}」。可用的项目: {}", known.join("、"))
    }
}

pub fn kind_label(kind: &str) -> &'static str {
    OrderKind::parse(kind).map_or("发布", OrderKind::label)
}

pub fn build_state(s: &str) -> &'static str {
    match s {
        "running" => "构建中",
        "succeeded" => "成功",
        "failed" => "失败",
        "interrupted" => "已中断",
        _ => "未知",
    }
}

fn short(rev: &str) -> &str {
    rev.get(..10).unwrap_or(rev)
}

pub fn project_list(projects: &[Project], deployed: &[Vec<Deployed>]) -> String {
    if projects.is_empty() {
        return "没有可用的项目".into();
    }
    let mut out = format!("项目列表(共 {} 个)", projects.len());
    for (p, d) in projects.iter().zip(deployed) {
        let repo = match p.repo.kind {
            crate::config::RepoKind::Git => "git",
            crate::config::RepoKind::Svn => "svn",
        };
        let now = d
            .iter()
            .map(|x| x.version)
            .max()
            .map_or("未发布".to_string(), |v| format!("当前 #{v}"));
        let approval = if p.approval.required {
            " · 需审批"
        } else {
            ""
        };
        let via = match p.transport {
            crate::config::TransportKind::Ssh => "",
            crate::config::TransportKind::Salt => " · 经 Salt 发布",
        };
        out.push_str(&format!(
            "\n· {} ({repo}) {now} · {} 台已部署{approval}{via}",
            p.name,
            d.len()
        ));
    }
    out.push_str("\n发送「构建:项目」构建,「发布:项目」发布");
    out
}

pub fn build_done(id: i64, project: &str, b: &Built) -> String {
    let mut s = format!(
        "✅ 构建 #{id} 成功: {project} @ {} · 制品 {} ({})",
        short(&b.revision),
        &b.artefact[..12.min(b.artefact.len())],
        size(b.size)
    );
    if !b.changelog.trim().is_empty() {
        s.push_str("\n变更:\n");
        s.push_str(&clip(b.changelog.trim(), 600));
    }
    s.push_str(&format!("\n发送「发布:{project},{id}」发布这个构建"));
    s
}

pub fn build_failed(id: i64, project: &str, error: &str, log: &[LogChunk]) -> String {
    let all: String = log
        .iter()
        .map(|c| c.text.as_str())
        .collect::<Vec<_>>()
        .join("\n");
    format!(
        "❌ 构建 #{id} 失败({project}): {error}\n日志末尾:\n{}",
        tail(&all, 12, 900)
    )
}

fn size(bytes: u64) -> String {
    if bytes >= 1 << 20 {
        format!("{:.1} MB", bytes as f64 / (1u64 << 20) as f64)
    } else {
        format!("{:.1} KB", bytes as f64 / 1024.0)
    }
}

pub fn order_plan(o: &OrderRecord, p: &Project, hosts: &[Target]) -> String {
    let what = match (o.build, o.version) {
        (_, Some(v)) if o.kind == OrderKind::Rollback.as_str() => format!("回滚到 #{v}"),
        (Some(b), _) => format!("构建 #{b}"),
        _ => String::new(),
    };
    let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    let what = if what.is_empty() {
        String::new()
    } else {
        format!(" {what}")
    };
    format!(
        "发布单 #{}: {} {}{what} → {} 台主机({}),分 {} 批,并行 {}",
        o.id,
        kind_label(&o.kind),
        p.name,
        hosts.len(),
        clip(&names.join("、"), 200),
        o.batches,
        p.strategy.parallelism
    )
}

/// 发布's confirmation: the build, the hosts and how.
pub fn release_plan(p: &Project, b: &BuildRecord, hosts: &[Target]) -> String {
    let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    let batches = crate::hosts::batches(hosts.len(), &p.strategy.batches)
        .iter()
        .max()
        .map_or(1, |m| m + 1);
    let approval = if p.approval.required {
        ",需审批"
    } else {
        ""
    };
    format!(
        "发布 {} 构建 #{}({})→ {} 台主机({}),分 {batches} 批,并行 {}{approval}",
        p.name,
        b.id,
        short(&b.revision),
        hosts.len(),
        clip(&names.join("、"), 200),
        p.strategy.parallelism
    )
}

/// 回滚's confirmation.
pub fn rollback_plan(p: &Project, version: i64, build: i64, hosts: &[Target]) -> String {
    let names: Vec<&str> = hosts.iter().map(|h| h.name.as_str()).collect();
    format!(
        "回滚 {} 到 #{version}(构建 #{build})→ {} 台主机({}):主机上仍有该版本的直接切换,否则重新部署其制品",
        p.name,
        hosts.len(),
        clip(&names.join("、"), 200)
    )
}

pub fn order_started(o: &OrderRecord, p: &Project, hosts: usize) -> String {
    format!(
        "🚀 发布单 #{} 开始{}: {} → {hosts} 台主机,分 {} 批(由 {} 发起)",
        o.id,
        kind_label(&o.kind),
        p.name,
        o.batches,
        o.user
    )
}

fn count(runs: &[HostRunRecord], s: HostState) -> Vec<&str> {
    runs.iter()
        .filter(|h| h.state == s.as_str())
        .map(|h| h.host.as_str())
        .collect()
}

/// The end of an order: its state and every failed host by name (a final status never
/// hides a failed host).
pub fn order_finished(o: &OrderRecord, p: &Project, runs: &[HostRunRecord]) -> String {
    let ok = count(runs, HostState::Succeeded);
    let failed: Vec<&HostRunRecord> = runs
        .iter()
        .filter(|h| h.state == HostState::Failed.as_str())
        .collect();
    let skipped = count(runs, HostState::Skipped);
    let icon = match OrderState::parse(&o.state) {
        Some(OrderState::Succeeded) => "✅",
        Some(OrderState::Aborted) => "⏹",
        _ => "❌",
    };
    let mut s = format!(
        "{icon} 发布单 #{} {}: {} {} · 成功 {} 台",
        o.id,
        o.state,
        kind_label(&o.kind),
        p.name,
        ok.len()
    );
    if !failed.is_empty() {
        s.push_str(&format!(" · 失败 {} 台", failed.len()));
    }
    if !skipped.is_empty() {
        s.push_str(&format!(" · 未执行 {} 台", skipped.len()));
    }
    for h in failed.iter().take(8) {
        s.push_str(&format!(
            "\n✗ {} [{}] {}",
            h.host,
            h.step,
            clip(h.error.as_deref().unwrap_or(""), 160)
        ));
    }
    if failed.len() > 8 {
        s.push_str(&format!("\n…另有 {} 台失败", failed.len() - 8));
    }
    if !failed.is_empty() || !skipped.is_empty() {
        s.push_str(&format!(
            "\n发送「日志:{},主机」看日志,「重试:{}」重试失败的主机,「回滚:{}」回滚",
            o.id, o.id, p.name
        ));
    }
    s
}

pub fn order_interrupted(o: &OrderRecord, runs: &[HostRunRecord], in_flight: &[String]) -> String {
    let done = count(runs, HostState::Succeeded).len();
    let mut s = format!(
        "⚠ 发布单 #{}({})已中断: 运行它的 opsbot 在发布结束前停止了。已完成 {done}/{} 台",
        o.id,
        o.project,
        runs.len()
    );
    if !in_flight.is_empty() {
        s.push_str(&format!(
            "。中断时进行中的主机: {}(请检查其状态)",
            in_flight.join("、")
        ));
    }
    s.push_str(&format!(
        "\n发送「继续:{}」从未完成的主机继续,或「终止:{}」结束",
        o.id, o.id
    ));
    s
}

pub fn not_pending(o: &OrderRecord) -> String {
    match OrderState::parse(&o.state) {
        Some(
            OrderState::Ready
            | OrderState::Running
            | OrderState::Paused
            | OrderState::Succeeded
            | OrderState::PartlyFailed
            | OrderState::Failed
            | OrderState::RolledBack
            | OrderState::Interrupted,
        ) => {
            format!(
                "发布单 #{} 已{}批准,当前「{}」",
                o.id,
                o.approver
                    .as_deref()
                    .map(|a| format!("由 {a} "))
                    .unwrap_or_default(),
                o.state
            )
        }
        Some(OrderState::Rejected) => format!(
            "发布单 #{} 已被{}驳回{}",
            o.id,
            o.approver.as_deref().unwrap_or(""),
            o.reason
                .as_deref()
                .map(|r| format!(": {r}"))
                .unwrap_or_default()
        ),
        Some(OrderState::Expired) => format!("发布单 #{} 已过期,请重新发起", o.id),
        _ => format!("发布单 #{} 为「{}」,无需审批", o.id, o.state),
    }
}

pub fn order_list(list: &[OrderRecord], zone: &Zone) -> String {
    if list.is_empty() {
        return "没有发布单".into();
    }
    let mut s = format!(
        "发布单(最近 {} 个)· 时间 {}",
        list.len(),
        zone.label(chrono::Utc::now())
    );
    for o in list {
        s.push_str(&format!(
            "\n#{} {} {} {} · {} · {}",
            o.id,
            kind_label(&o.kind),
            o.project,
            o.state,
            o.user,
            zone.format(o.created_at, "%m-%d %H:%M")
        ));
    }
    s.push_str("\n发送「发布单:单号」看详情");
    s
}

pub fn order_detail(o: &OrderRecord, runs: &[HostRunRecord], zone: &Zone) -> String {
    let mut s = format!(
        "发布单 #{} · {} {} · {}\n发起 {} · {}",
        o.id,
        kind_label(&o.kind),
        o.project,
        o.state,
        o.user,
        zone.stamp(o.created_at)
    );
    if let Some(b) = o.build {
        s.push_str(&format!(" · 构建 #{b}"));
    }
    if let Some(a) = &o.approver {
        s.push_str(&format!(" · 审批 {a}"));
    }
    if let Some(r) = &o.reason {
        s.push_str(&format!("\n说明: {r}"));
    }
    s.push_str(&format!("\n批次 {}/{}", o.batch.min(o.batches), o.batches));
    for h in runs.iter().take(30) {
        let st = HostState::parse(&h.state).map_or("?", HostState::label);
        let prev = h
            .previous_version
            .map(|v| format!(" 原 #{v}"))
            .unwrap_or_default();
        let err = h
            .error
            .as_deref()
            .map(|e| format!(" {}", clip(e, 80)))
            .unwrap_or_default();
        s.push_str(&format!(
            "\n· {} [{}] {st} {}{prev}{err}",
            h.host,
            h.batch + 1,
            h.step
        ));
    }
    if runs.len() > 30 {
        s.push_str(&format!("\n…共 {} 台", runs.len()));
    }
    s
}

pub fn log_tail(o: &OrderRecord, host: Option<&str>, chunks: &[LogChunk]) -> String {
    let all: String = chunks
        .iter()
        .map(|c| {
            if host.is_none() && !c.host.is_empty() {
                c.text
                    .lines()
                    .map(|l| format!("[{}] {l}", c.host))
                    .collect::<Vec<_>>()
                    .join("\n")
            } else {
                c.text.clone()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let head = match host {
        Some(h) => format!("发布单 #{} · {h} 的日志", o.id),
        None => format!("发布单 #{} 的日志", o.id),
    };
    if all.trim().is_empty() {
        return format!("{head}: 暂无");
    }
    format!("{head}(末尾):\n{}", tail(&all, LOG_LINES, LOG_CHARS))
}

/// The last `lines` lines of `text`, at most `chars` characters.
fn tail(text: &str, lines: usize, chars: usize) -> String {
    let v: Vec<&str> = text.lines().collect();
    let start = v.len().saturating_sub(lines);
    let t = v[start..].join("\n");
    let n = t.chars().count();
    if n > chars {
        format!("…{}", t.chars().skip(n - chars).collect::<String>())
    } else {
        t
    }
}

pub(crate) fn clip(s: &str, chars: usize) -> String {
    if s.chars().count() > chars {
        format!("{}…", s.chars().take(chars).collect::<String>())
    } else {
        s.to_string()
    }
}

/// A failed HTTP request in words (refused, timed out, …), without the URL's secrets.
pub fn http_error(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "超时".into()
    } else if e.is_connect() {
        "连接被拒绝或不可达".into()
    } else {
        std::error::Error::source(e).map_or_else(|| "请求失败".to_string(), |s| s.to_string())
    }
}
