//! Fencing cases: provider state written conditionally on its version and on a job's
//! claim, and the claim ended by an interruption, on two store instances like two
//! opsbot processes.

use super::harness::Ctx;
use opsbot_core::{JobFence, JobState};
use opsbot_store::{InterruptFilter, NewJob, StateStore, StateWrite, Store};
use std::sync::Arc;

fn job(owner: &str) -> NewJob {
    NewJob {
        owner: owner.into(),
        user: "zhangsan".into(),
        channel: "console".into(),
        chat: None,
        command: "开机".into(),
        text: "开机:web-04".into(),
        message: "已受理".into(),
        target: Some("sim/vm-4".into()),
    }
}

/// Adds one to the counter under `key`, re-reading after every conflict.
async fn increment(s: &dyn StateStore, key: &str) -> u32 {
    for conflicts in 0..10_000 {
        let current = s.get_state_versioned(key).await.unwrap();
        let (n, version) = match &current {
            Some(v) => (v.value.parse::<u32>().unwrap(), Some(v.version)),
            None => (0, None),
        };
        match s
            .put_state_if(key, version, &(n + 1).to_string(), None)
            .await
            .unwrap()
        {
            StateWrite::Written { .. } => return conflicts,
            StateWrite::Conflict => continue,
            StateWrite::FencedOut => panic!("no fence was given"),
        }
    }
    panic!("10,000 conflicts in a row: the other writer never finished");
}

pub async fn state_cas_loses_no_update(ctx: Ctx) {
    let a: Arc<dyn Store> = ctx.store.clone();
    let b: Arc<dyn Store> = opsbot_store::connect(&ctx.url).await.unwrap();
    let run = |s: Arc<dyn Store>| {
        tokio::spawn(async move {
            let mut conflicts = 0;
            for _ in 0..50 {
                conflicts += increment(s.as_ref(), "sim:counter").await;
            }
            conflicts
        })
    };
    let (ca, cb) = (run(a.clone()), run(b.clone()));
    let conflicts = ca.await.unwrap() + cb.await.unwrap();
    let end = a.get_state_versioned("sim:counter").await.unwrap().unwrap();
    assert_eq!(
        end.value, "100",
        "no increment lost ({conflicts} conflicts retried)"
    );
    assert_eq!(end.version, 100, "one version per write");

    // An unconditional write moves the version too: a writer that read before it
    // conflicts instead of overwriting it.
    a.put_state("sim:counter", "7").await.unwrap();
    assert_eq!(
        a.put_state_if("sim:counter", Some(end.version), "101", None)
            .await
            .unwrap(),
        StateWrite::Conflict
    );
    assert_eq!(
        a.get_state("sim:counter").await.unwrap().as_deref(),
        Some("7")
    );
    // Creating what exists is a conflict too.
    assert_eq!(
        a.put_state_if("sim:counter", None, "0", None)
            .await
            .unwrap(),
        StateWrite::Conflict
    );
}

pub async fn fenced_state_write_is_refused_once_the_claim_ends(ctx: Ctx) {
    let s = &ctx.store;
    let fence = s.start_job(&job("proc-a")).await.unwrap();
    assert_eq!(
        s.job(fence.job).await.unwrap().unwrap().target.as_deref(),
        Some("sim/vm-4")
    );
    assert!(s.fence_holds(&fence).await.unwrap());
    let StateWrite::Written { version } = s
        .put_state_if("sim:c", None, "v1", Some(&fence))
        .await
        .unwrap()
    else {
        panic!("the holder of a live claim writes");
    };

    // Another owner or another token is not the claim.
    for wrong in [
        JobFence {
            owner: "proc-b".into(),
            ..fence.clone()
        },
        JobFence {
            token: fence.token + 1,
            ..fence.clone()
        },
    ] {
        assert!(!s.fence_holds(&wrong).await.unwrap());
        assert_eq!(
            s.put_state_if("sim:c", Some(version), "v2", Some(&wrong))
                .await
                .unwrap(),
            StateWrite::FencedOut
        );
        assert!(!s
            .update_fenced_job(&wrong, JobState::Succeeded, 100, "done")
            .await
            .unwrap());
    }
    assert!(s
        .update_fenced_job(&fence, JobState::Running, 50, "half way")
        .await
        .unwrap());

    // The sweep calls proc-a dead: its claim is gone, whatever it does next.
    let swept = s
        .interrupt_jobs_saying(&InterruptFilter::Owner("proc-a".into()), &|j| {
            format!(
                "已中断;{} 当前状态: 开机",
                j.target.as_deref().unwrap_or("?")
            )
        })
        .await
        .unwrap();
    assert_eq!(swept, vec![fence.job]);
    assert!(!s.fence_holds(&fence).await.unwrap());
    assert_eq!(
        s.put_state_if("sim:c", Some(version), "v2", Some(&fence))
            .await
            .unwrap(),
        StateWrite::FencedOut
    );
    assert_eq!(s.get_state("sim:c").await.unwrap().as_deref(), Some("v1"));
    assert!(!s
        .update_fenced_job(&fence, JobState::Succeeded, 100, "done")
        .await
        .unwrap());
    let record = s.job(fence.job).await.unwrap().unwrap();
    assert_eq!(record.state, JobState::Interrupted);
    assert_eq!(record.message, "已中断;sim/vm-4 当前状态: 开机");
}

pub async fn interrupt_and_fenced_write_serialise(ctx: Ctx) {
    let a: Arc<dyn Store> = ctx.store.clone();
    let b: Arc<dyn Store> = opsbot_store::connect(&ctx.url).await.unwrap();
    let (mut written, mut refused) = (0, 0);
    for round in 0..20 {
        let owner = format!("proc-{round}");
        let key = format!("sim:race-{round}");
        a.put_state(&key, "old").await.unwrap();
        let version = a.get_state_versioned(&key).await.unwrap().unwrap().version;
        let fence = a.start_job(&job(&owner)).await.unwrap();
        let writer = {
            let (a, key, fence) = (a.clone(), key.clone(), fence.clone());
            tokio::spawn(async move {
                a.put_state_if(&key, Some(version), "new", Some(&fence))
                    .await
                    .unwrap()
            })
        };
        let sweeper = {
            let b = b.clone();
            tokio::spawn(async move {
                b.interrupt_jobs(&InterruptFilter::Owner(owner), "已中断")
                    .await
                    .unwrap()
            })
        };
        let outcome = writer.await.unwrap();
        assert_eq!(
            sweeper.await.unwrap(),
            vec![fence.job],
            "the job is interrupted either way"
        );
        let blob = a.get_state(&key).await.unwrap();
        match outcome {
            StateWrite::Written { .. } => {
                written += 1;
                assert_eq!(blob.as_deref(), Some("new"));
            }
            StateWrite::FencedOut => {
                refused += 1;
                assert_eq!(
                    blob.as_deref(),
                    Some("old"),
                    "a refused write changed nothing"
                );
            }
            StateWrite::Conflict => panic!("nobody else wrote {key}"),
        }
        assert!(!a
            .update_fenced_job(&fence, JobState::Succeeded, 100, "done")
            .await
            .unwrap());
        assert_eq!(
            a.job(fence.job).await.unwrap().unwrap().state,
            JobState::Interrupted
        );
    }
    println!("fenced write before the interruption {written}, refused after it {refused}");
}
