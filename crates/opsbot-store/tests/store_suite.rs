//! One suite of `Store` tests run against every backend: SQLite (a temp file),
//! PostgreSQL and MySQL/MariaDB (a fresh database per test on the servers named by
//! `OPSBOT_TEST_POSTGRES_URL` / `OPSBOT_TEST_MYSQL_URL`). A server that is not running
//! skips its tests unless `OPSBOT_TEST_REQUIRE_SERVICES=1`.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

#[path = "store_suite/alert_groups.rs"]
mod alert_groups;
#[path = "store_suite/alerts.rs"]
mod alerts;
#[path = "store_suite/assets.rs"]
mod assets;
#[path = "store_suite/bad_input.rs"]
mod bad_input;
#[path = "store_suite/cards.rs"]
mod cards;
#[path = "store_suite/channels.rs"]
mod channels;
#[path = "store_suite/deploy.rs"]
mod deploy;
#[path = "store_suite/fencing.rs"]
mod fencing;
#[path = "store_suite/fixtures.rs"]
mod fixtures;
#[path = "store_suite/group_commit.rs"]
mod group_commit;
#[path = "store_suite/harness.rs"]
mod harness;
#[path = "store_suite/leases.rs"]
mod leases;
#[path = "store_suite/outbox.rs"]
mod outbox;
#[path = "store_suite/retention.rs"]
mod retention;
#[path = "store_suite/sqlite_writes.rs"]
mod sqlite_writes;
#[path = "store_suite/tokens.rs"]
mod tokens;

use harness::{Ctx, Kind, TestDb};

/// Runs `case` against a fresh store of `kind`.
async fn run<F, Fut>(kind: Kind, case: F)
where
    F: FnOnce(Ctx) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let Some(db) = TestDb::open(kind).await else {
        return;
    };
    case(db.ctx.clone()).await;
}

/// Declares every case once per backend: `sqlite::name`, `postgres::name`, `mysql::name`.
macro_rules! suite {
    ($($case:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() { super::run(super::Kind::Sqlite, super::cases::$case).await })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() { super::run(super::Kind::Postgres, super::cases::$case).await })*
        }
        mod mysql {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $case() { super::run(super::Kind::Mysql, super::cases::$case).await })*
        }
    };
}

suite!(
    migrations_are_idempotent,
    apply_inventory_inserts_updates_removes_and_revives,
    vm_delta_touches_only_the_named_vms,
    template_numbers_are_stable,
    upsert_vm_records_changes,
    chinese_names_round_trip,
    load_pool_returns_every_provider,
    version_moves_only_on_change,
    change_history_filters,
    subsystem_changes_are_appended_with_store_ids,
    audit_log_append_and_filter,
    mark_processed_once,
    concurrent_ids_and_audit_rows_keep_single_write_semantics,
    a_refused_audit_row_fails_alone_in_its_batch,
    jobs_lifecycle_and_interrupt,
    policy_round_trip,
    provider_state_upsert,
    ten_thousand_vms,
    outbox_push_claim_sent,
    outbox_claim_matches_due_items_by_channel_prefix,
    outbox_lease_excludes_others_until_it_expires,
    outbox_concurrent_claimers_never_share,
    outbox_retry_counts_and_delays,
    outbox_marks_need_the_claim_that_holds_the_item,
    outbox_held_items_wait_for_their_job,
    outbox_dead_letters_listed_never_claimed,
    outbox_depth_counts_pending,
    outbox_large_body_round_trips,
    outbox_survives_reopen,
    tokens_round_trip_and_revoke,
    token_ids_are_unique,
    lease_has_one_holder_until_it_expires,
    state_cas_loses_no_update,
    fenced_state_write_is_refused_once_the_claim_ends,
    interrupt_and_fenced_write_serialise,
    lease_race_has_one_winner,
    lease_tokens_move_only_when_it_changes_hands,
    pool_writes_fenced_by_a_lost_lease_change_nothing,
    streams_open_once_per_message,
    streams_fill_until_done_or_handed_over,
    streams_are_purged_by_age,
    reply_windows_count_and_reopen,
    alerts_dedup_by_fingerprint_and_detect_news,
    alert_groups_flush_into_the_outbox_once,
    silences_last_until_their_end,
    alert_ingest_of_thousands_in_one_batch,
    alert_resolutions_count_flaps_and_are_pruned,
    alert_group_flush_needs_the_current_claim,
    alert_group_due_is_the_earliest_ask,
    alert_group_concurrent_claimers_never_share,
    alert_groups_lose_no_notice_to_a_racing_flush,
    assets_ingest_diffs_field_by_field,
    assets_token_binding_and_staleness,
    text_with_nul_is_stored_cleaned_on_every_backend,
    a_refused_payload_does_not_take_its_batch_down,
    outage_errors_name_no_database,
    processed_ids_are_pruned_by_age,
    processed_ids_are_pruned_periodically_under_a_lease,
    assets_unpinned_token_binds_its_first_host,
    provider_state_erase,
    deploy_projects_crud,
    deploy_builds_finish_once_and_are_interrupted,
    deploy_order_lifecycle,
    deploy_racing_transitions_have_one_winner,
    deploy_order_and_hosts_are_written_together,
    deploy_logs_page_by_seq,
    deploy_text_with_nul_and_huge_logs,
    deploy_orphans_are_found_by_owner_or_stale_heartbeat,
    deploy_a_following_reader_misses_no_chunk,
    deploy_run_writes_need_the_order_held,
    cards_are_put_once_and_read_back,
    cards_code_is_taken_once,
    cards_are_replaced_by_compare_and_set,
    cards_one_claimer_wins_each_slot,
    cards_release_only_own_claim_without_outcome,
    remediation_admission_keeps_the_limit_and_cool_down,
    remediation_concurrent_admissions_never_exceed_the_limit,
    cards_and_remediation_runs_are_pruned,
    cards_are_pruned_periodically_under_a_lease,
    cards_bad_keys_are_refused,
);

mod cases {
    pub use super::alert_groups::*;
    pub use super::alerts::*;
    pub use super::assets::*;
    pub use super::bad_input::*;
    pub use super::cards::*;
    pub use super::channels::*;
    pub use super::deploy::*;
    pub use super::fencing::*;
    use super::fixtures::*;
    pub use super::group_commit::*;
    use super::harness::{Ctx, Kind};
    pub use super::leases::*;
    pub use super::outbox::*;
    pub use super::retention::*;
    pub use super::tokens::*;
    use chrono::{SubsecRound, Utc};
    use opsbot_core::{AuditEntry, AuditResult, Change, Inventory, JobState, Nic, Role};
    use opsbot_store::{
        connect, AuditQuery, ChangeQuery, InterruptFilter, JobQuery, NewJob, PolicyData,
    };
    use std::collections::BTreeMap;
    use std::time::Instant;

    /// Changes as sortable one-liners: `kind id field old -> new`.
    fn summary(changes: &[Change]) -> Vec<String> {
        let mut lines: Vec<String> = changes
            .iter()
            .map(|c| {
                format!(
                    "{} {} {} {} -> {}",
                    c.object_kind,
                    c.object_id,
                    c.field,
                    c.old_value.as_deref().unwrap_or("∅"),
                    c.new_value.as_deref().unwrap_or("∅")
                )
            })
            .collect();
        lines.sort();
        lines
    }

    async fn all_changes(ctx: &Ctx) -> Vec<Change> {
        ctx.store.changes(&ChangeQuery::default()).await.unwrap()
    }

    pub async fn migrations_are_idempotent(ctx: Ctx) {
        ctx.store.ping().await.unwrap();
        ctx.store
            .apply_inventory("vc1", &inventory("vc1"), "sync")
            .await
            .unwrap();
        let version = ctx.store.pool_version().await.unwrap();
        // A second process opening the same database migrates nothing and sees the data.
        let again = connect(&ctx.url).await.unwrap();
        again.ping().await.unwrap();
        assert_eq!(again.pool_version().await.unwrap(), version);
        assert_eq!(
            again.load_pool().await.unwrap(),
            ctx.store.load_pool().await.unwrap()
        );
        let third = connect(&ctx.url).await.unwrap();
        assert_eq!(third.pool_version().await.unwrap(), version);
    }

    pub async fn vm_delta_touches_only_the_named_vms(ctx: Ctx) {
        let s = &ctx.store;
        let v1 = inventory("vc1");
        s.apply_inventory("vc1", &v1, "sync").await.unwrap();
        s.apply_inventory("sim", &inventory("sim"), "sync")
            .await
            .unwrap();
        let before = all_changes(&ctx).await.len();

        // vm-1 changed, vm-3 is new, vm-2 is gone; the template and the hosts are not named.
        let mut web = v1.vms[0].clone();
        web.cpu = 8;
        web.nics[0].network = "prod-100".into();
        let app = vm("vc1", "vm-3", "app01");
        let report = s
            .apply_vm_delta("vc1", &[web.clone(), app.clone()], &["vm-2".into()], "sync")
            .await
            .unwrap();
        assert_eq!((report.added, report.updated, report.removed), (1, 1, 1));
        assert_eq!(
            (
                report.datacenters,
                report.clusters,
                report.hosts,
                report.vms,
                report.templates
            ),
            (1, 1, 2, 2, 1),
            "the provider's counts afterwards"
        );
        assert_eq!((report.datastores, report.networks), (1, 2));
        let changes = all_changes(&ctx).await;
        let new = &changes[..changes.len() - before];
        let old_nics = serde_json::to_string(&v1.vms[0].nics).unwrap();
        let new_nics = serde_json::to_string(&web.nics).unwrap();
        let mut expected = vec![
            "vm vm-1 cpu 2 -> 8".to_string(),
            format!("vm vm-1 nics {old_nics} -> {new_nics}"),
            "vm vm-2 removed db01 -> ∅".to_string(),
            "vm vm-3 created ∅ -> app01".to_string(),
        ];
        expected.sort();
        assert_eq!(summary(new), expected);

        let mut want = v1.clone();
        want.vms = vec![web, app, v1.vms[2].clone()];
        let pool = s.load_pool().await.unwrap();
        let vc1 = Inventory {
            datacenters: pool
                .inventory
                .datacenters
                .iter()
                .filter(|o| o.provider == "vc1")
                .cloned()
                .collect(),
            clusters: pool
                .inventory
                .clusters
                .iter()
                .filter(|o| o.provider == "vc1")
                .cloned()
                .collect(),
            hosts: pool
                .inventory
                .hosts
                .iter()
                .filter(|o| o.provider == "vc1")
                .cloned()
                .collect(),
            vms: pool
                .inventory
                .vms
                .iter()
                .filter(|o| o.provider == "vc1")
                .cloned()
                .collect(),
            datastores: pool
                .inventory
                .datastores
                .iter()
                .filter(|o| o.provider == "vc1")
                .cloned()
                .collect(),
            networks: pool
                .inventory
                .networks
                .iter()
                .filter(|o| o.provider == "vc1")
                .cloned()
                .collect(),
        };
        assert_eq!(vc1, sorted(want));
        assert_eq!(
            pool.inventory
                .vms
                .iter()
                .filter(|v| v.provider == "sim")
                .count(),
            3,
            "another provider's VMs of the same ids are untouched"
        );

        // The same delta again changes nothing and leaves the version alone.
        let version = s.pool_version().await.unwrap();
        let again = s
            .apply_vm_delta(
                "vc1",
                &pool
                    .inventory
                    .vms
                    .iter()
                    .filter(|v| v.id == "vm-1" && v.provider == "vc1")
                    .cloned()
                    .collect::<Vec<_>>(),
                &["vm-2".into()],
                "sync",
            )
            .await
            .unwrap();
        assert_eq!((again.added, again.updated, again.removed), (0, 0, 0));
        assert_eq!(s.pool_version().await.unwrap(), version);
    }

    pub async fn apply_inventory_inserts_updates_removes_and_revives(ctx: Ctx) {
        let s = &ctx.store;
        let v1 = inventory("vc1");
        let report = s.apply_inventory("vc1", &v1, "sync").await.unwrap();
        assert_eq!(
            (
                report.datacenters,
                report.clusters,
                report.hosts,
                report.vms,
                report.templates
            ),
            (1, 1, 2, 2, 1)
        );
        assert_eq!((report.datastores, report.networks), (1, 2));
        assert_eq!((report.added, report.updated, report.removed), (10, 0, 0));
        let created = all_changes(&ctx).await;
        assert_eq!(created.len(), 10);
        assert!(created
            .iter()
            .all(|c| c.field == "created" && c.source == "sync" && c.provider == "vc1"));
        assert_eq!(s.load_pool().await.unwrap().inventory, sorted(v1.clone()));

        // Second sync: a renamed VM with more CPU, a NIC moved, a host gone, a new VM.
        let mut v2 = v1.clone();
        v2.vms[0].name = "web01-new".into();
        v2.vms[0].cpu = 4;
        v2.vms[1].nics[0].network = "prod-100".into();
        v2.hosts.retain(|h| h.id != "h-2");
        v2.vms.push(vm("vc1", "vm-3", "app01"));
        let report = s.apply_inventory("vc1", &v2, "sync").await.unwrap();
        assert_eq!((report.added, report.updated, report.removed), (1, 2, 1));

        let changes = all_changes(&ctx).await;
        let new: Vec<Change> = changes[..changes.len() - 10].to_vec();
        let old_nics = serde_json::to_string(&v1.vms[1].nics).unwrap();
        let new_nics = serde_json::to_string(&v2.vms[1].nics).unwrap();
        let mut expected = vec![
            "host h-2 removed esx2 -> ∅".to_string(),
            "vm vm-1 name web01 -> web01-new".to_string(),
            "vm vm-1 cpu 2 -> 4".to_string(),
            format!("vm vm-2 nics {old_nics} -> {new_nics}"),
            "vm vm-3 created ∅ -> app01".to_string(),
        ];
        expected.sort();
        assert_eq!(summary(&new), expected);
        let renamed = new.iter().find(|c| c.field == "name").unwrap();
        assert_eq!(renamed.object_name, "web01-new");
        assert_eq!(s.load_pool().await.unwrap().inventory, sorted(v2.clone()));

        // Third sync: the host comes back (revived, recorded as created).
        let mut v3 = v2.clone();
        v3.hosts.push(host("vc1", "h-2", "esx2"));
        let report = s.apply_inventory("vc1", &v3, "sync").await.unwrap();
        assert_eq!((report.added, report.updated, report.removed), (1, 0, 0));
        let latest = &all_changes(&ctx).await[0];
        assert_eq!(
            summary(std::slice::from_ref(latest)),
            ["host h-2 created ∅ -> esx2"]
        );
        assert_eq!(s.load_pool().await.unwrap().inventory, sorted(v3));

        // A VM removed and revived comes back with its NICs, disks and IPs.
        let mut v4 = v2.clone();
        v4.vms.retain(|v| v.id != "vm-2");
        s.apply_inventory("vc1", &v4, "sync").await.unwrap();
        assert!(s
            .load_pool()
            .await
            .unwrap()
            .inventory
            .vms
            .iter()
            .all(|v| v.id != "vm-2"));
        s.apply_inventory("vc1", &v2, "sync").await.unwrap();
        let pool = s.load_pool().await.unwrap();
        assert_eq!(
            pool.inventory.vms.iter().find(|v| v.id == "vm-2"),
            v2.vms.iter().find(|v| v.id == "vm-2")
        );
    }

    pub async fn template_numbers_are_stable(ctx: Ctx) {
        let s = &ctx.store;
        let mut inv = Inventory {
            vms: vec![
                template("vc1", "t-a", "tpl-a"),
                vm("vc1", "vm-1", "web01"),
                template("vc1", "t-b", "tpl-b"),
            ],
            ..Inventory::default()
        };
        s.apply_inventory("vc1", &inv, "sync").await.unwrap();
        let numbers = |p: &opsbot_store::PoolSnapshot| {
            p.templates
                .iter()
                .map(|t| (t.number, t.vm_id.clone()))
                .collect::<Vec<_>>()
        };
        let pool = s.load_pool().await.unwrap();
        assert_eq!(numbers(&pool), [(1, "t-a".into()), (2, "t-b".into())]);
        assert_eq!(pool.templates[0].name, "tpl-a");
        assert_eq!(pool.templates[0].guest_os, "centos7_64Guest");
        assert_eq!(pool.templates[0].provider, "vc1");

        // Same inventory again: same numbers.
        s.apply_inventory("vc1", &inv, "sync").await.unwrap();
        assert_eq!(numbers(&s.load_pool().await.unwrap()), numbers(&pool));

        // t-a disappears, t-c appears: t-c gets 3, not t-a's 1.
        inv.vms.retain(|v| v.id != "t-a");
        inv.vms.push(template("vc1", "t-c", "tpl-c"));
        s.apply_inventory("vc1", &inv, "sync").await.unwrap();
        assert_eq!(
            numbers(&s.load_pool().await.unwrap()),
            [(2, "t-b".into()), (3, "t-c".into())]
        );

        // t-a returns and keeps 1; another provider's template gets the next free number.
        inv.vms.push(template("vc1", "t-a", "tpl-a"));
        s.apply_inventory("vc1", &inv, "sync").await.unwrap();
        let other = Inventory {
            vms: vec![template("vc2", "t-a", "tpl-a on vc2")],
            ..Inventory::default()
        };
        s.apply_inventory("vc2", &other, "sync").await.unwrap();
        let pool = s.load_pool().await.unwrap();
        assert_eq!(
            pool.templates
                .iter()
                .map(|t| (t.number, t.provider.as_str(), t.vm_id.as_str()))
                .collect::<Vec<_>>(),
            [
                (1, "vc1", "t-a"),
                (2, "vc1", "t-b"),
                (3, "vc1", "t-c"),
                (4, "vc2", "t-a")
            ]
        );

        // A VM turned into a template by an operation is numbered too.
        let mut converted = vm("vc1", "vm-1", "web01");
        converted.template = true;
        s.upsert_vm(&converted, "chat:ops").await.unwrap();
        let pool = s.load_pool().await.unwrap();
        assert_eq!(pool.templates.last().unwrap().number, 5);
        assert_eq!(pool.templates.last().unwrap().vm_id, "vm-1");
    }

    pub async fn upsert_vm_records_changes(ctx: Ctx) {
        let s = &ctx.store;
        s.apply_inventory("vc1", &inventory("vc1"), "sync")
            .await
            .unwrap();
        let v0 = s.pool_version().await.unwrap();

        // A new VM (a clone finished).
        let clone = vm("vc1", "vm-9", "clone01");
        let changes = s.upsert_vm(&clone, "chat:zhangsan").await.unwrap();
        assert_eq!(summary(&changes), ["vm vm-9 created ∅ -> clone01"]);
        assert!(changes[0].id > 0);
        assert_eq!(changes[0].source, "chat:zhangsan");
        assert_eq!(s.pool_version().await.unwrap(), v0 + 1);

        // The same VM again: nothing recorded, version unchanged.
        assert!(s
            .upsert_vm(&clone, "chat:zhangsan")
            .await
            .unwrap()
            .is_empty());
        assert_eq!(s.pool_version().await.unwrap(), v0 + 1);

        // Memory and a disk added.
        let mut bigger = clone.clone();
        bigger.memory_mb = 8192;
        bigger.disks.push(opsbot_core::Disk {
            label: "Hard disk 3".into(),
            capacity_gb: 50,
            datastore: "ds1".into(),
            unit: 2,
        });
        let changes = s.upsert_vm(&bigger, "chat:zhangsan").await.unwrap();
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0].object_id, "vm-9");
        let fields: Vec<_> = changes.iter().map(|c| c.field.as_str()).collect();
        assert!(
            fields.contains(&"memory_mb") && fields.contains(&"disks"),
            "{fields:?}"
        );
        let history = all_changes(&ctx).await;
        assert_eq!(
            &history[..2].iter().map(|c| c.id).max(),
            &changes.iter().map(|c| c.id).max()
        );
        assert_eq!(s.pool_version().await.unwrap(), v0 + 2);

        // Upserting never removes other VMs.
        let pool = s.load_pool().await.unwrap();
        assert_eq!(pool.inventory.vms.len(), 4);
        assert_eq!(
            pool.inventory.vms.iter().find(|v| v.id == "vm-9"),
            Some(&bigger)
        );
    }

    pub async fn chinese_names_round_trip(ctx: Ctx) {
        let s = &ctx.store;
        let mut inv = inventory("vc1");
        inv.vms[0].name = "财务系统-数据库服务器-主节点-华东区域-第一可用区".into();
        inv.vms[0].folder = "/虚拟机/生产环境".into();
        inv.vms[1].name = "测试𠮷😀".into(); // 4-byte UTF-8 needs utf8mb4 on MySQL
        inv.vms[1].nics = vec![Nic {
            label: "网络适配器 1".into(),
            mac: "00:50:56:00:00:02".into(),
            network: "生产网络".into(),
            connected: false,
        }];
        inv.hosts[0].name = "宿主机一号".into();
        s.apply_inventory("vc1", &inv, "sync").await.unwrap();
        assert_eq!(s.load_pool().await.unwrap().inventory, sorted(inv.clone()));
        let names: Vec<String> = all_changes(&ctx)
            .await
            .into_iter()
            .map(|c| c.object_name)
            .collect();
        assert!(names.contains(&"测试𠮷😀".to_string()));

        let mut renamed = inv.vms[1].clone();
        renamed.name = "测试二号".into();
        let changes = s.upsert_vm(&renamed, "chat:张三").await.unwrap();
        assert_eq!(summary(&changes), ["vm vm-2 name 测试𠮷😀 -> 测试二号"]);
        assert_eq!(changes[0].source, "chat:张三");
    }

    pub async fn load_pool_returns_every_provider(ctx: Ctx) {
        let s = &ctx.store;
        let empty = s.load_pool().await.unwrap();
        assert_eq!(empty.inventory, Inventory::default());
        assert!(empty.templates.is_empty());

        let a = inventory("vc1");
        let b = inventory("sim");
        s.apply_inventory("vc1", &a, "sync").await.unwrap();
        s.apply_inventory("sim", &b, "sync").await.unwrap();
        let pool = s.load_pool().await.unwrap();
        assert_eq!(pool.inventory, sorted(merge(a.clone(), b.clone())));
        assert_eq!(pool.templates.len(), 2);
        assert_eq!(pool.version, s.pool_version().await.unwrap());

        // Syncing one provider empty removes only its objects.
        s.apply_inventory("sim", &Inventory::default(), "sync")
            .await
            .unwrap();
        let pool = s.load_pool().await.unwrap();
        assert_eq!(pool.inventory, sorted(a));
        assert_eq!(pool.templates.len(), 1);

        // Objects claiming another provider are stored under the one being synced.
        let mut odd = inventory("elsewhere");
        odd.vms.truncate(1);
        s.apply_inventory("sim", &odd, "sync").await.unwrap();
        let pool = s.load_pool().await.unwrap();
        assert!(pool.inventory.vms.iter().all(|v| v.provider != "elsewhere"));
        assert!(pool.inventory.vms.iter().any(|v| v.provider == "sim"));
    }

    pub async fn version_moves_only_on_change(ctx: Ctx) {
        let s = &ctx.store;
        let v0 = s.pool_version().await.unwrap();
        let inv = inventory("vc1");
        s.apply_inventory("vc1", &inv, "sync").await.unwrap();
        let v1 = s.pool_version().await.unwrap();
        assert_eq!(v1, v0 + 1, "one bump per sync, however many objects");
        let report = s.apply_inventory("vc1", &inv, "sync").await.unwrap();
        assert_eq!((report.added, report.updated, report.removed), (0, 0, 0));
        assert_eq!(s.pool_version().await.unwrap(), v1);
        assert_eq!(all_changes(&ctx).await.len(), 10);
        let mut changed = inv.clone();
        changed.datastores[0].free_gb = 3_999;
        s.apply_inventory("vc1", &changed, "sync").await.unwrap();
        assert_eq!(s.pool_version().await.unwrap(), v1 + 1);
        assert_eq!(
            summary(&all_changes(&ctx).await[..1]),
            ["datastore ds-1 free_gb 4000 -> 3999"]
        );
    }

    pub async fn subsystem_changes_are_appended_with_store_ids(ctx: Ctx) {
        let s = &ctx.store;
        s.apply_inventory("vc1", &inventory("vc1"), "sync")
            .await
            .unwrap();
        let version = s.pool_version().await.unwrap();
        let before = all_changes(&ctx).await;
        let at = Utc::now().trunc_subsecs(6);
        let change = |field: &str, old: Option<&str>, new: &str| Change {
            id: 0,
            at,
            provider: "k8s".into(),
            object_kind: "k8s-deployment".into(),
            object_id: "prod/payments/web".into(),
            object_name: "web".into(),
            field: field.into(),
            old_value: old.map(Into::into),
            new_value: Some(new.into()),
            source: "chat:张三".into(),
        };
        let batch = [
            change("created", None, "web"),
            change("replicas", Some("3"), "5"),
        ];
        s.record_changes(&batch).await.unwrap();
        s.record_changes(&[]).await.unwrap();

        let q = ChangeQuery {
            provider: Some("k8s".into()),
            object_kind: Some("k8s-deployment".into()),
            object_id: Some("prod/payments/web".into()),
            limit: 10,
            offset: 0,
        };
        let got = s.changes(&q).await.unwrap();
        assert_eq!(
            summary(&got),
            [
                "k8s-deployment prod/payments/web created ∅ -> web",
                "k8s-deployment prod/payments/web replicas 3 -> 5",
            ]
        );
        // Newest first, with ids the store gave, after every earlier change.
        assert_eq!(got[0].field, "replicas");
        let newest_before = before.iter().map(|c| c.id).max().unwrap_or(0);
        assert!(got.iter().all(|c| c.id > newest_before));
        assert_ne!(got[0].id, got[1].id);
        assert_eq!(got[0].source, "chat:张三");
        assert_eq!(got[0].at, at);
        // Not pool objects: the pool's version stays.
        assert_eq!(s.pool_version().await.unwrap(), version);
        assert_eq!(all_changes(&ctx).await.len(), before.len() + 2);
    }

    pub async fn change_history_filters(ctx: Ctx) {
        let s = &ctx.store;
        s.apply_inventory("vc1", &inventory("vc1"), "sync")
            .await
            .unwrap();
        s.apply_inventory("sim", &inventory("sim"), "sync")
            .await
            .unwrap();
        let q = |provider: Option<&str>, kind: Option<&str>, id: Option<&str>, limit, offset| {
            ChangeQuery {
                provider: provider.map(Into::into),
                object_kind: kind.map(Into::into),
                object_id: id.map(Into::into),
                limit,
                offset,
            }
        };
        assert_eq!(
            s.changes(&q(Some("sim"), None, None, 0, 0))
                .await
                .unwrap()
                .len(),
            10
        );
        let vms = s.changes(&q(None, Some("vm"), None, 0, 0)).await.unwrap();
        assert_eq!(vms.len(), 6);
        assert!(vms.windows(2).all(|w| w[0].id > w[1].id), "newest first");
        let one = s
            .changes(&q(Some("vc1"), Some("vm"), Some("vm-2"), 0, 0))
            .await
            .unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].object_name, "db01");
        let page = s.changes(&q(None, None, None, 3, 2)).await.unwrap();
        let all = all_changes(&ctx).await;
        assert_eq!(page, all[2..5].to_vec());
    }

    fn entry(user: &str, result: AuditResult, text: &str) -> AuditEntry {
        AuditEntry {
            id: 0,
            at: Utc::now().trunc_subsecs(3),
            user: user.into(),
            channel: "wecom:ops".into(),
            chat: Some("room1".into()),
            text: text.into(),
            command: Some("关机".into()),
            result,
            message: "已关机".into(),
            duration_ms: 1234,
            job_id: None,
        }
    }

    pub async fn audit_log_append_and_filter(ctx: Ctx) {
        let s = &ctx.store;
        let mut written = Vec::new();
        for (user, result, text) in [
            ("zhangsan", AuditResult::Ok, "关机 web01"),
            ("lisi", AuditResult::Denied, "开机 db01"),
            ("zhangsan", AuditResult::Failed, "克隆:1,app02,10.0.0.9"),
        ] {
            let mut e = entry(user, result, text);
            if result == AuditResult::Failed {
                e.chat = None;
                e.command = None;
                e.job_id = Some(42);
            }
            e.id = s.append_audit(&e).await.unwrap();
            assert!(e.id > 0);
            written.push(e);
        }
        let all = s.audit_log(&AuditQuery::default()).await.unwrap();
        let mut newest_first = written.clone();
        newest_first.reverse();
        assert_eq!(all, newest_first);

        let zhangsan = s
            .audit_log(&AuditQuery {
                user: Some("zhangsan".into()),
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(zhangsan, [written[2].clone(), written[0].clone()]);
        let denied = s
            .audit_log(&AuditQuery {
                result: Some(AuditResult::Denied),
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(denied, [written[1].clone()]);
        let page = s
            .audit_log(&AuditQuery {
                limit: 1,
                offset: 1,
                ..AuditQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(page, [written[1].clone()]);
    }

    pub async fn mark_processed_once(ctx: Ctx) {
        let s = &ctx.store;
        assert!(s.mark_processed("wecom:ops", "msg-1").await.unwrap());
        assert!(!s.mark_processed("wecom:ops", "msg-1").await.unwrap());
        assert!(s.mark_processed("wecom:other", "msg-1").await.unwrap());

        // Retries racing from several tasks (and connections): exactly one wins.
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let store = ctx.store.clone();
                tokio::spawn(async move { store.mark_processed("wecom:ops", "msg-race").await })
            })
            .collect();
        let mut wins = 0;
        for t in tasks {
            if t.await.unwrap().unwrap() {
                wins += 1;
            }
        }
        assert_eq!(wins, 1);

        // Also from a second store on the same database, like a second process.
        let other = connect(&ctx.url).await.unwrap();
        assert!(!other.mark_processed("wecom:ops", "msg-race").await.unwrap());
        assert!(other.mark_processed("wecom:ops", "msg-2").await.unwrap());
        assert!(!s.mark_processed("wecom:ops", "msg-2").await.unwrap());
    }

    fn new_job(owner: &str, user: &str) -> NewJob {
        NewJob {
            owner: owner.into(),
            user: user.into(),
            channel: "wecom:ops".into(),
            chat: None,
            command: "克隆".into(),
            text: "克隆:1,app01,10.0.0.5".into(),
            message: "排队中".into(),
            target: None,
        }
    }

    pub async fn jobs_lifecycle_and_interrupt(ctx: Ctx) {
        let s = &ctx.store;
        let a = s.create_job(&new_job("proc-a", "zhangsan")).await.unwrap();
        let b = s.create_job(&new_job("proc-a", "lisi")).await.unwrap();
        let c = s.create_job(&new_job("proc-b", "zhangsan")).await.unwrap();
        let done = s.create_job(&new_job("proc-a", "zhangsan")).await.unwrap();
        assert!(a.0 < b.0 && b.0 < c.0);

        let job = s.job(a).await.unwrap().unwrap();
        assert_eq!(
            (
                job.state,
                job.progress,
                job.message.as_str(),
                job.user.as_str()
            ),
            (JobState::Running, 0, "排队中", "zhangsan")
        );
        assert_eq!(job.command, "克隆");
        assert_eq!(job.created_at, job.updated_at);
        assert!(s.job(opsbot_core::JobId(999_999)).await.unwrap().is_none());

        s.update_job(a, JobState::Running, 40, "正在克隆")
            .await
            .unwrap();
        let job = s.job(a).await.unwrap().unwrap();
        assert_eq!((job.progress, job.message.as_str()), (40, "正在克隆"));
        assert!(job.updated_at >= job.created_at);
        s.update_job(done, JobState::Succeeded, 100, "完成")
            .await
            .unwrap();
        s.heartbeat_jobs("proc-a").await.unwrap();

        let zhangsan = s
            .jobs(&JobQuery {
                user: Some("zhangsan".into()),
                ..JobQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(
            zhangsan.iter().map(|j| j.id).collect::<Vec<_>>(),
            [done, c, a],
            "newest first"
        );
        let running = s
            .jobs(&JobQuery {
                state: Some(JobState::Running),
                limit: 2,
                ..JobQuery::default()
            })
            .await
            .unwrap();
        assert_eq!(running.iter().map(|j| j.id).collect::<Vec<_>>(), [c, b]);

        // Graceful shutdown of proc-a: its running jobs only.
        let ids = s
            .interrupt_jobs(&InterruptFilter::Owner("proc-a".into()), "进程已停止")
            .await
            .unwrap();
        assert_eq!(ids, [a, b]);
        let job = s.job(a).await.unwrap().unwrap();
        assert_eq!(
            (job.state, job.message.as_str()),
            (JobState::Interrupted, "进程已停止")
        );
        // A progress note that arrives late does not bring the job back to life.
        s.update_job(a, JobState::Running, 50, "迟到的进度")
            .await
            .unwrap();
        s.update_job(a, JobState::Succeeded, 100, "迟到的结果")
            .await
            .unwrap();
        let job = s.job(a).await.unwrap().unwrap();
        assert_eq!(
            (job.state, job.message.as_str()),
            (JobState::Interrupted, "进程已停止")
        );
        assert_eq!(
            s.job(done).await.unwrap().unwrap().state,
            JobState::Succeeded
        );

        // proc-b crashed: its heartbeat is older than a deadline in the future, but
        // not older than one an hour ago.
        let hour_ago = Utc::now() - chrono::Duration::hours(1);
        let none = s
            .interrupt_jobs(&InterruptFilter::StaleBefore(hour_ago), "超时")
            .await
            .unwrap();
        assert!(none.is_empty());
        let soon = Utc::now() + chrono::Duration::seconds(5);
        let ids = s
            .interrupt_jobs(&InterruptFilter::StaleBefore(soon), "超时")
            .await
            .unwrap();
        assert_eq!(ids, [c]);
        assert_eq!(
            s.job(c).await.unwrap().unwrap().state,
            JobState::Interrupted
        );
        let again = s
            .interrupt_jobs(&InterruptFilter::StaleBefore(soon), "超时")
            .await
            .unwrap();
        assert!(again.is_empty());
    }

    pub async fn policy_round_trip(ctx: Ctx) {
        let s = &ctx.store;
        assert_eq!(s.load_policy().await.unwrap(), PolicyData::default());
        let policy = PolicyData {
            roles: vec![
                Role {
                    name: "operator".into(),
                    commands: vec!["概况".into(), "关机".into()],
                    scopes: vec!["vc1/DC0/**".into()],
                },
                Role {
                    name: "admin".into(),
                    commands: vec!["*".into()],
                    scopes: vec!["*".into()],
                },
            ],
            users: BTreeMap::from([
                ("zhangsan".into(), vec!["operator".into(), "admin".into()]),
                ("lisi".into(), vec!["operator".into()]),
            ]),
            chats: BTreeMap::from([("运维群".into(), vec!["admin".into()])]),
        };
        s.replace_policy(&policy).await.unwrap();
        assert_eq!(s.load_policy().await.unwrap(), policy);

        let smaller = PolicyData {
            roles: vec![policy.roles[1].clone()],
            users: BTreeMap::from([("wangwu".into(), vec!["admin".into()])]),
            chats: BTreeMap::new(),
        };
        s.replace_policy(&smaller).await.unwrap();
        assert_eq!(s.load_policy().await.unwrap(), smaller);
        s.replace_policy(&PolicyData::default()).await.unwrap();
        assert_eq!(s.load_policy().await.unwrap(), PolicyData::default());
    }

    pub async fn provider_state_upsert(ctx: Ctx) {
        let s = &ctx.store;
        assert_eq!(s.get_state("sim:cluster").await.unwrap(), None);
        s.put_state("sim:cluster", r#"{"vms":1}"#).await.unwrap();
        assert_eq!(
            s.get_state("sim:cluster").await.unwrap().as_deref(),
            Some(r#"{"vms":1}"#)
        );
        let big = format!("{{\"名字\":\"{}\"}}", "虚".repeat(100_000));
        s.put_state("sim:cluster", &big).await.unwrap();
        assert_eq!(s.get_state("sim:cluster").await.unwrap(), Some(big));
        s.put_state("other", "x").await.unwrap();
        assert_eq!(s.get_state("other").await.unwrap().as_deref(), Some("x"));
    }

    /// 10,000 VMs with NICs and disks: first sync, a no-change re-sync and a reload.
    /// Prints the times (no timing asserts: machines differ).
    pub async fn ten_thousand_vms(ctx: Ctx) {
        let s = &ctx.store;
        let mut inv = inventory("vc1");
        inv.vms = (0..10_000)
            .map(|i| {
                let mut v = vm("vc1", &format!("vm-{i}"), &format!("虚拟机-{i:05}"));
                v.template = i % 500 == 0;
                if i % 2 == 0 {
                    v.nics.push(Nic {
                        label: "Network adapter 2".into(),
                        mac: format!("00:50:56:01:{:02x}:{:02x}", i / 256 % 256, i % 256),
                        network: "prod-100".into(),
                        connected: true,
                    });
                }
                if i % 3 == 0 {
                    v.disks.truncate(1);
                }
                v
            })
            .collect();

        let t = Instant::now();
        let report = s.apply_inventory("vc1", &inv, "sync").await.unwrap();
        let first = t.elapsed();
        assert_eq!(report.vms + report.templates, 10_000);

        let t = Instant::now();
        let report = s.apply_inventory("vc1", &inv, "sync").await.unwrap();
        let resync = t.elapsed();
        assert_eq!((report.added, report.updated, report.removed), (0, 0, 0));

        let mut changed = inv.clone();
        for v in changed.vms.iter_mut().step_by(100) {
            v.power = opsbot_core::PowerState::PoweredOff;
        }
        let t = Instant::now();
        let report = s.apply_inventory("vc1", &changed, "sync").await.unwrap();
        let hundred = t.elapsed();
        assert_eq!(report.updated, 100);

        let t = Instant::now();
        let pool = s.load_pool().await.unwrap();
        let load = t.elapsed();
        assert_eq!(pool.inventory.vms.len(), 10_000);
        assert_eq!(pool.templates.len(), 20);
        assert_eq!(pool.inventory, sorted(changed));

        let t = Instant::now();
        let reopened = connect(&ctx.url).await.unwrap();
        let reconnect = t.elapsed();
        reopened.ping().await.unwrap();

        let backend = match ctx.kind {
            Kind::Sqlite => "sqlite",
            Kind::Postgres => "postgres",
            Kind::Mysql => "mysql",
        };
        eprintln!(
            "10k VMs on {backend}: first sync {first:?}, no-change re-sync {resync:?}, \
             100 changed {hundred:?}, load_pool {load:?}, connect to migrated db {reconnect:?}"
        );
    }
}

// ---- not per backend ------------------------------------------------------------------

#[tokio::test]
async fn bad_url_names_the_url_and_accepted_schemes() {
    let err = opsbot_store::connect("oracle://scott:tiger@db/orcl")
        .await
        .err()
        .expect("oracle is not supported");
    let msg = err.to_string();
    assert!(
        matches!(err, opsbot_store::StoreError::BadUrl { .. }),
        "{msg}"
    );
    assert!(msg.contains("oracle://scott:***@db/orcl"), "{msg}");
    assert!(!msg.contains("tiger"), "{msg}");
    assert!(
        msg.contains("sqlite://") && msg.contains("postgres://"),
        "{msg}"
    );
}

#[tokio::test]
async fn unreachable_servers_are_unavailable_quickly() {
    for url in [
        "postgres://opsbot:secret@127.0.0.1:1/opsbot",
        "mysql://opsbot:secret@127.0.0.1:1/opsbot",
    ] {
        let err = opsbot_store::connect(url)
            .await
            .err()
            .expect("port 1 is closed");
        let msg = err.to_string();
        assert!(err.is_unavailable(), "{url}: {msg}");
        assert!(msg.contains("127.0.0.1:1"), "{msg}");
        assert!(!msg.contains("secret"), "{msg}");
    }
    let pg = opsbot_store::connect("postgresql://u:secret@127.0.0.1:1/x")
        .await
        .err()
        .unwrap();
    assert!(pg.to_string().starts_with("postgres unavailable"), "{pg}");
}

#[tokio::test]
async fn sqlite_memory_works() {
    let store = opsbot_store::connect("sqlite::memory:").await.unwrap();
    store
        .apply_inventory("vc1", &fixtures::inventory("vc1"), "sync")
        .await
        .unwrap();
    assert_eq!(store.load_pool().await.unwrap().inventory.vms.len(), 3);
}

/// Several processes share one SQLite file: two stores write to it at the same time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_file_shared_by_two_stores() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/shared.db", dir.path().display());
    let a = opsbot_store::connect(&url).await.unwrap();
    let b = opsbot_store::connect(&url).await.unwrap();
    let mut tasks = Vec::new();
    for (i, store) in [a.clone(), b.clone(), a.clone(), b.clone()]
        .into_iter()
        .enumerate()
    {
        tasks.push(tokio::spawn(async move {
            let provider = format!("p{}", i % 2);
            let mut inv = fixtures::inventory(&provider);
            inv.vms[0].cpu = i as u32 + 1;
            store
                .apply_inventory(&provider, &inv, "sync")
                .await
                .unwrap();
            store.mark_processed("c", "same").await.unwrap()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        wins += usize::from(t.await.unwrap());
    }
    assert_eq!(wins, 1);
    let pool = b.load_pool().await.unwrap();
    assert_eq!(pool.inventory.vms.len(), 6);
}

#[tokio::test]
async fn sqlite_relative_path_creates_directories() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a/b/opsbot.db");
    let url = format!("sqlite://{}?mode=rwc", path.display());
    opsbot_store::connect(&url)
        .await
        .unwrap()
        .ping()
        .await
        .unwrap();
    assert!(path.exists());
}
