//! The menu tree from the configuration (`[[menu]]`): start-up checks naming the key
//! path, the built-in menu unchanged, dynamic nodes chosen by number and by name
//! (names with `-` too), input carried in paths, leaves hidden from those who may not
//! run them, the session's stack through serde, and a stack stored under a
//! configuration that changed since. Seed 001's example (`examples/menu-seed-001.toml`)
//! runs against a stand-in workload source and a stand-in 扩容 that records its calls.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test, with its line

mod common;

use async_trait::async_trait;
use common::{admin_policy, harness_with, policy, role, ADMIN};
use opsbot_core::chat::{
    Answer, Call, ChatCommand, ChatCommands, MenuEntry, MenuSource, Requester,
};
use opsbot_core::{AuditResult, Registry, Subsystem};
use opsbot_engine::menu::{Frame, MenuItem, MenuTree};
use opsbot_engine::session::Session;
use opsbot_engine::{EngineSettings, Status};
use opsbot_store::AuditQuery;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

#[derive(serde::Deserialize)]
struct MenuFile {
    menu: Vec<MenuItem>,
}

fn items(toml_text: &str) -> Vec<MenuItem> {
    toml::from_str::<MenuFile>(toml_text).unwrap().menu
}

fn known(word: &str) -> bool {
    opsbot_engine::canonical_name(word).is_some()
}

fn compile(toml_text: &str) -> Result<MenuTree, (String, String)> {
    MenuTree::compile(&items(toml_text), &known).map_err(|e| (e.key, e.problem))
}

fn seed_tree() -> Arc<MenuTree> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../examples/menu-seed-001.toml"
    );
    let text = std::fs::read_to_string(path).unwrap();
    Arc::new(compile(&text).unwrap())
}

fn with_menu(menu: Arc<MenuTree>) -> EngineSettings {
    EngineSettings {
        menu,
        ..EngineSettings::default()
    }
}

// ── stand-ins: a workload source and 扩容 ───────────────────────────────────

/// Workloads by namespace; records the params it was asked with.
#[derive(Default)]
struct Workloads {
    asked: Mutex<Vec<BTreeMap<String, String>>>,
}

#[async_trait]
impl MenuSource for Workloads {
    fn sources(&self) -> &'static [&'static str] {
        &["workloads"]
    }

    async fn entries(
        &self,
        _source: &str,
        params: &BTreeMap<String, String>,
        _caller: &dyn Requester,
    ) -> Result<Vec<MenuEntry>, String> {
        self.asked.lock().unwrap().push(params.clone());
        let names: &[&str] = match params.get("ns").map(String::as_str) {
            Some("oa") => &["web-api", "worker"],
            Some("shop") => &["cart"],
            Some("big") => {
                return Ok((0..25)
                    .map(|i| MenuEntry {
                        label: format!("app-{i:02}"),
                        value: format!("app-{i:02}"),
                    })
                    .collect())
            }
            _ => &[],
        };
        Ok(names
            .iter()
            .map(|n| MenuEntry {
                label: n.to_string(),
                value: n.to_string(),
            })
            .collect())
    }
}

static SCALE: [ChatCommand; 1] = [ChatCommand {
    name: "扩容",
    aliases: &["scale"],
    usage: "扩容:ns/deploy,N",
    summary: "调整副本数",
    destructive: true,
    args: (2, 2),
}];

/// 扩容 that records what it was asked.
#[derive(Default)]
struct Scaler {
    calls: Mutex<Vec<String>>,
}

#[async_trait]
impl ChatCommands for Scaler {
    fn commands(&self) -> &'static [ChatCommand] {
        &SCALE
    }

    async fn run(&self, call: Call<'_>) -> Answer {
        let line = format!(
            "{}:{} by {}",
            call.command.name,
            call.args.join(","),
            call.caller.user()
        );
        self.calls.lock().unwrap().push(line);
        Answer::Done(format!(
            "已将 {} 调整为 {} 个 POD",
            call.args[0], call.args[1]
        ))
    }
}

struct Kube {
    workloads: Arc<Workloads>,
    scaler: Arc<Scaler>,
}

impl Subsystem for Kube {
    fn register(self: Arc<Self>, registry: &mut Registry) {
        registry.commands(self.scaler.clone());
        registry.menu_source(self.workloads.clone());
    }
}

// ── seed 001 ───────────────────────────────────────────────────────────────

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_001_scales_a_workload_step_by_step_and_as_one_path() {
    let mut h = harness_with(admin_policy(), with_menu(seed_tree()), None).await;
    let workloads = Arc::new(Workloads::default());
    let scaler = Arc::new(Scaler::default());
    assert!(
        h.engine.check_menu().is_err(),
        "workloads is unknown until a subsystem offers it"
    );
    h.engine = h.engine.register(Arc::new(Kube {
        workloads: workloads.clone(),
        scaler: scaler.clone(),
    }));
    h.engine.check_menu().unwrap();

    let r = h.say(ADMIN, "菜单").await;
    assert_eq!(
        r.text,
        "【运维菜单】\n0 资源概况\n1 选择事业部\n2 我的任务\n回复数字选择 · 返回 上一级 · 退出 结束"
    );
    let r = h.say(ADMIN, "1").await;
    assert!(
        r.text
            .starts_with("【选择事业部】请选择事业部\n0 OA系统\n1 电商\n"),
        "{}",
        r.text
    );
    // A static entry by its name.
    let r = h.say(ADMIN, "OA系统").await;
    assert!(
        r.text
            .starts_with("【OA系统】请选择您想要的操作\n0 K8s操作\n1 MySQL操作\n"),
        "{}",
        r.text
    );
    let r = h.say(ADMIN, "0").await;
    assert!(
        r.text
            .starts_with("【OA系统 · 工作负载】请选择工作负载\n0 web-api\n1 worker\n"),
        "{}",
        r.text
    );
    // A live entry by its name, `-` and all.
    let r = h.say(ADMIN, "web-api").await;
    assert!(
        r.text
            .starts_with("【web-api】请选择操作\n0 增加 POD 数\n1 重启\n"),
        "{}",
        r.text
    );
    let r = h.say(ADMIN, "0").await;
    assert_eq!(
        r.text,
        "【oa/web-api · 扩容】请输入 POD 数\n返回 上一级 · 退出 结束"
    );
    let r = h.say(ADMIN, "3").await;
    assert_eq!(r.status, Status::NeedsConfirmation, "{}", r.text);
    assert!(
        r.text.starts_with("即将执行: 扩容:oa/web-api,3\n"),
        "{}",
        r.text
    );
    assert!(
        scaler.calls.lock().unwrap().is_empty(),
        "nothing runs before 确认"
    );
    let r = h.say(ADMIN, "y").await;
    assert_eq!(r.status, Status::Ok, "{}", r.text);
    assert!(
        r.text.starts_with("已将 oa/web-api 调整为 3 个 POD"),
        "{}",
        r.text
    );
    assert!(r.text.contains("菜单已回到【web-api】"), "{}", r.text);

    // The seed's path to a workload, then the whole way in one message.
    let r = h.say(ADMIN, "1-OA系统-0-0").await;
    assert!(r.text.starts_with("【web-api】请选择操作\n"), "{}", r.text);
    let r = h.say(ADMIN, "1-OA系统-0-web-api-0-5").await;
    assert_eq!(r.status, Status::NeedsConfirmation, "{}", r.text);
    assert!(
        r.text.starts_with("即将执行: 扩容:oa/web-api,5\n"),
        "{}",
        r.text
    );
    h.say(ADMIN, "确认").await;
    // Another business unit's namespace, by numbers only, with the menu closed.
    h.say(ADMIN, "退出").await;
    let r = h.say(ADMIN, "1-1-0-0-0-2").await;
    assert!(
        r.text.starts_with("即将执行: 扩容:shop/cart,2\n"),
        "{}",
        r.text
    );
    h.say(ADMIN, "y").await;

    assert_eq!(
        *scaler.calls.lock().unwrap(),
        [
            "扩容:oa/web-api,3 by admin",
            "扩容:oa/web-api,5 by admin",
            "扩容:shop/cart,2 by admin"
        ]
    );
    let asked = workloads.asked.lock().unwrap().clone();
    assert!(asked.iter().all(|p| p.get("ns").is_some()), "{asked:?}");
    assert!(asked.iter().any(|p| p["ns"] == "shop"), "{asked:?}");

    // Audited as the command the leaf produced: pending at the digit, done at the y.
    let log = h
        .store
        .audit_log(&AuditQuery {
            limit: 100,
            ..AuditQuery::default()
        })
        .await
        .unwrap();
    let entry = |text: &str| {
        log.iter()
            .rev()
            .find(|e| e.text == text)
            .map(|e| (e.command.clone().unwrap_or_default(), e.result))
    };
    assert_eq!(
        entry("3"),
        Some(("扩容:oa/web-api,3".to_string(), AuditResult::Pending))
    );
    assert_eq!(
        entry("1-OA系统-0-web-api-0-5"),
        Some(("扩容:oa/web-api,5".to_string(), AuditResult::Pending))
    );
    let done: Vec<_> = log
        .iter()
        .filter(|e| e.command.as_deref() == Some("扩容:oa/web-api,3"))
        .map(|e| (e.text.as_str(), e.result))
        .collect();
    assert!(done.contains(&("y", AuditResult::Ok)), "{done:?}");
}

#[tokio::test]
async fn a_missing_entry_is_said_and_the_list_shown_again() {
    let mut h = harness_with(admin_policy(), with_menu(seed_tree()), None).await;
    h.engine = h.engine.register(Arc::new(Kube {
        workloads: Arc::default(),
        scaler: Arc::default(),
    }));
    let r = h.say(ADMIN, "1-OA系统-0-nosuch").await;
    assert_eq!(r.status, Status::Invalid);
    assert!(
        r.text.starts_with(
            "没有名为「nosuch」的选项,请回复列表中的数字或名称\n\n【OA系统 · 工作负载】"
        ),
        "{}",
        r.text
    );
    let r = h.say(ADMIN, "7").await;
    assert!(r.text.starts_with("没有选项 7,请回复 0–1"), "{}", r.text);
    // A command typed at an open menu still runs as a command.
    let r = h.say(ADMIN, "概况").await;
    assert_eq!(r.status, Status::Ok, "{}", r.text);
    let r = h.say(ADMIN, "概况x").await;
    assert!(
        r.text.contains("概况"),
        "the parser's own suggestion: {}",
        r.text
    );
}

#[tokio::test]
async fn a_long_list_shows_twenty_and_takes_any_name() {
    let tree = compile(
        "[[menu]]\nlabel = \"大空间\"\nsource = \"workloads\"\nparams = { ns = \"big\" }\nvar = \"deploy\"\ncommand = \"扩容:big/{deploy},1\"\n",
    )
    .unwrap();
    let mut h = harness_with(admin_policy(), with_menu(Arc::new(tree)), None).await;
    h.engine = h.engine.register(Arc::new(Kube {
        workloads: Arc::default(),
        scaler: Arc::default(),
    }));
    let r = h.say(ADMIN, "0-0").await;
    assert_eq!(r.status, Status::NeedsConfirmation, "{}", r.text);
    h.say(ADMIN, "n").await;
    h.say(ADMIN, "菜单").await;
    let r = h.say(ADMIN, "0").await;
    assert!(
        r.text
            .contains("\n19 app-19\n…另有 5 个,可直接回复名称选择\n"),
        "{}",
        r.text
    );
    assert!(!r.text.contains("app-20"), "{}", r.text);
    let r = h.say(ADMIN, "20").await;
    assert!(r.text.starts_with("没有选项 20,请回复 0–19"), "{}", r.text);
    let r = h.say(ADMIN, "app-23").await;
    assert!(
        r.text.starts_with("即将执行: 扩容:big/app-23,1\n"),
        "{}",
        r.text
    );
}

// ── start-up checks ────────────────────────────────────────────────────────

#[test]
fn configuration_errors_name_the_key_path() {
    let unit = r#"
[[menu]]
label = "OA系统"
vars = { ns = "oa" }
[[menu.children]]
label = "概况"
command = "概况"
[[menu.children]]
label = "工作负载"
source = "workloads"
params = { ns = "{ns}" }
var = "deploy"
[[menu.children.children]]
label = "扩容"
input = "请输入 POD 数"
command = "扩容:{ns}/{deploy},{input}"
"#;
    compile(unit).unwrap();
    let (key, problem) = compile(&unit.replace("{ns}/{deploy}", "{ns}/{dep}")).unwrap_err();
    assert_eq!(key, "menu[0].children[1].children[0].command");
    assert!(problem.starts_with("unknown variable {dep}"), "{problem}");
    assert!(
        problem.contains("deploy, input, ns"),
        "names what is bound: {problem}"
    );

    let cases: &[(&str, &str, &str)] = &[
        (
            "[[menu]]\nlabel = \"a\"\nvars = { ns = \"oa\" }\n[[menu.children]]\nlabel = \"b\"\ncommand = \"概况\"\n[[menu.children]]\nlabel = \"c\"\ncommand = \"概况\"\n[[menu.children]]\nlabel = \"d\"\ncommand = \"扩容:{ns}/{deploy},{input}\"\n",
            "menu[0].children[2].command",
            "unknown variable {deploy}",
        ),
        ("[[menu]]\nlabel = \"a\"\ncommand = \"扩大:x\"\n", "menu[0].command", "unknown command \"扩大\""),
        ("[[menu]]\nlabel = \"a\"\ncommand = \"概况\"\n[[menu]]\nlabel = \" \"\ncommand = \"概况\"\n", "menu[1].label", "must not be empty"),
        ("[[menu]]\nlabel = \"a\"\n", "menu[0]", "needs children"),
        ("[[menu]]\nlabel = \"a\"\ncommand = \"概况\"\n[[menu.children]]\nlabel = \"b\"\ncommand = \"概况\"\n", "menu[0]", "children and command exclude each other"),
        ("[[menu]]\nlabel = \"a\"\ninput = \"?\"\nsource = \"vms\"\ncommand = \"查:{input}\"\n", "menu[0]", "input and source exclude each other"),
        ("[[menu]]\nlabel = \"a\"\nvar = \"x\"\ncommand = \"概况\"\n", "menu[0].var", "only an input node"),
        ("[[menu]]\nlabel = \"a\"\ntitle = \"{vm}\"\nsource = \"vms\"\nvar = \"vm\"\ncommand = \"查:{vm}\"\n", "menu[0].title", "unknown variable {vm}"),
        ("[[menu]]\nlabel = \"a\"\nsource = \"vms\"\nparams = { input = \"{kw}\" }\ncommand = \"查:{choice}\"\n", "menu[0].params.input", "unknown variable {kw}"),
    ];
    for (text, key, problem) in cases {
        let (k, p) = compile(text).unwrap_err();
        assert_eq!(&k, key, "{text}");
        assert!(p.starts_with(problem), "{text}: {p}");
    }

    // Depth over 8, and more than 50 children.
    let mut deep = MenuItem {
        label: "leaf".into(),
        command: Some("概况".into()),
        ..MenuItem::default()
    };
    for _ in 0..8 {
        deep = MenuItem {
            label: "level".into(),
            children: vec![deep],
            ..MenuItem::default()
        };
    }
    let e = MenuTree::compile(&[deep], &known).unwrap_err();
    assert_eq!(e.key, format!("menu[0]{}", ".children[0]".repeat(8)));
    assert!(e.problem.contains("deeper than 8"), "{e}");
    let wide: Vec<MenuItem> = (0..51)
        .map(|i| MenuItem {
            label: format!("项 {i}"),
            command: Some("概况".into()),
            ..MenuItem::default()
        })
        .collect();
    let e = MenuTree::compile(&wide, &known).unwrap_err();
    assert_eq!(
        (e.key.as_str(), e.problem.as_str()),
        ("menu", "51 entries, at most 50")
    );
}

#[tokio::test]
async fn an_unknown_source_is_refused_at_start_with_its_key_path() {
    let tree =
        compile("[[menu]]\nlabel = \"a\"\nsource = \"pods\"\ncommand = \"查:{choice}\"\n").unwrap();
    let h = harness_with(admin_policy(), with_menu(Arc::new(tree)), None).await;
    let e = h.engine.check_menu().unwrap_err();
    assert_eq!(e.key, "menu[0].source");
    assert!(e.problem.starts_with("unknown source \"pods\""), "{e}");
    // The built-in menu's sources are the engine's own.
    let h = harness_with(admin_policy(), EngineSettings::default(), None).await;
    h.engine.check_menu().unwrap();
}

// ── the built-in menu, unchanged ───────────────────────────────────────────

#[tokio::test]
async fn the_built_in_menu_reads_as_before() {
    let h = harness_with(admin_policy(), EngineSettings::default(), None).await;
    h.say(ADMIN, "菜单").await;
    let r = h.say(ADMIN, "1").await;
    assert_eq!(
        r.text,
        "【虚拟机操作】请输入虚拟机名称或 IP(支持模糊匹配)\n返回 上一级 · 退出 结束"
    );
    let r = h.say(ADMIN, "web-04").await;
    assert!(
        r.text.starts_with("【匹配「web-04」的虚拟机】\n0 ★ "),
        "{}",
        r.text
    );
    assert!(
        r.text.ends_with("\n回复数字选择 · 返回 上一级 · 退出 结束"),
        "{}",
        r.text
    );
    let r = h.say(ADMIN, "0").await;
    assert_eq!(
        r.text,
        "【web-04】请选择操作\n0 详情\n1 开机\n2 关机(强制)\n3 关闭系统\n4 重启\n5 修改 CPU\n6 修改内存\n7 添加磁盘\n8 更换网络\n9 ping 检测\n10 改名\n11 删除(不可恢复)\n回复数字选择 · 返回 上一级 · 退出 结束"
    );
    let r = h.say(ADMIN, "7").await;
    assert_eq!(
        r.text,
        "【web-04 · 加盘】请输入磁盘大小(GiB),可加 ,存储名\n返回 上一级 · 退出 结束"
    );
    let r = h.say(ADMIN, "返回").await;
    assert!(r.text.starts_with("【web-04】请选择操作"), "{}", r.text);
    let r = h.say(ADMIN, "0").await;
    assert!(
        r.text.ends_with(
            "\n\n↩ 菜单已回到【web-04】的操作列表:回复数字继续 · 返回 上一级 · 退出 结束"
        ),
        "{}",
        r.text
    );

    h.say(ADMIN, "菜单").await;
    let r = h.say(ADMIN, "8").await;
    assert_eq!(
        r.text,
        "【发布管理】请选择\n0 项目列表\n1 发布单列表\n2 构建项目\n3 发布项目\n4 批准发布单\n5 驳回发布单\n6 回滚项目\n7 发布日志\n8 扩容项目\n9 缩容项目\n回复数字选择 · 返回 上一级 · 退出 结束"
    );
    let r = h.say(ADMIN, "2").await;
    assert_eq!(
        r.text,
        "【构建项目】请输入 项目[,分支|tag|commit]\n返回 上一级 · 退出 结束"
    );

    let r = h.say(ADMIN, "5").await;
    assert!(
        r.text.starts_with("没有选项 5") || r.text.contains("构建"),
        "{}",
        r.text
    );
    h.say(ADMIN, "菜单").await;
    let r = h.say(ADMIN, "5").await;
    assert!(
        r.text
            .starts_with("【克隆虚拟机】请选择模板\n1 tpl-centos7.9 "),
        "{}",
        r.text
    );
    assert!(
        r.text
            .ends_with("\n回复模板编号选择 · 返回 上一级 · 退出 结束"),
        "{}",
        r.text
    );
    let r = h.say(ADMIN, "1").await;
    assert_eq!(
        r.text,
        "【克隆 · 模板 1】请输入 名称,IP[,CPU,内存GiB]\n例: 工具柜管理系统,192.168.2.182\n返回 上一级 · 退出 结束"
    );
}

// ── paths: names with `-`, input inside ────────────────────────────────────

#[tokio::test]
async fn paths_carry_names_with_dashes_and_input() {
    let h = harness_with(admin_policy(), EngineSettings::default(), None).await;
    h.say(ADMIN, "菜单").await;
    h.say(ADMIN, "1").await;
    h.say(ADMIN, "web").await;
    // A VM of the list by its name, though it holds `-`.
    let r = h.say(ADMIN, "dr-web-01").await;
    assert!(
        r.text.starts_with("【dr-web-01】请选择操作\n"),
        "{}",
        r.text
    );

    // The search typed inside a path: one segment (`web`, then entry 0, then 详情)...
    let r = h.say(ADMIN, "1-web-0-0").await;
    assert!(
        r.text.contains("菜单已回到【web-01】的操作列表"),
        "{}",
        r.text
    );
    // ...or, when the rest does not fit after one, the longest run that lets it.
    let r = h.say(ADMIN, "1-dr-web-01-0").await;
    assert!(
        r.text.starts_with("【dr-web-01】请选择操作\n"),
        "{}",
        r.text
    );

    // The seed's form: the clone's input is the rest of the path.
    h.say(ADMIN, "退出").await;
    let r = h.say(ADMIN, "5-1-新机,192.168.2.210").await;
    assert_eq!(r.status, Status::NeedsConfirmation, "{}", r.text);
    assert!(r.text.contains("新机"), "{}", r.text);
    let pending = h
        .sessions
        .get(&opsbot_engine::session::key("test", None, ADMIN))
        .await
        .unwrap()
        .unwrap();
    assert!(pending.contains("克隆:1,新机,192.168.2.210"), "{pending}");
    h.say(ADMIN, "取消").await;

    // A path that reaches a leaf early says so.
    let r = h.say(ADMIN, "0-0").await;
    assert!(
        r.text.starts_with("路径在第 1 段已到达操作「概况」"),
        "{}",
        r.text
    );
}

// ── permissions ────────────────────────────────────────────────────────────

#[tokio::test]
async fn leaves_the_asker_may_not_run_are_not_shown() {
    let p = policy(
        vec![
            role("admin", &["*"], &["*"]),
            role("viewer", &["概况", "主机", "查", "开机"], &["*"]),
        ],
        &[(ADMIN, &["admin"]), ("viewer", &["viewer"])],
        &[],
    );
    let h = harness_with(p, EngineSettings::default(), None).await;
    let r = h.say("viewer", "菜单").await;
    assert_eq!(
        r.text,
        "【运维菜单】\n0 资源概况\n1 虚拟机操作\n2 主机列表\n回复数字选择 · 返回 上一级 · 退出 结束"
    );
    // Numbers follow what is shown: 2 is 主机列表 for this asker.
    let r = h.say("viewer", "2").await;
    assert_eq!(r.status, Status::Ok, "{}", r.text);
    assert!(r.text.contains("主机"), "{}", r.text);
    let r = h.say("viewer", "1-10.10.100.14-0").await;
    assert_eq!(
        r.text,
        "【web-04】请选择操作\n0 详情\n1 开机\n回复数字选择 · 返回 上一级 · 退出 结束"
    );
    // What is hidden is still checked when typed.
    let r = h.say("viewer", "关机:web-04").await;
    assert_eq!(r.status, Status::Denied, "{}", r.text);
    // An administrator sees everything.
    let r = h.say(ADMIN, "菜单").await;
    assert!(r.text.contains("8 发布管理"), "{}", r.text);
}

// ── sessions ───────────────────────────────────────────────────────────────

#[test]
fn the_stack_round_trips_through_serde() {
    let session = Session {
        menu: Some(vec![
            Frame::root(),
            Frame {
                at: vec![1, 0],
                label: "OA系统".into(),
                chosen: false,
                vars: [("ns".to_string(), "oa".to_string())].into(),
            },
            Frame {
                at: vec![1, 0, 0],
                label: "K8s操作".into(),
                chosen: true,
                vars: [("ns", "oa"), ("deploy", "web-api")]
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .into(),
            },
        ]),
        ..Session::default()
    };
    let json = serde_json::to_string(&session).unwrap();
    assert_eq!(serde_json::from_str::<Session>(&json).unwrap(), session);
    // A stack another version wrote reads as one to start over, not as no session.
    let old = r#"{"menu":[{"node":"root"},{"node":"vm_search"}],"pending":{"text":"概况","summary":"概况"}}"#;
    let read: Session = serde_json::from_str(old).unwrap();
    assert_eq!(read.menu, Some(Vec::new()));
    assert!(read.pending.is_some());
}

#[tokio::test]
async fn a_stack_stored_under_another_configuration_starts_over() {
    let h = harness_with(admin_policy(), with_menu(seed_tree()), None).await;
    let h = {
        let mut h = h;
        h.engine = h.engine.register(Arc::new(Kube {
            workloads: Arc::default(),
            scaler: Arc::default(),
        }));
        h
    };
    h.say(ADMIN, "1-OA系统-0").await;
    // The stored stack survives a restart with the same configuration...
    let again = common::engine_on(
        &h.store,
        &h.sessions,
        admin_policy(),
        with_menu(seed_tree()),
    )
    .await
    .register(Arc::new(Kube {
        workloads: Arc::default(),
        scaler: Arc::default(),
    }));
    let r = again
        .handle(common::msg(ADMIN, "1"), Arc::new(opsbot_engine::Discard))
        .await;
    assert!(r.text.starts_with("【worker】请选择操作"), "{}", r.text);
    // ...and is reset, saying so, under a configuration that changed since.
    h.say(ADMIN, "1-OA系统-0").await;
    let changed = common::engine_on(
        &h.store,
        &h.sessions,
        admin_policy(),
        EngineSettings::default(),
    )
    .await;
    let r = changed
        .handle(common::msg(ADMIN, "1"), Arc::new(opsbot_engine::Discard))
        .await;
    assert_eq!(r.status, Status::Invalid, "{}", r.text);
    assert!(
        r.text.starts_with(
            "菜单配置已更新,原来的菜单位置已不存在,已回到顶层菜单\n\n【运维菜单】\n0 资源概况"
        ),
        "{}",
        r.text
    );
    // From there on the new menu answers.
    let r = changed
        .handle(common::msg(ADMIN, "1"), Arc::new(opsbot_engine::Discard))
        .await;
    assert!(r.text.starts_with("【虚拟机操作】"), "{}", r.text);
}
