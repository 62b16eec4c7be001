//! Sizes are binary and labelled so (GiB/TiB), and times are in the configured zone,
//! which chat names beside them.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

mod common;

use common::*;
use opsbot_core::Zone;
use opsbot_engine::EngineSettings;

#[tokio::test]
async fn sizes_say_gib_and_tib() {
    let h = harness(admin_policy()).await;
    for (text, wants) in [
        (
            "查:web-04",
            &["4 CPU / 8 GiB 内存 / 磁盘 100 GiB", "硬盘 1 100 GiB @"][..],
        ),
        ("虚拟机", &["C/", "GiB "][..]),
        ("主机", &["32核 256GiB"][..]),
        ("存储", &["已用 58% · 剩余 3.3 TiB / 共 8.0 TiB"][..]),
        ("概况", &["GiB 内存", "容量 52.0 TiB"][..]),
        ("内存:web-04,16", &["内存: 8 GiB → 16 GiB"][..]),
    ] {
        let r = h.say(ADMIN, text).await;
        for want in wants {
            assert!(r.text.contains(want), "{text}: {want} in {}", r.text);
        }
        for unit in [" GB", "G ", " TB", "T,"] {
            assert!(!r.text.contains(unit), "{text}: no {unit:?} in {}", r.text);
        }
    }
}

#[tokio::test]
async fn job_times_are_in_the_configured_zone_and_say_so() {
    let zone = Zone::parse("Asia/Kolkata").unwrap();
    let settings = EngineSettings {
        zone,
        ..EngineSettings::default()
    };
    let h = harness_with(admin_policy(), settings, None).await;
    let (r, _, _) = h.run(ADMIN, "开机:web-04").await;
    let id = r.job().expect("a job");
    let job = h.store.job(id).await.unwrap().unwrap();
    let r = h.say(ADMIN, "任务").await;
    assert!(r.text.contains("时间 UTC+5:30"), "{}", r.text);
    let at = zone.format(job.created_at, "%m-%d %H:%M");
    assert!(r.text.contains(&at), "{at} in {}", r.text);
    let r = h.say(ADMIN, &format!("任务:{}", id.0)).await;
    assert!(
        r.text.contains(&format!("开始: {at} UTC+5:30")),
        "{}",
        r.text
    );
}
