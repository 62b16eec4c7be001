//! Deleting a VM (Destroy_Task): its files and disks go with it. vCenter destroys only a
//! VM that is off; the refusal is the same typed one the simulated provider gives.

use super::power::refuse_template;
use super::{reject, scale, Ctx};
use opsbot_core::{Done, OpOutcome, ProviderError, Rejection, Step};

pub(super) async fn delete(ctx: &Ctx<'_>, id: &str) -> Result<OpOutcome, ProviderError> {
    let vm = ctx.facts(id, &[]).await?;
    refuse_template(&vm)?;
    let needs_off = |power: Option<String>| {
        reject(Rejection::DeleteNeedsPowerOff {
            vm: vm.name.clone(),
            power,
        })
    };
    // Checked here too (vCenter would answer InvalidPowerState for a running VM; a
    // suspended one it would destroy, which chat promised not to do).
    if vm.power != "poweredOff" {
        return Err(needs_off(Some(vm.power.clone()).filter(|p| !p.is_empty())));
    }
    ctx.progress.report(5, &Step::Deleting);
    let progress = ctx.progress;
    match ctx
        .task("Destroy_Task", &vm.moref, "", &mut |p| {
            progress.report(scale(p, 5, 95), &Step::Deleting);
        })
        .await
    {
        Ok(_) => Ok(OpOutcome {
            done: Done::Deleted { vm: vm.name },
            vm: None,
        }),
        // Powered on between the read and the task.
        Err(e) if e.is_fault("InvalidPowerState") => Err(needs_off(None)),
        Err(e) => Err(ctx.fail(&vm.name, id, e)),
    }
}
