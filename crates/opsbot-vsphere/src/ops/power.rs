//! Power on, hard power off, guest shutdown, guest reboot (falling back to a reset).

use super::{reject, Ctx};
use opsbot_core::{OpOutcome, ProviderError};
use std::time::{Duration, Instant};

/// How long a guest shutdown may take before we give up waiting.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(300);
const SHUTDOWN_POLL: Duration = Duration::from_secs(2);

pub(super) async fn power_on(ctx: &Ctx<'_>, id: &str) -> Result<OpOutcome, ProviderError> {
    let vm = ctx.facts(id, &[]).await?;
    ctx.progress.report(10, "正在开机");
    match ctx.quick_task("PowerOnVM_Task", &vm.moref, "").await {
        Ok(_) => ctx.done(&vm.moref, format!("{} 已开机", vm.name)).await,
        Err(e) if e.is_fault("InvalidPowerState") => {
            Err(reject(format!("{} 已经是开机状态", vm.name)))
        }
        Err(e) if e.is_fault("InvalidState") || (vm.template && e.is_fault("NotSupported")) => {
            if vm.template {
                Err(reject(format!("模板 {} 不能开机", vm.name)))
            } else {
                Err(reject(format!("{} 当前状态不允许开机", vm.name)))
            }
        }
        Err(e) => Err(ctx.fail(&vm.name, id, e)),
    }
}

pub(super) async fn power_off(ctx: &Ctx<'_>, id: &str) -> Result<OpOutcome, ProviderError> {
    let vm = ctx.facts(id, &[]).await?;
    if vm.template {
        return Err(reject(format!("{} 是模板,不能执行此操作", vm.name)));
    }
    match ctx.quick_task("PowerOffVM_Task", &vm.moref, "").await {
        Ok(_) => {
            ctx.done(&vm.moref, format!("{} 已关机(强制断电)", vm.name))
                .await
        }
        Err(e) if e.is_fault("InvalidPowerState") => {
            Err(reject(format!("{} 已经是关机状态", vm.name)))
        }
        Err(e) => Err(ctx.fail(&vm.name, id, e)),
    }
}

pub(super) async fn shutdown(ctx: &Ctx<'_>, id: &str) -> Result<OpOutcome, ProviderError> {
    let vm = ctx.facts(id, &[]).await?;
    if vm.template {
        return Err(reject(format!("{} 是模板,不能执行此操作", vm.name)));
    }
    match ctx.client.invoke("ShutdownGuest", &vm.moref, "").await {
        Ok(_) => {}
        Err(e) if e.is_fault("InvalidPowerState") => {
            return Err(reject(format!("{} 没有开机", vm.name)))
        }
        Err(e) if e.is_fault("ToolsUnavailable") => {
            return Err(reject(format!(
                "{} 的 VMware Tools 未运行,无法关闭操作系统;可用 关机 强制断电",
                vm.name
            )))
        }
        Err(e) => return Err(ctx.fail(&vm.name, id, e)),
    }
    ctx.progress.report(30, "已通知客户机关闭操作系统");
    // ShutdownGuest only asks the guest; wait for the power state to follow.
    let started = Instant::now();
    loop {
        let props = ctx
            .client
            .retrieve(&vm.moref, &["runtime.powerState"])
            .await
            .map_err(|e| ctx.fail(&vm.name, id, e))?;
        let state = props
            .get("runtime.powerState")
            .map(|n| n.text.trim().to_string())
            .unwrap_or_default();
        if state == "poweredOff" {
            return ctx
                .done(&vm.moref, format!("{} 的操作系统已关闭", vm.name))
                .await;
        }
        if started.elapsed() >= SHUTDOWN_DEADLINE {
            return Err(reject(format!(
                "{} 在 {} 秒内没有关机(客户机可能忽略了关机请求);可用 关机 强制断电",
                vm.name,
                SHUTDOWN_DEADLINE.as_secs()
            )));
        }
        let waited = started.elapsed().as_secs_f64() / SHUTDOWN_DEADLINE.as_secs_f64();
        ctx.progress
            .report(30 + (waited * 60.0) as u8, "等待客户机关闭操作系统");
        tokio::time::sleep(SHUTDOWN_POLL).await;
    }
}

/// Why a guest reboot cannot be asked for, when it cannot.
fn reboot_unavailable(tools_running: Option<&str>) -> Option<String> {
    match tools_running {
        Some("guestToolsRunning") => None,
        Some(other) => Some(format!("VMware Tools 未运行({other})")),
        None => Some("VMware Tools 状态未知".into()),
    }
}

pub(super) async fn reboot(ctx: &Ctx<'_>, id: &str) -> Result<OpOutcome, ProviderError> {
    let vm = ctx.facts(id, &["guest.toolsRunningStatus"]).await?;
    if vm.template {
        return Err(reject(format!("{} 是模板,不能执行此操作", vm.name)));
    }
    if !vm.powered_on() {
        return Err(reject(format!("{} 没有开机,无法重启", vm.name)));
    }
    let mut why_reset = reboot_unavailable(vm.text("guest.toolsRunningStatus"));
    if why_reset.is_none() {
        match ctx.client.invoke("RebootGuest", &vm.moref, "").await {
            Ok(_) => {
                return ctx
                    .done(&vm.moref, format!("{}: 已重启客户机操作系统", vm.name))
                    .await
            }
            Err(e)
                if e.is_fault("MethodNotFound")
                    || e.is_fault("ToolsUnavailable")
                    || e.is_fault("NotSupported") =>
            {
                why_reset = Some(format!(
                    "客户机无法重启({})",
                    e.fault_kind().unwrap_or_default()
                ));
            }
            Err(e) if e.is_fault("InvalidPowerState") => {
                return Err(reject(format!("{} 没有开机,无法重启", vm.name)))
            }
            Err(e) => return Err(ctx.fail(&vm.name, id, e)),
        }
    }
    let why = why_reset.unwrap_or_default();
    ctx.progress.report(50, "客户机无法重启,正在硬重置");
    match ctx.quick_task("ResetVM_Task", &vm.moref, "").await {
        Ok(_) => {
            ctx.done(&vm.moref, format!("{}: {why},已改为硬重置(reset)", vm.name))
                .await
        }
        Err(e) if e.is_fault("InvalidPowerState") => {
            Err(reject(format!("{} 没有开机,无法重启", vm.name)))
        }
        Err(e) => Err(ctx.fail(&vm.name, id, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reboot_needs_running_tools() {
        assert_eq!(reboot_unavailable(Some("guestToolsRunning")), None);
        assert_eq!(
            reboot_unavailable(Some("guestToolsNotRunning")).unwrap(),
            "VMware Tools 未运行(guestToolsNotRunning)"
        );
        assert!(reboot_unavailable(None).is_some());
    }
}
