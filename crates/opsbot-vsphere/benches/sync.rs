//! Times `inventory::fetch` (a full read) and `inventory::light_pass` (the light pass of
//! a re-sync) against vcsim with about 10,000 VMs and reports the VM count, wall time per
//! round and the process's peak RSS (VmHWM).
//!
//! `cargo bench -p opsbot-vsphere --bench sync`; `OPSBOT_BENCH_VMS_PER_POOL` (default 1111,
//! with 8 clusters × 8 hosts and one standalone host: 9 pools → 9,999 VMs) and
//! `OPSBOT_BENCH_ROUNDS` (default 3) tune it.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

#[path = "../tests/common/mod.rs"]
mod common;

use opsbot_vsphere::client::VimClient;
use opsbot_vsphere::inventory;
use std::time::Instant;

fn vm_hwm_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

fn report(what: &str, times: &mut [f64]) {
    times.sort_by(f64::total_cmp);
    println!(
        "{what}: best {:.3} s, median {:.3} s over {} rounds; peak RSS {:.1} MiB",
        times[0],
        times[times.len() / 2],
        times.len(),
        vm_hwm_kb() as f64 / 1024.0
    );
}

fn main() {
    let per_pool = std::env::var("OPSBOT_BENCH_VMS_PER_POOL").unwrap_or_else(|_| "1111".into());
    let rounds: usize = std::env::var("OPSBOT_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(3);
    let started = Instant::now();
    let Some(sim) = common::vcsim(&["-cluster", "8", "-host", "8", "-vm", &per_pool]) else {
        return;
    };
    println!("vcsim ready in {:.1} s", started.elapsed().as_secs_f64());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let client = VimClient::connect(sim.config()).await.unwrap();
        let base = vm_hwm_kb();
        println!("peak RSS before sync: {:.1} MiB", base as f64 / 1024.0);
        let mut times = Vec::new();
        for round in 1..=rounds {
            let t = Instant::now();
            let inv = inventory::fetch(&client, "bench").await.unwrap();
            let elapsed = t.elapsed();
            times.push(elapsed.as_secs_f64());
            println!(
                "round {round}: {} VMs, {} hosts, {} clusters, {} datastores, {} networks in {:.3} s; peak RSS {:.1} MiB",
                inv.vms.len(),
                inv.hosts.len(),
                inv.clusters.len(),
                inv.datastores.len(),
                inv.networks.len(),
                elapsed.as_secs_f64(),
                vm_hwm_kb() as f64 / 1024.0
            );
        }
        report("inventory::fetch", &mut times);
        // The light pass a re-sync makes to see whether anything changed.
        let mut times = Vec::new();
        for _ in 0..rounds {
            let t = Instant::now();
            inventory::light_pass(&client, "bench").await.unwrap();
            times.push(t.elapsed().as_secs_f64());
        }
        report("inventory::light_pass", &mut times);
    });
}
