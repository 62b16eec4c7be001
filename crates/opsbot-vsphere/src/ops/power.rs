//! Power on, hard power off, guest shutdown, guest reboot (falling back to a reset).

use super::{reject, Ctx, VmFacts};
use opsbot_core::{Done, OpOutcome, ProviderError, Rejection, ResetReason, Step};
use std::time::{Duration, Instant};

/// How long a guest shutdown may take before we give up waiting.
const SHUTDOWN_DEADLINE: Duration = Duration::from_secs(300);
const SHUTDOWN_POLL: Duration = Duration::from_secs(2);

/// Refuses an operation on a template.
pub(super) fn refuse_template(vm: &VmFacts) -> Result<(), ProviderError> {
    if vm.template {
        return Err(reject(Rejection::IsTemplate {
            vm: vm.name.clone(),
        }));
    }
    Ok(())
}

pub(super) async fn power_on(ctx: &Ctx<'_>, id: &str) -> Result<OpOutcome, ProviderError> {
    let vm = ctx.facts(id, &[]).await?;
    ctx.progress.report(10, &Step::PoweringOn);
    let name = vm.name.clone();
    match ctx.quick_task("PowerOnVM_Task", &vm.moref, "").await {
        Ok(_) => ctx.done(&vm.moref, Done::PoweredOn { vm: name }).await,
        Err(e) if e.is_fault("InvalidPowerState") => Err(reject(Rejection::AlreadyOn { vm: name })),
        Err(e) if e.is_fault("InvalidState") || (vm.template && e.is_fault("NotSupported")) => {
            if vm.template {
                Err(reject(Rejection::TemplateCannotPowerOn { vm: name }))
            } else {
                Err(reject(Rejection::PowerOnNotAllowed { vm: name }))
            }
        }
        Err(e) => Err(ctx.fail(&vm.name, id, e)),
    }
}

pub(super) async fn power_off(ctx: &Ctx<'_>, id: &str) -> Result<OpOutcome, ProviderError> {
    let vm = ctx.facts(id, &[]).await?;
    refuse_template(&vm)?;
    let name = vm.name.clone();
    match ctx.quick_task("PowerOffVM_Task", &vm.moref, "").await {
        Ok(_) => ctx.done(&vm.moref, Done::PoweredOff { vm: name }).await,
        Err(e) if e.is_fault("InvalidPowerState") => {
            Err(reject(Rejection::AlreadyOff { vm: name }))
        }
        Err(e) => Err(ctx.fail(&vm.name, id, e)),
    }
}

pub(super) async fn shutdown(ctx: &Ctx<'_>, id: &str) -> Result<OpOutcome, ProviderError> {
    let vm = ctx.facts(id, &[]).await?;
    refuse_template(&vm)?;
    let name = vm.name.clone();
    match ctx.change("ShutdownGuest", &vm.moref, "").await {
        Ok(_) => {}
        Err(e) if e.is_fault("InvalidPowerState") => {
            return Err(reject(Rejection::NotOn { vm: name }))
        }
        Err(e) if e.is_fault("ToolsUnavailable") => {
            return Err(reject(Rejection::ShutdownNeedsTools { vm: name }))
        }
        Err(e) => return Err(ctx.fail(&vm.name, id, e)),
    }
    ctx.progress.report(30, &Step::ShutdownRequested);
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
            return ctx.done(&vm.moref, Done::GuestShutDown { vm: name }).await;
        }
        if started.elapsed() >= SHUTDOWN_DEADLINE {
            return Err(reject(Rejection::ShutdownTimedOut {
                vm: name,
                secs: SHUTDOWN_DEADLINE.as_secs(),
            }));
        }
        let waited = started.elapsed().as_secs_f64() / SHUTDOWN_DEADLINE.as_secs_f64();
        ctx.progress
            .report(30 + (waited * 60.0) as u8, &Step::AwaitingShutdown);
        tokio::time::sleep(SHUTDOWN_POLL).await;
    }
}

/// Why a guest reboot cannot be asked for, when it cannot.
fn reboot_unavailable(tools_running: Option<&str>) -> Option<ResetReason> {
    match tools_running {
        Some("guestToolsRunning") => None,
        Some(other) => Some(ResetReason::ToolsNotRunning {
            status: Some(other.to_string()),
        }),
        None => Some(ResetReason::ToolsStatusUnknown),
    }
}

pub(super) async fn reboot(ctx: &Ctx<'_>, id: &str) -> Result<OpOutcome, ProviderError> {
    let vm = ctx.facts(id, &["guest.toolsRunningStatus"]).await?;
    refuse_template(&vm)?;
    let name = vm.name.clone();
    let not_on = || reject(Rejection::RebootNeedsPowerOn { vm: name.clone() });
    if !vm.powered_on() {
        return Err(not_on());
    }
    let reset = match reboot_unavailable(vm.text("guest.toolsRunningStatus")) {
        Some(why) => why,
        None => match ctx.change("RebootGuest", &vm.moref, "").await {
            Ok(_) => {
                let done = Done::Rebooted {
                    vm: name.clone(),
                    reset: None,
                };
                return ctx.done(&vm.moref, done).await;
            }
            Err(e)
                if e.is_fault("MethodNotFound")
                    || e.is_fault("ToolsUnavailable")
                    || e.is_fault("NotSupported") =>
            {
                ResetReason::GuestCannotReboot {
                    fault: e.fault_kind().unwrap_or_default().to_string(),
                }
            }
            Err(e) if e.is_fault("InvalidPowerState") => return Err(not_on()),
            Err(e) => return Err(ctx.fail(&vm.name, id, e)),
        },
    };
    ctx.progress.report(50, &Step::Resetting);
    match ctx.quick_task("ResetVM_Task", &vm.moref, "").await {
        Ok(_) => {
            let done = Done::Rebooted {
                vm: name.clone(),
                reset: Some(reset),
            };
            ctx.done(&vm.moref, done).await
        }
        Err(e) if e.is_fault("InvalidPowerState") => Err(not_on()),
        Err(e) => Err(ctx.fail(&vm.name, id, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reboot_needs_running_tools() {
        assert_eq!(reboot_unavailable(Some("guestToolsRunning")), None);
        let why = reboot_unavailable(Some("guestToolsNotRunning")).unwrap();
        assert_eq!(
            opsbot_engine::render::provider::done(&Done::Rebooted {
                vm: "web".into(),
                reset: Some(why)
            }),
            "web: VMware Tools 未运行(guestToolsNotRunning),已改为硬重置(reset)"
        );
        assert!(reboot_unavailable(None).is_some());
    }
}
