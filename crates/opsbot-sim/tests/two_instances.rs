//! Two opsbot processes share one sim estate: each is a `SimProvider` with its own
//! store connection (its own writer queue and in-process lock), changing VMs at the
//! same moment. Every change must persist; a job's change commits only under its
//! claim.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

use opsbot_core::{
    JobFence, NoProgress, PowerState, Progress, Provider, ProviderError, Step, VmOperation,
};
use opsbot_sim::SimProvider;
use opsbot_store::{InterruptFilter, NewJob, Store};
use std::sync::Arc;

async fn two_processes() -> (tempfile::TempDir, Arc<dyn Store>, SimProvider, SimProvider) {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/opsbot.db", dir.path().display());
    let a = opsbot_store::connect(&url).await.unwrap();
    let b = opsbot_store::connect(&url).await.unwrap();
    let sim_a = SimProvider::new("sim", a.clone(), 0.0);
    let sim_b = SimProvider::new("sim", b, 0.0);
    (dir, a, sim_a, sim_b)
}

/// Two VMs that can be powered on and off (not templates, on connected hosts).
async fn two_vms(sim: &SimProvider) -> (String, String) {
    let inv = sim.inventory().await.unwrap();
    let usable: Vec<String> = inv
        .vms
        .iter()
        .filter(|v| !v.template)
        .filter(|v| {
            inv.hosts
                .iter()
                .any(|h| h.name == v.host && h.connection_state == "connected")
        })
        .map(|v| v.id.clone())
        .take(2)
        .collect();
    (usable[0].clone(), usable[1].clone())
}

async fn power(sim: &SimProvider, vm: &str) -> PowerState {
    let inv = sim.inventory().await.unwrap();
    inv.vms.iter().find(|v| v.id == vm).unwrap().power
}

fn toggle(state: PowerState, vm: &str) -> VmOperation {
    match state {
        PowerState::PoweredOn => VmOperation::PowerOff { vm: vm.into() },
        _ => VmOperation::PowerOn { vm: vm.into() },
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_changes_from_two_instances_all_persist() {
    let (_dir, _store, sim_a, sim_b) = two_processes().await;
    let (x, y) = two_vms(&sim_a).await;
    let sim_a = Arc::new(sim_a);
    let sim_b = Arc::new(sim_b);
    for round in 0..30 {
        let (px, py) = (power(&sim_a, &x).await, power(&sim_a, &y).await);
        let (op_x, op_y) = (toggle(px, &x), toggle(py, &y));
        let (ra, rb) = tokio::join!(
            {
                let sim = sim_a.clone();
                async move { sim.execute(&op_x, &NoProgress).await }
            },
            {
                let sim = sim_b.clone();
                async move { sim.execute(&op_y, &NoProgress).await }
            }
        );
        ra.unwrap();
        rb.unwrap();
        // Both changes are in the stored estate, whichever instance reads it.
        assert_ne!(
            power(&sim_b, &x).await,
            px,
            "round {round}: {x}'s change was lost"
        );
        assert_ne!(
            power(&sim_a, &y).await,
            py,
            "round {round}: {y}'s change was lost"
        );
    }
}

/// A job's progress as the engine gives it: with the job's claim.
struct Claimed(JobFence);

impl Progress for Claimed {
    fn report(&self, _percent: u8, _step: &Step) {}
    fn fence(&self) -> Option<&JobFence> {
        Some(&self.0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_fenced_out_changes_nothing() {
    let (_dir, store, sim, _) = two_processes().await;
    let (x, _) = two_vms(&sim).await;
    let before = power(&sim, &x).await;
    let job = |owner: &str| NewJob {
        owner: owner.into(),
        user: "zhangsan".into(),
        channel: "console".into(),
        chat: None,
        command: "开机".into(),
        text: format!("开机:{x}"),
        message: "已受理".into(),
        target: Some(format!("sim/{x}")),
    };

    // A live claim commits.
    let live = store.start_job(&job("proc-live")).await.unwrap();
    sim.execute(&toggle(before, &x), &Claimed(live))
        .await
        .unwrap();
    let toggled = power(&sim, &x).await;
    assert_ne!(toggled, before);

    // Another instance called this one dead and interrupted its job: the frozen
    // instance's operation, resumed, must not change the VM.
    let frozen = store.start_job(&job("proc-frozen")).await.unwrap();
    store
        .interrupt_jobs(&InterruptFilter::Owner("proc-frozen".into()), "已中断")
        .await
        .unwrap();
    let refused = sim.execute(&toggle(toggled, &x), &Claimed(frozen)).await;
    assert!(
        matches!(refused, Err(ProviderError::FencedOut)),
        "{refused:?}"
    );
    assert_eq!(power(&sim, &x).await, toggled, "the VM was left as it was");
}
