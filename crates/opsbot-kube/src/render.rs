//! Every sentence the Kubernetes subsystem says, sized for a phone.

use crate::cluster::Cluster;
use crate::error::Error;
use crate::kube::{NodeRow, Target};
use crate::ops::{EventRow, LogTail, OpError, Refusal, ScalePlan};
use crate::pool::{Health, Rollout, Workload, WorkloadKind};
use opsbot_core::Zone;
use std::fmt::Write;

/// Workload lines 工作负载 shows before it asks for a narrower question.
const WORKLOAD_LINES: usize = 60;

fn kind_word(k: WorkloadKind) -> &'static str {
    match k {
        WorkloadKind::Deployment => "Deployment",
        WorkloadKind::StatefulSet => "StatefulSet",
    }
}

/// `正常`, `发布中 2/5`, `已暂停` …
pub fn rollout(r: &Rollout) -> String {
    match r {
        Rollout::Complete => "正常".into(),
        Rollout::Pending => "等待控制器处理".into(),
        Rollout::Progressing {
            updated, desired, ..
        } => format!("发布中 {updated}/{desired}"),
        Rollout::Paused => "已暂停".into(),
        Rollout::Failed { .. } => "发布失败".into(),
    }
}

/// Why the API did not answer, in words a user acts on.
pub fn api_error(cluster: &str, e: &Error) -> String {
    match e {
        Error::Unreachable(why) => format!("⚠ 集群 {cluster} 无法连接(API 不可达: {why}),稍后重试"),
        Error::Unauthorized(_) => {
            format!("⚠ 集群 {cluster} 拒绝了令牌(401: 令牌已过期或无效),请更新配置中的 token")
        }
        Error::Forbidden(msg) => format!("⚠ 集群拒绝: 没有权限({msg}),请检查 Role / RoleBinding"),
        Error::NotFound(msg) => format!("集群 {cluster} 中没有该对象({msg})"),
        Error::Conflict(msg) => format!("⚠ 对象正被其他操作修改({msg}),请重试"),
        Error::Rejected { message, .. } => format!("集群 {cluster} 拒绝了请求: {message}"),
        Error::Other(msg) => format!("⚠ 集群 {cluster} 出错: {msg}"),
        Error::Config(msg) => format!("⚠ 集群配置有误: {msg}"),
    }
}

/// A line saying the data of a cluster may be old.
fn stale_line(c: &str, health: &Health, zone: &Zone) -> Option<String> {
    match health {
        Health::Stale { since, error } => Some(format!(
            "⚠ 集群 {c} 的数据可能已过时(自 {} 起: {})",
            zone.format(*since, "%H:%M:%S"),
            short_error(error)
        )),
        Health::Syncing => Some(format!("… 集群 {c} 正在同步,数据尚不完整")),
        Health::Live { .. } => None,
    }
}

fn short_error(e: &Error) -> String {
    match e {
        Error::Unreachable(_) => "API 不可达".into(),
        Error::Unauthorized(_) => "令牌被拒绝 (401)".into(),
        Error::Forbidden(_) => "没有权限 (403)".into(),
        other => other.to_string(),
    }
}

fn images(w: &Workload) -> String {
    match w.images.as_slice() {
        [] => "-".into(),
        [one] => one.clone(),
        [first, rest @ ..] => format!("{first} 等 {} 个镜像", rest.len() + 1),
    }
}

/// 工作负载: grouped by cluster and namespace, the first [`WORKLOAD_LINES`] of them,
/// built as the pool is walked.
pub struct WorkloadList {
    lines: String,
    count: usize,
    group: (String, String, String),
}

impl Default for WorkloadList {
    fn default() -> Self {
        WorkloadList::new()
    }
}

impl WorkloadList {
    pub fn new() -> WorkloadList {
        WorkloadList {
            lines: String::new(),
            count: 0,
            group: Default::default(),
        }
    }

    pub fn push(&mut self, c: &Cluster, w: &Workload) {
        self.count += 1;
        if self.count > WORKLOAD_LINES {
            return;
        }
        if self.group.0 != c.provider || self.group.1 != c.name || self.group.2 != w.namespace {
            self.group = (c.provider.clone(), c.name.clone(), w.namespace.clone());
            let _ = write!(
                self.lines,
                "\n【{}/{}/{}】",
                c.provider, c.name, w.namespace
            );
        }
        let kind = if w.kind == WorkloadKind::StatefulSet {
            " (sts)"
        } else {
            ""
        };
        let _ = write!(
            self.lines,
            "\n{}{kind} {}/{} 就绪 · {} · {}",
            w.name,
            w.ready,
            w.desired,
            rollout(&w.rollout()),
            images(w)
        );
    }

    pub fn finish(self, clusters: &[&Cluster], ns: Option<&str>, zone: &Zone) -> String {
        let mut out = String::new();
        for c in clusters {
            if let Some(line) = stale_line(&c.path(), &c.health(), zone) {
                let _ = writeln!(out, "{line}");
            }
        }
        if self.count == 0 {
            let what = ns.map_or(String::new(), |n| format!("命名空间 {n} 中"));
            let _ = write!(out, "{what}没有可见的工作负载");
            return out;
        }
        let _ = write!(out, "工作负载(共 {} 个){}", self.count, self.lines);
        if self.count > WORKLOAD_LINES {
            let _ = write!(
                out,
                "\n…另有 {} 个,请用 工作负载:命名空间 缩小范围",
                self.count - WORKLOAD_LINES
            );
        }
        out
    }
}

pub fn nodes(rows: &[NodeRow], clusters: &[&Cluster], zone: &Zone) -> String {
    let mut out = String::new();
    for c in clusters {
        if let Some(line) = stale_line(&c.path(), &c.health(), zone) {
            let _ = writeln!(out, "{line}");
        }
        if c.nodes_forbidden() {
            let _ = writeln!(
                out,
                "⚠ 集群 {} 不允许 opsbot 读取节点 (403),请在 ClusterRole 中授予 nodes 的 list/watch",
                c.path()
            );
        }
    }
    if rows.is_empty() {
        out.push_str("没有可见的节点");
        return out;
    }
    let ready = rows.iter().filter(|r| r.node.ready).count();
    let _ = write!(out, "节点(共 {} 个,{ready} 个就绪)", rows.len());
    let mut group = String::new();
    for r in rows {
        let g = format!("{}/{}", r.provider, r.cluster);
        if g != group {
            let _ = write!(out, "\n【{g}】");
            group = g;
        }
        let n = &r.node;
        let roles = if n.roles.is_empty() {
            String::new()
        } else {
            format!(" [{}]", n.roles.join(","))
        };
        let state = if n.ready {
            "✓ 就绪"
        } else {
            "✗ 未就绪"
        };
        let _ = write!(
            out,
            "\n{}{roles} {state} · CPU {} · 内存 {}",
            n.name, n.cpu, n.memory
        );
    }
    out
}

/// `web: 5/5 就绪`
pub fn ready_line(w: &Workload) -> String {
    format!("{}: {}/{} 就绪", w.name, w.ready, w.desired)
}

/// A progress note while pods move.
pub fn progress(w: &Workload) -> String {
    let mut s = ready_line(w);
    if w.updated < w.desired || w.current != w.desired {
        let _ = write!(s, "(已更新 {},现有 {})", w.updated, w.current);
    }
    s
}

/// The confirmation text of a scale.
pub fn scale_plan(t: &Target, p: &ScalePlan) -> String {
    let mut s = format!(
        "将 {} {} 的副本数从 {} 调整为 {}(上限 {})",
        kind_word(t.kind),
        t.path(),
        p.from,
        p.to,
        p.max
    );
    if p.paused {
        s.push_str("。注意: 该 Deployment 已暂停发布,副本数会调整,模板变更不会滚动");
    }
    s
}

pub fn scale_summary(t: &Target, to: i32) -> String {
    format!("扩缩容 {} → {to}", t.path())
}

pub fn scale_done(w: &Workload) -> String {
    format!("✅ 扩缩容完成 {}", ready_line(w))
}

pub fn restart_plan(t: &Target) -> String {
    format!(
        "将滚动重启 {} {}(逐个替换 Pod)",
        kind_word(t.kind),
        t.path()
    )
}

pub fn restart_done(w: &Workload) -> String {
    format!("✅ 滚动重启完成 {}", ready_line(w))
}

pub fn rollback_plan(t: &Target, p: &crate::ops::rollback::RollbackPlan) -> String {
    let from = p
        .from
        .map_or("当前版本".to_string(), |r| format!("版本 {r}"));
    format!(
        "将 {} 从{from}回滚到版本 {}(镜像 {})",
        t.path(),
        p.to,
        if p.images.is_empty() {
            "-".into()
        } else {
            p.images.join(",")
        }
    )
}

pub fn rollback_done(p: &crate::ops::rollback::RollbackPlan, w: &Workload) -> String {
    format!("✅ 已回滚到版本 {} 的模板 {}", p.to, ready_line(w))
}

pub fn status_done(w: &Workload) -> String {
    format!("✅ 发布完成 {}", ready_line(w))
}

pub fn refusal(t: &Target, r: &Refusal) -> String {
    let path = t.path();
    match r {
        Refusal::Negative(n) => format!("副本数不能为负数(计算结果为 {n})"),
        Refusal::TooMany { to, max } => {
            format!("副本数 {to} 超过了 {path} 允许的上限 {max}(配置 max_replicas / scale_limits)")
        }
        Refusal::Unchanged(n) => format!("{path} 已是 {n} 个副本,无需调整"),
        Refusal::MidRollout { updated, desired } => format!(
            "{path} 正在发布中(已更新 {updated}/{desired}),请等发布完成后再扩缩容;可用 发布状态:{}/{} 查看",
            t.namespace, t.name
        ),
        Refusal::Paused => format!(
            "{path} 已暂停发布 (paused),无法重启或回滚;请先恢复发布 (kubectl rollout resume)"
        ),
        Refusal::NotDeployment => format!("{path} 是 StatefulSet,回滚只支持 Deployment"),
        Refusal::NoHistory => format!("{path} 没有可回滚的历史版本"),
        Refusal::NoRevision { wanted, known } => {
            let known: Vec<String> = known.iter().map(i64::to_string).collect();
            format!("{path} 没有版本 {wanted};现有版本: {}", known.join("、"))
        }
        Refusal::AlreadyAt(r) => format!("{path} 已是版本 {r}"),
        Refusal::Conflicts(n) => {
            format!("⚠ {path} 正被其他操作频繁修改,重试 {n} 次仍冲突 (409),请稍后再试")
        }
        Refusal::Gone => format!("集群中已没有 {path}"),
    }
}

/// Why an operation ended without success.
pub fn op_error(t: &Target, e: &OpError) -> String {
    match e {
        OpError::Api(e) => api_error(&t.cluster.path(), e),
        OpError::Refused(r) => refusal(t, r),
        OpError::TimedOut { waited, last } => format!(
            "⏱ 等待 {} 秒后仍未完成: {};可用 发布状态:{}/{} 继续查看",
            waited.as_secs(),
            progress(last),
            t.namespace,
            t.name
        ),
        OpError::Failed { message, last } => {
            format!("❌ 发布失败: {message}({})", ready_line(last))
        }
    }
}

pub fn logs(tail: &LogTail) -> String {
    if tail.lines.is_empty() {
        return format!("Pod {}/{} 没有日志", tail.namespace, tail.pod);
    }
    let cut = if tail.cut {
        ",较早的行已省略"
    } else {
        ""
    };
    format!(
        "Pod {}/{} 最后 {} 行{cut}:\n{}",
        tail.namespace,
        tail.pod,
        tail.lines.len(),
        tail.lines.join("\n")
    )
}

pub fn events(ns: &str, object: Option<&str>, rows: &[EventRow], zone: &Zone) -> String {
    let what = match object {
        Some(o) => format!("{ns}/{o}"),
        None => ns.to_string(),
    };
    if rows.is_empty() {
        return format!("{what} 最近没有事件");
    }
    let mut out = format!("{what} 最近的事件(新→旧,{} 条)", rows.len());
    for e in rows {
        let at =
            e.at.map_or("--:--".to_string(), |t| zone.format(t, "%m-%d %H:%M"));
        let warn = if e.kind == "Warning" { "⚠ " } else { "" };
        let count = if e.count > 1 {
            format!(" ×{}", e.count)
        } else {
            String::new()
        };
        let _ = write!(
            out,
            "\n{at} {warn}{} {}: {}{count}",
            e.object, e.reason, e.message
        );
    }
    out
}

/// Nothing by that name among what the caller may see.
pub fn unknown(what: &str, text: &str, similar: &[String]) -> String {
    let mut s = format!("没有找到{what}「{text}」");
    if !similar.is_empty() {
        let _ = write!(s, ";相近的有: {}", similar.join("、"));
    }
    s
}

pub fn ambiguous(text: &str, many: &[String]) -> String {
    format!("「{text}」对应多个对象,请写全路径: {}", many.join("、"))
}

pub fn no_pods(t: &str) -> String {
    format!("{t} 当前没有 Pod")
}

/// Where a workload's rollout stands now, for the message of a job interrupted while it
/// waited on it (`probe.rs`).
pub fn rollout_now(t: &Target, w: &Workload) -> String {
    let mut s = format!(
        "{} 当前 {}/{} 就绪,已更新 {}",
        t.path(),
        w.ready,
        w.desired,
        w.updated
    );
    if let Some(r) = &w.revision {
        let _ = write!(s, ",版本 {r}");
    }
    s.push_str(match w.rollout() {
        Rollout::Complete => ",发布已完成",
        Rollout::Pending | Rollout::Progressing { .. } => ",发布仍在进行",
        Rollout::Paused => ",发布已暂停",
        Rollout::Failed { .. } => ",发布失败(超过进度期限)",
    });
    s
}
