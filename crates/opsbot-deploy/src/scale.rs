//! Scaling a project out and in (seed 003's main story: a day of two engineers before
//! each sales event, another after it). 扩容 clones VMs from the project's template with
//! addresses from its pool (through the engine's own 克隆, as the asker), waits for their
//! SSH, adds them to the project, renders the configured templates and runs the
//! `on_scale_out` hooks with the new host list (an nginx upstream, monitoring), then
//! releases the current version to them. 缩容 runs the `on_scale_in` hooks without the
//! leaving hosts, removes them from the project and powers their VMs off; deleting them
//! is a second, confirmed step (`删除:vm`). Each is one order, run by [`crate::release`].

use crate::deploys::{store_err, Deploys, Refused};
use crate::hosts::Target;
use crate::model::{HostState, OrderKind};
use crate::orders::{names, Next};
use crate::release::Run;
use crate::ssh::Session;
use futures::StreamExt;
use opsbot_core::chat::Requester;
use opsbot_store::deploy::{HostPatch, HostRunRecord, ProjectHost};
use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

/// What a scale-out will create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Growth {
    pub hosts: Vec<Target>,
    pub template: u32,
    /// The release (and its build) the new hosts get, when the project has one.
    pub release: Option<(i64, i64)>,
}

impl Deploys {
    /// The VMs 扩容:project,n would create: the next free names and addresses.
    pub async fn plan_scale_out(
        &self,
        caller: &dyn Requester,
        project: &str,
        n: usize,
    ) -> Result<(crate::Project, Growth), Refused> {
        let p = self.project_for(caller, names::SCALE_OUT, project).await?;
        let Some(sc) = &p.scale else {
            return Err(Refused::Invalid(format!(
                "项目「{}」没有配置扩容([deploy.projects.scale]: 模板、名称前缀、地址池)",
                p.name
            )));
        };
        if n == 0 || n > 50 {
            return Err(Refused::Invalid("扩容台数应为 1–50".into()));
        }
        self.refuse_busy_for(&p).await?;
        let pool = self.pool.load_pool().await.map_err(store_err)?;
        if !pool.templates.iter().any(|t| t.number == sc.template) {
            return Err(Refused::Invalid(format!(
                "项目「{}」的扩容模板 #{} 不存在(发送「模板」查看)",
                p.name, sc.template
            )));
        }
        let current = self.hosts(&p).await?;
        let mut taken_names: HashSet<String> =
            pool.inventory.vms.iter().map(|v| v.name.clone()).collect();
        taken_names.extend(current.iter().map(|h| h.name.clone()));
        let mut taken_ips: HashSet<String> = pool
            .inventory
            .vms
            .iter()
            .flat_map(|v| v.ips.iter().cloned().chain(v.guest_ip.clone()))
            .collect();
        taken_ips.extend(current.iter().map(|h| h.address.clone()));
        let free: Vec<String> = crate::addresses::expand(&sc.addresses)
            .map_err(Refused::Invalid)?
            .into_iter()
            .map(|ip| ip.to_string())
            .filter(|ip| !taken_ips.contains(ip))
            .collect();
        if free.len() < n {
            return Err(Refused::Invalid(format!(
                "项目「{}」的地址池只剩 {} 个空闲地址,不够扩容 {n} 台",
                p.name,
                free.len()
            )));
        }
        let mut hosts = Vec::new();
        let mut k = 1u32;
        for address in free.into_iter().take(n) {
            while taken_names.contains(&format!("{}{k}", sc.name_prefix)) {
                k += 1;
            }
            let name = format!("{}{k}", sc.name_prefix);
            taken_names.insert(name.clone());
            hosts.push(Target { name, address });
        }
        let deployed = self.store.deployed(&p.name).await.map_err(store_err)?;
        let release =
            crate::orders::most_common(deployed.iter().map(|d| d.version)).and_then(|v| {
                deployed
                    .iter()
                    .find(|d| d.version == v)
                    .map(|d| (v, d.build))
            });
        let template = sc.template;
        Ok((
            p,
            Growth {
                hosts,
                template,
                release,
            },
        ))
    }

    /// 扩容:project,n.
    pub async fn create_scale_out(
        self: &Arc<Self>,
        caller: &dyn Requester,
        project: &str,
        n: usize,
    ) -> Result<Next, Refused> {
        let (p, g) = self.plan_scale_out(caller, project, n).await?;
        let (version, build) = match g.release {
            Some((v, b)) => (Some(v), Some(b)),
            None => (None, None),
        };
        let plan = serde_json::json!({ "template": g.template }).to_string();
        self.create_order(
            caller,
            &p,
            OrderKind::ScaleOut,
            build,
            version,
            g.hosts,
            plan,
            false,
        )
        .await
    }

    /// The hosts 缩容:project,n would remove: the newest the project gained by 扩容.
    pub async fn plan_scale_in(
        &self,
        caller: &dyn Requester,
        project: &str,
        n: usize,
    ) -> Result<(crate::Project, Vec<Target>), Refused> {
        let p = self.project_for(caller, names::SCALE_IN, project).await?;
        if n == 0 {
            return Err(Refused::Invalid("缩容台数至少为 1".into()));
        }
        self.refuse_busy_for(&p).await?;
        let mut added = self.store.project_hosts(&p.name).await.map_err(store_err)?;
        // The last added leave first: by order, then by name as people count (shop-10
        // after shop-9).
        added.sort_by(|a, b| {
            (b.order, b.host.len(), &b.host).cmp(&(a.order, a.host.len(), &a.host))
        });
        if added.len() < n {
            return Err(Refused::Invalid(format!(
                "项目「{}」只有 {} 台由扩容加入的主机可以缩容(配置文件中的主机请在配置中移除)",
                p.name,
                added.len()
            )));
        }
        let hosts = added
            .into_iter()
            .take(n)
            .map(|h| Target {
                name: h.host,
                address: h.address,
            })
            .collect();
        Ok((p, hosts))
    }

    /// 缩容:project,n.
    pub async fn create_scale_in(
        self: &Arc<Self>,
        caller: &dyn Requester,
        project: &str,
        n: usize,
    ) -> Result<Next, Refused> {
        let (p, hosts) = self.plan_scale_in(caller, project, n).await?;
        self.create_order(
            caller,
            &p,
            OrderKind::ScaleIn,
            None,
            None,
            hosts,
            "{}".into(),
            false,
        )
        .await
    }
}

/// The host list a scale hook sees: everyone in the project after the change.
async fn members(run: &Run) -> Result<Vec<Target>, String> {
    run.d
        .hosts(&run.project)
        .await
        .map_err(|e| e.text().to_string())
}

/// Renders the project's templates for the hosts `all`, with `added` / `removed`.
fn render_templates(
    run: &Run,
    all: &[Target],
    added: &[Target],
    removed: &[Target],
) -> Result<(), String> {
    let list = |t: &[Target]| -> Vec<serde_json::Value> {
        t.iter()
            .map(|h| serde_json::json!({ "name": h.name, "address": h.address }))
            .collect()
    };
    let ctx = serde_json::json!({
        "project": run.project.name,
        "hosts": list(all),
        "added": list(added),
        "removed": list(removed),
    });
    for t in &run.project.hooks.templates {
        let src = std::fs::read_to_string(&t.src).map_err(|e| format!("模板 {}: {e}", t.src))?;
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        let out = env
            .render_str(&src, &ctx)
            .map_err(|e| format!("模板 {}: {e}", t.src))?;
        let tmp = format!("{}.opsbot-tmp", t.dest);
        std::fs::write(&tmp, out)
            .and_then(|_| std::fs::rename(&tmp, &t.dest))
            .map_err(|e| format!("写 {}: {e}", t.dest))?;
    }
    Ok(())
}

fn hook_env(all: &[Target], added: &[Target], removed: &[Target]) -> Vec<(String, String)> {
    let addrs = |t: &[Target]| {
        t.iter()
            .map(|h| h.address.clone())
            .collect::<Vec<_>>()
            .join(" ")
    };
    vec![
        ("OPSBOT_HOSTS".into(), addrs(all)),
        ("OPSBOT_ADDED".into(), addrs(added)),
        ("OPSBOT_REMOVED".into(), addrs(removed)),
    ]
}

/// The scale-out's own part, before the release: clone, wait for SSH, join, hooks.
/// Hosts that could not be provisioned are failed (and get no release); an `Err` ends
/// the order (its hooks failed).
pub(crate) async fn provision(run: &Run, hosts: &[HostRunRecord]) -> Result<(), String> {
    let Some(operator) = run.d.operator() else {
        return Err("扩容需要 opsbot 的引擎(克隆虚拟机),此进程没有".into());
    };
    let Some(sc) = run.project.scale.clone() else {
        return Err(format!("项目「{}」没有配置扩容", run.project.name));
    };
    let wait = opsbot_core::parse_duration(&sc.ssh_wait).unwrap_or(Duration::from_secs(300));
    let par = run.project.strategy.parallelism.max(1) as usize;
    let total = hosts.len();
    let ended: Vec<Option<Target>> = futures::stream::iter(hosts.iter().cloned())
        .map(|h| {
            let operator = operator.clone();
            let sc = sc.clone();
            async move { provision_one(run, &h, operator.as_ref(), &sc, wait).await }
        })
        .buffered(par) // in host order: the hooks list them as the plan did
        .collect()
        .await;
    if run.fence.is_lost() {
        return Err("本实例已不再执行这张发布单".into());
    }
    let added: Vec<Target> = ended.into_iter().flatten().collect();
    run.log(&format!("扩容: {}/{total} 台就绪", added.len()))
        .await;
    if added.is_empty() {
        return Ok(());
    }
    let all = members(run).await?;
    render_templates(run, &all, &added, &[])?;
    run.local_hooks_with(
        "on_scale_out",
        &run.project.hooks.on_scale_out,
        &hook_env(&all, &added, &[]),
    )
    .await
}

/// Clones one new host, waits for its SSH and adds it to the project.
async fn provision_one(
    run: &Run,
    h: &HostRunRecord,
    operator: &dyn opsbot_core::chat::Operator,
    sc: &crate::config::Scale,
    wait: Duration,
) -> Option<Target> {
    if !run.fence.holds(&run.d).await {
        return None;
    }
    run.step(h, "clone").await;
    run.host_write(
        &h.host,
        &HostPatch {
            state: Some(HostState::Running.as_str().into()),
            started: true,
            ..HostPatch::default()
        },
    )
    .await;
    let mut clone = format!("克隆:{},{},{}", sc.template, h.host, h.address);
    if sc.cpu.is_some() || sc.memory_gb.is_some() {
        clone.push_str(&format!(
            ",{},{}",
            sc.cpu.map_or(String::new(), |c| c.to_string()),
            sc.memory_gb.map_or(String::new(), |m| m.to_string())
        ));
    }
    let log = |t: String| async move {
        let _ = run
            .d
            .store
            .log_append(
                opsbot_store::deploy::LogOf::Order(run.order.id, Some(&h.host)),
                &t,
            )
            .await;
    };
    log(format!("$ {clone}")).await;
    match operator
        .run_as(&run.order.user, &run.order.channel, &clone)
        .await
    {
        Ok(t) => log(t).await,
        Err(t) => {
            fail(run, h, "clone", &t).await;
            return None;
        }
    }
    run.step(h, "ssh").await;
    if let Err(e) = wait_for_ssh(run, &h.address, wait).await {
        fail(run, h, "ssh", &e).await;
        return None;
    }
    let added = ProjectHost {
        project: run.project.name.clone(),
        host: h.host.clone(),
        address: h.address.clone(),
        order: run.order.id,
        added_at: chrono::Utc::now(),
    };
    if let Err(e) = run.d.store.project_host_add(&added).await {
        fail(run, h, "join", &format!("存储不可用: {e}")).await;
        return None;
    }
    if run.order.build.is_none() {
        run.host_write(
            &h.host,
            &HostPatch {
                state: Some(HostState::Succeeded.as_str().into()),
                step: Some("joined".into()),
                finished: true,
                ..HostPatch::default()
            },
        )
        .await;
    } else {
        // The release picks the host up from here.
        run.host_write(
            &h.host,
            &HostPatch {
                state: Some(HostState::Pending.as_str().into()),
                step: Some("joined".into()),
                ..HostPatch::default()
            },
        )
        .await;
    }
    run.report.note(0, format!("扩容 · {} 已就绪", h.host));
    Some(Target {
        name: h.host.clone(),
        address: h.address.clone(),
    })
}

async fn fail(run: &Run, h: &HostRunRecord, step: &str, why: &str) {
    run.host_write(
        &h.host,
        &HostPatch {
            state: Some(HostState::Failed.as_str().into()),
            step: Some(step.into()),
            error: Some(Some(why.to_string())),
            finished: true,
            ..HostPatch::default()
        },
    )
    .await;
}

/// Waits until `address` accepts an SSH login with the project's key.
async fn wait_for_ssh(run: &Run, address: &str, wait: Duration) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + wait;
    let opts = run.ssh_options();
    loop {
        let last = match Session::connect(address, &opts).await {
            Ok(s) => {
                s.close().await;
                return Ok(());
            }
            Err(e) => e.to_string(),
        };
        if tokio::time::Instant::now() >= deadline {
            return Err(format!("{}s 内 SSH 未就绪: {last}", wait.as_secs()));
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// The scale-in order: hooks without the leaving hosts, out of the project, powered off.
pub(crate) async fn scale_in(run: &Run, hosts: &[HostRunRecord]) -> Result<String, String> {
    let leaving: Vec<Target> = hosts
        .iter()
        .map(|h| Target {
            name: h.host.clone(),
            address: h.address.clone(),
        })
        .collect();
    let before = match members(run).await {
        Ok(m) => m,
        Err(e) => return run.finish_error(e).await,
    };
    let staying: Vec<Target> = before
        .into_iter()
        .filter(|t| !leaving.contains(t))
        .collect();
    if let Err(e) = render_templates(run, &staying, &[], &leaving) {
        return run.finish_error(e).await;
    }
    if let Err(e) = run
        .local_hooks_with(
            "on_scale_in",
            &run.project.hooks.on_scale_in,
            &hook_env(&staying, &[], &leaving),
        )
        .await
    {
        return run.finish_error(e).await;
    }
    let operator = run.d.operator();
    let vms: HashSet<String> = match run.d.pool.load_pool().await {
        Ok(p) => p.inventory.vms.into_iter().map(|v| v.name).collect(),
        Err(_) => HashSet::new(),
    };
    for h in hosts {
        if !run.fence.holds(&run.d).await {
            return run.fenced_out().await;
        }
        run.step(h, "leave").await;
        let _ = run
            .d
            .store
            .project_host_remove(&run.project.name, &h.host)
            .await;
        let mut patch = HostPatch {
            state: Some(HostState::Succeeded.as_str().into()),
            step: Some("removed".into()),
            finished: true,
            ..HostPatch::default()
        };
        if let (Some(op), true) = (&operator, vms.contains(&h.host)) {
            run.step(h, "power_off").await;
            match op
                .run_as(
                    &run.order.user,
                    &run.order.channel,
                    &format!("关机:{}", h.host),
                )
                .await
            {
                Ok(_) => patch.step = Some("powered_off".into()),
                // Already off is as good: the VM is out of the project either way.
                Err(e) if e.contains("已经是关机状态") => {
                    patch.step = Some("powered_off".into())
                }
                Err(e) => {
                    patch.state = Some(HostState::Failed.as_str().into());
                    patch.step = Some("power_off".into());
                    patch.error = Some(Some(format!("已移出项目,关机失败: {e}")));
                }
            }
        }
        run.host_write(&h.host, &patch).await;
    }
    let ended = run.finish().await;
    let deletes: Vec<String> = hosts
        .iter()
        .filter(|h| vms.contains(&h.host))
        .map(|h| format!("「删除:{}」", h.host))
        .collect();
    let tail = if deletes.is_empty() {
        String::new()
    } else {
        format!(
            "\n虚拟机已关机,确认不再需要后发送 {} 删除(每台都需确认)",
            deletes.join(" ")
        )
    };
    match ended {
        Ok(t) => Ok(format!("{t}{tail}")),
        Err(t) => Err(format!("{t}{tail}")),
    }
}

/// The words for the confirmation prompt.
pub fn growth_plan(p: &crate::Project, g: &Growth) -> String {
    let hosts: Vec<String> = g
        .hosts
        .iter()
        .map(|h| format!("{}({})", h.name, h.address))
        .collect();
    let release = match g.release {
        Some((v, _)) => format!(",发布当前版本 #{v}"),
        None => ",项目尚未发布,不发布".into(),
    };
    format!(
        "扩容 {}: 从模板 #{} 克隆 {} 台 {},等待 SSH,加入项目,运行 on_scale_out 钩子{release}",
        p.name,
        g.template,
        g.hosts.len(),
        hosts.join("、")
    )
}

pub fn shrink_plan(p: &crate::Project, hosts: &[Target]) -> String {
    let names: Vec<String> = hosts
        .iter()
        .map(|h| format!("{}({})", h.name, h.address))
        .collect();
    format!(
        "缩容 {}: 运行 on_scale_in 钩子,移出 {} 台 {},并将其虚拟机关机(删除需另行确认)",
        p.name,
        hosts.len(),
        names.join("、")
    )
}
